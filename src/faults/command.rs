//! The `command` fault: run a shell command at phase start and optionally
//! another at phase end. The escape hatch for faults faultline does not do
//! natively (`systemctl stop redis`, `docker pause db`, switching a load balancer).

use super::{BoxFuture, Evidence, Fault, FaultError};
use crate::config::model::CommandFault;
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

/// Output kept per stream in the report, so a chatty command cannot bloat it.
const MAX_OUTPUT: usize = 4096;

pub struct CommandAction {
    spec: CommandFault,
}

impl CommandAction {
    pub fn new(spec: CommandFault) -> CommandAction {
        CommandAction { spec }
    }
}

impl Fault for CommandAction {
    fn kind(&self) -> &'static str {
        "command"
    }

    fn describe(&self) -> String {
        match &self.spec.rollback {
            Some(r) => format!("command `{}` (rollback `{}`)", self.spec.run, r),
            None => format!("command `{}`", self.spec.run),
        }
    }

    fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(run_shell(self.spec.run.clone(), self.spec.timeout))
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        let rollback = self.spec.rollback.clone();
        let timeout = self.spec.timeout;
        Box::pin(async move {
            match rollback {
                Some(cmd) => run_shell(cmd, timeout).await,
                None => Ok(Evidence::Null),
            }
        })
    }
}

/// Runs `sh -c command` with a timeout; a non-zero exit is an error. The
/// child is killed if the timeout passes (`kill_on_drop`).
pub async fn run_shell(command: String, timeout: Duration) -> Result<Evidence, FaultError> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| FaultError::Spawn {
            command: command.clone(),
            source,
        })?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(source)) => return Err(FaultError::Spawn { command, source }),
        Err(_) => return Err(FaultError::Timeout { command, timeout }),
    };
    let stdout = clip(&output.stdout);
    let stderr = clip(&output.stderr);
    if output.status.success() {
        Ok(json!({
            "command": command,
            "exit_code": output.status.code(),
            "stdout": stdout,
            "stderr": stderr,
        }))
    } else {
        Err(FaultError::CommandFailed {
            command,
            status: output.status.to_string(),
            stderr: if stderr.is_empty() { stdout } else { stderr },
        })
    }
}

fn clip(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_end();
    match text.char_indices().nth(MAX_OUTPUT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_successful_command_reports_its_output() {
        let ev = run_shell("echo hello; echo oops >&2".into(), Duration::from_secs(5))
            .await
            .expect("command succeeds");
        assert_eq!(ev["exit_code"], 0);
        assert_eq!(ev["stdout"], "hello");
        assert_eq!(ev["stderr"], "oops");
    }

    #[tokio::test]
    async fn a_failing_command_is_an_error_with_its_stderr() {
        let err = run_shell("echo broken >&2; exit 3".into(), Duration::from_secs(5))
            .await
            .expect_err("exit 3 fails");
        let msg = err.to_string();
        assert!(
            msg.contains("exit status: 3") && msg.contains("broken"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn a_command_over_its_timeout_is_killed() {
        let start = std::time::Instant::now();
        let err = run_shell("sleep 10".into(), Duration::from_millis(200))
            .await
            .expect_err("times out");
        assert!(matches!(err, FaultError::Timeout { .. }));
        assert!(start.elapsed() < Duration::from_secs(2));
    }
}
