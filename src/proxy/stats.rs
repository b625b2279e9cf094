//! Live counters of one proxy hop.
//!
//! Plain relaxed atomics: each counter is read on its own, so no ordering
//! between them is needed, and the forwarding path must not take a lock.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A snapshot of a hop's counters (see [`super::Proxy::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    /// Every TCP connection accepted, including refused ones.
    pub accepted: u64,
    /// Accepted just as the hop was being disabled, and closed at once. (While
    /// it is down its listener is closed: those connects are `refused_connects`.)
    pub refused: u64,
    /// Connects refused while the hop was down (its port closed, so each got
    /// ECONNREFUSED): the SYNs counted at the port, see `refused_observed`.
    pub refused_connects: u64,
    /// False once a down period could not count its refused connects (no
    /// `CAP_NET_RAW`, or a listen address that is not loopback): then
    /// `refused_connects` is short by the connects of those periods.
    pub refused_observed: bool,
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
    /// HTTP request heads received (`mode: http` only): every request,
    /// whether forwarded, answered by an HTTP fault, or killed by a toxic
    /// after its head arrived.
    pub request_heads: u64,
    /// HTTP connections that carried client data but ended before the hop
    /// received a request head for it (`mode: http` only): the request was
    /// dropped by a toxic (`reset_peer`, `timeout`, `limit_data` upstream),
    /// cut off by the hop going down, or never completed.
    pub aborted_before_head: u64,
}

/// The live counters behind [`ProxyStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    /// Shared with the SYN counter of each down period (`super::syn_count`).
    pub refused_connects: Arc<AtomicU64>,
    /// Set when a down period had no SYN counter.
    pub refused_unobserved: AtomicBool,
    pub upstream_failures: AtomicU64,
    pub active: AtomicU64,
    pub bytes_upstream: AtomicU64,
    pub bytes_downstream: AtomicU64,
    /// Bumped by the HTTP layer (`super::http`); see [`ProxyStats::requests`].
    pub(super) requests: AtomicU64,
    /// Bumped by the HTTP layer; see [`ProxyStats::http_faults_applied`].
    pub(super) http_faults_applied: AtomicU64,
    /// Bumped by the HTTP layer; see [`ProxyStats::request_heads`].
    pub(super) request_heads: AtomicU64,
    /// Bumped by the link; see [`ProxyStats::aborted_before_head`].
    pub(super) aborted_before_head: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> ProxyStats {
        ProxyStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            refused_connects: self.refused_connects.load(Ordering::Relaxed),
            refused_observed: !self.refused_unobserved.load(Ordering::Relaxed),
            upstream_failures: self.upstream_failures.load(Ordering::Relaxed),
            active: self.active.load(Ordering::Relaxed),
            bytes_upstream: self.bytes_upstream.load(Ordering::Relaxed),
            bytes_downstream: self.bytes_downstream.load(Ordering::Relaxed),
            requests: self.requests.load(Ordering::Relaxed),
            http_faults_applied: self.http_faults_applied.load(Ordering::Relaxed),
            request_heads: self.request_heads.load(Ordering::Relaxed),
            aborted_before_head: self.aborted_before_head.load(Ordering::Relaxed),
        }
    }

    /// Counts a connection as active until the guard drops, however the task ends.
    pub fn active_guard(&self) -> ActiveGuard<'_> {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(&self.active)
    }
}

/// Which client data of one HTTP-mode connection is an attempt of its own,
/// for [`ProxyStats::aborted_before_head`]: data a toxic dropped while no
/// request was being served (so no request head accounts for it) counts
/// once, until the next head arrives.
#[derive(Debug, Default)]
pub(crate) struct HeadWatch {
    /// A request head arrived and its service has not returned: dropped
    /// data now is that request's body, not a new attempt.
    serving: AtomicBool,
    /// Dropped data since the last head was already counted.
    counted: AtomicBool,
}

impl HeadWatch {
    /// A toxic dropped client data before it reached the HTTP layer.
    pub fn dropped(&self, aborted: &AtomicU64) {
        if !self.serving.load(Ordering::Relaxed) && !self.counted.swap(true, Ordering::Relaxed) {
            aborted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request head arrived; the guard marks its service as running.
    pub fn head(&self) -> Serving<'_> {
        self.counted.store(false, Ordering::Relaxed);
        self.serving.store(true, Ordering::Relaxed);
        Serving(&self.serving)
    }
}

/// Ends a request's service on drop (see [`HeadWatch::head`]).
pub(crate) struct Serving<'a>(&'a AtomicBool);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// Decrements the active gauge on drop (see [`Counters::active_guard`]).
pub(crate) struct ActiveGuard<'a>(&'a AtomicU64);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
