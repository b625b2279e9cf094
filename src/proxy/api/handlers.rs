//! One `match` arm per [`Action`]: parse the body, ask the registry, shape the answer.
//!
//! Toxiproxy's order of checks is kept where a client could tell: the proxy
//! is looked up before the body is parsed, so an unknown proxy is a 404
//! whatever the body holds.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::StatusCode;
use serde::Serialize;

use super::error::ApiError;
use super::json::{self, ProxyIn, ProxyOut, ProxyUpdateIn};
use super::routes::Action;
use crate::proxy::registry::ProxyRegistry;
use crate::proxy::spec::{ToxicJson, ToxicSpec};
use crate::proxy::{ProxyMode, ToxicError};

/// A successful answer: a status and a JSON body (`None` for 204).
///
/// The body is serialised from the response structs directly (not through
/// `serde_json::Value`, whose maps sort their keys) so fields keep
/// Toxiproxy's order: `name`, `listen`, `upstream`, `enabled`, `toxics`.
#[derive(Debug, PartialEq)]
pub(super) struct Reply {
    pub status: StatusCode,
    pub body: Option<String>,
    /// JSON but for `/metrics`.
    pub content_type: &'static str,
}

impl Reply {
    fn ok(body: impl Serialize) -> Reply {
        Reply::with(StatusCode::OK, body)
    }

    fn created(body: impl Serialize) -> Reply {
        Reply::with(StatusCode::CREATED, body)
    }

    fn with(status: StatusCode, body: impl Serialize) -> Reply {
        // Every response model here is plain data (strings, numbers, maps
        // with string keys), for which serde_json cannot fail.
        let text = serde_json::to_string(&body).unwrap_or_else(|_| "null".into());
        Reply {
            status,
            body: Some(text),
            content_type: "application/json",
        }
    }

    fn no_content() -> Reply {
        Reply {
            status: StatusCode::NO_CONTENT,
            body: None,
            content_type: "application/json",
        }
    }
}

/// `GET /version`: Toxiproxy 2.7+'s shape, plus who answers.
#[derive(Serialize)]
struct Version {
    version: &'static str,
    server: &'static str,
}

/// `POST /populate`'s answer.
#[derive(Serialize)]
struct Populated {
    proxies: Vec<ProxyOut>,
}

/// Runs one action against the registry.
pub(super) async fn dispatch(
    registry: &ProxyRegistry,
    action: Action,
    body: Bytes,
) -> Result<Reply, ApiError> {
    match action {
        Action::Metrics => Ok(Reply {
            status: StatusCode::OK,
            body: Some(super::metrics::render(&registry.list().await)),
            content_type: crate::metrics::export::text::CONTENT_TYPE,
        }),
        Action::Version => Ok(Reply::ok(Version {
            version: env!("CARGO_PKG_VERSION"),
            server: "faultline",
        })),
        Action::Reset => {
            registry.reset().await?;
            Ok(Reply::no_content())
        }
        Action::ListProxies => {
            let all: BTreeMap<String, ProxyOut> = registry
                .list()
                .await
                .into_iter()
                .map(|info| (info.name.clone(), ProxyOut::from(info)))
                .collect();
            Ok(Reply::ok(all))
        }
        Action::CreateProxy => {
            let def = json::parse_object::<ProxyIn>(&body)?.into_def(None)?;
            let info = registry.create(def).await?;
            Ok(Reply::created(ProxyOut::from(info)))
        }
        Action::Populate => {
            let list: Vec<ProxyIn> = json::parse_list(&body)?;
            let defs = list
                .into_iter()
                .enumerate()
                .map(|(i, p)| p.into_def(Some(i + 1)))
                .collect::<Result<Vec<_>, _>>()?;
            let infos = registry.populate(defs).await?;
            let proxies = infos.into_iter().map(ProxyOut::from).collect();
            Ok(Reply::created(Populated { proxies }))
        }
        Action::ShowProxy(name) => {
            let info = registry.get(&name).await?;
            Ok(Reply::ok(ProxyOut::from(info)))
        }
        Action::UpdateProxy(name) => {
            // 404 before a body error, as Toxiproxy.
            registry.get(&name).await?;
            let patch: ProxyUpdateIn = json::parse_object(&body)?;
            let info = registry.update(&name, patch.into()).await?;
            Ok(Reply::ok(ProxyOut::from(info)))
        }
        Action::DeleteProxy(name) => {
            registry.delete(&name).await?;
            Ok(Reply::no_content())
        }
        Action::ListToxics(name) => {
            let toxics = registry.with_proxy(&name, |p| p.toxics()).await?;
            let toxics: Vec<ToxicJson> = toxics.iter().map(ToxicSpec::to_json).collect();
            Ok(Reply::ok(toxics))
        }
        Action::CreateToxic(name) => {
            let spec = registry
                .with_proxy(&name, |p| -> Result<_, ApiError> {
                    let spec = json::new_toxic(&body)?;
                    p.add_toxic(spec.clone())?;
                    Ok(spec)
                })
                .await??;
            // 200, not 201: Toxiproxy's answer, which clients check for.
            Ok(Reply::ok(spec.to_json()))
        }
        Action::ShowToxic(name, toxic) => {
            let spec = registry
                .with_proxy(&name, |p| p.toxics().into_iter().find(|t| t.name == toxic))
                .await?
                .ok_or_else(ApiError::toxic_not_found)?;
            Ok(Reply::ok(spec.to_json()))
        }
        Action::UpdateToxic(name, toxic) => {
            let spec = registry
                .with_proxy(&name, |p| -> Result<_, ApiError> {
                    let current = p
                        .toxics()
                        .into_iter()
                        .find(|t| t.name == toxic)
                        .ok_or_else(ApiError::toxic_not_found)?;
                    let spec = json::updated_toxic(&current, &body)?;
                    p.update_toxic(&toxic, spec.clone())?;
                    Ok(spec)
                })
                .await??;
            Ok(Reply::ok(spec.to_json()))
        }
        Action::DeleteToxic(name, toxic) => {
            registry
                .with_proxy(&name, |p| p.remove_toxic(&toxic))
                .await?
                .map_err(ApiError::from)?;
            Ok(Reply::no_content())
        }
        Action::ListHttpFaults(name) => {
            let faults = registry.with_proxy(&name, |p| p.http_faults()).await?;
            Ok(Reply::ok(faults))
        }
        Action::CreateHttpFault(name) => {
            let fault = registry
                .with_proxy(&name, |p| -> Result<_, ApiError> {
                    if p.mode() != ProxyMode::Http {
                        return Err(not_http(&name));
                    }
                    let fault = json::new_http_fault(&body)?;
                    p.add_http_fault(fault.clone()).map_err(fault_error)?;
                    Ok(fault)
                })
                .await??;
            Ok(Reply::ok(fault))
        }
        Action::ShowHttpFault(name, fault) => {
            let found = registry
                .with_proxy(&name, |p| {
                    p.http_faults().into_iter().find(|f| f.name == fault)
                })
                .await?
                .ok_or_else(fault_not_found)?;
            Ok(Reply::ok(found))
        }
        Action::DeleteHttpFault(name, fault) => {
            registry
                .with_proxy(&name, |p| p.remove_http_fault(&fault))
                .await?
                .map_err(fault_error)?;
            Ok(Reply::no_content())
        }
    }
}

fn not_http(name: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        format!("proxy `{name}` is not in http mode: HTTP faults need a proxy created with \"mode\": \"http\""),
    )
}

fn fault_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "http fault not found")
}

/// Toxic errors worded for HTTP faults.
fn fault_error(e: ToxicError) -> ApiError {
    match e {
        ToxicError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "http fault already exists"),
        ToxicError::NotFound(_) => fault_not_found(),
        other => other.into(),
    }
}
