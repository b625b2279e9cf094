//! Calls counted at a dependency's proxy, as verifiers read them: a
//! cumulative counter sampled every 100 ms, turned into counts over
//! windows.
//!
//! A window counts only what certainly fell inside it: from the first
//! sample at or after its start to the last at or before its end. Taking
//! the sample *before* the start instead would add up to 100 ms of calls
//! made before a fault to the calls "while open".

use std::time::Duration;

use super::evidence::CounterSample;

/// Samples are taken every 100 ms but land a little late (timer jitter): a
/// window `[at, at + per]` that starts at a sample ends at the sample
/// nearest to `at + per`, so it is neither a slot short nor a slot long.
const HALF_SLOT: Duration = Duration::from_millis(50);

/// One proxy's samples, in time order.
#[derive(Debug, Clone, Copy)]
pub struct Calls<'a> {
    samples: &'a [CounterSample],
}

impl<'a> Calls<'a> {
    pub fn new(samples: &'a [CounterSample]) -> Calls<'a> {
        Calls { samples }
    }

    fn first_at_or_after(&self, t: Duration) -> Option<&'a CounterSample> {
        self.samples.iter().find(|s| s.at >= t)
    }

    fn last_at_or_before(&self, t: Duration) -> Option<&'a CounterSample> {
        self.samples.iter().take_while(|s| s.at <= t).last()
    }

    /// Calls between two offsets, counted inside the window only.
    pub fn within(&self, from: Duration, to: Duration) -> u64 {
        match (self.first_at_or_after(from), self.last_at_or_before(to)) {
            (Some(a), Some(b)) if a.at <= b.at => b.value.saturating_sub(a.value),
            _ => 0,
        }
    }

    /// Calls per second over `[from, to)`, over the span the samples cover;
    /// `None` when fewer than two samples fall inside.
    pub fn rate(&self, from: Duration, to: Duration) -> Option<f64> {
        let a = self.first_at_or_after(from)?;
        let b = self.last_at_or_before(to)?;
        let span = b.at.checked_sub(a.at)?.as_secs_f64();
        (span > 0.0).then(|| b.value.saturating_sub(a.value) as f64 / span)
    }

    /// For each sample in `[from, to)` whose window `[at, at + per)` ends
    /// by `to`: the window's start and its count.
    pub fn windows(
        &self,
        from: Duration,
        to: Duration,
        per: Duration,
    ) -> impl Iterator<Item = (Duration, u64)> + 'a {
        let me = *self;
        self.samples
            .iter()
            .filter(move |s| s.at >= from && s.at + per <= to)
            .map(move |s| (s.at, me.within(s.at, s.at + per + HALF_SLOT)))
    }

    /// The times of the samples in `[from, to)`.
    pub fn times(&self, from: Duration, to: Duration) -> impl Iterator<Item = Duration> + 'a {
        self.samples
            .iter()
            .map(|s| s.at)
            .filter(move |&at| at >= from && at < to)
    }

    /// Calls between the sample at `at` and the next one: the 100 ms slot
    /// that starts there.
    pub fn next_slot(&self, at: Duration) -> u64 {
        let mut after = self.samples.iter().skip_while(|s| s.at < at);
        match (after.next(), after.next()) {
            (Some(a), Some(b)) => b.value.saturating_sub(a.value),
            _ => 0,
        }
    }

    /// The busiest `per` window in `[from, to)`: its start and count.
    pub fn busiest(&self, from: Duration, to: Duration, per: Duration) -> Option<(Duration, u64)> {
        self.windows(from, to, per)
            .max_by_key(|&(at, n)| (n, std::cmp::Reverse(at)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sample every 100 ms over 0–3 s: 10 calls per 100 ms until 1 s,
    /// none until 2 s, then 5 per 100 ms.
    fn samples() -> Vec<CounterSample> {
        let mut value = 0;
        (0..=30)
            .map(|i| {
                if i > 0 {
                    value += match i {
                        1..=10 => 10,
                        11..=20 => 0,
                        _ => 5,
                    };
                }
                CounterSample {
                    at: Duration::from_millis(i * 100),
                    value,
                }
            })
            .collect()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_window_counts_only_calls_inside_it() {
        let s = samples();
        let calls = Calls::new(&s);
        assert_eq!(calls.within(ms(0), ms(1000)), 100);
        // Starting between samples never counts the 100 ms before the start.
        assert_eq!(calls.within(ms(950), ms(2000)), 0);
        assert_eq!(calls.within(ms(1000), ms(2500)), 25);
        assert_eq!(calls.within(ms(2950), ms(2960)), 0);
    }

    #[test]
    fn rates_and_the_busiest_window() {
        let s = samples();
        let calls = Calls::new(&s);
        assert_eq!(calls.rate(ms(0), ms(1000)), Some(100.0));
        assert_eq!(calls.rate(ms(1000), ms(2000)), Some(0.0));
        assert_eq!(
            calls.busiest(ms(1000), ms(3000), ms(1000)),
            Some((ms(2000), 50))
        );
        assert_eq!(
            calls.busiest(ms(1000), ms(2000), ms(1000)),
            Some((ms(1000), 0))
        );
        assert_eq!(calls.windows(ms(0), ms(3000), ms(1000)).count(), 21);
        assert_eq!(calls.next_slot(ms(0)), 10);
        assert_eq!(calls.next_slot(ms(1500)), 0);
        assert_eq!(calls.next_slot(ms(3000)), 0);
    }

    #[test]
    fn windows_end_at_the_sample_nearest_their_end_despite_jitter() {
        // Every sample 3 ms late: a 1 s window still spans 10 slots.
        let s: Vec<CounterSample> = (0..=20)
            .map(|i| CounterSample {
                at: ms(i * 100 + if i > 0 { 3 } else { 0 }),
                value: i * 10,
            })
            .collect();
        let calls = Calls::new(&s);
        let first = calls.windows(ms(0), ms(2100), ms(1000)).next();
        assert_eq!(first, Some((ms(0), 100)));
        assert_eq!(calls.next_slot(ms(503)), 10);
    }
}
