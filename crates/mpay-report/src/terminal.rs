//! The end-of-run summary for the terminal: aligned plain-text tables.

use std::fmt::Write as _;

use crate::format::{latency, money, money_delta, seconds, truncate, utc_datetime};
use crate::model::DemoReport;
use crate::stats::{OutcomeTable, balance_totals, row_currency, row_delta, summarize};

/// How the summary is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Colour ✔ green and ✘ red with ANSI escape codes.
    pub colour: bool,
}

/// Cells wider than this are cut with "…" so that a long name cannot push
/// a table off the screen.
pub const CELL_CHARS_MAX: usize = 40;
/// A pivoted table wider than this is printed one row per item instead.
pub const LINE_CHARS_MAX: usize = 100;

const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

/// The summary in plain text, no colour codes.
pub fn render_terminal(report: &DemoReport) -> String {
    render_terminal_with(report, TerminalOptions::default())
}

/// The summary with options (colour).
pub fn render_terminal_with(report: &DemoReport, options: TerminalOptions) -> String {
    let paint = |code: &str, text: &str| {
        if options.colour {
            format!("{code}{text}{RESET}")
        } else {
            text.to_owned()
        }
    };
    let ok = paint(GREEN, "✔");
    let bad = paint(RED, "✘");
    let mut out = String::new();
    let _ = writeln!(out, "{}", paint(BOLD, &clean(&report.title)));
    let mut meta = vec![
        format!("seed {}", report.seed),
        format!("started {}", utc_datetime(report.started_at_ms)),
        format!("ran {}", seconds(report.duration_ms)),
        report.currency.to_string(),
    ];
    if !report.backend.is_empty() {
        meta.push(clean(&report.backend));
    }
    let _ = writeln!(out, "{}\n", meta.join(" · "));

    // Payments by kind and outcome.
    let t = OutcomeTable::build(report);
    let _ = writeln!(out, "{}", paint(BOLD, "Payments by kind and outcome"));
    if t.kinds.is_empty() {
        let _ = writeln!(out, "  (none counted)");
    } else {
        let mut table = Table::new(
            std::iter::once("kind".to_owned())
                .chain(t.outcomes.iter().cloned())
                .chain(std::iter::once("total".to_owned()))
                .collect(),
        );
        for (k, kind) in t.kinds.iter().enumerate() {
            let mut row = vec![kind.clone()];
            for o in 0..t.outcomes.len() {
                row.push(
                    t.counts
                        .get(k)
                        .and_then(|c| c.get(o))
                        .copied()
                        .unwrap_or(0)
                        .to_string(),
                );
            }
            row.push(t.kind_total(k).to_string());
            table.row(row);
        }
        let mut total = vec!["total".to_owned()];
        total.extend((0..t.outcomes.len()).map(|o| t.outcome_total(o).to_string()));
        total.push(t.total().to_string());
        table.footer(total);
        let pivot = table.render();
        if pivot.lines().all(|l| l.chars().count() <= LINE_CHARS_MAX) {
            out.push_str(&pivot);
        } else {
            // Too many outcomes side by side: one line per (kind, outcome).
            let mut long = Table::new(["kind", "outcome", "count"].map(str::to_owned).to_vec())
                .text_columns(2);
            for (k, kind) in t.kinds.iter().enumerate() {
                for (o, outcome) in t.outcomes.iter().enumerate() {
                    let c = t.counts.get(k).and_then(|c| c.get(o)).copied().unwrap_or(0);
                    if c > 0 {
                        long.row(vec![kind.clone(), outcome.clone(), c.to_string()]);
                    }
                }
            }
            long.footer(vec!["total".into(), String::new(), t.total().to_string()]);
            out.push_str(&long.render());
        }
    }
    out.push('\n');

    // Latency.
    let _ = writeln!(out, "{}", paint(BOLD, "Latency per payment kind"));
    if report.latencies.is_empty() {
        let _ = writeln!(out, "  (none measured)");
    } else {
        let mut table = Table::new(
            ["kind", "n", "p50", "p90", "p99", "max"]
                .map(str::to_owned)
                .to_vec(),
        );
        for series in &report.latencies {
            match summarize(series) {
                Some(s) => table.row(vec![
                    series.kind.clone(),
                    s.count.to_string(),
                    latency(s.p50_ms),
                    // Only the percentiles the samples can tell.
                    s.p90_ms.map_or_else(|| "–".into(), latency),
                    s.p99_ms.map_or_else(|| "–".into(), latency),
                    latency(s.max_ms),
                ]),
                None => table.row(vec![
                    series.kind.clone(),
                    "0".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                    "–".into(),
                ]),
            }
        }
        out.push_str(&table.render());
    }
    out.push('\n');

    // Balances.
    let _ = writeln!(out, "{}", paint(BOLD, "Money per party, before and after"));
    if report.balances.is_empty() {
        let _ = writeln!(out, "  (none recorded)");
    } else {
        let mut table = Table::new(
            ["party", "kind", "before", "after", "change"]
                .map(str::to_owned)
                .to_vec(),
        )
        .text_columns(2);
        for row in &report.balances {
            let currency = row_currency(report, row);
            table.row(vec![
                row.party.clone(),
                row.kind.label().to_owned(),
                money(row.before_minor, currency),
                money(row.after_minor, currency),
                row_delta(row).map_or("overflow".to_owned(), |d| money_delta(d, currency)),
            ]);
        }
        let totals = balance_totals(report);
        let show =
            |a: Option<mpay_money::Amount>| a.map_or("overflow".to_owned(), |a| a.to_string());
        for total in &totals {
            table.footer(vec![
                format!("total {}", total.currency),
                format!("{} parties", total.rows),
                show(total.before),
                show(total.after),
                total.delta().map_or("overflow".to_owned(), |d| {
                    money_delta(d.minor_units(), d.currency())
                }),
            ]);
        }
        out.push_str(&table.render());
        for total in &totals {
            if total.conserved() {
                let _ = writeln!(
                    out,
                    "  {ok} conservation: total {} unchanged",
                    total.currency
                );
            } else {
                let _ = writeln!(
                    out,
                    "  {bad} conservation: total {} changed by {}",
                    total.currency,
                    total
                        .delta()
                        .map_or("an amount that overflows".to_owned(), |d| money_delta(
                            d.minor_units(),
                            d.currency()
                        ))
                );
            }
        }
    }
    out.push('\n');

    // Frauds.
    let _ = writeln!(out, "{}", paint(BOLD, "Double spends caught"));
    if report.frauds.is_empty() {
        let _ = writeln!(out, "  (none)");
    } else {
        let mut table = Table::new(
            [
                "wallet", "owner", "by", "seq", "charged", "caught", "revoked",
            ]
            .map(str::to_owned)
            .to_vec(),
        )
        .text_columns(3);
        for f in &report.frauds {
            table.row(vec![
                f.wallet.clone(),
                f.owner.clone(),
                f.caught_by.clone(),
                f.seq.to_string(),
                money(f.charged_minor, report.currency),
                seconds(f.caught_at_ms),
                if f.revoked { "yes" } else { "NO" }.to_owned(),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push('\n');

    // Invariants and verdict.
    let _ = writeln!(out, "{}", paint(BOLD, "Invariants"));
    if report.invariants.is_empty() {
        let _ = writeln!(out, "  (none checked)");
    }
    let width = report
        .invariants
        .iter()
        .map(|c| cell(&c.name).chars().count())
        .max()
        .unwrap_or(0);
    for check in &report.invariants {
        let name = cell(&check.name);
        let pad = width.saturating_sub(name.chars().count());
        let _ = writeln!(
            out,
            "  {} {name}{}  {}",
            if check.ok { &ok } else { &bad },
            " ".repeat(pad),
            clean(&check.detail)
        );
    }
    let failed: Vec<String> = report.failed_invariants().map(|c| clean(&c.name)).collect();
    let verdict = if report.invariants.is_empty() {
        paint(RED, "no invariants were checked")
    } else if failed.is_empty() {
        paint(
            GREEN,
            &format!("all {} invariants held", report.invariants.len()),
        )
    } else {
        paint(
            RED,
            &format!(
                "{} of {} invariants FAILED: {}",
                failed.len(),
                report.invariants.len(),
                failed.join(", ")
            ),
        )
    };
    let _ = writeln!(out, "\n{verdict}");
    out
}

/// Text from the report without control characters (a name must not move
/// the cursor or colour the terminal).
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

fn cell(text: &str) -> String {
    truncate(&clean(text), CELL_CHARS_MAX)
}

/// A table: first column left-aligned, the rest right-aligned (numbers and
/// money), a rule under the header and above the footer.
struct Table {
    /// Columns from the left that are text (left-aligned); the rest are
    /// numbers (right-aligned).
    text_columns: usize,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    footer: Vec<Vec<String>>,
}

impl Table {
    fn new(header: Vec<String>) -> Self {
        Table {
            text_columns: 1,
            header: header.iter().map(|h| cell(h)).collect(),
            rows: Vec::new(),
            footer: Vec::new(),
        }
    }

    fn text_columns(mut self, n: usize) -> Self {
        self.text_columns = n;
        self
    }

    fn row(&mut self, row: Vec<String>) {
        self.rows.push(row.iter().map(|c| cell(c)).collect());
    }

    fn footer(&mut self, row: Vec<String>) {
        self.footer.push(row.iter().map(|c| cell(c)).collect());
    }

    fn render(&self) -> String {
        let columns = self.header.len();
        let mut widths = vec![0usize; columns];
        for row in std::iter::once(&self.header)
            .chain(&self.rows)
            .chain(&self.footer)
        {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |row: &[String]| {
            let mut s = String::from(" ");
            for (i, w) in widths.iter().enumerate() {
                let c = row.get(i).map_or("", String::as_str);
                let pad = w.saturating_sub(c.chars().count());
                s.push(' ');
                if i < self.text_columns {
                    if i > 0 {
                        s.push(' ');
                    }
                    s.push_str(c);
                    s.push_str(&" ".repeat(pad));
                } else {
                    s.push_str(&" ".repeat(pad + 1));
                    s.push_str(c);
                }
            }
            s.truncate(s.trim_end().len());
            s.push('\n');
            s
        };
        let rule_len = widths.iter().sum::<usize>() + 2 * columns;
        let rule = format!("  {}\n", "─".repeat(rule_len.saturating_sub(1)));
        let mut out = line(&self.header);
        out.push_str(&rule);
        for r in &self.rows {
            out.push_str(&line(r));
        }
        if !self.footer.is_empty() {
            out.push_str(&rule);
            for r in &self.footer {
                out.push_str(&line(r));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_left_then_right() {
        let mut t = Table::new(vec!["kind".into(), "n".into()]);
        t.row(vec!["micro".into(), "1200".into()]);
        t.row(vec!["offline purchase".into(), "7".into()]);
        t.footer(vec!["total".into(), "1207".into()]);
        let text = t.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "  kind                 n");
        assert_eq!(lines[2], "  micro             1200");
        assert_eq!(lines[3], "  offline purchase     7");
        assert_eq!(lines[5], "  total             1207");
        assert!(lines[1].trim().chars().all(|c| c == '─'));
    }

    /// As in the HTML report: a row of one payment shows no p90 or p99
    /// (both would be that one payment).
    #[test]
    fn the_latency_table_shows_only_the_percentiles_the_samples_tell() {
        let report = crate::sample::one_refund_report();
        let text = render_terminal(&report);
        let row = text
            .lines()
            .find(|l| l.trim_start().starts_with("refund") && l.contains("ms"))
            .expect("the refund row");
        assert_eq!(row.matches("53.4 ms").count(), 2, "p50 and max: {row}");
        assert_eq!(row.matches('–').count(), 2, "no p90, no p99: {row}");
    }

    #[test]
    fn control_characters_and_long_names_are_tamed() {
        assert_eq!(clean("a\x1b[31mb\u{7}"), "a[31mb");
        assert_eq!(cell(&"x".repeat(100)).chars().count(), CELL_CHARS_MAX);
    }
}
