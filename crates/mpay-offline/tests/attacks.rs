//! Attacks on the wallet engine, each with real crypto: replay of every
//! message kind (also after a restart, when the replay guard is empty),
//! tampering with every byte of a frame of every kind, forged and wrong-key
//! signatures, frames sealed to someone else, revoked and expired
//! certificates, oversized and malformed frames, and a LOOKUP flood. Every
//! attack must be refused with a typed error (or, after a restart, be a
//! harmless duplicate) and change nothing: balances, chain, durable records,
//! writes and frames queued.

use mpay_envelope::{ENVELOPE_VERSION, EnvelopeError, FRAME_LEN_MAX, Header, MessageKind};
use mpay_identity::{
    Certificate, CertificateBody, CertificateError, Limits, PartyId, RevocationEntry,
    RevocationList, RevocationReason, Role, SecretKeys, Suite, Timestamp,
};
use mpay_money::{Amount, Currency};
use mpay_offline::chain::GENESIS_PREV_HASH;
use mpay_offline::durable::{Snapshot, Write, WriteBatch};
use mpay_offline::messages::{Message, kind};
use mpay_offline::records::meta;
use mpay_offline::sync::SyncAttestation;
use mpay_offline::{
    BuyIntent, Config, Event, InboundError, LOOKUP_WINDOW_MS, LOOKUPS_PER_WINDOW_MAX, Transmit,
    TxId, Wallet,
};
use mpay_wire::Encode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const T0: Timestamp = Timestamp(1_767_225_600_000);
const VALIDITY_MS: u64 = 1 << 40;

fn eur(cents: i64) -> Amount {
    Amount::new(cents, Currency::EUR)
}

struct Office {
    id: PartyId,
    keys: SecretKeys,
    certificate: Certificate,
}

struct Phone {
    id: PartyId,
    keys: SecretKeys,
    certificate: Certificate,
    wallet: Wallet,
    store: Snapshot,
    starts: u64,
}

/// Everything a phone's state is, as far as money and the log go.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Fingerprint {
    balance: Amount,
    locked: Amount,
    chain: usize,
    prepared: Vec<TxId>,
    committing: Vec<TxId>,
    requesting: Vec<TxId>,
    store: Snapshot,
}

impl Phone {
    fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            balance: self.wallet.balance(),
            locked: self.wallet.locked(),
            chain: self.wallet.chain().len(),
            prepared: self.wallet.prepared_txs().map(|(tx, _, _)| tx).collect(),
            committing: self.wallet.committing_txs().collect(),
            requesting: self.wallet.requesting_txs().collect(),
            store: self.store.clone(),
        }
    }

    /// Makes every write durable; returns the frames released.
    fn pump(&mut self) -> Vec<Transmit> {
        let mut out = Vec::new();
        loop {
            if let Some(w) = self.wallet.poll_write() {
                self.store.apply(&w.batch).expect("batch in order");
                self.wallet.write_completed(w.id);
            } else if let Some(t) = self.wallet.poll_transmit() {
                out.push(t);
            } else if self.wallet.poll_event().is_none() {
                return out;
            }
        }
    }

    fn deliver(&mut self, now: Timestamp, frames: &[Transmit]) -> Vec<Transmit> {
        for f in frames {
            self.wallet
                .handle_frame(now, &f.frame)
                .expect("a genuine frame is taken");
        }
        self.pump()
    }

    fn restart(&mut self, now: Timestamp) {
        self.starts += 1;
        self.wallet = Wallet::recover(Config::default(), &self.store, 77 + self.starts, now)
            .expect("recovers");
    }

    /// Feeds `frame` and asserts it is refused and changed nothing.
    fn refuses(&mut self, now: Timestamp, frame: &[u8]) -> InboundError {
        let before = self.fingerprint();
        let err = self
            .wallet
            .handle_frame(now, frame)
            .expect_err("attack frame accepted");
        assert!(self.wallet.poll_write().is_none(), "a refused frame wrote");
        assert!(
            self.wallet.poll_transmit().is_none(),
            "a refused frame answered"
        );
        assert_eq!(self.fingerprint(), before, "a refused frame changed state");
        err
    }

    fn intent(&mut self, max: i64) {
        self.wallet.set_buy_intent(BuyIntent {
            max_amount: eur(max),
            seller: None,
            expires_at: T0.saturating_add_ms(3_600_000),
        });
    }
}

fn office(rng: &mut ChaCha20Rng) -> Office {
    let id = PartyId::from_u64(100);
    let keys = SecretKeys::generate(Suite::Ed25519X25519, rng);
    let certificate = Certificate::issue(
        CertificateBody {
            subject: id,
            role: Role::MoneyOffice,
            keys: keys.public(),
            limits: None,
            issued_at: T0.saturating_sub_ms(1),
            expires_at: T0.saturating_add_ms(VALIDITY_MS),
            issuer: id,
        },
        &keys,
    );
    Office {
        id,
        keys,
        certificate,
    }
}

/// A phone issued by `office`, valid until `expires_at`, charged with
/// `charge` cents; `extra` goes into its genesis store (e.g. a revocation
/// list).
fn phone(
    office: &Office,
    n: u64,
    expires_at: Timestamp,
    charge: i64,
    extra: Option<Write>,
    rng: &mut ChaCha20Rng,
) -> Phone {
    let keys = SecretKeys::generate(Suite::Ed25519X25519, rng);
    let limits = Limits {
        offline_balance_max: eur(100_000),
        payment_max: eur(20_000),
        days_between_syncs_max: 7,
        payments_between_syncs_max: 100,
    };
    let certificate = Certificate::issue(
        CertificateBody {
            subject: PartyId::from_u64(n),
            role: Role::Wallet,
            keys: keys.public(),
            limits: Some(limits),
            issued_at: T0.saturating_sub_ms(1_000_000),
            expires_at,
            issuer: office.id,
        },
        &office.keys,
    );
    let attestation = SyncAttestation::issue(
        office.id,
        &office.keys,
        certificate.subject(),
        0,
        GENESIS_PREV_HASH,
        eur(0),
        T0,
    );
    let mut store = Snapshot::default();
    store
        .apply(
            &Wallet::genesis(&keys, &certificate, &office.certificate, &attestation, T0)
                .expect("genesis"),
        )
        .expect("genesis in order");
    if let Some(w) = extra {
        let mut batch = WriteBatch::new();
        batch.push(w);
        store.apply(&batch).expect("meta");
    }
    let mut wallet = Wallet::recover(Config::default(), &store, n, T0).expect("recovers");
    if charge > 0 {
        let mut charge_id = [0u8; 16];
        charge_id[..8].copy_from_slice(&n.to_be_bytes());
        let voucher = mpay_offline::chain::ChargeVoucher::issue(
            office.id,
            &office.keys,
            certificate.subject(),
            charge_id,
            eur(charge),
            T0,
        );
        wallet.charge(T0, voucher).expect("charge");
    }
    let mut p = Phone {
        id: certificate.subject(),
        keys,
        certificate,
        wallet,
        store,
        starts: 0,
    };
    p.pump();
    p
}

struct World {
    office: Office,
    seller: Phone,
    buyer: Phone,
    mallory: Phone,
    rng: ChaCha20Rng,
}

fn world() -> World {
    let mut rng = ChaCha20Rng::seed_from_u64(0xa77ac);
    let office = office(&mut rng);
    let valid = T0.saturating_add_ms(VALIDITY_MS);
    let seller = phone(&office, 1, valid, 0, None, &mut rng);
    let buyer = phone(&office, 2, valid, 50_000, None, &mut rng);
    let mallory = phone(&office, 3, valid, 50_000, None, &mut rng);
    World {
        office,
        seller,
        buyer,
        mallory,
        rng,
    }
}

impl World {
    fn total(&self) -> Amount {
        let mut total = eur(0);
        for p in [&self.seller, &self.buyer, &self.mallory] {
            total = total
                .checked_add(p.wallet.balance())
                .and_then(|t| t.checked_add(p.wallet.locked()))
                .expect("small");
        }
        total
    }

    /// LOOKUP and its reply; returns both frames.
    fn discover(&mut self, now: Timestamp) -> (Transmit, Transmit) {
        self.seller.wallet.lookup(now);
        let lookup = self.seller.pump();
        let reply = self.buyer.deliver(now, &lookup);
        self.seller.deliver(now, &reply);
        (lookup[0].clone(), reply[0].clone())
    }

    /// A frame from `from` to `to` of `kind` with `payload`, sealed with
    /// `sealer` (normally `from`'s own keys) to `seal_to`.
    #[allow(clippy::too_many_arguments)]
    fn forge(
        &mut self,
        sender: PartyId,
        signer: &SecretKeys,
        receiver: PartyId,
        seal_to: &Certificate,
        kind: MessageKind,
        tx: TxId,
        payload: &[u8],
        now: Timestamp,
    ) -> Vec<u8> {
        let header = Header {
            version: ENVELOPE_VERSION,
            suite: Suite::Ed25519X25519,
            kind,
            sender,
            receiver,
            tx_id: tx.0,
            nonce: rand_core::Rng::next_u64(&mut self.rng),
            sent_at: now,
        };
        mpay_envelope::seal(signer, &header, payload, seal_to.keys(), &mut self.rng).expect("seal")
    }
}

/// A second handle on the same secret keys (`SecretKeys` is not `Clone`).
fn copy_keys(keys: &SecretKeys) -> SecretKeys {
    SecretKeys::from_secret_bytes(&keys.to_secret_bytes()).expect("own keys decode")
}

fn kind_of(frame: &[u8]) -> MessageKind {
    mpay_envelope::peek_header(frame).expect("header").kind
}

/// Every frame of a purchase that commits (with a STATUS on the way), a sale
/// the buyer refuses, and a sale the seller cancels after the buyer agreed:
/// all nine kinds. Each is `(receiver is the seller, frame)`.
fn every_kind_of_frame(w: &mut World) -> Vec<(bool, Transmit)> {
    let mut seen = Vec::new();
    let now = T0;
    w.buyer.intent(10_000);
    let (lookup, reply) = w.discover(now);
    seen.push((false, lookup));
    seen.push((true, reply));

    // A purchase that commits; the buyer asks with STATUS before COMMIT.
    let tx = w
        .seller
        .wallet
        .sell(now, w.buyer.id, eur(700), "coffee")
        .expect("sell");
    let request = w.seller.pump();
    seen.push((false, request[0].clone()));
    let agreed = w.buyer.deliver(now, &request);
    seen.push((true, agreed[0].clone()));
    let commit = w.seller.deliver(now, &agreed);
    let later = now.saturating_add_ms(Config::default().status_after_ms);
    w.buyer.wallet.handle_timeout(later);
    let status = w.buyer.pump();
    assert_eq!(kind_of(&status[0].frame), kind::STATUS);
    seen.push((true, status[0].clone()));
    let commit_again = w.seller.deliver(later, &status);
    let committed = w.buyer.deliver(later, &commit);
    seen.push((false, commit[0].clone()));
    seen.push((true, committed[0].clone()));
    w.seller.deliver(later, &committed);
    w.buyer.deliver(later, &commit_again);
    assert!(w.seller.wallet.received(&tx) && w.buyer.wallet.paid(&tx));

    // A sale the buyer refuses (its intent was used up): ABORT buyer → seller.
    w.seller
        .wallet
        .sell(later, w.buyer.id, eur(100), "refused")
        .expect("sell");
    let request = w.seller.pump();
    let abort = w.buyer.deliver(later, &request);
    assert_eq!(kind_of(&abort[0].frame), kind::ABORT);
    seen.push((true, abort[0].clone()));
    w.seller.deliver(later, &abort);

    // A sale cancelled after the buyer agreed: ABORT seller → buyer, ABORTED.
    w.buyer.intent(10_000);
    w.discover(later);
    let tx3 = w
        .seller
        .wallet
        .sell(later, w.buyer.id, eur(300), "cancelled")
        .expect("sell");
    let request = w.seller.pump();
    let _agreed_lost = w.buyer.deliver(later, &request);
    assert!(w.seller.wallet.cancel_sale(later, tx3));
    let abort = w.seller.pump();
    seen.push((false, abort[0].clone()));
    let aborted = w.buyer.deliver(later, &abort);
    assert_eq!(kind_of(&aborted[0].frame), kind::ABORTED);
    seen.push((true, aborted[0].clone()));
    w.seller.deliver(later, &aborted);
    assert!(w.buyer.wallet.voided(&tx3));

    let mut kinds: Vec<u16> = seen.iter().map(|(_, t)| kind_of(&t.frame).0).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), 9, "every wallet message kind: {kinds:x?}");
    seen
}

#[test]
fn replay_of_every_message_kind_is_refused_and_changes_nothing() {
    let mut w = world();
    let before = w.total();
    let frames = every_kind_of_frame(&mut w);
    let now = T0.saturating_add_ms(2_000);
    for (to_seller, t) in &frames {
        let phone = if *to_seller {
            &mut w.seller
        } else {
            &mut w.buyer
        };
        let err = phone.refuses(now, &t.frame);
        assert_eq!(
            err,
            InboundError::Envelope(EnvelopeError::Replay),
            "kind {:x?}",
            kind_of(&t.frame)
        );
    }
    assert_eq!(w.total(), before);
}

#[test]
fn replay_after_a_restart_is_a_harmless_duplicate() {
    // A restart empties the replay guard: every old frame then reaches the
    // engine again, which must be idempotent by (transaction, step).
    let mut w = world();
    let before = w.total();
    let frames = every_kind_of_frame(&mut w);
    let now = T0.saturating_add_ms(3_000);
    w.seller.restart(now);
    w.buyer.restart(now);
    let seller_before = w.seller.fingerprint();
    let buyer_before = w.buyer.fingerprint();
    let mut answers = Vec::new();
    for (to_seller, t) in &frames {
        let phone = if *to_seller {
            &mut w.seller
        } else {
            &mut w.buyer
        };
        let _ = phone.wallet.handle_frame(now, &t.frame);
        answers.extend(phone.pump().into_iter().map(|a| (!*to_seller, a)));
    }
    // Whatever they answered (presumed-abort ABORTs, re-acknowledgements),
    // delivered to the other side, changes nothing either.
    for (to_seller, a) in answers {
        let phone = if to_seller {
            &mut w.seller
        } else {
            &mut w.buyer
        };
        let _ = phone.wallet.handle_frame(now, &a.frame);
        phone.pump();
    }
    let strip = |f: Fingerprint| (f.balance, f.locked, f.chain, f.prepared, f.committing);
    assert_eq!(strip(w.seller.fingerprint()), strip(seller_before.clone()));
    assert_eq!(strip(w.buyer.fingerprint()), strip(buyer_before.clone()));
    assert_eq!(w.seller.store.chain, seller_before.store.chain);
    assert_eq!(w.buyer.store.chain, buyer_before.store.chain);
    assert_eq!(w.buyer.store.txs, buyer_before.store.txs);
    assert_eq!(w.total(), before);
}

#[test]
fn every_byte_of_a_frame_of_every_kind_is_tamper_proof() {
    let mut w = world();
    let frames = every_kind_of_frame(&mut w);
    let now = T0.saturating_add_ms(2_000);
    let mut tried = 0;
    for (to_seller, t) in &frames {
        let phone = if *to_seller {
            &mut w.seller
        } else {
            &mut w.buyer
        };
        for i in 0..t.frame.len() {
            let mut bad = t.frame.clone();
            bad[i] ^= 0x01;
            phone.refuses(now, &bad);
            tried += 1;
        }
        // Cut short, or one byte too long.
        phone.refuses(now, &t.frame[..t.frame.len() - 1]);
        let mut longer = t.frame.clone();
        longer.push(0);
        phone.refuses(now, &longer);
    }
    assert!(tried > 2_000, "{tried}");
}

#[test]
fn a_forged_or_wrong_key_signature_is_refused() {
    let mut w = world();
    let now = T0;
    w.buyer.intent(10_000);
    w.discover(now);
    let tx = w
        .seller
        .wallet
        .sell(now, w.buyer.id, eur(700), "coffee")
        .expect("sell");
    let request = w.seller.pump();
    w.buyer.deliver(now, &request);
    assert_eq!(w.buyer.wallet.locked(), eur(700));
    // Mallory sends COMMIT and ABORT "from the seller", signed with her own
    // keys, properly sealed to the buyer.
    let mallory_keys = copy_keys(&w.mallory.keys);
    let (seller_id, buyer_id) = (w.seller.id, w.buyer.id);
    let buyer_cert = w.buyer.certificate.clone();
    for message in [
        Message::Commit,
        Message::Abort(mpay_offline::messages::Abort {
            reason: mpay_offline::messages::AbortReason::SellerDecided,
        }),
    ] {
        let frame = w.forge(
            seller_id,
            &mallory_keys,
            buyer_id,
            &buyer_cert,
            message.kind(),
            tx,
            &message.payload(),
            now,
        );
        let err = w.buyer.refuses(now, &frame);
        assert_eq!(err, InboundError::Envelope(EnvelopeError::BadSignature));
    }
    // A COMMIT-REQUEST that carries the seller's certificate but is signed
    // by Mallory.
    let seller_cert = w.seller.certificate.clone();
    let request = Message::CommitRequest(mpay_offline::messages::CommitRequest {
        amount: eur(5),
        description: "forged".into(),
        seller_certificate: seller_cert,
    });
    let frame = w.forge(
        seller_id,
        &mallory_keys,
        buyer_id,
        &buyer_cert,
        request.kind(),
        TxId([9; 16]),
        &request.payload(),
        now,
    );
    assert_eq!(
        w.buyer.refuses(now, &frame),
        InboundError::Envelope(EnvelopeError::BadSignature)
    );
    // An AGREED "from the buyer" with Mallory's signature reaches the seller.
    let agreed = Message::Agreed(mpay_offline::messages::Agreed {
        authorization: w.buyer.wallet.chain().last().expect("pay").clone(),
        shipping: None,
    });
    let seller_cert = w.seller.certificate.clone();
    let frame = w.forge(
        buyer_id,
        &mallory_keys,
        seller_id,
        &seller_cert,
        agreed.kind(),
        tx,
        &agreed.payload(),
        now,
    );
    assert_eq!(
        w.seller.refuses(now, &frame),
        InboundError::Envelope(EnvelopeError::BadSignature)
    );
    assert_eq!(w.buyer.wallet.locked(), eur(700));
}

#[test]
fn a_message_sealed_to_someone_else_is_refused() {
    let mut w = world();
    let now = T0;
    w.buyer.intent(10_000);
    w.mallory.intent(10_000);
    // The seller's COMMIT-REQUEST to Mallory, delivered to the buyer.
    w.seller.wallet.lookup(now);
    let lookup = w.seller.pump();
    let reply = w.mallory.deliver(now, &lookup);
    w.seller.deliver(now, &reply);
    w.seller
        .wallet
        .sell(now, w.mallory.id, eur(100), "for mallory")
        .expect("sell");
    let request = w.seller.pump();
    let err = w.buyer.refuses(now, &request[0].frame);
    assert!(
        matches!(
            err,
            InboundError::Envelope(EnvelopeError::WrongReceiver { .. })
        ),
        "{err:?}"
    );
    // Addressed to the buyer in the header but sealed to Mallory's key.
    let (seller_id, buyer_id) = (w.seller.id, w.buyer.id);
    let seller_keys = copy_keys(&w.seller.keys);
    let mallory_cert = w.mallory.certificate.clone();
    let message = Message::CommitRequest(mpay_offline::messages::CommitRequest {
        amount: eur(5),
        description: "misaddressed".into(),
        seller_certificate: w.seller.certificate.clone(),
    });
    let frame = w.forge(
        seller_id,
        &seller_keys,
        buyer_id,
        &mallory_cert,
        message.kind(),
        TxId([4; 16]),
        &message.payload(),
        now,
    );
    assert_eq!(
        w.buyer.refuses(now, &frame),
        InboundError::Envelope(EnvelopeError::SealBroken)
    );
}

/// Issue 16: a seller asking for a revoked buyer was told it "did not
/// answer". Its LOOKUP-REPLY is refused (nothing changes, no money moves),
/// but the seller learns why; an honest buyer nearby is still found.
#[test]
fn a_revoked_buyers_reply_is_refused_and_the_seller_learns_why() {
    let mut w = world();
    let now = T0;
    let list = RevocationList::issue(
        w.office.id,
        1,
        T0,
        vec![RevocationEntry {
            subject: w.mallory.id,
            reason: RevocationReason::DoubleSpend,
            revoked_at: T0,
        }],
        &w.office.keys,
    );
    let valid = T0.saturating_add_ms(VALIDITY_MS);
    let mut seller = phone(
        &w.office,
        4,
        valid,
        0,
        Some(Write::PutMeta {
            key: meta::REVOCATION_LIST.into(),
            value: list.to_wire(),
        }),
        &mut w.rng,
    );
    let total_before = w.total();
    let seller_before = seller.wallet.balance();
    // Two buyers nearby: an honest one and the revoked Mallory.
    w.buyer.intent(10_000);
    w.mallory.intent(10_000);
    seller.wallet.lookup(now);
    let lookup = seller.pump();
    let honest = w.buyer.deliver(now, &lookup);
    let revoked = w.mallory.deliver(now, &lookup);
    assert_eq!(revoked.len(), 1, "the revoked wallet does answer");
    let err = seller.refuses(now, &revoked[0].frame);
    assert!(
        matches!(
            err,
            InboundError::Envelope(EnvelopeError::Certificate(CertificateError::Revoked { subject }))
                if subject == w.mallory.id
        ),
        "{err:?}"
    );
    assert_eq!(
        seller.wallet.poll_event(),
        Some(Event::BuyerRevoked {
            buyer: w.mallory.id
        })
    );
    assert_eq!(seller.wallet.poll_event(), None);
    for t in &honest {
        seller
            .wallet
            .handle_frame(now, &t.frame)
            .expect("honest reply taken");
    }
    assert_eq!(
        seller.wallet.poll_event(),
        Some(Event::BuyerFound { buyer: w.buyer.id })
    );
    // Nothing can be sold to the revoked buyer, and nothing moved.
    assert!(
        seller
            .wallet
            .sell(now, w.mallory.id, eur(100), "x")
            .is_err()
    );
    assert_eq!(seller.wallet.balance(), seller_before);
    assert_eq!(w.total(), total_before);
    // A revoked wallet's LOOKUP is refused by a buyer without any event: only
    // a seller asks for buyers.
    w.mallory.wallet.lookup(now);
    let lookup = w.mallory.pump();
    let mut buyer = phone(
        &w.office,
        5,
        valid,
        0,
        Some(Write::PutMeta {
            key: meta::REVOCATION_LIST.into(),
            value: list.to_wire(),
        }),
        &mut w.rng,
    );
    buyer.intent(10_000);
    buyer.refuses(now, &lookup[0].frame);
    assert_eq!(buyer.wallet.poll_event(), None);
}

#[test]
fn a_revoked_or_expired_certificate_is_refused() {
    let mut w = world();
    let now = T0;
    // The office revokes Mallory; the buyer holds the list.
    let list = RevocationList::issue(
        w.office.id,
        1,
        T0,
        vec![RevocationEntry {
            subject: w.mallory.id,
            reason: RevocationReason::DoubleSpend,
            revoked_at: T0,
        }],
        &w.office.keys,
    );
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let valid = T0.saturating_add_ms(VALIDITY_MS);
    let mut buyer = phone(
        &w.office,
        2,
        valid,
        50_000,
        Some(Write::PutMeta {
            key: meta::REVOCATION_LIST.into(),
            value: list.to_wire(),
        }),
        &mut rng,
    );
    buyer.intent(10_000);
    assert!(buyer.wallet.trust().is_revoked(&w.mallory.id));
    // Mallory, as a seller, LOOKUPs and asks the buyer to pay.
    w.mallory.wallet.lookup(now);
    let lookup = w.mallory.pump();
    let err = buyer.refuses(now, &lookup[0].frame);
    assert!(
        matches!(
            err,
            InboundError::Envelope(EnvelopeError::Certificate(CertificateError::Revoked { .. }))
        ),
        "{err:?}"
    );
    let request = Message::CommitRequest(mpay_offline::messages::CommitRequest {
        amount: eur(5),
        description: "revoked".into(),
        seller_certificate: w.mallory.certificate.clone(),
    });
    let (mallory_id, mallory_keys) = (w.mallory.id, copy_keys(&w.mallory.keys));
    let buyer_cert = buyer.certificate.clone();
    let frame = w.forge(
        mallory_id,
        &mallory_keys,
        buyer.id,
        &buyer_cert,
        request.kind(),
        TxId([5; 16]),
        &request.payload(),
        now,
    );
    let err = buyer.refuses(now, &frame);
    assert!(
        matches!(
            err,
            InboundError::Envelope(EnvelopeError::Certificate(CertificateError::Revoked { .. }))
        ),
        "{err:?}"
    );

    // A seller whose certificate expired an hour ago.
    let mut old = phone(
        &w.office,
        4,
        now.saturating_sub_ms(3_600_000),
        0,
        None,
        &mut rng,
    );
    old.wallet.lookup(now);
    let lookup = old.pump();
    let err = w.buyer.refuses(now, &lookup[0].frame);
    assert!(
        matches!(
            err,
            InboundError::Envelope(EnvelopeError::Certificate(CertificateError::Expired { .. }))
        ),
        "{err:?}"
    );
}

#[test]
fn oversized_and_malformed_frames_are_refused() {
    let mut w = world();
    let now = T0;
    w.buyer.intent(10_000);
    w.discover(now);
    let too_big = vec![0u8; FRAME_LEN_MAX + 1];
    assert!(matches!(
        w.buyer.refuses(now, &too_big),
        InboundError::Envelope(EnvelopeError::TooLarge { .. })
    ));
    for garbage in [&[][..], &[1u8][..], &[0xff; 67][..], &[0x01; 500][..]] {
        w.buyer.refuses(now, garbage);
    }
    // Well sealed and signed by a genuine peer, with a payload that does not
    // decode, or a kind that is not a wallet message.
    let (seller_id, buyer_id) = (w.seller.id, w.buyer.id);
    let seller_keys = copy_keys(&w.seller.keys);
    let buyer_cert = w.buyer.certificate.clone();
    for (kind, payload) in [
        (kind::AGREED, vec![0xAB; 40]),
        (kind::ABORT, vec![0xEE]),
        (kind::COMMIT, vec![0]),
        (MessageKind(0x0177), vec![]),
        (MessageKind(0x0401), vec![]),
    ] {
        let frame = w.forge(
            seller_id,
            &seller_keys,
            buyer_id,
            &buyer_cert,
            kind,
            TxId([6; 16]),
            &payload,
            now,
        );
        let err = w.buyer.refuses(now, &frame);
        assert!(matches!(err, InboundError::Malformed(_)), "{err:?}");
    }
}

#[test]
fn a_lookup_flood_is_rate_limited_at_its_edge() {
    let mut w = world();
    w.buyer.intent(10_000);
    let start = T0;
    // LOOKUPS_PER_WINDOW_MAX LOOKUPs in one window are each answered.
    let mut replies = 0;
    for i in 0..LOOKUPS_PER_WINDOW_MAX {
        let now = start.saturating_add_ms(u64::from(i));
        w.seller.wallet.lookup(now);
        let lookup = w.seller.pump();
        replies += w.buyer.deliver(now, &lookup).len();
    }
    assert_eq!(replies, LOOKUPS_PER_WINDOW_MAX as usize);
    // The next one, still in the window, is refused before its signature is
    // checked, and nothing is answered or changed.
    let edge = start.saturating_add_ms(LOOKUP_WINDOW_MS - 1);
    for _ in 0..50 {
        w.seller.wallet.lookup(edge);
        let lookup = w.seller.pump();
        assert_eq!(
            w.buyer.refuses(edge, &lookup[0].frame),
            InboundError::RateLimited(LOOKUPS_PER_WINDOW_MAX)
        );
    }
    // Once the window is over, LOOKUPs are answered again.
    let next = start.saturating_add_ms(LOOKUP_WINDOW_MS);
    w.seller.wallet.lookup(next);
    let lookup = w.seller.pump();
    assert_eq!(w.buyer.deliver(next, &lookup).len(), 1);
    // Forged LOOKUPs (bad signature) are refused for their signature and do
    // not use up the window.
    let mut w = world();
    w.buyer.intent(10_000);
    let mallory_keys = copy_keys(&w.mallory.keys);
    let lookup = Message::Lookup(mpay_offline::messages::Lookup {
        seller_certificate: w.seller.certificate.clone(),
        revocation_list: None,
    });
    for i in 0..(2 * LOOKUPS_PER_WINDOW_MAX) {
        let header = Header {
            version: ENVELOPE_VERSION,
            suite: Suite::Ed25519X25519,
            kind: kind::LOOKUP,
            sender: w.seller.id,
            receiver: PartyId::BROADCAST,
            tx_id: [1; 16],
            nonce: u64::from(i),
            sent_at: start,
        };
        let frame =
            mpay_envelope::sign_broadcast(&mallory_keys, &header, &lookup.payload()).expect("sign");
        assert_eq!(
            w.buyer.refuses(start, &frame),
            InboundError::Envelope(EnvelopeError::BadSignature)
        );
    }
    w.seller.wallet.lookup(start);
    let genuine = w.seller.pump();
    assert_eq!(w.buyer.deliver(start, &genuine).len(), 1);
}
