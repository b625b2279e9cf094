//! `rate_limit` on a real HTTP hop in front of a real loopback server: the
//! upstream's own request count is the ground truth for what got through.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use super::support::{bounded, Hop, Upstream};

/// Sends `count` requests evenly over `over` on one keep-alive connection,
/// with `headers`; returns (forwarded 200s, limited answers).
async fn paced(
    hop: &Hop,
    count: u32,
    over: Duration,
    headers: &[(&str, &str)],
) -> (u64, Vec<crate::common::Fetched>) {
    let mut conn = hop.connect().await;
    let start = Instant::now();
    let (mut ok, mut limited) = (0, Vec::new());
    for i in 0..count {
        let due = start + over.mul_f64(f64::from(i) / f64::from(count));
        tokio::time::sleep_until(due.into()).await;
        let fetched = conn.get("/pay", headers).await.expect("exchange");
        match fetched.status {
            StatusCode::OK => ok += 1,
            _ => limited.push(fetched),
        }
    }
    (ok, limited)
}

#[tokio::test]
async fn a_rate_limit_lets_through_its_burst_plus_its_rate_and_answers_429_with_retry_after() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(json!({"name": "gateway", "type": "rate_limit", "rate": 10, "burst": 5}));
        // 40 requests/s for 2 s against a limit of 10/s after a burst of 5.
        let (ok, limited) = paced(&hop, 80, Duration::from_secs(2), &[]).await;
        let through = upstream.requests();
        assert_eq!(
            through, ok,
            "what the upstream saw is what was answered 200"
        );
        // 5 + 10/s × 2 s = 25, give or take the last refill and timer slack.
        assert!(
            (23..=28).contains(&through),
            "{through} requests got through, want about 25"
        );
        assert_eq!(limited.len() as u64, 80 - ok);
        for answer in &limited {
            assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
            assert_eq!(answer.headers["retry-after"], "1", "{:?}", answer.headers);
            let body = String::from_utf8_lossy(&answer.body);
            assert!(body.contains("rate limit exceeded"), "{body}");
        }
        assert_eq!(hop.proxy.stats().http_faults_applied, limited.len() as u64);
        eprintln!(
            "rate_limit 10/s burst 5, 40/s offered for 2 s: {through} through, {} limited",
            limited.len()
        );

        // Under the limit nothing is refused; removing the fault lifts it.
        hop.remove("gateway");
        let (ok, limited) = paced(&hop, 20, Duration::from_millis(200), &[]).await;
        assert_eq!((ok, limited.len()), (20, 0));
    })
    .await;
}

#[tokio::test]
async fn each_key_header_value_gets_its_own_limit() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        hop.add(
            json!({"name": "per-key", "type": "rate_limit", "rate": 1, "burst": 3,
                       "key_header": "x-api-key", "status": 503}),
        );
        let mut conn = hop.connect().await;
        let mut statuses = Vec::new();
        for key in [
            "alice", "alice", "alice", "alice", "bob", "bob", "bob", "bob",
        ] {
            let fetched = conn
                .get("/pay", &[("x-api-key", key)])
                .await
                .expect("exchange");
            statuses.push(fetched.status.as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 503, 200, 200, 200, 503]);
        assert_eq!(upstream.requests(), 6);
    })
    .await;
}

#[tokio::test]
async fn bad_rate_limits_are_refused_by_the_hop() {
    bounded(async {
        let upstream = Upstream::start().await;
        let hop = Hop::start(upstream.addr, 1).await;
        for bad in [
            json!({"name": "a", "type": "rate_limit", "rate": 0}),
            json!({"name": "b", "type": "rate_limit", "rate": 10, "status": 99}),
            json!({"name": "c", "type": "rate_limit", "rate": 10, "key_header": "not a header"}),
        ] {
            let spec: faultline::proxy::spec::HttpFaultSpec =
                serde_json::from_value(bad.clone()).expect("parses");
            assert!(hop.proxy.add_http_fault(spec).is_err(), "{bad}");
        }
        assert!(hop.proxy.http_faults().is_empty());
    })
    .await;
}
