//! teamform-functions: the team service. One axum router (`http::app`) over a
//! `Store`, hosted by Lambda, by `teamform serve`, or in-process.

pub mod auth;
pub mod clock;
pub mod code;
pub mod events;
pub mod http;
pub mod mail;
pub mod openapi;
pub mod scim;
pub mod service;
pub mod store;
pub mod web;

#[cfg(feature = "aws")]
use axum::{extract::Request, middleware::Next, response::Response};
use teamform_core::Catalog;
#[cfg(feature = "aws")]
use tracing::Instrument;

/// The catalog a deployment runs with: `TEAMFORM_CATALOG` names a preset or
/// a YAML file; the `standard` preset otherwise.
pub fn catalog_from_env() -> Result<Catalog, CatalogError> {
    match std::env::var("TEAMFORM_CATALOG") {
        Ok(v) if !v.is_empty() => load_catalog(&v),
        _ => Ok(Catalog::standard()),
    }
}

/// A preset name, or a path to a catalog YAML file.
pub fn load_catalog(name_or_path: &str) -> Result<Catalog, CatalogError> {
    if let Some(c) = Catalog::preset(name_or_path) {
        return Ok(c);
    }
    let source = std::fs::read_to_string(name_or_path).map_err(|e| CatalogError::Unreadable {
        name: name_or_path.to_owned(),
        presets: teamform_core::catalog::PRESETS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", "),
        source: e,
    })?;
    Catalog::from_yaml(name_or_path, &source).map_err(CatalogError::Invalid)
}

/// A catalog that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog `{name}` is neither a preset ({presets}) nor a readable file: {source}")]
    Unreadable {
        name: String,
        presets: String,
        source: std::io::Error,
    },
    /// The file's problems, each at its line and column.
    #[error("{0}")]
    Invalid(teamform_core::yaml::Diagnostics),
}

/// JSON log lines on stdout, filtered by `RUST_LOG` (default `info`).
pub fn init_json_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .without_time()
        .try_init();
}

#[cfg(feature = "aws")]
/// Runs each request inside a span carrying the Lambda request id, so every
/// log line of the request names it.
pub async fn lambda_request_span(req: Request, next: Next) -> Response {
    let request_id = req
        .extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone())
        .unwrap_or_default();
    let span = tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %req.uri().path());
    async move {
        let res = next.run(req).await;
        tracing::info!(status = res.status().as_u16(), "handled");
        res
    }
    .instrument(span)
    .await
}

#[cfg(feature = "aws")]
/// Without `TEAMFORM_PUBLIC_URL`, the service learns the base of its links
/// from the first request API Gateway hands it: the domain the gateway
/// names (the API's own, or its custom domain) and the stage, never a header
/// a client could set.
pub async fn learn_public_url(
    axum::extract::State(service): axum::extract::State<std::sync::Arc<service::Service>>,
    req: Request,
    next: Next,
) -> Response {
    if service.public_url().is_empty()
        && let Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) =
            req.extensions()
                .get::<lambda_http::request::RequestContext>()
        && let Some(domain) = ctx.domain_name.as_deref().filter(|d| !d.is_empty())
    {
        let stage = ctx
            .stage
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "$default")
            .map(|s| format!("/{s}"))
            .unwrap_or_default();
        service.learn_public_url(format!("https://{domain}{stage}"));
    }
    next.run(req).await
}
