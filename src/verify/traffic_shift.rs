//! `traffic_shift`: the share of one version in the second before the phase
//! matches `from`, the share in the phase's last second matches `to`, the
//! share reaches `to` within `within`, and the switch costs at most
//! `max_errors` errors.
//!
//! The share is read from the per-version counts of the 100 ms timeline,
//! like `canary`'s (see [`super::versions`]).

use std::time::Duration;

use super::evidence::{fail, new_check, percent, phase_with_timeline, secs, Evidence};
use super::timing::{Share, SECOND};
use super::versions::versions_seen;
use crate::config::model::TrafficShiftSpec;
use crate::journal::Check;
use crate::metrics::{Timeline, SLOT};

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
    // The share is judged over a sliding second of slots; the switch is
    // when it first held on the 100 ms timeline within that second.
    let switched = (0..)
        .map(|k| phase.start + SLOT * k)
        .take_while(|t| *t + second <= phase.end)
        .find(|t| {
            near(
                Share::of(timeline, version, *t, *t + second).fraction(),
                spec.to,
            )
        })
        .map(|t| switched_at(timeline, version, t, spec).saturating_sub(phase.start));
    let mut observed = vec![format!(
        "{} → {}",
        start_share.map_or("n/a".into(), percent),
        end_share.map_or("n/a".into(), percent)
    )];
    if let Some(after) = switched {
        check
            .measured
            .insert("switched_after_s".into(), after.as_secs_f64());
        observed.push(format!(
            "switched after {} (at 100 ms resolution)",
            secs(after)
        ));
        if let Some(within) = spec.within.filter(|w| after > *w) {
            problems.push(format!(
                "the share reached {} only {} into `{}` (at 100 ms resolution), later than {}",
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

/// When the share first held, given the sliding second from `window` is the
/// first within tolerance: the first slot from which every slot with
/// responses up to that second's end is within tolerance (widened by two
/// standard errors of the slot's count, so a 50% target is not missed on
/// 20 responses). The window's start can be a few hundred ms early: its
/// average hides a ramp that is still completing, as connections drain.
fn switched_at(
    timeline: &Timeline,
    version: &str,
    window: Duration,
    spec: &TrafficShiftSpec,
) -> Duration {
    let end = window + SECOND;
    let slot_ok = |i: usize| {
        let slot = &timeline.slots[i];
        if slot.requests == 0 {
            return true;
        }
        let n = f64::from(slot.requests);
        let share = f64::from(slot.version(version).0) / n;
        let noise = 2.0 * (spec.to * (1.0 - spec.to) / n).sqrt();
        (share - spec.to).abs() <= spec.tolerance + noise + 1e-12
    };
    let indices: Vec<usize> = timeline.between(window, end).map(|(i, _)| i).collect();
    let first_good_tail = indices
        .iter()
        .rposition(|i| !slot_ok(*i))
        .map_or(0, |bad| bad + 1);
    indices
        .get(first_good_tail)
        .map_or(window, |i| Timeline::start_of(*i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::VersionSource;
    use crate::metrics::PhaseMetrics;
    use crate::verify::versions::tests::{evidence, timeline};

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
    fn the_switch_is_timed_when_the_share_first_held_not_at_the_window_start() {
        // A ramp as connections drain: 10% → 60% at 5.0 s, → 90% at 5.2 s,
        // 100% from 5.4 s. The first second within 5% of 100% starts at
        // 5.1 s (its average is 97%); the share held from 5.4 s.
        let ramp = timeline(|s| match s {
            s if s < 5.0 => (2, 0, 0),
            s if s < 5.2 => (12, 0, 0),
            s if s < 5.4 => (18, 0, 0),
            _ => (20, 0, 0),
        });
        let metrics = vec![PhaseMetrics::default(); 3];
        let check = traffic_shift(&shift_spec(), &evidence(&ramp, &metrics));
        assert!(check.passed, "{check:?}");
        assert!(
            (check.measured["switched_after_s"] - 0.4).abs() < 1e-9,
            "{check:?}"
        );
        assert!(check
            .observed
            .contains("switched after 400ms (at 100 ms resolution)"));
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
