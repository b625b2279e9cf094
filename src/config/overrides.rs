//! `--set PATH=VALUE`: changes to an experiment made on the command line,
//! applied to the parsed document before it is decoded, so a value given
//! there is validated exactly like one written in the file.
//!
//! A path is mapping keys separated by dots (`load.rate`); in a list, a
//! segment picks the item whose `name` is that segment (`phases.fault`) or,
//! when it is a number, the item at that 0-based index (`phases.1`). Missing
//! mappings on the way are created, so `--set load.timeout=2s` works on a
//! file without a `timeout`. `demo`, `url` and `command` of a `target` are
//! alternatives: setting one removes the others, so `--set target.url=...`
//! points a demo experiment at a real system.
//!
//! VALUE is read as a YAML scalar: `50` is a number, `true` a boolean, empty
//! or `null` is null, `60s` or `http://x` a string; quote it (`'"50"'`) to
//! force a string. A VALUE in brackets or braces is a flow list or mapping
//! (`target.demo={}`, `tags=[a, b]`), at most [`MAX_FLOW_BYTES`] long.
//!
//! Every problem with a value set here is reported at the flag rather than
//! at a position in the file: the paths a flag wrote (and the mappings it
//! created) are recorded in [`SourceFile::overridden`], and
//! [`SourceFile::diagnostic`] names the flag for anything at or under them.
//! In a suite, the overrides apply to every experiment, after the suite's
//! `defaults` (a `target` or `load` the experiment takes from them is copied
//! in first, then changed).

use serde_yaml::{Mapping, Value};

use super::diagnostics::{did_you_mean, one_of, Diagnostic};
use super::interpolate::typed;
use super::locate::YamlPath;
use super::source::SourceFile;

/// One `--set PATH=VALUE`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The flag as given (`--set load.rate=50`), shown in diagnostics.
    flag: String,
    path: Vec<String>,
    value: Value,
}

/// Keys of which a mapping holds at most one: setting one removes the others.
const ALTERNATIVES: &[(&str, &[&str])] = &[("target", &["demo", "url", "command"])];

impl Override {
    /// Parses `PATH=VALUE` (what follows `--set`).
    pub fn parse(text: &str) -> Result<Override, String> {
        let Some((path, value)) = text.split_once('=') else {
            return Err(format!(
                "expected PATH=VALUE such as `load.rate=50`, found `{text}`"
            ));
        };
        let segments: Vec<String> = path.trim().split('.').map(str::to_string).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(format!(
                "`{path}` is not a path: write keys separated by dots, such as `load.rate`"
            ));
        }
        Ok(Override {
            flag: format!("--set {text}"),
            path: segments,
            value: scalar(value)?,
        })
    }

    /// The flag as given, e.g. `--set load.rate=50`.
    pub fn flag(&self) -> &str {
        &self.flag
    }

    /// The first key of the path (`target`, `load`, `phases`, ...).
    fn section(&self) -> &str {
        self.path.first().map_or("", String::as_str)
    }
}

/// The longest flow list or mapping a `--set` VALUE may be: it is parsed
/// before the file's input limits apply, and one line of a command does not
/// need more.
const MAX_FLOW_BYTES: usize = 4096;

/// A `--set` VALUE: a quoted string as YAML reads it, a flow list or
/// mapping, else a number, boolean or null when the text is one, else the
/// text itself.
fn scalar(text: &str) -> Result<Value, String> {
    let flow = (text.starts_with('{') && text.ends_with('}'))
        || (text.starts_with('[') && text.ends_with(']'));
    if flow {
        if text.len() > MAX_FLOW_BYTES || text.contains(['*', '&', '!']) {
            return Err(format!(
                "a list or mapping given to --set is at most {MAX_FLOW_BYTES} bytes, without \
                 anchors, aliases or tags"
            ));
        }
        // Nesting is bounded by the length; serde_yaml's own recursion limit
        // (128) is above what 4 KiB of brackets can reach only in theory, so
        // refuse deep nesting explicitly.
        if text.chars().filter(|c| matches!(c, '{' | '[')).count() > 16 {
            return Err("a list or mapping given to --set nests at most 16 levels".to_string());
        }
        return serde_yaml::from_str::<Value>(text)
            .map_err(|e| format!("`{text}` is not a YAML list or mapping: {e}"));
    }
    let quoted = text.len() >= 2
        && ((text.starts_with('"') && text.ends_with('"'))
            || (text.starts_with('\'') && text.ends_with('\'')));
    if quoted {
        if let Ok(Value::String(s)) = serde_yaml::from_str::<Value>(text) {
            return Ok(Value::String(s));
        }
    }
    Ok(typed(text).unwrap_or_else(|| Value::String(text.to_string())))
}

/// Applies `overrides` in order to the experiment `value`, recording what
/// each wrote in `file` (see the module doc). `defaults` is a suite's
/// `defaults` mapping, as written. False after a diagnostic (a path that
/// does not fit the document).
pub fn apply(
    value: &mut Value,
    overrides: &[Override],
    defaults: Option<&Value>,
    file: &mut SourceFile,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let mut ok = true;
    for o in overrides {
        if let (Value::Mapping(map), Some(lent)) = (
            &mut *value,
            defaults.and_then(|d| d.get(o.section())).cloned(),
        ) {
            // Only what validation takes from `defaults` as a whole section.
            if matches!(o.section(), "target" | "load") && !map.contains_key(o.section()) {
                map.insert(Value::String(o.section().to_string()), lent);
            }
        }
        match set(value, o) {
            Ok(written) => file
                .overridden
                .extend(written.into_iter().map(|p| (p, o.flag.clone()))),
            Err(diag) => {
                diags.push(*diag);
                ok = false;
            }
        }
    }
    ok
}

/// Writes one override; returns the paths it wrote or created.
fn set(value: &mut Value, o: &Override) -> Result<Vec<YamlPath>, Box<Diagnostic>> {
    let mut at = YamlPath::root();
    let mut written = Vec::new();
    let mut node = value;
    let last = o.path.len() - 1;
    for (i, seg) in o.path.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
            written.push(at.clone());
        }
        node = match node {
            Value::Mapping(map) => {
                let parent = at.clone();
                at = at.key(seg);
                if i == last {
                    if let Some((_, group)) = ALTERNATIVES
                        .iter()
                        .find(|(k, _)| parent.segments().len() == 1 && parent.to_string() == *k)
                    {
                        if group.contains(&seg.as_str()) {
                            map.retain(|k, _| k.as_str().is_none_or(|k| !group.contains(&k)));
                        }
                    }
                    map.insert(Value::String(seg.clone()), o.value.clone());
                    written.push(at);
                    return Ok(written);
                }
                let key = Value::String(seg.clone());
                if !map.contains_key(&key) {
                    written.push(at.clone());
                }
                map.entry(key).or_insert(Value::Mapping(Mapping::new()))
            }
            Value::Sequence(items) => {
                let index = pick(items, seg, &at, o)?;
                at = at.index(index);
                let item = &mut items[index];
                if i == last {
                    *item = o.value.clone();
                    written.push(at);
                    return Ok(written);
                }
                item
            }
            Value::Tagged(tagged) => &mut tagged.value,
            other => {
                return Err(error(
                    o,
                    format!(
                        "`{at}` is {}, so it has no `{seg}`",
                        super::decode::describe(other)
                    ),
                    None,
                ))
            }
        };
    }
    // A path has at least one segment, so the loop returned.
    Ok(written)
}

/// The index of the item `seg` names in the list at `at`.
fn pick(items: &[Value], seg: &str, at: &YamlPath, o: &Override) -> Result<usize, Box<Diagnostic>> {
    if let Ok(index) = seg.parse::<usize>() {
        if index < items.len() {
            return Ok(index);
        }
        let message = format!(
            "`{at}` has {} item{}; index {index} is past its end (indices start at 0)",
            items.len(),
            if items.len() == 1 { "" } else { "s" }
        );
        return Err(error(o, message, None));
    }
    let names: Vec<&str> = items
        .iter()
        .filter_map(|item| item.get("name").and_then(Value::as_str))
        .collect();
    if let Some(index) = items
        .iter()
        .position(|item| item.get("name").and_then(Value::as_str) == Some(seg))
    {
        return Ok(index);
    }
    let what = match at.to_string().as_str() {
        "phases" => "no phase".to_string(),
        list => format!("no item of `{list}`"),
    };
    let message = format!("{what} named `{seg}`");
    let help = match did_you_mean(seg, names.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if names.is_empty() => "its items have no `name`: give a 0-based index".to_string(),
        None => format!("names here: {}; or give a 0-based index", one_of(&names)),
    };
    Err(error(o, message, Some(help)))
}

/// A diagnostic at the flag (boxed: it is the rare, large side of a `Result`).
fn error(o: &Override, message: String, help: Option<String>) -> Box<Diagnostic> {
    let diag = Diagnostic::new(&o.flag, "", message);
    Box::new(match help {
        Some(help) => diag.with_help(help),
        None => diag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    fn set_all(value: &mut Value, flags: &[&str]) -> Result<(), String> {
        let mut file = SourceFile::new("x.yaml", "");
        let overrides: Vec<Override> = flags
            .iter()
            .map(|f| Override::parse(f).expect("flag"))
            .collect();
        let mut diags = Vec::new();
        if apply(value, &overrides, None, &mut file, &mut diags) {
            Ok(())
        } else {
            Err(diags
                .iter()
                .map(|d| format!("{}: {}", d.file.display(), d.message))
                .collect())
        }
    }

    #[test]
    fn values_are_yaml_scalars() {
        let cases: &[(&str, Value)] = &[
            ("a=50", Value::Number(50.into())),
            ("a=true", Value::Bool(true)),
            ("a=60s", Value::String("60s".into())),
            (
                "a=http://x:8080/a=b",
                Value::String("http://x:8080/a=b".into()),
            ),
            ("a='50'", Value::String("50".into())),
            ("a=\"x y\"", Value::String("x y".into())),
            ("a=", Value::Null),
            ("a={}", Value::Mapping(Mapping::new())),
            ("a=[x]", Value::Sequence(vec![Value::String("x".into())])),
        ];
        for (flag, want) in cases {
            assert_eq!(
                Override::parse(flag).expect("parses").value,
                *want,
                "{flag}"
            );
        }
        assert!(Override::parse("load.rate").is_err());
        assert!(Override::parse("load..rate=1").is_err());
        assert!(Override::parse("a=[*x]").is_err());
        assert!(Override::parse(&format!("a={}{}", "[".repeat(20), "]".repeat(20))).is_err());
    }

    #[test]
    fn paths_walk_keys_phase_names_and_indices() {
        let mut v = doc("load: {rate: 10}\nphases: [{name: a, duration: 1s}, {name: fault}]\n");
        set_all(
            &mut v,
            &[
                "load.rate=50",
                "load.timeout=2s",
                "phases.fault.duration=60s",
                "phases.0.duration=5s",
            ],
        )
        .expect("applies");
        assert_eq!(
            v,
            doc("load: {rate: 50, timeout: 2s}\nphases: [{name: a, duration: 5s}, {name: fault, duration: 60s}]\n")
        );
    }

    #[test]
    fn a_target_kind_replaces_the_other_kinds() {
        let mut v = doc("target: {demo: {}}\n");
        set_all(&mut v, &["target.url=http://127.0.0.1:1"]).expect("applies");
        assert_eq!(v, doc("target: {url: 'http://127.0.0.1:1'}\n"));
    }

    #[test]
    fn paths_that_do_not_fit_say_why_at_the_flag() {
        let mut v = doc("name: x\nphases: [{name: fault}, {name: after}]\n");
        let err = set_all(&mut v, &["phases.faultt.duration=60s"]).expect_err("typo");
        assert_eq!(
            err,
            "--set phases.faultt.duration=60s: no phase named `faultt`"
        );
        let err = set_all(&mut v, &["phases.7.duration=1s"]).expect_err("index");
        assert!(
            err.contains("has 2 items; index 7 is past its end"),
            "{err}"
        );
        let err = set_all(&mut v, &["name.first=1"]).expect_err("scalar");
        assert!(
            err.contains("`name` is a string, so it has no `first`"),
            "{err}"
        );
    }
}
