//! `limit_data`: once `bytes` bytes have passed in this direction (counted
//! from when the toxic became active on the connection), the connection is
//! closed. The chunk that crosses the limit is cut at it. As in Toxiproxy,
//! the count survives an update of `bytes` (see [`Toxic::inherit`]).

use super::{Cx, Payload, Piece, Toxic};

pub(super) struct LimitData {
    limit: u64,
    passed: u64,
    /// The close has been planned; nothing after it matters.
    closed: bool,
}

impl LimitData {
    pub fn new(bytes: u64) -> LimitData {
        LimitData {
            limit: bytes,
            passed: 0,
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
        let remaining = self.limit.saturating_sub(self.passed);
        let take = usize::try_from(remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
        if take > 0 {
            out.push(piece.part(Payload::Data(bytes.slice(..take)), piece.due));
        }
        self.passed += take as u64;
        if self.passed >= self.limit {
            self.closed = true;
            out.push(piece.part(Payload::Close, piece.due));
        }
    }

    fn passed(&self) -> u64 {
        self.passed
    }

    fn inherit(&mut self, old: &dyn Toxic) {
        self.passed = old.passed();
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
    fn an_updated_limit_counts_what_already_passed() {
        let t0 = Instant::now();
        let mut old = LimitData::new(100);
        run(&mut old, vec![data(60, t0)], t0);
        let mut raised = LimitData::new(80);
        raised.inherit(&old);
        let out = run(&mut raised, vec![data(50, t0)], t0);
        assert_eq!(bytes_of(&out).len(), 20, "80 - 60 already passed");
        assert_eq!(out.last().map(|p| &p.payload), Some(&Payload::Close));
        let mut lowered = LimitData::new(50);
        lowered.inherit(&old);
        let out = run(&mut lowered, vec![data(5, t0)], t0);
        assert_eq!(
            out.iter().map(|p| &p.payload).collect::<Vec<_>>(),
            [&Payload::Close],
            "already past the new limit: closed on the next data"
        );
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
