//! The field readers of fault validation ([`Ctx`]): one method per kind of
//! value a fault holds (proxy names, streams, shares, durations, sizes,
//! statuses, matchers, `rate_limit`'s fields), each reporting at the
//! field's node.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::super::decode::{describe, scalar_text};
use super::super::diagnostics::{did_you_mean, one_of, Diagnostic};
use super::super::model::FaultSpec;
use super::super::raw::{RawMatch, Scalar};
use super::super::source::Node;
use super::super::units::{parse_percent_or_fraction, parse_size};
use super::super::validate::duration;
use super::{ProxyCatalog, ProxyRole};
use crate::proxy::spec::{Direction, Distribution, HttpAction, HttpFaultSpec, RequestMatch};
use crate::proxy::ProxyMode;

/// The fault's node and the diagnostics sink, with the unit parsers.
pub(super) struct Ctx<'n, 'd> {
    pub(super) node: &'n Node<'n>,
    pub(super) diags: &'d mut Vec<Diagnostic>,
}

pub(super) fn found(v: &Value) -> String {
    match scalar_text(v) {
        Some(t) => format!("`{t}`"),
        None => describe(v).to_string(),
    }
}

impl Ctx<'_, '_> {
    pub(super) fn error(&mut self, key: &str, message: String) {
        self.diags.push(self.node.at(key).error(message));
    }

    pub(super) fn proxy(
        &mut self,
        raw: &Option<Scalar>,
        catalog: &ProxyCatalog,
        http: bool,
    ) -> Option<String> {
        let Some(name) = raw.as_ref().and_then(scalar_text) else {
            let known: Vec<&str> = catalog.entries.keys().map(String::as_str).collect();
            let hint = if known.is_empty() {
                "declare one under `proxies:`".to_string()
            } else {
                format!("one of {}", one_of(&known))
            };
            self.diags.extend(self.node.missing(
                "proxy",
                format!("missing `proxy`: the proxy to act on ({hint})"),
            ));
            return None;
        };
        let at = self.node.at("proxy");
        match catalog.entries.get(&name) {
            None => {
                let known: Vec<&str> = catalog.entries.keys().map(String::as_str).collect();
                self.diags
                    .push(super::super::validate_resources::unknown_reference(
                        &at, "proxy", &name, &known, "proxies",
                    ));
                None
            }
            Some(ProxyRole::Toxiproxy) if http => {
                self.diags.push(at.error(format!(
                    "`{name}` is a Toxiproxy proxy, which works on bytes: HTTP faults need an embedded proxy with `mode: http`"
                )));
                None
            }
            Some(ProxyRole::Embedded(ProxyMode::Tcp)) if http => {
                self.diags.push(at.error(format!(
                    "`{name}` is a TCP proxy: HTTP faults need `mode: http` on it (TCP toxics work in both modes)"
                )));
                None
            }
            Some(_) => Some(name),
        }
    }

    pub(super) fn stream(&mut self, raw: &Option<Scalar>) -> Option<Direction> {
        self.choice(
            raw,
            "stream",
            &[
                ("downstream", Direction::Downstream),
                ("upstream", Direction::Upstream),
            ],
            Direction::Downstream,
        )
    }

    pub(super) fn distribution(&mut self, raw: &Option<Scalar>) -> Option<Distribution> {
        self.choice(
            raw,
            "distribution",
            &[
                ("uniform", Distribution::Uniform),
                ("normal", Distribution::Normal),
                ("pareto", Distribution::Pareto),
            ],
            Distribution::Uniform,
        )
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        raw: &Option<Scalar>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> Option<T> {
        let Some(v) = raw else { return Some(default) };
        let text = scalar_text(v).unwrap_or_default();
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == text) {
            return Some(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let mut d =
            self.node
                .at(key)
                .error(format!("expected {}, found {}", one_of(&names), found(v)));
        if let Some(s) = did_you_mean(&text, names.iter().copied()) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.diags.push(d);
        None
    }

    /// `50%` or a fraction in 0..=1; default 1 (every connection / request).
    pub(super) fn fraction(&mut self, raw: &Option<Scalar>, key: &str) -> Option<f64> {
        let Some(v) = raw else { return Some(1.0) };
        let value = match v {
            Value::Number(n) => n.as_f64().filter(|f| (0.0..=1.0).contains(f)).ok_or(()),
            Value::String(s) => parse_percent_or_fraction(s).map_err(|_| ()),
            _ => Err(()),
        };
        value
            .map_err(|()| {
                self.error(
                    key,
                    format!(
                        "expected a percentage such as 50% (or a fraction from 0 to 1), found {}",
                        found(v)
                    ),
                )
            })
            .ok()
    }

    pub(super) fn millis(
        &mut self,
        raw: &Option<Scalar>,
        key: &str,
        required: bool,
    ) -> Option<u64> {
        match raw {
            Some(v) => {
                duration(v, &self.node.at(key), false, self.diags).map(|d| d.as_millis() as u64)
            }
            None if required => {
                self.diags.extend(
                    self.node
                        .missing(key, format!("missing `{key}` (a duration such as 200ms)")),
                );
                None
            }
            None => Some(0),
        }
    }

    pub(super) fn millis_or_zero(&mut self, raw: &Option<Scalar>, key: &str) -> Option<u64> {
        self.millis(raw, key, false)
    }

    pub(super) fn micros(&mut self, raw: &Option<Scalar>, key: &str) -> Option<u64> {
        match raw {
            Some(v) => {
                duration(v, &self.node.at(key), false, self.diags).map(|d| d.as_micros() as u64)
            }
            None => Some(0),
        }
    }

    /// A byte count: `4096`, `64KiB`, `1MB`.
    pub(super) fn bytes(&mut self, raw: &Option<Scalar>, key: &str, required: bool) -> Option<u64> {
        let Some(v) = raw else {
            if required {
                self.diags.extend(self.node.missing(
                    key,
                    format!("missing `{key}` (a size such as 4096 or 64KiB)"),
                ));
                return None;
            }
            return Some(0);
        };
        let parsed = match v {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| "a size must be a whole number of bytes".to_string()),
            Value::String(s) => parse_size(s),
            _ => Err(String::new()),
        };
        match parsed {
            Ok(0) if required => {
                self.error(key, "must be greater than 0".into());
                None
            }
            Ok(n) => Some(n),
            Err(m) => {
                self.error(
                    key,
                    format!(
                        "expected a size such as 4096 or 64KiB, found {}{}",
                        found(v),
                        if m.is_empty() {
                            String::new()
                        } else {
                            format!(" ({m})")
                        }
                    ),
                );
                None
            }
        }
    }

    /// Bandwidth in KB/s (Toxiproxy's unit): `100` or `100KB/s`, `1MB/s`, `512KiB/s`.
    pub(super) fn bandwidth(&mut self, raw: &Option<Scalar>) -> Option<u64> {
        let Some(v) = raw else {
            self.diags.extend(
                self.node
                    .missing("rate", "missing `rate` (KB/s, such as 100 or 100KB/s)"),
            );
            return None;
        };
        let kb = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s
                .trim()
                .strip_suffix("/s")
                .and_then(|size| parse_size(size).ok())
                .map(|b| b / 1000),
            _ => None,
        };
        match kb {
            Some(k) if k > 0 => Some(k),
            _ => {
                self.error(
                    "rate",
                    format!(
                        "expected a bandwidth such as 100KB/s or 1MB/s (at least 1KB/s), found {}",
                        found(v)
                    ),
                );
                None
            }
        }
    }

    pub(super) fn status(&mut self, raw: &Option<Scalar>) -> Option<u16> {
        match raw {
            Some(Value::Number(n)) if n.as_u64().is_some_and(|s| (200..=599).contains(&s)) => {
                n.as_u64().map(|s| s as u16)
            }
            Some(v) => {
                self.error(
                    "status",
                    format!(
                        "expected an HTTP status from 200 to 599, found {}",
                        found(v)
                    ),
                );
                None
            }
            None => {
                self.diags.extend(
                    self.node
                        .missing("status", "missing `status` (such as 503)"),
                );
                None
            }
        }
    }

    /// `rate_limit`'s own fields, with the proxy's checks (one rule for
    /// YAML and the admin API).
    pub(super) fn rate_limit(&mut self, r: &super::super::raw::RawRateLimit) -> Option<HttpAction> {
        let rate = match &r.rate {
            None => {
                let message = "missing `rate` (requests per second, such as 20/s)";
                self.diags.extend(self.node.missing("rate", message));
                None
            }
            Some(v) => {
                let parsed = scalar_text(v).and_then(|t| super::super::units::parse_rate(t.trim()));
                if parsed.is_none() {
                    let message = format!(
                        "expected requests per second such as 20/s, found {}",
                        found(v)
                    );
                    self.error("rate", message);
                }
                parsed
            }
        };
        let burst = match &r.burst {
            None => Some(0),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|b| b > 0) => n.as_u64(),
            Some(v) => {
                self.error(
                    "burst",
                    format!(
                        "expected a whole number of requests (at least 1), found {}",
                        found(v)
                    ),
                );
                None
            }
        };
        let status = match &r.status {
            None => Some(429),
            Some(_) => self.status(&r.status),
        };
        let key_header = self.optional_text(&r.key_header, "key_header");
        let (rate, burst, status, key_header) = (rate?, burst?, status?, key_header?);
        let key = key_header.as_deref().map(str::trim);
        if let Err(message) = crate::proxy::rate_limit::check(rate, burst, status, key) {
            self.diags.push(self.node.error(message));
            return None;
        }
        Some(HttpAction::RateLimit {
            rate,
            burst,
            status,
            key_header: key.map(str::to_ascii_lowercase),
        })
    }

    pub(super) fn optional_text(
        &mut self,
        raw: &Option<Scalar>,
        key: &str,
    ) -> Option<Option<String>> {
        match raw {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(v) => {
                self.error(key, format!("expected text, found {}", found(v)));
                None
            }
        }
    }

    pub(super) fn matcher(&mut self, raw: &Option<RawMatch>) -> Option<RequestMatch> {
        let Some(m) = raw else {
            return Some(RequestMatch::default());
        };
        let at = self.node.at("match");
        let mut ok = true;
        let mut text = |v: &Option<Scalar>, key: &str, diags: &mut Vec<Diagnostic>| match v {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                diags.push(
                    at.at(key)
                        .error(format!("expected text, found {}", found(v))),
                );
                ok = false;
                None
            }
        };
        let method = text(&m.method, "method", self.diags).map(|s| s.to_ascii_uppercase());
        let path = text(&m.path, "path", self.diags);
        let mut headers = BTreeMap::new();
        for (k, v) in m.headers.iter().flatten() {
            match (scalar_text(k), scalar_text(v)) {
                (Some(k), Some(v)) if http::HeaderName::from_bytes(k.as_bytes()).is_ok() => {
                    headers.insert(k.to_ascii_lowercase(), v);
                }
                _ => {
                    self.diags.push(
                        at.at("headers")
                            .error("expected `header-name: value` pairs"),
                    );
                    ok = false;
                }
            }
        }
        if let Some(p) = &path {
            if !p.starts_with('/') && !p.starts_with('*') {
                self.diags.push(at.at("path").error(format!(
                    "a path glob must start with `/` or `*`, found `{p}`"
                )));
                ok = false;
            }
        }
        ok.then_some(RequestMatch {
            method,
            path,
            headers,
        })
    }

    pub(super) fn http(
        &mut self,
        proxy: &Option<Scalar>,
        probability: &Option<Scalar>,
        matcher: &Option<RawMatch>,
        catalog: &ProxyCatalog,
        action: Option<HttpAction>,
    ) -> Option<FaultSpec> {
        let proxy = self.proxy(proxy, catalog, true);
        let probability = self.fraction(probability, "probability");
        let matcher = self.matcher(matcher);
        Some(FaultSpec::Http {
            proxy: proxy?,
            fault: HttpFaultSpec {
                name: String::new(),
                probability: probability?,
                matcher: matcher?,
                action: action?,
            },
        })
    }
}
