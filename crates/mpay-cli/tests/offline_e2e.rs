//! The offline wallet end to end with real processes: a money office
//! (`mpay office serve`, SQLite), wallets in their own directories driven by
//! `mpay wallet …`, purchases over UDP on loopback.
//!
//! Every test has its own office and its own multicast port, so tests that
//! run at once never hear each other's LOOKUPs.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    Office, Wallet, copy_dir, finish, free_udp_port, lines_of, minor, rest_of, wait_for_line,
};
use serde_json::Value;

/// Transactions by what each wallet's chain says of them: `receive` txs
/// (seller side) and `pay` txs with their status (buyer side).
#[derive(Default, Debug)]
struct Ledger {
    received: BTreeSet<String>,
    paid: BTreeSet<String>,
    locked: BTreeSet<String>,
    voided: BTreeSet<String>,
}

fn ledger(wallets: &[&Wallet]) -> Ledger {
    let mut l = Ledger::default();
    for w in wallets {
        for e in w.history() {
            let tx = e["tx"].as_str().unwrap_or_default().to_owned();
            match (e["kind"].as_str(), e["status"].as_str()) {
                (Some("receive"), _) => {
                    assert!(l.received.insert(tx), "a sale received twice");
                }
                (Some("pay"), Some("paid")) => {
                    l.paid.insert(tx);
                }
                (Some("pay"), Some("locked")) => {
                    l.locked.insert(tx);
                }
                (Some("pay"), Some("voided")) => {
                    l.voided.insert(tx);
                }
                _ => {}
            }
        }
    }
    l
}

/// Σ owner accounts + Σ wallet holdings (balance + locked), minor units.
fn total_money(office: &Office, owners: &[&str], wallets: &[&Wallet]) -> i64 {
    let owners: i64 = owners.iter().map(|t| office.owner_balance_minor(t)).sum();
    let wallets: i64 = wallets.iter().map(|w| w.holding_minor()).sum();
    owners + wallets
}

/// Every wallet syncs; the office then attests each wallet's balance.
fn sync_all(wallets: &[&Wallet]) {
    for w in wallets {
        let sync = w.ok_json("sync", &[]);
        let balance = w.balance();
        assert_eq!(balance["unsynced_entries"], 0, "{}: {balance}", w.name);
        assert_eq!(
            sync["attested_balance_minor"], balance["balance_minor"],
            "{}: the office attests another balance",
            w.name
        );
    }
}

/// Lets every wallet finish what is still open (an uncertain payment, an
/// unacknowledged sale): all run `resume` at once, so each can answer the
/// others.
fn settle(wallets: &[&Wallet], extra: &[&str]) {
    let pending = |w: &Wallet| {
        let b = w.balance();
        !b["prepared"].as_array().is_none_or(|a| a.is_empty())
            || !b["committing"].as_array().is_none_or(|a| a.is_empty())
    };
    if !wallets.iter().any(|w| pending(w)) {
        return;
    }
    let children: Vec<_> = wallets
        .iter()
        .map(|w| {
            let mut args = vec!["--json", "--wait", "12"];
            if !pending(w) {
                args.push("--stay");
            }
            args.extend_from_slice(extra);
            w.net_command("resume", &args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("resume starts")
        })
        .collect();
    for (w, child) in wallets.iter().zip(children) {
        let out = finish(child, 30, "resume");
        assert_eq!(out.code, 0, "{} resume: {out:?}", w.name);
    }
}

/// Scenario 1: purchases between three wallets over UDP with 30 % of the
/// received datagrams dropped; every wallet syncs; sales and payments agree,
/// the office's books agree and money is conserved.
#[test]
fn purchases_over_a_lossy_link_agree_and_conserve_money() {
    let started = Instant::now();
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let port = 47_801;
    let a = Wallet::create(&office, root.path(), "alice", "200.00 EUR", port);
    let b = Wallet::create(&office, root.path(), "bob", "200.00 EUR", port);
    let c = Wallet::create(&office, root.path(), "carol", "200.00 EUR", port);
    let deposits = minor("600.00 EUR");
    for w in [&a, &b, &c] {
        w.charge("60.00");
    }
    let all = [&a, &b, &c];
    let tokens = [a.token.as_str(), b.token.as_str(), c.token.as_str()];
    assert_eq!(total_money(&office, &tokens, &all), deposits);

    let loss = ["--drop-permille", "300"];
    let sales = [
        (&a, &b, "7.25"),
        (&b, &c, "3.10"),
        (&c, &a, "12.00"),
        (&a, &c, "0.99"),
        (&b, &a, "5.00"),
        (&c, &b, "8.40"),
    ];
    let mut committed = BTreeMap::new();
    let mut paid_by_buyer = BTreeSet::new();
    for (seller, buyer, amount) in sales {
        let buy = buyer.spawn_buy(amount, &[&["--wait", "20"][..], &loss[..]].concat());
        let sell = seller.spawn_sell(
            amount,
            &buyer.id,
            &[&["--wait", "12"][..], &loss[..]].concat(),
        );
        let sold = finish(sell, 30, "sell");
        let bought = finish(buy, 30, "buy");
        let sold_json = sold.json();
        if sold.code == 0 {
            let tx = sold_json["tx"].as_str().expect("tx").to_owned();
            assert!(
                matches!(
                    sold_json["outcome"].as_str(),
                    Some("completed" | "committed_unacknowledged")
                ),
                "{sold_json}"
            );
            committed.insert(
                tx,
                (
                    seller.name.clone(),
                    buyer.name.clone(),
                    minor(&format!("{amount} EUR")),
                ),
            );
        } else {
            eprintln!("sale {}→{} not made: {sold_json}", seller.name, buyer.name);
        }
        if bought.code == 0 {
            let json = bought.json();
            assert_eq!(json["outcome"], "paid", "{json}");
            paid_by_buyer.insert(json["tx"].as_str().expect("tx").to_owned());
        }
    }
    // With 30 % loss the retries carry most sales through.
    assert!(
        committed.len() >= sales.len() / 2,
        "only {} of {} sales committed",
        committed.len(),
        sales.len()
    );
    settle(&all, &loss);
    sync_all(&all);

    let l = ledger(&all);
    // Every sale a seller reported committed is paid on the buyer's side.
    for tx in committed.keys() {
        assert!(
            l.paid.contains(tx),
            "sale {tx} committed but not paid: {l:?}"
        );
    }
    // Every payment a buyer reported is a sale its seller holds.
    for tx in &paid_by_buyer {
        assert!(
            l.received.contains(tx),
            "payment {tx} without its sale: {l:?}"
        );
    }
    // Atomicity: the sales received are exactly the payments that stand.
    assert_eq!(l.received, l.paid, "{l:?}");
    assert!(l.locked.is_empty(), "payments still locked: {l:?}");
    // The wallets moved money among themselves only.
    let wallets_total: i64 = all.iter().map(|w| w.holding_minor()).sum();
    assert_eq!(wallets_total, minor("180.00 EUR"));
    // The office's books: each owner was charged exactly what its wallet
    // loaded, and money is conserved.
    for token in tokens {
        assert_eq!(office.owner_balance_minor(token), minor("140.00 EUR"));
    }
    assert_eq!(total_money(&office, &tokens, &all), deposits);

    // Redeeming moves value back to the owner's account, still conserved.
    let redeemed = a.ok_json("redeem", &["5.00 EUR"]);
    assert_eq!(
        redeemed["sync"]["attested_balance_minor"],
        redeemed["balance_minor"]
    );
    assert_eq!(office.owner_balance_minor(&a.token), minor("145.00 EUR"));
    assert_eq!(total_money(&office, &tokens, &all), deposits);
    assert!(office.frauds().as_array().is_some_and(|f| f.is_empty()));
    eprintln!(
        "lossy purchases: {} committed of {}, {:.1} s",
        committed.len(),
        sales.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Scenario 2: a wallet process SIGKILLed in the middle of a transfer,
/// restarted, and everything resolved: both sides agree, money conserved.
/// (a) the buyer dies right after agreeing (funds locked, outcome unknown)
/// and finishes with `resume`; (b) the seller dies after the buyer agreed
/// and comes back on the same address with `resume`.
#[test]
fn a_killed_wallet_finishes_its_transfer_after_restart() {
    let started = Instant::now();
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let port = 47_802;
    let seller = Wallet::create(&office, root.path(), "shop", "100.00 EUR", port);
    let buyer = Wallet::create(&office, root.path(), "dave", "100.00 EUR", port);
    buyer.charge("50.00");
    let both = [&seller, &buyer];
    let tokens = [seller.token.as_str(), buyer.token.as_str()];
    let deposits = minor("200.00 EUR");

    // (a) The buyer is killed right after it agreed and locked the funds.
    let mut buy = buyer
        .net_command("buy", &["--yes", "--max", "9.00", "--wait", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("buy starts");
    let buy_lines = lines_of(&mut buy);
    let sell = seller.spawn_sell("9.00", &buyer.id, &["--wait", "25"]);
    wait_for_line(&buy_lines, "agreed, funds locked", 20);
    buy.kill().expect("SIGKILL the buyer");
    let _ = buy.wait();
    let killed_after = rest_of(&buy_lines);
    let restarted = buyer.run(
        "resume",
        &["--json", "--wait", "20", "--broadcast", &buyer.broadcast],
    );
    assert_eq!(restarted.code, 0, "{restarted:?}");
    let resumed = restarted.json();
    assert_eq!(resumed["settled"], true, "{resumed}");
    let sold = finish(sell, 30, "sell");
    assert_eq!(sold.code, 0, "{sold:?}");
    let sold = sold.json();
    let tx_a = sold["tx"].as_str().expect("tx").to_owned();
    eprintln!(
        "(a) buyer killed after {killed_after:?}; resume log {}",
        resumed["log"]
    );
    let l = ledger(&both);
    assert!(
        l.paid.contains(&tx_a) && l.received.contains(&tx_a),
        "{l:?}"
    );
    assert!(l.locked.is_empty(), "{l:?}");

    // (b) The seller is killed after the buyer agreed; it comes back on the
    // same UDP address and finishes (COMMIT if it had committed, ABORT if it
    // had not: presumed abort).
    let seller_bind = format!("127.0.0.1:{}", free_udp_port());
    let mut buy = buyer
        .net_command("buy", &["--yes", "--max", "4.00", "--wait", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("buy starts");
    let buy_lines = lines_of(&mut buy);
    let mut sell = seller.spawn_sell("4.00", &buyer.id, &["--wait", "25", "--bind", &seller_bind]);
    wait_for_line(&buy_lines, "agreed, funds locked", 20);
    sell.kill().expect("SIGKILL the seller");
    let _ = sell.wait();
    let resume = seller
        .net_command(
            "resume",
            &["--json", "--wait", "8", "--stay", "--bind", &seller_bind],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("resume starts");
    let bought = finish(buy, 40, "buy");
    let bought_lines = rest_of(&buy_lines);
    let resumed = finish(resume, 30, "seller resume");
    assert_eq!(resumed.code, 0, "{resumed:?}");
    let l = ledger(&both);
    assert!(l.locked.is_empty(), "{l:?}");
    assert_eq!(l.received, l.paid, "both sides agree: {l:?}");
    if bought.code == 0 {
        assert!(
            bought_lines.iter().any(|line| line.starts_with("paid ")),
            "{bought_lines:?}"
        );
        assert_eq!(l.paid.len(), 2, "{l:?}");
    } else {
        // The seller had not committed: presumed abort, the buyer voided.
        assert_eq!(bought.code, 6, "{bought:?} {bought_lines:?}");
        assert_eq!(l.voided.len(), 1, "{l:?}");
        assert_eq!(l.paid.len(), 1, "{l:?}");
    }
    eprintln!(
        "(b) seller killed; buyer exit {} {bought_lines:?}; seller resume {}",
        bought.code,
        resumed.json()["log"]
    );

    sync_all(&both);
    assert_eq!(total_money(&office, &tokens, &both), deposits);
    eprintln!("crash test: {:.1} s", started.elapsed().as_secs_f64());
}

/// Scenario 3: a wallet copied while offline spends from both copies to two
/// sellers. At sync the office catches the double spend, names the owner,
/// revokes the wallet and charges the owner the duplicated value; the
/// copies' later syncs fail with exit code 9; the books balance.
#[test]
fn a_copied_wallet_is_caught_at_sync_and_its_owner_pays() {
    let started = Instant::now();
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let port = 47_803;
    let cheat = Wallet::create(&office, root.path(), "mallory", "200.00 EUR", port);
    let s1 = Wallet::create(&office, root.path(), "shop1", "100.00 EUR", port);
    let s2 = Wallet::create(&office, root.path(), "shop2", "100.00 EUR", port);
    cheat.charge("50.00");
    let deposits = minor("400.00 EUR");
    let mut copy = cheat.clone();
    copy.name = "mallory-copy".into();
    copy.dir = root.path().join("mallory-copy");
    copy_dir(&cheat.dir, &copy.dir);

    for (wallet, shop, amount) in [(&cheat, &s1, "30.00"), (&copy, &s2, "40.00")] {
        let buy = wallet.spawn_buy(amount, &["--wait", "20"]);
        let sell = shop.spawn_sell(amount, &wallet.id, &["--wait", "15"]);
        let sold = finish(sell, 30, "sell");
        let bought = finish(buy, 30, "buy");
        assert_eq!(sold.code, 0, "{sold:?}");
        assert_eq!(bought.code, 0, "{bought:?}");
    }
    // Offline, both copies spent from the same 50.00.
    assert_eq!(cheat.holding_minor(), minor("20.00 EUR"));
    assert_eq!(copy.holding_minor(), minor("10.00 EUR"));

    // The original syncs first (accepted), then the sellers: the second
    // seller's claim carries the copy's payment, a second entry with the
    // same sequence number: a fraud proof.
    cheat.ok_json("sync", &[]);
    s1.ok_json("sync", &[]);
    s2.ok_json("sync", &[]);
    let frauds = office.frauds();
    let frauds = frauds.as_array().expect("list");
    assert_eq!(frauds.len(), 1, "{frauds:?}");
    assert_eq!(frauds[0]["owner"], "mallory");
    assert_eq!(frauds[0]["wallet"], cheat.id);
    assert_eq!(frauds[0]["charged"], "50.00 EUR", "the duplicated value");

    // Both copies now fail to sync with the double-spend exit code.
    let copy_sync = copy.run("sync", &["--json"]);
    assert_eq!(copy_sync.code, 9, "{copy_sync:?}");
    assert_eq!(copy_sync.json()["error"], "double_spend");
    let original_sync = cheat.run("sync", &[]);
    assert_eq!(original_sync.code, 9, "{original_sync:?}");
    assert!(
        original_sync.text().contains("REVOKED"),
        "{original_sync:?}"
    );
    let refused = cheat.run("buy", &["--max", "1.00", "--wait", "1", "--yes"]);
    assert_eq!(
        refused.code, 9,
        "a revoked wallet does not buy: {refused:?}"
    );

    // The loss is bounded: the owner paid the charge and the duplicated
    // value; every wallet (both copies included) plus every owner account
    // is what was deposited.
    assert_eq!(
        office.owner_balance_minor(&cheat.token),
        minor("100.00 EUR")
    );

    // Redeem on the revoked copy: the office never accepts its chain, so a
    // credit could never come; nothing moves.
    let redeem = copy.run("redeem", &["5.00"]);
    assert_eq!(redeem.code, 9, "{redeem:?}");
    assert!(redeem.text().contains("nothing was redeemed"), "{redeem:?}");
    assert_eq!(copy.holding_minor(), minor("10.00 EUR"));
    assert_eq!(
        office.owner_balance_minor(&cheat.token),
        minor("100.00 EUR")
    );

    // The copy never synced since: it learns it is revoked from a seller's
    // LOOKUP (the seller holds the new revocation list) and says so with
    // the revoked exit code, not "no seller asked".
    s1.ok_json("sync", &[]);
    let s1_before = s1.holding_minor();
    let buy = copy.spawn_buy("1.00", &["--wait", "6"]);
    let sell = s1.spawn_sell("1.00", &copy.id, &["--wait", "4"]);
    let sold = finish(sell, 30, "sell to a revoked copy");
    let bought = finish(buy, 30, "a revoked copy buys");
    // The copy answered the LOOKUP; the seller refused its answer because
    // the copy is revoked, and says so (not "did not answer").
    assert_eq!(sold.code, 6, "the seller refuses a revoked buyer: {sold:?}");
    assert!(
        sold.text().contains(&format!(
            "buyer {} is revoked by the money office (a double spend was caught); nothing was sold",
            copy.id
        )),
        "{sold:?}"
    );
    assert!(!sold.text().contains("did not answer"), "{sold:?}");
    assert_eq!(s1.holding_minor(), s1_before, "nothing moved to the seller");
    assert_eq!(bought.code, 9, "{bought:?}");
    assert!(bought.text().contains("REVOKED"), "{bought:?}");
    assert_eq!(copy.holding_minor(), minor("10.00 EUR"));

    // The original is revoked too, but the office holds its chain: what it
    // holds is redeemed to the owner, not stranded.
    let redeemed = cheat.run("redeem", &["--json", "20.00"]);
    assert_eq!(redeemed.code, 0, "{redeemed:?}");
    assert_eq!(cheat.holding_minor(), 0);
    assert_eq!(
        office.owner_balance_minor(&cheat.token),
        minor("120.00 EUR")
    );
    let tokens = [cheat.token.as_str(), s1.token.as_str(), s2.token.as_str()];
    assert_eq!(
        total_money(&office, &tokens, &[&cheat, &copy, &s1, &s2]),
        deposits
    );
    eprintln!(
        "double spend test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Scenario 5: an honest owner restores a backup taken before a purchase
/// and syncs before spending: not a double spend. The office brings the
/// wallet up to date (balance as attested), the next purchase continues the
/// chain, and no fraud is recorded; money is conserved.
#[test]
fn a_restored_backup_is_brought_up_to_date_and_spends_without_a_fork() {
    let started = Instant::now();
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let port = 47_805;
    let alice = Wallet::create(&office, root.path(), "alice", "100.00 EUR", port);
    let shop = Wallet::create(&office, root.path(), "shop", "1.00 EUR", port);
    alice.charge("50.00");
    let deposits = minor("101.00 EUR");
    let backup = root.path().join("alice-backup");
    alice.ok_json("backup", &[backup.to_str().expect("utf-8 path")]);

    let buy_and_sell = |amount: &str| {
        let buy = alice.spawn_buy(amount, &["--wait", "20"]);
        let sell = shop.spawn_sell(amount, &alice.id, &["--wait", "15"]);
        let sold = finish(sell, 30, "sell");
        let bought = finish(buy, 30, "buy");
        assert_eq!(sold.code, 0, "{sold:?}");
        assert_eq!(bought.code, 0, "{bought:?}");
    };
    buy_and_sell("10.00");
    alice.ok_json("sync", &[]);
    shop.ok_json("sync", &[]);

    // The phone is lost; the owner restores the backup and syncs first.
    alice.ok_json(
        "restore",
        &[backup.to_str().expect("utf-8 path"), "--force"],
    );
    assert_eq!(alice.holding_minor(), minor("50.00 EUR"), "the backup's");
    let synced = alice.run("sync", &["--json"]);
    assert_eq!(synced.code, 0, "not a double spend: {synced:?}");
    assert_eq!(alice.holding_minor(), minor("40.00 EUR"), "as attested");

    // The next purchase continues the attested chain: no fork.
    buy_and_sell("5.00");
    sync_all(&[&alice, &shop]);
    let frauds = office.frauds();
    assert_eq!(frauds.as_array().map(Vec::len), Some(0), "{frauds}");
    assert_eq!(alice.holding_minor(), minor("35.00 EUR"));
    assert_eq!(shop.holding_minor(), minor("15.00 EUR"));
    let tokens = [alice.token.as_str(), shop.token.as_str()];
    assert_eq!(total_money(&office, &tokens, &[&alice, &shop]), deposits);
    eprintln!("restore test: {:.1} s", started.elapsed().as_secs_f64());
}

/// Scenario 4: the CLI's errors and their exit codes.
#[test]
fn cli_errors_have_clear_messages_and_distinct_exit_codes() {
    let started = Instant::now();
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let port = 47_804;
    let w = Wallet::create(&office, root.path(), "erin", "100.00 EUR", port);
    let other = Wallet::create(&office, root.path(), "frank", "100.00 EUR", port);
    w.charge("5.00 EUR");

    // Wrong PIN: 3.
    let out = common::run(
        {
            let mut c = w.command("balance", &[]);
            c.env("MPAY_PIN", "9999");
            c
        },
        "balance",
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("wrong PIN"), "{out:?}");
    assert!(!out.text().contains("9999"), "the PIN is never printed");
    let out = common::run(
        {
            let mut c = w.command("balance", &["--json"]);
            c.env("MPAY_PIN", "9999");
            c
        },
        "balance",
    );
    assert_eq!(out.code, 3, "{out:?}");
    assert_eq!(out.json()["error"], "wrong_pin");

    // Nobody in buyer mode: 5, within --wait.
    let t = Instant::now();
    let out = common::run(
        w.net_command("sell", &["--amount", "1.00", "--wait", "2"]),
        "sell",
    );
    assert_eq!(out.code, 5, "{out:?}");
    assert!(out.stderr.contains("no buyer nearby"), "{out:?}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());

    // The buyer cannot cover the amount: 4 for the buyer; for the seller a
    // refusal (6) that says whose funds are short.
    let buy = w.spawn_buy("50.00", &["--wait", "4"]);
    let sell = other.spawn_sell("20.00", &w.id, &["--wait", "10"]);
    let sold = finish(sell, 30, "sell");
    let bought = finish(buy, 30, "buy");
    assert_eq!(sold.code, 6, "{sold:?}");
    assert_eq!(sold.json()["error"], "refused");
    assert!(
        sold.stdout.contains("the buyer has insufficient funds"),
        "{sold:?}"
    );
    assert_eq!(bought.code, 4, "{bought:?}");

    // Over the offline balance limit (500.00 by default): 7.
    let out = w.run("charge", &["600.00"]);
    assert_eq!(out.code, 7, "{out:?}");
    // Redeeming more than the balance: 4.
    let out = w.run("redeem", &["6.00"]);
    assert_eq!(out.code, 4, "{out:?}");
    // The office cannot be reached: 8.
    let out = w.run("sync", &["--office", "http://127.0.0.1:9"]);
    assert_eq!(out.code, 8, "{out:?}");
    // No wallet there: 1, with a hint.
    let out = common::run(
        {
            let mut c = common::mpay();
            c.args(["wallet", "balance", "--dir"])
                .arg(root.path().join("nobody"))
                .env("MPAY_PIN", common::PIN);
            c
        },
        "balance",
    );
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("mpay wallet init"), "{out:?}");
    // The exit codes are documented in the help.
    let out = common::run(
        {
            let mut c = common::mpay();
            c.args(["wallet", "--help"]);
            c
        },
        "help",
    );
    assert!(
        out.stdout.contains("Exit codes") && out.stdout.contains("double spend"),
        "{out:?}"
    );
    // Secrets never reach the settings file.
    let settings = std::fs::read_to_string(w.dir.join("wallet.json")).expect("settings");
    assert!(!settings.contains(&w.token), "{settings}");
    let _: Value = serde_json::from_str(&settings).expect("JSON");
    eprintln!("cli errors test: {:.1} s", started.elapsed().as_secs_f64());
}

/// A buyer shares the shipping details of its profile with the seller it
/// pays (`--share-shipping`): the seller sees them with the sale and in its
/// history; the office, which takes both chains at sync, never holds them.
#[test]
fn shared_shipping_details_reach_the_seller_and_not_the_office() {
    let office = Office::start();
    let root = tempfile::tempdir().expect("temp dir");
    let port = 47_809;
    let alice = Wallet::create(&office, root.path(), "alice", "100.00 EUR", port);
    let shop = Wallet::create(&office, root.path(), "shop", "1.00 EUR", port);
    alice.charge("50.00");
    let deposits = minor("101.00 EUR");

    // Nothing to share yet: said at once, nothing paid.
    let nothing = alice.run(
        "buy",
        &["--yes", "--max", "1.00", "--wait", "1", "--share-shipping"],
    );
    assert_ne!(nothing.code, 0, "{nothing:?}");
    assert!(
        nothing
            .stderr
            .contains("no shipping details in this wallet's profile"),
        "{nothing:?}"
    );
    let address = "Alice Example, 12 Orchard Way, Hilltown";
    let set = alice.run("profile", &["set", "--json", "--shipping", address]);
    assert_eq!(set.code, 0, "{set:?}");

    let buy = alice.spawn_buy("10.00", &["--wait", "20", "--share-shipping"]);
    let sell = shop.spawn_sell("10.00", &alice.id, &["--wait", "15"]);
    let sold = finish(sell, 30, "sell");
    let bought = finish(buy, 30, "buy");
    assert_eq!(sold.code, 0, "{sold:?}");
    assert_eq!(bought.code, 0, "{bought:?}");
    assert_eq!(sold.json()["shipping"], address, "{sold:?}");
    let history = shop.ok_json("history", &[]);
    assert!(
        history.to_string().contains(address),
        "the seller's history keeps them: {history}"
    );

    // A second purchase without the flag shares nothing.
    let buy = alice.spawn_buy("2.00", &["--wait", "20"]);
    let sell = shop.spawn_sell("2.00", &alice.id, &["--wait", "15"]);
    let sold = finish(sell, 30, "sell");
    assert_eq!(finish(buy, 30, "buy").code, 0);
    assert_eq!(sold.code, 0, "{sold:?}");
    assert_eq!(sold.json()["shipping"], serde_json::Value::Null, "{sold:?}");

    sync_all(&[&alice, &shop]);
    for entry in std::fs::read_dir(office.dir.path()).expect("office dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            !bytes
                .windows(address.len())
                .any(|w| w == address.as_bytes()),
            "the office's {} holds the buyer's address",
            path.display()
        );
    }
    assert_eq!(alice.holding_minor(), minor("38.00 EUR"));
    assert_eq!(shop.holding_minor(), minor("12.00 EUR"));
    let tokens = [alice.token.as_str(), shop.token.as_str()];
    assert_eq!(total_money(&office, &tokens, &[&alice, &shop]), deposits);
}
