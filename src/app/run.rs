//! `run`, `report` and `merge`: running experiments, writing every report
//! and mapping the verdict to the exit code.

use crate::cli::{MergeArgs, ReportArgs, RunArgs};
use crate::config::{model::Document, model::Experiment};
use crate::exit::ExitCode;
use crate::journal::RunReport;
use crate::report::{self, ConsoleProgress};
use crate::runner::{self, NoProgress, Progress, RunSettings, StopSignals};
use crate::{eout, eoutln};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files::plan;
use super::servers::read_token;
use super::{load_all, load_options};

pub(super) async fn run(args: RunArgs, color: report::color::When) -> ExitCode {
    let options = load_options(args.force, &args.set);
    if args.dry_run {
        return plan(args.files.clone(), options).await;
    }
    let docs = match load_all(&args.files, &options) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut experiments: Vec<Experiment> = docs
        .iter()
        .flat_map(|d| d.experiments.iter().cloned())
        .collect();
    if let Some((index, count)) = args.shard {
        for e in &mut experiments {
            runner::plan::shard(e, index, count);
        }
    }
    let filters = runner::plan::Filters {
        only: args.only.clone(),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
    };
    let plan = match runner::plan::select(experiments, &filters) {
        Ok(p) => p,
        Err(message) => {
            eoutln!("error: {message}");
            return ExitCode::InvalidInput;
        }
    };
    let baseline = match args.baseline.as_deref().map(read_report).transpose() {
        Ok(b) => b,
        Err(code) => return code,
    };
    let selected: Vec<&Experiment> = plan
        .iter()
        .filter(|p| p.skip.is_none())
        .map(|p| &p.experiment)
        .collect();
    if let Err(why) = runner::safety::production_guard(&selected, args.allow_production) {
        eoutln!("error: {why}");
        return ExitCode::InvalidInput;
    }
    let name = run_name(&docs, &selected);
    let out_dir = args.out.clone().unwrap_or_else(|| default_out_dir(&name));
    let outputs = Outputs {
        json: Some(
            args.json
                .clone()
                .unwrap_or_else(|| out_dir.join("report.json")),
        ),
        html: Some(
            args.html
                .clone()
                .unwrap_or_else(|| out_dir.join("report.html")),
        ),
        junit: args.junit.clone(),
        summary_md: args.summary_md.clone(),
    };
    if let Err(code) = outputs.check() {
        return code;
    }
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        // Not invalid input: the same flags work once the disk has room.
        eoutln!(
            "error: cannot create output folder {}: {e}",
            out_dir.display()
        );
        return ExitCode::ReportNotWritten;
    }
    let seed = args.seed.unwrap_or_else(random_seed);
    let token = match args.token_file.as_deref().map(read_token).transpose() {
        Ok(t) => t,
        Err(code) => return code,
    };
    let live_opts = runner::live_outputs::LiveOptions {
        listen: args.metrics_listen,
        token,
        remote_write: args.prometheus_remote_write.clone(),
        linger: args.metrics_linger,
    };
    let mut live_outputs = match runner::live_outputs::LiveOutputs::start(live_opts).await {
        Ok(l) => l,
        Err(e) => {
            eoutln!("error: {e}");
            return if e.is_invalid_input() {
                ExitCode::InvalidInput
            } else {
                ExitCode::CouldNotRun
            };
        }
    };
    let signals = StopSignals::new();
    if let Err(e) = signals.install() {
        eoutln!("error: cannot install signal handlers: {e}");
        return ExitCode::CouldNotRun;
    }
    let progress: Arc<dyn Progress> = if args.quiet {
        Arc::new(NoProgress)
    } else {
        Arc::new(ConsoleProgress::new())
    };
    if !args.quiet {
        eoutln!(
            "faultline {}: {} experiment(s), seed {seed}, output {}",
            env!("CARGO_PKG_VERSION"),
            selected.len(),
            out_dir.display()
        );
    }
    if let Some(url) = live_outputs.as_ref().and_then(|l| l.metrics_url()) {
        // Always printed (even --quiet): with port 0 it is the only way to know it.
        eoutln!("metrics on {url}");
    }
    let settings = RunSettings {
        seed,
        out_dir: out_dir.clone(),
        files: args.files.iter().map(|f| f.display().to_string()).collect(),
        fail_fast: args.fail_fast,
        live: live_outputs.as_ref().map(|l| l.live()),
    };
    let notifier = crate::report::notify::Notifier::wrap(progress.clone(), &selected);
    let progress: Arc<dyn Progress> = match &notifier {
        Some(n) => {
            n.run_started(&selected, seed);
            n.clone()
        }
        None => progress,
    };
    let progress = match &live_outputs {
        Some(l) => runner::live::LiveProgress::wrap(progress, l.live()),
        None => progress,
    };
    let interactive = args
        .interactive
        .then(runner::interactive::Interactive::from_stdin);
    let mut report = runner::run_with(&plan, &settings, &signals, progress, interactive).await;
    report.suite = match docs.as_slice() {
        [doc] => doc.suite.as_ref().map(|s| s.name.clone()),
        _ => None,
    };
    report.shard = args.shard.map(|(i, n)| format!("{i}/{n}"));
    if let Some(baseline) = &baseline {
        crate::verify::baseline::apply(&mut report, baseline, args.baseline_alpha);
    }
    if let Some(n) = &notifier {
        n.finish(&report).await;
    }
    if let Some(note) = match live_outputs.as_mut() {
        Some(l) => l.flush().await,
        None => None,
    } {
        eoutln!("warning: {note}");
        report.notes.push(note);
    }
    let code = finish(&report, &outputs, args.quiet, color);
    if let Some(l) = live_outputs {
        l.close(&signals.stop).await;
    }
    code
}

/// Where a run's reports go.
pub(super) struct Outputs {
    json: Option<PathBuf>,
    html: Option<PathBuf>,
    junit: Option<PathBuf>,
    summary_md: Option<PathBuf>,
}

impl Outputs {
    fn all(&self) -> impl Iterator<Item = &PathBuf> {
        [&self.json, &self.html, &self.junit, &self.summary_md]
            .into_iter()
            .flatten()
    }

    /// Whether a report goes to stdout (`-`, `/dev/stdout`): the console
    /// summary then goes to stderr, so stdout carries the report alone.
    fn use_stdout(&self) -> bool {
        self.all().any(|p| report::output::goes_to_stdout(p))
    }

    /// Two reports on stdout would be one unreadable stream: invalid input,
    /// found before anything runs.
    fn check(&self) -> Result<(), ExitCode> {
        let on_stdout = self
            .all()
            .filter(|p| report::output::goes_to_stdout(p))
            .count();
        if on_stdout > 1 {
            eoutln!(
                "error: {on_stdout} reports would be written to stdout (`-`); give all but one a file"
            );
            return Err(ExitCode::InvalidInput);
        }
        Ok(())
    }
}

/// Writes every requested report, prints the console report, and returns
/// the exit code. A report that cannot be written (full disk, unwritable
/// folder) is exit 6 when the run passed; a worse outcome of the run is
/// never hidden. The verdict is printed either way, and the write errors
/// after it, where they are seen.
pub(super) fn finish(
    report: &RunReport,
    outputs: &Outputs,
    quiet: bool,
    color: report::color::When,
) -> ExitCode {
    let mut errors = Vec::new();
    let mut note = |what: &str, path: &Path, result: std::io::Result<()>| {
        if let Err(e) = result {
            errors.push(format!(
                "error: cannot write the {what} to {}: {e}\n",
                path.display()
            ));
        }
    };
    if let Some(p) = &outputs.json {
        note("JSON report", p, report::json::write(report, p));
    }
    if let Some(p) = &outputs.html {
        note("HTML report", p, report::html::write(report, p));
    }
    if let Some(p) = &outputs.junit {
        note("JUnit XML", p, report::junit::write(report, p));
    }
    if let Some(p) = &outputs.summary_md {
        let text = report::markdown::render(report);
        note(
            "Markdown summary",
            p,
            report::output::write(p, text.as_bytes()),
        );
    }
    if let Err(e) = report::markdown::append_github_step_summary(report) {
        eoutln!("warning: cannot append to $GITHUB_STEP_SUMMARY: {e}");
    }
    let json_written = errors.iter().all(|e| !e.contains("JSON report"));
    let json_text = outputs.json.as_ref().map(|p| match p.as_os_str() {
        s if s == report::output::STDOUT => "stdout".to_string(),
        _ => p.display().to_string(),
    });
    let to_stderr = outputs.use_stdout();
    let paint = report::color::Paint {
        on: report::color::enabled(
            color,
            crate::stdio::is_terminal(to_stderr),
            std::env::var_os("NO_COLOR").as_deref(),
        ),
    };
    let json_path = json_text.as_deref().filter(|_| json_written);
    let text = report::console::render_painted(report, json_path, paint);
    if quiet {
        if report.rollback_failed {
            eout!("{}", report::console::rollback_banner(report));
        }
        if let Some(last) = text.lines().last() {
            crate::stdio::console(&format!("{last}\n"), to_stderr);
        }
    } else {
        crate::stdio::console(&text, to_stderr);
    }
    for error in &errors {
        eout!("{error}");
    }
    let code = ExitCode::from_report_code(report.exit_code);
    if errors.is_empty() {
        code
    } else {
        code.worst(ExitCode::ReportNotWritten)
    }
}

pub(super) fn write_text(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

pub(super) fn read_report(path: &Path) -> Result<RunReport, ExitCode> {
    report::json::read(path).map_err(|e| {
        eoutln!("error: cannot read report {}: {e}", path.display());
        ExitCode::InvalidInput
    })
}

/// `faultline report`: re-render a saved report, optionally with a baseline.
pub(super) async fn rerender(args: ReportArgs, color: report::color::When) -> ExitCode {
    let mut report = match read_report(&args.report) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if let Some(path) = &args.baseline {
        match read_report(path) {
            Ok(b) => crate::verify::baseline::apply(&mut report, &b, args.baseline_alpha),
            Err(code) => return code,
        }
    }
    let outputs = Outputs {
        json: args.json.clone(),
        html: args.html.clone(),
        junit: args.junit.clone(),
        summary_md: args.summary_md.clone(),
    };
    if let Err(code) = outputs.check() {
        return code;
    }
    finish(&report, &outputs, false, color)
}

/// `faultline merge`: one report from the shards of a run.
pub(super) async fn merge(args: MergeArgs, color: report::color::When) -> ExitCode {
    let mut reports = Vec::new();
    for path in &args.reports {
        match read_report(path) {
            Ok(r) => reports.push(r),
            Err(code) => return code,
        }
    }
    match report::merge::merge(&reports) {
        Ok(merged) => {
            let outputs = Outputs {
                json: Some(args.output.clone()),
                html: None,
                junit: None,
                summary_md: None,
            };
            finish(&merged, &outputs, false, color)
        }
        Err(e) => {
            eoutln!("error: {e}");
            ExitCode::InvalidInput
        }
    }
}

pub(super) fn run_name(docs: &[Document], experiments: &[&Experiment]) -> String {
    match (docs, experiments) {
        ([doc], _) if doc.suite.is_some() => {
            doc.suite.as_ref().map_or("run".into(), |s| s.name.clone())
        }
        (_, [one]) => one.name.clone(),
        _ => "run".into(),
    }
}

pub(super) fn default_out_dir(name: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    Path::new("reports").join(format!("{stamp}-{}", runner::sanitize(name)))
}

pub(super) fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    // RandomState is seeded from the OS; hashing the time adds run-to-run variety.
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}
