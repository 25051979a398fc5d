//! The DC's routing decisions.

use mpay_processor::route::{Direction, NextHop, Refusal, RouteState, Sender, next_hop, pass};

#[test]
fn a_pn_goes_to_the_mpp_at_home_and_crosses_regions_at_most_once() {
    assert_eq!(next_hop("eu", Sender::Cpp, "eu"), Ok(NextHop::Mpp));
    assert_eq!(next_hop("eu", Sender::Cpp, "us"), Ok(NextHop::RegionDc));
    assert_eq!(next_hop("us", Sender::Dc, "us"), Ok(NextHop::Mpp));
    assert_eq!(
        next_hop("us", Sender::Dc, "asia"),
        Err(Refusal::SecondCrossing)
    );
}

#[test]
fn messages_travel_the_recorded_route_only_from_the_hop_on_the_other_side() {
    // cpp1 → dc-eu → mpp1
    assert_eq!(
        pass("cpp1", Some("mpp1"), "mpp1", Direction::Back),
        Ok("cpp1")
    );
    assert_eq!(
        pass("cpp1", Some("mpp1"), "cpp1", Direction::Forth),
        Ok("mpp1")
    );
    assert_eq!(
        pass("cpp1", Some("mpp1"), "cpp1", Direction::Back),
        Err(Refusal::OffRoute),
        "a decision from the CPP's side"
    );
    assert_eq!(
        pass("cpp1", Some("mpp1"), "mpp2", Direction::Back),
        Err(Refusal::OffRoute)
    );
    assert_eq!(
        pass("cpp1", None, "mpp1", Direction::Back),
        Err(Refusal::NotForwarded),
        "a late PN's route passes nothing"
    );
    assert_eq!(RouteState::of(true), RouteState::Forwarded);
    assert_eq!(RouteState::of(false).as_str(), "late");
}
