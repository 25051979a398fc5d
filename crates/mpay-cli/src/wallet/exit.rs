//! How a wallet command fails: a message for the person, an exit code for
//! scripts, and whose fault it is. No failure carries a PIN, a token or a
//! key: the errors converted here carry none (the store's and the office
//! client's errors are built without them).

use mpay_identity::PartyId;
use mpay_office::http::ClientError;
use mpay_offline::messages::AbortReason;
use mpay_offline::{ChargeError, RecoverError, RedeemError, SellError, SyncError};
use mpay_wallet_net::NodeError;
use mpay_wallet_store::StoreError;

/// The exit codes (documented in [`super::EXIT_CODES_HELP`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Other,
    WrongPin,
    InsufficientFunds,
    NoBuyerNearby,
    Refused,
    LimitExceeded,
    OfficeUnreachable,
    DoubleSpend,
    Timeout,
    SeveralBuyers,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Other => 1,
            Exit::WrongPin => 3,
            Exit::InsufficientFunds => 4,
            Exit::NoBuyerNearby => 5,
            Exit::Refused => 6,
            Exit::LimitExceeded => 7,
            Exit::OfficeUnreachable => 8,
            Exit::DoubleSpend => 9,
            Exit::Timeout => 10,
            Exit::SeveralBuyers => 11,
        }
    }

    /// The name in `--json` output.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Other => "error",
            Exit::WrongPin => "wrong_pin",
            Exit::InsufficientFunds => "insufficient_funds",
            Exit::NoBuyerNearby => "no_buyer_nearby",
            Exit::Refused => "refused",
            Exit::LimitExceeded => "limit_exceeded",
            Exit::OfficeUnreachable => "office_unreachable",
            Exit::DoubleSpend => "double_spend",
            Exit::Timeout => "timeout",
            Exit::SeveralBuyers => "several_buyers",
        }
    }
}

/// A failed command.
#[derive(Debug)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    /// Extra fields for `--json` (e.g. the buyers nearby).
    pub details: Option<serde_json::Value>,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
            details: None,
        }
    }

    pub fn other(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Other, message)
    }

    pub fn with_details(mut self, details: serde_json::Value) -> Failure {
        self.details = Some(details);
        self
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, doing: &str) -> Failure {
        self.message = format!("{doing}: {}", self.message);
        self
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        match e {
            StoreError::WrongPin => Failure::new(
                Exit::WrongPin,
                "wrong PIN (or the wallet file is damaged beyond its first page)",
            ),
            StoreError::NotFound { path } => Failure::other(format!(
                "no wallet at {} (create one with `mpay wallet init`, or pass --dir)",
                path.display()
            )),
            other => Failure::other(format!("wallet store: {other}")),
        }
    }
}

impl From<mpay_tls::TlsError> for Failure {
    fn from(e: mpay_tls::TlsError) -> Failure {
        Failure::other(format!("the network's CA: {e}"))
    }
}

impl From<RecoverError> for Failure {
    fn from(e: RecoverError) -> Failure {
        match e {
            RecoverError::Missing(what) => Failure::other(format!(
                "the wallet is not enrolled yet ({what} missing): run `mpay wallet enroll`"
            )),
            other => Failure::other(format!("the wallet could not be loaded: {other}")),
        }
    }
}

/// An office client error: whose fault, and which code.
impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        let exit = match &e {
            ClientError::Unreachable { .. } => Exit::OfficeUnreachable,
            ClientError::Refused { status, error } => match error.error.as_str() {
                "insufficient_funds" => Exit::InsufficientFunds,
                "revoked" | "double_spend" => Exit::DoubleSpend,
                _ if *status >= 500 => Exit::OfficeUnreachable,
                _ => Exit::Other,
            },
            ClientError::BadAnswer(_) | ClientError::Transport(_) => Exit::Other,
        };
        let message = match &e {
            ClientError::Refused { error, .. } if error.error == "unauthorized" => {
                "the money office refused the owner token (pass the right one with --token or \
                 MPAY_OWNER_TOKEN)"
                    .to_owned()
            }
            ClientError::Refused { error, .. } if error.error == "double_spend" => format!(
                "DOUBLE SPEND: the money office caught this wallet spending the same value twice \
                 (a copied or restored wallet); it is revoked and its owner charged. Office: {}",
                error.message
            ),
            ClientError::Refused { error, .. } if error.error == "revoked" => format!(
                "this wallet is revoked by the money office (a double spend was caught): {}",
                error.message
            ),
            _ => e.to_string(),
        };
        Failure::new(exit, message)
    }
}

impl From<SyncError> for Failure {
    fn from(e: SyncError) -> Failure {
        match e {
            SyncError::ForkedChain => Failure::new(
                Exit::DoubleSpend,
                "the office attests a chain this wallet does not have: this wallet is a copy or \
                 an old backup whose chain forked (a double spend); do not spend from it",
            ),
            other => Failure::other(format!("sync answer refused: {other}")),
        }
    }
}

impl From<ChargeError> for Failure {
    fn from(e: ChargeError) -> Failure {
        let exit = match e {
            ChargeError::OverLimit(_) => Exit::LimitExceeded,
            _ => Exit::Other,
        };
        Failure::new(exit, format!("charge refused by the wallet: {e}"))
    }
}

impl From<RedeemError> for Failure {
    fn from(e: RedeemError) -> Failure {
        let exit = match e {
            RedeemError::InsufficientFunds { .. } => Exit::InsufficientFunds,
            RedeemError::InvalidAmount(_) => Exit::Other,
        };
        Failure::new(exit, e.to_string())
    }
}

/// Why a buyer refused, as an exit code.
pub fn abort_exit(reason: AbortReason) -> Exit {
    match reason {
        AbortReason::InsufficientFunds => Exit::InsufficientFunds,
        AbortReason::OverLimit => Exit::LimitExceeded,
        _ => Exit::Refused,
    }
}

/// Why a buyer refused, as the seller's exit code: what the buyer lacks
/// (funds) is not the seller's, so it is a refusal (6), not 4.
pub fn seller_exit(reason: AbortReason) -> Exit {
    match abort_exit(reason) {
        Exit::InsufficientFunds => Exit::Refused,
        other => other,
    }
}

/// An abort reason for people.
pub fn abort_text(reason: AbortReason) -> &'static str {
    match reason {
        AbortReason::SellerDecided => "the seller aborted",
        AbortReason::UnknownTransaction => "no record of the transaction (presumed abort)",
        AbortReason::NotAgreed => "the buyer did not agree to this amount (over its --max?)",
        AbortReason::InsufficientFunds => "the buyer has insufficient funds",
        AbortReason::OverLimit => "the amount is over a certificate limit",
        AbortReason::WrongCurrency => "wrong currency",
        AbortReason::BadAuthorization => "the buyer's payment authorization did not check out",
        AbortReason::Busy => "too many transactions in flight",
        AbortReason::InvalidAmount => "invalid amount",
        AbortReason::SyncTooOld => {
            "the buyer's last sync with the money office is too old, or it made too many \
             payments since (it must sync)"
        }
        AbortReason::NoAnswer => "no answer in time",
    }
}

fn short(id: &PartyId) -> String {
    id.short()
}

impl From<NodeError> for Failure {
    fn from(e: NodeError) -> Failure {
        match e {
            NodeError::NoBuyerNearby { refused, revoked }
                if refused.is_empty() && revoked.is_empty() =>
            {
                Failure::new(Exit::NoBuyerNearby, "no buyer nearby answered the LOOKUP")
            }
            NodeError::NoBuyerNearby { refused, revoked } => {
                let list: Vec<String> = revoked
                    .iter()
                    .map(|b| {
                        format!(
                            "{} (revoked by the money office: a double spend was caught)",
                            short(b)
                        )
                    })
                    .chain(
                        refused
                            .iter()
                            .map(|(b, r)| format!("{} ({})", short(b), abort_text(*r))),
                    )
                    .collect();
                Failure::new(
                    Exit::Refused,
                    format!("no acceptable buyer nearby; refused: {}", list.join(", ")),
                )
            }
            NodeError::BuyerNotNearby(buyer) => Failure::new(
                Exit::NoBuyerNearby,
                format!("buyer {buyer} did not answer the LOOKUP (is it in buyer mode?)"),
            ),
            NodeError::BuyerRevoked(buyer) => Failure::new(
                Exit::Refused,
                format!(
                    "buyer {buyer} is revoked by the money office (a double spend was caught); \
                     nothing was sold"
                ),
            ),
            NodeError::BuyerNotAcceptable { buyer, reason } => Failure::new(
                Exit::Refused,
                format!(
                    "buyer {} not acceptable: {}",
                    short(&buyer),
                    abort_text(reason)
                ),
            ),
            NodeError::BuyerRefused { tx, reason } => Failure::new(
                seller_exit(reason),
                format!(
                    "sale {} refused, nothing was paid: {}",
                    tx.short(),
                    abort_text(reason)
                ),
            ),
            NodeError::BuyerSilent { tx } => Failure::new(
                Exit::Timeout,
                format!(
                    "the buyer stopped answering; sale {} aborted, nothing was paid",
                    tx.short()
                ),
            ),
            NodeError::Timeout { waiting_for, .. } => Failure::new(
                Exit::Timeout,
                format!("deadline passed while waiting for {waiting_for}"),
            ),
            NodeError::Sell(e) => Failure::from(e),
            NodeError::Charge(e) => Failure::from(e),
            NodeError::Recover(e) => Failure::from(e),
            NodeError::Store(StoreError::WrongPin) => Failure::from(StoreError::WrongPin),
            other => Failure::other(other.to_string()),
        }
    }
}

impl From<SellError> for Failure {
    fn from(e: SellError) -> Failure {
        Failure::other(format!("sale refused: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buyer_without_funds_is_a_refusal_for_the_seller() {
        // Issue 16: the seller exited 4 ("insufficient funds") when the buyer lacked funds.
        let failure = Failure::from(NodeError::BuyerRefused {
            tx: mpay_offline::TxId([7; 16]),
            reason: AbortReason::InsufficientFunds,
        });
        assert_eq!(failure.exit, Exit::Refused);
        assert_eq!(failure.exit.code(), 6);
        assert!(
            failure.message.contains("the buyer has insufficient funds"),
            "{}",
            failure.message
        );
        assert_eq!(
            seller_exit(AbortReason::OverLimit),
            Exit::LimitExceeded,
            "a limit stays a limit"
        );
    }

    #[test]
    fn a_revoked_buyer_is_a_refusal_not_an_absent_buyer() {
        // Issue 16: a seller was told the revoked buyer "did not answer".
        let buyer = PartyId::from_u64(7);
        let failure = Failure::from(NodeError::BuyerRevoked(buyer));
        assert_eq!(failure.exit, Exit::Refused);
        assert_eq!(
            failure.message,
            format!(
                "buyer {buyer} is revoked by the money office (a double spend was caught); \
                 nothing was sold"
            )
        );
        let failure = Failure::from(NodeError::NoBuyerNearby {
            refused: Vec::new(),
            revoked: vec![buyer],
        });
        assert_eq!(failure.exit, Exit::Refused);
        assert!(failure.message.contains("revoked"), "{}", failure.message);
    }

    #[test]
    fn several_buyers_have_their_own_exit_code() {
        let codes: Vec<u8> = [
            Exit::Other,
            Exit::WrongPin,
            Exit::InsufficientFunds,
            Exit::NoBuyerNearby,
            Exit::Refused,
            Exit::LimitExceeded,
            Exit::OfficeUnreachable,
            Exit::DoubleSpend,
            Exit::Timeout,
            Exit::SeveralBuyers,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        let mut distinct = codes.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), codes.len(), "{codes:?}");
        assert_eq!(Exit::SeveralBuyers.code(), 11);
        assert!(super::super::EXIT_CODES_HELP.contains("\n  11  several buyers nearby"));
    }
}
