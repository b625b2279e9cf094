//! The faults of one phase on the clock: each on its own task, applied
//! `after` the phase's start and removed `for` later (or at phase end).
//!
//! A fault enters the ledger only when its wait is over, under the ledger's
//! lock and only if the phase is still running. So a fault whose time has
//! not come is never applied after a stop signal, a stop condition or an
//! apply failure ended the phase, and never shows as applied in the report;
//! a fault that was recorded is removed on every way out (its own `for`,
//! phase end, rollback), once. Applies run outside the lock, so a slow
//! `command` does not hold back an `http_error`; a stop signal interrupts
//! them (a `command` is killed with its process group).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Progress;
use crate::config::model::{Phase, PhaseFault};
use crate::faults::{self, Fault, FaultError, Ledger};

/// A built fault and when it is due, relative to its phase's start.
pub struct Due {
    /// Its place in the phase's `inject`.
    pub index: usize,
    pub fault: Box<dyn Fault>,
    pub after: Duration,
    pub lasts: Option<Duration>,
}

impl Due {
    pub fn new(index: usize, fault: Box<dyn Fault>, timing: &PhaseFault) -> Due {
        Due {
            index,
            fault,
            after: timing.after,
            lasts: timing.lasts,
        }
    }
}

/// What the tasks share.
#[derive(Clone)]
pub struct Shared {
    pub ledger: Arc<Mutex<Ledger>>,
    pub experiment: String,
    pub phase: Arc<Phase>,
    pub progress: Arc<dyn Progress>,
    /// The run's stop signal: interrupts waits and applies in flight.
    pub stop: CancellationToken,
}

/// When one fault was in effect, as its task saw it.
#[derive(Debug, Clone, Copy)]
pub struct Lived {
    /// Its place in the phase's `inject`.
    pub index: usize,
    /// When its (successful) apply started.
    pub applied: Instant,
    /// When its early removal (`for`) started; `None`: removed with the phase.
    pub removed: Option<Instant>,
}

/// What a fault's task reports.
#[derive(Default)]
struct Outcome {
    lived: Option<Lived>,
    /// Why it could not be applied.
    error: Option<String>,
}

/// The running schedule of one phase's faults.
pub struct PhaseFaults {
    tasks: JoinSet<Outcome>,
    lived: Vec<Lived>,
    /// Cancelled when the phase ends (and by the stop signal, its parent):
    /// ends every wait, so nothing not yet applied is applied later.
    over: CancellationToken,
    phase: String,
}

impl PhaseFaults {
    /// Starts one task per fault; the phase started at `start`.
    pub fn start(shared: &Shared, start: Instant, faults: Vec<Due>) -> PhaseFaults {
        let over = shared.stop.child_token();
        let mut tasks = JoinSet::new();
        for due in faults {
            tasks.spawn(one(shared.clone(), over.clone(), start, due));
        }
        PhaseFaults {
            tasks,
            lived: Vec::new(),
            over,
            phase: shared.phase.name.clone(),
        }
    }

    /// The next fault that could not be applied; pending forever when none
    /// fails (for a `select!` beside the phase's clock).
    pub async fn failure(&mut self) -> String {
        loop {
            match self.tasks.join_next().await {
                None => std::future::pending::<()>().await,
                Some(joined) => {
                    if let Some(error) = self.settle(joined) {
                        return error;
                    }
                }
            }
        }
    }

    /// Ends the phase for its faults: waits still pending are dropped,
    /// applies and early removals in flight are awaited. Returns the first
    /// failure not yet reported by [`PhaseFaults::failure`], and when each
    /// applied fault was in effect.
    pub async fn finish(mut self) -> (Option<String>, Vec<Lived>) {
        self.over.cancel();
        let mut first = None;
        while let Some(joined) = self.tasks.join_next().await {
            if let Some(error) = self.settle(joined) {
                first.get_or_insert(error);
            }
        }
        self.lived.sort_by_key(|l| l.index);
        (first, self.lived)
    }

    /// Keeps a task's times; returns its failure, if any.
    fn settle(&mut self, joined: Result<Outcome, tokio::task::JoinError>) -> Option<String> {
        match joined {
            Ok(outcome) => {
                self.lived.extend(outcome.lived);
                outcome.error
            }
            // Recorded (if it got that far) before it panicked: rollback
            // still removes it.
            Err(e) => Some(format!(
                "phase `{}`: applying a fault failed: {e}",
                self.phase
            )),
        }
    }
}

/// One fault's life in its phase: wait, record, apply, and remove early
/// when it has a `for`. Returns why it could not be applied, if it could not.
async fn one(shared: Shared, over: CancellationToken, start: Instant, due: Due) -> Outcome {
    let Due {
        index,
        fault,
        after,
        lasts,
    } = due;
    let apply_at = start + after;
    tokio::select! {
        _ = tokio::time::sleep_until(apply_at.into()) => {}
        _ = over.cancelled() => return Outcome::default(),
    }
    let phase = &shared.phase.name;
    let applying = {
        let mut ledger = shared.ledger.lock().await;
        // Checked under the lock the phase's removal takes after cancelling
        // `over`: either this fault is in the ledger before that removal, or
        // it is never applied.
        if over.is_cancelled() {
            return Outcome::default();
        }
        let info = shared
            .phase
            .inject
            .get(index)
            .map(|f| faults::live_info(&f.spec))
            .unwrap_or_default();
        ledger.record(phase, fault, info)
    };
    shared
        .progress
        .message(&format!("phase {phase}: applying {}", applying.describe()));
    let started = Instant::now();
    let result = tokio::select! {
        result = applying.apply() => result,
        _ = shared.stop.cancelled() => Err(FaultError::Interrupted),
    };
    shared
        .ledger
        .lock()
        .await
        .log_apply(&applying, started, &result);
    match result {
        Ok(_) => {
            shared
                .progress
                .fault_applied(&shared.experiment, &shared.phase, applying.describe());
        }
        Err(FaultError::Interrupted) => return Outcome::default(),
        Err(e) => {
            return Outcome {
                lived: None,
                error: Some(format!(
                    "phase `{phase}`: could not apply {}: {e}",
                    applying.describe()
                )),
            }
        }
    }
    let mut lived = Lived {
        index,
        applied: started,
        removed: None,
    };
    let done = Outcome {
        lived: Some(lived),
        error: None,
    };
    // `for` counts from the scheduled apply, so `after + for` is where the
    // plan (and validation) put the removal.
    let Some(lasts) = lasts else {
        return done;
    };
    tokio::select! {
        _ = tokio::time::sleep_until((apply_at + lasts).into()) => {}
        // Phase end or rollback removes it.
        _ = over.cancelled() => return done,
    }
    let Some(removal) = shared.ledger.lock().await.take(&applying) else {
        return done;
    };
    shared.progress.message(&format!(
        "phase {phase}: removing {} (its `for` is over)",
        applying.describe()
    ));
    lived.removed = Some(Instant::now());
    let removed = removal.run().await;
    shared.ledger.lock().await.log_removal(removed);
    Outcome {
        lived: Some(lived),
        error: None,
    }
}

/// Builds the faults of a phase (the registry), each with its timing.
pub fn build(
    inject: &[PhaseFault],
    ctx: &faults::FaultContext,
    phase: &str,
) -> Result<Vec<Due>, String> {
    inject
        .iter()
        .enumerate()
        .map(|(i, timed)| {
            let slot = format!("{}-{i}", super::sanitize(phase));
            faults::build(&timed.spec, ctx, &slot)
                .map(|f| Due::new(i, f, timed))
                .map_err(|e| format!("phase `{phase}`: {e}"))
        })
        .collect()
}
