//! Targets: the system under test, started (demo, command) or found (url),
//! waited for until ready, and stopped at the end of the experiment.

use crate::config::model::{Ready, Target, TargetKind};
use crate::demo::DemoSystem;
use crate::load::client::{HttpClient, PreparedRequest};
use crate::proxy::Proxy;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::Stdio;
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
    child: Option<tokio::process::Child>,
}

impl RunningTarget {
    /// Starts (or finds) the target and waits until it is ready. `log_dir`
    /// receives a started process's output.
    pub async fn start(
        target: &Target,
        seed: u64,
        log_dir: &Path,
        stop: &CancellationToken,
    ) -> Result<RunningTarget, TargetError> {
        let mut running = match &target.kind {
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
                    child: None,
                }
            }
            TargetKind::Url(url) => RunningTarget {
                base: url.clone(),
                description: url.to_string(),
                proxies: Vec::new(),
                demo: None,
                child: None,
            },
            TargetKind::Command { command, url } => {
                let child = spawn_command(command, log_dir)?;
                RunningTarget {
                    base: url.clone(),
                    description: format!("`{command}` at {url}"),
                    proxies: Vec::new(),
                    demo: None,
                    child: Some(child),
                }
            }
        };
        if let Some(ready) = &target.ready {
            if let Err(e) = running.wait_ready(ready, log_dir, stop).await {
                running.stop().await;
                return Err(e);
            }
        }
        Ok(running)
    }

    async fn wait_ready(
        &mut self,
        ready: &Ready,
        log_dir: &Path,
        stop: &CancellationToken,
    ) -> Result<(), TargetError> {
        let spec = crate::config::model::RequestSpec {
            name: "ready".into(),
            method: http::Method::GET,
            path: ready.path.clone(),
            headers: Vec::new(),
            body: None,
            weight: 1,
            expect_status: None,
        };
        let request =
            PreparedRequest::new(&self.base, &spec).map_err(|e| TargetError::NotReady {
                url: format!("{}{}", self.base, ready.path),
                timeout: ready.timeout,
                last: e.to_string(),
            })?;
        let client = HttpClient::new(ready.interval.max(Duration::from_millis(500)), 1);
        let deadline = Instant::now() + ready.timeout;
        let mut last: String;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(TargetError::Exited {
                        status: status.to_string(),
                        log: log_dir.join("target.log").display().to_string(),
                    });
                }
            }
            match client.send(&request).await {
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

    /// Stops what faultline started; waits until it is gone.
    pub async fn stop(mut self) {
        if let Some((demo, shutdown)) = self.demo.take() {
            shutdown.cancel();
            let _ = tokio::time::timeout(STOP_GRACE, demo.stopped()).await;
        }
        if let Some(mut child) = self.child.take() {
            stop_child(&mut child).await;
        }
    }
}

fn spawn_command(command: &str, log_dir: &Path) -> Result<tokio::process::Child, TargetError> {
    let spawn_err = |source| TargetError::Spawn {
        command: command.to_string(),
        source,
    };
    std::fs::create_dir_all(log_dir).map_err(spawn_err)?;
    let log = std::fs::File::create(log_dir.join("target.log")).map_err(spawn_err)?;
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

/// SIGTERM to the process group, then SIGKILL after a grace period.
async fn stop_child(child: &mut tokio::process::Child) {
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        let group = Pid::from_raw(pid);
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
