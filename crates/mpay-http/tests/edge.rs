//! The shared edge on its own: a small router finished by `harden`, served
//! on loopback, answers every kind of bad request with the documented JSON,
//! and a panicking handler with a JSON 500 instead of a dropped connection.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use mpay_http::testing::{Case, Routes, bad_requests, is_error_shape, probe};
use mpay_http::{Body, Json, Path, Problem, Query, harden};
use reqwest::Method;
use serde::Deserialize;
use tokio::net::TcpListener;

const BODY_LEN_MAX: usize = 4 * 1024;
const TOKEN: &str = "edge-token";

#[derive(Deserialize)]
struct Item {
    name: String,
    count: u32,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    limit: Option<u32>,
}

fn authorised(headers: &axum::http::HeaderMap) -> Result<(), Problem> {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(v) if v == format!("Bearer {TOKEN}") => Ok(()),
        _ => Err(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a token is required",
        )),
    }
}

async fn create(
    headers: axum::http::HeaderMap,
    item: Result<Json<Item>, Problem>,
) -> Result<Json<serde_json::Value>, Problem> {
    authorised(&headers)?;
    let Json(item) = item?;
    Ok(Json(
        serde_json::json!({ "name": item.name, "count": item.count }),
    ))
}

async fn list(
    headers: axum::http::HeaderMap,
    Query(page): Query<Page>,
) -> Result<Json<serde_json::Value>, Problem> {
    authorised(&headers)?;
    Ok(Json(serde_json::json!({ "limit": page.limit })))
}

async fn one(Path(id): Path<u64>) -> Json<u64> {
    Json(id)
}

async fn frame(Body(bytes): Body) -> Result<Json<usize>, Problem> {
    if bytes.first() != Some(&0x42) {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "refused",
            "not a frame",
        ));
    }
    Ok(Json(bytes.len()))
}

async fn boom() -> &'static str {
    panic!("a bug in a handler")
}

async fn serve() -> String {
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route("/items", post(create))
        .route("/list", get(list))
        .route("/items/{id}", get(one))
        .route("/frames", post(frame))
        .route("/boom", get(boom));
    let app = harden(app, BODY_LEN_MAX);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base
}

#[tokio::test]
async fn every_bad_request_gets_a_documented_json_4xx() {
    let base = serve().await;
    let routes = Routes {
        json_post: Some("/items".into()),
        json_headers: vec![("authorization".into(), format!("Bearer {TOKEN}"))],
        frame_post: Some("/frames".into()),
        guarded_get: "/list".into(),
        path_get: Some("/items/{}".into()),
        path_headers: Vec::new(),
        body_len_max: BODY_LEN_MAX,
    };
    let mut cases = bad_requests(&routes);
    cases.extend([
        Case::new("count past u32", Method::POST, "/items")
            .token(TOKEN)
            .json("{\"name\": \"a\", \"count\": 4294967296}")
            .expect(422),
        Case::new("limit not a number", Method::GET, "/list?limit=x")
            .token(TOKEN)
            .expect(400),
        Case::new("id not a number", Method::GET, "/items/x").expect(400),
    ]);
    let failures = probe(&base, &cases).await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // And a good request still works.
    let answer = mpay_http::testing::client()
        .post(format!("{base}/items"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({ "name": "a", "count": 2 }))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn a_panicking_handler_answers_json_500() {
    let base = serve().await;
    let answer = mpay_http::testing::client()
        .get(format!("{base}/boom"))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(answer.status(), 500);
    let body = answer.bytes().await.expect("body");
    assert!(is_error_shape(&body), "{body:?}");
    // The server still serves.
    let answer = mpay_http::testing::client()
        .get(format!("{base}/health"))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
}

#[test]
fn repeated_frames_are_caught() {
    use mpay_http::testing::repeated_frame;
    let twice = br#"{"error": "invalid", "message": "invalid request: invalid request: account ids are short"}"#;
    assert!(repeated_frame(twice).is_some());
    let once = br#"{"error": "invalid", "message": "invalid request: account: too long"}"#;
    assert!(repeated_frame(once).is_none());
}
