//! The value patterns agree with the parsers in `units`: on a corpus of
//! texts a person might write, a pattern matches exactly what the parser
//! accepts (the `regex` crate understands the same syntax subset).

use super::*;
use crate::config::model::Metric;
use crate::config::units;

fn pattern(schema: &Value) -> regex::Regex {
    let text = schema["pattern"]
        .as_str()
        .or_else(|| {
            schema["anyOf"]
                .as_array()?
                .iter()
                .find_map(|o| o["pattern"].as_str())
        })
        .expect("a pattern");
    regex::Regex::new(text).expect("a valid pattern")
}

/// Texts around the edges of every unit, good and bad.
const CORPUS: &[&str] = &[
    "250ms",
    "10s",
    "2m",
    "1h",
    "1.5s",
    "500us",
    "7µs",
    "1m30s",
    "1m 30s",
    " 5s ",
    "5 s",
    ".5s",
    "5.s",
    "0s",
    "5",
    "0",
    "-5s",
    "5sec",
    "10parsecs",
    "fast",
    "",
    "1.2.3s",
    "s",
    "5ms5",
    "1e3ms",
    "5%",
    "0.5%",
    "100%",
    "100.0%",
    "005%",
    "0%",
    "101%",
    "100.5%",
    "1000%",
    "5 %",
    "%",
    "-1%",
    ".5%",
    "10.%",
    "0.05",
    "1",
    "1.0",
    ".5",
    "0.",
    "1.5",
    "2",
    "512MiB",
    "64KiB",
    "1024B",
    "10MB",
    "1gib",
    "1 GiB",
    "1.5GiB",
    "512",
    "5XB",
    "MiB",
    "100/s",
    "100 rps",
    "100",
    "100 /s",
    "1e2",
];

fn operand_texts() -> impl Iterator<Item = String> {
    CORPUS.iter().flat_map(|t| {
        ["<", "<=", ">", ">=", "==", "=", "", "!="]
            .into_iter()
            .map(move |op| format!("{op} {t}"))
    })
}

#[test]
fn durations_match_exactly_what_the_parser_accepts() {
    let re = pattern(&duration());
    for text in CORPUS {
        let parsed = units::parse_duration(text).is_ok();
        assert_eq!(re.is_match(text), parsed, "duration `{text}`");
    }
}

#[test]
fn percentages_and_shares_match_what_the_parsers_accept() {
    let strict = pattern(&percent_only());
    let share = pattern(&share());
    for text in CORPUS {
        let percent = units::parse_percent(text).is_ok();
        assert_eq!(strict.is_match(text), percent, "percentage `{text}`");
        let fraction = units::parse_percent_or_fraction(text).is_ok();
        assert_eq!(share.is_match(text), fraction, "share `{text}`");
    }
}

#[test]
fn sizes_with_units_match_what_the_parser_accepts() {
    let re = pattern(&size());
    for text in CORPUS {
        // A bare number is an integer in YAML, handled by the other branch.
        let parsed = units::parse_size(text).is_ok();
        assert_eq!(re.is_match(text), parsed, "size `{text}`");
    }
}

#[test]
fn thresholds_match_what_the_parser_accepts_for_every_metric() {
    for metric in Metric::ALL {
        let re = pattern(&threshold(metric.unit()));
        for text in operand_texts() {
            let parsed = units::parse_threshold(metric, &text).is_ok();
            assert_eq!(re.is_match(&text), parsed, "{}: `{text}`", metric.key());
        }
    }
}

#[test]
fn interpolation_opens_patterns_numbers_and_enums_but_not_tags() {
    let mut schema = json!({
        "properties": {
            "d": duration(),
            "n": { "type": "integer", "minimum": 1 },
            "b": { "type": "boolean" },
            "e": { "type": "string", "enum": ["fail_fast", "fail_over"] },
            "tag": { "type": "string", "const": "latency" },
            "free": { "type": "string" }
        }
    });
    allow_interpolation(&mut schema);
    let props = &schema["properties"];
    let re = pattern(&props["d"]);
    assert!(re.is_match("${TIMEOUT:-2s}") && re.is_match("2s") && !re.is_match("soon"));
    assert_eq!(props["n"]["type"], json!(["integer", "string"]));
    assert_eq!(props["n"]["pattern"], INTERPOLATED);
    assert_eq!(props["b"]["type"], json!(["boolean", "string"]));
    assert_eq!(
        props["e"]["anyOf"][0]["enum"],
        json!(["fail_fast", "fail_over"])
    );
    assert_eq!(props["e"]["anyOf"][1]["pattern"], INTERPOLATED);
    assert_eq!(
        props["tag"],
        json!({ "type": "string", "const": "latency" })
    );
    assert_eq!(props["free"], json!({ "type": "string" }));
}

#[test]
fn rates_match_what_the_parser_accepts() {
    let re = pattern(&per_second());
    for text in CORPUS {
        let parsed = units::parse_rate(text.trim()).is_some();
        assert_eq!(re.is_match(text), parsed, "rate `{text}`");
    }
}
