//! `canary` and `traffic_shift`: verdicts on which version served the traffic.
//!
//! Both read the per-version counts of the 100 ms timeline (the version comes
//! from a response header or JSON field, see `VersionSource`).
//!
//! - `canary`: with a fault on the canary's path only, the canary's share
//!   must fall to zero (the last canary response completes) within
//!   `rolled_back_within` of the fault starting and stay there until the
//!   phase ends; failed canary responses stay under a bound, and the stable
//!   versions keep their error rate low meanwhile.
//! - `traffic_shift`: the share of one version in the second before the phase
//!   matches `from`, the share in the phase's last second matches `to`, the
//!   share reaches `to` within `within`, and the switch costs at most
//!   `max_errors` errors.

use std::time::Duration;

use super::evidence::{fail, new_check, percent, phase_with_timeline, secs, Evidence};
use crate::config::model::{CanarySpec, TrafficShiftSpec};
use crate::metrics::{Timeline, SLOT};
use crate::runner::journal::Check;

/// Counts of a version within a time range.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Share {
    /// All responses.
    total: u64,
    errors: u64,
    /// Responses from the version.
    version: u64,
    version_errors: u64,
}

impl Share {
    fn of(timeline: &Timeline, version: &str, from: Duration, to: Duration) -> Share {
        let mut share = Share::default();
        for (_, slot) in timeline.between(from, to) {
            let (n, e) = slot.version(version);
            share.total += u64::from(slot.requests);
            share.errors += u64::from(slot.errors);
            share.version += u64::from(n);
            share.version_errors += u64::from(e);
        }
        share
    }

    fn fraction(&self) -> Option<f64> {
        (self.total > 0).then(|| self.version as f64 / self.total as f64)
    }
}

/// Versions seen in the whole run, for messages: `v1, v2`.
fn versions_seen(timeline: &Timeline) -> String {
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

pub fn canary(spec: &CanarySpec, ev: &Evidence<'_>) -> Check {
    let expected = format!(
        "`{}` share falls to 0 within {}, ≤ {} failed canary responses, stable error rate ≤ {}",
        spec.canary_version,
        secs(spec.rolled_back_within),
        spec.max_failed_requests,
        percent(spec.stable_error_rate)
    );
    let mut check = new_check(
        "canary",
        format!("canary rollback during `{}`", spec.phase),
        Some(&spec.phase),
        expected,
    );
    let (fault, metrics, timeline) = match phase_with_timeline(ev, &spec.phase) {
        Ok(found) => found,
        Err(why) => return fail(check, why),
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
    let last = timeline
        .between(fault.start, fault.end)
        .filter(|(_, slot)| slot.version(version).0 > 0)
        .map(|(i, _)| Timeline::start_of(i) + SLOT)
        .last();
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

    let mut problems = Vec::new();
    let mut observed = Vec::new();
    // The share must be zero over the phase's last second to count as rolled back.
    let tail = Share::of(
        timeline,
        version,
        fault.end.saturating_sub(Duration::from_secs(1)),
        fault.end,
    );
    let rolled_back = match last {
        None => Some(Duration::ZERO),
        Some(_) if tail.version > 0 || tail.total == 0 => None,
        Some(at) => Some(at.saturating_sub(fault.start)),
    };
    match rolled_back {
        Some(after) => {
            check
                .measured
                .insert("rolled_back_after_s".into(), after.as_secs_f64());
            observed.push(format!("rolled back after {}", secs(after)));
            if after > spec.rolled_back_within {
                problems.push(format!(
                    "the canary kept serving for {} after the fault started, longer than {}",
                    secs(after),
                    secs(spec.rolled_back_within)
                ));
            }
        }
        None => {
            observed.push("not rolled back".into());
            problems.push(format!(
                "not rolled back: `{version}` still served {} of the responses in the last second \
                 of `{}` ({} of {}; {} of {} before the fault)",
                percent(tail.fraction().unwrap_or(0.0)),
                spec.phase,
                tail.version,
                tail.total,
                percent(before.fraction().unwrap_or(0.0)),
                before.total
            ));
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
    check.observed = observed.join(", ");
    if !problems.is_empty() {
        return fail(check, problems.join("; "));
    }
    check
}

pub fn traffic_shift(spec: &TrafficShiftSpec, ev: &Evidence<'_>) -> Check {
    let mut expected = format!(
        "`{}` share {} → {} (±{})",
        spec.target_version,
        percent(spec.from),
        percent(spec.to),
        percent(spec.tolerance)
    );
    if let Some(within) = spec.within {
        expected += &format!(" within {}", secs(within));
    }
    expected += &format!(", ≤ {} errors", spec.max_errors);
    let mut check = new_check(
        "traffic_shift",
        format!(
            "traffic shift to `{}` during `{}`",
            spec.target_version, spec.phase
        ),
        Some(&spec.phase),
        expected,
    );
    let (phase, metrics, timeline) = match phase_with_timeline(ev, &spec.phase) {
        Ok(found) => found,
        Err(why) => return fail(check, why),
    };
    check.samples = metrics.requests;
    let version = spec.target_version.as_str();
    let second = Duration::from_secs(1);
    let before = Share::of(
        timeline,
        version,
        phase.start.saturating_sub(second),
        phase.start,
    );
    let end = Share::of(
        timeline,
        version,
        phase.end.saturating_sub(second),
        phase.end,
    );
    let during = Share::of(timeline, version, phase.start, phase.end);
    let mut problems = Vec::new();
    let near =
        |share: Option<f64>, want: f64| share.is_some_and(|s| (s - want).abs() <= spec.tolerance);

    let start_share = before.fraction();
    let end_share = end.fraction();
    if let Some(s) = start_share {
        check.measured.insert("share_before".into(), s);
    }
    if let Some(s) = end_share {
        check.measured.insert("share_after".into(), s);
    }
    check.measured.insert("errors".into(), during.errors as f64);
    if !near(start_share, spec.from) {
        problems.push(format!(
            "before `{}` `{version}` served {} of responses, not {}",
            spec.phase,
            start_share.map_or("nothing (no responses)".into(), percent),
            percent(spec.from)
        ));
    }
    if !near(end_share, spec.to) {
        problems.push(format!(
            "at the end of `{}` `{version}` served {} of responses, not {} (versions seen: {})",
            spec.phase,
            end_share.map_or("nothing (no responses)".into(), percent),
            percent(spec.to),
            versions_seen(timeline)
        ));
    }
    // When the share first reached `to`, over a sliding second of slots.
    let switched = (0..)
        .map(|k| phase.start + SLOT * k)
        .take_while(|t| *t + second <= phase.end)
        .find(|t| {
            near(
                Share::of(timeline, version, *t, *t + second).fraction(),
                spec.to,
            )
        })
        .map(|t| t.saturating_sub(phase.start));
    let mut observed = vec![format!(
        "{} → {}",
        start_share.map_or("n/a".into(), percent),
        end_share.map_or("n/a".into(), percent)
    )];
    if let Some(after) = switched {
        check
            .measured
            .insert("switched_after_s".into(), after.as_secs_f64());
        observed.push(format!("switched after {}", secs(after)));
        if let Some(within) = spec.within.filter(|w| after > *w) {
            problems.push(format!(
                "the share reached {} only {} into `{}`, later than {}",
                percent(spec.to),
                secs(after),
                spec.phase,
                secs(within)
            ));
        }
    }
    observed.push(format!("{} errors", during.errors));
    if during.errors > spec.max_errors {
        problems.push(format!(
            "{} requests failed during the switch (at most {} allowed)",
            during.errors, spec.max_errors
        ));
    }
    check.observed = observed.join(", ");
    if !problems.is_empty() {
        return fail(check, problems.join("; "));
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::VersionSource;
    use crate::metrics::timeline::VersionCount;
    use crate::metrics::{PhaseMetrics, Slot, VersionTag};
    use crate::verify::evidence::span;

    /// 20 responses per slot over 0–15 s; `split(second)` gives (v2 responses, v2 errors, v1 errors).
    fn timeline(split: impl Fn(f64) -> (u32, u32, u32)) -> Timeline {
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

    fn evidence<'a>(timeline: &'a Timeline, metrics: &'a [PhaseMetrics]) -> Evidence<'a> {
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

    fn shift_spec() -> TrafficShiftSpec {
        TrafficShiftSpec {
            phase: "canary-fault".into(),
            target_version: "v2".into(),
            version: VersionSource::default(),
            from: 0.1,
            to: 1.0,
            tolerance: 0.05,
            within: Some(Duration::from_secs(2)),
            max_errors: 0,
        }
    }

    #[test]
    fn a_clean_promotion_passes_and_errors_fail_it() {
        let clean = timeline(|s| if s < 5.5 { (2, 0, 0) } else { (20, 0, 0) });
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = traffic_shift(&shift_spec(), &evidence(&clean, &metrics));
        assert!(check.passed, "{check:?}");
        assert_eq!(check.measured["switched_after_s"], 0.5);

        let bumpy = timeline(|s| match s {
            s if s < 5.5 => (2, 0, 0),
            s if s < 5.6 => (20, 3, 0),
            _ => (20, 0, 0),
        });
        let check = traffic_shift(&shift_spec(), &evidence(&bumpy, &metrics));
        assert!(!check.passed);
        assert!(check.message.expect("why").contains("3 requests failed"));
    }

    #[test]
    fn a_shift_that_never_happens_fails() {
        let stuck = timeline(|_| (2, 0, 0));
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = traffic_shift(&shift_spec(), &evidence(&stuck, &metrics));
        assert!(!check.passed);
        assert!(check
            .message
            .expect("why")
            .contains("at the end of `canary-fault` `v2` served 10.0% of responses, not 100.0%"));
    }
}
