//! `faultline agent`: applies CPU, memory, kill and command faults on the
//! host it runs on, for a harness on another machine.
//!
//! The harness asks over a small authenticated JSON API (`openapi-agent.yaml`
//! at the repository root) and holds every fault on a *lease*: it renews the
//! lease while the phase runs, and the agent removes any fault whose lease
//! ran out. A harness that crashes, is killed or loses the network therefore
//! cannot leave a host degraded for longer than one lease.
//!
//! - `leases`: [`AgentState`], the table of applied faults and their leases,
//!   and the background task that removes expired ones.
//! - `server`: the HTTP API and its guards — [`serve_agent`].
//! - the fault specs, the API's bodies and the harness-side client live in
//!   [`crate::faults::remote`], shared with the harness.
//! - this file: [`AgentOptions`] and [`run_agent`], the foreground command.

mod leases;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::faults::remote::client::{AgentClient, AgentClientError, AgentFault};
pub use crate::faults::remote::spec::{describe, kind, validate, SpecError};
pub use crate::faults::remote::wire::{ApplyRequest, FaultInfo, FaultList, Health, RenewRequest};
pub use leases::{AgentState, MAX_LEASE, REAP_INTERVAL, REMOVE_TIMEOUT};
pub use server::{serve_agent, MAX_BODY};

/// The lease a fault gets when the request names none.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// What `faultline agent` was asked to do (the CLI flags, parsed).
#[derive(Clone)]
pub struct AgentOptions {
    /// Where the API listens. A non-loopback address needs `allow_remote`.
    pub listen: SocketAddr,
    /// The bearer token every request must carry (surrounding whitespace is
    /// ignored, so a token file may end with a newline). Required: this API
    /// can kill processes and run shell commands.
    pub token: String,
    /// Permit a non-loopback `listen` address.
    pub allow_remote: bool,
    /// The lease of a fault whose request names none ([`DEFAULT_LEASE`]).
    pub default_lease: Duration,
    /// `--allow-force`: a memory spec's `force` may lift the host's bound.
    pub allow_force: bool,
}

impl std::fmt::Debug for AgentOptions {
    /// Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentOptions")
            .field("listen", &self.listen)
            .field("token", &"<redacted>")
            .field("allow_remote", &self.allow_remote)
            .field("default_lease", &self.default_lease)
            .field("allow_force", &self.allow_force)
            .finish()
    }
}

/// The shortest token the agent accepts.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Why `faultline agent` could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(
        "refusing to serve the agent API on {addr}: it is not a loopback address, and the agent \
         runs commands and kills processes for whoever holds the token; to do it anyway pass \
         --allow-remote"
    )]
    RemoteNotAllowed { addr: SocketAddr },
    #[error("the agent token is empty: every request must carry a bearer token")]
    EmptyToken,
    #[error("the agent token is {len} bytes; it must be at least {MIN_TOKEN_BYTES} (e.g. `openssl rand -hex 16`)")]
    ShortToken { len: usize },
    #[error("the default lease must be between 1 ms and {max:?}, got {got:?}")]
    BadLease { got: Duration, max: Duration },
    #[error("cannot listen on {addr} for the agent API")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen for SIGINT/SIGTERM")]
    Signal(#[source] std::io::Error),
}

impl AgentError {
    /// Whether the user's input is at fault (flags, token): exit code 2 rather than 4.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            AgentError::RemoteNotAllowed { .. }
                | AgentError::EmptyToken
                | AgentError::ShortToken { .. }
                | AgentError::BadLease { .. }
        )
    }
}

/// Checks the options and returns the token to enforce.
fn checked_token(opts: &AgentOptions) -> Result<String, AgentError> {
    let token = opts.token.trim();
    if token.is_empty() {
        return Err(AgentError::EmptyToken);
    }
    // A token is the only thing between the network and a root shell on
    // this host: short ones are guessable.
    if token.len() < MIN_TOKEN_BYTES {
        return Err(AgentError::ShortToken { len: token.len() });
    }
    if !opts.listen.ip().is_loopback() && !opts.allow_remote {
        return Err(AgentError::RemoteNotAllowed { addr: opts.listen });
    }
    if opts.default_lease < Duration::from_millis(1) || opts.default_lease > MAX_LEASE {
        return Err(AgentError::BadLease {
            got: opts.default_lease,
            max: MAX_LEASE,
        });
    }
    Ok(token.to_string())
}

/// Runs `faultline agent` in the foreground: serves the API, prints its
/// address to stdout, and on SIGINT/SIGTERM stops serving, removes every
/// fault it holds and waits for every task before returning.
pub async fn run_agent(opts: AgentOptions) -> Result<(), AgentError> {
    let token = checked_token(&opts)?;
    let listener = TcpListener::bind(opts.listen)
        .await
        .map_err(|source| AgentError::Bind {
            addr: opts.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AgentError::Bind {
        addr: opts.listen,
        source,
    })?;

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let state =
        Arc::new(AgentState::new(token, opts.default_lease).with_allow_force(opts.allow_force));
    crate::outln!("faultline agent: API on http://{addr} (every request needs `Authorization: Bearer <token>`)");
    crate::outln!(
        "faultline agent: faults not renewed within their lease (default {:?}) are removed",
        opts.default_lease
    );
    let server = {
        let (shutdown, connections) = (shutdown.clone(), tracker.clone());
        async move { serve_agent(listener, state, shutdown, &connections).await }
    };
    tracker.spawn(server);

    // Whatever happens to the signal listener, remove the faults before
    // reporting it.
    let signal = crate::server::shutdown_signal()
        .await
        .map_err(AgentError::Signal);
    crate::outln!("faultline agent: stopping, removing every fault");
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    crate::outln!("faultline agent: stopped");
    signal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(listen: &str, allow_remote: bool, token: &str) -> AgentOptions {
        AgentOptions {
            listen: listen.parse().expect("addr"),
            token: token.into(),
            allow_remote,
            default_lease: DEFAULT_LEASE,
            allow_force: false,
        }
    }

    #[test]
    fn a_loopback_agent_needs_only_a_token() {
        assert_eq!(
            checked_token(&opts("127.0.0.1:7411", false, "0123456789abcdef\n")).expect("ok"),
            "0123456789abcdef"
        );
        let err = checked_token(&opts("127.0.0.1:7411", false, "x")).expect_err("short");
        assert!(matches!(err, AgentError::ShortToken { len: 1 }), "{err}");
        assert!(err.is_invalid_input());
        let err = checked_token(&opts("127.0.0.1:7411", false, " \n")).expect_err("empty");
        assert!(matches!(err, AgentError::EmptyToken));
        assert!(err.is_invalid_input());
    }

    #[test]
    fn a_remote_agent_needs_allow_remote() {
        let err =
            checked_token(&opts("0.0.0.0:7411", false, "0123456789abcdef")).expect_err("refused");
        assert!(matches!(err, AgentError::RemoteNotAllowed { .. }), "{err}");
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        assert!(checked_token(&opts("0.0.0.0:7411", true, "0123456789abcdef")).is_ok());
    }

    #[test]
    fn a_zero_default_lease_is_refused() {
        let mut o = opts("127.0.0.1:7411", false, "0123456789abcdef");
        o.default_lease = Duration::ZERO;
        assert!(matches!(
            checked_token(&o),
            Err(AgentError::BadLease { .. })
        ));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let o = opts("127.0.0.1:7411", false, "s3cret");
        assert!(!format!("{o:?}").contains("s3cret"));
    }
}
