//! The agent's HTTP API: routes and the one `match` of actions.
//!
//! Every request passes the shared admin guards first
//! ([`crate::server::guard`], as the proxy admin API: a browser's
//! User-Agent is a 403, since a web page must not make a host run commands;
//! then the bearer token, 404, 405 and the body limits). Each action runs as
//! its own task on the tracker, so a client that hangs up mid-apply cannot
//! leave a fault applied but not held on a lease.

use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, StatusCode};

use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::leases::{self, lease_from_secs, AgentState, ApplyError};
use crate::faults::remote::wire::{ApplyRequest, FaultList, Health, RenewRequest};
use crate::server::guard::{admit, AdminAuth, ApiError, NoRoute};
use crate::server::{json, HttpResponse};

pub use crate::server::MAX_BODY;

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

/// 404 for a fault id the agent does not hold.
fn no_fault(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no fault `{id}`"))
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
fn route(method: &Method, path: &str) -> Result<Action, NoRoute> {
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
        _ => return Err(NoRoute::NotFound),
    };
    action.ok_or(NoRoute::MethodNotAllowed(allow))
}

/// Guards, routes, reads the body and runs the action on its own task.
async fn handle(req: Request<Incoming>, ctx: &Ctx) -> HttpResponse {
    let (action, body) = match admit(req, &ctx.auth, route, Action::takes_body).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    let state = Arc::clone(&ctx.state);
    let task = ctx
        .tracker
        .spawn(async move { dispatch(&state, action, body).await });
    match task.await {
        Ok(Ok(response)) => response,
        Ok(Err(refusal)) => refusal.response(),
        Err(_) => ApiError::new(
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
) -> Result<HttpResponse, ApiError> {
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
            let info = state.get(&id).ok_or_else(|| no_fault(&id))?;
            Ok(ok(StatusCode::OK, &info))
        }
        Action::Apply => {
            let request: ApplyRequest = parse(&body)?;
            let lease = match request.lease_s {
                Some(secs) => lease_from_secs(secs).map_err(ApiError::bad_body)?,
                None => state.default_lease(),
            };
            match state.apply(request.spec, lease).await {
                Ok(info) => Ok(ok(StatusCode::CREATED, &info)),
                Err(ApplyError::Invalid(e)) => Err(ApiError::bad_body(e)),
                Err(e @ ApplyError::Closed) => Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    e.to_string(),
                )),
                Err(e @ ApplyError::Failed { .. }) => Err(ApiError::new(
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
                .map_err(ApiError::bad_body)?;
            let info = state.renew(&id, lease).ok_or_else(|| no_fault(&id))?;
            Ok(ok(StatusCode::OK, &info))
        }
        Action::Remove(id) => match state.remove(&id).await {
            None => Err(no_fault(&id)),
            Some(Ok(_)) => {
                let mut response = json(StatusCode::NO_CONTENT, &serde_json::Value::Null);
                *response.body_mut() = Bytes::new().into();
                response.headers_mut().remove(http::header::CONTENT_TYPE);
                Ok(response)
            }
            // The fault is no longer held either way: retrying cannot help,
            // and the harness must report the host as possibly degraded.
            Some(Err(e)) => Err(ApiError::new(
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

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(ApiError::bad_body)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            let got = route(&method, path).map_err(|no| match no {
                NoRoute::NotFound => 404,
                NoRoute::MethodNotAllowed(_) => 405,
            });
            assert_eq!(got, expected, "{method} {path}");
        }
    }
}
