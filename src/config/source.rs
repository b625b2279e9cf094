//! One input file and nodes in it: the glue between the position index
//! ([`super::locate`]) and [`Diagnostic`]s.
//!
//! Validation reports against a [`Node`] (a file plus a path), so a value a
//! suite lends to an experiment still points into the suite file.

use std::collections::HashSet;
use std::path::PathBuf;

use super::diagnostics::{Diagnostic, Snippet};
use super::locate::{source_lines, Locator, Seg, Span, YamlPath};

/// Everything known about one input file: its text, the position index, and
/// which paths were cut from the document after an error.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    pub locator: Locator,
    /// Byte ranges of the lines of `text`, so echoing a line for each of
    /// thousands of diagnostics does not rescan the file each time.
    lines: Vec<(usize, usize)>,
    /// Paths where a "missing field" report would be noise: the node was
    /// removed after an error, or the user wrote a misspelling of this key.
    pub suppressed: HashSet<YamlPath>,
    /// Paths a `--set` flag wrote or created, with the flag: a problem at or
    /// under one is reported at the flag (see [`super::overrides`]).
    pub overridden: Vec<(YamlPath, String)>,
}

impl SourceFile {
    /// A file not yet indexed; see [`SourceFile::index`].
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut lines = Vec::new();
        let mut start = 0;
        for line in source_lines(&text) {
            lines.push((start, start + line.len()));
            // Skip the line itself and its break (`\n`, or `\r\n` whose `\r`
            // source_lines already cut).
            start += line.len();
            let crlf = text
                .get(start..)
                .is_some_and(|rest| rest.starts_with("\r\n"));
            start += if crlf { 2 } else { 1 };
        }
        SourceFile {
            path: path.into(),
            text,
            locator: Locator::default(),
            lines,
            suppressed: HashSet::new(),
            overridden: Vec::new(),
        }
    }

    /// Line `number` (1-based) without its line break.
    fn line(&self, number: usize) -> Option<&str> {
        let (start, end) = *self.lines.get(number.checked_sub(1)?)?;
        self.text.get(start..end)
    }

    /// The byte offset of 1-based `line` and `column` (in characters).
    pub fn offset_of(&self, line: usize, column: usize) -> Option<usize> {
        let (start, _) = *self.lines.get(line.checked_sub(1)?)?;
        let text = self.line(line)?;
        let within = match text.char_indices().nth(column.checked_sub(1)?) {
            Some((byte, _)) => byte,
            None => text.len(),
        };
        Some(start + within)
    }

    /// The 1-based line and column (in characters) of byte `offset`.
    pub fn position_of(&self, offset: usize) -> (usize, usize) {
        let index = self
            .lines
            .partition_point(|(start, _)| *start <= offset)
            .max(1);
        let (start, _) = self.lines[index - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(1, |before| before.chars().count() + 1);
        (index, column)
    }

    /// The character at 1-based `line` and `column`.
    pub fn char_at(&self, line: usize, column: usize) -> Option<char> {
        self.line(line)?.chars().nth(column.checked_sub(1)?)
    }

    /// Builds the position index; call once the text is known to be valid YAML.
    pub fn index(&mut self) {
        self.locator = Locator::build(&self.text);
    }

    /// True when `path` or one of its ancestors was cut after an earlier error.
    pub fn is_suppressed(&self, path: &YamlPath) -> bool {
        path.ancestors().any(|p| self.suppressed.contains(&p))
    }

    /// The `--set` flag that wrote `path` or one of its ancestors.
    pub fn flag_at(&self, path: &YamlPath) -> Option<&str> {
        if self.overridden.is_empty() {
            return None;
        }
        path.ancestors().find_map(|p| {
            self.overridden
                .iter()
                .find(|(written, _)| *written == p)
                .map(|(_, flag)| flag.as_str())
        })
    }

    /// A diagnostic shown under `path`, pointing at `span` when known, or at
    /// the `--set` flag that wrote `path`.
    pub fn diagnostic(
        &self,
        path: &YamlPath,
        span: Option<Span>,
        message: impl Into<String>,
    ) -> Diagnostic {
        if let Some(flag) = self.flag_at(path) {
            return Diagnostic::new(flag, path.to_string(), message);
        }
        let d = Diagnostic::new(self.path.clone(), path.to_string(), message);
        match span {
            None => d,
            Some(span) => {
                let snippet = self.line(span.line).map(|text| Snippet {
                    text: text.to_string(),
                    len: span.len,
                });
                d.at(span.line, span.column, snippet)
            }
        }
    }

    /// The value at `path`, else its key, else the nearest indexed ancestor
    /// (paths under an alias or a merge key are not in the text).
    pub fn value_span(&self, path: &YamlPath) -> Option<Span> {
        self.locator
            .value(path)
            .or_else(|| self.locator.key(path))
            .or_else(|| {
                path.ancestors()
                    .skip(1)
                    .filter(|p| !p.is_root())
                    .find_map(|p| self.locator.value(&p))
            })
    }

    /// The key at `path`, else wherever its value is.
    pub fn key_span(&self, path: &YamlPath) -> Option<Span> {
        self.locator.key(path).or_else(|| self.value_span(path))
    }

    /// Where to point when a field is missing from the mapping at `path`: at
    /// the mapping's own key (`load:`), or at the list item (`- name: ...`).
    pub fn mapping_span(&self, path: &YamlPath) -> Option<Span> {
        match path.last() {
            None => None,
            Some(Seg::Key(_)) => self.key_span(path),
            Some(Seg::Index(_)) => self.value_span(path),
        }
    }
}

/// A node of a parsed document: the file it is in and its path there.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub file: &'a SourceFile,
    pub path: YamlPath,
}

impl<'a> Node<'a> {
    /// The document root of `file`.
    pub fn root(file: &'a SourceFile) -> Self {
        Node {
            file,
            path: YamlPath::root(),
        }
    }

    /// The child `key` of this mapping.
    pub fn at(&self, key: &str) -> Node<'a> {
        Node {
            file: self.file,
            path: self.path.key(key),
        }
    }

    /// Item `index` of this list.
    pub fn item(&self, index: usize) -> Node<'a> {
        Node {
            file: self.file,
            path: self.path.index(index),
        }
    }

    /// A problem with this node's value.
    pub fn error(&self, message: impl Into<String>) -> Diagnostic {
        self.file
            .diagnostic(&self.path, self.file.value_span(&self.path), message)
    }

    /// A problem with this node's key (e.g. an unknown metric name), shown
    /// under the parent mapping.
    pub fn key_error(&self, message: impl Into<String>) -> Diagnostic {
        if let Some(flag) = self.file.flag_at(&self.path) {
            return Diagnostic::new(flag, self.path.parent().to_string(), message);
        }
        self.file
            .diagnostic(&self.path.parent(), self.file.key_span(&self.path), message)
    }

    /// `field` is missing from this mapping; `None` when an earlier error
    /// explains its absence.
    pub fn missing(&self, field: &str, message: impl Into<String>) -> Option<Diagnostic> {
        if self.file.is_suppressed(&self.path.key(field)) {
            return None;
        }
        if self.path.is_root() {
            // Point at where the document starts, but echoing its first line
            // would suggest that line is the problem.
            let mut diag =
                self.file
                    .diagnostic(&self.path, self.file.value_span(&self.path), message);
            diag.snippet = None;
            return Some(diag);
        }
        Some(
            self.file
                .diagnostic(&self.path, self.file.mapping_span(&self.path), message),
        )
    }

    /// True when this node was cut after an earlier error.
    pub fn is_suppressed(&self) -> bool {
        self.file.is_suppressed(&self.path)
    }
}
