//! Latency per payment kind on a log axis: a strip of samples, a box from
//! p25 to p75, whiskers to min and max, marks at p50, p90 and p99, and the
//! numbers beside each row.

use std::fmt::Write as _;

use super::{Chart, FONT_SMALL, WIDTH, palette, px, text, text_width};
use crate::format::{latency, truncate};
use crate::model::DemoReport;
use crate::scale::{Log, log_ticks, usize_f64};
use crate::stats::{sorted_finite, summarize};

pub const NAME: &str = "latency";
/// Samples drawn as dots per kind (picked evenly across the sorted samples).
pub const DOTS_PER_KIND_MAX: usize = 300;
/// Latencies below this are drawn at it (a log axis has no zero).
pub const FLOOR_MS: f64 = 0.01;
const ROW_H: f64 = 58.0;
const STATS_W: f64 = 250.0;
const LABEL_CHARS_MAX: usize = 26;
const PCT_LABEL_GAP: f64 = 22.0;

pub fn render(report: &DemoReport) -> Chart {
    if report.latencies.is_empty() {
        return Chart::empty(NAME, "No latencies were measured.");
    }
    let summaries: Vec<_> = report.latencies.iter().map(summarize).collect();
    if summaries.iter().all(Option::is_none) {
        return Chart::empty(NAME, "No latency samples were recorded.");
    }
    let lo = summaries
        .iter()
        .flatten()
        .map(|s| s.min_ms)
        .fold(f64::INFINITY, f64::min);
    let hi = summaries
        .iter()
        .flatten()
        .map(|s| s.max_ms)
        .fold(0.0, f64::max);
    let axis = log_ticks(lo, hi, FLOOR_MS);
    let labels: Vec<String> = report
        .latencies
        .iter()
        .map(|s| truncate(&s.kind, LABEL_CHARS_MAX))
        .collect();
    let left = labels
        .iter()
        .map(|l| text_width(l, FONT_SMALL + 1.0))
        .fold(90.0, f64::max)
        + 16.0;
    let right = WIDTH - STATS_W;
    let x = Log::new((axis.lo, axis.hi), (left, right));
    let top = 8.0;
    let bottom = top + ROW_H * usize_f64(report.latencies.len());
    let mut body = String::new();
    for &t in &axis.ticks {
        let xp = x.map(t);
        let _ = write!(
            body,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"/>",
            px(top),
            px(bottom),
            x = px(xp)
        );
        text(&mut body, xp, bottom + 14.0, "middle", "tick", &latency(t));
    }
    let _ = write!(
        body,
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{b}\" y2=\"{b}\"/>",
        px(left),
        px(right),
        b = px(bottom)
    );
    text(
        &mut body,
        (left + right) / 2.0,
        bottom + 30.0,
        "middle",
        "axis-title",
        "latency (log scale)",
    );
    for (i, ((series, summary), label)) in report
        .latencies
        .iter()
        .zip(&summaries)
        .zip(&labels)
        .enumerate()
    {
        let y0 = top + ROW_H * usize_f64(i);
        let mid = y0 + ROW_H / 2.0;
        let colour = palette(i);
        text(&mut body, left - 10.0, mid - 2.0, "end", "label", label);
        let Some(s) = summary else {
            text(
                &mut body,
                left - 10.0,
                mid + 12.0,
                "end",
                "tick",
                "no samples",
            );
            continue;
        };
        text(
            &mut body,
            left - 10.0,
            mid + 12.0,
            "end",
            "tick",
            &format!("n = {}", s.count),
        );
        // The strip of samples, above the box.
        let sorted = sorted_finite(&series.samples_ms);
        for (k, v) in pick_evenly(&sorted, DOTS_PER_KIND_MAX)
            .into_iter()
            .enumerate()
        {
            let jitter = usize_f64((k * 37) % 17) / 16.0;
            let _ = write!(
                body,
                "<circle class=\"mark dot\" cx=\"{}\" cy=\"{}\" r=\"1.8\" fill=\"{colour}\"/>",
                px(x.map(v.max(FLOOR_MS))),
                px(y0 + 6.0 + jitter * 14.0)
            );
        }
        let at = |v: f64| x.map(v.max(FLOOR_MS));
        let (box_top, box_h) = (y0 + 25.0, 16.0);
        let _ = write!(
            body,
            "<line class=\"mark whisker\" x1=\"{}\" x2=\"{}\" y1=\"{m}\" y2=\"{m}\" stroke=\"{colour}\"/>",
            px(at(s.min_ms)),
            px(at(s.max_ms)),
            m = px(box_top + box_h / 2.0)
        );
        let _ = write!(
            body,
            "<rect class=\"mark box\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{colour}\">\
             <title>p25 {} – p75 {}</title></rect>",
            px(at(s.p25_ms)),
            px(box_top),
            px((at(s.p75_ms) - at(s.p25_ms)).max(1.5)),
            px(box_h),
            latency(s.p25_ms),
            latency(s.p75_ms)
        );
        let mut last_label_x = f64::NEG_INFINITY;
        for (name, v, class) in [
            ("p50", Some(s.p50_ms), "p50"),
            ("p90", s.p90_ms, "pct"),
            ("p99", s.p99_ms, "pct"),
        ] {
            // A percentile of a handful of samples is only the largest.
            let Some(v) = v else {
                continue;
            };
            let xp = at(v);
            let _ = write!(
                body,
                "<line class=\"mark {class}\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"><title>{name} {}</title></line>",
                px(box_top - 3.0),
                px(box_top + box_h + 3.0),
                latency(v),
                x = px(xp)
            );
            // A label only where it does not run into the previous one.
            if name != "p50" && xp - last_label_x >= PCT_LABEL_GAP {
                text(
                    &mut body,
                    xp,
                    box_top + box_h + 13.0,
                    "middle",
                    "pct-label",
                    name,
                );
                last_label_x = xp;
            }
        }
        let sx = right + 18.0;
        let (first, second) = stat_lines(s);
        text(&mut body, sx, mid - 2.0, "start", "stat", &first);
        text(&mut body, sx, mid + 13.0, "start", "stat", &second);
    }
    Chart::svg(
        NAME,
        "Latency distribution per payment kind",
        bottom + 40.0,
        &body,
    )
}

/// At most `max` values spread evenly over `sorted` (first and last kept).
pub fn pick_evenly(sorted: &[f64], max: usize) -> Vec<f64> {
    if sorted.len() <= max {
        return sorted.to_vec();
    }
    if max < 2 {
        return sorted.iter().copied().take(max).collect();
    }
    let n = sorted.len();
    (0..max)
        .filter_map(|k| sorted.get(k * (n - 1) / (max - 1)).copied())
        .collect()
}

/// The two lines of figures right of a row: only the percentiles its
/// samples can tell.
fn stat_lines(s: &crate::stats::LatencySummary) -> (String, String) {
    let first = if let Some(p90) = s.p90_ms {
        format!("p50 {} · p90 {}", latency(s.p50_ms), latency(p90))
    } else if s.count == 1 {
        format!("one payment: {}", latency(s.p50_ms))
    } else {
        format!("p50 {}", latency(s.p50_ms))
    };
    let second = if let Some(p99) = s.p99_ms {
        format!("p99 {} · max {}", latency(p99), latency(s.max_ms))
    } else if s.count == 1 {
        String::new()
    } else {
        format!("max {}", latency(s.max_ms))
    };
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_picked_evenly() {
        let v: Vec<f64> = (0..1000).map(f64::from).collect();
        let p = pick_evenly(&v, 5);
        assert_eq!(p, vec![0.0, 249.0, 499.0, 749.0, 999.0]);
        assert_eq!(pick_evenly(&v[..3], 5), vec![0.0, 1.0, 2.0]);
        assert!(pick_evenly(&[], 5).is_empty());
    }

    #[test]
    fn no_percentile_marks_a_handful_of_samples_cannot_tell() {
        // Issue 16: a p90 mark for a row with n = 1.
        let mut report = crate::sample::sample_report(7);
        report.latencies = vec![
            crate::model::LatencySeries {
                kind: "refund".into(),
                samples_ms: vec![52.6],
            },
            crate::model::LatencySeries {
                kind: "micropayment".into(),
                samples_ms: (1..=80).map(f64::from).collect(),
            },
        ];
        let svg = render(&report).html;
        assert_eq!(svg.matches("<title>p90 ").count(), 1, "only the row of 80");
        assert_eq!(svg.matches("<title>p99 ").count(), 0, "no row has 100");
        assert!(svg.contains("one payment: 52.6 ms"), "{svg}");
    }
}
