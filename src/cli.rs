//! Command-line definitions (clap). Parsing only; [`crate::app`] acts on them.

use crate::exit::ExitCode;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "faultline",
    version,
    about = "Chaos-engineering and resilience test harness: drive HTTP load, inject faults in phases, measure, judge.",
    after_help = ExitCode::HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log lines on stderr: -v for what happens (faults, targets,
    /// stop conditions), -vv for details (probe observations, proxies).
    /// `FAULTLINE_LOG` (e.g. `faultline=debug`) overrides both.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Colour in the console report: `auto` colours a terminal unless
    /// `NO_COLOR` is set (non-empty); `always` and `never` override both.
    #[arg(
        long,
        value_enum,
        value_name = "WHEN",
        default_value = "auto",
        global = true
    )]
    pub color: ColorWhen,
}

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    #[default]
    Auto,
    Always,
    Never,
}

impl From<ColorWhen> for crate::report::color::When {
    fn from(when: ColorWhen) -> Self {
        match when {
            ColorWhen::Auto => Self::Auto,
            ColorWhen::Always => Self::Always,
            ColorWhen::Never => Self::Never,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run experiment or suite files and report the verdicts.
    #[command(after_help = ExitCode::HELP)]
    // Boxed: by far the largest variant (clippy's large_enum_variant).
    Run(Box<RunArgs>),
    /// Check files for errors without running anything.
    #[command(after_help = ExitCode::HELP)]
    Validate(FilesArgs),
    /// Show the experiments and phases the files would run.
    List(FilesArgs),
    /// Print what a run would do (targets, load, phases, faults with their
    /// blast radius, checks, stop conditions) and check that what it needs
    /// is reachable, without sending a request or touching a proxy.
    #[command(after_help = ExitCode::HELP)]
    Plan(FilesArgs),
    /// Start the embedded demo system in the foreground (Ctrl-C to stop).
    Demo(DemoArgs),
    /// Serve fault proxies with a Toxiproxy-compatible admin API.
    Proxy(ProxyArgs),
    /// Re-render a saved report.json (HTML, JUnit, Markdown), optionally against a baseline.
    #[command(after_help = ExitCode::HELP)]
    Report(ReportArgs),
    /// Merge reports of shards of one run into one, with exact percentiles.
    #[command(after_help = ExitCode::HELP)]
    Merge(MergeArgs),
    /// Apply CPU, memory, kill and command faults on this host on request (bearer token, leases).
    Agent(AgentArgs),
    /// (internal) the CPU or memory pressure child process of a `cpu`/`memory` fault.
    #[command(hide = true)]
    Stress {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Remove what a killed run left on Toxiproxy servers (from its rollback journal).
    #[command(after_help = ExitCode::HELP)]
    Rollback(RollbackArgs),
    /// Print the JSON Schema of experiment or suite files (for editors) or of report.json, or the YAML reference.
    Schema(SchemaArgs),
    /// Write a commented starter experiment from a template.
    #[command(after_help = ExitCode::HELP)]
    Init(InitArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// Which file format `faultline schema` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    Experiment,
    Suite,
    /// `report.json`, as `--json` writes it.
    Report,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[arg(value_enum, default_value = "experiment")]
    pub kind: SchemaKind,
    /// Print the Markdown YAML reference (docs/reference.md) instead.
    #[arg(long)]
    pub markdown: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The template: latency, errors, outage, cpu, memory, breaker, canary, recovery.
    #[arg(long, short, value_name = "NAME", default_value = "latency")]
    pub template: String,
    /// Where to write the experiment.
    #[arg(value_name = "FILE", default_value = "experiment.yaml")]
    pub file: PathBuf,
    /// Overwrite FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Address of the admin API (Toxiproxy's default port is 8474).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8474")]
    pub admin: std::net::SocketAddr,
    /// Proxies to create at start: a JSON list of {name, listen, upstream, enabled}, as Toxiproxy's -config.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Allow a non-loopback --admin address (requires --token-file).
    #[arg(long)]
    pub allow_remote: bool,
    /// File holding the bearer token every admin request must carry.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Seed of the proxies' RNG (jitter, toxicity, HTTP fault probability).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Address of the agent API.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    pub listen: std::net::SocketAddr,
    /// File holding the bearer token every request must carry (required).
    #[arg(long, value_name = "FILE")]
    pub token_file: PathBuf,
    /// Allow a non-loopback --listen address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Lease of a fault whose request names none, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub lease: u64,
    /// Let a memory fault's `force` take more than 80% of this host's memory
    /// (or leave less than 1 GiB available). Without it `force` is refused.
    #[arg(long)]
    pub allow_force: bool,
    /// Refuse to start when --token-file is readable by group or others
    /// (without it: a warning).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A report.json written by `faultline run` or `faultline merge`.
    #[arg(value_name = "REPORT")]
    pub report: PathBuf,
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Write the (possibly baseline-checked) report as JSON here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Compare with an earlier report.json and add regression checks.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    #[arg(long, value_name = "ALPHA", default_value_t = 0.01)]
    pub baseline_alpha: f64,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Shard reports (report.json files) of the same experiments.
    #[arg(required = true, num_args = 2.., value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    /// Where to write the merged report.
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
}

/// `I/N` with 1 <= I <= N.
fn parse_shard(text: &str) -> Result<(u32, u32), String> {
    let (i, n) = text
        .split_once('/')
        .ok_or_else(|| format!("expected I/N such as 2/4, found `{text}`"))?;
    let i: u32 = i
        .trim()
        .parse()
        .map_err(|_| format!("`{i}` is not a whole number"))?;
    let n: u32 = n
        .trim()
        .parse()
        .map_err(|_| format!("`{n}` is not a whole number"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("shard {i}/{n}: need 1 <= I <= N"));
    }
    Ok((i, n))
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Rollback journal(s) of killed runs [default: every `rollback.json` under reports/].
    #[arg(long, value_name = "FILE")]
    pub journal: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Experiment or suite YAML files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Output folder [default: reports/<UTC timestamp>-<name>/].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// JSON report path, `-` for stdout [default: <out>/report.json].
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Only run experiments whose name matches this glob (`*`, `?`).
    #[arg(long, value_name = "NAME")]
    pub only: Option<String>,
    /// Only run experiments with this tag (repeatable: any of them).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Skip experiments with this tag (repeatable).
    #[arg(long = "skip-tag", value_name = "TAG")]
    pub skip_tags: Vec<String>,
    /// Stop after the first experiment that does not pass; the rest are reported as skipped.
    #[arg(long)]
    pub fail_fast: bool,
    /// Write JUnit XML here, `-` for stdout (one testsuite per experiment, one testcase per check).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the HTML report here [default: <out>/report.html].
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Write a Markdown summary here, `-` for stdout (also appended to $GITHUB_STEP_SUMMARY when set).
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
    /// Compare with an earlier report.json and add regression checks.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Significance level of the --baseline comparison.
    #[arg(long, value_name = "ALPHA", default_value_t = 0.01)]
    pub baseline_alpha: f64,
    /// Run shard I of N: drive 1/N of the configured load (merge the reports with `faultline merge`).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// No progress and no tables: only the final summary line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Game-day mode: ask before each phase that injects faults (`y` go, `s`
    /// skip its faults, `a` abort), wait at `pause: true` phases, and save
    /// `n <text>` lines as timestamped notes in the report.
    #[arg(long)]
    pub interactive: bool,
    /// Print the plan and check reachability instead of running (see `faultline plan`).
    #[arg(long)]
    pub dry_run: bool,
    /// Lift the load bounds (rate above 10M/s, more than 100k workers or in
    /// flight, phases over 24h). Fault bounds (pids, memory, cores) stay.
    #[arg(long)]
    pub force: bool,
    /// Allow experiments with `safety.environment: production` (they must
    /// also say `allow_production: true`).
    #[arg(long)]
    pub allow_production: bool,
    /// Seed of the run's RNG (request mix, jitter and fault
    /// probabilities) [default: random, printed and saved in the report].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Change a value of every experiment without editing the file
    /// (repeatable), validated like the file: `--set target.url=http://host:8080`,
    /// `--set phases.fault.duration=60s` (a phase by name or 0-based index),
    /// `--set load.rate=50`. VALUE is a YAML scalar.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = crate::config::Override::parse)]
    pub set: Vec<crate::config::Override>,
    /// Serve live Prometheus metrics of the run at http://ADDR/metrics
    /// (e.g. 127.0.0.1:9464; port 0 picks one, printed at start). A
    /// non-loopback address needs --token-file.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// File holding the bearer token every --metrics-listen request must carry.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// After the run, keep /metrics up until it has been scraped once more
    /// (only when it was scraped during the run), at most this long.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub metrics_linger: std::time::Duration,
    /// Push live metrics once a second with Prometheus remote write 1.0
    /// (e.g. http://127.0.0.1:9090/api/v1/write). A failing endpoint is
    /// reported once and never fails the run.
    #[arg(long, value_name = "URL")]
    pub prometheus_remote_write: Option<String>,
}

/// A duration such as `15s`, `500ms`, `1m`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| format!("`{text}`: {e} (e.g. 15s, 500ms)"))
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Lift the load bounds (rate above 10M/s, more than 100k workers or in
    /// flight, phases over 24h). Fault bounds (pids, memory, cores) stay.
    #[arg(long)]
    pub force: bool,
    /// Change a value of every experiment without editing the file
    /// (repeatable), validated like the file: `--set target.url=http://host:8080`,
    /// `--set phases.fault.duration=60s` (a phase by name or 0-based index),
    /// `--set load.rate=50`. VALUE is a YAML scalar.
    #[arg(long = "set", value_name = "PATH=VALUE", value_parser = crate::config::Override::parse)]
    pub set: Vec<crate::config::Override>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the demo's RNG (payments jitter, hop randomness, canary split).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Service time of `payments` per call.
    #[arg(long, value_name = "DURATION", default_value = "2ms")]
    pub payments_latency: String,
    /// Start with a deliberate defect (repeatable): no_breaker,
    /// breaker_never_closes, no_rollback, slow_rollback, flapping_rollback,
    /// no_timeout, no_ejection (with --failover).
    #[arg(long = "defect", value_name = "NAME")]
    pub defects: Vec<String>,
    /// v1 fails over to a backup payments instance (hop `payments-backup`),
    /// ejecting the failing primary after 2 failures for 2 s (nginx-style).
    #[arg(long)]
    pub failover: bool,
    /// Share of /checkout served by the canary v2: a percentage (10%) or a
    /// fraction (0.1).
    #[arg(long, value_name = "SHARE", default_value = "10%")]
    pub canary_weight: String,
    /// The frontend's port on 127.0.0.1 (0 picks a free one).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub port: u16,
}
