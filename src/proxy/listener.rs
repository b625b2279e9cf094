//! The accept loop of one proxy hop.
//!
//! It only decides admission and spawns a `link` per connection (numbered,
//! for the connection's random streams) on one of the `cores` threads;
//! everything about forwarding happens in the link. It accepts from the
//! socket the hop's gate holds, so it simply waits while the hop is down
//! (the port closed). On shutdown it is also what waits for the links and
//! then closes the HTTP layer's upstream pool.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::cores;
use super::handle::Shared;
use super::link;

/// How long to back off after a failed `accept`. Failures such as EMFILE
/// persist for a while; retrying at once would spin a core.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Accepts until `shutdown` is cancelled, then closes the port. Connection
/// tasks go on `tracker` and end with their own tokens.
///
/// After the port is closed, this task waits for the hop's connections to
/// end and then closes the HTTP layer's pooled upstream connections, so the
/// hop has stopped (its tracker is empty) only once those are gone too.
pub(super) async fn run(shared: Arc<Shared>, shutdown: CancellationToken, tracker: TaskTracker) {
    // This hop's own links, within the caller's tracker.
    let links = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = std::future::poll_fn(|cx| shared.poll_accept(cx)) => accepted,
        };
        let client = match accepted {
            Ok(client) => client,
            Err(_) => {
                // Per-connection errors (e.g. the peer reset before accept) and
                // resource exhaustion both leave the listener usable.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        // The connection number seeds the connection's random streams, so it
        // counts every accepted connection, as `accepted` does.
        let conn = shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        match shared.admit() {
            Some(token) => {
                let shared = Arc::clone(&shared);
                // Counts the link in `links` from now, not from when its thread starts it.
                let counted = links.token();
                cores::spawn_link(client, &tracker, move |client| async move {
                    let _counted = counted;
                    link::run(client, shared, token, conn).await;
                });
            }
            None => {
                shared.counters.refused.fetch_add(1, Ordering::Relaxed);
                drop(client);
            }
        }
    }
    shared.close();
    links.close();
    links.wait().await;
    shared.http.shutdown().await;
}
