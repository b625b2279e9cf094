//! The end-of-run console report: a phase table and the checks of each
//! experiment, then one summary line.

use super::color::{Paint, Style};
use crate::journal::{
    Check, ExperimentReport, ExperimentStatus, PhaseReport, RunReport, RunStatus, VersionReport,
};
use crate::metrics::LatencySummary;
use std::fmt::Write;

/// Renders the whole report as plain text (JUnit's system-out, logs).
pub fn render(report: &RunReport, json_path: Option<&str>) -> String {
    render_painted(report, json_path, Paint::default())
}

/// [`render`] with status words coloured by `paint` (see [`super::color`]).
pub fn render_painted(report: &RunReport, json_path: Option<&str>, paint: Paint) -> String {
    let mut out = String::new();
    if report.rollback_failed {
        let _ = writeln!(
            out,
            "{}",
            paint.paint(Style::Alarm, &rollback_banner(report))
        );
    }
    for exp in &report.experiments {
        render_experiment(&mut out, exp, paint);
    }
    if !report.notes.is_empty() {
        let _ = writeln!(out, "\nnotes:");
        for note in &report.notes {
            let _ = writeln!(out, "  - {note}");
        }
    }
    let s = &report.summary;
    let _ = write!(
        out,
        "{}: {}; {} checks, {} failed; seed {}",
        paint.paint(run_style(report.status), report_status_word(report)),
        s.counts_text(),
        s.checks,
        s.checks_failed,
        report.seed,
    );
    if let Some(path) = json_path {
        let _ = write!(out, "; report: {path}");
    }
    out.push('\n');
    out
}

fn run_style(status: RunStatus) -> Style {
    match status {
        RunStatus::Passed => Style::Good,
        RunStatus::Failed => Style::Bad,
        RunStatus::Error | RunStatus::Aborted => Style::Warn,
        RunStatus::RollbackFailed => Style::Alarm,
    }
}

fn report_status_word(report: &RunReport) -> &'static str {
    match report.status {
        crate::journal::RunStatus::Passed => "PASSED",
        crate::journal::RunStatus::Failed => "FAILED",
        crate::journal::RunStatus::Error => "ERROR",
        crate::journal::RunStatus::Aborted => "ABORTED",
        crate::journal::RunStatus::RollbackFailed => "ROLLBACK FAILED",
    }
}

/// The loudest line of every report.
pub fn rollback_banner(report: &RunReport) -> String {
    let failed: Vec<String> = report
        .experiments
        .iter()
        .flat_map(|e| e.faults.iter().filter(|f| f.action == "remove" && !f.ok))
        .map(|f| {
            format!(
                "  - {} ({}): {}",
                f.fault,
                f.phase,
                f.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    format!(
        "!!! ROLLBACK FAILED: a fault could not be removed; the system may be left degraded !!!\n{}\n",
        failed.join("\n")
    )
}

fn render_experiment(out: &mut String, exp: &ExperimentReport, paint: Paint) {
    let (status, style) = match exp.status {
        ExperimentStatus::Passed => ("PASSED", Style::Good),
        ExperimentStatus::Failed => ("FAILED", Style::Bad),
        ExperimentStatus::Error => ("ERROR", Style::Warn),
        ExperimentStatus::Aborted => ("ABORTED", Style::Warn),
        ExperimentStatus::Skipped => ("SKIPPED", Style::Dim),
    };
    let status = paint.paint(style, status);
    let _ = writeln!(
        out,
        "\n{}  {}  ({:.1}s, {})",
        exp.name, status, exp.duration_s, exp.target
    );
    if let Some(err) = &exp.error {
        let _ = writeln!(
            out,
            "  {}: {}",
            if exp.status == ExperimentStatus::Aborted {
                "aborted"
            } else {
                "error"
            },
            err
        );
    }
    if !exp.phases.is_empty() {
        render_phases(out, &exp.phases);
    }
    if !exp.checks.is_empty() {
        let _ = writeln!(out, "  checks:");
        let width = exp.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let pwidth = exp
            .checks
            .iter()
            .map(|c| c.phase.as_deref().unwrap_or("").len())
            .max()
            .unwrap_or(0);
        for c in &exp.checks {
            let _ = write!(
                out,
                "    {}  {:<pw$}  {:<w$}  observed {}",
                if c.passed {
                    paint.paint(Style::Good, "PASS")
                } else {
                    paint.paint(Style::Bad, "FAIL")
                },
                c.phase.as_deref().unwrap_or(""),
                c.name,
                c.observed,
                pw = pwidth,
                w = width
            );
            if let (false, Some(msg)) = (c.passed, &c.message) {
                let _ = write!(out, "  ({msg})");
            }
            out.push('\n');
        }
    }
    for c in exp.checks.iter().filter(|c| c.kind == "recovery") {
        let _ = writeln!(out, "  {}", recovered_line(c, paint));
    }
    for f in exp.faults.iter().filter(|f| !f.ok) {
        let _ = writeln!(
            out,
            "  fault {} of {} in {} failed: {}",
            f.action,
            f.fault,
            f.phase,
            f.error.as_deref().unwrap_or("")
        );
    }
}

/// `Recovered ✓ after `fault` in 1.2s` or `Not recovered ✗ after `fault``:
/// the answer a recovery check exists to give, on a line of its own.
fn recovered_line(c: &Check, paint: Paint) -> String {
    let after = c
        .phase
        .as_deref()
        .map(|p| format!(" after `{p}`"))
        .unwrap_or_default();
    if c.passed {
        let took = c
            .measured
            .get("recovery_s")
            .map(|s| format!(" in {s:.1}s"))
            .unwrap_or_default();
        format!("{}{after}{took}", paint.paint(Style::Good, "Recovered ✓"))
    } else {
        let why = c
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        format!("{}{after}{why}", paint.paint(Style::Bad, "Not recovered ✗"))
    }
}

fn render_phases(out: &mut String, phases: &[PhaseReport]) {
    let header = [
        "phase",
        "requests",
        "rate/s",
        "p50",
        "p95",
        "p99",
        "p99.9",
        "errors",
        "top errors",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for p in phases {
        let lat = |f: fn(&LatencySummary) -> f64| {
            p.latency_ms
                .as_ref()
                .map_or("-".to_string(), |l| format_ms(f(l)))
        };
        let mut classes: Vec<(&String, &u64)> = p.errors_by_class.iter().collect();
        classes.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = classes
            .iter()
            .take(2)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let mut name = p.name.clone();
        if !p.completed {
            name.push_str(" (cut)");
        }
        let rate = match p.target_rate {
            Some(t) => format!("{:.1}/{:.0}", p.rate, t),
            None => format!("{:.1}", p.rate),
        };
        rows.push(vec![
            name,
            p.requests.to_string(),
            rate,
            lat(|l| l.p50),
            lat(|l| l.p95),
            lat(|l| l.p99),
            lat(|l| l.p999),
            format!("{:.2}%", p.error_rate * 100.0),
            top.join(", "),
        ]);
        // One row per version the phase's responses named, under its phase.
        for v in &p.versions {
            let lat = |f: fn(&LatencySummary) -> f64| {
                v.latency_ms
                    .as_ref()
                    .map_or("-".to_string(), |l| format_ms(f(l)))
            };
            rows.push(vec![
                format!("  {}", version_label(v)),
                v.requests.to_string(),
                format!("{:.1}", v.rate),
                lat(|l| l.p50),
                lat(|l| l.p95),
                lat(|l| l.p99),
                lat(|l| l.p999),
                format!("{:.2}%", v.error_rate * 100.0),
                if v.errors > 0 {
                    format!("{} failed", v.errors)
                } else {
                    String::new()
                },
            ]);
        }
        if p.unversioned > 0 && !p.versions.is_empty() {
            let mut row = vec![String::new(); header.len()];
            row[0] = "  (no version)".into();
            row[1] = p.unversioned.to_string();
            rows.push(row);
        }
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        out.push_str("  ");
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            // Names left-aligned, numbers right-aligned.
            if i == 0 || i == row.len() - 1 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
            out.push_str("  ");
        }
        while out.ends_with(' ') {
            out.pop();
        }
        out.push('\n');
    }
    render_pressure(out, phases);
}

/// `version v2`, or the overflow entry's `other versions`.
pub fn version_label(v: &VersionReport) -> String {
    if v.other {
        "other versions".into()
    } else {
        format!("version {}", v.version)
    }
}

/// Under the table, what each resource fault asked for next to what was
/// measured; nothing when the run had no telemetry or no resource faults.
fn render_pressure(out: &mut String, phases: &[PhaseReport]) {
    for p in phases {
        for line in &p.pressure {
            let _ = writeln!(out, "  {}: {line}", p.name);
        }
    }
}

/// `3.2ms`, `412ms`, `1.25s`.
pub fn format_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recovery(passed: bool) -> Check {
        let mut c: Check = serde_json::from_value(serde_json::json!({
            "name": "recovery after `fault`", "kind": "recovery", "phase": "fault",
            "passed": passed, "expected": "", "observed": "", "samples": 0,
        }))
        .expect("a check");
        if passed {
            c.measured.insert("recovery_s".into(), 1.25);
        } else {
            c.message = Some("p99 still 3x the baseline 10s after".into());
        }
        c
    }

    #[test]
    fn each_recovery_check_gets_a_recovered_or_not_recovered_line() {
        let plain = Paint::default();
        assert_eq!(
            recovered_line(&recovery(true), plain),
            "Recovered ✓ after `fault` in 1.2s"
        );
        assert_eq!(
            recovered_line(&recovery(false), plain),
            "Not recovered ✗ after `fault`: p99 still 3x the baseline 10s after"
        );
        let painted = recovered_line(&recovery(false), Paint { on: true });
        assert!(
            painted.starts_with("\x1b[31mNot recovered ✗\x1b[0m"),
            "{painted:?}"
        );
    }
}
