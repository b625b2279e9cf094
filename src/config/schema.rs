//! JSON Schemas of the experiment and suite files, and the YAML reference
//! (`docs/reference.md`) rendered from them.
//!
//! The schemas are derived (schemars) from the raw serde structs, so they
//! say exactly what may appear where. They are deliberately no stricter
//! than those structs: units, names and cross-references are checked by
//! validation, which explains mistakes better than an editor can. Leaves
//! that validation parses later (durations, percentages, thresholds) get
//! the small "leaf" schemas below: a type, a description and examples.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use super::model::{Defect, Metric, MetricUnit};
use super::raw::{RawExperiment, RawRamp, RawRate, RawSuite};
use super::raw_verify::RawProbeUse;

mod reference;
#[cfg(test)]
mod tests;
mod values;

pub use reference::reference_markdown;

/// Where editors find the committed schemas (the README shows the
/// `# yaml-language-server: $schema=...` line that uses them).
pub const EXPERIMENT_SCHEMA_FILE: &str = "schema/experiment.schema.json";
/// See [`EXPERIMENT_SCHEMA_FILE`].
pub const SUITE_SCHEMA_FILE: &str = "schema/suite.schema.json";

/// The JSON Schema of an experiment file.
pub fn experiment_schema() -> Value {
    let mut schema = schemars::schema_for!(RawExperiment);
    schema.insert("title".into(), "faultline experiment".into());
    let mut value = schema.to_value();
    values::allow_interpolation(&mut value);
    value
}

/// The JSON Schema of a suite file.
pub fn suite_schema() -> Value {
    let mut schema = schemars::schema_for!(RawSuite);
    schema.insert("title".into(), "faultline suite".into());
    let mut value = schema.to_value();
    values::allow_interpolation(&mut value);
    value
}

/// Pretty JSON with a trailing newline: the form of the committed files.
pub fn to_pretty(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Declares a leaf schema: a marker type used only in `#[schemars(with = ...)]`,
/// inlined where it is used so each field shows its type directly. Its
/// schema is a function's (of [`values`]) or, with `leaf!`, written inline.
macro_rules! leaf_fn {
    ($(#[doc = $doc:literal])+ $name:ident => $build:expr) => {
        $(#[doc = $doc])+
        pub(super) struct $name;

        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }

            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                to_schema(($build)())
            }
        }
    };
}

/// [`leaf_fn!`] with the schema written as JSON.
macro_rules! leaf {
    ($(#[doc = $doc:literal])+ $name:ident => $($schema:tt)+) => {
        leaf_fn! { $(#[doc = $doc])+ $name => || serde_json::json!($($schema)+) }
    };
}

fn to_schema(value: Value) -> Schema {
    match value {
        Value::Object(map) => map.into(),
        _ => true.into(),
    }
}

leaf_fn! {
    /// A string such as `250ms`, `10s`, `2m` or `1m30s`.
    Duration => values::duration
}
leaf_fn! {
    /// A percentage such as `5%`, or a fraction from 0 to 1.
    Percent => values::share
}
leaf_fn! {
    /// A percentage written with `%`, such as `80%`.
    PercentOnly => values::percent_only
}
leaf_fn! {
    /// `<op> <number>` with `<`, `<=`, `>`, `>=`, `==`, such as `< 0.5`.
    Threshold => values::comparison
}
leaf_fn! {
    /// A latency threshold such as `> 1s`.
    LatencyThreshold => || values::threshold(MetricUnit::Millis)
}
leaf_fn! {
    /// An error-rate threshold such as `> 50%`.
    ShareThreshold => || values::threshold(MetricUnit::Fraction)
}
leaf_fn! {
    /// A rate threshold such as `< 10/s`.
    RateThreshold => || values::threshold(MetricUnit::PerSecond)
}
leaf_fn! {
    /// A duration above zero, such as `5s`.
    PositiveDuration => values::positive_duration
}
leaf_fn! {
    /// An `http://` or `https://` URL with a host.
    Url => values::url
}
leaf_fn! {
    /// The name of a demo defect.
    DefectName => || values::one_of(&Defect::ALL.map(Defect::key))
}
leaf_fn! {
    /// `[error_rate]` or `[error_rate, p99]`.
    RecoveryMetrics => values::recovery_metrics
}
leaf_fn! {
    /// Requests per second, such as `20/s`.
    PerSecond => values::per_second
}
leaf_fn! {
    /// An HTTP header name.
    HeaderName => values::header_name
}
leaf_fn! {
    /// A number of bytes or a size such as `512MiB`, `100KB`.
    Size => values::size
}
leaf! {
    /// Text (a name, a command, an address).
    Text => { "title": "text", "type": ["string", "number", "boolean"] }
}
leaf! {
    /// A number, or a string with a unit.
    Number => { "type": ["number", "string"] }
}
leaf! {
    /// A whole number.
    Integer => { "type": ["integer", "string"] }
}
leaf! {
    /// `true` or `false`.
    Flag => { "type": "boolean" }
}
leaf! {
    /// An HTTP status (`503`) or a class (`5xx`).
    Status => { "title": "status", "type": ["integer", "string"], "examples": [503, "5xx"] }
}
leaf! {
    /// A value of any type.
    AnyValue => true
}
leaf! {
    /// Header name → value.
    Headers => {
        "type": "object",
        "additionalProperties": { "type": ["string", "number", "boolean"] }
    }
}
leaf! {
    /// A word or a list of words.
    Words => {
        "anyOf": [{ "type": "string" }, { "type": "array", "items": { "type": "string" } }]
    }
}

/// A status or a list of statuses (`503`, `[500, 5xx]`).
pub(super) struct Statuses;

impl JsonSchema for Statuses {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Statuses".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let one = generator.subschema_for::<Status>();
        json_schema!({ "anyOf": [one, { "type": "array", "items": one }] })
    }
}

/// A phase's `expect`: metric → threshold, plus probes judged in the phase.
pub(super) struct Expect;

impl JsonSchema for Expect {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Expect".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let probe = generator.subschema_for::<RawProbeUse>();
        let mut own = metric_thresholds(|_| true);
        let per_version = metric_thresholds(super::validate_expect::per_version);
        own.insert(
            "probes".into(),
            serde_json::json!({
                "description": "Probes observed in this phase.",
                "type": "array",
                "items": probe,
                "examples": [[{ "name": "payments-port", "every": "1s", "pass_ratio": "90%" }]]
            }),
        );
        own.insert(
            "by_version".into(),
            serde_json::json!({
                "description": "Version → thresholds judged on the responses that version \
                                served (`p50` ... `mean`, `error_rate`, `rate`, `requests`, \
                                `errors`), checks named like `p99{version=v2} < 300ms`. Needs \
                                `load.version_from` (or a `canary`/`traffic_shift` check's). \
                                A version that served no requests fails, except on \
                                `requests` and `rate`.",
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": per_version,
                    "additionalProperties": false
                },
                "examples": [{ "v2": { "error_rate": "< 5%", "p99": "< 300ms" } }]
            }),
        );
        json_schema!({
            "description": "Metric → threshold (`p50` `p90` `p95` `p99` `p99.9` `max` `mean` \
                            `error_rate` `rate` `requests` `errors` `host_cpu` `host_memory`), \
                            plus `probes` judged in the phase and `by_version` thresholds.",
            "type": "object",
            "properties": own,
            "additionalProperties": false
        })
    }
}

/// One property per metric `keep` admits, each with its unit's threshold
/// pattern, so editors complete the names and flag `p99: "fast"`.
fn metric_thresholds(keep: fn(Metric) -> bool) -> serde_json::Map<String, Value> {
    Metric::ALL
        .into_iter()
        .filter(|m| keep(*m))
        .map(|metric| {
            let mut schema = values::threshold(metric.unit());
            schema["description"] = metric_description(metric).into();
            (metric.key().to_string(), schema)
        })
        .collect()
}

fn metric_description(metric: Metric) -> String {
    let key = metric.key();
    match metric {
        Metric::Max | Metric::Mean => format!("The {key} response time, e.g. `< 500ms`."),
        Metric::ErrorRate => "The share of failed requests, e.g. `< 1%`.".into(),
        Metric::Rate => "Completed requests per second, e.g. `> 100/s`.".into(),
        Metric::Requests => "Completed requests in the phase, e.g. `>= 1000`.".into(),
        Metric::Errors => "Failed requests in the phase, e.g. `== 0`.".into(),
        Metric::HostCpu => "Average host CPU over the phase, e.g. `< 90%`.".into(),
        Metric::HostMemory => "Average host memory in use, e.g. `< 80%`.".into(),
        _ => format!("The {key} response time, e.g. `< 300ms`."),
    }
}

/// `rate` has a hand-written `Deserialize` (a number or a ramp), so its
/// schema is written by hand too.
impl JsonSchema for RawRate {
    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let ramp = generator.subschema_for::<RawRamp>();
        json_schema!({
            "description": "Requests per second, or a linear ramp `{ from, to, over }` \
                            followed by a constant rate.",
            "anyOf": [{ "type": "number", "exclusiveMinimum": 0 }, ramp]
        })
    }
}
