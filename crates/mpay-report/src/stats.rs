//! Latency summaries and money totals.

use std::collections::BTreeMap;

use mpay_money::{Amount, Currency};

use crate::model::{BalanceRow, DemoReport, LatencySeries};

/// Order statistics of one latency series (nearest-rank percentiles over
/// the finite samples).
#[derive(Debug, Clone, PartialEq)]
pub struct LatencySummary {
    pub kind: String,
    /// Finite samples counted.
    pub count: usize,
    /// Samples left out because they were NaN or infinite.
    pub invalid: usize,
    pub min_ms: f64,
    pub p25_ms: f64,
    pub p50_ms: f64,
    pub p75_ms: f64,
    /// Only from [`P90_SAMPLES_MIN`] samples: below, it is the largest.
    pub p90_ms: Option<f64>,
    /// Only from [`P99_SAMPLES_MIN`] samples.
    pub p99_ms: Option<f64>,
    pub max_ms: f64,
}

/// Fewest samples that tell a p90 from the largest sample.
pub const P90_SAMPLES_MIN: usize = 10;
/// Fewest samples that tell a p99 from the largest sample.
pub const P99_SAMPLES_MIN: usize = 100;

/// The finite samples, sorted ascending.
pub fn sorted_finite(samples: &[f64]) -> Vec<f64> {
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// Nearest-rank percentile `p` (0 < p ≤ 100) of sorted samples: the
/// smallest sample with at least p % of the samples at or below it.
pub fn percentile(sorted: &[f64], p: u32) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // rank = ceil(p/100 · n), in integers.
    let p = usize::try_from(p.clamp(1, 100)).unwrap_or(100);
    let rank = (p * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

pub fn summarize(series: &LatencySeries) -> Option<LatencySummary> {
    let sorted = sorted_finite(&series.samples_ms);
    let pct = |p| percentile(&sorted, p);
    Some(LatencySummary {
        kind: series.kind.clone(),
        count: sorted.len(),
        invalid: series.samples_ms.len() - sorted.len(),
        min_ms: *sorted.first()?,
        p25_ms: pct(25)?,
        p50_ms: pct(50)?,
        p75_ms: pct(75)?,
        p90_ms: pct(90).filter(|_| sorted.len() >= P90_SAMPLES_MIN),
        p99_ms: pct(99).filter(|_| sorted.len() >= P99_SAMPLES_MIN),
        max_ms: *sorted.last()?,
    })
}

/// Sums of one currency's balance rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyTotal {
    pub currency: Currency,
    pub rows: usize,
    /// `None` when the sum overflows an `i64`.
    pub before: Option<Amount>,
    pub after: Option<Amount>,
}

impl CurrencyTotal {
    /// after − before, when both sums and the difference fit.
    pub fn delta(&self) -> Option<Amount> {
        self.after?.checked_sub(self.before?).ok()
    }

    /// The total did not change (money was conserved among the listed
    /// parties).
    pub fn conserved(&self) -> bool {
        self.delta().is_some_and(|d| d.is_zero())
    }
}

/// The row's currency: its own, or the report's.
pub fn row_currency(report: &DemoReport, row: &BalanceRow) -> Currency {
    row.currency.unwrap_or(report.currency)
}

/// Per-currency totals of the balance table, with checked arithmetic.
pub fn balance_totals(report: &DemoReport) -> Vec<CurrencyTotal> {
    let mut by_currency: BTreeMap<Currency, CurrencyTotal> = BTreeMap::new();
    for row in &report.balances {
        let currency = row_currency(report, row);
        let total = by_currency.entry(currency).or_insert(CurrencyTotal {
            currency,
            rows: 0,
            before: Some(Amount::zero(currency)),
            after: Some(Amount::zero(currency)),
        });
        total.rows += 1;
        total.before = total
            .before
            .and_then(|s| s.checked_add(Amount::new(row.before_minor, currency)).ok());
        total.after = total
            .after
            .and_then(|s| s.checked_add(Amount::new(row.after_minor, currency)).ok());
    }
    // The report's own currency first, then the rest by code.
    let mut totals: Vec<CurrencyTotal> = by_currency.into_values().collect();
    totals.sort_by_key(|t| (t.currency != report.currency, t.currency));
    totals
}

/// after − before of one row, if it fits.
pub fn row_delta(row: &BalanceRow) -> Option<i64> {
    row.after_minor.checked_sub(row.before_minor)
}

/// Outcome counts pivoted: kinds in first-seen order, outcomes in
/// first-seen order, and `counts[kind][outcome]` (repeated rows add up,
/// saturating).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutcomeTable {
    pub kinds: Vec<String>,
    pub outcomes: Vec<String>,
    pub counts: Vec<Vec<u64>>,
}

impl OutcomeTable {
    pub fn build(report: &DemoReport) -> Self {
        let mut table = OutcomeTable::default();
        for row in &report.outcomes {
            let k = index_of(&mut table.kinds, &row.kind);
            let o = index_of(&mut table.outcomes, &row.outcome);
            while table.counts.len() < table.kinds.len() {
                table.counts.push(Vec::new());
            }
            for counts in &mut table.counts {
                counts.resize(table.outcomes.len(), 0);
            }
            table.counts[k][o] = table.counts[k][o].saturating_add(row.count);
        }
        table
    }

    pub fn kind_total(&self, k: usize) -> u64 {
        self.counts
            .get(k)
            .map_or(0, |c| c.iter().fold(0u64, |a, b| a.saturating_add(*b)))
    }

    pub fn outcome_total(&self, o: usize) -> u64 {
        self.counts.iter().fold(0u64, |a, c| {
            a.saturating_add(c.get(o).copied().unwrap_or(0))
        })
    }

    pub fn total(&self) -> u64 {
        (0..self.kinds.len()).fold(0u64, |a, k| a.saturating_add(self.kind_total(k)))
    }
}

fn index_of(list: &mut Vec<String>, item: &str) -> usize {
    match list.iter().position(|x| x == item) {
        Some(i) => i,
        None => {
            list.push(item.to_owned());
            list.len() - 1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OutcomeRow, PartyKind};

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&s, 50), Some(50.0));
        assert_eq!(percentile(&s, 90), Some(90.0));
        assert_eq!(percentile(&s, 99), Some(99.0));
        assert_eq!(percentile(&s, 100), Some(100.0));
        assert_eq!(percentile(&[7.0], 99), Some(7.0));
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50), Some(2.0));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn a_summary_tells_p90_and_p99_only_from_enough_samples() {
        let series = |n: u32| LatencySeries {
            kind: "refund".into(),
            samples_ms: (1..=n).map(f64::from).collect(),
        };
        let one = summarize(&series(1)).expect("one sample");
        assert_eq!((one.p90_ms, one.p99_ms), (None, None));
        let ten = summarize(&series(10)).expect("ten samples");
        assert_eq!((ten.p90_ms, ten.p99_ms), (Some(9.0), None));
        let hundred = summarize(&series(100)).expect("a hundred samples");
        assert_eq!((hundred.p90_ms, hundred.p99_ms), (Some(90.0), Some(99.0)));
    }

    #[test]
    fn summaries_skip_non_finite_samples_and_empty_series() {
        let series = LatencySeries {
            kind: "micro".into(),
            samples_ms: vec![3.0, f64::NAN, 1.0, 2.0, f64::INFINITY],
        };
        let s = summarize(&series).expect("three finite samples");
        assert_eq!((s.count, s.invalid), (3, 2));
        assert_eq!((s.min_ms, s.p50_ms, s.max_ms), (1.0, 2.0, 3.0));
        let empty = LatencySeries {
            kind: "micro".into(),
            samples_ms: vec![f64::NAN],
        };
        assert_eq!(summarize(&empty), None);
    }

    #[test]
    fn totals_are_per_currency_and_checked() {
        let mut r = DemoReport::new("t", 1, 0, Currency::EUR);
        let row = |party: &str, currency, before, after| BalanceRow {
            party: party.into(),
            kind: PartyKind::Wallet,
            currency,
            before_minor: before,
            after_minor: after,
        };
        r.balances = vec![
            row("a", None, 1000, 400),
            row("b", None, 0, 600),
            row("c", Some(Currency::USD), 50, 40),
        ];
        let t = balance_totals(&r);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].currency, Currency::EUR);
        assert!(t[0].conserved());
        assert_eq!(t[0].before, Some(Amount::new(1000, Currency::EUR)));
        assert_eq!(t[1].delta(), Some(Amount::new(-10, Currency::USD)));
        assert!(!t[1].conserved());
        r.balances.push(row("d", None, i64::MAX, 0));
        let t = balance_totals(&r);
        assert_eq!(t[0].before, None);
        assert!(!t[0].conserved());
    }

    #[test]
    fn outcome_table_pivots_in_first_seen_order() {
        let mut r = DemoReport::new("t", 1, 0, Currency::EUR);
        let row = |kind: &str, outcome: &str, count| OutcomeRow {
            kind: kind.into(),
            outcome: outcome.into(),
            count,
        };
        r.outcomes = vec![
            row("micro", "completed", 5),
            row("offline", "aborted", 2),
            row("micro", "rejected", 1),
            row("micro", "completed", 3),
        ];
        let t = OutcomeTable::build(&r);
        assert_eq!(t.kinds, ["micro", "offline"]);
        assert_eq!(t.outcomes, ["completed", "aborted", "rejected"]);
        assert_eq!(t.counts, vec![vec![8, 0, 1], vec![0, 2, 0]]);
        assert_eq!(t.kind_total(0), 9);
        assert_eq!(t.outcome_total(1), 2);
        assert_eq!(t.total(), 11);
    }
}
