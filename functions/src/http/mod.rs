//! The HTTP API: one axum `Router` for every host (Lambda, `teamform serve`,
//! in-process). Errors are `application/problem+json` with a stable `code`,
//! malformed input included; a 5xx says nothing internal to the client.
//!
//! `app` assembles the router from one module per resource; each handler's
//! `#[utoipa::path]` gives both its place in the router and its operation in
//! `GET /openapi.json`, so the two cannot drift apart. `error` holds the
//! problem+json type, `extract` what handlers take from a request.

mod audit;
pub mod docs;
pub mod error;
pub mod extract;
pub mod idempotency;
mod invitations;
mod keys;
mod members;
mod meta;
pub mod page;
mod roles;
mod scim_tokens;
mod settings;
mod teams;
mod transfer;

use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::{ApiError, FieldError};
pub(crate) use extract::{Authenticated, authenticate};
pub use extract::{Body, Caller, Params};

use crate::code;
use crate::openapi::ApiDoc;
use crate::service::{Applied, Service, ServiceError};

/// Largest request body accepted (Lambda's own payload limit is 6 MB).
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// Who may call without a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    /// Every request needs a credential (Lambda, `teamform serve`).
    Refused,
    /// Requests without a credential act as the local owner: only the
    /// in-process host of the CLI, which has no socket, sets this.
    LocalOwner,
}

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub anonymous: Anonymous,
    /// The OpenID Connect provider whose tokens sign people in, when the
    /// host is configured with one.
    pub oidc: Option<Arc<crate::auth::oidc::Verifier>>,
}

impl AppState {
    pub fn new(service: Arc<Service>, anonymous: Anonymous) -> Self {
        Self {
            service,
            anonymous,
            oidc: None,
        }
    }

    /// Verifies bearer JWTs and signs browsers in with this provider.
    pub fn with_oidc(mut self, verifier: crate::auth::oidc::Verifier) -> Self {
        self.oidc = Some(Arc::new(verifier));
        self
    }
}

/// Every route of the service with its OpenAPI description, one module per
/// resource.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(meta::routes())
        .merge(keys::routes())
        .merge(teams::routes())
        .merge(members::routes())
        .merge(invitations::routes())
        .merge(transfer::routes())
        .merge(roles::routes())
        .merge(settings::routes())
        .merge(audit::routes())
        .merge(scim_tokens::routes())
}

/// The router of the team service.
pub fn app(state: AppState) -> Router {
    Router::from(routes())
        .merge(crate::web::routes())
        .merge(crate::scim::http::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::idempotency::layer,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        // The one limit: `Json` would otherwise stop at axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(problem_only))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        // Outermost: every response, a replayed or refused one too, carries
        // its request id.
        .layer(axum::middleware::from_fn(
            crate::service::audit::request_context,
        ))
        .with_state(state)
}

/// Every error leaves as problem+json, also one made by a layer rather than a
/// handler (the body limit answers 413 in plain text, for instance).
async fn problem_only(res: Response) -> Response {
    // Pages answer their errors in HTML, for people.
    let is_problem = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/problem+json")
            || v.as_bytes().starts_with(b"text/html")
            // SCIM answers its errors in its own format (RFC 7644 3.12).
            || v.as_bytes().starts_with(b"application/scim+json")
    });
    if !res.status().is_client_error() && !res.status().is_server_error() || is_problem {
        return res;
    }
    let status = res.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => code::BODY_TOO_LARGE,
        StatusCode::NOT_FOUND => code::NOT_FOUND,
        StatusCode::METHOD_NOT_ALLOWED => code::METHOD_NOT_ALLOWED,
        s if s.is_server_error() => {
            return ApiError::internal("a layer failed the request").into_response();
        }
        _ => code::BAD_REQUEST,
    };
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("bodies are limited to {BODY_LIMIT} bytes"),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    ApiError::new(status, code, detail).into_response()
}

/// The router's fallback: no route has this path.
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code::NOT_FOUND, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD_NOT_ALLOWED,
        "this resource does not support that method",
    )
}

fn etag(version: u64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// Turns a conflict on an explicit `If-Match` into 412.
fn precondition(e: ServiceError, explicit: bool) -> ApiError {
    let mut err = ApiError::from(e);
    if explicit && err.code == code::VERSION_CONFLICT {
        err.status = StatusCode::PRECONDITION_FAILED;
    }
    err
}

fn applied_response(status: StatusCode, applied: Applied) -> Response {
    (status, etag(applied.version), Json(applied)).into_response()
}
