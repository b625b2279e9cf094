//! The recorder's side of the live metrics: request counts by label set,
//! kept inside the recorder task (which already sees every outcome) and
//! published to [`Live`] once a second and once more, final, at the end.
//!
//! So the load's workers do nothing more than before, and the published
//! totals are the recorder's own: after the last publication
//! `faultline_requests_total` of a phase is exactly that phase's `requests`
//! in report.json.

use super::model::{HistogramValue, Value};
use super::{Live, ERRORS, LATE, LATENCY_BUCKETS, RATE_ACHIEVED, RATE_TARGET, REQUESTS};
use super::{RESPONSE_TIME, SERVICE_TIME, UNSENT};
use crate::metrics::histogram::LatencyHistogram;
use crate::metrics::outcome::{ErrorClass, Outcome};
use crate::metrics::recorder::PhaseMetrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Request names beyond this many distinct ones share the label `other`,
/// so a generated mix of thousands of requests cannot explode cardinality.
pub const MAX_REQUEST_LABELS: usize = 20;

/// The open model's planned rate at an offset from the load's start.
pub type TargetRate = Arc<dyn Fn(Duration) -> f64 + Send + Sync>;

/// Phase index, request label index, status class (0: no response, else
/// the hundreds digit), error class.
type Key = (usize, usize, u16, Option<ErrorClass>);

/// The request counts of one experiment, by label set.
pub struct RequestFeed {
    live: Arc<Live>,
    experiment: String,
    phases: Vec<String>,
    /// Label index of each request of the mix, by its position.
    label_of: Vec<usize>,
    labels: Vec<String>,
    counts: HashMap<Key, u64>,
    target_rate: Option<TargetRate>,
    /// The latency buckets in microseconds, as the histograms count.
    bounds_micros: Vec<u64>,
}

impl RequestFeed {
    /// `requests` are the names of the mix's requests, by position.
    pub fn new(
        live: Arc<Live>,
        experiment: &str,
        phases: Vec<String>,
        requests: &[String],
        target_rate: Option<TargetRate>,
    ) -> RequestFeed {
        let mut labels: Vec<String> = Vec::new();
        let label_of = requests
            .iter()
            .map(|name| {
                if let Some(i) = labels.iter().position(|l| l == name) {
                    i
                } else if labels.len() < MAX_REQUEST_LABELS {
                    labels.push(name.clone());
                    labels.len() - 1
                } else {
                    MAX_REQUEST_LABELS
                }
            })
            .collect();
        labels.push("other".into());
        RequestFeed {
            live,
            experiment: experiment.to_string(),
            phases,
            label_of,
            labels,
            counts: HashMap::new(),
            target_rate,
            bounds_micros: LATENCY_BUCKETS
                .iter()
                .map(|s| (s * 1e6).round() as u64)
                .collect(),
        }
    }

    /// Counts one outcome of phase `phase` (by its scheduled start).
    pub fn record(&mut self, phase: usize, o: &Outcome) {
        let label = self
            .label_of
            .get(usize::from(o.request))
            .copied()
            .unwrap_or(self.labels.len() - 1);
        let class = if o.status == 0 { 0 } else { o.status / 100 };
        *self
            .counts
            .entry((phase, label, class, o.error))
            .or_default() += 1;
    }

    /// Publishes every total; `elapsed` is the time since the load's start,
    /// `achieved` the completions of the last full second (`None`: the
    /// experiment is over, rates read 0).
    pub fn publish(&self, phases: &[PhaseMetrics], elapsed: Duration, achieved: Option<f64>) {
        let mut errors: HashMap<(usize, usize, ErrorClass), u64> = HashMap::new();
        for (&(phase, label, _, error), &n) in &self.counts {
            if let Some(class) = error {
                *errors.entry((phase, label, class)).or_default() += n;
            }
        }
        let histograms: Vec<(Value, Value)> = phases
            .iter()
            .map(|p| (self.histogram(&p.response), self.histogram(&p.service)))
            .collect();
        let e = self.experiment.as_str();
        self.live.with(|s| {
            for (&(phase, label, class, error), &n) in &self.counts {
                let status = match class {
                    0 => "none".to_string(),
                    c => format!("{c}xx"),
                };
                let error = error.map_or("none", ErrorClass::key);
                let labels = [e, self.phase(phase), &self.labels[label], &status, error];
                s.set(&REQUESTS, &labels, Value::Scalar(n as f64));
            }
            for (&(phase, label, class), &n) in &errors {
                let labels = [e, self.phase(phase), &self.labels[label], class.key()];
                s.set(&ERRORS, &labels, Value::Scalar(n as f64));
            }
            for (i, (p, (response, service))) in phases.iter().zip(histograms).enumerate() {
                let labels = [e, self.phase(i)];
                s.set(&LATE, &labels, Value::Scalar(p.late as f64));
                s.set(&UNSENT, &labels, Value::Scalar(p.unsent as f64));
                s.set(&RESPONSE_TIME, &labels, response);
                s.set(&SERVICE_TIME, &labels, service);
            }
            s.set(&RATE_ACHIEVED, &[e], Value::Scalar(achieved.unwrap_or(0.0)));
            if let Some(rate) = &self.target_rate {
                let now = if achieved.is_some() {
                    rate(elapsed)
                } else {
                    0.0
                };
                s.set(&RATE_TARGET, &[e], Value::Scalar(now));
            }
        });
    }

    fn phase(&self, index: usize) -> &str {
        self.phases.get(index).map_or("", String::as_str)
    }

    fn histogram(&self, h: &LatencyHistogram) -> Value {
        Value::Histogram(HistogramValue {
            bounds: &LATENCY_BUCKETS,
            cumulative: h.cumulative_counts(&self.bounds_micros),
            count: h.len(),
            sum: h.sum_seconds(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn outcome(request: u16, status: u16, error: Option<ErrorClass>) -> Outcome {
        let t = Instant::now();
        Outcome {
            intended: t,
            started: t,
            ended: t + Duration::from_millis(3),
            status,
            error,
            version: None,
            request,
        }
    }

    #[test]
    fn counts_are_published_by_phase_request_status_and_error_class() {
        let live = Live::new();
        let names: Vec<String> = (0..25).map(|i| format!("r{i}")).collect();
        let mut feed = RequestFeed::new(
            live.clone(),
            "e",
            vec!["a".into(), "b".into()],
            &names,
            Some(Arc::new(|_| 50.0)),
        );
        feed.record(0, &outcome(0, 200, None));
        feed.record(0, &outcome(0, 200, None));
        feed.record(1, &outcome(1, 503, Some(ErrorClass::Http5xx)));
        feed.record(1, &outcome(1, 0, Some(ErrorClass::Connect)));
        // Requests past the cap share `other`.
        feed.record(1, &outcome(22, 200, None));
        feed.record(1, &outcome(24, 200, None));
        feed.publish(
            &[PhaseMetrics::default(), PhaseMetrics::default()],
            Duration::from_secs(1),
            Some(4.0),
        );
        let text = live.scrape();
        for line in [
            "faultline_requests_total{experiment=\"e\",phase=\"a\",request=\"r0\",status_class=\"2xx\",error_class=\"none\"} 2",
            "faultline_requests_total{experiment=\"e\",phase=\"b\",request=\"r1\",status_class=\"5xx\",error_class=\"http_5xx\"} 1",
            "faultline_requests_total{experiment=\"e\",phase=\"b\",request=\"r1\",status_class=\"none\",error_class=\"connect\"} 1",
            "faultline_requests_total{experiment=\"e\",phase=\"b\",request=\"other\",status_class=\"2xx\",error_class=\"none\"} 2",
            "faultline_errors_total{experiment=\"e\",phase=\"b\",request=\"r1\",error_class=\"http_5xx\"} 1",
            "faultline_rate_achieved_per_second{experiment=\"e\"} 4",
            "faultline_rate_target_per_second{experiment=\"e\"} 50",
            "faultline_response_time_seconds_count{experiment=\"e\",phase=\"a\"} 0",
        ] {
            assert!(text.contains(&format!("{line}\n")), "missing {line} in\n{text}");
        }
        feed.publish(
            &[PhaseMetrics::default(), PhaseMetrics::default()],
            Duration::from_secs(2),
            None,
        );
        assert!(live
            .scrape()
            .contains("faultline_rate_target_per_second{experiment=\"e\"} 0\n"));
    }
}
