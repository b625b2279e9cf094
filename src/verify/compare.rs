//! `compare`: a statistical test between two phases of the same run.
//!
//! Latency by Mann–Whitney U on the phases' HDR histograms, error rate by
//! Fisher's exact test (valid at zero errors, so 0% → 3% is caught where a
//! normal approximation or a rank test on sparse data misses it); both from
//! [`super::stats`]. The verdict (`same`, `worse`, `better`) needs the
//! p-value below `alpha` *and* an effect above the minimum, so a large sample
//! of a negligible shift stays `same`; below `min_samples` per phase it is
//! `inconclusive`, which fails unless the check says otherwise.

use super::baseline::format_p;
use super::evidence::{fail, new_check, percent, Evidence};
use super::stats::{self, Direction, Rule, Verdict};
use crate::config::model::{CompareMetric, CompareSpec, Expectation, LatencyTolerance};
use crate::journal::Check;
use crate::metrics::PhaseMetrics;

/// One check per metric in `spec.metrics`.
pub fn checks(spec: &CompareSpec, ev: &Evidence<'_>) -> Vec<Check> {
    spec.metrics.iter().map(|m| check(spec, *m, ev)).collect()
}

fn check(spec: &CompareSpec, metric: CompareMetric, ev: &Evidence<'_>) -> Check {
    let expected = format!(
        "{} (alpha {}, at least {} samples per phase)",
        spec.expect.key(),
        spec.alpha,
        spec.min_samples
    );
    let mut check = new_check(
        "compare",
        format!(
            "{}: `{}` vs `{}`",
            metric.key(),
            spec.current,
            spec.baseline
        ),
        Some(&spec.current),
        expected,
    );
    let (Some((base_span, base)), Some((cur_span, cur))) =
        (ev.phase(&spec.baseline), ev.phase(&spec.current))
    else {
        return fail(check, "not judged: a phase it names did not run".into());
    };
    if !base_span.ran || !cur_span.ran {
        return fail(check, "not judged: a phase it names did not run".into());
    }
    check.samples = base.requests + cur.requests;
    let outcome = match metric {
        CompareMetric::Latency => latency(spec, base, cur, &mut check),
        CompareMetric::ErrorRate => error_rate(spec, base, cur, &mut check),
    };
    let Some((verdict, detail)) = outcome else {
        check.observed = format!(
            "inconclusive: {} vs {} samples, at least {} per phase needed",
            cur.requests, base.requests, spec.min_samples
        );
        if !spec.inconclusive_passes {
            check.passed = false;
            check.message = Some(format!(
                "too few samples to compare (`{}`: {}, `{}`: {}); lengthen the phases or raise \
                 the rate, or set `inconclusive: pass`",
                spec.current, cur.requests, spec.baseline, base.requests
            ));
        }
        return check;
    };
    check.observed = format!("{}: {detail}", verdict.key());
    if verdict != spec.expect {
        check.passed = false;
        check.message = Some(format!(
            "expected the {} of `{}` against `{}` to come out {}, but it came out {}: {detail}",
            metric.key(),
            spec.current,
            spec.baseline,
            spec.expect.key(),
            verdict.key()
        ));
    }
    check
}

/// Mann–Whitney on the two histograms; `None` when inconclusive.
fn latency(
    spec: &CompareSpec,
    base: &PhaseMetrics,
    cur: &PhaseMetrics,
    check: &mut Check,
) -> Option<(Expectation, String)> {
    let mw = stats::mann_whitney(&cur.response, &base.response)?;
    let min_effect_ms = match spec.min_latency_effect {
        LatencyTolerance::Relative(r) => r * mw.p50_baseline_ms,
        LatencyTolerance::Absolute(d) => d.as_secs_f64() * 1000.0,
    };
    let rule = Rule {
        min_samples: spec.min_samples,
        ..Rule::new(spec.alpha).with_min_effect(min_effect_ms)
    };
    let verdict = expectation(stats::verdict(&mw.evidence(), &rule))?;
    let m = &mut check.measured;
    m.insert("p_value".into(), mw.p_two_sided);
    m.insert("z".into(), mw.z);
    m.insert("u".into(), mw.u);
    m.insert("effect_rank_biserial".into(), mw.rank_biserial);
    m.insert("p50_baseline_ms".into(), mw.p50_baseline_ms);
    m.insert("p50_current_ms".into(), mw.p50_current_ms);
    Some((
        verdict,
        format!(
            "Mann–Whitney U {:.0}, z {:.2}, {}, rank-biserial r {:+.2}, p50 {:.2}ms → {:.2}ms \
             (minimum effect {:.2}ms)",
            mw.u,
            mw.z,
            format_p(mw.p_two_sided),
            mw.rank_biserial,
            mw.p50_baseline_ms,
            mw.p50_current_ms,
            min_effect_ms
        ),
    ))
}

/// Fisher's exact test on the error counts; `None` when inconclusive.
fn error_rate(
    spec: &CompareSpec,
    base: &PhaseMetrics,
    cur: &PhaseMetrics,
    check: &mut Check,
) -> Option<(Expectation, String)> {
    let t = stats::two_proportions(cur.errors, cur.requests, base.errors, base.requests);
    let rule = Rule {
        min_samples: spec.min_samples,
        ..Rule::new(spec.alpha).with_min_effect(spec.min_error_rate_effect)
    };
    let verdict = expectation(stats::verdict(&t.evidence(), &rule))?;
    let m = &mut check.measured;
    m.insert("p_value".into(), t.p_two_sided);
    m.insert("z".into(), t.z);
    m.insert("effect_difference".into(), t.difference());
    m.insert("error_rate_baseline".into(), t.rate_baseline());
    m.insert("error_rate_current".into(), t.rate_current());
    Some((
        verdict,
        format!(
            "Fisher's exact {}, z {:.2}, error rate {} → {} ({} of {} vs {} of {}, difference \
             {:+.2} pp, minimum effect {})",
            format_p(t.p_two_sided),
            t.z,
            percent(t.rate_baseline()),
            percent(t.rate_current()),
            t.errors_baseline,
            t.n_baseline,
            t.errors_current,
            t.n_current,
            t.difference() * 100.0,
            percent(spec.min_error_rate_effect)
        ),
    ))
}

fn expectation(verdict: Verdict) -> Option<Expectation> {
    match verdict {
        Verdict::Inconclusive => None,
        Verdict::Decided(Direction::Same) => Some(Expectation::Same),
        Verdict::Decided(Direction::Worse) => Some(Expectation::Worse),
        Verdict::Decided(Direction::Better) => Some(Expectation::Better),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::evidence::span;
    use std::time::Duration;

    /// `n` requests spread 2–4 ms plus `shift_ms`, `errors` of them failed.
    fn phase(n: u64, shift_ms: u64, errors: u64) -> PhaseMetrics {
        let mut m = PhaseMetrics::default();
        for i in 0..n {
            m.response.record(Duration::from_micros(
                2000 + (i * 7919) % 2000 + shift_ms * 1000,
            ));
        }
        m.requests = n;
        m.errors = errors;
        m
    }

    fn spec(expect: Expectation, metrics: Vec<CompareMetric>) -> CompareSpec {
        CompareSpec {
            baseline: "baseline".into(),
            current: "fault".into(),
            metrics,
            expect,
            alpha: 0.01,
            min_latency_effect: LatencyTolerance::Relative(0.2),
            min_error_rate_effect: 0.005,
            min_samples: 50,
            inconclusive_passes: false,
        }
    }

    fn run(spec: &CompareSpec, base: PhaseMetrics, cur: PhaseMetrics) -> Vec<Check> {
        let metrics = vec![base, cur];
        let ev = Evidence {
            phases: vec![span("baseline", 0, 5), span("fault", 5, 10)],
            metrics: &metrics,
            end: Duration::from_secs(10),
            ..Evidence::default()
        };
        checks(spec, &ev)
    }

    #[test]
    fn an_injected_50ms_is_worse_and_identical_phases_are_same() {
        let worse = spec(Expectation::Worse, vec![CompareMetric::Latency]);
        let checks = run(&worse, phase(500, 0, 0), phase(500, 50, 0));
        assert!(checks[0].passed, "{:?}", checks[0]);
        assert!(checks[0].measured["p_value"] < 1e-10);

        let same = spec(Expectation::Same, vec![CompareMetric::Latency]);
        let checks = run(&same, phase(500, 0, 0), phase(500, 50, 0));
        assert!(!checks[0].passed);
        assert!(checks[0]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("came out worse"));
        let checks = run(&same, phase(500, 0, 0), phase(400, 0, 0));
        assert!(checks[0].passed, "{:?}", checks[0]);
    }

    #[test]
    fn zero_to_three_percent_errors_is_worse() {
        let worse = spec(Expectation::Same, vec![CompareMetric::ErrorRate]);
        let checks = run(&worse, phase(1000, 0, 0), phase(1000, 0, 30));
        assert!(!checks[0].passed);
        assert!(
            checks[0].observed.starts_with("worse"),
            "{}",
            checks[0].observed
        );
    }

    #[test]
    fn too_few_samples_is_inconclusive_and_fails_unless_allowed() {
        let mut s = spec(
            Expectation::Same,
            vec![CompareMetric::Latency, CompareMetric::ErrorRate],
        );
        let checks = run(&s, phase(500, 0, 0), phase(20, 0, 0));
        assert_eq!(checks.len(), 2);
        assert!(checks
            .iter()
            .all(|c| !c.passed && c.observed.starts_with("inconclusive")));
        s.inconclusive_passes = true;
        let checks = run(&s, phase(500, 0, 0), phase(20, 0, 0));
        assert!(checks.iter().all(|c| c.passed));
    }
}
