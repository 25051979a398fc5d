//! A customer's device and a busy CPP: `CppClient::submit_sealed` sends the
//! PR again, in a fresh envelope, when the CPP answers 503 `busy`, and
//! gives up at once on any other refusal.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use mpay_network::client::{CppClient, SubmitError};
use serde_json::json;

/// A CPP that answers each POST with the next of `answers` and keeps the
/// bodies it was sent.
#[derive(Clone, Default)]
struct Script {
    answers: Arc<Mutex<Vec<(StatusCode, &'static str)>>>,
    bodies: Arc<Mutex<Vec<Vec<u8>>>>,
}

async fn payments(State(script): State<Script>, body: Bytes) -> impl IntoResponse {
    script.bodies.lock().expect("lock").push(body.to_vec());
    let (status, code) = script.answers.lock().expect("lock").remove(0);
    if status.is_success() {
        let paid = json!({
            "payment_id": "00".repeat(16), "state": "pending", "is_final": false,
            "amount": "1.00 EUR", "merchant_reference": "r", "deadline": 1,
            "refunded": "0.00 EUR", "reason": null, "confirmation": null,
        });
        return (status, [(header::RETRY_AFTER, "1")], paid.to_string());
    }
    let error = json!({ "error": code, "message": "scripted" }).to_string();
    (status, [(header::RETRY_AFTER, "1")], error)
}

async fn cpp(answers: Vec<(StatusCode, &'static str)>) -> (CppClient, Script) {
    let script = Script::default();
    *script.answers.lock().expect("lock") = answers;
    let app = Router::new()
        .route("/v1/payments", post(payments))
        .with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = mpay_tls::http_client(None, std::time::Duration::from_secs(10)).expect("client");
    let client = CppClient::with_http(&format!("http://{addr}"), http);
    (client, script)
}

#[tokio::test]
async fn a_busy_cpp_is_sent_the_same_pr_again_in_a_fresh_envelope() {
    let (client, script) = cpp(vec![
        (StatusCode::SERVICE_UNAVAILABLE, "busy"),
        (StatusCode::OK, ""),
    ])
    .await;
    let mut sealed = 0u8;
    let status = client
        .submit_sealed(|| {
            sealed += 1;
            Ok::<_, Infallible>(vec![sealed])
        })
        .await
        .expect("accepted at the second attempt");
    assert_eq!(status.state, "pending");
    assert_eq!(
        *script.bodies.lock().expect("lock"),
        vec![vec![1], vec![2]],
        "each attempt carries a freshly sealed frame"
    );
}

#[tokio::test]
async fn any_other_refusal_is_final_at_once() {
    for (status, code) in [
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        (StatusCode::UNAUTHORIZED, "wrong_pin"),
    ] {
        let (client, script) = cpp(vec![(status, code)]).await;
        let refused = client
            .submit_sealed(|| Ok::<_, Infallible>(vec![0]))
            .await
            .expect_err("refused");
        let SubmitError::Client(error) = refused;
        assert_eq!(error.code(), Some(code));
        assert!(!error.is_busy());
        assert_eq!(
            script.bodies.lock().expect("lock").len(),
            1,
            "{code}: sent once"
        );
    }
}
