//! Verification: turning measurements into checks with expected vs observed.

pub mod thresholds;

pub use thresholds::{evaluate_threshold, rate_achieved, PhaseView};
