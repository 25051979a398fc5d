//! The network-wide checks: a whole SEMOPS network against itself once it is
//! quiet — every bank's books, money across banks, and every payment's end
//! state against its hold at the customer's bank and its record at the
//! merchant's MPP. `mpay reconcile`, the demo and the chaos run call
//! [`reconcile`]; [`judge`] is the pure part, over a [`View`] of typed
//! records, so anything that can build a view (a simulator too) gets the
//! same checks.
//!
//! Micropayments (class `micro`) have no hold; instead their books must add
//! up: per customer at each CPP, Σ confirmed (DT or T) = Σ collected by
//! aggregated transfers − Σ paid back + pending total, and the append-only
//! log replays to the index; per MPP, what the CPP confirmed = paid by net
//! settlement + still owed, and what the CPP paid = what the MPP received;
//! per merchant at each MPP, Σ confirmed = paid out + being paid + owed,
//! and an MPP's advance stays within its credit limit (0 in mode one).
//!
//! The network is quiet when every service's `GET /v1/admin/work` and every
//! bank's outbox say nothing is moving (messages undelivered, refunds on
//! their way, micropayment transfers started), every payment is final at
//! its CPP and its MPP, and both processors agree on every refund.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use mpay_bank::{BankClient, BooksJson, HoldId, HoldState, HoldView};
use mpay_money::Amount;
use mpay_processor::merchant::State as MerchantState;
use mpay_processor::payment::State as PaymentState;
use serde::Serialize;

use crate::client::{
    CppClient, CppMicroSummary, DcClient, MppClient, MppMicroSummary, MppPaymentRecord,
    PaymentRecord,
};
use crate::directory::{Directory, ServiceRole};

/// Payments fetched per page of an operator listing.
pub const PAGE_LEN: u32 = 500;
/// Pause between two looks while waiting for the network to be quiet.
pub const QUIET_PROBE_MS: u64 = 250;

/// Why the network could not be read (not a mismatch: those are in the
/// [`Report`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReconcileError(String);

fn failed(doing: impl std::fmt::Display, e: impl std::fmt::Display) -> ReconcileError {
    ReconcileError(format!("{doing}: {e}"))
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
    /// Messages not yet delivered (banks' and services' outboxes), refunds
    /// still moving and micropayment transfers still started.
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
    /// No mismatch.
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Everything the checks look at, as typed records.
#[derive(Debug, Default)]
pub struct View {
    /// Every bank's books, by bank name.
    pub banks: Vec<(String, BooksJson)>,
    /// Every CPP's payments, with the CPP's name.
    pub payments: Vec<(String, PaymentRecord)>,
    /// Every MPP's payments by payment id, with the MPP's name.
    pub mpp_payments: BTreeMap<String, (String, MppPaymentRecord)>,
    /// The hold of every payment that has one, by (bank, hold id).
    pub holds: BTreeMap<(String, i64), HoldView>,
    /// The micropayment books of every CPP with aggregation on.
    pub cpp_books: Vec<(String, CppMicroSummary)>,
    /// The micropayment books of every MPP with aggregation on.
    pub mpp_books: Vec<(String, MppMicroSummary)>,
    /// Work still moving over every bank and service.
    pub in_flight: i64,
    /// Holds still pending over every bank.
    pub holds_pending: i64,
}

impl View {
    /// Quiet enough to judge: nothing moving, every payment final at both
    /// processors, both agreeing on every refund.
    pub fn is_quiet(&self) -> bool {
        self.in_flight == 0
            && self.payments.iter().all(|(_, p)| final_state(&p.state))
            && self.mpp_payments.values().all(|(_, p)| mpp_final(&p.state))
            && refunds_agree(&self.payments, &self.mpp_payments).is_empty()
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

/// An MPP record whose outcome was confirmed (or whose PN came too late to
/// be shown).
fn mpp_final(state: &str) -> bool {
    MerchantState::parse(state).is_some_and(MerchantState::is_final)
}

/// An MPP record that says the merchant was paid (maybe refunded since).
fn mpp_paid(state: &str) -> bool {
    MerchantState::parse(state).is_some_and(MerchantState::is_paid)
}

/// Minor units of an amount a service printed; a text that is not one is a
/// mismatch in itself, reported as such.
fn minor(text: &str, problems: &mut Vec<String>) -> i64 {
    match Amount::parse(text) {
        Ok(amount) => amount.minor_units(),
        Err(e) => {
            problems.push(format!("amount `{text}` does not parse: {e}"));
            0
        }
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

/// The micropayment mismatches, in words (module docs).
fn micro_mismatches(
    cpps: &[(String, CppMicroSummary)],
    mpps: &[(String, MppMicroSummary)],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (cpp, books) in cpps {
        if let Some(problem) = &books.log_problem {
            out.push(format!(
                "{cpp}: the micropayment log does not replay: {problem}"
            ));
        }
        if let Some(limit) = &books.credit_limit
            && minor(&books.credit_used, &mut bad) > minor(limit, &mut bad)
        {
            out.push(format!(
                "{cpp}: credit in use {} beyond its limit {limit}",
                books.credit_used
            ));
        }
        for c in &books.customers {
            let expected = minor(&c.collected, &mut bad) - minor(&c.returned, &mut bad)
                + minor(&c.pending, &mut bad);
            if minor(&c.confirmed, &mut bad) != expected {
                out.push(format!(
                    "{cpp}: customer {} has {} of micropayments confirmed, but collected {} − returned {} + pending {}",
                    c.name, c.confirmed, c.collected, c.returned, c.pending
                ));
            }
        }
        for m in &books.mpps {
            let paid = minor(&m.paid, &mut bad);
            if minor(&m.confirmed, &mut bad) != paid + minor(&m.unpaid, &mut bad) {
                out.push(format!(
                    "{cpp}: {} confirmed to {}'s merchants, but paid {} + owed {}",
                    m.confirmed, m.mpp, m.paid, m.unpaid
                ));
            }
            if let Some((_, mpp)) = mpps.iter().find(|(name, _)| *name == m.mpp) {
                let received = mpp.cpps.iter().find(|r| &r.cpp == cpp);
                let received_minor = received.map_or(0, |r| minor(&r.received, &mut bad));
                if received_minor != paid {
                    out.push(format!(
                        "{cpp} paid {} {} by net settlement, {} received {}",
                        m.mpp,
                        m.paid,
                        m.mpp,
                        received.map_or("nothing", |r| r.received.as_str())
                    ));
                }
            }
        }
    }
    for (mpp, books) in mpps {
        let advanced = minor(&books.advanced, &mut bad);
        if books.mode == "one" && advanced != 0 {
            out.push(format!(
                "{mpp}: advanced {} in one-intermediary mode",
                books.advanced
            ));
        }
        if let Some(limit) = &books.credit_limit
            && advanced > minor(limit, &mut bad)
        {
            out.push(format!(
                "{mpp}: advanced {} beyond its credit limit {limit}",
                books.advanced
            ));
        }
        for m in &books.merchants {
            let accounted = minor(&m.paid_out, &mut bad)
                + minor(&m.paying, &mut bad)
                + minor(&m.owed, &mut bad);
            if minor(&m.confirmed, &mut bad) != accounted {
                out.push(format!(
                    "{mpp}: merchant {} has {} confirmed, but paid out {} + paying {} + owed {}",
                    m.name, m.confirmed, m.paid_out, m.paying, m.owed
                ));
            }
        }
    }
    out.extend(bad);
    out
}

/// The checks over `view` (module docs); `waited` is how long the caller
/// waited for quiet, for the words of an in-flight mismatch.
pub fn judge(view: &View, waited: Duration) -> Report {
    let mut report = Report {
        banks: view.banks.len(),
        in_flight: view.in_flight,
        holds_pending: view.holds_pending,
        ..Report::default()
    };
    let mut bad = Vec::new();

    // Every bank's books, and money across banks.
    for (name, books) in &view.banks {
        if let Some(problem) = &books.problem {
            report
                .mismatches
                .push(format!("{name}: books do not balance: {problem}"));
        }
        for (account, balance) in &books.balances {
            let value = minor(balance, &mut bad);
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
    if view.in_flight == 0 && report.settlement_minor != 0 {
        report.mismatches.push(format!(
            "settlement accounts do not mirror each other: they sum to {} minor units with nothing in flight",
            report.settlement_minor
        ));
    }
    if view.in_flight != 0 {
        report.mismatches.push(format!(
            "{} messages still undelivered after {} s",
            view.in_flight,
            waited.as_secs()
        ));
    }

    // Micropayment books.
    report.micro_books = view.cpp_books.len() + view.mpp_books.len();
    report
        .mismatches
        .extend(micro_mismatches(&view.cpp_books, &view.mpp_books));

    // Every payment's end state against its hold and its MPP record.
    report
        .mismatches
        .extend(refunds_agree(&view.payments, &view.mpp_payments));
    let mut open_holds = 0;
    for (cpp, payment) in &view.payments {
        *report.payments.entry(payment.state.clone()).or_default() += 1;
        let what = format!("{cpp} payment {}", payment.payment_id);
        if !final_state(&payment.state) {
            report
                .mismatches
                .push(format!("{what} is still `{}`", payment.state));
        }
        if minor(&payment.refunded, &mut bad) > minor(&payment.amount, &mut bad) {
            report.mismatches.push(format!(
                "{what}: refunded {} of {}",
                payment.refunded, payment.amount
            ));
        }
        let hold = payment
            .hold_id
            .and_then(|id| view.holds.get(&(payment.bank.clone(), id)));
        if payment.hold_id.is_some() && hold.is_none() {
            report
                .mismatches
                .push(format!("{what}: its hold is unknown at {}", payment.bank));
        }
        let hold_state = hold.map(|h| h.state);
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
                && payment.hold_id.is_none()
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
        if let Some(h) = hold
            && h.amount.minor_units() != minor(&payment.amount, &mut bad)
        {
            report.mismatches.push(format!(
                "{what}: hold of {} for a payment of {}",
                h.amount, payment.amount
            ));
        }
        if paid(&payment.state) {
            match view.mpp_payments.get(&payment.payment_id) {
                Some((_, seen)) if mpp_paid(&seen.state) => {}
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
    for (id, (mpp, seen)) in &view.mpp_payments {
        // Once nothing moves, every payment an MPP showed its merchant has
        // had its outcome confirmed by the CPP.
        if !mpp_final(&seen.state) {
            report
                .mismatches
                .push(format!("{mpp} payment {id} is still `{}`", seen.state));
        }
        if mpp_paid(&seen.state)
            && !view
                .payments
                .iter()
                .any(|(_, p)| &p.payment_id == id && paid(&p.state))
        {
            report.mismatches.push(format!(
                "{mpp} has payment {id} `{}` but its CPP does not",
                seen.state
            ));
        }
    }
    if view.holds_pending != open_holds {
        report.mismatches.push(format!(
            "banks hold {} pending holds, payments account for {open_holds}",
            view.holds_pending
        ));
    }
    report.mismatches.extend(bad);
    report
}

/// Reads a running network over HTTP, as its operator (`token(name)`: the
/// operator token of the bank or service `name`).
pub struct Reader<'a> {
    directory: &'a Directory,
    token: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Reader<'a> {
    /// A reader of the network `directory` describes.
    pub fn new(directory: &'a Directory, token: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Reader { directory, token }
    }

    fn token(&self, name: &str) -> Result<String, ReconcileError> {
        (self.token)(name).ok_or_else(|| ReconcileError(format!("no operator token for {name}")))
    }

    fn bank(&self, name: &str) -> Result<BankClient, ReconcileError> {
        let entry = self
            .directory
            .bank(name)
            .ok_or_else(|| ReconcileError(format!("no bank `{name}`")))?;
        Ok(BankClient::new(&entry.url)
            .map_err(|e| failed(format!("a client of {name}"), e))?
            .with_token(&self.token(name)?))
    }

    async fn cpp_payments(&self) -> Result<Vec<(String, PaymentRecord)>, ReconcileError> {
        let mut out = Vec::new();
        for cpp in self.directory.services_of_role(ServiceRole::Cpp) {
            let client = CppClient::new(&cpp.url).map_err(|e| failed(&cpp.name, e))?;
            let token = self.token(&cpp.name)?;
            let mut after = 0;
            loop {
                let page = client
                    .payments(&token, after, PAGE_LEN)
                    .await
                    .map_err(|e| failed(format!("listing {}'s payments", cpp.name), e))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                out.extend(page.into_iter().map(|p| (cpp.name.clone(), p)));
            }
        }
        Ok(out)
    }

    async fn mpp_payments(
        &self,
    ) -> Result<BTreeMap<String, (String, MppPaymentRecord)>, ReconcileError> {
        let mut out = BTreeMap::new();
        for mpp in self.directory.services_of_role(ServiceRole::Mpp) {
            let client = MppClient::new(&mpp.url).map_err(|e| failed(&mpp.name, e))?;
            let token = self.token(&mpp.name)?;
            let mut after = 0;
            loop {
                let page = client
                    .payments(&token, after, PAGE_LEN)
                    .await
                    .map_err(|e| failed(format!("listing {}'s payments", mpp.name), e))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for p in page {
                    out.insert(p.payment_id.clone(), (mpp.name.clone(), p));
                }
            }
        }
        Ok(out)
    }

    /// Work still moving over every bank and service, and pending holds.
    async fn in_flight(&self) -> Result<(i64, i64), ReconcileError> {
        let mut moving = 0;
        let mut holds = 0;
        for bank in &self.directory.banks {
            let books = self
                .bank(&bank.name)?
                .books()
                .await
                .map_err(|e| failed(format!("{}'s books", bank.name), e))?;
            moving += books.outbox_pending;
            holds += books.holds_pending;
        }
        for service in &self.directory.services {
            let token = self.token(&service.name)?;
            let reached = |e| failed(format!("{}'s work in flight", service.name), e);
            let work = match service.role {
                ServiceRole::Cpp => CppClient::new(&service.url)
                    .map_err(|e| failed(&service.name, e))?
                    .work(&token)
                    .await
                    .map_err(reached)?,
                ServiceRole::Mpp => MppClient::new(&service.url)
                    .map_err(|e| failed(&service.name, e))?
                    .work(&token)
                    .await
                    .map_err(reached)?,
                ServiceRole::Dc => DcClient::new(&service.url)
                    .map_err(|e| failed(&service.name, e))?
                    .work(&token)
                    .await
                    .map_err(reached)?,
            };
            moving += work.outbox_pending + work.refunds_moving + work.transfers_started;
        }
        Ok((moving, holds))
    }

    /// The micropayment books of every CPP and MPP with aggregation on.
    async fn micro_books(
        &self,
    ) -> Result<
        (
            Vec<(String, CppMicroSummary)>,
            Vec<(String, MppMicroSummary)>,
        ),
        ReconcileError,
    > {
        let mut cpps = Vec::new();
        for cpp in self.directory.services_of_role(ServiceRole::Cpp) {
            let summary = CppClient::new(&cpp.url)
                .map_err(|e| failed(&cpp.name, e))?
                .micro_summary(&self.token(&cpp.name)?)
                .await
                .map_err(|e| failed(format!("{}'s micropayment books", cpp.name), e))?;
            if summary.mode != "none" {
                cpps.push((cpp.name.clone(), summary));
            }
        }
        let mut mpps = Vec::new();
        for mpp in self.directory.services_of_role(ServiceRole::Mpp) {
            let summary = MppClient::new(&mpp.url)
                .map_err(|e| failed(&mpp.name, e))?
                .micro_summary(&self.token(&mpp.name)?)
                .await
                .map_err(|e| failed(format!("{}'s micropayment books", mpp.name), e))?;
            if summary.mode != "none" {
                mpps.push((mpp.name.clone(), summary));
            }
        }
        Ok((cpps, mpps))
    }

    /// A [`View`] of the network as it is now.
    pub async fn view(&self) -> Result<View, ReconcileError> {
        let mut view = self.payments_and_work().await?;
        self.complete(&mut view).await?;
        Ok(view)
    }

    /// The part of a view that says whether the network is quiet: payments
    /// at both processors, work in flight and pending holds.
    async fn payments_and_work(&self) -> Result<View, ReconcileError> {
        let payments = self.cpp_payments().await?;
        let mpp_payments = self.mpp_payments().await?;
        let (in_flight, holds_pending) = self.in_flight().await?;
        Ok(View {
            payments,
            mpp_payments,
            in_flight,
            holds_pending,
            ..View::default()
        })
    }

    /// Adds the books, the holds and the micropayment books to `view`.
    async fn complete(&self, view: &mut View) -> Result<(), ReconcileError> {
        for bank in &self.directory.banks {
            let books = self
                .bank(&bank.name)?
                .books()
                .await
                .map_err(|e| failed(format!("{}'s books", bank.name), e))?;
            view.banks.push((bank.name.clone(), books));
        }
        for (_, payment) in &view.payments {
            if let Some(id) = payment.hold_id {
                let hold = self
                    .bank(&payment.bank)?
                    .hold(HoldId(id))
                    .await
                    .map_err(|e| failed(format!("hold {id} at {}", payment.bank), e))?;
                view.holds.insert((payment.bank.clone(), id), hold);
            }
        }
        let (cpp_books, mpp_books) = self.micro_books().await?;
        view.cpp_books = cpp_books;
        view.mpp_books = mpp_books;
        Ok(())
    }
}

/// Waits up to `wait` for the network to be quiet, then judges it (module
/// docs). `token(name)` gives the operator token of a bank or service.
pub async fn reconcile(
    directory: &Directory,
    token: &dyn Fn(&str) -> Option<String>,
    wait: Duration,
) -> Result<Report, ReconcileError> {
    let reader = Reader::new(directory, token);
    let started = Instant::now();
    loop {
        let mut view = reader.payments_and_work().await?;
        let waited = started.elapsed() >= wait;
        if view.is_quiet() || waited {
            reader.complete(&mut view).await?;
            // The books are read after the network was found quiet; a
            // service may have started work in between (a window sweep, a
            // net settlement run), whose money is then between banks. The
            // view stands only if the network is still quiet after it.
            let (in_flight, holds_pending) = reader.in_flight().await?;
            let still = in_flight == view.in_flight && holds_pending == view.holds_pending;
            if still || waited {
                return Ok(judge(&view, wait));
            }
        }
        tokio::time::sleep(Duration::from_millis(QUIET_PROBE_MS)).await;
    }
}

#[cfg(test)]
mod tests {
    use mpay_bank::AccountId;
    use mpay_identity::Timestamp;
    use mpay_money::Currency;

    use super::*;

    const ID: &str = "00112233445566778899aabbccddeeff";

    fn payment(state: &str, hold: Option<i64>) -> (String, PaymentRecord) {
        let record = serde_json::json!({
            "seq": 1, "payment_id": ID, "customer": "alice", "mpp": "mpp1",
            "amount": "6.00 EUR", "state": state, "bank": "bank1",
            "account": "cust:alice", "hold_id": hold, "refunded": "0.00 EUR",
            "reason": null, "deadline": 0, "created_at": 0, "updated_at": 0,
            "class": "macro", "micro_returned": "0.00 EUR",
        });
        (
            "cpp1".into(),
            serde_json::from_value(record).expect("record"),
        )
    }

    fn mpp_record(state: &str) -> (String, (String, MppPaymentRecord)) {
        let record = serde_json::json!({
            "seq": 1, "payment_id": ID, "merchant": "00", "cpp": "cpp1",
            "amount": "6.00 EUR", "state": state, "refunded": "0.00 EUR",
            "created_at": 0, "updated_at": 0,
        });
        (
            ID.into(),
            (
                "mpp1".into(),
                serde_json::from_value(record).expect("record"),
            ),
        )
    }

    fn hold(state: HoldState) -> HoldView {
        HoldView {
            id: HoldId(7),
            account: AccountId::parse("cust:alice").expect("account"),
            amount: Amount::new(600, Currency::EUR),
            reference: String::new(),
            placed_by: "cpp1".into(),
            expires_at: Timestamp(1),
            state,
            created_at: Timestamp(0),
            resolved_at: None,
            posting: None,
            destination: None,
            message: None,
        }
    }

    fn books(balances: &[(&str, &str)]) -> (String, BooksJson) {
        let balances: BTreeMap<String, String> = balances
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
        let books = serde_json::json!({
            "bank": "00", "currency": "EUR", "balanced": true,
            "balances": balances, "holds_pending": 0, "outbox_pending": 0,
        });
        (
            "bank1".into(),
            serde_json::from_value(books).expect("books"),
        )
    }

    /// `report` has a mismatch whose words contain `words`.
    fn assert_mismatch(report: &Report, words: &str) {
        assert!(
            report.mismatches.iter().any(|m| m.contains(words)),
            "no mismatch with `{words}` in {:?}",
            report.mismatches
        );
    }

    /// A completed payment of 6.00 from alice to bob, its hold posted.
    fn paid_view() -> View {
        View {
            banks: vec![books(&[
                ("cust:alice", "4.00 EUR"),
                ("shop:bob", "6.00 EUR"),
                ("external:deposits", "-10.00 EUR"),
            ])],
            payments: vec![payment("completed", Some(7))],
            mpp_payments: [mpp_record("completed")].into_iter().collect(),
            holds: [(("bank1".to_owned(), 7), hold(HoldState::Posted))]
                .into_iter()
                .collect(),
            ..View::default()
        }
    }

    #[test]
    fn a_paid_network_is_clean() {
        let view = paid_view();
        assert!(view.is_quiet());
        let report = judge(&view, Duration::ZERO);
        assert!(report.is_clean(), "{:?}", report.mismatches);
        assert_eq!(report.payments.get("completed"), Some(&1));
        assert_eq!(report.money_outside_settlement_minor, 0);
    }

    #[test]
    fn a_completed_payment_whose_hold_was_voided_is_a_mismatch() {
        let mut view = paid_view();
        view.holds
            .insert(("bank1".into(), 7), hold(HoldState::Voided));
        let report = judge(&view, Duration::ZERO);
        assert_mismatch(&report, "is `completed` but its hold is Voided");
    }

    #[test]
    fn money_created_at_a_bank_is_a_mismatch() {
        let mut view = paid_view();
        view.banks = vec![books(&[
            ("cust:alice", "4.01 EUR"),
            ("shop:bob", "6.00 EUR"),
        ])];
        let report = judge(&view, Duration::ZERO);
        assert_eq!(report.money_outside_settlement_minor, 1_001);
        assert_mismatch(&report, "money created or lost");
    }

    #[test]
    fn processors_that_disagree_are_a_mismatch() {
        let mut view = paid_view();
        view.payments = vec![payment("rejected", Some(7))];
        view.holds
            .insert(("bank1".into(), 7), hold(HoldState::Voided));
        let report = judge(&view, Duration::ZERO);
        assert_mismatch(
            &report,
            &format!("mpp1 has payment {ID} `completed` but its CPP does not"),
        );
    }

    #[test]
    fn work_in_flight_or_an_open_payment_is_not_quiet_and_is_reported() {
        let mut view = paid_view();
        view.in_flight = 2;
        assert!(!view.is_quiet());
        let report = judge(&view, Duration::from_secs(3));
        assert_mismatch(&report, "2 messages still undelivered after 3 s");
        let mut view = paid_view();
        view.payments = vec![payment("pending", Some(7))];
        assert!(!view.is_quiet());
    }

    #[test]
    fn an_amount_that_does_not_parse_is_a_mismatch_not_a_panic() {
        let mut view = paid_view();
        view.banks = vec![books(&[("cust:alice", "lots")])];
        let report = judge(&view, Duration::ZERO);
        assert_mismatch(&report, "amount `lots` does not parse");
    }
}
