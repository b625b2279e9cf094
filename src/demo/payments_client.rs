//! [`PaymentsClient`]: how the frontend calls `payments` (through its hop).
//!
//! The checkout path only sees [`PaymentsClient::pay`] (or its unbounded
//! twin) and the typed [`PaymentsError`]. The breaker, the bulkhead and the
//! canary split sit around it in `super::path`: one client per version,
//! each through its own hop.

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::uri::InvalidUri;
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use tokio_util::task::TaskTracker;

/// A payments answer larger than this is treated as invalid.
const RESPONSE_LIMIT: usize = 1024 * 1024;

/// Why a payment call failed, in the terms the frontend answers with.
#[derive(Debug, thiserror::Error)]
pub enum PaymentsError {
    /// No complete answer within the per-call timeout.
    #[error("payments did not answer within {0:?}")]
    Timeout(Duration),
    /// Connect refused, connection reset, or a body cut off mid-way.
    #[error("payments unreachable: {0}")]
    Unreachable(String),
    /// The request was sent but the connection closed before any answer
    /// (a hop that is down, or that dropped a connection it had kept idle).
    #[error("payments connection closed without an answer: {0}")]
    Closed(String),
    /// Payments answered, but not with 2xx.
    #[error("payments returned {0}")]
    Status(StatusCode),
    /// A 2xx whose body is not JSON (or is too large).
    #[error("payments sent an invalid body: {0}")]
    InvalidBody(String),
}

/// A keep-alive HTTP client for one payments endpoint, with a per-call timeout.
#[derive(Debug, Clone)]
pub struct PaymentsClient {
    client: Client<HttpConnector, Full<Bytes>>,
    pay_uri: Uri,
    timeout: Duration,
}

impl PaymentsClient {
    /// A client calling `POST http://{addr}/pay`.
    ///
    /// The pool's connection tasks run on `tracker`, so a demo system has
    /// stopped only once its client connections are gone too.
    ///
    /// Fails only if `addr` does not form a valid URI, which a `SocketAddr`
    /// always does; the error is kept rather than a panic on principle.
    pub fn new(
        addr: SocketAddr,
        timeout: Duration,
        tracker: &TaskTracker,
    ) -> Result<PaymentsClient, InvalidUri> {
        let pay_uri = Uri::from_maybe_shared(format!("http://{addr}/pay"))?;
        let mut connector = HttpConnector::new();
        // The hop adds no Nagle delay; the client must not either.
        connector.set_nodelay(true);
        let client = Client::builder(TrackedExecutor(tracker.clone())).build(connector);
        Ok(PaymentsClient {
            client,
            pay_uri,
            timeout,
        })
    }

    /// The endpoint this client calls.
    pub fn pay_uri(&self) -> &Uri {
        &self.pay_uri
    }

    /// The per-call limit of [`PaymentsClient::pay`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Charges `amount_cents`; returns payments' JSON answer.
    pub async fn pay(&self, amount_cents: u64) -> Result<serde_json::Value, PaymentsError> {
        tokio::time::timeout(self.timeout, self.pay_unbounded(amount_cents))
            .await
            .unwrap_or(Err(PaymentsError::Timeout(self.timeout)))
    }

    /// [`PaymentsClient::pay`] without the timeout: it waits as long as
    /// payments takes. The caller bounds it (or, for the `no_timeout`
    /// defect, deliberately does not).
    pub async fn pay_unbounded(
        &self,
        amount_cents: u64,
    ) -> Result<serde_json::Value, PaymentsError> {
        self.call(amount_cents).await
    }

    async fn call(&self, amount_cents: u64) -> Result<serde_json::Value, PaymentsError> {
        let body = serde_json::json!({ "amount_cents": amount_cents, "currency": "EUR" });
        let mut request = Request::new(Full::new(Bytes::from(body.to_string())));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.pay_uri.clone();
        request
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));

        let response = self.client.request(request).await.map_err(|e| {
            if closed_without_answer(&e) {
                PaymentsError::Closed(chain(&e))
            } else {
                PaymentsError::Unreachable(chain(&e))
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(PaymentsError::Status(status));
        }
        let bytes = Limited::new(response.into_body(), RESPONSE_LIMIT)
            .collect()
            .await
            // A body cut off mid-way is the connection failing, not payments lying.
            .map_err(|e| PaymentsError::Unreachable(chain(&*e)))?
            .to_bytes();
        serde_json::from_slice(&bytes).map_err(|e| PaymentsError::InvalidBody(e.to_string()))
    }
}

/// Whether hyper saw the connection close before the response was complete.
fn closed_without_answer(error: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(error);
    while let Some(cause) = source {
        if cause
            .downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// `error: cause: cause`, because hyper's top-level messages alone
/// ("client error (SendRequest)") do not say what happened.
fn chain(error: &dyn StdError) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Runs hyper's background connection tasks on a [`TaskTracker`] instead of
/// bare `tokio::spawn`, so they are waited for at shutdown.
#[derive(Debug, Clone)]
struct TrackedExecutor(TaskTracker);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        self.0.spawn(future);
    }
}
