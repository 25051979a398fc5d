//! Pending micropayment totals against their thresholds over time: small
//! multiples, one per customer or cluster, each with its θ as a dashed line
//! and its settlements (bank transfers) marked.

use std::fmt::Write as _;

use super::{
    Chart, WIDTH, legend_line, money_axis, money_labels_width, px, sorted_points, step_path, text,
    time_axis, time_end_ms,
};
use crate::format::{escape, money, seconds, truncate};
use crate::model::{DemoReport, PendingSeries};
use crate::scale::{Linear, i128_f64, money_ticks, time_ticks_s, u64_f64};

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
    let ticks = time_ticks_s(end_ms);
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
        panel(&mut body, series, currency, end_ms, &ticks, x0, y0, panel_w);
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

#[allow(clippy::too_many_arguments)]
fn panel(
    out: &mut String,
    series: &PendingSeries,
    currency: mpay_money::Currency,
    end_ms: u64,
    ticks: &crate::scale::Ticks,
    x0: f64,
    y0: f64,
    width: f64,
) {
    let points = sorted_points(&series.points);
    let peak = points.iter().map(|p| p.1).max().unwrap_or(0);
    let floor = points.iter().map(|p| p.1).min().unwrap_or(0);
    // Room above θ so the line is not on the frame.
    let headroom = series.theta_minor.saturating_add(series.theta_minor / 8);
    let axis = money_ticks(floor, peak.max(headroom));
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
    let x = Linear::new((0.0, u64_f64(end_ms)), (left, right));
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
    for &t in &series.settlements {
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
        let d = step_path(&points, &x, &y, end_ms);
        let _ = write!(
            out,
            "<path class=\"mark line\" d=\"{d}\" stroke=\"{PENDING_COLOUR}\"><title>{}: peak {}</title></path>",
            escape(&series.label),
            money(peak, currency)
        );
    }
}
