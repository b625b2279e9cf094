//! What the probe kinds share: judging an observed value against a
//! [`ValueCheck`], reading numbers the way Prometheus writes them, and
//! compiled regular expressions.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use regex::Regex;
use serde_json::Value;

use crate::config::model_verify::ValueCheck;

/// Compiled patterns kept at most; past it the cache starts over. Patterns
/// come from the configuration, so in practice they all fit.
const REGEX_CACHE: usize = 256;

/// `pattern`, compiled once per process.
///
/// A plain memo (the same pattern always compiles to the same regex), so the
/// process-wide map changes no behaviour; it only saves recompiling the
/// probe's patterns on every observation of a repeated probe.
pub fn regex(pattern: &str) -> Result<Regex, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(found) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(pattern) {
        return Ok(found.clone());
    }
    // Config validation compiles every pattern first; this is the fallback.
    let compiled =
        Regex::new(pattern).map_err(|e| format!("invalid regular expression /{pattern}/: {e}"))?;
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= REGEX_CACHE {
        map.clear();
    }
    map.insert(pattern.to_string(), compiled.clone());
    Ok(compiled)
}

/// A number as a JSON value or as text (`"0.05"`, and Prometheus's `NaN`,
/// `+Inf`, `-Inf`).
pub fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_number(s),
        _ => None,
    }
}

/// Parses a number as Prometheus and people write them.
pub fn parse_number(text: &str) -> Option<f64> {
    match text.trim() {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

/// The check as written: `< 0.05`, `= "closed"`.
pub fn describe(check: &ValueCheck) -> String {
    match check {
        ValueCheck::Equals(expected) => format!("= {expected}"),
        ValueCheck::Compare { source, .. } => source.clone(),
    }
}

/// Judges an observed JSON value. `Err` says why it fails, in words that
/// follow "the value is ...": `expected "closed"`, `not < 0.5`.
pub fn judge(check: &ValueCheck, observed: &Value) -> Result<(), String> {
    match check {
        ValueCheck::Equals(expected) => {
            if json_equal(expected, observed) {
                Ok(())
            } else {
                Err(format!("expected {expected}"))
            }
        }
        ValueCheck::Compare { op, value, source } => match number(observed) {
            Some(n) if op.holds(n, *value) => Ok(()),
            Some(_) => Err(format!("not {source}")),
            None => Err(format!("not a number (needed for {source})")),
        },
    }
}

/// Judges a sample written as text (a Prometheus value such as `"0.05"`).
///
/// `equals: closed` compares the text as written; `equals: 3` compares by
/// value, so `"3.0"` equals 3 (and `NaN` equals nothing).
pub fn judge_text(check: &ValueCheck, observed: &str) -> Result<(), String> {
    match check {
        ValueCheck::Equals(Value::Number(expected)) => match parse_number(observed) {
            Some(n) if expected.as_f64() == Some(n) => Ok(()),
            _ => Err(format!("expected {expected}")),
        },
        _ => judge(check, &Value::String(observed.to_string())),
    }
}

/// JSON equality, except that numbers compare by value (`1` equals `1.0`).
fn json_equal(expected: &Value, observed: &Value) -> bool {
    match (expected, observed) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => expected == observed,
    }
}

/// A JSON value as text for a report: strings without their quotes.
pub fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// At most `max` characters of `text`, marked when cut.
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::CmpOp;
    use serde_json::json;

    fn below(bound: f64) -> ValueCheck {
        ValueCheck::Compare {
            op: CmpOp::Lt,
            value: bound,
            source: format!("< {bound}"),
        }
    }

    #[test]
    fn a_string_equals_the_same_json_string_only() {
        let closed = ValueCheck::Equals(json!("closed"));
        assert_eq!(judge(&closed, &json!("closed")), Ok(()));
        assert_eq!(
            judge(&closed, &json!("open")),
            Err("expected \"closed\"".into())
        );
        assert!(judge(&ValueCheck::Equals(json!("1")), &json!(1)).is_err());
    }

    #[test]
    fn numbers_equal_by_value() {
        assert_eq!(judge(&ValueCheck::Equals(json!(1)), &json!(1.0)), Ok(()));
        assert_eq!(judge_text(&ValueCheck::Equals(json!(3)), "3.0"), Ok(()));
        assert!(judge_text(&ValueCheck::Equals(json!(3)), "NaN").is_err());
    }

    #[test]
    fn a_comparison_accepts_numbers_and_numeric_strings() {
        assert_eq!(judge(&below(0.5), &json!(0.2)), Ok(()));
        assert_eq!(judge(&below(0.5), &json!("0.2")), Ok(()));
        assert_eq!(judge(&below(0.5), &json!(0.7)), Err("not < 0.5".into()));
        assert_eq!(
            judge(&below(0.5), &json!("high")),
            Err("not a number (needed for < 0.5)".into())
        );
        assert!(judge(&below(0.5), &json!(null)).is_err());
    }

    #[test]
    fn prometheus_special_values_parse_and_nan_never_passes() {
        assert_eq!(parse_number("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_number("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_number("NaN").is_some_and(f64::is_nan));
        assert!(judge_text(&below(0.5), "NaN").is_err());
        assert!(judge_text(&below(0.5), "+Inf").is_err());
        assert_eq!(judge_text(&below(0.5), "0.05"), Ok(()));
    }

    #[test]
    fn an_invalid_regex_is_an_error_not_a_panic() {
        let err = regex("a(b").expect_err("unclosed group");
        assert!(err.starts_with("invalid regular expression /a(b/"), "{err}");
        assert!(regex(r"^state: \w+$").is_ok_and(|r| r.is_match("state: open")));
    }
}
