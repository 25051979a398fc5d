//! Every bad request to the CPP, the MPP and the DC, over real HTTP on
//! loopback, gets a 4xx whose body is the documented `{"error", "message"}`
//! JSON: unknown routes, wrong methods, oversized bodies, wrong content
//! types, malformed JSON, bad path and query parameters, missing tokens,
//! huge numbers and non-UTF-8 bytes. No input produces a 5xx, and none
//! moves money.

use mpay_http::testing::{Case, Routes, bad_requests, probe_with};
use mpay_identity::hex_string;
use mpay_network::api::REQUEST_BODY_LEN_MAX;
use mpay_sql::testing::for_each_backend;
use mpay_wire::Encode;
use reqwest::Method;

use crate::harness::{Network, OPERATOR_TOKEN, Transport};

fn bearer(token: &str) -> Vec<(String, String)> {
    vec![("authorization".into(), format!("Bearer {token}"))]
}

fn post(name: &str, path: &str, token: &str, body: &str) -> Case {
    Case::new(name, Method::POST, path)
        .token(token)
        .json(body.to_owned())
}

fn get(name: &str, path: &str, token: &str) -> Case {
    Case::new(name, Method::GET, path).token(token)
}

const ENROL: &str = "{\"name\": \"NAME\", \"bank\": \"bank1\", \"account\": \"cust:x\", \"pin\": \"1234\", \"device_keys\": \"00\"}";

fn cpp_cases(keys: &str) -> Vec<Case> {
    let enrol = |name: &str, field: &str, value: &str| {
        let body = ENROL.replace(
            &format!("\"{field}\": \""),
            &format!("\"{field}\": \"{value}"),
        );
        post(name, "/v1/customers", OPERATOR_TOKEN, &body)
    };
    vec![
        enrol("enrol with a NUL in the name", "name", "a\\u0000"),
        enrol("enrol with an overlong name", "name", &"n".repeat(10_000)),
        enrol("enrol at an unknown bank", "bank", "x\\u0000"),
        enrol("enrol with a malformed account", "account", "\\u0000"),
        enrol("enrol with a huge PIN", "pin", &"9".repeat(10_000)),
        enrol("enrol with non-hex keys", "device_keys", "zz"),
        post("enrol with a NUL in the name and good keys", "/v1/customers", OPERATOR_TOKEN,
            &format!("{{\"name\": \"a\\u0000b\", \"bank\": \"bank1\", \"account\": \"cust:x\", \"pin\": \"1234\", \"device_keys\": \"{keys}\"}}"))
            .expect(400),
        post("enrol with a control character in the name and good keys", "/v1/customers", OPERATOR_TOKEN,
            &format!("{{\"name\": \"a\\nb\", \"bank\": \"bank1\", \"account\": \"cust:x\", \"pin\": \"1234\", \"device_keys\": \"{keys}\"}}"))
            .expect(400),
        post("enrol without fields", "/v1/customers", OPERATOR_TOKEN, "{}").expect(422),
        Case::new("enrol without a token", Method::POST, "/v1/customers")
            .json(ENROL.replace("NAME", "eve"))
            .expect(401),
        post("unlock a NUL name", "/v1/customers/a%00b/unlock", OPERATOR_TOKEN, "{}"),
        post("unlock a non-UTF-8 name", "/v1/customers/%FF/unlock", OPERATOR_TOKEN, "{}").expect(400),
        post("unlock an unknown customer", "/v1/customers/nobody/unlock", OPERATOR_TOKEN, "{}").expect(404),
        Case::new("unlock without a token", Method::POST, "/v1/customers/alice/unlock").expect(401),
        Case::new("payment status, wait not a number", Method::GET,
            "/v1/payments/00000000000000000000000000000000?wait_ms=abc").expect(400),
        Case::new("payment status, wait past u64", Method::GET,
            "/v1/payments/00000000000000000000000000000000?wait_ms=99999999999999999999999").expect(400),
        Case::new("payment status, unknown payment", Method::GET,
            "/v1/payments/00000000000000000000000000000000").expect(404),
        get("admin payments, limit not a number", "/v1/admin/payments?limit=abc", OPERATOR_TOKEN).expect(400),
        get("admin payments, after past i64", "/v1/admin/payments?after=9223372036854775808", OPERATOR_TOKEN)
            .expect(400),
        get("admin payments, negative limit", "/v1/admin/payments?limit=-1", OPERATOR_TOKEN).expect(400),
        Case::new("recluster without a token", Method::POST, "/v1/admin/micro/recluster").expect(401),
        Case::new("work without a token", Method::GET, "/v1/admin/work").expect(401),
        get("work with a customer's device key as token", "/v1/admin/work", keys).expect(401),
        Case::new("garbage on the inbox", Method::POST, "/v1/inbox").body(vec![0x01; 64]),
        Case::new("oversized inbox frame", Method::POST, "/v1/inbox")
            .body(vec![0; REQUEST_BODY_LEN_MAX + 1])
            .expect(413),
    ]
}

fn mpp_cases(merchant: &str, keys: &str) -> Vec<Case> {
    let signed = |name: &str, path: &str, value: &str| {
        post(
            name,
            path,
            merchant,
            &format!("{{\"signed\": \"{value}\"}}"),
        )
    };
    vec![
        signed("decision that is not hex", "/v1/decisions", "zz"),
        signed("decision of garbage", "/v1/decisions", &"ff".repeat(300)),
        signed("decision with a NUL", "/v1/decisions", "\\u0000"),
        signed("refund that is not hex", "/v1/refunds", "zz"),
        signed("refund of garbage", "/v1/refunds", &"00".repeat(300)),
        post("decision without fields", "/v1/decisions", merchant, "{}").expect(422),
        post("refund with a huge number", "/v1/refunds", merchant, "{\"signed\": 1e999}"),
        Case::new("decision without a token", Method::POST, "/v1/decisions")
            .json("{\"signed\": \"00\"}")
            .expect(401),
        Case::new("refund with the operator's token", Method::POST, "/v1/refunds")
            .token(OPERATOR_TOKEN)
            .json("{\"signed\": \"00\"}"),
        post("enrol a merchant with a NUL name", "/v1/merchants", OPERATOR_TOKEN,
            "{\"name\": \"a\\u0000\", \"bank\": \"bank2\", \"account\": \"shop:x\", \"keys\": \"00\"}"),
        post("enrol a merchant with a NUL name and good keys", "/v1/merchants", OPERATOR_TOKEN,
            &format!("{{\"name\": \"a\\u0000\", \"bank\": \"bank2\", \"account\": \"shop:x\", \"keys\": \"{keys}\"}}"))
            .expect(400),
        post("enrol a merchant at an unknown bank", "/v1/merchants", OPERATOR_TOKEN,
            "{\"name\": \"x\", \"bank\": \"nobank\", \"account\": \"shop:x\", \"keys\": \"00\"}"),
        get("notices, wait not a number", "/v1/notices?wait_ms=abc", merchant).expect(400),
        get("notices, wait past u64", "/v1/notices?wait_ms=184467440737095516160", merchant).expect(400),
        get("payment, wait not a number", "/v1/payments/00000000000000000000000000000000?wait_ms=x", merchant)
            .expect(400),
        get("payment, id not hex", "/v1/payments/%FF%FE", merchant),
        get("payment, id too long", &format!("/v1/payments/{}", "0".repeat(4_000)), merchant),
        get("payment, unknown", "/v1/payments/00000000000000000000000000000000", merchant).expect(404),
        get("admin payments, limit not a number", "/v1/admin/payments?limit=abc", OPERATOR_TOKEN).expect(400),
        get("admin payments, after past i64", "/v1/admin/payments?after=9223372036854775808", OPERATOR_TOKEN)
            .expect(400),
        Case::new("work without a token", Method::GET, "/v1/admin/work").expect(401),
        get("work with the merchant's token", "/v1/admin/work", merchant).expect(401),
        Case::new("garbage on the inbox", Method::POST, "/v1/inbox").body(vec![0x02; 64]),
    ]
}

fn dc_cases() -> Vec<Case> {
    vec![
        get(
            "routes, bad query",
            "/v1/admin/routes?limit=abc",
            OPERATOR_TOKEN,
        ),
        Case::new("POST on routes", Method::POST, "/v1/admin/routes")
            .token(OPERATOR_TOKEN)
            .json("{}")
            .expect(405),
        Case::new("JSON on the inbox", Method::POST, "/v1/inbox").json("{\"frame\": 1e999}"),
        Case::new("work without a token", Method::GET, "/v1/admin/work").expect(401),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_documented_json_4xx() {
    for_each_backend(|db| async move {
        let network = Network::start(db, 5_000).await;
        let scheme = match network.transport {
            Transport::Tls => "https",
            Transport::Plaintext => "http",
        };
        let base = |name: &str| format!("{scheme}://{}", network.addrs[name]);
        let merchant = network.bob.token.clone();
        let keys = hex_string(&network.device_keys.public().to_wire());

        let cpp = Routes {
            json_post: Some("/v1/customers".into()),
            json_headers: bearer(OPERATOR_TOKEN),
            frame_post: Some("/v1/payments".into()),
            guarded_get: "/v1/admin/payments".into(),
            path_get: Some("/v1/payments/{}".into()),
            path_headers: Vec::new(),
            body_len_max: REQUEST_BODY_LEN_MAX,
        };
        let mpp = Routes {
            json_post: Some("/v1/decisions".into()),
            json_headers: bearer(&merchant),
            frame_post: Some("/v1/inbox".into()),
            guarded_get: "/v1/notices".into(),
            path_get: Some("/v1/merchants/{}".into()),
            path_headers: Vec::new(),
            body_len_max: REQUEST_BODY_LEN_MAX,
        };
        let dc = Routes {
            json_post: None,
            json_headers: Vec::new(),
            frame_post: Some("/v1/inbox".into()),
            guarded_get: "/v1/admin/routes".into(),
            path_get: None,
            path_headers: Vec::new(),
            body_len_max: REQUEST_BODY_LEN_MAX,
        };
        let mut failures = Vec::new();
        for (service, routes, own) in [
            ("cpp1", cpp, cpp_cases(&keys)),
            ("mpp1", mpp, mpp_cases(&merchant, &keys)),
            ("dc-eu", dc, dc_cases()),
        ] {
            let mut cases = bad_requests(&routes);
            cases.extend(own);
            for failure in probe_with(&network.http, &base(service), &cases).await {
                failures.push(format!("{service}: {failure}"));
            }
        }
        assert!(
            failures.is_empty(),
            "{} bad requests were answered wrongly:\n{}",
            failures.len(),
            failures.join("\n")
        );
        // Nothing moved, and nothing is moving: every service says so.
        for service in ["cpp1", "mpp1", "dc-eu"] {
            let work: mpay_network::client::Work = network
                .http
                .get(format!("{}/v1/admin/work", base(service)))
                .bearer_auth(OPERATOR_TOKEN)
                .send()
                .await
                .expect("work")
                .json()
                .await
                .expect("work JSON");
            assert_eq!(work, mpay_network::client::Work::default(), "{service}");
        }
        network.check_conservation().await;
        assert_eq!(
            network.balance(0, "cust:alice").await,
            crate::harness::ALICE_DEPOSIT
        );
        network.shutdown().await;
    })
    .await;
}
