//! `slicer`: data is written in slices of `average_size ± size_variation`
//! bytes (at least 1), `delay` µs apart. Every byte goes through, in order.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::{later, Cx, Payload, Piece, Toxic};

pub(super) struct Slicer {
    average: u64,
    variation: u64,
    delay: Duration,
    /// When the next slice may go: the spacing holds across chunks too.
    next: Option<Instant>,
}

impl Slicer {
    pub fn new(average_size: u64, size_variation: u64, delay_us: u64) -> Slicer {
        Slicer {
            average: average_size,
            variation: size_variation,
            delay: Duration::from_micros(delay_us),
            next: None,
        }
    }

    fn size(&self, cx: &mut Cx<'_>) -> usize {
        let size = if self.variation == 0 {
            self.average
        } else {
            let low = self.average.saturating_sub(self.variation);
            cx.rng
                .gen_range(low..=self.average.saturating_add(self.variation))
        };
        usize::try_from(size).unwrap_or(usize::MAX).max(1)
    }
}

impl Toxic for Slicer {
    fn pipe(&mut self, piece: Piece, cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        let Payload::Data(bytes) = &piece.payload else {
            return out.push(piece);
        };
        let mut at = piece.due.max(cx.now);
        if let Some(next) = self.next {
            at = at.max(next);
        }
        let mut start = 0;
        while start < bytes.len() {
            let end = bytes.len().min(start.saturating_add(self.size(cx)));
            out.push(piece.part(Payload::Data(bytes.slice(start..end)), at));
            at = later(at, self.delay);
            start = end;
        }
        self.next = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{bytes_of, data, run};
    use super::*;

    #[test]
    fn slices_vary_around_the_average_and_keep_every_byte_in_order() {
        let t0 = Instant::now();
        let mut toxic = Slicer::new(10, 4, 1000);
        let input = vec![data(1000, t0)];
        let out = run(&mut toxic, input.clone(), t0);
        assert_eq!(bytes_of(&out), bytes_of(&input));
        let sizes: Vec<usize> = out
            .iter()
            .map(|p| match &p.payload {
                Payload::Data(b) => b.len(),
                _ => 0,
            })
            .collect();
        assert!(
            sizes[..sizes.len() - 1]
                .iter()
                .all(|s| (6..=14).contains(s)),
            "{sizes:?}"
        );
        assert!(sizes.iter().any(|s| *s != 10), "sizes vary: {sizes:?}");
        assert!(out
            .windows(2)
            .all(|w| w[1].due - w[0].due == Duration::from_millis(1)));
    }

    #[test]
    fn a_zero_average_still_makes_progress() {
        let t0 = Instant::now();
        let mut toxic = Slicer::new(0, 0, 0);
        assert_eq!(run(&mut toxic, vec![data(5, t0)], t0).len(), 5);
    }
}
