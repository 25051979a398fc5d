//! The customer's PIN as card issuers check it (DESIGN §3.2 step 2): a
//! keyed PIN verification value (PVV), a MAC of the customer and the PIN
//! under a key the CPP keeps apart from its database. Checking one costs a
//! hash of a few dozen bytes; what protects a PIN of a million values is the
//! [`PinGuard`](crate::PinGuard)'s lockout and the key's separation (a
//! stolen database without the key gives up nothing), not a slow hash.
//!
//! Customers enrolled before PVVs have an Argon2id [`PinHash`]; their next
//! right PIN is answered with a PVV under the current key to store in its
//! place ([`PinCheck::Right::renew`]). The same happens to a PVV made under
//! a key that has since been replaced, so a key rotation completes as
//! customers pay.

use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};
use zeroize::Zeroizing;

use crate::pin::{Pin, PinHash, constant_time_eq};

/// Length of a PIN key.
pub const PIN_KEY_LEN: usize = 32;
/// Length of a PIN key's id.
pub const PIN_KEY_ID_LEN: usize = 8;
/// Length of a PIN verification value's MAC.
pub const PVV_LEN: usize = 32;
/// Most PIN keys a CPP holds: the current one and those it replaced.
pub const PIN_KEYS_MAX: usize = 8;

/// The tag of a [`StoredPin::Pvv`] on the wire (an Argon2id [`PinHash`] is
/// stored untagged: it is [`PIN_HASH_WIRE_LEN`] bytes, a PVV is not).
const PVV_TAG: u8 = 1;
/// Length of an encoded [`PinHash`].
pub const PIN_HASH_WIRE_LEN: usize = 16 + 3 * 4 + 32;

/// The id of a [`PinKey`]: a hash of it, stored beside each PVV so the CPP
/// knows which key made it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PinKeyId(pub [u8; PIN_KEY_ID_LEN]);

/// A PIN verification key. Never printed; zeroized on drop.
#[derive(Clone)]
pub struct PinKey {
    id: PinKeyId,
    secret: Zeroizing<[u8; PIN_KEY_LEN]>,
}

impl std::fmt::Debug for PinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinKey({:?}, <secret>)", self.id)
    }
}

impl PinKey {
    /// The key with these secret bytes (chosen at random by the caller).
    pub fn new(secret: [u8; PIN_KEY_LEN]) -> PinKey {
        let digest = blake3::derive_key("mpay/v1/pin key id", &secret);
        let mut id = [0u8; PIN_KEY_ID_LEN];
        id.copy_from_slice(&digest[..PIN_KEY_ID_LEN]);
        PinKey {
            id: PinKeyId(id),
            secret: Zeroizing::new(secret),
        }
    }

    /// Its id.
    pub fn id(&self) -> PinKeyId {
        self.id
    }

    /// The secret bytes, for writing the key file. Do not log.
    pub fn expose(&self) -> &[u8; PIN_KEY_LEN] {
        &self.secret
    }

    /// The PVV of `customer`'s `pin` under this key: keyed BLAKE3 of a
    /// context string and the two, each length-prefixed.
    pub fn pvv(&self, customer: &str, pin: &Pin) -> Pvv {
        Pvv {
            key: self.id,
            mac: self.mac(customer, pin),
        }
    }

    fn mac(&self, customer: &str, pin: &Pin) -> [u8; PVV_LEN] {
        let mut hasher = blake3::Hasher::new_keyed(&self.secret);
        hasher.update(b"mpay/v1/pvv\0");
        for part in [customer.as_bytes(), pin.expose().as_bytes()] {
            hasher.update(&u64::try_from(part.len()).unwrap_or(u64::MAX).to_be_bytes());
            hasher.update(part);
        }
        *hasher.finalize().as_bytes()
    }
}

/// Why a set of PIN keys was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinKeysError {
    /// No key at all.
    #[error("no PIN key")]
    Empty,
    /// More than [`PIN_KEYS_MAX`] keys.
    #[error("more than {PIN_KEYS_MAX} PIN keys; drop the oldest")]
    TooMany,
    /// The same key twice (or two keys with one id).
    #[error("the same PIN key appears twice")]
    Duplicate,
}

/// A CPP's PIN keys: the current key, which makes every new PVV, then the
/// keys it replaced, newest first, still accepted for PVVs made under them.
#[derive(Clone, Debug)]
pub struct PinKeys {
    keys: Vec<PinKey>,
}

impl PinKeys {
    /// `keys[0]` is current. At least one, at most [`PIN_KEYS_MAX`], no
    /// two alike.
    pub fn new(keys: Vec<PinKey>) -> Result<PinKeys, PinKeysError> {
        if keys.is_empty() {
            return Err(PinKeysError::Empty);
        }
        if keys.len() > PIN_KEYS_MAX {
            return Err(PinKeysError::TooMany);
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.id == key.id) {
                return Err(PinKeysError::Duplicate);
            }
        }
        Ok(PinKeys { keys })
    }

    /// The key every new PVV is made under.
    pub fn current(&self) -> &PinKey {
        &self.keys[0]
    }

    /// Every key, current first.
    pub fn all(&self) -> &[PinKey] {
        &self.keys
    }

    /// The key with this id, if held.
    pub fn get(&self, id: PinKeyId) -> Option<&PinKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// These keys with `fresh` as the new current key; the oldest is
    /// dropped if there would be more than [`PIN_KEYS_MAX`] (a PVV made
    /// under it can then no longer be checked: its customer must be given a
    /// new PIN).
    pub fn rotated(&self, fresh: PinKey) -> Result<PinKeys, PinKeysError> {
        let mut keys = vec![fresh];
        keys.extend(self.keys.iter().cloned());
        keys.truncate(PIN_KEYS_MAX);
        PinKeys::new(keys)
    }
}

/// A PIN verification value: the key's id and the MAC.
#[derive(Clone, PartialEq, Eq)]
pub struct Pvv {
    key: PinKeyId,
    mac: [u8; PVV_LEN],
}

impl std::fmt::Debug for Pvv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pvv({:?}, <mac>)", self.key)
    }
}

impl Pvv {
    /// The id of the key it was made under.
    pub fn key(&self) -> PinKeyId {
        self.key
    }
}

/// What the CPP stores for a customer's PIN.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StoredPin {
    /// A PVV (every customer enrolled since PVVs).
    Pvv(Pvv),
    /// An Argon2id hash (a customer enrolled before PVVs, who has not paid
    /// with a right PIN since).
    Argon2(PinHash),
}

/// The result of [`StoredPin::check`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PinCheck {
    /// The right PIN. `renew`: store this PVV in place of what is stored
    /// (an Argon2id hash, or a PVV under a key that is no longer current).
    Right {
        /// The PVV to store, if it changes.
        renew: Option<Pvv>,
    },
    /// Not the PIN.
    Wrong,
    /// A PVV under a key this CPP no longer holds: the PIN cannot be
    /// checked; an operator must give the customer a new PIN.
    UnknownKey,
}

impl StoredPin {
    /// Checks `customer`'s `pin`. For a PVV this takes microseconds; an
    /// Argon2id hash takes what its parameters cost (run it off the async
    /// threads: [`StoredPin::is_slow`]). The comparison takes the same time
    /// wherever the values differ.
    pub fn check(&self, keys: &PinKeys, customer: &str, pin: &Pin) -> PinCheck {
        let current = keys.current();
        match self {
            StoredPin::Pvv(stored) => {
                let Some(key) = keys.get(stored.key) else {
                    return PinCheck::UnknownKey;
                };
                if !constant_time_eq(&key.mac(customer, pin), &stored.mac) {
                    return PinCheck::Wrong;
                }
                let renew = (key.id != current.id).then(|| current.pvv(customer, pin));
                PinCheck::Right { renew }
            }
            StoredPin::Argon2(hash) => {
                if hash.verify(pin) {
                    PinCheck::Right {
                        renew: Some(current.pvv(customer, pin)),
                    }
                } else {
                    PinCheck::Wrong
                }
            }
        }
    }

    /// True for an Argon2id hash, whose check costs milliseconds of CPU.
    pub fn is_slow(&self) -> bool {
        matches!(self, StoredPin::Argon2(_))
    }
}

impl Encode for StoredPin {
    fn encode(&self, w: &mut Writer) {
        match self {
            StoredPin::Pvv(pvv) => {
                w.u8(PVV_TAG).raw(&pvv.key.0).raw(&pvv.mac);
            }
            StoredPin::Argon2(hash) => hash.encode(w),
        }
    }
}

impl Decode for StoredPin {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.remaining() == PIN_HASH_WIRE_LEN {
            return Ok(StoredPin::Argon2(PinHash::decode(r)?));
        }
        match r.u8("stored PIN tag")? {
            PVV_TAG => Ok(StoredPin::Pvv(Pvv {
                key: PinKeyId(r.array("PIN key id")?),
                mac: r.array("PVV")?,
            })),
            _ => Err(DecodeError::Invalid {
                what: "stored PIN",
                reason: "neither a PVV nor an Argon2id hash",
            }),
        }
    }
}
