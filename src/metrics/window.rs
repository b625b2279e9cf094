//! One-second windows of the run, keyed by completion time.
//!
//! Windows are assigned by when a response *completed*, so a window is final
//! one tick after it ends and its histogram can be reduced to a summary at
//! once: memory stays constant however long the run. (Phases, by contrast,
//! are assigned by intended start, see the recorder.)

use super::histogram::LatencyHistogram;
use super::outcome::Outcome;
use serde::{Deserialize, Serialize};

/// Accumulates the outcomes that completed within one second.
#[derive(Debug, Default)]
pub(crate) struct WindowAccumulator {
    pub histogram: LatencyHistogram,
    pub requests: u64,
    pub errors: u64,
}

impl WindowAccumulator {
    pub fn record(&mut self, outcome: &Outcome) {
        self.histogram.record(outcome.response_time());
        self.requests += 1;
        if outcome.error.is_some() {
            self.errors += 1;
        }
    }

    /// Reduces the window to its summary and resets it for reuse.
    pub fn close(&mut self, t: u64, phase: &str) -> WindowSummary {
        let summary = WindowSummary {
            t,
            requests: self.requests,
            errors: self.errors,
            error_rate: super::error_rate(self.errors, self.requests),
            p50: (!self.histogram.is_empty()).then(|| self.histogram.quantile_ms(0.5)),
            p99: (!self.histogram.is_empty()).then(|| self.histogram.quantile_ms(0.99)),
            phase: phase.to_string(),
        };
        self.histogram.clear();
        self.requests = 0;
        self.errors = 0;
        summary
    }
}

/// One second of the run (JSON: an entry of `series`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WindowSummary {
    /// Seconds since the load started: this window covers `[t, t+1)`.
    pub t: u64,
    /// Responses (and errors) completed in the window.
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Response-time percentiles in ms; `null` when nothing completed.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    /// The phase the window starts in.
    pub phase: String,
}
