//! The journal: the one record of a run, as data. The runner writes it,
//! verifiers judge evidence into its [`Check`]s, and every report (console,
//! JSON, JUnit, HTML, Markdown) renders it and nothing else; it depends on
//! none of them.
//!
//! Field names are a contract with users' scripts: snake_case, stable, and
//! versioned by `schema_version`. Extend, never rename.

use crate::exit::ExitCode;
use crate::faults::FaultEvent;
use crate::metrics::telemetry::{self, PhaseTelemetry, TelemetrySample};
use crate::metrics::{LatencySummary, WindowSummary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on any incompatible change to the JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole `faultline run`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunReport {
    pub schema_version: u32,
    pub faultline_version: String,
    /// `passed`, `failed`, `error`, `aborted` or `rollback_failed`.
    pub status: RunStatus,
    /// The process exit code this run maps to.
    pub exit_code: u8,
    /// True when any fault could not be removed: the system may be degraded.
    pub rollback_failed: bool,
    /// Seed of the run's RNG: rerun with `--seed` to reproduce the request mix.
    pub seed: u64,
    /// Prefix of the names of the toxics and HTTP faults this run added.
    #[serde(default)]
    pub run_id: String,
    /// The suite, when the run came from one suite file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// `--shard I/N`: this runner drove 1/N of the configured load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: String,
    pub duration_s: f64,
    pub host: HostInfo,
    /// The files given on the command line.
    pub files: Vec<String>,
    pub experiments: Vec<ExperimentReport>,
    pub summary: Summary,
    /// What a reader must know about how this report was produced, e.g. by
    /// `faultline merge` (which numbers are exact, which were dropped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Notes typed by the operator during an `--interactive` run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operator_notes: Vec<OperatorNote>,
}

/// A note typed during the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OperatorNote {
    /// RFC 3339, UTC.
    pub at: String,
    /// The experiment running when it was typed.
    pub experiment: String,
    pub text: String,
}

/// The exit code of a set of experiment results: the most severe wins.
pub fn exit_code(reports: &[ExperimentReport]) -> ExitCode {
    reports.iter().fold(ExitCode::Passed, |acc, r| {
        let this = if r.rollback_failed {
            ExitCode::RollbackFailed
        } else {
            match r.status {
                ExperimentStatus::Passed | ExperimentStatus::Skipped => ExitCode::Passed,
                ExperimentStatus::Failed => ExitCode::ChecksFailed,
                ExperimentStatus::Error => ExitCode::CouldNotRun,
                ExperimentStatus::Aborted => ExitCode::Aborted,
            }
        };
        acc.worst(this)
    })
}

/// Counts over a set of experiment results (the run's `summary`).
pub fn summarize(reports: &[ExperimentReport]) -> Summary {
    let mut s = Summary {
        experiments: reports.len(),
        ..Summary::default()
    };
    for r in reports {
        match r.status {
            ExperimentStatus::Passed => s.passed += 1,
            ExperimentStatus::Failed => s.failed += 1,
            ExperimentStatus::Error => s.error += 1,
            ExperimentStatus::Aborted => s.aborted += 1,
            ExperimentStatus::Skipped => s.skipped += 1,
        }
        s.checks += r.checks.len();
        s.checks_failed += r.checks.iter().filter(|c| !c.passed).count();
    }
    s
}

impl RunReport {
    /// Re-derives every experiment's pass/fail from its checks, then the run's
    /// summary, status, exit code and rollback flag — with the runner's own
    /// rules ([`summarize`], [`exit_code`]: the most
    /// severe outcome wins, 5, 3, 4, 1). Experiments that errored, were aborted
    /// or skipped keep their status: checks cannot repair those.
    pub fn refresh_summary(&mut self) {
        for exp in &mut self.experiments {
            if matches!(
                exp.status,
                ExperimentStatus::Passed | ExperimentStatus::Failed
            ) {
                exp.status = if exp.checks.iter().all(|c| c.passed) {
                    ExperimentStatus::Passed
                } else {
                    ExperimentStatus::Failed
                };
            }
        }
        let exit = exit_code(&self.experiments);
        self.summary = summarize(&self.experiments);
        self.exit_code = exit.code();
        self.status = match exit {
            ExitCode::Passed => RunStatus::Passed,
            ExitCode::ChecksFailed => RunStatus::Failed,
            ExitCode::Aborted => RunStatus::Aborted,
            ExitCode::RollbackFailed => RunStatus::RollbackFailed,
            ExitCode::CouldNotRun | ExitCode::InvalidInput | ExitCode::ReportNotWritten => {
                RunStatus::Error
            }
        };
        self.rollback_failed = self.experiments.iter().any(|e| e.rollback_failed);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub cpus: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Passed,
    Failed,
    Error,
    Aborted,
    RollbackFailed,
}

/// Counts over the whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub experiments: usize,
    pub passed: usize,
    pub failed: usize,
    pub error: usize,
    pub aborted: usize,
    /// Filtered out (`--tag`, `--skip-tag`, `--only`) or not run after `--fail-fast`.
    #[serde(default)]
    pub skipped: usize,
    pub checks: usize,
    pub checks_failed: usize,
}

impl Summary {
    /// `3 experiments: 2 passed, 1 failed, 0 error, 0 aborted, 0 skipped`,
    /// the same words in every renderer.
    pub fn counts_text(&self) -> String {
        format!(
            "{} experiment{}: {} passed, {} failed, {} error, {} aborted, {} skipped",
            self.experiments,
            if self.experiments == 1 { "" } else { "s" },
            self.passed,
            self.failed,
            self.error,
            self.aborted,
            self.skipped
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExperimentStatus {
    /// Every check passed.
    Passed,
    /// At least one check failed.
    Failed,
    /// The experiment could not run (target not ready, bad fault, rollback failure).
    Error,
    /// Stopped by a signal or stop condition.
    Aborted,
    /// Not run: filtered out, or after an earlier failure with `--fail-fast`.
    Skipped,
}

impl ExperimentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExperimentStatus::Passed => "passed",
            ExperimentStatus::Failed => "failed",
            ExperimentStatus::Error => "error",
            ExperimentStatus::Aborted => "aborted",
            ExperimentStatus::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExperimentReport {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub file: String,
    /// The suite the experiment came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    pub status: ExperimentStatus,
    /// Why the experiment is `error`, `aborted` or `skipped`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub rollback_failed: bool,
    pub started_at: String,
    pub duration_s: f64,
    /// The target, e.g. `demo (frontend http://127.0.0.1:41234)`.
    pub target: String,
    pub load: LoadInfo,
    pub phases: Vec<PhaseReport>,
    pub checks: Vec<Check>,
    /// Fault actions in order (apply/remove, with outcome and evidence).
    pub faults: Vec<FaultEvent>,
    /// One entry per second since the load started.
    pub series: Vec<WindowSummary>,
    /// Host and process CPU and memory, one sample per second since the
    /// load started; empty when the sampler did not run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub telemetry: Vec<TelemetrySample>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LoadInfo {
    /// `open` or `closed`.
    pub model: String,
    /// Open model: the rate as written (`200/s` or `10→500/s over 30s`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    pub timeout_ms: f64,
    pub sent: u64,
    pub unsent: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseReport {
    pub name: String,
    /// RFC 3339 time the phase started.
    pub start: String,
    /// Seconds from the start of the load.
    pub start_offset_s: f64,
    /// Actual duration (shorter than planned when the run was aborted).
    pub duration_s: f64,
    pub planned_duration_s: f64,
    /// False when the run stopped before the phase ended.
    pub completed: bool,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub errors_by_class: BTreeMap<String, u64>,
    pub status_counts: BTreeMap<String, u64>,
    /// Achieved rate: completed requests per second.
    pub rate: f64,
    /// Open model: the scheduled rate for this phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Sent later than the late threshold after their scheduled time.
    pub late: u64,
    /// Came due but never sent.
    pub unsent: u64,
    /// Response time (from the intended start); `null` when no samples.
    pub latency_ms: Option<LatencySummary>,
    /// Service time (from the actual send).
    pub service_time_ms: Option<LatencySummary>,
    /// Faults active during the phase.
    pub faults: Vec<String>,
    /// The phase's response-time histogram in HdrHistogram's compressed V2
    /// form, base64: merged exactly by `faultline merge`, compared by `--baseline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    /// CPU and memory over the phase; `None` without telemetry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<PhaseTelemetry>,
    /// Each resource fault's request next to what was measured, e.g.
    /// `cpu requested 80% on 1 core, measured 78.4%`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pressure: Vec<String>,

    /// What each version served in the phase, when the run reads versions
    /// (`load.version_from`, `canary`, `traffic_shift`): at most 8 by name,
    /// in the order they first answered, then one entry with `other: true`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<VersionReport>,
    /// Requests whose response named no version (or that got no response),
    /// when the run reads versions.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unversioned: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One version's share of a phase (`phases[].versions[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VersionReport {
    /// The label read from the response (`v2`); `other` for the overflow entry.
    pub version: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Requests per second over the phase.
    pub rate: f64,
    /// Response time (from the intended start); `null` when no samples.
    pub latency_ms: Option<LatencySummary>,
    /// The version's response-time histogram (HdrHistogram V2, base64), for `faultline merge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histogram: Option<String>,
    /// True for the entry that sums the versions past the first 8.
    #[serde(default, skip_serializing_if = "is_false")]
    pub other: bool,
}

/// Attaches the run's telemetry to `report`: the samples, each phase's
/// summary over its span, and the requested-vs-measured line of each of
/// the phase's resource faults (read from [`PhaseReport::faults`]).
/// Call it once the phases are filled in.
pub fn fill_phase(report: &mut ExperimentReport, samples: Vec<TelemetrySample>) {
    for phase in &mut report.phases {
        let end = phase.start_offset_s + phase.duration_s;
        phase.telemetry = telemetry::phase_summary(&samples, phase.start_offset_s, end);
        phase.pressure = phase
            .telemetry
            .as_ref()
            .map(|t| telemetry::pressure_lines(&phase.faults, t))
            .unwrap_or_default();
    }
    report.telemetry = samples;
}

/// A verdict: a threshold or any other check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Check {
    /// e.g. `p99 < 100ms`, `rate_achieved`.
    pub name: String,
    /// `threshold`, `rate_achieved`, ...
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub passed: bool,
    pub expected: String,
    pub observed: String,
    /// Samples the verdict is based on.
    pub samples: u64,
    /// Explanation when it failed (e.g. `no data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The time window the verdict covers, e.g. `5.0s–15.0s` from the start of the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Faults active during that window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<String>,
    /// Numbers behind the verdict, by name: `opened_after_s`,
    /// `recovery_s`, `p_value`, ... (verifiers; empty for thresholds).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measured: BTreeMap<String, f64>,
    /// What a behaviour verifier saw, as a word scripts can match:
    /// `canary` says `rolled_back`, `flapping` or `not_rolled_back`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}
