//! The canary split, the rollback controller, `/admin/canary` and `/metrics`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::config::model::{Defect, DemoOptions, RollbackOptions};
use http::{Method, StatusCode};

use super::support::{http_error, within, Demo};

const LIMIT: Duration = Duration::from_secs(30);

/// Half the checkouts on the canary, and a controller that acts after 20
/// canary requests, so that tests need little traffic.
fn canary_opts(defects: Vec<Defect>) -> DemoOptions {
    DemoOptions {
        canary_weight: 0.5,
        rollback: RollbackOptions {
            error_rate: 0.05,
            window: Duration::from_secs(10),
            min_requests: 20,
        },
        defects,
        ..DemoOptions::default()
    }
}

/// The defaults with a 5 s payments timeout, so that a stalled machine
/// does not turn a test that expects only 200s into one that sees a 504.
fn patient() -> DemoOptions {
    DemoOptions {
        payments_timeout: Duration::from_secs(5),
        ..DemoOptions::default()
    }
}

/// Sends checkouts from 4 workers until `stop` is set; returns the
/// `(version, status)` of each.
fn background_load(
    demo: &Arc<Demo>,
    stop: &Arc<AtomicBool>,
) -> tokio::task::JoinSet<Vec<(String, u16)>> {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let demo = Arc::clone(demo);
        let stop = Arc::clone(stop);
        workers.spawn(async move {
            let mut seen = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let reply = demo.checkout().await;
                seen.push((reply.version().to_string(), reply.status.as_u16()));
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            seen
        });
    }
    workers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_canary_serves_its_share_of_checkouts_through_its_own_hop() {
    tokio::time::timeout(LIMIT, async {
        let demo = Arc::new(Demo::start(patient()).await);
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let demo = Arc::clone(&demo);
            workers.spawn(async move {
                let mut v2 = 0;
                for _ in 0..125 {
                    let reply = demo.checkout().await;
                    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
                    assert_eq!(reply.json()["version"], reply.version());
                    v2 += usize::from(reply.version() == "v2");
                }
                v2
            });
        }
        let mut v2 = 0;
        while let Some(count) = workers.join_next().await {
            v2 += count.expect("worker");
        }
        // 10% ± 2% of 1000.
        assert!((80..=120).contains(&v2), "v2 served {v2} of 1000");
        let system = &demo.system;
        assert_eq!(system.payments_canary_hop.stats().requests, v2 as u64);
        assert_eq!(system.payments_hop.stats().requests, 1000 - v2 as u64);
        for path in ["/health", "/nope", "/admin/breaker", "/metrics"] {
            assert_eq!(demo.get(path).await.version(), "v1", "{path}");
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_on_the_canary_hop_rolls_the_canary_back_and_a_put_restores_it() {
    tokio::time::timeout(LIMIT, async {
        let demo = Arc::new(Demo::start(canary_opts(vec![])).await);
        let canary_hop = &demo.system.payments_canary_hop;
        canary_hop
            .add_http_fault(http_error("canary-boom", 500))
            .expect("fault added");
        let injected = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = background_load(&demo, &stop);
        let rolled_back = within(Duration::from_secs(5), || async {
            demo.get("/admin/canary").await.json()["rolled_back"] == true
        })
        .await;
        let took = injected.elapsed();
        stop.store(true, Ordering::Relaxed);
        let mut seen = Vec::new();
        while let Some(part) = workers.join_next().await {
            seen.extend(part.expect("worker"));
        }

        let state = demo.get("/admin/canary").await.json();
        assert!(rolled_back.is_some(), "rolled back within 5 s: {state}");
        // 20 canary requests at 50% take well under a second; the
        // controller looks every 250 ms. 3 s allows a loaded machine.
        assert!(took < Duration::from_secs(3), "rolled back after {took:?}");
        assert_eq!(state["weight"], 0.0, "{state}");
        assert!(state["rolled_back_at_ms_ago"].is_u64(), "{state}");
        let reason = state["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("canary error rate"), "{state}");
        assert!(state["canary"]["errors"].as_u64() >= Some(20), "{state}");
        assert!(
            state["canary"]["window_error_rate"].as_f64() > Some(0.05),
            "{state}"
        );
        let stable_failures = seen.iter().filter(|(v, s)| v == "v1" && *s != 200).count();
        assert_eq!(stable_failures, 0, "v1 is not hurt by the canary's fault");
        assert!(
            seen.iter().any(|(v, s)| v == "v2" && *s >= 500),
            "v2 failed"
        );
        for _ in 0..20 {
            let reply = demo.checkout().await;
            assert_eq!((reply.version(), reply.status), ("v1", StatusCode::OK));
        }

        canary_hop
            .remove_http_fault("canary-boom")
            .expect("removed");
        // v2's breaker opened under the fault. Promote only once it has
        // half-opened (open_for is 2 s), or the fast failures of a full-weight
        // canary would roll it back again at once.
        let half_open = within(Duration::from_secs(5), || async {
            demo.get("/admin/breaker").await.json()["canary"]["state"] == "half_open"
        })
        .await;
        assert!(half_open.is_some(), "v2's breaker half-opens");
        let restored = demo.put_canary(r#"{"weight": 1}"#).await;
        assert_eq!(restored.status, StatusCode::OK, "{restored:?}");
        let state = restored.json();
        assert_eq!(state["weight"], 1.0, "{state}");
        assert_eq!(state["rolled_back"], false, "{state}");
        assert!(state["rolled_back_at_ms_ago"].is_null() && state["reason"].is_null());
        for _ in 0..10 {
            let reply = demo.checkout().await;
            assert_eq!((reply.version(), reply.status), ("v2", StatusCode::OK));
        }
        assert_eq!(
            demo.get("/admin/breaker").await.json()["canary"]["state"],
            "closed"
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(
            demo.get("/admin/canary").await.json()["rolled_back"],
            false,
            "the errors before the PUT do not roll it back again"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_rollback_a_failing_canary_keeps_its_weight() {
    tokio::time::timeout(LIMIT, async {
        let demo = Arc::new(Demo::start(canary_opts(vec![Defect::NoRollback])).await);
        demo.system
            .payments_canary_hop
            .add_http_fault(http_error("canary-boom", 500))
            .expect("fault added");
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = background_load(&demo, &stop);
        // Until the window holds far more than min_requests, then 1 s more
        // (four controller looks) for it to (not) act.
        let enough = within(Duration::from_secs(10), || async {
            demo.get("/admin/canary").await.json()["canary"]["requests"].as_u64() >= Some(60)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let mut seen = Vec::new();
        while let Some(part) = workers.join_next().await {
            seen.extend(part.expect("worker"));
        }
        let state = demo.get("/admin/canary").await.json();
        assert!(enough.is_some(), "canary traffic flowed: {state}");
        assert_eq!(state["rolled_back"], false, "{state}");
        assert_eq!(state["weight"], 0.5, "{state}");
        assert!(
            state["canary"]["window_error_rate"].as_f64() > Some(0.5),
            "{state}"
        );
        let last: Vec<&(String, u16)> = seen.iter().rev().take(20).collect();
        assert!(
            last.iter().any(|(v, s)| v == "v2" && *s >= 500),
            "v2 still takes (and fails) traffic at the end: {last:?}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_admin_canary_validates_its_body() {
    tokio::time::timeout(LIMIT, async {
        let demo = Demo::start(DemoOptions::default()).await;
        let state = demo.get("/admin/canary").await.json();
        assert_eq!(state["weight"], 0.1, "{state}");
        assert_eq!(state["rolled_back"], false);
        assert!(state["rolled_back_at_ms_ago"].is_null() && state["reason"].is_null());
        assert_eq!(state["canary"]["requests"], 0);

        #[rustfmt::skip]
        let bad = [
            ("not JSON", "half", "expected a JSON body"),
            ("above one", r#"{"weight": 1.5}"#, "between 0 and 1"),
            ("a missing weight", r#"{}"#, "missing field `weight`"),
            ("a string weight", r#"{"weight": "50%"}"#, "expected a JSON body"),
            ("an empty body", "", "expected a JSON body"),
        ];
        for (case, body, message) in bad {
            let reply = demo.put_canary(body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{case}: {reply:?}");
            let error = reply.json()["error"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(error.contains(message), "{case}: {error}");
        }
        let huge = format!(
            r#"{{"weight": 0.5, "pad": "{}"}}"#,
            "x".repeat(2 * 1024 * 1024)
        );
        let reply = demo.put_canary(&huge).await;
        assert_eq!(
            reply.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{:?}",
            reply.status
        );
        let reply = demo
            .try_send(Method::POST, "/admin/canary", "{}", Duration::from_secs(5))
            .await
            .expect("answers");
        assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            demo.get("/admin/canary").await.json()["weight"],
            0.1,
            "unchanged"
        );

        let reply = demo.put_canary(r#"{"weight": 0}"#).await;
        assert_eq!(reply.status, StatusCode::OK);
        for _ in 0..30 {
            assert_eq!(demo.checkout().await.version(), "v1");
        }
        demo.put_canary(r#"{"weight": 1.0}"#).await;
        for _ in 0..30 {
            assert_eq!(demo.checkout().await.version(), "v2");
        }
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}

/// `name{labels} value` → (name, labels, value); panics on anything else.
fn sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
    let (series, value) = line
        .rsplit_once(' ')
        .unwrap_or_else(|| panic!("no value: `{line}`"));
    let value: f64 = value
        .parse()
        .unwrap_or_else(|_| panic!("bad value: `{line}`"));
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => {
            let inner = rest
                .strip_suffix('}')
                .unwrap_or_else(|| panic!("unclosed labels: `{line}`"));
            let labels = inner
                .split(',')
                .map(|pair| {
                    let (k, v) = pair
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad label `{pair}` in `{line}`"));
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or_else(|| panic!("unquoted label value in `{line}`"));
                    (k.to_string(), v.to_string())
                })
                .collect();
            (name, labels)
        }
        None => (series, BTreeMap::new()),
    };
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
    assert!(valid_name, "bad metric name in `{line}`");
    (name.to_string(), labels, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_and_count_only_traffic() {
    tokio::time::timeout(LIMIT, async {
        let demo = Demo::start(patient()).await;
        for _ in 0..20 {
            assert_eq!(demo.checkout().await.status, StatusCode::OK);
        }
        demo.get("/health").await;
        assert_eq!(demo.get("/nope").await.status, StatusCode::NOT_FOUND);
        demo.get("/admin/breaker").await;
        demo.get("/admin/canary").await;
        demo.get("/metrics").await;

        let reply = demo.get("/metrics").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.header("content-type"),
            Some("text/plain; version=0.0.4")
        );
        let text = String::from_utf8(reply.body.to_vec()).expect("UTF-8");
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(comment) = line.strip_prefix('#') {
                assert!(
                    comment.starts_with(" HELP ") || comment.starts_with(" TYPE "),
                    "`{line}`"
                );
                continue;
            }
            samples.push(sample(line));
        }
        let total = |name: &str, label: Option<(&str, &str)>| -> f64 {
            samples
                .iter()
                .filter(|(n, labels, _)| {
                    n == name
                        && label.is_none_or(|(k, v)| labels.get(k).map(String::as_str) == Some(v))
                })
                .map(|(_, _, v)| v)
                .sum()
        };
        assert_eq!(
            total("demo_requests_total", None),
            22.0,
            "20 checkouts, /health, /nope:\n{text}"
        );
        assert_eq!(
            total("demo_requests_total", Some(("status", "404"))),
            1.0,
            "{text}"
        );
        assert_eq!(
            total("demo_requests_total", Some(("version", "v2"))),
            2.0,
            "10% of 20:\n{text}"
        );
        assert_eq!(total("demo_errors_total", None), 0.0, "{text}");
        assert_eq!(total("demo_payments_calls_total", None), 20.0, "{text}");
        assert_eq!(
            total("demo_breaker_state", Some(("version", "v1"))),
            0.0,
            "{text}"
        );
        assert_eq!(
            total("demo_breaker_state", Some(("version", "v2"))),
            0.0,
            "{text}"
        );
        assert_eq!(total("demo_breaker_opened_total", None), 0.0, "{text}");
        assert_eq!(total("demo_canary_weight", None), 0.1, "{text}");
        assert_eq!(total("demo_canary_rolled_back", None), 0.0, "{text}");
        for family in [
            "demo_requests_total",
            "demo_breaker_state",
            "demo_canary_weight",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family}:\n{text}"
            );
        }
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}
