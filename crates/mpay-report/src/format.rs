//! Text formatting shared by the page and the terminal: escaping, money,
//! times, hex.

use mpay_money::{Amount, Currency};

/// Escapes text for HTML and SVG, in element content and in quoted
/// attributes. Control characters other than tab and newline are dropped
/// (XML forbids most of them).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(ch),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// `minor` minor units of `currency`, e.g. `1250` EUR → "12.50 EUR". Integer
/// arithmetic only.
pub fn money(minor: i64, currency: Currency) -> String {
    Amount::new(minor, currency).to_string()
}

/// Like [`money`] with an explicit sign, for deltas: "+12.50 EUR",
/// "-3.00 EUR", "0.00 EUR".
pub fn money_delta(minor: i64, currency: Currency) -> String {
    if minor > 0 {
        format!("+{}", money(minor, currency))
    } else {
        money(minor, currency)
    }
}

/// A money value wider than `i64` (a tick or a sum): formatted when it fits,
/// otherwise "overflow".
pub fn money_wide(minor: i128, currency: Currency) -> String {
    match i64::try_from(minor) {
        Ok(m) => money(m, currency),
        Err(_) => "overflow".to_owned(),
    }
}

/// Milliseconds since start as seconds with one decimal, e.g. "41.2 s".
pub fn seconds(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
}

/// A latency in ms with about three significant digits: "0.42 ms",
/// "12.3 ms", "154 ms", "2.31 s".
pub fn latency(ms: f64) -> String {
    if !ms.is_finite() {
        return "–".to_owned();
    }
    if ms >= 1000.0 {
        let s = ms / 1000.0;
        return if s >= 100.0 {
            format!("{s:.0} s")
        } else if s >= 10.0 {
            format!("{s:.1} s")
        } else {
            format!("{s:.2} s")
        };
    }
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// A number for an axis tick at a given step: as many decimals as the step
/// needs, no trailing noise ("0.5", "10", "2.25").
pub fn tick_number(value: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step.is_finite() {
        let mut d = 0usize;
        let mut scaled = step;
        while d < 6 && (scaled - scaled.round()).abs() > 1e-9 * scaled.abs().max(1.0) {
            scaled *= 10.0;
            d += 1;
        }
        d
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    // "-0" looks like a bug on an axis.
    if text
        .trim_start_matches('-')
        .chars()
        .all(|c| c == '0' || c == '.')
    {
        text.trim_start_matches('-').to_owned()
    } else {
        text
    }
}

/// Milliseconds since the Unix epoch as "YYYY-MM-DD HH:MM:SS UTC".
pub fn utc_datetime(epoch_ms: u64) -> String {
    let secs = epoch_ms / 1000;
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

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Hex longer than `HEX_ABBREVIATED_CHARS_MAX` as its first and last
/// `HEX_ABBREVIATED_SIDE_CHARS` characters joined by "…".
pub fn abbreviate_hex(hex: &str) -> String {
    let count = hex.chars().count();
    if count <= HEX_ABBREVIATED_CHARS_MAX {
        return hex.to_owned();
    }
    let head: String = hex.chars().take(HEX_ABBREVIATED_SIDE_CHARS).collect();
    let tail: String = hex
        .chars()
        .skip(count - HEX_ABBREVIATED_SIDE_CHARS)
        .collect();
    format!("{head}…{tail}")
}

/// Hex up to this many characters is shown whole.
pub const HEX_ABBREVIATED_CHARS_MAX: usize = 20;
/// Characters kept on each side of an abbreviated hex string.
pub const HEX_ABBREVIATED_SIDE_CHARS: usize = 8;

/// At most `chars_max` characters of `text`, with "…" when cut.
pub fn truncate(text: &str, chars_max: usize) -> String {
    if text.chars().count() <= chars_max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(chars_max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}[31mc\nd"), "ab[31mc\nd");
        assert_eq!(escape("Zoë 🐱"), "Zoë 🐱");
    }

    #[test]
    fn money_uses_the_currency_exponent_and_integer_arithmetic() {
        assert_eq!(money(1250, Currency::EUR), "12.50 EUR");
        assert_eq!(money(-5, Currency::EUR), "-0.05 EUR");
        assert_eq!(money(1250, Currency::JPY), "1250 JPY");
        assert_eq!(money(i64::MIN, Currency::EUR), "-92233720368547758.08 EUR");
        assert_eq!(money_delta(300, Currency::EUR), "+3.00 EUR");
        assert_eq!(money_delta(-300, Currency::EUR), "-3.00 EUR");
        assert_eq!(money_delta(0, Currency::EUR), "0.00 EUR");
        assert_eq!(
            money_wide(i128::from(i64::MAX) + 1, Currency::EUR),
            "overflow"
        );
        assert_eq!(money_wide(100, Currency::USD), "1.00 USD");
    }

    #[test]
    fn times_and_latencies() {
        assert_eq!(seconds(41_250), "41.2 s");
        assert_eq!(seconds(0), "0.0 s");
        assert_eq!(latency(0.4231), "0.42 ms");
        assert_eq!(latency(12.34), "12.3 ms");
        assert_eq!(latency(154.4), "154 ms");
        assert_eq!(latency(2310.0), "2.31 s");
        assert_eq!(latency(f64::NAN), "–");
        assert_eq!(utc_datetime(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_datetime(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_datetime(1_794_654_245_000), "2026-11-14 11:04:05 UTC");
    }

    #[test]
    fn tick_numbers_have_the_step_precision() {
        assert_eq!(tick_number(10.0, 5.0), "10");
        assert_eq!(tick_number(0.5, 0.5), "0.5");
        assert_eq!(tick_number(2.25, 0.25), "2.25");
        assert_eq!(tick_number(-0.0, 1.0), "0");
        assert_eq!(tick_number(0.30000000000000004, 0.1), "0.3");
    }

    #[test]
    fn hex_is_abbreviated_in_the_middle() {
        assert_eq!(abbreviate_hex("abcdef"), "abcdef");
        let long = "0123456789abcdef0123456789abcdef";
        assert_eq!(abbreviate_hex(long), "01234567…89abcdef");
        assert_eq!(truncate("hello world", 6), "hello…");
        assert_eq!(truncate("héllo", 5), "héllo");
    }
}
