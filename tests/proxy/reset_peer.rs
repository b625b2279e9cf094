//! `reset_peer` as Toxiproxy's `toxics/reset_peer.go`: nothing until the
//! first data on the toxic's direction; that data is dropped and `timeout`
//! ms later the connection is reset (RST). Idle connections, and ones whose
//! upstream closes first, are never reset.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{connect, echo_server, hop, toxic, LIMIT};
use crate::common::TestBed;
use faultline::proxy::spec::{Direction, ToxicKind};
use faultline::proxy::ProxyMode;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: hop\r\n\r\n";

fn reset_peer(stream: Direction, timeout: u64) -> faultline::proxy::spec::ToxicSpec {
    toxic(stream, ToxicKind::ResetPeer { timeout })
}

/// An upstream that counts the bytes it receives and sends nothing back.
async fn byte_sink() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
    let addr = listener.local_addr().expect("sink addr");
    let seen = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    counted.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, seen)
}

/// Reads until the connection ends; the bytes read and how it ended.
async fn read_to_end(conn: &mut TcpStream) -> (Vec<u8>, Result<(), ErrorKind>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), conn.read(&mut buf)).await {
            Err(_) => return (got, Err(ErrorKind::TimedOut)),
            Ok(Ok(0)) => return (got, Ok(())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => return (got, Err(e.kind())),
        }
    }
}

#[tokio::test]
async fn with_timeout_0_every_request_is_dropped_and_its_connection_reset() {
    tokio::time::timeout(LIMIT, async {
        let (sink, seen) = byte_sink().await;
        let server = TestBed::always(200);
        for (mode, upstream) in [(ProxyMode::Tcp, sink), (ProxyMode::Http, server.addr())] {
            let hop = hop(upstream, mode).await;
            hop.proxy
                .add_toxic(reset_peer(Direction::Upstream, 0))
                .expect("add");
            for i in 0..20 {
                let mut conn = connect(hop.proxy.listen_addr()).await;
                conn.write_all(REQUEST).await.expect("write");
                let (got, end) = read_to_end(&mut conn).await;
                assert_eq!(
                    (got.len(), end),
                    (0, Err(ErrorKind::ConnectionReset)),
                    "{mode:?} connection {i}: reset with nothing delivered"
                );
            }
        }
        assert_eq!(
            seen.load(Ordering::Relaxed),
            0,
            "no request byte reached the TCP upstream"
        );
        assert_eq!(server.requests(), 0, "no request reached the HTTP upstream");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn with_a_timeout_the_reset_comes_that_long_after_the_first_data_and_nothing_passes() {
    tokio::time::timeout(LIMIT, async {
        let server = TestBed::always(200);
        for (mode, upstream) in [(ProxyMode::Tcp, echo_server().await), (ProxyMode::Http, server.addr())] {
            let hop = hop(upstream, mode).await;
            // Downstream: the request goes through, the response is what is dropped.
            hop.proxy
                .add_toxic(reset_peer(Direction::Downstream, 500))
                .expect("add");
            let mut conn = connect(hop.proxy.listen_addr()).await;
            // Applied before the first data: an idle while is not counted.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let sent = Instant::now();
            conn.write_all(REQUEST).await.expect("write");
            let (got, end) = read_to_end(&mut conn).await;
            let took = sent.elapsed();
            assert_eq!(end, Err(ErrorKind::ConnectionReset), "{mode:?}");
            assert!(got.is_empty(), "{mode:?}: no byte of the response: {got:?}");
            assert!(
                took >= Duration::from_millis(500) && took < Duration::from_millis(800),
                "{mode:?}: reset {took:?} after the request; want 500 ms after the response's arrival (+300 ms)"
            );
        }
        assert_eq!(server.requests(), 1, "downstream: the request itself was forwarded");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn an_idle_connection_is_never_reset() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        let mut conn = connect(hop.proxy.listen_addr()).await;
        hop.proxy
            .add_toxic(reset_peer(Direction::Upstream, 0))
            .expect("add");
        let mut buf = [0u8; 1];
        let idle = tokio::time::timeout(Duration::from_millis(400), conn.read(&mut buf)).await;
        assert!(idle.is_err(), "still open after 400 ms idle: {idle:?}");
        hop.proxy
            .remove_toxic("reset_peer_upstream")
            .expect("remove");
        conn.write_all(b"ok").await.expect("write");
        let mut back = [0u8; 2];
        conn.read_exact(&mut back)
            .await
            .expect("the connection still works");
        assert_eq!(&back, b"ok");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_connection_whose_upstream_closes_first_is_closed_not_reset() {
    tokio::time::timeout(LIMIT, async {
        // An upstream that closes each connection at once, sending nothing.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                drop(conn);
            }
        });
        let hop = hop(upstream, ProxyMode::Tcp).await;
        hop.proxy
            .add_toxic(reset_peer(Direction::Downstream, 0))
            .expect("add");
        let mut conn = connect(hop.proxy.listen_addr()).await;
        let (got, end) = read_to_end(&mut conn).await;
        assert_eq!((got.len(), end), (0, Ok(())), "a plain EOF, no RST");
    })
    .await
    .expect("test timed out");
}
