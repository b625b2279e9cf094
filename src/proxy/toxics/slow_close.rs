//! `slow_close`: when the source reaches EOF, the close is passed on `delay`
//! ms later. Data is untouched.

use std::time::Duration;

use super::{later, millis, Cx, Payload, Piece, Toxic};

pub(super) struct SlowClose {
    delay: Duration,
}

impl SlowClose {
    pub fn new(delay_ms: u64) -> SlowClose {
        SlowClose {
            delay: millis(delay_ms),
        }
    }
}

impl Toxic for SlowClose {
    fn pipe(&mut self, mut piece: Piece, cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        if piece.payload == Payload::Eof {
            piece.due = later(piece.due.max(cx.now), self.delay);
        }
        out.push(piece);
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::super::testing::{data, run};
    use super::*;

    #[test]
    fn only_the_close_is_delayed() {
        let t0 = Instant::now();
        let out = run(
            &mut SlowClose::new(300),
            vec![data(4, t0), Piece::eof(t0)],
            t0,
        );
        assert_eq!(out[0].due, t0);
        assert_eq!(out[1].due - t0, Duration::from_millis(300));
    }
}
