//! The bank's `/openapi.json` is a whole contract: every route its router
//! serves is in it, every operation answers the error shape on its 4xx and
//! 5xx, and every `$ref` resolves.

#[test]
fn the_bank_document_covers_every_route() {
    let found = mpay_http::openapi::problems(
        &mpay_bank::http::openapi_document(),
        include_str!("../src/http.rs"),
    );
    assert!(
        found.is_empty(),
        "the bank's /openapi.json:\n{}",
        found.join("\n")
    );
}
