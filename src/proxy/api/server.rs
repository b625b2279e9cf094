//! The admin HTTP server: the accept loop and one task per action.
//!
//! Every request passes the shared admin guards first
//! ([`crate::server::guard`]: browser 403, bearer 401, 404, 405, body
//! limits). Each action then runs as its own task, so a client that hangs
//! up mid-request cannot leave a change half-applied.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::ApiError;
use super::handlers::{dispatch, Reply};
use super::routes::{route, Action};
use super::AdminAuth;
use crate::proxy::registry::ProxyRegistry;

use crate::server::guard::{admit, json_response};
pub use crate::server::MAX_BODY;

/// What every request handler shares.
struct Ctx {
    registry: Arc<ProxyRegistry>,
    auth: AdminAuth,
    /// Connections and actions run here, so waiting for it covers them.
    tracker: TaskTracker,
}

/// Serves the admin API on `listener` until `shutdown` is cancelled.
///
/// Returns once the accept loop has stopped (the port is closed then);
/// connection and action tasks run on `tracker` and end within a second of
/// the cancellation. Proxies belong to `registry`: stopping them is
/// [`ProxyRegistry::shutdown`]'s job, not this function's.
pub async fn serve_admin(
    listener: TcpListener,
    registry: Arc<ProxyRegistry>,
    auth: AdminAuth,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) {
    let ctx = Arc::new(Ctx {
        registry,
        auth,
        tracker: tracker.clone(),
    });
    let handler = move |req| {
        let ctx = Arc::clone(&ctx);
        async move { handle(req, &ctx).await }
    };
    crate::server::serve(listener, handler, shutdown, tracker).await;
}

/// Guards, routes, reads the body and runs the action.
async fn handle(req: Request<Incoming>, ctx: &Ctx) -> Response<Full<Bytes>> {
    let (action, body) = match admit(req, &ctx.auth, route, Action::takes_body).await {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    // A task of its own: hyper drops this future when the client hangs up,
    // and a change dropped halfway (old proxy stopped, new one not started)
    // is exactly what must not happen. A panic becomes a 500, not a dead server.
    let registry = Arc::clone(&ctx.registry);
    let task = ctx
        .tracker
        .spawn(async move { dispatch(&registry, action, body).await });
    match task.await {
        Ok(Ok(reply)) => reply_response(reply),
        Ok(Err(e)) => error(&e),
        Err(_) => error(&ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error while handling the request",
        )),
    }
}

fn reply_response(reply: Reply) -> Response<Full<Bytes>> {
    match reply.body {
        Some(body) if reply.content_type != "application/json" => {
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = reply.status;
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
            response
        }
        Some(body) => json_response(reply.status, body),
        None => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = reply.status;
            response
        }
    }
}

fn error(e: &ApiError) -> Response<Full<Bytes>> {
    e.response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::CONTENT_TYPE;

    #[test]
    fn error_answers_are_json_with_the_status_inside() {
        let response = error(&ApiError::proxy_not_found());
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
    }
}
