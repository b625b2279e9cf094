//! Safety guards: the production guard, caps and the host allow-list refuse
//! a run before anything starts; stop conditions halt a running one.

use std::time::Duration;

use crate::cli::{faultline, run_bounded};
use crate::load::run_yaml;
use faultline::journal::ExperimentStatus;

/// A one-phase demo experiment with a `safety` block.
fn with_safety(safety: &str) -> String {
    format!(
        "name: guarded\ntarget: {{ demo: {{}} }}\n\
         load: {{ rate: 20, timeout: 2s, requests: [ {{ path: /checkout }} ] }}\n\
         safety:\n{safety}\nphases: [ {{ name: only, duration: 1s }} ]\n"
    )
}

fn write_temp(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("x.yaml");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

#[test]
fn production_is_refused_without_both_switches_and_runs_with_them() {
    let cases = [
        (
            "  environment: production\n",
            false,
            "allow_production: true` in the file",
        ),
        (
            "  environment: production\n  allow_production: true\n",
            false,
            "no `--allow-production`",
        ),
        ("  environment: production\n", true, "does not say"),
    ];
    for (safety, flag, expected) in cases {
        let (dir, file) = write_temp(&with_safety(safety));
        let mut cmd = faultline();
        cmd.arg("run").arg(&file).arg("--out").arg(dir.path());
        if flag {
            cmd.arg("--allow-production");
        }
        let out = run_bounded(&mut cmd, Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains("refusing to run experiment `guarded` against production"),
            "{stderr}"
        );
        assert!(stderr.contains(expected), "`{expected}` missing: {stderr}");
        assert!(!dir.path().join("report.json").exists(), "nothing ran");
    }
    let (dir, file) = write_temp(&with_safety(
        "  environment: production\n  allow_production: true\n",
    ));
    let out = run_bounded(
        faultline()
            .arg("run")
            .arg(&file)
            .arg("--allow-production")
            .arg("--out")
            .arg(dir.path()),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn caps_and_unlisted_hosts_are_refused_before_anything_runs() {
    let cases = [
        (with_safety("  max_rate: 10\n"), "more than `max_rate` 10/s"),
        (with_safety("  max_duration: 500ms\n"), "longer than `max_duration` 500ms"),
        (
            "name: remote\ntarget: { url: \"http://staging.example.com:8080\" }\n\
             load: { rate: 20, requests: [ { path: / } ] }\n\
             safety: { allowed_hosts: [ other.example.com ] }\n\
             phases: [ { name: only, duration: 1s } ]\n"
                .to_string(),
            "the target is on `staging.example.com`, which is not loopback and not in `allowed_hosts`",
        ),
    ];
    for (yaml, expected) in cases {
        let (_dir, file) = write_temp(&yaml);
        let out = run_bounded(
            faultline().arg("validate").arg(&file),
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "`{expected}` missing: {stderr}");
    }
    // Listed (here by a wildcard), the same target validates.
    let listed = "name: remote\ntarget: { url: \"http://staging.example.com:8080\" }\n\
                  load: { rate: 20, requests: [ { path: / } ] }\n\
                  safety: { allowed_hosts: [ \"*.example.com\" ] }\n\
                  phases: [ { name: only, duration: 1s } ]\n";
    let (_dir, file) = write_temp(listed);
    let out = run_bounded(
        faultline().arg("validate").arg(&file),
        Duration::from_secs(30),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_condition_rolls_back_and_aborts_within_two_seconds() {
    let yaml = r#"
name: halt
target: { demo: { canary_weight: 0%, defects: [no_breaker] } }
load: { rate: 100, timeout: 2s, requests: [ { path: /checkout } ] }
safety:
  abort_if:
    - { p99: "> 5s", for: 1s }
    - { error_rate: "> 50%", for: 2s }
phases:
  - { name: baseline, duration: 2s }
  - name: broken
    duration: 20s
    inject: [ { type: http_error, proxy: payments, status: 500 } ]
"#;
    let report = run_yaml(yaml).await;
    assert_eq!(report.status, ExperimentStatus::Aborted, "{report:#?}");
    let why = report.error.clone().unwrap_or_default();
    assert!(
        why.contains("stop condition `error_rate > 50% for 2s` met (observed 100.0"),
        "{why}"
    );
    let at = |action: &str| {
        report
            .faults
            .iter()
            .find(|f| f.action == action)
            .map(|f| (f.at_s, f.ok))
            .unwrap_or_else(|| panic!("no `{action}` in {:#?}", report.faults))
    };
    let (applied, _) = at("apply");
    let (removed, ok) = at("remove");
    assert!(ok, "the fault was removed");
    // Failing from `applied`; met for 2 s at applied + 2 s; halted within 2 s of that.
    let held = applied + 2.0;
    assert!(
        removed >= held - 0.1 && removed <= held + 2.0,
        "applied at {applied:.2}s, removed at {removed:.2}s"
    );
    assert!(report.duration_s < 10.0, "the 20 s phase was cut short");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_probe_can_be_a_stop_condition() {
    let yaml = r#"
name: probe-halt
target: { demo: {} }
load: { rate: 20, timeout: 2s, requests: [ { path: /checkout } ] }
probes:
  dependency-port:
    tcp: { address: "127.0.0.1:9" }
    timeout: 500ms
safety:
  abort_if:
    - { probe: dependency-port, for: 2s }
phases:
  - { name: only, duration: 15s }
"#;
    let report = run_yaml(yaml).await;
    assert_eq!(report.status, ExperimentStatus::Aborted);
    let why = report.error.clone().unwrap_or_default();
    assert!(
        why.contains("probe `dependency-port` failing for 2s"),
        "{why}"
    );
    assert!(why.contains("refused"), "{why}");
    assert!(report.duration_s < 8.0, "{}", report.duration_s);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_sends_nothing_and_lists_what_is_unreachable() {
    let bed = crate::common::TestBed::fixed_delay(Duration::ZERO);
    let yaml = format!(
        r#"
name: planned
target: {{ url: "{url}" }}
load: {{ rate: 50, requests: [ {{ path: /pay }} ] }}
agents:
  db-host: {{ url: "http://127.0.0.1:1", token_env: FAULTLINE_TEST_NO_SUCH_TOKEN }}
phases:
  - {{ name: baseline, duration: 2s, expect: {{ p99: "< 100ms" }} }}
  - name: stressed
    duration: 3s
    inject: [ {{ type: cpu, load: 50%, cores: 1, host: db-host }} ]
"#,
        url = bed.url()
    );
    let (_dir, file) = write_temp(&yaml);
    for args in [vec!["run", "--dry-run"], vec!["plan"]] {
        let out = tokio::task::spawn_blocking({
            let file = file.clone();
            move || run_bounded(faultline().args(&args).arg(&file), Duration::from_secs(30))
        })
        .await
        .expect("join");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(4), "{stdout}");
        assert!(stdout.contains(": 250 requests"), "{stdout}");
        assert!(
            stdout.contains("phase `stressed` at +2s for 3s"),
            "{stdout}"
        );
        assert!(
            stdout.contains("blast radius: every process on agent `db-host`'s host"),
            "{stdout}"
        );
        assert!(stdout.contains("check: p99 < 100ms"), "{stdout}");
        assert!(
            stdout.contains("UNREACHABLE  agent `db-host` (http://127.0.0.1:1/)"),
            "{stdout}"
        );
        assert!(stdout.contains("ok           target"), "{stdout}");
    }
    assert_eq!(
        bed.requests(),
        0,
        "a dry run sends no request to the target"
    );
    bed.stop().await;
}

/// Malformed files of every kind given to the `validate` binary: exit 2 and a
/// message for each file, never a panic.
#[test]
fn validate_answers_malformed_files_with_exit_2_and_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let valid = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/demo-breaker.yaml"),
    )
    .expect("read");
    let mut cases: Vec<Vec<u8>> = Vec::new();
    // Truncated at many points (cut mid-key, mid-value, mid-list).
    for cut in (40..valid.len()).step_by(97) {
        let end = (0..=cut)
            .rev()
            .find(|i| valid.is_char_boundary(*i))
            .unwrap_or(0);
        let mut text = valid[..end].to_string();
        text.push_str("\n  bogus_key: [");
        cases.push(text.into_bytes());
    }
    cases.extend(
        [
            "name: 42\ntarget: []\nload: 7\nphases: {}\n".to_string(),
            "name: x\nload: { rate: 1e400, requests: [ { path: / } ] }\n".to_string(),
            "name: x\nmin_samples: 99999999999999999999999\n".to_string(),
            format!("name: x\nphases: {}", "[".repeat(5_000)),
            format!("name: x\nverify: {}", "{ a: ".repeat(3_000)),
            "verify: [ { breaker: { phase: 5, max_dependency_calls: -1 } } ]\n".to_string(),
            "safety: { abort_if: [ { error_rate: yes, for: forever } ] }\n".to_string(),
            "probes: { p: { http: { url: 'not a url' }, tcp: { address: x } } }\n".to_string(),
        ]
        .map(String::into_bytes),
    );
    cases.push((0..=255u8).cycle().take(4096).collect()); // binary garbage
    cases.push(vec![0xff, 0xfe, 0x00, 0x41, 0x0a]);
    let files: Vec<std::path::PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = dir.path().join(format!("case-{i:03}.yaml"));
            std::fs::write(&path, bytes).expect("write");
            path
        })
        .collect();
    let out = run_bounded(
        faultline().arg("validate").args(&files),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for file in &files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(stderr.contains(name), "no message for {name}:\n{stderr}");
    }
}

/// Collects the JSON bodies POSTed to it.
struct Webhook {
    url: String,
    bodies: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Webhook {
    async fn start() -> Webhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shutdown = tokio_util::sync::CancellationToken::new();
        let tracker = tokio_util::task::TaskTracker::new();
        let sink = bodies.clone();
        faultline::server::spawn(
            listener,
            move |req: http::Request<hyper::body::Incoming>| {
                let sink = sink.clone();
                async move {
                    let body = faultline::server::read_body(req.into_body(), 64 * 1024).await;
                    if let Some(v) = body.and_then(|b| serde_json::from_slice(&b).ok()) {
                        sink.lock().expect("lock").push(v);
                    }
                    faultline::server::json(http::StatusCode::OK, &serde_json::json!({"ok": true}))
                }
            },
            shutdown.clone(),
            &tracker,
        );
        Webhook {
            url,
            bodies,
            shutdown,
        }
    }

    fn events(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().expect("lock").clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_hears_start_faults_abort_and_finish() {
    let hook = Webhook::start().await;
    let yaml = format!(
        r#"
name: game-day
target: {{ demo: {{ canary_weight: 0%, defects: [no_breaker] }} }}
load: {{ rate: 50, timeout: 2s, requests: [ {{ path: /checkout }} ] }}
notify: {{ webhook: "{url}" }}
safety:
  abort_if: [ {{ error_rate: "> 50%", for: 1s }} ]
phases:
  - name: slow
    duration: 1s
    inject: [ {{ type: latency, proxy: payments, latency: 5ms }} ]
  - name: broken
    duration: 10s
    inject: [ {{ type: http_error, proxy: payments, status: 500 }} ]
"#,
        url = hook.url
    );
    let (dir, file) = write_temp(&yaml);
    let out = tokio::task::spawn_blocking(move || {
        run_bounded(
            faultline()
                .arg("run")
                .arg(&file)
                .arg("--out")
                .arg(dir.path()),
            Duration::from_secs(60),
        )
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = hook.events();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "fault_applied",
            "faults_removed",
            "fault_applied",
            "faults_removed",
            "aborted",
            "run_finished"
        ],
        "{events:#?}"
    );
    for e in &events {
        assert!(
            e["text"]
                .as_str()
                .is_some_and(|t| t.starts_with("faultline: ")),
            "{e}"
        );
    }
    assert!(events[5]["text"]
        .as_str()
        .unwrap_or("")
        .contains("error_rate > 50% for 1s"));
    assert_eq!(events[6]["exit_code"], 3);
    hook.shutdown.cancel();
}

#[test]
fn verbose_runs_log_faults_and_quiet_ones_do_not() {
    let yaml = "name: logged\ntarget: { demo: {} }\n\
                load: { rate: 20, timeout: 2s, requests: [ { path: /checkout } ] }\n\
                phases:\n  - name: slow\n    duration: 1s\n    \
                inject: [ { type: latency, proxy: payments, latency: 1ms } ]\n";
    let (dir, file) = write_temp(yaml);
    let run = |verbose: bool, env: Option<&str>| {
        let mut cmd = faultline();
        if verbose {
            cmd.arg("-v");
        }
        cmd.env_remove("FAULTLINE_LOG");
        if let Some(filter) = env {
            cmd.env("FAULTLINE_LOG", filter);
        }
        cmd.arg("run")
            .arg(&file)
            .arg("--quiet")
            .arg("--out")
            .arg(dir.path());
        let out = run_bounded(&mut cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let verbose = run(true, None);
    assert!(verbose.contains("fault apply"), "{verbose}");
    assert!(verbose.contains("fault remove"), "{verbose}");
    assert!(verbose.contains("target ready"), "{verbose}");
    let quiet = run(false, None);
    assert!(!quiet.contains("fault apply"), "{quiet}");
    let filtered = run(false, Some("faultline::faults=info"));
    assert!(filtered.contains("fault apply"), "{filtered}");
    assert!(!filtered.contains("target ready"), "{filtered}");
}

/// Runs `yaml` with `--interactive`, typing `input` on stdin; returns the
/// exit code and the JSON report.
fn interactive_run(yaml: &str, input: &str) -> (Option<i32>, serde_json::Value) {
    use std::io::Write;
    let (dir, file) = write_temp(yaml);
    let mut child = faultline()
        .args(["run", "--interactive", "--quiet"])
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start faultline");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("type");
    drop(stdin);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("poll").is_none() {
        assert!(std::time::Instant::now() < deadline, "interactive run hung");
        std::thread::sleep(Duration::from_millis(50));
    }
    let code = child.wait().expect("wait").code();
    let report = std::fs::read_to_string(dir.path().join("report.json")).expect("report");
    (code, serde_json::from_str(&report).expect("json"))
}

const GAME_DAY: &str = r#"
name: game-day
target: { demo: { canary_weight: 0% } }
load: { rate: 50, timeout: 2s, requests: [ { path: /checkout } ] }
phases:
  - { name: baseline, duration: 1s, pause: true }
  - name: broken
    duration: 2s
    inject: [ { type: http_error, proxy: payments, status: 500 } ]
    expect: { error_rate: "< 1%" }
"#;

#[test]
fn interactive_skip_runs_the_phase_without_its_faults_and_keeps_notes() {
    // Enter at the pause, a note, then `s` at the fault phase's prompt.
    let (code, report) = interactive_run(GAME_DAY, "\nn dashboards look normal\ns\n");
    let exp = &report["experiments"][0];
    assert_eq!(code, Some(0), "{exp}");
    assert_eq!(exp["faults"].as_array().map(Vec::len), Some(0), "{exp}");
    assert_eq!(
        report["operator_notes"][0]["text"],
        "dashboards look normal"
    );
    assert!(report["operator_notes"][0]["at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
}

#[test]
fn interactive_abort_rolls_back_and_exits_3() {
    let (code, report) = interactive_run(GAME_DAY, "\na\n");
    let exp = &report["experiments"][0];
    assert_eq!(code, Some(3), "{exp}");
    assert_eq!(exp["status"], "aborted");
    assert!(
        exp["error"]
            .as_str()
            .unwrap_or("")
            .contains("aborted by the operator before phase `broken`"),
        "{exp}"
    );
    assert_eq!(
        exp["faults"].as_array().map(Vec::len),
        Some(0),
        "nothing was applied: {exp}"
    );
}
