//! Arrival schedules: when the *i*-th request of an open-model run is due.
//!
//! Every shape is a cumulative count N(t) of requests due by time t; request
//! *i* (0-based) is due when N(t) reaches *i*. Keeping one formula per shape
//! makes the schedule exact over long runs (no accumulated rounding) and
//! gives phases their target rate as N(end) − N(start).

use crate::config::model::RateShape;
use std::time::Duration;

/// An arrival schedule built from a [`RateShape`].
#[derive(Debug, Clone)]
pub struct Schedule {
    shape: RateShape,
}

impl Schedule {
    pub fn new(shape: RateShape) -> Schedule {
        Schedule { shape }
    }

    /// N(t): requests due in `[0, t)` (fractional).
    pub fn cumulative(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        match self.shape {
            RateShape::Constant(rate) => rate * t,
            RateShape::Ramp { from, to, over } => {
                let over = over.as_secs_f64();
                let slope = (to - from) / over;
                if t <= over {
                    from * t + slope * t * t / 2.0
                } else {
                    from * over + slope * over * over / 2.0 + to * (t - over)
                }
            }
        }
    }

    /// Expected number of requests due in `[a, b)`.
    pub fn expected_between(&self, a: Duration, b: Duration) -> f64 {
        (self.cumulative(b) - self.cumulative(a)).max(0.0)
    }

    /// When request `i` (0-based) is due, relative to the start of the load.
    /// `None` if it is never due (a rate that never reaches it).
    pub fn offset(&self, i: u64) -> Option<Duration> {
        let n = i as f64;
        let secs = match self.shape {
            RateShape::Constant(rate) if rate > 0.0 => n / rate,
            RateShape::Constant(_) => return None,
            RateShape::Ramp { from, to, over } => {
                let over_s = over.as_secs_f64();
                let slope = (to - from) / over_s;
                let n_over = from * over_s + slope * over_s * over_s / 2.0;
                if n <= n_over {
                    if slope.abs() < 1e-12 {
                        if from <= 0.0 {
                            return None;
                        }
                        n / from
                    } else {
                        // Solve slope/2·t² + from·t − n = 0 for the root in [0, over].
                        let disc = from * from + 2.0 * slope * n;
                        if disc < 0.0 {
                            return None;
                        }
                        (-from + disc.sqrt()) / slope
                    }
                } else if to > 0.0 {
                    over_s + (n - n_over) / to
                } else {
                    return None;
                }
            }
        };
        (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Option<Duration>) -> f64 {
        d.expect("due").as_secs_f64() * 1000.0
    }

    #[test]
    fn a_constant_rate_spaces_requests_evenly() {
        let s = Schedule::new(RateShape::Constant(200.0));
        assert_eq!(ms(s.offset(0)), 0.0);
        assert!((ms(s.offset(1)) - 5.0).abs() < 1e-9);
        assert!((ms(s.offset(2000)) - 10_000.0).abs() < 1e-6);
        assert!(
            (s.expected_between(Duration::from_secs(5), Duration::from_secs(15)) - 2000.0).abs()
                < 1e-6
        );
    }

    #[test]
    fn a_ramp_reaches_its_target_and_then_stays_there() {
        let s = Schedule::new(RateShape::Ramp {
            from: 0.0,
            to: 100.0,
            over: Duration::from_secs(10),
        });
        // Area of the triangle: 0.5 · 10 s · 100/s = 500 requests by the end of the ramp.
        assert!((s.cumulative(Duration::from_secs(10)) - 500.0).abs() < 1e-9);
        assert!((ms(s.offset(500)) - 10_000.0).abs() < 1e-6);
        // Then 100/s: request 600 is due at 11 s.
        assert!((ms(s.offset(600)) - 11_000.0).abs() < 1e-6);
        // Offsets are increasing throughout.
        let mut last = Duration::ZERO;
        for i in 0..1000 {
            let o = s.offset(i).expect("due");
            assert!(o >= last, "request {i} scheduled before {}", i - 1);
            last = o;
        }
    }

    #[test]
    fn a_downward_ramp_inverts_its_count() {
        let s = Schedule::new(RateShape::Ramp {
            from: 100.0,
            to: 10.0,
            over: Duration::from_secs(10),
        });
        for i in [1u64, 50, 300, 549, 560] {
            let t = s.offset(i).expect("due");
            assert!((s.cumulative(t) - i as f64).abs() < 1e-6, "request {i}");
        }
    }
}
