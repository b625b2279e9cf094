//! `timeout`: no data gets through (it is dropped, as Toxiproxy does); with
//! `timeout` > 0 the connection is closed that many ms after the toxic
//! became active on it, with 0 never. Once the toxic is removed, data flows
//! again (what was dropped stays dropped). An EOF from the source still
//! passes, so a client that closes is not kept waiting.

use tokio::time::Instant;

use super::{later, millis, Cx, Ending, Payload, Piece, Toxic};

pub(super) struct Timeout {
    closes_at: Option<Instant>,
}

impl Timeout {
    pub fn new(timeout_ms: u64, activated: Instant) -> Timeout {
        Timeout {
            closes_at: (timeout_ms > 0).then(|| later(activated, millis(timeout_ms))),
        }
    }
}

impl Toxic for Timeout {
    fn pipe(&mut self, piece: Piece, _cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        if !matches!(piece.payload, Payload::Data(_)) {
            out.push(piece);
        }
    }

    fn deadline(&self) -> Option<(Instant, Ending)> {
        self.closes_at.map(|at| (at, Ending::Close))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{data, run};
    use super::*;

    #[test]
    fn data_is_dropped_and_the_close_timer_counts_from_activation() {
        let t0 = Instant::now();
        let mut toxic = Timeout::new(500, t0);
        let out = run(&mut toxic, vec![data(10, t0), Piece::eof(t0)], t0);
        assert_eq!(out, vec![Piece::eof(t0)]);
        assert_eq!(
            toxic.deadline(),
            Some((t0 + Duration::from_millis(500), Ending::Close))
        );
        assert_eq!(Timeout::new(0, t0).deadline(), None, "0 never closes");
    }
}
