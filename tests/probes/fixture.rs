//! A loopback HTTP server whose every answer the test writes: status,
//! content type and body, decided from the request. Built on faultline's
//! own serve loop (as `common::TestBed` is, which only answers JSON
//! counters); stops on drop.

use std::net::SocketAddr;

use bytes::Bytes;
use faultline::server::{self, HttpResponse};
use http::header::{HeaderValue, CONTENT_TYPE};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Request bodies are drained up to this much.
const BODY_LIMIT: usize = 64 * 1024;

/// One answer: status, content type, body.
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, body: &serde_json::Value) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            content_type: "text/plain; version=0.0.4",
            body: body.into(),
        }
    }
}

/// A loopback server answering as told; stops (cancels its token) on drop.
pub struct Fixture {
    addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Fixture {
    /// Answers every request with `respond(request head)`.
    pub fn start(respond: impl Fn(&Parts) -> Answer + Send + Sync + 'static) -> Fixture {
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        std_listener
            .set_nonblocking(true)
            .expect("make the listener non-blocking");
        let addr = std_listener.local_addr().expect("read the bound address");
        let listener = tokio::net::TcpListener::from_std(std_listener)
            .expect("a Fixture must be started inside a tokio runtime");
        let shutdown = CancellationToken::new();
        let respond = std::sync::Arc::new(respond);
        server::spawn(
            listener,
            move |req: Request<hyper::body::Incoming>| {
                let (parts, body) = req.into_parts();
                let answer = respond(&parts);
                async move {
                    let _ = server::read_body(body, BODY_LIMIT).await;
                    response(answer)
                }
            },
            shutdown.clone(),
            &TaskTracker::new(),
        );
        Fixture { addr, shutdown }
    }

    /// The same JSON answer to every request.
    pub fn json(status: u16, body: serde_json::Value) -> Fixture {
        Fixture::start(move |_| Answer::json(status, &body))
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn response(answer: Answer) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(answer.body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(answer.content_type));
    response
}
