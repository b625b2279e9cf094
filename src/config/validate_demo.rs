//! `target.demo`: the embedded demo system's knobs, raw → [`DemoOptions`]:
//! its breaker, rollback controller, fail-over and defects, with the
//! combinations that make no sense refused (`no_ejection` without
//! `failover`, two rollback defects at once).

use super::decode::{describe, scalar_text};
use super::diagnostics::{did_you_mean, one_of, Diagnostic};
use super::model::{BreakerOptions, Defect, DemoOptions, FailoverOptions, RollbackOptions};
use super::raw::{List, RawBreaker, RawDemo, RawFailover, RawRollback, Scalar};
use super::source::Node;
use super::validate::{at_least_one, duration, items, optional_duration};

pub(super) fn demo_options(
    raw: Option<&RawDemo>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<DemoOptions> {
    let defaults = DemoOptions::default();
    let Some(raw) = raw else {
        return Some(defaults);
    };
    // A zero service time is a legitimate "instant payments" setting.
    let latency = match &raw.payments_latency {
        Some(v) => duration(v, &node.at("payments_latency"), false, diags),
        None => Some(defaults.payments_latency),
    };
    let timeout = optional_duration(
        raw.payments_timeout.as_ref(),
        &node.at("payments_timeout"),
        defaults.payments_timeout,
        diags,
    );
    let canary_weight = match &raw.canary_weight {
        Some(v) => share(v, &node.at("canary_weight"), "10%", diags),
        None => Some(defaults.canary_weight),
    };
    let defects = demo_defects(raw.defects.as_ref(), &node.at("defects"), diags);
    let breaker = match &raw.breaker {
        Some(b) => breaker_options(b, &node.at("breaker"), diags),
        None => Some(defaults.breaker),
    };
    let rollback = match &raw.rollback {
        Some(r) => rollback_options(r, &node.at("rollback"), diags),
        None => Some(defaults.rollback),
    };
    let failover = match &raw.failover {
        Some(f) => failover_options(f, &node.at("failover"), diags).map(Some),
        None => Some(None),
    };
    if raw.failover.is_none()
        && defects
            .as_ref()
            .is_some_and(|d| d.contains(&Defect::NoEjection))
    {
        diags.push(
            node.at("defects")
                .error("`no_ejection` bends the fail-over, which is off")
                .with_help(
                    "add `failover: {}` (or `failover: { max_fails: 2, fail_timeout: 2s }`)",
                ),
        );
        return None;
    }
    Some(DemoOptions {
        failover: failover?,
        payments_latency: latency?,
        payments_timeout: timeout?,
        canary_weight: canary_weight?,
        breaker: breaker?,
        rollback: rollback?,
        defects: defects?,
    })
}

/// `target.demo.defects`: known names, each kept once, in the order written.
fn demo_defects(
    raw: Option<&List<Scalar>>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Defect>> {
    let keys: Vec<&str> = Defect::ALL.iter().map(|d| d.key()).collect();
    let mut ok = true;
    let mut out = Vec::new();
    for (value, at) in items(raw, node, "a defect name", diags) {
        let Some(name) = scalar_text(value) else {
            let message = format!(
                "expected a defect name ({}), found {}",
                one_of(&keys),
                describe(value)
            );
            diags.push(at.error(message));
            ok = false;
            continue;
        };
        match Defect::from_key(&name) {
            Some(defect) if !out.contains(&defect) => out.push(defect),
            Some(_) => {}
            None => {
                let diag = at.error(format!(
                    "unknown defect `{name}`; expected {}",
                    one_of(&keys)
                ));
                diags.push(match did_you_mean(&name, keys.iter().copied()) {
                    Some(s) => diag.with_help(format!("did you mean `{s}`?")),
                    None => diag,
                });
                ok = false;
            }
        }
    }
    if let Some(message) = defect_conflict(&out) {
        diags.push(node.error(message));
        ok = false;
    }
    ok.then_some(out)
}

/// Why a set of demo defects cannot be combined, if it cannot: the rule of
/// `target.demo.defects` and of `faultline demo --defect` alike.
pub fn defect_conflict(defects: &[Defect]) -> Option<&'static str> {
    let has = |d: Defect| defects.contains(&d);
    if has(Defect::NoRollback) && has(Defect::SlowRollback) {
        Some("`no_rollback` and `slow_rollback` cannot be combined: the first never rolls back")
    } else if has(Defect::FlappingRollback)
        && (has(Defect::NoRollback) || has(Defect::SlowRollback))
    {
        Some(
            "`flapping_rollback` cannot be combined with `no_rollback` or `slow_rollback`: each \
             is one way the rollback controller misbehaves",
        )
    } else {
        None
    }
}

fn breaker_options(
    raw: &RawBreaker,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<BreakerOptions> {
    let d = BreakerOptions::default();
    let consecutive_failures = count(
        raw.consecutive_failures,
        &node.at("consecutive_failures"),
        d.consecutive_failures,
        diags,
    );
    let failure_rate = match &raw.failure_rate {
        Some(v) => positive_share(v, &node.at("failure_rate"), "50%", diags),
        None => Some(d.failure_rate),
    };
    let window = optional_duration(raw.window.as_ref(), &node.at("window"), d.window, diags);
    let min_calls = count(raw.min_calls, &node.at("min_calls"), d.min_calls, diags);
    let open_for = optional_duration(
        raw.open_for.as_ref(),
        &node.at("open_for"),
        d.open_for,
        diags,
    );
    let trial_calls = count(
        raw.trial_calls,
        &node.at("trial_calls"),
        d.trial_calls,
        diags,
    );
    Some(BreakerOptions {
        consecutive_failures: consecutive_failures?,
        failure_rate: failure_rate?,
        window: window?,
        min_calls: min_calls?,
        open_for: open_for?,
        trial_calls: trial_calls?,
    })
}

fn failover_options(
    raw: &RawFailover,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<FailoverOptions> {
    let d = FailoverOptions::default();
    if raw.max_fails == Some(0) {
        diags.push(node.at("max_fails").error("must be at least 1").with_help(
            "a primary that is never ejected (nginx's `max_fails=0`) is the defect `no_ejection`",
        ));
        return None;
    }
    let max_fails = count(raw.max_fails, &node.at("max_fails"), d.max_fails, diags);
    let fail_timeout = optional_duration(
        raw.fail_timeout.as_ref(),
        &node.at("fail_timeout"),
        d.fail_timeout,
        diags,
    );
    Some(FailoverOptions {
        max_fails: max_fails?,
        fail_timeout: fail_timeout?,
    })
}

fn rollback_options(
    raw: &RawRollback,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<RollbackOptions> {
    let d = RollbackOptions::default();
    let error_rate = match &raw.error_rate {
        Some(v) => share(v, &node.at("error_rate"), "5%", diags),
        None => Some(d.error_rate),
    };
    let window = optional_duration(raw.window.as_ref(), &node.at("window"), d.window, diags);
    let min_requests = count(
        raw.min_requests,
        &node.at("min_requests"),
        d.min_requests,
        diags,
    );
    Some(RollbackOptions {
        error_rate: error_rate?,
        window: window?,
        min_requests: min_requests?,
    })
}

/// A share: a percentage such as `example`, or a fraction from 0 to 1.
fn share(
    value: &Scalar,
    node: &Node<'_>,
    example: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<f64> {
    super::units::parse_share(value, example)
        .map_err(|message| diags.push(node.error(message)))
        .ok()
}

/// A [`share`] above zero (a zero failure rate would trip on any failure
/// before `min_calls` meant anything).
fn positive_share(
    value: &Scalar,
    node: &Node<'_>,
    example: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<f64> {
    let share = share(value, node, example, diags)?;
    if share == 0.0 {
        diags.push(node.error(format!("must be above 0, such as {example}")));
        return None;
    }
    Some(share)
}

/// A count of at least 1 that fits the model's `u32`, with a default.
fn count(
    value: Option<u64>,
    node: &Node<'_>,
    default: u32,
    diags: &mut Vec<Diagnostic>,
) -> Option<u32> {
    let n = at_least_one(value, node, u64::from(default), diags)?;
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            diags.push(node.error(format!("must be at most {}, found `{n}`", u32::MAX)));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::model::{Defect, DemoOptions, TargetKind};
    use super::super::{load_str, Diagnostic};

    fn experiment(demo: &str) -> String {
        format!(
            "name: d\ntarget:\n  demo: {demo}\nload: {{ rate: 1, requests: [{{ path: /checkout }}] }}\nphases:\n  - {{ name: p, duration: 1s }}\n"
        )
    }

    fn options(demo: &str) -> Result<DemoOptions, Vec<Diagnostic>> {
        let doc = load_str(&experiment(demo), Path::new("x.yaml")).map_err(|e| e.diagnostics)?;
        match &doc.experiments[0].target.kind {
            TargetKind::Demo(opts) => Ok(opts.clone()),
            other => panic!("a demo target, got {other:?}"),
        }
    }

    #[test]
    fn demo_options_are_read_with_defaults_for_what_is_missing() {
        let opts = options(
            "{ canary_weight: 25%, defects: [no_timeout, slow_rollback, no_timeout], \
             breaker: { consecutive_failures: 3, failure_rate: 0.4, open_for: 500ms }, \
             rollback: { error_rate: 10%, min_requests: 20 } }",
        )
        .expect("valid");
        let defaults = DemoOptions::default();
        assert_eq!(opts.canary_weight, 0.25);
        assert_eq!(
            opts.defects,
            [Defect::NoTimeout, Defect::SlowRollback],
            "each once"
        );
        assert_eq!(opts.breaker.consecutive_failures, 3);
        assert_eq!(opts.breaker.failure_rate, 0.4);
        assert_eq!(opts.breaker.open_for, Duration::from_millis(500));
        assert_eq!(opts.breaker.window, defaults.breaker.window);
        assert_eq!(opts.breaker.trial_calls, defaults.breaker.trial_calls);
        assert_eq!(opts.rollback.error_rate, 0.1);
        assert_eq!(opts.rollback.min_requests, 20);
        assert_eq!(opts.rollback.window, defaults.rollback.window);
        assert_eq!(options("{}").expect("valid"), defaults);
        assert_eq!(
            defaults.failover, None,
            "the fail-over is off unless asked for"
        );
        let failover = options("{ failover: {}, defects: [no_ejection] }").expect("valid");
        assert_eq!(failover.failover, Some(super::FailoverOptions::default()));
        let tuned = options("{ failover: { max_fails: 1, fail_timeout: 60s } }").expect("valid");
        assert_eq!(
            tuned.failover.map(|f| (f.max_fails, f.fail_timeout)),
            Some((1, Duration::from_secs(60)))
        );
        let zero = options("{ canary_weight: 0 }").expect("valid");
        assert_eq!(zero.canary_weight, 0.0);
    }

    #[test]
    fn invalid_demo_options_are_each_reported_at_their_node() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            ("a weight above 100% is refused", "{ canary_weight: 150% }", "target.demo.canary_weight", "between 0% and 100%", ""),
            ("a fraction above 1 is refused", "{ canary_weight: 1.5 }", "target.demo.canary_weight", "a fraction from 0 to 1", ""),
            ("a misspelt defect gets a suggestion", "{ defects: [no_breakr] }", "target.demo.defects[0]", "unknown defect `no_breakr`; expected `no_breaker`,", "did you mean `no_breaker`?"),
            ("an unknown defect lists the known ones", "{ defects: [sabotage] }", "target.demo.defects[0]", "`no_timeout` or `no_ejection`", ""),
            ("a flapping and a missing rollback are refused together", "{ defects: [flapping_rollback, no_rollback] }", "target.demo.defects", "cannot be combined with", ""),
            ("a defect must be a name", "{ defects: [[x]] }", "target.demo.defects[0]", "expected a defect name", ""),
            ("contradictory rollback defects are refused", "{ defects: [no_rollback, slow_rollback] }", "target.demo.defects", "cannot be combined", ""),
            ("zero consecutive failures are refused", "{ breaker: { consecutive_failures: 0 } }", "target.demo.breaker.consecutive_failures", "at least 1", ""),
            ("a zero failure rate is refused", "{ breaker: { failure_rate: 0% } }", "target.demo.breaker.failure_rate", "above 0", ""),
            ("a zero open_for is refused", "{ breaker: { open_for: 0s } }", "target.demo.breaker.open_for", "greater than 0", ""),
            ("a unitless window is refused", "{ breaker: { window: 10 } }", "target.demo.breaker.window", "a unit is required", ""),
            ("a huge trial count is refused", "{ breaker: { trial_calls: 5000000000 } }", "target.demo.breaker.trial_calls", "at most 4294967295", ""),
            ("an unknown breaker key is refused", "{ breaker: { threshold: 3 } }", "target.demo.breaker", "unknown field `threshold`", ""),
            ("a rollback error rate must be a share", "{ rollback: { error_rate: high } }", "target.demo.rollback.error_rate", "a percentage such as 5%", ""),
            ("zero min_requests are refused", "{ rollback: { min_requests: 0 } }", "target.demo.rollback.min_requests", "at least 1", ""),
            ("no_ejection needs the fail-over", "{ defects: [no_ejection] }", "target.demo.defects", "`no_ejection` bends the fail-over, which is off", "add `failover: {}`"),
            ("max_fails 0 is the no_ejection defect", "{ failover: { max_fails: 0 } }", "target.demo.failover.max_fails", "at least 1", "the defect `no_ejection`"),
            ("a unitless fail_timeout is refused", "{ failover: { fail_timeout: 2 } }", "target.demo.failover.fail_timeout", "a unit is required", ""),
        ];
        for (case, demo, path, message, help) in cases {
            let found = options(demo).expect_err(case);
            assert_eq!(found.len(), 1, "{case}: {found:#?}");
            let d = &found[0];
            assert!(d.path.starts_with(path), "{case}: {d}");
            assert!(d.message.contains(message), "{case}: {d}");
            assert!(d.line.is_some(), "{case}: has a line: {d}");
            if !help.is_empty() {
                let hint = d.help.as_deref().unwrap_or("");
                assert!(hint.contains(help), "{case}: {d}");
            }
        }
    }

    #[test]
    fn every_invalid_demo_option_is_reported_at_once() {
        let found = options(
            "{ canary_weight: lots, defects: [nope], breaker: { min_calls: 0 }, \
             rollback: { window: never } }",
        )
        .expect_err("invalid");
        let paths: Vec<&str> = found.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "target.demo.canary_weight",
                "target.demo.defects[0]",
                "target.demo.breaker.min_calls",
                "target.demo.rollback.window",
            ],
            "{found:#?}"
        );
    }
}
