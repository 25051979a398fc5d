//! The SEMOPS protocol types (DESIGN §3, paper 002): what the customer,
//! merchant, CPP, DC and MPP say to each other, their wire encodings and the
//! checks on them. Pure: no I/O, no clock (time is a [`mpay_identity::Timestamp`] argument),
//! no global RNG (randomness is an RNG argument). The CPP/DC/MPP services
//! only move these values around.
//!
//! # One payment
//!
//! ```text
//! merchant ──TRANS (signed, mpay: URI / QR)──────────────▶ customer
//! customer ──PR  0x0401 (TRANS + customer + CPP + PIN, sealed)──▶ CPP
//! CPP ──PN 0x0402 (signed; pseudonym, amount class, deadline)──▶ DC ──▶ (DC) ──▶ MPP
//! MPP ──▶ merchant; merchant ──MERCHANT_DECISION 0x0403 (signed)──▶ MPP ──▶ DC ──▶ CPP
//! CPP ──CONFIRMATION 0x0404 (signed: T, DT, rejected, expired, refunded)──▶ customer, DC ──▶ MPP ──▶ merchant
//! merchant ──REFUND_REQUEST 0x0405 (signed)──▶ MPP ──▶ DC ──▶ CPP
//! ```
//!
//! | kind | value | payload | signed inside by |
//! |---|---|---|---|
//! | [`kind::PAYMENT_REQUEST`] | `0x0401` | [`PaymentRequest`] | (PIN; envelope by the customer device) |
//! | [`kind::PAYMENT_NOTICE`] | `0x0402` | [`RoutedNotice`] | CPP ([`SignedPaymentNotice`]) |
//! | [`kind::MERCHANT_DECISION`] | `0x0403` | [`SignedMerchantDecision`] | merchant |
//! | [`kind::CONFIRMATION`] | `0x0404` | [`SignedConfirmation`] | CPP |
//! | [`kind::REFUND_REQUEST`] | `0x0405` | [`SignedRefundRequest`] | merchant |
//! | [`kind::DECISION_RELAY`] | `0x0406` | [`SignedDecisionRelay`] | MPP (decision inside: merchant) |
//! | [`kind::REFUND_RELAY`] | `0x0407` | [`SignedRefundRelay`] | MPP (request inside: merchant) |
//!
//! Every message between parties travels in the `mpay-envelope` envelope
//! (signed by the hop that sends it, sealed to the hop that receives it);
//! the objects signed *inside* the payload ([`Signed`]) are what lets a party
//! two hops away check who said what: the MPP checks the CPP's PN, the CPP
//! checks the merchant's decision. Every inner signature starts with one of
//! this crate's domain-separation [`tags`].
//!
//! The customer stays anonymous to the merchant: the PN carries a
//! [`pseudonym`] the CPP derives per (customer, merchant), never the
//! customer's identity. The PIN travels only inside the PR, which is sealed
//! to the CPP; [`Pin`] never prints and is zeroized on drop. Shipping
//! details travel only if the customer chooses to share them, sealed to the
//! merchant ([`SealedShipping`]): the CPP, DCs and MPP carry them unread.
//!
//! # Wire layouts
//!
//! `mpay-wire` rules (big-endian, `text` = `u16` length + UTF-8, enums one
//! tag byte). `id` is a 16-byte party id, `amount` is the currency code and
//! an `i64`, `ts` a `u64` of milliseconds, `sig` 64 bytes.
//!
//! - `Trans` = merchant id ‖ mpp id ‖ amount ‖ text reference (≤ 64) ‖
//!   ts expires_at ‖ text description (≤ 1024) ‖ 16-byte nonce
//! - `Signed<T>` = T ‖ sig over `tag ‖ T`
//! - `PaymentRequest` = `Signed<Trans>` ‖ text customer (1–64) ‖ cpp id ‖
//!   text PIN (4–12 digits) ‖ 16-byte idempotency key ‖
//!   option `SealedShipping`
//! - `PaymentNotice` = 16-byte payment id ‖ `Signed<Trans>` ‖ 16-byte
//!   pseudonym ‖ cpp id ‖ class (1 macro, 2 micro) ‖ ts deadline ‖
//!   option `SealedShipping` (the PR's, unread)
//! - `SealedShipping` = version 1 ‖ 32-byte encapsulated key ‖ `u16`-length
//!   ciphertext (16–1042) of text shipping details (1–1024), HPKE-sealed to
//!   the merchant with info `mpay/v1/semops-shipping\0` and associated data
//!   merchant id ‖ TRANS nonce ([`seal_shipping`])
//! - `RoutedNotice` = `Signed<PaymentNotice>` ‖ ts hop deadline (≤ PN deadline)
//! - `Validity` = ts signed_at ‖ ts expires_at (expires_at after signed_at,
//!   at most [`REQUEST_LIFETIME_MAX_MS`] later)
//! - `MerchantDecision` = payment id ‖ merchant id ‖ 1 (approve) | 2 ‖ text reason (≤ 256) ‖
//!   `Validity`
//! - `Confirmation` = payment id ‖ cpp id ‖ outcome (1 T, 2 DT, 3 rejected ‖
//!   reason byte, 4 expired, 5 refunded) ‖ amount ‖ ts
//! - `RefundRequest` = payment id ‖ merchant id ‖ amount ‖ 16-byte idempotency key ‖
//!   `Validity`
//! - `StandingApproval` = merchant id ‖ mpp id ‖ amount per payment ‖
//!   amount per period (same currency, not below the first) ‖ u64 period ms
//!   (1 minute–31 days) ‖ ts signed_at ‖ ts expires_at (after signed_at, at
//!   most [`STANDING_LIFETIME_MAX_MS`] later)
//! - `Authority` = 1 ‖ `Signed<MerchantDecision>`, or 2 ‖ payment id ‖
//!   `Signed<StandingApproval>` (the MPP applied the merchant's standing
//!   approval of micropayments to the payment)
//! - `DecisionRelay` = `Authority` ‖ mpp id ‖ payout bank id ‖
//!   text payout account (1–128)
//! - `RefundRelay` = `Signed<RefundRequest>` ‖ mpp id ‖ text transfer reference (1–128)
//! - `PinHash` = 16-byte salt ‖ u32 memory KiB ‖ u32 iterations ‖ u32 lanes ‖ 32-byte hash
//! - `StoredPin` = 1 ‖ 8-byte PIN key id ‖ 32-byte PVV (keyed BLAKE3 of
//!   `mpay/v1/pvv` 0 ‖ u64 length ‖ customer ‖ u64 length ‖ PIN digits),
//!   or an untagged `PinHash` (60 bytes; customers enrolled before PVVs)
//! - `PinGuard` = u32 failures ‖ u32 failures max
//!
//! Amounts of TRANS, confirmations and refunds are positive and at most
//! [`mpay_money::AMOUNT_MINOR_MAX`]; decoders refuse anything else, and
//! every text over its limit.

mod base64url;
mod decision;
mod error;
mod notice;
mod pin;
mod pvv;
mod relay;
mod request;
mod shipping;
mod signed;
mod standing;
mod trans;
mod validity;

pub use base64url::{decode as base64url_decode, encode as base64url_encode};
pub use decision::{
    Confirmation, ConfirmationOutcome, Decision, MerchantDecision, REASON_LEN_MAX,
    REFUND_REFERENCE_LEN_MAX, RefundRequest, RejectReason, SignedConfirmation,
    SignedMerchantDecision, SignedRefundRequest,
};
pub use error::SemopsError;
pub use notice::{
    AmountClass, PaymentId, PaymentNotice, RoutedNotice, SignedPaymentNotice, hop_deadline,
    pseudonym,
};
pub use pin::{
    PIN_DIGITS_MAX, PIN_DIGITS_MIN, PIN_FAILURES_MAX_DEFAULT, PIN_HASH_LEN, PIN_SALT_LEN, Pin,
    PinError, PinGuard, PinHash, PinParams,
};
pub use pvv::{
    PIN_HASH_WIRE_LEN, PIN_KEY_ID_LEN, PIN_KEY_LEN, PIN_KEYS_MAX, PVV_LEN, PinCheck, PinKey,
    PinKeyId, PinKeys, PinKeysError, Pvv, StoredPin,
};
pub use relay::{
    Authority, DecisionRelay, RELAY_TEXT_LEN_MAX, RefundRelay, SignedDecisionRelay,
    SignedRefundRelay,
};
pub use request::{
    CUSTOMER_REF_LEN_MAX, CustomerRef, PaymentRequest, open_payload, open_pr, seal_payload, seal_pr,
};
pub use shipping::{
    SHIPPING_CIPHERTEXT_LEN_MAX, SHIPPING_TEXT_LEN_MAX, SHIPPING_VERSION, SealedShipping,
    ShippingDetails, open_shipping, seal_shipping,
};
pub use signed::{Signable, Signed};
pub use standing::{
    NotCovered, STANDING_LIFETIME_MAX_MS, STANDING_PERIOD_MS_MAX, STANDING_PERIOD_MS_MIN,
    SignedStandingApproval, StandingApproval, Use as StandingUse,
};
pub use trans::{
    REFERENCE_LEN_MAX, SignedTrans, TRANS_URI_PREFIX, TRANS_URI_VERSION, Trans, URI_LEN_MAX,
};
pub use validity::{
    REQUEST_CLOCK_SKEW_MAX_MS, REQUEST_LIFETIME_DEFAULT_MS, REQUEST_LIFETIME_MAX_MS, Validity,
};

/// The SEMOPS message kinds (envelope header), all in `0x04xx`.
pub mod kind {
    use mpay_envelope::MessageKind;
    /// Customer → CPP: the payment request, sealed, with the PIN.
    pub const PAYMENT_REQUEST: MessageKind = MessageKind(0x0401);
    /// CPP → DC → (DC) → MPP: the signed payment notice and this hop's deadline.
    pub const PAYMENT_NOTICE: MessageKind = MessageKind(0x0402);
    /// Merchant → MPP → DC → CPP: the merchant's signed approval or rejection.
    pub const MERCHANT_DECISION: MessageKind = MessageKind(0x0403);
    /// CPP → customer, and CPP → DC → MPP → merchant: T / DT confirmation or
    /// the payment's other end.
    pub const CONFIRMATION: MessageKind = MessageKind(0x0404);
    /// Merchant → MPP → DC → CPP: refund (part of) a completed payment.
    pub const REFUND_REQUEST: MessageKind = MessageKind(0x0405);
    /// MPP → DC → (DC) → CPP: the merchant's decision relayed by its MPP with
    /// the payout account ([`crate::SignedDecisionRelay`]).
    pub const DECISION_RELAY: MessageKind = MessageKind(0x0406);
    /// MPP → DC → (DC) → CPP: the merchant's refund request relayed by its MPP
    /// after it funded the refund ([`crate::SignedRefundRelay`]).
    pub const REFUND_RELAY: MessageKind = MessageKind(0x0407);

    /// Every SEMOPS kind, for dispatch tables and tests.
    pub const ALL: [MessageKind; 7] = [
        PAYMENT_REQUEST,
        PAYMENT_NOTICE,
        MERCHANT_DECISION,
        CONFIRMATION,
        REFUND_REQUEST,
        DECISION_RELAY,
        REFUND_RELAY,
    ];
}

/// Domain-separation tags of the signatures made inside SEMOPS payloads.
/// Each starts every signed message of its type, so a signature made for
/// one type can never be passed off as another.
pub mod tags {
    pub const TRANS: &[u8] = b"mpay/v1/semops-trans\0";
    pub const PAYMENT_NOTICE: &[u8] = b"mpay/v1/semops-payment-notice\0";
    pub const MERCHANT_DECISION: &[u8] = b"mpay/v1/semops-merchant-decision\0";
    pub const CONFIRMATION: &[u8] = b"mpay/v1/semops-confirmation\0";
    pub const REFUND_REQUEST: &[u8] = b"mpay/v1/semops-refund-request\0";
    pub const DECISION_RELAY: &[u8] = b"mpay/v1/semops-decision-relay\0";
    pub const REFUND_RELAY: &[u8] = b"mpay/v1/semops-refund-relay\0";
    pub const STANDING_APPROVAL: &[u8] = b"mpay/v1/semops-standing-approval\0";
    /// Not a signature: the HPKE info of [`crate::SealedShipping`].
    pub const SHIPPING: &[u8] = b"mpay/v1/semops-shipping\0";
    /// Not a signature: the keyed-hash context of [`crate::pseudonym`].
    pub const PSEUDONYM: &[u8] = b"mpay/v1/semops-pseudonym\0";
    /// Not a signature: the hash context of [`crate::RefundRequest::derive_key`].
    pub const REFUND_KEY: &[u8] = b"mpay/v1/semops-refund-key\0";

    /// Every tag, to test that none is a prefix of another.
    pub const ALL: [&[u8]; 11] = [
        TRANS,
        PAYMENT_NOTICE,
        MERCHANT_DECISION,
        CONFIRMATION,
        REFUND_REQUEST,
        DECISION_RELAY,
        REFUND_RELAY,
        STANDING_APPROVAL,
        SHIPPING,
        PSEUDONYM,
        REFUND_KEY,
    ];
}
