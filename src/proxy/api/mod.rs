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
//! - `server`: the hyper loop — [`serve_admin`]; every request passes the
//!   shared guards of [`crate::server::guard`] first.
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

pub use error::ApiError;
pub use server::{serve_admin, MAX_BODY};
pub use standalone::{run_standalone, AdminError};

pub use crate::server::AdminAuth;

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

    #[test]
    fn debug_output_never_shows_the_token() {
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
