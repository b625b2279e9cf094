//! `--prometheus-remote-write` into a real Prometheus that scrapes nothing
//! (`--web.enable-remote-write-receiver`), and into an endpoint that is down.

use super::checks;
use super::*;

/// Batches are a second apart.
const TOLERANCE: f64 = 1.25;

#[tokio::test]
async fn remote_write_alone_puts_the_run_in_prometheus() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = experiment(dir.path());
        let prometheus = PrometheusServer::launch(
            "global:\n  scrape_interval: 1m\n",
            &["--web.enable-remote-write-receiver"],
        )
        .await;
        let out = dir.path().join("out");
        let url = format!("{}/api/v1/write", prometheus.url());
        let (code, stderr) = start_run(&file, &out, &["--prometheus-remote-write", &url])
            .wait()
            .await;
        assert_eq!(code, 0, "the run passes; stderr:\n{stderr}");
        assert!(
            !stderr.contains("remote write"),
            "no remote-write trouble: {stderr}"
        );
        let report = read_report(&out);
        assert!(
            report["notes"].as_array().is_none_or(Vec::is_empty),
            "no note: every batch arrived: {}",
            report["notes"]
        );

        let stored = evidence(
            &prometheus,
            &format!("experiment=\"{EXPERIMENT}\",job=\"faultline\""),
        )
        .await;
        checks::totals_agree(&stored, &report, FAULT_PHASE)
            .unwrap_or_else(|e| panic!("{e}; Prometheus log:\n{}", prometheus.log()));
        let window = checks::fault_window(&report, FAULT_PHASE);
        checks::active_exactly_during(&stored.fault_samples, window, TOLERANCE)
            .unwrap_or_else(|e| panic!("{e}: {:?} {window:?}", stored.fault_samples));
        // One sample a second: the 10 s run is there second by second.
        assert!(
            stored.fault_samples.len() >= 9,
            "a sample a second: {:?}",
            stored.fault_samples
        );
        let wrong =
            checks::active_exactly_during(&stored.fault_samples, window.shifted(3.5), TOLERANCE)
                .expect_err("the recovery's window is not the fault's");
        assert!(wrong.contains("faultline_fault_active was"), "{wrong}");
    })
    .await
    .expect("the test finished in time");
}

#[tokio::test]
async fn a_failing_endpoint_is_reported_once_and_the_run_still_passes() {
    tokio::time::timeout(LIMIT, async {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("short.yaml");
        std::fs::write(
            &file,
            "name: short\ntarget:\n  demo: {}\nload:\n  rate: 20\n  requests:\n    - { path: /checkout }\n\
             phases:\n  - name: only\n    duration: 3s\n",
        )
        .expect("write the experiment");
        let out = dir.path().join("out");
        let url = format!("http://127.0.0.1:{}/api/v1/write", free_port());
        let (code, stderr) = start_run(&file, &out, &["--prometheus-remote-write", &url])
            .wait()
            .await;
        assert_eq!(code, 0, "a failing endpoint never fails the run: {stderr}");
        assert_eq!(
            stderr.matches("prometheus remote write is failing").count(),
            1,
            "reported once: {stderr}"
        );
        let report = read_report(&out);
        let notes = report["notes"].to_string();
        assert!(
            notes.contains(&format!("prometheus remote write to {url}: 0 of")),
            "the report says what was lost: {notes}"
        );
    })
    .await
    .expect("the test finished in time");
}
