//! HAProxy (Debian's package) with a weighted canary, judged by faultline's
//! `canary` check against HAProxy's own `show stat` samples and log.
//!
//! Topology: faultline → HAProxy → { stable (nginx, v1) weight 90,
//! canary → hop → nginx v2, weight 10 }. The canary server has
//! `observe layer7 error-limit 3 on-error mark-down` and a health check
//! (`GET /health`, every 2 s, rise 1 fall 1) that re-admits it; the fault
//! answers 500 to `/checkout` only, so the check keeps passing. Healthy: a
//! rollback controller (`rollback_controller.py`) sets the canary's weight
//! to 0 through the Runtime API when its 5xx grow. Defect: no controller,
//! HAProxy only flaps (DOWN ~2 s, UP again, DOWN after 3 errors, ...).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::nginx::start_backends;
use super::{free_port, now_epoch, program, run_faultline, temp_dir, wait_listening, Daemon, RUNS};

/// One `show stat` sample of the canary server.
#[derive(Debug, Clone)]
struct Sample {
    t: f64,
    status: String,
    weight: u32,
}

pub(super) struct HaproxyBed {
    pub(super) dir: tempfile::TempDir,
    pub(super) fe_port: u16,
    pub(super) hop_port: u16,
    pub(super) v2_port: u16,
    _backends: Daemon,
    _haproxy: Daemon,
}

impl HaproxyBed {
    pub(super) fn start() -> HaproxyBed {
        let dir = temp_dir("faultline-real-haproxy-");
        let (fe_port, hop_port, v1_port, v2_port) =
            (free_port(), free_port(), free_port(), free_port());
        let backends = start_backends(dir.path(), &[(v1_port, "v1", "v1"), (v2_port, "v2", "v2")]);
        let d = dir.path().display();
        // The log line: accept time (Unix s.ms), server name, status; to stdout,
        // which the bed writes to haproxy.log. x-version is set by HAProxy
        // from the server that answered, so a 500 the hop made in the
        // canary's place is still the canary's.
        let conf = format!(
            "global\n  stats socket {d}/admin.sock mode 600 level admin\n  \
             log stdout format raw local0\n  maxconn 4096\n\
             defaults\n  mode http\n  log global\n  log-format \"%Ts.%ms %s %ST\"\n  \
             timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n\
             frontend fe\n  bind 127.0.0.1:{fe_port}\n  default_backend be\n\
             backend be\n  balance roundrobin\n  option httpchk GET /health\n  \
             http-response set-header x-version v2 if {{ srv_name canary }}\n  \
             http-response set-header x-version v1 if {{ srv_name stable }}\n  \
             server stable 127.0.0.1:{v1_port} weight 90 check inter 2s\n  \
             server canary 127.0.0.1:{hop_port} weight 10 observe layer7 error-limit 3 \
             on-error mark-down check inter 2s rise 1 fall 1\n"
        );
        let file = dir.path().join("haproxy.cfg");
        std::fs::write(&file, conf).expect("write the HAProxy config");
        let log = dir.path().join("haproxy.log");
        let mut haproxy = Daemon::spawn(
            "haproxy",
            Command::new(program("haproxy"))
                .arg("-db")
                .arg("-f")
                .arg(&file),
            &log,
        );
        wait_listening(&mut haproxy, &log, fe_port);
        HaproxyBed {
            dir,
            fe_port,
            hop_port,
            v2_port,
            _backends: backends,
            _haproxy: haproxy,
        }
    }

    pub(super) fn socket(&self) -> PathBuf {
        self.dir.path().join("admin.sock")
    }

    /// Canary responses HAProxy logged, by accept time: `(t, status)`.
    fn canary_log(&self) -> Vec<(f64, u16)> {
        let text = std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let t = fields.next()?.parse().ok()?;
                let server = fields.next()?;
                let status = fields.next()?.parse().ok()?;
                (server == "canary").then_some((t, status))
            })
            .collect()
    }
}

/// One Runtime API command on `socket`, its whole answer.
pub(super) fn runtime_api(socket: &Path, command: &str) -> String {
    // HAProxy may still be binding the socket just after its frontend
    // listens, or busy at the moment: retry the connect for up to 3 s.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut stream = loop {
        match UnixStream::connect(socket) {
            Ok(stream) => break stream,
            Err(e) if std::time::Instant::now() >= deadline => {
                panic!("connect to the Runtime API at {}: {e}", socket.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("set a read timeout");
    stream
        .write_all(format!("{command}\n").as_bytes())
        .expect("send a Runtime API command");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// The canary's status and weight from `show stat`.
fn sample(socket: &Path) -> Option<Sample> {
    let stat = runtime_api(socket, "show stat");
    let mut lines = stat.lines();
    let header: Vec<&str> = lines.next()?.trim_start_matches("# ").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (status, weight) = (col("status")?, col("weight")?);
    let row: Vec<&str> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f.len() > weight && f[0] == "be" && f[1] == "canary")?;
    Some(Sample {
        t: now_epoch(),
        status: row[status].to_string(),
        weight: row[weight].parse().ok()?,
    })
}

/// Samples `show stat` every 100 ms on a thread until the returned flag
/// is set (or 40 s pass).
fn sampler(socket: PathBuf) -> (Arc<AtomicBool>, std::thread::JoinHandle<Vec<Sample>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let handle = std::thread::spawn(move || {
        let mut samples = Vec::new();
        for _ in 0..400 {
            if flag.load(Ordering::SeqCst) {
                break;
            }
            samples.extend(sample(&socket));
            std::thread::sleep(Duration::from_millis(100));
        }
        samples
    });
    (stop, handle)
}

fn canary_yaml(bed: &HaproxyBed) -> String {
    format!(
        "name: haproxy-canary\n\
         target: {{ url: \"http://127.0.0.1:{fe}\" }}\n\
         proxies:\n  canary: {{ listen: \"127.0.0.1:{hop}\", upstream: \"127.0.0.1:{v2}\", mode: http }}\n\
         load: {{ rate: 100, timeout: 2s, requests: [ {{ path: /checkout }} ] }}\n\
         phases:\n  - {{ name: baseline, duration: 3s }}\n  \
         - name: canary-broken\n    duration: 7s\n    \
         inject: [ {{ type: http_error, proxy: canary, status: 500, match: {{ path: /checkout }} }} ]\n\
         verify:\n  - canary:\n      phase: canary-broken\n      canary_version: v2\n      \
         version_from: {{ header: x-version }}\n      rolled_back_within: 3s\n      \
         max_failed_requests: 50\n      stable_error_rate: 1%\n",
        fe = bed.fe_port,
        hop = bed.hop_port,
        v2 = bed.v2_port,
    )
}

/// What HAProxy itself says about the canary in the broken phase.
#[derive(Debug)]
struct Truth {
    /// Canary responses in the baseline (HAProxy's log): ~10%, so the log
    /// is read right.
    canary_before: usize,
    /// Canary responses in the phase's last 3 s (HAProxy's log).
    canary_late: usize,
    /// Weight in the last sample of the phase.
    final_weight: u32,
    /// DOWN → UP transitions of the canary within the phase.
    came_back_up: usize,
}

fn canary(with_controller: bool) {
    for run in 1..=RUNS {
        let bed = HaproxyBed::start();
        let (stop, samples) = sampler(bed.socket());
        let controller = with_controller.then(|| {
            let log = bed.dir.path().join("controller.log");
            Daemon::spawn(
                "rollback controller",
                Command::new("python3")
                    .arg(concat!(
                        env!("CARGO_MANIFEST_DIR"),
                        "/tests/real/rollback_controller.py"
                    ))
                    .arg(bed.socket())
                    .args(["be", "canary", "3", "30"]),
                &log,
            )
        });
        let report = run_faultline(bed.dir.path(), "canary", &canary_yaml(&bed));
        stop.store(true, Ordering::SeqCst);
        let samples = samples.join().expect("the sampler thread");
        drop(controller);
        let (start, end) = report.phase("canary-broken");
        let (baseline_start, _) = report.phase("baseline");
        let canary_log = bed.canary_log();
        let count = |from: f64, to: f64| {
            canary_log
                .iter()
                .filter(|(t, _)| *t >= from && *t < to)
                .count()
        };
        let in_phase: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.t >= start && s.t < end)
            .collect();
        let came_back_up = in_phase
            .windows(2)
            .filter(|w| w[0].status.starts_with("DOWN") && w[1].status.starts_with("UP"))
            .count();
        let truth = Truth {
            canary_before: count(baseline_start, start),
            canary_late: count(end - 3.0, end),
            final_weight: in_phase.last().map_or(u32::MAX, |s| s.weight),
            came_back_up,
        };
        let (passed, message, observed) = report.verdict("canary");
        let measured = &report.check("canary")["measured"];
        let outcome = report.check("canary")["outcome"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let seen = format!(
            "run {run}, controller={with_controller}: HAProxy {truth:?}; faultline: passed={passed} {message} | {observed} {measured}"
        );
        eprintln!("{seen}");
        assert!(
            truth.canary_before >= 15,
            "HAProxy's log lacks the canary's share: {seen}"
        );
        if with_controller {
            assert!(
                truth.final_weight == 0 && truth.canary_late == 0,
                "HAProxy did not roll back: {seen}"
            );
            assert!(passed, "faultline failed a rolled-back canary: {seen}");
            assert_eq!(outcome, "rolled_back", "{seen}");
        } else {
            assert!(
                truth.final_weight == 10 && truth.came_back_up >= 1,
                "HAProxy did not flap: {seen}"
            );
            assert!(!passed, "faultline passed a flapping canary: {seen}");
            assert!(message.contains("flapping"), "wrong reason: {seen}");
            assert_eq!(outcome, "flapping", "{seen}");
        }
    }
}

#[test]
fn haproxy_canary_rolled_back_through_the_runtime_api_passes() {
    canary(true);
}

#[test]
fn haproxy_canary_that_only_flaps_fails_as_flapping() {
    canary(false);
}
