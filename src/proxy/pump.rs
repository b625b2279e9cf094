//! [`Pump`]: one direction of one connection.
//!
//! While no toxic acts on the direction it is a plain copy: read, write,
//! count, with only a watch on the toxic list beside the read. While toxics
//! act it is Toxiproxy's pipeline, run as two futures of the link's task
//! (no task of its own): a reader stamps each chunk with its arrival time
//! and queues it; a writer takes chunks through the [`Chain`], waits until
//! each resulting piece is due, and writes it.
//!
//! Changes to the toxic list reach the pump between chunks. Going from
//! plain to toxic and back never loses or reorders a byte: the reader
//! reserves queue space before it reads (so stopping it mid-read drops
//! nothing), and when the last toxic goes, what the writer held is written
//! at once (as Toxiproxy's interrupted toxics do), then what the reader had
//! queued, then the plain copy resumes.

use std::collections::VecDeque;
use std::future::pending;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep_until, Instant};

use super::chain::Chain;
use super::handle::ToxicList;
use super::stats::HeadWatch;
use super::timer::PreciseTimer;
use super::toxics::{Ending, Payload, Piece};

/// Per-direction read size; large enough that bulk transfers are not syscall-bound.
const BUF_SIZE: usize = 32 * 1024;

/// Chunks the reader may queue ahead of the writer: enough to keep a bulk
/// stream flowing under latency (up to 2 MiB in flight per direction), and
/// a bound, so a slow writer pushes back on the source.
const QUEUE_CHUNKS: usize = 64;

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PumpEnd {
    /// The source's EOF was passed on as a write shutdown; the other
    /// direction may go on.
    Finished,
    /// A toxic ends the whole connection.
    Ended(Ending),
}

/// One direction: its toxic chain and where its bytes are counted.
pub(super) struct Pump<'a> {
    toxics: watch::Receiver<ToxicList>,
    /// False once the hop's toxic list can no longer change.
    watching: bool,
    chain: Chain,
    bytes: &'a AtomicU64,
    /// The hop's clock for the delays toxics plan.
    timer: &'a PreciseTimer,
    /// Where data the chain drops is noted (an HTTP hop's client → HTTP
    /// layer direction: a dropped request is still a dependency call).
    drops: Option<(&'a HeadWatch, &'a AtomicU64)>,
}

/// What the pump does next after a stretch of plain or toxic forwarding.
type Step = io::Result<Option<PumpEnd>>;

impl<'a> Pump<'a> {
    pub fn new(
        toxics: watch::Receiver<ToxicList>,
        chain: Chain,
        bytes: &'a AtomicU64,
        timer: &'a PreciseTimer,
    ) -> Pump<'a> {
        Pump {
            toxics,
            watching: true,
            chain,
            bytes,
            timer,
            drops: None,
        }
    }

    /// Notes data the chain drops in `heads`, counting attempts in `aborted`.
    pub fn noting_drops(mut self, heads: &'a HeadWatch, aborted: &'a AtomicU64) -> Pump<'a> {
        self.drops = Some((heads, aborted));
        self
    }

    /// Forwards `from` to `to` until the source's EOF has been passed on, a
    /// toxic ends the connection, or an I/O error.
    pub async fn run<R, W>(mut self, mut from: R, mut to: W) -> io::Result<PumpEnd>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = vec![0u8; BUF_SIZE];
        loop {
            let list = ToxicList::clone(&self.toxics.borrow_and_update());
            self.chain.update(&list, Instant::now());
            let step = if self.chain.is_active() {
                self.through_chain(&mut from, &mut to).await
            } else {
                self.copy(&mut from, &mut to, &mut buf).await
            };
            if let Some(end) = step? {
                return Ok(end);
            }
        }
    }

    /// The plain copy, until EOF or a change to the toxic list.
    async fn copy<R, W>(&mut self, from: &mut R, to: &mut W, buf: &mut [u8]) -> Step
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let bytes = self.bytes;
        let list_changed = changed(&mut self.toxics, &mut self.watching);
        tokio::pin!(list_changed);
        loop {
            let n = tokio::select! {
                biased;
                () = &mut list_changed => return Ok(None),
                n = from.read(buf) => n?,
            };
            if n == 0 {
                to.shutdown().await?;
                return Ok(Some(PumpEnd::Finished));
            }
            // Counted before the write: once the peer can see the bytes, the
            // stats must already include them.
            bytes.fetch_add(n as u64, Ordering::Relaxed);
            to.write_all(&buf[..n]).await?;
        }
    }

    /// The reader → chain → writer pipeline, until the end of the direction
    /// or until no toxic acts any more.
    async fn through_chain<R, W>(&mut self, from: &mut R, to: &mut W) -> Step
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let (queue, mut queued) = mpsc::channel(QUEUE_CHUNKS);
        let outcome = {
            let reader = read_stamped(from, &queue);
            let writer = self.write_through(to, &mut queued);
            tokio::pin!(reader, writer);
            let mut reading = true;
            loop {
                tokio::select! {
                    outcome = &mut writer => break outcome?,
                    read = &mut reader, if reading => {
                        read?;
                        reading = false;
                    }
                }
            }
        };
        if outcome.is_some() {
            return Ok(outcome);
        }
        // The chain went quiet: what the reader had queued goes out as it is.
        while let Ok(piece) = queued.try_recv() {
            if let Some(end) = deliver(to, piece, self.bytes).await? {
                return Ok(Some(end));
            }
        }
        Ok(None)
    }

    /// The writer half of the pipeline.
    ///
    /// The watch on the toxic list lives across chunks (one waiter
    /// registration per list version, not one per chunk). A piece that is
    /// already due is written without a timer, and a later one waits on the
    /// hop's [`PreciseTimer`]: tokio's timer would make every delay 0-2 ms
    /// longer than planned (a 0 ms latency toxic cost over a millisecond).
    async fn write_through<W>(&mut self, to: &mut W, queued: &mut mpsc::Receiver<Piece>) -> Step
    where
        W: AsyncWrite + Unpin,
    {
        // What the chain made of the current chunk, waiting to be due.
        let mut planned: VecDeque<Piece> = VecDeque::new();
        loop {
            {
                let list_changed = changed(&mut self.toxics, &mut self.watching);
                tokio::pin!(list_changed);
                loop {
                    let deadline = self.chain.deadline();
                    let next_due = planned.front().map(|p| p.due);
                    tokio::select! {
                        biased;
                        ending = until(deadline) => return Ok(Some(PumpEnd::Ended(ending))),
                        () = &mut list_changed => break,
                        () = due(next_due, self.timer), if next_due.is_some() => {
                            let Some(piece) = planned.pop_front() else { continue };
                            // A write the peer does not drain must not hold off a reset.
                            let end = tokio::select! {
                                end = deliver(to, piece, self.bytes) => end?,
                                ending = until(deadline) => Some(PumpEnd::Ended(ending)),
                            };
                            if end.is_some() {
                                return Ok(end);
                            }
                        }
                        piece = queued.recv(), if planned.is_empty() => {
                            // The reader's sender lives as long as this future.
                            let Some(piece) = piece else { return Ok(Some(PumpEnd::Finished)) };
                            let offered = piece.data_len();
                            planned.extend(self.chain.pipe(piece, Instant::now()));
                            if let Some((heads, aborted)) = self.drops {
                                // `planned` was empty: all it holds came of this piece.
                                if planned.iter().map(Piece::data_len).sum::<usize>() < offered {
                                    heads.dropped(aborted);
                                }
                            }
                        }
                    }
                }
            }
            let list = ToxicList::clone(&self.toxics.borrow_and_update());
            let now = Instant::now();
            if !self.chain.update(&list, now) {
                continue;
            }
            // Like Toxiproxy's interrupted toxics: what is in flight
            // goes on without the rest of its delay.
            for piece in &mut planned {
                piece.due = now;
            }
            if !self.chain.is_active() {
                while let Some(piece) = planned.pop_front() {
                    if let Some(end) = deliver(to, piece, self.bytes).await? {
                        return Ok(Some(end));
                    }
                }
                return Ok(None);
            }
        }
    }
}

/// The reader half of the pipeline: stamps and queues chunks until EOF
/// (queued too) or an error. Cancel-safe between chunks: queue space is
/// reserved before reading, so dropping it loses no byte.
async fn read_stamped<R>(from: &mut R, queue: &mpsc::Sender<Piece>) -> io::Result<()>
where
    R: AsyncRead + Unpin,
{
    // One buffer for the connection's life; each chunk is copied out at its
    // own size, so a 200-byte response costs a 200-byte allocation, not a
    // fresh 32 KiB one.
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let Ok(slot) = queue.reserve().await else {
            return Ok(());
        };
        let n = from.read(&mut buf).await?;
        let now = Instant::now();
        if n == 0 {
            slot.send(Piece::eof(now));
            return Ok(());
        }
        slot.send(Piece::data(Bytes::copy_from_slice(&buf[..n]), now));
    }
}

/// Writes one due piece: data is written and counted, EOF becomes a write
/// shutdown, a close ends the connection.
async fn deliver<W>(to: &mut W, piece: Piece, bytes: &AtomicU64) -> Step
where
    W: AsyncWrite + Unpin,
{
    match piece.payload {
        Payload::Data(data) => {
            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            to.write_all(&data).await?;
            Ok(None)
        }
        Payload::Eof => {
            to.shutdown().await?;
            Ok(Some(PumpEnd::Finished))
        }
        Payload::Close => Ok(Some(PumpEnd::Ended(Ending::Close))),
    }
}

/// Resolves when the toxic list changes; never once it cannot change any
/// more (the hop's handle is gone, which a link never outlives in practice).
async fn changed(toxics: &mut watch::Receiver<ToxicList>, watching: &mut bool) {
    if *watching && toxics.changed().await.is_ok() {
        return;
    }
    *watching = false;
    pending().await
}

/// Resolves when a piece due at `at` may be written: at once if that is now
/// or past (no timer, see [`Pump::write_through`]), else at `at` on `timer`.
async fn due(at: Option<Instant>, timer: &PreciseTimer) {
    match at {
        Some(at) if at > Instant::now() => timer.sleep_until(at.into_std()).await,
        Some(_) => {}
        None => pending().await,
    }
}

/// Resolves with the ending at the deadline (at once if it has passed: a
/// tokio sleep would wait for the next millisecond tick, and a piece due now
/// must not slip out before a `reset_peer` of 0 ms); never without one.
async fn until(deadline: Option<(Instant, Ending)>) -> Ending {
    match deadline {
        Some((at, ending)) => {
            if at > Instant::now() {
                sleep_until(at).await;
            }
            ending
        }
        None => pending().await,
    }
}

#[cfg(test)]
mod tests {
    //! Real time (the crate does not enable tokio's `test-util`), so every
    //! timing has an explicit tolerance; in-memory pipes keep it tight.

    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{duplex, DuplexStream};

    use super::*;
    use crate::proxy::chain::connection_rng;
    use crate::proxy::spec::{Direction, Distribution, ToxicKind, ToxicSpec};

    /// Scheduling slack allowed on top of any planned delay.
    const SLACK: Duration = Duration::from_millis(30);

    fn latency(ms: u64) -> ToxicSpec {
        ToxicSpec {
            name: "lag".into(),
            stream: Direction::Downstream,
            toxicity: 1.0,
            kind: ToxicKind::Latency {
                latency: ms,
                jitter: 0,
                distribution: Distribution::Uniform,
            },
        }
    }

    /// A downstream pump from a source pipe to a sink pipe, under `toxics`.
    /// Returns the source's writing end, the sink's reading end and the
    /// list's sender; the pump runs on a task until the source closes.
    fn pump_between(
        toxics: Vec<ToxicSpec>,
    ) -> (DuplexStream, DuplexStream, watch::Sender<ToxicList>) {
        let (list, watched) = watch::channel(Arc::new(toxics));
        let (source, from) = duplex(1 << 20);
        let (to, sink) = duplex(1 << 20);
        tokio::spawn(async move {
            let bytes = AtomicU64::new(0);
            let rng = connection_rng(1, 0, Direction::Downstream);
            let chain = Chain::new(Direction::Downstream, rng);
            let timer = PreciseTimer::default();
            Pump::new(watched, chain, &bytes, &timer)
                .run(from, to)
                .await
        });
        (source, sink, list)
    }

    /// Reads `n` bytes, returning (value, elapsed since `t0`) for each.
    async fn arrivals(sink: &mut DuplexStream, n: usize, t0: Instant) -> Vec<(u8, Duration)> {
        let mut got = Vec::new();
        while got.len() < n {
            let mut buf = [0u8; 64];
            let read = sink.read(&mut buf).await.expect("read");
            assert!(read > 0, "sink closed early after {got:?}");
            got.extend(buf[..read].iter().map(|b| (*b, t0.elapsed())));
        }
        got
    }

    fn within(at: Duration, want: Duration) -> bool {
        at >= want && at <= want + SLACK
    }

    #[tokio::test]
    async fn latency_delays_each_chunk_from_its_own_arrival() {
        tokio::time::timeout(Duration::from_secs(5), async {
            let (mut source, mut sink, _list) = pump_between(vec![latency(100)]);
            let t0 = Instant::now();
            let writer = tokio::spawn(async move {
                let mut sent = Vec::new();
                for i in 0..10u8 {
                    sent.push(t0.elapsed());
                    source.write_all(&[i]).await.expect("write");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                (source, sent)
            });
            let got = arrivals(&mut sink, 10, t0).await;
            let (_source, sent) = writer.await.expect("writer");
            let values: Vec<u8> = got.iter().map(|(b, _)| *b).collect();
            assert_eq!(values, (0..10).collect::<Vec<u8>>());
            for ((_, at), sent) in got.iter().zip(&sent) {
                assert!(
                    within(*at - *sent, Duration::from_millis(100)),
                    "each byte 100 ms (+{SLACK:?}) after it was sent: sent {sent:?}, got {at:?}"
                );
            }
            // Pipelined: ten chunks within ~200 ms, not one per 100 ms.
            assert!(got[9].1 < Duration::from_millis(400), "{got:?}");
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn removing_the_last_toxic_flushes_in_order_and_copies_plainly_again() {
        tokio::time::timeout(Duration::from_secs(5), async {
            let (mut source, mut sink, list) = pump_between(vec![latency(2000)]);
            let t0 = Instant::now();
            source.write_all(b"ab").await.expect("write");
            tokio::time::sleep(Duration::from_millis(5)).await;
            source.write_all(b"cd").await.expect("write");
            tokio::time::sleep(Duration::from_millis(100)).await;
            list.send_replace(Arc::new(Vec::new()));
            source.write_all(b"ef").await.expect("write");
            let got = arrivals(&mut sink, 6, t0).await;
            let bytes: Vec<u8> = got.iter().map(|(b, _)| *b).collect();
            assert_eq!(bytes, b"abcdef", "no byte lost or reordered");
            assert!(
                got.iter()
                    .all(|(_, at)| within(*at, Duration::from_millis(105))),
                "held bytes went at the removal, not after 2 s: {got:?}"
            );

            list.send_replace(Arc::new(vec![latency(50)]));
            tokio::time::sleep(Duration::from_millis(5)).await;
            let t1 = Instant::now();
            source.write_all(b"g").await.expect("write");
            let got = arrivals(&mut sink, 1, t1).await;
            assert_eq!(got[0].0, b'g');
            assert!(
                within(got[0].1, Duration::from_millis(50)),
                "added again on the live pump: {got:?}"
            );
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn eof_is_passed_on_after_the_delayed_data() {
        tokio::time::timeout(Duration::from_secs(5), async {
            let (mut source, mut sink, _list) = pump_between(vec![latency(100)]);
            let t0 = Instant::now();
            source.write_all(b"xyz").await.expect("write");
            source.shutdown().await.expect("shutdown");
            let mut all = Vec::new();
            sink.read_to_end(&mut all).await.expect("read to end");
            assert_eq!(all, b"xyz");
            assert!(
                within(t0.elapsed(), Duration::from_millis(100)),
                "{:?}",
                t0.elapsed()
            );
        })
        .await
        .expect("test timed out");
    }
}
