"""The wallet library through its generated Python bindings: two wallets in
two Python processes trade over UDP on loopback against a real money office,
then sync; the office's books and both balances must agree."""

import pytest

import mpay_wallet_ffi as mpay
from conftest import PIN, finish_buyer, in_order, new_wallet, start_buyer

SELLER_DEPOSIT = 10_000
BUYER_DEPOSIT = 10_000
BUYER_CHARGE = 5_000


class Recorder(mpay.ProgressListener):
    """Keeps every progress event; may cancel the sale once it waits for
    the buyer."""

    def __init__(self, cancel_when_waiting=None):
        self.events = []
        self.cancel_when_waiting = cancel_when_waiting

    def on_progress(self, event):
        self.events.append(event)
        if self.cancel_when_waiting is not None and event.is_waiting_for_buyer():
            self.cancel_when_waiting.cancel()

    def choose_buyer(self, buyers):
        return None

    def kinds(self):
        return [type(e).__name__.split(".")[-1] for e in self.events]


def two_wallets(office, tmp_path):
    seller, _, seller_token = new_wallet(office, tmp_path, "ann", SELLER_DEPOSIT, 1_000)
    buyer, buyer_dir, buyer_token = new_wallet(office, tmp_path, "bob", BUYER_DEPOSIT, BUYER_CHARGE)
    buyer_id = buyer.id()
    del buyer  # the buyer's process opens it
    return seller, seller_token, buyer_dir, buyer_id, buyer_token


def check_books(office, tokens, wallets):
    """Every wallet syncs; the office attests each balance; owners' accounts
    plus wallets' holdings are what was deposited."""
    holdings = 0
    for wallet in wallets:
        sync = wallet.sync()
        balance = wallet.balance()
        assert balance.unsynced_entries == 0
        assert balance.locked_minor == 0
        assert sync.attested_balance_minor == balance.balance_minor
        holdings += balance.balance_minor
    owners = sum(office.owner_balance_minor(t) for t in tokens)
    assert owners + holdings == office.deposits_minor


def test_two_processes_trade_over_udp_and_the_books_agree(office, tmp_path, net):
    seller, seller_token, buyer_dir, buyer_id, buyer_token = two_wallets(office, tmp_path)
    # The buyer shares its shipping details with this seller, and only it.
    address = "Bob Example, 9 Harbour Street, Portville"
    buyer = mpay.Wallet.open(buyer_dir, PIN)
    buyer.set_profile(
        mpay.ProfileInfo(payment=None, certificate=None, shipping=address, billing=None)
    )
    del buyer
    process = start_buyer(buyer_dir, 2_000, seller.id(), 20_000, net, share_shipping=True)
    recorder = Recorder()
    sale = seller.sell(1_250, buyer_id, "tea", 15_000, 2_000, net, recorder, mpay.CancelToken())
    bought = finish_buyer(process)

    assert sale.buyer == buyer_id and sale.amount_minor == 1_250
    assert sale.shipping == address
    assert seller.history(1)[0].shipping == address
    assert bought["outcome"] == "PAID" and bought["amount_minor"] == 1_250, bought
    # Progress arrives in order, on both sides.
    assert in_order(
        recorder.kinds(),
        ["LOOKING_FOR_BUYERS", "BUYERS_FOUND", "WAITING_FOR_BUYER", "SALE_COMMITTED"],
    ), recorder.kinds()
    assert in_order(
        bought["events"], ["WAITING_FOR_SELLER", "PAYMENT_REQUESTED", "PAYMENT_COMMITTED"]
    ), bought
    assert bought["accepted"] == [True]

    buyer = mpay.Wallet.open(buyer_dir, PIN)
    check_books(office, [seller_token, buyer_token], [seller, buyer])
    assert seller.balance().balance_minor == 1_000 + 1_250
    assert buyer.balance().balance_minor == BUYER_CHARGE - 1_250
    kinds = [e.kind for e in buyer.history(None)]
    assert kinds[0] == "pay" and buyer.history(1)[0].status == "paid"
    # After both synced, the office holds their chains: not the address.
    for path in tmp_path.glob("office.db*"):
        assert address.encode() not in path.read_bytes(), path


def test_a_sale_cancelled_before_the_commit_moves_nothing(office, tmp_path, net):
    seller, seller_token, buyer_dir, buyer_id, buyer_token = two_wallets(office, tmp_path)
    process = start_buyer(buyer_dir, 2_000, seller.id(), 8_000, net)
    cancel = mpay.CancelToken()
    recorder = Recorder(cancel_when_waiting=cancel)
    with pytest.raises(mpay.WalletException.Cancelled):
        seller.sell(1_250, buyer_id, "tea", 15_000, 2_000, net, recorder, cancel)
    bought = finish_buyer(process)

    assert "SALE_COMMITTED" not in recorder.kinds(), recorder.kinds()
    assert bought.get("outcome") == "ABORTED" or bought.get("error") == "Timeout", bought
    assert "PAYMENT_COMMITTED" not in bought["events"], bought
    buyer = mpay.Wallet.open(buyer_dir, PIN)
    check_books(office, [seller_token, buyer_token], [seller, buyer])
    assert seller.balance().balance_minor == 1_000
    assert buyer.balance().balance_minor == BUYER_CHARGE


def test_a_wrong_pin_raises_its_own_exception(tmp_path):
    directory = str(tmp_path / "w")
    wallet = mpay.Wallet.create(directory, PIN, "http://127.0.0.1:9", "cy", None, True)
    del wallet
    with pytest.raises(mpay.WalletException.WrongPin):
        mpay.Wallet.open(directory, "0000")
    # The right PIN still opens it: a wrong one changed nothing.
    assert mpay.Wallet.open(directory, PIN) is not None


def test_the_profile_is_kept_and_bounded(tmp_path):
    directory = str(tmp_path / "p")
    wallet = mpay.Wallet.create(directory, PIN, "http://127.0.0.1:9", "fay", None, True)
    profile = mpay.ProfileInfo(
        payment="card 4242", certificate=None, shipping="Fay, 3 Elm Row", billing=None
    )
    wallet.set_profile(profile)
    with pytest.raises(mpay.WalletException.Other):
        wallet.set_profile(
            mpay.ProfileInfo(payment=None, certificate=None, shipping="x" * 2_049, billing=None)
        )
    del wallet
    assert mpay.Wallet.open_read_only(directory, PIN).profile() == profile


def test_amounts_from_the_app_are_bounded(office, tmp_path):
    wallet, _, _ = new_wallet(office, tmp_path, "dee", 10_000, 100)
    # 0, negative, and one above AMOUNT_MINOR_MAX (10**12) of the bindings.
    for bad in (0, -5, 10**12 + 1):
        with pytest.raises(mpay.WalletException.Other):
            wallet.charge(bad, None)
    with pytest.raises(mpay.WalletException.LimitExceeded):
        wallet.charge(10**9, None)
    assert wallet.balance().balance_minor == 100
