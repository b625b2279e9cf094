//! The per-phase part of an experiment's report: each phase's numbers
//! (`phases[]`, with `versions[]` when the run reads versions) and the
//! checks judged on them alone: thresholds, `by_version` thresholds and
//! `rate_achieved`.

use std::time::{Duration, SystemTime};

use super::experiment::rfc3339;
use crate::config::model::{Experiment, LoadModel};
use crate::faults;
use crate::journal::{ExperimentReport, PhaseReport, VersionReport};
use crate::load::Schedule;
use crate::metrics::telemetry;
use crate::metrics::{PhaseVersions, RecorderOutput, VersionMetrics};
use crate::verify::{by_version, evaluate_threshold, rate_achieved, PhaseView};

pub(super) fn fill_phases(
    report: &mut ExperimentReport,
    exp: &Experiment,
    spans: &[(Duration, Duration)],
    output: &RecorderOutput,
    t0_wall: SystemTime,
    samples: &[telemetry::TelemetrySample],
) {
    let schedule = match &exp.load.model {
        LoadModel::Open { rate, .. } => Some(Schedule::new(rate.clone())),
        LoadModel::Closed { .. } => None,
    };
    let reads_versions = exp.version_source().is_some();
    let mut planned_start = Duration::ZERO;
    for (i, phase) in exp.phases.iter().enumerate() {
        let planned_end = planned_start + phase.duration;
        let Some(&(_, actual_end)) = spans.get(i) else {
            break; // never started
        };
        let metrics = output.phases.get(i).cloned().unwrap_or_default();
        let completed = actual_end >= planned_end;
        // Requests are scheduled only up to the planned end, so an
        // overrunning phase is judged over its planned duration.
        let duration = actual_end.min(planned_end).saturating_sub(planned_start);
        let duration_s = duration.as_secs_f64();
        let host = telemetry::phase_summary(
            samples,
            planned_start.as_secs_f64(),
            (planned_start + duration).as_secs_f64(),
        );
        let view = PhaseView {
            name: &phase.name,
            metrics: &metrics,
            duration_s,
            min_samples: phase.min_samples,
            host_cpu: host.as_ref().map(|h| h.host_cpu_avg / 100.0),
            host_memory: host
                .as_ref()
                .filter(|h| h.mem_total_bytes > 0)
                .map(|h| h.mem_used_avg_bytes as f64 / h.mem_total_bytes as f64),
        };
        let first_check = report.checks.len();
        for th in &phase.expect {
            report.checks.push(evaluate_threshold(th, &view));
        }
        for v in &phase.by_version {
            for th in &v.thresholds {
                report
                    .checks
                    .push(by_version::evaluate(&v.version, th, &view));
            }
        }
        let target_rate = schedule
            .as_ref()
            .filter(|_| duration_s > 0.0)
            .map(|s| s.expected_between(planned_start, planned_start + duration) / duration_s);
        if let (Some(target), true) = (target_rate, completed) {
            report.checks.push(rate_achieved(&view, target));
        }
        let active: Vec<String> = phase.inject.iter().map(faults::describe_in_phase).collect();
        let window = format!(
            "{:.1}s–{:.1}s",
            planned_start.as_secs_f64(),
            (planned_start + duration).as_secs_f64()
        );
        for check in &mut report.checks[first_check..] {
            check.window = Some(window.clone());
            check.faults = active.clone();
        }
        report.phases.push(PhaseReport {
            name: phase.name.clone(),
            start: rfc3339(t0_wall + planned_start),
            start_offset_s: planned_start.as_secs_f64(),
            duration_s,
            planned_duration_s: phase.duration.as_secs_f64(),
            completed,
            requests: metrics.requests,
            errors: metrics.errors,
            error_rate: metrics.error_rate(),
            errors_by_class: metrics
                .errors_by_class
                .iter()
                .map(|(k, v)| (k.key().to_string(), *v))
                .collect(),
            status_counts: metrics
                .status_counts
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            rate: view.rate(),
            target_rate,
            late: metrics.late,
            unsent: metrics.unsent,
            latency_ms: metrics.response.summary(),
            service_time_ms: metrics.service.summary(),
            faults: active,
            histogram: (!metrics.response.is_empty()).then(|| metrics.response.to_base64()),
            telemetry: None,
            pressure: Vec::new(),
            versions: if reads_versions {
                version_reports(&metrics.versions, duration_s)
            } else {
                Vec::new()
            },
            unversioned: if reads_versions {
                metrics.versions.unversioned
            } else {
                0
            },
        });
        planned_start = planned_end;
    }
}

/// `phases[].versions`: each tracked version, then the overflow as `other`.
fn version_reports(versions: &PhaseVersions, duration_s: f64) -> Vec<VersionReport> {
    let entry = |version: String, m: &VersionMetrics, other: bool| VersionReport {
        version,
        requests: m.requests,
        errors: m.errors,
        error_rate: m.error_rate(),
        rate: if duration_s > 0.0 {
            m.requests as f64 / duration_s
        } else {
            0.0
        },
        latency_ms: m.response.summary(),
        histogram: (!m.response.is_empty()).then(|| m.response.to_base64()),
        other,
    };
    versions
        .tracked
        .iter()
        .map(|(tag, m)| entry(tag.to_string(), m, false))
        .chain(
            versions
                .other
                .iter()
                .map(|m| entry("other".into(), m, true)),
        )
        .collect()
}
