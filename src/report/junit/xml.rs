//! The XML side of the JUnit report: junit-report writes the suites and
//! cases, and [`splice`] adds what it cannot (root attributes, properties
//! per suite and case) by editing its output in one pass; plus the escaping
//! and number helpers the renderer shares.

use std::fmt::Write as _;
use std::time::SystemTime;

use junit_report::{Duration, OffsetDateTime};

use super::{CaseExtras, JunitError, SuitePlan};

/// Adds to the crate's XML what it cannot express: attributes on
/// `<testsuites>`, the suite's own `time` and `skipped`, `<properties>` on
/// suites and testcases, and the reason of a `<skipped>`.
pub(super) fn splice(xml: &str, root: &str, suites: &[SuitePlan]) -> Result<String, JunitError> {
    let layout = |what: &str| JunitError::Layout(what.to_string());
    let mut out = String::with_capacity(xml.len() * 2);
    let mut rest = xml;
    let mut suite: Option<&SuitePlan> = None;
    let (mut next_suite, mut next_case) = (0, 0);
    let mut case: Option<&CaseExtras> = None;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with("<![CDATA[") {
            let end = rest
                .find("]]>")
                .ok_or_else(|| layout("unterminated CDATA"))?
                + 3;
            out.push_str(&rest[..end]);
            rest = &rest[end..];
            continue;
        }
        let end = rest.find('>').ok_or_else(|| layout("unterminated tag"))? + 1;
        let tag = &rest[..end];
        rest = &rest[end..];
        let empty = tag.ends_with("/>");
        let head = tag.trim_end_matches('>').trim_end_matches('/');
        let name = head[1..]
            .split(|c: char| c.is_whitespace())
            .next()
            .unwrap_or_default();
        match name {
            "testsuites" => {
                out.push_str(head);
                out.push_str(root);
                out.push_str(if empty { "/>" } else { ">" });
            }
            "testsuite" => {
                let plan = suites
                    .get(next_suite)
                    .ok_or_else(|| layout("more testsuites than planned"))?;
                if suite.is_some_and(|s| next_case != s.cases.len()) {
                    return Err(layout("a testsuite has fewer testcases than planned"));
                }
                next_suite += 1;
                next_case = 0;
                suite = Some(plan);
                out.push_str(&set_attr(
                    head,
                    "time",
                    &format!("{:.3}", finite(plan.time_s)),
                )?);
                let _ = write!(out, " skipped=\"{}\">", plan.suite.skipped());
                push_properties(&mut out, &plan.props);
                if empty {
                    out.push_str("</testsuite>");
                }
            }
            "testcase" => {
                let extras = suite
                    .and_then(|s| s.cases.get(next_case))
                    .ok_or_else(|| layout("more testcases than planned"))?;
                next_case += 1;
                out.push_str(head);
                out.push('>');
                push_properties(&mut out, &extras.props);
                if empty {
                    out.push_str("</testcase>");
                } else {
                    case = Some(extras);
                }
            }
            "/testcase" => {
                case = None;
                out.push_str(tag);
            }
            "skipped" => match case.and_then(|c| c.skip_reason.as_deref()) {
                Some(reason) => {
                    let _ = write!(out, "<skipped message=\"{}\"", escape(reason));
                    out.push_str(if empty { "/>" } else { ">" });
                }
                None => out.push_str(tag),
            },
            _ => out.push_str(tag),
        }
    }
    out.push_str(rest);
    if next_suite != suites.len() || suite.is_some_and(|s| next_case != s.cases.len()) {
        return Err(layout("fewer testsuites or testcases than planned"));
    }
    Ok(out)
}

/// Replaces the value of attribute `key` in a start tag the crate wrote.
pub(super) fn set_attr(head: &str, key: &str, value: &str) -> Result<String, JunitError> {
    let needle = format!(" {key}=\"");
    let at = head
        .find(&needle)
        .ok_or_else(|| JunitError::Layout(format!("no {key} attribute")))?
        + needle.len();
    let len = head[at..]
        .find('"')
        .ok_or_else(|| JunitError::Layout(format!("unterminated {key} attribute")))?;
    Ok(format!(
        "{}{}{}",
        &head[..at],
        escape(value),
        &head[at + len..]
    ))
}

pub(super) fn push_properties(out: &mut String, props: &[(&str, String)]) {
    if props.is_empty() {
        return;
    }
    out.push_str("<properties>");
    for (name, value) in props {
        let _ = write!(
            out,
            "<property name=\"{}\" value=\"{}\"/>",
            escape(name),
            escape(value)
        );
    }
    out.push_str("</properties>");
}

/// Escapes an attribute value: the five XML specials, and line breaks and
/// tabs as character references so a parser does not fold them to spaces.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in clean(value).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// Replaces characters XML 1.0 cannot carry at all (even escaped) with U+FFFD.
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Text the crate wraps in one CDATA section: a `]]>` inside would end it
/// early, so it is split across two sections (the parsed text is unchanged).
pub(super) fn cdata_safe(s: &str) -> String {
    clean(s).replace("]]>", "]]]]><![CDATA[>")
}

pub(super) fn finite(s: f64) -> f64 {
    if s.is_finite() && s > 0.0 {
        s
    } else {
        0.0
    }
}

pub(super) fn secs(s: f64) -> Duration {
    // `seconds_f64` panics on overflow; no real phase lasts 30 years.
    Duration::seconds_f64(finite(s).min(1e9))
}

/// An RFC 3339 time from the journal; the run's start when the experiment's
/// is missing (a skipped experiment never started).
pub(super) fn timestamp(at: &str, fallback: &str) -> OffsetDateTime {
    [at, fallback]
        .iter()
        .find_map(|s| humantime::parse_rfc3339_weak(s).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .into()
}
