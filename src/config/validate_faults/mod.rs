//! `proxies:` and the network and HTTP faults that act on them, raw → model.
//!
//! Units follow what people write by hand (`200ms`, `50%`, `100KB/s`,
//! `64KiB`) and are converted to Toxiproxy's units (ms, µs, KB/s, bytes).
//! Cross-references are checked here too: a fault names a declared proxy,
//! and HTTP faults need an embedded proxy in `mode: http`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::decode::scalar_text;
use super::diagnostics::Diagnostic;
use super::model::{FaultSpec, ProxyDecl, ProxyKind};
use super::raw::{RawFault, RawProxy, Scalar};
use super::source::Node;
use super::validate::duration;
use crate::proxy::spec::{AbortPoint, CorruptMode, HttpAction, ToxicKind, ToxicSpec};
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

mod ctx;

use ctx::{found, Ctx};
