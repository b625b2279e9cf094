//! `bandwidth`: at most `rate` KB/s (1 KB = 1000 bytes, as Toxiproxy).
//!
//! Data is cut into slices of about 10 ms worth of bytes, each due when the
//! link would have finished sending it at `rate`; the schedule carries over
//! from chunk to chunk, so the pace is smooth and exact over a long stream.
//! A rate of 0 means no limit (Toxiproxy's behaviour).

use std::time::Duration;

use tokio::time::Instant;

use super::{Cx, Payload, Piece, Toxic};

/// Slices are this long on the wire at the configured rate.
const SLICE_TIME_MS: u64 = 10;

pub(super) struct Bandwidth {
    /// Bytes per second; 0 is unlimited.
    bytes_per_sec: u64,
    /// When the last planned slice finishes at `rate`.
    next: Option<Instant>,
}

impl Bandwidth {
    pub fn new(rate_kb: u64) -> Bandwidth {
        Bandwidth {
            bytes_per_sec: rate_kb.saturating_mul(1000),
            next: None,
        }
    }

    /// How long `len` bytes take at the rate.
    fn wire_time(&self, len: usize) -> Duration {
        let nanos = len as u128 * 1_000_000_000 / u128::from(self.bytes_per_sec);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl Toxic for Bandwidth {
    fn pipe(&mut self, piece: Piece, cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        let Payload::Data(bytes) = &piece.payload else {
            return out.push(piece);
        };
        if self.bytes_per_sec == 0 {
            return out.push(piece);
        }
        let slice = usize::try_from(self.bytes_per_sec * SLICE_TIME_MS / 1000)
            .unwrap_or(usize::MAX)
            .max(1);
        // Never earlier than the piece may go, than the writer is, or than the
        // previous slice is done.
        let mut at = piece.due.max(cx.now);
        if let Some(next) = self.next {
            at = at.max(next);
        }
        let mut start = 0;
        while start < bytes.len() {
            let end = bytes.len().min(start + slice);
            at += self.wire_time(end - start);
            out.push(piece.part(Payload::Data(bytes.slice(start..end)), at));
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
    fn a_chunk_is_sliced_and_paced_at_the_rate() {
        let t0 = Instant::now();
        // 10 KB/s: 100-byte slices, 10 ms each.
        let mut toxic = Bandwidth::new(10);
        let input = vec![data(1000, t0), data(500, t0)];
        let out = run(&mut toxic, input.clone(), t0);
        assert_eq!(out.len(), 15);
        assert_eq!(bytes_of(&out), bytes_of(&input));
        let last = out.last().map(|p| p.due - t0);
        assert_eq!(last, Some(Duration::from_millis(150)), "1500 B at 10 KB/s");
        assert!(out
            .windows(2)
            .all(|w| w[1].due - w[0].due == Duration::from_millis(10)));
    }

    #[test]
    fn idle_time_is_not_saved_up_for_a_burst() {
        let t0 = Instant::now();
        let mut toxic = Bandwidth::new(10);
        run(&mut toxic, vec![data(100, t0)], t0);
        let later = t0 + Duration::from_secs(5);
        let out = run(&mut toxic, vec![data(200, later)], later);
        assert_eq!(out[1].due - later, Duration::from_millis(20));
    }

    #[test]
    fn rate_zero_is_unlimited_and_eof_passes_untouched() {
        let t0 = Instant::now();
        let mut toxic = Bandwidth::new(0);
        let input = vec![data(100_000, t0), Piece::eof(t0)];
        assert_eq!(run(&mut toxic, input.clone(), t0), input);
    }
}
