//! A team's settings.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use teamform_core::model::Settings;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{
    BodyRefusals, ChangeRefused, Internal, Stale, StateConflict, TargetNotFound, Unauthenticated,
};
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
        Unauthenticated, TargetNotFound, Internal
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
/// `team.security.manage`, changing `scim_provisioning` needs
/// `team.scim.manage`; the rest `team.settings.manage`.
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
        (status = 403, description = "`forbidden`: the caller lacks `team.settings.manage` (or `team.security.manage` for `require_2fa`, `team.scim.manage` for `scim_provisioning`); or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TargetNotFound, StateConflict, ChangeRefused, BodyRefusals, Stale, Internal
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
