//! The load generator and metrics, measured against real loopback servers.
//!
//! Tolerances are wide enough for a noisy 2-core machine and narrow enough
//! to fail if the measurement is wrong.

use crate::common::{Reply, TestBed};
use faultline::config;
use faultline::journal::{ExperimentReport, ExperimentStatus, PhaseReport};
use faultline::runner::{self, NoProgress, RunSettings, StopSignals};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every test here is bounded: a hung run fails instead of hanging CI.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs one experiment written in YAML (through the real parser) and returns its report.
pub async fn run_yaml(yaml: &str) -> ExperimentReport {
    let doc = config::load_str(yaml, Path::new("inline.yaml"))
        .unwrap_or_else(|e| panic!("test YAML is invalid:\n{e}"));
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = RunSettings {
        seed: 7,
        out_dir: dir.path().to_path_buf(),
        files: vec![],
        fail_fast: false,
        live: None,
    };
    let signals = StopSignals::new();
    let report = tokio::time::timeout(
        TEST_LIMIT,
        runner::run(
            &runner::Planned::all(doc.experiments),
            &settings,
            &signals,
            Arc::new(NoProgress),
        ),
    )
    .await
    .expect("the run finished within the test limit");
    report
        .experiments
        .into_iter()
        .next()
        .expect("one experiment ran")
}

fn experiment(url: &str, load: &str, phases: &str) -> String {
    format!(
        "name: t\ntarget: {{ url: \"{url}\" }}\nload:\n{load}\n  requests:\n    - {{ path: / }}\nphases:\n{phases}\n"
    )
}

fn phase<'a>(exp: &'a ExperimentReport, name: &str) -> &'a PhaseReport {
    exp.phases
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("phase {name} in {exp:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_50ms_server_is_measured_at_50ms() {
    let bed = TestBed::fixed_delay(Duration::from_millis(50));
    let exp = run_yaml(&experiment(
        &bed.url(),
        "  rate: 40\n  timeout: 2s",
        "  - { name: steady, duration: 3s }",
    ))
    .await;
    let p = phase(&exp, "steady");
    let lat = p.latency_ms.expect("samples");
    assert!(
        (lat.p50 - 50.0).abs() <= 10.0,
        "p50 {:.2}ms, expected 50ms ± 10ms",
        lat.p50
    );
    let svc = p.service_time_ms.expect("samples");
    assert!(
        (svc.p50 - 50.0).abs() <= 10.0,
        "service p50 {:.2}ms",
        svc.p50
    );
    assert_eq!(p.errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_failing_30_percent_is_measured_at_30_percent() {
    let bed = TestBed::error_fraction(0.3, 0);
    let exp = run_yaml(&experiment(
        &bed.url(),
        "  rate: 200\n  timeout: 2s",
        "  - { name: steady, duration: 2s, expect: { error_rate: \"< 1%\" } }",
    ))
    .await;
    let p = phase(&exp, "steady");
    assert!(
        (p.error_rate - 0.30).abs() <= 0.05,
        "error rate {:.3}, expected 0.30 ± 0.05",
        p.error_rate
    );
    assert_eq!(p.errors_by_class.get("http_5xx").copied(), Some(p.errors));
    assert_eq!(p.status_counts.get("503").copied(), Some(p.errors));
    assert_eq!(
        exp.status,
        ExperimentStatus::Failed,
        "the error_rate threshold must fail"
    );
    let check = exp
        .checks
        .iter()
        .find(|c| c.name.starts_with("error_rate"))
        .expect("error_rate check");
    assert!(!check.passed && check.observed.ends_with('%'), "{check:?}");
}

/// A fixture that freezes entirely for `pause` when request `at` arrives:
/// every request in flight or arriving during the pause waits until it ends
/// (a GC pause, a stop-the-world).
fn pausing_server(at: u64, pause: Duration) -> TestBed {
    let until: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    TestBed::scripted(move |n| {
        let now = Instant::now();
        let mut until = until.lock().expect("pause lock");
        if n == at {
            *until = Some(now + pause);
        }
        let delay = until.map_or(Duration::ZERO, |u| u.saturating_duration_since(now));
        Reply { status: 200, delay }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_stall_shows_in_the_open_model_p99_but_a_closed_loop_hides_it() {
    let open_bed = pausing_server(100, Duration::from_secs(1));
    let open = run_yaml(&experiment(
        &open_bed.url(),
        "  rate: 200\n  timeout: 5s",
        "  - { name: steady, duration: 4s }",
    ))
    .await;
    let open_p99 = phase(&open, "steady").latency_ms.expect("samples").p99;
    // ~200 of ~800 requests fall in the 1 s pause: p99 is close to the full second.
    assert!(
        open_p99 >= 700.0,
        "open-model p99 {open_p99:.1}ms must reflect the 1 s stall"
    );

    let closed_bed = pausing_server(100, Duration::from_secs(1));
    let closed = run_yaml(&experiment(
        &closed_bed.url(),
        "  concurrency: 1\n  timeout: 5s",
        "  - { name: steady, duration: 4s }",
    ))
    .await;
    let lat = phase(&closed, "steady").latency_ms.expect("samples");
    // One slow request among thousands: the naive closed loop reports a
    // healthy p99 although the server was frozen for a quarter of the run.
    assert!(
        lat.max >= 900.0,
        "the stall happened (max {:.1}ms)",
        lat.max
    );
    assert!(
        lat.p99 < 100.0,
        "closed-loop p99 {:.1}ms is expected to hide the stall",
        lat.p99
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_model_run_at_500_per_second_achieves_500_per_second() {
    let bed = TestBed::fixed_delay(Duration::ZERO);
    let exp = run_yaml(&experiment(
        &bed.url(),
        "  rate: 500\n  timeout: 2s",
        "  - { name: steady, duration: 4s }",
    ))
    .await;
    let p = phase(&exp, "steady");
    assert!(
        (p.rate - 500.0).abs() <= 25.0,
        "achieved {:.1}/s, expected 500 ± 5%",
        p.rate
    );
    assert_eq!(p.target_rate.map(|t| t.round()), Some(500.0));
    // Every request of the schedule is sent, the last ones (due just before
    // the end) included: nothing is reported unsent when the target keeps up.
    assert_eq!(p.requests + p.unsent, 2000, "500/s for 4 s");
    assert_eq!(
        p.unsent, 0,
        "a generator that keeps up leaves nothing unsent"
    );
    let rate_check = exp
        .checks
        .iter()
        .find(|c| c.name == "rate_achieved")
        .expect("rate_achieved check");
    assert!(rate_check.passed, "{rate_check:?}");
    assert_eq!(
        bed.requests(),
        p.requests,
        "the server saw every request we counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ramp_sends_the_area_under_its_rate_curve() {
    let bed = TestBed::fixed_delay(Duration::ZERO);
    let exp = run_yaml(&experiment(
        &bed.url(),
        "  rate: { from: 50, to: 250, over: 4s }\n  timeout: 2s",
        "  - { name: up, duration: 4s }",
    ))
    .await;
    // (50 + 250) / 2 · 4 s = 600 requests.
    let n = phase(&exp, "up").requests as f64;
    assert!((n - 600.0).abs() <= 30.0, "{n} requests, expected 600 ± 5%");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generator_that_cannot_keep_up_says_so() {
    // 2 in flight × 200 ms = at most 10/s, against 50/s asked.
    let bed = TestBed::fixed_delay(Duration::from_millis(200));
    let exp = run_yaml(&experiment(
        &bed.url(),
        "  rate: 50\n  max_in_flight: 2\n  timeout: 5s",
        "  - { name: steady, duration: 2s }",
    ))
    .await;
    let p = phase(&exp, "steady");
    assert!(
        p.late > 0 && p.unsent > 0,
        "late {} unsent {}",
        p.late,
        p.unsent
    );
    assert_eq!(
        p.requests + p.unsent,
        100,
        "every scheduled request is either measured or counted unsent"
    );
    let rate_check = exp
        .checks
        .iter()
        .find(|c| c.name == "rate_achieved")
        .expect("rate check");
    assert!(!rate_check.passed);
    assert_eq!(exp.status, ExperimentStatus::Failed);
    // Latency from the intended time includes the queueing.
    assert!(p.latency_ms.expect("samples").p50 > 300.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_responses_count_as_timeouts_and_closed_ports_as_connect_errors() {
    let bed = TestBed::fixed_delay(Duration::from_millis(500));
    let exp = run_yaml(&experiment(
        &bed.url(),
        "  rate: 20\n  timeout: 100ms",
        "  - { name: steady, duration: 1s }",
    ))
    .await;
    let p = phase(&exp, "steady");
    assert!(p.requests >= 15);
    assert_eq!(
        p.errors_by_class.get("timeout").copied(),
        Some(p.requests),
        "{:?}",
        p.errors_by_class
    );
    let lat = p.latency_ms.expect("samples");
    assert!(
        (lat.p50 - 100.0).abs() <= 20.0,
        "a timeout is measured at the timeout: {:.1}",
        lat.p50
    );

    // A port that is open at start (a `url` target must accept a connect
    // then) and closed 300 ms later: the rest of the requests are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let closer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(listener);
    });
    let exp = run_yaml(&experiment(
        &format!("http://127.0.0.1:{port}"),
        "  rate: 20\n  timeout: 1s",
        "  - { name: steady, duration: 1s }",
    ))
    .await;
    closer.join().expect("closer");
    let p = phase(&exp, "steady");
    let connect = p.errors_by_class.get("connect").copied().unwrap_or(0);
    assert!(
        connect >= p.requests.saturating_sub(10) && connect > 0,
        "{:?}",
        p.errors_by_class
    );
    assert_eq!(p.errors, p.requests, "{:?}", p.errors_by_class);
    // Nothing ever answered: the run is an error, not a set of checks.
    let error = exp.error.unwrap_or_default();
    assert!(error.contains("never there"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_runs_continuously_across_phases_and_each_phase_is_judged_on_its_own() {
    let bed = TestBed::scripted({
        let start = Instant::now();
        // Slow for the middle second only.
        move |_| {
            let t = start.elapsed();
            let slow = t >= Duration::from_millis(1100) && t < Duration::from_millis(2000);
            Reply {
                status: 200,
                delay: if slow {
                    Duration::from_millis(80)
                } else {
                    Duration::ZERO
                },
            }
        }
    });
    let exp = run_yaml(&experiment(
        &bed.url(),
        "  rate: 100\n  timeout: 2s",
        "  - { name: a, duration: 1s, expect: { p50: \"< 40ms\" } }\n  - { name: b, duration: 1s, expect: { p50: \"< 40ms\" } }\n  - { name: c, duration: 1s, expect: { p50: \"< 40ms\" } }",
    ))
    .await;
    let verdicts: Vec<(String, bool)> = exp
        .checks
        .iter()
        .filter(|c| c.kind == "threshold")
        .map(|c| (c.phase.clone().unwrap_or_default(), c.passed))
        .collect();
    assert_eq!(
        verdicts,
        vec![("a".into(), true), ("b".into(), false), ("c".into(), true)],
        "{:#?}",
        exp.checks
    );
    // One stream: the per-second series covers the whole run without gaps.
    assert_eq!(exp.series.len(), 3);
    assert!(
        exp.series.iter().all(|w| w.requests > 50),
        "{:?}",
        exp.series
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_target_is_started_waited_for_and_stopped() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let yaml = format!(
        "name: t\ntarget:\n  command: \"exec python3 -m http.server {port} --bind 127.0.0.1\"\n  url: \"http://127.0.0.1:{port}\"\n  ready: {{ path: /, timeout: 20s }}\nload:\n  rate: 20\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: p, duration: 1s, expect: {{ error_rate: \"< 1%\" }} }}\n"
    );
    let exp = run_yaml(&yaml).await;
    assert_eq!(exp.status, ExperimentStatus::Passed, "{exp:#?}");
    assert!(exp.phases[0].requests >= 15);
    // Stopped with the experiment: none of its processes is left.
    let left = crate::common::processes_with(&format!("http.server {port}"));
    assert!(
        left.is_empty(),
        "the target process outlived the experiment: {left:?}"
    );
}
