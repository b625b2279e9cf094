//! [`AgentState`]: the faults the agent holds, each on a lease.
//!
//! A fault is applied, then entered here with an expiry; renewing moves the
//! expiry; [`reap`] removes every fault whose expiry has passed, checked every
//! [`REAP_INTERVAL`]. Removal always takes the entry out of the table first
//! (under the lock) and runs the fault's `remove` afterwards (without it), so
//! one fault is never removed twice and a slow rollback blocks no one.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::faults::remote::spec::{self, SpecError};
use crate::faults::remote::wire::FaultInfo;
use crate::faults::remote::RemoteSpec;
use crate::faults::{Evidence, Fault, FaultError};

/// How often expired leases are looked for: the worst-case overrun of a lease.
pub const REAP_INTERVAL: Duration = Duration::from_millis(200);

/// The longest lease granted: a lease is a dead man's switch, not storage.
pub const MAX_LEASE: Duration = Duration::from_secs(3600);

/// The least time one removal gets before it is abandoned (a `command`
/// fault gets its own timeout plus a second if that is longer), so a hung
/// rollback cannot hold up shutdown forever.
pub const REMOVE_TIMEOUT: Duration = Duration::from_secs(30);

/// Turns a requested `lease_s` into a lease.
pub fn lease_from_secs(secs: f64) -> Result<Duration, SpecError> {
    if !(secs.is_finite() && secs >= 0.001 && secs <= MAX_LEASE.as_secs_f64()) {
        return Err(SpecError(format!(
            "`lease_s` must be between 0.001 and {}, got {secs}",
            MAX_LEASE.as_secs()
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Why `POST /faults` did not leave a fault applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Invalid(#[from] SpecError),
    #[error("the agent is shutting down")]
    Closed,
    #[error("applying {description} failed: {error}{}", cleanup_text(cleanup))]
    Failed {
        description: String,
        error: FaultError,
        /// Why removing what the failed apply left behind failed too, if it did.
        cleanup: Option<FaultError>,
    },
}

fn cleanup_text(cleanup: &Option<FaultError>) -> String {
    match cleanup {
        None => "; what it left behind was removed".into(),
        Some(e) => format!("; removing what it left behind failed too: {e}"),
    }
}

/// One applied fault.
struct Entry {
    id: String,
    spec: RemoteSpec,
    description: String,
    lease: Duration,
    expires: Instant,
    fault: Box<dyn Fault>,
}

impl Entry {
    fn info(&self, now: Instant) -> FaultInfo {
        FaultInfo {
            id: self.id.clone(),
            kind: spec::kind(&self.spec).to_string(),
            description: self.description.clone(),
            spec: self.spec.clone(),
            lease_s: self.lease.as_secs_f64(),
            lease_expires_in_s: self.expires.saturating_duration_since(now).as_secs_f64(),
            evidence: None,
        }
    }
}

#[derive(Default)]
struct Table {
    /// Numbers the ids.
    next: u64,
    /// Set at shutdown: nothing more is entered, so nothing outlives it.
    closed: bool,
    /// Oldest first (a handful of faults: a `Vec` is the simplest map).
    entries: Vec<Entry>,
}

/// Everything the agent's handlers and its lease task share.
pub struct AgentState {
    token: String,
    default_lease: Duration,
    /// Makes ids unique across agent restarts, so a harness renewing the id
    /// of a fault a previous agent process held gets a 404, not someone
    /// else's fault.
    boot: String,
    /// `--allow-force`: a spec's `force` may lift the host's memory bound.
    allow_force: bool,
    table: Mutex<Table>,
}

impl std::fmt::Debug for AgentState {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentState")
            .field("default_lease", &self.default_lease)
            .field("faults", &self.len())
            .finish_non_exhaustive()
    }
}

impl AgentState {
    /// An empty table; `token` is what every request's bearer token must equal.
    pub fn new(token: String, default_lease: Duration) -> AgentState {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        AgentState {
            token,
            default_lease,
            // 36 bits of the start time: distinct for restarts µs apart.
            boot: format!("{:09x}", (nanos >> 10) & 0xf_ffff_ffff),
            allow_force: false,
            table: Mutex::new(Table::default()),
        }
    }

    /// Lets a spec's `force` lift the memory bound (`--allow-force`).
    pub fn with_allow_force(mut self, allow: bool) -> AgentState {
        self.allow_force = allow;
        self
    }

    pub(super) fn token(&self) -> &str {
        &self.token
    }

    /// The lease of a fault whose request names none.
    pub fn default_lease(&self) -> Duration {
        self.default_lease
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        // No code path panics while holding the lock; if one ever did, the
        // table is still consistent (every change is a single push/remove).
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many faults are applied.
    pub fn len(&self) -> usize {
        self.table().entries.len()
    }

    /// Whether no fault is applied.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every fault, oldest first.
    pub fn list(&self) -> Vec<FaultInfo> {
        let now = Instant::now();
        self.table().entries.iter().map(|e| e.info(now)).collect()
    }

    /// One fault.
    pub fn get(&self, id: &str) -> Option<FaultInfo> {
        let now = Instant::now();
        let table = self.table();
        table
            .entries
            .iter()
            .find(|e| e.id == id)
            .map(|e| e.info(now))
    }

    /// Sets the fault's expiry to `lease` (or its own lease length) from now.
    pub fn renew(&self, id: &str, lease: Option<Duration>) -> Option<FaultInfo> {
        let now = Instant::now();
        let mut table = self.table();
        let entry = table.entries.iter_mut().find(|e| e.id == id)?;
        if let Some(lease) = lease {
            entry.lease = lease;
        }
        entry.expires = now + entry.lease;
        Some(entry.info(now))
    }

    /// Checks, builds and applies `spec`, then holds it for `lease`.
    ///
    /// Call it from a task that is not cancelled when a client hangs up: a
    /// fault applied but never entered would outlive every lease. A failed
    /// apply is removed at once (it may have done part of its work).
    pub async fn apply(&self, spec: RemoteSpec, lease: Duration) -> Result<FaultInfo, ApplyError> {
        spec::validate(&spec, self.allow_force)?;
        let id = {
            let mut table = self.table();
            if table.closed {
                return Err(ApplyError::Closed);
            }
            table.next += 1;
            format!("{}-{}", self.boot, table.next)
        };
        let description = spec::describe(&spec);
        let mut fault = spec::build(&spec).map_err(|e| SpecError(e.to_string()))?;
        let evidence = match fault.apply().await {
            Ok(evidence) => evidence,
            Err(error) => {
                let cleanup = remove_within(&mut *fault, &spec).await.err();
                log(&id, &description, "apply failed");
                return Err(ApplyError::Failed {
                    description,
                    error,
                    cleanup,
                });
            }
        };
        let entry = Entry {
            id,
            spec,
            description,
            lease,
            expires: Instant::now() + lease,
            fault,
        };
        let entry = {
            let mut table = self.table();
            if !table.closed {
                let mut info = entry.info(Instant::now());
                log(&entry.id, &entry.description, "applied");
                table.entries.push(entry);
                info.evidence = Some(evidence);
                return Ok(info);
            }
            entry
        };
        // Shutdown began while this fault was being applied: undo it here,
        // since the shutdown sweep has already run.
        let _ = remove(entry, "agent shutting down").await;
        Err(ApplyError::Closed)
    }

    /// Removes one fault; `None` if the agent holds no fault `id`.
    pub async fn remove(&self, id: &str) -> Option<Result<Evidence, FaultError>> {
        let entry = {
            let mut table = self.table();
            let at = table.entries.iter().position(|e| e.id == id)?;
            table.entries.remove(at)
        };
        Some(remove(entry, "removed on request").await)
    }

    /// Takes out every fault whose lease has expired by `now`.
    fn take_expired(&self, now: Instant) -> Vec<Entry> {
        let mut table = self.table();
        let (expired, kept) = std::mem::take(&mut table.entries)
            .into_iter()
            .partition(|e| e.expires <= now);
        table.entries = kept;
        expired
    }

    /// Refuses new faults and removes every fault held, newest first.
    /// Returns how many removals failed.
    pub async fn close(&self) -> usize {
        let entries = {
            let mut table = self.table();
            table.closed = true;
            std::mem::take(&mut table.entries)
        };
        let mut failed = 0;
        for entry in entries.into_iter().rev() {
            failed += usize::from(remove(entry, "agent shutting down").await.is_err());
        }
        failed
    }
}

/// Runs the fault's `remove` within its time limit and logs the outcome.
async fn remove(mut entry: Entry, why: &str) -> Result<Evidence, FaultError> {
    let result = remove_within(&mut *entry.fault, &entry.spec).await;
    let outcome = match &result {
        Ok(_) => format!("removed ({why})"),
        Err(e) => format!("REMOVAL FAILED ({why}): {e}"),
    };
    log(&entry.id, &entry.description, &outcome);
    result
}

async fn remove_within(fault: &mut dyn Fault, spec: &RemoteSpec) -> Result<Evidence, FaultError> {
    let limit = match spec {
        RemoteSpec::Command { timeout_ms, .. } => {
            REMOVE_TIMEOUT.max(Duration::from_millis(*timeout_ms) + Duration::from_secs(1))
        }
        _ => REMOVE_TIMEOUT,
    };
    tokio::time::timeout(limit, fault.remove())
        .await
        .unwrap_or(Err(FaultError::RemoveTimeout(limit)))
}

/// One line per fault event on stdout, the agent's log.
fn log(id: &str, description: &str, what: &str) {
    // The description quotes the request (a command line): a newline or an
    // ANSI escape in it must not forge a log line or repaint a terminal.
    // A closed stdout (a log pipe gone) must not panic a handler.
    use std::io::Write;
    let _ = writeln!(
        std::io::stdout(),
        "faultline agent: {id} {}: {what}",
        crate::config::escape_controls(description)
    );
}

/// The lease task: every [`REAP_INTERVAL`], removes the faults whose lease
/// expired (each on its own task on `tracker`, so one slow rollback does not
/// delay the others). Ends at `shutdown`; [`AgentState::close`] then removes
/// the rest.
pub(super) async fn reap(
    state: Arc<AgentState>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut tick = tokio::time::interval(REAP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        for entry in state.take_expired(Instant::now()) {
            tracker.spawn(async move {
                let _ = remove(entry, "lease expired").await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_in_logged_text_are_escaped() {
        assert_eq!(
            crate::config::escape_controls("rm x\nfaultline agent: forged\u{1b}[2J"),
            "rm x\\nfaultline agent: forged\\u{1b}[2J"
        );
        assert_eq!(
            crate::config::escape_controls("systemctl stop ‘redis’"),
            "systemctl stop ‘redis’"
        );
    }

    fn marker_spec(dir: &std::path::Path) -> RemoteSpec {
        let marker = dir.join("marker");
        RemoteSpec::Command {
            run: format!("touch '{}'", marker.display()),
            rollback: Some(format!("rm '{}'", marker.display())),
            timeout_ms: 5_000,
        }
    }

    #[test]
    fn leases_are_checked() {
        assert_eq!(lease_from_secs(1.5).ok(), Some(Duration::from_millis(1500)));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 3601.0] {
            assert!(lease_from_secs(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn renewing_moves_the_expiry_and_expiry_takes_the_fault_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AgentState::new("t".into(), Duration::from_secs(30));
        let info = state
            .apply(marker_spec(dir.path()), Duration::from_secs(10))
            .await
            .expect("applied");
        assert!(info.evidence.is_some());
        let t0 = Instant::now();
        assert!(state.take_expired(t0 + Duration::from_secs(9)).is_empty());
        let renewed = state
            .renew(&info.id, Some(Duration::from_secs(60)))
            .expect("held");
        assert_eq!(renewed.lease_s, 60.0);
        assert!(state.take_expired(t0 + Duration::from_secs(30)).is_empty());
        let expired = state.take_expired(t0 + Duration::from_secs(61));
        assert_eq!(expired.len(), 1);
        assert!(state.is_empty());
        assert!(state.renew(&info.id, None).is_none());
        for entry in expired {
            remove(entry, "test").await.expect("rollback runs");
        }
        assert!(!dir.path().join("marker").exists());
    }

    #[tokio::test]
    async fn close_removes_everything_and_refuses_new_faults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = AgentState::new("t".into(), Duration::from_secs(30));
        state
            .apply(marker_spec(dir.path()), Duration::from_secs(10))
            .await
            .expect("applied");
        assert!(dir.path().join("marker").exists());
        assert_eq!(state.close().await, 0);
        assert!(!dir.path().join("marker").exists());
        let again = state
            .apply(marker_spec(dir.path()), Duration::from_secs(10))
            .await;
        assert!(matches!(again, Err(ApplyError::Closed)));
        assert!(!dir.path().join("marker").exists());
    }

    #[tokio::test]
    async fn a_failed_apply_is_cleaned_up_and_not_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("cleaned");
        let spec = RemoteSpec::Command {
            run: "exit 3".into(),
            rollback: Some(format!("touch '{}'", marker.display())),
            timeout_ms: 5_000,
        };
        let state = AgentState::new("t".into(), Duration::from_secs(30));
        let err = state
            .apply(spec, Duration::from_secs(10))
            .await
            .expect_err("fails");
        assert!(err.to_string().contains("left behind was removed"), "{err}");
        assert!(marker.exists(), "the rollback ran");
        assert!(state.is_empty());
    }

    #[test]
    fn ids_differ_between_agent_processes_and_debug_hides_the_token() {
        let a = AgentState::new("s3cret".into(), Duration::from_secs(1));
        std::thread::sleep(Duration::from_millis(2));
        let b = AgentState::new("s3cret".into(), Duration::from_secs(1));
        assert_ne!(a.boot, b.boot);
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
