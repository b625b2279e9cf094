//! `reset_peer`, as Toxiproxy's `toxics/reset_peer.go`: nothing happens
//! until the first data arrives on the toxic's direction after it was
//! applied; that data is dropped, and `timeout` ms after its arrival (0: at
//! once) the connection is reset: the client side with a TCP RST (linger
//! 0, unsent data discarded), the upstream side closed (RST too in TCP
//! mode, as Toxiproxy sets linger 0 on both sockets).
//!
//! Between the first data and the reset nothing more passes in this
//! direction (Toxiproxy's toxic stops reading its input). An idle
//! connection is never reset, and a source that closes (EOF) before sending
//! anything closes the connection normally, with no RST.

use tokio::time::Instant;

use super::{later, millis, Cx, Ending, Payload, Piece, Toxic};

pub(super) struct ResetPeer {
    timeout_ms: u64,
    /// When the reset is due; set by the first data.
    resets_at: Option<Instant>,
}

impl ResetPeer {
    pub fn new(timeout_ms: u64) -> ResetPeer {
        ResetPeer {
            timeout_ms,
            resets_at: None,
        }
    }
}

impl Toxic for ResetPeer {
    fn pipe(&mut self, piece: Piece, _cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        if self.resets_at.is_some() {
            return;
        }
        match piece.payload {
            Payload::Data(_) => {
                self.resets_at = Some(later(piece.arrived, millis(self.timeout_ms)));
            }
            Payload::Eof | Payload::Close => out.push(piece),
        }
    }

    fn deadline(&self) -> Option<(Instant, Ending)> {
        self.resets_at.map(|at| (at, Ending::Reset))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{data, run};
    use super::*;

    #[test]
    fn nothing_is_due_until_data_arrives_and_that_data_is_dropped() {
        let t0 = Instant::now();
        let mut toxic = ResetPeer::new(250);
        assert_eq!(toxic.deadline(), None, "an idle connection is never reset");
        let first = t0 + Duration::from_millis(40);
        let out = run(&mut toxic, vec![data(10, first), data(5, first)], first);
        assert!(
            out.is_empty(),
            "the first data and what follows are dropped"
        );
        assert_eq!(
            toxic.deadline(),
            Some((first + Duration::from_millis(250), Ending::Reset)),
            "the timer counts from the first data's arrival"
        );
        assert!(run(&mut toxic, vec![Piece::eof(first)], first).is_empty());
    }

    #[test]
    fn a_zero_timeout_resets_on_the_first_data_and_an_eof_alone_passes() {
        let t0 = Instant::now();
        let mut toxic = ResetPeer::new(0);
        assert_eq!(
            run(&mut toxic, vec![Piece::eof(t0)], t0),
            vec![Piece::eof(t0)]
        );
        assert_eq!(toxic.deadline(), None, "EOF is no data: no reset");
        run(&mut toxic, vec![data(1, t0)], t0);
        assert_eq!(toxic.deadline(), Some((t0, Ending::Reset)));
    }
}
