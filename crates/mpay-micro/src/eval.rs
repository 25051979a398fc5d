//! The evaluation harness: a seeded synthetic workload replayed under three
//! policies (a bank transfer per micropayment; the best single θ and W; k-means
//! θ and W per cluster), judged on customers the fits never saw.
//!
//! # The workload (how it is generated)
//!
//! Every customer is drawn from its own Xoshiro256+ stream, seeded from
//! `(seed, customer index)`, so one seed replays the whole run and one
//! customer can be regenerated alone. The shapes are chosen to look like
//! pay-per-use micropayments (articles, transit, API calls, in-app items),
//! not to favour any policy:
//!
//! - **Payment rate** per customer: log-normal, median
//!   [`RATE_MEDIAN_PER_DAY`] a day, σ = [`RATE_SIGMA`] (a few customers pay
//!   hundreds of times a day, many a few times a week). Payments come in
//!   sessions (a Poisson process of sessions; 1 + a geometric number of
//!   payments per session, mean [`SESSION_PAYMENTS_MEAN`]; exponential gaps
//!   of mean [`SESSION_GAP_MEAN_S`] s inside a session).
//! - **Amounts**: a per-customer scale, log-normal with median
//!   [`AMOUNT_SCALE_MEDIAN_MINOR`] minor units, σ = [`AMOUNT_SCALE_SIGMA`];
//!   each payment log-normal around that scale, σ = [`AMOUNT_SIGMA`],
//!   rounded to a minor unit, at least one. Draws above the micro limit are
//!   macro payments: counted, not aggregated.
//! - **Defaults**: a latent fragility `z ~ N(0, 1)` gives a default
//!   probability `logistic(DEFAULT_LOGIT_MEAN + DEFAULT_LOGIT_SIGMA · z)`
//!   over the evaluation period (about 3 % on average). A defaulter stops at
//!   a uniform time in the period: it makes no more payments and its bank
//!   account pays nothing more, so its DT-confirmed pending total is lost
//!   (recognised when the next settlement transfer fails). Fragility also
//!   shows, noisily, in the history: failed transfers over the history
//!   period are Poisson with mean `HISTORY_FAILURES_PER_RISK · p +
//!   HISTORY_FAILURES_BASE` (accounts that bounce now and then are more
//!   likely to default later). Rate and amount are independent of
//!   fragility: nothing else tells a defaulter.
//! - **Periods**: [`WorkloadConfig::history_days`] of history give the
//!   k-means features (observed rate, mean amount, failed transfers); the
//!   policies are then judged over [`WorkloadConfig::horizon_days`].
//!
//! # The judgement
//!
//! Customers are split by index: a share
//! ([`WorkloadConfig::fit_permille`]) fits, the rest is held out. On the
//! fitting customers: the single (θ, W) is the grid point with the least
//! total cost; k-means is fitted on their history features and default
//! outcomes, and its two scales ([`crate::cluster`]) are the grid point with
//! the least total cost among those whose peak and mean exposure are no
//! more than the single θ's. Both are then replayed on the held-out
//! customers, with the per-payment baseline.
//!
//! Every micropayment goes through [`policy::decide`], the CPP's own rule.
//! Each customer's money is conserved (`accepted = settled + lost`, asserted),
//! pending totals left at the end of the period are settled then (a
//! transfer each), and a failed transfer costs the fixed fee.
//!
//! # Costs (the named cost model)
//!
//! [`CostModel`]: a fixed fee per bank transfer attempt plus an ad valorem
//! part (parts per million of the amount moved, rounded up) on transfers
//! that succeed. Total cost = bank cost + money lost to defaults. All money
//! is integer minor units; only the reported ratios are floats.

use mpay_identity::Timestamp;
use mpay_money::{Amount, Currency};
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use crate::cluster::{self, ClusterConfig, ClusterModel, CustomerFeatures, DAY_MS};
use crate::policy::{self, Decision, MicroLimits, Pending};

/// Median payments per day.
pub const RATE_MEDIAN_PER_DAY: f64 = 4.0;
/// σ of ln(rate).
pub const RATE_SIGMA: f64 = 1.0;
/// Highest payment rate per day.
pub const RATE_MAX_PER_DAY: f64 = 300.0;
/// Mean payments per session.
pub const SESSION_PAYMENTS_MEAN: f64 = 2.5;
/// Mean gap between payments of one session, seconds.
pub const SESSION_GAP_MEAN_S: f64 = 90.0;
/// Median per-customer amount scale, minor units.
pub const AMOUNT_SCALE_MEDIAN_MINOR: f64 = 40.0;
/// σ of ln(amount scale).
pub const AMOUNT_SCALE_SIGMA: f64 = 0.8;
/// σ of ln(amount) around the scale.
pub const AMOUNT_SIGMA: f64 = 0.7;
/// Mean of the default logit.
pub const DEFAULT_LOGIT_MEAN: f64 = -4.2;
/// σ of the default logit.
pub const DEFAULT_LOGIT_SIGMA: f64 = 1.3;
/// History failures per unit of default probability.
pub const HISTORY_FAILURES_PER_RISK: f64 = 8.0;
/// History failures of a customer with no default risk (bad luck, mistakes).
pub const HISTORY_FAILURES_BASE: f64 = 0.05;
/// Width of one exposure sample on held-out customers, seconds (peak
/// exposure is the largest sample; mean exposure is exact).
pub const EXPOSURE_SAMPLE_S: u32 = 60;
/// Width of one exposure sample while searching the grids on the fitting
/// customers: coarser, so that the samples of every candidate stay in cache.
pub const FIT_EXPOSURE_SAMPLE_S: u32 = 3_600;

/// θ grid of the single-θ search, in units of the currency (×10^exponent).
pub const THETA_GRID_UNITS: [i64; 9] = [1, 2, 5, 10, 20, 50, 100, 200, 500];
/// W grid of the single-θ search, hours.
pub const WINDOW_GRID_HOURS: [u64; 6] = [1, 6, 24, 72, 168, 720];
/// θ scale grid of the k-means search.
pub const THETA_SCALE_GRID: [f64; 9] = [0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0];
/// W scale grid of the k-means search.
pub const WINDOW_SCALE_GRID: [f64; 5] = [0.5, 1.0, 2.0, 4.0, 8.0];

/// The bank's prices (module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CostModel {
    /// Per transfer attempt.
    pub fixed_fee: Amount,
    /// Of the amount moved, parts per million, on success.
    pub ad_valorem_ppm: i64,
}

impl CostModel {
    /// The default: 0.25 per transfer + 0.1 % (a SEPA-like flat fee with a
    /// small ad valorem part).
    pub fn default_for(currency: Currency) -> CostModel {
        let unit = 10_i64.pow(currency.exponent());
        CostModel {
            fixed_fee: Amount::new(unit / 4, currency),
            ad_valorem_ppm: 1_000,
        }
    }

    /// Fee of one attempt moving `amount_minor` (0 if it failed).
    pub fn fee_minor(&self, amount_minor: i64, succeeded: bool) -> i64 {
        let ad_valorem = if succeeded {
            // Rounded up; i128 so no amount overflows.
            let part =
                (i128::from(amount_minor) * i128::from(self.ad_valorem_ppm) + 999_999) / 1_000_000;
            i64::try_from(part).unwrap_or(i64::MAX)
        } else {
            0
        };
        self.fixed_fee.minor_units().saturating_add(ad_valorem)
    }
}

/// The workload and the split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Customers.
    pub customers: usize,
    /// The seed of everything.
    pub seed: u64,
    /// History (features) period, days.
    pub history_days: u32,
    /// Evaluation period, days.
    pub horizon_days: u32,
    /// Currency.
    pub currency: Currency,
    /// The micro limit, minor units.
    pub micro_max_minor: i64,
    /// Share of customers that fit, per mille (the rest is held out).
    pub fit_permille: u32,
    /// Worker threads.
    pub threads: usize,
}

impl WorkloadConfig {
    /// 100,000 customers, 30 + 30 days, EUR, micro limit 10.00, half fit.
    pub fn default_with(customers: usize, seed: u64) -> WorkloadConfig {
        WorkloadConfig {
            customers,
            seed,
            history_days: 30,
            horizon_days: 30,
            currency: Currency::EUR,
            micro_max_minor: 1_000,
            fit_permille: 500,
            threads: 2,
        }
    }

    fn horizon_s(&self) -> u32 {
        self.horizon_days.saturating_mul(86_400)
    }

    fn is_fit(&self, index: usize) -> bool {
        // Interleaved so both halves see the same mix.
        (index % 1_000) < usize::try_from(self.fit_permille).unwrap_or(1_000)
    }
}

/// One customer of the workload.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Seen over the history period.
    pub features: CustomerFeatures,
    /// Second of the evaluation period at which it defaults, if it does.
    pub default_at_s: Option<u32>,
    /// Macro payments drawn (above the micro limit) over the evaluation period.
    pub macro_payments: u64,
}

/// A micropayment of the evaluation period: (second, amount in minor units).
pub type Payment = (u32, i64);

struct Draw(Xoshiro256Plus);

impl Draw {
    fn new(seed: u64, index: usize) -> Draw {
        let mut z = seed
            ^ u64::try_from(index)
                .unwrap_or(u64::MAX)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Draw(Xoshiro256Plus::seed_from_u64(z ^ (z >> 31)))
    }
    fn uniform(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let u = (self.0.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0);
        u
    }
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.uniform()).ln()
    }
    fn poisson(&mut self, mean: f64) -> u64 {
        // Knuth's method; the means here are small.
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.uniform();
        while p > limit && k < 1_000 {
            k += 1;
            p *= self.uniform();
        }
        k
    }
}

/// Fills `stream` with `[start_s, end_s)` payments of a customer with this
/// rate and scale; returns the number of macro draws.
fn payments(
    draw: &mut Draw,
    rate_per_day: f64,
    scale_minor: f64,
    micro_max_minor: i64,
    start_s: f64,
    end_s: f64,
    stream: &mut Vec<Payment>,
) -> u64 {
    let sessions_per_s = rate_per_day / SESSION_PAYMENTS_MEAN / 86_400.0;
    let mut macros = 0;
    let mut t = start_s + draw.exponential(1.0 / sessions_per_s);
    // Geometric extra payments with mean SESSION_PAYMENTS_MEAN - 1.
    let more = (SESSION_PAYMENTS_MEAN - 1.0) / SESSION_PAYMENTS_MEAN;
    while t < end_s {
        let mut s = t;
        loop {
            #[allow(clippy::cast_possible_truncation)]
            let amount = (scale_minor * (AMOUNT_SIGMA * draw.normal()).exp())
                .round()
                .max(1.0) as i64;
            if s < end_s {
                if amount > micro_max_minor {
                    macros += 1;
                } else {
                    // s in [0, end_s) which fits u32 seconds.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    stream.push(((s - start_s) as u32, amount));
                }
            }
            if draw.uniform() >= more {
                break;
            }
            s += draw.exponential(SESSION_GAP_MEAN_S);
        }
        t += draw.exponential(1.0 / sessions_per_s);
    }
    macros
}

/// Draws customer `index`: its history features and, in `stream`, its
/// evaluation-period micropayments (cut at its default).
pub fn customer(config: &WorkloadConfig, index: usize, stream: &mut Vec<Payment>) -> Customer {
    let mut draw = Draw::new(config.seed, index);
    let rate = (RATE_MEDIAN_PER_DAY.ln() + RATE_SIGMA * draw.normal())
        .exp()
        .min(RATE_MAX_PER_DAY);
    let scale = (AMOUNT_SCALE_MEDIAN_MINOR.ln() + AMOUNT_SCALE_SIGMA * draw.normal()).exp();
    let z = draw.normal();
    let p_default = 1.0 / (1.0 + (-(DEFAULT_LOGIT_MEAN + DEFAULT_LOGIT_SIGMA * z)).exp());
    let failures = draw.poisson(HISTORY_FAILURES_PER_RISK * p_default + HISTORY_FAILURES_BASE);
    let horizon_s = f64::from(config.horizon_s());
    let defaults = draw.uniform() < p_default;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let default_at_s = defaults.then(|| (draw.uniform() * horizon_s) as u32);

    stream.clear();
    let history_s = f64::from(config.history_days) * 86_400.0;
    payments(
        &mut draw,
        rate,
        scale,
        config.micro_max_minor,
        0.0,
        history_s,
        stream,
    );
    #[allow(clippy::cast_precision_loss)]
    let features = CustomerFeatures {
        payments_per_day: stream.len() as f64 / f64::from(config.history_days.max(1)),
        mean_amount_minor: if stream.is_empty() {
            0.0
        } else {
            stream.iter().map(|&(_, a)| a as f64).sum::<f64>() / stream.len() as f64
        },
        failed_transfers: failures,
    };
    stream.clear();
    let macro_payments = payments(
        &mut draw,
        rate,
        scale,
        config.micro_max_minor,
        history_s,
        history_s + horizon_s,
        stream,
    );
    if let Some(d) = default_at_s {
        stream.retain(|&(t, _)| t < d);
    }
    Customer {
        features,
        default_at_s,
        macro_payments,
    }
}

/// What one policy did to a set of customers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Customers replayed.
    pub customers: u64,
    /// Micropayments accepted.
    pub micropayments: u64,
    /// Bank transfer attempts.
    pub transfers: u64,
    /// Of them, failed.
    pub failed_transfers: u64,
    /// Sum of accepted micropayments.
    pub accepted_minor: i64,
    /// Collected by successful transfers.
    pub settled_minor: i64,
    /// Lost to defaults.
    pub lost_minor: i64,
    /// Bank fees.
    pub fees_minor: i64,
    /// ∫ exposure dt, minor units × seconds.
    pub exposure_integral: i128,
}

impl Totals {
    fn merge(&mut self, other: &Totals) {
        self.customers += other.customers;
        self.micropayments += other.micropayments;
        self.transfers += other.transfers;
        self.failed_transfers += other.failed_transfers;
        self.accepted_minor += other.accepted_minor;
        self.settled_minor += other.settled_minor;
        self.lost_minor += other.lost_minor;
        self.fees_minor += other.fees_minor;
        self.exposure_integral += other.exposure_integral;
    }
    /// Fees plus losses.
    pub fn total_cost_minor(&self) -> i64 {
        self.fees_minor.saturating_add(self.lost_minor)
    }
}

/// Exposure samples over the period: `deltas[i]` is the change in minute
/// `i`; the exposure at the end of a minute is the prefix sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExposureSeries {
    deltas: Vec<i64>,
    sample_s: u32,
}

impl ExposureSeries {
    /// Samples of `sample_s` seconds over `[0, horizon_s]`.
    pub fn new(horizon_s: u32, sample_s: u32) -> Self {
        let sample_s = sample_s.max(1);
        let samples = usize::try_from(horizon_s / sample_s + 1).unwrap_or(0);
        ExposureSeries {
            deltas: vec![0; samples],
            sample_s,
        }
    }
    fn add(&mut self, t_s: u32, delta: i64) {
        let i = usize::try_from(t_s / self.sample_s).unwrap_or(usize::MAX);
        if let Some(d) = self.deltas.get_mut(i) {
            *d += delta;
        }
    }
    fn merge(&mut self, other: &ExposureSeries) {
        for (a, b) in self.deltas.iter_mut().zip(&other.deltas) {
            *a += b;
        }
    }
    /// The largest sampled exposure, and the exposure after the last sample
    /// (zero when the books are closed).
    pub fn peak_and_final(&self) -> (i64, i64) {
        let mut level = 0i64;
        let mut peak = 0i64;
        for d in &self.deltas {
            level += d;
            peak = peak.max(level);
        }
        (peak, level)
    }
}

/// Replays one customer's micropayments under `limits` (`None`: a bank
/// transfer per micropayment), adding to `totals` and `series`.
pub fn replay(
    stream: &[Payment],
    default_at_s: Option<u32>,
    limits: Option<&MicroLimits>,
    cost: &CostModel,
    horizon_s: u32,
    totals: &mut Totals,
    mut series: Option<&mut ExposureSeries>,
) {
    let mut t_acc = Totals {
        customers: 1,
        ..Totals::default()
    };
    let Some(limits) = limits else {
        for &(_, amount) in stream {
            t_acc.micropayments += 1;
            t_acc.transfers += 1;
            t_acc.accepted_minor += amount;
            t_acc.settled_minor += amount;
            t_acc.fees_minor += cost.fee_minor(amount, true);
        }
        totals.merge(&t_acc);
        return;
    };
    let currency = limits.currency();
    let mut pending = Pending::empty(currency);
    let mut last_change_s = 0u32;
    let window_s = u32::try_from(limits.window_ms() / 1_000).unwrap_or(u32::MAX);
    let solvent_at = |t: u32| default_at_s.is_none_or(|d| t < d);
    // Settles (or loses) the pending total at `t`.
    let close = |pending: &mut Pending,
                 t: u32,
                 last: &mut u32,
                 acc: &mut Totals,
                 series: &mut Option<&mut ExposureSeries>| {
        let total = pending.total.minor_units();
        acc.exposure_integral += i128::from(total) * i128::from(t.saturating_sub(*last));
        *last = t;
        acc.transfers += 1;
        if solvent_at(t) {
            acc.settled_minor += total;
            acc.fees_minor += cost.fee_minor(total, true);
        } else {
            acc.failed_transfers += 1;
            acc.lost_minor += total;
            acc.fees_minor += cost.fee_minor(total, false);
        }
        if let Some(s) = series.as_deref_mut() {
            s.add(t, -total);
        }
        *pending = Pending::empty(currency);
    };
    for &(t, amount) in stream {
        // The window sweep ran before this payment if it was due.
        if let Some(oldest) = pending.oldest {
            let due = u32::try_from(oldest.0 / 1_000)
                .unwrap_or(u32::MAX)
                .saturating_add(window_s);
            if due <= t {
                close(
                    &mut pending,
                    due,
                    &mut last_change_s,
                    &mut t_acc,
                    &mut series,
                );
            }
        }
        let a = Amount::new(amount, currency);
        let now = Timestamp(u64::from(t) * 1_000);
        // The workload draws micropayments only, in one currency, positive.
        let decision = policy::decide(&pending, limits, a, now).unwrap_or(Decision::Macro);
        t_acc.micropayments += 1;
        t_acc.accepted_minor += amount;
        match decision {
            Decision::Defer { total } => {
                t_acc.exposure_integral += i128::from(pending.total.minor_units())
                    * i128::from(t.saturating_sub(last_change_s));
                last_change_s = t;
                pending.total = total;
                pending.count += 1;
                pending.oldest.get_or_insert(now);
                if let Some(s) = series.as_deref_mut() {
                    s.add(t, amount);
                }
            }
            Decision::Settle { total } => {
                // The trigger is never DT-confirmed: it rides on the transfer.
                pending.total = total;
                let before = total.minor_units() - amount;
                t_acc.exposure_integral +=
                    i128::from(before) * i128::from(t.saturating_sub(last_change_s));
                last_change_s = t;
                if let Some(s) = series.as_deref_mut() {
                    s.add(t, amount);
                }
                close(&mut pending, t, &mut last_change_s, &mut t_acc, &mut series);
            }
            Decision::Macro | Decision::Refuse(_) => {
                unreachable!("the workload draws micropayments of an open customer only")
            }
        }
    }
    if let Some(oldest) = pending.oldest {
        let due = u32::try_from(oldest.0 / 1_000)
            .unwrap_or(u32::MAX)
            .saturating_add(window_s);
        // A defaulter's total is lost at the sweep; a solvent customer's is
        // settled at the sweep or at the end of the period.
        close(
            &mut pending,
            due.min(horizon_s),
            &mut last_change_s,
            &mut t_acc,
            &mut series,
        );
    }
    // Conservation per customer: every accepted cent is settled or lost.
    assert_eq!(
        t_acc.accepted_minor,
        t_acc.settled_minor + t_acc.lost_minor,
        "money appeared or vanished in a replay"
    );
    totals.merge(&t_acc);
}

/// One policy's figures on the held-out customers.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyReport {
    /// Its name.
    pub name: String,
    /// What it did.
    pub totals: Totals,
    /// Largest sampled exposure, minor units.
    pub peak_exposure_minor: i64,
    /// Time-mean exposure, minor units.
    pub mean_exposure_minor: i64,
}

impl PolicyReport {
    /// Bank transfer attempts per micropayment.
    pub fn transfers_per_micropayment(&self) -> f64 {
        ratio(self.totals.transfers, self.totals.micropayments)
    }
    /// Micropayments per bank transfer.
    pub fn micropayments_per_transfer(&self) -> f64 {
        ratio(self.totals.micropayments, self.totals.transfers)
    }
    /// Bank cost per micropayment, minor units.
    pub fn bank_cost_per_micropayment_minor(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let fees = self.totals.fees_minor as f64;
        #[allow(clippy::cast_precision_loss)]
        let n = self.totals.micropayments.max(1) as f64;
        fees / n
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let r = a as f64 / b.max(1) as f64;
    r
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// The workload.
    pub config: WorkloadConfig,
    /// The cost model.
    pub cost: CostModel,
    /// Fitting / held-out customers.
    pub fit_customers: usize,
    /// Held-out customers.
    pub held_out_customers: usize,
    /// Default rate over the evaluation period, all customers.
    pub default_rate: f64,
    /// The chosen single limits.
    pub single: MicroLimits,
    /// The fitted k-means model at the chosen scales.
    pub model: ClusterModel,
    /// The chosen scales (θ, W).
    pub scales: (f64, f64),
    /// Whether some scale met the exposure bound on the fitting customers.
    pub exposure_bound_met_on_fit: bool,
    /// Per transfer, single θ, k-means on held-out customers.
    pub per_payment: PolicyReport,
    /// Best single θ.
    pub best_single: PolicyReport,
    /// k-means.
    pub kmeans: PolicyReport,
}

impl Report {
    /// Fraction of total cost k-means saves against the best single θ on
    /// held-out customers (negative: it costs more).
    pub fn kmeans_saving(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let single = self.best_single.totals.total_cost_minor() as f64;
        #[allow(clippy::cast_precision_loss)]
        let kmeans = self.kmeans.totals.total_cost_minor() as f64;
        if single <= 0.0 {
            0.0
        } else {
            (single - kmeans) / single
        }
    }
    /// True if k-means' held-out peak and mean exposure are no more than
    /// the single θ's.
    pub fn kmeans_within_exposure(&self) -> bool {
        self.kmeans.peak_exposure_minor <= self.best_single.peak_exposure_minor
            && self.kmeans.mean_exposure_minor <= self.best_single.mean_exposure_minor
    }
    /// The policy the CPP would deploy: k-means if it saves at no more
    /// exposure, else the single θ.
    pub fn chosen(&self) -> &PolicyReport {
        if self.kmeans_saving() > 0.0 && self.kmeans_within_exposure() {
            &self.kmeans
        } else {
            &self.best_single
        }
    }
}

/// Errors of a run (the caller's configuration).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// Bad sizes.
    #[error("invalid workload: {0}")]
    Config(&'static str),
    /// The fit failed.
    #[error(transparent)]
    Cluster(#[from] cluster::ClusterError),
    /// Limits could not be built.
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
}

/// Candidate policies replayed together on one pass over customers.
struct Candidates<'a> {
    /// Limits per candidate: one for all, or per cluster.
    limits: Vec<Vec<MicroLimits>>,
    /// Cluster of each customer (index into a per-cluster list).
    assign: Option<&'a [usize]>,
    /// Candidate index → uses clusters.
    clustered: Vec<bool>,
}

/// Replays the candidates over the customers `index` with `select(index)`,
/// on `threads` threads.
fn replay_all(
    config: &WorkloadConfig,
    cost: &CostModel,
    candidates: &Candidates<'_>,
    select: &(dyn Fn(usize) -> bool + Sync),
    per_payment: bool,
    sample_s: u32,
) -> (Vec<Totals>, Vec<ExposureSeries>) {
    let n_candidates = candidates.limits.len() + usize::from(per_payment);
    let horizon_s = config.horizon_s();
    let threads = config.threads.max(1);
    let chunk = config.customers.div_ceil(threads);
    let results: Vec<(Vec<Totals>, Vec<ExposureSeries>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut totals = vec![Totals::default(); n_candidates];
                    let mut series = vec![ExposureSeries::new(horizon_s, sample_s); n_candidates];
                    let mut stream = Vec::new();
                    let end = ((t + 1) * chunk).min(config.customers);
                    for index in t * chunk..end {
                        if !select(index) {
                            continue;
                        }
                        let c = customer(config, index, &mut stream);
                        for (k, limits) in candidates.limits.iter().enumerate() {
                            let l = if candidates.clustered[k] {
                                candidates.assign.map_or(&limits[0], |a| &limits[a[index]])
                            } else {
                                &limits[0]
                            };
                            replay(
                                &stream,
                                c.default_at_s,
                                Some(l),
                                cost,
                                horizon_s,
                                &mut totals[k],
                                Some(&mut series[k]),
                            );
                        }
                        if per_payment {
                            let k = n_candidates - 1;
                            replay(
                                &stream,
                                c.default_at_s,
                                None,
                                cost,
                                horizon_s,
                                &mut totals[k],
                                Some(&mut series[k]),
                            );
                        }
                    }
                    (totals, series)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    let mut totals = vec![Totals::default(); n_candidates];
    let mut series = vec![ExposureSeries::new(horizon_s, sample_s); n_candidates];
    for (t, s) in &results {
        for k in 0..n_candidates {
            totals[k].merge(&t[k]);
            series[k].merge(&s[k]);
        }
    }
    (totals, series)
}

fn report(name: &str, totals: Totals, series: &ExposureSeries, horizon_s: u32) -> PolicyReport {
    let (peak, last) = series.peak_and_final();
    assert_eq!(last, 0, "{name}: exposure left at the end of the period");
    let mean = totals.exposure_integral / i128::from(horizon_s.max(1));
    PolicyReport {
        name: name.to_owned(),
        peak_exposure_minor: peak,
        mean_exposure_minor: i64::try_from(mean).unwrap_or(i64::MAX),
        totals,
    }
}

/// Runs the whole evaluation (module docs).
pub fn run(config: &WorkloadConfig, cost: &CostModel) -> Result<Report, EvalError> {
    if config.customers < 100 || config.fit_permille == 0 || config.fit_permille >= 1_000 {
        return Err(EvalError::Config(
            "at least 100 customers and a fit share in (0, 1000) ‰",
        ));
    }
    if config.horizon_days == 0 || config.history_days == 0 || config.horizon_days > 10_000 {
        return Err(EvalError::Config("periods of 1 to 10,000 days"));
    }
    let currency = config.currency;
    let unit = 10_i64.pow(currency.exponent());
    let micro_max = Amount::new(config.micro_max_minor, currency);
    let horizon_s = config.horizon_s();

    // Pass 1: features and outcomes of everyone.
    let mut stream = Vec::new();
    let mut customers = Vec::with_capacity(config.customers);
    for index in 0..config.customers {
        let c = customer(config, index, &mut stream);
        customers.push((c.features, c.default_at_s.is_some()));
    }
    let defaults = customers.iter().filter(|(_, d)| *d).count();
    let training: Vec<(CustomerFeatures, bool)> = customers
        .iter()
        .enumerate()
        .filter(|(i, _)| config.is_fit(*i))
        .map(|(_, c)| *c)
        .collect();
    let cluster_config = ClusterConfig {
        horizon_ms: u64::from(config.horizon_days) * DAY_MS,
        seed: config.seed,
        ..ClusterConfig::default_for(currency, micro_max, cost.fixed_fee)
    };
    let mut model = cluster::fit(&training, &cluster_config)?;
    let assign: Vec<usize> = customers.iter().map(|(f, _)| model.assign(f)).collect();

    // Pass 2 (fitting customers): every single (θ, W) and every scale pair.
    let mut limits = Vec::new();
    let mut clustered = Vec::new();
    for &theta in &THETA_GRID_UNITS {
        for &hours in &WINDOW_GRID_HOURS {
            limits.push(vec![MicroLimits::new(
                micro_max,
                Amount::new(theta * unit, currency),
                hours * 3_600_000,
            )?]);
            clustered.push(false);
        }
    }
    let singles = limits.len();
    let mut scales = Vec::new();
    for &ts in &THETA_SCALE_GRID {
        for &ws in &WINDOW_SCALE_GRID {
            model.set_scales(ts, ws)?;
            limits.push(model.clusters().iter().map(|c| c.limits).collect());
            clustered.push(true);
            scales.push((ts, ws));
        }
    }
    let candidates = Candidates {
        limits,
        assign: Some(&assign),
        clustered,
    };
    let fit_select = |i: usize| config.is_fit(i);
    let (totals, series) = replay_all(
        config,
        cost,
        &candidates,
        &fit_select,
        false,
        FIT_EXPOSURE_SAMPLE_S,
    );
    let fit_reports: Vec<PolicyReport> = totals
        .into_iter()
        .zip(&series)
        .map(|(t, s)| report("fit", t, s, horizon_s))
        .collect();
    let best_single = (0..singles)
        .min_by_key(|&k| fit_reports[k].totals.total_cost_minor())
        .unwrap_or(0);
    let bound = &fit_reports[best_single];
    let within = |k: &usize| {
        fit_reports[*k].peak_exposure_minor <= bound.peak_exposure_minor
            && fit_reports[*k].mean_exposure_minor <= bound.mean_exposure_minor
    };
    let constrained = (singles..fit_reports.len())
        .filter(within)
        .min_by_key(|&k| fit_reports[k].totals.total_cost_minor());
    let exposure_bound_met_on_fit = constrained.is_some();
    let best_kmeans = constrained
        .or_else(|| {
            (singles..fit_reports.len()).min_by_key(|&k| fit_reports[k].totals.total_cost_minor())
        })
        .unwrap_or(singles);
    let chosen_scales = scales[best_kmeans - singles];
    model.set_scales(chosen_scales.0, chosen_scales.1)?;
    let single = candidates.limits[best_single][0];

    // Pass 3 (held-out customers): the three policies.
    let held = Candidates {
        limits: vec![
            vec![single],
            model.clusters().iter().map(|c| c.limits).collect(),
        ],
        assign: Some(&assign),
        clustered: vec![false, true],
    };
    let held_select = |i: usize| !config.is_fit(i);
    let (totals, series) = replay_all(config, cost, &held, &held_select, true, EXPOSURE_SAMPLE_S);
    let mut reports: Vec<PolicyReport> = totals
        .into_iter()
        .zip(&series)
        .zip(["best single θ", "k-means θ/W", "transfer per payment"])
        .map(|((t, s), name)| report(name, t, s, horizon_s))
        .collect();
    let per_payment = reports.pop().ok_or(EvalError::Config("no report"))?;
    let kmeans = reports.pop().ok_or(EvalError::Config("no report"))?;
    let best_single_report = reports.pop().ok_or(EvalError::Config("no report"))?;
    #[allow(clippy::cast_precision_loss)]
    let default_rate = defaults as f64 / config.customers as f64;
    Ok(Report {
        config: config.clone(),
        cost: *cost,
        fit_customers: training.len(),
        held_out_customers: config.customers - training.len(),
        default_rate,
        single,
        model,
        scales: chosen_scales,
        exposure_bound_met_on_fit,
        per_payment,
        best_single: best_single_report,
        kmeans,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUR: Currency = Currency::EUR;

    fn cost() -> CostModel {
        CostModel::default_for(EUR)
    }

    #[test]
    fn fees_follow_the_cost_model() {
        let c = cost();
        assert_eq!(c.fee_minor(10_000, true), 25 + 10);
        assert_eq!(c.fee_minor(1, true), 25 + 1, "ad valorem rounds up");
        assert_eq!(c.fee_minor(10_000, false), 25);
    }

    #[test]
    fn a_replay_conserves_money_and_loses_a_defaulters_pending_total() {
        let limits =
            MicroLimits::new(Amount::new(1_000, EUR), Amount::new(1_000, EUR), 3_600_000).unwrap();
        let stream: Vec<Payment> = (0..10).map(|i| (i * 60, 300)).collect();
        let mut solvent = Totals::default();
        replay(
            &stream,
            None,
            Some(&limits),
            &cost(),
            86_400,
            &mut solvent,
            None,
        );
        // 300, 600, 900, then 1200 ≥ θ: two settlements of 1200, and the
        // last 600 left at the end, settled by the window sweep.
        assert_eq!(solvent.transfers, 3);
        assert_eq!(solvent.settled_minor, 3_000);
        assert_eq!(solvent.lost_minor, 0);
        assert_eq!(solvent.fees_minor, 2 * (25 + 2) + (25 + 1));
        // A defaulter after its 6th payment: 600 pending is lost.
        let mut defaulter = Totals::default();
        let cut: Vec<Payment> = stream.iter().copied().filter(|&(t, _)| t < 330).collect();
        replay(
            &cut,
            Some(330),
            Some(&limits),
            &cost(),
            86_400,
            &mut defaulter,
            None,
        );
        assert_eq!(
            (defaulter.settled_minor, defaulter.lost_minor),
            (1_200, 600)
        );
        assert_eq!(defaulter.failed_transfers, 1);
        // Exposure: 300 for 60 s, 600 for 60 s, 900 for 60 s, then reset…
        let mut series = ExposureSeries::new(86_400, EXPOSURE_SAMPLE_S);
        let mut t = Totals::default();
        replay(
            &stream[..3],
            None,
            Some(&limits),
            &cost(),
            86_400,
            &mut t,
            Some(&mut series),
        );
        let (peak, last) = series.peak_and_final();
        assert_eq!((peak, last), (900, 0));
        // 300·60 + 600·60 + 900·(3600 − 120) until the window sweep.
        assert_eq!(
            t.exposure_integral,
            300 * 60 + 600 * 60 + 900 * (3_600 - 120)
        );
    }

    #[test]
    fn a_small_run_is_consistent() {
        let config = WorkloadConfig {
            threads: 2,
            ..WorkloadConfig::default_with(3_000, 7)
        };
        let report = run(&config, &cost()).unwrap();
        assert_eq!(report.fit_customers + report.held_out_customers, 3_000);
        for p in [&report.per_payment, &report.best_single, &report.kmeans] {
            let t = &p.totals;
            // Same customers, same micropayments under every policy.
            assert_eq!(t.micropayments, report.per_payment.totals.micropayments);
            assert_eq!(t.accepted_minor, report.per_payment.totals.accepted_minor);
            assert_eq!(
                t.accepted_minor,
                t.settled_minor + t.lost_minor,
                "{}",
                p.name
            );
            assert!(p.mean_exposure_minor <= p.peak_exposure_minor);
            assert!(t.transfers <= t.micropayments + t.customers);
        }
        // The per-payment policy risks nothing and pays a fee per payment.
        assert_eq!(report.per_payment.peak_exposure_minor, 0);
        assert_eq!(report.per_payment.totals.lost_minor, 0);
        assert_eq!(
            report.per_payment.totals.transfers,
            report.per_payment.totals.micropayments
        );
        // Exposure never exceeds the sum of θ over customers (each pending
        // total stays below its θ).
        let held = i64::try_from(report.held_out_customers).unwrap();
        assert!(
            report.best_single.peak_exposure_minor < held * report.single.theta().minor_units()
        );
        let theta_max = report
            .model
            .clusters()
            .iter()
            .map(|c| c.limits.theta().minor_units())
            .max()
            .unwrap();
        assert!(report.kmeans.peak_exposure_minor < held * theta_max);
        // Aggregation beats a transfer per payment.
        assert!(
            report.best_single.totals.total_cost_minor()
                < report.per_payment.totals.total_cost_minor()
        );
        // The same seed gives the same run.
        let again = run(&config, &cost()).unwrap();
        assert_eq!(again.kmeans.totals, report.kmeans.totals);
        assert_eq!(again.best_single.totals, report.best_single.totals);
    }
}
