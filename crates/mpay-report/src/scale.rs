//! Scales and tick choice: linear axes with "nice" 1-2-5 ticks, money axes
//! whose ticks are whole minor units, and log axes for latencies.

/// Ticks an axis aims for; the nice step may give a few more or fewer.
pub const TICKS_TARGET: usize = 6;
/// A log axis with more 1-2-5 ticks than this shows decades only.
pub const LOG_TICKS_MAX: usize = 10;

/// Maps a data interval linearly onto a pixel interval (which may run
/// backwards, as y does in SVG).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub domain: (f64, f64),
    pub range: (f64, f64),
}

impl Linear {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        Linear { domain, range }
    }

    pub fn map(&self, v: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        if !v.is_finite() || d1 == d0 {
            return r0;
        }
        let t = ((v - d0) / (d1 - d0)).clamp(0.0, 1.0);
        r0 + t * (r1 - r0)
    }
}

/// Maps a positive data interval logarithmically onto pixels; values at or
/// below the floor sit on the axis start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Log {
    pub domain: (f64, f64),
    pub range: (f64, f64),
}

impl Log {
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Self {
        Log { domain, range }
    }

    pub fn map(&self, v: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        if !(v.is_finite() && v > 0.0 && d0 > 0.0 && d1 > d0) {
            return r0;
        }
        let t = ((v.log10() - d0.log10()) / (d1.log10() - d0.log10())).clamp(0.0, 1.0);
        r0 + t * (r1 - r0)
    }
}

/// The 1, 2, 5 × 10^k step nearest to `raw` on a log scale (the thresholds
/// are √2, √10 and √50), so an axis gets close to the number of ticks it
/// asked for rather than always fewer.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let ratio = raw / power;
    let m = if ratio >= 50f64.sqrt() {
        10.0
    } else if ratio >= 10f64.sqrt() {
        5.0
    } else if ratio >= 2f64.sqrt() {
        2.0
    } else {
        1.0
    };
    m * power
}

/// A linear axis: the domain widened to whole steps and the ticks in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    pub ticks: Vec<f64>,
}

/// Nice ticks covering `[lo, hi]`. An empty or inverted interval becomes
/// `[lo, lo + 1]`.
pub fn linear_ticks(lo: f64, hi: f64) -> Ticks {
    let (lo, hi) = sane_interval(lo, hi);
    let step = nice_step((hi - lo) / usize_f64(TICKS_TARGET));
    let first = (lo / step).floor();
    let last = (hi / step).ceil();
    let mut ticks = Vec::new();
    let mut i = first;
    while i <= last && ticks.len() <= 4 * TICKS_TARGET {
        ticks.push(i * step);
        i += 1.0;
    }
    Ticks {
        lo: first * step,
        hi: last * step,
        step,
        ticks,
    }
}

/// Nice ticks for a time axis from 0 to `end_ms`, in seconds. The axis
/// starts at 0 and ends at `end_ms` exactly (no empty stretch after the
/// run); ticks fall on whole steps inside it.
pub fn time_ticks_s(end_ms: u64) -> Ticks {
    let end_s = u64_f64(end_ms.max(1)) / 1000.0;
    let step = nice_step(end_s / usize_f64(TICKS_TARGET));
    let mut ticks = Vec::new();
    let mut i = 0.0;
    while i * step <= end_s * (1.0 + 1e-9) && ticks.len() <= 4 * TICKS_TARGET {
        ticks.push(i * step);
        i += 1.0;
    }
    Ticks {
        lo: 0.0,
        hi: end_s,
        step,
        ticks,
    }
}

/// Time ticks in seconds inside `[lo_ms, hi_ms]` (a zoomed axis): nice
/// multiples of a nice step, the first at or after `lo_ms`.
pub fn time_ticks_between(lo_ms: u64, hi_ms: u64) -> Ticks {
    let lo_s = u64_f64(lo_ms) / 1000.0;
    let hi_s = u64_f64(hi_ms.max(lo_ms.saturating_add(1))) / 1000.0;
    let step = nice_step((hi_s - lo_s) / usize_f64(TICKS_TARGET));
    let mut ticks = Vec::new();
    let mut i = (lo_s / step).ceil();
    while i * step <= hi_s * (1.0 + 1e-9) && ticks.len() <= 4 * TICKS_TARGET {
        ticks.push(i * step);
        i += 1.0;
    }
    Ticks {
        lo: lo_s,
        hi: hi_s,
        step,
        ticks,
    }
}

/// A money axis in minor units: whole-unit steps (1, 2, 5 × 10^k minor
/// units), always including zero. Wide integers so that no tick overflows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyTicks {
    pub lo: i128,
    pub hi: i128,
    pub step: i128,
    pub ticks: Vec<i128>,
}

/// Nice money ticks covering `[lo, hi]` and zero.
pub fn money_ticks(lo: i64, hi: i64) -> MoneyTicks {
    money_ticks_in(lo, hi, 1)
}

/// Fewest ticks a whole-unit step must give before it is preferred to a
/// finer step in fractions of a unit.
pub const WHOLE_UNIT_TICKS_MIN: i128 = 4;

/// As [`money_ticks`], for a currency with `unit_minor` minor units to the
/// unit (100 for EUR): a step in fractions of a unit (0.50 EUR) only when
/// whole units would give fewer than [`WHOLE_UNIT_TICKS_MIN`] ticks, so a
/// round axis reads "4 EUR", not "4.00 EUR".
pub fn money_ticks_in(lo: i64, hi: i64, unit_minor: i128) -> MoneyTicks {
    let mut lo = i128::from(lo.min(0));
    let mut hi = i128::from(hi.max(0));
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    if lo == hi {
        hi = lo + 100;
    }
    let target = i128::try_from(TICKS_TARGET).unwrap_or(6);
    let raw = (hi - lo + target - 1) / target;
    let mut step = nice_step_int(raw);
    let unit = unit_minor.max(1);
    if step < unit && (hi - lo) / unit >= WHOLE_UNIT_TICKS_MIN - 1 {
        step = unit;
    }
    let first = lo.div_euclid(step) * step;
    let last = {
        let q = hi.div_euclid(step);
        if hi.rem_euclid(step) == 0 { q } else { q + 1 }
    } * step;
    let mut ticks = Vec::new();
    let mut t = first;
    while t <= last {
        ticks.push(t);
        t += step;
    }
    MoneyTicks {
        lo: first,
        hi: last,
        step,
        ticks,
    }
}

/// The 1, 2, 5 × 10^k step (k ≥ 0) nearest to `raw`, as [`nice_step`], in
/// integers: ratio thresholds √2 ≈ 1.414, √10 ≈ 3.162, √50 ≈ 7.071.
pub fn nice_step_int(raw: i128) -> i128 {
    if raw <= 1 {
        return 1;
    }
    let mut power: i128 = 1;
    while power.saturating_mul(10) <= raw && power < i128::MAX / 100 {
        power *= 10;
    }
    // raw / power ≥ t  ⇔  raw · 1000 ≥ t · 1000 · power; raw < 10^38 here.
    let scaled = raw.saturating_mul(1000);
    let m = if scaled >= 7071 * power {
        10
    } else if scaled >= 3162 * power {
        5
    } else if scaled >= 1414 * power {
        2
    } else {
        1
    };
    m * power
}

/// A log axis: the domain widened to the ticks around it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogTicks {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
}

/// Ticks at 1, 2, 5 × 10^k covering `[lo, hi]` (both clamped to at least
/// `floor`), or at powers of ten when that would give more than
/// [`LOG_TICKS_MAX`].
pub fn log_ticks(lo: f64, hi: f64, floor: f64) -> LogTicks {
    let floor = if floor.is_finite() && floor > 0.0 {
        floor
    } else {
        1e-3
    };
    let lo = if lo.is_finite() { lo.max(floor) } else { floor };
    let hi = if hi.is_finite() { hi.max(lo) } else { lo };
    let lo_decade = lo.log10().floor();
    let hi_decade = hi.log10().ceil().max(lo_decade + 1.0);
    let mut nice = Vec::new();
    let mut k = lo_decade;
    while k <= hi_decade {
        for m in [1.0, 2.0, 5.0] {
            nice.push(m * 10f64.powf(k));
        }
        k += 1.0;
    }
    // The tightest 1-2-5 values around the data.
    let start = nice
        .iter()
        .rposition(|&v| v <= lo * (1.0 + 1e-9))
        .unwrap_or(0);
    let end = nice
        .iter()
        .position(|&v| v >= hi * (1.0 - 1e-9))
        .unwrap_or(nice.len() - 1)
        .max(start + 1)
        .min(nice.len() - 1);
    let chosen: Vec<f64> = nice[start..=end].to_vec();
    let ticks = if chosen.len() > LOG_TICKS_MAX {
        let mut decades = Vec::new();
        let mut k = lo.log10().floor();
        while k <= hi.log10().ceil() {
            decades.push(10f64.powf(k));
            k += 1.0;
        }
        decades
    } else {
        chosen
    };
    let lo = ticks.first().copied().unwrap_or(lo).min(lo);
    let hi = ticks.last().copied().unwrap_or(hi).max(hi);
    let hi = if hi > lo { hi } else { lo * 2.0 };
    LogTicks { lo, hi, ticks }
}

fn sane_interval(lo: f64, hi: f64) -> (f64, f64) {
    let lo = if lo.is_finite() { lo } else { 0.0 };
    let hi = if hi.is_finite() { hi } else { lo };
    if hi > lo { (lo, hi) } else { (lo, lo + 1.0) }
}

/// Layout-only conversions: positions, not money. Exact up to 2^53, which no
/// time or count in a report reaches.
pub fn u64_f64(v: u64) -> f64 {
    v as f64
}

pub fn i64_f64(v: i64) -> f64 {
    v as f64
}

pub fn i128_f64(v: i128) -> f64 {
    v as f64
}

pub fn usize_f64(v: usize) -> f64 {
    v as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps_are_the_nearest_one_two_five() {
        assert_eq!(nice_step(0.7), 0.5);
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.3), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(3.0), 2.0);
        assert_eq!(nice_step(3.5), 5.0);
        assert_eq!(nice_step(7.0), 5.0);
        assert_eq!(nice_step(7.5), 10.0);
        assert_eq!(nice_step(21.7), 20.0);
        assert_eq!(nice_step(0.3), 0.2);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(nice_step(-3.0), 1.0);
        for raw in [0.013, 1.7, 42.0, 999.0, 1e6 + 1.0] {
            let s = nice_step(raw);
            assert!(s > raw / 2.3 && s < raw * 2.3, "{raw} -> {s}");
        }
    }

    #[test]
    fn linear_ticks_cover_the_data_with_whole_steps() {
        let t = linear_ticks(3.0, 97.0);
        assert_eq!(t.step, 20.0);
        assert_eq!(t.ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert_eq!((t.lo, t.hi), (0.0, 100.0));
        let t = linear_ticks(0.0, 360.0);
        assert_eq!(t.step, 50.0);
        assert_eq!((t.lo, t.hi), (0.0, 400.0));
        let t = linear_ticks(5.0, 5.0);
        assert!(t.lo <= 5.0 && t.hi >= 6.0);
        let t = linear_ticks(f64::NAN, f64::INFINITY);
        assert!(!t.ticks.is_empty());
    }

    #[test]
    fn time_ticks_are_seconds_within_the_run() {
        let t = time_ticks_s(93_400);
        assert_eq!(t.step, 20.0);
        assert_eq!(t.ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(t.hi, 93.4);
        let t = time_ticks_s(130_000);
        assert_eq!(t.step, 20.0);
        assert_eq!(t.ticks.len(), 7);
        let t = time_ticks_s(0);
        assert!(!t.ticks.is_empty());
        assert!(t.hi > 0.0);
        let t = time_ticks_s(2_500);
        assert_eq!(t.step, 0.5);
        assert_eq!(t.ticks.len(), 6);
    }

    #[test]
    fn money_ticks_are_whole_minor_units_and_include_zero() {
        let t = money_ticks(0, 12_345);
        assert_eq!(t.step, 2_000);
        assert_eq!(
            t.ticks,
            vec![0, 2_000, 4_000, 6_000, 8_000, 10_000, 12_000, 14_000]
        );
        let t = money_ticks(-2_500, 9_000);
        assert!(t.ticks.contains(&0));
        assert_eq!(t.lo, -4_000);
        assert_eq!(t.hi, 10_000);
        let t = money_ticks(3, 3);
        assert_eq!(t.ticks.first(), Some(&0));
        assert_eq!(t.step, 1);
        let t = money_ticks(0, 0);
        assert_eq!((t.lo, t.hi), (0, 100));
        let t = money_ticks(i64::MIN, i64::MAX);
        assert!(t.lo <= i128::from(i64::MIN) && t.hi >= i128::from(i64::MAX));
        assert!(t.ticks.len() <= 2 * TICKS_TARGET + 2);
        assert_eq!(nice_step_int(0), 1);
        assert_eq!(nice_step_int(3), 2);
        assert_eq!(nice_step_int(4), 5);
        assert_eq!(nice_step_int(20), 20);
        assert_eq!(nice_step_int(71), 100);
        assert_eq!(nice_step_int(70), 50);
        // Whole euros where they give four ticks or more: 0 … 4.10 EUR
        // steps by 1 EUR, not by 0.50; 0 … 2.40 EUR keeps 0.50.
        let t = money_ticks_in(0, 410, 100);
        assert_eq!(t.ticks, vec![0, 100, 200, 300, 400, 500]);
        let t = money_ticks_in(0, 240, 100);
        assert_eq!(t.step, 50);
        assert_eq!(money_ticks_in(0, 12_345, 100), money_ticks(0, 12_345));
        let t = money_ticks_in(i64::MIN, i64::MAX, 100);
        assert!(t.ticks.len() <= 2 * TICKS_TARGET + 2);
        for raw in [2i128, 13, 99, 12_345, 10_000_000_007] {
            let f = nice_step(crate::scale::i128_f64(raw));
            assert_eq!(crate::scale::i128_f64(nice_step_int(raw)), f, "{raw}");
        }
    }

    #[test]
    fn log_ticks_are_one_two_five_or_decades() {
        let t = log_ticks(3.0, 180.0, 0.001);
        assert_eq!(t.ticks, vec![2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0]);
        let t = log_ticks(0.05, 90_000.0, 0.001);
        assert_eq!(t.ticks.first(), Some(&0.01));
        assert!(t.ticks.len() <= LOG_TICKS_MAX);
        assert!(t.hi >= 90_000.0);
        let t = log_ticks(0.0, 0.0, 0.001);
        assert!(t.lo > 0.0 && t.hi > t.lo);
        let t = log_ticks(7.0, 7.0, 0.001);
        assert!(t.lo <= 7.0 && t.hi >= 7.0 && t.hi > t.lo);
    }

    #[test]
    fn scales_clamp_and_map() {
        let x = Linear::new((0.0, 10.0), (100.0, 200.0));
        assert_eq!(x.map(5.0), 150.0);
        assert_eq!(x.map(-5.0), 100.0);
        assert_eq!(x.map(f64::NAN), 100.0);
        let y = Linear::new((0.0, 10.0), (200.0, 100.0));
        assert_eq!(y.map(10.0), 100.0);
        let l = Log::new((1.0, 100.0), (0.0, 200.0));
        assert!((l.map(10.0) - 100.0).abs() < 1e-9);
        assert_eq!(l.map(0.0), 0.0);
        assert_eq!(l.map(1e9), 200.0);
    }
}
