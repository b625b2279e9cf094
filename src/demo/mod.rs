//! The embedded demo system, all on 127.0.0.1 and in-process:
//!
//! ```text
//!                 ┌─ v1 (90%) ─▶ hop `payments` ────────┐
//! client ─▶ frontend                                     ├─▶ payments
//!                 └─ v2 (10%) ─▶ hop `payments-canary` ─┘
//! ```
//!
//! With `failover` v1 also has a backup: a second payments instance behind
//! hop `payments-backup`, used when payments (through hop `payments`) fails.
//!
//! It gives experiments a real dependency chain with real resilience
//! mechanisms to break, without installing anything. Each frontend version
//! reaches payments only through its own [`Proxy`] hop, so a fault injected
//! on `payments-canary` hits the canary alone. Around each version's calls
//! sit a circuit breaker and a bulkhead; a rollback controller takes a
//! failing canary out of rotation. Defects (`DemoOptions::defects`) switch
//! single mechanisms off or bend them, so that verifiers can be shown to
//! catch a broken system, not only to pass a healthy one.
//!
//! - `server`: the HTTP/1.1 serve loop, also used by the integration tests' fixtures.
//! - `payments`: the dependency, with a seeded, jittered service time.
//! - `payments_client`: one HTTP call to payments, typed errors.
//! - `breaker`: the circuit breaker state machine (and its defects).
//! - `window`: sliding-window counts for the breaker and the rollback controller.
//! - `path`: one version's breaker, bulkhead (and the `no_timeout` defect) and client.
//! - `failover`: with `failover`, v1's primary/backup balancing (and `no_ejection`).
//! - `canary`: the v1/v2 split and the rollback controller (and its defects).
//! - `frontend`: `/checkout` and `/health`, mapping failures to 502/503/504.
//! - `admin`: `/admin/breaker`, `/admin/canary` and `/metrics` (rendered by `metrics`).
//! - `foreground`: `faultline demo`, the system run until a signal.
//!
//! The demo stands alone: it uses the proxy and the config model, nothing else.

pub mod admin;
pub mod breaker;
pub mod canary;
pub mod failover;
mod foreground;
pub mod frontend;
pub mod metrics;
pub mod path;
pub mod payments;
pub mod payments_client;
pub mod window;
/// The HTTP server loop the demo services run on (shared with the admin API).
pub use crate::server;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::model::{Defect, DemoOptions};
use crate::proxy::{Proxy, ProxyConfig, ProxyError, ProxyMode};

pub use foreground::run_foreground;

use canary::{Canary, Version};
use failover::{Ejection, Failover, Upstream};
use frontend::Frontend;
use path::PaymentsPath;
use payments::Payments;
use payments_client::PaymentsClient;

pub use crate::config::demo_names::{BACKUP_HOP, CANARY_HOP, PAYMENTS_HOP};

/// Why the demo system could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo {service}: cannot listen on 127.0.0.1")]
    Bind {
        service: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("demo: cannot start a proxy hop")]
    Proxy(#[from] ProxyError),
    #[error("demo: invalid payments address")]
    PaymentsUri(#[from] http::uri::InvalidUri),
    #[error("demo: cannot listen for shutdown signals")]
    Signal(#[source] std::io::Error),
}

/// A running demo system.
///
/// It stops when the token given to [`DemoSystem::start`] is cancelled;
/// [`DemoSystem::stopped`] then waits until every task has finished.
#[derive(Debug)]
pub struct DemoSystem {
    /// The frontend, the system under test (see [`DemoSystem::frontend_url`]).
    pub frontend: SocketAddr,
    /// Payments itself, bypassing the hops (for probes and curl, not the frontend).
    pub payments: SocketAddr,
    /// The hop v1's payment calls go through ([`PAYMENTS_HOP`]).
    pub payments_hop: Proxy,
    /// The hop the canary's (v2's) payment calls go through ([`CANARY_HOP`]).
    pub payments_canary_hop: Proxy,
    /// With `failover`: the backup payments instance and its hop ([`BACKUP_HOP`]).
    pub backup: Option<(SocketAddr, Proxy)>,
    opts: DemoOptions,
    seed: u64,
    tracker: TaskTracker,
}

impl DemoSystem {
    /// Starts payments, both hops, the frontend (on an ephemeral port) and
    /// the rollback controller; returns once all listen.
    ///
    /// `seed` drives payments' latency jitter, the hops' random decisions
    /// (toxicity, jitter, HTTP fault probabilities) and where the canary's
    /// turns fall. On error, whatever had started is stopped before returning.
    pub async fn start(
        opts: &DemoOptions,
        seed: u64,
        shutdown: CancellationToken,
    ) -> Result<DemoSystem, DemoError> {
        Self::start_on(opts, seed, 0, shutdown).await
    }

    /// [`DemoSystem::start`] with the frontend on 127.0.0.1:`frontend_port`
    /// (0 picks a free port).
    pub async fn start_on(
        opts: &DemoOptions,
        seed: u64,
        frontend_port: u16,
        shutdown: CancellationToken,
    ) -> Result<DemoSystem, DemoError> {
        // A child token, so that a failed start can stop its own tasks
        // without cancelling the caller's token.
        let shutdown = shutdown.child_token();
        let tracker = TaskTracker::new();
        match Self::spawn_services(opts, seed, frontend_port, &shutdown, &tracker).await {
            Ok(demo) => Ok(demo),
            Err(error) => {
                shutdown.cancel();
                tracker.close();
                tracker.wait().await;
                Err(error)
            }
        }
    }

    async fn spawn_services(
        opts: &DemoOptions,
        seed: u64,
        frontend_port: u16,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<DemoSystem, DemoError> {
        let (listener, payments) = bind("payments", 0).await?;
        let service = Arc::new(Payments::new(opts.payments_latency, seed));
        server::spawn(
            listener,
            move |req| {
                let service = Arc::clone(&service);
                async move { service.handle(req).await }
            },
            shutdown.clone(),
            tracker,
        );

        // The canary hop draws from its own stream, so adding or removing
        // canary traffic does not change the stable hop's random decisions.
        let payments_hop = hop(PAYMENTS_HOP, payments, seed, shutdown, tracker).await?;
        let payments_canary_hop = hop(
            CANARY_HOP,
            payments,
            seed.wrapping_add(1),
            shutdown,
            tracker,
        )
        .await?;

        let backup = match &opts.failover {
            Some(_) => {
                let (listener, addr) = bind("payments-backup", 0).await?;
                let service = Arc::new(Payments::new(opts.payments_latency, seed.wrapping_add(2)));
                server::spawn(
                    listener,
                    move |req| {
                        let service = Arc::clone(&service);
                        async move { service.handle(req).await }
                    },
                    shutdown.clone(),
                    tracker,
                );
                let hop = hop(BACKUP_HOP, addr, seed.wrapping_add(3), shutdown, tracker).await?;
                Some((addr, hop))
            }
            None => None,
        };

        let now = tokio::time::Instant::now();
        let client =
            |hop: &Proxy| PaymentsClient::new(hop.listen_addr(), opts.payments_timeout, tracker);
        let path = |version, upstream: Upstream| -> Result<PaymentsPath, DemoError> {
            Ok(PaymentsPath::new(
                version,
                upstream,
                opts,
                shutdown.clone(),
                tracker.clone(),
                now,
            ))
        };
        let v1_upstream = match (&opts.failover, &backup) {
            (Some(failover), Some((_, backup_hop))) => {
                let ejection = Ejection::new(*failover, !opts.has(Defect::NoEjection));
                let balancer = Failover::new(client(&payments_hop)?, client(backup_hop)?, ejection);
                Upstream::FailOver(Arc::new(balancer))
            }
            _ => Upstream::Single(Box::new(client(&payments_hop)?)),
        };
        let v1 = path(Version::V1, v1_upstream)?;
        let v2 = path(
            Version::V2,
            Upstream::Single(Box::new(client(&payments_canary_hop)?)),
        )?;
        let canary = Arc::new(Canary::new(
            opts.canary_weight,
            opts.rollback,
            &opts.defects,
            seed,
            now,
        ));
        tracker.spawn(canary::run_rollback_controller(
            Arc::clone(&canary),
            shutdown.clone(),
        ));

        let (listener, frontend) = bind("frontend", frontend_port).await?;
        let service = Arc::new(Frontend::new(v1, v2, canary));
        server::spawn(
            listener,
            move |req| {
                let service = Arc::clone(&service);
                async move { service.handle(req).await }
            },
            shutdown.clone(),
            tracker,
        );

        Ok(DemoSystem {
            frontend,
            payments,
            payments_hop,
            payments_canary_hop,
            backup,
            opts: opts.clone(),
            seed,
            tracker: tracker.clone(),
        })
    }

    /// The base URL of the frontend, e.g. `http://127.0.0.1:40123`.
    pub fn frontend_url(&self) -> String {
        format!("http://{}", self.frontend)
    }

    /// The hops the harness may inject faults into: [`PAYMENTS_HOP`], then
    /// [`CANARY_HOP`], then (with `failover`) [`BACKUP_HOP`].
    pub fn proxies(&self) -> Vec<Proxy> {
        let mut hops = vec![self.payments_hop.clone(), self.payments_canary_hop.clone()];
        hops.extend(self.backup.iter().map(|(_, hop)| hop.clone()));
        hops
    }

    /// Waits until every task of the system has finished. Only returns after
    /// the shutdown token given to [`DemoSystem::start`] has been cancelled.
    pub async fn stopped(self) {
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// A human-readable map of the running system with example commands.
    pub fn describe(&self) -> String {
        let frontend = self.frontend_url();
        let hop_line = |hop: &Proxy| {
            format!(
                "{} -> {}  (proxy `{}`)",
                hop.listen_addr(),
                hop.upstream(),
                hop.name()
            )
        };
        let defects = if self.opts.defects.is_empty() {
            "none".to_string()
        } else {
            let keys: Vec<&str> = self.opts.defects.iter().map(|d| d.key()).collect();
            keys.join(", ")
        };
        format!(
            "faultline demo system (seed {seed})\n\
             \n  frontend       {frontend}\
             \n  payments hop   {stable}\
             \n  canary hop     {canary}\
             {backup}\
             \n  payments       http://{payments}\
             \n  canary weight  {weight}% of /checkout to v2 (at start)\
             \n  defects        {defects}\n\
             \ntry:\
             \n  curl -i {frontend}/checkout\
             \n  curl -i {frontend}/health\
             \n  curl -s {frontend}/admin/breaker\
             \n  curl -s {frontend}/admin/canary\
             \n  curl -s -X PUT -d '{{\"weight\": 0.5}}' {frontend}/admin/canary\
             \n  curl -s {frontend}/metrics\
             \n  curl -i -X POST http://{payments}/pay     # payments directly, bypassing the hops\n\
             \nCtrl-C stops the demo.",
            seed = self.seed,
            stable = hop_line(&self.payments_hop),
            canary = hop_line(&self.payments_canary_hop),
            backup = match &self.backup {
                Some((addr, hop)) => format!(
                    "\n  backup hop     {}  (fail-over of v1)\n  backup         http://{addr}",
                    hop_line(hop)
                ),
                None => String::new(),
            },
            payments = self.payments,
            // One decimal: 0.1 × 100 is not exactly 10 in binary.
            weight = (self.opts.canary_weight * 1000.0).round() / 10.0,
        )
    }
}

/// Starts an HTTP-mode hop named `name` in front of `upstream`.
async fn hop(
    name: &str,
    upstream: SocketAddr,
    seed: u64,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Result<Proxy, DemoError> {
    let config = ProxyConfig {
        name: name.to_string(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        upstream,
        // HTTP mode, so that HTTP faults work on the demo's hops; TCP
        // toxics work as well (they act on the client-facing bytes).
        mode: ProxyMode::Http,
        seed,
    };
    Ok(Proxy::start(config, shutdown.clone(), tracker).await?)
}

/// Binds `port` (0: an ephemeral one) on loopback for `service`.
async fn bind(service: &'static str, port: u16) -> Result<(TcpListener, SocketAddr), DemoError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|source| DemoError::Bind { service, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DemoError::Bind { service, source })?;
    Ok((listener, addr))
}
