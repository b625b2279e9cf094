//! The JSON Schema of values, not just keys: `pattern`s for durations,
//! percentages, sizes and thresholds that match what [`crate::config::units`]
//! accepts, and the `${VAR}` escape that keeps interpolated files valid.
//!
//! An editor flags `10parsecs` or `p99: "fast"` as it is typed only if the
//! schema knows the shape of a value. The patterns are written to be no
//! stricter than the parsers (a schema that flags a file `validate`
//! accepts teaches users to ignore it): where a parser also checks a range
//! or a relation (a percentage above 0, `after` before the phase's end),
//! validation says so, with a position. They use only the regular
//! expression syntax ECMAScript, Python and the `regex` crate share (the YAML language server
//! runs them in JavaScript; `check-jsonschema` in the tests, in Python).

use serde_json::{json, Map, Value};

use crate::config::model::MetricUnit;

/// A plain non-negative decimal, as `units` reads one: `5`, `1.5`, `.5`, `5.`.
const NUMBER: &str = r"(?:\d+\.?\d*|\.\d+)";
/// Duration units (`units::parse_duration`).
const DURATION_UNIT: &str = "(?:us|µs|ms|s|m|h)";
/// Any string holding `${`: interpolated later, so any value may be there.
pub const INTERPOLATED: &str = r"\$\{";

/// `250ms`, `1.5s`, `1m30s`, `1m 30s`: a unit after every number.
fn duration_body() -> String {
    format!(r"{NUMBER}\s*{DURATION_UNIT}(?:\s*{NUMBER}\s*{DURATION_UNIT})*")
}

/// `5%`, `0.5%`, `100%`: 0 to 100 with a `%`.
fn percent_body() -> String {
    // At most 100, with the leading zeros the number parser accepts (`005%`);
    // every branch holds a digit.
    r"0*(?:100(?:\.0*)?|\d{1,2}(?:\.\d*)?|\.\d+)\s*%".to_string()
}

/// `0.05`, `1`, `.5`: a fraction from 0 to 1 written as text.
fn fraction_body() -> String {
    r"0*1(?:\.0*)?|0*\.\d+|0+\.?\d*".to_string()
}

fn anchored(body: &str) -> String {
    format!(r"^\s*(?:{body})\s*$")
}

/// A duration: always a string with units (a bare `5` is refused by the
/// parser as ambiguous, so the schema refuses it too).
pub fn duration() -> Value {
    json!({
        "title": "duration",
        "type": "string",
        "pattern": anchored(&duration_body()),
        "examples": ["250ms", "10s", "2m", "1m30s"]
    })
}

/// A duration above zero: a duration with a digit other than 0 somewhere.
pub fn positive_duration() -> Value {
    let mut schema = duration();
    schema["title"] = "duration".into();
    let pattern = schema["pattern"].take();
    schema["allOf"] = json!([{ "pattern": pattern }, { "pattern": "[1-9]" }]);
    if let Some(map) = schema.as_object_mut() {
        map.remove("pattern");
    }
    schema
}

/// An `http://` or `https://` URL with a host (the validator parses the rest).
pub fn url() -> Value {
    json!({
        "title": "URL",
        "type": "string",
        "pattern": r"^\s*[hH][tT][tT][pP][sS]?://[^\s/?#]",
        "examples": ["http://127.0.0.1:8080"]
    })
}

/// Requests per second: a number above 0, or `20/s`, `20 rps`.
pub fn per_second() -> Value {
    json!({
        "title": "requests per second",
        "anyOf": [
            { "type": "number", "exclusiveMinimum": 0 },
            { "type": "string", "pattern": anchored(&format!(r"{NUMBER}\s*(?:/s|rps)?")) }
        ],
        "examples": ["20/s", 20]
    })
}

/// An HTTP header name (an RFC 9110 token).
pub fn header_name() -> Value {
    json!({
        "title": "header name",
        "type": "string",
        "pattern": r"^\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*$",
        "examples": ["x-api-key"]
    })
}

/// One of `names`.
pub fn one_of(names: &[&str]) -> Value {
    json!({ "type": "string", "enum": names })
}

/// `metrics:` of a recovery check: `error_rate` always, `p99` optionally.
pub fn recovery_metrics() -> Value {
    json!({
        "anyOf": [
            { "const": "error_rate" },
            {
                "type": "array",
                "items": { "enum": ["error_rate", "p99"] },
                "contains": { "const": "error_rate" }
            }
        ],
        "examples": [["error_rate", "p99"]]
    })
}

/// A percentage that must be written with `%` (CPU `load`, memory `percent`).
pub fn percent_only() -> Value {
    json!({
        "title": "percentage",
        "type": "string",
        "pattern": anchored(&percent_body()),
        "examples": ["80%", "12.5%"]
    })
}

/// A share: a percentage, or a fraction from 0 to 1 (number or text).
pub fn share() -> Value {
    json!({
        "title": "percentage",
        "anyOf": [
            { "type": "number", "minimum": 0, "maximum": 1 },
            {
                "type": "string",
                "pattern": anchored(&format!("{}|{}", percent_body(), fraction_body()))
            }
        ],
        "examples": ["5%", 0.05]
    })
}

/// A byte size: a whole number of bytes, or a number with a unit (any case).
pub fn size() -> Value {
    let unit = r"(?:[bB]|[kKmMgG][iI]?[bB])";
    json!({
        "title": "size",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "pattern": anchored(&format!(r"{NUMBER}\s*{unit}")) }
        ],
        "examples": ["512MiB", "64KiB", 1024]
    })
}

/// The operand of a threshold on a metric of `unit`.
fn operand(unit: MetricUnit) -> String {
    match unit {
        MetricUnit::Millis => duration_body(),
        MetricUnit::Fraction => format!("{}|{}", percent_body(), fraction_body()),
        MetricUnit::PerSecond => format!(r"{NUMBER}\s*(?:/s|rps)?"),
        MetricUnit::Count => r"\d+".to_string(),
    }
}

/// `<op> <value>` with the operators of `CmpOp::split`.
const OPERATOR: &str = r"(?:<=?|>=?|==)";

/// A threshold on a metric measured in `unit`: `< 300ms`, `< 1%`, `> 100/s`,
/// `== 0`.
pub fn threshold(unit: MetricUnit) -> Value {
    let example = match unit {
        MetricUnit::Millis => "< 300ms",
        MetricUnit::Fraction => "< 1%",
        MetricUnit::PerSecond => "> 100/s",
        MetricUnit::Count => ">= 1000",
    };
    json!({
        "title": "threshold",
        "type": "string",
        "pattern": format!(r"^\s*{OPERATOR}\s*(?:{})\s*$", operand(unit)),
        "examples": [example]
    })
}

/// A comparison with any number (probe values): `< 0.5`, `>= -1`.
pub fn comparison() -> Value {
    json!({
        "title": "threshold",
        "type": "string",
        "pattern": format!(r"^\s*{OPERATOR}\s*\S"),
        "examples": ["< 0.5", "== 1"]
    })
}

/// Lets every value the user could write as `${VAR}` be written so: a
/// string value with a `pattern` also matches any text holding `${`, a
/// number, integer or boolean also accepts such a string, and so does an
/// `enum`. Type tags (`const`) and keys are left alone: interpolation never
/// touches keys, and a fault's `type` picks which fields are allowed.
pub fn allow_interpolation(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                // These hold values, not schemas.
                if !matches!(key.as_str(), "examples" | "default" | "const" | "enum") {
                    allow_interpolation(value);
                }
            }
            // After the children, so the `anyOf` made for an enum is not
            // visited (and wrapped) again.
            escape(map);
        }
        Value::Array(items) => items.iter_mut().for_each(allow_interpolation),
        _ => {}
    }
}

fn escape(map: &mut Map<String, Value>) {
    if let Some(Value::String(pattern)) = map.get_mut("pattern") {
        *pattern = format!("(?:{pattern})|{INTERPOLATED}");
        return;
    }
    if let Some(options) = map.remove("enum") {
        let mut original = json!({ "enum": options });
        if let Some(kind) = map.remove("type") {
            original["type"] = kind;
        }
        let escaped = json!({ "type": "string", "pattern": INTERPOLATED });
        map.insert("anyOf".into(), json!([original, escaped]));
        return;
    }
    let Some(kind) = map.get_mut("type") else {
        return;
    };
    let mut names: Vec<Value> = match kind {
        Value::String(name) => vec![Value::String(name.clone())],
        Value::Array(names) => names.clone(),
        _ => return,
    };
    let has = |names: &[Value], name: &str| names.iter().any(|n| n == name);
    let scalar = ["number", "integer", "boolean"]
        .iter()
        .any(|n| has(&names, n));
    if scalar && !has(&names, "string") {
        names.push("string".into());
        *kind = Value::Array(names);
        // `pattern` constrains strings only: numbers stay as they were.
        map.insert("pattern".into(), INTERPOLATED.into());
    }
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
