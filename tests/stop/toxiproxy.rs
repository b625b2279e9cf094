//! A Toxiproxy server that hangs: when the proxy is checked, while a toxic
//! is added, or while it is removed (after the signal or already at the
//! phase's end). The run stops within the bound with exit 3; a toxic whose
//! apply or removal never got an answer stays in `rollback.json`, and
//! `faultline rollback` removes it once the server answers again.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use super::{report, signal_and_wait, start_run, Answers, HungServer, Stopped};
use crate::cli::run_bounded;

/// One toxic on `svc` in phase `fault`, then a long phase after it.
fn experiment(server: &HungServer, fault: &str) -> String {
    format!(
        "name: hung\ntarget: {{ demo: {{}} }}\n\
         proxies:\n  svc: {{ toxiproxy: \"{url}\", name: svc }}\n\
         load: {{ rate: 20, timeout: 1s, requests: [ {{ path: /health }} ] }}\n\
         phases:\n  - {{ name: warm, duration: 500ms }}\n\
         \x20 - name: fault\n    duration: {fault}\n    inject:\n\
         \x20     - {{ type: latency, proxy: svc, latency: 50ms }}\n\
         \x20 - {{ name: after, duration: 20s }}\n",
        url = server.url()
    )
}

/// The toxics `rollback.json` of the experiment lists.
fn journaled_toxics(dir: &Path) -> Vec<String> {
    let path = dir.join("hung").join("rollback.json");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Vec::new();
    };
    let journal: Value = serde_json::from_str(&text).expect("rollback.json is JSON");
    journal["entries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "remove_toxic" && e["proxy"] == "svc")
        .filter_map(|e| e["toxic"].as_str().map(str::to_string))
        .collect()
}

/// The stop left the toxic to the journal, and said so.
fn assert_left_in_journal(dir: &Path, stopped: &Stopped) {
    let toxics = journaled_toxics(dir);
    assert!(
        toxics.len() == 1 && toxics[0].starts_with("faultline-"),
        "rollback.json lists the toxic: {toxics:?}"
    );
    let report = report(dir);
    let exp = &report["experiments"][0];
    assert_eq!(exp["status"], "aborted", "{exp}");
    assert_eq!(exp["rollback_failed"], false, "{exp}");
    let error = exp["error"].as_str().unwrap_or_default();
    for words in ["SIG", "rollback journal", "faultline rollback --journal"] {
        assert!(error.contains(words), "`{words}` in the message: {error}");
    }
    assert!(
        stopped.stderr.contains("faultline rollback --journal"),
        "the console says how to finish: {}",
        stopped.stderr
    );
}

/// Once the server answers again, `faultline rollback` removes the toxic
/// and the journal goes.
async fn rollback_later(dir: &Path, server: &HungServer) {
    server.heal();
    let journal = dir.join("hung").join("rollback.json");
    let path = journal.clone();
    // Blocking, off the runtime that serves the stand-in server.
    let out = tokio::task::spawn_blocking(move || {
        run_bounded(
            super::faultline()
                .arg("rollback")
                .arg("--journal")
                .arg(&path),
            Duration::from_secs(20),
        )
    })
    .await
    .expect("faultline rollback ran");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!journal.exists(), "the journal is gone once undone");
}

#[tokio::test]
async fn sigint_while_the_server_hangs_on_adding_a_toxic_exits_3_at_once_and_journals_it() {
    let server = HungServer::start(Answers::Gets).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = start_run(dir.path(), &experiment(&server, "20s"));
    // The proxy check was answered; the POST of the toxic is held.
    server.wait_held(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stopped = signal_and_wait(run, Signal::SIGINT).await;
    stopped.assert_aborted_in_time();
    assert_left_in_journal(dir.path(), &stopped);
    rollback_later(dir.path(), &server).await;
}

#[tokio::test]
async fn sigterm_while_the_server_hangs_on_removing_a_toxic_exits_3_at_once_and_journals_it() {
    let server = HungServer::start(Answers::GetsAndPosts).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = start_run(dir.path(), &experiment(&server, "20s"));
    let deadline = std::time::Instant::now() + super::LIMIT;
    while server.posts() == 0 {
        assert!(std::time::Instant::now() < deadline, "no toxic was added");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.held(), 0, "nothing held before the signal");
    let stopped = signal_and_wait(run, Signal::SIGTERM).await;
    assert!(server.held() >= 1, "the removal was sent and held");
    stopped.assert_aborted_in_time();
    assert_left_in_journal(dir.path(), &stopped);
    rollback_later(dir.path(), &server).await;
}

#[tokio::test]
async fn sigint_while_a_phase_end_removal_hangs_exits_3_at_once_and_journals_it() {
    let server = HungServer::start(Answers::GetsAndPosts).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = start_run(dir.path(), &experiment(&server, "500ms"));
    // The phase ended and its removal is held (the client would wait 10 s).
    server.wait_held(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopped = signal_and_wait(run, Signal::SIGINT).await;
    stopped.assert_aborted_in_time();
    assert_left_in_journal(dir.path(), &stopped);
}

#[tokio::test]
async fn sigint_while_the_proxy_check_hangs_exits_3_at_once() {
    let server = HungServer::start(Answers::Nothing).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = start_run(dir.path(), &experiment(&server, "20s"));
    server.wait_held(1).await;
    let stopped = signal_and_wait(run, Signal::SIGINT).await;
    stopped.assert_aborted_in_time();
    assert!(
        journaled_toxics(dir.path()).is_empty(),
        "nothing was applied"
    );
    let report = report(dir.path());
    let error = report["experiments"][0]["error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("proxy `svc`"), "{error}");
}
