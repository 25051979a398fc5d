//! The model's paths replayed through the real engines
//! (`mpay_offline::Wallet`): the checker's counterexamples and seeded random
//! walks. Every model action is mapped to engine calls here, in
//! [`Engines::step`], and nowhere else:
//!
//! - `Start(t)` — `Wallet::sell` to buyer `t`;
//! - `Deliver(m)` — the payload the engine last sent as `m`, sealed again
//!   by its sender with a fresh nonce (the model's network delivers a
//!   message any number of times; a byte-for-byte replay is refused by the
//!   envelope, see `docs/security.md` §3), to `Wallet::handle_frame`;
//! - `Drop(m)` — forgets it; `Flush(p)` — applies every pending batch to the
//!   party's store and acknowledges it; `Crash(p)` — `Wallet::recover` from
//!   the store (a restarted seller looks for its buyers again: the model's
//!   seller knows both);
//! - `SellerTimeout(t)`, `BuyerTimeout(t)` — the clock advances to the
//!   engine's next timeout and `Wallet::handle_timeout` runs; a seller timer
//!   of the other sale that falls due first fires too, and the model takes
//!   that timeout as well;
//! - `SetIntent(t)` — `Wallet::set_buy_intent`;
//! - `Forge(k)` — the cheat seals a fresh message of kind `k` with its own
//!   keys: a dishonest buyer its `Pay` entry as AGREED's authorization, a
//!   dishonest seller a COMMIT-REQUEST for the sale's amount, a COMMIT or an
//!   ABORT;
//! - `Restore(c)` — the cheat's store is replaced by the copy it had when its
//!   durable log was `c`, and it restarts from it (for a seller, a rollback).
//!
//! A COMMIT or ABORT may reach a buyer that never took a COMMIT-REQUEST of
//! its transfer and so does not know the seller: the engine refuses it
//! (`InboundError::UnknownPeer`), which changes nothing, as the model's
//! buyer ignores it. The harness accepts that refusal only from a buyer
//! whose log holds nothing of the transfer (it keeps a seller's certificate
//! for good once it wrote a record with it).
//!
//! After every step the engines must be in the state the model says: the
//! same durable log per party and transaction (`Pay`, `Void`, `Receive`,
//! records), the same memory (sales, prepared payments, buy intents,
//! pending batches), the same messages in flight, the same balances, and
//! conservation per honest transfer on the durable stores.

use std::collections::BTreeMap;

use mpay_envelope::{ENVELOPE_VERSION, Header, MessageKind};
use mpay_identity::{
    Certificate, CertificateBody, Limits, MILLIS_PER_DAY, PartyId, Role, SecretKeys, Suite,
    Timestamp, TrustStore,
};
use mpay_model::{
    AMOUNT, Action, BUYER_BALANCE_START, BuyerLog, CHEAT_TRANSFER, Cheat, HEAL_ROUNDS_MAX, Kind,
    Msg, SELLER, Sale, SellerLog, State, TRANSFERS, TwoPhaseCommit, Variant, first_counterexample,
};
use mpay_money::{Amount, Currency};
use mpay_offline::chain::{ChainEntry, ChargeVoucher, EntryKind, GENESIS_PREV_HASH};
use mpay_offline::durable::Snapshot;
use mpay_offline::messages::{
    Abort, AbortReason, Agreed, CommitRequest, LookupReply, Message, Status, kind,
};
use mpay_offline::sync::SyncAttestation;
use mpay_offline::{BuyIntent, Config, Event, InboundError, TxId, Wallet};
use mpay_wire::Decode;
use rand_chacha::{ChaCha8Rng, ChaCha20Rng};
use rand_core::{Rng, SeedableRng};
use stateright::Model;

const START: Timestamp = Timestamp(1_767_225_600_000);
/// Random walks replayed per model configuration.
const WALKS: u64 = 300;
/// Random walks replayed of the model with a dishonest seller: its cheat
/// settles the buyer early on most walks, and 300 leave its rollback past a
/// `Receive` unvisited.
const WALKS_DISHONEST_SELLER: u64 = 1_000;
/// Actions per random walk at most.
const WALK_STEPS_MAX: usize = 40;
/// A walk of a model with a cheat lets it act on one step in this many.
const CHEAT_ONE_IN: u64 = 8;
/// Seller timers fired for one `SellerTimeout` before the harness gives up.
const TIMER_FIRINGS_MAX: usize = 8;

fn eur(minor: i64) -> Amount {
    Amount::new(minor, Currency::EUR)
}

/// The model's kind of a frame from `from_seller`, if the model has it.
fn model_kind(k: MessageKind, from_seller: bool) -> Option<Kind> {
    Some(match k {
        kind::COMMIT_REQUEST => Kind::CommitRequest,
        kind::AGREED => Kind::Agreed,
        kind::ABORT if from_seller => Kind::AbortToBuyer,
        kind::ABORT => Kind::AbortToSeller,
        kind::COMMIT => Kind::Commit,
        kind::COMMITTED => Kind::Committed,
        kind::STATUS => Kind::Status,
        _ => return None,
    })
}

/// The `Pay` entries for `tx` in `chain`.
fn pay_entries(chain: &[ChainEntry], tx: TxId) -> usize {
    chain
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Pay { tx: p, .. } if p == tx))
        .count()
}

struct Node {
    wallet: Wallet,
    store: Snapshot,
    keys: SecretKeys,
    starts: u64,
}

/// A message in flight: who sent it to whom, and its payload.
struct InFlight {
    from: usize,
    to: usize,
    kind: MessageKind,
    payload: Vec<u8>,
}

/// One seller (node 0) and two buyers (node `1 + t`), real engines.
struct Engines {
    config: Config,
    cheat: Option<Cheat>,
    nodes: Vec<Node>,
    txs: [Option<TxId>; TRANSFERS],
    network: BTreeMap<Msg, InFlight>,
    /// The cheat's store whenever its durable log was each value (a
    /// [`BuyerLog::index`] or a [`SellerLog::index`]).
    copies: BTreeMap<u8, Snapshot>,
    /// The cheat's latest `Pay` entry for its transfer.
    cheat_pay: Option<ChainEntry>,
    /// Per transfer: the seller sent a signed ABORT while its chain held the
    /// transfer's `Receive`.
    seller_aborted_a_sale: [bool; TRANSFERS],
    /// Per transfer: its buyer's engine accepted a COMMIT-REQUEST
    /// (`Event::PaymentRequested` with `accepted`).
    accepted: [bool; TRANSFERS],
    /// Per transfer: its buyer's engine sent COMMITTED.
    answered_committed: [bool; TRANSFERS],
    now: Timestamp,
    rng: ChaCha20Rng,
}

impl Engines {
    fn new(model: &TwoPhaseCommit, fault_presumed_abort_after_complete: bool) -> Engines {
        let config = Config {
            simulation: true,
            commit_request_attempts_max: u32::from(model.commit_request_attempts_max),
            fault_presumed_abort_after_complete,
            ..Config::default()
        };
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let office_id = PartyId::from_u64(100);
        let office_keys = SecretKeys::generate(Suite::SimulationOnly, &mut rng);
        let office = Certificate::issue(
            CertificateBody {
                subject: office_id,
                role: Role::MoneyOffice,
                keys: office_keys.public(),
                limits: None,
                issued_at: START.saturating_sub_ms(1),
                expires_at: START.saturating_add_ms(365 * MILLIS_PER_DAY),
                issuer: office_id,
            },
            &office_keys,
        );
        let limits = Limits {
            offline_balance_max: eur(1_000),
            payment_max: eur(100),
            days_between_syncs_max: 30,
            payments_between_syncs_max: 100,
        };
        let mut nodes = Vec::new();
        for n in 0..=TRANSFERS {
            let id = PartyId::from_u64(n as u64 + 1);
            let keys = SecretKeys::generate(Suite::SimulationOnly, &mut rng);
            let certificate = Certificate::issue(
                CertificateBody {
                    subject: id,
                    role: Role::Wallet,
                    keys: keys.public(),
                    limits: Some(limits),
                    issued_at: START.saturating_sub_ms(1),
                    expires_at: START.saturating_add_ms(365 * MILLIS_PER_DAY),
                    issuer: office_id,
                },
                &office_keys,
            );
            let attestation = SyncAttestation::issue(
                office_id,
                &office_keys,
                id,
                0,
                GENESIS_PREV_HASH,
                eur(0),
                START,
            );
            let mut store = Snapshot::default();
            store
                .apply(&Wallet::genesis(&keys, &certificate, &office, &attestation, START).unwrap())
                .unwrap();
            let mut wallet = Wallet::recover(config.clone(), &store, n as u64, START).unwrap();
            if n != usize::from(SELLER) {
                let mut charge_id = [0u8; 16];
                rng.fill_bytes(&mut charge_id);
                let voucher = ChargeVoucher::issue(
                    office_id,
                    &office_keys,
                    id,
                    charge_id,
                    eur(BUYER_BALANCE_START),
                    START,
                );
                wallet.charge(START, voucher).unwrap();
                while let Some(w) = wallet.poll_write() {
                    store.apply(&w.batch).unwrap();
                    wallet.write_completed(w.id);
                }
                while wallet.poll_event().is_some() {}
            }
            nodes.push(Node {
                wallet,
                store,
                keys,
                starts: 0,
            });
        }
        let mut engines = Engines {
            config,
            cheat: model.cheat,
            nodes,
            txs: [None; TRANSFERS],
            network: BTreeMap::new(),
            copies: BTreeMap::new(),
            cheat_pay: None,
            seller_aborted_a_sale: [false; TRANSFERS],
            accepted: [false; TRANSFERS],
            answered_committed: [false; TRANSFERS],
            now: START,
            rng,
        };
        match engines.cheat {
            Some(Cheat::Buyer) => {
                let cheat = usize::from(CHEAT_TRANSFER) + 1;
                engines.copies.insert(
                    BuyerLog::default().index(),
                    engines.nodes[cheat].store.clone(),
                );
            }
            Some(Cheat::Seller) => {
                let seller = usize::from(SELLER);
                engines.copies.insert(
                    SellerLog::default().index(),
                    engines.nodes[seller].store.clone(),
                );
            }
            None => {}
        }
        for t in 0..TRANSFERS {
            engines.set_intent(t);
        }
        engines.discover();
        engines
    }

    fn id(&self, n: usize) -> PartyId {
        self.nodes[n].wallet.id()
    }

    fn set_intent(&mut self, t: usize) {
        let seller = self.id(usize::from(SELLER));
        let expires_at = self.now.saturating_add_ms(MILLIS_PER_DAY);
        self.nodes[t + 1].wallet.set_buy_intent(BuyIntent {
            max_amount: eur(BUYER_BALANCE_START),
            seller: Some(seller),
            expires_at,
        });
    }

    /// What LOOKUP brings, outside the model: each buyer's LOOKUP-REPLY
    /// (its certificate and attestation, sealed by the buyer) reaches the
    /// seller, so the seller knows both buyers as the model's does. Built
    /// here rather than asked for, as a buyer answers only in buyer mode.
    fn discover(&mut self) {
        let seller = usize::from(SELLER);
        for b in 1..=TRANSFERS {
            let w = &self.nodes[b].wallet;
            let reply = Message::LookupReply(LookupReply {
                buyer_certificate: w.certificate().clone(),
                attestation: w.attestation().clone(),
                revocation_list: None,
            });
            let mut lookup_tx = [0u8; 16];
            self.rng.fill_bytes(&mut lookup_tx);
            let frame = self.seal(b, seller, lookup_tx, reply.kind(), &reply.payload());
            let now = self.now;
            self.nodes[seller]
                .wallet
                .handle_frame(now, &frame)
                .expect("the seller takes a LOOKUP-REPLY");
        }
        while self.nodes[seller].wallet.poll_event().is_some() {}
    }

    /// A frame from node `from` to node `to`, sealed with `from`'s keys.
    fn seal(
        &mut self,
        from: usize,
        to: usize,
        tx_id: [u8; 16],
        kind: MessageKind,
        payload: &[u8],
    ) -> Vec<u8> {
        let header = Header {
            version: ENVELOPE_VERSION,
            suite: Suite::SimulationOnly,
            kind,
            sender: self.id(from),
            receiver: self.id(to),
            tx_id,
            nonce: self.rng.next_u64(),
            sent_at: self.now,
        };
        let receiver_keys = *self.nodes[to].wallet.certificate().keys();
        mpay_envelope::seal(
            &self.nodes[from].keys,
            &header,
            payload,
            &receiver_keys,
            &mut self.rng,
        )
        .expect("seals")
    }

    fn transfer_of(&self, tx: TxId) -> Option<u8> {
        self.txs
            .iter()
            .position(|x| *x == Some(tx))
            .and_then(|t| u8::try_from(t).ok())
    }

    /// Moves node `n`'s released frames into the network (LOOKUP-REPLYs go
    /// straight to the seller) and returns the model messages among them.
    fn collect(&mut self, n: usize) -> Vec<Msg> {
        let mut sent = Vec::new();
        while let Some(t) = self.nodes[n].wallet.poll_transmit() {
            let header = mpay_envelope::peek_header(&t.frame).expect("engine frames parse");
            let from_seller = n == usize::from(SELLER);
            let (Some(k), Some(tx)) = (
                model_kind(header.kind, from_seller),
                self.transfer_of(TxId(header.tx_id)),
            ) else {
                continue; // ABORTED: outside the model.
            };
            let to = if from_seller { usize::from(tx) + 1 } else { 0 };
            let opened = mpay_envelope::open(
                &t.frame,
                &self.nodes[to].keys,
                self.id(to),
                &TrustStore::for_simulation(),
                self.now,
            )
            .expect("the receiver opens an engine frame");
            if from_seller
                && k == Kind::AbortToBuyer
                && self.nodes[n].wallet.received(&TxId(header.tx_id))
            {
                self.seller_aborted_a_sale[usize::from(tx)] = true;
            }
            if k == Kind::Committed {
                self.answered_committed[usize::from(tx)] = true;
            }
            let m = Msg { tx, kind: k };
            self.network.insert(
                m,
                InFlight {
                    from: n,
                    to,
                    kind: header.kind,
                    payload: opened.unverified_payload().to_vec(),
                },
            );
            sent.push(m);
        }
        while let Some(event) = self.nodes[n].wallet.poll_event() {
            if let Event::PaymentRequested {
                tx, accepted: true, ..
            } = event
                && let Some(t) = self.transfer_of(tx)
            {
                self.accepted[usize::from(t)] = true;
            }
        }
        sent
    }

    /// Delivers `m`; `s` is the model's state before the delivery.
    fn deliver(&mut self, m: Msg, s: &State) {
        let f = self
            .network
            .get(&m)
            .unwrap_or_else(|| panic!("{m:?} not in flight"));
        let (from, to, kind, payload) = (f.from, f.to, f.kind, f.payload.clone());
        let tx_id = self.txs[usize::from(m.tx)].expect("started").0;
        let frame = self.seal(from, to, tx_id, kind, &payload);
        let now = self.now;
        match self.nodes[to].wallet.handle_frame(now, &frame) {
            Ok(()) => {}
            // A buyer that holds nothing of the transfer need not know its
            // seller (see the module docs).
            Err(InboundError::UnknownPeer(_))
                if to != usize::from(SELLER)
                    && s.buyers[usize::from(m.tx)].mem == BuyerLog::default() => {}
            Err(e) => panic!("{m:?} refused: {e}"),
        }
    }

    fn flush(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        while let Some(w) = node.wallet.poll_write() {
            node.store.apply(&w.batch).expect("batches in chain order");
            node.wallet.write_completed(w.id);
        }
        let log = match self.cheat {
            Some(Cheat::Buyer) if n == usize::from(CHEAT_TRANSFER) + 1 => {
                Some(self.durable_buyer(usize::from(CHEAT_TRANSFER)).index())
            }
            Some(Cheat::Seller) if n == usize::from(SELLER) => Some(self.durable_seller().index()),
            _ => None,
        };
        if let Some(log) = log {
            self.copies.insert(log, self.nodes[n].store.clone());
        }
    }

    /// The node of the cheat.
    fn cheat_node(&self) -> usize {
        match self.cheat {
            Some(Cheat::Buyer) => usize::from(CHEAT_TRANSFER) + 1,
            Some(Cheat::Seller) => usize::from(SELLER),
            None => panic!("the model has no cheat"),
        }
    }

    fn restart(&mut self, n: usize) {
        let node = &mut self.nodes[n];
        node.starts += 1;
        let seed = (n as u64) * 1_000 + node.starts;
        node.wallet =
            Wallet::recover(self.config.clone(), &node.store, seed, self.now).expect("recovers");
        if n == usize::from(SELLER) {
            self.discover();
        }
    }

    /// Advances the clock to node `n`'s next timeout and runs it.
    fn fire(&mut self, n: usize) {
        let due = self.nodes[n].wallet.poll_timeout().expect("a timer is set");
        self.now = self.now.max(due);
        let now = self.now;
        self.nodes[n].wallet.handle_timeout(now);
    }

    fn forge(&mut self, k: Kind) {
        if self.cheat == Some(Cheat::Seller) {
            self.forge_as_seller(k);
            return;
        }
        let cheat = usize::from(CHEAT_TRANSFER) + 1;
        let message = match k {
            Kind::Status => Message::Status(Status {
                buyer_certificate: self.nodes[cheat].wallet.certificate().clone(),
            }),
            Kind::Committed => Message::Committed,
            Kind::AbortToSeller => Message::Abort(Abort {
                reason: AbortReason::UnknownTransaction,
            }),
            Kind::Agreed => Message::Agreed(Agreed {
                authorization: self.cheat_pay.clone().expect("the cheat signed a Pay"),
                shipping: None,
            }),
            other => panic!("the cheat cannot sign {other:?}"),
        };
        self.network.insert(
            Msg {
                tx: CHEAT_TRANSFER,
                kind: k,
            },
            InFlight {
                from: cheat,
                to: usize::from(SELLER),
                kind: message.kind(),
                payload: message.payload(),
            },
        );
    }

    /// The dishonest seller seals a fresh message to the buyer of its
    /// transfer.
    fn forge_as_seller(&mut self, k: Kind) {
        let seller = usize::from(SELLER);
        let message = match k {
            Kind::CommitRequest => Message::CommitRequest(CommitRequest {
                amount: eur(AMOUNT[usize::from(CHEAT_TRANSFER)]),
                description: "model".to_owned(),
                seller_certificate: self.nodes[seller].wallet.certificate().clone(),
            }),
            Kind::Commit => Message::Commit,
            Kind::AbortToBuyer => Message::Abort(Abort {
                reason: AbortReason::UnknownTransaction,
            }),
            other => panic!("the seller cannot sign {other:?}"),
        };
        self.network.insert(
            Msg {
                tx: CHEAT_TRANSFER,
                kind: k,
            },
            InFlight {
                from: seller,
                to: usize::from(CHEAT_TRANSFER) + 1,
                kind: message.kind(),
                payload: message.payload(),
            },
        );
    }

    /// Runs `action` on the engines and on the model state `s`; returns the
    /// model actions taken (the action, and any seller timeout that fell due
    /// with it).
    fn step(&mut self, model: &TwoPhaseCommit, s: &mut State, action: Action) -> Vec<Action> {
        let mut taken = vec![action];
        match action {
            Action::Start(t) => {
                let buyer = self.id(usize::from(t) + 1);
                let tx = self.nodes[usize::from(SELLER)]
                    .wallet
                    .sell(self.now, buyer, eur(AMOUNT[usize::from(t)]), "model")
                    .expect("the seller knows its buyers");
                self.txs[usize::from(t)] = Some(tx);
            }
            Action::Deliver(m) => self.deliver(m, s),
            Action::Drop(m) => {
                self.network.remove(&m);
            }
            Action::Flush(p) => self.flush(usize::from(p)),
            Action::Crash(p) => self.restart(usize::from(p)),
            Action::SellerTimeout(t) => {
                taken.clear();
                let seller = usize::from(SELLER);
                for _ in 0..TIMER_FIRINGS_MAX {
                    self.fire(seller);
                    let fired: Vec<u8> = self.collect(seller).iter().map(|m| m.tx).collect();
                    taken.extend(fired.iter().map(|&u| Action::SellerTimeout(u)));
                    if fired.contains(&t) {
                        break;
                    }
                }
                assert!(taken.contains(&action), "{action:?} never fired");
            }
            Action::BuyerTimeout(t) => self.fire(usize::from(t) + 1),
            Action::SetIntent(t) => self.set_intent(usize::from(t)),
            Action::Forge(k) => self.forge(k),
            Action::Restore(copy) => {
                let cheat = self.cheat_node();
                self.nodes[cheat].store = self.copies[&copy].clone();
                self.restart(cheat);
            }
        }
        for n in 0..=TRANSFERS {
            self.collect(n);
        }
        if let (Some(Cheat::Buyer), Some(tx)) = (self.cheat, self.txs[usize::from(CHEAT_TRANSFER)])
        {
            let cheat = &self.nodes[usize::from(CHEAT_TRANSFER) + 1].wallet;
            if let Some(entry) = cheat
                .chain()
                .iter()
                .rev()
                .find(|e| matches!(e.kind, EntryKind::Pay { tx: p, .. } if p == tx))
            {
                self.cheat_pay = Some(entry.clone());
            }
        }
        for &a in &taken {
            assert!(model.apply(s, a), "{a:?} not enabled in the model: {s:?}");
        }
        taken
    }

    fn chain(store: &Snapshot) -> Vec<ChainEntry> {
        store
            .chain
            .values()
            .map(|b| ChainEntry::from_wire(b).expect("stored entries decode"))
            .collect()
    }

    fn durable_buyer(&self, t: usize) -> BuyerLog {
        let Some(tx) = self.txs[t] else {
            return BuyerLog::default();
        };
        let store = &self.nodes[t + 1].store;
        let chain = Self::chain(store);
        let pays = pay_entries(&chain, tx);
        BuyerLog {
            pay: pays >= 1,
            void: chain
                .iter()
                .any(|e| matches!(e.kind, EntryKind::Void { tx: v, .. } if v == tx)),
            prepared_record: store.txs.contains_key(&tx.0),
            pay_again: pays >= 2,
        }
    }

    fn durable_seller(&self) -> SellerLog {
        let store = &self.nodes[usize::from(SELLER)].store;
        let chain = Self::chain(store);
        let mut log = SellerLog::default();
        for (t, tx) in self.txs.iter().enumerate() {
            if let Some(tx) = tx {
                log.receive[t] = chain
                    .iter()
                    .any(|e| matches!(e.kind, EntryKind::Receive { tx: r, .. } if r == *tx));
                log.committed_record[t] = store.txs.contains_key(&tx.0);
            }
        }
        log
    }

    fn balance(store: &Snapshot) -> i64 {
        Self::chain(store)
            .last()
            .map_or(0, |e| e.balance_after.minor_units())
    }

    /// The engines are in the state the model says.
    fn check(&self, model: &TwoPhaseCommit, s: &State, path: &[Action]) {
        let at = || format!("after {path:?}\nmodel: {s:?}");
        let seller = &self.nodes[usize::from(SELLER)];
        let seller_chain = Self::chain(&seller.store);
        let mut seller_mem_balance = 0;
        for (t, &amount) in AMOUNT.iter().enumerate() {
            let (durable, mem) = match self.txs[t] {
                None => (BuyerLog::default(), BuyerLog::default()),
                Some(tx) => {
                    let w = &self.nodes[t + 1].wallet;
                    let pays = pay_entries(w.chain(), tx);
                    let mem = BuyerLog {
                        pay: pays >= 1,
                        void: w.voided(&tx),
                        prepared_record: w.prepared_txs().any(|(p, _, _)| p == tx),
                        pay_again: pays >= 2,
                    };
                    (self.durable_buyer(t), mem)
                }
            };
            let b = &s.buyers[t];
            assert_eq!(durable, b.durable, "buyer {t}'s durable log {}", at());
            assert_eq!(mem, b.mem, "buyer {t}'s memory {}", at());
            let w = &self.nodes[t + 1].wallet;
            assert_eq!(
                w.buy_intent().is_some(),
                b.intent,
                "buyer {t}'s intent {}",
                at()
            );
            assert_eq!(
                w.writes_in_flight() > 0,
                s.pending(u8::try_from(t + 1).unwrap()),
                "buyer {t} pending {}",
                at()
            );
            assert_eq!(
                w.balance(),
                eur(b.mem.balance(t)),
                "buyer {t}'s balance {}",
                at()
            );
            assert_eq!(
                Self::balance(&self.nodes[t + 1].store),
                b.durable.balance(t),
                "buyer {t}'s durable balance {}",
                at()
            );
            assert_eq!(
                self.accepted[t],
                b.accepted,
                "buyer {t} accepted a request {}",
                at()
            );
            assert_eq!(
                self.answered_committed[t],
                b.answered_committed,
                "buyer {t} answered COMMITTED {}",
                at()
            );

            let (receive, record, sale) = match self.txs[t] {
                None => (false, false, Sale::None),
                Some(tx) => (
                    seller_chain
                        .iter()
                        .any(|e| matches!(e.kind, EntryKind::Receive { tx: r, .. } if r == tx)),
                    seller.store.txs.contains_key(&tx.0),
                    if seller.wallet.committing_txs().any(|c| c == tx) {
                        Sale::Committing
                    } else if seller.wallet.requesting_txs().any(|r| r == tx) {
                        Sale::Requesting { attempts: 0 }
                    } else {
                        Sale::None
                    },
                ),
            };
            assert_eq!(
                receive,
                s.seller.durable.receive[t],
                "seller's Receive {t} {}",
                at()
            );
            assert_eq!(
                record,
                s.seller.durable.committed_record[t],
                "seller's record {t} {}",
                at()
            );
            let model_sale = match s.seller.sales[t] {
                Sale::Requesting { .. } => Sale::Requesting { attempts: 0 },
                other => other,
            };
            assert_eq!(sale, model_sale, "seller's sale {t} {}", at());
            if s.seller.mem.receive[t] {
                seller_mem_balance += amount;
            }
            // Conservation of each honest transfer, on the durable stores.
            if model.honest(t) {
                let locked = durable.prepared_record && durable.pay && !durable.void && !receive;
                let money = if receive { amount } else { 0 }
                    + Self::balance(&self.nodes[t + 1].store)
                    + if locked { amount } else { 0 };
                assert_eq!(money, BUYER_BALANCE_START, "money of transfer {t} {}", at());
            }
        }
        assert_eq!(
            seller.wallet.balance(),
            eur(seller_mem_balance),
            "seller's balance {}",
            at()
        );
        assert_eq!(
            seller.wallet.writes_in_flight() > 0,
            s.pending(SELLER),
            "seller pending {}",
            at()
        );
        let in_flight: Vec<Msg> = self.network.keys().copied().collect();
        let model_in_flight: Vec<Msg> = s.network.iter().collect();
        assert_eq!(in_flight, model_in_flight, "messages in flight {}", at());
        assert_eq!(
            self.seller_aborted_a_sale,
            s.seller_aborted_a_sale,
            "the seller's ABORTs after Receive {}",
            at()
        );
    }
}

/// Replays `actions` through the engines, checking them against the model
/// after every step; returns the engines and the model's last state.
fn replay(model: &TwoPhaseCommit, fault: bool, actions: &[Action]) -> (Engines, State) {
    let mut engines = Engines::new(model, fault);
    let mut s = model.init_states()[0];
    let mut path = Vec::new();
    for &a in actions {
        path.extend(engines.step(model, &mut s, a));
        engines.check(model, &s, &path);
    }
    (engines, s)
}

/// What the random walks of one configuration covered.
#[derive(Default, Debug)]
struct Covered {
    steps: usize,
    /// Walks that ended with a `Receive` durable at the seller.
    committed: usize,
    /// Walks in which the seller's `Receive` was durable at some point.
    received: usize,
    /// Walks that ended with the seller's `Receive` gone after it was
    /// durable (only a dishonest seller's rollback gets there).
    rolled_back_sale: usize,
    /// Walks in which a prepared buyer voided its payment.
    voided: usize,
    /// Forged messages and restored copies among the steps.
    cheats: usize,
    /// Walks in which a COMMIT-REQUEST reached a buyer whose payment was
    /// final (kept by the model with a dishonest seller only).
    late_requests: usize,
    /// Walks that ended with a buyer's payment final while its seller holds
    /// no `Receive` (only a dishonest seller's rollback or forged COMMIT
    /// gets there).
    paid_unreceived: usize,
}

/// A seeded random walk through the model, each step replayed on the
/// engines, then the healing schedule; adds what it covered to `covered`.
fn walk(model: &TwoPhaseCommit, seed: u64, covered: &mut Covered) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut engines = Engines::new(model, false);
    let mut s = model.init_states()[0];
    let mut path = Vec::new();
    for _ in 0..WALK_STEPS_MAX {
        let mut actions = Vec::new();
        model.actions(&s, &mut actions);
        actions.retain(|&a| model.next_state(&s, a).is_some());
        if actions.is_empty() {
            break;
        }
        // The cheat acts on one step in CHEAT_ONE_IN at most: drawn
        // uniformly, its forgeries settle the buyer before the engines'
        // own commit comes about, and no walk would reach it.
        let (cheats, engine): (Vec<Action>, Vec<Action>) = actions
            .iter()
            .partition(|a| matches!(a, Action::Forge(_) | Action::Restore(_)));
        let pool = if cheats.is_empty() {
            engine
        } else if engine.is_empty() || rng.next_u64() % CHEAT_ONE_IN == 0 {
            cheats
        } else {
            engine
        };
        let len = u64::try_from(pool.len()).unwrap();
        let a = pool[usize::try_from(rng.next_u64() % len).unwrap()];
        let taken = engines.step(model, &mut s, a);
        path.extend(taken);
        engines.check(model, &s, &path);
        assert!(
            (0..TRANSFERS).all(|t| !model.honest(t) || s.atomic_in(t)),
            "seed {seed}: atomicity after {path:?}"
        );
    }
    heal(model, &mut engines, &mut s, &mut path);
    assert!(
        model.resolved_honest(&s),
        "seed {seed}: not resolved after healing: {path:?}"
    );
    covered.steps += path.len();
    covered.committed += usize::from(s.seller.durable.receive.iter().any(|&r| r));
    covered.voided += usize::from(s.buyers.iter().any(|b| b.durable.void));
    covered.cheats += path
        .iter()
        .filter(|a| matches!(a, Action::Forge(_) | Action::Restore(_)))
        .count();
    covered.received += usize::from(s.seller_received_ever.iter().any(|&r| r));
    covered.rolled_back_sale += usize::from(
        (0..TRANSFERS).any(|t| s.seller_received_ever[t] && !s.seller.durable.receive[t]),
    );
    covered.late_requests += usize::from(s.buyers.iter().any(|b| b.late_request));
    covered.paid_unreceived += usize::from(
        (0..TRANSFERS).any(|t| s.buyers[t].durable.committed() && !s.seller.durable.receive[t]),
    );
}

/// The model's healing schedule (`mpay_model::heal`: no loss, no crash;
/// flush every batch, deliver every message in flight once, fire every
/// timeout; repeat) as actions, run on the engines and the model together.
fn heal(model: &TwoPhaseCommit, engines: &mut Engines, s: &mut State, path: &mut Vec<Action>) {
    let mut take = |engines: &mut Engines, s: &mut State, a: Action| {
        if model.next_state(s, a).is_some() {
            path.extend(engines.step(model, s, a));
            engines.check(model, s, path);
        }
    };
    let parties = 0..=u8::try_from(TRANSFERS).unwrap();
    for _ in 0..=HEAL_ROUNDS_MAX {
        for p in parties.clone() {
            take(engines, s, Action::Flush(p));
        }
        if model.resolved_honest(s) {
            return;
        }
        for m in s.network.iter() {
            let to = if matches!(
                m.kind,
                Kind::Agreed | Kind::AbortToSeller | Kind::Committed | Kind::Status
            ) {
                SELLER
            } else {
                m.tx + 1
            };
            take(engines, s, Action::Flush(to));
            take(engines, s, Action::Deliver(m));
            take(engines, s, Action::Drop(m));
        }
        for p in parties.clone() {
            take(engines, s, Action::Flush(p));
        }
        for t in 0..u8::try_from(TRANSFERS).unwrap() {
            take(engines, s, Action::SellerTimeout(t));
            take(engines, s, Action::BuyerTimeout(t));
        }
    }
}

fn walks(model: &TwoPhaseCommit, first_seed: u64, count: u64) -> Covered {
    let mut covered = Covered::default();
    for seed in first_seed..first_seed + count {
        walk(model, seed, &mut covered);
    }
    println!("{count} walks replayed on the engines: {covered:?}");
    assert!(covered.steps >= count as usize * WALK_STEPS_MAX / 2);
    assert!(covered.received > 0 && covered.voided > 0, "{covered:?}");
    covered
}

#[test]
fn random_walks_of_the_honest_model_replay_on_the_engines() {
    walks(&TwoPhaseCommit::new(Variant::Correct), 0, WALKS);
}

#[test]
fn random_walks_with_a_dishonest_buyer_replay_on_the_engines() {
    let covered = walks(
        &TwoPhaseCommit::with_dishonest_buyer(Variant::Correct),
        1_000,
        WALKS,
    );
    assert!(covered.cheats > 0);
}

#[test]
fn random_walks_with_a_dishonest_seller_replay_on_the_engines() {
    let covered = walks(
        &TwoPhaseCommit::with_dishonest_seller(Variant::Correct),
        2_000,
        WALKS_DISHONEST_SELLER,
    );
    assert!(covered.cheats > 0, "{covered:?}");
    assert!(covered.rolled_back_sale > 0, "{covered:?}");
    assert!(covered.late_requests > 0, "{covered:?}");
    assert!(covered.paid_unreceived > 0, "{covered:?}");
}

/// The checker's example path of every `sometimes` property of the model
/// with a dishonest seller (the cheat restoring a copy from before a sale it
/// received, its COMMIT-REQUEST reaching a buyer whose payment was final,
/// …), each replayed on the engines and then healed.
#[test]
fn the_dishonest_seller_examples_replay_on_the_engines() {
    let model = TwoPhaseCommit::with_dishonest_seller(Variant::Correct);
    let report = mpay_model::check_model(model.clone(), 1);
    assert!(report.violated.is_empty(), "{:?}", report.counterexample);
    let mut steps = 0;
    for (name, actions) in &report.discoveries {
        let (mut engines, mut s) = replay(&model, false, actions);
        let mut path = actions.clone();
        heal(&model, &mut engines, &mut s, &mut path);
        assert!(model.resolved_honest(&s), "{name}: not resolved: {path:?}");
        println!("{name}: {} steps, healed in {}", actions.len(), path.len());
        steps += path.len();
    }
    println!(
        "{} example paths replayed, {steps} steps",
        report.discoveries.len()
    );
    assert!(report.discoveries.len() >= 5, "{:?}", report.reached);
}

/// The text of a caught panic.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// The buyer that pays a repeated COMMIT-REQUEST again is the model's
/// alone: its counterexample, replayed on the engines as built, drifts at
/// the late request (the engine writes no second `Pay`), and the correct
/// model follows the engines up to that request and past it.
#[test]
fn the_engines_do_not_pay_a_repeated_request_again() {
    let broken = TwoPhaseCommit::with_dishonest_seller(Variant::PayAgainAfterComplete);
    let (property, actions) = first_counterexample(broken.clone(), 1).expect("a counterexample");
    println!("{property}: {actions:?}");
    let late_request = actions
        .iter()
        .rposition(|a| {
            matches!(
                a,
                Action::Deliver(Msg {
                    kind: Kind::CommitRequest,
                    ..
                })
            )
        })
        .expect("the counterexample delivers a COMMIT-REQUEST");
    let drifted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        replay(&broken, false, &actions);
    }))
    .expect_err("the engines paid the repeated request again");
    let text = panic_text(drifted.as_ref());
    assert!(text.contains("buyer 0's memory"), "{text}");
    assert!(
        text.contains(&format!("after {:?}\nmodel", &actions[..=late_request])),
        "not at the late request: {text}"
    );

    let correct = TwoPhaseCommit::with_dishonest_seller(Variant::Correct);
    let (engines, s) = replay(&correct, false, &actions[..=late_request]);
    let t = usize::from(CHEAT_TRANSFER);
    assert!(s.buyers[t].late_request && s.buyers[t].durable.committed());
    assert!(!s.pending(CHEAT_TRANSFER + 1));
    assert_eq!(engines.durable_buyer(t), s.buyers[t].durable);
    let store = &engines.nodes[t + 1].store;
    let tx = engines.txs[t].expect("started");
    assert_eq!(pay_entries(&Engines::chain(store), tx), 1);
}

/// The shortest path on which the seller of the broken variant signs ABORT
/// for a sale it received.
fn presumed_abort_counterexample() -> Vec<Action> {
    let broken = TwoPhaseCommit::with_dishonest_buyer(Variant::PresumedAbortAfterComplete);
    let (property, actions) = first_counterexample(broken, 1).expect("a counterexample");
    println!("{property}: {actions:?}");
    actions
}

#[test]
fn the_presumed_abort_counterexample_reproduces_on_faulty_engines() {
    let actions = presumed_abort_counterexample();
    let broken = TwoPhaseCommit::with_dishonest_buyer(Variant::PresumedAbortAfterComplete);
    let (engines, s) = replay(&broken, true, &actions);
    assert!(s.seller_aborted_a_sale.iter().any(|&a| a));
    assert!(
        engines.seller_aborted_a_sale.iter().any(|&a| a),
        "the faulty engine signed no ABORT for a sale it received"
    );
    // The same path on the engines as built: the seller answers COMMIT.
    let correct = TwoPhaseCommit::with_dishonest_buyer(Variant::Correct);
    let (engines, s) = replay(&correct, false, &actions);
    assert!(!s.seller_aborted_a_sale.iter().any(|&a| a));
    assert!(!engines.seller_aborted_a_sale.iter().any(|&a| a));
}

#[test]
fn the_replay_notices_engines_that_drift_from_the_model() {
    let actions = presumed_abort_counterexample();
    let correct = TwoPhaseCommit::with_dishonest_buyer(Variant::Correct);
    let drifted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        replay(&correct, true, &actions);
    }));
    assert!(
        drifted.is_err(),
        "the correct model and the faulty engines went the same way"
    );
}
