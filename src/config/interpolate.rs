//! `${VAR}` and `${VAR:-default}` in experiment and suite files, so one file
//! serves a laptop, CI and staging.
//!
//! Substitution is done on the parsed document's *string values*, after
//! serde_yaml has built the `Value` and the position index has been taken
//! from the original text, and never on the raw text. Why: substituting the
//! text first would move every column after a `${...}` (and every line, for
//! a value holding a line break), so each later diagnostic would need a
//! position map back to what the user wrote; a value could also inject YAML
//! syntax (`: `, `#`, a newline) and change the document's shape. Working on
//! values, the index still maps every path to the original text, so a later
//! "expected a duration" points at the `${RAMP:-30s}` the user wrote, and a
//! variable can only ever fill in one value. Mapping keys are never touched.
//!
//! Rules:
//! - `${NAME}` is NAME's value (set but empty is empty); `${NAME:-text}` is
//!   `text` when NAME is unset or empty. The default is literal up to the
//!   first `}`: no nesting, and substituted text is never scanned again, so
//!   expansion is not recursive.
//! - `$${` is a literal `${`.
//! - A plain (unquoted) scalar that becomes a number, a boolean or null
//!   after substitution takes that type, as if the text had been written
//!   there (`rate: ${RATE:-50}` is the number 50); a quoted or block scalar
//!   stays a string.
//! - An unset variable without a default, or a malformed `${`, is a
//!   diagnostic at its own line and column.
//! - Bounded: the text substituted into the whole document (aliases
//!   expanded) may not grow it past [`limits::MAX_FILE_BYTES`].

use std::collections::HashMap;

use serde_yaml::Value;

use super::decode::scalar_text;
use super::diagnostics::Diagnostic;
use super::limits;
use super::locate::{Span, YamlPath};
use super::source::SourceFile;

/// Where `${VAR}` values come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Env {
    /// The process environment (what the CLI uses).
    #[default]
    Process,
    /// A fixed set of variables, for tests and embedders.
    Fixed(HashMap<String, String>),
}

impl Env {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Env::Process => std::env::var(name).ok(),
            Env::Fixed(vars) => vars.get(name).cloned(),
        }
    }
}

/// A problem found while substituting, not yet reported: a `--set` may
/// still replace the value (`--set target.url=...` needs no `TARGET_URL`).
#[derive(Debug)]
pub struct Pending {
    /// The value's path; `None` when no override can excuse it (the size limit).
    path: Option<YamlPath>,
    diagnostic: Diagnostic,
}

/// Substitutes every `${...}` in the string values of `value`. A value
/// that cannot be substituted is left as written and its problem returned,
/// to be reported by [`settle`] once overrides are applied.
pub fn interpolate(value: &mut Value, file: &SourceFile, env: &Env) -> Vec<Pending> {
    let mut walk = Walk {
        file,
        env,
        // What the file may still grow by.
        room: limits::MAX_FILE_BYTES.saturating_sub(file.text.len() as u64),
        pending: Vec::new(),
        full: false,
    };
    walk.value(value, YamlPath::root());
    walk.pending
}

/// Reports the problems of `pending` whose value no `--set` of `file`
/// replaced; false when there was any.
pub fn settle(pending: Vec<Pending>, file: &SourceFile, diags: &mut Vec<Diagnostic>) -> bool {
    let before = diags.len();
    diags.extend(
        pending
            .into_iter()
            .filter(|p| {
                p.path
                    .as_ref()
                    .is_none_or(|path| file.flag_at(path).is_none())
            })
            .map(|p| p.diagnostic),
    );
    diags.len() == before
}

struct Walk<'a> {
    file: &'a SourceFile,
    env: &'a Env,
    room: u64,
    pending: Vec<Pending>,
    /// The size limit was reached: one diagnostic says so, and the walk stops.
    full: bool,
}

impl Walk<'_> {
    fn value(&mut self, value: &mut Value, path: YamlPath) {
        if self.full {
            return;
        }
        match value {
            Value::String(text) if text.contains("${") => {
                if let Some(new) = self.string(text, &path) {
                    *value = new;
                }
            }
            Value::Mapping(map) => {
                for (key, child) in map.iter_mut() {
                    let key = scalar_text(key).unwrap_or_default();
                    self.value(child, path.key(&key));
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.value(item, path.index(i));
                }
            }
            Value::Tagged(tagged) => self.value(&mut tagged.value, path),
            _ => {}
        }
    }

    /// The value replacing the string `text` at `path`; `None` after a diagnostic.
    fn string(&mut self, text: &str, path: &YamlPath) -> Option<Value> {
        let out = match expand(text, self.env, self.room) {
            Ok(out) => out,
            Err(error) => {
                self.full = error == Error::TooLarge;
                let excusable = !self.full;
                let diagnostic = self.diagnostic(text, path, error);
                self.pending.push(Pending {
                    path: excusable.then(|| path.clone()),
                    diagnostic,
                });
                return None;
            }
        };
        let grown = out.len().saturating_sub(text.len()) as u64;
        self.room = self.room.saturating_sub(grown);
        // Only the exact span is trusted to tell the style: an ancestor's
        // (a value under an alias) says nothing about this scalar.
        let quoted = self
            .file
            .locator
            .value(path)
            .and_then(|span| self.file.char_at(span.line, span.column))
            .is_some_and(|c| matches!(c, '"' | '\'' | '|' | '>'));
        Some(match typed(&out) {
            Some(typed) if !quoted => typed,
            _ => Value::String(out),
        })
    }

    fn diagnostic(&self, text: &str, path: &YamlPath, error: Error) -> Diagnostic {
        let (message, help, token, nth) = match error {
            Error::Unset { name, nth } => (
                format!(
                    "`{name}` is not set; export it or write `${{{name}:-...}}` with a default"
                ),
                format!(
                    "`${{{name}:-text}}` is `text` when {name} is unset or empty; `$${{` writes a \
                     literal `${{`"
                ),
                format!("${{{name}"),
                nth,
            ),
            Error::Malformed { token, why, nth } => (
                format!("invalid variable reference `{token}`: {why}"),
                "write `${NAME}` or `${NAME:-default}` (NAME: letters, digits, `_`), or `$${` \
                 for a literal `${`"
                    .to_string(),
                token,
                nth,
            ),
            Error::TooLarge => (
                format!(
                    "substituting variables here grows the file past faultline's limit of {} \
                     for an experiment or suite file",
                    limits::mib(limits::MAX_FILE_BYTES)
                ),
                "a variable holds one value, not a whole document".to_string(),
                String::new(),
                0,
            ),
        };
        let span = self.file.value_span(path).map(|scalar| {
            self.file
                .find_after(scalar, &token, nth, text)
                .unwrap_or(scalar)
        });
        self.file.diagnostic(path, span, message).with_help(help)
    }
}

/// Why a string could not be expanded. `nth` counts the `${` references of
/// the string before the bad one, to find it in the source.
#[derive(Debug, PartialEq)]
enum Error {
    Unset {
        name: String,
        nth: usize,
    },
    Malformed {
        token: String,
        why: &'static str,
        nth: usize,
    },
    TooLarge,
}

/// `text` with every `${...}` replaced and `$${` unescaped; the result may
/// be at most `room` bytes longer than `text`.
fn expand(text: &str, env: &Env, room: u64) -> Result<String, Error> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut nth = 0;
    let limit = (text.len() as u64).saturating_add(room);
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(body) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = body.find('}') else {
            let token: String = tail.chars().take(40).collect();
            return Err(Error::Malformed {
                token,
                why: "no closing `}`",
                nth,
            });
        };
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_name(name) {
            return Err(Error::Malformed {
                token: format!("${{{inner}}}"),
                why: if name.is_empty() {
                    "the variable name is empty"
                } else {
                    "a variable name is letters, digits and `_`, not starting with a digit"
                },
                nth,
            });
        }
        let value = match (env.get(name), default) {
            (Some(v), Some(d)) if v.is_empty() => d.to_string(),
            (Some(v), _) => v,
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                return Err(Error::Unset {
                    name: name.to_string(),
                    nth,
                })
            }
        };
        if (out.len() + value.len()) as u64 > limit {
            return Err(Error::TooLarge);
        }
        out.push_str(&value);
        rest = &body[end + 1..];
        nth += 1;
    }
    out.push_str(rest);
    Ok(out)
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The number, boolean or null that plain YAML text `text` stands for, if
/// it is one (`50`, `0.5`, `true`, `~`, empty); `None` for anything else,
/// which stays a string. Shared with `--set` values.
pub fn typed(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if matches!(trimmed, "" | "~" | "null" | "Null" | "NULL") {
        return Some(Value::Null);
    }
    // Only a single-line scalar: `1\n2` or `a: 1` must not become something else.
    if trimmed.contains(['\n', '#', ':', '[', '{', ',']) {
        return None;
    }
    match serde_yaml::from_str::<Value>(trimmed) {
        Ok(v @ (Value::Bool(_) | Value::Number(_))) => Some(v),
        _ => None,
    }
}

impl SourceFile {
    /// Where the `nth` (0-based) `${...}` reference of the string `value`,
    /// written at `scalar`, is in the text: the first occurrence of `token`
    /// after `nth` earlier `${`, within the scalar's own extent (its value's
    /// length, plus room for quotes and escapes). `None` when the text does
    /// not hold it literally (an alias, escapes), and the scalar's start is
    /// used instead.
    fn find_after(&self, scalar: Span, token: &str, nth: usize, value: &str) -> Option<Span> {
        if token.is_empty() {
            return None;
        }
        let start = self.offset_of(scalar.line, scalar.column)?;
        let extent = value.len().saturating_mul(2).saturating_add(8);
        let end = self.text.len().min(start.saturating_add(extent));
        let window = self.text.get(start..end)?;
        let mut from = 0;
        for _ in 0..nth {
            from += window.get(from..)?.find("${")? + 2;
        }
        let at = start + from + window.get(from..)?.find(token)?;
        let (line, column) = self.position_of(at);
        Some(Span {
            line,
            column,
            len: token.chars().count() + 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env {
        Env::Fixed(
            vars.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn references_expand_with_and_without_defaults() {
        let vars = env(&[("HOST", "staging"), ("EMPTY", "")]);
        let cases: &[(&str, &str, &str)] = &[
            (
                "a set variable",
                "http://${HOST}:8080",
                "http://staging:8080",
            ),
            ("an unset variable's default", "${PORT:-8080}", "8080"),
            (
                "a set variable ignores its default",
                "${HOST:-x}",
                "staging",
            ),
            ("an empty variable takes the default", "${EMPTY:-d}", "d"),
            ("an empty variable without default", "[${EMPTY}]", "[]"),
            ("an empty default", "${NOPE:-}", ""),
            ("`$${` is a literal `${`", "$${HOST}", "${HOST}"),
            ("a lone `$` stays", "cost: $5 and $$", "cost: $5 and $$"),
            ("the default is literal up to `}`", "${NOPE:-a:-b}", "a:-b"),
            ("no recursive expansion", "${LOOP:-$${HOST}}", "$${HOST}"),
            ("two references", "${HOST}/${HOST}", "staging/staging"),
        ];
        for (case, input, want) in cases {
            assert_eq!(
                expand(input, &vars, 1 << 20).as_deref(),
                Ok(*want),
                "{case}"
            );
        }
        let looped = env(&[("LOOP", "${LOOP}")]);
        assert_eq!(
            expand("${LOOP}", &looped, 100).as_deref(),
            Ok("${LOOP}"),
            "a value is never scanned again"
        );
    }

    #[test]
    fn bad_references_are_errors_that_say_which() {
        let vars = env(&[("A", "1")]);
        assert_eq!(
            expand("${A} ${STAGING_URL}", &vars, 100),
            Err(Error::Unset {
                name: "STAGING_URL".into(),
                nth: 1
            })
        );
        let why = |input: &str| match expand(input, &vars, 100) {
            Err(Error::Malformed { why, .. }) => why,
            other => panic!("{input}: {other:?}"),
        };
        assert_eq!(why("${A"), "no closing `}`");
        assert_eq!(why("${}"), "the variable name is empty");
        assert!(why("${1A}").contains("not starting with a digit"));
        assert!(why("${A B}").contains("letters, digits"));
    }

    #[test]
    fn expansion_is_bounded() {
        let vars = env(&[("BIG", &"x".repeat(1000))]);
        // `${BIG}` (6 bytes) becomes 1,000: it grows the text by 994.
        assert_eq!(expand("${BIG}", &vars, 993), Err(Error::TooLarge));
        assert!(expand("${BIG}", &vars, 994).is_ok());
    }

    #[test]
    fn a_document_that_would_grow_past_the_file_limit_is_refused_at_the_value() {
        let text = "name: x\ntarget: { url: http://127.0.0.1:1 }\nload: { rate: 1, requests: [{ path: / }] }\nphases:\n  - name: p\n    duration: 1s\ndescription: ${BIG}\n";
        let big = "x".repeat(limits::MAX_FILE_BYTES as usize);
        let options = crate::config::LoadOptions {
            env: env(&[("BIG", &big)]),
            ..Default::default()
        };
        let err = crate::config::load_str_with(text, std::path::Path::new("e.yaml"), options)
            .expect_err("too large");
        let d = &err.diagnostics[0];
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        assert!(
            d.message
                .contains("grows the file past faultline's limit of 1 MiB"),
            "{d}"
        );
        assert_eq!((d.line, d.column), (Some(7), Some(14)), "{d}");
    }

    #[test]
    fn plain_text_takes_its_yaml_type() {
        let cases: &[(&str, Option<Value>)] = &[
            ("50", Some(Value::Number(50.into()))),
            ("true", Some(Value::Bool(true))),
            ("", Some(Value::Null)),
            ("60s", None),
            ("a: b", None),
            ("- x", None),
            ("#x", None),
            ("1\n2", None),
        ];
        for (text, want) in cases {
            assert_eq!(typed(text), *want, "{text:?}");
        }
    }
}
