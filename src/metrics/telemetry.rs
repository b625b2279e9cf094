//! Host and process telemetry, sampled once a second with sysinfo.
//!
//! [`spawn`] starts one sampler task that refreshes sysinfo every second on
//! a blocking thread (so the load generator's runtime is never stalled by
//! `/proc` reads) and returns every sample when its stop token fires. A run
//! has one sample per second, so keeping them all is cheap (unlike requests).
//!
//! Two CPU scales are used, as `top` does:
//! - host CPU ([`TelemetrySample::host_cpu`]) is 0–100 % of *all* cores;
//! - process CPU (the harness, watched processes) is 100 % per busy core, so
//!   a process spinning two cores shows 200 %.
//!
//! [`phase_summary`] reduces the samples of one phase, and [`pressure_lines`]
//! puts what a resource fault asked for next to what the `stress` process
//! was measured doing.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use sysinfo::{Pid, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Time between two samples (and the period each sample's CPU covers).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// The role whose CPU and RSS a `cpu` or `memory` fault is measured by.
pub const STRESS_ROLE: &str = "stress";

/// A process whose CPU and memory the sampler follows, e.g. the target
/// faultline started or a stress child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedProcess {
    /// `target`, `stress`, ...
    pub role: String,
    pub pid: u32,
}

/// The processes to follow; faults add and remove entries as they start and
/// stop children.
pub type Watched = Arc<Mutex<Vec<WatchedProcess>>>;

/// One second of host and process telemetry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TelemetrySample {
    /// Seconds since the load started (t0), at the end of the second this
    /// sample's CPU figures cover.
    pub t: f64,
    /// Host CPU, 0–100 % of all cores together.
    pub host_cpu: f64,
    /// Each core's CPU, 0–100 %.
    pub host_cpu_per_core: Vec<f64>,
    pub mem_used_bytes: u64,
    pub mem_available_bytes: u64,
    #[serde(default)]
    pub mem_total_bytes: u64,
    /// faultline's own CPU, 100 % per busy core.
    pub harness_cpu: f64,
    pub harness_rss_bytes: u64,
    /// Watched processes summed per role (`target`, `stress`, ...). A
    /// process is left out once it has exited, and for its first two
    /// seconds when it appears after the sampler started (its CPU is not
    /// known yet); a role with no process left in is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub processes: BTreeMap<String, ProcessSample>,
}

/// CPU and memory of the processes of one role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessSample {
    /// 100 % per busy core.
    pub cpu: f64,
    pub rss_bytes: u64,
}

/// Telemetry reduced over one phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PhaseTelemetry {
    /// Samples the figures are based on.
    pub samples: usize,
    /// Logical cores of the host.
    pub cores: usize,
    /// 0–100 % of all cores.
    pub host_cpu_avg: f64,
    pub host_cpu_max: f64,
    pub mem_used_avg_bytes: u64,
    pub mem_used_max_bytes: u64,
    /// 0 when unknown (samples written before the field existed).
    #[serde(default)]
    pub mem_total_bytes: u64,
    /// 100 % per busy core.
    pub harness_cpu_avg: f64,
    pub harness_rss_max_bytes: u64,
    /// Per role, over the samples in which the role was present.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub processes: BTreeMap<String, ProcessPhase>,
}

impl PhaseTelemetry {
    /// Average host CPU as a fraction of all cores (0–1), as the `host_cpu`
    /// threshold reads it.
    pub fn host_cpu_fraction(&self) -> f64 {
        self.host_cpu_avg / 100.0
    }

    /// Average memory in use as a fraction of the total (0–1), as the
    /// `host_memory` threshold reads it; `None` when the total is unknown.
    pub fn host_memory_fraction(&self) -> Option<f64> {
        (self.mem_total_bytes > 0)
            .then(|| self.mem_used_avg_bytes as f64 / self.mem_total_bytes as f64)
    }
}

/// One role over one phase.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessPhase {
    pub samples: usize,
    /// 100 % per busy core.
    pub cpu_avg: f64,
    pub rss_max_bytes: u64,
}

/// Starts the sampler. The first sample comes one second after `t0` (CPU
/// usage needs two refreshes), then one per second until `stop` fires; the
/// task then returns every sample. `t0` may lie slightly in the future.
/// With `live`, each sample is also published to the live metrics.
pub fn spawn(
    t0: Instant,
    watched: Watched,
    stop: CancellationToken,
    live: Option<super::export::ForExperiment>,
) -> JoinHandle<Vec<TelemetrySample>> {
    tokio::spawn(async move {
        let mut samples = Vec::new();
        let first = watched_now(&watched);
        let Ok(Some(mut state)) = tokio::task::spawn_blocking(move || Sampler::new(&first)).await
        else {
            return samples; // no pid of our own, or sysinfo panicked
        };
        let mut ticks = tokio::time::interval_at(first_tick(t0, Instant::now()).into(), INTERVAL);
        // Skip keeps the samples on whole seconds since t0 after a stall.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            let procs = watched_now(&watched);
            let refreshed = tokio::task::spawn_blocking(move || {
                let sample = state.sample(t0, &procs);
                (state, sample)
            })
            .await;
            match refreshed {
                Ok((s, sample)) => {
                    state = s;
                    if let Some(l) = &live {
                        l.live.telemetry(&l.experiment, &sample);
                    }
                    samples.push(sample);
                }
                Err(_) => break, // sysinfo panicked: keep what we have
            }
        }
        samples
    })
}

/// The first whole second after t0 that is at least half a second away, so
/// samples line up with the per-second windows of the load and the first
/// one does not cover a sliver of time.
fn first_tick(t0: Instant, now: Instant) -> Instant {
    let elapsed = now.saturating_duration_since(t0).as_secs_f64();
    let k = (elapsed + 0.5).ceil().max(1.0);
    t0 + INTERVAL.mul_f64(k)
}

fn watched_now(watched: &Watched) -> Vec<WatchedProcess> {
    // A poisoned lock still holds a usable list.
    watched
        .lock()
        .map_or_else(|e| e.into_inner().clone(), |w| w.clone())
}

/// The sysinfo state between two refreshes.
struct Sampler {
    sys: System,
    own: Pid,
    /// Refreshes taken so far.
    refreshes: usize,
    /// The refresh at which each followed pid was first seen.
    first_seen: HashMap<Pid, usize>,
}

impl Sampler {
    /// Takes the first refresh, the baseline of the first sample's CPU.
    fn new(watched: &[WatchedProcess]) -> Option<Sampler> {
        let own = sysinfo::get_current_pid().ok()?;
        let mut sampler = Sampler {
            sys: System::new(),
            own,
            refreshes: 0,
            first_seen: HashMap::new(),
        };
        sampler.refresh(watched);
        Some(sampler)
    }

    /// Refreshes and returns the pids whose CPU figure is now real.
    ///
    /// sysinfo gives a process's CPU from its second refresh on, except
    /// that it takes a process with no CPU time yet at the previous refresh
    /// for one never refreshed, and reports 0 % once more. The processes
    /// there at the start (faultline, an already-running target) have used
    /// CPU by then; one that appears later is usually just spawned, so it
    /// is trusted from its third refresh, not its second.
    fn refresh(&mut self, watched: &[WatchedProcess]) -> HashSet<Pid> {
        let mut pids: Vec<Pid> = watched.iter().map(|w| Pid::from_u32(w.pid)).collect();
        pids.push(self.own);
        pids.sort_unstable();
        pids.dedup();
        self.sys.refresh_cpu_usage();
        self.sys.refresh_memory();
        self.sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&pids),
            true,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        let now = self.refreshes;
        self.refreshes += 1;
        // Forget pids no longer followed, so a reused pid starts afresh.
        self.first_seen.retain(|pid, _| pids.contains(pid));
        pids.into_iter()
            .filter(|pid| {
                let first = *self.first_seen.entry(*pid).or_insert(now);
                let needed = if first == 0 { 1 } else { 2 };
                now - first >= needed
            })
            .collect()
    }

    fn sample(&mut self, t0: Instant, watched: &[WatchedProcess]) -> TelemetrySample {
        let primed = self.refresh(watched);
        let now = Instant::now();
        let t = match now.checked_duration_since(t0) {
            Some(d) => d.as_secs_f64(),
            None => -t0.duration_since(now).as_secs_f64(),
        };
        let alive = |pid: Pid| {
            self.sys.process(pid).filter(|p| {
                primed.contains(&pid)
                    && !matches!(p.status(), ProcessStatus::Zombie | ProcessStatus::Dead)
            })
        };
        let (harness_cpu, harness_rss_bytes) =
            alive(self.own).map_or((0.0, 0), |p| (f64::from(p.cpu_usage()), p.memory()));
        let mut processes: BTreeMap<String, ProcessSample> = BTreeMap::new();
        for w in watched {
            if let Some(p) = alive(Pid::from_u32(w.pid)) {
                let entry = processes.entry(w.role.clone()).or_default();
                entry.cpu += f64::from(p.cpu_usage());
                entry.rss_bytes += p.memory();
            }
        }
        TelemetrySample {
            t,
            host_cpu: f64::from(self.sys.global_cpu_usage()),
            host_cpu_per_core: self
                .sys
                .cpus()
                .iter()
                .map(|c| f64::from(c.cpu_usage()))
                .collect(),
            mem_used_bytes: self.sys.used_memory(),
            mem_available_bytes: self.sys.available_memory(),
            mem_total_bytes: self.sys.total_memory(),
            harness_cpu,
            harness_rss_bytes,
            processes,
        }
    }
}

/// Reduces the samples of the phase `[start_s, end_s)` (seconds since t0).
/// A sample belongs to the phase whose span holds the middle of the second
/// it covers; `None` when no sample does (e.g. a phase shorter than 1 s).
pub fn phase_summary(
    samples: &[TelemetrySample],
    start_s: f64,
    end_s: f64,
) -> Option<PhaseTelemetry> {
    let inside: Vec<&TelemetrySample> = samples
        .iter()
        .filter(|s| {
            let mid = s.t - INTERVAL.as_secs_f64() / 2.0;
            mid >= start_s && mid < end_s
        })
        .collect();
    let n = inside.len();
    if n == 0 {
        return None;
    }
    let avg =
        |f: &dyn Fn(&TelemetrySample) -> f64| inside.iter().map(|s| f(s)).sum::<f64>() / n as f64;
    let max_f =
        |f: &dyn Fn(&TelemetrySample) -> f64| inside.iter().map(|s| f(s)).fold(0.0, f64::max);
    let mut processes: BTreeMap<String, ProcessPhase> = BTreeMap::new();
    for s in &inside {
        for (role, p) in &s.processes {
            let e = processes.entry(role.clone()).or_insert(ProcessPhase {
                samples: 0,
                cpu_avg: 0.0,
                rss_max_bytes: 0,
            });
            e.samples += 1;
            e.cpu_avg += p.cpu; // a sum until divided below
            e.rss_max_bytes = e.rss_max_bytes.max(p.rss_bytes);
        }
    }
    for p in processes.values_mut() {
        p.cpu_avg /= p.samples as f64;
    }
    Some(PhaseTelemetry {
        samples: n,
        cores: inside
            .iter()
            .map(|s| s.host_cpu_per_core.len())
            .max()
            .unwrap_or(0),
        host_cpu_avg: avg(&|s| s.host_cpu),
        host_cpu_max: max_f(&|s| s.host_cpu),
        mem_used_avg_bytes: avg(&|s| s.mem_used_bytes as f64).round() as u64,
        mem_used_max_bytes: inside.iter().map(|s| s.mem_used_bytes).max().unwrap_or(0),
        mem_total_bytes: inside.iter().map(|s| s.mem_total_bytes).max().unwrap_or(0),
        harness_cpu_avg: avg(&|s| s.harness_cpu),
        harness_rss_max_bytes: inside
            .iter()
            .map(|s| s.harness_rss_bytes)
            .max()
            .unwrap_or(0),
        processes,
    })
}

/// What a resource fault asked for, read back from its description.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestedPressure {
    /// `cpu 80% on 2 cores`: `cores` is `None` for `on all cores`.
    Cpu { percent: f64, cores: Option<usize> },
    /// `memory 256MiB`: the size as written.
    Memory { size: String },
}

impl RequestedPressure {
    /// Reads a fault description of the stress faults: `cpu {pct}% on {n}
    /// core(s)`, `cpu {pct}% on all cores` or `memory {size}` (optionally
    /// `(ramp {duration})`). Anything else is `None`: other faults, stress
    /// on a remote host (`... on HOST`, not measured here), or a wording
    /// this code does not know, so a changed format loses a report line,
    /// never the run.
    pub fn parse(description: &str) -> Option<RequestedPressure> {
        let words: Vec<&str> = description.split_whitespace().collect();
        match words.as_slice() {
            ["cpu", pct, "on", rest @ ..] => {
                let percent: f64 = pct.strip_suffix('%')?.parse().ok()?;
                let cores = match rest {
                    ["all", "cores"] => None,
                    [n, "core" | "cores"] => Some(n.parse().ok().filter(|&n: &usize| n > 0)?),
                    _ => return None,
                };
                percent
                    .is_finite()
                    .then_some(RequestedPressure::Cpu { percent, cores })
            }
            // `memory 256MiB` or `memory 256MiB (ramp 10s)`.
            ["memory", size, rest @ ..] => {
                let ramp = matches!(rest, [r, d] if *r == "(ramp" && d.ends_with(')'));
                (rest.is_empty() || ramp).then(|| RequestedPressure::Memory {
                    size: (*size).to_string(),
                })
            }
            _ => None,
        }
    }
}

/// `cpu requested 80% on 1 core, measured 78.4%` (the `stress` processes'
/// average CPU spread over the requested cores) or `memory requested 256MiB,
/// measured RSS 262MiB` (their peak RSS).
pub fn pressure_line(requested: &RequestedPressure, measured: &PhaseTelemetry) -> String {
    let stress = measured.processes.get(STRESS_ROLE);
    let not_seen = "measured – (no stress process seen)";
    match requested {
        RequestedPressure::Cpu { percent, cores } => {
            let on = match cores {
                Some(1) => "1 core".to_string(),
                Some(n) => format!("{n} cores"),
                None => "all cores".to_string(),
            };
            let n = cores.unwrap_or(measured.cores).max(1);
            match stress {
                Some(p) => format!(
                    "cpu requested {} on {on}, measured {:.1}%",
                    format_percent(*percent),
                    p.cpu_avg / n as f64
                ),
                None => format!(
                    "cpu requested {} on {on}, {not_seen}",
                    format_percent(*percent)
                ),
            }
        }
        RequestedPressure::Memory { size } => match stress {
            Some(p) => format!(
                "memory requested {size}, measured RSS {}",
                format_bytes(p.rss_max_bytes)
            ),
            None => format!("memory requested {size}, {not_seen}"),
        },
    }
}

/// One [`pressure_line`] per fault description that is a resource fault.
pub fn pressure_lines(faults: &[String], measured: &PhaseTelemetry) -> Vec<String> {
    faults
        .iter()
        .filter_map(|f| RequestedPressure::parse(f))
        .map(|r| pressure_line(&r, measured))
        .collect()
}

/// `80%`, `12.5%`.
fn format_percent(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{p:.0}%")
    } else {
        format!("{p}%")
    }
}

/// `512KiB`, `262MiB`, `1.50GiB`: binary units, as the stress sizes are written.
pub fn format_bytes(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB * KIB {
        format!("{:.2}GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.0}MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.0}KiB", b / KIB)
    } else {
        format!("{bytes}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn sample(t: f64, host_cpu: f64, stress: Option<(f64, u64)>) -> TelemetrySample {
        TelemetrySample {
            t,
            host_cpu,
            host_cpu_per_core: vec![host_cpu; 4],
            mem_used_bytes: (t as u64) * 1000,
            mem_available_bytes: 1,
            mem_total_bytes: 8000,
            harness_cpu: 10.0 * t,
            harness_rss_bytes: (t as u64) * 10,
            processes: stress
                .map(|(cpu, rss_bytes)| {
                    BTreeMap::from([(STRESS_ROLE.to_string(), ProcessSample { cpu, rss_bytes })])
                })
                .unwrap_or_default(),
        }
    }

    #[test]
    fn samples_fall_on_whole_seconds_after_t0() {
        let t0 = Instant::now();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        assert_eq!(
            first_tick(at(0.05), t0),
            at(0.05) + INTERVAL,
            "t0 in the future"
        );
        assert_eq!(first_tick(t0, at(0.2)), at(1.0));
        assert_eq!(
            first_tick(t0, at(0.7)),
            at(2.0),
            "at least half a second away"
        );
        assert_eq!(first_tick(t0, at(3.2)), at(4.0));
    }

    #[test]
    fn a_phase_takes_the_samples_whose_second_it_covers() {
        // Samples at t=1..=6 cover [0,1) .. [5,6); the phase is [2, 5).
        let samples: Vec<_> = (1..=6)
            .map(|t| sample(t as f64, t as f64 * 10.0, None))
            .collect();
        let s = phase_summary(&samples, 2.0, 5.0).expect("three samples");
        assert_eq!(s.samples, 3); // t = 3, 4, 5
        assert_eq!(s.cores, 4);
        assert!((s.host_cpu_avg - 40.0).abs() < 1e-9);
        assert!((s.host_cpu_max - 50.0).abs() < 1e-9);
        assert_eq!(s.mem_used_avg_bytes, 4000);
        assert_eq!(s.mem_used_max_bytes, 5000);
        assert!((s.host_cpu_fraction() - 0.4).abs() < 1e-9);
        assert_eq!(s.host_memory_fraction(), Some(0.5));
        assert!((s.harness_cpu_avg - 40.0).abs() < 1e-9);
        assert_eq!(s.harness_rss_max_bytes, 50);
        assert!(s.processes.is_empty());
    }

    #[test]
    fn a_phase_without_samples_has_no_summary() {
        let samples = vec![sample(1.0, 5.0, None), sample(2.0, 5.0, None)];
        assert_eq!(phase_summary(&samples, 5.0, 9.0), None);
        assert_eq!(phase_summary(&[], 0.0, 9.0), None);
        // Shorter than a second and between two midpoints.
        assert_eq!(phase_summary(&samples, 0.6, 1.4), None);
    }

    #[test]
    fn a_role_is_averaged_over_the_samples_it_was_seen_in() {
        let samples = vec![
            sample(1.0, 5.0, None),
            sample(2.0, 5.0, Some((70.0, 100 * MIB))),
            sample(3.0, 5.0, Some((90.0, 300 * MIB))),
        ];
        let s = phase_summary(&samples, 0.0, 3.0).expect("samples");
        let stress = s.processes[STRESS_ROLE];
        assert_eq!(stress.samples, 2);
        assert!((stress.cpu_avg - 80.0).abs() < 1e-9);
        assert_eq!(stress.rss_max_bytes, 300 * MIB);
    }

    #[test]
    fn fault_descriptions_are_read_defensively() {
        let cases: &[(&str, &str, Option<RequestedPressure>)] = &[
            (
                "one core",
                "cpu 80% on 1 core",
                Some(RequestedPressure::Cpu {
                    percent: 80.0,
                    cores: Some(1),
                }),
            ),
            (
                "several cores",
                "cpu 50% on 2 cores",
                Some(RequestedPressure::Cpu {
                    percent: 50.0,
                    cores: Some(2),
                }),
            ),
            (
                "all cores",
                "cpu 100% on all cores",
                Some(RequestedPressure::Cpu {
                    percent: 100.0,
                    cores: None,
                }),
            ),
            (
                "a fractional percentage",
                "cpu 12.5% on 1 core",
                Some(RequestedPressure::Cpu {
                    percent: 12.5,
                    cores: Some(1),
                }),
            ),
            (
                "memory",
                "memory 256MiB",
                Some(RequestedPressure::Memory {
                    size: "256MiB".into(),
                }),
            ),
            (
                "a network fault is not pressure",
                "latency 100ms on payments",
                None,
            ),
            ("a percentage needs its sign", "cpu 80 on 1 core", None),
            ("zero cores is nonsense", "cpu 80% on 0 cores", None),
            ("an unknown tail is ignored", "cpu 80% on some cores", None),
            (
                "a memory ramp",
                "memory 1GiB (ramp 10s)",
                Some(RequestedPressure::Memory {
                    size: "1GiB".into(),
                }),
            ),
            ("memory needs exactly one size", "memory 256 MiB", None),
            (
                "cpu on a remote host is not measured here",
                "cpu 80% on 1 core on db-1",
                None,
            ),
            (
                "memory on a remote host is not measured here",
                "memory 1GiB on db-1",
                None,
            ),
            ("empty", "", None),
        ];
        for (name, text, want) in cases {
            assert_eq!(&RequestedPressure::parse(text), want, "{name}: {text:?}");
        }
    }

    fn measured(stress: Option<ProcessPhase>) -> PhaseTelemetry {
        PhaseTelemetry {
            samples: 5,
            cores: 4,
            host_cpu_avg: 30.0,
            host_cpu_max: 40.0,
            mem_used_avg_bytes: 1,
            mem_used_max_bytes: 1,
            mem_total_bytes: 0,
            harness_cpu_avg: 5.0,
            harness_rss_max_bytes: 1,
            processes: stress
                .map(|p| BTreeMap::from([(STRESS_ROLE.to_string(), p)]))
                .unwrap_or_default(),
        }
    }

    #[test]
    fn pressure_lines_put_requested_next_to_measured() {
        let m = measured(Some(ProcessPhase {
            samples: 5,
            cpu_avg: 156.8,
            rss_max_bytes: 262 * MIB,
        }));
        let faults: Vec<String> = [
            "cpu 80% on 2 cores",
            "cpu 80% on 1 core",
            "cpu 40% on all cores",
            "memory 256MiB",
            "latency 100ms on payments",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            pressure_lines(&faults, &m),
            vec![
                "cpu requested 80% on 2 cores, measured 78.4%",
                "cpu requested 80% on 1 core, measured 156.8%",
                "cpu requested 40% on all cores, measured 39.2%",
                "memory requested 256MiB, measured RSS 262MiB",
            ]
        );
    }

    #[test]
    fn pressure_lines_say_when_no_stress_process_was_seen() {
        let m = measured(None);
        let faults = vec!["cpu 80% on 1 core".to_string(), "memory 1GiB".to_string()];
        assert_eq!(
            pressure_lines(&faults, &m),
            vec![
                "cpu requested 80% on 1 core, measured – (no stress process seen)",
                "memory requested 1GiB, measured – (no stress process seen)",
            ]
        );
    }

    #[test]
    fn bytes_are_written_in_binary_units() {
        assert_eq!(format_bytes(512), "512B");
        assert_eq!(format_bytes(512 * 1024), "512KiB");
        assert_eq!(format_bytes(262 * MIB), "262MiB");
        assert_eq!(format_bytes(1536 * MIB), "1.50GiB");
    }
}
