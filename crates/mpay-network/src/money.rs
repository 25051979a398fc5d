//! The transfers a service asks of its bank, and what their answers mean.
//!
//! A bank keeps every refusal for want of funds as its key's answer (DESIGN
//! §3.2). A transfer whose caller acts on a refusal (the CPP's aggregated
//! micropayment transfer: the batch fails) asks once, under one key
//! ([`Node::move_money`]). A transfer that waits for money (a refund leg, a
//! micropayment return, a net settlement, a payout) asks under numbered
//! attempts ([`Node::move_money_when_funded`], `mpay_sql::attempts`): at most
//! one of them is ever made, since every earlier one was refused for good.

use mpay_bank::{AccountId, InterbankTransfer, Transfer};
use mpay_money::Amount;
use mpay_processor::saga::attempt_key;
use mpay_sql::attempts;

use crate::api::NetError;
use crate::node::Node;

/// A bank call's result, sorted for the saga.
pub(crate) enum BankAnswer<T> {
    Done(T),
    /// The bank refused for good, with its code.
    Refused(String),
    /// No answer or the bank's own failure: try again later.
    Retry(String),
}

/// The code of a refusal for want of funds.
pub(crate) const INSUFFICIENT_FUNDS: &str = "insufficient_funds";

pub(crate) fn sort_answer<T>(result: Result<T, mpay_bank::ClientError>) -> BankAnswer<T> {
    match result {
        Ok(value) => BankAnswer::Done(value),
        Err(e) if e.is_retryable() => BankAnswer::Retry(e.to_string()),
        Err(e) => BankAnswer::Refused(e.code().unwrap_or("refused").to_owned()),
    }
}

/// An account at a bank of the directory: (bank name, account).
pub(crate) type Holder<'a> = (&'a str, &'a str);

impl Node {
    /// One transfer through the payer's bank, interbank when the payee
    /// banks elsewhere. `Done` carries the transfer's reference:
    /// `posting:N` or `interbank:<message id>`.
    pub(crate) async fn move_money(
        &self,
        key: &str,
        (from_bank, from): Holder<'_>,
        (to_bank, to): Holder<'_>,
        amount: Amount,
        reference: String,
    ) -> Result<BankAnswer<String>, NetError> {
        let corrupt = |what: &str| NetError::Internal(format!("stored {what} is corrupt"));
        let from = AccountId::parse(from).map_err(|_| corrupt("account"))?;
        let to = AccountId::parse(to).map_err(|_| corrupt("account"))?;
        let bank = self.bank(from_bank)?;
        Ok(if from_bank == to_bank {
            let transfer = Transfer {
                from,
                to,
                amount,
                reference,
            };
            sort_answer(
                bank.transfer(key, &transfer)
                    .await
                    .map(|r| format!("posting:{}", r.posting.0)),
            )
        } else {
            let to_bank = self.directory.bank(to_bank).ok_or_else(|| {
                NetError::Internal(format!("bank `{to_bank}` is no longer in the directory"))
            })?;
            let transfer = InterbankTransfer {
                from,
                bank: to_bank.id,
                to,
                amount,
                reference,
            };
            sort_answer(
                bank.interbank_transfer(key, &transfer)
                    .await
                    .map(|r| format!("interbank:{}", r.message.to_hex())),
            )
        })
    }

    /// [`Node::move_money`] for a transfer that waits for money, asked
    /// under the key of `base`'s current attempt. A refusal for want of
    /// funds, which the bank keeps for that key, moves `base` to its next
    /// attempt before it is returned, so the caller's next try asks anew.
    pub(crate) async fn move_money_when_funded(
        &self,
        base: &str,
        from: Holder<'_>,
        to: Holder<'_>,
        amount: Amount,
        reference: String,
    ) -> Result<BankAnswer<String>, NetError> {
        let attempt = attempts::current(&self.db, base).await?;
        let key = attempt_key(base, attempt);
        let answer = self.move_money(&key, from, to, amount, reference).await?;
        if matches!(&answer, BankAnswer::Refused(code) if code == INSUFFICIENT_FUNDS) {
            attempts::advance(&self.db, base, attempt).await?;
        }
        Ok(answer)
    }
}
