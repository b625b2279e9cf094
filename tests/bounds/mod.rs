//! The bounds of `faultline::bounds` seen from outside: a pidfile holding
//! `-1`, `0` or `1`, a name matching faultline itself, memory or cores past
//! the host, and absurd load are refused by `validate`, by `run` at apply
//! time and by the agent API, each with the bound in the message.
//!
//! Whatever could send a signal runs inside a PID namespace the test makes
//! (`unshare --pid --fork --kill-child --mount-proc`): if a bound ever
//! regressed, `kill(-1)` would hit only the namespace, never this host.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::cli::{faultline, run_bounded};

const TOKEN: &str = "bounds-test-token-0123456789";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// `faultline ARGS...` in a new PID namespace (its own pid 1, its own /proc).
fn in_namespace(args: &[&str]) -> Command {
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_faultline"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn kill_experiment(pidfile: &Path, before: &str) -> String {
    format!(
        "name: bounded-kill\ntarget: {{ demo: {{}} }}\n\
         load: {{ rate: 20, timeout: 1s, requests: [ {{ path: /checkout }} ] }}\n\
         phases:\n{before}\
         \x20 - name: kill\n    duration: 1s\n    inject:\n\
         \x20     - {{ type: kill, signal: STOP, pidfile: '{}' }}\n",
        pidfile.display()
    )
}

#[test]
fn validate_refuses_a_pidfile_holding_a_group_init_or_a_device() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (content, part) in [
        ("-1\n", "kill(-1)"),
        ("0", "pids 0, 1"),
        ("1\n", "pids 0, 1"),
    ] {
        let pidfile = write(dir.path(), "x.pid", content);
        let file = write(dir.path(), "x.yaml", &kill_experiment(&pidfile, ""));
        let out = run_bounded(
            faultline().arg("validate").arg(&file),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{content:?}: {stderr}");
        assert!(stderr.contains(part), "{content:?}: {stderr}");
        assert!(stderr.contains("phases[0].inject[0].pidfile"), "{stderr}");
    }
    let file = write(
        dir.path(),
        "x.yaml",
        &kill_experiment(Path::new("/dev/zero"), ""),
    );
    let out = run_bounded(
        faultline().arg("validate").arg(&file),
        Duration::from_secs(5),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not a regular file"), "{stderr}");
}

#[test]
fn plan_names_a_refused_pidfile_and_exits_4() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("not-yet.pid");
    let file = write(dir.path(), "x.yaml", &kill_experiment(&missing, ""));
    let out = run_bounded(faultline().arg("plan").arg(&file), Duration::from_secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("not-yet.pid"), "{stdout}");
    assert!(stdout.contains("cannot read it"), "{stdout}");
}

/// A pidfile that only says `-1` once the run is under way (an earlier
/// phase writes it): the kill fault refuses at apply time, the run is an
/// `error` (exit 4) and every process of the namespace is still there.
#[test]
fn a_pidfile_turning_to_minus_one_during_the_run_is_refused_at_apply() {
    let dir = tempfile::tempdir().expect("temp dir");
    let pidfile = dir.path().join("late.pid");
    let witness = dir.path().join("witness");
    let before = format!(
        "  - name: write\n    duration: 1s\n    inject:\n\
         \x20     - {{ type: command, run: \"echo -1 > '{}'\" }}\n",
        pidfile.display()
    );
    let file = write(dir.path(), "x.yaml", &kill_experiment(&pidfile, &before));
    // A witness process in the same namespace: `kill(-1, STOP)` would stop
    // it, and it would never write its file.
    let script = format!(
        "sleep 30 & w=$!; {} run '{}' --out '{}' --quiet; code=$?; \
         kill -0 $w && kill $w && touch '{}'; exit $code",
        env!("CARGO_BIN_EXE_faultline"),
        file.display(),
        dir.path().display(),
        witness.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--kill-child",
        "--mount-proc",
        "sh",
        "-c",
        &script,
    ])
    .current_dir(env!("CARGO_MANIFEST_DIR"));
    let out = run_bounded(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    let report = std::fs::read_to_string(dir.path().join("report.json")).expect("report");
    assert!(report.contains("kill(-1)"), "{report}");
    assert!(
        witness.exists(),
        "the witness process was signalled or died"
    );
}

/// A real agent in a PID namespace, stopped (with its namespace) on drop.
struct Agent {
    child: Child,
    url: String,
}

impl Agent {
    fn start(dir: &Path, extra: &[&str]) -> Agent {
        let token = write(dir, "token", TOKEN);
        let token = token.to_str().expect("utf-8 path");
        let mut args = vec!["agent", "--listen", "127.0.0.1:0", "--token-file", token];
        args.extend_from_slice(extra);
        let mut child = in_namespace(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the agent");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .expect("the agent prints its address");
        // Keep reading its log, so a write never meets a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();
        Agent { child, url }
    }

    async fn post(&self, spec: serde_json::Value) -> (u16, String) {
        let response = reqwest::Client::new()
            .post(format!("{}/faults", self.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({ "spec": spec }))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .expect("the agent answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_agent_refuses_group_init_self_and_host_sized_faults() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let dir = tempfile::tempdir().expect("temp dir");
        let agent = Agent::start(dir.path(), &[]);
        let mut cases = Vec::new();
        for (name, content) in [
            ("m1", "-1"),
            ("z", "0"),
            ("one", "1\n"),
            ("big", "123456789012"),
        ] {
            let path = write(dir.path(), name, content);
            cases.push((
                serde_json::json!({"type": "kill", "signal": "KILL", "pidfile": path}),
                if content == "123456789012" {
                    "not a pid"
                } else {
                    "refused"
                },
            ));
        }
        cases.extend([
            (
                serde_json::json!({"type": "kill", "signal": "STOP", "pidfile": "/dev/zero"}),
                "not a regular file",
            ),
            (
                serde_json::json!({"type": "memory", "bytes": 1u64 << 40}),
                "--allow-force",
            ),
            (
                serde_json::json!({"type": "memory", "bytes": 1u64 << 40, "force": true}),
                "does not run with --allow-force",
            ),
            (
                serde_json::json!({"type": "cpu", "load": 0.5, "cores": 4096}),
                "cores",
            ),
        ]);
        for (spec, part) in cases {
            let (status, body) = agent.post(spec.clone()).await;
            assert_eq!(status, 400, "{spec}: {body}");
            assert!(body.contains(part), "{spec}: {body}");
        }
        // By name, faultline never selects itself (the agent is pid 1 here).
        let (status, body) = agent
            .post(serde_json::json!({"type": "kill", "signal": "STOP", "name": "faultline"}))
            .await;
        assert!(status >= 400, "{body}");
        assert!(body.contains("no process named"), "{body}");
        // And it is still there to answer.
        let (status, _) = agent
            .post(serde_json::json!({"type": "cpu", "load": 0.0}))
            .await;
        assert_eq!(status, 400);
    })
    .await
    .expect("the test took longer than 60 s");
}

#[test]
fn the_agent_refuses_short_tokens_and_warns_about_readable_token_files() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let short = write(dir.path(), "short", "abc\n");
    let out = run_bounded(
        faultline()
            .args(["agent", "--listen", "127.0.0.1:0", "--token-file"])
            .arg(&short),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("at least 16"), "{stderr}");
    let open = write(dir.path(), "open", TOKEN);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = run_bounded(
        faultline()
            .args([
                "agent",
                "--strict",
                "--listen",
                "127.0.0.1:0",
                "--token-file",
            ])
            .arg(&open),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("readable by group or others"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "the token leaked: {stderr}");
}

#[test]
fn absurd_load_is_refused_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    #[rustfmt::skip]
    let cases = [
        ("rate: 1e12", "10,000,000/s"),
        ("concurrency: 2147483647", "100,000"),
        ("rate: 10, max_in_flight: 1000000", "100,000"),
    ];
    for (load, part) in cases {
        let text = format!(
            "name: absurd\ntarget: {{ url: http://127.0.0.1:9 }}\n\
             load: {{ {load}, requests: [ {{ path: / }} ] }}\nphases: [ {{ name: p, duration: 1s }} ]\n"
        );
        let file = write(dir.path(), "x.yaml", &text);
        let started = std::time::Instant::now();
        let out = run_bounded(
            faultline().arg("validate").arg(&file),
            Duration::from_secs(10),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{load}: {stderr}");
        assert!(
            stderr.contains(part) && stderr.contains("--force"),
            "{load}: {stderr}"
        );
        assert!(started.elapsed() < Duration::from_secs(2), "{load}: slow");
        let out = run_bounded(
            faultline().args(["validate", "--force"]).arg(&file),
            Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(0), "{load} --force: {:?}", out);
    }
    let text = "name: long\ntarget: { url: http://127.0.0.1:9 }\n\
                load: { rate: 1, requests: [ { path: / } ] }\n\
                phases: [ { name: p, duration: 1200000h } ]\n";
    let file = write(dir.path(), "x.yaml", text);
    let out = run_bounded(
        faultline().arg("validate").arg(&file),
        Duration::from_secs(10),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("24h"), "{stderr}");
}

/// A run against a URL nobody listens on is an `error` before any phase;
/// one whose every request then fails (a listener that drops every
/// connection: nothing ever answered HTTP) and has no `expect` is an
/// `error` too, never a pass.
#[test]
fn a_run_where_nothing_ever_answered_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |port: u16| {
        let text = format!(
            "name: nobody-home\ntarget: {{ url: http://127.0.0.1:{port} }}\n\
             load: {{ rate: 20, timeout: 500ms, requests: [ {{ path: / }} ] }}\n\
             phases: [ {{ name: p, duration: 1s }} ]\n"
        );
        let file = write(dir.path(), "x.yaml", &text);
        let out = run_bounded(
            faultline()
                .arg("run")
                .arg(&file)
                .arg("--out")
                .arg(dir.path())
                .arg("--quiet"),
            Duration::from_secs(30),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(4), "{stderr}");
        let report = std::fs::read_to_string(dir.path().join("report.json")).expect("report");
        let report: serde_json::Value = serde_json::from_str(&report).expect("JSON");
        let exp = report["experiments"][0].clone();
        assert_eq!(exp["status"], "error", "{exp}");
        exp["error"].as_str().unwrap_or_default().to_string()
    };
    // A port held bound but never listening: connects are refused, and no
    // other test can take it meanwhile (a port merely freed could be).
    let held =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    held.bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    let free = held
        .local_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .expect("bound address")
        .port();
    let error = run(free);
    drop(held);
    assert!(
        error.contains("not reachable") && error.contains("ready:"),
        "{error}"
    );
    // Something listens, but drops every connection without a byte.
    let rude = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = rude.local_addr().expect("addr").port();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    rude.set_nonblocking(true).expect("non-blocking");
    let acceptor = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            match rude.accept() {
                Ok((conn, _)) => drop(conn),
                Err(_) => std::thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    let error = run(port);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = acceptor.join();
    assert!(error.contains("never there"), "{error}");
}

/// A rate the generator can never keep (`--force` past the bound): the
/// first SIGINT still stops the run within a second, memory stays small,
/// and the requests it could not send are counted, not enumerated.
#[test]
fn sigint_stops_a_run_far_behind_a_huge_rate_at_once() {
    use nix::sys::signal::{kill, Signal};
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "x.yaml",
        "name: huge\ntarget: { demo: {} }\n\
         load: { rate: 100000000, requests: [ { path: /health } ] }\n\
         phases: [ { name: p, duration: 30s } ]\n",
    );
    let mut child = faultline()
        .args(["run", "--force", "--quiet", "--out"])
        .arg(dir.path())
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start faultline");
    std::thread::sleep(Duration::from_secs(3));
    let rss_kib: u64 = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let sent = std::time::Instant::now();
    kill(pid, Signal::SIGINT).expect("SIGINT");
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll") {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("still running 10 s after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    assert_eq!(status.code(), Some(3));
    assert!(
        took < Duration::from_millis(1500),
        "stopped {took:?} after SIGINT"
    );
    assert!(rss_kib > 0 && rss_kib < 256 * 1024, "RSS {rss_kib} KiB");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("report.json")).expect("report"))
            .expect("JSON");
    let unsent = report["experiments"][0]["load"]["unsent"]
        .as_u64()
        .unwrap_or(0);
    assert!(unsent > 1_000_000, "unsent {unsent}");
}
