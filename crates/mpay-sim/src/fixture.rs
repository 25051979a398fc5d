//! A money office and wallets issued by it, for simulations, benchmarks and
//! tests: the same certificates a real office issues, from a seeded RNG.

use mpay_identity::{
    Certificate, CertificateBody, Limits, MILLIS_PER_DAY, PartyId, Role, SecretKeys, Suite,
    Timestamp,
};
use mpay_money::Amount;
use mpay_offline::chain::ChargeVoucher;
use mpay_offline::chain::GENESIS_PREV_HASH;
use mpay_offline::durable::WriteBatch;
use mpay_offline::sync::SyncAttestation;
use mpay_offline::{RecoverError, Wallet};
use rand_core::CryptoRng;

/// How long fixture certificates are valid.
pub const FIXTURE_VALIDITY_MS: u64 = 365 * MILLIS_PER_DAY;

pub struct Office {
    pub id: PartyId,
    pub keys: SecretKeys,
    pub certificate: Certificate,
    pub suite: Suite,
    pub since: Timestamp,
}

/// A wallet's keys and certificate, and its genesis batch.
pub struct Issued {
    pub id: PartyId,
    pub keys: SecretKeys,
    pub certificate: Certificate,
    pub genesis: WriteBatch,
}

impl Office {
    pub fn new(suite: Suite, since: Timestamp, rng: &mut impl CryptoRng) -> Office {
        let id = PartyId::from_u64(1_000_000);
        let keys = SecretKeys::generate(suite, rng);
        let certificate = Certificate::issue(
            CertificateBody {
                subject: id,
                role: Role::MoneyOffice,
                keys: keys.public(),
                limits: None,
                issued_at: since.saturating_sub_ms(1_000),
                expires_at: since.saturating_add_ms(FIXTURE_VALIDITY_MS),
                issuer: id,
            },
            &keys,
        );
        Office {
            id,
            keys,
            certificate,
            suite,
            since,
        }
    }

    /// Issues wallet `id` with `limits`; returns its keys, certificate and
    /// genesis batch.
    pub fn issue_wallet(
        &self,
        id: PartyId,
        limits: Limits,
        rng: &mut impl CryptoRng,
    ) -> Result<Issued, RecoverError> {
        let keys = SecretKeys::generate(self.suite, rng);
        let certificate = Certificate::issue(
            CertificateBody {
                subject: id,
                role: Role::Wallet,
                keys: keys.public(),
                limits: Some(limits),
                issued_at: self.since.saturating_sub_ms(1_000),
                expires_at: self.since.saturating_add_ms(FIXTURE_VALIDITY_MS),
                issuer: self.id,
            },
            &self.keys,
        );
        let attestation = self.enrollment_attestation(id, limits.currency());
        let genesis = Wallet::genesis(
            &keys,
            &certificate,
            &self.certificate,
            &attestation,
            self.since,
        )?;
        Ok(Issued {
            id,
            keys,
            certificate,
            genesis,
        })
    }

    /// The attestation a wallet gets at enrollment: nothing synced yet.
    pub fn enrollment_attestation(
        &self,
        wallet: PartyId,
        currency: mpay_money::Currency,
    ) -> SyncAttestation {
        SyncAttestation::issue(
            self.id,
            &self.keys,
            wallet,
            0,
            GENESIS_PREV_HASH,
            Amount::zero(currency),
            self.since,
        )
    }

    pub fn voucher(
        &self,
        wallet: PartyId,
        amount: Amount,
        now: Timestamp,
        rng: &mut impl CryptoRng,
    ) -> ChargeVoucher {
        let mut charge_id = [0u8; 16];
        rng.fill_bytes(&mut charge_id);
        ChargeVoucher::issue(self.id, &self.keys, wallet, charge_id, amount, now)
    }
}
