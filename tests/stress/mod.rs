//! CPU and memory stress in real child processes (`faultline stress ...`):
//! the load is what was asked for, the memory is resident, and the child is
//! gone after `remove`, after its parent is killed, and never before.

use faultline::faults::stress::child::{per_thread_load, EXIT_INVALID, EXIT_PARENT_GONE};
use faultline::faults::stress::{cgroup_cpu_limit, StressFault, BIN_ENV, PARENT_ENV};
use faultline::faults::{Fault, FaultError};
use faultline::metrics::telemetry::{Watched, WatchedProcess};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Every test spawns the real binary; the value is the same in every test,
/// so tests running in parallel do not conflict.
fn use_built_binary() {
    std::env::set_var(BIN_ENV, env!("CARGO_BIN_EXE_faultline"));
}

async fn within<T>(limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {limit:?}"))
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold
/// spaces): `[0]` is the state, `[11]` utime, `[12]` stime.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(')')?;
    Some(rest.split_whitespace().map(String::from).collect())
}

/// Running, as opposed to gone or a zombie nobody has reaped yet (a killed
/// orphan is re-parented to an init that may never reap it in a container).
fn is_alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|f| !matches!(f[0].as_str(), "Z" | "X"))
}

/// CPU seconds the process has used. `/proc` counts in USER_HZ, which the
/// kernel ABI fixes at 100 whatever the kernel's own tick rate.
fn cpu_seconds(pid: u32) -> f64 {
    let fields = stat_fields(pid).expect("the stress child is running");
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn evidence_pid(evidence: &serde_json::Value) -> u32 {
    evidence["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_else(|| panic!("evidence without a pid: {evidence}"))
}

async fn wait_until_gone(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !is_alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    !is_alive(pid)
}

#[tokio::test]
async fn half_a_core_of_cpu_measures_half_a_core() {
    use_built_binary();
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(Duration::from_secs(30), "the cpu test", async {
        let watched: Watched = Arc::new(Mutex::new(Vec::new()));
        let mut fault = StressFault::cpu(0.5, Some(1), Some(watched.clone()));
        assert_eq!(fault.describe(), "cpu 50% on 1 core");
        let evidence = fault.apply().await.expect("apply");
        let pid = evidence_pid(&evidence);
        assert_eq!(evidence["load"], 0.5);
        assert_eq!(evidence["cores"], 1);
        assert_eq!(
            evidence["cgroup_cpu_limit"],
            serde_json::json!(cgroup_cpu_limit())
        );
        assert_eq!(
            *watched.lock().expect("lock"),
            vec![WatchedProcess {
                role: "stress".into(),
                pid
            }]
        );

        // Let the first periods pass, then measure 3 s.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (cpu0, t0) = (cpu_seconds(pid), Instant::now());
        tokio::time::sleep(Duration::from_secs(3)).await;
        let used = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
        let expected = per_thread_load(0.5, 1, cgroup_cpu_limit());
        assert!(
            (used - expected).abs() <= 0.15,
            "measured {:.0}% of a core, expected {:.0}% ± 15",
            used * 100.0,
            expected * 100.0
        );

        let removed = fault.remove().await.expect("remove");
        assert_eq!(removed["exited_before_remove"], false);
        assert!(!is_alive(pid), "the child outlived remove");
        assert!(watched.lock().expect("lock").is_empty());
    })
    .await;
}

#[tokio::test]
async fn memory_is_resident_and_released_by_remove() {
    use_built_binary();
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(Duration::from_secs(30), "the memory test", async {
        const BYTES: u64 = 256 << 20;
        let mut fault = StressFault::memory(BYTES, Duration::ZERO, None);
        assert_eq!(fault.describe(), "memory 256MiB");
        let evidence = fault.apply().await.expect("apply");
        let pid = evidence_pid(&evidence);
        assert_eq!(evidence["bytes"], BYTES);

        let start = Instant::now();
        let mut rss = rss_bytes(pid);
        while rss < BYTES && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            rss = rss_bytes(pid);
        }
        assert!(
            rss >= BYTES,
            "RSS {} MiB after {:?}",
            rss >> 20,
            start.elapsed()
        );

        fault.remove().await.expect("remove");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still exists"
        );
        assert!(
            kill(Pid::from_raw(pid as i32), None).is_err(),
            "pid {pid} still signalable"
        );
    })
    .await;
}

#[tokio::test]
async fn memory_ramps_up_instead_of_arriving_at_once() {
    use_built_binary();
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(Duration::from_secs(30), "the ramp test", async {
        const BYTES: u64 = 256 << 20;
        let mut fault = StressFault::memory(BYTES, Duration::from_secs(2), None);
        assert_eq!(fault.describe(), "memory 256MiB (ramp 2s)");
        let pid = evidence_pid(&fault.apply().await.expect("apply"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let early = rss_bytes(pid);
        assert!(
            early < BYTES * 3 / 4,
            "{} MiB after 0.5 s of a 2 s ramp",
            early >> 20
        );
        let start = Instant::now();
        while rss_bytes(pid) < BYTES && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(rss_bytes(pid) >= BYTES, "the ramp never reached 256 MiB");
        fault.remove().await.expect("remove");
    })
    .await;
}

#[tokio::test]
async fn the_child_dies_within_a_second_of_its_parent() {
    use_built_binary();
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(Duration::from_secs(30), "the parent-death test", async {
        // A shell stands in for a harness: it starts the stress child the
        // way the fault does, then is SIGKILLed, which no cleanup survives.
        let script = format!(
            r#"{PARENT_ENV}=$$ "$0" stress cpu --load 0.1 --cores 1 & echo "pid $!"; wait"#
        );
        let mut parent = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(env!("CARGO_BIN_EXE_faultline"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn sh");
        let mut lines = BufReader::new(parent.stdout.take().expect("stdout")).lines();
        let (mut pid, mut ready) = (None, false);
        while pid.is_none() || !ready {
            let line = lines
                .next_line()
                .await
                .expect("read")
                .expect("the child said ready");
            match line.strip_prefix("pid ") {
                Some(p) => pid = Some(p.trim().parse::<u32>().expect("a pid")),
                None => ready |= line == "ready",
            }
        }
        let pid = pid.expect("pid");
        assert!(is_alive(pid));

        parent.start_kill().expect("SIGKILL the parent");
        parent.wait().await.expect("the parent is reaped");
        let gone = wait_until_gone(pid, Duration::from_secs(1)).await;
        if !gone {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        assert!(
            gone,
            "stress child {pid} outlived its parent by more than 1 s"
        );
    })
    .await;
}

#[tokio::test]
async fn a_child_whose_parent_is_already_gone_exits_at_once() {
    within(Duration::from_secs(10), "the orphan test", async {
        // The child sees a parent other than the one it was told of: the
        // parent died between fork and PR_SET_PDEATHSIG.
        let status = tokio::process::Command::new(env!("CARGO_BIN_EXE_faultline"))
            .args(["stress", "cpu", "--load", "1", "--cores", "1"])
            .env(PARENT_ENV, "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .status()
            .await
            .expect("run");
        assert_eq!(status.code(), Some(i32::from(EXIT_PARENT_GONE)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_child_outlives_the_thread_that_applied_it() {
    use_built_binary();
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(Duration::from_secs(30), "the applying-thread test", async {
        // PR_SET_PDEATHSIG fires when the forking *thread* ends; a fault
        // applied from a short-lived thread must not die with that thread.
        let handle = tokio::runtime::Handle::current();
        let (fault, pid) = tokio::task::spawn_blocking(move || {
            std::thread::spawn(move || {
                let mut fault = StressFault::cpu(0.1, Some(1), None);
                let evidence = handle.block_on(fault.apply()).expect("apply");
                (fault, evidence_pid(&evidence))
            })
            .join()
            .expect("the applying thread")
        })
        .await
        .expect("join");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            is_alive(pid),
            "the child died with the thread that applied it"
        );
        let mut fault = fault;
        fault.remove().await.expect("remove");
        assert!(!is_alive(pid));
    })
    .await;
}

#[tokio::test]
async fn dropping_an_applied_fault_kills_its_child() {
    use_built_binary();
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(Duration::from_secs(30), "the drop test", async {
        let mut fault = StressFault::cpu(0.1, Some(1), None);
        let pid = evidence_pid(&fault.apply().await.expect("apply"));
        drop(fault);
        assert!(
            wait_until_gone(pid, Duration::from_secs(2)).await,
            "child {pid} outlived its fault"
        );
    })
    .await;
}

#[tokio::test]
async fn a_child_that_refuses_its_arguments_fails_apply_with_its_reason() {
    use_built_binary();
    let _turn = crate::common::CPU_HEAVY.lock().await;
    within(
        Duration::from_secs(30),
        "the refused-arguments test",
        async {
            let watched: Watched = Arc::new(Mutex::new(Vec::new()));
            let mut fault = StressFault::cpu(1.5, Some(1), Some(watched.clone()));
            let err = fault.apply().await.expect_err("load 1.5 is refused");
            let FaultError::CommandFailed { status, stderr, .. } = &err else {
                panic!("unexpected error: {err}");
            };
            assert!(status.contains(&EXIT_INVALID.to_string()), "{status}");
            assert!(stderr.contains("--load 1.5 is outside 0..=1"), "{stderr}");
            assert!(watched.lock().expect("lock").is_empty());
            assert_eq!(
                fault.remove().await.expect("remove after a failed apply"),
                serde_json::Value::Null
            );
        },
    )
    .await;
}
