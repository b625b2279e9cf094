//! What the run watches beside the load, for the verifiers: calls counted at
//! a dependency's proxy, a breaker's state endpoint, and probes.
//!
//! Each observer is a task on the run's clock (offsets from the load's
//! start, like the timeline), bounded by the load's planned end and stopped
//! early with the run. Probes are scheduled on the *planned* phase times:
//! `start` probes run shortly after a phase begins (once its faults are
//! applied), `end` probes shortly before it ends (before they are removed),
//! `every` probes on their interval within the phase.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::model::{Experiment, ProbeCheck, ProbeDecl, ProbeWhen, Verifier};
use crate::faults::network::ProxyTarget;
use crate::faults::FaultContext;
use crate::metrics::Classifier;
use crate::probes::{self, ProbeContext};
use crate::proxy::{Proxy, ProxyMode};
use crate::verify::evidence::{CounterSample, TimedObservation, ValueSample};

/// How often the dependency's call counter is read.
const CALLS_EVERY: Duration = Duration::from_millis(100);
/// How often a breaker's state endpoint is read.
const STATE_EVERY: Duration = Duration::from_millis(250);
/// A state read gives up after this long.
const STATE_TIMEOUT: Duration = Duration::from_secs(1);
/// `start`/`end` probes run this far inside the phase (at most a quarter of it).
const ONCE_MARGIN: Duration = Duration::from_millis(250);

/// Everything observed, keyed as [`crate::verify::Evidence`] wants it.
#[derive(Debug, Default)]
pub struct Observed {
    pub calls: BTreeMap<String, Vec<CounterSample>>,
    /// Bytes the proxy forwarded to the dependency, sampled with `calls`.
    pub forwarded: BTreeMap<String, Vec<CounterSample>>,
    pub states: BTreeMap<usize, Vec<ValueSample>>,
    pub probes: BTreeMap<(String, String), Vec<TimedObservation>>,
}

/// Running observers; [`Observers::finish`] stops them and returns what they saw.
pub struct Observers {
    stop: CancellationToken,
    tracker: TaskTracker,
    observed: Arc<Mutex<Observed>>,
}

/// The fast-failure classifier of each `breaker` verifier, in `verify` order.
pub fn classifiers(exp: &Experiment) -> Vec<Classifier> {
    exp.verify
        .iter()
        .filter_map(|v| match v {
            Verifier::Breaker(spec) => {
                let statuses = spec.fast_fail_status.clone();
                let limit = spec.fast_fail_latency;
                let classify: Classifier = Arc::new(move |o: &crate::metrics::Outcome| {
                    o.response_time() < limit && statuses.iter().any(|s| s.matches(o.status))
                });
                Some(classify)
            }
            _ => None,
        })
        .collect()
}

/// Every probe check of the experiment: phase `expect` probes and `verify`
/// ones, and the probe a `canary` confirms its rollback with (at the phase's end).
pub fn probe_checks(exp: &Experiment) -> Vec<ProbeCheck> {
    let from_phases = exp.phases.iter().flat_map(|p| p.probes.iter().cloned());
    let from_verify = exp.verify.iter().filter_map(|v| match v {
        Verifier::Probe(check) => Some(check.clone()),
        Verifier::Canary(canary) => canary.confirm.as_ref().map(|probe| ProbeCheck {
            probe: probe.clone(),
            phase: canary.phase.clone(),
            when: ProbeWhen::End,
        }),
        _ => None,
    });
    from_phases.chain(from_verify).collect()
}

impl Observers {
    /// Starts every observer the experiment's checks need.
    pub fn start(
        exp: &Experiment,
        t0: Instant,
        faults: &FaultContext,
        target_base: &http::Uri,
        stop: &CancellationToken,
    ) -> Observers {
        let observers = Observers {
            stop: stop.child_token(),
            tracker: TaskTracker::new(),
            observed: Arc::new(Mutex::new(Observed::default())),
        };
        let end = t0 + exp.total_duration();
        let ctx = Arc::new(ProbeContext {
            target_base: Some(target_base.clone()),
        });
        for (index, verifier) in exp.verify.iter().enumerate() {
            let Verifier::Breaker(spec) = verifier else {
                continue;
            };
            if let Some(ProxyTarget::Embedded(proxy)) =
                spec.dependency.as_ref().and_then(|d| faults.proxies.get(d))
            {
                observers.count_calls(
                    spec.dependency.clone().unwrap_or_default(),
                    proxy.clone(),
                    t0,
                    end,
                );
            }
            if let Some(state) = &spec.state {
                observers.sample_state(
                    index,
                    state.url.clone(),
                    state.pointer.clone(),
                    ctx.clone(),
                    t0,
                    end,
                );
            }
        }
        let mut offset = Duration::ZERO;
        let spans: BTreeMap<&str, (Duration, Duration)> = exp
            .phases
            .iter()
            .map(|p| {
                let span = (offset, offset + p.duration);
                offset += p.duration;
                (p.name.as_str(), span)
            })
            .collect();
        for check in probe_checks(exp) {
            let (Some(&(start, stop)), Some(decl)) = (
                spans.get(check.phase.as_str()),
                exp.probes.iter().find(|d| d.name == check.probe),
            ) else {
                continue;
            };
            observers.probe(check, decl.clone(), ctx.clone(), t0, (start, stop));
        }
        observers
    }

    fn count_calls(&self, name: String, proxy: Proxy, t0: Instant, end: Instant) {
        let stop = self.stop.clone();
        let observed = self.observed.clone();
        self.tracker.spawn(async move {
            let mut tick = tokio::time::interval_at(t0.into(), CALLS_EVERY);
            let (mut samples, mut bytes) = (Vec::new(), Vec::new());
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => break,
                }
                let now = Instant::now();
                let at = now.saturating_duration_since(t0);
                samples.push(CounterSample {
                    at,
                    value: calls(&proxy),
                });
                bytes.push(CounterSample {
                    at,
                    value: proxy.stats().bytes_upstream,
                });
                if now >= end {
                    break;
                }
            }
            let mut observed = lock(&observed);
            observed.calls.insert(name.clone(), samples);
            observed.forwarded.insert(name, bytes);
        });
    }

    fn sample_state(
        &self,
        index: usize,
        url: String,
        pointer: String,
        ctx: Arc<ProbeContext>,
        t0: Instant,
        end: Instant,
    ) {
        let stop = self.stop.clone();
        let observed = self.observed.clone();
        self.tracker.spawn(async move {
            let mut tick = tokio::time::interval_at(t0.into(), STATE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut samples = Vec::new();
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.cancelled() => break,
                }
                let at = Instant::now().saturating_duration_since(t0);
                let value = tokio::select! {
                    v = probes::json_value(&url, &pointer, &ctx, STATE_TIMEOUT) => v.ok(),
                    _ = stop.cancelled() => break,
                };
                samples.push(ValueSample {
                    at,
                    value: value.map(|v| match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    }),
                });
                if Instant::now() >= end {
                    break;
                }
            }
            lock(&observed).states.insert(index, samples);
        });
    }

    fn probe(
        &self,
        check: ProbeCheck,
        decl: ProbeDecl,
        ctx: Arc<ProbeContext>,
        t0: Instant,
        (start, end): (Duration, Duration),
    ) {
        let stop = self.stop.clone();
        let observed = self.observed.clone();
        self.tracker.spawn(async move {
            let margin = ONCE_MARGIN.min((end - start) / 4);
            let times: Vec<Duration> = match check.when {
                ProbeWhen::Start => vec![start + margin],
                ProbeWhen::End => vec![end.saturating_sub(margin)],
                ProbeWhen::Every { interval, .. } => {
                    let mut times = Vec::new();
                    let mut t = start + margin;
                    while t < end {
                        times.push(t);
                        t += interval;
                    }
                    times
                }
            };
            let key = (check.probe.clone(), check.phase.clone());
            for at in times {
                tokio::select! {
                    _ = tokio::time::sleep_until((t0 + at).into()) => {}
                    _ = stop.cancelled() => return,
                }
                let observation = tokio::select! {
                    o = probes::observe(&decl, &ctx) => o,
                    _ = stop.cancelled() => return,
                };
                tracing::debug!(
                    probe = %decl.name,
                    phase = %check.phase,
                    passed = observation.passed,
                    reason = %observation.reason,
                    "probe observed"
                );
                lock(&observed)
                    .probes
                    .entry(key.clone())
                    .or_default()
                    .push(TimedObservation {
                        at,
                        passed: observation.passed,
                        value: observation.value,
                        reason: observation.reason,
                    });
            }
        });
    }

    /// Stops every observer and returns what they saw.
    pub async fn finish(self) -> Observed {
        self.stop.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        std::mem::take(&mut *lock(&self.observed))
    }
}

/// Every attempt to call the dependency behind the proxy, counted the same
/// way in both modes: what reached the hop, whatever the fault did to it,
/// plus the connects refused while the hop was down (where the hop can
/// count them: see `ProxyStats::refused_observed`).
///
/// In HTTP mode that is every request head received (forwarded, answered by
/// an HTTP fault, or killed by a toxic after it arrived), every connection
/// whose request a toxic dropped before its head reached the HTTP layer, and
/// connections closed at once as the hop went down; in TCP mode every
/// connection accepted.
fn calls(proxy: &Proxy) -> u64 {
    let stats = proxy.stats();
    let reached = match proxy.mode() {
        ProxyMode::Http => stats.request_heads + stats.aborted_before_head + stats.refused,
        ProxyMode::Tcp => stats.accepted,
    };
    reached + stats.refused_connects
}

fn lock(observed: &Mutex<Observed>) -> std::sync::MutexGuard<'_, Observed> {
    // A panicking observer leaves its data usable.
    observed.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    //! `calls` over real loopback sockets: every attempt counts once,
    //! whatever the fault did to it, in both modes.

    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::proxy::spec::{Direction, HttpFaultSpec, ToxicKind, ToxicSpec};
    use crate::proxy::ProxyConfig;

    const N: u64 = 20;
    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nhost: dep\r\nconnection: close\r\n\r\n";

    /// An HTTP upstream that answers every request with a 200 and closes.
    async fn upstream() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(n @ 1..) => head.extend_from_slice(&buf[..n]),
                            _ => return,
                        }
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = conn.write_all(ok).await;
                });
            }
        });
        addr
    }

    async fn hop(mode: ProxyMode, shutdown: &CancellationToken) -> Proxy {
        let cfg = ProxyConfig {
            name: "dep".into(),
            listen: "127.0.0.1:0".parse().expect("addr"),
            upstream: upstream().await,
            mode,
            seed: 1,
        };
        Proxy::start(cfg, shutdown.clone(), &TaskTracker::new())
            .await
            .expect("hop starts")
    }

    fn reset_peer(stream: Direction) -> ToxicSpec {
        upstream_toxic(ToxicKind::ResetPeer { timeout: 0 }, stream)
    }

    fn upstream_toxic(kind: ToxicKind, stream: Direction) -> ToxicSpec {
        ToxicSpec {
            name: kind.type_name().into(),
            stream,
            toxicity: 1.0,
            kind,
        }
    }

    /// `N` connections, each sending one request and reading until it ends.
    async fn n_requests(proxy: &Proxy) {
        for _ in 0..N {
            let Ok(mut conn) = TcpStream::connect(proxy.listen_addr()).await else {
                continue; // refused: the hop is down
            };
            let _ = conn.write_all(REQUEST).await;
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink).await;
        }
    }

    /// `calls` once the hop has taken up every connection (counting happens
    /// as each link runs; give it a moment, bounded).
    async fn settled_calls(proxy: &Proxy) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(2);
        while calls(proxy) < N && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A second look: counting more than N must show too.
        tokio::time::sleep(Duration::from_millis(50)).await;
        calls(proxy)
    }

    /// Applies one fault to a fresh hop.
    type Apply = Box<dyn FnOnce(&Proxy)>;

    async fn calls_under(mode: ProxyMode, fault: impl FnOnce(&Proxy)) -> u64 {
        let shutdown = CancellationToken::new();
        let proxy = hop(mode, &shutdown).await;
        fault(&proxy);
        n_requests(&proxy).await;
        let counted = settled_calls(&proxy).await;
        shutdown.cancel();
        counted
    }

    #[tokio::test]
    async fn every_attempt_counts_once_in_both_modes_whatever_the_fault() {
        tokio::time::timeout(Duration::from_secs(60), async {
            let delay: HttpFaultSpec = serde_json::from_value(
                serde_json::json!({"name": "slow", "type": "http_delay", "delay": 1}),
            )
            .expect("fault");
            let error: HttpFaultSpec = serde_json::from_value(
                serde_json::json!({"name": "fail", "type": "http_error", "status": 500}),
            )
            .expect("fault");
            let cases: Vec<(&str, ProxyMode, Apply)> = vec![
                ("healthy", ProxyMode::Http, Box::new(|_| {})),
                ("healthy", ProxyMode::Tcp, Box::new(|_| {})),
                (
                    "reset_peer upstream",
                    ProxyMode::Http,
                    Box::new(|p| {
                        p.add_toxic(reset_peer(Direction::Upstream)).expect("add");
                    }),
                ),
                (
                    "reset_peer downstream",
                    ProxyMode::Http,
                    Box::new(|p| {
                        p.add_toxic(reset_peer(Direction::Downstream)).expect("add");
                    }),
                ),
                (
                    "reset_peer upstream",
                    ProxyMode::Tcp,
                    Box::new(|p| {
                        p.add_toxic(reset_peer(Direction::Upstream)).expect("add");
                    }),
                ),
                (
                    "timeout upstream",
                    ProxyMode::Http,
                    Box::new(|p| {
                        let kind = ToxicKind::Timeout { timeout: 50 };
                        p.add_toxic(upstream_toxic(kind, Direction::Upstream))
                            .expect("add");
                    }),
                ),
                (
                    "limit_data upstream (inside the head)",
                    ProxyMode::Http,
                    Box::new(|p| {
                        let kind = ToxicKind::LimitData { bytes: 10 };
                        p.add_toxic(upstream_toxic(kind, Direction::Upstream))
                            .expect("add");
                    }),
                ),
                (
                    "http_delay",
                    ProxyMode::Http,
                    Box::new(move |p| {
                        p.add_http_fault(delay).expect("add");
                    }),
                ),
                (
                    "http_error",
                    ProxyMode::Http,
                    Box::new(move |p| {
                        p.add_http_fault(error).expect("add");
                    }),
                ),
                (
                    "down",
                    ProxyMode::Http,
                    Box::new(|p| p.set_enabled(false).expect("down")),
                ),
                (
                    "down",
                    ProxyMode::Tcp,
                    Box::new(|p| p.set_enabled(false).expect("down")),
                ),
            ];
            for (name, mode, fault) in cases {
                let counted = calls_under(mode, fault).await;
                assert_eq!(counted, N, "{name} on a {mode:?} hop: {N} attempts");
            }
        })
        .await
        .expect("test timed out");
    }
}
