//! Verification: turning measurements into checks with expected vs observed.

pub mod baseline;
pub mod stats;
pub mod thresholds;

pub use thresholds::{evaluate_threshold, rate_achieved, PhaseView};
