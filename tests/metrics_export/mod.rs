//! Live metrics of a run, end to end: a real `faultline run` of a 10 s demo
//! experiment with a fault phase, watched by a real Prometheus, by scraping
//! `--metrics-listen` and by `--prometheus-remote-write` into its receiver;
//! the numbers Prometheus stored must agree with report.json. Also:
//! `promtool check metrics` on the exposition, the dashboard's metric
//! names, the guards of `/metrics`, a failing remote-write endpoint, and
//! `faultline proxy`'s `/metrics`.
//!
//! Each check is a function returning the disagreement, run once on the
//! real evidence (must pass) and once on deliberately wrong evidence (must
//! fail with the message that names the disagreement).

mod checks;
mod proxy;
mod remote_write;
mod scrape;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::probes::prometheus_server::PrometheusServer;

/// Every test here finishes within this, or fails.
const LIMIT: Duration = Duration::from_secs(120);
/// The experiment's name, the `experiment` label.
const EXPERIMENT: &str = "live-metrics";
/// The fault phase.
const FAULT_PHASE: &str = "payments-503";

/// Writes the 10 s demo experiment: 3 s baseline, 4 s of 503s from payments
/// for 40% of its calls, 3 s recovery.
fn experiment(dir: &Path) -> PathBuf {
    let path = dir.join("live.yaml");
    std::fs::write(
        &path,
        format!(
            "name: {EXPERIMENT}\n\
             target:\n  demo:\n    breaker: {{ consecutive_failures: 1000 }}\n\
             load:\n  rate: 50\n  timeout: 2s\n  requests:\n    - {{ name: checkout, path: /checkout }}\n\
             phases:\n\
             \x20 - name: baseline\n    duration: 3s\n\
             \x20 - name: {FAULT_PHASE}\n    duration: 4s\n    inject:\n\
             \x20     - {{ type: http_error, proxy: payments, status: 503, probability: 40%, match: {{ path: \"/pay*\" }} }}\n\
             \x20 - name: recovery\n    duration: 3s\n"
        ),
    )
    .expect("write the experiment");
    path
}

/// A child process killed and reaped on drop (a failed assertion must not
/// leave a faultline behind).
struct Running(Option<Child>);

impl Running {
    /// Waits for the exit within [`LIMIT`]; the exit code and stderr.
    async fn wait(mut self) -> (i32, String) {
        let mut child = self.0.take().expect("running");
        let start = Instant::now();
        let code = loop {
            if let Some(status) = child.try_wait().expect("poll the child") {
                break status.code().unwrap_or(-1);
            }
            if start.elapsed() > LIMIT {
                let _ = child.kill();
                let _ = child.wait();
                panic!("faultline did not exit within {LIMIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        (code, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `faultline run FILE --out DIR --quiet ARGS...`.
fn start_run(file: &Path, out: &Path, args: &[&str]) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .arg(file)
        .arg("--out")
        .arg(out)
        .args(["--quiet", "--seed", "7"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start faultline run");
    Running(Some(child))
}

fn read_report(out: &Path) -> Value {
    let text = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

/// A loopback port nothing listens on now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}

/// Prometheus' `/api/v1/query` answer's `data.result`.
async fn query(prometheus: &PrometheusServer, promql: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("{}/api/v1/query", prometheus.url()),
        &[("query", promql)],
    )
    .expect("query URL");
    let body: Value = reqwest::get(url)
        .await
        .expect("Prometheus answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(body["status"], "success", "query `{promql}` failed: {body}");
    body["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The metric names Prometheus stored.
async fn stored_names(prometheus: &PrometheusServer) -> Vec<String> {
    let url = format!("{}/api/v1/label/__name__/values", prometheus.url());
    let body: Value = reqwest::get(url)
        .await
        .expect("Prometheus answers")
        .json()
        .await
        .expect("JSON");
    body["data"]
        .as_array()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Everything the checks compare, read from Prometheus, for one experiment.
async fn evidence(prometheus: &PrometheusServer, selector: &str) -> checks::Stored {
    let by_phase =
        |metric: &str| format!("sum by (phase) (max_over_time({metric}{{{selector}}}[10m]))");
    let to_map = |result: Vec<Value>| {
        result
            .iter()
            .filter_map(|r| {
                let phase = r["metric"]["phase"].as_str()?.to_string();
                let value: f64 = r["value"][1].as_str()?.parse().ok()?;
                Some((phase, value))
            })
            .collect()
    };
    let requests = to_map(query(prometheus, &by_phase("faultline_requests_total")).await);
    let errors = to_map(query(prometheus, &by_phase("faultline_errors_total")).await);
    let raw = query(
        prometheus,
        &format!("faultline_fault_active{{{selector},phase=\"{FAULT_PHASE}\"}}[10m]"),
    )
    .await;
    let fault_samples = raw
        .first()
        .and_then(|series| series["values"].as_array())
        .map(|values| {
            values
                .iter()
                .filter_map(|v| {
                    let t = v[0].as_f64()?;
                    let value: f64 = v[1].as_str()?.parse().ok()?;
                    Some((t, value))
                })
                .collect()
        })
        .unwrap_or_default();
    checks::Stored {
        requests,
        errors,
        fault_samples,
    }
}

/// The README documents every metric of the catalogue, with its labels.
#[test]
fn the_readme_documents_every_metric_and_label() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("## Watching a game day")
        .nth(1)
        .expect("the README has a section \"Watching a game day\"");
    for desc in faultline::metrics::export::CATALOGUE {
        let row = section
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", desc.name)))
            .unwrap_or_else(|| panic!("no README row for {}", desc.name));
        for label in desc.labels {
            assert!(
                row.contains(&format!("`{label}`")),
                "{}: label {label} missing in {row}",
                desc.name
            );
        }
    }
    for flag in [
        "--metrics-listen",
        "--token-file",
        "--metrics-linger",
        "--prometheus-remote-write",
    ] {
        assert!(section.contains(flag), "flag {flag} not documented");
    }
}
