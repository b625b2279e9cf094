//! The demo's fail-over (`target.demo.failover`): v1 retries a failed
//! payments call on a backup instance and ejects the failing primary, like
//! nginx's `max_fails`/`fail_timeout`; and the `breaker` `style: fail_over`
//! verdicts on it, healthy and defective, through the shipped
//! `experiments/demo-failover.yaml`.

use std::time::Duration;

use faultline::config::model::{Defect, DemoOptions, FailoverOptions};
use faultline::journal::{Check, ExperimentReport};
use http::StatusCode;

use super::support::{http_error, within, Demo};
use crate::common::CPU_HEAVY;
use crate::load::run_yaml;

const LIMIT: Duration = Duration::from_secs(30);

fn opts(defects: Vec<Defect>) -> DemoOptions {
    DemoOptions {
        canary_weight: 0.0,
        failover: Some(FailoverOptions {
            max_fails: 2,
            fail_timeout: Duration::from_millis(500),
        }),
        defects,
        ..DemoOptions::default()
    }
}

/// Sends `n` checkouts one after another; all must succeed (the backup
/// answers for a failing primary).
async fn checkouts_succeed(demo: &Demo, n: usize) {
    for i in 0..n {
        let reply = demo.checkout().await;
        assert_eq!(reply.status, StatusCode::OK, "checkout {i}: {reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_primary_is_ejected_probed_and_readmitted_while_checkouts_succeed() {
    tokio::time::timeout(LIMIT, async {
        let demo = Demo::start(opts(vec![])).await;
        let system = &demo.system;
        let (_, backup) = system.backup.as_ref().expect("a backup with failover");
        let names: Vec<String> = system
            .proxies()
            .iter()
            .map(|p| p.name().to_string())
            .collect();
        assert_eq!(names, ["payments", "payments-canary", "payments-backup"]);
        checkouts_succeed(&demo, 5).await;
        assert_eq!(
            Demo::hop_calls(backup),
            0,
            "a healthy primary takes every call"
        );

        system
            .payments_hop
            .add_http_fault(http_error("boom", 500))
            .expect("fault added");
        let primary_before = Demo::hop_calls(&system.payments_hop);
        checkouts_succeed(&demo, 40).await;
        let primary_calls = Demo::hop_calls(&system.payments_hop) - primary_before;
        // 2 failures eject it; 40 quick checkouts span well under a second,
        // so at most a probe or two more reach it.
        assert!(
            primary_calls <= 5,
            "the primary kept getting calls: {primary_calls}"
        );
        assert!(Demo::hop_calls(backup) >= 38, "the backup served the rest");

        system
            .payments_hop
            .remove_http_fault("boom")
            .expect("removed");
        let readmitted = within(Duration::from_secs(5), || async {
            let before = Demo::hop_calls(&system.payments_hop);
            demo.checkout().await;
            demo.checkout().await;
            Demo::hop_calls(&system.payments_hop) >= before + 2
        })
        .await;
        assert!(readmitted.is_some(), "the primary was never re-admitted");
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ejection_every_call_still_tries_the_failing_primary() {
    tokio::time::timeout(LIMIT, async {
        let demo = Demo::start(opts(vec![Defect::NoEjection])).await;
        let hop = &demo.system.payments_hop;
        hop.add_http_fault(http_error("boom", 500))
            .expect("fault added");
        let before = Demo::hop_calls(hop);
        checkouts_succeed(&demo, 20).await;
        assert_eq!(
            Demo::hop_calls(hop) - before,
            20,
            "every call went to the primary first"
        );
        demo.stop().await;
    })
    .await
    .expect("test timed out");
}

/// The shipped experiment with `edit` applied (a replacement that must apply).
fn experiment(from: &str, to: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/experiments/demo-failover.yaml"
    );
    let text = std::fs::read_to_string(path).expect("experiments/demo-failover.yaml");
    assert!(text.contains(from), "the experiment has no `{from}`");
    text.replacen(from, to, 1)
}

fn breaker(report: &ExperimentReport) -> &Check {
    report
        .checks
        .iter()
        .find(|c| c.kind == "breaker")
        .unwrap_or_else(|| panic!("no breaker check in {:#?}", report.checks))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fail_over_breaker_passes_healthy_and_fails_without_ejection_or_readmission() {
    let _cpu = CPU_HEAVY.lock().await;
    let failover = "failover: { max_fails: 2, fail_timeout: 2s }";
    let healthy = experiment(failover, failover);
    let no_ejection = experiment(failover, "failover: {}\n    defects: [no_ejection]");
    let never_back = experiment(failover, "failover: { max_fails: 2, fail_timeout: 60s }");
    let (healthy, no_ejection, never_back) = tokio::join!(
        run_yaml(&healthy),
        run_yaml(&no_ejection),
        run_yaml(&never_back),
    );

    for c in &healthy.checks {
        assert!(c.passed, "healthy fail-over: {c:#?}");
    }
    let ok = breaker(&healthy);
    assert!(ok.measured["opened_after_s"] <= 2.0, "{ok:#?}");
    assert!(ok.measured["closed_after_s"] <= 4.0, "{ok:#?}");

    // The clients never notice: the retry on the backup saves them. What
    // gives the defect away is the primary's call rate, which never drops.
    let failing = |r: &ExperimentReport| {
        r.checks
            .iter()
            .find(|c| c.phase.as_deref() == Some("payments-failing") && c.name == "error_rate < 1%")
            .map(|c| c.passed)
    };
    assert_eq!(
        failing(&no_ejection),
        Some(true),
        "{:#?}",
        no_ejection.checks
    );
    let stuck = breaker(&no_ejection);
    assert!(!stuck.passed, "{stuck:#?}");
    let message = stuck.message.clone().unwrap_or_default();
    assert!(
        message.starts_with("the breaker never opened: payments kept receiving"),
        "{message}"
    );

    let never = breaker(&never_back);
    assert!(!never.passed, "{never:#?}");
    let message = never.message.clone().unwrap_or_default();
    assert!(
        message.contains("the breaker never closed") && message.contains("never re-admitted"),
        "{message}"
    );
    assert!(
        !message.contains("never opened"),
        "it did shield payments: {message}"
    );
}
