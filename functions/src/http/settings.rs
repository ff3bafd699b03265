//! A team's settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use teamform_core::model::Settings;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{BodyRefusals, Internal, Stale, Unauthenticated};
use super::error::ApiError;
use super::extract::{Body, Caller, IfMatch, TeamPath};
use super::{AppState, applied_response, etag, precondition};
use crate::openapi::schema::{self, Problem};
use crate::service::ServiceError;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

/// Settings outside their documented ranges are refused as the service
/// refuses them (422 `invalid_setting`), but before `If-Match` is looked at:
/// a stale version must not answer 412 to a body that could never apply.
pub(super) fn settings_in_range(index: usize, settings: &Settings) -> Result<(), ApiError> {
    teamform_core::change::check_settings(settings).map_err(|error| {
        ApiError::from(ServiceError::Change {
            index,
            action: "update_settings",
            error,
        })
    })
}

/// The team's settings.
#[utoipa::path(
    get,
    path = "/teams/{team}/settings",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath),
    responses(
        (status = 200, description = "The settings (needs `team.settings.read`)", body = Settings, headers(("ETag" = String, description = "The team's version"))),
        (status = 403, description = "`forbidden`: the caller lacks `team.settings.read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, Internal
    )
)]
async fn get_settings(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<Response, ApiError> {
    let (settings, version) = state.service.settings(&team, &who).await?;
    Ok((etag(version), Json(settings)).into_response())
}

/// Replaces the team's settings. Changing `require_2fa` needs
/// `team.security.manage`; the rest `team.settings.manage`.
#[utoipa::path(
    put,
    path = "/teams/{team}/settings",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, IfMatch),
    request_body = Settings,
    responses(
        (status = 200, description = "The settings were replaced", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.settings.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape), or a change the state refuses with its own code (`unknown_role`, `owner_role`, `single_role`, `owner_protected`, `invalid_setting`, `custom_roles_disabled`, `unknown_permission`, ...)", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, BodyRefusals, Stale, Internal
    )
)]
async fn put_settings(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IfMatch(expected): IfMatch,
    Body(body): Body<Settings>,
) -> Result<Response, ApiError> {
    settings_in_range(0, &body)?;
    let applied = state
        .service
        .set_settings(&team, &who, body, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}
