//! The `command` probe with a real `sh`.

use std::time::{Duration, Instant};

use faultline::config::model_verify::{CommandProbe, ProbeKind};
use faultline::probes::{observe, Observation, ProbeContext};

use super::{decl, within};
use crate::common::processes_with;

async fn run(run: &str, exit_code: i32, stdout: Option<&str>, timeout: Duration) -> Observation {
    let probe = CommandProbe {
        run: run.into(),
        exit_code,
        stdout: stdout.map(str::to_string),
    };
    observe(
        &decl(ProbeKind::Command(probe), timeout),
        &ProbeContext::default(),
    )
    .await
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn command_probe_passes_on_the_expected_exit_code() {
    within(async {
        let seen = run("exit 3", 3, None, TIMEOUT).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.value.as_deref(), Some("exit 3"));

        let seen = run(
            "echo degraded; echo 'disk full' >&2; exit 3",
            0,
            None,
            TIMEOUT,
        )
        .await;
        assert!(!seen.passed);
        assert_eq!(seen.value.as_deref(), Some("exit 3: degraded"));
        assert_eq!(
            seen.reason,
            "expected exit code 0, got exit code 3 (stderr: disk full)"
        );

        let seen = run("no-such-command-for-faultline", 0, None, TIMEOUT).await;
        assert!(!seen.passed);
        assert!(seen.reason.contains("got exit code 127"), "{}", seen.reason);
        assert!(seen.reason.contains("not found"), "{}", seen.reason);
    })
    .await
}

#[tokio::test]
async fn command_probe_stdout_must_match_the_pattern() {
    within(async {
        let seen = run("echo 'state: closed'", 0, Some("^state: closed$"), TIMEOUT).await;
        assert!(seen.passed, "{seen:?}");
        assert_eq!(seen.value.as_deref(), Some("exit 0: state: closed"));
        assert_eq!(seen.reason, "exit code 0, stdout matches /^state: closed$/");

        let seen = run("echo 'state: open'", 0, Some("closed"), TIMEOUT).await;
        assert!(!seen.passed);
        assert_eq!(seen.reason, "stdout does not match /closed/");

        let seen = run("echo never", 0, Some("[unclosed"), TIMEOUT).await;
        assert!(!seen.passed);
        assert!(
            seen.reason.starts_with("invalid regular expression"),
            "{}",
            seen.reason
        );
        assert_eq!(seen.value, None, "the command is not run");
    })
    .await
}

#[tokio::test]
async fn command_probe_timeout_kills_the_whole_process_group() {
    within(async {
        // Distinctive arguments so the check finds only this test's processes.
        let marker = "sleep 30.4171";
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let seen = run(
            &format!("{marker} & {marker}; echo never"),
            0,
            None,
            timeout,
        )
        .await;
        assert!(!seen.passed);
        assert_eq!(
            seen.reason,
            "timed out after 300ms (its process group was killed)"
        );
        assert!(
            start.elapsed() < timeout + Duration::from_secs(1),
            "took {:?}, expected 300ms + at most 1s of slack",
            start.elapsed()
        );
        let deadline = Instant::now() + Duration::from_secs(3);
        while !processes_with(marker).is_empty() {
            assert!(
                Instant::now() < deadline,
                "left behind: {:?}",
                processes_with(marker)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}
