//! The HTTP/1.1 client of the load generator: keep-alive connections owned
//! by the workers that use them ([`Conn`]), rustls for https, one request
//! with a deadline, and the classification of what came back.

use super::conn::{Attempt, Conn, Connector};
use super::h1::{self, Failure};
use crate::config::model::{RequestSpec, StatusMatch, VersionSource};
use crate::metrics::{ErrorClass, VersionTag};
use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http::{Method, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use std::error::Error as StdError;
use std::time::Duration;

/// A request spec resolved against the target: built once, sent many times.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub method: Method,
    /// The absolute URL: where to connect.
    pub uri: Uri,
    /// What goes on the request line: the path and query (origin form).
    pub origin: Uri,
    /// The spec's headers, plus `Host` unless the spec sets it.
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub expect_status: Option<Vec<StatusMatch>>,
    /// The whole request as bytes, for plain `http://` targets (sent as is
    /// by the `h1` client); empty for `https://`.
    pub wire: Bytes,
}

impl PreparedRequest {
    /// Joins the spec's path onto `base` (which may carry a path prefix).
    pub fn new(base: &Uri, spec: &RequestSpec) -> Result<PreparedRequest, http::Error> {
        let base = base.to_string();
        let uri: Uri = format!("{}{}", base.trim_end_matches('/'), spec.path).parse()?;
        let origin: Uri = uri.path_and_query().map_or("/", |pq| pq.as_str()).parse()?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &spec.headers {
            headers.append(name.clone(), value.clone());
        }
        if !headers.contains_key(HOST) {
            if let Some(host) = host_header(&uri) {
                headers.insert(HOST, host);
            }
        }
        let body = spec.body.clone().unwrap_or_default();
        let wire = match uri.scheme_str() {
            Some("http") => h1::wire_request(&spec.method, &origin, &headers, &body),
            _ => Bytes::new(),
        };
        Ok(PreparedRequest {
            method: spec.method.clone(),
            uri,
            origin,
            headers,
            body,
            expect_status: spec.expect_status.clone(),
            wire,
        })
    }

    /// A fresh request to send: clones of prepared parts, no parsing.
    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.origin.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// The error class of a response status, `None` for success.
    pub fn classify(&self, status: u16) -> Option<ErrorClass> {
        let accepted = match &self.expect_status {
            Some(list) => list.iter().any(|m| m.matches(status)),
            None => (200..400).contains(&status),
        };
        match status {
            _ if accepted => None,
            400..=499 => Some(ErrorClass::Http4xx),
            500..=599 => Some(ErrorClass::Http5xx),
            _ => Some(ErrorClass::StatusMismatch),
        }
    }
}

/// The `Host` header for `uri`: the host, and the port unless it is the
/// scheme's default (what browsers and hyper's pooled client send).
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default = match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    };
    let value = match uri.port_u16() {
        Some(port) if port != default => format!("{host}:{port}"),
        _ => host.to_string(),
    };
    HeaderValue::from_str(&value).ok()
}

/// A body read for a JSON version field is cut at this size.
const VERSION_BODY_LIMIT: usize = 64 * 1024;

/// What a worker sends with: how to connect, the deadline, what to read.
/// Cheap to clone; connections are not shared (see [`Conn`]).
#[derive(Clone)]
pub struct HttpClient {
    connector: Connector,
    timeout: Duration,
    version: Option<VersionSource>,
}

/// What one exchange produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reply {
    /// HTTP status, 0 when there was no response.
    pub status: u16,
    /// `None` on success.
    pub error: Option<ErrorClass>,
    /// The version that served the response, when the client reads one.
    pub version: Option<VersionTag>,
}

impl HttpClient {
    /// `timeout` bounds each request, connecting included. `_connections`
    /// is kept for callers: every worker owns its connection, so there is no
    /// shared pool to size.
    pub fn new(timeout: Duration, _connections: usize) -> HttpClient {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        HttpClient {
            connector,
            timeout,
            version: None,
        }
    }

    /// Also read which version served each response (a header, or a JSON
    /// field of the body, which then is buffered up to 64 KiB).
    pub fn reading_version(self, version: Option<VersionSource>) -> HttpClient {
        HttpClient { version, ..self }
    }

    /// Sends the request on a connection of its own (for one-off requests
    /// such as readiness checks); see [`HttpClient::send_on`].
    pub async fn send(&self, req: &PreparedRequest) -> Reply {
        self.send_on(&mut Conn::default(), req).await
    }

    /// Sends the request on `conn` (opening it if needed), reads the whole
    /// body, and classifies the result. A transport error or a timeout
    /// leaves `conn` empty, so the next request starts on a fresh connection.
    pub async fn send_on(&self, conn: &mut Conn, req: &PreparedRequest) -> Reply {
        let result = tokio::time::timeout(self.timeout, self.exchange(conn, req)).await;
        match result {
            Ok(Ok((status, version))) => Reply {
                status,
                error: req.classify(status),
                version,
            },
            Ok(Err((status, class))) => {
                conn.reset();
                Reply {
                    status,
                    error: Some(class),
                    version: None,
                }
            }
            Err(_) => {
                conn.reset();
                Reply {
                    status: 0,
                    error: Some(ErrorClass::Timeout),
                    version: None,
                }
            }
        }
    }

    async fn exchange(
        &self,
        conn: &mut Conn,
        req: &PreparedRequest,
    ) -> Result<(u16, Option<VersionTag>), (u16, ErrorClass)> {
        if !req.wire.is_empty() {
            return self.exchange_plain(conn, req).await;
        }
        let mut request = req.request();
        // A request a closing connection never sent goes once more on a
        // fresh one; a server that closes every connection at once is `reset`.
        for _ in 0..2 {
            let read = |response| self.read_response(response);
            match conn.attempt(&self.connector, &req.uri, request, read).await {
                Attempt::Sent(Ok(result)) => return result,
                Attempt::Sent(Err(e)) => return Err((0, classify_source(&e))),
                Attempt::Unsent(back) => request = *back,
                Attempt::ConnectFailed => return Err((0, ErrorClass::Connect)),
            }
        }
        Err((0, ErrorClass::Reset))
    }

    /// The fast path of plain `http://` targets (see `h1`).
    async fn exchange_plain(
        &self,
        conn: &mut Conn,
        req: &PreparedRequest,
    ) -> Result<(u16, Option<VersionTag>), (u16, ErrorClass)> {
        let header = match &self.version {
            Some(VersionSource::Header(name)) => Some(name.as_str()),
            _ => None,
        };
        let pointer = match &self.version {
            Some(VersionSource::Json(pointer)) => Some(pointer.as_str()),
            _ => None,
        };
        let head_only = req.method == Method::HEAD;
        for attempt in 0..2 {
            let mut c = match conn.plain.take() {
                Some(c) => c,
                None => h1::Connection::open(&req.uri)
                    .await
                    .map_err(|_| (0, ErrorClass::Connect))?,
            };
            let reused = c.sent > 0;
            let mut kept = Vec::new();
            let keep = pointer.map(|_| &mut kept);
            match c
                .exchange(&req.wire, head_only, header, keep, VERSION_BODY_LIMIT)
                .await
            {
                Ok((response, reusable)) => {
                    if reusable {
                        conn.plain = Some(c);
                    }
                    let version = match pointer {
                        Some(pointer) => json_version(&kept, pointer),
                        None => response.header.as_deref().and_then(VersionTag::new),
                    };
                    return Ok((response.status, version));
                }
                Err(failure) => {
                    // A kept-alive connection the server closed while it sat
                    // idle: once more on a fresh one, if sending twice is harmless.
                    let stale = match &failure {
                        Failure::Closed { started } => !started,
                        Failure::Io(e) => matches!(
                            e.kind(),
                            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                        ),
                        Failure::Protocol => false,
                    };
                    if attempt == 0 && reused && stale && req.method.is_idempotent() {
                        continue;
                    }
                    let class = match failure {
                        Failure::Io(e) => classify_io(e.kind()),
                        Failure::Closed { .. } => ErrorClass::Reset,
                        Failure::Protocol => ErrorClass::Io,
                    };
                    return Err((0, class));
                }
            }
        }
        Err((0, ErrorClass::Reset))
    }

    /// Reads the body to its end: the response is only complete when its
    /// body is. Frames are dropped as they come unless a JSON version field
    /// is wanted.
    async fn read_response(
        &self,
        response: Response<Incoming>,
    ) -> Result<(u16, Option<VersionTag>), (u16, ErrorClass)> {
        let status = response.status().as_u16();
        let mut version = match &self.version {
            Some(VersionSource::Header(name)) => response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(VersionTag::new),
            _ => None,
        };
        let pointer = match &self.version {
            Some(VersionSource::Json(pointer)) => Some(pointer.as_str()),
            _ => None,
        };
        let mut kept = Vec::new();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if let (Some(_), Some(data)) = (pointer, frame.data_ref()) {
                        let room = VERSION_BODY_LIMIT.saturating_sub(kept.len());
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Err(e) => return Err((status, classify_source(&e))),
            }
        }
        if let Some(pointer) = pointer {
            version = json_version(&kept, pointer);
        }
        Ok((status, version))
    }
}

/// The version at `pointer` in a JSON body: a string as is, a number or
/// bool as its text; `None` for anything else.
fn json_version(body: &[u8], pointer: &str) -> Option<VersionTag> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.pointer(pointer)? {
        serde_json::Value::String(s) => VersionTag::new(s),
        v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
            VersionTag::new(&v.to_string())
        }
        _ => None,
    }
}

/// The error class of a socket error.
fn classify_io(kind: std::io::ErrorKind) -> ErrorClass {
    use std::io::ErrorKind::*;
    match kind {
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => ErrorClass::Reset,
        ConnectionRefused => ErrorClass::Connect,
        TimedOut => ErrorClass::Timeout,
        _ => ErrorClass::Io,
    }
}

/// Walks the error's cause chain for a reset or an early close.
fn classify_source(e: &(dyn StdError + 'static)) -> ErrorClass {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return classify_io(io.kind());
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() {
                return ErrorClass::Reset;
            }
        }
        cause = err.source();
    }
    ErrorClass::Io
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepared(expect: Option<Vec<StatusMatch>>) -> PreparedRequest {
        PreparedRequest {
            method: Method::GET,
            uri: Uri::from_static("http://127.0.0.1/"),
            origin: Uri::from_static("/"),
            headers: Default::default(),
            body: Bytes::new(),
            expect_status: expect,
            wire: Bytes::new(),
        }
    }

    #[test]
    fn statuses_are_classified_by_default_rules() {
        let r = prepared(None);
        assert_eq!(r.classify(200), None);
        assert_eq!(r.classify(302), None);
        assert_eq!(r.classify(404), Some(ErrorClass::Http4xx));
        assert_eq!(r.classify(503), Some(ErrorClass::Http5xx));
        assert_eq!(r.classify(101), Some(ErrorClass::StatusMismatch));
    }

    #[test]
    fn expect_status_turns_listed_codes_into_successes() {
        let r = prepared(Some(vec![StatusMatch::Exact(201), StatusMatch::Exact(404)]));
        assert_eq!(r.classify(201), None);
        assert_eq!(r.classify(404), None);
        assert_eq!(r.classify(200), Some(ErrorClass::StatusMismatch));
        assert_eq!(r.classify(500), Some(ErrorClass::Http5xx));
        let r = prepared(Some(vec![StatusMatch::Class(5)]));
        assert_eq!(r.classify(503), None);
    }

    #[test]
    fn a_path_joins_onto_a_base_with_a_prefix() {
        let spec = RequestSpec {
            name: "x".into(),
            method: Method::GET,
            path: "/checkout?x=1".into(),
            headers: vec![],
            body: None,
            weight: 1,
            expect_status: None,
        };
        let base: Uri = "http://127.0.0.1:8080/api/".parse().expect("valid uri");
        let p = PreparedRequest::new(&base, &spec).expect("joins");
        assert_eq!(p.uri.to_string(), "http://127.0.0.1:8080/api/checkout?x=1");
        assert_eq!(p.origin.to_string(), "/api/checkout?x=1");
        assert_eq!(
            p.headers.get(HOST).map(|h| h.as_bytes()),
            Some(&b"127.0.0.1:8080"[..])
        );
    }

    #[test]
    fn the_host_header_leaves_out_the_default_port() {
        let host = |uri: &str| host_header(&uri.parse().expect("valid uri"));
        assert_eq!(
            host("http://example.com:80/x"),
            Some(HeaderValue::from_static("example.com"))
        );
        assert_eq!(
            host("https://example.com/"),
            Some(HeaderValue::from_static("example.com"))
        );
        assert_eq!(
            host("https://example.com:8443/"),
            Some(HeaderValue::from_static("example.com:8443"))
        );
        assert_eq!(
            host("http://[::1]:9000/"),
            Some(HeaderValue::from_static("[::1]:9000"))
        );
    }
}
