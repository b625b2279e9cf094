//! `--baseline previous.json`: is this run significantly worse than an earlier one?
//!
//! For every experiment and phase present in both reports (matched by name)
//! two `regression` checks are added:
//!
//! - `latency vs baseline`: Mann–Whitney U on the two response-time
//!   histograms ([`super::stats::mann_whitney`]);
//! - `error_rate vs baseline`: Fisher's exact test on the error counts
//!   ([`super::stats::two_proportions`]).
//!
//! A check fails only when the current phase is significantly worse
//! (two-sided p < alpha) *and* the change is big enough to matter: the median
//! slower by more than [`MIN_P50_CHANGE`] and [`MIN_P50_CHANGE_MS`] (whichever
//! is larger), or the error rate up by more than [`MIN_ERROR_RATE_CHANGE`].
//! Without that floor a long nightly run would "detect" a 0.3 ms drift that
//! nobody can act on. Fewer than [`DEFAULT_MIN_SAMPLES`] samples on a side,
//! or a report without histograms, gives a passing check that says so: a
//! comparison that cannot be made is reported, never failed.

use super::stats::{self, Direction, Rule, Verdict, DEFAULT_MIN_SAMPLES};
use super::thresholds::format_value;
use crate::config::model::Metric;
use crate::journal::{Check, ExperimentStatus, PhaseReport, RunReport};
use crate::metrics::LatencyHistogram;

/// The `kind` of the checks added here.
pub const KIND: &str = "regression";
/// A latency regression must move the median by more than this fraction...
pub const MIN_P50_CHANGE: f64 = 0.05;
/// ...and by more than this many milliseconds.
pub const MIN_P50_CHANGE_MS: f64 = 1.0;
/// An error-rate regression must add more than this (0.1 percentage point).
pub const MIN_ERROR_RATE_CHANGE: f64 = 0.001;

/// The regression checks of `current` against `baseline`, each with the
/// name of the experiment it belongs to.
pub fn regression_checks(
    current: &RunReport,
    baseline: &RunReport,
    alpha: f64,
) -> Vec<(String, Check)> {
    let mut out = Vec::new();
    for exp in &current.experiments {
        let Some(base_exp) = baseline.experiments.iter().find(|b| b.name == exp.name) else {
            continue;
        };
        for phase in &exp.phases {
            let Some(base) = base_exp.phases.iter().find(|b| b.name == phase.name) else {
                continue;
            };
            out.push((exp.name.clone(), latency_check(phase, base, alpha)));
            out.push((exp.name.clone(), error_rate_check(phase, base, alpha)));
        }
    }
    out
}

/// Prefix of the report notes written by [`apply`].
const NOTE_PREFIX: &str = "--baseline:";

/// Adds the regression checks to `report` (replacing any from an earlier
/// `apply`), notes what could not be compared, then re-derives statuses,
/// summary and exit code.
pub fn apply(report: &mut RunReport, baseline: &RunReport, alpha: f64) {
    for exp in &mut report.experiments {
        exp.checks.retain(|c| c.kind != KIND);
    }
    report.notes.retain(|n| !n.starts_with(NOTE_PREFIX));
    report.notes.push(format!(
        "{NOTE_PREFIX} compared with the run started {} (seed {}) at alpha {alpha}",
        baseline.started_at, baseline.seed
    ));
    for exp in &report.experiments {
        match baseline.experiments.iter().find(|b| b.name == exp.name) {
            None if exp.status != ExperimentStatus::Skipped => report.notes.push(format!(
                "{NOTE_PREFIX} experiment `{}` is not in the baseline: not compared",
                exp.name
            )),
            None => {}
            Some(base) => {
                for phase in exp
                    .phases
                    .iter()
                    .filter(|p| !base.phases.iter().any(|b| b.name == p.name))
                {
                    report.notes.push(format!(
                        "{NOTE_PREFIX} experiment `{}`, phase `{}` is not in the baseline: not compared",
                        exp.name, phase.name
                    ));
                }
            }
        }
    }
    for (name, check) in regression_checks(report, baseline, alpha) {
        if let Some(exp) = report.experiments.iter_mut().find(|e| e.name == name) {
            exp.checks.push(check);
        }
    }
    report.refresh_summary();
}

/// A check of `phase`, not yet judged: passing, observed filled in later.
fn new_check(name: &str, phase: &PhaseReport, base: &PhaseReport, alpha: f64) -> Check {
    Check {
        name: name.to_string(),
        kind: KIND.to_string(),
        phase: Some(phase.name.clone()),
        passed: true,
        expected: format!("not worse than baseline (alpha {alpha})"),
        observed: String::new(),
        samples: phase.requests + base.requests,
        message: None,
        window: Some(format!(
            "{:.1}s–{:.1}s",
            phase.start_offset_s,
            phase.start_offset_s + phase.duration_s
        )),
        faults: phase.faults.clone(),
        measured: Default::default(),
        outcome: None,
    }
}

fn latency_check(phase: &PhaseReport, base: &PhaseReport, alpha: f64) -> Check {
    let mut check = new_check("latency vs baseline", phase, base, alpha);
    let (current_h, baseline_h) = match (histogram(phase), histogram(base)) {
        (Ok(c), Ok(b)) => (c, b),
        (Err(why), _) => return skipped(check, &format!("the current report {why}")),
        (_, Err(why)) => return skipped(check, &format!("the baseline report {why}")),
    };
    check.samples = current_h.len() + baseline_h.len();
    let Some(mw) = stats::mann_whitney(&current_h, &baseline_h) else {
        return inconclusive(check, current_h.len(), baseline_h.len());
    };
    let min_effect = (MIN_P50_CHANGE * mw.p50_baseline_ms).max(MIN_P50_CHANGE_MS);
    let verdict = stats::verdict(
        &mw.evidence(),
        &Rule::new(alpha).with_min_effect(min_effect),
    );
    if verdict == Verdict::Inconclusive {
        return inconclusive(check, mw.n_current, mw.n_baseline);
    }
    let p50 = |ms: f64| format_value(Metric::P50, ms);
    let change = format!(
        "p50 {} ({} → {})",
        signed_percent(mw.p50_change()),
        p50(mw.p50_baseline_ms),
        p50(mw.p50_current_ms)
    );
    check.observed = format!(
        "{}: {}, {change}",
        verdict.as_str(),
        format_p(mw.p_two_sided)
    );
    let significant_but_small =
        mw.p_two_sided < alpha && verdict == Verdict::Decided(Direction::Same);
    if significant_but_small {
        check.observed += &format!(", below the {} minimum effect", p50(min_effect));
    }
    if verdict.is_worse() {
        check.passed = false;
        check.message = Some(format!(
            "slower than the baseline: Mann–Whitney {} (z {:.2}), rank-biserial r {:+.2} \
             ({:.0}% of pairs slower), {change}, more than the minimum effect of {}",
            format_p(mw.p_two_sided),
            mw.z,
            mw.rank_biserial,
            (mw.rank_biserial + 1.0) / 2.0 * 100.0,
            p50(min_effect)
        ));
    }
    check
}

fn error_rate_check(phase: &PhaseReport, base: &PhaseReport, alpha: f64) -> Check {
    let mut check = new_check("error_rate vs baseline", phase, base, alpha);
    let t = stats::two_proportions(phase.errors, phase.requests, base.errors, base.requests);
    let rule = Rule::new(alpha).with_min_effect(MIN_ERROR_RATE_CHANGE);
    let verdict = stats::verdict(&t.evidence(), &rule);
    if verdict == Verdict::Inconclusive {
        return inconclusive(check, phase.requests, base.requests);
    }
    let rate = |r: f64| format_value(Metric::ErrorRate, r);
    let change = format!(
        "error rate {} → {} ({:+.2} pp)",
        rate(t.rate_baseline()),
        rate(t.rate_current()),
        t.difference() * 100.0
    );
    check.observed = format!(
        "{}: {}, {change}",
        verdict.as_str(),
        format_p(t.p_two_sided)
    );
    if t.p_two_sided < alpha && verdict == Verdict::Decided(Direction::Same) {
        check.observed += &format!(", below the {} minimum effect", rate(MIN_ERROR_RATE_CHANGE));
    }
    if verdict.is_worse() {
        check.passed = false;
        check.message = Some(format!(
            "more errors than the baseline: Fisher's exact {}, {change} \
             ({} of {} against {} of {})",
            format_p(t.p_two_sided),
            t.errors_current,
            t.n_current,
            t.errors_baseline,
            t.n_baseline
        ));
    }
    check
}

/// The phase's response-time histogram, or why there is none.
fn histogram(phase: &PhaseReport) -> Result<LatencyHistogram, String> {
    match &phase.histogram {
        Some(text) => LatencyHistogram::from_base64(text).map_err(|e| {
            format!(
                "has an unreadable histogram for phase `{}`: {e}",
                phase.name
            )
        }),
        None if phase.requests == 0 => Ok(LatencyHistogram::new()),
        None => Err(format!(
            "has no histogram for phase `{}` (written before histograms were recorded?)",
            phase.name
        )),
    }
}

fn skipped(mut check: Check, why: &str) -> Check {
    check.observed = "skipped".into();
    check.message = Some(format!("not compared: {why}"));
    check
}

fn inconclusive(mut check: Check, current: u64, baseline: u64) -> Check {
    check.observed = format!(
        "inconclusive: {current} vs {baseline} samples, at least {DEFAULT_MIN_SAMPLES} per side needed"
    );
    check
}

/// `p=0.042`, `p=3.1e-9`, or `p<1e-300` when the p-value underflowed.
pub fn format_p(p: f64) -> String {
    if p >= 0.001 {
        format!("p={p:.3}")
    } else if p > 0.0 {
        format!("p={p:.1e}")
    } else {
        "p<1e-300".into()
    }
}

fn signed_percent(change: f64) -> String {
    if !change.is_finite() {
        "n/a".into()
    } else if change.abs() >= 0.1 {
        format!("{:+.0}%", change * 100.0)
    } else {
        format!("{:+.1}%", change * 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{ExperimentReport, HostInfo, LoadInfo, RunStatus, Summary};
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn phase(name: &str, latencies_us: &[u64], errors: u64) -> PhaseReport {
        let mut h = LatencyHistogram::new();
        for &us in latencies_us {
            h.record(Duration::from_micros(us));
        }
        let requests = latencies_us.len() as u64;
        PhaseReport {
            name: name.into(),
            start: "2025-01-01T00:00:00.000Z".into(),
            start_offset_s: 0.0,
            duration_s: 10.0,
            planned_duration_s: 10.0,
            completed: true,
            requests,
            errors,
            error_rate: errors as f64 / requests.max(1) as f64,
            errors_by_class: BTreeMap::new(),
            status_counts: BTreeMap::new(),
            rate: requests as f64 / 10.0,
            target_rate: None,
            late: 0,
            unsent: 0,
            latency_ms: h.summary(),
            service_time_ms: None,
            faults: vec!["latency 100ms on payments".into()],
            histogram: (!h.is_empty()).then(|| h.to_base64()),
            telemetry: None,
            pressure: vec![],
            versions: vec![],
            unversioned: 0,
        }
    }

    fn report(phases: Vec<PhaseReport>) -> RunReport {
        let exp = ExperimentReport {
            name: "checkout".into(),
            description: None,
            tags: vec![],
            file: "x.yaml".into(),
            suite: None,
            status: ExperimentStatus::Passed,
            error: None,
            rollback_failed: false,
            started_at: "2025-01-01T00:00:00.000Z".into(),
            duration_s: 10.0,
            target: "url".into(),
            load: LoadInfo {
                model: "open".into(),
                rate: Some("100/s".into()),
                concurrency: None,
                max_in_flight: Some(1024),
                timeout_ms: 1000.0,
                sent: 0,
                unsent: 0,
            },
            phases,
            checks: vec![],
            faults: vec![],
            series: vec![],
            telemetry: vec![],
        };
        let mut r = RunReport {
            schema_version: 1,
            faultline_version: "0".into(),
            status: RunStatus::Passed,
            exit_code: 0,
            rollback_failed: false,
            seed: 1,
            run_id: String::new(),
            suite: None,
            shard: None,
            started_at: String::new(),
            finished_at: String::new(),
            duration_s: 10.0,
            host: HostInfo {
                hostname: "h".into(),
                os: "linux".into(),
                arch: "x86_64".into(),
                cpus: 2,
            },
            files: vec![],
            experiments: vec![exp],
            summary: Summary::default(),
            notes: vec![],
            operator_notes: vec![],
        };
        r.refresh_summary();
        r
    }

    /// 1000 latencies spread deterministically over `from_ms..from_ms+10ms`.
    fn spread(from_ms: u64) -> Vec<u64> {
        spread_over(from_ms, 10_000)
    }

    fn spread_over(from_ms: u64, width_us: u64) -> Vec<u64> {
        (0..1000)
            .map(|i| from_ms * 1000 + (i * 7919) % width_us)
            .collect()
    }

    fn check<'a>(checks: &'a [(String, Check)], name: &str) -> &'a Check {
        &checks
            .iter()
            .find(|(_, c)| c.name == name)
            .unwrap_or_else(|| panic!("no `{name}` in {checks:#?}"))
            .1
    }

    #[test]
    fn a_slower_phase_fails_with_p_value_and_effect() {
        let current = report(vec![phase("steady", &spread(17), 0)]);
        let baseline = report(vec![phase("steady", &spread(12), 0)]);
        let checks = regression_checks(&current, &baseline, 0.01);
        let lat = check(&checks, "latency vs baseline");
        assert!(!lat.passed, "{lat:#?}");
        assert_eq!(lat.kind, "regression");
        assert_eq!(lat.expected, "not worse than baseline (alpha 0.01)");
        assert!(lat.observed.starts_with("worse: p="), "{}", lat.observed);
        assert!(lat.observed.contains("p50 +"), "{}", lat.observed);
        assert!(lat.observed.contains("→"), "{}", lat.observed);
        assert!(lat
            .message
            .as_deref()
            .unwrap_or("")
            .contains("rank-biserial"));
        assert_eq!(lat.samples, 2000);
        assert_eq!(lat.window.as_deref(), Some("0.0s–10.0s"));
        assert_eq!(lat.faults, vec!["latency 100ms on payments".to_string()]);
        assert!(check(&checks, "error_rate vs baseline").passed);
    }

    #[test]
    fn the_same_phase_passes_and_a_faster_one_is_better() {
        let a = report(vec![phase("steady", &spread(12), 0)]);
        let checks = regression_checks(&a, &a, 0.01);
        assert!(checks.iter().all(|(_, c)| c.passed), "{checks:#?}");
        assert!(check(&checks, "latency vs baseline")
            .observed
            .starts_with("same: p=1.000"));
        let faster = report(vec![phase("steady", &spread(5), 0)]);
        let checks = regression_checks(&faster, &a, 0.01);
        let lat = check(&checks, "latency vs baseline");
        assert!(lat.passed && lat.observed.starts_with("better:"), "{lat:?}");
    }

    #[test]
    fn a_significant_but_tiny_slowdown_does_not_fail() {
        // +0.3 ms on a 12 ms median, 1000 samples a side: p is tiny, the effect is not.
        let base = spread_over(12, 2_000);
        let shifted: Vec<u64> = base.iter().map(|us| us + 300).collect();
        let current = report(vec![phase("steady", &shifted, 0)]);
        let baseline = report(vec![phase("steady", &base, 0)]);
        let lat = check(
            &regression_checks(&current, &baseline, 0.01),
            "latency vs baseline",
        )
        .clone();
        assert!(lat.passed, "{lat:#?}");
        assert!(lat.observed.starts_with("same: p="), "{}", lat.observed);
        assert!(lat.observed.contains("minimum effect"), "{}", lat.observed);
    }

    #[test]
    fn more_errors_fail_and_zero_errors_against_zero_pass() {
        let current = report(vec![phase("steady", &spread(12), 30)]);
        let baseline = report(vec![phase("steady", &spread(12), 0)]);
        let checks = regression_checks(&current, &baseline, 0.01);
        let er = check(&checks, "error_rate vs baseline");
        assert!(!er.passed, "{er:#?}");
        assert!(er.observed.contains("0.00% → 3.00%"), "{}", er.observed);
        assert!(er.message.as_deref().unwrap_or("").contains("30 of 1000"));
    }

    #[test]
    fn a_missing_histogram_is_skipped_not_failed() {
        let current = report(vec![phase("steady", &spread(30), 0)]);
        let mut baseline = report(vec![phase("steady", &spread(12), 0)]);
        baseline.experiments[0].phases[0].histogram = None;
        let lat = check(
            &regression_checks(&current, &baseline, 0.01),
            "latency vs baseline",
        )
        .clone();
        assert!(lat.passed);
        assert_eq!(lat.observed, "skipped");
        assert!(lat
            .message
            .as_deref()
            .unwrap_or("")
            .contains("baseline report has no histogram"));
    }

    #[test]
    fn too_few_samples_is_inconclusive_and_passes() {
        let current = report(vec![phase("steady", &[90_000; 20], 20)]);
        let baseline = report(vec![phase("steady", &[1_000; 20], 0)]);
        let checks = regression_checks(&current, &baseline, 0.01);
        for (_, c) in &checks {
            assert!(c.passed, "{c:#?}");
            assert!(
                c.observed.starts_with("inconclusive: 20 vs 20 samples"),
                "{}",
                c.observed
            );
        }
    }

    #[test]
    fn only_phases_in_both_reports_are_compared() {
        let current = report(vec![
            phase("warm", &spread(1), 0),
            phase("steady", &spread(12), 0),
        ]);
        let baseline = report(vec![
            phase("steady", &spread(12), 0),
            phase("cool", &spread(1), 0),
        ]);
        let checks = regression_checks(&current, &baseline, 0.01);
        assert_eq!(checks.len(), 2);
        let mut applied = current.clone();
        apply(&mut applied, &baseline, 0.01);
        assert!(
            applied
                .notes
                .iter()
                .any(|n| n.contains("phase `warm` is not in the baseline")),
            "{:#?}",
            applied.notes
        );
        assert!(checks
            .iter()
            .all(|(exp, c)| exp == "checkout" && c.phase.as_deref() == Some("steady")));
    }

    #[test]
    fn apply_fails_the_experiment_and_the_run_and_is_idempotent() {
        let mut current = report(vec![phase("steady", &spread(17), 0)]);
        let baseline = report(vec![phase("steady", &spread(12), 0)]);
        assert_eq!(current.exit_code, 0);
        apply(&mut current, &baseline, 0.01);
        apply(&mut current, &baseline, 0.01);
        assert_eq!(current.experiments[0].status, ExperimentStatus::Failed);
        assert_eq!(
            current.experiments[0].checks.len(),
            2,
            "replaced, not doubled"
        );
        assert_eq!(current.notes.len(), 1, "{:#?}", current.notes);
        assert!(current.notes[0].starts_with("--baseline: compared with the run started"));
        assert_eq!(current.status, RunStatus::Failed);
        assert_eq!(current.exit_code, 1);
        assert_eq!(
            (current.summary.failed, current.summary.checks_failed),
            (1, 1)
        );
    }

    #[test]
    fn refresh_summary_keeps_the_most_severe_outcome() {
        let mut r = report(vec![phase("steady", &spread(12), 0)]);
        r.experiments[0].status = ExperimentStatus::Aborted;
        let mut failed = r.experiments[0].clone();
        failed.status = ExperimentStatus::Failed;
        failed
            .checks
            .push(new_check("x", &failed.phases[0], &failed.phases[0], 0.01));
        failed.checks[0].passed = false;
        r.experiments.push(failed);
        r.refresh_summary();
        assert_eq!((r.status, r.exit_code), (RunStatus::Aborted, 3));
        r.experiments[1].rollback_failed = true;
        r.refresh_summary();
        assert_eq!((r.status, r.exit_code), (RunStatus::RollbackFailed, 5));
        assert!(r.rollback_failed);
    }

    #[test]
    fn p_values_are_formatted_for_people() {
        assert_eq!(format_p(0.4213), "p=0.421");
        assert_eq!(format_p(0.00012), "p=1.2e-4");
        assert_eq!(format_p(0.0), "p<1e-300");
        assert_eq!(signed_percent(0.3812), "+38%");
        assert_eq!(signed_percent(-0.004), "-0.4%");
    }
}
