//! Mandates: the authorization model at the bank (issue 11, item 5).
//!
//! A caller acts **directly** on the accounts its token's patterns match
//! (the operator on all; an account holder's app on its own account; a
//! processor on its own `cpp:<name>` / `mpp:<name>`). On any other account
//! a processor acts only under a **mandate** `(account, processor,
//! operations, cap)`:
//!
//! 1. granted or changed only by a caller acting directly on the account
//!    (its holder, or the operator on the holder's instruction), when the
//!    customer or merchant enrols with that processor; revoked the same way;
//! 2. for the operations it names — [`Operation::Hold`] (place a hold; the
//!    placer alone then posts or voids it), [`Operation::Debit`] (a
//!    transfer or interbank transfer out of the account), [`Operation::Read`]
//!    (the account, its notifications, its holds);
//! 3. for at most `cap` per hold or debit;
//! 4. a debit under a mandate pays only a processor's account
//!    (`cpp:<name>`, `mpp:<name>`): a refund to the CPP, a micropayment
//!    total to the CPP, never to another customer;
//! 5. a revoked mandate allows nothing;
//! 7. a processor pays from its own account, within this bank, only to a
//!    processor's account or to an account that gave it a mandate in force
//!    (its own customers and merchants: an MPP's payouts, a CPP's refunds);
//!    [`check_payee`].
//!
//! Anything else is refused with 403 `forbidden`.

use mpay_money::Amount;
use mpay_sql::sqlx::{self, Row};
use mpay_sql::{Db, Tx};

use crate::bank::BankError;
use crate::config::{CALLER_NAME_LEN_MAX, Caller};
use crate::ledger::AccountId;

/// Account prefixes of processors' own accounts: where a debit under a
/// mandate may pay.
pub const PROCESSOR_ACCOUNT_PREFIXES: [&str; 2] = ["cpp:", "mpp:"];

/// What a mandate allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Place a hold on the account (then post or void it, as its placer).
    Hold,
    /// Transfer out of the account to a processor's account.
    Debit,
    /// Read the account, its notifications and its holds.
    Read,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 3] = [Operation::Hold, Operation::Debit, Operation::Read];

    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Hold => "hold",
            Operation::Debit => "debit",
            Operation::Read => "read",
        }
    }

    /// The operation named `text`.
    pub fn from_name(text: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// A mandate as granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mandate {
    /// The account it is on.
    pub account: AccountId,
    /// The processor (caller name) it is for.
    pub processor: String,
    /// What it allows (sorted, no repeats).
    pub operations: Vec<Operation>,
    /// The most one hold or one debit may be.
    pub cap: Amount,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl Mandate {
    /// Checks the fields of a grant in `currency`.
    pub fn validate(&self, currency: mpay_money::Currency) -> Result<(), BankError> {
        self.account
            .require_holder()
            .map_err(|e| BankError::Invalid(e.to_string()))?;
        if self.processor.is_empty()
            || self.processor.len() > CALLER_NAME_LEN_MAX
            || !self
                .processor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(BankError::Invalid(
                "a mandate's processor is a caller name".into(),
            ));
        }
        if self.operations.is_empty() {
            return Err(BankError::Invalid("a mandate allows some operation".into()));
        }
        if self.cap.currency() != currency || !self.cap.is_positive() {
            return Err(BankError::Invalid(format!(
                "a mandate's cap is a positive amount in {currency}"
            )));
        }
        self.cap
            .check_bounded()
            .map_err(|e| BankError::Invalid(format!("cap: {e}")))
    }

    fn operations_text(&self) -> String {
        let names: Vec<&str> = self.operations.iter().map(|o| o.as_str()).collect();
        names.join(",")
    }
}

/// Parses a list of operation names (sorted, repeats dropped).
pub fn parse_operations(names: &[String]) -> Result<Vec<Operation>, BankError> {
    let mut operations = names
        .iter()
        .map(|n| {
            Operation::from_name(n)
                .ok_or_else(|| BankError::Invalid(format!("unknown operation `{n}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    operations.sort();
    operations.dedup();
    Ok(operations)
}

fn forbidden(caller: &Caller, action: String) -> BankError {
    BankError::Forbidden {
        caller: caller.name().to_owned(),
        action,
    }
}

/// True if `account` is a processor's own account.
pub fn is_processor_account(account: &AccountId) -> bool {
    PROCESSOR_ACCOUNT_PREFIXES
        .iter()
        .any(|p| account.as_str().starts_with(p))
}

/// Stores (or replaces, un-revoking) `mandate`, granted by `caller`.
pub(crate) async fn grant(
    tx: &mut Tx<'_>,
    caller: &Caller,
    mandate: &Mandate,
    now_ms: i64,
) -> Result<(), BankError> {
    sqlx::query("DELETE FROM bank_mandates WHERE account = $1 AND processor = $2")
        .bind(mandate.account.as_str())
        .bind(mandate.processor.as_str())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO bank_mandates (account, processor, operations, cap, granted_by,
            granted_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, NULL)",
    )
    .bind(mandate.account.as_str())
    .bind(mandate.processor.as_str())
    .bind(mandate.operations_text())
    .bind(mandate.cap.minor_units())
    .bind(caller.name())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Marks the mandate of `processor` on `account` revoked; false if there
/// was none in force.
pub(crate) async fn revoke(
    tx: &mut Tx<'_>,
    account: &AccountId,
    processor: &str,
    now_ms: i64,
) -> Result<bool, BankError> {
    let done = sqlx::query(
        "UPDATE bank_mandates SET revoked_at = $3
         WHERE account = $1 AND processor = $2 AND revoked_at IS NULL",
    )
    .bind(account.as_str())
    .bind(processor)
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The mandate of `processor` on `account`, revoked or not.
pub async fn load(
    db: &Db,
    account: &AccountId,
    processor: &str,
    currency: mpay_money::Currency,
) -> Result<Option<Mandate>, BankError> {
    let row = sqlx::query(
        "SELECT operations, cap, revoked_at FROM bank_mandates
         WHERE account = $1 AND processor = $2",
    )
    .bind(account.as_str())
    .bind(processor)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let text: String = row.try_get("operations")?;
    let names: Vec<String> = text.split(',').map(str::to_owned).collect();
    let operations = parse_operations(&names)
        .map_err(|_| BankError::Books(format!("stored mandate operations `{text}`")))?;
    let revoked_at: Option<i64> = row.try_get("revoked_at")?;
    Ok(Some(Mandate {
        account: account.clone(),
        processor: processor.to_owned(),
        operations,
        cap: Amount::new(row.try_get("cap")?, currency),
        revoked: revoked_at.is_some(),
    }))
}

/// Checks that `caller` may do `operation` on `account` (for `amount`,
/// paying `to`): directly, or under a mandate in force (rules 2-5).
pub async fn authorize(
    db: &Db,
    currency: mpay_money::Currency,
    caller: &Caller,
    account: &AccountId,
    operation: Operation,
    amount: Option<Amount>,
    to: Option<&AccountId>,
) -> Result<(), BankError> {
    if caller.may_use(account) {
        return Ok(());
    }
    let mandate = load(db, account, caller.name(), currency).await?;
    let Some(mandate) = mandate.filter(|m| !m.revoked) else {
        return Err(forbidden(
            caller,
            format!("{} on {account} (no mandate)", operation.as_str()),
        ));
    };
    if !mandate.operations.contains(&operation) {
        return Err(forbidden(
            caller,
            format!(
                "{} on {account} (the mandate does not allow it)",
                operation.as_str()
            ),
        ));
    }
    if let Some(amount) = amount
        && amount.minor_units() > mandate.cap.minor_units()
    {
        return Err(forbidden(
            caller,
            format!(
                "{} {amount} on {account} (the mandate's cap is {})",
                operation.as_str(),
                mandate.cap
            ),
        ));
    }
    if let Some(to) = to
        && !is_processor_account(to)
    {
        return Err(forbidden(
            caller,
            format!("pay {to} from {account} (a mandate pays only a processor's account)"),
        ));
    }
    Ok(())
}

/// Rule 7: a processor (not the operator) paying `to`, within this bank,
/// from its own processor account pays only a processor's account or an
/// account that gave it a mandate in force.
pub async fn check_payee(
    db: &Db,
    currency: mpay_money::Currency,
    caller: &Caller,
    from: &AccountId,
    to: &AccountId,
) -> Result<(), BankError> {
    if caller.is_operator() || !is_processor_account(from) || is_processor_account(to) {
        return Ok(());
    }
    match load(db, to, caller.name(), currency).await? {
        Some(mandate) if !mandate.revoked => Ok(()),
        _ => Err(forbidden(
            caller,
            format!(
                "pay {to} from {from} ({to} is not a customer or merchant of {})",
                caller.name()
            ),
        )),
    }
}
