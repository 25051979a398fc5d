//! The one amount syntax of every command that takes an amount: `12.50`
//! (in the currency the configuration gives: the wallet's, the network's,
//! the office's), `12.50 EUR` or `EUR 12.50`, with at most the currency's
//! decimal places. Bounded: at most [`AMOUNT_MAX_UNITS`] whole units.

use mpay_money::{Amount, Currency};

/// The largest amount a command accepts, in whole units of the currency
/// (far above any limit of the system, far below an overflow).
pub const AMOUNT_MAX_UNITS: i64 = 1_000_000_000;

/// What is wrong with an amount a person typed (their input, their fault).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    #[error("amount {text:?}: write it like `12.50` or `12.50 {currency}`")]
    Syntax { text: String, currency: Currency },
    #[error("amount {text:?}: this is in {currency}, not {given}")]
    Currency {
        text: String,
        currency: Currency,
        given: Currency,
    },
    #[error("amount {text:?}: must be more than zero")]
    NotPositive { text: String },
    #[error("amount {text:?}: must not be negative")]
    Negative { text: String },
    #[error("amount {text:?}: more than {AMOUNT_MAX_UNITS} {currency}")]
    TooLarge { text: String, currency: Currency },
}

/// Whether zero is a valid amount (an empty deposit) or not (a payment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zero {
    Allowed,
    Refused,
}

/// Parses `text` as an amount in `currency`.
pub fn parse(text: &str, currency: Currency, zero: Zero) -> Result<Amount, AmountError> {
    let trimmed = text.trim();
    let syntax = || AmountError::Syntax {
        text: trimmed.to_owned(),
        currency,
    };
    let amount = if trimmed.split_whitespace().count() == 1 {
        Amount::parse_in(trimmed, currency)
    } else {
        Amount::parse(trimmed)
    }
    .map_err(|_| syntax())?;
    if amount.currency() != currency {
        return Err(AmountError::Currency {
            text: trimmed.to_owned(),
            currency,
            given: amount.currency(),
        });
    }
    if amount.minor_units() < 0 {
        return Err(AmountError::Negative {
            text: trimmed.to_owned(),
        });
    }
    if amount.is_zero() && zero == Zero::Refused {
        return Err(AmountError::NotPositive {
            text: trimmed.to_owned(),
        });
    }
    let max = 10i64
        .checked_pow(currency.exponent())
        .and_then(|scale| scale.checked_mul(AMOUNT_MAX_UNITS));
    if max.is_none_or(|max| amount.minor_units() > max) {
        return Err(AmountError::TooLarge {
            text: trimmed.to_owned(),
            currency,
        });
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        "EUR".parse().unwrap_or_else(|e| panic!("EUR: {e}"))
    }

    #[test]
    fn one_syntax_with_or_without_the_currency() {
        let five = Amount::new(500, eur());
        for text in ["5.00", "5", "5.0", "5.00 EUR", "EUR 5.00", " 5.00  EUR "] {
            assert_eq!(parse(text, eur(), Zero::Refused), Ok(five), "{text}");
        }
    }

    #[test]
    fn wrong_amounts_are_refused_with_the_reason() {
        let refused = |text: &str, zero| parse(text, eur(), zero).map_err(|e| e.to_string());
        assert_eq!(
            refused("5.001", Zero::Refused),
            Err("amount \"5.001\": write it like `12.50` or `12.50 EUR`".to_owned())
        );
        assert_eq!(
            refused("5.00 USD", Zero::Refused),
            Err("amount \"5.00 USD\": this is in EUR, not USD".to_owned())
        );
        assert_eq!(
            refused("0.00", Zero::Refused),
            Err("amount \"0.00\": must be more than zero".to_owned())
        );
        assert_eq!(
            refused("-1.00", Zero::Allowed),
            Err("amount \"-1.00\": must not be negative".to_owned())
        );
        assert_eq!(
            refused("1000000000.01", Zero::Allowed),
            Err("amount \"1000000000.01\": more than 1000000000 EUR".to_owned())
        );
        assert!(refused("99999999999999999999", Zero::Allowed).is_err());
        assert!(refused("", Zero::Allowed).is_err());
        assert!(refused("five", Zero::Allowed).is_err());
        assert_eq!(parse("0.00", eur(), Zero::Allowed), Ok(Amount::zero(eur())));
        assert_eq!(
            parse("1000000000", eur(), Zero::Allowed),
            Ok(Amount::new(100_000_000_000, eur()))
        );
    }
}
