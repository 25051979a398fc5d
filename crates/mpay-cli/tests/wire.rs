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
