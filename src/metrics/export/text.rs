//! The Prometheus text exposition format (version 0.0.4) of a [`Snapshot`].
//!
//! Hand-rolled rather than `prometheus-client`'s encoder: remote write needs
//! the same series as data ([`super::model`]), and that crate has no way
//! to read its metrics back except by parsing its own text. The format is
//! small: `# HELP`, `# TYPE`, one line per series, histograms as
//! `_bucket{le=…}`, `_sum` and `_count`. `promtool check metrics` checks
//! the output in the integration tests.

use super::model::{Family, Kind, Snapshot, Value};
use std::fmt::Write;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders every family of `snapshot` that has at least one series.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    for family in snapshot.iter().filter(|f| !f.series.is_empty()) {
        render_family(&mut out, family);
    }
    out
}

fn render_family(out: &mut String, family: &Family) {
    let desc = family.desc;
    let _ = writeln!(out, "# HELP {} {}", desc.name, escape_help(desc.help));
    let _ = writeln!(out, "# TYPE {} {}", desc.name, desc.kind.as_str());
    for (values, value) in &family.series {
        let pairs: Vec<(&str, &str)> = desc
            .labels
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .collect();
        match (desc.kind, value) {
            (Kind::Histogram, Value::Histogram(h)) => {
                for (bound, count) in h.bounds.iter().zip(&h.cumulative) {
                    let le = number(*bound);
                    series(out, desc.name, "_bucket", &pairs, Some(&le), *count as f64);
                }
                series(
                    out,
                    desc.name,
                    "_bucket",
                    &pairs,
                    Some("+Inf"),
                    h.count as f64,
                );
                series(out, desc.name, "_sum", &pairs, None, h.sum);
                series(out, desc.name, "_count", &pairs, None, h.count as f64);
            }
            (_, Value::Scalar(v)) => series(out, desc.name, "", &pairs, None, *v),
            // A histogram value under a scalar family (or the reverse) is a
            // bug of the feeder; leaving it out keeps the output parseable.
            _ => {}
        }
    }
}

fn series(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    le: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
    let mut first = true;
    for (k, v) in all {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
    out.push_str(&number(value));
    out.push('\n');
}

/// A sample value or bound: integers without a fraction, `+Inf`, `NaN`.
pub fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::model::{Desc, HistogramValue, Store};
    use super::*;

    static C: Desc = Desc {
        name: "t_requests_total",
        help: "Requests.",
        kind: Kind::Counter,
        labels: &["name"],
    };
    static H: Desc = Desc {
        name: "t_latency_seconds",
        help: "Latency.",
        kind: Kind::Histogram,
        labels: &[],
    };

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let mut store = Store::default();
        store.add(&C, &["say \"hi\"\\\n"], 3.0);
        store.set(
            &H,
            &[],
            Value::Histogram(HistogramValue {
                bounds: &[0.005, 0.25],
                cumulative: vec![1, 2],
                count: 3,
                sum: 1.5,
            }),
        );
        let text = render(&store.snapshot());
        assert_eq!(
            text,
            "# HELP t_latency_seconds Latency.\n\
             # TYPE t_latency_seconds histogram\n\
             t_latency_seconds_bucket{le=\"0.005\"} 1\n\
             t_latency_seconds_bucket{le=\"0.25\"} 2\n\
             t_latency_seconds_bucket{le=\"+Inf\"} 3\n\
             t_latency_seconds_sum 1.5\n\
             t_latency_seconds_count 3\n\
             # HELP t_requests_total Requests.\n\
             # TYPE t_requests_total counter\n\
             t_requests_total{name=\"say \\\"hi\\\"\\\\\\n\"} 3\n"
        );
    }

    #[test]
    fn numbers_are_plain() {
        assert_eq!(number(2.0), "2");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
