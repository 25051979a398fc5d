//! What the MPP adds, signed by itself, when it passes a merchant's signed
//! object on toward the CPP: the merchant's payout account with a decision
//! ([`DecisionRelay`]), and the bank transfer that funded a refund
//! ([`RefundRelay`]). The CPP checks both signatures: the merchant's on the
//! inner object, the MPP's on the relay.

use mpay_identity::{PartyId, Role};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

use crate::decision::{Decision, SignedMerchantDecision, SignedRefundRequest};
use crate::notice::PaymentId;
use crate::signed::{Signable, Signed};
use crate::standing::SignedStandingApproval;
use crate::tags;

/// Longest payout account name or transfer reference in a relay, bytes
/// (a bank account id is at most 128).
pub const RELAY_TEXT_LEN_MAX: usize = 128;

fn check_text(what: &'static str, text: &str) -> Result<(), DecodeError> {
    if text.is_empty() {
        return Err(DecodeError::Invalid {
            what,
            reason: "empty",
        });
    }
    if text.len() > RELAY_TEXT_LEN_MAX {
        return Err(DecodeError::TooLong {
            what,
            len: text.len(),
            max: RELAY_TEXT_LEN_MAX,
        });
    }
    Ok(())
}

/// The merchant's word a decision relay carries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Authority {
    /// The merchant's signed decision on this payment, unchanged. Wire: 1 ‖
    /// `Signed<MerchantDecision>`.
    Decision(SignedMerchantDecision),
    /// The merchant's standing approval of micropayments, applied by the MPP
    /// to `payment_id` (an approval). Wire: 2 ‖ payment id ‖
    /// `Signed<StandingApproval>`.
    Standing {
        /// The payment it approves.
        payment_id: PaymentId,
        /// The merchant's signed standing approval, unchanged.
        approval: SignedStandingApproval,
    },
}

impl Authority {
    /// The payment decided.
    pub fn payment_id(&self) -> PaymentId {
        match self {
            Authority::Decision(d) => d.unverified_body().payment_id,
            Authority::Standing { payment_id, .. } => *payment_id,
        }
    }

    /// The merchant it names (to find the certificate to verify it with).
    pub fn merchant(&self) -> PartyId {
        match self {
            Authority::Decision(d) => d.unverified_body().merchant,
            Authority::Standing { approval, .. } => approval.unverified_body().merchant,
        }
    }

    /// Whether it approves (before verification: to route or display only).
    pub fn approves(&self) -> bool {
        match self {
            Authority::Decision(d) => matches!(d.unverified_body().decision, Decision::Approve),
            Authority::Standing { .. } => true,
        }
    }
}

impl Encode for Authority {
    fn encode(&self, w: &mut Writer) {
        match self {
            Authority::Decision(d) => w.u8(1).put(d),
            Authority::Standing {
                payment_id,
                approval,
            } => w.u8(2).raw(payment_id).put(approval),
        };
    }
}

impl Decode for Authority {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("authority")? {
            1 => Ok(Authority::Decision(r.get()?)),
            2 => Ok(Authority::Standing {
                payment_id: r.array("payment id")?,
                approval: r.get()?,
            }),
            tag => Err(DecodeError::UnknownTag {
                what: "authority",
                tag,
            }),
        }
    }
}

/// The MPP's relay of a merchant's decision, with where an approved
/// payment is to be paid.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DecisionRelay {
    /// The merchant's decision, or its standing approval applied to the
    /// payment.
    pub authority: Authority,
    /// The relaying MPP, the TRANS's MPP; signs the relay.
    pub mpp: PartyId,
    /// The merchant's bank.
    pub payout_bank: PartyId,
    /// The merchant's account there (`shop:<name>`).
    pub payout_account: String,
}

/// A decision relay signed by its MPP.
pub type SignedDecisionRelay = Signed<DecisionRelay>;

impl Signable for DecisionRelay {
    const TAG: &'static [u8] = tags::DECISION_RELAY;
    const SIGNER_ROLE: Role = Role::Mpp;
    const WHAT: &'static str = "decision relay";

    fn signer(&self) -> PartyId {
        self.mpp
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_text("payout account", &self.payout_account)
    }
}

impl Encode for DecisionRelay {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.authority)
            .put(&self.mpp)
            .put(&self.payout_bank)
            .text(&self.payout_account);
    }
}

impl Decode for DecisionRelay {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let relay = DecisionRelay {
            authority: r.get()?,
            mpp: r.get()?,
            payout_bank: r.get()?,
            payout_account: r.text("payout account", RELAY_TEXT_LEN_MAX)?,
        };
        relay.validate()?;
        Ok(relay)
    }
}

/// The MPP's relay of a merchant's refund request, after it moved the
/// refund from the merchant's account to the CPP's.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RefundRelay {
    /// The merchant's signed refund request, unchanged.
    pub refund: SignedRefundRequest,
    /// The relaying MPP; signs the relay.
    pub mpp: PartyId,
    /// The bank's reference of the transfer that moved the money to the
    /// CPP's account (a posting id or an interbank message id).
    pub transfer_reference: String,
}

/// A refund relay signed by its MPP.
pub type SignedRefundRelay = Signed<RefundRelay>;

impl Signable for RefundRelay {
    const TAG: &'static [u8] = tags::REFUND_RELAY;
    const SIGNER_ROLE: Role = Role::Mpp;
    const WHAT: &'static str = "refund relay";

    fn signer(&self) -> PartyId {
        self.mpp
    }

    fn validate(&self) -> Result<(), DecodeError> {
        check_text("transfer reference", &self.transfer_reference)
    }
}

impl Encode for RefundRelay {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.refund)
            .put(&self.mpp)
            .text(&self.transfer_reference);
    }
}

impl Decode for RefundRelay {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let relay = RefundRelay {
            refund: r.get()?,
            mpp: r.get()?,
            transfer_reference: r.text("transfer reference", RELAY_TEXT_LEN_MAX)?,
        };
        relay.validate()?;
        Ok(relay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Decision, MerchantDecision, REQUEST_LIFETIME_DEFAULT_MS, RefundRequest, SemopsError,
        Validity,
    };
    use mpay_identity::{Certificate, CertificateBody, SecretKeys, Suite, Timestamp};
    use mpay_money::{Amount, Currency};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn party(rng: &mut ChaCha20Rng, n: u64, role: Role) -> (SecretKeys, Certificate) {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, rng);
        let id = PartyId::from_u64(n);
        let cert = Certificate::issue(
            CertificateBody {
                subject: id,
                role,
                keys: keys.public(),
                limits: None,
                issued_at: Timestamp(0),
                expires_at: Timestamp(1_000),
                issuer: id,
            },
            &keys,
        );
        (keys, cert)
    }

    #[test]
    fn relays_round_trip_and_verify() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (merchant_keys, merchant) = party(&mut rng, 1, Role::Merchant);
        let (mpp_keys, mpp) = party(&mut rng, 2, Role::Mpp);
        let decision = Signed::sign(
            MerchantDecision {
                payment_id: [7; 16],
                merchant: merchant.subject(),
                decision: Decision::Approve,
                validity: Validity::starting(Timestamp(0), REQUEST_LIFETIME_DEFAULT_MS),
            },
            &merchant_keys,
        )
        .unwrap();
        let relay = Signed::sign(
            DecisionRelay {
                authority: Authority::Decision(decision),
                mpp: mpp.subject(),
                payout_bank: PartyId::from_u64(3),
                payout_account: "shop:bob".into(),
            },
            &mpp_keys,
        )
        .unwrap();
        let decoded = SignedDecisionRelay::from_wire(&relay.to_wire()).unwrap();
        assert_eq!(decoded, relay);
        let body = decoded.verify(&mpp, Timestamp(1)).unwrap();
        let Authority::Decision(decision) = &body.authority else {
            panic!("a decision went in");
        };
        decision.verify(&merchant, Timestamp(1)).unwrap();
        assert_eq!(body.authority.payment_id(), [7; 16]);
        assert!(body.authority.approves());
        // The merchant cannot sign a relay.
        assert!(matches!(
            decoded.verify(&merchant, Timestamp(1)),
            Err(SemopsError::WrongSigner { .. })
        ));

        let refund = Signed::sign(
            RefundRequest {
                payment_id: [7; 16],
                merchant: merchant.subject(),
                amount: Amount::new(5, Currency::EUR),
                idempotency_key: [1; 16],
                validity: Validity::starting(Timestamp(0), REQUEST_LIFETIME_DEFAULT_MS),
            },
            &merchant_keys,
        )
        .unwrap();
        let relay = Signed::sign(
            RefundRelay {
                refund,
                mpp: mpp.subject(),
                transfer_reference: "posting:12".into(),
            },
            &mpp_keys,
        )
        .unwrap();
        let mut bytes = relay.to_wire();
        assert_eq!(SignedRefundRelay::from_wire(&bytes).unwrap(), relay);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let tampered = SignedRefundRelay::from_wire(&bytes).unwrap();
        assert!(tampered.verify(&mpp, Timestamp(1)).is_err());
    }

    #[test]
    fn a_standing_approval_relay_round_trips_and_names_its_payment() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let (merchant_keys, merchant) = party(&mut rng, 1, Role::Merchant);
        let (mpp_keys, mpp) = party(&mut rng, 2, Role::Mpp);
        let approval = Signed::sign(
            crate::StandingApproval {
                merchant: merchant.subject(),
                mpp: mpp.subject(),
                per_payment_max: Amount::new(10, Currency::EUR),
                period_max: Amount::new(100, Currency::EUR),
                period_ms: crate::STANDING_PERIOD_MS_MIN,
                signed_at: Timestamp(0),
                expires_at: Timestamp(500),
            },
            &merchant_keys,
        )
        .unwrap();
        let relay = Signed::sign(
            DecisionRelay {
                authority: Authority::Standing {
                    payment_id: [8; 16],
                    approval,
                },
                mpp: mpp.subject(),
                payout_bank: PartyId::from_u64(3),
                payout_account: "shop:bob".into(),
            },
            &mpp_keys,
        )
        .unwrap();
        let mut bytes = relay.to_wire();
        let decoded = SignedDecisionRelay::from_wire(&bytes).unwrap();
        assert_eq!(decoded, relay);
        let body = decoded.verify(&mpp, Timestamp(1)).unwrap();
        assert_eq!(body.authority.payment_id(), [8; 16]);
        assert_eq!(body.authority.merchant(), merchant.subject());
        let Authority::Standing { approval, .. } = &body.authority else {
            panic!("a standing approval went in");
        };
        approval.verify(&merchant, Timestamp(1)).unwrap();
        // An unknown authority tag is refused, not guessed at.
        bytes[0] = 3;
        assert!(SignedDecisionRelay::from_wire(&bytes).is_err());
    }

    #[test]
    fn empty_or_long_texts_are_refused() {
        assert!(check_text("x", "").is_err());
        assert!(check_text("x", &"a".repeat(RELAY_TEXT_LEN_MAX)).is_ok());
        assert!(check_text("x", &"a".repeat(RELAY_TEXT_LEN_MAX + 1)).is_err());
    }
}
