//! The load loop: one strategy per load model, one way to send and record.
//!
//! **Open model.** A dispatcher thread walks the arrival [`Schedule`], sleeps
//! until each request is due and hands it to an idle connection worker, starting
//! a new one while there are fewer than `max_in_flight`. Latency is measured
//! from the *intended* time, so when the target stalls, queued requests
//! carry the stall in their latency instead of silently waiting
//! (coordinated omission, as wrk2 corrects it). Requests that came due but
//! never got a worker before the load stopped are reported as `unsent`,
//! never dropped silently.
//!
//! **Closed model.** N workers send back to back; intended = actual start.
//!
//! Every worker owns one keep-alive connection ([`Conn`]) and sends one
//! request at a time on it: no pool, no lock and no task spawned per request.
//!
//! Both run for a fixed duration (bounded in time; the open model is also
//! bounded in count by its schedule) and stop early when `stop` is cancelled.

use super::client::{HttpClient, PreparedRequest};
use super::conn::Conn;
use super::mix::Mix;
use super::schedule::Schedule;
use crate::config::model::{Load, LoadModel, VersionSource};
use crate::metrics::{Event, Outcome};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything one load stream needs.
pub struct LoadRun {
    pub load: Load,
    /// Base URL of the target; request paths are joined onto it.
    pub base: http::Uri,
    /// How long the stream runs (the sum of the phases).
    pub duration: Duration,
    /// Seed of the run's RNG (request mix).
    pub seed: u64,
    /// Start of the stream; the recorder uses the same instant.
    pub t0: Instant,
    pub events: mpsc::UnboundedSender<Event>,
    /// Stop scheduling new requests; in-flight ones finish (bounded by the timeout).
    pub stop: CancellationToken,
    /// Abandon in-flight requests too (the second Ctrl-C).
    pub abandon: CancellationToken,
    /// Read which version served each response (for canary verifiers).
    pub version: Option<VersionSource>,
}

/// Counts kept by the generator itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadSummary {
    /// Requests sent.
    pub sent: u64,
    /// Requests that came due but were never sent (open model).
    pub unsent: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("request `{name}` does not form a valid URL with the target: {source}")]
    BadRequest {
        name: String,
        #[source]
        source: http::Error,
    },
}

/// Runs the load stream to its end (or until stopped) and waits for every
/// in-flight request.
pub async fn run(run: LoadRun) -> Result<LoadSummary, LoadError> {
    let requests = run
        .load
        .requests
        .iter()
        .map(|spec| {
            PreparedRequest::new(&run.base, spec).map_err(|source| LoadError::BadRequest {
                name: spec.name.clone(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let sender = Sender {
        client: HttpClient::new(run.load.timeout, pool_size(&run.load.model))
            .reading_version(run.version.clone()),
        requests: Arc::new(requests),
        events: run.events.clone(),
        abandon: run.abandon.clone(),
        sent: Arc::new(AtomicU64::new(0)),
    };
    let mix = Mix::new(run.load.requests.iter().map(|r| r.weight));
    let tracker = TaskTracker::new();
    let deadline = run.t0 + run.duration;
    let unsent = match &run.load.model {
        LoadModel::Open {
            rate,
            max_in_flight,
        } => {
            let schedule = Schedule::new(rate.clone());
            open_loop(
                &run,
                &sender,
                &mix,
                &schedule,
                *max_in_flight,
                deadline,
                &tracker,
            )
            .await
        }
        LoadModel::Closed { concurrency } => {
            closed_loop(&run, &sender, &mix, *concurrency, deadline, &tracker).await;
            0
        }
    };
    tracker.close();
    tokio::select! {
        _ = tracker.wait() => {}
        _ = run.abandon.cancelled() => {}
    }
    Ok(LoadSummary {
        sent: sender.sent.load(Ordering::Relaxed),
        unsent,
    })
}

fn pool_size(model: &LoadModel) -> usize {
    match model {
        LoadModel::Open { max_in_flight, .. } => *max_in_flight,
        LoadModel::Closed { concurrency } => *concurrency,
    }
}

/// The shared part of both models: send one request and report its outcome.
#[derive(Clone)]
struct Sender {
    client: HttpClient,
    requests: Arc<Vec<PreparedRequest>>,
    events: mpsc::UnboundedSender<Event>,
    abandon: CancellationToken,
    sent: Arc<AtomicU64>,
}

impl Sender {
    async fn send(&self, conn: &mut Conn, index: usize, intended: Instant) {
        let Some(req) = self.requests.get(index) else {
            return;
        };
        let started = Instant::now();
        self.sent.fetch_add(1, Ordering::Relaxed);
        let result = tokio::select! {
            r = self.client.send_on(conn, req) => r,
            _ = self.abandon.cancelled() => return,
        };
        let _ = self.events.send(Event::Done(Outcome {
            intended,
            started,
            ended: Instant::now(),
            status: result.status,
            error: result.error,
            version: result.version,
        }));
    }
}

/// How often a waiting dispatcher looks at the stop token.
const STOP_POLL: Duration = Duration::from_millis(10);

async fn open_loop(
    run: &LoadRun,
    sender: &Sender,
    mix: &Mix,
    schedule: &Schedule,
    max_in_flight: usize,
    deadline: Instant,
    tracker: &TaskTracker,
) -> u64 {
    let dispatcher = Dispatcher {
        sender: sender.clone(),
        mix: mix.clone(),
        schedule: schedule.clone(),
        max_in_flight: max_in_flight.max(1),
        t0: run.t0,
        deadline,
        seed: run.seed,
        stop: run.stop.clone(),
        events: run.events.clone(),
        tracker: tracker.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    // The dispatcher sleeps on a thread of its own: tokio's timer wakes 0-2 ms
    // after a deadline, and that lateness would be added to every latency
    // measured from the intended time. A thread sleep is precise to tens of µs.
    tokio::task::spawn_blocking(move || dispatcher.run())
        .await
        .unwrap_or(0)
}

/// The open model's dispatcher: owns what it needs, runs on its own thread.
struct Dispatcher {
    sender: Sender,
    mix: Mix,
    schedule: Schedule,
    max_in_flight: usize,
    t0: Instant,
    deadline: Instant,
    seed: u64,
    stop: CancellationToken,
    events: mpsc::UnboundedSender<Event>,
    tracker: TaskTracker,
    runtime: tokio::runtime::Handle,
}

impl Dispatcher {
    /// Hands each request, when due, to an idle connection worker (starting
    /// one while fewer than `max_in_flight` run, else waiting for one); returns
    /// how many came due but were never sent.
    fn run(self) -> u64 {
        // Workers report back here when they are free again.
        let (idle_tx, idle_rx) = std_mpsc::channel::<usize>();
        let mut workers: Vec<mpsc::UnboundedSender<(usize, Instant)>> = Vec::new();
        let mut idle: Vec<usize> = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut i = 0u64;
        while let Some(offset) = self.schedule.offset(i) {
            let intended = self.t0 + offset;
            if intended >= self.deadline || !self.sleep_until(intended) {
                break;
            }
            idle.extend(idle_rx.try_iter());
            let worker = match idle.pop() {
                Some(free) => free,
                None if workers.len() < self.max_in_flight => {
                    workers.push(self.spawn_worker(workers.len(), &idle_tx));
                    workers.len() - 1
                }
                // Every worker is busy: the request waits for one, and the
                // wait counts in its latency.
                None => match self.wait_for_worker(&idle_rx) {
                    Some(free) => free,
                    None => break,
                },
            };
            let index = self.mix.pick(&mut rng);
            let Some(jobs) = workers.get(worker) else {
                break;
            };
            if jobs.send((index, intended)).is_err() {
                break;
            }
            i += 1;
        }
        // Closing the job queues ends each worker after its current request.
        drop(workers);
        self.report_unsent(i)
    }

    /// Sleeps until `at`; false if the load was stopped first.
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

    /// The next worker to report free; `None` if the load stopped or ended first.
    fn wait_for_worker(&self, idle: &std_mpsc::Receiver<usize>) -> Option<usize> {
        loop {
            let now = Instant::now();
            if self.stop.is_cancelled() || now >= self.deadline {
                return None;
            }
            match idle.recv_timeout((self.deadline - now).min(STOP_POLL)) {
                Ok(free) => return Some(free),
                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// A connection worker: sends each request it is handed on its own
    /// connection, then reports itself free as `id`.
    fn spawn_worker(
        &self,
        id: usize,
        idle: &std_mpsc::Sender<usize>,
    ) -> mpsc::UnboundedSender<(usize, Instant)> {
        let (jobs_tx, mut jobs) = mpsc::unbounded_channel::<(usize, Instant)>();
        let s = self.sender.clone();
        let idle = idle.clone();
        self.runtime.spawn(self.tracker.track_future(async move {
            let mut conn = Conn::default();
            while let Some((index, intended)) = jobs.recv().await {
                s.send(&mut conn, index, intended).await;
                if idle.send(id).is_err() {
                    break;
                }
            }
        }));
        jobs_tx
    }

    /// Reports every request from number `i` on that came due before the load
    /// stopped as unsent, and returns how many there were.
    fn report_unsent(&self, mut i: u64) -> u64 {
        let stopped_at = Instant::now().min(self.deadline);
        let mut unsent = 0u64;
        while let Some(offset) = self.schedule.offset(i) {
            let intended = self.t0 + offset;
            if intended >= stopped_at {
                break;
            }
            let _ = self.events.send(Event::Unsent { intended });
            unsent += 1;
            i += 1;
        }
        unsent
    }
}

async fn closed_loop(
    run: &LoadRun,
    sender: &Sender,
    mix: &Mix,
    concurrency: usize,
    deadline: Instant,
    tracker: &TaskTracker,
) {
    for worker in 0..concurrency.max(1) {
        let s = sender.clone();
        let mix = mix.clone();
        let stop = run.stop.clone();
        // Each worker has its own stream of the run's randomness, so the
        // sequence per worker is reproducible from the seed.
        let mut rng = ChaCha8Rng::seed_from_u64(
            run.seed ^ (worker as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        tracker.spawn(async move {
            let mut conn = Conn::default();
            while Instant::now() < deadline && !stop.is_cancelled() {
                let index = mix.pick(&mut rng);
                let now = Instant::now();
                s.send(&mut conn, index, now).await;
            }
        });
    }
    // The workers check the deadline between requests; wait for it here so
    // the caller sees the same shape as the open model.
    tokio::select! {
        _ = tokio::time::sleep_until(deadline.into()) => {}
        _ = run.stop.cancelled() => {}
    }
}
