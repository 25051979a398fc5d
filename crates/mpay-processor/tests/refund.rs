//! The refund saga's core: both legs' transitions, and that every leg ends
//! once, releasing its reservation exactly when it failed.

use mpay_processor::refund::{Effect, Input, Leg, State, step};

const INPUTS: [Input; 3] = [Input::Moved, Input::BankRefused, Input::Confirmed];

fn successors(from: State) -> Vec<(Input, State)> {
    INPUTS
        .into_iter()
        .filter_map(|input| step(from, input).ok().map(|(to, _)| (input, to)))
        .collect()
}

#[test]
fn both_legs_follow_the_documented_table() {
    use State::*;
    assert_eq!(State::start(Leg::Mpp, true), Funding);
    assert_eq!(State::start(Leg::Cpp, true), Refunding);
    assert_eq!(State::start(Leg::Cpp, false), Refused);
    assert_eq!(
        successors(Funding),
        [(Input::Moved, Relayed), (Input::BankRefused, Failed)]
    );
    assert_eq!(successors(Relayed), [(Input::Confirmed, Refunded)]);
    assert_eq!(
        successors(Refunding),
        [(Input::Moved, Refunded), (Input::BankRefused, Failed)]
    );
    for end in [Refunded, Refused, Failed] {
        assert!(successors(end).is_empty(), "{end:?} is final");
        assert!(!end.is_in_flight());
    }
    for state in State::ALL {
        assert_eq!(State::parse(state.as_str()), Some(state));
    }
}

#[test]
fn the_effects_move_the_money_once_and_release_only_on_failure() {
    let (_, effects) = step(State::Funding, Input::Moved).expect("moved");
    assert_eq!(effects, [Effect::SendRelay]);
    let (_, effects) = step(State::Relayed, Input::Confirmed).expect("confirmed");
    assert_eq!(effects, [Effect::MaybeRefundedInFull]);
    let (_, effects) = step(State::Refunding, Input::Moved).expect("paid");
    assert_eq!(effects, [Effect::Confirm, Effect::MaybeRefundedInFull]);
    for leg_start in [State::Funding, State::Refunding] {
        let (end, effects) = step(leg_start, Input::BankRefused).expect("refused");
        assert_eq!((end, effects), (State::Failed, vec![Effect::Release]));
    }
}

/// Every sequence of inputs from a leg's start: at most one terminal state
/// reached, reservations released at most once and only by a failure.
#[test]
fn any_input_sequence_ends_a_leg_at_most_once() {
    for start in [State::Funding, State::Refunding] {
        // All sequences of up to 4 inputs.
        let mut sequences: Vec<Vec<Input>> = vec![vec![]];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for seq in &sequences {
                for input in INPUTS {
                    let mut next = seq.clone();
                    next.push(input);
                    longer.push(next);
                }
            }
            sequences.extend(longer);
        }
        for seq in sequences {
            let mut state = start;
            let (mut releases, mut confirms, mut relays) = (0, 0, 0);
            for input in &seq {
                let Ok((next, effects)) = step(state, *input) else {
                    continue;
                };
                releases += effects.iter().filter(|e| **e == Effect::Release).count();
                confirms += effects.iter().filter(|e| **e == Effect::Confirm).count();
                relays += effects.iter().filter(|e| **e == Effect::SendRelay).count();
                state = next;
            }
            assert!(releases <= 1 && confirms <= 1 && relays <= 1, "{seq:?}");
            assert_eq!(releases == 1, state == State::Failed, "{seq:?}");
        }
    }
}
