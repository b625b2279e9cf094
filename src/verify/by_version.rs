//! `by_version` thresholds: a phase's thresholds judged on the responses one
//! version served, named like k6's tagged sub-metrics
//! (`p99{version=v2} < 300ms`).
//!
//! A version that served no requests in the phase fails its thresholds
//! ("version `v2` served no requests in `canary`"): an error rate or a
//! latency over nothing is no evidence that the version is healthy. Only
//! `requests` and `rate`, which count traffic, are judged at zero, so
//! `requests: "== 0"` can say "the rolled-back canary got nothing".
//! `errors` needs requests like `error_rate` does: "no errors" from a
//! version that served nothing proves nothing.

use crate::config::model::{Metric, Threshold};
use crate::journal::Check;
use crate::metrics::{PhaseMetrics, MAX_VERSIONS};

use super::thresholds::{evaluate_threshold, PhaseView};

/// The check's name: `error_rate{version=v2} < 5%`.
pub fn check_name(version: &str, th: &Threshold) -> String {
    format!(
        "{}{{version={version}}} {}",
        th.metric.key(),
        th.source.trim()
    )
}

/// Splits a check name made by [`check_name`] into its metric key and
/// version (`faultline merge` re-evaluates from names).
pub fn parse_name(name: &str) -> Option<(&str, &str)> {
    let first = name.split_whitespace().next()?;
    let (metric, rest) = first.split_once("{version=")?;
    Some((metric, rest.strip_suffix('}')?))
}

/// Evaluates `th` on what `version` served in `phase`.
pub fn evaluate(version: &str, th: &Threshold, phase: &PhaseView<'_>) -> Check {
    let versions = &phase.metrics.versions;
    let own = versions.get(version);
    let metrics = PhaseMetrics {
        requests: own.map_or(0, |m| m.requests),
        errors: own.map_or(0, |m| m.errors),
        response: own.map(|m| m.response.clone()).unwrap_or_default(),
        ..PhaseMetrics::default()
    };
    let view = PhaseView {
        name: phase.name,
        metrics: &metrics,
        duration_s: phase.duration_s,
        min_samples: phase.min_samples,
        host_cpu: None,
        host_memory: None,
    };
    let mut check = evaluate_threshold(th, &view);
    check.name = check_name(version, th);
    let counts_traffic = matches!(th.metric, Metric::Requests | Metric::Rate);
    let needed = phase.min_samples.max(1);
    if !counts_traffic && metrics.requests < needed {
        check.passed = false;
        check.observed = "no data".into();
        check.message = Some(if metrics.requests == 0 {
            format!(
                "version `{version}` served no requests in `{}`{}",
                phase.name,
                seen(phase.metrics)
            )
        } else {
            format!(
                "version `{version}` served only {} requests in `{}`, at least {needed} needed (`min_samples`)",
                metrics.requests, phase.name
            )
        });
    } else if !check.passed {
        let value = check.observed.clone();
        check.message = Some(format!(
            "{} of version `{version}` was {value} over {} requests ({} failed), expected {}",
            th.metric.key(),
            metrics.requests,
            metrics.errors,
            check.expected
        ));
    }
    check
}

/// `; versions seen: v1 (812 requests)`, what did answer instead, so a typo
/// or a wrong `version_from` is plain from the message.
fn seen(metrics: &PhaseMetrics) -> String {
    let v = &metrics.versions;
    let mut parts: Vec<String> = v
        .tracked
        .iter()
        .map(|(tag, m)| format!("{tag} ({} requests)", m.requests))
        .collect();
    if let Some(other) = &v.other {
        parts.push(format!(
            "{} requests of versions past the first {MAX_VERSIONS}, counted as `other`",
            other.requests
        ));
    }
    let mut out = if parts.is_empty() {
        "; no response carried a version".to_string()
    } else {
        format!("; versions seen: {}", parts.join(", "))
    };
    if v.unversioned > 0 {
        out.push_str(&format!(
            "; {} requests carried no version (no response, or no version in it)",
            v.unversioned
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::CmpOp;
    use crate::metrics::{ErrorClass, Outcome, VersionTag};
    use std::time::{Duration, Instant};

    fn metrics(served: &[(&str, u64, bool)]) -> PhaseMetrics {
        let mut m = PhaseMetrics::default();
        let t = Instant::now();
        for &(version, ms, error) in served {
            let o = Outcome {
                intended: t,
                started: t,
                ended: t + Duration::from_millis(ms),
                status: if error { 500 } else { 200 },
                error: error.then_some(ErrorClass::Http5xx),
                version: VersionTag::new(version),
                request: 0,
            };
            m.requests += 1;
            m.errors += u64::from(error);
            m.response.record(o.response_time());
            m.versions.record(&o);
        }
        m
    }

    fn view(m: &PhaseMetrics) -> PhaseView<'_> {
        PhaseView {
            name: "canary",
            metrics: m,
            duration_s: 10.0,
            min_samples: 1,
            host_cpu: None,
            host_memory: None,
        }
    }

    fn th(metric: Metric, op: CmpOp, value: f64, source: &str) -> Threshold {
        Threshold {
            metric,
            op,
            value,
            source: source.into(),
        }
    }

    #[test]
    fn a_failing_version_fails_its_threshold_while_the_aggregate_would_pass() {
        let mut served = vec![("v1", 5, false); 90];
        served.extend([("v2", 5, true); 3]);
        served.extend([("v2", 5, false); 7]);
        let m = metrics(&served);
        let rate = th(Metric::ErrorRate, CmpOp::Lt, 0.05, "< 5%");
        let aggregate = evaluate_threshold(&rate, &view(&m));
        assert!(aggregate.passed, "3% over all versions: {aggregate:?}");
        let v2 = evaluate("v2", &rate, &view(&m));
        assert!(!v2.passed);
        assert_eq!(v2.name, "error_rate{version=v2} < 5%");
        assert_eq!(v2.samples, 10);
        assert_eq!(
            v2.message.as_deref(),
            Some(
                "error_rate of version `v2` was 30.00% over 10 requests (3 failed), expected < 5%"
            )
        );
        assert!(evaluate("v1", &rate, &view(&m)).passed);
    }

    #[test]
    fn latency_is_judged_on_the_versions_own_histogram() {
        let mut served = vec![("v1", 5, false); 100];
        served.extend([("v2", 400, false); 10]);
        let m = metrics(&served);
        let p99 = th(Metric::P99, CmpOp::Lt, 300.0, "< 300ms");
        assert!(evaluate("v1", &p99, &view(&m)).passed);
        let v2 = evaluate("v2", &p99, &view(&m));
        assert!(!v2.passed);
        assert!(v2.observed.starts_with("400"), "{v2:?}");
    }

    #[test]
    fn a_version_that_served_nothing_fails_except_on_traffic_counts() {
        let m = metrics(&[("v1", 5, false); 20]);
        for metric in [Metric::ErrorRate, Metric::Errors, Metric::P99] {
            let c = evaluate("v2", &th(metric, CmpOp::Lt, 1e9, "< lots"), &view(&m));
            assert!(!c.passed, "{metric:?} passed over nothing");
            assert_eq!(
                c.message.as_deref(),
                Some(
                    "version `v2` served no requests in `canary`; versions seen: v1 (20 requests)"
                )
            );
        }
        let none = evaluate(
            "v2",
            &th(Metric::Requests, CmpOp::Eq, 0.0, "== 0"),
            &view(&m),
        );
        assert!(none.passed, "zero requests is a measurement: {none:?}");
        let some = evaluate(
            "v2",
            &th(Metric::Requests, CmpOp::Gt, 0.0, "> 0"),
            &view(&m),
        );
        assert!(!some.passed);
        assert_eq!(some.observed, "0");
    }

    #[test]
    fn check_names_read_back() {
        assert_eq!(parse_name("p99{version=v2} < 300ms"), Some(("p99", "v2")));
        assert_eq!(parse_name("p99 < 300ms"), None);
    }
}
