//! `GET /metrics` of `faultline proxy`: the hops' counters in the
//! Prometheus text format, under Toxiproxy's names where it has them
//! (`toxiproxy_proxy_sent_bytes_total{direction, listener, proxy,
//! upstream}`, as its `-proxy-metrics` flag exports) and faultline's own
//! for the rest: connections, active toxics and HTTP faults.
//!
//! Rendered by the run's exposition code ([`crate::metrics::export`]), so
//! both speak exactly one format. Cardinality is the number of proxies.

use crate::metrics::export::model::{Desc, Kind, Store, Value};
use crate::metrics::export::text;
use crate::proxy::registry::ProxyInfo;

static SENT_BYTES: Desc = Desc {
    name: "toxiproxy_proxy_sent_bytes_total",
    help: "Bytes forwarded, by direction (upstream: client to upstream; downstream: back).",
    kind: Kind::Counter,
    labels: &["direction", "listener", "proxy", "upstream"],
};
static CONNECTIONS: Desc = Desc {
    name: "faultline_proxy_connections_total",
    help: "TCP connections accepted, including refused ones.",
    kind: Kind::Counter,
    labels: &["proxy"],
};
static ACTIVE: Desc = Desc {
    name: "faultline_proxy_connections_active",
    help: "Connections being forwarded now.",
    kind: Kind::Gauge,
    labels: &["proxy"],
};
static REFUSED: Desc = Desc {
    name: "faultline_proxy_refused_connections_total",
    help: "Connects refused while the proxy was disabled (down).",
    kind: Kind::Counter,
    labels: &["proxy"],
};
static UPSTREAM_FAILURES: Desc = Desc {
    name: "faultline_proxy_upstream_failures_total",
    help: "Connections whose upstream connect failed.",
    kind: Kind::Counter,
    labels: &["proxy"],
};
static ENABLED: Desc = Desc {
    name: "faultline_proxy_enabled",
    help: "1 while the proxy is enabled, 0 while it is down.",
    kind: Kind::Gauge,
    labels: &["proxy"],
};
static TOXICS: Desc = Desc {
    name: "faultline_proxy_toxics_active",
    help: "Toxics on the proxy now.",
    kind: Kind::Gauge,
    labels: &["proxy"],
};
static HTTP_FAULTS: Desc = Desc {
    name: "faultline_proxy_http_faults_active",
    help: "HTTP faults on the proxy now (mode: http).",
    kind: Kind::Gauge,
    labels: &["proxy"],
};
static HTTP_REQUESTS: Desc = Desc {
    name: "faultline_proxy_http_requests_total",
    help: "HTTP requests forwarded upstream (mode: http).",
    kind: Kind::Counter,
    labels: &["proxy"],
};
static HTTP_FAULTS_APPLIED: Desc = Desc {
    name: "faultline_proxy_http_faults_applied_total",
    help: "HTTP faults that fired (mode: http).",
    kind: Kind::Counter,
    labels: &["proxy"],
};

/// The exposition of `proxies`.
pub(super) fn render(proxies: &[ProxyInfo]) -> String {
    let mut s = Store::default();
    let n = |v: u64| Value::Scalar(v as f64);
    for p in proxies {
        let name = p.name.as_str();
        let listen = p.listen.to_string();
        for (direction, bytes) in [
            ("upstream", p.stats.bytes_upstream),
            ("downstream", p.stats.bytes_downstream),
        ] {
            let labels = [direction, &listen, name, &p.upstream];
            s.set(&SENT_BYTES, &labels, n(bytes));
        }
        s.set(&CONNECTIONS, &[name], n(p.stats.accepted));
        s.set(&ACTIVE, &[name], n(p.stats.active));
        let refused = p.stats.refused + p.stats.refused_connects;
        s.set(&REFUSED, &[name], n(refused));
        s.set(&UPSTREAM_FAILURES, &[name], n(p.stats.upstream_failures));
        s.set(&ENABLED, &[name], n(u64::from(p.enabled)));
        s.set(&TOXICS, &[name], n(p.toxics.len() as u64));
        s.set(&HTTP_FAULTS, &[name], n(p.http_faults.len() as u64));
        s.set(&HTTP_REQUESTS, &[name], n(p.stats.requests));
        s.set(
            &HTTP_FAULTS_APPLIED,
            &[name],
            n(p.stats.http_faults_applied),
        );
    }
    text::render(&s.snapshot())
}
