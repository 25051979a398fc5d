//! Opens rendered reports in headless Chromium and reads back what the
//! page's own check script recorded: how many charts drew marks and which
//! did not.
//!
//! Chromium is Debian's `chromium` package (`apt-get install -y chromium`).
//! Without it the tests fail when `CI` is set, and otherwise print
//! "SKIPPED" and pass. `MPAY_CHROMIUM` names another binary.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mpay_money::Currency;
use mpay_report::sample::sample_report;
use mpay_report::{CHART_NAMES, DemoReport, render_html};

const CHROMIUM_DEFAULT: &str = "/usr/bin/chromium";
/// A page this size loads in well under a second; a hung browser is killed.
const CHROMIUM_TIMEOUT: Duration = Duration::from_secs(90);
/// The browser window's width, px: a laptop's, a little wider than the
/// page's widest (1020 px).
const WINDOW_WIDTH: u32 = 1100;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("MPAY_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM_DEFAULT));
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "chromium not found at {} and CI is set: install Debian's `chromium` package",
            path.display()
        );
    }
    eprintln!(
        "\n==================================================\n\
         SKIPPED: chromium not installed ({}).\n\
         Install it with `apt-get install -y chromium` to run this test.\n\
         ==================================================\n",
        path.display()
    );
    None
}

/// `chromium --headless --dump-dom file://…` with a fresh profile; the DOM
/// after the page's scripts ran.
fn dump_dom(chromium: &Path, html: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, html).expect("write page");
    let profile = dir.path().join("profile");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={WINDOW_WIDTH},2000"))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    // Read stdout on its own thread: the DOM is larger than a pipe buffer.
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut dom = String::new();
        stdout.read_to_string(&mut dom).map(|_| dom)
    });
    let started = Instant::now();
    loop {
        match child.try_wait().expect("wait for chromium") {
            Some(status) => {
                assert!(status.success(), "chromium exited with {status}");
                break;
            }
            None if started.elapsed() > CHROMIUM_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within {CHROMIUM_TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    reader
        .join()
        .expect("reader thread")
        .expect("chromium's output is UTF-8")
}

/// The value of `data-<name>` on `<body>` in a dumped DOM.
fn body_data<'a>(dom: &'a str, name: &str) -> Option<&'a str> {
    let body_start = dom.find("<body")?;
    let body_tag = &dom[body_start..body_start + dom[body_start..].find('>')?];
    let key = format!("data-{name}=\"");
    let start = body_tag.find(&key)? + key.len();
    let len = body_tag[start..].find('"')?;
    Some(&body_tag[start..start + len])
}

#[test]
fn every_chart_of_the_sample_report_renders_in_chromium() {
    let Some(chromium) = chromium() else { return };
    let report = sample_report(7);
    let dom = dump_dom(&chromium, &render_html(&report));
    assert_eq!(
        body_data(&dom, "charts-failed-names"),
        Some(""),
        "charts that drew nothing"
    );
    assert_eq!(body_data(&dom, "charts-failed"), Some("0"));
    assert_eq!(body_data(&dom, "charts-empty"), Some("0"));
    assert_eq!(
        body_data(&dom, "charts-rendered"),
        Some(CHART_NAMES.len().to_string().as_str())
    );
    assert_eq!(CHART_NAMES.len(), 6);
}

#[test]
fn an_empty_report_renders_notes_and_no_broken_charts() {
    let Some(chromium) = chromium() else { return };
    let report = DemoReport::new("empty", 1, 0, Currency::EUR);
    let dom = dump_dom(&chromium, &render_html(&report));
    assert_eq!(body_data(&dom, "charts-rendered"), Some("0"));
    assert_eq!(body_data(&dom, "charts-failed"), Some("0"));
    assert_eq!(
        body_data(&dom, "charts-empty"),
        Some(CHART_NAMES.len().to_string().as_str())
    );
}

/// The check can fail: a chart of zero size and a chart without marks are
/// reported by name.
#[test]
fn the_page_check_reports_charts_that_draw_nothing() {
    let Some(chromium) = chromium() else { return };
    let html = render_html(&sample_report(7)).replacen(
        "<section id=\"phases\">",
        "<section id=\"phases\">\
         <svg data-chart=\"collapsed\" width=\"0\" height=\"0\"><rect class=\"mark\" width=\"10\" height=\"10\"/></svg>\
         <svg data-chart=\"unmarked\" width=\"100\" height=\"100\" viewBox=\"0 0 100 100\"><line class=\"grid\" x1=\"0\" x2=\"100\" y1=\"5\" y2=\"5\"/></svg>\
         <svg data-chart=\"offstage\" width=\"100\" height=\"100\" viewBox=\"0 0 100 100\"><rect class=\"mark\" x=\"500\" y=\"500\" width=\"10\" height=\"10\"/></svg>",
        1,
    );
    let dom = dump_dom(&chromium, &html);
    assert_eq!(body_data(&dom, "charts-failed"), Some("3"));
    assert_eq!(
        body_data(&dom, "charts-failed-names"),
        Some("collapsed unmarked offstage")
    );
    assert_eq!(
        body_data(&dom, "charts-rendered"),
        Some(CHART_NAMES.len().to_string().as_str())
    );
}

/// The demo's outcomes as issue 16 found them: 13 of them, two that used
/// to share a pink, three greens.
fn report_with_the_demo_outcomes() -> DemoReport {
    let mut report = sample_report(7);
    let pairs = [
        ("macro domestic", "completed"),
        ("macro domestic", "duplicate absorbed"),
        ("macro domestic", "expired"),
        ("macro international", "completed"),
        ("macro international", "refused: account_locked"),
        ("macro international", "refused: wrong_pin"),
        ("macro international", "rejected"),
        ("micropayment", "DT below θ"),
        ("micropayment", "T at θ"),
        ("offline purchase", "committed"),
        ("offline purchase", "completed after a crash"),
        ("offline purchase", "double spend"),
        ("refund", "completed"),
    ];
    report.outcomes = pairs
        .iter()
        .map(|(kind, outcome)| mpay_report::OutcomeRow {
            kind: (*kind).to_owned(),
            outcome: (*outcome).to_owned(),
            count: 3,
        })
        .collect();
    report
}

#[test]
fn no_element_overflows_the_page_and_legend_colours_are_distinct() {
    let Some(chromium) = chromium() else { return };
    for (name, report) in [
        ("sample", sample_report(7)),
        ("demo outcomes", report_with_the_demo_outcomes()),
    ] {
        let dom = dump_dom(&chromium, &render_html(&report));
        assert_eq!(
            body_data(&dom, "overflow"),
            Some(""),
            "{name}: elements past the page's width"
        );
        assert_eq!(body_data(&dom, "overflow-count"), Some("0"), "{name}");
        assert_eq!(
            body_data(&dom, "legend-same"),
            Some(""),
            "{name}: legend colours used twice"
        );
        let swatches: usize = body_data(&dom, "legend-swatches")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(
            swatches >= 13,
            "{name}: only {swatches} legend swatches checked"
        );
    }
}

/// The width and colour checks can fail: a too-wide element and a legend
/// colour used twice are reported.
#[test]
fn the_page_check_reports_overflow_and_repeated_legend_colours() {
    let Some(chromium) = chromium() else { return };
    let html = render_html(&sample_report(7)).replacen(
        "<section id=\"phases\">",
        "<section id=\"phases\"><div id=\"too-wide\" style=\"width:3000px;height:4px\"></div>\
         <svg data-chart=\"twins\" width=\"100\" height=\"20\" viewBox=\"0 0 100 20\">\
         <rect class=\"swatch mark\" x=\"0\" y=\"0\" width=\"10\" height=\"10\" fill=\"#ff9da7\"/><text>refused: wrong_pin</text>\
         <rect class=\"swatch\" x=\"20\" y=\"0\" width=\"10\" height=\"10\" fill=\"#ff9da7\"/><text>double spend</text></svg>",
        1,
    );
    let dom = dump_dom(&chromium, &html);
    assert!(
        body_data(&dom, "overflow").is_some_and(|o| o.contains("div#too-wide")),
        "{:?}",
        body_data(&dom, "overflow")
    );
    assert_eq!(
        body_data(&dom, "legend-same"),
        Some("twins:rgb(255, 157, 167)")
    );
}

/// Issue 16: three greens that a reader could not tell apart. Colours
/// closer than `COLOUR_DISTANCE_MIN` count as the same.
#[test]
fn the_page_check_reports_near_identical_legend_colours() {
    let Some(chromium) = chromium() else { return };
    let html = render_html(&sample_report(7)).replacen(
        "<section id=\"phases\">",
        "<section id=\"phases\">\
         <svg data-chart=\"greens\" width=\"100\" height=\"20\" viewBox=\"0 0 100 20\">\
         <rect class=\"swatch mark\" x=\"0\" y=\"0\" width=\"10\" height=\"10\" fill=\"#59a14f\"/><text>committed</text>\
         <rect class=\"swatch\" x=\"20\" y=\"0\" width=\"10\" height=\"10\" fill=\"#4f9a45\"/><text>completed</text></svg>",
        1,
    );
    let dom = dump_dom(&chromium, &html);
    assert_eq!(
        body_data(&dom, "legend-same"),
        Some("greens:rgb(79, 154, 69)")
    );
}
