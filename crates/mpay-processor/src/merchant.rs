//! A payment's states at the merchant's payment processor (MPP): the
//! merchant sees it, decides, and the customer's processor confirms the
//! outcome. The MPP stores these names; `mpay_network::reconcile` reads them
//! through [`State::parse`].

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
