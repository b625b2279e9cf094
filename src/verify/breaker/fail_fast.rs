//! `breaker` in `style: fail_fast`: a circuit breaker judged from the
//! traffic it shapes.
//!
//! During a dependency fault a working breaker turns slow or failing calls
//! into *fast failures* (a listed status, under a latency bound) and stops
//! calling the dependency; after the fault it lets calls through again and
//! successes resume. All three are read from the 100 ms timeline (by
//! completion time) and the call counter sampled at the dependency's proxy:
//!
//! - opened: the first slot after the fault starts in which most responses
//!   are fast failures;
//! - calls while open: calls the proxy saw from then until the fault ends
//!   (half-open trial calls included, as a dependency would see them), in
//!   total (`max_dependency_calls`) and per window (`probes`);
//! - closed: the first slot after the fault ends in which at least 90% of
//!   responses succeed.

use std::time::Duration;

use super::super::evidence::{
    fail, new_check, percent, phase_with_timeline, secs, status_mix, Evidence,
};
use super::{probes_while_open, share, state_check, CLOSED_SUCCESS_SHARE};
use crate::config::model::BreakerSpec;
use crate::journal::Check;
use crate::metrics::{Slot, Timeline};

/// Judges one breaker. `classifier` is the index of this verifier's
/// fast-failure classifier in the timeline; `index` its place in `verify`.
pub(super) fn check(
    spec: &BreakerSpec,
    classifier: usize,
    index: usize,
    ev: &Evidence<'_>,
) -> Check {
    let mut expected = format!("fails fast within {}", secs(spec.opens_within));
    if let Some(max) = spec.max_dependency_calls {
        let dependency = spec.dependency.as_deref().unwrap_or("the dependency");
        expected += &format!(", ≤ {max} calls to {dependency} while open");
    }
    expected += &format!(
        ", closes within {} after the fault",
        secs(spec.closes_within)
    );
    let mut check = new_check(
        "breaker",
        format!("breaker during `{}`", spec.phase),
        Some(&spec.phase),
        expected,
    );
    let (phase, metrics, timeline) = match phase_with_timeline(ev, &spec.phase) {
        Ok(found) => found,
        Err(why) => return fail(check, why),
    };
    // The fault's real apply and removal (`after`/`for`), not the phase's edges.
    let fault = &phase.fault_span(spec.dependency.as_deref());
    check.samples = metrics.requests;
    let statuses = spec
        .fast_fail_status
        .iter()
        .map(|s| match s {
            crate::config::model::StatusMatch::Exact(c) => c.to_string(),
            crate::config::model::StatusMatch::Class(c) => format!("{c}xx"),
        })
        .collect::<Vec<_>>()
        .join("/");
    let fast = format!("{statuses} in < {}", secs(spec.fast_fail_latency));

    // Opening: the first majority-fast-failure slot during the fault.
    let opened = timeline
        .between(fault.start, fault.end)
        .find(|(_, slot)| slot.requests > 0 && 2 * matched(slot, classifier) > slot.requests)
        .map(|(i, _)| Timeline::start_of(i));
    let Some(opened) = opened else {
        let fast_total: u64 = timeline
            .between(fault.start, fault.end)
            .map(|(_, s)| u64::from(matched(s, classifier)))
            .sum();
        check.observed = "never failed fast".into();
        return fail(
            check,
            format!(
                "the breaker never opened: during `{}` {} of {} responses were fast failures \
                 ({fast}); responses were {}",
                spec.phase,
                fast_total,
                metrics.requests,
                status_mix(metrics)
            ),
        );
    };
    let opened_after = opened.saturating_sub(fault.start);
    check
        .measured
        .insert("opened_after_s".into(), opened_after.as_secs_f64());
    let mut observed = vec![format!("opened after {}", secs(opened_after))];
    let mut problems = Vec::new();
    if opened_after > spec.opens_within {
        problems.push(format!(
            "it began failing fast only {} into `{}`, later than {}",
            secs(opened_after),
            spec.phase,
            secs(spec.opens_within)
        ));
    }

    // Calls reaching the dependency while open.
    if let Some(dependency) = &spec.dependency {
        if let Some(calls) = ev.calls_between(dependency, opened, fault.end) {
            check
                .measured
                .insert("dependency_calls_while_open".into(), calls as f64);
            observed.push(format!("{calls} calls to {dependency} while open"));
            if let Some(max) = spec.max_dependency_calls.filter(|max| calls > *max) {
                problems.push(format!(
                    "{dependency} still received {calls} calls while the breaker was open \
                     (at most {max} allowed): it is not shielding the dependency"
                ));
            }
        }
        if let Some(bound) = &spec.probes {
            let (text, problem) =
                probes_while_open(ev, dependency, bound, opened, fault.end, &mut check);
            observed.extend(text);
            problems.extend(problem);
        }
    }

    // Closing: successes resume after the fault ends.
    let closed = timeline
        .between(fault.end, ev.end)
        .find(|(_, slot)| {
            slot.requests > 0
                && f64::from(slot.requests - slot.errors)
                    >= CLOSED_SUCCESS_SHARE * f64::from(slot.requests)
        })
        .map(|(i, _)| Timeline::start_of(i));
    match closed {
        Some(closed) => {
            let after = closed.saturating_sub(fault.end);
            check
                .measured
                .insert("closed_after_s".into(), after.as_secs_f64());
            observed.push(format!("closed {} after the fault", secs(after)));
            if after > spec.closes_within {
                problems.push(format!(
                    "successes resumed only {} after the fault ended, later than {}",
                    secs(after),
                    secs(spec.closes_within)
                ));
            }
        }
        None => {
            observed.push("never closed".into());
            let tail = last_second(timeline, ev.end);
            problems.push(format!(
                "the breaker never closed: {} after `{}` ended, {} of the last second's {} \
                 responses were fast failures ({fast}), {} succeeded",
                secs(ev.end.saturating_sub(fault.end)),
                spec.phase,
                percent(share(tail.fast(classifier), tail.requests)),
                tail.requests,
                percent(share(tail.requests - tail.errors, tail.requests))
            ));
        }
    }

    let (text, problem) = state_check(spec, index, ev, (fault.start, fault.end));
    observed.extend(text);
    problems.extend(problem);

    check.observed = observed.join(", ");
    if !problems.is_empty() {
        return fail(check, problems.join("; "));
    }
    check
}

/// Counts of the last full second before `end`.
struct Tail {
    requests: u32,
    errors: u32,
    matched: Vec<u32>,
}

impl Tail {
    fn fast(&self, classifier: usize) -> u32 {
        self.matched.get(classifier).copied().unwrap_or(0)
    }
}

fn last_second(timeline: &Timeline, end: Duration) -> Tail {
    let from = end.saturating_sub(Duration::from_secs(1));
    let mut tail = Tail {
        requests: 0,
        errors: 0,
        matched: Vec::new(),
    };
    for (_, slot) in timeline.between(from, end) {
        tail.requests += slot.requests;
        tail.errors += slot.errors;
        if tail.matched.len() < slot.matched.len() {
            tail.matched.resize(slot.matched.len(), 0);
        }
        for (t, m) in tail.matched.iter_mut().zip(&slot.matched) {
            *t += m;
        }
    }
    tail
}

fn matched(slot: &Slot, classifier: usize) -> u32 {
    slot.matched.get(classifier).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::BreakerStyle;
    use crate::config::model::StatusMatch;
    use crate::metrics::PhaseMetrics;
    use crate::verify::evidence::{span, CounterSample};

    fn spec() -> BreakerSpec {
        BreakerSpec {
            phase: "outage".into(),
            style: BreakerStyle::FailFast,
            dependency: Some("payments".into()),
            probes: None,
            max_error_rate: 0.01,
            fast_fail_status: vec![StatusMatch::Exact(503)],
            fast_fail_latency: Duration::from_millis(50),
            opens_within: Duration::from_secs(2),
            max_dependency_calls: Some(20),
            closes_within: Duration::from_secs(3),
            state: None,
        }
    }

    /// 10 responses per 100 ms slot over 0–20 s; `kind(second)` says what they were.
    fn timeline(kind: impl Fn(f64) -> (u32, u32)) -> Timeline {
        let slots = (0..200)
            .map(|i| {
                let (errors, fast) = kind(f64::from(i) / 10.0);
                Slot {
                    requests: 10,
                    errors,
                    matched: vec![fast],
                    versions: Vec::new(),
                }
            })
            .collect();
        Timeline { slots }
    }

    fn judge(timeline: &Timeline, calls: u64) -> Check {
        let metrics = vec![PhaseMetrics::default(); 3];
        let mut ev = Evidence {
            phases: vec![
                span("baseline", 0, 5),
                span("outage", 5, 10),
                span("after", 10, 20),
            ],
            metrics: &metrics,
            timeline: Some(timeline),
            end: Duration::from_secs(20),
            ..Evidence::default()
        };
        ev.calls.insert(
            "payments".into(),
            vec![
                CounterSample {
                    at: Duration::from_secs(5),
                    value: 1000,
                },
                CounterSample {
                    at: Duration::from_millis(5500),
                    value: 1010,
                },
                CounterSample {
                    at: Duration::from_secs(10),
                    value: 1010 + calls,
                },
            ],
        );
        check(&spec(), 0, 0, &ev)
    }

    #[test]
    fn a_working_breaker_opens_shields_and_closes() {
        // Failing slowly 5.0–5.5 s, fast failures 5.5–11.0 s, healthy after.
        let t = timeline(|s| match s {
            s if (5.0..5.5).contains(&s) => (10, 0),
            s if (5.5..11.0).contains(&s) => (10, 10),
            _ => (0, 0),
        });
        let check = judge(&t, 4);
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["opened_after_s"], 0.5);
        assert_eq!(check.measured["closed_after_s"], 1.0);
        assert_eq!(check.measured["dependency_calls_while_open"], 4.0);
    }

    #[test]
    fn no_fast_failures_means_no_breaker() {
        let t = timeline(|s| {
            if (5.0..10.0).contains(&s) {
                (10, 0)
            } else {
                (0, 0)
            }
        });
        let check = judge(&t, 500);
        assert!(!check.passed);
        assert!(check.message.expect("why").contains("never opened"));
    }

    #[test]
    fn a_breaker_that_never_closes_fails() {
        let t = timeline(|s| if s >= 5.2 { (10, 10) } else { (0, 0) });
        let check = judge(&t, 0);
        assert!(!check.passed);
        let why = check.message.expect("why");
        assert!(why.contains("never closed"), "{why}");
        assert!(
            why.contains("100.0% of the last second's 100 responses were fast failures"),
            "{why}"
        );
    }

    #[test]
    fn too_many_calls_while_open_fails() {
        let t = timeline(|s| match s {
            s if (5.0..10.0).contains(&s) => (10, 10),
            _ => (0, 0),
        });
        let check = judge(&t, 300);
        assert!(!check.passed);
        assert!(check.message.expect("why").contains("received 310 calls"));
    }
}
