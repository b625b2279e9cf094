//! `faultline proxy`'s admin API: driven by a real Toxiproxy client
//! (`toxiproxy_rust`), by hand-written garbage, and through its guards.
//!
//! Each test runs an [`Admin`] server on its own tokio runtime, so the
//! blocking Toxiproxy client can be called from the test thread; every test
//! body runs under [`within`], a wall-clock limit.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::proxy::api::{serve_admin, AdminAuth};
use faultline::proxy::registry::ProxyRegistry;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::TestBed;

mod bounds;
mod client;
mod guards;
mod lifecycle;

const LIMIT: Duration = Duration::from_secs(30);

/// An admin server on a runtime of its own; stops every proxy on drop.
struct Admin {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    registry: Arc<ProxyRegistry>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Admin {
    fn start(auth: AdminAuth) -> Admin {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build a runtime");
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (addr, registry) = rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind the admin port");
            let addr = listener.local_addr().expect("admin address");
            let registry = Arc::new(ProxyRegistry::new(7, shutdown.clone(), tracker.clone()));
            let (r, s, t) = (Arc::clone(&registry), shutdown.clone(), tracker.clone());
            tracker.spawn(async move { serve_admin(listener, r, auth, s, &t).await });
            (addr, registry)
        });
        Admin {
            rt,
            addr,
            registry,
            shutdown,
            tracker,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A fixture server on this runtime.
    fn bed(&self, make: impl FnOnce() -> TestBed) -> TestBed {
        let _inside = self.rt.enter();
        make()
    }

    /// One admin request (no User-Agent, no token unless given).
    fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
        self.call_with(method, path, body, &[])
    }

    fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = self.url(path);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.rt.block_on(async {
            let mut req = reqwest::Client::new().request(method, &url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(body) = body {
                req = req.body(body);
            }
            let response = tokio::time::timeout(LIMIT, req.send())
                .await
                .expect("admin answered in time")
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            let status = response.status().as_u16();
            let bytes = response.bytes().await.expect("read the body");
            let body = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                    panic!("{url}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
                })
            };
            (status, body)
        })
    }

    fn json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(body.to_string().into_bytes()))
    }

    fn assert_alive(&self) {
        let (status, body) = self.call("GET", "/version", None);
        assert_eq!(status, 200, "still serving /version: {body}");
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let (registry, tracker) = (Arc::clone(&self.registry), self.tracker.clone());
        self.rt.block_on(async move {
            registry.shutdown().await;
            tracker.close();
            let _ = tokio::time::timeout(LIMIT, tracker.wait()).await;
        });
    }
}

/// Runs `test` on its own thread and fails if it takes longer than `limit`
/// (re-raising its panic, if it panicked).
fn within<T: Send + 'static>(limit: Duration, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(test());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => value,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("test timed out after {limit:?}"),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("test thread ended without a result"),
        },
    }
}

/// `GET /` through `addr` on a fresh connection: the status, or why none came.
fn http_get(addr: SocketAddr) -> Result<u16, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP response: {text:?}"))
}

/// The median time of `n` requests through `addr`, each on a new connection.
fn median_latency(addr: SocketAddr, n: usize) -> Duration {
    let mut took: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(http_get(addr), Ok(200));
            start.elapsed()
        })
        .collect();
    took.sort();
    took[n / 2]
}

fn listen_of(proxy: &Value) -> SocketAddr {
    proxy["listen"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("a bound listen address: {proxy}"))
}
