//! The validated model of `verify:` and `probes:`: behaviour checks judged
//! from the observed traffic, and observations of the system made on the side.
//!
//! Like the rest of [`super::model`], everything here is already checked:
//! phase and probe names resolve, ratios are within 0..=1, durations are positive.

use std::time::Duration;

use super::model::{CmpOp, StatusMatch};

/// A probe declared under `probes:` (name → kind), with its timeout.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeDecl {
    pub name: String,
    pub kind: ProbeKind,
    /// One observation gives up after this long (a failed observation, not an error).
    pub timeout: Duration,
}

/// What a probe looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeKind {
    Http(HttpProbe),
    Prometheus(PrometheusProbe),
    Command(CommandProbe),
    Tcp(TcpProbe),
}

impl ProbeKind {
    /// `http`, `prometheus`, `command` or `tcp`.
    pub fn key(&self) -> &'static str {
        match self {
            ProbeKind::Http(_) => "http",
            ProbeKind::Prometheus(_) => "prometheus",
            ProbeKind::Command(_) => "command",
            ProbeKind::Tcp(_) => "tcp",
        }
    }
}

/// `http`: one request; passes when every listed condition holds.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    /// An absolute `http(s)://` URL, or a path (`/admin/breaker`) joined to
    /// the target's base URL at run time.
    pub url: String,
    pub method: http::Method,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Accepted statuses; `None` means 2xx.
    pub status: Option<Vec<StatusMatch>>,
    /// A value in the JSON body, by JSON pointer (RFC 6901).
    pub json: Option<JsonCheck>,
    /// A regular expression the body must match.
    pub body: Option<String>,
}

/// `json: { pointer: /state, equals: closed }` or `{ pointer: /weight, value: "< 0.5" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonCheck {
    pub pointer: String,
    pub expect: ValueCheck,
}

/// How an observed value is judged.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueCheck {
    /// Equal to this JSON value (strings compare as strings, numbers as numbers).
    Equals(serde_json::Value),
    /// A number compared to a bound, e.g. `< 0.05`.
    Compare {
        op: CmpOp,
        value: f64,
        /// As written, e.g. `< 0.05`.
        source: String,
    },
}

/// `prometheus`: an instant PromQL query; every returned sample must pass.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusProbe {
    /// The server, e.g. `http://127.0.0.1:9090`.
    pub url: http::Uri,
    pub query: String,
    /// The bound every sample's value must meet. An empty result fails
    /// ("no data") unless `empty_passes`.
    pub expect: ValueCheck,
    pub empty_passes: bool,
}

/// `command`: a shell command (`sh -c`); passes on the expected exit code
/// (and stdout match, if given).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandProbe {
    pub run: String,
    pub exit_code: i32,
    /// A regular expression stdout must match.
    pub stdout: Option<String>,
}

/// `tcp`: a connect to `host:port`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpProbe {
    pub address: String,
}

/// When a probe is observed during a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ProbeWhen {
    /// Once, right after the phase's faults are applied.
    Start,
    /// Once, just before the phase's faults are removed.
    End,
    /// Repeatedly; passes when at least `pass_ratio` of the observations pass.
    Every { interval: Duration, pass_ratio: f64 },
}

/// A probe used as a check: in a phase's `expect: { probes: [...] }` or in `verify`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeCheck {
    pub probe: String,
    pub phase: String,
    pub when: ProbeWhen,
}

/// Where the version that served a response is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSource {
    /// A response header, e.g. `x-version`.
    Header(http::HeaderName),
    /// A JSON pointer into the response body, e.g. `/version`.
    Json(String),
}

impl Default for VersionSource {
    fn default() -> Self {
        VersionSource::Header(http::HeaderName::from_static("x-version"))
    }
}

impl std::fmt::Display for VersionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSource::Header(name) => write!(f, "header `{name}`"),
            VersionSource::Json(pointer) => write!(f, "JSON pointer `{pointer}`"),
        }
    }
}

/// `load.version_from`: where every response says which version served it,
/// for the whole run (`by_version` thresholds, `canary`, `traffic_shift`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFrom {
    pub source: VersionSource,
    /// The versions the system serves, when declared (`versions: [v1, v2]`):
    /// a `by_version` key outside them is a typo.
    pub versions: Vec<String>,
}

/// `expect: { by_version: { v2: { p99: "< 300ms" } } }`: thresholds judged
/// on the responses one version served in the phase.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionThresholds {
    pub version: String,
    pub thresholds: Vec<super::model::Threshold>,
}

/// One entry of `verify`.
#[derive(Debug, Clone, PartialEq)]
pub enum Verifier {
    Recovery(RecoverySpec),
    Breaker(BreakerSpec),
    Canary(CanarySpec),
    TrafficShift(TrafficShiftSpec),
    Compare(CompareSpec),
    Probe(ProbeCheck),
}

impl Verifier {
    /// The YAML key (`recovery`, `breaker`, ...), also the check's `kind`.
    pub fn key(&self) -> &'static str {
        match self {
            Verifier::Recovery(_) => "recovery",
            Verifier::Breaker(_) => "breaker",
            Verifier::Canary(_) => "canary",
            Verifier::TrafficShift(_) => "traffic_shift",
            Verifier::Compare(_) => "compare",
            Verifier::Probe(_) => "probe",
        }
    }

    /// The response-version source it needs, if any.
    pub fn version_source(&self) -> Option<&VersionSource> {
        match self {
            Verifier::Canary(c) => Some(&c.version),
            Verifier::TrafficShift(t) => Some(&t.version),
            _ => None,
        }
    }
}

/// `recovery`: how long after the fault phase ends until p99 and error rate
/// are back within tolerance of the baseline for `windows` seconds in a row.
#[derive(Debug, Clone, PartialEq)]
pub struct RecoverySpec {
    /// The healthy reference phase.
    pub baseline: String,
    /// The phase whose end is "the last fault removed" (default: the last
    /// phase that injects faults).
    pub after: String,
    pub within: Duration,
    /// Consecutive healthy 1-second windows required (default 3).
    pub windows: u32,
    pub tolerance: Tolerance,
    /// Whether p99 is judged too (`metrics: [error_rate, p99]`, the
    /// default); the error rate always is: a target still failing has not
    /// recovered, however fast its failures are.
    pub judge_p99: bool,
    /// A baseline whose error rate is above this is refused as a reference
    /// ("baseline itself unhealthy"; default 5%).
    pub max_baseline_error_rate: f64,
}

/// Default of `recovery.max_baseline_error_rate`.
pub const MAX_BASELINE_ERROR_RATE: f64 = 0.05;

/// How far a window may be from the baseline and still count as recovered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// p99 may exceed the baseline's by this much.
    pub p99: LatencyTolerance,
    /// Error rate may exceed the baseline's by this many points (0.01 = 1%).
    pub error_rate: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyTolerance {
    /// A fraction of the baseline p99 (0.25 = 25%).
    Relative(f64),
    /// An absolute slack.
    Absolute(Duration),
}

/// How a breaker shields a failing dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerStyle {
    /// Clients get fast failures while it is open (Hystrix, resilience4j,
    /// pybreaker, opossum): judged by the fast failures clients see.
    FailFast,
    /// Clients stay healthy while the failing dependency is taken out of
    /// rotation (nginx `max_fails`, HAProxy `on-error mark-down`, Envoy
    /// outlier detection): judged by the calls reaching the dependency.
    FailOver,
}

impl BreakerStyle {
    pub fn key(self) -> &'static str {
        match self {
            BreakerStyle::FailFast => "fail_fast",
            BreakerStyle::FailOver => "fail_over",
        }
    }
}

/// `probes: { max: 2, per: 1s }`: calls the dependency may see in any
/// `per`-long window while the breaker is open (half-open trials, health
/// probes, a balancer's retry of an ejected backend).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeBound {
    pub max: u64,
    pub per: Duration,
}

/// `breaker`: judged from traffic during and after a dependency fault.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerSpec {
    /// The phase that injects the dependency fault.
    pub phase: String,
    pub style: BreakerStyle,
    /// The proxy in front of the dependency, where calls are counted
    /// (required for `fail_over`).
    pub dependency: Option<String>,
    /// Calls per window allowed while open: for `fail_over` what "open"
    /// means (default 2 per 1s); for `fail_fast` an extra check when given.
    pub probes: Option<ProbeBound>,
    /// `fail_over`: the clients' error rate while open (default 1%).
    pub max_error_rate: f64,
    /// A response is a fast failure when its status matches one of these...
    pub fast_fail_status: Vec<StatusMatch>,
    /// ...and it took less than this.
    pub fast_fail_latency: Duration,
    pub opens_within: Duration,
    /// Calls the dependency may see while the breaker is open.
    pub max_dependency_calls: Option<u64>,
    pub closes_within: Duration,
    /// A state endpoint sampled alongside the traffic.
    pub state: Option<BreakerStateProbe>,
}

/// `state: { url: /admin/breaker, pointer: /state, open: open, closed: closed }`.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerStateProbe {
    pub url: String,
    pub pointer: String,
    pub open: String,
    pub closed: String,
}

/// `canary`: a fault on the canary's path must roll the canary back.
#[derive(Debug, Clone, PartialEq)]
pub struct CanarySpec {
    /// The phase that injects the canary-only fault.
    pub phase: String,
    pub canary_version: String,
    pub version: VersionSource,
    pub rolled_back_within: Duration,
    /// The canary's share (over 1 s) at or below which it counts as gone
    /// (default 1%).
    pub rolled_back_share: f64,
    /// A probe (declared under `probes:`) that must pass at the phase's end:
    /// the control plane confirms the rollback.
    pub confirm: Option<String>,
    /// Failed canary responses allowed in the phase (default: unlimited).
    pub max_failed_requests: u64,
    /// The stable versions' error rate must stay at or below this.
    pub stable_error_rate: f64,
}

/// Default of `canary.rolled_back_share`.
pub const ROLLED_BACK_SHARE: f64 = 0.01;

/// `traffic_shift`: the share of one version moves from `from` to `to` during a phase.
#[derive(Debug, Clone, PartialEq)]
pub struct TrafficShiftSpec {
    pub phase: String,
    /// The version whose share moves (e.g. `v2` or `green`).
    pub target_version: String,
    pub version: VersionSource,
    /// Share at the phase's start and end (0..=1).
    pub from: f64,
    pub to: f64,
    /// How far a share may be from `from`/`to` and still match.
    pub tolerance: f64,
    /// The share must reach `to` this soon after the phase starts.
    pub within: Option<Duration>,
    pub max_errors: u64,
}

/// What `compare` tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareMetric {
    Latency,
    ErrorRate,
}

impl CompareMetric {
    pub fn key(self) -> &'static str {
        match self {
            CompareMetric::Latency => "latency",
            CompareMetric::ErrorRate => "error_rate",
        }
    }
}

/// The verdict `compare` expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    Same,
    Worse,
    Better,
}

impl Expectation {
    pub fn key(self) -> &'static str {
        match self {
            Expectation::Same => "same",
            Expectation::Worse => "worse",
            Expectation::Better => "better",
        }
    }
}

/// `compare`: a statistical test between two phases.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSpec {
    pub baseline: String,
    pub current: String,
    /// Each listed metric is one check (default: both).
    pub metrics: Vec<CompareMetric>,
    pub expect: Expectation,
    pub alpha: f64,
    /// Minimum effect for latency: how far the median must move (relative
    /// to the baseline's median, or absolute) to count as worse or better.
    pub min_latency_effect: LatencyTolerance,
    /// Minimum effect for error rate, in points (0.01 = 1%).
    pub min_error_rate_effect: f64,
    pub min_samples: u64,
    /// Whether too few samples passes (default: fails).
    pub inconclusive_passes: bool,
}
