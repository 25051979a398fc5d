//! Signed, versioned revocation lists. A higher version replaces a lower one;
//! each list is complete, so a party needs only the newest.

use mpay_wire::{Decode, DecodeError, Encode, LIST_LEN_MAX, Reader, Writer, wire_enum};

use crate::{CryptoError, PartyId, PublicKeys, SecretKeys, Signature, Timestamp, tags};

wire_enum! {
    pub enum RevocationReason: "revocation reason" {
        /// A fraud proof names the holder: it spent the same value twice.
        DoubleSpend = 1,
        /// The holder reported the device or key lost.
        KeyCompromised = 2,
        /// The holder closed the wallet.
        Retired = 3,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RevocationEntry {
    pub subject: PartyId,
    pub reason: RevocationReason,
    pub revoked_at: Timestamp,
}

impl Encode for RevocationEntry {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.subject).put(&self.reason).put(&self.revoked_at);
    }
}

impl Decode for RevocationEntry {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(RevocationEntry {
            subject: r.get()?,
            reason: r.get()?,
            revoked_at: r.get()?,
        })
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RevocationList {
    pub issuer: PartyId,
    pub version: u64,
    pub issued_at: Timestamp,
    /// Sorted by subject, no duplicates.
    pub entries: Vec<RevocationEntry>,
    pub signature: Signature,
}

impl RevocationList {
    fn signed_bytes(
        issuer: PartyId,
        version: u64,
        issued_at: Timestamp,
        entries: &[RevocationEntry],
    ) -> Vec<u8> {
        let mut w = Writer::new();
        w.put(&issuer).u64(version).put(&issued_at).list(entries);
        w.into_bytes()
    }

    pub fn issue(
        issuer: PartyId,
        version: u64,
        issued_at: Timestamp,
        mut entries: Vec<RevocationEntry>,
        keys: &SecretKeys,
    ) -> Self {
        entries.sort_by_key(|e| e.subject);
        entries.dedup_by_key(|e| e.subject);
        let bytes = Self::signed_bytes(issuer, version, issued_at, &entries);
        let signature = keys.sign(tags::REVOCATION_LIST, &[&bytes]);
        RevocationList {
            issuer,
            version,
            issued_at,
            entries,
            signature,
        }
    }

    pub fn verify(&self, issuer_keys: &PublicKeys) -> Result<(), CryptoError> {
        let bytes = Self::signed_bytes(self.issuer, self.version, self.issued_at, &self.entries);
        issuer_keys.verify(tags::REVOCATION_LIST, &[&bytes], &self.signature)
    }

    pub fn is_revoked(&self, subject: &PartyId) -> bool {
        self.entries
            .binary_search_by_key(subject, |e| e.subject)
            .is_ok()
    }
}

impl Encode for RevocationList {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.issuer)
            .u64(self.version)
            .put(&self.issued_at)
            .list(&self.entries)
            .put(&self.signature);
    }
}

impl Decode for RevocationList {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let list = RevocationList {
            issuer: r.get()?,
            version: r.u64("revocation list version")?,
            issued_at: r.get()?,
            entries: r.list("revocation entries", LIST_LEN_MAX)?,
            signature: r.get()?,
        };
        if !list.entries.windows(2).all(|w| w[0].subject < w[1].subject) {
            return Err(DecodeError::Invalid {
                what: "revocation list",
                reason: "entries not sorted by subject",
            });
        }
        Ok(list)
    }
}
