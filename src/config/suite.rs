//! Suite files: a name, shared `defaults`, and a list of experiment files.
//!
//! Each referenced experiment is read, decoded and validated as its own
//! [`SourceFile`], so its errors carry its own positions; a file that cannot
//! be read is reported at the suite's list entry instead. Suites list
//! experiment files only, which is what makes nesting cycles impossible.

use std::collections::HashMap;
use std::path::Path;

use serde_yaml::Value;

use super::decode::decode;
use super::diagnostics::Diagnostic;
use super::limits;
use super::model::{Document, Experiment, SuiteInfo};
use super::raw::{RawExperiment, RawSuite};
use super::source::{Node, SourceFile};
use super::validate::{self, items, required_text, Defaults};
use super::validate_load;
use super::{kind, not_a_document, parse, read_source, Kind, LoadOptions, ReadError};

/// What every experiment of a suite is loaded with: the options, and the
/// suite's `defaults` as written, which `--set` overrides start from.
struct Lend<'a> {
    options: &'a LoadOptions,
    defaults: Option<&'a Value>,
}

/// Decodes and validates a suite whose parsed text is `value`.
pub fn load(
    value: Value,
    file: &mut SourceFile,
    options: &LoadOptions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Document> {
    let written_defaults = value.get("defaults").cloned();
    let lend = Lend {
        options,
        defaults: written_defaults.as_ref(),
    };
    let raw: RawSuite = decode(value, file, diags)?;
    let file: &SourceFile = file;
    let root = Node::root(file);
    let name = required_text(raw.name.as_ref(), &root, "name", diags);
    let tags = validate::tags(raw.tags.as_ref(), &root, diags);

    let defaults_node = root.at("defaults");
    let raw_defaults = raw.defaults.as_ref();
    let defaults = Defaults {
        target: raw_defaults
            .and_then(|d| d.target.as_ref())
            .map(|t| (t, defaults_node.at("target"))),
        load: raw_defaults
            .and_then(|d| d.load.as_ref())
            .map(|l| (l, defaults_node.at("load"))),
        safety: raw.safety.as_ref().map(|s| (s, root.at("safety"))),
        notify: raw.notify.as_ref().map(|n| (n, root.at("notify"))),
        tags: tags.clone(),
    };
    // Check the defaults on their own too, so a mistake there is reported
    // even when every experiment overrides it (repeats are dropped later).
    if let Some((target, at)) = &defaults.target {
        validate::target(target, at, diags);
    }
    if let Some((load, at)) = &defaults.load {
        validate_load::load(None, Some((load, at.clone())), &root, false, diags);
    }

    // The suite's own safety, checked once on its own (its probe references
    // are checked per experiment), for the suite-wide duration cap.
    let safety = raw
        .safety
        .as_ref()
        .map(|s| super::validate_safety::safety(s, &root.at("safety"), &[], &mut Vec::new()));
    let mut experiments = experiments(raw.experiments.as_ref(), &root, &defaults, &lend, diags);
    if let (Some(Some(safety)), Some(list)) = (&safety, experiments.as_ref()) {
        let total: std::time::Duration = list.iter().map(|e| e.total_duration()).sum();
        if let Some(max) = safety.max_duration.filter(|max| total > *max) {
            diags.push(root.at("safety").at("max_duration").error(format!(
                "the suite's experiments last {} in all, longer than `max_duration` {}",
                super::units::format_duration(total),
                super::units::format_duration(max)
            )));
        }
    }
    if let (Some(list), Some(name)) = (experiments.as_mut(), name.as_ref()) {
        for e in list {
            e.suite = Some(name.clone());
        }
    }
    Some(Document {
        source: file.path.clone(),
        suite: Some(SuiteInfo {
            name: name?,
            description: raw.description.clone(),
            tags,
            safety: safety.flatten(),
        }),
        experiments: experiments?,
        warnings: Vec::new(),
    })
}

fn experiments(
    raw: Option<&Vec<Option<String>>>,
    root: &Node<'_>,
    defaults: &Defaults<'_>,
    lend: &Lend<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Vec<Experiment>> {
    let at = root.at("experiments");
    let Some(list) = raw else {
        // The key is there (that is what makes a suite) but null, or cut
        // after an error already reported.
        if !at.is_suppressed() {
            diags.push(at.error("must list at least one experiment file"));
        }
        return None;
    };
    if list.is_empty() {
        diags.push(at.error("must list at least one experiment file"));
        return None;
    }
    let listed = items(Some(list), &at, "the path of an experiment file", diags);
    let mut ok = listed.len() == list.len();
    let mut out: Vec<Experiment> = Vec::new();
    let mut names: HashMap<String, String> = HashMap::new();
    // A glob entry (`../experiments/demo-*.yaml`) stands for every file it
    // matches, in name order; matching nothing is an error.
    let mut files: Vec<(String, Node<'_>)> = Vec::new();
    for (relative, entry) in listed {
        if !relative.contains(['*', '?']) {
            files.push((relative.clone(), entry));
            continue;
        }
        let dir = entry.file.path.parent().unwrap_or(Path::new(""));
        let room = limits::MAX_SUITE_FILES.saturating_sub(files.len());
        match expand_glob(dir, relative, room) {
            Ok(found) if !found.is_empty() => {
                files.extend(found.into_iter().map(|f| (f, entry.clone())))
            }
            Ok(_) => {
                diags.push(entry.error(format!("`{relative}` matches no file")));
                ok = false;
            }
            Err(message) => {
                diags.push(entry.error(message));
                ok = false;
            }
        }
    }
    if files.len() > limits::MAX_SUITE_FILES {
        diags.push(at.error(format!(
            "the suite lists {} experiment files; at most {} are allowed",
            files.len(),
            limits::MAX_SUITE_FILES
        )));
        return None;
    }
    // Each file is bounded on its own; this bounds what the suite reads in all.
    let mut budget = Some(limits::MAX_SUITE_BYTES);
    for (relative, entry) in &files {
        if budget.is_none() {
            // Spent: reported once, at the file that went over.
            break;
        }
        let (relative, entry) = (relative, entry.clone());
        let Some(experiment) = referenced(relative, &entry, defaults, lend, &mut budget, diags)
        else {
            ok = false;
            continue;
        };
        if let Some(first) = names.get(&experiment.name) {
            diags.push(entry.error(format!(
                "experiment name `{}` is already used by `{first}`; names must be unique within a suite",
                experiment.name
            )));
            ok = false;
            continue;
        }
        names.insert(experiment.name.clone(), relative.clone());
        out.push(experiment);
    }
    ok.then_some(out)
}

/// The files matching `pattern` (relative to `dir`): `*` and `?` are allowed
/// in the last path component only, which keeps a suite's reach obvious.
/// More than `room` matches is an error (the suite's file limit), found
/// without listing the rest of a huge folder.
fn expand_glob(dir: &Path, pattern: &str, room: usize) -> Result<Vec<String>, String> {
    let (parent, name) = match pattern.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, pattern),
    };
    if parent.is_some_and(|p| p.contains(['*', '?'])) {
        return Err(format!(
            "`{pattern}`: wildcards are allowed in the file name only, not in folders"
        ));
    }
    let folder = match parent {
        Some(p) => dir.join(p),
        None => dir.to_path_buf(),
    };
    let entries = std::fs::read_dir(&folder)
        .map_err(|e| format!("cannot list `{}`: {e}", folder.display()))?;
    let mut found: Vec<String> = Vec::new();
    let matching = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok().map(|n| (e, n)))
        .filter(|(_, n)| crate::glob::matches(name, n))
        .filter(|(e, _)| e.path().is_file());
    for (_, n) in matching {
        if found.len() == room {
            return Err(format!(
                "`{pattern}` matches more than {room} files; a suite may list at most {} \
                 experiment files",
                limits::MAX_SUITE_FILES
            ));
        }
        found.push(match parent {
            Some(p) => format!("{p}/{n}"),
            None => n,
        });
    }
    found.sort();
    Ok(found)
}

/// Loads the experiment file `relative` (to the suite's directory) listed at `entry`.
/// `budget` is what is left of [`limits::MAX_SUITE_BYTES`], `None` once a
/// file went over it.
fn referenced(
    relative: &str,
    entry: &Node<'_>,
    defaults: &Defaults<'_>,
    lend: &Lend<'_>,
    budget: &mut Option<u64>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Experiment> {
    if relative.trim().is_empty() {
        diags.push(entry.error("expected the path of an experiment file, found an empty string"));
        return None;
    }
    let dir = entry.file.path.parent().unwrap_or(Path::new(""));
    let path = dir.join(relative);
    let text = match read_source(&path) {
        Ok(text) => text,
        Err(ReadError::Io(error)) => {
            diags.push(entry.error(format!(
                "cannot read experiment file `{}`: {error}",
                path.display()
            )));
            return None;
        }
        Err(ReadError::NotRegular(what)) => {
            diags.push(entry.error(format!(
                "cannot read experiment file `{}`: it is {what}, not a regular file",
                path.display()
            )));
            return None;
        }
        Err(not_utf8) => {
            diags.push(not_utf8.into_diagnostic(&path));
            return None;
        }
    };
    let left = budget.unwrap_or(0);
    let Some(rest) = left.checked_sub(text.len() as u64) else {
        diags.push(entry.error(format!(
            "with `{relative}` the suite's experiment files exceed {} in all, the limit of \
             what one suite may read",
            limits::mib(limits::MAX_SUITE_BYTES)
        )));
        *budget = None;
        return None;
    };
    *budget = Some(rest);
    let mut file = SourceFile::new(path, text);
    let mut value = parse(&mut file, diags)?;
    match kind(&value) {
        Kind::Experiment => {
            if !super::prepare(&mut value, &mut file, lend.options, lend.defaults, diags) {
                return None;
            }
            experiment(value, &mut file, defaults, diags)
        }
        Kind::Suite => {
            diags.push(entry.error(format!(
                "`{relative}` is a suite; a suite can only list experiment files"
            )));
            None
        }
        Kind::Other => {
            diags.push(Node::root(&file).error(not_a_document(&value)));
            None
        }
    }
}

/// Decodes and validates one experiment file's `value`.
pub fn experiment(
    value: Value,
    file: &mut SourceFile,
    defaults: &Defaults<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Experiment> {
    let raw: RawExperiment = decode(value, file, diags)?;
    validate::experiment(&raw, &Node::root(file), defaults, diags)
}

/// Suites and files on disk; the experiment format itself is tested in
/// `config/tests.rs`.
#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::model::{Document, LoadModel, TargetKind};
    use crate::config::{load_file, load_str, ConfigError};

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new(files: &[(&str, &str)]) -> Dir {
            let dir = tempfile::tempdir().expect("tempdir");
            for (name, text) in files {
                let path = dir.path().join(name);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).expect("mkdir");
                }
                std::fs::write(path, text).expect("write");
            }
            Dir(dir)
        }

        fn load(&self, name: &str) -> Result<Document, ConfigError> {
            load_file(&self.0.path().join(name))
        }
    }

    const BARE: &str = "name: bare
tags: [own, demo]
phases: [{ name: p, duration: 1s }]
";

    const SUITE: &str = "name: demo
tags: [demo, suite]
defaults:
  target: { demo: {} }
  load: { rate: 100, max_in_flight: 8, timeout: 2s, requests: [{ path: / }] }
experiments:
  - ../experiments/bare.yaml
  - ../experiments/closed.yaml
";

    const CLOSED: &str = "name: closed
target: { url: 'http://127.0.0.1:9' }
load: { concurrency: 3 }
phases: [{ name: p, duration: 1s }]
";

    #[test]
    fn a_suite_lends_its_defaults_and_tags() {
        let dir = Dir::new(&[
            ("suites/demo.yaml", SUITE),
            ("experiments/bare.yaml", BARE),
            ("experiments/closed.yaml", CLOSED),
        ]);
        let doc = dir
            .load("suites/demo.yaml")
            .unwrap_or_else(|e| panic!("{e}"));
        let info = doc.suite.expect("a suite");
        assert_eq!(info.name, "demo");
        let [bare, closed] = doc.experiments.as_slice() else {
            panic!("two experiments");
        };
        assert_eq!(bare.tags, ["own", "demo", "suite"]);
        assert!(bare.source.ends_with("experiments/bare.yaml"));
        assert!(matches!(bare.target.kind, TargetKind::Demo(_)));
        assert!(matches!(
            bare.load.model,
            LoadModel::Open {
                max_in_flight: 8,
                ..
            }
        ));
        assert_eq!(bare.load.timeout, Duration::from_secs(2));
        // Setting `concurrency` drops the suite's `rate`; its max_in_flight quietly does not apply.
        assert!(matches!(
            closed.load.model,
            LoadModel::Closed { concurrency: 3 }
        ));
        assert!(matches!(closed.target.kind, TargetKind::Url(_)));
        assert_eq!(
            closed.load.requests.len(),
            1,
            "requests come from the defaults"
        );
    }

    #[test]
    fn a_bare_experiment_is_invalid_on_its_own() {
        let found = load_str(BARE, Path::new("bare.yaml"))
            .expect_err("bare")
            .diagnostics;
        let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "missing `target` (required unless a suite provides defaults.target)",
                "missing `load` (required unless a suite provides defaults.load)"
            ]
        );
    }

    #[test]
    fn suite_problems_point_at_the_right_file_and_line() {
        let suite = "name: s
experiments:
  - a.yaml
  - missing.yaml
  - b.yaml
  - inner.yaml
";
        let dir = Dir::new(&[
            ("s.yaml", suite),
            ("a.yaml", CLOSED.replace("load: { concurrency: 3 }", "load: { concurrency: 3, requests: [{ path: / }] }").as_str()),
            ("b.yaml", "name: closed\ntarget: { url: 'http://127.0.0.1:9' }\nload: { concurrency: 0, requests: [{ path: / }] }\nphases: [{ name: p, duration: 1s }]\n"),
            ("inner.yaml", "name: inner\nexperiments: [a.yaml]\n"),
        ]);
        let err = dir.load("s.yaml").expect_err("invalid");
        let found: Vec<(String, Option<usize>, &str)> = err
            .diagnostics
            .iter()
            .map(|d| {
                let file = d
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (file, d.line, d.message.as_str())
            })
            .collect();
        assert_eq!(found.len(), 3, "{err}");
        assert_eq!((found[0].0.as_str(), found[0].1), ("s.yaml", Some(4)));
        assert!(
            found[0].2.starts_with("cannot read experiment file"),
            "{err}"
        );
        assert_eq!((found[1].0.as_str(), found[1].1), ("s.yaml", Some(6)));
        assert!(found[1].2.contains("is a suite"), "{err}");
        assert_eq!((found[2].0.as_str(), found[2].1), ("b.yaml", Some(3)));
        assert!(found[2].2.contains("must be at least 1"), "{err}");
    }

    #[test]
    fn experiment_names_must_be_unique_within_a_suite() {
        let dir = Dir::new(&[
            ("s.yaml", "name: s\ndefaults: { target: { demo: {} }, load: { rate: 1, requests: [{ path: / }] } }\nexperiments: [a.yaml, b.yaml]\n"),
            ("a.yaml", BARE),
            ("b.yaml", BARE),
        ]);
        let err = dir.load("s.yaml").expect_err("duplicate names");
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        assert!(
            err.diagnostics[0]
                .message
                .contains("experiment name `bare` is already used"),
            "{err}"
        );
        assert_eq!(err.diagnostics[0].path, "experiments[1]");
    }

    #[test]
    fn a_bad_default_is_reported_once_in_the_suite_file() {
        let dir = Dir::new(&[
            ("s.yaml", "name: s\ndefaults: { target: { demo: {} }, load: { rate: 1, timeout: soon, requests: [{ path: / }] } }\nexperiments: [a.yaml, b.yaml]\n"),
            ("a.yaml", BARE),
            ("b.yaml", &BARE.replace("name: bare", "name: other")),
        ]);
        let err = dir.load("s.yaml").expect_err("bad default");
        assert_eq!(err.diagnostics.len(), 1, "{err}");
        assert_eq!(err.diagnostics[0].path, "defaults.load.timeout");
        assert_eq!(err.diagnostics[0].line, Some(2));
    }

    #[test]
    fn an_unreadable_file_is_a_config_error() {
        let err = load_file(Path::new("/definitely/not/here.yaml")).expect_err("missing");
        assert!(
            err.diagnostics[0].message.starts_with("cannot read file"),
            "{err}"
        );
        let dir = Dir::new(&[]);
        let path = dir.0.path().join("bin.yaml");
        std::fs::write(&path, b"name: x\nta\xffgs: []\n").expect("write");
        let err = load_file(&path).expect_err("not utf-8");
        assert_eq!(err.diagnostics[0].line, Some(2));
        assert_eq!(err.diagnostics[0].column, Some(3));
    }

    #[test]
    fn a_glob_entry_lists_every_matching_file_in_name_order() {
        let suite = SUITE.replace(
            "  - ../experiments/bare.yaml\n  - ../experiments/closed.yaml\n",
            "  - ../experiments/*.yaml\n",
        );
        let dir = Dir::new(&[
            ("suites/s.yaml", &suite),
            ("experiments/closed.yaml", CLOSED),
            ("experiments/bare.yaml", BARE),
            ("experiments/notes.txt", "not yaml"),
        ]);
        let doc = dir.load("suites/s.yaml").expect("valid suite");
        let names: Vec<&str> = doc.experiments.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["bare", "closed"]);
        assert!(doc
            .experiments
            .iter()
            .all(|e| e.suite.as_deref() == Some("demo")));
    }

    #[test]
    fn a_glob_that_matches_nothing_or_wildcards_a_folder_is_an_error() {
        for (entry, want) in [
            ("../experiments/nothing-*.yaml", "matches no file"),
            ("../*/bare.yaml", "file name only"),
        ] {
            let suite = SUITE.replace(
                "  - ../experiments/closed.yaml\n",
                &format!("  - {entry}\n"),
            );
            let dir = Dir::new(&[("suites/s.yaml", &suite), ("experiments/bare.yaml", BARE)]);
            let err = dir.load("suites/s.yaml").expect_err("invalid").to_string();
            assert!(err.contains(want), "{entry}: {err}");
        }
    }
}
