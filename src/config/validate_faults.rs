//! `proxies:` and the network and HTTP faults that act on them, raw → model.
//!
//! Units follow what people write by hand (`200ms`, `50%`, `100KB/s`,
//! `64KiB`) and are converted to Toxiproxy's units (ms, µs, KB/s, bytes).
//! Cross-references are checked here too: a fault names a declared proxy,
//! and HTTP faults need an embedded proxy in `mode: http`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde_yaml::Value;

use super::decode::{describe, scalar_text};
use super::diagnostics::{did_you_mean, one_of, Diagnostic};
use super::model::{FaultSpec, ProxyDecl, ProxyKind};
use super::raw::{RawFault, RawMatch, RawProxy, Scalar};
use super::source::Node;
use super::units::{parse_percent_or_fraction, parse_size};
use super::validate::duration;
use crate::proxy::spec::{
    AbortPoint, CorruptMode, Direction, Distribution, HttpAction, HttpFaultSpec, RequestMatch,
    ToxicKind, ToxicSpec,
};
use crate::proxy::ProxyMode;

/// What kind of proxy a name refers to, for cross-reference checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyRole {
    Embedded(ProxyMode),
    Toxiproxy,
}

/// Every proxy name an experiment's faults may use.
#[derive(Debug, Default)]
pub struct ProxyCatalog {
    pub entries: BTreeMap<String, ProxyRole>,
    /// Declared agents (for `host:`).
    pub agents: Vec<String>,
    /// Whether faultline starts the target (`kill` without pidfile/name).
    pub command_target: bool,
}

impl ProxyCatalog {
    pub fn new(decls: &[ProxyDecl], demo: bool) -> ProxyCatalog {
        let mut entries = BTreeMap::new();
        if demo {
            for hop in [
                super::demo_names::PAYMENTS_HOP,
                super::demo_names::CANARY_HOP,
            ] {
                entries.insert(hop.to_string(), ProxyRole::Embedded(ProxyMode::Http));
            }
        }
        for d in decls {
            let role = match &d.kind {
                ProxyKind::Embedded { mode, .. } => ProxyRole::Embedded(*mode),
                ProxyKind::Toxiproxy { .. } => ProxyRole::Toxiproxy,
            };
            entries.insert(d.name.clone(), role);
        }
        ProxyCatalog {
            entries,
            ..ProxyCatalog::default()
        }
    }

    /// Adds the demo's backup hop (`payments-backup`), which exists only
    /// when the demo's `failover` is on.
    pub fn with_backup_hop(mut self) -> ProxyCatalog {
        self.entries.insert(
            super::demo_names::BACKUP_HOP.to_string(),
            ProxyRole::Embedded(ProxyMode::Http),
        );
        self
    }
}

/// `proxies:`: name → embedded or external proxy.
pub fn proxies(
    raw: Option<&BTreeMap<String, RawProxy>>,
    node: &Node<'_>,
    demo: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<ProxyDecl>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (name, raw) in raw.into_iter().flatten() {
        let at = node.at("proxies").at(name);
        if demo && name == super::demo_names::PAYMENTS_HOP {
            diags.push(at.key_error(format!(
                "`{name}` is the demo system's own hop; give this proxy another name"
            )));
            ok = false;
            continue;
        }
        match proxy(name, raw, &at, diags) {
            Some(d) => out.push(d),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn proxy(
    name: &str,
    raw: &RawProxy,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ProxyDecl> {
    let text = |v: &Option<Scalar>| v.as_ref().and_then(scalar_text);
    match (&raw.toxiproxy, &raw.upstream) {
        (Some(url), None) => {
            for key in ["listen", "mode"] {
                let present = if key == "listen" {
                    &raw.listen
                } else {
                    &raw.mode
                };
                if present.is_some() {
                    diags.push(node.at(key).key_error(format!(
                        "`{key}` belongs to embedded proxies; a Toxiproxy proxy is configured on its server"
                    )));
                    return None;
                }
            }
            let url_node = node.at("toxiproxy");
            let url = match scalar_text(url).map(|t| t.parse::<http::Uri>()) {
                Some(Ok(u))
                    if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() =>
                {
                    u
                }
                _ => {
                    diags.push(
                        url_node.error(
                            "expected the Toxiproxy admin URL, such as http://127.0.0.1:8474",
                        ),
                    );
                    return None;
                }
            };
            let remote = text(&raw.name).unwrap_or_else(|| name.to_string());
            Some(ProxyDecl {
                name: name.to_string(),
                kind: ProxyKind::Toxiproxy { url, name: remote },
            })
        }
        (None, Some(upstream)) => {
            if raw.name.is_some() {
                diags.push(node.at("name").key_error(
                    "`name` belongs to Toxiproxy proxies (`toxiproxy: URL`); an embedded proxy is named by its key",
                ));
                return None;
            }
            let upstream = match scalar_text(upstream) {
                Some(u)
                    if u.rsplit_once(':')
                        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) =>
                {
                    u
                }
                _ => {
                    diags.push(
                        node.at("upstream")
                            .error("expected `host:port`, such as 127.0.0.1:9001"),
                    );
                    return None;
                }
            };
            let listen = match &raw.listen {
                None => SocketAddr::from(([127, 0, 0, 1], 0)),
                Some(v) => match scalar_text(v).and_then(|t| t.parse::<SocketAddr>().ok()) {
                    Some(a) => a,
                    None => {
                        diags.push(node.at("listen").error(
                            "expected `ip:port`, such as 127.0.0.1:0 (port 0 picks a free port)",
                        ));
                        return None;
                    }
                },
            };
            let mode = match raw.mode.as_ref().map(|v| (scalar_text(v), v)) {
                None => ProxyMode::Tcp,
                Some((Some(t), _)) if t == "tcp" => ProxyMode::Tcp,
                Some((Some(t), _)) if t == "http" => ProxyMode::Http,
                Some((_, v)) => {
                    diags.push(
                        node.at("mode")
                            .error(format!("expected `tcp` or `http`, found {}", found(v))),
                    );
                    return None;
                }
            };
            Some(ProxyDecl {
                name: name.to_string(),
                kind: ProxyKind::Embedded {
                    listen,
                    upstream,
                    mode,
                },
            })
        }
        (Some(_), Some(_)) => {
            diags.push(node.at("toxiproxy").key_error(
                "a proxy is either embedded (`upstream`) or on a Toxiproxy server (`toxiproxy`), not both",
            ));
            None
        }
        (None, None) => {
            diags.push(node.error(
                "a proxy needs `upstream: host:port` (embedded) or `toxiproxy: URL` (an existing Toxiproxy server)",
            ));
            None
        }
    }
}

/// A network or HTTP fault (every `type` except `command`).
pub fn fault(
    raw: &RawFault,
    node: &Node<'_>,
    catalog: &ProxyCatalog,
    diags: &mut Vec<Diagnostic>,
) -> Option<FaultSpec> {
    let mut c = Ctx { node, diags };
    let toxic = |c: &mut Ctx<'_, '_>,
                 proxy: &Option<Scalar>,
                 stream: &Option<Scalar>,
                 toxicity: &Option<Scalar>,
                 kind: Option<ToxicKind>| {
        let proxy = c.proxy(proxy, catalog, false);
        let stream = c.stream(stream);
        let toxicity = c.fraction(toxicity, "toxicity");
        Some(FaultSpec::Toxic {
            proxy: proxy?,
            toxic: ToxicSpec {
                name: String::new(),
                stream: stream?,
                toxicity: toxicity?,
                kind: kind?,
            },
        })
    };
    let mut rc = super::validate_resources::Ctx {
        node,
        agents: &catalog.agents,
        diags: &mut *c.diags,
    };
    match raw {
        RawFault::Cpu(r) => return super::validate_resources::cpu(r, &mut rc),
        RawFault::Memory(r) => return super::validate_resources::memory(r, &mut rc),
        RawFault::Kill(r) => {
            return super::validate_resources::kill(r, &mut rc, catalog.command_target)
        }
        _ => {}
    }
    match raw {
        RawFault::Command(_) | RawFault::Cpu(_) | RawFault::Memory(_) | RawFault::Kill(_) => None,
        RawFault::Latency(r) => {
            let kind = (|| {
                let latency = c.millis(&r.latency, "latency", true);
                let jitter = c.millis_or_zero(&r.jitter, "jitter");
                let distribution = c.distribution(&r.distribution);
                Some(ToxicKind::Latency {
                    latency: latency?,
                    jitter: jitter?,
                    distribution: distribution?,
                })
            })();
            toxic(&mut c, &r.proxy, &r.stream, &r.toxicity, kind)
        }
        RawFault::Bandwidth(r) => {
            let kind = c
                .bandwidth(&r.rate)
                .map(|rate| ToxicKind::Bandwidth { rate });
            toxic(&mut c, &r.proxy, &r.stream, &r.toxicity, kind)
        }
        RawFault::SlowClose(r) => {
            let kind = c
                .millis(&r.delay, "delay", true)
                .map(|delay| ToxicKind::SlowClose { delay });
            toxic(&mut c, &r.proxy, &r.stream, &r.toxicity, kind)
        }
        RawFault::Timeout(r) => {
            let kind = c
                .millis_or_zero(&r.timeout, "timeout")
                .map(|timeout| ToxicKind::Timeout { timeout });
            toxic(&mut c, &r.proxy, &r.stream, &r.toxicity, kind)
        }
        RawFault::ResetPeer(r) => {
            let kind = c
                .millis_or_zero(&r.timeout, "timeout")
                .map(|timeout| ToxicKind::ResetPeer { timeout });
            toxic(&mut c, &r.proxy, &r.stream, &r.toxicity, kind)
        }
        RawFault::Slicer(r) => {
            let kind = (|| {
                let average_size = c.bytes(&r.average_size, "average_size", true);
                let size_variation = c.bytes(&r.size_variation, "size_variation", false);
                let delay = c.micros(&r.delay, "delay");
                Some(ToxicKind::Slicer {
                    average_size: average_size?,
                    size_variation: size_variation?,
                    delay: delay?,
                })
            })();
            toxic(&mut c, &r.proxy, &r.stream, &r.toxicity, kind)
        }
        RawFault::LimitData(r) => {
            let kind = c
                .bytes(&r.bytes, "bytes", true)
                .map(|bytes| ToxicKind::LimitData { bytes });
            toxic(&mut c, &r.proxy, &r.stream, &r.toxicity, kind)
        }
        RawFault::Down(r) => c
            .proxy(&r.proxy, catalog, false)
            .map(|proxy| FaultSpec::Down { proxy }),
        RawFault::HttpError(r) => {
            let status = c.status(&r.status);
            let body = c.optional_text(&r.body, "body");
            let retry_after = match &r.retry_after {
                None => Some(None),
                Some(v) => duration(v, &c.node.at("retry_after"), false, c.diags)
                    .map(|d| Some(d.as_secs())),
            };
            let action = (|| {
                Some(HttpAction::HttpError {
                    status: status?,
                    body: body?,
                    retry_after: retry_after?,
                })
            })();
            c.http(&r.proxy, &r.probability, &r.matcher, catalog, action)
        }
        RawFault::HttpDelay(r) => {
            let delay = c.millis(&r.delay, "delay", true);
            let jitter = c.millis_or_zero(&r.jitter, "jitter");
            let distribution = c.distribution(&r.distribution);
            let action = (|| {
                Some(HttpAction::HttpDelay {
                    delay: delay?,
                    jitter: jitter?,
                    distribution: distribution?,
                })
            })();
            c.http(&r.proxy, &r.probability, &r.matcher, catalog, action)
        }
        RawFault::Abort(r) => {
            let when = c.choice(
                &r.when,
                "when",
                &[
                    ("before_response", AbortPoint::BeforeResponse),
                    ("mid_body", AbortPoint::MidBody),
                ],
                AbortPoint::BeforeResponse,
            );
            let action = when.map(|when| HttpAction::Abort { when });
            c.http(&r.proxy, &r.probability, &r.matcher, catalog, action)
        }
        RawFault::Corrupt(r) => {
            let mode = c.choice(
                &r.mode,
                "mode",
                &[
                    ("truncate", CorruptMode::Truncate),
                    ("flip_bytes", CorruptMode::FlipBytes),
                    ("null_fields", CorruptMode::NullFields),
                ],
                if r.fields.is_some() {
                    CorruptMode::NullFields
                } else {
                    CorruptMode::Truncate
                },
            );
            let fields: Vec<String> = r.fields.iter().flatten().filter_map(scalar_text).collect();
            let action = match mode {
                Some(CorruptMode::NullFields) if fields.is_empty() => {
                    c.diags
                        .push(c.node.error(
                            "`corrupt` with mode `null_fields` needs `fields: [name, ...]`",
                        ));
                    None
                }
                Some(mode) => Some(HttpAction::Corrupt { mode, fields }),
                None => None,
            };
            c.http(&r.proxy, &r.probability, &r.matcher, catalog, action)
        }
        RawFault::RateLimit(r) => {
            let action = c.rate_limit(r);
            c.http(&r.proxy, &r.probability, &r.matcher, catalog, action)
        }
    }
}

/// The fault's node and the diagnostics sink, with the unit parsers.
struct Ctx<'n, 'd> {
    node: &'n Node<'n>,
    diags: &'d mut Vec<Diagnostic>,
}

fn found(v: &Value) -> String {
    match scalar_text(v) {
        Some(t) => format!("`{t}`"),
        None => describe(v).to_string(),
    }
}

impl Ctx<'_, '_> {
    fn error(&mut self, key: &str, message: String) {
        self.diags.push(self.node.at(key).error(message));
    }

    fn proxy(
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
                    .push(super::validate_resources::unknown_reference(
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

    fn stream(&mut self, raw: &Option<Scalar>) -> Option<Direction> {
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

    fn distribution(&mut self, raw: &Option<Scalar>) -> Option<Distribution> {
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

    fn choice<T: Copy>(
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
    fn fraction(&mut self, raw: &Option<Scalar>, key: &str) -> Option<f64> {
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

    fn millis(&mut self, raw: &Option<Scalar>, key: &str, required: bool) -> Option<u64> {
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

    fn millis_or_zero(&mut self, raw: &Option<Scalar>, key: &str) -> Option<u64> {
        self.millis(raw, key, false)
    }

    fn micros(&mut self, raw: &Option<Scalar>, key: &str) -> Option<u64> {
        match raw {
            Some(v) => {
                duration(v, &self.node.at(key), false, self.diags).map(|d| d.as_micros() as u64)
            }
            None => Some(0),
        }
    }

    /// A byte count: `4096`, `64KiB`, `1MB`.
    fn bytes(&mut self, raw: &Option<Scalar>, key: &str, required: bool) -> Option<u64> {
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
    fn bandwidth(&mut self, raw: &Option<Scalar>) -> Option<u64> {
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

    fn status(&mut self, raw: &Option<Scalar>) -> Option<u16> {
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
    fn rate_limit(&mut self, r: &super::raw::RawRateLimit) -> Option<HttpAction> {
        let rate = match &r.rate {
            None => {
                let message = "missing `rate` (requests per second, such as 20/s)";
                self.diags.extend(self.node.missing("rate", message));
                None
            }
            Some(v) => {
                let parsed = scalar_text(v).and_then(|t| super::units::parse_rate(t.trim()));
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

    fn optional_text(&mut self, raw: &Option<Scalar>, key: &str) -> Option<Option<String>> {
        match raw {
            None => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(v) => {
                self.error(key, format!("expected text, found {}", found(v)));
                None
            }
        }
    }

    fn matcher(&mut self, raw: &Option<RawMatch>) -> Option<RequestMatch> {
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

    fn http(
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
