//! One request through an HTTP-mode hop: plan the faults, wait the delay,
//! then answer with an injected error, abort, or forward upstream and relay
//! the (possibly damaged) response.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio_util::sync::CancellationToken;

use super::abort::{CutBody, Flushes};
use super::headers::strip_hop_by_hop;
use super::plan::{End, InjectedError, Plan};
use super::pool::UpstreamClient;
use crate::proxy::handle::Shared;
use crate::proxy::stats::HeadWatch;

/// Any error a response body may end with.
pub(super) type BoxError = Box<dyn StdError + Send + Sync>;

/// The body of every response the hop sends: relayed, buffered or cut.
pub(super) type ResBody = UnsyncBoxBody<Bytes, BoxError>;

/// The service's error: hyper closes the connection without writing anything.
#[derive(Debug, thiserror::Error)]
pub(super) enum NoResponse {
    #[error("connection aborted before the response by an injected fault")]
    Aborted,
    #[error("connection closed during an injected delay: the hop is stopping")]
    Stopping,
}

/// Why the upstream gave no usable response (answered as 502).
#[derive(Debug, thiserror::Error)]
enum UpstreamError {
    #[error("cannot build the upstream URI")]
    Uri(#[source] http::Error),
    #[error("upstream request failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("upstream response body failed")]
    Body(#[source] hyper::Error),
}

/// Serves one request of a client connection (the hyper service).
///
/// An injected delay ends early when `token` is cancelled, so a long delay
/// cannot hold up stopping or disabling the hop.
pub(super) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    flushes: Arc<Flushes>,
    heads: Arc<HeadWatch>,
    token: CancellationToken,
) -> Result<Response<ResBody>, NoResponse> {
    let _serving = heads.head();
    let counters = &shared.counters;
    counters.request_heads.fetch_add(1, Ordering::Relaxed);
    let http = &shared.http;
    let plan = http.plan(&req);
    counters
        .http_faults_applied
        .fetch_add(plan.fired.len() as u64, Ordering::Relaxed);
    if !plan.delay.is_zero() {
        tokio::select! {
            _ = tokio::time::sleep(plan.delay) => {}
            _ = token.cancelled() => return Err(NoResponse::Stopping),
        }
    }
    match &plan.end {
        End::Error(error) => return Ok(injected_error(error)),
        End::AbortBeforeResponse => return Err(NoResponse::Aborted),
        End::Forward | End::AbortMidBody => {}
    }

    let has_body = req.method() != Method::HEAD;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    let response = match forward(req, http.upstream(), http.client()).await {
        Ok(response) => response,
        Err(error) => {
            counters.upstream_failures.fetch_add(1, Ordering::Relaxed);
            return Ok(bad_gateway(http.upstream(), &error));
        }
    };
    let has_body = has_body && !bodiless(response.status());
    if !(plan.touches_body() && has_body) {
        return Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync()));
    }
    match damage(response, &plan, flushes).await {
        Ok(response) => Ok(response),
        Err(error) => {
            counters.upstream_failures.fetch_add(1, Ordering::Relaxed);
            Ok(bad_gateway(http.upstream(), &error))
        }
    }
}

/// Sends `req` to `upstream` with the hop-by-hop headers removed.
async fn forward(
    req: Request<Incoming>,
    upstream: SocketAddr,
    client: &UpstreamClient,
) -> Result<Response<Incoming>, UpstreamError> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The client may have sent an absolute URI (proxy style); only the path
    // and query go upstream. `Host` is kept as the client sent it.
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(upstream.to_string())
        .path_and_query(path)
        .build()
        .map_err(UpstreamError::Uri)?;
    // The pooled client speaks HTTP/1.1 to the upstream whatever the client spoke.
    parts.version = Version::HTTP_11;
    let mut response = client
        .request(Request::from_parts(parts, body))
        .await
        .map_err(UpstreamError::Request)?;
    strip_hop_by_hop(response.headers_mut());
    Ok(response)
}

/// Buffers the upstream body, applies the plan's corruptions and, for
/// `abort mid_body`, cuts it after about half.
async fn damage(
    response: Response<Incoming>,
    plan: &Plan,
    flushes: Arc<Flushes>,
) -> Result<Response<ResBody>, UpstreamError> {
    let (mut parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(UpstreamError::Body)?
        .to_bytes();
    let body = plan
        .corruptions
        .iter()
        .fold(body, |body, corruption| corruption.apply(body));
    // hyper takes the length from the body when it knows it exactly; the
    // header must agree (hyper asserts it in debug builds), and for a cut
    // body it is the only source of the (full, never reached) length.
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = if plan.end == End::AbortMidBody {
        if body.is_empty() {
            // Nothing to cut: the response is complete, but the connection
            // still goes, as the fault promises.
            parts
                .headers
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let part = body.slice(..body.len() / 2);
        CutBody::new(part, flushes)
            .map_err(BoxError::from)
            .boxed_unsync()
    } else {
        full(body)
    };
    Ok(Response::from_parts(parts, body))
}

/// Responses that never carry a body (RFC 9110 §6.4.1).
fn bodiless(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// An `http_error` fault's response.
fn injected_error(error: &InjectedError) -> Response<ResBody> {
    // `validate` keeps `status` in 100..=599, which `from_u16` accepts.
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (body, content_type) = match &error.body {
        Some(body) if serde_json::from_str::<serde_json::Value>(body).is_err() => {
            (body.clone(), "text/plain; charset=utf-8")
        }
        Some(body) => (body.clone(), "application/json"),
        None => (
            serde_json::json!({ "error": "injected by faultline", "status": error.status })
                .to_string(),
            "application/json",
        ),
    };
    let mut response = Response::new(full(Bytes::from(body)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(seconds) = error.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// 502 with the whole cause chain, so a failing hop explains itself.
fn bad_gateway(upstream: SocketAddr, error: &UpstreamError) -> Response<ResBody> {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    let body = serde_json::json!({
        "error": message,
        "status": 502,
        "upstream": upstream.to_string(),
    });
    let mut response = Response::new(full(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn full(body: Bytes) -> ResBody {
    Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync()
}
