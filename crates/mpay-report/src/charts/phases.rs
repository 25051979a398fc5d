//! The day's phases as a timeline: one bar per phase on the time axis.

use std::fmt::Write as _;

use super::{Chart, FONT_SMALL, WIDTH, palette, px, text, text_width, time_axis, time_end_ms};
use crate::format::{escape, seconds, truncate};
use crate::model::DemoReport;
use crate::scale::{Linear, time_ticks_s, u64_f64};

pub const NAME: &str = "phases";
const ROW_H: f64 = 22.0;
/// Longest phase name shown whole (the demo's longest has 34 characters).
const LABEL_CHARS_MAX: usize = 40;

pub fn render(report: &DemoReport) -> Chart {
    if report.phases.is_empty() {
        return Chart::empty(NAME, "No phases were recorded.");
    }
    let end_ms = time_end_ms(report);
    let labels: Vec<String> = report
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}. {}", i + 1, truncate(&p.name, LABEL_CHARS_MAX)))
        .collect();
    let left = labels
        .iter()
        .map(|l| text_width(l, FONT_SMALL))
        .fold(0.0, f64::max)
        + 16.0;
    let right = WIDTH - 20.0;
    let top = 10.0;
    let bottom = top + ROW_H * crate::scale::usize_f64(report.phases.len());
    let x = Linear::new((0.0, u64_f64(end_ms)), (left, right));
    let ticks = time_ticks_s(end_ms);
    let mut body = String::new();
    time_axis(&mut body, &x, &ticks, top, bottom, true);
    for (i, (phase, label)) in report.phases.iter().zip(&labels).enumerate() {
        let y = top + ROW_H * crate::scale::usize_f64(i);
        text(
            &mut body,
            left - 8.0,
            y + ROW_H / 2.0 + 4.0,
            "end",
            "label",
            label,
        );
        let x0 = x.map(u64_f64(phase.started_ms));
        let x1 = x.map(u64_f64(phase.started_ms.saturating_add(phase.duration_ms)));
        let _ = write!(
            body,
            "<rect class=\"mark\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"{}\">\
             <title>{} · {} – {}</title></rect>",
            px(x0),
            px(y + 4.0),
            px((x1 - x0).max(2.0)),
            px(ROW_H - 8.0),
            palette(i),
            escape(&phase.name),
            seconds(phase.started_ms),
            seconds(phase.started_ms.saturating_add(phase.duration_ms)),
        );
    }
    Chart::svg(NAME, "The day's phases over time", bottom + 36.0, &body)
}

#[cfg(test)]
mod label_tests {
    use super::*;

    /// Issue 16: "9. rejection, expiry, refund, …" in the phase timeline.
    #[test]
    fn the_demos_phase_names_are_shown_whole() {
        let mut report = crate::sample::sample_report(7);
        report.phases[0].name = "rejection, expiry, refund, lockout".into();
        let svg = render(&report).html;
        assert!(
            svg.contains("1. rejection, expiry, refund, lockout<"),
            "{svg}"
        );
    }
}
