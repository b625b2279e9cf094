//! Structured logs (`tracing`) on stderr, off the console report's way.
//!
//! Quiet by default (warnings only); `-v` shows what happens (targets,
//! faults applied and removed, stop conditions), `-vv` the details (probe
//! observations, proxies). `FAULTLINE_LOG` takes a full filter
//! (`faultline=debug`, `faultline::faults=trace`) and wins over `-v`.

use tracing_subscriber::EnvFilter;

/// The environment variable holding a log filter.
pub const ENV: &str = "FAULTLINE_LOG";

/// Installs the subscriber once; later calls do nothing.
pub fn init(verbosity: u8) {
    let filter = std::env::var(ENV)
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            EnvFilter::new(match verbosity {
                0 => "warn",
                1 => "warn,faultline=info",
                _ => "info,faultline=debug",
            })
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}
