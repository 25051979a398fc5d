//! The owner's profile (paper 000, conclusion: "a user's payment
//! information, a digital certification to identify the user, and shipping
//! information"): kept in the encrypted store like everything else, under
//! the meta key [`PROFILE_META`], never in the plain settings file.
//!
//! Encoding (docs/wire-format.md §8): version `u8` (1), then four optional
//! texts (`0` absent, or `1` ‖ `u16` length ‖ UTF-8), payment, certificate,
//! shipping, billing, each at most its named maximum. Decoding is total.

use mpay_wire::{DecodeError, Reader, Writer};

use crate::WalletError;

/// Meta key of the profile in the store. The engine ignores meta keys it
/// does not know.
pub const PROFILE_META: &str = "profile";
/// Version of the encoding written.
const PROFILE_VERSION: u8 = 1;
/// Longest payment information, shipping or billing details, bytes.
pub const PROFILE_TEXT_LEN_MAX: usize = 2_048;
/// Longest owner's certificate (PEM or any text form), bytes.
pub const PROFILE_CERTIFICATE_LEN_MAX: usize = 16_384;

/// What the owner keeps in the wallet about themselves.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// How the owner pays (an account, a card reference, …).
    pub payment: Option<String>,
    /// The owner's identity certificate.
    pub certificate: Option<String>,
    /// Where goods go.
    pub shipping: Option<String>,
    /// Where invoices go.
    pub billing: Option<String>,
}

/// Shows which fields are set, never their contents.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("payment", &self.payment.is_some())
            .field("certificate", &self.certificate.is_some())
            .field("shipping", &self.shipping.is_some())
            .field("billing", &self.billing.is_some())
            .finish()
    }
}

impl Profile {
    fn fields(&self) -> [(&'static str, &Option<String>, usize); 4] {
        [
            ("payment", &self.payment, PROFILE_TEXT_LEN_MAX),
            (
                "certificate",
                &self.certificate,
                PROFILE_CERTIFICATE_LEN_MAX,
            ),
            ("shipping", &self.shipping, PROFILE_TEXT_LEN_MAX),
            ("billing", &self.billing, PROFILE_TEXT_LEN_MAX),
        ]
    }

    /// Refuses a field over its maximum.
    pub fn check(&self) -> Result<(), WalletError> {
        for (name, value, max) in self.fields() {
            if value.as_ref().is_some_and(|v| v.len() > max) {
                return Err(WalletError::other(format!(
                    "the profile's {name} is longer than {max} bytes"
                )));
            }
        }
        Ok(())
    }

    /// The stored form; the profile must have passed [`Profile::check`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PROFILE_VERSION);
        for (_, value, _) in self.fields() {
            match value {
                None => w.u8(0),
                Some(text) => w.u8(1).text(text),
            };
        }
        w.into_bytes()
    }

    /// Decodes the stored form: any bytes give a profile or an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Profile, DecodeError> {
        let mut r = Reader::new(bytes);
        let version = r.u8("profile version")?;
        if version != PROFILE_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "profile version",
                tag: version,
            });
        }
        let mut field = |what: &'static str, max: usize| -> Result<Option<String>, DecodeError> {
            match r.u8(what)? {
                0 => Ok(None),
                1 => Ok(Some(r.text(what, max)?)),
                tag => Err(DecodeError::UnknownTag { what, tag }),
            }
        };
        let profile = Profile {
            payment: field("profile payment", PROFILE_TEXT_LEN_MAX)?,
            certificate: field("profile certificate", PROFILE_CERTIFICATE_LEN_MAX)?,
            shipping: field("profile shipping", PROFILE_TEXT_LEN_MAX)?,
            billing: field("profile billing", PROFILE_TEXT_LEN_MAX)?,
        };
        r.finish()?;
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Profile {
        Profile {
            payment: Some("IBAN DE02 1203 0000 0000 2020 51".into()),
            certificate: Some(
                "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----".into(),
            ),
            shipping: Some("Erin Example, 1 Main St, Springfield".into()),
            billing: None,
        }
    }

    #[test]
    fn a_profile_round_trips_and_its_encoding_is_fixed() {
        let empty = Profile::default();
        assert_eq!(empty.to_bytes(), vec![1, 0, 0, 0, 0]);
        let one = Profile {
            shipping: Some("A".into()),
            ..Profile::default()
        };
        assert_eq!(one.to_bytes(), vec![1, 0, 0, 1, 0, 1, b'A', 0]);
        for p in [empty, one, full()] {
            assert_eq!(Profile::from_bytes(&p.to_bytes()), Ok(p));
        }
    }

    #[test]
    fn decoding_is_total() {
        let bytes = full().to_bytes();
        for cut in 0..bytes.len() {
            assert!(Profile::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Profile::from_bytes(&longer).is_err());
        assert!(Profile::from_bytes(&[2, 0, 0, 0, 0]).is_err());
        assert!(Profile::from_bytes(&[1, 7, 0, 0, 0]).is_err());
        // A text over its maximum is refused by the decoder too.
        let mut w = Writer::new();
        w.u8(1).u8(1).text(&"x".repeat(PROFILE_TEXT_LEN_MAX + 1));
        w.u8(0).u8(0).u8(0);
        assert!(Profile::from_bytes(w.as_bytes()).is_err());
    }

    #[test]
    fn fields_are_bounded_and_debug_shows_no_contents() {
        let mut p = full();
        assert!(p.check().is_ok());
        p.shipping = Some("x".repeat(PROFILE_TEXT_LEN_MAX + 1));
        assert!(p.check().is_err());
        let shown = format!("{:?}", full());
        assert!(
            !shown.contains("Main St") && !shown.contains("IBAN"),
            "{shown}"
        );
    }
}
