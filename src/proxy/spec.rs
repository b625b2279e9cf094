//! What can be done to a proxy: toxics (byte-level, Toxiproxy's vocabulary)
//! and HTTP faults (request-level, `mode: http` proxies only).
//!
//! These are plain data, shared by the YAML layer, the admin API and the
//! proxy itself. The JSON forms follow Toxiproxy's admin API exactly
//! (`{"name", "type", "stream", "toxicity", "attributes": {...}}`) so its
//! clients work against `faultline proxy` unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Direction of the bytes a toxic acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client → server.
    Upstream,
    /// Server → client (Toxiproxy's default).
    Downstream,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
        }
    }
}

/// Shape of the random part of a delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Distribution {
    /// `latency ± jitter`, uniform (Toxiproxy's behaviour).
    #[default]
    Uniform,
    /// `latency + N(0, jitter)`, clamped at 0.
    Normal,
    /// `latency + jitter · (X − 1)` with X Pareto(1, 2.5): a heavy tail above `latency`.
    Pareto,
}

impl Distribution {
    pub fn as_str(self) -> &'static str {
        match self {
            Distribution::Uniform => "uniform",
            Distribution::Normal => "normal",
            Distribution::Pareto => "pareto",
        }
    }
}

/// One toxic on one proxy, as Toxiproxy defines it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToxicSpec {
    /// Unique per proxy; Toxiproxy's default is `<type>_<stream>`.
    pub name: String,
    pub stream: Direction,
    /// Probability (0..=1) that a connection is affected, decided per
    /// connection when the toxic first meets it (Toxiproxy semantics).
    pub toxicity: f64,
    pub kind: ToxicKind,
}

/// The toxics and their attributes (units as in Toxiproxy).
#[derive(Debug, Clone, PartialEq)]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ms ± `jitter` ms.
    Latency {
        latency: u64,
        jitter: u64,
        distribution: Distribution,
    },
    /// Limit throughput to `rate` KB/s.
    Bandwidth { rate: u64 },
    /// Delay the close of the connection by `delay` ms.
    SlowClose { delay: u64 },
    /// Let no data through; close after `timeout` ms (never when 0).
    Timeout { timeout: u64 },
    /// Reset the connection (TCP RST) after `timeout` ms.
    ResetPeer { timeout: u64 },
    /// Split data into chunks of `average_size` ± `size_variation` bytes,
    /// `delay` µs apart.
    Slicer {
        average_size: u64,
        size_variation: u64,
        delay: u64,
    },
    /// Close the connection after `bytes` bytes.
    LimitData { bytes: u64 },
}

impl ToxicKind {
    /// Every toxic type name, for messages and did-you-mean.
    pub const TYPES: [&'static str; 7] = [
        "latency",
        "bandwidth",
        "slow_close",
        "timeout",
        "reset_peer",
        "slicer",
        "limit_data",
    ];

    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::SlowClose { .. } => "slow_close",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }

    /// The Toxiproxy `attributes` object.
    pub fn attributes(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        match self {
            ToxicKind::Latency {
                latency,
                jitter,
                distribution,
            } => {
                put("latency", (*latency).into());
                put("jitter", (*jitter).into());
                if *distribution != Distribution::Uniform {
                    put("distribution", distribution.as_str().into());
                }
            }
            ToxicKind::Bandwidth { rate } => put("rate", (*rate).into()),
            ToxicKind::SlowClose { delay } => put("delay", (*delay).into()),
            ToxicKind::Timeout { timeout } | ToxicKind::ResetPeer { timeout } => {
                put("timeout", (*timeout).into())
            }
            ToxicKind::Slicer {
                average_size,
                size_variation,
                delay,
            } => {
                put("average_size", (*average_size).into());
                put("size_variation", (*size_variation).into());
                put("delay", (*delay).into());
            }
            ToxicKind::LimitData { bytes } => put("bytes", (*bytes).into()),
        }
        m
    }

    /// Builds a toxic from its Toxiproxy type name and attributes. Missing
    /// attributes take Toxiproxy's zero defaults; unknown ones are ignored
    /// (as Toxiproxy does); a wrong type, a number that is not an integer
    /// or not within `0..=i64::MAX` is an error ([`attribute_integer`]).
    pub fn from_attributes(
        type_name: &str,
        attrs: &Map<String, Value>,
    ) -> Result<ToxicKind, SpecError> {
        let num = |key: &str| -> Result<u64, SpecError> {
            match attrs.get(key) {
                None | Some(Value::Null) => Ok(0),
                Some(Value::Number(n)) => attribute_integer(key, n),
                Some(other) => Err(SpecError::Attribute {
                    key: key.to_string(),
                    message: format!("must be a number, got {other}"),
                }),
            }
        };
        Ok(match type_name {
            "latency" => ToxicKind::Latency {
                latency: num("latency")?,
                jitter: num("jitter")?,
                distribution: match attrs.get("distribution") {
                    None | Some(Value::Null) => Distribution::Uniform,
                    Some(v) => {
                        serde_json::from_value(v.clone()).map_err(|_| SpecError::Attribute {
                            key: "distribution".into(),
                            message: format!("must be `uniform`, `normal` or `pareto`, got {v}"),
                        })?
                    }
                },
            },
            "bandwidth" => ToxicKind::Bandwidth { rate: num("rate")? },
            "slow_close" => ToxicKind::SlowClose {
                delay: num("delay")?,
            },
            "timeout" => ToxicKind::Timeout {
                timeout: num("timeout")?,
            },
            "reset_peer" => ToxicKind::ResetPeer {
                timeout: num("timeout")?,
            },
            "slicer" => ToxicKind::Slicer {
                average_size: num("average_size")?,
                size_variation: num("size_variation")?,
                delay: num("delay")?,
            },
            "limit_data" => ToxicKind::LimitData {
                bytes: num("bytes")?,
            },
            other => return Err(SpecError::UnknownType(other.to_string())),
        })
    }
}

/// Longest proxy, toxic or HTTP-fault name the admin API takes, in bytes.
/// Names travel in URL paths (`/proxies/{name}/toxics/{toxic}`): a much
/// longer one would be created, then unreachable (414 on every URL naming it).
pub const MAX_NAME_BYTES: usize = 255;

/// Refuses a name longer than [`MAX_NAME_BYTES`]; `what` is `toxic`, ….
pub fn check_name_length(what: &str, name: &str) -> Result<(), SpecError> {
    if name.len() > MAX_NAME_BYTES {
        return Err(SpecError::Invalid(format!(
            "the {what} name is {} bytes; at most {MAX_NAME_BYTES} are allowed",
            name.len()
        )));
    }
    Ok(())
}

/// A toxic attribute as Toxiproxy's Go decoder takes it into an `int64`: an
/// integer literal (`500.5`, `5e2` and `1e30` are refused, never rounded or
/// saturated) no larger than `i64::MAX`. Negative values, which Go would
/// take and the toxic would treat as zero, are refused too: a negative
/// latency or rate is a typo, not a fault.
pub fn attribute_integer(key: &str, n: &serde_json::Number) -> Result<u64, SpecError> {
    let refuse = |message: String| SpecError::Attribute {
        key: key.to_string(),
        message,
    };
    match (n.as_u64(), n.as_i64()) {
        (Some(v), _) if i64::try_from(v).is_ok() => Ok(v),
        (Some(_), _) => Err(refuse(format!(
            "must fit a 64-bit signed integer (as in Toxiproxy), got {n}"
        ))),
        (None, Some(_)) => Err(refuse(format!("must be non-negative, got {n}"))),
        (None, None) => Err(refuse(format!(
            "must be an integer (Toxiproxy's attributes are int64), got {n}"
        ))),
    }
}

/// Why a toxic or HTTP fault description was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpecError {
    #[error("unknown toxic type `{0}`")]
    UnknownType(String),
    #[error("attribute `{key}` {message}")]
    Attribute { key: String, message: String },
    #[error("`stream` must be `upstream` or `downstream`, got `{0}`")]
    Stream(String),
    #[error("`toxicity` must be between 0 and 1, got {0}")]
    Toxicity(f64),
    #[error("{0}")]
    Invalid(String),
}

/// The Toxiproxy JSON form of a toxic (also what `POST .../toxics` takes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToxicJson {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toxicity: Option<f64>,
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

impl ToxicSpec {
    /// Validates a Toxiproxy JSON toxic, applying Toxiproxy's defaults
    /// (stream `downstream`, toxicity 1, name `<type>_<stream>`).
    pub fn from_json(json: &ToxicJson) -> Result<ToxicSpec, SpecError> {
        let stream = match json.stream.as_deref() {
            None | Some("") | Some("downstream") => Direction::Downstream,
            Some("upstream") => Direction::Upstream,
            Some(other) => return Err(SpecError::Stream(other.to_string())),
        };
        let toxicity = json.toxicity.unwrap_or(1.0);
        if !(0.0..=1.0).contains(&toxicity) {
            return Err(SpecError::Toxicity(toxicity));
        }
        let kind = ToxicKind::from_attributes(&json.kind, &json.attributes)?;
        let name = match json.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{}_{}", json.kind, stream.as_str()),
        };
        check_name_length("toxic", &name)?;
        Ok(ToxicSpec {
            name,
            stream,
            toxicity,
            kind,
        })
    }

    pub fn to_json(&self) -> ToxicJson {
        ToxicJson {
            name: Some(self.name.clone()),
            kind: self.kind.type_name().to_string(),
            stream: Some(self.stream.as_str().to_string()),
            toxicity: Some(self.toxicity),
            attributes: self.kind.attributes(),
        }
    }
}

/// Which requests an HTTP fault applies to. Empty fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestMatch {
    /// Exact method, e.g. `POST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Glob on the path (`*`, `?`), e.g. `/pay*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Headers that must be present with exactly these values (names case-insensitive).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
}

impl RequestMatch {
    pub fn matches(
        &self,
        method: &str,
        path: &str,
        header: impl Fn(&str) -> Option<String>,
    ) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self
                .path
                .as_deref()
                .is_none_or(|p| crate::glob::matches(p, path))
            && self
                .headers
                .iter()
                .all(|(k, v)| header(k).is_some_and(|got| &got == v))
    }
}

/// One HTTP-level fault on a `mode: http` proxy (faultline extension of the
/// Toxiproxy API, at `/proxies/{name}/http_faults`).
// No `deny_unknown_fields`: serde cannot combine it with `flatten`. The
// YAML layer checks keys strictly; the admin API, like Toxiproxy, ignores extras.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpFaultSpec {
    pub name: String,
    /// Probability (0..=1) that a matching *request* is affected (decided per
    /// request, unlike a toxic's per-connection `toxicity`).
    #[serde(default = "one")]
    pub probability: f64,
    #[serde(default, rename = "match")]
    pub matcher: RequestMatch,
    #[serde(flatten)]
    pub action: HttpAction,
}

fn one() -> f64 {
    1.0
}

fn too_many_requests() -> u16 {
    429
}

/// What an HTTP fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HttpAction {
    /// Answer at once with `status` (the upstream is not called).
    HttpError {
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// Seconds, sent as `Retry-After` (e.g. with 429 or 503).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
    /// Wait before forwarding: `delay` ms ± `jitter` ms.
    HttpDelay {
        delay: u64,
        #[serde(default)]
        jitter: u64,
        #[serde(default)]
        distribution: Distribution,
    },
    /// Close the client connection without a response (`before_response`)
    /// or after part of the body (`mid_body`).
    Abort {
        #[serde(default)]
        when: AbortPoint,
    },
    /// Answer `status` (429) with `Retry-After` once matching requests
    /// exceed `rate` per second, with bursts of up to `burst` (a token
    /// bucket, one per value of the `key_header` request header, or one for
    /// all requests without it). Requests within the limit are forwarded.
    RateLimit {
        rate: f64,
        /// 0: one second's worth of `rate` (at least 1).
        #[serde(default)]
        burst: u64,
        #[serde(default = "too_many_requests")]
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_header: Option<String>,
    },
    /// Damage the response body.
    Corrupt {
        #[serde(default)]
        mode: CorruptMode,
        /// For `null_fields`: top-level (or dotted) JSON fields set to null.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        fields: Vec<String>,
    },
}

impl HttpAction {
    pub const TYPES: [&'static str; 5] =
        ["http_error", "http_delay", "abort", "corrupt", "rate_limit"];

    pub fn type_name(&self) -> &'static str {
        match self {
            HttpAction::HttpError { .. } => "http_error",
            HttpAction::HttpDelay { .. } => "http_delay",
            HttpAction::Abort { .. } => "abort",
            HttpAction::Corrupt { .. } => "corrupt",
            HttpAction::RateLimit { .. } => "rate_limit",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AbortPoint {
    #[default]
    BeforeResponse,
    MidBody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorruptMode {
    /// Cut the body in half (Content-Length adjusted: a valid but short response).
    #[default]
    Truncate,
    /// Flip bits in a few bytes of the body.
    FlipBytes,
    /// Set `fields` to null in a JSON body.
    NullFields,
}

impl HttpFaultSpec {
    /// Checks values serde cannot (ranges, required fields per mode).
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.name.is_empty() {
            return Err(SpecError::Invalid("`name` must not be empty".into()));
        }
        check_name_length("http fault", &self.name)?;
        // As for toxics: what Toxiproxy's int64 could hold, nothing wrapped.
        let too_big = |v: u64| i64::try_from(v).is_err();
        if let HttpAction::HttpDelay { delay, jitter, .. } = &self.action {
            if too_big(*delay) || too_big(*jitter) {
                return Err(SpecError::Invalid(
                    "`delay` and `jitter` must fit a 64-bit signed integer".into(),
                ));
            }
        }
        if let HttpAction::HttpError {
            retry_after: Some(r),
            ..
        } = &self.action
        {
            if too_big(*r) {
                return Err(SpecError::Invalid(
                    "`retry_after` must fit a 64-bit signed integer".into(),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(SpecError::Invalid(format!(
                "`probability` must be between 0 and 1, got {}",
                self.probability
            )));
        }
        match &self.action {
            // A final 1xx response cannot be sent (hyper turns it into a 500).
            HttpAction::HttpError { status, .. } if !(200..=599).contains(status) => Err(
                SpecError::Invalid(format!("`status` must be 200..=599, got {status}")),
            ),
            HttpAction::Corrupt {
                mode: CorruptMode::NullFields,
                fields,
            } if fields.is_empty() => Err(SpecError::Invalid(
                "`corrupt` with mode `null_fields` needs `fields`".into(),
            )),
            HttpAction::RateLimit {
                rate,
                burst,
                status,
                key_header,
            } => crate::proxy::rate_limit::check(*rate, *burst, *status, key_header.as_deref())
                .map_err(SpecError::Invalid),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_toxiproxy_json_toxic_round_trips_with_defaults() {
        let json: ToxicJson = serde_json::from_value(json!({
            "type": "latency", "attributes": { "latency": 100, "jitter": 10 }
        }))
        .expect("valid json");
        let spec = ToxicSpec::from_json(&json).expect("valid toxic");
        assert_eq!(spec.name, "latency_downstream");
        assert_eq!(spec.stream, Direction::Downstream);
        assert_eq!(spec.toxicity, 1.0);
        assert_eq!(
            spec.kind,
            ToxicKind::Latency {
                latency: 100,
                jitter: 10,
                distribution: Distribution::Uniform
            }
        );
        let back = serde_json::to_value(spec.to_json()).expect("serializes");
        assert_eq!(
            back,
            json!({"name": "latency_downstream", "type": "latency", "stream": "downstream",
                   "toxicity": 1.0, "attributes": {"latency": 100, "jitter": 10}})
        );
    }

    #[test]
    fn bad_toxics_are_refused_with_a_reason() {
        let cases = [
            (json!({"type": "latensy"}), "unknown toxic type"),
            (json!({"type": "latency", "stream": "sideways"}), "stream"),
            (json!({"type": "latency", "toxicity": 1.5}), "toxicity"),
            (
                json!({"type": "latency", "attributes": {"latency": -5}}),
                "non-negative",
            ),
            (
                json!({"type": "latency", "attributes": {"latency": 500.5}}),
                "must be an integer",
            ),
            (
                json!({"type": "latency", "attributes": {"latency": 500.0}}),
                "must be an integer",
            ),
            (
                json!({"type": "bandwidth", "attributes": {"rate": 1e30}}),
                "must be an integer",
            ),
            (
                json!({"type": "limit_data", "attributes": {"bytes": u64::MAX}}),
                "64-bit signed integer",
            ),
            (
                json!({"type": "latency", "name": "t".repeat(MAX_NAME_BYTES + 1)}),
                "at most 255",
            ),
            (
                json!({"type": "bandwidth", "attributes": {"rate": "fast"}}),
                "must be a number",
            ),
            (
                json!({"type": "latency", "attributes": {"distribution": "zipf"}}),
                "pareto",
            ),
        ];
        for (input, want) in cases {
            let json: ToxicJson = serde_json::from_value(input.clone()).expect("shape ok");
            let err = ToxicSpec::from_json(&json)
                .expect_err("refused")
                .to_string();
            assert!(err.contains(want), "{input}: {err}");
        }
    }

    #[test]
    fn http_faults_parse_from_their_json_form() {
        let f: HttpFaultSpec = serde_json::from_value(json!({
            "name": "pay-503", "type": "http_error", "status": 503, "probability": 0.3,
            "retry_after": 2, "match": {"path": "/pay*", "method": "POST"}
        }))
        .expect("valid");
        assert_eq!(
            f.action,
            HttpAction::HttpError {
                status: 503,
                body: None,
                retry_after: Some(2)
            }
        );
        assert!(f.matcher.matches("POST", "/pay/1", |_| None));
        assert!(!f.matcher.matches("GET", "/pay/1", |_| None));
        assert!(!f.matcher.matches("POST", "/health", |_| None));
        f.validate().expect("valid values");
        let bad: HttpFaultSpec = serde_json::from_value(json!({
            "name": "x", "type": "corrupt", "mode": "null_fields"
        }))
        .expect("shape ok");
        assert!(bad.validate().is_err());
    }

    #[test]
    fn header_matches_need_the_exact_value() {
        let m = RequestMatch {
            headers: [("x-user".to_string(), "alice".to_string())].into(),
            ..RequestMatch::default()
        };
        assert!(m.matches("GET", "/", |h| (h == "x-user").then(|| "alice".into())));
        assert!(!m.matches("GET", "/", |h| (h == "x-user").then(|| "bob".into())));
        assert!(!m.matches("GET", "/", |_| None));
    }
}
