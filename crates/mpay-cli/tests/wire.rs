//! `mpay wire` against the document's vectors (docs/wire-vectors.json): every
//! frame decodes, every sealed frame opens and its signature verifies, and a
//! frame with one bit flipped anywhere that matters is refused with exit 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const VECTORS: &str = include_str!("../../../docs/wire-vectors.json");
/// `sent_at` of every vector frame (2026-01-01T00:00:00Z).
const SENT_AT: &str = "1767225600000";

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn mpay(args: &[&str], stdin: Option<&str>) -> Out {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpay"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpay runs");
    {
        use std::io::Write as _;
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("stdin written");
        }
    }
    let out = child.wait_with_output().expect("mpay ends");
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn vectors() -> Vec<Value> {
    let all: Value = serde_json::from_str(VECTORS).expect("vectors are JSON");
    all["vectors"].as_array().expect("a list").clone()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Writes each party's key files into `dir`: NAME.key, NAME.pub, NAME.cert.
fn key_files(dir: &Path) {
    for p in vectors().iter().filter(|v| field(v, "type") == "party") {
        let name = field(p, "name");
        std::fs::write(dir.join(format!("{name}.key")), field(p, "secret_key_file")).unwrap();
        std::fs::write(dir.join(format!("{name}.pub")), field(p, "public_keys")).unwrap();
        std::fs::write(dir.join(format!("{name}.cert")), field(p, "certificate")).unwrap();
    }
}

fn path(dir: &Path, name: &str, ext: &str) -> String {
    let p: PathBuf = dir.join(format!("{name}.{ext}"));
    p.to_string_lossy().into_owned()
}

fn frames() -> Vec<Value> {
    vectors()
        .into_iter()
        .filter(|v| field(v, "type") == "frame")
        .collect()
}

fn open(dir: &Path, v: &Value, frame: &str) -> Out {
    mpay(
        &[
            "wire",
            "open",
            "--keys",
            &path(dir, field(v, "receiver"), "key"),
            "--sender",
            &path(dir, field(v, "sender"), "cert"),
            "--at",
            SENT_AT,
            frame,
        ],
        None,
    )
}

fn flip(hex: &str, byte: usize) -> String {
    let mut bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    bytes[byte] ^= 0x01;
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn decode_names_every_header_field_of_every_vector() {
    let frames = frames();
    assert!(frames.len() >= 11, "one frame per kind");
    for (i, v) in frames.iter().enumerate() {
        // Hex argument, and stdin, alternately.
        let out = if i % 2 == 0 {
            mpay(&["wire", "decode", field(v, "frame")], None)
        } else {
            mpay(&["wire", "decode"], Some(field(v, "frame")))
        };
        assert_eq!(out.code, 0, "{}: {}", field(v, "name"), out.stderr);
        let json: Value = serde_json::from_str(&out.stdout).unwrap();
        let h = &json["header"];
        assert_eq!(h["kind"], field(v, "kind"));
        assert_eq!(h["version"], 1);
        assert_eq!(h["suite"], "0x01");
        assert_eq!(h["nonce"], u64::try_from(i + 1).unwrap());
        assert_eq!(h["sent_at_ms"], 1_767_225_600_000u64);
        assert_eq!(h["tx_id"], "22222222222222222222222222222222");
        assert_ne!(h["kind_name"], "unknown");
        let body = &json["body"];
        if field(v, "receiver") == "broadcast" {
            assert_eq!(body["sealed"], false);
            assert_eq!(body["payload"]["hex"], field(v, "payload"));
            assert_eq!(body["signature"], field(v, "signature"));
        } else {
            assert_eq!(body["sealed"], true);
            assert_eq!(body["enc"], field(v, "enc"));
        }
    }
}

#[test]
fn the_interbank_vectors_open_and_decode() {
    let all: Value =
        serde_json::from_str(include_str!("../../../docs/wire-vectors-interbank.json")).unwrap();
    let all = all["vectors"].as_array().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for p in all.iter().filter(|v| field(v, "type") == "party") {
        let name = field(p, "name");
        std::fs::write(
            dir.path().join(format!("{name}.key")),
            field(p, "secret_key_file"),
        )
        .unwrap();
        std::fs::write(
            dir.path().join(format!("{name}.cert")),
            field(p, "certificate"),
        )
        .unwrap();
    }
    let mut outcomes = Vec::new();
    for v in all.iter().filter(|v| field(v, "type") == "frame") {
        let out = open(dir.path(), v, field(v, "frame"));
        assert_eq!(out.code, 0, "{}: {}", field(v, "name"), out.stderr);
        let json: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(json["payload"]["hex"], field(v, "payload"));
        outcomes.push(json["payload"]["decoded"].clone());
    }
    assert_eq!(outcomes[0]["to_account"], "cust:bob");
    assert_eq!(outcomes[0]["amount"], "12.50 EUR");
    assert_eq!(outcomes[0]["reason"], "Payment");
    assert_eq!(outcomes[1]["outcome"], "credited");
    assert_eq!(outcomes[2]["reason"], "Returned");
    assert_eq!(outcomes[2]["returns"], outcomes[0]["id"]);
}

#[test]
fn decode_reads_a_file_and_refuses_a_truncated_frame() {
    let dir = tempfile::tempdir().unwrap();
    let v = &frames()[1];
    let file = dir.path().join("frame.hex");
    std::fs::write(&file, field(v, "frame")).unwrap();
    let out = mpay(&["wire", "decode", &file.to_string_lossy()], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let frame = field(v, "frame");
    let out = mpay(&["wire", "decode", &frame[..frame.len() - 2]], None);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(out.stderr.contains("refused: "), "{}", out.stderr);
}

#[test]
fn every_sealed_vector_opens_and_its_signature_verifies() {
    let dir = tempfile::tempdir().unwrap();
    key_files(dir.path());
    for v in frames()
        .iter()
        .filter(|v| field(v, "receiver") != "broadcast")
    {
        let out = open(dir.path(), v, field(v, "frame"));
        assert_eq!(out.code, 0, "{}: {}", field(v, "name"), out.stderr);
        let json: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(json["payload"]["hex"], field(v, "payload"));
        assert_eq!(json["signature"], field(v, "signature"));
        let decoded = &json["payload"]["decoded"];
        assert!(decoded.is_object(), "{}: {json}", field(v, "name"));
        match field(v, "name") {
            "Agreed" => {
                let entry = &decoded["authorization"];
                assert_eq!(entry["kind"]["type"], "Pay");
                assert_eq!(entry["kind"]["amount"], "12.50 EUR");
                assert_eq!(entry["seq"], 2);
                assert_eq!(entry["wallet"], "000000000000000a0000000000000001");
            }
            "CommitRequest" => {
                assert_eq!(decoded["amount"], "12.50 EUR");
                assert_eq!(decoded["description"], "2 coffees");
                assert_eq!(decoded["seller_certificate"]["role"], "Wallet");
            }
            "Abort" => assert_eq!(decoded["reason"], "SellerDecided"),
            "SyncRequest" => {
                let kinds: Vec<&str> = decoded["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["kind"]["type"].as_str().unwrap())
                    .collect();
                assert_eq!(kinds, ["Pay", "Void", "Pay", "Void", "Redeem"]);
                assert_eq!(decoded["uncertain"][0]["pay_seq"], 5);
                assert_eq!(decoded["revocation_version"], 7);
            }
            "SyncResponse" => {
                assert_eq!(decoded["attestation"]["seq"], 2);
                assert_eq!(decoded["resolutions"][0]["outcome"], "Released");
                assert_eq!(decoded["revocation_list"]["version"], 7);
            }
            _ => {}
        }
    }
}

#[test]
fn the_broadcast_vector_verifies_and_a_wrong_sender_does_not() {
    let dir = tempfile::tempdir().unwrap();
    key_files(dir.path());
    let v = frames()
        .into_iter()
        .find(|v| field(v, "receiver") == "broadcast")
        .unwrap();
    let bob = path(dir.path(), "bob", "pub");
    let out = mpay(
        &["wire", "verify", "--sender", &bob, field(&v, "frame")],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let alice = path(dir.path(), "alice", "pub");
    let out = mpay(
        &["wire", "verify", "--sender", &alice, field(&v, "frame")],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("signature does not verify"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bit_flipped_frame_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    key_files(dir.path());
    let v = frames()
        .into_iter()
        .find(|v| field(v, "name") == "Agreed")
        .unwrap();
    let frame = field(&v, "frame");
    let len = frame.len() / 2;
    // The nonce (bound as AAD), the encapsulated key, the ciphertext, the tag.
    for byte in [50, 70, 110, len - 20, len - 1] {
        let out = open(dir.path(), &v, &flip(frame, byte));
        assert_eq!(out.code, 2, "byte {byte}: {}", out.stdout);
        assert!(
            out.stderr.contains("seal does not open"),
            "byte {byte}: {}",
            out.stderr
        );
    }
    // The receiver id, bound as AAD: the seal breaks; and told who it is,
    // the receiver refuses the frame as addressed to someone else.
    let flipped = flip(frame, 30);
    let out = open(dir.path(), &v, &flipped);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("seal does not open"), "{}", out.stderr);
    let out = mpay(
        &[
            "wire",
            "open",
            "--keys",
            &path(dir.path(), "bob", "key"),
            "--sender",
            &path(dir.path(), "alice", "cert"),
            "--me",
            "000000000000000b0000000000000001",
            "--at",
            SENT_AT,
            &flipped,
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("addressed to"), "{}", out.stderr);
    // The right seal with the wrong sender's keys: the signature fails.
    let out = mpay(
        &[
            "wire",
            "open",
            "--keys",
            &path(dir.path(), "bob", "key"),
            "--sender",
            &path(dir.path(), "office", "pub"),
            "--at",
            SENT_AT,
            frame,
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("signature does not verify"),
        "{}",
        out.stderr
    );
}

#[test]
fn seal_then_open_round_trips_and_a_stale_frame_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    key_files(dir.path());
    let alice_id = "000000000000000a0000000000000001";
    let bob_id = "000000000000000b0000000000000001";
    let out = mpay(
        &[
            "wire",
            "seal",
            "--keys",
            &path(dir.path(), "alice", "key"),
            "--from",
            alice_id,
            "--to",
            &path(dir.path(), "bob", "cert"),
            "--receiver",
            bob_id,
            "--kind",
            "0x0105",
            "--payload",
            "01",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let frame = out.stdout.trim().to_string();
    let opened = mpay(
        &[
            "wire",
            "open",
            "--keys",
            &path(dir.path(), "bob", "key"),
            "--sender",
            &path(dir.path(), "alice", "pub"),
            &frame,
        ],
        None,
    );
    assert_eq!(opened.code, 0, "{}", opened.stderr);
    let json: Value = serde_json::from_str(&opened.stdout).unwrap();
    assert_eq!(json["payload"]["hex"], "01");
    assert_eq!(json["header"]["kind_name"], "ABORT");
    // An hour later the same frame is stale.
    let sent_at = json["header"]["sent_at_ms"].as_u64().unwrap();
    let later = (sent_at + 60 * 60 * 1000).to_string();
    let out = mpay(
        &[
            "wire",
            "open",
            "--keys",
            &path(dir.path(), "bob", "key"),
            "--sender",
            &path(dir.path(), "alice", "pub"),
            "--at",
            &later,
            &frame,
        ],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("older than the freshness window"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_key_file_is_a_local_error() {
    let dir = tempfile::tempdir().unwrap();
    key_files(dir.path());
    let bad = dir.path().join("bad.key");
    std::fs::write(&bad, "not hex").unwrap();
    let v = &frames()[1];
    let out = mpay(
        &[
            "wire",
            "open",
            "--keys",
            &bad.to_string_lossy(),
            "--sender",
            &path(dir.path(), "alice", "pub"),
            field(v, "frame"),
        ],
        None,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("not hex"), "{}", out.stderr);
}

fn semops_vectors() -> Vec<Value> {
    let all: Value =
        serde_json::from_str(include_str!("../../../docs/wire-vectors-semops.json")).unwrap();
    all["vectors"].as_array().unwrap().clone()
}

fn semops_vector(name: &str) -> Value {
    semops_vectors()
        .into_iter()
        .find(|v| field(v, "name") == name)
        .unwrap_or_else(|| panic!("no SEMOPS vector {name}"))
}

/// Key files of the SEMOPS parties: NAME.key and NAME.cert.
fn semops_key_files(dir: &Path) {
    for p in semops_vectors()
        .iter()
        .filter(|v| field(v, "type") == "party")
    {
        let name = field(p, "name");
        std::fs::write(dir.join(format!("{name}.key")), field(p, "secret_key_file")).unwrap();
        std::fs::write(dir.join(format!("{name}.cert")), field(p, "certificate")).unwrap();
    }
}

#[test]
fn every_semops_vector_opens_and_decodes_with_every_field_named() {
    let dir = tempfile::tempdir().unwrap();
    semops_key_files(dir.path());
    let mut decoded = std::collections::HashMap::new();
    for v in semops_vectors()
        .iter()
        .filter(|v| field(v, "type") == "frame")
    {
        let name = field(v, "name");
        let out = mpay(&["wire", "decode", field(v, "frame")], None);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let json: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(json["header"]["kind"], field(v, "kind"));
        assert_ne!(json["header"]["kind_name"], "unknown", "{name}");
        let out = open(dir.path(), v, field(v, "frame"));
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let json: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(json["payload"]["hex"], field(v, "payload"), "{name}");
        assert!(json["payload"]["error"].is_null(), "{name}: {json}");
        // The bare payload decodes to the same fields.
        let out = mpay(
            &[
                "wire",
                "decode",
                "--kind",
                field(v, "kind"),
                field(v, "payload"),
            ],
            None,
        );
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        let bare: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(bare["payload"]["decoded"], json["payload"]["decoded"]);
        decoded.insert(name.to_owned(), json["payload"]["decoded"].clone());
    }
    let trans = semops_vector("TRANS");
    let merchant = "00000000000000340000000000000001";
    let cpp = "00000000000000310000000000000001";
    let payment = "11".repeat(16);

    let pr = &decoded["PAYMENT_REQUEST"];
    assert_eq!(pr["customer"], "alice");
    assert_eq!(pr["cpp"], cpp);
    assert_eq!(pr["pin_len"], 4);
    assert!(pr.get("pin").is_none(), "the PIN is never printed");
    assert_eq!(pr["idempotency_key"], "55".repeat(16));
    assert_eq!(pr["trans"]["merchant"], merchant);
    assert_eq!(pr["trans"]["amount"], "12.50 EUR");
    assert_eq!(pr["trans"]["merchant_reference"], "order-7");
    assert_eq!(pr["trans"]["description"], "coffee and cake");
    assert_eq!(pr["trans"]["signature"], field(&trans, "signature"));
    assert_eq!(pr["trans"]["tag"], field(&trans, "tag"));
    assert_eq!(pr["trans"]["uri"], field(&trans, "uri"));
    // The shared shipping details show only sealed, in the PR and the PN.
    let shipping = semops_vector("shipping");
    assert_eq!(pr["shipping"]["sealed"], field(&shipping, "sealed"));
    assert_eq!(pr["shipping"]["encapsulated_key"], field(&shipping, "enc"));
    assert!(!pr.to_string().contains("Rue de la Paix"));

    let pn = &decoded["PAYMENT_NOTICE DC to MPP"];
    assert_eq!(pn["notice"]["payment_id"], payment);
    assert_eq!(pn["notice"]["class"], "Macro");
    assert_eq!(pn["notice"]["cpp"], cpp);
    assert_eq!(pn["notice"]["signer"], cpp);
    assert_eq!(
        pn["notice"]["customer_pseudonym"],
        field(&semops_vector("pseudonym"), "pseudonym")
    );
    assert_eq!(pn["notice"]["deadline_ms"], 1_767_225_720_000u64);
    assert_eq!(pn["hop_deadline_ms"], 1_767_225_716_000u64);
    assert_eq!(pn["notice"]["shipping"], pr["shipping"]);

    let decision = &decoded["MERCHANT_DECISION"];
    assert_eq!(decision["decision"], "Approve");
    assert_eq!(decision["signer"], merchant);
    assert_eq!(decision["validity"]["expires_at_ms"], 1_767_225_900_000u64);
    let relay = &decoded["DECISION_RELAY"];
    assert_eq!(relay["authority"]["decision"], *decision);
    assert_eq!(relay["payout_account"], "shop:bob");

    let confirmation = &decoded["CONFIRMATION"];
    assert_eq!(confirmation["outcome"], "Transferred");
    assert_eq!(confirmation["reject_reason"], Value::Null);
    assert_eq!(confirmation["amount"], "12.50 EUR");

    let refund = &decoded["REFUND_REQUEST"];
    assert_eq!(refund["amount"], "5.00 EUR");
    assert_eq!(
        refund["idempotency_key"],
        field(&semops_vector("refund key"), "key")
    );
    assert_eq!(decoded["REFUND_RELAY"]["refund"], *refund);
    assert_eq!(decoded["REFUND_RELAY"]["transfer_reference"], "posting:12");

    let statement = &decoded["MICRO_SETTLEMENT"];
    assert_eq!(statement["run"], 7);
    assert_eq!(statement["total"], "0.30 EUR");
    assert_eq!(statement["adds_up"], true);
    assert_eq!(statement["payments"].as_array().map(Vec::len), Some(2));

    let ack = &decoded["INBOX_ACK of the PAYMENT_NOTICE"];
    assert_eq!(ack["outcome"], "applied");
    assert_eq!(ack["frame_hash"].as_str().map(str::len), Some(64));
}

#[test]
fn a_trans_uri_decodes_and_a_bent_one_is_refused() {
    let trans = semops_vector("TRANS");
    let uri = field(&trans, "uri");
    let out = mpay(&["wire", "decode", uri], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["amount"], "12.50 EUR");
    assert_eq!(json["signature"], field(&trans, "signature"));
    assert_eq!(json["uri"], uri);
    for bent in [
        uri.replace("v=1", "v=2"),
        format!("{uri}&v=1"),
        format!("{uri}="),
        uri.replace("mpay:trans?", "mpay:pay?"),
        uri[..uri.len() - 3].to_owned(),
    ] {
        let out = mpay(&["wire", "decode", &bent], None);
        assert_eq!(out.code, 2, "{bent}: {}", out.stdout);
        assert!(out.stderr.starts_with("refused: "), "{}", out.stderr);
    }
}

#[test]
fn a_bit_flipped_semops_frame_or_payload_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    semops_key_files(dir.path());
    let v = semops_vector("DECISION_RELAY");
    let frame = field(&v, "frame");
    let len = frame.len() / 2;
    // Header (kind), enc, ciphertext, and the last byte (the AEAD tag).
    for byte in [3, 70, 120, len - 1] {
        let out = open(dir.path(), &v, &flip(frame, byte));
        assert_eq!(out.code, 2, "byte {byte}: {}", out.stdout);
        assert!(out.stderr.starts_with("refused: "), "{}", out.stderr);
    }
    // A payload cut short, or of another kind, does not decode.
    let payload = field(&v, "payload");
    for (kind, bytes) in [
        ("0x0406", &payload[..payload.len() - 2]),
        ("0x0404", payload),
    ] {
        let out = mpay(&["wire", "decode", "--kind", kind, bytes], None);
        assert_eq!(out.code, 2, "{kind}: {}", out.stdout);
        assert!(out.stderr.starts_with("refused: "), "{}", out.stderr);
    }
}
