//! The `prometheus` probe against a real Prometheus scraping a loopback
//! target whose metric value the test sets: real PromQL, real responses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::config::model::CmpOp;
use faultline::config::model_verify::{ProbeKind, PrometheusProbe, ValueCheck};
use faultline::probes::{observe, Observation, ProbeContext};

use super::fixture::{Answer, Fixture};
use super::prometheus_server::{PrometheusServer, JOB};
use super::{closed_port, decl, within};

/// A `/metrics` target whose `demo_errors_ratio` the test sets.
struct Target {
    ratio: Arc<AtomicU64>,
    fixture: Fixture,
}

impl Target {
    fn start(ratio: f64) -> Target {
        let shared = Arc::new(AtomicU64::new(ratio.to_bits()));
        let value = Arc::clone(&shared);
        let fixture = Fixture::start(move |req| {
            if req.uri.path() != "/metrics" {
                return Answer::text(404, "not found\n");
            }
            let ratio = f64::from_bits(value.load(Ordering::SeqCst));
            Answer::text(
                200,
                format!(
                    "# HELP demo_errors_ratio Share of failed requests.\n\
                     # TYPE demo_errors_ratio gauge\n\
                     demo_errors_ratio {ratio}\n"
                ),
            )
        });
        Target {
            ratio: shared,
            fixture,
        }
    }

    fn set(&self, ratio: f64) {
        self.ratio.store(ratio.to_bits(), Ordering::SeqCst);
    }
}

/// Target, Prometheus and the time they took to come up, printed for the log.
async fn start(ratio: f64) -> (Target, PrometheusServer) {
    let target = Target::start(ratio);
    let prometheus = PrometheusServer::start(target.fixture.addr()).await;
    eprintln!(
        "prometheus at {}: ready after {:?}, target scraped after {:?}",
        prometheus.url(),
        prometheus.ready_after,
        prometheus.scraped_after
    );
    (target, prometheus)
}

fn below(bound: f64) -> ValueCheck {
    ValueCheck::Compare {
        op: CmpOp::Lt,
        value: bound,
        source: format!("< {bound}"),
    }
}

async fn query(server: &str, promql: &str, expect: ValueCheck, empty_passes: bool) -> Observation {
    let probe = PrometheusProbe {
        url: server.parse().expect("a URI"),
        query: promql.into(),
        expect,
        empty_passes,
    };
    observe(
        &decl(ProbeKind::Prometheus(probe), Duration::from_secs(5)),
        &ProbeContext::default(),
    )
    .await
}

#[tokio::test]
async fn prometheus_probe_follows_the_scraped_value_through_real_promql() {
    within(async {
        let (target, prometheus) = start(0.02).await;
        let url = prometheus.url();

        let seen = query(url, "max(demo_errors_ratio)", below(0.1), false).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.value.as_deref(), Some("{} 0.02"));
        assert_eq!(seen.reason, "the sample is < 0.1");

        let seen = query(url, "demo_errors_ratio", below(0.1), false).await;
        assert!(seen.passed, "{seen:?}");
        let labelled = format!(
            r#"demo_errors_ratio{{instance="{}", job="{JOB}"}} 0.02"#,
            target.fixture.addr()
        );
        assert_eq!(seen.value.as_deref(), Some(labelled.as_str()));

        // The next scrape (within about a second) sees the new value.
        target.set(0.5);
        let changed = Instant::now();
        let seen = loop {
            let seen = query(url, "max(demo_errors_ratio)", below(0.1), false).await;
            if !seen.passed || changed.elapsed() > Duration::from_secs(15) {
                break seen;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        eprintln!(
            "the new value failed the probe after {:?}",
            changed.elapsed()
        );
        assert!(!seen.passed, "still passing 15s after the change: {seen:?}");
        assert_eq!(seen.value.as_deref(), Some("{} 0.5"));
        assert_eq!(seen.reason, "1 of 1 sample not < 0.1: {} 0.5");
    })
    .await
}

#[tokio::test]
async fn prometheus_probe_reports_no_data_promql_errors_and_special_values() {
    within(async {
        let (_target, prometheus) = start(0.02).await;
        let url = prometheus.url();

        let seen = query(url, "demo_metric_nobody_exports", below(0.1), false).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, "no data: the query returned no samples");
        let seen = query(url, "demo_metric_nobody_exports", below(0.1), true).await;
        assert!(seen.passed, "empty_passes: {seen:?}");

        let seen = query(url, "max(demo_errors_ratio", below(0.1), false).await;
        assert!(!seen.passed);
        assert!(
            seen.reason.starts_with("Prometheus error (bad_data): ")
                && seen.reason.contains("parse error"),
            "{}",
            seen.reason
        );

        let seen = query(url, "scalar(max(demo_errors_ratio))", below(0.1), false).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.value.as_deref(), Some("0.02"));

        let seen = query(url, "0/0", below(0.1), false).await;
        assert!(!seen.passed, "NaN meets no bound: {seen:?}");
        assert_eq!(seen.value.as_deref(), Some("NaN"));

        let seen = query(url, "up", ValueCheck::Equals(serde_json::json!(1)), false).await;
        assert!(seen.passed, "{seen:?}");

        let seen = query(url, "demo_errors_ratio[1m]", below(0.1), false).await;
        assert!(!seen.passed);
        assert!(seen.reason.contains("range vector"), "{}", seen.reason);
    })
    .await
}

#[tokio::test]
async fn prometheus_probe_against_an_unreachable_server_fails() {
    within(async {
        let addr = closed_port();
        let seen = query(&format!("http://{addr}"), "up", below(0.1), false).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, format!("connect to {addr} refused"));
    })
    .await
}

#[tokio::test]
async fn prometheus_probe_against_something_else_says_so() {
    within(async {
        let other = Fixture::start(|_| Answer::text(200, "<html>grafana</html>"));
        let seen = query(&other.url(), "up", below(0.1), false).await;
        assert!(!seen.passed);
        assert_eq!(
            seen.reason,
            "not a Prometheus API response (status 200): <html>grafana</html>"
        );
    })
    .await
}
