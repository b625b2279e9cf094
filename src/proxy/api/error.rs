//! Every refusal of the admin API as Toxiproxy words it ([`ApiError`], the
//! shared error type of `crate::server::guard`).
//!
//! Toxiproxy answers errors with `{"error": message, "status": code}` and a
//! fixed set of messages ("proxy not found", "bad request body: …"); clients
//! and people grep for them, so the texts are kept and details appended
//! after a colon the way Toxiproxy's `JoinError` does.

use http::StatusCode;

use crate::proxy::registry::RegistryError;
use crate::proxy::spec::SpecError;
use crate::proxy::{ProxyError, ToxicError};

pub use crate::server::ApiError;

/// Toxiproxy's own refusals.
impl ApiError {
    /// 400 `missing required field: <field>`.
    pub fn missing_field(field: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("missing required field: {field}"),
        )
    }

    pub fn proxy_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "proxy not found")
    }

    pub fn toxic_not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "toxic not found")
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> ApiError {
        match e {
            SpecError::UnknownType(kind) => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "invalid toxic type: `{kind}` (one of {})",
                    crate::proxy::spec::ToxicKind::TYPES.join(", ")
                ),
            ),
            SpecError::Stream(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "stream was invalid, can be either upstream or downstream",
            ),
            other => ApiError::bad_body(other),
        }
    }
}

impl From<ToxicError> for ApiError {
    fn from(e: ToxicError) -> ApiError {
        match e {
            ToxicError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "toxic already exists"),
            ToxicError::NotFound(_) => ApiError::toxic_not_found(),
            ToxicError::WrongMode(_) => ApiError::new(StatusCode::BAD_REQUEST, e.to_string()),
            ToxicError::Invalid(spec) => spec.into(),
        }
    }
}

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> ApiError {
        // Toxiproxy passes the listener's error through as a 500 with Go's
        // wording, e.g. `listen tcp 127.0.0.1:80: bind: permission denied`.
        let message = match &e {
            ProxyError::Bind { addr, source, .. } => format!("listen tcp {addr}: bind: {source}"),
            other => other.to_string(),
        };
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> ApiError {
        match e {
            RegistryError::NotFound(_) => ApiError::proxy_not_found(),
            RegistryError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "proxy already exists"),
            RegistryError::Start(source) => source.into(),
            RegistryError::Toxic(source) => source.into(),
            e @ (RegistryError::Name(_)
            | RegistryError::NameTooLong(_)
            | RegistryError::Address { .. }
            | RegistryError::Duplicate(_)) => ApiError::bad_body(e),
            e @ RegistryError::Lost { .. } => {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn toxiproxy_messages_and_codes_are_kept() {
        let cases: [(ApiError, u16, &str); 6] = [
            (ApiError::proxy_not_found(), 404, "proxy not found"),
            (
                RegistryError::Exists("x".into()).into(),
                409,
                "proxy already exists",
            ),
            (
                ToxicError::Exists("t".into()).into(),
                409,
                "toxic already exists",
            ),
            (
                ToxicError::NotFound("t".into()).into(),
                404,
                "toxic not found",
            ),
            (
                SpecError::Stream("sideways".into()).into(),
                400,
                "stream was invalid, can be either upstream or downstream",
            ),
            (
                ApiError::missing_field("upstream"),
                400,
                "missing required field: upstream",
            ),
        ];
        for (err, status, message) in cases {
            assert_eq!(err.status.as_u16(), status, "{message}");
            assert_eq!(err.message, message);
            assert_eq!(err.to_json(), json!({"error": message, "status": status}));
        }
    }

    #[test]
    fn details_follow_the_toxiproxy_prefix() {
        let unknown: ApiError = SpecError::UnknownType("latensy".into()).into();
        assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
        assert!(
            unknown.message.starts_with("invalid toxic type: `latensy`"),
            "{unknown}"
        );
        let attr: ApiError = SpecError::Attribute {
            key: "latency".into(),
            message: "must be a non-negative number, got -5".into(),
        }
        .into();
        assert_eq!(
            attr.message,
            "bad request body: attribute `latency` must be a non-negative number, got -5"
        );
    }
}
