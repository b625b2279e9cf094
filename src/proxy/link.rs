//! One proxied connection: connect upstream, then forward both directions.
//!
//! Each direction is its own pump rather than one `copy_bidirectional`
//! call: Toxiproxy's toxics act per direction (latency upstream only,
//! bandwidth downstream only, ...), so the toxic chain of a direction will
//! wrap its pump; and counting bytes per chunk keeps [`super::ProxyStats`]
//! live on long keep-alive connections instead of only at close.
//!
//! The semantics match `copy_bidirectional`: EOF in one direction is passed
//! on as a write shutdown and the other direction keeps going; an error in
//! either direction, or the link's token, ends the whole connection.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::handle::Shared;

/// Per-direction buffer; large enough that bulk transfers are not syscall-bound.
const BUF_SIZE: usize = 32 * 1024;

/// Forwards `client` to the hop's upstream until either side is done or
/// `token` is cancelled (hop disabled or shutdown). Returning drops both
/// sockets, which closes them.
pub(super) async fn run(client: TcpStream, shared: Arc<Shared>, token: CancellationToken) {
    let counters = &shared.counters;
    let _active = counters.active_guard();
    let connected = tokio::select! {
        _ = token.cancelled() => return,
        connected = TcpStream::connect(shared.upstream) => connected,
    };
    let Ok(upstream) = connected else {
        // Closing the client is how a TCP hop reports an unreachable upstream.
        counters.upstream_failures.fetch_add(1, Ordering::Relaxed);
        return;
    };
    // Nagle plus delayed ACKs would add ~40 ms to small request/response
    // exchanges, a latency the hop must not invent. Failure only costs that.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);

    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let up = pump(client_read, upstream_write, &counters.bytes_upstream);
    let down = pump(upstream_read, client_write, &counters.bytes_downstream);
    tokio::select! {
        _ = token.cancelled() => {}
        // Errors end the connection; there is nobody to report them to.
        _ = async { tokio::try_join!(up, down) } => {}
    }
}

/// Copies `from` to `to` until EOF, then shuts down `to`'s write side so the
/// peer sees the half-close.
async fn pump<R, W>(mut from: R, mut to: W, bytes: &AtomicU64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}
