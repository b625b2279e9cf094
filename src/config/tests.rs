//! End-to-end tests of the configuration layer: YAML text in, a document or
//! diagnostics out. Unit parsers, rendering and the position index have their
//! own tests next to their code.

use std::path::Path;
use std::time::Duration;

use super::model::{
    CmpOp, FaultSpec, LoadModel, Metric, PhaseFault, RateShape, StatusMatch, TargetKind,
};
use super::{load_file, load_str, Diagnostic};

const FULL: &str = r#"name: checkout-baseline
description: Checkout is fast.
tags: [demo, smoke]
min_samples: 5
target:
  demo: { payments_latency: 3ms }
load:
  rate: { from: 10, to: 500, over: 30s }
  max_in_flight: 64
  timeout: 2s
  requests:
    - { method: GET, path: /checkout, weight: 3 }
    - name: health
      method: post
      path: /health
      headers: { x-user: alice, x-count: 5 }
      body: '{"a":1}'
      expect_status: [200, 2xx, "404"]
phases:
  - name: baseline
    duration: 5s
    expect: { p99: "< 100ms", error_rate: "< 1%", p99.9: "<= 1.5s", rate: "> 10/s" }
  - name: broken
    duration: 1m30s
    min_samples: 2
    inject:
      - { type: command, run: "echo on", rollback: "echo off" }
"#;

fn errors(yaml: &str) -> Vec<Diagnostic> {
    match load_str(yaml, Path::new("x.yaml")) {
        Ok(_) => Vec::new(),
        Err(e) => e.diagnostics,
    }
}

/// Replaces `from` (which must occur) in FULL, to make one defect.
fn full_with(from: &str, to: &str) -> String {
    assert!(FULL.contains(from), "FULL has no `{from}`");
    FULL.replacen(from, to, 1)
}

#[test]
fn a_full_experiment_becomes_the_model() {
    let doc = load_str(FULL, Path::new("x.yaml")).expect("valid");
    assert!(doc.suite.is_none());
    let [e] = doc.experiments.as_slice() else {
        panic!("one experiment");
    };
    assert_eq!(e.name, "checkout-baseline");
    assert_eq!(e.tags, ["demo", "smoke"]);
    match &e.target.kind {
        TargetKind::Demo(o) => {
            assert_eq!(o.payments_latency, Duration::from_millis(3));
            assert_eq!(o.payments_timeout, Duration::from_secs(1));
        }
        other => panic!("demo target, got {other:?}"),
    }
    match &e.load.model {
        LoadModel::Open {
            rate,
            max_in_flight,
        } => {
            assert_eq!(*max_in_flight, 64);
            assert_eq!(
                *rate,
                RateShape::Ramp {
                    from: 10.0,
                    to: 500.0,
                    over: Duration::from_secs(30)
                }
            );
        }
        other => panic!("open model, got {other:?}"),
    }
    assert_eq!(e.load.timeout, Duration::from_secs(2));
    let [checkout, health] = e.load.requests.as_slice() else {
        panic!("two requests");
    };
    assert_eq!(checkout.name, "GET /checkout");
    assert_eq!(checkout.weight, 3);
    assert_eq!(checkout.expect_status, None);
    assert_eq!(health.name, "health");
    assert_eq!(health.method, http::Method::POST);
    assert_eq!(health.headers.len(), 2);
    assert_eq!(health.body.as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(
        health.expect_status,
        Some(vec![
            StatusMatch::Exact(200),
            StatusMatch::Class(2),
            StatusMatch::Exact(404)
        ])
    );
    let [baseline, broken] = e.phases.as_slice() else {
        panic!("two phases");
    };
    assert_eq!(
        baseline.min_samples, 5,
        "inherits the experiment's min_samples"
    );
    assert_eq!(baseline.expect.len(), 4);
    assert_eq!(baseline.expect[0].metric, Metric::P99);
    assert_eq!(baseline.expect[0].op, CmpOp::Lt);
    assert_eq!(baseline.expect[2].metric, Metric::P999);
    assert_eq!(broken.duration, Duration::from_secs(90));
    assert_eq!(broken.min_samples, 2);
    let [PhaseFault {
        spec: FaultSpec::Command(fault),
        after: Duration::ZERO,
        lasts: None,
    }] = broken.inject.as_slice()
    else {
        panic!("one command fault, at phase start for the whole phase");
    };
    assert_eq!(fault.run, "echo on");
    assert_eq!(fault.rollback.as_deref(), Some("echo off"));
    assert_eq!(fault.timeout, Duration::from_secs(30));
    assert_eq!(e.total_duration(), Duration::from_secs(95));
}

#[test]
fn a_misspelt_key_and_a_bad_duration_in_different_phases_are_both_reported() {
    let yaml = "name: x
target: { url: http://127.0.0.1:8080 }
load: { concurrency: 2, requests: [{ path: / }] }
phases:
  - name: one
    durration: 5s
  - name: two
    duration: fast
";
    let found = errors(yaml);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].path, "phases[0]");
    assert_eq!(found[0].message, "unknown field `durration`");
    assert_eq!(found[0].help.as_deref(), Some("did you mean `duration`?"));
    assert_eq!((found[0].line, found[0].column), (Some(6), Some(5)));
    assert_eq!(found[1].path, "phases[1].duration");
    assert!(
        found[1].message.contains("found `fast`"),
        "{}",
        found[1].message
    );
    assert_eq!((found[1].line, found[1].column), (Some(8), Some(15)));
}

#[test]
fn a_misspelt_key_and_a_bad_duration_in_the_same_phase_are_both_reported() {
    let yaml = "name: x
target: { url: http://127.0.0.1:8080 }
load: { concurrency: 2, requests: [{ path: / }] }
phases:
  - name: one
    durration: 5s
    duration: 0s
";
    let found = errors(yaml);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(
        (found[0].line, found[0].message.as_str()),
        (Some(6), "unknown field `durration`")
    );
    assert_eq!(found[1].line, Some(7));
    assert_eq!(found[1].message, "must be greater than 0, found `0s`");
}

#[test]
fn a_misspelt_required_key_is_not_also_reported_as_missing() {
    let found = errors(&full_with("    duration: 5s\n", "    durration: 5s\n"));
    assert_eq!(found.len(), 1, "{found:#?}");
}

#[test]
fn single_defects_are_reported_with_their_path_and_message() {
    // (case, from, to, path, message substring, help substring)
    let cases: &[(&str, &str, &str, &str, &str, &str)] = &[
        ("an unknown metric gets a suggestion", "p99.9:", "p999:", "phases[0].expect", "unknown metric `p999`", "did you mean `p99.9`?"),
        ("an unrelated metric lists the catalogue", "p99.9:", "latency:", "phases[0].expect", "unknown metric `latency`", "known metrics: p50"),
        ("an unknown fault type gets a suggestion", "type: command", "type: comand", "phases[1].inject[0].type", "unknown fault type `comand`", "did you mean `command`?"),
        ("an unrelated fault type lists the known ones", "type: command", "type: explode", "phases[1].inject[0].type", "unknown fault type `explode`", "known fault types: `command`"),
        ("a fault without a type says so", "type: command, ", "", "phases[1].inject[0]", "missing `type`", "known fault types"),
        ("a misspelt fault field gets a suggestion", "rollback:", "rolback:", "phases[1].inject[0]", "unknown field `rolback`", "did you mean `rollback`?"),
        ("a misspelt timing key gets a suggestion", "rollback:", "aftr: 1s, rollback:", "phases[1].inject[0]", "unknown field `aftr`", "did you mean `after`?"),
        ("a fault due after its phase ended is refused", "rollback:", "after: 90s, rollback:", "phases[1].inject[0].after", "would never be applied: the phase lasts 90s", "counts from the phase's start"),
        ("a fault lasting past its phase is refused", "rollback:", "after: 1m, for: 31s, rollback:", "phases[1].inject[0].for", "goes past the end of the phase", "use `for: 30s` or less"),
        ("a fault lasting no time is refused", "rollback:", "for: 0s, rollback:", "phases[1].inject[0].for", "must be greater than 0", ""),
        ("a rate of zero is refused", "rate: { from: 10, to: 500, over: 30s }", "rate: 0", "load.rate", "must be greater than 0", ""),
        ("a ramp without `over` is refused", ", over: 30s", "", "load.rate", "missing `over`", ""),
        ("a negative ramp start is refused", "from: 10", "from: -1", "load.rate.from", "must be 0 or more", ""),
        ("rate and concurrency together are refused", "max_in_flight: 64", "concurrency: 4", "load", "cannot be combined", ""),
        ("a bare number is not a duration", "duration: 5s", "duration: 5", "phases[0].duration", "a unit is required", ""),
        ("a latency threshold needs a duration", "\"< 100ms\"", "\"< 100\"", "phases[0].expect.p99", "needs a duration", ""),
        ("an error-rate threshold needs a percentage", "\"< 1%\"", "\"< fast\"", "phases[0].expect.error_rate", "needs a percentage", ""),
        ("a bare error rate over 1 is not guessed", "\"< 1%\"", "\"< 5\"", "phases[0].expect.error_rate", "a bare number is a fraction from 0 to 1; write a percentage such as `5%`", ""),
        ("a threshold needs an operator", "\"< 100ms\"", "100ms", "phases[0].expect.p99", "expected a comparison", ""),
        ("duplicate phase names are refused", "name: broken", "name: baseline", "phases[1].name", "duplicate phase name `baseline`", ""),
        ("an empty phase name is refused", "name: broken", "name: ''", "phases[1].name", "must not be empty", ""),
        ("zero min_samples is refused", "min_samples: 2", "min_samples: 0", "phases[1].min_samples", "must be at least 1", ""),
        ("a path must start with a slash", "path: /checkout", "path: checkout", "load.requests[0].path", "must start with `/`", ""),
        ("a bad method is refused", "method: post", "method: 'PO ST'", "load.requests[1].method", "expected an HTTP method", ""),
        ("a zero weight is refused", "weight: 3", "weight: 0", "load.requests[0].weight", "must be at least 1", ""),
        ("a status out of range is refused", "[200, 2xx, \"404\"]", "[200, 7xx]", "load.requests[1].expect_status[1]", "expected a status code", ""),
        ("an empty status list is refused", "[200, 2xx, \"404\"]", "[]", "load.requests[1].expect_status", "at least one status", ""),
        ("a bad header name is refused", "x-user: alice", "\"x user\": alice", "load.requests[1].headers", "not a valid header name", ""),
        ("a request without a path is refused", "method: GET, path: /checkout, ", "", "load.requests[0]", "missing `path`", ""),
        ("an empty request list is refused", "    - { method: GET, path: /checkout, weight: 3 }\n    - name: health\n      method: post\n      path: /health\n      headers: { x-user: alice, x-count: 5 }\n      body: '{\"a\":1}'\n      expect_status: [200, 2xx, \"404\"]\n", "    []\n", "load.requests", "at least one request", ""),
        ("a string where a count belongs is refused", "max_in_flight: 64", "max_in_flight: lots", "load.max_in_flight", "expected a non-negative whole number, found `lots`", ""),
        ("a list where a mapping belongs is refused", "  demo: { payments_latency: 3ms }", "  demo: [1]", "target.demo", "expected a mapping, found a list", ""),
        ("two target kinds are refused", "  demo: { payments_latency: 3ms }", "  demo: {}\n  url: http://x", "target", "`demo` and `url` cannot be combined", ""),
        ("a url without a scheme is refused", "  demo: { payments_latency: 3ms }", "  url: localhost:8080", "target.url", "http:// or https://", ""),
        ("a command target needs a url", "  demo: { payments_latency: 3ms }", "  command: ./svc", "target", "missing `url`", ""),
        ("a misspelt top-level key gets a suggestion", "description:", "descripton:", "", "unknown field `descripton`", "did you mean `description`?"),
        ("a name that is a number must be quoted", "name: checkout-baseline", "name: 42", "name", "expected a string (put it in quotes), found `42`", ""),
    ];
    for (case, from, to, path, message, help) in cases {
        let found = errors(&full_with(from, to));
        assert_eq!(found.len(), 1, "{case}: {found:#?}");
        let d = &found[0];
        assert_eq!(d.path, *path, "{case}: {d}");
        assert!(d.message.contains(message), "{case}: {d}");
        assert!(d.line.is_some(), "{case}: has a line: {d}");
        if !help.is_empty() {
            assert!(
                d.help.as_deref().unwrap_or("").contains(help),
                "{case}: {d}"
            );
        }
    }
}

#[test]
fn missing_sections_are_reported_with_what_would_supply_them() {
    let before_phases = &FULL[..FULL.find("phases:").unwrap_or(0)];
    let cases: &[(&str, String, &str)] = &[
        (
            "a missing target mentions suite defaults",
            full_with("target:\n  demo: { payments_latency: 3ms }\n", ""),
            "missing `target` (required unless a suite provides defaults.target)",
        ),
        (
            "empty phases are refused",
            format!("{before_phases}phases: []\n"),
            "must list at least one phase",
        ),
        (
            "missing phases are refused",
            before_phases.to_string(),
            "missing `phases`",
        ),
        (
            "a missing name is reported",
            full_with("name: checkout-baseline\n", ""),
            "missing `name`",
        ),
    ];
    for (case, yaml, message) in cases {
        let found = errors(yaml);
        assert_eq!(found.len(), 1, "{case}: {found:#?}");
        assert!(found[0].message.contains(message), "{case}: {}", found[0]);
    }
}

#[test]
fn whole_file_problems_are_single_clear_errors() {
    let cases: &[(&str, &str, &str, Option<usize>)] = &[
        ("an empty file", "", "the file is empty", None),
        (
            "a comment-only file",
            "# nothing\n",
            "the file is empty",
            None,
        ),
        (
            "a list at the top level",
            "- a\n- b\n",
            "expected a mapping",
            Some(1),
        ),
        ("a bare string", "hello\n", "expected a mapping", Some(1)),
        (
            "a syntax error",
            "name: x\n  bad: : y\n",
            "invalid YAML",
            Some(2),
        ),
        (
            "a duplicate key",
            "name: x\nphases: []\nname: y\n",
            "duplicate key `name`",
            Some(3),
        ),
        (
            "two documents",
            "name: x\n---\nname: y\n",
            "several YAML documents",
            Some(2),
        ),
        (
            "an unterminated quote",
            "name: \"x\n",
            "invalid YAML",
            Some(2),
        ),
        (
            "tabs for indentation",
            "target:\n\turl: x\n",
            "invalid YAML",
            Some(2),
        ),
    ];
    for (case, yaml, message, line) in cases {
        let found = errors(yaml);
        assert!(!found.is_empty(), "{case}");
        assert!(found[0].message.contains(message), "{case}: {}", found[0]);
        assert_eq!(found[0].line, *line, "{case}: {}", found[0]);
    }
}

#[test]
fn every_error_of_a_messy_file_is_reported_in_line_order() {
    let yaml = "name: ''
tags: [a, [b]]
target: { url: ftp://x }
load:
  rate: -5
  timout: 2s
  requests:
    - { path: nope, weight: 0 }
phases:
  - { name: a, duration: 1s, expect: { p42: '< 1s' } }
  - { name: a, duration: 2s, inject: [{ type: nope }] }
";
    let found = errors(yaml);
    let lines: Vec<usize> = found.iter().filter_map(|d| d.line).collect();
    assert_eq!(lines, [1, 2, 3, 5, 6, 8, 8, 10, 11, 11], "{found:#?}");
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
}

#[test]
fn merge_keys_and_aliases_are_understood() {
    let yaml = "name: x
target: { url: 'http://127.0.0.1:1' }
load: { concurrency: 1, requests: [{ path: / }] }
base: &base { duration: 1s }
phases:
  - { <<: *base, name: a }
";
    let found = errors(yaml);
    // `base` is not a field, but the merge itself worked: no other error.
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].message, "unknown field `base`");
}

#[test]
fn a_rendered_error_shows_the_line_and_a_caret_under_the_key() {
    let found = errors(&full_with(
        "    duration: 1m30s\n",
        "    durration: 1m30s\n",
    ));
    let text = found[0].to_string();
    let want = "error: phases[1]: unknown field `durration`
  --> x.yaml:24:5
   |
24 |     durration: 1m30s
   |     ^^^^^^^^^
   = help: did you mean `duration`?";
    assert_eq!(text, want);
}

#[test]
fn windows_line_endings_keep_lines_and_snippets_right() {
    let yaml = FULL
        .replace('\n', "\r\n")
        .replacen("duration: 5s", "duration: fast", 1);
    let found = errors(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!((found[0].line, found[0].column), (Some(21), Some(15)));
    let snippet = found[0].snippet.as_ref().map(|s| s.text.as_str());
    assert_eq!(snippet, Some("    duration: fast"));
}

// ---- shipped files ----------------------------------------------------------

fn yaml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn each_invalid_fixture_reports_exactly_its_one_expected_error() {
    let files = yaml_files("tests/fixtures/invalid");
    assert!(files.len() >= 8, "{files:?}");
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} starts without `# expect: `", path.display()));
        let err = load_file(&path).expect_err("invalid");
        assert_eq!(
            err.diagnostics.len(),
            1,
            "{}: one defect, one error:\n{err}",
            path.display()
        );
        assert!(
            err.diagnostics[0].message.contains(expect),
            "{}:\n{err}",
            path.display()
        );
        assert!(
            err.diagnostics[0].line.is_some(),
            "{}: has a line:\n{err}",
            path.display()
        );
    }
}

#[test]
fn valid_fixtures_and_shipped_examples_load() {
    let mut files = yaml_files("tests/fixtures/valid");
    files.extend(yaml_files("experiments"));
    files.extend(yaml_files("suites"));
    for path in files {
        if let Err(e) = load_file(&path) {
            panic!("{} should be valid:\n{e}", path.display());
        }
    }
}

// ---- robustness -----------------------------------------------------------

/// A tiny deterministic generator, so failures reproduce without a new dependency.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn must_not_panic(text: &str) {
    let result = load_str(text, Path::new("fuzz/x.yaml"));
    if let Err(e) = result {
        assert!(!e.diagnostics.is_empty());
        // Rendering must not panic either.
        let _ = e.to_string();
    }
}

#[test]
fn every_prefix_of_a_valid_file_is_handled_without_panicking() {
    for (end, _) in FULL.char_indices() {
        must_not_panic(&FULL[..end]);
    }
}

#[test]
fn random_bytes_and_mutations_are_handled_without_panicking() {
    let mut rng = Lcg(0x5eed);
    let alphabet: Vec<char> = "ab:-{}[],'\"&*!|>#%@ \n\t\r0.9<>?~\\é".chars().collect();
    for _ in 0..300 {
        let len = (rng.next() % 120) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        must_not_panic(&String::from_utf8_lossy(&bytes));
        let noise: String = (0..len)
            .map(|_| alphabet[(rng.next() as usize) % alphabet.len()])
            .collect();
        must_not_panic(&noise);
        let mut mutated: Vec<char> = FULL.chars().collect();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % mutated.len();
            mutated[at] = alphabet[(rng.next() as usize) % alphabet.len()];
        }
        must_not_panic(&mutated.into_iter().collect::<String>());
    }
}

#[test]
fn hostile_shapes_are_handled_without_panicking() {
    let deep_list = "[".repeat(10_000);
    let deep_map = "a: {".repeat(5_000);
    let mut laughs = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (i, name) in ["b", "c", "d", "e", "f", "g", "h", "i"].iter().enumerate() {
        let prev = if i == 0 {
            "a".to_string()
        } else {
            ["b", "c", "d", "e", "f", "g", "h"][i - 1].to_string()
        };
        laughs.push_str(&format!("{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
    }
    let cases = [
        deep_list,
        deep_map,
        laughs,
        "rate: 1e400\n".to_string(),
        "name: x\nmin_samples: 99999999999999999999999\n".to_string(),
        full_with("rate: { from: 10, to: 500, over: 30s }", "rate: .inf"),
        full_with("max_in_flight: 64", "max_in_flight: 18446744073709551615"),
        full_with("duration: 5s", "duration: 99999999999999h"),
        "? [a, b]\n: 1\n? {c: d}\n: 2\n".to_string(),
        "1: x\ntrue: y\n~: z\n".to_string(),
        "!tag {name: x}\n".to_string(),
        "name: !tag x\nphases: !seq [!m {name: a}]\n".to_string(),
        "experiments: [../../../../../../etc/passwd, '', ~, 5]\n".to_string(),
        "experiments:\n".to_string(),
        "---\n...\n".to_string(),
        "\u{feff}name: x\n".to_string(),
        "name: x\r\nphases: [\r\n".to_string(),
    ];
    for case in &cases {
        must_not_panic(case);
    }
}

/// The newer sections (`verify`, `probes`, `safety`) under the same abuse.
#[test]
fn mutated_verify_probe_and_safety_sections_are_handled_without_panicking() {
    let base = format!(
        "{}{}",
        include_str!("../../experiments/demo-breaker.yaml"),
        "probes:\n  p: { http: { url: /health, json: { pointer: /status, equals: ok } }, timeout: 1s }\n\
         safety:\n  environment: staging\n  allowed_hosts: [a.example.com]\n  max_rate: 500\n  \
         abort_if: [ { error_rate: \"> 50%\", for: 2s }, { probe: p, for: 1s } ]\n"
    );
    for (end, _) in base.char_indices().step_by(3) {
        must_not_panic(&base[..end]);
    }
    let mut rng = Lcg(0xfa17);
    let alphabet: Vec<char> = "ab:-{}[],'\"&*!|>#%@ \n\t0.9<>?~\\é5s%".chars().collect();
    let chars: Vec<char> = base.chars().collect();
    for _ in 0..400 {
        let mut mutated = chars.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % mutated.len();
            mutated[at] = alphabet[(rng.next() as usize) % alphabet.len()];
        }
        must_not_panic(&mutated.into_iter().collect::<String>());
    }
}

/// The `inject` entry of a one-phase experiment (5 s) on a command target.
fn timed(entry: &str) -> Result<super::model::Document, Vec<Diagnostic>> {
    let yaml = format!(
        "name: t\ntarget: {{ command: ./svc, url: \"http://127.0.0.1:9\" }}\n\
         load: {{ rate: 5, requests: [ {{ path: / }} ] }}\n\
         phases:\n  - name: p\n    duration: 5s\n    inject:\n      - {entry}\n"
    );
    load_str(&yaml, Path::new("x.yaml")).map_err(|e| e.diagnostics)
}

fn only_fault(doc: &super::model::Document) -> &PhaseFault {
    &doc.experiments[0].phases[0].inject[0]
}

#[test]
fn after_and_for_are_read_for_every_kind_of_fault() {
    for entry in [
        "{ type: latency, proxy: p, latency: 10ms, after: 1s, for: 2s }",
        "{ type: cpu, load: 10%, cores: 1, after: 1s, for: 2s }",
        "{ type: kill, signal: STOP, after: 1s, for: 2s }",
        "{ type: command, run: 'true', after: 1s, for: 2s }",
    ] {
        let yaml = format!(
            "name: t\ntarget: {{ command: ./svc, url: \"http://127.0.0.1:9\" }}\n\
             proxies: {{ p: {{ upstream: \"127.0.0.1:9\" }} }}\n\
             load: {{ rate: 5, requests: [ {{ path: / }} ] }}\n\
             phases:\n  - name: p\n    duration: 5s\n    inject:\n      - {entry}\n"
        );
        let doc = load_str(&yaml, Path::new("x.yaml")).unwrap_or_else(|e| panic!("{entry}: {e}"));
        let fault = only_fault(&doc);
        assert_eq!(
            (fault.after, fault.lasts),
            (Duration::from_secs(1), Some(Duration::from_secs(2))),
            "{entry}"
        );
        assert!(doc.warnings.is_empty(), "{entry}: {:?}", doc.warnings);
    }
}

#[test]
fn after_on_a_kill_without_restart_is_the_generic_delay() {
    let doc = timed("{ type: kill, signal: TERM, after: 2s }").expect("valid");
    let fault = only_fault(&doc);
    assert_eq!((fault.after, fault.lasts), (Duration::from_secs(2), None));
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
}

#[test]
fn after_on_a_restarting_kill_without_for_keeps_its_old_meaning_with_a_warning() {
    let doc = timed("{ type: kill, signal: KILL, restart: true, after: 2s }").expect("valid");
    let fault = only_fault(&doc);
    assert_eq!(
        (fault.after, fault.lasts),
        (Duration::ZERO, Some(Duration::from_secs(2))),
        "killed at once, restarted 2 s later"
    );
    let [warning] = doc.warnings.as_slice() else {
        panic!("one warning: {:?}", doc.warnings);
    };
    assert!(warning.warning && warning.path == "phases[0].inject[0].after");
    assert!(
        warning.message.contains("write `for: 2s` instead"),
        "{warning}"
    );
    assert!(warning.to_string().starts_with("warning: "), "{warning}");

    // A restart delay past the phase restarts at phase end, as it did.
    let doc = timed("{ type: kill, signal: KILL, restart: true, after: 9s }").expect("valid");
    assert_eq!(only_fault(&doc).lasts, None);

    // With `for`, `after` delays the kill and nothing is deprecated.
    let doc =
        timed("{ type: kill, signal: KILL, restart: true, after: 1s, for: 2s }").expect("valid");
    let fault = only_fault(&doc);
    assert_eq!(
        (fault.after, fault.lasts),
        (Duration::from_secs(1), Some(Duration::from_secs(2)))
    );
    assert!(doc.warnings.is_empty());
}
