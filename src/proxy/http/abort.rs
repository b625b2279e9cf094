//! Closing a client connection part-way through a response (`abort mid_body`).
//!
//! hyper buffers what it writes and flushes between polls of the response
//! body; if the body fails, hyper drops the connection *without* flushing
//! what it buffered, so a body that yields half its bytes and then an error
//! would often deliver nothing at all. [`Flushes`] makes the cut exact
//! instead of timing-based: [`FlushWatch`] wraps the connection's IO and
//! counts completed flushes (hyper calls the IO's flush only once its own
//! buffer has been written out), and [`CutBody`] yields its part of the
//! body, waits for the next completed flush, and only then fails.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Completed flushes of one connection, and the body waiting for the next.
#[derive(Debug, Default)]
pub(super) struct Flushes {
    count: AtomicU64,
    /// HTTP/1 sends one response at a time, so one waiter is enough.
    waiter: Mutex<Option<Waker>>,
}

impl Flushes {
    fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }

    fn completed(&self) {
        self.count.fetch_add(1, Ordering::Release);
        if let Some(waker) = self.waiter().take() {
            waker.wake();
        }
    }

    fn wait(&self, waker: &Waker) {
        *self.waiter() = Some(waker.clone());
    }

    fn waiter(&self) -> std::sync::MutexGuard<'_, Option<Waker>> {
        // Only a waker lives under the lock; a poisoned one is still usable.
        self.waiter.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The connection's IO, counting completed flushes into [`Flushes`].
#[derive(Debug)]
pub(super) struct FlushWatch<IO> {
    io: IO,
    flushes: Arc<Flushes>,
}

impl<IO> FlushWatch<IO> {
    pub(super) fn new(io: IO, flushes: Arc<Flushes>) -> FlushWatch<IO> {
        FlushWatch { io, flushes }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FlushWatch<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FlushWatch<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            self.flushes.completed();
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Why a [`CutBody`] ends: hyper then closes the client connection.
#[derive(Debug, thiserror::Error)]
#[error("response aborted mid-body by an injected fault")]
pub(super) struct AbortedMidBody;

/// A response body that delivers `part` and then breaks the connection.
///
/// Its size is not exact, so hyper frames the response by the
/// `Content-Length` header the caller sets (the *full* length): the client
/// sees a valid head and a body that stops short.
#[derive(Debug)]
pub(super) struct CutBody {
    part: Option<Bytes>,
    flushes: Arc<Flushes>,
    /// The flush count when `part` went into hyper's buffer (or, with an
    /// empty part, when the head did).
    sent_at: Option<u64>,
}

impl CutBody {
    pub(super) fn new(part: Bytes, flushes: Arc<Flushes>) -> CutBody {
        CutBody {
            part: (!part.is_empty()).then_some(part),
            flushes,
            sent_at: None,
        }
    }
}

impl Body for CutBody {
    type Data = Bytes;
    type Error = AbortedMidBody;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, AbortedMidBody>>> {
        let this = self.get_mut();
        // hyper buffers a frame synchronously when it gets it, so the count
        // read here predates the flush that will carry the frame.
        let sent_at = *this.sent_at.get_or_insert_with(|| this.flushes.count());
        if let Some(part) = this.part.take() {
            return Poll::Ready(Some(Ok(Frame::data(part))));
        }
        if this.flushes.count() > sent_at {
            return Poll::Ready(Some(Err(AbortedMidBody)));
        }
        this.flushes.wait(cx.waker());
        // A flush may have completed between the check and the registration.
        if this.flushes.count() > sent_at {
            return Poll::Ready(Some(Err(AbortedMidBody)));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
