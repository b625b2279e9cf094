//! The committed schemas and reference match the code, and every shipped
//! file is valid against the schemas (checked by a small validator of the
//! JSON Schema subset schemars emits, to avoid a heavy dev-dependency).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn assert_committed(path: &str, generated: &str, command: &str) {
    let committed = std::fs::read_to_string(root().join(path)).unwrap_or_default();
    assert!(
        committed == generated,
        "{path} is stale; regenerate it with `{command} > {path}`"
    );
}

#[test]
fn committed_schemas_match_the_code() {
    assert_committed(
        EXPERIMENT_SCHEMA_FILE,
        &to_pretty(&experiment_schema()),
        "cargo run -- schema experiment",
    );
    assert_committed(
        SUITE_SCHEMA_FILE,
        &to_pretty(&suite_schema()),
        "cargo run -- schema suite",
    );
}

#[test]
fn committed_reference_matches_the_code() {
    assert_committed(
        "docs/reference.md",
        &reference_markdown(),
        "cargo run -- schema --markdown",
    );
}

/// The YAML of a file as JSON, merge keys applied (as the loader does).
fn yaml_as_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read file");
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    yaml.apply_merge().expect("merge keys");
    serde_json::to_value(yaml).expect("YAML as JSON")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .expect("folder exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_experiment_and_suite_is_valid_against_its_schema() {
    let experiment = experiment_schema();
    let suite = suite_schema();
    let mut checked = 0;
    for (dir, schema) in [("experiments", &experiment), ("suites", &suite)] {
        for path in yaml_files(dir) {
            let errors = check(schema, &yaml_as_json(&path));
            assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
            checked += 1;
        }
    }
    for template in crate::authoring::TEMPLATES {
        let yaml: serde_yaml::Value = serde_yaml::from_str(template.text).expect("template YAML");
        let errors = check(&experiment, &serde_json::to_value(yaml).expect("as JSON"));
        assert!(errors.is_empty(), "template {}: {errors:#?}", template.name);
    }
    assert!(checked >= 10, "only {checked} files found");
}

#[test]
fn the_schema_rejects_what_the_parser_rejects() {
    let schema = experiment_schema();
    let cases = [
        (
            "an unknown top-level key is refused",
            r#"{"nmae": "x"}"#,
            "/nmae",
        ),
        (
            "an unknown fault type is refused",
            r#"{"phases": [{"inject": [{"type": "latncy", "proxy": "p"}]}]}"#,
            "/phases/0/inject/0",
        ),
        (
            "a field of another fault type is refused",
            r#"{"phases": [{"inject": [{"type": "down", "proxy": "p", "latency": "1s"}]}]}"#,
            "/phases/0/inject/0",
        ),
        (
            "a ramp with an unknown key is refused",
            r#"{"load": {"rate": {"from": 1, "to": 2, "during": "1s"}}}"#,
            // `load` is optional (anyOf load|null), so the error is reported there.
            "/load",
        ),
        (
            "a probe list item must be a mapping",
            r#"{"phases": [{"expect": {"probes": ["x"]}}]}"#,
            "/phases/0/expect/probes/0",
        ),
    ];
    for (case, json, at) in cases {
        let value: Value = serde_json::from_str(json).expect("test JSON");
        let errors = check(&schema, &value);
        assert!(
            errors.iter().any(|e| e.starts_with(at)),
            "{case}: expected an error at {at}, got {errors:?}"
        );
    }
    let fine: Value = serde_json::from_str(
        r#"{"name": "x", "target": {"demo": null}, "load": {"rate": 5},
            "phases": [{"name": "a", "duration": 1, "expect": {"p99": "< 1s", "probes": [{"name": "p"}]},
                        "inject": [{"type": "reset_peer", "proxy": "p", "timeout": "0s"}]}]}"#,
    )
    .expect("test JSON");
    assert_eq!(check(&schema, &fine), Vec::<String>::new());
}

/// Every violation of `schema` by `value`, as `pointer: message`.
fn check(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    Validator { root: schema }.check(schema, value, "", &mut errors);
    errors
}

/// type, const, enum, properties, additionalProperties, required, items,
/// anyOf, oneOf, allOf, $ref (local), minimum, exclusiveMinimum.
struct Validator<'a> {
    root: &'a Value,
}

impl Validator<'_> {
    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => return errors.push(format!("{at}: nothing is allowed here")),
            Value::Object(map) => map,
            other => return errors.push(format!("{at}: bad schema {other}")),
        };
        if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
            let pointer = target.trim_start_matches('#');
            match self.root.pointer(pointer) {
                Some(resolved) => self.check(resolved, value, at, errors),
                None => errors.push(format!("{at}: unresolved $ref {target}")),
            }
        }
        if let Some(types) = schema.get("type") {
            let names: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !names.iter().any(|t| has_type(value, t)) {
                return errors.push(format!("{at}: expected {}, found {value}", names.join("|")));
            }
        }
        if let Some(expected) = schema.get("const") {
            if expected != value {
                errors.push(format!("{at}: expected {expected}, found {value}"));
            }
        }
        if let Some(options) = schema.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                errors.push(format!("{at}: {value} is not one of {options:?}"));
            }
        }
        if let (Some(min), Some(n)) = (
            schema.get("exclusiveMinimum").and_then(Value::as_f64),
            value.as_f64(),
        ) {
            if n <= min {
                errors.push(format!("{at}: {n} is not above {min}"));
            }
        }
        if let (Some(min), Some(n)) = (
            schema.get("minimum").and_then(Value::as_f64),
            value.as_f64(),
        ) {
            if n < min {
                errors.push(format!("{at}: {n} is below {min}"));
            }
        }
        for sub in schema
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.check(sub, value, at, errors);
        }
        for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            if let Some(options) = schema.get(key).and_then(Value::as_array) {
                let passing = options
                    .iter()
                    .filter(|o| {
                        let mut e = Vec::new();
                        self.check(o, value, at, &mut e);
                        e.is_empty()
                    })
                    .count();
                if passing == 0 || exactly_one && passing > 1 {
                    errors.push(format!(
                        "{at}: {passing} of the {key} options match {value}"
                    ));
                }
            }
        }
        if let Value::Object(fields) = value {
            let props = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = required.as_str().filter(|n| !fields.contains_key(*n)) {
                    errors.push(format!("{at}: missing `{name}`"));
                }
            }
            for (name, field) in fields {
                let here = format!("{at}/{name}");
                match (
                    props.and_then(|p| p.get(name)),
                    schema.get("additionalProperties"),
                ) {
                    (Some(sub), _) => self.check(sub, field, &here, errors),
                    (None, Some(extra)) => self.check(extra, field, &here, errors),
                    (None, None) => {}
                }
            }
        }
        if let (Value::Array(items), Some(sub)) = (value, schema.get("items")) {
            for (i, item) in items.iter().enumerate() {
                self.check(sub, item, &format!("{at}/{i}"), errors);
            }
        }
    }
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}
