//! A bank of the SEMOPS simulation: the ledger's own rules
//! ([`mpay_bank::ledger`]: the funds check, the hold life cycle) over
//! accounts kept in memory, with the bank's idempotency (one result per key,
//! whatever the repeats) and its interbank outbox (a transfer to a peer bank
//! leaves through the settlement accounts and is delivered at least once,
//! applied once).

use std::collections::{BTreeMap, BTreeSet};

use mpay_bank::BooksJson;
use mpay_bank::ledger::{AccountId, Destination, Funds, HoldId, HoldState, HoldView, PendingHold};
use mpay_identity::{PartyId, Timestamp};
use mpay_money::{Amount, Currency};

/// The simulation's one currency.
pub const CURRENCY: Currency = Currency::EUR;

/// A bank's id in the simulation: region `r`'s bank is `PartyId([r + 1; 16])`.
pub fn bank_party(bank: u8) -> PartyId {
    PartyId([bank.wrapping_add(1); 16])
}

/// Where money goes: an account at a bank.
#[derive(Clone, PartialEq, Eq, Debug, PartialOrd, Ord)]
pub struct Dest {
    /// The bank (its region).
    pub bank: u8,
    /// The holder account there.
    pub account: String,
}

/// What a processor asks its bank for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BankOp {
    /// Reserve `amount` of `account` until `expires_at`.
    Hold {
        /// The payer.
        account: String,
        /// How much.
        amount: i64,
        /// When the hold lapses.
        expires_at: u64,
    },
    /// Pay a pending hold out to `to`.
    Post {
        /// The hold.
        hold: i64,
        /// The payee.
        to: Dest,
    },
    /// End a pending hold unposted.
    Void {
        /// The hold.
        hold: i64,
    },
    /// Move `amount` from `from` (at this bank) to `to`.
    Transfer {
        /// The payer, at this bank.
        from: String,
        /// The payee.
        to: Dest,
        /// How much.
        amount: i64,
    },
}

/// The bank's answer, the same for every repeat of a key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BankResult {
    /// The hold was placed.
    Held(i64),
    /// The hold was paid out.
    Posted,
    /// The hold had ended unposted (voided or lapsed) before the post.
    Released,
    /// The hold is voided (now or earlier).
    Voided,
    /// The transfer was made.
    Moved,
    /// Refused for good (e.g. insufficient funds), nothing changed.
    Refused(String),
}

/// A hold as the simulated bank keeps it.
#[derive(Clone, Debug)]
struct Hold {
    pending: Option<PendingHold>,
    state: HoldState,
    amount: i64,
    account: String,
    created_at: u64,
    resolved_at: Option<u64>,
}

/// An interbank credit on its way to a peer bank.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Interbank {
    /// Its id (the receiving bank applies each id once).
    pub id: u64,
    /// The sending bank.
    pub from: u8,
    /// The receiving bank.
    pub to: u8,
    /// The account credited there.
    pub account: String,
    /// How much.
    pub amount: i64,
}

/// One simulated bank's durable state.
#[derive(Clone, Debug)]
pub struct Bank {
    /// Its region.
    pub id: u8,
    accounts: BTreeMap<String, Funds>,
    holds: BTreeMap<i64, Hold>,
    done: BTreeMap<String, BankResult>,
    /// Interbank credits not yet acknowledged by their peer.
    pub outbox: BTreeMap<u64, Interbank>,
    applied: BTreeSet<u64>,
    problems: Vec<String>,
}

fn amount(minor: i64) -> Amount {
    Amount::new(minor, CURRENCY)
}

fn settlement(peer: u8) -> String {
    AccountId::settlement(bank_party(peer)).as_str().to_owned()
}

impl Bank {
    /// A bank with no accounts but `external` (where deposits come from).
    pub fn new(id: u8) -> Bank {
        let mut bank = Bank {
            id,
            accounts: BTreeMap::new(),
            holds: BTreeMap::new(),
            done: BTreeMap::new(),
            outbox: BTreeMap::new(),
            applied: BTreeSet::new(),
            problems: Vec::new(),
        };
        bank.funds_mut(AccountId::external().as_str());
        bank
    }

    fn funds_mut(&mut self, account: &str) -> &mut Funds {
        let system = AccountId::parse(account).map_or(true, |a| a.kind().is_system());
        self.accounts
            .entry(account.to_owned())
            .or_insert_with(|| Funds {
                balance: amount(0),
                held: amount(0),
                floor: if system { None } else { Some(amount(0)) },
            })
    }

    fn change(
        &mut self,
        account: &str,
        f: impl FnOnce(Funds) -> Result<Funds, String>,
    ) -> Result<(), String> {
        let funds = *self.funds_mut(account);
        let next = f(funds)?;
        *self.funds_mut(account) = next;
        Ok(())
    }

    /// Opens `account` with `minor` deposited from `external`.
    pub fn open(&mut self, account: &str, minor: i64) {
        let moved = self
            .change("external", |f| {
                f.debit(amount(minor)).map_err(|e| e.to_string())
            })
            .and_then(|()| {
                self.change(account, |f| {
                    f.credit(amount(minor)).map_err(|e| e.to_string())
                })
            });
        if let Err(e) = moved {
            self.problems.push(format!("opening {account}: {e}"));
        }
    }

    /// An account's balance in minor units (0 for one never used).
    pub fn balance(&self, account: &str) -> i64 {
        self.accounts
            .get(account)
            .map_or(0, |f| f.balance.minor_units())
    }

    /// Carries out `op` under idempotency `key` at `now`: a key seen before
    /// gets its first result again and changes nothing, a refusal included
    /// (DESIGN §3.2; a caller that waits for money asks again under its
    /// next attempt's key). (`forget_refusals`: the bank as it was before
    /// it kept them, when a refusal left nothing behind.)
    pub fn apply(
        &mut self,
        key: &str,
        op: &BankOp,
        now: u64,
        next_id: &mut u64,
        forget_refusals: bool,
    ) -> BankResult {
        if let Some(done) = self.done.get(key) {
            return done.clone();
        }
        let result = self.carry_out(op, now, next_id);
        if !matches!(result, BankResult::Refused(_)) || !forget_refusals {
            self.done.insert(key.to_owned(), result.clone());
        }
        result
    }

    fn pay(&mut self, from: &str, to: &Dest, minor: i64, next_id: &mut u64) -> Result<(), String> {
        let credited = if to.bank == self.id {
            to.account.clone()
        } else {
            settlement(to.bank)
        };
        let funds = *self.funds_mut(from);
        let debited = funds.debit(amount(minor)).map_err(|e| e.to_string())?;
        self.change(&credited, |f| {
            f.credit(amount(minor)).map_err(|e| e.to_string())
        })?;
        *self.funds_mut(from) = debited;
        if to.bank != self.id {
            *next_id += 1;
            self.outbox.insert(
                *next_id,
                Interbank {
                    id: *next_id,
                    from: self.id,
                    to: to.bank,
                    account: to.account.clone(),
                    amount: minor,
                },
            );
        }
        Ok(())
    }

    fn carry_out(&mut self, op: &BankOp, now: u64, next_id: &mut u64) -> BankResult {
        match op {
            BankOp::Hold {
                account,
                amount: minor,
                expires_at,
            } => {
                let funds = *self.funds_mut(account);
                match funds.hold(amount(*minor)) {
                    Ok(held) => {
                        *self.funds_mut(account) = held;
                        *next_id += 1;
                        let id = i64::try_from(*next_id).unwrap_or(i64::MAX);
                        let pending = AccountId::parse(account).ok().map(|a| PendingHold {
                            id: HoldId(id),
                            account: a,
                            amount: amount(*minor),
                            expires_at: Timestamp(*expires_at),
                            placed_by: "cpp".to_owned(),
                        });
                        self.holds.insert(
                            id,
                            Hold {
                                pending,
                                state: HoldState::Pending,
                                amount: *minor,
                                account: account.clone(),
                                created_at: now,
                                resolved_at: None,
                            },
                        );
                        BankResult::Held(id)
                    }
                    Err(e) => BankResult::Refused(e.to_string()),
                }
            }
            BankOp::Post { hold, to } => {
                self.expire_due(now);
                let Some(h) = self.holds.get(hold).cloned() else {
                    return BankResult::Refused(format!("no hold {hold}"));
                };
                match (h.state, h.pending) {
                    (HoldState::Pending, Some(pending)) => match pending.post(Timestamp(now)) {
                        Ok(_) => {
                            self.end_hold(*hold, HoldState::Posted, now);
                            match self.pay(&h.account, to, h.amount, next_id) {
                                Ok(()) => BankResult::Posted,
                                Err(e) => {
                                    self.problems.push(format!("posting hold {hold}: {e}"));
                                    BankResult::Refused(e)
                                }
                            }
                        }
                        Err(e) => BankResult::Refused(e.to_string()),
                    },
                    (HoldState::Posted, _) => BankResult::Posted,
                    _ => BankResult::Released,
                }
            }
            BankOp::Void { hold } => {
                self.expire_due(now);
                match self.holds.get(hold).map(|h| h.state) {
                    Some(HoldState::Pending) => {
                        self.end_hold(*hold, HoldState::Voided, now);
                        BankResult::Voided
                    }
                    Some(HoldState::Posted) => {
                        BankResult::Refused("the hold was posted".to_owned())
                    }
                    Some(_) => BankResult::Voided,
                    None => BankResult::Refused(format!("no hold {hold}")),
                }
            }
            BankOp::Transfer {
                from,
                to,
                amount: minor,
            } => match self.pay(from, to, *minor, next_id) {
                Ok(()) => BankResult::Moved,
                Err(e) => BankResult::Refused(e),
            },
        }
    }

    fn end_hold(&mut self, hold: i64, state: HoldState, now: u64) {
        let Some(h) = self.holds.get_mut(&hold) else {
            return;
        };
        if h.state != HoldState::Pending {
            return;
        }
        h.state = state;
        h.pending = None;
        h.resolved_at = Some(now);
        let (account, minor) = (h.account.clone(), h.amount);
        if let Err(e) = self.change(&account, |f| {
            f.release(amount(minor)).map_err(|e| e.to_string())
        }) {
            self.problems.push(format!("releasing hold {hold}: {e}"));
        }
    }

    /// Lapses every pending hold past its expiry.
    pub fn expire_due(&mut self, now: u64) {
        let due: Vec<i64> = self
            .holds
            .iter()
            .filter(|(_, h)| {
                h.pending
                    .as_ref()
                    .is_some_and(|p| p.clone().expire(Timestamp(now)).is_ok())
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.end_hold(id, HoldState::Expired, now);
        }
    }

    /// Applies an interbank credit from a peer once; true when it was new.
    pub fn receive(&mut self, credit: &Interbank, apply_repeats: bool) -> bool {
        if !apply_repeats && !self.applied.insert(credit.id) {
            return false;
        }
        let from = settlement(credit.from);
        let moved = self
            .change(&from, |f| {
                f.debit(amount(credit.amount)).map_err(|e| e.to_string())
            })
            .and_then(|()| {
                self.change(&credit.account, |f| {
                    f.credit(amount(credit.amount)).map_err(|e| e.to_string())
                })
            });
        if let Err(e) = moved {
            self.problems
                .push(format!("interbank credit {}: {e}", credit.id));
        }
        true
    }

    /// Pending holds.
    pub fn holds_pending(&self) -> i64 {
        self.holds
            .values()
            .filter(|h| h.state == HoldState::Pending)
            .count() as i64
    }

    /// What `GET /v1/books` would answer.
    pub fn books(&self) -> BooksJson {
        let mut problems = self.problems.clone();
        let total: i64 = self
            .accounts
            .values()
            .map(|f| f.balance.minor_units())
            .sum();
        if total != 0 {
            problems.push(format!("accounts sum to {total}, not 0"));
        }
        for (account, funds) in &self.accounts {
            if let Err(e) = funds.check() {
                problems.push(format!("{account}: {e}"));
            }
            let held: i64 = self
                .holds
                .values()
                .filter(|h| h.state == HoldState::Pending && &h.account == account)
                .map(|h| h.amount)
                .sum();
            if held != funds.held.minor_units() {
                problems.push(format!(
                    "{account}: holds sum to {held}, the account holds {}",
                    funds.held.minor_units()
                ));
            }
        }
        BooksJson {
            bank: bank_party(self.id).to_hex(),
            currency: CURRENCY.code().to_owned(),
            balanced: problems.is_empty(),
            problem: (!problems.is_empty()).then(|| problems.join("; ")),
            balances: self
                .accounts
                .iter()
                .map(|(a, f)| (a.clone(), f.balance.to_string()))
                .collect(),
            holds_pending: self.holds_pending(),
            outbox_pending: self.outbox.len() as i64,
        }
    }

    /// Every hold as the bank would show it.
    pub fn hold_views(&self) -> Vec<HoldView> {
        self.holds
            .iter()
            .filter_map(|(id, h)| {
                Some(HoldView {
                    id: HoldId(*id),
                    account: AccountId::parse(&h.account).ok()?,
                    amount: amount(h.amount),
                    reference: String::new(),
                    placed_by: "cpp".to_owned(),
                    expires_at: Timestamp(0),
                    state: h.state,
                    created_at: Timestamp(h.created_at),
                    resolved_at: h.resolved_at.map(Timestamp),
                    posting: None,
                    destination: None::<Destination>,
                    message: None,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_gets_its_first_answer_and_moves_nothing_twice() {
        let mut bank = Bank::new(0);
        let mut ids = 0;
        bank.open("cust:a", 1_000);
        let to = Dest {
            bank: 0,
            account: "cust:b".to_owned(),
        };
        let op = BankOp::Transfer {
            from: "cust:a".to_owned(),
            to,
            amount: 600,
        };
        assert_eq!(bank.apply("k7", &op, 0, &mut ids, false), BankResult::Moved);
        assert_eq!(bank.apply("k7", &op, 1, &mut ids, false), BankResult::Moved);
        assert_eq!(bank.balance("cust:a"), 400);
        assert!(matches!(
            bank.apply("k8", &op, 2, &mut ids, false),
            BankResult::Refused(_)
        ));
        assert!(bank.books().balanced, "{:?}", bank.books().problem);
    }

    #[test]
    fn a_hold_posted_to_a_peer_bank_arrives_once_through_settlement() {
        let (mut a, mut b) = (Bank::new(0), Bank::new(1));
        let mut ids = 0;
        a.open("cust:a", 1_000);
        let hold = BankOp::Hold {
            account: "cust:a".to_owned(),
            amount: 300,
            expires_at: 100,
        };
        let BankResult::Held(id) = a.apply("k1", &hold, 0, &mut ids, false) else {
            panic!("no hold");
        };
        let post = BankOp::Post {
            hold: id,
            to: Dest {
                bank: 1,
                account: "merch:m".to_owned(),
            },
        };
        assert_eq!(
            a.apply("k2", &post, 10, &mut ids, false),
            BankResult::Posted
        );
        let credit = a
            .outbox
            .values()
            .next()
            .cloned()
            .expect("an interbank credit");
        assert!(b.receive(&credit, false));
        assert!(!b.receive(&credit, false));
        assert_eq!(b.balance("merch:m"), 300);
        assert_eq!(a.balance("cust:a"), 700);
        assert!(a.books().balanced && b.books().balanced);
        // A second hold lapses at its expiry and can no longer be posted.
        let BankResult::Held(late) = a.apply("k3", &hold, 20, &mut ids, false) else {
            panic!("no hold");
        };
        let post_late = BankOp::Post {
            hold: late,
            to: Dest {
                bank: 0,
                account: "merch:n".to_owned(),
            },
        };
        assert_eq!(
            a.apply("k4", &post_late, 100, &mut ids, false),
            BankResult::Released
        );
        assert_eq!(a.holds_pending(), 0);
    }
}
