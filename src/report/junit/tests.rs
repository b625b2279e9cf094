//! The JUnit renderer: suites, cases, properties and escaping; [`sample`]
//! is shared with the Markdown renderer's tests.

use super::*;
use serde_json::json;

/// A name that tries every way out of an attribute, a text node and a CDATA section.
pub(crate) const HOSTILE: &str = "<script>alert(\"x\")</script> & 'q' ]]> a|b";

/// A run with a passed and a failed check, a skipped and an errored
/// experiment, built from JSON so that it reads like a real journal.
pub(crate) fn sample() -> RunReport {
    let phase = |name: &str, duration: f64| {
        json!({
            "name": name, "start": "2026-11-22T14:30:00.000Z", "start_offset_s": 0.0,
            "duration_s": duration, "planned_duration_s": duration, "completed": true,
            "requests": 400, "errors": 4, "error_rate": 0.01,
            "errors_by_class": { "http_5xx": 4 }, "status_counts": { "200": 396, "503": 4 },
            "rate": 40.0, "target_rate": 40.0, "late": 0, "unsent": 0,
            "latency_ms": { "p50": 2.4, "p90": 3.1, "p95": 3.4, "p99": 250.3, "p999": 260.0, "max": 270.0, "mean": 5.0 },
            "service_time_ms": null, "faults": []
        })
    };
    let exp = |name: &str, status: &str| {
        json!({
            "name": name, "tags": ["demo"], "file": "e.yaml", "status": status,
            "rollback_failed": false, "started_at": "2026-11-22T14:30:00.000Z",
            "duration_s": 12.5, "target": "url http://127.0.0.1:1",
            "load": { "model": "open", "rate": "40/s", "timeout_ms": 1000.0, "sent": 400, "unsent": 0 },
            "phases": [], "checks": [], "faults": [], "series": []
        })
    };
    let mut passed = exp("checkout", "passed");
    passed["phases"] = json!([phase("steady", 10.0)]);
    passed["checks"] = json!([{ "name": "p50 < 100ms", "kind": "threshold", "phase": "steady",
        "passed": true, "expected": "< 100ms", "observed": "2.4ms", "samples": 400 }]);
    let mut failed = exp("latency.fault", "failed");
    failed["phases"] = json!([phase("baseline", 5.0), phase("fault.1", 7.5)]);
    failed["checks"] = json!([
        { "name": "p99 < 100ms", "kind": "threshold", "phase": "fault.1", "passed": false,
          "expected": "< 100ms", "observed": "250.3ms", "samples": 300,
          "message": "over by 150.3ms", "window": "5.0s–12.5s", "faults": ["latency 200ms", "jitter 20ms"] },
        { "name": "rate_achieved", "kind": "rate_achieved", "phase": "baseline", "passed": true,
          "expected": ">= 38/s", "observed": "40.0/s", "samples": 200 }
    ]);
    let mut skipped = exp("skipped-one", "skipped");
    skipped["error"] = json!("filtered out by --skip-tag slow");
    skipped["started_at"] = json!("");
    let mut errored = exp(HOSTILE, "error");
    errored["error"] = json!("target never ready: GET /health & 503 <html>");
    serde_json::from_value(json!({
        "schema_version": 1, "faultline_version": "0.1.0", "status": "failed", "exit_code": 4,
        "rollback_failed": false, "seed": 7, "run_id": "abcd1234", "suite": "nightly.v2",
        "started_at": "2026-11-22T14:30:00.000Z", "finished_at": "2026-11-22T14:30:30.000Z",
        "duration_s": 30.0, "host": { "hostname": "ci-1", "os": "linux", "arch": "x86_64", "cpus": 2 },
        "files": ["suites/demo.yaml"],
        "experiments": [passed, failed, skipped, errored],
        "summary": { "experiments": 4, "passed": 1, "failed": 1, "error": 1, "aborted": 0,
                     "skipped": 1, "checks": 3, "checks_failed": 1 }
    }))
    .expect("the sample is a valid journal")
}

/// The XML with every CDATA section removed: what is left must be
/// markup and escaped text only.
fn without_cdata(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(at) = rest.find("<![CDATA[") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("]]>").expect("CDATA closes") + at + 3;
        rest = &rest[end..];
    }
    out + rest
}

/// The start tag of the testcase named `name` (escaped) and what follows, up to its end.
fn testcase<'a>(xml: &'a str, name: &str) -> &'a str {
    let at = xml
        .find(&format!("<testcase name=\"{name}\""))
        .unwrap_or_else(|| panic!("testcase {name} in {xml}"));
    let end = xml[at..].find("</testcase>").expect("testcase closes") + at;
    &xml[at..end]
}

#[test]
fn hostile_names_are_escaped_in_attributes_and_cdata_is_split() {
    let xml = render(&sample()).expect("renders");
    let escaped =
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;q&apos; ]]&gt; a|b";
    assert!(
        xml.contains(&format!("<testsuite id=\"3\" name=\"{escaped}\"")),
        "{xml}"
    );
    // The console block in system-out carries the raw name; its `]]>` is split.
    assert!(xml.contains("]]]]><![CDATA[>"), "{xml}");
    let markup = without_cdata(&xml);
    assert!(!markup.contains("<script"), "{markup}");
    assert!(!markup.contains("]]>"), "{markup}");
    for (i, _) in markup.match_indices('&') {
        let entity = &markup[i..markup[i..].find(';').map_or(markup.len(), |e| i + e + 1)];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#10;", "&#13;", "&#9;"]
                .contains(&entity),
            "bare & at {i}: {entity}"
        );
    }
}

#[test]
fn a_failed_check_says_expected_and_observed_with_its_kind() {
    let report = sample();
    assert_eq!(
        failure_message(&report.experiments[1].checks[0]),
        "expected < 100ms, observed 250.3ms; over by 150.3ms"
    );
    let xml = render(&report).expect("renders");
    let case = testcase(&xml, "p99 &lt; 100ms");
    assert!(
        case.contains("classname=\"nightly_v2.latency_fault.fault_1\""),
        "{case}"
    );
    assert!(
        case.contains("time=\"7.5\""),
        "the phase's duration: {case}"
    );
    assert!(
        case.contains("<failure type=\"threshold\" message=\"expected &lt; 100ms, observed 250.3ms; over by 150.3ms\">"),
        "{case}"
    );
    for prop in [
        "<property name=\"observed\" value=\"250.3ms\"/>",
        "<property name=\"expected\" value=\"&lt; 100ms\"/>",
        "<property name=\"samples\" value=\"300\"/>",
        "<property name=\"phase\" value=\"fault.1\"/>",
        "<property name=\"window\" value=\"5.0s–12.5s\"/>",
        "<property name=\"faults\" value=\"latency 200ms; jitter 20ms\"/>",
        "<property name=\"kind\" value=\"threshold\"/>",
    ] {
        assert!(case.contains(prop), "{prop} in {case}");
    }
    // Properties come first in the testcase, before the failure.
    assert!(case.find("<properties>") < case.find("<failure"), "{case}");
}

#[test]
fn suites_have_their_own_time_and_skipped_count_and_the_root_totals() {
    let xml = render(&sample()).expect("renders");
    assert!(
        xml.contains("<testsuites name=\"nightly.v2\" tests=\"5\" failures=\"1\" errors=\"1\" skipped=\"1\" time=\"30.000\">"),
        "{xml}"
    );
    // Two checks of 5s and 7.5s would sum to 12.5 too: the experiment's duration is 12.5s,
    // so the first suite (one check of a 10s phase) shows the difference.
    assert!(
        xml.contains("name=\"checkout\" package=\"nightly.v2\""),
        "{xml}"
    );
    let first = &xml[xml.find("<testsuite ").expect("a suite")..];
    let start = &first[..first.find('>').expect("tag ends")];
    assert!(start.contains("time=\"12.500\" skipped=\"0\""), "{start}");
    assert!(start.contains("hostname=\"ci-1\""), "{start}");
    assert!(
        start.contains("timestamp=\"2026-11-22T14:30:00Z\""),
        "{start}"
    );
}

#[test]
fn skipped_and_errored_experiments_get_one_testcase_saying_why() {
    let xml = render(&sample()).expect("renders");
    let skipped = testcase(&xml, "skipped-one");
    assert!(
        skipped.contains("<skipped message=\"filtered out by --skip-tag slow\"/>"),
        "{skipped}"
    );
    assert!(
        skipped.contains("classname=\"nightly_v2.skipped-one.experiment\""),
        "{skipped}"
    );
    let errored = &xml[xml.find("<testsuite id=\"3\"").expect("fourth suite")..];
    assert!(
        errored.contains(
            "<error type=\"error\" message=\"target never ready: GET /health &amp; 503 &lt;html&gt;\"/>"
        ),
        "{errored}"
    );
}

#[test]
fn a_failed_rollback_is_an_error_testcase_first_in_its_suite() {
    let mut report = sample();
    report.rollback_failed = true;
    let exp = &mut report.experiments[1];
    exp.rollback_failed = true;
    exp.faults = serde_json::from_value(json!([
        { "phase": "fault.1", "fault": "command `stop redis`", "kind": "command", "action": "apply", "at_s": 5.0, "ok": true },
        { "phase": "fault.1", "fault": "command `stop redis`", "kind": "command", "action": "remove", "at_s": 12.5,
          "ok": false, "error": "exit code 1" }
    ]))
    .expect("fault events");
    let xml = render(&report).expect("renders");
    let suite = &xml[xml.find("<testsuite id=\"1\"").expect("second suite")..];
    let first_case = &suite[suite.find("<testcase ").expect("a testcase")..];
    assert!(
        first_case.starts_with("<testcase name=\"rollback\""),
        "{first_case}"
    );
    assert!(
        first_case.contains("<error type=\"rollback_failed\" message=\"ROLLBACK FAILED: a fault could not be removed; the system may be left degraded; command `stop redis` (fault.1): exit code 1\">"),
        "{first_case}"
    );
    assert!(
        xml.contains("errors=\"2\""),
        "the root counts the rollback: {xml}"
    );
}

#[test]
fn a_run_level_rollback_failure_without_an_owner_still_gets_a_suite() {
    let mut report = sample();
    report.rollback_failed = true;
    let xml = render(&report).expect("renders");
    assert!(
        xml.contains("<testsuite id=\"4\" name=\"rollback\""),
        "{xml}"
    );
    assert!(testcase(&xml, "rollback").contains("<error type=\"rollback_failed\""));
}

#[test]
fn line_breaks_and_control_characters_survive_or_are_replaced() {
    assert_eq!(escape("a\nb\tc\u{1}d"), "a&#10;b&#9;c\u{FFFD}d");
    assert_eq!(cdata_safe("x]]>y\u{0}"), "x]]]]><![CDATA[>y\u{FFFD}");
    assert_eq!(classname("", "a.b", "p99.9"), "_.a_b.p99_9");
}

#[test]
fn a_run_without_experiments_is_an_empty_testsuites() {
    let mut report = sample();
    report.experiments.clear();
    let xml = render(&report).expect("renders");
    assert!(xml.ends_with("<testsuites name=\"nightly.v2\" tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\" time=\"30.000\"/>"), "{xml}");
}

#[test]
fn write_creates_folders_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reports/nested/junit.xml");
    write(&sample(), &path).expect("written");
    let xml = std::fs::read_to_string(&path).expect("readable");
    assert!(xml.starts_with("<?xml"), "{xml}");
    let names: Vec<_> = std::fs::read_dir(path.parent().expect("parent"))
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("junit.xml")]);
}
