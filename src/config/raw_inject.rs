//! One entry of a phase's `inject:` list: a fault of any kind plus the two
//! timing keys every kind accepts (`after`, `for`).
//!
//! The timing keys are generic, so they are taken off the mapping here, once,
//! before the kind's own struct is decoded: each kind keeps
//! `deny_unknown_fields` (serde cannot combine it with `flatten`) and no kind
//! repeats the keys. The JSON schema adds them to every kind for the same
//! reason.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_yaml::Value;

use super::raw::{RawFault, Scalar};

/// A fault in `inject` with its timing within the phase.
#[derive(Debug)]
pub struct RawInject {
    /// `after`: apply this long after the phase starts.
    pub after: Option<Scalar>,
    /// `for`: remove this long after the apply started.
    pub lasts: Option<Scalar>,
    pub fault: RawFault,
}

impl RawInject {
    /// The keys every fault kind accepts, for did-you-mean on a misspelt one.
    pub const KEYS: [&'static str; 2] = ["after", "for"];
}

impl<'de> Deserialize<'de> for RawInject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = Value::deserialize(deserializer)?;
        let (after, lasts) = match &mut value {
            Value::Mapping(map) => (map.remove("after"), map.remove("for")),
            _ => (None, None),
        };
        // The kind's own errors keep serde's wording ("unknown field `x`,
        // expected ..."), which `decode` reads to point at the field.
        let fault = RawFault::deserialize(value).map_err(D::Error::custom)?;
        Ok(RawInject {
            after,
            lasts,
            fault,
        })
    }
}

impl JsonSchema for RawInject {
    fn schema_name() -> Cow<'static, str> {
        "Fault".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = RawFault::json_schema(generator);
        let duration = generator.subschema_for::<Option<super::schema::Duration>>();
        let positive = generator.subschema_for::<Option<super::schema::PositiveDuration>>();
        let key = |description: &str, example: &str| {
            let mut s = duration.clone();
            s.insert("description".into(), description.into());
            s.insert("examples".into(), serde_json::json!([example]));
            s.to_value()
        };
        let after = key(
            "Apply this long after the phase starts (default 0: at once).",
            "2s",
        );
        let kill_after = key(
            "Apply this long after the phase starts (default 0). On a `kill` with \
             `restart: true` and no `for`, the old meaning: restart this long after the kill \
             (prefer `for`).",
            "2s",
        );
        let mut lasts = positive;
        lasts.insert(
            "description".into(),
            "Remove this long after its apply, counted from `after` (default: at phase end); `after` + `for` \
             must fit in the phase. For a restarting `kill`, the restart."
                .into(),
        );
        lasts.insert("examples".into(), serde_json::json!(["3s"]));
        let lasts = lasts.to_value();
        if let Some(variants) = schema
            .get_mut("oneOf")
            .and_then(serde_json::Value::as_array_mut)
        {
            for variant in variants {
                let is_kill = variant.pointer("/properties/type/const")
                    == Some(&serde_json::Value::from("kill"));
                if let Some(props) = variant
                    .get_mut("properties")
                    .and_then(serde_json::Value::as_object_mut)
                {
                    let after = if is_kill { &kill_after } else { &after };
                    props.insert("after".into(), after.clone());
                    props.insert("for".into(), lasts.clone());
                }
            }
        }
        schema
    }
}
