//! The JUnit XML report (`--junit FILE`), for CI test dashboards.
//!
//! One `<testsuite>` per experiment and one `<testcase>` per check, with
//! classname `<suite>.<experiment>.<phase>` so dashboards group checks by
//! experiment and phase. An experiment that errored, was aborted or skipped
//! gets one testcase saying so, and a failed rollback gets an `<error>`
//! testcase `rollback` in its experiment's suite.
//!
//! The XML is written by the `junit-report` crate. Version 0.8 has no
//! properties (per suite or per testcase), no `skipped` attribute on a suite
//! or message on `<skipped>`, and computes a suite's `time` as the sum of its
//! testcases (our checks of one phase share its duration). [`splice`] adds
//! those to the crate's output in one pass over it: every attribute value the
//! crate writes is escaped, so each tag ends at the first `>` outside a CDATA
//! section, and the testcases come out in the order they were added.

use crate::faults::FaultEvent;
use crate::journal::{Check, ExperimentReport, ExperimentStatus, RunReport};
use crate::report::console;
use junit_report::{Duration, OffsetDateTime, Report, TestCase, TestSuite};
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

/// The suite name when neither the experiment nor the run names one.
const DEFAULT_SUITE: &str = "faultline";
/// The phase part of the classname of testcases not tied to a phase.
const NO_PHASE: &str = "experiment";

/// Why the JUnit XML could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum JunitError {
    #[error("writing JUnit XML: {0}")]
    Xml(#[from] junit_report::Error),
    #[error("JUnit XML is not UTF-8: {0}")]
    Utf8(#[from] std::string::FromUtf8Error),
    /// The crate's output did not have the shape [`splice`] relies on
    /// (a different `junit-report` version): refuse rather than emit bad XML.
    #[error("unexpected JUnit XML layout from junit-report: {0}")]
    Layout(String),
}

/// Renders the run as JUnit XML.
pub fn render(report: &RunReport) -> Result<String, JunitError> {
    let suites = plan(report);
    let mut junit = Report::new();
    junit.add_testsuites(suites.iter().map(|s| s.suite.clone()));
    let mut xml = Vec::new();
    junit.write_xml(&mut xml)?;
    let root = root_attrs(report, &suites);
    splice(&String::from_utf8(xml)?, &root, &suites)
}

/// Writes the JUnit XML by [`super::output`]'s rules (atomic for a regular
/// file, creating parent folders; `-` is stdout).
pub fn write(report: &RunReport, path: &Path) -> std::io::Result<()> {
    let xml = render(report).map_err(std::io::Error::other)?;
    super::output::write(path, xml.as_bytes())
}

/// One `<testsuite>`: what the crate writes plus what [`splice`] adds.
struct SuitePlan {
    suite: TestSuite,
    time_s: f64,
    props: Vec<(&'static str, String)>,
    cases: Vec<CaseExtras>,
}

/// What [`splice`] adds to one `<testcase>`.
struct CaseExtras {
    props: Vec<(&'static str, String)>,
    /// The `message` of its `<skipped>`.
    skip_reason: Option<String>,
}

fn plan(report: &RunReport) -> Vec<SuitePlan> {
    // Cloned once: the console renders one experiment at a time from it.
    let mut run = report.clone();
    run.experiments.clear();
    let mut suites: Vec<SuitePlan> = report
        .experiments
        .iter()
        .map(|exp| plan_experiment(&run, exp))
        .collect();
    // A run-level rollback failure that no experiment owns still gets said.
    if report.rollback_failed && !report.experiments.iter().any(|e| e.rollback_failed) {
        let mut suite = TestSuite::new("rollback");
        suite.hostname = clean(&report.host.hostname);
        suite.timestamp = timestamp(&report.started_at, &report.started_at);
        let (case, extras) = rollback_case(&report.experiments, "run", &suite_name(report, None));
        suite.add_testcase(case);
        suites.push(SuitePlan {
            suite,
            time_s: 0.0,
            props: Vec::new(),
            cases: vec![extras],
        });
    }
    suites
}

/// `run` is the run without its experiments.
fn plan_experiment(run: &RunReport, exp: &ExperimentReport) -> SuitePlan {
    let suite_name = suite_name(run, Some(exp));
    let mut suite = TestSuite::new(&clean(&exp.name));
    suite.package = clean(&suite_name);
    suite.hostname = clean(&run.host.hostname);
    suite.timestamp = timestamp(&exp.started_at, &run.started_at);
    suite.set_system_out(&cdata_safe(&console_block(run, exp)));
    let mut cases = Vec::new();

    // The loudest line first.
    if exp.rollback_failed {
        let (case, extras) = rollback_case(std::slice::from_ref(exp), &exp.name, &suite_name);
        suite.add_testcase(case);
        cases.push(extras);
    }
    let outcome = match exp.status {
        ExperimentStatus::Error => Some(
            exp.error
                .clone()
                .unwrap_or_else(|| "the experiment could not run".into()),
        ),
        ExperimentStatus::Aborted => Some(format!(
            "aborted: {}",
            exp.error.as_deref().unwrap_or("stopped")
        )),
        _ => None,
    };
    let whole = classname(&suite_name, &exp.name, NO_PHASE);
    if let Some(message) = outcome {
        let kind = exp.status.as_str();
        let mut case = TestCase::error(
            &clean(&exp.name),
            secs(exp.duration_s),
            kind,
            &clean(&message),
        );
        case.set_classname(&whole);
        suite.add_testcase(case);
        cases.push(CaseExtras {
            props: vec![("kind", kind.to_string()), ("phase", NO_PHASE.to_string())],
            skip_reason: None,
        });
    }
    if exp.status == ExperimentStatus::Skipped {
        let mut case = TestCase::skipped(&clean(&exp.name));
        case.set_classname(&whole);
        suite.add_testcase(case);
        cases.push(CaseExtras {
            props: vec![
                ("kind", "skipped".to_string()),
                ("phase", NO_PHASE.to_string()),
            ],
            skip_reason: Some(exp.error.clone().unwrap_or_else(|| "skipped".into())),
        });
    }
    for check in &exp.checks {
        let phase_s = check
            .phase
            .as_deref()
            .and_then(|name| exp.phases.iter().find(|p| p.name == name))
            .map_or(0.0, |p| p.duration_s);
        suite.add_testcase(check_case(check, &suite_name, &exp.name, phase_s));
        cases.push(CaseExtras {
            props: check_props(check),
            skip_reason: None,
        });
    }

    let mut props = vec![
        ("status", exp.status.as_str().to_string()),
        ("target", exp.target.clone()),
        ("file", exp.file.clone()),
        ("tags", exp.tags.join(", ")),
        ("seed", run.seed.to_string()),
        ("run_id", run.run_id.clone()),
        ("faultline_version", run.faultline_version.clone()),
    ];
    if let Some(shard) = &run.shard {
        props.push(("shard", shard.clone()));
    }
    // A skipped experiment has no target yet: say nothing rather than "".
    props.retain(|(_, value)| !value.is_empty());
    SuitePlan {
        suite,
        time_s: exp.duration_s,
        props,
        cases,
    }
}

fn check_case(check: &Check, suite: &str, experiment: &str, phase_s: f64) -> TestCase {
    let name = clean(&check.name);
    let time = secs(phase_s);
    let mut case = if check.passed {
        TestCase::success(&name, time)
    } else {
        let mut case = TestCase::failure(
            &name,
            time,
            &clean(&check.kind),
            &clean(&failure_message(check)),
        );
        // The failure's body: what CI dashboards show under the message.
        case.set_system_out(&cdata_safe(&failure_details(check)));
        case
    };
    let phase = check.phase.as_deref().unwrap_or(NO_PHASE);
    case.set_classname(&classname(suite, experiment, phase));
    case
}

/// `expected < 100ms, observed 250.3ms; no data`.
pub fn failure_message(check: &Check) -> String {
    let mut msg = format!("expected {}, observed {}", check.expected, check.observed);
    if let Some(extra) = check.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = write!(msg, "; {extra}");
    }
    msg
}

fn failure_details(check: &Check) -> String {
    let mut out = String::new();
    for (key, value) in check_props(check) {
        if !value.is_empty() {
            let _ = writeln!(out, "{key}: {value}");
        }
    }
    if let Some(message) = &check.message {
        let _ = writeln!(out, "message: {message}");
    }
    out
}

/// The evidence of a check, as `<property>`s of its testcase.
fn check_props(check: &Check) -> Vec<(&'static str, String)> {
    vec![
        ("kind", check.kind.clone()),
        (
            "phase",
            check.phase.clone().unwrap_or_else(|| NO_PHASE.into()),
        ),
        ("expected", check.expected.clone()),
        ("observed", check.observed.clone()),
        ("samples", check.samples.to_string()),
        ("window", check.window.clone().unwrap_or_default()),
        ("faults", check.faults.join("; ")),
    ]
}

/// The `rollback` error testcase: which faults could not be removed.
fn rollback_case(
    exps: &[ExperimentReport],
    experiment: &str,
    suite: &str,
) -> (TestCase, CaseExtras) {
    let failed: Vec<&FaultEvent> = exps
        .iter()
        .flat_map(|e| &e.faults)
        .filter(|f| f.action == "remove" && !f.ok)
        .collect();
    let lines: Vec<String> = failed
        .iter()
        .map(|f| {
            let why = f.error.as_deref().unwrap_or("failed");
            format!("{} ({}): {why}", f.fault, f.phase)
        })
        .collect();
    let mut message = String::from(
        "ROLLBACK FAILED: a fault could not be removed; the system may be left degraded",
    );
    for line in &lines {
        let _ = write!(message, "; {line}");
    }
    let mut case = TestCase::error(
        "rollback",
        Duration::ZERO,
        "rollback_failed",
        &clean(&message),
    );
    case.set_classname(&classname(suite, experiment, NO_PHASE));
    let body = format!(
        "{}\n{}\n",
        message.split(';').next().unwrap_or_default(),
        lines.join("\n")
    );
    case.set_system_out(&cdata_safe(&body));
    let faults: Vec<&str> = failed.iter().map(|f| f.fault.as_str()).collect();
    let extras = CaseExtras {
        props: vec![
            ("kind", "rollback_failed".to_string()),
            ("phase", NO_PHASE.to_string()),
            ("faults", faults.join("; ")),
        ],
        skip_reason: None,
    };
    (case, extras)
}

fn suite_name(report: &RunReport, exp: Option<&ExperimentReport>) -> String {
    exp.and_then(|e| e.suite.clone())
        .or_else(|| report.suite.clone())
        .unwrap_or_else(|| DEFAULT_SUITE.into())
}

/// `<suite>.<experiment>.<phase>`, dots inside each part replaced so that
/// dashboards that split on dots see exactly three levels.
fn classname(suite: &str, experiment: &str, phase: &str) -> String {
    let part = |s: &str| {
        let s = clean(s).replace('.', "_");
        if s.is_empty() {
            "_".to_string()
        } else {
            s
        }
    };
    format!("{}.{}.{}", part(suite), part(experiment), part(phase))
}

/// The experiment's block of the console report (its header, phase table
/// and checks), so the XML shows what the CI log showed. `run` is the run
/// without its experiments.
fn console_block(run: &RunReport, exp: &ExperimentReport) -> String {
    let mut one = run.clone();
    one.experiments = vec![exp.clone()];
    one.rollback_failed = false;
    let text = console::render(&one, None);
    // Drop the run's summary line: it speaks for the whole run.
    let body = text
        .trim_end()
        .rsplit_once('\n')
        .map_or("", |(body, _)| body);
    body.trim_start_matches('\n').to_string() + "\n"
}

fn root_attrs(report: &RunReport, suites: &[SuitePlan]) -> String {
    let count = |f: fn(&TestSuite) -> usize| suites.iter().map(|s| f(&s.suite)).sum::<usize>();
    format!(
        " name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\"",
        escape(&suite_name(report, None)),
        count(TestSuite::tests),
        count(TestSuite::failures),
        count(TestSuite::errors),
        count(TestSuite::skipped),
        finite(report.duration_s),
    )
}

/// Adds to the crate's XML what it cannot express: attributes on
/// `<testsuites>`, the suite's own `time` and `skipped`, `<properties>` on
/// suites and testcases, and the reason of a `<skipped>`.
fn splice(xml: &str, root: &str, suites: &[SuitePlan]) -> Result<String, JunitError> {
    let layout = |what: &str| JunitError::Layout(what.to_string());
    let mut out = String::with_capacity(xml.len() * 2);
    let mut rest = xml;
    let mut suite: Option<&SuitePlan> = None;
    let (mut next_suite, mut next_case) = (0, 0);
    let mut case: Option<&CaseExtras> = None;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with("<![CDATA[") {
            let end = rest
                .find("]]>")
                .ok_or_else(|| layout("unterminated CDATA"))?
                + 3;
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let end = rest.find('>').ok_or_else(|| layout("unterminated tag"))? + 1;
        let tag = &rest[..end];
        rest = &rest[end..];
        let empty = tag.ends_with("/>");
        let head = tag.trim_end_matches('>').trim_end_matches('/');
        let name = head[1..]
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default();
        match name {
            "testsuites" => {
                out.push_str(head);
                out.push_str(root);
                out.push_str(if empty { "/>" } else { ">" });
            }
            "testsuite" => {
                let plan = suites
                    .get(next_suite)
                    .ok_or_else(|| layout("more testsuites than planned"))?;
                if suite.is_some_and(|s| next_case != s.cases.len()) {
                    return Err(layout("a testsuite has fewer testcases than planned"));
                }
                next_suite += 1;
                next_case = 0;
                suite = Some(plan);
                out.push_str(&set_attr(
                    head,
                    "time",
                    &format!("{:.3}", finite(plan.time_s)),
                )?);
                let _ = write!(out, " skipped=\"{}\">", plan.suite.skipped());
                push_properties(&mut out, &plan.props);
                if empty {
                    out.push_str("</testsuite>");
                }
            }
            "testcase" => {
                let extras = suite
                    .and_then(|s| s.cases.get(next_case))
                    .ok_or_else(|| layout("more testcases than planned"))?;
                next_case += 1;
                out.push_str(head);
                out.push('>');
                push_properties(&mut out, &extras.props);
                if empty {
                    out.push_str("</testcase>");
                } else {
                    case = Some(extras);
                }
            }
            "/testcase" => {
                case = None;
                out.push_str(tag);
            }
            "skipped" => match case.and_then(|c| c.skip_reason.as_deref()) {
                Some(reason) => {
                    let _ = write!(out, "<skipped message=\"{}\"", escape(reason));
                    out.push_str(if empty { "/>" } else { ">" });
                }
                None => out.push_str(tag),
            },
            _ => out.push_str(tag),
        }
    }
    out.push_str(rest);
    if next_suite != suites.len() || suite.is_some_and(|s| next_case != s.cases.len()) {
        return Err(layout("fewer testsuites or testcases than planned"));
    }
    Ok(out)
}

/// Replaces the value of attribute `key` in a start tag the crate wrote.
fn set_attr(head: &str, key: &str, value: &str) -> Result<String, JunitError> {
    let needle = format!(" {key}=\"");
    let at = head
        .find(&needle)
        .ok_or_else(|| JunitError::Layout(format!("no {key} attribute")))?
        + needle.len();
    let len = head[at..]
        .find('"')
        .ok_or_else(|| JunitError::Layout(format!("unterminated {key} attribute")))?;
    Ok(format!(
        "{}{}{}",
        &head[..at],
        escape(value),
        &head[at + len..]
    ))
}

fn push_properties(out: &mut String, props: &[(&str, String)]) {
    if props.is_empty() {
        return;
    }
    out.push_str("<properties>");
    for (name, value) in props {
        let _ = write!(
            out,
            "<property name=\"{}\" value=\"{}\"/>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</properties>");
}

/// Escapes an attribute value: the five XML specials, and line breaks and
/// tabs as character references so a parser does not fold them to spaces.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in clean(value).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces characters XML 1.0 cannot carry at all (even escaped) with U+FFFD.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Text the crate wraps in one CDATA section: a `]]>` inside would end it
/// early, so it is split across two sections (the parsed text is unchanged).
fn cdata_safe(s: &str) -> String {
    clean(s).replace("]]>", "]]]]><![CDATA[>")
}

fn finite(s: f64) -> f64 {
    if s.is_finite() && s > 0.0 {
        s
    } else {
        0.0
    }
}

fn secs(s: f64) -> Duration {
    // `seconds_f64` panics on overflow; no real phase lasts 30 years.
    Duration::seconds_f64(finite(s).min(1e9))
}

/// An RFC 3339 time from the journal; the run's start when the experiment's
/// is missing (a skipped experiment never started).
fn timestamp(at: &str, fallback: &str) -> OffsetDateTime {
    [at, fallback]
        .iter()
        .find_map(|s| humantime::parse_rfc3339_weak(s).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .into()
}

#[cfg(test)]
pub(crate) mod tests {
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
}
