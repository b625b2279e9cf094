//! The JSON bodies of the agent API, shared by the server and the client
//! (documented in `openapi-agent.yaml`). Keys are snake_case; durations are
//! seconds as numbers (`lease_s`).

use serde::{Deserialize, Serialize};

use crate::faults::remote::RemoteSpec;
use crate::faults::Evidence;

/// `POST /faults`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApplyRequest {
    pub spec: RemoteSpec,
    /// The lease in seconds; the agent's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<f64>,
}

/// `POST /faults/{id}/renew` (the body is optional).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    /// The new lease in seconds, from now; the fault's current lease length when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_s: Option<f64>,
}

/// One fault the agent holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultInfo {
    /// Unique for the life of the agent process, and across restarts.
    pub id: String,
    /// The spec's `type`.
    pub kind: String,
    /// `cpu 80% on 1 core`.
    pub description: String,
    pub spec: RemoteSpec,
    /// The lease length: what a renewal without `lease_s` extends it by.
    pub lease_s: f64,
    /// Seconds until the agent removes the fault unless it is renewed.
    pub lease_expires_in_s: f64,
    /// What applying did (command output, child pids, ...): in the answer
    /// to `POST /faults` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

/// `GET /faults`: oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultList {
    pub faults: Vec<FaultInfo>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok` when the agent answers.
    pub status: String,
    /// faultline's version on the agent host.
    pub version: String,
    /// How many faults the agent holds.
    pub faults: usize,
}
