//! The data model of the live metrics: families of series, each a label
//! set with a value, and the store that holds the current value of each.
//!
//! One model, two renderers: the text exposition served at `/metrics`
//! ([`super::text`]) and Prometheus remote write ([`super::remote_write`])
//! both read a [`Snapshot`] of it, so they can never disagree on names,
//! labels or values.

use std::collections::BTreeMap;

/// A metric family's type, as Prometheus knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A metric family of the catalogue: its name, help, type and label names.
#[derive(Debug, PartialEq, Eq)]
pub struct Desc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// The label names every series of the family carries, in this order.
    pub labels: &'static [&'static str],
}

/// The longest label value kept; longer ones (a long fault description,
/// a request name) are cut on a character boundary and marked with `…`.
pub const MAX_LABEL_VALUE: usize = 120;

/// A classic histogram's value: cumulative counts per upper bound.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramValue {
    /// Upper bounds in the family's unit (seconds), ascending, without `+Inf`.
    pub bounds: &'static [f64],
    /// Samples at or below each bound (same length as `bounds`).
    pub cumulative: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

/// The current value of one series.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    Histogram(HistogramValue),
}

/// A label set's values, in the order of [`Desc::labels`].
pub type LabelValues = Vec<String>;

/// One family with every series it has now.
#[derive(Debug, Clone)]
pub struct Family {
    pub desc: &'static Desc,
    pub series: BTreeMap<LabelValues, Value>,
}

/// A copy of every family, ordered by name, taken under the store's lock
/// and rendered outside it.
pub type Snapshot = Vec<Family>;

/// The current values of every family that has a series.
#[derive(Debug, Default)]
pub struct Store {
    families: BTreeMap<&'static str, Family>,
}

impl Store {
    /// Sets a series' value (a gauge, or a counter whose source owns the
    /// running total). Label values beyond the family's label names are
    /// ignored; missing ones are empty.
    pub fn set(&mut self, desc: &'static Desc, labels: &[&str], value: Value) {
        let key = label_values(desc, labels);
        self.family(desc).series.insert(key, value);
    }

    /// Adds `delta` to a counter series (created at 0).
    pub fn add(&mut self, desc: &'static Desc, labels: &[&str], delta: f64) {
        let key = label_values(desc, labels);
        let entry = self
            .family(desc)
            .series
            .entry(key)
            .or_insert(Value::Scalar(0.0));
        if let Value::Scalar(v) = entry {
            *v += delta;
        }
    }

    /// Sets every series of `desc` whose first label values are `prefix` to
    /// `value` (e.g. every phase of one experiment to 0).
    pub fn set_all(&mut self, desc: &'static Desc, prefix: &[&str], value: f64) {
        let prefix: Vec<String> = prefix.iter().map(|v| clean(v)).collect();
        if let Some(family) = self.families.get_mut(desc.name) {
            for (key, v) in family.series.iter_mut() {
                if key.starts_with(&prefix) {
                    *v = Value::Scalar(value);
                }
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.families.values().cloned().collect()
    }

    fn family(&mut self, desc: &'static Desc) -> &mut Family {
        self.families.entry(desc.name).or_insert_with(|| Family {
            desc,
            series: BTreeMap::new(),
        })
    }
}

fn label_values(desc: &Desc, labels: &[&str]) -> LabelValues {
    (0..desc.labels.len())
        .map(|i| labels.get(i).map_or_else(String::new, |v| clean(v)))
        .collect()
}

/// A label value bounded in length (cardinality is bounded by the
/// catalogue's label names and the run's configuration; length here).
pub fn clean(value: &str) -> String {
    if value.len() <= MAX_LABEL_VALUE {
        return value.to_string();
    }
    let mut end = MAX_LABEL_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    static D: Desc = Desc {
        name: "x_total",
        help: "x",
        kind: Kind::Counter,
        labels: &["a", "b"],
    };

    #[test]
    fn series_are_keyed_by_the_family_label_names() {
        let mut store = Store::default();
        store.add(&D, &["1", "2", "ignored"], 2.0);
        store.add(&D, &["1", "2"], 3.0);
        store.add(&D, &["1"], 1.0);
        let snap = store.snapshot();
        assert_eq!(snap.len(), 1);
        let series: Vec<_> = snap[0].series.iter().collect();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].0, &vec!["1".to_string(), String::new()]);
        assert_eq!(series[1].1, &Value::Scalar(5.0));
    }

    #[test]
    fn set_all_resets_the_series_under_a_prefix() {
        let mut store = Store::default();
        store.set(&D, &["e", "p1"], Value::Scalar(1.0));
        store.set(&D, &["e", "p2"], Value::Scalar(1.0));
        store.set(&D, &["f", "p1"], Value::Scalar(1.0));
        store.set_all(&D, &["e"], 0.0);
        let snap = store.snapshot();
        let values: Vec<_> = snap[0].series.values().cloned().collect();
        assert_eq!(
            values,
            [Value::Scalar(0.0), Value::Scalar(0.0), Value::Scalar(1.0)]
        );
    }

    #[test]
    fn long_label_values_are_cut_on_a_char_boundary() {
        let long = "é".repeat(100);
        let cut = clean(&long);
        assert!(cut.len() <= MAX_LABEL_VALUE + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(clean("short"), "short");
    }
}
