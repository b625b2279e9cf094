//! Serde mirror of `safety:` (in an experiment, or a suite's for all of its
//! experiments): where a run may go, how big it may be, and when it must
//! stop by itself.

use schemars::JsonSchema;
use serde::Deserialize;

use super::raw::{List, Scalar};

/// Guard rails for staging game days and careful production runs.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Safety")]
pub struct RawSafety {
    /// Free text naming where this runs: `local`, `staging`, `production`.
    /// `production` is refused unless the file says `allow_production: true`
    /// and the command line has `--allow-production`.
    #[schemars(extend("examples" = ["staging"]))]
    pub environment: Option<String>,
    /// One of the two switches a production run needs (the other is `--allow-production`).
    #[schemars(extend("examples" = [false]))]
    pub allow_production: Option<bool>,
    /// Hosts the run may reach besides loopback (targets, proxy upstreams,
    /// Toxiproxy servers, agents, probes); `*.example.com` matches subdomains.
    #[schemars(with = "Option<Vec<String>>", extend("examples" = [["staging.example.com", "*.svc.cluster.local"]]))]
    pub allowed_hosts: Option<List<String>>,
    /// The longest the experiment (or, in a suite, the whole suite) may run.
    #[schemars(with = "Option<super::schema::PositiveDuration>", extend("examples" = ["10m"]))]
    pub max_duration: Option<Scalar>,
    /// The highest request rate (requests/s) the file may ask for.
    #[schemars(with = "Option<super::schema::Number>", extend("examples" = [500]))]
    pub max_rate: Option<Scalar>,
    /// Stop conditions, evaluated every second; the first to hold for its
    /// `for` aborts the run (faults rolled back, exit 3).
    #[schemars(with = "Option<Vec<RawStopCondition>>", extend("examples" = [[{"error_rate": "> 50%", "for": "5s"}]]))]
    pub abort_if: Option<List<RawStopCondition>>,
}

/// `{ error_rate: "> 50%", for: 5s }` or `{ probe: slo-alert, for: 2s }`:
/// exactly one condition.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "StopCondition")]
pub struct RawStopCondition {
    /// Error rate of the last second, e.g. `> 50%`.
    #[schemars(with = "Option<super::schema::ShareThreshold>", extend("examples" = ["> 50%"]))]
    pub error_rate: Option<Scalar>,
    /// Median response time of the last second, e.g. `> 1s`.
    #[schemars(with = "Option<super::schema::LatencyThreshold>", extend("examples" = ["> 1s"]))]
    pub p50: Option<Scalar>,
    /// 99th percentile of the last second, e.g. `> 5s`.
    #[schemars(with = "Option<super::schema::LatencyThreshold>", extend("examples" = ["> 5s"]))]
    pub p99: Option<Scalar>,
    /// Completed requests in the last second, e.g. `< 10/s`.
    #[schemars(with = "Option<super::schema::RateThreshold>", extend("examples" = ["< 10/s"]))]
    pub rate: Option<Scalar>,
    /// A probe (declared under `probes:`) that fails, e.g. an SLO alert firing.
    #[schemars(extend("examples" = ["slo-alert"]))]
    pub probe: Option<String>,
    /// How long the condition must hold, second after second (default 1s).
    #[serde(rename = "for")]
    #[schemars(with = "Option<super::schema::PositiveDuration>", extend("examples" = ["5s"]))]
    pub hold: Option<Scalar>,
}

/// `notify: { webhook: URL }`: where a game day's events are posted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Notify")]
pub struct RawNotify {
    /// Receives a JSON POST (with a Slack-compatible `text` field) at run
    /// start, each fault applied and removed, an abort, and the end.
    #[schemars(extend("examples" = ["https://hooks.slack.com/services/T000/B000/XXXX"]))]
    pub webhook: Option<String>,
}
