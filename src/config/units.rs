//! Unit-bearing values as people write them: durations (`250ms`), percentages
//! (`5%`), sizes (`512MiB`) and thresholds (`< 100ms`).
//!
//! Every parser returns `Err(String)` with a message that names what was
//! expected and quotes what was found, so the validator can attach it to
//! a YAML position unchanged. Parsers accept any text and never panic.

use std::time::Duration;

use super::model::{CmpOp, Metric, MetricUnit, Threshold};

const DURATION_HINT: &str = "expected a duration such as 250ms, 10s or 2m";
const PERCENT_HINT: &str = "expected a percentage such as 1% or 0.5%";
const SIZE_HINT: &str = "expected a size such as 512KiB, 10MB or 1GiB";

/// Parses `250ms`, `10s`, `2m`, `1h`, `1.5s`, `500us`, and sums like `1m30s`.
///
/// A unit is always required: a bare `5` is ambiguous, and guessing seconds
/// versus milliseconds is how thresholds silently end up 1000x off. Zero is
/// accepted here; callers that need a positive duration check for it, so the
/// message can say which field must be positive.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let bad = || format!("{DURATION_HINT}, found `{text}`");
    if trimmed.is_empty() {
        return Err(bad());
    }
    if trimmed.starts_with('-') {
        return Err(format!("a duration cannot be negative, found `{text}`"));
    }
    let mut rest = trimmed;
    let mut nanos = 0.0_f64;
    while !rest.is_empty() {
        let (number, after) = split_number(rest);
        if number.is_empty() {
            return Err(bad());
        }
        let value: f64 = number.parse().map_err(|_| bad())?;
        let after = after.trim_start();
        let unit_len = after
            .find(|c: char| !(c.is_ascii_alphabetic() || c == 'µ'))
            .unwrap_or(after.len());
        let (unit, tail) = after.split_at(unit_len);
        let scale = match unit {
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("{}; a unit is required (us, ms, s, m or h)", bad())),
            other => {
                return Err(format!(
                    "unknown duration unit `{other}` in `{text}` (use us, ms, s, m or h)"
                ))
            }
        };
        nanos += value * scale;
        rest = tail.trim_start();
    }
    // u64 nanoseconds is ~584 years; anything beyond is a typo, not a plan.
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Err(format!("duration `{text}` is too large"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// Parses `1%` or `0.5%` into a fraction (`0.01`, `0.005`), between 0% and 100%.
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    let Some(number) = trimmed.strip_suffix('%') else {
        return Err(format!("{PERCENT_HINT}, found `{text}`"));
    };
    let value: f64 = parse_plain_number(number.trim_end())
        .ok_or_else(|| format!("{PERCENT_HINT}, found `{text}`"))?;
    if !(0.0..=100.0).contains(&value) {
        return Err(format!(
            "a percentage must be between 0% and 100%, found `{text}`"
        ));
    }
    Ok(value / 100.0)
}

/// A percentage (`1%`, `0.5%`) or a fraction from 0 to 1 (`0.01`): the
/// one rule for every share a user writes (thresholds on `error_rate`, fault
/// `probability`), so `0.01` means 1% everywhere. A bare number over 1 is
/// refused rather than guessed (`5` is neither 5% nor 500%).
pub fn parse_percent_or_fraction(text: &str) -> Result<f64, String> {
    let trimmed = text.trim();
    if trimmed.ends_with('%') {
        return parse_percent(trimmed);
    }
    match parse_plain_number(trimmed) {
        Some(f) if (0.0..=1.0).contains(&f) => Ok(f),
        Some(_) => Err(format!(
            "a bare number is a fraction from 0 to 1; write a percentage such as `{trimmed}%`, found `{text}`"
        )),
        None => Err(format!("{PERCENT_HINT}, found `{text}`")),
    }
}

/// A share as YAML holds it: a number from 0 to 1, or text that
/// [`parse_percent_or_fraction`] reads (`5%`, `0.05`). `example` is the
/// percentage the message suggests. The one reader of every "percentage or
/// fraction" field (canary weights, failure rates, verifier tolerances),
/// so they all take the same values with the same messages.
pub fn parse_share(value: &serde_yaml::Value, example: &str) -> Result<f64, String> {
    use serde_yaml::Value;
    let generic = |found: String| {
        format!(
            "expected a percentage such as {example} (or a fraction from 0 to 1), found {found}"
        )
    };
    match value {
        Value::Number(n) => n
            .as_f64()
            .filter(|f| (0.0..=1.0).contains(f))
            .ok_or_else(|| generic(format!("`{n}`"))),
        // A percentage keeps parse_percent's own message (e.g. out of range).
        Value::String(s) if s.trim_end().ends_with('%') => parse_percent(s),
        Value::String(s) => parse_percent_or_fraction(s).map_err(|_| generic(format!("`{s}`"))),
        Value::Bool(b) => Err(generic(format!("`{b}`"))),
        Value::Null => Err(generic("nothing (null)".into())),
        Value::Sequence(_) => Err(generic("a list".into())),
        Value::Mapping(_) => Err(generic("a mapping".into())),
        Value::Tagged(_) => Err(generic("a tagged value".into())),
    }
}

/// Parses a byte size with a unit: `B`, `KB`/`MB`/`GB` (powers of 1000) or
/// `KiB`/`MiB`/`GiB` (powers of 1024). Units are case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let bad = || format!("{SIZE_HINT}, found `{text}`");
    let (number, unit) = split_number(trimmed);
    let value = parse_plain_number(number).ok_or_else(bad)?;
    let scale: f64 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "" => {
            return Err(format!(
                "{}; a unit is required (B, KB, KiB, MB, MiB, GB, GiB)",
                bad()
            ))
        }
        _ => return Err(bad()),
    };
    let bytes = value * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(format!("size `{text}` is too large"));
    }
    Ok(bytes.round() as u64)
}

/// Parses `"<op> <value>"` for `metric`, with the value in the metric's unit:
/// a duration for latencies (stored in milliseconds), a percentage for
/// `error_rate` (stored as a fraction), `100`, `100/s` or `100 rps` for `rate`,
/// and a whole number for `requests`.
pub fn parse_threshold(metric: Metric, text: &str) -> Result<Threshold, String> {
    let trimmed = text.trim();
    let Some((op, rest)) = CmpOp::split(trimmed) else {
        return Err(format!(
            "expected a comparison such as `{}`, found `{text}` (operators: <, <=, >, >=, ==)",
            example_threshold(metric)
        ));
    };
    let operand = rest.trim();
    if operand.is_empty() {
        return Err(format!(
            "missing a value after `{}` in `{text}`, e.g. `{}`",
            op.symbol(),
            example_threshold(metric)
        ));
    }
    let value = match metric.unit() {
        MetricUnit::Millis => parse_duration(operand)
            .map(|d| d.as_secs_f64() * 1000.0)
            .map_err(|_| {
                format!(
                    "`{}` needs a duration such as 100ms or 1.5s, found `{operand}`",
                    metric.key()
                )
            })?,
        MetricUnit::Fraction => parse_percent_or_fraction(operand).map_err(|e| {
            if e.starts_with(PERCENT_HINT) {
                format!(
                    "`{}` needs a percentage such as 1% or 0.5% (or a fraction such as 0.01), found `{operand}`",
                    metric.key()
                )
            } else {
                e
            }
        })?,
        MetricUnit::PerSecond => parse_rate(operand).ok_or_else(|| {
            format!(
                "`{}` needs requests per second such as 100, 100/s or 100 rps, found `{operand}`",
                metric.key()
            )
        })?,
        MetricUnit::Count => parse_count(operand).ok_or_else(|| {
            format!(
                "`{}` needs a whole number of requests such as 1000, found `{operand}`",
                metric.key()
            )
        })?,
    };
    Ok(Threshold {
        metric,
        op,
        value,
        source: trimmed.to_string(),
    })
}

/// `512MiB`, `1.5GiB`, `64KiB`, `100B`: binary units, as people write sizes.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            let v = bytes as f64 / size as f64;
            return if (v - v.round()).abs() < 1e-9 {
                format!("{}{unit}", v.round() as u64)
            } else {
                format!("{v:.1}{unit}")
            };
        }
    }
    format!("{bytes}B")
}

/// Formats a duration the way a person would write it in YAML: `250ms`,
/// `10s`, `2m`, `1h`, `1.5s`, `500us`. [`parse_duration`] reads it back.
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    const SEC: u128 = 1_000_000_000;
    if nanos % (3600 * SEC) == 0 {
        return format!("{}h", nanos / (3600 * SEC));
    }
    if nanos % (60 * SEC) == 0 {
        return format!("{}m", nanos / (60 * SEC));
    }
    let secs = duration.as_secs_f64();
    if secs >= 1.0 {
        format!("{}s", trim_decimals(secs))
    } else if nanos >= 1_000_000 {
        format!("{}ms", trim_decimals(secs * 1e3))
    } else {
        format!("{}us", trim_decimals(secs * 1e6))
    }
}

/// Three decimals at most, without trailing zeros: `1.5`, `90`, `1.25`.
fn trim_decimals(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn example_threshold(metric: Metric) -> &'static str {
    match metric.unit() {
        MetricUnit::Millis => "< 100ms",
        MetricUnit::Fraction => "< 1%",
        MetricUnit::PerSecond => "> 100/s",
        MetricUnit::Count => ">= 1000",
    }
}

/// Splits leading digits and dots from the rest: `"1.5s"` → `("1.5", "s")`.
fn split_number(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    text.split_at(end)
}

/// A non-negative finite decimal without sign, exponent or words like `inf`,
/// which `str::parse::<f64>` would otherwise accept.
fn parse_plain_number(text: &str) -> Option<f64> {
    let valid = !text.is_empty()
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.chars().any(|c| c.is_ascii_digit());
    if !valid {
        return None;
    }
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `100`, `100/s` or `100 rps`: requests per second, as thresholds and
/// `rate_limit` read them.
pub fn parse_rate(text: &str) -> Option<f64> {
    let number = text
        .strip_suffix("/s")
        .or_else(|| text.strip_suffix("rps"))
        .unwrap_or(text);
    parse_plain_number(number.trim_end())
}

fn parse_count(text: &str) -> Option<f64> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>().ok().map(|n| n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_parse_or_explain() {
        let good: &[(&str, &str, Duration)] = &[
            ("milliseconds are read as written", "250ms", ms(250)),
            ("seconds are read as written", "10s", ms(10_000)),
            ("minutes are sixty seconds", "2m", ms(120_000)),
            ("hours are sixty minutes", "1h", ms(3_600_000)),
            ("fractions of a second are allowed", "1.5s", ms(1_500)),
            ("microseconds use us", "500us", Duration::from_micros(500)),
            (
                "microseconds may use the micro sign",
                "7µs",
                Duration::from_micros(7),
            ),
            ("parts add up", "1m30s", ms(90_000)),
            ("a space before the unit is fine", "5 s", ms(5_000)),
            ("surrounding whitespace is ignored", "  3s ", ms(3_000)),
            (
                "zero parses (callers decide if it is allowed)",
                "0s",
                Duration::ZERO,
            ),
        ];
        for (case, text, want) in good {
            assert_eq!(parse_duration(text).as_ref(), Ok(want), "{case}");
        }
        let bad: &[(&str, &str, &str)] = &[
            (
                "a word is not a duration",
                "fast",
                "expected a duration such as 250ms",
            ),
            ("a bare number needs a unit", "5", "a unit is required"),
            (
                "an unknown unit is named",
                "5d",
                "unknown duration unit `d`",
            ),
            (
                "negative durations are refused",
                "-5s",
                "cannot be negative",
            ),
            ("empty text is refused", "", "expected a duration"),
            ("two dots are not a number", "1.2.3s", "expected a duration"),
            (
                "a trailing number without unit is refused",
                "1m30",
                "a unit is required",
            ),
            (
                "absurdly large values are refused",
                "99999999999999999999h",
                "too large",
            ),
            ("infinity is not a number", "infs", "expected a duration"),
        ];
        for (case, text, want) in bad {
            let err = parse_duration(text).expect_err(case);
            assert!(err.contains(want), "{case}: {err}");
        }
    }

    #[test]
    fn durations_format_the_way_people_write_them() {
        let cases: &[(&str, Duration, &str)] = &[
            ("whole milliseconds", ms(250), "250ms"),
            ("whole seconds", ms(10_000), "10s"),
            ("whole minutes", ms(120_000), "2m"),
            ("whole hours", ms(7_200_000), "2h"),
            ("fractional seconds", ms(1_500), "1.5s"),
            ("ninety seconds stay seconds", ms(90_000), "90s"),
            ("microseconds", Duration::from_micros(500), "500us"),
            (
                "fractional milliseconds",
                Duration::from_micros(1_500),
                "1.5ms",
            ),
            ("zero", Duration::ZERO, "0s"),
        ];
        for (case, duration, want) in cases {
            assert_eq!(&format_duration(*duration), want, "{case}");
            assert_eq!(parse_duration(want), Ok(*duration), "{case} reads back");
        }
    }

    #[test]
    fn percentages_become_fractions() {
        let good: &[(&str, &str, f64)] = &[
            ("one percent is a hundredth", "1%", 0.01),
            ("half a percent is allowed", "0.5%", 0.005),
            ("a hundred percent is everything", "100%", 1.0),
            ("a space before the sign is fine", "5 %", 0.05),
        ];
        for (case, text, want) in good {
            let got = parse_percent(text).expect(case);
            assert!((got - want).abs() < 1e-12, "{case}: {got}");
        }
        let bad: &[(&str, &str, &str)] = &[
            (
                "a number without % is refused",
                "5",
                "expected a percentage",
            ),
            ("more than 100% is refused", "150%", "between 0% and 100%"),
            (
                "negative percentages are refused",
                "-1%",
                "expected a percentage",
            ),
            ("words are refused", "lots%", "expected a percentage"),
            ("NaN is refused", "NaN%", "expected a percentage"),
        ];
        for (case, text, want) in bad {
            let err = parse_percent(text).expect_err(case);
            assert!(err.contains(want), "{case}: {err}");
        }
    }

    #[test]
    fn sizes_use_decimal_and_binary_units() {
        let good: &[(&str, &str, u64)] = &[
            ("bytes", "100B", 100),
            ("kilobytes are thousands", "10KB", 10_000),
            ("kibibytes are 1024s", "512KiB", 512 * 1024),
            ("megabytes", "2MB", 2_000_000),
            ("mebibytes", "1MiB", 1024 * 1024),
            ("gigabytes", "1GB", 1_000_000_000),
            ("gibibytes", "1GiB", 1024 * 1024 * 1024),
            ("fractions round to whole bytes", "1.5KiB", 1536),
            ("units are case-insensitive", "4kib", 4096),
            ("a space before the unit is fine", "3 MB", 3_000_000),
        ];
        for (case, text, want) in good {
            assert_eq!(parse_size(text).as_ref(), Ok(want), "{case}");
        }
        let bad: &[(&str, &str, &str)] = &[
            ("a bare number needs a unit", "512", "a unit is required"),
            ("an unknown unit is refused", "5TB", "expected a size"),
            ("words are refused", "big", "expected a size"),
            (
                "absurd sizes are refused",
                "99999999999999999999GiB",
                "too large",
            ),
        ];
        for (case, text, want) in bad {
            let err = parse_size(text).expect_err(case);
            assert!(err.contains(want), "{case}: {err}");
        }
    }

    #[test]
    fn a_share_is_a_percentage_or_a_fraction_everywhere() {
        assert_eq!(parse_percent_or_fraction("1%"), Ok(0.01));
        assert_eq!(parse_percent_or_fraction(" 0.01 "), Ok(0.01));
        assert_eq!(parse_percent_or_fraction("1"), Ok(1.0));
        assert!(parse_percent_or_fraction("1.5").is_err());
        assert!(parse_percent_or_fraction("-0.1").is_err());
        let t = parse_threshold(Metric::ErrorRate, "< 0.01").expect("fraction");
        assert_eq!(t.value, 0.01);
    }

    #[test]
    fn thresholds_take_the_unit_of_their_metric() {
        let good: &[(&str, Metric, &str, CmpOp, f64)] = &[
            (
                "p99 below 100ms is in milliseconds",
                Metric::P99,
                "< 100ms",
                CmpOp::Lt,
                100.0,
            ),
            (
                "p99.9 accepts seconds",
                Metric::P999,
                "<= 1.5s",
                CmpOp::Le,
                1500.0,
            ),
            (
                "mean accepts microseconds",
                Metric::Mean,
                "< 500us",
                CmpOp::Lt,
                0.5,
            ),
            (
                "max works without a space",
                Metric::Max,
                "<2s",
                CmpOp::Lt,
                2000.0,
            ),
            (
                "error_rate is a fraction",
                Metric::ErrorRate,
                "< 1%",
                CmpOp::Lt,
                0.01,
            ),
            (
                "rate may be a bare number",
                Metric::Rate,
                ">= 100",
                CmpOp::Ge,
                100.0,
            ),
            (
                "rate may end in /s",
                Metric::Rate,
                "> 50/s",
                CmpOp::Gt,
                50.0,
            ),
            (
                "rate may end in rps",
                Metric::Rate,
                "> 50 rps",
                CmpOp::Gt,
                50.0,
            ),
            (
                "requests is a count",
                Metric::Requests,
                ">= 1000",
                CmpOp::Ge,
                1000.0,
            ),
            (
                "errors is a count compared with ==",
                Metric::Errors,
                "== 0",
                CmpOp::Eq,
                0.0,
            ),
        ];
        for (case, metric, text, op, value) in good {
            let t = parse_threshold(*metric, text).expect(case);
            assert_eq!(t.metric, *metric, "{case}");
            assert_eq!(t.op, *op, "{case}");
            assert!((t.value - value).abs() < 1e-9, "{case}: {}", t.value);
            assert_eq!(t.source, text.trim(), "{case}");
        }
        let bad: &[(&str, Metric, &str, &str)] = &[
            (
                "a latency needs a duration",
                Metric::P99,
                "< 100",
                "needs a duration",
            ),
            (
                "a latency refuses a percentage",
                Metric::P50,
                "< 5%",
                "needs a duration",
            ),
            (
                "error_rate needs a percentage",
                Metric::ErrorRate,
                "< fast",
                "needs a percentage",
            ),
            (
                "a bare error rate over 1 is not guessed",
                Metric::ErrorRate,
                "< 5",
                "write a percentage such as `5%`",
            ),
            (
                "rate refuses a duration",
                Metric::Rate,
                "> 5s",
                "requests per second",
            ),
            (
                "requests refuses fractions",
                Metric::Requests,
                ">= 1.5",
                "whole number",
            ),
            (
                "equality is not an operator",
                Metric::P99,
                "= 100ms",
                "expected a comparison",
            ),
            (
                "an operator needs a value",
                Metric::P99,
                "<",
                "missing a value",
            ),
            (
                "a value needs an operator",
                Metric::P99,
                "100ms",
                "expected a comparison",
            ),
            (
                "empty text is refused",
                Metric::P99,
                "",
                "expected a comparison",
            ),
        ];
        for (case, metric, text, want) in bad {
            let err = parse_threshold(*metric, text).expect_err(case);
            assert!(err.contains(want), "{case}: {err}");
        }
    }
}
