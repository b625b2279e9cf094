//! `reset_peer`: `timeout` ms after the toxic became active on a connection
//! (0: at once), the client connection is reset with a TCP RST and the
//! upstream side closed. Data passes untouched until then.

use tokio::time::Instant;

use super::{later, millis, Cx, Ending, Piece, Toxic};

pub(super) struct ResetPeer {
    resets_at: Instant,
}

impl ResetPeer {
    pub fn new(timeout_ms: u64, activated: Instant) -> ResetPeer {
        ResetPeer {
            resets_at: later(activated, millis(timeout_ms)),
        }
    }
}

impl Toxic for ResetPeer {
    fn pipe(&mut self, piece: Piece, _cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        out.push(piece);
    }

    fn deadline(&self) -> Option<(Instant, Ending)> {
        Some((self.resets_at, Ending::Reset))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{data, run};
    use super::*;

    #[test]
    fn data_passes_until_the_reset_timer_fires() {
        let t0 = Instant::now();
        let mut toxic = ResetPeer::new(250, t0);
        let input = vec![data(10, t0)];
        assert_eq!(run(&mut toxic, input.clone(), t0), input);
        assert_eq!(
            toxic.deadline(),
            Some((t0 + Duration::from_millis(250), Ending::Reset))
        );
    }
}
