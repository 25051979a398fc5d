//! The flows that talk to wallets nearby over UDP: sell, buy, resume. Each
//! runs the engine in a [`WalletNode`] for the length of the call (prepared
//! payments ask their seller, committed sales resend COMMIT while it runs),
//! tells a [`Listener`] how it goes, and stops early when its
//! [`CancelHandle`] is raised, where nothing has moved yet.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mpay_identity::{Limits, PartyId, Timestamp};
use mpay_money::Amount;
use mpay_offline::messages::Shipping;
use mpay_offline::{BuyIntent, Event, TxId};
use mpay_wallet_net::{
    BroadcastTo, DEFAULT_MULTICAST_GROUP, DropKnob, Found, NodeConfig, NodeError, PaymentRequest,
    PurchaseOutcome, SaleOutcome, UnknownPeerRoute, WalletNode, Watch, wall_clock,
};

use crate::error::abort_text;
use crate::files::os_random32;
use crate::wallet::Prepared;
use crate::{Wallet, WalletError};

/// After paying, the buyer keeps answering until the seller has been quiet
/// this long: a seller whose COMMITTED acknowledgement was lost resends
/// COMMIT (first after ~200 ms, doubling), and each resend is answered.
pub const ACK_QUIET_MS: u64 = 1_500;
/// The longest the buyer keeps answering after paying.
pub const ACK_LINGER_MS_MAX: u64 = 6_000;
/// After a sale ends without a commit, the seller keeps answering this long
/// so that a buyer that agreed (and whose AGREED was lost) learns of the
/// abort when it asks.
pub const ABORT_LINGER_MS: u64 = 1_500;
/// One turn of an operation's own loop.
const STEP_MS: u64 = 100;
/// Longest wait an operation accepts, seconds (a day).
pub const WAIT_SECS_MAX: u64 = 86_400;
/// Longest description of a sale, bytes.
pub const DESCRIPTION_LEN_MAX: usize = 256;

/// How the wallet reaches wallets nearby.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetOptions {
    /// Local UDP address (port 0: any free port).
    pub bind: SocketAddrV4,
    /// Where LOOKUPs go.
    pub broadcast: BroadcastTo,
    /// Address of the interface that joins a multicast group.
    pub interface: Ipv4Addr,
    /// Test knob: drop this share of received datagrams, per mille.
    pub drop_permille: u32,
}

impl Default for NetOptions {
    fn default() -> NetOptions {
        NetOptions {
            bind: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0),
            broadcast: BroadcastTo::Multicast {
                group: DEFAULT_MULTICAST_GROUP,
                interface: Ipv4Addr::LOCALHOST,
            },
            interface: Ipv4Addr::LOCALHOST,
            drop_permille: 0,
        }
    }
}

impl NetOptions {
    /// The node's configuration. A frame for a peer whose address is
    /// unknown goes to the broadcast destination: that is how a wallet that
    /// restarted (on a new port) reaches the peer it must ask.
    fn node_config(&self) -> Result<NodeConfig, WalletError> {
        let mut config = NodeConfig::multicast(self.bind, DEFAULT_MULTICAST_GROUP, self.interface);
        config.broadcast = self.broadcast.clone();
        config.unknown_peer = UnknownPeerRoute::ViaBroadcast;
        let seed = os_random32()?;
        let mut seed8 = [0u8; 8];
        seed8.copy_from_slice(&seed[..8]);
        config.drop = DropKnob {
            inbound_permille: self.drop_permille,
            outbound_permille: 0,
            seed: u64::from_be_bytes(seed8),
        };
        Ok(config)
    }
}

/// Parses where LOOKUPs go: `multicast` (239.255.77.77:47701),
/// `multicast:GROUP:PORT`, `lan:ADDRESS:PORT` (UDP broadcast) or
/// `peers:ADDR:PORT,ADDR:PORT,…` (a unicast copy to each).
pub fn parse_broadcast(text: &str, interface: Ipv4Addr) -> Result<BroadcastTo, WalletError> {
    let bad = |why: &str| WalletError::other(format!("--broadcast {text:?}: {why}"));
    let (kind, rest) = text.split_once(':').unwrap_or((text, ""));
    match kind {
        "multicast" => {
            let group = if rest.is_empty() {
                DEFAULT_MULTICAST_GROUP
            } else {
                rest.parse::<SocketAddrV4>()
                    .map_err(|_| bad("expected multicast:GROUP:PORT"))?
            };
            if !group.ip().is_multicast() {
                return Err(bad("not a multicast group address"));
            }
            Ok(BroadcastTo::Multicast { group, interface })
        }
        "lan" => Ok(BroadcastTo::Lan {
            address: rest
                .parse::<SocketAddrV4>()
                .map_err(|_| bad("expected lan:ADDRESS:PORT"))?,
        }),
        "peers" => {
            let peers = rest
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| p.trim().parse::<SocketAddr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad("expected peers:ADDR:PORT,ADDR:PORT,…"))?;
            Ok(BroadcastTo::Peers(peers))
        }
        _ => Err(bad(
            "expected multicast, multicast:GROUP:PORT, lan:… or peers:…",
        )),
    }
}

/// Parses a wallet id given by a person (32 hex digits).
pub fn parse_party(text: &str, what: &str) -> Result<PartyId, WalletError> {
    PartyId::from_hex(text.trim()).ok_or_else(|| {
        WalletError::other(format!(
            "{what} {text:?} is not a wallet id (32 hex digits, as `mpay wallet balance` shows)"
        ))
    })
}

/// Stops a running [`Wallet::sell`], [`Wallet::buy`] or [`Wallet::resume`]
/// from another thread. Clones share one flag.
#[derive(Clone, Debug, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    pub fn new() -> CancelHandle {
        CancelHandle::default()
    }

    /// A handle raised when `flag` is (e.g. by a signal handler).
    pub fn from_flag(flag: Arc<AtomicBool>) -> CancelHandle {
        CancelHandle(flag)
    }

    /// Asks the operation to stop; honoured only where nothing has moved
    /// yet (a committed sale and an agreed payment run on).
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// How an operation goes, as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The seller broadcasts LOOKUPs from `local_addr`.
    LookingForBuyers { local_addr: SocketAddr },
    /// The buyers that answered so far (each new one adds to the list).
    BuyersFound { buyers: Vec<PartyId> },
    /// The COMMIT-REQUEST left: the seller waits for the buyer's agreement.
    WaitingForBuyer {
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
    },
    /// Buyer mode: waiting for a seller's request of at most `max`.
    WaitingForSeller {
        max: Amount,
        balance: Amount,
        local_addr: SocketAddr,
    },
    /// A seller asked this wallet to pay; `refusal` says why it did not
    /// agree, if it did not.
    PaymentRequested {
        request: PaymentRequest,
        refusal: Option<String>,
    },
    /// The wallet serves its pending transactions from `local_addr`.
    Resuming {
        local_addr: SocketAddr,
        prepared: usize,
        committing: usize,
    },
    /// What the engine reports (a sale or payment committed, completed or
    /// aborted, a buyer that answered, a revocation list installed, …).
    Event(Event),
}

/// Who is told how an operation goes.
pub trait Listener {
    fn progress(&mut self, progress: &Progress);

    /// Several buyers answered a sale that named none: which one to sell
    /// to. `None` ends the sale, nothing sold
    /// ([`WalletError::SeveralBuyers`]).
    fn choose_buyer(&mut self, _buyers: &[PartyId]) -> Option<PartyId> {
        None
    }
}

/// A listener that hears nothing.
impl Listener for () {
    fn progress(&mut self, _progress: &Progress) {}
}

/// An engine event for people, if it is one they care about.
pub fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::BuyerFound { buyer } => format!("buyer {} answered", buyer.short()),
        Event::BuyerRefused { buyer, reason } => format!(
            "buyer {} answered but is not acceptable: {}",
            buyer.short(),
            abort_text(*reason)
        ),
        Event::BuyerRevoked { buyer } => format!(
            "buyer {} answered but is revoked by the money office (a double spend was caught)",
            buyer.short()
        ),
        Event::RevocationListInstalled { version } => {
            format!("revocation list v{version} installed")
        }
        Event::SaleCommitted { tx, buyer, amount } => format!(
            "sale {} COMMITTED: {amount} from buyer {} (the money is yours)",
            tx.short(),
            buyer.short()
        ),
        Event::SaleCompleted { tx } => {
            format!("sale {} complete (the buyer acknowledged)", tx.short())
        }
        Event::SaleSettledByOffice { tx } => format!(
            "sale {} closed: never acknowledged, but the office holds the claim",
            tx.short()
        ),
        Event::SaleAborted { tx, reason } => {
            format!("sale {} aborted: {}", tx.short(), abort_text(*reason))
        }
        Event::PaymentCommitted { tx, seller, amount } => format!(
            "payment {} of {amount} to {} committed (paid)",
            tx.short(),
            seller.short()
        ),
        Event::PaymentAborted { tx, amount } => {
            format!("payment {} aborted: {amount} is back", tx.short())
        }
        Event::PaymentAwaitingOffice { tx } => format!(
            "payment {}: claim deadline passed, only the money office can settle it now (sync)",
            tx.short()
        ),
        Event::Charged { amount } => format!("charged {amount}"),
        Event::PaymentRequested { .. } => return None,
    })
}

/// What a buyer weighs a request against.
struct Buying {
    max: Amount,
    balance: Amount,
    limits: Option<Limits>,
    /// The last refusal, as the error a purchase that ends without paying
    /// reports.
    last_refusal: Option<WalletError>,
}

/// Why the wallet refused a request, as the engine decides it (the engine
/// reports only that it refused).
fn refusal(
    request: &PaymentRequest,
    max: Amount,
    balance: Amount,
    limits: Option<Limits>,
) -> WalletError {
    use std::cmp::Ordering::Greater;
    if request.amount.checked_cmp(&max) == Ok(Greater) {
        return WalletError::LimitExceeded(format!("over your --max of {max}"));
    }
    if let Some(l) = limits
        && request.amount.checked_cmp(&l.payment_max) == Ok(Greater)
    {
        return WalletError::LimitExceeded(format!(
            "over the per-payment limit of {}",
            l.payment_max
        ));
    }
    if request.amount.checked_cmp(&balance) == Ok(Greater) {
        return WalletError::InsufficientFunds(format!("insufficient funds (balance {balance})"));
    }
    WalletError::Refused(
        "refused (wrong currency, seller not the one named, or too many payments in flight)".into(),
    )
}

/// Hands the node's events to the listener as they come, and the cancel
/// flag to the node's loops.
struct Relay<'a> {
    listener: &'a mut dyn Listener,
    cancel: &'a CancelHandle,
    delivered: u64,
    buyers: Vec<PartyId>,
    buying: Option<Buying>,
}

impl<'a> Relay<'a> {
    fn new(listener: &'a mut dyn Listener, cancel: &'a CancelHandle, node: &WalletNode) -> Self {
        Relay {
            listener,
            cancel,
            delivered: node.event_seq(),
            buyers: Vec::new(),
            buying: None,
        }
    }

    fn flush(&mut self, node: &WalletNode) {
        let fresh: Vec<(u64, Event)> = node.events_after(self.delivered).cloned().collect();
        for (seq, event) in fresh {
            self.delivered = seq;
            match event {
                Event::PaymentRequested {
                    tx,
                    seller,
                    amount,
                    description,
                    accepted,
                } => {
                    let request = PaymentRequest {
                        tx,
                        seller,
                        amount,
                        description,
                        accepted,
                    };
                    let refusal = match (&mut self.buying, accepted) {
                        (Some(b), false) => {
                            let why = refusal(&request, b.max, b.balance, b.limits);
                            let text = why.message().to_owned();
                            b.last_refusal = Some(why);
                            Some(text)
                        }
                        (None, false) => Some("refused".to_owned()),
                        (_, true) => None,
                    };
                    self.listener
                        .progress(&Progress::PaymentRequested { request, refusal });
                }
                Event::BuyerFound { buyer } => {
                    let new = !self.buyers.contains(&buyer);
                    self.listener.progress(&Progress::Event(event));
                    if new && self.buyers.len() < mpay_wallet_net::BUYERS_LISTED_MAX {
                        self.buyers.push(buyer);
                        self.listener.progress(&Progress::BuyersFound {
                            buyers: self.buyers.clone(),
                        });
                    }
                }
                other => self.listener.progress(&Progress::Event(other)),
            }
        }
    }

    fn say(&mut self, progress: Progress) {
        self.listener.progress(&progress);
    }
}

impl Watch for Relay<'_> {
    fn turn(&mut self, node: &WalletNode) -> bool {
        self.flush(node);
        self.cancel.is_cancelled()
    }
}

/// What a sale asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SellRequest {
    pub amount: Amount,
    /// The buyer's wallet id (from its screen or QR code); without it the
    /// only buyer nearby, or the one [`Listener::choose_buyer`] picks.
    pub buyer: Option<PartyId>,
    /// What is sold, shown to the buyer.
    pub description: String,
    /// Give up after this long.
    pub wait: Duration,
    /// Without a buyer named: how long to collect the buyers that answer.
    pub lookup: Duration,
}

/// How a sale ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sale {
    /// The buyer acknowledged: the money is the seller's, the sale closed.
    Completed {
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
        /// The shipping details the buyer chose to share, if it did.
        shipping: Option<String>,
    },
    /// Committed (the money is the seller's) but the buyer's acknowledgement
    /// had not arrived; the wallet resends COMMIT whenever it runs.
    CommittedUnacknowledged {
        tx: TxId,
        buyer: PartyId,
        amount: Amount,
        /// The shipping details the buyer chose to share, if it did.
        shipping: Option<String>,
    },
}

impl Sale {
    /// The shipping details the buyer chose to share, if it did.
    pub fn shipping(&self) -> Option<&str> {
        match self {
            Sale::Completed { shipping, .. } | Sale::CommittedUnacknowledged { shipping, .. } => {
                shipping.as_deref()
            }
        }
    }
}

/// What a purchase allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuyRequest {
    /// Most the owner agrees to pay.
    pub max: Amount,
    /// Pay only this seller.
    pub seller: Option<PartyId>,
    /// Leave buyer mode after this long.
    pub wait: Duration,
    /// Share the profile's shipping details with the seller this purchase
    /// pays, sealed to that seller inside the agreement (the money office
    /// and other wallets nearby never see them).
    pub share_shipping: bool,
}

/// What [`Wallet::resume`] left.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumed {
    pub balance: Amount,
    pub locked: Amount,
    /// Payments still uncertain (funds locked).
    pub prepared: Vec<Prepared>,
    /// Sales committed but not acknowledged (the money is this wallet's).
    pub committing: Vec<TxId>,
}

fn check_wait(wait: Duration) -> Result<(), WalletError> {
    if wait > Duration::from_secs(WAIT_SECS_MAX) {
        return Err(WalletError::other(format!(
            "a wait longer than {WAIT_SECS_MAX} s"
        )));
    }
    Ok(())
}

impl Wallet {
    fn check_amount(&self, amount: Amount, what: &str) -> Result<(), WalletError> {
        let currency = self.currency()?;
        if !amount.is_positive() || amount.currency() != currency {
            return Err(WalletError::other(format!(
                "{what} {amount}: a positive amount in {currency} is needed"
            )));
        }
        Ok(())
    }

    fn ensure_not_revoked(&self) -> Result<(), WalletError> {
        if self.is_revoked() {
            return Err(WalletError::DoubleSpend(format!(
                "wallet {} is revoked (a double spend was caught); other wallets refuse it",
                self.id()?
            )));
        }
        Ok(())
    }

    /// Hands engine and store to a node on `net`.
    fn node(&mut self, net: &NetOptions) -> Result<WalletNode, WalletError> {
        self.check_writable()?;
        self.engine()?;
        let config = net.node_config()?;
        let (Some(engine), Some(store)) = (self.engine.take(), self.store.take()) else {
            return Err(WalletError::other("the wallet is not open"));
        };
        Ok(WalletNode::new(engine, store, config)?)
    }

    /// Takes engine and store back from the node; after a failure that
    /// stopped it, the wallet must be opened again.
    fn take_back(&mut self, mut node: WalletNode) {
        while node.poll_event().is_some() {}
        if let Ok((engine, store)) = node.into_parts() {
            self.engine = Some(engine);
            self.store = Some(store);
        }
    }

    /// Sells to a wallet nearby in buyer mode: LOOKUP, choose the buyer,
    /// then the two-phase commit. A cancel before the commit aborts the sale
    /// (nothing moves); the seller then keeps answering for
    /// [`ABORT_LINGER_MS`] so a buyer that agreed learns of the abort.
    pub fn sell(
        &mut self,
        request: &SellRequest,
        net: &NetOptions,
        listener: &mut dyn Listener,
        cancel: &CancelHandle,
    ) -> Result<Sale, WalletError> {
        self.ensure_not_revoked()?;
        self.check_amount(request.amount, "cannot sell")?;
        check_wait(request.wait)?;
        if request.description.len() > DESCRIPTION_LEN_MAX {
            return Err(WalletError::other(format!(
                "the description is longer than {DESCRIPTION_LEN_MAX} bytes"
            )));
        }
        let mut node = self.node(net)?;
        let result = sell_on(&mut node, request, listener, cancel);
        self.take_back(node);
        result
    }

    /// Enters buyer mode and pays the first seller's request within
    /// `request`, then keeps answering until the seller has been quiet for
    /// [`ACK_QUIET_MS`]. A cancel before the wallet agreed ends buyer mode
    /// ([`WalletError::Cancelled`]); after it the payment is prepared and
    /// the result is [`PurchaseOutcome::Uncertain`].
    pub fn buy(
        &mut self,
        request: &BuyRequest,
        net: &NetOptions,
        listener: &mut dyn Listener,
        cancel: &CancelHandle,
    ) -> Result<PurchaseOutcome, WalletError> {
        self.ensure_not_revoked()?;
        self.check_amount(request.max, "cannot pay up to")?;
        check_wait(request.wait)?;
        let shipping = if request.share_shipping {
            Some(self.shipping_to_share()?)
        } else {
            None
        };
        let engine = self.engine()?;
        let buying = Buying {
            max: request.max,
            balance: engine.balance(),
            limits: engine.certificate().body.limits,
            last_refusal: None,
        };
        let mut node = self.node(net)?;
        let result = buy_on(&mut node, request, shipping, buying, listener, cancel);
        self.take_back(node);
        result
    }

    /// Finishes what a crash or an exit left open (uncertain payments,
    /// unacknowledged sales), answering wallets nearby meanwhile, until
    /// nothing is pending (or, with `stay`, until `wait` ends or a cancel).
    pub fn resume(
        &mut self,
        net: &NetOptions,
        wait: Duration,
        stay: bool,
        listener: &mut dyn Listener,
        cancel: &CancelHandle,
    ) -> Result<Resumed, WalletError> {
        check_wait(wait)?;
        let mut node = self.node(net)?;
        let result = resume_on(&mut node, wait, stay, listener, cancel);
        self.take_back(node);
        result
    }
}

fn sell_on(
    node: &mut WalletNode,
    request: &SellRequest,
    listener: &mut dyn Listener,
    cancel: &CancelHandle,
) -> Result<Sale, WalletError> {
    let mut relay = Relay::new(listener, cancel, node);
    let deadline = Instant::now() + request.wait;
    relay.say(Progress::LookingForBuyers {
        local_addr: node.local_addr(),
    });
    let lookup = match request.buyer {
        Some(_) => request.wait,
        None => request.lookup.min(request.wait),
    };
    let found = node.find_buyers(
        request.buyer,
        deadline.min(Instant::now() + lookup),
        &mut relay,
    );
    // The answers that ended the LOOKUP come before the sale starts.
    relay.flush(node);
    let buyer = match found {
        Ok(Found::One(buyer)) => buyer,
        Ok(Found::Several(buyers)) => {
            let Some(chosen) = relay.listener.choose_buyer(&buyers) else {
                return Err(WalletError::several_buyers(&buyers));
            };
            let found = node.find_buyers(Some(chosen), deadline, &mut relay);
            relay.flush(node);
            match found {
                Ok(Found::One(buyer)) => buyer,
                Ok(Found::Several(buyers)) => return Err(WalletError::several_buyers(&buyers)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    if cancel.is_cancelled() {
        return Err(NodeError::Cancelled { tx: None }.into());
    }
    let tx = node.start_sale(buyer, request.amount, &request.description)?;
    relay.say(Progress::WaitingForBuyer {
        tx,
        buyer,
        amount: request.amount,
    });
    let outcome = node.finish_sale(tx, buyer, request.amount, deadline, &mut relay);
    let shared = |node: &WalletNode, tx: &TxId| {
        node.wallet()
            .shipping_shared(tx)
            .map(|s| s.as_str().to_owned())
    };
    let result = match outcome {
        Ok(SaleOutcome::Completed { tx, buyer, amount }) => Ok(Sale::Completed {
            tx,
            buyer,
            amount,
            shipping: shared(node, &tx),
        }),
        Ok(SaleOutcome::CommittedUnacknowledged { tx, buyer, amount }) => {
            Ok(Sale::CommittedUnacknowledged {
                tx,
                buyer,
                amount,
                shipping: shared(node, &tx),
            })
        }
        Ok(SaleOutcome::ChooseBuyer { buyers }) => Err(WalletError::several_buyers(&buyers)),
        Err(NodeError::Timeout { tx: Some(tx), .. }) => {
            // Still in phase 1: cancel (presumed abort), and answer a buyer
            // that agreed and asks.
            node.command(|wallet, now| wallet.cancel_sale(now, tx))?;
            node.run_for(Duration::from_millis(ABORT_LINGER_MS))?;
            Err(WalletError::Timeout(format!(
                "the buyer did not agree within --wait; sale {} cancelled, nothing was paid",
                tx.short()
            )))
        }
        Err(
            e @ (NodeError::BuyerSilent { .. }
            | NodeError::BuyerRefused { .. }
            | NodeError::Cancelled { .. }),
        ) => {
            node.run_for(Duration::from_millis(ABORT_LINGER_MS))?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    };
    relay.flush(node);
    result
}

fn buy_on(
    node: &mut WalletNode,
    request: &BuyRequest,
    shipping: Option<Shipping>,
    buying: Buying,
    listener: &mut dyn Listener,
    cancel: &CancelHandle,
) -> Result<PurchaseOutcome, WalletError> {
    let mut relay = Relay::new(listener, cancel, node);
    relay.buying = Some(buying);
    relay.say(Progress::WaitingForSeller {
        max: request.max,
        balance: node.wallet().balance(),
        local_addr: node.local_addr(),
    });
    let expires_at = Timestamp(
        wall_clock()
            .as_millis()
            .saturating_add(u64::try_from(request.wait.as_millis()).unwrap_or(u64::MAX)),
    );
    let intent = BuyIntent {
        max_amount: request.max,
        seller: request.seller,
        expires_at,
    };
    let deadline = Instant::now() + request.wait;
    let outcome = node.buy_watched(intent, shipping, deadline, |_| {}, &mut relay);
    relay.flush(node);
    let id = node.id();
    let result = match outcome {
        Ok(paid @ PurchaseOutcome::Paid { .. }) => {
            linger_for_acknowledgement(node)?;
            Ok(paid)
        }
        Ok(other) => Ok(other),
        Err(NodeError::Timeout { tx: None, .. }) if node.wallet().trust().is_revoked(&id) => {
            // A seller's LOOKUP carried the revocation list that names this
            // wallet: sellers refuse it, so say that, not "no seller asked".
            Err(WalletError::DoubleSpend(format!(
                "wallet {id} is REVOKED by the money office (learned from a seller's \
                 revocation list): a double spend by this wallet or a copy of it was caught, \
                 and sellers refuse it; no payment was made"
            )))
        }
        Err(NodeError::Timeout { tx: None, .. }) => {
            Err(match relay.buying.take().and_then(|b| b.last_refusal) {
                Some(why) => why.context("no payment made: the request that came was refused"),
                None => WalletError::Timeout(
                    "no seller asked for a payment within --max before --wait ran out".into(),
                ),
            })
        }
        Err(e) => Err(e.into()),
    };
    relay.flush(node);
    result
}

/// Keeps answering after a payment until the seller has been quiet for
/// [`ACK_QUIET_MS`] (at most [`ACK_LINGER_MS_MAX`]): a lost COMMITTED
/// makes the seller resend COMMIT, and the engine acknowledges again.
fn linger_for_acknowledgement(node: &mut WalletNode) -> Result<(), NodeError> {
    let started = Instant::now();
    let mut heard = node.stats().frames_received;
    let mut quiet_since = Instant::now();
    while started.elapsed() < Duration::from_millis(ACK_LINGER_MS_MAX)
        && quiet_since.elapsed() < Duration::from_millis(ACK_QUIET_MS)
    {
        node.step(Duration::from_millis(STEP_MS))?;
        let now_heard = node.stats().frames_received;
        if now_heard != heard {
            heard = now_heard;
            quiet_since = Instant::now();
        }
    }
    Ok(())
}

fn pending(node: &WalletNode) -> (Vec<Prepared>, Vec<TxId>) {
    let wallet = node.wallet();
    let prepared = wallet
        .prepared_txs()
        .map(|(tx, seller, amount)| Prepared { tx, seller, amount })
        .collect();
    (prepared, wallet.committing_txs().collect())
}

fn resume_on(
    node: &mut WalletNode,
    wait: Duration,
    stay: bool,
    listener: &mut dyn Listener,
    cancel: &CancelHandle,
) -> Result<Resumed, WalletError> {
    let mut relay = Relay::new(listener, cancel, node);
    let (prepared, committing) = pending(node);
    relay.say(Progress::Resuming {
        local_addr: node.local_addr(),
        prepared: prepared.len(),
        committing: committing.len(),
    });
    let deadline = Instant::now() + wait;
    loop {
        relay.flush(node);
        let wallet = node.wallet();
        let settled = wallet.prepared_txs().next().is_none()
            && wallet.committing_txs().next().is_none()
            && wallet.requesting_txs().next().is_none();
        let left = deadline.saturating_duration_since(Instant::now());
        if (settled && !stay) || left.is_zero() || cancel.is_cancelled() {
            break;
        }
        node.step(left.min(Duration::from_millis(STEP_MS)))?;
    }
    relay.flush(node);
    let (prepared, committing) = pending(node);
    Ok(Resumed {
        balance: node.wallet().balance(),
        locked: node.wallet().locked(),
        prepared,
        committing,
    })
}
