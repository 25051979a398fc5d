//! The checks after every run: quiet, the network-wide checks of
//! `mpay_network::reconcile::judge` over the simulated records, and every
//! holder's balance against its payments and refunds.

use mpay_micro::policy::Standing;
use mpay_network::client::{
    CppMicroSummary, MicroCppRecord, MicroCustomerRecord, MicroMerchantRecord, MicroMppRecord,
    MppMicroSummary,
};

use super::*;

fn money(minor: i64) -> String {
    Amount::new(minor, CURRENCY).to_string()
}

impl World {
    /// Nothing moving, every payment final, both processors agreeing.
    pub(super) fn quiet(&self) -> bool {
        self.in_flight() == 0
            && self
                .cpps
                .iter()
                .all(|c| c.payments.values().all(|p| p.core.state.is_final()))
            && self
                .mpps
                .iter()
                .all(|m| m.payments.values().all(|p| p.core.state.is_final()))
    }

    pub(super) fn in_flight(&self) -> i64 {
        let frames: usize = self.cpps.iter().map(|c| c.outbox.len()).sum::<usize>()
            + self.mpps.iter().map(|m| m.outbox.len()).sum::<usize>()
            + self.dcs.iter().map(|d| d.outbox.len()).sum::<usize>()
            + self.banks.iter().map(|b| b.outbox.len()).sum::<usize>();
        let refunds = self
            .cpps
            .iter()
            .map(|c| {
                c.refunds
                    .values()
                    .filter(|f| f.state.is_in_flight())
                    .count()
            })
            .sum::<usize>()
            + self
                .mpps
                .iter()
                .map(|m| {
                    m.refunds
                        .values()
                        .filter(|f| f.state.is_in_flight())
                        .count()
                })
                .sum::<usize>();
        (frames + refunds) as i64 + self.micro_in_flight()
    }

    /// Micropayment work not done: pending totals waiting for the window
    /// (a blocked customer's debt excepted), batches, returns, runs and
    /// payouts not answered, debts in no run, funded micropayments in no
    /// payout.
    fn micro_in_flight(&self) -> i64 {
        let mut n = 0;
        for cpp in &self.cpps {
            n += (0..CUSTOMERS)
                .filter_map(|c| cpp.micro.pending(&customer_party(c)))
                .filter(|p| p.count > 0 && !matches!(p.standing, Standing::Blocked { .. }))
                .count();
            n += cpp
                .batches
                .values()
                .filter(|b| b.state == BatchState::Started)
                .count();
            n += cpp.returns.len();
            n += cpp.owed.values().filter(|o| o.run.is_none()).count();
            n += cpp.runs.values().filter(|run| !run.paid).count();
        }
        for mpp in &self.mpps {
            n += mpp.payouts.values().filter(|p| !p.paid).count();
            n += mpp
                .payments
                .iter()
                .filter(|(id, p)| {
                    p.micro
                        && p.payout.is_none()
                        && p.core.state == merchant::State::Completed
                        && mpp.funded.contains(id)
                })
                .count();
        }
        n as i64
    }

    pub(super) fn view(&self) -> mpay_network::reconcile::View {
        use mpay_network::client::{MppPaymentRecord, PaymentRecord};
        let hex = |id: u64| format!("{id:032x}");
        let mut view = mpay_network::reconcile::View::default();
        for bank in &self.banks {
            let name = format!("bank{}", bank.id);
            view.banks.push((name.clone(), bank.books()));
            view.holds_pending += bank.holds_pending();
            for hold in bank.hold_views() {
                view.holds.insert((name.clone(), hold.id.0), hold);
            }
        }
        let mut seq = 0;
        for (r, cpp) in self.cpps.iter().enumerate() {
            for (id, p) in &cpp.payments {
                seq += 1;
                view.payments.push((
                    format!("cpp{r}"),
                    PaymentRecord {
                        seq,
                        payment_id: hex(*id),
                        customer: format!("c{}", p.customer),
                        mpp: format!("mpp{}", region_of_merchant(p.merchant)),
                        amount: money(p.amount),
                        state: p.core.state.as_str().to_owned(),
                        bank: format!("bank{r}"),
                        account: customer_account(p.customer),
                        hold_id: p.hold,
                        refunded: money(p.refunded),
                        reason: p.reason.clone(),
                        deadline: p.core.deadline_ms,
                        created_at: p.created,
                        updated_at: p.updated,
                        class: if p.micro { "micro" } else { "macro" }.to_owned(),
                        micro_batch: p.batch.and_then(|b| i64::try_from(b).ok()),
                        micro_returned: money(p.returned),
                    },
                ));
            }
        }
        for (r, mpp) in self.mpps.iter().enumerate() {
            for (id, p) in &mpp.payments {
                seq += 1;
                view.mpp_payments.insert(
                    hex(*id),
                    (
                        format!("mpp{r}"),
                        MppPaymentRecord {
                            seq,
                            payment_id: hex(*id),
                            merchant: format!("m{}", p.merchant),
                            cpp: format!("cpp{}", p.cpp),
                            amount: money(p.amount),
                            state: p.core.state.as_str().to_owned(),
                            refunded: money(p.refunded),
                            created_at: p.created,
                            updated_at: p.updated,
                            micro: p.micro,
                            funded: mpp.funded.contains(id),
                            payout: p.payout.and_then(|b| i64::try_from(b).ok()),
                        },
                    ),
                );
            }
        }
        view.in_flight = self.in_flight();
        for r in 0..REGIONS {
            view.cpp_books
                .push((format!("cpp{r}"), self.cpp_micro_books(r)));
            view.mpp_books
                .push((format!("mpp{r}"), self.mpp_micro_books(r)));
        }
        view
    }

    /// A CPP's micropayment books as `GET /v1/admin/micro` shows them, each
    /// figure from its own records: confirmed from the payments' states,
    /// collected from the settled batches, returned from the returns,
    /// pending from the aggregator, paid from the runs, owed from the debts.
    fn cpp_micro_books(&self, r: u8) -> CppMicroSummary {
        let cpp = &self.cpps[usize::from(r)];
        let micro_paid = |p: &CppPayment| p.micro && p.core.state.is_paid();
        let customers = (0..CUSTOMERS)
            .filter(|&c| region_of_customer(c) == r)
            .filter_map(|c| {
                let pending = cpp.micro.pending(&customer_party(c))?;
                let mine = || cpp.payments.values().filter(move |p| p.customer == c);
                Some(MicroCustomerRecord {
                    name: format!("c{c}"),
                    pending: pending.total.to_string(),
                    count: i64::try_from(pending.count).unwrap_or(i64::MAX),
                    state: match pending.standing {
                        Standing::Open => "open",
                        Standing::Settling { .. } => "settling",
                        Standing::Blocked { .. } => "blocked",
                    }
                    .to_owned(),
                    failed_transfers: i64::try_from(pending.failed_transfers).unwrap_or(i64::MAX),
                    collected: money(
                        cpp.batches
                            .values()
                            .filter(|b| b.customer == c && b.state == BatchState::Settled)
                            .map(|b| b.total)
                            .sum(),
                    ),
                    returned: money(mine().map(|p| p.returned).sum()),
                    confirmed: money(mine().filter(|p| micro_paid(p)).map(|p| p.amount).sum()),
                    theta: money(THETA),
                    window_ms: WINDOW_MS,
                })
            })
            .collect();
        let mpps = (0..REGIONS)
            .map(|m| {
                let runs = || {
                    cpp.runs
                        .values()
                        .filter(move |run| run.mpp == m && run.paid)
                };
                let paid: BTreeSet<u64> = cpp
                    .runs
                    .iter()
                    .filter(|(_, run)| run.paid)
                    .map(|(&id, _)| id)
                    .collect();
                MicroMppRecord {
                    mpp: format!("mpp{m}"),
                    paid: money(runs().map(|run| run.total).sum()),
                    unpaid: money(
                        cpp.owed
                            .values()
                            .filter(|o| o.mpp == m && !o.run.is_some_and(|run| paid.contains(&run)))
                            .map(|o| o.amount)
                            .sum(),
                    ),
                    confirmed: money(
                        cpp.payments
                            .values()
                            .filter(|p| micro_paid(p) && region_of_merchant(p.merchant) == m)
                            .map(|p| p.amount)
                            .sum(),
                    ),
                    runs_paid: runs().count() as i64,
                }
            })
            .collect();
        CppMicroSummary {
            mode: if self.two_intermediaries {
                "two"
            } else {
                "one"
            }
            .to_owned(),
            credit_used: cpp
                .micro
                .pending_sum()
                .map_or_else(|e| e.to_string(), |sum| sum.to_string()),
            credit_limit: Some(money(CPP_CREDIT)),
            batches_started: cpp
                .batches
                .values()
                .filter(|b| b.state == BatchState::Started)
                .count() as i64,
            runs_started: cpp.runs.values().filter(|run| !run.paid).count() as i64,
            log_problem: cpp.micro.check().err().map(|e| e.to_string()),
            customers,
            mpps,
        }
    }

    /// An MPP's micropayment books, as `GET /v1/admin/micro` shows them.
    fn mpp_micro_books(&self, r: u8) -> MppMicroSummary {
        let mpp = &self.mpps[usize::from(r)];
        let completed = || {
            mpp.payments
                .iter()
                .filter(|(_, p)| p.micro && p.core.state == merchant::State::Completed)
        };
        let paid_out = |p: &MppPayment| {
            p.payout
                .and_then(|id| mpp.payouts.get(&id))
                .is_some_and(|payout| payout.paid)
        };
        let merchants = (0..MERCHANTS)
            .filter(|&m| region_of_merchant(m) == r)
            .map(|m| {
                let sum = |f: &dyn Fn(&MppPayment) -> bool| {
                    completed()
                        .filter(|(_, p)| p.merchant == m && f(p))
                        .map(|(_, p)| p.amount)
                        .sum::<i64>()
                };
                MicroMerchantRecord {
                    merchant: format!("{m:032x}"),
                    name: format!("m{m}"),
                    confirmed: money(sum(&|_| true)),
                    paid_out: money(sum(&|p| paid_out(p))),
                    paying: money(sum(&|p| p.payout.is_some() && !paid_out(p))),
                    owed: money(sum(&|p| p.payout.is_none())),
                }
            })
            .collect();
        MppMicroSummary {
            mode: if self.two_intermediaries {
                "two"
            } else {
                "one"
            }
            .to_owned(),
            advanced: money(
                completed()
                    .filter(|(id, p)| paid_out(p) && !mpp.funded.contains(id))
                    .map(|(_, p)| p.amount)
                    .sum(),
            ),
            credit_limit: Some(money(if self.two_intermediaries {
                MPP_CREDIT
            } else {
                0
            })),
            payouts_started: mpp.payouts.values().filter(|p| !p.paid).count() as i64,
            cpps: (0..REGIONS)
                .map(|c| {
                    let taken = || mpp.statements.iter().filter(move |((cpp, _), _)| *cpp == c);
                    MicroCppRecord {
                        cpp: format!("cpp{c}"),
                        received: money(taken().map(|(_, total)| total).sum()),
                        statements: taken().count() as i64,
                    }
                })
                .collect(),
            merchants,
        }
    }

    /// Every holder's balance is its opening balance plus what its
    /// payments and refunds say: nobody paid twice, nobody paid for
    /// nothing.
    pub(super) fn check_balances(&mut self) {
        let mut expected = self.opening.clone();
        let mut add = |bank: u8, account: String, minor: i64| {
            *expected.entry((bank, account)).or_default() += minor;
        };
        for (r, cpp) in self.cpps.iter().enumerate() {
            let r = r as u8;
            for p in cpp.payments.values() {
                if p.core.state.is_paid() && !p.micro {
                    add(
                        region_of_customer(p.customer),
                        customer_account(p.customer),
                        -p.amount,
                    );
                    add(
                        region_of_merchant(p.merchant),
                        merchant_account(p.merchant),
                        p.amount,
                    );
                }
            }
            for f in cpp.refunds.values() {
                if f.state == refund::State::Refunded
                    && let Some(p) = cpp.payments.get(&f.payment)
                {
                    add(
                        region_of_customer(p.customer),
                        customer_account(p.customer),
                        f.amount,
                    );
                    add(r, cpp_account(r), -f.amount);
                }
            }
        }
        // Micropayments: what the customers' aggregated transfers took, what
        // was paid back, what net settlement moved and what was paid out.
        for (r, cpp) in self.cpps.iter().enumerate() {
            let r = r as u8;
            for b in cpp.batches.values() {
                if b.state == BatchState::Settled {
                    add(r, customer_account(b.customer), -b.total);
                    add(r, cpp_account(r), b.total);
                }
            }
            for p in cpp.payments.values() {
                add(r, customer_account(p.customer), p.returned);
                add(r, cpp_account(r), -p.returned);
            }
            for run in cpp.runs.values().filter(|run| run.paid) {
                add(r, cpp_account(r), -run.total);
                add(run.mpp, mpp_account(run.mpp), run.total);
            }
        }
        for (r, mpp) in self.mpps.iter().enumerate() {
            let r = r as u8;
            for payout in mpp.payouts.values().filter(|p| p.paid) {
                add(r, mpp_account(r), -payout.total);
                add(
                    region_of_merchant(payout.merchant),
                    merchant_account(payout.merchant),
                    payout.total,
                );
            }
        }
        for mpp in &self.mpps {
            for f in mpp.refunds.values() {
                if matches!(f.state, refund::State::Relayed | refund::State::Refunded)
                    && let Some(p) = mpp.payments.get(&f.payment)
                {
                    add(
                        region_of_merchant(p.merchant),
                        merchant_account(p.merchant),
                        -f.amount,
                    );
                    add(p.cpp, cpp_account(p.cpp), f.amount);
                }
            }
        }
        self.check_micro_reached_merchants();
        for ((bank, account), want) in expected {
            let have = self.banks[usize::from(bank)].balance(&account);
            if have != want {
                self.report.violations.push(format!(
                    "bank{bank} {account} holds {have}, its payments and refunds say {want}"
                ));
            }
        }
    }

    /// Once quiet, every micropayment a CPP confirmed reached its merchant
    /// by a payout, and nothing else did: the CPPs' confirmations against
    /// the MPPs' payouts.
    fn check_micro_reached_merchants(&mut self) {
        if !self.quiet() {
            return; // what is still moving is named already
        }
        let mut confirmed: BTreeMap<u32, i64> = BTreeMap::new();
        for cpp in &self.cpps {
            for p in cpp.payments.values() {
                if p.micro && p.core.state.is_paid() {
                    *confirmed.entry(p.merchant).or_default() += p.amount;
                }
            }
        }
        let mut paid_out: BTreeMap<u32, i64> = BTreeMap::new();
        for mpp in &self.mpps {
            for payout in mpp.payouts.values().filter(|p| p.paid) {
                *paid_out.entry(payout.merchant).or_default() += payout.total;
            }
        }
        for m in 0..MERCHANTS {
            let (want, have) = (
                confirmed.get(&m).copied().unwrap_or(0),
                paid_out.get(&m).copied().unwrap_or(0),
            );
            if want != have {
                self.report.violations.push(format!(
                    "merchant m{m} was paid out {have} for micropayments its CPPs confirmed for {want}"
                ));
            }
        }
    }
}
