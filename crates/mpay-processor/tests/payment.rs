//! The CPP payment core: its transition table, and properties over any
//! sequence of inputs at any times.

use mpay_processor::payment::{Effect, End, Illegal, Input, Payment, State, step, successors};
use proptest::prelude::*;

fn received(deadline_ms: u64) -> Payment {
    Payment {
        state: State::Received,
        deadline_ms,
        notice_sent: false,
    }
}

#[test]
fn the_transition_table_is_the_documented_one() {
    use State::*;
    let table: Vec<(State, Vec<State>)> =
        State::ALL.into_iter().map(|s| (s, successors(s))).collect();
    assert_eq!(
        table,
        vec![
            (Received, vec![Pending, Expiring, Declined]),
            (Pending, vec![Approving, Rejecting, Expiring]),
            (Approving, vec![Completed, Expired]),
            (Completed, vec![Refunded]),
            (Rejecting, vec![Rejected]),
            (Rejected, vec![]),
            (Expiring, vec![Expired]),
            (Expired, vec![]),
            (Declined, vec![]),
            (Refunded, vec![]),
        ]
    );
    for state in State::ALL {
        assert_eq!(State::parse(state.as_str()), Some(state));
        assert_eq!(
            state.is_final(),
            successors(state).is_empty() || state == Completed,
            "{state:?}"
        );
    }
}

#[test]
fn a_happy_payment_sends_its_notice_once_and_confirms_once() {
    let p = received(1_000);
    let s = step(p, Input::Admitted { routed: true }, 10).expect("admitted");
    assert_eq!(s.payment.state, State::Pending);
    assert_eq!(s.effects, [Effect::SendNotice, Effect::Wake]);
    let s = step(s.payment, Input::Decided { approve: true }, 1_000).expect("in time");
    assert_eq!(s.payment.state, State::Approving);
    let s = step(s.payment, Input::Posted, 2_000).expect("posted");
    assert_eq!(s.payment.state, State::Completed);
    assert_eq!(
        s.effects,
        [
            Effect::Confirm(End::Completed),
            Effect::ForwardConfirmation,
            Effect::Wake
        ]
    );
    // A second decision is late, whatever it says; nothing changes.
    let late = step(s.payment, Input::Decided { approve: false }, 2_001).expect("late");
    assert_eq!(late.payment, s.payment);
    assert_eq!(late.effects, [Effect::RecordLate]);
}

#[test]
fn a_decision_after_the_deadline_is_late_and_the_deadline_expires_the_payment() {
    let p = step(received(1_000), Input::Admitted { routed: true }, 10)
        .expect("admitted")
        .payment;
    let late = step(p, Input::Decided { approve: true }, 1_001).expect("late");
    assert_eq!(late.payment.state, State::Pending);
    assert_eq!(late.effects, [Effect::RecordLate]);
    assert_eq!(
        step(p, Input::DeadlinePassed, 1_000),
        Err(Illegal {
            state: State::Pending,
            input: Input::DeadlinePassed
        }),
        "not past the deadline yet"
    );
    let s = step(p, Input::DeadlinePassed, 1_001).expect("expiring");
    assert_eq!(s.payment.state, State::Expiring);
    let s = step(s.payment, Input::Released, 1_002).expect("voided");
    assert_eq!(s.payment.state, State::Expired);
    assert!(s.effects.contains(&Effect::Confirm(End::Expired)));
}

#[test]
fn a_refused_hold_declines_without_sending_anything_back() {
    let s = step(received(1_000), Input::Refused, 5).expect("declined");
    assert_eq!(s.payment.state, State::Declined);
    assert_eq!(s.effects, [Effect::Confirm(End::Declined), Effect::Wake]);
}

fn any_input() -> impl Strategy<Value = Input> {
    prop_oneof![
        any::<bool>().prop_map(|routed| Input::Admitted { routed }),
        Just(Input::Refused),
        any::<bool>().prop_map(|approve| Input::Decided { approve }),
        Just(Input::DeadlinePassed),
        Just(Input::Posted),
        Just(Input::Released),
        Just(Input::RefundedInFull),
    ]
}

proptest! {
    /// Whatever arrives, in any order at any time: the hold ends exactly
    /// once (posted or released, never both), one confirmation is made and
    /// it goes back exactly when a PN went out, the PN goes out at most
    /// once, a decision moves the payment only while pending and in time,
    /// and a final state is left only by a full refund.
    #[test]
    fn any_sequence_keeps_the_payment_whole(
        deadline_ms in 0u64..1_000,
        inputs in proptest::collection::vec((any_input(), 0u64..2_000), 0..40),
    ) {
        let mut payment = received(deadline_ms);
        let (mut notices, mut confirms, mut forwards) = (0, 0, 0);
        let (mut posted, mut released) = (0, 0);
        for (input, now) in inputs {
            let before = payment;
            let Ok(s) = step(payment, input, now) else { continue };
            if s.moved_from(before.state) {
                prop_assert!(successors(before.state).contains(&s.payment.state));
            }
            if before.state.is_final() {
                prop_assert!(
                    s.payment == before
                        || (before.state == State::Completed && s.payment.state == State::Refunded)
                );
            }
            if matches!(input, Input::Decided { .. }) && s.moved_from(before.state) {
                prop_assert_eq!(before.state, State::Pending);
                prop_assert!(now <= before.deadline_ms);
            }
            match (before.state, input) {
                (State::Approving, Input::Posted) => posted += 1,
                (State::Approving | State::Rejecting | State::Expiring, Input::Released) => {
                    released += 1
                }
                _ => {}
            }
            for effect in &s.effects {
                match effect {
                    Effect::SendNotice => notices += 1,
                    Effect::Confirm(_) => confirms += 1,
                    Effect::ForwardConfirmation => {
                        prop_assert!(s.payment.notice_sent);
                        forwards += 1;
                    }
                    _ => {}
                }
            }
            payment = s.payment;
        }
        prop_assert!(notices <= 1);
        prop_assert!(posted + released <= 1, "the hold ended twice");
        prop_assert!(confirms <= 1);
        prop_assert!(forwards <= confirms);
        if payment.state.is_final() {
            prop_assert_eq!(confirms, 1);
            prop_assert_eq!(forwards, i32::from(payment.notice_sent));
            prop_assert_eq!(
                posted + released,
                i32::from(payment.state != State::Declined)
            );
            prop_assert_eq!(posted == 1, payment.state.is_paid());
        } else {
            prop_assert_eq!(confirms, 0);
        }
    }
}
