//! Who a bank is: its keys and its certificate (role `Bank`), issued by a
//! scheme root (DESIGN §1). [`SchemeRoot`] is here for tests and for the
//! launcher that plays the scheme on one machine; in production the root's
//! key lives elsewhere and only [`issue_bank_certificate`]'s result reaches
//! the bank.

use mpay_identity::{
    Certificate, CertificateBody, CertificateError, MILLIS_PER_DAY, PartyId, PublicKeys, Role,
    SecretKeys, Suite, Timestamp,
};
use rand_core::CryptoRng;

/// How long a bank certificate issued by [`SchemeRoot::issue_bank_certificate`] is valid.
pub const BANK_CERTIFICATE_VALIDITY_MS_DEFAULT: u64 = 365 * MILLIS_PER_DAY;
/// How long a generated scheme root's own certificate is valid.
pub const SCHEME_ROOT_VALIDITY_MS_DEFAULT: u64 = 10 * 365 * MILLIS_PER_DAY;
/// How far back a fresh certificate's validity starts (clocks disagree).
pub const CERTIFICATE_BACKDATE_MS: u64 = 60_000;

/// A bank identity or a scheme root that does not hang together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The certificate carries other public keys than the secret keys'.
    #[error("the certificate does not carry these keys")]
    KeysMismatch,
    /// The certificate is not of the expected role.
    #[error("the certificate has role {found:?}, expected {expected:?}")]
    WrongRole {
        /// Its role.
        found: Role,
        /// The one needed.
        expected: Role,
    },
    /// The certificate's signature or validity failed.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
}

/// Issues a bank certificate for `bank` with `keys`, signed by the scheme
/// root `root_id` with `root_keys`, valid from a minute before `now` for
/// `validity_ms`.
pub fn issue_bank_certificate(
    root_keys: &SecretKeys,
    root_id: PartyId,
    bank: PartyId,
    keys: PublicKeys,
    now: Timestamp,
    validity_ms: u64,
) -> Certificate {
    Certificate::issue(
        CertificateBody {
            subject: bank,
            role: Role::Bank,
            keys,
            limits: None,
            issued_at: now.saturating_sub_ms(CERTIFICATE_BACKDATE_MS),
            expires_at: now.saturating_add_ms(validity_ms),
            issuer: root_id,
        },
        root_keys,
    )
}

/// A scheme root: the self-certified issuer of processors', data centers'
/// and banks' certificates.
#[derive(Debug)]
pub struct SchemeRoot {
    keys: SecretKeys,
    certificate: Certificate,
}

impl SchemeRoot {
    /// A new root with fresh keys and a self-signed certificate.
    pub fn generate(rng: &mut impl CryptoRng, now: Timestamp) -> SchemeRoot {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, rng);
        let id = PartyId::random(rng);
        let certificate = Certificate::issue(
            CertificateBody {
                subject: id,
                role: Role::SchemeRoot,
                keys: keys.public(),
                limits: None,
                issued_at: now.saturating_sub_ms(CERTIFICATE_BACKDATE_MS),
                expires_at: now.saturating_add_ms(SCHEME_ROOT_VALIDITY_MS_DEFAULT),
                issuer: id,
            },
            &keys,
        );
        SchemeRoot { keys, certificate }
    }

    /// A root from stored keys and its self-signed certificate.
    pub fn from_parts(
        keys: SecretKeys,
        certificate: Certificate,
        now: Timestamp,
    ) -> Result<SchemeRoot, IdentityError> {
        check_certificate(&keys, &certificate, Role::SchemeRoot)?;
        certificate.check_signed_by(&keys.public(), now)?;
        Ok(SchemeRoot { keys, certificate })
    }

    /// The root's id.
    pub fn id(&self) -> PartyId {
        self.certificate.subject()
    }

    /// The root's certificate: what banks and processors trust.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// Issues a bank certificate (see [`issue_bank_certificate`]).
    pub fn issue_bank_certificate(
        &self,
        bank: PartyId,
        keys: PublicKeys,
        now: Timestamp,
        validity_ms: u64,
    ) -> Certificate {
        issue_bank_certificate(&self.keys, self.id(), bank, keys, now, validity_ms)
    }
}

fn check_certificate(
    keys: &SecretKeys,
    certificate: &Certificate,
    role: Role,
) -> Result<(), IdentityError> {
    if *certificate.keys() != keys.public() {
        return Err(IdentityError::KeysMismatch);
    }
    if certificate.body.role != role {
        return Err(IdentityError::WrongRole {
            found: certificate.body.role,
            expected: role,
        });
    }
    Ok(())
}

/// A bank's keys and its certificate.
#[derive(Debug)]
pub struct BankIdentity {
    keys: SecretKeys,
    certificate: Certificate,
}

impl BankIdentity {
    /// A new bank: fresh keys, a random id, and a certificate from `root`
    /// valid for [`BANK_CERTIFICATE_VALIDITY_MS_DEFAULT`].
    pub fn generate(root: &SchemeRoot, rng: &mut impl CryptoRng, now: Timestamp) -> BankIdentity {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, rng);
        let id = PartyId::random(rng);
        let certificate = root.issue_bank_certificate(
            id,
            keys.public(),
            now,
            BANK_CERTIFICATE_VALIDITY_MS_DEFAULT,
        );
        BankIdentity { keys, certificate }
    }

    /// An identity from keys and the certificate issued for them (role `Bank`).
    pub fn new(keys: SecretKeys, certificate: Certificate) -> Result<BankIdentity, IdentityError> {
        check_certificate(&keys, &certificate, Role::Bank)?;
        Ok(BankIdentity { keys, certificate })
    }

    /// The bank's party id.
    pub fn id(&self) -> PartyId {
        self.certificate.subject()
    }

    /// Its secret keys.
    pub fn keys(&self) -> &SecretKeys {
        &self.keys
    }

    /// Its certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub(crate) fn into_parts(self) -> (SecretKeys, Certificate) {
        (self.keys, self.certificate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpay_identity::TrustStore;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn bank_certificates_are_trusted_under_their_root() {
        let now = Timestamp(1_767_225_600_000);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let root = SchemeRoot::generate(&mut rng, now);
        let bank = BankIdentity::generate(&root, &mut rng, now);
        let mut trust = TrustStore::new();
        trust.add_issuer(root.certificate().clone());
        assert_eq!(
            trust.check_role(bank.certificate(), Role::Bank, now),
            Ok(())
        );
        let other_root = SchemeRoot::generate(&mut rng, now);
        let stranger = BankIdentity::generate(&other_root, &mut rng, now);
        assert!(trust.check(stranger.certificate(), now).is_err());
        // Keys and certificate must belong together.
        let (keys, _) = bank.into_parts();
        assert_eq!(
            BankIdentity::new(keys, stranger.certificate().clone()).err(),
            Some(IdentityError::KeysMismatch)
        );
    }
}
