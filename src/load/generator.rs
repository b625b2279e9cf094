//! The load loop: one strategy per load model, one way to send and record.
//!
//! **Open model.** A dispatcher walks the arrival [`Schedule`], sleeps until
//! each request is due, takes a slot from the `max_in_flight` semaphore and
//! spawns the request. Latency is measured from the *intended* time, so when
//! the target stalls, queued requests carry the stall in their latency instead
//! of silently waiting (coordinated omission, as wrk2 corrects it). Requests
//! that came due but never got a slot before the load stopped are reported
//! as `unsent`, never dropped silently.
//!
//! **Closed model.** N workers send back to back; intended = actual start.
//!
//! Both run for a fixed duration (bounded in time; the open model is also
//! bounded in count by its schedule) and stop early when `stop` is cancelled.

use super::client::{HttpClient, PreparedRequest};
use super::mix::Mix;
use super::schedule::Schedule;
use crate::config::model::{Load, LoadModel, VersionSource};
use crate::metrics::{Event, Outcome};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
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
    async fn send(&self, index: usize, intended: Instant) {
        let Some(req) = self.requests.get(index) else {
            return;
        };
        let started = Instant::now();
        self.sent.fetch_add(1, Ordering::Relaxed);
        let result = tokio::select! {
            r = self.client.send(req) => r,
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

async fn open_loop(
    run: &LoadRun,
    sender: &Sender,
    mix: &Mix,
    schedule: &Schedule,
    max_in_flight: usize,
    deadline: Instant,
    tracker: &TaskTracker,
) -> u64 {
    let slots = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let mut rng = ChaCha8Rng::seed_from_u64(run.seed);
    let mut unsent = 0u64;
    let mut i = 0u64;
    while let Some(offset) = schedule.offset(i) {
        let intended = run.t0 + offset;
        if intended >= deadline {
            break;
        }
        // Sleeping only when ahead keeps the dispatcher cheap at high rates.
        if intended > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(intended.into()) => {}
                _ = run.stop.cancelled() => break,
            }
        } else if run.stop.is_cancelled() {
            break;
        }
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = run.stop.cancelled() => break,
                _ = tokio::time::sleep_until(deadline.into()) => break,
            },
        };
        let index = mix.pick(&mut rng);
        let s = sender.clone();
        tracker.spawn(async move {
            s.send(index, intended).await;
            drop(permit);
        });
        i += 1;
    }
    // Everything that came due before the load stopped but was not sent.
    let stopped_at = Instant::now().min(deadline);
    while let Some(offset) = schedule.offset(i) {
        let intended = run.t0 + offset;
        if intended >= stopped_at {
            break;
        }
        let _ = run.events.send(Event::Unsent { intended });
        unsent += 1;
        i += 1;
    }
    unsent
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
            while Instant::now() < deadline && !stop.is_cancelled() {
                let index = mix.pick(&mut rng);
                let now = Instant::now();
                s.send(index, now).await;
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
