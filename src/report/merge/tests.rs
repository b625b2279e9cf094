//! Unit tests of the merge: exact percentiles, sums, re-evaluated checks.
use super::*;
use crate::journal::{HostInfo, VersionReport};
use std::time::Duration;

fn histogram(ms: impl IntoIterator<Item = u64>) -> LatencyHistogram {
    let mut h = LatencyHistogram::new();
    for v in ms {
        h.record(Duration::from_millis(v));
    }
    h
}

fn phase(name: &str, h: &LatencyHistogram, errors: u64, target: f64) -> PhaseReport {
    let requests = h.len();
    PhaseReport {
        name: name.into(),
        start: "2025-01-01T00:00:01.000Z".into(),
        start_offset_s: 0.0,
        duration_s: 2.0,
        planned_duration_s: 2.0,
        completed: true,
        requests,
        errors,
        error_rate: errors as f64 / requests.max(1) as f64,
        errors_by_class: BTreeMap::from([("status".to_string(), errors)]),
        status_counts: BTreeMap::from([("200".to_string(), requests - errors)]),
        rate: requests as f64 / 2.0,
        target_rate: Some(target),
        late: 1,
        unsent: 0,
        latency_ms: h.summary(),
        service_time_ms: h.summary(),
        faults: vec![],
        histogram: (!h.is_empty()).then(|| h.to_base64()),
        telemetry: None,
        pressure: vec![],
        versions: vec![],
        unversioned: 0,
    }
}

fn experiment(name: &str, phases: Vec<PhaseReport>, checks: Vec<Check>) -> ExperimentReport {
    ExperimentReport {
        name: name.into(),
        description: None,
        tags: vec![],
        file: "x.yaml".into(),
        suite: None,
        status: if checks.iter().all(|c| c.passed) {
            ExperimentStatus::Passed
        } else {
            ExperimentStatus::Failed
        },
        error: None,
        rollback_failed: false,
        started_at: "2025-01-01T00:00:00.000Z".into(),
        duration_s: 2.0,
        target: "url http://x".into(),
        load: LoadInfo {
            model: "open".into(),
            rate: Some("50/s".into()),
            concurrency: None,
            max_in_flight: Some(100),
            timeout_ms: 1000.0,
            sent: phases.iter().map(|p| p.requests).sum(),
            unsent: 0,
        },
        checks,
        faults: vec![],
        series: vec![
            WindowSummary {
                t: 0,
                requests: 10,
                errors: 1,
                error_rate: 0.1,
                p50: Some(5.0),
                p99: Some(9.0),
                phase: "steady".into(),
            },
            WindowSummary {
                t: 1,
                requests: 10,
                errors: 0,
                error_rate: 0.0,
                p50: Some(6.0),
                p99: None,
                phase: "steady".into(),
            },
        ],
        phases,
        telemetry: vec![],
    }
}

fn run(seed: u64, experiments: Vec<ExperimentReport>) -> RunReport {
    let mut r = RunReport {
        schema_version: SCHEMA_VERSION,
        faultline_version: "0.1.0".into(),
        status: RunStatus::Passed,
        exit_code: 0,
        rollback_failed: false,
        seed,
        run_id: format!("run{seed}"),
        suite: None,
        shard: None,
        started_at: format!("2025-01-01T00:00:0{seed}.000Z"),
        finished_at: format!("2025-01-01T00:00:1{seed}.000Z"),
        duration_s: 10.0,
        host: HostInfo {
            hostname: format!("host{seed}"),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpus: 2,
        },
        files: vec!["x.yaml".into()],
        experiments,
        summary: Summary::default(),
        notes: vec![],
        operator_notes: vec![],
    };
    r.refresh_summary();
    r
}

fn threshold(name: &str, expected: &str, passed: bool, message: Option<&str>) -> Check {
    Check {
        name: name.into(),
        kind: "threshold".into(),
        phase: Some("steady".into()),
        passed,
        expected: expected.into(),
        observed: String::new(),
        samples: 0,
        message: message.map(String::from),
        window: None,
        faults: vec![],
        measured: Default::default(),
        outcome: None,
    }
}

#[test]
fn percentiles_are_those_of_all_samples_and_counts_add_up() {
    let a = histogram(1..=100);
    let b = histogram((1..=300).map(|i| 100 + i * 3));
    let merged = merge(&[
        run(
            1,
            vec![experiment("e", vec![phase("steady", &a, 2, 50.0)], vec![])],
        ),
        run(
            2,
            vec![experiment("e", vec![phase("steady", &b, 3, 150.0)], vec![])],
        ),
    ])
    .expect("same experiment");
    let mut all = a.clone();
    all.merge(&b);
    let p = &merged.experiments[0].phases[0];
    assert_eq!(p.latency_ms, all.summary());
    assert_eq!((p.requests, p.errors, p.late), (400, 5, 2));
    assert!((p.error_rate - 5.0 / 400.0).abs() < 1e-12);
    assert!((p.rate - 200.0).abs() < 1e-9 && p.target_rate == Some(200.0));
    assert_eq!(p.errors_by_class["status"], 5);
    assert_eq!(p.status_counts["200"], 395);
    assert_eq!(p.service_time_ms, None);
    let back =
        LatencyHistogram::from_base64(p.histogram.as_deref().expect("histogram")).expect("decodes");
    assert_eq!(back.summary(), all.summary());
    assert_eq!(merged.shard.as_deref(), Some("merged from 2 reports"));
    assert_eq!(merged.started_at, "2025-01-01T00:00:01.000Z");
    assert_eq!(merged.finished_at, "2025-01-01T00:00:12.000Z");
    assert!((merged.duration_s - 11.0).abs() < 1e-9);
    assert_eq!(merged.host.cpus, 4);
    assert_eq!(merged.files, vec!["x.yaml".to_string()]);
    assert_eq!(merged.experiments[0].load.rate.as_deref(), Some("2 × 50/s"));
    assert!(merged
        .notes
        .iter()
        .any(|n| n.contains("seeds, in order: 1, 2")));
    assert!(merged
        .notes
        .iter()
        .any(|n| n.contains("service_time_ms is null")));
    let series = &merged.experiments[0].series;
    assert_eq!(series.len(), 2);
    assert_eq!((series[0].requests, series[0].errors), (20, 2));
    assert!((series[0].error_rate - 0.1).abs() < 1e-12);
    assert_eq!((series[1].p50, series[1].p99), (Some(6.0), None));
}

#[test]
fn thresholds_are_judged_again_on_the_merged_phase() {
    let a = histogram([10; 60]);
    let b = histogram([10; 60]);
    // Each shard alone has 60 requests: `requests >= 100` failed on both,
    // and `p99` failed on one for lack of samples (min_samples 100).
    let checks = || {
        vec![
            threshold("requests >= 100", ">= 100", false, None),
            threshold(
                "p99 < 50ms",
                "< 50ms",
                false,
                Some("no data: 60 samples, at least 100 needed"),
            ),
            threshold("error_rate < 1%", "< 1%", true, None),
        ]
    };
    let merged = merge(&[
        run(
            1,
            vec![experiment(
                "e",
                vec![phase("steady", &a, 0, 30.0)],
                checks(),
            )],
        ),
        run(
            2,
            vec![experiment(
                "e",
                vec![phase("steady", &b, 0, 30.0)],
                checks(),
            )],
        ),
    ])
    .expect("same experiment");
    let exp = &merged.experiments[0];
    assert_eq!(exp.checks.len(), 3, "{:#?}", exp.checks);
    assert!(exp.checks.iter().all(|c| c.passed), "{:#?}", exp.checks);
    assert_eq!(exp.checks[0].observed, "120");
    assert_eq!(exp.checks[1].samples, 120);
    assert_eq!(exp.checks[0].window.as_deref(), Some("0.0s–2.0s"));
    assert_eq!(exp.status, ExperimentStatus::Passed);
    assert_eq!((merged.status, merged.exit_code), (RunStatus::Passed, 0));

    // With 40 + 40 samples the remembered min_samples of 100 still bites.
    let few = histogram([10; 40]);
    let merged = merge(&[
        run(
            1,
            vec![experiment(
                "e",
                vec![phase("steady", &few, 0, 20.0)],
                checks(),
            )],
        ),
        run(
            2,
            vec![experiment(
                "e",
                vec![phase("steady", &few, 0, 20.0)],
                checks(),
            )],
        ),
    ])
    .expect("same experiment");
    let p99 = &merged.experiments[0].checks[1];
    assert!(!p99.passed && p99.observed == "no data", "{p99:#?}");
    assert_eq!(merged.exit_code, 1);
}

#[test]
fn rate_achieved_is_judged_against_the_summed_target() {
    let h = histogram([5; 100]);
    let rate_check = Check {
        name: "rate_achieved".into(),
        kind: "rate_achieved".into(),
        ..threshold("x", "", true, None)
    };
    let shard = |target: f64| {
        run(
            1,
            vec![experiment(
                "e",
                vec![phase("steady", &h, 0, target)],
                vec![rate_check.clone()],
            )],
        )
    };
    // 50/s + 50/s achieved against 50/s + 60/s asked: 91%, below 95%.
    let merged = merge(&[shard(50.0), shard(60.0)]).expect("merges");
    let c = &merged.experiments[0].checks[0];
    assert_eq!(c.kind, "rate_achieved");
    assert!(!c.passed, "{c:#?}");
    assert!(c.observed.starts_with("100.0/s"), "{}", c.observed);
}

#[test]
fn other_check_kinds_are_kept_per_report_and_unreadable_thresholds_fail() {
    let h = histogram([5; 100]);
    let regression = |passed: bool| Check {
        kind: "regression".into(),
        ..threshold("latency vs baseline", "not worse", passed, None)
    };
    let bogus = threshold("p42 < 5ms", "< 5ms", true, None);
    let shard = |passed: bool| {
        run(
            1,
            vec![experiment(
                "e",
                vec![phase("steady", &h, 0, 50.0)],
                vec![regression(passed), bogus.clone()],
            )],
        )
    };
    let merged = merge(&[shard(true), shard(false)]).expect("merges");
    let checks = &merged.experiments[0].checks;
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "p42 < 5ms",
            "latency vs baseline (report 1)",
            "latency vs baseline (report 2)"
        ]
    );
    assert!(!checks[0].passed);
    assert!(checks[0]
        .message
        .as_deref()
        .unwrap_or("")
        .contains("`p42` is not a metric"));
    assert!(checks[1].passed && !checks[2].passed);
    assert_eq!(merged.experiments[0].status, ExperimentStatus::Failed);
    assert!(
        merged
            .notes
            .iter()
            .any(|n| n.contains("2 `regression` check(s) kept as each report judged them")),
        "{:#?}",
        merged.notes
    );
}

#[test]
fn mismatched_experiments_and_phases_are_refused() {
    let h = histogram([5; 10]);
    let a = run(
        1,
        vec![experiment(
            "checkout",
            vec![phase("steady", &h, 0, 5.0)],
            vec![],
        )],
    );
    let b = run(
        2,
        vec![experiment(
            "login",
            vec![phase("steady", &h, 0, 5.0)],
            vec![],
        )],
    );
    let err = merge(&[a.clone(), b]).expect_err("different experiments");
    assert_eq!(
        err.to_string(),
        "report 2 does not have the experiments of report 1 (missing: `checkout`; \
         not in report 1: `login`): only shards of the same experiments can be merged"
    );
    let c = run(
        2,
        vec![experiment(
            "checkout",
            vec![phase("fault", &h, 0, 5.0)],
            vec![],
        )],
    );
    let err = merge(&[a.clone(), c]).expect_err("different phases");
    assert!(
        err.to_string()
            .contains("report 2 has phases `fault` but report 1 has `steady`"),
        "{err}"
    );
    assert_eq!(merge(&[]).expect_err("nothing"), MergeError::Empty);
    let mut old = a.clone();
    old.experiments[0].phases[0].histogram = None;
    let err = merge(&[a, old]).expect_err("no histogram");
    assert!(
        matches!(
            err,
            MergeError::MissingHistogram {
                report: 2,
                requests: 10,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_shard_that_stopped_early_is_merged_over_the_phases_it_ran() {
    let h = histogram([5; 10]);
    let full = run(
        1,
        vec![experiment(
            "e",
            vec![phase("steady", &h, 0, 5.0), phase("fault", &h, 0, 5.0)],
            vec![],
        )],
    );
    let mut aborted = run(
        2,
        vec![experiment("e", vec![phase("steady", &h, 0, 5.0)], vec![])],
    );
    aborted.experiments[0].status = ExperimentStatus::Aborted;
    aborted.experiments[0].error = Some("SIGINT".into());
    let merged = merge(&[full, aborted]).expect("prefix is fine when aborted");
    let exp = &merged.experiments[0];
    assert_eq!(exp.status, ExperimentStatus::Aborted);
    assert_eq!(exp.error.as_deref(), Some("report 2: SIGINT"));
    assert_eq!((exp.phases[0].requests, exp.phases[1].requests), (20, 10));
    assert!(!exp.phases[1].completed);
    assert_eq!(merged.exit_code, 3);
    assert!(merged
        .notes
        .iter()
        .any(|n| n.contains("measured by 1 of 2 reports")));
}

#[test]
fn versions_are_merged_by_label_and_by_version_thresholds_judged_on_the_sum() {
    let version = |label: &str, ms: u64, n: u64, errors: u64| {
        let h = histogram(std::iter::repeat_n(ms, n as usize));
        VersionReport {
            version: label.into(),
            requests: n,
            errors,
            error_rate: errors as f64 / n as f64,
            rate: n as f64 / 2.0,
            latency_ms: h.summary(),
            histogram: Some(h.to_base64()),
            other: false,
        }
    };
    let shard = |seed: u64, v2_errors: u64| {
        let mut p = phase("steady", &histogram([5; 100]), v2_errors, 50.0);
        p.versions = vec![version("v1", 5, 90, 0), version("v2", 200, 10, v2_errors)];
        p.unversioned = 1;
        // Alone, one shard's v2 (0 of 10 failed) passes.
        let passed = v2_errors == 0;
        let check = threshold("error_rate{version=v2} < 5%", "< 5%", passed, None);
        run(seed, vec![experiment("e", vec![p], vec![check])])
    };
    let merged = merge(&[shard(1, 3), shard(2, 0)]).expect("same experiment");
    let e = &merged.experiments[0];
    let p = &e.phases[0];
    let labels: Vec<(&str, u64, u64)> = p
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.requests, v.errors))
        .collect();
    assert_eq!(labels, [("v1", 180, 0), ("v2", 20, 3)]);
    assert_eq!(p.unversioned, 2);
    assert_eq!(p.versions[1].latency_ms.map(|l| l.p50.round()), Some(200.0));
    let check = e
        .checks
        .iter()
        .find(|c| c.name == "error_rate{version=v2} < 5%")
        .expect("re-evaluated, under its own name");
    assert!(!check.passed, "{check:#?}");
    assert_eq!(check.observed, "15.00%");
    assert_eq!(check.samples, 20);
}
