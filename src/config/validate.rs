//! Raw structs → the validated [`model`](super::model), collecting every
//! semantic error with its YAML path instead of stopping at the first.
//!
//! Each function returns `None` when its piece is invalid and has pushed at
//! least one diagnostic saying why; callers keep going so one run reports
//! everything. Load settings live in [`super::validate_load`], a phase's
//! `expect` and the run's version source in `validate_expect`.

use std::collections::HashMap;
use std::time::Duration;

use super::decode::{describe, scalar_text};
use super::diagnostics::{one_of, Diagnostic};
use super::model::{
    CommandFault, Experiment, FaultSpec, Phase, PhaseFault, Ready, Target, TargetKind,
};
use super::raw::{
    List, RawCommandFault, RawExperiment, RawFault, RawLoad, RawPhase, RawReady, RawTarget, Scalar,
};
use super::raw_inject::RawInject;
use super::source::Node;
use super::units::{format_duration, parse_duration};
use super::validate_faults::{fault, proxies, ProxyCatalog};
use super::validate_load::load;

/// What a suite lends its experiments, with where each piece was written.
#[derive(Default)]
pub struct Defaults<'a> {
    pub target: Option<(&'a RawTarget, Node<'a>)>,
    pub load: Option<(&'a RawLoad, Node<'a>)>,
    /// The suite's `safety`, for experiments without their own.
    pub safety: Option<(&'a super::raw_safety::RawSafety, Node<'a>)>,
    /// The suite's `notify`, for experiments without their own.
    pub notify: Option<(&'a super::raw_safety::RawNotify, Node<'a>)>,
    pub tags: Vec<String>,
}

/// Validates one experiment rooted at `node`, filling gaps from `defaults`.
pub fn experiment(
    raw: &RawExperiment,
    node: &Node<'_>,
    defaults: &Defaults<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Experiment> {
    let name = required_text(raw.name.as_ref(), node, "name", diags);
    let mut tags = tags(raw.tags.as_ref(), node, diags);
    for tag in &defaults.tags {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    let min_samples = at_least_one(raw.min_samples, &node.at("min_samples"), 1, diags);

    let target = match (&raw.target, &defaults.target) {
        (Some(raw), _) => target(raw, &node.at("target"), diags),
        (None, Some((raw, from))) => target(raw, from, diags),
        (None, None) => {
            let message = "missing `target` (required unless a suite provides defaults.target)";
            diags.extend(node.missing("target", message));
            None
        }
    };
    let own_load = raw.load.as_ref().map(|l| (l, node.at("load")));
    let default_load = defaults.load.as_ref().map(|(l, n)| (*l, n.clone()));
    let load = load(own_load, default_load, node, true, diags);
    let demo = matches!(target.as_ref().map(|t| &t.kind), Some(TargetKind::Demo(_)));
    let proxies = proxies(raw.proxies.as_ref(), node, demo, diags);
    let mut catalog = ProxyCatalog::new(proxies.as_deref().unwrap_or_default(), demo);
    if matches!(target.as_ref().map(|t| &t.kind), Some(TargetKind::Demo(o)) if o.failover.is_some())
    {
        catalog = catalog.with_backup_hop();
    }
    let agents = super::validate_resources::agents(raw.agents.as_ref(), node, diags);
    catalog.agents = agents.iter().flatten().map(|a| a.name.clone()).collect();
    catalog.command_target = matches!(
        target.as_ref().map(|t| &t.kind),
        Some(TargetKind::Command { .. })
    );
    // A bad `min_samples` is already reported; phases still get checked.
    let phases = phases(
        raw.phases.as_ref(),
        node,
        min_samples.unwrap_or(1),
        &catalog,
        diags,
    );

    let probes = super::validate_verify::probes(raw.probes.as_ref(), node, diags);
    let refs = super::validate_verify::Refs {
        phases: raw
            .phases
            .iter()
            .flatten()
            .flatten()
            .filter_map(|p| {
                let faults = p.inject.as_ref().is_some_and(|i| !i.is_empty());
                p.name.clone().map(|n| (n, faults))
            })
            .collect(),
        probes: raw
            .probes
            .iter()
            .flatten()
            .map(|(n, _)| n.clone())
            .collect(),
        proxies: &catalog,
        version: load
            .as_ref()
            .and_then(|l| l.version_from.as_ref())
            .map(|v| v.source.clone()),
    };
    let phase_probes =
        super::validate_verify::phase_probes(raw.phases.as_ref(), node, &refs, diags);
    let verify = super::validate_verify::verify(raw.verify.as_ref(), node, &refs, diags);
    let mut phases = phases;
    if let (Some(phases), Some(lists)) = (phases.as_mut(), phase_probes.as_ref()) {
        for (phase, probes) in phases.iter_mut().zip(lists) {
            phase.probes = probes.clone();
        }
    }

    let probe_names: Vec<String> = raw
        .probes
        .iter()
        .flatten()
        .map(|(n, _)| n.clone())
        .collect();
    let safety = match (&raw.safety, &defaults.safety) {
        (Some(r), _) => super::validate_safety::safety(r, &node.at("safety"), &probe_names, diags),
        (None, Some((r, at))) => super::validate_safety::safety(r, at, &probe_names, diags),
        (None, None) => Some(super::model::Safety::default()),
    };

    let notify = match (&raw.notify, &defaults.notify) {
        (Some(n), _) => notify(n, &node.at("notify"), diags),
        (None, Some((n, at))) => notify(n, at, diags),
        (None, None) => Some(None),
    };

    min_samples?;
    phase_probes?;
    let experiment = Experiment {
        name: name?,
        description: raw.description.clone(),
        tags,
        source: node.file.path.clone(),
        suite: None,
        target: target?,
        proxies: proxies?,
        agents: agents?,
        load: load?,
        phases: phases?,
        probes: probes?,
        verify: verify?,
        safety: safety?,
        notify: notify?,
    };
    let before = diags.len();
    super::validate_expect::by_version_sources(&experiment, node, diags);
    super::validate_safety::enforce(&experiment, node, diags);
    (diags.len() == before).then_some(experiment)
}

/// `notify: { webhook: URL }`.
fn notify(
    raw: &super::raw_safety::RawNotify,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Option<http::Uri>> {
    match &raw.webhook {
        Some(text) => url(text, &node.at("webhook"), diags).map(Some),
        None => {
            diags
                .extend(node.missing("webhook", "missing `webhook`: the URL events are posted to"));
            None
        }
    }
}

/// `tags`, without duplicates, in the order written.
pub fn tags(
    raw: Option<&List<String>>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut out = Vec::new();
    // A set, not `out.contains`: that was quadratic in the number of tags.
    let mut seen = std::collections::HashSet::new();
    for (tag, at) in items(raw, &node.at("tags"), "a tag", diags) {
        if tag.trim().is_empty() {
            diags.push(at.error("a tag must not be empty"));
        } else if seen.insert(tag.as_str()) {
            out.push(tag.clone());
        }
    }
    out
}

/// Validates a target written at `node`.
pub fn target(raw: &RawTarget, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<Target> {
    let present: Vec<&str> = [
        ("demo", raw.demo.is_some()),
        ("url", raw.url.is_some()),
        ("command", raw.command.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    match (&raw.demo, &raw.url, &raw.command) {
        (Some(demo), None, None) => {
            let options =
                super::validate_demo::demo_options(demo.as_ref(), &node.at("demo"), diags);
            if raw.ready.is_some() {
                let message = "`ready` does not apply to the demo target, which runs in-process";
                diags.push(node.at("ready").key_error(message));
                return None;
            }
            Some(Target {
                kind: TargetKind::Demo(options?),
                ready: None,
            })
        }
        (None, Some(url_text), None) => {
            let url = url(url_text, &node.at("url"), diags);
            let ready = match &raw.ready {
                Some(r) => Some(ready(r, &node.at("ready"), diags)?),
                None => None,
            };
            Some(Target {
                kind: TargetKind::Url(url?),
                ready,
            })
        }
        (None, url_text, Some(command)) => {
            let command = non_empty(command, &node.at("command"), diags);
            let url = match url_text {
                Some(text) => url(text, &node.at("url"), diags),
                None => {
                    let message =
                        "missing `url`: a `command` target needs it to reach the process it starts";
                    diags.extend(node.missing("url", message));
                    None
                }
            };
            let ready = match &raw.ready {
                Some(r) => ready(r, &node.at("ready"), diags),
                None => Some(default_ready()),
            };
            Some(Target {
                kind: TargetKind::Command {
                    command: command?,
                    url: url?,
                },
                ready: Some(ready?),
            })
        }
        (None, None, None) => {
            let cut = ["demo", "url", "command"]
                .iter()
                .any(|k| node.at(k).is_suppressed());
            if !cut && !node.is_suppressed() {
                let message = "expected one of `demo`, `url` or `command`";
                diags.push(node.file.diagnostic(
                    &node.path,
                    node.file.mapping_span(&node.path),
                    message,
                ));
            }
            None
        }
        _ => {
            let second = present.get(1).copied().unwrap_or("url");
            let message = format!(
                "{} cannot be combined; a target is exactly one of `demo`, `url` or `command`",
                one_of(&present).replace(" or ", " and ")
            );
            diags.push(node.at(second).key_error(message));
            None
        }
    }
}

fn default_ready() -> Ready {
    Ready {
        path: "/".to_string(),
        timeout: Duration::from_secs(30),
        interval: Duration::from_millis(100),
    }
}

pub fn url(text: &str, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<http::Uri> {
    let parsed = text.trim().parse::<http::Uri>().ok().filter(|uri| {
        matches!(uri.scheme_str(), Some("http") | Some("https"))
            && uri.host().is_some_and(|h| !h.is_empty())
    });
    if parsed.is_none() {
        diags.push(node.error(format!(
            "expected an http:// or https:// URL with a host, found `{text}`"
        )));
    }
    parsed
}

fn ready(raw: &RawReady, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<Ready> {
    let defaults = default_ready();
    let path = match &raw.path {
        Some(path) => request_path(path, &node.at("path"), diags),
        None => Some(defaults.path),
    };
    let timeout = optional_duration(
        raw.timeout.as_ref(),
        &node.at("timeout"),
        defaults.timeout,
        diags,
    );
    let interval = optional_duration(
        raw.interval.as_ref(),
        &node.at("interval"),
        defaults.interval,
        diags,
    );
    Some(Ready {
        path: path?,
        timeout: timeout?,
        interval: interval?,
    })
}

fn phases(
    raw: Option<&List<RawPhase>>,
    node: &Node<'_>,
    min_samples: u64,
    catalog: &ProxyCatalog,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Phase>> {
    let Some(list) = raw else {
        diags.extend(node.missing(
            "phases",
            "missing `phases`: an experiment needs at least one phase",
        ));
        return None;
    };
    let at = node.at("phases");
    if list.is_empty() {
        diags.push(at.error("must list at least one phase"));
        return None;
    }
    let mut ok = true;
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (index, item) in list.iter().enumerate() {
        let item_node = at.item(index);
        let Some(raw) = item else {
            if !item_node.is_suppressed() {
                diags.push(item_node.error("expected a phase (a mapping), found nothing (null)"));
            }
            ok = false;
            continue;
        };
        if let Some(name) = &raw.name {
            if let Some(first) = seen.get(name) {
                let message =
                    format!("duplicate phase name `{name}` (also used by phases[{first}])");
                diags.push(item_node.at("name").error(message));
                ok = false;
            } else {
                seen.insert(name.clone(), index);
            }
        }
        match phase(raw, &item_node, min_samples, catalog, diags) {
            Some(phase) => out.push(phase),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn phase(
    raw: &RawPhase,
    node: &Node<'_>,
    default_min: u64,
    catalog: &ProxyCatalog,
    diags: &mut Vec<Diagnostic>,
) -> Option<Phase> {
    let name = required_text(raw.name.as_ref(), node, "name", diags);
    let duration = match &raw.duration {
        Some(v) => duration(v, &node.at("duration"), true, diags).inspect(|&d| {
            super::validate_load::bound(
                crate::bounds::duration("a phase of", d),
                &node.at("duration"),
                diags,
            )
        }),
        None => {
            diags.extend(node.missing("duration", "missing `duration`, e.g. `duration: 30s`"));
            None
        }
    };
    let min_samples = at_least_one(raw.min_samples, &node.at("min_samples"), default_min, diags);
    let expect = super::validate_expect::expect(raw.expect.as_ref(), &node.at("expect"), diags);
    let inject = faults(
        raw.inject.as_ref(),
        &node.at("inject"),
        catalog,
        duration,
        diags,
    );
    let (expect, by_version) = expect?;
    Some(Phase {
        name: name?,
        duration: duration?,
        inject: inject?,
        expect,
        by_version,
        probes: Vec::new(),
        pause: raw.pause.unwrap_or(false),
        min_samples: min_samples?,
    })
}

/// `inject:`, each fault with its timing within a phase of `phase` (when valid).
fn faults(
    raw: Option<&List<RawInject>>,
    node: &Node<'_>,
    catalog: &ProxyCatalog,
    phase: Option<Duration>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<PhaseFault>> {
    let Some(list) = raw else {
        return Some(Vec::new());
    };
    let mut ok = true;
    let mut out = Vec::new();
    for (index, item) in list.iter().enumerate() {
        let at = node.item(index);
        let spec = match item {
            Some(entry) => {
                let spec = match &entry.fault {
                    RawFault::Command(raw) => {
                        command_fault(raw, &at, catalog, diags).map(FaultSpec::Command)
                    }
                    other => fault(other, &at, catalog, diags),
                };
                spec.and_then(|spec| super::validate_timing::timed(entry, spec, &at, phase, diags))
            }
            None => {
                if !at.is_suppressed() {
                    let message = format!(
                        "expected a fault with a `type` ({}), found nothing (null)",
                        one_of(RawFault::TYPES)
                    );
                    diags.push(at.error(message));
                }
                None
            }
        };
        match spec {
            Some(spec) => out.push(spec),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn command_fault(
    raw: &RawCommandFault,
    node: &Node<'_>,
    catalog: &ProxyCatalog,
    diags: &mut Vec<Diagnostic>,
) -> Option<CommandFault> {
    let host = super::validate_resources::Ctx {
        node,
        agents: &catalog.agents,
        diags: &mut *diags,
    }
    .host(&raw.host);
    let run = match &raw.run {
        Some(v) => shell_command(v, &node.at("run"), diags),
        None => {
            diags.extend(node.missing("run", "missing `run`: the command that applies the fault"));
            None
        }
    };
    let rollback = match &raw.rollback {
        Some(v) => shell_command(v, &node.at("rollback"), diags).map(Some),
        None => Some(None),
    };
    let timeout = optional_duration(
        raw.timeout.as_ref(),
        &node.at("timeout"),
        Duration::from_secs(30),
        diags,
    );
    Some(CommandFault {
        host: host?,
        run: run?,
        rollback: rollback?,
        timeout: timeout?,
    })
}

fn shell_command(value: &Scalar, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    match scalar_text(value) {
        Some(text) if !text.trim().is_empty() => Some(text),
        Some(_) => {
            diags.push(node.error("a command must not be empty"));
            None
        }
        None => {
            diags.push(node.error(format!(
                "expected a shell command, found {}",
                describe(value)
            )));
            None
        }
    }
}

// ---- shared field helpers -------------------------------------------------

/// The present, non-null items of a list with their nodes; a null item that
/// no earlier error explains is reported as `expected <what>`.
pub fn items<'r, 'a, T>(
    list: Option<&'r List<T>>,
    node: &Node<'a>,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(&'r T, Node<'a>)> {
    let mut out = Vec::new();
    for (index, item) in list.into_iter().flatten().enumerate() {
        let at = node.item(index);
        match item {
            Some(value) => out.push((value, at)),
            None if at.is_suppressed() => {}
            None => diags.push(at.error(format!("expected {what}, found nothing (null)"))),
        }
    }
    out
}

/// A required, non-empty string field of the mapping at `node`.
pub fn required_text(
    value: Option<&String>,
    node: &Node<'_>,
    field: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    required_described(value, node, field, "", diags)
}

/// [`required_text`] whose "missing" message also says `what` it is.
pub fn required_described(
    value: Option<&String>,
    node: &Node<'_>,
    field: &str,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<String> {
    match value {
        Some(text) => non_empty(text, &node.at(field), diags),
        None => {
            let message = if what.is_empty() {
                format!("missing `{field}`")
            } else {
                format!("missing `{field}`: {what}")
            };
            diags.extend(node.missing(field, message));
            None
        }
    }
}

pub fn non_empty(text: &str, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    if text.trim().is_empty() {
        diags.push(node.error("must not be empty"));
        return None;
    }
    Some(text.to_string())
}

/// A count that must be at least 1, with a default when absent.
pub fn at_least_one(
    value: Option<u64>,
    node: &Node<'_>,
    default: u64,
    diags: &mut Vec<Diagnostic>,
) -> Option<u64> {
    match value {
        None => Some(default),
        Some(0) => {
            diags.push(node.error("must be at least 1, found `0`"));
            None
        }
        Some(n) => Some(n),
    }
}

/// A duration at `node`; `positive` refuses zero.
pub fn duration(
    value: &Scalar,
    node: &Node<'_>,
    positive: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    let parsed = match scalar_text(value) {
        Some(text) => parse_duration(&text),
        None => Err(format!(
            "expected a duration such as 250ms, 10s or 2m, found {}",
            describe(value)
        )),
    };
    match parsed {
        Ok(d) if positive && d.is_zero() => {
            diags.push(node.error(format!(
                "must be greater than 0, found `{}`",
                format_duration(d)
            )));
            None
        }
        Ok(d) => Some(d),
        Err(message) => {
            diags.push(node.error(message));
            None
        }
    }
}

/// An optional positive duration with a default.
pub fn optional_duration(
    value: Option<&Scalar>,
    node: &Node<'_>,
    default: Duration,
    diags: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    match value {
        Some(v) => duration(v, node, true, diags),
        None => Some(default),
    }
}

/// A request or readiness path: starts with `/` and is a valid URI path.
pub fn request_path(text: &str, node: &Node<'_>, diags: &mut Vec<Diagnostic>) -> Option<String> {
    if !text.starts_with('/') {
        diags.push(node.error(format!("a path must start with `/`, found `{text}`")));
        return None;
    }
    if text.parse::<http::uri::PathAndQuery>().is_err() {
        diags.push(node.error(format!(
            "`{text}` is not a valid URL path (spaces and some characters must be percent-encoded)"
        )));
        return None;
    }
    Some(text.to_string())
}
