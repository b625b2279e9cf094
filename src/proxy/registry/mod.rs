//! [`ProxyRegistry`]: the named proxies of `faultline proxy`, as Toxiproxy's
//! proxy collection manages them.
//!
//! Every change goes through one async lock, so admin requests apply one at
//! a time and each one either happens in full or not at all: a restart that
//! fails puts the previous proxy back, a `populate` that fails undoes what
//! it had done. Each proxy runs under its own child cancellation token and
//! task tracker, so deleting one stops exactly that one, and "stopped" means
//! its tasks have ended and its port is free again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::spec::{HttpFaultSpec, ToxicSpec};
use super::{Proxy, ProxyConfig, ProxyError, ProxyMode, ProxyStats, ToxicError};

/// How long to wait for a stopped proxy's tasks. Links end as soon as their
/// token is cancelled, so this only bounds a misbehaving task: the admin
/// API must keep answering.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// What a proxy should be: the validated body of a create or populate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyDef {
    /// Unique; addresses the proxy in every path.
    pub name: String,
    /// `host:port` to listen on; port 0 picks a free port.
    pub listen: String,
    /// `host:port` to forward to, resolved when the proxy starts.
    pub upstream: String,
    /// Disabled proxies refuse every connection: the port is closed (Toxiproxy's "down").
    pub enabled: bool,
    pub mode: ProxyMode,
}

/// A change to a running proxy; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxyPatch {
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
}

/// A snapshot of one proxy, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyInfo {
    pub name: String,
    /// The bound address (never port 0).
    pub listen: SocketAddr,
    /// The upstream as it was given (`host:port`), as Toxiproxy shows it.
    pub upstream: String,
    pub enabled: bool,
    pub mode: ProxyMode,
    pub toxics: Vec<ToxicSpec>,
    pub http_faults: Vec<HttpFaultSpec>,
    /// The live counters (a faultline extension of Toxiproxy's proxy JSON).
    pub stats: ProxyStats,
}

/// Why a registry operation was refused. Nothing was changed when one is returned,
/// except for [`RegistryError::Lost`].
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("proxy `{0}` not found")]
    NotFound(String),
    #[error("proxy `{0}` already exists")]
    Exists(String),
    #[error("invalid proxy name {0:?}: it must be non-empty and contain no `/`")]
    Name(String),
    #[error(
        "the proxy name is {0} bytes; at most {max} are allowed",
        max = crate::proxy::spec::MAX_NAME_BYTES
    )]
    NameTooLong(usize),
    #[error("{field} `{value}`: {reason}")]
    Address {
        field: &'static str,
        value: String,
        reason: String,
    },
    #[error("proxy `{0}` appears more than once")]
    Duplicate(String),
    #[error(transparent)]
    Start(ProxyError),
    #[error(transparent)]
    Toxic(ToxicError),
    /// A restart failed and so did putting the old proxy back: the proxy is
    /// gone (removed from the registry) and says why.
    #[error("{cause}; restoring proxy `{name}` failed too, so it was removed: {restore}")]
    Lost {
        name: String,
        cause: Box<RegistryError>,
        restore: ProxyError,
    },
}

/// The named proxies of one admin server.
#[derive(Debug)]
pub struct ProxyRegistry {
    proxies: Mutex<BTreeMap<String, Entry>>,
    seed: u64,
    /// Parent of every proxy's own token.
    shutdown: CancellationToken,
    /// Holds one waiter per proxy, so waiting for it covers every proxy task.
    tracker: TaskTracker,
}

#[derive(Debug)]
struct Entry {
    /// As given, for display; `running` holds the resolved address.
    upstream: String,
    running: Running,
}

/// One started proxy and what is needed to stop it.
#[derive(Debug)]
struct Running {
    proxy: Proxy,
    /// A child of the registry's token: cancelling it stops only this proxy.
    stop: CancellationToken,
    /// This proxy's tasks (accept loop, links); closed at start, so it is
    /// empty exactly when the proxy has stopped.
    tasks: TaskTracker,
}

impl Running {
    /// Stops the proxy and waits until its tasks have ended (its port is closed then).
    async fn stop(&self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(STOP_TIMEOUT, self.tasks.wait()).await;
    }
}

impl Drop for Running {
    /// A proxy dropped from the registry by any path stops; waiting is the
    /// job of [`Running::stop`].
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// What carries over when a proxy restarts: its toxics, HTTP faults and switch.
#[derive(Debug, Clone)]
struct State {
    toxics: Vec<ToxicSpec>,
    http_faults: Vec<HttpFaultSpec>,
    enabled: bool,
}

impl State {
    fn of(proxy: &Proxy) -> State {
        State {
            toxics: proxy.toxics(),
            http_faults: proxy.http_faults(),
            enabled: proxy.is_enabled(),
        }
    }

    fn fresh(enabled: bool) -> State {
        State {
            toxics: Vec::new(),
            http_faults: Vec::new(),
            enabled,
        }
    }

    fn apply(&self, proxy: &Proxy) -> Result<(), RegistryError> {
        for toxic in &self.toxics {
            proxy
                .add_toxic(toxic.clone())
                .map_err(RegistryError::Toxic)?;
        }
        for fault in &self.http_faults {
            proxy
                .add_http_fault(fault.clone())
                .map_err(RegistryError::Toxic)?;
        }
        proxy
            .set_enabled(self.enabled)
            .map_err(RegistryError::Start)
    }
}

/// A proxy's addresses, resolved.
#[derive(Debug, Clone, Copy)]
struct Addrs {
    listen: SocketAddr,
    upstream: SocketAddr,
    mode: ProxyMode,
}

/// One step of a `populate`, undone in reverse if a later step fails.
enum Undo {
    Created(String),
    Replaced {
        name: String,
        upstream: String,
        addrs: Addrs,
        state: State,
    },
}

impl ProxyRegistry {
    /// An empty registry. Proxies stop when `shutdown` is cancelled; a waiter
    /// per proxy goes on `tracker`, so `tracker.wait()` covers them all.
    /// `seed` is mixed with each proxy's name to give every proxy its own,
    /// reproducible random sequence.
    pub fn new(seed: u64, shutdown: CancellationToken, tracker: TaskTracker) -> ProxyRegistry {
        ProxyRegistry {
            proxies: Mutex::new(BTreeMap::new()),
            seed,
            shutdown,
            tracker,
        }
    }

    /// Every proxy, by name.
    pub async fn list(&self) -> Vec<ProxyInfo> {
        let proxies = self.proxies.lock().await;
        proxies.values().map(Entry::info).collect()
    }

    /// One proxy.
    pub async fn get(&self, name: &str) -> Result<ProxyInfo, RegistryError> {
        let proxies = self.proxies.lock().await;
        proxies
            .get(name)
            .map(Entry::info)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))
    }

    /// Runs `f` on a proxy's handle while no other change can happen, so a
    /// toxic added here cannot race a restart and be lost.
    pub async fn with_proxy<T>(
        &self,
        name: &str,
        f: impl FnOnce(&Proxy) -> T,
    ) -> Result<T, RegistryError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies
            .get(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        Ok(f(&entry.running.proxy))
    }

    /// Starts a new proxy (`Exists` if the name is taken; a bind failure is `Start`).
    pub async fn create(&self, def: ProxyDef) -> Result<ProxyInfo, RegistryError> {
        check_name(&def.name)?;
        let addrs = resolve_def(&def).await?;
        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&def.name) {
            return Err(RegistryError::Exists(def.name));
        }
        let running = self.start(&def.name, addrs).await?;
        running
            .proxy
            .set_enabled(def.enabled)
            .map_err(RegistryError::Start)?;
        let entry = Entry {
            upstream: def.upstream,
            running,
        };
        let info = entry.info();
        proxies.insert(def.name, entry);
        Ok(info)
    }

    /// Changes a proxy. A new listen or upstream address restarts it with its
    /// toxics, HTTP faults and enabled switch kept, as Toxiproxy does.
    pub async fn update(&self, name: &str, patch: ProxyPatch) -> Result<ProxyInfo, RegistryError> {
        let listen = match &patch.listen {
            Some(l) => Some(resolve("listen", l).await?),
            None => None,
        };
        let upstream = match &patch.upstream {
            Some(u) => Some(resolve("upstream", u).await?),
            None => None,
        };
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .get_mut(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        let current = entry.addrs();
        let wanted = Addrs {
            // Port 0 asks for a fresh port, so it never equals the bound address.
            listen: listen.unwrap_or(current.listen),
            upstream: upstream.unwrap_or(current.upstream),
            mode: current.mode,
        };
        if wanted.listen != current.listen || wanted.upstream != current.upstream {
            let state = State::of(&entry.running.proxy);
            if let Err(e) = self
                .relaunch(name, entry, wanted, &state, current, &state)
                .await
            {
                if matches!(e, RegistryError::Lost { .. }) {
                    proxies.remove(name);
                }
                return Err(e);
            }
        }
        if let Some(u) = patch.upstream {
            entry.upstream = u;
        }
        if let Some(enabled) = patch.enabled {
            // Only enabling can fail (the port was taken while down).
            entry
                .running
                .proxy
                .set_enabled(enabled)
                .map_err(RegistryError::Start)?;
        }
        Ok(entry.info())
    }

    /// Stops and removes a proxy; returns once its port is closed.
    pub async fn delete(&self, name: &str) -> Result<(), RegistryError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies
            .remove(name)
            .ok_or_else(|| RegistryError::NotFound(name.to_string()))?;
        entry.running.stop().await;
        Ok(())
    }

    /// Toxiproxy's `/populate`: creates each proxy, replaces one whose
    /// addresses differ (dropping its toxics, as Toxiproxy does) and keeps
    /// one that already matches. Proxies not named are left alone. All or
    /// nothing: on a failure every step already taken is undone.
    pub async fn populate(&self, defs: Vec<ProxyDef>) -> Result<Vec<ProxyInfo>, RegistryError> {
        let mut resolved = Vec::with_capacity(defs.len());
        for (i, def) in defs.iter().enumerate() {
            check_name(&def.name)?;
            if defs[..i].iter().any(|d| d.name == def.name) {
                return Err(RegistryError::Duplicate(def.name.clone()));
            }
            resolved.push(resolve_def(def).await?);
        }
        let mut proxies = self.proxies.lock().await;
        let mut undo = Vec::new();
        let mut result = Vec::with_capacity(defs.len());
        for (def, addrs) in defs.into_iter().zip(resolved) {
            match self.populate_one(&mut proxies, def, addrs, &mut undo).await {
                Ok(info) => result.push(info),
                Err(e) => return Err(self.undo(&mut proxies, undo, e).await),
            }
        }
        Ok(result)
    }

    /// Every proxy enabled, every toxic and HTTP fault removed (Toxiproxy's
    /// `/reset`). Every proxy is reset even when one cannot listen again;
    /// the first such failure is returned.
    pub async fn reset(&self) -> Result<(), RegistryError> {
        let proxies = self.proxies.lock().await;
        let mut first = Ok(());
        for entry in proxies.values() {
            if let Err(e) = entry.running.proxy.reset() {
                first = first.and(Err(RegistryError::Start(e)));
            }
        }
        first
    }

    /// Stops every proxy and waits for their tasks; the registry is empty afterwards.
    pub async fn shutdown(&self) {
        let mut proxies = self.proxies.lock().await;
        let entries = std::mem::take(&mut *proxies);
        // Cancel all first so they wind down together, then wait for each.
        for entry in entries.values() {
            entry.running.stop.cancel();
        }
        for entry in entries.values() {
            entry.running.stop().await;
        }
    }

    async fn populate_one(
        &self,
        proxies: &mut BTreeMap<String, Entry>,
        def: ProxyDef,
        addrs: Addrs,
        undo: &mut Vec<Undo>,
    ) -> Result<ProxyInfo, RegistryError> {
        let Some(entry) = proxies.get_mut(&def.name) else {
            let running = self.start(&def.name, addrs).await?;
            running
                .proxy
                .set_enabled(def.enabled)
                .map_err(RegistryError::Start)?;
            let entry = Entry {
                upstream: def.upstream,
                running,
            };
            let info = entry.info();
            proxies.insert(def.name.clone(), entry);
            undo.push(Undo::Created(def.name));
            return Ok(info);
        };
        let current = entry.addrs();
        let same = current.listen == addrs.listen
            && current.upstream == addrs.upstream
            && current.mode == addrs.mode
            && entry.upstream == def.upstream;
        if same {
            return Ok(entry.info());
        }
        let old_state = State::of(&entry.running.proxy);
        let fresh = State::fresh(def.enabled);
        if let Err(e) = self
            .relaunch(&def.name, entry, addrs, &fresh, current, &old_state)
            .await
        {
            if matches!(e, RegistryError::Lost { .. }) {
                proxies.remove(&def.name);
            }
            return Err(e);
        }
        let old_upstream = std::mem::replace(&mut entry.upstream, def.upstream);
        undo.push(Undo::Replaced {
            name: def.name,
            upstream: old_upstream,
            addrs: current,
            state: old_state,
        });
        Ok(entry.info())
    }

    /// Undoes populate steps in reverse; returns the error to report.
    async fn undo(
        &self,
        proxies: &mut BTreeMap<String, Entry>,
        steps: Vec<Undo>,
        cause: RegistryError,
    ) -> RegistryError {
        let mut report = cause;
        for step in steps.into_iter().rev() {
            match step {
                Undo::Created(name) => {
                    if let Some(entry) = proxies.remove(&name) {
                        entry.running.stop().await;
                    }
                }
                Undo::Replaced {
                    name,
                    upstream,
                    addrs,
                    state,
                } => {
                    let Some(entry) = proxies.get_mut(&name) else {
                        continue;
                    };
                    let now = entry.addrs();
                    let now_state = State::of(&entry.running.proxy);
                    match self
                        .relaunch(&name, entry, addrs, &state, now, &now_state)
                        .await
                    {
                        Ok(()) => entry.upstream = upstream,
                        Err(RegistryError::Lost { restore, .. }) => {
                            proxies.remove(&name);
                            report = RegistryError::Lost {
                                name,
                                cause: Box::new(report),
                                restore,
                            };
                        }
                        // The new proxy is still in place (the old one could
                        // not be started again, but nothing was lost).
                        Err(_) => {}
                    }
                }
            }
        }
        report
    }

    /// Replaces `entry`'s proxy with one on `wanted` carrying `state`. On
    /// failure the entry runs `previous` with `previous_state` again (or,
    /// when even that fails, [`RegistryError::Lost`]; the caller removes it).
    async fn relaunch(
        &self,
        name: &str,
        entry: &mut Entry,
        wanted: Addrs,
        state: &State,
        previous: Addrs,
        previous_state: &State,
    ) -> Result<(), RegistryError> {
        let same_port = wanted.listen.port() != 0 && wanted.listen.port() == previous.listen.port();
        if !same_port {
            // Start the new one first: on failure the old one was never touched.
            let new = self.start(name, wanted).await?;
            if let Err(e) = state.apply(&new.proxy) {
                new.stop().await;
                return Err(e);
            }
            let old = std::mem::replace(&mut entry.running, new);
            old.stop().await;
            return Ok(());
        }
        // The same port: the old listener has to go before the new one binds.
        entry.running.stop().await;
        let cause = match self.start(name, wanted).await {
            Ok(new) => match state.apply(&new.proxy) {
                Ok(()) => {
                    entry.running = new;
                    return Ok(());
                }
                Err(e) => {
                    new.stop().await;
                    e
                }
            },
            Err(e) => e,
        };
        match self.start(name, previous).await {
            Ok(back) => {
                // The same specs were accepted a moment ago.
                let _ = previous_state.apply(&back.proxy);
                entry.running = back;
                Err(cause)
            }
            Err(RegistryError::Start(restore)) => Err(RegistryError::Lost {
                name: name.to_string(),
                cause: Box::new(cause),
                restore,
            }),
            Err(other) => Err(other),
        }
    }

    /// Starts one proxy under its own token and tracker.
    async fn start(&self, name: &str, addrs: Addrs) -> Result<Running, RegistryError> {
        let stop = self.shutdown.child_token();
        let tasks = TaskTracker::new();
        let config = ProxyConfig {
            name: name.to_string(),
            listen: addrs.listen,
            upstream: addrs.upstream,
            mode: addrs.mode,
            seed: self.seed ^ fnv1a(name),
        };
        let started = Proxy::start(config, stop.clone(), &tasks).await;
        tasks.close();
        let proxy = match started {
            Ok(proxy) => proxy,
            Err(e) => {
                stop.cancel();
                return Err(RegistryError::Start(e));
            }
        };
        let waiter = tasks.clone();
        self.tracker.spawn(async move { waiter.wait().await });
        Ok(Running { proxy, stop, tasks })
    }
}

impl Entry {
    fn info(&self) -> ProxyInfo {
        let proxy = &self.running.proxy;
        ProxyInfo {
            name: proxy.name().to_string(),
            listen: proxy.listen_addr(),
            upstream: self.upstream.clone(),
            enabled: proxy.is_enabled(),
            mode: proxy.mode(),
            toxics: proxy.toxics(),
            http_faults: proxy.http_faults(),
            stats: proxy.stats(),
        }
    }

    fn addrs(&self) -> Addrs {
        let proxy = &self.running.proxy;
        Addrs {
            listen: proxy.listen_addr(),
            upstream: proxy.upstream(),
            mode: proxy.mode(),
        }
    }
}

mod names;
#[cfg(test)]
mod tests;

use names::{check_name, fnv1a, resolve, resolve_def};
