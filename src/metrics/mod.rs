//! Measurement: request outcomes, HDR histograms, 1-second windows and the recorder.
//!
//! The load generator's hot path only *sends* an [`Outcome`] down a channel;
//! one [`recorder`] task owns every histogram, so recording takes no lock and
//! per-request work is a histogram increment. Memory is bounded: per phase two
//! histograms (and one per version the run reads, at most
//! eight), and per-second windows are reduced to summaries when they close.

pub mod export;
pub mod histogram;
pub mod outcome;
pub mod recorder;
pub mod telemetry;
pub mod timeline;
pub mod versions;
pub mod window;

pub use histogram::{LatencyHistogram, LatencySummary};
pub use outcome::{ErrorClass, Event, Outcome, VersionTag};
pub use recorder::{LiveStats, PhaseMetrics, PhaseSlice, Recorder, RecorderOutput};
pub use timeline::{Classifier, Slot, Timeline, SLOT};
pub use versions::{PhaseVersions, VersionMetrics, MAX_VERSIONS};
pub use window::WindowSummary;

/// `errors / requests`, 0 when there were no requests: the one error-rate
/// rule of phases, versions and windows.
pub fn error_rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}
