//! The `kill` fault: send a signal (`TERM`, `KILL`, `STOP`/`CONT`) to the
//! target faultline started, to a pidfile's process or to every process
//! with an exact name; optionally restart the target at phase end (or
//! `for` a while: the runner removes the fault early, and the removal is
//! the restart) and wait until it is ready again.

use super::journal::{JournalEntry, RollbackJournal};
use super::{BoxFuture, Evidence, Fault, FaultError};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

/// The process faultline started for the experiment (`target.command`),
/// as a fault may see it: implemented by the runner.
pub trait TargetProcess: Send + Sync {
    /// Its pid while it runs.
    fn pid(&self) -> Option<u32>;
    /// Starts it again (if it is not running) and waits until it is ready.
    fn restart(&self) -> BoxFuture<'_, Result<(), String>>;
}

enum Who {
    Target(Arc<dyn TargetProcess>),
    Pidfile(PathBuf),
    Name(String),
}

pub struct KillFault {
    signal: Signal,
    who: Who,
    restart: bool,
    /// Processes stopped with `STOP`, continued at removal, with their
    /// journal entries.
    stopped: Vec<(i32, Option<JournalEntry>)>,
    /// Where a `STOP` is written down before it is sent, so `faultline
    /// rollback` can continue the process after faultline was killed.
    journal: Option<Arc<RollbackJournal>>,
}

fn parse_signal(name: &str) -> Result<Signal, FaultError> {
    match name.trim_start_matches("SIG") {
        "TERM" => Ok(Signal::SIGTERM),
        "KILL" => Ok(Signal::SIGKILL),
        "STOP" => Ok(Signal::SIGSTOP),
        "CONT" => Ok(Signal::SIGCONT),
        "INT" => Ok(Signal::SIGINT),
        "HUP" => Ok(Signal::SIGHUP),
        other => Err(FaultError::Unsupported(format!(
            "unsupported signal `{other}`"
        ))),
    }
}

impl KillFault {
    fn new(who: Who, signal: &str, restart: bool) -> Result<KillFault, FaultError> {
        Ok(KillFault {
            signal: parse_signal(signal)?,
            who,
            restart,
            stopped: Vec::new(),
            journal: None,
        })
    }

    /// Journals every `STOP` it sends in `journal`.
    pub fn journaled(mut self, journal: Option<Arc<RollbackJournal>>) -> KillFault {
        self.journal = journal;
        self
    }

    /// Writes down that `pid` is about to be stopped (before the signal: a
    /// SIGKILL between the two must not leave it stopped unrecorded).
    fn journal_stop(&self, pid: i32, group: bool) -> Result<Option<JournalEntry>, FaultError> {
        let (Some(journal), Some(entry)) =
            (&self.journal, JournalEntry::continue_process(pid, group))
        else {
            return Ok(None);
        };
        journal.record(entry.clone()).map_err(|e| {
            FaultError::Unsupported(format!(
                "cannot write the rollback journal {}: {e}",
                journal.path().display()
            ))
        })?;
        Ok(Some(entry))
    }

    fn journal_forget(&self, entry: Option<&JournalEntry>) {
        if let (Some(journal), Some(entry)) = (&self.journal, entry) {
            let _ = journal.forget(entry);
        }
    }

    pub fn target(
        t: Arc<dyn TargetProcess>,
        signal: &str,
        restart: bool,
    ) -> Result<KillFault, FaultError> {
        KillFault::new(Who::Target(t), signal, restart)
    }

    pub fn by_pidfile(path: impl Into<PathBuf>, signal: &str) -> Result<KillFault, FaultError> {
        KillFault::new(Who::Pidfile(path.into()), signal, false)
    }

    pub fn by_name(name: impl Into<String>, signal: &str) -> Result<KillFault, FaultError> {
        KillFault::new(Who::Name(name.into()), signal, false)
    }

    /// The processes to signal, each checked against [`crate::bounds`]
    /// right before the signal: never a group (`0`, `-1`), init or
    /// faultline itself, whatever a pidfile says.
    fn pids(&self) -> Result<Vec<i32>, FaultError> {
        let refused = |e: crate::bounds::BoundError| FaultError::Unsupported(e.to_string());
        let pids = match &self.who {
            Who::Target(t) => match t.pid() {
                Some(p) => vec![crate::bounds::signal_target(i64::from(p)).map_err(refused)?],
                None => Vec::new(),
            },
            Who::Pidfile(path) => vec![crate::bounds::read_pidfile(path).map_err(refused)?],
            Who::Name(name) => processes_named(name),
        };
        if pids.is_empty() {
            return Err(FaultError::Unsupported(match &self.who {
                Who::Target(_) => "the target process is not running".to_string(),
                Who::Pidfile(p) => format!("no process in {}", p.display()),
                Who::Name(n) => format!("no process named `{n}`"),
            }));
        }
        Ok(pids)
    }
}

/// Every process whose name (`comm`, or the file name of `argv[0]`) is
/// exactly `name`, except what [`crate::bounds::selectable_by_name`]
/// refuses (init, faultline itself and its parent).
pub fn processes_named(name: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut out: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let argv0 = std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .and_then(|c| {
                    c.split(|&b| b == 0)
                        .next()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                })
                .unwrap_or_default();
            let base = argv0.rsplit('/').next().unwrap_or("");
            comm.trim() == name || base == name
        })
        .filter(|&pid| crate::bounds::selectable_by_name(pid))
        .collect();
    out.sort_unstable();
    out
}

impl Fault for KillFault {
    fn kind(&self) -> &'static str {
        "kill"
    }

    fn describe(&self) -> String {
        let who = match &self.who {
            Who::Target(_) => "the target".to_string(),
            Who::Pidfile(p) => format!("pidfile {}", p.display()),
            Who::Name(n) => format!("processes named `{n}`"),
        };
        format!(
            "kill -{} {who}",
            self.signal.as_str().trim_start_matches("SIG")
        )
    }

    fn apply(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            let pids = self.pids()?;
            let group = matches!(self.who, Who::Target(_));
            for &pid in &pids {
                let entry = if self.signal == Signal::SIGSTOP {
                    self.journal_stop(pid, group)?
                } else {
                    None
                };
                // The target runs in its own process group (`sh -c` and what
                // it started): signal all of it, not just the shell.
                let sent = if group {
                    killpg(Pid::from_raw(pid), self.signal)
                } else {
                    kill(Pid::from_raw(pid), self.signal)
                };
                if let Err(e) = sent {
                    self.journal_forget(entry.as_ref());
                    return Err(FaultError::Unsupported(format!(
                        "kill -{} {pid}: {e}",
                        self.signal
                    )));
                }
                // Recorded one by one, so a later failure cannot leave an
                // earlier process stopped forever.
                if self.signal == Signal::SIGSTOP {
                    self.stopped.push((pid, entry));
                }
            }
            Ok(json!({ "signal": self.signal.as_str(), "pids": pids }))
        })
    }

    fn remove(&mut self) -> BoxFuture<'_, Result<Evidence, FaultError>> {
        Box::pin(async move {
            // A pause is undone by continuing what was stopped.
            let group = matches!(self.who, Who::Target(_));
            for (pid, entry) in std::mem::take(&mut self.stopped) {
                let _ = if group {
                    killpg(Pid::from_raw(pid), Signal::SIGCONT)
                } else {
                    kill(Pid::from_raw(pid), Signal::SIGCONT)
                };
                self.journal_forget(entry.as_ref());
            }
            if !self.restart {
                return Ok(Evidence::Null);
            }
            let Who::Target(t) = &self.who else {
                return Ok(Evidence::Null);
            };
            let result = t.restart().await;
            result
                .map(|()| json!({ "restarted": true, "pid": t.pid() }))
                .map_err(|e| FaultError::Unsupported(format!("restart failed: {e}")))
        })
    }
}
