//! The frontend's `GET /metrics`: Prometheus text exposition format 0.0.4,
//! written by hand (a handful of series do not justify a crate).
//!
//! Request counts are lock-free atomics indexed by version and status, so
//! counting costs no lock or allocation per request; everything else (breaker
//! and canary state) is read from its owner when scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::breaker::BreakerSnapshot;
use super::canary::{CanarySnapshot, Version};

/// The `content-type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Status codes are three digits (the `http` crate allows 100..=999).
const STATUSES: usize = 1000;

/// Frontend requests by serving version and status.
#[derive(Debug)]
pub struct RequestCounts {
    /// One row of [`STATUSES`] counters per [`Version::ALL`] entry.
    by_status: [Vec<AtomicU64>; 2],
}

impl Default for RequestCounts {
    fn default() -> Self {
        let row = || (0..STATUSES).map(|_| AtomicU64::new(0)).collect();
        RequestCounts {
            by_status: [row(), row()],
        }
    }
}

impl RequestCounts {
    /// Counts one answered request.
    pub fn record(&self, version: Version, status: u16) {
        if let Some(counter) = self.row(version).get(usize::from(status)) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(status, count)` for every status seen, in status order.
    pub fn statuses(&self, version: Version) -> Vec<(u16, u64)> {
        self.row(version)
            .iter()
            .enumerate()
            .filter_map(|(status, counter)| {
                let count = counter.load(Ordering::Relaxed);
                (count > 0).then_some((status as u16, count))
            })
            .collect()
    }

    /// Requests answered with 500 or above.
    pub fn errors(&self, version: Version) -> u64 {
        self.row(version)[500..]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    fn row(&self, version: Version) -> &[AtomicU64] {
        match version {
            Version::V1 => &self.by_status[0],
            Version::V2 => &self.by_status[1],
        }
    }
}

/// One version path's state at scrape time.
#[derive(Debug, Clone)]
pub struct PathSample {
    pub version: Version,
    pub breaker: BreakerSnapshot,
    pub payments_calls: u64,
}

/// The whole exposition.
pub fn render(requests: &RequestCounts, paths: &[PathSample], canary: &CanarySnapshot) -> String {
    let mut out = String::new();
    family(
        &mut out,
        "demo_requests_total",
        "counter",
        "Frontend requests by serving version and status (not /metrics or /admin).",
    );
    for version in Version::ALL {
        for (status, count) in requests.statuses(version) {
            sample(
                &mut out,
                "demo_requests_total",
                &[("version", version.key()), ("status", &status.to_string())],
                count,
            );
        }
    }
    family(
        &mut out,
        "demo_errors_total",
        "counter",
        "Frontend requests answered with a status of 500 or above, by version.",
    );
    for version in Version::ALL {
        let errors = requests.errors(version);
        sample(
            &mut out,
            "demo_errors_total",
            &[("version", version.key())],
            errors,
        );
    }
    per_path(
        &mut out,
        paths,
        ("demo_breaker_state", "gauge"),
        "The payments circuit breaker of each version: 0 closed, 1 open, 2 half-open.",
        |p| u64::from(p.breaker.state.gauge()),
    );
    per_path(
        &mut out,
        paths,
        ("demo_breaker_opened_total", "counter"),
        "Times the payments circuit breaker opened, by version.",
        |p| p.breaker.opened_total,
    );
    per_path(
        &mut out,
        paths,
        ("demo_payments_calls_total", "counter"),
        "Calls the frontend made to payments, by version (refused by the breaker: not counted).",
        |p| p.payments_calls,
    );
    family(
        &mut out,
        "demo_canary_weight",
        "gauge",
        "Share of checkouts routed to the canary version v2.",
    );
    let _ = writeln!(out, "demo_canary_weight {}", canary.weight);
    family(
        &mut out,
        "demo_canary_rolled_back",
        "gauge",
        "1 once the rollback controller has rolled the canary back, else 0.",
    );
    sample(
        &mut out,
        "demo_canary_rolled_back",
        &[],
        u64::from(canary.rolled_back),
    );
    out
}

fn per_path(
    out: &mut String,
    paths: &[PathSample],
    (name, kind): (&str, &str),
    help: &str,
    value: impl Fn(&PathSample) -> u64,
) {
    family(out, name, kind, help);
    for path in paths {
        sample(out, name, &[("version", path.version.key())], value(path));
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line. Label values here are fixed keys and numbers, so they
/// need no escaping.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: u64) {
    out.push_str(name);
    if !labels.is_empty() {
        let pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        let _ = write!(out, "{{{}}}", pairs.join(","));
    }
    let _ = writeln!(out, " {value}");
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::demo::breaker::BreakerState;
    use crate::demo::window::Counts;

    fn breaker(state: BreakerState, opened_total: u64) -> BreakerSnapshot {
        BreakerSnapshot {
            state,
            opened_total,
            closed_total: 0,
            consecutive_failures: 0,
            since_transition: Duration::ZERO,
            reason: None,
        }
    }

    #[test]
    fn the_exposition_has_help_type_and_labelled_samples() {
        let requests = RequestCounts::default();
        for status in [200, 200, 502, 503] {
            requests.record(Version::V1, status);
        }
        requests.record(Version::V2, 200);
        requests.record(Version::V2, 9999); // out of range: ignored, not a panic
        let paths = [
            PathSample {
                version: Version::V1,
                breaker: breaker(BreakerState::Open, 2),
                payments_calls: 3,
            },
            PathSample {
                version: Version::V2,
                breaker: breaker(BreakerState::HalfOpen, 1),
                payments_calls: 1,
            },
        ];
        let canary = CanarySnapshot {
            weight: 0.1,
            rolled_back: true,
            rolled_back_ago: None,
            reason: None,
            window: Counts::default(),
            requests_total: 1,
            errors_total: 0,
        };
        let text = render(&requests, &paths, &canary);
        for line in [
            "# TYPE demo_requests_total counter",
            "demo_requests_total{version=\"v1\",status=\"200\"} 2",
            "demo_requests_total{version=\"v1\",status=\"503\"} 1",
            "demo_requests_total{version=\"v2\",status=\"200\"} 1",
            "demo_errors_total{version=\"v1\"} 2",
            "demo_errors_total{version=\"v2\"} 0",
            "# TYPE demo_breaker_state gauge",
            "demo_breaker_state{version=\"v1\"} 1",
            "demo_breaker_state{version=\"v2\"} 2",
            "demo_breaker_opened_total{version=\"v1\"} 2",
            "demo_payments_calls_total{version=\"v1\"} 3",
            "demo_canary_weight 0.1",
            "demo_canary_rolled_back 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in:\n{text}"
            );
        }
        for family in [
            "demo_requests_total",
            "demo_errors_total",
            "demo_breaker_state",
            "demo_breaker_opened_total",
            "demo_payments_calls_total",
            "demo_canary_weight",
            "demo_canary_rolled_back",
        ] {
            assert!(text.contains(&format!("# HELP {family} ")), "{family}");
        }
        assert!(text.ends_with('\n'));
    }
}
