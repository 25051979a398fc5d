//! The customer's PIN at the CPP (DESIGN §3.2 step 2): its format, its
//! Argon2id hash with a constant-time check, and the failure counter that
//! locks the account. Pure: salt and parameters come in.

use argon2::{Algorithm, Argon2, Params, Version};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};
use thiserror::Error;
use zeroize::Zeroizing;

/// Fewest digits of a PIN.
pub const PIN_DIGITS_MIN: usize = 4;
/// Most digits of a PIN.
pub const PIN_DIGITS_MAX: usize = 12;
/// Wrong PINs in a row before the account locks, unless configured.
pub const PIN_FAILURES_MAX_DEFAULT: u32 = 5;
/// Salt length of a [`PinHash`].
pub const PIN_SALT_LEN: usize = 16;
/// Hash length of a [`PinHash`].
pub const PIN_HASH_LEN: usize = 32;

/// Smallest Argon2id memory accepted, KiB (= [`PinParams::FAST_FOR_TESTS`]).
pub const PIN_MEMORY_KIB_MIN: u32 = 64;
/// Largest Argon2id memory accepted, KiB.
pub const PIN_MEMORY_KIB_MAX: u32 = 1024 * 1024;
/// Most Argon2id iterations accepted.
pub const PIN_ITERATIONS_MAX: u32 = 64;
/// Most Argon2id lanes accepted.
pub const PIN_PARALLELISM_MAX: u32 = 16;

/// Why a PIN was refused. Carries no digits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PinError {
    #[error("a PIN is {PIN_DIGITS_MIN} to {PIN_DIGITS_MAX} ASCII digits")]
    BadFormat,
    #[error("wrong PIN; {left} tries left before the account locks")]
    Wrong { left: u32 },
    #[error("account locked after too many wrong PINs; an operator must unlock it")]
    Locked,
    #[error("Argon2id parameters out of range")]
    BadParams,
}

/// A PIN as the customer typed it: 4–12 ASCII digits. Never printed
/// (`Debug` is redacted), zeroized on drop.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Checks the format; the error says nothing about the digits.
    pub fn new(digits: &str) -> Result<Pin, PinError> {
        let ok = (PIN_DIGITS_MIN..=PIN_DIGITS_MAX).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(Pin(Zeroizing::new(digits.to_owned())))
        } else {
            Err(PinError::BadFormat)
        }
    }

    /// The digits, for hashing. Do not log.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin(<redacted>)")
    }
}

impl PartialEq for Pin {
    fn eq(&self, other: &Pin) -> bool {
        constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
    }
}

impl Eq for Pin {}

impl Encode for Pin {
    fn encode(&self, w: &mut Writer) {
        w.text(&self.0);
    }
}

impl Decode for Pin {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let digits = Zeroizing::new(r.text("PIN", PIN_DIGITS_MAX)?);
        Pin::new(&digits).map_err(|_| DecodeError::Invalid {
            what: "PIN",
            reason: "not 4 to 12 ASCII digits",
        })
    }
}

/// Argon2id cost parameters of a [`PinHash`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PinParams {
    /// Memory cost, KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl PinParams {
    /// OWASP's Argon2id minimum (19 MiB, 2 iterations, 1 lane).
    pub const DEFAULT: PinParams = PinParams {
        memory_kib: 19_456,
        iterations: 2,
        parallelism: 1,
    };
    /// The cheapest accepted: for tests only.
    pub const FAST_FOR_TESTS: PinParams = PinParams {
        memory_kib: PIN_MEMORY_KIB_MIN,
        iterations: 1,
        parallelism: 1,
    };

    fn argon2(&self) -> Result<Argon2<'static>, PinError> {
        let in_range = (PIN_MEMORY_KIB_MIN..=PIN_MEMORY_KIB_MAX).contains(&self.memory_kib)
            && (1..=PIN_ITERATIONS_MAX).contains(&self.iterations)
            && (1..=PIN_PARALLELISM_MAX).contains(&self.parallelism);
        if !in_range {
            return Err(PinError::BadParams);
        }
        let params = Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(PIN_HASH_LEN),
        )
        .map_err(|_| PinError::BadParams)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for PinParams {
    fn default() -> Self {
        PinParams::DEFAULT
    }
}

/// What the CPP stores instead of a customer's PIN.
#[derive(Clone, PartialEq, Eq)]
pub struct PinHash {
    salt: [u8; PIN_SALT_LEN],
    params: PinParams,
    hash: [u8; PIN_HASH_LEN],
}

impl std::fmt::Debug for PinHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinHash({:?}, <hash>)", self.params)
    }
}

impl PinHash {
    /// Hashes `pin` with Argon2id under `salt` (random per customer, chosen
    /// by the caller) and `params`.
    pub fn new(pin: &Pin, salt: [u8; PIN_SALT_LEN], params: PinParams) -> Result<Self, PinError> {
        let hash = derive(pin, &salt, &params)?;
        Ok(PinHash {
            salt,
            params,
            hash: *hash,
        })
    }

    /// True if `pin` is the PIN hashed; the comparison takes the same time
    /// wherever the hashes differ.
    pub fn verify(&self, pin: &Pin) -> bool {
        match derive(pin, &self.salt, &self.params) {
            Ok(candidate) => constant_time_eq(&candidate[..], &self.hash),
            Err(_) => false,
        }
    }

    /// The Argon2id parameters this hash was made with.
    pub fn params(&self) -> PinParams {
        self.params
    }
}

fn derive(
    pin: &Pin,
    salt: &[u8; PIN_SALT_LEN],
    params: &PinParams,
) -> Result<Zeroizing<[u8; PIN_HASH_LEN]>, PinError> {
    let mut out = Zeroizing::new([0u8; PIN_HASH_LEN]);
    params
        .argon2()?
        .hash_password_into(pin.expose().as_bytes(), salt, &mut out[..])
        .map_err(|_| PinError::BadParams)?;
    Ok(out)
}

/// Compares in time that depends only on the lengths.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

impl Encode for PinHash {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.salt)
            .u32(self.params.memory_kib)
            .u32(self.params.iterations)
            .u32(self.params.parallelism)
            .raw(&self.hash);
    }
}

impl Decode for PinHash {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let salt = r.array("PIN salt")?;
        let params = PinParams {
            memory_kib: r.u32("Argon2id memory")?,
            iterations: r.u32("Argon2id iterations")?,
            parallelism: r.u32("Argon2id lanes")?,
        };
        params.argon2().map_err(|_| DecodeError::Invalid {
            what: "PIN hash parameters",
            reason: "out of range",
        })?;
        Ok(PinHash {
            salt,
            params,
            hash: r.array("PIN hash")?,
        })
    }
}

/// A customer's wrong-PIN counter: locks after `failures_max` wrong PINs in
/// a row until an operator unlocks it. The CPP stores it beside the hash and
/// updates it in the same transaction as the payment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PinGuard {
    failures: u32,
    failures_max: u32,
}

impl Default for PinGuard {
    fn default() -> Self {
        PinGuard::new(PIN_FAILURES_MAX_DEFAULT)
    }
}

impl PinGuard {
    /// A guard with no failures that locks at `failures_max` (at least 1).
    pub fn new(failures_max: u32) -> Self {
        PinGuard {
            failures: 0,
            failures_max: failures_max.max(1),
        }
    }

    /// Wrong PINs in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Wrong PINs in a row that lock the account.
    pub fn failures_max(&self) -> u32 {
        self.failures_max
    }

    /// True once `failures_max` wrong PINs were counted, until [`PinGuard::unlock`].
    pub fn is_locked(&self) -> bool {
        self.failures >= self.failures_max
    }

    /// Records the result of one PIN check. A locked guard refuses even a
    /// right PIN; a right PIN resets the count; a wrong one counts and says
    /// how many tries are left, or locks.
    pub fn check(&mut self, pin_ok: bool) -> Result<(), PinError> {
        if self.is_locked() {
            return Err(PinError::Locked);
        }
        if pin_ok {
            self.failures = 0;
            return Ok(());
        }
        self.failures = self.failures.saturating_add(1);
        if self.is_locked() {
            Err(PinError::Locked)
        } else {
            Err(PinError::Wrong {
                left: self.failures_max.saturating_sub(self.failures),
            })
        }
    }

    /// An operator's unlock: the count starts again.
    pub fn unlock(&mut self) {
        self.failures = 0;
    }
}

impl Encode for PinGuard {
    fn encode(&self, w: &mut Writer) {
        w.u32(self.failures).u32(self.failures_max);
    }
}

impl Decode for PinGuard {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let failures = r.u32("PIN failures")?;
        let failures_max = r.u32("PIN failures max")?;
        if failures_max == 0 {
            return Err(DecodeError::Invalid {
                what: "PIN failures max",
                reason: "zero",
            });
        }
        Ok(PinGuard {
            failures,
            failures_max,
        })
    }
}
