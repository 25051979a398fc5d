//! The offline half of the day: owners pay the money office from their bank
//! accounts and load wallets; phones buy and sell over UDP on loopback with
//! datagrams dropped; one phone is SIGKILLed mid-purchase and resumes; a
//! copied wallet spends the same money twice and is caught at sync.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mpay_bank::{AccountId, Transfer};
use mpay_identity::hex_bytes;
use mpay_money::{Amount, Currency};
use mpay_offline::chain::{ChainEntry, EntryKind};
use mpay_report::{ForkEntry, FraudCase};
use mpay_wire::Decode;

use super::Day;
use super::plan::{BANKS, Purchase, Role};
use super::procs::{Phone, copy_dir, finish, lines_of, wait_for_line};
use mpay_report::ledger::OFFICE_BANK_ACCOUNT;

/// A buyer waits this long in buyer mode.
const BUY_WAIT_SECS: &str = "12";
/// A seller gives up after this long.
const SELL_WAIT_SECS: &str = "8";
/// Longest a whole purchase (both processes) may take.
const PURCHASE_SECS_MAX: u64 = 45;
/// `resume --wait` when settling what is still open.
const RESUME_WAIT_SECS: &str = "12";
/// Wallet processes run at once when charging or syncing.
const WALLETS_AT_ONCE_MAX: usize = 4;
/// The `wallet sync` exit code of a wallet caught double spending.
const EXIT_DOUBLE_SPEND: i32 = 9;

/// What one purchase came to.
pub struct PurchaseResult {
    pub committed: bool,
    pub latency_ms: f64,
    pub detail: String,
}

pub fn eur(minor: i64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

impl Day {
    /// Each owner moves money from its bank account to the office's
    /// account at the same bank; the office opens the owner's account with
    /// exactly that deposit; the owner creates a wallet and loads part of
    /// it. Shops open an empty office account and an empty wallet.
    pub(super) fn charge_wallets(&mut self) -> anyhow::Result<()> {
        let people = self.plan.people.clone();
        self.begin(
            "charge wallets",
            u64::try_from(people.len() * 2).unwrap_or(0),
            &[
                "Owners pay the money office by bank transfer (cust:<owner> → office:mpay at their bank); the office credits each owner's account with that amount.",
                "Each phone creates a wallet (SQLCipher store, enrolled with the office) and loads part of its owner's account.",
            ],
        );
        for p in &people {
            let amount = eur(p.office_transfer_minor);
            if p.office_transfer_minor > 0 {
                let bank = self.net()?.bank(BANKS[p.bank])?;
                let receipt = self.rt.block_on(bank.transfer(
                    &format!("demo-office-transfer:{}", p.name),
                    &Transfer {
                        from: AccountId::parse(&p.bank_account())?,
                        to: AccountId::parse(OFFICE_BANK_ACCOUNT)?,
                        amount,
                        reference: format!("mpay office: owner {}", p.name),
                    },
                ))?;
                self.progress.say(&format!(
                    "{} pays the money office {amount} from {} {} (posting {})",
                    p.name,
                    BANKS[p.bank],
                    p.bank_account(),
                    receipt.posting.0
                ));
            }
            let token = self.rt.block_on(self.office_client.open_account(
                &self.office_admin,
                p.name,
                amount,
            ))?;
            self.owner_tokens.insert(p.name.to_owned(), token);
            self.progress.step();
        }
        // Wallets are created and charged a few at a time.
        let office_url = self.office_url.clone();
        let phones: Vec<(Phone, String, i64)> = people
            .iter()
            .map(|p| {
                (
                    self.new_phone(p.name, p.name),
                    self.owner_tokens.get(p.name).cloned().unwrap_or_default(),
                    p.wallet_charge_minor,
                )
            })
            .collect();
        let mut made = Vec::new();
        for chunk in phones.chunks(WALLETS_AT_ONCE_MAX) {
            let results: Vec<anyhow::Result<Phone>> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(phone, token, charge)| {
                        let office_url = &office_url;
                        s.spawn(move || init_and_charge(phone.clone(), office_url, token, *charge))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("a wallet thread panicked")))
                    })
                    .collect()
            });
            for r in results {
                let phone = r?;
                self.progress.step();
                made.push(phone);
            }
        }
        for (phone, p) in made.iter().zip(&people) {
            if p.wallet_charge_minor > 0 {
                self.progress.say(&format!(
                    "wallet {} ({}…) loaded {}",
                    phone.name,
                    &phone.id[..8.min(phone.id.len())],
                    eur(p.wallet_charge_minor)
                ));
            }
        }
        self.phones = made;
        self.read_all()?;
        self.end();
        Ok(())
    }

    /// A phone for `owner` in the run's wallet folder.
    fn new_phone(&self, name: &str, owner: &str) -> Phone {
        Phone {
            name: name.to_owned(),
            owner: owner.to_owned(),
            dir: self.root.join("wallets").join(name),
            id: String::new(),
            broadcast: self.broadcast.clone(),
            exe: self.exe.clone(),
        }
    }

    fn loss_args(&self) -> Vec<String> {
        vec![
            "--drop-permille".to_owned(),
            self.args.loss_permille.to_string(),
        ]
    }

    /// One purchase: buyer in buyer mode, seller asks; both real processes.
    fn purchase(
        &self,
        buyer: &Phone,
        seller: &Phone,
        amount_minor: i64,
        loss: bool,
    ) -> anyhow::Result<PurchaseResult> {
        let amount = eur(amount_minor).to_string();
        let loss_args = if loss { self.loss_args() } else { Vec::new() };
        let loss_args: Vec<&str> = loss_args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let mut buy_args = vec!["--json", "--yes", "--max", &amount, "--seller", &seller.id];
        buy_args.extend(["--wait", BUY_WAIT_SECS]);
        buy_args.extend(&loss_args);
        let buy = buyer.net_command("buy", &buy_args).spawn()?;
        let description = format!("{} for {}", item_of(amount_minor), buyer.name);
        let mut sell_args = vec![
            "--json",
            "--amount",
            &amount,
            "--buyer",
            &buyer.id,
            "--description",
            &description,
        ];
        sell_args.extend(["--wait", SELL_WAIT_SECS]);
        sell_args.extend(&loss_args);
        let sell = seller.net_command("sell", &sell_args).spawn()?;
        let limit = Duration::from_secs(PURCHASE_SECS_MAX);
        let sold = finish(sell, started, limit)?;
        let latency_ms = sold.elapsed.as_secs_f64() * 1_000.0;
        let bought = finish(buy, started, limit)?;
        let sold_json = sold.json().unwrap_or_default();
        let committed = sold.code == 0;
        let detail = if committed {
            sold_json["outcome"]
                .as_str()
                .unwrap_or("completed")
                .to_owned()
        } else {
            let why = sold_json["error"]
                .as_str()
                .or(bought
                    .json()
                    .ok()
                    .as_ref()
                    .and_then(|j| j["error"].as_str()))
                .map(str::to_owned)
                .unwrap_or_else(|| format!("exit {}", sold.code));
            format!("not made ({why})")
        };
        Ok(PurchaseResult {
            committed,
            latency_ms,
            detail,
        })
    }

    /// Rounds of purchases; the pairs of a round run at once.
    pub(super) fn offline_purchases(&mut self) -> anyhow::Result<()> {
        let rounds: Vec<Vec<Purchase>> = self
            .plan
            .rounds()
            .into_iter()
            .map(|r| r.into_iter().cloned().collect())
            .collect();
        let n = rounds.iter().map(Vec::len).sum::<usize>();
        let loss = format!(
            "Every phone drops {:.0} % of the datagrams it receives; lost LOOKUPs, requests and commits are sent again.",
            f64::from(self.args.loss_permille) / 10.0
        );
        self.begin(
            "offline purchases",
            u64::try_from(n).unwrap_or(0),
            &[
                "Phones buy and sell over UDP on loopback: the seller's LOOKUP finds the buyer, then a two-phase commit moves the money.",
                &loss,
            ],
        );
        for round in rounds {
            let results: Vec<(Purchase, anyhow::Result<PurchaseResult>)> =
                std::thread::scope(|s| {
                    let handles: Vec<_> = round
                        .iter()
                        .map(|p| {
                            let (buyer, seller) = (&self.phones[p.buyer], &self.phones[p.seller]);
                            let this = &*self;
                            s.spawn(move || this.purchase(buyer, seller, p.amount_minor, true))
                        })
                        .collect();
                    round
                        .iter()
                        .cloned()
                        .zip(handles.into_iter().map(|h| {
                            h.join().unwrap_or_else(|_| {
                                Err(anyhow::anyhow!("a purchase thread panicked"))
                            })
                        }))
                        .collect()
                });
            for (p, r) in results {
                let r = r?;
                let (buyer, seller) = (&self.phones[p.buyer].name, &self.phones[p.seller].name);
                self.progress.say(&format!(
                    "{buyer} buys from {seller} for {} offline: {} ({:.0} ms)",
                    eur(p.amount_minor),
                    r.detail,
                    r.latency_ms
                ));
                self.count_offline(&r, "committed");
                self.progress.step();
            }
            self.read_wallets()?;
        }
        self.end();
        Ok(())
    }

    fn count_offline(&mut self, r: &PurchaseResult, committed: &str) {
        if r.committed {
            self.rec.latency("offline purchase", r.latency_ms);
            self.rec.outcome("offline purchase", committed);
        } else {
            self.rec.outcome("offline purchase", "aborted");
        }
    }

    /// The buyer's phone is SIGKILLed right after it agreed (funds locked,
    /// outcome unknown to it); restarted, `wallet resume` asks the seller
    /// and finishes the purchase.
    pub(super) fn phone_crash(&mut self) -> anyhow::Result<()> {
        let p = self.plan.crash.clone();
        let buyer = self.phones[p.buyer].clone();
        let seller = self.phones[p.seller].clone();
        self.begin(
            "a phone dies mid-purchase",
            3,
            &[
                "The buyer's phone is SIGKILLed right after it agreed: its UNDO/REDO record is durable, the outcome unknown to it.",
                "Restarted, `mpay wallet resume` asks the seller what became of the purchase and finishes it on both sides.",
            ],
        );
        let amount = eur(p.amount_minor).to_string();
        let loss = self.loss_args();
        let loss: Vec<&str> = loss.iter().map(String::as_str).collect();
        let started = Instant::now();
        let mut args = vec![
            "--yes", "--max", &amount, "--seller", &seller.id, "--wait", "30",
        ];
        args.extend(&loss);
        let mut buy = buyer.net_command("buy", &args).spawn()?;
        let lines = lines_of(&mut buy)?;
        let mut sell_args = vec!["--json", "--amount", &amount, "--buyer", &buyer.id];
        sell_args.extend(["--description", "a phone charger", "--wait", "25"]);
        sell_args.extend(&loss);
        let sell = seller.net_command("sell", &sell_args).spawn()?;
        wait_for_line(&lines, "agreed, funds locked", Duration::from_secs(20))?;
        buy.kill().context("SIGKILL the buyer")?;
        let _ = buy.wait();
        self.progress.step();
        self.progress.say(&format!(
            "{}'s phone agreed to pay {} {amount} and was SIGKILLed",
            buyer.name, seller.name
        ));
        let resume_started = Instant::now();
        let mut resume_args = vec!["--json", "--wait", "20"];
        resume_args.extend(&loss);
        let resume = buyer.net_command("resume", &resume_args).spawn()?;
        let resumed = finish(
            resume,
            resume_started,
            Duration::from_secs(PURCHASE_SECS_MAX),
        )?;
        let resumed_json = resumed.json().unwrap_or_default();
        self.progress.step();
        let sold = finish(sell, started, Duration::from_secs(PURCHASE_SECS_MAX))?;
        let latency_ms = started.elapsed().as_secs_f64() * 1_000.0;
        let settled = resumed.code == 0 && resumed_json["settled"] == true;
        self.progress.say(&format!(
            "{} restarted: resume {} ({:.0} ms); the seller's sale: {}",
            buyer.name,
            if settled {
                "settled the purchase"
            } else {
                "did NOT settle"
            },
            resumed.elapsed.as_secs_f64() * 1_000.0,
            sold.json()
                .ok()
                .and_then(|j| j["outcome"].as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("exit {}", sold.code))
        ));
        self.crash_settled = Some(settled);
        let r = PurchaseResult {
            committed: sold.code == 0,
            latency_ms,
            detail: String::new(),
        };
        self.count_offline(&r, "completed after a crash");
        self.progress.step();
        self.read_wallets()?;
        self.end();
        Ok(())
    }

    /// The cheat copies its phone's wallet folder while the phone is off;
    /// the original pays one shop, the copy another, with the same money.
    /// At sync the office finds two signed entries with one sequence number.
    pub(super) fn clone_scene(&mut self) -> anyhow::Result<()> {
        let c = self.plan.clone.clone();
        let cheat = self.phones[c.cheat].clone();
        let (shop_a, shop_b) = (
            self.phones[c.first_shop].clone(),
            self.phones[c.second_shop].clone(),
        );
        self.begin(
            "a cloned wallet",
            7,
            &[
                "A wallet's folder is copied to a second phone; both copies spend the same money at two shops, offline.",
                "At sync the office holds two signed entries with one sequence number: the proof. It names the owner, charges the duplicated value and revokes the wallet.",
            ],
        );
        let mut copy = self.new_phone(&format!("{} (copy)", cheat.name), &cheat.owner);
        copy.dir = self
            .root
            .join("wallets")
            .join(format!("{}-copy", cheat.name));
        copy.id = cheat.id.clone();
        copy_dir(&cheat.dir, &copy.dir)?;
        self.progress.say(&format!(
            "{}'s wallet folder copied to a second phone",
            cheat.name
        ));
        self.copy = Some(copy.clone());
        self.progress.step();
        for (phone, shop, minor) in [
            (&cheat, &shop_a, c.first_minor),
            (&copy, &shop_b, c.second_minor),
        ] {
            let r = self.purchase(phone, shop, minor, false)?;
            self.progress.say(&format!(
                "{} pays {} {} offline: {}",
                phone.name,
                shop.name,
                eur(minor),
                r.detail
            ));
            if r.committed {
                self.rec.latency("offline purchase", r.latency_ms);
            }
            let outcome = if std::ptr::eq(phone, &copy) {
                "double spend"
            } else {
                "committed"
            };
            self.rec.outcome(
                "offline purchase",
                if r.committed { outcome } else { "aborted" },
            );
            self.progress.step();
        }
        self.read_wallets()?;
        // The original syncs first, then the shops: the second shop's claim
        // carries the copy's entry.
        let mut caught_by = None;
        for phone in [&cheat, &shop_a, &shop_b] {
            let out = phone.run("sync", &["--json"])?;
            self.progress.say(&format!(
                "{} syncs with the office: {}",
                phone.name,
                if out.code == 0 {
                    "accepted".to_owned()
                } else {
                    format!("exit {} {}", out.code, out.stdout.trim())
                }
            ));
            if caught_by.is_none() && !self.frauds()?.is_empty() {
                caught_by = Some((
                    format!("sync of {}", phone.name),
                    self.progress.elapsed_ms(),
                ));
            }
            self.progress.step();
        }
        let copy_sync = copy.run("sync", &["--json"])?;
        self.copy_sync_code = Some(copy_sync.code);
        self.progress.say(&format!(
            "the copy tries to sync: exit {} ({})",
            copy_sync.code,
            copy_sync
                .json()
                .ok()
                .and_then(|j| j["error"].as_str().map(str::to_owned))
                .unwrap_or_default()
        ));
        let frauds = self.frauds()?;
        for f in &frauds {
            let (by, at) = caught_by
                .clone()
                .unwrap_or_else(|| ("a sync".to_owned(), self.progress.elapsed_ms()));
            let case = FraudCase {
                wallet: f.wallet.clone(),
                owner: f.owner.clone(),
                seq: f.seq,
                first: self.fork_entry(&f.first_entry),
                second: self.fork_entry(&f.second_entry),
                charged_minor: Amount::parse(&f.charged)
                    .map(|a| a.minor_units())
                    .unwrap_or(0),
                caught_at_ms: f
                    .detected_at
                    .checked_sub(self.rec.started_at_ms)
                    .unwrap_or(at),
                caught_by: by,
                revoked: copy_sync.code == EXIT_DOUBLE_SPEND,
            };
            self.progress.say(&double_spend_line(
                &case.wallet,
                &case.owner,
                case.seq,
                [&case.first.summary, &case.second.summary],
                &f.charged,
            ));
            self.rec.frauds.push(case);
        }
        self.progress.step();
        self.read_all()?;
        self.end();
        Ok(())
    }

    fn frauds(&self) -> anyhow::Result<Vec<mpay_office::http::FraudView>> {
        Ok(self
            .rt
            .block_on(self.office_client.frauds(&self.office_admin))?)
    }

    /// A fork entry with a summary read from its wire bytes.
    fn fork_entry(&self, hex: &str) -> ForkEntry {
        let summary = hex_bytes(hex)
            .and_then(|b| ChainEntry::from_wire(&b).ok())
            .map(|e| match &e.kind {
                EntryKind::Pay {
                    tx, seller, amount, ..
                } => {
                    let to = self
                        .phones
                        .iter()
                        .find(|p| p.id == seller.to_hex())
                        .map_or_else(|| seller.to_hex(), |p| p.name.clone());
                    format!(
                        "entry #{}: pay {amount} to {to} (tx {}), balance after {}",
                        e.seq,
                        tx.short(),
                        e.balance_after
                    )
                }
                EntryKind::Genesis { .. } => format!("entry #{}: genesis", e.seq),
                EntryKind::Charge { .. } => format!(
                    "entry #{}: charge, balance after {}",
                    e.seq, e.balance_after
                ),
                EntryKind::Receive { tx, amount, .. } => format!(
                    "entry #{}: receive {amount} (tx {}), balance after {}",
                    e.seq,
                    tx.short(),
                    e.balance_after
                ),
                EntryKind::Void { tx, amount, .. } => format!(
                    "entry #{}: void {amount} (tx {}), balance after {}",
                    e.seq,
                    tx.short(),
                    e.balance_after
                ),
                EntryKind::Redeem { amount, .. } => format!(
                    "entry #{}: redeem {amount}, balance after {}",
                    e.seq, e.balance_after
                ),
            })
            .unwrap_or_else(|| "an entry that does not decode".to_owned());
        ForkEntry {
            hex: hex.to_owned(),
            summary,
        }
    }

    /// Finishes what is still open (every phone runs `resume` at once, so
    /// each can answer the others), then every phone syncs.
    pub(super) fn sync_wallets(&mut self) -> anyhow::Result<()> {
        let cheat = self.plan.clone.cheat;
        let honest: Vec<Phone> = self
            .phones
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != cheat)
            .map(|(_, p)| p.clone())
            .collect();
        let mut pending = Vec::new();
        for p in &honest {
            pending.push(p.has_pending()?);
        }
        if pending.iter().any(|p| *p) {
            let loss = self.loss_args();
            let children: Vec<_> = honest
                .iter()
                .zip(&pending)
                .map(|(p, open)| {
                    let mut args = vec!["--json", "--wait", RESUME_WAIT_SECS];
                    if !open {
                        args.push("--stay");
                    }
                    args.extend(loss.iter().map(String::as_str));
                    p.net_command("resume", &args)
                        .stdout(Stdio::piped())
                        .spawn()
                })
                .collect::<Result<_, _>>()?;
            let started = Instant::now();
            for ((p, child), open) in honest.iter().zip(children).zip(&pending) {
                let out = finish(child, started, Duration::from_secs(PURCHASE_SECS_MAX))?;
                if *open {
                    self.progress.say(&format!(
                        "{} resumes what was open: {}",
                        p.name,
                        if out.code == 0 {
                            "settled"
                        } else {
                            "NOT settled"
                        }
                    ));
                }
            }
        }
        self.progress.step();
        // Every phone syncs; the cheat's original is refused (revoked).
        let all: Vec<Phone> = self.phones.clone();
        for chunk in all.chunks(WALLETS_AT_ONCE_MAX) {
            let outs: Vec<anyhow::Result<super::procs::Run>> = std::thread::scope(|s| {
                let hs: Vec<_> = chunk
                    .iter()
                    .map(|p| s.spawn(move || p.run("sync", &["--json"])))
                    .collect();
                hs.into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("a sync thread panicked")))
                    })
                    .collect()
            });
            for (p, out) in chunk.iter().zip(outs) {
                let out = out?;
                let expected = if p.owner == self.plan.people[cheat].name {
                    EXIT_DOUBLE_SPEND
                } else {
                    0
                };
                if out.code != expected {
                    self.sync_failures.push(format!(
                        "{}: sync exit {} (expected {expected}): {}",
                        p.name,
                        out.code,
                        out.stdout.trim()
                    ));
                }
                if out.code == EXIT_DOUBLE_SPEND {
                    self.progress
                        .say(&format!("{} syncs: refused, the wallet is revoked", p.name));
                }
                self.progress.step();
            }
        }
        Ok(())
    }

    /// Sales received and payments made, from every phone's history: the
    /// purchases both sides agree on.
    pub(super) fn offline_atomicity(&self) -> anyhow::Result<(bool, String)> {
        let mut received = BTreeSet::new();
        let mut paid = BTreeSet::new();
        let mut locked = BTreeSet::new();
        let mut doubled = 0;
        for p in self.phones.iter().chain(self.copy.as_ref()) {
            for e in p.history()? {
                let tx = e["tx"].as_str().unwrap_or_default().to_owned();
                match (e["kind"].as_str(), e["status"].as_str()) {
                    (Some("receive"), _) if !received.insert(tx.clone()) => {
                        doubled += 1;
                    }
                    (Some("pay"), Some("paid")) => {
                        paid.insert(tx);
                    }
                    (Some("pay"), Some("locked")) => {
                        locked.insert(tx);
                    }
                    _ => {}
                }
            }
        }
        let ok = received == paid && locked.is_empty() && doubled == 0;
        let detail = if ok {
            format!(
                "{} sales received = {} payments made, none locked",
                received.len(),
                paid.len()
            )
        } else {
            format!(
                "received {} vs paid {} ({} only received, {} only paid), {} locked, {} received twice",
                received.len(),
                paid.len(),
                received.difference(&paid).count(),
                paid.difference(&received).count(),
                locked.len(),
                doubled
            )
        };
        Ok((ok, detail))
    }
}

/// `wallet init` (enrolled with the office) and `wallet charge`.
fn init_and_charge(
    mut phone: Phone,
    office_url: &str,
    token: &str,
    charge_minor: i64,
) -> anyhow::Result<Phone> {
    let mut init = super::procs::mpay(&phone.exe);
    init.args(["wallet", "init", "--json", "--kdf", "fast"])
        .arg("--dir")
        .arg(&phone.dir)
        .args(["--office", office_url, "--owner", &phone.owner])
        .env("MPAY_PIN", super::procs::WALLET_PIN)
        .env("MPAY_OWNER_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = finish(
        init.spawn()?,
        started,
        Duration::from_secs(super::procs::WALLET_COMMAND_SECS_MAX),
    )?;
    if out.code != 0 {
        bail!(
            "wallet init of {}: {} {}",
            phone.name,
            out.stdout,
            out.stderr
        );
    }
    phone.id = out.json()?["wallet"]
        .as_str()
        .context("wallet id")?
        .to_owned();
    if charge_minor > 0 {
        phone.ok_json("charge", &[&eur(charge_minor).to_string()])?;
    }
    Ok(phone)
}

/// Something to sell for `minor` (flavour for the narration).
fn item_of(minor: i64) -> &'static str {
    const ITEMS: [&str; 8] = [
        "a croissant",
        "a coffee",
        "a newspaper",
        "a sandwich",
        "a bunch of flowers",
        "a paperback",
        "a bus ticket",
        "a bag of apples",
    ];
    ITEMS[usize::try_from(minor.rem_euclid(8)).unwrap_or(0)]
}

impl Role {
    pub fn is_shop(self) -> bool {
        self == Role::Shop
    }
}

/// The narration of a caught double spend: each entry's summary once,
/// without the sequence number the line already gives.
fn double_spend_line(
    wallet: &str,
    owner: &str,
    seq: u64,
    summaries: [&str; 2],
    charged: &str,
) -> String {
    let prefix = format!("entry #{seq}: ");
    let [first, second] = summaries.map(|s| s.strip_prefix(&prefix).unwrap_or(s));
    format!(
        "DOUBLE SPEND caught: wallet {}… of {owner} signed two entries #{seq}: {first} / {second}; \
         charged {charged}",
        wallet.get(..8).unwrap_or(wallet)
    )
}

#[cfg(test)]
mod tests {
    use super::double_spend_line;

    #[test]
    fn the_double_spend_line_says_each_entry_once() {
        // Issue 16: "signed two entries #2: entry #2: pay …".
        let line = double_spend_line(
            "042e53f355f4edd6",
            "mallory",
            2,
            [
                "entry #2: pay 24.85 EUR to cafe (tx 94b6acc4), balance after 25.15 EUR",
                "entry #2: pay 20.60 EUR to bakery (tx 72d5363f), balance after 29.40 EUR",
            ],
            "50.00 EUR",
        );
        assert_eq!(
            line,
            "DOUBLE SPEND caught: wallet 042e53f3… of mallory signed two entries #2: \
             pay 24.85 EUR to cafe (tx 94b6acc4), balance after 25.15 EUR / \
             pay 20.60 EUR to bakery (tx 72d5363f), balance after 29.40 EUR; charged 50.00 EUR"
        );
    }
}
