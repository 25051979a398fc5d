//! The MPP's payment core: the transition table, and any sequence of inputs
//! at any time keeps the rules of the module docs.

use mpay_processor::merchant::{Effect, Illegal, Input, Outcome, Payment, State, step};
use proptest::prelude::*;

const DEADLINE: u64 = 1_000;

fn decided(approve: bool) -> Input {
    Input::Decided {
        approve,
        deadline_ms: DEADLINE,
    }
}

#[test]
fn a_shown_payment_is_decided_once_in_time_and_confirmed_once() {
    let shown = Payment::noticed(false);
    assert_eq!(shown.state, State::AwaitingDecision);
    let approved = step(shown, decided(true), 10).expect("approve");
    assert_eq!(approved.payment.state, State::Approved);
    assert_eq!(approved.effects, [Effect::RelayDecision]);
    assert_eq!(
        step(approved.payment, decided(false), 11),
        Err(Illegal::NotAwaitingDecision(State::Approved))
    );
    let done = step(approved.payment, Input::Confirmed(Outcome::Transferred), 12).expect("T");
    assert_eq!(done.payment.state, State::Completed);
    assert!(done.payment.confirmed && done.effects.is_empty());
    assert_eq!(
        step(done.payment, Input::Confirmed(Outcome::Expired), 13),
        Err(Illegal::AlreadyConfirmed)
    );
    let refunded = step(done.payment, Input::RefundedInFull, 14).expect("refunded");
    assert_eq!(refunded.payment.state, State::Refunded);
}

#[test]
fn late_or_past_the_deadline_nothing_is_decided() {
    let late = Payment::noticed(true);
    assert_eq!(late.state, State::Late);
    assert_eq!(
        step(late, decided(true), 10),
        Err(Illegal::NotAwaitingDecision(State::Late))
    );
    assert_eq!(
        step(Payment::noticed(false), decided(true), DEADLINE),
        Err(Illegal::DeadlinePassed)
    );
    // The CPP's word still ends a late payment.
    let expired = step(late, Input::Confirmed(Outcome::Expired), 2_000).expect("expired");
    assert_eq!(expired.payment.state, State::Expired);
    assert_eq!(
        step(expired.payment, Input::RefundedInFull, 2_001),
        Err(Illegal::NotCompleted(State::Expired))
    );
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        (any::<bool>(), 0..2_000u64).prop_map(|(approve, deadline_ms)| Input::Decided {
            approve,
            deadline_ms
        }),
        prop_oneof![
            Just(Outcome::Transferred),
            Just(Outcome::Rejected),
            Just(Outcome::Expired)
        ]
        .prop_map(Input::Confirmed),
        Just(Input::RefundedInFull),
    ]
}

proptest! {
    #[test]
    fn any_sequence_keeps_the_rules(
        late in any::<bool>(),
        inputs in proptest::collection::vec((input(), 0..2_000u64), 0..24),
    ) {
        let mut payment = Payment::noticed(late);
        let (mut decisions, mut confirmations) = (0, 0);
        for (input, now) in inputs {
            let before = payment;
            match step(payment, input, now) {
                Ok(next) => {
                    match input {
                        Input::Decided { deadline_ms, .. } => {
                            decisions += 1;
                            prop_assert!(now < deadline_ms);
                            prop_assert_eq!(before.state, State::AwaitingDecision);
                            prop_assert_eq!(next.effects.as_slice(), [Effect::RelayDecision].as_slice());
                        }
                        Input::Confirmed(_) => {
                            confirmations += 1;
                            prop_assert!(!before.confirmed && next.payment.confirmed);
                        }
                        Input::RefundedInFull => {
                            prop_assert_eq!(before.state, State::Completed);
                        }
                    }
                    payment = next.payment;
                }
                Err(_) => prop_assert_eq!(payment, before),
            }
            // A decision relay goes out at most once; a confirmation is
            // applied at most once; a late payment is never decided.
            prop_assert!(decisions <= 1 && confirmations <= 1);
            prop_assert!(!(late && decisions > 0));
            prop_assert!(payment.state != State::Refunded || payment.confirmed);
            prop_assert!(!payment.state.is_paid() || payment.confirmed);
        }
    }
}
