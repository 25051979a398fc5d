//! Intermediaries (paper 002 §II-III, figures 2 and 3), pure: who owes whom
//! while micropayments are aggregated, credit limits, and net settlement.
//!
//! - **One intermediary** ([`Mode::One`]): the CPP pays merchants' MPPs on
//!   its customers' behalf and is repaid by the customers' aggregated
//!   transfers. The MPP passes what it receives straight on: at each net
//!   settlement it pays every merchant all it is owed for the payments just
//!   settled, so it never advances money.
//! - **Two intermediaries** ([`Mode::Two`]): the MPP also aggregates what it
//!   owes each merchant and pays out in batches ([`Network::payout`]),
//!   possibly before the CPPs have paid it: that advance is its credit.
//!
//! **Credit limits.** A CPP's credit in use is what its customers owe it
//! (DT-confirmed micropayments it has guaranteed and not collected); an
//! MPP's is what it has paid merchants beyond what CPPs have paid it. A
//! micropayment or payout that would take an intermediary past its limit is
//! **refused** ([`IntermediaryError::CreditLimit`]) and changes nothing; the
//! CPP then settles customers' pending totals (or the MPP waits for the next
//! net settlement) to free credit. Refusing keeps the rule local and
//! testable at the edge; forcing a settlement from inside the payment would
//! make one customer's payment wait on other customers' bank transfers.
//!
//! **Net settlement** ([`Network::net_settle`]): for every pair of
//! processors, one transfer of the difference of what each owes the other
//! (a processor can be one customer's CPP and another's merchant's MPP).
//!
//! Conservation: the sum of all bank balances never changes, and every
//! processor's bank balance plus what it is owed minus what it owes stays
//! what it started with ([`Network::check`], asserted after every step).

use std::collections::BTreeMap;

use mpay_identity::PartyId;
use mpay_money::{Amount, Currency, MoneyError};

/// How many intermediaries aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The CPP only.
    One,
    /// The CPP and the MPP.
    Two,
}

/// A bank account of one party.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Account {
    /// A customer's.
    Customer(PartyId),
    /// A processor's (CPP and/or MPP).
    Processor(PartyId),
    /// A merchant's.
    Merchant(PartyId),
}

/// One bank transfer of a net settlement or payout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Payer.
    pub from: Account,
    /// Payee.
    pub to: Account,
    /// Amount.
    pub amount: Amount,
}

/// Errors: refusals (credit) and the caller's mistakes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntermediaryError {
    /// The intermediary would exceed its credit limit (a refusal).
    #[error(
        "processor {processor} would exceed its credit limit: {used} in use + {amount} > {limit}"
    )]
    CreditLimit {
        /// Whose limit.
        processor: PartyId,
        /// In use now, minor units.
        used: i64,
        /// Asked for, minor units.
        amount: i64,
        /// The limit, minor units.
        limit: i64,
    },
    /// Unknown party (the caller's).
    #[error("unknown party {0}")]
    Unknown(PartyId),
    /// Not allowed in this mode, or a non-positive amount (the caller's).
    #[error("invalid: {0}")]
    Invalid(&'static str),
    /// Overflow or currency mismatch.
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// The credit rule of one intermediary: `used + amount` must stay within
/// `limit` (all minor units), or the step is refused with
/// [`IntermediaryError::CreditLimit`]. The services call it with what their
/// database says is in use.
pub fn check_credit(
    processor: PartyId,
    used: i64,
    amount: i64,
    limit: i64,
) -> Result<(), IntermediaryError> {
    if amount <= 0 {
        return Err(IntermediaryError::Invalid("amounts must be positive"));
    }
    if used.checked_add(amount).ok_or(MoneyError::Overflow)? > limit {
        return Err(IntermediaryError::CreditLimit {
            processor,
            used,
            amount,
            limit,
        });
    }
    Ok(())
}

/// Nets gross debts between processors: `owed` lists (debtor, creditor,
/// minor units); the answer has one entry per unordered pair whose debts do
/// not cancel, (payer, payee, net > 0), in the pairs' order. A processor's
/// debt to itself moves nothing and is left out.
pub fn net_pairs(
    owed: impl IntoIterator<Item = (PartyId, PartyId, i64)>,
) -> Result<Vec<(PartyId, PartyId, i64)>, IntermediaryError> {
    let mut pairs: BTreeMap<(PartyId, PartyId), i64> = BTreeMap::new();
    for (from, to, amount) in owed {
        if from == to {
            continue;
        }
        let (key, signed) = if from < to {
            ((from, to), amount)
        } else {
            (
                (to, from),
                amount.checked_neg().ok_or(MoneyError::Overflow)?,
            )
        };
        let slot = pairs.entry(key).or_insert(0);
        *slot = slot.checked_add(signed).ok_or(MoneyError::Overflow)?;
    }
    Ok(pairs
        .into_iter()
        .filter_map(|((a, b), net)| match net.cmp(&0) {
            std::cmp::Ordering::Greater => Some((a, b, net)),
            std::cmp::Ordering::Less => Some((b, a, -net)),
            std::cmp::Ordering::Equal => None,
        })
        .collect())
}

/// The books of one aggregation network (module docs).
#[derive(Debug, Clone)]
pub struct Network {
    mode: Mode,
    currency: Currency,
    bank: BTreeMap<Account, i64>,
    initial_total: i64,
    initial_processor: BTreeMap<PartyId, i64>,
    credit_limit: BTreeMap<PartyId, i64>,
    cpp_of: BTreeMap<PartyId, PartyId>,
    mpp_of: BTreeMap<PartyId, PartyId>,
    owed_by_customer: BTreeMap<PartyId, i64>,
    /// (CPP, MPP) → what the CPP owes the MPP, gross.
    owed_between: BTreeMap<(PartyId, PartyId), i64>,
    owed_to_merchant: BTreeMap<PartyId, i64>,
    /// MPP → paid to merchants beyond what CPPs paid it (may be negative:
    /// money received and not yet paid out).
    advanced: BTreeMap<PartyId, i64>,
}

impl Network {
    /// An empty network.
    pub fn new(mode: Mode, currency: Currency) -> Network {
        Network {
            mode,
            currency,
            bank: BTreeMap::new(),
            initial_total: 0,
            initial_processor: BTreeMap::new(),
            credit_limit: BTreeMap::new(),
            cpp_of: BTreeMap::new(),
            mpp_of: BTreeMap::new(),
            owed_by_customer: BTreeMap::new(),
            owed_between: BTreeMap::new(),
            owed_to_merchant: BTreeMap::new(),
            advanced: BTreeMap::new(),
        }
    }

    /// A processor with a bank balance and a credit limit.
    pub fn add_processor(
        &mut self,
        id: PartyId,
        balance: Amount,
        credit_limit: Amount,
    ) -> Result<(), IntermediaryError> {
        self.open(Account::Processor(id), balance)?;
        self.initial_processor.insert(id, balance.minor_units());
        self.credit_limit.insert(id, credit_limit.minor_units());
        Ok(())
    }

    /// A customer of CPP `cpp`.
    pub fn add_customer(
        &mut self,
        id: PartyId,
        cpp: PartyId,
        balance: Amount,
    ) -> Result<(), IntermediaryError> {
        self.processor(&cpp)?;
        self.open(Account::Customer(id), balance)?;
        self.cpp_of.insert(id, cpp);
        Ok(())
    }

    /// A merchant of MPP `mpp`.
    pub fn add_merchant(&mut self, id: PartyId, mpp: PartyId) -> Result<(), IntermediaryError> {
        self.processor(&mpp)?;
        self.open(Account::Merchant(id), Amount::zero(self.currency))?;
        self.mpp_of.insert(id, mpp);
        Ok(())
    }

    fn open(&mut self, account: Account, balance: Amount) -> Result<(), IntermediaryError> {
        if balance.currency() != self.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: balance.currency(),
            }
            .into());
        }
        self.initial_total = self
            .initial_total
            .checked_add(balance.minor_units())
            .ok_or(MoneyError::Overflow)?;
        self.bank.insert(account, balance.minor_units());
        Ok(())
    }

    fn processor(&self, id: &PartyId) -> Result<i64, IntermediaryError> {
        self.credit_limit
            .get(id)
            .copied()
            .ok_or(IntermediaryError::Unknown(*id))
    }

    fn positive(&self, amount: Amount) -> Result<i64, IntermediaryError> {
        if amount.currency() != self.currency {
            return Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: amount.currency(),
            }
            .into());
        }
        if !amount.is_positive() {
            return Err(IntermediaryError::Invalid("amounts must be positive"));
        }
        Ok(amount.minor_units())
    }

    fn bump<K: Ord>(map: &mut BTreeMap<K, i64>, key: K, delta: i64) -> Result<(), MoneyError> {
        let slot = map.entry(key).or_insert(0);
        *slot = slot.checked_add(delta).ok_or(MoneyError::Overflow)?;
        Ok(())
    }

    fn move_money(
        &mut self,
        from: Account,
        to: Account,
        amount: i64,
    ) -> Result<Transfer, IntermediaryError> {
        Self::bump(&mut self.bank, from, -amount)?;
        Self::bump(&mut self.bank, to, amount)?;
        Ok(Transfer {
            from,
            to,
            amount: Amount::new(amount, self.currency),
        })
    }

    /// A CPP's credit in use: what its customers owe it.
    pub fn cpp_credit_used(&self, cpp: &PartyId) -> i64 {
        self.cpp_of
            .iter()
            .filter(|(_, c)| *c == cpp)
            .map(|(customer, _)| self.owed_by_customer.get(customer).copied().unwrap_or(0))
            .sum()
    }

    /// An MPP's credit in use: what it paid merchants before CPPs paid it.
    pub fn mpp_credit_used(&self, mpp: &PartyId) -> i64 {
        self.advanced.get(mpp).copied().unwrap_or(0).max(0)
    }

    /// A DT-confirmed micropayment: the customer owes its CPP, the CPP owes
    /// the merchant's MPP, the MPP owes the merchant. Refused if the CPP's
    /// credit would pass its limit.
    pub fn micropayment(
        &mut self,
        customer: PartyId,
        merchant: PartyId,
        amount: Amount,
    ) -> Result<(), IntermediaryError> {
        let a = self.positive(amount)?;
        let cpp = *self
            .cpp_of
            .get(&customer)
            .ok_or(IntermediaryError::Unknown(customer))?;
        let mpp = *self
            .mpp_of
            .get(&merchant)
            .ok_or(IntermediaryError::Unknown(merchant))?;
        let limit = self.processor(&cpp)?;
        check_credit(cpp, self.cpp_credit_used(&cpp), a, limit)?;
        Self::bump(&mut self.owed_by_customer, customer, a)?;
        Self::bump(&mut self.owed_between, (cpp, mpp), a)?;
        Self::bump(&mut self.owed_to_merchant, merchant, a)?;
        self.check();
        Ok(())
    }

    /// The customer's aggregated bank transfer to its CPP (a settled batch).
    pub fn customer_settles(
        &mut self,
        customer: PartyId,
        amount: Amount,
    ) -> Result<Transfer, IntermediaryError> {
        let a = self.positive(amount)?;
        let cpp = *self
            .cpp_of
            .get(&customer)
            .ok_or(IntermediaryError::Unknown(customer))?;
        if a > self.owed_by_customer.get(&customer).copied().unwrap_or(0) {
            return Err(IntermediaryError::Invalid(
                "a customer settles at most what it owes",
            ));
        }
        Self::bump(&mut self.owed_by_customer, customer, -a)?;
        let t = self.move_money(Account::Customer(customer), Account::Processor(cpp), a)?;
        self.check();
        Ok(t)
    }

    /// Net settlement between every pair of processors: one transfer per
    /// pair, of the difference. In [`Mode::One`] each MPP then pays its
    /// merchants everything it owes them.
    pub fn net_settle(&mut self) -> Result<Vec<Transfer>, IntermediaryError> {
        for (&(_, mpp), &owed) in &self.owed_between {
            // The MPP has now been paid (gross) for these payments; a
            // processor that is both sides owes itself and nothing moves.
            Self::bump(&mut self.advanced, mpp, -owed)?;
        }
        let owed: Vec<_> = self
            .owed_between
            .iter()
            .map(|(&(cpp, mpp), &owed)| (cpp, mpp, owed))
            .collect();
        self.owed_between.clear();
        let mut transfers = Vec::new();
        for (payer, payee, net) in net_pairs(owed)? {
            transfers.push(self.move_money(
                Account::Processor(payer),
                Account::Processor(payee),
                net,
            )?);
        }
        if self.mode == Mode::One {
            let merchants: Vec<PartyId> = self.owed_to_merchant.keys().copied().collect();
            for merchant in merchants {
                if let Some(t) = self.pay_merchant(merchant)? {
                    transfers.push(t);
                }
            }
        }
        self.check();
        Ok(transfers)
    }

    fn pay_merchant(&mut self, merchant: PartyId) -> Result<Option<Transfer>, IntermediaryError> {
        let owed = self.owed_to_merchant.get(&merchant).copied().unwrap_or(0);
        if owed == 0 {
            return Ok(None);
        }
        let mpp = *self
            .mpp_of
            .get(&merchant)
            .ok_or(IntermediaryError::Unknown(merchant))?;
        self.owed_to_merchant.insert(merchant, 0);
        Self::bump(&mut self.advanced, mpp, owed)?;
        Ok(Some(self.move_money(
            Account::Processor(mpp),
            Account::Merchant(merchant),
            owed,
        )?))
    }

    /// [`Mode::Two`]: the MPP pays a merchant all it owes it, in one batch,
    /// unless that would take the MPP past its credit limit. `None`: nothing owed.
    pub fn payout(&mut self, merchant: PartyId) -> Result<Option<Transfer>, IntermediaryError> {
        if self.mode != Mode::Two {
            return Err(IntermediaryError::Invalid(
                "payouts are the MPP's in two-intermediary mode",
            ));
        }
        let mpp = *self
            .mpp_of
            .get(&merchant)
            .ok_or(IntermediaryError::Unknown(merchant))?;
        let owed = self.owed_to_merchant.get(&merchant).copied().unwrap_or(0);
        let limit = self.processor(&mpp)?;
        let advanced = self.advanced.get(&mpp).copied().unwrap_or(0);
        if owed > 0 && advanced.checked_add(owed).ok_or(MoneyError::Overflow)? > limit {
            return Err(IntermediaryError::CreditLimit {
                processor: mpp,
                used: advanced.max(0),
                amount: owed,
                limit,
            });
        }
        let t = self.pay_merchant(merchant)?;
        self.check();
        Ok(t)
    }

    /// A party's bank balance, minor units.
    pub fn balance(&self, account: Account) -> i64 {
        self.bank.get(&account).copied().unwrap_or(0)
    }

    /// What a merchant is still owed, minor units.
    pub fn owed_to(&self, merchant: &PartyId) -> i64 {
        self.owed_to_merchant.get(merchant).copied().unwrap_or(0)
    }

    /// Asserts conservation (module docs) and the credit limits.
    pub fn check(&self) {
        let total: i64 = self.bank.values().sum();
        assert_eq!(total, self.initial_total, "bank money was made or lost");
        for (&p, &initial) in &self.initial_processor {
            let bank = self.balance(Account::Processor(p));
            let from_customers: i64 = self
                .cpp_of
                .iter()
                .filter(|(_, c)| **c == p)
                .map(|(cu, _)| self.owed_by_customer.get(cu).copied().unwrap_or(0))
                .sum();
            let owes_mpps: i64 = self
                .owed_between
                .iter()
                .filter(|((c, _), _)| *c == p)
                .map(|(_, v)| v)
                .sum();
            let owed_by_cpps: i64 = self
                .owed_between
                .iter()
                .filter(|((_, m), _)| *m == p)
                .map(|(_, v)| v)
                .sum();
            let owes_merchants: i64 = self
                .mpp_of
                .iter()
                .filter(|(_, m)| **m == p)
                .map(|(me, _)| self.owed_to(me))
                .sum();
            assert_eq!(
                bank + from_customers + owed_by_cpps - owes_mpps - owes_merchants,
                initial,
                "processor {p} gained or lost money"
            );
            let limit = self.credit_limit.get(&p).copied().unwrap_or(0);
            assert!(
                self.cpp_credit_used(&p) <= limit,
                "CPP {p} past its credit limit"
            );
            assert!(
                self.mpp_credit_used(&p) <= limit,
                "MPP {p} past its credit limit"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EUR: Currency = Currency::EUR;
    fn eur(m: i64) -> Amount {
        Amount::new(m, EUR)
    }
    fn id(n: u64) -> PartyId {
        PartyId::from_u64(n)
    }

    /// Processors 1 and 2 are each CPP of one customer and MPP of one merchant.
    fn network(mode: Mode, limit: i64) -> Network {
        let mut n = Network::new(mode, EUR);
        n.add_processor(id(1), eur(0), eur(limit)).unwrap();
        n.add_processor(id(2), eur(0), eur(limit)).unwrap();
        n.add_customer(id(10), id(1), eur(100_000)).unwrap();
        n.add_customer(id(20), id(2), eur(100_000)).unwrap();
        n.add_merchant(id(11), id(1)).unwrap();
        n.add_merchant(id(21), id(2)).unwrap();
        n
    }

    #[test]
    fn the_cpp_credit_limit_holds_at_its_edge() {
        let mut n = network(Mode::One, 1_000);
        n.micropayment(id(10), id(21), eur(600)).unwrap();
        n.micropayment(id(10), id(21), eur(400)).unwrap();
        assert_eq!(
            n.cpp_credit_used(&id(1)),
            1_000,
            "exactly at the limit is fine"
        );
        let refused = n.micropayment(id(10), id(21), eur(1));
        assert!(matches!(
            refused,
            Err(IntermediaryError::CreditLimit {
                used: 1_000,
                amount: 1,
                ..
            })
        ));
        assert_eq!(n.owed_to(&id(21)), 1_000, "a refusal changes nothing");
        n.customer_settles(id(10), eur(1_000)).unwrap();
        n.micropayment(id(10), id(21), eur(1)).unwrap();
    }

    #[test]
    fn net_settlement_is_one_transfer_per_pair_and_conserves_money() {
        let mut n = network(Mode::One, 10_000);
        n.micropayment(id(10), id(21), eur(700)).unwrap(); // 1 owes 2
        n.micropayment(id(20), id(11), eur(250)).unwrap(); // 2 owes 1
        n.micropayment(id(10), id(11), eur(50)).unwrap(); // within processor 1
        n.customer_settles(id(10), eur(750)).unwrap();
        n.customer_settles(id(20), eur(250)).unwrap();
        let transfers = n.net_settle().unwrap();
        let between: Vec<_> = transfers
            .iter()
            .filter(|t| {
                matches!(
                    (t.from, t.to),
                    (Account::Processor(_), Account::Processor(_))
                )
            })
            .collect();
        assert_eq!(between.len(), 1);
        assert_eq!(
            (between[0].from, between[0].to, between[0].amount),
            (
                Account::Processor(id(1)),
                Account::Processor(id(2)),
                eur(450)
            )
        );
        // One intermediary: merchants are paid at the net settlement.
        assert_eq!(n.balance(Account::Merchant(id(21))), 700);
        assert_eq!(n.balance(Account::Merchant(id(11))), 300);
        assert_eq!(n.balance(Account::Customer(id(10))), 100_000 - 750);
        assert_eq!(n.balance(Account::Processor(id(1))), 0);
        assert_eq!(n.balance(Account::Processor(id(2))), 0);
        n.check();
    }

    #[test]
    fn two_intermediaries_pay_out_in_batches_within_the_mpp_limit() {
        let mut n = network(Mode::Two, 1_000);
        n.add_processor(id(3), eur(5_000), eur(300)).unwrap();
        n.add_merchant(id(31), id(3)).unwrap();
        n.micropayment(id(10), id(31), eur(200)).unwrap();
        n.micropayment(id(10), id(31), eur(100)).unwrap();
        // The MPP advances exactly its limit before the CPP pays it …
        assert_eq!(n.payout(id(31)).unwrap().map(|t| t.amount), Some(eur(300)));
        assert_eq!(n.mpp_credit_used(&id(3)), 300);
        n.micropayment(id(10), id(31), eur(1)).unwrap();
        // … and not one cent more.
        assert!(matches!(
            n.payout(id(31)),
            Err(IntermediaryError::CreditLimit { .. })
        ));
        n.customer_settles(id(10), eur(301)).unwrap();
        n.net_settle().unwrap();
        assert_eq!(n.mpp_credit_used(&id(3)), 0);
        assert_eq!(n.payout(id(31)).unwrap().map(|t| t.amount), Some(eur(1)));
        assert_eq!(n.balance(Account::Merchant(id(31))), 301);
        assert_eq!(n.balance(Account::Processor(id(3))), 5_000);
        assert!(matches!(
            network(Mode::One, 1).payout(id(11)),
            Err(IntermediaryError::Invalid(_))
        ));
    }

    #[test]
    fn random_traffic_conserves_money_in_both_modes() {
        for mode in [Mode::One, Mode::Two] {
            let mut n = network(mode, 5_000);
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            let mut bought: BTreeMap<PartyId, i64> = BTreeMap::new();
            let mut sold: BTreeMap<PartyId, i64> = BTreeMap::new();
            for _ in 0..2_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let customer = if x.is_multiple_of(2) { id(10) } else { id(20) };
                let merchant = if (x >> 8).is_multiple_of(2) {
                    id(11)
                } else {
                    id(21)
                };
                let amount = i64::try_from((x >> 16) % 500 + 1).unwrap();
                match (x >> 40) % 10 {
                    0 => {
                        let owed = n.owed_by_customer.get(&customer).copied().unwrap_or(0);
                        if owed > 0 {
                            n.customer_settles(customer, eur(owed)).unwrap();
                        }
                    }
                    1 => {
                        n.net_settle().unwrap();
                    }
                    2 if mode == Mode::Two => {
                        let _ = n.payout(merchant);
                    }
                    _ => {
                        if n.micropayment(customer, merchant, eur(amount)).is_ok() {
                            *bought.entry(customer).or_default() += amount;
                            *sold.entry(merchant).or_default() += amount;
                        }
                    }
                }
            }
            // Close the books: everyone settles, then every merchant is paid.
            for c in [id(10), id(20)] {
                let owed = n.owed_by_customer.get(&c).copied().unwrap_or(0);
                if owed > 0 {
                    n.customer_settles(c, eur(owed)).unwrap();
                }
            }
            n.net_settle().unwrap();
            if mode == Mode::Two {
                for m in [id(11), id(21)] {
                    n.payout(m).unwrap();
                }
            }
            for (c, paid) in &bought {
                assert_eq!(n.balance(Account::Customer(*c)), 100_000 - paid, "{mode:?}");
            }
            for (m, got) in &sold {
                assert_eq!(n.balance(Account::Merchant(*m)), *got, "{mode:?}");
            }
            assert_eq!(n.balance(Account::Processor(id(1))), 0);
            assert_eq!(n.balance(Account::Processor(id(2))), 0);
        }
    }

    #[test]
    fn net_pairs_cancel_and_credit_holds_at_its_edge() {
        let (a, b, c) = (id(1), id(2), id(3));
        let nets = net_pairs([
            (a, b, 500),
            (b, a, 200),
            (c, a, 100),
            (a, a, 9),
            (b, c, 50),
            (c, b, 50),
        ])
        .unwrap();
        assert_eq!(nets, vec![(a, b, 300), (c, a, 100)]);
        assert_eq!(check_credit(a, 900, 100, 1_000), Ok(()));
        assert!(matches!(
            check_credit(a, 900, 101, 1_000),
            Err(IntermediaryError::CreditLimit {
                used: 900,
                amount: 101,
                limit: 1_000,
                ..
            })
        ));
        assert!(check_credit(a, 0, 0, 1_000).is_err());
        assert!(check_credit(a, i64::MAX, 1, i64::MAX).is_err());
    }
}
