//! [`Breaker`]: the frontend's circuit breaker around its payments calls.
//!
//! ```text
//! closed ──(N consecutive failures, or failure rate ≥ R over the window
//!   ▲        with ≥ M calls)──▶ open ──(after open_for)──▶ half_open
//!   └───────(every trial call succeeded)─────────────────────┘  │
//!                      open ◀──(any trial call failed)───────────┘
//! ```
//!
//! Open, it refuses calls at once (the frontend answers 503 without calling
//! payments); half-open, it lets `trial_calls` calls through and refuses
//! the rest. A call's result counts only in the state that admitted it: a
//! slow call admitted while closed that fails after the breaker opened says
//! nothing new.
//!
//! The state machine reads no clock: every method takes `now`, so the tests
//! step through time exactly. (The frontend passes `tokio::time::Instant::now()`.)
//! Two defects bend it: `no_breaker` (never opens) and `breaker_never_closes`
//! (never leaves open).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::window::SlidingWindow;
use crate::config::model::{BreakerOptions, Defect};

/// Where a breaker is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    /// The JSON and header name: `closed`, `open`, `half_open`.
    pub fn key(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }

    /// The `demo_breaker_state` gauge value: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> u8 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// Why a call was refused without reaching payments.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// `Open`, or `HalfOpen` when every trial slot is taken.
    pub state: BreakerState,
    /// Why the breaker opened (or why a half-open breaker refused).
    pub reason: String,
    /// Time left until the breaker half-opens; `None` when half-open or
    /// when it never will (`breaker_never_closes`).
    pub retry_after: Option<Duration>,
}

/// What `GET /admin/breaker` and `/metrics` show.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSnapshot {
    pub state: BreakerState,
    /// Transitions to open (from closed or half-open) so far.
    pub opened_total: u64,
    /// Transitions to closed (from half-open) so far.
    pub closed_total: u64,
    pub consecutive_failures: u32,
    /// Time since the last state change (since start when there was none).
    pub since_transition: Duration,
    /// Why it last opened; `None` while closed.
    pub reason: Option<String>,
}

/// Permission for one call, returned by [`Breaker::admit`]; hand it back
/// with [`Breaker::record`] or [`Breaker::abandon`].
#[derive(Debug)]
#[must_use = "a permit must be recorded or abandoned, or a half-open trial slot leaks"]
pub struct Permit {
    /// The state period that admitted the call.
    generation: u64,
    trial: bool,
}

/// A circuit breaker; share it between requests (it locks internally for a
/// few counter updates per call).
#[derive(Debug)]
pub struct Breaker {
    opts: BreakerOptions,
    never_opens: bool,
    never_closes: bool,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    /// Bumped on every transition, so results of calls admitted in an
    /// earlier period are recognised as such.
    generation: u64,
    since: Instant,
    consecutive: u32,
    window: SlidingWindow,
    trials_started: u32,
    trials_passed: u32,
    opened_total: u64,
    closed_total: u64,
    reason: Option<String>,
}

impl Breaker {
    /// A closed breaker with `opts`, bent by the breaker defects in `defects`.
    pub fn new(opts: BreakerOptions, defects: &[Defect], now: Instant) -> Breaker {
        Breaker {
            opts,
            never_opens: defects.contains(&Defect::NoBreaker),
            never_closes: defects.contains(&Defect::BreakerNeverCloses),
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                generation: 0,
                since: now,
                consecutive: 0,
                window: SlidingWindow::new(opts.window, now),
                trials_started: 0,
                trials_passed: 0,
                opened_total: 0,
                closed_total: 0,
                reason: None,
            }),
        }
    }

    /// May a call go to payments now?
    pub fn admit(&self, now: Instant) -> Result<Permit, Rejection> {
        let mut inner = self.lock(now);
        match inner.state {
            BreakerState::Closed => Ok(Permit {
                generation: inner.generation,
                trial: false,
            }),
            BreakerState::Open => Err(Rejection {
                state: BreakerState::Open,
                reason: inner.reason.clone().unwrap_or_default(),
                retry_after: (!self.never_closes)
                    .then(|| (inner.since + self.opts.open_for).saturating_duration_since(now)),
            }),
            BreakerState::HalfOpen if inner.trials_started < self.opts.trial_calls => {
                inner.trials_started += 1;
                Ok(Permit {
                    generation: inner.generation,
                    trial: true,
                })
            }
            BreakerState::HalfOpen => Err(Rejection {
                state: BreakerState::HalfOpen,
                reason: format!(
                    "half-open: all {} trial calls are in flight",
                    self.opts.trial_calls
                ),
                retry_after: None,
            }),
        }
    }

    /// [`Breaker::admit`] for shared breakers, as a guard that gives the
    /// permit back (abandoned) if it is dropped before [`CallGuard::finish`].
    pub fn admit_guard(self: &Arc<Self>, now: Instant) -> Result<CallGuard, Rejection> {
        let permit = self.admit(now)?;
        Ok(CallGuard {
            breaker: Arc::clone(self),
            permit: Some(permit),
        })
    }

    /// The result of an admitted call: `Ok(())` or `Err(what went wrong)`.
    pub fn record(&self, permit: Permit, now: Instant, outcome: Result<(), &str>) {
        let mut inner = self.lock(now);
        let current = permit.generation == inner.generation;
        match (inner.state, permit.trial) {
            (BreakerState::Closed, false) => {
                let failed = outcome.is_err();
                inner.window.record(now, failed);
                inner.consecutive = if failed { inner.consecutive + 1 } else { 0 };
                if let (Err(error), false) = (outcome, self.never_opens) {
                    if let Some(reason) = self.trip_reason(&inner, now, error) {
                        inner.reason = Some(reason);
                        inner.transition(BreakerState::Open, now);
                    }
                }
            }
            (BreakerState::HalfOpen, true) if current => match outcome {
                Err(error) => {
                    inner.reason = Some(format!("a trial call failed while half-open: {error}"));
                    inner.transition(BreakerState::Open, now);
                }
                Ok(()) => {
                    inner.trials_passed += 1;
                    if inner.trials_passed >= self.opts.trial_calls {
                        inner.transition(BreakerState::Closed, now);
                    }
                }
            },
            // A call admitted in an earlier period: its result says nothing
            // about the dependency that the current state does not know.
            _ => {}
        }
    }

    /// An admitted call ended without a result (its client went away): a
    /// half-open trial slot is freed for another call.
    pub fn abandon(&self, permit: Permit) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if permit.trial
            && inner.state == BreakerState::HalfOpen
            && permit.generation == inner.generation
        {
            inner.trials_started = inner.trials_started.saturating_sub(1);
        }
    }

    /// The current state and counters (an open breaker whose `open_for` has
    /// passed shows as half-open).
    pub fn snapshot(&self, now: Instant) -> BreakerSnapshot {
        let inner = self.lock(now);
        BreakerSnapshot {
            state: inner.state,
            opened_total: inner.opened_total,
            closed_total: inner.closed_total,
            consecutive_failures: inner.consecutive,
            since_transition: now.saturating_duration_since(inner.since),
            reason: inner.reason.clone(),
        }
    }

    /// Why the breaker must open after a failed call, if it must.
    fn trip_reason(&self, inner: &Inner, now: Instant, error: &str) -> Option<String> {
        if inner.consecutive >= self.opts.consecutive_failures {
            return Some(format!(
                "{} consecutive payments calls failed (last: {error})",
                inner.consecutive
            ));
        }
        let counts = inner.window.counts(now);
        let rate = counts.failure_rate();
        (counts.total >= u64::from(self.opts.min_calls) && rate >= self.opts.failure_rate).then(
            || {
                format!(
                    "{} of {} payments calls failed ({:.0}%) in the last {:?} (last: {error})",
                    counts.failed,
                    counts.total,
                    rate * 100.0,
                    self.opts.window
                )
            },
        )
    }

    /// The state, after moving an open breaker whose time is up to half-open.
    fn lock(&self, now: Instant) -> MutexGuard<'_, Inner> {
        // Nothing panics under the lock; a poisoned one still holds
        // consistent counters.
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.state == BreakerState::Open
            && !self.never_closes
            && now >= inner.since + self.opts.open_for
        {
            inner.transition(BreakerState::HalfOpen, now);
        }
        inner
    }
}

impl Inner {
    fn transition(&mut self, to: BreakerState, now: Instant) {
        self.state = to;
        self.since = now;
        self.generation += 1;
        match to {
            BreakerState::Open => self.opened_total += 1,
            BreakerState::HalfOpen => {
                self.trials_started = 0;
                self.trials_passed = 0;
            }
            BreakerState::Closed => {
                self.closed_total += 1;
                self.consecutive = 0;
                self.window.clear();
                self.reason = None;
            }
        }
    }
}

/// An admitted call on a shared [`Breaker`]: finish it with its result, or
/// drop it to abandon it.
#[derive(Debug)]
pub struct CallGuard {
    breaker: Arc<Breaker>,
    permit: Option<Permit>,
}

impl CallGuard {
    /// Records the call's result (see [`Breaker::record`]).
    pub fn finish(mut self, now: Instant, outcome: Result<(), &str>) {
        if let Some(permit) = self.permit.take() {
            self.breaker.record(permit, now, outcome);
        }
    }
}

impl Drop for CallGuard {
    fn drop(&mut self) {
        if let Some(permit) = self.permit.take() {
            self.breaker.abandon(permit);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const FAIL: Result<(), &str> = Err("payments returned 500");

    fn opts() -> BreakerOptions {
        BreakerOptions::default()
    }

    /// One admitted call with its result; panics if the breaker refuses.
    fn call(breaker: &Breaker, now: Instant, outcome: Result<(), &str>) {
        let permit = breaker.admit(now).expect("admitted");
        breaker.record(permit, now, outcome);
    }

    fn state(breaker: &Breaker, now: Instant) -> BreakerState {
        breaker.snapshot(now).state
    }

    /// A breaker opened by five failures at `t0`.
    fn opened(defects: &[Defect]) -> (Breaker, Instant) {
        let t0 = Instant::now();
        let breaker = Breaker::new(opts(), defects, t0);
        for _ in 0..5 {
            call(&breaker, t0, FAIL);
        }
        (breaker, t0)
    }

    #[test]
    fn five_consecutive_failures_open_it_and_then_it_fails_fast() {
        let t0 = Instant::now();
        let breaker = Breaker::new(opts(), &[], t0);
        for n in 1..=4 {
            call(&breaker, t0, FAIL);
            assert_eq!(state(&breaker, t0), BreakerState::Closed, "after {n}");
        }
        call(&breaker, t0, FAIL);
        let snap = breaker.snapshot(t0 + MS);
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.opened_total, 1);
        assert_eq!(snap.consecutive_failures, 5);

        let refused = breaker.admit(t0 + 500 * MS).expect_err("fails fast");
        assert_eq!(refused.state, BreakerState::Open);
        assert!(
            refused.reason.contains("5 consecutive"),
            "{}",
            refused.reason
        );
        assert!(refused.reason.contains("payments returned 500"));
        assert_eq!(refused.retry_after, Some(1500 * MS));
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        let t0 = Instant::now();
        let breaker = Breaker::new(opts(), &[], t0);
        for _ in 0..3 {
            for _ in 0..4 {
                call(&breaker, t0, FAIL);
            }
            call(&breaker, t0, Ok(()));
        }
        let snap = breaker.snapshot(t0);
        assert_eq!(snap.state, BreakerState::Closed);
        assert_eq!(snap.consecutive_failures, 0);
    }

    #[test]
    fn it_half_opens_after_open_for_and_successful_trials_close_it() {
        let (breaker, t0) = opened(&[]);
        assert_eq!(state(&breaker, t0 + 1999 * MS), BreakerState::Open);
        let t1 = t0 + 2000 * MS;
        assert_eq!(state(&breaker, t1), BreakerState::HalfOpen);

        let trials: Vec<Permit> = (0..3)
            .map(|_| breaker.admit(t1).expect("trial admitted"))
            .collect();
        let refused = breaker.admit(t1).expect_err("a fourth call is refused");
        assert_eq!(refused.state, BreakerState::HalfOpen);
        for (n, permit) in trials.into_iter().enumerate() {
            assert_eq!(state(&breaker, t1), BreakerState::HalfOpen, "trial {n}");
            breaker.record(permit, t1 + MS, Ok(()));
        }
        let snap = breaker.snapshot(t1 + 2 * MS);
        assert_eq!(snap.state, BreakerState::Closed);
        assert_eq!((snap.opened_total, snap.closed_total), (1, 1));
        assert_eq!(snap.since_transition, MS);
        assert!(breaker.admit(t1 + 2 * MS).is_ok());
    }

    #[test]
    fn a_failed_trial_opens_it_again_for_another_open_for() {
        let (breaker, t0) = opened(&[]);
        let t1 = t0 + 2 * Duration::from_secs(1);
        let first = breaker.admit(t1).expect("trial");
        let second = breaker.admit(t1).expect("trial");
        breaker.record(first, t1, Ok(()));
        breaker.record(second, t1 + 10 * MS, FAIL);
        let snap = breaker.snapshot(t1 + 10 * MS);
        assert_eq!(snap.state, BreakerState::Open);
        assert_eq!(snap.opened_total, 2);
        assert!(snap.reason.is_some_and(|r| r.contains("trial call failed")));
        assert_eq!(
            state(&breaker, t1 + 2009 * MS),
            BreakerState::Open,
            "open_for counts from the reopening"
        );
        assert_eq!(state(&breaker, t1 + 2010 * MS), BreakerState::HalfOpen);
    }

    #[test]
    fn an_abandoned_trial_frees_its_slot() {
        let (breaker, t0) = opened(&[]);
        let breaker = Arc::new(breaker);
        let t1 = t0 + Duration::from_secs(2);
        let guards: Vec<CallGuard> = (0..3)
            .map(|_| breaker.admit_guard(t1).expect("trial"))
            .collect();
        assert!(breaker.admit(t1).is_err(), "all slots taken");
        drop(guards);
        let again: Vec<CallGuard> = (0..3)
            .map(|_| breaker.admit_guard(t1).expect("slot freed"))
            .collect();
        for guard in again {
            guard.finish(t1, Ok(()));
        }
        assert_eq!(state(&breaker, t1), BreakerState::Closed);
    }

    #[test]
    fn results_of_calls_admitted_before_opening_change_nothing() {
        let t0 = Instant::now();
        let breaker = Breaker::new(opts(), &[], t0);
        let slow = breaker.admit(t0).expect("admitted while closed");
        for _ in 0..5 {
            call(&breaker, t0, FAIL);
        }
        let t1 = t0 + Duration::from_secs(2);
        let trial = breaker.admit(t1).expect("trial");
        breaker.record(slow, t1, FAIL);
        assert_eq!(state(&breaker, t1), BreakerState::HalfOpen);
        breaker.record(trial, t1, Ok(()));
        assert_eq!(state(&breaker, t1), BreakerState::HalfOpen, "1 of 3 trials");
    }

    #[test]
    fn a_failure_rate_over_the_window_opens_it_without_consecutive_failures() {
        let t0 = Instant::now();
        let breaker = Breaker::new(opts(), &[], t0);
        // Fail, succeed, alternately: never two failures in a row.
        for n in 0..19 {
            let outcome = if n % 2 == 0 { FAIL } else { Ok(()) };
            call(&breaker, t0 + n * 10 * MS, outcome);
        }
        // 10 of 19 failed, but fewer than min_calls (20) so far.
        assert_eq!(state(&breaker, t0 + 190 * MS), BreakerState::Closed);
        call(&breaker, t0 + 190 * MS, Ok(()));
        assert_eq!(state(&breaker, t0 + 190 * MS), BreakerState::Closed);
        // 11 of 21: the next failure (and 50% or more) trips it.
        call(&breaker, t0 + 200 * MS, FAIL);
        let snap = breaker.snapshot(t0 + 200 * MS);
        assert_eq!(snap.state, BreakerState::Open);
        assert!(
            snap.reason.is_some_and(|r| r.contains("11 of 21")),
            "{:?}",
            breaker.snapshot(t0).reason
        );
    }

    #[test]
    fn old_failures_slide_out_of_the_rate_window() {
        let t0 = Instant::now();
        let breaker = Breaker::new(opts(), &[], t0);
        // 9 of 19 failed, never two in a row.
        for n in 0..19 {
            let outcome = if n % 2 == 1 { FAIL } else { Ok(()) };
            call(&breaker, t0, outcome);
        }
        // Within the window this would be 10 of 20 (50%) and trip it; 11 s
        // later the earlier calls have slid out and it is 1 of 1 < min_calls.
        let later = t0 + Duration::from_secs(11);
        call(&breaker, later, FAIL);
        assert_eq!(state(&breaker, later), BreakerState::Closed);
    }

    #[test]
    fn with_no_breaker_it_never_opens() {
        let (breaker, t0) = opened(&[Defect::NoBreaker]);
        for _ in 0..100 {
            call(&breaker, t0, FAIL);
        }
        let snap = breaker.snapshot(t0);
        assert_eq!(snap.state, BreakerState::Closed);
        assert_eq!(snap.opened_total, 0);
        assert_eq!(snap.consecutive_failures, 105, "still counted, for /admin");
    }

    #[test]
    fn with_breaker_never_closes_it_stays_open() {
        let (breaker, t0) = opened(&[Defect::BreakerNeverCloses]);
        let much_later = t0 + Duration::from_secs(3600);
        let refused = breaker.admit(much_later).expect_err("still open");
        assert_eq!(refused.state, BreakerState::Open);
        assert_eq!(refused.retry_after, None);
        assert_eq!(state(&breaker, much_later), BreakerState::Open);
    }

    #[test]
    fn state_keys_and_gauges() {
        let table = [
            (BreakerState::Closed, "closed", 0),
            (BreakerState::Open, "open", 1),
            (BreakerState::HalfOpen, "half_open", 2),
        ];
        for (state, key, gauge) in table {
            assert_eq!((state.key(), state.gauge()), (key, gauge));
        }
    }
}
