//! The HTTP/1.1 client of the load generator: pooled keep-alive connections
//! (hyper's client), rustls for https, one request with a deadline, and the
//! classification of what came back.

use crate::config::model::{RequestSpec, StatusMatch, VersionSource};
use crate::metrics::{ErrorClass, VersionTag};
use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::error::Error as StdError;
use std::time::Duration;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// A request spec resolved against the target: built once, sent many times.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub expect_status: Option<Vec<StatusMatch>>,
}

impl PreparedRequest {
    /// Joins the spec's path onto `base` (which may carry a path prefix).
    pub fn new(base: &Uri, spec: &RequestSpec) -> Result<PreparedRequest, http::Error> {
        let base = base.to_string();
        let uri: Uri = format!("{}{}", base.trim_end_matches('/'), spec.path).parse()?;
        let mut headers = http::HeaderMap::new();
        for (name, value) in &spec.headers {
            headers.append(name.clone(), value.clone());
        }
        Ok(PreparedRequest {
            method: spec.method.clone(),
            uri,
            headers,
            body: spec.body.clone().unwrap_or_default(),
            expect_status: spec.expect_status.clone(),
        })
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

/// A body read for a JSON version field is cut at this size.
const VERSION_BODY_LIMIT: usize = 64 * 1024;

/// A cloneable client sharing one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
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
    /// `pool_size` bounds idle keep-alive connections per host.
    pub fn new(timeout: Duration, pool_size: usize) -> HttpClient {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(pool_size)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        HttpClient {
            client,
            timeout,
            version: None,
        }
    }

    /// Also read which version served each response (a header, or a JSON
    /// field of the body, which then is buffered up to 64 KiB).
    pub fn reading_version(self, version: Option<VersionSource>) -> HttpClient {
        HttpClient { version, ..self }
    }

    /// Sends the request, reads the whole body, and classifies the result.
    pub async fn send(&self, req: &PreparedRequest) -> Reply {
        match tokio::time::timeout(self.timeout, self.exchange(req)).await {
            Ok(Ok((status, version))) => Reply {
                status,
                error: req.classify(status),
                version,
            },
            Ok(Err((status, class))) => Reply {
                status,
                error: Some(class),
                version: None,
            },
            Err(_) => Reply {
                status: 0,
                error: Some(ErrorClass::Timeout),
                version: None,
            },
        }
    }

    async fn exchange(
        &self,
        req: &PreparedRequest,
    ) -> Result<(u16, Option<VersionTag>), (u16, ErrorClass)> {
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(req.uri.clone());
        if let Some(headers) = builder.headers_mut() {
            headers.extend(req.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let request = builder
            .body(Full::new(req.body.clone()))
            .map_err(|_| (0, ErrorClass::Io))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| (0, classify_client_error(&e)))?;
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
        // Read the body to the end, frame by frame, without keeping it
        // (unless a JSON version field is wanted): the response is only
        // complete when its body is.
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

fn classify_client_error(e: &hyper_util::client::legacy::Error) -> ErrorClass {
    if e.is_connect() {
        return ErrorClass::Connect;
    }
    classify_source(e)
}

/// Walks the error's cause chain for a reset or an early close.
fn classify_source(e: &(dyn StdError + 'static)) -> ErrorClass {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return match io.kind() {
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                    ErrorClass::Reset
                }
                ConnectionRefused => ErrorClass::Connect,
                TimedOut => ErrorClass::Timeout,
                _ => ErrorClass::Io,
            };
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
            headers: Default::default(),
            body: Bytes::new(),
            expect_status: expect,
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
    }
}
