//! Each service's `/openapi.json` is a whole contract: every route its
//! router serves is in it (a new route without a contract fails here),
//! every operation answers the error shape on its 4xx and 5xx, and every
//! `$ref` resolves. The running services are checked against their
//! documents by `interop/test_contracts.py`.

use mpay_http::openapi::problems;

fn check(name: &str, doc: &serde_json::Value, source: &str) {
    let found = problems(doc, source);
    assert!(
        found.is_empty(),
        "{name}'s /openapi.json:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_cpp_document_covers_every_route() {
    check(
        "the CPP",
        &mpay_network::cpp::openapi_document(),
        include_str!("../src/cpp.rs"),
    );
}

#[test]
fn the_mpp_document_covers_every_route() {
    check(
        "the MPP",
        &mpay_network::mpp::openapi_document(),
        include_str!("../src/mpp.rs"),
    );
}

#[test]
fn the_dc_document_covers_every_route() {
    check(
        "the DC",
        &mpay_network::dc::openapi_document(),
        include_str!("../src/dc.rs"),
    );
}

#[test]
fn amounts_have_their_pattern() {
    let doc = mpay_network::cpp::openapi_document();
    assert_eq!(
        doc["components"]["schemas"]["PaymentStatus"]["properties"]["amount"]["$ref"],
        "#/components/schemas/Amount"
    );
    assert_eq!(
        doc["components"]["schemas"]["Amount"]["pattern"],
        mpay_http::openapi::AMOUNT_PATTERN
    );
}
