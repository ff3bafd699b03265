//! The two-step ownership transfer: start, cancel, confirm, accept.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use teamform_core::Email;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{BodyRefusals, IdempotencyKey, Internal, TeamNotFound, Unauthenticated};
use super::error::{ApiError, field};
use super::extract::{Body, Caller, TeamPath};
use super::invitations::LinkToken;
use super::{AppState, etag};
use crate::openapi::schema::{self, Problem};
use crate::service::lifecycle::Membership;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_transfer, cancel_transfer))
        .routes(routes!(confirm_transfer))
        .routes(routes!(accept_transfer))
}

/// Starts an ownership transfer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTransfer {
    /// Who is to become the owner.
    #[schema(example = "bob@acme.com")]
    pub to: String,
}

/// Starts a two-step ownership transfer: the owner is sent a link to
/// confirm, then the new owner a link to accept.
#[utoipa::path(
    post,
    path = "/teams/{team}/ownership-transfer",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(TeamPath, IdempotencyKey),
    request_body = StartTransfer,
    responses(
        (status = 200, description = "The transfer started (owner only)", body = schema::Applied),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: only the owner may transfer ownership", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (not an email) or `already_owner`; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, BodyRefusals, Internal
    )
)]
async fn start_transfer(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    Body(body): Body<StartTransfer>,
) -> Result<Response, ApiError> {
    let to = Email::parse(&body.to)
        .map_err(|e| ApiError::validation("bad address", vec![field("to", e)]))?;
    let applied = state.service.start_transfer(&team, &who, &to).await?;
    Ok((etag(applied.version), Json(applied)).into_response())
}

/// Cancels a pending ownership transfer (owner only); its links stop working.
#[utoipa::path(
    delete,
    path = "/teams/{team}/ownership-transfer",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(TeamPath),
    responses(
        (status = 204, description = "The transfer was cancelled"),
        (status = 403, description = "`forbidden`: only the owner may cancel", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or no pending transfer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, Internal
    )
)]
async fn cancel_transfer(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<StatusCode, ApiError> {
    state.service.cancel_transfer(&team, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Step two: the current owner confirms with the link sent to them.
#[utoipa::path(
    post,
    path = "/ownership-transfer/confirm",
    tag = "lifecycle",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(IdempotencyKey),
    request_body = LinkToken,
    responses(
        (status = 204, description = "Confirmed; the new owner was sent a link to accept"),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the link is addressed to someone else", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`transfer_invalid` (used, cancelled, replaced) or `transfer_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, BodyRefusals, Internal
    )
)]
async fn confirm_transfer(
    State(state): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<LinkToken>,
) -> Result<StatusCode, ApiError> {
    state.service.confirm_transfer(&body.token, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Step three: the new owner accepts; ownership passes at once and the
/// previous owner keeps the catalog's `previous_owner_role`.
#[utoipa::path(
    post,
    path = "/ownership-transfer/accept",
    tag = "lifecycle",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(IdempotencyKey),
    request_body = LinkToken,
    responses(
        (status = 200, description = "The caller now owns the team", body = Membership),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the link is addressed to someone else", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`transfer_invalid` (not confirmed, used, cancelled, replaced) or `transfer_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, BodyRefusals, Internal
    )
)]
async fn accept_transfer(
    State(state): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<LinkToken>,
) -> Result<Response, ApiError> {
    let owned = state.service.accept_transfer(&body.token, &who).await?;
    Ok(Json(owned).into_response())
}
