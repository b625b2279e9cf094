//! The `load` section: open or closed model, timeout and the request mix,
//! merged key by key from an experiment and its suite's `defaults.load`.
//!
//! Each merged field keeps the [`Node`] it was written at, so an error in a
//! value inherited from the suite points into the suite file.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};

use super::decode::{describe, scalar_text};
use super::diagnostics::Diagnostic;
use super::model::{Load, LoadModel, RateShape, RequestSpec, StatusMatch};
use super::raw::{RawLoad, RawRate, RawRequest, Scalar};
use super::source::Node;
use super::validate::{at_least_one, duration, items, non_empty, optional_duration, request_path};

/// A `load` mapping and where it was written.
pub type Part<'a> = Option<(&'a RawLoad, Node<'a>)>;

const DEFAULT_MAX_IN_FLIGHT: u64 = 1024;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A field taken from one of the two parts.
struct Picked<'a, T> {
    value: &'a T,
    node: Node<'a>,
    /// True when the experiment itself set it (rather than the suite).
    own: bool,
}

/// The experiment's value of a field if it set one, else the suite's.
fn pick<'a, T>(
    own: &Part<'a>,
    defaults: &Part<'a>,
    field: &str,
    get: impl Fn(&'a RawLoad) -> Option<&'a T>,
) -> Option<Picked<'a, T>> {
    let from = |part: &Part<'a>, own: bool| {
        part.as_ref().and_then(|(load, node)| {
            get(load).map(|value| Picked {
                value,
                node: node.at(field),
                own,
            })
        })
    };
    from(own, true).or_else(|| from(defaults, false))
}

/// Validates the merged load of the experiment at `experiment`. With
/// `complete` false only the fields present are checked: that is how a
/// suite's `defaults.load`, which may be partial, is checked on its own.
pub fn load(
    own: Part<'_>,
    defaults: Part<'_>,
    experiment: &Node<'_>,
    complete: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Load> {
    // Where to point for something missing from the merged whole.
    let Some((_, anchor)) = own.as_ref().or(defaults.as_ref()) else {
        let message = "missing `load` (required unless a suite provides defaults.load)";
        diags.extend(experiment.missing("load", message));
        return None;
    };
    let model = model(&own, &defaults, anchor, complete, diags);
    let timeout = match pick(&own, &defaults, "timeout", |l| l.timeout.as_ref()) {
        Some(p) => optional_duration(Some(p.value), &p.node, DEFAULT_TIMEOUT, diags),
        None => Some(DEFAULT_TIMEOUT),
    };
    let requests = match pick(&own, &defaults, "requests", |l| l.requests.as_ref()) {
        None => {
            if complete {
                let message = "missing `requests`: the list of requests to send";
                diags.extend(anchor.missing("requests", message));
            }
            None
        }
        Some(p) if p.value.is_empty() => {
            diags.push(p.node.error("must list at least one request"));
            None
        }
        Some(p) => {
            let listed = items(Some(p.value), &p.node, "a request (a mapping)", diags);
            let all_present = listed.len() == p.value.len();
            let specs: Vec<Option<RequestSpec>> = listed
                .into_iter()
                .map(|(raw, at)| request(raw, &at, diags))
                .collect();
            let specs: Option<Vec<RequestSpec>> = specs.into_iter().collect();
            specs.filter(|_| all_present)
        }
    };
    let version_from = match pick(&own, &defaults, "version_from", |l| l.version_from.as_ref()) {
        Some(p) => super::validate_expect::load_version_from(p.value, &p.node, diags).map(Some),
        None => Some(None),
    };
    Some(Load {
        model: model?,
        timeout: timeout?,
        requests: requests?,
        version_from: version_from?,
    })
}

fn model(
    own: &Part<'_>,
    defaults: &Part<'_>,
    anchor: &Node<'_>,
    complete: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<LoadModel> {
    let sets_model = |part: &Part<'_>| {
        part.as_ref()
            .is_some_and(|(l, _)| l.rate.is_some() || l.concurrency.is_some())
    };
    // `rate` and `concurrency` are one choice: an experiment that makes it
    // replaces the suite's choice entirely.
    let own_model = sets_model(own);
    let (chosen, chosen_is_own) = if own_model {
        (own, true)
    } else {
        (defaults, false)
    };
    let max_in_flight = pick(own, defaults, "max_in_flight", |l| l.max_in_flight.as_ref());
    let (rate, concurrency) = match chosen {
        Some((load, node)) if sets_model(chosen) => (
            load.rate.as_ref().map(|r| (r, node.at("rate"))),
            load.concurrency.map(|c| (c, node.at("concurrency"))),
        ),
        _ => (None, None),
    };
    match (rate, concurrency) {
        (Some(_), Some((_, at))) => {
            let message = "`rate` (open model) and `concurrency` (closed model) cannot be combined";
            diags.push(at.key_error(message));
            None
        }
        (Some((rate, at)), None) => {
            let shape = rate_shape(rate, &at, diags);
            let max = match max_in_flight {
                Some(p) => at_least_one(Some(*p.value), &p.node, DEFAULT_MAX_IN_FLIGHT, diags)
                    .inspect(|&n| bound(crate::bounds::in_flight(n), &p.node, diags))
                    .and_then(|n| to_usize(n, &p.node, diags)),
                None => usize::try_from(DEFAULT_MAX_IN_FLIGHT).ok(),
            };
            Some(LoadModel::Open {
                rate: shape?,
                max_in_flight: max?,
            })
        }
        (None, Some((count, at))) => {
            let concurrency = at_least_one(Some(count), &at, 1, diags)
                .inspect(|&n| bound(crate::bounds::concurrency(n), &at, diags))
                .and_then(|n| to_usize(n, &at, diags));
            // A suite's max_in_flight quietly does not apply to an experiment
            // that chose the closed model; one written next to it is a mistake.
            let mut ok = true;
            if let Some(p) = max_in_flight {
                if p.own || !chosen_is_own {
                    let message = "`max_in_flight` only applies to the open model (`rate`)";
                    diags.push(p.node.key_error(message));
                    ok = false;
                }
            }
            let concurrency = concurrency?;
            ok.then_some(LoadModel::Closed { concurrency })
        }
        (None, None) => {
            let cut = [own, defaults].iter().any(|part| {
                part.as_ref().is_some_and(|(_, node)| {
                    node.at("rate").is_suppressed() || node.at("concurrency").is_suppressed()
                })
            });
            if complete && !cut {
                let message = "missing `rate` (open model) or `concurrency` (closed model)";
                diags.extend(anchor.missing("rate", message));
            }
            None
        }
    }
}

/// A load bound: the value is kept (so `--force` can lift it), the
/// diagnostic says which bound and how.
pub fn bound(
    checked: Result<(), crate::bounds::BoundError>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    if let Err(e) = checked {
        diags.push(node.error(e.to_string()).liftable());
    }
}

fn to_usize(n: u64, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<usize> {
    let converted = usize::try_from(n).ok();
    if converted.is_none() {
        diags.push(node.error(format!("`{n}` is too large")));
    }
    converted
}

fn rate_shape(raw: &RawRate, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<RateShape> {
    match raw {
        RawRate::Constant(rate) => positive_number(*rate, node, "requests per second", diags)
            .inspect(|&r| bound(crate::bounds::rate(r), node, diags))
            .map(RateShape::Constant),
        RawRate::Ramp(ramp) => {
            let from = match ramp.from {
                Some(v) if v.is_finite() && v >= 0.0 => {
                    bound(crate::bounds::rate(v), &node.at("from"), diags);
                    Some(v)
                }
                Some(v) => {
                    diags.push(node.at("from").error(format!(
                        "must be 0 or more requests per second, found `{v}`"
                    )));
                    None
                }
                None => {
                    diags.extend(
                        node.missing("from", "missing `from`: the starting rate of the ramp"),
                    );
                    None
                }
            };
            let to = match ramp.to {
                Some(v) => positive_number(v, &node.at("to"), "requests per second", diags)
                    .inspect(|&r| bound(crate::bounds::rate(r), &node.at("to"), diags)),
                None => {
                    diags.extend(node.missing("to", "missing `to`: the final rate of the ramp"));
                    None
                }
            };
            let over = match &ramp.over {
                Some(v) => duration(v, &node.at("over"), true, diags).inspect(|&d| {
                    bound(
                        crate::bounds::duration("a ramp over", d),
                        &node.at("over"),
                        diags,
                    )
                }),
                None => {
                    diags.extend(node.missing(
                        "over",
                        "missing `over`: how long the ramp takes, e.g. `over: 30s`",
                    ));
                    None
                }
            };
            Some(RateShape::Ramp {
                from: from?,
                to: to?,
                over: over?,
            })
        }
    }
}

fn positive_number(
    value: f64,
    node: &Node<'_>,
    unit: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<f64> {
    if value.is_finite() && value > 0.0 {
        return Some(value);
    }
    diags.push(node.error(format!("must be greater than 0 {unit}, found `{value}`")));
    None
}

fn request(raw: &RawRequest, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<RequestSpec> {
    let method = match &raw.method {
        Some(text) => method(text, &node.at("method"), diags),
        None => Some(Method::GET),
    };
    let path = match &raw.path {
        Some(text) => request_path(text, &node.at("path"), diags),
        None => {
            diags.extend(node.missing("path", "missing `path`, e.g. `path: /checkout`"));
            None
        }
    };
    let name = match &raw.name {
        Some(text) => non_empty(text, &node.at("name"), diags).map(Some),
        None => Some(None),
    };
    let headers = headers(raw.headers.as_ref(), &node.at("headers"), diags);
    let weight = match raw.weight {
        None => Some(1),
        Some(0) => {
            diags.push(node.at("weight").error("must be at least 1, found `0`"));
            None
        }
        Some(w) => {
            let converted = u32::try_from(w).ok();
            if converted.is_none() {
                diags.push(
                    node.at("weight")
                        .error(format!("must be at most {}, found `{w}`", u32::MAX)),
                );
            }
            converted
        }
    };
    let expect_status = expect_status(raw.expect_status.as_ref(), &node.at("expect_status"), diags);

    let (method, path) = (method?, path?);
    Some(RequestSpec {
        name: name?.unwrap_or_else(|| format!("{method} {path}")),
        method,
        path,
        headers: headers?,
        body: raw.body.clone().map(bytes::Bytes::from),
        weight: weight?,
        expect_status: expect_status?,
    })
}

pub(super) fn method(text: &str, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<Method> {
    // `get` surely means GET; custom methods are tokens like `PURGE`.
    let upper = text.trim().to_ascii_uppercase();
    let parsed = Method::from_bytes(upper.as_bytes())
        .ok()
        .filter(|_| !upper.is_empty());
    if parsed.is_none() {
        diags.push(node.error(format!(
            "expected an HTTP method such as GET or POST, found `{text}`"
        )));
    }
    parsed
}

pub(super) fn headers(
    raw: Option<&serde_yaml::Mapping>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<(HeaderName, HeaderValue)>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (key, value) in raw.into_iter().flatten() {
        let key_text = scalar_text(key).unwrap_or_else(|| describe(key).to_string());
        let at = node.at(&key_text);
        let name = HeaderName::from_bytes(key_text.as_bytes()).ok();
        if name.is_none() {
            diags.push(at.key_error(format!("`{key_text}` is not a valid header name")));
        }
        let header_value = scalar_text(value).and_then(|v| HeaderValue::from_str(&v).ok());
        if header_value.is_none() {
            let found = scalar_text(value)
                .map_or_else(|| describe(value).to_string(), |v| format!("`{v}`"));
            diags.push(at.error(format!(
                "expected a header value (visible text, no line breaks), found {found}"
            )));
        }
        match (name, header_value) {
            (Some(n), Some(v)) => out.push((n, v)),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// `Some(None)` when absent (the runner's default: 2xx and 3xx).
fn expect_status(
    raw: Option<&Vec<Scalar>>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Option<Vec<StatusMatch>>> {
    let Some(list) = raw else {
        return Some(None);
    };
    if list.is_empty() {
        diags.push(node.error("must list at least one status; leave it out to accept 2xx and 3xx"));
        return None;
    }
    let mut ok = true;
    let mut out = Vec::new();
    for (index, value) in list.iter().enumerate() {
        match status(value) {
            Some(s) => out.push(s),
            None => {
                let found = scalar_text(value)
                    .map_or_else(|| describe(value).to_string(), |v| format!("`{v}`"));
                diags.push(node.item(index).error(format!(
                    "expected a status code (100 to 599) or a class such as 2xx, found {found}"
                )));
                ok = false;
            }
        }
    }
    ok.then_some(Some(out))
}

pub(super) fn status(value: &Scalar) -> Option<StatusMatch> {
    let text = scalar_text(value)?.trim().to_ascii_lowercase();
    if let Some(digit) = text.strip_suffix("xx") {
        return match digit.parse::<u16>() {
            Ok(class @ 1..=5) if digit.len() == 1 => Some(StatusMatch::Class(class)),
            _ => None,
        };
    }
    match text.parse::<u16>() {
        Ok(code @ 100..=599) if text.len() == 3 => Some(StatusMatch::Exact(code)),
        _ => None,
    }
}
