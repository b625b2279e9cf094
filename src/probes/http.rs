//! The `http` probe: one request, judged by status, a JSON value in the body
//! and a body pattern; and [`fetch`], the bounded request the `prometheus`
//! probe and [`super::json_value`] use as well.

use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;

use super::check::{self, clip};
use super::{connect_failure, Observation, ProbeContext};
use crate::config::model::StatusMatch;
use crate::config::model_verify::HttpProbe;

/// Bodies are read up to this much; a larger one fails the observation
/// rather than be judged on a part of it.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A response: its status and, when asked for, its whole body.
#[derive(Debug)]
pub struct Fetched {
    pub status: u16,
    /// Empty unless the body was asked for.
    pub body: Bytes,
}

/// Observes one `http` probe (unbounded: the caller applies the timeout).
pub(super) async fn observe(probe: &HttpProbe, ctx: &ProbeContext) -> Observation {
    let url = match resolve(&probe.url, ctx) {
        Ok(url) => url,
        Err(reason) => return Observation::fail(None, reason),
    };
    // Compiled before the request: a bad pattern needs no traffic to report.
    let body_regex = match probe.body.as_deref().map(check::regex).transpose() {
        Ok(regex) => regex,
        Err(reason) => return Observation::fail(None, reason),
    };
    let wants_body = probe.json.is_some() || body_regex.is_some();
    let fetched = match fetch(&probe.method, &url, &probe.headers, wants_body).await {
        Ok(fetched) => fetched,
        Err(reason) => return Observation::fail(None, reason),
    };
    let status = fetched.status.to_string();
    if !accepts(probe.status.as_deref(), fetched.status) {
        let expected = expected_statuses(probe.status.as_deref());
        return Observation::fail(
            Some(status.clone()),
            format!("expected status {expected}, got {status}"),
        );
    }
    let mut value = status.clone();
    let mut passed = vec![format!("status {status}")];
    if let Some(json) = &probe.json {
        let found = match pointed(&fetched, &json.pointer) {
            Ok(found) => found,
            Err(reason) => return Observation::fail(Some(value), reason),
        };
        value = check::text(&found);
        match check::judge(&json.expect, &found) {
            Ok(()) => passed.push(format!("{} is {found}", json.pointer)),
            Err(why) => {
                return Observation::fail(
                    Some(value),
                    format!("{} is {found}, {why}", json.pointer),
                )
            }
        }
    }
    if let Some(regex) = &body_regex {
        if !regex.is_match(&String::from_utf8_lossy(&fetched.body)) {
            return Observation::fail(
                Some(value),
                format!("body does not match /{}/", regex.as_str()),
            );
        }
        passed.push(format!("body matches /{}/", regex.as_str()));
    }
    Observation::pass(Some(value), passed.join(", "))
}

/// `GET url` and the JSON value at `pointer` (unbounded: the caller applies
/// the timeout).
pub(super) async fn json_value(
    url: &str,
    pointer: &str,
    ctx: &ProbeContext,
) -> Result<Value, String> {
    let url = resolve(url, ctx)?;
    let fetched = fetch(&http::Method::GET, &url, &[], true).await?;
    pointed(&fetched, pointer)
}

/// The JSON value at `pointer` in the body.
fn pointed(fetched: &Fetched, pointer: &str) -> Result<Value, String> {
    let body: Value = serde_json::from_slice(&fetched.body).map_err(|e| {
        format!(
            "body is not JSON ({e}): {}",
            clip(&String::from_utf8_lossy(&fetched.body), 80)
        )
    })?;
    body.pointer(pointer)
        .cloned()
        .ok_or_else(|| format!("JSON pointer {pointer} not found in body"))
}

/// Whether `status` is accepted; no list means 2xx.
fn accepts(accepted: Option<&[StatusMatch]>, status: u16) -> bool {
    match accepted {
        Some(list) => list.iter().any(|m| m.matches(status)),
        None => status / 100 == 2,
    }
}

/// `2xx`, `200 or 204`, `200, 204 or 3xx`.
fn expected_statuses(accepted: Option<&[StatusMatch]>) -> String {
    let names: Vec<String> = match accepted {
        None | Some([]) => return "2xx".to_string(),
        Some(list) => list
            .iter()
            .map(|m| match m {
                StatusMatch::Exact(code) => code.to_string(),
                StatusMatch::Class(class) => format!("{class}xx"),
            })
            .collect(),
    };
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => names.concat(),
    }
}

/// The URL to request: absolute as written, or a path joined to the target.
fn resolve(url: &str, ctx: &ProbeContext) -> Result<String, String> {
    if !url.starts_with('/') {
        return Ok(url.to_string());
    }
    let Some(base) = &ctx.target_base else {
        return Err(format!(
            "{url} is a relative URL and the run has no target base URL to join it to"
        ));
    };
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map(|a| a.as_str()).unwrap_or_default();
    let prefix = base.path().trim_end_matches('/');
    Ok(format!("{scheme}://{authority}{prefix}{url}"))
}

/// The client every probe shares, or why it could not be built.
///
/// Redirects are not followed: a status check judges what the URL answers.
/// Idle connections are not kept: a probe observes the system as a new
/// client would, a connection broken by a fault is never reused for the
/// next observation, and no pooled connection outlives the tokio runtime
/// that made it. Proxy variables are ignored, like the load generator does:
/// probes talk to the system under test directly.
fn client() -> Result<&'static reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .no_proxy()
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {}", root_cause(&e)))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Sends one request; reads the body (up to [`BODY_LIMIT`]) when `with_body`.
/// Every failure is a sentence for an observation's reason.
pub async fn fetch(
    method: &http::Method,
    url: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    with_body: bool,
) -> Result<Fetched, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url}: {e}"))?;
    let mut request = client()?.request(method.clone(), parsed.clone());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let mut response = request
        .send()
        .await
        .map_err(|e| request_failure(&parsed, &e))?;
    let status = response.status().as_u16();
    if !with_body {
        return Ok(Fetched {
            status,
            body: Bytes::new(),
        });
    }
    let too_large = || format!("status {status}, body larger than {BODY_LIMIT} bytes");
    if response
        .content_length()
        .is_some_and(|len| len > BODY_LIMIT as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) if body.len() + chunk.len() > BODY_LIMIT => return Err(too_large()),
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                return Err(format!(
                    "status {status}, reading the body failed: {}",
                    root_cause(&e)
                ))
            }
        }
    }
    Ok(Fetched {
        status,
        body: body.into(),
    })
}

/// A failed request in words: `connect to 127.0.0.1:9 refused`.
fn request_failure(url: &reqwest::Url, error: &reqwest::Error) -> String {
    let address = format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    );
    if error.is_connect() {
        if let Some(io) = io_cause(error) {
            return connect_failure(&address, io);
        }
        return format!("connect to {address} failed: {}", root_cause(error));
    }
    format!("request to {url} failed: {}", root_cause(error))
}

/// The innermost I/O error behind `error`, if any.
fn io_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut found = None;
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        current = e.source();
    }
    found
}

/// The innermost cause's message: reqwest's own ("error sending request")
/// says less than what is under it.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(base: &str) -> ProbeContext {
        ProbeContext {
            target_base: base.parse().ok(),
        }
    }

    #[test]
    fn a_relative_url_is_joined_to_the_target_base() {
        assert_eq!(
            resolve("/admin/breaker", &ctx("http://127.0.0.1:8080")),
            Ok("http://127.0.0.1:8080/admin/breaker".into())
        );
        assert_eq!(
            resolve("/health", &ctx("https://shop.example/api/")),
            Ok("https://shop.example/api/health".into())
        );
        assert_eq!(
            resolve("http://other:1/x", &ctx("http://127.0.0.1:8080")),
            Ok("http://other:1/x".into())
        );
    }

    #[test]
    fn a_relative_url_without_a_target_says_so() {
        let err = resolve("/admin/breaker", &ProbeContext::default()).expect_err("no base");
        assert!(err.contains("no target base URL"), "{err}");
    }

    #[test]
    fn accepted_statuses_read_as_a_list() {
        use StatusMatch::{Class, Exact};
        assert_eq!(expected_statuses(None), "2xx");
        assert_eq!(expected_statuses(Some(&[Exact(200)])), "200");
        assert_eq!(
            expected_statuses(Some(&[Exact(200), Exact(204)])),
            "200 or 204"
        );
        assert_eq!(
            expected_statuses(Some(&[Exact(200), Exact(204), Class(3)])),
            "200, 204 or 3xx"
        );
        assert!(accepts(None, 204) && !accepts(None, 301));
        assert!(accepts(Some(&[Class(5)]), 503));
    }
}
