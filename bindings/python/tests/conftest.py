"""Real processes for the binding tests: one `mpay office serve` on a free
loopback port with SQLite in a temporary directory (as the CLI's wallet
tests start it), and wallets made through the generated Python module.

Needs `bindings/python/build.sh` run first and the `mpay` binary
(`MPAY_BIN`, default `$CARGO_TARGET_DIR/debug/mpay`).
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
GENERATED = HERE.parent / "generated"
sys.path.insert(0, str(GENERATED))

PIN = "2468"
ADMIN_TOKEN = "bindings-admin-token"
# The standalone office serves plaintext on loopback: tokens may travel there
# by this explicit allowance, as in the CLI's tests.
os.environ["MPAY_ALLOW_PLAINTEXT_LOOPBACK"] = "1"


def mpay_bin():
    default = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "mpay"
    path = pathlib.Path(os.environ.get("MPAY_BIN", default))
    if not path.is_absolute():
        path = ROOT / path
    return str(path)


def clean_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPAY_")}
    env["MPAY_ALLOW_PLAINTEXT_LOOPBACK"] = "1"
    env["PYTHONPATH"] = str(GENERATED)
    return env


class Office:
    def __init__(self, tmp):
        db = f"sqlite://{tmp / 'office.db'}"
        env = clean_env()
        env["MPAY_OFFICE_ADMIN_TOKEN"] = ADMIN_TOKEN
        self.process = subprocess.Popen(
            [mpay_bin(), "office", "serve", "--listen", "127.0.0.1:0", "--db", db],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        line = self.process.stdout.readline()
        self.url = next(w for w in line.split() if w.startswith("http://"))
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the office never became healthy"
                time.sleep(0.05)
        self.deposits_minor = 0

    def open_account(self, owner, deposit_minor):
        """Opens `owner`'s account with a deposit (EUR); returns the token."""
        env = clean_env()
        env["MPAY_OFFICE_ADMIN_TOKEN"] = ADMIN_TOKEN
        deposit = f"{deposit_minor // 100}.{deposit_minor % 100:02d} EUR"
        out = subprocess.run(
            [mpay_bin(), "office", "open-account", "--json", "--office", self.url,
             "--owner", owner, "--deposit", deposit],
            capture_output=True, text=True, env=env, timeout=60, check=True,
        )
        self.deposits_minor += deposit_minor
        return json.loads(out.stdout)["token"]

    def owner_balance_minor(self, token):
        """The owner's account at the office (`GET /v1/owners/me`)."""
        request = urllib.request.Request(
            self.url + "/v1/owners/me", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            balance = json.load(answer)["balance"]
        units, _, cents = balance.split()[0].partition(".")
        return int(units) * 100 + int(cents or 0)

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def office(tmp_path):
    office = Office(tmp_path)
    yield office
    office.stop()


@pytest.fixture
def net():
    """Each test on its own multicast port on loopback."""
    import mpay_wallet_ffi as mpay

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return mpay.NetConfig(
        bind="127.0.0.1:0",
        broadcast=f"multicast:239.255.79.2:{port}",
        interface="127.0.0.1",
    )


def new_wallet(office, tmp_path, owner, deposit_minor, charge_minor):
    """An enrolled wallet for a new owner, charged and synced."""
    import mpay_wallet_ffi as mpay

    token = office.open_account(owner, deposit_minor)
    directory = str(tmp_path / owner)
    wallet = mpay.Wallet.create(directory, PIN, office.url, owner, token, True)
    wallet.enroll(None)
    wallet.charge(charge_minor, None)
    wallet.sync()
    return wallet, directory, token


def start_buyer(directory, max_minor, seller, wait_ms, net, share_shipping=False):
    """`buyer.py` in its own Python process; `finish_buyer` reads its result."""
    return subprocess.Popen(
        [sys.executable, str(HERE / "buyer.py"), directory, PIN, str(max_minor), seller,
         str(wait_ms), net.broadcast, "share" if share_shipping else "keep"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=clean_env(),
        text=True,
    )


def finish_buyer(process):
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out
    return json.loads(out)


def in_order(seen, wanted):
    """True when `wanted` occurs in `seen` in this order (others between)."""
    it = iter(seen)
    return all(any(kind == w for kind in it) for w in wanted)
