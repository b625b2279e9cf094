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
use junit_report::{Duration, Report, TestCase, TestSuite};
use std::fmt::Write as _;
use std::path::Path;

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
pub(super) struct SuitePlan {
    suite: TestSuite,
    time_s: f64,
    props: Vec<(&'static str, String)>,
    cases: Vec<CaseExtras>,
}

/// What [`splice`] adds to one `<testcase>`.
pub(super) struct CaseExtras {
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

#[cfg(test)]
pub(crate) mod tests;
mod xml;

pub use xml::escape;
use xml::{cdata_safe, clean, finite, secs, splice, timestamp};
