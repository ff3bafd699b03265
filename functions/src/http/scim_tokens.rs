//! SCIM tokens: the credential an identity provider uses on a team's
//! `/scim/v2/{team}` endpoints (see `crate::scim`). Their secrets are shown
//! once, when created.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use teamform_core::RoleName;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::docs::{
    BodyRefusals, IdempotencyKey, Internal, LacksPermission, TeamNotFound, Unauthenticated,
};
use super::error::ApiError;
use super::extract::{Body, Caller, IdPath, TeamPath};
use super::page::ListPage;
use crate::openapi::schema::Problem;
use crate::scim::tokens::ScimTokenView;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_scim_token, list_scim_tokens))
        .routes(routes!(revoke_scim_token))
}

/// A new SCIM token for a team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateScimToken {
    /// 1 to 100 characters.
    #[schema(example = "okta")]
    pub name: String,
    /// The role people provisioned through the token get until a group
    /// (role) membership says otherwise; never `owner`.
    #[schema(value_type = String, example = "viewer")]
    pub default_role: RoleName,
}

/// A SCIM token just made: its view and the `tfs_` secret, shown this once.
/// (The shape `credentials::Created<ScimTokenView>` writes.)
#[derive(ToSchema)]
#[allow(dead_code)] // describes a response body; never built
pub struct CreatedScimToken {
    id: String,
    name: String,
    #[schema(value_type = String, example = "viewer")]
    default_role: RoleName,
    #[schema(format = DateTime)]
    created_at: String,
    /// Who made it (`user:<email>`, `api-key:<id>`, ...).
    created_by: String,
    /// `tfs_` then the secret: the identity provider's bearer token; null in
    /// an `Idempotency-Key` replay.
    #[schema(required = true)]
    secret: Option<String>,
    /// Set in an `Idempotency-Key` replay instead of the secret.
    secret_note: Option<String>,
}

/// Creates a SCIM token for the team; its secret is shown this once.
#[utoipa::path(
    post,
    path = "/teams/{team}/scim-tokens",
    tag = "scim",
    security(("bearer" = [])),
    params(TeamPath, IdempotencyKey),
    request_body = CreateScimToken,
    responses(
        (status = 201, description = "The token and its `tfs_` secret (needs `team.scim.manage`); it holds the creator's permissions as they are now", body = CreatedScimToken),
        (status = 400, description = "`malformed_json`, `bad_request` or `bad_idempotency_key`: the body is not JSON, or the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.scim.manage`, or the default role grants permissions the caller does not hold", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; `idempotency_key_in_use`: a request with this Idempotency-Key is still running; or `team_closed`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (bad name, a body of the wrong shape), a role the team cannot grant (`unknown_role`, `owner_role`), or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, BodyRefusals, Internal
    )
)]
async fn create_scim_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    Body(body): Body<CreateScimToken>,
) -> Result<Response, ApiError> {
    let created = state
        .service
        .create_scim_token(&team, &who, &body.name, &body.default_role)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The team's SCIM tokens, without their secrets.
#[utoipa::path(
    get,
    path = "/teams/{team}/scim-tokens",
    tag = "scim",
    security(("bearer" = [])),
    params(TeamPath),
    responses(
        (status = 200, description = "Every SCIM token of the team, in one page (needs `team.scim.manage`)", body = ListPage<ScimTokenView>),
        Unauthenticated, LacksPermission, TeamNotFound, Internal
    )
)]
async fn list_scim_tokens(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<Response, ApiError> {
    let items = state.service.list_scim_tokens(&team, &who).await?;
    Ok(Json(ListPage {
        items,
        next_cursor: None,
    })
    .into_response())
}

/// Revokes a SCIM token: it stops working at once.
#[utoipa::path(
    delete,
    path = "/teams/{team}/scim-tokens/{id}",
    tag = "scim",
    security(("bearer" = [])),
    params(TeamPath, ("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "The token was revoked (needs `team.scim.manage`)"),
        (status = 404, description = "`not_found`: no such team or token, or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `team_closed`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, LacksPermission, Internal
    )
)]
async fn revoke_scim_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    state.service.revoke_scim_token(&team, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
