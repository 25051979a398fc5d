//! Shipping details the customer chooses to share with the merchant
//! (`--share-shipping`, issue 15): sealed by the customer device to the
//! merchant's key, carried in the PR and then inside the CPP's signed PN,
//! and readable by the merchant only. The CPP, the DCs and the MPP carry an
//! opaque blob; the customer stays pseudonymous to them.
//!
//! Why not an `mpay-envelope` frame: an envelope's header travels in the
//! clear and names its sender, so a blob signed by the customer device
//! would show the device's id to every DC and MPP on the way and let them
//! link its payments across merchants, the very thing the pseudonym hides;
//! and an envelope is refused five minutes after it was sent
//! ([`mpay_envelope::MESSAGE_AGE_MAX_MS`]), while the merchant reads the
//! details whenever it lists its payments. A device signature would not
//! tell the merchant anything it can check either: the merchant cannot tie
//! a device to a pseudonymous payment, and the one party that could forge a
//! blob unseen, the CPP, issues the device certificates. So the blob is
//! sealed (HPKE, the envelope's suite) without a sender; what guards it on
//! the way is the CPP's signature over the PN that carries it (a DC or the
//! MPP cannot swap or move it), and what binds it to its payment is the
//! associated data of the seal: the merchant's id and the nonce of the
//! TRANS being paid. A blob moved to a payment of another TRANS, or to
//! another merchant, does not open.

use mpay_identity::{Certificate, PartyId, SecretKeys};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};
use rand_core::CryptoRng;

use crate::trans::SignedTrans;
use crate::{SemopsError, tags};

/// Longest shipping details, bytes of UTF-8 text.
pub const SHIPPING_TEXT_LEN_MAX: usize = 1024;
/// The sealed form's version byte this code writes and reads.
pub const SHIPPING_VERSION: u8 = 1;
/// HPKE's encapsulated key, bytes.
const ENCAPSULATED_LEN: usize = 32;
/// The AEAD tag HPKE appends (ChaCha20-Poly1305), bytes.
const SEAL_TAG_LEN: usize = 16;
/// Longest ciphertext of a [`SealedShipping`]: the details' encoding (a
/// `u16` length and the text) and the AEAD tag.
pub const SHIPPING_CIPHERTEXT_LEN_MAX: usize = 2 + SHIPPING_TEXT_LEN_MAX + SEAL_TAG_LEN;

/// The shipping details as the customer typed them: 1 to
/// [`SHIPPING_TEXT_LEN_MAX`] bytes of UTF-8, line breaks allowed, no other
/// control characters (the merchant prints them on a terminal). Its
/// `Debug` shows the length only: an address is not for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ShippingDetails(String);

impl std::fmt::Debug for ShippingDetails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ShippingDetails({} bytes)", self.0.len())
    }
}

impl ShippingDetails {
    pub fn new(text: &str) -> Result<Self, DecodeError> {
        if text.trim().is_empty() {
            return Err(DecodeError::Invalid {
                what: "shipping details",
                reason: "empty",
            });
        }
        if text.len() > SHIPPING_TEXT_LEN_MAX {
            return Err(DecodeError::TooLong {
                what: "shipping details",
                len: text.len(),
                max: SHIPPING_TEXT_LEN_MAX,
            });
        }
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(DecodeError::Invalid {
                what: "shipping details",
                reason: "has control characters other than line breaks",
            });
        }
        Ok(ShippingDetails(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Encode for ShippingDetails {
    fn encode(&self, w: &mut Writer) {
        w.text(&self.0);
    }
}

impl Decode for ShippingDetails {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        ShippingDetails::new(&r.text("shipping details", SHIPPING_TEXT_LEN_MAX)?)
    }
}

/// [`ShippingDetails`] sealed to one merchant for one TRANS: opaque to
/// everyone but that merchant.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SealedShipping {
    /// HPKE's encapsulated key.
    pub encapsulated: [u8; ENCAPSULATED_LEN],
    /// At most [`SHIPPING_CIPHERTEXT_LEN_MAX`] bytes.
    pub ciphertext: Vec<u8>,
}

impl Encode for SealedShipping {
    fn encode(&self, w: &mut Writer) {
        w.u8(SHIPPING_VERSION)
            .raw(&self.encapsulated)
            .bytes16(&self.ciphertext);
    }
}

impl Decode for SealedShipping {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8("shipping version")?;
        if version != SHIPPING_VERSION {
            return Err(DecodeError::UnknownTag {
                what: "shipping version",
                tag: version,
            });
        }
        let encapsulated = r.array("shipping encapsulated key")?;
        let ciphertext = r
            .bytes16("shipping ciphertext", SHIPPING_CIPHERTEXT_LEN_MAX)?
            .to_vec();
        if ciphertext.len() < SEAL_TAG_LEN {
            return Err(DecodeError::Invalid {
                what: "shipping ciphertext",
                reason: "shorter than its tag",
            });
        }
        Ok(SealedShipping {
            encapsulated,
            ciphertext,
        })
    }
}

/// The seal's associated data: the merchant and the TRANS nonce, so the
/// blob opens only for that merchant's payment of that TRANS.
fn associated_data(merchant: PartyId, trans_nonce: &[u8; 16]) -> [u8; 32] {
    let mut aad = [0u8; 32];
    aad[..16].copy_from_slice(&merchant.0);
    aad[16..].copy_from_slice(trans_nonce);
    aad
}

/// The customer device seals `details` to the merchant of `trans`, whose
/// certificate is `merchant_cert` (the caller has checked it: issued by the
/// TRANS's MPP, trusted, and the TRANS verifies under it).
pub fn seal_shipping(
    details: &ShippingDetails,
    trans: &SignedTrans,
    merchant_cert: &Certificate,
    rng: &mut impl CryptoRng,
) -> Result<SealedShipping, SemopsError> {
    let body = trans.unverified_body();
    if merchant_cert.subject() != body.merchant {
        return Err(SemopsError::WrongSigner {
            what: "shipping details' merchant",
            expected: body.merchant,
            got: merchant_cert.subject(),
        });
    }
    let (encapsulated, ciphertext) = merchant_cert
        .keys()
        .seal(
            tags::SHIPPING,
            &associated_data(body.merchant, &body.nonce),
            &details.to_wire(),
            rng,
        )
        .map_err(|_| SemopsError::Local("shipping details: the merchant's key does not seal"))?;
    Ok(SealedShipping {
        encapsulated,
        ciphertext,
    })
}

/// The merchant `merchant` opens `sealed`, found with its payment of the
/// TRANS whose nonce is `trans_nonce`. Fails with
/// [`SemopsError::ShippingSealBroken`] for any other key, merchant or
/// TRANS.
pub fn open_shipping(
    sealed: &SealedShipping,
    merchant_keys: &SecretKeys,
    merchant: PartyId,
    trans_nonce: &[u8; 16],
) -> Result<ShippingDetails, SemopsError> {
    let plaintext = merchant_keys
        .open(
            tags::SHIPPING,
            &associated_data(merchant, trans_nonce),
            &sealed.encapsulated,
            &sealed.ciphertext,
        )
        .map_err(|_| SemopsError::ShippingSealBroken)?;
    Ok(ShippingDetails::from_wire(&plaintext)?)
}
