//! Where reports go: `-` and `/dev/stdout`, symlinks, devices, a full disk
//! (exit 6, verdict still printed, no temp file left), and a closed stdout
//! (no panic, the command's own exit code).

use super::{faultline, run_bounded, write};
use crate::common::TestBed;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// A one-second experiment against `url` that passes when the target
/// answers (or fails when it answers with errors).
fn tiny(dir: &Path, name: &str, url: &str) -> PathBuf {
    write(
        dir,
        name,
        &format!(
            "name: tiny\ntarget: {{ url: \"{url}\" }}\nload:\n  rate: 20\n  requests:\n    - {{ path: / }}\nphases:\n  - {{ name: p, duration: 1s, expect: {{ error_rate: \"< 1%\" }} }}\n"
        ),
    )
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || run_bounded(&mut cmd, LIMIT))
        .await
        .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Names ending `.tmp` anywhere under `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if path.to_string_lossy().ends_with(".tmp") {
                found.push(path);
            }
        }
    }
    found
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_is_stdout_and_the_console_summary_moves_to_stderr() {
    let bed = TestBed::always(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = tiny(dir.path(), "tiny.yaml", &bed.url());
    let mut cmd = faultline();
    cmd.current_dir(dir.path())
        .arg("run")
        .arg(&file)
        .args(["--out", "out", "--json", "-", "--quiet"]);
    let out = run(cmd).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is the JSON report alone ({e}): {}",
            text(&out.stdout)
        )
    });
    assert_eq!(json["status"], "passed");
    assert!(stderr.contains("PASSED"), "summary on stderr: {stderr}");
    assert!(!dir.path().join("-").exists(), "no file named `-`");

    // `report` re-renders to stdout too: JUnit and Markdown.
    let saved = dir.path().join("saved.json");
    std::fs::write(&saved, &out.stdout).expect("save the report");
    for (flag, starts) in [("--junit", "<?xml"), ("--summary-md", "## ")] {
        let mut cmd = faultline();
        cmd.current_dir(dir.path())
            .arg("report")
            .arg(&saved)
            .args([flag, "-"]);
        let out = run(cmd).await;
        assert_eq!(out.status.code(), Some(0), "{flag}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.starts_with(starts), "{flag} on stdout: {stdout}");
        assert!(text(&out.stderr).contains("PASSED"), "{flag}");
    }
    // Two reports on one stdout: refused before anything runs.
    let mut cmd = faultline();
    cmd.current_dir(dir.path()).arg("report").arg(&saved).args([
        "--junit",
        "-",
        "--summary-md",
        "-",
    ]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    assert!(!dir.path().join("-").exists(), "no file named `-`");
}

/// Every report path a symlink: the targets are written, the links stay
/// links (`/dev/stdout` was replaced by a regular file this way, as root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symlinks_and_dev_stdout_are_written_through_and_stay_links() {
    let bed = TestBed::always(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = tiny(dir.path(), "tiny.yaml", &bed.url());
    let mut links = Vec::new();
    for name in ["report.json", "report.html", "junit.xml", "summary.md"] {
        let target = dir.path().join(format!("real-{name}"));
        std::fs::write(&target, "old").expect("seed the target");
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(format!("real-{name}"), &link).expect("relative symlink");
        links.push((link, target));
    }
    let mut cmd = faultline();
    cmd.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--json")
        .arg(&links[0].0)
        .arg("--html")
        .arg(&links[1].0)
        .arg("--junit")
        .arg(&links[2].0)
        .arg("--summary-md")
        .arg(&links[3].0)
        .arg("--quiet");
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for (link, target) in &links {
        assert!(is_symlink(link), "{} is still a link", link.display());
        let written = std::fs::read_to_string(target).expect("target readable");
        assert!(written.len() > 100, "{}: {written}", target.display());
    }
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );

    // The real thing: as root, the old rename replaced the system's link.
    let dev_stdout = Path::new("/dev/stdout");
    let was_link = is_symlink(dev_stdout);
    let mut cmd = faultline();
    cmd.arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path().join("out2"))
        .args(["--json", "/dev/stdout", "--quiet"]);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the report arrives on stdout ({e}): {}", text(&out.stdout)));
    assert_eq!(json["status"], "passed");
    assert!(text(&out.stderr).contains("PASSED"), "summary on stderr");
    assert_eq!(is_symlink(dev_stdout), was_link, "/dev/stdout is untouched");
    assert!(
        std::fs::read_dir("/dev")
            .expect("/dev")
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().ends_with(".tmp")),
        "no temp file in /dev"
    );
}

/// A report that cannot be written: exit 6 when the run passed (never 2,
/// which says the input was wrong), the verdict printed anyway, a failed
/// run still exits 1, and no temp file left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_report_is_exit_6_with_the_verdict_printed() {
    let ok = TestBed::always(200);
    let bad = TestBed::always(503);
    let dir = tempfile::tempdir().expect("temp dir");
    let passing = tiny(dir.path(), "passing.yaml", &ok.url());
    let failing = tiny(dir.path(), "failing.yaml", &bad.url());
    for (file, want) in [(&passing, 6), (&failing, 1)] {
        let mut cmd = faultline();
        cmd.arg("run")
            .arg(file)
            .arg("--out")
            .arg(dir.path().join("out"))
            .args(["--json", "/dev/full", "--quiet"]);
        let out = run(cmd).await;
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(want),
            "{}: {stderr}",
            file.display()
        );
        let verdict = if want == 6 { "PASSED" } else { "FAILED" };
        assert!(text(&out.stdout).contains(verdict), "{}", text(&out.stdout));
        assert!(
            stderr.contains("cannot write the JSON report to /dev/full"),
            "{stderr}"
        );
    }
    // The HTML report went to its default place, the JSON nowhere.
    assert!(dir.path().join("out/report.html").exists());
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}

/// A real full filesystem: a 64 KiB tmpfs, filled, in a mount namespace of
/// the test's own (so nothing is mounted on the host). Needs root and
/// `unshare`; says so and returns otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_exit_6_and_leaves_no_temp_files() {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the effective user.
    if std::fs::metadata("/proc/self").map_or(true, |m| m.uid() != 0) {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let bed = TestBed::always(200);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = tiny(dir.path(), "tiny.yaml", &bed.url());
    let mount = dir.path().join("full");
    std::fs::create_dir(&mount).expect("mount point");
    let script = r#"mount -t tmpfs -o size=64k faultline-test "$1" || exit 99
mkdir "$1/out" || exit 99
head -c 1048576 /dev/zero > "$1/filler" 2>/dev/null
"$2" run "$3" --out "$1/out" --quiet
code=$?
echo "--- left:"
ls -A "$1/out"
exit $code"#;
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
    ])
    .arg(&mount)
    .arg(env!("CARGO_BIN_EXE_faultline"))
    .arg(&file)
    .stdin(Stdio::null());
    let out = run(cmd).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    if out.status.code() == Some(99) || stderr.contains("unshare failed") {
        eprintln!("skipped: cannot mount a tmpfs here: {stderr}");
        return;
    }
    assert_eq!(out.status.code(), Some(6), "{stdout}\n{stderr}");
    let (console, left) = stdout.split_once("--- left:").expect("the script's marker");
    assert!(console.contains("PASSED"), "verdict printed: {console}");
    assert!(
        stderr.contains("No space left on device"),
        "says why: {stderr}"
    );
    assert!(
        !left.contains(".tmp"),
        "no temp file left on the full disk: {left}"
    );
}

/// stdout closed before faultline writes anything: no panic (exit 101),
/// the command's own code instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_never_panics_and_keeps_the_exit_code() {
    let ok = TestBed::always(200);
    let bad = TestBed::always(503);
    let dir = tempfile::tempdir().expect("temp dir");
    let passing = tiny(dir.path(), "passing.yaml", &ok.url());
    let failing = tiny(dir.path(), "failing.yaml", &bad.url());
    let out_dir = dir.path().join("out");
    let run_args = |file: &Path, quiet: bool| -> Vec<String> {
        let mut args = vec![
            "run".to_string(),
            file.display().to_string(),
            "--out".into(),
            out_dir.display().to_string(),
        ];
        if quiet {
            args.push("--quiet".into());
        }
        args
    };
    let cases: Vec<(Vec<String>, i32)> = vec![
        (vec!["schema".into()], 0),
        (vec!["schema".into(), "--markdown".into()], 0),
        (vec!["completions".into(), "bash".into()], 0),
        (vec!["validate".into(), passing.display().to_string()], 0),
        (vec!["list".into(), passing.display().to_string()], 0),
        (run_args(&passing, true), 0),
        (run_args(&passing, false), 0),
        (run_args(&failing, true), 1),
    ];
    for (args, want) in cases {
        let out = tokio::task::spawn_blocking(move || {
            // A pipe whose read end is already closed: every write is EPIPE.
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            let mut child = faultline()
                .args(&args)
                .stdout(writer)
                .stderr(Stdio::piped())
                .spawn()
                .expect("start faultline");
            let deadline = std::time::Instant::now() + LIMIT;
            while child.try_wait().expect("poll").is_none() {
                if std::time::Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("{args:?} did not finish");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (args, child.wait_with_output().expect("output"))
        })
        .await
        .expect("join");
        let (args, out) = out;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(want), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
