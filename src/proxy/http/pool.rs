//! The pooled HTTP client to the upstream, with tracked connection tasks.
//!
//! hyper's client runs every upstream connection as a task of its own,
//! spawned through an executor. With `TokioExecutor` those tasks would be
//! invisible to the hop's shutdown (an idle pooled connection lives for the
//! pool's idle timeout); [`TrackedExecutor`] puts them on a tracker and
//! under a token instead, so [`Pool::shutdown`] can end them and wait.

use std::future::Future;

use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioTimer;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The client type: request bodies are streamed through from the client side.
pub(super) type UpstreamClient = Client<HttpConnector, Incoming>;

/// The client and the tasks of its upstream connections.
#[derive(Debug)]
pub(super) struct Pool {
    pub(super) client: UpstreamClient,
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl Pool {
    /// An empty pool; needs no runtime until the first request.
    pub(super) fn new() -> Pool {
        let tasks = TaskTracker::new();
        let stop = CancellationToken::new();
        let mut connector = HttpConnector::new();
        // Nagle plus delayed ACKs would add ~40 ms to small exchanges.
        connector.set_nodelay(true);
        let client = Client::builder(TrackedExecutor {
            tasks: tasks.clone(),
            stop: stop.clone(),
        })
        // The pool's idle timeout needs a timer to take effect.
        .pool_timer(TokioTimer::new())
        .build(connector);
        Pool {
            client,
            tasks,
            stop,
        }
    }

    /// Closes every upstream connection and waits until their tasks have
    /// finished. Requests still in flight fail (and are answered 502).
    pub(super) async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Without this, idle connections would outlive the hop that pooled them.
        self.stop.cancel();
    }
}

/// Spawns the client's connection tasks on `tasks`, each ending when `stop`
/// is cancelled.
#[derive(Debug, Clone)]
struct TrackedExecutor {
    tasks: TaskTracker,
    stop: CancellationToken,
}

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = fut => {}
            }
        });
    }
}
