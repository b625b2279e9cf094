//! `recovery`: how long after the last fault is removed until the system is
//! back to its baseline.
//!
//! Recovered means N consecutive 1-second windows (default 3) whose p99 and
//! error rate are within tolerance of the baseline phase; the recovery time
//! is from the fault phase's end to the start of the first such run. One good
//! second is not recovery: a flapping system has good seconds too. A window
//! in which nothing completed is not healthy either (a hung system completes
//! nothing, and must not look recovered).

use std::time::Duration;

use super::evidence::{fail, new_check, percent, secs, Evidence};
use crate::config::model::{LatencyTolerance, RecoverySpec};
use crate::metrics::WindowSummary;
use crate::runner::journal::Check;

/// A relative p99 tolerance is never tighter than this: on a busy 2-core
/// machine the p99 of one second (often the slowest of 50–100 requests)
/// moves by 10 ms without anything being wrong.
pub const MIN_P99_SLACK: Duration = Duration::from_millis(10);

/// The bounds a window must meet to count as recovered.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Bounds {
    p99_ms: f64,
    error_rate: f64,
}

pub fn check(spec: &RecoverySpec, ev: &Evidence<'_>) -> Check {
    let expected = format!(
        "back to baseline within {} of `{}` ending ({} healthy 1s windows in a row)",
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
    let base_errors = base.error_rate();
    let bounds = Bounds {
        p99_ms: base_p99 + slack_ms(spec.tolerance.p99, base_p99),
        error_rate: base_errors + spec.tolerance.error_rate,
    };
    check.measured.insert("baseline_p99_ms".into(), base_p99);
    check
        .measured
        .insert("baseline_error_rate".into(), base_errors);
    check.expected += &format!(
        ": p99 ≤ {:.1}ms, error rate ≤ {}",
        bounds.p99_ms,
        percent(bounds.error_rate)
    );

    let fault_end = fault.end;
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
        .find(|run| run.iter().all(|w| healthy(w, bounds)))
        .and_then(|run| run.first());
    match start {
        Some(w) => {
            let took = Duration::from_secs(w.t).saturating_sub(fault_end);
            check
                .measured
                .insert("recovery_s".into(), took.as_secs_f64());
            check.observed = format!("recovered {} after the fault ended", secs(took));
            if took > spec.within {
                check.passed = false;
                check.message = Some(format!(
                    "recovered only {} after `{}` ended, later than {}",
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

fn slack_ms(tolerance: LatencyTolerance, base_p99: f64) -> f64 {
    match tolerance {
        LatencyTolerance::Relative(r) => (base_p99 * r).max(MIN_P99_SLACK.as_secs_f64() * 1000.0),
        LatencyTolerance::Absolute(d) => d.as_secs_f64() * 1000.0,
    }
}

fn healthy(w: &WindowSummary, bounds: Bounds) -> bool {
    w.requests > 0
        && w.error_rate <= bounds.error_rate + 1e-12
        && w.p99.is_some_and(|p| p <= bounds.p99_ms)
}

/// What kept the windows unhealthy, e.g. "error rate above 1.0% in 12 of 12
/// windows (last: 100.0%), p99 above 8.2ms in 3".
fn describe_unhealthy(windows: &[&WindowSummary], bounds: Bounds) -> String {
    let n = windows.len();
    let empty = windows.iter().filter(|w| w.requests == 0).count();
    let erroring = windows
        .iter()
        .filter(|w| w.requests > 0 && w.error_rate > bounds.error_rate + 1e-12)
        .count();
    let slow = windows
        .iter()
        .filter(|w| w.p99.is_some_and(|p| p > bounds.p99_ms))
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
    if slow > 0 {
        let worst = windows.iter().filter_map(|w| w.p99).fold(0.0, f64::max);
        parts.push(format!(
            "p99 above {:.1}ms in {slow} of {n} (worst {worst:.1}ms)",
            bounds.p99_ms
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
    use crate::config::model::Tolerance;
    use crate::metrics::PhaseMetrics;
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

    fn baseline() -> PhaseMetrics {
        let mut m = PhaseMetrics::default();
        for _ in 0..100 {
            m.response.record(Duration::from_millis(10));
        }
        m.requests = 100;
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
        }
    }

    fn judge(series: &[WindowSummary]) -> Check {
        let metrics = vec![baseline(), PhaseMetrics::default(), PhaseMetrics::default()];
        let ev = Evidence {
            phases: vec![
                span("baseline", 0, 5),
                span("fault", 5, 10),
                span("recovery", 10, 20),
            ],
            metrics: &metrics,
            series,
            end: Duration::from_secs(20),
            ..Evidence::default()
        };
        check(&spec(), &ev)
    }

    #[test]
    fn recovery_time_is_the_start_of_the_first_healthy_run() {
        let mut series: Vec<WindowSummary> = (0..20).map(|t| window(t, 100, 0, 10.0)).collect();
        // Seconds 10 and 11 still erroring, 12 healthy, 13 slow, then healthy from 14.
        series[10] = window(10, 100, 50, 10.0);
        series[11] = window(11, 100, 5, 10.0);
        series[13] = window(13, 100, 0, 40.0);
        let check = judge(&series);
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["recovery_s"], 4.0);
    }

    #[test]
    fn a_system_that_stays_broken_fails_and_says_what_was_seen() {
        let mut series: Vec<WindowSummary> = (0..20).map(|t| window(t, 100, 0, 10.0)).collect();
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
    fn slow_recovery_fails_with_the_measured_time() {
        let mut series: Vec<WindowSummary> = (0..20).map(|t| window(t, 100, 0, 10.0)).collect();
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
