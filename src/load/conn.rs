//! One keep-alive HTTP/1.1 connection of the load generator, owned and
//! driven by the one worker that sends on it.
//!
//! hyper's pooled client (`hyper_util`'s legacy `Client`) costs a pool
//! checkout (a lock and a hash of the host), a clone of the client and a hop
//! to a separate connection task per request. A load worker needs none of
//! that: it sends one request at a time, so it owns its connection outright
//! ([`Conn`]) and polls hyper's connection future itself while its request
//! is under way, in its own task.
//!
//! A connection the server closed between two requests (idle timeout,
//! `Connection: close`) is replaced before the next request, and a request
//! that a dying connection never sent is sent once more on a fresh one, so
//! neither counts as an error (as the pooled client's retry did).
//!
//! This is the path of `https://` targets; plain `http://` ones take the
//! leaner `h1` client, whose connection lives in the same slot.

use std::future::{poll_fn, Future};
use std::pin::Pin;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tower_service::Service;

/// How connections are opened: TCP with `TCP_NODELAY`, TLS for `https`.
pub(super) type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

type Stream = hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// A worker's connection slot: empty until the first request and after the
/// connection broke; filled again by the next request.
#[derive(Default)]
pub struct Conn {
    live: Option<Live>,
    /// The fast path's connection (plain `http://`, see `h1`).
    pub(super) plain: Option<super::h1::Connection>,
}

struct Live {
    sender: http1::SendRequest<Full<Bytes>>,
    /// hyper's connection future: reads and writes the socket. Boxed because
    /// it is large and lives as long as the connection.
    driver: Pin<Box<http1::Connection<Stream, Full<Bytes>>>>,
    /// The driver has finished (the connection is closed): never poll it again.
    ended: bool,
}

/// How one attempt on a connection went.
pub(super) enum Attempt<T> {
    /// The request was sent; this is what came of it.
    Sent(T),
    /// The connection closed before the request was written: it can be sent
    /// again on a fresh connection (boxed: it is the rare case).
    Unsent(Box<Request<Full<Bytes>>>),
    /// The connection could not be opened.
    ConnectFailed,
}

impl Conn {
    /// Forgets the connection (after a timeout or a transport error, when
    /// its state is unknown); the next request opens a new one.
    pub fn reset(&mut self) {
        self.live = None;
        self.plain = None;
    }

    /// Sends `request` and hands the response to `read` (which reads the
    /// body), driving the connection meanwhile. Opens a connection first if
    /// there is none or the last one was closed.
    pub(super) async fn attempt<T, F, Fut>(
        &mut self,
        connector: &Connector,
        uri: &Uri,
        request: Request<Full<Bytes>>,
        read: F,
    ) -> Attempt<Result<T, hyper::Error>>
    where
        F: FnOnce(Response<Incoming>) -> Fut,
        Fut: Future<Output = T>,
    {
        if self
            .live
            .as_ref()
            .is_none_or(|l| l.ended || l.sender.is_closed())
        {
            self.live = match connect(connector, uri).await {
                Some(live) => Some(live),
                None => return Attempt::ConnectFailed,
            };
        }
        let Some(live) = self.live.as_mut() else {
            return Attempt::ConnectFailed;
        };
        let sender = &mut live.sender;
        let work = async move {
            if sender.ready().await.is_err() {
                return Attempt::Unsent(Box::new(request));
            }
            match sender.try_send_request(request).await {
                Ok(response) => Attempt::Sent(Ok(read(response).await)),
                Err(mut e) => match e.take_message() {
                    Some(request) => Attempt::Unsent(Box::new(request)),
                    None => Attempt::Sent(Err(e.into_error())),
                },
            }
        };
        let outcome = drive(&mut live.driver, &mut live.ended, work).await;
        if live.ended || !matches!(outcome, Attempt::Sent(Ok(_))) {
            self.live = None;
        }
        outcome
    }
}

/// Runs `work` while polling the connection's `driver`, in this task. If the
/// connection ends first, `work` still runs to its end: it then completes
/// from what hyper had already received, or with hyper's error.
async fn drive<F: Future>(
    driver: &mut Pin<Box<http1::Connection<Stream, Full<Bytes>>>>,
    ended: &mut bool,
    work: F,
) -> F::Output {
    tokio::pin!(work);
    if !*ended {
        tokio::select! {
            biased;
            out = &mut work => return out,
            _ = driver.as_mut() => *ended = true,
        }
    }
    work.await
}

/// Opens a connection to `uri`'s authority; `None` if it cannot be reached.
async fn connect(connector: &Connector, uri: &Uri) -> Option<Live> {
    let mut connector = connector.clone();
    poll_fn(|cx| connector.poll_ready(cx)).await.ok()?;
    let stream = connector.call(uri.clone()).await.ok()?;
    let (sender, driver) = http1::handshake(stream).await.ok()?;
    Some(Live {
        sender,
        driver: Box::pin(driver),
        ended: false,
    })
}
