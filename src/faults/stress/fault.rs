//! [`StressFault`]: runs `faultline stress ...` for the length of a phase.
//!
//! Three layers make sure the child does not outlive the fault: `remove`
//! kills its process group; `Drop` does the same if `remove` never ran; and
//! the child's `PR_SET_PDEATHSIG` kills it if the harness itself is killed.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child ends,
//! not the process. Faults are applied from whatever thread polls them (a
//! runtime worker, a `spawn_blocking` thread that is retired after 10 s
//! idle, a test's thread), so the child is spawned from a thread of its
//! own that lives exactly as long as the fault holds the child.

use super::args::StressArgs;
use super::child::per_thread_load;
use super::{cgroup_cpu_limit, format_bytes, BIN_ENV, PARENT_ENV};
use crate::faults::{BoxFuture, Evidence, Fault, FaultError};
use crate::metrics::telemetry::{Watched, WatchedProcess};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::json;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdout, Command};

/// How long the child may take to start and report `ready` (exec of a large
/// binary on a busy CI machine, the first memory chunk).
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long `remove` waits for the killed child to be gone.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Stderr kept from a child that failed to start.
const MAX_STDERR: u64 = 4096;

/// CPU or memory pressure from a child process.
pub struct StressFault {
    args: StressArgs,
    watched: Option<Watched>,
    running: Option<Running>,
}

/// A started child. Fields drop in order: the child first (`kill_on_drop`),
/// then the keeper, whose thread's end would also kill it (pdeathsig).
struct Running {
    child: Child,
    pid: u32,
    /// Kept open so that late writes by the child do not fail; read only
    /// when the child exits before `ready`.
    stderr: Option<ChildStderr>,
    _keeper: Keeper,
}

/// Dropping it ends the thread that spawned the child.
struct Keeper(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

impl StressFault {
    /// `load` (0..=1) of each of `cores` cores; all usable cores when `None`.
    pub fn cpu(load: f64, cores: Option<usize>, watched: Option<Watched>) -> StressFault {
        let cores = cores.unwrap_or_else(default_cores);
        StressFault::new(StressArgs::Cpu { load, cores }, watched)
    }

    /// `bytes` of resident memory, reached linearly over `ramp`.
    pub fn memory(bytes: u64, ramp: Duration, watched: Option<Watched>) -> StressFault {
        StressFault::new(StressArgs::Memory { bytes, ramp }, watched)
    }

    fn new(args: StressArgs, watched: Option<Watched>) -> StressFault {
        StressFault {
            args,
            watched,
            running: None,
        }
    }

    /// The arguments the child runs with.
    pub fn args(&self) -> &StressArgs {
        &self.args
    }

    /// The child's pid while it is held.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    async fn start(&mut self) -> Result<Evidence, FaultError> {
        // A second apply replaces the first child rather than leaking it.
        self.stop().await?;
        let mut argv = vec!["stress".to_string()];
        argv.extend(self.args.to_args());
        let exe = executable().map_err(|source| FaultError::Spawn {
            command: format!("faultline {}", argv.join(" ")),
            source,
        })?;
        let command = format!("{} {}", exe.display(), argv.join(" "));
        let mut cmd = Command::new(&exe);
        cmd.args(&argv)
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let (mut child, keeper) = spawn_kept(cmd).await.map_err(|source| FaultError::Spawn {
            command: command.clone(),
            source,
        })?;
        let Some(pid) = child.id() else {
            return Err(FaultError::CommandFailed {
                command,
                status: "exited at once".into(),
                stderr: String::new(),
            });
        };
        let stdout = child.stdout.take();
        self.running = Some(Running {
            stderr: child.stderr.take(),
            child,
            pid,
            _keeper: keeper,
        });
        self.watch(pid);
        match tokio::time::timeout(READY_TIMEOUT, wait_ready(stdout)).await {
            Ok(true) => Ok(self.evidence(pid)),
            Ok(false) => {
                // The child closed stdout without `ready`: it exited.
                let stderr = match self.running.as_mut().and_then(|r| r.stderr.take()) {
                    Some(pipe) => read_clipped(pipe).await,
                    None => String::new(),
                };
                let status = self.stop().await?;
                Err(FaultError::CommandFailed {
                    command,
                    status: status.map_or_else(|| "unknown".into(), |s| s.to_string()),
                    stderr,
                })
            }
            Err(_) => {
                self.stop().await?;
                Err(FaultError::Timeout {
                    command,
                    timeout: READY_TIMEOUT,
                })
            }
        }
    }

    fn evidence(&self, pid: u32) -> Evidence {
        match self.args {
            StressArgs::Cpu { load, cores } => {
                let quota = cgroup_cpu_limit();
                json!({
                    "pid": pid,
                    "load": load,
                    "cores": cores,
                    "cgroup_cpu_limit": quota,
                    "load_per_thread": per_thread_load(load, cores, quota),
                })
            }
            StressArgs::Memory { bytes, ramp } => json!({
                "pid": pid,
                "bytes": bytes,
                "ramp_ms": u64::try_from(ramp.as_millis()).unwrap_or(u64::MAX),
            }),
        }
    }

    /// Kills the child's process group and waits for the child. Returns its
    /// exit status (`None` when no child was held) and whether it had
    /// already exited on its own (OOM killer, crash).
    async fn stop(&mut self) -> Result<Option<ExitStatus>, FaultError> {
        Ok(self.stop_reporting().await?.map(|(status, _)| status))
    }

    async fn stop_reporting(&mut self) -> Result<Option<(ExitStatus, bool)>, FaultError> {
        let Some(running) = self.running.as_mut() else {
            return Ok(None);
        };
        let pid = running.pid;
        let early = running.child.try_wait().ok().flatten();
        let status = match early {
            Some(status) => status,
            None => {
                kill_group(running);
                match tokio::time::timeout(REMOVE_TIMEOUT, running.child.wait()).await {
                    Ok(Ok(status)) => status,
                    Ok(Err(e)) => {
                        return Err(FaultError::CommandFailed {
                            command: format!("wait for stress child {pid}"),
                            status: "unknown".into(),
                            stderr: e.to_string(),
                        })
                    }
                    // Still held: `Drop` tries again.
                    Err(_) => return Err(FaultError::RemoveTimeout(REMOVE_TIMEOUT)),
                }
            }
        };
        self.running = None;
        self.unwatch(pid);
        Ok(Some((status, early.is_some())))
    }

    fn watch(&self, pid: u32) {
        if let Some(watched) = &self.watched {
            let mut list = watched.lock().unwrap_or_else(|e| e.into_inner());
            list.push(WatchedProcess {
                role: "stress".into(),
                pid,
            });
        }
    }

    fn unwatch(&self, pid: u32) {
        if let Some(watched) = &self.watched {
            let mut list = watched.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|p| !(p.role == "stress" && p.pid == pid));
        }
    }
}

impl Fault for StressFault {
    fn kind(&self) -> &'static str {
        match self.args {
            StressArgs::Cpu { .. } => "cpu",
            StressArgs::Memory { .. } => "memory",
        }
    }

    fn describe(&self) -> String {
        describe(&self.args)
    }

    fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(self.start())
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            let pid = self.pid();
            Ok(match self.stop_reporting().await? {
                None => Evidence::Null,
                Some((status, early)) => json!({
                    "pid": pid,
                    "status": status.to_string(),
                    "exited_before_remove": early,
                }),
            })
        })
    }
}

impl Drop for StressFault {
    fn drop(&mut self) {
        if let Some(running) = self.running.as_mut() {
            if matches!(running.child.try_wait(), Ok(None)) {
                kill_group(running);
            }
            let pid = running.pid;
            self.unwatch(pid);
        }
    }
}

/// `cpu 80% on 2 cores`, `memory 256MiB (ramp 10s)`.
pub fn describe(args: &StressArgs) -> String {
    match *args {
        StressArgs::Cpu { load, cores } => {
            let percent = (load * 1000.0).round() / 10.0;
            let unit = if cores == 1 { "core" } else { "cores" };
            format!("cpu {percent}% on {cores} {unit}")
        }
        StressArgs::Memory { bytes, ramp } if ramp.is_zero() => {
            format!("memory {}", format_bytes(bytes))
        }
        StressArgs::Memory { bytes, ramp } => format!(
            "memory {} (ramp {})",
            format_bytes(bytes),
            humantime::format_duration(ramp)
        ),
    }
}

/// The cores a CPU fault without `cores` uses: as many as the cgroup quota
/// allows (rounded up, so 1.5 is two threads at 75%), else what the process
/// may run on.
pub fn default_cores() -> usize {
    match cgroup_cpu_limit() {
        Some(quota) => (quota.ceil() as usize).max(1),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// `$FAULTLINE_BIN`, else this executable.
fn executable() -> std::io::Result<PathBuf> {
    match std::env::var_os(BIN_ENV) {
        Some(bin) if !bin.is_empty() => Ok(PathBuf::from(bin)),
        _ => std::env::current_exe(),
    }
}

/// SIGKILL to the child's group (it leads its own, so grandchildren go too),
/// and to the child itself in case the group could not be formed.
fn kill_group(running: &mut Running) {
    if let Ok(raw) = i32::try_from(running.pid) {
        let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
    }
    let _ = running.child.start_kill();
}

/// Spawns `cmd` from a new thread that then waits until the returned
/// [`Keeper`] is dropped (see the module docs for why).
async fn spawn_kept(mut cmd: Command) -> std::io::Result<(Child, Keeper)> {
    let handle = tokio::runtime::Handle::current();
    let (child_tx, child_rx) = tokio::sync::oneshot::channel();
    let (keep_tx, keep_rx) = std::sync::mpsc::channel::<()>();
    std::thread::Builder::new()
        .name("stress-parent".into())
        .spawn(move || {
            // The child registers with this runtime's reaper and signal driver.
            let spawned = {
                let _runtime = handle.enter();
                cmd.spawn()
            };
            let started = spawned.is_ok();
            if child_tx.send(spawned).is_ok() && started {
                // Returns (with an error) once the keeper is dropped.
                let _ = keep_rx.recv();
            }
        })?;
    let child = child_rx
        .await
        .map_err(|_| std::io::Error::other("the stress spawner thread ended"))??;
    Ok((child, Keeper(keep_tx)))
}

/// True once the child prints `ready`; false if stdout closes first.
async fn wait_ready(stdout: Option<ChildStdout>) -> bool {
    let Some(stdout) = stdout else {
        return false;
    };
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "ready" {
            return true;
        }
    }
    false
}

async fn read_clipped(pipe: ChildStderr) -> String {
    let mut text = String::new();
    let mut limited = pipe.take(MAX_STDERR);
    let read = limited.read_to_string(&mut text);
    let _ = tokio::time::timeout(Duration::from_secs(1), read).await;
    text.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn cpu_faults_read_as_load_and_cores() {
        assert_eq!(
            describe(&StressArgs::Cpu {
                load: 0.8,
                cores: 2
            }),
            "cpu 80% on 2 cores"
        );
        assert_eq!(
            describe(&StressArgs::Cpu {
                load: 0.125,
                cores: 1
            }),
            "cpu 12.5% on 1 core"
        );
    }

    #[test]
    fn memory_faults_read_as_size_and_ramp() {
        let ramped = StressArgs::Memory {
            bytes: 256 << 20,
            ramp: Duration::from_secs(10),
        };
        assert_eq!(describe(&ramped), "memory 256MiB (ramp 10s)");
        let at_once = StressArgs::Memory {
            bytes: 1 << 30,
            ramp: Duration::ZERO,
        };
        assert_eq!(describe(&at_once), "memory 1GiB");
    }

    #[test]
    fn the_kind_is_the_yaml_type() {
        assert_eq!(StressFault::cpu(0.5, Some(1), None).kind(), "cpu");
        assert_eq!(
            StressFault::memory(1, Duration::ZERO, None).kind(),
            "memory"
        );
    }

    #[test]
    fn cpu_without_cores_uses_at_least_one() {
        let fault = StressFault::cpu(0.5, None, None);
        assert!(matches!(fault.args(), StressArgs::Cpu { cores, .. } if *cores >= 1));
    }

    #[tokio::test]
    async fn removing_a_fault_that_never_started_does_nothing() {
        let watched: Watched = Arc::new(Mutex::new(Vec::new()));
        let mut fault = StressFault::memory(1 << 20, Duration::ZERO, Some(watched.clone()));
        let evidence = tokio::time::timeout(Duration::from_secs(5), fault.remove())
            .await
            .expect("in time")
            .expect("nothing to remove");
        assert_eq!(evidence, Evidence::Null);
        assert!(watched.lock().expect("lock").is_empty());
    }
}
