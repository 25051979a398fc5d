//! What a processor's sagas ask of the banks, and what the answers mean: the
//! decisions a driver would otherwise make inline around its HTTP calls.
//! The CPP's driver (`mpay-network`) and the SEMOPS simulator
//! (`mpay-sim`) both ask these functions, so the simulator checks the
//! decisions the services make.
//!
//! A macro payment's saga at the CPP makes one bank call per saga state
//! ([`HoldCall::due`]), under an idempotency key derived from the payment
//! alone ([`HoldCall::key`]), so every retry, after a crash too, is the same
//! request. A refund leg makes one transfer under the refund's key
//! ([`refund_key`], [`attempt_key`]) and waits while the account cannot
//! cover it yet ([`after_refund_transfer`]).

use crate::payment::{Input, State};
use crate::refund;

/// The bank call a macro payment's saga state needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HoldCall {
    /// `received`: reserve the amount in the customer's account.
    Place,
    /// `approving`: pay the hold out to the merchant.
    Post,
    /// `rejecting`, `expiring`: end the hold unposted.
    Void,
}

impl HoldCall {
    /// The call `state` needs, if any (the final states and `pending` need
    /// none).
    pub fn due(state: State) -> Option<HoldCall> {
        match state {
            State::Received => Some(HoldCall::Place),
            State::Approving => Some(HoldCall::Post),
            State::Rejecting | State::Expiring => Some(HoldCall::Void),
            State::Pending
            | State::Completed
            | State::Rejected
            | State::Expired
            | State::Declined
            | State::Refunded => None,
        }
    }

    /// Its idempotency key for the payment whose id is `payment_hex`.
    pub fn key(self, payment_hex: &str) -> String {
        let kind = match self {
            HoldCall::Place => "hold",
            HoldCall::Post => "post",
            HoldCall::Void => "void",
        };
        format!("{kind}-{payment_hex}")
    }
}

/// A hold's state as its bank reports it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HoldEnd {
    /// Still reserved.
    Pending,
    /// Paid out.
    Posted,
    /// Ended by a void.
    Voided,
    /// Lapsed at its expiry.
    Expired,
}

/// What the driver does after a hold call was answered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Next {
    /// Feed this input to the payment core.
    Apply(Input),
    /// Nothing is settled yet: call again later.
    Retry,
    /// The bank's answer contradicts the saga: an invariant is broken.
    Broken(&'static str),
}

/// The input a hold placement gives: placed (and whether there is still
/// time to route the PN), or refused for good. A hold's refusal is its
/// key's answer for good at the bank, so acting on it cannot leave a hold
/// behind.
pub fn after_place(placed: bool, routed: bool) -> Input {
    if placed {
        Input::Admitted { routed }
    } else {
        Input::Refused
    }
}

/// What a post means, given the hold's state after it (`Posted` when the
/// post was done; otherwise the state the bank reports after refusing it).
pub fn after_post(hold: HoldEnd) -> Next {
    match hold {
        HoldEnd::Posted => Next::Apply(Input::Posted),
        // An approved payment whose hold lapsed while the post was retried
        // expires.
        HoldEnd::Voided | HoldEnd::Expired => Next::Apply(Input::Released),
        HoldEnd::Pending => Next::Retry,
    }
}

/// What a void means, given the hold's state after it.
pub fn after_void(hold: HoldEnd) -> Next {
    match hold {
        HoldEnd::Voided | HoldEnd::Expired => Next::Apply(Input::Released),
        HoldEnd::Posted => Next::Broken("a hold to void was posted"),
        HoldEnd::Pending => Next::Retry,
    }
}

/// How a bank answered a refund leg's transfer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum TransferAnswer {
    /// Made.
    Done,
    /// The account cannot cover it yet (the money on its way between banks).
    InsufficientFunds,
    /// Refused for another reason, for good.
    Refused,
}

/// The refund leg's input for `answer`; `None`: try again later, under the
/// next attempt's key after a refusal for want of funds ([`attempt_key`]).
pub fn after_refund_transfer(answer: TransferAnswer) -> Option<refund::Input> {
    match answer {
        TransferAnswer::Done => Some(refund::Input::Moved),
        TransferAnswer::InsufficientFunds => None,
        TransferAnswer::Refused => Some(refund::Input::BankRefused),
    }
}

/// The key of attempt number `attempt` of a request asked under `base`,
/// for a transfer that waits for money. A bank keeps a refusal as its key's
/// answer (DESIGN §3.2), so the caller moves to the next attempt only once
/// a refusal came back, never on a lost answer: at most one attempt is
/// ever made. The first attempt is `base` itself, then `base-attempt-N`.
pub fn attempt_key(base: &str, attempt: u32) -> String {
    if attempt == 0 {
        base.to_owned()
    } else {
        format!("{base}-attempt-{attempt}")
    }
}

/// The base key of a refund leg's transfer ([`attempt_key`]): one per
/// (leg, payment, refund key).
pub fn refund_key(leg: refund::Leg, payment_hex: &str, refund_hex: &str) -> String {
    let prefix = match leg {
        refund::Leg::Mpp => "mpp-refund",
        refund::Leg::Cpp => "refund",
    };
    format!("{prefix}-{payment_hex}-{refund_hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_saga_state_has_its_call_and_no_other_state_has_one() {
        for state in State::ALL {
            assert_eq!(
                HoldCall::due(state).is_some(),
                state.is_saga_step(),
                "{state:?}"
            );
        }
        assert_eq!(HoldCall::Place.key("ab"), "hold-ab");
        assert_eq!(HoldCall::Post.key("ab"), "post-ab");
        assert_eq!(HoldCall::Void.key("ab"), "void-ab");
        assert_eq!(refund_key(refund::Leg::Cpp, "p", "k"), "refund-p-k");
        assert_eq!(refund_key(refund::Leg::Mpp, "p", "k"), "mpp-refund-p-k");
        assert_eq!(attempt_key("refund-p-k", 0), "refund-p-k");
        assert_eq!(attempt_key("refund-p-k", 2), "refund-p-k-attempt-2");
    }

    #[test]
    fn every_answer_leads_to_an_input_the_state_takes_or_a_retry() {
        use crate::payment::{Payment, step};
        let payment = |state| Payment {
            state,
            deadline_ms: 10,
            notice_sent: true,
        };
        for hold in [
            HoldEnd::Pending,
            HoldEnd::Posted,
            HoldEnd::Voided,
            HoldEnd::Expired,
        ] {
            if let Next::Apply(input) = after_post(hold) {
                assert!(
                    step(payment(State::Approving), input, 0).is_ok(),
                    "{hold:?}"
                );
            }
            for state in [State::Rejecting, State::Expiring] {
                if let Next::Apply(input) = after_void(hold) {
                    assert!(step(payment(state), input, 0).is_ok(), "{hold:?}");
                }
            }
        }
        assert_eq!(
            after_void(HoldEnd::Posted),
            Next::Broken("a hold to void was posted")
        );
        assert_eq!(after_post(HoldEnd::Pending), Next::Retry);
        for placed in [false, true] {
            for routed in [false, true] {
                let input = after_place(placed, routed);
                assert!(step(payment(State::Received), input, 0).is_ok());
            }
        }
        assert_eq!(
            after_refund_transfer(TransferAnswer::InsufficientFunds),
            None
        );
        for answer in [TransferAnswer::Done, TransferAnswer::Refused] {
            let input = after_refund_transfer(answer).expect("an input");
            assert!(refund::step(refund::State::Refunding, input).is_ok());
            assert!(refund::step(refund::State::Funding, input).is_ok());
        }
    }
}
