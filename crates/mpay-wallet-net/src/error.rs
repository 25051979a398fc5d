//! The node's errors. Each says whose fault it is: this phone's (store,
//! socket, configuration), the peer's (refused, silent), or nobody's (no buyer
//! nearby, deadline passed).

use std::io;

use mpay_identity::PartyId;
use mpay_offline::messages::AbortReason;
use mpay_offline::{ChargeError, RecoverError, SellError, TxId};
use mpay_wallet_store::StoreError;

/// Everything a [`crate::WalletNode`] can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The [`crate::NodeConfig`] is unusable (a local mistake).
    #[error("invalid node configuration: {0}")]
    Config(&'static str),
    /// A socket could not be set up or failed while receiving. Fatal: the
    /// node stopped.
    #[error("socket failure while {during}: {source}")]
    Socket {
        during: &'static str,
        #[source]
        source: io::Error,
    },
    /// The wallet store failed to make a batch durable. Fatal: the node
    /// stopped, and must be restarted from its store.
    #[error("wallet store failure, the node stopped: {0}")]
    Store(#[source] StoreError),
    /// An earlier store or socket failure stopped the node; restart it from
    /// its store.
    #[error("the node stopped after an earlier failure; restart it from its store")]
    Stopped,
    /// The wallet could not be rebuilt from its store.
    #[error("wallet could not be recovered from its store: {0}")]
    Recover(#[from] RecoverError),
    /// The engine refused to start the sale (owner's input).
    #[error("sale refused: {0}")]
    Sell(#[from] SellError),
    /// The engine refused the charge voucher.
    #[error("charge refused: {0}")]
    Charge(#[from] ChargeError),
    /// No acceptable wallet in buyer mode answered the LOOKUP in time.
    /// `refused` lists the buyers that answered but that this wallet will not
    /// take money from, with the reason (most recent first); `revoked` the
    /// ones that answered but are revoked by the money office.
    #[error(
        "no buyer nearby answered the LOOKUP ({} refused, {} revoked)",
        refused.len(),
        revoked.len()
    )]
    NoBuyerNearby {
        refused: Vec<(PartyId, AbortReason)>,
        revoked: Vec<PartyId>,
    },
    /// The chosen buyer is revoked by the money office (a double spend was
    /// caught): its answer to the LOOKUP was refused. Nothing was sold.
    #[error("buyer {0} is revoked by the money office")]
    BuyerRevoked(PartyId),
    /// The chosen buyer answered, but this wallet will not take its money
    /// (e.g. its last sync with the money office is too old).
    #[error("buyer {buyer} not acceptable: {reason:?}")]
    BuyerNotAcceptable { buyer: PartyId, reason: AbortReason },
    /// The chosen buyer did not answer the LOOKUP in time.
    #[error("buyer {0} did not answer the LOOKUP")]
    BuyerNotNearby(PartyId),
    /// The sale was aborted: by the buyer (not agreed, no funds, over a
    /// limit, busy, …) or by this seller because the buyer's authorization
    /// did not check out. Nothing was paid.
    #[error("sale {tx} refused: {reason:?}")]
    BuyerRefused { tx: TxId, reason: AbortReason },
    /// The buyer stopped answering the COMMIT-REQUEST; the sale was aborted
    /// (presumed abort). Nothing was paid.
    #[error("buyer did not answer; sale {tx} aborted")]
    BuyerSilent { tx: TxId },
    /// The owner stopped the operation before anything moved (a
    /// [`crate::Watch`] asked to). `tx`: the sale that was aborted, if it had
    /// started.
    #[error("stopped by the owner before anything moved")]
    Cancelled { tx: Option<TxId> },
    /// The deadline passed before the outcome was known. If `tx` is set, the
    /// transaction is still running in the engine: keep the node running
    /// ([`crate::WalletNode::run_until_settled`]) to learn how it ends.
    #[error("deadline passed while waiting for {waiting_for}")]
    Timeout {
        waiting_for: &'static str,
        tx: Option<TxId>,
    },
}

impl NodeError {
    /// True when the node stopped and must be restarted from its store.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            NodeError::Socket { .. } | NodeError::Store(_) | NodeError::Stopped
        )
    }

    /// True when a peer (or the absence of one) caused it, not this phone.
    pub fn is_peer_fault(&self) -> bool {
        matches!(
            self,
            NodeError::NoBuyerNearby { .. }
                | NodeError::BuyerNotAcceptable { .. }
                | NodeError::BuyerNotNearby(_)
                | NodeError::BuyerRevoked(_)
                | NodeError::BuyerRefused { .. }
                | NodeError::BuyerSilent { .. }
        )
    }
}
