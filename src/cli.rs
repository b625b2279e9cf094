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
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run experiment or suite files and report the verdicts.
    #[command(after_help = ExitCode::HELP)]
    Run(RunArgs),
    /// Check files for errors without running anything.
    #[command(after_help = ExitCode::HELP)]
    Validate(FilesArgs),
    /// Show the experiments and phases the files would run.
    List(FilesArgs),
    /// Start the embedded demo system in the foreground (Ctrl-C to stop).
    Demo(DemoArgs),
    /// Serve fault proxies with a Toxiproxy-compatible admin API.
    Proxy(ProxyArgs),
    /// Remove what a killed run left on Toxiproxy servers (from its rollback journal).
    #[command(after_help = ExitCode::HELP)]
    Rollback(RollbackArgs),
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
    /// JSON report path [default: <out>/report.json].
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Only run experiments whose name matches this glob (`*`, `?`).
    #[arg(long, value_name = "NAME")]
    pub only: Option<String>,
    /// No progress and no tables: only the final summary line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Seed of the run's RNG (request mix, later jitter and fault
    /// probabilities) [default: random, printed and saved in the report].
    #[arg(long)]
    pub seed: Option<u64>,
}

#[derive(Debug, Args)]
pub struct FilesArgs {
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the demo's RNG (payments jitter).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Service time of `payments` per call.
    #[arg(long, value_name = "DURATION", default_value = "2ms")]
    pub payments_latency: String,
}
