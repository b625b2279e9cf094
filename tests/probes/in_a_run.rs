//! Probes inside a real run: a phase's `expect: { probes: [...] }` and a
//! `verify` probe, judged through `faultline`'s runner, one of them against
//! a real Prometheus scraping the live demo's `/metrics`.

use std::time::Duration;

use faultline::config::model::DemoOptions;
use faultline::demo::DemoSystem;
use tokio_util::sync::CancellationToken;

use super::prometheus_server::PrometheusServer;
use super::within;
use crate::load::run_yaml;

#[tokio::test]
async fn prometheus_and_http_probes_judge_the_live_demo() {
    within(async {
        let shutdown = CancellationToken::new();
        let demo = DemoSystem::start(&DemoOptions::default(), 7, shutdown.clone())
            .await
            .expect("demo starts");
        let prometheus = PrometheusServer::start(demo.frontend).await;
        let yaml = format!(
            r#"
name: probes
target: {{ url: "{frontend}" }}
load: {{ rate: 50, timeout: 2s, requests: [ {{ path: /checkout }} ] }}
probes:
  requests-counted:
    prometheus: {{ url: "{prom}", query: "sum(demo_requests_total)", value: "> 0" }}
  errors-counted:
    prometheus: {{ url: "{prom}", query: "sum(demo_errors_total)", value: "> 0" }}
  breaker-closed:
    http: {{ url: /admin/breaker, json: {{ pointer: /state, equals: closed }} }}
  nothing-listens:
    tcp: {{ address: "127.0.0.1:9" }}
    timeout: 500ms
phases:
  - name: steady
    duration: 4s
    expect:
      probes:
        - {{ name: requests-counted, at: end }}
        - {{ name: breaker-closed, every: 1s, pass_ratio: 100% }}
verify:
  - probe: {{ name: errors-counted, phase: steady, at: end }}
  - probe: {{ name: nothing-listens, phase: steady, at: start }}
"#,
            frontend = demo.frontend_url(),
            prom = prometheus.url(),
        );
        let report = run_yaml(&yaml).await;
        let probe = |name: &str| {
            report
                .checks
                .iter()
                .find(|c| c.kind == "probe" && c.name.contains(name))
                .unwrap_or_else(|| panic!("no check for {name}: {:#?}", report.checks))
        };
        let counted = probe("requests-counted");
        assert!(counted.passed, "{counted:#?}");
        let breaker = probe("breaker-closed");
        assert!(breaker.passed, "{breaker:#?}");
        assert!(breaker.samples >= 3, "observed every second: {breaker:#?}");
        // A healthy demo has no errors: Prometheus says so, and the check fails.
        let errors = probe("errors-counted");
        assert!(!errors.passed, "{errors:#?}");
        assert!(
            errors.message.as_deref().unwrap_or("").contains("not > 0"),
            "{errors:#?}"
        );
        let closed = probe("nothing-listens");
        assert!(!closed.passed);
        assert!(
            closed.message.as_deref().unwrap_or("").contains("refused"),
            "{closed:#?}"
        );
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), demo.stopped())
            .await
            .expect("demo stops");
    })
    .await;
}
