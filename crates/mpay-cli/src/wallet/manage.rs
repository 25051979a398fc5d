//! The wallet commands that need no radio: init, enroll, charge, balance,
//! history, sync, redeem, backup, restore, change-pin. Each calls
//! [`mpay_wallet::Wallet`] and says what it did, as text or one JSON object.

use mpay_identity::hex_string;
use mpay_wallet::{Access, BACKUP_WARNING, Enrolment, NewWallet, SyncReport, Wallet, WalletError};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::exit::{Exit, Failure};
use super::files::{PinSource, kdf_cost, parse_amount, read_pin};
use super::output::{Out, utc};
use super::{
    BackupArgs, ChangePinArgs, ChargeArgs, Common, EnrollArgs, HistoryArgs, InitArgs, ProfileArgs,
    ProfileCommand, RedeemArgs, RestoreArgs,
};

/// The owner's PIN as the library asks for it: `--pin-file`, env
/// `MPAY_PIN`, or a prompt (twice when `confirm`).
fn pin_of(
    common: &Common,
    confirm: bool,
) -> impl FnOnce() -> Result<Zeroizing<String>, WalletError> + '_ {
    move || {
        read_pin(&PinSource::current(common), confirm)
            .map_err(|failure| WalletError::Other(failure.message))
    }
}

/// Opens the wallet of `common` with the owner's PIN.
pub fn open(common: &Common, access: Access) -> Result<Wallet, Failure> {
    let mut wallet = Wallet::open_with(&common.dir, access, pin_of(common, false))?;
    wallet.use_office(common.office.clone());
    Ok(wallet)
}

// ---- init, enroll ---------------------------------------------------------

pub fn init(out: &Out, args: InitArgs) -> Result<(), Failure> {
    let common = &args.common;
    if mpay_wallet::files::WalletDir::new(&common.dir).has_wallet() {
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
    let new = NewWallet {
        office,
        owner: args.owner.clone(),
        token: args.token.clone(),
        kdf: kdf_cost(args.kdf),
    };
    let mut wallet = Wallet::create_with(&common.dir, &new, pin_of(common, true))?;
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
    let enrolment = wallet.enroll(None).map_err(|e| {
        if matches!(e, WalletError::OfficeUnreachable(_)) {
            e.context("wallet created but not enrolled; run `mpay wallet enroll` later")
        } else {
            e.context("wallet created but not enrolled")
        }
    })?;
    report_enrolment(out, "init", &enrolment);
    Ok(())
}

pub fn enroll(out: &Out, args: EnrollArgs) -> Result<(), Failure> {
    let mut wallet = open(&args.common, Access::Write)?;
    let enrolment = wallet.enroll(args.token.as_deref())?;
    if enrolment.already {
        out.line(format!("wallet {} is already enrolled", enrolment.wallet));
        out.done(
            "enroll",
            json!({ "wallet": enrolment.wallet.to_hex(), "already": true }),
        );
        return Ok(());
    }
    report_enrolment(out, "enroll", &enrolment);
    Ok(())
}

fn report_enrolment(out: &Out, command: &str, enrolment: &Enrolment) {
    out.line(format!(
        "enrolled with {} as owner {}",
        enrolment.office, enrolment.owner
    ));
    out.line(format!("wallet id: {}", enrolment.wallet));
    if let Some(limits) = enrolment.limits {
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
        utc(enrolment.certificate_expires_at.as_millis())
    ));
    out.done(
        command,
        json!({
            "wallet": enrolment.wallet.to_hex(),
            "owner": enrolment.owner,
            "office": enrolment.office,
            "currency": enrolment.currency.to_string(),
            "certificate_expires_ms": enrolment.certificate_expires_at.as_millis(),
        }),
    );
}

// ---- charge, sync, redeem ---------------------------------------------------

pub fn charge(out: &Out, args: ChargeArgs) -> Result<(), Failure> {
    let common = &args.common;
    let mut w = open(common, Access::Write)?;
    let amount = parse_amount(&args.amount, w.currency()?)?;
    let key = match &args.idempotency_key {
        Some(k) => k.clone(),
        None => Wallet::new_idempotency_key()?,
    };
    let office = w.office_url();
    let note = format!(
        "asking {office} for a voucher of {amount}; idempotency key {key} (if this is \
         interrupted, repeat with --idempotency-key {key}: the owner is charged once)"
    );
    w.check_charge(amount)?;
    if out.is_json() {
        eprintln!("{note}");
    } else {
        out.line(&note);
    }
    let charged = w.charge(amount, args.token.as_deref(), &key)?;
    if charged.applied {
        out.line(format!("charged {amount}: balance {}", charged.balance));
    } else {
        out.line(format!(
            "this voucher was already applied; balance {}",
            charged.balance
        ));
    }
    let report = w
        .sync()
        .map_err(|e| e.context(&format!("charged {amount}, but the sync after it failed")))?;
    print_sync(out, &w, &report)?;
    out.done(
        "charge",
        json!({
            "wallet": w.id()?.to_hex(),
            "amount": amount.to_string(),
            "applied": charged.applied,
            "idempotency_key": key,
            "balance": w.balance()?.to_string(),
            "balance_minor": w.balance()?.minor_units(),
            "sync": sync_json(&report),
        }),
    );
    revoked_check(&w)
}

pub fn sync(out: &Out, common: &Common) -> Result<(), Failure> {
    let mut w = open(common, Access::Write)?;
    let office = w.office_url();
    let report = w.sync()?;
    out.line(format!("synced with {office}"));
    print_sync(out, &w, &report)?;
    let revoked = revoked_check(&w);
    let mut object = sync_json(&report);
    if let Value::Object(map) = &mut object {
        map.insert("wallet".into(), json!(w.id()?.to_hex()));
        map.insert("balance".into(), json!(w.balance()?.to_string()));
        map.insert("balance_minor".into(), json!(w.balance()?.minor_units()));
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
    let mut w = open(&args.common, Access::Write)?;
    let amount = parse_amount(&args.amount, w.currency()?)?;
    let redeemed = w.redeem(amount)?;
    out.line(format!(
        "redeemed {amount} (id {}): balance {}; the office credits the owner's account at this \
         sync",
        hex_string(&redeemed.redeem_id),
        redeemed.balance
    ));
    print_sync(out, &w, &redeemed.sync)?;
    out.done(
        "redeem",
        json!({
            "wallet": w.id()?.to_hex(),
            "amount": amount.to_string(),
            "redeem_id": hex_string(&redeemed.redeem_id),
            "balance": w.balance()?.to_string(),
            "balance_minor": w.balance()?.minor_units(),
            "sync": sync_json(&redeemed.sync),
        }),
    );
    Ok(())
}

/// Exit 9 if the wallet learned that it is revoked.
fn revoked_check(w: &Wallet) -> Result<(), Failure> {
    if w.is_revoked() {
        Err(Failure::new(
            Exit::DoubleSpend,
            format!(
                "wallet {} is REVOKED by the money office: a double spend by this wallet (or a \
                 copy of it) was caught. Peers refuse it; what the office holds of its chain \
                 can be redeemed (`mpay wallet redeem`).",
                w.id()?
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

fn print_sync(out: &Out, w: &Wallet, report: &SyncReport) -> Result<(), Failure> {
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
    out.line(format!("balance {}, locked {}", w.balance()?, w.locked()?));
    Ok(())
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
    let w = open(common, Access::Read)?;
    let b = w.balance_info()?;
    let att = &b.attestation;
    let prepared: Vec<Value> = b
        .prepared
        .iter()
        .map(|p| {
            json!({ "tx": p.tx.to_string(), "seller": p.seller.to_hex(), "amount": p.amount.to_string() })
        })
        .collect();
    let committing: Vec<String> = b.committing.iter().map(|t| t.to_string()).collect();

    out.line(format!("wallet   {}", b.wallet));
    out.line(format!("owner    {} at {}", b.owner, b.office));
    out.line(format!("balance  {}", b.balance));
    out.line(format!(
        "locked   {}{}",
        b.locked,
        if prepared.is_empty() {
            String::new()
        } else {
            format!(" ({} payment(s) waiting for their seller)", prepared.len())
        }
    ));
    if b.last_sync.is_some() {
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
    out.line(format!("unsynced entries {}", b.unsynced_entries));
    if !committing.is_empty() {
        out.line(format!(
            "{} sale(s) committed but not acknowledged by the buyer (the money is yours)",
            committing.len()
        ));
    }
    out.line(format!(
        "certificate {} {}",
        if b.certificate_expired {
            "EXPIRED at"
        } else {
            "valid until"
        },
        utc(b.certificate_expires_at.as_millis())
    ));
    out.line(if b.revoked {
        "revoked  YES: a double spend was caught; peers refuse this wallet".to_owned()
    } else {
        format!(
            "revoked  no{}",
            b.revocation_version
                .map_or(String::new(), |v| format!(" (revocation list v{v})"))
        )
    });
    out.done(
        "balance",
        json!({
            "wallet": b.wallet.to_hex(),
            "owner": b.owner,
            "office": b.office,
            "currency": b.currency.to_string(),
            "balance": b.balance.to_string(),
            "balance_minor": b.balance.minor_units(),
            "locked": b.locked.to_string(),
            "locked_minor": b.locked.minor_units(),
            "last_sync_ms": b.last_sync.map(|t| t.as_millis()),
            "attested_seq": att.seq,
            "attested_balance": att.balance.to_string(),
            "attested_balance_minor": att.balance.minor_units(),
            "unsynced_entries": b.unsynced_entries,
            "revoked": b.revoked,
            "revocation_version": b.revocation_version,
            "certificate_expires_ms": b.certificate_expires_at.as_millis(),
            "certificate_expired": b.certificate_expired,
            "prepared": prepared,
            "committing": committing,
        }),
    );
    Ok(())
}

pub fn history(out: &Out, args: HistoryArgs) -> Result<(), Failure> {
    let w = open(&args.common, Access::Read)?;
    let entries = w.history(args.limit)?;
    let mut rows = Vec::new();
    out.line(format!(
        "{:>5}  {:<8} {:<9} {:>14} {:>14}  {:<23} {}",
        "seq", "kind", "party", "amount", "balance", "time", "tx"
    ));
    for entry in &entries {
        let party = entry.counterparty.map(|p| p.short()).unwrap_or_default();
        let tx_short = entry
            .tx
            .as_deref()
            .map(|t| t.get(..8).unwrap_or(t))
            .unwrap_or("");
        let sign = if entry.change.is_positive() { "+" } else { "" };
        let status = entry.status.map(|s| s.as_str());
        out.line(format!(
            "{:>5}  {:<8} {:<9} {:>14} {:>14}  {:<23} {}{}",
            entry.seq,
            entry.kind.as_str(),
            party,
            format!("{sign}{}", entry.change),
            entry.balance_after.to_string(),
            utc(entry.created_at.as_millis()),
            tx_short,
            status.map(|s| format!(" ({s})")).unwrap_or_default(),
        ));
        if let Some(shipping) = &entry.shipping {
            out.line(format!("       ship to: {shipping}"));
        }
        rows.push(json!({
            "seq": entry.seq,
            "kind": entry.kind.as_str(),
            "tx": entry.tx,
            "counterparty": entry.counterparty.map(|p| p.to_hex()),
            "amount": entry.change.to_string(),
            "amount_minor": entry.change.minor_units(),
            "balance_after": entry.balance_after.to_string(),
            "balance_after_minor": entry.balance_after.minor_units(),
            "time_ms": entry.created_at.as_millis(),
            "status": status,
            "shipping": entry.shipping,
        }));
    }
    out.done(
        "history",
        json!({ "wallet": w.id()?.to_hex(), "entries": rows }),
    );
    Ok(())
}

// ---- backup, restore, change-pin ---------------------------------------------

pub fn backup(out: &Out, args: BackupArgs) -> Result<(), Failure> {
    let w = open(&args.common, Access::Read)?;
    let dest = &args.dest;
    w.backup(dest)?;
    out.line(format!(
        "encrypted backup written to {} (same PIN)",
        dest.display()
    ));
    out.warn(BACKUP_WARNING);
    out.done(
        "backup",
        json!({ "dest": dest, "wallet": w.settings().wallet }),
    );
    Ok(())
}

pub fn restore(out: &Out, args: RestoreArgs) -> Result<(), Failure> {
    let common = &args.common;
    let restored = Wallet::restore_with(&common.dir, &args.src, args.force, pin_of(common, false))?;
    if let Some(aside) = &restored.replaced {
        out.line(format!(
            "the wallet that was in {} is moved to {}",
            common.dir.display(),
            aside.display()
        ));
    }
    out.line(format!(
        "restored wallet {} from {}",
        restored.wallet.as_deref().unwrap_or("(not enrolled)"),
        args.src.display()
    ));
    out.warn(BACKUP_WARNING);
    out.done(
        "restore",
        json!({ "wallet": restored.wallet, "replaced": restored.replaced }),
    );
    Ok(())
}

pub fn change_pin(out: &Out, args: ChangePinArgs) -> Result<(), Failure> {
    let mut w = open(&args.common, Access::Write)?;
    let new_pin = read_pin(
        &PinSource {
            file: args.new_pin_file.as_deref(),
            env: "MPAY_NEW_PIN",
            prompt: "New PIN: ",
        },
        true,
    )?;
    w.change_pin(&new_pin, kdf_cost(args.kdf))?;
    out.line("PIN changed");
    out.done("change-pin", json!({}));
    Ok(())
}

// ---- profile -------------------------------------------------------------------

/// A given value: empty clears the field.
fn given(value: Option<String>, old: Option<String>) -> Option<String> {
    match value {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(v),
        None => old,
    }
}

/// Reads the owner's certificate file, no further than its limit allows.
fn read_certificate(path: &std::path::Path) -> Result<String, Failure> {
    use std::io::Read as _;
    let max = mpay_wallet::PROFILE_CERTIFICATE_LEN_MAX;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
                .read_to_end(&mut bytes)
        })
        .map_err(|e| Failure::other(format!("cannot read {}: {e}", path.display())))?;
    if bytes.len() > max {
        return Err(Failure::other(format!(
            "{} is longer than {max} bytes",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Failure::other(format!("{} is not UTF-8 text", path.display())))
}

pub fn profile(out: &Out, args: ProfileArgs) -> Result<(), Failure> {
    match args.what {
        ProfileCommand::Set {
            payment,
            certificate_file,
            shipping,
            billing,
        } => {
            let certificate = certificate_file
                .as_deref()
                .map(read_certificate)
                .transpose()?;
            let mut w = open(&args.common, Access::Write)?;
            let old = w.profile()?;
            let profile = mpay_wallet::Profile {
                payment: given(payment, old.payment),
                certificate: given(certificate, old.certificate),
                shipping: given(shipping, old.shipping),
                billing: given(billing, old.billing),
            };
            w.set_profile(&profile)?;
            out.line("profile saved (encrypted in the wallet's store)");
            out.done("profile-set", profile_json(&profile));
        }
        ProfileCommand::Show => {
            let w = open(&args.common, Access::Read)?;
            let profile = w.profile()?;
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
            out.line(format!("payment      {}", show(&profile.payment)));
            out.line(format!("shipping     {}", show(&profile.shipping)));
            out.line(format!("billing      {}", show(&profile.billing)));
            out.line(format!(
                "certificate  {}",
                profile
                    .certificate
                    .as_ref()
                    .map_or("(none)".to_owned(), |c| format!("{} bytes", c.len()))
            ));
            out.done("profile", profile_json(&profile));
        }
    }
    Ok(())
}

fn profile_json(profile: &mpay_wallet::Profile) -> Value {
    json!({
        "payment": profile.payment,
        "certificate": profile.certificate,
        "shipping": profile.shipping,
        "billing": profile.billing,
    })
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
}
