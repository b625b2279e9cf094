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
pub mod ledger;

use crate::config::model::FaultSpec;
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
}

/// The registry: builds a fault from its spec.
pub fn build(spec: &FaultSpec) -> Box<dyn Fault> {
    match spec {
        FaultSpec::Command(c) => Box::new(command::CommandAction::new(c.clone())),
    }
}
