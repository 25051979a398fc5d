//! The JSON shapes of the three services' APIs and their reqwest clients
//! ([`CppClient`], [`MppClient`], [`DcClient`]), used by the CLI, the tests,
//! the benchmark, and by the CPP to fetch merchant certificates.
//!
//! Binary values travel as hex: certificates and signed objects as hex of
//! their `mpay-wire` encoding, ids as 32 hex digits. Amounts are text like
//! `"12.50 EUR"`, times ms since the epoch.

use mpay_identity::{PartyId, PublicKeys, SecretKeys, hex_bytes, hex_string};
use mpay_semops::{SealedShipping, SemopsError, ShippingDetails, SignedConfirmation};
use mpay_wire::{Decode, Encode};
use serde::{Deserialize, Serialize};

mod clients;

pub use clients::{
    ClientError, CppClient, DcClient, MppClient, SUBMIT_BUSY_ATTEMPTS_MAX, SubmitError,
};

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

/// Most decisions in one `POST /v1/decisions/batch`.
pub const DECISIONS_BATCH_MAX: usize = 256;

/// Several signed decisions at once (`POST /v1/decisions/batch`): each is
/// checked and applied on its own, all in one transaction at the MPP.
#[derive(Serialize, Deserialize, Clone, Debug, utoipa::ToSchema)]
pub struct DecisionBatch {
    /// Hex of each `SignedMerchantDecision`, at most
    /// [`DECISIONS_BATCH_MAX`].
    pub decisions: Vec<String>,
}

/// What became of one decision of a batch, in the batch's order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, utoipa::ToSchema)]
pub struct DecisionResult {
    /// The payment it decides (hex), once the decision is checked (it
    /// decodes, its signature and validity hold, its payment is the
    /// merchant's); `null` for a decision refused before that.
    #[serde(default)]
    pub payment_id: Option<String>,
    /// The payment's state at the MPP after it, if it was taken (a repeat
    /// of the decision taken is taken again).
    #[serde(default)]
    pub state: Option<String>,
    /// Why it was refused, if it was (the error a single `POST
    /// /v1/decisions` would have answered).
    #[serde(default)]
    pub error: Option<crate::ApiError>,
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
