//! The HTML report (`--html`, default `<out>/report.html`): one
//! self-contained page, with inline CSS and the charts as inline SVG, that
//! opens in any browser without a network.
//!
//! [`view`] turns the journal into a page model, [`charts`] draws the
//! per-second series with plotters, and `report.html.j2` lays the page out
//! with minijinja, HTML auto-escaping on.

mod charts;
mod view;

pub use charts::ChartError;

use crate::journal::RunReport;
use minijinja::{context, AutoEscape, Environment};
use std::path::Path;

const TEMPLATE_NAME: &str = "report.html.j2";
const TEMPLATE: &str = include_str!("report.html.j2");

/// Why the HTML report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// A chart of one experiment could not be drawn.
    #[error("chart of experiment `{experiment}`: {source}")]
    Chart {
        experiment: String,
        #[source]
        source: charts::ChartError,
    },
    /// The template failed: a bug in `report.html.j2`.
    #[error("HTML template: {0}")]
    Template(#[from] minijinja::Error),
}

/// Renders the whole report as one HTML document.
pub fn render(report: &RunReport) -> Result<String, HtmlError> {
    let page = view::page(report)
        .map_err(|(experiment, source)| HtmlError::Chart { experiment, source })?;
    let mut env = Environment::new();
    // Whatever the template is called, every interpolation is escaped.
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template(TEMPLATE_NAME, TEMPLATE)?;
    let marker_colors = context! {
        apply => charts::LineColor(charts::APPLY_COLOR).css(),
        remove => charts::LineColor(charts::REMOVE_COLOR).css(),
    };
    let html = env
        .get_template(TEMPLATE_NAME)?
        .render(context! { page, marker_colors })?;
    Ok(html)
}

/// Renders and writes the report by [`crate::report::output`]'s rules
/// (atomic for a regular file, creating the parent directories, so a reader
/// never sees half a page).
pub fn write(report: &RunReport, path: &Path) -> std::io::Result<()> {
    let html = render(report).map_err(std::io::Error::other)?;
    crate::report::output::write(path, html.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const HOSTILE: &str = "<script>alert(1)</script> & \"quoted\" 'single'";

    /// A report from JSON, so these fixtures keep compiling when the
    /// journal gains fields (new fields are `#[serde(default)]`).
    fn report(experiments: Vec<Value>, rollback_failed: bool) -> RunReport {
        serde_json::from_value(json!({
            "schema_version": 1,
            "faultline_version": "0.1.0",
            "status": if rollback_failed { "rollback_failed" } else { "failed" },
            "exit_code": if rollback_failed { 5 } else { 1 },
            "rollback_failed": rollback_failed,
            "seed": 42,
            "started_at": "2024-05-01T10:00:00Z",
            "finished_at": "2024-05-01T10:00:09Z",
            "duration_s": 9.2,
            "host": { "hostname": HOSTILE, "os": "linux", "arch": "x86_64", "cpus": 2 },
            "files": [HOSTILE],
            "experiments": experiments,
            "summary": { "experiments": 1, "passed": 0, "failed": 1, "error": 0, "aborted": 0,
                         "checks": 1, "checks_failed": 1 }
        }))
        .expect("fixture matches the journal")
    }

    fn window(t: u64, requests: u64, errors: u64, p: Option<f64>, phase: &str) -> Value {
        json!({ "t": t, "requests": requests, "errors": errors,
                "error_rate": crate::metrics::error_rate(errors, requests),
                "p50": p.map(|v| v / 2.0), "p99": p, "phase": phase })
    }

    fn experiment(name: &str, phase: &str, series: Vec<Value>, fault_ok: bool) -> Value {
        json!({
            "name": name, "description": HOSTILE, "tags": [HOSTILE], "file": HOSTILE,
            "status": "failed", "error": HOSTILE, "rollback_failed": !fault_ok,
            "started_at": "2024-05-01T10:00:00Z", "duration_s": 4.0, "target": HOSTILE,
            "load": { "model": "open", "rate": "20/s", "timeout_ms": 1000.0, "sent": 40, "unsent": 0 },
            "phases": [
                { "name": phase, "start": "2024-05-01T10:00:00Z", "start_offset_s": 0.0,
                  "duration_s": 2.0, "planned_duration_s": 2.0, "completed": true,
                  "requests": 40, "errors": 4, "error_rate": 0.1,
                  "errors_by_class": { HOSTILE: 3, "timeout": 1 }, "status_counts": {},
                  "rate": 20.0, "target_rate": 20.0, "late": 0, "unsent": 0,
                  "latency_ms": { "p50": 1.0, "p90": 2.0, "p95": 2.5, "p99": 3.0,
                                  "p999": 4.0, "max": 5.0, "mean": 1.2 },
                  "service_time_ms": null, "faults": [HOSTILE] },
                { "name": "after", "start": "2024-05-01T10:00:02Z", "start_offset_s": 2.0,
                  "duration_s": 1.0, "planned_duration_s": 2.0, "completed": false,
                  "requests": 0, "errors": 0, "error_rate": 0.0,
                  "errors_by_class": {}, "status_counts": {},
                  "rate": 0.0, "late": 0, "unsent": 0,
                  "latency_ms": null, "service_time_ms": null, "faults": [] }
            ],
            "checks": [ { "name": HOSTILE, "kind": "threshold", "phase": phase, "passed": false,
                          "expected": HOSTILE, "observed": HOSTILE, "samples": 40,
                          "message": HOSTILE } ],
            "faults": [
                { "phase": phase, "fault": HOSTILE, "kind": HOSTILE, "action": "apply",
                  "at_s": 0.0, "ok": true },
                { "phase": phase, "fault": HOSTILE, "kind": HOSTILE, "action": "remove",
                  "at_s": 2.0, "ok": fault_ok, "error": if fault_ok { None } else { Some(HOSTILE) } }
            ],
            "series": series
        })
    }

    fn ran(name: &str) -> Value {
        experiment(
            name,
            HOSTILE,
            vec![
                window(0, 20, 2, Some(3.0), HOSTILE),
                window(1, 20, 2, None, HOSTILE),
                window(2, 0, 0, None, "after"),
            ],
            true,
        )
    }

    fn render_ok(report: &RunReport) -> String {
        render(report).unwrap_or_else(|e| panic!("render: {e}"))
    }

    fn charts_in(html: &str) -> usize {
        html.matches("data-chart=").count()
    }

    #[test]
    fn hostile_strings_appear_only_escaped() {
        let html = render_ok(&report(vec![ran(HOSTILE)], true));
        assert!(
            !html.to_lowercase().contains("<script"),
            "raw markup leaked"
        );
        assert!(!html.contains("\"quoted\""), "raw double quotes leaked");
        // Text the template escaped (minijinja also escapes `/`)...
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;quoted&quot; &#x27;single&#x27;"));
        // ...and phase names and fault kinds inside the SVG, escaped by plotters.
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(charts_in(&html), 3);
    }

    #[test]
    fn an_experiment_without_series_has_no_charts_but_says_why() {
        let html = render_ok(&report(
            vec![experiment("no-load", "p", vec![], true)],
            false,
        ));
        assert_eq!(charts_in(&html), 0);
        assert!(html.contains("No load ran in this experiment"));
        assert!(html.contains(">Checks</h3>"));
    }

    #[test]
    fn all_null_latency_and_zero_requests_still_chart() {
        let series = (0..4).map(|t| window(t, 0, 0, None, "p")).collect();
        let html = render_ok(&report(vec![experiment("idle", "p", series, true)], false));
        assert_eq!(charts_in(&html), 3);
        assert!(
            html.contains(">\nno samples\n</text>"),
            "latency chart says so"
        );
        assert!(
            html.contains("<td class=\"num\">–</td>"),
            "null latency shown as a dash"
        );
    }

    #[test]
    fn very_long_names_render_in_full_in_the_tables_and_cut_in_the_charts() {
        let long = "checkout-".repeat(60);
        let exp = experiment(&long, &long, vec![window(0, 10, 0, Some(2.0), &long)], true);
        let html = render_ok(&report(vec![exp], false));
        assert!(html.contains(&format!("<span class=\"name\">{long}</span>")));
        assert!(html.contains("…\n</text>"), "band label shortened");
    }

    #[test]
    fn a_failed_rollback_is_the_first_thing_on_the_page() {
        let html = render_ok(&report(vec![experiment("x", "p", vec![], false)], true));
        let banner = html.find("class=\"rollback-banner\"").expect("banner");
        let header = html.find("<header").expect("header");
        assert!(banner < header);
        assert!(html.contains("ROLLBACK FAILED in this experiment"));
        let quiet = render_ok(&report(vec![experiment("x", "p", vec![], true)], false));
        assert!(!quiet.contains("class=\"rollback-banner\""));
    }

    #[test]
    fn the_page_references_nothing_outside_itself() {
        let html = render_ok(&report(vec![ran("a"), ran("b")], false));
        assert!(!html.contains("src="));
        assert!(!html.contains("url("));
        assert!(!html.contains("@import"));
        for (i, _) in html.match_indices("href=\"") {
            assert!(html[i + 6..].starts_with('#'), "external href at {i}");
        }
        assert_eq!(charts_in(&html), 6);
    }

    #[test]
    fn write_creates_the_directories_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a/b/report.html");
        write(&report(vec![ran("a")], false), &path).expect("write");
        let html = std::fs::read_to_string(&path).expect("read back");
        assert!(html.starts_with("<!DOCTYPE html>"));
        let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("report.html")]);
    }
}
