//! A team's roles: the catalog's system roles and the team's custom roles.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use teamform_core::RoleName;
use teamform_core::model::CustomRole;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, field};
use super::extract::{Body, Caller, IfMatch, RolePath, TeamPath};
use super::{AppState, applied_response, etag, precondition};
use crate::openapi::schema::{self, Problem};

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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$")),
    responses(
        (status = 200, description = "The roles (needs `team.members.read`)", body = schema::RolesView, headers(("ETag" = String, description = "The team's version"))),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("name" = String, Path, description = "The custom role's name", example = "release-manager"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    request_body = schema::CustomRole,
    responses(
        (status = 200, description = "Created or replaced (needs `team.roles.manage`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.roles.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape), or a change the state refuses with its own code (`unknown_role`, `owner_role`, `single_role`, `owner_protected`, `invalid_setting`, `custom_roles_disabled`, `unknown_permission`, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn put_role(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    Path((_team, name)): Path<(String, String)>,
    IfMatch(expected): IfMatch,
    Body(body): Body<CustomRole>,
) -> Result<Response, ApiError> {
    let name = RoleName::parse(&name)
        .map_err(|e| ApiError::validation("bad role name", vec![field("name", e)]))?;
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("name" = String, Path, description = "The custom role's name", example = "release-manager"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    responses(
        (status = 200, description = "Deleted (needs `team.roles.manage`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`bad_if_match`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.roles.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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
