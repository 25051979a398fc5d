//! The wallet commands that talk to wallets nearby over UDP: sell, buy,
//! resume. Each opens the wallet, recovers its engine (prepared payments
//! become uncertain and ask their seller; committed sales resend COMMIT) and
//! runs it in a [`WalletNode`]; what a crash left open moves on while any of
//! them runs.

use std::io::IsTerminal;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mpay_identity::{Limits, PartyId, Timestamp};
use mpay_money::Amount;
use mpay_offline::{BuyIntent, Event};
use mpay_wallet_net::{
    BroadcastTo, DEFAULT_MULTICAST_GROUP, DropKnob, NodeConfig, NodeError, PaymentRequest,
    PurchaseOutcome, SaleOutcome, UnknownPeerRoute, WalletNode, wall_clock,
};
use serde_json::{Value, json};

use super::exit::{Exit, Failure};
use super::files::WalletLock;
use super::files::{ask_line, ask_yes, os_random32, parse_amount};
use super::local::{Access, Session};
use super::output::{Out, qr};
use super::{BuyArgs, NetArgs, ResumeArgs, SellArgs};

/// After paying, the buyer keeps answering until the seller has been quiet
/// this long: a seller whose COMMITTED acknowledgement was lost resends
/// COMMIT (first after ~200 ms, doubling), and each resend is answered.
const ACK_QUIET_MS: u64 = 1_500;
/// The longest the buyer keeps answering after paying.
const ACK_LINGER_MS_MAX: u64 = 6_000;
/// After a sale ends without a commit, the seller keeps answering this long
/// so that a buyer that agreed (and whose AGREED was lost) learns of the
/// abort when it asks.
const ABORT_LINGER_MS: u64 = 1_500;
/// One turn of a command's own loop.
const STEP_MS: u64 = 100;

fn parse_party(text: &str, what: &str) -> Result<PartyId, Failure> {
    PartyId::from_hex(text.trim()).ok_or_else(|| {
        Failure::other(format!(
            "{what} {text:?} is not a wallet id (32 hex digits, as `mpay wallet balance` shows)"
        ))
    })
}

/// `multicast`, `multicast:GROUP:PORT`, `lan:ADDRESS:PORT` or
/// `peers:ADDR:PORT,…`.
fn parse_broadcast(text: &str, interface: std::net::Ipv4Addr) -> Result<BroadcastTo, Failure> {
    let bad = |why: &str| Failure::other(format!("--broadcast {text:?}: {why}"));
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

/// The node's configuration from the command line. A frame for a peer
/// whose address is unknown goes to the broadcast destination: that is how
/// a wallet that restarted (on a new port) reaches the peer it must ask.
fn node_config(net: &NetArgs) -> Result<NodeConfig, Failure> {
    let mut config = NodeConfig::multicast(net.bind, DEFAULT_MULTICAST_GROUP, net.interface);
    config.broadcast = parse_broadcast(&net.broadcast, net.interface)?;
    config.unknown_peer = UnknownPeerRoute::ViaBroadcast;
    let seed = os_random32()?;
    let mut seed8 = [0u8; 8];
    seed8.copy_from_slice(&seed[..8]);
    config.drop = DropKnob {
        inbound_permille: net.drop_permille,
        outbound_permille: 0,
        seed: u64::from_be_bytes(seed8),
    };
    Ok(config)
}

fn open_node(session: Session, net: &NetArgs) -> Result<(WalletNode, Option<WalletLock>), Failure> {
    session.into_node(node_config(net)?)
}

/// An engine event for people, if it is one they care about.
fn describe(event: &Event) -> Option<String> {
    Some(match event {
        Event::BuyerFound { buyer } => format!("buyer {} answered", buyer.short()),
        Event::BuyerRefused { buyer, reason } => format!(
            "buyer {} answered but is not acceptable: {}",
            buyer.short(),
            super::exit::abort_text(*reason)
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
        Event::SaleAborted { tx, reason } => format!(
            "sale {} aborted: {}",
            tx.short(),
            super::exit::abort_text(*reason)
        ),
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

/// Prints and returns the events queued since the last call.
fn drain_events(out: &Out, node: &mut WalletNode, log: &mut Vec<String>) {
    drain_events_of(out, node, log, true);
}

/// Says what happened; `selling` false leaves out the answers to a LOOKUP
/// (a wallet that is not selling has no buyer to speak of).
fn drain_events_of(out: &Out, node: &mut WalletNode, log: &mut Vec<String>, selling: bool) {
    while let Some(event) = node.poll_event() {
        // Each repeated LOOKUP brings the same answers again: say it once.
        let repeats = matches!(
            event,
            Event::BuyerFound { .. } | Event::BuyerRefused { .. } | Event::BuyerRevoked { .. }
        );
        if repeats && !selling {
            continue;
        }
        if let Some(text) = describe(&event)
            && !(repeats && log.contains(&text))
        {
            out.line(format!("  {text}"));
            log.push(text);
        }
    }
}

fn ensure_not_revoked(session: &Session) -> Result<(), Failure> {
    if session.is_revoked() {
        return Err(Failure::new(
            Exit::DoubleSpend,
            format!(
                "wallet {} is revoked (a double spend was caught); other wallets refuse it",
                session.wallet.id()
            ),
        ));
    }
    Ok(())
}

// ---- sell --------------------------------------------------------------------

pub fn sell(out: &Out, args: SellArgs) -> Result<(), Failure> {
    let session = Session::open(&args.common, Access::Write)?;
    ensure_not_revoked(&session)?;
    let amount = parse_amount(
        std::slice::from_ref(&args.amount),
        session.wallet.currency(),
    )?;
    let named = args
        .buyer
        .as_deref()
        .map(|b| parse_party(b, "--buyer"))
        .transpose()?;
    let (mut node, _lock) = open_node(session, &args.net)?;
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    out.line(format!(
        "wallet {} sells {amount}{}; looking for buyers nearby (UDP {})",
        node.id(),
        named.map_or(String::new(), |b| format!(" to {}", b.short())),
        node.local_addr()
    ));
    let lookup = match named {
        Some(_) => Duration::from_secs(args.wait),
        None => Duration::from_secs(args.lookup_secs.min(args.wait)),
    };
    let mut log = Vec::new();
    let mut outcome = node.sell(amount, &args.description, named, lookup, deadline);
    if let Ok(SaleOutcome::ChooseBuyer { buyers }) = &outcome {
        let buyers = buyers.clone();
        drain_events(out, &mut node, &mut log);
        let chosen = choose_buyer(out, &buyers)?;
        let left = deadline.saturating_duration_since(Instant::now());
        outcome = node.sell(amount, &args.description, Some(chosen), left, deadline);
    }
    drain_events(out, &mut node, &mut log);
    let id = node.id();
    let result = match outcome {
        Ok(SaleOutcome::Completed { tx, buyer, amount }) => {
            out.line(format!(
                "sold: {amount} from buyer {} (tx {}), complete",
                buyer.short(),
                tx.short()
            ));
            Ok(json!({
                "outcome": "completed", "tx": tx.to_string(), "buyer": buyer.to_hex(),
                "amount": amount.to_string(), "amount_minor": amount.minor_units(),
            }))
        }
        Ok(SaleOutcome::CommittedUnacknowledged { tx, buyer, amount }) => {
            out.line(format!(
                "sold: {amount} from buyer {} (tx {}) is committed, the money is yours; the \
                 buyer's acknowledgement has not arrived (the wallet resends COMMIT whenever it \
                 runs: `mpay wallet resume`)",
                buyer.short(),
                tx.short()
            ));
            Ok(json!({
                "outcome": "committed_unacknowledged", "tx": tx.to_string(),
                "buyer": buyer.to_hex(), "amount": amount.to_string(),
                "amount_minor": amount.minor_units(),
            }))
        }
        Ok(SaleOutcome::ChooseBuyer { buyers }) => Err(several_buyers(&buyers)),
        Err(NodeError::Timeout { tx: Some(tx), .. }) => {
            // Still in phase 1: cancel (presumed abort), and answer a buyer
            // that agreed and asks.
            node.command(|wallet, now| wallet.cancel_sale(now, tx))?;
            node.run_for(Duration::from_millis(ABORT_LINGER_MS))?;
            drain_events(out, &mut node, &mut log);
            Err(Failure::new(
                Exit::Timeout,
                format!(
                    "the buyer did not agree within --wait; sale {} cancelled, nothing was paid",
                    tx.short()
                ),
            ))
        }
        Err(e @ (NodeError::BuyerSilent { .. } | NodeError::BuyerRefused { .. })) => {
            node.run_for(Duration::from_millis(ABORT_LINGER_MS))?;
            drain_events(out, &mut node, &mut log);
            Err(Failure::from(e))
        }
        Err(e) => Err(Failure::from(e)),
    };
    match result {
        Ok(mut object) => {
            if let Value::Object(map) = &mut object {
                map.insert("wallet".into(), json!(id.to_hex()));
                map.insert("balance".into(), json!(node.wallet().balance().to_string()));
                map.insert(
                    "balance_minor".into(),
                    json!(node.wallet().balance().minor_units()),
                );
                map.insert("log".into(), json!(log));
            }
            out.done("sell", object);
            Ok(())
        }
        Err(failure) => Err(failure),
    }
}

fn several_buyers(buyers: &[PartyId]) -> Failure {
    let list: Vec<String> = buyers.iter().map(|b| b.to_hex()).collect();
    Failure::new(
        Exit::SeveralBuyers,
        format!(
            "several buyers nearby: {}; pass --buyer ID",
            list.join(", ")
        ),
    )
    .with_details(json!({ "buyers": list }))
}

/// Asks the person which buyer, on a terminal; otherwise the error that
/// names them.
fn choose_buyer(out: &Out, buyers: &[PartyId]) -> Result<PartyId, Failure> {
    if out.is_json() || !std::io::stdin().is_terminal() {
        return Err(several_buyers(buyers));
    }
    println!("several buyers nearby:");
    for (i, b) in buyers.iter().enumerate() {
        println!("  {}. {b}", i + 1);
    }
    let answer = ask_line(&format!("sell to which one? [1-{}] ", buyers.len()))
        .ok_or_else(|| Failure::other("no choice made"))?;
    answer
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| buyers.get(i))
        .copied()
        .ok_or_else(|| Failure::other(format!("no buyer {answer:?}")))
}

// ---- buy ---------------------------------------------------------------------

/// Why the wallet refused a request, as the engine decides it (the engine
/// reports only that it refused).
fn refusal(
    request: &PaymentRequest,
    max: Amount,
    balance: Amount,
    limits: Option<Limits>,
) -> (Exit, String) {
    use std::cmp::Ordering::Greater;
    if request.amount.checked_cmp(&max) == Ok(Greater) {
        return (Exit::LimitExceeded, format!("over your --max of {max}"));
    }
    if let Some(l) = limits
        && request.amount.checked_cmp(&l.payment_max) == Ok(Greater)
    {
        return (
            Exit::LimitExceeded,
            format!("over the per-payment limit of {}", l.payment_max),
        );
    }
    if request.amount.checked_cmp(&balance) == Ok(Greater) {
        return (
            Exit::InsufficientFunds,
            format!("insufficient funds (balance {balance})"),
        );
    }
    (
        Exit::Refused,
        "refused (wrong currency, seller not the one named, or too many payments in flight)".into(),
    )
}

pub fn buy(out: &Out, args: BuyArgs) -> Result<(), Failure> {
    let session = Session::open(&args.common, Access::Write)?;
    ensure_not_revoked(&session)?;
    let max = parse_amount(std::slice::from_ref(&args.max), session.wallet.currency())?;
    let seller = args
        .seller
        .as_deref()
        .map(|s| parse_party(s, "--seller"))
        .transpose()?;
    let balance = session.wallet.balance();
    let limits = session.wallet.certificate().body.limits;
    let (mut node, _lock) = open_node(session, &args.net)?;
    let id = node.id();
    out.line(format!("wallet id {id}"));
    if args.qr && !out.is_json() {
        match qr(&id.to_hex()) {
            Some(code) => super::output::print_line(&code),
            None => out.warn("the id does not fit a QR code"),
        }
    }
    out.line(format!(
        "buyer mode: paying up to {max}{} for {} s (balance {balance}, UDP {})",
        seller.map_or(String::new(), |s| format!(" to seller {}", s.short())),
        args.wait,
        node.local_addr()
    ));
    if !args.yes
        && !out.is_json()
        && std::io::stdin().is_terminal()
        && !ask_yes(&format!("pay up to {max} to the first seller that asks?"))
    {
        return Err(Failure::other("cancelled: not in buyer mode"));
    }
    let expires_at = Timestamp(
        wall_clock()
            .as_millis()
            .saturating_add(args.wait.saturating_mul(1000)),
    );
    let intent = BuyIntent {
        max_amount: max,
        seller,
        expires_at,
    };
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut requests: Vec<Value> = Vec::new();
    let mut last_refusal: Option<(Exit, String)> = None;
    let outcome = node.buy(intent, deadline, |request| {
        let verdict = if request.accepted {
            "agreed, funds locked".to_owned()
        } else {
            let (exit, why) = refusal(request, max, balance, limits);
            let text = format!("refused: {why}");
            last_refusal = Some((exit, why));
            text
        };
        out.line(format!(
            "seller {} asks {} for {:?} (tx {}): {verdict}",
            request.seller.short(),
            request.amount,
            request.description,
            request.tx.short()
        ));
        requests.push(json!({
            "tx": request.tx.to_string(), "seller": request.seller.to_hex(),
            "amount": request.amount.to_string(), "description": request.description,
            "accepted": request.accepted,
        }));
    });
    let mut log = Vec::new();
    drain_events(out, &mut node, &mut log);
    let object = match outcome {
        Ok(PurchaseOutcome::Paid { tx, seller, amount }) => {
            out.line(format!(
                "paid {amount} to seller {} (tx {})",
                seller.short(),
                tx.short()
            ));
            linger_for_acknowledgement(&mut node)?;
            drain_events(out, &mut node, &mut log);
            json!({
                "outcome": "paid", "tx": tx.to_string(), "seller": seller.to_hex(),
                "amount": amount.to_string(), "amount_minor": amount.minor_units(),
            })
        }
        Ok(PurchaseOutcome::Aborted { tx, amount }) => {
            return Err(Failure::new(
                Exit::Refused,
                format!(
                    "the seller aborted payment {}; {amount} is back, nothing was paid",
                    tx.short()
                ),
            )
            .with_details(json!({ "tx": tx.to_string(), "requests": requests })));
        }
        Ok(PurchaseOutcome::Uncertain { tx, seller, amount }) => {
            return Err(Failure::new(
                Exit::Timeout,
                format!(
                    "payment {} of {amount} to seller {} is UNCERTAIN: the seller's decision \
                     has not arrived. {amount} stays locked; run `mpay wallet resume` near the \
                     seller to finish it (after the claim deadline the office settles it at \
                     sync)",
                    tx.short(),
                    seller.short()
                ),
            )
            .with_details(
                json!({ "tx": tx.to_string(), "uncertain": true, "requests": requests }),
            ));
        }
        Ok(PurchaseOutcome::AwaitingOffice { tx }) => {
            return Err(Failure::new(
                Exit::Timeout,
                format!(
                    "payment {}: the claim deadline passed with the outcome unknown; sync with \
                     the money office to settle it",
                    tx.short()
                ),
            ));
        }
        Err(NodeError::Timeout { tx: None, .. }) if node.wallet().trust().is_revoked(&id) => {
            // A seller's LOOKUP carried the revocation list that names this
            // wallet: sellers refuse it, so say that, not "no seller asked".
            return Err(Failure::new(
                Exit::DoubleSpend,
                format!(
                    "wallet {id} is REVOKED by the money office (learned from a seller's \
                     revocation list): a double spend by this wallet or a copy of it was caught, \
                     and sellers refuse it; no payment was made"
                ),
            )
            .with_details(json!({ "revoked": true, "requests": requests })));
        }
        Err(NodeError::Timeout { tx: None, .. }) => {
            return Err(match last_refusal {
                Some((exit, why)) => Failure::new(
                    exit,
                    format!("no payment made: the request that came was refused: {why}"),
                ),
                None => Failure::new(
                    Exit::Timeout,
                    "no seller asked for a payment within --max before --wait ran out",
                ),
            }
            .with_details(json!({ "requests": requests })));
        }
        Err(e) => return Err(e.into()),
    };
    let mut object = object;
    if let Value::Object(map) = &mut object {
        map.insert("wallet".into(), json!(id.to_hex()));
        map.insert("balance".into(), json!(node.wallet().balance().to_string()));
        map.insert(
            "balance_minor".into(),
            json!(node.wallet().balance().minor_units()),
        );
        map.insert("requests".into(), json!(requests));
        map.insert("log".into(), json!(log));
    }
    out.done("buy", object);
    Ok(())
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

// ---- resume --------------------------------------------------------------------

fn pending(node: &WalletNode) -> (Vec<Value>, Vec<String>) {
    let wallet = node.wallet();
    let prepared = wallet
        .prepared_txs()
        .map(|(tx, seller, amount)| {
            json!({ "tx": tx.to_string(), "seller": seller.to_hex(), "amount": amount.to_string() })
        })
        .collect();
    let committing = wallet.committing_txs().map(|t| t.to_string()).collect();
    (prepared, committing)
}

/// A flag raised by SIGINT or SIGTERM, so that `resume` stops between two
/// steps (every step's writes are durable) and reports, instead of dying.
/// Unset (the signals keep their default) if the handler cannot start.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let raised = Arc::clone(&flag);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                let _ = ready_tx.send(());
                return;
            };
            runtime.block_on(async move {
                let terminate =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
                let interrupt =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
                let (Ok(mut terminate), Ok(mut interrupt)) = (terminate, interrupt) else {
                    let _ = ready_tx.send(());
                    return;
                };
                let _ = ready_tx.send(());
                tokio::select! {
                    _ = terminate.recv() => {},
                    _ = interrupt.recv() => {},
                }
                raised.store(true, Ordering::SeqCst);
            });
        });
    if spawned.is_ok() {
        // The handlers are in place before the first step.
        let _ = ready_rx.recv_timeout(Duration::from_secs(5));
    }
    flag
}

pub fn resume(out: &Out, args: ResumeArgs) -> Result<(), Failure> {
    let interrupted = interrupt_flag();
    let session = Session::open(&args.common, Access::Write)?;
    let (mut node, _lock) = open_node(session, &args.net)?;
    let (prepared, committing) = pending(&node);
    out.line(format!(
        "wallet {}: {} uncertain payment(s), {} unacknowledged sale(s); serving on UDP {}",
        node.id(),
        prepared.len(),
        committing.len(),
        node.local_addr()
    ));
    let deadline = Instant::now() + Duration::from_secs(args.wait);
    let mut log = Vec::new();
    loop {
        drain_events_of(out, &mut node, &mut log, false);
        let wallet = node.wallet();
        let settled = wallet.prepared_txs().next().is_none()
            && wallet.committing_txs().next().is_none()
            && wallet.requesting_txs().next().is_none();
        let left = deadline.saturating_duration_since(Instant::now());
        if (settled && !args.stay) || left.is_zero() || interrupted.load(Ordering::SeqCst) {
            break;
        }
        node.step(left.min(Duration::from_millis(STEP_MS)))?;
    }
    drain_events_of(out, &mut node, &mut log, false);
    let (prepared, committing) = pending(&node);
    let object = json!({
        "wallet": node.id().to_hex(),
        "balance": node.wallet().balance().to_string(),
        "balance_minor": node.wallet().balance().minor_units(),
        "locked": node.wallet().locked().to_string(),
        "settled": prepared.is_empty() && committing.is_empty(),
        "prepared": prepared,
        "committing": committing,
        "log": log,
    });
    if !prepared.is_empty() {
        return Err(Failure::new(
            Exit::Timeout,
            format!(
                "{} payment(s) still uncertain (funds locked): the seller did not answer \
                 within --wait; try again near the seller, or sync after the claim deadline",
                prepared.len()
            ),
        )
        .with_details(object));
    }
    if !committing.is_empty() {
        out.line(format!(
            "{} sale(s) committed (the money is yours) but not acknowledged by the buyer yet",
            committing.len()
        ));
    } else {
        out.line("nothing pending");
    }
    out.line(format!("balance {}", node.wallet().balance()));
    out.done("resume", object);
    Ok(())
}
