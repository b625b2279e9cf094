//! `breaker` in `style: fail_over`: clients stay healthy while the failing
//! dependency is shielded, so the verdict is read where the shielding
//! shows — the calls reaching the dependency (every attempt at its proxy,
//! sampled every 100 ms):
//!
//! - opened: the first sample during the fault from which the next `per`
//!   window holds at most `probes.max` calls (`opens_within`);
//! - while open: no `per` window up to the fault's end holds more than
//!   `probes.max` calls (a balancer's health probes or retries of an
//!   ejected backend are allowed, traffic is not), and the clients' error
//!   rate stays at or below `max_error_rate`;
//! - closed: the first sample after the fault from which the dependency
//!   serves traffic again — the proxy forwards to it in that 100 ms and, over
//!   the next second (or what is left of the run, at least 300 ms), at least
//!   half the bytes per second it forwarded before the fault — with ≥ 90% of
//!   the clients' responses succeeding (`closes_within`). Bytes, not calls:
//!   through a TCP hop a balancer's kept-alive connections carry the traffic
//!   without new connections. A dependency never re-admitted never closes.

use std::time::Duration;

use super::super::calls::Calls;
use super::super::evidence::{fail, new_check, percent, phase_with_timeline, secs, Evidence};
use super::{probes_while_open, share, state_check, CLOSED_SUCCESS_SHARE};
use crate::config::model::{BreakerSpec, ProbeBound};
use crate::journal::Check;
use crate::metrics::Timeline;

/// How far before the fault the normal call rate is measured.
const BEFORE: Duration = Duration::from_secs(2);
/// Resumed traffic is at least this share of the call rate before the fault.
const RESUMED_SHARE: f64 = 0.5;

pub(super) fn check(spec: &BreakerSpec, index: usize, ev: &Evidence<'_>) -> Check {
    let dependency = spec.dependency.as_deref().unwrap_or("the dependency");
    let bound = spec.probes.unwrap_or(ProbeBound {
        max: 2,
        per: Duration::from_secs(1),
    });
    let expected = format!(
        "calls to {dependency} fall to ≤ {} per {} within {}, clients ≤ {} errors while open, \
         {dependency} serves traffic again within {} after the fault",
        bound.max,
        secs(bound.per),
        secs(spec.opens_within),
        percent(spec.max_error_rate),
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
    let Some(calls) = ev.calls_at(dependency) else {
        return fail(
            check,
            format!("not judged: no calls were counted at `{dependency}`"),
        );
    };
    let before_from = fault.start.saturating_sub(BEFORE);
    let before = calls.rate(before_from, fault.start).unwrap_or(0.0);
    let traffic = ev.forwarded_at(dependency);
    let bytes_before = traffic
        .and_then(|t| t.rate(before_from, fault.start))
        .unwrap_or(0.0);
    check
        .measured
        .insert("dependency_rate_before".into(), before);
    if before <= 0.0 && bytes_before <= 0.0 {
        return fail(
            check,
            format!(
                "not judged: `{dependency}` received no calls in the {} before `{}`; a \
                 fail-over breaker is judged by the drop in its calls",
                secs(fault.start - before_from),
                spec.phase
            ),
        );
    }

    // Opening: the first window that holds no more than the probe bound.
    let opened = calls
        .windows(fault.start, fault.end, bound.per)
        .find(|&(_, n)| n <= bound.max)
        .map(|(at, _)| at);
    let Some(opened) = opened else {
        let during = calls.rate(fault.start, fault.end).unwrap_or(0.0);
        check.observed = format!("never shielded {dependency}");
        check
            .measured
            .insert("dependency_rate_during".into(), during);
        return fail(
            check,
            format!(
                "the breaker never opened: {dependency} kept receiving {during:.1} calls/s \
                 during `{}` ({before:.1}/s before); a fail-over breaker cuts them to at most {} \
                 per {}",
                spec.phase,
                bound.max,
                secs(bound.per)
            ),
        );
    };
    let opened_after = opened.saturating_sub(fault.start);
    check
        .measured
        .insert("opened_after_s".into(), opened_after.as_secs_f64());
    let mut observed = vec![format!(
        "{dependency} shielded after {} (100 ms resolution)",
        secs(opened_after)
    )];
    let mut problems = Vec::new();
    if opened_after > spec.opens_within {
        problems.push(format!(
            "calls to {dependency} fell to the probe bound only {} into `{}`, later than {}",
            secs(opened_after),
            spec.phase,
            secs(spec.opens_within)
        ));
    }
    let while_open = calls.within(opened, fault.end);
    check
        .measured
        .insert("dependency_calls_while_open".into(), while_open as f64);
    let (text, problem) = probes_while_open(ev, dependency, &bound, opened, fault.end, &mut check);
    observed.extend(text);
    problems.extend(problem);

    // The clients, meanwhile, must not notice.
    let (requests, errors) = counts(timeline, opened, fault.end);
    let error_rate = share(errors, requests);
    check
        .measured
        .insert("error_rate_while_open".into(), error_rate);
    observed.push(format!("clients {} errors while open", percent(error_rate)));
    if requests > 0 && error_rate > spec.max_error_rate {
        problems.push(format!(
            "clients saw {} errors ({errors} of {requests}) while {dependency} was shielded (at \
             most {} allowed): the fail-over did not keep them healthy",
            percent(error_rate),
            percent(spec.max_error_rate)
        ));
    }

    // Closing: the dependency serves traffic again.
    let resumed = Resumed {
        calls,
        traffic: traffic.filter(|_| bytes_before > 0.0),
        calls_rate: (bound.max as f64 / bound.per.as_secs_f64()).max(RESUMED_SHARE * before),
        bytes_rate: RESUMED_SHARE * bytes_before,
    };
    match resumed.first(timeline, fault.end, ev.end) {
        Some(at) => {
            let after = at.saturating_sub(fault.end);
            check
                .measured
                .insert("closed_after_s".into(), after.as_secs_f64());
            observed.push(format!(
                "{dependency} re-admitted {} after the fault",
                secs(after)
            ));
            if after > spec.closes_within {
                problems.push(format!(
                    "{dependency} served traffic again only {} after the fault ended, later \
                     than {}",
                    secs(after),
                    secs(spec.closes_within)
                ));
            }
        }
        None => {
            observed.push(format!("{dependency} never re-admitted"));
            let last_second = ev.end.saturating_sub(Duration::from_secs(1));
            let now = match resumed.traffic {
                Some(bytes) => format!(
                    "was forwarded {:.0} B/s ({:.0} B/s before the fault)",
                    bytes.rate(last_second, ev.end).unwrap_or(0.0),
                    bytes_before
                ),
                None => format!(
                    "received {:.1} calls/s ({before:.1}/s before the fault)",
                    calls.rate(last_second, ev.end).unwrap_or(0.0)
                ),
            };
            problems.push(format!(
                "the breaker never closed: {} after `{}` ended {dependency} still {now}: it \
                 was never re-admitted",
                secs(ev.end.saturating_sub(fault.end)),
                spec.phase
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

/// What "serving traffic again" means for one dependency.
struct Resumed<'a> {
    calls: Calls<'a>,
    /// Bytes forwarded, when the proxy forwarded any before the fault.
    traffic: Option<Calls<'a>>,
    /// Calls per second above which calls alone count as traffic.
    calls_rate: f64,
    /// Forwarded bytes per second that count as traffic.
    bytes_rate: f64,
}

impl Resumed<'_> {
    /// The first sample after `from` whose own 100 ms carries traffic to the
    /// dependency, whose next second (or the rest of the run, at least
    /// 300 ms) carries enough, and in which ≥ 90% of the clients' responses
    /// succeed. Requiring traffic in its own slot keeps the instant from
    /// running ahead of the re-admission.
    fn first(&self, timeline: &Timeline, from: Duration, end: Duration) -> Option<Duration> {
        let least = Duration::from_millis(300);
        self.calls
            .times(from, end.saturating_sub(least))
            .find(|&at| {
                let until = (at + Duration::from_secs(1)).min(end);
                let served = match self.traffic {
                    Some(bytes) => {
                        bytes.next_slot(at) > 0
                            && bytes.rate(at, until).unwrap_or(0.0) >= self.bytes_rate
                    }
                    None => {
                        self.calls.next_slot(at) > 0
                            && self.calls.rate(at, until).unwrap_or(0.0) > self.calls_rate
                    }
                };
                let (requests, errors) = counts(timeline, at, until);
                served
                    && requests > 0
                    && f64::from(requests - errors) >= CLOSED_SUCCESS_SHARE * f64::from(requests)
            })
    }
}

/// Responses and errors completed in `[from, to)`.
fn counts(timeline: &Timeline, from: Duration, to: Duration) -> (u32, u32) {
    timeline
        .between(from, to)
        .fold((0, 0), |(r, e), (_, s)| (r + s.requests, e + s.errors))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{BreakerStyle, StatusMatch};
    use crate::metrics::{PhaseMetrics, Slot};
    use crate::verify::evidence::{span, CounterSample, FaultWindow};

    fn spec() -> BreakerSpec {
        BreakerSpec {
            phase: "outage".into(),
            style: BreakerStyle::FailOver,
            dependency: Some("backend".into()),
            probes: Some(ProbeBound {
                max: 2,
                per: Duration::from_secs(1),
            }),
            max_error_rate: 0.01,
            fast_fail_status: vec![StatusMatch::Exact(503)],
            fast_fail_latency: Duration::from_millis(50),
            opens_within: Duration::from_secs(2),
            max_dependency_calls: None,
            closes_within: Duration::from_secs(4),
            state: None,
        }
    }

    /// 10 client responses per 100 ms over 0–20 s, `errors(second)` of them errors.
    fn timeline(errors: impl Fn(f64) -> u32) -> Timeline {
        let slots = (0..200)
            .map(|i| Slot {
                requests: 10,
                errors: errors(f64::from(i) / 10.0),
                matched: Vec::new(),
                versions: Vec::new(),
            })
            .collect();
        Timeline { slots }
    }

    /// The dependency's counter every 100 ms; `per_slot(second)` calls per 100 ms.
    fn calls(per_slot: impl Fn(f64) -> u64) -> Vec<CounterSample> {
        let mut value = 0;
        (0..=200u64)
            .map(|i| {
                if i > 0 {
                    value += per_slot((i - 1) as f64 / 10.0);
                }
                CounterSample {
                    at: Duration::from_millis(i * 100),
                    value,
                }
            })
            .collect()
    }

    fn judge(spec: &BreakerSpec, timeline: &Timeline, samples: Vec<CounterSample>) -> Check {
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
        ev.calls.insert("backend".into(), samples);
        check(spec, 0, &ev)
    }

    /// nginx with `max_fails=2 fail_timeout=3s`: the backend gets half the
    /// traffic (5 per 100 ms), two failing attempts at 5.0 s, one probe at
    /// 8 s, nothing else until it is re-admitted at 11 s.
    fn healthy(s: f64) -> u64 {
        match s {
            s if s < 5.0 => 5,
            s if (5.0..5.1).contains(&s) => 2,
            s if (8.0..8.1).contains(&s) => 1,
            s if s < 11.0 => 0,
            _ => 5,
        }
    }

    #[test]
    fn a_balancer_that_ejects_and_readmits_passes() {
        let check = judge(&spec(), &timeline(|_| 0), calls(healthy));
        assert!(check.passed, "{check:?}");
        // The two failing attempts that eject it fit the probe bound.
        assert_eq!(check.measured["opened_after_s"], 0.0);
        assert_eq!(check.measured["closed_after_s"], 1.0);
        assert_eq!(check.measured["max_calls_per_window_while_open"], 2.0);
        assert_eq!(check.measured["dependency_rate_before"], 50.0);
    }

    #[test]
    fn a_balancer_that_never_ejects_fails_as_never_opened() {
        // max_fails=0: every client request still tries the bad backend first.
        let check = judge(&spec(), &timeline(|_| 0), calls(|_| 5));
        assert!(!check.passed);
        let why = check.message.expect("why");
        assert!(why.contains("never opened"), "{why}");
        assert!(why.contains("50.0 calls/s"), "{why}");
    }

    #[test]
    fn a_backend_never_readmitted_fails_as_never_closed() {
        // fail_timeout=60s: after the fault the backend keeps its probe trickle.
        let check = judge(
            &spec(),
            &timeline(|_| 0),
            calls(|s| {
                if s < 5.0 {
                    5
                } else {
                    u64::from(s.fract() < 0.1)
                }
            }),
        );
        assert!(!check.passed);
        let why = check.message.expect("why");
        assert!(
            why.contains("never closed") && why.contains("never re-admitted"),
            "{why}"
        );
    }

    #[test]
    fn too_many_probes_or_client_errors_while_open_fail() {
        // Ejected, but re-tried 5 times a second.
        let retried = |s: f64| match s {
            s if s < 5.0 => 5,
            s if (5.5..10.0).contains(&s) && (s * 10.0).round() as u64 % 2 == 0 => 1,
            s if s < 10.0 => 0,
            _ => 5,
        };
        let check = judge(&spec(), &timeline(|_| 0), calls(retried));
        assert!(!check.passed);
        let why = check.message.expect("why");
        assert!(why.contains("received 5 calls within 1.0s"), "{why}");
        // Shielded, but the clients see the failures.
        let check = judge(
            &spec(),
            &timeline(|s| u32::from((5.0..10.0).contains(&s))),
            calls(healthy),
        );
        assert!(!check.passed);
        let why = check.message.expect("why");
        assert!(why.contains("clients saw 10.0% errors"), "{why}");
    }

    /// `after: 1s, for: 2s` on the dependency: the fault was in effect from
    /// 6 s to 8 s of a 5–10 s phase; the balancer ejects the backend at
    /// once and re-admits it 1 s after the fault was removed.
    #[test]
    fn a_delayed_fault_is_judged_from_its_real_apply_and_removal() {
        let shifted = |s: f64| match s {
            s if s < 6.0 => 5,
            s if (6.0..6.1).contains(&s) => 2,
            s if s < 9.0 => 0,
            _ => 5,
        };
        let metrics = vec![PhaseMetrics::default(); 3];
        let timeline = timeline(|_| 0);
        let window = |proxy: &str, applied: u64, removed: u64| FaultWindow {
            proxy: Some(proxy.into()),
            applied: Duration::from_millis(applied),
            removed: Duration::from_millis(removed),
        };
        let mut outage = span("outage", 5, 10);
        // A fault on another hop over the whole phase does not count.
        outage.faults = vec![window("backend", 6000, 8000), window("other", 5000, 10_000)];
        let mut ev = Evidence {
            phases: vec![span("baseline", 0, 5), outage, span("after", 10, 20)],
            metrics: &metrics,
            timeline: Some(&timeline),
            end: Duration::from_secs(20),
            ..Evidence::default()
        };
        ev.calls.insert("backend".into(), calls(shifted));
        let check = check(&spec(), 0, &ev);
        assert!(check.passed, "{check:?}");
        assert_eq!(
            check.measured["opened_after_s"], 0.0,
            "from the apply at 6 s"
        );
        assert_eq!(
            check.measured["closed_after_s"], 1.0,
            "from the removal at 8 s"
        );
        assert_eq!(check.measured["dependency_rate_before"], 50.0);

        // Read from the phase's edges instead, the same traffic looks like
        // a breaker that took a second to open.
        ev.phases[1].faults.clear();
        let edges = super::check(&spec(), 0, &ev);
        assert_eq!(edges.measured["opened_after_s"], 1.0, "{edges:?}");
    }

    /// Through a TCP hop a balancer keeps a connection alive: half a new
    /// connection a second, but bytes flow; after the fault one new
    /// connection carries the traffic again.
    #[test]
    fn kept_alive_traffic_through_a_tcp_hop_is_read_from_the_bytes() {
        let connections =
            |s: f64| u64::from([1.0, 3.0, 5.0, 11.0].contains(&((s * 10.0).round() / 10.0)));
        let bytes = |s: f64| if (5.0..11.0).contains(&s) { 0 } else { 900 };
        let metrics = vec![PhaseMetrics::default(); 3];
        let t = timeline(|_| 0);
        let mut ev = Evidence {
            phases: vec![
                span("baseline", 0, 5),
                span("outage", 5, 10),
                span("after", 10, 20),
            ],
            metrics: &metrics,
            timeline: Some(&t),
            end: Duration::from_secs(20),
            ..Evidence::default()
        };
        ev.calls.insert("backend".into(), calls(connections));
        ev.forwarded.insert("backend".into(), calls(bytes));
        let check = check(&spec(), 0, &ev);
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["closed_after_s"], 1.0);
        // Never forwarded to again: never re-admitted, said in bytes.
        ev.forwarded
            .insert("backend".into(), calls(|s| if s < 5.0 { 900 } else { 0 }));
        let check = super::check(&spec(), 0, &ev);
        assert!(!check.passed);
        let why = check.message.expect("why");
        assert!(
            why.contains("never re-admitted") && why.contains("B/s"),
            "{why}"
        );
    }

    #[test]
    fn a_dependency_idle_before_the_fault_cannot_be_judged() {
        let check = judge(&spec(), &timeline(|_| 0), calls(|_| 0));
        assert!(!check.passed);
        assert!(check.message.expect("why").contains("not judged"));
    }
}
