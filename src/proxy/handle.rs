//! [`Proxy`]: the handle the harness holds for one running hop.
//!
//! The handle and the accept loop share one [`Shared`]; connections only
//! ever see it through [`Shared::admit`], which hands out the cancellation
//! token that disabling the hop fires, and through the toxic list, which
//! every connection watches so that changes reach live connections.
//!
//! The listening socket lives in the same lock as the enabled switch:
//! disabling the hop closes it there and then (connects are refused, as by a
//! stopped process or Toxiproxy's `enabled: false`), and enabling binds the
//! same address again before returning; the accept loop polls whatever
//! socket the lock holds ([`Shared::poll_accept`]).

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::http::HttpState;
use super::spec::{HttpFaultSpec, SpecError, ToxicSpec};
use super::stats::{Counters, ProxyStats};
use super::syn_count::SynCounter;
use super::timer::PreciseTimer;
use super::{listener, ProxyConfig, ProxyError};

/// What a hop speaks on its client side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyMode {
    /// Bytes only: toxics apply, HTTP faults are refused.
    #[default]
    Tcp,
    /// HTTP/1.1: toxics apply to the client-facing bytes, and HTTP faults to
    /// each request.
    Http,
}

/// Why a toxic or HTTP fault could not be added, changed or removed.
///
/// The messages start like Toxiproxy's (`toxic already exists`, `toxic not
/// found`) so admin API errors read the same.
#[derive(Debug, thiserror::Error)]
pub enum ToxicError {
    /// The name is taken on this hop (the name).
    #[error("toxic already exists: `{0}`")]
    Exists(String),
    /// No toxic (or HTTP fault) of that name on this hop (the name).
    #[error("toxic not found: `{0}`")]
    NotFound(String),
    /// HTTP faults on a `mode: tcp` hop (the proxy's name).
    #[error("proxy `{0}` is not in http mode: HTTP faults need `mode: http`")]
    WrongMode(String),
    /// The description itself is invalid.
    #[error(transparent)]
    Invalid(#[from] SpecError),
}

/// The toxics of a hop, both directions, in the order they were added.
/// Replaced whole on every change; connections hold the old one until they
/// look again.
pub(crate) type ToxicList = Arc<Vec<ToxicSpec>>;

/// A running proxy hop. Cheap to clone; every clone controls the same hop.
///
/// The hop stops when the `shutdown` token given to [`Proxy::start`] is
/// cancelled; it has stopped once the tracker given there has no tasks left.
#[derive(Debug, Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

/// State shared by the handle, the accept loop and the links (and, in HTTP
/// mode, `super::http::serve_connection`).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: String,
    /// The bound address (port 0 already resolved).
    pub(crate) listen: SocketAddr,
    pub(crate) upstream: SocketAddr,
    pub(crate) mode: ProxyMode,
    /// The root of each connection's random stream (see `chain::connection_rng`).
    pub(crate) seed: u64,
    pub(crate) counters: Counters,
    /// Watched by every link: a change reaches live connections at once.
    pub(crate) toxics: watch::Sender<ToxicList>,
    /// HTTP faults and the HTTP client (used in HTTP mode only; the fault list
    /// is always empty on a TCP hop).
    pub(crate) http: HttpState,
    /// The clock toxic delays wait on (started on first use).
    pub(crate) timer: PreciseTimer,
    gate: Mutex<Gate>,
}

/// Whether new connections are admitted, the token of the admitted ones,
/// and the listening socket.
///
/// All live under one lock so that a connection admitted just before the hop
/// is disabled cannot pick up the fresh token of the next enabled period and
/// survive the switch, and so that the port is closed exactly while the hop
/// is down.
#[derive(Debug)]
struct Gate {
    enabled: bool,
    /// Cancelled when the hop is disabled; a child of the shutdown token, so
    /// shutdown ends every link too.
    links: CancellationToken,
    shutdown: CancellationToken,
    socket: Socket,
    /// The accept loop's waker, woken when `socket` changes.
    waker: Option<Waker>,
    /// Counts refused connects while the hop is down, where it can.
    syn: Option<SynCounter>,
}

/// The hop's listening socket.
#[derive(Debug)]
enum Socket {
    /// Down or stopped: connects are refused by the kernel.
    Closed,
    /// Bound and listening (connects queue in its backlog) by
    /// [`Proxy::set_enabled`], not yet registered with the accept loop's
    /// runtime, which [`Shared::poll_accept`] does on its next poll.
    Bound(std::net::TcpListener),
    Listening(TcpListener),
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
            mode: cfg.mode,
            seed: cfg.seed,
            counters: Counters::default(),
            toxics: watch::Sender::new(Arc::new(Vec::new())),
            http: HttpState::new(cfg.upstream, cfg.seed),
            timer: PreciseTimer::default(),
            gate: Mutex::new(Gate {
                enabled: true,
                links: shutdown.child_token(),
                shutdown: shutdown.clone(),
                socket: Socket::Listening(listener),
                waker: None,
                syn: None,
            }),
        });
        tracker.spawn(listener::run(
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

    /// Plain TCP or HTTP.
    pub fn mode(&self) -> ProxyMode {
        self.shared.mode
    }

    /// A snapshot of the live counters.
    pub fn stats(&self) -> ProxyStats {
        self.shared.counters.snapshot()
    }

    /// Whether the hop currently forwards new connections.
    pub fn is_enabled(&self) -> bool {
        self.shared.gate().enabled
    }

    /// Disabled is Toxiproxy's "down" (`enabled: false`): the listener is
    /// closed, so connects are refused (ECONNREFUSED, as from a stopped
    /// process), and live connections are closed. Enabling listens again on
    /// the same address (the same port when it was bound to port 0) before
    /// returning; closed connections stay closed.
    ///
    /// While down, refused connects are counted where the hop can see them
    /// (see [`ProxyStats::refused_connects`]). Fails only when enabling
    /// cannot bind the address again (another socket took the port); the hop
    /// then stays down.
    pub fn set_enabled(&self, enabled: bool) -> Result<(), ProxyError> {
        let shared = &self.shared;
        let mut gate = shared.gate();
        if enabled == gate.enabled {
            return Ok(());
        }
        if enabled {
            // Stopped first, so no SYN to the new listener is counted as refused.
            if let Some(syn) = gate.syn.take() {
                syn.stop();
            }
            if !gate.shutdown.is_cancelled() {
                match bind_again(shared.listen) {
                    Ok(listener) => gate.socket = Socket::Bound(listener),
                    Err(source) => {
                        gate.syn = shared.count_refused();
                        return Err(ProxyError::Bind {
                            name: shared.name.clone(),
                            addr: shared.listen,
                            source,
                        });
                    }
                }
            }
            gate.links = gate.shutdown.child_token();
        } else {
            // Dropping the listener closes the port (and resets connects
            // still waiting in its backlog).
            gate.socket = Socket::Closed;
            gate.links.cancel();
            if !gate.shutdown.is_cancelled() {
                gate.syn = shared.count_refused();
            }
        }
        gate.enabled = enabled;
        if let Some(waker) = &gate.waker {
            waker.wake_by_ref();
        }
        Ok(())
    }

    /// Adds a toxic after the existing ones; it acts on live connections too.
    ///
    /// Fails with [`ToxicError::Exists`] if the name is taken, and with
    /// [`ToxicError::Invalid`] if `toxicity` is outside 0..=1 or the name is empty.
    pub fn add_toxic(&self, spec: ToxicSpec) -> Result<(), ToxicError> {
        check(&spec)?;
        self.edit_toxics(|list| {
            if list.iter().any(|t| t.name == spec.name) {
                return Err(ToxicError::Exists(spec.name));
            }
            list.push(spec);
            Ok(())
        })
    }

    /// Replaces the toxic named `name` in place (same position in the chain).
    ///
    /// `spec.name` may differ from `name` (a rename) unless another toxic has
    /// it. Live connections keep their toxicity decision if `toxicity` is
    /// unchanged; the toxic starts over (a `timeout` timer from the update, a
    /// `reset_peer` waits for data again).
    pub fn update_toxic(&self, name: &str, spec: ToxicSpec) -> Result<(), ToxicError> {
        check(&spec)?;
        self.edit_toxics(|list| {
            let at = list
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| ToxicError::NotFound(name.to_string()))?;
            if spec.name != name && list.iter().any(|t| t.name == spec.name) {
                return Err(ToxicError::Exists(spec.name));
            }
            list[at] = spec;
            Ok(())
        })
    }

    /// Removes the toxic named `name` and returns it. Live connections go
    /// back to normal without losing a byte (what the toxic was holding is
    /// passed on at once, as Toxiproxy does).
    pub fn remove_toxic(&self, name: &str) -> Result<ToxicSpec, ToxicError> {
        self.edit_toxics(|list| {
            let at = list
                .iter()
                .position(|t| t.name == name)
                .ok_or_else(|| ToxicError::NotFound(name.to_string()))?;
            Ok(list.remove(at))
        })
    }

    /// The toxics of both directions, in the order they were added.
    pub fn toxics(&self) -> Vec<ToxicSpec> {
        Vec::clone(&self.shared.toxics.borrow())
    }

    /// Adds an HTTP fault; it applies from the next request on, also on live
    /// keep-alive connections.
    ///
    /// Fails with [`ToxicError::WrongMode`] on a TCP hop, [`ToxicError::Exists`]
    /// if the name is taken, [`ToxicError::Invalid`] if `spec.validate()` fails.
    pub fn add_http_fault(&self, spec: HttpFaultSpec) -> Result<(), ToxicError> {
        if self.shared.mode != ProxyMode::Http {
            return Err(ToxicError::WrongMode(self.shared.name.clone()));
        }
        spec.validate()?;
        self.shared.http.add(spec)
    }

    /// Removes the HTTP fault named `name` and returns it.
    pub fn remove_http_fault(&self, name: &str) -> Result<HttpFaultSpec, ToxicError> {
        self.shared.http.remove(name)
    }

    /// The HTTP faults in evaluation order (always empty on a TCP hop).
    pub fn http_faults(&self) -> Vec<HttpFaultSpec> {
        self.shared.http.list()
    }

    /// Toxiproxy's `POST /reset` for one hop: enabled, with no toxic and no
    /// HTTP fault. The faults are removed even when listening again fails.
    pub fn reset(&self) -> Result<(), ProxyError> {
        self.shared.toxics.send_if_modified(|list| {
            let had_any = !list.is_empty();
            *list = Arc::new(Vec::new());
            had_any
        });
        self.shared.http.clear();
        self.set_enabled(true)
    }

    /// Applies `edit` to a copy of the toxic list and publishes the copy if
    /// `edit` succeeds; connections are only woken by real changes.
    fn edit_toxics<T>(
        &self,
        edit: impl FnOnce(&mut Vec<ToxicSpec>) -> Result<T, ToxicError>,
    ) -> Result<T, ToxicError> {
        let mut outcome = None;
        self.shared.toxics.send_if_modified(|list| {
            let mut next = Vec::clone(list);
            let result = edit(&mut next);
            let changed = result.is_ok() && next != **list;
            if changed {
                *list = Arc::new(next);
            }
            outcome = Some(result);
            changed
        });
        outcome.unwrap_or_else(|| unreachable!("send_if_modified always runs its closure"))
    }
}

/// Listens on `addr` again, synchronously, so the port accepts connects when
/// [`Proxy::set_enabled`] returns. As tokio's `bind` does: `SO_REUSEADDR`
/// (connections of the last period lingering in TIME_WAIT do not block the
/// bind) and a backlog of 1024.
fn bind_again(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// What [`ToxicSpec`] cannot check by itself when built by hand (the JSON
/// and YAML paths check it already).
fn check(spec: &ToxicSpec) -> Result<(), SpecError> {
    if spec.name.is_empty() {
        return Err(SpecError::Invalid("toxic `name` must not be empty".into()));
    }
    if !(0.0..=1.0).contains(&spec.toxicity) {
        return Err(SpecError::Toxicity(spec.toxicity));
    }
    Ok(())
}

impl Shared {
    /// The token a new connection runs under, or `None` when the hop is disabled.
    pub(crate) fn admit(&self) -> Option<CancellationToken> {
        let gate = self.gate();
        gate.enabled.then(|| gate.links.clone())
    }

    /// The accept loop's poll: the next connection from whatever socket the
    /// hop has; pending while it has none (woken when it gets one).
    pub(crate) fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let mut gate = self.gate();
        if !gate.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            gate.waker = Some(cx.waker().clone());
        }
        if matches!(gate.socket, Socket::Bound(_)) {
            // Registered here, on the accept loop's runtime: the handle that
            // bound it may run anywhere.
            if let Socket::Bound(std) = std::mem::replace(&mut gate.socket, Socket::Closed) {
                gate.socket = Socket::Listening(TcpListener::from_std(std)?);
            }
        }
        match &gate.socket {
            Socket::Listening(listener) => listener.poll_accept(cx).map_ok(|(conn, _)| conn),
            Socket::Closed | Socket::Bound(_) => Poll::Pending,
        }
    }

    /// Closes the port for good (the hop is stopping).
    pub(crate) fn close(&self) {
        let mut gate = self.gate();
        gate.socket = Socket::Closed;
        gate.syn = None;
    }

    /// A SYN counter for a down period, or `None` (and the refused connects
    /// marked unobservable) where one cannot run.
    fn count_refused(&self) -> Option<SynCounter> {
        let count = Arc::clone(&self.counters.refused_connects);
        match SynCounter::start(self.listen, count) {
            Ok(counter) => Some(counter),
            Err(e) => {
                tracing::debug!(proxy = %self.name, error = %e, "refused connects are not counted");
                self.counters
                    .refused_unobserved
                    .store(true, Ordering::Relaxed);
                None
            }
        }
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        // Nothing panics while holding the lock, but if something ever did the
        // gate's two fields would still be consistent, so poison is harmless.
        self.gate.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
