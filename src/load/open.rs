//! The open model: requests arrive on a schedule, whatever the target does.
//!
//! **Workers pull.** Each worker owns one keep-alive connection; whenever it
//! is free it claims the next request of the schedule that is due (one atomic
//! compare-and-swap) and sends it. While requests come due faster than
//! workers finish, nobody sleeps and nothing crosses a thread: at high rates
//! the open model costs what the closed model costs.
//!
//! **A timekeeper wakes them.** A worker with nothing due parks. The
//! timekeeper thread sleeps until the next arrival and wakes one parked worker
//! per due request, or starts a new worker while fewer than `max_in_flight`
//! run. It is a thread and not a tokio task because tokio's millisecond timer
//! wakes 0-2 ms after a deadline, and that lateness would be added to every
//! latency measured from the intended time.
//!
//! **Nothing is hidden.** Latency is measured from the *intended* time, so
//! when the target stalls, requests that wait for a worker carry the stall in
//! their latency (coordinated omission, as wrk2 corrects it). Requests that
//! came due but were never claimed before the load stopped are reported as
//! `unsent`.

use super::conn::Conn;
use super::generator::Sender;
use super::mix::Mix;
use super::schedule::Schedule;
use crate::metrics::Event;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The value of [`Shared::next`] once the load has stopped: no more claims.
const CLOSED: u64 = u64::MAX;

/// Unsent requests are reported in at most this many events.
const UNSENT_BUCKETS: u32 = 1000;

/// How often a sleeping timekeeper looks at the stop token.
const STOP_POLL: Duration = Duration::from_millis(10);

/// How long the end of the load waits for woken workers to claim the
/// requests they were woken for.
const CLOSE_GRACE: Duration = Duration::from_millis(50);

/// What the open loop needs from the generator.
pub(super) struct OpenLoop {
    pub sender: Sender,
    pub mix: Mix,
    pub schedule: Schedule,
    pub max_in_flight: usize,
    pub t0: Instant,
    pub deadline: Instant,
    pub seed: u64,
    pub stop: CancellationToken,
    pub events: mpsc::UnboundedSender<Event>,
    pub tracker: TaskTracker,
}

impl OpenLoop {
    /// Runs the schedule to the deadline (or until stopped); returns how many
    /// requests came due but were never sent. Workers still in flight are left
    /// to the tracker.
    pub async fn run(self) -> u64 {
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || Timekeeper::new(self, runtime).run())
            .await
            .unwrap_or(0)
    }
}

/// What workers and the timekeeper share.
struct Shared {
    schedule: Schedule,
    t0: Instant,
    deadline: Instant,
    /// Index of the next request to claim; [`CLOSED`] once the load stopped.
    next: AtomicU64,
    /// Parked workers. Workers park and the timekeeper looks for them under
    /// this lock, with the clock read inside it, so a request that comes due
    /// is either seen by the parking worker or finds it parked.
    idle: Mutex<Idle>,
    /// Where a timekeeper with nothing to do waits for the first worker to park.
    parked: Condvar,
    /// Workers woken (or started) that have not yet tried to claim: each of
    /// them will take a due request, so the timekeeper does not wake another.
    woken: AtomicU64,
}

/// The parked workers, and whether the timekeeper waits for one.
#[derive(Default)]
struct Idle {
    bells: Vec<Arc<Bell>>,
    /// Every worker was busy with requests due: the timekeeper waits on
    /// [`Shared::parked`] instead of waking at every arrival.
    timekeeper_waiting: bool,
}

/// How the timekeeper wakes one parked worker.
#[derive(Default)]
struct Bell {
    notify: Notify,
    /// Set by the timekeeper when it rings, so the worker knows the wake-up
    /// counted in [`Shared::woken`] (a stale permit of `Notify` does not).
    rung: AtomicBool,
}

/// The outcome of looking at the next request.
#[derive(Debug, PartialEq, Eq)]
enum Claim {
    /// Claimed: send it, measured from its intended time.
    Due(Instant),
    /// Nothing due yet.
    NotYet,
    /// The load stopped or the schedule ended.
    Over,
}

impl Shared {
    fn new(schedule: Schedule, t0: Instant, deadline: Instant) -> Shared {
        Shared {
            schedule,
            t0,
            deadline,
            next: AtomicU64::new(0),
            idle: Mutex::new(Idle::default()),
            parked: Condvar::new(),
            woken: AtomicU64::new(0),
        }
    }

    /// When request `i` is due; `None` if not before the deadline.
    fn intended(&self, i: u64) -> Option<Instant> {
        let at = self.t0 + self.schedule.offset(i)?;
        (at < self.deadline).then_some(at)
    }

    /// Claims the next request if it is due at `now`.
    fn claim(&self, now: Instant) -> Claim {
        let mut i = self.next.load(Ordering::Acquire);
        loop {
            if i == CLOSED {
                return Claim::Over;
            }
            let Some(intended) = self.intended(i) else {
                return Claim::Over;
            };
            if intended > now {
                return Claim::NotYet;
            }
            match self
                .next
                .compare_exchange_weak(i, i + 1, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Claim::Due(intended),
                Err(current) => i = current,
            }
        }
    }

    /// Whether the next request is due (or the load over) at `now`.
    fn has_work(&self, now: Instant) -> bool {
        let i = self.next.load(Ordering::Acquire);
        i == CLOSED || self.intended(i).is_none_or(|at| at <= now)
    }

    /// Parks `bell` unless something is due: false means claim again.
    fn park(&self, bell: &Arc<Bell>) -> bool {
        let mut idle = self.lock_idle();
        if self.has_work(Instant::now()) {
            return false;
        }
        idle.bells.push(bell.clone());
        if idle.timekeeper_waiting {
            self.parked.notify_one();
        }
        true
    }

    fn lock_idle(&self) -> MutexGuard<'_, Idle> {
        // A worker that panicked while holding the lock left the list intact.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Index of the first request not yet due at `now` (capped at the
    /// deadline's): everything before it is due.
    fn first_not_due(&self, now: Instant) -> u64 {
        let until = now.min(self.deadline).saturating_duration_since(self.t0);
        let mut k = self.schedule.cumulative(until).max(0.0).floor() as u64;
        // N(t) is fractional and offsets are rounded: settle on the exact index.
        while k > 0 && self.intended(k - 1).is_none_or(|at| at > now) {
            k -= 1;
        }
        while self.intended(k).is_some_and(|at| at <= now) {
            k += 1;
        }
        k
    }
}

/// The open model's clock: owns the worker pool and wakes it on schedule.
struct Timekeeper {
    shared: Arc<Shared>,
    sender: Sender,
    mix: Mix,
    max_in_flight: u64,
    seed: u64,
    stop: CancellationToken,
    events: mpsc::UnboundedSender<Event>,
    tracker: TaskTracker,
    runtime: tokio::runtime::Handle,
    workers: u64,
}

impl Timekeeper {
    fn new(open: OpenLoop, runtime: tokio::runtime::Handle) -> Timekeeper {
        Timekeeper {
            shared: Arc::new(Shared::new(open.schedule, open.t0, open.deadline)),
            sender: open.sender,
            mix: open.mix,
            max_in_flight: open.max_in_flight.max(1) as u64,
            seed: open.seed,
            stop: open.stop,
            events: open.events,
            tracker: open.tracker,
            runtime,
            workers: 0,
        }
    }

    fn run(mut self) -> u64 {
        let shared = Arc::clone(&self.shared);
        loop {
            let mut idle = shared.lock_idle();
            let (next_due, saturated) = self.dispatch(&shared, &mut idle);
            if saturated {
                // Due requests wait and every worker is busy: they claim
                // those requests as they finish, without parking. Nothing is
                // left to do here until one parks (all caught up).
                if self.stop.is_cancelled() || Instant::now() >= shared.deadline {
                    break;
                }
                idle.timekeeper_waiting = true;
                let (mut idle, _) = shared
                    .parked
                    .wait_timeout(idle, STOP_POLL)
                    .unwrap_or_else(|e| e.into_inner());
                idle.timekeeper_waiting = false;
                continue;
            }
            drop(idle);
            let Some(at) = shared.intended(next_due) else {
                // Nothing more comes due before the deadline: wait it out.
                self.sleep_until(self.shared.deadline);
                break;
            };
            if !self.sleep_until(at) {
                break;
            }
        }
        self.close()
    }

    /// Wakes (or starts) one worker per due request that no busy or woken
    /// worker will take; returns the first request not yet due, and whether
    /// due requests are left for busy workers (none idle, none to start).
    fn dispatch(&mut self, shared: &Shared, idle: &mut Idle) -> (u64, bool) {
        let now = Instant::now();
        let due = shared.first_not_due(now);
        let claimed = shared.next.load(Ordering::Acquire);
        let mut backlog = due
            .saturating_sub(claimed)
            .saturating_sub(shared.woken.load(Ordering::Acquire));
        while backlog > 0 {
            if let Some(bell) = idle.bells.pop() {
                shared.woken.fetch_add(1, Ordering::AcqRel);
                bell.rung.store(true, Ordering::Release);
                bell.notify.notify_one();
            } else if self.workers < self.max_in_flight {
                shared.woken.fetch_add(1, Ordering::AcqRel);
                self.spawn_worker();
            } else {
                // Every worker is busy: due requests wait for one, and the
                // wait counts in their latency.
                return (due, true);
            }
            backlog -= 1;
        }
        (due, false)
    }

    /// Sleeps until `at`; false if the load was stopped first. Every `at`
    /// is before the deadline (or is the deadline), so a request due just
    /// before it is still dispatched when the sleep overshoots.
    fn sleep_until(&self, at: Instant) -> bool {
        loop {
            if self.stop.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= at {
                return true;
            }
            std::thread::sleep((at - now).min(STOP_POLL));
        }
    }

    fn spawn_worker(&mut self) {
        // Each worker has its own stream of the run's randomness.
        let rng =
            ChaCha8Rng::seed_from_u64(self.seed ^ self.workers.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        self.workers += 1;
        let worker = Worker {
            shared: Arc::clone(&self.shared),
            sender: self.sender.clone(),
            mix: self.mix.clone(),
            rng,
            bell: Arc::new(Bell::default()),
            stop: self.stop.clone(),
        };
        self.runtime.spawn(self.tracker.track_future(worker.run()));
    }

    /// Stops all claims, releases parked workers and reports every request
    /// that came due before the stop but was never claimed as unsent.
    fn close(self) -> u64 {
        // Workers woken for requests due before the deadline still send
        // them: give them a moment to claim before claims stop.
        let grace = Instant::now() + CLOSE_GRACE;
        while self.shared.woken.load(Ordering::Acquire) > 0
            && Instant::now() < grace
            && !self.stop.is_cancelled()
        {
            std::thread::sleep(Duration::from_micros(100));
        }
        let first_unclaimed = self.shared.next.swap(CLOSED, Ordering::AcqRel);
        for bell in self.shared.lock_idle().bells.drain(..) {
            bell.notify.notify_one();
        }
        let stopped_at = Instant::now().min(self.shared.deadline);
        self.report_unsent(first_unclaimed, stopped_at)
    }

    /// Reports the requests from `first` that came due before `stopped_at`
    /// as unsent, in at most [`UNSENT_BUCKETS`] events of counts (each
    /// bucket placed at its first request, so phases get theirs): at a rate
    /// the generator could never keep, one event per request would take
    /// longer than the run and hold up the stop.
    fn report_unsent(&self, first: u64, stopped_at: Instant) -> u64 {
        let Some(start) = self.shared.intended(first).filter(|&at| at < stopped_at) else {
            return 0;
        };
        // Requests due before `t`: those with offset < t, i.e. i < N(t).
        let due_before = |t: Instant| -> u64 {
            let n = self
                .shared
                .schedule
                .cumulative(t.saturating_duration_since(self.shared.t0));
            (n.ceil().max(0.0) as u64).max(first)
        };
        let span = stopped_at.saturating_duration_since(start);
        let mut unsent = 0u64;
        let mut from = first;
        for k in 1..=UNSENT_BUCKETS {
            let until = if k == UNSENT_BUCKETS {
                due_before(stopped_at)
            } else {
                due_before(start + span.mul_f64(k as f64 / UNSENT_BUCKETS as f64))
            };
            if until > from {
                if let Some(intended) = self.shared.intended(from) {
                    let count = until - from;
                    let _ = self.events.send(Event::Unsent { intended, count });
                    unsent += count;
                }
                from = until;
            }
        }
        unsent
    }
}

/// One connection worker of the open model.
struct Worker {
    shared: Arc<Shared>,
    sender: Sender,
    mix: Mix,
    rng: ChaCha8Rng,
    bell: Arc<Bell>,
    stop: CancellationToken,
}

impl Worker {
    async fn run(mut self) {
        let mut conn = Conn::default();
        // A new worker was started for a due request, like a woken one.
        self.shared.woken.fetch_sub(1, Ordering::AcqRel);
        while !self.stop.is_cancelled() {
            match self.shared.claim(Instant::now()) {
                Claim::Due(intended) => {
                    let index = self.mix.pick(&mut self.rng);
                    self.sender.send(&mut conn, index, intended).await;
                }
                Claim::Over => break,
                Claim::NotYet => {
                    if !self.shared.park(&self.bell) {
                        continue;
                    }
                    tokio::select! {
                        _ = self.bell.notify.notified() => {}
                        _ = self.stop.cancelled() => break,
                    }
                    if self.bell.rung.swap(false, Ordering::AcqRel) {
                        self.shared.woken.fetch_sub(1, Ordering::AcqRel);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::RateShape;

    fn shared(rate: f64, secs: u64) -> (Shared, Instant) {
        let t0 = Instant::now();
        let s = Shared::new(
            Schedule::new(RateShape::Constant(rate)),
            t0,
            t0 + Duration::from_secs(secs),
        );
        (s, t0)
    }

    #[test]
    fn requests_are_claimed_in_order_only_once_due() {
        let (s, t0) = shared(100.0, 1);
        // Request 0 is due at t0, request 1 at 10 ms.
        assert_eq!(s.claim(t0), Claim::Due(t0));
        assert_eq!(s.claim(t0), Claim::NotYet);
        let at = t0 + Duration::from_millis(10);
        assert_eq!(s.claim(at), Claim::Due(at));
        // 35 ms in: requests 2 and 3 are due, 4 is not.
        let later = t0 + Duration::from_millis(35);
        assert!(matches!(s.claim(later), Claim::Due(_)));
        assert!(matches!(s.claim(later), Claim::Due(_)));
        assert_eq!(s.claim(later), Claim::NotYet);
    }

    #[test]
    fn the_schedule_ends_at_the_deadline_and_on_close() {
        let (s, t0) = shared(10.0, 1);
        let end = t0 + Duration::from_secs(5);
        let claimed = std::iter::from_fn(|| match s.claim(end) {
            Claim::Due(_) => Some(()),
            _ => None,
        })
        .count();
        assert_eq!(claimed, 10, "10/s for 1 s");
        assert_eq!(s.claim(end), Claim::Over);
        let (s, t0) = shared(10.0, 1);
        s.next.store(CLOSED, Ordering::Release);
        assert_eq!(s.claim(t0), Claim::Over);
    }

    #[test]
    fn first_not_due_counts_exactly_what_is_due() {
        let (s, t0) = shared(1000.0, 10);
        for ms in [0u64, 1, 7, 999, 4321] {
            let now = t0 + Duration::from_millis(ms);
            let k = s.first_not_due(now);
            assert!(s.intended(k).is_some_and(|at| at > now), "{ms} ms: {k}");
            assert!(k == 0 || s.intended(k - 1).is_some_and(|at| at <= now));
            assert_eq!(k, ms + 1, "{ms} ms");
        }
        // Past the deadline nothing more comes due.
        assert_eq!(s.first_not_due(t0 + Duration::from_secs(60)), 10_000);
    }

    #[test]
    fn a_worker_does_not_park_while_something_is_due() {
        let (s, t0) = shared(1.0, 10);
        let bell = Arc::new(Bell::default());
        // Request 0 is due at t0 (already past): parking is refused.
        assert!(!s.park(&bell));
        assert_eq!(s.claim(t0), Claim::Due(t0));
        // Request 1 is a second away: the worker parks.
        assert!(s.park(&bell));
        assert_eq!(s.lock_idle().bells.len(), 1);
    }
}
