//! Credentials: a team's API keys and a person's personal access tokens.
//! Their secrets are shown once, when created.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use teamform_core::Timestamp;
use teamform_core::model::Roles;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::docs::{
    BodyRefusals, IdempotencyKey, Internal, LacksPermission, Stale, TeamNotFound, Unauthenticated,
};
use super::error::ApiError;
use super::extract::{Body, Caller, IdPath, IfMatch, TeamPath};
use super::page::ListPage;
use super::precondition;
use crate::auth::credentials::{ApiKeyView, TokenView};
use crate::openapi::schema::{self, Problem};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(delete_token))
}

/// A new API key for a team.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// 1 to 100 characters.
    #[schema(example = "ci")]
    pub name: String,
    /// Roles of the team; never `owner`, and nothing beyond the caller's own permissions.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["viewer"]))]
    pub roles: Roles,
    /// Permissions the key holds directly, besides its roles; `*` stands for
    /// every permission the caller holds (a pipeline key that can apply a
    /// whole team.yaml). Never more than the caller holds; ownership is never
    /// a permission a key can hold.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!([]))]
    pub permissions: Vec<String>,
    /// When the key stops working (RFC 3339, in the future); never by default.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

/// Creates an API key for the team; its secret is shown this once.
#[utoipa::path(
    post,
    path = "/teams/{team}/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(TeamPath, IdempotencyKey, IfMatch),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "The key and its `tfk_` secret (needs `team.api_keys.manage`)", body = schema::CreatedApiKey),
        (status = 400, description = "`malformed_json`, `bad_request`, `bad_if_match` or `bad_idempotency_key`: the body is not JSON, `If-Match` is not a version, or the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.api_keys.manage`, or the roles grant permissions the caller does not hold", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (bad name, expiry in the past, or a body of the wrong shape), a role the team cannot grant (`unknown_role`, `owner_role`, `no_roles`, ...), or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, BodyRefusals, Stale, Internal
    )
)]
async fn create_api_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IfMatch(expected): IfMatch,
    Body(body): Body<CreateApiKey>,
) -> Result<Response, ApiError> {
    let created = state
        .service
        .create_api_key(
            &team,
            &who,
            &body.name,
            &body.roles,
            &body.permissions,
            body.expires_at,
            expected,
        )
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The team's API keys, without their secrets.
#[utoipa::path(
    get,
    path = "/teams/{team}/api-keys",
    tag = "api-keys",
    security(("bearer" = [])),
    params(TeamPath),
    responses(
        (status = 200, description = "Every key of the team, in one page (needs `team.api_keys.manage`)", body = ListPage<ApiKeyView>),
        Unauthenticated, LacksPermission, TeamNotFound, Internal
    )
)]
async fn list_api_keys(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<Response, ApiError> {
    let keys = state.service.list_api_keys(&team, &who).await?;
    Ok(Json(ListPage {
        items: keys,
        next_cursor: None,
    })
    .into_response())
}

/// Revokes an API key: it stops working at once.
#[utoipa::path(
    delete,
    path = "/teams/{team}/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(TeamPath, ("id" = String, Path, description = "The key's id"), IfMatch),
    responses(
        (status = 204, description = "The key was revoked (needs `team.api_keys.manage`)"),
        (status = 400, description = "`bad_if_match`: `If-Match` is not a version", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or key, or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, LacksPermission, Stale, Internal
    )
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IdPath(id): IdPath,
    IfMatch(expected): IfMatch,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .revoke_api_key(&team, &who, &id, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new personal access token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    #[schema(example = "laptop")]
    pub name: String,
    /// When the token stops working (RFC 3339); never by default.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

/// Creates a personal access token acting as the caller; its secret is shown this once.
#[utoipa::path(
    post,
    path = "/me/tokens",
    tag = "me",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(IdempotencyKey),
    request_body = CreateToken,
    responses(
        (status = 201, description = "The token and its `tfp_` secret", body = schema::CreatedToken),
        (status = 400, description = "`malformed_json`, `bad_request` or `bad_idempotency_key`: the body is not JSON, or the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: API keys cannot make personal tokens", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape (see `errors`); or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, BodyRefusals, Internal
    )
)]
async fn create_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateToken>,
) -> Result<Response, ApiError> {
    let created = state
        .service
        .create_token(&who, &body.name, body.expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// The caller's personal access tokens, without their secrets.
#[utoipa::path(
    get,
    path = "/me/tokens",
    tag = "me",
    security(("bearer" = []), ("gateway_jwt" = [])),
    responses(
        (status = 200, description = "Every token of the caller, in one page", body = ListPage<TokenView>),
        (status = 403, description = "`forbidden`: personal tokens belong to people, not to API keys", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, Internal
    )
)]
async fn list_tokens(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Response, ApiError> {
    let tokens = state.service.list_tokens(&who).await?;
    Ok(Json(ListPage {
        items: tokens,
        next_cursor: None,
    })
    .into_response())
}

/// Deletes one of the caller's personal access tokens.
#[utoipa::path(
    delete,
    path = "/me/tokens/{id}",
    tag = "me",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(("id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "The token was deleted"),
        (status = 403, description = "`forbidden`: personal tokens belong to people, not to API keys", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: the caller has no token with this id", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, Internal
    )
)]
async fn delete_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    state.service.delete_token(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
