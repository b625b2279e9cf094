//! [`PreciseTimer`]: the clock the toxic chain's delays wait on.
//!
//! tokio's timer has millisecond ticks, rounds every deadline up to the next
//! tick and sleeps in whole milliseconds, so each delay came out 0-2 ms long
//! (a 100 ms latency toxic measured +101 ms at p50). This timer keeps the
//! pending deadlines in a heap and waits for the earliest on a condition
//! variable in its own thread, which the OS wakes within tens of
//! microseconds of the deadline; it then wakes the waiting tasks.
//!
//! One timer per hop, started on the first delayed piece (a hop without
//! toxics never starts its thread) and stopped when the hop is dropped.
//! A piece that is already due never reaches it (see `pump`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// A hop's precise timer (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct PreciseTimer {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Pending wake-ups, earliest first; `seq` keeps equal deadlines apart.
    heap: BinaryHeap<Reverse<(Instant, u64, WakerSlot)>>,
    seq: u64,
    started: bool,
    /// Set when the owning hop is dropped: the thread ends.
    closed: bool,
}

/// A waker in the heap, ordered by nothing (the deadline and `seq` decide).
#[derive(Debug)]
struct WakerSlot(Waker);

impl PartialEq for WakerSlot {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for WakerSlot {}
impl PartialOrd for WakerSlot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for WakerSlot {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

impl PreciseTimer {
    /// Resolves at `at` (at once if that has passed).
    pub fn sleep_until(&self, at: Instant) -> Sleep<'_> {
        Sleep {
            timer: self,
            at,
            registered: None,
        }
    }

    fn register(&self, at: Instant, waker: Waker) {
        let mut state = lock(&self.inner.state);
        if state.closed {
            // Nothing will run the timer any more: wake at once rather than never.
            drop(state);
            waker.wake();
            return;
        }
        let earliest = state
            .heap
            .peek()
            .is_none_or(|Reverse((first, ..))| at < *first);
        state.seq += 1;
        let seq = state.seq;
        state.heap.push(Reverse((at, seq, WakerSlot(waker))));
        if !state.started {
            state.started = true;
            let inner = Arc::clone(&self.inner);
            let spawned = std::thread::Builder::new()
                .name("faultline-toxic-timer".into())
                .spawn(move || inner.run());
            if spawned.is_err() {
                // Without a thread, wake everything now: delays shrink, nothing hangs.
                state.closed = true;
                let pending = std::mem::take(&mut state.heap);
                drop(state);
                pending
                    .into_iter()
                    .for_each(|Reverse((_, _, w))| w.0.wake());
            }
        } else if earliest {
            self.inner.changed.notify_one();
        }
    }
}

impl Drop for PreciseTimer {
    fn drop(&mut self) {
        lock(&self.inner.state).closed = true;
        self.inner.changed.notify_one();
    }
}

impl Inner {
    /// The timer thread: wake whatever is due, then wait for the next deadline.
    fn run(&self) {
        let mut due = Vec::new();
        let mut state = lock(&self.state);
        loop {
            if state.closed {
                // Whoever still waits is woken so that no task hangs.
                due.extend(std::mem::take(&mut state.heap).into_iter().map(|r| r.0 .2));
                drop(state);
                due.into_iter().for_each(|w| w.0.wake());
                return;
            }
            let now = Instant::now();
            while let Some(Reverse((at, ..))) = state.heap.peek() {
                if *at > now {
                    break;
                }
                if let Some(Reverse((_, _, waker))) = state.heap.pop() {
                    due.push(waker);
                }
            }
            if !due.is_empty() {
                drop(state);
                due.drain(..).for_each(|w| w.0.wake());
                state = lock(&self.state);
                continue;
            }
            state = match state.heap.peek() {
                Some(Reverse((at, ..))) => {
                    let wait = at.saturating_duration_since(now);
                    self.changed
                        .wait_timeout(state, wait)
                        .map(|(s, _)| s)
                        .unwrap_or_else(|e| e.into_inner().0)
                }
                None => self
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Nothing panics while holding the lock; a poisoned heap is still a heap.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The future of [`PreciseTimer::sleep_until`].
pub(crate) struct Sleep<'a> {
    timer: &'a PreciseTimer,
    at: Instant,
    /// The waker already in the heap: polling again with the same one (as
    /// `select!` does on every wake-up of the task) registers nothing new.
    registered: Option<Waker>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if Instant::now() >= this.at {
            return Poll::Ready(());
        }
        if !this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            this.timer.register(this.at, cx.waker().clone());
            this.registered = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn sleeps_end_on_time_never_early() {
        tokio::time::timeout(Duration::from_secs(5), async {
            let timer = PreciseTimer::default();
            let mut late = Vec::new();
            for _ in 0..15 {
                let at = Instant::now() + Duration::from_millis(2);
                timer.sleep_until(at).await;
                let now = Instant::now();
                assert!(now >= at, "woken {:?} early", at - now);
                late.push(now - at);
            }
            late.sort();
            // tokio's own timer is 0-2 ms late; this one typically tens of
            // microseconds. The bound leaves room for a loaded machine.
            assert!(late[late.len() / 2] < Duration::from_millis(1), "{late:?}");
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn many_concurrent_sleeps_all_end() {
        tokio::time::timeout(Duration::from_secs(5), async {
            let timer = Arc::new(PreciseTimer::default());
            let t0 = Instant::now();
            let tasks: Vec<_> = (0..200u64)
                .map(|i| {
                    let timer = Arc::clone(&timer);
                    tokio::spawn(async move {
                        let at = t0 + Duration::from_micros(i * 97 % 10_000);
                        timer.sleep_until(at).await;
                        Instant::now() >= at
                    })
                })
                .collect();
            for task in tasks {
                assert!(task.await.expect("task"), "a sleep ended early");
            }
        })
        .await
        .expect("test timed out");
    }

    #[test]
    fn a_dropped_timer_wakes_its_sleepers() {
        let timer = PreciseTimer::default();
        let inner = Arc::clone(&timer.inner);
        let woken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        struct Flag(Arc<std::sync::atomic::AtomicBool>);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let waker = Waker::from(Arc::new(Flag(Arc::clone(&woken))));
        timer.register(Instant::now() + Duration::from_secs(3600), waker);
        drop(timer);
        let t0 = Instant::now();
        while !woken.load(std::sync::atomic::Ordering::SeqCst) {
            assert!(t0.elapsed() < Duration::from_secs(5), "never woken");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(lock(&inner.state).heap.is_empty());
    }
}
