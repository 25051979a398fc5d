//! `mpay demo`: the whole system in one command. It starts the money
//! office, three banks and two SEMOPS regions (DCs, CPPs, MPPs) as real
//! processes on loopback, gives a dozen people bank accounts and phones,
//! and plays a scripted day drawn from `--seed`:
//!
//! 1. owners pay the money office by bank transfer and load wallets;
//! 2. phones buy offline over UDP with datagrams dropped;
//! 3. a phone is SIGKILLed mid-purchase and resumes;
//! 4. a copied wallet spends the same money twice and is caught at sync;
//! 5. online payments at home and abroad, a CPP SIGKILLed mid-payment;
//! 6. streams of micropayments: DT below θ, one transfer at θ, the
//!    window, net settlement to the MPPs and the shops;
//! 7. a rejection, an expiry, a refund, a duplicated submission and a
//!    wrong-PIN lockout;
//! 8. sync and settlement, then `reconcile` and the office's books.
//!
//! Every number in the summary and in `report.html` is read back from the
//! parties (banks' books, the office's accounts and fraud records, the
//! phones' stores) or measured by the demo (latencies). The run exits 2 if
//! an invariant fails and names it.
//!
//! How money moves, so conservation can be checked: banks' money comes
//! from their `external` account (opening deposits). An owner's transfer
//! `cust:<owner>` → `office:mpay` at the owner's bank is matched by a
//! deposit of the same amount into `owner:<owner>` in the office's books;
//! charges move it from the owner's account into the wallet (the office's
//! float), offline purchases between wallets, a caught double spend from
//! the cheat's owner account to the float. So at the end the office's
//! accounts at the banks must equal the owners' accounts plus every
//! wallet (copies included), and the total over all parties must equal
//! what the banks were given.

mod micro;
mod offline;
mod online;
mod plan;
mod procs;
mod progress;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mpay_bank::AccountId;
use mpay_money::{Amount, Currency};
use mpay_office::http::OfficeClient;
use mpay_report::ledger::{self, Ledger, OFFICE_BANK_ACCOUNT, Reading, bank_party};
use mpay_report::{
    DemoReport, InvariantCheck, LatencySeries, OutcomeRow, PartyKind, Phase, TerminalOptions,
    render_html, render_terminal_with,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng as _, SeedableRng};

use crate::network::provision;
use offline::eur;
use online::{Answer, Customer, Merchant, Paid, People, Services, Terminals};
use plan::{BANKS, Payment, Plan, SHOPS, Size};
use procs::{OfficeProcess, Phone};
use progress::Progress;

/// The CPP's decision timeout in the demo: how long the expiring payment
/// waits for a merchant who never decides (long enough for a CPP restart
/// in the middle of a payment).
const DECISION_TIMEOUT_MS: u64 = 6_000;
/// What each hop keeps of a PN's deadline (loopback: far more than enough;
/// four of them must fit in the decision timeout).
const HOP_BUDGET_MS: u64 = 500;
/// Online payments in flight at once.
const PAYMENTS_AT_ONCE_MAX: usize = 4;
/// `reconcile` waits this long for the network to be quiet.
const RECONCILE_WAIT_SECS: u64 = 30;
/// How long a refund may take to be back in the customer's account.
const REFUND_WAIT_MS_MAX: u64 = 10_000;
/// Wrong PINs that lock a customer out (the CPP's default).
const WRONG_PINS_TO_LOCK: u32 = 5;

#[derive(Args)]
pub struct DemoArgs {
    /// Seed of the scripted day (same seed, same script: who buys what,
    /// amounts, whose phone dies when).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Keep everything here (network folder, databases, wallets, logs,
    /// report.html). Default: a temporary directory, deleted at the end,
    /// and report.html in the current directory.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Run the office, banks and services on this PostgreSQL server, a
    /// database per process (e.g. postgres://postgres@127.0.0.1:5432/test).
    #[arg(long)]
    postgres: Option<String>,
    /// Offline purchases (besides the crash and the double spend).
    #[arg(long, default_value_t = 12)]
    purchases: usize,
    /// Approved online payments (besides the rejection, expiry, refund,
    /// duplicate and lockout).
    #[arg(long, default_value_t = 16)]
    payments: usize,
    /// Share of UDP datagrams each phone drops, per mille.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(0..=500))]
    loss_permille: u32,
}

/// What the day measured, for the report.
struct Record {
    started: Instant,
    started_at_ms: u64,
    phases: Vec<Phase>,
    current: Option<Phase>,
    latencies: BTreeMap<String, Vec<f64>>,
    outcomes: BTreeMap<(String, String), u64>,
    ledger: Ledger,
    frauds: Vec<mpay_report::FraudCase>,
    invariants: Vec<InvariantCheck>,
    micro: Vec<mpay_report::PendingSeries>,
}

impl Record {
    fn ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn latency(&mut self, kind: &str, ms: f64) {
        self.latencies.entry(kind.to_owned()).or_default().push(ms);
    }

    fn outcome(&mut self, kind: &str, outcome: &str) {
        *self
            .outcomes
            .entry((kind.to_owned(), outcome.to_owned()))
            .or_default() += 1;
    }

    fn check(&mut self, name: &str, ok: bool, detail: impl Into<String>) {
        self.invariants.push(InvariantCheck {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        });
    }
}

/// The running day.
struct Day {
    args: DemoArgs,
    plan: Plan,
    progress: Progress,
    rt: tokio::runtime::Runtime,
    exe: PathBuf,
    root: PathBuf,
    broadcast: String,
    office: Option<OfficeProcess>,
    office_url: String,
    office_admin: String,
    office_client: OfficeClient,
    owner_tokens: BTreeMap<String, String>,
    net: Option<Services>,
    people: People,
    customers: BTreeMap<String, Arc<Customer>>,
    merchants: Vec<Arc<Merchant>>,
    phones: Vec<Phone>,
    copy: Option<Phone>,
    rec: Record,
    /// Facts the invariants are judged on.
    crash_settled: Option<bool>,
    copy_sync_code: Option<i32>,
    sync_failures: Vec<String>,
    scripted: Vec<(String, bool)>,
    payment_ids: Vec<Option<String>>,
    office_reserve_minor: i64,
    bank_problems: Vec<String>,
}

fn now_ms() -> u64 {
    mpay_clock::wall_clock().as_millis()
}

fn hex16(rng: &mut ChaCha20Rng) -> String {
    let mut bytes = [0u8; 16];
    rng.fill_bytes(&mut bytes);
    mpay_identity::hex_string(&bytes)
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let started_at_ms = now_ms();
    let temp = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            None
        }
        None => Some(tempfile::tempdir()?),
    };
    let root = match (&args.dir, &temp) {
        (Some(dir), _) => dir.canonicalize()?,
        (None, Some(t)) => t.path().to_owned(),
        (None, None) => unreachable!("a temporary directory exists without --dir"),
    };
    let report_dir = match &args.dir {
        Some(_) => root.clone(),
        None => std::env::current_dir()?,
    };
    let plan = Plan::new(
        args.seed,
        Size {
            purchases: args.purchases,
            payments: args.payments,
        },
    );
    let backend = if args.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "mpay demo — seed {}, {backend}, in {}",
        args.seed,
        root.display()
    );
    println!(
        "  the money office, 3 banks, 2 regions (DC, CPP, MPP each), {} wallets; {} offline purchases at {:.0} % datagram loss, {} online payments",
        plan.people.len(),
        plan.purchases.len(),
        f64::from(args.loss_permille) / 10.0,
        plan.payments.len()
    );
    println!();
    let progress = Progress::new(started);
    let mut rng = ChaCha20Rng::seed_from_u64(args.seed);
    let udp_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .context("finding a free UDP port")?
        .port();
    let mut day = Day {
        plan,
        progress: progress.clone(),
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
        exe: std::env::current_exe().context("finding the mpay executable")?,
        root: root.clone(),
        broadcast: format!("multicast:239.255.79.7:{udp_port}"),
        office: None,
        office_url: String::new(),
        office_admin: hex16(&mut rng),
        office_client: OfficeClient::new("http://127.0.0.1:9")?,
        owner_tokens: BTreeMap::new(),
        net: None,
        people: People::new(args.seed),
        customers: BTreeMap::new(),
        merchants: Vec::new(),
        phones: Vec::new(),
        copy: None,
        rec: Record {
            started,
            started_at_ms,
            phases: Vec::new(),
            current: None,
            latencies: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            ledger: Ledger::default(),
            frauds: Vec::new(),
            invariants: Vec::new(),
            micro: Vec::new(),
        },
        crash_settled: None,
        copy_sync_code: None,
        sync_failures: Vec::new(),
        scripted: Vec::new(),
        payment_ids: Vec::new(),
        office_reserve_minor: 0,
        bank_problems: Vec::new(),
        args,
    };
    let played = day.play();
    progress.close();
    if let Err(error) = played {
        if let Some(net) = day.net.as_mut() {
            net.stop();
        }
        if let Some(office) = day.office.as_mut() {
            office.stop();
        }
        let kept = match temp {
            Some(t) => t.keep(),
            None => root,
        };
        eprintln!(
            "the demo stopped: {error:#}\n  its folder is kept for a look: {} (logs/ and network/logs/)",
            kept.display()
        );
        return Ok(ExitCode::from(1));
    }
    let report = day.report(backend);
    let html = render_html(&report);
    let html_path = report_dir.join("report.html");
    std::fs::write(&html_path, html).with_context(|| format!("writing {}", html_path.display()))?;
    std::fs::write(report_dir.join("report.json"), report.to_json()?)?;
    println!();
    print!(
        "{}",
        render_terminal_with(
            &report,
            TerminalOptions {
                colour: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            }
        )
    );
    println!();
    println!("report: {}", html_path.display());
    if day.args.dir.is_some() {
        println!(
            "everything else (databases, wallets, logs): {}",
            root.display()
        );
    }
    drop(day);
    drop(temp);
    if report.all_invariants_held() {
        Ok(ExitCode::SUCCESS)
    } else {
        for check in report.failed_invariants() {
            eprintln!("INVARIANT FAILED: {}: {}", check.name, check.detail);
        }
        Ok(ExitCode::from(2))
    }
}

impl Day {
    fn net(&self) -> anyhow::Result<&Services> {
        self.net.as_ref().context("the network is not running")
    }

    fn begin(&mut self, name: &str, steps: u64, lines: &[&str]) {
        self.rec.current = Some(Phase {
            name: name.to_owned(),
            started_ms: self.rec.ms(),
            duration_ms: 0,
            lines: lines.iter().map(|l| (*l).to_owned()).collect(),
        });
        self.progress.phase(name, steps);
    }

    fn end(&mut self) {
        let now = self.rec.ms();
        if let Some(mut phase) = self.rec.current.take() {
            phase.duration_ms = now.saturating_sub(phase.started_ms);
            self.rec.phases.push(phase);
        }
        self.progress.finish();
    }

    fn play(&mut self) -> anyhow::Result<()> {
        self.start_system()?;
        self.open_banks()?;
        self.charge_wallets()?;
        self.offline_purchases()?;
        self.phone_crash()?;
        self.clone_scene()?;
        self.online_payments()?;
        self.micropayments()?;
        self.twists()?;
        self.settle()?;
        self.books()?;
        Ok(())
    }

    /// Provisions the network, starts its nine processes and the office.
    fn start_system(&mut self) -> anyhow::Result<()> {
        self.begin(
            "start the system",
            2,
            &[
                "The money office, three banks, two DCs, two CPPs and two MPPs start as processes of their own on loopback.",
                "Each keeps its data in its own database; keys and certificates come from a scheme root made for this run.",
            ],
        );
        let mut seed = [0u8; 32];
        ChaCha20Rng::seed_from_u64(self.args.seed ^ 0x6e65_7477).fill_bytes(&mut seed);
        let timing = mpay_network::Timing {
            decision_timeout_ms: DECISION_TIMEOUT_MS,
            hop_budget_ms: HOP_BUDGET_MS,
            ..mpay_network::Timing::default()
        };
        let options = provision::Options {
            dir: self.root.join("network"),
            postgres: self.args.postgres.clone(),
            base_port: None,
            timing,
            micro: micro::config(),
            seed: Some(seed),
            plaintext: false,
        };
        let processes = self.rt.block_on(provision::provision(&options))?;
        // This process and its children trust the network's CA from now on.
        crate::network::supervisor::trust_network(&options.dir);
        let office_db = match &self.args.postgres {
            Some(server) => {
                let name = format!(
                    "mpay_demo_{}_office",
                    &hex16(&mut ChaCha20Rng::from_seed(seed))[..8]
                );
                self.rt
                    .block_on(provision::create_database(server, &name))?;
                provision::postgres_database_url(server, &name)?
            }
            None => format!("sqlite://{}", self.root.join("office.db").display()),
        };
        let office = OfficeProcess::start(
            &self.exe,
            &self.root,
            &self.root.join("network"),
            &office_db,
            &self.office_admin,
        )?;
        anyhow::ensure!(
            office.url.starts_with("https://"),
            "the money office is not on TLS: {}",
            office.url
        );
        self.office_url = office.url.clone();
        self.office_client = OfficeClient::new(&office.url)?;
        self.office = Some(office);
        let client = self.office_client.clone();
        self.rt.block_on(async {
            let started = Instant::now();
            while client.health().await.is_err() {
                anyhow::ensure!(
                    started.elapsed() < Duration::from_secs(online::SERVICE_START_SECS_MAX),
                    "the money office never answered /health"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(())
        })?;
        self.progress.step();
        self.progress
            .say(&format!("money office up at {}", self.office_url));
        let net_dir = self.root.join("network");
        let services = self.rt.block_on(Services::start(&net_dir, processes))?;
        self.progress.say(&format!(
            "{} network processes up: {}",
            services.len(),
            services
                .resolved
                .services
                .iter()
                .map(|s| format!("{} ({})", s.name, s.region))
                .chain(services.resolved.banks.iter().map(|b| b.name.clone()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        self.net = Some(services);
        self.progress.step();
        self.end();
        Ok(())
    }

    /// Bank accounts with opening deposits; customers enrol at their CPP,
    /// shops at their MPP.
    fn open_banks(&mut self) -> anyhow::Result<()> {
        let people = self.plan.people.clone();
        self.begin(
            "open bank accounts",
            u64::try_from(people.len() * 2 + BANKS.len()).unwrap_or(0),
            &[
                "Customers get accounts with opening deposits at one of three banks; shops get empty accounts; the office has an account at every bank.",
                "Customers enrol their phone and PIN at their region's CPP; shops enrol their terminal at an MPP.",
            ],
        );
        let net = self.net()?;
        let rt = &self.rt;
        for bank in BANKS {
            open(rt, net, bank, OFFICE_BANK_ACCOUNT, 0)?;
            self.progress.step();
        }
        for p in &people {
            open(
                rt,
                net,
                BANKS[p.bank],
                &p.bank_account(),
                p.bank_deposit_minor,
            )?;
            self.progress.step();
        }
        let mut customers = BTreeMap::new();
        let mut merchants = Vec::new();
        for p in people.iter().filter(|p| !p.role.is_shop()) {
            let c = rt.block_on(self.people.customer(net, p.name, p.cpp(), BANKS[p.bank]))?;
            customers.insert(p.name.to_owned(), Arc::new(c));
            self.progress.step();
        }
        for shop in SHOPS {
            let m =
                rt.block_on(
                    self.people
                        .merchant(net, shop.name, shop.mpp, BANKS[shop.bank]),
                )?;
            merchants.push(Arc::new(m));
            self.progress.step();
        }
        self.progress.say(&format!(
            "{} customers enrolled at cpp1/cpp2, {} shops at mpp1/mpp2",
            customers.len(),
            merchants.len()
        ));
        self.customers = customers;
        self.merchants = merchants;
        self.read_banks()?;
        self.end();
        Ok(())
    }

    /// Approved payments, a few at a time, at home and abroad; one of them
    /// has its CPP SIGKILLed after the merchant got the notice.
    fn online_payments(&mut self) -> anyhow::Result<()> {
        let payments = self.plan.payments.clone();
        self.begin(
            "online payments",
            u64::try_from(payments.len()).unwrap_or(0),
            &[
                "Customers pay shops' TRANS through their CPP; the DCs route the PN to the shop's MPP, at home or in the other region; holds at the customer's bank are posted to the shop's bank.",
                "During one payment the customer's CPP is SIGKILLed after the merchant got the notice; it restarts and finishes the payment from its database.",
            ],
        );
        let terminals = self
            .rt
            .block_on(async { Terminals::start(&self.merchants) });
        let crash = self.plan.cpp_crash;
        let mut ids = vec![None; payments.len()];
        let indices: Vec<usize> = (0..payments.len()).filter(|i| *i != crash).collect();
        for batch in indices.chunks(PAYMENTS_AT_ONCE_MAX) {
            let mut set = tokio::task::JoinSet::new();
            for &i in batch {
                let p = payments[i].clone();
                let (customer, merchant, trans_nonce, key, seed) = self.payment_parts(&p)?;
                let trans =
                    merchant.trans(eur(p.amount_minor), &format!("order-{i}"), trans_nonce)?;
                terminals.expect(&trans_nonce, Answer::Approve);
                set.spawn_on(
                    async move {
                        (
                            i,
                            customer.pay(&trans, online::CUSTOMER_PIN, key, seed).await,
                        )
                    },
                    self.rt.handle(),
                );
            }
            let results = self.rt.block_on(set.join_all());
            for (i, paid) in results {
                let id = self.count_payment(&payments[i], paid?, "completed");
                ids[i] = id;
                self.progress.step();
            }
            self.read_banks()?;
        }
        // The CPP crash.
        let p = payments[crash].clone();
        let (customer, merchant, trans_nonce, key, seed) = self.payment_parts(&p)?;
        let trans = merchant.trans(eur(p.amount_minor), "order-crash", trans_nonce)?;
        terminals.expect(&trans_nonce, Answer::Hold);
        let cpp = customer.cpp.clone();
        let payer = self
            .rt
            .spawn(async move { customer.pay(&trans, online::CUSTOMER_PIN, key, seed).await });
        let id = self
            .rt
            .block_on(terminals.wait_notice(&trans_nonce, Duration::from_secs(20)))?;
        self.net.as_mut().context("network")?.kill(&cpp)?;
        self.progress.say(&format!(
            "{} SIGKILLed while {} waits for {}'s decision on {}",
            cpp,
            self.plan.people[p.customer].name,
            merchant.name,
            eur(p.amount_minor)
        ));
        self.rt
            .block_on(merchant.decide(&id, mpay_semops::Decision::Approve))?;
        std::thread::sleep(Duration::from_millis(300));
        let net = self.net.as_mut().context("network")?;
        self.rt.block_on(net.restart(&cpp))?;
        self.progress
            .say(&format!("{cpp} restarted from its database"));
        let paid = self.rt.block_on(payer)??;
        ids[crash] = self.count_payment(&p, paid, "completed");
        self.progress.step();
        self.rt.block_on(terminals.stop());
        self.payment_ids = ids;
        self.read_banks()?;
        self.end();
        Ok(())
    }
}

impl Day {
    #[allow(clippy::type_complexity)]
    fn payment_parts(
        &self,
        p: &Payment,
    ) -> anyhow::Result<(Arc<Customer>, Arc<Merchant>, [u8; 16], [u8; 16], [u8; 32])> {
        let customer = self
            .customers
            .get(self.plan.people[p.customer].name)
            .cloned()
            .context("customer")?;
        let merchant = self.merchants.get(p.shop).cloned().context("merchant")?;
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&self.people.nonce());
        Ok((
            customer,
            merchant,
            self.people.nonce(),
            self.people.nonce(),
            seed,
        ))
    }

    fn kind_of(&self, p: &Payment) -> &'static str {
        if self.plan.is_international(p) {
            "macro international"
        } else {
            "macro domestic"
        }
    }

    /// Counts a payment's end and narrates it; its id if it got one.
    fn count_payment(&mut self, p: &Payment, paid: Paid, expected: &str) -> Option<String> {
        let kind = self.kind_of(p);
        let who = format!(
            "{} pays {} {} ({})",
            self.plan.people[p.customer].name,
            SHOPS[p.shop].name,
            eur(p.amount_minor),
            if kind == "macro international" {
                "abroad"
            } else {
                "at home"
            }
        );
        match paid {
            Paid::Status { status, latency_ms } => {
                let state = if status.is_final {
                    status.state.clone()
                } else {
                    format!("{} (not final)", status.state)
                };
                self.rec.outcome(kind, &state);
                if status.state == "completed" {
                    self.rec.latency(kind, latency_ms);
                }
                self.progress
                    .say(&format!("{who}: {state} in {latency_ms:.0} ms"));
                self.scripted.push((
                    format!("{who}: expected {expected}, got {state}"),
                    state == expected,
                ));
                Some(status.payment_id)
            }
            Paid::Refused { code } => {
                self.rec.outcome(kind, &format!("refused: {code}"));
                self.progress.say(&format!("{who}: refused ({code})"));
                self.scripted.push((
                    format!("{who}: expected {expected}, got refused ({code})"),
                    false,
                ));
                None
            }
        }
    }

    fn pay_one(
        &mut self,
        p: &Payment,
        answer: Answer,
        expected: &str,
        terminals: &Terminals,
    ) -> anyhow::Result<Option<String>> {
        let (customer, merchant, trans_nonce, key, seed) = self.payment_parts(p)?;
        let trans = merchant.trans(eur(p.amount_minor), "order-twist", trans_nonce)?;
        terminals.expect(&trans_nonce, answer);
        let paid = self
            .rt
            .block_on(customer.pay(&trans, online::CUSTOMER_PIN, key, seed))?;
        Ok(self.count_payment(p, paid, expected))
    }

    /// The rejection, the expiry, the refund, the duplicated submission and
    /// the wrong-PIN lockout.
    fn twists(&mut self) -> anyhow::Result<()> {
        self.begin(
            "rejection, expiry, refund, lockout",
            5,
            &[
                "A shop rejects one payment and ignores another until the CPP's decision timeout: both holds are voided. A shop refunds half of a payment.",
                "A payment sent twice with one idempotency key is one payment; five wrong PINs lock a customer out until the CPP's operator unlocks them.",
            ],
        );
        let terminals = self
            .rt
            .block_on(async { Terminals::start(&self.merchants) });
        let plan = self.plan.clone();
        self.pay_one(&plan.rejected, Answer::Reject, "rejected", &terminals)?;
        self.progress.step();
        self.pay_one(&plan.expired, Answer::Hold, "expired", &terminals)?;
        self.progress.step();

        // Refund half of an earlier payment.
        let (index, refund_minor) = plan.refund;
        let refunded = &plan.payments[index];
        match self.payment_ids.get(index).cloned().flatten() {
            Some(id) => {
                let merchant = Arc::clone(&self.merchants[refunded.shop]);
                let key = self.people.nonce();
                let state = self
                    .rt
                    .block_on(merchant.refund(&id, eur(refund_minor), key))?;
                // The refund travels MPP → DC → CPP → banks; the customer's
                // CPP shows it once the money is back.
                let customer = self
                    .customers
                    .get(plan.people[refunded.customer].name)
                    .cloned()
                    .context("customer")?;
                let started = Instant::now();
                let state = self.rt.block_on(async {
                    loop {
                        if let Ok(status) = customer.device.client.status(&id, 0).await
                            && Amount::parse(&status.refunded)
                                .is_ok_and(|a| a.minor_units() == refund_minor)
                        {
                            break "completed".to_owned();
                        }
                        if started.elapsed() > Duration::from_millis(REFUND_WAIT_MS_MAX) {
                            break format!("{state} (not back within {REFUND_WAIT_MS_MAX} ms)");
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                });
                self.rec
                    .latency("refund", started.elapsed().as_secs_f64() * 1_000.0);
                self.rec.outcome("refund", &state);
                self.progress.say(&format!(
                    "{} refunds {} of {}'s {} payment: {state}",
                    merchant.name,
                    eur(refund_minor),
                    plan.people[refunded.customer].name,
                    eur(refunded.amount_minor)
                ));
                self.scripted.push((
                    format!("refund of {}: {state}", eur(refund_minor)),
                    state == "completed",
                ));
            }
            None => self
                .scripted
                .push(("refund: the payment to refund has no id".into(), false)),
        }
        self.progress.step();

        // One payment submitted twice with one key.
        let p = plan.duplicated.clone();
        let (customer, merchant, trans_nonce, key, seed) = self.payment_parts(&p)?;
        let trans = merchant.trans(eur(p.amount_minor), "order-dup", trans_nonce)?;
        terminals.expect(&trans_nonce, Answer::Approve);
        let first = self
            .rt
            .block_on(customer.pay(&trans, online::CUSTOMER_PIN, key, seed))?;
        // The phone sends the same PR again (a retry after a lost answer):
        // a new envelope, the same idempotency key.
        let (_, _, _, _, retry_seed) = self.payment_parts(&p)?;
        let second =
            self.rt
                .block_on(customer.pay(&trans, online::CUSTOMER_PIN, key, retry_seed))?;
        let (same, answered) = match (&first, &second) {
            (Paid::Status { status: a, .. }, Paid::Status { status: b, .. }) => {
                (a.payment_id == b.payment_id, format!("payment {}", b.state))
            }
            (_, Paid::Refused { code }) => (false, format!("refused ({code})")),
            (_, Paid::Status { status, .. }) => (false, status.state.clone()),
        };
        self.count_payment(&p, first, "completed");
        self.rec.outcome(self.kind_of(&p), "duplicate absorbed");
        self.progress.say(&format!(
            "the same PR sent again with its idempotency key: {}",
            if same {
                "the same payment answered, nothing charged twice".to_owned()
            } else {
                format!("NOT the same payment: {answered}")
            }
        ));
        self.scripted
            .push(("a duplicated submission is one payment".into(), same));
        self.progress.step();

        // Wrong PINs until locked, the right PIN refused, unlocked, paid.
        let p = plan.lockout.clone();
        let (customer, merchant, trans_nonce, _, _) = self.payment_parts(&p)?;
        let trans = merchant.trans(eur(p.amount_minor), "order-pin", trans_nonce)?;
        terminals.expect(&trans_nonce, Answer::Approve);
        let mut codes = Vec::new();
        for _ in 0..WRONG_PINS_TO_LOCK {
            let (_, _, _, key, seed) = self.payment_parts(&p)?;
            let paid = self
                .rt
                .block_on(customer.pay(&trans, online::WRONG_PIN, key, seed))?;
            codes.push(match paid {
                Paid::Refused { code } => code,
                Paid::Status { status, .. } => status.state,
            });
        }
        let (_, _, _, key, seed) = self.payment_parts(&p)?;
        let locked =
            match self
                .rt
                .block_on(customer.pay(&trans, online::CUSTOMER_PIN, key, seed))?
            {
                Paid::Refused { code } => code,
                Paid::Status { status, .. } => status.state,
            };
        let kind = self.kind_of(&p);
        for code in &codes {
            self.rec.outcome(kind, &format!("refused: {code}"));
        }
        self.rec.outcome(kind, &format!("refused: {locked}"));
        self.progress.say(&format!(
            "{} types a wrong PIN {WRONG_PINS_TO_LOCK} times ({}); then the right PIN: {locked}",
            customer.name,
            codes.join(", ")
        ));
        self.rt.block_on(customer.unlock(self.net()?))?;
        self.progress.say(&format!(
            "{}'s operator unlocks {}",
            customer.cpp, customer.name
        ));
        let (_, _, _, key, seed) = self.payment_parts(&p)?;
        let paid = self
            .rt
            .block_on(customer.pay(&trans, online::CUSTOMER_PIN, key, seed))?;
        self.count_payment(&p, paid, "completed");
        let lockout_ok = codes.last().is_some_and(|c| c == "account_locked")
            && codes.iter().rev().skip(1).all(|c| c == "wrong_pin")
            && locked == "account_locked";
        self.scripted.push((
            format!(
                "wrong PINs ({}) then the right PIN ({locked})",
                codes.join(", ")
            ),
            lockout_ok,
        ));
        self.progress.step();
        self.rt.block_on(terminals.stop());
        self.read_banks()?;
        self.end();
        Ok(())
    }

    /// Phones finish what is open and sync; `reconcile` checks the network.
    fn settle(&mut self) -> anyhow::Result<()> {
        let steps = self.phones.len() + 3;
        self.begin(
            "sync and settlement",
            u64::try_from(steps).unwrap_or(0),
            &[
                "Phones finish what loss left open (`wallet resume`) and sync: the office settles every sale and attests each wallet's balance.",
                "Banks deliver interbank transfers through their settlement accounts; `reconcile` checks books, money across banks and every payment's end state.",
            ],
        );
        self.sync_wallets()?;
        let report = self.rt.block_on(crate::reconcile::reconcile(
            &self.root.join("network"),
            Duration::from_secs(RECONCILE_WAIT_SECS),
        ))?;
        let states: Vec<String> = report
            .payments
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        self.progress.say(&format!(
            "reconcile: {} banks, payments {}; {}",
            report.banks,
            states.join(", "),
            if report.is_clean() {
                "nothing lost, nothing doubled".to_owned()
            } else {
                format!("{} mismatches", report.mismatches.len())
            }
        ));
        self.rec.check(
            "reconcile (SEMOPS)",
            report.is_clean(),
            if report.is_clean() {
                format!(
                    "{} banks' books balance, settlement accounts mirror each other, every payment final and matched: {}",
                    report.banks,
                    states.join(", ")
                )
            } else {
                report.mismatches.join("; ")
            },
        );
        self.progress.step();
        self.read_all()?;
        self.progress.step();
        self.end();
        Ok(())
    }

    /// Stops the office and checks its books; every invariant of the day.
    fn books(&mut self) -> anyhow::Result<()> {
        self.begin(
            "the books",
            2,
            &[
                "The office's books: every posting explained, balances sum to zero, no money lost; its accounts at the banks back every owner account and wallet.",
                "Conservation: the total over customers, shops, settlement, owners' office accounts and wallets is what the banks were given.",
            ],
        );
        let (ok, detail) = self.offline_atomicity()?;
        self.rec.check("offline purchases atomic", ok, detail);
        let crash = self.crash_settled == Some(true);
        self.rec.check(
            "killed phone resumed",
            crash,
            if crash {
                "the SIGKILLed buyer's resume settled its purchase with the seller"
            } else {
                "the SIGKILLed buyer's purchase was not settled by resume"
            },
        );
        let cheat = self.plan.people[self.plan.clone.cheat].name;
        let frauds = &self.rec.frauds;
        let caught = frauds.len() == 1
            && frauds[0].owner == cheat
            && frauds[0].first.hex != frauds[0].second.hex
            && self.copy_sync_code == Some(9);
        let detail = fraud_detail(
            frauds.len(),
            frauds.first().map(|f| f.owner.as_str()),
            self.copy_sync_code,
        );
        self.rec.check("double spend caught", caught, detail);
        let syncs_ok = self.sync_failures.is_empty();
        self.rec.check(
            "every wallet synced",
            syncs_ok,
            if syncs_ok {
                "every honest phone synced; the revoked one was refused".to_owned()
            } else {
                self.sync_failures.join("; ")
            },
        );
        let failed: Vec<String> = self
            .scripted
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(s, _)| s.clone())
            .collect();
        self.rec.check(
            "online payments end as scripted",
            failed.is_empty(),
            if failed.is_empty() {
                format!("{} scripted outcomes met", self.scripted.len())
            } else {
                failed.join("; ")
            },
        );
        self.progress.step();

        // The office, stopped, opened on its database.
        let wallets_minor = self.rec.ledger.last_total(PartyKind::Wallet);
        let owners_minor = self.rec.ledger.last_total(PartyKind::MoneyOffice);
        let office = self.office.as_mut().context("office")?;
        office.stop();
        let db_url = office.db.clone();
        let (books, balances) = self.rt.block_on(async {
            let db = mpay_sql::Db::connect(&db_url).await?;
            let office = mpay_office::Office::open(
                db,
                mpay_office::OfficeConfig::default_for(Currency::EUR),
                [7; 32],
                mpay_office::http::wall_clock(),
            )
            .await?;
            let books = office.check_books().await;
            let balances = office.balances().await?;
            anyhow::Ok((books, balances))
        })?;
        let minor = |name: &str| balances.get(name).map_or(0, Amount::minor_units);
        let external = minor(mpay_office::accounts::EXTERNAL);
        let loss = minor(mpay_office::accounts::LOSS);
        let float = minor(mpay_office::accounts::FLOAT);
        let books_ok = books.is_ok() && loss == 0;
        self.rec.check(
            "office books",
            books_ok,
            match &books {
                Ok(()) => format!(
                    "balances sum to zero and follow from the postings; float {}, loss {}",
                    eur(float),
                    eur(loss)
                ),
                Err(e) => format!("{e}; loss {}", eur(loss)),
            },
        );
        self.rec.invariants.push(ledger::office_backing(
            self.office_reserve_minor,
            -external,
            owners_minor,
            wallets_minor,
            Currency::EUR,
        ));
        let banks_ok = self.bank_problems.is_empty();
        self.rec.check(
            "bank books",
            banks_ok,
            if banks_ok {
                "every bank's books balance".to_owned()
            } else {
                self.bank_problems.join("; ")
            },
        );
        let deposited: i64 = self.plan.people.iter().map(|p| p.bank_deposit_minor).sum();
        self.rec.invariants.push(ledger::conservation(
            &self.rec.ledger.balances(0),
            deposited,
            Currency::EUR,
        ));
        self.progress.step();
        self.end();
        Ok(())
    }

    /// Reads every bank's books into a reading (and the office's reserve).
    fn read_banks(&mut self) -> anyhow::Result<()> {
        let net = self.net()?;
        let names = net.bank_names();
        let mut reading = Reading {
            t_ms: self.rec.ms(),
            ..Reading::default()
        };
        let mut reserve = 0i64;
        let mut problems = Vec::new();
        for bank in BANKS {
            let books = self.rt.block_on(net.bank(bank)?.books())?;
            if let Some(problem) = books.problem {
                problems.push(format!("{bank}: {problem}"));
            }
            for (account, balance) in &books.balances {
                let value = Amount::parse(balance)?.minor_units();
                if account == OFFICE_BANK_ACCOUNT {
                    reserve += value;
                } else if let Some((party, kind)) = bank_party(bank, account, &names) {
                    reading.parties.insert(party, (kind, value));
                }
            }
        }
        self.office_reserve_minor = reserve;
        self.bank_problems = problems;
        self.rec.ledger.push(reading);
        Ok(())
    }

    /// Reads the owners' office accounts and every phone's store.
    fn read_wallets(&mut self) -> anyhow::Result<()> {
        let mut reading = Reading {
            t_ms: self.rec.ms(),
            ..Reading::default()
        };
        for (owner, token) in &self.owner_tokens {
            let info = self.rt.block_on(self.office_client.owner_balance(token))?;
            reading.parties.insert(
                format!("office owner:{owner}"),
                (
                    PartyKind::MoneyOffice,
                    Amount::parse(&info.balance)?.minor_units(),
                ),
            );
        }
        let phones: Vec<Phone> = self
            .phones
            .iter()
            .chain(self.copy.as_ref())
            .cloned()
            .collect();
        let held: Vec<anyhow::Result<i64>> = std::thread::scope(|s| {
            let hs: Vec<_> = phones
                .iter()
                .map(|p| s.spawn(move || p.holding_minor()))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("a balance thread panicked")))
                })
                .collect()
        });
        for (p, v) in phones.iter().zip(held) {
            reading
                .parties
                .insert(format!("wallet {}", p.name), (PartyKind::Wallet, v?));
        }
        self.rec.ledger.push(reading);
        Ok(())
    }

    fn read_all(&mut self) -> anyhow::Result<()> {
        self.read_banks()?;
        self.read_wallets()
    }

    /// The report of the day.
    fn report(&self, backend: &str) -> DemoReport {
        let mut report = DemoReport::new(
            "mpay demo",
            self.args.seed,
            self.rec.started_at_ms,
            Currency::EUR,
        );
        report.duration_ms = self.rec.ms();
        report.backend = backend.to_owned();
        report.phases = self.rec.phases.clone();
        report.money = self.rec.ledger.series();
        report.latencies = self
            .rec
            .latencies
            .iter()
            .map(|(kind, samples)| LatencySeries {
                kind: kind.clone(),
                samples_ms: samples.clone(),
            })
            .collect();
        report.outcomes = self
            .rec
            .outcomes
            .iter()
            .map(|((kind, outcome), count)| OutcomeRow {
                kind: kind.clone(),
                outcome: outcome.clone(),
                count: *count,
            })
            .collect();
        report.micro = self.rec.micro.clone();
        report.frauds = self.rec.frauds.clone();
        report.balances = self.rec.ledger.balances(0);
        report.invariants = self.rec.invariants.clone();
        report
    }
}

/// Opens `account` at `bank` with an opening deposit (from the bank's
/// `external` account) of `deposit_minor`.
fn open(
    rt: &tokio::runtime::Runtime,
    net: &Services,
    bank: &str,
    account: &str,
    deposit_minor: i64,
) -> anyhow::Result<()> {
    let client = net.bank(bank)?;
    let id = AccountId::parse(account)?;
    let holder = account.split_once(':').map_or(account, |(_, name)| name);
    rt.block_on(client.open_with_deposit(&id, holder, eur(deposit_minor), "opening deposit"))
        .with_context(|| format!("opening {account} at {bank} with its deposit"))?;
    Ok(())
}

/// The double-spend invariant's detail, in words.
fn fraud_detail(records: usize, owner: Option<&str>, copy_exit: Option<i32>) -> String {
    let records = match records {
        1 => "1 fraud record".to_owned(),
        n => format!("{n} fraud records"),
    };
    let owner = owner.map_or_else(
        || "no owner named".to_owned(),
        |o| format!("owner named {o}"),
    );
    let exit = match copy_exit {
        Some(9) => "the copy's sync exited 9 (double spend)".to_owned(),
        Some(code) => format!("the copy's sync exited {code}, not 9 (double spend)"),
        None => "the copy never synced".to_owned(),
    };
    format!("{records}; {owner}; {exit}")
}

#[cfg(test)]
mod words {
    use super::fraud_detail;

    #[test]
    fn the_fraud_detail_has_no_debug_text() {
        // Issue 16: `owner named Some("mallory")`, `exit code Some(9)`.
        assert_eq!(
            fraud_detail(1, Some("mallory"), Some(9)),
            "1 fraud record; owner named mallory; the copy's sync exited 9 (double spend)"
        );
        assert_eq!(
            fraud_detail(0, None, None),
            "0 fraud records; no owner named; the copy never synced"
        );
        assert_eq!(
            fraud_detail(2, Some("mallory"), Some(1)),
            "2 fraud records; owner named mallory; the copy's sync exited 1, not 9 (double spend)"
        );
    }
}
