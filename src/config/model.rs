//! The validated experiment model: what the rest of faultline consumes.
//!
//! Everything here has already been checked by the validation pass: durations
//! are positive, rates are finite and non-zero, thresholds name known metrics.
//! Nothing downstream re-validates; nothing here knows about YAML.

use std::path::PathBuf;
use std::time::Duration;

use super::Diagnostic;

pub use super::model_verify::*;

/// One file's worth of work: a single experiment, or a suite of them.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file this document was read from.
    pub source: PathBuf,
    /// Present when the file is a suite.
    pub suite: Option<SuiteInfo>,
    /// Experiments in run order (a single one for an experiment file).
    pub experiments: Vec<Experiment>,
    /// Problems that do not make the file invalid (a deprecated form), to show.
    pub warnings: Vec<Diagnostic>,
}

/// Metadata of a suite file.
#[derive(Debug, Clone)]
pub struct SuiteInfo {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// The suite's own `safety` (its `max_duration` bounds the whole suite).
    pub safety: Option<Safety>,
}

/// A validated experiment: a target, one load stream, and phases that slice it in time.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub name: String,
    pub description: Option<String>,
    /// The experiment's own tags plus its suite's.
    pub tags: Vec<String>,
    /// The experiment file (for suites, the referenced file).
    pub source: PathBuf,
    /// The suite it was loaded through, if any.
    pub suite: Option<String>,
    pub target: Target,
    /// Proxies faults can act on (the demo's hops are added at run time).
    pub proxies: Vec<ProxyDecl>,
    /// `faultline agent`s on other hosts.
    pub agents: Vec<AgentDecl>,
    pub load: Load,
    pub phases: Vec<Phase>,
    /// Probes declared under `probes:`, used by `verify` and phase `expect`.
    pub probes: Vec<ProbeDecl>,
    /// Behaviour checks judged after the run (`verify:`).
    pub verify: Vec<Verifier>,
    /// Guard rails: environment, allowed hosts, caps, stop conditions.
    pub safety: Safety,
    /// A webhook that receives run events (`notify.webhook`).
    pub notify: Option<http::Uri>,
}

/// `safety:`: what a run may touch and when it stops by itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Safety {
    /// Free text such as `staging`; `production` needs two explicit switches.
    pub environment: Option<String>,
    pub allow_production: bool,
    /// Non-loopback hosts the run may reach.
    pub allowed_hosts: Vec<String>,
    pub max_duration: Option<Duration>,
    /// Cap on requested requests per second.
    pub max_rate: Option<f64>,
    /// Evaluated every second of the run; the first to hold for its
    /// duration aborts the run.
    pub abort_if: Vec<StopCondition>,
}

impl Safety {
    pub fn is_production(&self) -> bool {
        self.environment
            .as_deref()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("production"))
    }
}

/// One `abort_if` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct StopCondition {
    pub when: StopWhen,
    /// How long it must hold (every second in a row) before the run stops.
    pub hold: Duration,
    /// As written, e.g. `error_rate > 50% for 5s`.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StopWhen {
    /// A metric of the last second (error_rate, p50, p99, rate).
    Metric(Threshold),
    /// A probe failing.
    ProbeFails(String),
}

/// An agent declared under `agents:`.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentDecl {
    pub name: String,
    pub url: http::Uri,
    /// Environment variable holding its bearer token.
    pub token_env: String,
}

/// A proxy declared under `proxies:`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyDecl {
    pub name: String,
    pub kind: ProxyKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ProxyKind {
    /// Started by faultline for the experiment.
    Embedded {
        listen: std::net::SocketAddr,
        /// `host:port`, resolved when the proxy starts.
        upstream: String,
        mode: crate::proxy::ProxyMode,
    },
    /// A proxy that already exists on a Toxiproxy server (or `faultline proxy`).
    Toxiproxy {
        /// The admin API, e.g. `http://127.0.0.1:8474`.
        url: http::Uri,
        /// The proxy's name on that server.
        name: String,
    },
}

impl Experiment {
    /// Sum of all phase durations: how long the load stream runs.
    pub fn total_duration(&self) -> Duration {
        self.phases.iter().map(|p| p.duration).sum()
    }

    /// Where the run reads the version that served each response: the
    /// load's `version_from`, else a `canary` or `traffic_shift` check's
    /// (validation made them agree). `None`: versions are not read.
    pub fn version_source(&self) -> Option<&VersionSource> {
        self.load
            .version_from
            .as_ref()
            .map(|v| &v.source)
            .or_else(|| self.verify.iter().find_map(|v| v.version_source()))
    }
}

/// The system under test and how to know it is ready.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: TargetKind,
    /// Readiness check; always present for `command` targets.
    pub ready: Option<Ready>,
}

#[derive(Debug, Clone)]
pub enum TargetKind {
    /// Start the embedded demo system in-process.
    Demo(DemoOptions),
    /// A system that is already running at this base URL.
    Url(http::Uri),
    /// Start a local process (via `sh -c`), then talk to it at `url`.
    Command { command: String, url: http::Uri },
}

/// Knobs of the embedded demo system.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Service time of `payments` per call.
    pub payments_latency: Duration,
    /// The frontend's per-call timeout to `payments`.
    pub payments_timeout: Duration,
    /// Share of `/checkout` served by the canary version v2 (0..=1, default 0.1).
    pub canary_weight: f64,
    pub breaker: BreakerOptions,
    pub rollback: RollbackOptions,
    /// v1's fail-over to a backup payments instance; `None` (the default):
    /// no backup, v1 calls payments through its hop alone.
    pub failover: Option<FailoverOptions>,
    /// Deliberate defects, to prove that verifiers catch them.
    pub defects: Vec<Defect>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            payments_latency: Duration::from_millis(2),
            payments_timeout: Duration::from_secs(1),
            canary_weight: 0.1,
            breaker: BreakerOptions::default(),
            rollback: RollbackOptions::default(),
            failover: None,
            defects: Vec::new(),
        }
    }
}

impl DemoOptions {
    pub fn has(&self, defect: Defect) -> bool {
        self.defects.contains(&defect)
    }
}

/// The demo frontend's circuit breaker around payments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerOptions {
    /// Opens after this many consecutive failed calls...
    pub consecutive_failures: u32,
    /// ...or when at least this share of calls failed over `window`...
    pub failure_rate: f64,
    pub window: Duration,
    /// ...with at least this many calls in the window.
    pub min_calls: u32,
    /// Stays open (failing fast) this long before half-opening.
    pub open_for: Duration,
    /// Trial calls let through while half-open; all must succeed to close.
    pub trial_calls: u32,
}

impl Default for BreakerOptions {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: Duration::from_secs(10),
            min_calls: 20,
            open_for: Duration::from_secs(2),
            trial_calls: 3,
        }
    }
}

/// `target.demo.failover`: v1 calls payments through its hop and, when that
/// fails, retries on a backup instance (behind hop `payments-backup`); after
/// `max_fails` failures within `fail_timeout` the primary is ejected for
/// `fail_timeout`, then one call probes it (nginx's `max_fails` / `fail_timeout`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FailoverOptions {
    pub max_fails: u32,
    pub fail_timeout: Duration,
}

impl Default for FailoverOptions {
    fn default() -> Self {
        Self {
            max_fails: 2,
            fail_timeout: Duration::from_secs(2),
        }
    }
}

/// The demo's automatic canary rollback controller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RollbackOptions {
    /// Roll back when the canary's error rate exceeds this...
    pub error_rate: f64,
    /// ...over this sliding window...
    pub window: Duration,
    /// ...with at least this many canary requests in it.
    pub min_requests: u32,
}

impl Default for RollbackOptions {
    fn default() -> Self {
        Self {
            error_rate: 0.05,
            window: Duration::from_secs(10),
            min_requests: 100,
        }
    }
}

/// A defect the demo can be started with (`target: { demo: { defects: [...] } }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Defect {
    /// The breaker never opens: every call goes to payments.
    NoBreaker,
    /// Once open, the breaker never half-opens or closes.
    BreakerNeverCloses,
    /// The rollback controller never acts.
    NoRollback,
    /// The controller rolls back only after the canary has been failing for 30 s.
    SlowRollback,
    /// The controller is a passive health check: it ejects the failing canary
    /// for 2 s, re-admits it, and ejects it again (flapping, not a rollback).
    FlappingRollback,
    /// The frontend waits forever on payments (no per-call timeout).
    NoTimeout,
    /// With `failover`: the primary is never ejected, every call tries it
    /// first (nginx's `max_fails=0`).
    NoEjection,
}

impl Defect {
    pub const ALL: [Defect; 7] = [
        Defect::NoBreaker,
        Defect::BreakerNeverCloses,
        Defect::NoRollback,
        Defect::SlowRollback,
        Defect::FlappingRollback,
        Defect::NoTimeout,
        Defect::NoEjection,
    ];

    /// The YAML name (`no_breaker`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Defect::NoBreaker => "no_breaker",
            Defect::BreakerNeverCloses => "breaker_never_closes",
            Defect::NoRollback => "no_rollback",
            Defect::SlowRollback => "slow_rollback",
            Defect::FlappingRollback => "flapping_rollback",
            Defect::NoTimeout => "no_timeout",
            Defect::NoEjection => "no_ejection",
        }
    }

    pub fn from_key(key: &str) -> Option<Defect> {
        Defect::ALL.into_iter().find(|d| d.key() == key)
    }
}

/// Poll `GET path` until it answers 2xx or `timeout` passes.
#[derive(Debug, Clone)]
pub struct Ready {
    pub path: String,
    pub timeout: Duration,
    pub interval: Duration,
}

/// The one load stream of an experiment.
#[derive(Debug, Clone)]
pub struct Load {
    pub model: LoadModel,
    /// Per-request timeout; an expired request is a `timeout` error.
    pub timeout: Duration,
    /// Weighted request mix (never empty).
    pub requests: Vec<RequestSpec>,
    /// `load.version_from`, when written.
    pub version_from: Option<VersionFrom>,
}

#[derive(Debug, Clone)]
pub enum LoadModel {
    /// Constant (or ramped) arrival rate; latency measured from the scheduled send time.
    Open {
        rate: RateShape,
        /// Cap on concurrent requests; beyond it requests queue (and count as late).
        max_in_flight: usize,
    },
    /// N workers sending back to back.
    Closed { concurrency: usize },
}

/// Requests per second over time, from the start of the load stream.
#[derive(Debug, Clone, PartialEq)]
pub enum RateShape {
    Constant(f64),
    /// Linear ramp from `from` to `to` over `over`, then constant at `to`.
    Ramp {
        from: f64,
        to: f64,
        over: Duration,
    },
}

/// One entry of the request mix.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    /// Display name, defaults to `METHOD path`.
    pub name: String,
    pub method: http::Method,
    /// Path and query, starting with `/`.
    pub path: String,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub body: Option<bytes::Bytes>,
    pub weight: u32,
    /// Statuses that count as success; `None` means 2xx and 3xx.
    pub expect_status: Option<Vec<StatusMatch>>,
}

/// An accepted status: an exact code or a class like `2xx`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusMatch {
    Exact(u16),
    /// The hundreds digit: `Class(4)` is `4xx`.
    Class(u16),
}

impl StatusMatch {
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusMatch::Exact(code) => code == status,
            StatusMatch::Class(class) => status / 100 == class,
        }
    }
}

/// A time slice of the load stream, with faults and expectations.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub duration: Duration,
    /// Faults applied at phase start (or `after` it) and removed at phase
    /// end (or `for` after the apply).
    pub inject: Vec<PhaseFault>,
    /// Thresholds evaluated on this phase's samples.
    pub expect: Vec<Threshold>,
    /// Thresholds evaluated on one version's samples (`expect.by_version`).
    pub by_version: Vec<VersionThresholds>,
    /// Probes observed during this phase (`expect: { probes: [...] }`).
    pub probes: Vec<ProbeCheck>,
    /// With `run --interactive`, wait for Enter at the phase's start.
    pub pause: bool,
    /// A threshold over fewer samples fails with "no data".
    pub min_samples: u64,
}

/// An entry of `inject`: a fault and when, within its phase, it is in effect.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseFault {
    pub spec: FaultSpec,
    /// `after`: applied this long after the phase starts (zero: at once).
    pub after: Duration,
    /// `for`: removed this long after its apply started; `None`: at phase
    /// end. `after + for` fits in the phase (validated).
    pub lasts: Option<Duration>,
}

impl PhaseFault {
    /// A fault applied at phase start and removed at phase end.
    pub fn whole_phase(spec: FaultSpec) -> PhaseFault {
        PhaseFault {
            spec,
            after: Duration::ZERO,
            lasts: None,
        }
    }

    /// Whether `after` or `for` moves it off the phase's boundaries.
    pub fn is_timed(&self) -> bool {
        !self.after.is_zero() || self.lasts.is_some()
    }
}

/// A fault as written in `inject`.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultSpec {
    /// Run a shell command at phase start and (optionally) another at phase end.
    Command(CommandFault),
    /// A Toxiproxy toxic on a proxy. The toxic's `name` is left empty here:
    /// the run gives it a run-unique name when it applies it.
    Toxic {
        proxy: String,
        toxic: crate::proxy::spec::ToxicSpec,
    },
    /// The proxy closes its listener and live connections (Toxiproxy's `enabled: false`).
    Down { proxy: String },
    /// An HTTP-level fault on a `mode: http` proxy (name assigned at run time).
    Http {
        proxy: String,
        fault: crate::proxy::spec::HttpFaultSpec,
    },
    /// CPU pressure: `load` (0..=1) of each of `cores` cores (all when `None`).
    Cpu {
        load: f64,
        cores: Option<usize>,
        host: Option<String>,
    },
    /// Memory pressure: allocate and touch `bytes`, ramped over `ramp`.
    Memory {
        bytes: u64,
        ramp: Duration,
        /// `force: true`: past [`crate::bounds::memory`]'s cap (an agent
        /// also needs `--allow-force`).
        force: bool,
        host: Option<String>,
    },
    /// Send a signal to a process; optionally restart the target.
    Kill(KillFaultSpec),
}

/// `kill`: which process, which signal, and whether to restart the target.
#[derive(Debug, Clone, PartialEq)]
pub struct KillFaultSpec {
    /// `TERM`, `KILL`, `STOP` or `CONT`.
    pub signal: String,
    pub who: KillWho,
    /// Start the target again when the fault is removed (at phase end, or
    /// `for` after the kill) and wait until it is ready.
    pub restart: bool,
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum KillWho {
    /// The process faultline started (`target.command`).
    Target,
    Pidfile(String),
    /// Every process with exactly this name.
    Name(String),
}

impl FaultSpec {
    /// The proxy the fault acts on, if any.
    pub fn proxy(&self) -> Option<&str> {
        match self {
            FaultSpec::Command(_)
            | FaultSpec::Cpu { .. }
            | FaultSpec::Memory { .. }
            | FaultSpec::Kill(_) => None,
            FaultSpec::Toxic { proxy, .. }
            | FaultSpec::Down { proxy }
            | FaultSpec::Http { proxy, .. } => Some(proxy),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CommandFault {
    /// Run on this agent's host instead of locally.
    pub host: Option<String>,
    /// Shell command run (via `sh -c`) when the fault is applied.
    pub run: String,
    /// Shell command run when the fault is removed.
    pub rollback: Option<String>,
    /// Limit for each command.
    pub timeout: Duration,
}

/// `metric op value`, e.g. `p99 < 100ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub metric: Metric,
    pub op: CmpOp,
    /// In the metric's unit: milliseconds for latencies, a fraction (0..1) for
    /// error_rate, requests/s for rate, a count for requests.
    pub value: f64,
    /// The threshold as the user wrote it, e.g. `< 100ms`.
    pub source: String,
}

/// Metrics a threshold can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    P50,
    P90,
    P95,
    P99,
    P999,
    Max,
    Mean,
    ErrorRate,
    Rate,
    Requests,
    /// Failed requests in the phase, a count (`errors: "== 0"`).
    Errors,
    /// Average host CPU over the phase (telemetry), a fraction of all cores.
    HostCpu,
    /// Average host memory in use over the phase, a fraction of the total.
    HostMemory,
}

impl Metric {
    /// Every metric, in display order.
    pub const ALL: [Metric; 13] = [
        Metric::P50,
        Metric::P90,
        Metric::P95,
        Metric::P99,
        Metric::P999,
        Metric::Max,
        Metric::Mean,
        Metric::ErrorRate,
        Metric::Rate,
        Metric::Requests,
        Metric::Errors,
        Metric::HostCpu,
        Metric::HostMemory,
    ];

    /// The YAML key (`p99`, `error_rate`, ...).
    pub fn key(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P90 => "p90",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::P999 => "p99.9",
            Metric::Max => "max",
            Metric::Mean => "mean",
            Metric::ErrorRate => "error_rate",
            Metric::Rate => "rate",
            Metric::Requests => "requests",
            Metric::Errors => "errors",
            Metric::HostCpu => "host_cpu",
            Metric::HostMemory => "host_memory",
        }
    }

    pub fn from_key(key: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.key() == key)
    }

    pub fn unit(self) -> MetricUnit {
        match self {
            Metric::ErrorRate | Metric::HostCpu | Metric::HostMemory => MetricUnit::Fraction,
            Metric::Rate => MetricUnit::PerSecond,
            Metric::Requests | Metric::Errors => MetricUnit::Count,
            _ => MetricUnit::Millis,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    Millis,
    Fraction,
    PerSecond,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    /// `==`: for counts (`errors: "== 0"`); on measured floats it means
    /// equal within 1e-9.
    Eq,
}

impl CmpOp {
    /// The operator at the start of `text` and the rest: `<=`, `>=`, `==`,
    /// `<`, `>` (longest first). One parser for thresholds, probes and
    /// stop conditions.
    pub fn split(text: &str) -> Option<(CmpOp, &str)> {
        [
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("==", CmpOp::Eq),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
        ]
        .into_iter()
        .find_map(|(sym, op)| text.trim_start().strip_prefix(sym).map(|rest| (op, rest)))
    }

    pub fn holds(self, observed: f64, bound: f64) -> bool {
        match self {
            CmpOp::Lt => observed < bound,
            CmpOp::Le => observed <= bound,
            CmpOp::Gt => observed > bound,
            CmpOp::Ge => observed >= bound,
            CmpOp::Eq => (observed - bound).abs() < 1e-9,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
        }
    }
}
