//! Runs the model checker over the offline two-phase commit (see the crate
//! docs for what is modelled and how each property is checked).

use mpay_model::{
    Action, Kind, Msg, SELLER, State, TOTAL, TwoPhaseCommit, Variant, check, check_model,
    first_counterexample, heal,
};
use stateright::Model;

/// One thread: the search order, the depth reported and the counterexample
/// found are then the same on every run.
fn threads() -> usize {
    1
}

/// Checks `model` exhaustively: no property violated, at least
/// `unique_states_min` distinct states (a property that stopped exploring
/// fails), every name in `reached` reached; prints the figures under `label`.
fn holds_everywhere(
    label: &str,
    model: TwoPhaseCommit,
    unique_states_min: usize,
    reached: &[&str],
) -> mpay_model::CheckReport {
    let started = std::time::Instant::now();
    let report = check_model(model, threads());
    println!(
        "{label}: {} distinct states ({} generated), max depth {}, {:.1} s",
        report.unique_states,
        report.states,
        report.max_depth,
        started.elapsed().as_secs_f64()
    );
    assert!(
        report.violated.is_empty(),
        "counterexample: {:?}",
        report.counterexample
    );
    assert!(report.unique_states >= unique_states_min);
    for name in reached {
        assert!(report.reached.contains(name), "never reached: {name}");
    }
    report
}

/// Fewest distinct states the correct model has; a change that shrinks the
/// space below this (a property that stopped exploring) fails the test.
const CORRECT_UNIQUE_STATES_MIN: usize = 1_000_000;

#[test]
fn correct_protocol_holds_in_every_reachable_state() {
    let report = holds_everywhere(
        "two-phase commit model",
        TwoPhaseCommit::new(Variant::Correct),
        CORRECT_UNIQUE_STATES_MIN,
        &[
            "both transfers committed",
            "a prepared buyer voided its payment",
            "one transfer committed, the other voided",
            "a restarted buyer still prepared",
        ],
    );
    // Only a dishonest party gets there.
    for name in [
        "a buyer's payment is final and its seller holds no Receive",
        "a buyer voided a payment its seller received",
    ] {
        assert!(!report.reached.contains(&name), "reached: {name}");
    }
}

/// Fewest distinct states the model with a dishonest buyer has.
const DISHONEST_UNIQUE_STATES_MIN: usize = 10_000;

#[test]
fn a_dishonest_buyer_cannot_harm_the_honest_parties() {
    holds_everywhere(
        "two-phase commit model with a dishonest buyer",
        TwoPhaseCommit::with_dishonest_buyer(Variant::Correct),
        DISHONEST_UNIQUE_STATES_MIN,
        &[
            "a prepared buyer voided its payment",
            "the cheat restored a copy from before a payment the seller received",
        ],
    );
}

/// Fewest distinct states the model with a dishonest seller has.
const DISHONEST_SELLER_UNIQUE_STATES_MIN: usize = 10_000;

#[test]
fn a_dishonest_seller_cannot_harm_an_honest_buyer() {
    holds_everywhere(
        "two-phase commit model with a dishonest seller",
        TwoPhaseCommit::with_dishonest_seller(Variant::Correct),
        DISHONEST_SELLER_UNIQUE_STATES_MIN,
        &[
            "a prepared buyer voided its payment",
            "the cheat restored a copy from before a sale it received",
            "a COMMIT-REQUEST reached a buyer whose payment was final",
            "a buyer's payment is final and its seller holds no Receive",
            "a buyer voided a payment its seller received",
        ],
    );
}

#[test]
fn a_buyer_that_pays_a_repeated_request_again_is_caught() {
    let (property, actions) = first_counterexample(
        TwoPhaseCommit::with_dishonest_seller(Variant::PayAgainAfterComplete),
        threads(),
    )
    .expect("a counterexample");
    println!("{property}: {actions:?}");
    assert_eq!(
        property,
        "an honest buyer writes at most one Pay entry per transaction"
    );
    let report = check_model(
        TwoPhaseCommit::with_dishonest_seller(Variant::PayAgainAfterComplete),
        threads(),
    );
    for name in [
        "an honest buyer writes at most one Pay entry per transaction",
        "an honest buyer's balance is what its own decisions say",
    ] {
        assert!(report.violated.contains(&name), "{report:?}");
    }
}

#[test]
fn presumed_abort_after_completion_is_caught() {
    let (property, actions) = first_counterexample(
        TwoPhaseCommit::with_dishonest_buyer(Variant::PresumedAbortAfterComplete),
        threads(),
    )
    .expect("a counterexample");
    println!("{property}: {actions:?}");
    assert_eq!(
        property,
        "the seller never signs ABORT for a sale it received"
    );
}

#[test]
fn commit_before_the_seller_record_is_caught() {
    let report = check(Variant::CommitBeforeSellerRecord, threads());
    println!("{:?}", report.counterexample);
    assert!(report.violated.contains(&"atomicity"), "{report:?}");
    assert!(report.violated.contains(&"conservation"), "{report:?}");
}

#[test]
fn agreed_before_the_buyer_redo_is_caught() {
    let report = check(Variant::AgreedBeforeBuyerRedo, threads());
    println!("{:?}", report.counterexample);
    assert!(report.violated.contains(&"atomicity"), "{report:?}");
    assert!(report.violated.contains(&"conservation"), "{report:?}");
}

#[test]
fn without_presumed_abort_a_buyer_waits_for_ever() {
    let report = check(Variant::NoPresumedAbort, threads());
    println!("{:?}", report.counterexample);
    assert_eq!(
        report.violated,
        vec!["resolves once the network heals"],
        "{report:?}"
    );
}

fn run(model: &TwoPhaseCommit, actions: &[Action]) -> State {
    let mut s = model.init_states()[0];
    for &a in actions {
        s = model
            .next_state(&s, a)
            .unwrap_or_else(|| panic!("{a:?} not enabled in {s:?}"));
        assert!(s.atomic(), "atomicity broken after {a:?}: {s:?}");
        assert_eq!(s.money(), TOTAL, "money changed after {a:?}");
    }
    s
}

fn msg(tx: u8, kind: Kind) -> Msg {
    Msg { tx, kind }
}

#[test]
fn a_clean_transfer_commits_both_sides() {
    let model = TwoPhaseCommit::new(Variant::Correct);
    let s = run(
        &model,
        &[
            Action::Start(0),
            Action::Deliver(msg(0, Kind::CommitRequest)),
            Action::Flush(1),
            Action::Deliver(msg(0, Kind::Agreed)),
            Action::Flush(SELLER),
            Action::Deliver(msg(0, Kind::Commit)),
            Action::Flush(1),
            Action::Deliver(msg(0, Kind::Committed)),
            Action::Flush(SELLER),
        ],
    );
    assert!(s.resolved());
    assert!(s.seller.durable.receive[0] && s.buyers[0].durable.committed());
    assert_eq!(heal(&model, &s), Some(0));
}

#[test]
fn a_seller_crash_before_its_record_is_durable_aborts_the_uncertain_buyer() {
    let model = TwoPhaseCommit::new(Variant::Correct);
    let s = run(
        &model,
        &[
            Action::Start(0),
            Action::Deliver(msg(0, Kind::CommitRequest)),
            Action::Flush(1),
            Action::Deliver(msg(0, Kind::Agreed)),
            // The COMMIT is held: the seller dies before its batch is durable.
            Action::Crash(SELLER),
            Action::BuyerTimeout(0),
            Action::Deliver(msg(0, Kind::Status)),
            Action::Deliver(msg(0, Kind::AbortToBuyer)),
            Action::Flush(1),
        ],
    );
    assert!(!s.seller.durable.receive[0]);
    assert!(s.buyers[0].durable.void);
    assert!(s.resolved());
}

#[test]
fn a_lost_commit_is_resolved_by_healing() {
    let model = TwoPhaseCommit::new(Variant::Correct);
    let s = run(
        &model,
        &[
            Action::Start(1),
            Action::Deliver(msg(1, Kind::CommitRequest)),
            Action::Flush(2),
            Action::Deliver(msg(1, Kind::Agreed)),
            Action::Flush(SELLER),
            Action::Drop(msg(1, Kind::Commit)),
        ],
    );
    assert!(!s.resolved());
    let rounds = heal(&model, &s).expect("heals");
    assert!(rounds >= 1);
}

#[test]
fn the_broken_seller_loses_money_on_a_crash() {
    let model = TwoPhaseCommit::new(Variant::CommitBeforeSellerRecord);
    let mut s = model.init_states()[0];
    for a in [
        Action::Start(0),
        Action::Deliver(msg(0, Kind::CommitRequest)),
        Action::Flush(1),
        Action::Deliver(msg(0, Kind::Agreed)),
        Action::Deliver(msg(0, Kind::Commit)),
        Action::Flush(1),
        Action::Crash(SELLER),
    ] {
        s = model.next_state(&s, a).expect("enabled");
    }
    assert!(s.buyers[0].durable.committed());
    assert!(!s.seller.durable.receive[0]);
    assert!(!s.atomic());
    assert_eq!(s.money(), TOTAL - 2);
}

#[test]
fn a_seller_that_completed_answers_a_late_status_with_commit() {
    let model = TwoPhaseCommit::new(Variant::Correct);
    let s = run(
        &model,
        &[
            Action::Start(0),
            Action::Deliver(msg(0, Kind::CommitRequest)),
            Action::Flush(1),
            Action::BuyerTimeout(0),
            Action::Deliver(msg(0, Kind::Agreed)),
            Action::Flush(SELLER),
            Action::Deliver(msg(0, Kind::Commit)),
            Action::Flush(1),
            Action::Deliver(msg(0, Kind::Committed)),
            Action::Flush(SELLER),
            Action::Drop(msg(0, Kind::Commit)),
            // A STATUS from before the COMMIT arrives after COMPLETE: the
            // seller's chain holds the Receive, so the answer is COMMIT.
            Action::Deliver(msg(0, Kind::Status)),
        ],
    );
    assert!(s.network.iter().any(|m| m == msg(0, Kind::Commit)));
    assert!(!s.network.iter().any(|m| m == msg(0, Kind::AbortToBuyer)));
}
