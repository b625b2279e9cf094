//! The accept loop of one proxy hop.
//!
//! It only decides admission and spawns a `link` per
//! connection; everything about forwarding happens in the link.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::handle::Shared;
use super::link;

/// How long to back off after a failed `accept`. Failures such as EMFILE
/// persist for a while; retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts until `shutdown` is cancelled, then drops the listener (closing
/// the port). Connection tasks go on `tracker` and end with their own tokens.
pub(super) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _peer)) => client,
            Err(_) => {
                // Per-connection errors (e.g. the peer reset before accept) and
                // resource exhaustion both leave the listener usable.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        match shared.admit() {
            Some(token) => {
                tracker.spawn(link::run(client, Arc::clone(&shared), token));
            }
            None => {
                shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                drop(client);
            }
        }
    }
}
