//! Serde mirror of `verify:` and `probes:` (see [`super::raw`] for the
//! conventions: every field optional, unit-bearing leaves kept as [`Scalar`]s,
//! unknown keys refused so typos get a did-you-mean).

use serde::Deserialize;

use super::raw::Scalar;

/// One entry of `verify`: a mapping with exactly one of these keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerifier {
    pub recovery: Option<RawRecovery>,
    pub breaker: Option<RawBreaker>,
    pub canary: Option<RawCanary>,
    pub traffic_shift: Option<RawTrafficShift>,
    pub compare: Option<RawCompare>,
    pub probe: Option<RawProbeUse>,
}

impl RawVerifier {
    /// Every verifier key, for messages.
    pub const KEYS: &'static [&'static str] = &[
        "recovery",
        "breaker",
        "canary",
        "traffic_shift",
        "compare",
        "probe",
    ];
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecovery {
    pub baseline: Option<String>,
    pub after: Option<String>,
    pub within: Option<Scalar>,
    pub windows: Option<u64>,
    pub tolerance: Option<RawTolerance>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTolerance {
    pub p99: Option<Scalar>,
    pub error_rate: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub phase: Option<String>,
    pub dependency: Option<String>,
    pub fast_fail: Option<RawFastFail>,
    pub opens_within: Option<Scalar>,
    pub max_dependency_calls: Option<u64>,
    pub closes_within: Option<Scalar>,
    pub state: Option<RawBreakerState>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFastFail {
    /// A status or a list of statuses (`503`, `5xx`).
    pub status: Option<Scalar>,
    pub latency: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreakerState {
    pub url: Option<String>,
    pub pointer: Option<String>,
    pub open: Option<Scalar>,
    pub closed: Option<Scalar>,
}

/// `version_from: { header: x-version }` or `{ json: /version }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersionFrom {
    pub header: Option<String>,
    pub json: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCanary {
    pub phase: Option<String>,
    pub canary_version: Option<Scalar>,
    pub version_from: Option<RawVersionFrom>,
    pub rolled_back_within: Option<Scalar>,
    pub max_failed_requests: Option<u64>,
    pub stable_error_rate: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrafficShift {
    pub phase: Option<String>,
    /// The version whose share moves.
    pub version: Option<Scalar>,
    pub version_from: Option<RawVersionFrom>,
    pub from: Option<Scalar>,
    pub to: Option<Scalar>,
    pub tolerance: Option<Scalar>,
    pub within: Option<Scalar>,
    pub max_errors: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCompare {
    pub baseline: Option<String>,
    pub current: Option<String>,
    /// `latency`, `error_rate`, or a list of them.
    pub metric: Option<Scalar>,
    pub expect: Option<String>,
    pub alpha: Option<Scalar>,
    pub min_effect: Option<RawMinEffect>,
    pub min_samples: Option<u64>,
    /// `pass` or `fail` (default).
    pub inconclusive: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMinEffect {
    pub latency: Option<Scalar>,
    pub error_rate: Option<Scalar>,
}

/// A probe used as a check: `{ name, phase, at: start|end }` or `{ ..., every, pass_ratio }`.
/// In a phase's `expect: { probes: [...] }` the phase is implied.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbeUse {
    pub name: Option<String>,
    pub phase: Option<String>,
    pub at: Option<String>,
    pub every: Option<Scalar>,
    pub pass_ratio: Option<Scalar>,
}

/// One entry of `probes:` (name → exactly one kind, plus `timeout`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub http: Option<RawHttpProbe>,
    pub prometheus: Option<RawPrometheusProbe>,
    pub command: Option<RawCommandProbe>,
    pub tcp: Option<RawTcpProbe>,
    pub timeout: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpProbe {
    pub url: Option<String>,
    pub method: Option<String>,
    pub headers: Option<serde_yaml::Mapping>,
    pub status: Option<Scalar>,
    pub json: Option<RawJsonCheck>,
    pub body: Option<String>,
}

/// `json: { pointer, equals }` or `{ pointer, value: "< 0.5" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonCheck {
    pub pointer: Option<String>,
    pub equals: Option<serde_yaml::Value>,
    pub value: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPrometheusProbe {
    pub url: Option<String>,
    pub query: Option<String>,
    /// `< 0.05`: every returned sample must meet it.
    pub value: Option<Scalar>,
    /// `pass` or `fail` (default) when the query returns nothing.
    pub empty: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommandProbe {
    pub run: Option<Scalar>,
    pub exit_code: Option<i64>,
    pub stdout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTcpProbe {
    pub address: Option<String>,
}
