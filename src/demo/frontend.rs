//! The `frontend` service: the system's entry point, calling payments on checkout.
//!
//! `GET /checkout` is the one request whose fate depends on the dependency,
//! so it is where faults at the payments hops become visible to load. Each
//! checkout is served by the version the [`Canary`] picks (v1, or the canary
//! v2), and that version's [`PaymentsPath`] (breaker, bulkhead, its own hop)
//! makes the call. Failures map to one status each: breaker refused → 503
//! with `x-breaker`, timeout → 504, anything else → 502.
//!
//! Every response says which version served it in `x-version` (`v1` for
//! everything but checkouts). `/metrics` and `/admin/...` are handled by
//! `super::admin` and are not counted as traffic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::header::{HeaderValue, RETRY_AFTER};
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;
use tokio::time::Instant;

use super::admin::Admin;
use super::breaker::Rejection;
use super::canary::{Canary, Version};
use super::metrics::RequestCounts;
use super::path::{CallError, PaymentsPath};
use super::payments_client::PaymentsError;
use super::server::{self, HttpResponse};

/// The version non-checkout responses report in `x-version`.
pub const VERSION: &str = "v1";

/// The header that names the version which served a response; a canary
/// verifier tells v1 and v2 traffic apart by it.
pub const VERSION_HEADER: &str = "x-version";

/// Set on the breaker's fast failures to the breaker's state (`open`, or
/// `half_open` when every trial slot is taken).
pub const BREAKER_HEADER: &str = "x-breaker";

/// What every checkout charges.
const AMOUNT_CENTS: u64 = 1299;

/// The frontend handler state; one per demo system.
#[derive(Debug)]
pub struct Frontend {
    /// v1's path, then v2's (indexed by [`Frontend::path`]).
    paths: [PaymentsPath; 2],
    canary: Arc<Canary>,
    requests: RequestCounts,
    orders: AtomicU64,
}

impl Frontend {
    /// A frontend serving v1 through `v1` and the canary through `v2`.
    pub fn new(v1: PaymentsPath, v2: PaymentsPath, canary: Arc<Canary>) -> Frontend {
        Frontend {
            paths: [v1, v2],
            canary,
            requests: RequestCounts::default(),
            orders: AtomicU64::new(0),
        }
    }

    /// Routes one request: `GET /checkout`, `GET /health`, the admin
    /// endpoints, else 404.
    pub async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let path = req.uri().path();
        if path == "/metrics" || path.starts_with("/admin/") {
            let admin = Admin {
                paths: [&self.paths[0], &self.paths[1]],
                canary: &self.canary,
                requests: &self.requests,
            };
            return with_version(admin.handle(req).await, Version::V1);
        }
        let checkout = path == "/checkout";
        let (version, response) = match (path, req.method()) {
            ("/checkout", &Method::GET) => {
                let version = self.canary.pick();
                (version, self.checkout(version).await)
            }
            ("/checkout", _) => (
                Version::V1,
                server::error(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
            ),
            ("/health", &Method::GET) => (
                Version::V1,
                server::json(StatusCode::OK, &json!({ "status": "ok" })),
            ),
            _ => (
                Version::V1,
                server::error(StatusCode::NOT_FOUND, "not found"),
            ),
        };
        let status = response.status().as_u16();
        self.requests.record(version, status);
        if checkout {
            self.canary.record(version, status, Instant::now());
        }
        with_version(response, version)
    }

    fn path(&self, version: Version) -> &PaymentsPath {
        match version {
            Version::V1 => &self.paths[0],
            Version::V2 => &self.paths[1],
        }
    }

    async fn checkout(&self, version: Version) -> HttpResponse {
        match self.path(version).pay(AMOUNT_CENTS).await {
            Ok(payment) => {
                let order_id = self.orders.fetch_add(1, Ordering::Relaxed) + 1;
                server::json(
                    StatusCode::OK,
                    &json!({
                        "order_id": order_id,
                        "status": "confirmed",
                        "version": version.key(),
                        "payment": payment,
                    }),
                )
            }
            Err(CallError::Rejected(rejection)) => breaker_refused(&rejection),
            Err(CallError::Payments(error)) => payments_failure(&error),
        }
    }
}

fn with_version(mut response: HttpResponse, version: Version) -> HttpResponse {
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from_static(version.key()));
    response
}

/// The breaker's fast failure: 503, `x-breaker`, and why.
pub fn breaker_refused(rejection: &Rejection) -> HttpResponse {
    let mut response = server::json(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!({
            "error": "circuit breaker open: payments not called",
            "breaker": rejection.state.key(),
            "reason": rejection.reason,
            "retry_after_ms": rejection.retry_after.map(|d| d.as_millis() as u64),
        }),
    );
    let headers = response.headers_mut();
    headers.insert(
        BREAKER_HEADER,
        HeaderValue::from_static(rejection.state.key()),
    );
    if let Some(wait) = rejection.retry_after {
        // Whole seconds, rounded up, as Retry-After requires.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// The frontend's answer when payments failed; the body says why, because a
/// resilience report is more useful with "payments timed out" than a bare 504.
pub fn payments_failure(error: &PaymentsError) -> HttpResponse {
    match error {
        PaymentsError::Timeout(limit) => server::json(
            StatusCode::GATEWAY_TIMEOUT,
            &json!({
                "error": "payments timed out",
                "timeout_ms": limit.as_millis() as u64,
            }),
        ),
        PaymentsError::Status(status) if status.is_server_error() => server::json(
            StatusCode::BAD_GATEWAY,
            &json!({ "error": "payments returned 5xx", "payments_status": status.as_u16() }),
        ),
        PaymentsError::Status(status) => server::json(
            StatusCode::BAD_GATEWAY,
            &json!({
                "error": "payments returned an unexpected status",
                "payments_status": status.as_u16(),
            }),
        ),
        PaymentsError::Unreachable(detail) | PaymentsError::Closed(detail) => server::json(
            StatusCode::BAD_GATEWAY,
            &json!({ "error": "payments unreachable", "detail": detail }),
        ),
        PaymentsError::InvalidBody(detail) => server::json(
            StatusCode::BAD_GATEWAY,
            &json!({ "error": "payments sent an invalid response", "detail": detail }),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::demo::breaker::BreakerState;

    #[test]
    fn a_breaker_refusal_is_a_503_with_x_breaker_and_retry_after() {
        let response = breaker_refused(&Rejection {
            state: BreakerState::Open,
            reason: "5 consecutive payments calls failed".into(),
            retry_after: Some(Duration::from_millis(1200)),
        });
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[BREAKER_HEADER], "open");
        assert_eq!(response.headers()[RETRY_AFTER], "2");
        let half_open = breaker_refused(&Rejection {
            state: BreakerState::HalfOpen,
            reason: "trials in flight".into(),
            retry_after: None,
        });
        assert_eq!(half_open.headers()[BREAKER_HEADER], "half_open");
        assert!(half_open.headers().get(RETRY_AFTER).is_none());
    }

    #[test]
    fn payments_failures_map_to_gateway_statuses() {
        let cases = [
            (PaymentsError::Timeout(Duration::from_secs(1)), 504),
            (PaymentsError::Status(StatusCode::SERVICE_UNAVAILABLE), 502),
            (PaymentsError::Status(StatusCode::NOT_FOUND), 502),
            (PaymentsError::Unreachable("reset".into()), 502),
            (PaymentsError::Closed("closed".into()), 502),
            (PaymentsError::InvalidBody("not json".into()), 502),
        ];
        for (error, status) in cases {
            assert_eq!(
                payments_failure(&error).status().as_u16(),
                status,
                "{error}"
            );
        }
    }
}
