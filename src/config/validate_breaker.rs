//! `verify: - breaker:` raw → model: the two styles of breaker and the
//! combinations that make no sense (a "fast failure" that is a success, a
//! `fail_over` breaker without a dependency to count calls at), each an
//! error that says which style fits.

use std::time::Duration;

use serde_yaml::Value;

use super::decode::{describe, scalar_text};
use super::diagnostics::{one_of, Diagnostic};
use super::model::{BreakerSpec, BreakerStateProbe, BreakerStyle, ProbeBound, StatusMatch};
use super::raw::Scalar;
use super::raw_verify::{RawBreaker, RawProbeBound};
use super::source::Node;
use super::validate::{duration, optional_duration, required_described};
use super::validate_faults::ProxyRole;
use super::validate_resources::unknown_reference;
use super::validate_verify::{fraction, pointer, probe_url, statuses, Refs};

/// `fail_over`'s default bound while open: a balancer's health probes or
/// retries of an ejected backend, not traffic.
pub const DEFAULT_FAIL_OVER_PROBES: ProbeBound = ProbeBound {
    max: 2,
    per: Duration::from_secs(1),
};
/// `fail_over`'s default bound on the clients' error rate while open.
pub const DEFAULT_FAIL_OVER_ERROR_RATE: f64 = 0.01;

pub fn breaker(
    raw: &RawBreaker,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<BreakerSpec> {
    let phase = refs.phase(raw.phase.as_ref(), node, diags);
    let style = style(raw.style.as_ref(), &node.at("style"), diags)?;
    let dependency = dependency(raw, node, refs, diags);
    if raw.max_dependency_calls.is_some() && raw.dependency.is_none() {
        diags.push(node.at("max_dependency_calls").key_error(
            "`max_dependency_calls` needs `dependency`: the proxy where calls are counted",
        ));
        return None;
    }
    if raw.probes.is_some() && raw.dependency.is_none() {
        diags.push(
            node.at("probes")
                .key_error("`probes` needs `dependency`: the proxy where calls are counted"),
        );
        return None;
    }
    if style == BreakerStyle::FailOver {
        if raw.dependency.is_none() {
            diags.extend(node.missing(
                "dependency",
                "a `fail_over` breaker is judged by the calls reaching the failing dependency: \
                 add `dependency:`, the proxy in front of it",
            ));
            return None;
        }
        if raw.fast_fail.is_some() {
            diags.push(node.at("fast_fail").key_error(
                "`fast_fail` describes a `fail_fast` breaker; a `fail_over` breaker keeps \
                 clients healthy and is judged by the calls reaching the dependency",
            ));
            return None;
        }
    } else if raw.max_error_rate.is_some() {
        diags.push(node.at("max_error_rate").key_error(
            "`max_error_rate` is for `style: fail_over` (clients stay healthy); a `fail_fast` \
             breaker answers errors on purpose",
        ));
        return None;
    }
    let (status, latency) = fast_fail(raw, node, diags);
    let probes = match &raw.probes {
        Some(p) => probe_bound(p, &node.at("probes"), diags).map(Some),
        None if style == BreakerStyle::FailOver => Some(Some(DEFAULT_FAIL_OVER_PROBES)),
        None => Some(None),
    };
    let max_error_rate = match &raw.max_error_rate {
        Some(v) => fraction(v, &node.at("max_error_rate"), diags),
        None => Some(DEFAULT_FAIL_OVER_ERROR_RATE),
    };
    let opens_within = optional_duration(
        raw.opens_within.as_ref(),
        &node.at("opens_within"),
        Duration::from_secs(5),
        diags,
    );
    let closes_within = optional_duration(
        raw.closes_within.as_ref(),
        &node.at("closes_within"),
        Duration::from_secs(10),
        diags,
    );
    let state = state(raw, node, diags);
    Some(BreakerSpec {
        phase: phase?,
        style,
        dependency: dependency?,
        probes: probes?,
        max_error_rate: max_error_rate?,
        fast_fail_status: status?,
        fast_fail_latency: latency?,
        opens_within: opens_within?,
        max_dependency_calls: raw.max_dependency_calls,
        closes_within: closes_within?,
        state: state?,
    })
}

const STYLES: [&str; 2] = ["fail_fast", "fail_over"];

fn style(
    raw: Option<&Scalar>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<BreakerStyle> {
    let Some(v) = raw else {
        return Some(BreakerStyle::FailFast);
    };
    match scalar_text(v).as_deref() {
        Some("fail_fast") => Some(BreakerStyle::FailFast),
        Some("fail_over") => Some(BreakerStyle::FailOver),
        _ => {
            let found =
                scalar_text(v).map_or_else(|| describe(v).to_string(), |t| format!("`{t}`"));
            let d = node.error(format!("expected {}, found {found}", one_of(&STYLES)));
            let d = match scalar_text(v).and_then(|t| super::did_you_mean(&t, STYLES)) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d,
            };
            diags.push(d);
            None
        }
    }
}

fn dependency(
    raw: &RawBreaker,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Option<String>> {
    let Some(name) = &raw.dependency else {
        return Some(None);
    };
    match refs.proxies.entries.get(name) {
        Some(ProxyRole::Embedded(_)) => Some(Some(name.clone())),
        Some(ProxyRole::Toxiproxy) => {
            diags.push(node.at("dependency").error(format!(
                "calls can only be counted at a proxy faultline runs; `{name}` is on a Toxiproxy server"
            )));
            None
        }
        None => {
            let known: Vec<&str> = refs.proxies.entries.keys().map(String::as_str).collect();
            diags.push(unknown_reference(
                &node.at("dependency"),
                "proxy",
                name,
                &known,
                "proxies",
            ));
            None
        }
    }
}

/// The fast failure's statuses and latency bound; a success status is
/// refused: a breaker whose clients see 200s is a `fail_over` breaker.
fn fast_fail(
    raw: &RawBreaker,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> (Option<Vec<StatusMatch>>, Option<Duration>) {
    let default = (
        Some(vec![StatusMatch::Exact(503)]),
        Some(Duration::from_millis(50)),
    );
    let Some(f) = &raw.fast_fail else {
        return default;
    };
    let at = node.at("fast_fail");
    let status = match &f.status {
        Some(v) => statuses(v, &at.at("status"), diags),
        None => default.0,
    };
    let status = status.and_then(|list| {
        let success = list.iter().find(|s| match s {
            StatusMatch::Exact(c) => (200..400).contains(c),
            StatusMatch::Class(c) => (2..=3).contains(c),
        });
        match success {
            None => Some(list),
            Some(s) => {
                let shown = match s {
                    StatusMatch::Exact(c) => c.to_string(),
                    StatusMatch::Class(c) => format!("{c}xx"),
                };
                diags.push(
                    at.at("status")
                        .error(format!(
                            "a fast failure with status {shown} is a success: the breaker would \
                             \"open\" on healthy responses"
                        ))
                        .with_help(
                            "if clients stay healthy while the failing dependency is shielded \
                             (a balancer ejecting a backend), use `style: fail_over` with \
                             `dependency:`",
                        ),
                );
                None
            }
        }
    });
    let latency = match &f.latency {
        Some(v) => duration(v, &at.at("latency"), true, diags),
        None => default.1,
    };
    (status, latency)
}

fn probe_bound(
    raw: &RawProbeBound,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ProbeBound> {
    let max = match raw.max {
        Some(m) => Some(m),
        None => {
            diags.extend(node.missing(
                "max",
                "missing `max`: the most calls per window while open, e.g. `max: 2`",
            ));
            None
        }
    };
    let per = optional_duration(
        raw.per.as_ref(),
        &node.at("per"),
        Duration::from_secs(1),
        diags,
    );
    Some(ProbeBound {
        max: max?,
        per: per?,
    })
}

fn state(
    raw: &RawBreaker,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Option<BreakerStateProbe>> {
    let Some(s) = &raw.state else {
        return Some(None);
    };
    let at = node.at("state");
    let url = required_described(
        s.url.as_ref(),
        &at,
        "url",
        "the state endpoint, e.g. /admin/breaker",
        diags,
    )
    .and_then(|u| probe_url(&u, &at.at("url"), diags));
    let ptr = match &s.pointer {
        Some(p) => pointer(p, &at.at("pointer"), diags),
        None => Some("/state".to_string()),
    };
    let text = |v: &Option<Value>, default: &str| {
        v.as_ref()
            .and_then(scalar_text)
            .unwrap_or_else(|| default.to_string())
    };
    Some(Some(BreakerStateProbe {
        url: url?,
        pointer: ptr?,
        open: text(&s.open, "open"),
        closed: text(&s.closed, "closed"),
    }))
}
