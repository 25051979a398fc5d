//! Money: an integer count of a currency's minor units, with the currency
//! attached. Arithmetic is checked and refuses to mix currencies; there are no
//! floats anywhere near an [`Amount`].

use std::fmt;
use std::str::FromStr;

use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};
use thiserror::Error;

/// The largest magnitude, in minor units, of any amount or floor that
/// enters the system from outside (an API request, a TRANS or PR, the
/// command line): 10^15 minor units (10 trillion EUR), four orders of
/// magnitude below `i64::MAX`, so that sums of bounded amounts never
/// overflow. Checked at every boundary with [`Amount::check_bounded`].
pub const AMOUNT_MINOR_MAX: i64 = 1_000_000_000_000_000;

/// The largest magnitude, in minor units, of a ledger balance (a bank
/// account, the bank's `external` or a settlement account, an office
/// owner's balance): 100 × [`AMOUNT_MINOR_MAX`]. A movement that would take
/// an account past it is refused, so no accepted sequence of requests can
/// overflow a balance, `balance - held`, or `available - floor`.
pub const BALANCE_MINOR_MAX: i64 = 100 * AMOUNT_MINOR_MAX;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch { left: Currency, right: Currency },
    #[error("amount overflow")]
    Overflow,
    #[error("invalid currency code {0:?}: expected three upper-case letters")]
    InvalidCurrency(String),
    #[error("invalid amount {0:?}")]
    InvalidAmount(String),
    #[error("{amount} is beyond the largest amount accepted, {max} minor units")]
    OutOfBounds { amount: Amount, max: i64 },
}

/// An ISO 4217 alphabetic currency code, e.g. `EUR`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");
    pub const USD: Currency = Currency(*b"USD");
    pub const GBP: Currency = Currency(*b"GBP");
    pub const JPY: Currency = Currency(*b"JPY");

    pub fn new(code: [u8; 3]) -> Result<Self, MoneyError> {
        if code.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency(code))
        } else {
            Err(MoneyError::InvalidCurrency(
                String::from_utf8_lossy(&code).into_owned(),
            ))
        }
    }

    pub fn code(&self) -> &str {
        // The constructor admits ASCII upper-case letters only.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }

    /// Number of decimal places of the minor unit (ISO 4217 exponent).
    pub fn exponent(&self) -> u32 {
        match &self.0 {
            b"JPY" | b"KRW" | b"ISK" | b"CLP" | b"VND" | b"XOF" | b"XAF" => 0,
            b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" | b"LYD" | b"IQD" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes: [u8; 3] = s
            .as_bytes()
            .try_into()
            .map_err(|_| MoneyError::InvalidCurrency(s.to_owned()))?;
        Currency::new(bytes)
    }
}

impl Encode for Currency {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl Decode for Currency {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Currency::new(r.array("currency")?).map_err(|_| DecodeError::Invalid {
            what: "currency",
            reason: "not three upper-case letters",
        })
    }
}

/// A signed amount of money in minor units (cents for EUR). Ledger balances
/// may be negative (a settlement account); payments are positive.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Amount {
    currency: Currency,
    minor_units: i64,
}

impl Amount {
    pub const fn new(minor_units: i64, currency: Currency) -> Self {
        Amount {
            currency,
            minor_units,
        }
    }

    pub const fn zero(currency: Currency) -> Self {
        Amount::new(0, currency)
    }

    pub fn minor_units(&self) -> i64 {
        self.minor_units
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    pub fn is_positive(&self) -> bool {
        self.minor_units > 0
    }

    pub fn is_negative(&self) -> bool {
        self.minor_units < 0
    }

    pub fn is_zero(&self) -> bool {
        self.minor_units == 0
    }

    /// Fails unless `|self| ≤ max` minor units.
    pub fn check_within(&self, max: i64) -> Result<(), MoneyError> {
        if self.minor_units.unsigned_abs() <= max.unsigned_abs() {
            Ok(())
        } else {
            Err(MoneyError::OutOfBounds { amount: *self, max })
        }
    }

    /// Fails unless `|self| ≤` [`AMOUNT_MINOR_MAX`]: the check every amount
    /// and floor from outside passes.
    pub fn check_bounded(&self) -> Result<(), MoneyError> {
        self.check_within(AMOUNT_MINOR_MAX)
    }

    fn same_currency(&self, other: &Amount) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }

    pub fn checked_add(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(&other)?;
        let minor_units = self
            .minor_units
            .checked_add(other.minor_units)
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor_units, self.currency))
    }

    pub fn checked_sub(self, other: Amount) -> Result<Amount, MoneyError> {
        self.same_currency(&other)?;
        let minor_units = self
            .minor_units
            .checked_sub(other.minor_units)
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor_units, self.currency))
    }

    pub fn checked_neg(self) -> Result<Amount, MoneyError> {
        let minor_units = self.minor_units.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(minor_units, self.currency))
    }

    /// Compares two amounts of the same currency.
    pub fn checked_cmp(&self, other: &Amount) -> Result<std::cmp::Ordering, MoneyError> {
        self.same_currency(other)?;
        Ok(self.minor_units.cmp(&other.minor_units))
    }

    /// Sums amounts of one currency; an empty sum is zero in `currency`.
    pub fn checked_sum<'a>(
        currency: Currency,
        amounts: impl IntoIterator<Item = &'a Amount>,
    ) -> Result<Amount, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Amount::zero(currency), |sum, a| sum.checked_add(*a))
    }

    /// Parses `"12.34 EUR"`, `"12 EUR"` or `"EUR 12.34"`, with at most the
    /// currency's number of decimal places.
    pub fn parse(text: &str) -> Result<Amount, MoneyError> {
        let invalid = || MoneyError::InvalidAmount(text.to_owned());
        let parts: Vec<&str> = text.split_whitespace().collect();
        let (number, code) = match parts.as_slice() {
            [n, c] if c.chars().all(|ch| ch.is_ascii_alphabetic()) => (*n, *c),
            [c, n] if c.chars().all(|ch| ch.is_ascii_alphabetic()) => (*n, *c),
            _ => return Err(invalid()),
        };
        let currency: Currency = code.parse()?;
        Amount::parse_in(number, currency).map_err(|_| invalid())
    }

    /// Parses a decimal number such as `"12.34"` in `currency`.
    pub fn parse_in(number: &str, currency: Currency) -> Result<Amount, MoneyError> {
        let invalid = || MoneyError::InvalidAmount(number.to_owned());
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let exponent = currency.exponent();
        let places = u32::try_from(fraction.len()).map_err(|_| invalid())?;
        if whole.is_empty()
            || places > exponent
            || !whole.bytes().all(|b| b.is_ascii_digit())
            || !fraction.bytes().all(|b| b.is_ascii_digit())
            || (digits.contains('.') && fraction.is_empty())
        {
            return Err(invalid());
        }
        let scale = 10i64.pow(exponent);
        let whole: i64 = whole.parse().map_err(|_| invalid())?;
        let fraction_value: i64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse::<i64>().map_err(|_| invalid())? * 10i64.pow(exponent - places)
        };
        let magnitude = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(fraction_value))
            .ok_or(MoneyError::Overflow)?;
        Ok(Amount::new(
            if negative { -magnitude } else { magnitude },
            currency,
        ))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exponent = self.currency.exponent();
        let sign = if self.minor_units < 0 { "-" } else { "" };
        let magnitude = self.minor_units.unsigned_abs();
        if exponent == 0 {
            return write!(f, "{sign}{magnitude} {}", self.currency);
        }
        let scale = 10u64.pow(exponent);
        let width = usize::try_from(exponent).unwrap_or(2);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            magnitude / scale,
            magnitude % scale,
            self.currency
        )
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Encode for Amount {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.currency).i64(self.minor_units);
    }
}

impl Decode for Amount {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let currency = r.get()?;
        let minor_units = r.i64("amount")?;
        Ok(Amount::new(minor_units, currency))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn eur(minor: i64) -> Amount {
        Amount::new(minor, Currency::EUR)
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(eur(150).checked_add(eur(50)), Ok(eur(200)));
        assert_eq!(eur(i64::MAX).checked_add(eur(1)), Err(MoneyError::Overflow));
        assert_eq!(eur(i64::MIN).checked_sub(eur(1)), Err(MoneyError::Overflow));
        assert!(matches!(
            eur(1).checked_add(Amount::new(1, Currency::USD)),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn amounts_from_outside_are_bounded_far_below_overflow() {
        assert_eq!(eur(AMOUNT_MINOR_MAX).check_bounded(), Ok(()));
        assert_eq!(eur(-AMOUNT_MINOR_MAX).check_bounded(), Ok(()));
        assert!(matches!(
            eur(AMOUNT_MINOR_MAX + 1).check_bounded(),
            Err(MoneyError::OutOfBounds { .. })
        ));
        assert!(eur(i64::MIN).check_bounded().is_err());
        assert!(eur(i64::MAX).check_bounded().is_err());
        // A balance at its bound minus a floor and a hold at theirs fits
        // an i64 many times over.
        let worst = i128::from(BALANCE_MINOR_MAX)
            + i128::from(BALANCE_MINOR_MAX)
            + i128::from(AMOUNT_MINOR_MAX);
        assert!(worst * 16 < i128::from(i64::MAX));
    }

    #[test]
    fn parses_and_displays_with_the_currency_exponent() {
        assert_eq!(Amount::parse("12.34 EUR"), Ok(eur(1234)));
        assert_eq!(Amount::parse("EUR 12.3"), Ok(eur(1230)));
        assert_eq!(Amount::parse("7 EUR"), Ok(eur(700)));
        assert_eq!(
            Amount::parse("500 JPY"),
            Ok(Amount::new(500, Currency::JPY))
        );
        assert_eq!(eur(1234).to_string(), "12.34 EUR");
        assert_eq!(eur(-5).to_string(), "-0.05 EUR");
        assert_eq!(
            Amount::new(1500, Currency::new(*b"BHD").unwrap()).to_string(),
            "1.500 BHD"
        );
        for bad in [
            "1.234 EUR",
            "12 eur",
            "12..3 EUR",
            "abc EUR",
            ".5 EUR",
            "5. EUR",
            "12",
        ] {
            assert!(Amount::parse(bad).is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn currency_must_be_upper_case_letters() {
        assert!(Currency::from_str("EU1").is_err());
        assert!(Currency::decode(&mut Reader::new(b"eur")).is_err());
    }

    proptest! {
        #[test]
        fn wire_round_trip(minor in any::<i64>()) {
            let a = eur(minor);
            prop_assert_eq!(Amount::from_wire(&a.to_wire()), Ok(a));
        }

        #[test]
        fn display_parse_round_trip(minor in -1_000_000_000_000i64..1_000_000_000_000) {
            let a = eur(minor);
            prop_assert_eq!(Amount::parse(&a.to_string()), Ok(a));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
            let _ = Amount::from_wire(&bytes);
        }
    }
}
