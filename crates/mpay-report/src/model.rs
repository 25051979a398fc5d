//! The report's data: plain structs the demo fills while it runs, saved as
//! JSON beside the HTML page.
//!
//! Conventions used by every field:
//! - money is an `i64` count of minor units (cents for EUR) of the report's
//!   currency unless a row names its own; no floats;
//! - a time inside the run (`*_ms` with a `t`, or `started_ms`,
//!   `caught_at_ms`) counts milliseconds since the demo started
//!   ([`DemoReport::started_at_ms`]); the charts show it in seconds;
//! - latencies are `f64` milliseconds (they are measurements, not money).

use mpay_money::Currency;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Version of the JSON form of [`DemoReport`]. Bumped when a field changes
/// meaning; [`DemoReport::from_json`] refuses other versions.
pub const REPORT_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Error)]
pub enum ReportError {
    /// The JSON handed to [`DemoReport::from_json`] is not a report (the
    /// caller's input is at fault).
    #[error("report JSON is malformed: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is a report of a format this build does not read.
    #[error("report format version {found} is not supported (this build reads {expected})")]
    UnsupportedVersion { found: u32, expected: u32 },
    /// A latency sample is NaN or infinite; JSON cannot carry it, so the
    /// producer of the report measured something wrong.
    #[error("latency series {kind:?} holds a sample that is not a finite number")]
    NonFiniteLatency { kind: String },
}

/// Everything the demo's report shows. Fill it field by field; every list may
/// be empty (the page then says there is no data instead of drawing a chart).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DemoReport {
    /// [`REPORT_FORMAT_VERSION`] for reports made by this build.
    pub format_version: u32,
    /// Page and terminal heading, e.g. "mpay demo".
    pub title: String,
    /// The seed that replays this run (`mpay demo --seed`).
    pub seed: u64,
    /// Wall-clock start of the run, milliseconds since the Unix epoch (shown
    /// in UTC). Every other time in the report is relative to it.
    pub started_at_ms: u64,
    /// Length of the run in milliseconds; the time axes span it.
    pub duration_ms: u64,
    /// The report's currency: money fields without their own currency are
    /// minor units of this one.
    #[serde(with = "currency_code")]
    pub currency: Currency,
    /// Where the services kept their data, e.g. "SQLite" or "PostgreSQL 15";
    /// empty when it does not apply.
    #[serde(default)]
    pub backend: String,
    /// The scripted day's phases in order.
    pub phases: Vec<Phase>,
    /// Money held by each party over time.
    pub money: Vec<PartySeries>,
    /// Latency samples per payment kind.
    pub latencies: Vec<LatencySeries>,
    /// Payment counts per (kind, outcome).
    pub outcomes: Vec<OutcomeRow>,
    /// Pending micropayment totals at the CPP, per customer or cluster.
    pub micro: Vec<PendingSeries>,
    /// Double spends caught, each with its fraud proof.
    pub frauds: Vec<FraudCase>,
    /// Money per party at the start and at the end of the run.
    pub balances: Vec<BalanceRow>,
    /// Invariants checked at the end of the run; the verdict is "held" only
    /// when this list is non-empty and every check is ok.
    pub invariants: Vec<InvariantCheck>,
}

/// One phase of the scripted day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// Short name, e.g. "offline purchases".
    pub name: String,
    /// Start, ms since the run started.
    pub started_ms: u64,
    /// Length in ms.
    pub duration_ms: u64,
    /// What happens in it, one sentence per line (two lines is the norm).
    pub lines: Vec<String>,
}

/// What kind of party holds money; the money chart draws one panel per kind
/// (and currency), in this enum's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartyKind {
    /// An offline wallet on a phone.
    Wallet,
    /// A customer's or merchant's account at a bank.
    BankAccount,
    /// A bank's settlement account with a peer bank.
    Settlement,
    /// An account in the money office's books (float, loss, owners).
    MoneyOffice,
    /// A customer payment processor's own account.
    Cpp,
    /// A merchant payment processor's own account.
    Mpp,
    /// A merchant's takings outside a bank account.
    Merchant,
    /// Anything else.
    Other,
}

impl PartyKind {
    /// Every kind, in panel order.
    pub const ALL: [PartyKind; 8] = [
        PartyKind::Wallet,
        PartyKind::BankAccount,
        PartyKind::Settlement,
        PartyKind::MoneyOffice,
        PartyKind::Cpp,
        PartyKind::Mpp,
        PartyKind::Merchant,
        PartyKind::Other,
    ];

    /// Singular label, e.g. "bank account".
    pub fn label(self) -> &'static str {
        match self {
            PartyKind::Wallet => "wallet",
            PartyKind::BankAccount => "bank account",
            PartyKind::Settlement => "settlement account",
            PartyKind::MoneyOffice => "money office",
            PartyKind::Cpp => "CPP",
            PartyKind::Mpp => "MPP",
            PartyKind::Merchant => "merchant",
            PartyKind::Other => "other",
        }
    }

    /// Plural label for a panel title, e.g. "Bank accounts".
    pub fn plural(self) -> &'static str {
        match self {
            PartyKind::Wallet => "Wallets",
            PartyKind::BankAccount => "Bank accounts",
            PartyKind::Settlement => "Settlement accounts",
            PartyKind::MoneyOffice => "Money office",
            PartyKind::Cpp => "CPPs",
            PartyKind::Mpp => "MPPs",
            PartyKind::Merchant => "Merchants",
            PartyKind::Other => "Other parties",
        }
    }

    /// The parties of one kind in a sentence ("5 other office accounts").
    pub fn members(self) -> &'static str {
        match self {
            PartyKind::Wallet => "wallets",
            PartyKind::BankAccount => "bank accounts",
            PartyKind::Settlement => "settlement accounts",
            PartyKind::MoneyOffice => "office accounts",
            PartyKind::Cpp => "CPPs",
            PartyKind::Mpp => "MPPs",
            PartyKind::Merchant => "merchants",
            PartyKind::Other => "parties",
        }
    }
}

/// Money held by one party over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartySeries {
    /// The party's display name, e.g. "wallet alice" or "bank-1:acct-17".
    pub party: String,
    pub kind: PartyKind,
    /// The series' currency when it is not the report's.
    #[serde(default, with = "opt_currency_code")]
    pub currency: Option<Currency>,
    /// `(t_ms, balance_minor)`: the balance from `t_ms` on, until the next
    /// point. Start with the opening balance at t = 0; the chart holds the
    /// last value to the end of the run. Order does not matter.
    pub points: Vec<(u64, i64)>,
}

/// Latency samples of one payment kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencySeries {
    /// e.g. "offline purchase", "macro domestic", "macro international",
    /// "micro".
    pub kind: String,
    /// End-to-end latency of each payment of this kind, in milliseconds.
    /// Must be finite; negative values are drawn at the axis floor.
    pub samples_ms: Vec<f64>,
}

/// How many payments of one kind ended one way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeRow {
    /// Payment kind, the same words as [`LatencySeries::kind`].
    pub kind: String,
    /// e.g. "completed", "rejected", "expired", "refunded", "aborted".
    pub outcome: String,
    pub count: u64,
}

/// One customer's (or one k-means cluster's) pending micropayment total at
/// the CPP over time, against its threshold θ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSeries {
    /// Customer pseudonym or cluster name.
    pub label: String,
    /// The threshold θ in minor units: at θ the CPP makes one bank transfer.
    pub theta_minor: i64,
    /// The time window a pending total may wait, in ms.
    pub window_ms: u64,
    /// `(t_ms, pending_minor)`: the pending total from `t_ms` on.
    pub points: Vec<(u64, i64)>,
    /// Times (ms since start) at which the pending total was settled by a
    /// bank transfer.
    pub settlements: Vec<u64>,
}

/// One side of a fork: a signed chain entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkEntry {
    /// The signed entry's wire bytes (or its hash), lower-case hex.
    pub hex: String,
    /// What the entry says, e.g. "pay 5.00 EUR to shop-2"; may be empty.
    #[serde(default)]
    pub summary: String,
}

/// A double spend caught at sync, with its proof: two different signed
/// entries of one wallet with one sequence number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FraudCase {
    /// The cheating wallet's id.
    pub wallet: String,
    /// The wallet's owner, whom the proof names.
    pub owner: String,
    /// The sequence number both entries carry.
    pub seq: u64,
    /// The entry the office saw first.
    pub first: ForkEntry,
    /// The conflicting entry.
    pub second: ForkEntry,
    /// What the office charged the owner, minor units of the report currency.
    pub charged_minor: i64,
    /// When the office caught it, ms since start.
    pub caught_at_ms: u64,
    /// Which sync revealed it, e.g. "sync of shop-2".
    pub caught_by: String,
    /// The office revoked the wallet's certificate.
    pub revoked: bool,
}

/// A party's money at the start and the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub party: String,
    pub kind: PartyKind,
    /// The row's currency when it is not the report's; totals are per
    /// currency.
    #[serde(default, with = "opt_currency_code")]
    pub currency: Option<Currency>,
    pub before_minor: i64,
    pub after_minor: i64,
}

/// One invariant checked at the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantCheck {
    /// e.g. "conservation (EUR)".
    pub name: String,
    pub ok: bool,
    /// The evidence, e.g. "sum before 12 000.00 EUR = sum after".
    pub detail: String,
}

impl DemoReport {
    /// An empty report of the current format.
    pub fn new(
        title: impl Into<String>,
        seed: u64,
        started_at_ms: u64,
        currency: Currency,
    ) -> Self {
        DemoReport {
            format_version: REPORT_FORMAT_VERSION,
            title: title.into(),
            seed,
            started_at_ms,
            duration_ms: 0,
            currency,
            backend: String::new(),
            phases: Vec::new(),
            money: Vec::new(),
            latencies: Vec::new(),
            outcomes: Vec::new(),
            micro: Vec::new(),
            frauds: Vec::new(),
            balances: Vec::new(),
            invariants: Vec::new(),
        }
    }

    /// True when at least one invariant was checked and all held.
    pub fn all_invariants_held(&self) -> bool {
        !self.invariants.is_empty() && self.invariants.iter().all(|c| c.ok)
    }

    /// The checks that failed.
    pub fn failed_invariants(&self) -> impl Iterator<Item = &InvariantCheck> {
        self.invariants.iter().filter(|c| !c.ok)
    }

    /// Pretty JSON. Refuses non-finite latency samples, which JSON cannot
    /// carry.
    pub fn to_json(&self) -> Result<String, ReportError> {
        if let Some(series) = self
            .latencies
            .iter()
            .find(|s| s.samples_ms.iter().any(|v| !v.is_finite()))
        {
            return Err(ReportError::NonFiniteLatency {
                kind: series.kind.clone(),
            });
        }
        Ok(serde_json::to_string_pretty(self)?)
    }

    /// Reads a report written by [`DemoReport::to_json`].
    pub fn from_json(text: &str) -> Result<Self, ReportError> {
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let version: Version = serde_json::from_str(text)?;
        if version.format_version != REPORT_FORMAT_VERSION {
            return Err(ReportError::UnsupportedVersion {
                found: version.format_version,
                expected: REPORT_FORMAT_VERSION,
            });
        }
        Ok(serde_json::from_str(text)?)
    }
}

/// Serde for a [`Currency`] as its ISO 4217 code.
mod currency_code {
    use mpay_money::Currency;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(currency: &Currency, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(currency.code())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Currency, D::Error> {
        let code = String::deserialize(d)?;
        code.parse().map_err(D::Error::custom)
    }
}

/// Serde for an optional [`Currency`].
mod opt_currency_code {
    use mpay_money::Currency;
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(currency: &Option<Currency>, s: S) -> Result<S::Ok, S::Error> {
        match currency {
            Some(c) => s.serialize_some(c.code()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Currency>, D::Error> {
        let code = Option::<String>::deserialize(d)?;
        code.map(|c| c.parse().map_err(D::Error::custom))
            .transpose()
    }
}
