//! The verifier matrix: every behaviour verifier against the real demo
//! system, healthy (it must pass, five rounds in a row without one wrong
//! verdict) and with the defect it exists to catch (it must fail, and its
//! message must name what was observed).
//!
//! The experiments are shortened versions of `experiments/demo-*.yaml`, run
//! in-process through the real parser and runner. A round runs the breaker,
//! canary and recovery experiments concurrently (they are light: 50–200
//! requests/s each, and judge seconds, not milliseconds), so the matrix fits
//! in CI; the statistical comparison runs alone. Every test takes the
//! CPU-heavy lock so no stress test skews the verdicts.

mod by_version;

use crate::common::CPU_HEAVY;
use crate::load::run_yaml;
use faultline::journal::{Check, ExperimentReport};

/// `target.demo` with the given defects (and extra options).
fn demo(defects: &[&str], extra: &str) -> String {
    format!(
        "target:\n  demo:\n    defects: [{}]\n{extra}",
        defects.join(", ")
    )
}

fn breaker(defects: &[&str]) -> String {
    format!(
        r#"
name: breaker
{target}
load: {{ rate: 100, timeout: 2s, requests: [ {{ path: /checkout }} ] }}
phases:
  - {{ name: baseline, duration: 2s }}
  - name: failing
    duration: 4s
    inject: [ {{ type: http_error, proxy: payments, status: 500 }} ]
  - {{ name: after, duration: 4s }}
verify:
  - breaker:
      phase: failing
      dependency: payments
      fast_fail: {{ status: 503, latency: 50ms }}
      opens_within: 2s
      max_dependency_calls: 30
      closes_within: 3500ms
      state: {{ url: /admin/breaker, pointer: /state }}
"#,
        target = demo(defects, "    canary_weight: 0%\n")
    )
}

fn canary(defects: &[&str]) -> String {
    format!(
        r#"
name: canary
{target}
load: {{ rate: 200, timeout: 2s, requests: [ {{ path: /checkout }} ] }}
phases:
  - {{ name: steady, duration: 6s }}
  - name: broken
    duration: 5s
    inject: [ {{ type: http_error, proxy: payments-canary, status: 500 }} ]
verify:
  - canary:
      phase: broken
      canary_version: v2
      rolled_back_within: 3s
      max_failed_requests: 60
      stable_error_rate: 1%
"#,
        target = demo(defects, "    canary_weight: 10%\n")
    )
}

fn recovery(defects: &[&str]) -> String {
    format!(
        r#"
name: recovery
{target}
load: {{ rate: 50, timeout: 2s, requests: [ {{ path: /checkout }} ] }}
phases:
  - {{ name: baseline, duration: 3s }}
  - name: blackhole
    duration: 3s
    inject: [ {{ type: timeout, proxy: payments, timeout: 0s }} ]
  - {{ name: recovery, duration: 11s }}
verify:
  # A healthy demo needs up to ~5 s: the breaker's 2 s open time, a trial
  # call, then three healthy seconds in a row are what recovery means.
  - recovery: {{ baseline: baseline, after: blackhole, within: 7s }}
  # Errors only: the same verdict, without the latency criterion.
  - recovery: {{ baseline: baseline, after: blackhole, within: 7s, metrics: [error_rate] }}
"#,
        target = demo(defects, "")
    )
}

/// Payments answers 500 in every phase: the demo fails every checkout from
/// the start, so its baseline cannot be the reference for recovery.
const DEAD_RECOVERY: &str = r#"
name: recovery-dead
target: { demo: { canary_weight: 0% } }
load: { rate: 50, timeout: 2s, requests: [ { path: /checkout } ] }
phases:
  - name: baseline
    duration: 3s
    inject: [ { type: http_error, proxy: payments, status: 500 } ]
  - name: outage
    duration: 2s
    inject: [ { type: http_error, proxy: payments, status: 500 } ]
  - name: after
    duration: 4s
    inject: [ { type: http_error, proxy: payments, status: 500 } ]
verify:
  - recovery: { baseline: baseline, after: outage, within: 3s, metrics: [error_rate] }
"#;

fn promotion(canary_broken: bool) -> String {
    let fault = if canary_broken {
        "      - { type: http_error, proxy: payments-canary, status: 500 }\n"
    } else {
        ""
    };
    format!(
        r#"
name: promotion
target: {{ demo: {{ canary_weight: 10% }} }}
load: {{ rate: 200, timeout: 2s, requests: [ {{ path: /checkout }} ] }}
phases:
  - {{ name: canary, duration: 2s }}
  - name: promote
    duration: 3s
    inject:
      - type: command
        run: >-
          curl -fsS -X PUT -d '{{"weight": 1.0}}' "$FAULTLINE_TARGET_URL/admin/canary"
{fault}verify:
  # within 2s: the switch is a shell + curl started on a 2-core host shared
  # with three other runs; timed on the 100 ms timeline it took up to 1.3 s.
  - traffic_shift: {{ phase: promote, version: v2, from: 10%, to: 100%, within: 2s, max_errors: 0 }}
"#
    )
}

const COMPARE: &str = r#"
name: compare
target: { demo: { canary_weight: 0% } }
load: { rate: 100, timeout: 2s, requests: [ { path: /checkout } ] }
phases:
  - { name: warmup, duration: 1s }
  - { name: baseline, duration: 2s }
  - name: slow
    duration: 2s
    inject: [ { type: latency, proxy: payments, latency: 50ms } ]
  - { name: recovery, duration: 2s }
verify:
  - compare: { baseline: baseline, current: slow, metric: latency, expect: worse }
  - compare: { baseline: baseline, current: recovery, expect: same, min_effect: { latency: 50% } }
"#;

/// Runs one experiment (owning its YAML, so runs can be joined).
async fn run(yaml: String) -> ExperimentReport {
    run_yaml(&yaml).await
}

/// The checks of `kind`, at least one.
fn checks<'a>(report: &'a ExperimentReport, kind: &str) -> Vec<&'a Check> {
    let found: Vec<&Check> = report.checks.iter().filter(|c| c.kind == kind).collect();
    assert!(
        !found.is_empty(),
        "no `{kind}` check in {:#?}",
        report.checks
    );
    found
}

/// The single failed check of `kind`, whose message must contain every
/// fragment (it says what was observed).
fn assert_fails_with(report: &ExperimentReport, kind: &str, fragments: &[&str]) {
    let check = checks(report, kind)[0];
    assert!(!check.passed, "the defect went unnoticed: {check:#?}");
    let message = check.message.clone().unwrap_or_default();
    for fragment in fragments {
        assert!(
            message.contains(fragment),
            "`{fragment}` missing from the {kind} check's message: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_demo_passes_every_verifier_five_rounds_in_a_row() {
    let _cpu = CPU_HEAVY.lock().await;
    let mut wrong = Vec::new();
    for round in 1..=5 {
        let (b, c, r, p) = tokio::join!(
            run(breaker(&[])),
            run(canary(&[])),
            run(recovery(&[])),
            run(promotion(false)),
        );
        // Alone: millisecond-level latency verdicts must not be judging
        // which other experiments happened to share the two cores.
        let m = run(COMPARE.to_string()).await;
        for (report, kind) in [
            (&b, "breaker"),
            (&c, "canary"),
            (&r, "recovery"),
            (&p, "traffic_shift"),
            (&m, "compare"),
        ] {
            for check in checks(report, kind) {
                if !check.passed {
                    wrong.push(format!(
                        "round {round}: {} — {:?}",
                        check.name, check.message
                    ));
                }
            }
        }
        // The numbers behind the verdicts are in the report.
        assert!(b
            .checks
            .iter()
            .any(|c| c.measured.contains_key("closed_after_s")));
        assert!(c
            .checks
            .iter()
            .any(|c| c.measured.contains_key("rolled_back_after_s")));
        assert!(r
            .checks
            .iter()
            .any(|c| c.measured.contains_key("recovery_s")));
        assert!(checks(&m, "compare")
            .iter()
            .all(|c| c.measured.contains_key("p_value")));
    }
    assert!(
        wrong.is_empty(),
        "wrong verdicts on the healthy demo:\n{}",
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn breaker_checks_catch_a_missing_breaker_and_one_that_never_closes() {
    let _cpu = CPU_HEAVY.lock().await;
    let (missing, stuck) = tokio::join!(
        run(breaker(&["no_breaker"])),
        run(breaker(&["breaker_never_closes"])),
    );
    assert_fails_with(&missing, "breaker", &["never opened", "502×"]);
    assert_fails_with(
        &stuck,
        "breaker",
        &["never closed", "fast failures", "never reported `closed`"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_checks_catch_a_missing_and_a_slow_rollback() {
    let _cpu = CPU_HEAVY.lock().await;
    let (missing, slow) = tokio::join!(
        run(canary(&["no_rollback"])),
        run(canary(&["slow_rollback"])),
    );
    for report in [&missing, &slow] {
        assert_fails_with(
            report,
            "canary",
            &[
                "not rolled back: `v2` still served",
                "canary responses failed",
            ],
        );
        assert_eq!(checks(report, "canary")[0].measured["outcome"], 2.0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_canary_ejected_and_readmitted_by_a_passive_check_is_flapping_not_rolled_back() {
    let _cpu = CPU_HEAVY.lock().await;
    // The controller ejects v2 for 2 s, re-admits it, ejects it again: the
    // 5 s phase ends while it is out, which once read "rolled back".
    let flapping = run(canary(&["flapping_rollback"])).await;
    assert_fails_with(&flapping, "canary", &["flapping", "came back"]);
    let check = checks(&flapping, "canary")[0];
    let message = check.message.clone().unwrap_or_default();
    assert!(!message.contains("rolled back after"), "{message}");
    assert_eq!(check.measured["outcome"], 1.0, "{check:#?}");
    assert!(check.measured["returns"] >= 1.0, "{check:#?}");
    // The per-second shares show it: out (≤ 1%) and back in (several %).
    let shares: Vec<f64> = (0..5)
        .filter_map(|k| check.measured.get(&format!("share_s{k:02}")).copied())
        .collect();
    assert!(shares.iter().any(|s| *s <= 0.01), "{shares:?}");
    assert!(shares.iter().skip(1).any(|s| *s > 0.03), "{shares:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn recovery_compare_and_shift_checks_fail_when_the_system_does_not_behave() {
    let _cpu = CPU_HEAVY.lock().await;
    // Expecting the slowed phase to be the same as the baseline must fail.
    let wrong_expectation = COMPARE.replace(
        "metric: latency, expect: worse",
        "metric: latency, expect: same",
    );
    let (hung, compared, bumpy, dead) = tokio::join!(
        run(recovery(&["no_timeout"])),
        run(wrong_expectation),
        run(promotion(true)),
        run(DEAD_RECOVERY.to_string()),
    );
    for check in checks(&hung, "recovery") {
        assert!(!check.passed, "{check:#?}");
    }
    assert_fails_with(
        &dead,
        "recovery",
        &["baseline itself unhealthy", "above 5.0%"],
    );
    assert!(
        checks(&dead, "recovery")[0].measured["baseline_error_rate"] > 0.9,
        "{:#?}",
        dead.checks
    );
    assert_fails_with(
        &bumpy,
        "traffic_shift",
        &["requests failed during the switch"],
    );
    assert_fails_with(
        &hung,
        "recovery",
        &["not back to baseline", "error rate above"],
    );
    assert_fails_with(&compared, "compare", &["came out worse", "Mann–Whitney"]);
}

/// The stability loop behind the recovery criterion: the healthy demo's
/// recovery experiment, two at a time on the shared host, twelve runs, not
/// one wrong verdict. `cargo test --test tests verify:: -- --ignored` (~2 min).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a stability loop of ~2 minutes; run on demand"]
async fn recovery_verdicts_are_stable_over_twelve_healthy_runs() {
    let _cpu = CPU_HEAVY.lock().await;
    let mut times = Vec::new();
    let mut wrong = Vec::new();
    for round in 1..=6 {
        let (a, b) = tokio::join!(run(recovery(&[])), run(recovery(&[])));
        for report in [&a, &b] {
            for check in checks(report, "recovery") {
                match (check.passed, check.measured.get("recovery_s")) {
                    (true, Some(t)) => times.push(*t),
                    _ => wrong.push(format!("round {round}: {:?}", check.message)),
                }
            }
        }
    }
    println!("recovery_s over {} checks: {times:?}", times.len());
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

/// `errors: "== 0"` passes a clean phase and fails one with injected 503s,
/// naming the count; `==` works on counts.
#[tokio::test]
async fn an_errors_count_threshold_tells_a_clean_phase_from_a_failing_one() {
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        crate::load::run_yaml(
            "name: eq\ntarget: { demo: {} }\n\
             load: { rate: 50, requests: [ { path: /checkout } ] }\n\
             phases:\n  - name: ok\n    duration: 2s\n    expect: { errors: \"== 0\" }\n\
             \x20 - name: bad\n    duration: 2s\n    inject:\n\
             \x20     - { type: http_error, proxy: payments, status: 503, probability: 20% }\n\
             \x20   expect: { errors: \"== 0\" }\n",
        ),
    )
    .await
    .expect("within 30 s");
    let check = |phase: &str| {
        report
            .checks
            .iter()
            .find(|c| c.phase.as_deref() == Some(phase) && c.name == "errors == 0")
            .unwrap_or_else(|| panic!("no errors check in {phase}"))
            .clone()
    };
    assert!(check("ok").passed, "{:?}", check("ok"));
    let bad = check("bad");
    assert!(!bad.passed, "{bad:?}");
    let errors: u64 = bad.observed.parse().expect("a count");
    assert!(
        (5..=40).contains(&errors),
        "about 20 of 100 requests: {errors}"
    );
}
