//! The admin HTTP server: accept loop, per-request guards, body limits.
//!
//! Guards run before routing, in this order: a browser's User-Agent is a 403
//! (a web page must not reconfigure a developer's proxies), a missing or
//! wrong bearer token a 401, an unknown path a 404, a wrong method a 405,
//! a body over [`MAX_BODY`] a 413. Each action then runs as its own task, so
//! a client that hangs up mid-request cannot leave a change half-applied.

use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::ApiError;
use super::handlers::{dispatch, Reply};
use super::routes::{route, Action, NoRoute};
use super::AdminAuth;
use crate::proxy::registry::ProxyRegistry;

pub use crate::server::MAX_BODY;
use crate::server::{answer_unread, content_length, is_browser, read_limited_body, BodyError};

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

/// The browser and token guards and the route: the action, or the answer
/// refusing the request.
fn guard(req: &Request<Incoming>, ctx: &Ctx) -> Result<Action, Box<Response<Full<Bytes>>>> {
    if is_browser(req.headers()) {
        return Err(Box::new(error(&ApiError::new(
            StatusCode::FORBIDDEN,
            "User agent not allowed",
        ))));
    }
    if !ctx.auth.allows(req.headers()) {
        let mut response = error(&ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (send `Authorization: Bearer <token>`)",
        ));
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(Box::new(response));
    }
    match route(req.method(), req.uri().path()) {
        Ok(action) => Ok(action),
        Err(NoRoute::NotFound) => Err(Box::new(error(&ApiError::new(
            StatusCode::NOT_FOUND,
            "not found",
        )))),
        Err(NoRoute::MethodNotAllowed(allow)) => {
            let mut response = error(&ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            ));
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
            Err(Box::new(response))
        }
    }
}

/// Guards, routes, reads the body and runs the action.
async fn handle(req: Request<Incoming>, ctx: &Ctx) -> Response<Full<Bytes>> {
    let declared = content_length(req.headers());
    let action = match guard(&req, ctx) {
        Ok(action) => action,
        Err(refused) => return answer_unread(req.into_body(), declared, *refused).await,
    };
    let body = match read_limited_body(req.into_body(), declared).await {
        Ok(body) => body,
        Err(e) => return body_error(e),
    };
    let body = if action.takes_body() {
        body
    } else {
        Bytes::new()
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

/// The answer to a body that could not be read (the connection is closed).
fn body_error(e: BodyError) -> Response<Full<Bytes>> {
    let err = match e {
        BodyError::Broken => ApiError::bad_body(e.message()),
        _ => ApiError::new(e.status(), e.message()),
    };
    let mut response = error(&err);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
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
    json_response(e.status, e.to_json().to_string())
}

fn json_response(status: StatusCode, mut text: String) -> Response<Full<Bytes>> {
    text.push('\n');
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        map
    }

    #[test]
    fn browsers_are_recognised_by_their_mozilla_user_agent() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert!(is_browser(&headers(&[("user-agent", firefox)])));
        assert!(!is_browser(&headers(&[("user-agent", "curl/8.0")])));
        assert!(!is_browser(&headers(&[("user-agent", "toxiproxy-cli")])));
        assert!(!is_browser(&headers(&[])));
        // A browser cannot hide behind a second header.
        assert!(is_browser(&headers(&[
            ("user-agent", "curl/8.0"),
            ("user-agent", firefox)
        ])));
    }

    #[test]
    fn content_length_is_read_leniently() {
        assert_eq!(
            content_length(&headers(&[("content-length", "12")])),
            Some(12)
        );
        assert_eq!(content_length(&headers(&[("content-length", "x")])), None);
        assert_eq!(content_length(&headers(&[])), None);
    }

    #[test]
    fn error_answers_are_json_with_the_status_inside() {
        let response = error(&ApiError::proxy_not_found());
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        assert_eq!(
            body_error(BodyError::TooLarge).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }
}
