//! The Markdown summary (`--summary-md FILE`, and GitHub's job summary):
//! a compact GitHub-flavoured digest of the run for a pull request or CI page.
//!
//! Every interpolated string goes through [`inline`], so a name with `|`, a
//! newline or HTML cannot break a table or inject markup.

use crate::journal::{ExperimentReport, ExperimentStatus, PhaseReport, RunReport, RunStatus};
use crate::metrics::LatencySummary;
use crate::report::console::format_ms;
use crate::report::junit::failure_message;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

/// The environment variable GitHub Actions sets to the job summary file.
pub const GITHUB_STEP_SUMMARY: &str = "GITHUB_STEP_SUMMARY";

/// Renders the run as a GitHub-flavoured Markdown summary.
pub fn render(report: &RunReport) -> String {
    let mut out = String::new();
    if report.rollback_failed {
        rollback_warning(&mut out, report);
    }
    title(&mut out, report);
    experiments_table(&mut out, report);
    for exp in &report.experiments {
        experiment_section(&mut out, exp);
    }
    out
}

/// Appends the summary to the file named by `GITHUB_STEP_SUMMARY`. Returns
/// false (and writes nothing) when the variable is not set, i.e. outside
/// GitHub Actions.
pub fn append_github_step_summary(report: &RunReport) -> std::io::Result<bool> {
    match std::env::var_os(GITHUB_STEP_SUMMARY).filter(|p| !p.is_empty()) {
        Some(path) => append_to(report, Path::new(&path)).map(|()| true),
        None => Ok(false),
    }
}

/// Appends the summary to `path` (created if missing): other steps of the
/// job write to the same file, so it is never truncated.
pub fn append_to(report: &RunReport, path: &Path) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(render(report).as_bytes())?;
    file.write_all(b"\n")
}

fn rollback_warning(out: &mut String, report: &RunReport) {
    out.push_str(
        "> [!CAUTION]\n> **ROLLBACK FAILED**: a fault could not be removed; the system may be left degraded.\n",
    );
    for exp in &report.experiments {
        for f in exp.faults.iter().filter(|f| f.action == "remove" && !f.ok) {
            let _ = writeln!(
                out,
                "> - {}: {} (phase {}): {}",
                inline(&exp.name),
                inline(&f.fault),
                inline(&f.phase),
                inline(f.error.as_deref().unwrap_or("failed"))
            );
        }
    }
    out.push('\n');
}

fn title(out: &mut String, report: &RunReport) {
    let s = &report.summary;
    let status = match report.status {
        RunStatus::Passed => "PASSED",
        RunStatus::Failed => "FAILED",
        RunStatus::Error => "ERROR",
        RunStatus::Aborted => "ABORTED",
        RunStatus::RollbackFailed => "ROLLBACK FAILED",
    };
    let name = report
        .suite
        .as_deref()
        .map_or(String::new(), |s| format!(" {}", inline(s)));
    let _ = writeln!(
        out,
        "## faultline{name}: {status}: {}; {} of {} checks passed\n",
        s.counts_text(),
        s.checks.saturating_sub(s.checks_failed),
        s.checks,
    );
    let mut facts = vec![
        format!("seed {}", report.seed),
        format!("{:.1}s", report.duration_s),
        format!("exit code {}", report.exit_code),
    ];
    if !report.run_id.is_empty() {
        facts.push(format!("run {}", inline(&report.run_id)));
    }
    if let Some(shard) = &report.shard {
        facts.push(format!("shard {}", inline(shard)));
    }
    let _ = writeln!(out, "{}\n", facts.join(" · "));
}

fn experiments_table(out: &mut String, report: &RunReport) {
    if report.experiments.is_empty() {
        return;
    }
    let rows = report.experiments.iter().map(|e| {
        let passed = e.checks.iter().filter(|c| c.passed).count();
        vec![
            inline(&e.name),
            status_word(e).to_string(),
            format!("{:.1}s", e.duration_s),
            format!("{passed}/{}", e.checks.len()),
        ]
    });
    table(
        out,
        &["experiment", "status", "duration", "checks passed"],
        &[false, false, true, true],
        rows,
    );
}

fn experiment_section(out: &mut String, exp: &ExperimentReport) {
    let _ = writeln!(out, "### {}: {}\n", inline(&exp.name), status_word(exp));
    if let Some(reason) = &exp.error {
        let _ = writeln!(out, "{}: {}\n", exp.status.as_str(), inline(reason));
    }
    if !exp.phases.is_empty() {
        phases_table(out, &exp.phases);
    }
    let failed: Vec<_> = exp.checks.iter().filter(|c| !c.passed).collect();
    for c in &failed {
        let mut at = Vec::new();
        if let Some(phase) = &c.phase {
            at.push(format!("phase {}", inline(phase)));
        }
        if let Some(window) = &c.window {
            at.push(format!("window {}", inline(window)));
        }
        if !c.faults.is_empty() {
            at.push(format!("faults {}", inline(&c.faults.join("; "))));
        }
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" ({})", at.join(", "))
        };
        let _ = writeln!(
            out,
            "- FAIL **{}**{at}: {}",
            inline(&c.name),
            inline(&failure_message(c))
        );
    }
    if !failed.is_empty() {
        out.push('\n');
    }
}

fn phases_table(out: &mut String, phases: &[PhaseReport]) {
    let rows = phases.iter().flat_map(|p| {
        let lat = |f: fn(&LatencySummary) -> f64| {
            p.latency_ms
                .as_ref()
                .map_or("-".into(), |l| format_ms(f(l)))
        };
        let mut name = inline(&p.name);
        if !p.completed {
            name.push_str(" (cut)");
        }
        let row = vec![
            name,
            p.requests.to_string(),
            match p.target_rate {
                Some(t) => format!("{:.1}/{t:.0}", p.rate),
                None => format!("{:.1}", p.rate),
            },
            lat(|l| l.p50),
            lat(|l| l.p95),
            lat(|l| l.p99),
            format!("{:.2}%", p.error_rate * 100.0),
        ];
        // Per-version rows under their phase, when the run read versions.
        let versions = p.versions.iter().map(|v| {
            let lat = |f: fn(&LatencySummary) -> f64| {
                v.latency_ms
                    .as_ref()
                    .map_or("-".into(), |l| format_ms(f(l)))
            };
            vec![
                format!("↳ {}", inline(&super::console::version_label(v))),
                v.requests.to_string(),
                format!("{:.1}", v.rate),
                lat(|l| l.p50),
                lat(|l| l.p95),
                lat(|l| l.p99),
                format!("{:.2}%", v.error_rate * 100.0),
            ]
        });
        std::iter::once(row).chain(versions).collect::<Vec<_>>()
    });
    table(
        out,
        &[
            "phase",
            "requests",
            "rate/s",
            "p50",
            "p95",
            "p99",
            "error rate",
        ],
        &[false, true, true, true, true, true, true],
        rows,
    );
}

/// A GFM table; `right[i]` right-aligns column `i`. Cells must already be escaped.
fn table(
    out: &mut String,
    header: &[&str],
    right: &[bool],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let rules: Vec<&str> = right
        .iter()
        .map(|&r| if r { "---:" } else { "---" })
        .collect();
    let _ = writeln!(out, "| {} |", rules.join(" | "));
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

/// PASS, FAIL, ERROR, ABORTED, SKIPPED.
fn status_word(exp: &ExperimentReport) -> &'static str {
    match exp.status {
        ExperimentStatus::Passed => "PASS",
        ExperimentStatus::Failed => "FAIL",
        ExperimentStatus::Error => "ERROR",
        ExperimentStatus::Aborted => "ABORTED",
        ExperimentStatus::Skipped => "SKIPPED",
    }
}

/// Escapes text for one line of Markdown, including a table cell:
/// backslashes and `|` are backslash-escaped (GFM splits rows on unescaped
/// pipes), `&`, `<` and `>` become entities (no HTML gets through), and line
/// breaks become `<br>` so a cell stays on its row.
pub fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("<br>");
            }
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::junit::tests::{sample, HOSTILE};

    /// The cells of a GFM table row, split on unescaped pipes as GitHub does.
    fn cells(row: &str) -> Vec<String> {
        let inner = row.trim().trim_start_matches('|').trim_end_matches('|');
        let mut cells = vec![String::new()];
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let last = cells.last_mut().expect("a cell");
                    last.push(c);
                    last.extend(chars.next());
                }
                '|' => cells.push(String::new()),
                c => cells.last_mut().expect("a cell").push(c),
            }
        }
        cells.iter().map(|c| c.trim().to_string()).collect()
    }

    #[test]
    fn inline_text_cannot_break_a_table_or_inject_html() {
        assert_eq!(inline("a|b"), "a\\|b");
        assert_eq!(inline("one\ntwo\r\nthree"), "one<br>two<br>three");
        assert_eq!(inline("<script>&"), "&lt;script&gt;&amp;");
        // A trailing backslash must not swallow the escape of the next pipe.
        assert_eq!(inline("a\\|b"), "a\\\\\\|b");
    }

    #[test]
    fn a_hostile_experiment_name_stays_in_its_cell() {
        let mut report = sample();
        report.experiments[3].name = format!("{HOSTILE}\nsecond line \\");
        let md = render(&report);
        let row = md
            .lines()
            .find(|l| l.starts_with("| &lt;script&gt;"))
            .unwrap_or_else(|| panic!("the hostile row in:\n{md}"));
        let cells = cells(row);
        assert_eq!(cells.len(), 4, "{row}");
        assert_eq!(cells[1], "ERROR");
        assert_eq!(cells[3], "0/0");
        assert!(!md.contains("<script"), "{md}");
    }

    #[test]
    fn the_summary_has_a_title_an_experiment_table_and_phase_tables() {
        let md = render(&sample());
        let first = md.lines().next().expect("a title");
        assert_eq!(
            first,
            "## faultline nightly.v2: FAILED: 4 experiments: 1 passed, 1 failed, 1 error, 0 aborted, 1 skipped; 2 of 3 checks passed"
        );
        assert!(md.contains("| checkout | PASS | 12.5s | 1/1 |"), "{md}");
        assert!(
            md.contains("| latency.fault | FAIL | 12.5s | 1/2 |"),
            "{md}"
        );
        assert!(md.contains("| skipped-one | SKIPPED |"), "{md}");
        assert!(
            md.contains("| phase | requests | rate/s | p50 | p95 | p99 | error rate |"),
            "{md}"
        );
        assert!(
            md.contains("| fault.1 | 400 | 40.0/40 | 2.4ms | 3.4ms | 250ms | 1.00% |"),
            "{md}"
        );
        assert!(
            md.contains("skipped: filtered out by --skip-tag slow"),
            "{md}"
        );
    }

    #[test]
    fn failed_checks_are_listed_with_expected_and_observed() {
        let md = render(&sample());
        assert!(
            md.contains(
                "- FAIL **p99 &lt; 100ms** (phase fault.1, window 5.0s–12.5s, faults latency 200ms; jitter 20ms): \
                 expected &lt; 100ms, observed 250.3ms; over by 150.3ms"
            ),
            "{md}"
        );
        assert!(
            !md.contains("FAIL **rate_achieved**"),
            "passed checks are not listed: {md}"
        );
    }

    #[test]
    fn a_rollback_failure_comes_before_everything() {
        let mut report = sample();
        report.rollback_failed = true;
        report.status = RunStatus::RollbackFailed;
        let md = render(&report);
        assert!(
            md.starts_with("> [!CAUTION]\n> **ROLLBACK FAILED**"),
            "{md}"
        );
        assert!(
            md.contains("## faultline nightly.v2: ROLLBACK FAILED:"),
            "{md}"
        );
    }

    #[test]
    fn append_to_adds_to_what_other_steps_wrote() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "earlier step\n").expect("seeded");
        append_to(&sample(), &path).expect("appended");
        append_to(&sample(), &path).expect("appended again");
        let text = std::fs::read_to_string(&path).expect("readable");
        assert!(text.starts_with("earlier step\n## faultline"), "{text}");
        assert_eq!(text.matches("## faultline nightly.v2").count(), 2, "{text}");
    }
}
