//! The proxies of one experiment: the demo's hops, embedded proxies started
//! for the experiment, and proxies on Toxiproxy servers (checked to exist
//! before the load starts).

use super::target::RunningTarget;
use crate::config::model::{Experiment, ProxyKind};
use crate::faults::journal::RollbackJournal;
use crate::faults::network::ProxyTarget;
use crate::faults::toxiproxy::ToxiproxyClient;
use crate::faults::FaultContext;
use crate::proxy::{Proxy, ProxyConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Upper bound for the embedded proxies to finish after shutdown.
const STOP_GRACE: Duration = Duration::from_secs(5);

pub struct RunningProxies {
    pub ctx: FaultContext,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl RunningProxies {
    /// Starts or finds every proxy the experiment can act on.
    /// `stop` interrupts the check of a Toxiproxy server that hangs.
    pub async fn start(
        exp: &Experiment,
        target: &RunningTarget,
        seed: u64,
        (journal, run_id): (Arc<RollbackJournal>, &str),
        watched: crate::metrics::telemetry::Watched,
        stop: &CancellationToken,
    ) -> Result<RunningProxies, String> {
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let mut ctx = FaultContext {
            run_id: run_id.to_string(),
            target: target
                .process
                .clone()
                .map(|p| p as Arc<dyn crate::faults::kill::TargetProcess>),
            watched: Some(watched),
            target_url: Some(target.base.clone()),
            journal: Some(journal.clone()),
            ..FaultContext::default()
        };
        for agent in &exp.agents {
            let token = std::env::var(&agent.token_env).map_err(|_| {
                format!(
                    "agent `{}`: the environment variable {} (its token) is not set",
                    agent.name, agent.token_env
                )
            })?;
            let client = crate::faults::remote::AgentClient::new(agent.url.to_string(), token)
                .map_err(|e| format!("agent `{}`: {e}", agent.name))?
                .with_token_env(&agent.token_env);
            ctx.agents.insert(agent.name.clone(), client);
        }
        for hop in &target.proxies {
            ctx.proxies
                .insert(hop.name().to_string(), ProxyTarget::Embedded(hop.clone()));
        }
        let running = RunningProxies {
            ctx,
            shutdown,
            tracker,
        };
        let mut running = running;
        for decl in &exp.proxies {
            let target = match &decl.kind {
                ProxyKind::Embedded {
                    listen,
                    upstream,
                    mode,
                } => {
                    let upstream_addr = tokio::net::lookup_host(upstream.as_str())
                        .await
                        .ok()
                        .and_then(|mut addrs| addrs.next());
                    let Some(upstream_addr) = upstream_addr else {
                        running.stop().await;
                        return Err(format!(
                            "proxy `{}`: cannot resolve upstream `{upstream}`",
                            decl.name
                        ));
                    };
                    let cfg = ProxyConfig {
                        name: decl.name.clone(),
                        listen: *listen,
                        upstream: upstream_addr,
                        mode: *mode,
                        seed,
                    };
                    match Proxy::start(cfg, running.shutdown.clone(), &running.tracker).await {
                        Ok(p) => ProxyTarget::Embedded(p),
                        Err(e) => {
                            running.stop().await;
                            return Err(error_chain(&e));
                        }
                    }
                }
                ProxyKind::Toxiproxy { url, name } => {
                    let client = ToxiproxyClient::new(&url.to_string());
                    let checked = tokio::select! {
                        checked = client.proxy(name) => checked.map(|_| ()).map_err(|e| e.to_string()),
                        _ = stop.cancelled() => Err(format!(
                            "Toxiproxy at {}: interrupted by the stop signal while waiting for \
                             its answer",
                            client.url()
                        )),
                    };
                    if let Err(e) = checked {
                        running.stop().await;
                        return Err(format!("proxy `{}`: {e}", decl.name));
                    }
                    ProxyTarget::Toxiproxy {
                        client,
                        name: name.clone(),
                        journal: journal.clone(),
                    }
                }
            };
            running.ctx.proxies.insert(decl.name.clone(), target);
        }
        Ok(running)
    }

    /// The embedded proxies' listen addresses, for the report.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .ctx
            .proxies
            .iter()
            .map(|(name, t)| match t {
                ProxyTarget::Embedded(p) => {
                    format!("{name} {} -> {}", p.listen_addr(), p.upstream())
                }
                ProxyTarget::Toxiproxy {
                    client,
                    name: remote,
                    ..
                } => {
                    format!("{name} (Toxiproxy {} proxy `{remote}`)", client.url())
                }
            })
            .collect();
        out.sort();
        out
    }

    /// Stops the embedded proxies this experiment started.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(STOP_GRACE, self.tracker.wait()).await;
    }
}

/// An error with its causes, `a: b: c`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
