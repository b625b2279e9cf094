//! The rollback journal: a small file in the run's output folder listing
//! every change that outlives faultline if it is killed (SIGKILL, OOM, a
//! power loss) and has not been undone yet: toxics and disabled proxies on
//! Toxiproxy servers, processes stopped with `kill STOP`, the process a
//! `target.command` started, and `command` faults whose rollback has not
//! run. Each entry is written *before* its change is made and removed once
//! it is undone, so `faultline rollback` knows exactly what to undo.
//! Embedded proxies and stress children need no entry: they die with the
//! process (stress children watch their parent).

use super::toxiproxy::ToxiproxyClient;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The file name inside an experiment's output folder.
pub const FILE_NAME: &str = "rollback.json";

/// How long `faultline rollback` waits for a stopped target's process
/// group to exit after SIGTERM before it sends SIGKILL (as the run does).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// One change that must be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum JournalEntry {
    /// A toxic faultline added: delete it.
    RemoveToxic {
        server: String,
        proxy: String,
        toxic: String,
    },
    /// A proxy faultline disabled: enable it.
    EnableProxy { server: String, proxy: String },
    /// A process (or, with `group`, a process group) faultline stopped with
    /// SIGSTOP: send SIGCONT. `started` is its start time
    /// ([`crate::bounds::start_time`]), so a later process that got the pid
    /// is never signalled.
    ContinueProcess { pid: i32, group: bool, started: u64 },
    /// The process group a `target.command` runs in: SIGTERM, then SIGKILL.
    StopTarget {
        pgid: i32,
        started: u64,
        command: String,
    },
    /// A `command` fault whose rollback has not run yet: run it.
    RunCommand {
        command: String,
        timeout_ms: u64,
        #[serde(default)]
        env: Vec<(String, String)>,
        /// The folder the run ran in.
        #[serde(default)]
        cwd: Option<PathBuf>,
    },
    /// A fault an agent holds for this run: `DELETE /faults/{id}` with the
    /// token from the environment variable `token_env` (the experiment's
    /// own; a token is never written to disk). Without it the agent's
    /// lease removes the fault by itself.
    RemoveAgentFault {
        agent: String,
        url: String,
        id: String,
        token_env: String,
    },
}

/// What undoing an entry found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undone {
    /// The change was undone now.
    Done,
    /// There was nothing left to undo (the process is gone, or its pid
    /// belongs to a newer process).
    Gone,
}

impl JournalEntry {
    /// The entry for stopping `pid` (a group when `group`), or `None` when
    /// the process does not exist.
    pub fn continue_process(pid: i32, group: bool) -> Option<JournalEntry> {
        Some(JournalEntry::ContinueProcess {
            pid,
            group,
            started: crate::bounds::start_time(pid)?,
        })
    }

    /// The entry for a started target whose group leader is `pgid`.
    pub fn stop_target(pgid: i32, command: &str) -> Option<JournalEntry> {
        Some(JournalEntry::StopTarget {
            pgid,
            started: crate::bounds::start_time(pgid)?,
            command: command.to_string(),
        })
    }

    /// Undoes the change.
    pub async fn undo(&self) -> Result<Undone, String> {
        match self {
            JournalEntry::RemoveToxic {
                server,
                proxy,
                toxic,
            } => ToxiproxyClient::new(server)
                .remove_toxic(proxy, toxic)
                .await
                .map(|()| Undone::Done)
                .map_err(|e| e.to_string()),
            JournalEntry::EnableProxy { server, proxy } => ToxiproxyClient::new(server)
                .set_enabled(proxy, true)
                .await
                .map(|()| Undone::Done)
                .map_err(|e| e.to_string()),
            JournalEntry::ContinueProcess {
                pid,
                group,
                started,
            } => {
                if crate::bounds::start_time(*pid) != Some(*started) {
                    return Ok(Undone::Gone);
                }
                let pid =
                    crate::bounds::signal_target(i64::from(*pid)).map_err(|e| e.to_string())?;
                let sent = if *group {
                    killpg(Pid::from_raw(pid), Signal::SIGCONT)
                } else {
                    kill(Pid::from_raw(pid), Signal::SIGCONT)
                };
                match sent {
                    Ok(()) => Ok(Undone::Done),
                    Err(nix::errno::Errno::ESRCH) => Ok(Undone::Gone),
                    Err(e) => Err(format!("kill -CONT {pid}: {e}")),
                }
            }
            JournalEntry::StopTarget { pgid, started, .. } => {
                match crate::bounds::start_time(*pgid) {
                    // The pid is a newer process's: the group it led is
                    // empty (the kernel never hands out a pid still used as
                    // a process group id), so nothing of the target is left.
                    Some(t) if t != *started => return Ok(Undone::Gone),
                    // Its leader (the shell) is running, or gone while what
                    // it started may still run in its group.
                    _ => {}
                }
                let pgid =
                    crate::bounds::signal_target(i64::from(*pgid)).map_err(|e| e.to_string())?;
                stop_group(Pid::from_raw(pgid)).await
            }
            JournalEntry::RunCommand {
                command,
                timeout_ms,
                env,
                cwd,
            } => super::command::run_shell_in(
                command.clone(),
                Duration::from_millis(*timeout_ms),
                env.clone(),
                cwd.as_deref(),
            )
            .await
            .map(|_| Undone::Done)
            .map_err(|e| e.to_string()),
            JournalEntry::RemoveAgentFault {
                url, id, token_env, ..
            } => {
                let token = std::env::var(token_env).map_err(|_| {
                    format!(
                        "set {token_env} (the agent's token) to remove it now; the agent \
                         removes it by itself once its lease ({}s) runs out",
                        super::AGENT_LEASE.as_secs()
                    )
                })?;
                let client = crate::faults::remote::AgentClient::new(url.clone(), token)
                    .map_err(|e| e.to_string())?;
                match client.remove(id).await {
                    Ok(true) => Ok(Undone::Done),
                    // Its lease ran out (or the agent restarted): gone.
                    Ok(false) => Ok(Undone::Gone),
                    Err(e) => Err(e.to_string()),
                }
            }
        }
    }
}

impl JournalEntry {
    /// How `faultline rollback` says it undid the entry.
    pub fn undone_verb(&self) -> &'static str {
        match self {
            JournalEntry::RemoveToxic { .. } => "removed",
            JournalEntry::EnableProxy { .. } => "enabled",
            JournalEntry::ContinueProcess { .. } => "continued",
            JournalEntry::StopTarget { .. } => "stopped",
            JournalEntry::RunCommand { .. } => "ran",
            JournalEntry::RemoveAgentFault { .. } => "removed",
        }
    }
}

/// SIGTERM to a process group, SIGKILL to what is left after
/// [`STOP_GRACE`]. A stopped member would hold SIGTERM pending forever, so
/// it is continued first.
async fn stop_group(pgid: Pid) -> Result<Undone, String> {
    match killpg(pgid, Signal::SIGTERM) {
        Ok(()) => {}
        Err(nix::errno::Errno::ESRCH) => return Ok(Undone::Gone),
        Err(e) => return Err(format!("kill -TERM -{pgid}: {e}")),
    }
    let _ = killpg(pgid, Signal::SIGCONT);
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    // Signal 0 only asks whether any member is left. Members that are
    // zombies of a dead parent still count until init reaps them, which is
    // why the loop is bounded and ends in SIGKILL (harmless to a zombie).
    while killpg(pgid, None).is_ok() && tokio::time::Instant::now() < deadline {
        if group_only_zombies(pgid) {
            return Ok(Undone::Done);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    Ok(Undone::Done)
}

/// Whether every process of group `pgid` has exited (a zombie waiting for
/// its parent, or none at all).
fn group_only_zombies(pgid: Pid) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| {
            let rest = stat[stat.rfind(')')? + 1..].to_string();
            let mut fields = rest.split_whitespace();
            let state = fields.next()?.to_string();
            // Fields after the state: ppid, pgrp.
            let pgrp: i32 = fields.nth(1)?.parse().ok()?;
            Some((state, pgrp))
        })
        .filter(|(_, pgrp)| *pgrp == pgid.as_raw())
        .all(|(state, _)| state == "Z")
}

impl std::fmt::Display for JournalEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JournalEntry::RemoveToxic {
                server,
                proxy,
                toxic,
            } => write!(f, "toxic `{toxic}` on proxy `{proxy}` at {server}"),
            JournalEntry::EnableProxy { server, proxy } => {
                write!(f, "disabled proxy `{proxy}` at {server}")
            }
            JournalEntry::ContinueProcess { pid, group, .. } => {
                let what = if *group { "process group" } else { "process" };
                write!(f, "{what} {pid} stopped with SIGSTOP")
            }
            JournalEntry::StopTarget { pgid, command, .. } => {
                write!(f, "target `{command}` (process group {pgid})")
            }
            JournalEntry::RunCommand { command, .. } => {
                write!(f, "command fault rollback `{command}`")
            }
            JournalEntry::RemoveAgentFault { agent, url, id, .. } => {
                write!(f, "fault `{id}` on agent `{agent}` at {url}")
            }
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JournalFile {
    entries: Vec<JournalEntry>,
}

/// The journal of one experiment; every change is written through to disk.
#[derive(Debug)]
pub struct RollbackJournal {
    path: PathBuf,
    entries: Mutex<Vec<JournalEntry>>,
}

impl RollbackJournal {
    /// Opens the journal at `path`, keeping what a killed earlier run left
    /// there (a fixed `--out` in CI reuses the folder), so it is never lost.
    pub fn new(path: PathBuf) -> RollbackJournal {
        let leftover = read(&path).unwrap_or_default();
        RollbackJournal {
            path,
            entries: Mutex::new(leftover),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a change before it is made.
    pub fn record(&self, entry: JournalEntry) -> std::io::Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.push(entry);
        write(&self.path, &entries)
    }

    /// Forgets a change after it was undone; the file goes when it is empty.
    pub fn forget(&self, entry: &JournalEntry) -> std::io::Result<()> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pos) = entries.iter().position(|e| e == entry) {
            entries.remove(pos);
        }
        write(&self.path, &entries)
    }
}

/// Writes the entries atomically, or removes the file when there are none.
pub fn write(path: &Path, entries: &[JournalEntry]) -> std::io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = JournalFile {
        entries: entries.to_vec(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        // Durable before the change it describes is made.
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    // The rename itself must survive a power loss too.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Reads a journal file.
pub fn read(path: &Path) -> std::io::Result<Vec<JournalEntry>> {
    let bytes = std::fs::read(path)?;
    let file: JournalFile = serde_json::from_slice(&bytes).map_err(std::io::Error::other)?;
    Ok(file.entries)
}

/// Every journal under `root` (e.g. `reports/`), at most three folders deep.
pub fn find_all(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() && depth > 0 {
                walk(&path, depth - 1, out);
            } else if path.file_name().is_some_and(|n| n == FILE_NAME) {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, 3, &mut out);
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_on_disk_until_forgotten_and_the_file_goes_when_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(FILE_NAME);
        let journal = RollbackJournal::new(path.clone());
        let a = JournalEntry::RemoveToxic {
            server: "http://127.0.0.1:8474".into(),
            proxy: "db".into(),
            toxic: "faultline-x-0".into(),
        };
        let b = JournalEntry::EnableProxy {
            server: "http://127.0.0.1:8474".into(),
            proxy: "db".into(),
        };
        journal.record(a.clone()).expect("write");
        journal.record(b.clone()).expect("write");
        assert_eq!(read(&path).expect("read"), vec![a.clone(), b.clone()]);
        journal.forget(&a).expect("write");
        assert_eq!(read(&path).expect("read"), vec![b.clone()]);
        journal.forget(&b).expect("write");
        assert!(!path.exists());
        assert_eq!(find_all(dir.path()), Vec::<PathBuf>::new());
    }
}
