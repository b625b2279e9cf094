//! [`Proxy`]: the handle the harness holds for one running hop.
//!
//! The handle and the accept loop share one [`Shared`]; connections only
//! ever see it through [`Shared::admit`], which hands out the cancellation
//! token that disabling the hop fires.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::stats::{Counters, ProxyStats};
use super::{listener, ProxyConfig, ProxyError};

/// A running proxy hop. Cheap to clone; every clone controls the same hop.
///
/// The hop stops when the `shutdown` token given to [`Proxy::start`] is
/// cancelled; it has stopped once the tracker given there has no tasks left.
#[derive(Debug, Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

/// State shared by the handle, the accept loop and the links.
#[derive(Debug)]
pub(super) struct Shared {
    pub name: String,
    /// The bound address (port 0 already resolved).
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
    pub counters: Counters,
    gate: Mutex<Gate>,
}

/// Whether new connections are admitted, and the token of the admitted ones.
///
/// Both live under one lock so that a connection admitted just before the hop
/// is disabled cannot pick up the fresh token of the next enabled period and
/// survive the switch.
#[derive(Debug)]
struct Gate {
    enabled: bool,
    /// Cancelled when the hop is disabled; a child of the shutdown token, so
    /// shutdown ends every link too.
    links: CancellationToken,
    shutdown: CancellationToken,
}

impl Proxy {
    /// Binds `cfg.listen` and spawns the accept loop on `tracker`.
    ///
    /// Every task of the hop (the loop and one per connection) goes on
    /// `tracker` and ends after `shutdown` is cancelled.
    pub async fn start(
        cfg: ProxyConfig,
        shutdown: CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<Proxy, ProxyError> {
        let listener = TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| ProxyError::Bind {
                name: cfg.name.clone(),
                addr: cfg.listen,
                source,
            })?;
        let listen = listener
            .local_addr()
            .map_err(|source| ProxyError::LocalAddr {
                name: cfg.name.clone(),
                source,
            })?;
        let shared = Arc::new(Shared {
            name: cfg.name,
            listen,
            upstream: cfg.upstream,
            counters: Counters::default(),
            gate: Mutex::new(Gate {
                enabled: true,
                links: shutdown.child_token(),
                shutdown: shutdown.clone(),
            }),
        });
        tracker.spawn(listener::run(
            listener,
            Arc::clone(&shared),
            shutdown,
            tracker.clone(),
        ));
        Ok(Proxy { shared })
    }

    /// The hop's name, e.g. `payments`.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The address clients connect to (the real port when started with port 0).
    pub fn listen_addr(&self) -> SocketAddr {
        self.shared.listen
    }

    /// Where connections are forwarded.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// A snapshot of the live counters.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Whether the hop currently forwards new connections.
    pub fn is_enabled(&self) -> bool {
        self.shared.gate().enabled
    }

    /// Disabled is Toxiproxy's "down": existing connections are closed and new
    /// ones are accepted and closed at once (so clients see a reset or EOF,
    /// not a hang). Enabling again admits new connections; closed ones stay closed.
    pub fn set_enabled(&self, enabled: bool) {
        let mut gate = self.shared.gate();
        if enabled && !gate.enabled {
            gate.links = gate.shutdown.child_token();
        } else if !enabled {
            gate.links.cancel();
        }
        gate.enabled = enabled;
    }
}

impl Shared {
    /// The token a new connection runs under, or `None` when the hop is disabled.
    pub fn admit(&self) -> Option<CancellationToken> {
        let gate = self.gate();
        gate.enabled.then(|| gate.links.clone())
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        // Nothing panics while holding the lock, but if something ever did the
        // gate's two fields would still be consistent, so poison is harmless.
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
