//! Probes in flight: an `http` probe and a `prometheus` probe against a
//! server that never answers, a `command` probe running `sleep 30`. The run
//! stops within the bound with exit 3 and the command's process is gone.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{report, signal_and_wait, start_run, Answers, HungServer};
use crate::common::alive;

#[tokio::test]
async fn sigint_with_probes_in_flight_exits_3_at_once_and_kills_the_command() {
    let hung = HungServer::start(Answers::Nothing).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let pidfile = dir.path().join("probe.pid");
    let yaml = format!(
        "name: probes\ntarget: {{ demo: {{}} }}\n\
         load: {{ rate: 20, timeout: 1s, requests: [ {{ path: /health }} ] }}\n\
         probes:\n\
         \x20 hung-http: {{ http: {{ url: \"{url}/state\" }}, timeout: 30s }}\n\
         \x20 hung-prometheus: {{ prometheus: {{ url: \"{url}\", query: up, value: \"> 0\" }}, timeout: 30s }}\n\
         \x20 slow-command: {{ command: {{ run: \"echo $$ > '{pid}'; exec sleep 30\" }}, timeout: 30s }}\n\
         phases:\n  - name: watched\n    duration: 20s\n    expect:\n      probes:\n\
         \x20       - {{ name: hung-http, at: start }}\n\
         \x20       - {{ name: hung-prometheus, at: start }}\n\
         \x20       - {{ name: slow-command, at: start }}\n",
        url = hung.url(),
        pid = pidfile.display()
    );
    let run = start_run(dir.path(), &yaml);
    hung.wait_held(2).await;
    let deadline = Instant::now() + super::LIMIT;
    let sleep_pid = loop {
        let pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        if let Some(pid) = pid {
            break pid;
        }
        assert!(Instant::now() < deadline, "the command probe never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(alive(sleep_pid), "the probe's sleep runs before the signal");
    let stopped = signal_and_wait(run, Signal::SIGINT).await;
    stopped.assert_aborted_in_time();
    // SIGKILL was sent before the run exited; give the kernel a moment.
    let deadline = Instant::now() + Duration::from_millis(500);
    while alive(sleep_pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        !alive(sleep_pid),
        "the command probe's process {sleep_pid} outlived the run"
    );
    let report = report(dir.path());
    assert_eq!(report["experiments"][0]["status"], "aborted");
}
