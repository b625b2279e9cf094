//! The embedded demo system: `frontend → payments hop → payments`, all on
//! 127.0.0.1 with ephemeral ports, in-process.
//!
//! It gives experiments a real dependency chain to break without installing
//! anything. The frontend reaches payments only through the [`Proxy`] hop
//! named `payments`, so every fault injected there is felt by `/checkout`.
//!
//! - `server`: the HTTP/1.1 serve loop, also used by the integration tests' fixtures.
//! - `payments`: the dependency, with a seeded, jittered service time.
//! - `payments_client`: how the frontend calls payments (the seam for breaker and canary).
//! - `frontend`: `/checkout` and `/health`, mapping payments failures to 502/504.
//! - `foreground`: `faultline demo`, the system run until a signal.
//!
//! The demo stands alone: it uses the proxy and the config model, nothing else.

mod foreground;
pub mod frontend;
pub mod payments;
pub mod payments_client;
/// The HTTP server loop the demo services run on (shared with the admin API).
pub use crate::server;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::model::DemoOptions;
use crate::proxy::{Proxy, ProxyConfig, ProxyError, ProxyMode};

pub use foreground::run_foreground;

use frontend::Frontend;
use payments::Payments;
use payments_client::PaymentsClient;

/// The name of the hop in front of payments; faults address it by this name.
pub const PAYMENTS_HOP: &str = "payments";

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
    /// Payments itself, bypassing the hop (for probes and curl, not the frontend).
    pub payments: SocketAddr,
    /// The hop the frontend's payment calls go through.
    pub payments_hop: Proxy,
    seed: u64,
    tracker: TaskTracker,
}

impl DemoSystem {
    /// Starts payments, its hop and the frontend; returns once all listen.
    ///
    /// `seed` drives payments' latency jitter and the hop's random decisions
    /// (toxicity, jitter, HTTP fault probabilities). On error, whatever had started
    /// is stopped before returning.
    pub async fn start(
        opts: &DemoOptions,
        seed: u64,
        shutdown: CancellationToken,
    ) -> Result<DemoSystem, DemoError> {
        // A child token, so that a failed start can stop its own tasks
        // without cancelling the caller's token.
        let shutdown = shutdown.child_token();
        let tracker = TaskTracker::new();
        match Self::spawn_services(opts, seed, &shutdown, &tracker).await {
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
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<DemoSystem, DemoError> {
        let (listener, payments) = bind("payments").await?;
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

        let hop_config = ProxyConfig {
            name: PAYMENTS_HOP.to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream: payments,
            // HTTP mode, so that HTTP faults work on the demo's hop; TCP
            // toxics work as well (they act on the client-facing bytes).
            mode: ProxyMode::Http,
            seed,
        };
        let payments_hop = Proxy::start(hop_config, shutdown.clone(), tracker).await?;

        let client =
            PaymentsClient::new(payments_hop.listen_addr(), opts.payments_timeout, tracker)?;
        let (listener, frontend) = bind("frontend").await?;
        let service = Arc::new(Frontend::new(client));
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
            seed,
            tracker: tracker.clone(),
        })
    }

    /// The base URL of the frontend, e.g. `http://127.0.0.1:40123`.
    pub fn frontend_url(&self) -> String {
        format!("http://{}", self.frontend)
    }

    /// The hops the harness may inject faults into.
    pub fn proxies(&self) -> Vec<Proxy> {
        vec![self.payments_hop.clone()]
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
        let hop = &self.payments_hop;
        format!(
            "faultline demo system (seed {seed})\n\
             \n  frontend       {frontend}\
             \n  payments hop   {hop_addr} -> {upstream}  (proxy `{hop_name}`)\
             \n  payments       http://{payments}\n\
             \ntry:\
             \n  curl -i {frontend}/checkout\
             \n  curl -i {frontend}/health\
             \n  curl -i -X POST http://{payments}/pay     # payments directly, bypassing the hop\n\
             \nCtrl-C stops the demo.",
            seed = self.seed,
            hop_addr = hop.listen_addr(),
            upstream = hop.upstream(),
            hop_name = hop.name(),
            payments = self.payments,
        )
    }
}

/// Binds an ephemeral port on loopback for `service`.
async fn bind(service: &'static str) -> Result<(TcpListener, SocketAddr), DemoError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .map_err(|source| DemoError::Bind { service, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| DemoError::Bind { service, source })?;
    Ok((listener, addr))
}
