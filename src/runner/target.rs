//! Targets: the system under test, started (demo, command) or found (url),
//! waited for until ready, and stopped at the end of the experiment.

use crate::config::model::{Ready, Target, TargetKind};
use crate::demo::DemoSystem;
use crate::faults::journal::{JournalEntry, RollbackJournal};
use crate::faults::kill::TargetProcess;
use crate::faults::BoxFuture;
use crate::load::client::{HttpClient, PreparedRequest};
use crate::metrics::telemetry::{Watched, WatchedProcess};
use crate::proxy::Proxy;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Grace given to a started process between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("the demo system could not start: {0}")]
    Demo(String),
    #[error("`{command}` could not be started: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the target exited before it was ready ({status}); see {log}")]
    Exited { status: String, log: String },
    #[error("the target was not ready within {timeout:?}: GET {url} last gave {last}")]
    NotReady {
        url: String,
        timeout: Duration,
        last: String,
    },
    #[error("stopped before the target was ready")]
    Stopped,
    #[error(
        "the target {url} is not reachable: {why}; start it first, or add `ready:` to wait for it"
    )]
    Unreachable { url: String, why: String },
}

/// A target that is up and answering.
pub struct RunningTarget {
    /// Base URL the load is sent to.
    pub base: http::Uri,
    /// For reports, e.g. `demo (frontend http://127.0.0.1:40123)`.
    pub description: String,
    /// The proxy hops faults can act on (the demo's `payments` hop).
    pub proxies: Vec<Proxy>,
    demo: Option<(DemoSystem, CancellationToken)>,
    /// The process faultline started (`target.command`).
    pub process: Option<Arc<ManagedProcess>>,
}

/// A target process faultline started: it can be killed by a fault and
/// restarted (then waited for until ready again).
pub struct ManagedProcess {
    command: String,
    log_dir: PathBuf,
    base: http::Uri,
    ready: Ready,
    child: tokio::sync::Mutex<Option<tokio::process::Child>>,
    /// Pid (and process group) of the current incarnation.
    pid: AtomicU32,
    /// Set by `stop`: a restart afterwards (a late `after` timer) is refused.
    stopped: std::sync::atomic::AtomicBool,
    /// The telemetry list it keeps its pid in (role `target`), across restarts.
    watched: std::sync::Mutex<Option<Watched>>,
    /// Where the running incarnation is written down, so `faultline
    /// rollback` stops it if faultline is killed (it would be orphaned).
    journal: Option<Arc<RollbackJournal>>,
    /// The journal entry of the running incarnation.
    entry: std::sync::Mutex<Option<JournalEntry>>,
}

impl ManagedProcess {
    fn start(
        command: &str,
        base: &http::Uri,
        ready: Ready,
        log_dir: &Path,
        journal: Option<Arc<RollbackJournal>>,
    ) -> Result<Arc<ManagedProcess>, TargetError> {
        let child = spawn_command(command, log_dir)?;
        let process = Arc::new(ManagedProcess {
            command: command.to_string(),
            log_dir: log_dir.to_path_buf(),
            base: base.clone(),
            ready,
            pid: AtomicU32::new(child.id().unwrap_or(0)),
            child: tokio::sync::Mutex::new(Some(child)),
            stopped: std::sync::atomic::AtomicBool::new(false),
            watched: std::sync::Mutex::new(None),
            journal,
            entry: std::sync::Mutex::new(None),
        });
        process.journal_incarnation();
        Ok(process)
    }

    /// Writes the running incarnation down in the journal, replacing the
    /// previous one's entry. Right after the spawn: a pid is only known
    /// then, so a SIGKILL within that instant is the one gap.
    fn journal_incarnation(&self) {
        let Some(journal) = &self.journal else { return };
        let mut slot = self.entry.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.take() {
            let _ = journal.forget(&old);
        }
        let pid = self.pid().and_then(|p| i32::try_from(p).ok());
        let entry = pid.and_then(|pid| JournalEntry::stop_target(pid, &self.command));
        if let Some(entry) = entry {
            if let Err(e) = journal.record(entry.clone()) {
                tracing::warn!(journal = %journal.path().display(), "cannot journal the target: {e}");
            }
            *slot = Some(entry);
        }
    }

    /// Forgets the incarnation once it is stopped.
    fn journal_stopped(&self) {
        let Some(journal) = &self.journal else { return };
        if let Some(entry) = self.entry.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = journal.forget(&entry);
        }
    }

    /// The exit status, if the process has ended.
    async fn exited(&self) -> Option<String> {
        let mut child = self.child.lock().await;
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(status.to_string()),
            None => Some("not running".into()),
            _ => None,
        }
    }

    /// Lets telemetry follow this process, including after restarts.
    pub fn watch(&self, watched: Watched) {
        self.publish_pid(&watched);
        if let Ok(mut w) = self.watched.lock() {
            *w = Some(watched);
        }
    }

    fn publish_pid(&self, watched: &Watched) {
        let Some(pid) = self.pid() else { return };
        if let Ok(mut list) = watched.lock() {
            list.retain(|p| p.role != "target");
            list.push(WatchedProcess {
                role: "target".into(),
                pid,
            });
        }
    }

    async fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        if let Some(mut child) = self.child.lock().await.take() {
            stop_child(&mut child, self.pid()).await;
        }
        self.journal_stopped();
    }
}

impl TargetProcess for ManagedProcess {
    fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|&p| p != 0)
    }

    fn restart(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            {
                let mut slot = self.child.lock().await;
                if self.stopped.load(Ordering::SeqCst) {
                    return Err("the target was already stopped".into());
                }
                let running = matches!(slot.as_mut().map(|c| c.try_wait()), Some(Ok(None)));
                if !running {
                    if let Some(mut old) = slot.take() {
                        // Reap what is left of the old process group.
                        stop_child(&mut old, self.pid()).await;
                    }
                    let child =
                        spawn_command(&self.command, &self.log_dir).map_err(|e| e.to_string())?;
                    self.pid.store(child.id().unwrap_or(0), Ordering::Relaxed);
                    *slot = Some(child);
                    self.journal_incarnation();
                    let watched = self.watched.lock().ok().and_then(|w| w.clone());
                    if let Some(watched) = watched {
                        self.publish_pid(&watched);
                    }
                }
            }
            wait_ready(
                &self.base,
                &self.ready,
                &self.log_dir,
                &CancellationToken::new(),
                Some(self),
            )
            .await
            .map_err(|e| e.to_string())
        })
    }
}

/// A TCP connect to `url`'s host and port within 2 s.
async fn reachable(url: &http::Uri) -> Result<(), String> {
    let host = url.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
    let port = url
        .port_u16()
        .unwrap_or(if url.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err("no answer to a connect within 2s".to_string()),
    }
}

impl RunningTarget {
    /// Starts (or finds) the target and waits until it is ready. `log_dir`
    /// receives a started process's output.
    pub async fn start(
        target: &Target,
        seed: u64,
        log_dir: &Path,
        stop: &CancellationToken,
        journal: Option<Arc<RollbackJournal>>,
    ) -> Result<RunningTarget, TargetError> {
        let running = match &target.kind {
            TargetKind::Demo(opts) => {
                let shutdown = CancellationToken::new();
                let demo = DemoSystem::start(opts, seed, shutdown.clone())
                    .await
                    .map_err(|e| TargetError::Demo(e.to_string()))?;
                let url = demo.frontend_url();
                RunningTarget {
                    base: url.parse().map_err(|e| TargetError::Demo(format!("{e}")))?,
                    description: format!("demo (frontend {url})"),
                    proxies: demo.proxies(),
                    demo: Some((demo, shutdown)),
                    process: None,
                }
            }
            TargetKind::Url(url) => RunningTarget {
                base: url.clone(),
                description: url.to_string(),
                proxies: Vec::new(),
                demo: None,
                process: None,
            },
            TargetKind::Command { command, url } => {
                let ready = target.ready.clone().unwrap_or(Ready {
                    path: "/".into(),
                    timeout: Duration::from_secs(30),
                    interval: Duration::from_millis(100),
                });
                RunningTarget {
                    base: url.clone(),
                    description: format!("`{command}` at {url}"),
                    proxies: Vec::new(),
                    demo: None,
                    process: Some(ManagedProcess::start(
                        command, url, ready, log_dir, journal,
                    )?),
                }
            }
        };
        if let (TargetKind::Url(url), None) = (&target.kind, &target.ready) {
            // Without `ready:` the target must answer a connect now: a wrong
            // URL is an error before any phase, not a run of failed checks.
            if let Err(why) = reachable(url).await {
                return Err(TargetError::Unreachable {
                    url: url.to_string(),
                    why,
                });
            }
        }
        if let Some(ready) = &target.ready {
            let process = running.process.clone();
            if let Err(e) =
                wait_ready(&running.base, ready, log_dir, stop, process.as_deref()).await
            {
                running.stop().await;
                return Err(e);
            }
        }
        Ok(running)
    }

    /// Stops what faultline started; waits until it is gone.
    pub async fn stop(mut self) {
        if let Some((demo, shutdown)) = self.demo.take() {
            shutdown.cancel();
            let _ = tokio::time::timeout(STOP_GRACE, demo.stopped()).await;
        }
        if let Some(process) = self.process.take() {
            process.stop().await;
        }
    }
}

/// Polls `GET ready.path` until it answers 2xx/3xx, the process exits, the
/// timeout passes or the run is stopped.
async fn wait_ready(
    base: &http::Uri,
    ready: &Ready,
    log_dir: &Path,
    stop: &CancellationToken,
    process: Option<&ManagedProcess>,
) -> Result<(), TargetError> {
    {
        let spec = crate::config::model::RequestSpec {
            name: "ready".into(),
            method: http::Method::GET,
            path: ready.path.clone(),
            headers: Vec::new(),
            body: None,
            weight: 1,
            expect_status: None,
        };
        let request = PreparedRequest::new(base, &spec).map_err(|e| TargetError::NotReady {
            url: format!("{}{}", base, ready.path),
            timeout: ready.timeout,
            last: e.to_string(),
        })?;
        let client = HttpClient::new(ready.interval.max(Duration::from_millis(500)), 1);
        let deadline = Instant::now() + ready.timeout;
        let mut last: String;
        loop {
            if let Some(process) = process {
                if let Some(status) = process.exited().await {
                    return Err(TargetError::Exited {
                        status,
                        log: log_dir.join("target.log").display().to_string(),
                    });
                }
            }
            let reply = client.send(&request).await;
            match (reply.status, reply.error) {
                (_, None) => return Ok(()),
                (0, Some(class)) => last = class.key().to_string(),
                (status, Some(_)) => last = format!("status {status}"),
            }
            if Instant::now() >= deadline {
                return Err(TargetError::NotReady {
                    url: request.uri.to_string(),
                    timeout: ready.timeout,
                    last,
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(ready.interval) => {}
                _ = stop.cancelled() => return Err(TargetError::Stopped),
            }
        }
    }
}

fn spawn_command(command: &str, log_dir: &Path) -> Result<tokio::process::Child, TargetError> {
    let spawn_err = |source| TargetError::Spawn {
        command: command.to_string(),
        source,
    };
    std::fs::create_dir_all(log_dir).map_err(spawn_err)?;
    // Appended to, so a restarted target's output follows the first run's.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_dir.join("target.log"))
        .map_err(spawn_err)?;
    let log_err = log.try_clone().map_err(spawn_err)?;
    tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        // Its own process group, so stopping it stops its children too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(spawn_err)
}

/// SIGTERM to the process group `pgid`, then SIGKILL after a grace period.
/// The group id is passed in: after the shell was reaped `child.id()` is
/// `None`, but what it started may still run in its group.
async fn stop_child(child: &mut tokio::process::Child, pgid: Option<u32>) {
    let group = pgid
        .or_else(|| child.id())
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    if let Some(group) = group {
        let _ = killpg(group, Signal::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, child.wait())
            .await
            .is_err()
        {
            let _ = killpg(group, Signal::SIGKILL);
        }
        // Reap stragglers of the group that ignored SIGTERM.
        let _ = killpg(group, Signal::SIGKILL);
    }
    let _ = child.kill().await;
}
