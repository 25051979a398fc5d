//! k-means over customers' behaviour, and each cluster's own θ and W
//! (paper 002 §IV names k-means without saying what it clusters).
//!
//! Never on the payment path: the CPP calls [`fit`] from a command (`mpay
//! cpp recluster`) and stores the resulting [`ClusterModel`]; the payment
//! path only looks a customer's limits up.
//!
//! # Features
//!
//! Per customer, over an observation period: payments per day, mean amount
//! (minor units) and failed settlement transfers. Rates and amounts are
//! heavy-tailed, so each feature is taken as `ln(1 + x)` and then
//! standardised (z-score with the training set's mean and standard
//! deviation), so that no feature dominates the distance by its unit.
//!
//! # k
//!
//! k is chosen from 2..=[`ClusterConfig::k_max`] by the mean silhouette on a
//! seeded sample of at most [`ClusterConfig::sample_max`] customers (the
//! silhouette is O(n²)); the final model is fitted on all training
//! customers with that k. Every run is seeded ([`ClusterConfig::seed`],
//! Xoshiro256+), so a fit is deterministic.
//!
//! # θ and W per cluster
//!
//! A cluster's default rate is estimated with a Beta prior centred on the
//! training set's overall rate with the weight of
//! [`ClusterConfig::prior_customers`] customers: `p̂ = (defaults + κ·p̄) /
//! (customers + κ)`, so a small cluster with no (or all) defaults stays near
//! the overall rate instead of running to zero (or one). With `S` the
//! cluster's median spend per day, `f` the fixed fee per bank transfer and
//! `H` the period the default rate is measured over, a customer costs about
//! `f·S·H/θ` in fees and `p̂·θ/2` in expected loss (a defaulter leaves on
//! average half a pending total unpaid), which is least at
//! `θ* = √(2·f·S·H / p̂)`. The cluster's θ is `theta_scale · θ*` and its W
//! `window_scale · θ/S` (the time a typical member takes to reach θ), both
//! clamped to `[theta_min, theta_max]` and `[window_min_ms, window_max_ms]`.
//! The two scales are the only fitted knobs; the evaluation harness picks
//! them on the fitting customers ([`crate::eval`]).
//!
//! New customers (no history) get the **default cluster**: the one with the
//! smallest θ, the most cautious limits.

use linfa::DatasetBase;
use linfa::traits::Fit;
use linfa_clustering::KMeans;
use mpay_money::{Amount, Currency};
use ndarray::Array2;
use rand_xoshiro::Xoshiro256Plus;
use rand_xoshiro::rand_core::{RngCore, SeedableRng};

use crate::policy::{MicroLimits, PolicyError};

/// Number of features.
pub const FEATURES: usize = 3;

/// What is known of one customer's behaviour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CustomerFeatures {
    /// Micropayments per day over the observation period.
    pub payments_per_day: f64,
    /// Mean micropayment amount, minor units (a statistic, not money).
    pub mean_amount_minor: f64,
    /// Failed settlement transfers over the observation period.
    pub failed_transfers: u64,
}

impl CustomerFeatures {
    fn raw(&self) -> [f64; FEATURES] {
        // Precision loss of the count is irrelevant to a feature.
        #[allow(clippy::cast_precision_loss)]
        let failed = self.failed_transfers as f64;
        [
            self.payments_per_day.max(0.0).ln_1p(),
            self.mean_amount_minor.max(0.0).ln_1p(),
            failed.ln_1p(),
        ]
    }
    /// Spend per day in minor units (a statistic).
    pub fn spend_per_day_minor(&self) -> f64 {
        self.payments_per_day.max(0.0) * self.mean_amount_minor.max(0.0)
    }
}

/// Settings of a fit.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Largest k tried.
    pub k_max: usize,
    /// Customers sampled for choosing k.
    pub sample_max: usize,
    /// Weight of the Beta prior, in customers.
    pub prior_customers: f64,
    /// Fixed fee of one bank transfer (the `f` of θ*).
    pub fixed_fee: Amount,
    /// The period over which defaults were counted (the `H` of θ*).
    pub horizon_ms: u64,
    /// The micro limit handed to every cluster's [`MicroLimits`].
    pub micro_max: Amount,
    /// Smallest θ.
    pub theta_min: Amount,
    /// Largest θ (cap).
    pub theta_max: Amount,
    /// Shortest W.
    pub window_min_ms: u64,
    /// Longest W (cap).
    pub window_max_ms: u64,
    /// θ = theta_scale · θ*.
    pub theta_scale: f64,
    /// W = window_scale · θ / S.
    pub window_scale: f64,
    /// Seed of every random choice of the fit.
    pub seed: u64,
}

/// Largest k [`ClusterConfig::default_for`] tries.
pub const K_MAX: usize = 6;
/// Customers [`ClusterConfig::default_for`] samples to choose k.
pub const SAMPLE_MAX: usize = 1_500;
/// Weight of the Beta prior by default, in customers.
pub const PRIOR_CUSTOMERS: f64 = 200.0;
/// k-means restarts per fit.
pub const KMEANS_RUNS: usize = 4;
/// k-means iterations per run at most.
pub const KMEANS_ITERATIONS_MAX: u64 = 300;
/// Milliseconds per day.
pub const DAY_MS: u64 = 86_400_000;

impl ClusterConfig {
    /// Defaults for one currency: θ in [1, 500] units of it, W in [1 h, 30 d].
    pub fn default_for(currency: Currency, micro_max: Amount, fixed_fee: Amount) -> Self {
        let unit = 10_i64.pow(currency.exponent());
        ClusterConfig {
            k_max: K_MAX,
            sample_max: SAMPLE_MAX,
            prior_customers: PRIOR_CUSTOMERS,
            fixed_fee,
            horizon_ms: 30 * DAY_MS,
            micro_max,
            theta_min: Amount::new(unit, currency),
            theta_max: Amount::new(500 * unit, currency),
            window_min_ms: DAY_MS / 24,
            window_max_ms: 30 * DAY_MS,
            theta_scale: 1.0,
            window_scale: 1.0,
            seed: 1,
        }
    }
}

/// One cluster: what was learned, and its limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// Training customers in it.
    pub customers: usize,
    /// Of them, defaulted.
    pub defaults: usize,
    /// Posterior mean default rate (Beta prior).
    pub default_rate: f64,
    /// Median spend per day, minor units.
    pub spend_per_day_minor: f64,
    /// Its limits.
    pub limits: MicroLimits,
}

/// Errors of a fit (all the caller's: too little or bad data, bad config).
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Fewer training customers than clusters.
    #[error("{0} training customers are too few to cluster")]
    TooFew(usize),
    /// A feature is not a finite number.
    #[error("a feature is not finite")]
    NotFinite,
    /// The configuration is inconsistent.
    #[error("invalid cluster configuration: {0}")]
    Config(&'static str),
    /// The limits could not be built.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// linfa failed.
    #[error("k-means: {0}")]
    KMeans(String),
}

/// A fitted model: standardisation, centroids, clusters with limits.
#[derive(Debug, Clone)]
pub struct ClusterModel {
    mean: [f64; FEATURES],
    std: [f64; FEATURES],
    centroids: Vec<[f64; FEATURES]>,
    clusters: Vec<Cluster>,
    default_cluster: usize,
    config: ClusterConfig,
    overall_default_rate: f64,
}

fn standardise(
    x: [f64; FEATURES],
    mean: &[f64; FEATURES],
    std: &[f64; FEATURES],
) -> [f64; FEATURES] {
    let mut z = [0.0; FEATURES];
    for j in 0..FEATURES {
        z[j] = (x[j] - mean[j]) / std[j];
    }
    z
}

fn distance2(a: &[f64; FEATURES], b: &[f64; FEATURES]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn nearest(centroids: &[[f64; FEATURES]], z: &[f64; FEATURES]) -> usize {
    let mut best = (0, f64::INFINITY);
    for (i, c) in centroids.iter().enumerate() {
        let d = distance2(c, z);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

fn kmeans(
    points: &[[f64; FEATURES]],
    k: usize,
    seed: u64,
) -> Result<Vec<[f64; FEATURES]>, ClusterError> {
    let flat: Vec<f64> = points.iter().flatten().copied().collect();
    let records = Array2::from_shape_vec((points.len(), FEATURES), flat)
        .map_err(|e| ClusterError::KMeans(e.to_string()))?;
    let dataset = DatasetBase::from(records);
    let model = KMeans::params_with_rng(k, Xoshiro256Plus::seed_from_u64(seed))
        .n_runs(KMEANS_RUNS)
        .max_n_iterations(KMEANS_ITERATIONS_MAX)
        .tolerance(1e-6)
        .fit(&dataset)
        .map_err(|e| ClusterError::KMeans(e.to_string()))?;
    Ok(model
        .centroids()
        .rows()
        .into_iter()
        .map(|row| {
            let mut c = [0.0; FEATURES];
            for (j, v) in row.iter().enumerate().take(FEATURES) {
                c[j] = *v;
            }
            c
        })
        .collect())
}

/// Mean silhouette of an assignment (O(n²)).
fn silhouette(points: &[[f64; FEATURES]], labels: &[usize], k: usize) -> f64 {
    let n = points.len();
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    let mut total = 0.0;
    let mut sums = vec![0.0; k];
    for i in 0..n {
        sums.iter_mut().for_each(|s| *s = 0.0);
        for j in 0..n {
            if i != j {
                sums[labels[j]] += distance2(&points[i], &points[j]).sqrt();
            }
        }
        let own = labels[i];
        if sizes[own] <= 1 {
            continue;
        }
        #[allow(clippy::cast_precision_loss)]
        let a = sums[own] / (sizes[own] - 1) as f64;
        #[allow(clippy::cast_precision_loss)]
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() {
            total += (b - a) / a.max(b);
        }
    }
    #[allow(clippy::cast_precision_loss)]
    let mean = total / n as f64;
    mean
}

/// Fits the model on `training`: each customer's features and whether it
/// defaulted over the period (module docs). Deterministic for one seed.
pub fn fit(
    training: &[(CustomerFeatures, bool)],
    config: &ClusterConfig,
) -> Result<ClusterModel, ClusterError> {
    if config.k_max < 2 || config.sample_max < 2 * config.k_max {
        return Err(ClusterError::Config("k_max ≥ 2 and sample_max ≥ 2·k_max"));
    }
    if training.len() < config.sample_max.min(4 * config.k_max) {
        return Err(ClusterError::TooFew(training.len()));
    }
    let raw: Vec<[f64; FEATURES]> = training.iter().map(|(f, _)| f.raw()).collect();
    let inputs_finite = training
        .iter()
        .all(|(f, _)| f.payments_per_day.is_finite() && f.mean_amount_minor.is_finite());
    if !inputs_finite || raw.iter().flatten().any(|x| !x.is_finite()) {
        return Err(ClusterError::NotFinite);
    }
    #[allow(clippy::cast_precision_loss)]
    let n = raw.len() as f64;
    let mut mean = [0.0; FEATURES];
    let mut std = [0.0; FEATURES];
    for x in &raw {
        for j in 0..FEATURES {
            mean[j] += x[j] / n;
        }
    }
    for x in &raw {
        for j in 0..FEATURES {
            std[j] += (x[j] - mean[j]).powi(2) / n;
        }
    }
    for s in &mut std {
        *s = s.sqrt().max(1e-9);
    }
    let points: Vec<[f64; FEATURES]> = raw.iter().map(|x| standardise(*x, &mean, &std)).collect();

    // Choose k on a seeded sample (partial Fisher-Yates).
    let mut rng = Xoshiro256Plus::seed_from_u64(config.seed);
    let mut order: Vec<usize> = (0..points.len()).collect();
    let sample_len = config.sample_max.min(points.len());
    for i in 0..sample_len {
        let remaining = u64::try_from(order.len() - i).unwrap_or(u64::MAX);
        let j = i + usize::try_from(rng.next_u64() % remaining).unwrap_or(0);
        order.swap(i, j);
    }
    let sample: Vec<[f64; FEATURES]> = order[..sample_len].iter().map(|&i| points[i]).collect();
    let mut best_k = (2, f64::NEG_INFINITY);
    for k in 2..=config.k_max {
        let centroids = kmeans(&sample, k, config.seed)?;
        let labels: Vec<usize> = sample.iter().map(|z| nearest(&centroids, z)).collect();
        let score = silhouette(&sample, &labels, k);
        if score > best_k.1 {
            best_k = (k, score);
        }
    }
    let centroids = kmeans(&points, best_k.0, config.seed)?;

    let defaults = training.iter().filter(|(_, d)| *d).count();
    #[allow(clippy::cast_precision_loss)]
    let overall_default_rate = defaults as f64 / n;
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); centroids.len()];
    for (i, z) in points.iter().enumerate() {
        members[nearest(&centroids, z)].push(i);
    }
    let mut model = ClusterModel {
        mean,
        std,
        centroids,
        clusters: Vec::new(),
        default_cluster: 0,
        config: config.clone(),
        overall_default_rate,
    };
    model.clusters = members
        .iter()
        .map(|ids| {
            let defaults = ids.iter().filter(|&&i| training[i].1).count();
            let mut spends: Vec<f64> = ids
                .iter()
                .map(|&i| training[i].0.spend_per_day_minor())
                .collect();
            spends.sort_by(f64::total_cmp);
            let spend = spends.get(spends.len() / 2).copied().unwrap_or(0.0);
            #[allow(clippy::cast_precision_loss)]
            let default_rate = (defaults as f64 + config.prior_customers * overall_default_rate)
                / (ids.len() as f64 + config.prior_customers);
            Ok(Cluster {
                customers: ids.len(),
                defaults,
                default_rate,
                spend_per_day_minor: spend,
                limits: MicroLimits::new(config.micro_max, config.theta_max, config.window_max_ms)?,
            })
        })
        .collect::<Result<_, ClusterError>>()?;
    model.set_scales(config.theta_scale, config.window_scale)?;
    Ok(model)
}

impl ClusterModel {
    /// Recomputes every cluster's θ and W with new scales (module docs).
    pub fn set_scales(&mut self, theta_scale: f64, window_scale: f64) -> Result<(), ClusterError> {
        if !(theta_scale.is_finite()
            && theta_scale > 0.0
            && window_scale.is_finite()
            && window_scale > 0.0)
        {
            return Err(ClusterError::Config("scales must be positive"));
        }
        self.config.theta_scale = theta_scale;
        self.config.window_scale = window_scale;
        let c = &self.config;
        #[allow(clippy::cast_precision_loss)]
        let (fee, horizon_days, theta_min, theta_max) = (
            c.fixed_fee.minor_units() as f64,
            c.horizon_ms as f64 / DAY_MS as f64,
            c.theta_min.minor_units() as f64,
            c.theta_max.minor_units() as f64,
        );
        #[allow(clippy::cast_precision_loss)]
        let (window_min, window_max) = (c.window_min_ms as f64, c.window_max_ms as f64);
        for cluster in &mut self.clusters {
            let spend = cluster.spend_per_day_minor.max(1.0);
            let p = cluster.default_rate.max(1e-6);
            let theta_star = (2.0 * fee * spend * horizon_days / p).sqrt();
            let theta = (theta_scale * theta_star).clamp(theta_min, theta_max);
            #[allow(clippy::cast_precision_loss)]
            let window =
                (window_scale * theta / spend * DAY_MS as f64).clamp(window_min, window_max);
            // Both are clamped to ranges of positive i64/u64 values above.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let (theta_minor, window_ms) = (theta.round() as i64, window.round() as u64);
            cluster.limits = MicroLimits::new(
                c.micro_max,
                Amount::new(theta_minor, c.micro_max.currency()),
                window_ms,
            )?;
        }
        self.default_cluster = self
            .clusters
            .iter()
            .enumerate()
            .min_by_key(|(_, cl)| cl.limits.theta().minor_units())
            .map_or(0, |(i, _)| i);
        Ok(())
    }

    /// The cluster of a customer with these features.
    pub fn assign(&self, features: &CustomerFeatures) -> usize {
        nearest(
            &self.centroids,
            &standardise(features.raw(), &self.mean, &self.std),
        )
    }

    /// The limits of a customer: its cluster's, or the default cluster's
    /// for a customer without history (`None`).
    pub fn limits_for(&self, features: Option<&CustomerFeatures>) -> &MicroLimits {
        let cluster = features.map_or(self.default_cluster, |f| self.assign(f));
        &self.clusters[cluster].limits
    }

    /// The clusters.
    pub fn clusters(&self) -> &[Cluster] {
        &self.clusters
    }

    /// The cluster new customers get.
    pub fn default_cluster(&self) -> usize {
        self.default_cluster
    }

    /// Overall default rate of the training set (the prior's mean).
    pub fn overall_default_rate(&self) -> f64 {
        self.overall_default_rate
    }

    /// Centroids in standardised units.
    pub fn centroids(&self) -> &[[f64; FEATURES]] {
        &self.centroids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ClusterConfig {
        let eur = Currency::EUR;
        ClusterConfig {
            sample_max: 300,
            ..ClusterConfig::default_for(eur, Amount::new(1_000, eur), Amount::new(25, eur))
        }
    }

    /// Two obvious groups: frequent small payers who never fail, rare large
    /// payers who often fail.
    fn two_groups(n: usize) -> Vec<(CustomerFeatures, bool)> {
        let mut rng = Xoshiro256Plus::seed_from_u64(9);
        (0..n)
            .map(|i| {
                #[allow(clippy::cast_precision_loss)]
                let jitter = (rng.next_u64() % 1000) as f64 / 1000.0;
                if i % 2 == 0 {
                    (
                        CustomerFeatures {
                            payments_per_day: 20.0 + jitter,
                            mean_amount_minor: 30.0 + jitter,
                            failed_transfers: 0,
                        },
                        i % 100 == 0,
                    )
                } else {
                    (
                        CustomerFeatures {
                            payments_per_day: 0.5 + jitter,
                            mean_amount_minor: 400.0 + jitter,
                            failed_transfers: 3,
                        },
                        i % 4 == 1,
                    )
                }
            })
            .collect()
    }

    #[test]
    fn separates_groups_deterministically_and_gives_risky_ones_lower_limits() {
        let data = two_groups(1_000);
        let a = fit(&data, &config()).unwrap();
        let b = fit(&data, &config()).unwrap();
        assert_eq!(a.centroids(), b.centroids(), "same seed, same fit");
        assert_eq!(a.clusters().len(), 2, "silhouette picks the two groups");
        let safe = a.assign(&data[0].0);
        let risky = a.assign(&data[1].0);
        assert_ne!(safe, risky);
        let (s, r) = (&a.clusters()[safe], &a.clusters()[risky]);
        assert!(s.default_rate < r.default_rate);
        assert!(s.limits.theta().minor_units() > r.limits.theta().minor_units());
        // New customers get the most cautious cluster.
        assert_eq!(a.limits_for(None), &r.limits);
        for cl in a.clusters() {
            assert!(cl.limits.theta().minor_units() <= config().theta_max.minor_units());
            assert!(cl.limits.theta().minor_units() >= config().theta_min.minor_units());
            assert!(cl.limits.window_ms() <= config().window_max_ms);
            assert!(cl.limits.window_ms() >= config().window_min_ms);
        }
    }

    #[test]
    fn the_prior_keeps_a_small_clean_cluster_near_the_overall_rate() {
        let mut data = two_groups(2_000);
        // Ten outliers with no defaults at all.
        for _ in 0..10 {
            data.push((
                CustomerFeatures {
                    payments_per_day: 500.0,
                    mean_amount_minor: 5.0,
                    failed_transfers: 0,
                },
                false,
            ));
        }
        let model = fit(&data, &config()).unwrap();
        for cl in model.clusters() {
            assert!(cl.default_rate > 0.0);
            #[allow(clippy::cast_precision_loss)]
            let weight = cl.customers as f64 / (cl.customers as f64 + PRIOR_CUSTOMERS);
            // The posterior lies between the raw rate and the prior mean.
            #[allow(clippy::cast_precision_loss)]
            let raw = cl.defaults as f64 / cl.customers as f64;
            let expected = weight * raw + (1.0 - weight) * model.overall_default_rate();
            assert!((cl.default_rate - expected).abs() < 1e-12);
        }
    }

    #[test]
    fn too_little_data_is_refused() {
        assert!(matches!(
            fit(&two_groups(5), &config()),
            Err(ClusterError::TooFew(5))
        ));
        let mut bad = two_groups(400);
        bad[3].0.payments_per_day = f64::NAN;
        assert!(matches!(fit(&bad, &config()), Err(ClusterError::NotFinite)));
    }
}
