//! PIN → database key: Argon2id parameters, the key file (sidecar) that keeps
//! them with the salt, and the derivation itself.
//!
//! Sidecar layout (little-endian, [`SIDECAR_LEN`] bytes):
//!
//! | bytes | field |
//! |---|---|
//! | 0..8   | magic `MPAYKDF\0` |
//! | 8      | format version, [`SIDECAR_VERSION`] |
//! | 9..13  | Argon2id memory, KiB |
//! | 13..17 | Argon2id iterations |
//! | 17..21 | Argon2id parallelism (lanes) |
//! | 21..37 | salt, [`SALT_LEN`] random bytes |
//! | 37..45 | first 8 bytes of BLAKE3 over bytes 0..37 |
//!
//! The checksum lets a damaged key file be reported as damaged rather than as
//! a wrong PIN.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use crate::error::{SidecarProblem, StoreError};

/// Length of the random salt, bytes.
pub const SALT_LEN: usize = 16;
/// Length of the derived database key, bytes (SQLCipher's raw AES-256 key).
pub const KEY_LEN: usize = 32;

/// Smallest Argon2id memory accepted, KiB (= [`KdfParams::FAST_FOR_TESTS`]).
pub const KDF_MEMORY_KIB_MIN: u32 = 64;
/// Largest Argon2id memory accepted, KiB (1 GiB: beyond any phone's budget).
pub const KDF_MEMORY_KIB_MAX: u32 = 1024 * 1024;
/// Fewest Argon2id iterations accepted.
pub const KDF_ITERATIONS_MIN: u32 = 1;
/// Most Argon2id iterations accepted.
pub const KDF_ITERATIONS_MAX: u32 = 64;
/// Fewest Argon2id lanes accepted.
pub const KDF_PARALLELISM_MIN: u32 = 1;
/// Most Argon2id lanes accepted.
pub const KDF_PARALLELISM_MAX: u32 = 16;

/// Format version written to new sidecars.
pub const SIDECAR_VERSION: u8 = 1;
/// Exact length of a version-1 sidecar, bytes.
pub const SIDECAR_LEN: usize = 45;
const SIDECAR_MAGIC: [u8; 8] = *b"MPAYKDF\0";
const CHECKSUM_LEN: usize = 8;
const BODY_LEN: usize = SIDECAR_LEN - CHECKSUM_LEN;

/// Argon2id cost parameters.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KdfParams {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// OWASP's Argon2id recommendation: m = 19456 KiB, t = 2, p = 1.
    fn default() -> Self {
        KdfParams {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// The cheapest accepted parameters, for tests and benchmarks only: a
    /// short PIN under these costs nothing to brute-force.
    pub const FAST_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: KDF_MEMORY_KIB_MIN,
        iterations: KDF_ITERATIONS_MIN,
        parallelism: KDF_PARALLELISM_MIN,
    };

    /// Whether the parameters are inside the named limits (and Argon2 itself
    /// accepts them: at least 8 KiB of memory per lane).
    pub fn is_within_limits(&self) -> bool {
        (KDF_MEMORY_KIB_MIN..=KDF_MEMORY_KIB_MAX).contains(&self.memory_kib)
            && (KDF_ITERATIONS_MIN..=KDF_ITERATIONS_MAX).contains(&self.iterations)
            && (KDF_PARALLELISM_MIN..=KDF_PARALLELISM_MAX).contains(&self.parallelism)
            && self.argon2_params().is_ok()
    }

    fn argon2_params(&self) -> Result<Params, argon2::Error> {
        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(KEY_LEN),
        )
    }
}

/// The contents of a sidecar: everything but the PIN needed to derive the key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Sidecar {
    pub params: KdfParams,
    pub salt: [u8; SALT_LEN],
}

impl Sidecar {
    /// A sidecar with a fresh random salt.
    pub fn generate(params: KdfParams) -> Result<Sidecar, StoreError> {
        if !params.is_within_limits() {
            return Err(StoreError::KdfParamsOutOfRange { params });
        }
        let mut salt = [0u8; SALT_LEN];
        getrandom::fill(&mut salt).map_err(StoreError::Randomness)?;
        Ok(Sidecar { params, salt })
    }

    pub fn encode(&self) -> [u8; SIDECAR_LEN] {
        let mut out = [0u8; SIDECAR_LEN];
        out[0..8].copy_from_slice(&SIDECAR_MAGIC);
        out[8] = SIDECAR_VERSION;
        out[9..13].copy_from_slice(&self.params.memory_kib.to_le_bytes());
        out[13..17].copy_from_slice(&self.params.iterations.to_le_bytes());
        out[17..21].copy_from_slice(&self.params.parallelism.to_le_bytes());
        out[21..BODY_LEN].copy_from_slice(&self.salt);
        let checksum = checksum(&out[..BODY_LEN]);
        out[BODY_LEN..].copy_from_slice(&checksum);
        out
    }

    /// Decodes a sidecar; total over all inputs.
    pub fn decode(bytes: &[u8]) -> Result<Sidecar, SidecarProblem> {
        let bytes: &[u8; SIDECAR_LEN] =
            bytes.try_into().map_err(|_| SidecarProblem::WrongLength {
                found: bytes.len(),
                expected: SIDECAR_LEN,
            })?;
        let (body, sum) = bytes.split_at(BODY_LEN);
        if body[0..8] != SIDECAR_MAGIC {
            return Err(SidecarProblem::BadMagic);
        }
        if body[8] != SIDECAR_VERSION {
            return Err(SidecarProblem::UnsupportedVersion(body[8]));
        }
        if checksum(body) != sum {
            return Err(SidecarProblem::BadChecksum);
        }
        let u32_at = |at: usize| {
            let mut word = [0u8; 4];
            word.copy_from_slice(&body[at..at + 4]);
            u32::from_le_bytes(word)
        };
        let params = KdfParams {
            memory_kib: u32_at(9),
            iterations: u32_at(13),
            parallelism: u32_at(17),
        };
        if !params.is_within_limits() {
            return Err(SidecarProblem::ParamsOutOfRange(params));
        }
        let mut salt = [0u8; SALT_LEN];
        salt.copy_from_slice(&body[21..BODY_LEN]);
        Ok(Sidecar { params, salt })
    }

    /// Argon2id(PIN, salt, params) → 32-byte key.
    pub fn derive_key(&self, pin: &str) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
        let params = self
            .params
            .argon2_params()
            .map_err(|_| StoreError::KdfParamsOutOfRange {
                params: self.params,
            })?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        argon2
            .hash_password_into(pin.as_bytes(), &self.salt, key.as_mut_slice())
            .map_err(StoreError::Kdf)?;
        Ok(key)
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let hash = blake3::hash(body);
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&hash.as_bytes()[..CHECKSUM_LEN]);
    out
}

/// `x'<64 hex digits>'`: SQLCipher's raw-key literal, which skips its own
/// PBKDF2. Built at its final capacity so no reallocation leaves a copy.
pub(crate) fn raw_key_literal(key: &[u8; KEY_LEN]) -> Zeroizing<String> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut literal = Zeroizing::new(String::with_capacity(2 * KEY_LEN + 3));
    literal.push_str("x'");
    for byte in key {
        literal.push(char::from(HEX[usize::from(byte >> 4)]));
        literal.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    literal.push('\'');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Sidecar {
        Sidecar {
            params: KdfParams::default(),
            salt: *b"0123456789abcdef",
        }
    }

    #[test]
    fn sidecar_round_trips() {
        let sidecar = sample();
        assert_eq!(Sidecar::decode(&sidecar.encode()), Ok(sidecar));
    }

    #[test]
    fn default_and_fast_params_are_within_limits() {
        assert!(KdfParams::default().is_within_limits());
        assert!(KdfParams::FAST_FOR_TESTS.is_within_limits());
    }

    #[test]
    fn params_at_the_edges() {
        let fast = KdfParams::FAST_FOR_TESTS;
        let below = [
            KdfParams {
                memory_kib: KDF_MEMORY_KIB_MIN - 1,
                ..fast
            },
            KdfParams {
                iterations: KDF_ITERATIONS_MIN - 1,
                ..fast
            },
            KdfParams {
                parallelism: KDF_PARALLELISM_MIN - 1,
                ..fast
            },
            KdfParams {
                memory_kib: KDF_MEMORY_KIB_MAX + 1,
                ..fast
            },
            KdfParams {
                iterations: KDF_ITERATIONS_MAX + 1,
                ..fast
            },
            KdfParams {
                memory_kib: KDF_MEMORY_KIB_MAX,
                parallelism: KDF_PARALLELISM_MAX + 1,
                ..fast
            },
            // Argon2 needs 8 KiB per lane.
            KdfParams {
                parallelism: KDF_PARALLELISM_MAX,
                ..fast
            },
        ];
        for params in below {
            assert!(!params.is_within_limits(), "{params:?}");
            let encoded = Sidecar {
                params,
                salt: [7; SALT_LEN],
            }
            .encode();
            assert_eq!(
                Sidecar::decode(&encoded),
                Err(SidecarProblem::ParamsOutOfRange(params))
            );
            assert!(matches!(
                Sidecar::generate(params),
                Err(StoreError::KdfParamsOutOfRange { .. })
            ));
        }
        let top = KdfParams {
            memory_kib: KDF_MEMORY_KIB_MAX,
            iterations: KDF_ITERATIONS_MAX,
            parallelism: KDF_PARALLELISM_MAX,
        };
        assert!(top.is_within_limits());
    }

    #[test]
    fn each_damage_has_its_own_problem() {
        let good = sample().encode();
        assert_eq!(
            Sidecar::decode(&good[..SIDECAR_LEN - 1]),
            Err(SidecarProblem::WrongLength {
                found: SIDECAR_LEN - 1,
                expected: SIDECAR_LEN
            })
        );
        assert!(matches!(
            Sidecar::decode(&[]),
            Err(SidecarProblem::WrongLength { found: 0, .. })
        ));
        let mut bad_magic = good;
        bad_magic[0] ^= 1;
        assert_eq!(Sidecar::decode(&bad_magic), Err(SidecarProblem::BadMagic));
        let mut bad_version = good;
        bad_version[8] = 9;
        assert_eq!(
            Sidecar::decode(&bad_version),
            Err(SidecarProblem::UnsupportedVersion(9))
        );
        let mut bad_salt = good;
        bad_salt[30] ^= 0x80;
        assert_eq!(Sidecar::decode(&bad_salt), Err(SidecarProblem::BadChecksum));
    }

    #[test]
    fn raw_key_literal_is_hex() {
        let mut key = [0u8; KEY_LEN];
        key[0] = 0xab;
        key[31] = 0x01;
        let literal = raw_key_literal(&key);
        assert_eq!(literal.len(), 67);
        assert!(literal.starts_with("x'ab00"));
        assert!(literal.ends_with("0001'"));
    }

    #[test]
    fn derivation_depends_on_pin_salt_and_params() {
        let a = Sidecar {
            params: KdfParams::FAST_FOR_TESTS,
            salt: [1; SALT_LEN],
        };
        let key = a.derive_key("1234").unwrap();
        assert_eq!(key, a.derive_key("1234").unwrap());
        assert_ne!(key, a.derive_key("1235").unwrap());
        let other_salt = Sidecar {
            salt: [2; SALT_LEN],
            ..a
        };
        assert_ne!(key, other_salt.derive_key("1234").unwrap());
        let other_params = Sidecar {
            params: KdfParams {
                iterations: 2,
                ..KdfParams::FAST_FOR_TESTS
            },
            ..a
        };
        assert_ne!(key, other_params.derive_key("1234").unwrap());
    }

    proptest! {
        #[test]
        fn decode_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Sidecar::decode(&bytes);
        }

        #[test]
        fn decode_is_total_near_valid(flips in proptest::collection::vec((0..SIDECAR_LEN, any::<u8>()), 1..4)) {
            let mut bytes = sample().encode();
            for (at, value) in flips {
                bytes[at] = value;
            }
            let _ = Sidecar::decode(&bytes);
        }
    }
}
