//! The `tcp` probe against an open and a closed loopback port.

use std::time::Duration;

use faultline::config::model_verify::{ProbeKind, TcpProbe};
use faultline::probes::{observe, ProbeContext};

use super::{closed_port, decl, within};

fn tcp(address: String) -> faultline::config::model_verify::ProbeDecl {
    decl(ProbeKind::Tcp(TcpProbe { address }), Duration::from_secs(2))
}

#[tokio::test]
async fn tcp_probe_passes_on_an_open_port() {
    within(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("read the bound address");
        let seen = observe(&tcp(addr.to_string()), &ProbeContext::default()).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.value, Some(addr.to_string()));
        assert_eq!(seen.reason, format!("connected to {addr}"));
    })
    .await
}

#[tokio::test]
async fn tcp_probe_fails_on_a_closed_port() {
    within(async {
        let addr = closed_port();
        let seen = observe(&tcp(addr.to_string()), &ProbeContext::default()).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, format!("connect to {addr} refused"));
        assert_eq!(seen.value, None);
    })
    .await
}
