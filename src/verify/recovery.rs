//! `recovery`: how long after the last fault is removed until the system is
//! back to its baseline.
//!
//! Errors first: a window is healthy only when its error rate is within
//! tolerance of the baseline's, and a baseline that itself fails (above
//! `max_baseline_error_rate`, default 5%) is refused as a reference: against
//! a dead target every second "matches" a dead baseline.
//!
//! Recovered means N consecutive 1-second windows (default 3) that all meet
//! the error rate, the first of which also meets the p99 bound, and at most
//! one in three of which exceed it: on a shared 2-core host one second's p99
//! moves by tens of ms (a keep-alive stall of the backend) with nothing
//! wrong, and a verdict must not hang on one second. One good second is not
//! recovery: a flapping system has good seconds too. A window in which
//! nothing completed is not healthy either (a hung system completes nothing,
//! and must not look recovered).
//!
//! The verdict is made on whole seconds; the time reported is when the error
//! condition first held on the 100 ms timeline (see [`super::timing`]), or
//! the window's start when the second before it was too slow (p99 is only
//! known per second). The message says which resolution applies.

use std::time::Duration;

use super::evidence::{fail, new_check, percent, secs, Evidence};
use super::timing::{held_since, SECOND};
use crate::config::model::{LatencyTolerance, RecoverySpec};
use crate::journal::Check;
use crate::metrics::WindowSummary;

/// A relative p99 tolerance is never tighter than this: on a busy 2-core
/// machine the p99 of one second (often the slowest of 50–100 requests)
/// moves by 10 ms without anything being wrong.
pub const MIN_P99_SLACK: Duration = Duration::from_millis(10);

/// The bounds a window must meet to count as recovered.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    /// `None` when p99 is not judged (`metrics: [error_rate]`).
    p99_ms: Option<f64>,
    error_rate: f64,
}

impl Bounds {
    /// Something completed and the error rate is within bounds.
    fn errors_ok(&self, w: &WindowSummary) -> bool {
        w.requests > 0 && w.error_rate <= self.error_rate + 1e-12
    }

    fn p99_ok(&self, w: &WindowSummary) -> bool {
        match self.p99_ms {
            None => true,
            Some(bound) => w.p99.is_some_and(|p| p <= bound),
        }
    }

    /// Whether `run` counts as recovered: every window meets the error
    /// rate, the first also the p99 bound, and at most one in three are slow.
    fn recovered(&self, run: &[&WindowSummary]) -> bool {
        let slow = run.iter().filter(|w| !self.p99_ok(w)).count();
        run.iter().all(|w| self.errors_ok(w))
            && run.first().is_some_and(|w| self.p99_ok(w))
            && slow <= run.len() / 3
    }
}

pub fn check(spec: &RecoverySpec, ev: &Evidence<'_>) -> Check {
    let judged = if spec.judge_p99 {
        "p99 and error rate"
    } else {
        "error rate"
    };
    let expected = format!(
        "{judged} back to baseline within {} of `{}` ending ({} healthy 1s windows in a row)",
        secs(spec.within),
        spec.after,
        spec.windows
    );
    let mut check = new_check(
        "recovery",
        format!("recovery after `{}`", spec.after),
        Some(&spec.after),
        expected,
    );
    let (Some((base_span, base)), Some((fault, _))) =
        (ev.phase(&spec.baseline), ev.phase(&spec.after))
    else {
        return fail(check, "not judged: a phase it names did not run".into());
    };
    if !base_span.completed || !fault.ran {
        return fail(
            check,
            format!(
                "not judged: `{}` or `{}` did not run to completion (the run stopped early)",
                spec.baseline, spec.after
            ),
        );
    }
    if base.response.is_empty() {
        return fail(
            check,
            format!("not judged: baseline `{}` has no responses", spec.baseline),
        );
    }
    let base_errors = base.error_rate();
    check
        .measured
        .insert("baseline_error_rate".into(), base_errors);
    if base_errors > spec.max_baseline_error_rate + 1e-12 {
        let classes: Vec<String> = base
            .errors_by_class
            .iter()
            .map(|(class, n)| format!("{}×{n}", class.key()))
            .collect();
        return fail(
            check,
            format!(
                "baseline itself unhealthy: `{}` had an error rate of {} ({} of {}: {}), above {}; \
                 a failing phase cannot be the reference for recovery (see \
                 `max_baseline_error_rate`)",
                spec.baseline,
                percent(base_errors),
                base.errors,
                base.requests,
                classes.join(", "),
                percent(spec.max_baseline_error_rate)
            ),
        );
    }
    // The reference is the baseline's p99, or the p99 of its slowest second
    // if higher: a one-second window is compared with the baseline's own
    // second-to-second spread, not only with its pooled p99.
    let base_p99 = ev
        .series
        .iter()
        .filter(|w| {
            Duration::from_secs(w.t) >= base_span.start
                && Duration::from_secs(w.t + 1) <= base_span.end
        })
        .filter_map(|w| w.p99)
        .fold(base.response.quantile_ms(0.99), f64::max);
    let bounds = Bounds {
        p99_ms: spec
            .judge_p99
            .then(|| base_p99 + slack_ms(spec.tolerance.p99, base_p99)),
        error_rate: base_errors + spec.tolerance.error_rate,
    };
    check.measured.insert("baseline_p99_ms".into(), base_p99);
    check.expected += &match bounds.p99_ms {
        Some(p99) => format!(
            ": error rate ≤ {}, p99 ≤ {p99:.1}ms",
            percent(bounds.error_rate)
        ),
        None => format!(": error rate ≤ {}", percent(bounds.error_rate)),
    };

    // The fault's real removal: a `for` ends it before its phase does.
    let fault_end = fault.fault_span(None).end;
    let first = fault_end.as_secs_f64().ceil() as u64;
    let windows: Vec<&WindowSummary> = ev
        .series
        .iter()
        .filter(|w| w.t >= first && Duration::from_secs(w.t + 1) <= ev.end)
        .collect();
    check.samples = windows.iter().map(|w| w.requests).sum();
    let needed = spec.windows.max(1) as usize;
    let start = windows
        .windows(needed)
        .position(|run| bounds.recovered(run));
    match start {
        Some(i) => {
            let (at, resolution) = recovered_at(&windows, i, fault_end, bounds, ev);
            let took = at.saturating_sub(fault_end);
            check
                .measured
                .insert("recovery_s".into(), took.as_secs_f64());
            check.observed = format!(
                "recovered {} after the fault ended (at {resolution} resolution)",
                secs(took)
            );
            if took > spec.within {
                check.passed = false;
                check.message = Some(format!(
                    "recovered only {} after `{}` ended (at {resolution} resolution), later than {}",
                    secs(took),
                    spec.after,
                    secs(spec.within)
                ));
            }
            check
        }
        None => {
            let observed_for = ev.end.saturating_sub(fault_end);
            check.observed = format!("not recovered ({} observed)", secs(observed_for));
            let why = if windows.len() < needed {
                format!(
                    "only {} full second(s) after `{}` ended, {needed} needed: make the phases \
                     after it longer",
                    windows.len(),
                    spec.after
                )
            } else {
                format!(
                    "not back to baseline in the {} after `{}` ended: {}",
                    secs(observed_for),
                    spec.after,
                    describe_unhealthy(&windows, bounds)
                )
            };
            fail(check, why)
        }
    }
}

/// When the system was back, given the first recovered run starts at
/// `windows[i]`, and the resolution of that instant (`100 ms` or `1 s`).
///
/// The error condition is traced back on the 100 ms timeline from the
/// run's start, not before the fault ended nor into the second before,
/// which did not recover. When that second failed on p99 alone, the
/// instant stays at the run's start: latency is only known per second.
fn recovered_at(
    windows: &[&WindowSummary],
    i: usize,
    fault_end: Duration,
    bounds: Bounds,
    ev: &Evidence<'_>,
) -> (Duration, &'static str) {
    let run_start = Duration::from_secs(windows[i].t);
    let Some(timeline) = ev.timeline else {
        return (run_start, "1 s");
    };
    if i > 0 && bounds.errors_ok(windows[i - 1]) && !bounds.p99_ok(windows[i - 1]) {
        return (run_start, "1 s");
    }
    let lower = fault_end.max(run_start.saturating_sub(SECOND));
    let at = held_since(timeline, lower, run_start, |s| {
        s.error_rate()
            .is_some_and(|r| r <= bounds.error_rate + 1e-12)
    });
    (at, "100 ms")
}

fn slack_ms(tolerance: LatencyTolerance, base_p99: f64) -> f64 {
    match tolerance {
        LatencyTolerance::Relative(r) => (base_p99 * r).max(MIN_P99_SLACK.as_secs_f64() * 1000.0),
        LatencyTolerance::Absolute(d) => d.as_secs_f64() * 1000.0,
    }
}

/// What kept the windows unhealthy, e.g. "error rate above 1.0% in 12 of 12
/// windows (last: 100.0%), p99 above 8.2ms in 3".
fn describe_unhealthy(windows: &[&WindowSummary], bounds: Bounds) -> String {
    let n = windows.len();
    let empty = windows.iter().filter(|w| w.requests == 0).count();
    let erroring = windows
        .iter()
        .filter(|w| w.requests > 0 && !bounds.errors_ok(w))
        .count();
    let slow = windows
        .iter()
        .filter(|w| w.p99.is_some() && !bounds.p99_ok(w))
        .count();
    let mut parts = Vec::new();
    if erroring > 0 {
        let last = windows
            .iter()
            .rev()
            .find(|w| w.requests > 0)
            .map_or(0.0, |w| w.error_rate);
        parts.push(format!(
            "error rate above {} in {erroring} of {n} windows (last: {})",
            percent(bounds.error_rate),
            percent(last)
        ));
    }
    if let (true, Some(bound)) = (slow > 0, bounds.p99_ms) {
        let worst = windows.iter().filter_map(|w| w.p99).fold(0.0, f64::max);
        parts.push(format!(
            "p99 above {bound:.1}ms in {slow} of {n} (worst {worst:.1}ms)"
        ));
    }
    if empty > 0 {
        parts.push(format!("no response completed in {empty} of {n}"));
    }
    if parts.is_empty() {
        "never enough healthy windows in a row".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::{Tolerance, MAX_BASELINE_ERROR_RATE};
    use crate::metrics::{ErrorClass, PhaseMetrics, Slot, Timeline};
    use crate::verify::evidence::span;

    fn window(t: u64, requests: u64, errors: u64, p99: f64) -> WindowSummary {
        WindowSummary {
            t,
            requests,
            errors,
            error_rate: errors as f64 / requests.max(1) as f64,
            p50: Some(p99 / 2.0),
            p99: (requests > 0).then_some(p99),
            phase: String::new(),
        }
    }

    /// 100 responses of 10 ms, `errors` of them refused connections.
    fn baseline(errors: u64) -> PhaseMetrics {
        let mut m = PhaseMetrics::default();
        for _ in 0..100 {
            m.response.record(Duration::from_millis(10));
        }
        m.requests = 100;
        m.errors = errors;
        if errors > 0 {
            m.errors_by_class.insert(ErrorClass::Connect, errors);
        }
        m
    }

    fn spec() -> RecoverySpec {
        RecoverySpec {
            baseline: "baseline".into(),
            after: "fault".into(),
            within: Duration::from_secs(5),
            windows: 3,
            tolerance: Tolerance {
                p99: LatencyTolerance::Relative(0.25),
                error_rate: 0.01,
            },
            judge_p99: true,
            max_baseline_error_rate: MAX_BASELINE_ERROR_RATE,
        }
    }

    fn judge_with(
        spec: &RecoverySpec,
        base: PhaseMetrics,
        series: &[WindowSummary],
        timeline: Option<&Timeline>,
    ) -> Check {
        let metrics = vec![base, PhaseMetrics::default(), PhaseMetrics::default()];
        let ev = Evidence {
            phases: vec![
                span("baseline", 0, 5),
                span("fault", 5, 10),
                span("recovery", 10, 20),
            ],
            metrics: &metrics,
            series,
            timeline,
            end: Duration::from_secs(20),
            ..Evidence::default()
        };
        check(spec, &ev)
    }

    fn judge(series: &[WindowSummary]) -> Check {
        judge_with(&spec(), baseline(0), series, None)
    }

    fn healthy() -> Vec<WindowSummary> {
        (0..20).map(|t| window(t, 100, 0, 10.0)).collect()
    }

    /// 10 responses per 100 ms over 0–20 s, all failed where `failing(second)`.
    fn timeline(failing: impl Fn(f64) -> bool) -> Timeline {
        let slots = (0..200)
            .map(|i| Slot {
                requests: 10,
                errors: if failing(f64::from(i) / 10.0) { 10 } else { 0 },
                ..Slot::default()
            })
            .collect();
        Timeline { slots }
    }

    #[test]
    fn recovery_time_is_the_start_of_the_first_healthy_run() {
        let mut series = healthy();
        // Seconds 10 and 11 still erroring, 12 healthy, 13 and 14 slow, then healthy.
        series[10] = window(10, 100, 50, 10.0);
        series[11] = window(11, 100, 5, 10.0);
        series[13] = window(13, 100, 0, 40.0);
        series[14] = window(14, 100, 0, 40.0);
        let check = judge(&series);
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["recovery_s"], 5.0);
        assert!(check.observed.contains("at 1 s resolution"), "{check:?}");
    }

    #[test]
    fn one_slow_second_in_three_is_noise_but_not_the_first_nor_two() {
        // A single slow second (a backend's keep-alive stall) inside the run.
        let mut series = healthy();
        series[11] = window(11, 100, 0, 54.0);
        let check = judge(&series);
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["recovery_s"], 0.0);
        // The run cannot start with the slow second: recovery is 1 s later.
        let mut series = healthy();
        series[10] = window(10, 100, 0, 54.0);
        assert_eq!(judge(&series).measured["recovery_s"], 1.0);
        // Slow two seconds in three is not noise.
        let mut series = healthy();
        for w in series[10..].iter_mut().filter(|w| w.t % 3 != 0) {
            *w = window(w.t, 100, 0, 54.0);
        }
        let check = judge(&series);
        assert!(!check.passed, "{check:?}");
        let why = check.message.expect("why");
        assert!(
            why.contains("p99 above") && why.contains("in 7 of 10"),
            "{why}"
        );
    }

    #[test]
    fn a_system_that_stays_broken_fails_and_says_what_was_seen() {
        let mut series = healthy();
        for w in &mut series[10..] {
            *w = window(w.t, 100, 100, 1000.0);
        }
        let check = judge(&series);
        assert!(!check.passed);
        let message = check.message.expect("a reason");
        assert!(
            message.contains("error rate above 1.0% in 10 of 10 windows (last: 100.0%)"),
            "{message}"
        );
    }

    #[test]
    fn fast_failures_never_recover_even_when_only_errors_are_judged() {
        // A dead dependency behind a healthy baseline: every request fails in 1 ms.
        let mut series = healthy();
        for w in &mut series[5..] {
            *w = window(w.t, 100, 100, 1.0);
        }
        let error_only = RecoverySpec {
            judge_p99: false,
            ..spec()
        };
        for spec in [spec(), error_only] {
            let check = judge_with(&spec, baseline(0), &series, None);
            assert!(!check.passed, "{check:?}");
            assert!(check
                .message
                .expect("why")
                .contains("error rate above 1.0%"));
        }
    }

    #[test]
    fn a_dead_baseline_is_refused_as_a_reference() {
        // Every request refused, throughout: `connect` ×100 in the baseline.
        let series: Vec<WindowSummary> = (0..20).map(|t| window(t, 100, 100, 1.0)).collect();
        let check = judge_with(&spec(), baseline(100), &series, None);
        assert!(!check.passed, "{check:?}");
        let why = check.message.expect("why");
        assert!(why.contains("baseline itself unhealthy"), "{why}");
        assert!(
            why.contains("100.0% (100 of 100: connect×100), above 5.0%"),
            "{why}"
        );
        assert!(!check.measured.contains_key("recovery_s"));
        // 4% is a usable baseline (below the default 5%); the bound follows it.
        let series: Vec<WindowSummary> = (0..20).map(|t| window(t, 100, 4, 10.0)).collect();
        let check = judge_with(&spec(), baseline(4), &series, None);
        assert!(check.passed, "{check:?}");
        let strict = RecoverySpec {
            max_baseline_error_rate: 0.02,
            ..spec()
        };
        let check = judge_with(&strict, baseline(4), &series, None);
        assert!(check.message.expect("why").contains("above 2.0%"));
    }

    #[test]
    fn error_only_recovery_ignores_latency() {
        let mut series = healthy();
        for w in &mut series[10..] {
            *w = window(w.t, 100, 0, 80.0);
        }
        assert!(!judge(&series).passed, "p99 judged: still slow");
        let error_only = RecoverySpec {
            judge_p99: false,
            ..spec()
        };
        let check = judge_with(&error_only, baseline(0), &series, None);
        assert!(check.passed, "{check:?}");
        assert!(!check.expected.contains("p99"), "{}", check.expected);
    }

    #[test]
    fn the_time_reported_is_when_errors_stopped_on_the_100ms_timeline() {
        // Errors until 12.3 s: seconds 10–12 fail, the run starts at 13.
        let t = timeline(|s| (5.0..12.3).contains(&s));
        let mut series = healthy();
        for w in &mut series[5..13] {
            *w = window(w.t, 100, 30, 10.0);
        }
        let check = judge_with(&spec(), baseline(0), &series, Some(&t));
        assert!(check.passed, "{check:?}");
        assert!(
            (check.measured["recovery_s"] - 2.3).abs() < 1e-9,
            "{check:?}"
        );
        assert!(check
            .observed
            .contains("2.3s after the fault ended (at 100 ms resolution)"));
        // When the second before the run was slow, not erroring, the run's start stands.
        let mut series = healthy();
        series[12] = window(12, 100, 0, 80.0);
        series[13] = window(13, 100, 0, 80.0);
        let t = timeline(|_| false);
        let check = judge_with(&spec(), baseline(0), &series, Some(&t));
        assert_eq!(check.measured["recovery_s"], 0.0, "{check:?}");
        let t = timeline(|s| (5.0..10.4).contains(&s));
        let mut series = healthy();
        series[10] = window(10, 100, 40, 10.0);
        series[11] = window(11, 100, 0, 80.0);
        let check = judge_with(&spec(), baseline(0), &series, Some(&t));
        assert_eq!(check.measured["recovery_s"], 2.0, "{check:?}");
        assert!(check.observed.contains("at 1 s resolution"), "{check:?}");
    }

    #[test]
    fn slow_recovery_fails_with_the_measured_time() {
        let mut series = healthy();
        for w in &mut series[10..17] {
            *w = window(w.t, 0, 0, 0.0);
        }
        let check = judge(&series);
        assert!(!check.passed);
        assert_eq!(check.measured["recovery_s"], 7.0);
        assert!(check
            .message
            .expect("reason")
            .contains("recovered only 7.0s"));
    }
}
