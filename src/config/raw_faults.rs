//! The raw YAML form of each fault kind's own fields (the `type`-tagged
//! [`RawFault`](super::raw::RawFault) enum is in `raw`): the network toxics,
//! the HTTP faults, `command`, and the host faults (`cpu`, `memory`, `kill`).
//! As everywhere in the raw layer, every field is an optional [`Scalar`]
//! that validation parses and explains.

use schemars::JsonSchema;
use serde::Deserialize;

use super::raw::Scalar;

// The network faults: one struct per toxic so each accepts exactly its own
// attributes (Toxiproxy's names). `proxy`, `stream` and `toxicity` repeat
// because serde cannot combine `flatten` with `deny_unknown_fields`.

/// `latency`: `latency`, `jitter`, `distribution`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Latency")]
pub struct RawLatency {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// `downstream` (server → client, default) or `upstream`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["downstream"]))]
    pub stream: Option<Scalar>,
    /// Share of connections affected, decided per connection (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["50%"]))]
    pub toxicity: Option<Scalar>,
    /// Delay added to every chunk of data.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["200ms"]))]
    pub latency: Option<Scalar>,
    /// Random variation around the delay (±).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["20ms"]))]
    pub jitter: Option<Scalar>,
    /// `uniform` (default), `normal` or `pareto` (a heavy tail).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["uniform"]))]
    pub distribution: Option<Scalar>,
}

/// `bandwidth`: `rate` (KB/s).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Bandwidth")]
pub struct RawBandwidth {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// `downstream` (server → client, default) or `upstream`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["downstream"]))]
    pub stream: Option<Scalar>,
    /// Share of connections affected, decided per connection (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["50%"]))]
    pub toxicity: Option<Scalar>,
    /// Throughput limit: `100KB/s` or a number of KB/s.
    #[schemars(with = "Option<super::schema::Number>", extend("examples" = ["100KB/s", 100]))]
    pub rate: Option<Scalar>,
}

/// `slow_close`: `delay`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SlowClose")]
pub struct RawSlowClose {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// `downstream` (server → client, default) or `upstream`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["downstream"]))]
    pub stream: Option<Scalar>,
    /// Share of connections affected, decided per connection (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["50%"]))]
    pub toxicity: Option<Scalar>,
    /// Delay before the connection is closed.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["2s"]))]
    pub delay: Option<Scalar>,
}

/// `timeout` and `reset_peer`: `timeout`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "TimeoutToxic")]
pub struct RawTimeout {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// `downstream` (server → client, default) or `upstream`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["downstream"]))]
    pub stream: Option<Scalar>,
    /// Share of connections affected, decided per connection (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["50%"]))]
    pub toxicity: Option<Scalar>,
    /// `timeout`: close after this long (`0s` = never); `reset_peer`: drop the first data, then reset (RST) this long after it (`0s` = at once); an idle connection is never reset.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["5s", "0s"]))]
    pub timeout: Option<Scalar>,
}

/// `slicer`: `average_size`, `size_variation`, `delay`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Slicer")]
pub struct RawSlicer {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// `downstream` (server → client, default) or `upstream`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["downstream"]))]
    pub stream: Option<Scalar>,
    /// Share of connections affected, decided per connection (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["50%"]))]
    pub toxicity: Option<Scalar>,
    /// Average chunk size in bytes.
    #[schemars(with = "Option<super::schema::Number>", extend("examples" = [64]))]
    pub average_size: Option<Scalar>,
    /// Variation of the chunk size in bytes.
    #[schemars(with = "Option<super::schema::Number>", extend("examples" = [16]))]
    pub size_variation: Option<Scalar>,
    /// Delay between chunks.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["100us"]))]
    pub delay: Option<Scalar>,
}

/// `limit_data`: `bytes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "LimitData")]
pub struct RawLimitData {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// `downstream` (server → client, default) or `upstream`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["downstream"]))]
    pub stream: Option<Scalar>,
    /// Share of connections affected, decided per connection (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["50%"]))]
    pub toxicity: Option<Scalar>,
    /// Close the connection after this many bytes.
    #[schemars(with = "Option<super::schema::Size>", extend("examples" = ["64KiB"]))]
    pub bytes: Option<Scalar>,
}

/// `down`: the proxy closes its listener (connects are refused) and its live connections; it listens again on the same port when removed.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Down")]
pub struct RawDown {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
}

/// `match` of an HTTP fault.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Match")]
pub struct RawMatch {
    /// HTTP method to match.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["POST"]))]
    pub method: Option<Scalar>,
    /// Path glob (`*`, `?`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["/pay*"]))]
    pub path: Option<Scalar>,
    /// Headers that must be present with these values.
    #[schemars(with = "Option<super::schema::Headers>", extend("examples" = [{"x-user": "alice"}]))]
    pub headers: Option<serde_yaml::Mapping>,
}

/// `http_error`: `status`, `body`, `retry_after`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HttpError")]
pub struct RawHttpError {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// Share of requests affected, decided per request (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["10%"]))]
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    /// Which requests the fault applies to (all by default).
    #[schemars(extend("examples" = [{"path": "/pay*"}]))]
    pub matcher: Option<RawMatch>,
    /// Status answered at once (the upstream is not called).
    #[schemars(with = "Option<super::schema::Status>", extend("examples" = [503]))]
    pub status: Option<Scalar>,
    /// Body of the answer.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments unavailable"]))]
    pub body: Option<Scalar>,
    /// A `Retry-After` header.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["2s"]))]
    pub retry_after: Option<Scalar>,
}

/// `http_delay`: `delay`, `jitter`, `distribution`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "HttpDelay")]
pub struct RawHttpDelay {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// Share of requests affected, decided per request (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["10%"]))]
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    /// Which requests the fault applies to (all by default).
    #[schemars(extend("examples" = [{"path": "/pay*"}]))]
    pub matcher: Option<RawMatch>,
    /// Wait before forwarding the request.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["300ms"]))]
    pub delay: Option<Scalar>,
    /// Random variation around the delay (±).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["20ms"]))]
    pub jitter: Option<Scalar>,
    /// `uniform` (default), `normal` or `pareto` (a heavy tail).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["uniform"]))]
    pub distribution: Option<Scalar>,
}

/// `abort`: `when` (`before_response` or `mid_body`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Abort")]
pub struct RawAbort {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// Share of requests affected, decided per request (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["10%"]))]
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    /// Which requests the fault applies to (all by default).
    #[schemars(extend("examples" = [{"path": "/pay*"}]))]
    pub matcher: Option<RawMatch>,
    /// `before_response` or `mid_body`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["before_response"]))]
    pub when: Option<Scalar>,
}

/// `corrupt`: `mode` and `fields`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Corrupt")]
pub struct RawCorrupt {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// Share of requests affected, decided per request (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["10%"]))]
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    /// Which requests the fault applies to (all by default).
    #[schemars(extend("examples" = [{"path": "/pay*"}]))]
    pub matcher: Option<RawMatch>,
    /// `truncate`, `flip_bytes` or `null_fields`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["null_fields"]))]
    pub mode: Option<Scalar>,
    /// JSON fields set to null (dotted paths allowed).
    #[schemars(with = "Option<Vec<super::schema::Text>>", extend("examples" = [["email", "card.number"]]))]
    pub fields: Option<Vec<Scalar>>,
}

/// `rate_limit`: `rate`, `burst`, `status`, `key_header`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RateLimit")]
pub struct RawRateLimit {
    /// The proxy the fault acts on (the demo brings `payments` and `payments-canary`).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["payments"]))]
    pub proxy: Option<Scalar>,
    /// Share of requests the limit applies to, decided per request (default 100%).
    #[schemars(with = "Option<super::schema::Percent>", extend("examples" = ["100%"]))]
    pub probability: Option<Scalar>,
    #[serde(rename = "match")]
    /// Which requests count against the limit (all by default).
    #[schemars(extend("examples" = [{"path": "/pay*"}]))]
    pub matcher: Option<RawMatch>,
    /// Requests per second let through (`20`, `20/s`, `20 rps`).
    #[schemars(with = "Option<super::schema::PerSecond>", extend("examples" = ["20/s", 20]))]
    pub rate: Option<Scalar>,
    /// Requests let through at once after a quiet spell (default: one second of `rate`).
    #[schemars(with = "Option<super::schema::Integer>", extend("examples" = [5]))]
    pub burst: Option<Scalar>,
    /// Status of a limited request (default 429), sent with `Retry-After`.
    #[schemars(with = "Option<super::schema::Status>", extend("examples" = [429]))]
    pub status: Option<Scalar>,
    /// A request header whose value gets its own limit (e.g. an API key);
    /// without it, or without the header, one limit for all.
    #[schemars(with = "Option<super::schema::HeaderName>", extend("examples" = ["x-api-key"]))]
    pub key_header: Option<Scalar>,
}

/// Fields are all [`Scalar`]s: inside an internally tagged enum serde loses
/// the field path, so type errors are left to validation, which knows it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(
    rename = "CommandFault",
    description = "`command`: `run` at phase start, `rollback` at phase end, each with a `timeout`."
)]
pub struct RawCommandFault {
    /// Run on an agent's host instead of locally.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["db-host"]))]
    pub host: Option<Scalar>,
    /// Shell command run at phase start.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["systemctl stop redis"]))]
    pub run: Option<Scalar>,
    /// Shell command run at phase end (and on every way out).
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["systemctl start redis"]))]
    pub rollback: Option<Scalar>,
    /// Time limit of each command (default 30s).
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["30s"]))]
    pub timeout: Option<Scalar>,
}

/// `cpu`: `load` per core on `cores` cores (default all).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Cpu")]
pub struct RawCpu {
    /// An agent's name (from `agents`) to act on that host instead of this one.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["db-host"]))]
    pub host: Option<Scalar>,
    /// Busy share of each core.
    #[schemars(with = "Option<super::schema::PercentOnly>", extend("examples" = ["80%"]))]
    pub load: Option<Scalar>,
    /// Number of cores kept busy (default all).
    #[schemars(with = "Option<super::schema::Integer>", extend("examples" = [1]))]
    pub cores: Option<Scalar>,
}

/// `memory`: `size` or `percent` of total memory, optionally ramped.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Memory")]
pub struct RawMemory {
    /// An agent's name (from `agents`) to act on that host instead of this one.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["db-host"]))]
    pub host: Option<Scalar>,
    /// Memory to allocate and hold.
    #[schemars(with = "Option<super::schema::Size>", extend("examples" = ["256MiB"]))]
    pub size: Option<Scalar>,
    /// ... or this share of the host's total memory.
    #[schemars(with = "Option<super::schema::PercentOnly>", extend("examples" = ["20%"]))]
    pub percent: Option<Scalar>,
    /// Allocate gradually over this long.
    #[schemars(with = "Option<super::schema::Duration>", extend("examples" = ["5s"]))]
    pub ramp: Option<Scalar>,
    /// Allow more than 80% of memory or leaving less than 1 GiB available.
    #[schemars(with = "Option<super::schema::Flag>", extend("examples" = [false]))]
    pub force: Option<Scalar>,
}

/// `kill`: a signal to the target (default), a pidfile's process or a process by name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Kill")]
pub struct RawKill {
    /// An agent's name (from `agents`) to act on that host instead of this one.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["db-host"]))]
    pub host: Option<Scalar>,
    /// `TERM`, `KILL`, `STOP` (undone with `CONT`) or `CONT`.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["KILL"]))]
    pub signal: Option<Scalar>,
    /// Signal the process in this pidfile instead of the target.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["/run/redis.pid"]))]
    pub pidfile: Option<Scalar>,
    /// Signal every process with this exact name instead of the target.
    #[schemars(with = "Option<super::schema::Text>", extend("examples" = ["redis-server"]))]
    pub name: Option<Scalar>,
    /// Start the target again when the fault is removed: at phase end, or `for` after the kill.
    #[schemars(with = "Option<super::schema::Flag>", extend("examples" = [true]))]
    pub restart: Option<Scalar>,
}
