//! The commands behind the CLI: load and check input, run, render, and map
//! the outcome to an [`ExitCode`]. Everything a user sees on the terminal at
//! the end of a command is printed here.

use crate::cli::{
    AgentArgs, Cli, Command, CompletionsArgs, DemoArgs, FilesArgs, InitArgs, MergeArgs, ProxyArgs,
    ReportArgs, RollbackArgs, RunArgs, SchemaArgs, SchemaKind,
};
use crate::config::{self, model::Document, model::Experiment, model::LoadModel, model::RateShape};
use crate::exit::ExitCode;
use crate::journal::RunReport;
use crate::report::{self, ConsoleProgress};
use crate::runner::{self, NoProgress, Progress, RunSettings, StopSignals};
use crate::{eout, eoutln, out, outln};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> ExitCode {
    crate::logging::init(cli.verbose);
    let color = cli.color.into();
    match cli.command {
        Command::Validate(args) => validate(&args),
        Command::List(args) => list(&args),
        Command::Plan(args) => {
            with_runtime(|| plan(args.files.clone(), load_options(args.force, &args.set)))
        }
        Command::Run(args) => with_runtime(|| run(*args, color)),
        Command::Demo(args) => with_runtime(|| demo(args)),
        Command::Proxy(args) => with_runtime(|| proxy(args)),
        Command::Rollback(args) => with_runtime(|| rollback(args)),
        Command::Report(args) => with_runtime(|| rerender(args, color)),
        Command::Agent(args) => with_runtime(|| agent(args)),
        Command::Stress { args } => stress(&args),
        Command::Merge(args) => with_runtime(|| merge(args, color)),
        Command::Schema(args) => schema(&args),
        Command::Init(args) => init(&args),
        Command::Completions(args) => completions(&args),
    }
}

/// `faultline schema`: a JSON Schema for editors, or the Markdown reference.
fn schema(args: &SchemaArgs) -> ExitCode {
    use config::schema;
    if args.markdown {
        out!("{}", schema::reference_markdown());
    } else {
        let value = match args.kind {
            SchemaKind::Experiment => schema::experiment_schema(),
            SchemaKind::Suite => schema::suite_schema(),
            SchemaKind::Report => report::json::schema(),
        };
        out!("{}", schema::to_pretty(&value));
    }
    ExitCode::Passed
}

/// `faultline init`: a starter experiment from a template, never over an
/// existing file unless `--force`.
fn init(args: &InitArgs) -> ExitCode {
    use crate::authoring;
    let Some(template) = authoring::template(&args.template) else {
        let names: Vec<&str> = authoring::TEMPLATES.iter().map(|t| t.name).collect();
        let hint = config::did_you_mean(&args.template, names.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        eoutln!(
            "error: unknown template `{}`{hint}; templates: {}",
            args.template,
            config::one_of(&names)
        );
        return ExitCode::InvalidInput;
    };
    if args.file.exists() && !args.force {
        eoutln!(
            "error: {} already exists; pass --force to overwrite it",
            args.file.display()
        );
        return ExitCode::InvalidInput;
    }
    let folder = match args.file.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir.to_path_buf(),
        None => PathBuf::from("."),
    };
    let schema = config::schema::to_pretty(&config::schema::experiment_schema());
    let linked = std::fs::create_dir_all(&folder)
        .and_then(|()| authoring::schema_link::link(&folder, &schema));
    let linked = match linked {
        Ok(linked) => linked,
        Err(e) => {
            eoutln!(
                "error: cannot write the schema next to {}: {e}",
                args.file.display()
            );
            return ExitCode::InvalidInput;
        }
    };
    let text = authoring::schema_link::with_schema_line(template.text, &linked.target);
    if let Err(e) = write_text(&args.file, &text) {
        eoutln!("error: cannot write {}: {e}", args.file.display());
        return ExitCode::InvalidInput;
    }
    outln!(
        "wrote {} (template `{}`: {}); check it with `faultline validate {0}`, run it with `faultline run {0}`",
        args.file.display(),
        template.name,
        template.summary
    );
    use authoring::schema_link::SchemaState;
    let schema_path = linked.path.display();
    match linked.state {
        SchemaState::Written => outln!("wrote {schema_path} (for editors: the file's `$schema` line points to it)"),
        SchemaState::Updated => outln!("updated {schema_path} to this faultline's schema"),
        SchemaState::Current => {}
        SchemaState::Differs => outln!(
            "note: {schema_path} is from another faultline version; refresh it with `faultline schema experiment > {schema_path}`"
        ),
    }
    ExitCode::Passed
}

/// `faultline completions SHELL`: the completion script on stdout.
fn completions(args: &CompletionsArgs) -> ExitCode {
    use clap::CommandFactory;
    let mut command = Cli::command();
    // Into memory first: clap_complete panics on a failed write (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "faultline", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    ExitCode::Passed
}

fn with_runtime<F, Fut>(f: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f()),
        Err(e) => {
            eoutln!("error: could not start the async runtime: {e}");
            ExitCode::CouldNotRun
        }
    }
}

/// How `--force` and `--set` load files (`${VAR}` from the environment).
fn load_options(force: bool, set: &[config::Override]) -> config::LoadOptions {
    config::LoadOptions {
        force,
        overrides: set.to_vec(),
        ..config::LoadOptions::default()
    }
}

/// Loads every file, printing all diagnostics of all files.
fn load_all(files: &[PathBuf], options: &config::LoadOptions) -> Result<Vec<Document>, ExitCode> {
    let mut docs = Vec::new();
    let mut failed = false;
    for file in files {
        match config::load_file_with(file, options.clone()) {
            Ok(doc) => {
                print_warnings(&doc);
                docs.push(doc)
            }
            Err(e) => {
                eout!("{e}");
                if !e.to_string().ends_with('\n') {
                    eoutln!();
                }
                failed = true;
            }
        }
    }
    if failed {
        Err(ExitCode::InvalidInput)
    } else {
        Ok(docs)
    }
}

fn validate(args: &FilesArgs) -> ExitCode {
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
fn print_warnings(doc: &Document) {
    for warning in &doc.warnings {
        eoutln!("{warning}\n");
    }
}

fn summary_line(doc: &Document) -> String {
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

fn load_text(e: &Experiment) -> String {
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

fn list(args: &FilesArgs) -> ExitCode {
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
async fn plan(files: Vec<PathBuf>, options: config::LoadOptions) -> ExitCode {
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

async fn run(args: RunArgs, color: report::color::When) -> ExitCode {
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
struct Outputs {
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
fn finish(
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

fn write_text(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text)
}

fn read_report(path: &Path) -> Result<RunReport, ExitCode> {
    report::json::read(path).map_err(|e| {
        eoutln!("error: cannot read report {}: {e}", path.display());
        ExitCode::InvalidInput
    })
}

/// `faultline report`: re-render a saved report, optionally with a baseline.
async fn rerender(args: ReportArgs, color: report::color::When) -> ExitCode {
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
async fn merge(args: MergeArgs, color: report::color::When) -> ExitCode {
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

fn run_name(docs: &[Document], experiments: &[&Experiment]) -> String {
    match (docs, experiments) {
        ([doc], _) if doc.suite.is_some() => {
            doc.suite.as_ref().map_or("run".into(), |s| s.name.clone())
        }
        (_, [one]) => one.name.clone(),
        _ => "run".into(),
    }
}

fn default_out_dir(name: &str) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .replace([':', '-'], "");
    Path::new("reports").join(format!("{stamp}-{}", runner::sanitize(name)))
}

fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    // RandomState is seeded from the OS; hashing the time adds run-to-run variety.
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}

async fn demo(args: DemoArgs) -> ExitCode {
    let latency = config::units::parse_duration(&args.payments_latency)
        .map_err(|e| format!("--payments-latency: {e}"));
    let weight = demo_weight(&args.canary_weight).map_err(|e| format!("--canary-weight: {e}"));
    let defects = demo_defects(&args.defects);
    let (payments_latency, canary_weight, defects) = match (latency, weight, defects) {
        (Ok(l), Ok(w), Ok(d)) => (l, w, d),
        (l, w, d) => {
            for message in [l.err(), w.err(), d.err()].into_iter().flatten() {
                eoutln!("error: {message}");
            }
            return ExitCode::InvalidInput;
        }
    };
    if let Some(message) = config::defect_conflict(&defects) {
        eoutln!("error: --defect: {message}");
        return ExitCode::InvalidInput;
    }
    if defects.contains(&config::model::Defect::NoEjection) && !args.failover {
        eoutln!("error: --defect no_ejection bends the fail-over: add --failover");
        return ExitCode::InvalidInput;
    }
    let opts = config::model::DemoOptions {
        payments_latency,
        canary_weight,
        defects,
        failover: args.failover.then(config::model::FailoverOptions::default),
        ..Default::default()
    };
    match crate::demo::run_foreground(opts, args.seed, args.port).await {
        Ok(()) => ExitCode::Passed,
        Err(e) => {
            eoutln!("error: {e}");
            ExitCode::CouldNotRun
        }
    }
}

/// `10%` or `0.1`: the canary's share, 0..=1, read as YAML reads it.
fn demo_weight(text: &str) -> Result<f64, String> {
    config::units::parse_share(&serde_yaml::Value::String(text.to_string()), "10%")
}

/// `--defect` names → defects (each once), or one message naming every unknown one.
fn demo_defects(names: &[String]) -> Result<Vec<config::model::Defect>, String> {
    use config::model::Defect;
    let keys: Vec<&str> = Defect::ALL.iter().map(|d| d.key()).collect();
    let mut defects = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        match Defect::from_key(name) {
            Some(d) if !defects.contains(&d) => defects.push(d),
            Some(_) => {}
            None => unknown.push(match config::did_you_mean(name, keys.iter().copied()) {
                Some(s) => format!("unknown defect `{name}` (did you mean `{s}`?)"),
                None => format!("unknown defect `{name}`"),
            }),
        }
    }
    if unknown.is_empty() {
        Ok(defects)
    } else {
        Err(format!(
            "--defect: {}; known defects: {}",
            unknown.join(", "),
            config::one_of(&keys)
        ))
    }
}

async fn proxy(args: ProxyArgs) -> ExitCode {
    let token = match args.token_file.as_deref().map(read_token).transpose() {
        Ok(t) => t,
        Err(code) => return code,
    };
    if !(args.admin.ip().is_loopback() || args.allow_remote && token.is_some()) {
        eoutln!(
            "error: --admin {} is not a loopback address: anyone who can reach it could inject faults. \
             Pass --allow-remote and --token-file FILE to require a bearer token.",
            args.admin
        );
        return ExitCode::InvalidInput;
    }
    let opts = crate::proxy::api::AdminOptions {
        admin: args.admin,
        config: args.config,
        allow_remote: args.allow_remote,
        token,
        seed: args.seed,
    };
    let result = crate::proxy::api::run_standalone(opts).await;
    server_exit(result.as_ref().err().map(|e| {
        (
            e as &(dyn std::error::Error + 'static),
            e.is_invalid_input(),
        )
    }))
}

/// Undoes every entry of the given (or found) rollback journals.
async fn rollback(args: RollbackArgs) -> ExitCode {
    use crate::faults::journal;
    let journals = if args.journal.is_empty() {
        journal::find_all(Path::new("reports"))
    } else {
        args.journal.clone()
    };
    let mut undone = 0usize;
    let mut failed = 0usize;
    for path in &journals {
        let entries = match journal::read(path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.journal.len() <= 1 => {
                outln!("nothing to roll back: {} does not exist", path.display());
                continue;
            }
            Err(e) => {
                // One unreadable journal must not stop the others' cleanup.
                eoutln!("FAILED to read {}: {e}", path.display());
                failed += 1;
                continue;
            }
        };
        let mut left = Vec::new();
        // Newest first, like the run's own rollback: a target stopped with
        // SIGSTOP is continued before it is asked to exit.
        for entry in entries.into_iter().rev() {
            match entry.undo().await {
                Ok(journal::Undone::Done) => {
                    outln!("{} {entry}", entry.undone_verb());
                    undone += 1;
                }
                Ok(journal::Undone::Gone) => {
                    outln!("already gone: {entry}");
                }
                Err(e) => {
                    eoutln!("FAILED to remove {entry}: {e}");
                    failed += 1;
                    left.insert(0, entry);
                }
            }
        }
        if let Err(e) = journal::write(path, &left) {
            eoutln!("error: cannot update {}: {e}", path.display());
        }
    }
    if failed > 0 {
        eoutln!("{failed} change(s) could not be removed; they are still listed in their journal");
        return ExitCode::RollbackFailed;
    }
    if undone == 0 {
        outln!("nothing to roll back");
    }
    ExitCode::Passed
}

/// The hidden `faultline stress ...`: the pressure child of a cpu/memory fault.
fn stress(args: &[String]) -> ExitCode {
    match crate::faults::stress::StressArgs::parse(args) {
        Ok(parsed) => ExitCode::from_report_code(crate::faults::stress::stress_main(&parsed)),
        Err(e) => {
            eoutln!("error: faultline stress: {e}");
            ExitCode::InvalidInput
        }
    }
}

async fn agent(args: AgentArgs) -> ExitCode {
    if let Err(code) = token_file_private(&args.token_file, args.strict) {
        return code;
    }
    let token = match read_token(&args.token_file) {
        Ok(t) => t,
        Err(code) => return code,
    };
    if !(args.listen.ip().is_loopback() || args.allow_remote) {
        eoutln!(
            "error: --listen {} is not a loopback address; pass --allow-remote to expose the agent (its token is required on every request)",
            args.listen
        );
        return ExitCode::InvalidInput;
    }
    let opts = crate::agent::AgentOptions {
        listen: args.listen,
        token,
        allow_remote: args.allow_remote,
        default_lease: std::time::Duration::from_secs(args.lease.max(1)),
        allow_force: args.allow_force,
    };
    let result = crate::agent::run_agent(opts).await;
    server_exit(result.as_ref().err().map(|e| {
        (
            e as &(dyn std::error::Error + 'static),
            e.is_invalid_input(),
        )
    }))
}

/// A token file others can read gives the token away: warned about, or
/// refused with `--strict` (as ssh refuses a private key others can read).
fn token_file_private(path: &Path, strict: bool) -> Result<(), ExitCode> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        // Unreadable: `read_token` says why.
        return Ok(());
    };
    let mode = meta.permissions().mode();
    if mode & 0o077 == 0 {
        return Ok(());
    }
    let what = if strict { "error" } else { "warning" };
    eoutln!(
        "{what}: --token-file {} is readable by group or others (mode {:o}); run `chmod 600` on it",
        path.display(),
        mode & 0o777
    );
    if strict {
        Err(ExitCode::InvalidInput)
    } else {
        Ok(())
    }
}

/// A bearer token from a file (surrounding whitespace dropped); an empty or
/// unreadable file is invalid input.
fn read_token(path: &Path) -> Result<String, ExitCode> {
    let refuse = |why: String| {
        eoutln!("error: --token-file {}: {why}", path.display());
        Err(ExitCode::InvalidInput)
    };
    // Bounded: `--token-file /dev/zero` or a FIFO must not hang or fill memory.
    let bytes = match crate::bounds::read_regular(path, crate::bounds::TOKEN_FILE_MAX_BYTES) {
        Ok(bytes) => bytes,
        Err(e) => return refuse(e.to_string()),
    };
    match String::from_utf8(bytes) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        Ok(_) => refuse("it is empty".into()),
        Err(_) => refuse("it is not UTF-8 text".into()),
    }
}

/// The exit of a foreground server (`proxy`, `agent`): its error, if any,
/// with the whole cause chain; bad flags or files are invalid input (2).
fn server_exit(error: Option<(&(dyn std::error::Error + 'static), bool)>) -> ExitCode {
    match error {
        None => ExitCode::Passed,
        Some((e, invalid_input)) => {
            eoutln!("error: {}", runner::proxies::error_chain(e));
            if invalid_input {
                ExitCode::InvalidInput
            } else {
                ExitCode::CouldNotRun
            }
        }
    }
}
