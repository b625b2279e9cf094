//! Configuration errors as people read them: rustc-style diagnostics with a
//! file position, the YAML path, the offending source line, and a hint.
//!
//! Nothing here knows about YAML; [`super::locate`] turns paths into positions
//! and builds [`Diagnostic`]s. Keeping rendering separate lets the CLI (or a
//! JSON reporter) reuse the plain fields.

use std::fmt;
use std::path::PathBuf;

/// Lines longer than this are not echoed: a minified or binary "line" would
/// drown the message it is meant to illustrate.
const MAX_SNIPPET_CHARS: usize = 240;

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line, when the position is known.
    pub line: Option<usize>,
    /// 1-based column in characters, when the position is known.
    pub column: Option<usize>,
    /// Where in the document, e.g. `phases[1].expect.p99`; empty for the whole file.
    pub path: String,
    /// What is wrong, including what was expected and what was found.
    pub message: String,
    /// A hint such as "did you mean `duration`?".
    pub help: Option<String>,
    /// The source line and how many characters the caret underlines.
    pub snippet: Option<Snippet>,
    /// A load bound of [`crate::bounds`] (rate, workers, durations) that
    /// `--force` lifts; every other problem stays an error.
    pub lifted_by_force: bool,
    /// A warning: printed, but the file is still valid.
    pub warning: bool,
}

/// The source line a diagnostic points into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Snippet {
    /// The whole line, without its line break.
    pub text: String,
    /// Characters to underline, starting at the diagnostic's column (at least 1).
    pub len: usize,
}

impl Diagnostic {
    /// A diagnostic without a position; add one with [`Diagnostic::at`].
    pub fn new(
        file: impl Into<PathBuf>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            line: None,
            column: None,
            path: path.into(),
            message: escape_controls(&message.into()),
            help: None,
            snippet: None,
            lifted_by_force: false,
            warning: false,
        }
    }

    /// Makes it a warning: shown, but the file stays valid.
    pub fn as_warning(mut self) -> Self {
        self.warning = true;
        self
    }

    /// Marks it as a bound `--force` lifts.
    pub fn liftable(mut self) -> Self {
        self.lifted_by_force = true;
        self
    }

    /// Sets the 1-based position and, when given, the line to echo.
    pub fn at(mut self, line: usize, column: usize, snippet: Option<Snippet>) -> Self {
        self.line = Some(line);
        self.column = Some(column);
        self.snippet = snippet.filter(|s| s.text.chars().count() <= MAX_SNIPPET_CHARS);
        self
    }

    /// Adds a hint, shown as `= help: ...`.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// `file:line:col: path: message`, one line, for logs and editors.
    pub fn summary_line(&self) -> String {
        let mut out = self.location();
        out.push_str(": ");
        if !self.path.is_empty() {
            out.push_str(&self.path);
            out.push_str(": ");
        }
        out.push_str(&self.message);
        out
    }

    /// `file`, `file:line` or `file:line:col`, whichever is known.
    pub fn location(&self) -> String {
        let mut out = self.file.display().to_string();
        if let Some(line) = self.line {
            out.push_str(&format!(":{line}"));
            if let Some(column) = self.column {
                out.push_str(&format!(":{column}"));
            }
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", if self.warning { "warning" } else { "error" })?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        writeln!(f, "{}", self.message)?;
        // rustc sizes the gutter to the line number; without one, two spaces.
        let width = self.line.map_or(2, |line| line.to_string().len());
        let pad = " ".repeat(width);
        write!(f, "{pad}--> {}", self.location())?;
        if let (Some(line), Some(snippet)) = (self.line, &self.snippet) {
            let column = self.column.unwrap_or(1).max(1);
            // Copy tabs from the source so the caret lines up in a terminal.
            let lead: String = snippet
                .text
                .chars()
                .take(column - 1)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n{pad} |\n{line} | {}\n", snippet.text)?;
            write!(f, "{pad} | {lead}{}", "^".repeat(snippet.len.max(1)))?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a configuration, in file and line order.
///
/// Displays as every diagnostic in turn, ending with a line break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(.diagnostics))]
pub struct ConfigError {
    pub diagnostics: Vec<Diagnostic>,
}

impl ConfigError {
    /// E.g. `2 errors in experiments/x.yaml`.
    pub fn summary(&self) -> String {
        let count = self.diagnostics.len();
        let mut files: Vec<String> = Vec::new();
        for d in &self.diagnostics {
            let file = d.file.display().to_string();
            if !files.contains(&file) {
                files.push(file);
            }
        }
        let noun = if count == 1 { "error" } else { "errors" };
        format!("{count} {noun} in {}", files.join(", "))
    }
}

/// Each diagnostic ends with a line break and is followed by a blank line
/// before the next, as a compiler prints them, so the text can go straight
/// to stderr.
fn render_all(diagnostics: &[Diagnostic]) -> String {
    let rendered: Vec<String> = diagnostics.iter().map(|d| format!("{d}\n")).collect();
    rendered.join("\n")
}

/// A message quotes what the user wrote; a line break in it would break the
/// layout, so control characters are shown escaped (`\n`). Also used for
/// anything logged from a request (the agent), so it cannot forge lines.
pub fn escape_controls(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// The candidate closest to `input`, if it is close enough to be a plausible
/// typo: at most one edit for short words, about a third of the word for
/// longer ones, ignoring case. Returns `None` rather than a wild guess.
pub fn did_you_mean<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    // The edit distance costs length × length in time and memory: a
    // 300,000-character phase name compared with a reference to it took
    // minutes. No name worth suggesting is that long.
    const LONGEST: usize = 100;
    if input.len() > LONGEST {
        return None;
    }
    let needle = input.to_lowercase();
    // Rank by edit distance, then by similarity relative to length, so
    // `p999` prefers `p99.9` (all its characters kept) over `p99`.
    let mut best: Option<(usize, f64, &'a str)> = None;
    for candidate in candidates {
        if candidate.len() > LONGEST {
            continue;
        }
        let lower = candidate.to_lowercase();
        let distance = strsim::damerau_levenshtein(&needle, &lower);
        let similarity = strsim::normalized_damerau_levenshtein(&needle, &lower);
        let limit = (candidate.chars().count() / 3).max(1);
        let better = match best {
            Some((d, s, _)) => distance < d || (distance == d && similarity > s),
            None => true,
        };
        if distance <= limit && better {
            best = Some((distance, similarity, candidate));
        }
    }
    best.map(|(_, _, candidate)| candidate)
}

/// `` `a`, `b` or `c` `` for messages that list what is allowed.
pub fn one_of(candidates: &[&str]) -> String {
    let quoted: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_suggests_only_close_candidates() {
        let fields = ["name", "duration", "min_samples", "expect", "inject"];
        let metrics = [
            "p50",
            "p90",
            "p95",
            "p99",
            "p99.9",
            "max",
            "mean",
            "error_rate",
            "rate",
            "requests",
        ];
        let cases: &[(&str, &str, &[&str], Option<&str>)] = &[
            (
                "a doubled letter finds the field",
                "durration",
                &fields,
                Some("duration"),
            ),
            (
                "a swapped pair finds the field",
                "expcet",
                &fields,
                Some("expect"),
            ),
            (
                "a different case finds the field",
                "Duration",
                &fields,
                Some("duration"),
            ),
            ("a missing dot finds p99.9", "p999", &metrics, Some("p99.9")),
            (
                "a dash for an underscore finds error_rate",
                "error-rate",
                &metrics,
                Some("error_rate"),
            ),
            (
                "an unrelated word gets no suggestion",
                "colour",
                &fields,
                None,
            ),
            (
                "a short unrelated word gets no suggestion",
                "xyz",
                &metrics,
                None,
            ),
            ("no candidates means no suggestion", "name", &[], None),
        ];
        for (case, input, candidates, want) in cases {
            assert_eq!(
                did_you_mean(input, candidates.iter().copied()),
                *want,
                "{case}"
            );
        }
    }

    #[test]
    fn a_diagnostic_renders_like_rustc() {
        let d = Diagnostic::new(
            "experiments/x.yaml",
            "phases[1]",
            "unknown field `durration`",
        )
        .at(
            14,
            5,
            Some(Snippet {
                text: "    durration: 5s".into(),
                len: 9,
            }),
        )
        .with_help("did you mean `duration`?");
        let want = "error: phases[1]: unknown field `durration`
  --> experiments/x.yaml:14:5
   |
14 |     durration: 5s
   |     ^^^^^^^^^
   = help: did you mean `duration`?";
        assert_eq!(d.to_string(), want);
        assert_eq!(
            d.summary_line(),
            "experiments/x.yaml:14:5: phases[1]: unknown field `durration`"
        );
    }

    #[test]
    fn a_diagnostic_without_position_prints_only_the_file() {
        let d = Diagnostic::new("x.yaml", "", "file is empty");
        assert_eq!(d.to_string(), "error: file is empty\n  --> x.yaml");
    }

    #[test]
    fn a_config_error_prints_every_diagnostic_and_a_summary() {
        let err = ConfigError {
            diagnostics: vec![
                Diagnostic::new("a.yaml", "name", "first"),
                Diagnostic::new("a.yaml", "load", "second"),
            ],
        };
        let text = err.to_string();
        assert!(
            text.contains("name: first") && text.contains("load: second"),
            "{text}"
        );
        assert_eq!(err.summary(), "2 errors in a.yaml");
    }

    #[test]
    fn one_of_lists_alternatives_readably() {
        assert_eq!(one_of(&["a"]), "`a`");
        assert_eq!(one_of(&["a", "b", "c"]), "`a`, `b` or `c`");
    }
}
