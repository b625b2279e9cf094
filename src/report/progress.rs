//! The live progress line on stderr while a run is going.
//!
//! On a terminal the line is redrawn in place once a second; elsewhere (CI
//! logs) a plain line is printed every few seconds so logs stay readable.

use super::console::format_ms;
use crate::config::model::{Experiment, Phase};
use crate::metrics::LiveStats;
use crate::runner::Progress;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

/// How often a plain (non-terminal) progress line is printed.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

pub struct ConsoleProgress {
    tty: bool,
    last_plain: Mutex<Option<Duration>>,
}

impl Default for ConsoleProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleProgress {
    pub fn new() -> ConsoleProgress {
        ConsoleProgress {
            tty: std::io::stderr().is_terminal(),
            last_plain: Mutex::new(None),
        }
    }

    fn line(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{text}");
        } else {
            let _ = writeln!(err, "{text}");
        }
        let _ = err.flush();
    }

    fn end_line(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}

impl Progress for ConsoleProgress {
    fn experiment_started(&self, exp: &Experiment) {
        let _ = writeln!(
            std::io::stderr(),
            "▶ {} ({} phases, {:.0}s)",
            exp.name,
            exp.phases.len(),
            exp.total_duration().as_secs_f64()
        );
    }

    fn phase_started(&self, phase: &Phase, index: usize, total: usize) {
        if let Ok(mut l) = self.last_plain.lock() {
            *l = None;
        }
        self.line(&format!(
            "  phase {}/{} {} ({:.0}s){}",
            index + 1,
            total,
            phase.name,
            phase.duration.as_secs_f64(),
            if phase.inject.is_empty() {
                ""
            } else {
                ", injecting"
            }
        ));
        self.end_line();
    }

    fn tick(&self, phase: &Phase, elapsed: Duration, live: &LiveStats) {
        if !self.tty {
            let Ok(mut last) = self.last_plain.lock() else {
                return;
            };
            if last.is_some_and(|l| elapsed < l + PLAIN_EVERY) {
                return;
            }
            *last = Some(elapsed);
        }
        let done = elapsed.as_secs_f64().min(phase.duration.as_secs_f64());
        let faults = match phase.inject.len() {
            0 => String::new(),
            1 => "  1 fault active".to_string(),
            n => format!("  {n} faults active"),
        };
        self.line(&format!(
            "    {} {:>4.0}s/{:.0}s ({:.0}s left)  rate {:>7.1}/s  p50 {:>8}  p99 {:>8}  errors {} ({:.1}% last 1s){faults}",
            phase.name,
            done,
            phase.duration.as_secs_f64(),
            phase.duration.as_secs_f64() - done,
            live.rate,
            live.p50_ms.map_or("-".into(), format_ms),
            live.p99_ms.map_or("-".into(), format_ms),
            live.errors,
            live.error_rate * 100.0
        ));
    }

    fn phase_ended(&self, _phase: &Phase) {
        self.end_line();
    }

    fn message(&self, text: &str) {
        let _ = writeln!(std::io::stderr(), "  {text}");
    }
}
