//! Verification: turning measurements into checks with expected vs observed.
//!
//! - `thresholds`: a phase's `expect` (p99 < 100ms, ...) and `rate_achieved`;
//!   `by_version`: the same thresholds on one version's responses;
//! - `stats` and `baseline`: statistical comparison against a baseline report;
//! - behaviour verifiers (`verify:`), each a pure function of [`Evidence`]:
//!   `recovery`, `breaker`, `versions` (canary), `traffic_shift`, `compare`
//!   (two phases of one run), and `probe_checks`.

pub mod baseline;
pub mod breaker;
pub mod by_version;
pub mod calls;
pub mod compare;
pub mod evidence;
pub mod probe_checks;
pub mod recovery;
pub mod stats;
pub mod thresholds;
pub mod timing;
pub mod traffic_shift;
pub mod versions;

pub use evidence::Evidence;
pub use thresholds::{evaluate_threshold, rate_achieved, PhaseView};

use crate::config::model::{Experiment, Verifier};
use crate::journal::Check;

/// Judges the probes of every phase's `expect`, then every `verify` entry
/// of `exp` (one check each; `compare` one per metric).
pub fn verify(exp: &Experiment, ev: &Evidence<'_>) -> Vec<Check> {
    let mut checks: Vec<Check> = exp
        .phases
        .iter()
        .flat_map(|p| p.probes.iter())
        .map(|probe| probe_checks::check(probe, ev))
        .collect();
    let mut classifier = 0;
    for (index, verifier) in exp.verify.iter().enumerate() {
        match verifier {
            Verifier::Recovery(spec) => checks.push(recovery::check(spec, ev)),
            Verifier::Breaker(spec) => {
                checks.push(breaker::check(spec, classifier, index, ev));
                classifier += 1;
            }
            Verifier::Canary(spec) => checks.push(versions::canary(spec, ev)),
            Verifier::TrafficShift(spec) => checks.push(traffic_shift::traffic_shift(spec, ev)),
            Verifier::Compare(spec) => checks.extend(compare::checks(spec, ev)),
            Verifier::Probe(spec) => checks.push(probe_checks::check(spec, ev)),
        }
    }
    checks
}
