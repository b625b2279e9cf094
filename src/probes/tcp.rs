//! The `tcp` probe: a connect to `host:port`; passes once it is established.

use tokio::net::TcpStream;

use super::{connect_failure, Observation};
use crate::config::model_verify::TcpProbe;

/// Observes one `tcp` probe (unbounded: the caller applies the timeout).
pub(super) async fn observe(probe: &TcpProbe) -> Observation {
    match TcpStream::connect(probe.address.as_str()).await {
        Ok(stream) => {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_else(|_| probe.address.clone());
            Observation::pass(Some(peer.clone()), format!("connected to {peer}"))
        }
        Err(e) => Observation::fail(None, connect_failure(&probe.address, &e)),
    }
}
