//! What a wallet command prints: lines for people, or exactly one JSON
//! object on stdout with `--json` (progress then goes nowhere; failures are
//! the object `{"ok": false, "exit_code", "error", "message", …}`).

use std::io::Write as _;

use serde_json::{Value, json};

use super::exit::Failure;

pub struct Out {
    json: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A line for people (stdout); nothing with `--json`.
    pub fn line(&self, text: impl AsRef<str>) {
        if !self.json {
            print_line(text.as_ref());
        }
    }

    /// A warning for people (stderr), in both modes.
    pub fn warn(&self, text: impl AsRef<str>) {
        eprintln!("warning: {}", text.as_ref());
    }

    /// The command's result: `object` with `"ok": true` added, printed
    /// with `--json`.
    pub fn done(&self, command: &str, mut object: Value) {
        if !self.json {
            return;
        }
        if let Value::Object(map) = &mut object {
            map.insert("ok".into(), Value::Bool(true));
            map.insert("command".into(), Value::String(command.into()));
        }
        print_line(&object.to_string());
    }

    pub fn failure(&self, failure: &Failure) {
        if self.json {
            let mut object = json!({
                "ok": false,
                "exit_code": failure.exit.code(),
                "error": failure.exit.name(),
                "message": failure.message,
            });
            if let (Value::Object(map), Some(Value::Object(details))) =
                (&mut object, &failure.details)
            {
                for (k, v) in details {
                    map.insert(k.clone(), v.clone());
                }
            }
            print_line(&object.to_string());
        } else {
            eprintln!("error: {}", failure.message);
        }
    }
}

/// One line on stdout. A closed stdout (`mpay … | head`) is not an error
/// worth a panic: the line is dropped.
pub fn print_line(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `text` as a QR code drawn with Unicode half blocks, or `None` if it does
/// not fit one.
pub fn qr(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_735_689_599_000), "2024-12-31 23:59:59 UTC");
    }
}
