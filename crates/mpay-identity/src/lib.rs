//! Who is who: party ids, roles, key pairs, certificates, revocation lists,
//! and the two signature-and-sealing suites behind one interface.
//!
//! Nothing here reads a clock or a global RNG: time comes in as a
//! [`Timestamp`] and randomness from an RNG the caller passes.

mod certificate;
mod revocation;
mod suite;
mod trust;

pub use certificate::{Certificate, CertificateBody, CertificateError, Limits};
pub use revocation::{RevocationEntry, RevocationList, RevocationReason};
pub use suite::{
    CryptoError, PublicKeys, SEALED_OVERHEAD, SIGNATURE_LEN, SecretKeys, Signature, Suite,
};
pub use trust::{RevocationUpdate, TrustStore, VERIFIED_CERTIFICATES_MAX};

use std::fmt;

use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer, wire_enum};

/// Domain-separation tags: every signature covers one of these first, so a
/// signature made for one purpose can never be passed off as another.
pub mod tags {
    pub const CERTIFICATE: &[u8] = b"mpay/v1/certificate\0";
    pub const REVOCATION_LIST: &[u8] = b"mpay/v1/revocation-list\0";
    pub const ENVELOPE: &[u8] = b"mpay/v1/envelope\0";
    pub const CHAIN_ENTRY: &[u8] = b"mpay/v1/chain-entry\0";
    pub const CHARGE_VOUCHER: &[u8] = b"mpay/v1/charge-voucher\0";
    pub const SYNC_ATTESTATION: &[u8] = b"mpay/v1/sync-attestation\0";
    pub const RESOLUTION: &[u8] = b"mpay/v1/resolution\0";
    pub const ENROLMENT: &[u8] = b"mpay/v1/enrolment\0";
    pub const HPKE_INFO: &[u8] = b"mpay/v1/hpke";
}

/// A party's unique id: 16 bytes chosen by its issuer.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PartyId(pub [u8; 16]);

impl PartyId {
    /// The receiver id of a one-hop broadcast (LOOKUP).
    pub const BROADCAST: PartyId = PartyId([0; 16]);

    pub fn random(rng: &mut impl rand_core::Rng) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        // Never hand out the broadcast id.
        id[0] |= 0x01;
        PartyId(id)
    }

    /// Deterministic id for tests and simulations.
    pub fn from_u64(n: u64) -> Self {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&n.to_be_bytes());
        id[15] = 0x01;
        PartyId(id)
    }

    pub fn to_hex(&self) -> String {
        hex_string(&self.0)
    }

    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = hex_bytes(text)?;
        Some(PartyId(bytes.try_into().ok()?))
    }

    /// Eight hex digits, for people: the first four bytes, or the last four
    /// when the first are zero.
    pub fn short(&self) -> String {
        if self.0[..4] == [0; 4] {
            hex_string(&self.0[4..8])
        } else {
            hex_string(&self.0[..4])
        }
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PartyId({})", self.short())
    }
}

impl Encode for PartyId {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl Decode for PartyId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PartyId(r.array("party id")?))
    }
}

pub fn hex_string(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

pub fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

wire_enum! {
    /// What a party is; a certificate binds it.
    pub enum Role: "role" {
        Wallet = 1,
        MoneyOffice = 2,
        SchemeRoot = 3,
        Bank = 4,
        Cpp = 5,
        Mpp = 6,
        DataCenter = 7,
        Merchant = 8,
        Customer = 9,
    }
}

/// Milliseconds since the Unix epoch. The only notion of time in core code;
/// drivers read the clock and pass it in.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Debug)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn as_millis(self) -> u64 {
        self.0
    }
    pub fn saturating_add_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
    pub fn saturating_sub_ms(self, ms: u64) -> Timestamp {
        Timestamp(self.0.saturating_sub(ms))
    }
    /// Milliseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn millis_since(self, earlier: Timestamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ms", self.0)
    }
}

impl Encode for Timestamp {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.0);
    }
}

impl Decode for Timestamp {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Timestamp(r.u64("timestamp")?))
    }
}

pub const MILLIS_PER_DAY: u64 = 24 * 60 * 60 * 1000;
