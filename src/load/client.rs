//! The HTTP/1.1 client of the load generator: pooled keep-alive connections
//! (hyper's client), rustls for https, one request with a deadline, and the
//! classification of what came back.

use crate::config::model::{RequestSpec, StatusMatch};
use crate::metrics::ErrorClass;
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

/// A cloneable client sharing one connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
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
        HttpClient { client, timeout }
    }

    /// Sends the request, reads the whole body, and returns the status (0 if
    /// none) and the error class (`None` on success).
    pub async fn send(&self, req: &PreparedRequest) -> (u16, Option<ErrorClass>) {
        match tokio::time::timeout(self.timeout, self.exchange(req)).await {
            Ok(Ok(status)) => (status, req.classify(status)),
            Ok(Err((status, class))) => (status, Some(class)),
            Err(_) => (0, Some(ErrorClass::Timeout)),
        }
    }

    async fn exchange(&self, req: &PreparedRequest) -> Result<u16, (u16, ErrorClass)> {
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
        // Read the body to the end, frame by frame, without keeping it: the
        // response is only complete when its body is.
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            if let Err(e) = frame {
                return Err((status, classify_source(&e)));
            }
        }
        Ok(status)
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
