//! The run's side of the live metrics ([`crate::metrics::export`]): what
//! the runner knows and the recorder, ledger and sampler do not — which
//! experiment and phase are on, which faults are planned, the checks'
//! verdicts — fed through a [`Progress`] wrapper, and the recorder's feed
//! built from the experiment.

use super::Progress;
use crate::config::model::{Experiment, LoadModel, Phase};
use crate::faults;
use crate::journal::{ExperimentReport, ExperimentStatus};
use crate::load::schedule::Schedule;
use crate::metrics::export::feed::{RequestFeed, TargetRate};
use crate::metrics::export::{FaultInfo, ForExperiment, Live};
use crate::metrics::{LiveStats, PhaseSlice};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Forwards every event to `inner` and publishes experiment, phase and
/// check state to the live metrics.
pub struct LiveProgress {
    inner: Arc<dyn Progress>,
    live: Arc<Live>,
    /// Experiments run one after another: the phase events are this one's.
    current: Mutex<String>,
}

impl LiveProgress {
    pub fn wrap(inner: Arc<dyn Progress>, live: Arc<Live>) -> Arc<dyn Progress> {
        Arc::new(LiveProgress {
            inner,
            live,
            current: Mutex::new(String::new()),
        })
    }

    fn current(&self) -> String {
        self.current
            .lock()
            .map_or_else(|e| e.into_inner().clone(), |c| c.clone())
    }
}

impl Progress for LiveProgress {
    fn experiment_started(&self, exp: &Experiment) {
        if let Ok(mut c) = self.current.lock() {
            c.clone_from(&exp.name);
        }
        let planned: Vec<(&str, Vec<FaultInfo>)> = exp
            .phases
            .iter()
            .map(|p| {
                let infos = p.inject.iter().map(|f| faults::live_info(&f.spec));
                (p.name.as_str(), infos.collect())
            })
            .collect();
        self.live.experiment_started(&exp.name, &planned);
        self.inner.experiment_started(exp);
    }

    fn phase_started(&self, phase: &Phase, index: usize, total: usize) {
        self.live.phase(&self.current(), &phase.name, true);
        self.inner.phase_started(phase, index, total);
    }

    fn tick(&self, phase: &Phase, elapsed_in_phase: Duration, live: &LiveStats) {
        self.inner.tick(phase, elapsed_in_phase, live);
    }

    fn phase_ended(&self, phase: &Phase) {
        self.live.phase(&self.current(), &phase.name, false);
        self.inner.phase_ended(phase);
    }

    fn message(&self, text: &str) {
        self.inner.message(text);
    }

    fn fault_applied(&self, exp: &str, phase: &Phase, fault: &str) {
        self.inner.fault_applied(exp, phase, fault);
    }

    fn faults_removed(&self, exp: &str, phase: &Phase) {
        self.inner.faults_removed(exp, phase);
    }

    fn experiment_finished(&self, report: &ExperimentReport) {
        for check in &report.checks {
            let phase = check.phase.as_deref().unwrap_or("");
            self.live
                .check(&report.name, phase, &check.kind, &check.name, check.passed);
        }
        // A skipped experiment never ran: no series for it.
        if report.status != ExperimentStatus::Skipped {
            let passed = report.status == ExperimentStatus::Passed;
            self.live.experiment_finished(&report.name, passed);
        }
        self.inner.experiment_finished(report);
    }
}

/// The recorder's feed for `exp`: phases and request names as labels, and
/// the open model's target rate over the last second (what the achieved
/// rate, completions in the last full second, is compared with).
pub fn request_feed(live: &ForExperiment, exp: &Experiment, slices: &[PhaseSlice]) -> RequestFeed {
    let target: Option<TargetRate> = match &exp.load.model {
        LoadModel::Open { rate, .. } => {
            let schedule = Schedule::new(rate.clone());
            let end = exp.total_duration();
            Some(Arc::new(move |t: Duration| {
                let t = t.min(end);
                let from = t.saturating_sub(Duration::from_secs(1));
                let span = (t - from).as_secs_f64();
                if span > 0.0 {
                    schedule.expected_between(from, t) / span
                } else {
                    0.0
                }
            }))
        }
        LoadModel::Closed { .. } => None,
    };
    let names: Vec<String> = exp.load.requests.iter().map(|r| r.name.clone()).collect();
    RequestFeed::new(
        live.live.clone(),
        &live.experiment,
        slices.iter().map(|s| s.name.clone()).collect(),
        &names,
        target,
    )
}
