//! `canary`: a verdict on which version served the traffic (see also
//! [`super::traffic_shift`]).
//!
//! Both read the per-version counts of the 100 ms timeline (the version comes
//! from a response header or JSON field, see `VersionSource`).
//!
//! - `canary`: with a fault on the canary's path only, the canary's share
//!   (over a sliding second) must fall to `rolled_back_share` (default 1%)
//!   within `rolled_back_within` of the fault starting and *stay* there to
//!   the phase's end. A share that falls and comes back is `flapping`: a
//!   passive health check (HAProxy `observe layer7` + `on-error mark-down`)
//!   ejecting the canary for a while and re-admitting it, not a rollback,
//!   even when the phase happens to end while it is out. Failed canary
//!   responses stay under a bound, the stable versions keep their error rate
//!   low meanwhile, and a `confirm` probe of the control plane passes at the
//!   phase's end.

use std::time::Duration;

use super::evidence::{fail, new_check, percent, phase_with_timeline, secs, Evidence, PhaseSpan};
use super::timing::{Share, SECOND};
use crate::config::model::CanarySpec;
use crate::journal::Check;
use crate::metrics::{Timeline, SLOT};

/// Versions seen in the whole run, for messages: `v1, v2`.
pub(super) fn versions_seen(timeline: &Timeline) -> String {
    let mut seen = std::collections::BTreeSet::new();
    for slot in &timeline.slots {
        for v in &slot.versions {
            seen.insert(v.version.to_string());
        }
    }
    if seen.is_empty() {
        "none (no response carried a version)".into()
    } else {
        seen.into_iter().collect::<Vec<_>>().join(", ")
    }
}

/// What became of the canary's share during the phase; offsets are from the
/// phase's start.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Fell to the bound at `at` and stayed there to the end.
    RolledBack {
        at: Duration,
    },
    /// Fell to the bound at `gone`, then came back `returns` times, first at
    /// `back` (to `share`); `ended_out` when the phase ended while it was out.
    Flapping {
        gone: Duration,
        back: Duration,
        share: f64,
        returns: u32,
        ended_out: bool,
    },
    NotRolledBack,
}

impl Outcome {
    /// `measured.outcome`: 0 rolled back, 1 flapping, 2 not rolled back.
    fn code(&self) -> f64 {
        match self {
            Outcome::RolledBack { .. } => 0.0,
            Outcome::Flapping { .. } => 1.0,
            Outcome::NotRolledBack => 2.0,
        }
    }

    /// The check's `outcome`: `rolled_back`, `flapping` or `not_rolled_back`.
    fn key(&self) -> &'static str {
        match self {
            Outcome::RolledBack { .. } => "rolled_back",
            Outcome::Flapping { .. } => "flapping",
            Outcome::NotRolledBack => "not_rolled_back",
        }
    }
}

/// Slides a one-second window over `phase` in 100 ms steps (one window when
/// the phase is shorter) and classifies the canary's share in each: at or
/// below `bound` is out, above is in, no responses says nothing.
fn canary_outcome(timeline: &Timeline, version: &str, phase: &PhaseSpan, bound: f64) -> Outcome {
    let starts = (0..)
        .map(|k| phase.start + SLOT * k)
        .take_while(|t| *t == phase.start || *t + SECOND <= phase.end);
    let mut gone: Option<Duration> = None;
    let mut back: Option<(Duration, f64)> = None;
    let mut share_after_return = 0.0_f64;
    let mut returns = 0;
    let mut out = false;
    for t in starts {
        let end = (t + SECOND).min(phase.end);
        let Some(share) = Share::of(timeline, version, t, end).fraction() else {
            continue;
        };
        let offset = t - phase.start;
        if share <= bound + 1e-12 {
            gone.get_or_insert(offset);
            out = true;
        } else if out {
            returns += 1;
            out = false;
            back.get_or_insert((offset, share));
        }
        if back.is_some() {
            share_after_return = share_after_return.max(share);
        }
    }
    match (gone, back) {
        (None, _) => Outcome::NotRolledBack,
        (Some(gone), Some((back, _))) => Outcome::Flapping {
            gone,
            back,
            share: share_after_return,
            returns,
            ended_out: out,
        },
        (Some(gone), None) => {
            // The window that first held the bound may start while the last
            // canary responses still complete: the rollback is the end of
            // the last slot, within that window, still above the bound.
            let window_end = phase.start + gone + SECOND;
            let at = timeline
                .between(phase.start, window_end.min(phase.end))
                .filter(|(_, slot)| {
                    let (n, _) = slot.version(version);
                    slot.requests > 0 && f64::from(n) / f64::from(slot.requests) > bound + 1e-12
                })
                .map(|(i, _)| Timeline::start_of(i) + SLOT)
                .last()
                .map_or(Duration::ZERO, |t| t.saturating_sub(phase.start));
            Outcome::RolledBack { at }
        }
    }
}

pub fn canary(spec: &CanarySpec, ev: &Evidence<'_>) -> Check {
    let mut expected = format!(
        "`{}` share falls to ≤ {} within {} and stays there to the end (not flapping)",
        spec.canary_version,
        percent(spec.rolled_back_share),
        secs(spec.rolled_back_within),
    );
    if spec.max_failed_requests != u64::MAX {
        expected += &format!(", ≤ {} failed canary responses", spec.max_failed_requests);
    }
    expected += &format!(", stable error rate ≤ {}", percent(spec.stable_error_rate));
    if let Some(probe) = &spec.confirm {
        expected += &format!(", probe `{probe}` passes at the end");
    }
    let mut check = new_check(
        "canary",
        format!("canary rollback during `{}`", spec.phase),
        Some(&spec.phase),
        expected,
    );
    let (phase, metrics, timeline) = match phase_with_timeline(ev, &spec.phase) {
        Ok(found) => found,
        Err(why) => return fail(check, why),
    };
    // Timed from the fault's real apply (`after`); a rollback must still
    // hold to the phase's end, even when the fault ended early (`for`).
    let fault = &PhaseSpan {
        start: phase.fault_span(None).start,
        ..phase.clone()
    };
    check.samples = metrics.requests;
    let version = spec.canary_version.as_str();
    let before = ev
        .phase_before(&spec.phase)
        .map(|p| Share::of(timeline, version, p.start, p.end))
        .unwrap_or_default();
    let during = Share::of(timeline, version, fault.start, fault.end);
    if before.version == 0 && during.version == 0 {
        return fail(
            check,
            format!(
                "no response came from `{version}` before or during `{}`: nothing to roll back \
                 (versions seen: {})",
                spec.phase,
                versions_seen(timeline)
            ),
        );
    }
    if let Some(f) = before.fraction() {
        check.measured.insert("canary_share_before".into(), f);
    }
    let stable_total = during.total - during.version;
    let stable_errors = during.errors - during.version_errors;
    let stable_rate = if stable_total == 0 {
        0.0
    } else {
        stable_errors as f64 / stable_total as f64
    };
    check
        .measured
        .insert("canary_failed".into(), during.version_errors as f64);
    check
        .measured
        .insert("stable_error_rate".into(), stable_rate);
    let shares = shares_per_second(timeline, version, fault);
    for (k, share) in shares.iter().enumerate() {
        if let Some(share) = share {
            check.measured.insert(format!("share_s{k:02}"), *share);
        }
    }

    let mut problems = Vec::new();
    let mut observed = Vec::new();
    let tail = Share::of(
        timeline,
        version,
        fault.end.saturating_sub(SECOND).max(fault.start),
        fault.end,
    );
    let outcome = if tail.total == 0 {
        problems.push(format!(
            "no response completed in the last second of `{}`: whether the canary was rolled \
             back cannot be told",
            spec.phase
        ));
        Outcome::NotRolledBack
    } else {
        canary_outcome(timeline, version, fault, spec.rolled_back_share)
    };
    check.measured.insert("outcome".into(), outcome.code());
    check.outcome = Some(outcome.key().to_string());
    match &outcome {
        Outcome::RolledBack { at } => {
            check
                .measured
                .insert("rolled_back_after_s".into(), at.as_secs_f64());
            observed.push(format!("rolled back after {} (held to the end)", secs(*at)));
            if *at > spec.rolled_back_within {
                problems.push(format!(
                    "the canary kept serving for {} after the fault started, longer than {}",
                    secs(*at),
                    secs(spec.rolled_back_within)
                ));
            }
        }
        Outcome::Flapping {
            gone,
            back,
            share,
            returns,
            ended_out,
        } => {
            check.measured.insert("returns".into(), f64::from(*returns));
            observed.push(format!("flapping ({returns} return(s))"));
            let ending = if *ended_out {
                "; the phase ended while it was out, which is not a rollback that held"
            } else {
                ""
            };
            problems.push(format!(
                "flapping: `{version}`'s share fell to ≤ {} {} into `{}` but came back {returns} \
                 time(s), first {} in (up to {} of responses): a passive health check ejecting \
                 and re-admitting the canary, not a rollback{ending}",
                percent(spec.rolled_back_share),
                secs(*gone),
                spec.phase,
                secs(*back),
                percent(*share),
            ));
        }
        Outcome::NotRolledBack => {
            observed.push("not rolled back".into());
            if tail.total > 0 {
                problems.push(format!(
                    "not rolled back: `{version}` still served {} of the responses in the last \
                     second of `{}` ({} of {}; {} of {} before the fault)",
                    percent(tail.fraction().unwrap_or(0.0)),
                    spec.phase,
                    tail.version,
                    tail.total,
                    percent(before.fraction().unwrap_or(0.0)),
                    before.total
                ));
            }
        }
    }
    observed.push(format!("{} failed canary responses", during.version_errors));
    if during.version_errors > spec.max_failed_requests {
        problems.push(format!(
            "{} canary responses failed (at most {} allowed)",
            during.version_errors, spec.max_failed_requests
        ));
    }
    observed.push(format!("stable error rate {}", percent(stable_rate)));
    if stable_rate > spec.stable_error_rate + 1e-12 {
        problems.push(format!(
            "the stable version's error rate was {} ({stable_errors} of {stable_total}), above {}",
            percent(stable_rate),
            percent(spec.stable_error_rate)
        ));
    }
    if let Some(probe) = &spec.confirm {
        let last = ev
            .probes
            .get(&(probe.clone(), spec.phase.clone()))
            .and_then(|o| o.last());
        match last {
            Some(o) if o.passed => observed.push(format!("`{probe}` confirmed")),
            Some(o) => problems.push(format!(
                "probe `{probe}` did not confirm the rollback at +{}: {}",
                secs(o.at),
                o.reason
            )),
            None => problems.push(format!(
                "probe `{probe}` was never observed at the end of `{}`",
                spec.phase
            )),
        }
    }
    let timeline_text: Vec<String> = shares
        .iter()
        .map(|s| s.map_or("–".into(), percent))
        .collect();
    observed.push(format!("shares per second: {}", timeline_text.join(", ")));
    check.observed = observed.join(", ");
    if !problems.is_empty() {
        return fail(check, problems.join("; "));
    }
    check
}

/// The canary's share in each whole or partial second of `phase`, from its
/// start; `None` for a second without responses.
fn shares_per_second(timeline: &Timeline, version: &str, phase: &PhaseSpan) -> Vec<Option<f64>> {
    (0..)
        .map(|k| phase.start + SECOND * k)
        .take_while(|t| *t < phase.end)
        .map(|t| Share::of(timeline, version, t, (t + SECOND).min(phase.end)).fraction())
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::model::VersionSource;
    use crate::metrics::timeline::VersionCount;
    use crate::metrics::{PhaseMetrics, Slot, VersionTag};
    use crate::verify::evidence::{span, TimedObservation};

    /// 20 responses per slot over 0–15 s; `split(second)` gives (v2 responses, v2 errors, v1 errors).
    pub(in crate::verify) fn timeline(split: impl Fn(f64) -> (u32, u32, u32)) -> Timeline {
        let slots = (0..150)
            .map(|i| {
                let (v2, v2_errors, v1_errors) = split(f64::from(i) / 10.0);
                let tag = |s: &str| VersionTag::new(s).expect("tag");
                let mut versions = vec![VersionCount {
                    version: tag("v1"),
                    requests: 20 - v2,
                    errors: v1_errors,
                }];
                if v2 > 0 {
                    versions.push(VersionCount {
                        version: tag("v2"),
                        requests: v2,
                        errors: v2_errors,
                    });
                }
                Slot {
                    requests: 20,
                    errors: v2_errors + v1_errors,
                    matched: Vec::new(),
                    versions,
                }
            })
            .collect();
        Timeline { slots }
    }

    pub(in crate::verify) fn evidence<'a>(
        timeline: &'a Timeline,
        metrics: &'a [PhaseMetrics],
    ) -> Evidence<'a> {
        Evidence {
            phases: vec![
                span("steady", 0, 5),
                span("canary-fault", 5, 10),
                span("after", 10, 15),
            ],
            metrics,
            timeline: Some(timeline),
            end: Duration::from_secs(15),
            ..Evidence::default()
        }
    }

    fn canary_spec() -> CanarySpec {
        CanarySpec {
            phase: "canary-fault".into(),
            canary_version: "v2".into(),
            version: VersionSource::default(),
            rolled_back_within: Duration::from_secs(2),
            rolled_back_share: 0.01,
            confirm: None,
            max_failed_requests: 50,
            stable_error_rate: 0.01,
        }
    }

    #[test]
    fn a_rollback_in_time_passes() {
        // 2 of 20 from v2; failing from 5 s; rolled back at 6.0 s.
        let t = timeline(|s| match s {
            s if s < 5.0 => (2, 0, 0),
            s if s < 6.0 => (2, 2, 0),
            _ => (0, 0, 0),
        });
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = canary(&canary_spec(), &evidence(&t, &metrics));
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["rolled_back_after_s"], 1.0);
        assert_eq!(check.measured["canary_failed"], 20.0);
        assert!((check.measured["canary_share_before"] - 0.1).abs() < 1e-9);
    }

    #[test]
    fn no_rollback_fails_with_the_share_still_served() {
        let t = timeline(|s| if s < 5.0 { (2, 0, 0) } else { (2, 2, 0) });
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = canary(&canary_spec(), &evidence(&t, &metrics));
        assert!(!check.passed);
        let why = check.message.expect("why");
        assert!(
            why.contains("not rolled back: `v2` still served 10.0%"),
            "{why}"
        );
        assert!(why.contains("100 canary responses failed"), "{why}");
    }

    #[test]
    fn a_late_rollback_fails_with_its_time() {
        let t = timeline(|s| match s {
            s if s < 5.0 => (2, 0, 0),
            s if s < 8.5 => (2, 0, 0),
            _ => (0, 0, 0),
        });
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = canary(&canary_spec(), &evidence(&t, &metrics));
        assert!(!check.passed);
        assert_eq!(check.measured["rolled_back_after_s"], 3.5);
    }

    #[test]
    fn a_rollback_reports_its_outcome_and_the_shares_per_second() {
        let t = timeline(|s| if s < 6.0 { (2, 0, 0) } else { (0, 0, 0) });
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = canary(&canary_spec(), &evidence(&t, &metrics));
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["outcome"], 0.0);
        assert!((check.measured["share_s00"] - 0.1).abs() < 1e-9);
        assert_eq!(check.measured["share_s01"], 0.0);
        assert!(
            check
                .observed
                .contains("shares per second: 10.0%, 0.0%, 0.0%, 0.0%, 0.0%"),
            "{}",
            check.observed
        );
    }

    /// HAProxy's `on-error mark-down`: v2 out from 5.5 s to 7.5 s, back for a
    /// second, out again from 8.5 s to the phase's end.
    fn flapping(s: f64) -> (u32, u32, u32) {
        match s {
            s if s < 5.0 => (2, 0, 0),
            s if s < 5.5 => (2, 2, 0),
            s if s < 7.5 => (0, 0, 0),
            s if s < 8.5 => (2, 2, 0),
            _ => (0, 0, 0),
        }
    }

    #[test]
    fn a_share_that_comes_back_is_flapping_even_when_the_phase_ends_while_out() {
        let t = timeline(flapping);
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = canary(&canary_spec(), &evidence(&t, &metrics));
        assert!(!check.passed, "{check:?}");
        assert_eq!(check.measured["outcome"], 1.0);
        assert_eq!(check.outcome.as_deref(), Some("flapping"));
        assert_eq!(check.measured["returns"], 1.0);
        assert!(!check.measured.contains_key("rolled_back_after_s"));
        let why = check.message.expect("why");
        assert!(
            why.contains("flapping: `v2`'s share fell to ≤ 1.0%"),
            "{why}"
        );
        assert!(why.contains("came back 1 time(s)"), "{why}");
        assert!(why.contains("the phase ended while it was out"), "{why}");
        assert!(!why.contains("rolled back after"), "{why}");
        assert!(check.observed.starts_with("flapping"), "{}", check.observed);
        // Ejected and re-admitted to the end: flapping, not "not rolled back".
        let t = timeline(|s| if s < 9.5 { flapping(s) } else { (2, 2, 0) });
        let check = canary(&canary_spec(), &evidence(&t, &metrics));
        let why = check.message.expect("why");
        assert!(why.contains("came back 2 time(s)"), "{why}");
        assert!(!why.contains("ended while it was out"), "{why}");
    }

    #[test]
    fn a_trickle_under_the_share_bound_still_counts_as_gone() {
        // One v2 response in 200 (0.5%) after the rollback: at 1% it is gone.
        let t = timeline(|s| match s {
            s if s < 6.0 => (2, 0, 0),
            s if ((s * 10.0).round() as u32) % 10 == 5 => (1, 0, 0),
            _ => (0, 0, 0),
        });
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = canary(&canary_spec(), &evidence(&t, &metrics));
        assert!(check.passed, "{check:?}");
        let strict = CanarySpec {
            rolled_back_share: 0.0,
            ..canary_spec()
        };
        let check = canary(&strict, &evidence(&t, &metrics));
        let why = check.message.expect("why");
        assert!(
            why.contains("not rolled back: `v2` still served 0.5%"),
            "{why}"
        );
    }

    #[test]
    fn a_confirm_probe_must_pass_at_the_phase_end() {
        let t = timeline(|s| if s < 6.0 { (2, 0, 0) } else { (0, 0, 0) });
        let metrics = vec![PhaseMetrics::default(); 3];
        let spec = CanarySpec {
            confirm: Some("rollback-done".into()),
            ..canary_spec()
        };
        let mut ev = evidence(&t, &metrics);
        let check = canary(&spec, &ev);
        assert!(check
            .message
            .expect("why")
            .contains("probe `rollback-done` was never observed"));
        for (passed, verdict) in [(false, false), (true, true)] {
            ev.probes.insert(
                ("rollback-done".into(), "canary-fault".into()),
                vec![TimedObservation {
                    at: Duration::from_millis(9_750),
                    passed,
                    value: Some("weight 10".into()),
                    reason: "`/weight` is 10, not 0".into(),
                }],
            );
            let check = canary(&spec, &ev);
            assert_eq!(check.passed, verdict, "{check:?}");
            if !passed {
                assert!(check.message.expect("why").contains(
                    "probe `rollback-done` did not confirm the rollback at +9.8s: `/weight` is 10"
                ));
            }
        }
    }
}
