//! Live metrics of a run, for Prometheus: the catalogue of metric families,
//! the run-wide store ([`Live`]) the run's parts feed, and its two outputs,
//! the text exposition at `/metrics` ([`text`]) and remote write
//! ([`remote_write`]).
//!
//! Feeding never touches the request path. The recorder task, which owns
//! every count already, publishes its totals once a second ([`feed`]); the
//! fault ledger writes on apply and remove; the telemetry sampler once a
//! second; the runner at phase boundaries and at the end (checks). Each of
//! them takes [`Live`]'s one lock briefly; a scrape copies the store under
//! the lock and renders outside it.
//!
//! Latencies are classic histograms (fixed `le` buckets, [`LATENCY_BUCKETS`])
//! rather than summaries: buckets add up across experiments and phases and
//! give `histogram_quantile` over any window in PromQL, where a summary's
//! p50/p99 would be fixed to whatever window the exporter chose. The exact
//! percentiles of each phase stay in report.json.

pub mod feed;
pub mod model;
pub mod remote_write;
pub mod text;

use model::{Desc, Kind, Snapshot, Store, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Upper bounds of the latency histograms, in seconds: 1 ms to 10 s in
/// 1-2.5-5 steps, which keeps the error of `histogram_quantile` within a
/// bucket's width where game-day latencies live.
pub static LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

macro_rules! catalogue {
    ($($id:ident: $kind:ident $name:literal [$($label:literal),*] $help:literal;)*) => {
        $(
            #[doc = $help]
            pub static $id: Desc = Desc {
                name: $name,
                help: $help,
                kind: Kind::$kind,
                labels: &[$($label),*],
            };
        )*
        /// Every family, for the README's table and the dashboard test.
        pub static CATALOGUE: &[&Desc] = &[$(&$id),*];
    };
}

catalogue! {
    BUILD_INFO: Gauge "faultline_build_info" ["version"]
        "Always 1; the faultline version that runs.";
    EXPERIMENT_RUNNING: Gauge "faultline_experiment_running" ["experiment"]
        "1 while the experiment runs (target up, load flowing), else 0.";
    EXPERIMENT_PASSED: Gauge "faultline_experiment_passed" ["experiment"]
        "Set when the experiment ends: 1 when it passed, 0 otherwise.";
    PHASE_ACTIVE: Gauge "faultline_phase_active" ["experiment", "phase"]
        "1 while the phase runs, else 0.";
    REQUESTS: Counter "faultline_requests_total"
        ["experiment", "phase", "request", "status_class", "error_class"]
        "Completed requests, by the phase they were scheduled in; status_class is 2xx..5xx or none (no response), error_class none for a success.";
    ERRORS: Counter "faultline_errors_total" ["experiment", "phase", "request", "error_class"]
        "Requests that counted as errors, by error class.";
    LATE: Counter "faultline_requests_late_total" ["experiment", "phase"]
        "Requests sent more than 10ms after their scheduled time.";
    UNSENT: Counter "faultline_requests_unsent_total" ["experiment", "phase"]
        "Requests scheduled but never sent (the target or max_in_flight held the load back).";
    RESPONSE_TIME: Histogram "faultline_response_time_seconds" ["experiment", "phase"]
        "Response time, from the scheduled start (includes waiting to be sent).";
    SERVICE_TIME: Histogram "faultline_service_time_seconds" ["experiment", "phase"]
        "Service time, from the actual send.";
    RATE_TARGET: Gauge "faultline_rate_target_per_second" ["experiment"]
        "The open model's planned arrival rate now (absent for the closed model).";
    RATE_ACHIEVED: Gauge "faultline_rate_achieved_per_second" ["experiment"]
        "Requests completed in the last full second.";
    FAULT_ACTIVE: Gauge "faultline_fault_active" ["experiment", "phase", "fault", "kind", "target"]
        "1 while the fault is applied, else 0.";
    FAULT_APPLIES: Counter "faultline_fault_applies_total" ["experiment", "phase", "kind", "outcome"]
        "Fault applies, by outcome (ok, failed).";
    FAULT_REMOVALS: Counter "faultline_fault_removals_total" ["experiment", "phase", "kind", "outcome"]
        "Fault removals, by outcome (ok, failed, left_to_finisher).";
    ROLLBACK_FAILURES: Counter "faultline_rollback_failures_total" ["experiment"]
        "Faults that could not be removed: the system may be left degraded.";
    CHECK_PASSED: Gauge "faultline_check_passed" ["experiment", "phase", "kind", "check"]
        "Set when the experiment ends: 1 for each check that passed, 0 for each that failed.";
    HOST_CPU: Gauge "faultline_host_cpu_ratio" ["experiment"]
        "Host CPU busy, 0 to 1 of all cores together.";
    HOST_MEMORY_USED: Gauge "faultline_host_memory_used_bytes" ["experiment"]
        "Host memory in use.";
    HOST_MEMORY_TOTAL: Gauge "faultline_host_memory_total_bytes" ["experiment"]
        "Host memory in total.";
    HARNESS_CPU: Gauge "faultline_harness_cpu_cores" ["experiment"]
        "faultline's own CPU, in busy cores.";
    HARNESS_RSS: Gauge "faultline_harness_memory_rss_bytes" ["experiment"]
        "faultline's own resident memory.";
    PROCESS_CPU: Gauge "faultline_process_cpu_cores" ["experiment", "role"]
        "CPU of the watched processes by role (target, stress), in busy cores: a cpu fault's measured load.";
    PROCESS_RSS: Gauge "faultline_process_memory_rss_bytes" ["experiment", "role"]
        "Resident memory of the watched processes by role: a memory fault's measured size.";
    STRESS_CPU_REQUESTED: Gauge "faultline_stress_cpu_requested_cores" ["experiment", "phase"]
        "CPU a cpu fault asks for while applied (load times cores), else 0.";
    STRESS_MEMORY_REQUESTED: Gauge "faultline_stress_memory_requested_bytes" ["experiment", "phase"]
        "Memory a memory fault asks for while applied, else 0.";
}

/// What the live metrics know of one fault, computed from its spec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultInfo {
    /// Its description (`http_error 503 30% on payments`), the `fault` label.
    pub name: String,
    /// Its YAML `type` (`latency`, `http_error`, `cpu`, …).
    pub kind: &'static str,
    /// The proxy, agent host or `local` it acts on.
    pub target: String,
    pub requested: Option<Requested>,
}

/// What a stress fault asks for, shown beside what telemetry measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Requested {
    CpuCores(f64),
    MemoryBytes(f64),
}

/// The live metrics as one experiment's parts (ledger, sampler) write them.
#[derive(Debug, Clone)]
pub struct ForExperiment {
    pub live: Arc<Live>,
    pub experiment: String,
}

/// How a fault action ended, for the apply/remove counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionOutcome {
    Ok,
    Failed,
    /// The removal was left to the rollback journal or an agent's lease.
    LeftToFinisher,
}

impl ActionOutcome {
    fn key(self) -> &'static str {
        match self {
            ActionOutcome::Ok => "ok",
            ActionOutcome::Failed => "failed",
            ActionOutcome::LeftToFinisher => "left_to_finisher",
        }
    }
}

/// The run's live metrics: every part of the run writes here, `/metrics`
/// and remote write read here.
#[derive(Debug, Default)]
pub struct Live {
    store: Mutex<Store>,
    scrapes: AtomicU64,
}

impl Live {
    pub fn new() -> Arc<Live> {
        let live = Live::default();
        live.with(|s| {
            s.set(
                &BUILD_INFO,
                &[env!("CARGO_PKG_VERSION")],
                Value::Scalar(1.0),
            )
        });
        Arc::new(live)
    }

    /// Runs `f` on the store under its lock (a poisoned lock still holds
    /// usable numbers: a feeder that panicked mid-update left at worst one
    /// stale value).
    pub fn with<R>(&self, f: impl FnOnce(&mut Store) -> R) -> R {
        let mut guard = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with(|s| s.snapshot())
    }

    /// The text exposition, counting it as a scrape.
    pub fn scrape(&self) -> String {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
        text::render(&self.snapshot())
    }

    /// How many times `/metrics` was read.
    pub fn scrapes(&self) -> u64 {
        self.scrapes.load(Ordering::Relaxed)
    }

    /// An experiment starts: its phases and planned faults appear at 0, so
    /// a dashboard shows them (and a fault's gauge has its 0 before its 1).
    pub fn experiment_started(&self, experiment: &str, phases: &[(&str, Vec<FaultInfo>)]) {
        self.with(|s| {
            s.set(&EXPERIMENT_RUNNING, &[experiment], Value::Scalar(1.0));
            s.add(&ROLLBACK_FAILURES, &[experiment], 0.0);
            for (phase, faults) in phases {
                s.set(&PHASE_ACTIVE, &[experiment, phase], Value::Scalar(0.0));
                for info in faults {
                    let labels = [experiment, phase, &info.name, info.kind, &info.target];
                    s.set(&FAULT_ACTIVE, &labels, Value::Scalar(0.0));
                }
            }
        });
    }

    /// A phase begins (`active`) or ends.
    pub fn phase(&self, experiment: &str, phase: &str, active: bool) {
        let v = if active { 1.0 } else { 0.0 };
        self.with(|s| s.set(&PHASE_ACTIVE, &[experiment, phase], Value::Scalar(v)));
    }

    /// A fault's apply ended with `outcome`.
    pub fn fault_applied(
        &self,
        (experiment, phase): (&str, &str),
        info: &FaultInfo,
        outcome: ActionOutcome,
    ) {
        let kind = info.kind;
        self.with(|s| {
            s.add(
                &FAULT_APPLIES,
                &[experiment, phase, kind, outcome.key()],
                1.0,
            );
            if outcome == ActionOutcome::Ok {
                let labels = [experiment, phase, &info.name, kind, &info.target];
                s.set(&FAULT_ACTIVE, &labels, Value::Scalar(1.0));
                set_requested(s, (experiment, phase), info.requested, true);
            }
        });
    }

    /// A fault's removal ended with `outcome`. Its gauge goes to 0 whatever
    /// the outcome: a failed removal is counted (loudly) as a rollback
    /// failure instead, as nobody knows whether it is still in effect.
    pub fn fault_removed(
        &self,
        (experiment, phase): (&str, &str),
        info: &FaultInfo,
        outcome: ActionOutcome,
    ) {
        let kind = info.kind;
        self.with(|s| {
            s.add(
                &FAULT_REMOVALS,
                &[experiment, phase, kind, outcome.key()],
                1.0,
            );
            if outcome == ActionOutcome::Failed {
                s.add(&ROLLBACK_FAILURES, &[experiment], 1.0);
            }
            let labels = [experiment, phase, &info.name, kind, &info.target];
            s.set(&FAULT_ACTIVE, &labels, Value::Scalar(0.0));
            set_requested(s, (experiment, phase), info.requested, false);
        });
    }

    /// A check's verdict, at the end of its experiment.
    pub fn check(&self, experiment: &str, phase: &str, kind: &str, check: &str, passed: bool) {
        let v = if passed { 1.0 } else { 0.0 };
        self.with(|s| {
            s.set(
                &CHECK_PASSED,
                &[experiment, phase, kind, check],
                Value::Scalar(v),
            )
        });
    }

    /// The experiment is over: whatever still reads as running reads 0.
    pub fn experiment_finished(&self, experiment: &str, passed: bool) {
        self.with(|s| {
            s.set(&EXPERIMENT_RUNNING, &[experiment], Value::Scalar(0.0));
            let v = if passed { 1.0 } else { 0.0 };
            s.set(&EXPERIMENT_PASSED, &[experiment], Value::Scalar(v));
            s.set_all(&PHASE_ACTIVE, &[experiment], 0.0);
            s.set_all(&FAULT_ACTIVE, &[experiment], 0.0);
            s.set_all(&RATE_ACHIEVED, &[experiment], 0.0);
            s.set_all(&RATE_TARGET, &[experiment], 0.0);
        });
    }

    /// One second of telemetry.
    pub fn telemetry(&self, experiment: &str, sample: &super::telemetry::TelemetrySample) {
        self.with(|s| {
            let e = [experiment];
            s.set(&HOST_CPU, &e, Value::Scalar(sample.host_cpu / 100.0));
            let used = sample.mem_used_bytes as f64;
            s.set(&HOST_MEMORY_USED, &e, Value::Scalar(used));
            let total = sample.mem_total_bytes as f64;
            s.set(&HOST_MEMORY_TOTAL, &e, Value::Scalar(total));
            s.set(&HARNESS_CPU, &e, Value::Scalar(sample.harness_cpu / 100.0));
            let rss = sample.harness_rss_bytes as f64;
            s.set(&HARNESS_RSS, &e, Value::Scalar(rss));
            // A role with no process left reads 0 rather than its last value.
            s.set_all(&PROCESS_CPU, &e, 0.0);
            s.set_all(&PROCESS_RSS, &e, 0.0);
            for (role, p) in &sample.processes {
                let labels = [experiment, role.as_str()];
                s.set(&PROCESS_CPU, &labels, Value::Scalar(p.cpu / 100.0));
                s.set(&PROCESS_RSS, &labels, Value::Scalar(p.rss_bytes as f64));
            }
        });
    }
}

fn set_requested(
    s: &mut Store,
    (experiment, phase): (&str, &str),
    requested: Option<Requested>,
    on: bool,
) {
    let (desc, amount) = match requested {
        Some(Requested::CpuCores(c)) => (&STRESS_CPU_REQUESTED, c),
        Some(Requested::MemoryBytes(b)) => (&STRESS_MEMORY_REQUESTED, b),
        None => return,
    };
    s.set(
        desc,
        &[experiment, phase],
        Value::Scalar(if on { amount } else { 0.0 }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_unique_prometheus_style_names() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|d| d.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate metric names");
        for d in CATALOGUE {
            assert!(d.name.starts_with("faultline_"), "{}", d.name);
            assert_eq!(
                d.kind == Kind::Counter,
                d.name.ends_with("_total"),
                "a counter's name ends in _total, no other's does: {}",
                d.name
            );
        }
    }

    #[test]
    fn a_fault_reads_1_between_apply_and_remove_and_0_after_the_experiment() {
        let live = Live::new();
        let info = FaultInfo {
            name: "cpu 50% on 2 cores".into(),
            kind: "cpu",
            target: "local".into(),
            requested: Some(Requested::CpuCores(1.0)),
        };
        live.experiment_started("e", &[("p", vec![info.clone()])]);
        let active = |live: &Live| {
            let text = live.scrape();
            text.lines()
                .find(|l| l.starts_with("faultline_fault_active{"))
                .map(|l| l.rsplit(' ').next().unwrap_or("").to_string())
        };
        assert_eq!(active(&live).as_deref(), Some("0"));
        live.fault_applied(("e", "p"), &info, ActionOutcome::Ok);
        assert_eq!(active(&live).as_deref(), Some("1"));
        assert!(live
            .scrape()
            .contains("faultline_stress_cpu_requested_cores{experiment=\"e\",phase=\"p\"} 1\n"));
        live.fault_removed(("e", "p"), &info, ActionOutcome::Failed);
        assert_eq!(active(&live).as_deref(), Some("0"));
        assert!(live
            .scrape()
            .contains("faultline_rollback_failures_total{experiment=\"e\"} 1\n"));
        live.experiment_finished("e", false);
        assert!(live
            .scrape()
            .contains("faultline_experiment_passed{experiment=\"e\"} 0\n"));
        assert_eq!(live.scrapes(), 6);
    }
}
