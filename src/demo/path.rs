//! [`PaymentsPath`]: one version's way to payments — its circuit breaker,
//! its bulkhead and its [`Upstream`] (its own hop, and for v1 with
//! `failover` a backup behind it).
//!
//! The bulkhead allows at most [`MAX_CONCURRENT_CALLS`] payments calls in
//! flight per version, like a bounded worker pool. Healthy, waiting for a
//! slot and the call itself share one `payments_timeout` budget (504 when it
//! runs out), so a dependency that stops answering costs at most that long
//! per request and the slots come back on their own.
//!
//! The `no_timeout` defect removes the budget and runs each call in its own
//! task that keeps its slot until payments answers, even after the request
//! that asked for it was abandoned (a thread-per-request server without
//! timeouts). Calls that never get an answer then hold their slots for good,
//! and once all are held every checkout of that version hangs — also after
//! the fault that caused it is gone. The tasks still end at shutdown.
//!
//! "Never get an answer" includes a connection that closes without one. The
//! HTTP-mode hop drops a connection that has been idle for 30 s (hyper's
//! header-read timeout), which is what a blackholed call's connection looks
//! like from the hop's side; letting that close free the slot would make the
//! defect heal itself 30 s after any blackhole. The defective client instead
//! keeps waiting, as one blocked on a half-open connection does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::breaker::{Breaker, CallGuard, Rejection};
use super::canary::Version;
use super::failover::Upstream;
use super::payments_client::PaymentsError;
use crate::config::model::{Defect, DemoOptions};

/// Payments calls in flight per version at most (the bulkhead's size).
pub const MAX_CONCURRENT_CALLS: usize = 32;

/// Why a checkout's payment did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The breaker refused the call; payments was not called.
    #[error("circuit breaker {}: {}", .0.state.key(), .0.reason)]
    Rejected(Rejection),
    /// The call was made (or waited for a slot) and failed.
    #[error(transparent)]
    Payments(#[from] PaymentsError),
}

/// One version's breaker, bulkhead and client.
#[derive(Debug)]
pub struct PaymentsPath {
    version: Version,
    client: Upstream,
    breaker: Arc<Breaker>,
    slots: Arc<Semaphore>,
    /// The `no_timeout` defect (see the module docs).
    unbounded: bool,
    /// Calls that got a slot and went to payments.
    calls: AtomicU64,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl PaymentsPath {
    /// The path of `version`, calling payments through `client`. Spawned calls
    /// (`no_timeout`) run on `tracker` and end on `shutdown`.
    pub fn new(
        version: Version,
        client: Upstream,
        opts: &DemoOptions,
        shutdown: CancellationToken,
        tracker: TaskTracker,
        now: Instant,
    ) -> PaymentsPath {
        PaymentsPath {
            version,
            client,
            breaker: Arc::new(Breaker::new(opts.breaker, &opts.defects, now)),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_CALLS)),
            unbounded: opts.has(Defect::NoTimeout),
            calls: AtomicU64::new(0),
            shutdown,
            tracker,
        }
    }

    pub fn version(&self) -> Version {
        self.version
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Where the calls go (with the fail-over's state, when it has one).
    pub fn upstream(&self) -> &Upstream {
        &self.client
    }

    /// Calls made to payments so far (`demo_payments_calls_total`).
    pub fn payments_calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Bulkhead slots currently held.
    pub fn calls_in_flight(&self) -> usize {
        MAX_CONCURRENT_CALLS - self.slots.available_permits()
    }

    /// Charges `amount_cents` if the breaker allows it.
    pub async fn pay(&self, amount_cents: u64) -> Result<serde_json::Value, CallError> {
        let guard = self
            .breaker
            .admit_guard(Instant::now())
            .map_err(CallError::Rejected)?;
        let result = if self.unbounded {
            self.pay_unbounded(amount_cents, guard).await
        } else {
            let result = self.pay_bounded(amount_cents).await;
            finish(guard, &result);
            result
        };
        result.map_err(CallError::Payments)
    }

    /// A slot and the call within one `payments_timeout`.
    async fn pay_bounded(&self, amount_cents: u64) -> Result<serde_json::Value, PaymentsError> {
        let limit = self.client.timeout();
        let call = async {
            let _slot = self.slots.acquire().await.map_err(|_| closed())?;
            self.calls.fetch_add(1, Ordering::Relaxed);
            self.client.pay_unbounded(amount_cents).await
        };
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(PaymentsError::Timeout(limit)))
    }

    /// `no_timeout`: wait for a slot as long as it takes, then call in a
    /// task that owns the slot and the breaker permit until payments answers.
    async fn pay_unbounded(
        &self,
        amount_cents: u64,
        guard: CallGuard,
    ) -> Result<serde_json::Value, PaymentsError> {
        let slot = tokio::select! {
            slot = Arc::clone(&self.slots).acquire_owned() => slot.map_err(|_| closed())?,
            _ = self.shutdown.cancelled() => return Err(shutting_down()),
        };
        self.calls.fetch_add(1, Ordering::Relaxed);
        let client = self.client.clone();
        let shutdown = self.shutdown.clone();
        let call = self.tracker.spawn(async move {
            let call = async {
                match client.pay_unbounded(amount_cents).await {
                    // No answer is not an answer (see the module docs).
                    Err(PaymentsError::Closed(_)) => std::future::pending().await,
                    other => other,
                }
            };
            let result = tokio::select! {
                result = call => result,
                _ = shutdown.cancelled() => Err(shutting_down()),
            };
            drop(slot);
            finish(guard, &result);
            result
        });
        call.await.unwrap_or_else(|error| {
            Err(PaymentsError::Unreachable(format!(
                "the payments call task failed: {error}"
            )))
        })
    }
}

/// Hands a finished call's outcome to the breaker.
fn finish(guard: CallGuard, result: &Result<serde_json::Value, PaymentsError>) {
    let now = Instant::now();
    match result {
        Ok(_) => guard.finish(now, Ok(())),
        Err(error) => guard.finish(now, Err(&error.to_string())),
    }
}

/// The semaphore is never closed; kept as an error rather than a panic.
fn closed() -> PaymentsError {
    PaymentsError::Unreachable("the bulkhead is closed".to_string())
}

fn shutting_down() -> PaymentsError {
    PaymentsError::Unreachable("the demo system is shutting down".to_string())
}
