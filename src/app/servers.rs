//! The long-running commands and their helpers: `demo`, `proxy`, `agent`,
//! the `stress` child, and `rollback` of a killed run.

use crate::cli::{AgentArgs, DemoArgs, ProxyArgs, RollbackArgs};
use crate::config;
use crate::exit::ExitCode;
use crate::runner;
use crate::{eoutln, outln};
use std::path::Path;

pub(super) async fn demo(args: DemoArgs) -> ExitCode {
    let latency = config::units::parse_duration(&args.payments_latency)
        .map_err(|e| format!("--payments-latency: {e}"));
    let weight = demo_weight(&args.canary_weight).map_err(|e| format!("--canary-weight: {e}"));
    let defects = demo_defects(&args.defects);
    let (payments_latency, canary_weight, defects) = match (latency, weight, defects) {
        (Ok(l), Ok(w), Ok(d)) => (l, w, d),
        (l, w, d) => {
            for message in [l.err(), w.err(), d.err()].into_iter().flatten() {
                eoutln!("error: {message}");
            }
            return ExitCode::InvalidInput;
        }
    };
    if let Some(message) = config::defect_conflict(&defects) {
        eoutln!("error: --defect: {message}");
        return ExitCode::InvalidInput;
    }
    if defects.contains(&config::model::Defect::NoEjection) && !args.failover {
        eoutln!("error: --defect no_ejection bends the fail-over: add --failover");
        return ExitCode::InvalidInput;
    }
    let opts = config::model::DemoOptions {
        payments_latency,
        canary_weight,
        defects,
        failover: args.failover.then(config::model::FailoverOptions::default),
        ..Default::default()
    };
    match crate::demo::run_foreground(opts, args.seed, args.port).await {
        Ok(()) => ExitCode::Passed,
        Err(e) => {
            eoutln!("error: {e}");
            ExitCode::CouldNotRun
        }
    }
}

/// `10%` or `0.1`: the canary's share, 0..=1, read as YAML reads it.
pub(super) fn demo_weight(text: &str) -> Result<f64, String> {
    config::units::parse_share(&serde_yaml::Value::String(text.to_string()), "10%")
}

/// `--defect` names → defects (each once), or one message naming every unknown one.
pub(super) fn demo_defects(names: &[String]) -> Result<Vec<config::model::Defect>, String> {
    use config::model::Defect;
    let keys: Vec<&str> = Defect::ALL.iter().map(|d| d.key()).collect();
    let mut defects = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match Defect::from_key(name) {
            Some(d) if !defects.contains(&d) => defects.push(d),
            Some(_) => {}
            None => unknown.push(match config::did_you_mean(name, keys.iter().copied()) {
                Some(s) => format!("unknown defect `{name}` (did you mean `{s}`?)"),
                None => format!("unknown defect `{name}`"),
            }),
        }
    }
    if unknown.is_empty() {
        Ok(defects)
    } else {
        Err(format!(
            "--defect: {}; known defects: {}",
            unknown.join(", "),
            config::one_of(&keys)
        ))
    }
}

pub(super) async fn proxy(args: ProxyArgs) -> ExitCode {
    let token = match args.token_file.as_deref().map(read_token).transpose() {
        Ok(t) => t,
        Err(code) => return code,
    };
    if !(args.admin.ip().is_loopback() || args.allow_remote && token.is_some()) {
        eoutln!(
            "error: --admin {} is not a loopback address: anyone who can reach it could inject faults. \
             Pass --allow-remote and --token-file FILE to require a bearer token.",
            args.admin
        );
        return ExitCode::InvalidInput;
    }
    let opts = crate::proxy::api::AdminOptions {
        admin: args.admin,
        config: args.config,
        allow_remote: args.allow_remote,
        token,
        seed: args.seed,
    };
    let result = crate::proxy::api::run_standalone(opts).await;
    server_exit(result.as_ref().err().map(|e| {
        (
            e as &(dyn std::error::Error + 'static),
            e.is_invalid_input(),
        )
    }))
}

/// Undoes every entry of the given (or found) rollback journals.
pub(super) async fn rollback(args: RollbackArgs) -> ExitCode {
    use crate::faults::journal;
    let journals = if args.journal.is_empty() {
        journal::find_all(Path::new("reports"))
    } else {
        args.journal.clone()
    };
    let mut undone = 0usize;
    let mut failed = 0usize;
    for path in &journals {
        let entries = match journal::read(path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.journal.len() <= 1 => {
                outln!("nothing to roll back: {} does not exist", path.display());
                continue;
            }
            Err(e) => {
                // One unreadable journal must not stop the others' cleanup.
                eoutln!("FAILED to read {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let mut left = Vec::new();
        // Newest first, like the run's own rollback: a target stopped with
        // SIGSTOP is continued before it is asked to exit.
        for entry in entries.into_iter().rev() {
            match entry.undo().await {
                Ok(journal::Undone::Done) => {
                    outln!("{} {entry}", entry.undone_verb());
                    undone += 1;
                }
                Ok(journal::Undone::Gone) => {
                    outln!("already gone: {entry}");
                }
                Err(e) => {
                    eoutln!("FAILED to remove {entry}: {e}");
                    failed += 1;
                    left.insert(0, entry);
                }
            }
        }
        if let Err(e) = journal::write(path, &left) {
            eoutln!("error: cannot update {}: {e}", path.display());
        }
    }
    if failed > 0 {
        eoutln!("{failed} change(s) could not be removed; they are still listed in their journal");
        return ExitCode::RollbackFailed;
    }
    if undone == 0 {
        outln!("nothing to roll back");
    }
    ExitCode::Passed
}

/// The hidden `faultline stress ...`: the pressure child of a cpu/memory fault.
pub(super) fn stress(args: &[String]) -> ExitCode {
    match crate::faults::stress::StressArgs::parse(args) {
        Ok(parsed) => ExitCode::from_report_code(crate::faults::stress::stress_main(&parsed)),
        Err(e) => {
            eoutln!("error: faultline stress: {e}");
            ExitCode::InvalidInput
        }
    }
}

pub(super) async fn agent(args: AgentArgs) -> ExitCode {
    if let Err(code) = token_file_private(&args.token_file, args.strict) {
        return code;
    }
    let token = match read_token(&args.token_file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if !(args.listen.ip().is_loopback() || args.allow_remote) {
        eoutln!(
            "error: --listen {} is not a loopback address; pass --allow-remote to expose the agent (its token is required on every request)",
            args.listen
        );
        return ExitCode::InvalidInput;
    }
    let opts = crate::agent::AgentOptions {
        listen: args.listen,
        token,
        allow_remote: args.allow_remote,
        default_lease: std::time::Duration::from_secs(args.lease.max(1)),
        allow_force: args.allow_force,
    };
    let result = crate::agent::run_agent(opts).await;
    server_exit(result.as_ref().err().map(|e| {
        (
            e as &(dyn std::error::Error + 'static),
            e.is_invalid_input(),
        )
    }))
}

/// A token file others can read gives the token away: warned about, or
/// refused with `--strict` (as ssh refuses a private key others can read).
pub(super) fn token_file_private(path: &Path, strict: bool) -> Result<(), ExitCode> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        // Unreadable: `read_token` says why.
        return Ok(());
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let what = if strict { "error" } else { "warning" };
    eoutln!(
        "{what}: --token-file {} is readable by group or others (mode {:o}); run `chmod 600` on it",
        path.display(),
        mode & 0o777
    );
    if strict {
        Err(ExitCode::InvalidInput)
    } else {
        Ok(())
    }
}

/// A bearer token from a file (surrounding whitespace dropped); an empty or
/// unreadable file is invalid input.
pub(super) fn read_token(path: &Path) -> Result<String, ExitCode> {
    let refuse = |why: String| {
        eoutln!("error: --token-file {}: {why}", path.display());
        Err(ExitCode::InvalidInput)
    };
    // Bounded: `--token-file /dev/zero` or a FIFO must not hang or fill memory.
    let bytes = match crate::bounds::read_regular(path, crate::bounds::TOKEN_FILE_MAX_BYTES) {
        Ok(bytes) => bytes,
        Err(e) => return refuse(e.to_string()),
    };
    match String::from_utf8(bytes) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => refuse("it is empty".into()),
        Err(_) => refuse("it is not UTF-8 text".into()),
    }
}

/// The exit of a foreground server (`proxy`, `agent`): its error, if any,
/// with the whole cause chain; bad flags or files are invalid input (2).
pub(super) fn server_exit(error: Option<(&(dyn std::error::Error + 'static), bool)>) -> ExitCode {
    match error {
        None => ExitCode::Passed,
        Some((e, invalid_input)) => {
            eoutln!("error: {}", runner::proxies::error_chain(e));
            if invalid_input {
                ExitCode::InvalidInput
            } else {
                ExitCode::CouldNotRun
            }
        }
    }
}
