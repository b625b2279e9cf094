//! The HTTP-mode proxy (`mode: http`) in front of a real loopback JSON
//! server: each HTTP fault, matching, removal on a live keep-alive
//! connection, and seeded reproducibility.
//!
//! Most tests talk over one explicit keep-alive connection
//! ([`Conn`]) so that "the same connection" is a fact, not a pool's choice.

mod rate_limit;
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::get;
use support::{
    bounded, content_length, order, raw_complete_body, raw_exchange, split_response, Conn, Hop,
    Upstream,
};

#[tokio::test]
async fn http_error_with_probability_0_3_fails_30_percent_and_forwards_the_rest() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 7).await;
        hop.add(json!({"name": "flaky", "type": "http_error", "status": 503, "probability": 0.3}));
        let mut conn = hop.connect().await;
        let (mut errors, mut oks) = (0u64, 0u64);
        for _ in 0..400 {
            let fetched = conn.ok("/pay").await;
            match fetched.status {
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(
                        fetched.json(),
                        json!({"error": "injected by faultline", "status": 503})
                    );
                    errors += 1;
                }
                StatusCode::OK => oks += 1,
                other => panic!("unexpected status {other}"),
            }
        }
        let share = errors as f64 / 400.0;
        assert!(
            (0.25..=0.35).contains(&share),
            "503 share {share:.3}, want 30% ± 5%"
        );
        assert_eq!(
            upstream.requests(),
            oks,
            "injected errors never reach the upstream"
        );
        let stats = hop.proxy.stats();
        assert_eq!(stats.requests, oks, "requests forwarded upstream");
        assert_eq!(stats.http_faults_applied, errors);
        eprintln!("503 share over 400 requests: {share:.3}");
    })
    .await;
}

#[tokio::test]
async fn http_error_sets_retry_after_and_a_custom_body() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(json!({"name": "busy", "type": "http_error", "status": 429,
                       "retry_after": 3, "body": "slow down"}));
        let fetched = get(&hop.url("/pay")).await;
        assert_eq!(fetched.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(fetched.headers["retry-after"], "3");
        assert_eq!(fetched.headers[CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(fetched.body, "slow down");
        assert_eq!(upstream.requests(), 0);
    })
    .await;
}

#[tokio::test]
async fn a_path_match_limits_the_fault_to_matching_paths() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(json!({"name": "pay", "type": "http_error", "status": 503,
                       "match": {"path": "/pay*"}}));
        let mut conn = hop.connect().await;
        for path in ["/pay", "/payments/42", "/pay/x?y=1"] {
            assert_eq!(
                conn.ok(path).await.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{path}"
            );
        }
        for path in ["/health", "/checkout", "/api/pay"] {
            let fetched = conn.ok(path).await;
            assert_eq!(fetched.status, StatusCode::OK, "{path}");
            assert_eq!(
                fetched.json()["email"],
                "ada@example.com",
                "{path} untouched"
            );
        }
        assert_eq!(upstream.requests(), 3);
    })
    .await;
}

#[tokio::test]
async fn a_header_match_targets_one_user() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(
            json!({"name": "alice-only", "type": "http_error", "status": 500,
                       "match": {"headers": {"x-user": "alice"}}}),
        );
        let mut conn = hop.connect().await;
        for _ in 0..5 {
            let alice = conn
                .get("/pay", &[("X-User", "alice")])
                .await
                .expect("alice");
            assert_eq!(alice.status, StatusCode::INTERNAL_SERVER_ERROR);
            let bob = conn.get("/pay", &[("X-User", "bob")]).await.expect("bob");
            assert_eq!(bob.status, StatusCode::OK);
            assert_eq!(
                conn.ok("/pay").await.status,
                StatusCode::OK,
                "no header, no fault"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn http_delay_adds_its_delay_to_each_request() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let mut conn = hop.connect().await;
        conn.ok("/warm-up").await;
        async fn mean_of_5(conn: &mut Conn) -> Duration {
            let start = Instant::now();
            for _ in 0..5 {
                assert_eq!(conn.ok("/pay").await.status, StatusCode::OK);
            }
            start.elapsed() / 5
        }
        let baseline = mean_of_5(&mut conn).await;
        hop.add(json!({"name": "slow", "type": "http_delay", "delay": 100}));
        let delayed = mean_of_5(&mut conn).await;
        let added = delayed.saturating_sub(baseline);
        eprintln!("baseline {baseline:?}, delayed {delayed:?}, added {added:?}");
        assert!(
            added >= Duration::from_millis(90) && added <= Duration::from_millis(110),
            "a 100 ms delay added {added:?} (baseline {baseline:?}), want 100 ms ± 10 ms"
        );
    })
    .await;
}

#[tokio::test]
async fn abort_before_response_closes_the_connection_without_a_response() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(json!({"name": "gone", "type": "abort", "when": "before_response"}));
        let raw = raw_exchange(hop.proxy.listen_addr(), "/pay").await;
        assert!(
            raw.is_empty(),
            "no byte of a response: {:?}",
            String::from_utf8_lossy(&raw)
        );

        let mut conn = hop.connect().await;
        let err = conn.get("/pay", &[]).await.expect_err("no response");
        assert!(err.contains("request"), "the request itself failed: {err}");
        assert_eq!(upstream.requests(), 0, "the upstream is never called");
        assert_eq!(hop.proxy.stats().http_faults_applied, 2);
    })
    .await;
}

#[tokio::test]
async fn abort_mid_body_sends_the_head_and_half_the_body_then_closes() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let addr = hop.proxy.listen_addr();
        let intact = [
            raw_complete_body(addr, "/pay").await,
            raw_complete_body(addr, "/big").await,
        ];
        hop.add(json!({"name": "half", "type": "abort", "when": "mid_body"}));

        for (path, intact) in ["/pay", "/big"].into_iter().zip(intact) {
            let raw = raw_exchange(addr, path).await;
            let (head, body) = split_response(&raw);
            assert!(head.starts_with("http/1.1 200 ok"), "{path}: {head}");
            let announced: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length: "))
                .expect("a Content-Length is announced")
                .parse()
                .expect("a number");
            assert_eq!(
                announced,
                intact.len(),
                "{path}: the full length is announced"
            );
            assert_eq!(
                body.len(),
                intact.len() / 2,
                "{path}: half the body arrived"
            );
            assert!(
                body == &intact[..intact.len() / 2],
                "{path}: the first half"
            );
        }

        let mut conn = hop.connect().await;
        let err = conn.get("/pay", &[]).await.expect_err("the body breaks");
        assert!(err.starts_with("body after 200 OK"), "{err}");
    })
    .await;
}

#[tokio::test]
async fn abort_mid_body_of_an_empty_body_sends_it_whole_and_closes() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(json!({"name": "half", "type": "abort", "when": "mid_body"}));
        // `raw_exchange` reads to EOF: it returns only if the hop closes.
        let raw = raw_exchange(hop.proxy.listen_addr(), "/empty").await;
        let (head, body) = split_response(&raw);
        assert!(head.starts_with("http/1.1 200 ok"), "{head}");
        assert!(head.contains("content-length: 0"), "{head}");
        assert!(head.contains("connection: close"), "{head}");
        assert!(body.is_empty());
    })
    .await;
}

#[tokio::test]
async fn body_faults_leave_head_responses_alone() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let mut conn = hop.connect().await;
        // The fixture echoes the method, so a HEAD's length is its own.
        let unfaulted = conn.send(Method::HEAD, "/pay", &[]).await.expect("HEAD");
        let full = content_length(&unfaulted);
        hop.add(json!({"name": "cut", "type": "corrupt", "mode": "truncate"}));
        hop.add(json!({"name": "half", "type": "abort", "when": "mid_body"}));
        for _ in 0..2 {
            let head = conn
                .send(Method::HEAD, "/pay", &[])
                .await
                .expect("HEAD answered");
            assert_eq!(head.status, StatusCode::OK);
            assert_eq!(content_length(&head), full, "the real length");
            assert!(head.body.is_empty());
        }
    })
    .await;
}

#[tokio::test]
async fn corrupt_null_fields_nulls_the_listed_fields_and_keeps_the_rest() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(
            json!({"name": "no-email", "type": "corrupt", "mode": "null_fields",
                       "fields": ["email", "payment.email"]}),
        );
        let mut conn = hop.connect().await;
        let fetched = conn.ok("/pay").await;
        assert_eq!(fetched.status, StatusCode::OK);
        assert_eq!(
            content_length(&fetched),
            fetched.body.len(),
            "Content-Length updated"
        );
        let mut got = fetched.json();
        assert_eq!(got["email"], Value::Null);
        assert_eq!(got["payment"]["email"], Value::Null);
        got.as_object_mut().expect("object").remove("seen");
        let mut want = order();
        want["email"] = Value::Null;
        want["payment"]["email"] = Value::Null;
        assert_eq!(got, want, "every other field intact");
    })
    .await;
}

#[tokio::test]
async fn corrupt_truncate_returns_half_the_body_with_a_matching_length() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let mut conn = hop.connect().await;
        let intact = conn.ok("/pay").await.body;
        hop.add(json!({"name": "cut", "type": "corrupt", "mode": "truncate"}));
        let cut = conn.ok("/pay").await;
        assert_eq!(cut.body, intact.slice(..intact.len() / 2));
        assert_eq!(content_length(&cut), intact.len() / 2);
        // The response was complete, so the connection is still usable.
        hop.remove("cut");
        assert_eq!(conn.ok("/pay").await.body, intact);
    })
    .await;
}

#[tokio::test]
async fn corrupt_flip_bytes_changes_a_few_bytes_and_keeps_the_length() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let mut conn = hop.connect().await;
        let intact = conn.ok("/pay").await.body;
        hop.add(json!({"name": "flip", "type": "corrupt", "mode": "flip_bytes"}));
        let flipped = conn.ok("/pay").await.body;
        assert_eq!(flipped.len(), intact.len());
        let changed = intact
            .iter()
            .zip(flipped.iter())
            .filter(|(a, b)| a != b)
            .count();
        assert!((1..=8).contains(&changed), "{changed} bytes changed");
    })
    .await;
}

#[tokio::test]
async fn removing_a_fault_restores_the_same_keep_alive_connection() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let mut conn = hop.connect().await;
        assert_eq!(conn.ok("/pay").await.status, StatusCode::OK);
        hop.add(json!({"name": "down", "type": "http_error", "status": 503}));
        assert_eq!(
            conn.ok("/pay").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        hop.remove("down");
        let fetched = conn.ok("/pay").await;
        assert_eq!(fetched.status, StatusCode::OK);
        assert_eq!(fetched.json()["email"], "ada@example.com");
        assert_eq!(hop.proxy.stats().accepted, 1, "one connection throughout");
    })
    .await;
}

#[tokio::test]
async fn the_same_seed_affects_the_same_requests() {
    bounded(async {
        let upstream = Upstream::start().await;
        async fn pattern(upstream: SocketAddr, seed: u64) -> Vec<bool> {
            let hop = Hop::start(upstream, seed).await;
            hop.add(json!({"name": "flaky", "type": "http_error", "status": 503,
                           "probability": 0.5}));
            hop.add(
                json!({"name": "slow", "type": "http_delay", "delay": 0, "jitter": 2,
                           "match": {"path": "/slow"}}),
            );
            let mut conn = hop.connect().await;
            let mut hits = Vec::new();
            for i in 0..60 {
                let path = if i % 3 == 0 { "/slow" } else { "/pay" };
                hits.push(conn.ok(path).await.status == StatusCode::SERVICE_UNAVAILABLE);
            }
            hits
        }
        let first = pattern(upstream.addr, 11).await;
        assert_eq!(
            first,
            pattern(upstream.addr, 11).await,
            "same seed, same requests"
        );
        assert_ne!(
            first,
            pattern(upstream.addr, 12).await,
            "another seed, others"
        );
    })
    .await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded_and_host_is_kept() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let mut conn = hop.connect().await;
        let fetched = conn
            .get(
                "/pay",
                &[
                    ("Connection", "keep-alive, X-Session"),
                    ("X-Session", "secret"),
                    ("Keep-Alive", "timeout=5"),
                    ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
                    ("TE", "trailers"),
                    ("X-User", "alice"),
                ],
            )
            .await
            .expect("forwarded");
        let seen = &fetched.json()["seen"]["headers"];
        assert_eq!(seen["host"], "payments.test", "Host kept: {seen}");
        assert_eq!(seen["x-user"], "alice", "end-to-end headers kept: {seen}");
        for dropped in [
            "connection",
            "x-session",
            "keep-alive",
            "proxy-authorization",
            "te",
        ] {
            assert!(seen.get(dropped).is_none(), "{dropped} forwarded: {seen}");
        }
        // And the connection is still alive for the next request.
        assert_eq!(conn.ok("/pay").await.status, StatusCode::OK);
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_with_a_json_reason() {
    bounded(async {
        // Bind and drop: a port with (almost certainly) nobody listening.
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr")
        };
        let hop = Hop::start(dead, 1).await;
        let fetched = get(&hop.url("/pay")).await;
        assert_eq!(fetched.status, StatusCode::BAD_GATEWAY);
        let body = fetched.json();
        assert_eq!(body["status"], 502);
        assert_eq!(body["upstream"], dead.to_string());
        assert!(
            body["error"]
                .as_str()
                .is_some_and(|e| e.contains("upstream")),
            "{body}"
        );
        let stats = hop.proxy.stats();
        assert_eq!(stats.requests, 1, "the request was forwarded (and failed)");
        assert_eq!(stats.upstream_failures, 1);
    })
    .await;
}

#[tokio::test]
async fn request_bodies_are_streamed_to_the_upstream() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        let stream = TcpStream::connect(hop.proxy.listen_addr())
            .await
            .expect("connect");
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(conn);
        let body = Bytes::from(vec![b'x'; 100_000]);
        let request = Request::post("/pay")
            .header("host", "payments.test")
            .body(Full::new(body))
            .expect("request");
        let response: Response<hyper::body::Incoming> =
            sender.send_request(request).await.expect("response");
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let seen: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(seen["seen"]["method"], "POST");
        assert_eq!(seen["seen"]["body_len"], 100_000);
    })
    .await;
}

#[tokio::test]
async fn stopping_the_hop_cuts_a_long_injected_delay_short() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(json!({"name": "stuck", "type": "http_delay", "delay": 60_000}));
        let mut conn = hop.connect().await;
        let pending = tokio::spawn(async move { conn.get("/pay", &[]).await });
        while hop.proxy.stats().http_faults_applied == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let start = Instant::now();
        hop.stop().await;
        let took = start.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "stopped in {took:?}, want < 500 ms"
        );
        let outcome = pending.await.expect("client task");
        assert!(
            outcome.is_err(),
            "no response: {:?}",
            outcome.map(|f| f.status)
        );
        assert_eq!(upstream.requests(), 0);
    })
    .await;
}

// Needs the listener to call `HttpState::shutdown` when the hop stops
// (helper A); run with `--ignored` until then.
#[tokio::test]
async fn stopping_the_hop_closes_its_pooled_upstream_connections() {
    bounded(async {
        // A hand-written upstream, to see its one connection close.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                socket.read_exact(&mut byte).await.expect("request head");
                head.push(byte[0]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .expect("answer");
            // Keep-alive: the hop pools this connection until it stops.
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest).await;
            let _ = closed_tx.send(());
        });
        let hop = Hop::start(addr, 1).await;
        assert_eq!(get(&hop.url("/pay")).await.body, "ok");
        hop.stop().await;
        tokio::time::timeout(Duration::from_secs(2), closed_rx)
            .await
            .expect("the pooled upstream connection closed when the hop stopped")
            .expect("upstream task");
    })
    .await;
}
