//! Host and process telemetry, sampled once a second with sysinfo.
//!
//! (Being filled in: the sampler, the series and per-phase averages.)

use std::sync::{Arc, Mutex};

/// A process whose CPU and memory the sampler follows, e.g. the target
/// faultline started or a stress child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedProcess {
    /// `target`, `stress`, ...
    pub role: String,
    pub pid: u32,
}

/// The processes to follow; faults add and remove entries as they start and
/// stop children.
pub type Watched = Arc<Mutex<Vec<WatchedProcess>>>;
