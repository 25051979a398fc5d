//! When a signed request was made and until when it may be acted on, inside
//! the signed bytes (DESIGN §3.2): a request captured on the way cannot be
//! replayed later, whatever the receiver remembers.

use mpay_identity::Timestamp;
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

use crate::SemopsError;

/// Longest a signed request may be valid (`expires_at - signed_at`): ten
/// minutes. A request that claims longer is refused on decode, so no signer
/// can make one that stays replayable for long.
pub const REQUEST_LIFETIME_MAX_MS: u64 = 10 * 60 * 1000;
/// What the services' own signers give a request: five minutes.
pub const REQUEST_LIFETIME_DEFAULT_MS: u64 = 5 * 60 * 1000;
/// How far a request's signing time may be ahead of the receiver's clock:
/// two minutes, as the envelope allows (`mpay_envelope::CLOCK_SKEW_MAX_MS`).
pub const REQUEST_CLOCK_SKEW_MAX_MS: u64 = 2 * 60 * 1000;

/// A signed request's time window: made at `signed_at`, refused at or after
/// `expires_at`. Wire: `ts signed_at ‖ ts expires_at`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Validity {
    /// When the signer made the request (its clock).
    pub signed_at: Timestamp,
    /// Not to be acted on at or after this instant; after `signed_at`, at
    /// most [`REQUEST_LIFETIME_MAX_MS`] later.
    pub expires_at: Timestamp,
}

impl Validity {
    /// A request signed `now`, valid for `lifetime_ms` (capped at
    /// [`REQUEST_LIFETIME_MAX_MS`], at least 1 ms).
    pub fn starting(now: Timestamp, lifetime_ms: u64) -> Validity {
        Validity {
            signed_at: now,
            expires_at: now.saturating_add_ms(lifetime_ms.clamp(1, REQUEST_LIFETIME_MAX_MS)),
        }
    }

    /// The field rule, checked on decode and at signing: the window is not
    /// empty and not longer than [`REQUEST_LIFETIME_MAX_MS`].
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.expires_at <= self.signed_at {
            return Err(DecodeError::Invalid {
                what: "request validity",
                reason: "expires before it was signed",
            });
        }
        if self.expires_at.millis_since(self.signed_at) > REQUEST_LIFETIME_MAX_MS {
            return Err(DecodeError::Invalid {
                what: "request validity",
                reason: "longer than the lifetime limit",
            });
        }
        Ok(())
    }

    /// The receiver's rule at `now`: refused at or after `expires_at`
    /// ([`SemopsError::Expired`]), or when signed more than
    /// [`REQUEST_CLOCK_SKEW_MAX_MS`] in the receiver's future
    /// ([`SemopsError::NotYetValid`]).
    pub fn check(&self, what: &'static str, now: Timestamp) -> Result<(), SemopsError> {
        if now >= self.expires_at {
            return Err(SemopsError::Expired {
                what,
                expires_at: self.expires_at,
                now,
            });
        }
        if self.signed_at > now.saturating_add_ms(REQUEST_CLOCK_SKEW_MAX_MS) {
            return Err(SemopsError::NotYetValid {
                what,
                signed_at: self.signed_at,
                now,
            });
        }
        Ok(())
    }
}

impl Encode for Validity {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.signed_at).put(&self.expires_at);
    }
}

impl Decode for Validity {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let validity = Validity {
            signed_at: r.get()?,
            expires_at: r.get()?,
        };
        validity.validate()?;
        Ok(validity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_checked_at_its_edges() {
        let v = Validity::starting(Timestamp(1_000_000), REQUEST_LIFETIME_DEFAULT_MS);
        assert_eq!(
            v.expires_at,
            Timestamp(1_000_000 + REQUEST_LIFETIME_DEFAULT_MS)
        );
        assert!(v.check("x", Timestamp(1_000_000)).is_ok());
        assert!(v.check("x", v.expires_at.saturating_sub_ms(1)).is_ok());
        assert!(matches!(
            v.check("x", v.expires_at),
            Err(SemopsError::Expired { .. })
        ));
        // Signed up to the skew in the receiver's future: accepted; 1 ms more: not.
        let early = Timestamp(1_000_000 - REQUEST_CLOCK_SKEW_MAX_MS);
        assert!(v.check("x", early).is_ok());
        assert!(matches!(
            v.check("x", early.saturating_sub_ms(1)),
            Err(SemopsError::NotYetValid { .. })
        ));
    }

    #[test]
    fn a_window_empty_or_longer_than_the_limit_does_not_decode() {
        let at = Timestamp(5_000);
        let longest = Validity {
            signed_at: at,
            expires_at: at.saturating_add_ms(REQUEST_LIFETIME_MAX_MS),
        };
        assert_eq!(Validity::from_wire(&longest.to_wire()), Ok(longest));
        let too_long = Validity {
            expires_at: longest.expires_at.saturating_add_ms(1),
            ..longest
        };
        assert!(Validity::from_wire(&too_long.to_wire()).is_err());
        let empty = Validity {
            signed_at: at,
            expires_at: at,
        };
        assert!(Validity::from_wire(&empty.to_wire()).is_err());
        // The constructor caps the lifetime.
        assert_eq!(Validity::starting(at, u64::MAX), longest);
        assert!(Validity::starting(at, 0).validate().is_ok());
    }
}
