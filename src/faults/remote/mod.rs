//! Faults applied on another host by `faultline agent`: their wire form,
//! shared by the agent server and the harness.
//!
//! - this file: [`RemoteSpec`], a fault as it travels;
//! - `spec`: a spec checked against the host's bounds, built into a
//!   [`Fault`](crate::faults::Fault) (the agent's registry), and described;
//! - `wire`: the request and response bodies of the agent API;
//! - `client`: [`AgentClient`] and [`AgentFault`], the harness side: a
//!   remote fault is a [`Fault`](crate::faults::Fault) like any other.
//!
//! The agent (`crate::agent`) is only the server: it depends on this
//! module, never the other way round.

use serde::{Deserialize, Serialize};

pub mod client;
pub mod spec;
pub mod wire;

pub use client::{AgentClient, AgentClientError, AgentFault};

/// A fault to apply on an agent's host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RemoteSpec {
    /// `load` (0..=1) of each of `cores` cores (all when absent).
    Cpu {
        load: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cores: Option<usize>,
    },
    /// Allocate and touch `bytes`, ramped over `ramp_ms`.
    Memory {
        bytes: u64,
        #[serde(default)]
        ramp_ms: u64,
        /// Past the agent host's memory bound; refused unless the agent
        /// runs with `--allow-force`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Send `signal` (`TERM`, `KILL`, `STOP`, `CONT`) to a process by
    /// `pidfile` or exact `name`.
    Kill {
        signal: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pidfile: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// Run `run` now and `rollback` on removal.
    Command {
        run: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rollback: Option<String>,
        timeout_ms: u64,
    },
}
