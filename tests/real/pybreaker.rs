//! pybreaker (PyPI), an in-process circuit breaker library, in fail-fast
//! style: judged by faultline's `breaker` check against the service's own
//! record of every dependency call, pybreaker's state sampled every 100 ms
//! and the dependency's (nginx's) access log.
//!
//! Topology: faultline → `breaker_service.py` (pybreaker, fail_max=3,
//! reset_timeout=2 s) → hop → nginx. Defect: fail_max=1000000, a breaker
//! that never opens.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::nginx::start_backends;
use super::{free_port, now_epoch, run_faultline, temp_dir, wait_listening, Daemon, RUNS};

/// pybreaker's state as `GET /breaker` says it, or `None` without an answer.
fn state(port: u16) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"GET /breaker HTTP/1.0\r\n\r\n").ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let body: serde_json::Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1)?).ok()?;
    body["state"].as_str().map(str::to_string)
}

/// Samples the state every 100 ms on a thread until the flag is set (or
/// 40 s pass).
fn sampler(port: u16) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<(f64, String)>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut samples = Vec::new();
        for _ in 0..400 {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            samples.extend(state(port).map(|s| (now_epoch(), s)));
            std::thread::sleep(Duration::from_millis(100));
        }
        samples
    });
    (stop, handle)
}

/// Unix times of the lines of a `<time> <rest>` log, with their rest.
fn timed_lines(path: &std::path::Path) -> Vec<(f64, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let (t, rest) = l.split_once(' ')?;
            Some((t.parse().ok()?, rest.to_string()))
        })
        .collect()
}

fn breaker(fail_max: u32) {
    let healthy = fail_max < 10;
    for run in 1..=RUNS {
        let dir = temp_dir("faultline-real-pybreaker-");
        let (svc_port, hop_port, dep_port) = (free_port(), free_port(), free_port());
        let _dependency = start_backends(dir.path(), &[(dep_port, "dependency", "v1")]);
        let calls = dir.path().join("calls.log");
        let log = dir.path().join("service.log");
        let mut service = Daemon::spawn(
            "breaker_service.py",
            Command::new("python3")
                .arg(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/real/breaker_service.py"
                ))
                .arg(svc_port.to_string())
                .arg(format!("http://127.0.0.1:{hop_port}/pay"))
                .arg(fail_max.to_string())
                .arg(&calls),
            &log,
        );
        wait_listening(&mut service, &log, svc_port);
        let yaml = format!(
            "name: pybreaker\n\
             target: {{ url: \"http://127.0.0.1:{svc_port}\" }}\n\
             proxies:\n  hop: {{ listen: \"127.0.0.1:{hop_port}\", upstream: \"127.0.0.1:{dep_port}\", mode: http }}\n\
             load: {{ rate: 100, timeout: 2s, requests: [ {{ path: /checkout }} ] }}\n\
             phases:\n  - {{ name: baseline, duration: 2s }}\n  \
             - {{ name: dependency-failing, duration: 5s, inject: [ {{ type: http_error, proxy: hop, status: 500 }} ] }}\n  \
             - {{ name: after, duration: 4s }}\n\
             verify:\n  - breaker:\n      phase: dependency-failing\n      dependency: hop\n      \
             fast_fail: {{ status: 503, latency: 50ms }}\n      opens_within: 2s\n      \
             max_dependency_calls: 8\n      closes_within: 4s\n      \
             state: {{ url: /breaker, pointer: /state, open: open, closed: closed }}\n"
        );
        let (stop, samples) = sampler(svc_port);
        let report = run_faultline(dir.path(), "breaker", &yaml);
        stop.store(true, Ordering::SeqCst);
        let samples = samples.join().expect("the sampler thread");
        let (start, end) = report.phase("dependency-failing");
        let (_, run_end) = report.phase("after");
        // The service's own record: calls while the breaker should be open.
        let open_calls = timed_lines(&calls)
            .iter()
            .filter(|(t, _)| *t >= start + 1.0 && *t < end)
            .count();
        let opened = samples
            .iter()
            .any(|(t, s)| *t >= start && *t < end && s == "open");
        let closed_at_end = samples
            .iter()
            .rfind(|(t, _)| *t < run_end)
            .is_some_and(|(_, s)| s == "closed");
        // nginx's log: the first call that reached the dependency after the fault.
        let resumed_after = timed_lines(&dir.path().join("dependency.log"))
            .iter()
            .find(|(t, _)| *t >= end)
            .map(|(t, _)| t - end);
        let (passed, message, observed) = report.verdict("breaker");
        let seen = format!(
            "run {run}, fail_max={fail_max}: service made {open_calls} calls from 1 s into the fault, \
             pybreaker opened={opened}, closed at end={closed_at_end}, nginx saw calls again after \
             {resumed_after:?} s; faultline: passed={passed} {message} | {observed}"
        );
        eprintln!("{seen}");
        if healthy {
            assert!(
                opened && closed_at_end && open_calls <= 4,
                "pybreaker: {seen}"
            );
            assert!(resumed_after.is_some_and(|s| s <= 3.0), "nginx log: {seen}");
            assert!(passed, "faultline failed a working breaker: {seen}");
        } else {
            assert!(!opened && open_calls >= 300, "pybreaker: {seen}");
            assert!(!passed, "faultline passed a disabled breaker: {seen}");
            assert!(message.contains("never opened"), "wrong reason: {seen}");
        }
    }
}

#[test]
fn pybreaker_opens_shields_and_closes() {
    breaker(3);
}

#[test]
fn pybreaker_disabled_fails_the_breaker_check() {
    breaker(1_000_000);
}
