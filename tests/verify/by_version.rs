//! `by_version` thresholds on the demo's canary: the per-version view
//! catches a failing canary that the all-versions error rate hides.
//!
//! 10% of checkouts go to v2. The defect: v2's payments hop answers 500 to
//! a fifth of its calls and the rollback controller is off (`no_rollback`),
//! so v2 fails ~20% of its checkouts while all versions together fail ~2%.

use faultline::journal::{Check, ExperimentReport};

use crate::common::CPU_HEAVY;
use crate::load::run_yaml;

fn canary(broken: bool) -> String {
    let (defects, inject) = if broken {
        (
            "[no_rollback]",
            "    inject:\n      - { type: http_error, proxy: payments-canary, status: 500, probability: 20% }\n",
        )
    } else {
        ("[]", "")
    };
    format!(
        r#"
name: canary-by-version
target: {{ demo: {{ canary_weight: 10%, defects: {defects} }} }}
load:
  rate: 200
  timeout: 2s
  requests: [ {{ path: /checkout }} ]
  version_from: {{ header: x-version }}
phases:
  - name: canary
    duration: 5s
{inject}    expect:
      error_rate: "< 5%"
      by_version:
        v2: {{ error_rate: "< 5%" }}
        v1: {{ error_rate: "< 1%", requests: "> 500" }}
"#
    )
}

fn check<'a>(report: &'a ExperimentReport, name: &str) -> &'a Check {
    report
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {:#?}", report.checks))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_version_error_rate_catches_a_failing_canary_the_aggregate_hides() {
    let _cpu = CPU_HEAVY.lock().await;
    let (healthy_yaml, broken_yaml) = (canary(false), canary(true));
    let (healthy, broken) = tokio::join!(run_yaml(&healthy_yaml), run_yaml(&broken_yaml));

    for c in &healthy.checks {
        assert!(c.passed, "healthy canary: {c:#?}");
    }
    assert_eq!(
        check(&healthy, "error_rate{version=v2} < 5%").observed,
        "0.00%"
    );

    let aggregate = check(&broken, "error_rate < 5%");
    assert!(aggregate.passed, "all versions: {aggregate:#?}");
    let v2 = check(&broken, "error_rate{version=v2} < 5%");
    assert!(!v2.passed, "the failing canary went unnoticed: {v2:#?}");
    let message = v2.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("error_rate of version `v2` was ")
            && message.contains(&format!("over {} requests", v2.samples)),
        "{message}"
    );
    let rate: f64 = v2
        .observed
        .trim_end_matches('%')
        .parse()
        .expect("a percentage");
    assert!((8.0..=40.0).contains(&rate), "about 20%: {rate}");
    assert!(check(&broken, "error_rate{version=v1} < 1%").passed);

    // The report's per-version numbers add up to the phase's.
    for report in [&healthy, &broken] {
        let phase = &report.phases[0];
        let served: u64 = phase.versions.iter().map(|v| v.requests).sum();
        assert_eq!(served + phase.unversioned, phase.requests, "{phase:#?}");
        let errors: u64 = phase.versions.iter().map(|v| v.errors).sum();
        assert!(errors <= phase.errors, "{phase:#?}");
        let v2 = phase
            .versions
            .iter()
            .find(|v| v.version == "v2")
            .expect("v2 served");
        let share = v2.requests as f64 / phase.requests as f64;
        assert!((0.08..=0.12).contains(&share), "10% to v2: {share}");
        assert!(v2.latency_ms.is_some() && v2.histogram.is_some());
    }
}

#[tokio::test]
async fn a_version_that_served_nothing_fails_and_says_what_did_answer() {
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        run_yaml(
            "name: stable-only\ntarget: { demo: { canary_weight: 0% } }\n\
             load: { rate: 50, requests: [ { path: /checkout } ], version_from: { header: x-version } }\n\
             phases:\n  - name: p\n    duration: 2s\n    expect:\n      by_version:\n\
             \x20       v2: { p99: \"< 1s\", requests: \"== 0\" }\n",
        ),
    )
    .await
    .expect("within 30 s");
    let p99 = check(&report, "p99{version=v2} < 1s");
    assert!(!p99.passed, "a vacuous pass: {p99:#?}");
    let message = p99.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("version `v2` served no requests in `p`; versions seen: v1 ("),
        "{message}"
    );
    // Zero requests is a measurement: "the canary got nothing" holds.
    assert!(check(&report, "requests{version=v2} == 0").passed);
}
