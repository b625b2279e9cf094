//! Toxics on the embedded proxy, over real loopback sockets.
//!
//! Each test starts its own upstream and hop on port 0. Timings are
//! asserted with explicit tolerances (loopback plus scheduling noise; the
//! suite runs tests in parallel), each stated in the assertion message.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use faultline::proxy::spec::{Direction, Distribution, ToxicKind, ToxicSpec};
use faultline::proxy::{Proxy, ProxyConfig, ProxyMode};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::{fetch, get, TestBed};

mod down;
mod reset_peer;

/// Upper bound for every test that is not about a long transfer.
const LIMIT: Duration = Duration::from_secs(15);

/// A hop that stops when dropped.
struct Hop {
    proxy: Proxy,
    shutdown: CancellationToken,
}

impl Drop for Hop {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn hop(upstream: SocketAddr, mode: ProxyMode) -> Hop {
    let shutdown = CancellationToken::new();
    let cfg = ProxyConfig {
        name: "toxic".into(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        upstream,
        mode,
        seed: 2024,
    };
    let proxy = Proxy::start(cfg, shutdown.clone(), &TaskTracker::new())
        .await
        .expect("proxy starts");
    Hop { proxy, shutdown }
}

fn toxic(stream: Direction, kind: ToxicKind) -> ToxicSpec {
    ToxicSpec {
        name: format!("{}_{}", kind.type_name(), stream.as_str()),
        stream,
        toxicity: 1.0,
        kind,
    }
}

fn latency(ms: u64) -> ToxicKind {
    ToxicKind::Latency {
        latency: ms,
        jitter: 0,
        distribution: Distribution::Uniform,
    }
}

/// An upstream that echoes every byte and closes after the client's EOF.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// The bytes a source server sends: position-dependent, so truncation or
/// reordering shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

/// An upstream that sends `pattern(len)` to every client, then closes.
async fn source_server(len: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind source");
    let addr = listener.local_addr().expect("source addr");
    let data = Arc::new(pattern(len));
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let data = Arc::clone(&data);
            tokio::spawn(async move {
                let _ = conn.write_all(&data).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    addr
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let conn = TcpStream::connect(addr).await.expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    conn
}

/// The median of `n` two-byte echo round trips on one connection to `addr`.
async fn median_round_trip(addr: SocketAddr, n: usize) -> Duration {
    let mut conn = connect(addr).await;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let msg = [b'r', i as u8];
        let started = Instant::now();
        conn.write_all(&msg).await.expect("write");
        let mut back = [0u8; 2];
        conn.read_exact(&mut back).await.expect("read echo");
        times.push(started.elapsed());
        assert_eq!(back, msg);
    }
    times.sort();
    times[n / 2]
}

#[tokio::test]
async fn latency_downstream_adds_its_delay_to_every_round_trip() {
    tokio::time::timeout(LIMIT, async {
        let upstream = echo_server().await;
        let hop = hop(upstream, ProxyMode::Tcp).await;
        hop.proxy
            .add_toxic(toxic(Direction::Downstream, latency(100)))
            .expect("add latency");

        let direct = median_round_trip(upstream, 20).await;
        let proxied = median_round_trip(hop.proxy.listen_addr(), 20).await;
        let added = proxied.saturating_sub(direct);
        assert!(
            added >= Duration::from_millis(90) && added <= Duration::from_millis(110),
            "p50 over 20 exchanges: direct {direct:?}, proxied {proxied:?}: \
             added {added:?}, want 100 ms ± 10 ms"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn bandwidth_paces_a_download_to_the_rate() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let hop = hop(source_server(500_000).await, ProxyMode::Tcp).await;
        hop.proxy
            .add_toxic(toxic(
                Direction::Downstream,
                ToxicKind::Bandwidth { rate: 100 },
            ))
            .expect("add bandwidth");

        let started = Instant::now();
        let mut conn = connect(hop.proxy.listen_addr()).await;
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.expect("download");
        let took = started.elapsed();
        assert!(
            got == pattern(500_000),
            "the download arrives whole and in order"
        );
        assert!(
            took >= Duration::from_millis(4250) && took <= Duration::from_millis(5750),
            "500 KB at 100 KB/s took {took:?}; want 5 s ± 15%"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn timeout_swallows_requests_until_it_is_removed() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        let mut conn = connect(hop.proxy.listen_addr()).await;
        hop.proxy
            .add_toxic(toxic(
                Direction::Upstream,
                ToxicKind::Timeout { timeout: 0 },
            ))
            .expect("add timeout");
        tokio::time::sleep(Duration::from_millis(20)).await;

        conn.write_all(b"lost").await.expect("write");
        let mut buf = [0u8; 16];
        let answer = tokio::time::timeout(Duration::from_secs(1), conn.read(&mut buf)).await;
        assert!(answer.is_err(), "no response within 1 s: {answer:?}");

        hop.proxy.remove_toxic("timeout_upstream").expect("remove");
        tokio::time::sleep(Duration::from_millis(20)).await;
        conn.write_all(b"back").await.expect("write");
        let mut back = [0u8; 4];
        conn.read_exact(&mut back).await.expect("flow resumes");
        assert_eq!(&back, b"back", "what the timeout dropped stays dropped");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn timeout_with_a_duration_closes_the_connection_then() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        hop.proxy
            .add_toxic(toxic(
                Direction::Downstream,
                ToxicKind::Timeout { timeout: 500 },
            ))
            .expect("add timeout");
        let started = Instant::now();
        let mut conn = connect(hop.proxy.listen_addr()).await;
        conn.write_all(b"anyone?").await.expect("write");
        let mut buf = [0u8; 16];
        let read = conn.read(&mut buf).await;
        let took = started.elapsed();
        assert!(matches!(read, Ok(0)), "closed without data: {read:?}");
        assert!(
            took >= Duration::from_millis(490) && took <= Duration::from_millis(650),
            "closed after {took:?}; want 500 ms (-10 ms, +150 ms)"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn limit_data_cuts_the_stream_at_the_limit_and_closes() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(source_server(10_000).await, ProxyMode::Tcp).await;
        hop.proxy
            .add_toxic(toxic(
                Direction::Downstream,
                ToxicKind::LimitData { bytes: 1234 },
            ))
            .expect("add limit_data");
        let mut conn = connect(hop.proxy.listen_addr()).await;
        let mut got = Vec::new();
        conn.read_to_end(&mut got).await.expect("read to the close");
        assert_eq!(got.len(), 1234, "exactly the limit");
        assert!(got[..] == pattern(10_000)[..1234], "the first 1234 bytes");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn slicer_delivers_every_byte_in_order() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        for stream in [Direction::Upstream, Direction::Downstream] {
            let kind = ToxicKind::Slicer {
                average_size: 64,
                size_variation: 48,
                delay: 20,
            };
            hop.proxy
                .add_toxic(toxic(stream, kind))
                .expect("add slicer");
        }
        let conn = connect(hop.proxy.listen_addr()).await;
        let (mut r, mut w) = conn.into_split();
        let data = pattern(200_000);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&sent).await.expect("write");
            w.shutdown().await.expect("half-close");
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.expect("read back");
        writer.await.expect("writer");
        assert_eq!(got.len(), data.len(), "every byte");
        assert!(got == data, "in order, unchanged");
        assert_eq!(hop.proxy.stats().bytes_downstream, data.len() as u64);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn slow_close_delays_only_the_close() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(source_server(100).await, ProxyMode::Tcp).await;
        hop.proxy
            .add_toxic(toxic(
                Direction::Downstream,
                ToxicKind::SlowClose { delay: 300 },
            ))
            .expect("add slow_close");
        let started = Instant::now();
        let mut conn = connect(hop.proxy.listen_addr()).await;
        let mut data = [0u8; 100];
        conn.read_exact(&mut data).await.expect("data");
        let data_at = started.elapsed();
        let mut rest = Vec::new();
        conn.read_to_end(&mut rest).await.expect("close");
        let closed_at = started.elapsed();
        assert!(
            data_at < Duration::from_millis(100),
            "data at once: {data_at:?}"
        );
        assert!(
            closed_at >= Duration::from_millis(290) && closed_at <= Duration::from_millis(450),
            "closed after {closed_at:?}; want 300 ms (-10 ms, +150 ms)"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn toxicity_affects_about_that_share_of_connections() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        let mut half = toxic(Direction::Downstream, ToxicKind::LimitData { bytes: 0 });
        half.toxicity = 0.5;
        hop.proxy.add_toxic(half).expect("add");
        let mut affected = 0;
        for _ in 0..200 {
            let mut conn = connect(hop.proxy.listen_addr()).await;
            conn.write_all(b"?").await.expect("write");
            let mut buf = [0u8; 1];
            // Affected connections close on their first downstream byte.
            match conn.read(&mut buf).await {
                Ok(1) => {}
                Ok(_) | Err(_) => affected += 1,
            }
        }
        assert!(
            (80..=120).contains(&affected),
            "toxicity 0.5 affected {affected} of 200 connections; want 40–60%"
        );
    })
    .await
    .expect("test timed out");
}

/// A record of the numbered stream: its number, as 4 big-endian bytes.
const RECORD: usize = 4;

#[tokio::test]
async fn a_toxic_added_and_removed_mid_connection_acts_live_and_loses_nothing() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        let conn = connect(hop.proxy.listen_addr()).await;
        let (mut r, mut w) = conn.into_split();
        let sent_at: Arc<Mutex<Vec<Instant>>> = Arc::default();
        let t0 = Instant::now();

        // One record every 10 ms for 1.5 s.
        let stamps = Arc::clone(&sent_at);
        let writer = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            for seq in 0..150u32 {
                tick.tick().await;
                stamps.lock().expect("stamps").push(Instant::now());
                w.write_all(&seq.to_be_bytes()).await.expect("write");
            }
            w.shutdown().await.expect("half-close");
        });
        let proxy = hop.proxy.clone();
        let switcher = tokio::spawn(async move {
            tokio::time::sleep_until((t0 + Duration::from_millis(400)).into()).await;
            proxy
                .add_toxic(toxic(Direction::Downstream, latency(100)))
                .expect("add mid-connection");
            tokio::time::sleep_until((t0 + Duration::from_millis(1000)).into()).await;
            proxy
                .remove_toxic("latency_downstream")
                .expect("remove mid-connection");
        });

        // (sequence number, round trip) of every record, in arrival order.
        let mut seen = Vec::new();
        let mut record = [0u8; RECORD];
        loop {
            match r.read_exact(&mut record).await {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("stream broke after {} records: {e}", seen.len()),
            }
            let seq = u32::from_be_bytes(record);
            let sent = sent_at.lock().expect("stamps")[seq as usize];
            seen.push((seq, sent - t0, sent.elapsed()));
        }
        writer.await.expect("writer");
        switcher.await.expect("switcher");

        let numbers: Vec<u32> = seen.iter().map(|(seq, _, _)| *seq).collect();
        assert_eq!(
            numbers,
            (0..150).collect::<Vec<u32>>(),
            "every record once, in order"
        );
        let window = |from: u64, to: u64| {
            seen.iter()
                .filter(move |(_, at, _)| {
                    *at >= Duration::from_millis(from) && *at < Duration::from_millis(to)
                })
                .map(|(seq, _, rtt)| (*seq, *rtt))
        };
        for (seq, rtt) in window(0, 380).chain(window(1020, 10_000)) {
            assert!(
                rtt < Duration::from_millis(50),
                "record {seq} without the toxic: {rtt:?}"
            );
        }
        // Sent from 420 ms, due before the removal at 1000 ms.
        for (seq, rtt) in window(420, 880) {
            // The timer wheel has millisecond ticks, hence the -2 ms.
            assert!(
                rtt >= Duration::from_millis(98) && rtt < Duration::from_millis(150),
                "record {seq} under 100 ms latency took {rtt:?}; want 100 ms (-2 ms, +50 ms)"
            );
        }
        // In flight at the removal: released then, not after their delay.
        for (seq, rtt) in window(920, 990) {
            let sent = seen[seq as usize].1;
            let arrived = sent + rtt;
            assert!(
                arrived >= Duration::from_millis(995) && arrived < Duration::from_millis(1050),
                "record {seq} (sent at {sent:?}) arrived at {arrived:?}; want at the removal \
                 (1000 ms, -5 ms, +50 ms)"
            );
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn a_disabled_hop_with_toxics_still_closes_its_connections_at_once() {
    tokio::time::timeout(LIMIT, async {
        let hop = hop(echo_server().await, ProxyMode::Tcp).await;
        hop.proxy
            .add_toxic(toxic(Direction::Downstream, latency(1000)))
            .expect("add");
        let mut before = connect(hop.proxy.listen_addr()).await;
        // Connected is not yet admitted: wait for the hop to take it up.
        while hop.proxy.stats().active == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let started = Instant::now();
        hop.proxy.set_enabled(false).expect("disable");
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(1), before.read(&mut buf)).await;
        assert!(
            matches!(read, Ok(Ok(0) | Err(_))),
            "existing closed: {read:?}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(200),
            "at once, not after the latency"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn tcp_toxics_act_on_the_client_side_of_an_http_hop() {
    tokio::time::timeout(LIMIT, async {
        let server = TestBed::always(200);
        let hop = hop(server.addr(), ProxyMode::Http).await;
        let url = format!("http://{}/", hop.proxy.listen_addr());
        assert_eq!(get(&url).await.status, StatusCode::OK);

        hop.proxy
            .add_toxic(toxic(Direction::Downstream, latency(150)))
            .expect("add latency");
        let started = Instant::now();
        assert_eq!(get(&url).await.status, StatusCode::OK);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(150) && took < Duration::from_millis(400),
            "the response came {took:?} after the request; want 150 ms (+250 ms)"
        );

        hop.proxy.reset().expect("reset");
        hop.proxy
            .add_toxic(toxic(
                Direction::Upstream,
                ToxicKind::ResetPeer { timeout: 0 },
            ))
            .expect("add reset_peer");
        let failed = fetch(http::Method::GET, &url).await;
        assert!(
            failed.is_err(),
            "the client connection was reset: {failed:?}"
        );
        assert_eq!(
            hop.proxy.stats().requests,
            2,
            "the reset request never reached upstream"
        );
    })
    .await
    .expect("test timed out");
}
