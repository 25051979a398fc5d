//! What every service's `/openapi.json` shares. Each service derives its
//! document from its request and answer types (`utoipa`'s `ToSchema`,
//! `IntoParams` and `#[utoipa::path]` on the handlers); [`finish`] then adds
//! what is the same everywhere: the error shape ([`ApiError`]) on every 4xx
//! and 5xx of every operation, and the bearer-token schemes.
//!
//! Schemas for the text forms the services share: [`AmountText`] (an amount
//! such as `"12.50 EUR"`, with its pattern), [`HexText`], [`Frame`] (a
//! sealed frame, `application/octet-stream`) and [`MetricsText`].

use serde_json::{Map, Value, json};

/// What a service declares its document with (re-exported so each service
/// uses the same version).
pub use utoipa;

pub use mpay_api::schema::*;
use utoipa::{PartialSchema, ToSchema};

use crate::ApiError;

/// A bearer-token scheme: its name in `security` and who holds it.
#[derive(Debug, Clone, Copy)]
pub struct Bearer {
    /// The scheme's name (`operator`, `merchant`, …).
    pub name: &'static str,
    /// Who holds such a token, for people.
    pub holder: &'static str,
}

/// The finished document: `doc` (derived from a service's types) with the
/// error shape as the `4XX` and `5XX` answer of every operation that does
/// not name that status itself, the [`ApiError`] schema, and `schemes`.
pub fn finish(doc: utoipa::openapi::OpenApi, schemes: &[Bearer]) -> Value {
    finish_json(
        serde_json::to_value(doc).unwrap_or_else(|_| json!({})),
        schemes,
    )
}

/// [`finish`] for a document already in JSON; also adds the `Amount`
/// schema ([`AmountText`]) for its `$ref`s.
pub fn finish_json(mut doc: Value, schemes: &[Bearer]) -> Value {
    let error = json!({ "$ref": "#/components/responses/Error" });
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                let responses = operation
                    .entry("responses")
                    .or_insert_with(|| json!({}))
                    .as_object_mut();
                if let Some(responses) = responses {
                    for range in ["4XX", "5XX"] {
                        responses.entry(range).or_insert_with(|| error.clone());
                    }
                }
            }
        }
    }
    let components = doc
        .as_object_mut()
        .map(|d| d.entry("components").or_insert_with(|| json!({})));
    if let Some(Value::Object(components)) = components {
        let schemas = components.entry("schemas").or_insert_with(|| json!({}));
        if let Value::Object(schemas) = schemas {
            schemas.insert(
                ApiError::name().into_owned(),
                serde_json::to_value(ApiError::schema()).unwrap_or_default(),
            );
            schemas
                .entry(AmountText::name().into_owned())
                .or_insert_with(|| serde_json::to_value(AmountText::schema()).unwrap_or_default());
        }
        let responses = components.entry("responses").or_insert_with(|| json!({}));
        if let Value::Object(responses) = responses {
            responses.insert(
                "Error".into(),
                json!({
                    "description": "refused or failed: the error shape",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }),
            );
        }
        if !schemes.is_empty() {
            let mut security = Map::new();
            for scheme in schemes {
                security.insert(
                    scheme.name.into(),
                    json!({ "type": "http", "scheme": "bearer", "description": scheme.holder }),
                );
            }
            components.insert("securitySchemes".into(), Value::Object(security));
        }
    }
    doc
}

/// The `(method, path)` pairs a document describes, sorted (`method` lower
/// case, `path` as axum writes it, `{name}` for a parameter).
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        for method in item.as_object().into_iter().flat_map(|m| m.keys()) {
            if ["get", "post", "put", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                out.push((method.clone(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

/// The `(method, path)` pairs a router's source declares with
/// `.route("/path", get(h).post(h))`, sorted. axum's `Router` does not list
/// its routes, so a service's test reads the function that builds it
/// (`include_str!` of its source) and compares with [`operations`]: a new
/// route without a contract fails that test.
pub fn declared_routes(source: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in source.split(".route(").skip(1) {
        // rustfmt may put the path on the next line.
        let Some(piece) = piece.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some((path, rest)) = piece.split_once('"') else {
            continue;
        };
        // The method router: up to the `)` that closes `.route(`.
        let mut depth = 1usize;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let methods = &rest[..end];
        for method in ["get", "post", "put", "delete", "patch"] {
            let called = methods.match_indices(&format!("{method}(")).any(|(i, _)| {
                i == 0 || !methods[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                out.push((method.to_owned(), path.to_owned()));
            }
        }
    }
    out.sort();
    out
}

/// What is wrong with a service's finished document `doc`, given the
/// source of the function that builds its router: a route the router
/// declares that the document lacks (or the reverse), an operation without
/// the error shape on its 4xx and 5xx, a `$ref` that points nowhere, a
/// document that does not read as OpenAPI. One line per problem.
pub fn problems(doc: &Value, router_source: &str) -> Vec<String> {
    let mut out = Vec::new();
    // The full check against the OpenAPI 3.1 schema is
    // openapi-spec-validator's, on the served documents
    // (interop/test_contracts.py); here, what makes it a document at all.
    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1."))
    {
        out.push(format!(
            "not an OpenAPI 3.1 document: openapi = {}",
            doc["openapi"]
        ));
    }
    for field in ["title", "version"] {
        if !doc["info"][field].is_string() {
            out.push(format!("info.{field} missing"));
        }
    }
    let documented = operations(doc);
    let declared = declared_routes(router_source);
    for route in declared.iter().filter(|r| !documented.contains(r)) {
        out.push(format!(
            "{} {}: served, not in the document",
            route.0, route.1
        ));
    }
    for route in documented.iter().filter(|r| !declared.contains(r)) {
        out.push(format!(
            "{} {}: in the document, not served",
            route.0, route.1
        ));
    }
    for (method, path) in &documented {
        let responses = &doc["paths"][path][method]["responses"];
        for range in ["4XX", "5XX"] {
            if responses[range]["$ref"] != "#/components/responses/Error" {
                out.push(format!("{method} {path}: {range} is not the error shape"));
            }
        }
        if !responses
            .as_object()
            .is_some_and(|r| r.keys().any(|k| k.starts_with('2')))
        {
            out.push(format!("{method} {path}: no success answer"));
        }
    }
    dangling_refs(doc, doc, &mut out);
    out
}

fn dangling_refs(doc: &Value, at: &Value, out: &mut Vec<String>) {
    match at {
        Value::Object(fields) => {
            if let Some(Value::String(target)) = fields.get("$ref")
                && doc.pointer(target.trim_start_matches('#')).is_none()
            {
                out.push(format!("dangling {target}"));
            }
            fields.values().for_each(|v| dangling_refs(doc, v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| dangling_refs(doc, v, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_routes_reads_methods_and_paths() {
        let source = r#"Router::new()
            .route("/health", get(crate::api::health))
            .route("/v1/holds/{id}", get(hold).post(post_hold))
            .route("/v1/inbox", post(inbox))
            .route(
                "/v1/standing",
                post(standing::set).get(standing::show).delete(standing::withdraw),
            )"#;
        assert_eq!(
            declared_routes(source),
            vec![
                ("delete".to_owned(), "/v1/standing".to_owned()),
                ("get".to_owned(), "/health".to_owned()),
                ("get".to_owned(), "/v1/holds/{id}".to_owned()),
                ("get".to_owned(), "/v1/standing".to_owned()),
                ("post".to_owned(), "/v1/holds/{id}".to_owned()),
                ("post".to_owned(), "/v1/inbox".to_owned()),
                ("post".to_owned(), "/v1/standing".to_owned()),
            ]
        );
    }

    #[test]
    fn finish_puts_the_error_shape_on_every_operation() {
        let doc: utoipa::openapi::OpenApi = serde_json::from_value(json!({
            "openapi": "3.1.0",
            "info": { "title": "t", "version": "1" },
            "paths": { "/a": { "get": { "responses": { "200": { "description": "OK" } } } } }
        }))
        .unwrap();
        let doc = finish(
            doc,
            &[Bearer {
                name: "operator",
                holder: "the operator",
            }],
        );
        let responses = &doc["paths"]["/a"]["get"]["responses"];
        assert_eq!(responses["4XX"]["$ref"], "#/components/responses/Error");
        assert_eq!(responses["5XX"]["$ref"], "#/components/responses/Error");
        assert_eq!(
            doc["components"]["schemas"]["Error"]["required"],
            json!(["error", "message"])
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["operator"]["scheme"],
            "bearer"
        );
        assert_eq!(operations(&doc), vec![("get".to_owned(), "/a".to_owned())]);
    }
}
