//! Two wallets driven in memory with a scripted link: each test says which
//! frames arrive, in which order, and checks balances, events and durable
//! state. No mocks: real engines, real crypto, an in-memory store with the
//! same rules as the SQLite one.

use mpay_envelope::{ENVELOPE_VERSION, Header, MessageKind};
use mpay_identity::{
    Certificate, CertificateBody, Limits, PartyId, Role, SecretKeys, Suite, Timestamp,
};
use mpay_money::{Amount, Currency};
use mpay_offline::chain::{ChargeVoucher, EntryKind, GENESIS_PREV_HASH, VoidProof};
use mpay_offline::durable::Snapshot;
use mpay_offline::messages::{Abort, AbortReason, Agreed, Message, Shipping, Status, kind};
use mpay_offline::records::meta;
use mpay_offline::sync::SyncAttestation;
use mpay_offline::{BuyIntent, ChargeError, Config, Event, SellError, Transmit, TxId, Wallet};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

const T0: Timestamp = Timestamp(1_767_225_600_000);

fn eur(cents: i64) -> Amount {
    Amount::new(cents, Currency::EUR)
}

struct Phone {
    wallet: Option<Wallet>,
    store: Snapshot,
    events: Vec<Event>,
    seed: u64,
}

impl Phone {
    fn w(&mut self) -> &mut Wallet {
        self.wallet.as_mut().expect("phone is up")
    }

    /// Makes every pending write durable and returns the frames released.
    fn pump(&mut self) -> Vec<Transmit> {
        let wallet = self.wallet.as_mut().expect("phone is up");
        let mut out = Vec::new();
        loop {
            if let Some(write) = wallet.poll_write() {
                self.store.apply(&write.batch).expect("batch in order");
                wallet.write_completed(write.id);
            } else if let Some(t) = wallet.poll_transmit() {
                out.push(t);
            } else if let Some(e) = wallet.poll_event() {
                self.events.push(e);
            } else {
                return out;
            }
        }
    }

    fn crash_and_restart(&mut self, now: Timestamp) {
        self.wallet = None;
        self.seed += 1000;
        self.wallet = Some(
            Wallet::recover(Config::default(), &self.store, self.seed, now).expect("recovers"),
        );
    }

    fn deliver(&mut self, now: Timestamp, frames: &[Transmit]) -> Vec<Transmit> {
        for f in frames {
            let _ = self.w().handle_frame(now, &f.frame);
        }
        self.pump()
    }
}

struct Pair {
    seller: Phone,
    buyer: Phone,
    office_keys: SecretKeys,
    office_id: PartyId,
    rng: ChaCha20Rng,
}

fn pair() -> Pair {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let office_id = PartyId::from_u64(100);
    let office_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let office = Certificate::issue(
        CertificateBody {
            subject: office_id,
            role: Role::MoneyOffice,
            keys: office_keys.public(),
            limits: None,
            issued_at: T0.saturating_sub_ms(1),
            expires_at: T0.saturating_add_ms(1 << 40),
            issuer: office_id,
        },
        &office_keys,
    );
    let limits = Limits {
        offline_balance_max: eur(100_000),
        payment_max: eur(20_000),
        days_between_syncs_max: 7,
        payments_between_syncs_max: 100,
    };
    let phone = |n: u64, rng: &mut ChaCha20Rng| {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, rng);
        let cert = Certificate::issue(
            CertificateBody {
                subject: PartyId::from_u64(n),
                role: Role::Wallet,
                keys: keys.public(),
                limits: Some(limits),
                issued_at: T0.saturating_sub_ms(1),
                expires_at: T0.saturating_add_ms(1 << 40),
                issuer: office_id,
            },
            &office_keys,
        );
        let attestation = SyncAttestation::issue(
            office_id,
            &office_keys,
            cert.subject(),
            0,
            GENESIS_PREV_HASH,
            eur(0),
            T0,
        );
        let mut store = Snapshot::default();
        store
            .apply(&Wallet::genesis(&keys, &cert, &office, &attestation, T0).unwrap())
            .unwrap();
        Phone {
            wallet: Some(Wallet::recover(Config::default(), &store, n, T0).unwrap()),
            store,
            events: Vec::new(),
            seed: n,
        }
    };
    let seller = phone(1, &mut rng);
    let buyer = phone(2, &mut rng);
    let mut p = Pair {
        seller,
        buyer,
        office_keys,
        office_id,
        rng,
    };
    p.charge_buyer(50_000);
    p
}

impl Pair {
    fn voucher(&mut self, wallet: PartyId, cents: i64) -> ChargeVoucher {
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        ChargeVoucher::issue(
            self.office_id,
            &self.office_keys,
            wallet,
            id,
            eur(cents),
            T0,
        )
    }

    fn charge_buyer(&mut self, cents: i64) {
        let id = self.buyer.w().id();
        let v = self.voucher(id, cents);
        self.buyer.w().charge(T0, v).unwrap();
        self.buyer.pump();
    }

    fn total(&mut self) -> Amount {
        let s = self.seller.w();
        let seller_total = s.balance();
        let b = self.buyer.w();
        let locked_unclaimed = b
            .prepared_txs()
            .filter(|(tx, _, _)| !self.seller.wallet.as_ref().unwrap().received(tx))
            .map(|(_, _, a)| a.minor_units())
            .sum::<i64>();
        let b = self.buyer.w();
        eur(seller_total.minor_units() + b.balance().minor_units() + locked_unclaimed)
    }

    fn intent(&mut self, max: i64) {
        let seller = self.seller.w().id();
        self.buyer.w().set_buy_intent(BuyIntent {
            max_amount: eur(max),
            seller: Some(seller),
            expires_at: T0.saturating_add_ms(60_000),
        });
    }

    /// LOOKUP and reply, so the seller knows the buyer.
    fn discover(&mut self) {
        self.seller.w().lookup(T0);
        let lookup = self.seller.pump();
        assert_eq!(lookup.len(), 1);
        assert_eq!(lookup[0].to, PartyId::BROADCAST);
        let reply = self.buyer.deliver(T0, &lookup);
        assert_eq!(reply.len(), 1, "buyer in buyer mode answers the LOOKUP");
        self.seller.deliver(T0, &reply);
        let buyer = self.buyer.w().id();
        assert_eq!(self.seller.w().nearby_buyers(), vec![buyer]);
    }

    fn sell(&mut self, cents: i64) -> (TxId, Vec<Transmit>) {
        let buyer = self.buyer.w().id();
        let tx = self
            .seller
            .w()
            .sell(T0, buyer, eur(cents), "coffee")
            .unwrap();
        (tx, self.seller.pump())
    }

    /// A sale of `cents` carried through AGREED, COMMIT and ACK at `T0`,
    /// every frame delivered once.
    fn sell_to_completion(&mut self, cents: i64) -> TxId {
        let (tx, request) = self.sell(cents);
        let agreed = self.buyer.deliver(T0, &request);
        let commit = self.seller.deliver(T0, &agreed);
        let ack = self.buyer.deliver(T0, &commit);
        self.seller.deliver(T0, &ack);
        tx
    }
}

#[test]
fn a_purchase_moves_the_money_and_forgets_the_transaction() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(450);
    let agreed = p.buyer.deliver(T0, &request);
    assert_eq!(p.buyer.w().balance(), eur(49_550));
    assert_eq!(p.buyer.w().locked(), eur(450));
    let commit = p.seller.deliver(T0, &agreed);
    assert_eq!(p.seller.w().balance(), eur(450));
    assert_eq!(p.total(), before);
    let ack = p.buyer.deliver(T0, &commit);
    assert_eq!(p.buyer.w().locked(), eur(0));
    assert!(p.buyer.w().paid(&tx));
    p.seller.deliver(T0, &ack);
    assert_eq!(p.seller.w().committing_txs().count(), 0);
    assert_eq!(p.total(), before);
    assert!(p.seller.events.contains(&Event::SaleCompleted { tx }));
    assert!(
        p.buyer
            .events
            .iter()
            .any(|e| matches!(e, Event::PaymentCommitted { .. }))
    );
    // The seller forgot the transaction (COMPLETE); its Receive entry stays.
    assert!(p.seller.store.txs.is_empty());
    assert!(p.buyer.store.txs.is_empty());
    assert!(p.seller.w().received(&tx));
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn shared_shipping_details_reach_the_seller_sealed_and_outlive_crashes_of_both() {
    let address = "Ann Example, 42 Quiet Lane, Smalltown";
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    let intent = p.buyer.w().buy_intent().expect("buyer mode");
    let shipping = Shipping::new(address).expect("short enough");
    p.buyer
        .w()
        .set_buy_intent_sharing(intent, Some(shipping.clone()));
    p.discover();
    let (tx, request) = p.sell(450);
    let agreed = p.buyer.deliver(T0, &request);
    assert_eq!(agreed.len(), 1);
    assert!(
        !contains(&agreed[0].frame, address),
        "the AGREED carries the details sealed, not in plain text"
    );
    // The AGREED is lost and the buyer restarts: its prepared record keeps
    // the details, and the AGREED it sends again shares them too.
    p.buyer.crash_and_restart(T0);
    p.buyer.pump();
    let later = T0.saturating_add_ms(1_000);
    p.seller.w().handle_timeout(later);
    let request_again = p.seller.pump();
    assert_eq!(request_again.len(), 1, "the seller asks again");
    let agreed_again = p.buyer.deliver(later, &request_again);
    assert_eq!(agreed_again.len(), 1, "the recovered buyer agrees again");
    let commit = p.seller.deliver(later, &agreed_again);
    assert_eq!(p.seller.w().shipping_shared(&tx), Some(&shipping));
    // The seller restarts before the buyer acknowledges: the details were
    // written with the Receive entry.
    p.seller.crash_and_restart(later);
    p.seller.pump();
    assert_eq!(p.seller.w().shipping_shared(&tx), Some(&shipping));
    let ack = p.buyer.deliver(later, &commit);
    p.seller.deliver(later, &ack);
    assert!(p.buyer.w().paid(&tx));
    assert_eq!(p.total(), before, "money is conserved");
    // What the money office reads at sync is the chain: the details are in
    // neither chain, and the buyer forgot them with its prepared record.
    for phone in [&p.seller, &p.buyer] {
        for entry in phone.store.chain.values() {
            assert!(!contains(entry, address), "shipping details in a chain");
        }
    }
    assert!(p.buyer.store.txs.is_empty());
    assert!(
        !p.buyer.store.meta.values().any(|v| contains(v, address)),
        "the buyer keeps no copy outside its profile"
    );
}

#[test]
fn without_sharing_the_seller_learns_no_shipping_details() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let tx = p.sell_to_completion(450);
    assert!(p.buyer.w().paid(&tx));
    assert_eq!(p.seller.w().shipping_shared(&tx), None);
    assert!(
        !p.seller
            .store
            .meta
            .keys()
            .any(|k| k.starts_with(meta::SHIPPING_PREFIX))
    );
    assert_eq!(p.total(), before);
}

#[test]
fn shipping_details_go_with_the_intent_they_were_given_for() {
    let mut p = pair();
    p.intent(1_000);
    let intent = p.buyer.w().buy_intent().expect("buyer mode");
    let shipping = Shipping::new("1 Main St").expect("short");
    p.buyer.w().set_buy_intent_sharing(intent, Some(shipping));
    // The owner leaves buyer mode and enters it again without sharing.
    p.buyer.w().clear_buy_intent();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(450);
    let agreed = p.buyer.deliver(T0, &request);
    p.seller.deliver(T0, &agreed);
    assert!(p.seller.w().received(&tx));
    assert_eq!(p.seller.w().shipping_shared(&tx), None);
}

#[test]
fn nothing_leaves_before_its_record_is_durable() {
    let mut p = pair();
    p.intent(1_000);
    p.discover();
    let (_, request) = p.sell(300);
    for f in &request {
        p.buyer.w().handle_frame(T0, &f.frame).unwrap();
    }
    let write = p.buyer.w().poll_write().expect("prepare writes UNDO/REDO");
    assert!(
        p.buyer.w().poll_transmit().is_none(),
        "AGREED must wait for the UNDO/REDO record"
    );
    p.buyer.store.apply(&write.batch).unwrap();
    p.buyer.w().write_completed(write.id);
    assert!(p.buyer.w().poll_transmit().is_some());
}

#[test]
fn buyer_refuses_more_than_agreed_and_more_than_it_has() {
    let mut p = pair();
    let before = p.total();
    p.intent(400);
    p.discover();
    let (tx, request) = p.sell(401);
    let abort = p.buyer.deliver(T0, &request);
    p.seller.deliver(T0, &abort);
    assert!(p.seller.events.contains(&Event::SaleAborted {
        tx,
        reason: AbortReason::NotAgreed
    }));
    p.intent(90_000);
    let (tx, request) = p.sell(60_000);
    let abort = p.buyer.deliver(T0, &request);
    p.seller.deliver(T0, &abort);
    assert!(p.seller.events.iter().any(
        |e| matches!(e, Event::SaleAborted { tx: t, reason: AbortReason::OverLimit } if *t == tx)
    ));
    let (tx, request) = p.sell(15_000);
    // Within the limit and the intent, but spend the balance first.
    p.buyer.w().clear_buy_intent();
    let abort = p.buyer.deliver(T0, &request);
    p.seller.deliver(T0, &abort);
    assert!(p.seller.events.iter().any(
        |e| matches!(e, Event::SaleAborted { tx: t, reason: AbortReason::NotAgreed } if *t == tx)
    ));
    assert_eq!(p.total(), before);
    assert_eq!(p.buyer.w().balance(), eur(50_000));
}

#[test]
fn insufficient_funds_is_refused() {
    let mut p = pair();
    p.intent(20_000);
    p.discover();
    // Spend most of the balance first.
    for _ in 0..2 {
        p.intent(20_000);
        let (_, r) = p.sell(20_000);
        let a = p.buyer.deliver(T0, &r);
        let c = p.seller.deliver(T0, &a);
        let k = p.buyer.deliver(T0, &c);
        p.seller.deliver(T0, &k);
    }
    assert_eq!(p.buyer.w().balance(), eur(10_000));
    p.intent(20_000);
    let (tx, r) = p.sell(10_001);
    let a = p.buyer.deliver(T0, &r);
    p.seller.deliver(T0, &a);
    assert!(p.seller.events.contains(&Event::SaleAborted {
        tx,
        reason: AbortReason::InsufficientFunds
    }));
}

#[test]
fn duplicates_and_replays_change_nothing() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(700);
    let agreed = p.buyer.deliver(T0, &request);
    // The exact same frame again is a replay at the envelope.
    let err = p.buyer.w().handle_frame(T0, &request[0].frame).unwrap_err();
    assert!(err.to_string().contains("replay"), "{err}");
    assert_eq!(p.buyer.w().locked(), eur(700));
    let commit = p.seller.deliver(T0, &agreed);
    let ack = p.buyer.deliver(T0, &commit);
    // A retransmitted COMMIT (new nonce) after commit is re-acknowledged and
    // changes nothing.
    p.seller.deliver(T0, &[]);
    let later = T0.saturating_add_ms(60_000);
    p.seller.w().handle_timeout(later);
    let commit_again = p.seller.pump();
    assert_eq!(
        commit_again.len(),
        1,
        "seller retransmits COMMIT until acknowledged"
    );
    let ack_again = p.buyer.deliver(later, &commit_again);
    assert_eq!(ack_again.len(), 1, "a duplicate COMMIT is re-acknowledged");
    p.seller.deliver(later, &ack);
    p.seller.deliver(later, &ack_again);
    assert_eq!(p.buyer.w().balance(), eur(49_300));
    assert_eq!(p.seller.w().balance(), eur(700));
    assert_eq!(p.total(), before);
    let pays = p
        .buyer
        .w()
        .chain()
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Pay { .. }))
        .count();
    assert_eq!(pays, 1);
    assert!(p.buyer.w().paid(&tx));
}

#[test]
fn seller_that_hears_nothing_aborts_and_the_buyer_gets_its_money_back_with_proof() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(250);
    let _lost_agreed = p.buyer.deliver(T0, &request);
    assert_eq!(p.buyer.w().locked(), eur(250));
    // Every retry of COMMIT-REQUEST is lost too; then the seller gives up.
    let mut now = T0;
    let mut abort = Vec::new();
    for _ in 0..20 {
        now = p.seller.w().poll_timeout().unwrap_or(now).max(now);
        p.seller.w().handle_timeout(now);
        let out = p.seller.pump();
        if p.seller
            .events
            .iter()
            .any(|e| matches!(e, Event::SaleAborted { .. }))
        {
            abort = out;
            break;
        }
    }
    assert_eq!(abort.len(), 1, "seller sends ABORT after its last retry");
    let ack = p.buyer.deliver(now, &abort);
    assert_eq!(ack.len(), 1);
    assert_eq!(p.buyer.w().locked(), eur(0));
    assert_eq!(p.buyer.w().balance(), eur(50_000));
    assert!(p.buyer.w().voided(&tx));
    assert_eq!(p.total(), before);
    // The buyer's Void entry carries the seller's signed ABORT as proof.
    let void = p.buyer.w().chain().last().unwrap().kind.clone();
    match void {
        EntryKind::Void {
            proof: VoidProof::SellerAbort(evidence),
            ..
        } => {
            assert_eq!(evidence.header.sender, p.seller.w().id());
            let seller_keys = *p.seller.w().certificate().keys();
            mpay_envelope::verify_detached(
                &seller_keys,
                &evidence.header,
                &evidence.payload,
                &evidence.signature,
            )
            .unwrap();
        }
        other => panic!("expected a Void entry with the seller's ABORT, got {other:?}"),
    }
    assert!(p.buyer.store.txs.is_empty(), "the UNDO record is gone");
}

#[test]
fn seller_crash_after_commit_record_resends_commit() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(900);
    let agreed = p.buyer.deliver(T0, &request);
    let _lost_commit = p.seller.deliver(T0, &agreed);
    p.seller.crash_and_restart(T0.saturating_add_ms(10));
    assert_eq!(p.seller.w().committing_txs().collect::<Vec<_>>(), vec![tx]);
    let now = p.seller.w().poll_timeout().unwrap();
    p.seller.w().handle_timeout(now);
    let commit = p.seller.pump();
    let ack = p.buyer.deliver(now, &commit);
    p.seller.deliver(now, &ack);
    assert!(p.buyer.w().paid(&tx));
    assert_eq!(p.seller.w().committing_txs().count(), 0);
    assert_eq!(p.total(), before);
}

#[test]
fn seller_crash_before_commit_is_presumed_abort() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(900);
    let _agreed_lost = p.buyer.deliver(T0, &request);
    // The seller forgets the sale (phase 1 is not durable).
    p.seller.crash_and_restart(T0.saturating_add_ms(10));
    assert_eq!(p.seller.w().requesting_txs().count(), 0);
    // The uncertain buyer asks; the seller has no record: ABORT.
    let now = p.buyer.w().poll_timeout().unwrap();
    p.buyer.w().handle_timeout(now);
    let status = p.buyer.pump();
    assert_eq!(status.len(), 1);
    let abort = p.seller.deliver(now, &status);
    p.buyer.deliver(now, &abort);
    assert!(p.buyer.w().voided(&tx));
    assert_eq!(p.buyer.w().balance(), eur(50_000));
    assert_eq!(p.total(), before);
}

#[test]
fn buyer_crash_while_prepared_asks_and_commits() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(600);
    let agreed = p.buyer.deliver(T0, &request);
    let _commit_lost = p.seller.deliver(T0, &agreed);
    p.buyer.crash_and_restart(T0.saturating_add_ms(5));
    assert_eq!(
        p.buyer.w().locked(),
        eur(600),
        "the lock survives the crash"
    );
    let now = p.buyer.w().poll_timeout().unwrap();
    p.buyer.w().handle_timeout(now);
    let status = p.buyer.pump();
    let commit = p.seller.deliver(now, &status);
    let ack = p.buyer.deliver(now, &commit);
    p.seller.deliver(now, &ack);
    assert!(p.buyer.w().paid(&tx));
    assert_eq!(p.total(), before);
}

#[test]
fn uncertain_buyer_past_the_claim_deadline_waits_for_the_office() {
    let mut p = pair();
    p.intent(1_000);
    p.discover();
    let (tx, request) = p.sell(600);
    let _agreed_lost_forever = p.buyer.deliver(T0, &request);
    let after = T0.saturating_add_ms(Config::default().claim_window_ms + 1);
    p.buyer.w().handle_timeout(after);
    p.buyer.pump();
    assert!(
        p.buyer
            .events
            .contains(&Event::PaymentAwaitingOffice { tx })
    );
    assert_eq!(
        p.buyer.w().locked(),
        eur(600),
        "only the office may release it"
    );
    assert_eq!(p.buyer.w().poll_timeout(), None, "no more STATUS probes");
}

#[test]
fn charges_are_checked() {
    let mut p = pair();
    let buyer = p.buyer.w().id();
    let v = p.voucher(buyer, 100);
    p.buyer.w().charge(T0, v.clone()).unwrap();
    assert_eq!(p.buyer.w().charge(T0, v), Err(ChargeError::AlreadyUsed));
    let seller = p.seller.w().id();
    let other = p.voucher(seller, 100);
    assert_eq!(p.buyer.w().charge(T0, other), Err(ChargeError::WrongWallet));
    let too_much = p.voucher(buyer, 60_000);
    assert!(matches!(
        p.buyer.w().charge(T0, too_much),
        Err(ChargeError::OverLimit(_))
    ));
    let mut forged = p.voucher(buyer, 100);
    forged.amount = eur(10_000);
    assert_eq!(p.buyer.w().charge(T0, forged), Err(ChargeError::BadVoucher));
    assert_eq!(p.buyer.w().balance(), eur(50_100));
}

#[test]
fn selling_needs_a_discovered_buyer_and_a_positive_amount() {
    let mut p = pair();
    let buyer = p.buyer.w().id();
    assert_eq!(
        p.seller.w().sell(T0, buyer, eur(5), "x"),
        Err(SellError::UnknownBuyer(buyer))
    );
    p.intent(10);
    p.discover();
    assert!(matches!(
        p.seller.w().sell(T0, buyer, eur(0), "x"),
        Err(SellError::InvalidAmount(_))
    ));
    assert!(matches!(
        p.seller
            .w()
            .sell(T0, buyer, Amount::new(5, Currency::USD), "x"),
        Err(SellError::InvalidAmount(_))
    ));
}

#[test]
fn no_buyer_mode_no_lookup_reply() {
    let mut p = pair();
    p.seller.w().lookup(T0);
    let lookup = p.seller.pump();
    let reply = p.buyer.deliver(T0, &lookup);
    assert!(reply.is_empty(), "a wallet not in buyer mode stays silent");
}

#[test]
fn recovery_rebuilds_the_same_wallet() {
    let mut p = pair();
    p.intent(1_000);
    p.discover();
    let (_, request) = p.sell(123);
    let _ = p.buyer.deliver(T0, &request);
    let balance = p.buyer.w().balance();
    let locked = p.buyer.w().locked();
    let chain_len = p.buyer.w().chain().len();
    p.buyer.crash_and_restart(T0);
    assert_eq!(p.buyer.w().balance(), balance);
    assert_eq!(p.buyer.w().locked(), locked);
    assert_eq!(p.buyer.w().chain().len(), chain_len);
}

/// A frame `from` signs with its genuine keys and seals to `to` with a fresh
/// nonce: what a modified client can send at any time.
fn forged(from: &Phone, to: &mut Phone, now: Timestamp, tx: TxId, message: &Message) -> Transmit {
    let keys = SecretKeys::from_secret_bytes(&from.store.meta[meta::SECRET_KEYS]).unwrap();
    let sender = from.wallet.as_ref().unwrap().id();
    let receiver = to.w().certificate().clone();
    let mut rng = ChaCha20Rng::seed_from_u64(now.0 ^ u64::from(message.kind().0));
    let header = Header {
        version: ENVELOPE_VERSION,
        suite: keys.suite(),
        kind: message.kind(),
        sender,
        receiver: receiver.subject(),
        tx_id: tx.0,
        nonce: rng.next_u64(),
        sent_at: now,
    };
    let frame = mpay_envelope::seal(
        &keys,
        &header,
        &message.payload(),
        receiver.keys(),
        &mut rng,
    )
    .unwrap();
    Transmit {
        to: receiver.subject(),
        frame,
    }
}

fn kinds(frames: &[Transmit]) -> Vec<MessageKind> {
    frames
        .iter()
        .map(|t| mpay_envelope::peek_header(&t.frame).unwrap().kind)
        .collect()
}

/// Issue 11 item 1: a buyer that asks again after the sale completed (its
/// record erased), with STATUS or a fresh AGREED, is answered COMMIT, never
/// a signed ABORT it could void its payment with; also after the seller
/// restarts. An ABORT from that buyer is not acknowledged either.
#[test]
fn a_completed_sale_is_answered_commit_forever_never_abort() {
    let mut p = pair();
    let before = p.total();
    p.intent(1_000);
    p.discover();
    let tx = p.sell_to_completion(450);
    assert!(p.seller.store.txs.is_empty(), "COMPLETE erased the record");
    let authorization = p.buyer.w().chain().last().unwrap().clone();
    assert!(matches!(authorization.kind, EntryKind::Pay { .. }));
    let buyer_certificate = p.buyer.w().certificate().clone();
    for round in 0..2u64 {
        let now = T0.saturating_add_ms(1_000 + round * 1_000);
        if round == 1 {
            p.seller.crash_and_restart(now);
        }
        let status = forged(
            &p.buyer,
            &mut p.seller,
            now,
            tx,
            &Message::Status(Status {
                buyer_certificate: buyer_certificate.clone(),
            }),
        );
        let answer = p.seller.deliver(now, &[status]);
        assert_eq!(
            kinds(&answer),
            vec![kind::COMMIT],
            "round {round}: STATUS after COMPLETE"
        );
        let again = forged(
            &p.buyer,
            &mut p.seller,
            now.saturating_add_ms(1),
            tx,
            &Message::Agreed(Agreed {
                authorization: authorization.clone(),
                shipping: None,
            }),
        );
        let answer = p.seller.deliver(now, &[again]);
        assert_eq!(
            kinds(&answer),
            vec![kind::COMMIT],
            "round {round}: AGREED after COMPLETE"
        );
        let abort = forged(
            &p.buyer,
            &mut p.seller,
            now.saturating_add_ms(2),
            tx,
            &Message::Abort(Abort {
                reason: AbortReason::NotAgreed,
            }),
        );
        let answer = p.seller.deliver(now, &[abort]);
        assert_eq!(
            kinds(&answer),
            vec![],
            "round {round}: the seller acknowledges no ABORT for a sale it committed"
        );
        assert!(p.seller.w().received(&tx));
        assert_eq!(p.seller.w().balance(), eur(450));
        assert_eq!(p.total(), before);
    }
    assert_eq!(p.seller.w().balance(), eur(450));
    assert_eq!(p.total(), before);
}
