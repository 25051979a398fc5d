//! The checks after every run: quiet, the network-wide checks of
//! `mpay_network::reconcile::judge` over the simulated records, and every
//! holder's balance against its payments and refunds.

use super::*;

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
        (frames + refunds) as i64
    }

    pub(super) fn view(&self) -> mpay_network::reconcile::View {
        use mpay_network::client::{MppPaymentRecord, PaymentRecord};
        let money =
            |minor: i64| mpay_money::Amount::new(minor, crate::semops::bank::CURRENCY).to_string();
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
                        class: "macro".to_owned(),
                        micro_batch: None,
                        micro_returned: money(0),
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
                            micro: false,
                            funded: false,
                            payout: None,
                        },
                    ),
                );
            }
        }
        view.in_flight = self.in_flight();
        view
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
                if p.core.state.is_paid() {
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
        for ((bank, account), want) in expected {
            let have = self.banks[usize::from(bank)].balance(&account);
            if have != want {
                self.report.violations.push(format!(
                    "bank{bank} {account} holds {have}, its payments and refunds say {want}"
                ));
            }
        }
    }
}
