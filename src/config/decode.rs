//! YAML `Value` → raw structs, collecting every structural error rather than
//! stopping at the first.
//!
//! serde stops at the first error. So we deserialize, record the error with
//! its path (from `serde_path_to_error`), cut the offending node out of the
//! `Value`, and try again, a bounded number of times. A cut node's path is
//! remembered in [`SourceFile::suppressed`] so validation does not add a
//! "missing field" for something we removed ourselves.

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use super::diagnostics::{did_you_mean, one_of, Diagnostic};
use super::locate::{Seg, YamlPath};
use super::raw::RawFault;
use super::raw_inject::RawInject;
use super::source::{Node, SourceFile};

/// Each attempt finds one error; past this many the file is more error than
/// configuration and further reports would not help.
const MAX_ERRORS: usize = 50;

/// Deserializes `value` into `T`, pushing a diagnostic for every structural
/// error. Returns `None` only when the document cannot be salvaged at all
/// (an error at the root, or too many errors).
pub fn decode<T: DeserializeOwned>(
    mut value: Value,
    file: &mut SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut previous: Option<(YamlPath, String)> = None;
    for _ in 0..MAX_ERRORS {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(raw) => return Some(raw),
            Err(error) => error,
        };
        let (path, exact) = convert_path(error.path());
        let message = error.inner().to_string();
        // Every repair shrinks the document, so errors cannot cycle; the same
        // error twice would mean a path that does not match the document.
        let key = (path.clone(), message.clone());
        if previous.as_ref() == Some(&key) {
            return None;
        }
        previous = Some(key);
        if !repair(&mut value, path, exact, &message, file, diags) {
            return None;
        }
    }
    diags.push(Diagnostic::new(
        file.path.clone(),
        "",
        format!("stopped after {MAX_ERRORS} errors; fix these and check again"),
    ));
    None
}

/// `phases[i].inject[j]`: a fault entry, which also takes the timing keys.
fn is_inject_entry(path: &YamlPath) -> bool {
    matches!(
        path.segments(),
        [.., Seg::Key(k), Seg::Index(_)] if k == "inject"
    )
}

/// Converts serde_path_to_error's path; `exact` is false when the path
/// stopped at a segment it could not name (a non-string key).
fn convert_path(path: &serde_path_to_error::Path) -> (YamlPath, bool) {
    use serde_path_to_error::Segment;
    let mut out = YamlPath::root();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push(Seg::Index(*index)),
            Segment::Map { key } => out.push(Seg::Key(key.clone())),
            Segment::Enum { .. } => {}
            Segment::Unknown => return (out, false),
        }
    }
    (out, true)
}

/// Reports one serde error and cuts its node from `value`. Returns false
/// when nothing could be cut, which ends decoding.
fn repair(
    value: &mut Value,
    path: YamlPath,
    exact: bool,
    message: &str,
    file: &mut SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    if !exact {
        return cut_non_string_key(value, &path, file, diags);
    }
    if let Some((field, expected)) = parse_unknown_field(message) {
        // The path ends at the unknown key, except inside a tagged enum,
        // where serde can only name the enclosing mapping.
        let parent = match path.last() {
            Some(Seg::Key(k)) if *k == field => path.parent(),
            _ => path,
        };
        let node = Node {
            file: &*file,
            path: parent.key(&field),
        };
        let mut diag = node.key_error(format!("unknown field `{field}`"));
        let mut candidates: Vec<&str> = expected.iter().map(String::as_str).collect();
        if is_inject_entry(&parent) {
            // Taken off before the kind's struct saw the mapping, so serde's
            // list lacks them.
            candidates.extend(RawInject::KEYS);
        }
        let suggestion = did_you_mean(&field, candidates.iter().copied());
        diag = match suggestion {
            Some(s) => diag.with_help(format!("did you mean `{s}`?")),
            None if candidates.is_empty() => diag.with_help("no fields are allowed here"),
            None => diag.with_help(format!("expected {}", one_of(&candidates))),
        };
        diags.push(diag);
        // The user meant `s`; "missing `s`" would only repeat this report.
        if let Some(s) = suggestion {
            file.suppressed.insert(parent.key(s));
        }
        return remove(value, &parent.key(&field));
    }
    if let Some((variant, expected)) = parse_unknown_variant(message) {
        // Only faults are chosen by a tag, so an unknown variant is a fault type.
        let fault = match path.last() {
            Some(Seg::Key(k)) if k == "type" => path.parent(),
            _ => path,
        };
        let node = Node {
            file: &*file,
            path: fault.key("type"),
        };
        let mut diag = node.error(format!("unknown fault type `{variant}`"));
        let known: Vec<&str> = expected.iter().map(String::as_str).collect();
        diag = match did_you_mean(&variant, known.iter().copied()) {
            Some(s) => diag.with_help(format!("did you mean `{s}`?")),
            None => diag.with_help(format!("known fault types: {}", one_of(&known))),
        };
        diags.push(diag);
        file.suppressed.insert(fault.clone());
        return remove(value, &fault);
    }
    if let Some(field) = parse_missing_field(message) {
        // Only a tag can be missing: every other raw field is an Option.
        let node = Node {
            file: &*file,
            path: path.clone(),
        };
        if let Some(diag) = node.missing(&field, format!("missing `{field}`")) {
            diags.push(diag.with_help(format!("known fault types: {}", one_of(RawFault::TYPES))));
        }
        file.suppressed.insert(path.clone());
        return remove(value, &path);
    }
    let node = Node {
        file: &*file,
        path: path.clone(),
    };
    let mut diag = node.error(humanize(message));
    if matches!(path.last(), Some(Seg::Key(k)) if k == "type") {
        diag = diag.with_help(format!("known fault types: {}", one_of(RawFault::TYPES)));
    }
    diags.push(diag);
    file.suppressed.insert(path.clone());
    remove(value, &path)
}

/// Handles serde's complaint about a key that is not a string (`1: x`), whose
/// path serde cannot name: cut the first such key of the mapping at `path`.
fn cut_non_string_key(
    value: &mut Value,
    path: &YamlPath,
    file: &mut SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let Some(Value::Mapping(map)) = get_mut(value, path) else {
        return false;
    };
    let Some(key) = map.keys().find(|k| !matches!(k, Value::String(_))).cloned() else {
        return false;
    };
    map.remove(&key);
    let (text, found) = match scalar_text(&key) {
        Some(text) => (text.clone(), format!("`{text}`")),
        None => (describe(&key).to_string(), describe(&key).to_string()),
    };
    let node = Node {
        file: &*file,
        path: path.key(&text),
    };
    diags.push(node.key_error(format!("keys must be field names, found {found}")));
    true
}

/// Cuts the node at `path`: removes a mapping entry, or blanks a list item to
/// null (which a [`super::raw::List`] reads as `None`) so later indices stay true.
fn remove(value: &mut Value, path: &YamlPath) -> bool {
    let Some(last) = path.last() else {
        return false;
    };
    match (get_mut(value, &path.parent()), last) {
        (Some(Value::Mapping(map)), Seg::Key(key)) => map.remove(key.as_str()).is_some(),
        (Some(Value::Sequence(items)), Seg::Index(index)) => match items.get_mut(*index) {
            Some(item) if !item.is_null() => {
                *item = Value::Null;
                true
            }
            _ => false,
        },
        _ => false,
    }
}

fn get_mut<'v>(value: &'v mut Value, path: &YamlPath) -> Option<&'v mut Value> {
    let mut value = untag(value);
    for seg in path.segments() {
        let next = match (value, seg) {
            (Value::Mapping(map), Seg::Key(key)) => map.get_mut(key.as_str())?,
            (Value::Sequence(items), Seg::Index(index)) => items.get_mut(*index)?,
            _ => return None,
        };
        value = untag(next);
    }
    Some(value)
}

/// serde looks through `!tags`, so paths do too.
fn untag(value: &mut Value) -> &mut Value {
    match value {
        Value::Tagged(tagged) => untag(&mut tagged.value),
        other => other,
    }
}

/// `unknown field `x`, expected one of `a`, `b`` → (`x`, [`a`, `b`]).
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    Some((field.to_string(), backticked(expected)))
}

/// `unknown variant `x`, expected `a` or `b`` → (`x`, [`a`, `b`]).
fn parse_unknown_variant(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (variant, expected) = rest.split_once('`')?;
    Some((variant.to_string(), backticked(expected)))
}

fn parse_missing_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split_once('`')?.0.to_string())
}

/// Every `quoted` word of a serde message, in order.
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Rewrites serde's "invalid type: string \"x\", expected u64" into
/// "expected a non-negative whole number, found `x`", in YAML's vocabulary.
pub fn humanize(message: &str) -> String {
    let parsed = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|rest| rest.rsplit_once(", expected "));
    let Some((found, expected)) = parsed else {
        return message.to_string();
    };
    let expected = match expected {
        "f32" | "f64" => "a number",
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative whole number",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "a sequence" => "a list",
        "a map" | "a YAML mapping" => "a mapping",
        "variant identifier" => "a fault type",
        "a string" if !found.contains('"') && found.contains('`') => "a string (put it in quotes)",
        e if e.starts_with("struct ") || e.contains("tagged enum") => "a mapping",
        e => e,
    };
    let found = match found {
        "map" => "a mapping".to_string(),
        "sequence" => "a list".to_string(),
        "unit value" => "nothing (null)".to_string(),
        f => match f.split_once(' ') {
            // `string "x"` / `integer `5`` / `floating point `1.5`` → `x`
            Some((_, quoted))
                if quoted.starts_with('"')
                    || quoted.starts_with('`')
                    || quoted.starts_with("point `") =>
            {
                let inner = quoted
                    .trim_start_matches("point ")
                    .trim_matches(|c| c == '"' || c == '`');
                format!("`{inner}`")
            }
            _ => f.to_string(),
        },
    };
    format!("expected {expected}, found {found}")
}

/// The text of a scalar as written, for messages and parsing.
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A short description of a value's kind, for "found ..." in messages.
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_rewritten_in_yaml_terms() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "a string where a count belongs",
                "invalid type: string \"many\", expected u64",
                "expected a non-negative whole number, found `many`",
            ),
            (
                "a negative count",
                "invalid value: integer `-1`, expected u64",
                "expected a non-negative whole number, found `-1`",
            ),
            (
                "a float where a count belongs",
                "invalid type: floating point `1.5`, expected u64",
                "expected a non-negative whole number, found `1.5`",
            ),
            (
                "a scalar where a struct belongs",
                "invalid type: integer `5`, expected struct RawPhase",
                "expected a mapping, found `5`",
            ),
            (
                "a mapping where a list belongs",
                "invalid type: map, expected a sequence",
                "expected a list, found a mapping",
            ),
            (
                "other messages pass through",
                "something else",
                "something else",
            ),
        ];
        for (case, input, want) in cases {
            assert_eq!(humanize(input), *want, "{case}");
        }
    }

    #[test]
    fn the_list_of_fault_types_matches_the_fault_enum() {
        let value: Value = serde_yaml::from_str("{ type: no-such-fault }").expect("yaml");
        let err = serde_yaml::from_value::<RawFault>(value).expect_err("unknown");
        let (_, expected) = parse_unknown_variant(&err.to_string()).expect("unknown variant");
        assert_eq!(expected, RawFault::TYPES, "update RawFault::TYPES");
    }

    #[test]
    fn unknown_field_messages_yield_the_field_and_candidates() {
        let (field, expected) =
            parse_unknown_field("unknown field `durration`, expected one of `name`, `duration`")
                .expect("parses");
        assert_eq!(field, "durration");
        assert_eq!(expected, ["name", "duration"]);
        let (_, expected) =
            parse_unknown_field("unknown field `x`, there are no fields").expect("parses");
        assert!(expected.is_empty());
    }
}
