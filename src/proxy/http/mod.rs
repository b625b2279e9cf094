//! HTTP mode (`mode: http`): the hop parses HTTP/1.1 and applies HTTP faults
//! per request, on top of whatever TCP toxics act on the bytes.
//!
//! The listener hands [`serve_connection`] one end of an in-memory duplex
//! per accepted client; hyper serves it (keep-alive), and each request is
//! forwarded upstream with a pooled client. The layers:
//!
//! - [`HttpState`] (here): the fault list, the seeded RNG and the client;
//!   faults added or removed take effect on the next request, also on live
//!   keep-alive connections.
//! - `plan`: which faults fire for a request (pure; all the randomness).
//! - `forward`: the per-request service: delay, inject, forward, damage.
//! - `delay`, `corrupt`, `headers`: the pure pieces (delay shapes, body
//!   damage, hop-by-hop headers).
//! - `abort`: breaking a connection after exactly the bytes promised.
//! - `pool`: the pooled client to the upstream, its connection tasks tracked.

mod abort;
mod corrupt;
mod forward;
mod headers;
mod plan;
mod pool;
pub(crate) mod rate_limit;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockWriteGuard};
use std::time::Duration;

use http::Request;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;

use super::handle::{Shared, ToxicError};
use super::spec::HttpFaultSpec;
use super::stats::HeadWatch;
use abort::{FlushWatch, Flushes};
use plan::Plan;
use pool::{Pool, UpstreamClient};

/// How long a connection may take to finish its forwarded request once its
/// token is cancelled (injected delays end at once). Bounded so that a slow
/// upstream cannot hold up "stopped"; past it the request is dropped with
/// the connection.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The HTTP side of one hop: its faults, its RNG and its upstream client.
pub(crate) struct HttpState {
    upstream: SocketAddr,
    /// Swapped whole on every change, so a request takes a snapshot with one
    /// short read lock and evaluates it without holding anything.
    faults: RwLock<Arc<Vec<HttpFaultSpec>>>,
    /// Every random decision of the HTTP faults (probabilities, jitter, flip
    /// seeds), in request arrival order. Seeded through `seed_from_u64`, so
    /// its stream differs from the toxics' per-connection streams, which use
    /// the seed as a raw key.
    rng: Mutex<ChaCha8Rng>,
    /// The token buckets of its `rate_limit` faults.
    limits: rate_limit::RateLimits,
    pool: Pool,
}

impl HttpState {
    /// State for a hop forwarding to `upstream`, drawing from `seed`.
    ///
    /// Needs no runtime: the client spawns its connection tasks on first use.
    pub(crate) fn new(upstream: SocketAddr, seed: u64) -> HttpState {
        HttpState {
            upstream,
            faults: RwLock::new(Arc::new(Vec::new())),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
            limits: rate_limit::RateLimits::default(),
            pool: Pool::new(),
        }
    }

    /// Closes the pooled upstream connections and waits until their tasks
    /// have finished: part of the hop being "stopped". Call it once the
    /// client connections are done; a request forwarded after it gets a 502.
    /// (Dropping the state also closes them, without waiting.)
    // Until the listener calls this on shutdown (helper A's side), nothing
    // in the crate does.
    pub(crate) async fn shutdown(&self) {
        self.pool.shutdown().await;
    }

    /// Adds `spec` after the existing faults (evaluation follows insertion order).
    pub(crate) fn add(&self, spec: HttpFaultSpec) -> Result<(), ToxicError> {
        spec.validate().map_err(ToxicError::Invalid)?;
        let mut faults = self.faults_mut();
        if faults.iter().any(|f| f.name == spec.name) {
            return Err(ToxicError::Exists(spec.name));
        }
        let mut next = Vec::clone(&faults);
        next.push(spec);
        *faults = Arc::new(next);
        Ok(())
    }

    /// Removes the fault named `name` and returns it.
    pub(crate) fn remove(&self, name: &str) -> Result<HttpFaultSpec, ToxicError> {
        let mut faults = self.faults_mut();
        let at = faults
            .iter()
            .position(|f| f.name == name)
            .ok_or_else(|| ToxicError::NotFound(name.to_string()))?;
        let mut next = Vec::clone(&faults);
        let removed = next.remove(at);
        *faults = Arc::new(next);
        self.limits.forget(name);
        Ok(removed)
    }

    /// The faults in evaluation order.
    pub(crate) fn list(&self) -> Vec<HttpFaultSpec> {
        Vec::clone(&self.snapshot())
    }

    /// Removes every fault.
    pub(crate) fn clear(&self) {
        *self.faults_mut() = Arc::new(Vec::new());
        self.limits.clear();
    }

    fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    fn client(&self) -> &UpstreamClient {
        &self.pool.client
    }

    /// What the current faults do to `req`.
    fn plan<B>(&self, req: &Request<B>) -> Plan {
        let faults = self.snapshot();
        if faults.is_empty() {
            return Plan::default();
        }
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        // The lock is held only for this synchronous evaluation: concurrent
        // requests draw in the order they take it.
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        plan::plan_at(
            &faults,
            &self.limits,
            std::time::Instant::now(),
            req.method().as_str(),
            req.uri().path(),
            header,
            &mut *rng,
        )
    }

    fn snapshot(&self) -> Arc<Vec<HttpFaultSpec>> {
        // The list is replaced whole under the lock, never left half-edited,
        // so a poisoned lock still guards a consistent value.
        Arc::clone(&self.faults.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn faults_mut(&self) -> RwLockWriteGuard<'_, Arc<Vec<HttpFaultSpec>>> {
        self.faults.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for HttpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<String> = self.snapshot().iter().map(|f| f.name.clone()).collect();
        f.debug_struct("HttpState")
            .field("upstream", &self.upstream)
            .field("faults", &names)
            .finish_non_exhaustive()
    }
}

/// Serves one client connection in HTTP mode until the client leaves, an
/// `abort` fault breaks it, or `token` is cancelled.
///
/// On cancellation the connection stops taking requests, cuts an injected
/// delay short (closing without a response), gives a forwarded request up to
/// [`SHUTDOWN_GRACE`] to finish, and closes; returning drops `io`.
///
/// Every request head is counted and marked in `heads` while its service
/// runs (see [`HeadWatch`]).
pub(crate) async fn serve_connection<IO>(
    io: IO,
    shared: Arc<Shared>,
    heads: Arc<HeadWatch>,
    token: CancellationToken,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let flushes = Arc::new(Flushes::default());
    let io = TokioIo::new(FlushWatch::new(io, Arc::clone(&flushes)));
    let service = {
        let token = token.clone();
        service_fn(move |req| {
            forward::handle(
                req,
                Arc::clone(&shared),
                Arc::clone(&flushes),
                Arc::clone(&heads),
                token.clone(),
            )
        })
    };
    let conn = http1::Builder::new()
        // hyper's header-read timeout (on by default) needs a timer.
        .timer(TokioTimer::new())
        .keep_alive(true)
        .serve_connection(io, service);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        // Protocol errors, resets and injected aborts end the connection;
        // there is no one to report them to.
        _ = conn.as_mut() => return,
        _ = token.cancelled() => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fault(name: &str) -> HttpFaultSpec {
        serde_json::from_value(json!({"name": name, "type": "http_error", "status": 503}))
            .expect("valid fault")
    }

    fn state() -> HttpState {
        HttpState::new("127.0.0.1:9".parse().expect("addr"), 1)
    }

    fn names(state: &HttpState) -> Vec<String> {
        state.list().into_iter().map(|f| f.name).collect()
    }

    #[test]
    fn faults_are_listed_in_insertion_order() {
        let state = state();
        for name in ["b", "a", "c"] {
            state.add(fault(name)).expect("added");
        }
        assert_eq!(names(&state), ["b", "a", "c"]);
        assert_eq!(state.remove("a").expect("removed").name, "a");
        assert_eq!(names(&state), ["b", "c"]);
        state.clear();
        assert!(state.list().is_empty());
    }

    #[test]
    fn a_taken_name_is_refused_and_the_first_fault_kept() {
        let state = state();
        state.add(fault("down")).expect("added");
        let mut other = fault("down");
        other.probability = 0.5;
        assert!(matches!(state.add(other), Err(ToxicError::Exists(name)) if name == "down"));
        assert_eq!(state.list(), [fault("down")]);
    }

    #[test]
    fn an_invalid_fault_is_refused_with_the_spec_error() {
        let state = state();
        let mut bad = fault("bad");
        bad.probability = 1.5;
        assert!(matches!(state.add(bad), Err(ToxicError::Invalid(_))));
        assert!(state.list().is_empty());
    }

    #[test]
    fn removing_an_unknown_fault_is_not_found() {
        let state = state();
        assert!(
            matches!(state.remove("ghost"), Err(ToxicError::NotFound(name)) if name == "ghost")
        );
    }

    #[test]
    fn a_request_plans_against_the_faults_at_its_arrival() {
        let state = state();
        let request = || Request::get("/pay").body(()).expect("request");
        assert_eq!(state.plan(&request()), Plan::default());
        state.add(fault("down")).expect("added");
        assert_eq!(state.plan(&request()).fired, ["down"]);
        state.remove("down").expect("removed");
        assert_eq!(state.plan(&request()), Plan::default());
    }
}
