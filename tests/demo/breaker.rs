//! The frontend's circuit breaker against a real payments hop answering 500.

use std::time::{Duration, Instant};

use faultline::config::model::{BreakerOptions, Defect, DemoOptions};
use http::StatusCode;

use super::support::{http_error, within, Demo};

const LIMIT: Duration = Duration::from_secs(30);

/// All checkouts on v1, a breaker that half-opens after `open_for`.
fn opts(open_for: Duration, defects: Vec<Defect>) -> DemoOptions {
    DemoOptions {
        canary_weight: 0.0,
        breaker: BreakerOptions {
            open_for,
            ..BreakerOptions::default()
        },
        defects,
        ..DemoOptions::default()
    }
}

async fn breaker_state(demo: &Demo) -> serde_json::Value {
    demo.get("/admin/breaker").await.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_opens_under_payments_500s_fails_fast_and_closes_after_removal() {
    tokio::time::timeout(LIMIT, async {
        let demo = Demo::start(opts(Duration::from_secs(1), vec![])).await;
        let hop = &demo.system.payments_hop;
        assert_eq!(demo.checkout().await.status, StatusCode::OK, "warm pool");

        hop.add_http_fault(http_error("boom", 500))
            .expect("fault added");
        let mut statuses = Vec::new();
        for _ in 0..6 {
            statuses.push(demo.checkout().await.status.as_u16());
        }
        // Five failed calls (502; a 504 only if the machine stalled for the
        // 1 s payments timeout), then the breaker's 503.
        let failed = statuses[..5].iter().all(|s| *s == 502 || *s == 504);
        assert!(
            failed && statuses[5] == 503,
            "opens after 5 failures: {statuses:?}"
        );

        let calls_before = Demo::hop_calls(hop);
        let mut took = Vec::new();
        for _ in 0..11 {
            let reply = demo.checkout().await;
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
            assert_eq!(reply.header("x-breaker"), Some("open"));
            assert_eq!(reply.version(), "v1");
            let body = reply.json();
            assert_eq!(body["breaker"], "open");
            let reason = body["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains("5 consecutive") && reason.contains("500"),
                "{body}"
            );
            took.push(reply.took);
        }
        took.sort();
        // Tolerance: the frontend answers in microseconds; 5 ms leaves room
        // for a loaded machine's scheduling, and the median ignores one stall.
        assert!(
            took[5] < Duration::from_millis(5),
            "fast failures take well under 5 ms: {took:?}"
        );
        assert_eq!(
            Demo::hop_calls(hop),
            calls_before,
            "payments sees no call while the breaker is open"
        );
        let state = breaker_state(&demo).await;
        assert_eq!(state["state"], "open", "{state}");
        assert_eq!(state["opened_total"], 1, "{state}");
        assert_eq!(state["consecutive_failures"], 5, "{state}");
        assert!(state["last_transition_ms_ago"].is_u64(), "{state}");
        assert_eq!(state["canary"]["state"], "closed", "v2 has its own breaker");

        hop.remove_http_fault("boom").expect("fault removed");
        let removed = Instant::now();
        let closed = within(Duration::from_secs(5), || async {
            let _ = demo.checkout().await;
            breaker_state(&demo).await["state"] == "closed"
        })
        .await;
        let state = breaker_state(&demo).await;
        assert!(closed.is_some(), "closes again after the fault: {state}");
        // open_for (1 s) from the last opening, then three trial calls.
        assert!(
            removed.elapsed() < Duration::from_millis(3_000),
            "closed {:?} after removal",
            removed.elapsed()
        );
        assert_eq!(state["closed_total"], 1, "{state}");
        assert_eq!(state["consecutive_failures"], 0, "{state}");
        let reply = demo.checkout().await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("x-breaker"), None);
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_breaker_payments_500s_never_fail_fast() {
    tokio::time::timeout(LIMIT, async {
        let demo = Demo::start(opts(Duration::from_secs(1), vec![Defect::NoBreaker])).await;
        let hop = &demo.system.payments_hop;
        hop.add_http_fault(http_error("boom", 500))
            .expect("fault added");
        let before = Demo::hop_calls(hop);
        for n in 0..30 {
            let reply = demo.checkout().await;
            assert_eq!(
                reply.status,
                StatusCode::BAD_GATEWAY,
                "checkout {n}: {reply:?}"
            );
            assert_eq!(reply.header("x-breaker"), None);
        }
        assert_eq!(
            Demo::hop_calls(hop) - before,
            30,
            "every call reached the hop"
        );
        let state = breaker_state(&demo).await;
        assert_eq!(state["state"], "closed", "{state}");
        assert_eq!(state["opened_total"], 0, "{state}");
        assert_eq!(state["consecutive_failures"], 30, "{state}");
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_breaker_never_closes_it_fails_fast_long_after_the_fault() {
    tokio::time::timeout(LIMIT, async {
        let open_for = Duration::from_millis(100);
        let demo = Demo::start(opts(open_for, vec![Defect::BreakerNeverCloses])).await;
        let hop = &demo.system.payments_hop;
        hop.add_http_fault(http_error("boom", 500))
            .expect("fault added");
        for _ in 0..5 {
            assert_eq!(demo.checkout().await.status, StatusCode::BAD_GATEWAY);
        }
        hop.remove_http_fault("boom").expect("fault removed");
        // Many times open_for: a healthy breaker would have closed by now.
        tokio::time::sleep(8 * open_for).await;
        for _ in 0..5 {
            let reply = demo.checkout().await;
            assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
            assert_eq!(reply.header("x-breaker"), Some("open"));
            assert!(reply.header("retry-after").is_none(), "it never half-opens");
        }
        assert_eq!(breaker_state(&demo).await["state"], "open");
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}
