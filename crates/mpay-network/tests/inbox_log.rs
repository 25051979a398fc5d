//! A service says, at debug level, why it refused a frame at `/v1/inbox`
//! (issue 14): the operator of a sender whose deliveries keep failing can
//! find out why from the receiver's log. Its own binary, because it installs
//! the process's tracing subscriber.

#![allow(clippy::inconsistent_digit_grouping)]

#[allow(dead_code)]
#[path = "network/harness.rs"]
mod harness;

use std::sync::Mutex;

use harness::Network;
use mpay_identity::PartyId;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
}

struct Raw<'a>(&'a [u8]);

impl mpay_wire::Encode for Raw<'_> {
    fn encode(&self, w: &mut mpay_wire::Writer) {
        w.raw(self.0);
    }
}

/// `payload` of `kind` sealed by dc-eu to mpp1, as dc-eu's outbox would.
fn from_dc(net: &Network, kind: mpay_envelope::MessageKind, payload: &[u8]) -> Vec<u8> {
    let service = |name: &str| net.directory.service(name).expect("in the directory");
    let to = service("mpp1");
    mpay_semops::seal_payload(
        kind,
        &Raw(payload),
        &net.keys["dc-eu"],
        PartyId::from_hex(&service("dc-eu").id).expect("id"),
        PartyId::from_hex(&to.id).expect("id"),
        &to.parse_certificate().expect("certificate").body.keys,
        [9; 16],
        mpay_network::wall_clock(),
        &mut ChaCha20Rng::seed_from_u64(3),
    )
    .expect("seals")
}

#[tokio::test]
async fn an_inbox_refusal_is_logged_at_debug_with_its_reason() {
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(|| Capture)
            .finish(),
    )
    .expect("the only subscriber of this binary");
    let db = mpay_sql::testing::sqlite().await.expect("SQLite");
    let net = Network::start(db.db().clone(), 10_000).await;

    // A frame whose seal was broken on the way: refused by the envelope.
    let mut broken = from_dc(&net, mpay_semops::kind::PAYMENT_NOTICE, b"");
    let last = broken.len() - 1;
    broken[last] ^= 1;
    let refused = net
        .bob
        .client
        .post_inbox(broken)
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Some("refused"));
    // A well-sealed frame of a kind an MPP does not take: refused after it
    // opened.
    let wrong_kind = from_dc(&net, mpay_semops::kind::REFUND_RELAY, b"");
    let refused = net
        .bob
        .client
        .post_inbox(wrong_kind)
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), Some("refused"));

    let log = log_text();
    let refusals: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("DEBUG") && l.contains("inbox frame refused"))
        .collect();
    assert_eq!(refusals.len(), 2, "two refusals logged:\n{log}");
    assert!(
        refusals[0].contains("kind=0x0402") && refusals[0].contains("seal"),
        "{}",
        refusals[0]
    );
    assert!(
        refusals[1].contains("kind=0x0407") && refusals[1].contains("does not take kind"),
        "{}",
        refusals[1]
    );
    net.shutdown().await;
    db.cleanup().await;
}
