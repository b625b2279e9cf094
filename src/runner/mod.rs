//! Running experiments: targets, phases, signals, rollback, and the journal.
//!
//! [`run`] executes validated experiments one after another and returns the
//! [`crate::journal::RunReport`] plus the exit code it maps to. It never exits the
//! process and never skips rollback: signals only cancel tokens
//! ([`signals::StopSignals`]), and each experiment removes its faults on
//! every path out ([`experiment`]).

pub mod dry_run;
pub mod experiment;
pub mod interactive;
pub mod live;
pub mod live_outputs;
pub mod observers;
mod phase_reports;
pub mod plan;
pub mod proxies;
pub mod safety;
pub mod schedule;
pub mod signals;
pub mod target;

use crate::config::model::{Experiment, Phase};
use crate::exit::ExitCode;
use crate::journal::{
    self, exit_code, summarize, ExperimentStatus, HostInfo, RunReport, RunStatus, SCHEMA_VERSION,
};
use crate::metrics::LiveStats;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub use experiment::rfc3339;
pub use signals::StopSignals;

/// Live feedback while a run is going (implemented by the console reporter).
pub trait Progress: Send + Sync {
    fn experiment_started(&self, _exp: &Experiment) {}
    fn phase_started(&self, _phase: &Phase, _index: usize, _total: usize) {}
    /// About once a second during a phase.
    fn tick(&self, _phase: &Phase, _elapsed_in_phase: Duration, _live: &LiveStats) {}
    fn phase_ended(&self, _phase: &Phase) {}
    fn message(&self, _text: &str) {}
    /// A fault of `phase` was applied (after the fact, described).
    fn fault_applied(&self, _exp: &str, _phase: &Phase, _fault: &str) {}
    /// Every fault of `phase` was removed (or its removal was attempted).
    fn faults_removed(&self, _exp: &str, _phase: &Phase) {}
    /// An experiment's report is complete (any status).
    fn experiment_finished(&self, _report: &journal::ExperimentReport) {}
}

/// A progress sink that shows nothing (`--quiet`, tests).
pub struct NoProgress;
impl Progress for NoProgress {}

/// Settings of one run.
pub struct RunSettings {
    pub seed: u64,
    pub out_dir: PathBuf,
    pub files: Vec<String>,
    /// After the first experiment that does not pass, skip the rest.
    pub fail_fast: bool,
    /// The live metrics the run feeds (`--metrics-listen`, remote write).
    pub live: Option<Arc<crate::metrics::export::Live>>,
}

/// One experiment of a run, or the reason it is skipped (filtered out).
pub struct Planned {
    pub experiment: Experiment,
    pub skip: Option<String>,
}

impl Planned {
    pub fn run(experiment: Experiment) -> Planned {
        Planned {
            experiment,
            skip: None,
        }
    }

    /// Every experiment, none skipped.
    pub fn all(experiments: Vec<Experiment>) -> Vec<Planned> {
        experiments.into_iter().map(Planned::run).collect()
    }
}

/// Runs the planned experiments in order. Filtered-out experiments, those
/// after an abort, and (with `fail_fast`) those after a failure are
/// reported as `skipped` with the reason.
pub async fn run(
    plan: &[Planned],
    settings: &RunSettings,
    signals: &StopSignals,
    progress: Arc<dyn Progress>,
) -> RunReport {
    run_with(plan, settings, signals, progress, None).await
}

/// [`run`], asking `interactive`'s operator before each fault phase.
pub async fn run_with(
    plan: &[Planned],
    settings: &RunSettings,
    signals: &StopSignals,
    progress: Arc<dyn Progress>,
    interactive: Option<Arc<interactive::Interactive>>,
) -> RunReport {
    let started_at = SystemTime::now();
    let wall = Instant::now();
    let mut reports = Vec::new();
    let run_id = run_id(settings.seed);
    let mut stop_reason: Option<String> = None;
    for planned in plan {
        let exp = &planned.experiment;
        if stop_reason.is_none() && signals.stop.is_cancelled() {
            stop_reason = Some("not run: the run was aborted".into());
        }
        if let Some(reason) = planned.skip.as_ref().or(stop_reason.as_ref()) {
            reports.push(experiment::skipped_report(exp, reason));
            continue;
        }
        let ctx = experiment::ExperimentContext {
            seed: settings.seed,
            out_dir: settings.out_dir.join(sanitize(&exp.name)),
            signals,
            progress: progress.clone(),
            run_id: run_id.clone(),
            interactive: interactive.clone(),
            live: settings.live.clone(),
        };
        let report = experiment::run_experiment(exp, &ctx).await;
        if settings.fail_fast && report.status != ExperimentStatus::Passed && stop_reason.is_none()
        {
            stop_reason = Some(format!(
                "not run: --fail-fast after `{}` {}",
                exp.name,
                report.status.as_str()
            ));
        }
        reports.push(report);
    }
    let summary = summarize(&reports);
    let exit = exit_code(&reports);
    RunReport {
        schema_version: SCHEMA_VERSION,
        faultline_version: env!("CARGO_PKG_VERSION").to_string(),
        status: match exit {
            ExitCode::Passed => RunStatus::Passed,
            ExitCode::ChecksFailed => RunStatus::Failed,
            ExitCode::Aborted => RunStatus::Aborted,
            ExitCode::RollbackFailed => RunStatus::RollbackFailed,
            ExitCode::CouldNotRun | ExitCode::InvalidInput | ExitCode::ReportNotWritten => {
                RunStatus::Error
            }
        },
        exit_code: exit.code(),
        rollback_failed: reports.iter().any(|r| r.rollback_failed),
        seed: settings.seed,
        run_id,
        suite: None,
        shard: None,
        started_at: rfc3339(started_at),
        finished_at: rfc3339(SystemTime::now()),
        duration_s: wall.elapsed().as_secs_f64(),
        host: host_info(),
        files: settings.files.clone(),
        experiments: reports,
        summary,
        notes: Vec::new(),
        operator_notes: interactive.map(|i| i.notes()).unwrap_or_default(),
    }
}

fn host_info() -> HostInfo {
    HostInfo {
        hostname: gethostname::gethostname().to_string_lossy().into_owned(),
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// A short id unique to this run (names of the toxics it adds).
fn run_id(seed: u64) -> String {
    use std::hash::BuildHasher;
    let h = std::collections::hash_map::RandomState::new().hash_one((
        seed,
        std::process::id(),
        SystemTime::now(),
    ));
    format!("{:08x}", h as u32)
}

/// A name made safe for a directory.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches('.').to_string();
    if s.is_empty() {
        "run".into()
    } else {
        s
    }
}
