//! The fault proxy: a TCP hop `listen → upstream` that faults act on.
//!
//! The layers follow Shopify's Toxiproxy so that toxics can slot in later
//! without reshaping anything:
//!
//! - `listener`: the accept loop of one proxy; admits or refuses connections.
//! - `link`: one accepted connection, forwarded as two one-direction pumps
//!   (upstream and downstream). The toxic chain of a direction will sit in its pump.
//! - [`Proxy`] (in `handle`): the cloneable handle the harness holds: address,
//!   stats and the enabled switch ("down" in Toxiproxy terms).
//! - `stats`: live counters, updated per chunk so a verifier can read them mid-run.
//!
//! Today the hop is a plain pass-through; it depends on nothing else in the crate.

mod handle;
pub mod spec;
mod link;
mod listener;
mod stats;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use handle::Proxy;
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
