//! The `rate_limit` HTTP fault: the 429s an API gateway or a rate-limited
//! dependency answers once its clients send more than their share.
//!
//! A token bucket per fault and key: it holds up to `burst` tokens, refills
//! at `rate` per second, and each matching request takes one; a request
//! finding it empty is answered `status` (429 by default) with
//! `Retry-After`, the whole seconds until a token is back (at least 1, as
//! the header has no fractions). The key is the value of `key_header`
//! (e.g. an API key, so each client gets its own limit), or one bucket for
//! all requests when the fault has none or the request lacks the header.
//!
//! Bounded: at most [`MAX_KEYS`] buckets per hop; requests with further
//! keys share one overflow bucket, so a client cycling through keys can
//! neither grow memory nor escape the limit.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Buckets kept per hop, over all its `rate_limit` faults.
pub const MAX_KEYS: usize = 10_000;
/// Past this, a rate is a typo (the hop cannot count that fast anyway).
const MAX_RATE: f64 = 1e9;

/// The checks the admin API and the YAML layer share.
pub fn check(rate: f64, burst: u64, status: u16, key_header: Option<&str>) -> Result<(), String> {
    if !rate.is_finite() || rate <= 0.0 || rate > MAX_RATE {
        return Err(format!(
            "`rate` must be above 0 and at most {MAX_RATE} requests per second, got {rate}"
        ));
    }
    if burst > MAX_RATE as u64 {
        return Err(format!("`burst` must be at most {MAX_RATE}, got {burst}"));
    }
    if !(200..=599).contains(&status) {
        return Err(format!("`status` must be 200..=599, got {status}"));
    }
    if let Some(name) = key_header {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            return Err(format!("`key_header` `{name}` is not a valid header name"));
        }
    }
    Ok(())
}

/// The bucket size a `burst` of 0 stands for: one second of `rate`.
pub fn effective_burst(rate: f64, burst: u64) -> f64 {
    if burst > 0 {
        burst as f64
    } else {
        rate.ceil().max(1.0)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Every bucket of one hop.
#[derive(Debug, Default)]
pub(crate) struct RateLimits {
    buckets: Mutex<HashMap<(String, Option<String>), Bucket>>,
}

impl RateLimits {
    /// Takes a token from `fault`'s bucket for `key` at `now`: `Ok` when
    /// the request is within the limit, else how long until a token is back.
    pub(crate) fn take(
        &self,
        fault: &str,
        key: Option<String>,
        rate: f64,
        burst: f64,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let mut id = (fault.to_string(), key);
        if !buckets.contains_key(&id) && buckets.len() >= MAX_KEYS {
            // The overflow bucket of this fault: the keyless one.
            id.1 = None;
        }
        let bucket = buckets.entry(id).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Forgets `fault`'s buckets (it was removed; a new one starts full).
    pub(crate) fn forget(&self, fault: &str) {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        buckets.retain(|(name, _), _| name != fault);
    }

    /// Forgets every bucket.
    pub(crate) fn clear(&self) {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after(wait: Duration) -> u64 {
    (wait.as_secs_f64().ceil() as u64).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limits = RateLimits::default();
        let t0 = Instant::now();
        let take = |at: Duration| limits.take("f", None, 10.0, 5.0, t0 + at);
        for _ in 0..5 {
            assert_eq!(take(Duration::ZERO), Ok(()));
        }
        // Empty: the next token is 100 ms away.
        let wait = take(Duration::ZERO).expect_err("limited");
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        assert_eq!(retry_after(wait), 1);
        // One second later: 10 tokens refilled, capped at the burst of 5.
        let allowed = (0..20)
            .filter(|_| take(Duration::from_secs(1)).is_ok())
            .count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn keys_have_their_own_buckets_up_to_the_bound() {
        let limits = RateLimits::default();
        let now = Instant::now();
        assert_eq!(limits.take("f", Some("a".into()), 1.0, 1.0, now), Ok(()));
        assert!(limits.take("f", Some("a".into()), 1.0, 1.0, now).is_err());
        assert_eq!(limits.take("f", Some("b".into()), 1.0, 1.0, now), Ok(()));
        limits.forget("f");
        assert_eq!(limits.take("f", Some("a".into()), 1.0, 1.0, now), Ok(()));
        // Past the bound, new keys share the keyless bucket.
        for i in 0..MAX_KEYS {
            let _ = limits.take("g", Some(format!("k{i}")), 1.0, 1.0, now);
        }
        assert_eq!(limits.take("h", Some("new".into()), 1.0, 1.0, now), Ok(()));
        assert!(limits
            .take("h", Some("newer".into()), 1.0, 1.0, now)
            .is_err());
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(check(10.0, 0, 429, Some("x-api-key")).is_ok());
        assert!(check(0.0, 0, 429, None).is_err());
        assert!(check(f64::NAN, 0, 429, None).is_err());
        assert!(check(1e12, 0, 429, None).is_err());
        assert!(check(10.0, 0, 99, None).is_err());
        assert!(check(10.0, 0, 429, Some("bad header")).is_err());
        assert_eq!(effective_burst(2.5, 0), 3.0);
        assert_eq!(effective_burst(0.5, 0), 1.0);
        assert_eq!(effective_burst(10.0, 4), 4.0);
    }
}
