//! Writes the sample report (synthetic data) as HTML, JSON and terminal
//! text, and optionally a screenshot of the page taken by headless
//! Chromium:
//!
//! ```text
//! cargo run -p mpay-report --example sample -- OUT_DIR [--seed N] [--screenshot PNG]
//! ```

use std::path::PathBuf;
use std::process::Command;

use mpay_report::{render_html, render_terminal, sample::sample_report};

const CHROMIUM: &str = "/usr/bin/chromium";
/// Window for the screenshot: the page's width and its first screens.
const SCREENSHOT_WINDOW: &str = "1100,2200";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut out_dir = PathBuf::from("target/sample-report");
    let mut seed = 7u64;
    let mut screenshot = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => seed = args.next().ok_or("--seed needs a number")?.parse()?,
            "--screenshot" => {
                screenshot = Some(PathBuf::from(
                    args.next().ok_or("--screenshot needs a path")?,
                ))
            }
            _ => out_dir = PathBuf::from(arg),
        }
    }
    std::fs::create_dir_all(&out_dir)?;
    let report = sample_report(seed);
    let html_path = out_dir.join("report.html");
    std::fs::write(&html_path, render_html(&report))?;
    std::fs::write(out_dir.join("report.json"), report.to_json()?)?;
    let summary = render_terminal(&report);
    std::fs::write(out_dir.join("summary.txt"), &summary)?;
    print!("{summary}");
    println!("wrote {}", html_path.display());

    if let Some(png) = screenshot {
        let png = std::path::absolute(png)?;
        let profile = tempfile::tempdir()?;
        let status = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(format!("--window-size={SCREENSHOT_WINDOW}"))
            .arg(format!("--screenshot={}", png.display()))
            .arg(format!(
                "file://{}",
                std::path::absolute(&html_path)?.display()
            ))
            .status()?;
        if !status.success() {
            return Err(format!("chromium exited with {status}").into());
        }
        println!("wrote {}", png.display());
    }
    Ok(())
}
