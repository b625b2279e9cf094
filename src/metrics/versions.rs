//! Per-version measurements of one phase: requests, errors and a response
//! time histogram for each version that served responses (`by_version`
//! thresholds and the report's `phases[].versions`).
//!
//! Bounded like the timeline: at most [`MAX_VERSIONS`] versions are tracked
//! by name, in the order they first answered; responses of any further
//! version are counted together under [`PhaseVersions::other`], and the
//! report says so. A histogram is a few hundred KiB, so an unbounded map
//! keyed by whatever a header says would let one misbehaving server grow
//! the run's memory without limit.

use super::histogram::LatencyHistogram;
use super::outcome::{Outcome, VersionTag};

/// Versions tracked by name per phase; the same cap as the timeline's.
pub const MAX_VERSIONS: usize = 8;

/// What one version (or the `other` bucket) served in a phase.
#[derive(Debug, Clone, Default)]
pub struct VersionMetrics {
    pub requests: u64,
    pub errors: u64,
    /// Response time (from the intended start), as the phase's own.
    pub response: LatencyHistogram,
}

impl VersionMetrics {
    fn record(&mut self, o: &Outcome) {
        self.requests += 1;
        self.errors += u64::from(o.error.is_some());
        self.response.record(o.response_time());
    }

    /// Errors / requests, 0 when there were none.
    pub fn error_rate(&self) -> f64 {
        super::error_rate(self.errors, self.requests)
    }
}

/// The per-version breakdown of one phase.
#[derive(Debug, Clone, Default)]
pub struct PhaseVersions {
    /// Tracked versions in the order they first answered.
    pub tracked: Vec<(VersionTag, VersionMetrics)>,
    /// Versions past the first [`MAX_VERSIONS`], counted together.
    pub other: Option<VersionMetrics>,
    /// Outcomes that carried no version (no header or field, or no response
    /// at all: a refused or timed-out request cannot say who would have served it).
    pub unversioned: u64,
}

impl PhaseVersions {
    /// Counts `o` under its version. Called only when the run reads versions.
    pub fn record(&mut self, o: &Outcome) {
        let Some(version) = o.version else {
            self.unversioned += 1;
            return;
        };
        if let Some((_, m)) = self.tracked.iter_mut().find(|(v, _)| *v == version) {
            m.record(o);
        } else if self.tracked.len() < MAX_VERSIONS {
            let mut m = VersionMetrics::default();
            m.record(o);
            self.tracked.push((version, m));
        } else {
            self.other.get_or_insert_with(Default::default).record(o);
        }
    }

    /// The metrics of `version`, if it was tracked.
    pub fn get(&self, version: &str) -> Option<&VersionMetrics> {
        self.tracked
            .iter()
            .find(|(v, _)| v.as_str() == version)
            .map(|(_, m)| m)
    }

    pub fn is_empty(&self) -> bool {
        self.tracked.is_empty() && self.other.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorClass;
    use std::time::{Duration, Instant};

    fn outcome(version: Option<&str>, ms: u64, error: bool) -> Outcome {
        let t = Instant::now();
        Outcome {
            intended: t,
            started: t,
            ended: t + Duration::from_millis(ms),
            status: if error { 500 } else { 200 },
            error: error.then_some(ErrorClass::Http5xx),
            version: version.and_then(VersionTag::new),
            request: 0,
        }
    }

    #[test]
    fn versions_are_counted_apart_with_their_own_latencies() {
        let mut v = PhaseVersions::default();
        for _ in 0..9 {
            v.record(&outcome(Some("v1"), 5, false));
        }
        v.record(&outcome(Some("v2"), 300, true));
        v.record(&outcome(None, 0, true));
        let v1 = v.get("v1").expect("v1 tracked");
        assert_eq!((v1.requests, v1.errors), (9, 0));
        let v2 = v.get("v2").expect("v2 tracked");
        assert_eq!((v2.requests, v2.errors), (1, 1));
        assert!((v2.response.quantile_ms(0.99) - 300.0).abs() < 1.0);
        assert_eq!(v.unversioned, 1);
        assert!(v.other.is_none());
    }

    #[test]
    fn versions_past_the_cap_are_counted_as_other() {
        let mut v = PhaseVersions::default();
        for i in 0..(MAX_VERSIONS + 3) {
            v.record(&outcome(Some(&format!("v{i}")), 1, false));
        }
        assert_eq!(v.tracked.len(), MAX_VERSIONS);
        assert_eq!(v.other.as_ref().map(|o| o.requests), Some(3));
        assert!(v.get("v9").is_none(), "past the cap: not tracked by name");
    }
}
