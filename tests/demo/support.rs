//! A started demo system with a keep-alive client, stopped when dropped.
//!
//! Timing assertions (fast failures in milliseconds) need a client that
//! does not pay a TCP handshake per request, so [`Demo`] keeps one pooled
//! client; every request it sends is bounded by a timeout.

use std::time::{Duration, Instant};

use bytes::Bytes;
use faultline::config::model::DemoOptions;
use faultline::demo::DemoSystem;
use faultline::proxy::spec::HttpFaultSpec;
use faultline::proxy::Proxy;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio_util::sync::{CancellationToken, DropGuard};

/// One response, read to the end, with how long it took.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub took: Duration,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The version that served it (`x-version`), which every response carries.
    pub fn version(&self) -> &str {
        self.header("x-version")
            .unwrap_or_else(|| panic!("no x-version on {self:?}"))
    }
}

/// A running demo; dropping it cancels the demo's shutdown token.
pub struct Demo {
    pub system: DemoSystem,
    pub shutdown: CancellationToken,
    _stop_on_drop: DropGuard,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Demo {
    /// Starts a demo with `opts` and seed 42.
    pub async fn start(opts: DemoOptions) -> Demo {
        let shutdown = CancellationToken::new();
        let system = DemoSystem::start(&opts, 42, shutdown.clone())
            .await
            .expect("demo starts");
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Demo {
            system,
            _stop_on_drop: shutdown.clone().drop_guard(),
            shutdown,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Sends `method path` with `body`; `None` if no whole response arrives
    /// within `limit` (or the connection fails).
    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        body: &str,
        limit: Duration,
    ) -> Option<Reply> {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.system.frontend_url()))
            .body(Full::new(Bytes::from(body.to_string())))
            .expect("a valid request");
        let started = Instant::now();
        let exchange = async {
            let response = self.client.request(request).await.ok()?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.ok()?.to_bytes();
            Some(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
                took: started.elapsed(),
            })
        };
        tokio::time::timeout(limit, exchange).await.ok().flatten()
    }

    /// `GET path`, which must answer within 5 s.
    pub async fn get(&self, path: &str) -> Reply {
        self.try_send(Method::GET, path, "", Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("GET {path}: no answer within 5 s"))
    }

    pub async fn checkout(&self) -> Reply {
        self.get("/checkout").await
    }

    /// `PUT /admin/canary` with `body`.
    pub async fn put_canary(&self, body: &str) -> Reply {
        self.try_send(Method::PUT, "/admin/canary", body, Duration::from_secs(5))
            .await
            .expect("PUT /admin/canary answers")
    }

    /// Payments calls a hop has seen: forwarded requests plus requests an
    /// HTTP fault answered in payments' place.
    pub fn hop_calls(hop: &Proxy) -> u64 {
        let stats = hop.stats();
        stats.requests + stats.http_faults_applied
    }

    /// Stops the demo and waits, at most 5 s, for every task.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.system.stopped())
            .await
            .expect("every demo task ends within 5 s of shutdown");
    }
}

/// An HTTP fault answering every payments call with `status`.
pub fn http_error(name: &str, status: u16) -> HttpFaultSpec {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "type": "http_error",
        "status": status,
    }))
    .expect("a valid HTTP fault")
}

/// Polls `condition` every 20 ms until it holds or `limit` passes; returns
/// how long it took, or `None`.
pub async fn within<F, Fut>(limit: Duration, mut condition: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition().await {
            return Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}
