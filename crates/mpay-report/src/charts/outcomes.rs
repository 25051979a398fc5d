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
/// hues are Okabe and Ito's (blue, vermillion, yellow, reddish purple,
/// bluish green), which stay apart without red or green cones; the shades
/// of one meaning differ in lightness, far enough apart to tell.
const FAMILIES: [(&[&str], [&str; 3]); 5] = [
    (
        &[
            "complete", "approve", "settle", "commit", "success", "confirm", "posted",
        ],
        ["#0072b2", "#56b4e9", "#003a5d"],
    ),
    (
        &[
            "reject", "abort", "fail", "decline", "denied", "refuse", "lock", "fraud", "double",
        ],
        ["#d55e00", "#f5b07f", "#6e2c00"],
    ),
    (
        &["expire", "timeout", "timed out"],
        ["#f0e442", "#e69f00", "#8c6d00"],
    ),
    (
        &["refund", "revers", "void"],
        ["#cc79a7", "#ecc4dc", "#6b3a60"],
    ),
    (
        &["pending", "delay", "uncertain", "held", "dt "],
        ["#009e73", "#8fd9c0", "#00523b"],
    ),
];

/// Colours for outcomes of no familiar meaning, or past a meaning's shades.
const OTHERS: [&str; 8] = [
    "#999999", "#000000", "#aa4499", "#882255", "#44aa99", "#ddcc77", "#332288", "#9c755f",
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

/// Relative luminance (WCAG) above which white text is hard to read and
/// a count inside a bar is written in ink.
const LIGHT_LUMINANCE_MIN: f64 = 0.3;

/// Whether white text on `colour` is too faint (WCAG relative luminance).
fn is_light(colour: &str) -> bool {
    let Some(c) = rgb(colour) else { return false };
    let linear = |v: f64| {
        let v = v / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * linear(c[0]) + 0.7152 * linear(c[1]) + 0.0722 * linear(c[2]) > LIGHT_LUMINANCE_MIN
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
/// what the outcome means when its words are familiar (blue done,
/// vermillion refused, yellow timed out, purple reversed, green waiting; a second
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
                    if is_light(colours[o]) {
                        "in-bar on-light"
                    } else {
                        "in-bar"
                    },
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
        assert_eq!(c[0], "#0072b2");
        assert_eq!(c[1], "#d55e00");
        assert_eq!(c[2], "#f0e442");
        assert_eq!(c[3], "#cc79a7");
        assert_eq!(c[4], "#009e73");
        // A second "done" outcome gets another blue; a refusal stays
        // vermillion.
        assert_eq!(c[5], "#56b4e9");
        assert_eq!(c[6], "#f5b07f");
        assert_eq!(c[7], "#999999");
    }

    /// A count inside a light bar (yellow "expired", sky-blue
    /// "committed") was white on pale; it is written in ink there.
    #[test]
    fn counts_inside_light_bars_are_written_in_ink() {
        let mut report = crate::sample::sample_report(7);
        report.outcomes = vec![
            crate::model::OutcomeRow {
                kind: "online".into(),
                outcome: "completed".into(),
                count: 40,
            },
            crate::model::OutcomeRow {
                kind: "online".into(),
                outcome: "expired".into(),
                count: 40,
            },
        ];
        let svg = render(&report).html;
        assert_eq!(svg.matches("class=\"in-bar\">40<").count(), 1, "{svg}");
        assert_eq!(
            svg.matches("class=\"in-bar on-light\">40<").count(),
            1,
            "{svg}"
        );
    }

    /// sRGB channel (0–255) to linear light and back.
    fn linear(c: f64) -> f64 {
        let c = c / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    }

    fn gamma(c: f64) -> f64 {
        let c = c.clamp(0.0, 1.0);
        255.0
            * if c <= 0.003_130_8 {
                12.92 * c
            } else {
                1.055 * c.powf(1.0 / 2.4) - 0.055
            }
    }

    /// `#rrggbb` as seen with full deuteranopia or protanopia (the
    /// matrices of Machado, Oliveira and Fernandes 2009, severity 1).
    fn as_seen(colour: &str, m: &[[f64; 3]; 3]) -> String {
        let c = rgb(colour).expect("a palette colour").map(linear);
        let channel = |row: &[f64; 3]| {
            let v = gamma(row[0] * c[0] + row[1] * c[1] + row[2] * c[2]).round();
            // Layout-only: a channel is clamped to 0–255 above.
            v as u8
        };
        format!(
            "#{:02x}{:02x}{:02x}",
            channel(&m[0]),
            channel(&m[1]),
            channel(&m[2])
        )
    }

    const DEUTERANOPIA: [[f64; 3]; 3] = [
        [0.367_322, 0.860_646, -0.227_968],
        [0.280_085, 0.672_501, 0.047_413],
        [-0.011_820, 0.042_940, 0.968_881],
    ];
    const PROTANOPIA: [[f64; 3]; 3] = [
        [0.152_286, 1.052_583, -0.204_868],
        [0.114_503, 0.786_281, 0.099_216],
        [-0.003_882, -0.048_116, 1.051_998],
    ];
    /// Apart enough for a reader without red or green cones.
    const COLOUR_BLIND_DISTANCE_MIN: f64 = 30.0;

    /// The demo's outcomes stay apart for the commonest colour blindness:
    /// red-green palettes made "completed" and "refused: account_locked"
    /// one colour (distance 3) for a deuteranope.
    #[test]
    fn the_demo_outcomes_stay_apart_without_red_or_green_cones() {
        let names: Vec<String> = [
            "completed",
            "duplicate absorbed",
            "expired",
            "refused: account_locked",
            "refused: wrong_pin",
            "rejected",
            "DT below θ",
            "T at θ",
            "committed",
            "completed after a crash",
            "double spend",
        ]
        .map(str::to_owned)
        .to_vec();
        let c = outcome_colours(&names);
        for (vision, m) in [("deuteranopia", DEUTERANOPIA), ("protanopia", PROTANOPIA)] {
            for i in 0..c.len() {
                for j in i + 1..c.len() {
                    let d = colour_distance(&as_seen(c[i], &m), &as_seen(c[j], &m));
                    assert!(
                        d >= COLOUR_BLIND_DISTANCE_MIN,
                        "{vision}: {} {} and {} {} are {d:.0} apart",
                        names[i],
                        c[i],
                        names[j],
                        c[j]
                    );
                }
            }
        }
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
