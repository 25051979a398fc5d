//! The demo's report: a plain data model ([`DemoReport`]) that the demo
//! fills while it runs, and three ways to show it:
//!
//! - [`render_html`]: one self-contained HTML page with inline SVG charts
//!   (money per party over the day, latency per payment kind, pending
//!   micropayments against θ, the double spend with its proof) and tables;
//!   no external fonts, styles or scripts;
//! - [`render_terminal`]: the end-of-run summary as aligned plain text;
//! - [`DemoReport::to_json`]: the data itself.
//!
//! [`ledger`] holds the readings of who held how much, and the checks over
//! them that the demo's verdict rests on: conservation and the office's
//! backing.
//!
//! Rendering is pure and total: any report, however odd its numbers or
//! names, renders without panicking, and every piece of text is escaped.
//! Money is formatted from integer minor units by `mpay-money`; floats
//! place marks on a chart and measure latencies, never count money.

pub mod charts;
pub mod format;
mod html;
pub mod ledger;
mod model;
pub mod sample;
pub mod scale;
pub mod stats;
mod terminal;

pub use html::{CHART_NAMES, CHECK_SCRIPT, charts as render_charts, render_html};
pub use model::{
    BalanceRow, DemoReport, ForkEntry, FraudCase, InvariantCheck, LatencySeries, OutcomeRow,
    PartyKind, PartySeries, PendingSeries, Phase, REPORT_FORMAT_VERSION, ReportError,
};
pub use terminal::{CELL_CHARS_MAX, TerminalOptions, render_terminal, render_terminal_with};
