//! The harness side: [`AgentClient`] speaks the agent API, and
//! [`AgentFault`] is a [`Fault`] that applies a [`RemoteSpec`] through an
//! agent and keeps its lease alive while the phase runs.
//!
//! The renewals run on a tokio task of the harness process. If the harness
//! dies (even by `SIGKILL`) or the network splits, they stop, the lease runs
//! out and the agent removes the fault itself: the host is degraded for at
//! most one lease after the harness is gone.

use std::time::Duration;

use http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use super::spec;
use super::wire::{ApplyRequest, FaultInfo, FaultList, Health, RenewRequest};
use crate::faults::journal::{JournalEntry, RollbackJournal};
use crate::faults::remote::RemoteSpec;
use crate::faults::{BoxFuture, Evidence, Fault, FaultError};
use std::sync::Arc;

/// How long one request may take (plus a `command` fault's own timeout when
/// applying it, since the agent answers once the command has finished).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest pause between two renewals, however short the lease.
const MIN_RENEW_INTERVAL: Duration = Duration::from_millis(50);

/// Why a request to an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentClientError {
    #[error("`{url}` is not an http:// or https:// URL")]
    Url { url: String },
    #[error("cannot set up the HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("{method} {url} failed")]
    Request {
        method: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url} answered {status}: {message}")]
    Refused {
        method: &'static str,
        url: String,
        status: u16,
        message: String,
    },
}

impl AgentClientError {
    /// The HTTP status the agent answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            AgentClientError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one agent's API.
#[derive(Clone)]
pub struct AgentClient {
    /// `http://host:port`, without a trailing slash.
    base: String,
    token: String,
    /// The environment variable the token came from, if any: journaled so
    /// `faultline rollback` can find the token again without storing it.
    token_env: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for AgentClient {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient")
            .field("base", &self.base)
            .field("token", &"<redacted>")
            .finish()
    }
}

impl AgentClient {
    /// A client for the agent at `base` (`http://db-host:7411`) with its bearer token.
    pub fn new(
        base: impl Into<String>,
        token: impl Into<String>,
    ) -> Result<AgentClient, AgentClientError> {
        let base = base.into().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(AgentClientError::Url { url: base });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(AgentClientError::Client)?;
        Ok(AgentClient {
            base,
            token: token.into().trim().to_string(),
            token_env: None,
            http,
        })
    }

    /// Notes that the token came from the environment variable `name`.
    pub fn with_token_env(mut self, name: &str) -> AgentClient {
        self.token_env = Some(name.to_string());
        self
    }

    /// The agent's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET /health`.
    pub async fn health(&self) -> Result<Health, AgentClientError> {
        self.call("GET", "/health", None, None).await
    }

    /// `GET /faults`: every fault the agent holds, oldest first.
    pub async fn list(&self) -> Result<Vec<FaultInfo>, AgentClientError> {
        let list: FaultList = self.call("GET", "/faults", None, None).await?;
        Ok(list.faults)
    }

    /// `POST /faults`: applies `spec` on the agent's host for `lease`.
    pub async fn apply(
        &self,
        spec: &RemoteSpec,
        lease: Duration,
    ) -> Result<FaultInfo, AgentClientError> {
        let body = ApplyRequest {
            spec: spec.clone(),
            lease_s: Some(lease.as_secs_f64()),
        };
        let timeout = match spec {
            RemoteSpec::Command { timeout_ms, .. } => {
                REQUEST_TIMEOUT + Duration::from_millis(*timeout_ms)
            }
            _ => REQUEST_TIMEOUT,
        };
        self.call("POST", "/faults", Some(json!(body)), Some(timeout))
            .await
    }

    /// `POST /faults/{id}/renew`: the lease runs `lease` (or the fault's own
    /// lease length) from now. `timeout` bounds the request.
    pub async fn renew(
        &self,
        id: &str,
        lease: Option<Duration>,
        timeout: Option<Duration>,
    ) -> Result<FaultInfo, AgentClientError> {
        let body = RenewRequest {
            lease_s: lease.map(|l| l.as_secs_f64()),
        };
        let path = format!("/faults/{}/renew", path_segment(id));
        self.call("POST", &path, Some(json!(body)), timeout).await
    }

    /// `DELETE /faults/{id}`: `Ok(false)` if the agent no longer held it (404).
    pub async fn remove(&self, id: &str) -> Result<bool, AgentClientError> {
        let path = format!("/faults/{}", path_segment(id));
        match self
            .call::<serde_json::Value>("DELETE", &path, None, None)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One request; a non-2xx answer becomes [`AgentClientError::Refused`]
    /// with the agent's `error` message.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<serde_json::Value>,
        timeout: Option<Duration>,
    ) -> Result<T, AgentClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "POST" => self.http.post(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        }
        .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        let failed = |source| AgentClientError::Request {
            method,
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(failed)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(failed)?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(AgentClientError::Refused {
                method,
                url,
                status: status.as_u16(),
                message,
            });
        }
        let text = if status == StatusCode::NO_CONTENT || bytes.is_empty() {
            &b"null"[..]
        } else {
            &bytes[..]
        };
        serde_json::from_slice(text).map_err(|e| AgentClientError::Refused {
            method,
            url,
            status: status.as_u16(),
            message: format!("unexpected answer: {e}"),
        })
    }
}

/// Ids are the agent's own (`[0-9a-f]+-[0-9]+`); anything else is escaped
/// so it cannot change the path.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the renew loop saw, reported as evidence at removal.
#[derive(Debug, Default)]
struct RenewLog {
    renewals: u64,
    failures: u64,
    last_error: Option<String>,
    /// Set when the agent no longer held the fault: it ended before the phase did.
    lost: bool,
}

/// The running renew loop; dropping it stops the loop.
struct Renewer {
    task: JoinHandle<RenewLog>,
    stop: DropGuard,
}

/// A fault applied on another host through its agent, held on a lease that
/// a background task renews every third of the lease.
pub struct AgentFault {
    agent: String,
    client: AgentClient,
    spec: RemoteSpec,
    lease: Duration,
    /// The agent's id of the fault, once applied.
    id: Option<String>,
    /// An apply was sent and no answer came (interrupted, timed out, the
    /// connection lost): the agent may hold the fault without our knowing
    /// its id, until its lease runs out.
    unanswered: bool,
    renewer: Option<Renewer>,
    /// Where the applied fault is written down, so `faultline rollback`
    /// removes it at once after faultline was killed (instead of when the
    /// lease runs out).
    journal: Option<Arc<RollbackJournal>>,
}

impl AgentFault {
    /// `agent_name` is the agent's name in the experiment (for reports).
    pub fn new(
        agent_name: String,
        client: AgentClient,
        spec: RemoteSpec,
        lease: Duration,
    ) -> AgentFault {
        AgentFault {
            agent: agent_name,
            client,
            spec,
            lease,
            id: None,
            unanswered: false,
            renewer: None,
            journal: None,
        }
    }

    /// Journals the applied fault in `journal` (when the client's token
    /// came from an environment variable, so rollback can read it again).
    pub fn journaled(mut self, journal: Option<Arc<RollbackJournal>>) -> AgentFault {
        self.journal = journal;
        self
    }

    /// The journal and this fault's entry, once applied.
    fn journal_entry(&self) -> Option<(&RollbackJournal, JournalEntry)> {
        let journal = self.journal.as_deref()?;
        Some((
            journal,
            JournalEntry::RemoveAgentFault {
                agent: self.agent.clone(),
                url: self.client.base().to_string(),
                id: self.id.clone()?,
                token_env: self.client.token_env.clone()?,
            },
        ))
    }

    /// What ends the fault when the harness cannot: the agent's lease.
    fn lease_ends_it(&self) -> String {
        format!(
            "agent `{}` removes it by itself when its lease of {} runs out",
            self.agent,
            crate::config::units::format_duration(self.lease)
        )
    }

    fn error(&self, e: impl std::fmt::Display) -> FaultError {
        // TODO(lead): a dedicated `FaultError::Agent { agent, message }` would fit better.
        FaultError::Unsupported(format!("agent `{}`: {e}", self.agent))
    }
}

impl Fault for AgentFault {
    fn kind(&self) -> &'static str {
        spec::kind(&self.spec)
    }

    fn describe(&self) -> String {
        format!("{} on {}", spec::describe(&self.spec), self.agent)
    }

    fn left_to(&self) -> Option<String> {
        Some(self.lease_ends_it())
    }

    fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            // If this request fails after the agent applied the fault (the
            // answer was lost), nobody renews it and the agent removes it
            // when the lease runs out. Set before sending: an interrupted
            // apply (the future dropped) leaves it set.
            self.unanswered = true;
            let applied = self.client.apply(&self.spec, self.lease).await;
            // Refused (it answered), or never connected: nothing is held.
            self.unanswered = match &applied {
                Ok(_) | Err(AgentClientError::Refused { .. }) => false,
                Err(AgentClientError::Request { source, .. }) => !source.is_connect(),
                Err(_) => false,
            };
            let info = applied.map_err(|e| self.error(error_chain(&e)))?;
            self.id = Some(info.id.clone());
            // Only known once applied; the lease covers a SIGKILL before.
            if let Some((journal, entry)) = self.journal_entry() {
                if let Err(e) = journal.record(entry) {
                    tracing::warn!(journal = %journal.path().display(), "cannot journal the agent fault: {e}");
                }
            }
            self.renewer = Some(start_renewing(
                self.client.clone(),
                info.id.clone(),
                self.lease,
            ));
            Ok(json!({
                "agent": self.agent,
                "url": self.client.base(),
                "id": info.id,
                "lease_s": info.lease_s,
                "evidence": info.evidence.unwrap_or_default(),
            }))
        })
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            let log = match self.renewer.take() {
                Some(Renewer { task, stop }) => {
                    drop(stop);
                    task.await.unwrap_or_default()
                }
                None => RenewLog::default(),
            };
            let Some(id) = self.id.clone() else {
                if std::mem::take(&mut self.unanswered) {
                    return Err(FaultError::LeftTo {
                        reason: "the agent never answered the apply (it may hold the fault)".into(),
                        finisher: self.lease_ends_it(),
                    });
                }
                return Ok(Evidence::Null); // never applied
            };
            let held = self.client.remove(&id).await.map_err(|e| {
                self.error(format!("{}; {}", error_chain(&e), self.lease_ends_it()))
            })?;
            if let Some((journal, entry)) = self.journal_entry() {
                let _ = journal.forget(&entry);
            }
            self.id = None;
            let mut evidence = json!({
                "agent": self.agent,
                "id": id,
                "renewals": log.renewals,
                "renew_failures": log.failures,
            });
            if let Some(e) = log.last_error {
                evidence["last_renew_error"] = json!(e);
            }
            if log.lost || !held {
                evidence["warning"] = json!(
                    "the agent had already removed the fault (its lease ran out or the agent \
                     restarted): it ended before the phase did"
                );
            }
            Ok(evidence)
        })
    }
}

/// Renews `id` every third of `lease` until stopped, so two renewals in a
/// row may fail before the lease runs out.
fn start_renewing(client: AgentClient, id: String, lease: Duration) -> Renewer {
    let stop = CancellationToken::new();
    let every = (lease / 3).max(MIN_RENEW_INTERVAL);
    let cancelled = stop.clone();
    let task = tokio::spawn(async move {
        let mut log = RenewLog::default();
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancelled.cancelled() => return log,
                _ = tick.tick() => {}
            }
            let renewed = tokio::select! {
                _ = cancelled.cancelled() => return log,
                r = client.renew(&id, Some(lease), Some(every)) => r,
            };
            match renewed {
                Ok(_) => log.renewals += 1,
                Err(e) => {
                    log.failures += 1;
                    log.lost |= e.status() == Some(404);
                    log.last_error = Some(error_chain(&e));
                    if log.lost {
                        return log;
                    }
                }
            }
        }
    });
    Renewer {
        task,
        stop: stop.drop_guard(),
    }
}

/// `e: cause: cause`, so a report shows why a connection failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(path_segment("1a2b-3"), "1a2b-3");
        assert_eq!(path_segment("../x"), "..%2Fx");
        assert_eq!(path_segment("a?b"), "a%3Fb");
    }

    #[test]
    fn urls_are_checked_and_the_token_is_never_shown() {
        assert!(matches!(
            AgentClient::new("db-host:7411", "t"),
            Err(AgentClientError::Url { .. })
        ));
        let client = AgentClient::new("http://db-host:7411/", "s3cret\n").expect("client");
        assert_eq!(client.base(), "http://db-host:7411");
        assert!(!format!("{client:?}").contains("s3cret"));
    }

    #[test]
    fn descriptions_name_the_agent() {
        let client = AgentClient::new("http://db-host:7411", "t").expect("client");
        let fault = AgentFault::new(
            "db-host".into(),
            client,
            RemoteSpec::Cpu {
                load: 0.8,
                cores: Some(1),
            },
            Duration::from_secs(30),
        );
        assert_eq!(fault.describe(), "cpu 80% on 1 core on db-host");
        assert_eq!(fault.kind(), "cpu");
    }
}
