//! A team's roles: the catalog's system roles and the team's custom roles.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use teamform_core::model::CustomRole;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{
    BodyRefusals, ChangeRefused, Internal, Stale, StateConflict, TargetNotFound, Unauthenticated,
};
use super::error::ApiError;
use super::extract::{Body, Caller, IfMatch, NewRolePath, RolePath, TeamPath};
use super::{AppState, applied_response, etag, precondition};
use crate::openapi::schema::{self, Problem};
use crate::service::resources::RolesView;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles))
        .routes(routes!(put_role, delete_role))
}

/// The catalog's system roles and the team's custom roles.
#[utoipa::path(
    get,
    path = "/teams/{team}/roles",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath),
    responses(
        (status = 200, description = "The roles (needs `team.members.read`)", body = RolesView, headers(("ETag" = String, description = "The team's version"))),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.read`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TargetNotFound, Internal
    )
)]
async fn list_roles(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<Response, ApiError> {
    let (roles, version) = state.service.roles(&team, &who).await?;
    Ok((etag(version), Json(roles)).into_response())
}

/// Creates or replaces a custom role.
#[utoipa::path(
    put,
    path = "/teams/{team}/roles/{name}",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, RolePath, IfMatch),
    request_body = CustomRole,
    responses(
        (status = 200, description = "Created or replaced (needs `team.roles.manage`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.roles.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TargetNotFound, StateConflict, ChangeRefused, BodyRefusals, Stale, Internal
    )
)]
async fn put_role(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    NewRolePath(name): NewRolePath,
    IfMatch(expected): IfMatch,
    Body(body): Body<CustomRole>,
) -> Result<Response, ApiError> {
    let applied = state
        .service
        .put_role(&team, &who, name, body, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}

/// Deletes a custom role nobody holds.
#[utoipa::path(
    delete,
    path = "/teams/{team}/roles/{name}",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, RolePath, IfMatch),
    responses(
        (status = 200, description = "Deleted (needs `team.roles.manage`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`bad_if_match`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.roles.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TargetNotFound, StateConflict, Stale, Internal
    )
)]
async fn delete_role(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    RolePath(name): RolePath,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    let applied = state
        .service
        .delete_role(&team, &who, &name, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}
