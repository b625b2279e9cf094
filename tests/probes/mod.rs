//! The probes against real things: loopback HTTP servers, a real shell, open
//! and closed ports, and a real Prometheus scraping a loopback target.

mod command_probe;
mod fixture;
mod http_probe;
mod in_a_run;
mod prometheus_probe;
pub(crate) mod prometheus_server;
mod tcp_probe;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use faultline::config::model_verify::{ProbeDecl, ProbeKind};

/// Every probe test finishes within this, or fails.
const LIMIT: Duration = Duration::from_secs(60);

/// A declaration named after its kind.
fn decl(kind: ProbeKind, timeout: Duration) -> ProbeDecl {
    ProbeDecl {
        name: format!("{}-probe", kind.key()),
        kind,
        timeout,
    }
}

/// Runs a test body within [`LIMIT`].
async fn within<T>(body: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, body)
        .await
        .expect("the probe test did not finish in time")
}

/// A loopback address nothing listens on (bound once, then released).
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    listener.local_addr().expect("read the bound address")
}
