//! `faultline merge` and `--baseline`, on reports of real runs against
//! loopback fixtures.
//!
//! The baseline tests use the statistics' own guard against noise (a
//! minimum effect of 5% or 1 ms on the median) rather than wide tolerances:
//! reruns of a healthy 50 ms service must never be flagged, and an extra
//! 50 ms always must.

use crate::common::TestBed;
use faultline::config;
use faultline::journal::{Check, ExperimentStatus, PhaseReport, RunReport, RunStatus};
use faultline::metrics::LatencyHistogram;
use faultline::report::merge::merge;
use faultline::runner::{self, NoProgress, RunSettings, StopSignals};
use faultline::verify::baseline;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Every test here is bounded: a hung run fails instead of hanging CI.
const TEST_LIMIT: Duration = Duration::from_secs(90);
const ALPHA: f64 = 0.01;

/// Runs the experiments of `yaml` through the real parser and runner.
async fn run_report(yaml: &str, seed: u64) -> RunReport {
    let doc = config::load_str(yaml, Path::new("inline.yaml"))
        .unwrap_or_else(|e| panic!("test YAML is invalid:\n{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = RunSettings {
        seed,
        out_dir: dir.path().to_path_buf(),
        files: vec!["inline.yaml".into()],
        fail_fast: false,
        live: None,
    };
    runner::run(
        &runner::Planned::all(doc.experiments),
        &settings,
        &StopSignals::new(),
        Arc::new(NoProgress),
    )
    .await
}

/// One open-model experiment `t` with one phase `steady`.
fn experiment(url: &str, rate: u32, duration: &str, expect: &str) -> String {
    format!(
        "name: t\ntarget: {{ url: \"{url}\" }}\nload:\n  rate: {rate}\n  timeout: 2s\n  \
         requests:\n    - {{ path: / }}\nphases:\n  - {{ name: steady, duration: {duration}{expect} }}\n"
    )
}

fn steady(report: &RunReport) -> &PhaseReport {
    report.experiments[0]
        .phases
        .iter()
        .find(|p| p.name == "steady")
        .unwrap_or_else(|| panic!("phase steady in {report:#?}"))
}

fn histogram_of(phase: &PhaseReport) -> LatencyHistogram {
    LatencyHistogram::from_base64(
        phase
            .histogram
            .as_deref()
            .expect("the phase has a histogram"),
    )
    .expect("the histogram decodes")
}

fn check<'a>(checks: &'a [Check], name: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {checks:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_percentiles_are_those_of_one_histogram_fed_every_sample() {
    tokio::time::timeout(TEST_LIMIT, async {
        let bed = TestBed::fixed_delay(Duration::ZERO);
        let template = run_report(&experiment(&bed.url(), 20, "1s", ""), 1).await;
        // Replace the measured samples by known ones: 1..=100 ms and 150..=450 ms.
        let with_samples = |ms: &mut dyn Iterator<Item = u64>| {
            let mut report = template.clone();
            let mut h = LatencyHistogram::new();
            for v in ms {
                h.record(Duration::from_millis(v));
            }
            let phase = &mut report.experiments[0].phases[0];
            phase.requests = h.len();
            phase.latency_ms = h.summary();
            phase.histogram = Some(h.to_base64());
            report
        };
        let a = with_samples(&mut (1..=100));
        let b = with_samples(&mut (150..=450));
        let merged = merge(&[a, b]).expect("two shards of the same experiment");

        let mut all = LatencyHistogram::new();
        for v in (1..=100).chain(150..=450) {
            all.record(Duration::from_millis(v));
        }
        let phase = steady(&merged);
        assert_eq!(phase.requests, 401);
        assert_eq!(phase.latency_ms, all.summary());
        let p50 = phase.latency_ms.expect("samples").p50;
        assert!(
            (p50 - 250.0).abs() <= 0.25,
            "p50 of all samples is 250ms, got {p50}"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_shards_merge_into_one_exact_report() {
    tokio::time::timeout(TEST_LIMIT, async {
        let bed = TestBed::fixed_delay(Duration::from_millis(5));
        // Each shard alone drives 40/s for 2s (~80 requests), so `requests >= 100`
        // fails on each shard and passes on their sum.
        let yaml = experiment(
            &bed.url(),
            40,
            "2s",
            ", expect: { p99: \"< 1s\", error_rate: \"< 1%\", requests: \">= 100\" }",
        );
        let (a, b) = tokio::join!(run_report(&yaml, 1), run_report(&yaml, 2));
        for shard in [&a, &b] {
            assert_eq!(
                shard.experiments[0].status,
                ExperimentStatus::Failed,
                "{shard:#?}"
            );
            assert!(!check(&shard.experiments[0].checks, "requests >= 100").passed);
        }
        let merged = merge(&[a.clone(), b.clone()]).expect("two shards of the same experiment");

        let (pa, pb, pm) = (steady(&a), steady(&b), steady(&merged));
        let mut all = histogram_of(pa);
        all.merge(&histogram_of(pb));
        assert_eq!(pm.latency_ms, all.summary(), "percentiles of every sample");
        assert_eq!(histogram_of(pm).len(), pa.requests + pb.requests);
        assert_eq!(pm.requests, pa.requests + pb.requests);
        assert_eq!(pm.errors, 0);
        assert!((pm.rate - (pa.rate + pb.rate)).abs() < 1e-9, "rates add up");
        let target = pm.target_rate.expect("open model");
        assert!((target - 80.0).abs() < 1.0, "target 2 × 40/s, got {target}");
        assert_eq!(pm.service_time_ms, None);

        let exp = &merged.experiments[0];
        assert_eq!(
            exp.load.sent,
            a.experiments[0].load.sent + b.experiments[0].load.sent
        );
        let names: Vec<&str> = exp.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "p99 < 1s",
                "error_rate < 1%",
                "requests >= 100",
                "rate_achieved"
            ]
        );
        assert!(exp.checks.iter().all(|c| c.passed), "{:#?}", exp.checks);
        assert_eq!(
            check(&exp.checks, "requests >= 100").observed,
            pm.requests.to_string()
        );
        assert_eq!(exp.status, ExperimentStatus::Passed);
        assert_eq!((merged.status, merged.exit_code), (RunStatus::Passed, 0));
        assert_eq!(
            (merged.summary.passed, merged.summary.checks_failed),
            (1, 0)
        );
        assert_eq!(merged.shard.as_deref(), Some("merged from 2 reports"));
        assert!(merged
            .notes
            .iter()
            .any(|n| n.contains("seeds, in order: 1, 2")));

        let series_total =
            |r: &RunReport| -> u64 { r.experiments[0].series.iter().map(|w| w.requests).sum() };
        assert_eq!(series_total(&merged), series_total(&a) + series_total(&b));

        // The merged report is a report like any other: it round-trips as JSON.
        let json = serde_json::to_string(&merged).expect("serializes");
        let back: RunReport = serde_json::from_str(&json).expect("parses back");
        assert_eq!(steady(&back).latency_ms, pm.latency_ms);
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reruns_of_a_healthy_experiment_are_not_flagged() {
    tokio::time::timeout(TEST_LIMIT, async {
        let bed = TestBed::fixed_delay(Duration::from_millis(50));
        let yaml = experiment(&bed.url(), 100, "3s", "");
        let base = run_report(&yaml, 1).await;
        assert!(steady(&base).requests >= 250, "{:#?}", steady(&base));
        for rerun in 0..3 {
            let mut current = run_report(&yaml, 2 + rerun).await;
            let checks = baseline::regression_checks(&current, &base, ALPHA);
            assert_eq!(checks.len(), 2, "latency and error rate: {checks:#?}");
            for (experiment, c) in &checks {
                assert_eq!(experiment, "t");
                assert!(c.passed, "rerun {rerun} flagged: {c:#?}");
                assert!(!c.observed.starts_with("worse"), "rerun {rerun}: {c:#?}");
                assert!(
                    !c.observed.starts_with("inconclusive"),
                    "rerun {rerun}: {c:#?}"
                );
            }
            baseline::apply(&mut current, &base, ALPHA);
            assert_eq!(current.experiments[0].status, ExperimentStatus::Passed);
            assert_eq!(current.exit_code, 0);
        }
    })
    .await
    .expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_50ms_is_flagged_with_p_value_and_effect() {
    tokio::time::timeout(TEST_LIMIT, async {
        let fast = TestBed::fixed_delay(Duration::ZERO);
        let slow = TestBed::fixed_delay(Duration::from_millis(50));
        let (fast_yaml, slow_yaml) = (
            experiment(&fast.url(), 100, "2s", ""),
            experiment(&slow.url(), 100, "2s", ""),
        );
        let (base, mut current) =
            tokio::join!(run_report(&fast_yaml, 1), run_report(&slow_yaml, 1));
        assert_eq!(current.exit_code, 0, "passes on its own: no thresholds");
        let checks: Vec<Check> = baseline::regression_checks(&current, &base, ALPHA)
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        let latency = check(&checks, "latency vs baseline");
        assert!(!latency.passed, "{latency:#?}");
        assert_eq!(latency.kind, "regression");
        assert_eq!(latency.phase.as_deref(), Some("steady"));
        assert_eq!(latency.expected, "not worse than baseline (alpha 0.01)");
        assert!(
            latency.observed.starts_with("worse: p="),
            "{}",
            latency.observed
        );
        assert!(latency.observed.contains("p50 +"), "{}", latency.observed);
        let message = latency
            .message
            .as_deref()
            .expect("a failure explains itself");
        assert!(message.contains("Mann–Whitney p"), "{message}");
        assert!(check(&checks, "error_rate vs baseline").passed);

        baseline::apply(&mut current, &base, ALPHA);
        assert_eq!(current.experiments[0].status, ExperimentStatus::Failed);
        assert_eq!((current.status, current.exit_code), (RunStatus::Failed, 1));
        assert_eq!(current.summary.checks_failed, 1);
    })
    .await
    .expect("test timed out");
}
