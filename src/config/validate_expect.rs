//! A phase's `expect` thresholds, its `by_version` thresholds, and where the
//! run reads versions from (`load.version_from`, or a verifier's), raw → model.
//!
//! One source of truth for versions: the load generator reads one place per
//! run, so `load.version_from`, `canary.version_from` and
//! `traffic_shift.version_from` must agree; a check that omits its own reads
//! the load's. A `by_version` with no source anywhere could only ever judge
//! "no requests", so it is an error before the run, with a help line saying
//! where to add one.

use super::decode::{describe, scalar_text};
use super::diagnostics::{did_you_mean, Diagnostic};
use super::model::{
    Experiment, Metric, TargetKind, Threshold, VersionFrom, VersionSource, VersionThresholds,
};
use super::raw_verify::RawLoadVersionFrom;
use super::source::Node;
use super::units::parse_threshold;

pub use super::demo_names::DEMO_VERSIONS;

/// Metrics a `by_version` threshold may name: host telemetry is not per version.
pub(super) fn per_version(metric: Metric) -> bool {
    !matches!(metric, Metric::HostCpu | Metric::HostMemory)
}

/// A phase's `expect`: its own thresholds and its `by_version` ones
/// (`probes` is checked with the other probe references).
pub fn expect(
    raw: Option<&serde_yaml::Mapping>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<(Vec<Threshold>, Vec<VersionThresholds>)> {
    let mut ok = true;
    let mut own = Vec::new();
    let mut by_version = Vec::new();
    for (key, value) in raw.into_iter().flatten() {
        let key_text = scalar_text(key).unwrap_or_else(|| describe(key).to_string());
        match key_text.as_str() {
            "probes" => {}
            "by_version" => match versions(value, &node.at("by_version"), diags) {
                Some(v) => by_version = v,
                None => ok = false,
            },
            _ => match threshold(&key_text, value, &node.at(&key_text), true, diags) {
                Some(t) => own.push(t),
                None => ok = false,
            },
        }
    }
    ok.then_some((own, by_version))
}

/// `by_version: { v2: { error_rate: "< 5%" }, ... }`.
fn versions(
    value: &serde_yaml::Value,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<VersionThresholds>> {
    let Some(map) = value.as_mapping() else {
        diags.push(node.error(format!(
            "expected version → thresholds, e.g. `by_version: {{ v2: {{ p99: \"< 300ms\" }} }}`, found {}",
            describe(value)
        )));
        return None;
    };
    let mut ok = true;
    let mut out = Vec::new();
    for (key, value) in map {
        let version = scalar_text(key).unwrap_or_default().trim().to_string();
        let at = node.at(&scalar_text(key).unwrap_or_else(|| describe(key).to_string()));
        if version.is_empty() {
            diags.push(at.key_error("a version label must not be empty"));
            ok = false;
            continue;
        }
        let Some(inner) = value.as_mapping() else {
            diags.push(at.error(format!(
                "expected metric → threshold for version `{version}`, e.g. `{{ error_rate: \"< 5%\" }}`, found {}",
                describe(value)
            )));
            ok = false;
            continue;
        };
        let mut thresholds = Vec::new();
        for (metric, value) in inner {
            let metric_text = scalar_text(metric).unwrap_or_else(|| describe(metric).to_string());
            match threshold(&metric_text, value, &at.at(&metric_text), false, diags) {
                Some(t) => thresholds.push(t),
                None => ok = false,
            }
        }
        out.push(VersionThresholds {
            version,
            thresholds,
        });
    }
    ok.then_some(out)
}

/// One `metric: "op value"` entry; `host` says whether host metrics are allowed.
fn threshold(
    key: &str,
    value: &serde_yaml::Value,
    at: &Node<'_>,
    host: bool,
    diags: &mut Vec<Diagnostic>,
) -> Option<Threshold> {
    let known: Vec<&str> = Metric::ALL
        .iter()
        .filter(|m| host || per_version(**m))
        .map(|m| m.key())
        .collect();
    let metric = match Metric::from_key(key) {
        Some(m) if host || per_version(m) => m,
        Some(m) => {
            let message = format!("`{}` is not measured per version", m.key());
            let help = format!("per-version metrics: {}", known.join(", "));
            diags.push(at.key_error(message).with_help(help));
            return None;
        }
        None => {
            let diag = at.key_error(format!("unknown metric `{key}`"));
            diags.push(match did_you_mean(key, known.iter().copied()) {
                Some(s) => diag.with_help(format!("did you mean `{s}`?")),
                None => diag.with_help(format!("known metrics: {}", known.join(", "))),
            });
            return None;
        }
    };
    let parsed = match scalar_text(value) {
        Some(text) => parse_threshold(metric, &text),
        None => Err(format!(
            "expected a threshold such as `< 100ms`, found {}",
            describe(value)
        )),
    };
    parsed.map_err(|message| diags.push(at.error(message))).ok()
}

/// `{ header: x-version }` or `{ json: /version }`: exactly one of them.
pub fn version_source(
    header: Option<&String>,
    json: Option<&String>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<VersionSource> {
    match (header, json) {
        (Some(h), None) => match http::HeaderName::from_bytes(h.trim().as_bytes()) {
            Ok(name) => Some(VersionSource::Header(name)),
            Err(_) => {
                diags.push(
                    node.at("header")
                        .error(format!("`{h}` is not a valid header name")),
                );
                None
            }
        },
        (None, Some(p)) => {
            super::validate_verify::pointer(p, &node.at("json"), diags).map(VersionSource::Json)
        }
        _ => {
            diags.push(node.error(
                "expected exactly one of `header` (e.g. `header: x-version`) or `json` (a JSON pointer such as `/version`)",
            ));
            None
        }
    }
}

/// `load.version_from`.
pub fn load_version_from(
    raw: &RawLoadVersionFrom,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<VersionFrom> {
    let source = version_source(raw.header.as_ref(), raw.json.as_ref(), node, diags);
    let mut versions: Vec<String> = Vec::new();
    let mut ok = true;
    for (index, v) in raw.versions.iter().flatten().enumerate() {
        let v = v.trim();
        if v.is_empty() {
            diags.push(node.at("versions").item(index).error("must not be empty"));
            ok = false;
        } else if !versions.iter().any(|seen| seen == v) {
            versions.push(v.to_string());
        }
    }
    if raw.versions.as_ref().is_some_and(Vec::is_empty) {
        diags.push(node.at("versions").error(
            "must list at least one version (or leave `versions` out: then any label is accepted)",
        ));
        ok = false;
    }
    let source = source?;
    ok.then_some(VersionFrom { source, versions })
}

/// A check's own `version_from` against the load's: the check inherits the
/// load's when it has none, and may not contradict it.
pub fn check_version_source(
    own: Option<VersionSource>,
    load: Option<&VersionSource>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<VersionSource> {
    match (own, load) {
        (None, load) => Some(load.cloned().unwrap_or_default()),
        (Some(own), Some(load)) if own != *load => {
            diags.push(
                node.error(format!(
                    "reads the version from {own}, but `load.version_from` reads it from {load}: \
                     a run reads the version from one place"
                ))
                .with_help("drop this `version_from`: the check then uses the load's"),
            );
            None
        }
        (Some(own), _) => Some(own),
    }
}

/// The checks that need the whole experiment: a `by_version` needs a version
/// source, and its keys must be versions the system serves when those are
/// known (the demo's, or `load.version_from.versions`).
pub fn by_version_sources(exp: &Experiment, node: &Node<'_>, diags: &mut Vec<Diagnostic>) {
    let declared: Vec<&str> = match (&exp.target.kind, &exp.load.version_from) {
        (_, Some(from)) if !from.versions.is_empty() => {
            from.versions.iter().map(String::as_str).collect()
        }
        (TargetKind::Demo(_), _) => DEMO_VERSIONS.to_vec(),
        _ => Vec::new(),
    };
    for (index, phase) in exp.phases.iter().enumerate() {
        if phase.by_version.is_empty() {
            continue;
        }
        // The validated phases line up with the raw list: validation keeps
        // every phase or fails the experiment.
        let at = node.at("phases").item(index).at("expect").at("by_version");
        if exp.version_source().is_none() {
            diags.push(
                at.key_error(format!(
                    "`by_version` in phase `{}` needs to know which version served each response, \
                     and nothing in the experiment says where to read it",
                    phase.name
                ))
                .with_help(
                    "add `version_from: { header: x-version }` (or `{ json: /version }`) under `load`",
                ),
            );
            continue;
        }
        if declared.is_empty() {
            continue;
        }
        for v in &phase.by_version {
            if declared.contains(&v.version.as_str()) {
                continue;
            }
            let diag = at.at(&v.version).key_error(format!(
                "unknown version `{}`; the system serves {}",
                v.version,
                declared
                    .iter()
                    .map(|d| format!("`{d}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            diags.push(match did_you_mean(&v.version, declared.iter().copied()) {
                Some(s) => diag.with_help(format!("did you mean `{s}`?")),
                None => diag,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::model::{Metric, VersionSource};
    use crate::config::{load_str, Diagnostic};

    /// An experiment on a `url` target with `load_extra` under `load` and
    /// `expect` as the one phase's `expect`, then `rest`.
    fn yaml(load_extra: &str, expect: &str, rest: &str) -> String {
        format!(
            "name: v\ntarget: {{ url: http://127.0.0.1:8080 }}\n\
             load:\n  rate: 10\n  requests: [{{ path: / }}]\n{load_extra}\
             phases:\n  - name: p\n    duration: 2s\n    expect: {expect}\n{rest}"
        )
    }

    fn errors(text: &str) -> Vec<Diagnostic> {
        match load_str(text, Path::new("x.yaml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.diagnostics,
        }
    }

    const CANARY: &str =
        "verify:\n  - canary: { phase: p, canary_version: v2, rolled_back_within: 1s }\n";

    #[test]
    fn by_version_thresholds_become_the_model_and_the_load_says_where_versions_are() {
        let text = yaml(
            "  version_from: { json: /version }\n",
            "{ error_rate: \"< 1%\", by_version: { v2: { p99: \"< 300ms\", requests: \"> 0\" } } }",
            CANARY,
        );
        let doc = load_str(&text, Path::new("x.yaml")).expect("valid");
        let exp = &doc.experiments[0];
        let phase = &exp.phases[0];
        assert_eq!(phase.expect.len(), 1);
        assert_eq!(phase.by_version.len(), 1);
        assert_eq!(phase.by_version[0].version, "v2");
        let metrics: Vec<Metric> = phase.by_version[0]
            .thresholds
            .iter()
            .map(|t| t.metric)
            .collect();
        assert_eq!(metrics, [Metric::P99, Metric::Requests]);
        let json = VersionSource::Json("/version".into());
        assert_eq!(exp.version_source(), Some(&json));
        // The canary without its own `version_from` reads the load's.
        assert_eq!(exp.verify[0].version_source(), Some(&json));
    }

    #[test]
    fn a_canary_check_is_a_version_source_too() {
        let text = yaml(
            "",
            "{ by_version: { v2: { error_rate: \"< 5%\" } } }",
            CANARY,
        );
        assert_eq!(errors(&text), Vec::new());
    }

    #[test]
    fn bad_by_version_entries_are_reported_where_they_are() {
        let from = "  version_from: { header: x-version }\n";
        let cases = [
            (
                "host metrics are not per version",
                yaml(from, "{ by_version: { v2: { host_cpu: \"< 50%\" } } }", ""),
                "`host_cpu` is not measured per version",
            ),
            (
                "a version maps to thresholds",
                yaml(from, "{ by_version: { v2: \"< 5%\" } }", ""),
                "expected metric → threshold for version `v2`",
            ),
            (
                "by_version is a mapping",
                yaml(from, "{ by_version: [v2] }", ""),
                "expected version → thresholds",
            ),
            (
                "a declared list catches typos",
                yaml(
                    "  version_from: { header: x-version, versions: [stable, canary] }\n",
                    "{ by_version: { canry: { errors: \"== 0\" } } }",
                    "",
                ),
                "unknown version `canry`; the system serves `stable`, `canary`",
            ),
            (
                "a check may not read versions elsewhere than the load",
                yaml(
                    from,
                    "{ error_rate: \"< 1%\" }",
                    "verify:\n  - canary: { phase: p, canary_version: v2, rolled_back_within: 1s, version_from: { json: /v } }\n",
                ),
                "reads the version from JSON pointer `/v`, but `load.version_from` reads it from header `x-version`",
            ),
        ];
        for (case, text, message) in cases {
            let found = errors(&text);
            assert_eq!(found.len(), 1, "{case}: {found:#?}");
            assert!(
                found[0].message.contains(message),
                "{case}: {}",
                found[0].message
            );
        }
    }

    #[test]
    fn without_declared_versions_any_label_is_accepted() {
        let text = yaml(
            "  version_from: { header: x-version }\n",
            "{ by_version: { green: { error_rate: \"< 5%\" } } }",
            "",
        );
        assert_eq!(errors(&text), Vec::new());
    }
}
