//! Proxy names and addresses as the admin API receives them: names that
//! fit in a URL path, `host:port` resolved (with a time limit) the way
//! Toxiproxy's Go listener reads it, and the stable per-name seed.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Addrs, ProxyDef, RegistryError};

/// How long a name lookup of a `host:port` may take before it is refused.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Names appear in paths, so one with `/` could never be addressed.
pub(super) fn check_name(name: &str) -> Result<(), RegistryError> {
    // Checked first: the error must not echo a 100 kB name back.
    if name.len() > crate::proxy::spec::MAX_NAME_BYTES {
        return Err(RegistryError::NameTooLong(name.len()));
    }
    if name.is_empty() || name.contains('/') {
        return Err(RegistryError::Name(name.to_string()));
    }
    Ok(())
}

pub(super) async fn resolve_def(def: &ProxyDef) -> Result<Addrs, RegistryError> {
    Ok(Addrs {
        listen: resolve("listen", &def.listen).await?,
        upstream: resolve("upstream", &def.upstream).await?,
        mode: def.mode,
    })
}

/// Resolves `host:port` (a literal address, a name, or Go's `:port` for
/// every interface) to one address, preferring IPv4 as Go's listener does
/// for `localhost`.
pub(super) async fn resolve(field: &'static str, value: &str) -> Result<SocketAddr, RegistryError> {
    let err = |reason: String| RegistryError::Address {
        field,
        value: value.to_string(),
        reason,
    };
    if let Ok(addr) = value.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let lookup = match value.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => value.to_string(),
    };
    if !lookup.contains(':') {
        return Err(err("expected `host:port`".into()));
    }
    let found = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host(lookup))
        .await
        .map_err(|_| err(format!("name lookup took longer than {RESOLVE_TIMEOUT:?}")))?
        .map_err(|e| err(format!("cannot resolve: {e}")))?;
    let addrs: Vec<SocketAddr> = found.collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| err("the name has no addresses".into()))
}

/// FNV-1a: a stable (across runs and platforms) hash of a proxy name, to
/// derive its seed. `DefaultHasher` is not guaranteed stable.
pub(super) fn fnv1a(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
