//! `probes:` and phase `expect: { probes: [...] }`, raw → model: each probe
//! kind's fields (`http`, `prometheus`, `command`, `tcp`), the checks on
//! what it observes, and the references from phases to declared probes.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml::Value;

use super::decode::{describe, humanize, scalar_text};
use super::diagnostics::{one_of, Diagnostic};
use super::model::{
    CmpOp, CommandProbe, HttpProbe, JsonCheck, ProbeCheck, ProbeDecl, ProbeKind, ProbeWhen,
    PrometheusProbe, StatusMatch, TcpProbe, ValueCheck,
};
use super::raw::{List, RawPhase, Scalar};
use super::raw_verify::{RawHttpProbe, RawProbe, RawProbeUse};
use super::source::Node;
use super::validate::duration;
use super::validate_load::{headers, method, status};

use super::validate_verify::{fraction, Refs};

/// Default timeout of one probe observation.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

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

pub(super) fn pass_or_fail(
    value: Option<&str>,
    node: &Node<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<bool> {
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

pub(super) fn probe_use(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_parse_numbers_and_percentages() {
        assert_eq!(parse_comparison("< 0.05"), Ok((CmpOp::Lt, 0.05)));
        assert_eq!(parse_comparison(">=1"), Ok((CmpOp::Ge, 1.0)));
        assert_eq!(parse_comparison("< 5%"), Ok((CmpOp::Lt, 0.05)));
        assert!(parse_comparison("0.05").is_err());
        assert!(parse_comparison("< fast").is_err());
    }
}
