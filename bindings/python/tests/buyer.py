"""A buyer in its own process: opens a wallet, enters buyer mode once, and
prints one JSON object with the outcome (or the exception) and the progress
events in the order they came.

python3 buyer.py DIR PIN MAX_MINOR SELLER_HEX WAIT_MS BROADCAST share|keep

With `share`, the profile's shipping details go to the seller it pays.
"""

import json
import sys

import mpay_wallet_ffi as mpay


class Recorder(mpay.ProgressListener):
    def __init__(self):
        self.events = []

    def on_progress(self, event):
        self.events.append(event)

    def choose_buyer(self, buyers):
        return None


def main():
    directory, pin, max_minor, seller, wait_ms, broadcast, share = sys.argv[1:8]
    wallet = mpay.Wallet.open(directory, pin)
    net = mpay.NetConfig(bind="127.0.0.1:0", broadcast=broadcast, interface="127.0.0.1")
    recorder = Recorder()
    result = {}
    try:
        outcome = wallet.buy(
            int(max_minor), seller, int(wait_ms), share == "share", net, recorder,
            mpay.CancelToken(),
        )
        result["outcome"] = type(outcome).__name__.split(".")[-1]
        result["amount_minor"] = getattr(outcome, "amount_minor", None)
    except mpay.WalletException as e:
        result["error"] = type(e).__name__.split(".")[-1]
        result["message"] = str(e)
    result["events"] = [type(e).__name__.split(".")[-1] for e in recorder.events]
    result["accepted"] = [e.accepted for e in recorder.events if e.is_payment_requested()]
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
