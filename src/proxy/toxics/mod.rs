//! The toxics: one file each, behind the one [`Toxic`] trait; [`build`] is
//! the registry (the one `match` from a [`ToxicKind`] to its behaviour).
//!
//! A toxic only makes plans: it turns one [`Piece`] of a direction's stream
//! into zero or more pieces, each stamped with the earliest instant it may
//! be written (`due`). The writer in `pump` does all the waiting and
//! writing, so a toxic owns no socket, timer or task, and its unit tests are
//! plain function calls. Toxics that act on their own clock (`timeout`,
//! `reset_peer`) say so through [`Toxic::deadline`].
//!
//! Adding a toxic: a file here, a variant in `spec::ToxicKind`, an arm in
//! [`build`], a test.

mod bandwidth;
mod latency;
mod limit_data;
mod reset_peer;
mod slicer;
mod slow_close;
mod timeout;

use std::time::Duration;

use bytes::Bytes;
use rand_chacha::ChaCha8Rng;
use tokio::time::Instant;

use super::spec::ToxicKind;

/// A part of one direction's stream on its way through a chain.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Piece {
    pub payload: Payload,
    /// When the reader took the bytes off the socket (kept when a piece is
    /// split): latency counts from here, as Toxiproxy's chunk timestamp.
    pub arrived: Instant,
    /// The earliest instant the writer may pass this piece on.
    pub due: Instant,
}

/// What a [`Piece`] carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Payload {
    Data(Bytes),
    /// The source reached EOF: pass on a write shutdown (a half-close).
    Eof,
    /// End the whole connection here, after everything before it was written.
    Close,
}

/// How a toxic ends a connection on its own clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Close both sides normally (FIN).
    Close,
    /// Reset both sides (TCP RST): the client socket, and the upstream
    /// socket of a TCP hop (an HTTP hop's upstream side is its HTTP layer).
    Reset,
}

/// What a toxic may use while planning.
pub(crate) struct Cx<'a> {
    /// When the writer took the piece up: pacing never runs ahead of it, so
    /// an idle stream does not build up credit for a burst.
    pub now: Instant,
    /// The direction's random stream, derived from the hop's seed.
    pub rng: &'a mut ChaCha8Rng,
}

/// The behaviour of one toxic on one direction of one connection.
pub(crate) trait Toxic: Send {
    /// Turns `piece` into zero or more pieces, pushed to `out` in order.
    fn pipe(&mut self, piece: Piece, cx: &mut Cx<'_>, out: &mut Vec<Piece>);

    /// When this toxic ends the connection by itself, whatever the data does.
    fn deadline(&self) -> Option<(Instant, Ending)> {
        None
    }

    /// Bytes passed so far, for [`Toxic::inherit`] (`limit_data` keeps it).
    fn passed(&self) -> u64 {
        0
    }

    /// Takes over the state that survives an update of the toxic's
    /// attributes from `old`, the same toxic before the update: Toxiproxy
    /// keeps a stateful toxic's state (`limit_data`'s count) and restarts
    /// the rest (a `timeout` timer, `reset_peer`'s wait for data).
    fn inherit(&mut self, _old: &dyn Toxic) {}
}

/// The registry: the behaviour of `kind`, becoming active on a connection at
/// `activated` (the origin of the `timeout` timer; `reset_peer`'s starts at
/// the first data).
pub(crate) fn build(kind: &ToxicKind, activated: Instant) -> Box<dyn Toxic> {
    match *kind {
        ToxicKind::Latency {
            latency,
            jitter,
            distribution,
        } => Box::new(latency::Latency::new(latency, jitter, distribution)),
        ToxicKind::Bandwidth { rate } => Box::new(bandwidth::Bandwidth::new(rate)),
        ToxicKind::SlowClose { delay } => Box::new(slow_close::SlowClose::new(delay)),
        ToxicKind::Timeout { timeout } => Box::new(timeout::Timeout::new(timeout, activated)),
        ToxicKind::ResetPeer { timeout } => Box::new(reset_peer::ResetPeer::new(timeout)),
        ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => Box::new(slicer::Slicer::new(average_size, size_variation, delay)),
        ToxicKind::LimitData { bytes } => Box::new(limit_data::LimitData::new(bytes)),
    }
}

/// Beyond any test or experiment; user-supplied milliseconds are capped here
/// so that `Instant + Duration` cannot overflow.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// `at + delay`, with `delay` capped at [`FOREVER`].
pub(crate) fn later(at: Instant, delay: Duration) -> Instant {
    at + delay.min(FOREVER)
}

/// `ms` milliseconds, capped at [`FOREVER`].
pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms).min(FOREVER)
}

impl Piece {
    /// Bytes read at `at`, due at once.
    pub fn data(bytes: Bytes, at: Instant) -> Piece {
        Piece {
            payload: Payload::Data(bytes),
            arrived: at,
            due: at,
        }
    }

    /// The source's EOF, seen at `at`.
    pub fn eof(at: Instant) -> Piece {
        Piece {
            payload: Payload::Eof,
            arrived: at,
            due: at,
        }
    }

    /// How many bytes of data it carries.
    pub fn data_len(&self) -> usize {
        match &self.payload {
            Payload::Data(bytes) => bytes.len(),
            Payload::Eof | Payload::Close => 0,
        }
    }

    /// A piece of the same arrival carrying `payload`, due at `due`.
    fn part(&self, payload: Payload, due: Instant) -> Piece {
        Piece {
            payload,
            arrived: self.arrived,
            due,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers for the toxics' unit tests.

    use rand::SeedableRng;

    use super::*;

    pub fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(7)
    }

    /// Pipes each piece through `toxic` with the writer's clock at `now`.
    pub fn run(toxic: &mut dyn Toxic, pieces: Vec<Piece>, now: Instant) -> Vec<Piece> {
        let mut rng = rng();
        let mut out = Vec::new();
        for piece in pieces {
            let mut cx = Cx { now, rng: &mut rng };
            toxic.pipe(piece, &mut cx, &mut out);
        }
        out
    }

    pub fn data(len: usize, at: Instant) -> Piece {
        Piece::data(
            Bytes::from((0..len).map(|i| i as u8).collect::<Vec<_>>()),
            at,
        )
    }

    pub fn bytes_of(pieces: &[Piece]) -> Vec<u8> {
        pieces
            .iter()
            .filter_map(|p| match &p.payload {
                Payload::Data(b) => Some(b.to_vec()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}
