//! What a person meets at the command line (issue 16): the README's way of
//! writing options and amounts works, and each message says what happened.
//! Real processes: a money office on SQLite, and the SEMOPS network.

mod common;

use common::network::{Network, Terminal, WRONG_PIN, pay, spawn_pay};
use common::{ADMIN_TOKEN, Office, finish, mpay, run};

fn open_account_text(office: &Office, owner: &str, deposit: &str) -> common::Run {
    let mut c = mpay();
    c.args(["office", "open-account", "--office", &office.url])
        .args(["--owner", owner, "--deposit", deposit])
        .env("MPAY_OFFICE_ADMIN_TOKEN", ADMIN_TOKEN);
    run(c, "open-account")
}

/// `mpay wallet --dir D <sub> …`: the wallet options before the subcommand,
/// as the README writes them.
fn wallet(dir: &std::path::Path, sub: &str, args: &[&str]) -> std::process::Command {
    let mut c = mpay();
    c.arg("wallet")
        .arg("--dir")
        .arg(dir)
        .arg(sub)
        .args(args)
        .env("MPAY_PIN", common::PIN);
    c
}

#[test]
fn office_open_account_takes_an_amount_without_its_currency() {
    let office = Office::start();
    // The token alone on stdout: `token=$(mpay office open-account …)`.
    let opened = open_account_text(&office, "alice", "200.00");
    assert_eq!(opened.code, 0, "{opened:?}");
    assert!(
        opened
            .stderr
            .contains("opened account alice with 200.00 EUR"),
        "{opened:?}"
    );
    assert_eq!(opened.stdout.lines().count(), 1, "{opened:?}");
    let token = opened.stdout.trim().to_owned();
    assert_eq!(office.owner_balance_minor(&token), 20_000);
}

/// The currency of an amount written without one is the office's own
/// (issue 16: one amount syntax, the currency from the configuration).
#[test]
fn open_account_takes_the_offices_currency() {
    let office = Office::start_with(&["--currency", "USD"]);
    let opened = open_account_text(&office, "ulla", "5.00");
    assert_eq!(opened.code, 0, "{opened:?}");
    assert!(
        opened.stderr.contains("opened account ulla with 5.00 USD"),
        "{opened:?}"
    );
    let token = opened.stdout.trim().to_owned();
    assert_eq!(office.owner_balance_minor(&token), 500);
    let euros = open_account_text(&office, "eve", "5.00 EUR");
    assert_eq!(euros.code, 1, "{euros:?}");
    assert!(
        euros
            .stderr
            .contains("amount \"5.00 EUR\": this is in USD, not EUR"),
        "{euros:?}"
    );
}

#[test]
fn wallet_options_go_before_the_subcommand() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let token = office.open_account("alice", "200.00 EUR");
    let dir = root.path().join("alice");
    let mut c = wallet(&dir, "init", &["--kdf", "fast", "--owner", "alice"]);
    c.args(["--office", &office.url])
        .env("MPAY_OWNER_TOKEN", &token);
    let init = run(c, "init");
    assert_eq!(init.code, 0, "{init:?}");
    let charge = run(wallet(&dir, "charge", &["50.00"]), "charge");
    assert_eq!(charge.code, 0, "{charge:?}");
    // Conservation: the account and the wallet hold what was paid in.
    let balance = run(wallet(&dir, "balance", &["--json"]), "balance");
    assert_eq!(balance.code, 0, "{balance:?}");
    let held = balance.json()["balance_minor"].as_i64().expect("balance");
    assert_eq!(held, 5_000);
    assert_eq!(office.owner_balance_minor(&token) + held, 20_000);
}

#[test]
fn an_owner_sees_their_office_account() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let alice = common::Wallet::create(&office, root.path(), "alice", "200.00 EUR", 0);
    alice.charge("50.00");
    let mut c = mpay();
    c.args(["office", "account", "--office", &office.url])
        .env("MPAY_OWNER_TOKEN", &alice.token);
    let account = run(c, "office account");
    assert_eq!(account.code, 0, "{account:?}");
    assert_eq!(account.stdout.trim(), "owner alice: balance 150.00 EUR");
    assert_eq!(
        office.owner_balance_minor(&alice.token) + alice.holding_minor(),
        20_000
    );
}

#[test]
fn a_sync_with_nothing_new_says_so() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let alice = common::Wallet::create(&office, root.path(), "alice", "200.00 EUR", 0);
    alice.charge("50.00");
    let sync = alice.run("sync", &[]);
    assert_eq!(sync.code, 0, "{sync:?}");
    assert!(
        sync.stdout
            .contains("office attests entry 1 with balance 50.00 EUR (nothing new to upload)"),
        "{sync:?}"
    );
}

#[test]
fn a_token_of_another_owner_is_named_at_init() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let alice = office.open_account("alice", "10.00 EUR");
    office.open_account("sam", "0.00 EUR");
    let mut c = mpay();
    c.args(["wallet", "init", "--kdf", "fast", "--owner", "sam"])
        .arg("--dir")
        .arg(root.path().join("sam"))
        .args(["--office", &office.url])
        .env("MPAY_PIN", common::PIN)
        .env("MPAY_OWNER_TOKEN", &alice);
    let init = run(c, "init with alice's token");
    assert_eq!(init.code, 1, "{init:?}");
    assert!(
        init.stderr
            .contains("this owner token belongs to \"alice\", not to \"sam\""),
        "{init:?}"
    );
    assert_eq!(office.owner_balance_minor(&alice), 1_000, "nothing moved");
}

#[test]
fn an_unreachable_office_is_said_once() {
    let mut c = mpay();
    c.args(["office", "frauds", "--office", "http://127.0.0.1:9"])
        .args(["--admin-token", ADMIN_TOKEN]);
    let frauds = run(c, "frauds");
    assert_eq!(frauds.code, 1, "{frauds:?}");
    assert_eq!(
        frauds.stderr.matches("error sending request").count(),
        1,
        "{frauds:?}"
    );
    assert_eq!(frauds.stderr.lines().count(), 1, "{frauds:?}");
}

#[test]
fn an_unreadable_ca_is_named_and_nothing_is_sent() {
    let root = tempfile::tempdir().expect("temp dir");
    let ca = root.path().join("missing-ca.pem");
    let mut c = mpay();
    c.args(["office", "frauds", "--office", "https://127.0.0.1:9"])
        .args(["--admin-token", ADMIN_TOKEN])
        .env("MPAY_TLS_CA", &ca);
    let frauds = run(c, "frauds");
    assert_eq!(frauds.code, 1, "{frauds:?}");
    assert!(frauds.stderr.contains("missing-ca.pem"), "{frauds:?}");
    assert!(!frauds.stderr.contains("panicked"), "{frauds:?}");
    assert!(
        !frauds.stderr.contains("error sending request"),
        "{frauds:?}"
    );
}

#[test]
fn bank_open_account_again_says_nothing_changed() {
    let net = Network::start(&[]);
    net.open_account("bank1", "cust:carol", "20.00 EUR");
    let mut c = mpay();
    c.args(["bank", "open-account", "--bank", "bank1"])
        .args(["--account", "cust:carol", "--deposit", "20.00 EUR"])
        .arg("--network")
        .arg(net.path());
    let again = run(c, "bank open-account again");
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        again.stdout.trim(),
        "cust:carol was already open at bank1 (balance 20.00 EUR); nothing changed"
    );
    assert_eq!(net.balance_minor("bank1", "cust:carol"), 2_000);
}

#[test]
fn a_refused_payment_prints_its_json() {
    let net = Network::start(&[]);
    let customer = net.customer("carol", "cpp1", "bank1", "20.00 EUR");
    let shop = net.merchant("dora", "mpp1", "bank2");
    let terminal = Terminal::start(&shop, "5.00 EUR", None);
    let refused = pay(&customer, &terminal.uri, WRONG_PIN, &[]);
    assert_eq!(refused.code, 3, "{refused:?}");
    let error = refused.json();
    assert_eq!(error["error"], "wrong_pin", "{refused:?}");
    assert_eq!(error["state"], "refused", "{refused:?}");
    assert_eq!(net.balance_minor("bank1", "cust:carol"), 2_000);
}

#[test]
fn pending_shows_a_time_and_a_refund_right_after_completion_succeeds() {
    let net = Network::start(&[]);
    let customer = net.customer("carol", "cpp1", "bank1", "20.00 EUR");
    let shop = net.merchant("dora", "mpp1", "bank2");
    let terminal = Terminal::start(&shop, "5.00 EUR", None);
    let payer = spawn_pay(&customer, &terminal.uri, &[]);
    let mut c = mpay();
    c.args(["merchant", "pending", "--wait-secs", "20", "--merchant"])
        .arg(&shop);
    let pending = run(c, "merchant pending");
    assert_eq!(pending.code, 0, "{pending:?}");
    let line = pending.stdout.lines().next().unwrap_or_default().to_owned();
    // The decision deadline is a time, not epoch milliseconds.
    assert!(line.contains(" UTC (in "), "{pending:?}");
    assert!(
        !line
            .split_whitespace()
            .any(|w| w.len() >= 13 && w.bytes().all(|b| b.is_ascii_digit())),
        "{pending:?}"
    );
    let payment = line
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned();

    let mut c = mpay();
    c.args(["merchant", "approve", &payment, "--merchant"])
        .arg(&shop);
    let approved = run(c, "approve");
    assert_eq!(approved.code, 0, "{approved:?}");
    let paid = finish(payer, 60, "customer pay");
    assert_eq!(paid.code, 0, "{paid:?}");

    // Refunded as soon as the customer saw "completed".
    let mut c = mpay();
    c.args([
        "merchant",
        "refund",
        &payment,
        "--amount",
        "2.00 EUR",
        "--merchant",
    ])
    .arg(&shop);
    let refund = run(c, "refund");
    assert_eq!(refund.code, 0, "{refund:?}");
    assert!(refund.stdout.contains("refund of 2.00 EUR"), "{refund:?}");
    drop(terminal);

    // Conservation: carol paid 5.00 and got 2.00 back; dora holds the rest.
    assert_eq!(net.wait_balance("bank1", "cust:carol", 1_700, 30), 1_700);
    assert_eq!(net.wait_balance("bank2", "shop:dora", 300, 30), 300);
    let reconciled = net.reconcile();
    assert_eq!(reconciled.code, 0, "{reconciled:?}");
}

#[test]
fn resume_stay_stops_cleanly_on_sigint_and_speaks_only_of_its_own() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let alice = common::Wallet::create(&office, root.path(), "alice", "20.00 EUR", 47_791);
    let mut c = alice.net_command("resume", &["--stay", "--wait", "40"]);
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("resume starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(first.contains("serving on UDP"), "{first}");
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let done = finish(child, 20, "resume --stay");
    assert_eq!(done.code, 0, "{rest:?} {done:?}");
    assert!(rest.iter().any(|l| l == "nothing pending"), "{rest:?}");
    assert!(
        !rest.iter().any(|l| l.contains("answered")),
        "resume sells nothing: {rest:?}"
    );
    assert_eq!(alice.holding_minor(), 0);
}

#[test]
fn the_profile_is_kept_encrypted_and_shown_to_its_owner() {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("erin");
    let init = common::run(
        wallet(
            &dir,
            "init",
            &[
                "--json",
                "--kdf",
                "fast",
                "--no-enroll",
                "--owner",
                "erin",
                "--office",
                "http://127.0.0.1:9",
            ],
        ),
        "init",
    );
    assert_eq!(init.code, 0, "{init:?}");
    let cert = root.path().join("erin.pem");
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").expect("cert");
    let shipping = "Erin Example, 7 Hidden Road, Farville";
    let mut set = wallet(
        &dir,
        "profile",
        &[
            "set",
            "--json",
            "--shipping",
            shipping,
            "--payment",
            "card 4242",
        ],
    );
    set.arg("--certificate-file").arg(&cert);
    let set = common::run(set, "profile set");
    assert_eq!(set.code, 0, "{set:?}");
    // An empty value clears a field; the others stay.
    let clear = common::run(
        wallet(&dir, "profile", &["set", "--json", "--payment", ""]),
        "profile set",
    );
    assert_eq!(clear.code, 0, "{clear:?}");
    let shown = common::run(wallet(&dir, "profile", &["show", "--json"]), "show");
    assert_eq!(shown.code, 0, "{shown:?}");
    let profile = shown.json();
    assert_eq!(profile["shipping"], shipping);
    assert_eq!(profile["payment"], serde_json::Value::Null);
    assert!(
        profile["certificate"]
            .as_str()
            .is_some_and(|c| c.contains("MIIB"))
    );
    for entry in std::fs::read_dir(&dir).expect("dir") {
        let bytes = std::fs::read(entry.expect("entry").path()).unwrap_or_default();
        assert!(
            !bytes
                .windows(shipping.len())
                .any(|w| w == shipping.as_bytes()),
            "the shipping details lie in plain text in the wallet's files"
        );
    }
    let mut wrong = wallet(&dir, "profile", &["show", "--json"]);
    wrong.env("MPAY_PIN", "0000");
    let wrong = common::run(wrong, "show");
    assert_eq!(wrong.code, 3, "{wrong:?}");
}

/// `network init`'s micropayment amounts are written like every other
/// amount (`5.00` in the network's currency) and checked when typed, not
/// when a CPP starts on them (issue 16: one amount syntax).
#[test]
fn network_init_takes_micro_amounts_without_their_currency() {
    let root = tempfile::tempdir().expect("temp dir");
    let dir = root.path().join("net");
    let mut c = mpay();
    c.args(["network", "init", "--micro-mode", "one", "--plaintext"])
        .args(["--micro-limit", "0.50", "--micro-theta", "5.00"])
        .args(["--micro-credit-limit", "100 EUR", "--dir"])
        .arg(&dir);
    let init = run(c, "network init");
    assert_eq!(init.code, 0, "{init:?}");
    let config = std::fs::read_to_string(dir.join("cpp1.toml")).expect("cpp1.toml");
    for written in [
        "limit = \"0.50 EUR\"",
        "theta = \"5.00 EUR\"",
        "credit_limit = \"100.00 EUR\"",
    ] {
        assert!(config.contains(written), "{written} not in {config}");
    }

    let mut c = mpay();
    c.args(["network", "init", "--micro-mode", "one", "--plaintext"])
        .args(["--micro-theta", "5.001", "--dir"])
        .arg(root.path().join("refused"));
    let refused = run(c, "network init");
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("--micro-theta: amount \"5.001\": write it like `12.50` or `12.50 EUR`"),
        "{refused:?}"
    );
    assert!(!root.path().join("refused").join("cpp1.toml").exists());
}

/// A charge says what its sync uploaded: the genesis entry 0 and the
/// voucher's entry 1, which the office then attests (issue 16: a sync
/// spoke of "entry 2" when the office attested entry 1).
#[test]
fn a_charge_says_which_entry_it_uploaded() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let alice = common::Wallet::create(&office, root.path(), "alice", "200.00 EUR", 0);
    let charge = alice.run("charge", &["50.00"]);
    assert_eq!(charge.code, 0, "{charge:?}");
    assert!(
        charge
            .stdout
            .contains("office attests entry 1 with balance 50.00 EUR (uploaded entries 0–1)"),
        "{charge:?}"
    );
    assert!(!charge.stdout.contains("entry 2"), "{charge:?}");
    assert_eq!(
        office.owner_balance_minor(&alice.token) + alice.holding_minor(),
        20_000
    );
}

/// Two buyers answer and no terminal can ask which: exit 11 (its own code,
/// not 1), naming the buyers and `--buyer`; nothing moves.
#[test]
fn two_buyers_and_no_terminal_exit_11() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let port = common::free_udp_port();
    let seller = common::Wallet::create(&office, root.path(), "sam", "0.00 EUR", port);
    let bea = common::Wallet::create(&office, root.path(), "bea", "20.00 EUR", port);
    let bob = common::Wallet::create(&office, root.path(), "bob", "20.00 EUR", port);
    bea.charge("10.00");
    bob.charge("10.00");
    let buyers = [
        bea.spawn_buy("5.00", &["--wait", "8"]),
        bob.spawn_buy("5.00", &["--wait", "8"]),
    ];
    let mut sell = seller.net_command("sell", &["--amount", "1.00", "--wait", "4"]);
    sell.stdin(std::process::Stdio::null());
    let sold = run(sell, "sell to one of two buyers");
    for buyer in buyers {
        let _ = finish(buyer, 30, "buy");
    }
    assert_eq!(sold.code, 11, "{sold:?}");
    assert!(sold.stderr.contains("--buyer"), "{sold:?}");
    assert!(
        sold.stderr.contains(&bea.id) && sold.stderr.contains(&bob.id),
        "{sold:?}"
    );
    // Nothing moved: each buyer still holds its 10.00, the seller nothing.
    assert_eq!(bea.holding_minor(), 1_000);
    assert_eq!(bob.holding_minor(), 1_000);
    assert_eq!(seller.holding_minor(), 0);
}
