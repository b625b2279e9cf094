//! Where things are in a YAML file: an index from document paths
//! (`phases[1].duration`) to line and column.
//!
//! serde_yaml's `Value` carries no positions, so after it has accepted the
//! syntax we walk the same text once more with yaml-rust2's marked event
//! parser and remember where every key and value starts. The two parsers can
//! disagree on exotic input; the index is then partial and a diagnostic falls
//! back to the nearest known ancestor, or to no position at all.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::limits::{self, NodeCount};

/// A path into a YAML document: keys and list indices from the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct YamlPath(Vec<Seg>);

/// One step of a [`YamlPath`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl YamlPath {
    /// The whole document.
    pub fn root() -> Self {
        YamlPath(Vec::new())
    }

    /// The child `key` of this mapping.
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        YamlPath(segs)
    }

    /// Item `index` of this list.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        YamlPath(segs)
    }

    /// Descends one step in place.
    pub fn push(&mut self, seg: Seg) {
        self.0.push(seg);
    }

    /// The steps from the root.
    pub fn segments(&self) -> &[Seg] {
        &self.0
    }

    /// The final step; `None` for the root.
    pub fn last(&self) -> Option<&Seg> {
        self.0.last()
    }

    /// The parent path; the root is its own parent.
    pub fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        YamlPath(segs)
    }

    /// True for the whole document.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// This path and every ancestor, nearest first, ending with the root.
    pub fn ancestors(&self) -> impl Iterator<Item = YamlPath> + '_ {
        (0..=self.0.len())
            .rev()
            .map(|n| YamlPath(self.0[..n].to_vec()))
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(index) => write!(f, "[{index}]")?,
                Seg::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    // Quote keys that would read ambiguously, like `p99.9`.
                    let plain = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                    if plain {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A 1-based position and how many characters the node spans on its first line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub line: usize,
    pub column: usize,
    pub len: usize,
}

/// Positions of keys and values by path, for the first document of a file.
#[derive(Debug, Default)]
pub struct Locator {
    keys: HashMap<YamlPath, Span>,
    values: HashMap<YamlPath, Span>,
    /// Second and later occurrences of a key within one mapping.
    duplicates: Vec<(String, Span)>,
    /// Where a second document starts, if there is one.
    second_document: Option<Span>,
    /// Where the document passed [`MAX_NODES`](super::limits::MAX_NODES), aliases expanded;
    /// indexing stops there.
    too_many_nodes: Option<Span>,
    /// The first list found longer than its cap (see
    /// [`list_cap`](super::limits::list_cap)): its path; indexing stops there.
    too_long: Option<YamlPath>,
    /// yaml-rust2's syntax error, if it stopped at one: message and position.
    /// (`None` as well when it panicked; the index is then empty.)
    error: Option<(String, Span)>,
    /// Path segments stored so far; see [`MAX_INDEXED_SEGMENTS`].
    segments: usize,
}

/// The index stops growing past this many path segments (a few MiB, and
/// hashing them is most of the indexing time): 50,000 values 64 levels deep
/// would take hundreds of MiB. 1,000 phases of 20 values each take about
/// 80,000; a file past it loses only positions, never its diagnostics.
const MAX_INDEXED_SEGMENTS: usize = 200_000;

impl Locator {
    /// Indexes `source`. Never fails: on a parse error the index holds
    /// everything before it.
    pub fn build(source: &str) -> Locator {
        let lines: Vec<Line> = source_lines(source)
            .into_iter()
            .map(|text| Line {
                text,
                ascii: text.is_ascii(),
            })
            .collect();
        let mut builder = Builder {
            lines: &lines,
            cursor: Cell::new(Cursor::default()),
            count: NodeCount::default(),
            stack: Vec::new(),
            out: Locator::default(),
            documents: 0,
        };
        // A panic in a third-party parser must not take the process down: a
        // missing index only costs positions. The Err itself is ignored for
        // the same reason (serde_yaml has already judged the syntax).
        let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Event by event rather than `Parser::load`: it can stop at the
            // first limit passed instead of scanning the rest of the text,
            // and it does not recurse.
            let mut parser = Parser::new_from_str(source);
            loop {
                match parser.next_token() {
                    Ok((Event::StreamEnd, _)) => break,
                    Ok((event, mark)) => builder.on_event(event, mark),
                    Err(error) => {
                        let span = builder.span(*error.marker(), |_| 1);
                        builder.out.error = Some((error.info().to_string(), span));
                        break;
                    }
                }
                if builder.out.too_many_nodes.is_some() || builder.out.too_long.is_some() {
                    break;
                }
            }
            builder.out
        }));
        parsed.unwrap_or_default()
    }

    /// Where the text passed [`MAX_NODES`](super::limits::MAX_NODES) values, aliases expanded.
    pub fn too_many_nodes(&self) -> Option<Span> {
        self.too_many_nodes
    }

    /// The first list longer than its cap, found while indexing.
    pub fn too_long(&self) -> Option<&YamlPath> {
        self.too_long.as_ref()
    }

    /// yaml-rust2's syntax error, if it stopped at one: the node count then
    /// covers only the text before it.
    pub fn error(&self) -> Option<&(String, Span)> {
        self.error.as_ref()
    }

    /// Where the key of the entry at `path` starts.
    pub fn key(&self, path: &YamlPath) -> Option<Span> {
        self.keys.get(path).copied()
    }

    /// Where the value at `path` starts (a block mapping: its first key).
    pub fn value(&self, path: &YamlPath) -> Option<Span> {
        self.values.get(path).copied()
    }

    /// The position of a repeated key named `key`, for serde_yaml's
    /// "duplicate entry" error, which itself points at the mapping.
    pub fn duplicate(&self, key: &str) -> Option<Span> {
        self.duplicates
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| *s)
    }

    fn index_value(&mut self, path: YamlPath, span: Span) {
        if self.budget(&path) {
            self.values.insert(path, span);
        }
    }

    fn index_key(&mut self, path: YamlPath, span: Span) {
        if self.budget(&path) {
            self.keys.insert(path, span);
        }
    }

    /// Takes `path`'s segments from the index budget; false once it is spent.
    fn budget(&mut self, path: &YamlPath) -> bool {
        self.segments = self.segments.saturating_add(path.segments().len());
        self.segments <= MAX_INDEXED_SEGMENTS
    }

    /// Where a second YAML document starts, for the "more than one document" error.
    pub fn second_document(&self) -> Option<Span> {
        self.second_document
    }
}

/// The lines of `source` without their line breaks, as yaml-rust2 counts them.
pub fn source_lines(source: &str) -> Vec<&str> {
    source
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect()
}

/// Complex (non-scalar) keys are indexed under this, which no real path matches.
const COMPLEX_KEY: &str = "\u{0}complex key";

enum Frame {
    Map {
        path: YamlPath,
        /// The key whose value comes next; `None` while a key is expected.
        key: Option<String>,
        seen: HashSet<String>,
        /// Block mappings are reported by yaml-rust2 at an odd position, so
        /// their own position is taken from their first key instead.
        block: bool,
    },
    Seq {
        path: YamlPath,
        next: usize,
    },
    /// Inside a mapping or list used as a key; `depth` counts nested collections.
    Skip {
        depth: usize,
    },
}

enum Place {
    Key,
    Value(YamlPath),
    Skip,
}

/// A line of the source, and whether it is ASCII, where a column is a byte offset.
struct Line<'s> {
    text: &'s str,
    ascii: bool,
}

/// The byte offset of the last column looked up on a non-ASCII line, so the
/// next lookup further along the same line continues from there.
#[derive(Default, Clone, Copy)]
struct Cursor {
    line: usize,
    col: usize,
    byte: usize,
}

struct Builder<'s> {
    lines: &'s [Line<'s>],
    /// Marks arrive in text order, so resuming from the last one keeps a
    /// long line of many scalars (`tags: [t0, t1, ...]`) linear: counting
    /// from the line start for each was quadratic (100,000 tags took minutes).
    cursor: Cell<Cursor>,
    count: NodeCount,
    stack: Vec<Frame>,
    out: Locator,
    documents: usize,
}

impl Builder<'_> {
    fn place(&mut self) -> Place {
        match self.stack.last_mut() {
            None => Place::Value(YamlPath::root()),
            Some(Frame::Skip { .. }) => Place::Skip,
            Some(Frame::Map { path, key, .. }) => match key.take() {
                None => Place::Key,
                Some(k) => Place::Value(path.key(&k)),
            },
            Some(Frame::Seq { path, next }) => {
                if *next >= limits::SMALLEST_LIST_CAP
                    && limits::list_cap(path).is_some_and(|(max, _)| *next >= max)
                {
                    // Item `max + 1` of a capped list: stop here rather
                    // than index 100,000 phases only to refuse them.
                    self.out.too_long = Some(path.clone());
                    return Place::Skip;
                }
                let p = path.index(*next);
                *next += 1;
                Place::Value(p)
            }
        }
    }

    fn scalar(&mut self, value: &str, style: TScalarStyle, mark: Marker) {
        let span = self.span(mark, |rest| scalar_len(rest, value, style));
        match self.place() {
            Place::Skip => {}
            Place::Value(path) => {
                self.out.index_value(path, span);
            }
            Place::Key => {
                if let Some(Frame::Map {
                    path,
                    key,
                    seen,
                    block,
                }) = self.stack.last_mut()
                {
                    if seen.is_empty() && *block {
                        self.out.index_value(path.clone(), span);
                    }
                    if seen.insert(value.to_string()) {
                        self.out.index_key(path.key(value), span);
                    } else {
                        self.out.duplicates.push((value.to_string(), span));
                    }
                    *key = Some(value.to_string());
                }
            }
        }
    }

    fn alias(&mut self, mark: Marker) {
        let span = self.span(mark, |rest| {
            1 + rest
                .chars()
                .skip(1)
                .take_while(|c| !c.is_whitespace() && !",[]{}".contains(*c))
                .count()
        });
        if let Place::Value(path) = self.place() {
            self.out.index_value(path, span);
        }
    }

    fn open(&mut self, mapping: bool, mark: Marker) {
        if let Some(Frame::Skip { depth }) = self.stack.last_mut() {
            *depth += 1;
            return;
        }
        let flow = self.char_at(mark) == Some(if mapping { '{' } else { '[' });
        match self.place() {
            Place::Skip => {}
            Place::Key => self.stack.push(Frame::Skip { depth: 0 }),
            Place::Value(path) => {
                let span = self.span(mark, |_| 1);
                self.out.index_value(path.clone(), span);
                self.stack.push(if mapping {
                    Frame::Map {
                        path,
                        key: None,
                        seen: HashSet::new(),
                        block: !flow,
                    }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
        }
    }

    fn close(&mut self) {
        if let Some(Frame::Skip { depth }) = self.stack.last_mut() {
            if *depth > 0 {
                *depth -= 1;
                return;
            }
            self.stack.pop();
            if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                *key = Some(COMPLEX_KEY.to_string());
            }
            return;
        }
        self.stack.pop();
    }

    /// The text of the mark's line from the mark's column on.
    fn rest_of_line(&self, mark: Marker) -> &'_ str {
        let Some(line) = mark.line().checked_sub(1).and_then(|i| self.lines.get(i)) else {
            return "";
        };
        let text = line.text;
        if line.ascii {
            return text.get(mark.col()..).unwrap_or("");
        }
        let cursor = self.cursor.get();
        let (mut col, mut byte) = if cursor.line == mark.line() && cursor.col <= mark.col() {
            (cursor.col, cursor.byte)
        } else {
            (0, 0)
        };
        let mut chars = text[byte..].chars();
        while col < mark.col() {
            match chars.next() {
                Some(c) => {
                    byte += c.len_utf8();
                    col += 1;
                }
                None => return "",
            }
        }
        self.cursor.set(Cursor {
            line: mark.line(),
            col,
            byte,
        });
        &text[byte..]
    }

    fn char_at(&self, mark: Marker) -> Option<char> {
        self.rest_of_line(mark).chars().next()
    }

    fn span(&self, mark: Marker, len: impl FnOnce(&str) -> usize) -> Span {
        let rest = self.rest_of_line(mark);
        let want = len(rest).max(1);
        // Count only as far as needed: the rest of a long line may be huge.
        let available = rest.chars().take(want).count().max(1);
        Span {
            line: mark.line(),
            column: mark.col() + 1,
            len: want.min(available),
        }
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if let Event::DocumentStart = event {
            self.documents += 1;
            if self.documents == 2 {
                self.out.second_document = Some(self.span(mark, |_| 3));
            }
            return;
        }
        // Only the first document is configuration; a second is an error anyway.
        if self.documents > 1 || self.out.too_many_nodes.is_some() || self.out.too_long.is_some() {
            return;
        }
        // Past the index budget only the count matters: building paths
        // that would not be stored was most of the cost.
        let indexing = self.out.segments <= MAX_INDEXED_SEGMENTS;
        match &event {
            Event::Scalar(_, _, anchor, _) => self.count.scalar(*anchor),
            Event::Alias(anchor) => self.count.alias(*anchor),
            Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                self.count.open(*anchor)
            }
            Event::MappingEnd | Event::SequenceEnd => self.count.close(),
            _ => {}
        }
        if self.count.exceeded() {
            self.out.too_many_nodes = Some(self.span(mark, |_| 1));
            return;
        }
        if !indexing {
            return;
        }
        match event {
            Event::Scalar(value, style, _, _) => self.scalar(&value, style, mark),
            Event::Alias(_) => self.alias(mark),
            Event::MappingStart(..) => self.open(true, mark),
            Event::SequenceStart(..) => self.open(false, mark),
            Event::MappingEnd | Event::SequenceEnd => self.close(),
            _ => {}
        }
    }
}

/// How many characters of `rest` (which starts at the scalar) the scalar covers
/// on its first line.
fn scalar_len(rest: &str, value: &str, style: TScalarStyle) -> usize {
    match style {
        TScalarStyle::Plain => value.chars().take_while(|&c| c != '\n').count(),
        TScalarStyle::SingleQuoted => quoted_len(rest, '\''),
        TScalarStyle::DoubleQuoted => quoted_len(rest, '"'),
        // Block scalars: point at the `|` or `>` indicator.
        _ => 1,
    }
}

/// Length of a quoted scalar in the source, quotes included, up to the end of the line.
fn quoted_len(rest: &str, quote: char) -> usize {
    let mut chars = rest.chars().skip(1).peekable();
    let mut len = 1;
    while let Some(c) = chars.next() {
        len += 1;
        if quote == '"' && c == '\\' {
            if chars.next().is_some() {
                len += 1;
            }
        } else if c == quote {
            // '' is an escaped quote inside single quotes.
            if quote == '\'' && chars.peek() == Some(&'\'') {
                chars.next();
                len += 1;
            } else {
                return len;
            }
        }
    }
    len
}

#[cfg(test)]
#[path = "locate_tests.rs"]
mod tests;
