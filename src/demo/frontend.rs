//! The `frontend` service: the system's entry point, calling payments on checkout.
//!
//! `GET /checkout` is the one request whose fate depends on the dependency,
//! so it is where faults at the payments hop become visible to load: each
//! [`PaymentsError`] maps to one status (timeout → 504, anything else → 502).
//! A breaker's fast failure (503) will be one more arm of that mapping.

use std::sync::atomic::{AtomicU64, Ordering};

use http::header::HeaderValue;
use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::payments_client::{PaymentsClient, PaymentsError};
use super::server::{self, HttpResponse};

/// The version every frontend response reports in `x-version`.
pub const VERSION: &str = "v1";

/// The header that names the version which served a response; a canary
/// verifier tells v1 and v2 traffic apart by it.
pub const VERSION_HEADER: &str = "x-version";

/// What every checkout charges.
const AMOUNT_CENTS: u64 = 1299;

/// The frontend handler state; one per demo system.
#[derive(Debug)]
pub struct Frontend {
    payments: PaymentsClient,
    orders: AtomicU64,
}

impl Frontend {
    /// A frontend that charges through `payments`.
    pub fn new(payments: PaymentsClient) -> Frontend {
        Frontend {
            payments,
            orders: AtomicU64::new(0),
        }
    }

    /// Routes one request: `GET /checkout`, `GET /health`, else 404.
    pub async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let mut response = match (req.uri().path(), req.method()) {
            ("/checkout", &Method::GET) => self.checkout().await,
            ("/checkout", _) => server::error(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
            ("/health", &Method::GET) => server::json(StatusCode::OK, &json!({ "status": "ok" })),
            _ => server::error(StatusCode::NOT_FOUND, "not found"),
        };
        response
            .headers_mut()
            .insert(VERSION_HEADER, HeaderValue::from_static(VERSION));
        response
    }

    async fn checkout(&self) -> HttpResponse {
        match self.payments.pay(AMOUNT_CENTS).await {
            Ok(payment) => {
                let order_id = self.orders.fetch_add(1, Ordering::Relaxed) + 1;
                server::json(
                    StatusCode::OK,
                    &json!({ "order_id": order_id, "status": "confirmed", "payment": payment }),
                )
            }
            Err(error) => payments_failure(&error),
        }
    }
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
        PaymentsError::Unreachable(detail) => server::json(
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

    #[test]
    fn payments_failures_map_to_gateway_statuses() {
        let cases = [
            (PaymentsError::Timeout(Duration::from_secs(1)), 504),
            (PaymentsError::Status(StatusCode::SERVICE_UNAVAILABLE), 502),
            (PaymentsError::Status(StatusCode::NOT_FOUND), 502),
            (PaymentsError::Unreachable("reset".into()), 502),
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
