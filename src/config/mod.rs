//! The YAML configuration layer: experiment and suite files in, a validated
//! [`model::Document`] or every problem with its file:line:column out.
//!
//! The pipeline, one file per step:
//!
//! - `locate`: a path → position index of the text (yaml-rust2 events),
//!   because serde_yaml's `Value` forgets where things were; `source`: a
//!   file with its index, and the nodes diagnostics point at;
//! - `raw`: serde structs mirroring the YAML (`deny_unknown_fields`);
//! - `decode`: `Value` → raw, collecting every structural error (unknown
//!   fields, wrong types) by cutting the bad node and trying again;
//! - `validate` and `validate_load`: raw → [`model`], collecting every
//!   semantic error (bad durations, unknown metrics, rate 0, ...);
//!   `validate_expect`: thresholds, `by_version` and where versions are read;
//! - `interpolate`: `${VAR}` and `${VAR:-default}` in string values, on
//!   the parsed document (positions stay those of the text as written);
//! - `overrides`: `--set PATH=VALUE`, applied to each experiment's parsed
//!   document before decoding, so a value set there is validated like the
//!   file and its problems are reported at the flag;
//! - `suite`: suite files, their referenced experiments and defaults;
//! - [`units`]: `250ms`, `5%`, `512MiB`, `< 100ms`;
//! - `diagnostics`: [`Diagnostic`] and its rustc-like rendering.
//!
//! The YAML crates are used only inside this module.

pub mod demo_names;
pub mod model;
pub mod model_verify;
pub mod schema;
pub mod units;

mod decode;
mod diagnostics;
mod interpolate;
mod limits;
mod locate;
mod overrides;
mod prescan;
mod raw;
mod raw_faults;
mod raw_inject;
mod raw_safety;
mod raw_verify;
mod source;
mod suite;
mod validate;
mod validate_breaker;
mod validate_demo;
mod validate_expect;
mod validate_faults;
mod validate_load;
mod validate_probes;
pub mod validate_resources;
mod validate_safety;
mod validate_timing;
mod validate_verify;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde_yaml::Value;

pub use diagnostics::{did_you_mean, escape_controls, one_of, ConfigError, Diagnostic, Snippet};
pub use interpolate::Env;
pub use overrides::Override;
pub use validate_demo::defect_conflict;

use locate::{Span, YamlPath};
use model::Document;
use source::{Node, SourceFile};

/// How a file is loaded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadOptions {
    /// `--force`: the load bounds of [`crate::bounds`] (rate, workers,
    /// in-flight cap, durations) do not apply. Fault bounds always do.
    pub force: bool,
    /// Where `${VAR}` takes its values: the process environment by default.
    pub env: Env,
    /// `--set PATH=VALUE` flags, in order, applied to every experiment.
    pub overrides: Vec<Override>,
}

/// Reads and validates an experiment or suite file. An unreadable file is a
/// [`ConfigError`] too, so callers have one error path.
pub fn load_file(path: &Path) -> Result<Document, ConfigError> {
    load_file_with(path, LoadOptions::default())
}

/// [`load_file`] with options.
pub fn load_file_with(path: &Path, options: LoadOptions) -> Result<Document, ConfigError> {
    match read_source(path) {
        Ok(text) => load_str_with(&text, path, options),
        Err(error) => Err(ConfigError {
            diagnostics: vec![error.into_diagnostic(path)],
        }),
    }
}

/// Validates `source` as if read from `path`. Files a suite references are
/// read relative to `path`'s directory.
pub fn load_str(source: &str, path: &Path) -> Result<Document, ConfigError> {
    load_str_with(source, path, LoadOptions::default())
}

/// [`load_str`] with options.
pub fn load_str_with(
    source: &str,
    path: &Path,
    options: LoadOptions,
) -> Result<Document, ConfigError> {
    let mut diags = Vec::new();
    let mut file = SourceFile::new(path, source);
    let document = load_document(&mut file, &options, &mut diags);
    if options.force {
        diags.retain(|d| !d.lifted_by_force);
    }
    finish(path, document, diags)
}

fn load_document(
    file: &mut SourceFile,
    options: &LoadOptions,
    diags: &mut Vec<Diagnostic>,
) -> Option<Document> {
    let mut value = parse(file, diags)?;
    match kind(&value) {
        Kind::Suite => {
            let pending = interpolate::interpolate(&mut value, file, &options.env);
            if !interpolate::settle(pending, file, diags) {
                return None;
            }
            suite::load(value, file, options, diags)
        }
        Kind::Experiment => {
            if !prepare(&mut value, file, options, None, diags) {
                return None;
            }
            let experiment = suite::experiment(value, file, &validate::Defaults::default(), diags)?;
            Some(Document {
                source: file.path.clone(),
                suite: None,
                experiments: vec![experiment],
                warnings: Vec::new(),
            })
        }
        Kind::Other => {
            let root = Node::root(file);
            diags.push(root.error(not_a_document(&value)));
            None
        }
    }
}

/// Substitutes `${VAR}`s in an experiment's `value` and applies the
/// `--set` overrides (after a suite's `defaults`, when given); false after
/// a diagnostic. An unset variable in a value a `--set` replaces is no error.
fn prepare(
    value: &mut Value,
    file: &mut SourceFile,
    options: &LoadOptions,
    defaults: Option<&Value>,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let pending = interpolate::interpolate(value, file, &options.env);
    let applied = overrides::apply(value, &options.overrides, defaults, file, diags);
    interpolate::settle(pending, file, diags) && applied
}

enum Kind {
    Suite,
    Experiment,
    Other,
}

/// A suite is recognised by its `experiments` list; any other mapping is an experiment.
fn kind(value: &Value) -> Kind {
    match value {
        Value::Mapping(map) if map.contains_key("experiments") => Kind::Suite,
        Value::Mapping(_) => Kind::Experiment,
        _ => Kind::Other,
    }
}

fn not_a_document(value: &Value) -> String {
    match value {
        Value::Null => "the file is empty; expected an experiment (`name`, `target`, `load`, \
                        `phases`) or a suite (`name`, `experiments`)"
            .to_string(),
        other => format!(
            "expected a mapping: an experiment (`name`, `target`, `load`, `phases`) or a suite \
             (`name`, `experiments`), found {}",
            decode::describe(other)
        ),
    }
}

/// YAML text → `Value`, indexing positions. Syntax errors become a single
/// diagnostic (serde_yaml stops at the first one). The input limits of
/// [`limits`] are checked first, each before the step it protects.
/// `${VAR}` references are substituted by the caller (see [`prepare`]).
fn parse(file: &mut SourceFile, diags: &mut Vec<Diagnostic>) -> Option<Value> {
    if file.text.len() as u64 > limits::MAX_FILE_BYTES {
        diags.push(too_large(&file.path, file.text.len() as u64));
        return None;
    }
    if let Err(at) = prescan::check_depth(&file.text, limits::MAX_DEPTH) {
        let span = Span {
            line: at.line,
            column: at.column,
            len: 1,
        };
        diags.push(
            file.diagnostic(
                &YamlPath::root(),
                Some(span),
                format!(
                    "nested more than {} levels deep; faultline refuses it before parsing",
                    limits::MAX_DEPTH
                ),
            )
            .with_help("an experiment needs a few levels; this looks generated or truncated"),
        );
        return None;
    }
    // Indexed before serde_yaml builds the `Value`, so that the node count
    // (aliases expanded) can refuse an alias bomb before it is expanded.
    file.index();
    if let Some(span) = file.locator.too_many_nodes() {
        diags.push(file.diagnostic(&YamlPath::root(), Some(span), limits::too_many_nodes()));
        return None;
    }
    if let Some(path) = file.locator.too_long() {
        if let Some((max, what)) = limits::list_cap(path) {
            let at = Node {
                file,
                path: path.clone(),
            };
            diags.push(limits::too_long(&at, None, max, what));
            return None;
        }
    }
    if let Some((message, span)) = file.locator.error().filter(|_| file.text.contains('*')) {
        // yaml-rust2 stopped at a syntax error, so aliases after it were not
        // counted and serde_yaml would expand them unchecked: report
        // yaml-rust2's error instead (the text is invalid YAML either way).
        let message = format!("invalid YAML: {message}");
        diags.push(file.diagnostic(&YamlPath::root(), Some(*span), message));
        return None;
    }
    match serde_yaml::from_str::<Value>(&file.text) {
        Ok(mut value) => {
            // `<<: *base` merge keys are standard YAML that serde_yaml only
            // applies on request.
            if let Err(error) = value.apply_merge() {
                let root = Node::root(file);
                diags.push(root.error(format!("invalid merge key `<<`: {error}")));
                return None;
            }
            let long = limits::list_lengths(&value, &Node::root(file));
            if !long.is_empty() {
                diags.extend(long);
                return None;
            }
            Some(value)
        }
        Err(error) => {
            diags.push(syntax_error(file, &error));
            None
        }
    }
}

fn too_large(path: &Path, bytes: u64) -> Diagnostic {
    Diagnostic::new(
        path,
        "",
        format!(
            "the file is {bytes} bytes, more than faultline's limit of {} for an experiment or \
             suite file",
            limits::mib(limits::MAX_FILE_BYTES)
        ),
    )
}

fn syntax_error(file: &SourceFile, error: &serde_yaml::Error) -> Diagnostic {
    let text = error.to_string();
    // The position is shown separately, so drop serde_yaml's " at line 3 column 5".
    let message = text.find(" at line ").map_or(text.as_str(), |i| &text[..i]);
    let mut span = error.location().map(|l| Span {
        line: l.line(),
        column: l.column(),
        len: 1,
    });
    let mut message = format!("invalid YAML: {message}");
    let mut help = None;
    if let Some(key) = message
        .split_once("duplicate entry with key \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(key, _)| key.to_string())
    {
        // serde_yaml points at the mapping; the repeated key is more useful.
        span = file.locator.duplicate(&key).or(span);
        message = format!("duplicate key `{key}`");
        help = Some("each key may appear only once in a mapping".to_string());
    } else if message.contains("more than one document") {
        span = file.locator.second_document().or(span);
        message = "a file holds one experiment or suite, but this one has several YAML documents"
            .to_string();
        help = Some("remove the `---` separator, or split the file".to_string());
    }
    let diag = file.diagnostic(&YamlPath::root(), span, message);
    match help {
        Some(help) => diag.with_help(help),
        None => diag,
    }
}

/// Why a file could not be read.
enum ReadError {
    Io(std::io::Error),
    /// A FIFO, a device, a directory: what it is.
    NotRegular(&'static str),
    /// Larger than [`limits::MAX_FILE_BYTES`]: its size.
    TooLarge(u64),
    /// 1-based position of the first byte that is not UTF-8.
    NotUtf8 {
        line: usize,
        column: usize,
    },
}

impl ReadError {
    fn into_diagnostic(self, path: &Path) -> Diagnostic {
        match self {
            ReadError::Io(error) => Diagnostic::new(path, "", format!("cannot read file: {error}")),
            ReadError::NotRegular(what) => Diagnostic::new(
                path,
                "",
                format!("cannot read file: it is {what}, not a regular file"),
            ),
            ReadError::TooLarge(bytes) => too_large(path, bytes),
            ReadError::NotUtf8 { line, column } => {
                Diagnostic::new(path, "", "the file is not valid UTF-8 text").at(line, column, None)
            }
        }
    }
}

/// Reads an experiment or suite file: a regular file (a FIFO would block,
/// a device never end) of at most [`limits::MAX_FILE_BYTES`], in UTF-8.
fn read_source(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    let (file, meta) = crate::bounds::open_regular(path).map_err(|e| match e {
        crate::bounds::OpenError::Io(e) => ReadError::Io(e),
        crate::bounds::OpenError::NotRegular(what) => ReadError::NotRegular(what),
    })?;
    if meta.len() > limits::MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(meta.len()));
    }
    // The file may grow after the fstat: never read past the limit.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limits::MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limits::MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|error| {
        let valid = &error.as_bytes()[..error.utf8_error().valid_up_to()];
        // `valid` is UTF-8 by definition; lossy conversion just avoids an unwrap.
        let before = String::from_utf8_lossy(valid);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ReadError::NotUtf8 { line, column }
    })
}

/// Orders diagnostics by file (in order of first mention) and position, and
/// drops repeats: a suite default is checked once per experiment using it.
fn finish(
    path: &Path,
    document: Option<Document>,
    diags: Vec<Diagnostic>,
) -> Result<Document, ConfigError> {
    let (warnings, mut diags): (Vec<Diagnostic>, Vec<Diagnostic>) =
        diags.into_iter().partition(|d| d.warning);
    if diags.is_empty() {
        if let Some(mut document) = document {
            let mut seen = HashSet::new();
            document.warnings = warnings;
            document.warnings.retain(|d| seen.insert(d.clone()));
            return Ok(document);
        }
        // Every failing path pushes a diagnostic; this is a safety net.
        diags.push(Diagnostic::new(path, "", "invalid configuration"));
    }
    let mut seen = HashSet::new();
    let mut unique = diags;
    unique.retain(|d| seen.insert(d.clone()));
    let mut files: HashMap<PathBuf, usize> = HashMap::new();
    for d in &unique {
        let next = files.len();
        files.entry(d.file.clone()).or_insert(next);
    }
    unique.sort_by_key(|d| {
        let rank = files.get(&d.file).copied().unwrap_or(usize::MAX);
        (rank, d.line.unwrap_or(0), d.column.unwrap_or(0))
    });
    Err(ConfigError {
        diagnostics: unique,
    })
}
