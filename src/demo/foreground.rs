//! `faultline demo`: run the demo system in the foreground until a signal.

use tokio_util::sync::CancellationToken;

use super::{DemoError, DemoSystem};
use crate::config::model::DemoOptions;

/// Starts the demo (the frontend on 127.0.0.1:`frontend_port`, 0 for a free
/// port), prints its addresses and example commands to stdout, waits for
/// Ctrl-C or SIGTERM, then shuts down and waits for every task.
pub async fn run_foreground(
    opts: DemoOptions,
    seed: u64,
    frontend_port: u16,
) -> Result<(), DemoError> {
    let shutdown = CancellationToken::new();
    let demo = DemoSystem::start_on(&opts, seed, frontend_port, shutdown.clone()).await?;
    crate::outln!("{}", demo.describe());
    // Even if listening for signals fails, stop what was started before
    // reporting it.
    let signal = wait_for_signal().await;
    crate::outln!("shutting down the demo system...");
    shutdown.cancel();
    demo.stopped().await;
    signal
}

async fn wait_for_signal() -> Result<(), DemoError> {
    crate::server::shutdown_signal()
        .await
        .map_err(DemoError::Signal)
}
