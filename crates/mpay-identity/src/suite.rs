//! The cryptographic suites. [`Suite::Ed25519X25519`] is the only one a
//! production party accepts. [`Suite::SimulationOnly`] is a fast keyed-hash
//! stand-in that gives no security at all; it exists so the simulator can run
//! tens of thousands of seeds, and every verifier refuses it unless told
//! explicitly that it is inside a simulation.

use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer, wire_enum};
use rand_core::CryptoRng;
use thiserror::Error;
use zeroize::Zeroizing;

type HpkeKem = hpke::kem::X25519HkdfSha256;
type HpkeKdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::ChaCha20Poly1305;

pub const SIGNATURE_LEN: usize = 64;
/// Bytes a seal adds: the 32-byte encapsulated key and the 16-byte AEAD tag.
pub const SEALED_OVERHEAD: usize = 32 + 16;

wire_enum! {
    /// Signature and sealing algorithms, named in every header and certificate.
    pub enum Suite: "suite" {
        /// Ed25519 signatures; HPKE base mode, DHKEM(X25519, HKDF-SHA256),
        /// HKDF-SHA256, ChaCha20-Poly1305 (RFC 9180 ids 0x0020, 0x0001, 0x0003).
        Ed25519X25519 = 1,
        /// Insecure keyed hashes for the deterministic simulator only.
        SimulationOnly = 0xF0,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("signature does not verify")]
    BadSignature,
    #[error("sealed message does not open: tampered with, or not sealed to this key")]
    SealBroken,
    #[error("public key is not a valid {0} key")]
    BadPublicKey(&'static str),
    #[error("keys of suite {0:?} used with suite {1:?}")]
    SuiteMismatch(Suite, Suite),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; SIGNATURE_LEN]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({}…)", crate::hex_string(&self.0[..6]))
    }
}

impl Encode for Signature {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl Decode for Signature {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Signature(r.array("signature")?))
    }
}

/// A party's two public keys: one to check its signatures, one to seal to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PublicKeys {
    pub suite: Suite,
    pub signing: [u8; 32],
    pub sealing: [u8; 32],
}

impl Encode for PublicKeys {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.suite).raw(&self.signing).raw(&self.sealing);
    }
}

impl Decode for PublicKeys {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(PublicKeys {
            suite: r.get()?,
            signing: r.array("signing key")?,
            sealing: r.array("sealing key")?,
        })
    }
}

enum SecretInner {
    Real {
        signing: Box<ed25519_dalek::SigningKey>,
        sealing: <HpkeKem as hpke::Kem>::PrivateKey,
    },
    Simulation {
        signing: Zeroizing<[u8; 32]>,
        sealing: Zeroizing<[u8; 32]>,
    },
}

/// A party's two secret keys. Never printed, never encoded except by
/// [`SecretKeys::to_secret_bytes`] for the encrypted wallet store.
pub struct SecretKeys {
    inner: SecretInner,
    public: PublicKeys,
}

impl std::fmt::Debug for SecretKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKeys({:?}, <secret>)", self.public.suite)
    }
}

fn sim_public(secret: &[u8; 32], purpose: &str) -> [u8; 32] {
    blake3::derive_key(purpose, secret)
}

const SIM_SIGNING: &str = "mpay simulation-only signing key";
const SIM_SEALING: &str = "mpay simulation-only sealing key";

impl SecretKeys {
    pub fn generate(suite: Suite, rng: &mut impl CryptoRng) -> Self {
        let mut seed = Zeroizing::new([0u8; 64]);
        rng.fill_bytes(&mut seed[..]);
        Self::from_seed(suite, &seed)
    }

    fn from_seed(suite: Suite, seed: &[u8; 64]) -> Self {
        let mut signing_seed = Zeroizing::new([0u8; 32]);
        let mut sealing_seed = Zeroizing::new([0u8; 32]);
        signing_seed.copy_from_slice(&seed[..32]);
        sealing_seed.copy_from_slice(&seed[32..]);
        match suite {
            Suite::Ed25519X25519 => {
                let signing = ed25519_dalek::SigningKey::from_bytes(&signing_seed);
                let (sealing, sealing_public) = HpkeKem::derive_keypair(&sealing_seed[..]);
                let public = PublicKeys {
                    suite,
                    signing: signing.verifying_key().to_bytes(),
                    sealing: sealing_public.to_bytes().into(),
                };
                SecretKeys {
                    inner: SecretInner::Real {
                        signing: Box::new(signing),
                        sealing,
                    },
                    public,
                }
            }
            Suite::SimulationOnly => {
                let public = PublicKeys {
                    suite,
                    signing: sim_public(&signing_seed, SIM_SIGNING),
                    sealing: sim_public(&sealing_seed, SIM_SEALING),
                };
                SecretKeys {
                    inner: SecretInner::Simulation {
                        signing: signing_seed,
                        sealing: sealing_seed,
                    },
                    public,
                }
            }
        }
    }

    /// The 65-byte secret form (suite byte, then the 64-byte seed) for storage
    /// inside an encrypted store only.
    pub fn to_secret_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(65));
        out.push(self.public.suite.tag());
        match &self.inner {
            SecretInner::Real { signing, sealing } => {
                out.extend_from_slice(&signing.to_bytes());
                out.extend_from_slice(&sealing.to_bytes());
            }
            SecretInner::Simulation { signing, sealing } => {
                out.extend_from_slice(&signing[..]);
                out.extend_from_slice(&sealing[..]);
            }
        }
        out
    }

    pub fn from_secret_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let invalid = DecodeError::Invalid {
            what: "secret keys",
            reason: "expected a suite byte and 64 key bytes",
        };
        let (&tag, rest) = bytes.split_first().ok_or(invalid.clone())?;
        let suite = Suite::from_tag(tag).ok_or(DecodeError::UnknownTag { what: "suite", tag })?;
        let rest: &[u8; 64] = rest.try_into().map_err(|_| invalid)?;
        match suite {
            Suite::Ed25519X25519 => {
                let mut signing_seed = Zeroizing::new([0u8; 32]);
                signing_seed.copy_from_slice(&rest[..32]);
                let signing = ed25519_dalek::SigningKey::from_bytes(&signing_seed);
                let sealing =
                    <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(&rest[32..]).map_err(|_| {
                        DecodeError::Invalid {
                            what: "secret keys",
                            reason: "not an X25519 secret",
                        }
                    })?;
                let public = PublicKeys {
                    suite,
                    signing: signing.verifying_key().to_bytes(),
                    sealing: HpkeKem::sk_to_pk(&sealing).to_bytes().into(),
                };
                Ok(SecretKeys {
                    inner: SecretInner::Real {
                        signing: Box::new(signing),
                        sealing,
                    },
                    public,
                })
            }
            Suite::SimulationOnly => Ok(Self::from_seed(suite, rest)),
        }
    }

    pub fn public(&self) -> PublicKeys {
        self.public
    }

    pub fn suite(&self) -> Suite {
        self.public.suite
    }

    /// Signs `tag ‖ parts…`.
    pub fn sign(&self, tag: &[u8], parts: &[&[u8]]) -> Signature {
        match &self.inner {
            SecretInner::Real { signing, .. } => {
                use ed25519_dalek::Signer;
                let message = concat(tag, parts);
                Signature(signing.sign(&message).to_bytes())
            }
            SecretInner::Simulation { .. } => sim_sign(&self.public.signing, tag, parts),
        }
    }

    /// Opens what [`PublicKeys::seal`] sealed to this party.
    pub fn open(
        &self,
        info: &[u8],
        aad: &[u8],
        encapsulated: &[u8; 32],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        match &self.inner {
            SecretInner::Real { sealing, .. } => {
                let encapped = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(encapsulated)
                    .map_err(|_| CryptoError::SealBroken)?;
                hpke::single_shot_open::<HpkeAead, HpkeKdf, HpkeKem>(
                    &OpModeR::Base,
                    sealing,
                    &encapped,
                    info,
                    ciphertext,
                    aad,
                )
                .map_err(|_| CryptoError::SealBroken)
            }
            SecretInner::Simulation { .. } => {
                sim_open(&self.public.sealing, info, aad, encapsulated, ciphertext)
            }
        }
    }
}

fn concat(tag: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let len = tag.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut message = Vec::with_capacity(len);
    message.extend_from_slice(tag);
    for part in parts {
        message.extend_from_slice(part);
    }
    message
}

fn sim_sign(signing_public: &[u8; 32], tag: &[u8], parts: &[&[u8]]) -> Signature {
    let mut hasher = blake3::Hasher::new_keyed(signing_public);
    hasher.update(tag);
    for part in parts {
        hasher.update(part);
    }
    let mut sig = [0u8; SIGNATURE_LEN];
    hasher.finalize_xof().fill(&mut sig);
    Signature(sig)
}

fn sim_keystream_key(sealing_public: &[u8; 32], info: &[u8], encapsulated: &[u8; 32]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("mpay simulation-only seal");
    hasher.update(sealing_public);
    hasher.update(info);
    hasher.update(encapsulated);
    *hasher.finalize().as_bytes()
}

fn sim_tag(key: &[u8; 32], aad: &[u8], body: &[u8]) -> [u8; 16] {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&(aad.len() as u64).to_be_bytes());
    hasher.update(aad);
    hasher.update(body);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    tag
}

fn sim_xor(key: &[u8; 32], data: &mut [u8]) {
    let mut stream = vec![0u8; data.len()];
    blake3::Hasher::new_keyed(key)
        .finalize_xof()
        .fill(&mut stream);
    for (d, s) in data.iter_mut().zip(stream) {
        *d ^= s;
    }
}

fn sim_open(
    sealing_public: &[u8; 32],
    info: &[u8],
    aad: &[u8],
    encapsulated: &[u8; 32],
    ciphertext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let split = ciphertext
        .len()
        .checked_sub(16)
        .ok_or(CryptoError::SealBroken)?;
    let (body, tag) = ciphertext.split_at(split);
    let key = sim_keystream_key(sealing_public, info, encapsulated);
    if sim_tag(&key, aad, body) != tag {
        return Err(CryptoError::SealBroken);
    }
    let mut plaintext = body.to_vec();
    sim_xor(&key, &mut plaintext);
    Ok(plaintext)
}

impl PublicKeys {
    /// Checks a signature over `tag ‖ parts…` (strict Ed25519: no malleable
    /// or small-order encodings).
    pub fn verify(&self, tag: &[u8], parts: &[&[u8]], sig: &Signature) -> Result<(), CryptoError> {
        match self.suite {
            Suite::Ed25519X25519 => {
                let key = ed25519_dalek::VerifyingKey::from_bytes(&self.signing)
                    .map_err(|_| CryptoError::BadPublicKey("Ed25519"))?;
                let message = concat(tag, parts);
                let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
                key.verify_strict(&message, &sig)
                    .map_err(|_| CryptoError::BadSignature)
            }
            Suite::SimulationOnly => {
                if sim_sign(&self.signing, tag, parts) == *sig {
                    Ok(())
                } else {
                    Err(CryptoError::BadSignature)
                }
            }
        }
    }

    /// Seals `plaintext` to this party (HPKE base mode, single shot); returns
    /// the encapsulated key and the ciphertext with its tag.
    pub fn seal(
        &self,
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<([u8; 32], Vec<u8>), CryptoError> {
        match self.suite {
            Suite::Ed25519X25519 => {
                let public = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&self.sealing)
                    .map_err(|_| CryptoError::BadPublicKey("X25519"))?;
                let (encapped, ciphertext) = hpke::single_shot_seal_with_rng::<
                    HpkeAead,
                    HpkeKdf,
                    HpkeKem,
                >(
                    &OpModeS::Base, &public, info, plaintext, aad, rng
                )
                .map_err(|_| CryptoError::BadPublicKey("X25519"))?;
                let encapsulated: [u8; 32] = encapped.to_bytes().into();
                Ok((encapsulated, ciphertext))
            }
            Suite::SimulationOnly => {
                let mut encapsulated = [0u8; 32];
                rng.fill_bytes(&mut encapsulated);
                let key = sim_keystream_key(&self.sealing, info, &encapsulated);
                let mut body = plaintext.to_vec();
                sim_xor(&key, &mut body);
                let tag = sim_tag(&key, aad, &body);
                body.extend_from_slice(&tag);
                Ok((encapsulated, body))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn sign_seal_open_verify_for_both_suites() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        for suite in [Suite::Ed25519X25519, Suite::SimulationOnly] {
            let alice = SecretKeys::generate(suite, &mut rng);
            let bob = SecretKeys::generate(suite, &mut rng);
            let sig = alice.sign(b"tag", &[b"hello", b" world"]);
            alice
                .public()
                .verify(b"tag", &[b"hello world"], &sig)
                .unwrap();
            assert_eq!(
                alice.public().verify(b"tag2", &[b"hello world"], &sig),
                Err(CryptoError::BadSignature)
            );
            assert_eq!(
                bob.public().verify(b"tag", &[b"hello world"], &sig),
                Err(CryptoError::BadSignature)
            );
            let (enc, ct) = bob
                .public()
                .seal(b"info", b"aad", b"secret", &mut rng)
                .unwrap();
            assert_eq!(bob.open(b"info", b"aad", &enc, &ct).unwrap(), b"secret");
            assert_eq!(
                bob.open(b"info", b"aaX", &enc, &ct),
                Err(CryptoError::SealBroken)
            );
            assert_eq!(
                alice.open(b"info", b"aad", &enc, &ct),
                Err(CryptoError::SealBroken)
            );
        }
    }

    #[test]
    fn secret_bytes_round_trip() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        for suite in [Suite::Ed25519X25519, Suite::SimulationOnly] {
            let keys = SecretKeys::generate(suite, &mut rng);
            let again = SecretKeys::from_secret_bytes(&keys.to_secret_bytes()).unwrap();
            assert_eq!(keys.public(), again.public());
        }
        assert!(SecretKeys::from_secret_bytes(&[1, 2, 3]).is_err());
    }
}
