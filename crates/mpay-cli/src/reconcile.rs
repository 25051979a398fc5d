//! `mpay reconcile`: checks a whole SEMOPS network against itself once it
//! is quiet — every bank's books, money across banks, and every payment's
//! end state against its hold at the customer's bank and its record at the
//! merchant's MPP. Exits 2 on any mismatch, and says which.
//!
//! Micropayments (class `micro`) have no hold; instead their books must add
//! up: per customer at each CPP, Σ confirmed (DT or T) = Σ collected by
//! aggregated transfers − Σ paid back + pending total, and the append-only
//! log replays to the index; per MPP, what the CPP confirmed = paid by net
//! settlement + still owed, and what the CPP paid = what the MPP received;
//! per merchant at each MPP, Σ confirmed = paid out + being paid + owed,
//! and an MPP's advance stays within its credit limit (0 in mode one).
//! Batches, net settlement runs and payouts still `started` count as in
//! flight.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use mpay_bank::{BankClient, HoldId, HoldState};
use mpay_money::Amount;
use mpay_network::client::{
    CppClient, CppMicroSummary, MppClient, MppMicroSummary, MppPaymentRecord, PaymentRecord,
};
use mpay_network::{Directory, ServiceRole};
use mpay_processor::payment::State as PaymentState;
use serde::Serialize;

use crate::network::provision::{DIRECTORY_FILE, Operators};

/// Payments fetched per page of an operator listing.
const PAGE_LEN: u32 = 500;
/// Pause between two looks while waiting for the network to be quiet.
const QUIET_PROBE_MS: u64 = 250;

#[derive(Args, Clone)]
pub struct ReconcileArgs {
    /// The network folder.
    #[arg(long, env = "MPAY_NETWORK")]
    pub network: PathBuf,
    /// Wait up to this long for every payment to reach its end and every
    /// message to be delivered before judging, seconds.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What reconciliation found.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Banks checked.
    pub banks: usize,
    /// Payments by CPP state.
    pub payments: BTreeMap<String, u64>,
    /// Holds still pending over all banks.
    pub holds_pending: i64,
    /// Messages not yet delivered (banks' and services' outboxes) and
    /// refunds still moving.
    pub in_flight: i64,
    /// Σ over banks of every non-settlement account (0: all money deposited
    /// is in holder accounts).
    pub money_outside_settlement_minor: i64,
    /// Σ over banks of the settlement accounts (0 once nothing is in flight).
    pub settlement_minor: i64,
    /// Micropayment books checked (CPPs and MPPs with aggregation on).
    pub micro_books: usize,
    /// Every mismatch, in words.
    pub mismatches: Vec<String>,
}

impl Report {
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// A CPP payment state, as the payment core defines it; `None` for a name
/// no CPP state has.
fn cpp_state(state: &str) -> Option<PaymentState> {
    PaymentState::parse(state)
}

fn final_state(state: &str) -> bool {
    cpp_state(state).is_some_and(PaymentState::is_final)
}

/// The customer's money moved to the merchant (maybe refunded since).
fn paid(state: &str) -> bool {
    cpp_state(state).is_some_and(PaymentState::is_paid)
}

fn minor(text: &str) -> anyhow::Result<i64> {
    Ok(Amount::parse(text)
        .with_context(|| format!("amount `{text}`"))?
        .minor_units())
}

/// Refunds still moving (`refunding` at a CPP; `funding` or `relayed` at an
/// MPP) and micropayment transfers still `started` (settlement batches, net
/// settlement runs, payouts), from a service's Prometheus text.
fn refunds_moving(metrics: &str) -> i64 {
    metrics
        .lines()
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let refund = name.contains("_refunds{")
                && ["\"refunding\"", "\"funding\"", "\"relayed\""]
                    .iter()
                    .any(|s| name.contains(s));
            let micro = name.contains("_micro_") && name.contains("\"started\"");
            (refund || micro)
                .then(|| value.trim().parse::<i64>().ok())
                .flatten()
        })
        .sum()
}

/// The micropayment books of every CPP and MPP with aggregation on.
async fn micro_books(
    network: &Network,
) -> anyhow::Result<(
    Vec<(String, CppMicroSummary)>,
    Vec<(String, MppMicroSummary)>,
)> {
    let mut cpps = Vec::new();
    for cpp in network.directory.services_of_role(ServiceRole::Cpp) {
        let token = network.operators.token(&cpp.name)?;
        let summary = CppClient::new(&cpp.url)?
            .micro_summary(token)
            .await
            .with_context(|| format!("{}'s micropayment books", cpp.name))?;
        if summary.mode != "none" {
            cpps.push((cpp.name.clone(), summary));
        }
    }
    let mut mpps = Vec::new();
    for mpp in network.directory.services_of_role(ServiceRole::Mpp) {
        let token = network.operators.token(&mpp.name)?;
        let summary = MppClient::new(&mpp.url)?
            .micro_summary(token)
            .await
            .with_context(|| format!("{}'s micropayment books", mpp.name))?;
        if summary.mode != "none" {
            mpps.push((mpp.name.clone(), summary));
        }
    }
    Ok((cpps, mpps))
}

/// The micropayment mismatches, in words (module docs).
fn micro_mismatches(
    cpps: &[(String, CppMicroSummary)],
    mpps: &[(String, MppMicroSummary)],
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for (cpp, books) in cpps {
        if let Some(problem) = &books.log_problem {
            out.push(format!(
                "{cpp}: the micropayment log does not replay: {problem}"
            ));
        }
        if let Some(limit) = &books.credit_limit
            && minor(&books.credit_used)? > minor(limit)?
        {
            out.push(format!(
                "{cpp}: credit in use {} beyond its limit {limit}",
                books.credit_used
            ));
        }
        for c in &books.customers {
            let expected = minor(&c.collected)? - minor(&c.returned)? + minor(&c.pending)?;
            if minor(&c.confirmed)? != expected {
                out.push(format!(
                    "{cpp}: customer {} has {} of micropayments confirmed, but collected {} − returned {} + pending {}",
                    c.name, c.confirmed, c.collected, c.returned, c.pending
                ));
            }
        }
        for m in &books.mpps {
            if minor(&m.confirmed)? != minor(&m.paid)? + minor(&m.unpaid)? {
                out.push(format!(
                    "{cpp}: {} confirmed to {}'s merchants, but paid {} + owed {}",
                    m.confirmed, m.mpp, m.paid, m.unpaid
                ));
            }
            if let Some((_, mpp)) = mpps.iter().find(|(name, _)| *name == m.mpp) {
                let received = mpp
                    .cpps
                    .iter()
                    .find(|r| &r.cpp == cpp)
                    .map_or(Ok(0), |r| minor(&r.received))?;
                if received != minor(&m.paid)? {
                    out.push(format!(
                        "{cpp} paid {} {} by net settlement, {} received {}",
                        m.mpp,
                        m.paid,
                        m.mpp,
                        Amount::new(received, mpay_money::Currency::EUR)
                    ));
                }
            }
        }
    }
    for (mpp, books) in mpps {
        let advanced = minor(&books.advanced)?;
        if books.mode == "one" && advanced != 0 {
            out.push(format!(
                "{mpp}: advanced {} in one-intermediary mode",
                books.advanced
            ));
        }
        if let Some(limit) = &books.credit_limit
            && advanced > minor(limit)?
        {
            out.push(format!(
                "{mpp}: advanced {} beyond its credit limit {limit}",
                books.advanced
            ));
        }
        for m in &books.merchants {
            if minor(&m.confirmed)? != minor(&m.paid_out)? + minor(&m.paying)? + minor(&m.owed)? {
                out.push(format!(
                    "{mpp}: merchant {} has {} confirmed, but paid out {} + paying {} + owed {}",
                    m.name, m.confirmed, m.paid_out, m.paying, m.owed
                ));
            }
        }
    }
    Ok(out)
}

fn outbox_pending(metrics: &str) -> i64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.split_once(' ')?;
            name.ends_with("outbox_pending")
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .map(|v| v as i64)
        .sum()
}

struct Network {
    directory: Directory,
    operators: Operators,
}

impl Network {
    fn load(dir: &Path) -> anyhow::Result<Network> {
        Ok(Network {
            directory: Directory::load(dir.join(DIRECTORY_FILE))?,
            operators: Operators::load(dir)?,
        })
    }

    fn bank(&self, name: &str) -> anyhow::Result<BankClient> {
        let entry = self
            .directory
            .bank(name)
            .with_context(|| format!("no bank `{name}`"))?;
        Ok(BankClient::new(&entry.url)?.with_token(self.operators.token(name)?))
    }

    async fn cpp_payments(&self) -> anyhow::Result<Vec<(String, PaymentRecord)>> {
        let mut out = Vec::new();
        for cpp in self.directory.services_of_role(ServiceRole::Cpp) {
            let client = CppClient::new(&cpp.url)?;
            let token = self.operators.token(&cpp.name)?;
            let mut after = 0;
            loop {
                let page = client
                    .payments(token, after, PAGE_LEN)
                    .await
                    .with_context(|| format!("listing {}'s payments", cpp.name))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                out.extend(page.into_iter().map(|p| (cpp.name.clone(), p)));
            }
        }
        Ok(out)
    }

    async fn mpp_payments(&self) -> anyhow::Result<BTreeMap<String, (String, MppPaymentRecord)>> {
        let mut out = BTreeMap::new();
        for mpp in self.directory.services_of_role(ServiceRole::Mpp) {
            let client = MppClient::new(&mpp.url)?;
            let token = self.operators.token(&mpp.name)?;
            let mut after = 0;
            loop {
                let page = client
                    .payments(token, after, PAGE_LEN)
                    .await
                    .with_context(|| format!("listing {}'s payments", mpp.name))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for p in page {
                    out.insert(p.payment_id.clone(), (mpp.name.clone(), p));
                }
            }
        }
        Ok(out)
    }

    /// Undelivered messages over every bank and service, and pending holds.
    async fn in_flight(&self) -> anyhow::Result<(i64, i64)> {
        let mut messages = 0;
        let mut holds = 0;
        for bank in &self.directory.banks {
            let books = self.bank(&bank.name)?.books().await?;
            messages += books.outbox_pending;
            holds += books.holds_pending;
        }
        let http = mpay_tls::default_client(std::time::Duration::from_secs(30))?;
        for service in &self.directory.services {
            let text = http
                .get(format!("{}/metrics", service.url))
                .send()
                .await
                .with_context(|| format!("reaching {}", service.name))?
                .text()
                .await?;
            messages += outbox_pending(&text) + refunds_moving(&text);
        }
        Ok((messages, holds))
    }
}

/// Refunds the MPP started that its CPP has not (yet) applied, in words.
fn refunds_agree(
    payments: &[(String, PaymentRecord)],
    mpp_payments: &BTreeMap<String, (String, MppPaymentRecord)>,
) -> Vec<String> {
    payments
        .iter()
        .filter_map(|(cpp, p)| {
            let (mpp, seen) = mpp_payments.get(&p.payment_id)?;
            (seen.refunded != p.refunded).then(|| {
                format!(
                    "payment {}: {mpp} has refunded {}, {cpp} {}",
                    p.payment_id, seen.refunded, p.refunded
                )
            })
        })
        .collect()
}

/// Reconciles the network in `dir`, waiting up to `wait` for it to be quiet.
pub async fn reconcile(dir: &Path, wait: Duration) -> anyhow::Result<Report> {
    let network = Network::load(dir)?;
    let started = Instant::now();
    let (payments, mpp_payments, in_flight, holds_pending) = loop {
        let payments = network.cpp_payments().await?;
        let mpp_payments = network.mpp_payments().await?;
        let (in_flight, holds) = network.in_flight().await?;
        let quiet = in_flight == 0
            && payments.iter().all(|(_, p)| final_state(&p.state))
            && refunds_agree(&payments, &mpp_payments).is_empty();
        if quiet || started.elapsed() >= wait {
            break (payments, mpp_payments, in_flight, holds);
        }
        tokio::time::sleep(Duration::from_millis(QUIET_PROBE_MS)).await;
    };
    let mut report = Report {
        banks: network.directory.banks.len(),
        in_flight,
        holds_pending,
        ..Report::default()
    };

    // Every bank's books, and money across banks.
    for bank in &network.directory.banks {
        let books = network.bank(&bank.name)?.books().await?;
        if let Some(problem) = &books.problem {
            report
                .mismatches
                .push(format!("{}: books do not balance: {problem}", bank.name));
        }
        for (account, balance) in &books.balances {
            let value = minor(balance)?;
            if account.starts_with("settlement:") {
                report.settlement_minor += value;
            } else {
                report.money_outside_settlement_minor += value;
            }
        }
    }
    if report.money_outside_settlement_minor != 0 {
        report.mismatches.push(format!(
            "money created or lost: holder and external accounts over all banks sum to {} minor units, not 0",
            report.money_outside_settlement_minor
        ));
    }
    if in_flight == 0 && report.settlement_minor != 0 {
        report.mismatches.push(format!(
            "settlement accounts do not mirror each other: they sum to {} minor units with nothing in flight",
            report.settlement_minor
        ));
    }
    if in_flight != 0 {
        report.mismatches.push(format!(
            "{in_flight} messages still undelivered after {} s",
            wait.as_secs()
        ));
    }

    // Micropayment books.
    let (cpp_books, mpp_books) = micro_books(&network).await?;
    report.micro_books = cpp_books.len() + mpp_books.len();
    report
        .mismatches
        .extend(micro_mismatches(&cpp_books, &mpp_books)?);

    // Every payment's end state against its hold and its MPP record.
    report
        .mismatches
        .extend(refunds_agree(&payments, &mpp_payments));
    let mut open_holds = 0;
    for (cpp, payment) in &payments {
        *report.payments.entry(payment.state.clone()).or_default() += 1;
        let what = format!("{cpp} payment {}", payment.payment_id);
        if !final_state(&payment.state) {
            report
                .mismatches
                .push(format!("{what} is still `{}`", payment.state));
        }
        if minor(&payment.refunded)? > minor(&payment.amount)? {
            report.mismatches.push(format!(
                "{what}: refunded {} of {}",
                payment.refunded, payment.amount
            ));
        }
        let hold = match payment.hold_id {
            Some(id) => Some(network.bank(&payment.bank)?.hold(HoldId(id)).await?),
            None => None,
        };
        let hold_state = hold.as_ref().map(|h| h.state);
        if hold_state == Some(HoldState::Pending) {
            open_holds += 1;
        }
        let micro = payment.class == "micro";
        if micro && hold_state.is_some() {
            report
                .mismatches
                .push(format!("{what} is a micropayment with a hold"));
        }
        let expected: &[HoldState] = match cpp_state(&payment.state) {
            Some(PaymentState::Completed | PaymentState::Refunded) => &[HoldState::Posted],
            Some(PaymentState::Rejected | PaymentState::Expired | PaymentState::Declined) => {
                &[HoldState::Voided, HoldState::Expired]
            }
            _ => &[HoldState::Pending],
        };
        match hold_state {
            Some(state) if !expected.contains(&state) => report.mismatches.push(format!(
                "{what} is `{}` but its hold is {state:?}",
                payment.state
            )),
            None if !micro
                && !matches!(
                    cpp_state(&payment.state),
                    Some(PaymentState::Declined | PaymentState::Received | PaymentState::Expired)
                ) =>
            {
                report
                    .mismatches
                    .push(format!("{what} is `{}` but has no hold", payment.state))
            }
            _ => {}
        }
        if let Some(h) = &hold
            && minor(&h.amount.to_string())? != minor(&payment.amount)?
        {
            report.mismatches.push(format!(
                "{what}: hold of {} for a payment of {}",
                h.amount, payment.amount
            ));
        }
        if paid(&payment.state) {
            match mpp_payments.get(&payment.payment_id) {
                Some((_, seen)) if matches!(seen.state.as_str(), "completed" | "refunded") => {}
                Some((mpp, seen)) => report.mismatches.push(format!(
                    "{what} is `{}` but {mpp} has it `{}`",
                    payment.state, seen.state
                )),
                None => report
                    .mismatches
                    .push(format!("{what} is `{}` but no MPP knows it", payment.state)),
            }
        }
    }
    for (id, (mpp, seen)) in &mpp_payments {
        if matches!(seen.state.as_str(), "completed" | "refunded")
            && !payments
                .iter()
                .any(|(_, p)| &p.payment_id == id && paid(&p.state))
        {
            report.mismatches.push(format!(
                "{mpp} has payment {id} `{}` but its CPP does not",
                seen.state
            ));
        }
    }
    if holds_pending != open_holds {
        report.mismatches.push(format!(
            "banks hold {holds_pending} pending holds, payments account for {open_holds}"
        ));
    }
    Ok(report)
}

pub fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let report = runtime.block_on(reconcile(
        &args.network,
        Duration::from_secs(args.wait_secs),
    ))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "banks: {}  holds pending: {}  messages in flight: {}",
            report.banks, report.holds_pending, report.in_flight
        );
        let states: Vec<String> = report
            .payments
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect();
        println!(
            "payments: {}",
            if states.is_empty() {
                "none".into()
            } else {
                states.join(", ")
            }
        );
        println!(
            "money: holder and external accounts sum to {} (0 expected); settlement accounts sum to {}",
            report.money_outside_settlement_minor, report.settlement_minor
        );
        if report.micro_books > 0 {
            println!(
                "micropayment books checked: {} (CPPs and MPPs aggregating)",
                report.micro_books
            );
        }
        if report.is_clean() {
            println!("reconciled: nothing lost, nothing doubled");
        } else {
            for m in &report.mismatches {
                println!("MISMATCH: {m}");
            }
        }
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outbox_gauges_are_summed_from_prometheus_text() {
        let text = "# TYPE mpay_cpp_outbox_pending gauge\nmpay_cpp_outbox_pending 3\nmpay_cpp_payments_total 9\nother_outbox_pending 2\n";
        assert_eq!(outbox_pending(text), 5);
        assert_eq!(outbox_pending(""), 0);
        let text = "mpay_mpp_refunds{state=\"relayed\"} 2\nmpay_mpp_refunds{state=\"refunded\"} 7\nmpay_cpp_refunds{state=\"refunding\"} 1\n";
        assert_eq!(refunds_moving(text), 3);
        let text = "mpay_cpp_micro_batches{state=\"started\"} 2\nmpay_cpp_micro_batches{state=\"settled\"} 9\nmpay_mpp_micro_payouts{state=\"started\"} 1\n";
        assert_eq!(refunds_moving(text), 3);
    }
}
