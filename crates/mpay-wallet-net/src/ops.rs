//! The owner's blocking operations: sell, buy. Each runs the loop up to a
//! deadline and reads the engine's events to learn the outcome; the events
//! stay queued for [`WalletNode::poll_event`].

use std::time::{Duration, Instant};

use mpay_identity::PartyId;
use mpay_money::Amount;
use mpay_offline::messages::{AbortReason, Shipping};
use mpay_offline::{BuyIntent, Event, TxId};

use crate::{NodeError, WalletNode};

/// Most buyers a [`SaleOutcome::ChooseBuyer`] lists.
pub const BUYERS_LISTED_MAX: usize = 32;

/// How a sale ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaleOutcome {
    /// The buyer acknowledged the COMMIT: the money is the seller's and the
    /// transaction is closed.
    Completed {
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
    },
    /// The sale is committed (the money is the seller's: its `Receive` entry
    /// is durable) but the buyer's acknowledgement had not arrived by the
    /// deadline. The engine keeps resending COMMIT while the node runs.
    CommittedUnacknowledged {
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
    },
    /// Several buyers answered and none was named: ask the person, then call
    /// `sell` again naming one. Most recent answer first, at most
    /// [`BUYERS_LISTED_MAX`].
    ChooseBuyer { buyers: Vec<PartyId> },
}

/// A seller's request as the buyer's owner should see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequest {
    pub tx: TxId,
    pub seller: PartyId,
    pub amount: Amount,
    pub description: String,
    /// Whether the wallet agreed (within the intent, funds and limits).
    pub accepted: bool,
}

/// How a purchase ended, when it did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurchaseOutcome {
    /// The payment is committed: the money is gone to the seller.
    Paid {
        tx: TxId,
        seller: PartyId,
        amount: Amount,
    },
    /// The seller aborted after the wallet agreed; the amount is back.
    Aborted { tx: TxId, amount: Amount },
    /// The wallet agreed and the amount is locked, but the seller's decision
    /// had not arrived by the deadline. Keep the node running: the engine
    /// asks the seller (STATUS) until it learns the outcome.
    Uncertain {
        tx: TxId,
        seller: PartyId,
        amount: Amount,
    },
    /// The claim deadline passed with the outcome unknown: only the money
    /// office can settle it now.
    AwaitingOffice { tx: TxId },
}

/// What the LOOKUP phase found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The named buyer, or the only acceptable one that answered.
    One(PartyId),
    /// Several answered and none was named: most recent answer first, at
    /// most [`BUYERS_LISTED_MAX`].
    Several(Vec<PartyId>),
}

/// Who watches an owner's operation while it runs: asked before every turn
/// of its loop, with the node (whose events so far [`WalletNode::events_after`]
/// shows), whether to stop. The unit type never stops.
///
/// A stop is honoured only where nothing moved yet: during the LOOKUP, while
/// the seller waits for the buyer's agreement (the sale is then aborted, as
/// a seller that hears nothing does), and while a buyer has agreed to
/// nothing. A committed sale and a prepared payment run on.
pub trait Watch {
    /// True to stop the operation at this turn.
    fn turn(&mut self, node: &WalletNode) -> bool;
}

impl Watch for () {
    fn turn(&mut self, _node: &WalletNode) -> bool {
        false
    }
}

impl WalletNode {
    /// Sells `amount` to a buyer nearby, blocking up to `deadline`.
    ///
    /// Broadcasts LOOKUP (repeated every [`crate::NodeConfig::lookup_interval_ms`])
    /// and collects the buyers that answer for up to `lookup_wait`. Buyers
    /// this wallet will not take money from (the engine's `BuyerRefused`,
    /// e.g. a sync too old) are left out. With `buyer` given, the sale starts
    /// as soon as that buyer answers; without, it starts with the only buyer
    /// that answered, or returns [`SaleOutcome::ChooseBuyer`] when several
    /// did. It then drives the
    /// two-phase commit until the sale completes, aborts, or the deadline
    /// passes (a committed sale is then
    /// [`SaleOutcome::CommittedUnacknowledged`], not a failure).
    pub fn sell(
        &mut self,
        amount: Amount,
        description: &str,
        buyer: Option<PartyId>,
        lookup_wait: Duration,
        deadline: Instant,
    ) -> Result<SaleOutcome, NodeError> {
        let lookup_until = deadline.min(Instant::now() + lookup_wait);
        let buyer = match self.find_buyers(buyer, lookup_until, &mut ())? {
            Found::One(buyer) => buyer,
            Found::Several(buyers) => return Ok(SaleOutcome::ChooseBuyer { buyers }),
        };
        let tx = self.start_sale(buyer, amount, description)?;
        self.finish_sale(tx, buyer, amount, deadline, &mut ())
    }

    /// Starts the two-phase commit of a sale to `buyer` (sends the
    /// COMMIT-REQUEST); [`WalletNode::finish_sale`] drives it.
    pub fn start_sale(
        &mut self,
        buyer: PartyId,
        amount: Amount,
        description: &str,
    ) -> Result<TxId, NodeError> {
        Ok(self.command(|wallet, now| wallet.sell(now, buyer, amount, description))??)
    }

    /// Drives the sale `tx` until it completes, aborts, or `deadline` passes
    /// (see [`WalletNode::sell`]). A stop asked by `watch` before the commit
    /// aborts the sale ([`NodeError::Cancelled`]); after it, the sale runs on.
    pub fn finish_sale(
        &mut self,
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
        deadline: Instant,
        watch: &mut dyn Watch,
    ) -> Result<SaleOutcome, NodeError> {
        let mut seen = self.event_seq();
        loop {
            let mut ended = None;
            for (seq, event) in self.events_after(seen) {
                seen = *seq;
                match event {
                    Event::SaleCompleted { tx: t } if *t == tx => {
                        ended = Some(Ok(SaleOutcome::Completed { tx, buyer, amount }));
                    }
                    Event::SaleAborted { tx: t, reason } if *t == tx => {
                        ended = Some(Err(sale_aborted(tx, *reason)));
                    }
                    _ => {}
                }
            }
            // The wallet's state decides too, should the event have been
            // pushed out of a full queue.
            let committed = self.wallet().received(&tx);
            if ended.is_none() && committed && !self.wallet().committing_txs().any(|t| t == tx) {
                ended = Some(Ok(SaleOutcome::Completed { tx, buyer, amount }));
            }
            if let Some(outcome) = ended {
                return outcome;
            }
            if !committed
                && watch.turn(self)
                && self.command(|wallet, now| wallet.cancel_sale(now, tx))?
            {
                return Err(NodeError::Cancelled { tx: Some(tx) });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return if committed {
                    Ok(SaleOutcome::CommittedUnacknowledged { tx, buyer, amount })
                } else {
                    Err(NodeError::Timeout {
                        waiting_for: "the buyer's agreement",
                        tx: Some(tx),
                    })
                };
            }
            self.step(left)?;
        }
    }

    /// LOOKUP until `wanted` answers, or until `until` collecting everyone
    /// who does (the first half of [`WalletNode::sell`]). A stop asked by
    /// `watch` ends it with [`NodeError::Cancelled`].
    pub fn find_buyers(
        &mut self,
        wanted: Option<PartyId>,
        until: Instant,
        watch: &mut dyn Watch,
    ) -> Result<Found, NodeError> {
        let interval = Duration::from_millis(self.config().lookup_interval_ms);
        let mut seen = self.event_seq();
        let mut found: Vec<PartyId> = Vec::new();
        let mut refused: Vec<(PartyId, AbortReason)> = Vec::new();
        let mut revoked: Vec<PartyId> = Vec::new();
        let mut next_lookup = Instant::now();
        loop {
            let now = Instant::now();
            if now >= next_lookup {
                self.command(|wallet, now| wallet.lookup(now))?;
                next_lookup = now + interval;
            }
            for (seq, event) in self.events_after(seen) {
                seen = *seq;
                match event {
                    Event::BuyerFound { buyer } => {
                        refused.retain(|(b, _)| b != buyer);
                        found.retain(|b| b != buyer);
                        found.insert(0, *buyer);
                        found.truncate(BUYERS_LISTED_MAX);
                    }
                    Event::BuyerRefused { buyer, reason } => {
                        found.retain(|b| b != buyer);
                        refused.retain(|(b, _)| b != buyer);
                        refused.insert(0, (*buyer, *reason));
                        refused.truncate(BUYERS_LISTED_MAX);
                    }
                    Event::BuyerRevoked { buyer } => {
                        found.retain(|b| b != buyer);
                        refused.retain(|(b, _)| b != buyer);
                        revoked.retain(|b| b != buyer);
                        revoked.insert(0, *buyer);
                        revoked.truncate(BUYERS_LISTED_MAX);
                    }
                    _ => {}
                }
            }
            if let Some(wanted) = wanted {
                if found.contains(&wanted) {
                    return Ok(Found::One(wanted));
                }
                if revoked.contains(&wanted) {
                    return Err(NodeError::BuyerRevoked(wanted));
                }
                if let Some((_, reason)) = refused.iter().find(|(b, _)| *b == wanted) {
                    return Err(NodeError::BuyerNotAcceptable {
                        buyer: wanted,
                        reason: *reason,
                    });
                }
            }
            if watch.turn(self) {
                return Err(NodeError::Cancelled { tx: None });
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            self.step(until.min(next_lookup).saturating_duration_since(now))?;
        }
        match (wanted, found.as_slice()) {
            // Silent, but this wallet's revocation list names it: that is
            // why no answer of its would ever be taken.
            (Some(wanted), _) if self.wallet().trust().is_revoked(&wanted) => {
                Err(NodeError::BuyerRevoked(wanted))
            }
            (Some(wanted), _) => Err(NodeError::BuyerNotNearby(wanted)),
            (None, []) => Err(NodeError::NoBuyerNearby { refused, revoked }),
            (None, [only]) => Ok(Found::One(*only)),
            (None, _) => Ok(Found::Several(found)),
        }
    }

    /// Buys within `intent`, blocking up to `deadline`.
    ///
    /// Enters buyer mode (answers LOOKUPs from sellers the intent allows),
    /// shows every seller's request to `on_request` (with whether the wallet
    /// accepted it), pays the first request within the intent, and drives
    /// the payment until it is committed or aborted. If no request was
    /// accepted by the deadline, buyer mode ends and the result is
    /// [`NodeError::Timeout`]; if one was accepted but its outcome is
    /// unknown, [`PurchaseOutcome::Uncertain`].
    pub fn buy(
        &mut self,
        intent: BuyIntent,
        deadline: Instant,
        on_request: impl FnMut(&PaymentRequest),
    ) -> Result<PurchaseOutcome, NodeError> {
        self.buy_watched(intent, None, deadline, on_request, &mut ())
    }

    /// [`WalletNode::buy`], sharing `shipping` with the seller it pays
    /// (sealed inside the AGREED), and asking `watch` before every turn whether to
    /// stop. A stop before the wallet agreed to a request ends buyer mode
    /// ([`NodeError::Cancelled`]); after it, the payment is prepared and only
    /// its seller (or the money office) can end it: the stop then returns
    /// [`PurchaseOutcome::Uncertain`] at once, the amount locked.
    pub fn buy_watched(
        &mut self,
        intent: BuyIntent,
        shipping: Option<Shipping>,
        deadline: Instant,
        mut on_request: impl FnMut(&PaymentRequest),
        watch: &mut dyn Watch,
    ) -> Result<PurchaseOutcome, NodeError> {
        let mut seen = self.event_seq();
        self.command(|wallet, _| wallet.set_buy_intent_sharing(intent, shipping))?;
        let mut paying: Option<(TxId, PartyId, Amount)> = None;
        loop {
            let mut ended = None;
            for (seq, event) in self.events_after(seen) {
                seen = *seq;
                match event {
                    Event::PaymentRequested {
                        tx,
                        seller,
                        amount,
                        description,
                        accepted,
                    } => {
                        on_request(&PaymentRequest {
                            tx: *tx,
                            seller: *seller,
                            amount: *amount,
                            description: description.clone(),
                            accepted: *accepted,
                        });
                        if *accepted && paying.is_none() {
                            paying = Some((*tx, *seller, *amount));
                        }
                    }
                    Event::PaymentCommitted {
                        tx, seller, amount, ..
                    } if paying.is_some_and(|(t, ..)| t == *tx) => {
                        ended = Some(PurchaseOutcome::Paid {
                            tx: *tx,
                            seller: *seller,
                            amount: *amount,
                        });
                    }
                    Event::PaymentAborted { tx, amount }
                        if paying.is_some_and(|(t, ..)| t == *tx) =>
                    {
                        ended = Some(PurchaseOutcome::Aborted {
                            tx: *tx,
                            amount: *amount,
                        });
                    }
                    Event::PaymentAwaitingOffice { tx }
                        if paying.is_some_and(|(t, ..)| t == *tx) =>
                    {
                        ended = Some(PurchaseOutcome::AwaitingOffice { tx: *tx });
                    }
                    _ => {}
                }
            }
            if let Some(outcome) = ended {
                return Ok(outcome);
            }
            if watch.turn(self) {
                return match paying {
                    Some((tx, seller, amount)) => {
                        Ok(PurchaseOutcome::Uncertain { tx, seller, amount })
                    }
                    None => {
                        self.command(|wallet, _| wallet.clear_buy_intent())?;
                        Err(NodeError::Cancelled { tx: None })
                    }
                };
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return match paying {
                    Some((tx, seller, amount)) => {
                        Ok(PurchaseOutcome::Uncertain { tx, seller, amount })
                    }
                    None => {
                        // The owner's offer to pay ends with the operation.
                        self.command(|wallet, _| wallet.clear_buy_intent())?;
                        Err(NodeError::Timeout {
                            waiting_for: "a payment request within the intent",
                            tx: None,
                        })
                    }
                };
            }
            self.step(left)?;
        }
    }
}

/// The error for a sale the engine aborted. `NoAnswer` is what the engine
/// records when the buyer never answered (presumed abort); every other
/// reason is the buyer's refusal or a failed check of its authorization.
fn sale_aborted(tx: TxId, reason: AbortReason) -> NodeError {
    if reason == AbortReason::NoAnswer {
        NodeError::BuyerSilent { tx }
    } else {
        NodeError::BuyerRefused { tx, reason }
    }
}
