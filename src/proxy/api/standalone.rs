//! `faultline proxy`: the admin API and its proxies in the foreground until
//! SIGINT/SIGTERM, like the `toxiproxy-server` binary.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::ApiError;
use super::json::{self, ProxyIn};
use super::{serve_admin, AdminAuth, AdminOptions};
use crate::proxy::registry::{ProxyDef, ProxyRegistry, RegistryError};

/// Why `faultline proxy` could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "refusing to serve the admin API on {addr}: it is not a loopback address, so anyone who \
         can reach it could reconfigure every proxy; to do it anyway pass --allow-remote \
         together with --token-file"
    )]
    RemoteNotAllowed { addr: SocketAddr },
    #[error(
        "--allow-remote needs --token-file: without a token the admin API on {addr} would be \
         open to anyone who can reach it"
    )]
    RemoteWithoutToken { addr: SocketAddr },
    #[error("the admin token is empty")]
    EmptyToken,
    #[error("cannot listen on {addr} for the admin API")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the proxy config {}", path.display())]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: crate::bounds::ReadFileError,
    },
    #[error(
        "proxy config {}: expected a JSON list of {{\"name\", \"listen\", \"upstream\"}} objects \
         (YAML is not read here)",
        path.display()
    )]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("proxy config {}: {source}", path.display())]
    ConfigProxy { path: PathBuf, source: ApiError },
    #[error("proxy config {}: cannot create the proxies", path.display())]
    ConfigApply {
        path: PathBuf,
        #[source]
        source: RegistryError,
    },
    #[error("cannot listen for SIGINT/SIGTERM")]
    Signal(#[source] std::io::Error),
}

impl AdminError {
    /// Whether the user's input is at fault (flags, token, config file
    /// contents): exit code 2 rather than 4.
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            AdminError::RemoteNotAllowed { .. }
                | AdminError::RemoteWithoutToken { .. }
                | AdminError::EmptyToken
                | AdminError::ConfigRead { .. }
                | AdminError::ConfigParse { .. }
                | AdminError::ConfigProxy { .. }
        )
    }
}

/// Runs `faultline proxy`: checks the exposure rules, creates the proxies of
/// `--config`, serves the admin API, prints the addresses to stdout, and on
/// SIGINT/SIGTERM stops every proxy and waits for every task.
pub async fn run_standalone(opts: AdminOptions) -> Result<(), AdminError> {
    let auth = admin_auth(&opts)?;
    let defs = match &opts.config {
        Some(path) => load_config(path).await?,
        None => Vec::new(),
    };
    let listener = TcpListener::bind(opts.admin)
        .await
        .map_err(|source| AdminError::Bind {
            addr: opts.admin,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| AdminError::Bind {
        addr: opts.admin,
        source,
    })?;

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let registry = Arc::new(ProxyRegistry::new(
        opts.seed,
        shutdown.clone(),
        tracker.clone(),
    ));
    if let (Some(path), false) = (&opts.config, defs.is_empty()) {
        if let Err(source) = registry.populate(defs).await {
            // populate undid its own steps; nothing else was started.
            shutdown.cancel();
            tracker.close();
            tracker.wait().await;
            return Err(AdminError::ConfigApply {
                path: path.clone(),
                source,
            });
        }
    }

    crate::outln!("faultline proxy: admin API on http://{addr}");
    if matches!(auth, AdminAuth::Bearer(_)) {
        crate::outln!("faultline proxy: every request needs `Authorization: Bearer <token>`");
    }
    for info in registry.list().await {
        crate::outln!(
            "faultline proxy: proxy {} on {} -> {} ({}{})",
            info.name,
            info.listen,
            info.upstream,
            json::mode_name(info.mode),
            if info.enabled { "" } else { ", disabled" },
        );
    }

    let server = {
        let (registry, shutdown, connections) =
            (Arc::clone(&registry), shutdown.clone(), tracker.clone());
        async move { serve_admin(listener, registry, auth, shutdown, &connections).await }
    };
    tracker.spawn(server);

    // Whatever happens to the signal listener, stop what was started before
    // reporting it.
    let signal = wait_for_signal().await;
    crate::outln!("faultline proxy: stopping");
    shutdown.cancel();
    registry.shutdown().await;
    tracker.close();
    tracker.wait().await;
    signal
}

/// The exposure rules: a loopback admin address needs nothing; any other
/// needs `allow_remote` and a token. A token is always enforced when given.
fn admin_auth(opts: &AdminOptions) -> Result<AdminAuth, AdminError> {
    let token = match opts.token.as_deref().map(str::trim) {
        Some("") => return Err(AdminError::EmptyToken),
        Some(t) => Some(t.to_string()),
        None => None,
    };
    if !opts.admin.ip().is_loopback() {
        if !opts.allow_remote {
            return Err(AdminError::RemoteNotAllowed { addr: opts.admin });
        }
        if token.is_none() {
            return Err(AdminError::RemoteWithoutToken { addr: opts.admin });
        }
    }
    Ok(token.map_or(AdminAuth::None, AdminAuth::Bearer))
}

/// Reads Toxiproxy's `-config` format: a JSON list of
/// `{"name", "listen", "upstream", "enabled"?, "mode"?}`.
/// Reads `--config`: a regular file no larger than an admin request body
/// ([`crate::server::MAX_BODY`]: it holds what `POST /populate` takes).
async fn load_config(path: &Path) -> Result<Vec<ProxyDef>, AdminError> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        crate::bounds::read_regular(&owned, crate::server::MAX_BODY as u64)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e).into()));
    let text = read.map_err(|source| AdminError::ConfigRead {
        path: path.to_path_buf(),
        source,
    })?;
    parse_config(&text).map_err(|e| match e {
        ConfigError::Json(source) => AdminError::ConfigParse {
            path: path.to_path_buf(),
            source,
        },
        ConfigError::Proxy(source) => AdminError::ConfigProxy {
            path: path.to_path_buf(),
            source,
        },
    })
}

enum ConfigError {
    Json(serde_json::Error),
    Proxy(ApiError),
}

fn parse_config(text: &[u8]) -> Result<Vec<ProxyDef>, ConfigError> {
    // The shape first, for a clear "not a JSON list" message; then each proxy.
    serde_json::from_slice::<Vec<serde_json::Value>>(text).map_err(ConfigError::Json)?;
    let list: Vec<ProxyIn> = json::parse_list(text).map_err(ConfigError::Proxy)?;
    list.into_iter()
        .enumerate()
        .map(|(i, p)| p.into_def(Some(i + 1)).map_err(ConfigError::Proxy))
        .collect()
}

async fn wait_for_signal() -> Result<(), AdminError> {
    crate::server::shutdown_signal()
        .await
        .map_err(AdminError::Signal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::ProxyMode;

    fn opts(admin: &str, allow_remote: bool, token: Option<&str>) -> AdminOptions {
        AdminOptions {
            admin: admin.parse().expect("addr"),
            config: None,
            allow_remote,
            token: token.map(str::to_string),
            seed: 0,
        }
    }

    #[test]
    fn a_loopback_admin_address_needs_no_token() {
        assert_eq!(
            admin_auth(&opts("127.0.0.1:8474", false, None)).expect("ok"),
            AdminAuth::None
        );
        assert_eq!(
            admin_auth(&opts("[::1]:8474", false, Some("t\n"))).expect("ok"),
            AdminAuth::Bearer("t".into())
        );
    }

    #[test]
    fn a_remote_admin_address_needs_allow_remote_and_a_token() {
        let err = admin_auth(&opts("0.0.0.0:8474", false, Some("t"))).expect_err("refused");
        assert!(matches!(err, AdminError::RemoteNotAllowed { .. }), "{err}");
        assert!(err.to_string().contains("--allow-remote"), "{err}");
        let err = admin_auth(&opts("10.0.0.5:8474", true, None)).expect_err("refused");
        assert!(
            matches!(err, AdminError::RemoteWithoutToken { .. }),
            "{err}"
        );
        assert_eq!(
            admin_auth(&opts("0.0.0.0:8474", true, Some("t"))).expect("ok"),
            AdminAuth::Bearer("t".into())
        );
        let err = admin_auth(&opts("127.0.0.1:8474", false, Some("  \n"))).expect_err("empty");
        assert!(matches!(err, AdminError::EmptyToken));
    }

    #[test]
    fn the_config_file_is_toxiproxys_json_list() {
        let defs = parse_config(
            br#"[{"name": "redis", "listen": "127.0.0.1:26379", "upstream": "127.0.0.1:6379"},
                 {"name": "web", "upstream": "localhost:80", "enabled": false, "mode": "http"}]"#,
        )
        .unwrap_or_else(|_| panic!("valid config"));
        assert_eq!(defs.len(), 2);
        assert_eq!(defs[0].listen, "127.0.0.1:26379");
        assert!(!defs[1].enabled);
        assert_eq!(defs[1].mode, ProxyMode::Http);

        assert!(matches!(
            parse_config(b"proxies:\n - name: x"),
            Err(ConfigError::Json(_))
        ));
        match parse_config(br#"[{"name": "x"}]"#) {
            Err(ConfigError::Proxy(e)) => {
                assert_eq!(e.message, "missing required field: upstream at proxy 1")
            }
            _ => panic!("a proxy without upstream is refused"),
        }
    }
}
