//! Live counters of one proxy hop.
//!
//! Plain relaxed atomics: each counter is read on its own, so no ordering
//! between them is needed, and the forwarding path must not take a lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of a hop's counters (see [`super::Proxy::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    /// Every TCP connection accepted, including refused ones.
    pub accepted: u64,
    /// Accepted while the hop was disabled, and closed at once.
    pub refused: u64,
    /// Admitted connections whose upstream connect failed.
    pub upstream_failures: u64,
    /// Connections currently being forwarded (upstream connected or connecting).
    pub active: u64,
    /// Bytes forwarded to the upstream (client → upstream). Counted as each
    /// write starts, so a peer never sees bytes the counter does not include.
    pub bytes_upstream: u64,
    /// Bytes forwarded to the client (upstream → client), counted likewise.
    pub bytes_downstream: u64,
    /// HTTP requests forwarded upstream (`mode: http` only; answered-by-fault
    /// requests are not forwarded and not counted).
    pub requests: u64,
    /// HTTP faults that fired, counting each fault of a request once.
    pub http_faults_applied: u64,
}

/// The live counters behind [`ProxyStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub upstream_failures: AtomicU64,
    pub active: AtomicU64,
    pub bytes_upstream: AtomicU64,
    pub bytes_downstream: AtomicU64,
    /// Bumped by the HTTP layer (`super::http`); see [`ProxyStats::requests`].
    pub(super) requests: AtomicU64,
    /// Bumped by the HTTP layer; see [`ProxyStats::http_faults_applied`].
    pub(super) http_faults_applied: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            upstream_failures: self.upstream_failures.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            bytes_upstream: self.bytes_upstream.load(Ordering::Relaxed),
            bytes_downstream: self.bytes_downstream.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            http_faults_applied: self.http_faults_applied.load(Ordering::Relaxed),
        }
    }

    /// Counts a connection as active until the guard drops, however the task ends.
    pub fn active_guard(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(&self.active)
    }
}

/// Decrements the active gauge on drop (see [`Counters::active_guard`]).
pub(crate) struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
