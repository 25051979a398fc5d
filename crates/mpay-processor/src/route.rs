//! The data center's routing decisions.
//!
//! A PN enters a region's DC from a CPP of that region, or from another
//! region's DC. It goes to the merchant's MPP when the MPP is in this
//! region, else to the DC of the MPP's region — but a PN that came from a DC
//! is never forwarded to a third (one crossing between regions at most). The
//! DC records the route (`from` → `to`); decisions and refunds then travel
//! back along it and confirmations forth, each only from the hop on the
//! other side. A PN past its hop deadline is recorded `late`, not forwarded.

/// Who handed the DC a PN.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Sender {
    /// A CPP of this region.
    Cpp,
    /// Another region's DC.
    Dc,
}

/// Where a PN goes next.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NextHop {
    /// The merchant's MPP, in this region.
    Mpp,
    /// The DC of the MPP's region.
    RegionDc,
}

/// Which way a message goes along a recorded route.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// From the MPP's side toward the CPP (decisions, refunds).
    Back,
    /// From the CPP's side toward the MPP (confirmations).
    Forth,
}

/// A route's state at the DC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RouteState {
    /// The PN went on.
    Forwarded,
    /// Its hop deadline had passed: recorded, not forwarded.
    Late,
}

impl RouteState {
    /// Its name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RouteState::Forwarded => "forwarded",
            RouteState::Late => "late",
        }
    }

    /// What a PN's route becomes: forwarded unless its hop deadline passed.
    pub fn of(in_time: bool) -> RouteState {
        if in_time {
            RouteState::Forwarded
        } else {
            RouteState::Late
        }
    }
}

/// Why a DC does not route or pass a message.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Refusal {
    /// A PN from a DC for an MPP outside this region.
    #[error("a DC forwards to the MPP's region only once")]
    SecondCrossing,
    /// The route's PN was not forwarded (it was late).
    #[error("the PN was not forwarded")]
    NotForwarded,
    /// The sender is not the hop on the other side of the route.
    #[error("the sender is not on this payment's route")]
    OffRoute,
}

/// Where a PN handed over by `sender` goes from a DC in `my_region`, for an
/// MPP in `mpp_region`.
pub fn next_hop(my_region: &str, sender: Sender, mpp_region: &str) -> Result<NextHop, Refusal> {
    if mpp_region == my_region {
        Ok(NextHop::Mpp)
    } else if sender == Sender::Dc {
        Err(Refusal::SecondCrossing)
    } else {
        Ok(NextHop::RegionDc)
    }
}

/// Where a message from `sender` going `direction` along the route
/// `from` → `to` (`to` is `None` when the PN was late) goes next.
pub fn pass<'r>(
    from: &'r str,
    to: Option<&'r str>,
    sender: &str,
    direction: Direction,
) -> Result<&'r str, Refusal> {
    let to = to.ok_or(Refusal::NotForwarded)?;
    let (expected, next) = match direction {
        Direction::Back => (to, from),
        Direction::Forth => (from, to),
    };
    if sender == expected {
        Ok(next)
    } else {
        Err(Refusal::OffRoute)
    }
}
