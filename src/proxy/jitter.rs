//! Drawing one delay: a base in ms plus a random part shaped by a
//! [`Distribution`], from the proxy's seeded RNG. The one definition of the
//! distributions, shared by the `latency` toxic and the `http_delay` fault.
//!
//! The shapes are the ones documented on [`Distribution`]; rand 0.8 without
//! `rand_distr` has no normal or Pareto sampler, so both are drawn here from
//! uniforms (Box–Muller and the inverse CDF), which keeps them reproducible
//! from the seed.

use std::time::Duration;

use rand::Rng;

use crate::proxy::spec::Distribution;

/// Shape parameter α of the Pareto tail; 2.5 gives a finite mean and variance.
const PARETO_ALPHA: f64 = 2.5;

/// One delay of `delay_ms` ± `jitter_ms`, never negative.
///
/// No random number is drawn when `jitter_ms` is 0, so a fixed delay does not
/// shift the RNG sequence of the faults evaluated after it.
pub(crate) fn draw(
    delay_ms: u64,
    jitter_ms: u64,
    distribution: Distribution,
    rng: &mut impl Rng,
) -> Duration {
    if jitter_ms == 0 {
        return Duration::from_millis(delay_ms);
    }
    let (delay, jitter) = (delay_ms as f64, jitter_ms as f64);
    let ms = match distribution {
        Distribution::Uniform => delay + rng.gen_range(-jitter..=jitter),
        Distribution::Normal => delay + jitter * standard_normal(rng),
        Distribution::Pareto => delay + jitter * (pareto(rng) - 1.0),
    };
    // `ms` is finite (every input is), but clamp before converting so that
    // neither a negative draw nor an absurd tail can panic.
    Duration::try_from_secs_f64(ms.max(0.0) / 1000.0).unwrap_or(Duration::MAX)
}

/// N(0, 1) by Box–Muller (one of the pair is discarded: simpler than caching).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    // `1 - [0, 1)` is `(0, 1]`, so the logarithm is finite.
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Pareto(x_m = 1, α) by inverse CDF: always ≥ 1, heavy upper tail.
fn pareto(rng: &mut impl Rng) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    u.powf(-1.0 / PARETO_ALPHA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    const N: usize = 20_000;

    fn sample(delay: u64, jitter: u64, distribution: Distribution) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        (0..N)
            .map(|_| draw(delay, jitter, distribution, &mut rng).as_secs_f64() * 1000.0)
            .collect()
    }

    fn mean(xs: &[f64]) -> f64 {
        xs.iter().sum::<f64>() / xs.len() as f64
    }

    fn std_dev(xs: &[f64]) -> f64 {
        let m = mean(xs);
        (xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    #[test]
    fn a_delay_without_jitter_is_exact_and_draws_nothing() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let before = rng.clone();
        for distribution in [
            Distribution::Uniform,
            Distribution::Normal,
            Distribution::Pareto,
        ] {
            assert_eq!(
                draw(100, 0, distribution, &mut rng),
                Duration::from_millis(100)
            );
        }
        assert_eq!(rng, before, "the RNG was not advanced");
    }

    #[test]
    fn uniform_jitter_stays_within_plus_or_minus_jitter_around_the_delay() {
        let xs = sample(100, 20, Distribution::Uniform);
        assert!(xs.iter().all(|x| (80.0..=120.0).contains(x)), "range");
        assert!((mean(&xs) - 100.0).abs() < 0.5, "mean {}", mean(&xs));
        // The standard deviation of U(-j, j) is j / √3.
        assert!(
            (std_dev(&xs) - 20.0 / 3f64.sqrt()).abs() < 0.5,
            "sd {}",
            std_dev(&xs)
        );
    }

    #[test]
    fn normal_jitter_has_the_delay_as_mean_and_the_jitter_as_standard_deviation() {
        let xs = sample(100, 10, Distribution::Normal);
        assert!((mean(&xs) - 100.0).abs() < 0.5, "mean {}", mean(&xs));
        assert!((std_dev(&xs) - 10.0).abs() < 0.5, "sd {}", std_dev(&xs));
    }

    #[test]
    fn normal_jitter_larger_than_the_delay_is_clamped_at_zero() {
        let xs = sample(10, 100, Distribution::Normal);
        assert!(xs.iter().all(|x| *x >= 0.0));
        assert!(xs.contains(&0.0), "some draws were clamped");
    }

    #[test]
    fn pareto_jitter_never_goes_below_the_delay_and_has_a_heavy_tail() {
        let xs = sample(100, 10, Distribution::Pareto);
        assert!(xs.iter().all(|x| *x >= 100.0), "never below the delay");
        // E[X - 1] = α / (α - 1) - 1 = 2/3 for α = 2.5.
        assert!(
            (mean(&xs) - (100.0 + 10.0 * 2.0 / 3.0)).abs() < 0.5,
            "mean {}",
            mean(&xs)
        );
        // P(X > 10) = 10^-2.5 ≈ 0.32%: the tail reaches 9 jitters beyond the delay.
        let far = xs.iter().filter(|x| **x > 190.0).count() as f64 / N as f64;
        assert!((0.001..0.006).contains(&far), "tail fraction {far}");
    }

    #[test]
    fn the_same_seed_draws_the_same_delays() {
        assert_eq!(
            sample(50, 25, Distribution::Normal),
            sample(50, 25, Distribution::Normal)
        );
    }
}
