//! The page and the summary, from the outside: a realistic report, an empty
//! one, a failing one, hostile text, and arbitrary numbers.

use mpay_money::Currency;
use mpay_report::sample::sample_report;
use mpay_report::stats::balance_totals;
use mpay_report::{
    BalanceRow, CHART_NAMES, DemoReport, ForkEntry, FraudCase, InvariantCheck, LatencySeries,
    OutcomeRow, PartyKind, PartySeries, PendingSeries, Phase, REPORT_FORMAT_VERSION, ReportError,
    TerminalOptions, render_charts, render_html, render_terminal, render_terminal_with,
};
use proptest::prelude::*;

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_sample_day_conserves_money_and_matches_its_series() {
    let report = sample_report(7);
    // Demo-sized, as the page is meant for.
    let wallets = report
        .money
        .iter()
        .filter(|s| s.kind == PartyKind::Wallet)
        .count();
    assert_eq!(wallets, 12);
    let payments: u64 = report.outcomes.iter().map(|o| o.count).sum();
    assert!(payments >= 300, "{payments} payments");
    assert_eq!(report.frauds.len(), 1);
    // Conservation, per currency, over every listed party.
    let totals = balance_totals(&report);
    assert_eq!(totals.len(), 1);
    assert!(totals[0].conserved(), "{totals:?}");
    assert!(report.all_invariants_held(), "{:?}", report.invariants);
    // The table and the chart tell the same story: each series starts at
    // the party's opening balance and ends at its closing one.
    for row in &report.balances {
        let series = report
            .money
            .iter()
            .find(|s| s.party == row.party)
            .expect("a series per balance row");
        let mut points = series.points.clone();
        points.sort_by_key(|p| p.0);
        assert_eq!(
            points.first().map(|p| p.1),
            Some(row.before_minor),
            "{}",
            row.party
        );
        assert_eq!(
            points.last().map(|p| p.1),
            Some(row.after_minor),
            "{}",
            row.party
        );
    }
    // At every recorded instant the sum over all parties is the same.
    let mut times: Vec<u64> = report
        .money
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    times.sort_unstable();
    times.dedup();
    let opening: i64 = report.balances.iter().map(|b| b.before_minor).sum();
    for t in times {
        let at_t: i64 = report
            .money
            .iter()
            .map(|s| s.points.iter().rfind(|p| p.0 <= t).map_or(0, |p| p.1))
            .sum();
        assert_eq!(at_t, opening, "money made or lost at t = {t} ms");
    }
    // Some micro series crosses θ and settles.
    assert!(
        report
            .micro
            .iter()
            .any(|m| !m.settlements.is_empty() && m.points.iter().any(|p| p.1 >= m.theta_minor))
    );
}

#[test]
fn the_sample_page_draws_every_chart_once_and_needs_nothing_outside() {
    let report = sample_report(7);
    let html = render_html(&report);
    for name in CHART_NAMES {
        assert_eq!(
            count(&html, &format!("<svg data-chart=\"{name}\"")),
            1,
            "chart {name}"
        );
    }
    assert_eq!(count(&html, "<svg"), CHART_NAMES.len());
    assert_eq!(count(&html, "<svg"), count(&html, "</svg>"));
    assert!(render_charts(&report).iter().all(|c| c.drawn));
    // Self-contained: no links, no fetched resources, one inline script.
    assert_eq!(
        html.replace("http://www.w3.org/2000/svg", "")
            .matches("http")
            .count(),
        0
    );
    for forbidden in ["<link", " src=", "@import", "url(http", "<iframe"] {
        assert!(!html.contains(forbidden), "{forbidden}");
    }
    assert_eq!(count(&html, "<script"), 1);
    assert!(html.contains("All 4 invariants held"));
    // The numbers a reader looks for are there, formatted from minor units.
    assert!(html.contains("45.00 EUR"));
    assert!(html.contains("p50"));
    assert!(html.contains("θ 5.00 EUR"));
    // The fraud proof: abbreviated hex with the full value behind <details>.
    let fraud = &report.frauds[0];
    assert!(html.contains(&fraud.first.hex) && html.contains(&fraud.second.hex));
    assert!(html.contains(&format!("{}…", &fraud.first.hex[..8])));
    assert_eq!(count(&html, "<details>"), 2);
}

#[test]
fn the_sample_survives_json_and_the_format_version_is_checked() {
    let report = sample_report(11);
    let json = report.to_json().expect("finite samples");
    let back = DemoReport::from_json(&json).expect("own output reads back");
    assert_eq!(back, report);
    let other = json.replacen(
        &format!("\"format_version\": {REPORT_FORMAT_VERSION}"),
        "\"format_version\": 99",
        1,
    );
    assert!(matches!(
        DemoReport::from_json(&other),
        Err(ReportError::UnsupportedVersion { found: 99, .. })
    ));
    let bad_currency = json.replacen("\"currency\": \"EUR\"", "\"currency\": \"eu\"", 1);
    assert!(matches!(
        DemoReport::from_json(&bad_currency),
        Err(ReportError::Json(_))
    ));
    assert!(matches!(
        DemoReport::from_json("{"),
        Err(ReportError::Json(_))
    ));
    let mut nan = report;
    nan.latencies[0].samples_ms.push(f64::NAN);
    assert!(matches!(
        nan.to_json(),
        Err(ReportError::NonFiniteLatency { .. })
    ));
}

#[test]
fn an_empty_report_says_so_instead_of_drawing_broken_charts() {
    let report = DemoReport::new("empty run", 1, 0, Currency::EUR);
    let html = render_html(&report);
    assert_eq!(count(&html, "<svg"), 0);
    assert_eq!(
        count(&html, "class=\"no-data\" data-chart="),
        CHART_NAMES.len()
    );
    for name in CHART_NAMES {
        assert!(html.contains(&format!("data-chart=\"{name}\" data-empty=\"true\"")));
    }
    assert!(html.contains("data-verdict=\"none\""));
    let text = render_terminal(&report);
    assert!(text.contains("no invariants were checked"));
    assert!(text.contains("(none counted)"));
    // Series that exist but hold nothing are empty too.
    let mut hollow = DemoReport::new("hollow", 1, 0, Currency::EUR);
    hollow.latencies.push(LatencySeries {
        kind: "micro".into(),
        samples_ms: vec![],
    });
    hollow.money.push(PartySeries {
        party: "w".into(),
        kind: PartyKind::Wallet,
        currency: None,
        points: vec![],
    });
    hollow.outcomes.push(OutcomeRow {
        kind: "micro".into(),
        outcome: "completed".into(),
        count: 0,
    });
    assert!(render_charts(&hollow).iter().all(|c| !c.drawn));
}

#[test]
fn a_failed_invariant_is_the_headline_in_red() {
    let mut report = sample_report(7);
    report.invariants.push(InvariantCheck {
        name: "atomicity".into(),
        ok: false,
        detail: "tx 42: seller committed, buyer aborted".into(),
    });
    let html = render_html(&report);
    assert!(html.contains("data-verdict=\"failed\""));
    assert!(html.contains("1 of 5 invariants failed: atomicity"));
    assert!(html.contains("<li class=\"bad\">"));
    let text = render_terminal(&report);
    assert!(text.contains("✘ atomicity"));
    assert!(
        text.trim_end()
            .ends_with("1 of 5 invariants FAILED: atomicity")
    );
    assert!(!text.contains('\x1b'));
    let coloured = render_terminal_with(&report, TerminalOptions { colour: true });
    assert!(coloured.contains("\x1b[31m✘\x1b[0m"));
    assert!(coloured.contains("\x1b[32m✔\x1b[0m"));
}

#[test]
fn a_report_whose_totals_change_shows_the_difference() {
    let mut report = DemoReport::new("leak", 1, 0, Currency::EUR);
    report.balances = vec![
        BalanceRow {
            party: "a".into(),
            kind: PartyKind::BankAccount,
            currency: None,
            before_minor: 1_000,
            after_minor: 700,
        },
        BalanceRow {
            party: "b".into(),
            kind: PartyKind::Wallet,
            currency: None,
            before_minor: 0,
            after_minor: 250,
        },
    ];
    let html = render_html(&report);
    assert!(html.contains("✘ -0.50 EUR"));
    let text = render_terminal(&report);
    assert!(text.contains("✘ conservation: total EUR changed by -0.50 EUR"));
}

fn hostile() -> String {
    "<script>alert(\"x\")</script> & 'quoted' \u{1b}[31m".to_owned()
}

#[test]
fn every_piece_of_text_is_escaped() {
    let mut report = sample_report(3);
    let evil = hostile();
    report.title = evil.clone();
    report.backend = evil.clone();
    report.phases[0].name = evil.clone();
    report.phases[0].lines = vec![evil.clone()];
    report.money[0].party = evil.clone();
    report.latencies[0].kind = evil.clone();
    report.outcomes[0].kind = evil.clone();
    report.outcomes[0].outcome = evil.clone();
    report.micro[0].label = evil.clone();
    report.frauds[0].wallet = evil.clone();
    report.frauds[0].owner = evil.clone();
    report.frauds[0].caught_by = evil.clone();
    report.frauds[0].first.hex = evil.clone();
    report.frauds[0].second.summary = evil.clone();
    report.balances[0].party = evil.clone();
    report.invariants[0].name = evil.clone();
    report.invariants[0].detail = evil.clone();
    let html = render_html(&report);
    assert_eq!(count(&html, "<script"), 1, "only the page's own script");
    assert!(!html.contains("alert(\"x\")"));
    assert!(!html.contains('\x1b'));
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)"));
    let text = render_terminal(&report);
    assert!(!text.contains('\x1b'), "names cannot drive the terminal");
}

#[test]
fn several_currencies_get_their_own_panels_and_totals() {
    let mut report = DemoReport::new("fx", 1, 0, Currency::EUR);
    for (party, currency) in [("eur-acct", None), ("usd-acct", Some(Currency::USD))] {
        report.money.push(PartySeries {
            party: party.into(),
            kind: PartyKind::BankAccount,
            currency,
            points: vec![(0, 10_000), (5_000, 9_000)],
        });
        report.balances.push(BalanceRow {
            party: party.into(),
            kind: PartyKind::BankAccount,
            currency,
            before_minor: 10_000,
            after_minor: 9_000,
        });
    }
    let html = render_html(&report);
    assert!(html.contains("Bank accounts · EUR (1 party)"));
    assert!(html.contains("Bank accounts · USD (1 party)"));
    assert!(html.contains("90.00 USD"));
    assert!(html.contains("total EUR (1 parties)") && html.contains("total USD (1 parties)"));
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9 ]{0,12}",
        Just(hostile()),
        Just(String::new()),
        Just("x".repeat(300)),
        Just("żółw 🐢 θ".to_owned()),
    ]
}

fn arb_points() -> impl Strategy<Value = Vec<(u64, i64)>> {
    prop::collection::vec(
        (
            prop_oneof![0u64..200_000, Just(u64::MAX)],
            prop_oneof![-1_000_000i64..1_000_000, Just(i64::MIN), Just(i64::MAX)],
        ),
        0..40,
    )
}

fn arb_report() -> impl Strategy<Value = DemoReport> {
    let kinds = prop::sample::select(PartyKind::ALL.to_vec());
    (
        (arb_text(), any::<u64>(), any::<u64>(), any::<u64>()),
        prop::collection::vec((arb_text(), 0u64..300_000, 0u64..100_000), 0..5),
        prop::collection::vec((arb_text(), kinds.clone(), arb_points()), 0..14),
        prop::collection::vec(
            (
                arb_text(),
                prop::collection::vec(
                    prop_oneof![
                        0.0f64..10_000.0,
                        Just(0.0),
                        Just(-1.0),
                        Just(f64::NAN),
                        Just(1e300)
                    ],
                    0..50,
                ),
            ),
            0..4,
        ),
        prop::collection::vec(
            (
                arb_text(),
                arb_text(),
                prop_oneof![0u64..500, Just(u64::MAX)],
            ),
            0..8,
        ),
        prop::collection::vec(
            (
                arb_text(),
                any::<i64>(),
                any::<u64>(),
                arb_points(),
                prop::collection::vec(any::<u64>(), 0..5),
            ),
            0..10,
        ),
        prop::collection::vec(
            (
                arb_text(),
                any::<u64>(),
                any::<i64>(),
                any::<u64>(),
                any::<bool>(),
            ),
            0..6,
        ),
        prop::collection::vec((arb_text(), kinds, any::<i64>(), any::<i64>()), 0..8),
        prop::collection::vec((arb_text(), any::<bool>()), 0..4),
    )
        .prop_map(
            |(
                (title, seed, started, duration),
                phases,
                money,
                lats,
                outcomes,
                micro,
                frauds,
                balances,
                invs,
            )| {
                let mut r = DemoReport::new(title, seed, started, Currency::EUR);
                r.duration_ms = duration;
                r.phases = phases
                    .into_iter()
                    .map(|(name, started_ms, duration_ms)| Phase {
                        lines: vec![name.clone()],
                        name,
                        started_ms,
                        duration_ms,
                    })
                    .collect();
                r.money = money
                    .into_iter()
                    .map(|(party, kind, points)| PartySeries {
                        party,
                        kind,
                        currency: None,
                        points,
                    })
                    .collect();
                r.latencies = lats
                    .into_iter()
                    .map(|(kind, samples_ms)| LatencySeries { kind, samples_ms })
                    .collect();
                r.outcomes = outcomes
                    .into_iter()
                    .map(|(kind, outcome, count)| OutcomeRow {
                        kind,
                        outcome,
                        count,
                    })
                    .collect();
                r.micro = micro
                    .into_iter()
                    .map(
                        |(label, theta_minor, window_ms, points, settlements)| PendingSeries {
                            label,
                            theta_minor,
                            window_ms,
                            points,
                            settlements,
                        },
                    )
                    .collect();
                r.frauds = frauds
                    .into_iter()
                    .map(
                        |(wallet, seq, charged_minor, caught_at_ms, revoked)| FraudCase {
                            owner: wallet.clone(),
                            first: ForkEntry {
                                hex: wallet.clone(),
                                summary: String::new(),
                            },
                            second: ForkEntry {
                                hex: "ab".repeat(40),
                                summary: wallet.clone(),
                            },
                            caught_by: wallet.clone(),
                            wallet,
                            seq,
                            charged_minor,
                            caught_at_ms,
                            revoked,
                        },
                    )
                    .collect();
                r.balances = balances
                    .into_iter()
                    .map(|(party, kind, before_minor, after_minor)| BalanceRow {
                        party,
                        kind,
                        currency: None,
                        before_minor,
                        after_minor,
                    })
                    .collect();
                r.invariants = invs
                    .into_iter()
                    .map(|(name, ok)| InvariantCheck {
                        detail: name.clone(),
                        name,
                        ok,
                    })
                    .collect();
                r
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any report renders, with every chart present once (drawn or a
    /// note), balanced SVG, finite coordinates and only the page's script.
    #[test]
    fn any_report_renders(report in arb_report()) {
        let html = render_html(&report);
        for name in CHART_NAMES {
            prop_assert_eq!(count(&html, &format!("data-chart=\"{name}\"")), 1, "chart {}", name);
        }
        prop_assert_eq!(count(&html, "<svg"), count(&html, "</svg>"));
        prop_assert!(!html.contains("NaN") && !html.contains("inf\""));
        prop_assert_eq!(count(&html, "<script"), 1);
        let verdict_held = html.contains("data-verdict=\"held\"");
        prop_assert_eq!(verdict_held, report.all_invariants_held());
        let text = render_terminal(&report);
        prop_assert!(!text.contains('\x1b'));
        prop_assert!(text.lines().count() > 5);
    }
}
