//! Pending micropayment totals against their thresholds over time: small
//! multiples, one per customer or cluster, each with its θ as a dashed line
//! and its settlements (bank transfers) marked.

use std::fmt::Write as _;

use super::{
    Chart, WIDTH, legend_line, money_axis, money_labels_width, px, sorted_points, step_path, text,
    time_axis, time_end_ms, unit_minor,
};
use crate::format::{escape, money, seconds, truncate};
use crate::model::{DemoReport, PendingSeries};
use crate::scale::{Linear, i128_f64, money_ticks_in, time_ticks_between, u64_f64};

pub const NAME: &str = "micro";
/// Panels drawn; the page notes how many series were left out.
pub const PANELS_MAX: usize = 8;
const COLUMNS: usize = 2;
const GAP: f64 = 24.0;
const LEGEND_H: f64 = 26.0;
const TITLE_H: f64 = 28.0;
const PLOT_H: f64 = 130.0;
const AXIS_H: f64 = 40.0;
const PENDING_COLOUR: &str = "#4e79a7";
const THETA_COLOUR: &str = "#e15759";
const SETTLEMENT_COLOUR: &str = "#59a14f";
const TITLE_CHARS_MAX: usize = 28;

pub fn render(report: &DemoReport) -> Chart {
    if report.micro.is_empty() {
        return Chart::empty(NAME, "No micropayments were aggregated.");
    }
    let end_ms = time_end_ms(report);
    let currency = report.currency;
    let shown = &report.micro[..report.micro.len().min(PANELS_MAX)];
    let panel_w =
        (WIDTH - GAP * crate::scale::usize_f64(COLUMNS - 1)) / crate::scale::usize_f64(COLUMNS);
    // Zoomed to the phase(s) of the micropayments, one window for every
    // panel so that they compare.
    let (lo_ms, hi_ms) = micro_window(report, shown, end_ms);
    let ticks = time_ticks_between(lo_ms, hi_ms);
    let mut body = String::new();
    legend_line(&mut body, 8.0, 16.0, PENDING_COLOUR, false, "pending total");
    legend_line(&mut body, 150.0, 16.0, THETA_COLOUR, true, "threshold θ");
    let _ = write!(
        body,
        "<path d=\"M{} 7l5 8l5 -8z\" fill=\"{SETTLEMENT_COLOUR}\"/>",
        px(290.0)
    );
    text(
        &mut body,
        306.0,
        16.0,
        "start",
        "legend",
        "settlement (one bank transfer)",
    );
    let row_h = TITLE_H + PLOT_H + AXIS_H;
    for (i, series) in shown.iter().enumerate() {
        let col = i % COLUMNS;
        let row = i / COLUMNS;
        let x0 = crate::scale::usize_f64(col) * (panel_w + GAP);
        let y0 = LEGEND_H + crate::scale::usize_f64(row) * row_h;
        panel(
            &mut body,
            series,
            currency,
            (lo_ms, hi_ms),
            &ticks,
            x0,
            y0,
            panel_w,
        );
    }
    let rows = shown.len().div_ceil(COLUMNS);
    let height = LEGEND_H + crate::scale::usize_f64(rows) * row_h;
    Chart::svg(
        NAME,
        "Pending micropayment totals against their thresholds",
        height,
        &body,
    )
}

/// The time window of the micropayments: from the start of the phase of
/// the first one to the end of the phase of the last one (or the activity
/// padded by a twentieth when no phase covers it), within `[0, end_ms]`.
pub fn micro_window(report: &DemoReport, shown: &[PendingSeries], end_ms: u64) -> (u64, u64) {
    // A series opens at zero: the activity starts with its first non-zero
    // total.
    let times = shown.iter().flat_map(|s| {
        sorted_points(&s.points)
            .into_iter()
            .skip_while(|p| p.1 == 0)
            .map(|p| p.0)
            .chain(s.settlements.iter().copied())
    });
    let (Some(first), Some(last)) = (times.clone().min(), times.max()) else {
        return (0, end_ms);
    };
    let phase_of = |t: u64| {
        report
            .phases
            .iter()
            .find(|p| (p.started_ms..=p.started_ms.saturating_add(p.duration_ms)).contains(&t))
    };
    let pad = (last - first) / 20 + 250;
    let lo = phase_of(first).map_or(first.saturating_sub(pad), |p| p.started_ms);
    let hi = phase_of(last).map_or(last.saturating_add(pad), |p| {
        p.started_ms.saturating_add(p.duration_ms)
    });
    (
        lo.min(end_ms),
        hi.clamp(lo.saturating_add(1), end_ms.max(lo.saturating_add(1))),
    )
}

/// A step series seen through `[lo_ms, hi_ms]`: the value held at `lo_ms`,
/// then the points inside.
fn clip_to(points: &[(u64, i64)], lo_ms: u64, hi_ms: u64) -> Vec<(u64, i64)> {
    let held = points
        .iter()
        .rev()
        .find(|p| p.0 <= lo_ms)
        .map(|p| (lo_ms, p.1));
    held.into_iter()
        .chain(
            points
                .iter()
                .copied()
                .filter(|p| p.0 > lo_ms && p.0 <= hi_ms),
        )
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    series: &PendingSeries,
    currency: mpay_money::Currency,
    (lo_ms, hi_ms): (u64, u64),
    ticks: &crate::scale::Ticks,
    x0: f64,
    y0: f64,
    width: f64,
) {
    let points = clip_to(&sorted_points(&series.points), lo_ms, hi_ms);
    let peak = points.iter().map(|p| p.1).max().unwrap_or(0);
    let floor = points.iter().map(|p| p.1).min().unwrap_or(0);
    // Room above θ so the line is not on the frame.
    let headroom = series.theta_minor.saturating_add(series.theta_minor / 8);
    let axis = money_ticks_in(floor, peak.max(headroom), unit_minor(currency));
    let left = x0 + money_labels_width(&axis, currency) + 12.0;
    let right = x0 + width - 6.0;
    let top = y0 + TITLE_H;
    let bottom = top + PLOT_H;
    let title = format!(
        "{} · θ {} · window {}",
        truncate(&series.label, TITLE_CHARS_MAX),
        money(series.theta_minor, currency),
        seconds(series.window_ms)
    );
    text(out, left, y0 + 12.0, "start", "panel-title", &title);
    let x = Linear::new((u64_f64(lo_ms), u64_f64(hi_ms)), (left, right));
    let y = Linear::new((i128_f64(axis.lo), i128_f64(axis.hi)), (bottom, top));
    money_axis(out, &y, &axis, currency, left, right);
    time_axis(out, &x, ticks, top, bottom, true);
    if points.is_empty() && series.settlements.is_empty() {
        text(
            out,
            (left + right) / 2.0,
            (top + bottom) / 2.0,
            "middle",
            "note",
            "no micropayments",
        );
    }
    let ty = y.map(crate::scale::i64_f64(series.theta_minor));
    let _ = write!(
        out,
        "<line class=\"mark theta\" x1=\"{}\" x2=\"{}\" y1=\"{ty}\" y2=\"{ty}\" stroke=\"{THETA_COLOUR}\">\
         <title>θ = {}</title></line>",
        px(left),
        px(right),
        escape(&money(series.theta_minor, currency)),
        ty = px(ty)
    );
    for &t in series
        .settlements
        .iter()
        .filter(|&&t| (lo_ms..=hi_ms).contains(&t))
    {
        let xp = px(x.map(u64_f64(t)));
        let _ = write!(
            out,
            "<line class=\"mark settlement\" x1=\"{xp}\" x2=\"{xp}\" y1=\"{}\" y2=\"{}\" stroke=\"{SETTLEMENT_COLOUR}\"/>\
             <path class=\"mark\" d=\"M{xp} {}l-4 -7h8z\" fill=\"{SETTLEMENT_COLOUR}\"><title>settled at {}</title></path>",
            px(top),
            px(bottom),
            px(top),
            seconds(t)
        );
    }
    if !points.is_empty() {
        let d = step_path(&points, &x, &y, hi_ms);
        let _ = write!(
            out,
            "<path class=\"mark line\" d=\"{d}\" stroke=\"{PENDING_COLOUR}\"><title>{}: peak {}</title></path>",
            escape(&series.label),
            money(peak, currency)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16: all the activity sat in a fifth of each panel's width.
    #[test]
    fn the_panels_zoom_to_the_micropayment_phase() {
        let report = crate::sample::sample_report(7);
        let end_ms = time_end_ms(&report);
        let shown = &report.micro[..report.micro.len().min(PANELS_MAX)];
        let (lo, hi) = micro_window(&report, shown, end_ms);
        assert!(lo > 0 && hi <= end_ms, "{lo}..{hi} of {end_ms}");
        assert!(hi - lo < end_ms / 2, "{lo}..{hi} of {end_ms}");
        for s in shown {
            // After the opening zero: every change and every settlement.
            let active = sorted_points(&s.points)
                .into_iter()
                .skip_while(|p| p.1 == 0)
                .map(|p| p.0);
            for t in active.chain(s.settlements.iter().copied()) {
                assert!((lo..=hi).contains(&t), "{t} outside {lo}..{hi}");
            }
        }
        let ticks = time_ticks_between(lo, hi);
        assert!(ticks.ticks.len() >= 3, "{ticks:?}");
        assert!(
            ticks
                .ticks
                .iter()
                .all(|&t| t * 1000.0 >= u64_f64(lo) - 1e-6)
        );
    }

    #[test]
    fn a_clipped_series_keeps_the_value_it_held() {
        let points = [(0, 1), (100, 5), (300, 7), (900, 2)];
        assert_eq!(clip_to(&points, 200, 800), vec![(200, 5), (300, 7)]);
        assert_eq!(clip_to(&points, 0, 100), vec![(0, 1), (100, 5)]);
    }
}
