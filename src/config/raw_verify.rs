//! Serde mirror of `verify:` and `probes:` (see [`super::raw`] for the
//! conventions: every field optional, unit-bearing leaves kept as [`Scalar`]s,
//! unknown keys refused so typos get a did-you-mean).

use schemars::JsonSchema;
use serde::Deserialize;

use super::raw::Scalar;

/// One entry of `verify`: a mapping with exactly one of these keys.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Verifier")]
pub struct RawVerifier {
    /// Time until p99 and error rate are back near the baseline after a fault.
    #[schemars(extend("examples" = [{"baseline": "baseline", "after": "blackhole", "within": "8s"}]))]
    pub recovery: Option<RawRecovery>,
    /// A circuit breaker opens under a failing dependency, shields it and closes after.
    #[schemars(extend("examples" = [{"phase": "payments-failing", "dependency": "payments", "opens_within": "2s"}]))]
    pub breaker: Option<RawBreaker>,
    /// A failing canary is rolled back without harming stable traffic.
    #[schemars(extend("examples" = [{"phase": "canary-broken", "canary_version": "v2", "version_from": {"header": "x-version"}}]))]
    pub canary: Option<RawCanary>,
    /// A version's share of traffic moves from one value to another.
    #[schemars(extend("examples" = [{"phase": "promote", "version": "v2", "from": "10%", "to": "100%"}]))]
    pub traffic_shift: Option<RawTrafficShift>,
    /// A statistical test between two phases of the run.
    #[schemars(extend("examples" = [{"baseline": "baseline", "current": "slow", "expect": "worse"}]))]
    pub compare: Option<RawCompare>,
    /// A declared probe used as a check.
    #[schemars(extend("examples" = [{"name": "breaker-closed", "phase": "after", "at": "end"}]))]
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

/// Recovered: `windows` 1-second windows in a row after `after` ends whose error rate is within
/// tolerance of the baseline's (all of them) and whose p99 is too (the first, and all but one in
/// three: one slow second is noise on a shared host). A baseline above `max_baseline_error_rate`
/// fails as "baseline itself unhealthy". The time is when the error rate first held on the
/// 100 ms timeline (`recovery_s`; the message says the resolution).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Recovery")]
pub struct RawRecovery {
    /// The phase whose p99 and error rate are the reference.
    #[schemars(extend("examples" = ["baseline"]))]
    pub baseline: Option<String>,
    /// The phase with the fault (default: the last phase with faults).
    #[schemars(extend("examples" = ["blackhole"]))]
    pub after: Option<String>,
    /// Recovery must come within this long of the end of `after`.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["8s"]))]
    pub within: Option<Scalar>,
    /// 1-second windows in a row within tolerance (default 3).
    #[schemars(extend("examples" = [3]))]
    pub windows: Option<u64>,
    /// How close to the baseline counts as recovered.
    #[schemars(extend("examples" = [{"p99": "25%", "error_rate": "1%"}]))]
    pub tolerance: Option<RawTolerance>,
    /// What is judged: `[error_rate, p99]` (default) or `[error_rate]`; the error rate always is.
    #[schemars(with = "Option<super::schema::RecoveryMetrics>", extend("examples" = [["error_rate", "p99"], ["error_rate"]]))]
    pub metrics: Option<Scalar>,
    /// A baseline with a higher error rate is refused as a reference (default 5%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["5%"]))]
    pub max_baseline_error_rate: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Tolerance")]
pub struct RawTolerance {
    /// Relative (`25%`, never under 10 ms) or absolute (`10ms`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["25%", "10ms"]))]
    pub p99: Option<Scalar>,
    /// Absolute difference in error rate.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["1%"]))]
    pub error_rate: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BreakerCheck")]
pub struct RawBreaker {
    /// The phase the check is about.
    #[schemars(extend("examples" = ["payments-failing"]))]
    pub phase: Option<String>,
    /// `fail_fast` (default: clients get fast failures while open) or
    /// `fail_over` (clients stay healthy; the failing dependency's calls drop).
    #[schemars(with = "Option<BreakerStyleName>", extend("examples" = ["fail_over"]))]
    pub style: Option<Scalar>,
    /// Proxy where calls to the dependency are counted (required for `fail_over`).
    #[schemars(extend("examples" = ["payments"]))]
    pub dependency: Option<String>,
    /// Calls the dependency may see in any `per` window while open (health
    /// probes, half-open trials). `fail_over` default: 2 per 1s.
    #[schemars(extend("examples" = [{"max": 2, "per": "1s"}]))]
    pub probes: Option<RawProbeBound>,
    /// `fail_over`: the clients' error rate while open (default 1%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["1%"]))]
    pub max_error_rate: Option<Scalar>,
    /// What a fast failure looks like (`fail_fast` only).
    #[schemars(extend("examples" = [{"status": 503, "latency": "50ms"}]))]
    pub fast_fail: Option<RawFastFail>,
    /// Most responses are fast failures within this long of the fault (default 5s).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["2s"]))]
    pub opens_within: Option<Scalar>,
    /// Calls reaching the dependency while open (half-open trials).
    #[schemars(extend("examples" = [30]))]
    pub max_dependency_calls: Option<u64>,
    /// ≥ 90% successes again within this long of the fault's end (default 10s).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["4s"]))]
    pub closes_within: Option<Scalar>,
    /// An endpoint reporting the breaker's state, read every 250 ms.
    #[schemars(extend("examples" = [{"url": "/admin/breaker", "pointer": "/state", "open": "open", "closed": "closed"}]))]
    pub state: Option<RawBreakerState>,
}

/// The names `style:` takes.
#[derive(JsonSchema)]
#[allow(dead_code)] // only its schema is used
#[serde(rename_all = "snake_case")]
enum BreakerStyleName {
    FailFast,
    FailOver,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProbeBound")]
pub struct RawProbeBound {
    /// Most calls per window.
    #[schemars(extend("examples" = [2]))]
    pub max: Option<u64>,
    /// The window (default 1s).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["1s"]))]
    pub per: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FastFail")]
pub struct RawFastFail {
    /// A status or a list of statuses (`503`, `5xx`).
    #[schemars(with = "Option<super::schema::Statuses>", extend("examples" = [503, ["503", "5xx"]]))]
    pub status: Option<Scalar>,
    /// ... answered under this latency.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["50ms"]))]
    pub latency: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "BreakerState")]
pub struct RawBreakerState {
    /// A path (joined to the target) or an http(s) URL.
    #[schemars(extend("examples" = ["/admin/breaker"]))]
    pub url: Option<String>,
    /// JSON pointer to the state in the body.
    #[schemars(extend("examples" = ["/state"]))]
    pub pointer: Option<String>,
    /// The value meaning open.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["open"]))]
    pub open: Option<Scalar>,
    /// The value meaning closed.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["closed"]))]
    pub closed: Option<Scalar>,
}

/// `version_from: { header: x-version }` or `{ json: /version }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "VersionFrom")]
pub struct RawVersionFrom {
    /// Response header naming the version.
    #[schemars(extend("examples" = ["x-version"]))]
    pub header: Option<String>,
    /// JSON pointer into the body naming the version.
    #[schemars(extend("examples" = ["/version"]))]
    pub json: Option<String>,
}

/// `load.version_from`: `{ header: x-version }` or `{ json: /version }`, and
/// optionally the versions the system serves.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LoadVersionFrom")]
pub struct RawLoadVersionFrom {
    /// Response header naming the version.
    #[schemars(extend("examples" = ["x-version"]))]
    pub header: Option<String>,
    /// JSON pointer into the body naming the version.
    #[schemars(extend("examples" = ["/version"]))]
    pub json: Option<String>,
    /// The versions the system serves: a `by_version` key outside them is
    /// an error with a did-you-mean (the demo's are always `v1`, `v2`).
    #[schemars(extend("examples" = [["v1", "v2"]]))]
    pub versions: Option<Vec<String>>,
}

/// The canary's share over a sliding second must fall to `rolled_back_share` within
/// `rolled_back_within` of the phase's start and stay there to its end (`measured.outcome` 0,
/// rolled back). A share that falls and comes back is flapping (outcome 1: a passive health check
/// ejecting and re-admitting the canary), even if the phase ends while it is out; one that never
/// falls is not rolled back (outcome 2). `share_s00`, `share_s01`, ... are the per-second shares.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Canary")]
pub struct RawCanary {
    /// The phase the check is about.
    #[schemars(extend("examples" = ["payments-failing"]))]
    pub phase: Option<String>,
    /// The canary's version name.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["v2"]))]
    pub canary_version: Option<Scalar>,
    /// Where a response says which version served it.
    #[schemars(extend("examples" = [{"header": "x-version"}]))]
    pub version_from: Option<RawVersionFrom>,
    /// The canary's share falls to `rolled_back_share` within this long of the fault, and stays there.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["5s"]))]
    pub rolled_back_within: Option<Scalar>,
    /// Share (per 1 s) at or below which the canary counts as gone (default 1%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["1%"]))]
    pub rolled_back_share: Option<Scalar>,
    /// A probe under `probes:` that must pass at the phase's end (the control plane confirms).
    #[schemars(extend("examples" = ["rollback-done"]))]
    pub confirm: Option<String>,
    /// Failed canary responses allowed in the phase (default: unlimited).
    #[schemars(extend("examples" = [60]))]
    pub max_failed_requests: Option<u64>,
    /// The other versions' error rate meanwhile (default 1%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["1%"]))]
    pub stable_error_rate: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TrafficShift")]
pub struct RawTrafficShift {
    /// The phase the check is about.
    #[schemars(extend("examples" = ["payments-failing"]))]
    pub phase: Option<String>,
    /// The version whose share moves.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["v2"]))]
    pub version: Option<Scalar>,
    /// Where a response says which version served it.
    #[schemars(extend("examples" = [{"header": "x-version"}]))]
    pub version_from: Option<RawVersionFrom>,
    /// Share in the second before the phase.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["10%"]))]
    pub from: Option<Scalar>,
    /// Share in the phase's last second.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["100%"]))]
    pub to: Option<Scalar>,
    /// Allowed difference of the shares (default 5%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["5%"]))]
    pub tolerance: Option<Scalar>,
    /// The share reaches `to` this soon.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["1s"]))]
    pub within: Option<Scalar>,
    /// Errors allowed during the phase (default 0).
    #[schemars(extend("examples" = [0]))]
    pub max_errors: Option<u64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Compare")]
pub struct RawCompare {
    /// The reference phase.
    #[schemars(extend("examples" = ["baseline"]))]
    pub baseline: Option<String>,
    /// The phase compared with it.
    #[schemars(extend("examples" = ["slow-payments"]))]
    pub current: Option<String>,
    /// `latency`, `error_rate`, or a list of them.
    #[schemars(with = "Option<super::schema::Words>", extend("examples" = ["latency", ["latency", "error_rate"]]))]
    pub metric: Option<Scalar>,
    /// `same`, `worse` or `better`.
    #[schemars(extend("examples" = ["worse"]))]
    pub expect: Option<String>,
    /// Significance level (default 0.01).
    #[schemars(with = "Option<super::schema::Number>", extend("examples" = [0.01]))]
    pub alpha: Option<Scalar>,
    /// Smallest change that counts (defaults: latency 20%, error_rate 0.5%).
    #[schemars(extend("examples" = [{"latency": "20%", "error_rate": "0.5%"}]))]
    pub min_effect: Option<RawMinEffect>,
    /// Per phase; below it the verdict is inconclusive.
    #[schemars(extend("examples" = [50]))]
    pub min_samples: Option<u64>,
    /// `pass` or `fail` (default).
    #[schemars(extend("examples" = ["pass"]))]
    pub inconclusive: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "MinEffect")]
pub struct RawMinEffect {
    /// Relative (`20%`) or absolute (`2ms`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["20%", "2ms"]))]
    pub latency: Option<Scalar>,
    /// Absolute difference in error rate.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["0.5%"]))]
    pub error_rate: Option<Scalar>,
}

/// A probe used as a check: `{ name, phase, at: start|end }` or `{ ..., every, pass_ratio }`.
/// In a phase's `expect: { probes: [...] }` the phase is implied.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "ProbeUse")]
pub struct RawProbeUse {
    /// A probe declared under `probes`.
    #[schemars(extend("examples" = ["breaker-closed"]))]
    pub name: Option<String>,
    /// The phase (implied inside a phase's `expect`).
    #[schemars(extend("examples" = ["after"]))]
    pub phase: Option<String>,
    /// Observe once: `start` or `end` (default).
    #[schemars(extend("examples" = ["end"]))]
    pub at: Option<String>,
    /// Observe repeatedly at this interval...
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["1s"]))]
    pub every: Option<Scalar>,
    /// ... and pass when this share of observations pass.
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["90%"]))]
    pub pass_ratio: Option<Scalar>,
}

/// One entry of `probes:` (name → exactly one kind, plus `timeout`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Probe")]
pub struct RawProbe {
    /// An HTTP request judged by status, JSON and body.
    #[schemars(extend("examples" = [{"url": "/admin/breaker", "json": {"pointer": "/state", "equals": "closed"}}]))]
    pub http: Option<RawHttpProbe>,
    /// A Prometheus instant query; every returned sample must pass.
    #[schemars(extend("examples" = [{"url": "http://127.0.0.1:9090", "query": "up", "value": "> 0"}]))]
    pub prometheus: Option<RawPrometheusProbe>,
    /// A shell command judged by exit code and stdout.
    #[schemars(extend("examples" = [{"run": "test -w /tmp", "exit_code": 0}]))]
    pub command: Option<RawCommandProbe>,
    /// A TCP connection that must open.
    #[schemars(extend("examples" = [{"address": "127.0.0.1:8080"}]))]
    pub tcp: Option<RawTcpProbe>,
    /// Time limit per observation (default 5s).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["2s"]))]
    pub timeout: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HttpProbe")]
pub struct RawHttpProbe {
    /// A path (joined to the target) or an http(s) URL.
    #[schemars(extend("examples" = ["/admin/breaker"]))]
    pub url: Option<String>,
    /// HTTP method (default GET).
    #[schemars(extend("examples" = ["GET"]))]
    pub method: Option<String>,
    /// Request headers.
    #[schemars(with = "Option<super::schema::Headers>", extend("examples" = [{"authorization": "Bearer x"}]))]
    pub headers: Option<serde_yaml::Mapping>,
    /// Statuses that pass (default 2xx).
    #[schemars(with = "Option<super::schema::Statuses>", extend("examples" = [[200]]))]
    pub status: Option<Scalar>,
    /// A check on a JSON value of the body.
    #[schemars(extend("examples" = [{"pointer": "/state", "equals": "closed"}]))]
    pub json: Option<RawJsonCheck>,
    /// A regular expression the body must match.
    #[schemars(extend("examples" = ["\"state\""]))]
    pub body: Option<String>,
}

/// `json: { pointer, equals }` or `{ pointer, value: "< 0.5" }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "JsonCheck")]
pub struct RawJsonCheck {
    /// JSON pointer into the body.
    #[schemars(extend("examples" = ["/state"]))]
    pub pointer: Option<String>,
    /// The value must equal this.
    #[schemars(with = "Option<super::schema::AnyValue>", extend("examples" = ["closed"]))]
    pub equals: Option<serde_yaml::Value>,
    /// The (numeric) value must meet this comparison.
    #[schemars(with = "Option<super::schema::Threshold>", extend("examples" = ["< 0.5"]))]
    pub value: Option<Scalar>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "PrometheusProbe")]
pub struct RawPrometheusProbe {
    /// Base URL of the Prometheus server.
    #[schemars(extend("examples" = ["http://127.0.0.1:9090"]))]
    pub url: Option<String>,
    /// PromQL instant query.
    #[schemars(extend("examples" = ["sum(rate(demo_errors_total[30s]))"]))]
    pub query: Option<String>,
    /// `< 0.05`: every returned sample must meet it.
    #[schemars(with = "Option<super::schema::Threshold>", extend("examples" = ["< 0.05"]))]
    pub value: Option<Scalar>,
    /// `pass` or `fail` (default) when the query returns nothing.
    #[schemars(extend("examples" = ["fail"]))]
    pub empty: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "CommandProbe")]
pub struct RawCommandProbe {
    /// Shell command.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["test -w /tmp"]))]
    pub run: Option<Scalar>,
    /// Expected exit code (default 0).
    #[schemars(extend("examples" = [0]))]
    pub exit_code: Option<i64>,
    /// A regular expression stdout must match.
    #[schemars(extend("examples" = ["ok"]))]
    pub stdout: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TcpProbe")]
pub struct RawTcpProbe {
    /// `host:port` to connect to.
    #[schemars(extend("examples" = ["127.0.0.1:8080"]))]
    pub address: Option<String>,
}
