//! The agent's registry: a [`RemoteSpec`] is checked, described and built
//! into a [`Fault`] here, and nowhere else.

use std::time::Duration;

use crate::bounds::{ForceHint, Host};
use crate::config::model::CommandFault;
use crate::config::units::{format_duration, format_size};
use crate::faults::command::CommandAction;
use crate::faults::kill::KillFault;
use crate::faults::remote::RemoteSpec;
use crate::faults::stress::StressFault;
use crate::faults::{Fault, FaultError};

/// The signals a `kill` fault may send, as written in the spec.
pub const SIGNALS: [&str; 4] = ["TERM", "KILL", "STOP", "CONT"];

/// The longest a `command` fault's command may run, so a request cannot
/// pin an agent task for days.
pub const MAX_COMMAND_TIMEOUT: Duration = Duration::from_secs(3600);

/// A spec the agent will not apply, with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn refused(e: crate::bounds::BoundError) -> SpecError {
    SpecError(e.to_string())
}

/// The spec's `type` (`cpu`, `memory`, `kill`, `command`).
pub fn kind(spec: &RemoteSpec) -> &'static str {
    match spec {
        RemoteSpec::Cpu { .. } => "cpu",
        RemoteSpec::Memory { .. } => "memory",
        RemoteSpec::Kill { .. } => "kill",
        RemoteSpec::Command { .. } => "command",
    }
}

/// Checks the values serde cannot: ranges, the host bounds of
/// [`crate::bounds`] (memory, cores, with `force` only when the agent runs
/// with `--allow-force`), and that a kill names exactly one target.
pub fn validate(spec: &RemoteSpec, allow_force: bool) -> Result<(), SpecError> {
    let bad = |msg: String| Err(SpecError(msg));
    match spec {
        RemoteSpec::Cpu { load, cores } => {
            if !(load.is_finite() && *load > 0.0 && *load <= 1.0) {
                return bad(format!("cpu `load` must be in (0, 1], got {load}"));
            }
            if *cores == Some(0) {
                return bad("cpu `cores` must be at least 1 (omit it for all cores)".into());
            }
            if let Some(n) = cores {
                crate::bounds::cores(*n as u64, &Host::current()).map_err(refused)?;
            }
        }
        RemoteSpec::Memory { bytes, force, .. } => {
            if *bytes == 0 {
                return bad("memory `bytes` must be more than 0".into());
            }
            if *force && !allow_force {
                return bad(
                    "memory `force` is refused: this agent does not run with --allow-force".into(),
                );
            }
            crate::bounds::memory(*bytes, *force, &Host::current(), ForceHint::Agent)
                .map_err(refused)?;
        }
        RemoteSpec::Kill {
            signal,
            pidfile,
            name,
        } => {
            if !SIGNALS.contains(&signal.as_str()) {
                return bad(format!(
                    "kill `signal` must be one of {}, got `{signal}`",
                    SIGNALS.join(", ")
                ));
            }
            match (pidfile.as_deref(), name.as_deref()) {
                (Some(""), _) | (_, Some("")) => {
                    return bad("kill `pidfile` and `name` must not be empty".into())
                }
                (Some(_), Some(_)) | (None, None) => {
                    return bad("kill needs exactly one of `pidfile` and `name`".into())
                }
                // As in YAML: a pidfile there now must hold a pid faultline
                // may signal (it is read again right before the signal).
                (Some(path), None) if std::fs::symlink_metadata(path).is_ok() => {
                    crate::bounds::read_pidfile(std::path::Path::new(path)).map_err(refused)?;
                }
                _ => {}
            }
        }
        RemoteSpec::Command {
            run,
            rollback,
            timeout_ms,
        } => {
            if run.trim().is_empty() {
                return bad("command `run` must not be empty".into());
            }
            if rollback.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return bad("command `rollback` must not be empty (omit it instead)".into());
            }
            if *timeout_ms == 0 || Duration::from_millis(*timeout_ms) > MAX_COMMAND_TIMEOUT {
                return bad(format!(
                    "command `timeout_ms` must be between 1 and {}, got {timeout_ms}",
                    MAX_COMMAND_TIMEOUT.as_millis()
                ));
            }
        }
    }
    Ok(())
}

/// Builds the fault a (valid) spec stands for. Nothing is applied yet.
pub fn build(spec: &RemoteSpec) -> Result<Box<dyn Fault>, FaultError> {
    Ok(match spec {
        RemoteSpec::Cpu { load, cores } => Box::new(StressFault::cpu(*load, *cores, None)),
        RemoteSpec::Memory { bytes, ramp_ms, .. } => Box::new(StressFault::memory(
            *bytes,
            Duration::from_millis(*ramp_ms),
            None,
        )),
        RemoteSpec::Kill {
            signal,
            pidfile: Some(path),
            ..
        } => Box::new(KillFault::by_pidfile(path, signal)?),
        RemoteSpec::Kill {
            signal,
            name: Some(name),
            ..
        } => Box::new(KillFault::by_name(name, signal)?),
        RemoteSpec::Kill { .. } => {
            return Err(FaultError::Unsupported(
                "kill needs exactly one of `pidfile` and `name`".into(),
            ))
        }
        RemoteSpec::Command {
            run,
            rollback,
            timeout_ms,
        } => Box::new(CommandAction::new(CommandFault {
            host: None,
            run: run.clone(),
            rollback: rollback.clone(),
            timeout: Duration::from_millis(*timeout_ms),
        })),
    })
}

/// A one-line description without the host, worded as the harness words
/// its local faults: `cpu 80% on 1 core`.
pub fn describe(spec: &RemoteSpec) -> String {
    match spec {
        RemoteSpec::Cpu { load, cores } => {
            let on = match cores {
                None => "all cores".to_string(),
                Some(1) => "1 core".to_string(),
                Some(n) => format!("{n} cores"),
            };
            format!("cpu {:.0}% on {on}", load * 100.0)
        }
        RemoteSpec::Memory { bytes, ramp_ms, .. } => {
            let mut text = format!("memory {}", format_size(*bytes));
            if *ramp_ms > 0 {
                let ramp = format_duration(Duration::from_millis(*ramp_ms));
                text.push_str(&format!(" (ramp {ramp})"));
            }
            text
        }
        RemoteSpec::Kill {
            signal,
            pidfile,
            name,
        } => match (name, pidfile) {
            (Some(name), _) => format!("kill -{signal} processes named `{name}`"),
            (None, Some(path)) => format!("kill -{signal} pidfile {path}"),
            (None, None) => format!("kill -{signal}"),
        },
        RemoteSpec::Command { run, rollback, .. } => match rollback {
            Some(r) => format!("command `{run}` (rollback `{r}`)"),
            None => format!("command `{run}`"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> RemoteSpec {
        serde_json::from_value(v).expect("a spec")
    }

    #[test]
    fn descriptions_read_as_written() {
        #[rustfmt::skip]
        let cases = [
            (json!({"type": "cpu", "load": 0.8, "cores": 1}), "cpu 80% on 1 core"),
            (json!({"type": "cpu", "load": 0.5, "cores": 4}), "cpu 50% on 4 cores"),
            (json!({"type": "cpu", "load": 1.0}), "cpu 100% on all cores"),
            (json!({"type": "memory", "bytes": 536870912}), "memory 512MiB"),
            (json!({"type": "memory", "bytes": 1610612736u64, "ramp_ms": 2000}), "memory 1.5GiB (ramp 2s)"),
            (json!({"type": "kill", "signal": "TERM", "name": "nginx"}), "kill -TERM processes named `nginx`"),
            (json!({"type": "kill", "signal": "STOP", "pidfile": "/run/db.pid"}), "kill -STOP pidfile /run/db.pid"),
            (json!({"type": "command", "run": "a", "rollback": "b", "timeout_ms": 5}), "command `a` (rollback `b`)"),
        ];
        for (value, expected) in cases {
            assert_eq!(describe(&spec(value)), expected);
        }
    }

    #[test]
    fn out_of_range_values_are_refused_with_the_field_named() {
        #[rustfmt::skip]
        let cases = [
            (json!({"type": "cpu", "load": 0.0}), "`load`"),
            (json!({"type": "cpu", "load": 1.5}), "`load`"),
            (json!({"type": "cpu", "load": 0.5, "cores": 0}), "`cores`"),
            (json!({"type": "memory", "bytes": 0}), "`bytes`"),
            (json!({"type": "memory", "bytes": 1099511627776u64}), "--allow-force"),
            (json!({"type": "memory", "bytes": 1099511627776u64, "force": true}), "does not run with --allow-force"),
            (json!({"type": "cpu", "load": 0.5, "cores": 4096}), "more than this host's"),
            (json!({"type": "kill", "signal": "HUP", "name": "x"}), "`signal`"),
            (json!({"type": "kill", "signal": "TERM"}), "exactly one"),
            (json!({"type": "kill", "signal": "TERM", "name": "x", "pidfile": "/p"}), "exactly one"),
            (json!({"type": "kill", "signal": "TERM", "name": ""}), "must not be empty"),
            (json!({"type": "command", "run": " ", "timeout_ms": 5}), "`run`"),
            (json!({"type": "command", "run": "x", "rollback": "", "timeout_ms": 5}), "`rollback`"),
            (json!({"type": "command", "run": "x", "timeout_ms": 0}), "`timeout_ms`"),
        ];
        for (value, part) in cases {
            let err = validate(&spec(value.clone()), false).expect_err("refused");
            assert!(err.0.contains(part), "{value}: {err}");
        }
        assert!(validate(
            &spec(json!({"type": "cpu", "load": 0.8, "cores": 1})),
            false
        )
        .is_ok());
    }

    #[test]
    fn kinds_are_the_spec_types() {
        let cmd = spec(json!({"type": "command", "run": "x", "timeout_ms": 5}));
        assert_eq!(kind(&cmd), "command");
        assert_eq!(build(&cmd).map(|f| f.kind()).ok(), Some("command"));
    }
}
