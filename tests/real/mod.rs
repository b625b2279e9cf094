//! faultline's verdicts on real resilience implementations: nginx passive
//! health checks with retries (a fail-over breaker), an HAProxy weighted
//! canary with a Runtime API rollback, and pybreaker, an in-process circuit
//! breaker library (fail-fast); and HAProxy's per-server counters as the
//! ground truth of faultline's per-version numbers (`by_version`). Each
//! system runs in the foreground from its Debian or PyPI package (`scripts/test.sh` installs them) on free loopback
//! ports, with one of faultline's embedded hops (a `proxies:` entry of the
//! experiment) between it and ONE backend.
//!
//! Every test asserts two things per run, three runs in a row: what the
//! system's own evidence says happened (nginx's access log with
//! `$upstream_addr`, HAProxy's `show stat` and log, pybreaker's state and the
//! service's call log), and that faultline's verdict agrees with it.
//!
//! `FAULTLINE_REAL=thorough` adds a bigger matrix (TCP- and HTTP-mode hops ×
//! `reset_peer`, `http_error`, `down`); the quick default keeps to one fault
//! per configuration.
//!
//! This file: the shared bed parts (processes stopped by pid on drop, free
//! ports, readiness, running faultline and reading its report).

mod haproxy;
mod haproxy_versions;
mod nginx;
mod pybreaker;
mod standard;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// Runs per verdict: a verdict that holds once may be luck.
const RUNS: usize = 3;

/// Upper bound for one faultline run (experiments are ≤ 12 s).
const RUN_LIMIT: Duration = Duration::from_secs(45);

/// Whether the bigger matrix was asked for (`FAULTLINE_REAL=thorough`).
fn thorough() -> bool {
    std::env::var("FAULTLINE_REAL").is_ok_and(|v| v == "thorough")
}

/// A program from a Debian package: on PATH, or in the sbin folders a
/// non-root PATH lacks.
fn program(name: &str) -> PathBuf {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"])
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("{name} is not installed: run scripts/test.sh, which installs it")
    })
}

/// A free 127.0.0.1 port, picked by the kernel (bound, then released for
/// the process that will listen on it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

/// Seconds since the Unix epoch, as nginx's `$msec` and HAProxy's logs say.
fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A process the test started; on drop it gets SIGTERM by its pid (nginx's
/// and HAProxy's fast shutdown, which also stops their workers), then
/// SIGKILL if it has not exited within 3 s.
struct Daemon {
    child: Child,
    what: String,
}

impl Daemon {
    fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Daemon {
        let out = std::fs::File::create(log).expect("create the process log");
        let err = out.try_clone().expect("clone the log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        Daemon {
            child,
            what: what.to_string(),
        }
    }

    /// Panics with the process log if it already exited (a bad config).
    fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{} exited ({status}):\n{text}", self.what);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `port` on 127.0.0.1 accepts connections, checking that the
/// daemon is still alive.
fn wait_listening(daemon: &mut Daemon, log: &Path, port: u16) {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        daemon.assert_running(log);
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} did not listen on {addr} within 10 s",
            daemon.what
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One faultline run's JSON report.
struct Report {
    json: Value,
}

impl Report {
    /// The experiment (each run has exactly one).
    fn experiment(&self) -> &Value {
        &self.json["experiments"][0]
    }

    /// The first check of `kind` (`breaker`, `canary`, `recovery`).
    fn check(&self, kind: &str) -> &Value {
        self.experiment()["checks"]
            .as_array()
            .and_then(|checks| checks.iter().find(|c| c["kind"] == kind))
            .unwrap_or_else(|| panic!("no `{kind}` check in {:#}", self.experiment()["checks"]))
    }

    /// `(passed, message, observed)` of the first check of `kind`; tests
    /// look for the reason in the message alone.
    fn verdict(&self, kind: &str) -> (bool, String, String) {
        let check = self.check(kind);
        let passed = check["passed"].as_bool().expect("checks say passed");
        let text = |key: &str| check[key].as_str().unwrap_or("").to_string();
        (passed, text("message"), text("observed"))
    }

    /// A phase's wall-clock window `(start, end)` in Unix seconds.
    fn phase(&self, name: &str) -> (f64, f64) {
        let phase = self.experiment()["phases"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .unwrap_or_else(|| panic!("no phase {name} in the report"));
        let start = phase["start"].as_str().expect("a phase start");
        let start = humantime::parse_rfc3339(start)
            .expect("an RFC 3339 phase start")
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let duration = phase["duration_s"].as_f64().expect("a phase duration");
        (start, start + duration)
    }
}

/// Runs `yaml` (written to `dir/<name>.yaml`) with the real binary and
/// returns its report; panics with faultline's output if there is none
/// (a validation error, a crash).
fn run_faultline(dir: &Path, name: &str, yaml: &str) -> Report {
    let file = dir.join(format!("{name}.yaml"));
    let json = dir.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&json);
    std::fs::write(&file, yaml).expect("write the experiment");
    let log = dir.join(format!("{name}.faultline.log"));
    let mut daemon = Daemon::spawn(
        "faultline",
        Command::new(env!("CARGO_BIN_EXE_faultline"))
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(dir.join(format!("{name}-out")))
            .arg("--json")
            .arg(&json)
            .args(["-q", "--seed", "7"]),
        &log,
    );
    let start = Instant::now();
    let code = loop {
        if let Ok(Some(status)) = daemon.child.try_wait() {
            break status.code();
        }
        assert!(
            start.elapsed() < RUN_LIMIT,
            "faultline did not finish {name} within {RUN_LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
        panic!("faultline wrote no report for {name} (exit {code:?}):\n{output}")
    });
    let json: Value = serde_json::from_str(&text).expect("the report is JSON");
    Report { json }
}

/// A fresh temp dir for one bed's configs and logs (kept on failure would
/// need `keep`; the logs are quoted in the assertion messages instead).
fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temp dir")
}
