//! The HTTP API's request and response bodies, and its errors: JSON with a stable `code`, never a stack trace.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// `POST /v1/dry-runs`: a plan to dry-run against a registered source.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend(
    "oneOf" = [{"required": ["plan"]}, {"required": ["statements"]}],
    "not" = {"required": ["policy", "policy_toml"]}
))]
pub struct DryRunRequest {
    /// The name of a registered source (`GET /v1/sources`).
    pub source: String,
    /// The plan as SQL text (or as a JSON plan's text, `{"statements": [...]}`). Give this or `statements`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub plan: Option<String>,
    /// The plan as a list of statements. Give this or `plan`.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub statements: Option<Vec<String>>,
    /// Metadata carried into the report's `plan.metadata` with `statements` (`agent`, `intent`, ...).
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// A policy of the server's configuration, by name; the built-in policy when absent.
    #[serde(default)]
    #[schemars(with = "String")]
    pub policy: Option<String>,
    /// A policy given inline, as the TOML of a `pgshadow.toml`; instead of `policy`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub policy_toml: Option<String>,
}

/// `POST /v1/sources`: a source to prepare, as SQL text or as a path inside the server's allowed directories.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{"required": ["schema"]}, {"required": ["path"]}]))]
pub struct RegisterSource {
    /// The name dry-runs will refer to it by: letters, digits, `_` and `-`, at most 63 characters.
    #[schemars(extend("pattern" = "^[A-Za-z0-9_-]{1,63}$"))]
    pub name: String,
    /// The schema as SQL text (a `pg_dump --schema-only`, with data if wanted). Give this or `path`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub schema: Option<String>,
    /// A schema file or `pg_dump` archive on the server, inside one of its `allowed_dirs`. Give this or `schema`.
    #[serde(default)]
    #[schemars(with = "String")]
    pub path: Option<String>,
    /// A profile of production (`pgshadow profile`'s JSON, docs/profile.md), checked against the schema: the
    /// source's `profile` and every report of a dry-run against it say whether it matches.
    #[serde(default)]
    #[schemars(with = "serde_json::Map<String, serde_json::Value>")]
    pub profile: Option<serde_json::Value>,
}

/// `GET /v1/health`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    /// `ok`, or `stopping` once a shutdown began.
    pub status: String,
    /// The pgshadow version.
    pub version: String,
    /// The shadow's PostgreSQL `server_version`.
    pub server_version: String,
    /// Sources registered.
    pub sources: usize,
}

/// Every error response: `{"error": {"code", "message", ...}}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ApiError,
}

/// What went wrong, with a code that does not change between versions.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ApiError {
    /// `unauthorized`, `locked_out` (too many wrong tokens from this address or from everyone; see `Retry-After`),
    /// `bad_request`, `payload_too_large`, `invalid_plan`, `invalid_policy`, `unknown_source`,
    /// `unknown_policy`, `source_exists`, `path_not_allowed`, `source_failed`, `busy`, `stopping`, `timeout`,
    /// `not_found`, `unknown_proposal`, `refused` (the rules refused a decision), `forbidden` (the token's role does
    /// not allow it) or `internal`.
    pub code: String,
    /// For people.
    pub message: String,
    /// For `invalid_plan` and `invalid_policy`: where (1-based line and column of the request's text).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// See `line`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// An error response.
#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    error: ApiError,
    retry_after: Option<u32>,
}

impl ApiFailure {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiFailure {
        ApiFailure {
            status,
            error: ApiError { code: code.to_owned(), message: message.into(), line: None, column: None },
            retry_after: None,
        }
    }

    /// Adds `Retry-After: seconds`.
    pub(crate) fn retry_after(mut self, seconds: u32) -> ApiFailure {
        self.retry_after = Some(seconds);
        self
    }

    /// The response for a library error in the context of a request's `field` (`plan`, `policy_toml`, ...).
    pub(crate) fn from_error(error: Error, field: &str) -> ApiFailure {
        let message = match error.hint() {
            Some(hint) => format!("{error} ({hint})"),
            None => error.to_string(),
        };
        let (status, code) = match &error {
            Error::Input { .. } if field == "policy_toml" => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_policy"),
            Error::Input { .. } if field == "profile" => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_profile"),
            Error::Input { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_plan"),
            Error::UnknownSource(_) => (StatusCode::NOT_FOUND, "unknown_source"),
            Error::UnknownPolicy(_) => (StatusCode::NOT_FOUND, "unknown_policy"),
            Error::SourceExists(_) => (StatusCode::CONFLICT, "source_exists"),
            Error::PathNotAllowed(_) => (StatusCode::FORBIDDEN, "path_not_allowed"),
            Error::Io { .. } | Error::Source { .. } | Error::SchemaFidelity { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "source_failed")
            }
            Error::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            Error::UnknownProposal(_) => (StatusCode::NOT_FOUND, "unknown_proposal"),
            Error::Refused(_) => (StatusCode::CONFLICT, "refused"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let mut failure = ApiFailure::new(status, code, message);
        if let Error::Input { line, column, .. } = error {
            (failure.error.line, failure.error.column) = (Some(line), Some(column));
        }
        failure
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(ErrorBody { error: self.error })).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A request's JSON body, whatever its content type says (`curl -d` sends a form type): over the body limit is
/// `payload_too_large`, malformed JSON `bad_request` with its line and column.
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: std::result::Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> std::result::Result<T, ApiFailure> {
    let bytes = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiFailure::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is over the limit")
        }
        status => ApiFailure::new(status, "bad_request", rejection.body_text()),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        let mut failure =
            ApiFailure::new(StatusCode::BAD_REQUEST, "bad_request", format!("the body is not the JSON expected: {e}"));
        (failure.error.line, failure.error.column) = (Some(e.line()), Some(e.column()));
        failure
    })
}
