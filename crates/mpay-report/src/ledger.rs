//! Who holds how much, read from the parties themselves: every bank's books
//! (`GET /v1/books`), the money office's owner accounts, and each phone's
//! own store (`mpay wallet balance`). Readings are taken between scenes and
//! become the report's money series and before/after rows.
//!
//! The parties shown are the ones whose money is real to someone: bank
//! holder accounts (customers, shops, processors), settlement accounts
//! between banks, owners' accounts at the money office, and wallets. The
//! office's own accounts at the banks (`office:mpay`) are not a party here:
//! they are what backs the owners' accounts and the wallets, and the
//! demo checks that they match them exactly (the "office backing"
//! invariant). So the total over the parties stays what the banks were
//! given at the start, and a change in it is money created or lost.
//!
//! [`conservation`] and [`office_backing`] are those two checks, as the
//! demo's report records them.

use std::collections::BTreeMap;

use mpay_money::{Amount, Currency};

use crate::{BalanceRow, InvariantCheck, PartyKind, PartySeries};

/// The office's account at every bank.
pub const OFFICE_BANK_ACCOUNT: &str = "office:mpay";

/// One party's balance at one time.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    pub t_ms: u64,
    /// Party → (kind, balance in minor units).
    pub parties: BTreeMap<String, (PartyKind, i64)>,
}

/// Every reading of the day, in order.
#[derive(Default)]
pub struct Ledger {
    pub readings: Vec<Reading>,
}

/// A bank account's party name and kind; `None` for accounts that are not
/// parties (`external`, `suspense`, the office's own accounts).
pub fn bank_party(
    bank: &str,
    account: &str,
    bank_names: &BTreeMap<String, String>,
) -> Option<(String, PartyKind)> {
    if let Some(peer) = account.strip_prefix("settlement:") {
        let peer = bank_names.get(peer).map_or(peer, String::as_str);
        return Some((format!("{bank} ↔ {peer} settlement"), PartyKind::Settlement));
    }
    let kind = match account.split_once(':').map(|(prefix, _)| prefix) {
        Some("cust" | "shop") => PartyKind::BankAccount,
        Some("cpp") => PartyKind::Cpp,
        Some("mpp") => PartyKind::Mpp,
        _ => return None,
    };
    Some((format!("{bank} {account}"), kind))
}

impl Ledger {
    pub fn push(&mut self, reading: Reading) {
        self.readings.push(reading);
    }

    /// Every party ever seen, with its kind.
    fn parties(&self) -> BTreeMap<String, PartyKind> {
        let mut out = BTreeMap::new();
        for r in &self.readings {
            for (name, (kind, _)) in &r.parties {
                out.insert(name.clone(), *kind);
            }
        }
        out
    }

    /// Parties that held something at some point (a processor's or a
    /// settlement account that stayed at zero all day is left out).
    fn shown(&self) -> BTreeMap<String, PartyKind> {
        self.parties()
            .into_iter()
            .filter(|(name, kind)| {
                matches!(
                    kind,
                    PartyKind::Wallet | PartyKind::BankAccount | PartyKind::MoneyOffice
                ) || self
                    .readings
                    .iter()
                    .any(|r| r.parties.get(name).is_some_and(|(_, v)| *v != 0))
            })
            .collect()
    }

    /// Money series: a party not yet in a reading holds 0 (it did not
    /// exist yet); a party missing from a partial reading keeps its value.
    pub fn series(&self) -> Vec<PartySeries> {
        let mut out = Vec::new();
        for (name, kind) in self.shown() {
            let mut points: Vec<(u64, i64)> = vec![(0, 0)];
            for r in &self.readings {
                if let Some((_, v)) = r.parties.get(&name)
                    && points.last().is_none_or(|(_, last)| last != v)
                {
                    points.push((r.t_ms, *v));
                }
            }
            out.push(PartySeries {
                party: name,
                kind,
                currency: None,
                points,
            });
        }
        out
    }

    /// The value of `party` at the first reading that includes every kind
    /// of party (`before`) and at the last one (`after`); absent counts 0.
    pub fn balances(&self, before: usize) -> Vec<BalanceRow> {
        let at = |party: &str, index: usize| -> i64 {
            self.readings
                .iter()
                .take(index + 1)
                .rev()
                .find_map(|r| r.parties.get(party).map(|(_, v)| *v))
                .unwrap_or(0)
        };
        let last = self.readings.len().saturating_sub(1);
        self.shown()
            .into_iter()
            .map(|(party, kind)| BalanceRow {
                before_minor: at(&party, before),
                after_minor: at(&party, last),
                party,
                kind,
                currency: None,
            })
            .collect()
    }
}

impl Ledger {
    /// Σ held by the parties of `kind` at the last reading, minor units
    /// (checked; 0 before any reading).
    pub fn last_total(&self, kind: PartyKind) -> Option<i64> {
        self.readings.last().map_or(Some(0), |r| {
            total_minor(
                r.parties
                    .values()
                    .filter(|(k, _)| *k == kind)
                    .map(|(_, v)| *v),
            )
        })
    }
}

/// Σ of a reading's parties, minor units (checked).
pub fn total_minor(rows: impl IntoIterator<Item = i64>) -> Option<i64> {
    rows.into_iter().try_fold(0i64, |acc, v| acc.checked_add(v))
}

fn money(minor: Option<i64>, currency: Currency) -> String {
    minor.map_or("overflow".into(), |v| Amount::new(v, currency).to_string())
}

/// Conservation: what the parties of `rows` held before and after is what
/// the banks were given (`given_minor`): nothing created, nothing lost.
pub fn conservation(rows: &[BalanceRow], given_minor: i64, currency: Currency) -> InvariantCheck {
    let before = total_minor(rows.iter().map(|r| r.before_minor));
    let after = total_minor(rows.iter().map(|r| r.after_minor));
    InvariantCheck {
        name: format!("conservation ({currency})"),
        ok: before == Some(given_minor) && after == Some(given_minor),
        detail: format!(
            "given to the banks {}; held by the parties before {}, after {}",
            money(Some(given_minor), currency),
            money(before, currency),
            money(after, currency)
        ),
    }
}

/// The office's backing: its accounts at the banks (`reserve_minor`) hold
/// exactly the money paid in to it (`paid_in_minor`), and that is exactly
/// the owners' accounts at the office plus every wallet.
pub fn office_backing(
    reserve_minor: i64,
    paid_in_minor: i64,
    owners_minor: Option<i64>,
    wallets_minor: Option<i64>,
    currency: Currency,
) -> InvariantCheck {
    let backed = owners_minor
        .zip(wallets_minor)
        .and_then(|(o, w)| o.checked_add(w));
    InvariantCheck {
        name: "office backing".into(),
        ok: reserve_minor == paid_in_minor && backed == Some(reserve_minor),
        detail: format!(
            "office:mpay at the banks {} = money paid in {} = owners' accounts {} + wallets {}",
            money(Some(reserve_minor), currency),
            money(Some(paid_in_minor), currency),
            money(owners_minor, currency),
            money(wallets_minor, currency)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(t_ms: u64, parties: &[(&str, PartyKind, i64)]) -> Reading {
        Reading {
            t_ms,
            parties: parties
                .iter()
                .map(|(n, k, v)| ((*n).to_owned(), (*k, *v)))
                .collect(),
        }
    }

    #[test]
    fn series_hold_values_and_rows_compare_before_with_after() {
        let mut ledger = Ledger::default();
        ledger.push(reading(
            10,
            &[
                ("bank1 cust:a", PartyKind::BankAccount, 500),
                ("bank1 cpp:cpp1", PartyKind::Cpp, 0),
            ],
        ));
        ledger.push(reading(
            20,
            &[
                ("bank1 cust:a", PartyKind::BankAccount, 300),
                ("wallet a", PartyKind::Wallet, 200),
            ],
        ));
        // A partial reading (banks only) keeps the wallet's last value.
        ledger.push(reading(
            30,
            &[("bank1 cust:a", PartyKind::BankAccount, 250)],
        ));
        let series = ledger.series();
        assert_eq!(series.len(), 2, "a processor account at zero is left out");
        let wallet = series.iter().find(|s| s.party == "wallet a").unwrap();
        assert_eq!(wallet.points, vec![(0, 0), (20, 200)]);
        let rows = ledger.balances(0);
        let bank = rows.iter().find(|r| r.party == "bank1 cust:a").unwrap();
        assert_eq!((bank.before_minor, bank.after_minor), (500, 250));
        let wallet = rows.iter().find(|r| r.party == "wallet a").unwrap();
        assert_eq!((wallet.before_minor, wallet.after_minor), (0, 200));
        assert_eq!(total_minor([i64::MAX, 1]), None);
    }

    fn row(before_minor: i64, after_minor: i64) -> BalanceRow {
        BalanceRow {
            party: "p".into(),
            kind: PartyKind::BankAccount,
            currency: None,
            before_minor,
            after_minor,
        }
    }

    #[test]
    fn conservation_fails_on_money_created_lost_or_overflowing() {
        let eur = Currency::EUR;
        let held = [row(700, 100), row(300, 900)];
        let check = conservation(&held, 1_000, eur);
        assert!(check.ok, "{}", check.detail);
        assert_eq!(check.name, "conservation (EUR)");
        assert!(!conservation(&held, 999, eur).ok, "more held than given");
        assert!(
            !conservation(&[row(700, 100), row(300, 899)], 1_000, eur).ok,
            "one cent lost"
        );
        assert!(
            !conservation(&[row(1_000, 1_000), row(0, 1)], 1_000, eur).ok,
            "one cent made"
        );
        let overflow = conservation(&[row(0, i64::MAX), row(0, 1)], 0, eur);
        assert!(
            !overflow.ok && overflow.detail.contains("overflow"),
            "{}",
            overflow.detail
        );
    }

    #[test]
    fn office_backing_needs_reserve_paid_in_and_holdings_equal() {
        let eur = Currency::EUR;
        assert!(office_backing(500, 500, Some(200), Some(300), eur).ok);
        assert!(!office_backing(500, 499, Some(200), Some(300), eur).ok);
        assert!(!office_backing(500, 500, Some(200), Some(301), eur).ok);
        assert!(!office_backing(500, 500, None, Some(300), eur).ok);
        assert!(!office_backing(0, 0, Some(i64::MAX), Some(1), eur).ok);
    }

    #[test]
    fn last_totals_by_kind() {
        let mut ledger = Ledger::default();
        assert_eq!(ledger.last_total(PartyKind::Wallet), Some(0));
        ledger.push(reading(
            5,
            &[
                ("wallet a", PartyKind::Wallet, 20),
                ("wallet b", PartyKind::Wallet, 30),
                ("office owner:a", PartyKind::MoneyOffice, 7),
            ],
        ));
        assert_eq!(ledger.last_total(PartyKind::Wallet), Some(50));
        assert_eq!(ledger.last_total(PartyKind::MoneyOffice), Some(7));
    }

    #[test]
    fn bank_accounts_map_to_parties() {
        let names: BTreeMap<String, String> = [("ab".to_owned(), "bank2".to_owned())].into();
        assert_eq!(
            bank_party("bank1", "settlement:ab", &names),
            Some(("bank1 ↔ bank2 settlement".into(), PartyKind::Settlement))
        );
        assert_eq!(bank_party("bank1", "external", &names), None);
        assert_eq!(bank_party("bank1", OFFICE_BANK_ACCOUNT, &names), None);
        assert_eq!(
            bank_party("bank1", "mpp:mpp1", &names).map(|p| p.1),
            Some(PartyKind::Mpp)
        );
    }
}
