//! The HTTP edge every mpay service shares (the bank, the CPP, the MPP, the
//! DC and the money office): one error shape, `{"error": code, "message":
//! text}`, for every refusal, whoever produces it.
//!
//! - [`ApiError`] is the shape on the wire, for servers and clients.
//! - [`Problem`] is a refusal made at the edge, before a service's own
//!   logic runs: each of axum's rejections maps to one typed
//!   [`Problem`] (`From<JsonRejection>`, `From<QueryRejection>`,
//!   `From<PathRejection>`, `From<BytesRejection>`).
//! - [`Json`], [`Query`], [`Path`] and [`Body`] are axum's extractors with
//!   that rejection, so a handler that uses them never answers plain text.
//! - [`harden`] finishes a service's router: JSON 404 for unknown routes,
//!   JSON 405 for a wrong method, the body limit, a JSON 500 instead of a
//!   dropped connection if a handler panics, and a last net that rewrites
//!   any other error answer that is not JSON (a framework default) into the
//!   shape.
//!
//! A service maps its own typed errors to an [`ApiError`] itself; this crate
//! has no SQL and no service logic, so the clients of the bank and the
//! office can depend on it too.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[cfg(feature = "testing")]
pub mod testing;

pub mod openapi;

/// Longest `message` the edge builds from a rejection's text (serde's
/// messages can quote parts of the input).
pub const MESSAGE_LEN_MAX: usize = 512;

pub use mpay_api::{ApiError, BUSY_RETRY_AFTER_S};

/// An [`ApiError`] as an axum answer.
pub trait ErrorResponse {
    /// The answer: `status` with this error as its JSON body.
    fn into_response_with(self, status: StatusCode) -> Response;
}

impl ErrorResponse for ApiError {
    fn into_response_with(self, status: StatusCode) -> Response {
        (status, axum::Json(self)).into_response()
    }
}

/// 503 `busy` with `Retry-After: `[`BUSY_RETRY_AFTER_S`]: the service is
/// only busy (its transaction kept losing serialization races, or no
/// database connection came free), nothing was recorded, and the same
/// request may be sent again. Never a 500: that is kept for faults.
pub fn busy_response() -> Response {
    let mut response = ApiError::new(
        "busy",
        "the service is busy; send the same request again after Retry-After seconds",
    )
    .into_response_with(StatusCode::SERVICE_UNAVAILABLE);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_AFTER_S));
    response
}

/// A request refused at the edge, before the service's logic ran: always
/// the caller's fault (4xx), except [`PathRejection::MissingPathParams`],
/// which is a routing bug of the service (500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The status.
    pub status: StatusCode,
    /// The stable code.
    pub code: &'static str,
    /// For people.
    pub message: String,
}

impl Problem {
    /// A problem with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            message: bounded(message.into()),
        }
    }

    /// No route at this path.
    pub fn not_found() -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// The route exists, not with this method.
    pub fn method_not_allowed() -> Problem {
        Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not take this method",
        )
    }

    /// The generic problem for an error `status` that carried no JSON body
    /// (a framework default).
    pub fn for_status(status: StatusCode) -> Problem {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthenticated",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::REQUEST_TIMEOUT => "request_timeout",
            StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            StatusCode::URI_TOO_LONG => "uri_too_long",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            s if s.is_server_error() => "internal",
            _ => "refused",
        };
        let message = status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase();
        Problem::new(status, code, message)
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        ApiError::new(self.code, self.message).into_response_with(self.status)
    }
}

impl From<JsonRejection> for Problem {
    fn from(rejection: JsonRejection) -> Problem {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ),
            JsonRejection::JsonSyntaxError(e) => Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not JSON: {}", cause(&e)),
            ),
            JsonRejection::JsonDataError(e) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("the body does not fit the request: {}", cause(&e)),
            ),
            JsonRejection::BytesRejection(e) => Problem::from(e),
            other => Problem::new(other.status(), "invalid_body", other.body_text()),
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(rejection: QueryRejection) -> Problem {
        let text = match &rejection {
            QueryRejection::FailedToDeserializeQueryString(e) => cause(e),
            other => other.body_text(),
        };
        Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("bad query parameters: {text}"),
        )
    }
}

impl From<PathRejection> for Problem {
    fn from(rejection: PathRejection) -> Problem {
        match rejection {
            PathRejection::FailedToDeserializePathParams(e) => Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_path",
                format!("bad path parameter: {}", e.body_text()),
            ),
            other => {
                tracing::error!(rejection = %other.body_text(), "route declared without its path parameters");
                Problem::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the service could not read its own route",
                )
            }
        }
    }
}

impl From<BytesRejection> for Problem {
    fn from(rejection: BytesRejection) -> Problem {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the body is larger than this service reads",
            )
        } else {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                format!(
                    "the body could not be read: {}",
                    match &rejection {
                        BytesRejection::FailedToBufferBody(e) => cause(e),
                        other => other.body_text(),
                    }
                ),
            )
        }
    }
}

/// What went wrong inside a rejection, without axum's own frame (which
/// [`Problem`] replaces with its own).
fn cause(rejection: &dyn std::error::Error) -> String {
    rejection
        .source()
        .map_or_else(|| rejection.to_string(), ToString::to_string)
}

fn bounded(mut message: String) -> String {
    if message.len() > MESSAGE_LEN_MAX {
        message = format!("{}…", mpay_wire::prefix_within(&message, MESSAGE_LEN_MAX));
    }
    message
}

/// A JSON body (extractor) or answer (response); refused as a [`Problem`]:
/// 415 without a JSON content type, 400 if not JSON, 422 if it does not fit
/// `T`, 413 if too large.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let axum::Json(value) = axum::Json::<T>::from_request(req, state).await?;
        Ok(Json(value))
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Query parameters; refused as a 400 [`Problem`] (`invalid_query`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(Query(value))
    }
}

/// Path parameters; refused as a 400 [`Problem`] (`invalid_path`), e.g.
/// for a segment that is not UTF-8 once percent-decoded.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(Path(value))
    }
}

/// The raw body (a sealed frame); refused as a [`Problem`]: 413 if larger
/// than the router's limit, 400 if it cannot be read.
#[derive(Debug, Clone, Default)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        Ok(Body(Bytes::from_request(req, state).await?))
    }
}

/// Finishes a service's router: a JSON 404 for unknown routes, a JSON 405
/// for a known route with another method, `body_len_max` as the limit of
/// every body extractor, a JSON 500 if a handler panics, and, last, any
/// error answer that is not JSON rewritten into the shape (keeping its
/// status and headers).
pub fn harden(router: Router, body_len_max: usize) -> Router {
    router
        .fallback(|| async { Problem::not_found() })
        .method_not_allowed_fallback(|| async { Problem::method_not_allowed() })
        .layer(DefaultBodyLimit::max(body_len_max))
        .layer(middleware::from_fn(catch_panic))
        .layer(middleware::map_response(json_errors))
}

/// Whether `response` already carries a JSON body.
fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn json_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let problem = Problem::for_status(status);
    let (mut parts, _) = response.into_parts();
    let body = serde_json::to_vec(&ApiError::new(problem.code, problem.message))
        .unwrap_or_else(|_| b"{\"error\":\"internal\",\"message\":\"\"}".to_vec());
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn catch_panic(request: Request, next: Next) -> Response {
    match CatchUnwind(Box::pin(next.run(request))).await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %what, "request handler panicked");
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the service could not complete the request; it is logged",
            )
            .into_response()
        }
    }
}

/// A future that turns a panic while polling into an error.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
