//! What behaviour verifiers judge: the run's phases as time spans, their
//! metrics, the per-second series, the 100 ms timeline, and what was sampled
//! on the side (dependency calls at a proxy, a breaker's state endpoint,
//! probe observations).
//!
//! Everything is relative to the start of the load stream. Verifiers are pure
//! functions of this, so they are tested without running anything.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::journal::Check;
use crate::metrics::{PhaseMetrics, Timeline, WindowSummary};

/// A phase's planned place in the load stream.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseSpan {
    pub name: String,
    pub start: Duration,
    pub end: Duration,
    /// Whether the phase began (an aborted run may stop before it).
    pub ran: bool,
    /// Whether it ran to its planned end.
    pub completed: bool,
    /// When its faults were really in effect, from the ledger. Filled only
    /// when a fault of the phase has `after` or `for`; empty means from the
    /// phase's start to its end.
    pub faults: Vec<FaultWindow>,
}

/// When one fault was in effect: its apply started at `applied`, its
/// removal at `removed` (its `for`, or the phase's end).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultWindow {
    /// The proxy it acts on, if any.
    pub proxy: Option<String>,
    pub applied: Duration,
    pub removed: Duration,
}

impl PhaseSpan {
    /// The span in which the phase's faults were in effect, for verifiers
    /// that judge "during the fault": from the first apply to the last
    /// removal of the faults on `proxy` (of all faults when none acts on
    /// it), inside the phase. The phase itself when no fault moved off its
    /// boundaries.
    pub fn fault_span(&self, proxy: Option<&str>) -> PhaseSpan {
        let on_proxy: Vec<&FaultWindow> = self
            .faults
            .iter()
            .filter(|w| proxy.is_some() && w.proxy.as_deref() == proxy)
            .collect();
        let windows: Vec<&FaultWindow> = if on_proxy.is_empty() {
            self.faults.iter().collect()
        } else {
            on_proxy
        };
        let (Some(applied), Some(removed)) = (
            windows.iter().map(|w| w.applied).min(),
            windows.iter().map(|w| w.removed).max(),
        ) else {
            return self.clone();
        };
        let start = applied.clamp(self.start, self.end);
        PhaseSpan {
            start,
            end: removed.clamp(start, self.end),
            faults: Vec::new(),
            ..self.clone()
        }
    }
}

/// A counter read at an offset (cumulative).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CounterSample {
    pub at: Duration,
    pub value: u64,
}

/// A value read at an offset; `None` when the read failed.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueSample {
    pub at: Duration,
    pub value: Option<String>,
}

/// One probe observation, placed in time.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedObservation {
    pub at: Duration,
    pub passed: bool,
    pub value: Option<String>,
    pub reason: String,
}

/// Everything a verifier may look at.
#[derive(Debug, Default)]
pub struct Evidence<'a> {
    pub phases: Vec<PhaseSpan>,
    /// Per phase, same order as `phases`.
    pub metrics: &'a [PhaseMetrics],
    pub series: &'a [WindowSummary],
    pub timeline: Option<&'a Timeline>,
    /// Cumulative calls seen at a proxy, by proxy name.
    pub calls: BTreeMap<String, Vec<CounterSample>>,
    /// Cumulative bytes a proxy forwarded to its dependency, sampled with
    /// `calls`: traffic served, which a TCP hop's connection count cannot
    /// show once a balancer reuses kept-alive connections.
    pub forwarded: BTreeMap<String, Vec<CounterSample>>,
    /// Breaker state samples, by the index of the verifier in `verify`.
    pub states: BTreeMap<usize, Vec<ValueSample>>,
    /// Probe observations, by (probe name, phase name).
    pub probes: BTreeMap<(String, String), Vec<TimedObservation>>,
    /// When the load stream ended (planned or actual, whichever is earlier).
    pub end: Duration,
}

impl Evidence<'_> {
    /// The span and metrics of phase `name`.
    pub fn phase(&self, name: &str) -> Option<(&PhaseSpan, &PhaseMetrics)> {
        let index = self.phases.iter().position(|p| p.name == name)?;
        Some((&self.phases[index], self.metrics.get(index)?))
    }

    /// The phase right before `name`, if any.
    pub fn phase_before(&self, name: &str) -> Option<&PhaseSpan> {
        let index = self.phases.iter().position(|p| p.name == name)?;
        index.checked_sub(1).and_then(|i| self.phases.get(i))
    }

    /// Calls counted at `proxy` inside `[from, to]` (see [`super::calls`]).
    pub fn calls_between(&self, proxy: &str, from: Duration, to: Duration) -> Option<u64> {
        Some(self.calls_at(proxy)?.within(from, to))
    }

    /// The forwarded-bytes counter of `proxy`, if it was sampled.
    pub fn forwarded_at(&self, proxy: &str) -> Option<super::calls::Calls<'_>> {
        self.forwarded
            .get(proxy)
            .map(|s| super::calls::Calls::new(s))
    }

    /// The call counter of `proxy`, if it was sampled.
    pub fn calls_at(&self, proxy: &str) -> Option<super::calls::Calls<'_>> {
        self.calls.get(proxy).map(|s| super::calls::Calls::new(s))
    }
}

/// The phase `name` that ran, its metrics and the timeline, or why a
/// verifier cannot judge it.
pub fn phase_with_timeline<'e>(
    ev: &'e Evidence<'_>,
    name: &str,
) -> Result<(&'e PhaseSpan, &'e PhaseMetrics, &'e Timeline), String> {
    match (ev.phase(name), ev.timeline) {
        (Some((span, _)), Some(_)) if !span.ran => Err(format!("not judged: `{name}` did not run")),
        (Some((span, metrics)), Some(timeline)) => Ok((span, metrics, timeline)),
        _ => Err("not judged: the phase did not run".into()),
    }
}

/// `1.2s`, `350ms`: an offset or a delay, as reports show it.
pub fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else {
        format!("{s:.1}s")
    }
}

/// `12.5%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p != 0.0 && p.abs() < 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A check of one verifier, with the common fields filled in.
pub fn new_check(kind: &str, name: String, phase: Option<&str>, expected: String) -> Check {
    Check {
        name,
        kind: kind.to_string(),
        phase: phase.map(String::from),
        passed: true,
        expected,
        ..Default::default()
    }
}

/// Marks `check` failed for `why` (observed `not judged` if nothing was).
pub fn fail(mut check: Check, why: String) -> Check {
    check.passed = false;
    if check.observed.is_empty() {
        check.observed = "not judged".into();
    }
    check.message = Some(why);
    check
}

/// A completed phase from `start` to `end` seconds (verifier tests).
#[cfg(test)]
pub fn span(name: &str, start: u64, end: u64) -> PhaseSpan {
    PhaseSpan {
        name: name.into(),
        start: Duration::from_secs(start),
        end: Duration::from_secs(end),
        ran: true,
        completed: true,
        faults: Vec::new(),
    }
}

/// Statuses of a phase, most frequent first: `502×1800, 200×12`.
pub fn status_mix(metrics: &PhaseMetrics) -> String {
    let mut counts: Vec<(u16, u64)> = metrics
        .status_counts
        .iter()
        .map(|(s, n)| (*s, *n))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut parts: Vec<String> = counts
        .iter()
        .take(4)
        .map(|(s, n)| format!("{s}×{n}"))
        .collect();
    let no_response: u64 = metrics.requests - counts.iter().map(|(_, n)| n).sum::<u64>();
    if no_response > 0 {
        parts.push(format!("no response×{no_response}"));
    }
    if parts.is_empty() {
        "no responses".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_between_counts_only_samples_inside_the_window() {
        let mut ev = Evidence::default();
        ev.calls.insert(
            "payments".into(),
            vec![
                CounterSample {
                    at: Duration::from_millis(0),
                    value: 0,
                },
                CounterSample {
                    at: Duration::from_millis(100),
                    value: 10,
                },
                CounterSample {
                    at: Duration::from_millis(200),
                    value: 15,
                },
                CounterSample {
                    at: Duration::from_millis(300),
                    value: 40,
                },
            ],
        );
        let calls = |a, b| {
            ev.calls_between(
                "payments",
                Duration::from_millis(a),
                Duration::from_millis(b),
            )
        };
        // 150–250 ms holds only the 200 ms sample: nothing certainly inside.
        assert_eq!(calls(150, 250), Some(0));
        assert_eq!(calls(100, 300), Some(30));
        assert_eq!(calls(0, 1000), Some(40));
        assert_eq!(
            ev.calls_between("other", Duration::ZERO, Duration::ZERO),
            None
        );
    }

    #[test]
    fn formats_are_short() {
        assert_eq!(secs(Duration::from_millis(350)), "350ms");
        assert_eq!(secs(Duration::from_millis(1250)), "1.2s");
        assert_eq!(percent(0.125), "12.5%");
        assert_eq!(percent(0.0004), "0.04%");
    }
}
