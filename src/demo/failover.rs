//! [`Upstream`]: where one version's payments calls go — one payments
//! endpoint, or (`target.demo.failover`, v1 only) a primary with a backup,
//! balanced like nginx's passive health checks:
//!
//! ```text
//! v1 ─▶ hop `payments` ─▶ payments          (primary)
//!   └──(primary failed: retry)──▶ hop `payments-backup` ─▶ payments-backup
//! ```
//!
//! A call goes to the primary; when that attempt fails (an error status, a
//! refused or reset connection, no answer within half the call budget) it
//! is retried on the backup, so the client still gets its payment. After
//! `max_fails` failures within `fail_timeout` the primary is ejected: calls
//! go straight to the backup for `fail_timeout`, then ONE call probes the
//! primary — success re-admits it, failure ejects it for another
//! `fail_timeout` (nginx's `max_fails` / `fail_timeout`). The faulty
//! dependency's hop therefore sees its call rate drop to about one probe per
//! `fail_timeout`, which is what `breaker` `style: fail_over` judges.
//!
//! The defect `no_ejection` (nginx's `max_fails=0`) never ejects: every call
//! still tries the primary first. Clients stay healthy (the retry saves
//! them), but the failing dependency keeps receiving every call.
//!
//! [`Ejection`] reads no clock: every method takes `now`, so its tests step
//! through time exactly.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::payments_client::{PaymentsClient, PaymentsError};
use crate::config::model::FailoverOptions;

/// Where the next call goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Primary,
    /// The one call that probes an ejected primary whose `fail_timeout` is over.
    Probe,
    Backup,
}

/// The primary's ejection state.
#[derive(Debug, Clone)]
pub struct Ejection {
    opts: FailoverOptions,
    /// False with the `no_ejection` defect.
    ejects: bool,
    fails: u32,
    /// Start of the window `fails` are counted in.
    window_start: Option<Instant>,
    /// Ejected until then; `None` while the primary is in rotation.
    ejected_until: Option<Instant>,
    /// A probe is in flight: other calls keep going to the backup.
    probing: bool,
    /// Times the primary was ejected (after failures or a failed probe).
    pub ejections: u64,
}

impl Ejection {
    pub fn new(opts: FailoverOptions, ejects: bool) -> Ejection {
        Ejection {
            opts,
            ejects,
            fails: 0,
            window_start: None,
            ejected_until: None,
            probing: false,
            ejections: 0,
        }
    }

    /// Where a call made at `now` goes.
    pub fn route(&mut self, now: Instant) -> Route {
        match self.ejected_until {
            None => Route::Primary,
            Some(until) if now < until || self.probing => Route::Backup,
            Some(_) => {
                self.probing = true;
                Route::Probe
            }
        }
    }

    /// The primary's answer to a call routed `route` (not called for the backup).
    pub fn record(&mut self, route: Route, now: Instant, ok: bool) {
        if route == Route::Probe {
            self.probing = false;
            if ok {
                self.ejected_until = None;
                self.fails = 0;
                self.window_start = None;
            } else {
                self.eject(now);
            }
            return;
        }
        if ok || !self.ejects || self.ejected_until.is_some() {
            return;
        }
        let fresh = self
            .window_start
            .is_none_or(|start| now.duration_since(start) > self.opts.fail_timeout);
        if fresh {
            self.window_start = Some(now);
            self.fails = 0;
        }
        self.fails += 1;
        if self.fails >= self.opts.max_fails {
            self.eject(now);
        }
    }

    fn eject(&mut self, now: Instant) {
        self.ejected_until = Some(now + self.opts.fail_timeout);
        self.fails = 0;
        self.window_start = None;
        self.ejections += 1;
    }

    /// Whether the primary is out of rotation at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        self.ejected_until.is_some_and(|until| now < until) || self.probing
    }
}

/// A primary with a backup, and the primary's ejection state.
#[derive(Debug)]
pub struct Failover {
    primary: PaymentsClient,
    backup: PaymentsClient,
    state: Mutex<Ejection>,
}

impl Failover {
    pub fn new(primary: PaymentsClient, backup: PaymentsClient, ejection: Ejection) -> Failover {
        Failover {
            primary,
            backup,
            state: Mutex::new(ejection),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut Ejection) -> T) -> T {
        // The state is plain data, consistent after every method: a panic
        // elsewhere while holding the lock leaves nothing half-done.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    /// Times the primary was ejected so far.
    pub fn ejections(&self) -> u64 {
        self.with_state(|s| s.ejections)
    }

    /// Whether the primary is out of rotation now.
    pub fn is_ejected(&self) -> bool {
        self.with_state(|s| s.is_ejected(Instant::now()))
    }

    /// One payment: the primary (bounded by `attempt`), then the backup.
    async fn pay(
        &self,
        amount_cents: u64,
        attempt: Duration,
    ) -> Result<serde_json::Value, PaymentsError> {
        let route = self.with_state(|s| s.route(Instant::now()));
        if route != Route::Backup {
            let result = tokio::time::timeout(attempt, self.primary.pay_unbounded(amount_cents))
                .await
                .unwrap_or(Err(PaymentsError::Timeout(attempt)));
            let ok = result.is_ok();
            self.with_state(|s| s.record(route, Instant::now(), ok));
            if ok {
                return result;
            }
        }
        self.backup.pay_unbounded(amount_cents).await
    }
}

/// One version's way to payments.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// Boxed: a client is a few hundred bytes, the fail-over an `Arc`.
    Single(Box<PaymentsClient>),
    FailOver(Arc<Failover>),
}

impl Upstream {
    /// The per-call budget (the primary's client's timeout).
    pub fn timeout(&self) -> Duration {
        match self {
            Upstream::Single(c) => c.timeout(),
            Upstream::FailOver(f) => f.primary.timeout(),
        }
    }

    /// A payment without an overall bound (the caller sets it). With a
    /// backup, the primary's attempt gets half the budget, so that a
    /// primary that never answers still leaves time for the backup.
    pub async fn pay_unbounded(
        &self,
        amount_cents: u64,
    ) -> Result<serde_json::Value, PaymentsError> {
        match self {
            Upstream::Single(c) => c.pay_unbounded(amount_cents).await,
            Upstream::FailOver(f) => f.pay(amount_cents, f.primary.timeout() / 2).await,
        }
    }

    /// The fail-over, when this upstream has one.
    pub fn failover(&self) -> Option<&Failover> {
        match self {
            Upstream::Single(_) => None,
            Upstream::FailOver(f) => Some(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> FailoverOptions {
        FailoverOptions {
            max_fails: 2,
            fail_timeout: Duration::from_secs(2),
        }
    }

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn max_fails_within_fail_timeout_eject_the_primary_and_one_probe_readmits_it() {
        let t0 = Instant::now();
        let mut e = Ejection::new(opts(), true);
        assert_eq!(e.route(t0), Route::Primary);
        e.record(Route::Primary, ms(t0, 10), false);
        assert_eq!(
            e.route(ms(t0, 20)),
            Route::Primary,
            "one failure is not enough"
        );
        e.record(Route::Primary, ms(t0, 30), false);
        assert_eq!(e.route(ms(t0, 40)), Route::Backup, "ejected");
        assert_eq!(e.route(ms(t0, 2020)), Route::Backup, "for fail_timeout");
        assert_eq!(e.route(ms(t0, 2031)), Route::Probe);
        assert_eq!(e.route(ms(t0, 2032)), Route::Backup, "one probe at a time");
        e.record(Route::Probe, ms(t0, 2040), false);
        assert_eq!(
            e.route(ms(t0, 4000)),
            Route::Backup,
            "a failed probe ejects again"
        );
        assert_eq!(e.route(ms(t0, 4041)), Route::Probe);
        e.record(Route::Probe, ms(t0, 4050), true);
        assert_eq!(e.route(ms(t0, 4060)), Route::Primary, "re-admitted");
        assert_eq!(e.ejections, 2);
    }

    #[test]
    fn failures_further_apart_than_fail_timeout_do_not_add_up() {
        let t0 = Instant::now();
        let mut e = Ejection::new(opts(), true);
        e.record(Route::Primary, t0, false);
        e.record(Route::Primary, ms(t0, 2500), false);
        assert_eq!(e.route(ms(t0, 2600)), Route::Primary);
        e.record(Route::Primary, ms(t0, 2700), false);
        assert_eq!(e.route(ms(t0, 2800)), Route::Backup);
    }

    #[test]
    fn no_ejection_keeps_every_call_on_the_primary() {
        let t0 = Instant::now();
        let mut e = Ejection::new(opts(), false);
        for i in 0..100 {
            assert_eq!(e.route(ms(t0, i)), Route::Primary);
            e.record(Route::Primary, ms(t0, i), false);
        }
        assert_eq!(e.ejections, 0);
    }
}
