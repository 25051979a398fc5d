//! Payments by kind and outcome: one stacked bar per kind.

use std::fmt::Write as _;

use super::{Chart, FONT_SMALL, WIDTH, legend_box, px, text, text_width};
use crate::format::{escape, tick_number, truncate};
use crate::model::DemoReport;
use crate::scale::{Linear, linear_ticks, u64_f64, usize_f64};
use crate::stats::OutcomeTable;

pub const NAME: &str = "outcomes";
const ROW_H: f64 = 30.0;
const LEGEND_H: f64 = 26.0; // also the wrapped legend's row pitch + 6
const TOTAL_W: f64 = 70.0;
const LABEL_CHARS_MAX: usize = 26;

/// Shades per meaning: done, refused, timed out, reversed, waiting. The
/// shades of one meaning differ in lightness, far enough apart to tell.
const FAMILIES: [(&[&str], [&str; 3]); 5] = [
    (
        &[
            "complete", "approve", "settle", "commit", "success", "confirm", "posted",
        ],
        ["#59a14f", "#b6e39b", "#1d4f18"],
    ),
    (
        &[
            "reject", "abort", "fail", "decline", "denied", "refuse", "lock", "fraud", "double",
        ],
        ["#e15759", "#ffb3b0", "#8e1f22"],
    ),
    (
        &["expire", "timeout", "timed out"],
        ["#edc948", "#f28e2b", "#8c6d00"],
    ),
    (
        &["refund", "revers", "void"],
        ["#b07aa1", "#e2c3da", "#6b3a60"],
    ),
    (
        &["pending", "delay", "uncertain", "held", "dt "],
        ["#4e79a7", "#b3d1ef", "#23405f"],
    ),
];

/// Colours for outcomes of no familiar meaning, or past a meaning's shades.
const OTHERS: [&str; 8] = [
    "#76b7b2", "#9c755f", "#7f7f7f", "#17becf", "#bcbd22", "#393b79", "#d62728", "#000000",
];

/// Two colours closer than this (Euclidean distance in RGB, 0–441) are
/// too alike to tell apart in a legend.
pub const COLOUR_DISTANCE_MIN: f64 = 60.0;

/// Red, green and blue of `#rrggbb`.
fn rgb(colour: &str) -> Option<[f64; 3]> {
    let hex = colour.strip_prefix('#')?;
    if hex.len() != 6 {
        return None;
    }
    let channel = |i: usize| {
        hex.get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map(f64::from)
    };
    Some([channel(0)?, channel(2)?, channel(4)?])
}

/// How far apart two `#rrggbb` colours are (0 when either does not parse).
pub fn colour_distance(a: &str, b: &str) -> f64 {
    match (rgb(a), rgb(b)) {
        (Some(a), Some(b)) => a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y) * (x - y))
            .sum::<f64>()
            .sqrt(),
        _ => 0.0,
    }
}

/// One colour per outcome, every one distinct from the others: it says
/// what the outcome means when its words are familiar (green done, red
/// refused, amber timed out, purple reversed, blue waiting; a second
/// outcome of one meaning gets another shade), a neutral colour otherwise
/// or once a meaning's shades are used up.
pub fn outcome_colours(outcomes: &[String]) -> Vec<&'static str> {
    let mut used: Vec<&'static str> = Vec::new();
    let mut shades_used = [0usize; FAMILIES.len()];
    let apart = |c: &str, used: &[&str]| {
        used.iter()
            .all(|u| colour_distance(c, u) >= COLOUR_DISTANCE_MIN)
    };
    for outcome in outcomes {
        let o = outcome.to_ascii_lowercase();
        // Refusals are checked first: "not completed" is not done.
        let family = [1usize, 2, 3, 0, 4]
            .into_iter()
            .find(|&f| FAMILIES[f].0.iter().any(|w| o.contains(w)));
        let shade = family.and_then(|f| {
            let shades = &FAMILIES[f].1;
            let pick = shades
                .iter()
                .skip(shades_used[f])
                .find(|c| apart(c, &used))
                .copied();
            shades_used[f] += 1;
            pick
        });
        let colour = shade
            .or_else(|| OTHERS.iter().find(|c| apart(c, &used)).copied())
            .or_else(|| {
                super::PALETTE
                    .iter()
                    .chain(OTHERS.iter())
                    .find(|c| !used.contains(c))
                    .copied()
            })
            .unwrap_or(OTHERS[used.len() % OTHERS.len()]);
        used.push(colour);
    }
    used
}

pub fn render(report: &DemoReport) -> Chart {
    let table = OutcomeTable::build(report);
    let total = table.total();
    if table.kinds.is_empty() || total == 0 {
        return Chart::empty(NAME, "No payments were counted.");
    }
    let labels: Vec<String> = table
        .kinds
        .iter()
        .map(|k| truncate(k, LABEL_CHARS_MAX))
        .collect();
    let left = labels
        .iter()
        .map(|l| text_width(l, FONT_SMALL + 1.0))
        .fold(60.0, f64::max)
        + 16.0;
    let right = WIDTH - TOTAL_W;
    let max_total = (0..table.kinds.len())
        .map(|k| table.kind_total(k))
        .max()
        .unwrap_or(0);
    let ticks = linear_ticks(0.0, u64_f64(max_total));
    let x = Linear::new((0.0, ticks.hi), (left, right));
    let colours = outcome_colours(&table.outcomes);
    let mut body = String::new();
    // Legend across the top, wrapped.
    let (mut lx, mut ly) = (left, 16.0);
    for (o, outcome) in table.outcomes.iter().enumerate() {
        let label = format!("{} ({})", truncate(outcome, 24), table.outcome_total(o));
        let w = text_width(&label, FONT_SMALL) + 34.0;
        if lx + w > WIDTH && lx > left {
            lx = left;
            ly += LEGEND_H - 6.0;
        }
        legend_box(&mut body, lx, ly, colours[o], &label);
        lx += w;
    }
    let top = ly + 16.0;
    let bottom = top + ROW_H * usize_f64(table.kinds.len());
    for &t in &ticks.ticks {
        let xp = x.map(t);
        let _ = write!(
            body,
            "<line class=\"grid\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{}\"/>",
            px(top),
            px(bottom),
            x = px(xp)
        );
        text(
            &mut body,
            xp,
            bottom + 14.0,
            "middle",
            "tick",
            &tick_number(t, ticks.step),
        );
    }
    text(
        &mut body,
        (left + right) / 2.0,
        bottom + 30.0,
        "middle",
        "axis-title",
        "payments",
    );
    for (k, label) in labels.iter().enumerate() {
        let y = top + ROW_H * usize_f64(k);
        text(
            &mut body,
            left - 8.0,
            y + ROW_H / 2.0 + 4.0,
            "end",
            "label",
            label,
        );
        let mut acc = 0u64;
        for (o, outcome) in table.outcomes.iter().enumerate() {
            let count = table
                .counts
                .get(k)
                .and_then(|c| c.get(o))
                .copied()
                .unwrap_or(0);
            if count == 0 {
                continue;
            }
            let x0 = x.map(u64_f64(acc));
            acc = acc.saturating_add(count);
            let x1 = x.map(u64_f64(acc));
            let _ = write!(
                body,
                "<rect class=\"mark\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">\
                 <title>{} · {}: {count}</title></rect>",
                px(x0),
                px(y + 5.0),
                px((x1 - x0).max(1.0)),
                px(ROW_H - 10.0),
                colours[o],
                escape(&table.kinds[k]),
                escape(outcome),
            );
            let label = count.to_string();
            if x1 - x0 > text_width(&label, FONT_SMALL) + 6.0 {
                text(
                    &mut body,
                    (x0 + x1) / 2.0,
                    y + ROW_H / 2.0 + 4.0,
                    "middle",
                    "in-bar",
                    &label,
                );
            }
        }
        text(
            &mut body,
            x.map(u64_f64(acc)) + 6.0,
            y + ROW_H / 2.0 + 4.0,
            "start",
            "total",
            &acc.to_string(),
        );
    }
    Chart::svg(NAME, "Payments by kind and outcome", bottom + 40.0, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_outcomes_get_meaningful_colours() {
        let names: Vec<String> = [
            "completed",
            "Rejected by merchant",
            "expired",
            "refunded",
            "DT pending",
            "settled at θ",
            "not completed: refused",
            "zzz",
        ]
        .map(str::to_owned)
        .to_vec();
        let c = outcome_colours(&names);
        assert_eq!(c[0], "#59a14f");
        assert_eq!(c[1], "#e15759");
        assert_eq!(c[2], "#edc948");
        assert_eq!(c[3], "#b07aa1");
        assert_eq!(c[4], "#4e79a7");
        // A second "done" outcome gets another green; a refusal stays red.
        assert_eq!(c[5], "#b6e39b");
        assert_eq!(c[6], "#ffb3b0");
        assert_eq!(c[7], "#76b7b2");
    }

    /// Issue 16: `refused: wrong_pin` and `double spend` were the same
    /// pink; three greens were near-identical.
    #[test]
    fn the_demo_outcomes_get_colours_far_apart() {
        let names: Vec<String> = [
            "DT below θ",
            "T at θ",
            "committed",
            "completed",
            "completed after a crash",
            "double spend",
            "duplicate absorbed",
            "expired",
            "refused: account_locked",
            "refused: wrong_pin",
            "rejected",
            "refunded",
            "aborted",
            "timed out",
            "uncertain",
            "x1",
            "x2",
            "x3",
        ]
        .map(str::to_owned)
        .to_vec();
        let c = outcome_colours(&names);
        for i in 0..c.len() {
            for j in i + 1..c.len() {
                assert!(
                    colour_distance(c[i], c[j]) >= COLOUR_DISTANCE_MIN,
                    "{} {} and {} {} are too alike",
                    names[i],
                    c[i],
                    names[j],
                    c[j]
                );
            }
        }
    }
}
