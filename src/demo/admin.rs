//! The frontend's operator endpoints: `GET /admin/breaker`,
//! `GET|PUT /admin/canary` and `GET /metrics`.
//!
//! They are what probes, verifiers and `command` faults (curl) look at and
//! turn: the breaker's state, the canary's weight and rollback, and the
//! Prometheus series. None of them is counted as frontend traffic.

use http::header::{HeaderValue, CONNECTION, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::time::Instant;

use super::breaker::BreakerSnapshot;
use super::canary::{Canary, CanarySnapshot};
use super::metrics::{self, PathSample, RequestCounts};
use super::path::PaymentsPath;
use super::server::{self, HttpResponse};

/// What the admin endpoints read and change.
#[derive(Debug, Clone, Copy)]
pub struct Admin<'a> {
    /// The v1 path, then the v2 (canary) path.
    pub paths: [&'a PaymentsPath; 2],
    pub canary: &'a Canary,
    pub requests: &'a RequestCounts,
}

impl Admin<'_> {
    /// Routes `/metrics` and `/admin/...`.
    pub async fn handle(self, req: Request<Incoming>) -> HttpResponse {
        let now = Instant::now();
        match (req.uri().path(), req.method()) {
            ("/metrics", &Method::GET) => self.metrics(now),
            ("/admin/breaker", &Method::GET) => server::json(StatusCode::OK, &self.breakers(now)),
            ("/admin/canary", &Method::GET) => {
                server::json(StatusCode::OK, &canary_json(&self.canary.snapshot(now)))
            }
            ("/admin/canary", &Method::PUT) => self.put_canary(req).await,
            ("/admin/canary", _) => server::error(StatusCode::METHOD_NOT_ALLOWED, "use GET or PUT"),
            ("/metrics" | "/admin/breaker", _) => {
                server::error(StatusCode::METHOD_NOT_ALLOWED, "use GET")
            }
            _ => server::error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn metrics(self, now: Instant) -> HttpResponse {
        let samples: Vec<PathSample> = self
            .paths
            .iter()
            .map(|path| PathSample {
                version: path.version(),
                breaker: path.breaker().snapshot(now),
                payments_calls: path.payments_calls(),
            })
            .collect();
        let text = metrics::render(self.requests, &samples, &self.canary.snapshot(now));
        let mut response = HttpResponse::new(text.into());
        response.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        response
    }

    /// v1's breaker at the top level (the stable path), v2's under `canary`.
    fn breakers(self, now: Instant) -> Value {
        let [stable, canary] = self.paths;
        let mut body = path_json(stable, now);
        body["canary"] = path_json(canary, now);
        body
    }

    async fn put_canary(self, req: Request<Incoming>) -> HttpResponse {
        // Toxiproxy's rule for admin APIs: a web page cannot drive it.
        if server::is_browser(req.headers()) {
            return server::error(
                StatusCode::FORBIDDEN,
                "browsers may not change the demo's canary weight",
            );
        }
        let declared = server::content_length(req.headers());
        let body = match server::read_limited_body(req.into_body(), declared).await {
            Ok(body) => body,
            Err(error) => {
                let mut response = server::error(error.status(), &error.message());
                // The rest of the body may still be in flight.
                response
                    .headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
                return response;
            }
        };
        match parse_weight(&body) {
            Ok(weight) => {
                self.canary.set_weight(weight);
                let snapshot = self.canary.snapshot(Instant::now());
                server::json(StatusCode::OK, &canary_json(&snapshot))
            }
            Err(message) => server::error(StatusCode::BAD_REQUEST, &message),
        }
    }
}

/// `{"weight": 0.5}` → 0.5; anything else → a message for a 400.
pub fn parse_weight(body: &[u8]) -> Result<f64, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct WeightBody {
        weight: f64,
    }
    let parsed: WeightBody = serde_json::from_slice(body)
        .map_err(|e| format!("expected a JSON body like {{\"weight\": 0.5}}: {e}"))?;
    if !(0.0..=1.0).contains(&parsed.weight) {
        return Err(format!(
            "`weight` must be between 0 and 1, found {}",
            parsed.weight
        ));
    }
    Ok(parsed.weight)
}

fn path_json(path: &PaymentsPath, now: Instant) -> Value {
    let mut body = breaker_json(&path.breaker().snapshot(now));
    body["payments_calls"] = json!(path.payments_calls());
    body["calls_in_flight"] = json!(path.calls_in_flight());
    body
}

/// One breaker's state as `GET /admin/breaker` shows it.
pub fn breaker_json(snapshot: &BreakerSnapshot) -> Value {
    json!({
        "state": snapshot.state.key(),
        "opened_total": snapshot.opened_total,
        "closed_total": snapshot.closed_total,
        "consecutive_failures": snapshot.consecutive_failures,
        "last_transition_ms_ago": millis(snapshot.since_transition),
        "reason": snapshot.reason,
    })
}

/// The canary as `GET|PUT /admin/canary` show it.
pub fn canary_json(snapshot: &CanarySnapshot) -> Value {
    json!({
        "weight": snapshot.weight,
        "rolled_back": snapshot.rolled_back,
        "rolled_back_at_ms_ago": snapshot.rolled_back_ago.map(millis),
        "reason": snapshot.reason,
        "canary": {
            "requests": snapshot.window.total,
            "errors": snapshot.window.failed,
            "window_error_rate": snapshot.window.failure_rate(),
            "requests_total": snapshot.requests_total,
            "errors_total": snapshot.errors_total,
        },
    })
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_body_is_parsed_and_checked() {
        #[rustfmt::skip]
        let cases: [(&str, &[u8], Result<f64, &str>); 7] = [
            ("a fraction is accepted", br#"{"weight": 0.5}"#, Ok(0.5)),
            ("zero rolls everything to v1", br#"{"weight": 0}"#, Ok(0.0)),
            ("one sends everything to v2", br#"{"weight": 1}"#, Ok(1.0)),
            ("above one is refused", br#"{"weight": 1.5}"#, Err("between 0 and 1")),
            ("negative is refused", br#"{"weight": -0.1}"#, Err("between 0 and 1")),
            ("not JSON is refused", b"half", Err("expected a JSON body")),
            ("an unknown field is refused", br#"{"weight": 0.5, "x": 1}"#, Err("unknown field")),
        ];
        for (case, body, expected) in cases {
            match (parse_weight(body), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{case}"),
                (Err(message), Err(needle)) => {
                    assert!(message.contains(needle), "{case}: {message}")
                }
                (got, _) => panic!("{case}: unexpected {got:?}"),
            }
        }
    }
}
