//! Colour in the console report: when to use it, and the few ANSI styles
//! it uses (no dependency: four SGR codes are all it takes).
//!
//! `--color auto` (the default) colours only a terminal, and not when
//! `NO_COLOR` is set to anything non-empty (<https://no-color.org>);
//! `always` and `never` override both, so `--color always` still colours a
//! pipe (`| less -R`) under `NO_COLOR`.

use std::ffi::OsStr;

/// What `--color` asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum When {
    #[default]
    Auto,
    Always,
    Never,
}

/// Whether to colour a stream that `is_terminal` (or not), with `NO_COLOR`
/// holding `no_color`.
pub fn enabled(when: When, is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    match when {
        When::Always => true,
        When::Never => false,
        When::Auto => is_terminal && no_color.is_none_or(OsStr::is_empty),
    }
}

/// A style the console report uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// PASS, PASSED, recovered.
    Good,
    /// FAIL, FAILED, not recovered.
    Bad,
    /// ERROR, ABORTED: the run could not judge.
    Warn,
    /// SKIPPED.
    Dim,
    /// ROLLBACK FAILED: the loudest line.
    Alarm,
}

impl Style {
    fn code(self) -> &'static str {
        match self {
            Style::Good => "32",
            Style::Bad => "31",
            Style::Warn => "33",
            Style::Dim => "2",
            Style::Alarm => "1;31",
        }
    }
}

/// Paints text in a [`Style`], or leaves it alone when colour is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Paint {
    pub on: bool,
}

impl Paint {
    /// `text` in `style`.
    pub fn paint(self, style: Style, text: &str) -> String {
        if self.on {
            format!("\x1b[{}m{text}\x1b[0m", style.code())
        } else {
            text.to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colours_only_a_terminal_without_no_color() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        let cases: &[(&str, When, bool, Option<&OsStr>, bool)] = &[
            ("auto on a terminal", When::Auto, true, None, true),
            ("auto on a pipe", When::Auto, false, None, false),
            ("auto with NO_COLOR set", When::Auto, true, set, false),
            ("auto with NO_COLOR empty", When::Auto, true, empty, true),
            (
                "always on a pipe under NO_COLOR",
                When::Always,
                false,
                set,
                true,
            ),
            ("never on a terminal", When::Never, true, None, false),
        ];
        for (case, when, tty, no_color, want) in cases {
            assert_eq!(enabled(*when, *tty, *no_color), *want, "{case}");
        }
    }

    #[test]
    fn paint_wraps_in_sgr_codes_only_when_on() {
        assert_eq!(
            Paint { on: true }.paint(Style::Good, "PASS"),
            "\x1b[32mPASS\x1b[0m"
        );
        assert_eq!(Paint { on: false }.paint(Style::Bad, "FAIL"), "FAIL");
    }
}
