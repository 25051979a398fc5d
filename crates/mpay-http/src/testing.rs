//! Sends bad requests to a running service over real HTTP and checks each
//! answer: a 4xx (never a 5xx, never a dropped connection), with
//! `Content-Type: application/json` and a body that is exactly
//! `{"error": string, "message": string}`.
//!
//! Each service's test lists its routes in a [`Routes`]; [`bad_requests`]
//! makes the kinds of bad request every service must survive from them,
//! and a test adds its own cases before calling [`probe`].

use std::fmt::Write as _;

use reqwest::Method;

/// One bad request and the status it must get.
#[derive(Debug, Clone)]
pub struct Case {
    /// What the case is, for the report.
    pub name: String,
    /// The method.
    pub method: Method,
    /// The path and query, percent-encoded as sent.
    pub path: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// The status it must get; `None`: any 4xx.
    pub status: Option<u16>,
}

impl Case {
    /// A case with no headers and no body.
    pub fn new(name: impl Into<String>, method: Method, path: impl Into<String>) -> Case {
        Case {
            name: name.into(),
            method,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            status: None,
        }
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Case {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// With `Authorization: Bearer <token>`.
    pub fn token(self, token: &str) -> Case {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// With a JSON body (and its content type).
    pub fn json(self, body: impl Into<Vec<u8>>) -> Case {
        let mut case = self.header("content-type", "application/json");
        case.body = body.into();
        case
    }

    /// With a body and no content type.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = body.into();
        self
    }

    /// Expecting exactly `status`.
    pub fn expect(mut self, status: u16) -> Case {
        self.status = Some(status);
        self
    }
}

/// A service's routes, as the generic cases need them.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// A `POST` route that takes a JSON body, if the service has one.
    pub json_post: Option<String>,
    /// Headers that get a request to `json_post` past authentication (and
    /// an idempotency key, where one is needed), so the body is read.
    pub json_headers: Vec<(String, String)>,
    /// A route that takes a raw body (a sealed frame), if the service has one.
    pub frame_post: Option<String>,
    /// A `GET` route that needs a token.
    pub guarded_get: String,
    /// A `GET` route with one path parameter, with `{}` in its place.
    pub path_get: Option<String>,
    /// Headers for `path_get` (its token).
    pub path_headers: Vec<(String, String)>,
    /// The service's body limit, bytes.
    pub body_len_max: usize,
}

/// The kinds of bad request every service gets: unknown routes, wrong
/// methods, oversized bodies, wrong content types, malformed JSON, JSON of
/// the wrong shape, huge numbers, non-UTF-8 bytes, bad path parameters, and
/// missing or unknown tokens.
pub fn bad_requests(routes: &Routes) -> Vec<Case> {
    let with = |mut case: Case, headers: &[(String, String)]| {
        case.headers.extend(headers.iter().cloned());
        case
    };
    let too_large = vec![b' '; routes.body_len_max + 1];
    let mut cases = vec![
        Case::new("unknown route", Method::GET, "/v1/no-such-route").expect(404),
        Case::new("unknown route, POST", Method::POST, "/no/such/route")
            .json("{}")
            .expect(404),
        Case::new("unknown route, non-UTF-8 path", Method::GET, "/%FF%FE/%C0").expect(404),
        Case::new("root", Method::GET, "/").expect(404),
        Case::new("wrong method on /health", Method::DELETE, "/health").expect(405),
        Case::new(
            "guarded GET without a token",
            Method::GET,
            &routes.guarded_get,
        )
        .expect(401),
        Case::new(
            "guarded GET with an unknown token",
            Method::GET,
            &routes.guarded_get,
        )
        .token("not-a-token-of-this-service")
        .expect(401),
        Case::new(
            "guarded GET with a malformed Authorization",
            Method::GET,
            &routes.guarded_get,
        )
        .header("authorization", "Basic Zm9vOmJhcg==")
        .expect(401),
        Case::new(
            "guarded GET without a token, bad query",
            Method::GET,
            format!("{}?limit=abc&after=%FF&wait_ms=-1", routes.guarded_get),
        ),
    ];
    if let Some(json_post) = &routes.json_post {
        let post = |name: &str| {
            with(
                Case::new(name, Method::POST, json_post),
                &routes.json_headers,
            )
        };
        cases.extend([
            Case::new("wrong method on a POST route", Method::PUT, json_post).expect(405),
            Case::new("GET on a POST route", Method::GET, json_post).expect(405),
            post("oversized JSON body").json(too_large.clone()).expect(413),
            post("no content type").body("{}").expect(415),
            post("wrong content type").header("content-type", "text/plain").body("{}").expect(415),
            post("form content type")
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=1")
                .expect(415),
            post("malformed JSON").json("{\"a\":").expect(400),
            post("empty JSON body").json("").expect(400),
            post("non-UTF-8 JSON").json(vec![b'{', 0xff, 0xfe, b'}']).expect(400),
            post("JSON of the wrong shape").json("[1, 2, 3]").expect(422),
            post("JSON null").json("null").expect(422),
            post("JSON with wrong field types").json(
                "{\"id\": 1, \"holder\": 2, \"account\": 3, \"amount\": 4, \"owner\": 5, \"deposit\": 6, \
                 \"name\": 7, \"bank\": 8, \"pin\": 9, \"wallet\": 10, \"keys\": 11, \"signed\": 12}",
            ),
            post("huge number where text is due").json(
                "{\"id\": 1e999, \"holder\": 1e999, \"account\": 1e999, \"amount\": 1e999, \
                 \"owner\": 1e999, \"deposit\": 1e999, \"name\": 1e999, \"signed\": 1e999}",
            ),
            post("huge integer where text is due")
                .json("{\"amount\": 123456789012345678901234567890123456789012345678901234567890}"),
            post("deeply nested JSON")
                .json(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000))),
        ]);
    }
    if let Some(frame) = &routes.frame_post {
        cases.extend([
            Case::new("oversized frame", Method::POST, frame)
                .body(too_large)
                .expect(413),
            Case::new("empty frame", Method::POST, frame).body(Vec::new()),
            Case::new("garbage frame", Method::POST, frame).body(vec![0xff; 300]),
            Case::new("JSON instead of a frame", Method::POST, frame).json("{\"a\": 1}"),
            Case::new("wrong method on the frame route", Method::GET, frame).expect(405),
        ]);
    }
    if let Some(path) = &routes.path_get {
        let at = |segment: &str| path.replace("{}", segment);
        for (name, segment) in [
            ("non-UTF-8 path parameter", "%FF%FE"),
            ("overlong path parameter", &"9".repeat(4_000)),
            (
                "huge number path parameter",
                "123456789012345678901234567890",
            ),
            ("negative path parameter", "-1"),
            ("NUL in the path parameter", "a%00b"),
        ] {
            cases.push(with(
                Case::new(name, Method::GET, at(segment)),
                &routes.path_headers,
            ));
        }
    }
    cases
}

/// A bare HTTP client for tests, with rustls's ring provider installed
/// first (reqwest is built without a default provider, and a client built
/// before one is installed panics).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// Sends every case to `base` (`http://host:port`) and returns what went
/// wrong, one line per case (empty if every answer was right).
pub async fn probe(base: &str, cases: &[Case]) -> Vec<String> {
    probe_with(&client(), base, cases).await
}

/// [`probe`] through `client` (one that trusts the service's TLS CA, for a
/// service on `https://`).
pub async fn probe_with(client: &reqwest::Client, base: &str, cases: &[Case]) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let mut request = client.request(case.method.clone(), format!("{base}{}", case.path));
        for (name, value) in &case.headers {
            request = request.header(name, value);
        }
        let answer = match request.body(case.body.clone()).send().await {
            Ok(answer) => answer,
            Err(e) => {
                failures.push(format!("{}: no answer: {e}", case.name));
                continue;
            }
        };
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = answer.bytes().await.unwrap_or_default();
        let mut wrong = String::new();
        match case.status {
            Some(expected) if expected != status => {
                let _ = write!(wrong, " status {status}, not {expected};");
            }
            None if !(400..500).contains(&status) => {
                let _ = write!(wrong, " status {status}, not a 4xx;");
            }
            _ => {}
        }
        if !content_type.starts_with("application/json") {
            let _ = write!(wrong, " content type {content_type:?};");
        }
        if let Some(message) = repeated_frame(&body) {
            let _ = write!(wrong, " message {message:?} repeats its own frame;");
        }
        if !is_error_shape(&body) {
            let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            let _ = write!(wrong, " body {shown:?} is not {{error, message}};");
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{} ({} {}):{wrong}",
                case.name,
                case.method,
                case.path.chars().take(80).collect::<String>()
            ));
        }
    }
    failures
}

/// The error message of `body` if it repeats a frame twice in a row, as
/// `"invalid request: invalid request: …"` does (an error's Display wrapped
/// in a variant with the same words).
pub fn repeated_frame(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let message = value.get("message")?.as_str()?;
    let parts: Vec<&str> = message.split(": ").map(str::trim).collect();
    parts
        .windows(2)
        .any(|w| !w[0].is_empty() && w[0].eq_ignore_ascii_case(w[1]))
        .then(|| message.to_owned())
}

/// Whether `body` is a JSON object with exactly the string fields `error`
/// (non-empty) and `message`.
pub fn is_error_shape(body: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) else {
        return false;
    };
    fields.len() == 2
        && fields
            .get("error")
            .and_then(|v| v.as_str())
            .is_some_and(|code| !code.is_empty())
        && fields.get("message").is_some_and(|v| v.is_string())
}

/// Where `value` disagrees with the schema `components.schemas.<name>` of
/// the OpenAPI 3.0 document `doc`: a wrong type, a `null` where the schema
/// is not `nullable`, a missing `required` field. One line per
/// disagreement, with its JSON path.
pub fn schema_violations(
    doc: &serde_json::Value,
    name: &str,
    value: &serde_json::Value,
) -> Vec<String> {
    let mut out = Vec::new();
    let schema = serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
    check(doc, &schema, value, name, &mut out);
    out
}

fn check(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let pointer = reference.trim_start_matches('#');
        match doc.pointer(pointer) {
            Some(target) => check(doc, target, value, at, out),
            None => out.push(format!("{at}: dangling {reference}")),
        }
        return;
    }
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            out.push(format!("{at}: null, but the schema is not nullable"));
        }
        return;
    }
    let fits = match schema.get("type").and_then(Value::as_str) {
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    };
    if !fits {
        out.push(format!("{at}: {value} is not of type {}", schema["type"]));
        return;
    }
    if let (Some(items), Some(item_schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(doc, item_schema, item, &format!("{at}[{i}]"), out);
        }
    }
    if let Some(fields) = value.as_object() {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !fields.contains_key(required) {
                out.push(format!("{at}.{required}: required, absent"));
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, field) in fields {
            let field_schema = properties
                .and_then(|p| p.get(key))
                .or_else(|| schema.get("additionalProperties").filter(|s| s.is_object()));
            match field_schema {
                Some(s) => check(doc, s, field, &format!("{at}.{key}"), out),
                None if properties.is_some() => {
                    out.push(format!("{at}.{key}: not in the schema"));
                }
                None => {}
            }
        }
    }
}
