//! The documented process exit codes, as one enum.
//!
//! Scripts and CI jobs depend on these numbers: extend, never renumber.
//! When several outcomes apply to one run, the most severe wins
//! (see [`ExitCode::severity`]): 5, then 3, 4, 1, 6, 0. Invalid input (2) is
//! decided before anything runs, so it never competes with the others. A
//! report that cannot be written (6) replaces only a pass: the run's own
//! verdict is never hidden by a full disk.

use serde::Serialize;

/// How a faultline invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitCode {
    /// 0: every check passed.
    Passed = 0,
    /// 1: at least one check failed.
    ChecksFailed = 1,
    /// 2: invalid input (bad YAML, bad flag, unreadable file).
    InvalidInput = 2,
    /// 3: the run was aborted (signal, safety stop).
    Aborted = 3,
    /// 4: an experiment could not run (target never ready, port in use).
    CouldNotRun = 4,
    /// 5: a rollback failed; the system may be left degraded.
    RollbackFailed = 5,
    /// 6: the run passed but a report could not be written (full disk,
    /// unwritable folder); the verdict was printed on the console.
    ReportNotWritten = 6,
}

impl ExitCode {
    /// Rank used to combine outcomes: higher wins.
    pub fn severity(self) -> u8 {
        match self {
            ExitCode::Passed => 0,
            ExitCode::ReportNotWritten => 1,
            ExitCode::ChecksFailed => 2,
            ExitCode::CouldNotRun => 3,
            ExitCode::Aborted => 4,
            ExitCode::InvalidInput => 5,
            ExitCode::RollbackFailed => 6,
        }
    }

    /// The more severe of two outcomes.
    pub fn worst(self, other: ExitCode) -> ExitCode {
        if other.severity() > self.severity() {
            other
        } else {
            self
        }
    }

    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The exit code a report's numeric `exit_code` stands for.
    pub fn from_report_code(code: u8) -> ExitCode {
        match code {
            0 => ExitCode::Passed,
            1 => ExitCode::ChecksFailed,
            2 => ExitCode::InvalidInput,
            3 => ExitCode::Aborted,
            4 => ExitCode::CouldNotRun,
            6 => ExitCode::ReportNotWritten,
            _ => ExitCode::RollbackFailed,
        }
    }

    /// The text used in `--help` and the README.
    pub const HELP: &'static str = "Exit codes:
  0  every check passed
  1  at least one check failed
  2  invalid input (bad YAML, bad flag, unreadable file)
  3  the run was aborted (signal, safety stop)
  4  an experiment could not run (target never ready, port in use)
  5  a rollback failed: the system may be left degraded
  6  the run passed but a report could not be written (full disk, unwritable folder)
When several apply, the most severe wins: 5, then 3, 4, 1, 6.";
}

#[cfg(test)]
mod tests {
    use super::ExitCode::*;

    #[test]
    fn the_most_severe_outcome_wins() {
        let cases = [
            (Passed, ChecksFailed, ChecksFailed),
            (ChecksFailed, CouldNotRun, CouldNotRun),
            (CouldNotRun, Aborted, Aborted),
            (Aborted, RollbackFailed, RollbackFailed),
            (RollbackFailed, ChecksFailed, RollbackFailed),
            (Aborted, ChecksFailed, Aborted),
            (Passed, ReportNotWritten, ReportNotWritten),
            (ReportNotWritten, ChecksFailed, ChecksFailed),
            (ReportNotWritten, RollbackFailed, RollbackFailed),
        ];
        for (a, b, want) in cases {
            assert_eq!(a.worst(b), want, "{a:?} vs {b:?}");
            assert_eq!(b.worst(a), want, "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn numeric_codes_are_the_documented_ones() {
        let codes: Vec<u8> = [
            Passed,
            ChecksFailed,
            InvalidInput,
            Aborted,
            CouldNotRun,
            RollbackFailed,
            ReportNotWritten,
        ]
        .iter()
        .map(|c| c.code())
        .collect();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6]);
        for code in codes {
            assert_eq!(super::ExitCode::from_report_code(code).code(), code);
        }
    }
}
