//! [`Signed`]: a body and its author's signature over `tag ‖ body`.

use mpay_identity::{Certificate, PartyId, Role, SecretKeys, Signature, Timestamp, TrustStore};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

use crate::SemopsError;

/// A body type that its author signs. Implemented by every SEMOPS object
/// that travels further than one hop.
pub trait Signable: Encode + Decode + Clone {
    /// Domain-separation tag the signature starts with.
    const TAG: &'static [u8];
    /// Role the signer's certificate must have.
    const SIGNER_ROLE: Role;
    /// Name in errors ("TRANS", "PN", …).
    const WHAT: &'static str;
    /// The party that must have signed this body.
    fn signer(&self) -> PartyId;
    /// Field checks (limits, positive amounts); run on decode and at signing.
    fn validate(&self) -> Result<(), DecodeError>;
    /// Time checks at verification (expiry); none by default.
    fn check_at(&self, _now: Timestamp) -> Result<(), SemopsError> {
        Ok(())
    }
}

/// A body and its signer's signature over `T::TAG ‖ body`. Only made by
/// [`Signed::sign`], [`Signed::from_parts`] or decoding, all of which check
/// the body's fields; the signature is checked by [`Signed::verify`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Signed<T> {
    body: T,
    signature: Signature,
}

impl<T: Signable> Signed<T> {
    /// Signs `body` with the signer's keys. Fails on a body with invalid
    /// fields (a local error).
    pub fn sign(body: T, keys: &SecretKeys) -> Result<Self, SemopsError> {
        body.validate().map_err(SemopsError::InvalidField)?;
        let signature = keys.sign(T::TAG, &[&body.to_wire()]);
        Ok(Signed { body, signature })
    }

    /// Reassembles a signed object (e.g. from storage); the signature is not
    /// checked until [`Signed::verify`].
    pub fn from_parts(body: T, signature: Signature) -> Result<Self, SemopsError> {
        body.validate().map_err(SemopsError::InvalidField)?;
        Ok(Signed { body, signature })
    }

    /// The body and the signature, e.g. to store them apart.
    pub fn into_parts(self) -> (T, Signature) {
        (self.body, self.signature)
    }

    /// The body before verification: only to route the object or find the
    /// signer's certificate. Never act on it.
    pub fn unverified_body(&self) -> &T {
        &self.body
    }

    /// The signer's signature over `T::TAG ‖ body`.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The party the body names as its signer.
    pub fn signer(&self) -> PartyId {
        self.body.signer()
    }

    /// Checks that `signer_cert` is the named signer's, has the right role
    /// and is within its validity period, that the signature holds, and the
    /// body's time checks (an expired TRANS is refused). Whether the
    /// certificate's issuer is trusted and the certificate not revoked is
    /// [`Signed::verify_trusted`]'s job (or the caller's, with a
    /// [`TrustStore`]). Returns the verified body.
    pub fn verify(&self, signer_cert: &Certificate, now: Timestamp) -> Result<&T, SemopsError> {
        self.verify_signature(signer_cert, now)?;
        self.body.check_at(now)?;
        Ok(&self.body)
    }

    /// [`Signed::verify`] without the body's time rule, for an object that
    /// reaches this party inside a relay whose signer checked that rule when
    /// it accepted the object (the MPP checks a merchant's decision or
    /// refund request on arrival; its outbox may deliver the relay later).
    /// The relay itself is verified with [`Signed::verify`], and what the
    /// receiver does with the object must be idempotent.
    pub fn verify_relayed(
        &self,
        signer_cert: &Certificate,
        now: Timestamp,
    ) -> Result<&T, SemopsError> {
        self.verify_signature(signer_cert, now)?;
        Ok(&self.body)
    }

    fn verify_signature(
        &self,
        signer_cert: &Certificate,
        now: Timestamp,
    ) -> Result<(), SemopsError> {
        let expected = self.body.signer();
        if signer_cert.subject() != expected {
            return Err(SemopsError::WrongSigner {
                what: T::WHAT,
                expected,
                got: signer_cert.subject(),
            });
        }
        if signer_cert.body.role != T::SIGNER_ROLE {
            return Err(SemopsError::WrongRole {
                what: T::WHAT,
                expected: T::SIGNER_ROLE,
                got: signer_cert.body.role,
            });
        }
        signer_cert.check_validity(now)?;
        signer_cert
            .keys()
            .verify(T::TAG, &[&self.body.to_wire()], &self.signature)
            .map_err(|_| SemopsError::BadSignature { what: T::WHAT })?;
        Ok(())
    }

    /// [`Signed::verify`], after checking the certificate against `trust`
    /// (trusted issuer, accepted suite, not revoked).
    pub fn verify_trusted(
        &self,
        signer_cert: &Certificate,
        trust: &TrustStore,
        now: Timestamp,
    ) -> Result<&T, SemopsError> {
        trust.check(signer_cert, now)?;
        self.verify(signer_cert, now)
    }
}

impl<T: Signable> Encode for Signed<T> {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.body).put(&self.signature);
    }
}

impl<T: Signable> Decode for Signed<T> {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let body: T = r.get()?;
        body.validate()?;
        Ok(Signed {
            body,
            signature: r.get()?,
        })
    }
}
