//! The bank's rules as plain values and pure functions: account names and
//! floors, the funds check, the hold life cycle, the requests (and the
//! canonical encoding their idempotency hash is taken over) and the receipts
//! the bank answers with. No clock, no database: [`crate::bank`] feeds these
//! with rows it read and `now` it was given.

use std::fmt;

use mpay_identity::{PartyId, Timestamp};
use mpay_money::{Amount, Currency};
use mpay_wire::{Decode, DecodeError, Encode, Reader, Writer, wire_enum};

/// Longest account id.
pub const ACCOUNT_ID_LEN_MAX: usize = 128;
/// Longest holder name.
pub const HOLDER_LEN_MAX: usize = 128;
/// Longest reference (a payment's or a caller's note on a movement).
pub const REFERENCE_LEN_MAX: usize = 256;
/// Longest time from placing a hold to its expiry.
pub const HOLD_DURATION_MAX_MS: u64 = 30 * mpay_identity::MILLIS_PER_DAY;

/// Domain-separation tag of the idempotency hash of a request.
const REQUEST_HASH_TAG: &[u8] = b"mpay/v1/bank-request\0";

/// Names of the bank's own accounts.
pub mod system_accounts {
    /// The outside world: deposits come from here. No floor.
    pub const EXTERNAL: &str = "external";
    /// Money that arrived for no account and cannot be sent back (a returned
    /// transfer whose original payer is gone). No floor.
    pub const SUSPENSE: &str = "suspense";
    /// Prefix of a settlement account: `settlement:<peer bank id, 32 lower-case hex>`.
    pub const SETTLEMENT_PREFIX: &str = "settlement:";
}

/// Why a value breaks the ledger's rules. The caller's fault unless it is
/// [`LedgerError::Broken`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// A field is malformed or out of its limits. The text says what is
    /// wrong with the value; the layer that took the request frames it.
    #[error("{0}")]
    Invalid(String),
    /// The account cannot pay `requested`: only `available` is above its
    /// floor and not held.
    #[error("insufficient funds: {available} available, {requested} requested")]
    InsufficientFunds {
        /// What the account could pay.
        available: Amount,
        /// What was asked.
        requested: Amount,
    },
    /// The hold already ended.
    #[error("hold is {0}, not pending")]
    HoldNotPending(HoldState),
    /// The hold's expiry passed: it can no longer be posted.
    #[error("hold expired at {0}")]
    HoldExpired(Timestamp),
    /// The movement would take a balance past
    /// [`mpay_money::BALANCE_MINOR_MAX`]: refused, nothing changed.
    #[error(
        "the balance would pass its bound of {} minor units",
        mpay_money::BALANCE_MINOR_MAX
    )]
    BalanceLimit,
    /// Arithmetic on stored balances overflowed or mixed currencies: the
    /// books are broken (never the caller's fault).
    #[error("ledger invariant broken: {0}")]
    Broken(&'static str),
}

fn invalid(reason: impl Into<String>) -> LedgerError {
    LedgerError::Invalid(reason.into())
}

/// What kind of account an id names, which decides its floor and who may
/// move money in and out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountKind {
    /// [`system_accounts::EXTERNAL`].
    External,
    /// [`system_accounts::SUSPENSE`].
    Suspense,
    /// The settlement account with a peer bank.
    Settlement(PartyId),
    /// An account holder's account (`cust:alice`, `cpp:cpp1`, …): opened by
    /// the operator, with a floor (zero unless an overdraft was granted).
    Holder,
}

impl AccountKind {
    /// True for the bank's own accounts, which have no floor and receive
    /// no notifications.
    pub fn is_system(self) -> bool {
        !matches!(self, AccountKind::Holder)
    }
}

/// An account id: 1..=[`ACCOUNT_ID_LEN_MAX`] characters of `[A-Za-z0-9._:-]`;
/// `external`, `suspense`, `settlement:<peer bank id>`, or a holder account
/// `<prefix>:<name>` with a lower-case prefix (`cust:alice`, `cpp:cpp1`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    /// Parses and checks an account id.
    pub fn parse(text: &str) -> Result<AccountId, LedgerError> {
        if text.is_empty() || text.len() > ACCOUNT_ID_LEN_MAX {
            return Err(invalid(format!(
                "account ids are 1..={ACCOUNT_ID_LEN_MAX} characters"
            )));
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
        {
            return Err(invalid(format!(
                "account id `{text}` has characters outside [A-Za-z0-9._:-]"
            )));
        }
        let id = AccountId(text.to_owned());
        match text {
            system_accounts::EXTERNAL | system_accounts::SUSPENSE => return Ok(id),
            _ => {}
        }
        if let Some(hex) = text.strip_prefix(system_accounts::SETTLEMENT_PREFIX) {
            return match PartyId::from_hex(hex) {
                Some(bank) if bank.to_hex() == hex => Ok(id),
                _ => Err(invalid(
                    "a settlement account is `settlement:` and 32 lower-case hex digits",
                )),
            };
        }
        match text.split_once(':') {
            Some((prefix, name))
                if !prefix.is_empty()
                    && !name.is_empty()
                    && prefix
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') =>
            {
                Ok(id)
            }
            _ => Err(invalid(format!(
                "account id `{text}` is not `<prefix>:<name>` (e.g. `cust:alice`)"
            ))),
        }
    }

    /// The `external` account.
    pub fn external() -> AccountId {
        AccountId(system_accounts::EXTERNAL.to_owned())
    }

    /// The `suspense` account.
    pub fn suspense() -> AccountId {
        AccountId(system_accounts::SUSPENSE.to_owned())
    }

    /// The settlement account with peer `bank`.
    pub fn settlement(bank: PartyId) -> AccountId {
        AccountId(format!(
            "{}{}",
            system_accounts::SETTLEMENT_PREFIX,
            bank.to_hex()
        ))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What kind of account this is.
    pub fn kind(&self) -> AccountKind {
        match self.0.as_str() {
            system_accounts::EXTERNAL => AccountKind::External,
            system_accounts::SUSPENSE => AccountKind::Suspense,
            text => match text
                .strip_prefix(system_accounts::SETTLEMENT_PREFIX)
                .and_then(PartyId::from_hex)
            {
                Some(bank) => AccountKind::Settlement(bank),
                None => AccountKind::Holder,
            },
        }
    }

    /// Fails unless this is a holder account (the only kind callers open,
    /// pay from and pay to).
    pub fn require_holder(&self) -> Result<(), LedgerError> {
        match self.kind() {
            AccountKind::Holder => Ok(()),
            _ => Err(invalid(format!(
                "`{self}` is one of the bank's own accounts, not a holder account"
            ))),
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

impl Encode for AccountId {
    fn encode(&self, w: &mut Writer) {
        w.text(&self.0);
    }
}

impl Decode for AccountId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let text = r.text("account id", ACCOUNT_ID_LEN_MAX)?;
        AccountId::parse(&text).map_err(|_| DecodeError::Invalid {
            what: "account id",
            reason: "not a valid account id",
        })
    }
}

fn check_text(what: &str, text: &str, max: usize) -> Result<(), LedgerError> {
    if text.len() > max || text.contains('\0') {
        return Err(invalid(format!(
            "{what} must be at most {max} bytes, without NUL"
        )));
    }
    Ok(())
}

fn check_amount(amount: Amount, currency: Currency) -> Result<(), LedgerError> {
    if amount.currency() != currency {
        return Err(invalid(format!(
            "this bank keeps {currency}, not {}",
            amount.currency()
        )));
    }
    if !amount.is_positive() {
        return Err(invalid("amounts must be positive"));
    }
    amount.check_bounded().map_err(|e| invalid(e.to_string()))
}

/// Fails unless `balance` is within ±[`mpay_money::BALANCE_MINOR_MAX`].
fn check_balance(balance: Amount) -> Result<Amount, LedgerError> {
    balance
        .check_within(mpay_money::BALANCE_MINOR_MAX)
        .map_err(|_| LedgerError::BalanceLimit)?;
    Ok(balance)
}

/// An account's money as the funds check sees it. Every movement goes
/// through [`Funds::debit`] / [`Funds::hold`], which refuse to take the
/// account below its floor counting what is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Funds {
    /// Its balance.
    pub balance: Amount,
    /// The sum of its pending holds (never negative).
    pub held: Amount,
    /// Its floor; `None` for the bank's own accounts, which have none.
    pub floor: Option<Amount>,
}

impl Funds {
    /// `balance - held`: what the holder sees as available.
    pub fn available(&self) -> Result<Amount, LedgerError> {
        self.balance
            .checked_sub(self.held)
            .map_err(|_| LedgerError::Broken("balance minus held overflows"))
    }

    /// What may still be debited or held: `balance - held - floor`;
    /// `None` when the account has no floor.
    pub fn spendable(&self) -> Result<Option<Amount>, LedgerError> {
        match self.floor {
            None => Ok(None),
            Some(floor) => self
                .available()?
                .checked_sub(floor)
                .map(Some)
                .map_err(|_| LedgerError::Broken("available minus floor overflows")),
        }
    }

    fn check_fits(&self, amount: Amount) -> Result<(), LedgerError> {
        if let Some(spendable) = self.spendable()? {
            let fits = amount
                .checked_cmp(&spendable)
                .map_err(|_| LedgerError::Broken("currency mismatch"))?
                != std::cmp::Ordering::Greater;
            if !fits {
                return Err(LedgerError::InsufficientFunds {
                    available: spendable.at_least_zero(),
                    requested: amount,
                });
            }
        }
        Ok(())
    }

    /// The funds after paying `amount` out, if the floor allows it.
    pub fn debit(self, amount: Amount) -> Result<Funds, LedgerError> {
        self.check_fits(amount)?;
        let balance = self
            .balance
            .checked_sub(amount)
            .map_err(|_| LedgerError::BalanceLimit)?;
        Ok(Funds {
            balance: check_balance(balance)?,
            ..self
        })
    }

    /// The funds after receiving `amount`.
    pub fn credit(self, amount: Amount) -> Result<Funds, LedgerError> {
        let balance = self
            .balance
            .checked_add(amount)
            .map_err(|_| LedgerError::BalanceLimit)?;
        Ok(Funds {
            balance: check_balance(balance)?,
            ..self
        })
    }

    /// The funds after reserving `amount` in a new hold, if the floor allows it.
    pub fn hold(self, amount: Amount) -> Result<Funds, LedgerError> {
        self.check_fits(amount)?;
        let held = self
            .held
            .checked_add(amount)
            .map_err(|_| LedgerError::Broken("held overflows"))?;
        Ok(Funds { held, ..self })
    }

    /// The funds after a hold of `amount` ended (posted, voided or expired).
    pub fn release(self, amount: Amount) -> Result<Funds, LedgerError> {
        let held = self
            .held
            .checked_sub(amount)
            .map_err(|_| LedgerError::Broken("release overflows"))?;
        if held.is_negative() {
            return Err(LedgerError::Broken("released more than was held"));
        }
        Ok(Funds { held, ..self })
    }

    /// Checks the account's own invariants: nothing negative held, and
    /// (with a floor) `balance - held ≥ floor`.
    pub fn check(&self) -> Result<(), LedgerError> {
        if self.held.is_negative() {
            return Err(LedgerError::Broken("negative held amount"));
        }
        match self.spendable()? {
            Some(spendable) if spendable.is_negative() => {
                Err(LedgerError::Broken("an account is below its floor"))
            }
            _ => Ok(()),
        }
    }
}

trait AtLeastZero {
    fn at_least_zero(self) -> Amount;
}

impl AtLeastZero for Amount {
    fn at_least_zero(self) -> Amount {
        if self.is_negative() {
            Amount::zero(self.currency())
        } else {
            self
        }
    }
}

// `wire_enum!` writes `ALL`, `tag` and `from_tag` without doc comments.
#[allow(missing_docs)]
mod hold_state_enum {
    use super::*;

    wire_enum! {
        /// Where a hold is in its life: pending, then exactly one of the others.
        pub enum HoldState: "hold state" {
            /// Funds reserved; may be posted until it expires, or voided.
            Pending = 1,
            /// The held amount was paid out.
            Posted = 2,
            /// Released on request (e.g. the merchant rejected the payment).
            Voided = 3,
            /// Released because its expiry passed.
            Expired = 4,
        }
    }
}
pub use hold_state_enum::HoldState;

impl HoldState {
    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldState::Pending => "pending",
            HoldState::Posted => "posted",
            HoldState::Voided => "voided",
            HoldState::Expired => "expired",
        }
    }

    /// The state named `text`.
    pub fn from_name(text: &str) -> Option<HoldState> {
        HoldState::ALL.iter().copied().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for HoldState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A hold's id, assigned by the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HoldId(pub i64);

/// A posting's id (the journal's row), assigned by the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostingId(pub i64);

/// An interbank message's id, chosen by the bank that wrote it; the
/// receiver applies each (sender, id) once.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InterbankId(pub [u8; 16]);

impl InterbankId {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        mpay_identity::hex_string(&self.0)
    }

    /// Parses 32 hex digits.
    pub fn from_hex(text: &str) -> Option<InterbankId> {
        let bytes = mpay_identity::hex_bytes(text)?;
        Some(InterbankId(bytes.try_into().ok()?))
    }
}

impl fmt::Debug for InterbankId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InterbankId({})", self.to_hex())
    }
}

macro_rules! i64_id_wire {
    ($name:ident, $what:literal) => {
        impl Encode for $name {
            fn encode(&self, w: &mut Writer) {
                w.i64(self.0);
            }
        }
        impl Decode for $name {
            fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok($name(r.i64($what)?))
            }
        }
    };
}
i64_id_wire!(HoldId, "hold id");
i64_id_wire!(PostingId, "posting id");

impl Encode for InterbankId {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.0);
    }
}

impl Decode for InterbankId {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(InterbankId(r.array("interbank message id")?))
    }
}

/// A hold that has not ended. Its transitions take it by value, so a hold
/// ends once: [`PendingHold::post`], [`PendingHold::void`] or
/// [`PendingHold::expire`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHold {
    /// Its id.
    pub id: HoldId,
    /// The account whose funds it reserves.
    pub account: AccountId,
    /// How much.
    pub amount: Amount,
    /// When it expires (from then on it can no longer be posted).
    pub expires_at: Timestamp,
    /// The caller that placed it (the only caller besides the operator that
    /// may post or void it).
    pub placed_by: String,
}

/// How a hold ended: release `amount` from `account`'s held sum; for
/// [`HoldState::Posted`] then pay it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedHold {
    /// The hold.
    pub id: HoldId,
    /// Its account.
    pub account: AccountId,
    /// Its amount.
    pub amount: Amount,
    /// Posted, voided or expired.
    pub state: HoldState,
}

impl PendingHold {
    fn end(self, state: HoldState) -> EndedHold {
        EndedHold {
            id: self.id,
            account: self.account,
            amount: self.amount,
            state,
        }
    }

    /// Posts the hold: refused once its expiry has passed.
    pub fn post(self, now: Timestamp) -> Result<EndedHold, LedgerError> {
        if now >= self.expires_at {
            return Err(LedgerError::HoldExpired(self.expires_at));
        }
        Ok(self.end(HoldState::Posted))
    }

    /// Voids the hold.
    pub fn void(self) -> EndedHold {
        self.end(HoldState::Voided)
    }

    /// Expires the hold if its expiry has passed; gives it back otherwise.
    pub fn expire(self, now: Timestamp) -> Result<EndedHold, PendingHold> {
        if now >= self.expires_at {
            Ok(self.end(HoldState::Expired))
        } else {
            Err(self)
        }
    }
}

/// What a holder is told happened to their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationKind {
    /// Money arrived.
    Credited,
    /// Money left (a transfer or an interbank transfer).
    Debited,
    /// Funds were reserved by a hold.
    HoldPlaced,
    /// A hold was posted: its amount left the account.
    HoldPosted,
    /// A hold was voided: its funds are available again.
    HoldVoided,
    /// A hold expired: its funds are available again.
    HoldExpired,
}

impl NotificationKind {
    /// Every kind.
    pub const ALL: [NotificationKind; 6] = [
        NotificationKind::Credited,
        NotificationKind::Debited,
        NotificationKind::HoldPlaced,
        NotificationKind::HoldPosted,
        NotificationKind::HoldVoided,
        NotificationKind::HoldExpired,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Credited => "credited",
            NotificationKind::Debited => "debited",
            NotificationKind::HoldPlaced => "hold_placed",
            NotificationKind::HoldPosted => "hold_posted",
            NotificationKind::HoldVoided => "hold_voided",
            NotificationKind::HoldExpired => "hold_expired",
        }
    }

    /// The kind named `text`.
    pub fn from_name(text: &str) -> Option<NotificationKind> {
        NotificationKind::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == text)
    }

    /// What a holder is told when a hold ends in `state`.
    pub fn for_hold(state: HoldState) -> NotificationKind {
        match state {
            HoldState::Pending => NotificationKind::HoldPlaced,
            HoldState::Posted => NotificationKind::HoldPosted,
            HoldState::Voided => NotificationKind::HoldVoided,
            HoldState::Expired => NotificationKind::HoldExpired,
        }
    }
}

/// Where a posted hold's money goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A holder account in this bank.
    Account(AccountId),
    /// A holder account at a peer bank: an interbank transfer.
    Interbank {
        /// The peer bank.
        bank: PartyId,
        /// The account there.
        account: AccountId,
    },
}

impl Encode for Destination {
    fn encode(&self, w: &mut Writer) {
        match self {
            Destination::Account(account) => w.u8(1).put(account),
            Destination::Interbank { bank, account } => w.u8(2).put(bank).put(account),
        };
    }
}

impl Decode for Destination {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("destination")? {
            1 => Ok(Destination::Account(r.get()?)),
            2 => Ok(Destination::Interbank {
                bank: r.get()?,
                account: r.get()?,
            }),
            tag => Err(DecodeError::UnknownTag {
                what: "destination",
                tag,
            }),
        }
    }
}

/// A request to the bank. Its [`BankRequest::request_hash`] (over
/// [`Encode`], which is canonical: fixed field order, fixed widths) is what
/// the idempotency key is bound to: the same key with another body is refused.
pub trait BankRequest: Encode {
    /// One byte per kind of request, so that one key cannot be reused
    /// across kinds with colliding bodies.
    const OP: u8;
    /// Short name for metrics and logs.
    const NAME: &'static str;

    /// Checks every field against the rules and limits; call before
    /// anything else (encoding assumes checked lengths).
    fn validate(&self, currency: Currency) -> Result<(), LedgerError>;

    /// BLAKE3 of the domain tag, the kind and the canonical encoding.
    fn request_hash(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(REQUEST_HASH_TAG);
        hasher.update(&[Self::OP]);
        hasher.update(&self.to_wire());
        *hasher.finalize().as_bytes()
    }
}

/// Open a holder account (operator only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenAccount {
    /// The new account's id (a holder account).
    pub account: AccountId,
    /// The holder's name.
    pub holder: String,
    /// Its floor: zero, or negative for an overdraft.
    pub floor: Amount,
}

impl Encode for OpenAccount {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.account).text(&self.holder).put(&self.floor);
    }
}

impl BankRequest for OpenAccount {
    const OP: u8 = 1;
    const NAME: &'static str = "open_account";
    fn validate(&self, currency: Currency) -> Result<(), LedgerError> {
        self.account.require_holder()?;
        if self.holder.is_empty() {
            return Err(invalid("the holder's name is empty"));
        }
        check_text("holder", &self.holder, HOLDER_LEN_MAX)?;
        if self.floor.currency() != currency || self.floor.is_positive() {
            return Err(invalid(format!(
                "the floor must be zero or negative, in {currency}"
            )));
        }
        self.floor
            .check_bounded()
            .map_err(|e| invalid(format!("floor: {e}")))
    }
}

/// Money from outside into an account (operator only): `external` → account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposit {
    /// The holder account credited.
    pub account: AccountId,
    /// How much.
    pub amount: Amount,
    /// The caller's reference.
    pub reference: String,
}

impl Encode for Deposit {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.account).put(&self.amount).text(&self.reference);
    }
}

impl BankRequest for Deposit {
    const OP: u8 = 2;
    const NAME: &'static str = "deposit";
    fn validate(&self, currency: Currency) -> Result<(), LedgerError> {
        self.account.require_holder()?;
        check_amount(self.amount, currency)?;
        check_text("reference", &self.reference, REFERENCE_LEN_MAX)
    }
}

/// A transfer between two holder accounts of this bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The account debited (the caller must be allowed on it).
    pub from: AccountId,
    /// The account credited.
    pub to: AccountId,
    /// How much.
    pub amount: Amount,
    /// The caller's reference.
    pub reference: String,
}

impl Encode for Transfer {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.from)
            .put(&self.to)
            .put(&self.amount)
            .text(&self.reference);
    }
}

impl BankRequest for Transfer {
    const OP: u8 = 3;
    const NAME: &'static str = "transfer";
    fn validate(&self, currency: Currency) -> Result<(), LedgerError> {
        self.from.require_holder()?;
        self.to.require_holder()?;
        if self.from == self.to {
            return Err(invalid("a transfer needs two different accounts"));
        }
        check_amount(self.amount, currency)?;
        check_text("reference", &self.reference, REFERENCE_LEN_MAX)
    }
}

/// Reserve funds on an account until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceHold {
    /// The account (the caller must be allowed on it).
    pub account: AccountId,
    /// How much.
    pub amount: Amount,
    /// When the hold expires, at most [`HOLD_DURATION_MAX_MS`] after it is placed.
    pub expires_at: Timestamp,
    /// The caller's reference (e.g. the payment's).
    pub reference: String,
}

impl Encode for PlaceHold {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.account)
            .put(&self.amount)
            .put(&self.expires_at)
            .text(&self.reference);
    }
}

impl BankRequest for PlaceHold {
    const OP: u8 = 4;
    const NAME: &'static str = "place_hold";
    fn validate(&self, currency: Currency) -> Result<(), LedgerError> {
        self.account.require_holder()?;
        check_amount(self.amount, currency)?;
        check_text("reference", &self.reference, REFERENCE_LEN_MAX)
    }
}

impl PlaceHold {
    /// Checks the expiry against `now`: in the future, within
    /// [`HOLD_DURATION_MAX_MS`].
    pub fn check_expiry(&self, now: Timestamp) -> Result<(), LedgerError> {
        if self.expires_at <= now {
            return Err(invalid("a hold must expire in the future"));
        }
        if self.expires_at.millis_since(now) > HOLD_DURATION_MAX_MS {
            return Err(invalid(format!(
                "a hold may last at most {HOLD_DURATION_MAX_MS} ms"
            )));
        }
        Ok(())
    }
}

/// Post a pending hold: pay its amount to `destination`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostHold {
    /// The hold.
    pub hold: HoldId,
    /// Where the money goes.
    pub destination: Destination,
}

impl Encode for PostHold {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.hold).put(&self.destination);
    }
}

impl BankRequest for PostHold {
    const OP: u8 = 5;
    const NAME: &'static str = "post_hold";
    fn validate(&self, _currency: Currency) -> Result<(), LedgerError> {
        match &self.destination {
            Destination::Account(account) => account.require_holder(),
            Destination::Interbank { account, .. } => account.require_holder(),
        }
    }
}

/// Void a pending hold: release its funds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidHold {
    /// The hold.
    pub hold: HoldId,
}

impl Encode for VoidHold {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.hold);
    }
}

impl BankRequest for VoidHold {
    const OP: u8 = 6;
    const NAME: &'static str = "void_hold";
    fn validate(&self, _currency: Currency) -> Result<(), LedgerError> {
        Ok(())
    }
}

/// A transfer from a holder account here to a holder account at a peer bank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterbankTransfer {
    /// The account debited here (the caller must be allowed on it).
    pub from: AccountId,
    /// The peer bank.
    pub bank: PartyId,
    /// The account credited there.
    pub to: AccountId,
    /// How much.
    pub amount: Amount,
    /// The caller's reference.
    pub reference: String,
}

impl Encode for InterbankTransfer {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.from)
            .put(&self.bank)
            .put(&self.to)
            .put(&self.amount)
            .text(&self.reference);
    }
}

impl BankRequest for InterbankTransfer {
    const OP: u8 = 7;
    const NAME: &'static str = "interbank_transfer";
    fn validate(&self, currency: Currency) -> Result<(), LedgerError> {
        self.from.require_holder()?;
        self.to.require_holder()?;
        check_amount(self.amount, currency)?;
        check_text("reference", &self.reference, REFERENCE_LEN_MAX)
    }
}

/// An account as its holder sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// Its id.
    pub id: AccountId,
    /// The holder's name.
    pub holder: String,
    /// Balance, held sum and floor.
    pub funds: Funds,
}

impl Encode for AccountView {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.id)
            .text(&self.holder)
            .put(&self.funds.balance)
            .put(&self.funds.held)
            .option(&self.funds.floor);
    }
}

impl Decode for AccountView {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AccountView {
            id: r.get()?,
            holder: r.text("holder", HOLDER_LEN_MAX)?,
            funds: Funds {
                balance: r.get()?,
                held: r.get()?,
                floor: r.option("floor")?,
            },
        })
    }
}

/// What a deposit or a transfer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReceipt {
    /// The journal row.
    pub posting: PostingId,
    /// The account debited.
    pub from: AccountId,
    /// The account credited.
    pub to: AccountId,
    /// How much.
    pub amount: Amount,
    /// The debited account's balance after the transfer.
    pub from_balance_after: Amount,
    /// When.
    pub at: Timestamp,
}

impl Encode for TransferReceipt {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.posting)
            .put(&self.from)
            .put(&self.to)
            .put(&self.amount)
            .put(&self.from_balance_after)
            .put(&self.at);
    }
}

impl Decode for TransferReceipt {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TransferReceipt {
            posting: r.get()?,
            from: r.get()?,
            to: r.get()?,
            amount: r.get()?,
            from_balance_after: r.get()?,
            at: r.get()?,
        })
    }
}

/// A hold as the bank reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldView {
    /// Its id.
    pub id: HoldId,
    /// The account whose funds it reserves.
    pub account: AccountId,
    /// How much.
    pub amount: Amount,
    /// The reference given when it was placed.
    pub reference: String,
    /// The caller that placed it.
    pub placed_by: String,
    /// When it expires.
    pub expires_at: Timestamp,
    /// Where it is in its life.
    pub state: HoldState,
    /// When it was placed.
    pub created_at: Timestamp,
    /// When it ended, unless pending.
    pub resolved_at: Option<Timestamp>,
    /// The posting that paid it out (posted holds).
    pub posting: Option<PostingId>,
    /// Where it was paid (posted holds).
    pub destination: Option<Destination>,
    /// The interbank message that carries it (posted to another bank).
    pub message: Option<InterbankId>,
}

impl Encode for HoldView {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.id)
            .put(&self.account)
            .put(&self.amount)
            .text(&self.reference)
            .text(&self.placed_by)
            .put(&self.expires_at)
            .put(&self.state)
            .put(&self.created_at)
            .option(&self.resolved_at)
            .option(&self.posting)
            .option(&self.destination)
            .option(&self.message);
    }
}

impl Decode for HoldView {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(HoldView {
            id: r.get()?,
            account: r.get()?,
            amount: r.get()?,
            reference: r.text("reference", REFERENCE_LEN_MAX)?,
            placed_by: r.text("placed by", crate::config::CALLER_NAME_LEN_MAX)?,
            expires_at: r.get()?,
            state: r.get()?,
            created_at: r.get()?,
            resolved_at: r.option("resolved at")?,
            posting: r.option("posting")?,
            destination: r.option("destination")?,
            message: r.option("message")?,
        })
    }
}

/// What an interbank transfer did here (the peer's side follows through the
/// outbox).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterbankReceipt {
    /// The message that carries it to the peer.
    pub message: InterbankId,
    /// The posting here: the account → `settlement:<peer>`.
    pub posting: PostingId,
    /// The account debited.
    pub from: AccountId,
    /// The peer bank.
    pub bank: PartyId,
    /// The account at the peer.
    pub to: AccountId,
    /// How much.
    pub amount: Amount,
    /// The debited account's balance after the transfer.
    pub from_balance_after: Amount,
    /// When.
    pub at: Timestamp,
}

impl Encode for InterbankReceipt {
    fn encode(&self, w: &mut Writer) {
        w.put(&self.message)
            .put(&self.posting)
            .put(&self.from)
            .put(&self.bank)
            .put(&self.to)
            .put(&self.amount)
            .put(&self.from_balance_after)
            .put(&self.at);
    }
}

impl Decode for InterbankReceipt {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(InterbankReceipt {
            message: r.get()?,
            posting: r.get()?,
            from: r.get()?,
            bank: r.get()?,
            to: r.get()?,
            amount: r.get()?,
            from_balance_after: r.get()?,
            at: r.get()?,
        })
    }
}

/// One notification to an account holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Increasing per bank; page with `after`.
    pub id: i64,
    /// The account.
    pub account: AccountId,
    /// What happened.
    pub kind: NotificationKind,
    /// How much moved or was held.
    pub amount: Amount,
    /// The balance afterwards.
    pub balance_after: Amount,
    /// `balance - held` afterwards.
    pub available_after: Amount,
    /// The movement's reference.
    pub reference: String,
    /// When.
    pub at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(minor: i64) -> Amount {
        Amount::new(minor, Currency::EUR)
    }

    fn funds(balance: i64, held: i64, floor: Option<i64>) -> Funds {
        Funds {
            balance: eur(balance),
            held: eur(held),
            floor: floor.map(eur),
        }
    }

    #[test]
    fn account_ids_are_checked_and_classified() {
        let bank = PartyId::from_u64(7);
        assert_eq!(
            AccountId::parse("cust:alice").map(|a| a.kind()),
            Ok(AccountKind::Holder)
        );
        assert_eq!(
            AccountId::parse("cpp:cpp1").map(|a| a.kind()),
            Ok(AccountKind::Holder)
        );
        assert_eq!(
            AccountId::parse("external").map(|a| a.kind()),
            Ok(AccountKind::External)
        );
        assert_eq!(
            AccountId::parse(AccountId::settlement(bank).as_str()).map(|a| a.kind()),
            Ok(AccountKind::Settlement(bank))
        );
        let longest = format!("c:{}", "a".repeat(ACCOUNT_ID_LEN_MAX - 2));
        assert!(AccountId::parse(&longest).is_ok());
        for bad in [
            "",
            "alice",
            "cust:",
            ":alice",
            "Cust:alice",
            "cust:al ice",
            "cust:al/ice",
            "settlement:00",
            "settlement:ABCDEFABCDEFABCDEFABCDEFABCDEFAB",
            &format!("{longest}a"),
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AccountId::external().require_holder().is_err());
        assert!(AccountId::settlement(bank).require_holder().is_err());
    }

    #[test]
    fn the_floor_counts_what_is_held() {
        let f = funds(100, 30, Some(0));
        assert_eq!(f.available(), Ok(eur(70)));
        assert_eq!(f.debit(eur(70)).map(|f| f.balance), Ok(eur(30)));
        assert_eq!(
            f.debit(eur(71)),
            Err(LedgerError::InsufficientFunds {
                available: eur(70),
                requested: eur(71)
            })
        );
        assert_eq!(f.hold(eur(70)).map(|f| f.held), Ok(eur(100)));
        assert!(f.hold(eur(71)).is_err());
        // An overdraft floor lets the balance go negative, to the floor.
        let overdraft = funds(0, 0, Some(-50));
        assert!(overdraft.debit(eur(50)).is_ok());
        assert!(overdraft.debit(eur(51)).is_err());
        // No floor: anything goes.
        assert_eq!(
            funds(0, 0, None).debit(eur(1_000)).map(|f| f.balance),
            Ok(eur(-1_000))
        );
        // Releasing more than is held is a broken invariant.
        assert!(matches!(f.release(eur(31)), Err(LedgerError::Broken(_))));
        assert!(funds(10, 20, Some(0)).check().is_err());
        assert!(funds(20, 20, Some(0)).check().is_ok());
    }

    #[test]
    fn a_hold_ends_once() {
        let hold = PendingHold {
            id: HoldId(1),
            account: AccountId::parse("cust:a").unwrap(),
            amount: eur(5),
            expires_at: Timestamp(1_000),
            placed_by: "cpp1".into(),
        };
        assert_eq!(
            hold.clone().post(Timestamp(999)).unwrap().state,
            HoldState::Posted
        );
        assert_eq!(
            hold.clone().post(Timestamp(1_000)),
            Err(LedgerError::HoldExpired(Timestamp(1_000)))
        );
        assert_eq!(hold.clone().void().state, HoldState::Voided);
        let still = hold.clone().expire(Timestamp(999)).unwrap_err();
        assert_eq!(still, hold);
        assert_eq!(
            still.expire(Timestamp(1_000)).unwrap().state,
            HoldState::Expired
        );
        for state in HoldState::ALL {
            assert_eq!(HoldState::from_name(state.as_str()), Some(*state));
        }
        for kind in NotificationKind::ALL {
            assert_eq!(NotificationKind::from_name(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn a_hold_lasts_at_most_the_named_limit() {
        let now = Timestamp(1_000);
        let hold = |expires_at| PlaceHold {
            account: AccountId::parse("cust:a").unwrap(),
            amount: eur(1),
            expires_at,
            reference: String::new(),
        };
        assert!(
            hold(now.saturating_add_ms(HOLD_DURATION_MAX_MS))
                .check_expiry(now)
                .is_ok()
        );
        assert!(
            hold(now.saturating_add_ms(HOLD_DURATION_MAX_MS + 1))
                .check_expiry(now)
                .is_err()
        );
        assert!(hold(now.saturating_add_ms(1)).check_expiry(now).is_ok());
        assert!(hold(now).check_expiry(now).is_err());
        let mut reference = hold(now.saturating_add_ms(1));
        reference.reference = "r".repeat(REFERENCE_LEN_MAX);
        assert!(reference.validate(Currency::EUR).is_ok());
        reference.reference.push('r');
        assert!(reference.validate(Currency::EUR).is_err());
    }

    #[test]
    fn request_hashes_bind_kind_and_body() {
        let a = AccountId::parse("cust:a").unwrap();
        let b = AccountId::parse("cust:b").unwrap();
        let t = Transfer {
            from: a.clone(),
            to: b.clone(),
            amount: eur(5),
            reference: "r".into(),
        };
        let mut t2 = t.clone();
        t2.amount = eur(6);
        assert_ne!(t.request_hash(), t2.request_hash());
        assert_eq!(t.request_hash(), t.clone().request_hash());
        let d = Deposit {
            account: a.clone(),
            amount: eur(5),
            reference: "r".into(),
        };
        assert_ne!(t.request_hash(), d.request_hash());
        assert!(t.validate(Currency::EUR).is_ok());
        assert!(t.validate(Currency::USD).is_err());
        let mut same = t.clone();
        same.to = a.clone();
        assert!(same.validate(Currency::EUR).is_err());
        let mut long = t.clone();
        long.reference = "r".repeat(REFERENCE_LEN_MAX + 1);
        assert!(long.validate(Currency::EUR).is_err());
        let mut zero = t;
        zero.amount = eur(0);
        assert!(zero.validate(Currency::EUR).is_err());
    }

    #[test]
    fn receipts_round_trip_and_decoding_is_total() {
        let view = HoldView {
            id: HoldId(3),
            account: AccountId::parse("cust:a").unwrap(),
            amount: eur(5),
            reference: "pay-1".into(),
            placed_by: "cpp1".into(),
            expires_at: Timestamp(9),
            state: HoldState::Posted,
            created_at: Timestamp(1),
            resolved_at: Some(Timestamp(2)),
            posting: Some(PostingId(4)),
            destination: Some(Destination::Interbank {
                bank: PartyId::from_u64(2),
                account: AccountId::parse("shop:b").unwrap(),
            }),
            message: Some(InterbankId([7; 16])),
        };
        let bytes = view.to_wire();
        assert_eq!(HoldView::from_wire(&bytes), Ok(view));
        for cut in 0..bytes.len() {
            assert!(HoldView::from_wire(&bytes[..cut]).is_err());
        }
    }
}
