//! `safety:` raw → model, and the checks it asks for before anything runs:
//! rate and duration caps, and every host the run would reach (targets,
//! proxy upstreams, Toxiproxy servers, agents, probes) against
//! `allowed_hosts`. Loopback is always allowed.

use std::time::Duration;

use super::decode::scalar_text;
use super::diagnostics::Diagnostic;
use super::model::Metric;
use super::model::{
    Experiment, LoadModel, ProbeKind, ProxyKind, RateShape, Safety, StopCondition, StopWhen,
    TargetKind,
};
use super::raw::Scalar;
use super::raw_safety::{RawSafety, RawStopCondition};
use super::source::Node;
use super::units::{format_duration, parse_threshold};
use super::validate::{duration, items, non_empty};
use super::validate_resources::unknown_reference;

/// `safety:` → [`Safety`]; `probes` are the experiment's declared probe names.
pub fn safety(
    raw: &RawSafety,
    node: &Node<'_>,
    probes: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Option<Safety> {
    let mut ok = true;
    let environment = match &raw.environment {
        Some(e) => non_empty(e, &node.at("environment"), diags).map(Some),
        None => Some(None),
    };
    let mut allowed_hosts = Vec::new();
    for (host, at) in items(
        raw.allowed_hosts.as_ref(),
        &node.at("allowed_hosts"),
        "a host name",
        diags,
    ) {
        match non_empty(host, &at, diags) {
            Some(h) if h.contains("://") || h.contains('/') => {
                diags.push(at.error(format!(
                    "a host name such as `staging.example.com` or `*.example.com`, not a URL: `{h}`"
                )));
                ok = false;
            }
            Some(h) => allowed_hosts.push(h.trim().to_ascii_lowercase()),
            None => ok = false,
        }
    }
    let max_duration = match &raw.max_duration {
        Some(v) => duration(v, &node.at("max_duration"), true, diags).map(Some),
        None => Some(None),
    };
    let max_rate = match &raw.max_rate {
        Some(v) => rate(v, &node.at("max_rate"), diags).map(Some),
        None => Some(None),
    };
    let mut abort_if = Vec::new();
    for (raw, at) in items(
        raw.abort_if.as_ref(),
        &node.at("abort_if"),
        "a stop condition",
        diags,
    ) {
        match stop_condition(raw, &at, probes, diags) {
            Some(c) => abort_if.push(c),
            None => ok = false,
        }
    }
    let safety = Safety {
        environment: environment?,
        allow_production: raw.allow_production.unwrap_or(false),
        allowed_hosts,
        max_duration: max_duration?,
        max_rate: max_rate?,
        abort_if,
    };
    ok.then_some(safety)
}

fn rate(value: &Scalar, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<f64> {
    match value.as_f64() {
        Some(r) if r > 0.0 && r.is_finite() => Some(r),
        _ => {
            diags.push(node.error(format!(
                "expected requests per second above 0, such as 500, found `{}`",
                scalar_text(value).unwrap_or_default()
            )));
            None
        }
    }
}

const STOP_METRICS: [Metric; 4] = [Metric::ErrorRate, Metric::P50, Metric::P99, Metric::Rate];

fn stop_condition(
    raw: &RawStopCondition,
    node: &Node<'_>,
    probes: &[String],
    diags: &mut Vec<Diagnostic>,
) -> Option<StopCondition> {
    let metrics = [&raw.error_rate, &raw.p50, &raw.p99, &raw.rate];
    let given: Vec<(Metric, &Scalar)> = STOP_METRICS
        .iter()
        .zip(metrics)
        .filter_map(|(m, v)| v.as_ref().map(|v| (*m, v)))
        .collect();
    let count = given.len() + usize::from(raw.probe.is_some());
    if count != 1 {
        diags.push(node.error(
            "a stop condition is exactly one of `error_rate`, `p50`, `p99`, `rate` (e.g. \
             `error_rate: \"> 50%\"`) or `probe` (a probe that fails), plus `for`",
        ));
        return None;
    }
    let hold = match &raw.hold {
        Some(v) => duration(v, &node.at("for"), true, diags),
        None => Some(Duration::from_secs(1)),
    };
    let when = if let Some(name) = &raw.probe {
        if probes.iter().any(|p| p == name) {
            Some(StopWhen::ProbeFails(name.clone()))
        } else {
            let known: Vec<&str> = probes.iter().map(String::as_str).collect();
            diags.push(unknown_reference(
                &node.at("probe"),
                "probe",
                name,
                &known,
                "probes",
            ));
            None
        }
    } else {
        let (metric, value) = given[0];
        let at = node.at(metric.key());
        match parse_threshold(metric, &scalar_text(value).unwrap_or_default()) {
            Ok(t) => Some(StopWhen::Metric(t)),
            Err(message) => {
                diags.push(at.error(message));
                None
            }
        }
    };
    let (when, hold) = (when?, hold?);
    let what = match &when {
        StopWhen::Metric(t) => format!("{} {}", t.metric.key(), t.source),
        StopWhen::ProbeFails(p) => format!("probe `{p}` failing"),
    };
    Some(StopCondition {
        source: format!("{what} for {}", format_duration(hold)),
        when,
        hold,
    })
}

/// The caps and the host allow-list, checked against what the experiment
/// would do. Pushes a diagnostic per violation.
pub fn enforce(exp: &Experiment, node: &Node<'_>, diags: &mut Vec<Diagnostic>) {
    let safety = &exp.safety;
    let at = node.at("safety");
    if let (Some(max), LoadModel::Open { rate, .. }) = (safety.max_rate, &exp.load.model) {
        let asked = match rate {
            RateShape::Constant(r) => *r,
            RateShape::Ramp { from, to, .. } => from.max(*to),
        };
        if asked > max {
            diags.push(at.at("max_rate").error(format!(
                "the load asks for up to {asked}/s, more than `max_rate` {max}/s"
            )));
        }
    }
    if let Some(max) = safety.max_duration {
        let total = exp.total_duration();
        if total > max {
            diags.push(at.at("max_duration").error(format!(
                "the phases last {}, longer than `max_duration` {}",
                format_duration(total),
                format_duration(max)
            )));
        }
    }
    for (what, host) in hosts(exp) {
        if !allowed(&host, &safety.allowed_hosts) {
            let listed = if safety.allowed_hosts.is_empty() {
                "none".to_string()
            } else {
                safety.allowed_hosts.join(", ")
            };
            diags.push(
                at.at("allowed_hosts")
                    .error(format!(
                        "{what} is on `{host}`, which is not loopback and not in `allowed_hosts` \
                         (listed: {listed})"
                    ))
                    .with_help(format!(
                        "add `{host}` to `safety.allowed_hosts` if this is intended"
                    )),
            );
        }
    }
}

/// Every (what, host) the run would reach.
pub fn hosts(exp: &Experiment) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut push = |what: String, host: Option<String>| {
        if let Some(h) = host {
            out.push((what, h));
        }
    };
    match &exp.target.kind {
        TargetKind::Url(u) | TargetKind::Command { url: u, .. } => {
            push("the target".into(), u.host().map(String::from));
        }
        TargetKind::Demo(_) => {}
    }
    for p in &exp.proxies {
        match &p.kind {
            ProxyKind::Embedded { upstream, .. } => {
                push(format!("proxy `{}`'s upstream", p.name), host_of(upstream));
            }
            ProxyKind::Toxiproxy { url, .. } => {
                push(
                    format!("proxy `{}`'s Toxiproxy server", p.name),
                    url.host().map(String::from),
                );
            }
        }
    }
    for a in &exp.agents {
        push(
            format!("agent `{}`", a.name),
            a.url.host().map(String::from),
        );
    }
    for p in &exp.probes {
        let host = match &p.kind {
            ProbeKind::Http(h) => h
                .url
                .parse::<http::Uri>()
                .ok()
                .and_then(|u| u.host().map(String::from)),
            ProbeKind::Prometheus(q) => q.url.host().map(String::from),
            ProbeKind::Tcp(t) => host_of(&t.address),
            ProbeKind::Command(_) => None,
        };
        push(format!("probe `{}`", p.name), host);
    }
    out
}

/// The host of `host:port` (IPv6 in brackets).
fn host_of(address: &str) -> Option<String> {
    let (host, _) = address.rsplit_once(':')?;
    Some(
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
    )
}

/// Loopback, or listed (exactly, or under a `*.domain` entry).
pub fn allowed(host: &str, list: &[String]) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    if host == "localhost" || host == "::1" || host.starts_with("127.") {
        return true;
    }
    list.iter().any(|entry| match entry.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => *entry == host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_always_allowed_and_wildcards_match_subdomains() {
        let list = vec!["staging.example.com".to_string(), "*.svc.local".to_string()];
        assert!(allowed("127.0.0.1", &[]));
        assert!(allowed("[::1]", &[]));
        assert!(allowed("localhost", &[]));
        assert!(allowed("STAGING.example.com", &list));
        assert!(allowed("payments.svc.local", &list));
        assert!(!allowed("svc.local", &list));
        assert!(!allowed("prod.example.com", &list));
        assert!(!allowed("10.0.0.5", &list));
    }
}
