//! The one guard layer of the JSON admin APIs (`faultline proxy`'s
//! Toxiproxy-compatible API, `faultline agent`): every request passes
//! [`admit`] before its handler sees it, in one order, so a security fix is
//! made once:
//!
//! 1. a browser's User-Agent is a 403 (a web page must not drive the API);
//! 2. a missing or wrong bearer token (when one is required) is a 401 with
//!    `WWW-Authenticate: Bearer`;
//! 3. an unknown path is a 404, a known path with another method a 405
//!    with `Allow`;
//! 4. the body is read within [`BODY_TIMEOUT`] and [`MAX_BODY`] (413, 408,
//!    400 with `Connection: close`).
//!
//! A request refused before step 4 still has its body drained (bounded),
//! so a keep-alive client can send its next request. Every refusal is an
//! [`ApiError`], answered as Toxiproxy does: `{"error": message, "status": code}`.

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::HttpResponse;

/// Who may use an admin API.
#[derive(Clone, PartialEq, Eq)]
pub enum AdminAuth {
    /// Anyone who can connect (the loopback default, as Toxiproxy).
    None,
    /// Every request must carry `Authorization: Bearer <token>`.
    Bearer(String),
}

impl AdminAuth {
    /// Whether the request's headers satisfy this policy.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        let AdminAuth::Bearer(token) = self else {
            return true;
        };
        let Some(value) = headers.get(AUTHORIZATION) else {
            return false;
        };
        let value = value.as_bytes();
        // The scheme is case-insensitive (RFC 9110); then one or more spaces.
        if value.len() < 7 || !value[..6].eq_ignore_ascii_case(b"bearer") || value[6] != b' ' {
            return false;
        }
        let given = value[7..].trim_ascii_start();
        constant_time_eq(given, token.as_bytes())
    }
}

impl std::fmt::Debug for AdminAuth {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminAuth::None => f.write_str("None"),
            AdminAuth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Compares without an early exit, so the time taken does not reveal how
/// much of a guess was right. (The length of the secret may show; its
/// content does not.)
fn constant_time_eq(given: &[u8], secret: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != secret.len());
    for (i, &s) in secret.iter().enumerate() {
        diff |= s ^ given.get(i).copied().unwrap_or(0);
    }
    diff == 0
}

/// One error answer: a status and the message of its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400 `bad request body: <detail>` (invalid JSON, wrong types, bad values).
    pub fn bad_body(detail: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {detail}"),
        )
    }

    /// `{"error": message, "status": code}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.message, "status": self.status.as_u16() })
    }

    /// The answer: [`Self::to_json`] with `status`.
    pub fn response(&self) -> HttpResponse {
        json_response(self.status, self.to_json().to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status.as_u16())
    }
}

impl std::error::Error for ApiError {}

/// JSON text (plus a newline, as Go's encoder writes it) with `status`.
pub fn json_response(status: StatusCode, mut text: String) -> HttpResponse {
    text.push('\n');
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Why a route did not match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRoute {
    /// No such path (404).
    NotFound,
    /// The path exists; the value is the `Allow` header listing its methods (405).
    MethodNotAllowed(&'static str),
}

/// The guard chain of the module docs: the routed action and its body
/// (empty unless `takes_body` says the action reads one), or the answer
/// refusing the request.
pub async fn admit<A>(
    req: Request<Incoming>,
    auth: &AdminAuth,
    route: impl FnOnce(&Method, &str) -> Result<A, NoRoute>,
    takes_body: impl FnOnce(&A) -> bool,
) -> Result<(A, Bytes), HttpResponse> {
    let declared = content_length(req.headers());
    let action = match guard(&req, auth, route) {
        Ok(action) => action,
        Err(refused) => return Err(answer_unread(req.into_body(), declared, *refused).await),
    };
    // Read even when unused, so the connection stays usable for the next request.
    match read_limited_body(req.into_body(), declared).await {
        Ok(body) if takes_body(&action) => Ok((action, body)),
        Ok(_) => Ok((action, Bytes::new())),
        Err(e) => Err(body_error(e)),
    }
}

/// Steps 1–3: browser, token, route.
fn guard<A>(
    req: &Request<Incoming>,
    auth: &AdminAuth,
    route: impl FnOnce(&Method, &str) -> Result<A, NoRoute>,
) -> Result<A, Box<HttpResponse>> {
    if is_browser(req.headers()) {
        return Err(Box::new(
            ApiError::new(StatusCode::FORBIDDEN, "User agent not allowed").response(),
        ));
    }
    if !auth.allows(req.headers()) {
        let mut response = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "missing or wrong bearer token (send `Authorization: Bearer <token>`)",
        )
        .response();
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return Err(Box::new(response));
    }
    route(req.method(), req.uri().path()).map_err(|no| {
        Box::new(match no {
            NoRoute::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not found").response(),
            NoRoute::MethodNotAllowed(allow) => {
                let message = format!("method not allowed (allowed: {allow})");
                let mut response =
                    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message).response();
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
                response
            }
        })
    })
}

/// The answer to a body that could not be read (the connection is closed,
/// as the rest of the body may still be in flight).
fn body_error(e: BodyError) -> HttpResponse {
    let err = match e {
        BodyError::Broken => ApiError::bad_body(e.message()),
        _ => ApiError::new(e.status(), e.message()),
    };
    let mut response = err.response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The largest request body an admin API accepts (its bodies are a few hundred bytes).
pub const MAX_BODY: usize = 1024 * 1024;

/// How much of an oversized body is read and dropped so that a client still
/// sending sees the 413 rather than a reset connection.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;

/// How long a client may take to send its body (a trickling client would
/// otherwise hold a connection task forever).
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Toxiproxy's rule: every browser sends a User-Agent starting `Mozilla/`,
/// and no API client needs to — so a web page cannot drive the API.
pub fn is_browser(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::USER_AGENT)
        .iter()
        .any(|ua| ua.as_bytes().starts_with(b"Mozilla/"))
}

/// The declared `Content-Length`, if it is a number.
pub fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`MAX_BODY`] (413).
    TooLarge,
    /// Not received within [`BODY_TIMEOUT`] (408).
    Slow,
    /// The connection failed mid-body (400).
    Broken,
}

impl BodyError {
    pub fn status(self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Slow => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => StatusCode::BAD_REQUEST,
        }
    }

    pub fn message(self) -> String {
        match self {
            BodyError::TooLarge => format!("request body larger than {MAX_BODY} bytes"),
            BodyError::Slow => format!("request body not received within {BODY_TIMEOUT:?}"),
            BodyError::Broken => "the body could not be read".to_string(),
        }
    }
}

/// Answers `response` to a request refused before its body was needed
/// (403, 401, 404, 405). The body is read and dropped first, bounded like
/// [`read_limited_body`]: hyper closes a connection whose request body was
/// left unread without saying so, and a keep-alive client then sends its
/// next request into a closed connection ("connection closed before message
/// completed"). A body that cannot be drained gets `Connection: close`.
pub async fn answer_unread(
    body: Incoming,
    declared: Option<u64>,
    mut response: HttpResponse,
) -> HttpResponse {
    if read_limited_body(body, declared).await.is_err() {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Reads the whole body, up to [`MAX_BODY`] bytes within [`BODY_TIMEOUT`].
/// An oversized body is drained (up to a limit) so the client reads the 413;
/// answer any error with `Connection: close`, as the rest may be in flight.
pub async fn read_limited_body(
    mut body: Incoming,
    declared: Option<u64>,
) -> Result<Bytes, BodyError> {
    use http_body_util::BodyExt;
    let read = async {
        let mut buf = bytes::BytesMut::new();
        let mut oversized = declared.is_some_and(|n| n > MAX_BODY as u64);
        let mut seen = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| BodyError::Broken)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            seen = seen.saturating_add(data.len());
            oversized |= seen > MAX_BODY;
            if oversized {
                if seen > DRAIN_LIMIT {
                    break;
                }
                continue;
            }
            buf.extend_from_slice(&data);
        }
        if oversized {
            Err(BodyError::TooLarge)
        } else {
            Ok(buf.freeze())
        }
    };
    tokio::time::timeout(BODY_TIMEOUT, read)
        .await
        .unwrap_or(Err(BodyError::Slow))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::USER_AGENT;

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
    fn a_bearer_policy_needs_exactly_the_token() {
        let auth = AdminAuth::Bearer("s3cret".into());
        let with = |v: &str| headers(&[("authorization", v)]);
        assert!(auth.allows(&with("Bearer s3cret")));
        assert!(auth.allows(&with("bearer s3cret")));
        assert!(auth.allows(&with("BEARER   s3cret")));
        assert!(!auth.allows(&HeaderMap::new()));
        for wrong in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "Bearer ",
            "Bearers3cret",
            "Basic s3cret",
            "s3cret",
        ] {
            assert!(!auth.allows(&with(wrong)), "{wrong}");
        }
        assert!(AdminAuth::None.allows(&HeaderMap::new()));
        assert!(!format!("{auth:?}").contains("s3cret"));
    }

    #[test]
    fn constant_time_eq_compares_content_and_length() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abd", b"abc"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn browsers_are_recognised_by_their_mozilla_user_agent() {
        let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
        assert!(is_browser(&headers(&[("user-agent", firefox)])));
        assert!(!is_browser(&headers(&[("user-agent", "curl/8.0")])));
        assert!(!is_browser(&headers(&[("user-agent", "toxiproxy-cli")])));
        assert!(!is_browser(&headers(&[])));
        // A browser cannot hide behind a second header.
        let mut both = headers(&[("user-agent", "curl/8.0")]);
        both.append(USER_AGENT, HeaderValue::from_static("Mozilla/5.0 (X11)"));
        assert!(is_browser(&both));
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
    fn refusals_are_toxiproxy_json_and_body_errors_close_the_connection() {
        let response = ApiError::new(StatusCode::NOT_FOUND, "proxy not found").response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"application/json"[..])
        );
        let too_large = body_error(BodyError::TooLarge);
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            too_large.headers().get(CONNECTION).map(|v| v.as_bytes()),
            Some(&b"close"[..])
        );
        assert_eq!(
            body_error(BodyError::Broken).status(),
            StatusCode::BAD_REQUEST
        );
    }
}
