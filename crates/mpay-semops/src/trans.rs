//! TRANS: the merchant's signed offer, carried to the customer as a `mpay:`
//! URI and QR code (DESIGN §3.2 step 1).

use mpay_identity::{PartyId, Role, Timestamp};
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, Reader, TEXT_LEN_MAX, Writer};

use crate::signed::{Signable, Signed};
use crate::{SemopsError, base64url, tags};

/// Longest merchant reference, bytes.
pub const REFERENCE_LEN_MAX: usize = 64;
/// Longest `mpay:` URI accepted, bytes. A largest TRANS (1 KiB description)
/// is about 1.7 KiB as a URI.
pub const URI_LEN_MAX: usize = 4096;
/// What every TRANS URI starts with.
pub const TRANS_URI_PREFIX: &str = "mpay:trans?";
/// The URI format version (`v=`).
pub const TRANS_URI_VERSION: &str = "1";

/// The merchant's offer: who is paid, through which MPP, how much, for what,
/// until when.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Trans {
    pub merchant: PartyId,
    /// The merchant's payment processor, where the DC routes the PN.
    pub mpp: PartyId,
    /// Positive; its currency is the payment's.
    pub amount: Amount,
    /// The merchant's own reference (order number), at most
    /// [`REFERENCE_LEN_MAX`] bytes.
    pub merchant_reference: String,
    /// Not payable at or after this instant.
    pub expires_at: Timestamp,
    /// For the customer, at most [`TEXT_LEN_MAX`] bytes.
    pub description: String,
    /// Random per TRANS, so two offers with equal fields differ.
    pub nonce: [u8; 16],
}

/// A TRANS signed by its merchant.
pub type SignedTrans = Signed<Trans>;

fn check_text(what: &'static str, text: &str, max: usize) -> Result<(), DecodeError> {
    if text.len() > max {
        return Err(DecodeError::TooLong {
            what,
            len: text.len(),
            max,
        });
    }
    Ok(())
}

/// An amount a SEMOPS object carries: positive and at most
/// [`mpay_money::AMOUNT_MINOR_MAX`], so that no sum a service keeps of them
/// (a payment's refunds, a customer's pending micropayments, a settlement
/// run) can overflow.
pub(crate) fn check_positive(what: &'static str, amount: &Amount) -> Result<(), DecodeError> {
    if !amount.is_positive() {
        return Err(DecodeError::Invalid {
            what,
            reason: "amount must be positive",
        });
    }
    amount.check_bounded().map_err(|_| DecodeError::Invalid {
        what,
        reason: "amount beyond mpay_money::AMOUNT_MINOR_MAX",
    })
}

impl Signable for Trans {
    const TAG: &'static [u8] = tags::TRANS;
    const SIGNER_ROLE: Role = Role::Merchant;
    const WHAT: &'static str = "TRANS";

    fn signer(&self) -> PartyId {
        self.merchant
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_positive("TRANS amount", &self.amount)?;
        check_text(
            "merchant reference",
            &self.merchant_reference,
            REFERENCE_LEN_MAX,
        )?;
        check_text("description", &self.description, TEXT_LEN_MAX)
    }

    fn check_at(&self, now: Timestamp) -> Result<(), SemopsError> {
        if now >= self.expires_at {
            return Err(SemopsError::Expired {
                what: Self::WHAT,
                expires_at: self.expires_at,
                now,
            });
        }
        Ok(())
    }
}

impl Encode for Trans {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.merchant)
            .put(&self.mpp)
            .put(&self.amount)
            .text(&self.merchant_reference)
            .put(&self.expires_at)
            .text(&self.description)
            .raw(&self.nonce);
    }
}

impl Decode for Trans {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let trans = Trans {
            merchant: r.get()?,
            mpp: r.get()?,
            amount: r.get()?,
            merchant_reference: r.text("merchant reference", REFERENCE_LEN_MAX)?,
            expires_at: r.get()?,
            description: r.text("description", TEXT_LEN_MAX)?,
            nonce: r.array("TRANS nonce")?,
        };
        trans.validate()?;
        Ok(trans)
    }
}

impl Signed<Trans> {
    /// `mpay:trans?v=1&d=<base64url(wire bytes)>`.
    pub fn to_uri(&self) -> String {
        format!(
            "{TRANS_URI_PREFIX}v={TRANS_URI_VERSION}&d={}",
            base64url::encode(&self.to_wire())
        )
    }

    /// Reads a URI made by [`Signed::to_uri`]. Total: any string gives a
    /// value or an error. Parameters `v` and `d` must each appear once, in
    /// any order, and nothing else; the signature is not checked here.
    pub fn from_uri(uri: &str) -> Result<Self, SemopsError> {
        if uri.len() > URI_LEN_MAX {
            return Err(SemopsError::BadUri("longer than URI_LEN_MAX"));
        }
        let query = uri
            .strip_prefix(TRANS_URI_PREFIX)
            .ok_or(SemopsError::BadUri("does not start with mpay:trans?"))?;
        let mut version = None;
        let mut data = None;
        for pair in query.split('&') {
            let (key, value) = pair
                .split_once('=')
                .ok_or(SemopsError::BadUri("parameter without '='"))?;
            let slot = match key {
                "v" => &mut version,
                "d" => &mut data,
                _ => return Err(SemopsError::BadUri("unknown parameter")),
            };
            if slot.replace(value).is_some() {
                return Err(SemopsError::BadUri("repeated parameter"));
            }
        }
        match version {
            Some(TRANS_URI_VERSION) => {}
            Some(_) => return Err(SemopsError::BadUri("unsupported version")),
            None => return Err(SemopsError::BadUri("no version")),
        }
        let data = data.ok_or(SemopsError::BadUri("no data"))?;
        let bytes = base64url::decode(data).ok_or(SemopsError::BadUri("data is not base64url"))?;
        Ok(Signed::from_wire(&bytes)?)
    }

    /// The URI as a QR code drawn with Unicode half blocks (two modules per
    /// character cell), for a terminal. Fails only if the URI does not fit a
    /// QR code, which a TRANS within its limits always does.
    pub fn to_terminal_qr(&self) -> Result<String, SemopsError> {
        use qrcode::render::unicode::Dense1x2;
        let code = qrcode::QrCode::with_error_correction_level(
            self.to_uri().as_bytes(),
            qrcode::EcLevel::L,
        )
        .map_err(|_| SemopsError::Local("TRANS URI does not fit a QR code"))?;
        Ok(code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build())
    }
}
