//! A payment's life at the merchant's payment processor (MPP).
//!
//! ```text
//!   PN in time ─▶ awaiting_decision ──approve──▶ approved ─┐
//!                        └──reject───▶ rejected ───────────┤ (relayed to the CPP)
//!   PN late ────▶ late (never shown)                       │
//!   the CPP's confirmation, once, from any of them: ◀──────┘
//!       T or DT ▶ completed ──refunded in full──▶ refunded
//!       rejected ▶ rejected        expired ▶ expired
//! ```
//!
//! [`step`] takes the payment by value, the input and `now`, and returns the
//! next payment and what the driver must do; an input the payment cannot
//! take is [`Illegal`] and changes nothing. The MPP stores the state names;
//! `mpay_network::reconcile` reads them through [`State::parse`].

/// A payment's state at the merchant's payment processor.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    /// Shown to the merchant, awaiting its decision.
    AwaitingDecision,
    /// Approved; the decision is on its way to the CPP.
    Approved,
    /// Rejected by the merchant (or the CPP confirmed a rejection).
    Rejected,
    /// The CPP's T confirmation arrived: the money was transferred.
    Completed,
    /// The CPP confirmed that the deadline passed without a decision.
    Expired,
    /// The PN arrived past its hop deadline; never shown.
    Late,
    /// Completed, then refunded in full.
    Refunded,
}

impl State {
    /// Every state.
    pub const ALL: [State; 7] = [
        State::AwaitingDecision,
        State::Approved,
        State::Rejected,
        State::Completed,
        State::Expired,
        State::Late,
        State::Refunded,
    ];

    /// Its name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            State::AwaitingDecision => "awaiting_decision",
            State::Approved => "approved",
            State::Rejected => "rejected",
            State::Completed => "completed",
            State::Expired => "expired",
            State::Late => "late",
            State::Refunded => "refunded",
        }
    }

    /// From its name.
    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl State {
    /// The merchant was paid (a refund may have paid some back since).
    pub fn is_paid(self) -> bool {
        matches!(self, State::Completed | State::Refunded)
    }

    /// Nothing more happens to the payment itself (refunds aside): its
    /// outcome was confirmed, or its PN came too late to be shown.
    pub fn is_final(self) -> bool {
        !matches!(self, State::AwaitingDecision | State::Approved)
    }
}

/// A payment at the MPP as the core sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Payment {
    /// Where it is.
    pub state: State,
    /// The CPP's confirmation of its outcome has been applied.
    pub confirmed: bool,
}

impl Payment {
    /// A payment whose PN just arrived: shown to the merchant, or `late`
    /// (past its hop deadline, or its TRANS expired) and never shown.
    pub fn noticed(late: bool) -> Payment {
        Payment {
            state: if late {
                State::Late
            } else {
                State::AwaitingDecision
            },
            confirmed: false,
        }
    }
}

/// What the CPP confirmed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Outcome {
    /// The money was transferred (T), or will be by an aggregated transfer
    /// (DT, micropayments).
    Transferred,
    /// The payment was rejected (by the merchant, or the customer's bank).
    Rejected,
    /// The decision deadline passed without a decision.
    Expired,
}

/// What happens to a payment at the MPP.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Input {
    /// The merchant decided; `deadline_ms` is the payment's hop deadline.
    Decided {
        /// Approve, or reject.
        approve: bool,
        /// The last moment (exclusive) a decision may be taken.
        deadline_ms: u64,
    },
    /// The CPP's confirmation arrived.
    Confirmed(Outcome),
    /// Refunds now cover the whole amount and none is still moving.
    RefundedInFull,
}

/// What the driver must do, in the transaction that stores the step.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    /// Queue the signed decision to the CPP (through the DC).
    RelayDecision,
}

/// An input the payment cannot take; nothing changes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum Illegal {
    /// A decision at or after the hop deadline.
    #[error("the decision deadline has passed")]
    DeadlinePassed,
    /// A decision for a payment not awaiting one.
    #[error("the payment is {}", .0.as_str())]
    NotAwaitingDecision(State),
    /// A second confirmation (a repeat is answered as a duplicate).
    #[error("the payment's outcome was already confirmed")]
    AlreadyConfirmed,
    /// Refunded in full, but not a completed payment.
    #[error("a payment that is {} cannot be refunded", .0.as_str())]
    NotCompleted(State),
}

/// A transition's result.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Step {
    /// The payment after it.
    pub payment: Payment,
    /// What the driver must do.
    pub effects: Vec<Effect>,
}

/// The one transition function of a payment at the MPP (module docs).
pub fn step(payment: Payment, input: Input, now_ms: u64) -> Result<Step, Illegal> {
    let next = |state: State, confirmed: bool, effects: Vec<Effect>| Step {
        payment: Payment { state, confirmed },
        effects,
    };
    match input {
        Input::Decided {
            approve,
            deadline_ms,
        } => {
            if now_ms >= deadline_ms {
                return Err(Illegal::DeadlinePassed);
            }
            if payment.state != State::AwaitingDecision || payment.confirmed {
                return Err(Illegal::NotAwaitingDecision(payment.state));
            }
            let state = if approve {
                State::Approved
            } else {
                State::Rejected
            };
            Ok(next(state, false, vec![Effect::RelayDecision]))
        }
        Input::Confirmed(outcome) => {
            if payment.confirmed {
                return Err(Illegal::AlreadyConfirmed);
            }
            let state = match outcome {
                Outcome::Transferred => State::Completed,
                Outcome::Rejected => State::Rejected,
                Outcome::Expired => State::Expired,
            };
            Ok(next(state, true, Vec::new()))
        }
        Input::RefundedInFull => match payment.state {
            State::Completed => Ok(next(State::Refunded, payment.confirmed, Vec::new())),
            other => Err(Illegal::NotCompleted(other)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_paid_states_are_final() {
        for state in State::ALL {
            assert_eq!(State::parse(state.as_str()), Some(state));
            assert!(!state.is_paid() || state.is_final(), "{state:?}");
        }
        assert_eq!(State::parse("completed"), Some(State::Completed));
        assert_eq!(State::parse("Completed"), None);
        let paid: Vec<State> = State::ALL.into_iter().filter(|s| s.is_paid()).collect();
        assert_eq!(paid, [State::Completed, State::Refunded]);
    }
}
