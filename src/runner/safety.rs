//! Safety at run time: the production guard before anything starts, and the
//! stop conditions (`abort_if`) watched every second while an experiment runs.
//!
//! A tripped stop condition is the game day's halt button: it stops the run
//! through the same path as Ctrl-C (every fault rolled back at once, load
//! stopped, the experiment `aborted`, exit 3), with the condition and the
//! observed value as the reason.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::signals::StopSignals;
use crate::config::model::{Experiment, Metric, ProbeDecl, StopCondition, StopWhen};
use crate::metrics::LiveStats;
use crate::probes::{self, ProbeContext};

/// Refuses production experiments unless the file says `allow_production:
/// true` *and* the command line has `--allow-production`; says which is missing.
pub fn production_guard(experiments: &[&Experiment], flag: bool) -> Result<(), String> {
    for exp in experiments.iter().filter(|e| e.safety.is_production()) {
        let file = exp.safety.allow_production;
        if file && flag {
            continue;
        }
        let mut missing = Vec::new();
        if !file {
            missing.push("the file does not say `safety: { allow_production: true }`");
        }
        if !flag {
            missing.push("the command line has no `--allow-production`");
        }
        return Err(format!(
            "refusing to run experiment `{}` against production (`safety.environment: \
             production`): a production run needs both `allow_production: true` in the file \
             and `--allow-production` on the command line, and {}",
            exp.name,
            missing.join(", and ")
        ));
    }
    Ok(())
}

/// Watches every stop condition of `exp` until `done` is cancelled; the first
/// that holds for its duration triggers `signals` with why.
pub fn spawn_monitor(
    exp: &Experiment,
    live: watch::Receiver<LiveStats>,
    target_base: &http::Uri,
    signals: &StopSignals,
    done: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    if exp.safety.abort_if.is_empty() {
        return None;
    }
    let conditions = exp.safety.abort_if.clone();
    let probes: Vec<Option<ProbeDecl>> = conditions
        .iter()
        .map(|c| match &c.when {
            StopWhen::ProbeFails(name) => exp.probes.iter().find(|p| &p.name == name).cloned(),
            StopWhen::Metric(_) => None,
        })
        .collect();
    let ctx = Arc::new(ProbeContext {
        target_base: Some(target_base.clone()),
    });
    let signals = signals.clone();
    Some(tokio::spawn(monitor(
        conditions, probes, live, ctx, signals, done,
    )))
}

async fn monitor(
    conditions: Vec<StopCondition>,
    probes: Vec<Option<ProbeDecl>>,
    mut live: watch::Receiver<LiveStats>,
    ctx: Arc<ProbeContext>,
    signals: StopSignals,
    done: CancellationToken,
) {
    // Since when each condition has held (None: it does not hold now).
    let mut since: Vec<Option<Instant>> = vec![None; conditions.len()];
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = done.cancelled() => return,
            _ = signals.stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let stats = live.borrow_and_update().clone();
        for (i, condition) in conditions.iter().enumerate() {
            let observed = match (&condition.when, &probes[i]) {
                (StopWhen::Metric(t), _) => metric(t.metric, &stats)
                    .filter(|v| t.op.holds(*v, t.value))
                    .map(|v| crate::verify::thresholds::format_value(t.metric, v)),
                (StopWhen::ProbeFails(_), Some(decl)) => {
                    let o = tokio::select! {
                        o = probes::observe(decl, &ctx) => o,
                        _ = done.cancelled() => return,
                    };
                    (!o.passed).then_some(o.reason)
                }
                (StopWhen::ProbeFails(_), None) => None,
            };
            let Some(observed) = observed else {
                since[i] = None;
                continue;
            };
            // The live stats cover the last full second, so a condition seen
            // now has held since one second ago.
            let start = *since[i].get_or_insert_with(|| Instant::now() - Duration::from_secs(1));
            if start.elapsed() + Duration::from_millis(50) >= condition.hold {
                tracing::warn!(condition = %condition.source, observed = %observed, "stop condition met: aborting");
                signals.trigger(&format!(
                    "stop condition `{}` met (observed {observed}): faults rolled back, load stopped",
                    condition.source
                ));
                return;
            }
        }
    }
}

/// A metric of the last second; `None` when there is nothing to judge.
fn metric(metric: Metric, stats: &LiveStats) -> Option<f64> {
    match metric {
        Metric::ErrorRate => (stats.rate > 0.0).then_some(stats.error_rate),
        Metric::P99 => stats.p99_ms,
        Metric::P50 => stats.p50_ms,
        Metric::Rate => Some(stats.rate),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Safety;

    fn experiment(safety: Safety) -> Experiment {
        let doc = crate::config::load_str(
            "name: x\ntarget: { demo: {} }\nload: { rate: 10, requests: [ { path: / } ] }\nphases: [ { name: a, duration: 1s } ]\n",
            std::path::Path::new("x.yaml"),
        )
        .expect("valid");
        let mut exp = doc.experiments.into_iter().next().expect("one");
        exp.safety = safety;
        exp
    }

    #[test]
    fn production_needs_both_switches() {
        let prod = |allow| Safety {
            environment: Some("production".into()),
            allow_production: allow,
            ..Safety::default()
        };
        let neither = experiment(prod(false));
        let why = production_guard(&[&neither], false).expect_err("refused");
        assert!(
            why.contains("does not say `safety: { allow_production: true }`"),
            "{why}"
        );
        assert!(why.contains("no `--allow-production`"), "{why}");
        assert!(production_guard(&[&neither], true).is_err());
        let file_only = experiment(prod(true));
        let why = production_guard(&[&file_only], false).expect_err("refused");
        assert!(!why.contains("does not say"), "{why}");
        assert!(production_guard(&[&file_only], true).is_ok());
        let staging = experiment(Safety {
            environment: Some("staging".into()),
            ..Safety::default()
        });
        assert!(production_guard(&[&staging], false).is_ok());
    }
}
