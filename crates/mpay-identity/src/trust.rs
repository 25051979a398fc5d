//! What a party trusts: its issuers' certificates (the trust anchors), the
//! newest revocation list of each, and which suites it accepts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use mpay_wire::Encode;

use crate::{
    Certificate, CertificateError, CryptoError, PartyId, RevocationList, Role, Suite, Timestamp,
};

/// Most certificates whose issuer signature is remembered as checked.
pub const VERIFIED_CERTIFICATES_MAX: usize = 4096;

#[derive(Debug, Default)]
pub struct TrustStore {
    issuers: HashMap<PartyId, Certificate>,
    revocations: HashMap<PartyId, RevocationList>,
    accept_simulation_suite: bool,
    /// BLAKE3 hashes of certificates whose issuer signature verified, so a
    /// peer's certificate costs one signature check, not one per message.
    /// Validity period and revocation are still checked every time.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Clone for TrustStore {
    fn clone(&self) -> Self {
        TrustStore {
            issuers: self.issuers.clone(),
            revocations: self.revocations.clone(),
            accept_simulation_suite: self.accept_simulation_suite,
            verified: Mutex::default(),
        }
    }
}

/// What became of an offered revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationUpdate {
    Installed { version: u64 },
    AlreadyCurrent { version: u64 },
}

impl TrustStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that also accepts [`Suite::SimulationOnly`]: for the simulator
    /// and nowhere else.
    pub fn for_simulation() -> Self {
        TrustStore {
            accept_simulation_suite: true,
            ..Self::default()
        }
    }

    pub fn accepts(&self, suite: Suite) -> bool {
        match suite {
            Suite::Ed25519X25519 => true,
            Suite::SimulationOnly => self.accept_simulation_suite,
        }
    }

    /// Trusts `issuer` to certify others.
    pub fn add_issuer(&mut self, issuer: Certificate) {
        self.issuers.insert(issuer.subject(), issuer);
        self.verified
            .get_mut()
            .map(|v| v.clear())
            .unwrap_or_default();
    }

    pub fn issuer(&self, id: &PartyId) -> Option<&Certificate> {
        self.issuers.get(id)
    }

    pub fn revocation_list(&self, issuer: &PartyId) -> Option<&RevocationList> {
        self.revocations.get(issuer)
    }

    pub fn revocation_lists(&self) -> impl Iterator<Item = &RevocationList> {
        self.revocations.values()
    }

    /// Installs `list` if its issuer is trusted, its signature holds and it is
    /// newer than the one held.
    pub fn install_revocation_list(
        &mut self,
        list: RevocationList,
    ) -> Result<RevocationUpdate, CryptoError> {
        let issuer = self
            .issuers
            .get(&list.issuer)
            .ok_or(CryptoError::BadSignature)?;
        list.verify(issuer.keys())?;
        match self.revocations.get(&list.issuer) {
            Some(held) if held.version >= list.version => Ok(RevocationUpdate::AlreadyCurrent {
                version: held.version,
            }),
            _ => {
                let version = list.version;
                self.revocations.insert(list.issuer, list);
                Ok(RevocationUpdate::Installed { version })
            }
        }
    }

    pub fn is_revoked(&self, subject: &PartyId) -> bool {
        self.revocations.values().any(|l| l.is_revoked(subject))
    }

    /// Checks that `cert` was issued by a trusted issuer, is in its validity
    /// period, uses an accepted suite, and is not revoked.
    pub fn check(&self, cert: &Certificate, now: Timestamp) -> Result<(), CertificateError> {
        let subject = cert.subject();
        if !self.accepts(cert.keys().suite) {
            return Err(CertificateError::SuiteNotAccepted {
                subject,
                suite: cert.keys().suite,
            });
        }
        let issuer =
            self.issuers
                .get(&cert.body.issuer)
                .ok_or(CertificateError::UnknownIssuer {
                    subject,
                    issuer: cert.body.issuer,
                })?;
        let hash = *blake3::hash(&cert.to_wire()).as_bytes();
        let known = self
            .verified
            .lock()
            .map(|v| v.contains(&hash))
            .unwrap_or(false);
        if known {
            cert.check_validity(now)?;
        } else {
            cert.check_signed_by(issuer.keys(), now)?;
            if let Ok(mut verified) = self.verified.lock() {
                if verified.len() >= VERIFIED_CERTIFICATES_MAX {
                    verified.clear();
                }
                verified.insert(hash);
            }
        }
        if self.is_revoked(&subject) {
            return Err(CertificateError::Revoked { subject });
        }
        Ok(())
    }

    /// [`TrustStore::check`], and that the certificate has `role`.
    pub fn check_role(
        &self,
        cert: &Certificate,
        role: Role,
        now: Timestamp,
    ) -> Result<(), CertificateError> {
        self.check(cert, now)?;
        if cert.body.role != role {
            return Err(CertificateError::WrongRole {
                subject: cert.subject(),
                role: cert.body.role,
                expected: role,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CertificateBody, Limits, RevocationEntry, RevocationReason, SecretKeys, Suite};
    use mpay_money::{Amount, Currency};
    use mpay_wire::{Decode, Encode};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn setup() -> (TrustStore, SecretKeys, Certificate, Certificate) {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let office_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let office_id = PartyId::from_u64(1);
        let office_cert = Certificate::issue(
            CertificateBody {
                subject: office_id,
                role: Role::MoneyOffice,
                keys: office_keys.public(),
                limits: None,
                issued_at: Timestamp(0),
                expires_at: Timestamp(1_000_000),
                issuer: office_id,
            },
            &office_keys,
        );
        let wallet_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let wallet_cert = Certificate::issue(
            CertificateBody {
                subject: PartyId::from_u64(2),
                role: Role::Wallet,
                keys: wallet_keys.public(),
                limits: Some(Limits {
                    offline_balance_max: Amount::new(50_000, Currency::EUR),
                    payment_max: Amount::new(10_000, Currency::EUR),
                    days_between_syncs_max: 7,
                    payments_between_syncs_max: 100,
                }),
                issued_at: Timestamp(100),
                expires_at: Timestamp(500_000),
                issuer: office_id,
            },
            &office_keys,
        );
        let mut trust = TrustStore::new();
        trust.add_issuer(office_cert.clone());
        (trust, office_keys, office_cert, wallet_cert)
    }

    #[test]
    fn certificate_checks() {
        let (trust, office_keys, _, wallet) = setup();
        trust
            .check_role(&wallet, Role::Wallet, Timestamp(1000))
            .unwrap();
        assert!(matches!(
            trust.check_role(&wallet, Role::Cpp, Timestamp(1000)),
            Err(CertificateError::WrongRole { .. })
        ));
        assert!(matches!(
            trust.check(&wallet, Timestamp(500_000)),
            Err(CertificateError::Expired { .. })
        ));
        assert!(matches!(
            trust.check(&wallet, Timestamp(99)),
            Err(CertificateError::NotYetValid { .. })
        ));
        let mut forged = wallet.clone();
        forged.body.expires_at = Timestamp(u64::MAX);
        assert!(matches!(
            trust.check(&forged, Timestamp(1000)),
            Err(CertificateError::BadIssuerSignature { .. })
        ));
        assert!(matches!(
            TrustStore::new().check(&wallet, Timestamp(1000)),
            Err(CertificateError::UnknownIssuer { .. })
        ));
        let _ = office_keys;
        assert_eq!(Certificate::from_wire(&wallet.to_wire()), Ok(wallet));
    }

    #[test]
    fn revocation_lists_are_signed_versioned_and_monotonic() {
        let (mut trust, office_keys, office_cert, wallet) = setup();
        let entry = RevocationEntry {
            subject: wallet.subject(),
            reason: RevocationReason::DoubleSpend,
            revoked_at: Timestamp(2000),
        };
        let v2 = RevocationList::issue(
            office_cert.subject(),
            2,
            Timestamp(2000),
            vec![entry],
            &office_keys,
        );
        assert_eq!(RevocationList::from_wire(&v2.to_wire()), Ok(v2.clone()));
        assert_eq!(
            trust.install_revocation_list(v2.clone()),
            Ok(RevocationUpdate::Installed { version: 2 })
        );
        assert!(matches!(
            trust.check(&wallet, Timestamp(3000)),
            Err(CertificateError::Revoked { .. })
        ));
        let v1 = RevocationList::issue(
            office_cert.subject(),
            1,
            Timestamp(1000),
            vec![],
            &office_keys,
        );
        assert_eq!(
            trust.install_revocation_list(v1),
            Ok(RevocationUpdate::AlreadyCurrent { version: 2 })
        );
        assert!(trust.is_revoked(&wallet.subject()));
        let mut forged = RevocationList::issue(
            office_cert.subject(),
            3,
            Timestamp(1000),
            vec![],
            &office_keys,
        );
        forged.version = 4;
        assert_eq!(
            trust.install_revocation_list(forged),
            Err(CryptoError::BadSignature)
        );
        assert!(trust.is_revoked(&wallet.subject()));
    }

    #[test]
    fn simulation_suite_is_refused_by_default() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let keys = SecretKeys::generate(Suite::SimulationOnly, &mut rng);
        let id = PartyId::from_u64(5);
        let cert = Certificate::issue(
            CertificateBody {
                subject: id,
                role: Role::MoneyOffice,
                keys: keys.public(),
                limits: None,
                issued_at: Timestamp(0),
                expires_at: Timestamp(10),
                issuer: id,
            },
            &keys,
        );
        let mut trust = TrustStore::new();
        trust.add_issuer(cert.clone());
        assert!(matches!(
            trust.check(&cert, Timestamp(1)),
            Err(CertificateError::SuiteNotAccepted { .. })
        ));
        let mut sim = TrustStore::for_simulation();
        sim.add_issuer(cert.clone());
        sim.check(&cert, Timestamp(1)).unwrap();
    }
}
