//! Where the live metrics of a run go: `/metrics` on `--metrics-listen`
//! and `--prometheus-remote-write`, started before the first experiment
//! and closed after the reports are written.
//!
//! `/metrics` is served by the shared loop ([`crate::server`]) behind the
//! same guards as the other APIs: loopback unless a bearer token is
//! required (`--token-file`), browsers refused, request bodies drained and
//! bounded. After the run it stays up until the final numbers have been
//! scraped once (at most `--metrics-linger`), so a run shorter than a
//! scrape interval still shows its totals, but only when something has
//! scraped it at all: a run nobody watches exits at once.

use crate::metrics::export::remote_write::RemoteWriter;
use crate::metrics::export::{text, Live};
use crate::server::AdminAuth;
use crate::server::{admit, HttpResponse, NoRoute};
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_TYPE};
use http::{Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the last remote-write batches may take to be delivered.
const FLUSH_WITHIN: Duration = Duration::from_secs(5);
/// How often the linger checks for the final scrape.
const LINGER_POLL: Duration = Duration::from_millis(50);

/// The flags, read and checked by the command line.
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    pub listen: Option<SocketAddr>,
    /// The bearer token every `/metrics` request must carry.
    pub token: Option<String>,
    /// The remote-write endpoint, an `http` or `https` URL.
    pub remote_write: Option<String>,
    pub linger: Duration,
}

/// Why the live outputs could not start.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(
        "--metrics-listen {0} is not a loopback address: anyone who can reach it could read the run. \
         Pass --token-file FILE to require a bearer token."
    )]
    NotLoopback(SocketAddr),
    #[error("--metrics-listen {0}: cannot listen: {1}")]
    Bind(SocketAddr, std::io::Error),
    #[error("--prometheus-remote-write `{0}`: {1}")]
    BadUrl(String, String),
}

impl LiveError {
    /// Bad flags are invalid input; a port in use is a run that could not start.
    pub fn is_invalid_input(&self) -> bool {
        !matches!(self, LiveError::Bind(..))
    }
}

/// The running outputs of one run.
pub struct LiveOutputs {
    live: Arc<Live>,
    server: Option<Server>,
    writer: Option<(RemoteWriter, String)>,
    linger: Duration,
}

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl LiveOutputs {
    /// Starts what the options ask for; `None` when they ask for nothing.
    pub async fn start(opts: LiveOptions) -> Result<Option<LiveOutputs>, LiveError> {
        if opts.listen.is_none() && opts.remote_write.is_none() {
            return Ok(None);
        }
        if let Some(url) = &opts.remote_write {
            check_url(url)?;
        }
        let live = Live::new();
        let server = match opts.listen {
            Some(addr) => Some(serve(addr, opts.token.clone(), live.clone()).await?),
            None => None,
        };
        let writer = opts.remote_write.map(|url| {
            let host = gethostname::gethostname().to_string_lossy().into_owned();
            (RemoteWriter::spawn(live.clone(), url.clone(), &host), url)
        });
        Ok(Some(LiveOutputs {
            live,
            server,
            writer,
            linger: opts.linger,
        }))
    }

    pub fn live(&self) -> Arc<Live> {
        self.live.clone()
    }

    /// `http://ADDR/metrics`, once listening (port 0 resolved).
    pub fn metrics_url(&self) -> Option<String> {
        self.server
            .as_ref()
            .map(|s| format!("http://{}/metrics", s.addr))
    }

    /// Sends the last remote-write batch; the note for the report when
    /// batches were lost (the run never fails for it).
    pub async fn flush(&mut self) -> Option<String> {
        let (writer, url) = self.writer.take()?;
        writer.finish(FLUSH_WITHIN).await.note(&url)
    }

    /// Waits for the final scrape (see the module docs), unless `stop`
    /// (Ctrl-C) says not to, then stops serving.
    pub async fn close(mut self, stop: &CancellationToken) {
        let _ = self.flush().await;
        let Some(server) = self.server.take() else {
            return;
        };
        let seen = self.live.scrapes();
        if seen > 0 && !stop.is_cancelled() {
            let deadline = Instant::now() + self.linger;
            while self.live.scrapes() == seen && Instant::now() < deadline {
                tokio::select! {
                    _ = tokio::time::sleep(LINGER_POLL) => {}
                    _ = stop.cancelled() => break,
                }
            }
        }
        server.shutdown.cancel();
        server.tracker.close();
        server.tracker.wait().await;
    }
}

fn check_url(url: &str) -> Result<(), LiveError> {
    let bad = |why: &str| LiveError::BadUrl(url.to_string(), why.to_string());
    let uri: http::Uri = url.parse().map_err(|e| bad(&format!("not a URL: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(bad("expected an http:// or https:// URL")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("the URL has no host"));
    }
    Ok(())
}

async fn serve(
    addr: SocketAddr,
    token: Option<String>,
    live: Arc<Live>,
) -> Result<Server, LiveError> {
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(LiveError::NotLoopback(addr));
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| LiveError::Bind(addr, e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| LiveError::Bind(addr, e))?;
    let auth = Arc::new(token.map_or(AdminAuth::None, AdminAuth::Bearer));
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    crate::server::spawn(
        listener,
        move |req| {
            let (live, auth) = (live.clone(), auth.clone());
            async move { handle(req, &live, &auth).await }
        },
        shutdown.clone(),
        &tracker,
    );
    Ok(Server {
        addr,
        shutdown,
        tracker,
    })
}

/// The shared admin guards (browser 403, bearer 401, 404, 405 with
/// `Allow`, bounded body), then the exposition.
async fn handle(req: Request<Incoming>, live: &Live, auth: &AdminAuth) -> HttpResponse {
    let route = |method: &Method, path: &str| match path {
        "/metrics" if method == Method::GET || method == Method::HEAD => Ok(()),
        "/metrics" => Err(NoRoute::MethodNotAllowed("GET, HEAD")),
        _ => Err(NoRoute::NotFound),
    };
    if let Err(refused) = admit(req, auth, route, |_| false).await {
        return refused;
    }
    let mut response = Response::new(Full::new(Bytes::from(live.scrape())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(text::CONTENT_TYPE));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_write_urls_must_be_http() {
        assert!(check_url("http://127.0.0.1:9090/api/v1/write").is_ok());
        assert!(check_url("https://prom.example/api/v1/push").is_ok());
        let e = check_url("ftp://x/y").expect_err("ftp refused");
        assert!(
            e.to_string()
                .contains("expected an http:// or https:// URL"),
            "{e}"
        );
        assert!(e.is_invalid_input());
        let e = check_url("not a url").expect_err("refused");
        assert!(e.to_string().contains("not a URL"), "{e}");
    }

    #[tokio::test]
    async fn a_public_address_needs_a_token() {
        let addr: SocketAddr = "0.0.0.0:0".parse().expect("addr");
        let opts = LiveOptions {
            listen: Some(addr),
            ..LiveOptions::default()
        };
        match LiveOutputs::start(opts).await {
            Err(e @ LiveError::NotLoopback(_)) => {
                assert!(e.to_string().contains("--token-file"), "{e}");
            }
            Err(e) => panic!("wrong error: {e}"),
            Ok(_) => panic!("a public address without a token must be refused"),
        }
    }
}
