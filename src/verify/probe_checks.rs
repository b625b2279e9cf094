//! Probe observations turned into checks: once at a phase's start or end, or
//! `every` interval with a required pass ratio.
//!
//! A probe that could not connect or timed out is a failed observation with
//! its reason (the runner records it so), never a harness error: "the health
//! endpoint did not answer during the outage" is exactly what a game day
//! wants to learn.

use super::evidence::{new_check, percent, secs, Evidence};
use crate::config::model::{ProbeCheck, ProbeWhen};
use crate::journal::Check;

pub fn check(spec: &ProbeCheck, ev: &Evidence<'_>) -> Check {
    let expected = match spec.when {
        ProbeWhen::Start => "passes at the phase's start".to_string(),
        ProbeWhen::End => "passes at the phase's end".to_string(),
        ProbeWhen::Every {
            interval,
            pass_ratio,
        } => format!(
            "passes in ≥ {} of observations every {}",
            percent(pass_ratio),
            secs(interval)
        ),
    };
    let mut check = new_check(
        "probe",
        format!("probe `{}`", spec.probe),
        Some(&spec.phase),
        expected,
    );
    let observations = ev
        .probes
        .get(&(spec.probe.clone(), spec.phase.clone()))
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    check.samples = observations.len() as u64;
    if observations.is_empty() {
        check.passed = false;
        check.observed = "not observed".into();
        check.message = Some(format!(
            "the probe was never observed during `{}` (the phase did not run, or ended first)",
            spec.phase
        ));
        return check;
    }
    let passed = observations.iter().filter(|o| o.passed).count();
    let ratio = passed as f64 / observations.len() as f64;
    check.measured.insert("pass_ratio".into(), ratio);
    let first_failure = observations.iter().find(|o| !o.passed);
    match spec.when {
        ProbeWhen::Start | ProbeWhen::End => {
            let o = &observations[0];
            check.passed = o.passed;
            check.observed = match &o.value {
                Some(v) => format!("{} ({v})", if o.passed { "passed" } else { "failed" }),
                None => (if o.passed { "passed" } else { "failed" }).to_string(),
            };
            if !o.passed {
                check.message = Some(format!("at +{}: {}", secs(o.at), o.reason));
            }
        }
        ProbeWhen::Every { pass_ratio, .. } => {
            check.observed = format!(
                "{passed} of {} passed ({})",
                observations.len(),
                percent(ratio)
            );
            if ratio + 1e-12 < pass_ratio {
                check.passed = false;
                let example = first_failure
                    .map(|o| format!("; first failure at +{}: {}", secs(o.at), o.reason))
                    .unwrap_or_default();
                check.message = Some(format!(
                    "passed in {} of observations, below {}{example}",
                    percent(ratio),
                    percent(pass_ratio)
                ));
            }
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::evidence::TimedObservation;
    use std::time::Duration;

    fn observed(results: &[bool]) -> Evidence<'static> {
        let mut ev = Evidence::default();
        ev.probes.insert(
            ("health".into(), "outage".into()),
            results
                .iter()
                .enumerate()
                .map(|(i, ok)| TimedObservation {
                    at: Duration::from_secs(i as u64),
                    passed: *ok,
                    value: Some(if *ok { "200" } else { "503" }.into()),
                    reason: if *ok {
                        "ok".into()
                    } else {
                        "expected status 2xx, got 503".into()
                    },
                })
                .collect(),
        );
        ev
    }

    fn spec(when: ProbeWhen) -> ProbeCheck {
        ProbeCheck {
            probe: "health".into(),
            phase: "outage".into(),
            when,
        }
    }

    #[test]
    fn every_mode_needs_the_pass_ratio() {
        let every = spec(ProbeWhen::Every {
            interval: Duration::from_secs(1),
            pass_ratio: 0.75,
        });
        assert!(check(&every, &observed(&[true, true, true, false])).passed);
        let failed = check(&every, &observed(&[true, false, false, true]));
        assert!(!failed.passed);
        let why = failed.message.expect("why");
        assert!(
            why.contains("first failure at +1.0s: expected status 2xx, got 503"),
            "{why}"
        );
    }

    #[test]
    fn once_modes_take_the_single_observation_and_missing_ones_fail() {
        assert!(!check(&spec(ProbeWhen::End), &observed(&[false])).passed);
        assert!(check(&spec(ProbeWhen::End), &observed(&[true])).passed);
        let missing = check(&spec(ProbeWhen::Start), &Evidence::default());
        assert!(!missing.passed);
        assert_eq!(missing.observed, "not observed");
    }
}
