//! Thresholds (`expect:`) and the `rate_achieved` check.
//!
//! A threshold over too few samples fails with "no data": it never passes
//! silently. A phase whose achieved rate is below 95% of its target fails
//! `rate_achieved`: a harness that could not drive the load must not report
//! a pass.

use crate::config::model::{Metric, MetricUnit, Threshold};
use crate::journal::Check;
use crate::metrics::PhaseMetrics;

/// Share of the target rate a phase must achieve.
pub const RATE_ACHIEVED_MIN: f64 = 0.95;

/// What a threshold is evaluated on.
pub struct PhaseView<'a> {
    pub name: &'a str,
    pub metrics: &'a PhaseMetrics,
    /// Actual duration of the phase in seconds.
    pub duration_s: f64,
    pub min_samples: u64,
    /// Average host CPU (fraction of all cores) over the phase, from telemetry.
    pub host_cpu: Option<f64>,
    /// Average host memory in use (fraction of total) over the phase.
    pub host_memory: Option<f64>,
}

impl PhaseView<'_> {
    /// Achieved rate: completed requests per second.
    pub fn rate(&self) -> f64 {
        if self.duration_s > 0.0 {
            self.metrics.requests as f64 / self.duration_s
        } else {
            0.0
        }
    }

    fn observe(&self, metric: Metric) -> Option<f64> {
        let h = &self.metrics.response;
        let q = |q: f64| (!h.is_empty()).then(|| h.quantile_ms(q));
        match metric {
            Metric::P50 => q(0.50),
            Metric::P90 => q(0.90),
            Metric::P95 => q(0.95),
            Metric::P99 => q(0.99),
            Metric::P999 => q(0.999),
            Metric::Max => h.summary().map(|s| s.max),
            Metric::Mean => h.summary().map(|s| s.mean),
            Metric::ErrorRate => (self.metrics.requests > 0).then(|| self.metrics.error_rate()),
            Metric::Rate => Some(self.rate()),
            Metric::Requests => Some(self.metrics.requests as f64),
            Metric::Errors => Some(self.metrics.errors as f64),
            Metric::HostCpu => self.host_cpu,
            Metric::HostMemory => self.host_memory,
        }
    }
}

/// Formats a value in the metric's unit, as users write it.
pub fn format_value(metric: Metric, value: f64) -> String {
    match metric.unit() {
        MetricUnit::Millis if value >= 1000.0 => format!("{:.2}s", value / 1000.0),
        MetricUnit::Millis => format!("{value:.1}ms"),
        MetricUnit::Fraction => format!("{:.2}%", value * 100.0),
        MetricUnit::PerSecond => format!("{value:.1}/s"),
        MetricUnit::Count => format!("{value:.0}"),
    }
}

/// Evaluates one threshold on one phase.
pub fn evaluate_threshold(th: &Threshold, phase: &PhaseView<'_>) -> Check {
    let samples = phase.metrics.requests;
    // Counts and rates are meaningful at zero; percentiles and ratios are not.
    let needs_samples = !matches!(
        th.metric,
        Metric::Rate | Metric::Requests | Metric::HostCpu | Metric::HostMemory
    );
    let mut check = Check {
        name: format!("{} {}", th.metric.key(), th.source.trim()),
        kind: "threshold".into(),
        phase: Some(phase.name.to_string()),
        passed: false,
        expected: th.source.trim().to_string(),
        observed: "no data".into(),
        samples,
        message: None,
        window: None,
        faults: Vec::new(),
        measured: Default::default(),
        outcome: None,
    };
    if needs_samples && samples < phase.min_samples.max(1) {
        check.message = Some(format!(
            "no data: {samples} samples, at least {} needed",
            phase.min_samples.max(1)
        ));
        return check;
    }
    match phase.observe(th.metric) {
        Some(value) => {
            check.observed = format_value(th.metric, value);
            check.passed = th.op.holds(value, th.value);
            if !check.passed {
                check.message = Some(format!(
                    "{} was {}, expected {}",
                    th.metric.key(),
                    check.observed,
                    check.expected
                ));
            }
        }
        None => check.message = Some("no data".into()),
    }
    check
}

/// The `rate_achieved` check of an open-model phase.
pub fn rate_achieved(phase: &PhaseView<'_>, target_rate: f64) -> Check {
    let achieved = phase.rate();
    let ratio = if target_rate > 0.0 {
        achieved / target_rate
    } else {
        1.0
    };
    let passed = ratio >= RATE_ACHIEVED_MIN;
    Check {
        name: "rate_achieved".into(),
        kind: "rate_achieved".into(),
        phase: Some(phase.name.to_string()),
        passed,
        expected: format!(
            ">= {:.0}% of {:.1}/s",
            RATE_ACHIEVED_MIN * 100.0,
            target_rate
        ),
        observed: format!("{achieved:.1}/s ({:.1}%)", ratio * 100.0),
        samples: phase.metrics.requests,
        message: (!passed).then(|| {
            format!(
                "the load generator achieved {achieved:.1}/s of the {target_rate:.1}/s asked \
                 ({} late, {} unsent): the target or the harness could not keep up",
                phase.metrics.late, phase.metrics.unsent
            )
        }),
        window: None,
        faults: Vec::new(),
        measured: Default::default(),
        outcome: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::CmpOp;
    use std::time::Duration;

    fn metrics(latencies_ms: &[u64], errors: u64) -> PhaseMetrics {
        let mut m = PhaseMetrics::default();
        for &ms in latencies_ms {
            m.response.record(Duration::from_millis(ms));
            m.requests += 1;
        }
        m.errors = errors;
        m
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
    fn a_latency_threshold_passes_and_fails_on_the_observed_percentile() {
        let m = metrics(&[10; 100], 0);
        let view = PhaseView {
            name: "p",
            metrics: &m,
            duration_s: 1.0,
            min_samples: 1,
            host_cpu: None,
            host_memory: None,
        };
        let pass = evaluate_threshold(&th(Metric::P99, CmpOp::Lt, 100.0, "< 100ms"), &view);
        assert!(pass.passed, "{pass:?}");
        assert_eq!(pass.observed, "10.0ms");
        let fail = evaluate_threshold(&th(Metric::P99, CmpOp::Lt, 5.0, "< 5ms"), &view);
        assert!(!fail.passed);
        assert!(fail.message.as_deref().unwrap_or("").contains("10.0ms"));
    }

    #[test]
    fn a_threshold_over_zero_samples_fails_with_no_data() {
        let m = metrics(&[], 0);
        let view = PhaseView {
            name: "p",
            metrics: &m,
            duration_s: 1.0,
            min_samples: 1,
            host_cpu: None,
            host_memory: None,
        };
        for metric in [Metric::P50, Metric::ErrorRate, Metric::Max] {
            let c = evaluate_threshold(&th(metric, CmpOp::Lt, 1e9, "< lots"), &view);
            assert!(!c.passed, "{metric:?} passed over zero samples");
            assert_eq!(c.observed, "no data");
        }
    }

    #[test]
    fn min_samples_is_honoured() {
        let m = metrics(&[1; 10], 0);
        let view = PhaseView {
            name: "p",
            metrics: &m,
            duration_s: 1.0,
            min_samples: 50,
            host_cpu: None,
            host_memory: None,
        };
        let c = evaluate_threshold(&th(Metric::P99, CmpOp::Lt, 100.0, "< 100ms"), &view);
        assert!(!c.passed);
        assert!(c.message.as_deref().unwrap_or("").contains("10 samples"));
    }

    #[test]
    fn error_rate_rate_and_requests_are_observed() {
        let m = metrics(&[1; 200], 50);
        let view = PhaseView {
            name: "p",
            metrics: &m,
            duration_s: 2.0,
            min_samples: 1,
            host_cpu: None,
            host_memory: None,
        };
        let er = evaluate_threshold(&th(Metric::ErrorRate, CmpOp::Lt, 0.01, "< 1%"), &view);
        assert!(!er.passed);
        assert_eq!(er.observed, "25.00%");
        let rate = evaluate_threshold(&th(Metric::Rate, CmpOp::Gt, 99.0, "> 99"), &view);
        assert!(rate.passed, "{rate:?}");
        let n = evaluate_threshold(&th(Metric::Requests, CmpOp::Ge, 200.0, ">= 200"), &view);
        assert!(n.passed);
    }

    #[test]
    fn rate_achieved_fails_below_95_percent() {
        let m = metrics(&[1; 90], 0);
        let view = PhaseView {
            name: "p",
            metrics: &m,
            duration_s: 1.0,
            min_samples: 1,
            host_cpu: None,
            host_memory: None,
        };
        assert!(!rate_achieved(&view, 100.0).passed);
        assert!(rate_achieved(&view, 94.0).passed);
    }

    #[test]
    fn host_thresholds_pass_fail_and_never_pass_without_telemetry() {
        let m = metrics(&[1; 10], 0);
        let view = |cpu: Option<f64>| PhaseView {
            name: "p",
            metrics: &m,
            duration_s: 1.0,
            min_samples: 1,
            host_cpu: cpu,
            host_memory: None,
        };
        let th = th(Metric::HostCpu, CmpOp::Lt, 0.95, "< 95%");
        let busy = evaluate_threshold(&th, &view(Some(0.97)));
        assert!(!busy.passed);
        assert_eq!(busy.observed, "97.00%");
        assert!(evaluate_threshold(&th, &view(Some(0.40))).passed);
        let unsampled = evaluate_threshold(&th, &view(None));
        assert!(!unsampled.passed, "no telemetry must not pass");
        assert_eq!(unsampled.observed, "no data");
    }
}
