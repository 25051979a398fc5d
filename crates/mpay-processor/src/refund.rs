//! A refund's saga, one for both processors.
//!
//! A merchant's refund moves money back along the payment's path in two
//! legs, each a bank transfer by one processor:
//!
//! ```text
//!   MPP:  funding ──moved──▶ relayed ──confirmed──▶ refunded        (merchant → CPP's account)
//!            └──bank refused──▶ failed (reservation released)
//!   CPP:  refunding ──moved──▶ refunded (T confirmation to the MPP)  (CPP's account → customer)
//!            └──bank refused──▶ failed (reservation released)
//!         refused: the request did not fit the payment (recorded for the operator)
//! ```
//!
//! Both legs reserve the amount against the payment when the refund is
//! accepted (the drivers do it in one conditional UPDATE, `refunded +
//! amount <= paid`, so concurrent requests cannot both pass): the total
//! refunded never exceeds what was paid, and a leg that fails for good gives
//! its reservation back ([`Effect::Release`]).
//! A bank that cannot cover the transfer *yet* (the payment still on its way
//! between banks) is not a refusal: the driver retries the leg.

/// Which leg of the saga a processor runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Leg {
    /// The merchant's processor: merchant's account → the CPP's.
    Mpp,
    /// The customer's processor: its account → the customer's.
    Cpp,
}

/// A refund's state at one processor.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum State {
    /// MPP: the transfer from the merchant's account is being made.
    Funding,
    /// MPP: transferred; the relay is on its way to the CPP.
    Relayed,
    /// CPP: the transfer to the customer is being made.
    Refunding,
    /// Done (MPP: the CPP confirmed it; CPP: the customer was paid).
    Refunded,
    /// CPP: the request did not fit the payment; kept for the operator.
    Refused,
    /// The bank refused the transfer for good; the reservation was released.
    Failed,
}

impl State {
    /// Every state.
    pub const ALL: [State; 6] = [
        State::Funding,
        State::Relayed,
        State::Refunding,
        State::Refunded,
        State::Refused,
        State::Failed,
    ];

    /// Its name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Funding => "funding",
            State::Relayed => "relayed",
            State::Refunding => "refunding",
            State::Refunded => "refunded",
            State::Refused => "refused",
            State::Failed => "failed",
        }
    }

    /// From its name.
    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Where a leg starts once its request was recorded: `fits` is whether
    /// the amount could be reserved against the payment.
    pub fn start(leg: Leg, fits: bool) -> State {
        match (leg, fits) {
            (Leg::Mpp, _) => State::Funding,
            (Leg::Cpp, true) => State::Refunding,
            (Leg::Cpp, false) => State::Refused,
        }
    }

    /// True while the leg's transfer is still to be made (the driver
    /// resumes these after a crash).
    pub fn is_moving(self) -> bool {
        matches!(self, State::Funding | State::Refunding)
    }

    /// True while money is on its way (moving, or relayed and unconfirmed).
    pub fn is_in_flight(self) -> bool {
        matches!(self, State::Funding | State::Relayed | State::Refunding)
    }
}

/// What happened to a refund.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Input {
    /// The leg's bank transfer was made.
    Moved,
    /// The bank refused the transfer for good.
    BankRefused,
    /// The CPP's confirmation of the refund reached the MPP.
    Confirmed,
}

/// What the driver must do after a transition, in the same transaction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    /// MPP: send the signed relay toward the CPP.
    SendRelay,
    /// CPP: sign the refund's confirmation and send it toward the MPP.
    Confirm,
    /// Give the amount back to the payment's refundable total.
    Release,
    /// If the refunds now reach what was paid, the payment is refunded.
    MaybeRefundedInFull,
}

/// An input a refund's state cannot take.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("refund in state `{}` cannot take {input:?}", state.as_str())]
pub struct Illegal {
    /// The state it was in.
    pub state: State,
    /// What it was given.
    pub input: Input,
}

/// The one transition function of a refund's leg.
pub fn step(state: State, input: Input) -> Result<(State, Vec<Effect>), Illegal> {
    use Effect::{Confirm, MaybeRefundedInFull, Release, SendRelay};
    Ok(match (state, input) {
        (State::Funding, Input::Moved) => (State::Relayed, vec![SendRelay]),
        (State::Refunding, Input::Moved) => (State::Refunded, vec![Confirm, MaybeRefundedInFull]),
        (State::Funding | State::Refunding, Input::BankRefused) => (State::Failed, vec![Release]),
        (State::Relayed, Input::Confirmed) => (State::Refunded, vec![MaybeRefundedInFull]),
        _ => return Err(Illegal { state, input }),
    })
}
