//! The micropayment phase: several customers pay shops streams of small
//! amounts side by side. Below θ the CPP confirms at once (DT) with no
//! hold; the payment that takes a customer's pending total to θ makes the
//! CPP collect the whole total in one bank transfer (T); the window
//! collects what is left; net settlement pays the MPPs, which pass it on
//! to the shops. The pending totals are read from the CPPs' operator view
//! (`GET /v1/admin/micro`) during the whole phase: they become the report's
//! micropayment chart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use mpay_api::semops::{CppClient, CppMicroSummary};
use mpay_money::Amount;
use mpay_network::{MicroConfig, MicroMode};
use mpay_report::PendingSeries;
use mpay_semops::ConfirmationOutcome;

use super::Day;
use super::offline::eur;
use super::online::{self, Answer, Paid, Terminals};
use super::plan::{MICRO_THETA_MINOR, Payment, SHOPS, Twist};

/// The largest micropayment the CPPs take.
const MICRO_LIMIT_MINOR: i64 = 1_00;
/// The CPPs' window: a pending total older than this is collected without
/// θ (short, so the demo sees it happen).
pub const MICRO_WINDOW_MS: u64 = 4_000;
/// Pause of the CPPs' window sweep.
const MICRO_SWEEP_INTERVAL_MS: u64 = 200;
/// Pause between net settlement runs toward the MPPs.
const MICRO_SETTLE_INTERVAL_MS: u64 = 1_000;
/// Pause between readings of the CPPs' micropayment books.
const SAMPLE_INTERVAL_MS: u64 = 100;
/// How long the window and net settlement may take to clear everything
/// after the last micropayment.
const SETTLED_WAIT_MS_MAX: u64 = 30_000;

/// The `[micro]` table of the demo's CPPs and MPPs.
pub fn config() -> MicroConfig {
    MicroConfig {
        mode: MicroMode::One,
        limit: eur(MICRO_LIMIT_MINOR).to_string(),
        theta: eur(MICRO_THETA_MINOR).to_string(),
        window_ms: MICRO_WINDOW_MS,
        sweep_interval_ms: MICRO_SWEEP_INTERVAL_MS,
        settle_interval_ms: MICRO_SETTLE_INTERVAL_MS,
        ..MicroConfig::default()
    }
}

fn minor(text: &str) -> anyhow::Result<i64> {
    Ok(Amount::parse(text)
        .with_context(|| format!("amount {text:?}"))?
        .minor_units())
}

/// One customer's pending total over time, as read from its CPP.
#[derive(Default)]
struct Track {
    theta_minor: i64,
    window_ms: u64,
    points: Vec<(u64, i64)>,
    collected_minor: i64,
    /// (when, how much was collected).
    settlements: Vec<(u64, i64)>,
}

/// The readings of one CPP's books; one reading at a time, so each one is
/// newer than the last.
struct Books {
    client: CppClient,
    token: String,
    started: Instant,
    tracks: tokio::sync::Mutex<BTreeMap<String, Track>>,
    last: tokio::sync::Mutex<Option<CppMicroSummary>>,
}

impl Books {
    /// Reads the CPP's books and records the pending totals and
    /// collections of `customers`; the summary read.
    async fn sample(&self, customers: &[String]) -> anyhow::Result<CppMicroSummary> {
        let mut tracks = self.tracks.lock().await;
        let summary = self.client.micro_summary(&self.token).await?;
        let t = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        for c in summary
            .customers
            .iter()
            .filter(|c| customers.contains(&c.name))
        {
            let track = tracks.entry(c.name.clone()).or_default();
            track.theta_minor = minor(&c.theta)?;
            track.window_ms = c.window_ms;
            let pending = minor(&c.pending)?;
            if track.points.last().is_none_or(|(_, last)| *last != pending) {
                track.points.push((t, pending));
            }
            let collected = minor(&c.collected)?;
            if collected > track.collected_minor {
                track
                    .settlements
                    .push((t, collected - track.collected_minor));
                track.collected_minor = collected;
            }
        }
        *self.last.lock().await = Some(summary.clone());
        Ok(summary)
    }
}

/// One micropayment as it ended.
struct Done {
    customer: String,
    shop: &'static str,
    amount_minor: i64,
    /// DT or T: what the pending total before it said it must be.
    expected: ConfirmationOutcome,
    /// The customer's pending total read before the payment.
    pending_before: i64,
    /// What the CPP collected from the customer between the reading before
    /// the payment and the one after it.
    collected_meanwhile: i64,
    state: String,
    outcome: Option<ConfirmationOutcome>,
    latency_ms: f64,
}

impl Done {
    /// The outcome is the expected one, or the other one because the window
    /// collected the customer's pending total between the reading and the
    /// payment (the customer pays one at a time, so nothing else moves its
    /// books meanwhile):
    /// - a DT where a T was expected: the window emptied the total first (a
    ///   DT collects nothing, so anything collected was the window's);
    /// - a T where a DT was expected: the window's batch was in flight when
    ///   the payment came, so it went as a macro payment; the window
    ///   collected the pending total alone, where a batch at θ would have
    ///   collected it with this payment's amount.
    fn outcome_explained(&self) -> bool {
        use ConfirmationOutcome::{DelayedTransfer, Transferred};
        match (self.expected, self.outcome) {
            (expected, Some(got)) if expected == got => true,
            (Transferred, Some(DelayedTransfer)) => self.collected_meanwhile > 0,
            (DelayedTransfer, Some(Transferred)) => {
                self.collected_meanwhile > 0
                    && self.collected_meanwhile < self.pending_before + self.amount_minor
            }
            _ => false,
        }
    }
}

/// A customer's pending and collected totals in a CPP's books (zero when it
/// has none yet).
fn own_books(summary: &CppMicroSummary, name: &str) -> anyhow::Result<(i64, i64)> {
    match summary.customers.iter().find(|c| c.name == name) {
        Some(c) => Ok((minor(&c.pending)?, minor(&c.collected)?)),
        None => Ok((0, 0)),
    }
}

fn label(outcome: Option<ConfirmationOutcome>) -> &'static str {
    match outcome {
        Some(ConfirmationOutcome::DelayedTransfer) => "DT below θ",
        Some(ConfirmationOutcome::Transferred) => "T at θ",
        Some(_) => "other confirmation",
        None => "no confirmation",
    }
}

impl Day {
    /// Streams of micropayments, one per customer, side by side.
    pub(super) fn micropayments(&mut self) -> anyhow::Result<()> {
        let streams = self.plan.micro.clone();
        let total: usize = streams.iter().map(|s| s.payments.len()).sum();
        self.begin(
            "micropayments",
            u64::try_from(total + 1).unwrap_or(0),
            &[
                "Customers pay shops streams of small amounts (up to 1.00 EUR) through their CPP: each is confirmed at once (DT), with no hold and nothing moved at the bank.",
                "When a customer's pending total reaches θ the CPP collects it in one transfer (T); the window collects what is left; net settlement pays the MPPs, which pay the shops.",
            ],
        );
        let net = self.net()?;
        let mut books: BTreeMap<String, Arc<Books>> = BTreeMap::new();
        for cpp in ["cpp1", "cpp2"] {
            let service = net
                .resolved
                .services
                .iter()
                .find(|s| s.name == cpp)
                .with_context(|| format!("no service {cpp}"))?;
            books.insert(
                cpp.to_owned(),
                Arc::new(Books {
                    client: CppClient::new(&service.url)?,
                    token: net.operators.token(cpp)?.to_owned(),
                    started: self.rec.started,
                    tracks: tokio::sync::Mutex::new(BTreeMap::new()),
                    last: tokio::sync::Mutex::new(None),
                }),
            );
        }
        let names: Vec<String> = streams
            .iter()
            .map(|s| self.plan.people[s.customer].name.to_owned())
            .collect();
        // Every streaming customer starts the phase with nothing pending.
        let t0 = self.rec.ms();
        for s in &streams {
            let b = books
                .get(self.plan.people[s.customer].cpp())
                .context("the customer's CPP")?;
            self.rt.block_on(b.tracks.lock()).insert(
                self.plan.people[s.customer].name.to_owned(),
                Track {
                    theta_minor: MICRO_THETA_MINOR,
                    window_ms: MICRO_WINDOW_MS,
                    points: vec![(t0, 0)],
                    ..Track::default()
                },
            );
        }
        let terminals = self
            .rt
            .block_on(async { Terminals::start(&self.merchants) });

        // Every TRANS signed up front; the terminals approve them all.
        let mut jobs = Vec::new();
        for (s, name) in streams.iter().zip(&names) {
            let mut payments = Vec::new();
            for (k, m) in s.payments.iter().enumerate() {
                let p = Payment {
                    customer: s.customer,
                    shop: m.shop,
                    amount_minor: m.amount_minor,
                    twist: Twist::Approve,
                };
                let (customer, merchant, nonce, key, seed) = self.payment_parts(&p)?;
                let trans =
                    merchant.trans(eur(m.amount_minor), &format!("micro-{name}-{k}"), nonce)?;
                terminals.expect(&nonce, Answer::Approve);
                payments.push((
                    customer,
                    SHOPS[m.shop].name,
                    m.amount_minor,
                    trans,
                    key,
                    seed,
                ));
            }
            let cpp = self.plan.people[s.customer].cpp();
            let cpp_books = Arc::clone(books.get(cpp).context("the customer's CPP")?);
            jobs.push((name.clone(), cpp_books, payments));
        }

        // The CPPs' books are read all along.
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (books, names, stop) = (books.clone(), names.clone(), Arc::clone(&stop));
            self.rt.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    for b in books.values() {
                        // A missed reading is taken again at the next turn.
                        let _ = b.sample(&names).await;
                    }
                    tokio::time::sleep(Duration::from_millis(SAMPLE_INTERVAL_MS)).await;
                }
            })
        };

        let mut set = tokio::task::JoinSet::new();
        for (name, cpp_books, payments) in jobs {
            let names = names.clone();
            set.spawn_on(
                async move {
                    let mut done = Vec::new();
                    for (customer, shop, amount_minor, trans, key, seed) in payments {
                        let before = cpp_books.sample(&names).await?;
                        let (pending, collected_before) = own_books(&before, &name)?;
                        let expected = if pending + amount_minor >= MICRO_THETA_MINOR {
                            ConfirmationOutcome::Transferred
                        } else {
                            ConfirmationOutcome::DelayedTransfer
                        };
                        let paid = customer
                            .pay(&trans, online::CUSTOMER_PIN, key, seed)
                            .await?;
                        let (state, outcome, latency_ms) = match paid {
                            Paid::Status { status, latency_ms } => {
                                let outcome = customer.outcome(&status);
                                let state = if status.is_final {
                                    status.state
                                } else {
                                    format!("{} (not final)", status.state)
                                };
                                (state, outcome, latency_ms)
                            }
                            Paid::Refused { code } => (format!("refused: {code}"), None, 0.0),
                        };
                        let after = cpp_books.sample(&names).await?;
                        let (_, collected_after) = own_books(&after, &name)?;
                        done.push(Done {
                            customer: name.clone(),
                            shop,
                            amount_minor,
                            expected,
                            pending_before: pending,
                            collected_meanwhile: collected_after - collected_before,
                            state,
                            outcome,
                            latency_ms,
                        });
                    }
                    anyhow::Ok(done)
                },
                self.rt.handle(),
            );
        }
        let results = self.rt.block_on(set.join_all());
        let mut done = Vec::new();
        for r in results {
            done.extend(r?);
        }
        self.read_banks()?;

        let mut mismatches = Vec::new();
        let (mut dt, mut t) = (0usize, 0usize);
        // T confirmations of payments that went as macro payments while the
        // window's batch was in flight (see `Done::outcome_explained`).
        let mut as_macro = 0usize;
        for d in &done {
            let got = label(d.outcome);
            let kind = if d.state == "completed" {
                got.to_owned()
            } else {
                d.state.clone()
            };
            self.rec.outcome("micropayment", &kind);
            if d.state == "completed" {
                self.rec.latency("micropayment", d.latency_ms);
            }
            match d.outcome {
                Some(ConfirmationOutcome::DelayedTransfer) => dt += 1,
                Some(ConfirmationOutcome::Transferred) => t += 1,
                _ => {}
            }
            if d.expected == ConfirmationOutcome::DelayedTransfer
                && d.outcome == Some(ConfirmationOutcome::Transferred)
                && d.outcome_explained()
            {
                as_macro += 1;
            }
            if d.state != "completed" || !d.outcome_explained() {
                mismatches.push(format!(
                    "{} pays {} {}: expected {}, got {} ({got})",
                    d.customer,
                    d.shop,
                    eur(d.amount_minor),
                    label(Some(d.expected)),
                    d.state
                ));
            }
            self.progress.step();
        }
        self.progress.say(&format!(
            "{} micropayments from {}: {dt} DT below θ {}, {t} T at θ",
            done.len(),
            names.join(", "),
            eur(MICRO_THETA_MINOR)
        ));

        // The window collects what is left; net settlement pays the MPPs.
        let started = Instant::now();
        let settled = self.rt.block_on(async {
            loop {
                let mut clear = true;
                for b in books.values() {
                    let summary = b.sample(&names).await?;
                    clear &= summary.customers.iter().all(|c| {
                        !names.contains(&c.name) || minor(&c.pending).is_ok_and(|p| p == 0)
                    }) && summary.batches_started == 0
                        && summary.runs_started == 0
                        && summary
                            .mpps
                            .iter()
                            .all(|m| minor(&m.unpaid).is_ok_and(|u| u == 0));
                }
                if clear {
                    break anyhow::Ok(true);
                }
                if started.elapsed() > Duration::from_millis(SETTLED_WAIT_MS_MAX) {
                    break Ok(false);
                }
                tokio::time::sleep(Duration::from_millis(SAMPLE_INTERVAL_MS)).await;
            }
        })?;
        stop.store(true, Ordering::Relaxed);
        self.rt.block_on(poller).context("the books reader")?;
        self.rt.block_on(terminals.stop());

        // The chart's series and the settlements seen.
        let mut series = Vec::new();
        let (mut by_theta, mut by_window) = (0usize, 0usize);
        for b in books.values() {
            let tracks = self.rt.block_on(b.tracks.lock());
            for (name, track) in tracks.iter() {
                for (_, amount) in &track.settlements {
                    if *amount >= track.theta_minor {
                        by_theta += 1;
                    } else {
                        by_window += 1;
                    }
                }
                series.push(PendingSeries {
                    label: name.clone(),
                    theta_minor: track.theta_minor,
                    window_ms: track.window_ms,
                    points: track.points.clone(),
                    settlements: track.settlements.iter().map(|(t, _)| *t).collect(),
                });
            }
        }
        series.sort_by(|a, b| a.label.cmp(&b.label));
        self.rec.micro = series;
        self.progress.say(&format!(
            "the CPPs collected {by_theta} totals at θ and {by_window} by the {} s window; net settlement {}",
            MICRO_WINDOW_MS / 1_000,
            if settled {
                "paid the MPPs everything"
            } else {
                "did NOT finish"
            }
        ));

        self.scripted.push((
            if mismatches.is_empty() {
                format!("{} micropayments: {dt} DT below θ, {t} T at θ", done.len())
            } else {
                format!("micropayments not as scripted: {}", mismatches.join("; "))
            },
            mismatches.is_empty()
                && done.len()
                    == self
                        .plan
                        .micro
                        .iter()
                        .map(|s| s.payments.len())
                        .sum::<usize>(),
        ));
        self.scripted.push((
            if as_macro == 0 {
                format!("{by_theta} totals collected at θ for {t} T confirmations")
            } else {
                format!(
                    "{by_theta} totals collected at θ for {t} T confirmations, {as_macro} of them macro payments while the window collected"
                )
            },
            by_theta + as_macro == t && t > 0,
        ));
        self.scripted.push((
            format!("{by_window} totals collected by the window"),
            by_window > 0,
        ));

        // The CPPs' micropayment books.
        let mut problems = Vec::new();
        if !settled {
            problems.push(format!(
                "pending totals or net settlement not cleared within {SETTLED_WAIT_MS_MAX} ms"
            ));
        }
        let confirmed_here: i64 = done
            .iter()
            .filter(|d| d.state == "completed")
            .map(|d| d.amount_minor)
            .sum();
        let mut confirmed_total = 0i64;
        for (cpp, b) in &books {
            let Some(summary) = self.rt.block_on(b.last.lock()).clone() else {
                problems.push(format!("{cpp}: never read"));
                continue;
            };
            if let Some(problem) = &summary.log_problem {
                problems.push(format!("{cpp}: log: {problem}"));
            }
            for c in &summary.customers {
                let (confirmed, collected, returned, pending) = (
                    minor(&c.confirmed)?,
                    minor(&c.collected)?,
                    minor(&c.returned)?,
                    minor(&c.pending)?,
                );
                confirmed_total += confirmed;
                if confirmed != collected - returned + pending {
                    problems.push(format!(
                        "{cpp} {}: confirmed {} ≠ collected {} − returned {} + pending {}",
                        c.name, c.confirmed, c.collected, c.returned, c.pending
                    ));
                }
            }
            for m in &summary.mpps {
                if m.confirmed != m.paid {
                    problems.push(format!(
                        "{cpp} → {}: confirmed {} but paid {}",
                        m.mpp, m.confirmed, m.paid
                    ));
                }
            }
        }
        if confirmed_total != confirmed_here {
            problems.push(format!(
                "the CPPs confirmed {} of micropayments, the customers saw {} confirmed",
                eur(confirmed_total),
                eur(confirmed_here)
            ));
        }
        self.rec.check(
            "micropayment books",
            problems.is_empty(),
            if problems.is_empty() {
                format!(
                    "{} confirmed = collected − returned + pending for every customer; every MPP paid what it was confirmed",
                    eur(confirmed_total)
                )
            } else {
                problems.join("; ")
            },
        );
        self.progress.step();
        self.read_banks()?;
        self.end();
        Ok(())
    }
}
