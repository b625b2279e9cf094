//! The `prometheus` probe: one instant PromQL query through the HTTP API
//! (`GET /api/v1/query`); every returned sample must pass the check.
//!
//! Prometheus writes sample values as strings (`"0.05"`, `"NaN"`, `"+Inf"`)
//! and answers a bad query with `{"status": "error", "errorType": ...,
//! "error": ...}` and a 4xx/5xx status; both are read here, the second as a
//! failed observation carrying Prometheus's own words.

use serde_json::Value;

use super::check::{self, clip};
use super::http::fetch;
use super::Observation;
use crate::config::model_verify::PrometheusProbe;

/// Samples listed in an observation's value; the rest are counted.
const SHOWN_SAMPLES: usize = 10;

/// One sample of a query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// `{job="demo"}`, `up{job="demo"}`; empty for a scalar.
    pub labels: String,
    /// As Prometheus wrote it: `0.05`, `NaN`, `+Inf`.
    pub value: String,
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.labels.is_empty() {
            write!(f, "{}", self.value)
        } else {
            write!(f, "{} {}", self.labels, self.value)
        }
    }
}

/// Observes one `prometheus` probe (unbounded: the caller applies the timeout).
pub(super) async fn observe(probe: &PrometheusProbe) -> Observation {
    let url = match query_url(&probe.url, &probe.query) {
        Ok(url) => url,
        Err(reason) => return Observation::fail(None, reason),
    };
    let fetched = match fetch(&http::Method::GET, &url, &[], true).await {
        Ok(fetched) => fetched,
        Err(reason) => return Observation::fail(None, reason),
    };
    let samples = match serde_json::from_slice::<Value>(&fetched.body) {
        Ok(body) => parse_response(&body),
        Err(_) => Err(format!(
            "not a Prometheus API response (status {}): {}",
            fetched.status,
            clip(String::from_utf8_lossy(&fetched.body).trim(), 120)
        )),
    };
    match samples {
        Ok(samples) => judge(probe, &samples),
        Err(reason) => Observation::fail(None, reason),
    }
}

/// Judges every sample; lists them in the observation's value.
fn judge(probe: &PrometheusProbe, samples: &[Sample]) -> Observation {
    let check = check::describe(&probe.expect);
    if samples.is_empty() {
        return if probe.empty_passes {
            Observation::pass(None, "no data (an empty result passes)")
        } else {
            Observation::fail(None, "no data: the query returned no samples")
        };
    }
    let value = Some(list(samples.iter()));
    let failing: Vec<&Sample> = samples
        .iter()
        .filter(|s| check::judge_text(&probe.expect, &s.value).is_err())
        .collect();
    let count = |n: usize| match n {
        1 => "1 sample".to_string(),
        n => format!("{n} samples"),
    };
    if failing.is_empty() {
        Observation::pass(value, format!("{} {check}", every(samples.len())))
    } else {
        Observation::fail(
            value,
            format!(
                "{} of {} not {check}: {}",
                failing.len(),
                count(samples.len()),
                list(failing.into_iter())
            ),
        )
    }
}

/// `the sample is` / `all 3 samples are`.
fn every(n: usize) -> String {
    match n {
        1 => "the sample is".to_string(),
        n => format!("all {n} samples are"),
    }
}

/// `{job="a"} 0.5, {job="b"} 0.7` and `… and 3 more` past [`SHOWN_SAMPLES`].
fn list<'a>(samples: impl ExactSizeIterator<Item = &'a Sample>) -> String {
    let total = samples.len();
    let shown: Vec<String> = samples.take(SHOWN_SAMPLES).map(|s| s.to_string()).collect();
    match total - shown.len() {
        0 => shown.join(", "),
        more => format!("{} … and {more} more", shown.join(", ")),
    }
}

/// `{server}/api/v1/query?query=...`, the query URL-encoded.
fn query_url(server: &http::Uri, query: &str) -> Result<String, String> {
    let base = server.to_string();
    let endpoint = format!("{}/api/v1/query", base.trim_end_matches('/'));
    let mut url = reqwest::Url::parse(&endpoint)
        .map_err(|e| format!("invalid Prometheus URL {server}: {e}"))?;
    url.query_pairs_mut().append_pair("query", query);
    Ok(url.into())
}

/// The samples of an instant query's response, or why there are none.
pub fn parse_response(body: &Value) -> Result<Vec<Sample>, String> {
    match body.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some("error") => {
            let kind = body.get("errorType").and_then(Value::as_str);
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("(no message)");
            return Err(match kind {
                Some(kind) => format!("Prometheus error ({kind}): {error}"),
                None => format!("Prometheus error: {error}"),
            });
        }
        _ => return Err(unexpected(body)),
    }
    let data = body.get("data").ok_or_else(|| unexpected(body))?;
    let result = data.get("result").ok_or_else(|| unexpected(body))?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("vector") => result
            .as_array()
            .ok_or_else(|| unexpected(body))?
            .iter()
            .map(|entry| {
                let value = entry.get("value").and_then(sample_value);
                let labels = entry.get("metric").and_then(Value::as_object);
                match (labels, value) {
                    (Some(labels), Some(value)) => Ok(Sample {
                        labels: render_labels(labels),
                        value,
                    }),
                    _ => Err(unexpected(body)),
                }
            })
            .collect(),
        Some("scalar") => {
            let value = sample_value(result).ok_or_else(|| unexpected(body))?;
            Ok(vec![Sample {
                labels: String::new(),
                value,
            }])
        }
        Some("matrix") => Err(
            "the query returns a range vector; a probe needs an instant \
                               vector or a scalar (e.g. wrap it in max_over_time)"
                .to_string(),
        ),
        Some(other) => Err(format!(
            "the query returns a {other}; a probe needs an instant vector or a scalar"
        )),
        None => Err(unexpected(body)),
    }
}

/// The value of `[timestamp, "value"]`.
fn sample_value(pair: &Value) -> Option<String> {
    pair.as_array()?.get(1)?.as_str().map(str::to_string)
}

/// `name{a="x", b="y"}`, labels sorted, values escaped as in PromQL.
fn render_labels(metric: &serde_json::Map<String, Value>) -> String {
    let name = metric
        .get("__name__")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut pairs: Vec<(&String, String)> = metric
        .iter()
        .filter(|(key, _)| key.as_str() != "__name__")
        .map(|(key, value)| (key, check::text(value)))
        .collect();
    pairs.sort();
    if pairs.is_empty() && !name.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(key, value)| {
            let escaped = value
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    format!("{name}{{{}}}", inner.join(", "))
}

/// A response that is JSON but not the API's shape.
fn unexpected(body: &Value) -> String {
    format!(
        "unexpected Prometheus response: {}",
        clip(&body.to_string(), 120)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::CmpOp;
    use crate::config::model_verify::ValueCheck;
    use serde_json::json;

    fn probe(expect: ValueCheck, empty_passes: bool) -> PrometheusProbe {
        PrometheusProbe {
            url: http::Uri::from_static("http://127.0.0.1:9090"),
            query: "up".into(),
            expect,
            empty_passes,
        }
    }

    fn below(bound: f64) -> ValueCheck {
        ValueCheck::Compare {
            op: CmpOp::Lt,
            value: bound,
            source: format!("< {bound}"),
        }
    }

    fn vector(samples: Value) -> Value {
        json!({"status": "success", "data": {"resultType": "vector", "result": samples}})
    }

    #[test]
    fn a_vector_reads_as_labelled_samples() {
        let body = vector(json!([
            {"metric": {"__name__": "up", "job": "demo", "instance": "a:1"}, "value": [1.5, "1"]},
            {"metric": {}, "value": [1.5, "NaN"]},
            {"metric": {"__name__": "up"}, "value": [1.5, "+Inf"]},
        ]));
        let samples = parse_response(&body).expect("a vector");
        let shown: Vec<String> = samples.iter().map(Sample::to_string).collect();
        assert_eq!(
            shown,
            [r#"up{instance="a:1", job="demo"} 1"#, "{} NaN", "up +Inf"]
        );
    }

    #[test]
    fn a_scalar_is_one_unlabelled_sample() {
        let body =
            json!({"status": "success", "data": {"resultType": "scalar", "result": [1.5, "0.05"]}});
        assert_eq!(
            parse_response(&body),
            Ok(vec![Sample {
                labels: String::new(),
                value: "0.05".into()
            }])
        );
    }

    #[test]
    fn an_error_response_carries_prometheus_words() {
        let body = json!({"status": "error", "errorType": "bad_data", "error": "parse error: unclosed left parenthesis"});
        assert_eq!(
            parse_response(&body),
            Err("Prometheus error (bad_data): parse error: unclosed left parenthesis".into())
        );
    }

    #[test]
    fn a_range_vector_or_a_foreign_body_is_refused() {
        let matrix = json!({"status": "success", "data": {"resultType": "matrix", "result": []}});
        assert!(parse_response(&matrix).is_err_and(|e| e.contains("range vector")));
        assert!(parse_response(&json!({"hello": 1}))
            .is_err_and(|e| e.starts_with("unexpected Prometheus response")));
        let broken = vector(json!([{"metric": {}, "value": [1.5]}]));
        assert!(parse_response(&broken).is_err());
    }

    #[test]
    fn every_sample_must_pass_and_the_failing_ones_are_named() {
        let samples = parse_response(&vector(json!([
            {"metric": {"job": "a"}, "value": [1, "0.02"]},
            {"metric": {"job": "b"}, "value": [1, "0.5"]},
        ])))
        .expect("a vector");
        let seen = judge(&probe(below(0.1), false), &samples);
        assert!(!seen.passed);
        assert_eq!(
            seen.value.as_deref(),
            Some(r#"{job="a"} 0.02, {job="b"} 0.5"#)
        );
        assert_eq!(seen.reason, r#"1 of 2 samples not < 0.1: {job="b"} 0.5"#);
        let seen = judge(&probe(below(1.0), false), &samples);
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.reason, "all 2 samples are < 1");
    }

    #[test]
    fn no_data_fails_unless_allowed() {
        assert!(!judge(&probe(below(0.1), false), &[]).passed);
        assert!(judge(&probe(below(0.1), true), &[]).passed);
    }

    #[test]
    fn the_query_is_url_encoded() {
        let url = query_url(
            &http::Uri::from_static("http://127.0.0.1:9090/"),
            r#"max(rate(x{job="a b"}[1m])) > 0"#,
        )
        .expect("valid");
        assert_eq!(
            url,
            "http://127.0.0.1:9090/api/v1/query?query=max%28rate%28x%7Bjob%3D%22a+b%22%7D%5B1m%5D%29%29+%3E+0"
        );
    }

    #[test]
    fn a_long_result_lists_ten_samples_and_counts_the_rest() {
        let samples: Vec<Sample> = (0..13)
            .map(|i| Sample {
                labels: format!("{{i=\"{i}\"}}"),
                value: "1".into(),
            })
            .collect();
        assert!(list(samples.iter()).ends_with("{i=\"9\"} 1 … and 3 more"));
    }
}
