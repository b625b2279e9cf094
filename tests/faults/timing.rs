//! `after:` and `for:` move a fault inside its phase. Each test reads the
//! fault's real effect from the system's own evidence (the requests a
//! backend received, a file a command wrote, a target's start log), with
//! the phase's start taken from the JSON report, and checks the report's
//! fault events agree.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::cli::{faultline, run_bounded};
use crate::common::{Reply, TestBed};

/// Socket timing on a shared 2-core machine.
const TOLERANCE: f64 = 0.2;

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("timed.yaml");
    std::fs::write(&path, text).expect("write experiment");
    path
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind a loopback port")
}

fn epoch(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs `file` to the end; returns the report and the run's stderr.
fn run(file: &Path, dir: &Path, limit: Duration) -> (Value, String, Option<i32>) {
    let out = run_bounded(
        faultline()
            .arg("run")
            .arg(file)
            .arg("--out")
            .arg(dir)
            .arg("--quiet"),
        limit,
    );
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let report = std::fs::read(dir.join("report.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| panic!("no JSON report ({:?}): {stderr}", out.status));
    (report, stderr, out.status.code())
}

/// Phase `name` of the report: its wall-clock start (epoch seconds) and its
/// offset in the load stream (what fault events' `at_s` count from).
fn phase_start(report: &Value, name: &str) -> (f64, f64) {
    let phase = report["experiments"][0]["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("phase {name} in {report}"));
    let start = phase["start"].as_str().expect("start");
    let wall = humantime::parse_rfc3339(start).expect("RFC 3339 start");
    (
        epoch(wall),
        phase["start_offset_s"].as_f64().expect("offset"),
    )
}

fn events(report: &Value, kind: &str, action: &str) -> Vec<Value> {
    report["experiments"][0]["faults"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == kind && e["action"] == action)
        .cloned()
        .collect()
}

fn near(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{what}: {got:.3} s, expected {want} ± {TOLERANCE} s"
    );
}

/// The system under test in miniature: a frontend (the target, up before
/// the run starts its proxies) that calls its dependency through the hop
/// and answers with the dependency's status (502 when it cannot reach it).
/// Stops on drop of the returned token's guard.
fn frontend(hop: u16) -> (std::net::SocketAddr, tokio_util::sync::DropGuard) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("addr");
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .expect("client");
    faultline::server::spawn(
        listener,
        move |_req| {
            let client = client.clone();
            async move {
                let status = match client.get(format!("http://127.0.0.1:{hop}/")).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 502,
                };
                let status =
                    http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
                faultline::server::json(status, &serde_json::json!({}))
            }
        },
        shutdown.clone(),
        &tokio_util::task::TaskTracker::new(),
    );
    (addr, shutdown.drop_guard())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_error_with_after_and_for_fails_requests_only_inside_its_window() {
    // The backend notes when each request reached it: while the fault is on,
    // the hop answers 503 itself and the backend sees nothing.
    let seen: Arc<Mutex<Vec<SystemTime>>> = Arc::default();
    let log = seen.clone();
    let bed = TestBed::scripted(move |_| {
        log.lock().expect("log").push(SystemTime::now());
        Reply::now(200)
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let hop = free_port();
    let (target, _stop) = frontend(hop);
    let file = write(
        dir.path(),
        &format!(
            "name: timed-http\ntarget: {{ url: \"http://{target}\" }}\n\
             proxies:\n  hop: {{ listen: \"127.0.0.1:{hop}\", upstream: \"{backend}\", mode: http }}\n\
             load: {{ rate: 50, timeout: 1s, requests: [ {{ path: / }} ] }}\n\
             phases:\n  - {{ name: warm, duration: 1s }}\n  - name: fault\n    duration: 4s\n    inject:\n\
             \x20     - {{ type: http_error, proxy: hop, status: 503, after: 1s, for: 1.5s }}\n\
             \x20 - {{ name: cool, duration: 1s }}\n",
            backend = bed.addr()
        ),
    );
    let (report, stderr, code) = {
        let (file, out) = (file.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || run(&file, &out, Duration::from_secs(60)))
            .await
            .expect("run")
    };
    assert_eq!(
        code,
        Some(0),
        "{stderr} {}",
        report["experiments"][0]["error"]
    );
    let (wall, offset) = phase_start(&report, "fault");
    let times: Vec<f64> = seen
        .lock()
        .expect("log")
        .iter()
        .map(|t| epoch(*t) - wall)
        .filter(|t| (0.0..4.0).contains(t))
        .collect();
    // The backend's first silence of half a second or more is the fault (at
    // 50/s it otherwise hears a request every 20 ms).
    let (gap_start, gap_end) = times
        .windows(2)
        .map(|w| (w[0], w[1]))
        .find(|(a, b)| b - a >= 0.5)
        .expect("the backend went quiet during the phase");
    let around: Vec<String> = times
        .iter()
        .filter(|&&t| (0.7..2.8).contains(&t))
        .map(|t| format!("{t:.2}"))
        .collect();
    let context = format!("backend requests 0.7–2.8 s into the phase: {around:?}");
    near(
        &format!("the backend went quiet at ({context})"),
        gap_start,
        1.0,
    );
    near(
        &format!("the backend heard again at ({context})"),
        gap_end,
        2.5,
    );
    let before = times.iter().filter(|&&t| t < 0.9).count();
    let after = times.iter().filter(|&&t| t > 2.6).count();
    assert!(
        before >= 30 && after >= 50,
        "traffic before ({before}) and after ({after})"
    );

    // Clients saw the 503s for 1.5 s of the phase at 50/s, and only then.
    let errors = |name: &str| {
        report["experiments"][0]["phases"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == name)
            .and_then(|p| p["errors"].as_u64())
            .unwrap_or(u64::MAX)
    };
    assert!(
        (60..=90).contains(&errors("fault")),
        "{} errors in the fault phase, expected ~75",
        errors("fault")
    );
    assert_eq!((errors("warm"), errors("cool")), (0, 0));

    let applied = events(&report, "http_error", "apply");
    let removed = events(&report, "http_error", "remove");
    assert_eq!(
        (applied.len(), removed.len()),
        (1, 1),
        "applied once, removed once (not again at phase end): {:?}",
        report["experiments"][0]["faults"]
    );
    let at = |e: &Value| e["at_s"].as_f64().unwrap_or(f64::NAN) - offset;
    near("the report's apply", at(&applied[0]), 1.0);
    near("the report's removal", at(&removed[0]), 2.5);
    assert!(removed[0]["ok"] == true, "{}", removed[0]);
}

#[test]
fn a_command_with_after_runs_that_long_into_its_phase() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stamp = dir.path().join("stamp");
    let file = write(
        dir.path(),
        &format!(
            "name: timed-command\ntarget: {{ demo: {{}} }}\n\
             load: {{ rate: 10, timeout: 1s, requests: [ {{ path: /health }} ] }}\n\
             phases:\n  - {{ name: warm, duration: 1s }}\n  - name: later\n    duration: 3s\n    inject:\n\
             \x20     - {{ type: command, run: \"date +%s.%N > '{}'\", after: 1s }}\n",
            stamp.display()
        ),
    );
    let (report, stderr, code) = run(&file, dir.path(), Duration::from_secs(60));
    assert_eq!(code, Some(0), "{stderr}");
    let (wall, offset) = phase_start(&report, "later");
    let written: f64 = std::fs::read_to_string(&stamp)
        .expect("the command ran")
        .trim()
        .parse()
        .expect("a timestamp");
    near("the command ran at", written - wall, 1.0);
    let applied = events(&report, "command", "apply");
    assert_eq!(applied.len(), 1, "{applied:?}");
    near(
        "the report's apply",
        applied[0]["at_s"].as_f64().unwrap_or(f64::NAN) - offset,
        1.0,
    );
}

#[test]
fn sigint_during_the_after_wait_means_the_command_never_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let stamp = dir.path().join("stamp");
    let file = write(
        dir.path(),
        &format!(
            "name: never\ntarget: {{ demo: {{}} }}\n\
             load: {{ rate: 10, timeout: 1s, requests: [ {{ path: /health }} ] }}\n\
             phases:\n  - name: waiting\n    duration: 10s\n    inject:\n\
             \x20     - {{ type: command, run: \"touch '{}'\", after: 4s }}\n",
            stamp.display()
        ),
    );
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start faultline");
    let spawned = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    kill(
        Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        Signal::SIGINT,
    )
    .expect("send SIGINT");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if spawned.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("faultline did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3), "aborted");
    // Past the moment the command was due: it never runs.
    std::thread::sleep(Duration::from_secs(5).saturating_sub(spawned.elapsed()));
    assert!(!stamp.exists(), "the command ran after the abort");
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("JSON report");
    assert!(
        report["experiments"][0]["phases"][0]["name"] == "waiting",
        "the SIGINT came inside the phase, during the wait: {report}"
    );
    assert!(
        report["experiments"][0]["faults"]
            .as_array()
            .is_none_or(|f| f.is_empty()),
        "a fault never applied is not in the report: {}",
        report["experiments"][0]["faults"]
    );
}

/// A target whose every (re)start appends its time to `starts`; the run's
/// report, stderr and the start times relative to phase `down`.
fn kill_run(inject: &str) -> (Value, String, Vec<f64>) {
    let _turn = crate::common::CPU_HEAVY.blocking_lock();
    let dir = tempfile::tempdir().expect("temp dir");
    let starts = dir.path().join("starts");
    let port = free_port();
    let file = write(
        dir.path(),
        &format!(
            "name: timed-kill\ntarget:\n  command: \"date +%s.%N >> '{starts}'; exec python3 -m http.server {port} --bind 127.0.0.1\"\n\
             \x20 url: \"http://127.0.0.1:{port}\"\n  ready: {{ path: /, timeout: 20s }}\n\
             load: {{ rate: 20, timeout: 1s, requests: [ {{ path: / }} ] }}\n\
             phases:\n  - {{ name: before, duration: 1s }}\n  - name: down\n    duration: 4s\n    inject:\n\
             \x20     - {inject}\n  - {{ name: recovery, duration: 1s }}\n",
            starts = starts.display()
        ),
    );
    let (report, stderr, code) = run(&file, dir.path(), Duration::from_secs(90));
    assert_eq!(code, Some(0), "{stderr}");
    let (wall, _) = phase_start(&report, "down");
    let times = std::fs::read_to_string(&starts)
        .expect("start log")
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .map(|t| t - wall)
        .collect();
    (report, stderr, times)
}

#[test]
fn a_restarting_kill_with_the_old_after_restarts_after_it_and_warns() {
    let (report, stderr, starts) =
        kill_run("{ type: kill, signal: KILL, restart: true, after: 1s }");
    assert!(
        stderr.contains("warning: phases[1].inject[0].after")
            && stderr.contains("write `for: 1s` instead"),
        "{stderr}"
    );
    assert_eq!(starts.len(), 2, "started, then restarted once: {starts:?}");
    near("restarted at", starts[1], 1.0);
    let (_, offset) = phase_start(&report, "down");
    let killed = events(&report, "kill", "apply");
    near(
        "killed at",
        killed[0]["at_s"].as_f64().unwrap_or(f64::NAN) - offset,
        0.0,
    );
}

#[test]
fn a_restarting_kill_with_after_and_for_is_killed_late_and_restarted_for_later() {
    let (report, stderr, starts) =
        kill_run("{ type: kill, signal: KILL, restart: true, after: 1s, for: 1.5s }");
    assert!(!stderr.contains("warning"), "{stderr}");
    assert_eq!(starts.len(), 2, "started, then restarted once: {starts:?}");
    near("restarted at", starts[1], 2.5);
    let (_, offset) = phase_start(&report, "down");
    let at = |action: &str| {
        let found = events(&report, "kill", action);
        assert_eq!(found.len(), 1, "one {action}: {found:?}");
        found[0]["at_s"].as_f64().unwrap_or(f64::NAN) - offset
    };
    near("killed at", at("apply"), 1.0);
    near("restart began at", at("remove"), 2.5);
}
