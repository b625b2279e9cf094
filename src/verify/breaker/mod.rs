//! `breaker`: a circuit breaker (or a balancer's passive health check)
//! judged from the traffic it shapes, in the style it shields with.
//!
//! - [`fail_fast`]: clients get fast failures while it is open (pybreaker,
//!   resilience4j, opossum, Hystrix); opening is read from the clients'
//!   responses.
//! - [`fail_over`]: clients stay healthy while the failing dependency is
//!   taken out of rotation (nginx `max_fails`, HAProxy `on-error
//!   mark-down`, Envoy outlier detection); opening is read from the calls
//!   reaching the dependency.
//!
//! Both count every attempt that reaches the dependency's proxy (HTTP
//! requests and connections a fault reset, aborted or refused) and may
//! check an optional state endpoint (`state:`), sampled every 250 ms.

mod fail_fast;
mod fail_over;

use std::time::Duration;

use super::evidence::{secs, Evidence, ValueSample};
use crate::config::model::{BreakerSpec, BreakerStyle, ProbeBound};
use crate::journal::Check;

/// Share of a slot's responses that must succeed for the breaker to count as closed.
const CLOSED_SUCCESS_SHARE: f64 = 0.9;

/// Judges one breaker. `classifier` is the index of this verifier's
/// fast-failure classifier in the timeline; `index` its place in `verify`.
pub fn check(spec: &BreakerSpec, classifier: usize, index: usize, ev: &Evidence<'_>) -> Check {
    match spec.style {
        BreakerStyle::FailFast => fail_fast::check(spec, classifier, index, ev),
        BreakerStyle::FailOver => fail_over::check(spec, index, ev),
    }
}

/// `part / whole`, 0 when there is nothing.
fn share(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        0.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

/// The `probes` bound while open: the busiest `per` window of calls at
/// `dependency` in `[opened, end)`, recorded in `measured`; a problem when
/// it holds more than `max`.
fn probes_while_open(
    ev: &Evidence<'_>,
    dependency: &str,
    bound: &ProbeBound,
    opened: Duration,
    end: Duration,
    check: &mut Check,
) -> (Option<String>, Option<String>) {
    let Some(calls) = ev.calls_at(dependency) else {
        return (None, None);
    };
    let Some((at, busiest)) = calls.busiest(opened, end, bound.per) else {
        return (None, None);
    };
    check
        .measured
        .insert("max_calls_per_window_while_open".into(), busiest as f64);
    let text = format!("at most {busiest} calls per {} while open", secs(bound.per));
    let problem = (busiest > bound.max).then(|| {
        format!(
            "{dependency} received {busiest} calls within {} from +{} while the breaker was \
             open (at most {} per {} allowed): it is not shielding the dependency",
            secs(bound.per),
            secs(at),
            bound.max,
            secs(bound.per)
        )
    });
    (Some(text), problem)
}

/// The state endpoint's samples, if the spec has one: whether it said
/// `open` during the fault and `closed` soon after.
fn state_check(
    spec: &BreakerSpec,
    index: usize,
    ev: &Evidence<'_>,
    fault: (Duration, Duration),
) -> (Option<String>, Option<String>) {
    let Some(state) = &spec.state else {
        return (None, None);
    };
    let samples = ev.states.get(&index).map(Vec::as_slice).unwrap_or(&[]);
    let (text, problem) = state_agreement(
        samples,
        &state.open,
        &state.closed,
        fault,
        spec.closes_within,
    );
    (Some(text), problem)
}

/// Whether the state endpoint said `open` during the fault and `closed` soon after.
fn state_agreement(
    samples: &[ValueSample],
    open: &str,
    closed: &str,
    (start, end): (Duration, Duration),
    closes_within: Duration,
) -> (String, Option<String>) {
    let seen_open = samples
        .iter()
        .find(|s| s.at >= start && s.at < end && s.value.as_deref() == Some(open));
    let seen_closed = samples
        .iter()
        .find(|s| s.at >= end && s.value.as_deref() == Some(closed));
    match (seen_open, seen_closed) {
        (None, _) => {
            let seen: Vec<String> = samples
                .iter()
                .filter(|s| s.at >= start && s.at < end)
                .filter_map(|s| s.value.clone())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            (
                "state never `open`".into(),
                Some(format!(
                    "the state endpoint never reported `{open}` during the fault (saw: {})",
                    if seen.is_empty() {
                        "nothing readable".into()
                    } else {
                        seen.join(", ")
                    }
                )),
            )
        }
        (Some(o), Some(c)) => {
            let after = c.at.saturating_sub(end);
            let text = format!(
                "state `{open}` at +{}, `{closed}` {} after",
                secs(o.at.saturating_sub(start)),
                secs(after)
            );
            let late = (after > closes_within + Duration::from_secs(1)).then(|| {
                format!(
                    "the state endpoint reported `{closed}` only {} after the fault",
                    secs(after)
                )
            });
            (text, late)
        }
        (Some(_), None) => (
            format!("state never `{closed}` after the fault"),
            Some(format!(
                "the state endpoint never reported `{closed}` after the fault"
            )),
        ),
    }
}
