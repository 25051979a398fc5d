//! The SEMOPS network end to end with real processes over HTTP: three
//! banks, two DCs, two CPPs and two MPPs started by `mpay serve`, driven by
//! `mpay customer …`, `mpay merchant …` and `mpay bank …`, checked by
//! `mpay reconcile` after each scenario.

mod common;

use std::collections::BTreeMap;

use common::Run;
use common::network::{Network, PIN, Terminal, WRONG_PIN, pay, spawn_pay};
use common::{finish, mpay, run};
use serde_json::Value;

/// What every holder account (customers, shops, processors) holds over all
/// banks: it must always equal what was deposited.
fn holders_total(books: &BTreeMap<String, i64>) -> i64 {
    books
        .iter()
        .filter(|(k, _)| {
            let account = k.split('/').nth(1).unwrap_or("");
            account.starts_with("cust:")
                || account.starts_with("shop:")
                || account.starts_with("cpp:")
                || account.starts_with("mpp:")
        })
        .map(|(_, v)| v)
        .sum()
}

fn reconciled(net: &Network, after: &str) {
    let out = net.reconcile();
    assert_eq!(out.code, 0, "reconcile after {after}: {out:?}");
    assert!(
        out.stdout.contains("nothing lost, nothing doubled"),
        "{out:?}"
    );
}

fn status_json(out: &common::Run) -> Value {
    let line = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON status: {out:?}"));
    serde_json::from_str(line).expect("JSON status")
}

#[test]
fn payments_at_home_and_abroad_rejection_expiry_refund_lockout_and_duplicates() {
    let net = Network::start(&["--decision-timeout-ms", "10000"]);
    let alice = net.customer("alice", "cpp1", "bank1", "100.00 EUR");
    let bob = net.customer("bob", "cpp2", "bank3", "50.00 EUR");
    let shop = net.merchant("shop1", "mpp1", "bank2");
    let store = net.merchant("store2", "mpp2", "bank3");
    let deposited = 15_000;
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // Domestic: alice (cpp1, bank1) pays shop1 (mpp1, bank2) 12.50.
    let terminal = Terminal::start(&shop, "12.50 EUR", Some("approve"));
    let out = pay(&alice, &terminal.uri, PIN, &[]);
    assert_eq!(out.code, 0, "domestic payment: {out:?}");
    let first = status_json(&out);
    assert_eq!(first["state"], "completed");
    let first_id = first["payment_id"].as_str().expect("id").to_owned();
    let (code, lines) = terminal.finish();
    assert_eq!(code, 0, "terminal: {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("confirmation T")),
        "{lines:?}"
    );
    reconciled(&net, "a domestic payment");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 8_750);
    assert_eq!(net.balance_minor("bank2", "shop:shop1"), 1_250);

    // International: alice (region eu) pays store2 (mpp2, region us, bank3).
    let terminal = Terminal::start(&store, "20.00 EUR", Some("approve"));
    let out = pay(&alice, &terminal.uri, PIN, &[]);
    assert_eq!(out.code, 0, "international payment: {out:?}");
    assert_eq!(terminal.finish().0, 0);
    reconciled(&net, "an international payment");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 6_750);
    assert_eq!(net.balance_minor("bank3", "shop:store2"), 2_000);

    // Rejection: the hold is voided, nothing moves.
    let terminal = Terminal::start(&shop, "5.00 EUR", Some("reject"));
    let out = pay(&alice, &terminal.uri, PIN, &[]);
    assert_eq!(out.code, 6, "rejected payment: {out:?}");
    assert_eq!(status_json(&out)["state"], "rejected");
    let _ = terminal.finish();
    reconciled(&net, "a rejection");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 6_750);

    // Refund of part of the first payment: back the way it came.
    let mut refund = mpay();
    refund
        .args([
            "merchant",
            "refund",
            &first_id,
            "--amount",
            "2.50 EUR",
            "--merchant",
        ])
        .arg(&shop);
    let out = run(refund, "merchant refund");
    assert_eq!(out.code, 0, "refund: {out:?}");
    reconciled(&net, "a refund");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 7_000);
    assert_eq!(net.balance_minor("bank2", "shop:shop1"), 1_000);
    // The merchant retries the same command (its answer was lost): the same
    // refund under the same derived key, nothing moves twice.
    let mut retry = mpay();
    retry
        .args([
            "merchant",
            "refund",
            &first_id,
            "--amount",
            "2.50 EUR",
            "--merchant",
        ])
        .arg(&shop);
    let again = run(retry, "merchant refund retried");
    assert_eq!(again.code, 0, "retry: {again:?}");
    reconciled(&net, "a retried refund");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 7_000, "{again:?}");
    assert_eq!(net.balance_minor("bank2", "shop:shop1"), 1_000);
    let key_of = |out: &common::Run| {
        out.stdout
            .split("idempotency key ")
            .nth(1)
            .map(|k| k.trim().trim_end_matches(')').to_owned())
    };
    assert!(key_of(&out).is_some(), "{out:?}");
    assert_eq!(key_of(&again), key_of(&out), "{out:?} {again:?}");
    let mut status = mpay();
    status
        .args(["customer", "status", &first_id, "--json", "--customer"])
        .arg(&alice);
    let out = run(status, "customer status");
    assert_eq!(status_json(&out)["refunded"], "2.50 EUR", "{out:?}");
    // More than what is left to refund is refused and moves nothing.
    let mut too_much = mpay();
    too_much
        .args([
            "merchant",
            "refund",
            &first_id,
            "--amount",
            "10.01 EUR",
            "--merchant",
        ])
        .arg(&shop);
    assert_ne!(run(too_much, "refund too much").code, 0);

    // Expiry: nobody decides; after the decision timeout the hold is voided
    // and a late approval changes nothing.
    let terminal = Terminal::start(&shop, "3.00 EUR", None);
    let out = pay(&alice, &terminal.uri, PIN, &[]);
    assert_eq!(out.code, 7, "expired payment: {out:?}");
    let expired_id = status_json(&out)["payment_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let _ = terminal.finish();
    let mut late = mpay();
    late.args(["merchant", "approve", &expired_id, "--merchant"])
        .arg(&shop);
    let _ = run(late, "late approval");
    reconciled(&net, "an expiry and a late approval");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 7_000);
    assert_eq!(net.balance_minor("bank2", "shop:shop1"), 1_000);

    // A duplicated submission (same idempotency key): one payment, one hold.
    let key = "0123456789abcdef0123456789abcdef";
    let terminal = Terminal::start(&shop, "1.00 EUR", Some("approve"));
    let once = pay(&alice, &terminal.uri, PIN, &["--key", key]);
    assert_eq!(once.code, 0, "{once:?}");
    let twice = pay(&alice, &terminal.uri, PIN, &["--key", key]);
    assert_eq!(twice.code, 0, "{twice:?}");
    assert_eq!(
        status_json(&once)["payment_id"],
        status_json(&twice)["payment_id"]
    );
    let _ = terminal.finish();
    reconciled(&net, "a duplicated submission");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 6_900);

    // Wrong PINs lock bob out after 5; the right PIN is then refused too,
    // until the CPP's operator unlocks him.
    let terminal = Terminal::start(&shop, "4.00 EUR", Some("approve"));
    for attempt in 1..=5 {
        let out = pay(&bob, &terminal.uri, WRONG_PIN, &[]);
        assert!(
            out.code == 3 || (attempt == 5 && out.code == 5),
            "wrong PIN attempt {attempt}: {out:?}"
        );
    }
    let out = pay(&bob, &terminal.uri, PIN, &[]);
    assert_eq!(out.code, 5, "locked: {out:?}");
    let mut unlock = mpay();
    unlock
        .args([
            "customer",
            "unlock",
            "--cpp",
            "cpp2",
            "--name",
            "bob",
            "--network",
        ])
        .arg(net.path());
    assert_eq!(run(unlock, "unlock").code, 0);
    let out = pay(&bob, &terminal.uri, PIN, &[]);
    assert_eq!(out.code, 0, "after unlock: {out:?}");
    assert_eq!(terminal.finish().0, 0);
    reconciled(&net, "a lockout");
    assert_eq!(net.balance_minor("bank3", "cust:bob"), 4_600);

    // Every customer's PIN is a verification value under cpp2's current key.
    let mut pins = mpay();
    pins.args(["cpp", "pins", "--cpp", "cpp2", "--json", "--network"])
        .arg(net.path());
    let out = run(pins, "cpp pins");
    assert_eq!(out.code, 0, "{out:?}");
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    assert!(report["customers"].as_u64() >= Some(1), "{report}");
    assert_eq!(report["current_key"], report["customers"], "{report}");
    assert_eq!(report["argon2"], 0, "{report}");

    // Money: nothing created or lost over all of it.
    assert_eq!(holders_total(&net.quiet_books()), deposited);
}

#[test]
fn a_service_killed_mid_payment_resumes_and_the_payment_ends_once() {
    let mut net = Network::start(&["--decision-timeout-ms", "20000"]);
    let alice = net.customer("alice", "cpp1", "bank1", "100.00 EUR");
    let shop = net.merchant("shop1", "mpp1", "bank2");
    let store = net.merchant("store2", "mpp2", "bank3");
    let deposited = 10_000;

    // The CPP dies after placing the hold and sending the PN; the merchant
    // approves while it is down; it restarts and finishes the payment.
    let terminal = Terminal::start(&shop, "10.00 EUR", None);
    let payer = spawn_pay(&alice, &terminal.uri, &[]);
    let mut pending = mpay();
    pending
        .args([
            "merchant",
            "pending",
            "--json",
            "--wait-secs",
            "20",
            "--merchant",
        ])
        .arg(&shop);
    let out = run(pending, "merchant pending");
    let notices: Vec<Value> = serde_json::from_str(out.stdout.trim()).expect("notices");
    let id = notices[0]["payment_id"].as_str().expect("id").to_owned();
    net.kill("cpp1");
    let mut approve = mpay();
    approve
        .args(["merchant", "approve", &id, "--merchant"])
        .arg(&shop);
    assert_eq!(run(approve, "approve").code, 0);
    std::thread::sleep(std::time::Duration::from_millis(500));
    net.restart("cpp1");
    let out = finish(payer, 60, "payer across a CPP crash");
    assert_eq!(out.code, 0, "{out:?}");
    let _ = finish(terminal.child, 5, "terminal");
    reconciled(&net, "a CPP killed mid-payment");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 9_000);
    assert_eq!(net.balance_minor("bank2", "shop:shop1"), 1_000);

    // The home DC is down when the PN leaves the CPP: the outbox keeps it
    // until the DC is back. Then the foreign MPP dies before the merchant
    // decides, and comes back with the notice still there.
    net.kill("dc1");
    let terminal = Terminal::start(&store, "7.00 EUR", Some("approve"));
    let payer = spawn_pay(&alice, &terminal.uri, &[]);
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    net.restart("dc1");
    let out = finish(payer, 60, "payer across a DC outage");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(terminal.finish().0, 0);
    reconciled(&net, "a DC killed before the PN");

    let terminal = Terminal::start(&store, "3.00 EUR", None);
    let payer = spawn_pay(&alice, &terminal.uri, &[]);
    let mut pending = mpay();
    pending
        .args([
            "merchant",
            "pending",
            "--json",
            "--wait-secs",
            "20",
            "--merchant",
        ])
        .arg(&store);
    let out = run(pending, "merchant pending");
    let notices: Vec<Value> = serde_json::from_str(out.stdout.trim()).expect("notices");
    let id = notices[0]["payment_id"].as_str().expect("id").to_owned();
    net.kill("mpp2");
    net.restart("mpp2");
    let mut approve = mpay();
    approve
        .args(["merchant", "approve", &id, "--merchant"])
        .arg(&store);
    assert_eq!(run(approve, "approve after MPP restart").code, 0);
    let out = finish(payer, 60, "payer across an MPP crash");
    assert_eq!(out.code, 0, "{out:?}");
    let _ = finish(terminal.child, 5, "terminal");
    reconciled(&net, "an MPP killed before the decision");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 8_000);
    assert_eq!(net.balance_minor("bank3", "shop:store2"), 1_000);

    // A burst of payments with the CPP killed in the middle: each ends
    // completed or voided, exactly once.
    let terminals: Vec<Terminal> = (0..4)
        .map(|_| Terminal::start(&shop, "2.00 EUR", Some("approve")))
        .collect();
    let payers: Vec<_> = terminals
        .iter()
        .map(|t| spawn_pay(&alice, &t.uri, &[]))
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    net.kill("cpp1");
    net.restart("cpp1");
    let mut completed = 0;
    for payer in payers {
        let out = finish(payer, 90, "payer in a burst");
        if out.code == 0 {
            completed += 1;
        }
    }
    for t in terminals {
        let _ = t.finish();
    }
    reconciled(&net, "a CPP killed in a burst");
    let alice_now = net.balance_minor("bank1", "cust:alice");
    let shop_now = net.balance_minor("bank2", "shop:shop1");
    assert_eq!(
        alice_now + shop_now,
        8_000 + 1_000,
        "what alice lost shop1 got"
    );
    assert!(completed <= 4);
    assert_eq!(holders_total(&net.quiet_books()), deposited);
}

/// `mpay merchant …` with the merchant's file last.
fn merchant_run(merchant: &std::path::Path, args: &[&str], what: &str) -> Run {
    let mut c = mpay();
    c.args(["merchant"])
        .args(args)
        .arg("--merchant")
        .arg(merchant);
    run(c, what)
}

/// The last JSON line of a run.
fn last_json(out: &Run) -> Value {
    let line = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{') || l.starts_with('['))
        .unwrap_or_else(|| panic!("no JSON: {out:?}"));
    serde_json::from_str(line).expect("JSON")
}

/// Every file under `dir` (the services' databases and WALs, the parties'
/// files, the logs), read whole.
fn files_under(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push((path, bytes));
            }
        }
    }
    out
}

/// `--share-shipping`: the merchant reads the details with the payment
/// (`pending`, `--json`, `approve`, `status`); no file of the network (the
/// CPP's, DCs' and MPPs' databases included) holds a line of them; without
/// the flag nothing is shared; an oversized text is refused before anything
/// is sent.
#[test]
fn shipping_details_shared_at_checkout_reach_the_merchant_only() {
    const ADDRESS: &str = "Alice Liddell\nFlat 3, 29 Christ Church Lane\nOxford OX1 1DP";
    let net = Network::start(&["--decision-timeout-ms", "20000"]);
    let alice = net.customer("alice", "cpp1", "bank1", "100.00 EUR");
    let shop = net.merchant("shop1", "mpp1", "bank2");
    let deposited = 10_000;

    // Too long: refused by the customer's device, nothing sent or moved.
    let long = "x".repeat(1025);
    let out = pay(
        &alice,
        &terminal_uri_again(&shop),
        PIN,
        &["--share-shipping", &long],
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains("--share-shipping") && out.stderr.contains("1024"),
        "{out:?}"
    );
    let out = merchant_run(&shop, &["pending", "--json"], "merchant pending");
    assert_eq!(last_json(&out), serde_json::json!([]), "{out:?}");

    // Shared: sealed to shop1, carried by cpp1, dc-eu and mpp1.
    let uri = terminal_uri_again(&shop);
    let payer = spawn_pay(&alice, &uri, &["--share-shipping", ADDRESS]);
    let out = merchant_run(
        &shop,
        &["pending", "--wait-secs", "20", "--json"],
        "merchant pending --json",
    );
    assert_eq!(out.code, 0, "{out:?}");
    let pending = last_json(&out);
    let notice = &pending[0];
    assert_eq!(notice["shipping_details"], ADDRESS, "{out:?}");
    let sealed = notice["shipping"].as_str().expect("the sealed blob");
    assert!(!sealed.is_empty());
    let id = notice["payment_id"].as_str().expect("id").to_owned();
    let out = merchant_run(&shop, &["pending"], "merchant pending");
    assert!(
        out.stdout.contains("  ship to: Alice Liddell\n")
            && out.stdout.contains("           Oxford OX1 1DP\n"),
        "{out:?}"
    );
    let out = merchant_run(&shop, &["approve", &id], "merchant approve");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("ship to: Alice Liddell"), "{out:?}");
    let paid = finish(payer, 60, "customer pay");
    assert_eq!(paid.code, 0, "{paid:?}");
    let out = merchant_run(
        &shop,
        &["status", &id, "--wait-secs", "20", "--json"],
        "merchant status",
    );
    assert_eq!(last_json(&out)["shipping_details"], ADDRESS, "{out:?}");
    reconciled(&net, "a payment sharing shipping details");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 9_700);
    assert_eq!(net.balance_minor("bank2", "shop:shop1"), 300);
    assert_eq!(holders_total(&net.quiet_books()), deposited);
    let files = files_under(net.dir.path());
    assert!(
        files
            .iter()
            .any(|(p, _)| p.extension().is_some_and(|e| e == "db")),
        "the services' databases are in the network folder"
    );
    for (path, bytes) in &files {
        for line in ADDRESS.lines() {
            assert!(
                !bytes.windows(line.len()).any(|w| w == line.as_bytes()),
                "{} holds `{line}`",
                path.display()
            );
        }
    }

    // Not shared: no shipping field reaches the merchant.
    let uri = terminal_uri_again(&shop);
    let payer = spawn_pay(&alice, &uri, &[]);
    let out = merchant_run(
        &shop,
        &["pending", "--wait-secs", "20", "--json"],
        "merchant pending --json",
    );
    let notice = &last_json(&out)[0];
    let fields = notice.as_object().expect("an object");
    assert!(fields.contains_key("payment_id"), "{out:?}");
    for key in ["shipping", "shipping_details", "shipping_error"] {
        assert!(!fields.contains_key(key), "{key}: {out:?}");
    }
    let id = notice["payment_id"].as_str().expect("id").to_owned();
    let out = merchant_run(&shop, &["reject", &id], "merchant reject");
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains("ship to"), "{out:?}");
    assert_eq!(finish(payer, 60, "customer pay").code, 6);
    reconciled(&net, "a payment sharing nothing");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 9_700);
    assert_eq!(holders_total(&net.quiet_books()), deposited);
}

/// A fresh TRANS URI of 3.00 EUR from `shop` (its terminal exits at once).
fn terminal_uri_again(shop: &std::path::Path) -> String {
    let terminal = Terminal::start(shop, "3.00 EUR", None);
    let uri = terminal.uri.clone();
    assert_eq!(terminal.finish().0, 0);
    uri
}
