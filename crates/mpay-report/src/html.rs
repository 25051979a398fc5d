//! The self-contained HTML page: header with the verdict, the phases, the
//! charts (inline SVG), the tables, and a few lines of plain script that
//! record whether every chart rendered. No external fonts, styles, images
//! or scripts: the file works offline.

use std::fmt::Write as _;

use crate::charts::{self, Chart};
use crate::format::{abbreviate_hex, escape, latency, money, money_delta, seconds, utc_datetime};
use crate::model::DemoReport;
use crate::stats::{OutcomeTable, balance_totals, row_currency, row_delta, summarize};

/// Every chart the page can hold, in page order (the `data-chart` names).
pub const CHART_NAMES: [&str; 6] = [
    charts::phases::NAME,
    charts::money::NAME,
    charts::outcomes::NAME,
    charts::latency::NAME,
    charts::micro::NAME,
    charts::fraud::NAME,
];

/// The charts of a report, in page order; a chart with nothing to draw is a
/// no-data note.
pub fn charts(report: &DemoReport) -> [Chart; 6] {
    [
        charts::phases::render(report),
        charts::money::render(report),
        charts::outcomes::render(report),
        charts::latency::render(report),
        charts::micro::render(report),
        charts::fraud::render(report),
    ]
}

/// The whole report as one self-contained HTML page.
pub fn render_html(report: &DemoReport) -> String {
    let [phases, money_chart, outcomes, latency_chart, micro, fraud] = charts(report);
    let mut page = String::with_capacity(256 * 1024);
    let title = escape(&report.title);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · seed {}</title><style>{STYLE}</style></head>\n\
         <body data-colour-distance-min=\"{}\">\n",
        report.seed,
        charts::outcomes::COLOUR_DISTANCE_MIN
    );
    header(&mut page, report);

    section_open(&mut page, "phases", "The day, phase by phase");
    page.push_str(&phases.html);
    phase_list(&mut page, report);
    page.push_str("</section>\n");

    section_open(&mut page, "money", "Money held by each party over the day");
    lede(
        &mut page,
        "Each line is one party's balance, held until it changes. Shaded bands are the phases, \
         numbered as in the list above; a panel with many parties draws the largest and sums the rest.",
    );
    page.push_str(&money_chart.html);
    page.push_str("</section>\n");

    section_open(&mut page, "payments", "Payments by kind and outcome");
    page.push_str(&outcomes.html);
    outcome_table(&mut page, report);
    page.push_str("</section>\n");

    section_open(&mut page, "latency", "Latency per payment kind");
    lede(
        &mut page,
        "Dots are payments; the box spans p25 to p75, the thick mark is the median, \
         thin marks are p90 and p99 (shown from 10 and 100 payments), whiskers reach min and max. \
         Log scale.",
    );
    page.push_str(&latency_chart.html);
    latency_table(&mut page, report);
    page.push_str("</section>\n");

    section_open(
        &mut page,
        "micro",
        "Micropayments: pending totals against θ",
    );
    lede(
        &mut page,
        "Below θ a micropayment is confirmed with a delayed transfer (DT) and no bank call; \
         at θ, or when the window runs out, the CPP makes one bank transfer for the pending total.",
    );
    page.push_str(&micro.html);
    let hidden = report.micro.len().saturating_sub(charts::micro::PANELS_MAX);
    if hidden > 0 {
        let _ = write!(
            page,
            "<p class=\"note\">{hidden} more series not drawn (the chart shows the first {}).</p>",
            charts::micro::PANELS_MAX
        );
    }
    page.push_str("</section>\n");

    section_open(&mut page, "fraud", "Double spend caught");
    lede(
        &mut page,
        "Two different signed entries of one wallet with one sequence number are a fraud proof: \
         the money office names the owner, charges them and revokes the certificate.",
    );
    page.push_str(&fraud.html);
    fraud_table(&mut page, report);
    page.push_str("</section>\n");

    section_open(&mut page, "balances", "Money per party, before and after");
    balance_table(&mut page, report);
    page.push_str("</section>\n");

    section_open(&mut page, "invariants", "Invariants");
    invariant_list(&mut page, report);
    page.push_str("</section>\n");

    let _ = write!(
        page,
        "<footer>mpay demo report · format {} · seed {} · replay with <code>mpay demo --seed {}</code></footer>\n\
         <script>{CHECK_SCRIPT}</script>\n</body></html>\n",
        report.format_version, report.seed, report.seed
    );
    page
}

fn header(page: &mut String, report: &DemoReport) {
    let _ = write!(
        page,
        "<header><h1>{}</h1><p class=\"meta\">",
        escape(&report.title)
    );
    let mut meta = vec![
        format!("seed {}", report.seed),
        format!("started {}", utc_datetime(report.started_at_ms)),
        format!("ran {}", seconds(report.duration_ms)),
        report.currency.to_string(),
    ];
    if !report.backend.is_empty() {
        meta.push(report.backend.clone());
    }
    page.push_str(&escape(&meta.join(" · ")));
    page.push_str("</p>");
    let failed: Vec<&str> = report
        .failed_invariants()
        .map(|c| c.name.as_str())
        .collect();
    if report.invariants.is_empty() {
        page.push_str(
            "<div class=\"verdict none\" data-verdict=\"none\">No invariants were checked.</div>",
        );
    } else if failed.is_empty() {
        let _ = write!(
            page,
            "<div class=\"verdict ok\" data-verdict=\"held\">✔ All {} invariants held.</div>",
            report.invariants.len()
        );
    } else {
        let _ = write!(
            page,
            "<div class=\"verdict fail\" data-verdict=\"failed\">✘ {} of {} invariants failed: {}</div>",
            failed.len(),
            report.invariants.len(),
            escape(&failed.join(", "))
        );
    }
    page.push_str(
        "<nav><a href=\"#phases\">Phases</a><a href=\"#money\">Money</a>\
         <a href=\"#payments\">Payments</a><a href=\"#latency\">Latency</a>\
         <a href=\"#micro\">Micropayments</a><a href=\"#fraud\">Double spend</a>\
         <a href=\"#balances\">Balances</a><a href=\"#invariants\">Invariants</a></nav></header>\n",
    );
}

fn section_open(page: &mut String, id: &str, heading: &str) {
    let _ = write!(page, "<section id=\"{id}\"><h2>{}</h2>", escape(heading));
}

fn lede(page: &mut String, text: &str) {
    let _ = write!(page, "<p class=\"lede\">{}</p>", escape(text));
}

fn phase_list(page: &mut String, report: &DemoReport) {
    if report.phases.is_empty() {
        return;
    }
    page.push_str("<ol class=\"phases\">");
    for phase in &report.phases {
        let _ = write!(
            page,
            "<li><h3>{} <span class=\"when\">{} – {}</span></h3>",
            escape(&phase.name),
            seconds(phase.started_ms),
            seconds(phase.started_ms.saturating_add(phase.duration_ms))
        );
        for line in &phase.lines {
            let _ = write!(page, "<p>{}</p>", inline_code(line));
        }
        page.push_str("</li>");
    }
    page.push_str("</ol>");
}

/// Escapes `text` and shows its `backticked` spans as code (the phase
/// texts are written with Markdown's backticks).
fn inline_code(text: &str) -> String {
    let mut out = String::new();
    let parts: Vec<&str> = text.split('`').collect();
    // An odd number of parts: every backtick is paired.
    let paired = parts.len() % 2 == 1;
    for (i, part) in parts.iter().enumerate() {
        if i % 2 == 1 && paired {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            if i > 0 && !paired {
                out.push('`');
            }
            out.push_str(&escape(part));
        }
    }
    out
}

/// Payments by kind and outcome, one row per pair that occurred (kinds as
/// rows: the table stays narrow however many outcomes there are), each
/// outcome with its colour from the chart.
fn outcome_table(page: &mut String, report: &DemoReport) {
    let t = OutcomeTable::build(report);
    if t.kinds.is_empty() {
        return;
    }
    let colours = charts::outcomes::outcome_colours(&t.outcomes);
    page.push_str(
        "<table class=\"num outcomes\"><thead><tr><th>kind</th><th>outcome</th>\
         <th>count</th></tr></thead><tbody>",
    );
    for (k, kind) in t.kinds.iter().enumerate() {
        let mut first = true;
        for (o, outcome) in t.outcomes.iter().enumerate() {
            let c = t.counts.get(k).and_then(|c| c.get(o)).copied().unwrap_or(0);
            if c == 0 {
                continue;
            }
            let kind_cell = if first { escape(kind) } else { String::new() };
            first = false;
            let _ = write!(
                page,
                "<tr><td class=\"kind\">{kind_cell}</td><td class=\"kind\">\
                 <span class=\"swatch\" style=\"background:{}\"></span>{}</td><td>{c}</td></tr>",
                colours.get(o).copied().unwrap_or("#7f7f7f"),
                escape(outcome)
            );
        }
    }
    let _ = write!(
        page,
        "</tbody><tfoot><tr><th>total</th><th></th><td class=\"strong\">{}</td></tr></tfoot></table>",
        t.total()
    );
}

fn latency_table(page: &mut String, report: &DemoReport) {
    if report.latencies.is_empty() {
        return;
    }
    page.push_str(
        "<table class=\"num\"><thead><tr><th>kind</th><th>n</th><th>min</th><th>p50</th>\
         <th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>",
    );
    for series in &report.latencies {
        let _ = write!(page, "<tr><th>{}</th>", escape(&series.kind));
        match summarize(series) {
            Some(s) => {
                // A percentile only where the samples can tell it from the
                // largest (`LatencySummary`).
                let percentile = |v: Option<f64>| match v {
                    Some(v) => format!("<td>{}</td>", latency(v)),
                    None => "<td class=\"zero\">–</td>".to_owned(),
                };
                let _ = write!(
                    page,
                    "<td>{}</td><td>{}</td><td>{}</td>{}{}<td>{}</td></tr>",
                    s.count,
                    latency(s.min_ms),
                    latency(s.p50_ms),
                    percentile(s.p90_ms),
                    percentile(s.p99_ms),
                    latency(s.max_ms)
                );
            }
            None => {
                page.push_str("<td>0</td><td colspan=\"5\" class=\"zero\">no samples</td></tr>")
            }
        }
    }
    page.push_str("</tbody></table>");
}

fn fraud_table(page: &mut String, report: &DemoReport) {
    if report.frauds.is_empty() {
        return;
    }
    page.push_str(
        "<table class=\"fraud\"><thead><tr><th>wallet</th><th>owner</th><th>seq</th>\
         <th>conflicting entries</th><th>charged</th><th>caught</th></tr></thead><tbody>",
    );
    for case in &report.frauds {
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>",
            escape(&case.wallet),
            escape(&case.owner),
            case.seq
        );
        for (label, entry) in [("first", &case.first), ("second", &case.second)] {
            let _ = write!(
                page,
                "<details><summary>{label}: <code>{}</code> {}</summary><code class=\"hex\">{}</code></details>",
                escape(&abbreviate_hex(&entry.hex)),
                escape(&entry.summary),
                escape(&entry.hex)
            );
        }
        let _ = write!(
            page,
            "</td><td class=\"n\">{}</td><td>{} by {}{}</td></tr>",
            money(case.charged_minor, report.currency),
            seconds(case.caught_at_ms),
            escape(&case.caught_by),
            if case.revoked {
                "; certificate revoked"
            } else {
                "; <strong class=\"bad\">certificate not revoked</strong>"
            }
        );
    }
    page.push_str("</tbody></table>");
}

fn balance_table(page: &mut String, report: &DemoReport) {
    if report.balances.is_empty() {
        page.push_str("<p class=\"no-data\">No balances were recorded.</p>");
        return;
    }
    page.push_str(
        "<table class=\"num\"><thead><tr><th>party</th><th>kind</th><th>before</th>\
         <th>after</th><th>change</th></tr></thead><tbody>",
    );
    for row in &report.balances {
        let currency = row_currency(report, row);
        let (delta, class) = match row_delta(row) {
            Some(d) if d > 0 => (money_delta(d, currency), "up"),
            Some(d) if d < 0 => (money_delta(d, currency), "down"),
            Some(d) => (money_delta(d, currency), "zero"),
            None => ("overflow".to_owned(), "bad"),
        };
        let _ = write!(
            page,
            "<tr><th>{}</th><td class=\"kind\">{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td></tr>",
            escape(&row.party),
            row.kind.label(),
            money(row.before_minor, currency),
            money(row.after_minor, currency),
            delta
        );
    }
    page.push_str("</tbody><tfoot>");
    for total in balance_totals(report) {
        let show =
            |a: Option<mpay_money::Amount>| a.map_or("overflow".to_owned(), |a| a.to_string());
        let verdict = if total.conserved() {
            "<span class=\"good\">✔ conserved</span>".to_owned()
        } else {
            match total.delta() {
                Some(d) => format!(
                    "<span class=\"bad\">✘ {}</span>",
                    escape(&money_delta(d.minor_units(), d.currency()))
                ),
                None => "<span class=\"bad\">✘ overflow</span>".to_owned(),
            }
        };
        let _ = write!(
            page,
            "<tr><th>total {} ({} parties)</th><td></td><td>{}</td><td>{}</td><td>{verdict}</td></tr>",
            total.currency,
            total.rows,
            show(total.before),
            show(total.after),
        );
    }
    page.push_str("</tfoot></table>");
}

fn invariant_list(page: &mut String, report: &DemoReport) {
    if report.invariants.is_empty() {
        page.push_str("<p class=\"no-data\">No invariants were checked.</p>");
        return;
    }
    page.push_str("<ul class=\"invariants\">");
    for check in &report.invariants {
        let (class, mark) = if check.ok {
            ("good", "✔")
        } else {
            ("bad", "✘")
        };
        let _ = write!(
            page,
            "<li class=\"{class}\"><span class=\"mark-sign\">{mark}</span> <strong>{}</strong> <span class=\"detail\">{}</span></li>",
            escape(&check.name),
            escape(&check.detail)
        );
    }
    page.push_str("</ul>");
}

/// Runs once the page is parsed: every `<svg data-chart>` must have a
/// non-empty box and at least one `.mark` with a non-empty box inside its
/// view box. The result goes to `data-charts-rendered`,
/// `data-charts-failed`, `data-charts-failed-names` and `data-charts-empty`
/// on `<body>`, for `chromium --headless --dump-dom` to show; so do the
/// elements wider than the page (`data-overflow`, `data-overflow-count`)
/// and the legend colours too close for two labels (`data-legend-same`).
pub const CHECK_SCRIPT: &str = r#"
(function () {
  var ok = 0, failed = [], empty = 0;
  var charts = document.querySelectorAll('[data-chart]');
  for (var i = 0; i < charts.length; i++) {
    var el = charts[i], name = el.getAttribute('data-chart');
    if (el.tagName.toLowerCase() !== 'svg') { empty++; continue; }
    var box = el.getBoundingClientRect(), vb = el.viewBox.baseVal, drawn = 0;
    var marks = el.querySelectorAll('.mark');
    for (var j = 0; j < marks.length; j++) {
      var b = marks[j].getBBox();
      var inside = b.x <= vb.width && b.x + b.width >= 0 && b.y <= vb.height && b.y + b.height >= 0;
      if (b.width + b.height > 0 && inside) drawn++;
    }
    if (box.width > 0 && box.height > 0 && drawn > 0) ok++; else failed.push(name);
  }
  document.body.dataset.chartsRendered = String(ok);
  document.body.dataset.chartsFailed = String(failed.length);
  document.body.dataset.chartsFailedNames = failed.join(' ');
  document.body.dataset.chartsEmpty = String(empty);
  // Elements wider than the page: their right edge past the page's.
  var width = document.documentElement.clientWidth, over = [];
  var all = document.body.querySelectorAll('*');
  for (var k = 0; k < all.length; k++) {
    var r = all[k].getBoundingClientRect();
    if (r.width > 0 && (r.right > width + 0.5 || r.left < -0.5)) {
      var e = all[k], id = e.tagName.toLowerCase();
      if (e.id) id += '#' + e.id;
      if (e.getAttribute('data-chart')) id += '[' + e.getAttribute('data-chart') + ']';
      if (e.className && typeof e.className === 'string') id += '.' + e.className.split(' ').join('.');
      over.push(id);
    }
  }
  document.body.dataset.overflow = over.slice(0, 20).join(' ');
  document.body.dataset.overflowCount = String(over.length);
  // Legend colours: within one chart (or the outcome table) no colour
  // stands for two different labels, nor does one too close to tell apart
  // (RGB distance below data-colour-distance-min on <body>).
  var same = [], apart = Number(document.body.dataset.colourDistanceMin || 0);
  function rgb(c) {
    var m = /rgba?\((\d+),\s*(\d+),\s*(\d+)/.exec(c);
    return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
  }
  function close(a, b) {
    if (a === b) return true;
    var p = rgb(a), q = rgb(b);
    if (!p || !q) return false;
    var d = Math.sqrt(Math.pow(p[0] - q[0], 2) + Math.pow(p[1] - q[1], 2) + Math.pow(p[2] - q[2], 2));
    return d < apart;
  }
  function legend(name, swatches, colourOf, labelOf) {
    var seen = [];
    for (var m = 0; m < swatches.length; m++) {
      var c = colourOf(swatches[m]), l = labelOf(swatches[m]);
      for (var s = 0; s < seen.length; s++) {
        if (seen[s].label !== l && close(seen[s].colour, c)) { same.push(name + ':' + c); break; }
      }
      seen.push({ colour: c, label: l });
    }
  }
  for (var n = 0; n < charts.length; n++) {
    legend(charts[n].getAttribute('data-chart'), charts[n].querySelectorAll('rect.swatch'),
      function (el) { return getComputedStyle(el).fill; },
      function (el) { var t = el.nextElementSibling; return t ? t.textContent : ''; });
  }
  legend('outcome-table', document.querySelectorAll('table.outcomes span.swatch'),
    function (el) { return getComputedStyle(el).backgroundColor; },
    function (el) { return el.parentNode.textContent; });
  document.body.dataset.legendSame = same.join(' ');
  document.body.dataset.legendSwatches = String(document.querySelectorAll('rect.swatch, span.swatch').length);
})();
"#;

const STYLE: &str = r#"
:root { --ink:#1d2330; --muted:#5b6474; --line:#e3e6ec; --good:#2e7d32; --bad:#c62828; --warn:#b26a00; }
* { box-sizing: border-box; }
body { margin:0 auto; max-width:1020px; padding:24px 30px 60px; color:var(--ink); background:#fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
header h1 { margin:0 0 4px; font-size:28px; letter-spacing:-.01em; }
.meta { margin:0 0 14px; color:var(--muted); }
.verdict { padding:12px 16px; border-radius:8px; font-weight:650; font-size:17px; }
.verdict.ok { background:#e8f5e9; color:var(--good); border:1px solid #a5d6a7; }
.verdict.fail { background:#ffebee; color:var(--bad); border:1px solid #ef9a9a; }
.verdict.none { background:#fff8e1; color:var(--warn); border:1px solid #ffe082; }
nav { margin:14px 0 0; display:flex; flex-wrap:wrap; gap:4px 16px; font-size:14px; }
nav a { color:#3461a8; text-decoration:none; }
section { margin-top:38px; }
h2 { font-size:20px; margin:0 0 6px; padding-bottom:4px; border-bottom:1px solid var(--line); }
.lede { margin:4px 0 10px; color:var(--muted); font-size:14px; }
.note, .no-data { color:var(--muted); font-style:italic; }
.no-data { padding:18px; background:#fafbfc; border:1px dashed var(--line); border-radius:6px; text-align:center; }
ol.phases { list-style:none; counter-reset:phase; padding:0; display:grid; grid-template-columns:repeat(auto-fill,minmax(300px,1fr)); gap:10px 18px; margin:14px 0 0; }
ol.phases li { counter-increment:phase; border-left:3px solid #4e79a7; padding:2px 0 2px 10px; }
ol.phases h3 { margin:0; font-size:14.5px; }
ol.phases h3::before { content:counter(phase) ". "; color:var(--muted); }
ol.phases .when { color:var(--muted); font-weight:400; font-size:12.5px; margin-left:4px; }
ol.phases p { margin:0; font-size:13.5px; color:#38404e; }
div.scroll { overflow-x:auto; }
span.swatch { display:inline-block; width:10px; height:10px; margin-right:6px; border-radius:2px; vertical-align:-1px; }
table { border-collapse:collapse; margin:14px 0 0; font-size:13.5px; min-width:50%; }
th, td { padding:5px 10px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
thead th { font-weight:600; vertical-align:bottom; color:var(--muted); border-bottom:2px solid var(--line); }
table.num td { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.num td.kind { text-align:left; color:var(--muted); }
tbody th { font-weight:500; }
tfoot th, tfoot td { font-weight:650; border-top:2px solid var(--line); }
td.zero { color:#b7bdc8; } td.up { color:var(--good); } td.down { color:var(--bad); }
.strong { font-weight:650; } .good { color:var(--good); } .bad { color:var(--bad); }
td.n { text-align:right; white-space:nowrap; }
details summary { cursor:pointer; }
code { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace; font-size:12.5px; }
code.hex { display:block; word-break:break-all; background:#f6f7f9; padding:6px 8px; border-radius:4px; margin:4px 0 8px; }
ul.invariants { list-style:none; padding:0; margin:10px 0 0; }
ul.invariants li { padding:6px 0; border-bottom:1px solid var(--line); }
ul.invariants .detail { color:var(--muted); margin-left:6px; }
ul.invariants li.bad strong { color:var(--bad); }
.mark-sign { display:inline-block; width:1.2em; font-weight:700; }
footer { margin-top:40px; color:var(--muted); font-size:12.5px; }
svg.chart { display:block; width:100%; height:auto; margin:8px 0 0; overflow:visible; }
svg text { font-size:11px; fill:#3a4150; }
svg .tick { fill:#6b7383; }
svg .axis-title { fill:#6b7383; font-size:11.5px; }
svg .label { font-size:12.5px; fill:var(--ink); }
svg .panel-title { font-size:13px; font-weight:650; fill:var(--ink); }
svg .legend.value { fill:#6b7383; font-variant-numeric:tabular-nums; }
svg .grid { stroke:#eceef2; stroke-width:1; }
svg .axis { stroke:#9aa1ad; stroke-width:1; }
svg .band { fill:#f3f5f9; } svg .band.alt { fill:#fbfcfd; }
svg .band-label { font-size:9.5px; fill:#8a93a3; }
svg .line { fill:none; stroke-width:2; stroke-linejoin:round; }
svg .line.group { stroke-dasharray:5 3; }
svg .note { fill:#8a93a3; font-style:italic; }
svg .dot { opacity:.35; }
svg .whisker { stroke-width:1.5; }
svg .box { opacity:.55; }
svg .p50 { stroke:#111; stroke-width:3; }
svg .pct { stroke:#111; stroke-width:1.5; }
svg .pct-label { font-size:9.5px; fill:#5b6474; }
svg .stat { font-size:12.5px; font-variant-numeric:tabular-nums; }
svg .in-bar { fill:#fff; font-weight:650; } svg .in-bar.on-light { fill:var(--ink); }
svg .total { font-weight:650; }
svg .theta { stroke-width:1.6; stroke-dasharray:6 4; }
svg .settlement { stroke-width:1; opacity:.55; stroke-dasharray:2 3; }
svg .chain { stroke:#888; stroke-width:2; fill:none; }
svg .fork { fill:none; stroke-width:2; }
svg .entry { fill:#fff; stroke-width:1.5; }
svg .entry-title { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:11.5px; font-weight:650; }
svg .verdict { font-weight:650; font-size:12.5px; fill:var(--ink); }
svg .detail { font-size:12px; }
svg .alarm { fill:var(--bad); font-weight:700; font-size:12px; }
svg .sep { stroke:#eceef2; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_in_phase_texts_become_code() {
        // Issue 16: raw Markdown backticks showed in the phase cards.
        assert_eq!(
            inline_code("keys from `mpay network init` & <certs>"),
            "keys from <code>mpay network init</code> &amp; &lt;certs&gt;"
        );
        assert_eq!(inline_code("a lone ` stays"), "a lone ` stays");
        let mut report = crate::sample::sample_report(7);
        report.phases[0].lines = vec!["run `mpay demo`".to_owned()];
        let page = render_html(&report);
        let phases = page
            .split("<ol class=\"phases\">")
            .nth(1)
            .and_then(|rest| rest.split("</ol>").next())
            .unwrap_or_default();
        assert!(phases.contains("run <code>mpay demo</code>"), "{phases}");
        assert!(!phases.contains('`'), "{phases}");
    }

    /// Issue 16: "4.00 EUR" on a micropayment axis stepping by 0.50 EUR
    /// where whole euros would do.
    #[test]
    fn no_money_tick_of_the_sample_shows_cents_on_a_whole_amount() {
        let page = render_html(&crate::sample::sample_report(7));
        let cents: Vec<&str> = page
            .split("class=\"tick\">")
            .skip(1)
            .filter_map(|rest| rest.split('<').next())
            .filter(|label| label.ends_with(" EUR") && label.contains(".00 "))
            .collect();
        assert!(cents.is_empty(), "{cents:?}");
    }

    /// The chart leaves out p90 and p99 where there are too few samples
    /// to tell them; the table showed them (p90 = p99 = max for n = 1).
    #[test]
    fn the_latency_table_shows_only_the_percentiles_the_samples_tell() {
        let report = crate::sample::one_refund_report();
        let page = render_html(&report);
        let table = page
            .split("<th>p99</th>")
            .nth(1)
            .and_then(|rest| rest.split("</table>").next())
            .unwrap_or_default();
        assert_eq!(
            table.matches("53.4 ms").count(),
            3,
            "min, p50, max: {table}"
        );
        assert_eq!(
            table.matches("<td class=\"zero\">–</td>").count(),
            2,
            "{table}"
        );
    }

    #[test]
    fn the_outcome_table_has_kinds_as_rows() {
        let page = render_html(&crate::sample::sample_report(7));
        let table = page
            .split("<table class=\"num outcomes\">")
            .nth(1)
            .and_then(|rest| rest.split("</table>").next())
            .unwrap_or_default();
        let header = table.split("</thead>").next().unwrap_or_default();
        assert_eq!(header.matches("<th>").count(), 3, "{header}");
        assert!(!table.contains("class=\"zero\""), "no zero cells: {table}");
    }
}
