//! Routing: a method and a path become one [`Action`], or a 404/405.
//!
//! Pure so it can be tested without a server. The table is Toxiproxy's
//! (gorilla/mux routes in its `api.go`) plus the `http_faults` extension.

use http::Method;

/// One admin operation, with the names taken from the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    Version,
    /// `GET /metrics`: the Prometheus text format, not JSON.
    Metrics,
    Reset,
    ListProxies,
    CreateProxy,
    Populate,
    ShowProxy(String),
    /// `POST` (older clients) or `PATCH` (newer ones): same handler, as in Toxiproxy.
    UpdateProxy(String),
    DeleteProxy(String),
    ListToxics(String),
    CreateToxic(String),
    ShowToxic(String, String),
    UpdateToxic(String, String),
    DeleteToxic(String, String),
    ListHttpFaults(String),
    CreateHttpFault(String),
    ShowHttpFault(String, String),
    DeleteHttpFault(String, String),
}

impl Action {
    /// Whether the handler reads the request body (others ignore it).
    pub fn takes_body(&self) -> bool {
        matches!(
            self,
            Action::CreateProxy
                | Action::Populate
                | Action::UpdateProxy(_)
                | Action::CreateToxic(_)
                | Action::UpdateToxic(..)
                | Action::CreateHttpFault(_)
        )
    }
}

pub(super) use crate::server::NoRoute;

/// Maps `method path` to an action. The query string must already be gone.
pub(super) fn route(method: &Method, path: &str) -> Result<Action, NoRoute> {
    let segments = split(path).ok_or(NoRoute::NotFound)?;
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = method.clone();
    // Each arm: the path shape, then its methods; a known shape with an
    // unknown method is a 405 with the methods it does accept.
    let (allowed, action) = match segs.as_slice() {
        ["version"] => ("GET", (m == Method::GET).then_some(Action::Version)),
        ["metrics"] => ("GET", (m == Method::GET).then_some(Action::Metrics)),
        ["reset"] => ("POST", (m == Method::POST).then_some(Action::Reset)),
        ["populate"] => ("POST", (m == Method::POST).then_some(Action::Populate)),
        ["proxies"] => (
            "GET, POST",
            match m {
                Method::GET => Some(Action::ListProxies),
                Method::POST => Some(Action::CreateProxy),
                _ => None,
            },
        ),
        ["proxies", proxy] => {
            let p = proxy.to_string();
            (
                "GET, POST, PATCH, DELETE",
                match m {
                    Method::GET => Some(Action::ShowProxy(p)),
                    Method::POST | Method::PATCH => Some(Action::UpdateProxy(p)),
                    Method::DELETE => Some(Action::DeleteProxy(p)),
                    _ => None,
                },
            )
        }
        ["proxies", proxy, "toxics"] => {
            let p = proxy.to_string();
            (
                "GET, POST",
                match m {
                    Method::GET => Some(Action::ListToxics(p)),
                    Method::POST => Some(Action::CreateToxic(p)),
                    _ => None,
                },
            )
        }
        ["proxies", proxy, "toxics", toxic] => {
            let (p, t) = (proxy.to_string(), toxic.to_string());
            (
                "GET, POST, PATCH, DELETE",
                match m {
                    Method::GET => Some(Action::ShowToxic(p, t)),
                    Method::POST | Method::PATCH => Some(Action::UpdateToxic(p, t)),
                    Method::DELETE => Some(Action::DeleteToxic(p, t)),
                    _ => None,
                },
            )
        }
        ["proxies", proxy, "http_faults"] => {
            let p = proxy.to_string();
            (
                "GET, POST",
                match m {
                    Method::GET => Some(Action::ListHttpFaults(p)),
                    Method::POST => Some(Action::CreateHttpFault(p)),
                    _ => None,
                },
            )
        }
        ["proxies", proxy, "http_faults", fault] => {
            let (p, f) = (proxy.to_string(), fault.to_string());
            (
                "GET, DELETE",
                match m {
                    Method::GET => Some(Action::ShowHttpFault(p, f)),
                    Method::DELETE => Some(Action::DeleteHttpFault(p, f)),
                    _ => None,
                },
            )
        }
        _ => return Err(NoRoute::NotFound),
    };
    action.ok_or(NoRoute::MethodNotAllowed(allowed))
}

/// Splits an absolute path into percent-decoded segments. `None` for paths
/// that cannot name anything: not starting with `/`, an empty segment
/// (`//`, a trailing `/`), or a segment that does not decode to UTF-8.
fn split(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    rest.split('/')
        .map(|seg| {
            if seg.is_empty() {
                None
            } else {
                percent_decode(seg)
            }
        })
        .collect()
}

/// Decodes `%XX` escapes (names may hold spaces and other reserved
/// characters); `None` on a malformed escape or invalid UTF-8.
fn percent_decode(seg: &str) -> Option<String> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: Method, path: &str) -> Action {
        route(&method, path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"))
    }

    #[test]
    fn every_toxiproxy_route_maps_to_its_action() {
        let p = || "redis".to_string();
        let t = || "lag".to_string();
        let cases = [
            (Method::GET, "/version", Action::Version),
            (Method::GET, "/metrics", Action::Metrics),
            (Method::POST, "/reset", Action::Reset),
            (Method::GET, "/proxies", Action::ListProxies),
            (Method::POST, "/proxies", Action::CreateProxy),
            (Method::POST, "/populate", Action::Populate),
            (Method::GET, "/proxies/redis", Action::ShowProxy(p())),
            (Method::POST, "/proxies/redis", Action::UpdateProxy(p())),
            (Method::PATCH, "/proxies/redis", Action::UpdateProxy(p())),
            (Method::DELETE, "/proxies/redis", Action::DeleteProxy(p())),
            (
                Method::GET,
                "/proxies/redis/toxics",
                Action::ListToxics(p()),
            ),
            (
                Method::POST,
                "/proxies/redis/toxics",
                Action::CreateToxic(p()),
            ),
            (
                Method::GET,
                "/proxies/redis/toxics/lag",
                Action::ShowToxic(p(), t()),
            ),
            (
                Method::POST,
                "/proxies/redis/toxics/lag",
                Action::UpdateToxic(p(), t()),
            ),
            (
                Method::PATCH,
                "/proxies/redis/toxics/lag",
                Action::UpdateToxic(p(), t()),
            ),
            (
                Method::DELETE,
                "/proxies/redis/toxics/lag",
                Action::DeleteToxic(p(), t()),
            ),
            (
                Method::GET,
                "/proxies/redis/http_faults",
                Action::ListHttpFaults(p()),
            ),
            (
                Method::POST,
                "/proxies/redis/http_faults",
                Action::CreateHttpFault(p()),
            ),
            (
                Method::GET,
                "/proxies/redis/http_faults/lag",
                Action::ShowHttpFault(p(), t()),
            ),
            (
                Method::DELETE,
                "/proxies/redis/http_faults/lag",
                Action::DeleteHttpFault(p(), t()),
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(ok(method.clone(), path), want, "{method} {path}");
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_a_405_listing_the_allowed_ones() {
        let cases = [
            (Method::DELETE, "/version", "GET"),
            (Method::GET, "/reset", "POST"),
            (Method::PUT, "/proxies", "GET, POST"),
            (Method::PUT, "/proxies/x", "GET, POST, PATCH, DELETE"),
            (Method::PATCH, "/proxies/x/http_faults/y", "GET, DELETE"),
            (Method::OPTIONS, "/proxies/x/toxics", "GET, POST"),
        ];
        for (method, path, allow) in cases {
            assert_eq!(
                route(&method, path),
                Err(NoRoute::MethodNotAllowed(allow)),
                "{method} {path}"
            );
        }
    }

    #[test]
    fn unknown_or_malformed_paths_are_404() {
        for path in [
            "/",
            "",
            "version",
            "/versions",
            "/version/",
            "/proxies/",
            "//proxies",
            "/proxies//toxics",
            "/proxies/x/toxics/y/z",
            "/proxies/x/unknown",
            "/proxies/%zz",
            "/proxies/%ff",
            "/proxies/%4",
        ] {
            assert_eq!(
                route(&Method::GET, path),
                Err(NoRoute::NotFound),
                "{path:?}"
            );
        }
    }

    #[test]
    fn names_in_the_path_are_percent_decoded() {
        assert_eq!(
            ok(Method::GET, "/proxies/my%20db/toxics/lat%2Fency"),
            Action::ShowToxic("my db".into(), "lat/ency".into())
        );
        assert_eq!(
            ok(Method::GET, "/proxies/caf%C3%A9"),
            Action::ShowProxy("café".into())
        );
    }

    #[test]
    fn only_writes_read_the_body() {
        assert!(ok(Method::POST, "/proxies").takes_body());
        assert!(ok(Method::PATCH, "/proxies/x/toxics/y").takes_body());
        assert!(!ok(Method::POST, "/reset").takes_body());
        assert!(!ok(Method::DELETE, "/proxies/x").takes_body());
    }
}
