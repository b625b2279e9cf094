//! One proxied connection: reach the server side, then forward both
//! directions, each through its own [`Pump`] and toxic chain.
//!
//! The server side is the upstream socket in TCP mode. In HTTP mode it is
//! one end of an in-memory duplex whose other end the HTTP layer serves, so
//! TCP toxics act on the client-facing bytes of HTTP hops too, and
//! `reset_peer` resets the real client socket.
//!
//! In HTTP mode the client → HTTP layer pump notes data a toxic drops, so a
//! request killed before its head reached the HTTP layer is still counted as
//! a call (see `stats::HeadWatch`).
//!
//! Both pumps and (in HTTP mode) the HTTP server of the connection run in
//! the link's one task. The semantics match `copy_bidirectional`: EOF in one
//! direction is passed on as a write shutdown and the other direction keeps
//! going; an error in either direction, a toxic ending the connection, or
//! the link's token ends the whole connection.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::chain::{connection_rng, Chain};
use super::handle::{ProxyMode, Shared};
use super::pump::{Pump, PumpEnd};
use super::spec::Direction;
use super::stats::HeadWatch;
use super::toxics::Ending;

/// The in-memory pipe between the toxic chain and the HTTP layer: as large
/// as a socket buffer, so the extra hop does not throttle bulk bodies.
const HTTP_PIPE_SIZE: usize = 64 * 1024;

/// Forwards `client`, connection number `conn` of the hop, until either side
/// is done or `token` is cancelled (hop disabled or shutdown). Returning
/// drops both sides, which closes them.
pub(super) async fn run(
    client: TcpStream,
    shared: Arc<Shared>,
    token: CancellationToken,
    conn: u64,
) {
    let _active = shared.counters.active_guard();
    // Nagle plus delayed ACKs would add ~40 ms to small request/response
    // exchanges, a latency the hop must not invent. Failure only costs that.
    let _ = client.set_nodelay(true);
    match shared.mode {
        ProxyMode::Tcp => {
            let connected = tokio::select! {
                _ = token.cancelled() => return,
                connected = TcpStream::connect(shared.upstream) => connected,
            };
            let Ok(mut upstream) = connected else {
                // Closing the client is how a TCP hop reports an unreachable upstream.
                shared
                    .counters
                    .upstream_failures
                    .fetch_add(1, Ordering::Relaxed);
                return;
            };
            let _ = upstream.set_nodelay(true);
            let ending = forward(client, &mut upstream, &shared, conn, &token, None).await;
            if ending == Some(Ending::Reset) {
                // Toxiproxy resets both sockets of the connection.
                let _ = upstream.set_zero_linger();
            }
        }
        ProxyMode::Http => {
            let (ours, theirs) = tokio::io::duplex(HTTP_PIPE_SIZE);
            let heads = Arc::new(HeadWatch::default());
            // Once the client side is gone nobody can receive an answer, so
            // the HTTP layer is told to stop too.
            let serving = token.child_token();
            let serve = super::http::serve_connection(
                theirs,
                Arc::clone(&shared),
                Arc::clone(&heads),
                serving.clone(),
            );
            let relay = async {
                forward(client, ours, &shared, conn, &token, Some(&heads)).await;
                serving.cancel();
            };
            tokio::join!(relay, serve);
        }
    }
}

/// Runs both pumps between `client` and `server`; on a `reset_peer` ending,
/// resets `client` (RST) instead of closing it, and returns the ending so
/// the caller can reset its side too. `heads` is an HTTP connection's (its
/// client → HTTP layer pump notes dropped data there).
async fn forward<S>(
    mut client: TcpStream,
    server: S,
    shared: &Shared,
    conn: u64,
    token: &CancellationToken,
    heads: Option<&HeadWatch>,
) -> Option<Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ending = {
        // Borrowed halves: unlike owned ones they send no FIN when dropped,
        // which would beat the RST of a reset.
        let (client_read, client_write) = client.split();
        let (server_read, server_write) = tokio::io::split(server);
        let counters = &shared.counters;
        let pump = |direction, bytes| {
            let chain = Chain::new(direction, connection_rng(shared.seed, conn, direction));
            Pump::new(shared.toxics.subscribe(), chain, bytes, &shared.timer)
        };
        let mut up = pump(Direction::Upstream, &counters.bytes_upstream);
        if let Some(heads) = heads {
            up = up.noting_drops(heads, &counters.aborted_before_head);
        }
        let up = up.run(client_read, server_write);
        let down =
            pump(Direction::Downstream, &counters.bytes_downstream).run(server_read, client_write);
        tokio::select! {
            _ = token.cancelled() => None,
            ending = both(up, down) => ending,
        }
    };
    if ending == Some(Ending::Reset) {
        // With a zero linger, closing sends an RST and discards unsent data.
        let _ = client.set_zero_linger();
    }
    ending
}

/// Waits for both directions to finish, or for the first one that ends the
/// connection (a toxic's ending) or fails (`None`: there is nobody to report
/// an I/O error to, and closing is all a hop can do about it).
async fn both(
    up: impl std::future::Future<Output = std::io::Result<PumpEnd>>,
    down: impl std::future::Future<Output = std::io::Result<PumpEnd>>,
) -> Option<Ending> {
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        let end = tokio::select! {
            end = &mut up, if !up_done => { up_done = true; end }
            end = &mut down, if !down_done => { down_done = true; end }
        };
        match end {
            Ok(PumpEnd::Finished) => {}
            Ok(PumpEnd::Ended(ending)) => return Some(ending),
            Err(_) => return None,
        }
    }
    None
}
