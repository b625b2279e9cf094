//! `limit_data`: once `bytes` bytes have passed in this direction (counted
//! from when the toxic became active on the connection), the connection is
//! closed. The chunk that crosses the limit is cut at it.

use super::{Cx, Payload, Piece, Toxic};

pub(super) struct LimitData {
    remaining: u64,
    /// The close has been planned; nothing after it matters.
    closed: bool,
}

impl LimitData {
    pub fn new(bytes: u64) -> LimitData {
        LimitData {
            remaining: bytes,
            closed: false,
        }
    }
}

impl Toxic for LimitData {
    fn pipe(&mut self, piece: Piece, _cx: &mut Cx<'_>, out: &mut Vec<Piece>) {
        if self.closed {
            return;
        }
        let Payload::Data(bytes) = &piece.payload else {
            return out.push(piece);
        };
        let take = usize::try_from(self.remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
        if take > 0 {
            out.push(piece.part(Payload::Data(bytes.slice(..take)), piece.due));
        }
        self.remaining -= take as u64;
        if self.remaining == 0 {
            self.closed = true;
            out.push(piece.part(Payload::Close, piece.due));
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::super::testing::{bytes_of, data, run};
    use super::*;

    #[test]
    fn the_crossing_chunk_is_cut_and_the_connection_closed() {
        let t0 = Instant::now();
        let mut toxic = LimitData::new(150);
        let out = run(
            &mut toxic,
            vec![data(100, t0), data(100, t0), data(100, t0)],
            t0,
        );
        assert_eq!(bytes_of(&out).len(), 150);
        assert_eq!(out.last().map(|p| &p.payload), Some(&Payload::Close));
        assert_eq!(out.len(), 3, "100, 50, close; nothing after");
    }

    #[test]
    fn a_zero_limit_closes_on_the_first_data() {
        let t0 = Instant::now();
        let out = run(&mut LimitData::new(0), vec![data(10, t0)], t0);
        assert_eq!(
            out.iter().map(|p| &p.payload).collect::<Vec<_>>(),
            [&Payload::Close]
        );
    }
}
