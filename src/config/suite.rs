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
use super::locate::{Node, SourceFile};
use super::model::{Document, Experiment, SuiteInfo};
use super::raw::{RawExperiment, RawSuite};
use super::validate::{self, items, required_text, Defaults};
use super::validate_load;
use super::{kind, not_a_document, parse, read_source, Kind, ReadError};

/// Decodes and validates a suite whose parsed text is `value`.
pub fn load(value: Value, file: &mut SourceFile, diags: &mut Vec<Diagnostic>) -> Option<Document> {
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

    let experiments = experiments(raw.experiments.as_ref(), &root, &defaults, diags);
    Some(Document {
        source: file.path.clone(),
        suite: Some(SuiteInfo {
            name: name?,
            description: raw.description.clone(),
            tags,
        }),
        experiments: experiments?,
    })
}

fn experiments(
    raw: Option<&Vec<Option<String>>>,
    root: &Node<'_>,
    defaults: &Defaults<'_>,
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
    for (relative, entry) in listed {
        let Some(experiment) = referenced(relative, &entry, defaults, diags) else {
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

/// Loads the experiment file `relative` (to the suite's directory) listed at `entry`.
fn referenced(
    relative: &str,
    entry: &Node<'_>,
    defaults: &Defaults<'_>,
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
        Err(not_utf8) => {
            diags.push(not_utf8.into_diagnostic(&path));
            return None;
        }
    };
    let mut file = SourceFile::new(path, text);
    let value = parse(&mut file, diags)?;
    match kind(&value) {
        Kind::Experiment => experiment(value, &mut file, defaults, diags),
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
