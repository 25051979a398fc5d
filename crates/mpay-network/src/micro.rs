//! What the CPP and the MPP share for micropayments (DESIGN §3.3): the
//! settlement statement a CPP sends an MPP after each net settlement
//! transfer, so that the MPP knows which micropayments the money paid for.
//!
//! The statement travels in the envelope (signed by the CPP, sealed to the
//! MPP) straight from the CPP's outbox to the MPP's inbox: it is about two
//! processors' books, not about one payment's route, so no DC carries it.
//! Its wire format: run (u64), CPP (16 bytes), MPP (16 bytes), total
//! (`Amount`), then a list (u16 count, at most [`STATEMENT_PAYMENTS_MAX`])
//! of (payment id: 16 bytes, amount: `Amount`).

use mpay_envelope::MessageKind;
use mpay_identity::PartyId;
use mpay_money::Amount;
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer};

/// Envelope kind of a [`SettlementStatement`] (CPP → MPP).
pub const MICRO_SETTLEMENT: MessageKind = MessageKind(0x0410);

/// Most micropayments one net settlement run (and its statement) covers.
pub const STATEMENT_PAYMENTS_MAX: usize = 1_000;

/// One micropayment a settlement paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettledPayment {
    /// The payment id.
    pub payment_id: [u8; 16],
    /// Its amount.
    pub amount: Amount,
}

impl Encode for SettledPayment {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.payment_id).put(&self.amount);
    }
}

/// A statement's amount: positive and at most [`mpay_money::AMOUNT_MINOR_MAX`],
/// so that the MPP's sums of them cannot overflow.
fn bounded(what: &'static str, amount: Amount) -> Result<Amount, DecodeError> {
    if amount.is_positive() && amount.check_bounded().is_ok() {
        Ok(amount)
    } else {
        Err(DecodeError::Invalid {
            what,
            reason: "amount not positive or beyond mpay_money::AMOUNT_MINOR_MAX",
        })
    }
}

/// How many of `amounts` (in order) one bank transfer pays, and their sum:
/// the longest prefix whose sum stays within [`mpay_money::AMOUNT_MINOR_MAX`]
/// (what the bank takes in one transfer). The rest waits for the next run.
pub(crate) fn one_transfer(amounts: impl IntoIterator<Item = i64>) -> (usize, i64) {
    let mut total: i64 = 0;
    let mut count = 0;
    for amount in amounts {
        match total.checked_add(amount) {
            Some(next) if next <= mpay_money::AMOUNT_MINOR_MAX => total = next,
            _ => break,
        }
        count += 1;
    }
    (count, total)
}

impl Decode for SettledPayment {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SettledPayment {
            payment_id: r.array("payment id")?,
            amount: bounded("settled payment amount", r.get()?)?,
        })
    }
}

/// A CPP's statement of one net settlement run toward one MPP: the bank
/// transfer of `total` (idempotency key `micro-net-<run>` at the CPP's bank)
/// paid for exactly these micropayments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementStatement {
    /// The CPP's run number.
    pub run: u64,
    /// The paying CPP.
    pub cpp: PartyId,
    /// The paid MPP.
    pub mpp: PartyId,
    /// The amount transferred.
    pub total: Amount,
    /// What it paid for; their amounts sum to `total`.
    pub payments: Vec<SettledPayment>,
}

impl Encode for SettlementStatement {
    fn encode(&self, w: &mut Writer) {
        w.u64(self.run)
            .put(&self.cpp)
            .put(&self.mpp)
            .put(&self.total)
            .list(&self.payments);
    }
}

impl Decode for SettlementStatement {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(SettlementStatement {
            run: r.u64("run")?,
            cpp: r.get()?,
            mpp: r.get()?,
            total: bounded("settlement total", r.get()?)?,
            payments: r.list("settled payments", STATEMENT_PAYMENTS_MAX)?,
        })
    }
}

impl SettlementStatement {
    /// True if the payments' amounts sum to the total, in its currency.
    pub fn adds_up(&self) -> bool {
        Amount::checked_sum(
            self.total.currency(),
            self.payments.iter().map(|p| &p.amount),
        )
        .is_ok_and(|sum| sum == self.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpay_money::Currency;

    #[test]
    fn statements_round_trip_and_bad_bytes_are_errors() {
        let eur = |m| Amount::new(m, Currency::EUR);
        let statement = SettlementStatement {
            run: 7,
            cpp: PartyId::from_u64(1),
            mpp: PartyId::from_u64(2),
            total: eur(150),
            payments: vec![
                SettledPayment {
                    payment_id: [1; 16],
                    amount: eur(100),
                },
                SettledPayment {
                    payment_id: [2; 16],
                    amount: eur(50),
                },
            ],
        };
        let bytes = statement.to_wire();
        let back = SettlementStatement::from_wire(&bytes).unwrap();
        assert_eq!(back, statement);
        assert!(back.adds_up());
        let mut short = statement.clone();
        short.total = eur(149);
        assert!(!short.adds_up());
        for cut in 0..bytes.len() {
            assert!(SettlementStatement::from_wire(&bytes[..cut]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(SettlementStatement::from_wire(&longer).is_err());
    }

    #[test]
    fn one_transfer_pays_the_longest_prefix_within_the_bound() {
        let max = mpay_money::AMOUNT_MINOR_MAX;
        assert_eq!(one_transfer([]), (0, 0));
        assert_eq!(one_transfer([1, 2, 3]), (3, 6));
        assert_eq!(one_transfer([max - 1, 1, 1]), (2, max));
        assert_eq!(one_transfer([max, max, 1]), (1, max));
        assert_eq!(one_transfer([i64::MAX, 1]), (0, 0));
    }

    #[test]
    fn statements_with_unbounded_or_non_positive_amounts_do_not_decode() {
        let eur = |m| Amount::new(m, Currency::EUR);
        let statement = |total, amount| SettlementStatement {
            run: 1,
            cpp: PartyId::from_u64(1),
            mpp: PartyId::from_u64(2),
            total: eur(total),
            payments: vec![SettledPayment {
                payment_id: [1; 16],
                amount: eur(amount),
            }],
        };
        let max = mpay_money::AMOUNT_MINOR_MAX;
        let at_bound = statement(max, max);
        assert_eq!(
            SettlementStatement::from_wire(&at_bound.to_wire()),
            Ok(at_bound)
        );
        for (total, amount) in [
            (max + 1, 1),
            (1, max + 1),
            (i64::MAX, i64::MAX),
            (0, 1),
            (1, -1),
        ] {
            assert!(
                SettlementStatement::from_wire(&statement(total, amount).to_wire()).is_err(),
                "total {total}, payment {amount}"
            );
        }
    }
}
