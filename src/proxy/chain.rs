//! [`Chain`]: the toxics of one direction of one connection, in the order
//! they were added to the hop, each with its state on this connection.
//!
//! The chain follows the hop's toxic list ([`Chain::update`]) and keeps what
//! a live connection must keep across changes: the toxicity decision of each
//! toxic (drawn once, when the toxic first meets the connection) and the
//! state of the toxics that did not change (a bandwidth schedule, a
//! `limit_data` count, a `timeout` timer).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::spec::{Direction, ToxicSpec};
use super::toxics::{self, Cx, Ending, Piece, Toxic};

/// The random stream of one direction of connection number `conn` of a hop
/// seeded with `seed`: the same (seed, connection, direction) always gives
/// the same stream, whatever the other connections and direction do.
pub(super) fn connection_rng(seed: u64, conn: u64, direction: Direction) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&conn.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(match direction {
        Direction::Upstream => 0,
        Direction::Downstream => 1,
    });
    rng
}

pub(super) struct Chain {
    direction: Direction,
    rng: ChaCha8Rng,
    stages: Vec<Stage>,
}

/// One toxic on this connection.
struct Stage {
    spec: ToxicSpec,
    /// The toxicity draw: an unaffected stage passes everything through.
    affected: bool,
    toxic: Box<dyn Toxic>,
}

impl Chain {
    /// An empty chain for `direction`; toxics arrive through [`Chain::update`].
    pub fn new(direction: Direction, rng: ChaCha8Rng) -> Chain {
        Chain {
            direction,
            rng,
            stages: Vec::new(),
        }
    }

    /// Follows the hop's list (both directions; only ours are taken), with
    /// `now` as the activation time of new and changed toxics. Returns
    /// whether this direction's toxics changed.
    ///
    /// A toxic whose spec is unchanged keeps its state; a changed one is
    /// rebuilt, inherits what Toxiproxy keeps across an update (see
    /// `Toxic::inherit`), and keeps its toxicity decision if `toxicity` is
    /// unchanged.
    pub fn update(&mut self, all: &[ToxicSpec], now: Instant) -> bool {
        let wanted: Vec<&ToxicSpec> = all.iter().filter(|t| t.stream == self.direction).collect();
        let unchanged = wanted.len() == self.stages.len()
            && wanted.iter().zip(&self.stages).all(|(w, s)| **w == s.spec);
        if unchanged {
            return false;
        }
        let mut old = std::mem::take(&mut self.stages);
        for spec in wanted {
            let stage = match old.iter().position(|s| s.spec.name == spec.name) {
                Some(at) if old[at].spec == *spec => old.remove(at),
                found => {
                    let previous = found.map(|at| old.remove(at));
                    let mut toxic = toxics::build(&spec.kind, now);
                    if let Some(p) = previous
                        .as_ref()
                        .filter(|p| p.spec.kind.type_name() == spec.kind.type_name())
                    {
                        toxic.inherit(&*p.toxic);
                    }
                    let kept = previous
                        .filter(|s| s.spec.toxicity == spec.toxicity)
                        .map(|s| s.affected);
                    let affected = kept.unwrap_or_else(|| self.draw(spec.toxicity));
                    Stage {
                        spec: spec.clone(),
                        affected,
                        toxic,
                    }
                }
            };
            self.stages.push(stage);
        }
        true
    }

    /// Whether any toxic acts on this connection: if none does, the pump
    /// copies plainly.
    pub fn is_active(&self) -> bool {
        self.stages.iter().any(|s| s.affected)
    }

    /// Passes `piece` through every affected toxic in order; `now` is when
    /// the writer takes it up.
    pub fn pipe(&mut self, piece: Piece, now: Instant) -> Vec<Piece> {
        let mut pieces = vec![piece];
        for stage in self.stages.iter_mut().filter(|s| s.affected) {
            let mut next = Vec::with_capacity(pieces.len());
            for piece in pieces {
                let mut cx = Cx {
                    now,
                    rng: &mut self.rng,
                };
                stage.toxic.pipe(piece, &mut cx, &mut next);
            }
            pieces = next;
        }
        pieces
    }

    /// The earliest instant an affected toxic ends the connection, and how.
    pub fn deadline(&self) -> Option<(Instant, Ending)> {
        self.stages
            .iter()
            .filter(|s| s.affected)
            .filter_map(|s| s.toxic.deadline())
            .min_by_key(|(at, _)| *at)
    }

    /// Whether a toxic with `toxicity` acts on this connection.
    fn draw(&mut self, toxicity: f64) -> bool {
        // Certain outcomes draw nothing, so toxicity-1 toxics (the common case)
        // leave the stream to the toxics that need it.
        if toxicity >= 1.0 {
            true
        } else if toxicity <= 0.0 || toxicity.is_nan() {
            false
        } else {
            self.rng.gen_bool(toxicity)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::proxy::spec::{Distribution, ToxicKind};
    use crate::proxy::toxics::Payload;

    fn toxic(name: &str, stream: Direction, toxicity: f64, kind: ToxicKind) -> ToxicSpec {
        ToxicSpec {
            name: name.into(),
            stream,
            toxicity,
            kind,
        }
    }

    fn jittery(toxicity: f64) -> ToxicSpec {
        toxic(
            "lag",
            Direction::Downstream,
            toxicity,
            ToxicKind::Latency {
                latency: 50,
                jitter: 40,
                distribution: Distribution::Normal,
            },
        )
    }

    /// Per connection: (affected?, the due offsets of 20 chunks) under a
    /// half-toxic jittery latency.
    fn decisions(seed: u64, conns: u64) -> Vec<(bool, Vec<Duration>)> {
        let t0 = Instant::now();
        (0..conns)
            .map(|conn| {
                let rng = connection_rng(seed, conn, Direction::Downstream);
                let mut chain = Chain::new(Direction::Downstream, rng);
                chain.update(&[jittery(0.5)], t0);
                let dues = (0..20)
                    .flat_map(|_| chain.pipe(Piece::data(Bytes::from_static(b"x"), t0), t0))
                    .map(|p| p.due - t0)
                    .collect();
                (chain.is_active(), dues)
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_decisions_and_delays() {
        let a = decisions(42, 50);
        assert_eq!(a, decisions(42, 50), "same seed, same sequence");
        assert_ne!(a, decisions(43, 50), "another seed, another sequence");
        let affected = a.iter().filter(|(hit, _)| *hit).count();
        assert!(
            (10..=40).contains(&affected),
            "about half affected: {affected}/50"
        );
        let jittered = a.iter().find(|(hit, _)| *hit).map(|(_, dues)| dues.clone());
        let jittered = jittered.unwrap_or_default();
        assert!(
            jittered.windows(2).any(|w| w[0] != w[1]),
            "the delays vary: {jittered:?}"
        );
    }

    #[test]
    fn directions_and_connections_have_their_own_streams() {
        let up = connection_rng(1, 1, Direction::Upstream).gen::<u64>();
        let down = connection_rng(1, 1, Direction::Downstream).gen::<u64>();
        let other = connection_rng(1, 2, Direction::Upstream).gen::<u64>();
        assert!(up != down && up != other && down != other);
    }

    #[test]
    fn only_this_directions_toxics_are_taken_and_other_changes_are_ignored() {
        let t0 = Instant::now();
        let mut chain = Chain::new(
            Direction::Upstream,
            connection_rng(0, 0, Direction::Upstream),
        );
        let up = toxic(
            "up",
            Direction::Upstream,
            1.0,
            ToxicKind::LimitData { bytes: 10 },
        );
        let down = toxic(
            "down",
            Direction::Downstream,
            1.0,
            ToxicKind::Timeout { timeout: 0 },
        );
        assert!(
            !chain.update(std::slice::from_ref(&down), t0),
            "a downstream toxic is not ours"
        );
        assert!(!chain.is_active());
        assert!(chain.update(&[down, up.clone()], t0));
        assert!(chain.is_active());
        assert!(!chain.update(&[up], t0), "a downstream change is not ours");
    }

    #[test]
    fn an_unchanged_toxic_keeps_its_state_and_a_removed_one_is_gone() {
        let t0 = Instant::now();
        let mut chain = Chain::new(
            Direction::Upstream,
            connection_rng(0, 0, Direction::Upstream),
        );
        let limit = toxic(
            "cap",
            Direction::Upstream,
            1.0,
            ToxicKind::LimitData { bytes: 10 },
        );
        let slow = toxic(
            "slow",
            Direction::Upstream,
            1.0,
            ToxicKind::SlowClose { delay: 5 },
        );
        chain.update(std::slice::from_ref(&limit), t0);
        chain.pipe(Piece::data(Bytes::from_static(b"123456"), t0), t0);
        chain.update(&[limit, slow], t0);
        let out = chain.pipe(Piece::data(Bytes::from_static(b"abcdef"), t0), t0);
        let payloads: Vec<_> = out.into_iter().map(|p| p.payload).collect();
        assert_eq!(
            payloads,
            [Payload::Data(Bytes::from_static(b"abcd")), Payload::Close],
            "the count carried over"
        );
        chain.update(&[], t0);
        assert!(!chain.is_active());
    }

    #[test]
    fn a_toxicity_decision_lasts_for_the_connection() {
        let t0 = Instant::now();
        let mut seen = [false, false];
        for conn in 0..40 {
            let mut chain = Chain::new(
                Direction::Downstream,
                connection_rng(9, conn, Direction::Downstream),
            );
            chain.update(&[jittery(0.5)], t0);
            let first = chain.is_active();
            seen[usize::from(first)] = true;
            // Other toxics coming and going, and attribute changes, do not redraw.
            let other = toxic(
                "x",
                Direction::Downstream,
                1.0,
                ToxicKind::SlowClose { delay: 1 },
            );
            chain.update(&[jittery(0.5), other], t0);
            let mut changed = jittery(0.5);
            changed.kind = ToxicKind::Latency {
                latency: 10,
                jitter: 0,
                distribution: Distribution::Uniform,
            };
            chain.update(&[changed], t0);
            assert_eq!(chain.stages[0].affected, first, "connection {conn}");
        }
        assert_eq!(seen, [true, true], "both outcomes occur");
    }
}
