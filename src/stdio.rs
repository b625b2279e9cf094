//! Console output that never panics.
//!
//! `println!` panics when stdout is a closed pipe (`faultline schema | head
//! -1`, `faultline run ... | true`): Rust ignores SIGPIPE, so the write
//! fails with EPIPE and the macro turns that into exit 101. Whatever went
//! wrong with the console, the command's own outcome (a written report, a
//! verdict) is what its exit code must say, so these helpers drop console
//! write errors. Use [`out!`](crate::out)/[`outln!`](crate::outln) for stdout
//! and [`eout!`](crate::eout)/[`eoutln!`](crate::eoutln) for stderr.

use std::io::Write;

/// Writes `text` to stdout and flushes; errors (EPIPE, a full disk behind a
/// redirection) are dropped on purpose, see the module docs.
pub fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Writes `text` to stderr; errors are dropped, as for [`out`].
pub fn err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes `text` to stderr when `to_stderr`, else to stdout: the console
/// summary moves to stderr when a report is written to stdout.
pub fn console(text: &str, to_stderr: bool) {
    if to_stderr {
        err(text);
    } else {
        out(text);
    }
}

/// Whether the stream [`console`] writes to (`to_stderr` or stdout) is a terminal.
pub fn is_terminal(to_stderr: bool) -> bool {
    use std::io::IsTerminal;
    if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    }
}

/// `print!` that never panics.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::stdio::out(&format!($($arg)*)) };
}

/// `println!` that never panics.
#[macro_export]
macro_rules! outln {
    () => { $crate::stdio::out("\n") };
    ($($arg:tt)*) => { $crate::stdio::out(&format!("{}\n", format_args!($($arg)*))) };
}

/// `eprint!` that never panics.
#[macro_export]
macro_rules! eout {
    ($($arg:tt)*) => { $crate::stdio::err(&format!($($arg)*)) };
}

/// `eprintln!` that never panics.
#[macro_export]
macro_rules! eoutln {
    () => { $crate::stdio::err("\n") };
    ($($arg:tt)*) => { $crate::stdio::err(&format!("{}\n", format_args!($($arg)*))) };
}
