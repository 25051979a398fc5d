//! A payment's life cycle at the customer's payment processor (CPP).
//!
//! ```text
//!   received ──admitted (PN routed)──▶ pending ──decided: approve──▶ approving ──posted──▶ completed ──refunded in full──▶ refunded
//!      │  └──admitted (no time left)─┐    │ └──decided: reject─▶ rejecting ──released──▶ rejected
//!      │                             ▼    └──deadline──────────▶ expiring ──released──▶ expired
//!      └──refused──▶ declined     expiring                       approving ──released──▶ expired
//! ```
//!
//! `received`: the PIN checked and the payment recorded; the hold (a
//! micropayment: its admission to the pending total) is being placed.
//! `approving`, `rejecting`, `expiring` name a bank call in progress (post,
//! void; for a micropayment: book or take back); the driver resumes them
//! after a crash. A decision that finds the payment past `pending` or past
//! its deadline is recorded as late and changes nothing (DESIGN §3.4).
//!
//! Every input a state cannot take is an [`Illegal`] transition: the driver
//! refuses to store it, whatever the build.

/// A payment's state at the CPP.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum State {
    /// PIN checked, recorded; the hold is being placed.
    Received,
    /// Hold placed, PN sent; awaiting the merchant's decision.
    Pending,
    /// Approved; the hold is being posted.
    Approving,
    /// Hold posted (T confirmation; a micropayment: DT).
    Completed,
    /// Rejected by the merchant; the hold is being voided.
    Rejecting,
    /// Hold voided after the merchant's rejection.
    Rejected,
    /// Past its deadline without a decision; the hold is being voided.
    Expiring,
    /// Hold voided after the deadline.
    Expired,
    /// No hold: the bank refused it (e.g. insufficient funds).
    Declined,
    /// Completed, then refunded in full.
    Refunded,
}

impl State {
    /// Every state.
    pub const ALL: [State; 10] = [
        State::Received,
        State::Pending,
        State::Approving,
        State::Completed,
        State::Rejecting,
        State::Rejected,
        State::Expiring,
        State::Expired,
        State::Declined,
        State::Refunded,
    ];

    /// Its name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Pending => "pending",
            State::Approving => "approving",
            State::Completed => "completed",
            State::Rejecting => "rejecting",
            State::Rejected => "rejected",
            State::Expiring => "expiring",
            State::Expired => "expired",
            State::Declined => "declined",
            State::Refunded => "refunded",
        }
    }

    /// From its name.
    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True when no saga step is left (refunds aside).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            State::Completed | State::Rejected | State::Expired | State::Declined | State::Refunded
        )
    }

    /// True for the states that name a bank call in progress: the driver
    /// resumes them after a crash.
    pub fn is_saga_step(self) -> bool {
        matches!(
            self,
            State::Received | State::Approving | State::Rejecting | State::Expiring
        )
    }

    /// True when the customer's money moved to the merchant (and may have
    /// been refunded since).
    pub fn is_paid(self) -> bool {
        matches!(self, State::Completed | State::Refunded)
    }
}

/// What happened to a payment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Input {
    /// The hold was placed (a micropayment: admitted or collected);
    /// `routed` is false when no time was left to send the PN.
    Admitted {
        /// The PN left toward the DC in the same transaction.
        routed: bool,
    },
    /// The bank refused the hold (a micropayment: refused or its aggregate
    /// transfer failed).
    Refused,
    /// The merchant's signed decision reached the CPP.
    Decided {
        /// Approve or reject.
        approve: bool,
    },
    /// The payment's deadline passed without a decision.
    DeadlinePassed,
    /// The hold was posted (a micropayment: booked as owed to the MPP).
    Posted,
    /// The hold ended unposted: voided, or voided or expired at the bank (a
    /// micropayment: taken back from the pending total or paid back).
    Released,
    /// Refunds reached what was paid.
    RefundedInFull,
}

/// How a payment ended, as its confirmation says.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum End {
    /// The money moved.
    Completed,
    /// The merchant rejected it; the hold was voided.
    Rejected,
    /// No decision in time (or the hold ended unposted); voided.
    Expired,
    /// The bank refused the hold.
    Declined,
}

/// What the driver must do after a transition, in the transaction that
/// stores it (messages leave through the outbox).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Effect {
    /// Send the PN toward the merchant's MPP (through the home DC).
    SendNotice,
    /// Carry out the next saga step (post or void the hold) now.
    Drive,
    /// Sign and keep the confirmation for the customer.
    Confirm(End),
    /// Send that confirmation back toward the MPP (a PN went out).
    ForwardConfirmation,
    /// Keep the decision for reconciliation, unapplied.
    RecordLate,
    /// Wake whoever waits on the payment (the customer's long poll).
    Wake,
}

/// A payment as the core sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Payment {
    /// Where it is in its life cycle.
    pub state: State,
    /// When the merchant's decision must have arrived (ms since the epoch).
    pub deadline_ms: u64,
    /// True once the PN went out (so confirmations go back too).
    pub notice_sent: bool,
}

/// An input the payment's state cannot take.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("payment in state `{}` cannot take {input:?}", state.as_str())]
pub struct Illegal {
    /// The state it was in.
    pub state: State,
    /// What it was given.
    pub input: Input,
}

/// A transition's result: the payment after it, and what to do.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Step {
    /// The payment after the input.
    pub payment: Payment,
    /// What the driver must do, in order.
    pub effects: Vec<Effect>,
}

impl Step {
    /// True when the state changed.
    pub fn moved_from(&self, before: State) -> bool {
        self.payment.state != before
    }
}

/// The one transition function: `payment` given `input` at `now_ms`.
pub fn step(payment: Payment, input: Input, now_ms: u64) -> Result<Step, Illegal> {
    use Effect::{Confirm, Drive, ForwardConfirmation, RecordLate, SendNotice, Wake};
    let illegal = Illegal {
        state: payment.state,
        input,
    };
    let to = |state: State, notice_sent: bool, effects: Vec<Effect>| Step {
        payment: Payment {
            state,
            notice_sent,
            ..payment
        },
        effects,
    };
    let end = |state: State, end: End| {
        let mut effects = vec![Confirm(end)];
        if payment.notice_sent {
            effects.push(ForwardConfirmation);
        }
        effects.push(Wake);
        to(state, payment.notice_sent, effects)
    };
    let step = match (payment.state, input) {
        (State::Received, Input::Admitted { routed: true }) => {
            to(State::Pending, true, vec![SendNotice, Wake])
        }
        (State::Received, Input::Admitted { routed: false }) => {
            to(State::Expiring, false, vec![Drive, Wake])
        }
        (State::Received, Input::Refused) => end(State::Declined, End::Declined),
        (State::Pending, Input::Decided { approve }) if now_ms <= payment.deadline_ms => {
            let next = if approve {
                State::Approving
            } else {
                State::Rejecting
            };
            to(next, payment.notice_sent, vec![Drive, Wake])
        }
        // Too late, or decided already: kept for reconciliation, unapplied.
        (_, Input::Decided { .. }) => to(payment.state, payment.notice_sent, vec![RecordLate]),
        (State::Pending, Input::DeadlinePassed) if now_ms > payment.deadline_ms => {
            to(State::Expiring, payment.notice_sent, vec![Drive, Wake])
        }
        (State::Approving, Input::Posted) => end(State::Completed, End::Completed),
        // An approved payment whose hold ended unposted (it expired at the
        // bank while the post was retried) expires.
        (State::Approving, Input::Released) | (State::Expiring, Input::Released) => {
            end(State::Expired, End::Expired)
        }
        (State::Rejecting, Input::Released) => end(State::Rejected, End::Rejected),
        (State::Completed, Input::RefundedInFull) => {
            to(State::Refunded, payment.notice_sent, vec![Wake])
        }
        _ => return Err(illegal),
    };
    Ok(step)
}

/// Every state `from` can move to, over all inputs and times (for the
/// drivers' bulk updates and the tests).
pub fn successors(from: State) -> Vec<State> {
    let inputs = [
        Input::Admitted { routed: true },
        Input::Admitted { routed: false },
        Input::Refused,
        Input::Decided { approve: true },
        Input::Decided { approve: false },
        Input::DeadlinePassed,
        Input::Posted,
        Input::Released,
        Input::RefundedInFull,
    ];
    let mut next = Vec::new();
    for notice_sent in [false, true] {
        for (now_ms, deadline_ms) in [(0, 1), (2, 1)] {
            let payment = Payment {
                state: from,
                deadline_ms,
                notice_sent,
            };
            for input in inputs {
                if let Ok(step) = step(payment, input, now_ms)
                    && step.payment.state != from
                    && !next.contains(&step.payment.state)
                {
                    next.push(step.payment.state);
                }
            }
        }
    }
    next.sort();
    next
}
