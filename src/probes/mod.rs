//! Probes: observations of the system made on the side of the load, judged
//! pass or fail — an HTTP request, an instant PromQL query against a real
//! Prometheus, a shell command, a TCP connect.
//!
//! One file per kind ([`http`], [`prometheus`], [`command`], [`tcp`]) and
//! [`check`] for what they share (judging a value, compiled regexes).
//!
//! A probe never errors and never panics: a probe that cannot connect, times
//! out or reads garbage is an [`Observation`] with `passed: false` and a
//! `reason` a person can act on. The declaration's timeout bounds the whole
//! observation.

pub mod check;
pub mod command;
pub mod http;
pub mod prometheus;
pub mod tcp;

use std::time::{Duration, Instant};

use crate::config::model_verify::{ProbeDecl, ProbeKind};
use crate::config::units::format_duration;

/// What the probes need to know about the run.
#[derive(Debug, Clone, Default)]
pub struct ProbeContext {
    /// The target's base URL, to which relative `http` probe URLs
    /// (`/admin/breaker`) are joined. `None`: relative URLs fail.
    pub target_base: Option<::http::Uri>,
}

/// One observation of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub passed: bool,
    /// What was observed, as text, when anything was: a status, a JSON
    /// value, Prometheus samples, an exit code and the first stdout line.
    pub value: Option<String>,
    /// Why it passed or failed, e.g. `expected status 2xx, got 503`.
    pub reason: String,
    /// From the start of the observation to its verdict.
    pub took: Duration,
}

impl Observation {
    /// A passed observation; `took` is filled in by [`observe`].
    pub(crate) fn pass(value: Option<String>, reason: impl Into<String>) -> Observation {
        Observation {
            passed: true,
            value,
            reason: reason.into(),
            took: Duration::ZERO,
        }
    }

    /// A failed observation; `took` is filled in by [`observe`].
    pub(crate) fn fail(value: Option<String>, reason: impl Into<String>) -> Observation {
        Observation {
            passed: false,
            value,
            reason: reason.into(),
            took: Duration::ZERO,
        }
    }
}

/// Observes `decl` once, within `decl.timeout`.
pub async fn observe(decl: &ProbeDecl, ctx: &ProbeContext) -> Observation {
    let start = Instant::now();
    let mut observation = match &decl.kind {
        // A command bounds itself: on timeout it must kill its process
        // group, which dropping its future would not do.
        ProbeKind::Command(probe) => {
            command::observe(
                probe,
                decl.timeout,
                &crate::faults::command_env(ctx.target_base.as_ref()),
            )
            .await
        }
        ProbeKind::Http(probe) => bounded(decl.timeout, http::observe(probe, ctx)).await,
        ProbeKind::Prometheus(probe) => bounded(decl.timeout, prometheus::observe(probe)).await,
        ProbeKind::Tcp(probe) => bounded(decl.timeout, tcp::observe(probe)).await,
    };
    observation.took = start.elapsed();
    observation
}

/// `GET url` and the JSON value at `pointer` in its body (used by the
/// breaker verifier's state sampling). A relative `url` is joined to
/// `ctx.target_base`.
///
/// The status is not judged: a state endpoint may well answer 503 while the
/// breaker is open. A body that is not JSON or lacks the pointer is an error,
/// as is anything past `timeout`.
pub async fn json_value(
    url: &str,
    pointer: &str,
    ctx: &ProbeContext,
    timeout: Duration,
) -> Result<serde_json::Value, String> {
    match tokio::time::timeout(timeout, http::json_value(url, pointer, ctx)).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(timeout)),
    }
}

/// Runs `observation` for at most `limit`.
async fn bounded(
    limit: Duration,
    observation: impl std::future::Future<Output = Observation>,
) -> Observation {
    match tokio::time::timeout(limit, observation).await {
        Ok(observation) => observation,
        Err(_) => Observation::fail(None, timed_out(limit)),
    }
}

/// `timed out after 2s`.
pub(crate) fn timed_out(limit: Duration) -> String {
    format!("timed out after {}", format_duration(limit))
}

/// A failed connect as a person would say it: `connect to 127.0.0.1:9 refused`.
pub(crate) fn connect_failure(address: &str, error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connect to {address} refused"),
        _ => format!("connect to {address} failed: {error}"),
    }
}
