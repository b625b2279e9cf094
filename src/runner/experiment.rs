//! One experiment, start to finish: start the target, start the recorder and
//! the load stream, walk the phases applying and removing faults, then roll
//! back whatever is left (on every way out), and judge the phases.

use super::interactive::Decision;
use super::observers::{self, Observed, Observers};
use super::proxies::RunningProxies;
use super::signals::StopSignals;
use super::target::RunningTarget;
use super::Progress;
use crate::config::model::{Experiment, LoadModel, RateShape};
use crate::config::units::format_duration;
use crate::faults::journal::{self as journal_file, RollbackJournal};
use crate::faults::{self, Ledger};
use crate::journal::{Check, ExperimentReport, ExperimentStatus, LoadInfo};
use crate::load::{self, LoadRun, LoadSummary};
use crate::metrics::export::ForExperiment;
use crate::metrics::telemetry::{self, Watched};
use crate::metrics::{LiveStats, PhaseMetrics, PhaseSlice, Recorder, RecorderOutput};
use crate::verify::evidence::PhaseSpan;
use crate::verify::{self, Evidence};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{watch, Mutex};

/// A send this far behind its scheduled time counts as late.
pub const LATE_THRESHOLD: Duration = Duration::from_millis(10);
/// Upper bound for removing one fault.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);
/// After a stop signal, how long removals that can be finished elsewhere
/// (the rollback journal, an agent's lease) may take: well inside the
/// one-second stop guarantee, leaving time to drain and write the report.
const REMOVE_GRACE_AFTER_STOP: Duration = Duration::from_millis(500);
/// Lead time between setting up the stream and its first request.
const START_LEAD: Duration = Duration::from_millis(50);

/// What an experiment run needs from the surrounding run.
pub struct ExperimentContext<'a> {
    pub seed: u64,
    /// Where logs of started processes go.
    pub out_dir: PathBuf,
    pub signals: &'a StopSignals,
    pub progress: Arc<dyn Progress>,
    /// Prefix of the names of toxics and HTTP faults this run adds.
    pub run_id: String,
    /// With `run --interactive`: the operator's prompts and notes.
    pub interactive: Option<Arc<super::interactive::Interactive>>,
    /// With `--metrics-listen` or `--prometheus-remote-write`: the live metrics.
    pub live: Option<Arc<crate::metrics::export::Live>>,
}

/// How the phase walk ended.
#[derive(Debug, Default)]
struct PhaseWalk {
    /// Actual [start, end) of each phase that began, relative to t0.
    spans: Vec<(Duration, Duration)>,
    /// Set when a fault could not be applied.
    fault_error: Option<String>,
    /// When each applied fault was in effect, by phase index.
    lived: BTreeMap<usize, Vec<super::schedule::Lived>>,
    stopped: bool,
}

/// Runs one experiment and returns its report. Never panics outward: a panic
/// in the phase walk is caught, and rollback runs regardless.
pub async fn run_experiment(exp: &Experiment, ctx: &ExperimentContext<'_>) -> ExperimentReport {
    let started_at = SystemTime::now();
    let wall = Instant::now();
    let mut report = empty_report(exp, started_at);
    ctx.progress.experiment_started(exp);
    if ctx.signals.stop.is_cancelled() {
        report.status = ExperimentStatus::Aborted;
        report.error = ctx.signals.reason();
        return report;
    }
    // One journal for everything of this experiment that would outlive a
    // killed faultline: the target process, toxics on Toxiproxy servers,
    // stopped processes, command rollbacks.
    let journal = Arc::new(RollbackJournal::new(
        ctx.out_dir.join(journal_file::FILE_NAME),
    ));
    let target = match RunningTarget::start(
        &exp.target,
        ctx.seed,
        &ctx.out_dir,
        &ctx.signals.stop,
        Some(journal.clone()),
    )
    .await
    {
        Ok(t) => t,
        Err(e) => {
            report.status = if ctx.signals.stop.is_cancelled() {
                ExperimentStatus::Aborted
            } else {
                ExperimentStatus::Error
            };
            report.error = Some(format!("target: {e}"));
            report.duration_s = wall.elapsed().as_secs_f64();
            return report;
        }
    };
    tracing::info!(experiment = %exp.name, target = %target.description, "target ready");
    report.target = target.description.clone();
    ctx.progress
        .message(&format!("target ready: {}", target.description));
    let watched: Watched = Arc::new(std::sync::Mutex::new(Vec::new()));
    if let Some(process) = &target.process {
        process.watch(watched.clone());
    }
    let proxies = match RunningProxies::start(
        exp,
        &target,
        ctx.seed,
        (journal, &ctx.run_id),
        watched.clone(),
        &ctx.signals.stop,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            target.stop().await;
            report.status = if ctx.signals.stop.is_cancelled() {
                ExperimentStatus::Aborted
            } else {
                ExperimentStatus::Error
            };
            report.error = Some(e);
            report.duration_s = wall.elapsed().as_secs_f64();
            return report;
        }
    };
    for line in proxies.describe() {
        ctx.progress.message(&format!("proxy {line}"));
    }

    let t0 = Instant::now() + START_LEAD;
    let t0_wall = SystemTime::now() + START_LEAD;
    let slices = phase_slices(exp);
    let live = ctx.live.as_ref().map(|live| ForExperiment {
        live: live.clone(),
        experiment: exp.name.clone(),
    });
    let recorder = Recorder::spawn(
        t0,
        slices.clone(),
        LATE_THRESHOLD,
        observers::classifiers(exp),
        live.as_ref()
            .map(|l| super::live::request_feed(l, exp, &slices)),
    );
    let observers = Observers::start(exp, t0, &proxies.ctx, &target.base, &ctx.signals.stop);
    let telemetry_stop = tokio_util::sync::CancellationToken::new();
    let sampler = telemetry::spawn(t0, watched.clone(), telemetry_stop.clone(), live.clone());
    let load_stop = ctx.signals.stop.child_token();
    let load_task = tokio::spawn(load::run(LoadRun {
        load: exp.load.clone(),
        base: target.base.clone(),
        duration: exp.total_duration(),
        seed: ctx.seed,
        t0,
        events: recorder.events,
        stop: load_stop.clone(),
        abandon: ctx.signals.abandon.clone(),
        version: exp.version_source().cloned(),
    }));

    let monitor_done = tokio_util::sync::CancellationToken::new();
    let monitor = super::safety::spawn_monitor(
        exp,
        recorder.live.clone(),
        &target.base,
        ctx.signals,
        monitor_done.clone(),
    );
    let ledger = Arc::new(Mutex::new(
        Ledger::new(t0, REMOVE_TIMEOUT)
            .with_stop(ctx.signals.stop_bound(REMOVE_GRACE_AFTER_STOP))
            .with_live(live),
    ));
    if let Some(i) = &ctx.interactive {
        i.set_experiment(&exp.name);
    }
    let people = People {
        progress: ctx.progress.clone(),
        interactive: ctx.interactive.clone(),
    };
    let walk = tokio::spawn(walk_phases(
        exp.clone(),
        t0,
        proxies.ctx.clone(),
        ledger.clone(),
        ctx.signals.clone(),
        recorder.live,
        people,
    ));
    let walk = match walk.await {
        Ok(w) => w,
        Err(e) => PhaseWalk {
            fault_error: Some(format!("internal error in the phase runner: {e}")),
            stopped: true,
            ..PhaseWalk::default()
        },
    };

    monitor_done.cancel();
    if let Some(monitor) = monitor {
        let _ = monitor.await;
    }
    // Every way out comes through here: remove whatever is still applied.
    let mut ledger = ledger.lock().await;
    if ledger.active_count() > 0 {
        ctx.progress.message("rolling back active faults");
    }
    ledger.rollback_all().await;
    for left in ledger.left() {
        ctx.progress.message(&format!("not yet undone: {left}"));
    }
    load_stop.cancel();
    let load_summary = match load_task.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            report.error = Some(format!("load: {e}"));
            LoadSummary::default()
        }
        Err(e) => {
            report.error = Some(format!("load generator failed: {e}"));
            LoadSummary::default()
        }
    };
    let output = recorder.done.await.unwrap_or_else(|_| RecorderOutput {
        phases: slices.iter().map(|_| PhaseMetrics::default()).collect(),
        series: Vec::new(),
        late_window_events: 0,
        timeline: Default::default(),
    });
    let observed = observers.finish().await;
    telemetry_stop.cancel();
    let samples = sampler.await.unwrap_or_default();
    proxies.stop().await;
    target.stop().await;

    report.load = load_info(exp, load_summary);
    report.faults = ledger.events().to_vec();
    report.rollback_failed = ledger.rollback_failed();
    super::phase_reports::fill_phases(&mut report, exp, &walk.spans, &output, t0_wall, &samples);
    report.checks.extend(verify::verify(
        exp,
        &evidence(exp, &walk, t0, &output, observed),
    ));
    crate::journal::fill_phase(&mut report, samples);
    report.series = output.series;
    if report.error.is_none() {
        report.error = never_there(&report);
    }
    report.status = verdict(&report, &walk, ctx.signals);
    if report.error.is_none() {
        report.error = match report.status {
            ExperimentStatus::Aborted => ctx.signals.reason(),
            ExperimentStatus::Error if report.rollback_failed => {
                Some("a fault could not be removed: the system may be left degraded".into())
            }
            _ => walk.fault_error.clone(),
        };
    }
    if !ledger.left().is_empty() {
        let left = format!("not yet undone: {}", ledger.left().join("; "));
        report.error = Some(match report.error.take() {
            Some(e) => format!("{e}; {left}"),
            None => left,
        });
    }
    report.duration_s = wall.elapsed().as_secs_f64();
    tracing::info!(
        experiment = %exp.name,
        status = report.status.as_str(),
        duration_s = report.duration_s,
        "experiment finished"
    );
    ctx.progress.experiment_finished(&report);
    report
}

/// Who the phase walk reports to, and (with `--interactive`) asks.
struct People {
    progress: Arc<dyn Progress>,
    interactive: Option<Arc<super::interactive::Interactive>>,
}

/// Walks the phases by the clock: each phase's faults are applied and
/// removed on their own schedule ([`super::schedule`]) and whatever is left
/// is removed at its end. Stops early on a signal or a fault that cannot be
/// applied.
async fn walk_phases(
    exp: Experiment,
    t0: Instant,
    faults_ctx: faults::FaultContext,
    ledger: Arc<Mutex<Ledger>>,
    signals: StopSignals,
    mut live: watch::Receiver<LiveStats>,
    people: People,
) -> PhaseWalk {
    let People {
        progress,
        interactive,
    } = people;
    let mut walk = PhaseWalk::default();
    let mut live_open = true;
    let mut offset = Duration::ZERO;
    let total = exp.phases.len();
    for (index, phase) in exp.phases.iter().enumerate() {
        let start = t0 + offset;
        let end = start + phase.duration;
        offset += phase.duration;
        tokio::select! {
            _ = tokio::time::sleep_until(start.into()) => {}
            _ = signals.stop.cancelled() => { walk.stopped = true; break; }
        }
        walk.spans.push((start - t0, start - t0));
        progress.phase_started(phase, index, total);
        let mut inject: &[crate::config::model::PhaseFault] = &phase.inject;
        if let (Some(operator), false) = (&interactive, inject.is_empty()) {
            let described: Vec<String> = inject.iter().map(faults::describe_in_phase).collect();
            match operator
                .confirm(&phase.name, &described, &signals.stop)
                .await
            {
                Decision::Go => {}
                Decision::Skip => {
                    progress.message(&format!(
                        "phase {}: faults skipped by the operator",
                        phase.name
                    ));
                    inject = &[];
                }
                Decision::Abort => {
                    signals.trigger(&format!(
                        "aborted by the operator before phase `{}`",
                        phase.name
                    ));
                    walk.stopped = true;
                    set_end(&mut walk, t0);
                    break;
                }
            }
        }
        let shared = super::schedule::Shared {
            ledger: ledger.clone(),
            experiment: exp.name.clone(),
            phase: Arc::new(phase.clone()),
            progress: progress.clone(),
            stop: signals.stop.clone(),
        };
        let mut scheduled = match super::schedule::build(inject, &faults_ctx, &phase.name) {
            Ok(due) => Some(super::schedule::PhaseFaults::start(&shared, start, due)),
            Err(e) => {
                walk.fault_error = Some(e);
                None
            }
        };
        if let (Some(operator), true, true) = (&interactive, phase.pause, scheduled.is_some()) {
            if !operator.pause(&phase.name, &signals.stop).await && !signals.stop.is_cancelled() {
                signals.trigger(&format!(
                    "input ended while paused in phase `{}`",
                    phase.name
                ));
            }
        }
        while let Some(faults) = scheduled.as_mut() {
            tokio::select! {
                _ = tokio::time::sleep_until(end.into()) => break,
                _ = signals.stop.cancelled() => { walk.stopped = true; break; }
                // A fault applied `after` the start can fail mid-phase: the
                // phase ends there, as at its start.
                error = faults.failure() => { walk.fault_error = Some(error); break; }
                changed = live.changed(), if live_open => {
                    if changed.is_ok() {
                        let stats = live.borrow_and_update().clone();
                        progress.tick(phase, Instant::now().saturating_duration_since(start), &stats);
                    } else {
                        // The recorder is gone (the load ended early): stop
                        // polling it rather than spin.
                        live_open = false;
                    }
                }
            }
        }
        if let Some(faults) = scheduled {
            let (late, lived) = faults.finish().await;
            walk.fault_error = walk.fault_error.take().or(late);
            walk.lived.insert(index, lived);
        }
        if signals.stop.is_cancelled() {
            walk.stopped = true;
        }
        if walk.fault_error.is_some() {
            // Rollback removes what was applied.
            set_end(&mut walk, t0);
            break;
        }
        set_end(&mut walk, t0);
        if !phase.inject.is_empty() {
            ledger.lock().await.remove_phase(&phase.name).await;
            progress.faults_removed(&exp.name, phase);
        }
        progress.phase_ended(phase);
        if walk.stopped {
            break;
        }
    }
    walk
}

/// What the behaviour verifiers judge, from the walk, the recorder and the observers.
fn evidence<'a>(
    exp: &Experiment,
    walk: &PhaseWalk,
    t0: Instant,
    output: &'a RecorderOutput,
    observed: Observed,
) -> Evidence<'a> {
    let mut start = Duration::ZERO;
    let phases = exp
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let end = start + p.duration;
            let actual = walk.spans.get(i);
            let span = PhaseSpan {
                name: p.name.clone(),
                start,
                end,
                ran: actual.is_some(),
                completed: actual.is_some_and(|&(_, e)| e >= end),
                faults: fault_windows(p, walk.lived.get(&i), actual, t0),
            };
            start = end;
            span
        })
        .collect();
    let stopped_at = walk.spans.last().map_or(Duration::ZERO, |&(_, e)| e);
    Evidence {
        phases,
        metrics: &output.phases,
        series: &output.series,
        timeline: Some(&output.timeline),
        calls: observed.calls,
        forwarded: observed.forwarded,
        states: observed.states,
        probes: observed.probes,
        end: stopped_at.min(exp.total_duration()),
    }
}

/// When the faults of `phase` were really in effect, for verifiers; only
/// when one of them has `after` or `for` (otherwise the phase's boundaries
/// are the fault's, as they always were).
fn fault_windows(
    phase: &crate::config::model::Phase,
    lived: Option<&Vec<super::schedule::Lived>>,
    actual: Option<&(Duration, Duration)>,
    t0: Instant,
) -> Vec<verify::evidence::FaultWindow> {
    let (Some(lived), Some(&(_, phase_end))) = (lived, actual) else {
        return Vec::new();
    };
    if !phase.inject.iter().any(|f| f.is_timed()) {
        return Vec::new();
    }
    let since = |at: Instant| at.saturating_duration_since(t0);
    lived
        .iter()
        .map(|l| verify::evidence::FaultWindow {
            proxy: phase
                .inject
                .get(l.index)
                .and_then(|f| f.spec.proxy())
                .map(String::from),
            applied: since(l.applied),
            removed: l.removed.map_or(phase_end, since),
        })
        .collect()
}

fn set_end(walk: &mut PhaseWalk, t0: Instant) {
    if let Some(span) = walk.spans.last_mut() {
        span.1 = Instant::now().saturating_duration_since(t0);
    }
}

fn phase_slices(exp: &Experiment) -> Vec<PhaseSlice> {
    let mut start = Duration::ZERO;
    exp.phases
        .iter()
        .map(|p| {
            let slice = PhaseSlice {
                name: p.name.clone(),
                start,
                end: start + p.duration,
            };
            start += p.duration;
            slice
        })
        .collect()
}

/// A run in which requests were sent but not one got an HTTP response (all
/// refused, reset or timed out) never reached its target: a wrong URL in CI
/// must be an `error`, not a pass of checks that had nothing to judge.
fn never_there(report: &ExperimentReport) -> Option<String> {
    let sent: u64 = report.phases.iter().map(|p| p.requests).sum();
    let answered = report
        .phases
        .iter()
        .any(|p| p.status_counts.values().any(|&n| n > 0));
    if sent == 0 || answered {
        return None;
    }
    let mut classes: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &report.phases {
        for (class, n) in &p.errors_by_class {
            *classes.entry(class.as_str()).or_default() += n;
        }
    }
    let classes: Vec<String> = classes
        .iter()
        .filter(|(_, &n)| n > 0)
        .map(|(class, n)| format!("{class} ×{n}"))
        .collect();
    Some(format!(
        "the target was never there: none of {sent} requests got an HTTP response ({})",
        classes.join(", ")
    ))
}

fn verdict(report: &ExperimentReport, walk: &PhaseWalk, signals: &StopSignals) -> ExperimentStatus {
    // The documented order: rollback failure, then abort, then error.
    if report.rollback_failed {
        ExperimentStatus::Error
    } else if walk.stopped || signals.stop.is_cancelled() {
        ExperimentStatus::Aborted
    } else if walk.fault_error.is_some() || report.error.is_some() {
        ExperimentStatus::Error
    } else if report.checks.iter().all(|c: &Check| c.passed) {
        ExperimentStatus::Passed
    } else {
        ExperimentStatus::Failed
    }
}

fn load_info(exp: &Experiment, summary: LoadSummary) -> LoadInfo {
    let (model, rate, concurrency, max_in_flight) = match &exp.load.model {
        LoadModel::Open {
            rate,
            max_in_flight,
        } => {
            let rate = match rate {
                RateShape::Constant(r) => format!("{r}/s"),
                RateShape::Ramp { from, to, over } => {
                    format!("{from}→{to}/s over {}", format_duration(*over))
                }
            };
            ("open", Some(rate), None, Some(*max_in_flight))
        }
        LoadModel::Closed { concurrency } => ("closed", None, Some(*concurrency), None),
    };
    LoadInfo {
        model: model.into(),
        rate,
        concurrency,
        max_in_flight,
        timeout_ms: exp.load.timeout.as_secs_f64() * 1000.0,
        sent: summary.sent,
        unsent: summary.unsent,
    }
}

/// The report of an experiment that was not run.
pub fn skipped_report(exp: &Experiment, reason: &str) -> ExperimentReport {
    let mut report = empty_report(exp, SystemTime::now());
    report.status = ExperimentStatus::Skipped;
    report.error = Some(reason.to_string());
    report
}

fn empty_report(exp: &Experiment, started_at: SystemTime) -> ExperimentReport {
    ExperimentReport {
        name: exp.name.clone(),
        description: exp.description.clone(),
        tags: exp.tags.clone(),
        file: exp.source.display().to_string(),
        suite: exp.suite.clone(),
        status: ExperimentStatus::Error,
        error: None,
        rollback_failed: false,
        started_at: rfc3339(started_at),
        duration_s: 0.0,
        target: String::new(),
        load: load_info(exp, LoadSummary::default()),
        phases: Vec::new(),
        checks: Vec::new(),
        faults: Vec::new(),
        series: Vec::new(),
        telemetry: Vec::new(),
    }
}

/// RFC 3339 in UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
