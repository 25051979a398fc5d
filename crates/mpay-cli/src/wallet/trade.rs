//! The wallet commands that talk to wallets nearby over UDP: sell, buy,
//! resume. Each runs [`mpay_wallet::Wallet::sell`], `buy` or `resume`, prints
//! what its [`Listener`] hears as it happens, and says how it ended.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mpay_wallet::{
    Access, BuyRequest, CancelHandle, Event, Listener, NetOptions, PartyId, Progress,
    PurchaseOutcome, Sale, SellRequest, WalletError, describe, parse_broadcast, parse_party,
};
use serde_json::{Value, json};

use super::exit::{Exit, Failure};
use super::files::{ask_line, ask_yes, parse_amount};
use super::manage::open;
use super::output::{Out, qr};
use super::{BuyArgs, NetArgs, ResumeArgs, SellArgs};

fn net_options(net: &NetArgs) -> Result<NetOptions, Failure> {
    Ok(NetOptions {
        bind: net.bind,
        broadcast: parse_broadcast(&net.broadcast, net.interface)?,
        interface: net.interface,
        drop_permille: net.drop_permille,
    })
}

/// Prints what an operation hears, as it happens, and keeps the log the
/// JSON output carries.
struct Printer<'a> {
    out: &'a Out,
    log: Vec<String>,
    /// False leaves out the answers to a LOOKUP (a wallet that is not
    /// selling has no buyer to speak of).
    selling: bool,
    /// A sale's several buyers: whether to ask the person.
    choose: Option<Failure>,
    /// The requests a buyer was shown, for `--json`.
    requests: Vec<Value>,
    amount: String,
    named: Option<PartyId>,
}

impl<'a> Printer<'a> {
    fn new(out: &'a Out, selling: bool) -> Printer<'a> {
        Printer {
            out,
            log: Vec::new(),
            selling,
            choose: None,
            requests: Vec::new(),
            amount: String::new(),
            named: None,
        }
    }
}

impl Listener for Printer<'_> {
    fn progress(&mut self, progress: &Progress) {
        let out = self.out;
        match progress {
            Progress::LookingForBuyers { .. } => {}
            Progress::Event(event) => {
                // Each repeated LOOKUP brings the same answers again: say it once.
                let repeats = matches!(
                    event,
                    Event::BuyerFound { .. }
                        | Event::BuyerRefused { .. }
                        | Event::BuyerRevoked { .. }
                );
                if repeats && !self.selling {
                    return;
                }
                if let Some(text) = describe(event)
                    && !(repeats && self.log.contains(&text))
                {
                    out.line(format!("  {text}"));
                    self.log.push(text);
                }
            }
            Progress::PaymentRequested { request, refusal } => {
                let verdict = match refusal {
                    None => "agreed, funds locked".to_owned(),
                    Some(why) => format!("refused: {why}"),
                };
                out.line(format!(
                    "seller {} asks {} for {:?} (tx {}): {verdict}",
                    request.seller.short(),
                    request.amount,
                    request.description,
                    request.tx.short()
                ));
                self.requests.push(json!({
                    "tx": request.tx.to_string(), "seller": request.seller.to_hex(),
                    "amount": request.amount.to_string(), "description": request.description,
                    "accepted": request.accepted,
                }));
            }
            Progress::BuyersFound { .. }
            | Progress::WaitingForBuyer { .. }
            | Progress::WaitingForSeller { .. }
            | Progress::Resuming { .. } => {}
        }
    }

    /// Asks the person which buyer, on a terminal; otherwise the error that
    /// names them.
    fn choose_buyer(&mut self, buyers: &[PartyId]) -> Option<PartyId> {
        if self.out.is_json() || !std::io::stdin().is_terminal() {
            return None;
        }
        println!("several buyers nearby:");
        for (i, b) in buyers.iter().enumerate() {
            println!("  {}. {b}", i + 1);
        }
        let Some(answer) = ask_line(&format!("sell to which one? [1-{}] ", buyers.len())) else {
            self.choose = Some(Failure::other("no choice made"));
            return None;
        };
        let chosen = answer
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| buyers.get(i))
            .copied();
        if chosen.is_none() {
            self.choose = Some(Failure::other(format!("no buyer {answer:?}")));
        }
        chosen
    }
}

// ---- sell --------------------------------------------------------------------

pub fn sell(out: &Out, args: SellArgs) -> Result<(), Failure> {
    let mut w = open(&args.common, Access::Write)?;
    if w.is_revoked() {
        return Err(Failure::new(
            Exit::DoubleSpend,
            format!(
                "wallet {} is revoked (a double spend was caught); other wallets refuse it",
                w.id()?
            ),
        ));
    }
    let amount = parse_amount(std::slice::from_ref(&args.amount), w.currency()?)?;
    let named = args
        .buyer
        .as_deref()
        .map(|b| parse_party(b, "--buyer"))
        .transpose()?;
    let net = net_options(&args.net)?;
    let request = SellRequest {
        amount,
        buyer: named,
        description: args.description.clone(),
        wait: Duration::from_secs(args.wait),
        lookup: Duration::from_secs(args.lookup_secs),
    };
    let id = w.id()?;
    let mut printer = Printer::new(out, true);
    printer.amount = amount.to_string();
    printer.named = named;
    let sale = w.sell(
        &request,
        &net,
        &mut SellPrinter(&mut printer, id),
        &CancelHandle::new(),
    );
    if let Some(failure) = printer.choose.take() {
        return Err(failure);
    }
    let sale = sale?;
    let shipping = sale.shipping().map(str::to_owned);
    let mut object = match sale {
        Sale::Completed {
            tx, buyer, amount, ..
        } => {
            out.line(format!(
                "sold: {amount} from buyer {} (tx {}), complete",
                buyer.short(),
                tx.short()
            ));
            json!({
                "outcome": "completed", "tx": tx.to_string(), "buyer": buyer.to_hex(),
                "amount": amount.to_string(), "amount_minor": amount.minor_units(),
            })
        }
        Sale::CommittedUnacknowledged {
            tx, buyer, amount, ..
        } => {
            out.line(format!(
                "sold: {amount} from buyer {} (tx {}) is committed, the money is yours; the \
                 buyer's acknowledgement has not arrived (the wallet resends COMMIT whenever it \
                 runs: `mpay wallet resume`)",
                buyer.short(),
                tx.short()
            ));
            json!({
                "outcome": "committed_unacknowledged", "tx": tx.to_string(),
                "buyer": buyer.to_hex(), "amount": amount.to_string(),
                "amount_minor": amount.minor_units(),
            })
        }
    };
    if let Some(shipping) = &shipping {
        out.line(format!("the buyer shared shipping details: {shipping}"));
    }
    if let Value::Object(map) = &mut object {
        map.insert("shipping".into(), json!(shipping));
        map.insert("wallet".into(), json!(id.to_hex()));
        map.insert("balance".into(), json!(w.balance()?.to_string()));
        map.insert("balance_minor".into(), json!(w.balance()?.minor_units()));
        map.insert("log".into(), json!(printer.log));
    }
    out.done("sell", object);
    Ok(())
}

/// The seller's first line, once its UDP address is known.
struct SellPrinter<'p, 'a>(&'p mut Printer<'a>, PartyId);

impl Listener for SellPrinter<'_, '_> {
    fn progress(&mut self, progress: &Progress) {
        if let Progress::LookingForBuyers { local_addr } = progress {
            let p = &self.0;
            p.out.line(format!(
                "wallet {} sells {}{}; looking for buyers nearby (UDP {local_addr})",
                self.1,
                p.amount,
                p.named
                    .map_or(String::new(), |b| format!(" to {}", b.short())),
            ));
        }
        self.0.progress(progress);
    }

    fn choose_buyer(&mut self, buyers: &[PartyId]) -> Option<PartyId> {
        self.0.choose_buyer(buyers)
    }
}

// ---- buy ---------------------------------------------------------------------

pub fn buy(out: &Out, args: BuyArgs) -> Result<(), Failure> {
    let mut w = open(&args.common, Access::Write)?;
    if w.is_revoked() {
        return Err(Failure::new(
            Exit::DoubleSpend,
            format!(
                "wallet {} is revoked (a double spend was caught); other wallets refuse it",
                w.id()?
            ),
        ));
    }
    let max = parse_amount(std::slice::from_ref(&args.max), w.currency()?)?;
    let seller = args
        .seller
        .as_deref()
        .map(|s| parse_party(s, "--seller"))
        .transpose()?;
    let net = net_options(&args.net)?;
    let id = w.id()?;
    out.line(format!("wallet id {id}"));
    if args.qr && !out.is_json() {
        match qr(&id.to_hex()) {
            Some(code) => super::output::print_line(&code),
            None => out.warn("the id does not fit a QR code"),
        }
    }
    if !args.yes
        && !out.is_json()
        && std::io::stdin().is_terminal()
        && !ask_yes(&format!("pay up to {max} to the first seller that asks?"))
    {
        return Err(Failure::other("cancelled: not in buyer mode"));
    }
    let request = BuyRequest {
        max,
        seller,
        wait: Duration::from_secs(args.wait),
        share_shipping: args.share_shipping,
    };
    let mut printer = Printer::new(out, true);
    let outcome = w.buy(
        &request,
        &net,
        &mut BuyPrinter(&mut printer, args.wait, seller),
        &CancelHandle::new(),
    );
    let requests = std::mem::take(&mut printer.requests);
    let mut object = match outcome {
        Ok(PurchaseOutcome::Paid { tx, seller, amount }) => {
            out.line(format!(
                "paid {amount} to seller {} (tx {})",
                seller.short(),
                tx.short()
            ));
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
        Err(e @ WalletError::DoubleSpend(_)) => {
            return Err(
                Failure::from(e).with_details(json!({ "revoked": true, "requests": requests }))
            );
        }
        Err(
            e @ (WalletError::Timeout(_)
            | WalletError::LimitExceeded(_)
            | WalletError::InsufficientFunds(_)
            | WalletError::Refused(_)),
        ) => {
            return Err(Failure::from(e).with_details(json!({ "requests": requests })));
        }
        Err(e) => return Err(e.into()),
    };
    if let Value::Object(map) = &mut object {
        map.insert("wallet".into(), json!(id.to_hex()));
        map.insert("balance".into(), json!(w.balance()?.to_string()));
        map.insert("balance_minor".into(), json!(w.balance()?.minor_units()));
        map.insert("requests".into(), json!(requests));
        map.insert("log".into(), json!(printer.log));
    }
    out.done("buy", object);
    Ok(())
}

/// The buyer's first line, once its UDP address is known.
struct BuyPrinter<'p, 'a>(&'p mut Printer<'a>, u64, Option<PartyId>);

impl Listener for BuyPrinter<'_, '_> {
    fn progress(&mut self, progress: &Progress) {
        if let Progress::WaitingForSeller {
            max,
            balance,
            local_addr,
        } = progress
        {
            self.0.out.line(format!(
                "buyer mode: paying up to {max}{} for {} s (balance {balance}, UDP {local_addr})",
                self.2
                    .map_or(String::new(), |s| format!(" to seller {}", s.short())),
                self.1,
            ));
        }
        self.0.progress(progress);
    }
}

// ---- resume --------------------------------------------------------------------

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
    let mut w = open(&args.common, Access::Write)?;
    let net = net_options(&args.net)?;
    let id = w.id()?;
    let cancel = CancelHandle::from_flag(interrupted);
    let mut printer = Printer::new(out, false);
    let resumed = w.resume(
        &net,
        Duration::from_secs(args.wait),
        args.stay,
        &mut ResumePrinter(&mut printer, id),
        &cancel,
    )?;
    let prepared: Vec<Value> = resumed
        .prepared
        .iter()
        .map(|p| {
            json!({ "tx": p.tx.to_string(), "seller": p.seller.to_hex(), "amount": p.amount.to_string() })
        })
        .collect();
    let committing: Vec<String> = resumed.committing.iter().map(|t| t.to_string()).collect();
    let object = json!({
        "wallet": id.to_hex(),
        "balance": resumed.balance.to_string(),
        "balance_minor": resumed.balance.minor_units(),
        "locked": resumed.locked.to_string(),
        "settled": prepared.is_empty() && committing.is_empty(),
        "prepared": prepared,
        "committing": committing,
        "log": printer.log,
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
    out.line(format!("balance {}", resumed.balance));
    out.done("resume", object);
    Ok(())
}

/// The first line of `resume`, once its UDP address is known.
struct ResumePrinter<'p, 'a>(&'p mut Printer<'a>, PartyId);

impl Listener for ResumePrinter<'_, '_> {
    fn progress(&mut self, progress: &Progress) {
        if let Progress::Resuming {
            local_addr,
            prepared,
            committing,
        } = progress
        {
            self.0.out.line(format!(
                "wallet {}: {prepared} uncertain payment(s), {committing} unacknowledged \
                 sale(s); serving on UDP {local_addr}",
                self.1,
            ));
        }
        self.0.progress(progress);
    }
}
