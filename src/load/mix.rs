//! The weighted request mix.

use rand::Rng;

/// Picks request indices in proportion to their weights.
#[derive(Debug, Clone)]
pub struct Mix {
    /// Cumulative weights; the last entry is the total.
    cumulative: Vec<u64>,
}

impl Mix {
    /// `weights` must be non-empty with a positive total (validation ensures it).
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Mix {
        let mut total = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                total += u64::from(w);
                total
            })
            .collect();
        Mix { cumulative }
    }

    /// An index drawn with probability weight/total.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        match self.cumulative.last() {
            Some(&total) if self.cumulative.len() > 1 && total > 0 => {
                let x = rng.gen_range(0..total);
                self.cumulative.partition_point(|&c| c <= x)
            }
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn picks_follow_the_weights() {
        let mix = Mix::new([3, 1]);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 40_000;
        let first = (0..n).filter(|_| mix.pick(&mut rng) == 0).count();
        let share = first as f64 / n as f64;
        assert!(
            (share - 0.75).abs() < 0.01,
            "share of weight-3 entry: {share}"
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_sequence() {
        let mix = Mix::new([1, 2, 3]);
        let seq = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..100).map(|_| mix.pick(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(seq(42), seq(42));
        assert_ne!(seq(42), seq(43));
    }
}
