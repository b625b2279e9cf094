//! An HDR latency histogram in microseconds, and its summary in milliseconds.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Highest trackable latency: one hour, in microseconds. Larger values are
/// clamped (and still counted) rather than dropped.
const MAX_MICROS: u64 = 3_600_000_000;

/// A latency histogram with microsecond resolution and 3 significant digits.
#[derive(Clone)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LatencyHistogram(n={})", self.inner.len())
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        // Bounds are constants within hdrhistogram's limits, so this cannot fail.
        let inner = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid"));
        Self { inner }
    }

    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.inner.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.inner.add(&other.inner);
    }

    pub fn clear(&mut self) {
        self.inner.reset();
    }

    /// Value at quantile `q` (0..=1) in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.inner.value_at_quantile(q) as f64 / 1000.0
    }

    /// The standard percentile set, or `None` when there are no samples.
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.inner.is_empty() {
            return None;
        }
        Some(LatencySummary {
            p50: self.quantile_ms(0.50),
            p90: self.quantile_ms(0.90),
            p95: self.quantile_ms(0.95),
            p99: self.quantile_ms(0.99),
            p999: self.quantile_ms(0.999),
            max: self.inner.max() as f64 / 1000.0,
            mean: self.inner.mean() / 1000.0,
        })
    }

    /// HdrHistogram's compressed V2 serialization, base64-encoded: the
    /// portable form other tools (and `faultline merge`) can read back exactly.
    pub fn to_base64(&self) -> String {
        use base64::Engine;
        let mut bytes = Vec::new();
        let mut ser = hdrhistogram::serialization::V2DeflateSerializer::new();
        match hdrhistogram::serialization::Serializer::serialize(&mut ser, &self.inner, &mut bytes)
        {
            Ok(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
            Err(_) => String::new(),
        }
    }

    /// Reads [`Self::to_base64`]'s output back.
    pub fn from_base64(text: &str) -> Result<LatencyHistogram, String> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let mut de = hdrhistogram::serialization::Deserializer::new();
        let h: Histogram<u64> = de
            .deserialize(&mut std::io::Cursor::new(bytes))
            .map_err(|e| format!("not an HdrHistogram: {e:?}"))?;
        let mut out = LatencyHistogram::new();
        out.inner
            .add(&h)
            .map_err(|e| format!("histogram out of range: {e:?}"))?;
        Ok(out)
    }

    /// How many samples are at or below each of `bounds_micros` (ascending):
    /// the `le` buckets of a Prometheus classic histogram. One pass over the
    /// recorded values, not over the whole HDR range. A sample counts at its
    /// HDR bucket's lowest equivalent value (so one exactly on a bound is in
    /// that bucket, as `le` says); one within 0.1% above a bound may be too.
    pub fn cumulative_counts(&self, bounds_micros: &[u64]) -> Vec<u64> {
        let mut counts = vec![0u64; bounds_micros.len()];
        for v in self.inner.iter_recorded() {
            let value = self.inner.lowest_equivalent(v.value_iterated_to());
            let first = bounds_micros.partition_point(|&b| b < value);
            if let Some(c) = counts.get_mut(first) {
                *c += v.count_since_last_iteration();
            }
        }
        let mut running = 0;
        for c in &mut counts {
            running += *c;
            *c = running;
        }
        counts
    }

    /// The sum of all samples in seconds (from the mean: exact to HDR precision).
    pub fn sum_seconds(&self) -> f64 {
        self.inner.mean() * self.inner.len() as f64 / 1e6
    }

    /// The underlying histogram (for serialization and statistics).
    pub fn raw(&self) -> &Histogram<u64> {
        &self.inner
    }
}

/// Latency percentiles in milliseconds (JSON: `latency_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_within_hdr_precision() {
        let mut h = LatencyHistogram::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary().expect("samples recorded");
        // 3 significant digits: relative error below 0.1%.
        assert!((s.p50 - 500.0).abs() <= 0.5, "p50 {}", s.p50);
        assert!((s.p99 - 990.0).abs() <= 1.0, "p99 {}", s.p99);
        assert!((s.max - 1000.0).abs() <= 1.0, "max {}", s.max);
        assert!((s.mean - 500.5).abs() <= 0.5, "mean {}", s.mean);
    }

    #[test]
    fn an_empty_histogram_has_no_summary() {
        assert!(LatencyHistogram::new().summary().is_none());
    }

    #[test]
    fn huge_latencies_are_clamped_not_lost() {
        let mut h = LatencyHistogram::new();
        h.record(Duration::from_secs(10 * 3600));
        h.record(Duration::ZERO);
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn the_base64_form_round_trips_exactly() {
        let mut h = LatencyHistogram::new();
        for ms in [1u64, 5, 5, 20, 250, 3000] {
            h.record(Duration::from_millis(ms));
        }
        let back = LatencyHistogram::from_base64(&h.to_base64()).expect("decodes");
        assert_eq!(back.len(), h.len());
        assert_eq!(back.summary(), h.summary());
        assert!(LatencyHistogram::from_base64("not base64!").is_err());
        assert!(LatencyHistogram::from_base64("aGVsbG8=").is_err());
    }

    #[test]
    fn cumulative_counts_are_the_le_buckets() {
        let mut h = LatencyHistogram::new();
        for ms in [1u64, 4, 5, 20, 250, 3000] {
            h.record(Duration::from_millis(ms));
        }
        let counts = h.cumulative_counts(&[1_000, 5_000, 100_000, 1_000_000]);
        assert_eq!(counts, [1, 3, 4, 5]);
        assert!((h.sum_seconds() - 3.28).abs() < 0.01, "{}", h.sum_seconds());
    }

    #[test]
    fn merging_adds_samples() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        a.record(Duration::from_millis(10));
        b.record(Duration::from_millis(30));
        a.merge(&b);
        assert_eq!(a.len(), 2);
        assert!((a.summary().expect("two samples").max - 30.0).abs() < 0.1);
    }
}
