"""Contract tests: every service, running as a real `mpay` process, against
its own `/openapi.json`.

`mpay network init` provisions a SEMOPS network (three banks, two DCs, two
MPPs, two CPPs, on TLS with the network's CA); one bank, CPP, MPP and DC and
a money office (plaintext on loopback) are started with `mpay serve` and
`mpay office serve`. Each document must be valid OpenAPI
(openapi-spec-validator); then schemathesis generates requests from it, with
the real tokens of each scheme (operator, processor, merchant, owner) so the
requests get past 401 to the handlers, and fails on any 5xx
(`not_a_server_error`) and on any answer the document does not describe:
its status, its content type, its schema.

`MPAY_BIN` names the binary (default: target/debug/mpay). The examples per
operation are bounded (`CONTRACT_EXAMPLES`, default 12) and each run by
time (`CONTRACT_RUN_SECONDS_MAX`, default 60); two runs go at once
(`CONTRACT_PARALLEL_RUNS`), so the whole file stays within a few minutes on
two cores.
"""

import concurrent.futures
import json
import os
import pathlib
import re
import socket
import ssl
import subprocess
import sys
import time
import tomllib
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
MPAY = os.environ.get("MPAY_BIN", str(REPO / "target" / "debug" / "mpay"))
EXAMPLES = int(os.environ.get("CONTRACT_EXAMPLES", "12"))
# Each schemathesis run stops after this many seconds at most.
RUN_SECONDS_MAX = int(os.environ.get("CONTRACT_RUN_SECONDS_MAX", "60"))
HEALTH_WAIT_SECONDS = 60
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
OFFICE_ADMIN_TOKEN = "contract-office-admin-token"

# On with MPAY_CONTRACT_TESTS=1 (.ci/run sets it); off by default so a bare
# `pytest interop` stays quick.
pytestmark = [
    pytest.mark.skipif(
        os.environ.get("MPAY_CONTRACT_TESTS") != "1",
        reason="contract tests are on with MPAY_CONTRACT_TESTS=1 (.ci/run)",
    ),
    pytest.mark.skipif(not pathlib.Path(MPAY).exists(), reason=f"no mpay binary at {MPAY}"),
]


def mpay(*args, **kwargs):
    return subprocess.run(
        [MPAY, *args], capture_output=True, text=True, timeout=120, check=False, **kwargs
    )


# Long-polls (`wait_ms`) end after this, so a generated wait does not hold
# the run.
LONG_POLL_MAX_MS = 300


def short_long_polls(config):
    """Sets `[timing] long_poll_max_ms` of a service's TOML file."""
    text = config.read_text()
    line = f"long_poll_max_ms = {LONG_POLL_MAX_MS}"
    if re.search(r"^long_poll_max_ms\s*=.*$", text, re.M):
        text = re.sub(r"^long_poll_max_ms\s*=.*$", line, text, flags=re.M)
    elif re.search(r"^\[timing\]\s*$", text, re.M):
        text = re.sub(r"^\[timing\]\s*$", f"[timing]\n{line}", text, count=1, flags=re.M)
    else:
        text += f"\n[timing]\n{line}\n"
    config.write_text(text)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, ca=None, method="GET", body=None, headers=None):
    """(status, body) of one request; TLS trusts `ca` only."""
    context = ssl.create_default_context(cafile=ca) if url.startswith("https") else None
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_healthy(url, ca, log):
    deadline = time.monotonic() + HEALTH_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            if fetch(f"{url}/health", ca)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not healthy; its log:\n{pathlib.Path(log).read_text()}")


class Services:
    """The running processes, their URLs and the tokens of each scheme."""

    def __init__(self, root):
        self.root = root
        self.ca = str(root / "tls-ca.pem")
        self.children = []
        self.urls = {}
        self.tokens = {}

    def serve(self, name, args, url, ca, env=None):
        log = self.root / f"{name}.log"
        with open(log, "ab") as out:
            child = subprocess.Popen(
                [MPAY, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MPAY_LOG": "warn", **(env or {})},
            )
        self.children.append(child)
        self.urls[name] = url
        wait_healthy(url, ca, log)

    def stop(self):
        for child in self.children:
            child.kill()
            child.wait()


@pytest.fixture(scope="module")
def services(tmp_path_factory):
    root = tmp_path_factory.mktemp("contracts")
    init = mpay("network", "init", "--dir", str(root))
    assert init.returncode == 0, init.stderr
    started = Services(root)
    processes = {}
    for line in init.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[0] in ("bank", "dc", "cpp", "mpp"):
            processes.setdefault(fields[0], []).append((fields[1], fields[2]))
    try:
        # Every bank, DC, MPP and CPP: the services reach each other.
        for role, entries in processes.items():
            for name, url in entries:
                config = root / f"{name}.toml"
                if role != "bank":
                    short_long_polls(config)
                started.serve(name, ["serve", role, "--config", str(config)], url, started.ca)
        for role in ("bank", "cpp", "mpp", "dc"):
            name, url = processes[role][0]
            started.urls[role] = url
            config = tomllib.loads((root / f"{name}.toml").read_text())
            if role == "bank":
                tokens = config.get("tokens", [])
                started.tokens["bank-operator"] = next(t["token"] for t in tokens if t.get("operator"))
                started.tokens["bank-processor"] = next(
                    t["token"] for t in tokens if not t.get("operator")
                )
            else:
                started.tokens[f"{role}-operator"] = config["operator_token"]
        # A merchant at the MPP, for its merchant routes.
        mpp_name = processes["mpp"][0][0]
        bank_name = processes["bank"][0][0]
        party = root / "shop.toml"
        opened = mpay(
            "bank", "open-account", "--bank", bank_name, "--account", "shop:contract",
            "--deposit", "0.00 EUR", "--network", str(root),
        )
        assert opened.returncode == 0, opened.stderr
        enrolled = mpay(
            "merchant", "enroll", "--processor", mpp_name, "--name", "contract",
            "--bank", bank_name, "--out", str(party), "--network", str(root),
        )
        assert enrolled.returncode == 0, enrolled.stderr
        started.tokens["merchant"] = tomllib.loads(party.read_text())["token"]
        # The money office, with its operator token and one owner.
        office = f"http://127.0.0.1:{free_port()}"
        started.serve(
            "office",
            [
                "office", "serve", "--listen", office.removeprefix("http://"),
                "--db", f"sqlite://{root / 'office.db'}",
            ],
            office,
            None,
            env={"MPAY_OFFICE_ADMIN_TOKEN": OFFICE_ADMIN_TOKEN},
        )
        started.tokens["office-operator"] = OFFICE_ADMIN_TOKEN
        status, body = fetch(
            f"{office}/v1/owners",
            method="POST",
            body=json.dumps({"owner": "contract", "deposit": "100.00 EUR"}).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {OFFICE_ADMIN_TOKEN}"},
        )
        assert status == 200, body
        started.tokens["owner"] = json.loads(body)["token"]
        yield started
    finally:
        started.stop()


def spec_problems(url, ca):
    from openapi_spec_validator import validate

    status, body = fetch(f"{url}/openapi.json", ca)
    assert status == 200, body
    try:
        validate(json.loads(body))
    except Exception as e:  # the validator's own error types
        return str(e)
    return None


def schemathesis(services, service, token, ca, extra=()):
    url = services.urls[service]
    args = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
        "--checks", CHECKS,
        "--max-examples", str(EXAMPLES),
        "--max-time", str(RUN_SECONDS_MAX),
        "--phases", "examples,coverage,fuzzing",
        "--header", f"Authorization: Bearer {token}",
        "--seed", "7",
        "--workers", "1",
        "--no-color",
        "--suppress-health-check", "all",
        *extra,
    ]
    if ca:
        args += ["--tls-verify", ca]
    run = subprocess.run(args, capture_output=True, text=True, timeout=RUN_SECONDS_MAX * 3, check=False)
    if run.returncode == 0:
        return None
    return f"{service} breaks its contract:\n{run.stdout[-8000:]}\n{run.stderr[-2000:]}"


# (service, token, schemathesis filter): each scheme's token over the
# operations it opens; an operation for another scheme answers a documented
# 401 with it.
RUNS = [
    ("bank", "bank-operator", ()),
    ("cpp", "cpp-operator", ()),
    ("bank", "bank-processor", ("--include-method", "POST")),
    ("mpp", "mpp-operator", ()),
    ("office", "office-operator", ()),
    ("dc", "dc-operator", ()),
    ("office", "owner", ("--include-tag", "wallets")),
    ("mpp", "merchant", ("--include-tag", "merchants")),
]
# Runs at once: each schemathesis run keeps about one core busy until its
# time bound, so two at a time use a two-core machine and halve the wall
# time at the same number of requests per run. RUNS is ordered so that
# neighbours mostly test different services.
PARALLEL_RUNS = int(os.environ.get("CONTRACT_PARALLEL_RUNS", "2"))


def ca_of(services, service):
    return None if service == "office" else services.ca


@pytest.fixture(scope="module")
def contract_runs(services):
    """Every run of RUNS, started in order, PARALLEL_RUNS at a time; each
    test waits for its own."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        yield {
            (service, token): pool.submit(
                schemathesis, services, service, services.tokens[token], ca_of(services, service), extra
            )
            for service, token, extra in RUNS
        }


@pytest.mark.parametrize("service", ["bank", "cpp", "mpp", "dc", "office"])
def test_document_is_valid_openapi(services, service):
    assert spec_problems(services.urls[service], ca_of(services, service)) is None


@pytest.mark.parametrize("service,token", [(s, t) for s, t, _ in RUNS], ids=[f"{s}-{t}" for s, t, _ in RUNS])
def test_service_keeps_its_contract(contract_runs, service, token):
    problem = contract_runs[(service, token)].result()
    assert problem is None, problem
