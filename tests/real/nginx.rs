//! nginx (Debian's package) as a fail-over breaker and as a recovering
//! balancer, judged by faultline's `breaker` (`style: fail_over`) and
//! `recovery` checks against nginx's own access log.
//!
//! Topology: faultline → nginx balancer → { hop → backend A, backend B },
//! where the hop is the experiment's `proxies: hop` entry and both backends
//! are nginx `return 200` servers (they keep up at any rate these tests
//! drive). The balancer logs `$msec $upstream_addr $upstream_status
//! $status`: every attempt it made to each upstream, the ground truth.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    free_port, program, run_faultline, temp_dir, thorough, wait_listening, Daemon, Report, RUNS,
};

/// What the balancer's `upstream` block holds.
#[derive(Debug, Clone, Copy)]
enum Balancer {
    /// `server hop max_fails=N fail_timeout=T; server B;` with retries.
    Failover { max_fails: u32, fail_timeout_s: u32 },
    /// `server hop;` alone: nginx never ejects a lone server.
    Single,
    /// `server <closed port>;`: every request fails (a dead target).
    Dead,
}

/// Backends, balancer and their logs in one temp dir; every nginx is
/// stopped by pid on drop.
struct NginxBed {
    dir: tempfile::TempDir,
    lb_port: u16,
    hop_port: u16,
    backend_a: u16,
    _backends: Daemon,
    _balancer: Daemon,
}

/// Lines every nginx config here shares: one worker, temp paths and pid in
/// the bed's dir (the package's /var/lib/nginx is not ours).
pub(super) fn preamble(dir: &Path, name: &str) -> String {
    let d = dir.display();
    format!(
        "worker_processes 1;\npid {d}/{name}.pid;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;\n  \
         fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n"
    )
}

/// Starts `nginx -g 'daemon off;' -c <dir>/<name>.conf` and waits for `port`.
pub(super) fn start_nginx(dir: &Path, name: &str, conf: &str, port: u16) -> Daemon {
    let file = dir.join(format!("{name}.conf"));
    std::fs::write(&file, conf).expect("write the nginx config");
    let log = dir.join(format!("{name}.stderr"));
    let mut daemon = Daemon::spawn(
        &format!("nginx ({name})"),
        Command::new(program("nginx"))
            .args(["-g", "daemon off;", "-c"])
            .arg(&file)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join(format!("{name}.error.log"))),
        &log,
    );
    wait_listening(&mut daemon, &log, port);
    daemon
}

/// nginx `return 200` servers in one process, one per `(port, name,
/// version)`: `x-version: <version>` on every answer and an access log
/// `<dir>/<name>.log` of `$msec $status $uri`. nginx keeps up at any rate
/// these tests drive, and its listen backlog (4096) does not overflow.
pub(super) fn start_backends(dir: &Path, servers: &[(u16, &str, &str)]) -> Daemon {
    std::fs::create_dir_all(dir.join("tmp")).expect("create nginx's temp dir");
    let d = dir.display();
    let blocks: String = servers
        .iter()
        .map(|(port, name, version)| {
            format!(
                "  server {{ listen 127.0.0.1:{port} backlog=4096; access_log {d}/{name}.log be;\n    \
                 location / {{ add_header x-version {version} always; return 200 \"{name}\\n\"; }} }}\n"
            )
        })
        .collect();
    let conf = format!(
        "{}  access_log off;\n  log_format be '$msec $status $uri';\n{blocks}}}\n",
        preamble(dir, "backends")
    );
    start_nginx(dir, "backends", &conf, servers[0].0)
}

impl NginxBed {
    fn start(balancer: Balancer) -> NginxBed {
        let dir = temp_dir("faultline-real-nginx-");
        let (lb_port, hop_port, backend_a, backend_b) =
            (free_port(), free_port(), free_port(), free_port());
        let backends = start_backends(
            dir.path(),
            &[
                (backend_a, "backend-a", "v1"),
                (backend_b, "backend-b", "v1"),
            ],
        );
        let d = dir.path().display();
        let upstream = match balancer {
            Balancer::Failover {
                max_fails,
                fail_timeout_s,
            } => format!(
                "server 127.0.0.1:{hop_port} max_fails={max_fails} fail_timeout={fail_timeout_s}s;\n    \
                 server 127.0.0.1:{backend_b};"
            ),
            Balancer::Single => format!("server 127.0.0.1:{hop_port};"),
            Balancer::Dead => format!("server 127.0.0.1:{};", free_port()),
        };
        let lb = format!(
            "{}  log_format up '$msec $upstream_addr $upstream_status $status';\n  \
             upstream app {{\n    {upstream}\n    keepalive 32;\n  }}\n  \
             server {{ listen 127.0.0.1:{lb_port} backlog=4096; access_log {d}/balancer.log up;\n    \
             location / {{ proxy_pass http://app; proxy_http_version 1.1;\n      \
             proxy_set_header Connection \"\";\n      \
             proxy_next_upstream error timeout http_500 http_502 http_503; }} }}\n}}\n",
            preamble(dir.path(), "balancer"),
        );
        let balancer = start_nginx(dir.path(), "balancer", &lb, lb_port);
        NginxBed {
            dir,
            lb_port,
            hop_port,
            backend_a,
            _backends: backends,
            _balancer: balancer,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The balancer's access log so far.
    fn log(&self) -> Vec<Attempts> {
        parse_log(&self.path().join("balancer.log"))
    }

    fn hop(&self) -> String {
        format!("127.0.0.1:{}", self.hop_port)
    }
}

/// One line of the balancer's log: a client request and every upstream
/// attempt nginx made for it.
#[derive(Debug)]
struct Attempts {
    t: f64,
    /// `(upstream address, its status)`, in the order nginx tried them.
    tries: Vec<(String, String)>,
    status: u16,
}

/// `$msec $upstream_addr $upstream_status $status`, where the middle two
/// are lists (`a:1, b:2` and `502, 200`) when nginx retried.
fn parse_log(path: &PathBuf) -> Vec<Attempts> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let (t, rest) = line.split_once(' ')?;
            let (rest, status) = rest.rsplit_once(' ')?;
            let fields: Vec<&str> = rest.split(' ').collect();
            let half = fields.len() / 2;
            let addrs = fields[..half].iter().map(|a| a.trim_end_matches(','));
            let codes = fields[half..].iter().map(|s| s.trim_end_matches(','));
            Some(Attempts {
                t: t.parse().ok()?,
                tries: addrs
                    .zip(codes)
                    .map(|(a, s)| (a.into(), s.into()))
                    .collect(),
                status: status.parse().ok()?,
            })
        })
        .collect()
}

/// What nginx's log says about the hop during and after the fault.
#[derive(Debug)]
struct Truth {
    /// Attempts to the hop from 1 s into the fault (ejection done) to its end.
    while_ejected: usize,
    /// Seconds from the fault's end until the hop next answered 200.
    readmitted_after: Option<f64>,
    /// Client requests in the fault phase and how many got a 5xx.
    fault_requests: usize,
    fault_errors: usize,
}

fn truth(bed: &NginxBed, report: &Report, phase: &str) -> Truth {
    let (fault_start, fault_end) = report.phase(phase);
    let log = bed.log();
    let hop = bed.hop();
    let in_fault = || log.iter().filter(|l| l.t >= fault_start && l.t < fault_end);
    let while_ejected = in_fault()
        .filter(|l| l.t >= fault_start + 1.0)
        .flat_map(|l| &l.tries)
        .filter(|(addr, _)| *addr == hop)
        .count();
    let readmitted_after = log
        .iter()
        .filter(|l| l.t >= fault_end)
        .find(|l| l.tries.iter().any(|(a, s)| *a == hop && s == "200"))
        .map(|l| l.t - fault_end);
    Truth {
        while_ejected,
        readmitted_after,
        fault_requests: in_fault().count(),
        fault_errors: in_fault().filter(|l| l.status >= 500).count(),
    }
}

/// The fail-over experiment: 2 s baseline, 5 s with `fault` on the hop,
/// 4 s after, at 100 requests/s.
fn failover_yaml(bed: &NginxBed, mode: &str, fault: &str) -> String {
    format!(
        "name: nginx-failover\n\
         target: {{ url: \"http://127.0.0.1:{lb}\" }}\n\
         proxies:\n  hop: {{ listen: \"127.0.0.1:{hop}\", upstream: \"127.0.0.1:{a}\", mode: {mode} }}\n\
         load: {{ rate: 100, timeout: 2s, requests: [ {{ path: /checkout }} ] }}\n\
         phases:\n  - {{ name: baseline, duration: 2s }}\n  \
         - {{ name: backend-failing, duration: 5s, inject: [ {fault} ] }}\n  \
         - {{ name: after, duration: 4s }}\n\
         verify:\n  - breaker:\n      phase: backend-failing\n      dependency: hop\n      \
         style: fail_over\n      opens_within: 3s\n      probes: {{ max: 2, per: 1s }}\n      \
         closes_within: 4s\n      max_error_rate: 1%\n",
        lb = bed.lb_port,
        hop = bed.hop_port,
        a = bed.backend_a,
    )
}

const HTTP_500: &str = "{ type: http_error, proxy: hop, status: 500 }";

/// How a fail-over configuration must come out, in nginx's log and in
/// faultline's verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Ejects within the fault, probes rarely, re-admits after it.
    Healthy,
    /// `max_fails=0`: the hop keeps getting its share of every request.
    NeverEjects,
    /// `fail_timeout=60s`: ejected, but not re-admitted within the run.
    NeverReadmits,
}

/// Runs one fail-over configuration `RUNS` times, asserting nginx's log
/// first and faultline's verdict second.
fn failover(balancer: Balancer, expect: Expect, mode: &str, fault: &str) {
    for run in 1..=RUNS {
        let bed = NginxBed::start(balancer);
        let report = run_faultline(bed.path(), "failover", &failover_yaml(&bed, mode, fault));
        let truth = truth(&bed, &report, "backend-failing");
        let (passed, message, observed) = report.verdict("breaker");
        let seen = format!("run {run}, {balancer:?}, {mode} hop, {fault}: nginx {truth:?}; faultline: passed={passed} {message} | {observed}");
        eprintln!("{seen}");
        // The 4 s after ejection with fail_timeout=3s allow two probe rounds.
        match expect {
            Expect::Healthy | Expect::NeverReadmits => {
                assert!(
                    truth.while_ejected <= 4,
                    "nginx kept calling the hop: {seen}"
                );
            }
            Expect::NeverEjects => {
                assert!(
                    truth.while_ejected >= 100,
                    "nginx stopped calling the hop: {seen}"
                );
            }
        }
        // Retries on B keep clients healthy in every configuration.
        assert!(
            truth.fault_errors * 100 <= truth.fault_requests,
            "clients saw errors: {seen}"
        );
        match expect {
            Expect::Healthy => {
                let back = truth.readmitted_after.unwrap_or(f64::INFINITY);
                assert!(
                    back <= 4.0,
                    "nginx did not re-admit the hop in time: {seen}"
                );
                assert!(passed, "faultline failed a working fail-over: {seen}");
            }
            Expect::NeverEjects => {
                assert!(
                    !passed,
                    "faultline passed a balancer that never ejects: {seen}"
                );
                assert!(message.contains("call"), "wrong reason: {seen}");
            }
            Expect::NeverReadmits => {
                assert_eq!(truth.readmitted_after, None, "nginx re-admitted: {seen}");
                assert!(
                    !passed,
                    "faultline passed a balancer that never re-admits: {seen}"
                );
                assert!(message.contains("clos"), "wrong reason: {seen}");
            }
        }
    }
}

const HEALTHY: Balancer = Balancer::Failover {
    max_fails: 2,
    fail_timeout_s: 3,
};

#[test]
fn nginx_passive_health_checks_pass_as_a_fail_over_breaker() {
    failover(HEALTHY, Expect::Healthy, "http", HTTP_500);
}

#[test]
fn nginx_with_max_fails_0_fails_the_fail_over_breaker() {
    let never = Balancer::Failover {
        max_fails: 0,
        fail_timeout_s: 3,
    };
    failover(never, Expect::NeverEjects, "http", HTTP_500);
}

#[test]
fn nginx_that_never_readmits_fails_closes_within() {
    let slow = Balancer::Failover {
        max_fails: 2,
        fail_timeout_s: 60,
    };
    failover(slow, Expect::NeverReadmits, "http", HTTP_500);
}

/// The bigger matrix: both hop modes × every fault that breaks a backend.
/// Every cell runs (a failing one does not hide the rest); the test fails
/// listing every cell whose log or verdict was wrong.
fn matrix(balancer: Balancer, expect: Expect) {
    if !thorough() {
        eprintln!("skipped: set FAULTLINE_REAL=thorough for the TCP/HTTP × fault matrix");
        return;
    }
    let faults = [
        ("tcp", "{ type: reset_peer, proxy: hop, timeout: 0s }"),
        ("tcp", "{ type: down, proxy: hop }"),
        ("http", "{ type: reset_peer, proxy: hop, timeout: 0s }"),
        ("http", HTTP_500),
        ("http", "{ type: down, proxy: hop }"),
    ];
    let wrong: Vec<String> = faults
        .iter()
        .filter_map(|(mode, fault)| {
            std::panic::catch_unwind(|| failover(balancer, expect, mode, fault))
                .err()
                .map(|_| format!("{mode} hop, {fault}"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "wrong for {balancer:?} in: {wrong:?} (details above)"
    );
}

#[test]
fn thorough_fail_over_matrix_healthy_nginx() {
    matrix(HEALTHY, Expect::Healthy);
}

#[test]
fn thorough_fail_over_matrix_nginx_with_max_fails_0() {
    let never = Balancer::Failover {
        max_fails: 0,
        fail_timeout_s: 3,
    };
    matrix(never, Expect::NeverEjects);
}

/// Recovery: 3 s baseline, 3 s of `fault`, 5 s after.
fn recovery_yaml(bed: &NginxBed, fault: &str) -> String {
    format!(
        "name: nginx-recovery\n\
         target: {{ url: \"http://127.0.0.1:{lb}\" }}\n\
         proxies:\n  hop: {{ listen: \"127.0.0.1:{hop}\", upstream: \"127.0.0.1:{a}\", mode: http }}\n\
         load: {{ rate: 100, timeout: 2s, requests: [ {{ path: /checkout }} ] }}\n\
         phases:\n  - {{ name: baseline, duration: 3s }}\n  \
         - {{ name: backend-failing, duration: 3s, inject: [ {fault} ] }}\n  \
         - {{ name: after, duration: 5s }}\n\
         verify:\n  - recovery:\n      baseline: baseline\n      after: backend-failing\n      \
         within: 4s\n      windows: 2\n      tolerance: {{ p99: 20ms, error_rate: 1% }}\n      \
         metrics: [error_rate, p99]\n",
        lb = bed.lb_port,
        hop = bed.hop_port,
        a = bed.backend_a,
    )
}

/// Share of 5xx answers nginx logged in `[from, to)`, and how many answers.
fn error_share(bed: &NginxBed, from: f64, to: f64) -> (f64, usize) {
    let log = bed.log();
    let window: Vec<_> = log.iter().filter(|l| l.t >= from && l.t < to).collect();
    let errors = window.iter().filter(|l| l.status >= 500).count();
    (errors as f64 / window.len().max(1) as f64, window.len())
}

#[test]
fn nginx_recovers_after_its_backend_does() {
    for run in 1..=RUNS {
        let bed = NginxBed::start(Balancer::Single);
        let report = run_faultline(bed.path(), "recovery", &recovery_yaml(&bed, HTTP_500));
        let (passed, message, observed) = report.verdict("recovery");
        let (fault_start, fault_end) = report.phase("backend-failing");
        let (_, end) = report.phase("after");
        let during = error_share(&bed, fault_start + 0.2, fault_end);
        let last = error_share(&bed, end - 3.0, end);
        let seen = format!("run {run}: nginx 5xx share during {during:?}, last 3 s {last:?}; faultline: passed={passed} {message} | {observed}");
        eprintln!("{seen}");
        assert!(
            during.0 > 0.9 && last.0 == 0.0 && last.1 >= 200,
            "nginx log: {seen}"
        );
        assert!(passed, "faultline failed a recovered nginx: {seen}");
    }
}

#[test]
fn nginx_in_front_of_a_dead_target_never_recovers() {
    for run in 1..=RUNS {
        let bed = NginxBed::start(Balancer::Dead);
        let report = run_faultline(bed.path(), "recovery", &recovery_yaml(&bed, HTTP_500));
        let (passed, message, observed) = report.verdict("recovery");
        let (start, _) = report.phase("baseline");
        let (_, end) = report.phase("after");
        let all = error_share(&bed, start, end);
        let seen = format!(
            "run {run}: nginx 5xx share over the run {all:?}; faultline: passed={passed} {message} | {observed}"
        );
        eprintln!("{seen}");
        assert!(all.0 == 1.0 && all.1 >= 900, "nginx log: {seen}");
        assert!(!passed, "faultline passed a dead target: {seen}");
    }
}
