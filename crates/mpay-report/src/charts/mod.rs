//! The charts, each an inline `<svg data-chart="NAME">` built as a string,
//! or a `<p class="no-data" data-chart="NAME">` note when there is nothing to
//! draw. Everything a chart draws from data carries `class="mark"`, which
//! the page's check script looks for.

use std::fmt::Write as _;

use mpay_money::Currency;

use crate::format::{escape, money_wide, tick_number};
use crate::model::DemoReport;
use crate::scale::{Linear, MoneyTicks, Ticks, i128_f64, u64_f64, usize_f64};

pub mod fraud;
pub mod latency;
pub mod micro;
pub mod money;
pub mod outcomes;
pub mod phases;

/// Width of every chart's coordinate system (it scales down with the page).
pub const WIDTH: f64 = 960.0;
/// Font size of tick labels and legends, px.
pub const FONT_SMALL: f64 = 11.0;
/// Font size of panel titles, px.
pub const FONT_TITLE: f64 = 13.0;

/// Ten colours that stay apart for most eyes (Tableau 10).
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

pub fn palette(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// A chart's name (its `data-chart` value) and its markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chart {
    pub name: &'static str,
    /// True when the chart drew something (an `<svg>`); false for a no-data
    /// note.
    pub drawn: bool,
    pub html: String,
}

impl Chart {
    pub fn empty(name: &'static str, note: &str) -> Chart {
        Chart {
            name,
            drawn: false,
            html: format!(
                "<p class=\"no-data\" data-chart=\"{name}\" data-empty=\"true\">{}</p>",
                escape(note)
            ),
        }
    }

    pub fn svg(name: &'static str, title: &str, height: f64, body: &str) -> Chart {
        let h = px(height.max(1.0));
        Chart {
            name,
            drawn: true,
            html: format!(
                "<svg data-chart=\"{name}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" \
                 width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" role=\"img\" \
                 aria-label=\"{label}\"><title>{label}</title>{body}</svg>",
                w = px(WIDTH),
                label = escape(title),
            ),
        }
    }
}

/// A coordinate for SVG: one decimal, no "-0.0".
pub fn px(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let r = (v * 10.0).round() / 10.0;
    if r == 0.0 {
        "0".to_owned()
    } else if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

/// Estimated width of text in the page's sans-serif font.
pub fn text_width(text: &str, font_px: f64) -> f64 {
    usize_f64(text.chars().count()) * font_px * 0.6
}

/// End of the run's time axis: the report's duration, stretched to cover any
/// point or phase that lies later.
pub fn time_end_ms(report: &DemoReport) -> u64 {
    let phases = report
        .phases
        .iter()
        .map(|p| p.started_ms.saturating_add(p.duration_ms));
    let money = report
        .money
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let micro = report.micro.iter().flat_map(|s| {
        s.points
            .iter()
            .map(|p| p.0)
            .chain(s.settlements.iter().copied())
    });
    let frauds = report.frauds.iter().map(|f| f.caught_at_ms);
    phases
        .chain(money)
        .chain(micro)
        .chain(frauds)
        .fold(report.duration_ms, u64::max)
        .max(1)
}

/// A text element.
pub fn text(out: &mut String, x: f64, y: f64, anchor: &str, class: &str, content: &str) {
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" class=\"{class}\">{}</text>",
        px(x),
        px(y),
        escape(content)
    );
}

/// Vertical grid lines and labels of a time axis in seconds.
pub fn time_axis(out: &mut String, x: &Linear, ticks: &Ticks, top: f64, bottom: f64, title: bool) {
    for &t in &ticks.ticks {
        let xp = x.map(t * 1000.0);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"/>",
            px(top),
            px(bottom),
            x = px(xp)
        );
        text(
            out,
            xp,
            bottom + 14.0,
            "middle",
            "tick",
            &tick_number(t, ticks.step),
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis\" x1=\"{}\" x2=\"{}\" y1=\"{b}\" y2=\"{b}\"/>",
        px(x.range.0),
        px(x.range.1),
        b = px(bottom)
    );
    if title {
        text(
            out,
            (x.range.0 + x.range.1) / 2.0,
            bottom + 28.0,
            "middle",
            "axis-title",
            "time since start (s)",
        );
    }
}

/// Horizontal grid lines and money labels of a y axis.
pub fn money_axis(
    out: &mut String,
    y: &Linear,
    ticks: &MoneyTicks,
    currency: Currency,
    left: f64,
    right: f64,
) {
    for &t in &ticks.ticks {
        let yp = y.map(i128_f64(t));
        let class = if t == 0 { "axis" } else { "grid" };
        let _ = write!(
            out,
            "<line class=\"{class}\" x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>",
            px(left),
            px(right),
            y = px(yp)
        );
        text(
            out,
            left - 6.0,
            yp + 4.0,
            "end",
            "tick",
            &money_tick(t, ticks, currency),
        );
    }
}

/// Minor units in one unit of `currency` (100 for EUR, 1 for JPY).
pub fn unit_minor(currency: Currency) -> i128 {
    10i128.pow(currency.exponent())
}

/// A money tick label: whole units (`200 EUR`) when every tick of the axis
/// is a whole number of units, otherwise with the cents.
pub fn money_tick(minor: i128, ticks: &MoneyTicks, currency: Currency) -> String {
    let unit = unit_minor(currency);
    let whole = ticks.ticks.iter().all(|t| t % unit == 0);
    match (whole, i64::try_from(minor / unit)) {
        (true, Ok(units)) => format!("{units} {currency}"),
        _ => money_wide(minor, currency),
    }
}

/// Width needed by the labels of a money axis.
pub fn money_labels_width(ticks: &MoneyTicks, currency: Currency) -> f64 {
    ticks
        .ticks
        .iter()
        .map(|&t| text_width(&money_tick(t, ticks, currency), FONT_SMALL))
        .fold(0.0, f64::max)
}

/// A step line through `(t_ms, value)` points sorted by time, held to
/// `end_ms`. At most three path commands per pixel column, however many
/// points there are.
pub fn step_path(points: &[(u64, i64)], x: &Linear, y: &Linear, end_ms: u64) -> String {
    let mut d = String::new();
    let mut column: Option<i64> = None;
    let (mut lo, mut hi, mut last) = (0.0f64, 0.0f64, 0.0f64);
    let flush = |d: &mut String, lo: f64, hi: f64, last: f64| {
        let _ = write!(d, "V{}V{}V{}", px(lo), px(hi), px(last));
    };
    for (i, &(t, v)) in points.iter().enumerate() {
        let xp = x.map(u64_f64(t));
        let yp = y.map(crate::scale::i64_f64(v));
        let col = column_of(xp);
        if i == 0 {
            let _ = write!(d, "M{}", px(xp));
            let _ = write!(d, " {}", px(yp));
            column = Some(col);
            (lo, hi, last) = (yp, yp, yp);
            continue;
        }
        if column == Some(col) {
            lo = lo.min(yp);
            hi = hi.max(yp);
            last = yp;
        } else {
            flush(&mut d, lo, hi, last);
            let _ = write!(d, "H{}", px(xp));
            column = Some(col);
            (lo, hi, last) = (yp, yp, yp);
        }
    }
    if !points.is_empty() {
        flush(&mut d, lo, hi, last);
        let _ = write!(d, "H{}", px(x.map(u64_f64(end_ms))));
    }
    d
}

fn column_of(xp: f64) -> i64 {
    // A pixel column index for layout; positions are bounded by WIDTH.
    xp.floor().clamp(-1.0e6, 1.0e6) as i64
}

/// Points sorted by time (stable, so equal times keep their order).
pub fn sorted_points(points: &[(u64, i64)]) -> Vec<(u64, i64)> {
    let mut p = points.to_vec();
    p.sort_by_key(|&(t, _)| t);
    p
}

/// Legend swatch (a short line) and label.
pub fn legend_line(out: &mut String, x: f64, y: f64, colour: &str, dash: bool, label: &str) {
    let _ = write!(
        out,
        "<line x1=\"{}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\" stroke=\"{colour}\" stroke-width=\"2.5\"{}/>",
        px(x),
        px(x + 18.0),
        if dash {
            " stroke-dasharray=\"5 3\""
        } else {
            ""
        },
        y = px(y - 4.0),
    );
    text(out, x + 24.0, y, "start", "legend", label);
}

/// Legend swatch (a square) and label.
pub fn legend_box(out: &mut String, x: f64, y: f64, colour: &str, label: &str) {
    let _ = write!(
        out,
        "<rect class=\"swatch\" x=\"{}\" y=\"{}\" width=\"11\" height=\"11\" fill=\"{colour}\"/>",
        px(x),
        px(y - 10.0)
    );
    text(out, x + 16.0, y, "start", "legend", label);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_money_ticks_have_no_cents() {
        // Issue 16: "200.00 EUR" on an axis of whole euros.
        let ticks = crate::scale::money_ticks(0, 50_000);
        assert!(
            ticks.ticks.iter().all(|t| t % 100 == 0),
            "{:?}",
            ticks.ticks
        );
        let labels: Vec<String> = ticks
            .ticks
            .iter()
            .map(|&t| money_tick(t, &ticks, Currency::EUR))
            .collect();
        assert!(labels.iter().all(|l| !l.contains('.')), "{labels:?}");
        assert!(labels.contains(&"0 EUR".to_owned()), "{labels:?}");
        let small = crate::scale::money_ticks(0, 30);
        let labels: Vec<String> = small
            .ticks
            .iter()
            .map(|&t| money_tick(t, &small, Currency::EUR))
            .collect();
        assert!(labels.iter().any(|l| l.contains('.')), "{labels:?}");
    }

    #[test]
    fn coordinates_are_short_and_finite() {
        assert_eq!(px(12.345), "12.3");
        assert_eq!(px(12.0), "12");
        assert_eq!(px(-0.01), "0");
        assert_eq!(px(f64::NAN), "0");
    }

    #[test]
    fn step_paths_hold_values_and_collapse_columns() {
        let x = Linear::new((0.0, 100.0), (0.0, 100.0));
        let y = Linear::new((0.0, 10.0), (10.0, 0.0));
        let d = step_path(&[(0, 0), (50, 10)], &x, &y, 100);
        assert_eq!(d, "M0 10V10V10V10H50V0V0V0H100");
        // A thousand points inside one pixel column make three commands.
        let many: Vec<(u64, i64)> = (0..1000).map(|i| (10, i % 11)).collect();
        let d = step_path(&many, &x, &y, 100);
        assert_eq!(d.matches('V').count(), 3);
        assert_eq!(step_path(&[], &x, &y, 100), "");
    }

    #[test]
    fn empty_charts_are_notes_with_the_chart_name() {
        let c = Chart::empty("money", "no <data>");
        assert!(!c.drawn);
        assert!(c.html.contains("data-chart=\"money\""));
        assert!(c.html.contains("no &lt;data&gt;"));
        assert!(!c.html.contains("<svg"));
    }
}
