//! `agents:` and the resource and process faults (`cpu`, `memory`, `kill`),
//! raw → model, with the host bounds of [`crate::bounds`] (memory, cores, pidfiles).

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::decode::{describe, scalar_text};
use super::diagnostics::{did_you_mean, one_of, Diagnostic};
use super::model::{AgentDecl, FaultSpec, KillFaultSpec, KillWho};
use super::raw::{RawAgent, RawCpu, RawKill, RawMemory, Scalar};
use super::source::Node;
use super::units::{parse_percent, parse_size};
use super::validate::duration;

/// Signals `kill` accepts.
const SIGNALS: [&str; 4] = ["TERM", "KILL", "STOP", "CONT"];

/// `agents:`: name → URL and the environment variable holding its token.
pub fn agents(
    raw: Option<&BTreeMap<String, RawAgent>>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<AgentDecl>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (name, raw) in raw.into_iter().flatten() {
        let at = node.at("agents").at(name);
        let url = match raw
            .url
            .as_ref()
            .and_then(scalar_text)
            .map(|t| t.parse::<http::Uri>())
        {
            Some(Ok(u))
                if matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some() =>
            {
                Some(u)
            }
            Some(_) => {
                diags.push(
                    at.at("url")
                        .error("expected the agent's URL, such as http://10.0.0.5:7070"),
                );
                None
            }
            None => {
                diags.extend(at.missing(
                    "url",
                    "missing `url` (the agent's address, such as http://127.0.0.1:7070)",
                ));
                None
            }
        };
        let token_env = match raw.token_env.as_ref().and_then(scalar_text) {
            Some(t)
                if !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Some(t)
            }
            Some(t) => {
                diags.push(at.at("token_env").error(format!(
                    "expected an environment variable name, found `{t}`"
                )));
                None
            }
            None => {
                diags.extend(at.missing(
                    "token_env",
                    "missing `token_env`: the environment variable that holds the agent's token (tokens never go in files)",
                ));
                None
            }
        };
        match (url, token_env) {
            (Some(url), Some(token_env)) => out.push(AgentDecl {
                name: name.clone(),
                url,
                token_env,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

/// The fault's node, the declared agents and the diagnostics sink.
pub struct Ctx<'a, 'n> {
    pub node: &'a Node<'n>,
    pub agents: &'a [String],
    pub diags: &'a mut Vec<Diagnostic>,
}

fn found(v: &Value) -> String {
    scalar_text(v).map_or_else(|| describe(v).to_string(), |t| format!("`{t}`"))
}

impl Ctx<'_, '_> {
    /// `host:` must name a declared agent.
    pub fn host(&mut self, raw: &Option<Scalar>) -> Option<Option<String>> {
        let Some(v) = raw else { return Some(None) };
        let name = scalar_text(v).unwrap_or_default();
        if self.agents.contains(&name) {
            return Some(Some(name));
        }
        let known: Vec<&str> = self.agents.iter().map(String::as_str).collect();
        self.diags.push(unknown_reference(
            &self.node.at("host"),
            "agent",
            &name,
            &known,
            "agents",
        ));
        None
    }

    fn flag(&mut self, raw: &Option<Scalar>, key: &str) -> Option<bool> {
        match raw {
            None => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(v) => {
                self.diags.push(
                    self.node
                        .at(key)
                        .error(format!("expected true or false, found {}", found(v))),
                );
                None
            }
        }
    }

    fn percent(&mut self, raw: &Value, key: &str) -> Option<f64> {
        match raw {
            Value::String(s) => match parse_percent(s) {
                Ok(f) if f > 0.0 => Some(f),
                _ => {
                    self.diags.push(self.node.at(key).error(format!(
                        "expected a percentage above 0 such as 80%, found {}",
                        found(raw)
                    )));
                    None
                }
            },
            _ => {
                self.diags.push(self.node.at(key).error(format!(
                    "expected a percentage such as 80%, found {}",
                    found(raw)
                )));
                None
            }
        }
    }
}

pub fn cpu(r: &RawCpu, c: &mut Ctx<'_, '_>) -> Option<FaultSpec> {
    let host = c.host(&r.host);
    let load = match &r.load {
        Some(v) => c.percent(v, "load"),
        None => {
            c.diags.extend(
                c.node
                    .missing("load", "missing `load` (per core, such as 80%)"),
            );
            None
        }
    };
    let cores = match &r.cores {
        None => Some(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| (1..=1024).contains(&n)) => {
            n.as_u64().map(|n| Some(n as usize))
        }
        Some(v) => {
            c.diags.push(c.node.at("cores").error(format!(
                "expected a number of cores (at least 1), found {}",
                found(v)
            )));
            None
        }
    };
    // Like memory, the local host's cores bound a local fault; an agent
    // checks its own.
    if let (Some(Some(n)), Some(None)) = (cores, host.as_ref()) {
        if let Err(e) = crate::bounds::cores(n as u64, &crate::bounds::Host::current()) {
            c.diags.push(c.node.at("cores").error(e.to_string()));
            return None;
        }
    }
    Some(FaultSpec::Cpu {
        load: load?,
        cores: cores?,
        host: host?,
    })
}

pub fn memory(r: &RawMemory, c: &mut Ctx<'_, '_>) -> Option<FaultSpec> {
    let host = c.host(&r.host);
    let force = c.flag(&r.force, "force");
    let ramp = match &r.ramp {
        Some(v) => duration(v, &c.node.at("ramp"), false, c.diags),
        None => Some(std::time::Duration::ZERO),
    };
    let total = crate::bounds::Host::current().total_memory;
    let bytes = match (&r.size, &r.percent) {
        (Some(v), None) => match v {
            Value::Number(n) if n.as_u64().is_some_and(|b| b > 0) => n.as_u64(),
            Value::String(s) => match parse_size(s) {
                Ok(b) if b > 0 => Some(b),
                _ => {
                    c.diags.push(c.node.at("size").error(format!(
                        "expected a size such as 512MiB, found {}",
                        found(v)
                    )));
                    None
                }
            },
            _ => {
                c.diags.push(c.node.at("size").error(format!(
                    "expected a size such as 512MiB, found {}",
                    found(v)
                )));
                None
            }
        },
        (None, Some(v)) => c.percent(v, "percent").map(|f| (f * total as f64) as u64),
        (Some(_), Some(_)) => {
            c.diags.push(
                c.node
                    .at("percent")
                    .key_error("give either `size` or `percent`, not both"),
            );
            None
        }
        (None, None) => {
            c.diags.extend(c.node.missing(
                "size",
                "missing `size` (such as 512MiB) or `percent` (of total memory, such as 70%)",
            ));
            None
        }
    };
    // The cap protects the local host; an agent checks its own host.
    if let (Some(b), Some(force), Some(None)) = (bytes, force, host.as_ref()) {
        let host = crate::bounds::Host::current();
        if let Err(e) = crate::bounds::memory(b, force, &host, crate::bounds::ForceHint::Yaml) {
            let at = if r.size.is_some() { "size" } else { "percent" };
            c.diags.push(c.node.at(at).error(e.to_string()));
            return None;
        }
    }
    Some(FaultSpec::Memory {
        bytes: bytes?,
        ramp: ramp?,
        force: force?,
        host: host?,
    })
}

pub fn kill(r: &RawKill, c: &mut Ctx<'_, '_>, command_target: bool) -> Option<FaultSpec> {
    let host = c.host(&r.host);
    let signal = match &r.signal {
        None => Some("TERM".to_string()),
        Some(v) => {
            let text = scalar_text(v).unwrap_or_default().to_ascii_uppercase();
            let text = text.strip_prefix("SIG").unwrap_or(&text).to_string();
            if SIGNALS.contains(&text.as_str()) {
                Some(text)
            } else {
                c.diags.push(c.node.at("signal").error(format!(
                    "expected {}, found {}",
                    one_of(&SIGNALS),
                    found(v)
                )));
                None
            }
        }
    };
    let text = |v: &Option<Scalar>| v.as_ref().and_then(scalar_text).filter(|t| !t.is_empty());
    let who = match (text(&r.pidfile), text(&r.name)) {
        (Some(p), None) if host.as_ref().is_some_and(Option::is_none) => {
            pidfile_now(&p, c).then_some(KillWho::Pidfile(p))
        }
        (Some(p), None) => Some(KillWho::Pidfile(p)),
        (None, Some(n)) => Some(KillWho::Name(n)),
        (None, None) if host.as_ref().is_some_and(Option::is_some) => {
            c.diags.push(
                c.node
                    .error("a `kill` on an agent's host needs `pidfile` or `name`"),
            );
            None
        }
        (None, None) if !command_target => {
            c.diags.push(c.node.error(
                "`kill` without `pidfile` or `name` acts on the process faultline started: use `target: { command: ... }`",
            ));
            None
        }
        (None, None) => Some(KillWho::Target),
        (Some(_), Some(_)) => {
            c.diags.push(
                c.node
                    .at("name")
                    .key_error("give either `pidfile` or `name`, not both"),
            );
            None
        }
    };
    let restart = c.flag(&r.restart, "restart");
    if restart == Some(true) && !matches!(who, Some(KillWho::Target)) {
        c.diags.push(
            c.node
                .at("restart")
                .error("`restart` works on the target faultline started (no `pidfile`/`name`)"),
        );
        return None;
    }
    // `after` (the restart delay of old) is read with the generic timing
    // keys: see `validate_timing`.
    Some(FaultSpec::Kill(KillFaultSpec {
        signal: signal?,
        who: who?,
        restart: restart?,
        host: host?,
    }))
}

/// `unknown <what> `name`; declared: ...` with a did-you-mean: a fault
/// naming a proxy or agent the experiment does not declare under `section`.
pub fn unknown_reference(
    node: &Node<'_>,
    what: &str,
    name: &str,
    known: &[&str],
    section: &str,
) -> Diagnostic {
    let declared = if known.is_empty() {
        format!("none (add it under `{section}:`)")
    } else {
        one_of(known)
    };
    let d = node.error(format!("unknown {what} `{name}`; declared: {declared}"));
    match did_you_mean(name, known.iter().copied()) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d,
    }
}

/// A local pidfile that exists now must already hold a pid faultline may
/// signal: `-1` in a pidfile is never a valid target. One that does not
/// exist yet is checked when the fault is applied.
fn pidfile_now(path: &str, c: &mut Ctx<'_, '_>) -> bool {
    let path = std::path::Path::new(path);
    if std::fs::symlink_metadata(path).is_err() {
        return true;
    }
    match crate::bounds::read_pidfile(path) {
        Ok(_) => true,
        Err(e) => {
            c.diags.push(c.node.at("pidfile").error(e.to_string()));
            false
        }
    }
}
