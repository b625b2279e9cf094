//! A fine-grained timeline of the run: counts per 100 ms slot, by completion time.
//!
//! Behaviour verifiers ask *when* things changed: when responses turned into
//! fast failures (a breaker opening), when the canary's share fell to zero,
//! when a version took over. One-second windows are too coarse for "opened
//! within 2 s", and keeping every outcome would grow with the run, so the
//! recorder keeps counts per slot: requests, errors, how many matched each
//! [`Classifier`] the verifiers asked for, and requests and errors per version.
//! A slot is a few dozen bytes; an hour of run is 36,000 slots.

use std::sync::Arc;
use std::time::Duration;

use super::outcome::{Outcome, VersionTag};

/// The timeline's resolution.
pub const SLOT: Duration = Duration::from_millis(100);

/// Distinct versions tracked per slot; more are counted under the last one.
const MAX_VERSIONS: usize = 8;

/// A predicate counted per slot, e.g. "503 in under 50 ms".
pub type Classifier = Arc<dyn Fn(&Outcome) -> bool + Send + Sync>;

/// Requests and errors served by one version within a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionCount {
    pub version: VersionTag,
    pub requests: u32,
    pub errors: u32,
}

/// What completed within one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    pub requests: u32,
    pub errors: u32,
    /// Per classifier, in the order given to the recorder.
    pub matched: Vec<u32>,
    pub versions: Vec<VersionCount>,
}

impl Slot {
    /// Requests served by `version` (requests, errors).
    pub fn version(&self, version: &str) -> (u32, u32) {
        self.versions
            .iter()
            .find(|v| v.version.as_str() == version)
            .map_or((0, 0), |v| (v.requests, v.errors))
    }
}

/// Slots from the start of the load; slot `i` covers `[i·SLOT, (i+1)·SLOT)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    pub slots: Vec<Slot>,
}

impl Timeline {
    /// The slot index an offset from the load's start falls in.
    pub fn index(offset: Duration) -> usize {
        (offset.as_millis() / SLOT.as_millis()) as usize
    }

    /// The start of slot `index`, from the load's start.
    pub fn start_of(index: usize) -> Duration {
        SLOT * index as u32
    }

    /// Slots whose start lies in `[from, to)`, with their indices.
    pub fn between(&self, from: Duration, to: Duration) -> impl Iterator<Item = (usize, &Slot)> {
        let first = Self::index(from + SLOT - Duration::from_nanos(1));
        let end = Self::index(to + SLOT - Duration::from_nanos(1)).min(self.slots.len());
        self.slots.iter().enumerate().take(end).skip(first)
    }
}

/// Builds a [`Timeline`] from outcomes.
pub(crate) struct TimelineBuilder {
    classifiers: Vec<Classifier>,
    timeline: Timeline,
}

impl TimelineBuilder {
    pub fn new(classifiers: Vec<Classifier>) -> TimelineBuilder {
        TimelineBuilder {
            classifiers,
            timeline: Timeline::default(),
        }
    }

    /// Counts `outcome` in the slot of `offset` (its completion, from the load's start).
    pub fn record(&mut self, offset: Duration, outcome: &Outcome) {
        let index = Timeline::index(offset);
        let slots = &mut self.timeline.slots;
        if slots.len() <= index {
            let width = self.classifiers.len();
            slots.resize_with(index + 1, || Slot {
                matched: vec![0; width],
                ..Slot::default()
            });
        }
        let slot = &mut slots[index];
        let error = u32::from(outcome.error.is_some());
        slot.requests += 1;
        slot.errors += error;
        for (count, classify) in slot.matched.iter_mut().zip(&self.classifiers) {
            if classify(outcome) {
                *count += 1;
            }
        }
        if let Some(version) = outcome.version {
            let position = slot.versions.iter().position(|v| v.version == version);
            let entry = match position {
                Some(i) => &mut slot.versions[i],
                None if slot.versions.len() < MAX_VERSIONS => {
                    slot.versions.push(VersionCount {
                        version,
                        requests: 0,
                        errors: 0,
                    });
                    let last = slot.versions.len() - 1;
                    &mut slot.versions[last]
                }
                None => {
                    let last = slot.versions.len() - 1;
                    &mut slot.versions[last]
                }
            };
            entry.requests += 1;
            entry.errors += error;
        }
    }

    pub fn finish(self) -> Timeline {
        self.timeline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorClass;
    use std::time::Instant;

    fn outcome(status: u16, ms: u64, version: &str) -> Outcome {
        let t = Instant::now();
        Outcome {
            intended: t,
            started: t,
            ended: t + Duration::from_millis(ms),
            status,
            error: (status >= 500).then_some(ErrorClass::Http5xx),
            version: VersionTag::new(version),
            request: 0,
        }
    }

    #[test]
    fn outcomes_are_counted_per_slot_classifier_and_version() {
        let fast_503: Classifier = Arc::new(|o: &Outcome| {
            o.status == 503 && o.response_time() < Duration::from_millis(50)
        });
        let mut builder = TimelineBuilder::new(vec![fast_503]);
        builder.record(Duration::from_millis(50), &outcome(200, 5, "v1"));
        builder.record(Duration::from_millis(250), &outcome(503, 1, "v1"));
        builder.record(Duration::from_millis(260), &outcome(503, 900, "v2"));
        let timeline = builder.finish();
        assert_eq!(timeline.slots.len(), 3);
        assert_eq!(timeline.slots[0].requests, 1);
        assert_eq!(timeline.slots[1].requests, 0, "gaps are empty slots");
        let slot = &timeline.slots[2];
        assert_eq!((slot.requests, slot.errors), (2, 2));
        assert_eq!(slot.matched, vec![1], "the slow 503 is not a fast failure");
        assert_eq!(slot.version("v2"), (1, 1));
        assert_eq!(slot.version("v3"), (0, 0));
    }

    #[test]
    fn between_selects_slots_starting_in_the_range() {
        let mut builder = TimelineBuilder::new(Vec::new());
        builder.record(Duration::from_millis(950), &outcome(200, 1, "v1"));
        let timeline = builder.finish();
        let picked: Vec<usize> = timeline
            .between(Duration::from_millis(200), Duration::from_millis(500))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(picked, vec![2, 3, 4]);
        let picked: Vec<usize> = timeline
            .between(Duration::from_millis(250), Duration::from_secs(5))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(picked, vec![3, 4, 5, 6, 7, 8, 9]);
    }
}
