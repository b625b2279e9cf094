//! The JUnit XML and Markdown reports of a real run, read back by external
//! consumers (Python's `junitparser`, `xmllint`), and the CI examples
//! checked against the real command line.

use crate::common::TestBed;
use faultline::config;
use faultline::journal::{ExperimentStatus, RunReport};
use faultline::report::{junit, markdown};
use faultline::runner::{self, NoProgress, Planned, RunSettings, StopSignals};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

/// A hung run fails instead of hanging CI.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// The failing experiment's threshold: a 5ms server cannot answer in 1ms.
const FAILING_CHECK: &str = "p50 < 1ms";

/// An experiment name that tries to escape every XML context.
const HOSTILE: &str = "db <down> & \"out\" 'x' ]]> a.b";

/// An experiment in YAML: 40 requests/s at `url`, a warm-up and a judged phase.
fn experiment(name: &str, target: &str, expect: &str) -> String {
    format!(
        "name: '{}'\ntags: [nightly]\ntarget: {target}\nload:\n  rate: 40\n  timeout: 2s\n  requests:\n    - {{ path: / }}\n\
         phases:\n  - {{ name: warm, duration: 500ms }}\n  - {{ name: steady, duration: 1s, expect: {expect} }}\n",
        name.replace('\'', "''")
    )
}

/// A real run through the library against a 5ms loopback server: one
/// experiment passes, one fails its threshold, one is skipped by a filter
/// and one errors (its target never becomes ready).
fn real_run() -> RunReport {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = rt.block_on(async {
        let bed = TestBed::fixed_delay(Duration::from_millis(5));
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port");
        let up = format!("{{ url: \"{}\" }}", bed.url());
        let down = format!(
            "{{ url: \"http://{closed}\", ready: {{ path: /health, timeout: 300ms, interval: 50ms }} }}"
        );
        let passing = "{ p99: \"< 2s\", error_rate: \"< 50%\" }";
        let failing = format!("{{ p50: \"{}\" }}", &FAILING_CHECK[4..]);
        let mut plan = Vec::new();
        for (name, target, expect, skip) in [
            ("fast-enough", &up, passing, None),
            ("too-strict", &up, failing.as_str(), None),
            ("not-tonight", &up, passing, Some("filtered out: --skip-tag slow")),
            (HOSTILE, &down, passing, None),
        ] {
            let yaml = experiment(name, target, expect);
            let doc = config::load_str(&yaml, Path::new("inline.yaml"))
                .unwrap_or_else(|e| panic!("test YAML is invalid:\n{e}\n{yaml}"));
            plan.extend(doc.experiments.into_iter().map(|experiment| Planned {
                experiment,
                skip: skip.map(String::from),
            }));
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let settings = RunSettings {
            seed: 7,
            out_dir: dir.path().to_path_buf(),
            files: vec!["inline.yaml".into()],
            fail_fast: false,
            live: None,
        };
        let report = tokio::time::timeout(
            TEST_LIMIT,
            runner::run(&plan, &settings, &StopSignals::new(), Arc::new(NoProgress)),
        )
        .await
        .expect("the run finished within the test limit");
        bed.stop().await;
        report
    });
    let statuses: Vec<ExperimentStatus> = report.experiments.iter().map(|e| e.status).collect();
    assert_eq!(
        statuses,
        [
            ExperimentStatus::Passed,
            ExperimentStatus::Failed,
            ExperimentStatus::Skipped,
            ExperimentStatus::Error
        ],
        "{report:#?}"
    );
    report
}

/// Makes sure Python's `junitparser` can be imported, installing it with pip if needed.
fn ensure_junitparser() {
    let importable = || {
        Command::new("python3")
            .args(["-c", "import junitparser"])
            .output()
            .map(|o| o.status.success())
    };
    match importable() {
        Ok(true) => return,
        Ok(false) => {}
        Err(e) => panic!("python3 is needed to read the JUnit XML back with junitparser: {e}"),
    }
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "junitparser"])
        .output()
        .expect("run python3 -m pip");
    assert!(
        pip.status.success() && importable().unwrap_or(false),
        "junitparser is missing and `python3 -m pip install --quiet junitparser` failed:\n{}",
        String::from_utf8_lossy(&pip.stderr)
    );
}

/// Loads the file with junitparser; prints counts per suite (from the
/// testcases and from the attributes) and one testcase's result and properties.
const READ_BACK: &str = r#"
import json, sys
from junitparser import JUnitXml, Properties, TestSuite
xml = JUnitXml.fromfile(sys.argv[1])
suites = [xml] if isinstance(xml, TestSuite) else list(xml)
out = {"suites": {}, "total": {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}, "case": None}
for s in suites:
    cases = list(s)
    counted = {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.is_failure),
        "errors": sum(1 for c in cases if c.is_error),
        "skipped": sum(1 for c in cases if c.is_skipped),
    }
    attrs = {"tests": s.tests, "failures": s.failures, "errors": s.errors, "skipped": s.skipped}
    out["suites"][s.name] = {"counted": counted, "attrs": attrs}
    for k, v in counted.items():
        out["total"][k] += v
    for c in cases:
        if c.name == sys.argv[2] and out["case"] is None:
            out["case"] = {
                "classname": c.classname,
                "time": c.time,
                "results": [{"tag": r._tag, "type": r.type, "message": r.message} for r in c.result],
                "properties": {p.name: p.value for ps in c.iterchildren(Properties) for p in ps},
            }
print(json.dumps(out))
"#;

fn read_back(path: &Path, case: &str) -> serde_json::Value {
    ensure_junitparser();
    let out = Command::new("python3")
        .arg("-c")
        .arg(READ_BACK)
        .arg(path)
        .arg(case)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "junitparser could not read {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stdout));
    })
}

#[test]
fn junitparser_reads_the_counts_and_properties_of_a_real_run() {
    let report = real_run();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("reports/junit.xml");
    junit::write(&report, &path).expect("JUnit XML written");

    match Command::new("xmllint").arg("--noout").arg(&path).output() {
        Ok(out) => assert!(
            out.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("xmllint not available ({e}): well-formedness left to junitparser"),
    }

    let got = read_back(&path, FAILING_CHECK);
    let passing = &report.experiments[0];
    let failing = &report.experiments[1];
    let failed_checks = failing.checks.iter().filter(|c| !c.passed).count();
    let expect = [
        (passing.name.as_str(), passing.checks.len(), 0, 0, 0),
        (
            failing.name.as_str(),
            failing.checks.len(),
            failed_checks,
            0,
            0,
        ),
        ("not-tonight", 1, 0, 0, 1),
        (HOSTILE, 1, 0, 1, 0),
    ];
    assert_eq!(
        got["suites"].as_object().map(|s| s.len()),
        Some(4),
        "{got:#}"
    );
    for (name, tests, failures, errors, skipped) in expect {
        let want = serde_json::json!({
            "tests": tests, "failures": failures, "errors": errors, "skipped": skipped
        });
        let suite = &got["suites"][name];
        assert_eq!(suite["counted"], want, "suite {name}: {got:#}");
        assert_eq!(suite["attrs"], want, "suite {name} attributes: {got:#}");
    }
    assert!(
        failed_checks >= 1 && passing.checks.len() >= 2,
        "{report:#?}"
    );
    let total = |k: &str| got["total"][k].as_u64();
    assert_eq!(
        total("tests"),
        Some((passing.checks.len() + failing.checks.len() + 2) as u64)
    );
    assert_eq!(total("failures"), Some(failed_checks as u64));
    assert_eq!((total("errors"), total("skipped")), (Some(1), Some(1)));

    let check = failing
        .checks
        .iter()
        .find(|c| c.name == FAILING_CHECK)
        .expect("the failing check");
    let case = &got["case"];
    assert_eq!(case["classname"], "faultline.too-strict.steady", "{case:#}");
    assert_eq!(case["results"][0]["tag"], "failure", "{case:#}");
    assert_eq!(case["results"][0]["type"], "threshold", "{case:#}");
    let message = case["results"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("expected < 1ms, observed {}", check.observed)),
        "{message}"
    );
    let props = &case["properties"];
    assert_eq!(props["observed"], check.observed.as_str(), "{case:#}");
    assert_eq!(props["expected"], "< 1ms", "{case:#}");
    assert_eq!(
        props["samples"],
        check.samples.to_string().as_str(),
        "{case:#}"
    );
    assert_eq!(props["phase"], "steady", "{case:#}");
    assert_eq!(props["kind"], "threshold", "{case:#}");
    let steady = failing
        .phases
        .iter()
        .find(|p| p.name == "steady")
        .expect("steady phase");
    let time = case["time"].as_f64().unwrap_or(-1.0);
    assert!(
        (time - steady.duration_s).abs() < 1e-6,
        "time {time} vs {}",
        steady.duration_s
    );
}

#[test]
fn the_markdown_summary_of_a_real_run_names_the_failed_check() {
    let report = real_run();
    let md = markdown::render(&report);
    assert!(md.contains("| fast-enough | PASS |"), "{md}");
    assert!(md.contains("| too-strict | FAIL |"), "{md}");
    assert!(md.contains("| not-tonight | SKIPPED |"), "{md}");
    assert!(
        md.contains(&format!("- FAIL **{}**", markdown::inline(FAILING_CHECK))),
        "{md}"
    );
    assert!(md.contains("expected &lt; 1ms, observed "), "{md}");

    let dir = tempfile::tempdir().expect("temp dir");
    let summary = dir.path().join("step-summary.md");
    markdown::append_to(&report, &summary).expect("appended");
    assert_eq!(
        std::fs::read_to_string(&summary).expect("readable"),
        md + "\n"
    );
}

/// Every `faultline run ...` command line in the string values of a YAML document.
fn run_commands(value: &serde_yaml::Value, found: &mut Vec<String>) {
    match value {
        serde_yaml::Value::String(s) => {
            let joined = s.replace("\\\n", " ");
            found.extend(
                joined
                    .lines()
                    .filter(|l| l.contains("faultline run "))
                    .map(|l| l.trim().to_string()),
            );
        }
        serde_yaml::Value::Sequence(items) => items.iter().for_each(|v| run_commands(v, found)),
        serde_yaml::Value::Mapping(map) => map.values().for_each(|v| run_commands(v, found)),
        serde_yaml::Value::Tagged(tagged) => run_commands(&tagged.value, found),
        _ => {}
    }
}

fn ci_example(name: &str) -> serde_yaml::Value {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "examples", "ci", name]
        .iter()
        .collect();
    let text = std::fs::read_to_string(&path).expect("the CI example exists");
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

#[test]
fn the_ci_examples_use_only_flags_that_faultline_run_has() {
    let help = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["run", "--help"])
        .output()
        .expect("run faultline run --help");
    assert!(
        help.status.success(),
        "{}",
        String::from_utf8_lossy(&help.stderr)
    );
    let help = String::from_utf8_lossy(&help.stdout);
    // `--junit` must appear as itself, not as the start of `--junit-dir`.
    let documented = |flag: &str| {
        help.match_indices(flag).any(|(at, _)| {
            !help[at + flag.len()..]
                .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
    };
    for file in ["github-actions.yml", "gitlab-ci.yml"] {
        let mut commands = Vec::new();
        run_commands(&ci_example(file), &mut commands);
        assert!(!commands.is_empty(), "{file} runs faultline");
        for command in &commands {
            let flags: Vec<&str> = command
                .split_whitespace()
                .filter(|w| w.starts_with("--"))
                .map(|w| w.split('=').next().unwrap_or(w))
                .collect();
            assert!(flags.contains(&"--junit"), "{file}: {command}");
            let unknown: Vec<&&str> = flags.iter().filter(|f| !documented(f)).collect();
            assert!(
                unknown.is_empty(),
                "{file}: `faultline run --help` does not list {unknown:?} used in: {command}\n{help}"
            );
        }
    }
}

#[test]
fn the_ci_examples_keep_the_reports_when_the_run_fails() {
    let gh = ci_example("github-actions.yml");
    assert!(gh["on"]["schedule"][0]["cron"].is_string(), "{gh:?}");
    assert!(gh["on"].get("workflow_dispatch").is_some(), "{gh:?}");
    let steps = gh["jobs"]["resilience"]["steps"]
        .as_sequence()
        .expect("steps");
    for action in ["actions/upload-artifact", "mikepenz/action-junit-report"] {
        let step = steps
            .iter()
            .find(|s| s["uses"].as_str().is_some_and(|u| u.starts_with(action)))
            .unwrap_or_else(|| panic!("a step uses {action}"));
        assert!(
            step["if"].as_str().is_some_and(|c| c.contains("always()")),
            "{action} runs even after a failed run: {step:?}"
        );
    }

    let gl = ci_example("gitlab-ci.yml");
    let artifacts = &gl["faultline-nightly"]["artifacts"];
    assert_eq!(artifacts["when"], "always", "{artifacts:?}");
    assert_eq!(
        artifacts["reports"]["junit"], "reports/junit.xml",
        "{artifacts:?}"
    );
    assert_eq!(artifacts["paths"][0], "reports/", "{artifacts:?}");
}
