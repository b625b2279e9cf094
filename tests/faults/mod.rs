//! Faults applied through a real `faultline proxy` server (the Toxiproxy
//! admin API) and rolled back on every way out: SIGINT, SIGTERM, and after
//! a SIGKILL, `faultline rollback`.

mod after_sigkill;
mod timing;
mod together;

use crate::common::TestBed;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `faultline proxy` process with one proxy `svc` in front of `upstream`;
/// killed on drop.
pub(crate) struct ProxyServer {
    child: Child,
    pub(crate) admin: String,
    pub(crate) listen: String,
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

pub(crate) async fn start_proxy_server(dir: &Path, upstream: &str) -> ProxyServer {
    let config = dir.join("proxies.json");
    let list =
        serde_json::json!([{ "name": "svc", "listen": "127.0.0.1:0", "upstream": upstream }]);
    std::fs::write(&config, list.to_string()).expect("write proxy config");
    let mut child = bin()
        .args(["proxy", "--admin", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start faultline proxy");
    let stdout = child.stdout.take().expect("stdout piped");
    // The admin address is printed on start (port 0 picks a free one).
    let admin = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stdout).lines();
        let found = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.split("admin API on ")
                .nth(1)
                .map(|a| a.trim().to_string())
        });
        // Keep draining so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        found
    });
    let admin = tokio::time::timeout(Duration::from_secs(20), admin)
        .await
        .expect("faultline proxy printed its address in time")
        .expect("join")
        .expect("admin address line");
    let info = get_json(&format!("{admin}/proxies/svc")).await;
    let listen = info["listen"].as_str().expect("listen address").to_string();
    ProxyServer {
        child,
        admin,
        listen,
    }
}

async fn get_json(url: &str) -> Value {
    reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .expect("JSON answer")
}

async fn toxics(server: &ProxyServer) -> Vec<Value> {
    get_json(&format!("{}/proxies/svc/toxics", server.admin))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn experiment(server: &ProxyServer) -> String {
    format!(
        "name: through-toxiproxy\ntarget: {{ url: \"http://{listen}\" }}\nproxies:\n  svc: {{ toxiproxy: \"{admin}\", name: svc }}\nload:\n  rate: 50\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: before, duration: 1s }}\n  - name: fault\n    duration: 30s\n    inject:\n      - {{ type: latency, proxy: svc, latency: 50ms }}\n  - {{ name: after, duration: 2s }}\n",
        listen = server.listen,
        admin = server.admin
    )
}

/// Starts a run against the proxy server and waits until its toxic is in place.
async fn run_until_faulted(server: &ProxyServer, dir: &Path) -> Child {
    let file = dir.join("e.yaml");
    std::fs::write(&file, experiment(server)).expect("write experiment");
    let child = bin()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faultline run");
    let deadline = Instant::now() + Duration::from_secs(20);
    while toxics(server).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the latency toxic never appeared on the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

async fn interrupted(signal: Signal) {
    let bed = TestBed::fixed_delay(Duration::ZERO);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_proxy_server(dir.path(), &bed.addr().to_string()).await;
    let run = run_until_faulted(&server, dir.path()).await;
    let toxic = &toxics(&server).await[0];
    assert!(
        toxic["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("faultline-"),
        "run-unique name: {toxic}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(Pid::from_raw(run.id() as i32), signal).expect("signal the run");
    assert_eq!(
        crate::common::wait_exit(run, Duration::from_secs(15)).await,
        3,
        "exit code after {signal}"
    );
    assert!(
        toxics(&server).await.is_empty(),
        "a toxic survived {signal}"
    );
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("report.json")).expect("partial report written"),
    )
    .expect("report is JSON");
    assert_eq!(report["status"], "aborted");
    // Nothing is left to roll back.
    assert!(!dir.path().join("through-toxiproxy/rollback.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_mid_fault_leaves_no_toxic_on_the_proxy_server() {
    interrupted(Signal::SIGINT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_fault_leaves_no_toxic_on_the_proxy_server() {
    interrupted(Signal::SIGTERM).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigkill_faultline_rollback_removes_what_the_run_left() {
    let bed = TestBed::fixed_delay(Duration::ZERO);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_proxy_server(dir.path(), &bed.addr().to_string()).await;
    let run = run_until_faulted(&server, dir.path()).await;
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).expect("kill -9");
    assert_eq!(
        crate::common::wait_exit(run, Duration::from_secs(10)).await,
        -1
    );
    assert_eq!(
        toxics(&server).await.len(),
        1,
        "SIGKILL cannot roll back: the toxic stays"
    );
    let journal = dir.path().join("through-toxiproxy/rollback.json");
    assert!(
        journal.exists(),
        "the journal was written before the toxic was added"
    );

    let out = bin()
        .arg("rollback")
        .arg("--journal")
        .arg(&journal)
        .output()
        .expect("run rollback");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed toxic"));
    assert!(
        toxics(&server).await.is_empty(),
        "rollback removed the toxic"
    );
    assert!(!journal.exists());

    // A second rollback has nothing to do.
    let out = bin()
        .arg("rollback")
        .arg("--journal")
        .arg(&journal)
        .output()
        .expect("run rollback");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to roll back"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_latency_on_the_demo_hop_shows_in_the_fault_phase_only() {
    let exp = crate::load::run_yaml(
        "name: t\ntarget: { demo: {} }\nload:\n  rate: 50\n  requests:\n    - { path: /checkout }\nphases:\n  - { name: baseline, duration: 2s }\n  - name: fault\n    duration: 3s\n    inject:\n      - { type: latency, proxy: payments, latency: 100ms }\n  - { name: recovery, duration: 2s }\n",
    )
    .await;
    let p50 = |name: &str| {
        exp.phases
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.latency_ms)
            .map(|l| l.p50)
            .unwrap_or_else(|| panic!("phase {name} measured"))
    };
    let added = p50("fault") - p50("baseline");
    assert!(
        (added - 100.0).abs() <= 10.0,
        "latency toxic added {added:.1}ms to p50, expected 100 ± 10"
    );
    let after = p50("recovery") - p50("baseline");
    assert!(
        after.abs() <= 10.0,
        "recovery p50 is {after:.1}ms off the baseline"
    );
    let applied: Vec<&str> = exp.faults.iter().map(|f| f.action.as_str()).collect();
    assert_eq!(applied, ["apply", "remove"], "{:?}", exp.faults);
    assert!(exp.faults.iter().all(|f| f.ok));
}
