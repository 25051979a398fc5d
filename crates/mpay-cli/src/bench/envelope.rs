//! `mpay bench envelope`: what the envelope costs over its primitives.
//!
//! Envelope: `seal` (Ed25519 sign, then HPKE base-mode seal: ephemeral
//! X25519 key, DH, HKDF, ChaCha20-Poly1305) and `open` + `verify` (HPKE open:
//! DH, HKDF, AEAD; Ed25519 verify; header checks; replay guard).
//! Primitives, in the same run over the same bytes: one Ed25519 sign, one
//! verify, two X25519 Diffie-Hellman operations (sender's and receiver's),
//! and a ChaCha20-Poly1305 seal and open. `ratio` = primitives / envelope:
//! 1.0 would mean the envelope adds nothing.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use ed25519_dalek::{Signer, Verifier};
use mpay_envelope::{ENVELOPE_VERSION, Header, MessageKind, ReplayGuard};
use mpay_identity::{
    Certificate, CertificateBody, PartyId, Role, SecretKeys, Suite, Timestamp, TrustStore,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

use super::{median, micros};

const NOW: Timestamp = Timestamp(1_767_225_600_000);

pub fn run(rounds: usize, iterations: usize, payload_bytes: usize) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        rounds > 0 && iterations > 0,
        "rounds and iterations must be positive"
    );
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let office_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let office_id = PartyId::from_u64(1);
    let issue = |subject: PartyId, role: Role, keys: &SecretKeys| {
        Certificate::issue(
            CertificateBody {
                subject,
                role,
                keys: keys.public(),
                limits: None,
                issued_at: Timestamp(0),
                expires_at: Timestamp(u64::MAX),
                issuer: office_id,
            },
            &office_keys,
        )
    };
    let office = issue(office_id, Role::MoneyOffice, &office_keys);
    let alice_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let bob_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
    let alice = issue(PartyId::from_u64(2), Role::Wallet, &alice_keys);
    let bob = issue(PartyId::from_u64(3), Role::Wallet, &bob_keys);
    let mut trust = TrustStore::new();
    trust.add_issuer(office);
    let mut payload = vec![0u8; payload_bytes];
    rng.fill_bytes(&mut payload);

    // Primitive keys.
    let mut seed = [0u8; 32];
    rng.fill_bytes(&mut seed);
    let ed = ed25519_dalek::SigningKey::from_bytes(&seed);
    let ed_public = ed.verifying_key();
    rng.fill_bytes(&mut seed);
    let x_sender = x25519_dalek::StaticSecret::from(seed);
    rng.fill_bytes(&mut seed);
    let x_receiver = x25519_dalek::StaticSecret::from(seed);
    let x_receiver_public = x25519_dalek::PublicKey::from(&x_receiver);
    let x_sender_public = x25519_dalek::PublicKey::from(&x_sender);
    let aead = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    let nonce = [0u8; 12];
    let aad = [0u8; 68];

    let mut envelope_round = Vec::with_capacity(rounds);
    let mut primitive_round = Vec::with_capacity(rounds);
    let mut nonce_counter = 0u64;
    for _ in 0..rounds {
        // Envelope: seal, open, verify.
        let mut replay = ReplayGuard::new();
        let started = Instant::now();
        for _ in 0..iterations {
            nonce_counter += 1;
            let header = Header {
                version: ENVELOPE_VERSION,
                suite: Suite::Ed25519X25519,
                kind: MessageKind(0x0103),
                sender: alice.subject(),
                receiver: bob.subject(),
                tx_id: [1; 16],
                nonce: nonce_counter,
                sent_at: NOW,
            };
            let frame = mpay_envelope::seal(&alice_keys, &header, &payload, bob.keys(), &mut rng)?;
            let verified = mpay_envelope::open(&frame, &bob_keys, bob.subject(), &trust, NOW)?
                .verify(&alice, &trust, &mut replay, NOW)?;
            black_box(verified);
        }
        envelope_round.push(started.elapsed() / u32::try_from(iterations).unwrap_or(1));

        // Primitives over the same bytes.
        let mut signed = Vec::with_capacity(aad.len() + payload.len());
        signed.extend_from_slice(&aad);
        signed.extend_from_slice(&payload);
        let started = Instant::now();
        for _ in 0..iterations {
            let sig = ed.sign(black_box(&signed));
            let sender_shared = x_sender.diffie_hellman(black_box(&x_receiver_public));
            let receiver_shared = x_receiver.diffie_hellman(black_box(&x_sender_public));
            let mut plaintext = payload.clone();
            plaintext.extend_from_slice(&sig.to_bytes());
            let ct = aead
                .encrypt(
                    &nonce.into(),
                    Payload {
                        msg: &plaintext,
                        aad: &aad,
                    },
                )
                .map_err(|_| anyhow::anyhow!("aead seal failed"))?;
            let pt = aead
                .decrypt(
                    &nonce.into(),
                    Payload {
                        msg: &ct,
                        aad: &aad,
                    },
                )
                .map_err(|_| anyhow::anyhow!("aead open failed"))?;
            ed_public.verify(&signed, &sig)?;
            black_box((
                sender_shared.as_bytes()[0],
                receiver_shared.as_bytes()[0],
                pt,
            ));
        }
        primitive_round.push(started.elapsed() / u32::try_from(iterations).unwrap_or(1));
    }
    let envelope: Duration = median(&envelope_round);
    let primitives: Duration = median(&primitive_round);
    let ratio = primitives.as_secs_f64() / envelope.as_secs_f64();
    println!("payload_bytes={payload_bytes} rounds={rounds} iterations={iterations}");
    println!(
        "envelope: seal+open+verify median {:.1} us ({:.0} seal+open pairs/s)",
        micros(envelope),
        1.0 / envelope.as_secs_f64()
    );
    println!(
        "primitives: sign+verify+2xX25519+AEAD seal/open median {:.1} us",
        micros(primitives)
    );
    println!(
        "envelope_us={:.1} primitives_us={:.1} ratio={ratio:.3}",
        micros(envelope),
        micros(primitives)
    );
    Ok(ExitCode::SUCCESS)
}
