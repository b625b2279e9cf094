//! The JSON Schemas as editors and scripts use them, checked by a real
//! validator: `check-jsonschema` (PyPI, installed by `scripts/test.sh`),
//! ECMAScript regular expressions as the YAML language server runs them.
//!
//! - every shipped experiment, suite and `init` template is valid;
//! - each invalid fixture of `faultline validate` is flagged by the schema
//!   at the field validation names, unless its second line says why a
//!   schema cannot see it (`# schema misses: reference: ...`); the misses
//!   are listed, and a stale mark fails too;
//! - typing mistakes are flagged and interpolated values are not, in the
//!   same direction as `faultline validate`;
//! - `init` points its `$schema` at a file that exists wherever it writes;
//! - real reports of every status are valid against `schema/report.schema.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{faultline, run_bounded, text, TEMPLATES};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// What `check-jsonschema` said about each file: the paths (JSONPath
/// without `$.`) of its errors, best matches included. A file that did
/// not parse gets `<parse>`.
type Verdicts = BTreeMap<PathBuf, Vec<String>>;

fn check_jsonschema(schema: &Path, files: &[PathBuf]) -> Verdicts {
    let mut cmd = Command::new("check-jsonschema");
    cmd.arg("--schemafile").arg(schema).args(["-o", "json"]);
    cmd.args(files);
    let out = match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!(
            "check-jsonschema is needed ({e}): run `bash scripts/test.sh`, or `python3 -m pip install check-jsonschema`"
        ),
    };
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check-jsonschema output is not JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut verdicts: Verdicts = files.iter().map(|f| (f.clone(), Vec::new())).collect();
    let path_of = |v: &serde_json::Value| {
        let p = v["path"].as_str().unwrap_or("$");
        p.strip_prefix("$.")
            .unwrap_or(p.trim_start_matches('$'))
            .to_string()
    };
    for error in json["errors"].as_array().into_iter().flatten() {
        let file = PathBuf::from(error["filename"].as_str().unwrap_or_default());
        let entry = verdicts.entry(file).or_default();
        entry.push(path_of(error));
        for key in ["best_match", "best_deep_match"] {
            if error.get(key).is_some() {
                entry.push(path_of(&error[key]));
            }
        }
    }
    for error in json["parse_errors"].as_array().into_iter().flatten() {
        let file = PathBuf::from(error["filename"].as_str().unwrap_or_default());
        verdicts.entry(file).or_default().push("<parse>".into());
    }
    verdicts
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

fn assert_all_valid(schema: &str, files: &[PathBuf]) {
    assert!(!files.is_empty());
    let verdicts = check_jsonschema(&root().join(schema), files);
    let invalid: Vec<_> = verdicts.iter().filter(|(_, e)| !e.is_empty()).collect();
    assert!(
        invalid.is_empty(),
        "not valid against {schema}: {invalid:#?}"
    );
}

#[test]
fn shipped_experiments_suites_and_templates_are_valid_against_their_schemas() {
    let mut experiments = yaml_files(&root().join("experiments"));
    experiments.extend(yaml_files(&root().join("experiments/real")));
    experiments.extend(yaml_files(&root().join("examples/ci")));
    // The templates as `init` writes them.
    let dir = tempfile::tempdir().expect("temp dir");
    for template in TEMPLATES {
        let file = format!("{template}.yaml");
        let out = run_bounded(
            faultline(dir.path()).args(["init", "--template", template, &file]),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        experiments.push(dir.path().join(file));
    }
    assert!(experiments.len() >= 25, "{experiments:?}");
    assert_all_valid("schema/experiment.schema.json", &experiments);
    assert_all_valid(
        "schema/suite.schema.json",
        &yaml_files(&root().join("suites")),
    );
}

/// `a.b[0]` is `b[0]`'s parent or child, or the same field.
fn related(schema_path: &str, field: &str) -> bool {
    let under = |long: &str, short: &str| {
        long == short
            || long
                .strip_prefix(short)
                .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    };
    // The root is everyone's parent: only a top-level field may be matched there.
    if schema_path.is_empty() {
        return !field.contains(['.', '[']);
    }
    under(schema_path, field) || under(field, schema_path)
}

/// The field path of `faultline validate`'s first error (`error: PATH: ...`).
fn validate_path(file: &Path) -> Option<String> {
    let out = run_bounded(
        faultline(root()).arg("validate").arg(file),
        Duration::from_secs(20),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let line = stderr.lines().find(|l| l.starts_with("error: "))?;
    let rest = line.strip_prefix("error: ")?;
    let (path, _) = rest.split_once(": ")?;
    (!path.contains(' ')).then(|| path.to_string())
}

#[test]
fn invalid_fixtures_are_flagged_by_the_schema_where_a_schema_can_see_them() {
    let files = yaml_files(&root().join("tests/fixtures/invalid"));
    let verdicts = check_jsonschema(&root().join("schema/experiment.schema.json"), &files);
    let mut problems = Vec::new();
    let mut misses = Vec::new();
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().to_string());
        let name = name.unwrap_or_default();
        let source = std::fs::read_to_string(file).expect("fixture");
        let marked = source
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("# schema misses: "));
        let errors = &verdicts[file];
        match (marked, errors.is_empty()) {
            (Some(why), true) => misses.push(format!("{name}: {why}")),
            (Some(_), false) => problems.push(format!(
                "{name} is marked `# schema misses` but the schema flags it at {errors:?}: drop the mark"
            )),
            (None, true) => problems.push(format!(
                "{name}: the schema misses it (a structural or unit error must be caught by both)"
            )),
            (None, false) if errors.iter().any(|e| e == "<parse>") => {}
            (None, false) => match validate_path(file) {
                Some(field) if !errors.iter().any(|e| related(e, &field)) => problems.push(
                    format!("{name}: validate flags `{field}`, the schema only {errors:?}"),
                ),
                _ => {}
            },
        }
    }
    eprintln!(
        "caught by both: {} of {}; left to validation:\n  {}",
        files.len() - misses.len(),
        files.len(),
        misses.join("\n  ")
    );
    assert!(problems.is_empty(), "{problems:#?}");
    // Most mistakes must show while typing, not only at `validate`.
    assert!(
        misses.len() * 2 < files.len(),
        "{} of {} missed",
        misses.len(),
        files.len()
    );
}

/// A small experiment with `line` under its phase (`phases[0]`).
fn experiment_with(lines: &str) -> String {
    format!(
        "name: typing\ntarget: {{ demo: {{}} }}\nload:\n  rate: ${{RATE:-10}}\n  requests: [{{ path: /checkout }}]\nphases:\n  - name: steady\n    duration: 2s\n{lines}"
    )
}

#[test]
fn typing_mistakes_are_flagged_and_interpolated_values_are_not() {
    let good = [
        ("a duration from a variable", "    inject: [{ type: latency, proxy: payments, latency: \"${LAT:-200ms}\" }]\n"),
        ("units with spaces and sums", "    inject: [{ type: latency, proxy: payments, latency: 1m 30s, after: 0s }]\n"),
        ("thresholds of every unit", "    expect: { p99: \"< 300ms\", error_rate: \"<= 0.01\", rate: \"> 5/s\", requests: \">= 1\", host_cpu: \"< 100%\" }\n"),
        ("a threshold from a variable", "    expect: { p99: \"${P99:-< 1s}\" }\n"),
        ("a probability as a fraction", "    inject: [{ type: http_error, proxy: payments, status: 503, probability: 0.25 }]\n"),
        ("a rate limit per API key", "    inject: [{ type: rate_limit, proxy: payments, rate: 20/s, burst: 5, key_header: x-api-key }]\n"),
        ("a size with a lower-case unit", "    inject: [{ type: limit_data, proxy: payments, bytes: 64kib }]\n"),
    ];
    let bad = [
        ("a misspelt key", "    durration: 5s\n"),
        (
            "an unknown unit",
            "    inject: [{ type: latency, proxy: payments, latency: 10parsecs }]\n",
        ),
        (
            "a word where a threshold goes",
            "    expect: { p99: fast }\n",
        ),
        (
            "a latency threshold in percent",
            "    expect: { p99: \"< 5%\" }\n",
        ),
        ("an unknown metric", "    expect: { p999: \"< 1s\" }\n"),
        (
            "a bare number for a duration",
            "    inject: [{ type: latency, proxy: payments, latency: 200 }]\n",
        ),
        (
            "a fraction above 1",
            "    inject: [{ type: http_error, proxy: payments, status: 503, probability: 5 }]\n",
        ),
        (
            "a size without a unit",
            "    inject: [{ type: limit_data, proxy: payments, bytes: \"64\" }]\n",
        ),
        (
            "CPU load without %",
            "    inject: [{ type: cpu, load: 80, for: 1s }]\n",
        ),
        (
            "a zero `for`",
            "    inject: [{ type: down, proxy: payments, for: 0s }]\n",
        ),
        (
            "a field of another fault type",
            "    inject: [{ type: down, proxy: payments, latency: 1s }]\n",
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for (i, (case, lines)) in good.iter().chain(bad.iter()).enumerate() {
        let path = dir.path().join(format!("case{i:02}.yaml"));
        std::fs::write(&path, experiment_with(lines)).expect("write case");
        files.push((path, *case, i < good.len()));
    }
    let paths: Vec<PathBuf> = files.iter().map(|(p, _, _)| p.clone()).collect();
    let verdicts = check_jsonschema(&root().join("schema/experiment.schema.json"), &paths);
    for (path, case, ok) in &files {
        let errors = &verdicts[path];
        assert_eq!(errors.is_empty(), *ok, "{case}: schema says {errors:?}");
        // `validate` agrees, so the schema is neither stricter nor looser.
        let out = run_bounded(
            faultline(root()).arg("validate").arg(path),
            Duration::from_secs(20),
        );
        let expected = if *ok { 0 } else { 2 };
        assert_eq!(out.status.code(), Some(expected), "{case}: {}", text(&out));
    }
}

#[test]
fn init_points_its_schema_line_at_a_file_that_exists() {
    let dir = tempfile::tempdir().expect("temp dir");
    let nested = dir.path().join("service/chaos");
    for (file, expected) in [
        ("service/latency.yaml", ".faultline/experiment.schema.json"),
        // A second experiment deeper in shares the first one's copy.
        (
            "service/chaos/errors.yaml",
            "../.faultline/experiment.schema.json",
        ),
    ] {
        let template = if file.ends_with("errors.yaml") {
            "errors"
        } else {
            "latency"
        };
        let out = run_bounded(
            faultline(dir.path()).args(["init", "--template", template, file]),
            Duration::from_secs(20),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let written = std::fs::read_to_string(dir.path().join(file)).expect("written");
        let first = written.lines().next().unwrap_or_default();
        assert_eq!(first, format!("# yaml-language-server: $schema={expected}"));
        // Resolved as an editor does, from the file's folder.
        let folder = dir.path().join(file);
        let schema = folder.parent().expect("folder").join(expected);
        let committed = std::fs::read(root().join("schema/experiment.schema.json"));
        let same = std::fs::read(&schema).ok() == committed.ok();
        assert!(same, "{} is not this faultline's schema", schema.display());
        assert_all_valid(
            schema.to_str().expect("utf-8 path"),
            &[dir.path().join(file)],
        );
    }
    assert!(!nested.join(".faultline").exists(), "one copy per project");
}

/// Runs `yaml` to completion with its reports in `dir`; returns the exit code.
fn run_for_report(dir: &Path, yaml: &str, extra: &[&str]) -> Option<i32> {
    std::fs::create_dir_all(dir).expect("report folder");
    let file = dir.join("e.yaml");
    std::fs::write(&file, yaml).expect("write experiment");
    let out = run_bounded(
        faultline(dir)
            .arg("run")
            .arg(&file)
            .arg("--quiet")
            .arg("--out")
            .arg(dir)
            .args(extra),
        Duration::from_secs(60),
    );
    out.status.code()
}

#[test]
fn real_reports_of_every_status_are_valid_against_the_report_schema() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let demo = "target: { demo: {} }\nload: { rate: 20, requests: [{ path: /checkout }] }\n";
    let runs = [
        ("passed", 0, format!("name: ok\n{demo}phases:\n  - {{ name: p, duration: 1s, expect: {{ error_rate: \"< 50%\" }} }}\n")),
        ("failed", 1, format!("name: fails\n{demo}phases:\n  - {{ name: p, duration: 1s, expect: {{ requests: \"< 1\" }} }}\n")),
        ("error", 4, format!("name: never-ready\ntarget: {{ url: \"http://127.0.0.1:{port}\", ready: {{ path: /, timeout: 1s }} }}\nload: {{ rate: 5, requests: [{{ path: / }}] }}\nphases:\n  - {{ name: p, duration: 1s }}\n")),
        ("aborted", 3, format!("name: stops\n{demo}safety:\n  abort_if: [{{ rate: \"< 1000000/s\", for: 1s }}]\nphases:\n  - {{ name: p, duration: 5s }}\n")),
        ("rollback_failed", 5, format!("name: bad-rollback\n{demo}phases:\n  - name: p\n    duration: 1s\n    inject:\n      - {{ type: command, run: \"true\", rollback: \"exit 1\" }}\n")),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut reports = Vec::new();
    for (status, code, yaml) in &runs {
        let folder = dir.path().join(status);
        assert_eq!(run_for_report(&folder, yaml, &[]), Some(*code), "{status}");
        let path = folder.join("report.json");
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).expect("report")).expect("JSON");
        assert_eq!(report["status"], *status, "{report}");
        reports.push(path);
    }
    let schema = root().join("schema/report.schema.json");
    let verdicts = check_jsonschema(&schema, &reports);
    for (path, errors) in &verdicts {
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
    }
    // The schema can fail: a renamed status, a number as text, a lost field.
    let original = std::fs::read_to_string(&reports[0]).expect("report");
    let mut broken = Vec::new();
    for (name, edit) in [
        ("status", r#""status": "ok","#),
        ("exit_code", r#""exit_code": "0","#),
        ("summary", ""),
    ] {
        let mut json: serde_json::Value = serde_json::from_str(&original).expect("JSON");
        let object = json.as_object_mut().expect("object");
        if edit.is_empty() {
            object.remove(name);
        } else {
            let patch: serde_json::Value =
                serde_json::from_str(&format!("{{{}}}", edit.trim_end_matches(',')))
                    .expect("patch");
            object.insert(name.into(), patch[name].clone());
        }
        let path = dir.path().join(format!("broken-{name}.json"));
        std::fs::write(&path, json.to_string()).expect("write");
        broken.push(path);
    }
    let verdicts = check_jsonschema(&schema, &broken);
    for (path, errors) in &verdicts {
        assert!(!errors.is_empty(), "{} passed the schema", path.display());
    }
}
