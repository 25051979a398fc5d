//! Certificates: an issuer's signed statement binding a party's id, role,
//! public keys, limits and validity period.

use mpay_money::{Amount, Currency};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};
use thiserror::Error;

use crate::{PartyId, PublicKeys, Role, SecretKeys, Signature, Suite, Timestamp, tags};

pub const CERTIFICATE_VERSION: u8 = 1;

/// What a wallet may do between two syncs with its money office (DESIGN §2.3).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Most value the wallet may hold offline.
    pub offline_balance_max: Amount,
    /// Most one payment may be.
    pub payment_max: Amount,
    /// Most days since the last sync before payees refuse the wallet.
    pub days_between_syncs_max: u16,
    /// Most payments since the last sync before payees refuse the wallet.
    pub payments_between_syncs_max: u32,
}

impl Limits {
    pub fn currency(&self) -> Currency {
        self.payment_max.currency()
    }
}

impl Encode for Limits {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.offline_balance_max)
            .put(&self.payment_max)
            .u16(self.days_between_syncs_max)
            .u32(self.payments_between_syncs_max);
    }
}

impl Decode for Limits {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let limits = Limits {
            offline_balance_max: r.get()?,
            payment_max: r.get()?,
            days_between_syncs_max: r.u16("days between syncs")?,
            payments_between_syncs_max: r.u32("payments between syncs")?,
        };
        if limits.offline_balance_max.currency() != limits.payment_max.currency() {
            return Err(DecodeError::Invalid {
                what: "limits",
                reason: "limits in two currencies",
            });
        }
        Ok(limits)
    }
}

/// The signed part of a certificate.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CertificateBody {
    pub subject: PartyId,
    pub role: Role,
    pub keys: PublicKeys,
    pub limits: Option<Limits>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub issuer: PartyId,
}

impl Encode for CertificateBody {
    fn encode(&self, w: &mut Writer) {
        w.u8(CERTIFICATE_VERSION)
            .put(&self.subject)
            .put(&self.role)
            .put(&self.keys)
            .option(&self.limits)
            .put(&self.issued_at)
            .put(&self.expires_at)
            .put(&self.issuer);
    }
}

impl Decode for CertificateBody {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("certificate version")?;
        if version != CERTIFICATE_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "certificate version",
                tag: version,
            });
        }
        Ok(CertificateBody {
            subject: r.get()?,
            role: r.get()?,
            keys: r.get()?,
            limits: r.option("limits")?,
            issued_at: r.get()?,
            expires_at: r.get()?,
            issuer: r.get()?,
        })
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Certificate {
    pub body: CertificateBody,
    pub signature: Signature,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    #[error("certificate of {subject} expired at {expires_at}")]
    Expired {
        subject: PartyId,
        expires_at: Timestamp,
    },
    #[error("certificate of {subject} is not valid before {issued_at}")]
    NotYetValid {
        subject: PartyId,
        issued_at: Timestamp,
    },
    #[error("certificate of {subject} is signed by {issuer}, which is not a trusted issuer")]
    UnknownIssuer { subject: PartyId, issuer: PartyId },
    #[error("certificate of {subject} does not carry a valid signature of its issuer")]
    BadIssuerSignature { subject: PartyId },
    #[error("certificate of {subject} is revoked")]
    Revoked { subject: PartyId },
    #[error("certificate of {subject} uses a suite this party does not accept ({suite:?})")]
    SuiteNotAccepted { subject: PartyId, suite: Suite },
    #[error("certificate of {subject} has role {role:?}, expected {expected:?}")]
    WrongRole {
        subject: PartyId,
        role: Role,
        expected: Role,
    },
}

impl Certificate {
    /// Issues a certificate: `issuer_keys` sign `body`.
    pub fn issue(body: CertificateBody, issuer_keys: &SecretKeys) -> Certificate {
        let signature = issuer_keys.sign(tags::CERTIFICATE, &[&body.to_wire()]);
        Certificate { body, signature }
    }

    pub fn subject(&self) -> PartyId {
        self.body.subject
    }

    pub fn keys(&self) -> &PublicKeys {
        &self.body.keys
    }

    /// Checks the issuer's signature and the validity period; revocation and
    /// the issuer's trust are the [`crate::TrustStore`]'s job.
    pub fn check_signed_by(
        &self,
        issuer: &PublicKeys,
        now: Timestamp,
    ) -> Result<(), CertificateError> {
        let subject = self.body.subject;
        issuer
            .verify(tags::CERTIFICATE, &[&self.body.to_wire()], &self.signature)
            .map_err(|_| CertificateError::BadIssuerSignature { subject })?;
        self.check_validity(now)
    }

    /// Checks only the validity period.
    pub fn check_validity(&self, now: Timestamp) -> Result<(), CertificateError> {
        let subject = self.body.subject;
        if now < self.body.issued_at {
            return Err(CertificateError::NotYetValid {
                subject,
                issued_at: self.body.issued_at,
            });
        }
        if now >= self.body.expires_at {
            return Err(CertificateError::Expired {
                subject,
                expires_at: self.body.expires_at,
            });
        }
        Ok(())
    }
}

impl Encode for Certificate {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.body).put(&self.signature);
    }
}

impl Decode for Certificate {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Certificate {
            body: r.get()?,
            signature: r.get()?,
        })
    }
}
