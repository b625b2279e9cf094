//! `validate`, `list` and `plan`: reading experiment files and saying what
//! they would do, without running anything.

use crate::cli::FilesArgs;
use crate::config::{self, model::Document, model::Experiment, model::LoadModel, model::RateShape};
use crate::exit::ExitCode;
use crate::runner;
use crate::{eout, eoutln, out, outln};
use std::path::PathBuf;

use super::{load_all, load_options};

pub(super) fn validate(args: &FilesArgs) -> ExitCode {
    let mut code = ExitCode::Passed;
    let options = load_options(args.force, &args.set);
    for file in &args.files {
        match config::load_file_with(file, options.clone()) {
            Ok(doc) => {
                print_warnings(&doc);
                outln!("ok: {}", summary_line(&doc))
            }
            Err(e) => {
                let n = e.diagnostics.len();
                eout!("{e}");
                eoutln!(
                    "{}: {n} error{}",
                    file.display(),
                    if n == 1 { "" } else { "s" }
                );
                code = ExitCode::InvalidInput;
            }
        }
    }
    code
}

/// A valid file's warnings (a deprecated form), on stderr, as rustc shows them.
pub(super) fn print_warnings(doc: &Document) {
    for warning in &doc.warnings {
        eoutln!("{warning}\n");
    }
}

pub(super) fn summary_line(doc: &Document) -> String {
    let total: f64 = doc
        .experiments
        .iter()
        .map(|e| e.total_duration().as_secs_f64())
        .sum();
    match &doc.suite {
        Some(s) => format!(
            "{}: suite `{}` with {} experiment{}, {:.0}s of load",
            doc.source.display(),
            s.name,
            doc.experiments.len(),
            if doc.experiments.len() == 1 { "" } else { "s" },
            total
        ),
        None => {
            let e = doc.experiments.first();
            format!(
                "{}: experiment `{}`, {} phase{}, {:.0}s, {}",
                doc.source.display(),
                e.map_or("", |e| e.name.as_str()),
                e.map_or(0, |e| e.phases.len()),
                if e.map_or(0, |e| e.phases.len()) == 1 {
                    ""
                } else {
                    "s"
                },
                total,
                e.map_or(String::new(), load_text)
            )
        }
    }
}

pub(super) fn load_text(e: &Experiment) -> String {
    match &e.load.model {
        LoadModel::Open {
            rate: RateShape::Constant(r),
            ..
        } => format!("open model {r}/s"),
        LoadModel::Open {
            rate: RateShape::Ramp { from, to, over },
            ..
        } => {
            format!(
                "open model {from}→{to}/s over {}",
                config::units::format_duration(*over)
            )
        }
        LoadModel::Closed { concurrency } => format!("closed model, {concurrency} workers"),
    }
}

pub(super) fn list(args: &FilesArgs) -> ExitCode {
    let docs = match load_all(&args.files, &load_options(args.force, &args.set)) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut total = 0.0;
    for doc in &docs {
        if let Some(s) = &doc.suite {
            outln!("suite {} ({})", s.name, doc.source.display());
        }
        for e in &doc.experiments {
            let secs = e.total_duration().as_secs_f64();
            total += secs;
            let tags = if e.tags.is_empty() {
                String::new()
            } else {
                format!(" [{}]", e.tags.join(", "))
            };
            outln!("  {}{}  {:.0}s, {}", e.name, tags, secs, load_text(e));
            for p in &e.phases {
                let faults = if p.inject.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} fault{}",
                        p.inject.len(),
                        if p.inject.len() == 1 { "" } else { "s" }
                    )
                };
                let expects: Vec<String> = p
                    .expect
                    .iter()
                    .map(|t| format!("{} {}", t.metric.key(), t.source))
                    .collect();
                outln!(
                    "    - {} {}{}{}",
                    p.name,
                    config::units::format_duration(p.duration),
                    faults,
                    if expects.is_empty() {
                        String::new()
                    } else {
                        format!("; expect {}", expects.join(", "))
                    }
                );
            }
        }
    }
    outln!("total: {total:.0}s of load");
    ExitCode::Passed
}

/// `faultline plan` and `run --dry-run`: exit 0 when everything needed is
/// reachable, 4 when something is not, 2 on invalid input.
pub(super) async fn plan(files: Vec<PathBuf>, options: config::LoadOptions) -> ExitCode {
    let docs = match load_all(&files, &options) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let experiments: Vec<&Experiment> = docs.iter().flat_map(|d| d.experiments.iter()).collect();
    let (text, reachable) = runner::dry_run::plan_with_reachability(&experiments).await;
    out!("{text}");
    if reachable {
        ExitCode::Passed
    } else {
        ExitCode::CouldNotRun
    }
}
