//! Invitations: sending one, its link (accept), sending it again, revoking.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use teamform_core::Email;
use teamform_core::model::Roles;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{BodyRefusals, IdempotencyKey, Internal, Stale, TargetNotFound, Unauthenticated};
use super::error::{ApiError, field};
use super::extract::{Body, Caller, EmailPath, IfMatch, TeamPath};
use super::{AppState, applied_response, etag, precondition};
use crate::openapi::schema::{self, Problem};
use crate::service::lifecycle::Membership;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invite))
        .routes(routes!(accept_invitation))
        .routes(routes!(resend_invitation))
        .routes(routes!(revoke_invitation))
}

/// A link secret from an email (invitation or ownership transfer).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkToken {
    /// The `token` of the link, as sent by email.
    pub token: String,
}

/// An invitation to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    #[schema(example = "bob@acme.com")]
    pub email: String,
    /// Used in the invitation email.
    #[serde(default)]
    pub name: Option<String>,
    #[schema(value_type = Vec<String>, example = json!(["developer"]))]
    pub roles: Roles,
}

/// Invites a person by email with roles; the invitation email goes out with
/// the change.
#[utoipa::path(
    post,
    path = "/teams/{team}/invitations",
    tag = "people",
    security(("bearer" = [])),
    params(TeamPath, IdempotencyKey, IfMatch),
    request_body = InviteBody,
    responses(
        (status = 201, description = "Invited (needs `team.members.invite`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.invite`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`); or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape), or a change the state refuses with its own code (`unknown_role`, `owner_role`, `single_role`, `owner_protected`, `invalid_setting`, `custom_roles_disabled`, `unknown_permission`, ...); or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TargetNotFound, BodyRefusals, Stale, Internal
    )
)]
async fn invite(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IfMatch(expected): IfMatch,
    Body(body): Body<InviteBody>,
) -> Result<Response, ApiError> {
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::validation("bad address", vec![field("email", e)]))?;
    let applied = state
        .service
        .invite(&team, &who, email, body.name, body.roles, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::CREATED, applied))
}

/// Accepts an invitation with the link's token: the caller (the invited
/// person) becomes a member. A link works once, and not after it expires.
#[utoipa::path(
    post,
    path = "/invitations/accept",
    tag = "lifecycle",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(IdempotencyKey),
    request_body = LinkToken,
    responses(
        (status = 200, description = "The caller is now a member", body = Membership),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the invitation is addressed to someone else", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`invitation_invalid` (used, replaced, revoked or unknown) or `invitation_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, BodyRefusals, Internal
    )
)]
async fn accept_invitation(
    State(state): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<LinkToken>,
) -> Result<Response, ApiError> {
    let joined = state.service.accept_invitation(&body.token, &who).await?;
    Ok(Json(joined).into_response())
}

/// Sends a pending invitation again with a new link; the old link stops working.
#[utoipa::path(
    post,
    path = "/teams/{team}/invitations/{email}/resend",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(TeamPath, EmailPath, IdempotencyKey, IfMatch),
    responses(
        (status = 200, description = "A new link was sent (needs `team.members.invite`)", body = schema::Applied),
        (status = 400, description = "`bad_if_match` (If-Match is not a version) or `bad_idempotency_key` (the Idempotency-Key is not 1 to 255 visible characters)", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.invite`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or pending invitation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, Stale, Internal
    )
)]
async fn resend_invitation(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    EmailPath(email): EmailPath,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    let applied = state
        .service
        .resend_invitation(&team, &who, &email, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((etag(applied.version), Json(applied)).into_response())
}

/// Revokes a pending invitation; its link stops working.
#[utoipa::path(
    delete,
    path = "/teams/{team}/invitations/{email}",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(TeamPath, EmailPath, IfMatch),
    responses(
        (status = 200, description = "The invitation was revoked (needs `team.members.invite`)", body = schema::Applied),
        (status = 400, description = "`bad_if_match`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.invite`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or pending invitation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, Stale, Internal
    )
)]
async fn revoke_invitation(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    EmailPath(email): EmailPath,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    let applied = state
        .service
        .revoke_invitation(&team, &who, &email, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((etag(applied.version), Json(applied)).into_response())
}
