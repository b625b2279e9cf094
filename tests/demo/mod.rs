//! The embedded demo system, driven over real loopback HTTP.
//!
//! This file: the plain request paths and the system's lifecycle. The
//! resilience mechanisms have their own files: `breaker`, `failover`, `canary` (split,
//! rollback, admin API, metrics) and `bulkhead` (the `no_timeout` defect).

mod breaker;
mod bulkhead;
mod canary;
mod failover;
mod support;

use std::time::{Duration, Instant};

use faultline::config::model::DemoOptions;
use faultline::demo::DemoSystem;
use http::{Method, StatusCode};
use tokio_util::sync::CancellationToken;

use crate::common::{fetch, get};

/// Upper bound for every test; the demo answers in milliseconds.
const LIMIT: Duration = Duration::from_secs(15);

/// Every checkout on v1, so that one hop sees all payments calls.
fn stable_only() -> DemoOptions {
    DemoOptions {
        canary_weight: 0.0,
        ..DemoOptions::default()
    }
}

async fn start(opts: DemoOptions) -> (DemoSystem, CancellationToken) {
    let shutdown = CancellationToken::new();
    let demo = DemoSystem::start(&opts, 42, shutdown.clone())
        .await
        .expect("demo starts");
    (demo, shutdown)
}

#[tokio::test]
async fn checkout_returns_a_confirmed_order_paid_through_the_hop() {
    tokio::time::timeout(LIMIT, async {
        let (demo, _shutdown) = start(stable_only()).await;
        let response = get(&format!("{}/checkout", demo.frontend_url())).await;

        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.headers["x-version"], "v1");
        assert_eq!(response.headers["content-type"], "application/json");
        let order = response.json();
        assert_eq!(order["order_id"], 1);
        assert_eq!(order["status"], "confirmed");
        assert_eq!(order["version"], "v1");
        let payment = &order["payment"];
        assert_eq!(payment["amount_cents"], 1299);
        assert_eq!(payment["currency"], "EUR");
        assert_eq!(payment["email"], "customer@example.com");
        assert_eq!(payment["status"], "approved");
        assert!(payment["transaction_id"].is_string());

        let stats = demo.payments_hop.stats();
        assert!(
            stats.accepted >= 1,
            "payment went through the hop: {stats:?}"
        );
        assert!(
            stats.bytes_upstream > 0 && stats.bytes_downstream > 0,
            "{stats:?}"
        );
        let names: Vec<String> = demo
            .proxies()
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        assert_eq!(names, ["payments", "payments-canary"]);
        assert_eq!(demo.payments_hop.upstream(), demo.payments);
        assert_eq!(demo.payments_canary_hop.upstream(), demo.payments);
        assert_eq!(
            demo.payments_canary_hop.stats().accepted,
            0,
            "no v2 traffic"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn order_ids_count_up_and_the_pool_reuses_hop_connections() {
    tokio::time::timeout(LIMIT, async {
        let (demo, _shutdown) = start(stable_only()).await;
        for expected in 1..=5 {
            let order = get(&format!("{}/checkout", demo.frontend_url()))
                .await
                .json();
            assert_eq!(order["order_id"], expected);
        }
        // Sequential calls on a keep-alive pool need one connection.
        assert_eq!(demo.payments_hop.stats().accepted, 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn health_answers_without_calling_payments() {
    tokio::time::timeout(LIMIT, async {
        let (demo, _shutdown) = start(DemoOptions::default()).await;
        let response = get(&format!("{}/health", demo.frontend_url())).await;
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.headers["x-version"], "v1");
        assert_eq!(response.json(), serde_json::json!({ "status": "ok" }));
        assert_eq!(demo.payments_hop.stats().accepted, 0);

        let missing = get(&format!("{}/nope", demo.frontend_url())).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        assert_eq!(missing.headers["x-version"], "v1", "on errors too");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn payments_serves_pay_and_health_directly() {
    tokio::time::timeout(LIMIT, async {
        let (demo, _shutdown) = start(DemoOptions::default()).await;
        let base = format!("http://{}", demo.payments);
        for method in [Method::GET, Method::POST] {
            let paid = fetch(method, &format!("{base}/pay")).await.expect("pay");
            assert_eq!(paid.status, StatusCode::OK);
            assert_eq!(paid.json()["status"], "approved");
        }
        assert_eq!(get(&format!("{base}/health")).await.status, StatusCode::OK);
        assert_eq!(
            get(&format!("{base}/other")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            demo.payments_hop.stats().accepted,
            0,
            "direct calls skip the hop"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn disabled_hop_makes_checkout_fail_fast_with_502() {
    tokio::time::timeout(LIMIT, async {
        // A long payments timeout, so a fast 502 cannot be a timeout in disguise.
        let opts = DemoOptions {
            payments_timeout: Duration::from_secs(10),
            ..stable_only()
        };
        let (demo, _shutdown) = start(opts).await;
        let checkout = format!("{}/checkout", demo.frontend_url());
        assert_eq!(get(&checkout).await.status, StatusCode::OK, "warm pool");

        demo.payments_hop.set_enabled(false).expect("down");
        let started = Instant::now();
        let failed = get(&checkout).await;
        let took = started.elapsed();
        assert_eq!(failed.status, StatusCode::BAD_GATEWAY, "{:?}", failed.body);
        assert_eq!(failed.json()["error"], "payments unreachable");
        assert_eq!(failed.headers["x-version"], "v1");
        assert!(
            took < Duration::from_millis(500),
            "failed fast: took {took:?}"
        );

        demo.payments_hop.set_enabled(true).expect("up again");
        assert_eq!(get(&checkout).await.status, StatusCode::OK, "recovers");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn slow_payments_beyond_the_timeout_gives_504() {
    tokio::time::timeout(LIMIT, async {
        let opts = DemoOptions {
            payments_latency: Duration::from_millis(500),
            payments_timeout: Duration::from_millis(100),
            ..stable_only()
        };
        let (demo, _shutdown) = start(opts).await;
        let started = Instant::now();
        let response = get(&format!("{}/checkout", demo.frontend_url())).await;
        let took = started.elapsed();
        assert_eq!(response.status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(response.json()["timeout_ms"], 100);
        // Tolerance: the timeout itself plus loopback and scheduling slack.
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_millis(450),
            "answered at the timeout, not after payments: {took:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn stopped_waits_for_every_task_and_closes_every_port() {
    tokio::time::timeout(LIMIT, async {
        let (demo, shutdown) = start(DemoOptions::default()).await;
        assert_eq!(
            get(&format!("{}/checkout", demo.frontend_url()))
                .await
                .status,
            StatusCode::OK
        );
        let ports = [
            demo.frontend,
            demo.payments,
            demo.payments_hop.listen_addr(),
            demo.payments_canary_hop.listen_addr(),
        ];

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), demo.stopped())
            .await
            .expect("every demo task finishes within 5 s of cancel");

        for addr in ports {
            assert!(
                tokio::net::TcpStream::connect(addr).await.is_err(),
                "{addr} still accepts connections"
            );
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn describe_lists_the_addresses_and_example_commands() {
    tokio::time::timeout(LIMIT, async {
        let (demo, _shutdown) = start(DemoOptions::default()).await;
        let text = demo.describe();
        assert!(
            text.contains(&format!("curl -i {}/checkout", demo.frontend_url())),
            "{text}"
        );
        for hop in demo.proxies() {
            assert!(text.contains(&hop.listen_addr().to_string()), "{text}");
            assert!(
                text.contains(&format!("(proxy `{}`)", hop.name())),
                "{text}"
            );
        }
        assert!(
            text.contains(&format!("\n  frontend       {}\n", demo.frontend_url())),
            "the line tools parse: {text}"
        );
        assert!(text.contains("canary weight  10% of /checkout"), "{text}");
        assert!(
            text.contains("/admin/breaker") && text.contains("/metrics"),
            "{text}"
        );
        assert!(text.contains(&demo.payments.to_string()), "{text}");
        assert!(text.contains("seed 42"), "{text}");
    })
    .await
    .expect("test timed out");
}
