//! Fixtures of the HTTP-mode proxy tests: a JSON upstream that echoes what
//! it received, an HTTP hop in front of it, an explicit keep-alive client
//! connection, and raw-socket helpers for responses hyper would refuse.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use faultline::demo::server;
use faultline::proxy::spec::HttpFaultSpec;
use faultline::proxy::{Proxy, ProxyConfig, ProxyMode};
use http::header::CONTENT_LENGTH;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::common::Fetched;

/// Every test is bounded: a hung proxy fails instead of hanging CI.
pub(super) const LIMIT: Duration = Duration::from_secs(30);

/// Runs `test` under [`LIMIT`].
pub(super) async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("test finished within its time limit");
}

/// `GET /big` adds a string this long: bigger than any buffer on the way.
pub(super) const BIG: usize = 300_000;

/// The JSON every fixture request gets (plus what the fixture saw).
pub(super) fn order() -> Value {
    json!({
        "id": 7,
        "email": "ada@example.com",
        "payment": { "email": "billing@example.com", "amount": 1250 },
        "items": [{ "sku": "tea", "qty": 2 }, { "sku": "cup", "qty": 1 }]
    })
}

/// A loopback upstream answering every request with [`order`] and an echo
/// of what it received (`seen`), plus a [`BIG`] `blob` on `/big`, and with
/// an empty body on `/empty`; counts requests; stops on drop.
pub(super) struct Upstream {
    pub(super) addr: SocketAddr,
    requests: Arc<AtomicU64>,
    shutdown: CancellationToken,
}

impl Upstream {
    pub(super) async fn start() -> Upstream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind upstream");
        let addr = listener.local_addr().expect("upstream address");
        let requests = Arc::new(AtomicU64::new(0));
        let shutdown = CancellationToken::new();
        let counter = Arc::clone(&requests);
        server::spawn(
            listener,
            move |req: Request<hyper::body::Incoming>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    let headers: serde_json::Map<String, Value> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
                        .collect();
                    let method = req.method().to_string();
                    let path = req.uri().path().to_string();
                    let body = server::read_body(req.into_body(), 1 << 20).await;
                    if path == "/empty" {
                        return server::HttpResponse::new(Default::default());
                    }
                    let mut answer = order();
                    if path == "/big" {
                        answer["blob"] = "x".repeat(BIG).into();
                    }
                    answer["seen"] = json!({
                        "method": method, "path": path, "headers": headers,
                        "body_len": body.map(|b| b.len()),
                    });
                    server::json(StatusCode::OK, &answer)
                }
            },
            shutdown.clone(),
            &TaskTracker::new(),
        );
        Upstream {
            addr,
            requests,
            shutdown,
        }
    }

    pub(super) fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An HTTP-mode hop in front of an upstream; stops on drop.
pub(super) struct Hop {
    pub(super) proxy: Proxy,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Hop {
    pub(super) async fn start(upstream: SocketAddr, seed: u64) -> Hop {
        let shutdown = CancellationToken::new();
        let cfg = ProxyConfig {
            name: "payments".into(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            upstream,
            mode: ProxyMode::Http,
            seed,
        };
        let tracker = TaskTracker::new();
        let proxy = Proxy::start(cfg, shutdown.clone(), &tracker)
            .await
            .expect("HTTP hop starts");
        Hop {
            proxy,
            shutdown,
            tracker,
        }
    }

    /// Stops the hop and waits until its every task has finished.
    pub(super) async fn stop(&self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    pub(super) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proxy.listen_addr())
    }

    pub(super) fn add(&self, fault: Value) {
        let spec: HttpFaultSpec = serde_json::from_value(fault).expect("fault JSON");
        self.proxy.add_http_fault(spec).expect("fault added");
    }

    pub(super) fn remove(&self, name: &str) {
        self.proxy.remove_http_fault(name).expect("fault removed");
    }

    pub(super) async fn connect(&self) -> Conn {
        Conn::open(self.proxy.listen_addr()).await
    }
}

impl Drop for Hop {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One client keep-alive connection, driven request by request.
pub(super) struct Conn {
    sender: SendRequest<Empty<Bytes>>,
}

impl Conn {
    pub(super) async fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connect to hop");
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("HTTP handshake");
        tokio::spawn(conn);
        Conn { sender }
    }

    /// `GET path` with `headers`; `Err` when the connection breaks.
    pub(super) async fn get(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Fetched, String> {
        self.send(Method::GET, path, headers).await
    }

    /// `method path` with `headers` and no body; `Err` when the connection breaks.
    pub(super) async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Fetched, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "payments.test");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Empty::new()).map_err(|e| e.to_string())?;
        self.sender
            .ready()
            .await
            .map_err(|e| format!("not ready: {e}"))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("body after {} {:?}: {e}", parts.status, parts.headers))?
            .to_bytes();
        Ok(Fetched {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }

    pub(super) async fn ok(&mut self, path: &str) -> Fetched {
        self.get(path, &[])
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

/// Sends `GET path` on a raw socket and reads everything until the hop closes.
pub(super) async fn raw_exchange(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect to hop");
    let request = format!("GET {path} HTTP/1.1\r\nHost: payments.test\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send request");
    let mut received = Vec::new();
    // A reset after the data is as good as EOF here: the hop broke the connection.
    let _ = stream.read_to_end(&mut received).await;
    received
}

/// Splits a raw response into its head and body.
pub(super) fn split_response(raw: &[u8]) -> (String, &[u8]) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    (
        String::from_utf8_lossy(&raw[..end]).to_lowercase(),
        &raw[end + 4..],
    )
}

pub(super) fn content_length(fetched: &Fetched) -> usize {
    fetched.headers[CONTENT_LENGTH]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("a number")
}

/// The body of a complete `GET path` on a raw socket (`Connection: close`).
pub(super) async fn raw_complete_body(addr: SocketAddr, path: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("connect to hop");
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: payments.test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    split_response(&raw).1.to_vec()
}
