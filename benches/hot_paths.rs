//! Micro-benchmarks of faultline's hot paths, on the standard library only
//! (a small timing loop, no criterion: `cargo clippy --all-targets` builds
//! this file in CI, and compile time matters).
//!
//! ```sh
//! cargo bench --bench hot_paths            # every bench
//! cargo bench --bench hot_paths -- proxy   # the ones whose name contains `proxy`
//! ```
//!
//! Each bench runs its body in batches until about half a second has passed
//! and prints the median time per operation over the batches. Not part of
//! `cargo test` (a `harness = false` bench only runs under `cargo bench`).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faultline::config::model::RateShape;
use faultline::load::Schedule;
use faultline::metrics::LatencyHistogram;
use faultline::proxy::spec::{Direction, Distribution, ToxicKind, ToxicSpec};
use faultline::proxy::{Proxy, ProxyConfig, ProxyMode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long each bench samples.
const BUDGET: Duration = Duration::from_millis(500);

fn main() {
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    println!("{:<44} {:>14} {:>16}", "bench", "per op", "ops/s");

    if wanted("histogram_record") {
        let mut h = LatencyHistogram::new();
        let mut x = 1u64;
        bench("histogram_record", 10_000, || {
            // A cheap pseudo-random latency between 1 µs and ~65 ms.
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h.record(Duration::from_micros((x >> 48) + 1));
        });
        black_box(h.len());
    }
    if wanted("histogram_merge") {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for us in 1..50_000u64 {
            b.record(Duration::from_micros(us * 7));
        }
        bench("histogram_merge (window into phase)", 10, || a.merge(&b));
    }
    if wanted("schedule") {
        let constant = Schedule::new(RateShape::Constant(20_000.0));
        let ramp = Schedule::new(RateShape::Ramp {
            from: 100.0,
            to: 20_000.0,
            over: Duration::from_secs(60),
        });
        let mut i = 0u64;
        bench("schedule_offset constant", 10_000, || {
            i += 1;
            black_box(constant.offset(black_box(i)));
        });
        let mut i = 0u64;
        bench("schedule_offset ramp", 10_000, || {
            i += 1;
            black_box(ramp.offset(black_box(i)));
        });
    }
    if wanted("proxy") {
        proxy_benches();
    }
}

/// Runs `op` in batches of `batch` until [`BUDGET`] is spent; prints the
/// median time per operation.
fn bench(name: &str, batch: u32, mut op: impl FnMut()) {
    let mut per_op = Vec::new();
    let start = Instant::now();
    while start.elapsed() < BUDGET || per_op.len() < 5 {
        let t = Instant::now();
        for _ in 0..batch {
            op();
        }
        per_op.push(t.elapsed().as_secs_f64() / f64::from(batch));
    }
    print_median(name, per_op, "ns", 1e9);
}

/// The proxy's copy loop: 64-byte request/response round trips on one
/// keep-alive connection through a hop, without a toxic, with a 0 ms
/// latency toxic (the toxic pipeline's own cost) and directly (the loopback
/// baseline the hop adds to).
/// Prints one row: the median of `per_op` (seconds per operation) in `unit`
/// (`scale` units per second), and the operations per second it means.
fn print_median(name: &str, mut per_op: Vec<f64>, unit: &str, scale: f64) {
    per_op.sort_by(f64::total_cmp);
    let median = per_op[per_op.len() / 2];
    println!(
        "{:<44} {:>11.1} {unit} {:>16.0}",
        name,
        median * scale,
        1.0 / median
    );
}

fn proxy_benches() {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proxy benches skipped: no runtime: {e}");
            return;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let Ok(upstream) = echo_server(shutdown.clone()).await else {
            eprintln!("proxy benches skipped: cannot listen on 127.0.0.1");
            return;
        };
        let config = ProxyConfig {
            name: "bench".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream,
            mode: ProxyMode::Tcp,
            seed: 1,
        };
        let Ok(proxy) = Proxy::start(config, shutdown.clone(), &tracker).await else {
            eprintln!("proxy benches skipped: the proxy did not start");
            return;
        };
        round_trips("loopback round trip, direct", upstream).await;
        round_trips("proxy round trip, no toxic", proxy.listen_addr()).await;
        let toxic = ToxicSpec {
            name: "lag".into(),
            stream: Direction::Downstream,
            toxicity: 1.0,
            kind: ToxicKind::Latency {
                latency: 0,
                jitter: 0,
                distribution: Distribution::Uniform,
            },
        };
        if proxy.add_toxic(toxic).is_ok() {
            round_trips("proxy round trip, 0 ms latency toxic", proxy.listen_addr()).await;
        }
        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    });
}

/// Times 64-byte ping-pongs to `addr` for [`BUDGET`]; prints the median of
/// batches of 200.
async fn round_trips(name: &str, addr: SocketAddr) {
    let Ok(mut conn) = TcpStream::connect(addr).await else {
        eprintln!("{name}: cannot connect");
        return;
    };
    let _ = conn.set_nodelay(true);
    let ping = [7u8; 64];
    let mut pong = [0u8; 64];
    let mut per_op = Vec::new();
    let start = Instant::now();
    while start.elapsed() < BUDGET || per_op.len() < 5 {
        let t = Instant::now();
        for _ in 0..200 {
            if conn.write_all(&ping).await.is_err() || conn.read_exact(&mut pong).await.is_err() {
                eprintln!("{name}: the connection broke");
                return;
            }
        }
        per_op.push(t.elapsed().as_secs_f64() / 200.0);
    }
    print_median(name, per_op, "µs", 1e6);
}

/// A TCP echo server on 127.0.0.1 until `shutdown`.
async fn echo_server(shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let Ok((mut stream, _)) = accepted else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let stop = shutdown.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = tokio::select! {
                        _ = stop.cancelled() => return,
                        n = stream.read(&mut buf) => n,
                    };
                    match n {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}
