//! The money office's judgement of one sync, as a pure function: given what
//! the office already knows ([`SyncContext`]) and what the wallet uploads
//! ([`SyncRequest`]), decide what to record ([`SyncEffects`]) or why to refuse
//! ([`SyncRefusal`]). The store gathers the context and applies the effects
//! in one database transaction; nothing here reads a clock or a database.
//!
//! What it checks (DESIGN §2.3):
//! - the upload continues the chain the office attested: same sequence and
//!   hash link, valid signatures and balance arithmetic (`verify_chain`);
//! - a `Charge` spends a voucher this office issued to this wallet;
//! - a `Receive` carries the buyer's genuine `Pay` entry naming this seller,
//!   amount and transaction: the seller's claim;
//! - a `Void` carries a genuine proof: the seller's signed ABORT for that
//!   payment, or this office's release;
//! - a `Redeem` credits the owner's account;
//! - two different entries with the same (wallet, sequence), from any
//!   source, are a **fraud proof**: the wallet is revoked and the value its
//!   fork duplicated is charged to its owner;
//! - a claim the office had already released, or that the seller itself
//!   aborted, is unbacked value charged to the seller's owner.

use std::collections::{HashMap, HashSet};

use mpay_envelope::verify_detached;
use mpay_identity::{Certificate, PartyId, Timestamp};
use mpay_money::Amount;
use mpay_offline::TxId;
use mpay_offline::chain::{ChainEntry, ChainError, EntryHash, EntryKind, VoidProof, verify_chain};
use mpay_offline::messages::{Message, kind as wallet_kind};
use mpay_offline::sync::{Outcome, SyncRequest};

/// What the office knows of one wallet.
#[derive(Clone, Debug)]
pub struct WalletRecord {
    pub wallet: PartyId,
    pub owner: String,
    pub certificate: Certificate,
    /// The last entry the office verified; `None` before the first sync.
    pub head: Option<ChainEntry>,
    pub revoked: bool,
}

impl WalletRecord {
    /// Sequence of the next entry the office expects.
    pub fn next_seq(&self) -> u64 {
        self.head.as_ref().map_or(0, |h| h.seq.saturating_add(1))
    }
}

/// A seller's claim on a buyer's `Pay` entry, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimRecord {
    pub seller: PartyId,
    pub tx: TxId,
    pub amount: Amount,
}

/// Everything [`audit_sync`] may consult, gathered by the store for one
/// request ([`lookups`] says which keys).
#[derive(Clone, Debug, Default)]
pub struct SyncContext {
    pub office: PartyId,
    /// This wallet's own entries the office already holds, by seq (for the
    /// seqs the request repeats).
    pub own_entries: HashMap<u64, ChainEntry>,
    /// Certificates of the counterparties named in the request.
    pub certificates: HashMap<PartyId, Certificate>,
    /// Every `Pay` entry the office has seen, by (wallet, seq), for the keys
    /// the request touches.
    pub pays: HashMap<(PartyId, u64), Vec<ChainEntry>>,
    pub claims: HashMap<(PartyId, u64), ClaimRecord>,
    /// (buyer, pay_seq) the office released after its claim deadline.
    pub released: HashSet<(PartyId, u64)>,
    /// (buyer, pay_seq) the buyer voided with its seller's signed ABORT.
    pub voided_by_seller: HashSet<(PartyId, u64)>,
    /// Charge ids this office issued to this wallet, with their amounts.
    pub vouchers: HashMap<[u8; 16], Amount>,
    /// Charge ids this wallet already spent in a synced `Charge` entry.
    pub vouchers_spent: HashSet<[u8; 16]>,
    /// Redeem ids already credited.
    pub redeemed: HashSet<[u8; 16]>,
}

/// Two different signed entries of one wallet with one sequence number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FraudProof {
    pub wallet: PartyId,
    pub seq: u64,
    pub first: ChainEntry,
    pub second: ChainEntry,
}

impl FraudProof {
    /// Checks the proof on its own: both entries signed by the wallet's key,
    /// same wallet and sequence, different contents.
    pub fn verify(&self, wallet_certificate: &Certificate) -> bool {
        let keys = wallet_certificate.keys();
        self.first.wallet == self.wallet
            && self.second.wallet == self.wallet
            && self.first.seq == self.seq
            && self.second.seq == self.seq
            && self.first.hash() != self.second.hash()
            && self.first.verify(keys).is_ok()
            && self.second.verify(keys).is_ok()
    }

    /// The value the fork duplicated: the wallet's balance just before the
    /// forked entry (the larger of the two branches' views).
    pub fn duplicated_value(&self) -> Option<Amount> {
        let a = balance_before(&self.first)?;
        let b = balance_before(&self.second)?;
        Some(if a.checked_cmp(&b).ok()? == std::cmp::Ordering::Less {
            b
        } else {
            a
        })
    }
}

/// The balance an entry started from, from its own fields.
pub fn balance_before(entry: &ChainEntry) -> Option<Amount> {
    let after = entry.balance_after;
    match &entry.kind {
        EntryKind::Genesis { .. } => Some(after),
        EntryKind::Charge { voucher } => after.checked_sub(voucher.amount).ok(),
        EntryKind::Pay { amount, .. } | EntryKind::Redeem { amount, .. } => {
            after.checked_add(*amount).ok()
        }
        EntryKind::Receive { amount, .. } | EntryKind::Void { amount, .. } => {
            after.checked_sub(*amount).ok()
        }
    }
}

/// Why value exists that nothing backs, and whose owner pays for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnbackedReason {
    /// A cloned or restored wallet spent the same value twice.
    Fork { seq: u64 },
    /// The seller claimed after the office had released the payment.
    LateClaim { buyer: PartyId, pay_seq: u64 },
    /// The seller claimed a payment it had itself aborted.
    ClaimedAfterAbort { buyer: PartyId, pay_seq: u64 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unbacked {
    /// The wallet whose owner is charged.
    pub wallet: PartyId,
    pub amount: Amount,
    pub reason: UnbackedReason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewClaim {
    pub buyer: PartyId,
    pub pay_seq: u64,
    pub claim: ClaimRecord,
}

/// What the store must record for one accepted sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncEffects {
    /// This wallet's new chain entries (after skipping ones already held).
    pub new_entries: Vec<ChainEntry>,
    /// Every `Pay` entry seen in this request (own or carried in a
    /// `Receive`) not yet held.
    pub pays: Vec<ChainEntry>,
    pub claims: Vec<NewClaim>,
    /// (buyer, pay_seq) voided with the seller's ABORT.
    pub voided_by_seller: Vec<(PartyId, u64)>,
    /// Vouchers spent by `Charge` entries.
    pub vouchers_spent: Vec<[u8; 16]>,
    /// Value handed back, to credit to the owner.
    pub redeems: Vec<([u8; 16], Amount)>,
    /// Uncertain payments decided now.
    pub resolutions: Vec<(TxId, u64, Outcome)>,
    pub frauds: Vec<FraudProof>,
    pub unbacked: Vec<Unbacked>,
}

impl SyncEffects {
    /// The entry the office attests after this sync.
    pub fn new_head<'a>(&'a self, record: &'a WalletRecord) -> Option<&'a ChainEntry> {
        self.new_entries.last().or(record.head.as_ref())
    }
}

/// Why a sync was refused. Nothing is recorded but a fraud proof (which the
/// store records and acts on even though the upload is refused).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SyncRefusal {
    #[error("the upload does not continue the chain the office holds: {0}")]
    BrokenChain(ChainError),
    #[error("the upload starts at entry {got}, the office expects {expected}")]
    Gap { expected: u64, got: u64 },
    #[error("the wallet's chain forks from the one the office holds at entry {}", .0.seq)]
    Fork(Box<FraudProof>),
    #[error("entry {seq} is not a valid {what}")]
    InvalidEntry { seq: u64, what: &'static str },
    #[error(
        "uncertain payment {pay_seq} is not one of this wallet's synced Pay entries past its claim deadline"
    )]
    NotUncertain { pay_seq: u64 },
}

/// Judges one sync. See the module docs.
pub fn audit_sync(
    record: &WalletRecord,
    ctx: &SyncContext,
    request: &SyncRequest,
    now: Timestamp,
) -> Result<SyncEffects, SyncRefusal> {
    let mut effects = SyncEffects::default();
    let wallet = record.wallet;

    // 1. Skip entries the office already holds; a different entry at a held
    //    sequence is a fork.
    let expected = record.next_seq();
    let mut fresh = Vec::with_capacity(request.entries.len());
    for entry in &request.entries {
        if entry.seq < expected {
            match ctx.own_entries.get(&entry.seq) {
                Some(held) if held.hash() == entry.hash() => continue,
                Some(held) => {
                    // Only a fork if the new entry is really the wallet's.
                    if entry.verify(record.certificate.keys()).is_err() {
                        return Err(SyncRefusal::BrokenChain(ChainError::BadSignature {
                            wallet,
                            seq: entry.seq,
                        }));
                    }
                    return Err(SyncRefusal::Fork(Box::new(FraudProof {
                        wallet,
                        seq: entry.seq,
                        first: held.clone(),
                        second: entry.clone(),
                    })));
                }
                None => {
                    return Err(SyncRefusal::Gap {
                        expected,
                        got: entry.seq,
                    });
                }
            }
        }
        fresh.push(entry.clone());
    }
    if let Some(first) = fresh.first()
        && first.seq != expected
    {
        return Err(SyncRefusal::Gap {
            expected,
            got: first.seq,
        });
    }

    // 2. Signatures, links and balances.
    verify_chain(record.certificate.keys(), record.head.as_ref(), &fresh)
        .map_err(SyncRefusal::BrokenChain)?;

    // 3. Each entry's meaning.
    let mut seen_pays: HashSet<(PartyId, u64, EntryHash)> = HashSet::new();
    for entry in &fresh {
        match &entry.kind {
            EntryKind::Genesis { certificate } => {
                if certificate != &record.certificate {
                    return Err(SyncRefusal::InvalidEntry {
                        seq: entry.seq,
                        what: "genesis (another certificate)",
                    });
                }
            }
            EntryKind::Charge { voucher } => {
                let issued = ctx.vouchers.get(&voucher.charge_id);
                if voucher.wallet != wallet
                    || voucher.office != ctx.office
                    || issued != Some(&voucher.amount)
                    || ctx.vouchers_spent.contains(&voucher.charge_id)
                    || effects.vouchers_spent.contains(&voucher.charge_id)
                {
                    return Err(SyncRefusal::InvalidEntry {
                        seq: entry.seq,
                        what: "charge (voucher unknown, for another wallet, or spent)",
                    });
                }
                effects.vouchers_spent.push(voucher.charge_id);
            }
            EntryKind::Pay { .. } => {
                note_pay(ctx, &mut effects, &mut seen_pays, entry);
            }
            EntryKind::Receive {
                tx,
                buyer,
                amount,
                authorization,
            } => {
                let genuine = ctx.certificates.get(buyer).is_some_and(|cert| {
                    authorization.wallet == *buyer && authorization.verify(cert.keys()).is_ok()
                });
                let matches = matches!(
                    &authorization.kind,
                    EntryKind::Pay { tx: t, seller, amount: a, .. }
                        if t == tx && *seller == wallet && a == amount
                );
                if !genuine || !matches {
                    return Err(SyncRefusal::InvalidEntry {
                        seq: entry.seq,
                        what: "receive (authorization not the buyer's for this sale)",
                    });
                }
                note_pay(ctx, &mut effects, &mut seen_pays, authorization);
                let key = (*buyer, authorization.seq);
                let claim = ClaimRecord {
                    seller: wallet,
                    tx: *tx,
                    amount: *amount,
                };
                // A release or a void recorded at (buyer, pay_seq) is this
                // claim's only if the buyer wrote no other Pay there: a forked
                // buyer's other branch is not this seller's doing (its fork
                // is charged to the buyer's owner as a fraud).
                let unforked = pay_unforked(ctx, key, *tx);
                if ctx.released.contains(&key) && unforked {
                    effects.unbacked.push(Unbacked {
                        wallet,
                        amount: *amount,
                        reason: UnbackedReason::LateClaim {
                            buyer: *buyer,
                            pay_seq: authorization.seq,
                        },
                    });
                } else if ctx.voided_by_seller.contains(&key) && unforked {
                    effects.unbacked.push(Unbacked {
                        wallet,
                        amount: *amount,
                        reason: UnbackedReason::ClaimedAfterAbort {
                            buyer: *buyer,
                            pay_seq: authorization.seq,
                        },
                    });
                }
                // One claim per (buyer, pay_seq): a second Receive on the same
                // key carries a forked Pay (a fraud proof above), which the
                // buyer's owner backs; it is not a second claim.
                let claimed_here = effects
                    .claims
                    .iter()
                    .any(|c| c.buyer == *buyer && c.pay_seq == authorization.seq);
                if !ctx.claims.contains_key(&key) && !claimed_here {
                    effects.claims.push(NewClaim {
                        buyer: *buyer,
                        pay_seq: authorization.seq,
                        claim,
                    });
                }
            }
            EntryKind::Void {
                tx,
                paid_seq,
                amount,
                proof,
            } => {
                let pay = fresh
                    .iter()
                    .chain(ctx.pays.get(&(wallet, *paid_seq)).into_iter().flatten())
                    .find(|e| e.seq == *paid_seq && e.wallet == wallet)
                    .cloned();
                let Some(EntryKind::Pay {
                    tx: pay_tx,
                    seller,
                    amount: pay_amount,
                    ..
                }) = pay.map(|p| p.kind)
                else {
                    return Err(SyncRefusal::InvalidEntry {
                        seq: entry.seq,
                        what: "void (no such Pay entry)",
                    });
                };
                if pay_tx != *tx || pay_amount != *amount {
                    return Err(SyncRefusal::InvalidEntry {
                        seq: entry.seq,
                        what: "void (does not match its Pay entry)",
                    });
                }
                let key = (wallet, *paid_seq);
                match proof {
                    VoidProof::SellerAbort(evidence) => {
                        let seller_ok = ctx.certificates.get(&seller).is_some_and(|cert| {
                            evidence.header.sender == seller
                                && evidence.header.receiver == wallet
                                && evidence.header.tx_id == tx.0
                                && evidence.header.kind == wallet_kind::ABORT
                                && matches!(
                                    Message::decode(evidence.header.kind, &evidence.payload),
                                    Ok(Message::Abort(_))
                                )
                                && verify_detached(
                                    cert.keys(),
                                    &evidence.header,
                                    &evidence.payload,
                                    &evidence.signature,
                                )
                                .is_ok()
                        });
                        if !seller_ok {
                            return Err(SyncRefusal::InvalidEntry {
                                seq: entry.seq,
                                what: "void (the ABORT is not the seller's)",
                            });
                        }
                        // Only a claim on this very transaction: a claim at the
                        // same (buyer, seq) for another one is on a forked Pay.
                        if let Some(claim) = ctx.claims.get(&key).filter(|c| c.tx == *tx) {
                            effects.unbacked.push(Unbacked {
                                wallet: claim.seller,
                                amount: claim.amount,
                                reason: UnbackedReason::ClaimedAfterAbort {
                                    buyer: wallet,
                                    pay_seq: *paid_seq,
                                },
                            });
                        }
                        effects.voided_by_seller.push(key);
                    }
                    VoidProof::OfficeRelease(resolution) => {
                        let released_here = ctx.released.contains(&key)
                            || effects
                                .resolutions
                                .iter()
                                .any(|(_, s, o)| *s == *paid_seq && *o == Outcome::Released);
                        if resolution.wallet != wallet
                            || resolution.office != ctx.office
                            || resolution.pay_seq != *paid_seq
                            || resolution.outcome != Outcome::Released
                            || !released_here
                        {
                            return Err(SyncRefusal::InvalidEntry {
                                seq: entry.seq,
                                what: "void (not released by this office)",
                            });
                        }
                    }
                }
            }
            EntryKind::Redeem { redeem_id, amount } => {
                if !ctx.redeemed.contains(redeem_id) {
                    effects.redeems.push((*redeem_id, *amount));
                }
            }
        }
    }
    effects.new_entries = fresh;

    // 4. Uncertain payments: settled if claimed, released otherwise.
    for uncertain in &request.uncertain {
        let key = (wallet, uncertain.pay_seq);
        let pay = ctx
            .pays
            .get(&key)
            .into_iter()
            .flatten()
            .chain(effects.new_entries.iter())
            .find(|e| e.seq == uncertain.pay_seq && e.wallet == wallet)
            .cloned();
        let deadline_passed = matches!(
            pay.as_ref().map(|p| &p.kind),
            Some(EntryKind::Pay { tx, claim_deadline, .. })
                if *tx == uncertain.tx && *claim_deadline <= now
        );
        if !deadline_passed {
            return Err(SyncRefusal::NotUncertain {
                pay_seq: uncertain.pay_seq,
            });
        }
        let claimed = ctx.claims.contains_key(&key)
            || effects
                .claims
                .iter()
                .any(|c| c.buyer == wallet && c.pay_seq == uncertain.pay_seq);
        let outcome = if claimed {
            Outcome::Settled
        } else {
            Outcome::Released
        };
        effects
            .resolutions
            .push((uncertain.tx, uncertain.pay_seq, outcome));
    }
    Ok(effects)
}

/// True when every `Pay` the office holds at `key` is for transaction `tx`
/// (the buyer did not fork there).
fn pay_unforked(ctx: &SyncContext, key: (PartyId, u64), tx: TxId) -> bool {
    ctx.pays
        .get(&key)
        .into_iter()
        .flatten()
        .all(|p| matches!(&p.kind, EntryKind::Pay { tx: t, .. } if *t == tx))
}

/// Records a `Pay` entry unless held; a different entry at a held (wallet,
/// seq) is a fraud proof. (The store decides what the fork costs the owner:
/// it knows how many branches it already charged for.)
fn note_pay(
    ctx: &SyncContext,
    effects: &mut SyncEffects,
    seen: &mut HashSet<(PartyId, u64, EntryHash)>,
    pay: &ChainEntry,
) {
    let hash = pay.hash();
    if !seen.insert((pay.wallet, pay.seq, hash)) {
        return;
    }
    let held: Vec<&ChainEntry> = ctx
        .pays
        .get(&(pay.wallet, pay.seq))
        .into_iter()
        .flatten()
        .chain(
            effects
                .pays
                .iter()
                .filter(|p| p.wallet == pay.wallet && p.seq == pay.seq),
        )
        .collect();
    if held.iter().any(|p| p.hash() == hash) {
        return;
    }
    if let Some(first) = held.first() {
        let proof = FraudProof {
            wallet: pay.wallet,
            seq: pay.seq,
            first: (*first).clone(),
            second: pay.clone(),
        };
        effects.frauds.push(proof);
    }
    effects.pays.push(pay.clone());
}

/// The keys a request makes [`audit_sync`] consult, so the store can load
/// exactly those.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookups {
    /// This wallet's own entries at these seqs (repeats of synced entries).
    pub own_seqs: Vec<u64>,
    /// Certificates of these parties.
    pub parties: HashSet<PartyId>,
    /// Pay entries, claims, releases and seller voids at these (wallet, seq).
    pub pay_keys: HashSet<(PartyId, u64)>,
    pub charge_ids: HashSet<[u8; 16]>,
    pub redeem_ids: HashSet<[u8; 16]>,
}

/// Which keys [`audit_sync`] will consult for `request` from `record`.
pub fn lookups(record: &WalletRecord, request: &SyncRequest) -> Lookups {
    let wallet = record.wallet;
    let expected = record.next_seq();
    let mut l = Lookups::default();
    for entry in &request.entries {
        if entry.seq < expected {
            l.own_seqs.push(entry.seq);
        }
        match &entry.kind {
            EntryKind::Genesis { .. } => {}
            EntryKind::Charge { voucher } => {
                l.charge_ids.insert(voucher.charge_id);
            }
            EntryKind::Pay { seller, .. } => {
                l.pay_keys.insert((wallet, entry.seq));
                l.parties.insert(*seller);
            }
            EntryKind::Receive {
                buyer,
                authorization,
                ..
            } => {
                l.parties.insert(*buyer);
                l.pay_keys.insert((*buyer, authorization.seq));
            }
            EntryKind::Void {
                paid_seq, proof, ..
            } => {
                l.pay_keys.insert((wallet, *paid_seq));
                if let VoidProof::SellerAbort(evidence) = proof {
                    l.parties.insert(evidence.header.sender);
                }
            }
            EntryKind::Redeem { redeem_id, .. } => {
                l.redeem_ids.insert(*redeem_id);
            }
        }
    }
    for uncertain in &request.uncertain {
        l.pay_keys.insert((wallet, uncertain.pay_seq));
    }
    l
}
