//! Faults: one trait, one registry, one ledger.
//!
//! A fault is applied at its phase's start and removed at its phase's end.
//! Adding a fault kind is one file here, one variant of
//! [`crate::config::model::FaultSpec`], one arm in [`build`], one test.
//!
//! Every fault goes through the [`ledger::Ledger`], which records it *before*
//! applying it and removes what it holds in reverse order on every way out:
//! phase end, error, panic, stop condition, signal.

pub mod command;
pub mod journal;
pub mod ledger;
pub mod network;
pub mod remote;
pub mod toxiproxy;

use crate::config::model::FaultSpec;
use network::{ProxyAction, ProxyFault, ProxyTarget};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

pub use ledger::{FaultEvent, Ledger};

/// A boxed future, so the trait stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Free-form evidence of what an action did (exit code, output, ...), kept in the journal.
pub type Evidence = serde_json::Value;

/// Something that degrades the system and can be undone.
pub trait Fault: Send {
    /// The `type` as written in YAML (`command`, `latency`, ...).
    fn kind(&self) -> &'static str;
    /// A one-line description for reports: kind, where, parameters.
    fn describe(&self) -> String;
    /// Starts the fault. Called once.
    fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>>;
    /// Undoes the fault. Must be safe to call after a failed or partial `apply`.
    fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>>;
}

/// Why a fault could not be applied or removed.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    #[error("`{command}` could not be started: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` timed out after {timeout:?}")]
    Timeout {
        command: String,
        timeout: std::time::Duration,
    },
    #[error("`{command}` exited with {status}: {stderr}")]
    CommandFailed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("removing the fault took longer than {0:?}")]
    RemoveTimeout(std::time::Duration),
    #[error("{0}")]
    Proxy(String),
    #[error("no proxy named `{0}` is running")]
    UnknownProxy(String),
}

/// What faults need from the running experiment.
#[derive(Clone, Default)]
pub struct FaultContext {
    /// Proxies by their name in the experiment.
    pub proxies: HashMap<String, ProxyTarget>,
    /// Run-unique prefix for the names of toxics and HTTP faults, so a run
    /// removes only what it added.
    pub run_id: String,
}

/// The proxy action a spec stands for, if it acts on a proxy.
fn proxy_action(spec: &FaultSpec) -> Option<(&str, ProxyAction)> {
    match spec {
        FaultSpec::Command(_) => None,
        FaultSpec::Toxic { proxy, toxic } => Some((proxy, ProxyAction::Toxic(toxic.clone()))),
        FaultSpec::Down { proxy } => Some((proxy, ProxyAction::Down)),
        FaultSpec::Http { proxy, fault } => Some((proxy, ProxyAction::Http(fault.clone()))),
    }
}

/// A one-line description of a fault as written (for plans and reports).
pub fn describe(spec: &FaultSpec) -> String {
    match (spec, proxy_action(spec)) {
        (FaultSpec::Command(c), _) => command::CommandAction::new(c.clone()).describe(),
        (_, Some((proxy, action))) => network::describe_action(proxy, &action),
        (_, None) => String::new(),
    }
}

/// The registry: builds a fault from its spec. `slot` (phase and position)
/// makes the names of toxics and HTTP faults unique within the run.
pub fn build(
    spec: &FaultSpec,
    ctx: &FaultContext,
    slot: &str,
) -> Result<Box<dyn Fault>, FaultError> {
    if let FaultSpec::Command(c) = spec {
        return Ok(Box::new(command::CommandAction::new(c.clone())));
    }
    let Some((proxy, mut action)) = proxy_action(spec) else {
        return Err(FaultError::Proxy("not a proxy fault".into()));
    };
    let target = ctx
        .proxies
        .get(proxy)
        .cloned()
        .ok_or_else(|| FaultError::UnknownProxy(proxy.to_string()))?;
    let name = format!("faultline-{}-{slot}", ctx.run_id);
    match &mut action {
        ProxyAction::Toxic(t) => t.name = name,
        ProxyAction::Http(h) => h.name = name,
        ProxyAction::Down => {}
    }
    Ok(Box::new(ProxyFault::new(proxy.to_string(), target, action)))
}
