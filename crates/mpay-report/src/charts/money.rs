//! Money held by each party over the day: step lines, one panel per (party
//! kind, currency), one colour per party. A panel with many parties draws
//! the largest and sums the rest into one "other" line.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mpay_money::Currency;

use super::{
    Chart, WIDTH, legend_line, money_axis, money_labels_width, palette, px, sorted_points,
    step_path, text, time_axis, time_end_ms, unit_minor,
};
use crate::format::{escape, money, seconds, truncate};
use crate::model::{DemoReport, PartyKind, PartySeries};
use crate::scale::{Linear, money_ticks_in, time_ticks_s, u64_f64};

pub const NAME: &str = "money";
/// Lines drawn per panel; beyond it the smallest parties are summed.
pub const SERIES_PER_PANEL_MAX: usize = 8;
const PLOT_H: f64 = 170.0;
const GROUP_COLOUR: &str = "#8a93a3";
const TITLE_H: f64 = 26.0;
const AXIS_H: f64 = 40.0;
const LEGEND_W: f64 = 285.0;
const LEGEND_ROW_H: f64 = 17.0;
const LEGEND_NAME_CHARS_MAX: usize = 25;
/// Narrowest phase band that shows its number.
const BAND_LABEL_W_MIN: f64 = 12.0;

/// One line of a panel, after grouping.
struct Line {
    label: String,
    /// The sum of several parties (drawn dashed grey).
    group: bool,
    points: Vec<(u64, i64)>,
}

struct Panel {
    kind: PartyKind,
    currency: Currency,
    parties: usize,
    lines: Vec<Line>,
    /// A group whose sum overflowed and is left out.
    overflowed: Option<String>,
}

pub fn render(report: &DemoReport) -> Chart {
    let panels = panels(report);
    if panels.is_empty() {
        return Chart::empty(NAME, "No balances were recorded over time.");
    }
    let end_ms = time_end_ms(report);
    let axes: Vec<_> = panels
        .iter()
        .map(|p| {
            let values = p.lines.iter().flat_map(|l| l.points.iter().map(|pt| pt.1));
            let lo = values.clone().min().unwrap_or(0);
            let hi = values.max().unwrap_or(0);
            money_ticks_in(lo, hi, unit_minor(p.currency))
        })
        .collect();
    let left = panels
        .iter()
        .zip(&axes)
        .map(|(p, t)| money_labels_width(t, p.currency))
        .fold(0.0, f64::max)
        + 14.0;
    let right = WIDTH - LEGEND_W;
    let x = Linear::new((0.0, u64_f64(end_ms)), (left, right));
    let ticks = time_ticks_s(end_ms);
    let mut body = String::new();
    let mut top = 0.0;
    for (panel, axis) in panels.iter().zip(&axes) {
        let title = format!(
            "{} · {} ({} {})",
            panel.kind.plural(),
            panel.currency,
            panel.parties,
            if panel.parties == 1 {
                "party"
            } else {
                "parties"
            }
        );
        text(&mut body, left, top + 17.0, "start", "panel-title", &title);
        let plot_top = top + TITLE_H;
        let plot_bottom = plot_top + PLOT_H;
        let y = Linear::new(
            (
                crate::scale::i128_f64(axis.lo),
                crate::scale::i128_f64(axis.hi),
            ),
            (plot_bottom, plot_top),
        );
        phase_bands(&mut body, report, &x, plot_top, plot_bottom, top == 0.0);
        money_axis(&mut body, &y, axis, panel.currency, left, right);
        time_axis(&mut body, &x, &ticks, plot_top, plot_bottom, true);
        for (i, line) in panel.lines.iter().enumerate() {
            let colour = if line.group { GROUP_COLOUR } else { palette(i) };
            let d = step_path(&line.points, &x, &y, end_ms);
            let last = line.points.last().map_or(0, |p| p.1);
            let _ = write!(
                body,
                "<path class=\"mark line{}\" d=\"{d}\" stroke=\"{colour}\"><title>{} · {} at the end</title></path>",
                if line.group { " group" } else { "" },
                escape(&line.label),
                money(last, panel.currency)
            );
            let ly = plot_top + 12.0 + LEGEND_ROW_H * crate::scale::usize_f64(i);
            legend_line(
                &mut body,
                right + 16.0,
                ly,
                colour,
                line.group,
                &truncate(&line.label, LEGEND_NAME_CHARS_MAX),
            );
            text(
                &mut body,
                WIDTH - 4.0,
                ly,
                "end",
                "legend value",
                &money(last, panel.currency),
            );
        }
        if let Some(note) = &panel.overflowed {
            text(&mut body, right + 16.0, plot_bottom, "start", "note", note);
        }
        top = plot_bottom + AXIS_H;
    }
    Chart::svg(NAME, "Money held by each party over the day", top, &body)
}

/// Light bands behind a plot, one per phase, alternating; with `numbered`,
/// each band wide enough shows its phase's number (as in the phase list),
/// painted after every band so that no band covers it.
fn phase_bands(
    out: &mut String,
    report: &DemoReport,
    x: &Linear,
    top: f64,
    bottom: f64,
    numbered: bool,
) {
    let span = |phase: &crate::model::Phase| {
        (
            x.map(u64_f64(phase.started_ms)),
            x.map(u64_f64(phase.started_ms.saturating_add(phase.duration_ms))),
        )
    };
    for (i, phase) in report.phases.iter().enumerate() {
        let (x0, x1) = span(phase);
        let class = if i % 2 == 0 { "band" } else { "band alt" };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}: {} – {}</title></rect>",
            px(x0),
            px(top),
            px((x1 - x0).max(0.0)),
            px(bottom - top),
            escape(&phase.name),
            seconds(phase.started_ms),
            seconds(phase.started_ms.saturating_add(phase.duration_ms)),
        );
    }
    if !numbered {
        return;
    }
    for (i, phase) in report.phases.iter().enumerate() {
        let (x0, x1) = span(phase);
        if x1 - x0 >= BAND_LABEL_W_MIN {
            text(
                out,
                (x0 + x1) / 2.0,
                top + 10.0,
                "middle",
                "band-label",
                &(i + 1).to_string(),
            );
        }
    }
}

/// Series grouped into panels by (kind, currency), in [`PartyKind`] order.
/// Series without points are left out.
fn panels(report: &DemoReport) -> Vec<Panel> {
    let mut groups: BTreeMap<(PartyKind, Currency), Vec<&PartySeries>> = BTreeMap::new();
    for s in report.money.iter().filter(|s| !s.points.is_empty()) {
        let currency = s.currency.unwrap_or(report.currency);
        groups.entry((s.kind, currency)).or_default().push(s);
    }
    // The double spenders stay in sight: never summed into "other wallets".
    let cheats: Vec<&str> = report.frauds.iter().map(|f| f.owner.as_str()).collect();
    groups
        .into_iter()
        .map(|((kind, currency), series)| group_panel(kind, currency, series, &cheats))
        .collect()
}

/// Whether a party's label names one of `owners` (as a word).
fn names_one_of(label: &str, owners: &[&str]) -> bool {
    label
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ':')
        .any(|word| owners.contains(&word))
}

fn group_panel(
    kind: PartyKind,
    currency: Currency,
    series: Vec<&PartySeries>,
    pinned: &[&str],
) -> Panel {
    let parties = series.len();
    let mut lines: Vec<Line> = series
        .into_iter()
        .map(|s| Line {
            label: s.party.clone(),
            group: false,
            points: sorted_points(&s.points),
        })
        .collect();
    let mut overflowed = None;
    if lines.len() > SERIES_PER_PANEL_MAX {
        // Keep the pinned parties, then those with the largest peak; sum
        // the rest.
        lines.sort_by_key(|l| {
            (
                !names_one_of(&l.label, pinned),
                std::cmp::Reverse(l.points.iter().map(|p| p.1.unsigned_abs()).max()),
            )
        });
        let rest = lines.split_off(SERIES_PER_PANEL_MAX - 1);
        let label = format!("{} other {}", rest.len(), kind.members());
        match sum_steps(rest.iter().map(|l| l.points.as_slice())) {
            Some(points) => lines.push(Line {
                label,
                group: true,
                points,
            }),
            None => overflowed = Some(format!("{label}: sum overflows, not drawn")),
        }
    }
    Panel {
        kind,
        currency,
        parties,
        lines,
        overflowed,
    }
}

/// The sum of step functions (each 0 before its first point) at every time
/// any of them changes; `None` if a sum overflows.
pub fn sum_steps<'a>(series: impl Iterator<Item = &'a [(u64, i64)]>) -> Option<Vec<(u64, i64)>> {
    let series: Vec<&[(u64, i64)]> = series.collect();
    let mut times: Vec<u64> = series.iter().flat_map(|s| s.iter().map(|p| p.0)).collect();
    times.sort_unstable();
    times.dedup();
    let mut cursor = vec![0usize; series.len()];
    let mut current = vec![0i64; series.len()];
    let mut out = Vec::with_capacity(times.len());
    for t in times {
        for (i, s) in series.iter().enumerate() {
            while let Some(&(pt, v)) = s.get(cursor[i]) {
                if pt > t {
                    break;
                }
                current[i] = v;
                cursor[i] += 1;
            }
        }
        let sum = current.iter().try_fold(0i64, |a, &v| a.checked_add(v))?;
        out.push((t, sum));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_sums_hold_each_series_last_value() {
        let a = [(0, 100), (10, 50)];
        let b = [(5, 7), (10, 8), (20, 0)];
        let sum = sum_steps([&a[..], &b[..]].into_iter()).expect("small sums");
        assert_eq!(sum, vec![(0, 100), (5, 107), (10, 58), (20, 50)]);
        let big = [(0, i64::MAX)];
        let one = [(0, 1)];
        assert_eq!(sum_steps([&big[..], &one[..]].into_iter()), None);
    }

    #[test]
    fn many_parties_are_grouped_and_money_is_kept() {
        let mut r = DemoReport::new("t", 1, 0, Currency::EUR);
        for i in 0..12i64 {
            r.money.push(PartySeries {
                party: format!("w{i}"),
                kind: PartyKind::Wallet,
                currency: None,
                points: vec![(0, 100 * i), (1000, 100 * i + 1)],
            });
        }
        let p = panels(&r);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].parties, 12);
        assert_eq!(p[0].lines.len(), SERIES_PER_PANEL_MAX);
        let other = p[0].lines.last().expect("a group line");
        assert_eq!(other.label, "5 other wallets");
        // w0..w4 are the smallest: 0+100+200+300+400 at t=0, +5 at t=1000.
        assert_eq!(other.points, vec![(0, 1000), (1000, 1005)]);
        let total_end: i64 = p[0]
            .lines
            .iter()
            .map(|l| l.points.last().map_or(0, |x| x.1))
            .sum();
        let expected_end: i64 = (0..12).map(|i| 100 * i + 1).sum();
        assert_eq!(total_end, expected_end);
    }

    /// The demo's group line read "5 other money office"; "CPPs" would
    /// have been lowercased to "cpps".
    #[test]
    fn a_group_line_names_its_parties_in_plain_words() {
        let mut r = DemoReport::new("t", 1, 0, Currency::EUR);
        for (kind, name) in [
            (PartyKind::MoneyOffice, "office owner"),
            (PartyKind::Cpp, "cpp"),
        ] {
            for i in 0..12i64 {
                r.money.push(PartySeries {
                    party: format!("{name}:{i}"),
                    kind,
                    currency: None,
                    points: vec![(0, i)],
                });
            }
        }
        let labels: Vec<String> = panels(&r)
            .into_iter()
            .filter_map(|p| p.lines.last().map(|l| l.label.clone()))
            .collect();
        assert_eq!(labels, ["5 other office accounts", "5 other CPPs"]);
    }

    /// Issue 16: mallory and her copy were hidden in "6 other wallets".
    #[test]
    fn the_double_spenders_wallets_are_never_grouped() {
        let mut r = crate::sample::sample_report(7);
        r.money.retain(|s| s.kind != PartyKind::Wallet);
        for i in 0..12i64 {
            r.money.push(PartySeries {
                party: format!("wallet w{i}"),
                kind: PartyKind::Wallet,
                currency: None,
                points: vec![(0, 10_000 + i)],
            });
        }
        for party in ["wallet mallory", "wallet mallory (copy)"] {
            r.money.push(PartySeries {
                party: party.into(),
                kind: PartyKind::Wallet,
                currency: None,
                points: vec![(0, 5), (500, 1)],
            });
        }
        let owner = r.frauds.first().map(|f| f.owner.clone());
        assert!(owner.is_some(), "the sample has a double spend");
        for f in &mut r.frauds {
            f.owner = "mallory".into();
        }
        let p = panels(&r);
        let wallets = p
            .iter()
            .find(|p| p.kind == PartyKind::Wallet)
            .expect("a wallet panel");
        let labels: Vec<&str> = wallets.lines.iter().map(|l| l.label.as_str()).collect();
        assert!(labels.contains(&"wallet mallory"), "{labels:?}");
        assert!(labels.contains(&"wallet mallory (copy)"), "{labels:?}");
        assert_eq!(labels.len(), SERIES_PER_PANEL_MAX);
    }

    #[test]
    fn the_phase_bands_are_numbered_like_the_phase_list() {
        let r = crate::sample::sample_report(7);
        let svg = render(&r).html;
        let numbers = svg.matches("class=\"band-label\"").count();
        assert!(
            numbers >= r.phases.len() / 2,
            "{numbers} of {}",
            r.phases.len()
        );
        assert!(svg.contains(">1</text>"), "phase 1 is numbered");
    }

    /// Issue 16: the band numbers were drawn first and the bands painted
    /// over them (SVG paints in document order), so none showed.
    #[test]
    fn the_phase_numbers_are_painted_over_their_bands() {
        let r = crate::sample::sample_report(7);
        let x = Linear::new((0.0, u64_f64(time_end_ms(&r))), (0.0, 600.0));
        let mut out = String::new();
        phase_bands(&mut out, &r, &x, 0.0, 100.0, true);
        let last_band = out.rfind("<rect class=\"band").expect("bands drawn");
        let first_label = out.find("class=\"band-label\"").expect("labels drawn");
        assert!(
            first_label > last_band,
            "a band is drawn over a phase number: {out}"
        );
    }
}
