//! The faults of one phase are applied together, each journaled with when
//! its apply started and ended, and a stop signal interrupts an apply in
//! flight: the command is killed with its group, its effect never lands
//! after the abort, and its rollback runs.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::cli::{faultline, run_bounded};

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("x.yaml");
    std::fs::write(&path, text).expect("write experiment");
    path
}

fn applies(report: &Value) -> Vec<Value> {
    report["experiments"][0]["faults"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "apply")
        .cloned()
        .collect()
}

#[test]
fn a_slow_command_does_not_hold_back_the_other_faults_of_its_phase() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "name: together\ntarget: { demo: {} }\n\
         load: { rate: 50, timeout: 1s, requests: [ { path: /checkout } ] }\n\
         phases:\n  - { name: warm, duration: 1s }\n  - name: both\n    duration: 3s\n    inject:\n\
         \x20     - { type: command, run: 'sleep 2' }\n\
         \x20     - { type: http_error, proxy: payments, status: 503 }\n",
    );
    let out = run_bounded(
        faultline()
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(dir.path())
            .arg("--quiet"),
        Duration::from_secs(60),
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("JSON report");
    let events = applies(&report);
    assert_eq!(events.len(), 2, "{:?} {events:?}", out.status);
    let by_kind = |kind: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} apply in {events:?}"))
            .clone()
    };
    let (command, http) = (by_kind("command"), by_kind("http_error"));
    let at = |e: &Value, key: &str| e[key].as_f64().unwrap_or(f64::NAN);
    // Both start at the phase's start (1 s); the HTTP fault is in effect at
    // once, the command's apply ends ~2 s later.
    for e in [&command, &http] {
        assert!((at(e, "at_s") - 1.0).abs() < 0.3, "{e}");
    }
    assert!(at(&http, "ended_at_s") - 1.0 < 0.5, "{http}");
    assert!(
        at(&command, "ended_at_s") - at(&command, "at_s") >= 1.9,
        "{command}"
    );
    // And clients saw the 503s in the phase's first second, not after 2 s.
    let series = report["experiments"][0]["series"]
        .as_array()
        .expect("series");
    let second_1_errors = series
        .iter()
        .find(|s| s["t"] == 1)
        .and_then(|s| s["errors"].as_u64())
        .unwrap_or(0);
    assert!(
        second_1_errors >= 20,
        "errors in second 1: {second_1_errors}"
    );
}

#[test]
fn sigint_during_a_command_apply_kills_it_and_rolls_it_back_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let landed = dir.path().join("landed");
    let rolled_back = dir.path().join("rolled-back");
    let file = write(
        dir.path(),
        &format!(
            "name: interrupted\ntarget: {{ demo: {{}} }}\n\
             load: {{ rate: 20, timeout: 1s, requests: [ {{ path: /checkout }} ] }}\n\
             phases:\n  - name: slow\n    duration: 20s\n    inject:\n\
             \x20     - {{ type: command, run: \"sleep 4; touch '{}'\", rollback: \"touch '{}'\", timeout: 30s }}\n",
            landed.display(),
            rolled_back.display()
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
    std::thread::sleep(Duration::from_millis(1500));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let sent = Instant::now();
    kill(pid, Signal::SIGINT).expect("send SIGINT");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("faultline did not stop within 10 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(3), "aborted");
    assert!(
        took < Duration::from_millis(2500),
        "stopped {took:?} after SIGINT"
    );
    assert!(rolled_back.exists(), "the rollback ran");
    // Past the moment the command would have finished: it never lands.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        !landed.exists(),
        "the interrupted command landed after the abort"
    );
}
