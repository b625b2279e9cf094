//! Faults: one trait, one registry, one ledger.
//!
//! A fault is applied at its phase's start (or `after` it) and removed at its
//! phase's end (or `for` after its apply); the runner schedules both.
//! Adding a fault kind is one file here, one variant of
//! [`crate::config::model::FaultSpec`], one arm in [`build`], one test.
//!
//! Every fault goes through the [`ledger::Ledger`], which records it *before*
//! applying it and removes what it holds in reverse order on every way out:
//! phase end, error, panic, stop condition, signal.

pub mod command;
pub mod journal;
pub mod kill;
pub mod ledger;
pub mod network;
pub mod remote;
pub mod stress;
pub mod toxiproxy;

use crate::config::model::{FaultSpec, PhaseFault};
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
    /// Who finishes this fault's removal when the run cannot wait for it
    /// after a stop signal (a change kept in the on-disk rollback journal,
    /// a fault an agent holds on a lease), said as the end of a sentence.
    /// `None` (the default): the run waits for the removal, up to its own
    /// timeout, because nothing else would undo it.
    fn left_to(&self) -> Option<String> {
        None
    }
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
    #[error("{0}")]
    Unsupported(String),
    #[error("interrupted by a stop signal before it finished (it is rolled back)")]
    Interrupted,
    /// The removal could not be confirmed before the run had to stop; the
    /// fault is not forgotten: `finisher` ([`Fault::left_to`]) undoes it.
    #[error("{reason}: {finisher}")]
    LeftTo { reason: String, finisher: String },
}

/// What faults need from the running experiment.
#[derive(Clone, Default)]
pub struct FaultContext {
    /// Proxies by their name in the experiment.
    pub proxies: HashMap<String, ProxyTarget>,
    /// Run-unique prefix for the names of toxics and HTTP faults, so a run
    /// removes only what it added.
    pub run_id: String,
    /// The process faultline started (`target.command`), for `kill`.
    pub target: Option<std::sync::Arc<dyn kill::TargetProcess>>,
    /// Processes the telemetry sampler follows (stress children join it).
    pub watched: Option<crate::metrics::telemetry::Watched>,
    /// Agents by name, for faults with `host:`.
    pub agents: HashMap<String, crate::faults::remote::AgentClient>,
    /// The target's base URL, given to local commands as `FAULTLINE_TARGET_URL`.
    pub target_url: Option<http::Uri>,
    /// The on-disk rollback journal, for changes that would outlive a
    /// killed faultline (`kill STOP`, a `command` fault's rollback).
    pub journal: Option<std::sync::Arc<journal::RollbackJournal>>,
}

/// The environment local commands (faults and probes) run with:
/// `FAULTLINE_TARGET_URL`, the target's base URL without a trailing slash
/// (so `curl -X PUT $FAULTLINE_TARGET_URL/admin/canary` works against the
/// demo, whose port is only known at run time).
pub fn command_env(target: Option<&http::Uri>) -> Vec<(String, String)> {
    target
        .map(|url| {
            let text = url.to_string();
            vec![(
                "FAULTLINE_TARGET_URL".to_string(),
                text.trim_end_matches('/').to_string(),
            )]
        })
        .unwrap_or_default()
}

/// How long an agent keeps a fault without renewal.
pub const AGENT_LEASE: std::time::Duration = std::time::Duration::from_secs(30);

/// The proxy action a spec stands for, if it acts on a proxy.
fn proxy_action(spec: &FaultSpec) -> Option<(&str, ProxyAction)> {
    match spec {
        FaultSpec::Command(_)
        | FaultSpec::Cpu { .. }
        | FaultSpec::Memory { .. }
        | FaultSpec::Kill(_) => None,
        FaultSpec::Toxic { proxy, toxic } => Some((proxy, ProxyAction::Toxic(toxic.clone()))),
        FaultSpec::Down { proxy } => Some((proxy, ProxyAction::Down)),
        FaultSpec::Http { proxy, fault } => Some((proxy, ProxyAction::Http(fault.clone()))),
    }
}

/// A one-line description of a fault as written (for plans and reports).
pub fn describe(spec: &FaultSpec) -> String {
    match (spec, proxy_action(spec)) {
        (FaultSpec::Command(c), _) => command::CommandAction::new(c.clone()).describe(),
        (FaultSpec::Cpu { load, cores, host }, _) => {
            let cores = cores.map_or("all cores".to_string(), |n| {
                format!("{n} core{}", if n == 1 { "" } else { "s" })
            });
            on_host(format!("cpu {:.0}% on {cores}", load * 100.0), host)
        }
        (
            FaultSpec::Memory {
                bytes, ramp, host, ..
            },
            _,
        ) => {
            let mut s = format!("memory {}", crate::config::units::format_size(*bytes));
            if !ramp.is_zero() {
                s.push_str(&format!(
                    " (ramp {})",
                    crate::config::units::format_duration(*ramp)
                ));
            }
            on_host(s, host)
        }
        (FaultSpec::Kill(k), _) => {
            let who = match &k.who {
                crate::config::model::KillWho::Target => "the target".to_string(),
                crate::config::model::KillWho::Pidfile(p) => format!("pidfile {p}"),
                crate::config::model::KillWho::Name(n) => format!("processes named `{n}`"),
            };
            let mut s = format!("kill -{} {who}", k.signal);
            if k.restart {
                // When: at phase end, or `for` after the kill (see `describe_in_phase`).
                s.push_str(", then restart");
            }
            on_host(s, &k.host)
        }
        (_, Some((proxy, action))) => network::describe_action(proxy, &action),
        (_, None) => String::new(),
    }
}

/// Command, CPU, memory and kill faults: locally, or through an agent when
/// they name a `host`. `None` for proxy faults.
fn build_host_fault(
    spec: &FaultSpec,
    ctx: &FaultContext,
) -> Result<Option<Box<dyn Fault>>, FaultError> {
    use crate::config::model::KillWho;
    use remote::RemoteSpec;
    let (host, remote) = match spec {
        FaultSpec::Command(c) => (
            &c.host,
            RemoteSpec::Command {
                run: c.run.clone(),
                rollback: c.rollback.clone(),
                timeout_ms: c.timeout.as_millis() as u64,
            },
        ),
        FaultSpec::Cpu { load, cores, host } => (
            host,
            RemoteSpec::Cpu {
                load: *load,
                cores: *cores,
            },
        ),
        FaultSpec::Memory {
            bytes,
            ramp,
            force,
            host,
        } => (
            host,
            RemoteSpec::Memory {
                bytes: *bytes,
                ramp_ms: ramp.as_millis() as u64,
                force: *force,
            },
        ),
        FaultSpec::Kill(k) => (
            &k.host,
            RemoteSpec::Kill {
                signal: k.signal.clone(),
                pidfile: match &k.who {
                    KillWho::Pidfile(p) => Some(p.clone()),
                    _ => None,
                },
                name: match &k.who {
                    KillWho::Name(n) => Some(n.clone()),
                    _ => None,
                },
            },
        ),
        _ => return Ok(None),
    };
    if let Some(agent) = host {
        let client = ctx
            .agents
            .get(agent)
            .cloned()
            .ok_or_else(|| FaultError::Unsupported(format!("no agent named `{agent}`")))?;
        return Ok(Some(Box::new(
            crate::faults::remote::AgentFault::new(agent.clone(), client, remote, AGENT_LEASE)
                .journaled(ctx.journal.clone()),
        )));
    }
    let local: Box<dyn Fault> = match spec {
        FaultSpec::Command(c) => Box::new(
            command::CommandAction::new(c.clone())
                .with_env(command_env(ctx.target_url.as_ref()))
                .journaled(ctx.journal.clone()),
        ),
        FaultSpec::Cpu { load, cores, .. } => {
            Box::new(stress::StressFault::cpu(*load, *cores, ctx.watched.clone()))
        }
        FaultSpec::Memory { bytes, ramp, .. } => Box::new(stress::StressFault::memory(
            *bytes,
            *ramp,
            ctx.watched.clone(),
        )),
        FaultSpec::Kill(k) => Box::new(
            match &k.who {
                KillWho::Target => {
                    let target = ctx.target.clone().ok_or_else(|| {
                        FaultError::Unsupported(
                            "`kill` needs the target faultline started (`target.command`)".into(),
                        )
                    })?;
                    // No timer of its own: a restart `for` after the kill is the
                    // fault's early removal, scheduled by the runner.
                    kill::KillFault::target(target, &k.signal, k.restart)?
                }
                KillWho::Pidfile(p) => kill::KillFault::by_pidfile(p, &k.signal)?,
                KillWho::Name(n) => kill::KillFault::by_name(n.clone(), &k.signal)?,
            }
            .journaled(ctx.journal.clone()),
        ),
        _ => return Ok(None),
    };
    Ok(Some(local))
}

/// [`describe`] with the fault's timing in its phase, when it has any:
/// `http_error 503 on payments (from +1s, for 1.5s)`.
pub fn describe_in_phase(fault: &PhaseFault) -> String {
    use crate::config::units::format_duration;
    let mut when = Vec::new();
    if !fault.after.is_zero() {
        when.push(format!("from +{}", format_duration(fault.after)));
    }
    if let Some(lasts) = fault.lasts {
        when.push(format!("for {}", format_duration(lasts)));
    }
    let text = describe(&fault.spec);
    if when.is_empty() {
        text
    } else {
        format!("{text} ({})", when.join(", "))
    }
}

/// How the live metrics name a fault: its description, what it acts on
/// (the proxy, the agent's host, or `local`) and, for stress faults, what
/// it asks for (shown beside what telemetry measures).
pub fn live_info(spec: &FaultSpec) -> crate::metrics::export::FaultInfo {
    use crate::metrics::export::{FaultInfo, Requested};
    let host = match spec {
        FaultSpec::Command(c) => c.host.as_deref(),
        FaultSpec::Cpu { host, .. } | FaultSpec::Memory { host, .. } => host.as_deref(),
        FaultSpec::Kill(k) => k.host.as_deref(),
        _ => None,
    };
    let requested = match spec {
        FaultSpec::Cpu { load, cores, .. } => {
            let cores = cores.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            });
            Some(Requested::CpuCores(load * cores as f64))
        }
        FaultSpec::Memory { bytes, .. } => Some(Requested::MemoryBytes(*bytes as f64)),
        _ => None,
    };
    let kind = match (spec, proxy_action(spec)) {
        (_, Some((_, ProxyAction::Toxic(t)))) => t.kind.type_name(),
        (_, Some((_, ProxyAction::Down))) => "down",
        (_, Some((_, ProxyAction::Http(h)))) => h.action.type_name(),
        (FaultSpec::Command(_), None) => "command",
        (FaultSpec::Cpu { .. }, None) => "cpu",
        (FaultSpec::Memory { .. }, None) => "memory",
        (_, None) => "kill",
    };
    FaultInfo {
        name: describe(spec),
        kind,
        target: spec.proxy().or(host).unwrap_or("local").to_string(),
        requested,
    }
}

fn on_host(text: String, host: &Option<String>) -> String {
    match host {
        Some(h) => format!("{text} on {h}"),
        None => text,
    }
}

/// The registry: builds a fault from its spec. `slot` (phase and position)
/// makes the names of toxics and HTTP faults unique within the run.
pub fn build(
    spec: &FaultSpec,
    ctx: &FaultContext,
    slot: &str,
) -> Result<Box<dyn Fault>, FaultError> {
    if let Some(fault) = build_host_fault(spec, ctx)? {
        return Ok(fault);
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
