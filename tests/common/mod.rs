//! Test support shared by every area of the integration tests.
//!
//! [`TestBed`] starts a real HTTP server on 127.0.0.1 port 0 with a scripted
//! behaviour (fixed delay, exact error fraction, one stall, fixed status) and
//! stops it when dropped. It is built on the demo's `serve` loop, so fixtures
//! and the demo speak HTTP the same way.

// Each test area uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faultline::demo::server;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Taken by tests that burn CPU (stress children, a headless browser) or
/// measure CPU use, so that on a 2-core machine they do not skew each other.
pub static CPU_HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Fixture bodies are tiny; anything bigger is drained up to here.
const BODY_LIMIT: usize = 1024 * 1024;

/// How a fixture answers one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub delay: Duration,
}

impl Reply {
    pub fn now(status: u16) -> Reply {
        Reply {
            status,
            delay: Duration::ZERO,
        }
    }
}

/// A loopback HTTP fixture server; stops (cancels its token) on drop.
pub struct TestBed {
    addr: SocketAddr,
    requests: Arc<AtomicU64>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl TestBed {
    /// Every request answered 200 after exactly `delay`.
    pub fn fixed_delay(delay: Duration) -> TestBed {
        TestBed::scripted(move |_| Reply { status: 200, delay })
    }

    /// Exactly `fraction` of requests answered 503, spread evenly and
    /// deterministically: request `n` fails when `n * fraction` crosses an
    /// integer, so 0.3 fails exactly 3 of every 10 consecutive requests.
    /// `seed` shifts where in the cycle the failures fall.
    pub fn error_fraction(fraction: f64, seed: u64) -> TestBed {
        let per_million = (fraction.clamp(0.0, 1.0) * 1e6).round() as u64;
        TestBed::scripted(move |n| {
            let fails = fails_at(n.wrapping_add(seed), per_million);
            Reply::now(if fails { 503 } else { 200 })
        })
    }

    /// Answers 200 at once, except request number `after_n` (1-based), which
    /// is held for `stall` first: a server that hangs once.
    pub fn stall_once(after_n: u64, stall: Duration) -> TestBed {
        TestBed::scripted(move |n| Reply {
            status: 200,
            delay: if n == after_n { stall } else { Duration::ZERO },
        })
    }

    /// Every request answered `status` at once.
    pub fn always(status: u16) -> TestBed {
        TestBed::scripted(move |_| Reply::now(status))
    }

    /// The general form: `script(n)` decides the reply to request `n` (1-based).
    ///
    /// Synchronous so fixtures read as one line; must run inside a tokio runtime.
    pub fn scripted(script: impl Fn(u64) -> Reply + Send + Sync + 'static) -> TestBed {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        std_listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let addr = std_listener.local_addr().expect("read the bound address");
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .expect("TestBed must be created inside a tokio runtime");

        let requests = Arc::new(AtomicU64::new(0));
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let counter = Arc::clone(&requests);
        let script = Arc::new(script);
        server::spawn(
            listener,
            move |req: Request<hyper::body::Incoming>| {
                let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let reply = script(n);
                async move {
                    let _ = server::read_body(req.into_body(), BODY_LIMIT).await;
                    if !reply.delay.is_zero() {
                        tokio::time::sleep(reply.delay).await;
                    }
                    let status = StatusCode::from_u16(reply.status)
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    server::json(status, &serde_json::json!({ "request": n }))
                }
            },
            shutdown.clone(),
            &tracker,
        );
        TestBed {
            addr,
            requests,
            shutdown,
            tracker,
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received so far (counted on arrival, before any delay).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// The live counter behind [`TestBed::requests`], to share with other tasks.
    pub fn request_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.requests)
    }

    /// Stops the server and waits until its every task has finished.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }
}

impl Drop for TestBed {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Whether request `n` is one of the failures at `per_million` parts per million.
fn fails_at(n: u64, per_million: u64) -> bool {
    // Integer arithmetic: with floats, 0.3 * 10 need not be exactly 3.
    let crossed = |k: u64| (k as u128 * per_million as u128) / 1_000_000;
    n > 0 && crossed(n) > crossed(n - 1)
}

/// A response read to the end.
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Fetched {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("response body is JSON")
    }
}

/// Sends one request on a fresh connection and reads the whole response.
pub async fn fetch(method: Method, url: &str) -> Result<Fetched, String> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let response = client
        .request(request)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Fetched {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// `GET url`, panicking with the cause if no response arrives.
pub async fn get(url: &str) -> Fetched {
    fetch(Method::GET, url)
        .await
        .unwrap_or_else(|e| panic!("GET {url} failed: {e}"))
}

mod self_test {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(10);

    #[test]
    fn thirty_percent_is_exactly_three_in_every_ten() {
        for seed in 0..10 {
            for window in 0..5u64 {
                let failures = (1..=10)
                    .filter(|i| fails_at(window * 10 + i + seed, 300_000))
                    .count();
                assert_eq!(failures, 3, "seed {seed}, window {window}");
            }
        }
    }

    #[tokio::test]
    async fn error_fraction_answers_503_for_exactly_that_fraction() {
        tokio::time::timeout(LIMIT, async {
            let bed = TestBed::error_fraction(0.3, 0);
            let mut failures = 0;
            for _ in 0..20 {
                if get(&bed.url()).await.status == StatusCode::SERVICE_UNAVAILABLE {
                    failures += 1;
                }
            }
            assert_eq!(failures, 6);
            assert_eq!(bed.requests(), 20);
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn stall_once_holds_only_the_chosen_request() {
        tokio::time::timeout(LIMIT, async {
            let bed = TestBed::stall_once(2, Duration::from_millis(300));
            let mut took = Vec::new();
            for _ in 0..3 {
                let start = std::time::Instant::now();
                assert_eq!(get(&bed.url()).await.status, StatusCode::OK);
                took.push(start.elapsed());
            }
            assert!(took[1] >= Duration::from_millis(300), "stalled: {took:?}");
            assert!(took[0] < Duration::from_millis(250), "fast: {took:?}");
            assert!(took[2] < Duration::from_millis(250), "fast: {took:?}");
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn always_and_fixed_delay_answer_as_told_and_stop() {
        tokio::time::timeout(LIMIT, async {
            let teapot = TestBed::always(418);
            assert_eq!(get(&teapot.url()).await.status.as_u16(), 418);

            let slow = TestBed::fixed_delay(Duration::from_millis(100));
            let start = std::time::Instant::now();
            assert_eq!(get(&slow.url()).await.status, StatusCode::OK);
            assert!(start.elapsed() >= Duration::from_millis(100));

            let addr = slow.addr();
            slow.stop().await;
            assert!(
                tokio::net::TcpStream::connect(addr).await.is_err(),
                "port closed after stop"
            );
        })
        .await
        .expect("test timed out");
    }
}

/// Waits for a child process to exit, bounded; its exit code (-1 when killed
/// by a signal).
pub async fn wait_exit(mut child: std::process::Child, limit: Duration) -> i32 {
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll") {
            return status.code().unwrap_or(-1);
        }
        assert!(
            start.elapsed() < limit,
            "the process did not exit within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether `pid` is a live process (a zombie, state Z, is not).
pub fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; its state is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Live processes whose command line contains `fragment`: how tests check
/// that what faultline started is gone (a port check could see another
/// test's server on a reused port).
pub fn processes_with(fragment: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(fragment)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// One request on a fresh blocking connection whose write side is shut
/// down right after the request is sent, as `curl`-like tools and scripts
/// using `shutdown(SHUT_WR)` do. Returns the status and the body, checked
/// against `Content-Length`, or why no whole response arrived.
pub fn half_closed_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Vec<u8>), String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut bytes = request.into_bytes();
    bytes.extend_from_slice(body);
    stream
        .write_all(&bytes)
        .map_err(|e| format!("write: {e}"))?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(|e| format!("shutdown: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e} after {} bytes", response.len()))?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no complete head in {} bytes", response.len()))?;
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let payload = response[split + 4..].to_vec();
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    let declared = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse::<usize>().ok())?
    });
    match declared {
        Some(n) if n != payload.len() => Err(format!(
            "status {status}: body of {} bytes, Content-Length {n}",
            payload.len()
        )),
        _ => Ok((status, payload)),
    }
}
