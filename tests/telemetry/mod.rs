//! Telemetry: the sampler measures real CPU and memory (the harness's own,
//! and a watched child's by role), and the reports show it only when a run
//! has it.

use faultline::journal::{self, RunReport};
use faultline::metrics::telemetry::{
    self, ProcessSample, TelemetrySample, Watched, WatchedProcess, STRESS_ROLE,
};
use faultline::report::{console, html};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Set in the child process that runs [`sampler_in_a_quiet_process`].
const CHILD_ENV: &str = "FAULTLINE_TELEMETRY_CHILD";

/// The harness CPU is the whole test process's, and the other tests of this
/// binary run in parallel: the measurement runs in a fresh copy of this
/// binary that runs that one test and nothing else.
#[test]
fn the_sampler_measures_a_busy_thread_and_a_watched_child() {
    let module = module_path!()
        .split_once("::")
        .map_or(module_path!(), |(_, m)| m);
    let name = format!("{module}::sampler_in_a_quiet_process");
    // /proc/self/exe, not current_exe(): it still runs this binary when a
    // concurrent build has replaced the file meanwhile.
    let out = Command::new("/proc/self/exe")
        .args([name.as_str(), "--exact", "--ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the measurement in a quiet process failed:\n{stdout}\n{stderr}"
    );
}

/// Run only by [`the_sampler_measures_a_busy_thread_and_a_watched_child`].
#[tokio::test]
#[ignore = "run in its own process by the_sampler_measures_a_busy_thread_and_a_watched_child"]
async fn sampler_in_a_quiet_process() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "run through the_sampler_measures_a_busy_thread_and_a_watched_child"
    );
    let mut spinner = Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let watched: Watched = Arc::new(Mutex::new(vec![WatchedProcess {
        role: STRESS_ROLE.into(),
        pid: spinner.id(),
    }]));
    let busy = Arc::new(AtomicBool::new(true));
    let half_busy = std::thread::spawn({
        let busy = busy.clone();
        move || {
            // Half a core: spin while this thread has had less CPU time
            // than half the wall time, so preemption by other work on the
            // host is made up for instead of counted as busy.
            let start = Instant::now();
            let ticks = cpu_ticks("thread-self");
            while busy.load(Ordering::Relaxed) {
                let used = (cpu_ticks("thread-self") - ticks) as f64 / CLOCK_TICKS;
                if used < 0.5 * start.elapsed().as_secs_f64() {
                    let until = Instant::now() + Duration::from_millis(2);
                    while Instant::now() < until {
                        std::hint::spin_loop();
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    });

    // Both have used CPU before the sampler starts, like a running target.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let stop = CancellationToken::new();
    let t0 = Instant::now();
    let sampler = telemetry::spawn(t0, watched.clone(), stop.clone(), None);
    let ticks_at_start = (cpu_ticks("self"), cpu_ticks(&spinner.id().to_string()));
    // A process that appears later is reported from its third refresh.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut late = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    watched.lock().expect("lock").push(WatchedProcess {
        role: "late".into(),
        pid: late.id(),
    });
    tokio::time::sleep_until((t0 + Duration::from_millis(3050)).into()).await;
    let ticks_at_end = (cpu_ticks("self"), cpu_ticks(&spinner.id().to_string()));
    tokio::time::sleep_until((t0 + Duration::from_millis(3200)).into()).await;
    busy.store(false, Ordering::Relaxed);
    // A process that exited is skipped (here a zombie: killed, not reaped).
    spinner.kill().expect("kill sh");
    tokio::time::sleep_until((t0 + Duration::from_millis(4200)).into()).await;
    stop.cancel();
    let samples = tokio::time::timeout(Duration::from_secs(5), sampler)
        .await
        .expect("the sampler stops when told")
        .expect("the sampler does not panic");
    half_busy.join().expect("spinner thread");
    let _ = spinner.wait();
    let _ = late.kill();
    let _ = late.wait();

    assert_eq!(samples.len(), 4, "one sample a second: {samples:#?}");
    for (i, s) in samples.iter().enumerate() {
        let want = (i + 1) as f64;
        assert!((s.t - want).abs() < 0.25, "sample {i} at {}s", s.t);
        assert!(s.mem_used_bytes > 0 && s.mem_available_bytes > 0, "{s:?}");
        assert!(s.mem_total_bytes >= s.mem_used_bytes, "{s:?}");
        assert!(s.harness_rss_bytes > 0, "{s:?}");
        assert!(!s.host_cpu_per_core.is_empty(), "{s:?}");
        assert!((0.0..=100.0).contains(&s.host_cpu), "{s:?}");
    }
    let busy_samples = &samples[..3];
    let harness = busy_samples.iter().map(|s| s.harness_cpu).sum::<f64>() / 3.0;
    let stress: Vec<f64> = busy_samples
        .iter()
        .map(|s| s.processes.get(STRESS_ROLE).map_or(0.0, |p| p.cpu))
        .collect();
    let stress_avg = stress.iter().sum::<f64>() / 3.0;
    // What the kernel says both used over the same 3 s: the sampler must
    // agree with it whatever else runs on the machine.
    let seconds = 3.05;
    let truth = |a: u64, b: u64| (b - a) as f64 / CLOCK_TICKS / seconds * 100.0;
    let (harness_truth, stress_truth) = (
        truth(ticks_at_start.0, ticks_at_end.0),
        truth(ticks_at_start.1, ticks_at_end.1),
    );
    assert!(
        (harness - harness_truth).abs() < 10.0 && (stress_avg - stress_truth).abs() < 15.0,
        "sampled harness {harness:.1}% and stress {stress:?} vs the kernel's \
         {harness_truth:.1}% and {stress_truth:.1}%: {busy_samples:#?}"
    );
    // The load itself: a half-busy thread and one spinning core. On a host
    // saturated by other work they cannot get that much CPU.
    let saturated = busy_samples.iter().all(|s| s.host_cpu > 95.0);
    if saturated {
        eprintln!(
            "host saturated: harness {harness:.1}%, stress {stress_avg:.1}%; \
             only the agreement with the kernel was checked"
        );
    } else {
        assert!(
            (40.0..=70.0).contains(&harness),
            "a thread busy half the time: harness CPU {harness:.1}% (want 40–70%): {busy_samples:#?}"
        );
        assert!(
            (80.0..=120.0).contains(&stress_avg),
            "a spinning child is one full core: {stress:?} (want 100% ± 20)"
        );
    }
    let late_seen: Vec<bool> = samples
        .iter()
        .map(|s| s.processes.contains_key("late"))
        .collect();
    assert_eq!(
        late_seen,
        [false, false, true, true],
        "a process watched from 0.3 s is reported from its third refresh (3 s)"
    );
    assert!(
        busy_samples
            .iter()
            .all(|s| s.processes[STRESS_ROLE].rss_bytes > 0),
        "{busy_samples:#?}"
    );
    assert!(
        !samples[3].processes.contains_key(STRESS_ROLE),
        "a killed child is skipped: {:#?}",
        samples[3]
    );
    // The phase summary reads the same series.
    let phase = telemetry::phase_summary(&samples, 0.0, 3.0).expect("a summary");
    assert_eq!(phase.samples, 3);
    assert!((phase.harness_cpu_avg - harness).abs() < 1e-9);
    assert!((phase.processes[STRESS_ROLE].cpu_avg - stress_avg).abs() < 1e-9);
}

/// The kernel's clock tick (`getconf CLK_TCK`), 100 on every Linux we run on.
const CLOCK_TICKS: f64 = 100.0;

/// utime + stime of a process (`self` or a pid) or of `thread-self`, in
/// clock ticks.
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name, which may hold spaces: state is the
    // first, utime the 12th and stime the 13th.
    let (_, rest) = stat.rsplit_once(')').expect("a stat line");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> u64 { fields[i].parse().expect("a tick count") };
    field(11) + field(12)
}

/// A run with one experiment of two phases; the second one stresses the CPU.
fn run_report() -> RunReport {
    let phase = |name: &str, start: f64, faults: &[&str]| {
        serde_json::json!({
            "name": name, "start": "2025-01-01T00:00:00.000Z", "start_offset_s": start,
            "duration_s": 2.0, "planned_duration_s": 2.0, "completed": true,
            "requests": 20, "errors": 0, "error_rate": 0.0, "errors_by_class": {},
            "status_counts": {"200": 20}, "rate": 10.0, "late": 0, "unsent": 0,
            "latency_ms": null, "service_time_ms": null, "faults": faults,
        })
    };
    let window = |t: u64| {
        serde_json::json!({"t": t, "requests": 10, "errors": 0, "error_rate": 0.0,
            "p50": 1.0, "p99": 2.0, "phase": "x"})
    };
    serde_json::from_value(serde_json::json!({
        "schema_version": 1, "faultline_version": "0", "status": "passed", "exit_code": 0,
        "rollback_failed": false, "seed": 1, "started_at": "2025-01-01T00:00:00.000Z",
        "finished_at": "2025-01-01T00:00:04.000Z", "duration_s": 4.0,
        "host": {"hostname": "h", "os": "linux", "arch": "x86_64", "cpus": 2},
        "files": ["x.yaml"],
        "experiments": [{
            "name": "cpu-hog", "tags": [], "file": "x.yaml", "status": "passed",
            "rollback_failed": false, "started_at": "2025-01-01T00:00:00.000Z",
            "duration_s": 4.0, "target": "url http://x",
            "load": {"model": "open", "rate": "10/s", "timeout_ms": 1000.0, "sent": 40, "unsent": 0},
            "phases": [phase("warm", 0.0, &[]), phase("hog", 2.0, &["cpu 80% on 1 core", "memory 256MiB"])],
            "checks": [], "faults": [],
            "series": [window(0), window(1), window(2), window(3)],
        }],
        "summary": {"experiments": 1, "passed": 1, "failed": 0, "error": 0, "aborted": 0,
            "checks": 0, "checks_failed": 0},
    }))
    .expect("a valid journal")
}

fn sample(t: f64, stress: Option<(f64, u64)>) -> TelemetrySample {
    TelemetrySample {
        t,
        host_cpu: 45.0,
        host_cpu_per_core: vec![80.0, 10.0],
        mem_used_bytes: 2 << 30,
        mem_available_bytes: 6 << 30,
        mem_total_bytes: 8 << 30,
        harness_cpu: 12.0,
        harness_rss_bytes: 40 << 20,
        processes: stress
            .map(|(cpu, rss_bytes)| {
                BTreeMap::from([(STRESS_ROLE.to_string(), ProcessSample { cpu, rss_bytes })])
            })
            .unwrap_or_default(),
    }
}

#[test]
fn reports_show_telemetry_only_when_the_run_has_it() {
    let plain = run_report();
    let plain_console = console::render(&plain, None);
    let plain_html = html::render(&plain).expect("render");
    assert_eq!(plain_html.matches("data-chart=").count(), 3);
    assert!(!plain_console.contains("requested"), "{plain_console}");
    let json = serde_json::to_string(&plain).expect("JSON");
    assert!(
        !json.contains("telemetry") && !json.contains("pressure"),
        "{json}"
    );

    let mut with = run_report();
    let samples = vec![
        sample(1.0, None),
        sample(2.0, None),
        sample(3.0, Some((78.0, 260 << 20))),
        sample(4.0, Some((78.8, 262 << 20))),
    ];
    journal::fill_phase(&mut with.experiments[0], samples.clone());
    let exp = &with.experiments[0];
    assert_eq!(exp.telemetry, samples);
    let [warm, hog] = exp.phases.as_slice() else {
        panic!("two phases")
    };
    assert_eq!(warm.telemetry.as_ref().map(|t| t.samples), Some(2));
    assert!(warm.pressure.is_empty(), "no resource fault in warm");
    assert_eq!(
        hog.pressure,
        vec![
            "cpu requested 80% on 1 core, measured 78.4%",
            "memory requested 256MiB, measured RSS 262MiB",
        ]
    );

    let text = console::render(&with, None);
    assert!(
        text.contains("  hog: cpu requested 80% on 1 core, measured 78.4%\n")
            && text.contains("  hog: memory requested 256MiB, measured RSS 262MiB\n"),
        "{text}"
    );
    // Apart from the pressure lines, the console is unchanged.
    let without_pressure: String = text
        .lines()
        .filter(|l| !l.contains("requested"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(without_pressure, plain_console);

    let page = html::render(&with).expect("render");
    assert_eq!(page.matches("data-chart=").count(), 5);
    for id in ["cpu", "memory"] {
        assert_eq!(
            page.matches(&format!("data-chart=\"{id}\"")).count(),
            1,
            "{id}"
        );
    }

    // The journal round-trips, and the page reads only the journal.
    let json = serde_json::to_string(&with).expect("JSON");
    let back: RunReport = serde_json::from_str(&json).expect("read back");
    assert_eq!(back.experiments[0].telemetry, samples);
    assert_eq!(html::render(&back).expect("render"), page);
}
