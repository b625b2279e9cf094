//! The commands behind the CLI: load and check input, run, render, and map
//! the outcome to an [`ExitCode`]. Everything a user sees on the terminal at
//! the end of a command is printed here.

use crate::cli::{Cli, Command, CompletionsArgs, InitArgs, SchemaArgs, SchemaKind};
use crate::config::{self, model::Document};
use crate::exit::ExitCode;
use crate::report;
use crate::{eout, eoutln, out, outln};
use std::path::PathBuf;

mod files;
mod run;
mod servers;

use files::{list, plan, print_warnings, validate};
use run::{merge, rerender, run, write_text};
use servers::{agent, demo, proxy, rollback, stress};

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
pub(super) fn load_options(force: bool, set: &[config::Override]) -> config::LoadOptions {
    config::LoadOptions {
        force,
        overrides: set.to_vec(),
        ..config::LoadOptions::default()
    }
}

/// Loads every file, printing all diagnostics of all files.
pub(super) fn load_all(
    files: &[PathBuf],
    options: &config::LoadOptions,
) -> Result<Vec<Document>, ExitCode> {
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
