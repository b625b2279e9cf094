//! faultline: a chaos-engineering and resilience test harness.
//!
//! A run reads YAML experiments, drives HTTP load at a target, slices the load
//! stream into phases that inject faults, measures every request into HDR
//! histograms, judges the phases against thresholds and writes reports.
//!
//! The map of the crate, in the order data flows:
//!
//! - [`config`]: the YAML model — raw serde structs, validation with file:line:column
//!   diagnostics, and the validated [`config::model`] the rest consumes.
//! - [`load`]: the load generator — arrival schedules, the open and closed models, the HTTP client.
//! - [`metrics`]: request outcomes, the single recorder task, HDR histograms, 1-second windows.
//! - [`faults`]: the [`faults::Fault`] trait, the registry that builds faults from specs, and
//!   the rollback ledger.
//! - [`proxy`]: the TCP proxy hop that faults act on.
//! - [`probes`]: observations made beside the load (http, prometheus, command, tcp), each
//!   judged pass or fail, never an error.
//! - [`verify`]: thresholds and other checks, producing verdicts.
//! - [`agent`]: `faultline agent`, which applies CPU, memory, kill and command faults on
//!   another host on request, under leases.
//! - [`runner`]: targets, phases, signals and rollback; produces the journal of a run.
//! - [`report`]: console, JSON renderers of the journal.
//! - [`demo`]: the embedded demo system (frontend → payments hop → payments).
//! - [`server`]: the small HTTP/1.1 server loop the demo and the admin API run on.
//! - [`exit`]: the documented process exit codes.
//! - [`stdio`]: console output that never panics on a closed pipe.
//! - [`bounds`]: the limits on fault and load parameters (pids, memory, cores, rate, durations),
//!   shared by validation, `plan`, the agent and the faults.
//! - [`authoring`]: the starter experiments of `faultline init`.
//! - [`cli`], [`app`]: the command line and the commands behind it (`main.rs` only calls them).

pub mod agent;
pub mod app;
pub mod authoring;
pub mod bounds;
pub mod cli;
pub mod config;
pub mod demo;
pub mod exit;
pub mod faults;
pub mod glob;
pub mod journal;
pub mod load;
pub mod logging;
pub mod metrics;
pub mod probes;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod server;
pub mod stdio;
pub mod verify;
