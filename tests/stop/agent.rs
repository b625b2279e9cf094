//! An agent that hangs: one that never answers the apply (a listener that
//! accepts and holds), and a real `faultline agent` stopped with SIGSTOP
//! while it holds a fault. The run stops within the bound with exit 3 and
//! says that the agent's lease removes the fault by itself.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{report, signal_and_wait, start_run_with, Answers, HungServer, Stopped};

const TOKEN: &str = "stop-test-token-0123456789";
const TOKEN_ENV: &str = "FAULTLINE_STOP_TEST_TOKEN";

/// A `faultline agent` child; killed (by PID) and reaped on drop.
struct Agent {
    child: Child,
    url: String,
}

impl Agent {
    fn start(dir: &Path) -> Agent {
        let token = dir.join("token");
        std::fs::write(&token, TOKEN).expect("write token");
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600))
            .expect("token file mode");
        let mut child = super::faultline()
            .args(["agent", "--listen", "127.0.0.1:0", "--token-file"])
            .arg(&token)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the agent");
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
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

    fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        kill(pid, signal).expect("signal the agent");
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `command` fault on agent `db` that creates `marker` until removed.
fn experiment(url: &str, marker: &Path) -> String {
    format!(
        "name: agent\ntarget: {{ demo: {{}} }}\n\
         agents:\n  db: {{ url: \"{url}\", token_env: {TOKEN_ENV} }}\n\
         load: {{ rate: 20, timeout: 1s, requests: [ {{ path: /health }} ] }}\n\
         phases:\n  - {{ name: warm, duration: 500ms }}\n\
         \x20 - name: fault\n    duration: 20s\n    inject:\n\
         \x20     - {{ type: command, host: db, run: \"touch '{m}'\", rollback: \"rm -f '{m}'\", timeout: 5s }}\n",
        m = marker.display()
    )
}

/// Aborted, not a failed rollback, and the lease named as what finishes it.
fn assert_left_to_the_lease(dir: &Path, stopped: &Stopped) {
    stopped.assert_aborted_in_time();
    let report = report(dir);
    let exp = &report["experiments"][0];
    assert_eq!(exp["status"], "aborted", "{exp}");
    assert_eq!(exp["rollback_failed"], false, "{exp}");
    let error = exp["error"].as_str().unwrap_or_default();
    for words in ["agent `db`", "lease of 30s"] {
        assert!(error.contains(words), "`{words}` in the message: {error}");
    }
}

#[tokio::test]
async fn sigint_while_an_agent_never_answers_the_apply_exits_3_at_once() {
    let agent = HungServer::start(Answers::Nothing).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("marker");
    let run = start_run_with(
        dir.path(),
        &experiment(&agent.url(), &marker),
        &[(TOKEN_ENV, TOKEN)],
    );
    agent.wait_held(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = signal_and_wait(run, Signal::SIGINT).await;
    assert_left_to_the_lease(dir.path(), &stopped);
}

#[tokio::test]
async fn sigint_while_the_agent_is_stopped_exits_3_at_once_and_the_fault_still_ends() {
    let dir = tempfile::tempdir().expect("temp dir");
    let agent = Agent::start(dir.path());
    let marker = dir.path().join("marker");
    let run = start_run_with(
        dir.path(),
        &experiment(&agent.url, &marker),
        &[(TOKEN_ENV, TOKEN)],
    );
    let deadline = Instant::now() + super::LIMIT;
    while !marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the agent never applied the fault"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    agent.signal(Signal::SIGSTOP);
    let stopped = signal_and_wait(run, Signal::SIGINT).await;
    agent.signal(Signal::SIGCONT);
    assert_left_to_the_lease(dir.path(), &stopped);
    // Resumed, the agent ends the fault: by the removal it finds queued or,
    // at the latest, when the lease runs out.
    let deadline = Instant::now() + Duration::from_secs(40);
    while marker.exists() {
        assert!(
            Instant::now() < deadline,
            "the fault outlived its lease on the agent"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
