//! The fault proxy: a TCP hop `listen → upstream` that faults act on.
//!
//! The layers follow Shopify's Toxiproxy:
//!
//! - `listener`: the accept loop of one proxy; admits or refuses connections.
//! - `cores`: the threads links run on, one single-threaded runtime per core.
//! - `link`: one accepted connection: connects upstream (or, in HTTP mode, to
//!   the in-process HTTP layer) and runs its two one-direction pumps.
//! - `pump`: one direction: a plain copy while the direction has no active
//!   toxic, a reader → toxic chain → writer pipeline while it has.
//! - `chain`: the toxics of one direction of one connection, with their
//!   per-connection state and random stream.
//! - `toxics`: one file per toxic behind one small trait; `toxics::build` is
//!   the one `match` from a [`spec::ToxicKind`] to its behaviour.
//! - `http`: HTTP mode (request-level faults), served behind the toxic chain.
//! - [`Proxy`] (in `handle`): the cloneable handle the harness holds: address,
//!   stats, the enabled switch ("down" in Toxiproxy terms: the port closed),
//!   toxics and HTTP faults.
//! - `stats`: live counters, updated per chunk so a verifier can read them mid-run.
//! - `syn_count`: counts the connects a down hop refuses (its port is closed).
//! - `timer`: the precise clock toxic delays wait on (tokio's rounds up to 1-2 ms).
//! - `registry`, `api`: the named proxies of `faultline proxy` and their
//!   Toxiproxy-compatible admin API.
//! - [`spec`]: the plain-data descriptions of toxics and HTTP faults.
//!
//! It depends on nothing else in the crate but [`crate::glob`] (HTTP fault matching).

pub mod api;
mod chain;
mod cores;
mod handle;
mod http;
pub(crate) use http::rate_limit;
pub(crate) mod jitter;
mod link;
mod listener;
mod pump;
pub mod registry;
pub mod spec;
mod stats;
mod syn_count;
mod timer;
mod toxics;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use handle::{Proxy, ProxyMode, ToxicError};
pub use stats::ProxyStats;

/// What one proxy hop listens on and forwards to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    /// The hop's name, e.g. `payments`; faults address hops by it.
    pub name: String,
    /// Where clients connect; port 0 picks a free port (see [`Proxy::listen_addr`]).
    pub listen: SocketAddr,
    /// Where every accepted connection is forwarded.
    pub upstream: SocketAddr,
    /// Plain TCP, or HTTP/1.1 with request-level faults on top of the toxics.
    pub mode: ProxyMode,
    /// The root of every random decision of the hop (toxicity, jitter, slice
    /// sizes, HTTP fault probabilities): the same seed and the same sequence
    /// of connections give the same decisions.
    pub seed: u64,
}

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy `{name}`: cannot listen on {addr}")]
    Bind {
        name: String,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("proxy `{name}`: cannot read the bound address")]
    LocalAddr {
        name: String,
        #[source]
        source: std::io::Error,
    },
}
