//! The two ends of a SEMOPS payment as their devices run them: a
//! customer's phone ([`CustomerDevice`]) and a merchant's terminal
//! ([`MerchantTerminal`]). Each holds its own keys and its processor's
//! client, signs what only it may sign (a PR, a TRANS, a decision, a
//! refund, a standing approval) and waits for the answers.
//!
//! `mpay customer` and `mpay merchant`, the demo and the load harness all
//! drive payments through these, so the devices of every tool behave
//! alike. A device is a driver: it reads the wall clock
//! ([`mpay_clock::wall_clock`]) for the validity of what it signs.

use std::time::{Duration, Instant};

use mpay_clock::wall_clock;
use mpay_identity::{Certificate, PartyId, SecretKeys, hex_bytes, hex_string};
use mpay_money::Amount;
use mpay_semops::{
    ConfirmationOutcome, CustomerRef, Decision, MerchantDecision, PaymentRequest, Pin,
    REQUEST_LIFETIME_DEFAULT_MS, RefundRequest, SealedShipping, SemopsError, Signed, SignedTrans,
    StandingApproval, Trans, Validity, seal_pr,
};
use rand_core::CryptoRng;

use crate::semops::{
    ClientError, CppClient, DECISIONS_BATCH_MAX, DecisionResult, MerchantPaymentView, MppClient,
    Notice, PaymentStatus, RefundView, StandingApprovalView, SubmitError,
};

/// Longest single long-poll a device makes.
pub const POLL_MS_MAX: u64 = 10_000;
/// Pause before asking an unreachable (restarting) processor again.
pub const UNREACHABLE_RETRY_MS: u64 = 200;

/// What went wrong on a device's side of a payment.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The processor could not be asked, or refused what it was asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A message could not be made, signed or sealed (a field too long, a
    /// malformed PIN, a key that does not fit).
    #[error(transparent)]
    Semops(#[from] SemopsError),
    /// Text given for an id or key is not what it must be.
    #[error("{0}")]
    Malformed(String),
    /// A refund asked of a payment the MPP has not seen complete. Nothing
    /// was asked, so its idempotency key is not used up.
    #[error(
        "payment {payment} is not completed at the MPP yet ({state}): wait for its confirmation \
         (`mpay merchant status {payment} --wait-secs 30`) and refund again; nothing was refunded"
    )]
    NotCompleted {
        /// The payment's id (hex).
        payment: String,
        /// Its state at the MPP.
        state: String,
    },
}

/// A payment id or idempotency key (32 hex digits) from text.
pub fn id16(text: &str, what: &str) -> Result<[u8; 16], DeviceError> {
    hex_bytes(text.trim())
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| DeviceError::Malformed(format!("{what}: 32 hex digits, not {text:?}")))
}

/// How a payment ended, for the party that waited for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Paid (T or DT confirmation), or paid and then refunded.
    Completed,
    /// The CPP or the customer's bank refused it.
    Declined,
    /// The merchant rejected it.
    Rejected,
    /// No decision came in time.
    Expired,
    /// Not final yet.
    Pending,
}

impl Outcome {
    /// The outcome of a payment's status at the CPP.
    pub fn of_status(status: &PaymentStatus) -> Outcome {
        use mpay_processor::payment::State;
        if !status.is_final {
            return Outcome::Pending;
        }
        match State::parse(&status.state) {
            Some(State::Completed | State::Refunded) => Outcome::Completed,
            Some(State::Rejected) => Outcome::Rejected,
            Some(State::Expired) => Outcome::Expired,
            _ => Outcome::Declined,
        }
    }

    /// The outcome of a payment as its MPP shows it (the MPP's states):
    /// final once the CPP's confirmation has arrived.
    pub fn of_view(view: &MerchantPaymentView) -> Outcome {
        use mpay_processor::merchant::State;
        match State::parse(&view.state) {
            Some(State::Completed | State::Refunded) => Outcome::Completed,
            Some(State::Rejected) => Outcome::Rejected,
            Some(State::Expired) => Outcome::Expired,
            _ if view.confirmation.is_none() => Outcome::Pending,
            _ => Outcome::Declined,
        }
    }
}

/// Why a CPP refused a payment request outright (nothing was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The PIN was wrong.
    WrongPin,
    /// Too many wrong PINs: the customer is locked out.
    Locked,
    /// Not enough money, or the CPP declined it.
    Declined,
}

impl Refusal {
    /// The refusal `error` carries, if it is one of these.
    pub fn of(error: &ClientError) -> Option<Refusal> {
        match error.code()? {
            "wrong_pin" => Some(Refusal::WrongPin),
            "account_locked" => Some(Refusal::Locked),
            "insufficient_funds" | "declined" => Some(Refusal::Declined),
            _ => None,
        }
    }
}

/// The answer to a submitted payment request.
#[derive(Debug)]
pub enum Submitted {
    /// The CPP recorded it: its status now.
    Accepted(PaymentStatus),
    /// The CPP refused it (or could not be reached): nothing was recorded.
    Refused(ClientError),
}

/// A customer's phone: its device keys and its CPP.
pub struct CustomerDevice {
    /// The customer's name (its account at the CPP).
    pub name: String,
    /// The device's party id (its certificate's subject).
    pub id: PartyId,
    /// The device's keys.
    pub keys: SecretKeys,
    /// The CPP's party id.
    pub cpp: PartyId,
    /// The CPP's certificate: its key seals PRs, and confirmations verify
    /// against it.
    pub cpp_certificate: Certificate,
    /// The CPP.
    pub client: CppClient,
}

impl std::fmt::Debug for CustomerDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomerDevice")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("cpp", &self.cpp)
            .finish_non_exhaustive()
    }
}

impl CustomerDevice {
    /// The PR paying `trans` with `pin`, under idempotency `key` (the same
    /// key makes a retry the same payment).
    pub fn request(
        &self,
        trans: SignedTrans,
        pin: &str,
        key: [u8; 16],
        shipping: Option<SealedShipping>,
    ) -> Result<PaymentRequest, DeviceError> {
        Ok(PaymentRequest {
            trans,
            customer: CustomerRef::new(&self.name)
                .map_err(|e| DeviceError::Malformed(format!("customer name: {e}")))?,
            cpp: self.cpp,
            pin: Pin::new(pin).map_err(|e| DeviceError::Malformed(format!("PIN: {e}")))?,
            idempotency_key: key,
            shipping,
        })
    }

    /// `request` signed by this device and sealed to its CPP, in a fresh
    /// envelope.
    pub fn seal(
        &self,
        request: &PaymentRequest,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, SemopsError> {
        seal_pr(
            request,
            &self.keys,
            self.id,
            &self.cpp_certificate.body.keys,
            wall_clock(),
            rng,
        )
    }

    /// Submits `request` ([`CppClient::submit_sealed`]: sealed afresh at
    /// each attempt while the CPP is busy).
    pub async fn submit(
        &self,
        request: &PaymentRequest,
        rng: &mut impl CryptoRng,
    ) -> Result<Submitted, DeviceError> {
        match self.client.submit_sealed(|| self.seal(request, rng)).await {
            Ok(status) => Ok(Submitted::Accepted(status)),
            Err(SubmitError::Seal(error)) => Err(error.into()),
            Err(SubmitError::Client(error)) => Ok(Submitted::Refused(error)),
        }
    }

    /// Long-polls the CPP until the payment is final or `wait` has passed;
    /// an unreachable CPP (restarting: the payment is durable there) is
    /// asked again after a pause.
    pub async fn wait_final(
        &self,
        status: PaymentStatus,
        wait: Duration,
    ) -> Result<PaymentStatus, ClientError> {
        wait_final(&self.client, status, wait).await
    }

    /// The outcome of `status`'s confirmation, verified against the CPP's
    /// certificate; `None` without a confirmation.
    pub fn verified_outcome(
        &self,
        status: &PaymentStatus,
    ) -> Option<Result<(ConfirmationOutcome, Amount), SemopsError>> {
        let signed = status.confirmation()?;
        Some(
            signed
                .verify(&self.cpp_certificate, wall_clock())
                .map(|c| (c.outcome, c.amount)),
        )
    }
}

/// Long-polls `client` until the payment of `status` is final or `wait` has
/// passed (see [`CustomerDevice::wait_final`]).
pub async fn wait_final(
    client: &CppClient,
    mut status: PaymentStatus,
    wait: Duration,
) -> Result<PaymentStatus, ClientError> {
    let started = Instant::now();
    while !status.is_final {
        let left = wait.saturating_sub(started.elapsed());
        if left.is_zero() {
            break;
        }
        match client.status(&status.payment_id, poll_ms(left)).await {
            Ok(next) => status = next,
            Err(ClientError::Unreachable { .. }) => {
                tokio::time::sleep(Duration::from_millis(UNREACHABLE_RETRY_MS)).await;
            }
            Err(other) => return Err(other),
        }
    }
    Ok(status)
}

fn poll_ms(left: Duration) -> u64 {
    u64::try_from(left.as_millis())
        .unwrap_or(POLL_MS_MAX)
        .min(POLL_MS_MAX)
}

/// A merchant's terminal: the merchant's keys, its MPP and its token there.
pub struct MerchantTerminal {
    /// The merchant's party id.
    pub id: PartyId,
    /// The merchant's keys.
    pub keys: SecretKeys,
    /// The MPP's party id.
    pub mpp: PartyId,
    /// The MPP.
    pub client: MppClient,
    /// The merchant's bearer token at the MPP.
    pub token: String,
}

/// What a TRANS asks for.
#[derive(Debug, Clone)]
pub struct Terms {
    /// The amount.
    pub amount: Amount,
    /// The merchant's reference (an order number).
    pub reference: String,
    /// For the customer.
    pub description: String,
    /// Payable for this long from now, milliseconds.
    pub valid_ms: u64,
}

impl std::fmt::Debug for MerchantTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MerchantTerminal")
            .field("id", &self.id)
            .field("mpp", &self.mpp)
            .finish_non_exhaustive()
    }
}

impl MerchantTerminal {
    /// A TRANS for `terms`, signed; `nonce` tells its notice apart.
    pub fn trans(&self, terms: Terms, nonce: [u8; 16]) -> Result<SignedTrans, SemopsError> {
        Signed::sign(
            Trans {
                merchant: self.id,
                mpp: self.mpp,
                amount: terms.amount,
                merchant_reference: terms.reference,
                expires_at: wall_clock().saturating_add_ms(terms.valid_ms),
                description: terms.description,
                nonce,
            },
            &self.keys,
        )
    }

    /// Signs `decision` on payment `payment` and gives it to the MPP.
    pub async fn decide(
        &self,
        payment: &str,
        decision: Decision,
    ) -> Result<MerchantPaymentView, DeviceError> {
        let signed = Signed::sign(
            MerchantDecision {
                payment_id: id16(payment, "a payment id")?,
                merchant: self.id,
                decision,
                validity: Validity::starting(wall_clock(), REQUEST_LIFETIME_DEFAULT_MS),
            },
            &self.keys,
        )?;
        Ok(self.client.decide(&self.token, &signed).await?)
    }

    /// Signs a decision on each payment and gives them to the MPP in
    /// batches of at most [`DECISIONS_BATCH_MAX`] (one request each); what
    /// became of each, in order.
    pub async fn decide_all(
        &self,
        decisions: &[(&str, Decision)],
    ) -> Result<Vec<DecisionResult>, DeviceError> {
        let mut results = Vec::with_capacity(decisions.len());
        for chunk in decisions.chunks(DECISIONS_BATCH_MAX) {
            let signed = chunk
                .iter()
                .map(|(payment, decision)| {
                    Ok(Signed::sign(
                        MerchantDecision {
                            payment_id: id16(payment, "a payment id")?,
                            merchant: self.id,
                            decision: decision.clone(),
                            validity: Validity::starting(wall_clock(), REQUEST_LIFETIME_DEFAULT_MS),
                        },
                        &self.keys,
                    )?)
                })
                .collect::<Result<Vec<_>, DeviceError>>()?;
            results.extend(self.client.decide_batch(&self.token, &signed).await?);
        }
        Ok(results)
    }

    /// The payment notices awaiting a decision, long-polling up to `wait_ms`.
    pub async fn notices(&self, wait_ms: u64) -> Result<Vec<Notice>, ClientError> {
        self.client.notices(&self.token, wait_ms).await
    }

    /// Waits up to `wait` for the notice of the TRANS with `nonce`.
    pub async fn notice_of(
        &self,
        nonce: [u8; 16],
        wait: Duration,
    ) -> Result<Option<Notice>, ClientError> {
        let started = Instant::now();
        let nonce = hex_string(&nonce);
        loop {
            let left = wait.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(None);
            }
            let notices = self.notices(poll_ms(left)).await?;
            if let Some(n) = notices.into_iter().find(|n| n.trans_nonce == nonce) {
                return Ok(Some(n));
            }
        }
    }

    /// The payment as the MPP shows it, long-polling up to `wait` for its
    /// confirmation.
    pub async fn wait_final(
        &self,
        payment: &str,
        wait: Duration,
    ) -> Result<MerchantPaymentView, ClientError> {
        let started = Instant::now();
        loop {
            let left = wait.saturating_sub(started.elapsed());
            let view = self
                .client
                .payment(&self.token, payment, poll_ms(left))
                .await?;
            if view.confirmation.is_some() || left.is_zero() {
                return Ok(view);
            }
        }
    }

    /// Refunds `amount` of `payment` under idempotency `key`. A refund the
    /// MPP refuses uses its key up, and the MPP refuses one of a payment
    /// not completed there yet: so this first waits up to `wait` for the
    /// MPP to see the payment end, and asks nothing if it does not.
    pub async fn refund(
        &self,
        payment: &str,
        amount: Amount,
        key: [u8; 16],
        wait: Duration,
    ) -> Result<RefundView, DeviceError> {
        let payment_id = id16(payment, "a payment id")?;
        let view = self.wait_final(payment, wait).await?;
        if view.confirmation.is_none() {
            return Err(DeviceError::NotCompleted {
                payment: payment.to_owned(),
                state: view.state,
            });
        }
        let signed = Signed::sign(
            RefundRequest {
                payment_id,
                merchant: self.id,
                amount,
                idempotency_key: key,
                validity: Validity::starting(wall_clock(), REQUEST_LIFETIME_DEFAULT_MS),
            },
            &self.keys,
        )?;
        Ok(self.client.refund(&self.token, &signed).await?)
    }

    /// The idempotency key of the refund of `amount` of `payment` that the
    /// merchant calls `reference` (the same three make the same refund).
    pub fn refund_key(
        &self,
        payment: &str,
        amount: Amount,
        reference: &str,
    ) -> Result<[u8; 16], DeviceError> {
        let payment = id16(payment, "a payment id")?;
        Ok(RefundRequest::derive_key(
            self.id, &payment, amount, reference,
        )?)
    }

    /// Signs a standing approval of micropayments (up to `per_payment`
    /// each, `period_max` a period of `period_ms`, standing `valid_ms` from
    /// now) and gives it to the MPP; it replaces the one standing.
    pub async fn stand(
        &self,
        per_payment: Amount,
        period_max: Amount,
        period_ms: u64,
        valid_ms: u64,
    ) -> Result<StandingApprovalView, DeviceError> {
        let now = wall_clock();
        let approval = Signed::sign(
            StandingApproval {
                merchant: self.id,
                mpp: self.mpp,
                per_payment_max: per_payment,
                period_max,
                period_ms,
                signed_at: now,
                expires_at: now.saturating_add_ms(valid_ms),
            },
            &self.keys,
        )?;
        Ok(self
            .client
            .set_standing_approval(&self.token, &approval)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;

    fn status(state: &str, is_final: bool) -> PaymentStatus {
        serde_json::from_value(serde_json::json!({
            "payment_id": "00".repeat(16),
            "state": state,
            "is_final": is_final,
            "amount": "1.00 EUR",
            "merchant_reference": "",
            "deadline": 0,
            "refunded": "0.00 EUR",
        }))
        .expect("a status")
    }

    #[test]
    fn outcomes_of_the_cpp_states() {
        assert_eq!(
            Outcome::of_status(&status("completed", true)),
            Outcome::Completed
        );
        assert_eq!(
            Outcome::of_status(&status("refunded", true)),
            Outcome::Completed
        );
        assert_eq!(
            Outcome::of_status(&status("rejected", true)),
            Outcome::Rejected
        );
        assert_eq!(
            Outcome::of_status(&status("expired", true)),
            Outcome::Expired
        );
        assert_eq!(
            Outcome::of_status(&status("declined", true)),
            Outcome::Declined
        );
        assert_eq!(
            Outcome::of_status(&status("completed", false)),
            Outcome::Pending
        );
        assert_eq!(
            Outcome::of_status(&status("received", false)),
            Outcome::Pending
        );
    }

    fn view(state: &str, confirmed: bool) -> MerchantPaymentView {
        serde_json::from_value(serde_json::json!({
            "payment_id": "00".repeat(16),
            "state": state,
            "amount": "1.00 EUR",
            "merchant_reference": "",
            "customer_pseudonym": "",
            "trans_nonce": "",
            "deadline": 0,
            "refunded": "0.00 EUR",
            "confirmation": confirmed.then(|| "00".to_owned()),
            "refunds": [],
        }))
        .expect("a view")
    }

    #[test]
    fn outcomes_of_the_mpp_states() {
        assert_eq!(
            Outcome::of_view(&view("completed", true)),
            Outcome::Completed
        );
        assert_eq!(
            Outcome::of_view(&view("refunded", true)),
            Outcome::Completed
        );
        assert_eq!(
            Outcome::of_view(&view("rejected", false)),
            Outcome::Rejected
        );
        assert_eq!(Outcome::of_view(&view("expired", true)), Outcome::Expired);
        // Approved, but the CPP's confirmation has not come: not final.
        assert_eq!(Outcome::of_view(&view("approved", false)), Outcome::Pending);
        assert_eq!(
            Outcome::of_view(&view("awaiting_decision", false)),
            Outcome::Pending
        );
        // Any other state once the confirmation is there: declined.
        assert_eq!(Outcome::of_view(&view("late", true)), Outcome::Declined);
        assert_eq!(Outcome::of_view(&view("approved", true)), Outcome::Declined);
    }

    #[test]
    fn refusals_by_code() {
        let refused = |code: &str| ClientError::Refused {
            status: 402,
            error: ApiError::new(code, "x"),
        };
        assert_eq!(Refusal::of(&refused("wrong_pin")), Some(Refusal::WrongPin));
        assert_eq!(
            Refusal::of(&refused("account_locked")),
            Some(Refusal::Locked)
        );
        assert_eq!(
            Refusal::of(&refused("insufficient_funds")),
            Some(Refusal::Declined)
        );
        assert_eq!(Refusal::of(&refused("declined")), Some(Refusal::Declined));
        assert_eq!(Refusal::of(&refused("malformed_json")), None);
    }

    #[test]
    fn ids_are_32_hex_digits() {
        assert_eq!(id16(&"ab".repeat(16), "id").ok(), Some([0xab; 16]));
        assert!(matches!(id16("abc", "id"), Err(DeviceError::Malformed(_))));
        assert!(matches!(
            id16(&"zz".repeat(16), "id"),
            Err(DeviceError::Malformed(_))
        ));
        assert!(matches!(
            id16(&"ab".repeat(17), "id"),
            Err(DeviceError::Malformed(_))
        ));
    }
}
