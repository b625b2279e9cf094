//! `run --interactive`: a game day at a human's pace.
//!
//! Before each phase that injects faults the operator is asked: `y` to go,
//! `s` to skip the phase's faults (the phase runs without them), `a` to
//! abort (everything is rolled back, exit 3). A phase with `pause: true`
//! waits for Enter, to give people time to look at dashboards. A line
//! `n <text>` at any time is saved in the report as a timestamped note.
//!
//! The load keeps running while faultline waits: a phase's clock does not
//! stop, so a phase confirmed late injects its faults for less time. stdin
//! closing (end of input) at a prompt aborts: without an operator, the safe
//! answer is no.

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use crate::journal::OperatorNote;

/// The operator's answer at a prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Go,
    Skip,
    Abort,
}

/// Reads the operator's lines; decisions go to prompts, notes to the report.
pub struct Interactive {
    answers: tokio::sync::Mutex<mpsc::UnboundedReceiver<String>>,
    notes: Arc<Mutex<Vec<OperatorNote>>>,
    current: Arc<Mutex<String>>,
}

impl Interactive {
    /// Reads stdin on its own thread (a blocked read must not hold a runtime worker).
    pub fn from_stdin() -> Arc<Interactive> {
        Self::from_reader(std::io::stdin())
    }

    /// Reads lines from `input` (stdin, or a test's pipe).
    pub fn from_reader<R: std::io::Read + Send + 'static>(input: R) -> Arc<Interactive> {
        let (tx, rx) = mpsc::unbounded_channel();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let current = Arc::new(Mutex::new(String::new()));
        let (sink, experiment) = (notes.clone(), current.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(input).lines() {
                let Ok(line) = line else { break };
                let line = line.trim().to_string();
                if let Some(text) = line.strip_prefix("n ").map(str::trim) {
                    let note = OperatorNote {
                        at: super::experiment::rfc3339(SystemTime::now()),
                        experiment: experiment.lock().map(|e| e.clone()).unwrap_or_default(),
                        text: text.to_string(),
                    };
                    crate::eoutln!("  note saved ({})", note.at);
                    if let Ok(mut n) = sink.lock() {
                        n.push(note);
                    }
                } else if tx.send(line).is_err() {
                    break;
                }
            }
            // Dropping `tx` tells a waiting prompt that input has ended.
        });
        Arc::new(Interactive {
            answers: tokio::sync::Mutex::new(rx),
            notes,
            current,
        })
    }

    pub fn set_experiment(&self, name: &str) {
        if let Ok(mut c) = self.current.lock() {
            *c = name.to_string();
        }
    }

    /// Asks whether to inject `faults` in `phase`.
    pub async fn confirm(
        &self,
        phase: &str,
        faults: &[String],
        stop: &CancellationToken,
    ) -> Decision {
        crate::eoutln!(
            "\n  phase `{phase}` will inject:\n{}\n  [y] go  [s] skip this phase's faults  [a] abort  (n <text>: note)",
            faults.iter().map(|f| format!("    - {f}")).collect::<Vec<_>>().join("\n")
        );
        let mut answers = self.answers.lock().await;
        loop {
            let line = tokio::select! {
                line = answers.recv() => line,
                _ = stop.cancelled() => return Decision::Abort,
            };
            match line.as_deref() {
                None => {
                    crate::eoutln!("  input ended: aborting");
                    return Decision::Abort;
                }
                Some("y" | "Y" | "yes") => return Decision::Go,
                Some("s" | "S" | "skip") => return Decision::Skip,
                Some("a" | "A" | "abort") => return Decision::Abort,
                Some(other) => crate::eoutln!("  `{other}`: answer y, s or a"),
            }
        }
    }

    /// Waits for Enter (any line); `false` when input ended or the run stopped.
    pub async fn pause(&self, phase: &str, stop: &CancellationToken) -> bool {
        crate::eoutln!(
            "\n  paused in phase `{phase}` (the load keeps running): press Enter to continue"
        );
        let mut answers = self.answers.lock().await;
        tokio::select! {
            line = answers.recv() => line.is_some(),
            _ = stop.cancelled() => false,
        }
    }

    pub fn notes(&self) -> Vec<OperatorNote> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_go_to_prompts_and_notes_to_the_report() {
        let input = "n starting the game day\nwhat\ns\nn looks fine\ny\n";
        let i = Interactive::from_reader(std::io::Cursor::new(input.as_bytes().to_vec()));
        i.set_experiment("exp");
        let stop = CancellationToken::new();
        assert_eq!(i.confirm("a", &[], &stop).await, Decision::Skip);
        assert_eq!(i.confirm("b", &[], &stop).await, Decision::Go);
        assert_eq!(
            i.confirm("c", &[], &stop).await,
            Decision::Abort,
            "input ended"
        );
        let notes: Vec<String> = i.notes().into_iter().map(|n| n.text).collect();
        assert_eq!(notes, ["starting the game day", "looks fine"]);
    }
}
