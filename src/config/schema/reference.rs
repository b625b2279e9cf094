//! `docs/reference.md`: the YAML reference rendered from the schemas, so
//! the descriptions and examples live in one place (the raw structs' doc
//! comments and `#[schemars]` attributes).

use serde_json::{Map, Value};

use super::{experiment_schema, suite_schema};

/// The whole reference: the experiment, every object it contains, then the
/// suite and what only a suite has.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# YAML reference\n\n\
         <!-- Generated from the code by `faultline schema --markdown`; do not edit. -->\n\n\
         Every field is optional to the parser; `faultline validate` says which ones a \
         file needs, and checks units, names and references. Editors get the same \
         descriptions from the JSON Schemas in `schema/` (see the README's \"Authoring\").\n",
    );
    let experiment = experiment_schema();
    let suite = suite_schema();
    let mut done = Vec::new();
    section(&mut out, "Experiment", &experiment);
    section(&mut out, "Suite", &suite);
    for schema in [&experiment, &suite] {
        for (name, def) in defs(schema) {
            if !done.contains(name) {
                section(&mut out, name, def);
                done.push(name.clone());
            }
        }
    }
    // One newline at the end, as editors save files.
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn defs(schema: &Value) -> Vec<(&String, &Value)> {
    let mut defs: Vec<_> = schema
        .get("$defs")
        .and_then(Value::as_object)
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    defs.sort_by(|a, b| a.0.cmp(b.0));
    defs
}

fn section(out: &mut String, name: &str, schema: &Value) {
    if !out.ends_with("\n\n") {
        out.push('\n');
    }
    out.push_str(&format!("## {name}\n\n"));
    if let Some(text) = schema.get("description").and_then(Value::as_str) {
        out.push_str(text);
        out.push_str("\n\n");
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        table(out, props);
    } else if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        // A tagged enum (`inject` faults): one table per `type`.
        for variant in variants {
            let tag = variant
                .pointer("/properties/type/const")
                .and_then(Value::as_str)
                .unwrap_or("?");
            out.push_str(&format!("### `type: {tag}`\n\n"));
            if let Some(text) = variant.get("description").and_then(Value::as_str) {
                out.push_str(text);
                out.push_str("\n\n");
            }
            if let Some(props) = variant.get("properties").and_then(Value::as_object) {
                table(out, props);
            }
        }
    } else {
        out.push_str(&format!("Type: {}.\n", type_of(schema)));
        if let Some(examples) = examples(schema) {
            out.push_str(&format!("Examples: {examples}.\n"));
        }
    }
}

fn table(out: &mut String, props: &Map<String, Value>) {
    out.push_str("| field | type | description | example |\n| --- | --- | --- | --- |\n");
    for (field, schema) in props {
        let description = schema
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        out.push_str(&format!(
            "| `{field}` | {} | {} | {} |\n",
            cell(&type_of(schema)),
            cell(&description.replace('\n', " ")),
            cell(&examples(schema).unwrap_or_default()),
        ));
    }
    out.push('\n');
}

/// Escapes what would end a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Examples as YAML flow text (JSON is valid YAML), each in backticks.
fn examples(schema: &Value) -> Option<String> {
    let list = schema.get("examples")?.as_array()?;
    let shown: Vec<String> = list.iter().map(|e| format!("`{e}`")).collect();
    (!shown.is_empty()).then(|| shown.join(", "))
}

/// A short human type: `duration`-like leaves by their JSON types, objects
/// by a link to their section.
fn type_of(schema: &Value) -> String {
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    if let Some(title) = schema.get("title").and_then(Value::as_str) {
        return title.to_string();
    }
    if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
        let name = target.rsplit('/').next().unwrap_or(target);
        return format!("[{name}](#{})", name.to_lowercase());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = options
                .iter()
                .filter(|o| o.get("type").and_then(Value::as_str) != Some("null"))
                .map(type_of)
                .collect();
            return parts.join(" or ");
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let types: Vec<String> = types
        .into_iter()
        .filter(|t| *t != "null")
        .map(|t| match t {
            "array" => format!(
                "list of {}",
                schema.get("items").map_or("any".to_string(), type_of)
            ),
            "object" => match schema.get("additionalProperties") {
                Some(v @ Value::Object(_)) if schema.get("properties").is_none() => {
                    format!("map of {}", type_of(v))
                }
                _ => "mapping".to_string(),
            },
            other => other.to_string(),
        })
        .collect();
    if types.is_empty() {
        "any".to_string()
    } else {
        types.join(" or ")
    }
}
