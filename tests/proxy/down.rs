//! `down` (the hop disabled) behaves like a stopped process and like
//! Toxiproxy's `enabled: false`: the port is closed, so connects are refused;
//! live connections are closed; enabled again, the hop listens on the same
//! port. Refused connects are counted at the closed port (the tests run as
//! root, so the SYN counter must work here).

use std::io::ErrorKind;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{echo_server, hop, LIMIT};
use crate::common::{get, TestBed};
use faultline::proxy::{Proxy, ProxyMode};

/// A raw HTTP/1.1 request with `Connection: close`.
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: hop\r\nconnection: close\r\n\r\n";

/// Polls `proxy`'s stats until `done`, for at most 2 s.
async fn stats_until(proxy: &Proxy, done: impl Fn(&faultline::proxy::ProxyStats) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while !done(&proxy.stats()) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Down, up, down again on one hop of `mode`, with a live connection each time.
async fn refuses_then_listens_on_the_same_port(mode: ProxyMode, upstream: std::net::SocketAddr) {
    let hop = hop(upstream, mode).await;
    let addr = hop.proxy.listen_addr();
    for round in 0..2 {
        let mut live = TcpStream::connect(addr).await.expect("connect while up");
        live.write_all(b"GET / HTTP/1.1\r\nhost: hop\r\n\r\n")
            .await
            .expect("write");
        let mut head = [0u8; 12];
        live.read_exact(&mut head)
            .await
            .expect("a response while up");
        assert_eq!(&head[..], b"HTTP/1.1 200", "round {round}");

        hop.proxy.set_enabled(false).expect("down");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(1), live.read_to_end(&mut rest)).await;
        assert!(
            matches!(read, Ok(Ok(_) | Err(_))),
            "round {round}: the live connection is closed, not left hanging"
        );
        for _ in 0..3 {
            let refused = TcpStream::connect(addr).await.map(|_| ());
            assert_eq!(
                refused.map_err(|e| e.kind()),
                Err(ErrorKind::ConnectionRefused),
                "round {round}: connects are refused while down"
            );
        }

        hop.proxy.set_enabled(true).expect("up");
        assert_eq!(hop.proxy.listen_addr(), addr, "the same address");
        let mut again = TcpStream::connect(addr)
            .await
            .expect("the same port listens again");
        again.write_all(REQUEST).await.expect("write");
        let mut response = Vec::new();
        again
            .read_to_end(&mut response)
            .await
            .expect("a response after down");
        assert!(response.starts_with(b"HTTP/1.1 200"), "round {round}");
    }
    let stats = hop.proxy.stats();
    assert!(stats.refused_observed, "root can count refused connects");
    assert_eq!(stats.refused, 0, "nothing was accepted while down");
    stats_until(&hop.proxy, |s| s.refused_connects >= 6).await;
    assert_eq!(
        hop.proxy.stats().refused_connects,
        6,
        "3 refused connects in each of 2 down periods, none while up"
    );
}

#[tokio::test]
async fn a_down_tcp_hop_refuses_connects_and_comes_back_on_its_port() {
    tokio::time::timeout(LIMIT, async {
        let server = TestBed::always(200);
        refuses_then_listens_on_the_same_port(ProxyMode::Tcp, server.addr()).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_down_http_hop_refuses_connects_and_comes_back_on_its_port() {
    tokio::time::timeout(LIMIT, async {
        let server = TestBed::always(200);
        refuses_then_listens_on_the_same_port(ProxyMode::Http, server.addr()).await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn refused_connects_are_counted_only_while_down_and_only_for_this_port() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        let other = super::hop(echo_server().await, ProxyMode::Tcp).await;
        let addr = hop.proxy.listen_addr();
        hop.proxy.set_enabled(false).expect("down");
        other
            .proxy
            .set_enabled(false)
            .expect("the other one down too");
        for _ in 0..25 {
            assert!(TcpStream::connect(addr).await.is_err(), "refused");
        }
        assert!(TcpStream::connect(other.proxy.listen_addr()).await.is_err());
        stats_until(&hop.proxy, |s| s.refused_connects >= 25).await;
        hop.proxy.set_enabled(true).expect("up");
        for _ in 0..5 {
            let mut conn = TcpStream::connect(addr).await.expect("accepted");
            conn.write_all(b"x").await.expect("write");
            let mut back = [0u8; 1];
            conn.read_exact(&mut back).await.expect("echo");
        }
        // Give a wrongly counted SYN time to show.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let stats = hop.proxy.stats();
        assert_eq!(
            (stats.refused_connects, stats.accepted),
            (25, 5),
            "refused while down, accepted (not refused) while up"
        );
        stats_until(&other.proxy, |s| s.refused_connects >= 1).await;
        assert_eq!(other.proxy.stats().refused_connects, 1, "per port");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_client_of_a_down_http_hop_sees_a_refused_connect() {
    tokio::time::timeout(LIMIT, async {
        let server = TestBed::always(200);
        let hop = hop(server.addr(), ProxyMode::Http).await;
        let url = format!("http://{}/", hop.proxy.listen_addr());
        assert_eq!(get(&url).await.status, 200);
        hop.proxy.set_enabled(false).expect("down");
        let failed = crate::common::fetch(http::Method::GET, &url).await;
        let reason = failed.expect_err("no response while down");
        assert!(
            reason.contains("ConnectionRefused") || reason.contains("Connection refused"),
            "refused, not reset or closed: {reason}"
        );
        assert_eq!(
            server.requests(),
            1,
            "nothing reached the upstream while down"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_ipv6_loopback_hop_is_refused_and_counted_too() {
    tokio::time::timeout(LIMIT, async {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let _stop = shutdown.clone().drop_guard();
        let cfg = faultline::proxy::ProxyConfig {
            name: "v6".into(),
            listen: "[::1]:0".parse().expect("addr"),
            upstream: echo_server().await,
            mode: ProxyMode::Tcp,
            seed: 6,
        };
        let tracker = tokio_util::task::TaskTracker::new();
        let proxy = Proxy::start(cfg, shutdown, &tracker)
            .await
            .expect("hop on ::1");
        let addr = proxy.listen_addr();
        proxy.set_enabled(false).expect("down");
        for _ in 0..4 {
            let refused = TcpStream::connect(addr).await.map(|_| ());
            assert_eq!(
                refused.map_err(|e| e.kind()),
                Err(ErrorKind::ConnectionRefused)
            );
        }
        stats_until(&proxy, |s| s.refused_connects >= 4).await;
        proxy.set_enabled(true).expect("up");
        let mut conn = TcpStream::connect(addr)
            .await
            .expect("listening on ::1 again");
        conn.write_all(b"v6").await.expect("write");
        let mut back = [0u8; 2];
        conn.read_exact(&mut back).await.expect("echo");
        let stats = proxy.stats();
        assert_eq!((stats.refused_connects, stats.refused_observed), (4, true));
    })
    .await
    .expect("test timed out");
}
