//! SIGINT/SIGTERM handling. Never exits the process: it only cancels tokens,
//! so every way out still goes through rollback.
//!
//! First signal: stop the load and roll back every fault, then write the
//! partial report (`aborted`, exit 3). Second signal: also abandon in-flight
//! requests, but rollback still runs (each removal has its own timeout).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The cancellation tokens a run watches.
#[derive(Clone, Default)]
pub struct StopSignals {
    /// Stop the run: no new phases, no new requests, roll back.
    pub stop: CancellationToken,
    /// Do not wait for in-flight requests.
    pub abandon: CancellationToken,
    reason: Arc<Mutex<Option<String>>>,
    /// Cancelled by the first SIGINT/SIGTERM (not by a stop condition: then
    /// nobody waits on the run, and removals keep their own timeouts).
    signalled: CancellationToken,
    /// When the first signal arrived: the stop-latency bound counts from here.
    since: Arc<OnceLock<Instant>>,
}

impl StopSignals {
    pub fn new() -> StopSignals {
        StopSignals::default()
    }

    /// Stops the run for `reason` (first caller wins).
    pub fn trigger(&self, reason: &str) {
        if let Ok(mut r) = self.reason.lock() {
            r.get_or_insert_with(|| reason.to_string());
        }
        self.stop.cancel();
    }

    /// What a person's SIGINT/SIGTERM does first: note when, then stop.
    pub fn signal(&self, name: &str) {
        let _ = self.since.set(Instant::now());
        self.signalled.cancel();
        self.trigger(&format!("received {name}"));
    }

    /// Bounds the removals a [`crate::faults::Ledger`] may cut short once
    /// a signal came: `grace` from its arrival.
    pub fn stop_bound(&self, grace: std::time::Duration) -> crate::faults::ledger::StopBound {
        crate::faults::ledger::StopBound {
            stop: self.signalled.clone(),
            since: self.since.clone(),
            grace,
        }
    }

    /// Why the run was stopped, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason.lock().ok().and_then(|r| r.clone())
    }

    /// Listens for SIGINT and SIGTERM in the background.
    pub fn install(&self) -> std::io::Result<()> {
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let this = self.clone();
        tokio::spawn(async move {
            let mut seen = 0u32;
            loop {
                let name = tokio::select! {
                    Some(()) = int.recv() => "SIGINT",
                    Some(()) = term.recv() => "SIGTERM",
                    else => break,
                };
                seen += 1;
                if seen == 1 {
                    crate::eoutln!("\nfaultline: {name} received: stopping load and rolling back faults (send again to skip waiting for in-flight requests)");
                    this.signal(name);
                } else {
                    crate::eoutln!("\nfaultline: {name} received again: abandoning in-flight requests; rollback still runs");
                    this.abandon.cancel();
                }
            }
        });
        Ok(())
    }
}
