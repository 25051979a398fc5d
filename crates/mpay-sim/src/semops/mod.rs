//! The seeded simulator of the whole SEMOPS network (`mpay sim semops`).
//!
//! One seed is one run of [`world::World`]: banks, CPPs, DCs and MPPs of two
//! regions in one process, driven by the processor cores of
//! `mpay-processor` over a simulated clock and a faulty network, with
//! dishonest requests among the customers' (a wrong PIN, another customer's
//! credentials, a stale replay). After every run the network-wide checks of
//! `mpay_network::reconcile::judge` look at it (every bank's books, money
//! across banks, every payment final at both processors with its hold
//! posted or voided, both processors agreeing), and one of the simulator's
//! own: every holder's balance is what its payments and refunds say. A seed
//! replays
//! identically ([`SemopsReport::trace_hash`]).
//!
//! [`Variant`] names deliberately broken services the checks must catch.

pub mod bank;
pub mod world;

use std::panic::AssertUnwindSafe;

/// The services as built, or with one deliberate fault.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Variant {
    /// The services as they are.
    #[default]
    Correct,
    /// The CPP's refund transfer is retried under a fresh idempotency key:
    /// a lost bank answer pays the customer twice.
    RefundTransferWithoutKey,
    /// The CPP forgets the refund keys (and frames) it applied: a
    /// duplicated refund relay is applied twice.
    RefundRelayWithoutKey,
    /// The CPP sends the PN when it records the PR, before the hold is
    /// placed (outside the payment core, which therefore does not know it
    /// went out): a payment whose hold is then refused is never confirmed
    /// to the MPP.
    NoticeBeforeHold,
    /// The CPP marks a payment past its deadline `expired` without voiding
    /// its hold.
    ExpiryWithoutVoid,
    /// The bank forgets that it refused a request for want of funds: a copy
    /// of a refused hold that arrives once money has come in places a hold
    /// for a payment its CPP already declined (the bank as it was before
    /// this simulator found it; seed 1670).
    RefusalForgotten,
    /// The CPP ends a rejected or expired micropayment without taking it
    /// out of the customer's pending total: the customer pays for what its
    /// merchant refused.
    MicroNotTakenBack,
    /// The CPP asks for a net settlement transfer under a fresh key at
    /// every try: a lost bank answer pays the MPP twice.
    NetRunWithoutKey,
    /// The MPP pays out ahead of net settlement without its credit check
    /// (two intermediaries): it advances more than its limit.
    AdvanceBeyondCredit,
    /// The MPP's payout of a merchant's micropayments leaves the last one
    /// out of its total while marking it paid out: the money stays with
    /// the MPP, every account agrees with the records, and only the
    /// merchant is short of what its customers' CPPs confirmed.
    PayoutShort,
}

impl Variant {
    /// Every variant.
    pub const ALL: [Variant; 10] = [
        Variant::Correct,
        Variant::RefundTransferWithoutKey,
        Variant::RefundRelayWithoutKey,
        Variant::NoticeBeforeHold,
        Variant::ExpiryWithoutVoid,
        Variant::RefusalForgotten,
        Variant::MicroNotTakenBack,
        Variant::NetRunWithoutKey,
        Variant::AdvanceBeyondCredit,
        Variant::PayoutShort,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Correct => "correct",
            Variant::RefundTransferWithoutKey => "refund-transfer-without-key",
            Variant::RefundRelayWithoutKey => "refund-relay-without-key",
            Variant::NoticeBeforeHold => "notice-before-hold",
            Variant::ExpiryWithoutVoid => "expiry-without-void",
            Variant::RefusalForgotten => "refusal-forgotten",
            Variant::MicroNotTakenBack => "micro-not-taken-back",
            Variant::NetRunWithoutKey => "net-run-without-key",
            Variant::AdvanceBeyondCredit => "advance-beyond-credit",
            Variant::PayoutShort => "payout-short",
        }
    }

    /// From its name.
    pub fn parse(text: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == text)
    }
}

/// What happened in one seed, or summed over many: payments and how they
/// ended, refunds, micropayments, faults and messages.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Payment requests the customers made (each sent up to three times).
    pub requests: u64,
    /// Requests among them that were dishonest (wrong PIN, foreign
    /// credentials, stale replays).
    pub dishonest: u64,
    /// Requests the CPPs refused before recording anything.
    pub refused_requests: u64,
    /// Payments the CPPs recorded.
    pub payments: u64,
    /// Payments completed (refunded ones included).
    pub completed: u64,
    /// Payments refunded in full.
    pub refunded_in_full: u64,
    /// Payments rejected by their merchants.
    pub rejected: u64,
    /// Payments past their deadline.
    pub expired: u64,
    /// Payments whose hold the bank refused.
    pub declined: u64,
    /// Refund legs the CPPs completed.
    pub refunds: u64,
    /// Refund requests refused (not completed yet, or beyond the amount).
    pub refunds_refused: u64,
    /// Refund legs' transfers refused for want of funds (the money still on
    /// its way) and asked again under the next attempt's key.
    pub refund_attempts: u64,
    /// Decisions taken or arriving too late.
    pub late_decisions: u64,
    /// Micropayments the CPPs aggregated (not taken as macro payments).
    pub micropayments: u64,
    /// Of them, deferred below θ (a DT confirmation once approved).
    pub deferred: u64,
    /// Customers' aggregated transfers made (at θ or by the window).
    pub batches_settled: u64,
    /// Customers' aggregated transfers refused (the customer blocked).
    pub batches_failed: u64,
    /// Collected micropayments paid back after a rejection or expiry.
    pub micro_returns: u64,
    /// Net settlement runs paid (CPP → MPP).
    pub net_runs: u64,
    /// Net settlement transfers refused for want of funds (the customers'
    /// transfers still to come) and asked again under the next attempt.
    pub run_attempts: u64,
    /// Payouts to merchants made (MPP → merchant).
    pub payouts: u64,
    /// Of them, paid out ahead of net settlement (two intermediaries).
    pub payouts_ahead: u64,
    /// Micropayments approved by a standing approval as their PN arrived.
    pub standing_approved: u64,
    /// Service crashes.
    pub crashes: u64,
    /// Of them, the seed's forced crash at its chosen step (0 or 1 per
    /// seed: 0 when the service never reached that step).
    pub forced_crashes: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages lost (dropped, partitioned, or to a process that was down).
    pub dropped: u64,
    /// Events handled.
    pub events: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.requests += other.requests;
        self.dishonest += other.dishonest;
        self.refused_requests += other.refused_requests;
        self.payments += other.payments;
        self.completed += other.completed;
        self.refunded_in_full += other.refunded_in_full;
        self.rejected += other.rejected;
        self.expired += other.expired;
        self.declined += other.declined;
        self.refunds += other.refunds;
        self.refunds_refused += other.refunds_refused;
        self.refund_attempts += other.refund_attempts;
        self.late_decisions += other.late_decisions;
        self.micropayments += other.micropayments;
        self.deferred += other.deferred;
        self.batches_settled += other.batches_settled;
        self.batches_failed += other.batches_failed;
        self.micro_returns += other.micro_returns;
        self.net_runs += other.net_runs;
        self.run_attempts += other.run_attempts;
        self.payouts += other.payouts;
        self.payouts_ahead += other.payouts_ahead;
        self.standing_approved += other.standing_approved;
        self.crashes += other.crashes;
        self.forced_crashes += other.forced_crashes;
        self.sent += other.sent;
        self.dropped += other.dropped;
        self.events += other.events;
    }
}

/// What one seed did and what the checks found.
#[derive(Clone, Debug, Default)]
pub struct SemopsReport {
    /// The seed.
    pub seed: u64,
    /// The services' variant.
    pub variant: Variant,
    /// What happened.
    pub counts: Counts,
    /// Simulated time the run took (ms).
    pub sim_ms: u64,
    /// What the checks found; empty when every one held.
    pub violations: Vec<String>,
    /// A digest of every event in order: equal for equal runs.
    pub trace_hash: [u8; 32],
}

/// Runs one seed; a panic is a violation, not a crash of the caller.
pub fn run_seed(seed: u64, variant: Variant) -> SemopsReport {
    match std::panic::catch_unwind(AssertUnwindSafe(|| world::World::new(seed, variant).run())) {
        Ok(report) => report,
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".to_owned());
            SemopsReport {
                seed,
                variant,
                violations: vec![format!("panicked: {what}")],
                ..SemopsReport::default()
            }
        }
    }
}

/// Many seeds' totals.
#[derive(Clone, Debug, Default)]
pub struct SemopsSummary {
    /// Seeds run.
    pub seeds: u64,
    /// What happened, over all seeds.
    pub counts: Counts,
    /// The seeds with a violation, in seed order.
    pub failures: Vec<SemopsReport>,
}

impl SemopsSummary {
    fn add(&mut self, r: SemopsReport) {
        self.seeds += 1;
        self.counts.add(&r.counts);
        if !r.violations.is_empty() {
            self.failures.push(r);
        }
    }

    fn merge(&mut self, other: SemopsSummary) {
        self.seeds += other.seeds;
        self.counts.add(&other.counts);
        self.failures.extend(other.failures);
    }

    /// Violations over all seeds.
    pub fn violations(&self) -> usize {
        self.failures.iter().map(|r| r.violations.len()).sum()
    }
}

/// Runs `count` seeds from `first` on `threads` threads.
pub fn run_seeds(first: u64, count: u64, threads: usize, variant: Variant) -> SemopsSummary {
    let mut total = crate::across_threads(
        first,
        count,
        threads,
        move |summary: &mut SemopsSummary, seed| summary.add(run_seed(seed, variant)),
        SemopsSummary::merge,
    );
    total.failures.sort_by_key(|r| r.seed);
    total
}
