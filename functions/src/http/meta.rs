//! The service itself and the caller: `/healthz`, `/catalog`,
//! `/openapi.json`, `/me`, `/me/teams`.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use teamform_core::Catalog;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::docs::{Internal, Unauthenticated};
use super::error::ApiError;
use super::extract::Caller;
use super::page::ListPage;
use crate::auth::PrincipalView;
use crate::openapi::__path_openapi_json;
use crate::openapi::openapi_json;
use crate::openapi::schema::{self, Problem};
use crate::service::lifecycle::Membership;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .routes(routes!(catalog))
        .routes(routes!(me))
        .routes(routes!(my_teams))
}

/// Liveness: the service answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses((status = 200, description = "The service is up", body = schema::Health))
)]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The deployment's catalog: its permissions and system roles.
///
/// Public: it takes no input and needs no credential.
#[utoipa::path(
    get,
    path = "/catalog",
    tag = "meta",
    responses((status = 200, description = "The catalog", body = Catalog))
)]
async fn catalog(State(state): State<AppState>) -> Json<Catalog> {
    Json(state.service.catalog().clone())
}

/// Who the caller is.
#[utoipa::path(
    get,
    path = "/me",
    tag = "me",
    security(("bearer" = []), ("gateway_jwt" = [])),
    responses(
        (status = 200, description = "The caller", body = schema::PrincipalView),
        Unauthenticated, Internal
    )
)]
async fn me(Caller(who): Caller) -> Json<PrincipalView> {
    Json(PrincipalView::from(&who))
}

/// The teams the caller belongs to.
#[utoipa::path(
    get,
    path = "/me/teams",
    tag = "me",
    security(("bearer" = []), ("gateway_jwt" = [])),
    responses(
        (status = 200, description = "The caller's teams", body = ListPage<Membership>),
        (status = 403, description = "`forbidden`: only people belong to teams", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, Internal
    )
)]
async fn my_teams(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Response, ApiError> {
    let teams = state.service.my_teams(&who).await?;
    Ok(Json(ListPage {
        items: teams,
        next_cursor: None,
    })
    .into_response())
}
