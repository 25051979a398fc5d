//! What the wallet commands ask on the terminal: the PIN, yes or no, a
//! line, and amounts as people type them.

use std::fs;
use std::io::{BufRead, IsTerminal, Write as _};
use std::path::Path;

use mpay_money::{Amount, Currency};
use mpay_wallet::KdfCost;
use zeroize::Zeroizing;

use super::exit::Failure;
use super::{Common, Kdf};

/// Longest PIN accepted, bytes (a PIN file is read no further).
pub const PIN_LEN_MAX: usize = mpay_wallet::PIN_LEN_MAX;

/// The store's key-derivation cost for a `--kdf` choice.
pub fn kdf_cost(kdf: Kdf) -> KdfCost {
    match kdf {
        Kdf::Default => KdfCost::Default,
        Kdf::Fast => KdfCost::Fast,
    }
}

/// Where a PIN comes from.
pub struct PinSource<'a> {
    pub file: Option<&'a Path>,
    pub env: &'static str,
    pub prompt: &'static str,
}

impl<'a> PinSource<'a> {
    /// The owner's current PIN: `--pin-file`, env `MPAY_PIN`, or a prompt.
    pub fn current(common: &'a Common) -> PinSource<'a> {
        PinSource {
            file: common.pin_file.as_deref(),
            env: "MPAY_PIN",
            prompt: "PIN: ",
        }
    }
}

/// Reads a PIN. From a file or the environment as given; otherwise from the
/// terminal without echo (asked twice when `confirm`), or one line of stdin
/// when stdin is not a terminal. Never printed.
pub fn read_pin(source: &PinSource<'_>, confirm: bool) -> Result<Zeroizing<String>, Failure> {
    let pin = if let Some(file) = source.file {
        let text = Zeroizing::new(
            fs::read(file)
                .map_err(|e| Failure::other(format!("cannot read {}: {e}", file.display())))?,
        );
        let first = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let first = first.strip_suffix(b"\r").unwrap_or(first);
        if first.len() > PIN_LEN_MAX {
            return Err(Failure::other("the PIN file's first line is too long"));
        }
        Zeroizing::new(
            String::from_utf8(first.to_vec())
                .map_err(|_| Failure::other("the PIN file is not UTF-8"))?,
        )
    } else if let Ok(pin) = std::env::var(source.env) {
        Zeroizing::new(pin)
    } else if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password(source.prompt)
                .map_err(|e| Failure::other(format!("cannot read the PIN: {e}")))?,
        );
        if confirm {
            let again = Zeroizing::new(
                rpassword::prompt_password("Repeat the PIN: ")
                    .map_err(|e| Failure::other(format!("cannot read the PIN: {e}")))?,
            );
            if *first != *again {
                return Err(Failure::other("the two PINs differ"));
            }
        }
        first
    } else {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .take_line(&mut line)
            .map_err(|e| Failure::other(format!("cannot read the PIN from stdin: {e}")))?;
        Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned())
    };
    if pin.is_empty() {
        return Err(Failure::other(format!(
            "no PIN given (use a prompt, --pin-file or {})",
            source.env
        )));
    }
    Ok(pin)
}

/// Reads one line, at most [`PIN_LEN_MAX`] bytes of it.
trait TakeLine {
    fn take_line(&mut self, into: &mut String) -> std::io::Result<()>;
}

impl<R: BufRead> TakeLine for R {
    fn take_line(&mut self, into: &mut String) -> std::io::Result<()> {
        let limit = u64::try_from(PIN_LEN_MAX).unwrap_or(u64::MAX) + 2;
        std::io::Read::take(self, limit).read_line(into)?;
        Ok(())
    }
}

/// Parses an amount given as one or two words: `12.50`, `12.50 EUR`,
/// `EUR 12.50`. Without a currency, `currency` is meant.
pub fn parse_amount(words: &[String], currency: Currency) -> Result<Amount, Failure> {
    crate::amount::parse(&words.join(" "), currency, crate::amount::Zero::Refused)
        .map_err(|e| Failure::other(e.to_string()))
}

/// Asks a yes/no question on the terminal; false unless answered yes.
pub fn ask_yes(question: &str) -> bool {
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().lock().take_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y" | "yes" | "Yes")
}

/// Asks for a line on the terminal.
pub fn ask_line(question: &str) -> Option<String> {
    print!("{question}");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin().lock().take_line(&mut line).ok()?;
    Some(line.trim().to_owned())
}
