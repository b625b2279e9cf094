//! [`Canary`]: which version serves a checkout, and the rollback controller
//! that takes the canary (v2) out of rotation when it fails.
//!
//! The split is deterministic rather than random: checkout number `n` goes
//! to v2 when `n × weight` crosses an integer, so a 10% weight sends exactly
//! one checkout in ten to v2, spread evenly. The demo's seed shifts where in
//! the cycle v2's turns fall. An exact share keeps canary verifiers' numbers
//! free of sampling noise.
//!
//! The controller ([`run_rollback_controller`]) looks at v2's error rate
//! (status ≥ 500) over a sliding window every [`EVALUATE_EVERY`] and sets
//! the weight to 0 when the rate exceeds `rollback.error_rate` with enough
//! requests. The defects `no_rollback` (never acts), `slow_rollback`
//! (acts once the breach has lasted [`SLOW_ROLLBACK_HOLD`]) and
//! `flapping_rollback` (a passive health check, not a rollback: it ejects the
//! canary for [`EJECTED_FOR`], re-admits it and ejects it again while it
//! fails, like HAProxy's `observe layer7` + `on-error mark-down`) bend it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::window::{Counts, SlidingWindow};
use crate::config::model::{Defect, RollbackOptions};

/// How often the controller looks at the canary.
pub const EVALUATE_EVERY: Duration = Duration::from_millis(250);

/// How long the breach must last before a `slow_rollback` controller acts.
pub const SLOW_ROLLBACK_HOLD: Duration = Duration::from_secs(30);

/// How long a `flapping_rollback` controller keeps the canary out before
/// re-admitting it (HAProxy marked a failing server DOWN for about 2 s).
pub const EJECTED_FOR: Duration = Duration::from_secs(2);

/// How long a re-admitted canary serves before a `flapping_rollback`
/// controller looks at it again (the failures that eject it take a moment).
pub const REJOIN_GRACE: Duration = Duration::from_secs(1);

/// The split's resolution: weights are applied in parts per million.
const PPM: u128 = 1_000_000;

/// A version of the frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// The stable version.
    V1,
    /// The canary.
    V2,
}

impl Version {
    pub const ALL: [Version; 2] = [Version::V1, Version::V2];

    /// `v1` or `v2`, as sent in `x-version`.
    pub fn key(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RollbackMode {
    Prompt,
    Never,
    /// Only once the breach has held this long (`slow_rollback`).
    After(Duration),
    /// Ejects, re-admits after [`EJECTED_FOR`], ejects again (`flapping_rollback`).
    Flapping,
}

/// The canary's weight, its request counts and its rollback state.
#[derive(Debug)]
pub struct Canary {
    /// The weight as `f64` bits, read lock-free by every checkout.
    weight: AtomicU64,
    /// The next position in the split sequence.
    next: AtomicU64,
    opts: RollbackOptions,
    mode: RollbackMode,
    requests_total: AtomicU64,
    errors_total: AtomicU64,
    rollout: Mutex<Rollout>,
}

#[derive(Debug)]
struct Rollout {
    window: SlidingWindow,
    rolled_back_at: Option<Instant>,
    reason: Option<String>,
    /// When the current, uninterrupted breach began.
    breached_since: Option<Instant>,
    /// `flapping_rollback`: when the canary was ejected, and its weight then.
    ejected: Option<(Instant, f64)>,
    /// `flapping_rollback`: when it was last re-admitted.
    readmitted_at: Option<Instant>,
}

/// What `GET /admin/canary` and `/metrics` show.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySnapshot {
    pub weight: f64,
    pub rolled_back: bool,
    pub rolled_back_ago: Option<Duration>,
    pub reason: Option<String>,
    /// v2 requests and errors in the rollback window.
    pub window: Counts,
    /// v2 requests and errors since start.
    pub requests_total: u64,
    pub errors_total: u64,
}

impl Canary {
    /// A canary at `weight` (0..=1), judged by `opts`, bent by the rollback
    /// defects in `defects`; `seed` shifts the split sequence.
    pub fn new(
        weight: f64,
        opts: RollbackOptions,
        defects: &[Defect],
        seed: u64,
        now: Instant,
    ) -> Canary {
        let mode = if defects.contains(&Defect::NoRollback) {
            RollbackMode::Never
        } else if defects.contains(&Defect::SlowRollback) {
            RollbackMode::After(SLOW_ROLLBACK_HOLD)
        } else if defects.contains(&Defect::FlappingRollback) {
            RollbackMode::Flapping
        } else {
            RollbackMode::Prompt
        };
        Canary {
            weight: AtomicU64::new(clamp_weight(weight).to_bits()),
            next: AtomicU64::new(seed % PPM as u64),
            opts,
            mode,
            requests_total: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            rollout: Mutex::new(Rollout {
                window: SlidingWindow::new(opts.window, now),
                rolled_back_at: None,
                reason: None,
                breached_since: None,
                ejected: None,
                readmitted_at: None,
            }),
        }
    }

    /// The share of checkouts v2 serves now.
    pub fn weight(&self) -> f64 {
        f64::from_bits(self.weight.load(Ordering::Relaxed))
    }

    /// The version that serves the next checkout.
    pub fn pick(&self) -> Version {
        let weight = self.weight();
        if weight <= 0.0 {
            return Version::V1;
        }
        if weight >= 1.0 {
            return Version::V2;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let ppm = (weight * PPM as f64).round() as u128;
        let crossed = |k: u128| k * ppm / PPM;
        if crossed(u128::from(n) + 1) > crossed(u128::from(n)) {
            Version::V2
        } else {
            Version::V1
        }
    }

    /// Counts a checkout answered with `status` by `version` (only v2's matter).
    pub fn record(&self, version: Version, status: u16, now: Instant) {
        if version != Version::V2 {
            return;
        }
        let failed = status >= 500;
        self.requests_total.fetch_add(1, Ordering::Relaxed);
        self.errors_total
            .fetch_add(u64::from(failed), Ordering::Relaxed);
        self.lock().window.record(now, failed);
    }

    /// Sets the weight by hand (a promotion, a blue-green switch): clears
    /// `rolled_back` and starts a fresh window, so the errors that caused an
    /// earlier rollback do not roll the new rollout back at once.
    pub fn set_weight(&self, weight: f64) {
        let mut rollout = self.lock();
        self.weight
            .store(clamp_weight(weight).to_bits(), Ordering::Relaxed);
        rollout.rolled_back_at = None;
        rollout.reason = None;
        rollout.breached_since = None;
        rollout.ejected = None;
        rollout.readmitted_at = None;
        rollout.window.clear();
    }

    /// One look at the canary: rolls it back if it must. Returns whether it did.
    pub fn evaluate(&self, now: Instant) -> bool {
        let mut rollout = self.lock();
        if self.mode == RollbackMode::Flapping && self.readmit(&mut rollout, now) {
            return false;
        }
        if rollout.rolled_back_at.is_some() || self.weight() <= 0.0 {
            rollout.breached_since = None;
            return false;
        }
        let counts = rollout.window.counts(now);
        let rate = counts.failure_rate();
        if counts.total < u64::from(self.opts.min_requests) || rate <= self.opts.error_rate {
            rollout.breached_since = None;
            return false;
        }
        let since = *rollout.breached_since.get_or_insert(now);
        let act = match self.mode {
            RollbackMode::Prompt | RollbackMode::Flapping => true,
            RollbackMode::Never => false,
            RollbackMode::After(hold) => now.saturating_duration_since(since) >= hold,
        };
        if act {
            if self.mode == RollbackMode::Flapping {
                rollout.ejected = Some((now, self.weight()));
            }
            self.weight.store(0.0_f64.to_bits(), Ordering::Relaxed);
            rollout.rolled_back_at = Some(now);
            rollout.reason = Some(format!(
                "canary error rate {:.1}% ({} of {} requests in the last {:?}) exceeded {:.1}%",
                rate * 100.0,
                counts.failed,
                counts.total,
                self.opts.window,
                self.opts.error_rate * 100.0,
            ));
        }
        act
    }

    /// `flapping_rollback`: re-admits an ejected canary after [`EJECTED_FOR`]
    /// (its failures stay in the window, so it is ejected again once
    /// [`REJOIN_GRACE`] has passed). Returns whether the controller must not
    /// act now (the canary is out, or just back).
    fn readmit(&self, rollout: &mut Rollout, now: Instant) -> bool {
        if let Some((at, weight)) = rollout.ejected {
            if now.saturating_duration_since(at) < EJECTED_FOR {
                return true;
            }
            self.weight.store(weight.to_bits(), Ordering::Relaxed);
            rollout.ejected = None;
            rollout.rolled_back_at = None;
            rollout.reason = None;
            rollout.breached_since = None;
            rollout.readmitted_at = Some(now);
            return true;
        }
        rollout
            .readmitted_at
            .is_some_and(|r| now.saturating_duration_since(r) < REJOIN_GRACE)
    }

    pub fn snapshot(&self, now: Instant) -> CanarySnapshot {
        let rollout = self.lock();
        CanarySnapshot {
            weight: self.weight(),
            rolled_back: rollout.rolled_back_at.is_some(),
            rolled_back_ago: rollout
                .rolled_back_at
                .map(|at| now.saturating_duration_since(at)),
            reason: rollout.reason.clone(),
            window: rollout.window.counts(now),
            requests_total: self.requests_total.load(Ordering::Relaxed),
            errors_total: self.errors_total.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rollout> {
        // Nothing panics under the lock; the state stays consistent.
        self.rollout.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Validation keeps weights within 0..=1; this keeps a NaN from the admin
/// API (already refused there) from ever reaching the split.
fn clamp_weight(weight: f64) -> f64 {
    if weight.is_nan() {
        0.0
    } else {
        weight.clamp(0.0, 1.0)
    }
}

/// The rollback controller: evaluates `canary` every [`EVALUATE_EVERY`]
/// until `shutdown`.
pub async fn run_rollback_controller(canary: Arc<Canary>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EVALUATE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                canary.evaluate(Instant::now());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn opts() -> RollbackOptions {
        RollbackOptions {
            error_rate: 0.05,
            window: 10 * SECOND,
            min_requests: 100,
        }
    }

    fn canary(defects: &[Defect], t0: Instant) -> Canary {
        Canary::new(0.1, opts(), defects, 42, t0)
    }

    /// `n` v2 checkouts at `at`, `failed` of them with 500.
    fn traffic(canary: &Canary, at: Instant, n: u32, failed: u32) {
        for i in 0..n {
            canary.record(Version::V2, if i < failed { 500 } else { 200 }, at);
        }
    }

    fn share(canary: &Canary, n: usize) -> usize {
        (0..n).filter(|_| canary.pick() == Version::V2).count()
    }

    #[test]
    fn the_split_sends_exactly_the_weight_to_v2() {
        let t0 = Instant::now();
        for (weight, expected) in [(0.1, 100), (0.0, 0), (1.0, 1000), (0.25, 250), (0.333, 333)] {
            let canary = Canary::new(weight, opts(), &[], 7, t0);
            assert_eq!(share(&canary, 1000), expected, "weight {weight}");
        }
        let canary = canary(&[], t0);
        let first_ten: Vec<Version> = (0..10).map(|_| canary.pick()).collect();
        assert_eq!(
            first_ten.iter().filter(|v| **v == Version::V2).count(),
            1,
            "evenly spread: {first_ten:?}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_split() {
        let t0 = Instant::now();
        let sequence = |seed| {
            let canary = Canary::new(0.1, opts(), &[], seed, t0);
            (0..20).map(|_| canary.pick()).collect::<Vec<_>>()
        };
        assert_eq!(sequence(3), sequence(3));
        assert_ne!(sequence(3), sequence(4));
    }

    #[test]
    fn a_failing_canary_with_enough_requests_is_rolled_back() {
        let t0 = Instant::now();
        let canary = canary(&[], t0);
        traffic(&canary, t0, 99, 50);
        assert!(
            !canary.evaluate(t0),
            "99 requests are fewer than min_requests"
        );
        traffic(&canary, t0, 1, 0);
        assert!(canary.evaluate(t0 + SECOND));
        let snap = canary.snapshot(t0 + 2 * SECOND);
        assert!(snap.rolled_back);
        assert_eq!(snap.weight, 0.0);
        assert_eq!(snap.rolled_back_ago, Some(SECOND));
        assert_eq!(
            snap.window,
            Counts {
                total: 100,
                failed: 50
            }
        );
        let reason = snap.reason.expect("a reason");
        assert!(
            reason.contains("50.0%") && reason.contains("5.0%"),
            "{reason}"
        );
        assert_eq!(share(&canary, 100), 0, "v1 serves everything");
        assert!(!canary.evaluate(t0 + 3 * SECOND), "acts once");
    }

    #[test]
    fn an_error_rate_at_the_limit_is_not_a_breach() {
        let t0 = Instant::now();
        let canary = canary(&[], t0);
        traffic(&canary, t0, 100, 5);
        assert!(!canary.evaluate(t0), "5% does not exceed 5%");
        traffic(&canary, t0, 1, 1);
        assert!(canary.evaluate(t0));
    }

    #[test]
    fn with_no_rollback_it_never_acts() {
        let t0 = Instant::now();
        let canary = canary(&[Defect::NoRollback], t0);
        for s in 0..60 {
            traffic(&canary, t0 + s * SECOND, 100, 100);
            assert!(!canary.evaluate(t0 + s * SECOND));
        }
        assert_eq!(canary.snapshot(t0).weight, 0.1);
    }

    #[test]
    fn with_slow_rollback_it_acts_after_thirty_seconds_of_breach() {
        let t0 = Instant::now();
        let canary = canary(&[Defect::SlowRollback], t0);
        let mut acted_at = None;
        for tenth in 0..400 {
            let now = t0 + tenth * SECOND / 10;
            traffic(&canary, now, 10, 10);
            if canary.evaluate(now) {
                acted_at = Some(now - t0);
                break;
            }
        }
        // The breach starts with the 100th request (0.9 s) and must hold 30 s.
        assert_eq!(acted_at, Some(Duration::from_millis(30_900)));
    }

    #[test]
    fn slow_rollback_starts_over_when_the_breach_is_interrupted() {
        let t0 = Instant::now();
        let canary = canary(&[Defect::SlowRollback], t0);
        traffic(&canary, t0, 100, 100);
        assert!(!canary.evaluate(t0), "the breach starts at 0 s");
        // 11 s later the window is empty: the breach ended.
        assert!(!canary.evaluate(t0 + 11 * SECOND));
        let mut acted_at = None;
        for s in 12..60 {
            let now = t0 + s * SECOND;
            traffic(&canary, now, 100, 100);
            if canary.evaluate(now) {
                acted_at = Some(s);
                break;
            }
        }
        assert_eq!(acted_at, Some(42), "30 s after the second breach began");
    }

    #[test]
    fn with_flapping_rollback_it_ejects_readmits_and_ejects_again() {
        let t0 = Instant::now();
        let canary = canary(&[Defect::FlappingRollback], t0);
        let mut weights = Vec::new();
        for tick in 0..40 {
            // 10 s of a failing canary, looked at every 250 ms.
            let now = t0 + tick * EVALUATE_EVERY;
            if canary.weight() > 0.0 {
                traffic(&canary, now, 100, 100);
            }
            canary.evaluate(now);
            weights.push(canary.weight());
        }
        let out: Vec<usize> = (1..weights.len())
            .filter(|&i| weights[i] == 0.0 && weights[i - 1] > 0.0)
            .collect();
        let back: Vec<usize> = (1..weights.len())
            .filter(|&i| weights[i] > 0.0 && weights[i - 1] == 0.0)
            .collect();
        // Ejected at 0 s (100 requests seen at once), back at 2 s, out at
        // 3 s (after the grace), back at 5 s, ...
        assert_eq!(weights[0], 0.0, "{weights:?}");
        assert_eq!(back, vec![8, 20, 32], "{weights:?}");
        assert_eq!(out, vec![12, 24, 36], "{weights:?}");
        assert_eq!(weights[9], 0.1, "re-admitted at its weight");
    }

    #[test]
    fn setting_the_weight_clears_the_rollback_and_the_window() {
        let t0 = Instant::now();
        let canary = canary(&[], t0);
        traffic(&canary, t0, 100, 100);
        assert!(canary.evaluate(t0));
        canary.set_weight(0.5);
        let snap = canary.snapshot(t0);
        assert!(!snap.rolled_back);
        assert_eq!(
            (snap.weight, snap.reason, snap.rolled_back_ago),
            (0.5, None, None)
        );
        assert_eq!(snap.window, Counts::default());
        assert_eq!((snap.requests_total, snap.errors_total), (100, 100));
        assert!(!canary.evaluate(t0), "a fresh window");
    }

    #[test]
    fn v1_checkouts_do_not_count_for_the_canary() {
        let t0 = Instant::now();
        let canary = canary(&[], t0);
        canary.record(Version::V1, 500, t0);
        assert_eq!(canary.snapshot(t0).requests_total, 0);
    }
}
