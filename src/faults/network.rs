//! Network and HTTP faults on a proxy: a toxic, the proxy going down, or an
//! HTTP fault. The same fault works on an embedded proxy (in-process) and on
//! a Toxiproxy server (through its admin API, journaled for `faultline
//! rollback`).

use super::journal::{JournalEntry, RollbackJournal};
use super::toxiproxy::ToxiproxyClient;
use super::{BoxFuture, Evidence, Fault, FaultError};
use crate::proxy::spec::{HttpFaultSpec, ToxicSpec};
use crate::proxy::Proxy;
use serde_json::json;
use std::sync::Arc;

/// Where a proxy lives.
#[derive(Clone)]
pub enum ProxyTarget {
    Embedded(Proxy),
    Toxiproxy {
        client: ToxiproxyClient,
        /// The proxy's name on the server.
        name: String,
        journal: Arc<RollbackJournal>,
    },
}

/// What the fault does to the proxy.
#[derive(Debug, Clone)]
pub enum ProxyAction {
    Toxic(ToxicSpec),
    Down,
    Http(HttpFaultSpec),
}

pub struct ProxyFault {
    /// The proxy's name in the experiment.
    proxy: String,
    target: ProxyTarget,
    action: ProxyAction,
}

impl ProxyFault {
    pub fn new(proxy: String, target: ProxyTarget, action: ProxyAction) -> ProxyFault {
        ProxyFault {
            proxy,
            target,
            action,
        }
    }

    fn journal_entry(&self) -> Option<(Arc<RollbackJournal>, JournalEntry)> {
        let ProxyTarget::Toxiproxy {
            client,
            name,
            journal,
        } = &self.target
        else {
            return None;
        };
        let entry = match &self.action {
            ProxyAction::Toxic(t) => JournalEntry::RemoveToxic {
                server: client.url().to_string(),
                proxy: name.clone(),
                toxic: t.name.clone(),
            },
            ProxyAction::Down => JournalEntry::EnableProxy {
                server: client.url().to_string(),
                proxy: name.clone(),
            },
            ProxyAction::Http(_) => return None,
        };
        Some((journal.clone(), entry))
    }
}

/// A one-line description of an action, shared with the plan and reports.
pub fn describe_action(proxy: &str, action: &ProxyAction) -> String {
    match action {
        ProxyAction::Toxic(t) => {
            let attrs: Vec<String> = t
                .kind
                .attributes()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let mut s = format!(
                "{} on {proxy} ({}, {})",
                t.kind.type_name(),
                t.stream.as_str(),
                attrs.join(" ")
            );
            if t.toxicity < 1.0 {
                s.push_str(&format!(", toxicity {:.0}%", t.toxicity * 100.0));
            }
            s
        }
        ProxyAction::Down => format!("down on {proxy}"),
        ProxyAction::Http(h) => {
            let detail = serde_json::to_value(&h.action)
                .ok()
                .and_then(|v| v.as_object().cloned())
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| *k != "type")
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let mut s = format!("{} on {proxy} ({detail})", h.action.type_name());
            if h.probability < 1.0 {
                s.push_str(&format!(", probability {:.0}%", h.probability * 100.0));
            }
            let m = &h.matcher;
            let mut scope = Vec::new();
            if let Some(method) = &m.method {
                scope.push(method.clone());
            }
            if let Some(path) = &m.path {
                scope.push(path.clone());
            }
            for (k, v) in &m.headers {
                scope.push(format!("{k}: {v}"));
            }
            if !scope.is_empty() {
                s.push_str(&format!(", only {}", scope.join(" ")));
            }
            s
        }
    }
}

fn proxy_err(e: impl std::fmt::Display) -> FaultError {
    FaultError::Proxy(e.to_string())
}

impl Fault for ProxyFault {
    fn kind(&self) -> &'static str {
        match &self.action {
            ProxyAction::Toxic(t) => t.kind.type_name(),
            ProxyAction::Down => "down",
            ProxyAction::Http(h) => h.action.type_name(),
        }
    }

    fn describe(&self) -> String {
        describe_action(&self.proxy, &self.action)
    }

    fn left_to(&self) -> Option<String> {
        let (journal, _) = self.journal_entry()?;
        let path = journal.path().display();
        Some(format!(
            "it stays in the rollback journal {path}; `faultline rollback --journal {path}` \
             undoes it once the server answers"
        ))
    }

    fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            if let Some((journal, entry)) = self.journal_entry() {
                journal.record(entry).map_err(|e| {
                    FaultError::Proxy(format!(
                        "cannot write the rollback journal {}: {e}",
                        journal.path().display()
                    ))
                })?;
            }
            match (&self.target, &self.action) {
                (ProxyTarget::Embedded(p), ProxyAction::Toxic(t)) => {
                    p.add_toxic(t.clone()).map_err(proxy_err)?
                }
                (ProxyTarget::Embedded(p), ProxyAction::Down) => {
                    p.set_enabled(false).map_err(proxy_err)?
                }
                (ProxyTarget::Embedded(p), ProxyAction::Http(h)) => {
                    p.add_http_fault(h.clone()).map_err(proxy_err)?
                }
                (ProxyTarget::Toxiproxy { client, name, .. }, ProxyAction::Toxic(t)) => client
                    .add_toxic(name, &t.to_json())
                    .await
                    .map_err(proxy_err)?,
                (ProxyTarget::Toxiproxy { client, name, .. }, ProxyAction::Down) => {
                    client.set_enabled(name, false).await.map_err(proxy_err)?
                }
                (ProxyTarget::Toxiproxy { .. }, ProxyAction::Http(_)) => {
                    return Err(FaultError::Proxy(
                        "HTTP faults need an embedded proxy in `mode: http`".into(),
                    ))
                }
            }
            Ok(json!({ "proxy": self.proxy }))
        })
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            match (&self.target, &self.action) {
                (ProxyTarget::Embedded(p), ProxyAction::Toxic(t)) => {
                    // Already gone (e.g. a failed apply) counts as removed.
                    let _ = p.remove_toxic(&t.name);
                }
                (ProxyTarget::Embedded(p), ProxyAction::Down) => {
                    p.set_enabled(true).map_err(proxy_err)?
                }
                (ProxyTarget::Embedded(p), ProxyAction::Http(h)) => {
                    let _ = p.remove_http_fault(&h.name);
                }
                (ProxyTarget::Toxiproxy { client, name, .. }, ProxyAction::Toxic(t)) => client
                    .remove_toxic(name, &t.name)
                    .await
                    .map_err(proxy_err)?,
                (ProxyTarget::Toxiproxy { client, name, .. }, ProxyAction::Down) => {
                    client.set_enabled(name, true).await.map_err(proxy_err)?
                }
                (ProxyTarget::Toxiproxy { .. }, ProxyAction::Http(_)) => {}
            }
            if let Some((journal, entry)) = self.journal_entry() {
                // Undone on the server; a stale entry would only make
                // `faultline rollback` repeat a harmless removal.
                let _ = journal.forget(&entry);
            }
            Ok(Evidence::Null)
        })
    }
}
