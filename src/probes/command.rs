//! The `command` probe: `sh -c run`, passing on the expected exit code and,
//! if given, a stdout pattern.
//!
//! The shell is run by [`crate::faults::command::run_captured`], as the
//! `command` fault runs it: in its own process group, the whole group killed
//! on timeout, output bounded, and no waiting on pipes that a background
//! child keeps open.

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use super::check::{self, clip};
use super::{timed_out, Observation};
use crate::config::model_verify::CommandProbe;
use crate::faults::command::{run_captured, ShellError};

/// Characters of the first stdout (or stderr) line kept in a value or reason.
const LINE: usize = 200;

/// Observes one `command` probe within `timeout`.
/// `env` is the run's environment for commands (`FAULTLINE_TARGET_URL`).
pub(super) async fn observe(
    probe: &CommandProbe,
    timeout: Duration,
    env: &[(String, String)],
) -> Observation {
    // Compiled before running: a bad pattern should not run the command.
    let stdout_regex = match probe.stdout.as_deref().map(check::regex).transpose() {
        Ok(regex) => regex,
        Err(reason) => return Observation::fail(None, reason),
    };
    let output = match run_captured(&probe.run, timeout, env, None).await {
        Ok(output) => output,
        Err(ShellError::Spawn(e)) => return Observation::fail(None, format!("cannot run sh: {e}")),
        Err(ShellError::Timeout) => {
            return Observation::fail(
                None,
                format!("{} (its process group was killed)", timed_out(timeout)),
            )
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let first_line = |text: &str| clip(text.lines().next().unwrap_or_default().trim(), LINE);
    let (exit, value) = match output.status.code() {
        Some(code) => {
            let line = first_line(&stdout);
            let value = if line.is_empty() {
                format!("exit {code}")
            } else {
                format!("exit {code}: {line}")
            };
            (format!("exit code {code}"), value)
        }
        None => {
            let signal = output.status.signal().unwrap_or_default();
            let killed = format!("killed by signal {signal}");
            (killed.clone(), killed)
        }
    };
    if output.status.code() != Some(probe.exit_code) {
        let stderr = first_line(&String::from_utf8_lossy(&output.stderr));
        let mut reason = format!("expected exit code {}, got {exit}", probe.exit_code);
        if !stderr.is_empty() {
            reason.push_str(&format!(" (stderr: {stderr})"));
        }
        return Observation::fail(Some(value), reason);
    }
    // Without the final newline, `^ok$` matches a one-line `echo ok`.
    let judged = stdout.trim_end_matches(['\n', '\r']);
    match &stdout_regex {
        Some(regex) if !regex.is_match(judged) => Observation::fail(
            Some(value),
            format!("stdout does not match /{}/", regex.as_str()),
        ),
        Some(regex) => Observation::pass(
            Some(value),
            format!("{exit}, stdout matches /{}/", regex.as_str()),
        ),
        None => Observation::pass(Some(value), exit),
    }
}
