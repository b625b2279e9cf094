//! `after:` and `for:` of an `inject` entry: when, within its phase, a fault
//! of any kind is applied and removed.
//!
//! Both must fit in the phase: a fault that would start after the phase
//! ended, or last past its end, is an error rather than silently cut short
//! (k6 and Chaos Toolkit users expect a schedule to be checked before the
//! run). The one exception keeps an old contract: `kill` had its own
//! `after:`, the restart delay, before the keys became generic.

use std::time::Duration;

use super::diagnostics::Diagnostic;
use super::model::{FaultSpec, PhaseFault};
use super::raw_inject::RawInject;
use super::source::Node;
use super::units::format_duration;
use super::validate::duration;

/// The fault `spec` of `raw` with its timing, checked against the phase's
/// `phase` duration (when that is valid).
pub fn timed(
    raw: &RawInject,
    spec: FaultSpec,
    node: &Node<'_>,
    phase: Option<Duration>,
    diags: &mut Vec<Diagnostic>,
) -> Option<PhaseFault> {
    let after = match &raw.after {
        None => Some(Duration::ZERO),
        Some(v) => duration(v, &node.at("after"), false, diags),
    };
    let lasts = match &raw.lasts {
        None => Some(None),
        Some(v) => duration(v, &node.at("for"), true, diags).map(Some),
    };
    let (after, lasts) = (after?, lasts?);
    if let (FaultSpec::Kill(kill), true, None) = (&spec, raw.after.is_some(), lasts) {
        if kill.restart {
            return legacy_restart(spec, after, node, phase, diags);
        }
    }
    let Some(phase) = phase else {
        return Some(PhaseFault { spec, after, lasts });
    };
    if after >= phase {
        diags.push(
            node.at("after")
                .error(format!(
                    "`after: {}` would never be applied: the phase lasts {}",
                    format_duration(after),
                    format_duration(phase)
                ))
                .with_help(
                    "`after` counts from the phase's start; move the fault to a later phase",
                ),
        );
        return None;
    }
    if let Some(lasts) = lasts {
        if after + lasts > phase {
            let room = phase - after;
            diags.push(
                node.at("for")
                    .error(format!(
                        "`after` + `for` = {} goes past the end of the phase ({}): the fault \
                         would be removed at phase end anyway",
                        format_duration(after + lasts),
                        format_duration(phase)
                    ))
                    .with_help(format!(
                        "use `for: {}` or less, or drop `for` to keep the fault until phase end",
                        format_duration(room)
                    )),
            );
            return None;
        }
    }
    Some(PhaseFault { spec, after, lasts })
}

/// `kill` with `restart: true`, `after` and no `for`: `after` keeps its old
/// meaning, the restart delay (the kill itself at phase start). A delay
/// past the phase's end restarts at phase end, as it always did.
fn legacy_restart(
    spec: FaultSpec,
    after: Duration,
    node: &Node<'_>,
    phase: Option<Duration>,
    diags: &mut Vec<Diagnostic>,
) -> Option<PhaseFault> {
    let at = node.at("after");
    if after.is_zero() {
        diags.push(at.error("must be greater than 0, found `0s`"));
        return None;
    }
    let text = format_duration(after);
    diags.push(
        at.error(format!(
            "on a `kill` with `restart: true` and no `for`, `after: {text}` is the restart delay \
             (kept for old files); write `for: {text}` instead"
        ))
        .with_help("with `for`, `after` delays the kill itself, as it does for every other fault")
        .as_warning(),
    );
    let lasts = phase.is_none_or(|p| after < p).then_some(after);
    Some(PhaseFault {
        spec,
        after: Duration::ZERO,
        lasts,
    })
}
