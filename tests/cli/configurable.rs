//! Runs configured without editing YAML: `${VAR}` interpolation and
//! `--set PATH=VALUE`, through the real binary (`validate` and `list`,
//! which print what was loaded).

use super::{faultline, run_bounded, write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// An experiment whose target, rate and fault duration come from variables.
const TEMPLATE: &str = "\
name: ${NAME:-configurable}
target:
  url: ${TARGET_URL}
load:
  rate: ${RATE:-50}
  timeout: \"${TIMEOUT:-2s}\"
  requests:
    - { path: /, headers: { x-note: \"cost $${NOT_A_VAR}\" } }
phases:
  - name: baseline
    duration: 1s
  - name: fault
    duration: ${FAULT_FOR:-3s}
";

/// `faultline ARGS` with only the given variables of ours set.
fn cli(dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd: Command = faultline();
    for name in [
        "TARGET_URL",
        "RATE",
        "TIMEOUT",
        "FAULT_FOR",
        "NAME",
        "NO_COLOR",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(vars.iter().copied()).current_dir(dir).args(args);
    run_bounded(&mut cmd, LIMIT)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const URL: (&str, &str) = ("TARGET_URL", "http://127.0.0.1:9");

#[test]
fn variables_fill_values_with_their_yaml_types_and_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "e.yaml", TEMPLATE);
    let out = cli(dir.path(), &[URL, ("RATE", "75")], &["list", "e.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = stdout(&out);
    // RATE=75 became the number 75, the defaults filled the rest.
    assert!(
        listed.contains("configurable  4s, open model 75/s"),
        "{listed}"
    );
    assert!(listed.contains("- fault 3s"), "{listed}");
}

#[test]
fn an_unset_variable_is_exit_2_at_its_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "e.yaml", TEMPLATE);
    let out = cli(dir.path(), &[], &["validate", "e.yaml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "target.url: `TARGET_URL` is not set; export it or write `${TARGET_URL:-...}`"
        ),
        "{err}"
    );
    assert!(err.contains("--> e.yaml:3:8"), "{err}");
    assert!(err.contains("e.yaml: 1 error"), "{err}");
}

#[test]
fn a_bad_substituted_value_is_reported_where_its_reference_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "e.yaml", TEMPLATE);
    let out = cli(
        dir.path(),
        &[URL, ("FAULT_FOR", "3 parsecs")],
        &["validate", "e.yaml"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    // Line 13, column 15: the `${FAULT_FOR...}` of the original text.
    assert!(
        err.contains("phases[1].duration: unknown duration unit `parsecs` in `3 parsecs`"),
        "{err}"
    );
    assert!(err.contains("--> e.yaml:13:15"), "{err}");
    assert!(err.contains("duration: ${FAULT_FOR:-3s}"), "{err}");
}

#[test]
fn a_malformed_reference_is_an_error_and_dollar_dollar_brace_escapes() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "e.yaml",
        &TEMPLATE.replace("${RATE:-50}", "${RATE"),
    );
    let out = cli(dir.path(), &[URL], &["validate", "e.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("load.rate: invalid variable reference `${RATE`: no closing `}`"),
        "{err}"
    );
    assert!(err.contains("--> e.yaml:5:9"), "{err}");
    // The `$${` of the template is a literal `${`, not a variable: the
    // healthy template validates without NOT_A_VAR set.
    write(dir.path(), "ok.yaml", TEMPLATE);
    let out = cli(dir.path(), &[URL], &["validate", "ok.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn suites_interpolate_their_defaults_and_their_experiments() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "e.yaml",
        &TEMPLATE.replace("target:\n  url: ${TARGET_URL}\n", ""),
    );
    write(
        dir.path(),
        "suite.yaml",
        "name: s\ndefaults:\n  target: { url: \"${SUITE_URL}\" }\nexperiments: [ e.yaml ]\n",
    );
    let out = cli(dir.path(), &[], &["validate", "suite.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("`SUITE_URL` is not set"), "{err}");
    // Column 19: inside the quotes, where `${` is.
    assert!(err.contains("--> suite.yaml:3:19"), "{err}");
    let out = cli(
        dir.path(),
        &[("SUITE_URL", "http://127.0.0.1:9"), ("FAULT_FOR", "x")],
        &["validate", "suite.yaml"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("found `x`"), "{err}");
    assert!(err.contains("--> e.yaml:11:15"), "{err}");
    let out = cli(
        dir.path(),
        &[("SUITE_URL", "http://127.0.0.1:9")],
        &["validate", "suite.yaml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn set_changes_values_by_key_phase_name_and_index() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "e.yaml", TEMPLATE);
    // TARGET_URL is unset, but `--set target.url` replaces its value, so
    // that is no error.
    let out = cli(
        dir.path(),
        &[],
        &[
            "list",
            "e.yaml",
            "--set",
            "target.url=http://127.0.0.1:8080",
            "--set",
            "phases.fault.duration=60s",
            "--set",
            "phases.0.duration=2s",
            "--set",
            "load.rate=20",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = stdout(&out);
    assert!(
        listed.contains("configurable  62s, open model 20/s"),
        "{listed}"
    );
    assert!(listed.contains("- baseline 2s"), "{listed}");
    assert!(listed.contains("- fault 1m"), "{listed}");
}

#[test]
fn a_set_typo_is_exit_2_at_the_flag_with_did_you_mean() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "e.yaml", TEMPLATE);
    let flag = "phases.faultt.duration=60s";
    let out = cli(dir.path(), &[URL], &["validate", "e.yaml", "--set", flag]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("error: no phase named `faultt`"), "{err}");
    assert!(
        err.contains("--> --set phases.faultt.duration=60s"),
        "{err}"
    );
    assert!(err.contains("help: did you mean `fault`?"), "{err}");
    let out = cli(
        dir.path(),
        &[URL],
        &["plan", "e.yaml", "--set", "lod.rate=5"],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown field `lod`"), "{err}");
    assert!(err.contains("--> --set lod.rate=5"), "{err}");
    assert!(err.contains("did you mean `load`?"), "{err}");
    // Not PATH=VALUE at all: clap's usage error, also exit 2.
    let out = cli(
        dir.path(),
        &[URL],
        &["validate", "e.yaml", "--set", "load.rate"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("expected PATH=VALUE"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_invalid_set_value_gets_the_validators_message_at_the_flag() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "e.yaml", TEMPLATE);
    let out = cli(
        dir.path(),
        &[URL],
        &[
            "run",
            "e.yaml",
            "--set",
            "load.rate=0",
            "--set",
            "phases.fault.duration=6x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("phases[1].duration: unknown duration unit `x` in `6x`"),
        "{err}"
    );
    assert!(err.contains("--> --set phases.fault.duration=6x"), "{err}");
    assert!(err.contains("load.rate:"), "{err}");
    assert!(err.contains("--> --set load.rate=0"), "{err}");
    // The same values in the file are fine, so it was the flags.
    let out = cli(dir.path(), &[URL], &["validate", "e.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn set_applies_to_every_experiment_of_a_suite_after_its_defaults() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bare = TEMPLATE.replace("target:\n  url: ${TARGET_URL}\n", "");
    write(dir.path(), "a.yaml", &bare);
    write(
        dir.path(),
        "b.yaml",
        &bare.replace("${NAME:-configurable}", "second"),
    );
    write(
        dir.path(),
        "suite.yaml",
        "name: s\ndefaults:\n  target: { demo: {} }\nexperiments: [ a.yaml, b.yaml ]\n",
    );
    let out = cli(
        dir.path(),
        &[],
        &[
            "plan",
            "suite.yaml",
            "--set",
            "target.url=http://127.0.0.1:9",
            "--set",
            "load.rate=5",
        ],
    );
    let plan = stdout(&out);
    // The demo default was replaced by the URL in both experiments.
    assert!(plan.matches("http://127.0.0.1:9").count() >= 2, "{plan}");
    assert!(!plan.contains("demo"), "{plan}");
    let out = cli(
        dir.path(),
        &[],
        &["list", "suite.yaml", "--set", "load.rate=5"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed = stdout(&out);
    assert_eq!(listed.matches("open model 5/s").count(), 2, "{listed}");
}

/// `faultline demo` reads its flags with the YAML rules: the same defect
/// combinations are refused, the same shares accepted, with exit 2.
#[test]
fn demo_flags_follow_the_rules_of_target_demo() {
    let dir = tempfile::tempdir().expect("temp dir");
    let refused = [
        (
            &["--defect", "no_rollback", "--defect", "slow_rollback"][..],
            "cannot be combined",
        ),
        (
            &["--defect", "flapping_rollback", "--defect", "no_rollback"][..],
            "cannot be combined",
        ),
        (&["--defect", "no_ejection"][..], "add --failover"),
        (&["--canary-weight", "150%"][..], "between 0% and 100%"),
        (&["--canary-weight", "1.5"][..], "or a fraction from 0 to 1"),
    ];
    for (flags, message) in refused {
        let out = run_bounded(faultline().arg("demo").args(flags), Duration::from_secs(10));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
        // The YAML form of the same choice is refused too.
        let yaml = if flags[0] == "--defect" {
            let names: Vec<&str> = flags.iter().skip(1).step_by(2).copied().collect();
            format!("defects: [{}]", names.join(", "))
        } else {
            format!("canary_weight: {}", flags[1])
        };
        let file = dir.path().join("demo.yaml");
        std::fs::write(
            &file,
            format!("name: d\ntarget: {{ demo: {{ {yaml} }} }}\nload: {{ rate: 5, requests: [{{ path: / }}] }}\nphases: [{{ name: p, duration: 1s }}]\n"),
        )
        .expect("write");
        let out = run_bounded(
            faultline().arg("validate").arg(&file),
            Duration::from_secs(10),
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{yaml}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
