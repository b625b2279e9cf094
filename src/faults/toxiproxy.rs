//! A client for the Toxiproxy admin API (a real Toxiproxy or `faultline
//! proxy`), used for proxies declared with `toxiproxy: URL`.
//!
//! Why not the `toxiproxy_rust` crate here: it names every toxic
//! `<type>_<stream>` (so a run could not tell its own toxics from a
//! colleague's), panics when the server refuses a toxic, and pulls OpenSSL
//! through reqwest 0.11. The harness needs run-unique names, errors it can
//! report, and rustls; the test suite still uses `toxiproxy_rust` to prove
//! `faultline proxy` works with existing clients.

use crate::proxy::spec::ToxicJson;
use serde::Deserialize;
use std::time::Duration;

/// Per-request limit, so an unreachable server cannot hang a rollback.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ToxiproxyError {
    #[error("Toxiproxy at {url}: {message}")]
    Request { url: String, message: String },
    #[error("Toxiproxy at {url}: {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
}

/// A proxy as the admin API describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct ProxyInfo {
    pub name: String,
    pub listen: String,
    pub upstream: String,
    pub enabled: bool,
    #[serde(default)]
    pub toxics: Vec<ToxicJson>,
}

/// One Toxiproxy server.
#[derive(Debug, Clone)]
pub struct ToxiproxyClient {
    base: String,
    http: reqwest::Client,
}

impl ToxiproxyClient {
    pub fn new(url: &str) -> ToxiproxyClient {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("faultline/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        ToxiproxyClient {
            base: url.trim_end_matches('/').to_string(),
            http,
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ToxiproxyError> {
        let resp = req.send().await.map_err(|e| ToxiproxyError::Request {
            url: self.base.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or(body);
        Err(ToxiproxyError::Status {
            url: self.base.clone(),
            status: status.as_u16(),
            message,
        })
    }

    fn path(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `GET /proxies/{name}`.
    pub async fn proxy(&self, name: &str) -> Result<ProxyInfo, ToxiproxyError> {
        let resp = self
            .send(self.http.get(self.path(&format!("/proxies/{name}"))))
            .await?;
        resp.json().await.map_err(|e| ToxiproxyError::Request {
            url: self.base.clone(),
            message: format!("unexpected answer: {e}"),
        })
    }

    /// `POST /proxies/{name}/toxics`.
    pub async fn add_toxic(&self, proxy: &str, toxic: &ToxicJson) -> Result<(), ToxiproxyError> {
        let url = self.path(&format!("/proxies/{proxy}/toxics"));
        self.send(self.http.post(url).json(toxic)).await.map(|_| ())
    }

    /// `DELETE /proxies/{name}/toxics/{toxic}`; a toxic that is already gone
    /// counts as removed.
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), ToxiproxyError> {
        let url = self.path(&format!("/proxies/{proxy}/toxics/{toxic}"));
        match self.send(self.http.delete(url)).await {
            Ok(_) | Err(ToxiproxyError::Status { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Enables or disables a proxy (`POST /proxies/{name}`, which every
    /// Toxiproxy version accepts).
    pub async fn set_enabled(&self, proxy: &str, enabled: bool) -> Result<(), ToxiproxyError> {
        let url = self.path(&format!("/proxies/{proxy}"));
        let body = serde_json::json!({ "enabled": enabled });
        self.send(self.http.post(url).json(&body)).await.map(|_| ())
    }
}
