//! Input limits: what an experiment or suite file may hold, so that any
//! input, hostile or broken, is accepted or refused in bounded time and
//! memory (well under a second and 256 MiB).
//!
//! They are checked in order of cost, each before the step it protects:
//! the file's size while it is read (`read_source`), the nesting depth by a
//! cheap scan of the text ([`super::prescan`]) before any YAML parser sees
//! it (both parsers slow down quadratically with depth), the number of
//! nodes, aliases expanded, while positions are indexed ([`NodeCount`],
//! before serde_yaml builds a `Value`: a padded alias bomb passes
//! serde_yaml's own repetition limit), and list lengths on the `Value`
//! ([`list_lengths`]) before anything is decoded or validated item by item.
//!
//! The limits are listed in the README's "Safety" section; none can be
//! lifted, because no real experiment comes near them.

use std::collections::HashMap;

use serde_yaml::Value;

use super::diagnostics::Diagnostic;
use super::locate::{Seg, YamlPath};
use super::source::Node;

/// Largest experiment or suite file read (1 MiB).
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// Deepest nesting of mappings and lists, block or flow.
pub const MAX_DEPTH: usize = 64;
/// Most nodes (scalars, lists, mappings) in one file once aliases are expanded.
pub const MAX_NODES: u64 = 50_000;
/// Most phases in an experiment.
pub const MAX_PHASES: usize = 1_000;
/// Most entries of a `requests` list.
pub const MAX_REQUESTS: usize = 1_000;
/// Most faults in one phase's `inject`.
pub const MAX_INJECT: usize = 100;
/// Most `tags` of an experiment or suite.
pub const MAX_TAGS: usize = 100;
/// Most experiment files in a suite (its glob entries expanded).
pub const MAX_SUITE_FILES: usize = 1_000;
/// Most bytes of experiment files one suite may read in all (4 MiB).
pub const MAX_SUITE_BYTES: u64 = 4 << 20;

/// `1 MiB`, `16 MiB`: limits as the user reads them.
pub fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// Counts the nodes of a document from its parser events, an alias counting
/// as a copy of everything its anchor holds, and remembers where the count
/// first passed [`MAX_NODES`].
#[derive(Debug, Default)]
pub struct NodeCount {
    /// Nodes so far, aliases expanded (saturating: a bomb overflows `u64`).
    total: u64,
    /// For each open collection: its anchor id (0 for none) and `total` before it.
    open: Vec<(usize, u64)>,
    /// Expanded size of each anchored node, by yaml-rust2's anchor id.
    anchors: HashMap<usize, u64>,
}

impl NodeCount {
    /// A scalar, with its anchor id (0 for none).
    pub fn scalar(&mut self, anchor: usize) {
        self.total = self.total.saturating_add(1);
        if anchor > 0 {
            self.anchors.insert(anchor, 1);
        }
    }

    /// An alias: a copy of its anchor's node.
    pub fn alias(&mut self, anchor: usize) {
        let size = self.anchors.get(&anchor).copied().unwrap_or(1);
        self.total = self.total.saturating_add(size);
    }

    /// The start of a mapping or list.
    pub fn open(&mut self, anchor: usize) {
        self.open.push((anchor, self.total));
        self.total = self.total.saturating_add(1);
    }

    /// The end of the innermost open mapping or list.
    pub fn close(&mut self) {
        if let Some((anchor, before)) = self.open.pop() {
            if anchor > 0 {
                self.anchors
                    .insert(anchor, self.total.saturating_sub(before));
            }
        }
    }

    /// True once the document holds more than [`MAX_NODES`].
    pub fn exceeded(&self) -> bool {
        self.total > MAX_NODES
    }
}

/// The message for a document past [`MAX_NODES`].
pub fn too_many_nodes() -> String {
    format!(
        "the document holds more than {MAX_NODES} values once aliases are expanded; \
         faultline refuses it before building it"
    )
}

/// Lists whose length is capped, by where they are: a key path from the
/// root, `*` standing for every item of a list.
const CAPPED: &[(&[&str], usize, &str)] = &[
    (&["phases"], MAX_PHASES, "phases"),
    (&["load", "requests"], MAX_REQUESTS, "requests"),
    (&["defaults", "load", "requests"], MAX_REQUESTS, "requests"),
    (&["phases", "*", "inject"], MAX_INJECT, "faults"),
    (&["tags"], MAX_TAGS, "tags"),
    (&["experiments"], MAX_SUITE_FILES, "experiment files"),
];

/// The smallest cap in [`CAPPED`]: shorter lists need no lookup.
pub const SMALLEST_LIST_CAP: usize = MAX_TAGS;

/// The cap on the list at `path`, and what its items are, if it has one.
pub fn list_cap(path: &YamlPath) -> Option<(usize, &'static str)> {
    let segs = path.segments();
    CAPPED
        .iter()
        .find(|(pattern, _, _)| {
            pattern.len() == segs.len()
                && pattern.iter().zip(segs).all(|(p, seg)| match seg {
                    Seg::Key(k) => p == k,
                    Seg::Index(_) => *p == "*",
                })
        })
        .map(|(_, max, what)| (*max, *what))
}

/// A list at `at` longer than its cap: `count` items when known (the
/// position index stops counting at the first item over the cap).
pub fn too_long(at: &Node<'_>, count: Option<usize>, max: usize, what: &str) -> Diagnostic {
    let count = match count {
        Some(n) => n.to_string(),
        None => format!("more than {max}"),
    };
    at.key_error(format!("{count} {what} listed; at most {max} are allowed"))
        .with_help(format!(
            "faultline caps this list at {max} {what}; split the file"
        ))
}

/// Checks the capped lists of a parsed document; a diagnostic for each one
/// that is too long. Cheap: it follows only the capped paths. The position
/// index checks the same caps as it reads the text (and stops there); this
/// catches lists it could not see, such as one that is an alias.
pub fn list_lengths(value: &Value, root: &Node<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (path, max, what) in CAPPED {
        visit(value, path, YamlPath::root(), &mut |list, at| {
            if list.len() > *max {
                let node = Node {
                    file: root.file,
                    path: at,
                };
                out.push(too_long(&node, Some(list.len()), *max, what));
            }
        });
    }
    out
}

/// Calls `found` with every list at `path` under `value`.
fn visit(value: &Value, path: &[&str], at: YamlPath, found: &mut dyn FnMut(&Vec<Value>, YamlPath)) {
    let Some((first, rest)) = path.split_first() else {
        if let Value::Sequence(list) = value {
            found(list, at);
        }
        return;
    };
    match (value, *first) {
        (Value::Sequence(items), "*") => {
            for (i, item) in items.iter().enumerate() {
                visit(item, rest, at.index(i), found);
            }
        }
        (Value::Mapping(map), key) => {
            if let Some(child) = map.get(key) {
                visit(child, rest, at.key(key), found);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;
    use std::path::Path;

    /// An experiment with `n` items in the list `which` (its other lists minimal).
    fn with_list(which: &str, n: usize) -> String {
        let phase = |i: usize| format!("{{name: p{i}, duration: 1s}}");
        let fault = "{type: latency, proxy: db, latency: 1ms}";
        let list = |item: &dyn Fn(usize) -> String, count: usize| {
            (0..count).map(item).collect::<Vec<_>>().join(", ")
        };
        let count = |list_name: &str| if list_name == which { n } else { 1 };
        format!(
            "name: x\ntags: [{}]\ntarget: {{url: 'http://127.0.0.1:9'}}\n\
             proxies: {{db: {{listen: '127.0.0.1:0', upstream: '127.0.0.1:9'}}}}\n\
             load: {{rate: 1, requests: [{}]}}\n\
             phases: [{}, {{name: f, duration: 1s, inject: [{}]}}]\n",
            list(&|i| format!("t{i}"), count("tags")),
            list(&|i| format!("{{path: /{i}}}"), count("requests")),
            list(&phase, count("phases")),
            list(&|_| fault.to_string(), count("inject")),
        )
    }

    #[test]
    fn each_capped_list_takes_its_cap_and_refuses_one_more() {
        // (list, cap, the phases list holds one more phase than `phases`)
        for (which, cap) in [
            ("tags", MAX_TAGS),
            ("requests", MAX_REQUESTS),
            ("inject", MAX_INJECT),
            ("phases", MAX_PHASES - 1),
        ] {
            let text = with_list(which, cap);
            if let Err(e) = load_str(&text, Path::new("x.yaml")) {
                panic!("{which} at its cap: {e}");
            }
            let err = load_str(&with_list(which, cap + 1), Path::new("x.yaml"))
                .expect_err("one over the cap");
            let d = &err.diagnostics[0];
            assert_eq!(err.diagnostics.len(), 1, "{which}: {err}");
            assert!(d.message.contains("are allowed"), "{which}: {err}");
            assert!(d.line.is_some(), "{which}: a position");
        }
    }

    #[test]
    fn a_capped_list_written_as_an_alias_is_still_counted() {
        // The position index sees `tags: *t`, not the list: the check on
        // the parsed value catches it.
        let tags: Vec<String> = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        let text = format!(
            "x-tags: &t [{}]\nname: x\ntags: *t\ntarget: {{url: 'http://127.0.0.1:9'}}\n\
             load: {{rate: 1, requests: [{{path: /}}]}}\nphases: [{{name: p, duration: 1s}}]\n",
            tags.join(", ")
        );
        let err = load_str(&text, Path::new("x.yaml")).expect_err("too many tags");
        assert!(
            err.diagnostics[0]
                .message
                .starts_with(&format!("{} tags listed", MAX_TAGS + 1)),
            "{err}"
        );
    }

    #[test]
    fn positions_stay_right_on_a_long_line_of_multibyte_scalars() {
        // The index resumes from the previous column on non-ASCII lines.
        let items: Vec<String> = (0..50).map(|i| format!("é{i}")).collect();
        let text = format!(
            "name: x
tags: [{}, '']
",
            items.join(", ")
        );
        let err = load_str(&text, Path::new("x.yaml")).expect_err("an empty tag");
        let d = err
            .diagnostics
            .iter()
            .find(|d| d.message.contains("must not be empty"))
            .expect("the empty tag");
        let before: usize = 7 + items.iter().map(|t| t.chars().count() + 2).sum::<usize>();
        assert_eq!((d.line, d.column), (Some(2), Some(before + 1)), "{err}");
    }

    #[test]
    fn aliases_count_as_copies_of_their_anchor() {
        let mut count = NodeCount::default();
        // a: &a [x, y]   b: [*a, *a]   → root map 1, keys 2, a 3, b 1 + 2 × 3
        count.open(0);
        count.scalar(0);
        count.open(1);
        count.scalar(0);
        count.scalar(0);
        count.close();
        count.scalar(0);
        count.open(0);
        count.alias(1);
        count.alias(1);
        count.close();
        count.close();
        assert_eq!(count.total, 1 + 2 + 3 + 1 + 6);
        assert!(!count.exceeded());
    }

    #[test]
    fn a_nested_alias_bomb_saturates_instead_of_overflowing() {
        let mut count = NodeCount::default();
        count.scalar(1);
        for level in 2..200 {
            count.open(level);
            for _ in 0..10 {
                count.alias(level - 1);
            }
            count.close();
        }
        assert!(count.exceeded());
        assert_eq!(count.total, u64::MAX);
    }
}
