//! Authoring commands as a user runs them: `init` writes starter experiments
//! that validate and pass against the demo, `schema` prints the committed
//! schemas, `completions` prints shell scripts.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod schemas;

const TEMPLATES: &[&str] = &[
    "latency", "errors", "outage", "cpu", "memory", "breaker", "canary", "recovery",
];

/// Templates whose faults burn CPU or memory: run under `CPU_HEAVY`.
const HEAVY: &[&str] = &["cpu", "memory"];

fn faultline(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
    cmd.current_dir(dir);
    cmd
}

/// Runs the binary with a time limit (these tests must never hang CI),
/// reading its output as it comes (a schema fills a pipe buffer).
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faultline");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
    let (done, outcome) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    match outcome.recv_timeout(limit) {
        Ok(out) => out.expect("collect output"),
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            panic!("faultline did not finish within {limit:?}");
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `init`, then `validate`, then `run` of one template in its own folder.
fn init_validate_run(template: &str, dir: &Path) {
    let file = format!("{template}.yaml");
    let reports = format!("reports-{template}");
    let short = Duration::from_secs(20);
    let out = run_bounded(
        faultline(dir).args(["init", "--template", template, &file]),
        short,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "init {template}: {}",
        text(&out)
    );
    let out = run_bounded(faultline(dir).args(["validate", &file]), short);
    assert_eq!(
        out.status.code(),
        Some(0),
        "validate {template}: {}",
        text(&out)
    );
    let out = run_bounded(
        faultline(dir).args(["run", "--quiet", "--seed", "7", "--out", &reports, &file]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "run {template}: {}", text(&out));
}

#[test]
fn every_template_is_written_validates_and_passes_against_the_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let light: Vec<&str> = TEMPLATES
        .iter()
        .copied()
        .filter(|t| !HEAVY.contains(t))
        .collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        // Three at a time: each run is a demo system plus load; more would
        // make the latency thresholds a test of the CI machine.
        for _ in 0..3 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(template) = light.get(i) else { break };
                init_validate_run(template, dir.path());
            });
        }
    });
    // Then the pressure ones, alone among themselves and with other CPU hogs.
    let _turn = crate::common::CPU_HEAVY.blocking_lock();
    for template in HEAVY {
        init_validate_run(template, dir.path());
    }
}

#[test]
fn init_with_defaults_writes_the_latency_template_to_experiment_yaml() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_bounded(faultline(dir.path()).arg("init"), Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(dir.path().join("experiment.yaml")).expect("written");
    assert!(written.contains("type: latency"), "{written}");
    assert!(written.starts_with("# yaml-language-server: $schema="));
}

#[test]
fn init_refuses_to_overwrite_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("x.yaml");
    std::fs::write(&file, "keep me").expect("write");
    let out = run_bounded(
        faultline(dir.path()).args(["init", "--template", "breaker", "x.yaml"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already exists; pass --force"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&file).expect("read"), "keep me");
    let out = run_bounded(
        faultline(dir.path()).args(["init", "--force", "--template", "breaker", "x.yaml"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run_bounded(
        faultline(dir.path()).args(["validate", "x.yaml"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn an_unknown_template_exits_2_with_a_suggestion_and_the_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = run_bounded(
        faultline(dir.path()).args(["init", "--template", "breakr"]),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `breaker`?"), "{stderr}");
    for template in TEMPLATES {
        assert!(stderr.contains(&format!("`{template}`")), "{stderr}");
    }
    assert!(!dir.path().join("experiment.yaml").exists());
}

#[test]
fn schema_prints_the_committed_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for kind in ["experiment", "suite"] {
        let out = run_bounded(
            faultline(root).args(["schema", kind]),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let committed = std::fs::read(root.join(format!("schema/{kind}.schema.json")))
            .expect("committed schema");
        assert!(
            out.stdout == committed,
            "schema/{kind}.schema.json is stale: `cargo run -- schema {kind} > schema/{kind}.schema.json`"
        );
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(value["additionalProperties"], false);
    }
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for shell in ["bash", "zsh", "fish"] {
        let out = run_bounded(
            faultline(root).args(["completions", shell]),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("faultline"), "{shell}: {script}");
        assert!(
            script.contains("validate"),
            "{shell}: no subcommand in {script}"
        );
    }
}
