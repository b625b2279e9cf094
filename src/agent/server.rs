//! The agent's HTTP API: guards, routes and the one `match` of actions.
//!
//! Guards run before routing, in this order (as the proxy admin API): a
//! browser's User-Agent is a 403 (a web page must not make a host run
//! commands), a missing or wrong bearer token a 401, an unknown path a 404,
//! a wrong method a 405, a body over [`MAX_BODY`] a 413. Each action runs as
//! its own task on the tracker, so a client that hangs up mid-apply cannot
//! leave a fault applied but not held on a lease.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONNECTION, WWW_AUTHENTICATE};
use http::{Method, Request, StatusCode};

use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::leases::{self, lease_from_secs, AgentState, ApplyError};
use crate::faults::remote::wire::{ApplyRequest, FaultList, Health, RenewRequest};
use crate::proxy::api::AdminAuth;
use crate::server::{json, HttpResponse};

pub use crate::server::MAX_BODY;
use crate::server::{answer_unread, content_length, is_browser, read_limited_body};

/// What every request handler shares.
struct Ctx {
    state: Arc<AgentState>,
    auth: AdminAuth,
    /// Actions run here, so waiting for it covers them.
    tracker: TaskTracker,
}

/// Serves the agent API on `listener`, and removes faults whose lease
/// expired, until `shutdown` is cancelled; then removes every fault `state`
/// holds (newest first) and returns.
///
/// Connection, action and removal tasks run on `tracker`: a fault being
/// applied when shutdown came is removed by its own task, so wait for the
/// tracker to know that every fault is gone.
pub async fn serve_agent(
    listener: TcpListener,
    state: Arc<AgentState>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    tracker.spawn(leases::reap(
        Arc::clone(&state),
        shutdown.clone(),
        tracker.clone(),
    ));
    let ctx = Arc::new(Ctx {
        auth: AdminAuth::Bearer(state.token().to_string()),
        state: Arc::clone(&state),
        tracker: tracker.clone(),
    });
    let handler = move |req| {
        let ctx = Arc::clone(&ctx);
        async move { handle(req, &ctx).await }
    };
    crate::server::serve(listener, handler, shutdown, tracker).await;
    let failed = state.close().await;
    if failed > 0 {
        crate::outln!("faultline agent: {failed} fault(s) could not be removed: the host may be left degraded");
    }
}

/// One error answer: `{"error": message, "status": code}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }

    fn bad_body(detail: impl std::fmt::Display) -> Refusal {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {detail}"),
        )
    }

    fn not_found(id: &str) -> Refusal {
        Refusal::new(StatusCode::NOT_FOUND, format!("no fault `{id}`"))
    }

    fn response(&self) -> HttpResponse {
        json(
            self.status,
            &serde_json::json!({ "error": self.message, "status": self.status.as_u16() }),
        )
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Health,
    List,
    Apply,
    Show(String),
    Remove(String),
    Renew(String),
}

impl Action {
    fn takes_body(&self) -> bool {
        matches!(self, Action::Apply | Action::Renew(_))
    }
}

/// Method and path → action; `Err` is the answer (404 or 405).
fn route(method: &Method, path: &str) -> Result<Action, Refusal> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (action, allow) = match segments.as_slice() {
        ["health"] => ((method == Method::GET).then_some(Action::Health), "GET"),
        ["faults"] => (
            match *method {
                Method::GET => Some(Action::List),
                Method::POST => Some(Action::Apply),
                _ => None,
            },
            "GET, POST",
        ),
        ["faults", id] if !id.is_empty() => (
            match *method {
                Method::GET => Some(Action::Show(id.to_string())),
                Method::DELETE => Some(Action::Remove(id.to_string())),
                _ => None,
            },
            "GET, DELETE",
        ),
        ["faults", id, "renew"] if !id.is_empty() => (
            (method == Method::POST).then(|| Action::Renew(id.to_string())),
            "POST",
        ),
        _ => return Err(Refusal::new(StatusCode::NOT_FOUND, "not found")),
    };
    action.ok_or_else(|| {
        Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method not allowed (allowed: {allow})"),
        )
    })
}

/// The browser and token guards and the route: the action, or the answer
/// refusing the request.
fn guard(req: &Request<Incoming>, ctx: &Ctx) -> Result<Action, Box<HttpResponse>> {
    if is_browser(req.headers()) {
        return Err(Box::new(
            Refusal::new(StatusCode::FORBIDDEN, "User agent not allowed").response(),
        ));
    }
    if !ctx.auth.allows(req.headers()) {
        let mut response = Refusal::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (send `Authorization: Bearer <token>`)",
        )
        .response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(Box::new(response));
    }
    route(req.method(), req.uri().path()).map_err(|refusal| {
        let mut response = refusal.response();
        if refusal.status == StatusCode::METHOD_NOT_ALLOWED {
            if let Some(allow) = refusal.message.split("allowed: ").nth(1) {
                if let Ok(v) = HeaderValue::from_str(allow.trim_end_matches(')')) {
                    response.headers_mut().insert(ALLOW, v);
                }
            }
        }
        Box::new(response)
    })
}

/// Guards, routes, reads the body and runs the action on its own task.
async fn handle(req: Request<Incoming>, ctx: &Ctx) -> HttpResponse {
    let declared = content_length(req.headers());
    let action = match guard(&req, ctx) {
        Ok(action) => action,
        Err(refused) => return answer_unread(req.into_body(), declared, *refused).await,
    };
    // Read even when unused, so the connection stays usable for the next request.
    let body = match read_body(req.into_body(), declared).await {
        Ok(body) if action.takes_body() => body,
        Ok(_) => Bytes::new(),
        Err(e) => return e,
    };
    let state = Arc::clone(&ctx.state);
    let task = ctx
        .tracker
        .spawn(async move { dispatch(&state, action, body).await });
    match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(refusal)) => refusal.response(),
        Err(_) => Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while handling the request",
        )
        .response(),
    }
}

/// Runs one action.
async fn dispatch(
    state: &AgentState,
    action: Action,
    body: Bytes,
) -> Result<HttpResponse, Refusal> {
    match action {
        Action::Health => Ok(ok(
            StatusCode::OK,
            &Health {
                status: "ok".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                faults: state.len(),
            },
        )),
        Action::List => Ok(ok(
            StatusCode::OK,
            &FaultList {
                faults: state.list(),
            },
        )),
        Action::Show(id) => {
            let info = state.get(&id).ok_or_else(|| Refusal::not_found(&id))?;
            Ok(ok(StatusCode::OK, &info))
        }
        Action::Apply => {
            let request: ApplyRequest = parse(&body)?;
            let lease = match request.lease_s {
                Some(secs) => lease_from_secs(secs).map_err(Refusal::bad_body)?,
                None => state.default_lease(),
            };
            match state.apply(request.spec, lease).await {
                Ok(info) => Ok(ok(StatusCode::CREATED, &info)),
                Err(ApplyError::Invalid(e)) => Err(Refusal::bad_body(e)),
                Err(e @ ApplyError::Closed) => {
                    Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
                }
                Err(e @ ApplyError::Failed { .. }) => Err(Refusal::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    e.to_string(),
                )),
            }
        }
        Action::Renew(id) => {
            let request: RenewRequest = if body.iter().all(u8::is_ascii_whitespace) {
                RenewRequest::default()
            } else {
                parse(&body)?
            };
            let lease = request
                .lease_s
                .map(lease_from_secs)
                .transpose()
                .map_err(Refusal::bad_body)?;
            let info = state
                .renew(&id, lease)
                .ok_or_else(|| Refusal::not_found(&id))?;
            Ok(ok(StatusCode::OK, &info))
        }
        Action::Remove(id) => match state.remove(&id).await {
            None => Err(Refusal::not_found(&id)),
            Some(Ok(_)) => {
                let mut response = json(StatusCode::NO_CONTENT, &serde_json::Value::Null);
                *response.body_mut() = Bytes::new().into();
                response.headers_mut().remove(http::header::CONTENT_TYPE);
                Ok(response)
            }
            // The fault is no longer held either way: retrying cannot help,
            // and the harness must report the host as possibly degraded.
            Some(Err(e)) => Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("removing fault `{id}` failed: {e}"),
            )),
        },
    }
}

fn ok(status: StatusCode, body: &impl Serialize) -> HttpResponse {
    // Plain data (strings, numbers, the spec): serde_json cannot fail.
    json(status, &serde_json::to_value(body).unwrap_or_default())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(Refusal::bad_body)
}

/// Reads the body with the shared limits; `Err` is the answer (413, 408 or
/// 400, each closing the connection).
async fn read_body(body: Incoming, declared: Option<u64>) -> Result<Bytes, HttpResponse> {
    read_limited_body(body, declared).await.map_err(|e| {
        let mut response = Refusal::new(e.status(), e.message()).response();
        // The rest of the body may still be in flight: this connection is done.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::USER_AGENT;
    use http::HeaderMap;

    #[test]
    fn paths_and_methods_map_to_actions() {
        #[rustfmt::skip]
        let cases = [
            (Method::GET, "/health", Ok(Action::Health)),
            (Method::GET, "/faults", Ok(Action::List)),
            (Method::POST, "/faults", Ok(Action::Apply)),
            (Method::GET, "/faults/a-1", Ok(Action::Show("a-1".into()))),
            (Method::DELETE, "/faults/a-1", Ok(Action::Remove("a-1".into()))),
            (Method::POST, "/faults/a-1/renew", Ok(Action::Renew("a-1".into()))),
            (Method::DELETE, "/faults", Err(405)),
            (Method::GET, "/faults/a-1/renew", Err(405)),
            (Method::POST, "/health", Err(405)),
            (Method::GET, "/faults/", Err(404)),
            (Method::GET, "/nope", Err(404)),
            (Method::GET, "/faults/a/b", Err(404)),
        ];
        for (method, path, expected) in cases {
            let got = route(&method, path).map_err(|r| r.status.as_u16());
            assert_eq!(got, expected, "{method} {path}");
        }
    }

    #[test]
    fn browsers_are_recognised_by_their_mozilla_user_agent() {
        let mut h = HeaderMap::new();
        h.insert(USER_AGENT, HeaderValue::from_static("curl/8.0"));
        assert!(!is_browser(&h));
        h.append(USER_AGENT, HeaderValue::from_static("Mozilla/5.0 (X11)"));
        assert!(is_browser(&h));
    }
}
