//! `verify:`, raw → model (the probes it refers to are in `validate_probes`).
//!
//! Besides the shape of each entry, the cross-references are checked here:
//! a verifier naming a phase that does not exist, a probe that is not
//! declared, a dependency proxy faultline cannot count calls at. Every error
//! carries its node and, for names, a did-you-mean.

use std::time::Duration;

use serde_yaml::Value;

use super::decode::{describe, scalar_text};
use super::diagnostics::{one_of, Diagnostic};
use super::model::{
    CanarySpec, CompareMetric, CompareSpec, Expectation, LatencyTolerance, RecoverySpec, Tolerance,
    TrafficShiftSpec, Verifier, VersionSource, MAX_BASELINE_ERROR_RATE, ROLLED_BACK_SHARE,
};
use super::raw::{List, Scalar};
use super::raw_verify::{
    RawCanary, RawCompare, RawRecovery, RawTrafficShift, RawVerifier, RawVersionFrom,
};
use super::source::Node;
use super::validate::{duration, items};
use super::validate_expect::{check_version_source, version_source};
use super::validate_faults::ProxyCatalog;
use super::validate_resources::unknown_reference;

use super::validate_probes::{pass_or_fail, probe_use};
pub use super::validate_probes::{phase_probes, probes};
pub(super) use super::validate_probes::{pointer, probe_url, statuses};

/// What `verify` entries may refer to.
pub struct Refs<'a> {
    /// Phase names in order, and whether each injects faults.
    pub phases: Vec<(String, bool)>,
    pub probes: Vec<String>,
    pub proxies: &'a ProxyCatalog,
    /// `load.version_from`'s source: checks without their own read it.
    pub version: Option<VersionSource>,
}

impl Refs<'_> {
    pub(super) fn phase(
        &self,
        raw: Option<&String>,
        node: &Node<'_>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        let Some(name) = raw else {
            diags.extend(node.missing("phase", "missing `phase`: the phase it judges"));
            return None;
        };
        self.phase_named(name, &node.at("phase"), diags)
    }

    fn phase_named(
        &self,
        name: &str,
        node: &Node<'_>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        if self.phases.iter().any(|(p, _)| p == name) {
            return Some(name.to_string());
        }
        let known: Vec<&str> = self.phases.iter().map(|(p, _)| p.as_str()).collect();
        diags.push(unknown_reference(node, "phase", name, &known, "phases"));
        None
    }

    pub(super) fn probe(
        &self,
        name: &str,
        node: &Node<'_>,
        diags: &mut Vec<Diagnostic>,
    ) -> Option<String> {
        if self.probes.iter().any(|p| p == name) {
            return Some(name.to_string());
        }
        let known: Vec<&str> = self.probes.iter().map(String::as_str).collect();
        diags.push(unknown_reference(node, "probe", name, &known, "probes"));
        None
    }
}

// ---- verify -------------------------------------------------------------------

pub fn verify(
    raw: Option<&List<RawVerifier>>,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Verifier>> {
    let mut ok = true;
    let mut out = Vec::new();
    let at = node.at("verify");
    for (raw, item) in items(raw, &at, "a verifier", diags) {
        match verifier(raw, &item, refs, diags) {
            Some(v) => out.push(v),
            None => ok = false,
        }
    }
    // One version source per run: the load generator reads one.
    let sources: Vec<&VersionSource> = out.iter().filter_map(Verifier::version_source).collect();
    if sources.windows(2).any(|w| w[0] != w[1]) {
        diags.push(at.error(
            "canary and traffic_shift checks of one experiment must read the version from the \
             same place (`version_from`)",
        ));
        ok = false;
    }
    ok.then_some(out)
}

fn verifier(
    raw: &RawVerifier,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Verifier> {
    let given: Vec<&str> = [
        ("recovery", raw.recovery.is_some()),
        ("breaker", raw.breaker.is_some()),
        ("canary", raw.canary.is_some()),
        ("traffic_shift", raw.traffic_shift.is_some()),
        ("compare", raw.compare.is_some()),
        ("probe", raw.probe.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if given.len() != 1 {
        let message = if given.is_empty() {
            format!(
                "a verifier needs exactly one of {}",
                one_of(RawVerifier::KEYS)
            )
        } else {
            format!(
                "each `verify` entry is exactly one verifier; found {} (make them separate `-` items)",
                given.join(" and ")
            )
        };
        diags.push(node.error(message));
        return None;
    }
    if let Some(r) = &raw.recovery {
        recovery(r, &node.at("recovery"), refs, diags).map(Verifier::Recovery)
    } else if let Some(b) = &raw.breaker {
        super::validate_breaker::breaker(b, &node.at("breaker"), refs, diags).map(Verifier::Breaker)
    } else if let Some(c) = &raw.canary {
        canary(c, &node.at("canary"), refs, diags).map(Verifier::Canary)
    } else if let Some(t) = &raw.traffic_shift {
        traffic_shift(t, &node.at("traffic_shift"), refs, diags).map(Verifier::TrafficShift)
    } else if let Some(c) = &raw.compare {
        compare(c, &node.at("compare"), refs, diags).map(Verifier::Compare)
    } else if let Some(p) = &raw.probe {
        probe_use(p, None, &node.at("probe"), refs, diags).map(Verifier::Probe)
    } else {
        None
    }
}

fn recovery(
    raw: &RawRecovery,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<RecoverySpec> {
    let baseline = match &raw.baseline {
        Some(n) => refs.phase_named(n, &node.at("baseline"), diags),
        None => match refs.phases.first() {
            Some((first, false)) => Some(first.clone()),
            _ => {
                diags.extend(node.missing(
                    "baseline",
                    "missing `baseline`: the healthy phase to compare with (the first phase injects faults, so it cannot be the default)",
                ));
                None
            }
        },
    };
    let after = match &raw.after {
        Some(n) => refs.phase_named(n, &node.at("after"), diags),
        None => match refs.phases.iter().rev().find(|(_, faults)| *faults) {
            Some((last, _)) => Some(last.clone()),
            None => {
                diags.extend(node.missing(
                    "after",
                    "missing `after`: no phase injects faults, so name the phase recovery is measured from",
                ));
                None
            }
        },
    };
    let within = required_duration(
        raw.within.as_ref(),
        node,
        "within",
        "e.g. `within: 10s`",
        diags,
    );
    let windows = match raw.windows {
        None => Some(3),
        Some(n @ 1..=60) => Some(n as u32),
        Some(n) => {
            diags.push(
                node.at("windows")
                    .error(format!("expected 1 to 60 windows, found `{n}`")),
            );
            None
        }
    };
    let (p99, error_rate) = match &raw.tolerance {
        Some(t) => {
            let at = node.at("tolerance");
            let p99 = match &t.p99 {
                Some(v) => latency_tolerance(v, &at.at("p99"), diags),
                None => Some(LatencyTolerance::Relative(0.25)),
            };
            let errors = match &t.error_rate {
                Some(v) => fraction(v, &at.at("error_rate"), diags),
                None => Some(0.01),
            };
            (p99, errors)
        }
        None => (Some(LatencyTolerance::Relative(0.25)), Some(0.01)),
    };
    let judge_p99 = recovery_metrics(raw.metrics.as_ref(), &node.at("metrics"), diags);
    let max_baseline_error_rate = match &raw.max_baseline_error_rate {
        Some(v) => fraction(v, &node.at("max_baseline_error_rate"), diags),
        None => Some(MAX_BASELINE_ERROR_RATE),
    };
    if let (Some(b), Some(a)) = (&baseline, &after) {
        if b == a {
            diags.push(
                node.at("after")
                    .error("`after` must be a different phase than `baseline`"),
            );
            return None;
        }
    }
    Some(RecoverySpec {
        baseline: baseline?,
        after: after?,
        within: within?,
        windows: windows?,
        tolerance: Tolerance {
            p99: p99?,
            error_rate: error_rate?,
        },
        judge_p99: judge_p99?,
        max_baseline_error_rate: max_baseline_error_rate?,
    })
}

/// `metrics: [error_rate, p99]` → whether p99 is judged. The error rate is
/// required: a target whose every request fails fast has a fine p99 and has
/// not recovered.
fn recovery_metrics(
    raw: Option<&Scalar>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<bool> {
    let Some(value) = raw else {
        return Some(true);
    };
    let list: Vec<&Value> = match value {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    let words: Option<Vec<String>> = list.iter().map(|v| scalar_text(v)).collect();
    let words = words.unwrap_or_default();
    if words.is_empty() || words.iter().any(|w| w != "error_rate" && w != "p99") {
        diags.push(
            node.error("expected a list of `error_rate` and `p99`, e.g. `[error_rate, p99]`"),
        );
        return None;
    }
    if !words.iter().any(|w| w == "error_rate") {
        diags.push(node.error(
            "`error_rate` is always judged (a target whose requests all fail fast has a fine p99 \
             but has not recovered): use `[error_rate, p99]` or `[error_rate]`",
        ));
        return None;
    }
    Some(words.iter().any(|w| w == "p99"))
}

/// A check's `version_from`, defaulting to (and agreeing with) the load's.
fn version_from(
    raw: Option<&RawVersionFrom>,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<VersionSource> {
    let own = match raw {
        Some(raw) => Some(version_source(
            raw.header.as_ref(),
            raw.json.as_ref(),
            node,
            diags,
        )?),
        None => None,
    };
    check_version_source(own, refs.version.as_ref(), node, diags)
}

fn version_name(
    value: Option<&Scalar>,
    node: &Node<'_>,
    field: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match value.and_then(scalar_text) {
        Some(v) if !v.trim().is_empty() => Some(v.trim().to_string()),
        Some(_) => {
            diags.push(node.at(field).error("must not be empty"));
            None
        }
        None => {
            diags.extend(node.missing(
                field,
                format!("missing `{field}`: the version label, e.g. `v2`"),
            ));
            None
        }
    }
}

fn canary(
    raw: &RawCanary,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CanarySpec> {
    let phase = refs.phase(raw.phase.as_ref(), node, diags);
    let version = version_name(raw.canary_version.as_ref(), node, "canary_version", diags);
    let source = version_from(
        raw.version_from.as_ref(),
        &node.at("version_from"),
        refs,
        diags,
    );
    let within = required_duration(
        raw.rolled_back_within.as_ref(),
        node,
        "rolled_back_within",
        "e.g. `rolled_back_within: 15s`",
        diags,
    );
    let stable = match &raw.stable_error_rate {
        Some(v) => fraction(v, &node.at("stable_error_rate"), diags),
        None => Some(0.01),
    };
    let gone = match &raw.rolled_back_share {
        Some(v) => fraction(v, &node.at("rolled_back_share"), diags),
        None => Some(ROLLED_BACK_SHARE),
    };
    let confirm = match &raw.confirm {
        Some(name) => refs.probe(name, &node.at("confirm"), diags).map(Some),
        None => Some(None),
    };
    Some(CanarySpec {
        phase: phase?,
        canary_version: version?,
        version: source?,
        rolled_back_within: within?,
        rolled_back_share: gone?,
        confirm: confirm?,
        max_failed_requests: raw.max_failed_requests.unwrap_or(u64::MAX),
        stable_error_rate: stable?,
    })
}

fn traffic_shift(
    raw: &RawTrafficShift,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<TrafficShiftSpec> {
    let phase = refs.phase(raw.phase.as_ref(), node, diags);
    let version = version_name(raw.version.as_ref(), node, "version", diags);
    let source = version_from(
        raw.version_from.as_ref(),
        &node.at("version_from"),
        refs,
        diags,
    );
    let share = |v: Option<&Scalar>, field: &str, diags: &mut Vec<Diagnostic>| match v {
        Some(v) => fraction(v, &node.at(field), diags),
        None => {
            diags.extend(node.missing(
                field,
                format!("missing `{field}`: the version's share, e.g. `{field}: 10%`"),
            ));
            None
        }
    };
    let from = share(raw.from.as_ref(), "from", diags);
    let to = share(raw.to.as_ref(), "to", diags);
    let tolerance = match &raw.tolerance {
        Some(v) => fraction(v, &node.at("tolerance"), diags),
        None => Some(0.05),
    };
    let within = match &raw.within {
        Some(v) => duration(v, &node.at("within"), true, diags).map(Some),
        None => Some(None),
    };
    Some(TrafficShiftSpec {
        phase: phase?,
        target_version: version?,
        version: source?,
        from: from?,
        to: to?,
        tolerance: tolerance?,
        within: within?,
        max_errors: raw.max_errors.unwrap_or(0),
    })
}

fn compare(
    raw: &RawCompare,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CompareSpec> {
    let named = |field: &str, value: Option<&String>, diags: &mut Vec<Diagnostic>| match value {
        Some(n) => refs.phase_named(n, &node.at(field), diags),
        None => {
            diags.extend(node.missing(field, format!("missing `{field}`: a phase name")));
            None
        }
    };
    let baseline = named("baseline", raw.baseline.as_ref(), diags);
    let current = named("current", raw.current.as_ref(), diags);
    let metrics = match &raw.metric {
        None => Some(vec![CompareMetric::Latency, CompareMetric::ErrorRate]),
        Some(v) => {
            let list: Vec<&Value> = match v {
                Value::Sequence(items) => items.iter().collect(),
                other => vec![other],
            };
            let parsed: Option<Vec<CompareMetric>> = list
                .iter()
                .map(|m| match scalar_text(m).as_deref() {
                    Some("latency") => Some(CompareMetric::Latency),
                    Some("error_rate") => Some(CompareMetric::ErrorRate),
                    _ => None,
                })
                .collect();
            match parsed {
                Some(l) if !l.is_empty() => Some(l),
                _ => {
                    diags.push(
                        node.at("metric")
                            .error("expected `latency`, `error_rate`, or a list of them"),
                    );
                    None
                }
            }
        }
    };
    let expect = match raw.expect.as_deref() {
        Some("same") => Some(Expectation::Same),
        Some("worse") => Some(Expectation::Worse),
        Some("better") => Some(Expectation::Better),
        Some(other) => {
            diags.push(node.at("expect").error(format!(
                "expected `same`, `worse` or `better`, found `{other}`"
            )));
            None
        }
        None => {
            diags.extend(node.missing("expect", "missing `expect`: `same`, `worse` or `better`"));
            None
        }
    };
    let alpha = match &raw.alpha {
        None => Some(0.01),
        Some(v) => match v.as_f64() {
            Some(a) if a > 0.0 && a < 0.5 => Some(a),
            _ => {
                diags.push(node.at("alpha").error(format!(
                    "expected a significance level between 0 and 0.5 such as 0.01, found {}",
                    scalar_text(v).map_or_else(|| describe(v).to_string(), |t| format!("`{t}`"))
                )));
                None
            }
        },
    };
    let (latency_effect, error_effect) = match &raw.min_effect {
        Some(m) => {
            let at = node.at("min_effect");
            let l = match &m.latency {
                Some(v) => latency_tolerance(v, &at.at("latency"), diags),
                None => Some(LatencyTolerance::Relative(0.2)),
            };
            let e = match &m.error_rate {
                Some(v) => fraction(v, &at.at("error_rate"), diags),
                None => Some(0.005),
            };
            (l, e)
        }
        None => (Some(LatencyTolerance::Relative(0.2)), Some(0.005)),
    };
    let min_samples = match raw.min_samples {
        None => Some(super::super::verify::stats::DEFAULT_MIN_SAMPLES),
        Some(0) => {
            diags.push(
                node.at("min_samples")
                    .error("must be at least 1, found `0`"),
            );
            None
        }
        Some(n) => Some(n),
    };
    let inconclusive = pass_or_fail(raw.inconclusive.as_deref(), &node.at("inconclusive"), diags);
    if let (Some(b), Some(c)) = (&baseline, &current) {
        if b == c {
            diags.push(
                node.at("current")
                    .error("`current` must be a different phase than `baseline`"),
            );
            return None;
        }
    }
    Some(CompareSpec {
        baseline: baseline?,
        current: current?,
        metrics: metrics?,
        expect: expect?,
        alpha: alpha?,
        min_latency_effect: latency_effect?,
        min_error_rate_effect: error_effect?,
        min_samples: min_samples?,
        inconclusive_passes: inconclusive?,
    })
}

// ---- small field helpers -----------------------------------------------------

fn required_duration(
    value: Option<&Scalar>,
    node: &Node<'_>,
    field: &str,
    example: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    match value {
        Some(v) => duration(v, &node.at(field), true, diags),
        None => {
            diags.extend(node.missing(field, format!("missing `{field}`, {example}")));
            None
        }
    }
}

/// `5%` or a fraction `0.05` (0..=1).
pub(super) fn fraction(
    value: &Scalar,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<f64> {
    super::units::parse_share(value, "5%")
        .map_err(|message| diags.push(node.error(message)))
        .ok()
}

/// `25%` (relative) or `10ms` (absolute).
fn latency_tolerance(
    value: &Scalar,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<LatencyTolerance> {
    let text = scalar_text(value).unwrap_or_default();
    if text.trim().ends_with('%') {
        let trimmed = text.trim();
        let number = trimmed.trim_end_matches('%').trim().parse::<f64>().ok();
        return match number {
            Some(n) if n >= 0.0 && n.is_finite() => Some(LatencyTolerance::Relative(n / 100.0)),
            _ => {
                diags.push(node.error(format!(
                    "expected a percentage such as 25% or a duration such as 10ms, found `{text}`"
                )));
                None
            }
        };
    }
    match super::units::parse_duration(&text) {
        Ok(d) => Some(LatencyTolerance::Absolute(d)),
        Err(_) => {
            diags.push(node.error(format!(
                "expected a percentage such as 25% or a duration such as 10ms, found `{text}`"
            )));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifiers(verify: &str) -> Vec<Verifier> {
        let yaml = format!(
            "name: x\ntarget: {{ demo: {{}} }}\nload: {{ rate: 10, requests: [ {{ path: /checkout }} ] }}\n\
             probes: {{ done: {{ tcp: {{ address: '127.0.0.1:1' }} }} }}\n\
             phases:\n  - {{ name: base, duration: 2s }}\n  - name: fault\n    duration: 2s\n\
             \x20   inject: [ {{ type: latency, proxy: payments, latency: 10ms }} ]\n\
             verify:\n{verify}"
        );
        let doc = super::super::load_str(&yaml, std::path::Path::new("x.yaml")).expect("valid");
        doc.experiments[0].verify.clone()
    }

    #[test]
    fn recovery_and_canary_defaults_and_new_keys() {
        let v = verifiers(
            "  - recovery: { within: 5s }\n\
             \x20 - recovery: { within: 5s, metrics: [error_rate], max_baseline_error_rate: 20% }\n\
             \x20 - canary: { phase: fault, canary_version: v2, rolled_back_within: 3s }\n\
             \x20 - canary: { phase: fault, canary_version: v2, rolled_back_within: 3s, rolled_back_share: 0%, confirm: done, max_failed_requests: 9 }\n",
        );
        let [Verifier::Recovery(r1), Verifier::Recovery(r2), Verifier::Canary(c1), Verifier::Canary(c2)] =
            v.as_slice()
        else {
            panic!("{v:?}");
        };
        assert!(r1.judge_p99 && !r2.judge_p99);
        assert_eq!(r1.max_baseline_error_rate, MAX_BASELINE_ERROR_RATE);
        assert_eq!(r2.max_baseline_error_rate, 0.2);
        assert_eq!(
            (
                c1.rolled_back_share,
                c1.confirm.as_deref(),
                c1.max_failed_requests
            ),
            (ROLLED_BACK_SHARE, None, u64::MAX)
        );
        assert_eq!(
            (
                c2.rolled_back_share,
                c2.confirm.as_deref(),
                c2.max_failed_requests
            ),
            (0.0, Some("done"), 9)
        );
    }
}
