//! The wallet commands that need no radio: init, enroll, charge, balance,
//! history, sync, redeem, backup, restore, change-pin.

use std::fs;
use std::path::{Path, PathBuf};

use mpay_identity::{PartyId, SecretKeys, Suite, hex_string};
use mpay_money::Amount;
use mpay_office::http::{ClientError, OfficeClient};
use mpay_office::sign_enrolment;
use mpay_offline::chain::{ChainEntry, EntryKind};
use mpay_offline::durable::{Write, WriteBatch};
use mpay_offline::records::meta;
use mpay_offline::{ChargeError, Wallet};
use mpay_wallet_net::wall_clock;
use mpay_wallet_store::WalletStore;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

use super::exit::{Exit, Failure};
use super::files::{
    PinSource, STORE_FILE, Settings, WalletDir, kdf_params, os_random32, parse_amount, read_pin,
    sync_dir,
};
use super::local::{Access, OpenedStore, Session, SyncReport, runtime, token_batch};
use super::output::{Out, utc};
use super::{
    BackupArgs, ChangePinArgs, ChargeArgs, Common, EnrollArgs, HistoryArgs, InitArgs, RedeemArgs,
    RestoreArgs,
};

/// What people are told about backups, at backup and at restore.
const BACKUP_WARNING: &str = "A backup holds the wallet as it is now. Restoring it later and \
spending from it spends money the wallet may already have spent: the money office catches that \
at the next sync as a DOUBLE SPEND, revokes the wallet and charges its owner. Restore only a \
wallet that was lost, and sync it before spending.";

// ---- init, enroll ---------------------------------------------------------

pub fn init(out: &Out, args: InitArgs) -> Result<(), Failure> {
    let common = &args.common;
    let files = WalletDir::new(&common.dir);
    if files.has_wallet() {
        return Err(Failure::other(format!(
            "a wallet already exists in {}; use another --dir, or `restore --force`",
            common.dir.display()
        )));
    }
    let office = common
        .office
        .clone()
        .ok_or_else(|| Failure::other("init needs the money office's URL: --office URL"))?;
    if args.owner.is_empty() {
        return Err(Failure::other("--owner must not be empty"));
    }
    if !args.no_enroll && args.token.is_none() {
        return Err(Failure::other(
            "init needs the owner's office token: set MPAY_OWNER_TOKEN or pass --token \
             (or create the wallet with --no-enroll and run `enroll` later)",
        ));
    }
    let pin = read_pin(&PinSource::current(common), true)?;
    fs::create_dir_all(&common.dir)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", common.dir.display())))?;
    let mut rng = ChaCha20Rng::from_seed(os_random32()?);
    let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let mut store = WalletStore::create(&files.store_path(), &pin, kdf_params(args.kdf))?;
    let mut batch = WriteBatch::new();
    batch.push(Write::PutMeta {
        key: meta::SECRET_KEYS.into(),
        value: keys.to_secret_bytes().to_vec(),
    });
    if let Some(token) = &args.token {
        batch.writes.extend(token_batch(token).writes);
    }
    store.apply(&batch)?;
    let mut settings = Settings::new(&office, &args.owner);
    files.write_settings(&settings)?;
    out.line(format!(
        "created wallet in {} (keys and store encrypted with your PIN)",
        common.dir.display()
    ));
    if args.no_enroll {
        out.line("not enrolled yet: run `mpay wallet enroll` when the office is reachable");
        out.done(
            "init",
            json!({ "dir": common.dir, "enrolled": false, "owner": args.owner }),
        );
        return Ok(());
    }
    let token = args.token.as_deref().unwrap_or_default();
    let wallet = enroll_store(&mut store, &keys, &args.owner, &office, token).map_err(|e| {
        if e.exit == Exit::OfficeUnreachable {
            e.context("wallet created but not enrolled; run `mpay wallet enroll` later")
        } else {
            e.context("wallet created but not enrolled")
        }
    })?;
    record_enrolment(&files, &mut settings, &wallet)?;
    report_enrolment(out, "init", &settings, &wallet);
    Ok(())
}

pub fn enroll(out: &Out, args: EnrollArgs) -> Result<(), Failure> {
    let common = &args.common;
    let mut opened = OpenedStore::open(common, Access::Write)?;
    if opened.snapshot.meta.contains_key(meta::CERTIFICATE) {
        let wallet = Wallet::recover_with_seed(
            mpay_offline::Config::default(),
            &opened.snapshot,
            os_random32()?,
            wall_clock(),
        )?;
        out.line(format!("wallet {} is already enrolled", wallet.id()));
        out.done(
            "enroll",
            json!({ "wallet": wallet.id().to_hex(), "already": true }),
        );
        return Ok(());
    }
    let keys = opened
        .snapshot
        .meta
        .get(meta::SECRET_KEYS)
        .ok_or_else(|| Failure::other("the store holds no keys (damaged?)"))
        .and_then(|bytes| {
            SecretKeys::from_secret_bytes(bytes)
                .map_err(|e| Failure::other(format!("the stored keys are damaged: {e}")))
        })?;
    let token = match (&args.token, opened.stored_token()) {
        (Some(t), _) => zeroize::Zeroizing::new(t.clone()),
        (None, Some(t)) => t,
        (None, None) => {
            return Err(Failure::other(
                "no owner token: pass --token or set MPAY_OWNER_TOKEN",
            ));
        }
    };
    if let Some(t) = &args.token {
        opened.store.apply(&token_batch(t))?;
    }
    let office = common
        .office
        .clone()
        .unwrap_or_else(|| opened.settings.office.clone());
    let owner = opened.settings.owner.clone();
    let wallet = enroll_store(&mut opened.store, &keys, &owner, &office, &token)?;
    let mut settings = opened.settings;
    if common.office.is_some() {
        settings.office = office.trim_end_matches('/').to_owned();
    }
    record_enrolment(&opened.files, &mut settings, &wallet)?;
    report_enrolment(out, "enroll", &settings, &wallet);
    Ok(())
}

/// Enrols `keys` with the office and writes the genesis batch; returns the
/// wallet as recovered from the store.
fn enroll_store(
    store: &mut WalletStore,
    keys: &SecretKeys,
    owner: &str,
    office: &str,
    token: &str,
) -> Result<Wallet, Failure> {
    let rt = runtime()?;
    let client = OfficeClient::new(office)?;
    let requested_at = wall_clock();
    let proof = sign_enrolment(owner, keys, requested_at);
    let enrolment = match rt.block_on(client.enroll(token, &keys.public(), requested_at, &proof)) {
        Ok(enrolment) => enrolment,
        Err(refused @ ClientError::Refused { .. }) => {
            // The proof names `owner`: a token of someone else fails it. Say so.
            return Err(match rt.block_on(client.owner_balance(token)) {
                Ok(info) if info.owner != owner => token_of_another_owner(&info.owner, owner),
                _ => Failure::from(refused),
            });
        }
        Err(other) => return Err(other.into()),
    };
    if enrolment.certificate.keys() != &keys.public() {
        return Err(Failure::other(
            "the office issued a certificate for other keys; not installed",
        ));
    }
    let batch = Wallet::genesis(
        keys,
        &enrolment.certificate,
        &enrolment.office_certificate,
        &enrolment.attestation,
        wall_clock(),
    )
    .map_err(|e| Failure::other(format!("the office's enrolment does not check out: {e}")))?;
    store.apply(&batch)?;
    let snapshot = store.load()?;
    Ok(Wallet::recover_with_seed(
        mpay_offline::Config::default(),
        &snapshot,
        os_random32()?,
        wall_clock(),
    )?)
}

/// `init`/`enroll` with a token the office knows as `holder`'s, not `owner`'s.
fn token_of_another_owner(holder: &str, owner: &str) -> Failure {
    Failure::other(format!(
        "this owner token belongs to {holder:?}, not to {owner:?}: pass {owner}'s token \
         (--token or MPAY_OWNER_TOKEN), or --owner {holder}"
    ))
}

fn record_enrolment(
    files: &WalletDir,
    settings: &mut Settings,
    wallet: &Wallet,
) -> Result<(), Failure> {
    settings.wallet = Some(wallet.id().to_hex());
    settings.currency = Some(wallet.currency().to_string());
    files.write_settings(settings)
}

fn report_enrolment(out: &Out, command: &str, settings: &Settings, wallet: &Wallet) {
    let cert = wallet.certificate();
    out.line(format!(
        "enrolled with {} as owner {}",
        settings.office, settings.owner
    ));
    out.line(format!("wallet id: {}", wallet.id()));
    if let Some(limits) = cert.body.limits {
        out.line(format!(
            "limits: balance up to {}, payments up to {}, sync every {} days or {} payments",
            limits.offline_balance_max,
            limits.payment_max,
            limits.days_between_syncs_max,
            limits.payments_between_syncs_max
        ));
    }
    out.line(format!(
        "certificate valid until {}",
        utc(cert.body.expires_at.as_millis())
    ));
    out.done(
        command,
        json!({
            "wallet": wallet.id().to_hex(),
            "owner": settings.owner,
            "office": settings.office,
            "currency": wallet.currency().to_string(),
            "certificate_expires_ms": cert.body.expires_at.as_millis(),
        }),
    );
}

// ---- charge, sync, redeem ---------------------------------------------------

pub fn charge(out: &Out, args: ChargeArgs) -> Result<(), Failure> {
    let common = &args.common;
    let mut s = Session::open(common, Access::Write)?;
    let amount = parse_amount(&args.amount, s.wallet.currency())?;
    if s.is_revoked() {
        return Err(Failure::new(
            Exit::DoubleSpend,
            "this wallet is revoked (a double spend was caught); it cannot be charged",
        ));
    }
    if let Some(limits) = s.wallet.certificate().body.limits {
        let after = s
            .wallet
            .balance()
            .checked_add(s.wallet.locked())
            .and_then(|b| b.checked_add(amount))
            .map_err(|e| Failure::other(e.to_string()))?;
        if after.checked_cmp(&limits.offline_balance_max) == Ok(std::cmp::Ordering::Greater) {
            return Err(Failure::new(
                Exit::LimitExceeded,
                format!(
                    "a charge of {amount} would take the wallet to {after}, over its offline \
                     balance limit of {}",
                    limits.offline_balance_max
                ),
            ));
        }
    }
    let key = match &args.idempotency_key {
        Some(k) => k.clone(),
        None => {
            let seed = os_random32()?;
            hex_string(&seed[..16])
        }
    };
    let office = s.office_url(common);
    let note = format!(
        "asking {office} for a voucher of {amount}; idempotency key {key} (if this is \
         interrupted, repeat with --idempotency-key {key}: the owner is charged once)"
    );
    if out.is_json() {
        eprintln!("{note}");
    } else {
        out.line(note);
    }
    let token = s.token(args.token.as_deref())?;
    let rt = runtime()?;
    let client = OfficeClient::new(&office)?;
    let voucher = rt.block_on(client.charge(&token, s.wallet.id(), amount, &key))?;
    let applied = match s.wallet.charge(wall_clock(), voucher) {
        Ok(()) => true,
        Err(ChargeError::AlreadyUsed) => false,
        Err(e) => return Err(e.into()),
    };
    s.pump()?;
    if applied {
        out.line(format!("charged {amount}: balance {}", s.wallet.balance()));
    } else {
        out.line(format!(
            "this voucher was already applied; balance {}",
            s.wallet.balance()
        ));
    }
    let report = s
        .sync(&client, &rt)
        .map_err(|e| e.context(&format!("charged {amount}, but the sync after it failed")))?;
    print_sync(out, &s, &report);
    out.done(
        "charge",
        json!({
            "wallet": s.wallet.id().to_hex(),
            "amount": amount.to_string(),
            "applied": applied,
            "idempotency_key": key,
            "balance": s.wallet.balance().to_string(),
            "balance_minor": s.wallet.balance().minor_units(),
            "sync": sync_json(&report),
        }),
    );
    revoked_check(&s)
}

pub fn sync(out: &Out, common: &Common) -> Result<(), Failure> {
    let mut s = Session::open(common, Access::Write)?;
    let office = s.office_url(common);
    let rt = runtime()?;
    let client = OfficeClient::new(&office)?;
    let report = s.sync(&client, &rt)?;
    out.line(format!("synced with {office}"));
    print_sync(out, &s, &report);
    let revoked = revoked_check(&s);
    let mut object = sync_json(&report);
    if let Value::Object(map) = &mut object {
        map.insert("wallet".into(), json!(s.wallet.id().to_hex()));
        map.insert("balance".into(), json!(s.wallet.balance().to_string()));
        map.insert(
            "balance_minor".into(),
            json!(s.wallet.balance().minor_units()),
        );
    }
    match revoked {
        Ok(()) => {
            out.done("sync", object);
            Ok(())
        }
        Err(failure) => Err(failure.with_details(object)),
    }
}

pub fn redeem(out: &Out, args: RedeemArgs) -> Result<(), Failure> {
    let common = &args.common;
    let mut s = Session::open(common, Access::Write)?;
    let amount = parse_amount(&args.amount, s.wallet.currency())?;
    let office = s.office_url(common);
    let rt = runtime()?;
    let client = OfficeClient::new(&office)?;
    // A Redeem entry is credited only through a sync the office accepts. A
    // wallet whose chain the office refuses (a revoked copy) would lose the
    // value for a credit that never comes: sync first, and write nothing
    // unless the office takes this chain.
    s.sync(&client, &rt).map_err(|e| {
        e.context("nothing was redeemed: the money office must accept this wallet's chain first")
    })?;
    let redeem_id = s.wallet.redeem(wall_clock(), amount)?;
    s.pump()?;
    out.line(format!(
        "redeemed {amount} (id {}): balance {}; the office credits the owner's account at this \
         sync",
        hex_string(&redeem_id),
        s.wallet.balance()
    ));
    let report = s.sync(&client, &rt).map_err(|e| {
        e.context(&format!(
            "redeemed {amount} locally; the owner is credited at the next successful sync"
        ))
    })?;
    print_sync(out, &s, &report);
    out.done(
        "redeem",
        json!({
            "wallet": s.wallet.id().to_hex(),
            "amount": amount.to_string(),
            "redeem_id": hex_string(&redeem_id),
            "balance": s.wallet.balance().to_string(),
            "balance_minor": s.wallet.balance().minor_units(),
            "sync": sync_json(&report),
        }),
    );
    Ok(())
}

/// Exit 9 if the wallet learned that it is revoked.
fn revoked_check(s: &Session) -> Result<(), Failure> {
    if s.is_revoked() {
        Err(Failure::new(
            Exit::DoubleSpend,
            format!(
                "wallet {} is REVOKED by the money office: a double spend by this wallet (or a \
                 copy of it) was caught. Peers refuse it; what the office holds of its chain \
                 can be redeemed (`mpay wallet redeem`).",
                s.wallet.id()
            ),
        ))
    } else {
        Ok(())
    }
}

/// What a sync did with the chain, for people: the entries it uploaded,
/// or that there was nothing new.
fn sync_text(attested: u64, balance: &str, uploaded_from: u64, rounds: usize) -> String {
    let uploaded = if uploaded_from > attested {
        "nothing new to upload".to_owned()
    } else if uploaded_from == attested {
        format!("uploaded entry {attested}")
    } else {
        format!("uploaded entries {uploaded_from}–{attested}")
    };
    let rounds = if rounds == 1 {
        String::new()
    } else {
        format!(" in {rounds} rounds")
    };
    format!("office attests entry {attested} with balance {balance} ({uploaded}{rounds})")
}

fn print_sync(out: &Out, s: &Session, report: &SyncReport) {
    if let Some(att) = &report.attestation {
        out.line(sync_text(
            att.seq,
            &att.balance.to_string(),
            report.uploaded_from,
            report.rounds,
        ));
    }
    for tx in &report.settled {
        out.line(format!(
            "payment {} settled by the office (paid)",
            tx.short()
        ));
    }
    for tx in &report.released {
        out.line(format!(
            "payment {} released by the office: the amount is back",
            tx.short()
        ));
    }
    if let Some(v) = report.revocation_version {
        out.line(format!("new revocation list installed: version {v}"));
    }
    out.line(format!(
        "balance {}, locked {}",
        s.wallet.balance(),
        s.wallet.locked()
    ));
}

fn sync_json(report: &SyncReport) -> Value {
    json!({
        "rounds": report.rounds,
        "uploaded_from": report.uploaded_from,
        "attested_seq": report.attestation.as_ref().map(|a| a.seq),
        "attested_balance": report.attestation.as_ref().map(|a| a.balance.to_string()),
        "attested_balance_minor": report.attestation.as_ref().map(|a| a.balance.minor_units()),
        "settled": report.settled.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "released": report.released.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        "revocation_version": report.revocation_version,
    })
}

// ---- balance, history ------------------------------------------------------

pub fn balance(out: &Out, common: &Common) -> Result<(), Failure> {
    let s = Session::open(common, Access::Read)?;
    let w = &s.wallet;
    let att = w.attestation();
    let synced = w.next_unsynced_seq() > 0;
    let chain_len = u64::try_from(w.chain().len()).unwrap_or(u64::MAX);
    let unsynced = chain_len.saturating_sub(w.next_unsynced_seq());
    let revoked = s.is_revoked();
    let revocation_version = w.revocation_list().map(|l| l.version);
    let expires = w.certificate().body.expires_at;
    let expired = expires <= wall_clock();
    let prepared: Vec<Value> = w
        .prepared_txs()
        .map(|(tx, seller, amount)| {
            json!({ "tx": tx.to_string(), "seller": seller.to_hex(), "amount": amount.to_string() })
        })
        .collect();
    let committing: Vec<String> = w.committing_txs().map(|t| t.to_string()).collect();

    out.line(format!("wallet   {}", w.id()));
    out.line(format!(
        "owner    {} at {}",
        s.settings.owner, s.settings.office
    ));
    out.line(format!("balance  {}", w.balance()));
    out.line(format!(
        "locked   {}{}",
        w.locked(),
        if prepared.is_empty() {
            String::new()
        } else {
            format!(" ({} payment(s) waiting for their seller)", prepared.len())
        }
    ));
    if synced {
        out.line(format!(
            "last sync {}: the office attests entry {} with balance {}",
            utc(att.synced_at.as_millis()),
            att.seq,
            att.balance
        ));
    } else {
        out.line(format!(
            "last sync never (enrolled {})",
            utc(att.synced_at.as_millis())
        ));
    }
    out.line(format!("unsynced entries {unsynced}"));
    if !committing.is_empty() {
        out.line(format!(
            "{} sale(s) committed but not acknowledged by the buyer (the money is yours)",
            committing.len()
        ));
    }
    out.line(format!(
        "certificate {} {}",
        if expired { "EXPIRED at" } else { "valid until" },
        utc(expires.as_millis())
    ));
    out.line(if revoked {
        "revoked  YES: a double spend was caught; peers refuse this wallet".to_owned()
    } else {
        format!(
            "revoked  no{}",
            revocation_version.map_or(String::new(), |v| format!(" (revocation list v{v})"))
        )
    });
    out.done(
        "balance",
        json!({
            "wallet": w.id().to_hex(),
            "owner": s.settings.owner,
            "office": s.settings.office,
            "currency": w.currency().to_string(),
            "balance": w.balance().to_string(),
            "balance_minor": w.balance().minor_units(),
            "locked": w.locked().to_string(),
            "locked_minor": w.locked().minor_units(),
            "last_sync_ms": synced.then_some(att.synced_at.as_millis()),
            "attested_seq": att.seq,
            "attested_balance": att.balance.to_string(),
            "attested_balance_minor": att.balance.minor_units(),
            "unsynced_entries": unsynced,
            "revoked": revoked,
            "revocation_version": revocation_version,
            "certificate_expires_ms": expires.as_millis(),
            "certificate_expired": expired,
            "prepared": prepared,
            "committing": committing,
        }),
    );
    Ok(())
}

/// One chain entry as people and scripts see it.
struct EntryView {
    kind: &'static str,
    tx: Option<String>,
    counterparty: Option<PartyId>,
    /// Signed change of the balance (a Pay is negative).
    change: Amount,
    status: Option<&'static str>,
}

fn entry_view(w: &Wallet, entry: &ChainEntry) -> EntryView {
    let zero = Amount::zero(w.currency());
    let neg = |a: Amount| a.checked_neg().unwrap_or(zero);
    match &entry.kind {
        EntryKind::Genesis { .. } => EntryView {
            kind: "genesis",
            tx: None,
            counterparty: None,
            change: zero,
            status: None,
        },
        EntryKind::Charge { voucher } => EntryView {
            kind: "charge",
            tx: Some(hex_string(&voucher.charge_id)),
            counterparty: Some(voucher.office),
            change: voucher.amount,
            status: None,
        },
        EntryKind::Pay {
            tx, seller, amount, ..
        } => EntryView {
            kind: "pay",
            tx: Some(tx.to_string()),
            counterparty: Some(*seller),
            change: neg(*amount),
            status: Some(if w.paid(tx) {
                "paid"
            } else if w.voided(tx) {
                "voided"
            } else {
                "locked"
            }),
        },
        EntryKind::Receive {
            tx, buyer, amount, ..
        } => EntryView {
            kind: "receive",
            tx: Some(tx.to_string()),
            counterparty: Some(*buyer),
            change: *amount,
            status: None,
        },
        EntryKind::Void {
            tx,
            paid_seq,
            amount,
            ..
        } => {
            let seller = usize::try_from(*paid_seq)
                .ok()
                .and_then(|i| w.chain().get(i))
                .and_then(|e| match &e.kind {
                    EntryKind::Pay { seller, .. } => Some(*seller),
                    _ => None,
                });
            EntryView {
                kind: "void",
                tx: Some(tx.to_string()),
                counterparty: seller,
                change: *amount,
                status: None,
            }
        }
        EntryKind::Redeem { redeem_id, amount } => EntryView {
            kind: "redeem",
            tx: Some(hex_string(redeem_id)),
            counterparty: Some(w.office().subject()),
            change: neg(*amount),
            status: None,
        },
    }
}

pub fn history(out: &Out, args: HistoryArgs) -> Result<(), Failure> {
    let s = Session::open(&args.common, Access::Read)?;
    let w = &s.wallet;
    let limit = args.limit.unwrap_or(usize::MAX);
    let mut rows = Vec::new();
    out.line(format!(
        "{:>5}  {:<8} {:<9} {:>14} {:>14}  {:<23} {}",
        "seq", "kind", "party", "amount", "balance", "time", "tx"
    ));
    for entry in w.chain().iter().rev().take(limit) {
        let view = entry_view(w, entry);
        let party = view.counterparty.map(|p| p.short()).unwrap_or_default();
        let tx_short = view
            .tx
            .as_deref()
            .map(|t| t.get(..8).unwrap_or(t))
            .unwrap_or("");
        let sign = if view.change.is_positive() { "+" } else { "" };
        out.line(format!(
            "{:>5}  {:<8} {:<9} {:>14} {:>14}  {:<23} {}{}",
            entry.seq,
            view.kind,
            party,
            format!("{sign}{}", view.change),
            entry.balance_after.to_string(),
            utc(entry.created_at.as_millis()),
            tx_short,
            view.status.map(|s| format!(" ({s})")).unwrap_or_default(),
        ));
        rows.push(json!({
            "seq": entry.seq,
            "kind": view.kind,
            "tx": view.tx,
            "counterparty": view.counterparty.map(|p| p.to_hex()),
            "amount": view.change.to_string(),
            "amount_minor": view.change.minor_units(),
            "balance_after": entry.balance_after.to_string(),
            "balance_after_minor": entry.balance_after.minor_units(),
            "time_ms": entry.created_at.as_millis(),
            "status": view.status,
        }));
    }
    out.done(
        "history",
        json!({ "wallet": w.id().to_hex(), "entries": rows }),
    );
    Ok(())
}

// ---- backup, restore, change-pin ---------------------------------------------

pub fn backup(out: &Out, args: BackupArgs) -> Result<(), Failure> {
    let opened = OpenedStore::open(&args.common, Access::Read)?;
    let dest = &args.dest;
    if dest.exists() {
        let empty = fs::read_dir(dest)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty {
            return Err(Failure::other(format!(
                "{} exists and is not empty; give a new directory",
                dest.display()
            )));
        }
    }
    fs::create_dir_all(dest)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", dest.display())))?;
    opened.store.backup_to(&dest.join(STORE_FILE))?;
    WalletDir::new(dest).write_settings(&opened.settings)?;
    sync_dir(dest)?;
    out.line(format!(
        "encrypted backup written to {} (same PIN)",
        dest.display()
    ));
    out.warn(BACKUP_WARNING);
    out.done(
        "backup",
        json!({ "dest": dest, "wallet": opened.settings.wallet }),
    );
    Ok(())
}

pub fn restore(out: &Out, args: RestoreArgs) -> Result<(), Failure> {
    let common = &args.common;
    let target = WalletDir::new(&common.dir);
    let source = WalletDir::new(&args.src);
    if !source.store_path().exists() {
        return Err(Failure::other(format!(
            "{} holds no wallet backup ({STORE_FILE} missing)",
            args.src.display()
        )));
    }
    let settings = source.read_settings()?;
    if target.has_wallet() && !args.force {
        return Err(Failure::other(format!(
            "a wallet already exists in {}; pass --force to replace it (its files are moved \
             aside, not deleted)",
            common.dir.display()
        )));
    }
    fs::create_dir_all(&common.dir)
        .map_err(|e| Failure::other(format!("cannot create {}: {e}", common.dir.display())))?;
    let _lock = target.lock()?;
    let stamp = wall_clock().as_millis();
    // Copy into a staging directory and check the PIN opens the copy there,
    // so a wrong PIN or a damaged backup leaves the current wallet alone.
    let staging = WalletDir::new(&common.dir.join(format!(".restore-{stamp}")));
    fs::create_dir_all(&staging.dir).map_err(|e| Failure::other(e.to_string()))?;
    let staged = copy_store(&source, &staging).and_then(|()| {
        let pin = read_pin(&PinSource::current(common), false)?;
        let store = WalletStore::open(&staging.store_path(), &pin)?;
        store.load()?;
        Ok(())
    });
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&staging.dir);
        return Err(e);
    }
    let mut replaced = None;
    if target.has_wallet() {
        let aside = common.dir.join(format!("replaced-{stamp}"));
        fs::create_dir_all(&aside).map_err(|e| Failure::other(e.to_string()))?;
        let mut old = target.store_files();
        if target.settings_path().exists() {
            old.push(target.settings_path());
        }
        move_files(&old, &aside)?;
        replaced = Some(aside);
    }
    move_files(&staging.store_files(), &common.dir)?;
    let _ = fs::remove_dir_all(&staging.dir);
    target.write_settings(&settings)?;
    sync_dir(&common.dir)?;
    if let Some(aside) = &replaced {
        out.line(format!(
            "the wallet that was in {} is moved to {}",
            common.dir.display(),
            aside.display()
        ));
    }
    out.line(format!(
        "restored wallet {} from {}",
        settings.wallet.as_deref().unwrap_or("(not enrolled)"),
        args.src.display()
    ));
    out.warn(BACKUP_WARNING);
    out.done(
        "restore",
        json!({ "wallet": settings.wallet, "replaced": replaced }),
    );
    Ok(())
}

fn copy_store(from: &WalletDir, to: &WalletDir) -> Result<(), Failure> {
    for file in from.store_files() {
        let name = file
            .file_name()
            .ok_or_else(|| Failure::other("a store file without a name"))?;
        let dest = to.dir.join(name);
        fs::copy(&file, &dest)
            .map_err(|e| Failure::other(format!("cannot copy {}: {e}", file.display())))?;
        fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .map_err(|e| Failure::other(format!("cannot sync {}: {e}", dest.display())))?;
    }
    sync_dir(&to.dir)
}

fn move_files(files: &[PathBuf], to: &Path) -> Result<(), Failure> {
    for file in files {
        let Some(name) = file.file_name() else {
            continue;
        };
        fs::rename(file, to.join(name))
            .map_err(|e| Failure::other(format!("cannot move {}: {e}", file.display())))?;
    }
    sync_dir(to)
}

pub fn change_pin(out: &Out, args: ChangePinArgs) -> Result<(), Failure> {
    let mut opened = OpenedStore::open(&args.common, Access::Write)?;
    let new_pin = read_pin(
        &PinSource {
            file: args.new_pin_file.as_deref(),
            env: "MPAY_NEW_PIN",
            prompt: "New PIN: ",
        },
        true,
    )?;
    opened.store.change_pin(&new_pin, kdf_params(args.kdf))?;
    out.line("PIN changed");
    out.done("change-pin", json!({}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_says_what_it_uploaded() {
        // Issue 16: "uploaded from entry 2" when the office attested entry 1.
        assert_eq!(
            sync_text(1, "5.00 EUR", 2, 1),
            "office attests entry 1 with balance 5.00 EUR (nothing new to upload)"
        );
        assert_eq!(
            sync_text(1, "5.00 EUR", 1, 1),
            "office attests entry 1 with balance 5.00 EUR (uploaded entry 1)"
        );
        assert_eq!(
            sync_text(7, "5.00 EUR", 2, 2),
            "office attests entry 7 with balance 5.00 EUR (uploaded entries 2–7 in 2 rounds)"
        );
    }

    #[test]
    fn a_token_of_another_owner_is_named() {
        let failure = token_of_another_owner("alice", "sam");
        assert_eq!(failure.exit, Exit::Other);
        assert!(
            failure
                .message
                .starts_with("this owner token belongs to \"alice\", not to \"sam\""),
            "{}",
            failure.message
        );
    }
}
