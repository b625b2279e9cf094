//! The page model: the journal turned into what the template shows, with
//! every number already formatted, so the template is only layout.
//!
//! Strings here are plain text; the template escapes them. The only markup
//! is the charts' SVG, carried as [`ChartView::svg`] and marked safe only
//! after [`charts::render`] has checked that its text is escaped.

use super::charts::{self, Band, LineColor, Marker, Metric, Timeline};
use crate::journal::{ExperimentReport, PhaseReport, RunReport, RunStatus};
use crate::metrics::telemetry::{TelemetrySample, STRESS_ROLE};
use crate::metrics::{LatencySummary, WindowSummary};
use crate::report::console::format_ms;
use minijinja::Value;
use serde::Serialize;

/// Error classes listed per phase in the phase table.
const TOP_ERROR_CLASSES: usize = 3;

/// The whole page.
#[derive(Debug, Serialize)]
pub struct Page {
    pub title: String,
    pub version: String,
    /// `passed`, `failed`, ... (also the CSS class).
    pub status: &'static str,
    pub status_label: &'static str,
    pub rollback_failed: bool,
    /// Every fault removal that failed, for the banner.
    pub rollback_failures: Vec<String>,
    pub meta: Vec<(&'static str, String)>,
    pub files: Vec<String>,
    /// How the report was produced, when a reader must know (e.g. merged).
    pub notes: Vec<String>,
    pub summary: Vec<(&'static str, String, &'static str)>,
    pub experiments: Vec<ExperimentView>,
}

/// One experiment's section.
#[derive(Debug, Serialize)]
pub struct ExperimentView {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub status: &'static str,
    pub error: Option<String>,
    pub rollback_failed: bool,
    pub meta: Vec<(&'static str, String)>,
    pub charts: Vec<ChartView>,
    /// The charts show fault markers (explained once above them).
    pub has_fault_markers: bool,
    pub phases: Vec<PhaseView>,
    pub checks: Vec<CheckView>,
    pub faults: Vec<FaultView>,
}

/// One chart and its legend.
#[derive(Debug, Serialize)]
pub struct ChartView {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    /// `(label, css colour)` of each line, for the legend.
    pub legend: Vec<(&'static str, String)>,
    /// Checked SVG markup, marked safe (see the module docs).
    pub svg: Value,
}

/// A row of the phase table.
#[derive(Debug, Serialize)]
pub struct PhaseView {
    pub name: String,
    pub duration: String,
    pub completed: bool,
    pub requests: u64,
    pub rate: String,
    pub p50: String,
    pub p95: String,
    pub p99: String,
    pub p999: String,
    pub error_rate: String,
    pub has_errors: bool,
    pub top_errors: Vec<String>,
    pub faults: Vec<String>,
}

/// A row of the checks table.
#[derive(Debug, Serialize)]
pub struct CheckView {
    pub passed: bool,
    pub phase: String,
    pub name: String,
    pub expected: String,
    pub observed: String,
    pub message: String,
    pub samples: u64,
    pub window: String,
}

/// A row of the faults table.
#[derive(Debug, Serialize)]
pub struct FaultView {
    pub at: String,
    pub phase: String,
    pub action: String,
    pub fault: String,
    pub ok: bool,
    pub error: String,
}

/// Builds the page; fails only if a chart cannot be drawn.
pub fn page(report: &RunReport) -> Result<Page, (String, charts::ChartError)> {
    let experiments = report
        .experiments
        .iter()
        .map(|e| experiment(e).map_err(|err| (e.name.clone(), err)))
        .collect::<Result<Vec<_>, _>>()?;
    let (status, status_label) = run_status(report.status);
    let host = &report.host;
    let mut meta = vec![
        ("faultline", report.faultline_version.clone()),
        ("started", report.started_at.clone()),
        ("finished", report.finished_at.clone()),
        ("duration", format_duration(report.duration_s)),
        (
            "host",
            format!(
                "{} ({} {}, {} CPUs)",
                host.hostname, host.os, host.arch, host.cpus
            ),
        ),
        ("seed", report.seed.to_string()),
    ];
    if !report.run_id.is_empty() {
        meta.push(("run id", report.run_id.clone()));
    }
    if let Some(suite) = &report.suite {
        meta.push(("suite", suite.clone()));
    }
    if let Some(shard) = &report.shard {
        meta.push(("shard", shard.clone()));
    }
    let s = &report.summary;
    let summary = vec![
        ("experiments", s.experiments.to_string(), ""),
        ("passed", s.passed.to_string(), "passed"),
        ("failed", s.failed.to_string(), "failed"),
        ("error", s.error.to_string(), "error"),
        ("aborted", s.aborted.to_string(), "aborted"),
        ("skipped", s.skipped.to_string(), "skipped"),
        ("checks", s.checks.to_string(), ""),
        ("checks failed", s.checks_failed.to_string(), "failed"),
    ];
    let title = match (&report.suite, report.experiments.as_slice()) {
        (Some(suite), _) => suite.clone(),
        (None, [one]) => one.name.clone(),
        (None, all) => format!("{} experiments", all.len()),
    };
    Ok(Page {
        title,
        version: report.faultline_version.clone(),
        status,
        status_label,
        rollback_failed: report.rollback_failed,
        rollback_failures: rollback_failures(report),
        meta,
        files: report.files.clone(),
        notes: report.notes.clone(),
        summary,
        experiments,
    })
}

fn run_status(status: RunStatus) -> (&'static str, &'static str) {
    match status {
        RunStatus::Passed => ("passed", "PASSED"),
        RunStatus::Failed => ("failed", "FAILED"),
        RunStatus::Error => ("error", "ERROR"),
        RunStatus::Aborted => ("aborted", "ABORTED"),
        RunStatus::RollbackFailed => ("rollback_failed", "ROLLBACK FAILED"),
    }
}

fn rollback_failures(report: &RunReport) -> Vec<String> {
    report
        .experiments
        .iter()
        .flat_map(|e| {
            e.faults
                .iter()
                .filter(|f| f.action == "remove" && !f.ok)
                .map(move |f| {
                    format!(
                        "{}: {} (phase {}): {}",
                        e.name,
                        f.fault,
                        f.phase,
                        f.error.as_deref().unwrap_or("failed")
                    )
                })
        })
        .collect()
}

fn experiment(e: &ExperimentReport) -> Result<ExperimentView, charts::ChartError> {
    let mut meta = vec![
        ("target", e.target.clone()),
        ("load", load_text(e)),
        ("started", e.started_at.clone()),
        ("duration", format_duration(e.duration_s)),
        ("file", e.file.clone()),
    ];
    if let Some(suite) = &e.suite {
        meta.push(("suite", suite.clone()));
    }
    let charts = if e.series.is_empty() {
        Vec::new()
    } else {
        let timeline = timeline(e);
        metrics(&e.series, &e.telemetry)
            .iter()
            .map(|m| chart(m, &timeline))
            .collect::<Result<_, _>>()?
    };
    Ok(ExperimentView {
        name: e.name.clone(),
        description: e.description.clone(),
        tags: e.tags.clone(),
        status: e.status.as_str(),
        error: e.error.clone(),
        rollback_failed: e.rollback_failed,
        meta,
        has_fault_markers: !e.faults.is_empty() && !charts.is_empty(),
        charts,
        phases: e.phases.iter().map(phase).collect(),
        checks: e
            .checks
            .iter()
            .map(|c| CheckView {
                passed: c.passed,
                phase: c.phase.clone().unwrap_or_default(),
                name: c.name.clone(),
                expected: c.expected.clone(),
                observed: c.observed.clone(),
                message: c.message.clone().unwrap_or_default(),
                samples: c.samples,
                window: c.window.clone().unwrap_or_default(),
            })
            .collect(),
        faults: e
            .faults
            .iter()
            .map(|f| FaultView {
                at: format!("{:.2}s", f.at_s),
                phase: f.phase.clone(),
                action: f.action.clone(),
                fault: f.fault.clone(),
                ok: f.ok,
                error: f.error.clone().unwrap_or_default(),
            })
            .collect(),
    })
}

/// Telemetry lines: the host in grey, faultline and its processes in colour.
const HOST: LineColor = LineColor(plotters::style::RGBColor(0x6b, 0x72, 0x80));
const HARNESS: LineColor = LineColor(plotters::style::RGBColor(0x1f, 0x77, 0xb4));
const STRESS: LineColor = LineColor(plotters::style::RGBColor(0xd6, 0x27, 0x28));
const TARGET: LineColor = LineColor(plotters::style::RGBColor(0x2b, 0x8a, 0x8a));
/// Watched roles charted, when present, with their labels and colours.
const ROLES: [(&str, LineColor); 2] = [(STRESS_ROLE, STRESS), ("target", TARGET)];
const MIB: f64 = 1024.0 * 1024.0;

/// The charts of one experiment: one entry per metric. A new per-second
/// series in the journal (CPU, memory) is one more entry here.
fn metrics(series: &[WindowSummary], telemetry: &[TelemetrySample]) -> Vec<Metric> {
    // A window covers [t, t+1): plot it at its middle.
    let windows: Vec<(f64, &WindowSummary)> =
        series.iter().map(|w| (w.t as f64 + 0.5, w)).collect();
    // A sample covers the second before `t`: plot it at that second's middle.
    let samples: Vec<(f64, &TelemetrySample)> = telemetry.iter().map(|s| (s.t - 0.5, s)).collect();
    let roles: Vec<(&'static str, LineColor)> = ROLES
        .into_iter()
        .filter(|(role, _)| telemetry.iter().any(|s| s.processes.contains_key(*role)))
        .collect();
    let mut all = vec![
        Metric::new("latency", "Latency", "ms")
            .line("p50", charts::P50, &windows, |w| w.p50)
            .line("p99", charts::P99, &windows, |w| w.p99),
        Metric::new("throughput", "Throughput", "requests/s").line(
            "requests/s",
            charts::THROUGHPUT,
            &windows,
            |w| Some(w.requests as f64),
        ),
        Metric::new("error_rate", "Error rate", "%")
            .capped(100.0)
            .line("errors", charts::ERRORS, &windows, |w| {
                Some(w.error_rate * 100.0)
            }),
    ];
    if telemetry.is_empty() {
        return all;
    }
    // Processes count 100 % per core; drawn on the host's scale (of all
    // cores) so the lines add up. The per-core view is in the pressure lines.
    let of_all_cores =
        |s: &TelemetrySample, cpu: f64| cpu / s.host_cpu_per_core.len().max(1) as f64;
    let mut cpu = Metric::new("cpu", "CPU", "% of all cores")
        .capped(100.0)
        .line("host", HOST, &samples, |s| Some(s.host_cpu))
        .line("faultline", HARNESS, &samples, |s| {
            Some(of_all_cores(s, s.harness_cpu))
        });
    let mut memory = Metric::new("memory", "Memory", "MiB")
        .line("host used", HOST, &samples, |s| {
            Some(s.mem_used_bytes as f64 / MIB)
        })
        .line("faultline RSS", HARNESS, &samples, |s| {
            Some(s.harness_rss_bytes as f64 / MIB)
        });
    for (role, color) in roles {
        cpu = cpu.line(role, color, &samples, |s| {
            s.processes.get(role).map(|p| of_all_cores(s, p.cpu))
        });
        memory = memory.line(role, color, &samples, |s| {
            s.processes.get(role).map(|p| p.rss_bytes as f64 / MIB)
        });
    }
    all.push(cpu);
    all.push(memory);
    all
}

fn chart(metric: &Metric, timeline: &Timeline) -> Result<ChartView, charts::ChartError> {
    Ok(ChartView {
        id: metric.id,
        title: metric.title,
        unit: metric.unit,
        legend: metric
            .lines
            .iter()
            .map(|l| (l.label, l.color.css()))
            .collect(),
        svg: Value::from_safe_string(charts::render(metric, timeline)?),
    })
}

fn timeline(e: &ExperimentReport) -> Timeline {
    let bands: Vec<Band> = e
        .phases
        .iter()
        .map(|p| Band {
            name: p.name.clone(),
            start: p.start_offset_s,
            end: p.start_offset_s + p.duration_s,
            faulted: !p.faults.is_empty(),
        })
        .collect();
    let markers: Vec<Marker> = e
        .faults
        .iter()
        .map(|f| Marker {
            at: f.at_s,
            apply: f.action == "apply",
            label: f.kind.clone(),
            ok: f.ok,
        })
        .collect();
    let end = e
        .series
        .iter()
        .map(|w| w.t as f64 + 1.0)
        .chain(bands.iter().map(|b| b.end))
        .chain(markers.iter().map(|m| m.at))
        .chain(e.telemetry.iter().map(|s| s.t))
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    Timeline {
        bands,
        markers,
        end,
    }
}

fn phase(p: &PhaseReport) -> PhaseView {
    let lat = |f: fn(&LatencySummary) -> f64| {
        p.latency_ms
            .as_ref()
            .map_or_else(|| "–".to_string(), |l| format_ms(f(l)))
    };
    let mut classes: Vec<(&String, &u64)> = p.errors_by_class.iter().collect();
    classes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut duration = format_duration(p.duration_s);
    if (p.planned_duration_s - p.duration_s).abs() >= 0.05 {
        duration = format!("{duration} of {}", format_duration(p.planned_duration_s));
    }
    PhaseView {
        name: p.name.clone(),
        duration,
        completed: p.completed,
        requests: p.requests,
        rate: match p.target_rate {
            Some(t) => format!("{:.1} / {:.0}", p.rate, t),
            None => format!("{:.1}", p.rate),
        },
        p50: lat(|l| l.p50),
        p95: lat(|l| l.p95),
        p99: lat(|l| l.p99),
        p999: lat(|l| l.p999),
        error_rate: format!("{:.2}%", p.error_rate * 100.0),
        has_errors: p.errors > 0,
        top_errors: classes
            .iter()
            .take(TOP_ERROR_CLASSES)
            .map(|(class, n)| format!("{class} ×{n}"))
            .collect(),
        faults: p.faults.clone(),
    }
}

fn load_text(e: &ExperimentReport) -> String {
    let l = &e.load;
    let mut parts = vec![format!("{} model", l.model)];
    if let Some(rate) = &l.rate {
        parts.push(format!("rate {rate}"));
    }
    if let Some(c) = l.concurrency {
        parts.push(format!("concurrency {c}"));
    }
    if let Some(m) = l.max_in_flight {
        parts.push(format!("max in flight {m}"));
    }
    parts.push(format!("timeout {}", format_ms(l.timeout_ms)));
    parts.push(format!("{} sent", l.sent));
    if l.unsent > 0 {
        parts.push(format!("{} unsent", l.unsent));
    }
    parts.join(", ")
}

/// `850ms`, `12.3s`, `2m 05s`, `1h 02m`.
fn format_duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "–".to_string();
    }
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        let s = s.round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let m = (s / 60.0).round() as u64;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(0.25), "250ms");
        assert_eq!(format_duration(12.34), "12.3s");
        assert_eq!(format_duration(125.0), "2m 05s");
        assert_eq!(format_duration(3720.0), "1h 02m");
        assert_eq!(format_duration(f64::NAN), "–");
    }
}
