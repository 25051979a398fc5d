//! Micropayments end to end with real processes (DESIGN §3.3): a network
//! provisioned by `mpay network init --micro-mode …`, one `mpay serve …` per
//! process, customers and merchants through `mpay customer …` and
//! `mpay merchant …`, and after each scenario `mpay reconcile` and the
//! conservation of what the holder accounts hold.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::network::{Network, PIN, Terminal, pay, spawn_pay};
use common::{Run, finish, mpay, run};
use serde_json::Value;

/// `customer pay` exit code of a declined payment.
const EXIT_DECLINED: i32 = 4;
/// Longest a net settlement or payout may take to show at a bank, s.
const SETTLE_SECS_MAX: u64 = 20;

/// What every holder account (customers, shops, processors) holds over all
/// banks: it must always equal what was deposited.
fn holders_total(books: &BTreeMap<String, i64>) -> i64 {
    books
        .iter()
        .filter(|(k, _)| {
            let account = k.split('/').nth(1).unwrap_or("");
            ["cust:", "shop:", "cpp:", "mpp:"]
                .iter()
                .any(|p| account.starts_with(p))
        })
        .map(|(_, v)| v)
        .sum()
}

fn reconciled(net: &Network, after: &str) {
    let out = net.reconcile();
    assert_eq!(
        out.code,
        0,
        "reconcile after {after}: {out:?}\nstill moving:\n{}\ncpp1 log tail:\n{}",
        net.moving(),
        tail(&net.log("cpp1"), 30)
    );
    assert!(
        out.stdout.contains("nothing lost, nothing doubled"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("micropayment books checked"),
        "reconcile looked at the micropayment books: {out:?}"
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn status_json(out: &Run) -> Value {
    let line = out
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON status: {out:?}"));
    serde_json::from_str(line).expect("JSON status")
}

/// A payment to `shop` that the merchant's terminal approves; the payer's
/// run and its JSON status.
fn pay_approved(customer: &Path, shop: &Path, amount: &str) -> (Run, Value) {
    let terminal = Terminal::start(shop, amount, Some("approve"));
    let out = pay(customer, &terminal.uri, PIN, &[]);
    if out.code == 0 {
        let (code, lines) = terminal.finish();
        assert_eq!(code, 0, "terminal: {lines:?}");
    } else {
        // No PN reaches a terminal for a declined payment.
        stop(terminal);
    }
    let status = status_json(&out);
    (out, status)
}

fn stop(mut terminal: Terminal) {
    let _ = terminal.child.kill();
    let _ = terminal.child.wait();
}

/// The confirmation the CPP signed for a payment, as `mpay customer status`
/// prints it after verifying it ("DelayedTransfer", "Transferred", …).
fn confirmation(customer: &Path, id: &str) -> String {
    let mut c = mpay();
    c.args(["customer", "status", id, "--customer"])
        .arg(customer);
    let out = run(c, "customer status");
    assert_eq!(out.code, 0, "{out:?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("confirmation "))
        .unwrap_or_else(|| panic!("no confirmation: {out:?}"));
    assert!(line.ends_with("verified"), "{line}");
    line.split_whitespace().nth(1).expect("outcome").to_owned()
}

fn recluster(net: &Network) -> Run {
    let mut c = mpay();
    c.args(["cpp", "recluster", "--cpp", "cpp1", "--network"])
        .arg(net.path());
    run(c, "cpp recluster")
}

/// Mode one: DT below θ with no hold and no bank movement, one transfer at
/// θ, net settlement to the merchant; a failed aggregated transfer declines
/// its trigger and blocks the customer; the CPP SIGKILLed right after a θ
/// crossing; `mpay cpp recluster` refused with too few customers and run
/// with the minimum.
#[test]
fn one_intermediary_dt_theta_failed_transfer_crash_and_recluster() {
    let started = Instant::now();
    let mut net = Network::start(&[
        "--micro-mode",
        "one",
        "--micro-limit",
        "1.00 EUR",
        "--micro-theta",
        "3.00 EUR",
        "--micro-settle-interval-ms",
        "500",
        "--decision-timeout-ms",
        "20000",
    ]);
    let alice = net.customer("alice", "cpp1", "bank1", "20.00 EUR");
    let carol = net.customer("carol", "cpp1", "bank1", "1.00 EUR");
    let dave = net.customer("dave", "cpp1", "bank1", "10.00 EUR");
    let shop = net.merchant("shop1", "mpp1", "bank2");
    let mut deposited = 2_000 + 100 + 1_000;
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // 1. Below θ: DT confirmations, no hold, nothing moves at the bank.
    let mut below = 0;
    for amount in ["0.80 EUR", "0.90 EUR", "0.70 EUR"] {
        let (out, status) = pay_approved(&alice, &shop, amount);
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(status["state"], "completed", "{status}");
        let id = status["payment_id"].as_str().expect("id");
        assert_eq!(confirmation(&alice, id), "DelayedTransfer");
        assert_eq!(net.held_minor("bank1", "cust:alice"), 0, "no hold");
        assert_eq!(net.balance_minor("bank1", "cust:alice"), 2_000);
        below += common::network::minor(amount);
    }
    assert_eq!(below, 240);
    // cpp1 has no money of its own yet: its net settlement waits for what
    // it collects.
    assert_eq!(net.balance_minor("bank2", "shop:shop1"), 0);
    // The one that reaches θ: one transfer of the whole pending total.
    let (out, status) = pay_approved(&alice, &shop, "0.60 EUR");
    assert_eq!(out.code, 0, "{out:?}");
    let id = status["payment_id"].as_str().expect("id");
    assert_eq!(confirmation(&alice, id), "Transferred");
    assert_eq!(net.balance_minor("bank1", "cust:alice"), 2_000 - 300);
    assert_eq!(net.held_minor("bank1", "cust:alice"), 0);
    // Net settlement pays the merchant what was approved.
    assert_eq!(
        net.wait_balance("bank2", "shop:shop1", 300, SETTLE_SECS_MAX),
        300,
        "net settlement pays shop1"
    );
    reconciled(&net, "micropayments up to θ");
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // From here cpp1 has a float: it pays the MPPs on its customers'
    // behalf before it has collected from them.
    net.deposit("bank1", "cpp:cpp1", "10.00 EUR");
    deposited += 1_000;

    // 2. carol cannot cover her pending total: the trigger is declined and
    // so is every later micropayment of hers; nothing moves.
    for _ in 0..3 {
        let (out, status) = pay_approved(&carol, &shop, "0.90 EUR");
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(status["state"], "completed");
    }
    let (out, status) = pay_approved(&carol, &shop, "0.50 EUR");
    assert_eq!(out.code, EXIT_DECLINED, "{out:?}");
    assert_eq!(status["state"], "declined", "{status}");
    assert_eq!(status["reason"], "aggregate_transfer_failed", "{status}");
    let (out, status) = pay_approved(&carol, &shop, "0.10 EUR");
    assert_eq!(out.code, EXIT_DECLINED, "{out:?}");
    assert_eq!(status["reason"], "micro_blocked", "{status}");
    assert_eq!(net.balance_minor("bank1", "cust:carol"), 100);
    assert_eq!(net.held_minor("bank1", "cust:carol"), 0);
    // Her approved DT micropayments are still the CPP's debt to mpp1: it
    // pays them from its float and bears the default.
    assert_eq!(
        net.wait_balance("bank2", "shop:shop1", 300 + 270, SETTLE_SECS_MAX),
        300 + 270
    );
    assert_eq!(net.balance_minor("bank1", "cpp:cpp1"), 1_000 - 270);
    reconciled(&net, "a failed aggregated transfer");
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // 6a. Three customers with micropayments: too few for k-means.
    let out = recluster(&net);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.text().contains("too_few_customers") || out.text().contains("at least 8"),
        "{out:?}"
    );

    // 5. The CPP SIGKILLed right after the payment that crosses θ was
    // submitted: after the restart it ends once, and dave pays each
    // micropayment exactly once.
    for _ in 0..3 {
        let (out, _) = pay_approved(&dave, &shop, "0.90 EUR");
        assert_eq!(out.code, 0, "{out:?}");
    }
    assert_eq!(net.balance_minor("bank1", "cust:dave"), 1_000);
    let terminal = Terminal::start(&shop, "0.90 EUR", Some("approve"));
    let payer = spawn_pay(&dave, &terminal.uri, &[]);
    std::thread::sleep(Duration::from_millis(150));
    net.kill("cpp1");
    net.restart("cpp1");
    let out = finish(payer, 60, "payer across a CPP crash at θ");
    let dave_now = net.balance_minor("bank1", "cust:dave");
    let shop_want = if out.code == 0 {
        let (code, lines) = terminal.finish();
        assert_eq!(code, 0, "terminal: {lines:?}");
        let id = status_json(&out)["payment_id"]
            .as_str()
            .expect("id")
            .to_owned();
        assert_eq!(confirmation(&dave, &id), "Transferred");
        assert_eq!(dave_now, 1_000 - 360, "one transfer of 3.60: {out:?}");
        300 + 270 + 360
    } else {
        // Refused or declined across the crash: the deferred ones stay
        // pending and nothing was taken.
        stop(terminal);
        assert_eq!(dave_now, 1_000, "{out:?}");
        300 + 270
    };
    eprintln!("crossing payment across the CPP crash: exit {}", out.code);
    assert_eq!(
        net.wait_balance("bank2", "shop:shop1", shop_want, SETTLE_SECS_MAX),
        shop_want
    );
    reconciled(&net, "the CPP killed at a θ crossing");
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // 5b. The customer's bank is down when frank's payment crosses θ, so
    // the batch transfer cannot finish; the CPP is SIGKILLed with the batch
    // in flight and restarted, then the bank comes back: the batch ends
    // once and frank pays 3.60 once.
    let frank = net.customer("frank", "cpp1", "bank1", "10.00 EUR");
    deposited += 1_000;
    for _ in 0..3 {
        let (out, _) = pay_approved(&frank, &shop, "0.90 EUR");
        assert_eq!(out.code, 0, "{out:?}");
    }
    net.kill("bank1");
    let terminal = Terminal::start(&shop, "0.90 EUR", Some("approve"));
    let payer = spawn_pay(&frank, &terminal.uri, &[]);
    std::thread::sleep(Duration::from_millis(1_500));
    net.kill("cpp1");
    net.restart("cpp1");
    std::thread::sleep(Duration::from_millis(500));
    let early = terminal.lines_so_far();
    assert!(
        !early.iter().any(|l| l.starts_with("notice ")),
        "no PN before the batch transfer is made: {early:?}"
    );
    net.restart("bank1");
    let out = finish(payer, 60, "payer across a bank outage and a CPP crash");
    assert_eq!(out.code, 0, "{out:?}");
    let (code, lines) = terminal.finish();
    assert_eq!(code, 0, "terminal: {lines:?}");
    let id = status_json(&out)["payment_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(confirmation(&frank, &id), "Transferred");
    assert_eq!(net.balance_minor("bank1", "cust:frank"), 1_000 - 360);
    let shop_want = shop_want + 360;
    assert_eq!(
        net.wait_balance("bank2", "shop:shop1", shop_want, SETTLE_SECS_MAX),
        shop_want
    );
    reconciled(&net, "the customer's bank down and the CPP killed at θ");
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // 6b. alice, carol, dave and frank have micropayments; three more make
    // 7, one short of the minimum; the eighth makes the fit run.
    for n in 1..=4 {
        let name = format!("erin{n}");
        let file = net.customer(&name, "cpp1", "bank1", "5.00 EUR");
        deposited += 500;
        let (out, status) = pay_approved(&file, &shop, "0.50 EUR");
        assert_eq!(out.code, 0, "{out:?}");
        assert_eq!(status["state"], "completed");
        if n == 3 {
            let out = recluster(&net);
            assert_ne!(out.code, 0, "{out:?}");
            assert!(out.text().contains("7 customers"), "{out:?}");
        }
    }
    let out = recluster(&net);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("customers=8 "), "{out:?}");
    let placed: usize = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("cluster="))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix("customers="))
                .and_then(|n| n.parse::<usize>().ok())
        })
        .sum();
    assert_eq!(placed, 8, "every customer placed: {out:?}");
    // Payments go on after the recluster.
    let (out, _) = pay_approved(&alice, &shop, "0.40 EUR");
    assert_eq!(out.code, 0, "{out:?}");
    reconciled(&net, "a recluster");
    assert_eq!(holders_total(&net.quiet_books()), deposited);
    eprintln!("mode one scenario: {:?}", started.elapsed());
}

/// Mode two with the window: the MPP pays shop1 ahead of the money within
/// its credit limit, the window W settles each customer's total without θ,
/// net settlement repays the MPP and shop1 gets the rest.
#[test]
fn two_intermediaries_pay_out_within_credit_and_the_window_settles() {
    let started = Instant::now();
    let window_ms = 6_000;
    let net = Network::start(&[
        "--micro-mode",
        "two",
        "--micro-limit",
        "1.00 EUR",
        "--micro-theta",
        "50.00 EUR",
        "--micro-window-ms",
        &window_ms.to_string(),
        "--micro-credit-limit",
        "1.00 EUR",
        "--micro-settle-interval-ms",
        "300",
        "--decision-timeout-ms",
        "20000",
    ]);
    let alice = net.customer("alice", "cpp1", "bank1", "20.00 EUR");
    let bob = net.customer("bob", "cpp2", "bank3", "20.00 EUR");
    let shop = net.merchant("shop1", "mpp1", "bank2");
    net.deposit("bank2", "mpp:mpp1", "5.00 EUR");
    let deposited = 2_000 + 2_000 + 500;
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // alice's 0.90: DT, and mpp1 pays shop1 ahead of the money.
    let t0 = Instant::now();
    let (out, status) = pay_approved(&alice, &shop, "0.90 EUR");
    assert_eq!(out.code, 0, "{out:?}");
    let id = status["payment_id"].as_str().expect("id");
    assert_eq!(confirmation(&alice, id), "DelayedTransfer");
    assert_eq!(
        net.wait_balance("bank2", "shop:shop1", 90, SETTLE_SECS_MAX),
        90
    );
    let alice_then = net.balance_minor("bank1", "cust:alice");
    let ahead = t0.elapsed() < Duration::from_millis(window_ms);
    if ahead {
        assert_eq!(alice_then, 2_000, "paid out before alice's window");
    }

    // bob's 0.90 (another CPP): 1.80 would take mpp1 past its 1.00, so
    // shop1 waits for the money as long as no CPP has settled.
    let (out, status) = pay_approved(&bob, &shop, "0.90 EUR");
    assert_eq!(out.code, 0, "{out:?}");
    let id = status["payment_id"].as_str().expect("id");
    assert_eq!(confirmation(&bob, id), "DelayedTransfer");
    std::thread::sleep(Duration::from_millis(600));
    let shop_now = net.balance_minor("bank2", "shop:shop1");
    let nobody_settled = net.balance_minor("bank1", "cust:alice") == 2_000
        && net.balance_minor("bank3", "cust:bob") == 2_000;
    if nobody_settled {
        assert_eq!(shop_now, 90, "mpp1 stays within its credit limit");
    }
    eprintln!("credit limit observed before any window: {nobody_settled}");

    // The window settles both totals without θ; mpp1 is repaid and pays
    // shop1 the rest.
    assert_eq!(
        net.wait_balance("bank1", "cust:alice", 2_000 - 90, SETTLE_SECS_MAX),
        2_000 - 90,
        "the window settles alice's 0.90"
    );
    assert_eq!(
        net.wait_balance("bank3", "cust:bob", 2_000 - 90, SETTLE_SECS_MAX),
        2_000 - 90,
        "the window settles bob's 0.90"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(window_ms),
        "not before W"
    );
    assert_eq!(
        net.wait_balance("bank2", "shop:shop1", 180, SETTLE_SECS_MAX),
        180
    );
    assert_eq!(
        net.wait_balance("bank2", "mpp:mpp1", 500, SETTLE_SECS_MAX),
        500,
        "mpp1's float is whole again"
    );
    assert_eq!(
        net.wait_balance("bank1", "cpp:cpp1", 0, SETTLE_SECS_MAX),
        0,
        "cpp1 passed on all it collected"
    );
    reconciled(&net, "mode two payouts and the window");
    assert_eq!(holders_total(&net.quiet_books()), deposited);

    // shop1's standing approval: mpp1 approves a covered micropayment with
    // no terminal answering; one above it waits for a decision.
    let set = standing(
        &shop,
        &["set", "--per-payment", "0.50", "--per-period", "1.00"],
    );
    assert!(
        set.stdout
            .contains("up to 0.50 EUR a payment, 1.00 EUR a period of 24 h"),
        "{set:?}"
    );
    let terminal = Terminal::start(&shop, "0.40 EUR", None);
    let out = pay(&alice, &terminal.uri, PIN, &[]);
    stop(terminal);
    assert_eq!(out.code, 0, "approved with no one at the terminal: {out:?}");
    let id = status_json(&out)["payment_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(confirmation(&alice, &id), "DelayedTransfer");
    let mut c = mpay();
    c.args(["merchant", "status", &id, "--merchant"]).arg(&shop);
    let status = run(c, "merchant status");
    assert!(
        status
            .stdout
            .contains("approved at once under the standing approval"),
        "{status:?}"
    );
    let shown = standing(&shop, &["show", "--json"]);
    let shown: Value = serde_json::from_str(shown.stdout.trim()).expect("JSON");
    assert_eq!(shown["used_in_period"], "0.40 EUR", "{shown}");
    // Above the amount per payment: a decision is needed, and given.
    let (out, status) = pay_approved(&alice, &shop, "0.60 EUR");
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(status["state"], "completed", "{status}");
    let withdrawn = standing(&shop, &["withdraw"]);
    assert!(withdrawn.stdout.contains("withdrawn"), "{withdrawn:?}");
    let none = standing(&shop, &["show"]);
    assert!(none.stdout.contains("no standing approval"), "{none:?}");
    reconciled(&net, "micropayments under a standing approval");
    assert_eq!(holders_total(&net.quiet_books()), deposited);
    eprintln!("mode two scenario: {:?}", started.elapsed());
}

/// `mpay merchant standing …` for `shop`; must succeed.
fn standing(shop: &Path, args: &[&str]) -> Run {
    let mut c = mpay();
    c.args(["merchant", "standing"])
        .args(args)
        .arg("--merchant")
        .arg(shop);
    let out = run(c, "merchant standing");
    assert_eq!(out.code, 0, "{out:?}");
    out
}
