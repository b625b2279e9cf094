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

use schemars::JsonSchema;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use super::raw_faults::*;

/// A leaf parsed later by [`super::units`] (a duration, a threshold, a status).
pub type Scalar = serde_yaml::Value;

/// A list whose bad items are blanked (`None`) rather than removed.
pub type List<T> = Vec<Option<T>>;

/// A suite file: a mapping with an `experiments` key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Suite")]
pub struct RawSuite {
    /// Name of the suite, shown in reports.
    #[schemars(extend("examples" = ["nightly"]))]
    pub name: Option<String>,
    /// One sentence on what the suite checks.
    #[schemars(extend("examples" = ["Every resilience check of the demo system."]))]
    pub description: Option<String>,
    /// Tags added to every experiment of the suite (for `--tag` / `--skip-tag`).
    #[schemars(with = "Option<Vec<String>>", extend("examples" = [["demo", "nightly"]]))]
    pub tags: Option<List<String>>,
    /// `target` and `load` lent to experiments that do not set them.
    #[schemars(extend("examples" = [{"target": {"demo": {}}, "load": {"rate": 100, "timeout": "2s"}}]))]
    pub defaults: Option<RawDefaults>,
    /// Experiment files, relative to the suite file.
    #[schemars(with = "Option<Vec<String>>", extend("examples" = [["../experiments/demo-baseline.yaml", "../experiments/network-*.yaml"]]))]
    pub experiments: Option<List<String>>,
    /// Safety for every experiment that has none of its own; its
    /// `max_duration` also bounds the whole suite.
    #[schemars(extend("examples" = [{"environment": "staging", "max_duration": "30m"}]))]
    pub safety: Option<super::raw_safety::RawSafety>,
    /// Where run events are posted, for every experiment without its own `notify`.
    #[schemars(extend("examples" = [{"webhook": "https://hooks.slack.com/services/T000/B000/XXXX"}]))]
    pub notify: Option<super::raw_safety::RawNotify>,
}

/// What a suite lends to experiments that do not set it themselves.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Defaults")]
pub struct RawDefaults {
    /// The target of experiments without one.
    #[schemars(extend("examples" = [{"demo": {}}]))]
    pub target: Option<RawTarget>,
    /// The load of experiments without one.
    #[schemars(extend("examples" = [{"rate": 100, "timeout": "2s"}]))]
    pub load: Option<RawLoad>,
}

/// An experiment file: a mapping without an `experiments` key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Experiment")]
pub struct RawExperiment {
    /// Name of the experiment (required), used in reports and `--only`.
    #[schemars(extend("examples" = ["checkout-latency"]))]
    pub name: Option<String>,
    /// One sentence on what the experiment shows.
    #[schemars(extend("examples" = ["Checkout stays fast while payments is slow."]))]
    pub description: Option<String>,
    /// Tags for `--tag` / `--skip-tag`.
    #[schemars(with = "Option<Vec<String>>", extend("examples" = [["demo", "smoke"]]))]
    pub tags: Option<List<String>>,
    /// A threshold over fewer samples fails with `no data` (default 1); phases may override.
    #[schemars(extend("examples" = [1]))]
    pub min_samples: Option<u64>,
    /// The system under test: exactly one of `demo`, `url` or `command`.
    #[schemars(extend("examples" = [{"demo": {}}]))]
    pub target: Option<RawTarget>,
    /// Proxy name → an embedded proxy or an existing Toxiproxy proxy.
    #[schemars(extend("examples" = [{"db": {"listen": "127.0.0.1:6380", "upstream": "127.0.0.1:6379"}}]))]
    pub proxies: Option<std::collections::BTreeMap<String, RawProxy>>,
    /// Agent name → a `faultline agent` on another host.
    #[schemars(extend("examples" = [{"db-host": {"url": "http://10.0.0.5:7070", "token_env": "FAULTLINE_AGENT_TOKEN"}}]))]
    pub agents: Option<std::collections::BTreeMap<String, RawAgent>>,
    /// The load: `rate` (open model) or `concurrency` (closed model), the timeout and the request mix.
    #[schemars(extend("examples" = [{"rate": 100, "timeout": "2s", "requests": [{"path": "/checkout"}]}]))]
    pub load: Option<RawLoad>,
    /// Time slices of one continuous load stream, each with its faults and thresholds.
    #[schemars(with = "Option<Vec<RawPhase>>", extend("minItems" = 1, "maxItems" = super::limits::MAX_PHASES, "examples" = [[{"name": "baseline", "duration": "3s", "expect": {"error_rate": "< 1%"}}]]))]
    pub phases: Option<List<RawPhase>>,
    /// Probe name → what it observes.
    #[schemars(extend("examples" = [{"payments-port": {"tcp": {"address": "127.0.0.1:8080"}}}]))]
    pub probes: Option<std::collections::BTreeMap<String, super::raw_verify::RawProbe>>,
    /// Behaviour checks judged after the run.
    #[schemars(with = "Option<Vec<super::raw_verify::RawVerifier>>", extend("examples" = [[{"recovery": {"baseline": "baseline", "after": "fault", "within": "8s"}}]]))]
    pub verify: Option<List<super::raw_verify::RawVerifier>>,
    /// Guard rails: environment, allowed hosts, caps and stop conditions.
    #[schemars(extend("examples" = [{"environment": "staging", "abort_if": [{"error_rate": "> 50%", "for": "5s"}]}]))]
    pub safety: Option<super::raw_safety::RawSafety>,
    /// Where run events are posted (a Slack-compatible webhook).
    #[schemars(extend("examples" = [{"webhook": "https://hooks.slack.com/services/T000/B000/XXXX"}]))]
    pub notify: Option<super::raw_safety::RawNotify>,
}

/// One entry of `agents`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Agent")]
pub struct RawAgent {
    /// Base URL of the agent.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["http://10.0.0.5:7070"]))]
    pub url: Option<Scalar>,
    /// Environment variable holding the bearer token (never the token itself).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["FAULTLINE_AGENT_TOKEN"]))]
    pub token_env: Option<Scalar>,
}

/// One entry of `proxies`: embedded (`listen`, `upstream`, `mode`) or
/// external (`toxiproxy`, `name`); which one is checked in validation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Proxy")]
pub struct RawProxy {
    /// Embedded proxy: the address it listens on (port 0 picks a free one).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["127.0.0.1:6380"]))]
    pub listen: Option<Scalar>,
    /// Embedded proxy: the address it forwards to.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["127.0.0.1:6379"]))]
    pub upstream: Option<Scalar>,
    /// Embedded proxy: `tcp` (default) or `http` (parses HTTP/1.1, for HTTP faults).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["http"]))]
    pub mode: Option<Scalar>,
    /// External proxy: the admin URL of a Toxiproxy server (or `faultline proxy`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["http://127.0.0.1:8474"]))]
    pub toxiproxy: Option<Scalar>,
    /// External proxy: its name on that server.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["inventory"]))]
    pub name: Option<Scalar>,
}

/// `target`: exactly one of `demo`, `url` or `command` (checked in validation).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Target")]
pub struct RawTarget {
    /// `Some(None)` for a bare `demo:`, which means "the demo with defaults".
    #[serde(default, deserialize_with = "present")]
    #[schemars(
        description = "The embedded demo system (`demo: {}` or a bare `demo:` for its defaults).",
        extend("examples" = [{}, {"payments_latency": "2ms"}])
    )]
    pub demo: Option<Option<RawDemo>>,
    /// Base URL of a running system (or of the one `command` starts).
    #[schemars(with = "Option<super::schema::Url>", extend("examples" = ["http://127.0.0.1:8080"]))]
    pub url: Option<String>,
    /// A local process to start (`sh -c`), stopped at the end.
    #[schemars(extend("examples" = ["./my-service --port 8080"]))]
    pub command: Option<String>,
    /// Wait until `GET path` answers 2xx/3xx before the load starts.
    #[schemars(extend("examples" = [{"path": "/health", "timeout": "20s", "interval": "100ms"}]))]
    pub ready: Option<RawReady>,
}

/// `target.demo`: knobs of the embedded demo system.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Demo")]
pub struct RawDemo {
    /// Service time of payments per call (±10% seeded jitter).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["2ms"]))]
    pub payments_latency: Option<Scalar>,
    /// Time bound of one checkout, bulkhead slot wait included.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["1s"]))]
    pub payments_timeout: Option<Scalar>,
    /// `10%` or `0.1`.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["10%", 0.1]))]
    pub canary_weight: Option<Scalar>,
    /// Defect names (`no_breaker`, ...), checked in validation.
    #[schemars(
        with = "Option<Vec<super::schema::DefectName>>",
        description = "Deliberate defects: `no_breaker`, `breaker_never_closes`, `no_rollback`, `slow_rollback`, `flapping_rollback`, `no_timeout`, `no_ejection` (with `failover`).",
        extend("examples" = [["no_breaker"]])
    )]
    pub defects: Option<List<Scalar>>,
    /// The frontend's circuit breaker (all optional).
    #[schemars(extend("examples" = [{"consecutive_failures": 5, "open_for": "2s"}]))]
    pub breaker: Option<RawBreaker>,
    /// The canary rollback controller (all optional).
    #[schemars(extend("examples" = [{"error_rate": "5%", "window": "10s", "min_requests": 100}]))]
    pub rollback: Option<RawRollback>,
    /// v1 fails over to a backup payments instance (hop `payments-backup`),
    /// ejecting the failing primary like nginx's `max_fails`/`fail_timeout`.
    #[schemars(extend("examples" = [{"max_fails": 2, "fail_timeout": "2s"}]))]
    pub failover: Option<RawFailover>,
}

/// `target.demo.failover` (all optional; `failover: {}` takes the defaults).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DemoFailover")]
pub struct RawFailover {
    /// Failures within `fail_timeout` that eject the primary (default 2, at least 1;
    /// the defect `no_ejection` is nginx's `max_fails=0`).
    #[schemars(extend("examples" = [2]))]
    pub max_fails: Option<u64>,
    /// The window of `max_fails` and how long the primary stays ejected
    /// before one call probes it (default 2s).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["2s"]))]
    pub fail_timeout: Option<Scalar>,
}

/// `target.demo.breaker`: the frontend's circuit breaker (all optional).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "DemoBreaker")]
pub struct RawBreaker {
    /// Opens after this many failures in a row.
    #[schemars(extend("examples" = [5]))]
    pub consecutive_failures: Option<u64>,
    /// `50%` or `0.5`.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["50%"]))]
    pub failure_rate: Option<Scalar>,
    /// Window of `failure_rate`.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["10s"]))]
    pub window: Option<Scalar>,
    /// Calls in `window` before `failure_rate` applies.
    #[schemars(extend("examples" = [20]))]
    pub min_calls: Option<u64>,
    /// How long it stays open before half-opening.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["2s"]))]
    pub open_for: Option<Scalar>,
    /// Calls let through while half-open.
    #[schemars(extend("examples" = [3]))]
    pub trial_calls: Option<u64>,
}

/// `target.demo.rollback`: the canary rollback controller (all optional).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Rollback")]
pub struct RawRollback {
    /// `5%` or `0.05`.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["5%"]))]
    pub error_rate: Option<Scalar>,
    /// Window of `error_rate`.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["10s"]))]
    pub window: Option<Scalar>,
    /// Canary requests in the window before it may act.
    #[schemars(extend("examples" = [100]))]
    pub min_requests: Option<u64>,
}

/// `target.ready`: the readiness poll.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ready")]
pub struct RawReady {
    /// Path polled with GET.
    #[schemars(extend("examples" = ["/health"]))]
    pub path: Option<String>,
    /// Give up (exit 4) after this long.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["20s"]))]
    pub timeout: Option<Scalar>,
    /// Time between polls.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["100ms"]))]
    pub interval: Option<Scalar>,
}

/// `load`: `rate` or `concurrency`, the timeout and the request mix.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Load", extend("not" = {"required": ["rate", "concurrency"]}))]
pub struct RawLoad {
    /// Open model: arrivals per second, or a linear ramp then constant.
    #[schemars(extend("examples" = [200, {"from": 10, "to": 500, "over": "30s"}]))]
    pub rate: Option<RawRate>,
    /// Closed model: N workers sending back to back (instead of `rate`).
    #[schemars(extend("examples" = [32]))]
    pub concurrency: Option<u64>,
    /// Open model: cap on concurrent requests (default 1024).
    #[schemars(extend("examples" = [1024]))]
    pub max_in_flight: Option<u64>,
    /// Per request (default 5s); an expired request is a `timeout` error.
    #[schemars(with = "Option<super::schema::PositiveDuration>", extend("examples" = ["2s"]))]
    pub timeout: Option<Scalar>,
    /// The weighted request mix.
    #[schemars(with = "Option<Vec<RawRequest>>", extend("maxItems" = super::limits::MAX_REQUESTS, "examples" = [[{"path": "/checkout", "weight": 3}, {"path": "/health"}]]))]
    pub requests: Option<List<RawRequest>>,
    /// Where each response says which version served it (a header or a JSON
    /// pointer), for `by_version` thresholds; `canary` and `traffic_shift`
    /// checks read it from here too unless they say otherwise.
    #[schemars(extend("examples" = [{"header": "x-version", "versions": ["v1", "v2"]}]))]
    pub version_from: Option<super::raw_verify::RawLoadVersionFrom>,
}

/// `rate: 200` or `rate: { from: 10, to: 500, over: 30s }`.
#[derive(Debug)]
pub enum RawRate {
    Constant(f64),
    Ramp(RawRamp),
}

/// `rate: { from, to, over }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Ramp")]
pub struct RawRamp {
    /// Rate at the start (requests per second).
    #[schemars(extend("examples" = [10]))]
    pub from: Option<f64>,
    /// Rate at the end of the ramp, kept afterwards.
    #[schemars(extend("examples" = [500]))]
    pub to: Option<f64>,
    /// Length of the ramp.
    #[schemars(with = "Option<super::schema::PositiveDuration>", extend("examples" = ["30s"]))]
    pub over: Option<Scalar>,
}

/// One entry of `load.requests`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Request")]
pub struct RawRequest {
    /// Name in reports (default `METHOD path`).
    #[schemars(extend("examples" = ["health"]))]
    pub name: Option<String>,
    /// HTTP method (default GET).
    #[schemars(extend("examples" = ["POST"]))]
    pub method: Option<String>,
    /// Path (joined to the target's URL).
    #[schemars(extend("examples" = ["/checkout"]))]
    pub path: Option<String>,
    /// Kept as YAML so keys and values can be checked (and located) one by one.
    #[schemars(
        with = "Option<super::schema::Headers>",
        description = "Request headers.",
        extend("examples" = [{"x-user": "alice"}]))]
    pub headers: Option<serde_yaml::Mapping>,
    /// Request body.
    #[schemars(extend("examples" = ["{\"a\": 1}"]))]
    pub body: Option<String>,
    /// Relative weight in the mix (default 1).
    #[schemars(extend("examples" = [3]))]
    pub weight: Option<u64>,
    /// Integers (`404`) or classes (`2xx`).
    #[schemars(with = "Option<Vec<super::schema::Status>>", extend("examples" = [[200, "2xx", 404]]))]
    pub expect_status: Option<Vec<Scalar>>,
}

/// One entry of `phases`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Phase")]
pub struct RawPhase {
    /// Name of the phase, unique in the experiment.
    #[schemars(extend("examples" = ["baseline"]))]
    pub name: Option<String>,
    /// How long the phase lasts.
    #[schemars(with = "Option<super::schema::PositiveDuration>", extend("examples" = ["5s"]))]
    pub duration: Option<Scalar>,
    /// Overrides the experiment's `min_samples`.
    #[schemars(extend("examples" = [50]))]
    pub min_samples: Option<u64>,
    /// Metric name → threshold; kept as YAML so an unknown metric gets a
    /// did-you-mean against the metric catalogue.
    #[schemars(
        with = "Option<super::schema::Expect>",
        description = "Metric → threshold (`p99: \"< 100ms\"`), plus `probes` judged in the phase.",
        extend("examples" = [{"p99": "< 100ms", "error_rate": "< 1%"}]))]
    pub expect: Option<serde_yaml::Mapping>,
    /// With `run --interactive`: wait for Enter at the start of this phase
    /// (time to look at dashboards; the load keeps running).
    #[schemars(extend("examples" = [true]))]
    pub pause: Option<bool>,
    /// Faults applied at phase start (or `after` it) and removed at its end (or `for` after
    /// the apply), always.
    #[schemars(with = "Option<Vec<super::raw_inject::RawInject>>", extend("maxItems" = super::limits::MAX_INJECT, "examples" = [[{"type": "latency", "proxy": "payments", "latency": "200ms"}, {"type": "http_error", "proxy": "payments", "status": 503, "after": "2s", "for": "3s"}]]))]
    pub inject: Option<List<super::raw_inject::RawInject>>,
}

/// A fault in `inject`, chosen by its `type`. Adding a fault kind is one
/// variant here and one arm in [`super::validate`].
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[schemars(
    rename = "Fault",
    description = "A fault in `inject`, chosen by its `type`: applied at phase start (or `after` it), removed at phase end (or `for` after the apply)."
)]
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
    RateLimit(RawRateLimit),
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
        "rate_limit",
        "cpu",
        "memory",
        "kill",
    ];
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
