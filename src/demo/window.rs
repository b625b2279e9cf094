//! [`SlidingWindow`]: how many calls (and how many of them failed) in the
//! last `window`, for the breaker's failure-rate trip and the canary's
//! rollback decision.
//!
//! Counts live in a fixed ring of [`BUCKETS`] buckets, so memory does not
//! grow with traffic and no sample is kept. The window slides in steps of
//! one bucket (a twentieth of its length): it covers between 19 and 20
//! bucket-widths of the past, which is precise enough for a rate.
//!
//! Time is passed in, never read here, so callers and tests control it.

use std::time::Duration;

use tokio::time::Instant;

/// Buckets per window.
pub const BUCKETS: usize = 20;

/// A bucket is never narrower than this, so that a tiny window still counts.
const MIN_BUCKET: Duration = Duration::from_millis(1);

/// Calls and failures counted over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub failed: u64,
}

impl Counts {
    /// `failed / total`, or 0 with no calls.
    pub fn failure_rate(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.failed as f64 / self.total as f64
        }
    }
}

/// Counts of the last `window`, in [`BUCKETS`] time buckets.
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    origin: Instant,
    bucket: Duration,
    /// `(slot + 1, counts)`; 0 marks a bucket never used. A bucket whose
    /// slot is too old is stale and reused by the next record.
    ring: [(u64, Counts); BUCKETS],
}

impl SlidingWindow {
    /// An empty window of length `window`, measuring time from `origin`.
    pub fn new(window: Duration, origin: Instant) -> SlidingWindow {
        SlidingWindow {
            origin,
            bucket: (window / BUCKETS as u32).max(MIN_BUCKET),
            ring: [(0, Counts::default()); BUCKETS],
        }
    }

    /// Counts one call at `now`.
    pub fn record(&mut self, now: Instant, failed: bool) {
        let slot = self.slot(now);
        let (tag, counts) = &mut self.ring[(slot % BUCKETS as u64) as usize];
        if *tag != slot + 1 {
            *tag = slot + 1;
            *counts = Counts::default();
        }
        counts.total += 1;
        counts.failed += u64::from(failed);
    }

    /// The calls of the window ending at `now`.
    pub fn counts(&self, now: Instant) -> Counts {
        let current = self.slot(now);
        let mut sum = Counts::default();
        for (tag, counts) in &self.ring {
            let Some(slot) = tag.checked_sub(1) else {
                continue;
            };
            if slot <= current && current - slot < BUCKETS as u64 {
                sum.total += counts.total;
                sum.failed += counts.failed;
            }
        }
        sum
    }

    /// Forgets every call (a breaker that closes, a canary weight set by hand).
    pub fn clear(&mut self) {
        self.ring = [(0, Counts::default()); BUCKETS];
    }

    fn slot(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.origin);
        (elapsed.as_nanos() / self.bucket.as_nanos()) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn calls_count_until_they_slide_out_of_the_window() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::new(10 * SECOND, t0);
        window.record(t0, true);
        window.record(t0 + SECOND, false);
        window.record(t0 + 2 * SECOND, false);
        let at = |d| window.counts(t0 + d);
        assert_eq!(
            at(2 * SECOND),
            Counts {
                total: 3,
                failed: 1
            }
        );
        assert_eq!(
            at(Duration::from_millis(9_900)),
            Counts {
                total: 3,
                failed: 1
            }
        );
        assert_eq!(
            at(Duration::from_millis(10_600)),
            Counts {
                total: 2,
                failed: 0
            },
            "the first call slid out"
        );
        assert_eq!(at(13 * SECOND), Counts::default(), "all slid out");
    }

    #[test]
    fn a_bucket_reused_after_a_lap_starts_from_zero() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::new(2 * SECOND, t0);
        window.record(t0, true);
        // Same ring position, one lap (2 s) later.
        window.record(t0 + 2 * SECOND, false);
        assert_eq!(
            window.counts(t0 + 2 * SECOND),
            Counts {
                total: 1,
                failed: 0
            }
        );
    }

    #[test]
    fn failure_rate_is_zero_without_calls_and_clear_forgets() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::new(SECOND, t0);
        assert_eq!(window.counts(t0).failure_rate(), 0.0);
        window.record(t0, true);
        window.record(t0, false);
        assert_eq!(window.counts(t0).failure_rate(), 0.5);
        window.clear();
        assert_eq!(window.counts(t0), Counts::default());
    }

    #[test]
    fn a_tiny_window_still_counts() {
        let t0 = Instant::now();
        let mut window = SlidingWindow::new(Duration::from_micros(5), t0);
        window.record(t0, true);
        assert_eq!(window.counts(t0).total, 1);
    }
}
