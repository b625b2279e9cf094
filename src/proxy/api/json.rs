//! The JSON bodies of the admin API: what requests carry in, what answers
//! carry out. Field names and order are Toxiproxy's; `mode` and
//! `http_faults` are faultline's additions (clients ignore unknown fields).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::proxy::registry::{ProxyDef, ProxyInfo, ProxyPatch};
use crate::proxy::spec::{HttpFaultSpec, ToxicJson, ToxicSpec};
use crate::proxy::{ProxyMode, ProxyStats};

/// Where a proxy listens when the request names no address: loopback and
/// a free port. (Toxiproxy binds `""`, every interface, which exposes the
/// proxy to the network by default.)
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// A proxy as the API shows it.
#[derive(Debug, Serialize)]
pub(super) struct ProxyOut {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
    toxics: Vec<ToxicJson>,
    mode: &'static str,
    http_faults: Vec<HttpFaultSpec>,
    stats: ProxyStats,
}

impl From<ProxyInfo> for ProxyOut {
    fn from(info: ProxyInfo) -> ProxyOut {
        ProxyOut {
            name: info.name,
            listen: info.listen.to_string(),
            upstream: info.upstream,
            enabled: info.enabled,
            toxics: info.toxics.iter().map(ToxicSpec::to_json).collect(),
            mode: mode_name(info.mode),
            http_faults: info.http_faults,
            stats: info.stats,
        }
    }
}

/// The body of `POST /proxies` and each element of `POST /populate`.
/// Every field is optional here so a missing one gets Toxiproxy's
/// "missing required field" message rather than serde's.
#[derive(Debug, Deserialize)]
pub(super) struct ProxyIn {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    mode: Option<String>,
}

impl ProxyIn {
    /// Validates one proxy; `at` is the 1-based position in a populate list.
    pub fn into_def(self, at: Option<usize>) -> Result<ProxyDef, ApiError> {
        let suffix = at.map(|i| format!(" at proxy {i}")).unwrap_or_default();
        let name = self.name.filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| ApiError::missing_field(format!("name{suffix}")))?;
        let upstream = self.upstream.filter(|u| !u.is_empty());
        let upstream =
            upstream.ok_or_else(|| ApiError::missing_field(format!("upstream{suffix}")))?;
        let mode = match self.mode.as_deref() {
            None | Some("") => ProxyMode::Tcp,
            Some(m) => parse_mode(m).ok_or_else(|| {
                ApiError::bad_body(format!("`mode` must be `tcp` or `http`, got `{m}`"))
            })?,
        };
        Ok(ProxyDef {
            name,
            listen: self
                .listen
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| DEFAULT_LISTEN.to_string()),
            upstream,
            enabled: self.enabled.unwrap_or(true),
            mode,
        })
    }
}

/// The body of `POST|PATCH /proxies/{name}`: absent fields keep their values.
#[derive(Debug, Deserialize)]
pub(super) struct ProxyUpdateIn {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
}

impl From<ProxyUpdateIn> for ProxyPatch {
    fn from(u: ProxyUpdateIn) -> ProxyPatch {
        ProxyPatch {
            listen: u.listen.filter(|l| !l.is_empty()),
            upstream: u.upstream.filter(|u| !u.is_empty()),
            enabled: u.enabled,
        }
    }
}

/// Parses a JSON body into `T`, or 400 `bad request body: <serde's reason>`.
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

/// Parses a body that must be one JSON object into `T`. (serde would also
/// take a struct written as an array, so `[]` would pass as "all fields absent".)
pub(super) fn parse_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    from_object(parse(body)?)
}

/// Parses a body that must be a JSON list of objects into `T`s.
pub(super) fn parse_list<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, ApiError> {
    let items: Vec<Value> = parse(body)?;
    items.into_iter().map(from_object).collect()
}

fn from_object<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::bad_body(format!(
            "expected a JSON object, got {value}"
        )));
    }
    serde_json::from_value(value).map_err(ApiError::bad_body)
}

/// A new toxic from its Toxiproxy JSON (defaults applied by the spec).
pub(super) fn new_toxic(body: &[u8]) -> Result<ToxicSpec, ApiError> {
    let mut json: ToxicJson = parse_object(body)?;
    // Toxiproxy compares the stream case-insensitively.
    json.stream = json.stream.map(|s| s.to_ascii_lowercase());
    Ok(ToxicSpec::from_json(&json)?)
}

/// Toxiproxy's toxic update: given `attributes` are merged over the current
/// ones and `toxicity` replaced if given; name, type and stream never change.
pub(super) fn updated_toxic(current: &ToxicSpec, body: &[u8]) -> Result<ToxicSpec, ApiError> {
    let patch: Map<String, Value> = parse(body)?;
    let mut json = current.to_json();
    match patch.get("attributes") {
        None | Some(Value::Null) => {}
        Some(Value::Object(attrs)) => {
            for (k, v) in attrs {
                json.attributes.insert(k.clone(), v.clone());
            }
        }
        Some(other) => {
            return Err(ApiError::bad_body(format!(
                "`attributes` must be an object, got {other}"
            )))
        }
    }
    match patch.get("toxicity") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) => json.toxicity = n.as_f64(),
        Some(other) => {
            return Err(ApiError::bad_body(format!(
                "`toxicity` must be a number, got {other}"
            )))
        }
    }
    Ok(ToxicSpec::from_json(&json)?)
}

/// A new HTTP fault: serde checks the shape, `validate` the values.
pub(super) fn new_http_fault(body: &[u8]) -> Result<HttpFaultSpec, ApiError> {
    let fault: HttpFaultSpec = parse_object(body)?;
    fault.validate()?;
    if fault.name.contains('/') {
        return Err(ApiError::bad_body("`name` must not contain `/`"));
    }
    Ok(fault)
}

pub(super) fn mode_name(mode: ProxyMode) -> &'static str {
    match mode {
        ProxyMode::Tcp => "tcp",
        ProxyMode::Http => "http",
    }
}

pub(super) fn parse_mode(s: &str) -> Option<ProxyMode> {
    match s {
        "tcp" => Some(ProxyMode::Tcp),
        "http" => Some(ProxyMode::Http),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::spec::{Direction, ToxicKind};
    use serde_json::json;

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn a_proxy_needs_a_name_and_an_upstream() {
        let cases = [
            (
                json!({"upstream": "127.0.0.1:1"}),
                "missing required field: name",
            ),
            (
                json!({"name": "", "upstream": "x:1"}),
                "missing required field: name",
            ),
            (json!({"name": "db"}), "missing required field: upstream"),
            (
                json!({"name": "db", "upstream": null}),
                "missing required field: upstream",
            ),
        ];
        for (input, want) in cases {
            let proxy: ProxyIn = parse_object(&body(input.clone())).expect("shape ok");
            let err = proxy.into_def(None).expect_err("refused");
            assert_eq!(err.message, want, "{input}");
        }
        let proxy: ProxyIn = parse_object(&body(json!({"name": "db"}))).expect("shape ok");
        let err = proxy.into_def(Some(2)).expect_err("refused");
        assert_eq!(err.message, "missing required field: upstream at proxy 2");
        let err = parse_list::<ProxyIn>(br#"[{"name": "db"}, []]"#).expect_err("refused");
        assert!(
            err.message.contains("expected a JSON object"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_proxy_defaults_to_enabled_tcp_on_a_free_loopback_port() {
        let proxy: ProxyIn = parse_object(&body(json!({
            "name": "db", "upstream": "127.0.0.1:5432", "toxics": [], "extra": 1
        })))
        .expect("unknown fields are ignored, as Toxiproxy does");
        let def = proxy.into_def(None).expect("valid");
        assert_eq!(def.listen, DEFAULT_LISTEN);
        assert!(def.enabled);
        assert_eq!(def.mode, ProxyMode::Tcp);
    }

    #[test]
    fn wrong_json_is_a_bad_request_body() {
        let cases: [&[u8]; 5] = [
            b"",
            b"{",
            b"[]",
            br#"{"name": 5, "upstream": "x:1"}"#,
            br#"{"name": "db", "upstream": "x:1", "enabled": "yes"}"#,
        ];
        for input in cases {
            let err = parse_object::<ProxyIn>(input).expect_err("refused");
            assert_eq!(err.status.as_u16(), 400);
            assert!(
                err.message.starts_with("bad request body: "),
                "{}",
                err.message
            );
        }
        let proxy: ProxyIn = parse_object(&body(
            json!({"name": "db", "upstream": "x:1", "mode": "udp"}),
        ))
        .expect("shape");
        assert!(proxy
            .into_def(None)
            .expect_err("bad mode")
            .message
            .contains("`tcp` or `http`"));
    }

    #[test]
    fn a_toxic_update_merges_attributes_and_keeps_name_type_and_stream() {
        let current = ToxicSpec::from_json(
            &serde_json::from_value(json!({
                "name": "lag", "type": "latency", "stream": "upstream",
                "attributes": {"latency": 100, "jitter": 10}
            }))
            .expect("json"),
        )
        .expect("spec");
        let updated = updated_toxic(
            &current,
            &body(
                json!({"name": "other", "type": "timeout", "stream": "downstream",
                         "toxicity": 0.5, "attributes": {"latency": 250}}),
            ),
        )
        .expect("valid update");
        assert_eq!(updated.name, "lag");
        assert_eq!(updated.stream, Direction::Upstream);
        assert_eq!(updated.toxicity, 0.5);
        assert!(matches!(
            updated.kind,
            ToxicKind::Latency {
                latency: 250,
                jitter: 10,
                ..
            }
        ));
        for bad in [
            json!({"attributes": [1]}),
            json!({"toxicity": "high"}),
            json!({"toxicity": 2}),
            json!({"attributes": {"latency": -1}}),
        ] {
            let err = updated_toxic(&current, &body(bad.clone())).expect_err("refused");
            assert_eq!(err.status.as_u16(), 400, "{bad}");
        }
    }

    #[test]
    fn a_new_toxic_takes_the_stream_in_any_case() {
        let spec = new_toxic(&body(json!({"type": "latency", "stream": "UpStream"}))).expect("ok");
        assert_eq!(spec.stream, Direction::Upstream);
        assert_eq!(spec.name, "latency_upstream");
    }
}
