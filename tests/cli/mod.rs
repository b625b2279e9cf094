//! The `faultline` binary as a user runs it: exit codes, reports on disk,
//! and rollback when the run is interrupted by a real signal.

use crate::common::TestBed;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod outputs;

pub(crate) fn faultline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Runs the binary with a time limit (the CLI tests must never hang CI).
pub(crate) fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faultline");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("poll child").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("faultline did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("collect output")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

fn report(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

#[test]
fn every_shipped_experiment_and_suite_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["experiments", "experiments/real", "suites"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("folder exists") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "yaml") {
                files.push(path);
            }
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    let out = run_bounded(
        faultline().arg("validate").args(&files),
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        files.len(),
        "{stdout}"
    );
}

#[test]
fn each_invalid_fixture_exits_2_with_its_message() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures folder") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("fixture readable");
        let Some(expect) = text.lines().find_map(|l| l.strip_prefix("# expect:")) else {
            continue;
        };
        let out = run_bounded(
            faultline().arg("validate").arg(&path),
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(
            stderr.contains(expect.trim()),
            "{}: expected `{}` in:\n{stderr}",
            path.display(),
            expect.trim()
        );
        seen += 1;
    }
    assert!(seen >= 5, "only {seen} fixtures carry an `# expect:` line");
}

#[test]
fn a_misspelt_key_and_a_bad_duration_are_both_reported_with_lines() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "bad.yaml",
        "name: bad\ntarget: { url: \"http://127.0.0.1:9\" }\nload:\n  rate: 10\n  requests:\n    - { path: / }\nphases:\n  - name: a\n    durration: 5s\n  - name: b\n    duration: soon\n",
    );
    let out = run_bounded(
        faultline().arg("validate").arg(&file),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("durration") && stderr.contains("did you mean `duration`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("bad.yaml:9:"),
        "line of the misspelt key:\n{stderr}"
    );
    assert!(
        stderr.contains("soon") && stderr.contains("bad.yaml:11:"),
        "line of the bad duration:\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_answering_503_everywhere_exits_1_with_error_rate_1() {
    let bed = TestBed::always(503);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "e.yaml",
        &format!(
            "name: all-errors\ntarget: {{ url: \"{}\" }}\nload:\n  rate: 50\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: p, duration: 1s, expect: {{ error_rate: \"< 1%\" }} }}\n",
            bed.url()
        ),
    );
    let mut cmd = faultline();
    cmd.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .arg("--quiet");
    let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, Duration::from_secs(60)))
        .await
        .expect("join");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = report(dir.path());
    assert_eq!(json["experiments"][0]["status"], "failed");
    assert_eq!(json["experiments"][0]["phases"][0]["error_rate"], 1.0);
    assert_eq!(json["exit_code"], 1);
}

#[test]
fn flags_and_filters_that_select_nothing_are_invalid_input() {
    let out = run_bounded(
        faultline().args([
            "run",
            "experiments/demo-baseline.yaml",
            "--only",
            "nothing-*",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the filters select no experiment"));
    let out = run_bounded(
        faultline().args(["run", "--no-such-flag", "x.yaml"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
    let out = run_bounded(
        faultline().args(["validate", "does/not/exist.yaml"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_target_that_never_becomes_ready_exits_4() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "e.yaml",
        &format!(
            "name: never-ready\ntarget:\n  url: \"http://127.0.0.1:{port}\"\n  ready: {{ path: /health, timeout: 1s }}\nload:\n  rate: 10\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: p, duration: 1s }}\n"
        ),
    );
    let out = run_bounded(
        faultline()
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(dir.path())
            .arg("--quiet"),
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = report(dir.path());
    assert_eq!(json["experiments"][0]["status"], "error");
    assert!(
        json["experiments"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains("not ready"),
        "{json}"
    );
}

#[test]
fn a_rollback_that_fails_exits_5_and_says_so_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "e.yaml",
        "name: bad-rollback\ntarget: { demo: {} }\nload:\n  rate: 20\n  requests:\n    - { path: /health }\nphases:\n  - name: p\n    duration: 1s\n    inject:\n      - { type: command, run: \"true\", rollback: \"echo cannot undo >&2; exit 1\" }\n",
    );
    let out = run_bounded(
        faultline()
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(dir.path()),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(5));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("!!! ROLLBACK FAILED"), "{stdout}");
    let json = report(dir.path());
    assert_eq!(json["rollback_failed"], true);
    assert_eq!(json["status"], "rollback_failed");
    assert_eq!(json["experiments"][0]["status"], "error");
}

/// Starts a run whose fault phase creates a marker (rollback removes it),
/// interrupts it mid-fault with `signal`, and checks nothing is left behind.
fn interrupted_mid_fault(signal: Signal) {
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("fault-active");
    let file = write(
        dir.path(),
        "e.yaml",
        &format!(
            "name: interrupted\ntarget: {{ demo: {{}} }}\nload:\n  rate: 50\n  requests:\n    - {{ path: /checkout }}\nphases:\n  - {{ name: before, duration: 1s }}\n  - name: fault\n    duration: 30s\n    inject:\n      - {{ type: command, run: \"touch {m}\", rollback: \"rm {m}\" }}\n  - {{ name: after, duration: 5s }}\n",
            m = marker.display()
        ),
    );
    let mut child = faultline()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faultline");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the fault was never applied");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    kill(pid, signal).expect("send signal");
    let sent = Instant::now();
    while child.try_wait().expect("poll").is_none() {
        assert!(
            sent.elapsed() < Duration::from_secs(15),
            "faultline did not stop after {signal}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !marker.exists(),
        "the fault was not rolled back after {signal}"
    );
    let json = report(dir.path());
    assert_eq!(json["status"], "aborted");
    assert_eq!(json["experiments"][0]["status"], "aborted");
    assert!(
        json["experiments"][0]["error"]
            .as_str()
            .unwrap_or("")
            .contains(signal.as_str()),
        "{json}"
    );
    let faults = json["experiments"][0]["faults"]
        .as_array()
        .expect("fault journal");
    assert!(
        faults
            .iter()
            .any(|f| f["action"] == "remove" && f["ok"] == true),
        "{faults:?}"
    );
    // The partial report still has the phases that ran.
    assert_eq!(json["experiments"][0]["phases"][1]["completed"], false);
}

#[test]
fn sigint_mid_fault_rolls_back_and_exits_3() {
    interrupted_mid_fault(Signal::SIGINT);
}

#[test]
fn sigterm_mid_fault_rolls_back_and_exits_3() {
    interrupted_mid_fault(Signal::SIGTERM);
}

#[test]
fn the_demo_suite_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_bounded(
        faultline()
            .args(["run", "suites/demo.yaml", "--out"])
            .arg(dir.path()),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checkout-baseline  PASSED"), "{stdout}");
    let json = report(dir.path());
    assert_eq!(json["summary"]["passed"], 14, "{}", json["summary"]);
    // The behaviour verdicts carry their numbers: when the breaker opened
    // and closed, when the canary rolled back, the recovery time, p-values.
    let measured: Vec<String> = json["experiments"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|e| e["checks"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["measured"].as_object().cloned())
        .flat_map(|m| m.keys().cloned().collect::<Vec<_>>())
        .collect();
    for key in [
        "opened_after_s",
        "closed_after_s",
        "rolled_back_after_s",
        "switched_after_s",
        "recovery_s",
        "p_value",
    ] {
        assert!(
            measured.iter().any(|k| k == key),
            "no `{key}` in {measured:?}"
        );
    }
    let phase = &json["experiments"][0]["phases"][0];
    for key in [
        "name",
        "start",
        "duration_s",
        "requests",
        "errors",
        "error_rate",
        "errors_by_class",
        "status_counts",
        "rate",
    ] {
        assert!(!phase[key].is_null(), "phase field {key} missing: {phase}");
    }
    for key in ["p50", "p90", "p95", "p99", "p999", "max", "mean"] {
        assert!(
            phase["latency_ms"][key].is_number(),
            "latency_ms.{key}: {phase}"
        );
    }
    let series = json["experiments"][0]["series"].as_array().expect("series");
    // 10 s of load; a response completing just after the end adds second 10.
    assert!(
        (10..=11).contains(&series.len()),
        "{} windows",
        series.len()
    );
    assert!(series
        .iter()
        .all(|w| w["t"].is_number() && w["phase"].is_string() && w["requests"].is_number()));
}

/// Two quick experiments against a healthy fixture: `ok` passes, `strict` fails.
fn two_experiments(dir: &Path, url: &str) -> PathBuf {
    let exp = |name: &str, tags: &str, p50: &str| {
        format!(
            "name: {name}\ntags: [{tags}]\ntarget: {{ url: \"{url}\" }}\nload:\n  rate: 40\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: p, duration: 1s, expect: {{ p50: \"{p50}\" }} }}\n"
        )
    };
    write(dir, "strict.yaml", &exp("strict", "smoke", "< 1us"));
    write(dir, "ok.yaml", &exp("ok", "smoke, slow", "< 1s"));
    write(
        dir,
        "suite.yaml",
        "name: ci\nexperiments:\n  - strict.yaml\n  - ok.yaml\n",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_fail_fast_and_shards_shape_what_runs() {
    let bed = TestBed::fixed_delay(Duration::ZERO);
    let dir = tempfile::tempdir().expect("temp dir");
    let suite = two_experiments(dir.path(), &bed.url());
    let run = |extra: &[&str], out: &str| {
        let mut cmd = faultline();
        cmd.arg("run")
            .arg(&suite)
            .arg("--quiet")
            .arg("--out")
            .arg(dir.path().join(out))
            .args(extra);
        cmd
    };
    // Nothing selected by --tag is invalid input, with the available tags listed.
    let mut cmd = run(&["--tag", "nightly"], "none");
    let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, Duration::from_secs(30)))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ok [smoke, slow]"));

    // --skip-tag slow leaves only `strict`, which fails; `ok` is reported as skipped.
    let mut cmd = run(&["--skip-tag", "slow"], "skip");
    let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, Duration::from_secs(60)))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(1));
    let json = report(&dir.path().join("skip"));
    assert_eq!(json["experiments"][1]["status"], "skipped");
    assert_eq!(json["summary"]["skipped"], 1);
    assert_eq!(json["suite"], "ci");

    // --fail-fast: `strict` fails first, so `ok` is skipped, with the reason.
    let mut cmd = run(&["--fail-fast"], "ff");
    let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, Duration::from_secs(60)))
        .await
        .expect("join");
    assert_eq!(out.status.code(), Some(1));
    let json = report(&dir.path().join("ff"));
    assert_eq!(json["experiments"][1]["status"], "skipped");
    assert!(json["experiments"][1]["error"]
        .as_str()
        .unwrap_or("")
        .contains("--fail-fast"));

    // --shard 1/2 drives half the rate.
    let mut cmd = run(&["--only", "ok", "--shard", "1/2"], "shard");
    let out = tokio::task::spawn_blocking(move || run_bounded(&mut cmd, Duration::from_secs(60)))
        .await
        .expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = report(&dir.path().join("shard"));
    assert_eq!(json["shard"], "1/2");
    let ok = json["experiments"]
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["name"] == "ok")
        .cloned()
        .expect("ok ran");
    assert_eq!(ok["phases"][0]["target_rate"], 20.0);
}
