//! The rollback ledger: a fault is written here *before* it is applied, and
//! everything written here is removed in reverse order, whatever happens.
//!
//! The ledger also keeps the journal of fault actions (apply/remove, when
//! each started and ended, outcome, evidence) that the reports show.
//!
//! The faults of one phase are applied together: each is recorded, then
//! applied by its own task through an [`Applying`] handle, outside the
//! ledger's lock, so a slow `command` does not hold back an `http_error`.
//!
//! Once a person signals the run to stop ([`StopBound`]: SIGINT/SIGTERM),
//! the removal of a fault that someone else can finish ([`Fault::left_to`]:
//! the on-disk rollback journal, an agent's lease) is cut short a moment
//! after the signal, so a hung Toxiproxy server or agent cannot hold the run
//! for its client's timeout. (A stop condition cuts nothing: nobody is
//! waiting, and a slow but working server should get to finish.)
//! Such a fault is *left to* its finisher, said in the report, and is not a
//! failed rollback. Every other removal still runs to its own timeout (a
//! `command`'s rollback must not be cut).
//!
//! With live metrics on ([`Ledger::with_live`]), every journaled apply and
//! removal also sets the fault's `faultline_fault_active` gauge: the ledger
//! is the one place that knows when a fault is in effect.

use super::{Evidence, Fault, FaultError};
use crate::metrics::export::{ActionOutcome, FaultInfo, ForExperiment};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// However late after the stop a removal begins, it gets this long to try.
const MIN_TRY_AFTER_STOP: Duration = Duration::from_millis(100);

/// When a person told the run to stop, and how long after it removals that
/// can be finished elsewhere may still take.
#[derive(Clone, Debug)]
pub struct StopBound {
    /// Cancelled by the signal.
    pub stop: CancellationToken,
    /// Set when the signal arrived (before `stop` is cancelled); when
    /// unset, the moment the ledger sees the cancellation counts.
    pub since: Arc<OnceLock<Instant>>,
    pub grace: Duration,
}

impl StopBound {
    /// Resolves when a removal that began at `started` must give up: `grace`
    /// after the stop (at least [`MIN_TRY_AFTER_STOP`] after `started`),
    /// with how long ago the stop was.
    async fn reached(&self, started: Instant) -> Duration {
        self.stop.cancelled().await;
        let since = self.since.get().copied().unwrap_or_else(Instant::now);
        let at = (since + self.grace).max(started + MIN_TRY_AFTER_STOP);
        tokio::time::sleep_until(at.into()).await;
        since.elapsed()
    }
}

/// A recorded fault, shared between the ledger and the task applying it.
type SharedFault = Arc<tokio::sync::Mutex<Box<dyn Fault>>>;

/// One fault action, as reported.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultEvent {
    pub phase: String,
    pub fault: String,
    pub kind: String,
    /// `apply` or `remove`.
    pub action: String,
    /// Seconds since the load started, when the action started.
    pub at_s: f64,
    /// Seconds since the load started, when the action ended.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ended_at_s: Option<f64>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "serde_json::Value::is_null", default)]
    pub evidence: Evidence,
}

struct Entry {
    phase: String,
    kind: &'static str,
    describe: String,
    info: FaultInfo,
    /// [`Fault::left_to`], taken when recorded (the fault may be locked later).
    left_to: Option<String>,
    fault: SharedFault,
}

/// A fault recorded in the ledger, to be applied by whoever holds this.
pub struct Applying {
    phase: String,
    kind: &'static str,
    describe: String,
    info: FaultInfo,
    fault: SharedFault,
}

impl Applying {
    /// The fault, as described in reports.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// Applies it. Dropping the future interrupts the apply; the fault
    /// stays recorded, so rollback still removes whatever it did.
    pub async fn apply(&self) -> Result<Evidence, FaultError> {
        self.fault.lock().await.apply().await
    }
}

/// A fault taken off the ledger, to be removed by whoever holds this.
pub struct Removal {
    entry: Entry,
    limit: Duration,
    /// Cuts the removal short after a stop signal when it has a finisher.
    stop: Option<StopBound>,
}

/// The outcome of a [`Removal`], for [`Ledger::log_removal`].
pub struct Removed {
    phase: String,
    kind: &'static str,
    describe: String,
    info: FaultInfo,
    started: Instant,
    result: Result<Evidence, FaultError>,
}

impl Removal {
    /// Removes the fault, within the ledger's time limit for one removal;
    /// after a stop signal, one that someone else can finish is cut short
    /// (see the module docs).
    pub async fn run(self) -> Removed {
        let Entry {
            phase,
            kind,
            describe,
            info,
            left_to,
            fault,
        } = self.entry;
        let limit = self.limit;
        let started = Instant::now();
        // In its own task: a removal that panics is a failed rollback (said
        // loudly), not a lost entry or a crashed run. The limit covers
        // waiting for an apply still holding the fault, too.
        let mut task = tokio::spawn(async move {
            tokio::time::timeout(
                limit,
                async move { fault.lock_owned().await.remove().await },
            )
            .await
        });
        let bound = self.stop;
        let cut = async {
            match (&bound, &left_to) {
                (Some(bound), Some(_)) => bound.reached(started).await,
                _ => std::future::pending().await,
            }
        };
        let result = tokio::select! {
            joined = &mut task => match joined {
                Ok(Ok(r)) => r,
                Ok(Err(_)) => Err(FaultError::RemoveTimeout(limit)),
                Err(e) => Err(FaultError::Unsupported(format!(
                    "removing the fault panicked: {e}"
                ))),
            },
            after_stop = cut => {
                // Dropping the request: whatever it did or not, the
                // finisher undoes it.
                task.abort();
                Err(FaultError::LeftTo {
                    reason: format!(
                        "not confirmed removed {} after the stop signal",
                        crate::config::units::format_duration(Duration::from_millis(
                            u64::try_from(after_stop.as_millis()).unwrap_or(u64::MAX)
                        ))
                    ),
                    finisher: left_to.clone().unwrap_or_default(),
                })
            }
        };
        Removed {
            phase,
            kind,
            describe,
            info,
            started,
            result,
        }
    }
}

/// Faults currently (possibly) in effect, oldest first.
pub struct Ledger {
    t0: Instant,
    active: Vec<Entry>,
    events: Vec<FaultEvent>,
    /// Upper bound for one removal, so a hung rollback cannot hang the run.
    remove_timeout: Duration,
    /// Cuts removals that can be finished elsewhere short after a stop.
    stop: Option<StopBound>,
    rollback_failed: bool,
    /// Faults whose removal was left to their finisher, described.
    left: Vec<String>,
    live: Option<ForExperiment>,
}

impl Ledger {
    pub fn new(t0: Instant, remove_timeout: Duration) -> Ledger {
        Ledger {
            t0,
            active: Vec::new(),
            events: Vec::new(),
            remove_timeout,
            stop: None,
            rollback_failed: false,
            left: Vec::new(),
            live: None,
        }
    }

    /// Publishes fault state to the live metrics, see the module docs.
    pub fn with_live(mut self, live: Option<ForExperiment>) -> Ledger {
        self.live = live;
        self
    }

    /// Bounds removals after a stop, see the module docs.
    pub fn with_stop(mut self, bound: StopBound) -> Ledger {
        self.stop = Some(bound);
        self
    }

    /// Records the fault, then applies it (holding the ledger: for one fault
    /// at a time; [`Ledger::record`] applies several together). A fault
    /// whose apply failed stays recorded, because a partial apply must still
    /// be undone.
    pub async fn apply(&mut self, phase: &str, fault: Box<dyn Fault>) -> Result<(), FaultError> {
        let info = FaultInfo {
            name: fault.describe(),
            kind: fault.kind(),
            ..FaultInfo::default()
        };
        let applying = self.record(phase, fault, info);
        let started = Instant::now();
        let result = applying.apply().await;
        self.log_apply(&applying, started, &result);
        result.map(|_| ())
    }

    /// Records the fault before anything is applied: if its apply fails,
    /// hangs, panics or is interrupted, rollback still removes it. `info`
    /// names it in the live metrics.
    pub fn record(&mut self, phase: &str, fault: Box<dyn Fault>, info: FaultInfo) -> Applying {
        let (kind, describe, left_to) = (fault.kind(), fault.describe(), fault.left_to());
        let fault: SharedFault = Arc::new(tokio::sync::Mutex::new(fault));
        self.active.push(Entry {
            phase: phase.to_string(),
            kind,
            describe: describe.clone(),
            info: info.clone(),
            left_to,
            fault: fault.clone(),
        });
        Applying {
            phase: phase.to_string(),
            kind,
            describe,
            info,
            fault,
        }
    }

    /// Journals the outcome of an apply that began at `started`.
    pub fn log_apply(
        &mut self,
        applying: &Applying,
        started: Instant,
        result: &Result<Evidence, FaultError>,
    ) {
        if let Some(l) = &self.live {
            let outcome = match result {
                Ok(_) => ActionOutcome::Ok,
                Err(_) => ActionOutcome::Failed,
            };
            let at = (l.experiment.as_str(), applying.phase.as_str());
            l.live.fault_applied(at, &applying.info, outcome);
        }
        self.log(
            &applying.phase,
            applying.kind,
            applying.describe.clone(),
            ("apply", started),
            result,
        );
    }

    /// Removes the faults of one phase (newest first).
    // Not `while let`: its scrutinee's iterator would live across the await
    // and make the future !Send.
    #[allow(clippy::while_let_loop)]
    pub async fn remove_phase(&mut self, phase: &str) {
        loop {
            // A separate statement, so no iterator is held across the await.
            let Some(pos) = self.active.iter().rposition(|e| e.phase == phase) else {
                break;
            };
            let entry = self.active.remove(pos);
            self.remove_entry(entry).await;
        }
    }

    /// Removes everything still active, newest first.
    pub async fn rollback_all(&mut self) {
        while let Some(entry) = self.active.pop() {
            self.remove_entry(entry).await;
        }
    }

    async fn remove_entry(&mut self, entry: Entry) {
        let removal = Removal {
            entry,
            limit: self.remove_timeout,
            stop: self.stop.clone(),
        };
        let removed = removal.run().await;
        self.log_removal(removed);
    }

    /// Takes the fault `applying` recorded off the ledger, to remove it
    /// before its phase ends (`for:`), outside the ledger's lock so other
    /// faults' applies do not wait for it. `None` when it is gone already
    /// (its phase ended, or rollback ran): a fault is never removed twice.
    pub fn take(&mut self, applying: &Applying) -> Option<Removal> {
        let pos = self
            .active
            .iter()
            .position(|e| Arc::ptr_eq(&e.fault, &applying.fault))?;
        Some(Removal {
            entry: self.active.remove(pos),
            limit: self.remove_timeout,
            stop: self.stop.clone(),
        })
    }

    /// Journals a removal: one left to its finisher is listed as such, any
    /// other failure is a failed rollback.
    pub fn log_removal(&mut self, removed: Removed) {
        let Removed {
            phase,
            kind,
            describe,
            info,
            started,
            result,
        } = removed;
        if let Some(l) = &self.live {
            let outcome = match &result {
                Ok(_) => ActionOutcome::Ok,
                Err(FaultError::LeftTo { .. }) => ActionOutcome::LeftToFinisher,
                Err(_) => ActionOutcome::Failed,
            };
            l.live
                .fault_removed((&l.experiment, &phase), &info, outcome);
        }
        match &result {
            Err(e @ FaultError::LeftTo { .. }) => self.left.push(format!("{describe}: {e}")),
            Err(_) => self.rollback_failed = true,
            Ok(_) => {}
        }
        self.log(&phase, kind, describe, ("remove", started), &result);
    }

    fn log(
        &mut self,
        phase: &str,
        kind: &str,
        fault: String,
        (action, started): (&str, Instant),
        result: &Result<Evidence, FaultError>,
    ) {
        match result {
            Ok(_) => tracing::info!(phase, fault = %fault, action, "fault {action}"),
            Err(e @ FaultError::LeftTo { .. }) => {
                tracing::warn!(phase, fault = %fault, error = %e, "fault removal left to its finisher")
            }
            Err(e) if action == "remove" => {
                tracing::error!(phase, fault = %fault, error = %e, "fault removal failed")
            }
            Err(e) => {
                tracing::warn!(phase, fault = %fault, action, error = %e, "fault {action} failed")
            }
        }
        self.events.push(FaultEvent {
            phase: phase.to_string(),
            fault,
            kind: kind.to_string(),
            action: action.to_string(),
            at_s: started.saturating_duration_since(self.t0).as_secs_f64(),
            ended_at_s: Some(self.t0.elapsed().as_secs_f64()),
            ok: result.is_ok(),
            error: result.as_ref().err().map(|e| e.to_string()),
            evidence: result.as_ref().ok().cloned().unwrap_or_default(),
        });
    }

    /// Faults still in effect.
    pub fn active_count(&self) -> usize {
        self.active.len()
    }

    /// Whether any removal failed: the system may be left degraded.
    pub fn rollback_failed(&self) -> bool {
        self.rollback_failed
    }

    /// Faults whose removal was left to their finisher (the rollback
    /// journal, an agent's lease), each described with who finishes it.
    pub fn left(&self) -> &[String] {
        &self.left
    }

    pub fn events(&self) -> &[FaultEvent] {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::BoxFuture;
    use std::sync::{Arc, Mutex};

    /// Records apply/remove calls into a shared log.
    struct Probe {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        fail_remove: bool,
        panic_on_apply: bool,
    }

    impl Fault for Probe {
        fn kind(&self) -> &'static str {
            "probe"
        }
        fn describe(&self) -> String {
            self.name.to_string()
        }
        fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
            self.log
                .lock()
                .expect("log")
                .push(format!("apply {}", self.name));
            let panics = self.panic_on_apply;
            Box::pin(async move {
                assert!(!panics, "a buggy fault panics while applying");
                Ok(Evidence::Null)
            })
        }
        fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
            self.log
                .lock()
                .expect("log")
                .push(format!("remove {}", self.name));
            let fail = self.fail_remove;
            Box::pin(async move {
                if fail {
                    Err(FaultError::RemoveTimeout(Duration::ZERO))
                } else {
                    Ok(Evidence::Null)
                }
            })
        }
    }

    #[tokio::test]
    async fn rollback_undoes_in_reverse_order_and_flags_failures() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut ledger = Ledger::new(Instant::now(), Duration::from_secs(1));
        for (name, fail_remove) in [("a", false), ("b", true), ("c", false)] {
            let f = Probe {
                name,
                log: log.clone(),
                fail_remove,
                panic_on_apply: false,
            };
            ledger.apply("p", Box::new(f)).await.expect("applies");
        }
        assert_eq!(ledger.active_count(), 3);
        ledger.rollback_all().await;
        assert_eq!(ledger.active_count(), 0);
        assert!(ledger.rollback_failed());
        let got = log.lock().expect("log").clone();
        assert_eq!(
            got,
            ["apply a", "apply b", "apply c", "remove c", "remove b", "remove a"]
        );
        assert_eq!(ledger.events().iter().filter(|e| !e.ok).count(), 1);
    }

    /// A removal that never finishes, left to a finisher or not.
    struct Hangs {
        left_to: Option<&'static str>,
        removed: Arc<Mutex<bool>>,
        takes: Duration,
    }

    impl Fault for Hangs {
        fn kind(&self) -> &'static str {
            "hangs"
        }
        fn describe(&self) -> String {
            "hangs".into()
        }
        fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
            Box::pin(async { Ok(Evidence::Null) })
        }
        fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
            let (removed, takes) = (self.removed.clone(), self.takes);
            Box::pin(async move {
                tokio::time::sleep(takes).await;
                *removed.lock().expect("flag") = true;
                Ok(Evidence::Null)
            })
        }
        fn left_to(&self) -> Option<String> {
            self.left_to.map(str::to_string)
        }
    }

    fn stopped_bound(grace: Duration) -> StopBound {
        let bound = StopBound {
            stop: CancellationToken::new(),
            since: Arc::default(),
            grace,
        };
        let _ = bound.since.set(Instant::now());
        bound.stop.cancel();
        bound
    }

    #[tokio::test]
    async fn after_a_stop_a_removal_someone_else_finishes_is_cut_short_and_left_to_them() {
        let removed = Arc::new(Mutex::new(false));
        let mut ledger = Ledger::new(Instant::now(), Duration::from_secs(30))
            .with_stop(stopped_bound(Duration::from_millis(50)));
        let fault = Hangs {
            left_to: Some("the journal undoes it"),
            removed: removed.clone(),
            takes: Duration::from_secs(20),
        };
        ledger.apply("p", Box::new(fault)).await.expect("applies");
        let started = Instant::now();
        ledger.rollback_all().await;
        assert!(started.elapsed() < Duration::from_secs(2), "cut short");
        assert!(!ledger.rollback_failed(), "left, not failed");
        assert!(!*removed.lock().expect("flag"));
        assert_eq!(ledger.left().len(), 1);
        assert!(
            ledger.left()[0].contains("after the stop signal: the journal undoes it"),
            "{:?}",
            ledger.left()
        );
    }

    #[tokio::test]
    async fn after_a_stop_a_removal_nobody_else_can_finish_still_runs_to_its_end() {
        let removed = Arc::new(Mutex::new(false));
        let mut ledger = Ledger::new(Instant::now(), Duration::from_secs(30))
            .with_stop(stopped_bound(Duration::from_millis(50)));
        let fault = Hangs {
            left_to: None,
            removed: removed.clone(),
            takes: Duration::from_millis(400),
        };
        ledger.apply("p", Box::new(fault)).await.expect("applies");
        ledger.rollback_all().await;
        assert!(
            *removed.lock().expect("flag"),
            "a command's rollback is never cut"
        );
        assert!(ledger.left().is_empty() && !ledger.rollback_failed());
    }

    #[tokio::test]
    async fn without_a_stop_a_removal_someone_else_finishes_is_not_cut() {
        let removed = Arc::new(Mutex::new(false));
        let bound = StopBound {
            stop: CancellationToken::new(),
            since: Arc::default(),
            grace: Duration::from_millis(10),
        };
        let mut ledger = Ledger::new(Instant::now(), Duration::from_secs(30)).with_stop(bound);
        let fault = Hangs {
            left_to: Some("the journal undoes it"),
            removed: removed.clone(),
            takes: Duration::from_millis(200),
        };
        ledger.apply("p", Box::new(fault)).await.expect("applies");
        ledger.rollback_all().await;
        assert!(*removed.lock().expect("flag"));
        assert!(ledger.left().is_empty());
    }

    #[tokio::test]
    async fn removing_a_phase_leaves_other_phases_alone() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut ledger = Ledger::new(Instant::now(), Duration::from_secs(1));
        let a = Probe {
            name: "a",
            log: log.clone(),
            fail_remove: false,
            panic_on_apply: false,
        };
        let b = Probe {
            name: "b",
            log: log.clone(),
            fail_remove: false,
            panic_on_apply: false,
        };
        ledger.apply("one", Box::new(a)).await.expect("applies");
        ledger.apply("two", Box::new(b)).await.expect("applies");
        ledger.remove_phase("one").await;
        assert_eq!(ledger.active_count(), 1);
        assert!(!ledger.rollback_failed());
    }

    #[tokio::test]
    async fn a_fault_that_panics_while_applying_is_still_rolled_back() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let ledger = Arc::new(tokio::sync::Mutex::new(Ledger::new(
            Instant::now(),
            Duration::from_secs(1),
        )));
        let task = {
            let ledger = ledger.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let f = Probe {
                    name: "boom",
                    log,
                    fail_remove: false,
                    panic_on_apply: true,
                };
                let _ = ledger.lock().await.apply("p", Box::new(f)).await;
            })
        };
        assert!(task.await.expect_err("the apply panicked").is_panic());
        let mut ledger = ledger.lock().await;
        assert_eq!(ledger.active_count(), 1, "recorded before it was applied");
        ledger.rollback_all().await;
        assert_eq!(
            log.lock().expect("log").as_slice(),
            ["apply boom", "remove boom"]
        );
    }

    /// Panics while removing.
    struct Explodes;

    impl Fault for Explodes {
        fn kind(&self) -> &'static str {
            "explodes"
        }
        fn describe(&self) -> String {
            "explodes".into()
        }
        fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
            Box::pin(async { Ok(Evidence::Null) })
        }
        fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
            Box::pin(async { panic!("a buggy fault panics while removing") })
        }
    }

    #[tokio::test]
    async fn a_fault_that_panics_while_removing_is_a_failed_rollback_and_the_rest_still_go() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut ledger = Ledger::new(Instant::now(), Duration::from_secs(1));
        let a = Probe {
            name: "a",
            log: log.clone(),
            fail_remove: false,
            panic_on_apply: false,
        };
        ledger.apply("p", Box::new(a)).await.expect("applies");
        ledger
            .apply("p", Box::new(Explodes))
            .await
            .expect("applies");
        ledger.rollback_all().await;
        assert!(ledger.rollback_failed());
        assert_eq!(ledger.active_count(), 0);
        assert!(log.lock().expect("log").contains(&"remove a".to_string()));
        let failed = ledger
            .events()
            .iter()
            .find(|e| !e.ok)
            .expect("a failed removal");
        assert!(
            failed.error.as_deref().unwrap_or("").contains("panicked"),
            "{failed:?}"
        );
    }

    #[tokio::test]
    async fn a_fault_removed_early_is_not_removed_again_and_one_rolled_back_is_not_taken() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let probe = |name| Probe {
            name,
            log: log.clone(),
            fail_remove: false,
            panic_on_apply: false,
        };
        let mut ledger = Ledger::new(Instant::now(), Duration::from_secs(1));
        let early = ledger.record("p", Box::new(probe("early")), FaultInfo::default());
        let late = ledger.record("p", Box::new(probe("late")), FaultInfo::default());
        for applying in [&early, &late] {
            let result = applying.apply().await;
            ledger.log_apply(applying, Instant::now(), &result);
        }
        let removal = ledger.take(&early).expect("still recorded");
        let removed = removal.run().await;
        ledger.log_removal(removed);
        assert!(ledger.take(&early).is_none(), "taken once");
        ledger.remove_phase("p").await;
        assert!(ledger.take(&late).is_none(), "gone with its phase");
        assert_eq!(
            log.lock().expect("log").as_slice(),
            ["apply early", "apply late", "remove early", "remove late"]
        );
        let removes = ledger.events().iter().filter(|e| e.action == "remove");
        assert_eq!(removes.count(), 2);
    }
}
