//! The threads links run on: one single-threaded tokio runtime per core.
//!
//! Forwarding a request costs a hop a few syscalls; on a small machine what
//! decides its throughput beyond that is how often its threads park and wake
//! each other. On tokio's work-stealing runtime a socket event may wake
//! whichever worker is parked and tasks move between threads. Here each
//! connection stays on one thread for its whole life, with its own epoll, as
//! each nginx worker process runs its own event loop: the accept loop (on the
//! caller's runtime) hands connections out round-robin.
//!
//! The threads start on first use and live as long as the process (a runtime
//! cannot be dropped from async code); idle, they sleep in `epoll_wait`.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(test))]
use std::sync::OnceLock;

use tokio::net::TcpStream;
use tokio::runtime::{Builder, Handle};
use tokio_util::task::TaskTracker;

/// The link runtimes, one per core.
struct Cores {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl Cores {
    fn start() -> Option<Cores> {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = Builder::new_current_thread().enable_all().build().ok()?;
            handles.push(runtime.handle().clone());
            std::thread::Builder::new()
                .name(format!("faultline-link-{i}"))
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .ok()?;
        }
        Some(Cores {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

#[cfg(not(test))]
fn cores() -> Option<&'static Cores> {
    static CORES: OnceLock<Option<Cores>> = OnceLock::new();
    CORES.get_or_init(Cores::start).as_ref()
}

/// In unit tests each test thread has link threads of its own, so a test
/// that counts a link's tasks is not disturbed by the tests beside it.
#[cfg(test)]
fn cores() -> Option<&'static Cores> {
    thread_local! {
        static CORES: &'static Option<Cores> = Box::leak(Box::new(Cores::start()));
    }
    CORES.with(|c| c.as_ref())
}

/// Runs `link(client)` on the next link thread, tracked by `tracker`. The
/// socket moves to that thread's reactor, so its events never wake another
/// thread. Without link threads (they could not be started), it runs on the
/// caller's runtime.
pub(super) fn spawn_link<F, Fut>(client: TcpStream, tracker: &TaskTracker, link: F)
where
    F: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(cores) = cores() else {
        tracker.spawn(async move { link(client).await });
        return;
    };
    // Deregisters from this runtime's reactor; the socket stays non-blocking.
    let Ok(socket) = client.into_std() else {
        // The socket is gone with the error: the client sees it closed.
        return;
    };
    cores.next().spawn(tracker.track_future(async move {
        if let Ok(client) = TcpStream::from_std(socket) {
            link(client).await;
        }
    }));
}

/// Tasks alive on the link threads (for tests that count a link's tasks).
#[cfg(test)]
pub(super) fn alive_tasks() -> usize {
    cores().map_or(0, |c| {
        c.handles
            .iter()
            .map(|h| h.metrics().num_alive_tasks())
            .sum()
    })
}
