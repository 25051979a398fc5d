//! The wallet's one error type: what went wrong, in words for the owner,
//! and which kind of failure it is (the CLI's exit codes and the bindings'
//! exceptions are chosen by the kind). No error carries a PIN, a token or a
//! key: the errors converted here carry none (the store's and the office
//! client's errors are built without them).

use mpay_identity::PartyId;
use mpay_office::http::ClientError;
use mpay_offline::messages::AbortReason;
use mpay_offline::{ChargeError, RecoverError, RedeemError, SellError, SyncError, TxId};
use mpay_wallet_net::NodeError;
use mpay_wallet_store::StoreError;

/// Everything a wallet operation can fail with. Each variant is a kind of
/// failure and carries the message for the owner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// The PIN does not open the store (or its first page is damaged).
    #[error("{0}")]
    WrongPin(String),
    /// Not enough funds in this wallet or the owner's office account.
    #[error("{0}")]
    InsufficientFunds(String),
    /// No buyer nearby answered (or the named buyer did not).
    #[error("{0}")]
    NoBuyerNearby(String),
    /// The peer refused, is revoked or expired, or the seller aborted.
    #[error("{0}")]
    Refused(String),
    /// An amount over the owner's maximum, the per-payment or the offline
    /// balance limit.
    #[error("{0}")]
    LimitExceeded(String),
    /// The money office could not be reached, or is unavailable.
    #[error("{0}")]
    OfficeUnreachable(String),
    /// A double spend was caught: this wallet is revoked, or its chain forks
    /// from the office's.
    #[error("{0}")]
    DoubleSpend(String),
    /// The deadline passed before the outcome was known.
    #[error("{0}")]
    Timeout(String),
    /// Several buyers answered and none was chosen.
    #[error("{message}")]
    SeveralBuyers {
        buyers: Vec<PartyId>,
        message: String,
    },
    /// The owner stopped the operation before anything moved.
    #[error("{0}")]
    Cancelled(String),
    /// Anything else: bad input, the office refused, damaged files, a store
    /// or socket failure.
    #[error("{0}")]
    Other(String),
}

impl WalletError {
    pub fn other(message: impl Into<String>) -> WalletError {
        WalletError::Other(message.into())
    }

    /// The message for the owner.
    pub fn message(&self) -> &str {
        match self {
            WalletError::WrongPin(m)
            | WalletError::InsufficientFunds(m)
            | WalletError::NoBuyerNearby(m)
            | WalletError::Refused(m)
            | WalletError::LimitExceeded(m)
            | WalletError::OfficeUnreachable(m)
            | WalletError::DoubleSpend(m)
            | WalletError::Timeout(m)
            | WalletError::Cancelled(m)
            | WalletError::Other(m)
            | WalletError::SeveralBuyers { message: m, .. } => m,
        }
    }

    fn message_mut(&mut self) -> &mut String {
        match self {
            WalletError::WrongPin(m)
            | WalletError::InsufficientFunds(m)
            | WalletError::NoBuyerNearby(m)
            | WalletError::Refused(m)
            | WalletError::LimitExceeded(m)
            | WalletError::OfficeUnreachable(m)
            | WalletError::DoubleSpend(m)
            | WalletError::Timeout(m)
            | WalletError::Cancelled(m)
            | WalletError::Other(m)
            | WalletError::SeveralBuyers { message: m, .. } => m,
        }
    }

    /// Prefixes the message with what was being done; the kind stays.
    pub fn context(mut self, doing: &str) -> WalletError {
        let message = self.message_mut();
        *message = format!("{doing}: {message}");
        self
    }

    /// The error for several buyers nearby and none chosen.
    pub fn several_buyers(buyers: &[PartyId]) -> WalletError {
        let list: Vec<String> = buyers.iter().map(|b| b.to_hex()).collect();
        WalletError::SeveralBuyers {
            buyers: buyers.to_vec(),
            message: format!(
                "several buyers nearby: {}; pass --buyer ID",
                list.join(", ")
            ),
        }
    }
}

impl From<StoreError> for WalletError {
    fn from(e: StoreError) -> WalletError {
        match e {
            StoreError::WrongPin => WalletError::WrongPin(
                "wrong PIN (or the wallet file is damaged beyond its first page)".into(),
            ),
            StoreError::NotFound { path } => WalletError::Other(format!(
                "no wallet at {} (create one with `mpay wallet init`, or pass --dir)",
                path.display()
            )),
            other => WalletError::Other(format!("wallet store: {other}")),
        }
    }
}

impl From<mpay_tls::TlsError> for WalletError {
    fn from(e: mpay_tls::TlsError) -> WalletError {
        WalletError::Other(format!("the network's CA: {e}"))
    }
}

impl From<RecoverError> for WalletError {
    fn from(e: RecoverError) -> WalletError {
        match e {
            RecoverError::Missing(what) => WalletError::Other(format!(
                "the wallet is not enrolled yet ({what} missing): run `mpay wallet enroll`"
            )),
            other => WalletError::Other(format!("the wallet could not be loaded: {other}")),
        }
    }
}

/// An office client error: whose fault, and which kind.
impl From<ClientError> for WalletError {
    fn from(e: ClientError) -> WalletError {
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
        match &e {
            ClientError::Unreachable { .. } => WalletError::OfficeUnreachable(message),
            ClientError::Refused { status, error } => match error.error.as_str() {
                "insufficient_funds" => WalletError::InsufficientFunds(message),
                "revoked" | "double_spend" => WalletError::DoubleSpend(message),
                _ if *status >= 500 => WalletError::OfficeUnreachable(message),
                _ => WalletError::Other(message),
            },
            ClientError::BadAnswer(_) | ClientError::Transport(_) => WalletError::Other(message),
        }
    }
}

impl From<SyncError> for WalletError {
    fn from(e: SyncError) -> WalletError {
        match e {
            SyncError::ForkedChain => WalletError::DoubleSpend(
                "the office attests a chain this wallet does not have: this wallet is a copy or \
                 an old backup whose chain forked (a double spend); do not spend from it"
                    .into(),
            ),
            other => WalletError::Other(format!("sync answer refused: {other}")),
        }
    }
}

impl From<ChargeError> for WalletError {
    fn from(e: ChargeError) -> WalletError {
        let message = format!("charge refused by the wallet: {e}");
        match e {
            ChargeError::OverLimit(_) => WalletError::LimitExceeded(message),
            _ => WalletError::Other(message),
        }
    }
}

impl From<RedeemError> for WalletError {
    fn from(e: RedeemError) -> WalletError {
        match e {
            RedeemError::InsufficientFunds { .. } => WalletError::InsufficientFunds(e.to_string()),
            RedeemError::InvalidAmount(_) => WalletError::Other(e.to_string()),
        }
    }
}

impl From<SellError> for WalletError {
    fn from(e: SellError) -> WalletError {
        WalletError::Other(format!("sale refused: {e}"))
    }
}

/// Why a buyer refused, as the seller sees it: what the buyer lacks (funds)
/// is not the seller's, so it is a refusal; a limit stays a limit.
fn seller_error(reason: AbortReason, message: String) -> WalletError {
    match reason {
        AbortReason::OverLimit => WalletError::LimitExceeded(message),
        _ => WalletError::Refused(message),
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

fn cancelled(tx: Option<TxId>) -> WalletError {
    WalletError::Cancelled(match tx {
        Some(tx) => format!(
            "sale {} cancelled before the commit, nothing was paid",
            tx.short()
        ),
        None => "cancelled before anything moved".to_owned(),
    })
}

impl From<NodeError> for WalletError {
    fn from(e: NodeError) -> WalletError {
        match e {
            NodeError::NoBuyerNearby { refused, revoked }
                if refused.is_empty() && revoked.is_empty() =>
            {
                WalletError::NoBuyerNearby("no buyer nearby answered the LOOKUP".into())
            }
            NodeError::NoBuyerNearby { refused, revoked } => {
                let list: Vec<String> = revoked
                    .iter()
                    .map(|b| {
                        format!(
                            "{} (revoked by the money office: a double spend was caught)",
                            b.short()
                        )
                    })
                    .chain(
                        refused
                            .iter()
                            .map(|(b, r)| format!("{} ({})", b.short(), abort_text(*r))),
                    )
                    .collect();
                WalletError::Refused(format!(
                    "no acceptable buyer nearby; refused: {}",
                    list.join(", ")
                ))
            }
            NodeError::BuyerNotNearby(buyer) => WalletError::NoBuyerNearby(format!(
                "buyer {buyer} did not answer the LOOKUP (is it in buyer mode?)"
            )),
            NodeError::BuyerRevoked(buyer) => WalletError::Refused(format!(
                "buyer {buyer} is revoked by the money office (a double spend was caught); \
                 nothing was sold"
            )),
            NodeError::BuyerNotAcceptable { buyer, reason } => WalletError::Refused(format!(
                "buyer {} not acceptable: {}",
                buyer.short(),
                abort_text(reason)
            )),
            NodeError::BuyerRefused { tx, reason } => seller_error(
                reason,
                format!(
                    "sale {} refused, nothing was paid: {}",
                    tx.short(),
                    abort_text(reason)
                ),
            ),
            NodeError::BuyerSilent { tx } => WalletError::Timeout(format!(
                "the buyer stopped answering; sale {} aborted, nothing was paid",
                tx.short()
            )),
            NodeError::Timeout { waiting_for, .. } => {
                WalletError::Timeout(format!("deadline passed while waiting for {waiting_for}"))
            }
            NodeError::Cancelled { tx } => cancelled(tx),
            NodeError::Sell(e) => WalletError::from(e),
            NodeError::Charge(e) => WalletError::from(e),
            NodeError::Recover(e) => WalletError::from(e),
            NodeError::Store(StoreError::WrongPin) => WalletError::from(StoreError::WrongPin),
            other => WalletError::Other(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buyer_without_funds_is_a_refusal_for_the_seller() {
        // Issue 16: the seller exited 4 ("insufficient funds") when the buyer lacked funds.
        let error = WalletError::from(NodeError::BuyerRefused {
            tx: TxId([7; 16]),
            reason: AbortReason::InsufficientFunds,
        });
        assert!(matches!(error, WalletError::Refused(_)), "{error:?}");
        assert!(
            error.message().contains("the buyer has insufficient funds"),
            "{error}"
        );
        let limit = WalletError::from(NodeError::BuyerRefused {
            tx: TxId([7; 16]),
            reason: AbortReason::OverLimit,
        });
        assert!(
            matches!(limit, WalletError::LimitExceeded(_)),
            "a limit stays a limit"
        );
    }

    #[test]
    fn a_revoked_buyer_is_a_refusal_not_an_absent_buyer() {
        // Issue 16: a seller was told the revoked buyer "did not answer".
        let buyer = PartyId::from_u64(7);
        let error = WalletError::from(NodeError::BuyerRevoked(buyer));
        assert_eq!(
            error,
            WalletError::Refused(format!(
                "buyer {buyer} is revoked by the money office (a double spend was caught); \
                 nothing was sold"
            ))
        );
        let error = WalletError::from(NodeError::NoBuyerNearby {
            refused: Vec::new(),
            revoked: vec![buyer],
        });
        assert!(matches!(error, WalletError::Refused(_)), "{error:?}");
        assert!(error.message().contains("revoked"), "{error}");
    }

    #[test]
    fn context_keeps_the_kind() {
        let error = WalletError::OfficeUnreachable("down".into()).context("wallet created");
        assert_eq!(
            error,
            WalletError::OfficeUnreachable("wallet created: down".into())
        );
    }
}
