//! The comparisons between what Prometheus stored and report.json, as pure
//! functions returning the first disagreement, so each can be shown to
//! fail on wrong evidence.

use std::collections::BTreeMap;

use serde_json::Value;

/// What Prometheus has of one experiment.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// `faultline_requests_total` by phase, its last (largest) value.
    pub requests: BTreeMap<String, f64>,
    /// `faultline_errors_total` by phase, likewise.
    pub errors: BTreeMap<String, f64>,
    /// The fault phase's `faultline_fault_active` samples: (Unix seconds, value).
    pub fault_samples: Vec<(f64, f64)>,
}

/// When the fault was in effect, in Unix seconds: `outer` from the start of
/// its apply to the end of its removal, `inner` from the end of its apply
/// to the start of its removal.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub outer: (f64, f64),
    pub inner: (f64, f64),
}

impl Window {
    /// The same window moved by `seconds` (a wrong window, for the defective case).
    pub fn shifted(self, seconds: f64) -> Window {
        Window {
            outer: (self.outer.0 + seconds, self.outer.1 + seconds),
            inner: (self.inner.0 + seconds, self.inner.1 + seconds),
        }
    }
}

fn experiment(report: &Value) -> &Value {
    &report["experiments"][0]
}

/// Each phase's requests and errors in Prometheus equal report.json's, and
/// so does the fault phase's error ratio.
pub fn totals_agree(stored: &Stored, report: &Value, fault_phase: &str) -> Result<(), String> {
    let phases = experiment(report)["phases"]
        .as_array()
        .ok_or("report.json has no phases")?;
    for phase in phases {
        let name = phase["name"].as_str().unwrap_or_default();
        let requests = phase["requests"].as_f64().unwrap_or(-1.0);
        let errors = phase["errors"].as_f64().unwrap_or(-1.0);
        let got = stored.requests.get(name).copied().unwrap_or(0.0);
        if got != requests {
            return Err(format!(
                "phase {name}: Prometheus has {got} requests, report.json {requests}"
            ));
        }
        let got_errors = stored.errors.get(name).copied().unwrap_or(0.0);
        if got_errors != errors {
            return Err(format!(
                "phase {name}: Prometheus has {got_errors} errors, report.json {errors}"
            ));
        }
        if name == fault_phase {
            let ratio = got_errors / got.max(1.0);
            let reported = phase["error_rate"].as_f64().unwrap_or(-1.0);
            if (ratio - reported).abs() > 1e-9 {
                return Err(format!(
                    "phase {name}: error ratio {ratio} in Prometheus, {reported} in report.json"
                ));
            }
            if errors == 0.0 {
                return Err(format!("phase {name}: the fault caused no errors at all"));
            }
        }
    }
    Ok(())
}

/// The window of `phase`'s (only) fault, from report.json's fault events.
pub fn fault_window(report: &Value, phase: &str) -> Window {
    let exp = experiment(report);
    let first = &exp["phases"][0];
    let start = first["start"].as_str().expect("phase start");
    let start = humantime::parse_rfc3339(start).expect("RFC 3339 phase start");
    let start = start
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs_f64();
    let t0 = start - first["start_offset_s"].as_f64().unwrap_or(0.0);
    let event = |action: &str| {
        exp["faults"]
            .as_array()
            .and_then(|events| {
                events
                    .iter()
                    .find(|e| e["phase"] == phase && e["action"] == action && e["ok"] == true)
            })
            .unwrap_or_else(|| panic!("no successful {action} in phase {phase}: {}", exp["faults"]))
            .clone()
    };
    let (apply, remove) = (event("apply"), event("remove"));
    let at = |e: &Value, key: &str| t0 + e[key].as_f64().expect("a time in seconds");
    Window {
        outer: (at(&apply, "at_s"), at(&remove, "ended_at_s")),
        inner: (at(&apply, "ended_at_s"), at(&remove, "at_s")),
    }
}

/// The gauge read 1 only within the window (± `tolerance`), and 1 at every
/// sample well inside it.
pub fn active_exactly_during(
    samples: &[(f64, f64)],
    window: Window,
    tolerance: f64,
) -> Result<(), String> {
    let relative = |t: f64| t - window.outer.0;
    let ones = samples.iter().filter(|(_, v)| *v == 1.0).count();
    if ones == 0 {
        return Err(format!(
            "faultline_fault_active was never 1 ({} samples)",
            samples.len()
        ));
    }
    for &(t, v) in samples {
        let outside = t < window.outer.0 - tolerance || t > window.outer.1 + tolerance;
        if v == 1.0 && outside {
            return Err(format!(
                "faultline_fault_active was 1 at {:+.2}s from the apply, outside the fault's window (0 to {:.2}s, ± {tolerance}s)",
                relative(t),
                relative(window.outer.1)
            ));
        }
        let inside = t > window.inner.0 + tolerance && t < window.inner.1 - tolerance;
        if v != 1.0 && inside {
            return Err(format!(
                "faultline_fault_active was {v} at {:+.2}s from the apply, while the fault was applied",
                relative(t)
            ));
        }
    }
    Ok(())
}

/// The `faultline_*` names the dashboard's queries use, histogram
/// suffixes kept (they are what Prometheus stores).
pub fn dashboard_names(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    collect_exprs(dashboard, &mut exprs);
    let mut names: Vec<String> = exprs
        .iter()
        .flat_map(|e| {
            e.match_indices("faultline_").map(move |(i, _)| {
                e[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}

/// Every name the dashboard uses is one Prometheus stored.
pub fn all_stored(used: &[String], stored: &[String]) -> Result<(), String> {
    let missing: Vec<&String> = used.iter().filter(|n| !stored.contains(n)).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the dashboard queries metrics the run never exposed: {missing:?}"
        ))
    }
}
