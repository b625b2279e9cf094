//! The `payments` service: a fake payment processor with a service time.
//!
//! Its latency is the knob experiments turn (`payments_latency`), so it is
//! real wall-clock time on the server, with a little seeded jitter so that
//! latency histograms look like a real dependency rather than a spike.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use super::server::{self, HttpResponse};

/// Jitter is at most this fraction of the service time, either way.
pub const JITTER: f64 = 0.10;

/// Payments never need a large body; larger ones are read up to here and dropped.
const BODY_LIMIT: usize = 64 * 1024;

/// The payments handler state; one per demo system.
#[derive(Debug)]
pub struct Payments {
    latency: Duration,
    /// Seeded so that a run's service times repeat with its seed.
    rng: Mutex<ChaCha8Rng>,
    transactions: AtomicU64,
}

impl Payments {
    /// A payments service answering `/pay` after about `latency` (±[`JITTER`]).
    pub fn new(latency: Duration, seed: u64) -> Payments {
        Payments {
            latency,
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            transactions: AtomicU64::new(0),
        }
    }

    /// Routes one request: `GET|POST /pay`, `GET /health`, else 404.
    pub async fn handle(&self, req: Request<Incoming>) -> HttpResponse {
        let (parts, body) = req.into_parts();
        match (parts.uri.path(), &parts.method) {
            ("/pay", &Method::GET | &Method::POST) => {
                let _ = server::read_body(body, BODY_LIMIT).await;
                self.pay().await
            }
            ("/pay", _) => server::error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
            ("/health", &Method::GET) => server::json(StatusCode::OK, &json!({ "status": "ok" })),
            _ => server::error(StatusCode::NOT_FOUND, "not found"),
        }
    }

    async fn pay(&self) -> HttpResponse {
        let service_time = self.service_time();
        if !service_time.is_zero() {
            tokio::time::sleep(service_time).await;
        }
        let n = self.transactions.fetch_add(1, Ordering::Relaxed) + 1;
        server::json(
            StatusCode::OK,
            &json!({
                "transaction_id": format!("txn-{n:08}"),
                "amount_cents": 1299,
                "currency": "EUR",
                "email": "customer@example.com",
                "status": "approved",
            }),
        )
    }

    fn service_time(&self) -> Duration {
        // The lock is held only to draw one number; poison cannot leave the
        // RNG in a state worse than "some other random state".
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        jittered(self.latency, &mut *rng)
    }
}

/// `base` scaled by a uniform factor in `[1 - JITTER, 1 + JITTER]`.
pub fn jittered(base: Duration, rng: &mut impl Rng) -> Duration {
    base.mul_f64(1.0 + rng.gen_range(-JITTER..=JITTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let base = Duration::from_millis(100);
        for _ in 0..10_000 {
            let d = jittered(base, &mut rng);
            assert!(
                d >= Duration::from_millis(90) && d <= Duration::from_millis(110),
                "{d:?}"
            );
        }
    }

    #[test]
    fn same_seed_gives_the_same_service_times() {
        let draw = |seed| {
            let payments = Payments::new(Duration::from_millis(2), seed);
            (0..32).map(|_| payments.service_time()).collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn zero_latency_has_no_jitter() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(jittered(Duration::ZERO, &mut rng), Duration::ZERO);
    }
}
