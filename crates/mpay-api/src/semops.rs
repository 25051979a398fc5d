//! The JSON shapes of the three services' APIs and their reqwest clients
//! ([`CppClient`], [`MppClient`], [`DcClient`]), used by the CLI, the tests,
//! the benchmark, and by the CPP to fetch merchant certificates.
//!
//! Binary values travel as hex: certificates and signed objects as hex of
//! their `mpay-wire` encoding, ids as 32 hex digits. Amounts are text like
//! `"12.50 EUR"`, times ms since the epoch.

use std::time::Duration;

use mpay_identity::{Certificate, PartyId, PublicKeys, SecretKeys, hex_bytes, hex_string};
use mpay_semops::{
    SealedShipping, SemopsError, ShippingDetails, SignedConfirmation, SignedMerchantDecision,
    SignedRefundRequest, SignedStandingApproval,
};
use mpay_wire::{Decode, Encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// Default time limit of one client request (a long-poll adds its wait).
pub const CLIENT_TIMEOUT_MS_DEFAULT: u64 = 30_000;

/// `POST /v1/customers` (CPP operator): enrol a customer and their device.
#[derive(Serialize, Deserialize, Clone, utoipa::ToSchema)]
pub struct EnrolCustomer {
    /// The customer's reference at the CPP (what a PR names), 1–64 bytes.
    pub name: String,
    /// Name of the customer's bank (in the directory).
    pub bank: String,
    /// The customer's account there, e.g. `cust:alice`.
    pub account: String,
    /// The PIN, 4–12 digits; the CPP keeps only its keyed verification
    /// value (DESIGN §3.2).
    pub pin: String,
    /// Hex of the device's `PublicKeys` wire encoding.
    pub device_keys: String,
}

impl std::fmt::Debug for EnrolCustomer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrolCustomer")
            .field("name", &self.name)
            .field("bank", &self.bank)
            .field("account", &self.account)
            .field("pin", &"<secret>")
            .finish_non_exhaustive()
    }
}

impl EnrolCustomer {
    /// The request for a device with public keys `device_keys`.
    pub fn new(name: &str, bank: &str, account: &str, pin: &str, device_keys: &PublicKeys) -> Self {
        EnrolCustomer {
            name: name.into(),
            bank: bank.into(),
            account: account.into(),
            pin: pin.into(),
            device_keys: hex_string(&device_keys.to_wire()),
        }
    }
}

/// What enrolment answers.
#[derive(Serialize, Deserialize, Clone, Debug, utoipa::ToSchema)]
pub struct Enrolled {
    /// The new party id (device or merchant), hex.
    pub id: String,
    /// Hex of the certificate issued.
    pub certificate: String,
    /// MPP: the merchant's bearer token (shown once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// `POST /v1/merchants` (MPP operator): enrol a merchant.
#[derive(Serialize, Deserialize, Clone, Debug, utoipa::ToSchema)]
pub struct EnrolMerchant {
    /// The merchant's name at the MPP.
    pub name: String,
    /// Name of the merchant's bank (in the directory).
    pub bank: String,
    /// The merchant's payout account there, e.g. `shop:bob`.
    pub account: String,
    /// Hex of the merchant's `PublicKeys` wire encoding.
    pub keys: String,
}

impl EnrolMerchant {
    /// The request for a merchant with public keys `keys`.
    pub fn new(name: &str, bank: &str, account: &str, keys: &PublicKeys) -> Self {
        EnrolMerchant {
            name: name.into(),
            bank: bank.into(),
            account: account.into(),
            keys: hex_string(&keys.to_wire()),
        }
    }
}

/// `POST /v1/customers/{name}/pin` (CPP operator): a new PIN for a
/// customer (one enrolled before PVVs who never paid since, or one whose
/// PIN key was retired); the wrong-PIN count starts again.
#[derive(Serialize, Deserialize, Clone, utoipa::ToSchema)]
pub struct SetPin {
    /// The new PIN, 4–12 digits.
    pub pin: String,
}

impl std::fmt::Debug for SetPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetPin { pin: <secret> }")
    }
}

/// How a CPP's customers' PINs are stored (`GET /v1/admin/pins`,
/// operator): what a key rotation or the move from Argon2id hashes still
/// waits for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, utoipa::ToSchema)]
pub struct PinReport {
    /// Customers enrolled.
    pub customers: u64,
    /// PVVs under the current key.
    pub current_key: u64,
    /// PVVs under a key that was replaced (renewed at the next right PIN).
    pub older_keys: u64,
    /// Argon2id hashes of customers enrolled before PVVs (replaced by a PVV
    /// at the next right PIN).
    pub argon2: u64,
    /// PVVs under a key the CPP no longer holds: these customers need a new
    /// PIN (`POST /v1/customers/{name}/pin`).
    pub unverifiable: u64,
}

/// What a service still has moving (`GET /v1/admin/work`, operator): a
/// network is quiet when every service answers all zeros.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, utoipa::ToSchema)]
pub struct Work {
    /// Messages in its outbox not yet delivered.
    pub outbox_pending: i64,
    /// Refunds whose money is on its way (CPP: `refunding`; MPP: `funding`,
    /// `relayed`).
    pub refunds_moving: i64,
    /// Micropayment transfers started and not ended (CPP: settlement
    /// batches and net settlement runs; MPP: payouts).
    pub transfers_started: i64,
}

/// A service's identity (`GET /v1/identity`).
#[derive(Serialize, Deserialize, Clone, Debug, utoipa::ToSchema)]
pub struct Identity {
    /// Its directory name.
    pub name: String,
    /// Its party id, hex.
    pub id: String,
    /// `cpp`, `mpp` or `dc`.
    pub role: String,
    /// Its region.
    pub region: String,
    /// Hex of its certificate.
    pub certificate: String,
}

/// A payment as its customer sees it at the CPP.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct PaymentStatus {
    /// Hex.
    pub payment_id: String,
    /// One of the CPP states (`mpay_network::cpp::PaymentState`).
    pub state: String,
    /// True once the state will not change any more (refunds aside).
    pub is_final: bool,
    /// The payment's amount.
    #[schema(value_type = crate::schema::AmountText)]
    pub amount: String,
    /// The merchant's reference from the TRANS.
    pub merchant_reference: String,
    /// The merchant's decision deadline (ms).
    pub deadline: u64,
    /// How much was refunded so far.
    #[schema(value_type = crate::schema::AmountText)]
    pub refunded: String,
    /// Why it was declined or rejected (a stable code), if it was.
    #[serde(default)]
    pub reason: Option<String>,
    /// Hex of the CPP's signed confirmation, once there is one.
    #[serde(default)]
    pub confirmation: Option<String>,
}

impl PaymentStatus {
    /// The CPP's signed confirmation, decoded (check it with the CPP's
    /// certificate before trusting it).
    pub fn confirmation(&self) -> Option<SignedConfirmation> {
        let bytes = hex_bytes(self.confirmation.as_deref()?)?;
        SignedConfirmation::from_wire(&bytes).ok()
    }
}

/// One payment in the CPP's operator listing (for reconciliation).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct PaymentRecord {
    /// Listing order; pass the last one as `after` for the next page.
    pub seq: i64,
    /// Hex.
    pub payment_id: String,
    /// The customer's reference.
    pub customer: String,
    /// The MPP of the TRANS (directory name).
    pub mpp: String,
    /// The amount.
    #[schema(value_type = crate::schema::AmountText)]
    pub amount: String,
    /// The CPP state.
    pub state: String,
    /// The customer's bank (directory name).
    pub bank: String,
    /// The customer's account there.
    pub account: String,
    /// The hold at that bank, once placed.
    pub hold_id: Option<i64>,
    /// Refunded so far.
    #[schema(value_type = crate::schema::AmountText)]
    pub refunded: String,
    /// Why declined or rejected.
    pub reason: Option<String>,
    /// Decision deadline (ms).
    pub deadline: u64,
    /// Created (ms).
    pub created_at: u64,
    /// Last changed (ms).
    pub updated_at: u64,
    /// `macro` (a hold) or `micro` (aggregated, no hold).
    #[serde(default)]
    pub class: String,
    /// A micropayment's settlement batch, when it was the one that reached θ.
    #[serde(default)]
    pub micro_batch: Option<i64>,
    /// What the CPP paid back for a rejected micropayment it had collected.
    #[serde(default)]
    #[schema(value_type = crate::schema::AmountText)]
    pub micro_returned: String,
}

/// One customer's micropayment books at a CPP (`GET /v1/admin/micro`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct MicroCustomerRecord {
    /// The customer's name.
    pub name: String,
    /// Pending total (DT-confirmed or awaiting a decision, not collected).
    #[schema(value_type = crate::schema::AmountText)]
    pub pending: String,
    /// Open micropayments.
    pub count: i64,
    /// `open`, `settling` or `blocked`.
    pub state: String,
    /// Aggregated transfers of this customer that failed, ever.
    pub failed_transfers: i64,
    /// Σ settled batches: what the customer's bank paid the CPP.
    #[schema(value_type = crate::schema::AmountText)]
    pub collected: String,
    /// Σ paid back for rejected micropayments already collected.
    #[schema(value_type = crate::schema::AmountText)]
    pub returned: String,
    /// Σ micropayments confirmed (DT or T).
    #[schema(value_type = crate::schema::AmountText)]
    pub confirmed: String,
    /// The customer's θ.
    #[schema(value_type = crate::schema::AmountText)]
    pub theta: String,
    /// The customer's W.
    pub window_ms: u64,
}

/// What a CPP owes and paid one MPP for micropayments.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct MicroMppRecord {
    /// The MPP (directory name).
    pub mpp: String,
    /// Paid by net settlement runs.
    #[schema(value_type = crate::schema::AmountText)]
    pub paid: String,
    /// Owed, not yet paid (no run yet, or its run still `started`).
    #[schema(value_type = crate::schema::AmountText)]
    pub unpaid: String,
    /// Σ micropayments to this MPP's merchants confirmed.
    #[schema(value_type = crate::schema::AmountText)]
    pub confirmed: String,
    /// Runs paid.
    pub runs_paid: i64,
}

/// A CPP's micropayment books (`GET /v1/admin/micro`, operator).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct CppMicroSummary {
    /// `none`, `one` or `two`.
    pub mode: String,
    /// Σ pending totals.
    #[schema(value_type = crate::schema::AmountText)]
    pub credit_used: String,
    /// The CPP's credit limit; `None` with micropayments off.
    #[schema(value_type = Option<crate::schema::AmountText>)]
    pub credit_limit: Option<String>,
    /// Settlement batches still `started`.
    pub batches_started: i64,
    /// Net settlement runs still `started`.
    pub runs_started: i64,
    /// What replaying the append-only log found wrong, if anything.
    pub log_problem: Option<String>,
    /// Per customer with micropayments.
    pub customers: Vec<MicroCustomerRecord>,
    /// Per MPP owed.
    pub mpps: Vec<MicroMppRecord>,
}

/// One cluster of a recluster.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct ReclusterCluster {
    /// Its number.
    pub cluster: usize,
    /// Customers placed in it.
    pub customers: usize,
    /// Of the training customers in it, blocked after a failed transfer.
    pub defaults: usize,
    /// Estimated default rate (Beta prior).
    pub default_rate: f64,
    /// Its θ.
    #[schema(value_type = crate::schema::AmountText)]
    pub theta: String,
    /// Its W.
    pub window_ms: u64,
}

/// What `POST /v1/admin/micro/recluster` did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, utoipa::ToSchema)]
pub struct ReclusterReport {
    /// Customers placed.
    pub customers: usize,
    /// The cluster new customers get.
    pub default_cluster: usize,
    /// When (ms).
    pub fitted_at: u64,
    /// The clusters.
    pub clusters: Vec<ReclusterCluster>,
}

/// What an MPP holds for one merchant's micropayments.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct MicroMerchantRecord {
    /// Hex of the merchant's id.
    pub merchant: String,
    /// The merchant's name.
    pub name: String,
    /// Σ micropayments confirmed to it.
    #[schema(value_type = crate::schema::AmountText)]
    pub confirmed: String,
    /// Σ paid out to it (payouts `paid`).
    #[schema(value_type = crate::schema::AmountText)]
    pub paid_out: String,
    /// Σ in payouts still `started`.
    #[schema(value_type = crate::schema::AmountText)]
    pub paying: String,
    /// Σ confirmed, in no payout yet.
    #[schema(value_type = crate::schema::AmountText)]
    pub owed: String,
}

/// What an MPP received from one CPP's net settlements.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct MicroCppRecord {
    /// The CPP (directory name).
    pub cpp: String,
    /// Σ of its statements.
    #[schema(value_type = crate::schema::AmountText)]
    pub received: String,
    /// Statements received.
    pub statements: i64,
}

/// An MPP's micropayment books (`GET /v1/admin/micro`, operator).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct MppMicroSummary {
    /// `none`, `one` or `two`.
    pub mode: String,
    /// Paid out to merchants and not yet funded by a CPP (credit in use).
    #[schema(value_type = crate::schema::AmountText)]
    pub advanced: String,
    /// The MPP's credit limit; `None` with micropayments off.
    #[schema(value_type = Option<crate::schema::AmountText>)]
    pub credit_limit: Option<String>,
    /// Payouts still `started`.
    pub payouts_started: i64,
    /// Per CPP.
    pub cpps: Vec<MicroCppRecord>,
    /// Per merchant with micropayments.
    pub merchants: Vec<MicroMerchantRecord>,
}

/// A PN awaiting a merchant's decision (`GET /v1/notices`). The customer is
/// a pseudonym only.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct Notice {
    /// Hex.
    pub payment_id: String,
    /// The amount.
    #[schema(value_type = crate::schema::AmountText)]
    pub amount: String,
    /// The merchant's reference from its TRANS.
    pub merchant_reference: String,
    /// Hex of the TRANS nonce (which TRANS was paid).
    pub trans_nonce: String,
    /// Hex of the customer's pseudonym for this merchant.
    pub customer_pseudonym: String,
    /// Decide before this (ms).
    pub deadline: u64,
    /// Hex of the shipping details the customer shared, sealed to the
    /// merchant ([`mpay_semops::SealedShipping`]); absent when none were
    /// shared. Open with [`Notice::open_shipping`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<String>,
}

impl Notice {
    /// The shared shipping details, opened with the merchant's keys: `None`
    /// when the customer shared none; an error when they do not open for
    /// this merchant and this payment's TRANS (moved, or tampered with).
    pub fn open_shipping(
        &self,
        keys: &SecretKeys,
        merchant: PartyId,
    ) -> Option<Result<ShippingDetails, SemopsError>> {
        let sealed = self.shipping.as_deref()?;
        Some(open_shipping_hex(sealed, &self.trans_nonce, keys, merchant))
    }
}

fn open_shipping_hex(
    sealed: &str,
    trans_nonce: &str,
    keys: &SecretKeys,
    merchant: PartyId,
) -> Result<ShippingDetails, SemopsError> {
    let malformed = |what| {
        SemopsError::Malformed(mpay_wire::DecodeError::Invalid {
            what,
            reason: "not hex of the right length",
        })
    };
    let sealed = hex_bytes(sealed).ok_or_else(|| malformed("shipping details"))?;
    let sealed = SealedShipping::from_wire(&sealed)?;
    let nonce: [u8; 16] = hex_bytes(trans_nonce)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("TRANS nonce"))?;
    mpay_semops::open_shipping(&sealed, keys, merchant, &nonce)
}

/// A refund as the MPP records it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct RefundView {
    /// Hex.
    pub payment_id: String,
    /// Hex of the merchant's refund idempotency key.
    pub refund_key: String,
    /// The amount.
    #[schema(value_type = crate::schema::AmountText)]
    pub amount: String,
    /// `funding`, `relayed`, `refunded` or `failed`.
    pub state: String,
    /// The bank transfer that moved the money to the CPP's account.
    pub transfer_reference: Option<String>,
    /// Hex of the CPP's signed confirmation (outcome refunded), once back.
    pub confirmation: Option<String>,
}

/// A payment as its merchant sees it at the MPP.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct MerchantPaymentView {
    /// Hex.
    pub payment_id: String,
    /// One of the MPP states (`mpay_network::mpp::MerchantState`).
    pub state: String,
    /// The amount.
    #[schema(value_type = crate::schema::AmountText)]
    pub amount: String,
    /// The merchant's reference.
    pub merchant_reference: String,
    /// Hex of the customer's pseudonym.
    pub customer_pseudonym: String,
    /// Hex of the TRANS nonce (which TRANS was paid).
    pub trans_nonce: String,
    /// Hex of the shipping details the customer shared, sealed to the
    /// merchant; absent when none were shared. Open with
    /// [`MerchantPaymentView::open_shipping`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping: Option<String>,
    /// The merchant's decision deadline (ms).
    pub deadline: u64,
    /// Approved at once under the merchant's standing approval (never shown
    /// as a notice).
    #[serde(default)]
    pub standing: bool,
    /// Refunded so far (confirmed or in flight).
    #[schema(value_type = crate::schema::AmountText)]
    pub refunded: String,
    /// Hex of the CPP's signed T confirmation (or other end), once back.
    pub confirmation: Option<String>,
    /// The refunds.
    pub refunds: Vec<RefundView>,
}

impl MerchantPaymentView {
    /// The CPP's signed confirmation, decoded.
    pub fn confirmation(&self) -> Option<SignedConfirmation> {
        let bytes = hex_bytes(self.confirmation.as_deref()?)?;
        SignedConfirmation::from_wire(&bytes).ok()
    }

    /// As [`Notice::open_shipping`].
    pub fn open_shipping(
        &self,
        keys: &SecretKeys,
        merchant: PartyId,
    ) -> Option<Result<ShippingDetails, SemopsError>> {
        let sealed = self.shipping.as_deref()?;
        Some(open_shipping_hex(sealed, &self.trans_nonce, keys, merchant))
    }
}

/// One payment in the MPP's operator listing.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct MppPaymentRecord {
    /// Listing order.
    pub seq: i64,
    /// Hex.
    pub payment_id: String,
    /// Hex of the merchant's id.
    pub merchant: String,
    /// The CPP (directory name).
    pub cpp: String,
    /// The amount.
    #[schema(value_type = crate::schema::AmountText)]
    pub amount: String,
    /// The MPP state.
    pub state: String,
    /// Refunded so far.
    #[schema(value_type = crate::schema::AmountText)]
    pub refunded: String,
    /// Created (ms).
    pub created_at: u64,
    /// Last changed (ms).
    pub updated_at: u64,
    /// A micropayment (paid to the merchant by a payout, not by the CPP's
    /// transfer).
    #[serde(default)]
    pub micro: bool,
    /// A CPP's net settlement has paid the MPP for it.
    #[serde(default)]
    pub funded: bool,
    /// The payout that paid the merchant for it.
    #[serde(default)]
    pub payout: Option<i64>,
}

/// One route at a DC.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct RouteRecord {
    /// Listing order.
    pub seq: i64,
    /// Hex.
    pub payment_id: String,
    /// The CPP that signed the PN (directory name).
    pub cpp: String,
    /// The hop the PN came from (CPP or DC).
    pub from: String,
    /// The hop it went to (MPP or DC); none when refused.
    pub to: Option<String>,
    /// `forwarded` or `late` (hop deadline passed: not forwarded).
    pub state: String,
    /// Messages passed along this route (PN, decision, confirmations, refunds).
    pub messages: i64,
    /// Created (ms).
    pub created_at: u64,
    /// Last changed (ms).
    pub updated_at: u64,
}

/// `?after=&limit=` of the operator listings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Only entries with a larger `seq`.
    #[serde(default)]
    pub after: i64,
    /// At most this many (capped by the service).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `?wait_ms=` of the long-polls.
#[derive(Serialize, Deserialize, Clone, Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Wait {
    /// Wait up to this long for a change (capped by the service).
    #[serde(default)]
    pub wait_ms: u64,
}

/// A signed object in a JSON body: hex of its wire encoding.
#[derive(Serialize, Deserialize, Clone, Debug, utoipa::ToSchema)]
pub struct SignedBody {
    /// Hex.
    pub signed: String,
}

/// A merchant's standing approval of micropayments at its MPP
/// (`GET`/`POST /v1/standing-approval`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct StandingApprovalView {
    /// Largest micropayment it approves.
    #[schema(value_type = crate::schema::AmountText)]
    pub per_payment_max: String,
    /// Most it approves in one period.
    #[schema(value_type = crate::schema::AmountText)]
    pub period_max: String,
    /// The period's length (ms); periods are its multiples since the epoch.
    pub period_ms: u64,
    /// When the merchant signed it (ms).
    pub signed_at: u64,
    /// When it ends (ms).
    pub expires_at: u64,
    /// Whether it approves payments now.
    pub in_force: bool,
    /// What it has approved in the current period.
    #[schema(value_type = crate::schema::AmountText)]
    pub used_in_period: String,
}

/// What `DELETE /v1/standing-approval` answers.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct Withdrawn {
    /// A standing approval stood and is withdrawn; false when none stood.
    pub withdrawn: bool,
}

/// What `/v1/inbox` answers: `applied`, `duplicate`, `late`, `refused`, …
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct InboxAnswer {
    /// What the receiver did with it.
    pub outcome: String,
    /// Hex of the receiver's signed acknowledgement (`mpay_network::InboxAck`,
    /// sealed to the sender, naming the frame's hash). The sender counts a
    /// delivery only when it verifies; empty from anyone else.
    #[serde(default)]
    pub ack: String,
}

/// Why a call to a service failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer (connection refused, timeout).
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What reqwest said.
        #[source]
        source: reqwest::Error,
    },
    /// The service answered with an error.
    #[error("refused ({status}): {} — {}", .error.error, .error.message)]
    Refused {
        /// HTTP status.
        status: u16,
        /// The service's error.
        error: ApiError,
    },
    /// The answer does not parse.
    #[error("unexpected answer: {0}")]
    BadAnswer(String),
    /// Not sent: a token would have crossed a plaintext connection (the
    /// caller's configuration is at fault).
    #[error(transparent)]
    Transport(#[from] mpay_tls_client::TlsError),
}

impl ClientError {
    /// The service's error code (`wrong_pin`, …), if it refused.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Refused { error, .. } => Some(&error.error),
            _ => None,
        }
    }

    /// True when the service answered 503 `busy`: it changed nothing, and
    /// the same request may be sent again after a pause.
    pub fn is_busy(&self) -> bool {
        matches!(self, ClientError::Refused { status: 503, error } if error.error == "busy")
    }
}

/// Why [`CppClient::submit_sealed`] failed.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError<E> {
    /// The device could not seal its PR.
    #[error("sealing the PR: {0}")]
    Seal(#[source] E),
    /// The CPP refused the PR or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
}

impl<E: From<ClientError>> SubmitError<E> {
    /// One error of the caller's type, whichever step failed.
    pub fn into_error(self) -> E {
        match self {
            SubmitError::Seal(error) => error,
            SubmitError::Client(error) => E::from(error),
        }
    }
}

/// How many times [`CppClient::submit_sealed`] sends a PR while the CPP
/// answers `busy`.
pub const SUBMIT_BUSY_ATTEMPTS_MAX: u32 = 5;

#[derive(Clone, Debug)]
struct Http {
    base: String,
    http: reqwest::Client,
    plaintext: mpay_tls_client::Plaintext,
}

impl Http {
    fn new(base: &str) -> Result<Http, mpay_tls_client::TlsError> {
        let http =
            mpay_tls_client::default_client(Duration::from_millis(CLIENT_TIMEOUT_MS_DEFAULT))?;
        Ok(Http::with_http(base, http))
    }

    fn with_http(base: &str, http: reqwest::Client) -> Http {
        Http {
            base: base.trim_end_matches('/').to_owned(),
            http,
            plaintext: mpay_tls_client::Plaintext::from_env(),
        }
    }

    /// Sends `request`, unless it carries a token to a plaintext URL the
    /// policy refuses.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            url: self.base.clone(),
            source,
        };
        let request = request.build().map_err(unreachable)?;
        mpay_tls_client::check_request(&request, self.plaintext)?;
        self.http.execute(request).await.map_err(unreachable)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = self.send(request).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        if status.is_success() {
            serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer(e.to_string()))
        } else {
            let error = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiError {
                error: "http".into(),
                message: String::from_utf8_lossy(&bytes).into_owned(),
            });
            Err(ClientError::Refused {
                status: status.as_u16(),
                error,
            })
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
        let request = self.http.get(self.url(path));
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    fn post<B: Serialize>(
        &self,
        path: &str,
        token: Option<&str>,
        body: &B,
    ) -> reqwest::RequestBuilder {
        let request = self.http.post(self.url(path)).json(body);
        match token {
            Some(t) => request.bearer_auth(t),
            None => request,
        }
    }

    fn long(&self, request: reqwest::RequestBuilder, wait_ms: u64) -> reqwest::RequestBuilder {
        request.timeout(Duration::from_millis(
            CLIENT_TIMEOUT_MS_DEFAULT.saturating_add(wait_ms),
        ))
    }

    async fn health(&self) -> Result<(), ClientError> {
        let _: serde_json::Value = self.json(self.get("/health", None)).await?;
        Ok(())
    }

    async fn identity(&self) -> Result<Identity, ClientError> {
        self.json(self.get("/v1/identity", None)).await
    }

    async fn work(&self, operator_token: &str) -> Result<Work, ClientError> {
        self.json(self.get("/v1/admin/work", Some(operator_token)))
            .await
    }

    async fn metrics(&self) -> Result<String, ClientError> {
        let response = self.send(self.get("/metrics", None)).await?;
        response
            .text()
            .await
            .map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.json(
            self.http
                .post(self.url("/v1/inbox"))
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(frame),
        )
        .await
    }
}

fn certificate_from_hex(text: &str) -> Result<Certificate, ClientError> {
    let bytes =
        hex_bytes(text).ok_or_else(|| ClientError::BadAnswer("certificate: not hex".into()))?;
    Certificate::from_wire(&bytes).map_err(|e| ClientError::BadAnswer(format!("certificate: {e}")))
}

/// A client of a CPP.
#[derive(Clone, Debug)]
pub struct CppClient(Http);

impl CppClient {
    /// The CPP at `base` (e.g. `http://127.0.0.1:7811`).
    /// An error when the process's root of trust cannot be read
    /// ([`mpay_tls_client::default_client`]).
    pub fn new(base: &str) -> Result<CppClient, mpay_tls_client::TlsError> {
        Ok(CppClient(Http::new(base)?))
    }

    /// Sharing `http`'s pool and time limit.
    pub fn with_http(base: &str, http: reqwest::Client) -> CppClient {
        CppClient(Http::with_http(base, http))
    }

    /// The same client, sending tokens over plaintext to loopback as
    /// `plaintext` (or the environment) allows.
    pub fn with_plaintext(mut self, plaintext: mpay_tls_client::Plaintext) -> CppClient {
        self.0.plaintext = plaintext.or_env();
        self
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.0.health().await
    }

    /// `GET /metrics` (Prometheus text).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.0.metrics().await
    }

    /// `GET /v1/identity`.
    pub async fn identity(&self) -> Result<Identity, ClientError> {
        self.0.identity().await
    }

    /// `GET /v1/admin/work` (operator): what the service still has moving.
    pub async fn work(&self, operator_token: &str) -> Result<Work, ClientError> {
        self.0.work(operator_token).await
    }

    /// The CPP's certificate (what a customer device seals PRs to).
    pub async fn certificate(&self) -> Result<Certificate, ClientError> {
        certificate_from_hex(&self.identity().await?.certificate)
    }

    /// `POST /v1/customers` (operator): enrols a customer and device;
    /// returns the device's certificate (role Customer, issued by the CPP).
    pub async fn enroll_customer(
        &self,
        operator_token: &str,
        request: &EnrolCustomer,
    ) -> Result<Certificate, ClientError> {
        let answer: Enrolled = self
            .0
            .json(self.0.post("/v1/customers", Some(operator_token), request))
            .await?;
        certificate_from_hex(&answer.certificate)
    }

    /// `POST /v1/customers/{name}/pin` (operator): sets a new PIN.
    pub async fn set_pin(
        &self,
        operator_token: &str,
        customer: &str,
        pin: &str,
    ) -> Result<(), ClientError> {
        let request = SetPin {
            pin: pin.to_owned(),
        };
        let _: serde_json::Value = self
            .0
            .json(self.0.post(
                &format!("/v1/customers/{customer}/pin"),
                Some(operator_token),
                &request,
            ))
            .await?;
        Ok(())
    }

    /// `GET /v1/admin/pins` (operator): how the customers' PINs are stored.
    pub async fn pin_report(&self, operator_token: &str) -> Result<PinReport, ClientError> {
        self.0
            .json(self.0.get("/v1/admin/pins", Some(operator_token)))
            .await
    }

    /// `POST /v1/customers/{name}/unlock` (operator).
    pub async fn unlock(&self, operator_token: &str, customer: &str) -> Result<(), ClientError> {
        let _: serde_json::Value = self
            .0
            .json(self.0.post(
                &format!("/v1/customers/{customer}/unlock"),
                Some(operator_token),
                &serde_json::json!({}),
            ))
            .await?;
        Ok(())
    }

    /// `POST /v1/payments`: a PR frame made by `mpay_semops::seal_pr`.
    pub async fn submit(&self, pr_frame: Vec<u8>) -> Result<PaymentStatus, ClientError> {
        self.0
            .json(
                self.0
                    .http
                    .post(self.0.url("/v1/payments"))
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(pr_frame),
            )
            .await
    }

    /// Submits the PR that `seal` makes, as a customer's device does: while
    /// the CPP answers `busy` (nothing recorded), waits
    /// [`BUSY_RETRY_AFTER_S`](crate::BUSY_RETRY_AFTER_S) seconds,
    /// doubling, and sends it again, [`SUBMIT_BUSY_ATTEMPTS_MAX`] times in
    /// all. `seal` is called once per attempt: the same PR (same TRANS and
    /// idempotency key) in a fresh envelope, since the CPP refuses an
    /// envelope it has already opened as a replay.
    pub async fn submit_sealed<E>(
        &self,
        mut seal: impl FnMut() -> Result<Vec<u8>, E>,
    ) -> Result<PaymentStatus, SubmitError<E>> {
        let mut pause = Duration::from_secs(u64::from(crate::BUSY_RETRY_AFTER_S));
        let mut attempt = 1;
        loop {
            match self.submit(seal().map_err(SubmitError::Seal)?).await {
                Err(error) if error.is_busy() && attempt < SUBMIT_BUSY_ATTEMPTS_MAX => {
                    tokio::time::sleep(pause).await;
                    pause = pause.saturating_mul(2);
                    attempt += 1;
                }
                other => return Ok(other?),
            }
        }
    }

    /// `GET /v1/payments/{id}?wait_ms=`: answers once the payment is final
    /// or after `wait_ms`.
    pub async fn status(
        &self,
        payment_id: &str,
        wait_ms: u64,
    ) -> Result<PaymentStatus, ClientError> {
        let request = self.0.get(
            &format!("/v1/payments/{payment_id}?wait_ms={wait_ms}"),
            None,
        );
        self.0.json(self.0.long(request, wait_ms)).await
    }

    /// `GET /v1/admin/payments?after=&limit=` (operator).
    pub async fn payments(
        &self,
        operator_token: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<PaymentRecord>, ClientError> {
        self.0
            .json(self.0.get(
                &format!("/v1/admin/payments?after={after}&limit={limit}"),
                Some(operator_token),
            ))
            .await
    }

    /// `POST /v1/inbox` (services only: a sealed frame).
    pub async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.0.post_inbox(frame).await
    }

    /// `GET /v1/admin/micro` (operator): the micropayment books.
    pub async fn micro_summary(
        &self,
        operator_token: &str,
    ) -> Result<CppMicroSummary, ClientError> {
        self.0
            .json(self.0.get("/v1/admin/micro", Some(operator_token)))
            .await
    }

    /// `POST /v1/admin/micro/recluster` (operator): k-means θ/W per customer.
    pub async fn recluster(&self, operator_token: &str) -> Result<ReclusterReport, ClientError> {
        self.0
            .json(self.0.post(
                "/v1/admin/micro/recluster",
                Some(operator_token),
                &serde_json::json!({}),
            ))
            .await
    }
}

/// A client of an MPP.
#[derive(Clone, Debug)]
pub struct MppClient(Http);

impl MppClient {
    /// `GET /v1/admin/micro` (operator): the micropayment books.
    pub async fn micro_summary(
        &self,
        operator_token: &str,
    ) -> Result<MppMicroSummary, ClientError> {
        self.0
            .json(self.0.get("/v1/admin/micro", Some(operator_token)))
            .await
    }

    /// The MPP at `base`.
    /// An error when the process's root of trust cannot be read
    /// ([`mpay_tls_client::default_client`]).
    pub fn new(base: &str) -> Result<MppClient, mpay_tls_client::TlsError> {
        Ok(MppClient(Http::new(base)?))
    }

    /// Sharing `http`'s pool and time limit.
    pub fn with_http(base: &str, http: reqwest::Client) -> MppClient {
        MppClient(Http::with_http(base, http))
    }

    /// The same client, sending tokens over plaintext to loopback as
    /// `plaintext` (or the environment) allows.
    pub fn with_plaintext(mut self, plaintext: mpay_tls_client::Plaintext) -> MppClient {
        self.0.plaintext = plaintext.or_env();
        self
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.0.health().await
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.0.metrics().await
    }

    /// `GET /v1/identity`.
    pub async fn identity(&self) -> Result<Identity, ClientError> {
        self.0.identity().await
    }

    /// `GET /v1/admin/work` (operator): what the service still has moving.
    pub async fn work(&self, operator_token: &str) -> Result<Work, ClientError> {
        self.0.work(operator_token).await
    }

    /// `POST /v1/merchants` (operator): the merchant's certificate (role
    /// Merchant, issued by the MPP) and its bearer token.
    pub async fn enroll_merchant(
        &self,
        operator_token: &str,
        request: &EnrolMerchant,
    ) -> Result<(Certificate, String), ClientError> {
        let answer: Enrolled = self
            .0
            .json(self.0.post("/v1/merchants", Some(operator_token), request))
            .await?;
        let token = answer
            .token
            .ok_or_else(|| ClientError::BadAnswer("no merchant token".into()))?;
        Ok((certificate_from_hex(&answer.certificate)?, token))
    }

    /// `GET /v1/merchants/{id}`: a merchant's certificate (public).
    pub async fn merchant_certificate(&self, id: PartyId) -> Result<Certificate, ClientError> {
        let answer: Enrolled = self
            .0
            .json(self.0.get(&format!("/v1/merchants/{}", id.to_hex()), None))
            .await?;
        certificate_from_hex(&answer.certificate)
    }

    /// `GET /v1/notices?wait_ms=` (merchant): PNs awaiting this merchant's
    /// decision; waits up to `wait_ms` for one if there is none.
    pub async fn notices(
        &self,
        merchant_token: &str,
        wait_ms: u64,
    ) -> Result<Vec<Notice>, ClientError> {
        let request = self.0.get(
            &format!("/v1/notices?wait_ms={wait_ms}"),
            Some(merchant_token),
        );
        self.0.json(self.0.long(request, wait_ms)).await
    }

    /// `POST /v1/decisions` (merchant).
    pub async fn decide(
        &self,
        merchant_token: &str,
        decision: &SignedMerchantDecision,
    ) -> Result<MerchantPaymentView, ClientError> {
        let body = SignedBody {
            signed: hex_string(&decision.to_wire()),
        };
        self.0
            .json(self.0.post("/v1/decisions", Some(merchant_token), &body))
            .await
    }

    /// `POST /v1/standing-approval` (merchant): sets the merchant's standing
    /// approval of micropayments, replacing an older one.
    pub async fn set_standing_approval(
        &self,
        merchant_token: &str,
        approval: &SignedStandingApproval,
    ) -> Result<StandingApprovalView, ClientError> {
        let body = SignedBody {
            signed: hex_string(&approval.to_wire()),
        };
        self.0
            .json(
                self.0
                    .post("/v1/standing-approval", Some(merchant_token), &body),
            )
            .await
    }

    /// `GET /v1/standing-approval` (merchant); `None` when none stands.
    pub async fn standing_approval(
        &self,
        merchant_token: &str,
    ) -> Result<Option<StandingApprovalView>, ClientError> {
        match self
            .0
            .json(self.0.get("/v1/standing-approval", Some(merchant_token)))
            .await
        {
            Ok(view) => Ok(Some(view)),
            Err(ClientError::Refused { status: 404, .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// `DELETE /v1/standing-approval` (merchant): from now on every
    /// micropayment waits for the merchant's decision.
    pub async fn withdraw_standing_approval(
        &self,
        merchant_token: &str,
    ) -> Result<Withdrawn, ClientError> {
        let request = self
            .0
            .http
            .delete(self.0.url("/v1/standing-approval"))
            .bearer_auth(merchant_token);
        self.0.json(request).await
    }

    /// `POST /v1/refunds` (merchant).
    pub async fn refund(
        &self,
        merchant_token: &str,
        request: &SignedRefundRequest,
    ) -> Result<RefundView, ClientError> {
        let body = SignedBody {
            signed: hex_string(&request.to_wire()),
        };
        self.0
            .json(self.0.post("/v1/refunds", Some(merchant_token), &body))
            .await
    }

    /// `GET /v1/payments/{id}?wait_ms=` (merchant): the payment, with the T
    /// confirmation once it came back; waits up to `wait_ms` for one.
    pub async fn payment(
        &self,
        merchant_token: &str,
        payment_id: &str,
        wait_ms: u64,
    ) -> Result<MerchantPaymentView, ClientError> {
        let request = self.0.get(
            &format!("/v1/payments/{payment_id}?wait_ms={wait_ms}"),
            Some(merchant_token),
        );
        self.0.json(self.0.long(request, wait_ms)).await
    }

    /// `GET /v1/admin/payments?after=&limit=` (operator).
    pub async fn payments(
        &self,
        operator_token: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<MppPaymentRecord>, ClientError> {
        self.0
            .json(self.0.get(
                &format!("/v1/admin/payments?after={after}&limit={limit}"),
                Some(operator_token),
            ))
            .await
    }

    /// `POST /v1/inbox` (services only).
    pub async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.0.post_inbox(frame).await
    }
}

/// A client of a DC.
#[derive(Clone, Debug)]
pub struct DcClient(Http);

impl DcClient {
    /// The DC at `base`.
    /// An error when the process's root of trust cannot be read
    /// ([`mpay_tls_client::default_client`]).
    pub fn new(base: &str) -> Result<DcClient, mpay_tls_client::TlsError> {
        Ok(DcClient(Http::new(base)?))
    }

    /// Sharing `http`'s pool, time limit and root of trust.
    pub fn with_http(base: &str, http: reqwest::Client) -> DcClient {
        DcClient(Http::with_http(base, http))
    }

    /// The same client, sending tokens over plaintext to loopback as
    /// `plaintext` (or the environment) allows.
    pub fn with_plaintext(mut self, plaintext: mpay_tls_client::Plaintext) -> DcClient {
        self.0.plaintext = plaintext.or_env();
        self
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.0.health().await
    }

    /// `GET /metrics`.
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.0.metrics().await
    }

    /// `GET /v1/identity`.
    pub async fn identity(&self) -> Result<Identity, ClientError> {
        self.0.identity().await
    }

    /// `GET /v1/admin/work` (operator): what the service still has moving.
    pub async fn work(&self, operator_token: &str) -> Result<Work, ClientError> {
        self.0.work(operator_token).await
    }

    /// `GET /v1/admin/routes?after=&limit=` (operator).
    pub async fn routes(
        &self,
        operator_token: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<RouteRecord>, ClientError> {
        self.0
            .json(self.0.get(
                &format!("/v1/admin/routes?after={after}&limit={limit}"),
                Some(operator_token),
            ))
            .await
    }

    /// `POST /v1/inbox` (services only).
    pub async fn post_inbox(&self, frame: Vec<u8>) -> Result<InboxAnswer, ClientError> {
        self.0.post_inbox(frame).await
    }
}
