//! Serde mirror of the YAML files, before any meaning is checked.
//!
//! The shapes here decide only what may appear where (`deny_unknown_fields`
//! everywhere, so typos are caught). Everything else is deliberately loose so
//! that [`super::validate`] can report it with a precise message:
//!
//! - every field is an `Option`: a missing field is reported by validation
//!   with the field's meaning ("missing `target` (required unless ...)"), not
//!   as serde's bare "missing field";
//! - unit-bearing leaves (durations, thresholds) are kept as a [`Scalar`], so
//!   `5` and `5s` and `fast` all reach the same duration parser;
//! - lists are [`List`]s of `Option`s, so [`super::decode`] can blank out a
//!   bad item without shifting the indices of the items after it.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A leaf parsed later by [`super::units`] (a duration, a threshold, a status).
pub type Scalar = serde_yaml::Value;

/// A list whose bad items are blanked (`None`) rather than removed.
pub type List<T> = Vec<Option<T>>;

/// A suite file: a mapping with an `experiments` key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSuite {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<List<String>>,
    pub defaults: Option<RawDefaults>,
    /// Experiment files, relative to the suite file.
    pub experiments: Option<List<String>>,
}

/// What a suite lends to experiments that do not set it themselves.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    pub target: Option<RawTarget>,
    pub load: Option<RawLoad>,
}

/// An experiment file: a mapping without an `experiments` key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    pub name: Option<String>,
    pub description: Option<String>,
    pub tags: Option<List<String>>,
    pub min_samples: Option<u64>,
    pub target: Option<RawTarget>,
    /// Proxy name → an embedded proxy or an existing Toxiproxy proxy.
    pub proxies: Option<std::collections::BTreeMap<String, RawProxy>>,
    /// Agent name → a `faultline agent` on another host.
    pub agents: Option<std::collections::BTreeMap<String, RawAgent>>,
    pub load: Option<RawLoad>,
    pub phases: Option<List<RawPhase>>,
    /// Probe name → what it observes.
    pub probes: Option<std::collections::BTreeMap<String, super::raw_verify::RawProbe>>,
    /// Behaviour checks judged after the run.
    pub verify: Option<List<super::raw_verify::RawVerifier>>,
}

/// One entry of `agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    pub url: Option<Scalar>,
    /// Environment variable holding the bearer token (never the token itself).
    pub token_env: Option<Scalar>,
}

/// One entry of `proxies`: embedded (`listen`, `upstream`, `mode`) or
/// external (`toxiproxy`, `name`); which one is checked in validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub listen: Option<Scalar>,
    pub upstream: Option<Scalar>,
    pub mode: Option<Scalar>,
    pub toxiproxy: Option<Scalar>,
    pub name: Option<Scalar>,
}

/// `target`: exactly one of `demo`, `url` or `command` (checked in validation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    /// `Some(None)` for a bare `demo:`, which means "the demo with defaults".
    #[serde(default, deserialize_with = "present")]
    pub demo: Option<Option<RawDemo>>,
    pub url: Option<String>,
    pub command: Option<String>,
    pub ready: Option<RawReady>,
}

/// `target.demo`: knobs of the embedded demo system.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDemo {
    pub payments_latency: Option<Scalar>,
    pub payments_timeout: Option<Scalar>,
    /// `10%` or `0.1`.
    pub canary_weight: Option<Scalar>,
    /// Defect names (`no_breaker`, ...), checked in validation.
    pub defects: Option<List<Scalar>>,
    pub breaker: Option<RawBreaker>,
    pub rollback: Option<RawRollback>,
}

/// `target.demo.breaker`: the frontend's circuit breaker (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub consecutive_failures: Option<u64>,
    /// `50%` or `0.5`.
    pub failure_rate: Option<Scalar>,
    pub window: Option<Scalar>,
    pub min_calls: Option<u64>,
    pub open_for: Option<Scalar>,
    pub trial_calls: Option<u64>,
}

/// `target.demo.rollback`: the canary rollback controller (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRollback {
    /// `5%` or `0.05`.
    pub error_rate: Option<Scalar>,
    pub window: Option<Scalar>,
    pub min_requests: Option<u64>,
}

/// `target.ready`: the readiness poll.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    pub path: Option<String>,
    pub timeout: Option<Scalar>,
    pub interval: Option<Scalar>,
}

/// `load`: `rate` or `concurrency`, the timeout and the request mix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    pub rate: Option<RawRate>,
    pub concurrency: Option<u64>,
    pub max_in_flight: Option<u64>,
    pub timeout: Option<Scalar>,
    pub requests: Option<List<RawRequest>>,
}

/// `rate: 200` or `rate: { from: 10, to: 500, over: 30s }`.
#[derive(Debug)]
pub enum RawRate {
    Constant(f64),
    Ramp(RawRamp),
}

/// `rate: { from, to, over }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRamp {
    pub from: Option<f64>,
    pub to: Option<f64>,
    pub over: Option<Scalar>,
}

/// One entry of `load.requests`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    pub name: Option<String>,
    pub method: Option<String>,
    pub path: Option<String>,
    /// Kept as YAML so keys and values can be checked (and located) one by one.
    pub headers: Option<serde_yaml::Mapping>,
    pub body: Option<String>,
    pub weight: Option<u64>,
    /// Integers (`404`) or classes (`2xx`).
    pub expect_status: Option<Vec<Scalar>>,
}

/// One entry of `phases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub name: Option<String>,
    pub duration: Option<Scalar>,
    pub min_samples: Option<u64>,
    /// Metric name → threshold; kept as YAML so an unknown metric gets a
    /// did-you-mean against the metric catalogue.
    pub expect: Option<serde_yaml::Mapping>,
    pub inject: Option<List<RawFault>>,
}

/// A fault in `inject`, chosen by its `type`. Adding a fault kind is one
/// variant here and one arm in [`super::validate`].
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RawFault {
    Command(RawCommandFault),
    Latency(RawLatency),
    Bandwidth(RawBandwidth),
    SlowClose(RawSlowClose),
    Timeout(RawTimeout),
    ResetPeer(RawTimeout),
    Slicer(RawSlicer),
    LimitData(RawLimitData),
    Down(RawDown),
    HttpError(RawHttpError),
    HttpDelay(RawHttpDelay),
    Abort(RawAbort),
    Corrupt(RawCorrupt),
    Cpu(RawCpu),
    Memory(RawMemory),
    Kill(RawKill),
}

impl RawFault {
    /// Every `type` a fault may have, for messages.
    pub const TYPES: &'static [&'static str] = &[
        "command",
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
        "down",
        "http_error",
        "http_delay",
        "abort",
        "corrupt",
        "cpu",
        "memory",
        "kill",
    ];
}

// The network faults: one struct per toxic so each accepts exactly its own
// attributes (Toxiproxy's names). `proxy`, `stream` and `toxicity` repeat
// because serde cannot combine `flatten` with `deny_unknown_fields`.

/// `latency`: `latency`, `jitter`, `distribution`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLatency {
    pub proxy: Option<Scalar>,
    pub stream: Option<Scalar>,
    pub toxicity: Option<Scalar>,
    pub latency: Option<Scalar>,
    pub jitter: Option<Scalar>,
    pub distribution: Option<Scalar>,
}

/// `bandwidth`: `rate` (KB/s).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBandwidth {
    pub proxy: Option<Scalar>,
    pub stream: Option<Scalar>,
    pub toxicity: Option<Scalar>,
    pub rate: Option<Scalar>,
}

/// `slow_close`: `delay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlowClose {
    pub proxy: Option<Scalar>,
    pub stream: Option<Scalar>,
    pub toxicity: Option<Scalar>,
    pub delay: Option<Scalar>,
}

/// `timeout` and `reset_peer`: `timeout`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeout {
    pub proxy: Option<Scalar>,
    pub stream: Option<Scalar>,
    pub toxicity: Option<Scalar>,
    pub timeout: Option<Scalar>,
}

/// `slicer`: `average_size`, `size_variation`, `delay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlicer {
    pub proxy: Option<Scalar>,
    pub stream: Option<Scalar>,
    pub toxicity: Option<Scalar>,
    pub average_size: Option<Scalar>,
    pub size_variation: Option<Scalar>,
    pub delay: Option<Scalar>,
}

/// `limit_data`: `bytes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimitData {
    pub proxy: Option<Scalar>,
    pub stream: Option<Scalar>,
    pub toxicity: Option<Scalar>,
    pub bytes: Option<Scalar>,
}

/// `down`: the proxy refuses and closes connections.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDown {
    pub proxy: Option<Scalar>,
}

/// `match` of an HTTP fault.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub method: Option<Scalar>,
    pub path: Option<Scalar>,
    pub headers: Option<serde_yaml::Mapping>,
}

/// `http_error`: `status`, `body`, `retry_after`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpError {
    pub proxy: Option<Scalar>,
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    pub status: Option<Scalar>,
    pub body: Option<Scalar>,
    pub retry_after: Option<Scalar>,
}

/// `http_delay`: `delay`, `jitter`, `distribution`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttpDelay {
    pub proxy: Option<Scalar>,
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    pub delay: Option<Scalar>,
    pub jitter: Option<Scalar>,
    pub distribution: Option<Scalar>,
}

/// `abort`: `when` (`before_response` or `mid_body`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAbort {
    pub proxy: Option<Scalar>,
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    pub when: Option<Scalar>,
}

/// `corrupt`: `mode` and `fields`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCorrupt {
    pub proxy: Option<Scalar>,
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    pub matcher: Option<RawMatch>,
    pub mode: Option<Scalar>,
    pub fields: Option<Vec<Scalar>>,
}

/// Fields are all [`Scalar`]s: inside an internally tagged enum serde loses
/// the field path, so type errors are left to validation, which knows it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCommandFault {
    /// Run on an agent's host instead of locally.
    pub host: Option<Scalar>,
    pub run: Option<Scalar>,
    pub rollback: Option<Scalar>,
    pub timeout: Option<Scalar>,
}

/// Deserializes a present field (even a null one) as `Some`, so `demo:` with
/// nothing after it still selects the demo target.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

impl<'de> Deserialize<'de> for RawRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RateVisitor;

        impl<'de> Visitor<'de> for RateVisitor {
            type Value = RawRate;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("requests per second (a number) or a ramp { from, to, over }")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawRate, E> {
                Ok(RawRate::Constant(v as f64))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawRate, E> {
                Ok(RawRate::Constant(v as f64))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<RawRate, E> {
                Ok(RawRate::Constant(v))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawRate, A::Error> {
                RawRamp::deserialize(de::value::MapAccessDeserializer::new(map)).map(RawRate::Ramp)
            }
        }

        deserializer.deserialize_any(RateVisitor)
    }
}

/// `cpu`: `load` per core on `cores` cores (default all).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCpu {
    pub host: Option<Scalar>,
    pub load: Option<Scalar>,
    pub cores: Option<Scalar>,
}

/// `memory`: `size` or `percent` of total memory, optionally ramped.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMemory {
    pub host: Option<Scalar>,
    pub size: Option<Scalar>,
    pub percent: Option<Scalar>,
    pub ramp: Option<Scalar>,
    pub force: Option<Scalar>,
}

/// `kill`: a signal to the target (default), a pidfile's process or a process by name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKill {
    pub host: Option<Scalar>,
    pub signal: Option<Scalar>,
    pub pidfile: Option<Scalar>,
    pub name: Option<Scalar>,
    pub restart: Option<Scalar>,
    pub after: Option<Scalar>,
}
