//! A small HTTP/1.1 server loop, shared by the demo services, the admin API
//! of `faultline proxy` and the integration tests' fixture servers.
//!
//! One task accepts; one task per connection serves keep-alive requests with
//! hyper. On shutdown each connection finishes the request in flight (up to
//! [`SHUTDOWN_GRACE`]) and closes, so "stopped" means no half-written responses.

pub mod guard;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The response type every handler returns: a fully buffered body.
pub type HttpResponse = Response<Full<Bytes>>;

/// How long a connection may take to finish its in-flight request after
/// shutdown. Bounded so that a handler stuck in a long (possibly injected)
/// delay cannot hold up "stopped" indefinitely.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// After a failed `accept` (e.g. EMFILE), wait this long instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `listener` with `handler` until `shutdown` is cancelled.
///
/// Returns once the accept loop has stopped (the port is closed then);
/// connection tasks run on `tracker` and end within [`SHUTDOWN_GRACE`] of the
/// cancellation. Use [`spawn`] to run the loop itself on the tracker too.
pub async fn serve<H, Fut>(
    listener: TcpListener,
    handler: H,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) where
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tracker.spawn(connection(stream, Arc::clone(&handler), shutdown.clone()));
            }
            Err(_) => tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
            },
        }
    }
}

/// Runs [`serve`] as a task on `tracker`, so that waiting for the tracker
/// covers the accept loop as well as the connections.
pub fn spawn<H, Fut>(
    listener: TcpListener,
    handler: H,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) where
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let connections = tracker.clone();
    tracker.spawn(async move { serve(listener, handler, shutdown, &connections).await });
}

/// Serves one keep-alive connection until the client leaves or shutdown.
async fn connection<H, Fut>(stream: TcpStream, handler: Arc<H>, shutdown: CancellationToken)
where
    H: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    // Small responses must not wait for Nagle; failure only costs latency.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| {
        let response = handler(req);
        async move { Ok::<_, Infallible>(response.await) }
    });
    // hyper's header-read timeout (on by default) needs a timer to work.
    // Half-close: a client may shut down its write side right after the
    // request (`nc -N`, scripts); without this hyper took the EOF as the end
    // of the connection and dropped the response being prepared.
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .half_close(true)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // Protocol errors and resets end the connection; there is no one to tell.
        _ = conn.as_mut() => return,
        _ = shutdown.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}

/// A JSON response with `status`.
pub fn json(status: StatusCode, body: &serde_json::Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// `{"error": message}` with `status`, for the demo's 404s and 405s.
pub fn error(status: StatusCode, message: &str) -> HttpResponse {
    json(status, &serde_json::json!({ "error": message }))
}

/// Reads a request body of at most `limit` bytes; `None` if it is larger or broken.
///
/// Handlers read bodies even when they ignore them so that the connection
/// stays usable for the next keep-alive request.
pub async fn read_body(body: Incoming, limit: usize) -> Option<Bytes> {
    use http_body_util::{BodyExt, Limited};
    let collected = Limited::new(body, limit).collect().await.ok()?;
    Some(collected.to_bytes())
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM: how the foreground servers
/// (`faultline demo`, `faultline proxy`) know to shut down.
pub async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => interrupted,
        _ = terminate.recv() => Ok(()),
    }
}

pub use guard::{
    admit, answer_unread, content_length, is_browser, read_limited_body, AdminAuth, ApiError,
    BodyError, NoRoute, BODY_TIMEOUT, MAX_BODY,
};
