//! `probes:`, `verify:` and phase `expect: { probes: [...] }`, raw → model.
//!
//! Besides the shape of each entry, the cross-references are checked here:
//! a verifier naming a phase that does not exist, a probe that is not
//! declared, a dependency proxy faultline cannot count calls at. Every error
//! carries its node and, for names, a did-you-mean.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::Value;

use super::decode::{describe, humanize, scalar_text};
use super::diagnostics::{one_of, Diagnostic};
use super::model::{
    CanarySpec, CmpOp, CommandProbe, CompareMetric, CompareSpec, Expectation, HttpProbe, JsonCheck,
    LatencyTolerance, ProbeCheck, ProbeDecl, ProbeKind, ProbeWhen, PrometheusProbe, RecoverySpec,
    StatusMatch, TcpProbe, Tolerance, TrafficShiftSpec, ValueCheck, Verifier, VersionSource,
    MAX_BASELINE_ERROR_RATE, ROLLED_BACK_SHARE,
};
use super::raw::{List, RawPhase, Scalar};
use super::raw_verify::{
    RawCanary, RawCompare, RawHttpProbe, RawProbe, RawProbeUse, RawRecovery, RawTrafficShift,
    RawVerifier, RawVersionFrom,
};
use super::source::Node;
use super::validate::{duration, items};
use super::validate_expect::{check_version_source, version_source};
use super::validate_faults::ProxyCatalog;
use super::validate_load::{headers, method, status};
use super::validate_resources::unknown_reference;

/// Default timeout of one probe observation.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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

    fn probe(&self, name: &str, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<String> {
        if self.probes.iter().any(|p| p == name) {
            return Some(name.to_string());
        }
        let known: Vec<&str> = self.probes.iter().map(String::as_str).collect();
        diags.push(unknown_reference(node, "probe", name, &known, "probes"));
        None
    }
}

// ---- probes ------------------------------------------------------------------

/// `probes:`: name → one of `http`, `prometheus`, `command`, `tcp`.
pub fn probes(
    raw: Option<&BTreeMap<String, RawProbe>>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<ProbeDecl>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (name, raw) in raw.into_iter().flatten() {
        let at = node.at("probes").at(name);
        match probe(name, raw, &at, diags) {
            Some(decl) => out.push(decl),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

const PROBE_KINDS: &[&str] = &["http", "prometheus", "command", "tcp"];

fn probe(
    name: &str,
    raw: &RawProbe,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ProbeDecl> {
    let timeout = match &raw.timeout {
        Some(v) => duration(v, &node.at("timeout"), true, diags),
        None => Some(PROBE_TIMEOUT),
    };
    let given: Vec<&str> = [
        ("http", raw.http.is_some()),
        ("prometheus", raw.prometheus.is_some()),
        ("command", raw.command.is_some()),
        ("tcp", raw.tcp.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    if given.len() != 1 {
        let message = if given.is_empty() {
            format!("a probe needs exactly one of {}", one_of(PROBE_KINDS))
        } else {
            format!(
                "a probe is exactly one of {}; found {}",
                one_of(PROBE_KINDS),
                given.join(" and ")
            )
        };
        diags.push(node.error(message));
        return None;
    }
    let kind = if let Some(h) = &raw.http {
        http_probe(h, &node.at("http"), diags).map(ProbeKind::Http)
    } else if let Some(p) = &raw.prometheus {
        let at = node.at("prometheus");
        let url = super::validate::required_described(
            p.url.as_ref(),
            &at,
            "url",
            "the Prometheus server, e.g. http://127.0.0.1:9090",
            diags,
        )
        .and_then(|u| super::validate::url(&u, &at.at("url"), diags));
        let query = super::validate::required_described(
            p.query.as_ref(),
            &at,
            "query",
            "a PromQL expression",
            diags,
        );
        let expect = match &p.value {
            Some(v) => comparison(v, &at.at("value"), diags),
            None => {
                diags.extend(at.missing(
                    "value",
                    "missing `value`, the bound every sample must meet, e.g. `< 0.05`",
                ));
                None
            }
        };
        let empty_passes = pass_or_fail(p.empty.as_deref(), &at.at("empty"), diags);
        Some(ProbeKind::Prometheus(PrometheusProbe {
            url: url?,
            query: query?,
            expect: expect?,
            empty_passes: empty_passes?,
        }))
    } else if let Some(c) = &raw.command {
        let at = node.at("command");
        let run = match c.run.as_ref().and_then(scalar_text) {
            Some(t) if !t.trim().is_empty() => Some(t),
            Some(_) => {
                diags.push(at.at("run").error("a command must not be empty"));
                None
            }
            None => {
                diags.extend(at.missing("run", "missing `run`: the shell command to run"));
                None
            }
        };
        let exit_code = match c.exit_code {
            None => Some(0),
            Some(code @ 0..=255) => Some(code as i32),
            Some(code) => {
                diags.push(
                    at.at("exit_code")
                        .error(format!("an exit code is 0 to 255, found `{code}`")),
                );
                None
            }
        };
        let stdout = match &c.stdout {
            Some(r) => regex(r, &at.at("stdout"), diags).map(Some),
            None => Some(None),
        };
        Some(ProbeKind::Command(CommandProbe {
            run: run?,
            exit_code: exit_code?,
            stdout: stdout?,
        }))
    } else if let Some(t) = &raw.tcp {
        let at = node.at("tcp");
        let address = super::validate::required_described(
            t.address.as_ref(),
            &at,
            "address",
            "`host:port`",
            diags,
        )?;
        let valid = address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            diags.push(
                at.at("address")
                    .error(format!("expected `host:port`, found `{address}`")),
            );
            return None;
        }
        Some(ProbeKind::Tcp(TcpProbe { address }))
    } else {
        None
    };
    Some(ProbeDecl {
        name: name.to_string(),
        kind: kind?,
        timeout: timeout?,
    })
}

fn http_probe(
    raw: &RawHttpProbe,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<HttpProbe> {
    let url = super::validate::required_described(
        raw.url.as_ref(),
        node,
        "url",
        "a path such as /health or an http:// URL",
        diags,
    )
    .and_then(|u| probe_url(&u, &node.at("url"), diags));
    let method = match &raw.method {
        Some(m) => method(m, &node.at("method"), diags),
        None => Some(http::Method::GET),
    };
    let headers = headers(raw.headers.as_ref(), &node.at("headers"), diags);
    let status = match &raw.status {
        Some(v) => statuses(v, &node.at("status"), diags).map(Some),
        None => Some(None),
    };
    let json = match &raw.json {
        Some(j) => {
            let at = node.at("json");
            let pointer = super::validate::required_described(
                j.pointer.as_ref(),
                &at,
                "pointer",
                "a JSON pointer such as /state",
                diags,
            )
            .and_then(|p| pointer(&p, &at.at("pointer"), diags));
            let expect = match (&j.equals, &j.value) {
                (Some(v), None) => yaml_to_json(v, &at.at("equals"), diags).map(ValueCheck::Equals),
                (None, Some(v)) => comparison(v, &at.at("value"), diags),
                (Some(_), Some(_)) => {
                    diags.push(at.error("use either `equals` or `value`, not both"));
                    None
                }
                (None, None) => {
                    diags.push(at.error(
                        "missing `equals` (e.g. `equals: closed`) or `value` (e.g. `value: \"< 0.5\"`)",
                    ));
                    None
                }
            };
            Some(Some(JsonCheck {
                pointer: pointer?,
                expect: expect?,
            }))
        }
        None => Some(None),
    };
    let body = match &raw.body {
        Some(r) => regex(r, &node.at("body"), diags).map(Some),
        None => Some(None),
    };
    Some(HttpProbe {
        url: url?,
        method: method?,
        headers: headers?,
        status: status?,
        json: json?,
        body: body?,
    })
}

/// A probe URL: a path joined to the target, or an absolute http(s) URL.
pub(super) fn probe_url(
    text: &str,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    if text.starts_with('/') {
        return super::validate::request_path(text, node, diags);
    }
    super::validate::url(text, node, diags).map(|u| u.to_string())
}

pub(super) fn pointer(text: &str, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    if text.is_empty() || text.starts_with('/') {
        return Some(text.to_string());
    }
    diags.push(
        node.error(format!("a JSON pointer starts with `/`, found `{text}`"))
            .with_help(format!("did you mean `/{text}`?")),
    );
    None
}

fn regex(text: &str, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match regex::Regex::new(text) {
        Ok(_) => Some(text.to_string()),
        Err(e) => {
            let detail = e.to_string();
            let last = detail
                .lines()
                .last()
                .unwrap_or("invalid")
                .trim()
                .to_string();
            diags.push(node.error(format!("invalid regular expression `{text}`: {last}")));
            None
        }
    }
}

fn yaml_to_json(
    value: &Value,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<serde_json::Value> {
    match serde_json::to_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            diags.push(node.error(format!("cannot compare with this value: {e}")));
            None
        }
    }
}

/// `< 0.05`, `>= 1`, `< 5%`: a bound for a number.
fn comparison(value: &Scalar, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<ValueCheck> {
    let text = scalar_text(value).unwrap_or_default();
    match parse_comparison(&text) {
        Ok((op, bound)) => Some(ValueCheck::Compare {
            op,
            value: bound,
            source: text.trim().to_string(),
        }),
        Err(message) => {
            diags.push(node.error(message));
            None
        }
    }
}

/// Parses `< 0.05` (operators `<`, `<=`, `>`, `>=`; `5%` means 0.05).
pub fn parse_comparison(text: &str) -> Result<(CmpOp, f64), String> {
    let t = text.trim();
    let (op, rest) = CmpOp::split(t)
        .map(|(op, rest)| (op, rest.trim()))
        .ok_or_else(|| format!("expected a comparison such as `< 0.05` or `>= 1`, found `{text}` (operators: <, <=, >, >=, ==)"))?;
    let number = if rest.ends_with('%') {
        rest.strip_suffix('%')
            .and_then(|n| n.trim().parse::<f64>().ok())
            .map(|n| n / 100.0)
    } else {
        rest.parse::<f64>().ok()
    };
    match number {
        Some(n) if n.is_finite() => Ok((op, n)),
        _ => Err(format!(
            "expected a number after `{}` in `{text}`",
            op.symbol()
        )),
    }
}

fn pass_or_fail(value: Option<&str>, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<bool> {
    match value {
        None | Some("fail") => Some(false),
        Some("pass") => Some(true),
        Some(other) => {
            diags.push(node.error(format!("expected `pass` or `fail`, found `{other}`")));
            None
        }
    }
}

/// `503`, `5xx` or a list of them.
pub(super) fn statuses(
    value: &Scalar,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<StatusMatch>> {
    let list: Vec<&Value> = match value {
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    let parsed: Option<Vec<StatusMatch>> = list.iter().map(|v| status(v)).collect();
    match parsed {
        Some(l) if !l.is_empty() => Some(l),
        _ => {
            diags.push(node.error(format!(
                "expected a status such as 503 or 5xx, or a list of them, found {}",
                scalar_text(value).map_or_else(|| describe(value).to_string(), |t| format!("`{t}`"))
            )));
            None
        }
    }
}

// ---- phase probes -----------------------------------------------------------

/// The `probes` list inside each phase's `expect`, per phase (same order as `raw`).
pub fn phase_probes(
    raw: Option<&List<RawPhase>>,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Vec<ProbeCheck>>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (index, phase) in raw.into_iter().flatten().enumerate() {
        let mut checks = Vec::new();
        let listed = phase
            .as_ref()
            .and_then(|p| Some((p.name.clone()?, p.expect.as_ref()?.get("probes")?.clone())));
        if let Some((phase_name, value)) = listed {
            let at = node.at("phases").item(index).at("expect").at("probes");
            let Value::Sequence(entries) = value else {
                diags.push(at.error(format!(
                    "expected a list of probe checks such as `- {{ name: health, at: end }}`, found {}",
                    describe(&value)
                )));
                ok = false;
                out.push(checks);
                continue;
            };
            for (i, entry) in entries.into_iter().enumerate() {
                let item = at.item(i);
                match serde_yaml::from_value::<RawProbeUse>(entry) {
                    Ok(use_) => {
                        if use_.phase.is_some() {
                            diags.push(item.at("phase").key_error(
                                "`phase` is implied here (the phase this `expect` belongs to); remove it",
                            ));
                            ok = false;
                            continue;
                        }
                        match probe_use(&use_, Some(&phase_name), &item, refs, diags) {
                            Some(c) => checks.push(c),
                            None => ok = false,
                        }
                    }
                    Err(e) => {
                        diags.push(item.error(humanize(&e.to_string())));
                        ok = false;
                    }
                }
            }
        }
        out.push(checks);
    }
    ok.then_some(out)
}

fn probe_use(
    raw: &RawProbeUse,
    phase: Option<&str>,
    node: &Node<'_>,
    refs: &Refs<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ProbeCheck> {
    let name = match &raw.name {
        Some(n) => refs.probe(n, &node.at("name"), diags),
        None => {
            diags.extend(node.missing(
                "name",
                "missing `name`: the probe (declared under `probes:`)",
            ));
            None
        }
    };
    let phase = match phase {
        Some(p) => Some(p.to_string()),
        None => refs.phase(raw.phase.as_ref(), node, diags),
    };
    let when = match (&raw.at, &raw.every) {
        (Some(_), Some(_)) => {
            diags.push(node.error("use either `at` (start or end) or `every`, not both"));
            None
        }
        (_, Some(every)) => {
            let interval = duration(every, &node.at("every"), true, diags);
            let ratio = match &raw.pass_ratio {
                Some(v) => fraction(v, &node.at("pass_ratio"), diags),
                None => Some(1.0),
            };
            Some(ProbeWhen::Every {
                interval: interval?,
                pass_ratio: ratio?,
            })
        }
        (at, None) => {
            if raw.pass_ratio.is_some() {
                diags.push(
                    node.at("pass_ratio")
                        .key_error("`pass_ratio` needs `every`"),
                );
                None
            } else {
                match at.as_deref() {
                    None | Some("end") => Some(ProbeWhen::End),
                    Some("start") => Some(ProbeWhen::Start),
                    Some(other) => {
                        diags.push(
                            node.at("at")
                                .error(format!("expected `start` or `end`, found `{other}`")),
                        );
                        None
                    }
                }
            }
        }
    };
    Some(ProbeCheck {
        probe: name?,
        phase: phase?,
        when: when?,
    })
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

    #[test]
    fn comparisons_parse_numbers_and_percentages() {
        assert_eq!(parse_comparison("< 0.05"), Ok((CmpOp::Lt, 0.05)));
        assert_eq!(parse_comparison(">=1"), Ok((CmpOp::Ge, 1.0)));
        assert_eq!(parse_comparison("< 5%"), Ok((CmpOp::Lt, 0.05)));
        assert!(parse_comparison("0.05").is_err());
        assert!(parse_comparison("< fast").is_err());
    }
}
