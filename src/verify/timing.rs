//! Counting on the 100 ms timeline, for verifiers that report *when*
//! something happened.
//!
//! Verdicts are made on whole seconds (one second holds enough responses
//! for a rate or a share to mean something), but the start of the first
//! good second is up to a second away from the instant the change happened,
//! and was seen 0.2–0.45 s early against nginx's log and HAProxy's
//! `show stat`. The helpers here slide a one-second window over the 100 ms
//! slots so a verifier can say when its condition first held, at the
//! resolution of the evidence.

use std::time::Duration;

use crate::metrics::{Timeline, SLOT};

/// One second: the width of every sliding window.
pub const SECOND: Duration = Duration::from_secs(1);

/// Counts of the responses (and of one version's) within a time range.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Share {
    /// All responses.
    pub total: u64,
    pub errors: u64,
    /// Responses from the version.
    pub version: u64,
    pub version_errors: u64,
}

impl Share {
    /// Counts of the slots starting in `[from, to)`; `version` may be empty
    /// when only the totals matter.
    pub fn of(timeline: &Timeline, version: &str, from: Duration, to: Duration) -> Share {
        let mut share = Share::default();
        for (_, slot) in timeline.between(from, to) {
            let (n, e) = slot.version(version);
            share.total += u64::from(slot.requests);
            share.errors += u64::from(slot.errors);
            share.version += u64::from(n);
            share.version_errors += u64::from(e);
        }
        share
    }

    /// The version's share of the responses; `None` when there were none.
    pub fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| self.version as f64 / self.total as f64)
    }

    /// Errors over responses; `None` when there were none.
    pub fn error_rate(&self) -> Option<f64> {
        (self.total > 0).then(|| self.errors as f64 / self.total as f64)
    }
}

/// `t` rounded up to a slot boundary.
pub fn slot_ceil(t: Duration) -> Duration {
    Timeline::start_of(Timeline::index(t + SLOT - Duration::from_nanos(1)))
}

/// The earliest slot boundary `s` in `[lower, from]` such that the sliding
/// one-second window starting at every boundary in `[s, from)` meets `ok`.
/// `from` itself is taken as known good (a coarser judgement found it), so
/// the answer is `from` when the window just before it fails.
pub fn held_since(
    timeline: &Timeline,
    lower: Duration,
    from: Duration,
    ok: impl Fn(&Share) -> bool,
) -> Duration {
    let lower = slot_ceil(lower);
    let mut s = from;
    while s >= lower + SLOT {
        let earlier = s - SLOT;
        if !ok(&Share::of(timeline, "", earlier, earlier + SECOND)) {
            break;
        }
        s = earlier;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Slot;

    /// 10 responses per slot over 0–5 s; errors in slots where `failing(second)`.
    fn timeline(failing: impl Fn(f64) -> bool) -> Timeline {
        let slots = (0..50)
            .map(|i| Slot {
                requests: 10,
                errors: if failing(f64::from(i) / 10.0) { 10 } else { 0 },
                ..Slot::default()
            })
            .collect();
        Timeline { slots }
    }

    #[test]
    fn held_since_finds_the_slot_the_errors_stopped_in() {
        // Errors until 1.3 s; the whole second from 2 s is known good.
        let t = timeline(|s| s < 1.3);
        let clean = |c: &Share| c.errors == 0 && c.total > 0;
        let at = held_since(&t, Duration::from_secs(1), Duration::from_secs(2), clean);
        assert_eq!(at, Duration::from_millis(1300));
        // Not before `lower`, rounded up to a slot.
        let at = held_since(
            &t,
            Duration::from_millis(1650),
            Duration::from_secs(2),
            clean,
        );
        assert_eq!(at, Duration::from_millis(1700));
        // A window that fails right before `from` leaves `from`.
        let t = timeline(|s| s < 1.95);
        let at = held_since(&t, Duration::ZERO, Duration::from_secs(2), clean);
        assert_eq!(at, Duration::from_secs(2));
    }

    #[test]
    fn shares_and_rates_are_none_without_responses() {
        let empty = Share::default();
        assert_eq!((empty.fraction(), empty.error_rate()), (None, None));
        assert_eq!(
            slot_ceil(Duration::from_millis(1201)),
            Duration::from_millis(1300)
        );
        assert_eq!(
            slot_ceil(Duration::from_millis(1200)),
            Duration::from_millis(1200)
        );
    }
}
