//! The Toxiproxy-compatible admin API of `faultline proxy`.
//!
//! Paths, JSON shapes, status codes and error messages follow Shopify's
//! Toxiproxy, so its clients (Go, Ruby, Rust `toxiproxy_rust`, …) drive
//! faultline unchanged; `openapi.yaml` at the repository root documents
//! every endpoint, including the `http_faults` extension.
//!
//! - `routes`: method + path → one `Action` (or 404/405); pure.
//! - `json`: the request and response bodies.
//! - `handlers`: one arm per action against the
//!   [`ProxyRegistry`](crate::proxy::registry::ProxyRegistry).
//! - `error`: [`ApiError`], Toxiproxy's `{"error", "status"}` answers.
//! - `metrics`: `GET /metrics`, the hops' counters for Prometheus.
//! - `server`: the hyper loop and the guards (browser User-Agent, bearer
//!   token, body size) — [`serve_admin`].
//! - `standalone`: the `faultline proxy` command — [`run_standalone`].

mod error;
mod handlers;
mod json;
mod metrics;
mod routes;
mod server;
mod standalone;

use std::net::SocketAddr;
use std::path::PathBuf;

use http::header::AUTHORIZATION;
use http::HeaderMap;

pub use error::ApiError;
pub use server::{serve_admin, MAX_BODY};
pub use standalone::{run_standalone, AdminError};

/// Who may use the admin API.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminAuth {
    /// Anyone who can connect (the loopback default, as Toxiproxy).
    None,
    /// Every request must carry `Authorization: Bearer <token>`.
    Bearer(String),
}

impl AdminAuth {
    /// Whether the request's headers satisfy this policy.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let AdminAuth::Bearer(token) = self else {
            return true;
        };
        let Some(value) = headers.get(AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        // The scheme is case-insensitive (RFC 9110); then one or more spaces.
        if value.len() < 7 || !value[..6].eq_ignore_ascii_case(b"bearer") || value[6] != b' ' {
            return false;
        }
        let given = value[7..].trim_ascii_start();
        constant_time_eq(given, token.as_bytes())
    }
}

impl std::fmt::Debug for AdminAuth {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::None => f.write_str("None"),
            AdminAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal how
/// much of a guess was right. (The length of the secret may show; its
/// content does not.)
fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != secret.len());
    for (i, &s) in secret.iter().enumerate() {
        diff |= s ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// What `faultline proxy` was asked to do (the CLI flags, parsed).
#[derive(Clone)]
pub struct AdminOptions {
    /// Where the admin API listens (Toxiproxy's default is `127.0.0.1:8474`).
    pub admin: SocketAddr,
    /// A JSON list of proxies to create at start, like Toxiproxy's `-config`.
    pub config: Option<PathBuf>,
    /// Permit a non-loopback `admin` address (requires `token` too).
    pub allow_remote: bool,
    /// The bearer token every request must carry (surrounding whitespace is
    /// ignored, so a token file may end with a newline).
    pub token: Option<String>,
    /// Seeds every proxy's random choices (jitter, toxicity).
    pub seed: u64,
}

impl std::fmt::Debug for AdminOptions {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminOptions")
            .field("admin", &self.admin)
            .field("config", &self.config)
            .field("allow_remote", &self.allow_remote)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("seed", &self.seed)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        h
    }

    #[test]
    fn a_bearer_policy_needs_exactly_the_token() {
        let auth = AdminAuth::Bearer("s3cret".into());
        assert!(auth.allows(&with_auth("Bearer s3cret")));
        assert!(auth.allows(&with_auth("bearer s3cret")));
        assert!(auth.allows(&with_auth("BEARER   s3cret")));
        assert!(!auth.allows(&HeaderMap::new()));
        assert!(!auth.allows(&with_auth("Bearer s3cre")));
        assert!(!auth.allows(&with_auth("Bearer s3cret2")));
        assert!(!auth.allows(&with_auth("Bearer ")));
        assert!(!auth.allows(&with_auth("Bearers3cret")));
        assert!(!auth.allows(&with_auth("Basic s3cret")));
        assert!(!auth.allows(&with_auth("s3cret")));
        assert!(AdminAuth::None.allows(&HeaderMap::new()));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let auth = AdminAuth::Bearer("s3cret".into());
        assert!(!format!("{auth:?}").contains("s3cret"));
        let opts = AdminOptions {
            admin: "127.0.0.1:8474".parse().expect("addr"),
            config: None,
            allow_remote: false,
            token: Some("s3cret".into()),
            seed: 1,
        };
        assert!(!format!("{opts:?}").contains("s3cret"));
    }
}
