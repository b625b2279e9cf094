//! Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a
//! proxy must not forward them in either direction.
//!
//! hyper frames bodies itself on each side (Content-Length or chunked), so
//! dropping `Transfer-Encoding` here is safe; `Host` is end-to-end and kept,
//! so the upstream sees the name the client asked for.

use http::header::{HeaderMap, HeaderName, CONNECTION};

/// Always hop-by-hop, whatever `Connection` says. `Proxy-*` is matched by prefix.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes every hop-by-hop header from `headers`: the fixed list, any
/// `Proxy-*` header, and every header that `Connection` names.
pub(super) fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Names listed in `Connection` (e.g. `Connection: close, x-session`) are
    // hop-by-hop for this message only.
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let fixed: Vec<HeaderName> = headers
        .keys()
        .filter(|name| {
            // `HeaderName`s are stored lower-case.
            let name = name.as_str();
            HOP_BY_HOP.contains(&name) || name.starts_with("proxy-")
        })
        .cloned()
        .collect();
    for name in fixed {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::header::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).expect("valid name"),
                HeaderValue::from_str(value).expect("valid value"),
            );
        }
        headers
    }

    fn names(headers: &HeaderMap) -> Vec<&str> {
        let mut names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        names
    }

    #[test]
    fn the_fixed_hop_by_hop_headers_are_removed_and_end_to_end_ones_kept() {
        let mut headers = map(&[
            ("Host", "payments.internal"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "x-checksum"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Content-Type", "application/json"),
            ("Content-Length", "12"),
            ("X-User", "alice"),
        ]);
        strip_hop_by_hop(&mut headers);
        assert_eq!(
            names(&headers),
            ["content-length", "content-type", "host", "x-user"]
        );
        assert_eq!(headers["host"], "payments.internal");
    }

    #[test]
    fn every_proxy_header_is_removed() {
        let mut headers = map(&[
            ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
            ("Proxy-Connection", "keep-alive"),
            ("Proxy-Authenticate", "Basic"),
            ("Accept", "*/*"),
        ]);
        strip_hop_by_hop(&mut headers);
        assert_eq!(names(&headers), ["accept"]);
    }

    #[test]
    fn headers_named_by_connection_are_removed_too() {
        let mut headers = map(&[
            ("Connection", "close, X-Session"),
            ("Connection", "x-trace"),
            ("X-Session", "abc"),
            ("X-Trace", "1"),
            ("X-Kept", "yes"),
        ]);
        strip_hop_by_hop(&mut headers);
        assert_eq!(names(&headers), ["x-kept"]);
    }

    #[test]
    fn a_connection_header_with_junk_tokens_does_not_panic() {
        let mut headers = map(&[("Connection", " , ,bad name,"), ("X-Kept", "yes")]);
        strip_hop_by_hop(&mut headers);
        assert_eq!(names(&headers), ["x-kept"]);
    }
}
