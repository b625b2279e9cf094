//! `faultline merge a.json b.json ... -o merged.json`: one report from the
//! reports of shards that drove the same experiments concurrently (each from
//! its own machine, each with a share of the load).
//!
//! What is exact and what is not, and why:
//!
//! - **Latency percentiles are exact** (to HDR precision): each phase's
//!   histograms are decoded, added, and `latency_ms` is recomputed from the
//!   sum. Averaging percentiles would be wrong.
//! - **Counts are summed** (requests, errors, classes, statuses, late,
//!   unsent), and so are **rates and target rates**: the shards ran at the
//!   same time, so the system saw their sum. Durations are the maximum.
//! - **Thresholds are re-evaluated** on the merged phase: a shard's verdict
//!   is about a fraction of the load, the merged one about all of it. A
//!   threshold check carries its metric (the first word of its name) and its
//!   bound (`expected`), which is all [`evaluate_threshold`] needs. The same
//!   goes for `rate_achieved`, against the summed target rate. Other kinds of
//!   check (e.g. `regression`) cannot be recomputed from the merged data, but
//!   what each shard observed still happened: they are kept as each report
//!   judged them, named `… (report N)`, and a note says so. Dropping them
//!   could turn a shard's failure into a merged pass. (`--baseline` on the
//!   merged report replaces per-report `regression` checks with merged ones.)
//! - **Per-version numbers** (`phases[].versions`) are merged the same way,
//!   by label, and `by_version` thresholds re-evaluated on them.
//! - **Service time is dropped** (`service_time_ms: null`, with a note):
//!   reports carry only the response-time histogram, and percentiles of
//!   service time cannot be merged from percentiles.
//! - **The per-second series** is summed per second (seconds counted from
//!   each shard's own load start); its p50/p99 are the maximum over the
//!   shards, an upper bound, because per-second histograms are not stored.
//!
//! Everything a reader needs to know about this lands in the report's
//! `notes`. The run's status, summary and exit code are re-derived from the
//! merged experiments with the runner's rules.

use crate::config::model::Metric;
use crate::config::units::parse_threshold;
use crate::journal::{
    Check, ExperimentReport, ExperimentStatus, HostInfo, LoadInfo, PhaseReport, RunReport,
    RunStatus, Summary, SCHEMA_VERSION,
};
use crate::metrics::{LatencyHistogram, PhaseMetrics, PhaseVersions, WindowSummary};
use crate::verify::{by_version, evaluate_threshold, rate_achieved, PhaseView};
use std::cmp::Ordering;
use std::collections::BTreeMap;

mod versions;

/// Why reports cannot be merged. Reports are numbered from 1 in the order given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: no reports given")]
    Empty,
    #[error(
        "report {report} has schema_version {found} but report 1 has {expected}: \
         merge reports written by the same faultline version"
    )]
    SchemaVersion {
        report: usize,
        expected: u32,
        found: u32,
    },
    #[error("report {report} has experiment `{experiment}` twice, so its shards cannot be matched by name")]
    DuplicateExperiment { report: usize, experiment: String },
    #[error(
        "report {report} does not have the experiments of report 1 (missing: {}; not in report 1: {}): \
         only shards of the same experiments can be merged",
        list(.missing),
        list(.extra)
    )]
    Experiments {
        report: usize,
        missing: Vec<String>,
        extra: Vec<String>,
    },
    #[error(
        "experiment `{experiment}`: report {report} has phases {} but report {reference} has {}: \
         only shards of the same experiment can be merged",
        list(.found),
        list(.expected)
    )]
    Phases {
        experiment: String,
        report: usize,
        found: Vec<String>,
        reference: usize,
        expected: Vec<String>,
    },
    #[error(
        "experiment `{experiment}`, phase `{phase}`: report {report} has {requests} requests but \
         no histogram, so its percentiles cannot be merged exactly (was it written by an older faultline?)"
    )]
    MissingHistogram {
        experiment: String,
        phase: String,
        report: usize,
        requests: u64,
    },
    #[error("experiment `{experiment}`, phase `{phase}`: report {report} has an unreadable histogram: {reason}")]
    BadHistogram {
        experiment: String,
        phase: String,
        report: usize,
        reason: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One experiment as seen by one report (1-based report number).
type Shard<'a, T> = (usize, &'a T);

/// Merges shard reports of the same experiments into one report.
pub fn merge(reports: &[RunReport]) -> Result<RunReport, MergeError> {
    let first = reports.first().ok_or(MergeError::Empty)?;
    let names = experiment_names(first, 1)?;
    for (i, r) in reports.iter().enumerate().skip(1) {
        if r.schema_version != first.schema_version {
            return Err(MergeError::SchemaVersion {
                report: i + 1,
                expected: first.schema_version,
                found: r.schema_version,
            });
        }
        let these = experiment_names(r, i + 1)?;
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !these.contains(n))
            .cloned()
            .collect();
        let extra: Vec<String> = these
            .iter()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            return Err(MergeError::Experiments {
                report: i + 1,
                missing,
                extra,
            });
        }
    }
    let mut notes = Notes::default();
    let mut experiments = Vec::new();
    for name in &names {
        let shards: Vec<Shard<ExperimentReport>> = reports
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                r.experiments
                    .iter()
                    .find(|e| &e.name == name)
                    .map(|e| (i + 1, e))
            })
            .collect();
        experiments.push(merge_experiment(&shards, &mut notes)?);
    }
    let mut merged = RunReport {
        schema_version: SCHEMA_VERSION,
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        status: RunStatus::Passed,
        exit_code: 0,
        rollback_failed: false,
        seed: first.seed,
        run_id: distinct(reports.iter().map(|r| r.run_id.as_str())).join("+"),
        suite: same(reports.iter().map(|r| r.suite.clone())).flatten(),
        shard: Some(format!("merged from {} reports", reports.len())),
        started_at: extreme(
            reports.iter().map(|r| r.started_at.as_str()),
            Ordering::Less,
        ),
        finished_at: extreme(
            reports.iter().map(|r| r.finished_at.as_str()),
            Ordering::Greater,
        ),
        duration_s: 0.0,
        host: merge_hosts(reports),
        files: distinct(
            reports
                .iter()
                .flat_map(|r| r.files.iter().map(String::as_str)),
        )
        .into_iter()
        .map(String::from)
        .collect(),
        experiments,
        summary: Summary::default(),
        notes: notes.finish(reports),
        operator_notes: reports
            .iter()
            .flat_map(|r| r.operator_notes.iter().cloned())
            .collect(),
    };
    merged.duration_s = wall_duration(&merged.started_at, &merged.finished_at)
        .unwrap_or_else(|| reports.iter().map(|r| r.duration_s).fold(0.0, f64::max));
    merged.refresh_summary();
    Ok(merged)
}

/// The experiment names of a report, in order; duplicates are an error.
fn experiment_names(report: &RunReport, number: usize) -> Result<Vec<String>, MergeError> {
    let mut names: Vec<String> = Vec::new();
    for e in &report.experiments {
        if names.contains(&e.name) {
            return Err(MergeError::DuplicateExperiment {
                report: number,
                experiment: e.name.clone(),
            });
        }
        names.push(e.name.clone());
    }
    Ok(names)
}

/// What the merged report's `notes` will say, collected along the way.
#[derive(Default)]
struct Notes {
    service_time_dropped: bool,
    series_merged: bool,
    reevaluated: bool,
    specific: Vec<String>,
}

impl Notes {
    fn finish(self, reports: &[RunReport]) -> Vec<String> {
        let seeds: Vec<String> = reports.iter().map(|r| r.seed.to_string()).collect();
        let mut out = vec![format!(
            "merged from {} reports; their seeds, in order: {} (`seed` is the first)",
            reports.len(),
            seeds.join(", ")
        )];
        let versions = distinct(reports.iter().map(|r| r.faultline_version.as_str()));
        if versions.len() > 1 {
            out.push(format!(
                "the reports were written by faultline {}",
                versions.join(", ")
            ));
        }
        if self.reevaluated {
            out.push(
                "threshold and rate_achieved checks were re-evaluated on the merged data; \
                 latency percentiles are exact, computed from the merged histograms"
                    .into(),
            );
        }
        if self.service_time_dropped {
            out.push(
                "service_time_ms is null: reports keep only the response-time histogram, \
                 and service-time percentiles cannot be merged from percentiles"
                    .into(),
            );
        }
        if self.series_merged {
            out.push(
                "series: requests and errors are summed per second (from each report's own \
                 load start); p50/p99 are the maximum over the reports, an upper bound, \
                 because per-second histograms are not stored"
                    .into(),
            );
        }
        out.extend(self.specific);
        out
    }
}

fn merge_experiment(
    shards: &[Shard<ExperimentReport>],
    notes: &mut Notes,
) -> Result<ExperimentReport, MergeError> {
    let (_, first) = shards[0];
    let phase_names = phase_names(shards)?;
    let mut phases = Vec::new();
    let mut checks = Vec::new();
    for name in &phase_names {
        let parts: Vec<Shard<PhaseReport>> = shards
            .iter()
            .filter_map(|&(n, e)| e.phases.iter().find(|p| &p.name == name).map(|p| (n, p)))
            .collect();
        if parts.len() < shards.len() {
            notes.specific.push(format!(
                "experiment `{}`, phase `{name}`: measured by {} of {} reports (the others stopped before it)",
                first.name,
                parts.len(),
                shards.len()
            ));
        }
        let (mut phase, histogram) = merge_phase(&first.name, &parts)?;
        let (version_list, versions) = versions::merge(&first.name, &parts)?;
        phase.versions = version_list;
        notes.service_time_dropped |= parts.iter().any(|(_, p)| p.service_time_ms.is_some());
        phase.completed &= parts.len() == shards.len();
        checks.extend(reevaluate_checks(shards, &phase, histogram, versions));
        phases.push(phase);
    }
    notes.reevaluated |= !checks.is_empty();
    let mut kept: BTreeMap<&str, usize> = BTreeMap::new();
    for &(n, e) in shards {
        for c in &e.checks {
            let phase_known = c.phase.as_ref().is_some_and(|p| phase_names.contains(p));
            if !(REEVALUATED.contains(&c.kind.as_str()) && phase_known) {
                *kept.entry(c.kind.as_str()).or_default() += 1;
                checks.push(Check {
                    name: format!("{} (report {n})", c.name),
                    ..c.clone()
                });
            }
        }
    }
    for (kind, n) in kept {
        notes.specific.push(format!(
            "experiment `{}`: {n} `{kind}` check(s) kept as each report judged them \
             (named `… (report N)`): they cannot be recomputed from merged data",
            first.name
        ));
    }
    let series = merge_series(shards);
    notes.series_merged |= shards.iter().filter(|(_, e)| !e.series.is_empty()).count() > 1;
    Ok(ExperimentReport {
        name: first.name.clone(),
        description: first.description.clone(),
        tags: first.tags.clone(),
        file: first.file.clone(),
        suite: first.suite.clone(),
        status: merged_status(shards),
        error: {
            let errors: Vec<String> = shards
                .iter()
                .filter_map(|(n, e)| e.error.as_ref().map(|err| format!("report {n}: {err}")))
                .collect();
            (!errors.is_empty()).then(|| errors.join("; "))
        },
        rollback_failed: shards.iter().any(|(_, e)| e.rollback_failed),
        started_at: extreme(
            shards.iter().map(|(_, e)| e.started_at.as_str()),
            Ordering::Less,
        ),
        duration_s: shards.iter().map(|(_, e)| e.duration_s).fold(0.0, f64::max),
        target: distinct(shards.iter().map(|(_, e)| e.target.as_str())).join("; "),
        load: merge_load(shards),
        phases,
        checks,
        faults: shards
            .iter()
            .flat_map(|(_, e)| e.faults.iter().cloned())
            .collect(),
        series,
        telemetry: Vec::new(),
    })
}

/// The check kinds recomputed on merged data.
const REEVALUATED: [&str; 2] = ["threshold", "rate_achieved"];

/// The phase names all shards agree on. A shard whose experiment errored,
/// was aborted or skipped may have stopped early: its phases need only be a
/// prefix of the longest list.
fn phase_names(shards: &[Shard<ExperimentReport>]) -> Result<Vec<String>, MergeError> {
    let names =
        |e: &ExperimentReport| -> Vec<String> { e.phases.iter().map(|p| p.name.clone()).collect() };
    let (reference, longest) =
        shards
            .iter()
            .map(|&(n, e)| (n, names(e)))
            .fold((0, Vec::new()), |best, (n, these)| {
                if these.len() > best.1.len() {
                    (n, these)
                } else {
                    best
                }
            });
    for &(n, e) in shards {
        let these = names(e);
        let stopped_early = matches!(
            e.status,
            ExperimentStatus::Error | ExperimentStatus::Aborted | ExperimentStatus::Skipped
        );
        let fits = these == longest || (stopped_early && longest.starts_with(&these));
        if !fits {
            return Err(MergeError::Phases {
                experiment: e.name.clone(),
                report: n,
                found: these,
                reference,
                expected: longest,
            });
        }
    }
    Ok(longest)
}

/// Sums one phase over the shards that measured it; returns the merged
/// response-time histogram too.
fn merge_phase(
    experiment: &str,
    parts: &[Shard<PhaseReport>],
) -> Result<(PhaseReport, LatencyHistogram), MergeError> {
    let (_, first) = parts[0];
    let mut histogram = LatencyHistogram::new();
    for &(n, p) in parts {
        match &p.histogram {
            Some(text) => {
                let h = LatencyHistogram::from_base64(text).map_err(|reason| {
                    MergeError::BadHistogram {
                        experiment: experiment.into(),
                        phase: p.name.clone(),
                        report: n,
                        reason,
                    }
                })?;
                histogram.merge(&h);
            }
            None if p.requests > 0 => {
                return Err(MergeError::MissingHistogram {
                    experiment: experiment.into(),
                    phase: p.name.clone(),
                    report: n,
                    requests: p.requests,
                })
            }
            None => {}
        }
    }
    let sum = |f: fn(&PhaseReport) -> u64| parts.iter().map(|(_, p)| f(p)).sum::<u64>();
    let sum_maps = |f: fn(&PhaseReport) -> &BTreeMap<String, u64>| {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (_, p) in parts {
            for (k, v) in f(p) {
                *out.entry(k.clone()).or_default() += v;
            }
        }
        out
    };
    let requests = sum(|p| p.requests);
    let errors = sum(|p| p.errors);
    let target_rates: Vec<f64> = parts.iter().filter_map(|(_, p)| p.target_rate).collect();
    let phase = PhaseReport {
        name: first.name.clone(),
        start: extreme(parts.iter().map(|(_, p)| p.start.as_str()), Ordering::Less),
        start_offset_s: parts
            .iter()
            .map(|(_, p)| p.start_offset_s)
            .fold(f64::INFINITY, f64::min),
        duration_s: parts.iter().map(|(_, p)| p.duration_s).fold(0.0, f64::max),
        planned_duration_s: parts
            .iter()
            .map(|(_, p)| p.planned_duration_s)
            .fold(0.0, f64::max),
        completed: parts.iter().all(|(_, p)| p.completed),
        requests,
        errors,
        error_rate: crate::metrics::error_rate(errors, requests),
        errors_by_class: sum_maps(|p| &p.errors_by_class),
        status_counts: sum_maps(|p| &p.status_counts),
        rate: parts.iter().map(|(_, p)| p.rate).sum(),
        target_rate: (!target_rates.is_empty()).then(|| target_rates.iter().sum()),
        late: sum(|p| p.late),
        unsent: sum(|p| p.unsent),
        latency_ms: histogram.summary(),
        service_time_ms: None,
        faults: distinct(
            parts
                .iter()
                .flat_map(|(_, p)| p.faults.iter().map(String::as_str)),
        )
        .into_iter()
        .map(String::from)
        .collect(),
        histogram: (!histogram.is_empty()).then(|| histogram.to_base64()),
        telemetry: None,
        pressure: Vec::new(),
        versions: Vec::new(),
        unversioned: sum(|p| p.unversioned),
    };
    Ok((phase, histogram))
}

/// The threshold and `rate_achieved` checks of one merged phase, judged
/// again on the merged numbers (in the runner's order: thresholds first).
fn reevaluate_checks(
    shards: &[Shard<ExperimentReport>],
    phase: &PhaseReport,
    histogram: LatencyHistogram,
    versions: PhaseVersions,
) -> Vec<Check> {
    let of_phase: Vec<&Check> = shards
        .iter()
        .flat_map(|(_, e)| e.checks.iter())
        .filter(|c| c.phase.as_deref() == Some(phase.name.as_str()))
        .collect();
    let mut thresholds: Vec<&Check> = Vec::new();
    for c in of_phase.iter().filter(|c| c.kind == "threshold") {
        if !thresholds.iter().any(|t| t.name == c.name) {
            thresholds.push(c);
        }
    }
    let metrics = PhaseMetrics {
        requests: phase.requests,
        errors: phase.errors,
        late: phase.late,
        unsent: phase.unsent,
        response: histogram,
        versions,
        ..PhaseMetrics::default()
    };
    // The view's rate (requests / duration) must be the summed rate of
    // shards that ran side by side, so the duration is derived from it.
    let duration_s = if phase.rate > 0.0 {
        phase.requests as f64 / phase.rate
    } else {
        phase.duration_s
    };
    let view = PhaseView {
        name: &phase.name,
        metrics: &metrics,
        duration_s,
        min_samples: min_samples(&thresholds),
        host_cpu: None,
        host_memory: None,
    };
    let mut out: Vec<Check> = thresholds.iter().map(|c| reevaluate(c, &view)).collect();
    let had_rate_check = of_phase.iter().any(|c| c.kind == "rate_achieved");
    if let (true, true, Some(target)) = (had_rate_check, phase.completed, phase.target_rate) {
        out.push(rate_achieved(&view, target));
    }
    let window = format!(
        "{:.1}s–{:.1}s",
        phase.start_offset_s,
        phase.start_offset_s + phase.duration_s
    );
    for c in &mut out {
        c.window = Some(window.clone());
        c.faults = phase.faults.clone();
    }
    out
}

/// Re-evaluates a threshold check from its name (`p99 < 100ms`: the metric
/// is the first word) and its `expected` bound. One that cannot be read back
/// fails: a threshold must never pass silently.
fn reevaluate(check: &Check, view: &PhaseView<'_>) -> Check {
    let first = check.name.split_whitespace().next().unwrap_or_default();
    // `p99{version=v2} < 300ms` is judged on that version's merged numbers.
    let (key, version) = match by_version::parse_name(&check.name) {
        Some((key, version)) => (key, Some(version)),
        None => (first, None),
    };
    let threshold = Metric::from_key(key)
        .ok_or_else(|| format!("`{key}` is not a metric"))
        .and_then(|metric| parse_threshold(metric, &check.expected));
    match (threshold, version) {
        (Ok(th), Some(version)) => by_version::evaluate(version, &th, view),
        (Ok(th), None) => evaluate_threshold(&th, view),
        (Err(why), _) => Check {
            passed: false,
            observed: "not re-evaluated".into(),
            message: Some(format!(
                "`{}` could not be re-evaluated on the merged data: {why}",
                check.name
            )),
            ..check.clone()
        },
    }
}

/// The phase's `min_samples`, as far as the reports reveal it: a threshold
/// that failed for lack of data says "at least N needed". When no shard
/// says so, every shard had enough, and so has their sum: 1 is then exact.
fn min_samples(thresholds: &[&Check]) -> u64 {
    thresholds
        .iter()
        .filter_map(|c| {
            let message = c.message.as_deref()?.strip_prefix("no data:")?;
            let rest = message.split("at least ").nth(1)?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
        .max()
        .unwrap_or(1)
}

/// The merged experiment's status before checks are judged: all skipped →
/// skipped; any aborted → aborted; any error, or skipped by some shards
/// only (a partial measurement) → error; otherwise passed, and
/// [`RunReport::refresh_summary`] then decides passed or failed from the checks.
fn merged_status(shards: &[Shard<ExperimentReport>]) -> ExperimentStatus {
    let any = |s: ExperimentStatus| shards.iter().any(|(_, e)| e.status == s);
    if shards
        .iter()
        .all(|(_, e)| e.status == ExperimentStatus::Skipped)
    {
        ExperimentStatus::Skipped
    } else if any(ExperimentStatus::Aborted) {
        ExperimentStatus::Aborted
    } else if any(ExperimentStatus::Error) || any(ExperimentStatus::Skipped) {
        ExperimentStatus::Error
    } else {
        ExperimentStatus::Passed
    }
}

fn merge_load(shards: &[Shard<ExperimentReport>]) -> LoadInfo {
    let loads: Vec<&LoadInfo> = shards.iter().map(|(_, e)| &e.load).collect();
    let sum_some = |f: fn(&LoadInfo) -> Option<usize>| {
        let values: Vec<usize> = loads.iter().filter_map(|l| f(l)).collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    let rates = distinct(loads.iter().filter_map(|l| l.rate.as_deref()));
    let rate = match rates.as_slice() {
        [] => None,
        [one] if loads.len() > 1 => Some(format!("{} × {one}", loads.len())),
        _ => Some(rates.join(" + ")),
    };
    LoadInfo {
        model: distinct(loads.iter().map(|l| l.model.as_str())).join("+"),
        rate,
        concurrency: sum_some(|l| l.concurrency),
        max_in_flight: sum_some(|l| l.max_in_flight),
        timeout_ms: loads.iter().map(|l| l.timeout_ms).fold(0.0, f64::max),
        sent: loads.iter().map(|l| l.sent).sum(),
        unsent: loads.iter().map(|l| l.unsent).sum(),
    }
}

fn merge_series(shards: &[Shard<ExperimentReport>]) -> Vec<WindowSummary> {
    let mut by_second: BTreeMap<u64, WindowSummary> = BTreeMap::new();
    let max = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    for (_, e) in shards {
        for w in &e.series {
            by_second
                .entry(w.t)
                .and_modify(|m| {
                    m.requests += w.requests;
                    m.errors += w.errors;
                    m.p50 = max(m.p50, w.p50);
                    m.p99 = max(m.p99, w.p99);
                })
                .or_insert_with(|| w.clone());
        }
    }
    by_second
        .into_values()
        .map(|mut w| {
            w.error_rate = crate::metrics::error_rate(w.errors, w.requests);
            w
        })
        .collect()
}

fn merge_hosts(reports: &[RunReport]) -> HostInfo {
    HostInfo {
        hostname: distinct(reports.iter().map(|r| r.host.hostname.as_str())).join(", "),
        os: distinct(reports.iter().map(|r| r.host.os.as_str())).join(", "),
        arch: distinct(reports.iter().map(|r| r.host.arch.as_str())).join(", "),
        // The machines ran side by side: their CPUs add up.
        cpus: reports.iter().map(|r| r.host.cpus).sum(),
    }
}

/// Distinct non-empty values, in first-seen order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for v in values {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// The common value, when every item has the same one.
fn same<T: PartialEq>(mut values: impl Iterator<Item = T>) -> Option<T> {
    let first = values.next()?;
    values.all(|v| v == first).then_some(first)
}

/// The earliest (`Less`) or latest (`Greater`) of RFC 3339 UTC timestamps.
/// faultline writes them all in one fixed-width form (milliseconds, `Z`), so
/// text order is time order.
fn extreme<'a>(times: impl Iterator<Item = &'a str>, want: Ordering) -> String {
    times
        .filter(|t| !t.is_empty())
        .reduce(|a, b| if b.cmp(a) == want { b } else { a })
        .unwrap_or_default()
        .to_string()
}

fn wall_duration(start: &str, end: &str) -> Option<f64> {
    let start = humantime::parse_rfc3339(start).ok()?;
    let end = humantime::parse_rfc3339(end).ok()?;
    end.duration_since(start).ok().map(|d| d.as_secs_f64())
}

#[cfg(test)]
mod tests;
