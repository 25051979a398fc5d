//! The simulated MPPs: notices, merchants' decisions, the refund leg from
//! the merchant, and its recovery sweep (micropayments' standing approvals,
//! statements and payouts: `micro.rs`).

use super::*;

impl World {
    pub(super) fn mpp_frame(&mut self, r: u8, body: Body) {
        let now = self.now;
        match body {
            Body::Notice {
                payment,
                cpp,
                merchant,
                amount,
                deadline,
                micro,
            } => {
                if self.mpps[usize::from(r)].payments.contains_key(&payment) {
                    return;
                }
                let late = now >= deadline;
                self.mpps[usize::from(r)].payments.insert(
                    payment,
                    MppPayment {
                        cpp,
                        merchant,
                        amount,
                        deadline,
                        core: merchant::Payment::noticed(late),
                        refunded: 0,
                        created: now,
                        updated: now,
                        micro,
                        payout: None,
                    },
                );
                if late || (micro && self.mpp_standing(r, payment, merchant, amount)) {
                    return;
                }
                self.plan_merchant(r, payment, amount, deadline);
            }
            Body::Confirmation {
                payment,
                cpp,
                merchant,
                amount,
                outcome,
            } => {
                let mpp = &mut self.mpps[usize::from(r)];
                let p = mpp.payments.entry(payment).or_insert(MppPayment {
                    cpp,
                    merchant,
                    amount,
                    deadline: now,
                    core: merchant::Payment::noticed(true),
                    refunded: 0,
                    created: now,
                    updated: now,
                    // A confirmation before the PN: only a payment decided
                    // by its merchant can be confirmed, so never.
                    micro: false,
                    payout: None,
                });
                match merchant::step(p.core, merchant::Input::Confirmed(outcome), now) {
                    Ok(step) => {
                        p.core = step.payment;
                        p.updated = now;
                    }
                    Err(merchant::Illegal::AlreadyConfirmed) => {}
                    Err(illegal) => self
                        .report
                        .violations
                        .push(format!("mpp{r} payment {payment}: {illegal}")),
                }
            }
            Body::RefundDone { payment, key } => self.mpp_refund_done(r, payment, key),
            Body::Statement { run, cpp, payments } => self.mpp_statement(r, cpp, run, &payments),
            other => self
                .report
                .violations
                .push(format!("mpp{r} got a frame not for it: {other:?}")),
        }
    }

    /// How the merchant answers: approves, rejects, answers late or never;
    /// and, for some approvals, asks for refunds later (partial, full,
    /// repeated, racing).
    pub(super) fn plan_merchant(&mut self, r: u8, payment: u64, amount: i64, deadline: u64) {
        let roll = below(&mut self.rng, 100);
        let now = self.now;
        let (at, approve) = match roll {
            0..65 => (now + 5 + below(&mut self.rng, 600), true),
            65..80 => (now + 5 + below(&mut self.rng, 600), false),
            80..90 => (deadline + below(&mut self.rng, 400), true),
            _ => return,
        };
        self.script(
            at,
            Event::Decide {
                mpp: r,
                payment,
                approve,
            },
        );
        if !approve || !chance(&mut self.rng, 450) {
            return;
        }
        let later = at + 2_000 + below(&mut self.rng, 4_000);
        let key = self.id();
        match below(&mut self.rng, 4) {
            0 => self.script(
                later,
                Event::Refund {
                    mpp: r,
                    payment,
                    key,
                    amount: (amount + 1) / 2,
                },
            ),
            1 => self.script(
                later,
                Event::Refund {
                    mpp: r,
                    payment,
                    key,
                    amount,
                },
            ),
            2 => {
                for again in 0..2 {
                    self.script(
                        later + again * 50,
                        Event::Refund {
                            mpp: r,
                            payment,
                            key,
                            amount,
                        },
                    );
                }
            }
            _ => {
                let other = self.id();
                let part = amount - amount / 3;
                self.script(
                    later,
                    Event::Refund {
                        mpp: r,
                        payment,
                        key,
                        amount: part,
                    },
                );
                self.script(
                    later,
                    Event::Refund {
                        mpp: r,
                        payment,
                        key: other,
                        amount: part,
                    },
                );
            }
        }
    }

    pub(super) fn mpp_decide(
        &mut self,
        r: u8,
        payment: u64,
        approve: bool,
        standing: Option<StandingApproval>,
    ) {
        let now = self.now;
        let Some(p) = self.mpps[usize::from(r)].payments.get(&payment).cloned() else {
            return;
        };
        let input = merchant::Input::Decided {
            approve,
            deadline_ms: p.deadline,
        };
        match merchant::step(p.core, input, now) {
            Ok(step) => {
                if let Some(q) = self.mpps[usize::from(r)].payments.get_mut(&payment) {
                    q.core = step.payment;
                    q.updated = now;
                }
                for merchant::Effect::RelayDecision in step.effects {
                    self.queue_frame(
                        Node::Mpp(r),
                        Node::Dc(r),
                        Node::Cpp(p.cpp),
                        Body::Decision {
                            payment,
                            approve,
                            standing: standing.clone(),
                        },
                    );
                }
            }
            Err(merchant::Illegal::DeadlinePassed | merchant::Illegal::NotAwaitingDecision(_)) => {
                self.report.counts.late_decisions += 1;
            }
            Err(illegal) => self
                .report
                .violations
                .push(format!("mpp{r} payment {payment}: {illegal}")),
        }
    }

    pub(super) fn mpp_refund(&mut self, r: u8, payment: u64, key: u64, amount: i64) {
        let mpp = &mut self.mpps[usize::from(r)];
        if mpp.refunds.contains_key(&key) {
            return; // a repeat of a refund already taken
        }
        // Micropayments are not refundable through the network.
        let fits = mpp.payments.get(&payment).is_some_and(|p| {
            !p.micro
                && p.core.state == merchant::State::Completed
                && p.refunded + amount <= p.amount
        });
        if !fits {
            self.report.counts.refunds_refused += 1;
            return;
        }
        if let Some(p) = mpp.payments.get_mut(&payment) {
            p.refunded += amount;
        }
        mpp.refunds.insert(
            key,
            Refund {
                payment,
                amount,
                state: refund::State::start(Leg::Mpp, true),
                attempt: 0,
            },
        );
        self.mpp_refund_transfer(r, key);
    }

    pub(super) fn mpp_refund_transfer(&mut self, r: u8, key: u64) {
        let Some(f) = self.mpps[usize::from(r)].refunds.get(&key).cloned() else {
            return;
        };
        let Some(p) = self.mpps[usize::from(r)].payments.get(&f.payment).cloned() else {
            return;
        };
        let op = BankOp::Transfer {
            from: merchant_account(p.merchant),
            to: Dest {
                bank: p.cpp,
                account: cpp_account(p.cpp),
            },
            amount: f.amount,
        };
        let call = Call::MppRefund {
            payment: f.payment,
            key,
            attempt: f.attempt,
        };
        self.bank_call(Node::Mpp(r), call, op);
    }

    pub(super) fn mpp_bank_reply(&mut self, r: u8, call: Call, key: &str, result: BankResult) {
        if self.volatile(Node::Mpp(r)).awaiting.remove(key).is_none() {
            return;
        }
        if let Call::Payout { payout, attempt } = call {
            self.mpp_payout_answered(r, payout, attempt, &result);
            return;
        }
        let Call::MppRefund {
            key: refund_key,
            attempt,
            ..
        } = call
        else {
            return;
        };
        let Some(f) = self.mpps[usize::from(r)].refunds.get(&refund_key).cloned() else {
            return;
        };
        let answer = match result {
            BankResult::Moved => TransferAnswer::Done,
            // The simulated banks refuse a transfer only for want of funds.
            _ => TransferAnswer::InsufficientFunds,
        };
        if answer == TransferAnswer::InsufficientFunds
            && let Some(g) = self.mpps[usize::from(r)].refunds.get_mut(&refund_key)
            && past_refused(&mut g.attempt, attempt)
        {
            self.report.counts.refund_attempts += 1;
        }
        // None: refused for now (the merchant's money on its way), tried again.
        let Some(input) = saga::after_refund_transfer(answer) else {
            return;
        };
        if f.state != refund::State::Funding {
            return;
        }
        match refund::step(f.state, input) {
            Ok((state, effects)) => {
                if let Some(g) = self.mpps[usize::from(r)].refunds.get_mut(&refund_key) {
                    g.state = state;
                }
                for effect in effects {
                    if effect == refund::Effect::SendRelay {
                        let cpp = self.mpps[usize::from(r)]
                            .payments
                            .get(&f.payment)
                            .map_or(0, |p| p.cpp);
                        self.queue_frame(
                            Node::Mpp(r),
                            Node::Dc(r),
                            Node::Cpp(cpp),
                            Body::RefundRelay {
                                payment: f.payment,
                                key: refund_key,
                                amount: f.amount,
                            },
                        );
                    }
                }
            }
            Err(illegal) => self
                .report
                .violations
                .push(format!("mpp{r} refund {refund_key}: {illegal}")),
        }
    }

    pub(super) fn mpp_refund_done(&mut self, r: u8, payment: u64, key: u64) {
        let Some(f) = self.mpps[usize::from(r)].refunds.get(&key).cloned() else {
            return;
        };
        let Ok((state, effects)) = refund::step(f.state, refund::Input::Confirmed) else {
            return; // confirmed already
        };
        if let Some(g) = self.mpps[usize::from(r)].refunds.get_mut(&key) {
            g.state = state;
        }
        if effects.contains(&refund::Effect::MaybeRefundedInFull) {
            let mpp = &mut self.mpps[usize::from(r)];
            let moving = mpp
                .refunds
                .values()
                .any(|g| g.payment == payment && g.state.is_in_flight());
            let now = self.now;
            if let Some(p) = mpp.payments.get_mut(&payment)
                && p.refunded == p.amount
                && !moving
            {
                match merchant::step(p.core, merchant::Input::RefundedInFull, now) {
                    Ok(step) => {
                        p.core = step.payment;
                        p.updated = now;
                    }
                    Err(illegal) => self
                        .report
                        .violations
                        .push(format!("mpp{r} payment {payment}: {illegal}")),
                }
            }
        }
    }

    pub(super) fn mpp_tick(&mut self, r: u8) {
        let node = Node::Mpp(r);
        let moving: Vec<Call> = self.mpps[usize::from(r)]
            .refunds
            .iter()
            .filter(|(_, f)| f.state == refund::State::Funding)
            .map(|(&key, f)| Call::MppRefund {
                payment: f.payment,
                key,
                attempt: f.attempt,
            })
            .collect();
        for call in moving {
            let Call::MppRefund { key, .. } = call else {
                continue;
            };
            if self.awaiting_since(node, &call.key()).is_none() {
                self.mpp_refund_transfer(r, key);
            }
        }
        self.mpp_micro_tick(r);
    }
}
