//! `latency`: each chunk is written `latency ± jitter` ms after it arrived.
//!
//! The delay counts from the chunk's arrival, not from when the writer gets
//! to it, so a bulk stream keeps flowing (every chunk is late by about the
//! same amount) instead of moving one chunk per latency period.

use std::time::Duration;

use rand::Rng;

use super::{later, Cx, Payload, Piece, Toxic, FOREVER};
use crate::proxy::spec::Distribution;

pub(super) struct Latency {
    latency: u64,
    jitter: u64,
    distribution: Distribution,
}

impl Latency {
    pub fn new(latency: u64, jitter: u64, distribution: Distribution) -> Latency {
        Latency {
            latency,
            jitter,
            distribution,
        }
    }
}

impl Toxic for Latency {
    fn pipe(&mut self, mut piece: Piece, cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        // EOF and close follow the data they come after, with no delay of their own.
        if let Payload::Data(_) = piece.payload {
            let delay = jittered(self.latency, self.jitter, self.distribution, cx.rng);
            piece.due = piece.due.max(later(piece.arrived, delay));
        }
        out.push(piece);
    }
}

/// `latency` ms with `jitter` ms of noise shaped by `distribution` (see
/// [`crate::proxy::jitter`]), capped so a wild Pareto draw cannot overflow
/// the schedule.
pub(crate) fn jittered(
    latency: u64,
    jitter: u64,
    distribution: Distribution,
    rng: &mut impl Rng,
) -> Duration {
    crate::proxy::jitter::draw(latency, jitter, distribution, rng).min(FOREVER)
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::super::testing::{data, rng, run};
    use super::*;

    fn draws(latency: u64, jitter: u64, distribution: Distribution) -> Vec<f64> {
        let mut rng = rng();
        (0..20_000)
            .map(|_| jittered(latency, jitter, distribution, &mut rng).as_secs_f64() * 1000.0)
            .collect()
    }

    fn mean(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    #[test]
    fn uniform_jitter_stays_within_the_band_around_the_latency() {
        let xs = draws(100, 20, Distribution::Uniform);
        assert!(xs.iter().all(|x| (80.0..=120.0).contains(x)));
        assert!((mean(&xs) - 100.0).abs() < 1.0, "mean {}", mean(&xs));
        assert!(xs.iter().any(|x| *x < 85.0) && xs.iter().any(|x| *x > 115.0));
    }

    #[test]
    fn normal_jitter_has_the_jitter_as_standard_deviation_and_is_never_negative() {
        let xs = draws(100, 20, Distribution::Normal);
        let m = mean(&xs);
        let sd = (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt();
        assert!((m - 100.0).abs() < 1.0, "mean {m}");
        assert!((sd - 20.0).abs() < 1.0, "sd {sd}");
        assert!(draws(5, 50, Distribution::Normal).iter().all(|x| *x >= 0.0));
    }

    #[test]
    fn pareto_jitter_only_adds_with_a_heavy_tail() {
        let xs = draws(100, 20, Distribution::Pareto);
        assert!(xs.iter().all(|x| *x >= 100.0));
        // E[X − 1] = 1/(α − 1) = 2/3 of the jitter.
        assert!(
            (mean(&xs) - (100.0 + 20.0 * 2.0 / 3.0)).abs() < 1.5,
            "mean {}",
            mean(&xs)
        );
        assert!(xs.iter().any(|x| *x > 200.0), "a tail beyond 5 jitters");
    }

    #[test]
    fn no_jitter_is_exact_and_draws_nothing() {
        let mut a = rng();
        assert_eq!(
            jittered(100, 0, Distribution::Normal, &mut a),
            Duration::from_millis(100)
        );
        assert_eq!(a, rng(), "random stream untouched");
    }

    #[test]
    fn data_is_due_its_delay_after_arrival_and_eof_is_not_delayed() {
        let t0 = Instant::now();
        let mut toxic = Latency::new(100, 0, Distribution::Uniform);
        let later_piece = data(3, t0 + Duration::from_millis(30));
        let out = run(
            &mut toxic,
            vec![data(5, t0), later_piece, Piece::eof(t0)],
            t0 + Duration::from_millis(50),
        );
        let dues: Vec<_> = out.iter().map(|p| p.due - t0).collect();
        assert_eq!(
            dues,
            [
                Duration::from_millis(100),
                Duration::from_millis(130),
                Duration::ZERO
            ]
        );
    }
}
