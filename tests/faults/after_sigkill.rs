//! After a SIGKILL no rollback can run inside faultline; what it changed
//! outside its own process is in the on-disk journal, and `faultline
//! rollback` undoes it: a process stopped with `kill STOP` is continued, the
//! orphaned `target.command` is stopped, a `command` fault's rollback runs.
//! Only processes this test started are signalled.
//!
//! (A *target* stopped with `kill STOP` needs no test of its own: when
//! faultline dies, the target's process group is orphaned with a stopped
//! member, and the kernel sends the group SIGHUP and SIGCONT itself.)

use super::bin;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Kills, on drop, what a failed assertion would leave behind: processes
/// whose command line holds this test's own temp dir, which only this test
/// started.
struct Leftovers(String);

impl Drop for Leftovers {
    fn drop(&mut self) {
        for pid in crate::common::processes_with(&self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// A process this test started, killed (by its pid) on drop.
struct Victim(Child);

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The process state letter (`S`, `T`, `Z`, ...) of `pid`, if it exists.
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// The `action`s listed in a journal file (empty when there is none).
fn journaled(journal: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(journal) else {
        return Vec::new();
    };
    let Ok(file) = serde_json::from_str::<Value>(&text) else {
        return Vec::new();
    };
    file["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Starts `faultline run` on `yaml` and waits until the journal lists every
/// action in `wanted`; returns the run and the journal's path.
async fn run_until_journaled(
    dir: &Path,
    name: &str,
    yaml: &str,
    wanted: &[&str],
) -> (Child, PathBuf) {
    let file = dir.join("e.yaml");
    std::fs::write(&file, yaml).expect("write experiment");
    let run = bin()
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start faultline run");
    let journal = dir.join(name).join("rollback.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = journaled(&journal);
        if wanted.iter().all(|w| listed.iter().any(|l| l == w)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the journal never listed {wanted:?} (it lists {listed:?})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (run, journal)
}

async fn sigkill(run: Child) {
    kill(Pid::from_raw(run.id() as i32), Signal::SIGKILL).expect("kill -9 the run");
    assert_eq!(
        crate::common::wait_exit(run, Duration::from_secs(10)).await,
        -1
    );
}

fn rollback(journal: &Path) -> (i32, String) {
    let out = bin()
        .arg("rollback")
        .arg("--journal")
        .arg(journal)
        .output()
        .expect("run faultline rollback");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphaned_target_is_stopped_by_rollback_after_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    // The temp dir in its command line tells this target's processes from
    // any other test's.
    let marker = dir.path().display().to_string();
    let _leftovers = Leftovers(marker.clone());
    let yaml = format!(
        "name: orphan\ntarget:\n  command: \"python3 -m http.server {port} --bind 127.0.0.1 --directory '{marker}'\"\n  url: \"http://127.0.0.1:{port}\"\n  ready: {{ path: /, timeout: 20s }}\nload:\n  rate: 5\n  timeout: 500ms\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: long, duration: 60s }}\n"
    );
    let (run, journal) = run_until_journaled(dir.path(), "orphan", &yaml, &["stop_target"]).await;
    sigkill(run).await;
    assert!(
        !crate::common::processes_with(&marker).is_empty(),
        "SIGKILL cannot stop the target: it is orphaned"
    );

    let (code, text) = rollback(&journal);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("stopped target `python3 -m http.server"),
        "{text}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !crate::common::processes_with(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the target outlived the rollback"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!journal.exists(), "everything undone: the journal goes");
    let (code, text) = rollback(&journal);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("nothing to roll back"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_faults_rollback_runs_from_the_journal_after_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let applied = dir.path().join("applied");
    let rolled = dir.path().join("rolled-back");
    let yaml = format!(
        "name: cmd\ntarget: {{ demo: {{}} }}\nload:\n  rate: 5\n  requests:\n    - {{ path: / }}\nphases:\n  - name: fault\n    duration: 60s\n    inject:\n      - {{ type: command, run: \"touch '{}'\", rollback: \"echo $FAULTLINE_TARGET_URL > '{}'\" }}\n",
        applied.display(),
        rolled.display()
    );
    let (run, journal) = run_until_journaled(dir.path(), "cmd", &yaml, &["run_command"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !applied.exists() {
        assert!(Instant::now() < deadline, "the command never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigkill(run).await;
    assert!(!rolled.exists(), "SIGKILL: the rollback did not run");

    let (code, text) = rollback(&journal);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("ran command fault rollback `echo"), "{text}");
    let url = std::fs::read_to_string(&rolled).expect("the rollback ran");
    assert!(
        url.trim().starts_with("http://127.0.0.1:"),
        "it ran with the run's environment: {url:?}"
    );
    assert!(!journal.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_stopped_through_a_pidfile_is_continued_but_never_a_newer_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let victim = Victim(
        std::process::Command::new("sleep")
            .arg("120")
            .spawn()
            .expect("start the victim"),
    );
    let pid = victim.0.id() as i32;
    let pidfile = dir.path().join("victim.pid");
    std::fs::write(&pidfile, format!("{pid}\n")).expect("write pidfile");
    let yaml = format!(
        "name: pidfile\ntarget: {{ demo: {{}} }}\nload:\n  rate: 5\n  requests:\n    - {{ path: / }}\nphases:\n  - name: paused\n    duration: 60s\n    inject:\n      - {{ type: kill, signal: STOP, pidfile: '{}' }}\n",
        pidfile.display()
    );
    let (run, journal) =
        run_until_journaled(dir.path(), "pidfile", &yaml, &["continue_process"]).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(pid) != Some('T') {
        assert!(Instant::now() < deadline, "the victim was never stopped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sigkill(run).await;
    assert_eq!(state(pid), Some('T'), "SIGKILL: it stays stopped");

    // A journal whose start time is not the process's own (its pid was
    // reused by a newer process) must never signal it.
    let original = std::fs::read_to_string(&journal).expect("read journal");
    let mut edited: Value = serde_json::from_str(&original).expect("journal JSON");
    let started = edited["entries"][0]["started"]
        .as_u64()
        .expect("start time");
    edited["entries"][0]["started"] = Value::from(started + 1);
    std::fs::write(&journal, edited.to_string()).expect("write journal");
    let (code, text) = rollback(&journal);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("already gone: process"), "{text}");
    assert_eq!(state(pid), Some('T'), "a newer process is never signalled");

    std::fs::write(&journal, &original).expect("restore journal");
    let (code, text) = rollback(&journal);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("continued process {pid}")), "{text}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while state(pid) == Some('T') {
        assert!(Instant::now() < deadline, "the victim was never continued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(victim);
}
