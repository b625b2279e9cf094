//! The rollback ledger: a fault is written here *before* it is applied, and
//! everything written here is removed in reverse order, whatever happens.
//!
//! The ledger also keeps the journal of fault actions (apply/remove, when,
//! outcome, evidence) that the reports show.

use super::{Evidence, Fault, FaultError};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// One fault action, as reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultEvent {
    pub phase: String,
    pub fault: String,
    pub kind: String,
    /// `apply` or `remove`.
    pub action: String,
    /// Seconds since the load started.
    pub at_s: f64,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "serde_json::Value::is_null", default)]
    pub evidence: Evidence,
}

struct Entry {
    phase: String,
    fault: Box<dyn Fault>,
}

/// Faults currently (possibly) in effect, oldest first.
pub struct Ledger {
    t0: Instant,
    active: Vec<Entry>,
    events: Vec<FaultEvent>,
    /// Upper bound for one removal, so a hung rollback cannot hang the run.
    remove_timeout: Duration,
    rollback_failed: bool,
}

impl Ledger {
    pub fn new(t0: Instant, remove_timeout: Duration) -> Ledger {
        Ledger {
            t0,
            active: Vec::new(),
            events: Vec::new(),
            remove_timeout,
            rollback_failed: false,
        }
    }

    /// Records the fault, then applies it. A fault whose apply failed stays
    /// recorded, because a partial apply must still be undone.
    pub async fn apply(&mut self, phase: &str, fault: Box<dyn Fault>) -> Result<(), FaultError> {
        let (kind, describe) = (fault.kind(), fault.describe());
        // Recorded first: if `apply` fails, hangs or panics, the fault is
        // still in the ledger and rollback still removes it.
        self.active.push(Entry {
            phase: phase.to_string(),
            fault,
        });
        let result = match self.active.last_mut() {
            Some(entry) => entry.fault.apply().await,
            None => unreachable!("an entry was just pushed"),
        };
        self.log(phase, kind, describe, "apply", &result);
        result.map(|_| ())
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
        let Entry { phase, mut fault } = entry;
        let (kind, describe) = (fault.kind(), fault.describe());
        let limit = self.remove_timeout;
        // In its own task: a removal that panics is a failed rollback (said
        // loudly), not a lost entry or a crashed run.
        let task = tokio::spawn(async move { tokio::time::timeout(limit, fault.remove()).await });
        let result = match task.await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(FaultError::RemoveTimeout(limit)),
            Err(e) => Err(FaultError::Unsupported(format!(
                "removing the fault panicked: {e}"
            ))),
        };
        if result.is_err() {
            self.rollback_failed = true;
        }
        self.log(&phase, kind, describe, "remove", &result);
    }

    fn log(
        &mut self,
        phase: &str,
        kind: &str,
        fault: String,
        action: &str,
        result: &Result<Evidence, FaultError>,
    ) {
        match result {
            Ok(_) => tracing::info!(phase, fault = %fault, action, "fault {action}"),
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
            at_s: self.t0.elapsed().as_secs_f64(),
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
}
