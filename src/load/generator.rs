//! The load loop: one strategy per load model, one way to send and record.
//!
//! **Open model** ([`super::open`]). Requests arrive on the [`Schedule`];
//! connection workers claim each one when it is due, a timekeeper thread
//! wakes them, and latency is measured from the *intended* time
//! (coordinated omission, as wrk2 corrects it). What never got a worker
//! before the load stopped is reported as `unsent`.
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
use super::open::OpenLoop;
use super::schedule::Schedule;
use crate::config::model::{Load, LoadModel, VersionSource};
use crate::metrics::{Event, Outcome};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
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
            OpenLoop {
                sender: sender.clone(),
                mix: mix.clone(),
                schedule: Schedule::new(rate.clone()),
                max_in_flight: *max_in_flight,
                t0: run.t0,
                deadline,
                seed: run.seed,
                stop: run.stop.clone(),
                events: run.events.clone(),
                tracker: tracker.clone(),
            }
            .run()
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
pub(super) struct Sender {
    client: HttpClient,
    requests: Arc<Vec<PreparedRequest>>,
    events: mpsc::UnboundedSender<Event>,
    abandon: CancellationToken,
    sent: Arc<AtomicU64>,
}

impl Sender {
    pub(super) async fn send(&self, conn: &mut Conn, index: usize, intended: Instant) {
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
            request: u16::try_from(index).unwrap_or(u16::MAX),
        }));
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
