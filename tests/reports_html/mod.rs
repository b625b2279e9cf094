//! The HTML report of a real run: one self-contained page, every user
//! string escaped, three charts per experiment, and a page that a real
//! browser (Debian's headless chromium) parses and draws.

use crate::common::TestBed;
use faultline::config;
use faultline::journal::RunReport;
use faultline::report::{html, json};
use faultline::runner::{self, NoProgress, Planned, RunSettings, StopSignals};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The whole run is about 10 s; this bounds a hung one.
const RUN_LIMIT: Duration = Duration::from_secs(90);
const BROWSER_LIMIT: Duration = Duration::from_secs(60);
const CHROMIUM: &str = "/usr/bin/chromium";
const HOSTILE_NAME: &str = r#"<script>alert(1)</script> & "quotes""#;

/// A demo run with a latency fault in its middle phase: fault markers in
/// every chart, one failing check.
const DEMO_WITH_FAULT: &str = r#"
name: checkout-under-payments-latency
description: Checkout slows down while payments is slow, and recovers.
tags: [demo, latency]
target: { demo: {} }
load:
  rate: 40
  timeout: 1s
  requests:
    - { path: /checkout }
phases:
  - { name: baseline, duration: 2s, expect: { p99: "< 40ms", error_rate: "< 1%" } }
  - name: payments-slow
    duration: 2s
    inject:
      - { type: latency, proxy: payments, latency: 50ms }
    expect: { p99: "< 20ms" }
  - { name: recovery, duration: 2s, expect: { p99: "< 40ms" } }
"#;

/// Markup in names: the experiment's, and a phase's (which the charts draw).
fn hostile(url: &str) -> String {
    format!(
        r#"
name: '{HOSTILE_NAME}'
target: {{ url: "{url}" }}
load:
  rate: 20
  requests:
    - {{ path: / }}
phases:
  - name: '<img src=x onerror=alert(2)>'
    duration: 2s
    expect: {{ p99: "< 1ms" }}
"#
    )
}

/// A target that never becomes ready: the experiment errors before any load.
fn never_ready(url: &str) -> String {
    format!(
        r#"
name: never-ready
target:
  command: "sleep 5"
  url: "{url}"
  ready: {{ path: /health, timeout: 1s, interval: 100ms }}
load:
  rate: 10
  requests:
    - {{ path: / }}
phases:
  - {{ name: steady, duration: 1s }}
"#
    )
}

async fn run(yamls: &[String]) -> RunReport {
    let experiments = yamls
        .iter()
        .flat_map(|yaml| {
            config::load_str(yaml, Path::new("inline.yaml"))
                .unwrap_or_else(|e| panic!("test YAML is invalid:\n{e}"))
                .experiments
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = RunSettings {
        seed: 7,
        out_dir: dir.path().to_path_buf(),
        files: vec!["inline.yaml".into()],
        fail_fast: false,
        live: None,
    };
    tokio::time::timeout(
        RUN_LIMIT,
        runner::run(
            &Planned::all(experiments),
            &settings,
            &StopSignals::new(),
            Arc::new(NoProgress),
        ),
    )
    .await
    .expect("the run finished within the test limit")
}

/// Every tag of the page (`<...>`). Escaped text holds no `<`, so a name
/// that escaped escaping would show up here as a tag.
fn tags(html: &str) -> Vec<&str> {
    html.match_indices('<')
        .map(|(i, _)| {
            let end = html[i..].find('>').map_or(html.len(), |e| i + e + 1);
            &html[i..end]
        })
        .collect()
}

fn assert_self_contained(html: &str) {
    for tag in tags(html) {
        let lower = tag.to_ascii_lowercase();
        assert!(!lower.contains("src="), "a tag loads a resource: {tag}");
        assert!(!lower.starts_with("<script"), "a script tag: {tag}");
        assert!(!lower.starts_with("<link"), "a link tag: {tag}");
        if let Some(i) = lower.find("href=") {
            assert!(
                lower[i..].starts_with("href=\"#"),
                "href outside the page: {tag}"
            );
        }
        let without_svg_ns = lower.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !without_svg_ns.contains("http:") && !without_svg_ns.contains("https:"),
            "a URL in a tag: {tag}"
        );
    }
    let style = &html
        [html.find("<style>").expect("inline CSS")..html.find("</style>").expect("end of CSS")];
    assert!(
        !style.contains("url(") && !style.contains("@import"),
        "CSS loads something"
    );
}

/// The experiment sections, in order.
fn sections(html: &str) -> Vec<&str> {
    html.split("<section class=\"card experiment")
        .skip(1)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_renders_as_one_safe_page_that_a_browser_draws() {
    let _turn = crate::common::CPU_HEAVY.lock().await;
    let bed = TestBed::fixed_delay(Duration::from_millis(2));
    let unready = TestBed::always(503);
    let report = run(&[
        DEMO_WITH_FAULT.to_string(),
        hostile(&bed.url()),
        never_ready(&unready.url()),
    ])
    .await;
    let [demo, named, errored] = report.experiments.as_slice() else {
        panic!("three experiments: {report:#?}");
    };
    assert!(
        demo.faults.iter().any(|f| f.action == "apply") && !demo.series.is_empty(),
        "the demo run applied its fault and has a series: {demo:#?}"
    );
    assert!(!named.series.is_empty(), "{named:#?}");
    assert!(
        errored.series.is_empty(),
        "never-ready ran no load: {errored:#?}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("out/report.html");
    html::write(&report, &path).expect("write the HTML report");
    let page = std::fs::read_to_string(&path).expect("read the report back");

    // The page reads the journal and nothing else: the JSON round trip renders the same.
    let json_path = dir.path().join("report.json");
    json::write(&report, &json_path).expect("write JSON");
    let reread = json::read(&json_path).expect("read JSON");
    assert_eq!(html::render(&reread).expect("render"), page);

    // One chart per metric per experiment that ran — latency, throughput and
    // error rate, plus CPU and memory when telemetry was sampled (runs of at
    // least a second); none without load.
    let parts = sections(&page);
    assert_eq!(parts.len(), 3);
    let mut charts = 0;
    for part in &parts[..2] {
        let sampled = part.contains("data-chart=\"cpu\"");
        let expected = if sampled { 5 } else { 3 };
        assert_eq!(part.matches("data-chart=").count(), expected, "{part}");
        let mut ids = vec!["latency", "throughput", "error_rate"];
        if sampled {
            ids.extend(["cpu", "memory"]);
        }
        for id in ids {
            assert_eq!(part.matches(&format!("data-chart=\"{id}\"")).count(), 1);
        }
        charts += expected;
    }
    let demo_charts = parts[0].matches("data-chart=").count();
    assert_eq!(parts[2].matches("data-chart=").count(), 0);
    assert!(parts[2].contains("No load ran"));

    // The fault is marked in every chart of the demo experiment.
    let kind = &demo.faults[0].kind;
    assert_eq!(
        parts[0].matches(&format!(">\n+{kind}\n</text>")).count(),
        demo_charts,
        "apply markers"
    );
    assert_eq!(
        parts[0]
            .matches(&format!(">\n\u{2212}{kind}\n</text>"))
            .count(),
        demo_charts,
        "remove markers"
    );
    for phase in ["baseline", "payments-slow", "recovery"] {
        assert!(
            parts[0].contains(&format!(">\n{phase}\n</text>")),
            "band {phase}"
        );
    }
    assert!(parts[0].contains("<span class=\"verdict fail\">FAIL</span>"));
    assert!(parts[0].contains("<span class=\"verdict pass\">PASS</span>"));

    // Hostile names: escaped in the HTML and in the SVG, never markup.
    assert_self_contained(&page);
    assert!(!page.to_ascii_lowercase().contains("<script"));
    assert!(!page.to_ascii_lowercase().contains("<img"));
    assert_eq!(
        page.matches("alert(1)").count(),
        page.matches("&lt;script&gt;alert(1)").count(),
        "every occurrence of the experiment name is escaped"
    );
    assert!(page.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;quotes&quot;"));
    assert!(
        parts[1].contains(">\n&lt;img src=x onerror=alert(2)&gt;\n</text>"),
        "phase band label, escaped"
    );

    // A real browser parses it: every chart is an SVG element in its DOM, no script.
    let dom = chromium(&["--dump-dom".into(), file_url(&path)], dir.path());
    assert_eq!(
        dom.matches("data-chart=").count(),
        charts,
        "charts in the parsed DOM"
    );
    assert_eq!(
        dom.matches("<svg ").count(),
        charts,
        "SVGs in the parsed DOM"
    );
    assert!(!dom.to_ascii_lowercase().contains("<script"));

    // ...and draws it: a screenshot well above a blank page's size.
    let shot = dir.path().join("shot.png");
    screenshot(&path, &shot, dir.path());
    let blank_html = dir.path().join("blank.html");
    std::fs::write(&blank_html, "<!DOCTYPE html><html><body></body></html>").expect("blank page");
    let blank = dir.path().join("blank.png");
    screenshot(&blank_html, &blank, dir.path());
    let (size, blank_size) = (file_size(&shot), file_size(&blank));
    assert!(
        size > 3 * blank_size,
        "the report's screenshot ({size} bytes) should be far larger than a blank page's ({blank_size} bytes)"
    );
}

/// Regenerates `docs/report-screenshot.png` from a demo run:
/// `cargo test reports_html::regenerate -- --ignored`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes docs/report-screenshot.png; run by hand"]
async fn regenerate_the_readme_screenshot() {
    let report = run(&[DEMO_WITH_FAULT.to_string()]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("report.html");
    html::write(&report, &path).expect("write the HTML report");
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-screenshot.png");
    std::fs::create_dir_all(out.parent().expect("docs dir")).expect("create docs/");
    screenshot(&path, &out, dir.path());
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .len()
}

fn screenshot(page: &Path, png: &Path, scratch: &Path) {
    chromium(
        &[
            "--window-size=1280,2000".into(),
            format!("--screenshot={}", png.display()),
            file_url(page),
        ],
        scratch,
    );
    assert!(
        png.exists(),
        "chromium wrote no screenshot at {}",
        png.display()
    );
}

/// Runs headless chromium with a fresh profile and no network activity of
/// its own; returns its stdout. Installs chromium first if it is missing.
fn chromium(args: &[String], scratch: &Path) -> String {
    ensure_chromium();
    let profile = tempfile::tempdir_in(scratch).expect("profile dir");
    let stdout_path = profile.path().join("stdout");
    let stderr_path = profile.path().join("stderr");
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
    let deadline = Instant::now() + BROWSER_LIMIT;
    let status = loop {
        match child.try_wait().expect("wait for chromium") {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromium did not finish within {BROWSER_LIMIT:?}; stderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    assert!(
        status.success(),
        "chromium {args:?} failed ({status}); stderr:\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    std::fs::read_to_string(&stdout_path).expect("chromium's stdout")
}

/// Installs Debian's chromium when it is missing (tests run as root), once
/// per test binary; fails with the installer's output if that is impossible.
fn ensure_chromium() {
    static INSTALL: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if Path::new(CHROMIUM).exists() {
        return;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| e.to_string())
            .and_then(|out| {
                if out.status.success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{}\n{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    ))
                }
            })
    };
    let installed = apt(&["update"]).and_then(|()| apt(&["install", "-y", "chromium"]));
    if let Err(output) = installed {
        panic!(
            "{CHROMIUM} is missing and `apt-get install -y chromium` failed; \
             install Debian's chromium to run the HTML report's browser test:\n{output}"
        );
    }
    assert!(
        PathBuf::from(CHROMIUM).exists(),
        "apt-get installed chromium but {CHROMIUM} is still missing"
    );
}
