//! `--color auto|always|never` and `NO_COLOR` on the console report, with a
//! real run (a passing and a failing experiment against loopback servers)
//! re-rendered by `faultline report`, and a real terminal from `script(1)`.

use super::{faultline, run_bounded, write};
use crate::common::TestBed;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const GREEN_PASS: &str = "\x1b[32mPASS\x1b[0m";
const RED_FAIL: &str = "\x1b[31mFAIL\x1b[0m";

/// One second of load on `url`, expecting no errors.
fn tiny(dir: &Path, name: &str, url: &str) {
    write(
        dir,
        &format!("{name}.yaml"),
        &format!(
            "name: {name}\ntarget: {{ url: \"{url}\" }}\nload:\n  rate: 20\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: p, duration: 1s, expect: {{ error_rate: \"< 1%\" }} }}\n"
        ),
    );
}

async fn bounded(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || run_bounded(&mut cmd, LIMIT))
        .await
        .expect("join")
}

fn console(dir: &Path, color: Option<&str>, no_color: Option<&str>) -> Command {
    let mut cmd = faultline();
    cmd.current_dir(dir)
        .env_remove("NO_COLOR")
        .args(["report", "out/report.json"]);
    if let Some(when) = color {
        cmd.args(["--color", when]);
    }
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_report_is_coloured_only_when_asked_or_on_a_terminal() {
    let ok = TestBed::always(200);
    let bad = TestBed::always(503);
    let dir = tempfile::tempdir().expect("temp dir");
    tiny(dir.path(), "healthy", &ok.url());
    tiny(dir.path(), "broken", &bad.url());
    let mut cmd = faultline();
    cmd.current_dir(dir.path()).args([
        "run",
        "healthy.yaml",
        "broken.yaml",
        "--out",
        "out",
        "--color",
        "always",
    ]);
    let run = bounded(cmd).await;
    let text = String::from_utf8_lossy(&run.stdout).into_owned();
    assert_eq!(run.status.code(), Some(1), "{text}");
    // PASS green, FAIL red, the run's verdict red, on a pipe because asked.
    assert!(
        text.contains(&format!("{GREEN_PASS}  p  error_rate")),
        "{text:?}"
    );
    assert!(
        text.contains(&format!("{RED_FAIL}  p  error_rate")),
        "{text:?}"
    );
    assert!(
        text.contains("\x1b[31mFAILED\x1b[0m: 2 experiments"),
        "{text:?}"
    );
    assert!(text.contains("healthy  \x1b[32mPASSED\x1b[0m"), "{text:?}");

    // Re-rendered: always (even under NO_COLOR) colours; never, NO_COLOR
    // and a pipe do not.
    let cases: &[(&str, Option<&str>, Option<&str>, bool)] = &[
        ("always on a pipe", Some("always"), None, true),
        ("always overrides NO_COLOR", Some("always"), Some("1"), true),
        ("never", Some("never"), None, false),
        ("auto on a pipe", None, None, false),
        ("auto under NO_COLOR", Some("auto"), Some("1"), false),
    ];
    for (case, color, no_color, coloured) in cases {
        let out = bounded(console(dir.path(), *color, *no_color)).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(1), "{case}: {text}");
        assert!(text.contains("FAIL"), "{case}: {text}");
        assert_eq!(text.contains(GREEN_PASS), *coloured, "{case}: {text:?}");
        assert_eq!(text.contains('\x1b'), *coloured, "{case}: {text:?}");
    }

    // A real terminal (script(1) runs the command on a pty): auto colours
    // it, and NO_COLOR (non-empty) turns that off.
    let bin = env!("CARGO_BIN_EXE_faultline");
    for (no_color, coloured) in [(None, true), (Some("1"), false), (Some(""), true)] {
        let mut cmd = Command::new("script");
        cmd.current_dir(dir.path()).env_remove("NO_COLOR").args([
            "-qec",
            &format!("{bin} report out/report.json"),
            "/dev/null",
        ]);
        if let Some(value) = no_color {
            cmd.env("NO_COLOR", value);
        }
        let out = bounded(cmd).await;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(text.contains("FAIL"), "NO_COLOR={no_color:?}: {text}");
        assert_eq!(
            text.contains(GREEN_PASS),
            coloured,
            "NO_COLOR={no_color:?} on a terminal: {text:?}"
        );
    }
    ok.stop().await;
    bad.stop().await;
}
