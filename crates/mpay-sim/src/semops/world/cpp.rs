//! The simulated CPPs: PRs, the hold saga and its bank calls, the
//! confirmations, the refund leg to the customer, and their recovery sweep
//! (micropayments: `micro.rs`).

use super::*;

impl World {
    pub(super) fn cpp_pr(&mut self, r: u8, pr: Pr) {
        let now = self.now;
        if pr.device != pr.customer || !pr.pin_ok || now > pr.trans_expires {
            self.report.counts.refused_requests += 1;
            return;
        }
        let cpp = &mut self.cpps[usize::from(r)];
        if cpp.payments.contains_key(&pr.payment) {
            return;
        }
        cpp.payments.insert(
            pr.payment,
            CppPayment {
                customer: pr.customer,
                merchant: pr.merchant,
                amount: pr.amount,
                core: payment::Payment {
                    state: State::Received,
                    deadline_ms: now + DECISION_MS,
                    notice_sent: false,
                },
                hold: None,
                refunded: 0,
                reason: None,
                created: now,
                updated: now,
                micro: pr.amount <= MICRO_MAX,
                batch: None,
                collected: false,
                returned: 0,
            },
        );
        if pr.amount <= MICRO_MAX {
            self.cpp_micro_admit(r, pr.payment);
            return;
        }
        if self.variant == Variant::NoticeBeforeHold {
            self.cpp_send_notice(r, pr.payment);
        }
        self.cpp_drive(r, pr.payment);
    }

    /// Makes the bank call the payment's saga state names (module docs of
    /// `mpay_processor::payment`).
    pub(super) fn cpp_drive(&mut self, r: u8, id: u64) {
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        if p.micro {
            self.cpp_micro_drive(r, id);
            return;
        }
        let (call, op) = match (HoldCall::due(p.core.state), p.hold) {
            (Some(HoldCall::Place), _) => (
                Call::Hold(id),
                BankOp::Hold {
                    account: customer_account(p.customer),
                    amount: p.amount,
                    expires_at: self.now + DECISION_MS + 30_000,
                },
            ),
            (Some(HoldCall::Post), Some(hold)) => (
                Call::Post(id),
                BankOp::Post {
                    hold,
                    to: Dest {
                        bank: region_of_merchant(p.merchant),
                        account: merchant_account(p.merchant),
                    },
                },
            ),
            (Some(HoldCall::Void), Some(hold)) => (Call::Void(id), BankOp::Void { hold }),
            (Some(HoldCall::Post | HoldCall::Void), None) => {
                self.report.violations.push(format!(
                    "cpp{r} payment {id} is past `received` without a hold"
                ));
                return;
            }
            (None, _) => return,
        };
        self.bank_call(Node::Cpp(r), call, op);
    }

    pub(super) fn bank_call(&mut self, node: Node, call: Call, op: BankOp) {
        let now = self.now;
        let key = call.key();
        self.volatile(node).awaiting.insert(key.clone(), now);
        let bank = Node::Bank(node.region().unwrap_or(0));
        self.send(node, bank, Msg::BankReq { call, key, op });
    }

    /// Feeds `input` to the payment core and carries out its effects.
    pub(super) fn cpp_step(&mut self, r: u8, id: u64, input: Input) {
        let now = self.now;
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        let step = match payment::step(p.core, input, now) {
            Ok(step) => step,
            Err(illegal) => {
                self.report
                    .violations
                    .push(format!("cpp{r} payment {id}: {illegal}"));
                return;
            }
        };
        let mut next = p.clone();
        next.core = step.payment;
        next.updated = now;
        self.cpps[usize::from(r)].payments.insert(id, next.clone());
        let mut end = None;
        for effect in step.effects {
            match effect {
                Effect::SendNotice => self.cpp_send_notice(r, id),
                Effect::Drive => self.cpp_drive(r, id),
                Effect::Confirm(outcome) => end = Some(outcome),
                Effect::ForwardConfirmation => {
                    let outcome = match end {
                        Some(End::Completed) => Outcome::Transferred,
                        Some(End::Expired) => Outcome::Expired,
                        Some(End::Rejected | End::Declined) | None => Outcome::Rejected,
                    };
                    self.queue_frame(
                        Node::Cpp(r),
                        Node::Dc(r),
                        Node::Mpp(region_of_merchant(next.merchant)),
                        Body::Confirmation {
                            payment: id,
                            cpp: r,
                            merchant: next.merchant,
                            amount: next.amount,
                            outcome,
                        },
                    );
                }
                Effect::RecordLate => self.report.counts.late_decisions += 1,
                Effect::Wake => {}
            }
        }
    }

    pub(super) fn cpp_send_notice(&mut self, r: u8, id: u64) {
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        let mpp = region_of_merchant(p.merchant);
        self.queue_frame(
            Node::Cpp(r),
            Node::Dc(r),
            Node::Mpp(mpp),
            Body::Notice {
                payment: id,
                cpp: r,
                merchant: p.merchant,
                amount: p.amount,
                deadline: p.core.deadline_ms,
                micro: p.micro,
            },
        );
    }

    pub(super) fn cpp_bank_reply(&mut self, r: u8, call: Call, key: &str, result: BankResult) {
        let node = Node::Cpp(r);
        if self.volatile(node).awaiting.remove(key).is_none() {
            return; // an answer nobody waits for any more (a repeat)
        }
        let due = |w: &World, id: u64| {
            w.cpps[usize::from(r)]
                .payments
                .get(&id)
                .and_then(|p| HoldCall::due(p.core.state))
        };
        // What the answer means is the services' own decision
        // (`mpay_processor::saga`); the simulated bank answers a post or a
        // void of an ended hold with the hold's end.
        let next = match (call, &result) {
            (Call::Hold(id), BankResult::Held(hold)) if due(self, id) == Some(HoldCall::Place) => {
                if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                    p.hold = Some(*hold);
                }
                let routed = self.now <= self.deadline_of(r, id);
                Some((id, Next::Apply(saga::after_place(true, routed))))
            }
            (Call::Hold(id), BankResult::Refused(reason))
                if due(self, id) == Some(HoldCall::Place) =>
            {
                if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                    p.reason = Some(reason.clone());
                }
                Some((id, Next::Apply(saga::after_place(false, false))))
            }
            (Call::Post(id), BankResult::Posted) if due(self, id) == Some(HoldCall::Post) => {
                Some((id, saga::after_post(HoldEnd::Posted)))
            }
            (Call::Post(id), BankResult::Released) if due(self, id) == Some(HoldCall::Post) => {
                Some((id, saga::after_post(HoldEnd::Expired)))
            }
            (Call::Void(id), BankResult::Voided) if due(self, id) == Some(HoldCall::Void) => {
                Some((id, saga::after_void(HoldEnd::Voided)))
            }
            (Call::Void(id), BankResult::Refused(_)) if due(self, id) == Some(HoldCall::Void) => {
                Some((id, saga::after_void(HoldEnd::Posted)))
            }
            (Call::CppRefund { key, attempt, .. }, result) => {
                let answer = match result {
                    BankResult::Moved => TransferAnswer::Done,
                    // The simulated banks refuse a transfer only for want of
                    // funds (the MPP's money still on its way).
                    _ => TransferAnswer::InsufficientFunds,
                };
                // Past the refused attempt only (a late copy of an older
                // refusal moves nothing).
                if answer == TransferAnswer::InsufficientFunds
                    && let Some(f) = self.cpps[usize::from(r)].refunds.get_mut(&key)
                    && past_refused(&mut f.attempt, attempt)
                {
                    self.report.counts.refund_attempts += 1;
                }
                // None: tried again later.
                if let Some(input) = saga::after_refund_transfer(answer) {
                    self.cpp_refund_answered(r, key, input);
                }
                None
            }
            (Call::Batch(b), result) => {
                self.cpp_batch_answered(r, b, result);
                None
            }
            (Call::MicroReturn { payment, attempt }, result) => {
                self.cpp_return_answered(r, payment, attempt, result);
                None
            }
            (Call::NetRun { run, attempt }, result) => {
                self.cpp_run_answered(r, run, attempt, result);
                None
            }
            (Call::Hold(_) | Call::Post(_) | Call::Void(_), _) => None, // a stale answer
            (call, result) => {
                self.report.violations.push(format!(
                    "cpp{r}: unexpected bank answer {result:?} to {call:?}"
                ));
                None
            }
        };
        match next {
            Some((id, Next::Apply(input))) => self.cpp_step(r, id, input),
            Some((_, Next::Retry)) | None => {}
            Some((id, Next::Broken(what))) => self
                .report
                .violations
                .push(format!("cpp{r} payment {id}: {what}")),
        }
    }

    pub(super) fn deadline_of(&self, r: u8, id: u64) -> u64 {
        self.cpps[usize::from(r)]
            .payments
            .get(&id)
            .map_or(0, |p| p.core.deadline_ms)
    }

    pub(super) fn cpp_tick(&mut self, r: u8) {
        let node = Node::Cpp(r);
        let now = self.now;
        let payments: Vec<(u64, CppPayment)> = self.cpps[usize::from(r)]
            .payments
            .iter()
            .map(|(id, p)| (*id, p.clone()))
            .collect();
        for (id, p) in payments {
            if p.core.state == State::Pending && now > p.core.deadline_ms {
                if self.variant == Variant::ExpiryWithoutVoid && !p.micro {
                    if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                        p.core.state = State::Expired;
                    }
                    continue;
                }
                self.cpp_step(r, id, Input::DeadlinePassed);
                continue;
            }
            if p.micro {
                continue; // resumed by the micropayment sweep below
            }
            if HoldCall::due(p.core.state).is_some()
                && !self.waiting(node, &[Call::Hold(id), Call::Post(id), Call::Void(id)])
            {
                self.cpp_drive(r, id);
            }
        }
        let refunds: Vec<(u64, Refund)> = self.cpps[usize::from(r)]
            .refunds
            .iter()
            .filter(|(_, f)| f.state.is_moving())
            .map(|(k, f)| (*k, f.clone()))
            .collect();
        for (key, f) in refunds {
            let call = Call::CppRefund {
                payment: f.payment,
                key,
                attempt: f.attempt,
            };
            if self.awaiting_since(node, &call.key()).is_some() {
                continue;
            }
            self.cpp_refund_transfer(r, key);
        }
        self.cpp_micro_tick(r);
    }

    /// True when a call among `calls` awaits an answer sent less than
    /// [`RETRY_MS`] ago.
    pub(super) fn waiting(&mut self, node: Node, calls: &[Call]) -> bool {
        calls
            .iter()
            .any(|c| self.awaiting_since(node, &c.key()).is_some())
    }

    pub(super) fn awaiting_since(&mut self, node: Node, key: &str) -> Option<u64> {
        let now = self.now;
        let v = self.volatile(node);
        match v.awaiting.get(key) {
            Some(&t) if now < t + RETRY_MS => Some(t),
            Some(_) => {
                v.awaiting.remove(key);
                None
            }
            None => None,
        }
    }

    pub(super) fn cpp_frame(&mut self, r: u8, body: Body) {
        match body {
            Body::Decision {
                payment,
                approve,
                standing,
            } => {
                let Some(p) = self.cpps[usize::from(r)].payments.get(&payment).cloned() else {
                    return;
                };
                // The CPP's check of a standing approval: in force at some
                // instant from the payment's record to now, covering its
                // amount. An MPP applied it in that span, so a refusal here
                // is an MPP that approved what the merchant did not.
                if let Some(approval) = standing
                    && let Err(not_covered) = approval.covers_during(
                        Amount::new(p.amount, CURRENCY),
                        Timestamp(p.created),
                        Timestamp(self.now),
                    )
                {
                    self.report.violations.push(format!(
                        "cpp{r} payment {payment}: a standing approval that does not cover it ({not_covered})"
                    ));
                    return;
                }
                self.cpp_step(r, payment, Input::Decided { approve });
            }
            Body::RefundRelay {
                payment,
                key,
                amount,
            } => self.cpp_refund_relay(r, payment, key, amount),
            other => self
                .report
                .violations
                .push(format!("cpp{r} got a frame not for it: {other:?}")),
        }
    }

    pub(super) fn cpp_refund_relay(&mut self, r: u8, payment: u64, key: u64, amount: i64) {
        let forget = self.variant == Variant::RefundRelayWithoutKey;
        let cpp = &mut self.cpps[usize::from(r)];
        if cpp.refunds.contains_key(&key) && !forget {
            return;
        }
        let key = if forget && cpp.refunds.contains_key(&key) {
            self.next_id += 1;
            self.next_id
        } else {
            key
        };
        let cpp = &mut self.cpps[usize::from(r)];
        let fits = cpp
            .payments
            .get(&payment)
            .is_some_and(|p| p.core.state == State::Completed && p.refunded + amount <= p.amount);
        if fits && let Some(p) = cpp.payments.get_mut(&payment) {
            p.refunded += amount;
        }
        cpp.refunds.insert(
            key,
            Refund {
                payment,
                amount,
                state: refund::State::start(Leg::Cpp, fits),
                attempt: 0,
            },
        );
        if fits {
            self.cpp_refund_transfer(r, key);
        } else {
            self.report.counts.refunds_refused += 1;
        }
    }

    pub(super) fn cpp_refund_transfer(&mut self, r: u8, key: u64) {
        let Some(f) = self.cpps[usize::from(r)].refunds.get_mut(&key) else {
            return;
        };
        // The broken variant moves to a new key at every try, a lost answer
        // included; a correct leg only after a refusal came back.
        if self.variant == Variant::RefundTransferWithoutKey {
            f.attempt += 1;
        }
        let (payment, amount, attempt) = (f.payment, f.amount, f.attempt);
        let Some(customer) = self.cpps[usize::from(r)]
            .payments
            .get(&payment)
            .map(|p| p.customer)
        else {
            return;
        };
        let op = BankOp::Transfer {
            from: cpp_account(r),
            to: Dest {
                bank: region_of_customer(customer),
                account: customer_account(customer),
            },
            amount,
        };
        let call = Call::CppRefund {
            payment,
            key,
            attempt,
        };
        self.bank_call(Node::Cpp(r), call, op);
    }

    pub(super) fn cpp_refund_answered(&mut self, r: u8, key: u64, input: refund::Input) {
        let Some(f) = self.cpps[usize::from(r)].refunds.get(&key).cloned() else {
            return;
        };
        let (state, effects) = match refund::step(f.state, input) {
            Ok(next) => next,
            Err(illegal) => {
                if self.variant != Variant::RefundTransferWithoutKey {
                    self.report
                        .violations
                        .push(format!("cpp{r} refund {key}: {illegal}"));
                }
                return;
            }
        };
        if let Some(f) = self.cpps[usize::from(r)].refunds.get_mut(&key) {
            f.state = state;
        }
        if state == refund::State::Refunded {
            self.report.counts.refunds += 1;
        }
        for effect in effects {
            match effect {
                refund::Effect::Confirm => {
                    let merchant = self.cpps[usize::from(r)]
                        .payments
                        .get(&f.payment)
                        .map_or(0, |p| p.merchant);
                    // The refund key the MPP knows (the broken variant's
                    // second application has a fresh one the MPP never saw).
                    self.queue_frame(
                        Node::Cpp(r),
                        Node::Dc(r),
                        Node::Mpp(region_of_merchant(merchant)),
                        Body::RefundDone {
                            payment: f.payment,
                            key,
                        },
                    );
                }
                refund::Effect::MaybeRefundedInFull => {
                    let cpp = &self.cpps[usize::from(r)];
                    let moving = cpp
                        .refunds
                        .values()
                        .any(|g| g.payment == f.payment && g.state.is_moving());
                    let full = cpp.payments.get(&f.payment).is_some_and(|p| {
                        p.refunded == p.amount && p.core.state == State::Completed
                    });
                    if full && !moving {
                        self.cpp_step(r, f.payment, Input::RefundedInFull);
                    }
                }
                refund::Effect::Release => {
                    if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&f.payment) {
                        p.refunded -= f.amount;
                    }
                }
                refund::Effect::SendRelay => {}
            }
        }
    }
}
