//! Micropayments in the simulated network, one intermediary (module docs
//! of `mpay_network::cpp::micro` and `mpay_network::mpp::micro`): at the
//! CPP the pending totals of `mpay-micro`'s aggregator, the customers'
//! aggregated transfers (at θ, or by the window sweep), taking rejected
//! micropayments back (paying back what a batch collected) and net
//! settlement runs to the MPPs; at the MPP standing approvals, statements
//! and payouts to merchants: of funded micropayments only (one
//! intermediary), or ahead of the CPPs within the MPP's credit limit (two).
//!
//! Every transfer that waits for money (returns, runs, payouts) asks under
//! numbered attempts and moves to the next only after a refusal, as the
//! services do (`mpay_processor::saga::attempt_key`); a customer's
//! aggregated transfer has one key, the batch, and fails on a refusal.

use mpay_micro::intermediary::check_credit;
use mpay_micro::pending::{AddOutcome, Batch, Taken};
use mpay_micro::policy::Refusal;

use super::*;

/// What a transfer's answer means to its caller.
fn transfer_answer(result: &BankResult) -> TransferAnswer {
    match result {
        BankResult::Moved => TransferAnswer::Done,
        // The simulated banks refuse a transfer only for want of funds.
        _ => TransferAnswer::InsufficientFunds,
    }
}

impl World {
    fn micro_violation(&mut self, what: String) {
        self.report.violations.push(what);
    }

    // ---- the CPP ------------------------------------------------------------

    /// A recorded micropayment: into the customer's pending total (DT path,
    /// or the whole total transferred at θ), declined for a blocked
    /// customer, or a macro payment (a batch in flight, no credit left).
    pub(super) fn cpp_micro_admit(&mut self, r: u8, id: u64) {
        let now = self.now;
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        let cpp = &mut self.cpps[usize::from(r)];
        let used = cpp
            .micro
            .pending_sum()
            .map_or(i64::MAX, |sum| sum.minor_units());
        let outcome =
            if check_credit(PartyId::from_u64(u64::from(r)), used, p.amount, CPP_CREDIT).is_err() {
                Ok(AddOutcome::Macro)
            } else {
                cpp.micro.add(
                    customer_party(p.customer),
                    id,
                    Amount::new(p.amount, CURRENCY),
                    &micro_limits(),
                    Timestamp(now),
                )
            };
        match outcome {
            Ok(AddOutcome::Deferred { .. }) => {
                self.report.counts.micropayments += 1;
                self.report.counts.deferred += 1;
                self.cpp_step(r, id, Input::Admitted { routed: true });
            }
            Ok(AddOutcome::SettleNeeded(batch)) => {
                self.report.counts.micropayments += 1;
                if let Some(q) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                    q.batch = Some(batch.id.0);
                }
                self.cpp_batch_start(r, batch, p.customer);
            }
            Ok(AddOutcome::Refused(Refusal::Blocked)) => {
                self.report.counts.micropayments += 1;
                if let Some(q) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                    q.reason = Some("micro_blocked".to_owned());
                }
                self.cpp_step(r, id, Input::Refused);
            }
            Ok(AddOutcome::Refused(Refusal::SettlementInFlight) | AddOutcome::Macro) => {
                if let Some(q) = self.cpps[usize::from(r)].payments.get_mut(&id) {
                    q.micro = false;
                }
                self.cpp_drive(r, id);
            }
            Err(e) => self.micro_violation(format!("cpp{r} micropayment {id}: {e}")),
        }
    }

    fn cpp_batch_start(&mut self, r: u8, batch: Batch, customer: u32) {
        let cpp = &mut self.cpps[usize::from(r)];
        let payments = cpp
            .micro
            .open_items(&batch.customer)
            .iter()
            .map(|i| i.payment)
            .collect();
        cpp.batches.insert(
            batch.id.0,
            MicroBatch {
                customer,
                total: batch.total.minor_units(),
                trigger: batch.trigger.map(|t| t.payment),
                payments,
                state: BatchState::Started,
            },
        );
        self.cpp_batch_transfer(r, batch.id.0);
    }

    fn cpp_batch_transfer(&mut self, r: u8, b: u64) {
        let Some(batch) = self.cpps[usize::from(r)].batches.get(&b).cloned() else {
            return;
        };
        let op = BankOp::Transfer {
            from: customer_account(batch.customer),
            to: Dest {
                bank: r,
                account: cpp_account(r),
            },
            amount: batch.total,
        };
        self.bank_call(Node::Cpp(r), Call::Batch(b), op);
    }

    /// The bank's answer to a customer's aggregated transfer: the batch
    /// settles (its trigger's PN goes out) or fails (its trigger is
    /// declined, the customer blocked).
    pub(super) fn cpp_batch_answered(&mut self, r: u8, b: u64, result: &BankResult) {
        let now = self.now;
        let cpp = &mut self.cpps[usize::from(r)];
        let Some(batch) = cpp.batches.get(&b).cloned() else {
            return;
        };
        if batch.state != BatchState::Started {
            return;
        }
        let settled = transfer_answer(result) == TransferAnswer::Done;
        let ended = if settled {
            cpp.micro.settled(BatchId(b))
        } else {
            cpp.micro
                .failed(BatchId(b), &micro_limits(), Timestamp(now))
        };
        if let Err(e) = ended {
            self.micro_violation(format!("cpp{r} batch {b}: {e}"));
            return;
        }
        if let Some(batch) = cpp.batches.get_mut(&b) {
            batch.state = if settled {
                BatchState::Settled
            } else {
                BatchState::Failed
            };
        }
        if settled {
            self.report.counts.batches_settled += 1;
            for id in &batch.payments {
                if let Some(p) = cpp.payments.get_mut(id) {
                    p.collected = true;
                }
            }
        } else {
            self.report.counts.batches_failed += 1;
        }
        let Some(trigger) = batch.trigger else {
            return;
        };
        if settled {
            let routed = now <= self.deadline_of(r, trigger);
            self.cpp_step(r, trigger, Input::Admitted { routed });
        } else {
            if let Some(p) = self.cpps[usize::from(r)].payments.get_mut(&trigger) {
                p.reason = Some("aggregate_transfer_failed".to_owned());
            }
            self.cpp_step(r, trigger, Input::Refused);
        }
    }

    /// The saga step a micropayment's state names: its batch's transfer
    /// (a trigger), booking it as owed to the MPP (approved), or taking it
    /// back (rejected, expired).
    pub(super) fn cpp_micro_drive(&mut self, r: u8, id: u64) {
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        match p.core.state {
            State::Received => {
                if let Some(b) = p.batch {
                    self.cpp_batch_transfer(r, b);
                }
            }
            State::Approving => {
                self.cpps[usize::from(r)].owed.insert(
                    id,
                    Owed {
                        mpp: region_of_merchant(p.merchant),
                        amount: p.amount,
                        run: None,
                    },
                );
                self.cpp_step(r, id, Input::Posted);
            }
            State::Rejecting | State::Expiring => self.cpp_take_back(r, id),
            _ => {}
        }
    }

    fn cpp_take_back(&mut self, r: u8, id: u64) {
        let Some(p) = self.cpps[usize::from(r)].payments.get(&id).cloned() else {
            return;
        };
        if self.variant == Variant::MicroNotTakenBack {
            self.cpp_step(r, id, Input::Released);
            return;
        }
        let taken = self.cpps[usize::from(r)].micro.take_back(
            &customer_party(p.customer),
            id,
            &micro_limits(),
        );
        match taken {
            Ok(Taken::Removed { .. }) => self.cpp_step(r, id, Input::Released),
            // Its batch is in flight: the sweep asks again once it ended.
            Ok(Taken::InFlight(_)) => {}
            Ok(Taken::NotOpen) if p.collected && p.returned == 0 => {
                self.cpps[usize::from(r)].returns.entry(id).or_insert(0);
                self.cpp_return_transfer(r, id);
            }
            Ok(Taken::NotOpen) => self.cpp_step(r, id, Input::Released),
            Err(e) => self.micro_violation(format!("cpp{r} micropayment {id}: {e}")),
        }
    }

    fn cpp_return_transfer(&mut self, r: u8, id: u64) {
        let cpp = &self.cpps[usize::from(r)];
        let (Some(p), Some(&attempt)) = (cpp.payments.get(&id), cpp.returns.get(&id)) else {
            return;
        };
        let op = BankOp::Transfer {
            from: cpp_account(r),
            to: Dest {
                bank: region_of_customer(p.customer),
                account: customer_account(p.customer),
            },
            amount: p.amount,
        };
        let call = Call::MicroReturn {
            payment: id,
            attempt,
        };
        self.bank_call(Node::Cpp(r), call, op);
    }

    pub(super) fn cpp_return_answered(
        &mut self,
        r: u8,
        id: u64,
        attempt: u32,
        result: &BankResult,
    ) {
        let cpp = &mut self.cpps[usize::from(r)];
        let Some(current) = cpp.returns.get_mut(&id) else {
            return;
        };
        if transfer_answer(result) == TransferAnswer::InsufficientFunds {
            past_refused(current, attempt);
            return;
        }
        cpp.returns.remove(&id);
        let Some(p) = cpp.payments.get_mut(&id) else {
            return;
        };
        p.returned = p.amount;
        self.report.counts.micro_returns += 1;
        self.cpp_step(r, id, Input::Released);
    }

    /// The CPP's background micropayment work: the window sweep, batches
    /// and returns not answered, micropayments waiting to be taken back,
    /// and net settlement.
    pub(super) fn cpp_micro_tick(&mut self, r: u8) {
        let node = Node::Cpp(r);
        let now = self.now;
        for customer in self.cpps[usize::from(r)]
            .micro
            .due_for_window(Timestamp(now), 16)
        {
            let Some(c) = (0..CUSTOMERS).find(|&c| customer_party(c) == customer) else {
                continue;
            };
            if let Some(batch) = self.cpps[usize::from(r)].micro.start_settlement(customer) {
                self.cpp_batch_start(r, batch, c);
            }
        }
        let started: Vec<u64> = self.cpps[usize::from(r)]
            .batches
            .iter()
            .filter(|(_, b)| b.state == BatchState::Started)
            .map(|(&b, _)| b)
            .collect();
        for b in started {
            if !self.waiting(node, &[Call::Batch(b)]) {
                self.cpp_batch_transfer(r, b);
            }
        }
        let ending: Vec<(u64, Option<u32>)> = self.cpps[usize::from(r)]
            .payments
            .iter()
            .filter(|(_, p)| p.micro && matches!(p.core.state, State::Rejecting | State::Expiring))
            .map(|(&id, _)| (id, self.cpps[usize::from(r)].returns.get(&id).copied()))
            .collect();
        for (id, returning) in ending {
            match returning {
                Some(attempt) => {
                    let call = Call::MicroReturn {
                        payment: id,
                        attempt,
                    };
                    if !self.waiting(node, &[call]) {
                        self.cpp_return_transfer(r, id);
                    }
                }
                None => self.cpp_take_back(r, id),
            }
        }
        if now >= self.cpps[usize::from(r)].last_run_at + SETTLE_MS {
            self.cpps[usize::from(r)].last_run_at = now;
            self.cpp_start_runs(r);
        }
        let unpaid: Vec<(u64, u32)> = self.cpps[usize::from(r)]
            .runs
            .iter()
            .filter(|(_, run)| !run.paid)
            .map(|(&run, n)| (run, n.attempt))
            .collect();
        for (run, attempt) in unpaid {
            if !self.waiting(node, &[Call::NetRun { run, attempt }]) {
                self.cpp_run_transfer(r, run);
            }
        }
    }

    /// One net settlement run per MPP owed for micropayments in no run yet.
    fn cpp_start_runs(&mut self, r: u8) {
        let mut by_mpp: BTreeMap<u8, Vec<(u64, i64)>> = BTreeMap::new();
        for (&id, owed) in &self.cpps[usize::from(r)].owed {
            if owed.run.is_none() {
                by_mpp.entry(owed.mpp).or_default().push((id, owed.amount));
            }
        }
        for (mpp, payments) in by_mpp {
            let run = self.id();
            let cpp = &mut self.cpps[usize::from(r)];
            for (id, _) in &payments {
                if let Some(owed) = cpp.owed.get_mut(id) {
                    owed.run = Some(run);
                }
            }
            cpp.runs.insert(
                run,
                NetRun {
                    mpp,
                    total: payments.iter().map(|(_, a)| a).sum(),
                    payments,
                    attempt: 0,
                    paid: false,
                },
            );
            self.cpp_run_transfer(r, run);
        }
    }

    fn cpp_run_transfer(&mut self, r: u8, run: u64) {
        let Some(n) = self.cpps[usize::from(r)].runs.get_mut(&run) else {
            return;
        };
        // The broken variant moves to a new key at every try, a lost answer
        // included; a correct run only after a refusal came back.
        if self.variant == Variant::NetRunWithoutKey {
            n.attempt += 1;
        }
        let op = BankOp::Transfer {
            from: cpp_account(r),
            to: Dest {
                bank: n.mpp,
                account: mpp_account(n.mpp),
            },
            amount: n.total,
        };
        let call = Call::NetRun {
            run,
            attempt: n.attempt,
        };
        self.bank_call(Node::Cpp(r), call, op);
    }

    /// A run's transfer made: its statement goes to the MPP (straight, from
    /// the outbox).
    pub(super) fn cpp_run_answered(&mut self, r: u8, run: u64, attempt: u32, result: &BankResult) {
        let Some(n) = self.cpps[usize::from(r)].runs.get_mut(&run) else {
            return;
        };
        if n.paid {
            return;
        }
        if transfer_answer(result) == TransferAnswer::InsufficientFunds {
            if past_refused(&mut n.attempt, attempt) {
                self.report.counts.run_attempts += 1;
            }
            return;
        }
        n.paid = true;
        let (mpp, payments) = (n.mpp, n.payments.clone());
        self.report.counts.net_runs += 1;
        self.queue_frame(
            Node::Cpp(r),
            Node::Mpp(mpp),
            Node::Mpp(mpp),
            Body::Statement {
                run,
                cpp: r,
                payments,
            },
        );
    }

    // ---- the MPP ------------------------------------------------------------

    /// A micropayment's PN recorded in time: approved at once if its
    /// merchant's standing approval covers it within the period's budget.
    pub(super) fn mpp_standing(&mut self, r: u8, payment: u64, merchant: u32, amount: i64) -> bool {
        let now = self.now;
        let Some(approval) = self.standing.get(&merchant).cloned() else {
            return false;
        };
        let mpp = &mut self.mpps[usize::from(r)];
        let period = approval.period_of(Timestamp(now));
        let used = mpp
            .standing_used
            .get(&(merchant, period))
            .copied()
            .unwrap_or(0);
        let Ok(taken) = approval.admits(Amount::new(amount, CURRENCY), used, Timestamp(now)) else {
            return false;
        };
        mpp.standing_used
            .insert((merchant, taken.period), taken.used_after);
        self.report.counts.standing_approved += 1;
        self.mpp_decide(r, payment, true, Some(approval));
        true
    }

    /// A CPP's statement: taken once per (CPP, run); its micropayments are
    /// funded.
    pub(super) fn mpp_statement(&mut self, r: u8, cpp: u8, run: u64, payments: &[(u64, i64)]) {
        let mpp = &mut self.mpps[usize::from(r)];
        if mpp.statements.contains_key(&(cpp, run)) {
            return;
        }
        mpp.statements
            .insert((cpp, run), payments.iter().map(|(_, a)| a).sum());
        mpp.funded.extend(payments.iter().map(|(id, _)| id));
    }

    /// What the MPP has paid out, or is paying out, ahead of the CPPs: in
    /// payouts and not funded.
    fn mpp_advanced(&self, r: u8) -> i64 {
        let mpp = &self.mpps[usize::from(r)];
        mpp.payments
            .iter()
            .filter(|(id, p)| p.payout.is_some() && !mpp.funded.contains(id))
            .map(|(_, p)| p.amount)
            .sum()
    }

    /// Payouts of completed micropayments, one per merchant (funded ones
    /// only with one intermediary; with two, ahead of funding as far as the
    /// credit limit allows, a merchant that does not fit waiting), and the
    /// retry of payouts not answered.
    pub(super) fn mpp_micro_tick(&mut self, r: u8) {
        let node = Node::Mpp(r);
        let two = self.two_intermediaries;
        let mpp = &self.mpps[usize::from(r)];
        let mut by_merchant: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        for (&id, p) in &mpp.payments {
            if p.micro
                && p.payout.is_none()
                && p.core.state == merchant::State::Completed
                && (two || mpp.funded.contains(&id))
            {
                by_merchant.entry(p.merchant).or_default().push(id);
            }
        }
        for (m, ids) in by_merchant {
            let mpp = &self.mpps[usize::from(r)];
            let ahead: i64 = ids
                .iter()
                .filter(|id| !mpp.funded.contains(id))
                .filter_map(|id| mpp.payments.get(id))
                .map(|p| p.amount)
                .sum();
            if ahead > 0
                && self.variant != Variant::AdvanceBeyondCredit
                && check_credit(
                    PartyId::from_u64(2_000 + u64::from(r)),
                    self.mpp_advanced(r),
                    ahead,
                    MPP_CREDIT,
                )
                .is_err()
            {
                continue; // waits for the CPPs' next net settlements
            }
            if ahead > 0 {
                self.report.counts.payouts_ahead += 1;
            }
            let payout = self.id();
            let short = self.variant == Variant::PayoutShort && ids.len() > 1;
            let last = ids.len().saturating_sub(1);
            let mpp = &mut self.mpps[usize::from(r)];
            let mut total = 0;
            for (i, id) in ids.into_iter().enumerate() {
                if let Some(p) = mpp.payments.get_mut(&id) {
                    p.payout = Some(payout);
                    if !(short && i == last) {
                        total += p.amount;
                    }
                }
            }
            mpp.payouts.insert(
                payout,
                Payout {
                    merchant: m,
                    total,
                    attempt: 0,
                    paid: false,
                },
            );
            self.mpp_payout_transfer(r, payout);
        }
        // The credit limit holds at every step, not only once all is
        // funded (by then nothing is advanced).
        let advanced = self.mpp_advanced(r);
        let limit = if two { MPP_CREDIT } else { 0 };
        if advanced > limit {
            self.report.violations.push(format!(
                "mpp{r} pays out {advanced} ahead of net settlement, beyond its credit limit {limit}"
            ));
        }
        let unpaid: Vec<(u64, u32)> = self.mpps[usize::from(r)]
            .payouts
            .iter()
            .filter(|(_, p)| !p.paid)
            .map(|(&id, p)| (id, p.attempt))
            .collect();
        for (payout, attempt) in unpaid {
            if !self.waiting(node, &[Call::Payout { payout, attempt }]) {
                self.mpp_payout_transfer(r, payout);
            }
        }
    }

    fn mpp_payout_transfer(&mut self, r: u8, payout: u64) {
        let Some(p) = self.mpps[usize::from(r)].payouts.get(&payout) else {
            return;
        };
        let op = BankOp::Transfer {
            from: mpp_account(r),
            to: Dest {
                bank: region_of_merchant(p.merchant),
                account: merchant_account(p.merchant),
            },
            amount: p.total,
        };
        let call = Call::Payout {
            payout,
            attempt: p.attempt,
        };
        self.bank_call(Node::Mpp(r), call, op);
    }

    pub(super) fn mpp_payout_answered(
        &mut self,
        r: u8,
        payout: u64,
        attempt: u32,
        result: &BankResult,
    ) {
        let Some(p) = self.mpps[usize::from(r)].payouts.get_mut(&payout) else {
            return;
        };
        if p.paid {
            return;
        }
        if transfer_answer(result) == TransferAnswer::InsufficientFunds {
            past_refused(&mut p.attempt, attempt);
            return;
        }
        p.paid = true;
        self.report.counts.payouts += 1;
    }
}
