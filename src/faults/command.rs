//! The `command` fault: run a shell command at phase start and optionally
//! another at phase end. The escape hatch for faults faultline does not do
//! natively (`systemctl stop redis`, `docker pause db`, switching a load balancer).

use super::journal::{JournalEntry, RollbackJournal};
use super::{BoxFuture, Evidence, Fault, FaultError};
use crate::config::model::CommandFault;
use serde_json::json;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

/// Output kept per stream in the report, so a chatty command cannot bloat it.
const MAX_OUTPUT: usize = 4096;

pub struct CommandAction {
    spec: CommandFault,
    env: Vec<(String, String)>,
    /// Where the rollback is written down before `run` starts, so
    /// `faultline rollback` runs it if faultline is killed in between.
    journal: Option<Arc<RollbackJournal>>,
}

impl CommandAction {
    pub fn new(spec: CommandFault) -> CommandAction {
        CommandAction {
            spec,
            env: Vec::new(),
            journal: None,
        }
    }

    /// Journals the rollback (if there is one) in `journal`.
    pub fn journaled(mut self, journal: Option<Arc<RollbackJournal>>) -> CommandAction {
        self.journal = journal;
        self
    }

    /// The journal and the entry of the rollback, when both exist.
    fn journal_entry(&self) -> Option<(&RollbackJournal, JournalEntry)> {
        let rollback = self.spec.rollback.as_ref()?;
        let journal = self.journal.as_deref()?;
        Some((
            journal,
            JournalEntry::RunCommand {
                command: rollback.clone(),
                timeout_ms: u64::try_from(self.spec.timeout.as_millis()).unwrap_or(u64::MAX),
                env: self.env.clone(),
                // Relative paths in the rollback mean what they meant here.
                cwd: std::env::current_dir().ok(),
            },
        ))
    }

    /// Extra environment for both commands (e.g. `FAULTLINE_TARGET_URL`).
    pub fn with_env(mut self, env: Vec<(String, String)>) -> CommandAction {
        self.env = env;
        self
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
        Box::pin(async move {
            if let Some((journal, entry)) = self.journal_entry() {
                journal.record(entry).map_err(|e| {
                    FaultError::Unsupported(format!(
                        "cannot write the rollback journal {}: {e}",
                        journal.path().display()
                    ))
                })?;
            }
            run_shell(self.spec.run.clone(), self.spec.timeout, self.env.clone()).await
        })
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            let Some(cmd) = self.spec.rollback.clone() else {
                return Ok(Evidence::Null);
            };
            let result = run_shell(cmd, self.spec.timeout, self.env.clone()).await;
            // A rollback that failed stays journaled: `faultline rollback`
            // tries it again once the cause is fixed.
            if let (Ok(_), Some((journal, entry))) = (&result, self.journal_entry()) {
                let _ = journal.forget(&entry);
            }
            result
        })
    }
}

/// Runs `sh -c command` with a timeout; a non-zero exit is an error.
///
/// How the shell is run is [`run_captured`]'s; this only judges and reports.
pub async fn run_shell(
    command: String,
    timeout: Duration,
    env: Vec<(String, String)>,
) -> Result<Evidence, FaultError> {
    run_shell_in(command, timeout, env, None).await
}

/// [`run_shell`] in the folder `cwd` (default: faultline's own), as
/// `faultline rollback` replays a journaled rollback where the run ran it.
pub async fn run_shell_in(
    command: String,
    timeout: Duration,
    env: Vec<(String, String)>,
    cwd: Option<&std::path::Path>,
) -> Result<Evidence, FaultError> {
    let output = match run_captured(&command, timeout, &env, cwd).await {
        Ok(output) => output,
        Err(ShellError::Spawn(source)) => return Err(FaultError::Spawn { command, source }),
        Err(ShellError::Timeout) => return Err(FaultError::Timeout { command, timeout }),
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

/// What a shell command left behind once it exited.
#[derive(Debug)]
pub struct ShellOutput {
    pub status: std::process::ExitStatus,
    /// The first [`MAX_CAPTURE`] bytes or so of each stream (whole reads are
    /// kept until the limit is passed); later output is dropped.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Why [`run_captured`] has no [`ShellOutput`].
#[derive(Debug)]
pub enum ShellError {
    /// `sh` could not be started or waited for.
    Spawn(std::io::Error),
    /// It ran past its timeout; its whole process group was killed.
    Timeout,
}

/// Output captured per stream by [`run_captured`]; the rest is read and dropped.
pub const MAX_CAPTURE: usize = MAX_OUTPUT * 4;

/// Runs `sh -c command` with a timeout and captures its output (bounded).
/// Shared by the `command` fault and the `command` probe.
///
/// The shell gets its own process group, so a Ctrl-C in the terminal (sent
/// to faultline's group) does not kill a rollback in flight; on timeout the
/// whole group is killed. Output is read concurrently and, once the shell has
/// exited, only briefly: a background process it started may keep the pipes
/// open forever.
pub async fn run_captured(
    command: &str,
    timeout: Duration,
    env: &[(String, String)],
    cwd: Option<&std::path::Path>,
) -> Result<ShellOutput, ShellError> {
    use tokio::io::AsyncReadExt;
    let mut shell = tokio::process::Command::new("sh");
    if let Some(dir) = cwd {
        shell.current_dir(dir);
    }
    let mut child = shell
        .arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(ShellError::Spawn)?;
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    // Interrupted (the future dropped: Ctrl-C, a stop condition) before the
    // shell exited: kill its whole group, so nothing the command started
    // lands after the abort. Disarmed once the shell has exited.
    let mut group = GroupGuard(pgid);
    type Shared = std::sync::Arc<std::sync::Mutex<Vec<u8>>>;
    // Appends as it reads, so what arrived is kept even if the pipe never closes.
    fn reader<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
        pipe: Option<R>,
    ) -> (Shared, tokio::task::JoinHandle<()>) {
        let shared: Shared = Default::default();
        let sink = shared.clone();
        let task = tokio::spawn(async move {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                let mut buf = sink.lock().unwrap_or_else(|p| p.into_inner());
                if buf.len() < MAX_CAPTURE {
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
        });
        (shared, task)
    }
    let (out_buf, mut out_task) = reader(child.stdout.take());
    let (err_buf, mut err_task) = reader(child.stderr.take());
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => {
            group.0 = None;
            status
        }
        Ok(Err(source)) => return Err(ShellError::Spawn(source)),
        Err(_) => {
            if let Some(pgid) = pgid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let _ = child.kill().await;
            out_task.abort();
            err_task.abort();
            return Err(ShellError::Timeout);
        }
    };
    let grace = Duration::from_millis(200);
    let _ = tokio::time::timeout(grace, &mut out_task).await;
    let _ = tokio::time::timeout(grace, &mut err_task).await;
    out_task.abort();
    err_task.abort();
    let taken = |b: &Shared| std::mem::take(&mut *b.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(ShellOutput {
        status,
        stdout: taken(&out_buf),
        stderr: taken(&err_buf),
    })
}

/// Kills a process group when dropped, unless emptied first.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.filter(|&p| p > 1) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
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
        let ev = run_shell(
            "echo hello; echo oops >&2".into(),
            Duration::from_secs(5),
            Vec::new(),
        )
        .await
        .expect("command succeeds");
        assert_eq!(ev["exit_code"], 0);
        assert_eq!(ev["stdout"], "hello");
        assert_eq!(ev["stderr"], "oops");
    }

    #[tokio::test]
    async fn a_failing_command_is_an_error_with_its_stderr() {
        let err = run_shell(
            "echo broken >&2; exit 3".into(),
            Duration::from_secs(5),
            Vec::new(),
        )
        .await
        .expect_err("exit 3 fails");
        let msg = err.to_string();
        assert!(
            msg.contains("exit status: 3") && msg.contains("broken"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn commands_see_the_run_environment() {
        let env = vec![(
            "FAULTLINE_TARGET_URL".to_string(),
            "http://127.0.0.1:9".to_string(),
        )];
        let ev = run_shell(
            "echo $FAULTLINE_TARGET_URL".into(),
            Duration::from_secs(5),
            env,
        )
        .await
        .expect("command succeeds");
        assert_eq!(ev["stdout"], "http://127.0.0.1:9");
    }

    #[tokio::test]
    async fn a_command_over_its_timeout_is_killed() {
        let start = std::time::Instant::now();
        let err = run_shell("sleep 10".into(), Duration::from_millis(200), Vec::new())
            .await
            .expect_err("times out");
        assert!(matches!(err, FaultError::Timeout { .. }));
        assert!(start.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_background_process_does_not_hold_the_command_up() {
        let start = std::time::Instant::now();
        let ev = run_shell(
            "sleep 5 & echo started".into(),
            Duration::from_secs(3),
            Vec::new(),
        )
        .await
        .expect("the shell itself exits at once");
        assert_eq!(ev["stdout"], "started");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
}
