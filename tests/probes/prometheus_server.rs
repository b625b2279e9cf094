//! A real Prometheus for the tests: Debian's `prometheus` binary (installed by
//! `scripts/test.sh`), started as a child on a free loopback port with its own
//! temporary storage and a config that scrapes one loopback target every
//! second (or any config and flags, [`PrometheusServer::launch`]); killed
//! and reaped on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};

use crate::common::fetch;

/// Each wait (ready, first scrape) gives up after this.
const WAIT: Duration = Duration::from_secs(30);
/// Between polls while waiting.
const POLL: Duration = Duration::from_millis(100);
/// The scraped target's job name.
pub const JOB: &str = "demo";

/// A running Prometheus; killed (and waited for) on drop.
pub struct PrometheusServer {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
    /// From spawn until `/-/ready` answered 200.
    pub ready_after: Duration,
    /// From spawn until `up{job="demo"}` was 1.
    pub scraped_after: Duration,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `target` (`/metrics`, every second) and
    /// returns once it is ready and has scraped the target successfully.
    ///
    /// Panics, failing the test, when the binary is missing: a test that
    /// needs Prometheus must not pass without one.
    pub async fn start(target: SocketAddr) -> PrometheusServer {
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let mut server = PrometheusServer::launch(&config, &[]).await;
        server.wait_until_scraped().await;
        server
    }

    /// Starts Prometheus with `config` (prometheus.yml's text) and `flags`,
    /// and returns once it is ready; it scrapes nothing more than `config` says.
    pub async fn launch(config: &str, flags: &[&str]) -> PrometheusServer {
        let binary = find_on_path("prometheus").unwrap_or_else(|| {
            panic!(
                "`prometheus` is not on PATH; run scripts/test.sh, which installs \
                 Debian's prometheus package"
            )
        });
        // The free port is found by binding port 0 and releasing it, so
        // another process may take it first: then Prometheus exits at once
        // and a new port is tried.
        let mut last_failure = String::new();
        for _ in 0..3 {
            match PrometheusServer::spawn(&binary, config, flags) {
                Ok(mut server) => match server.wait_until_ready().await {
                    Ok(()) => return server,
                    Err(failure) => last_failure = failure,
                },
                Err(failure) => last_failure = failure,
            }
        }
        panic!("Prometheus did not start: {last_failure}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn spawn(binary: &PathBuf, text: &str, flags: &[&str]) -> Result<PrometheusServer, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, text).map_err(|e| format!("write {}: {e}", config.display()))?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))
            .map_err(|e| format!("create the log file: {e}"))?;
        let log_err = log.try_clone().map_err(|e| format!("log file: {e}"))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("find a free port: {e}"))?
            .port();
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        Ok(PrometheusServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
            ready_after: Duration::ZERO,
            scraped_after: Duration::ZERO,
        })
    }

    /// Polls `/-/ready`; `Err` (with the log) if Prometheus exits first.
    async fn wait_until_ready(&mut self) -> Result<(), String> {
        let start = Instant::now();
        let ready = format!("{}/-/ready", self.url);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited ({status}); log:\n{}", self.log()));
            }
            if let Ok(answer) = fetch(Method::GET, &ready).await {
                if answer.status == StatusCode::OK {
                    self.ready_after = start.elapsed();
                    return Ok(());
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "Prometheus was not ready within {WAIT:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `up` until the target has been scraped successfully.
    async fn wait_until_scraped(&mut self) {
        let start = Instant::now();
        let query = format!("{}/api/v1/query?query=up", self.url);
        loop {
            if let Ok(answer) = fetch(Method::GET, &query).await {
                let body: serde_json::Value =
                    serde_json::from_slice(&answer.body).unwrap_or_default();
                let up = body
                    .pointer("/data/result/0/value/1")
                    .and_then(|v| v.as_str());
                if up == Some("1") {
                    self.scraped_after = self.ready_after + start.elapsed();
                    return;
                }
            }
            assert!(
                start.elapsed() < WAIT,
                "Prometheus did not scrape its target within {WAIT:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Prometheus' own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `name`'s path if an executable of that name is on PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| {
            std::fs::metadata(path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
