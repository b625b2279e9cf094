//! `faultline plan FILE` and `faultline run --dry-run FILE`: what a run
//! would do, without sending a request or touching a proxy.
//!
//! The plan lists each experiment's target, load (model and total requests),
//! phases with their start times, faults with where they act and their blast
//! radius, checks and stop conditions, and the total duration. Reachability
//! is checked with a TCP connect (targets, embedded proxies' upstreams,
//! probes' hosts) or `GET /version` (Toxiproxy servers, agents): neither is a
//! request to the system under test.

use std::fmt::Write as _;
use std::time::Duration;

use crate::config::model::{
    Experiment, FaultSpec, LoadModel, ProxyKind, RateShape, TargetKind, Verifier,
};
use crate::config::units::format_duration;
use crate::faults;
use crate::load::Schedule;

/// How long a reachability check may take.
const REACH_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether something the run needs answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Reach {
    /// e.g. `target`, `agent `db-host``.
    pub what: String,
    pub address: String,
    /// `None` when reachable; otherwise why not.
    pub problem: Option<String>,
}

/// The plan of `experiments` as text.
pub fn plan_text(experiments: &[&Experiment]) -> String {
    let mut out = String::new();
    let mut total = Duration::ZERO;
    for exp in experiments {
        total += exp.total_duration();
        experiment(&mut out, exp);
    }
    let _ = writeln!(
        out,
        "total: {} experiment(s), {}",
        experiments.len(),
        format_duration(total)
    );
    out
}

fn experiment(out: &mut String, exp: &Experiment) {
    let _ = writeln!(out, "experiment `{}` ({})", exp.name, exp.source.display());
    let target = match &exp.target.kind {
        TargetKind::Demo(d) => {
            let defects: Vec<&str> = d.defects.iter().map(|d| d.key()).collect();
            if defects.is_empty() {
                "the embedded demo system".to_string()
            } else {
                format!(
                    "the embedded demo system with defects: {}",
                    defects.join(", ")
                )
            }
        }
        TargetKind::Url(u) => u.to_string(),
        TargetKind::Command { command, url } => format!("`{command}`, then {url}"),
    };
    let _ = writeln!(out, "  target: {target}");
    if let Some(env) = &exp.safety.environment {
        let _ = writeln!(out, "  environment: {env}");
    }
    let duration = exp.total_duration();
    let load = match &exp.load.model {
        LoadModel::Open {
            rate,
            max_in_flight,
        } => {
            let schedule = Schedule::new(rate.clone());
            let requests = schedule.expected_between(Duration::ZERO, duration);
            let rate = match rate {
                RateShape::Constant(r) => format!("{r}/s"),
                RateShape::Ramp { from, to, over } => {
                    format!("{from}→{to}/s over {}", format_duration(*over))
                }
            };
            format!("open model at {rate} (max {max_in_flight} in flight): {requests:.0} requests")
        }
        LoadModel::Closed { concurrency } => {
            format!(
                "closed model, {concurrency} workers for {}",
                format_duration(duration)
            )
        }
    };
    let _ = writeln!(
        out,
        "  load: {load}, timeout {}",
        format_duration(exp.load.timeout)
    );
    let mut start = Duration::ZERO;
    for phase in &exp.phases {
        let _ = writeln!(
            out,
            "  phase `{}` at +{} for {}",
            phase.name,
            format_duration(start),
            format_duration(phase.duration)
        );
        for fault in &phase.inject {
            let _ = writeln!(
                out,
                "    fault: {}; blast radius: {}",
                faults::describe_in_phase(fault),
                blast_radius(&fault.spec)
            );
        }
        for t in &phase.expect {
            let _ = writeln!(out, "    check: {} {}", t.metric.key(), t.source);
        }
        for p in &phase.probes {
            let _ = writeln!(out, "    check: probe `{}`", p.probe);
        }
        start += phase.duration;
    }
    for v in &exp.verify {
        let _ = writeln!(out, "  verify: {}", verifier(v));
    }
    for c in &exp.safety.abort_if {
        let _ = writeln!(out, "  stop if: {}", c.source);
    }
    let _ = writeln!(out, "  duration: {}", format_duration(duration));
}

fn verifier(v: &Verifier) -> String {
    match v {
        Verifier::Recovery(r) => format!(
            "recovery after `{}` within {} (baseline `{}`)",
            r.after,
            format_duration(r.within),
            r.baseline
        ),
        Verifier::Breaker(b) => format!("breaker during `{}`", b.phase),
        Verifier::Canary(c) => format!(
            "canary `{}` rolled back within {} during `{}`",
            c.canary_version,
            format_duration(c.rolled_back_within),
            c.phase
        ),
        Verifier::TrafficShift(t) => format!(
            "traffic shift to `{}` during `{}`",
            t.target_version, t.phase
        ),
        Verifier::Compare(c) => format!(
            "compare `{}` with `{}`: {}",
            c.current,
            c.baseline,
            c.expect.key()
        ),
        Verifier::Probe(p) => format!("probe `{}` during `{}`", p.probe, p.phase),
    }
}

/// Who a fault can hit: the share of connections or requests, and where.
pub fn blast_radius(spec: &FaultSpec) -> String {
    match spec {
        FaultSpec::Toxic { proxy, toxic } => {
            let stream = match toxic.stream {
                crate::proxy::spec::Direction::Upstream => "client → upstream",
                crate::proxy::spec::Direction::Downstream => "upstream → client",
            };
            format!(
                "{} of connections through `{proxy}` ({stream})",
                share(toxic.toxicity)
            )
        }
        FaultSpec::Down { proxy } => format!("every connection through `{proxy}`"),
        FaultSpec::Http { proxy, fault } => {
            let m = &fault.matcher;
            let mut matching = Vec::new();
            if let Some(method) = &m.method {
                matching.push(method.clone());
            }
            if let Some(path) = &m.path {
                matching.push(path.clone());
            }
            for (k, v) in &m.headers {
                matching.push(format!("{k}: {v}"));
            }
            let which = if matching.is_empty() {
                "requests".to_string()
            } else {
                format!("requests matching {}", matching.join(" "))
            };
            format!("{} of {which} through `{proxy}`", share(fault.probability))
        }
        FaultSpec::Command(c) => match &c.host {
            Some(h) => format!("whatever the command touches, on agent `{h}`"),
            None => "whatever the command touches, on this host".to_string(),
        },
        FaultSpec::Cpu { host, .. } | FaultSpec::Memory { host, .. } => match host {
            Some(h) => format!("every process on agent `{h}`'s host"),
            None => "every process on this host".to_string(),
        },
        FaultSpec::Kill(k) => match &k.host {
            Some(h) => format!("the chosen process(es) on agent `{h}`"),
            None => "the chosen process(es) on this host".to_string(),
        },
    }
}

fn share(fraction: f64) -> String {
    if fraction >= 1.0 {
        "100%".to_string()
    } else {
        format!("{:.0}%", fraction * 100.0)
    }
}

/// Everything `exp` would reach, checked: TCP connects and `GET /version`.
pub async fn reachability(exp: &Experiment) -> Vec<Reach> {
    let mut checks: Vec<(String, String, bool)> = Vec::new();
    match &exp.target.kind {
        TargetKind::Url(u) => checks.push(("target".into(), authority(u), false)),
        // Started by the run itself: nothing to reach yet.
        TargetKind::Command { .. } | TargetKind::Demo(_) => {}
    }
    for p in &exp.proxies {
        match &p.kind {
            ProxyKind::Embedded { upstream, .. } => {
                checks.push((
                    format!("proxy `{}` upstream", p.name),
                    upstream.clone(),
                    false,
                ));
            }
            ProxyKind::Toxiproxy { url, .. } => {
                checks.push((
                    format!("Toxiproxy server of proxy `{}`", p.name),
                    url.to_string(),
                    true,
                ));
            }
        }
    }
    for a in &exp.agents {
        checks.push((format!("agent `{}`", a.name), a.url.to_string(), true));
    }
    let mut out = pidfiles(exp);
    for (what, address, http) in checks {
        let problem = if http {
            get_version(&address).await.err()
        } else {
            connect(&address).await.err()
        };
        out.push(Reach {
            what,
            address,
            problem,
        });
    }
    out
}

/// Local `kill` faults by pidfile: the file must hold a pid faultline may
/// signal now ([`crate::bounds::read_pidfile`]), as it must at apply time.
fn pidfiles(exp: &Experiment) -> Vec<Reach> {
    use crate::config::model::KillWho;
    exp.phases
        .iter()
        .flat_map(|p| &p.inject)
        .filter_map(|f| match &f.spec {
            FaultSpec::Kill(k) if k.host.is_none() => match &k.who {
                KillWho::Pidfile(path) => Some(path),
                _ => None,
            },
            _ => None,
        })
        .map(|path| Reach {
            what: "kill pidfile".to_string(),
            address: path.clone(),
            problem: crate::bounds::read_pidfile(std::path::Path::new(path))
                .err()
                .map(|e| e.to_string()),
        })
        .collect()
}

fn authority(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or_default();
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

async fn connect(address: &str) -> Result<(), String> {
    match tokio::time::timeout(REACH_TIMEOUT, tokio::net::TcpStream::connect(address)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err(format!(
            "no answer within {}",
            format_duration(REACH_TIMEOUT)
        )),
    }
}

async fn get_version(base: &str) -> Result<(), String> {
    let url = format!("{}/version", base.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(REACH_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("GET {url} answered {}", r.status())),
        Err(e) if e.is_timeout() => Err(format!(
            "GET {url}: no answer within {}",
            format_duration(REACH_TIMEOUT)
        )),
        Err(e) if e.is_connect() => Err(format!("GET {url}: cannot connect")),
        Err(e) => Err(format!("GET {url}: {e}")),
    }
}

/// The plan and reachability of every experiment, as printed by `plan`;
/// `Err` carries the same text when something is unreachable.
pub async fn plan_with_reachability(experiments: &[&Experiment]) -> (String, bool) {
    let mut text = plan_text(experiments);
    let mut all_ok = true;
    let _ = writeln!(text, "reachability:");
    let mut any = false;
    for exp in experiments {
        for r in reachability(exp).await {
            any = true;
            match &r.problem {
                None => {
                    let _ = writeln!(
                        text,
                        "  ok           {} ({}) [{}]",
                        r.what, r.address, exp.name
                    );
                }
                Some(why) => {
                    all_ok = false;
                    let _ = writeln!(
                        text,
                        "  UNREACHABLE  {} ({}) [{}]: {why}",
                        r.what, r.address, exp.name
                    );
                }
            }
        }
    }
    if !any {
        let _ = writeln!(
            text,
            "  nothing to check (targets and proxies are started by the run)"
        );
    }
    (text, all_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blast_radius_names_the_share_and_the_match() {
        let doc = crate::config::load_str(
            r#"
name: x
target: { demo: {} }
load: { rate: 10, requests: [ { path: / } ] }
phases:
  - name: f
    duration: 1s
    inject:
      - { type: latency, proxy: payments, latency: 100ms, toxicity: 25% }
      - { type: http_error, proxy: payments, status: 503, probability: 30%, match: { method: POST, path: "/pay*" } }
"#,
            std::path::Path::new("x.yaml"),
        )
        .expect("valid");
        let faults = &doc.experiments[0].phases[0].inject;
        assert_eq!(
            blast_radius(&faults[0].spec),
            "25% of connections through `payments` (upstream → client)"
        );
        assert_eq!(
            blast_radius(&faults[1].spec),
            "30% of requests matching POST /pay* through `payments`"
        );
        let plan = plan_text(&[&doc.experiments[0]]);
        assert!(plan.contains("open model at 10/s (max"), "{plan}");
        assert!(plan.contains(": 10 requests"), "{plan}");
        assert!(plan.contains("phase `f` at +0s for 1s"), "{plan}");
    }

    #[test]
    fn the_plan_shows_when_a_fault_starts_and_ends_in_its_phase() {
        let doc = crate::config::load_str(
            "name: x\ntarget: { demo: {} }\nload: { rate: 10, requests: [ { path: / } ] }\n\
             phases:\n  - name: f\n    duration: 5s\n    inject:\n\
             \x20     - { type: http_error, proxy: payments, status: 503, after: 1s, for: 1500ms }\n\
             \x20     - { type: down, proxy: payments }\n",
            std::path::Path::new("x.yaml"),
        )
        .expect("valid");
        let plan = plan_text(&[&doc.experiments[0]]);
        assert!(
            plan.contains("fault: http_error on payments (status=503) (from +1s, for 1.5s);"),
            "{plan}"
        );
        let whole_phase = plan
            .lines()
            .find(|l| l.contains("fault: down"))
            .expect("the down fault is planned");
        assert!(!whole_phase.contains("from +"), "{whole_phase}");
    }
}
