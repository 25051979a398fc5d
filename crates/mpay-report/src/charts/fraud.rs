//! The double spend caught, drawn as its proof: the wallet's chain forks at
//! one sequence number into two different signed entries.

use std::fmt::Write as _;

use super::{Chart, WIDTH, px, text};
use crate::format::{abbreviate_hex, money, seconds, truncate};
use crate::model::{DemoReport, FraudCase};
use crate::scale::usize_f64;

pub const NAME: &str = "fraud";
/// Cases drawn; the table below the diagram lists every case.
pub const CASES_DRAWN_MAX: usize = 4;
const CASE_H: f64 = 170.0;
const BOX_X: f64 = 210.0;
const BOX_W: f64 = 430.0;
const BOX_H: f64 = 40.0;
/// What fits in an entry's box (430 px at 11 px type).
const SUMMARY_CHARS_MAX: usize = 68;
const FIRST_COLOUR: &str = "#4e79a7";
const SECOND_COLOUR: &str = "#e15759";

pub fn render(report: &DemoReport) -> Chart {
    if report.frauds.is_empty() {
        return Chart::empty(NAME, "No double spend was caught.");
    }
    let mut body = String::from(DEFS);
    let shown = &report.frauds[..report.frauds.len().min(CASES_DRAWN_MAX)];
    for (i, case) in shown.iter().enumerate() {
        draw_case(&mut body, report, case, usize_f64(i) * CASE_H);
    }
    Chart::svg(
        NAME,
        "Double spend caught: two signed entries with one (wallet, sequence)",
        usize_f64(shown.len()) * CASE_H,
        &body,
    )
}

fn draw_case(out: &mut String, report: &DemoReport, case: &FraudCase, y0: f64) {
    let heading = format!(
        "wallet {} · owner {} · sequence {}",
        truncate(&case.wallet, 32),
        truncate(&case.owner, 32),
        case.seq
    );
    text(out, 12.0, y0 + 20.0, "start", "panel-title", &heading);
    let fork_y = y0 + 92.0;
    let first_y = y0 + 38.0;
    let second_y = y0 + 106.0;
    // The chain up to the fork.
    let before = match case.seq.checked_sub(1) {
        Some(prev) => format!("… seq {prev}"),
        None => "chain start".to_owned(),
    };
    let _ = write!(
        out,
        "<path class=\"mark chain\" d=\"M24 {f}H120\"/>\
         <circle class=\"mark\" cx=\"40\" cy=\"{f}\" r=\"5\" fill=\"#888\"/>\
         <circle class=\"mark\" cx=\"80\" cy=\"{f}\" r=\"5\" fill=\"#888\"/>\
         <circle class=\"mark\" cx=\"120\" cy=\"{f}\" r=\"7\" fill=\"#555\"/>",
        f = px(fork_y)
    );
    text(out, 80.0, fork_y + 22.0, "middle", "tick", &before);
    for (entry, y, colour, which) in [
        (&case.first, first_y, FIRST_COLOUR, "first entry"),
        (&case.second, second_y, SECOND_COLOUR, "second entry"),
    ] {
        let mid = y + BOX_H / 2.0;
        let _ = write!(
            out,
            "<path class=\"mark fork\" d=\"M120 {f}C165 {f} 165 {m} {bx} {m}\" stroke=\"{colour}\" marker-end=\"url(#fraud-arrow)\"/>\
             <rect class=\"mark entry\" x=\"{bx}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"4\" stroke=\"{colour}\"/>",
            px(y),
            px(BOX_W),
            px(BOX_H),
            f = px(fork_y),
            m = px(mid),
            bx = px(BOX_X),
        );
        text(
            out,
            BOX_X + 10.0,
            y + 16.0,
            "start",
            "entry-title",
            &format!(
                "seq {} · {which} · {}",
                case.seq,
                abbreviate_hex(&entry.hex)
            ),
        );
        // The box's title gives the sequence: the summary need not.
        let prefix = format!("entry #{}: ", case.seq);
        let said = entry
            .summary
            .strip_prefix(&prefix)
            .unwrap_or(&entry.summary);
        let summary = if said.is_empty() {
            "(no summary)".to_owned()
        } else {
            truncate(said, SUMMARY_CHARS_MAX)
        };
        text(out, BOX_X + 10.0, y + 32.0, "start", "tick", &summary);
    }
    let rx = BOX_X + BOX_W + 24.0;
    let lines = [
        (
            "verdict",
            "same (wallet, seq), different entries".to_owned(),
        ),
        ("verdict", "→ fraud proof naming the owner".to_owned()),
        (
            "detail",
            format!(
                "caught at {} by {}",
                seconds(case.caught_at_ms),
                truncate(&case.caught_by, 28)
            ),
        ),
        (
            "detail",
            format!(
                "charged {} to {}",
                money(case.charged_minor, report.currency),
                truncate(&case.owner, 20)
            ),
        ),
        (
            if case.revoked { "detail" } else { "alarm" },
            if case.revoked {
                "certificate revoked".to_owned()
            } else {
                "certificate NOT revoked".to_owned()
            },
        ),
    ];
    for (k, (class, line)) in lines.iter().enumerate() {
        text(
            out,
            rx,
            y0 + 52.0 + 19.0 * usize_f64(k),
            "start",
            class,
            line,
        );
    }
    let _ = write!(
        out,
        "<line class=\"sep\" x1=\"8\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/>",
        px(WIDTH - 8.0),
        y = px(y0 + 160.0)
    );
}

/// Marker definitions the fraud diagram uses (an arrow head), placed once in
/// the chart.
pub const DEFS: &str = "<defs><marker id=\"fraud-arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" \
     markerWidth=\"7\" markerHeight=\"7\" orient=\"auto\"><path d=\"M0 0L10 5L0 10z\" fill=\"#555\"/></marker></defs>";

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 16: the demo's entry summaries were cut with an ellipsis.
    #[test]
    fn the_demos_entry_summaries_are_not_truncated() {
        let mut report = crate::sample::sample_report(7);
        let case = report
            .frauds
            .first_mut()
            .expect("the sample has a double spend");
        case.seq = 2;
        case.first.summary =
            "entry #2: pay 24.85 EUR to cafe (tx 94b6acc4), balance after 25.15 EUR".into();
        case.second.summary =
            "entry #2: pay 120.60 EUR to bakery (tx 72d5363f), balance after 129.40 EUR".into();
        let svg = render(&report).html;
        assert!(
            svg.contains(">pay 24.85 EUR to cafe (tx 94b6acc4), balance after 25.15 EUR<"),
            "{svg}"
        );
        assert!(svg.contains("balance after 129.40 EUR<"), "{svg}");
    }
}
