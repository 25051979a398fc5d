//! The OpenAPI schemas of the text forms every service's API shares:
//! [`AmountText`] (an amount such as `"12.50 EUR"`, with its pattern),
//! [`HexText`], [`Frame`] (a sealed frame, `application/octet-stream`),
//! [`MetricsText`], [`Document`], the error shape ([`ApiError`]), [`Health`]
//! and [`Empty`].

use std::borrow::Cow;

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::ApiError;

/// An amount as the services write it: a decimal number with at most four
/// places (the currency's exponent), a space, the ISO 4217 code. Requests
/// must fit it; answers always do.
pub const AMOUNT_PATTERN: &str = r"^-?[0-9]{1,17}(\.[0-9]{1,4})? [A-Z]{3}$";

/// Longest amount text (sign, 17 digits, point, 4 places, space, code).
pub const AMOUNT_LEN_MAX: usize = 27;

/// Hex as the services write keys, ids and signed objects.
pub const HEX_PATTERN: &str = "^([0-9a-f]{2})*$";

/// The schema of an amount, `"12.50 EUR"` ([`AMOUNT_PATTERN`]).
pub struct AmountText;

impl PartialSchema for AmountText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(AMOUNT_PATTERN))
            .max_length(Some(AMOUNT_LEN_MAX))
            .description(Some("an amount: decimal number, space, ISO 4217 code"))
            .examples(["12.50 EUR"])
            .into()
    }
}

impl ToSchema for AmountText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Amount")
    }
}

/// The schema of lower-case hex text ([`HEX_PATTERN`]).
pub struct HexText;

impl PartialSchema for HexText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(HEX_PATTERN))
            .description(Some("lower-case hex"))
            .into()
    }
}

impl ToSchema for HexText {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Hex")
    }
}

/// The schema of a sealed frame: raw bytes (`application/octet-stream`).
pub struct Frame;

impl PartialSchema for Frame {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some("a sealed frame (docs/wire-format.md)"))
            .into()
    }
}

impl ToSchema for Frame {}

/// The schema of `/metrics`: Prometheus text.
pub struct MetricsText;

impl PartialSchema for MetricsText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("Prometheus text exposition"))
            .into()
    }
}

impl ToSchema for MetricsText {}

/// The schema of `/openapi.json`: an OpenAPI document.
pub struct Document;

impl PartialSchema for Document {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("an OpenAPI 3.1 document"))
            .into()
    }
}

impl ToSchema for Document {}

impl ToSchema for ApiError {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Error")
    }
}

impl PartialSchema for ApiError {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .property(
                "error",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .description(Some("a stable code: not_found, malformed_json, …")),
            )
            .required("error")
            .property(
                "message",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some("for people")),
            )
            .required("message")
            .additional_properties(Some(
                utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
            ))
            .description(Some("the body of every 4xx and 5xx answer"))
            .into()
    }
}

/// The answer of `GET /health`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// An answer with nothing to say (`{}`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, ToSchema)]
pub struct Empty {}
