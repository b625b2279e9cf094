//! Resource and process faults end to end: a target killed and restarted,
//! stress children that never outlive a run, command output in the report.

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_target_is_restarted_errors_are_counted_and_recovery_passes() {
    // No `exec`: the shell leads the target's process group, so the kill and
    // the final stop must reach the server it started, not just the shell.
    // Python's start-up time is part of the restart: keep stress away.
    let _turn = crate::common::CPU_HEAVY.lock().await;
    let port = free_port();
    let exp = crate::load::run_yaml(&format!(
        "name: t\ntarget:\n  command: \"python3 -m http.server {port} --bind 127.0.0.1; echo exited\"\n  url: \"http://127.0.0.1:{port}\"\n  ready: {{ path: /, timeout: 20s }}\nload:\n  rate: 20\n  timeout: 1s\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: before, duration: 1s, expect: {{ error_rate: \"< 1%\" }} }}\n  - name: down\n    duration: 4s\n    inject:\n      - {{ type: kill, signal: KILL, restart: true, after: 1s }}\n  - {{ name: recovery, duration: 2s, expect: {{ error_rate: \"< 1%\" }} }}\n"
    ))
    .await;
    let down = exp
        .phases
        .iter()
        .find(|p| p.name == "down")
        .expect("down phase");
    assert!(
        down.errors >= 10,
        "errors while the target was down are counted: {down:?}"
    );
    assert!(
        down.errors < down.requests,
        "it came back within the phase: {down:?}"
    );
    assert_eq!(
        exp.status,
        faultline::journal::ExperimentStatus::Passed,
        "{:#?}",
        exp.checks
    );
    let removed = exp
        .faults
        .iter()
        .find(|f| f.action == "remove")
        .expect("removed");
    assert_eq!(removed.evidence["restarted"], true, "{removed:?}");
    // Stopped: no process of this target is left (checked by command line,
    // not by port, which another test may have reused meanwhile).
    let marker = format!("http.server {port}");
    let left = crate::common::processes_with(&marker);
    assert!(
        left.is_empty(),
        "target processes outlived the run: {left:?}"
    );
}

/// Child processes of `parent` (pids whose /proc stat names it as parent).
fn children_of(parent: u32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.to_string()))
                .and_then(|rest| {
                    rest.split_whitespace()
                        .nth(1)
                        .map(|p| p == parent.to_string())
                })
                .unwrap_or(false)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_cpu_and_memory_faults_leaves_no_stress_process() {
    let _turn = crate::common::CPU_HEAVY.lock().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("e.yaml");
    std::fs::write(
        &file,
        "name: pressure\ntarget: { demo: {} }\nload:\n  rate: 20\n  requests:\n    - { path: /health }\nphases:\n  - name: squeeze\n    duration: 30s\n    inject:\n      - { type: cpu, load: 30%, cores: 1 }\n      - { type: memory, size: 64MiB }\n",
    )
    .expect("write");
    let run = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start faultline");
    let deadline = Instant::now() + Duration::from_secs(20);
    let stress = loop {
        let kids: Vec<i32> = children_of(run.id())
            .into_iter()
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains("stress"))
                    .unwrap_or(false)
            })
            .collect();
        if kids.len() >= 2 {
            break kids;
        }
        assert!(
            Instant::now() < deadline,
            "the stress children never started"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    kill(Pid::from_raw(run.id() as i32), Signal::SIGINT).expect("SIGINT");
    let code = crate::common::wait_exit(run, Duration::from_secs(15)).await;
    assert_eq!(code, 3);
    for pid in stress {
        assert!(
            !crate::common::alive(pid),
            "stress process {pid} outlived the run"
        );
    }
    let report = std::fs::read_to_string(dir.path().join("report.json")).expect("report");
    assert!(report.contains("\"aborted\""));
}

#[test]
fn a_command_faults_output_and_exit_code_are_in_the_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("e.yaml");
    std::fs::write(
        &file,
        "name: cmd\ntarget: { demo: {} }\nload:\n  rate: 10\n  requests:\n    - { path: /health }\nphases:\n  - name: p\n    duration: 1s\n    inject:\n      - { type: command, run: \"echo switched; echo warn >&2\", rollback: \"echo back\" }\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .arg("--quiet")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(dir.path()).join("report.json")).expect("report"),
    )
    .expect("json");
    let faults = &json["experiments"][0]["faults"];
    assert_eq!(faults[0]["evidence"]["exit_code"], 0);
    assert_eq!(faults[0]["evidence"]["stdout"], "switched");
    assert_eq!(faults[0]["evidence"]["stderr"], "warn");
    assert_eq!(faults[1]["evidence"]["stdout"], "back");
}

/// The faults of a phase are applied together (issue 13: a slow command
/// must not hold back the others), and a signal interrupts the ones still
/// applying: nothing lands after the abort.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_signal_no_fault_of_the_phase_lands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("first-landed");
    let second = dir.path().join("second-applied");
    let file = dir.path().join("e.yaml");
    std::fs::write(
        &file,
        format!(
            "name: two-faults\ntarget: {{ demo: {{}} }}\nload:\n  rate: 10\n  requests:\n    - {{ path: /health }}\nphases:\n  - name: p\n    duration: 10s\n    inject:\n      - {{ type: command, run: \"sleep 2; touch {}\" }}\n      - {{ type: command, run: \"touch {}\" }}\n",
            first.display(),
            second.display()
        ),
    )
    .expect("write");
    let run = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    // Both are applied at the phase's start; the first is still running.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    kill(Pid::from_raw(run.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let code = crate::common::wait_exit(run, Duration::from_secs(15)).await;
    assert_eq!(code, 3, "aborted, not error");
    assert!(
        second.exists(),
        "the second fault was applied together with the first"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !first.exists(),
        "the interrupted fault landed after SIGTERM"
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("JSON");
    let interrupted = report["experiments"][0]["faults"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| {
            e["action"] == "apply" && e["error"].as_str().unwrap_or("").contains("interrupted")
        });
    assert!(interrupted, "{}", report["experiments"][0]["faults"]);
}
