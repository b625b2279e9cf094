//! A real Prometheus scrapes `faultline run --metrics-listen` every second.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::checks::{self, Window};
use super::*;

/// Scrapes are a second apart; a sample may be a little late on a busy machine.
const TOLERANCE: f64 = 1.25;

#[tokio::test]
async fn a_real_prometheus_scrapes_a_run_and_agrees_with_its_report() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = experiment(dir.path());
        let port = free_port();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: faultline\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        );
        let prometheus = PrometheusServer::launch(&config, &[]).await;
        let out = dir.path().join("out");
        let listen = format!("127.0.0.1:{port}");
        let run = start_run(
            &file,
            &out,
            &["--metrics-listen", &listen, "--metrics-linger", "10s"],
        );
        // Mid-fault: the exposition as Prometheus reads it, for promtool.
        tokio::time::sleep(Duration::from_secs(5)).await;
        let exposition = reqwest::get(format!("http://{listen}/metrics"))
            .await
            .expect("/metrics answers during the run")
            .text()
            .await
            .expect("text");
        let (code, stderr) = run.wait().await;
        assert_eq!(code, 0, "the run passes; stderr:\n{stderr}");
        assert!(
            stderr.contains(&format!("metrics on http://{listen}/metrics")),
            "the address is printed: {stderr}"
        );
        let report = read_report(&out);

        let (ok, lint) = promtool(&exposition);
        assert!(ok && lint.trim().is_empty(), "promtool check metrics: {lint}\n{exposition}");

        let stored = evidence(&prometheus, &format!("experiment=\"{EXPERIMENT}\",job=\"faultline\"")).await;
        checks::totals_agree(&stored, &report, FAULT_PHASE)
            .unwrap_or_else(|e| panic!("{e}; Prometheus log:\n{}", prometheus.log()));
        let window = checks::fault_window(&report, FAULT_PHASE);
        checks::active_exactly_during(&stored.fault_samples, window, TOLERANCE)
            .unwrap_or_else(|e| panic!("{e}: {:?} {window:?}", stored.fault_samples));

        // The checks fail, for the right reason, on wrong evidence.
        let mut more = report.clone();
        let requests = &mut more["experiments"][0]["phases"][1]["requests"];
        *requests = serde_json::json!(requests.as_u64().unwrap_or(0) + 1);
        let wrong = checks::totals_agree(&stored, &more, FAULT_PHASE).expect_err("one request off");
        assert!(wrong.contains(&format!("phase {FAULT_PHASE}: Prometheus has")), "{wrong}");
        let early: Window = window.shifted(-3.0);
        let wrong = checks::active_exactly_during(&stored.fault_samples, early, TOLERANCE)
            .expect_err("the baseline's window is not the fault's");
        assert!(wrong.contains("outside the fault's window"), "{wrong}");

        // Every metric the dashboard queries is one this run exposed.
        let dashboard: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/examples/grafana/faultline-dashboard.json"
            ))
            .expect("the dashboard is in examples/grafana"),
        )
        .expect("the dashboard is JSON");
        let used = checks::dashboard_names(&dashboard);
        assert!(used.len() >= 8, "the dashboard queries faultline metrics: {used:?}");
        let names = stored_names(&prometheus).await;
        checks::all_stored(&used, &names).unwrap_or_else(|e| panic!("{e}"));
        let wrong = checks::all_stored(&["faultline_made_up_total".to_string()], &names)
            .expect_err("a name the run never exposed");
        assert!(wrong.contains("faultline_made_up_total"), "{wrong}");
    })
    .await
    .expect("the test finished in time");
}

/// `promtool check metrics` on `text`: success, and what it printed.
pub(super) fn promtool(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed with Debian's prometheus package");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool ran");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn promtool_catches_what_it_is_used_to_check() {
    let (ok, lint) = promtool("# HELP faultline_requests Requests.\n# TYPE faultline_requests counter\nfaultline_requests 1\n");
    assert!(!ok, "a counter without _total is refused");
    assert!(lint.contains("_total"), "{lint}");
}

#[tokio::test]
async fn metrics_are_guarded_like_the_other_apis() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().expect("temp dir");
        // A public address without a token: refused before anything runs.
        let out = dir.path().join("out");
        let file = experiment(dir.path());
        let (code, stderr) = start_run(&file, &out, &["--metrics-listen", "0.0.0.0:0"])
            .wait()
            .await;
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("is not a loopback address") && stderr.contains("--token-file"),
            "{stderr}"
        );
        let (code, stderr) = start_run(&file, &out, &["--prometheus-remote-write", "ftp://x/y"])
            .wait()
            .await;
        assert_eq!(code, 2, "{stderr}");
        assert!(
            stderr.contains("expected an http:// or https:// URL"),
            "{stderr}"
        );

        // With a token: 401 without it, 403 for a browser, 200 with it.
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret\n").expect("write the token");
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let run = start_run(
            &file,
            &out,
            &[
                "--metrics-listen",
                &listen,
                "--token-file",
                token.to_str().expect("utf-8"),
                "--metrics-linger",
                "0s",
            ],
        );
        let url = format!("http://{listen}/metrics");
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let unauthorized = loop {
            match client.get(&url).send().await {
                Ok(r) => break r,
                Err(e) => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "/metrics never answered: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert_eq!(unauthorized.status(), 401);
        let browser = client
            .get(&url)
            .header("User-Agent", "Mozilla/5.0")
            .bearer_auth("s3cret")
            .send()
            .await
            .expect("answers");
        assert_eq!(browser.status(), 403);
        let ok = client
            .get(&url)
            .bearer_auth("s3cret")
            .send()
            .await
            .expect("answers");
        assert_eq!(ok.status(), 200);
        assert!(ok
            .text()
            .await
            .expect("text")
            .contains("faultline_build_info"));
        let elsewhere = client
            .get(format!("http://{listen}/"))
            .bearer_auth("s3cret")
            .send()
            .await
            .expect("answers");
        assert_eq!(elsewhere.status(), 404);
        drop(run);
    })
    .await
    .expect("the test finished in time");
}
