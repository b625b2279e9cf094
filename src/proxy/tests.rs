//! Unit tests of the hop against a loopback echo server: pass-through,
//! shutdown, the enable switch, and the handle's toxic and HTTP fault API.
//! (What each toxic does over real sockets is in `tests/proxy`.)

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::spec::{Direction, HttpFaultSpec, ToxicKind, ToxicSpec};
use super::{Proxy, ProxyConfig, ProxyMode, ProxyStats, ToxicError};

/// Generous bound for anything that should happen "at once" on loopback.
const PROMPTLY: Duration = Duration::from_secs(5);

/// An upstream that echoes every byte and closes after the client's EOF.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

struct Hop {
    proxy: Proxy,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

async fn hop_to(upstream: SocketAddr) -> Hop {
    hop_in(upstream, ProxyMode::Tcp).await
}

async fn hop_in(upstream: SocketAddr, mode: ProxyMode) -> Hop {
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let cfg = ProxyConfig {
        name: "test".into(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        upstream,
        mode,
        seed: 7,
    };
    let proxy = Proxy::start(cfg, shutdown.clone(), &tracker)
        .await
        .expect("proxy starts");
    Hop {
        proxy,
        shutdown,
        tracker,
    }
}

async fn connect(proxy: &Proxy) -> TcpStream {
    TcpStream::connect(proxy.listen_addr())
        .await
        .expect("connect to hop")
}

/// Sends `msg` and expects it echoed back through the hop.
async fn round_trip(conn: &mut TcpStream, msg: &[u8]) {
    conn.write_all(msg).await.expect("write");
    let mut back = vec![0u8; msg.len()];
    conn.read_exact(&mut back).await.expect("read echo");
    assert_eq!(back, msg);
}

/// True once the peer has closed: EOF or a reset, not a hang.
async fn is_closed(conn: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(PROMPTLY, conn.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// Counters are bumped as a write starts, but the proxy may still be reading
/// the rest of the data, so poll briefly.
async fn wait_for_stats(proxy: &Proxy, done: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
    let deadline = tokio::time::Instant::now() + PROMPTLY;
    loop {
        let stats = proxy.stats();
        if done(&stats) || tokio::time::Instant::now() > deadline {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn bytes_pass_through_both_ways_and_are_counted() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let hop = hop_to(echo_server().await).await;
        assert_eq!(hop.proxy.name(), "test");
        assert_ne!(hop.proxy.listen_addr().port(), 0, "port 0 is resolved");

        let mut conn = connect(&hop.proxy).await;
        round_trip(&mut conn, b"hello through the hop").await;

        let stats = wait_for_stats(&hop.proxy, |s| s.bytes_downstream == 21).await;
        assert_eq!(
            stats,
            ProxyStats {
                accepted: 1,
                refused: 0,
                upstream_failures: 0,
                active: 1,
                bytes_upstream: 21,
                bytes_downstream: 21,
                refused_observed: true,
                ..ProxyStats::default()
            }
        );
        drop(conn);
        let stats = wait_for_stats(&hop.proxy, |s| s.active == 0).await;
        assert_eq!(stats.active, 0, "closed connection is no longer active");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn large_transfer_arrives_intact_with_half_close() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let hop = hop_to(echo_server().await).await;
        let data: Vec<u8> = (0..8 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let conn = connect(&hop.proxy).await;
        let (mut r, mut w) = conn.into_split();

        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.expect("write all");
            // The echo server closes after our EOF, which ends our read below.
            w.shutdown().await.expect("half-close");
        });
        let mut received = Vec::with_capacity(data.len());
        r.read_to_end(&mut received).await.expect("read to end");
        writer.await.expect("writer task");

        assert_eq!(received.len(), data.len());
        assert!(received == data, "payload corrupted in transit");
        let stats = wait_for_stats(&hop.proxy, |s| s.active == 0).await;
        assert_eq!(stats.bytes_upstream, data.len() as u64);
        assert_eq!(stats.bytes_downstream, data.len() as u64);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn shutdown_ends_every_connection_and_closes_the_port() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let hop = hop_to(echo_server().await).await;
        let mut a = connect(&hop.proxy).await;
        let mut b = connect(&hop.proxy).await;
        round_trip(&mut a, b"a").await;
        round_trip(&mut b, b"b").await;

        hop.shutdown.cancel();
        hop.tracker.close();
        tokio::time::timeout(PROMPTLY, hop.tracker.wait())
            .await
            .expect("every hop task finishes after shutdown");

        assert!(is_closed(&mut a).await, "connection a closed");
        assert!(is_closed(&mut b).await, "connection b closed");
        assert!(
            TcpStream::connect(hop.proxy.listen_addr()).await.is_err(),
            "listen port closed"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_disabled_hop_closes_its_port_and_listens_again_on_the_same_one() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let hop = hop_to(echo_server().await).await;
        let addr = hop.proxy.listen_addr();
        let mut before = connect(&hop.proxy).await;
        round_trip(&mut before, b"up").await;

        hop.proxy.set_enabled(false).expect("disable");
        assert!(!hop.proxy.is_enabled());
        assert!(is_closed(&mut before).await, "existing connection closed");
        let refused = TcpStream::connect(addr).await.map(|_| ());
        assert_eq!(
            refused.map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused),
            "connects are refused while down"
        );
        hop.proxy
            .set_enabled(false)
            .expect("disabling twice is a no-op");

        hop.proxy.set_enabled(true).expect("enable");
        assert_eq!(hop.proxy.listen_addr(), addr);
        // No wait: the port listens again when `set_enabled` returns.
        let mut after = TcpStream::connect(addr).await.expect("same port again");
        round_trip(&mut after, b"back up").await;
        let stats = wait_for_stats(&hop.proxy, |s| s.accepted == 2).await;
        assert_eq!((stats.accepted, stats.refused), (2, 0));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn enabling_fails_and_the_hop_stays_down_when_its_port_was_taken() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let hop = hop_to(echo_server().await).await;
        let addr = hop.proxy.listen_addr();
        hop.proxy.set_enabled(false).expect("disable");
        let squatter = TcpListener::bind(addr).await.expect("take the free port");
        let err = hop.proxy.set_enabled(true).expect_err("the port is taken");
        assert!(matches!(err, super::ProxyError::Bind { .. }), "{err:?}");
        assert!(!hop.proxy.is_enabled(), "still down");
        drop(squatter);
        hop.proxy.set_enabled(true).expect("free again");
        round_trip(&mut connect(&hop.proxy).await, b"up").await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn upstream_connect_failure_closes_the_client() {
    tokio::time::timeout(Duration::from_secs(10), async {
        // A port that was just free and is now closed: connects are refused.
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            l.local_addr().expect("addr")
        };
        let hop = hop_to(closed).await;
        let mut conn = connect(&hop.proxy).await;
        assert!(is_closed(&mut conn).await, "client closed");
        let stats = wait_for_stats(&hop.proxy, |s| s.upstream_failures == 1).await;
        assert_eq!(stats.upstream_failures, 1);
        assert_eq!(stats.active, 0);
    })
    .await
    .expect("test timed out");
}

fn toxic(name: &str, stream: Direction, kind: ToxicKind) -> ToxicSpec {
    ToxicSpec {
        name: name.into(),
        stream,
        toxicity: 1.0,
        kind,
    }
}

fn http_fault(name: &str) -> HttpFaultSpec {
    serde_json::from_value(serde_json::json!({"name": name, "type": "http_error", "status": 503}))
        .expect("valid http fault")
}

#[tokio::test]
async fn toxics_are_added_updated_and_removed_by_name_in_order() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let hop = hop_to(echo_server().await).await;
        let lag = toxic(
            "lag",
            Direction::Downstream,
            ToxicKind::SlowClose { delay: 1 },
        );
        let cap = toxic(
            "cap",
            Direction::Upstream,
            ToxicKind::LimitData { bytes: 9 },
        );
        hop.proxy.add_toxic(lag.clone()).expect("add lag");
        hop.proxy.add_toxic(cap.clone()).expect("add cap");
        assert_eq!(hop.proxy.toxics(), [lag.clone(), cap.clone()]);

        let err = hop.proxy.add_toxic(lag.clone()).expect_err("duplicate");
        assert!(
            matches!(err, ToxicError::Exists(ref n) if n == "lag"),
            "{err:?}"
        );
        assert!(err.to_string().starts_with("toxic already exists"), "{err}");

        let wider = toxic(
            "cap",
            Direction::Upstream,
            ToxicKind::LimitData { bytes: 99 },
        );
        hop.proxy
            .update_toxic("cap", wider.clone())
            .expect("update");
        assert_eq!(
            hop.proxy.toxics(),
            [lag.clone(), wider.clone()],
            "kept its place"
        );
        let renamed_onto_lag = toxic(
            "lag",
            Direction::Upstream,
            ToxicKind::LimitData { bytes: 1 },
        );
        assert!(matches!(
            hop.proxy.update_toxic("cap", renamed_onto_lag),
            Err(ToxicError::Exists(_))
        ));
        let err = hop
            .proxy
            .update_toxic("nope", wider.clone())
            .expect_err("missing");
        assert!(err.to_string().starts_with("toxic not found"), "{err}");

        assert_eq!(hop.proxy.remove_toxic("lag").expect("remove"), lag);
        assert!(matches!(
            hop.proxy.remove_toxic("lag"),
            Err(ToxicError::NotFound(_))
        ));
        assert_eq!(hop.proxy.toxics(), [wider]);

        let mut bad = toxic(
            "bad",
            Direction::Upstream,
            ToxicKind::Timeout { timeout: 0 },
        );
        bad.toxicity = 1.5;
        assert!(matches!(
            hop.proxy.add_toxic(bad),
            Err(ToxicError::Invalid(_))
        ));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn http_faults_need_an_http_hop_and_reset_clears_everything() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let tcp = hop_to(echo_server().await).await;
        assert_eq!(tcp.proxy.mode(), ProxyMode::Tcp);
        let err = tcp
            .proxy
            .add_http_fault(http_fault("f"))
            .expect_err("tcp hop");
        assert!(
            matches!(err, ToxicError::WrongMode(ref n) if n == "test"),
            "{err:?}"
        );

        let http = hop_in(echo_server().await, ProxyMode::Http).await;
        assert_eq!(http.proxy.mode(), ProxyMode::Http);
        http.proxy.add_http_fault(http_fault("f")).expect("add");
        assert!(matches!(
            http.proxy.add_http_fault(http_fault("f")),
            Err(ToxicError::Exists(_))
        ));
        let mut invalid = http_fault("g");
        invalid.probability = 2.0;
        assert!(matches!(
            http.proxy.add_http_fault(invalid),
            Err(ToxicError::Invalid(_))
        ));
        assert_eq!(http.proxy.http_faults(), [http_fault("f")]);
        let timeout = toxic("t", Direction::Upstream, ToxicKind::Timeout { timeout: 0 });
        http.proxy
            .add_toxic(timeout)
            .expect("toxics work on http hops");
        http.proxy.set_enabled(false).expect("disable");

        http.proxy.reset().expect("reset");
        assert!(http.proxy.is_enabled());
        assert!(http.proxy.toxics().is_empty());
        assert!(http.proxy.http_faults().is_empty());
        assert!(matches!(
            http.proxy.remove_http_fault("f"),
            Err(ToxicError::NotFound(_))
        ));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn with_no_toxic_a_connection_is_one_task_and_bytes_are_untouched() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let metrics = tokio::runtime::Handle::current().metrics();
        // Links run on the link threads, the rest on this test's runtime.
        let alive = || metrics.num_alive_tasks() + super::cores::alive_tasks();
        let upstream = echo_server().await;
        let hop = hop_to(upstream).await;
        let mut direct = TcpStream::connect(upstream).await.expect("direct");
        round_trip(&mut direct, b"warm").await;
        // The echo server's accept loop and connection, and the hop's accept loop.
        let before = alive();

        let mut conn = connect(&hop.proxy).await;
        let data: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        conn.write_all(&data).await.expect("write");
        let mut back = vec![0u8; data.len()];
        conn.read_exact(&mut back).await.expect("read");
        assert!(back == data, "bytes changed in transit");
        // One echo task upstream of the hop, and the hop's one link task.
        assert_eq!(alive(), before + 2);
    })
    .await
    .expect("test timed out");
}
