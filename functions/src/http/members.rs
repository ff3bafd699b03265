//! Members, one person at a time: the paged list, their roles, removal,
//! and leaving.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use teamform_core::model::Roles;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{
    BodyRefusals, ChangeRefused, IdempotencyKey, Internal, LacksPermission, Stale, StateConflict,
    TargetNotFound, TeamNotFound, Unauthenticated,
};
use super::error::{ApiError, FieldError};
use super::extract::{Body, Caller, EmailPath, IfMatch, Params, TeamPath};
use super::page::{ListPage, decode_cursor, encode_cursor, page_limit};
use super::{AppState, applied_response, precondition};
use crate::openapi::schema::{self, Problem};
use crate::service::MemberFilter;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(members))
        .routes(routes!(set_roles))
        .routes(routes!(remove_member))
        .routes(routes!(leave_team))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Only members and invitations holding this role.
    role: Option<String>,
    /// `joined` or `pending`.
    #[param(pattern = "^(joined|pending)$")]
    status: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Members and pending invitations, in email order, one page at a time.
#[utoipa::path(
    get,
    path = "/teams/{team}/members",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, ListParams),
    responses(
        (status = 200, description = "A page of members (needs `team.members.read`)", body = ListPage<schema::MemberView>),
        (status = 422, description = "`validation_failed`: a bad query parameter (see `errors`)", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, LacksPermission, TeamNotFound, Internal
    )
)]
async fn members(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    Params(p): Params<ListParams>,
) -> Result<Response, ApiError> {
    let limit = page_limit(p.limit)?;
    let after = decode_cursor(p.cursor.as_deref())?;
    if let Some(s) = p.status.as_deref()
        && s != "joined"
        && s != "pending"
    {
        return Err(ApiError::validation(
            "unknown status",
            vec![FieldError {
                field: "status".into(),
                message: "must be `joined` or `pending`".into(),
            }],
        ));
    }
    let filter = MemberFilter {
        role: p.role.as_deref(),
        status: p.status.as_deref(),
    };
    let (items, next) = state
        .service
        .members_page(&team, &who, &filter, limit, after)
        .await?;
    let next_cursor = next.map(|key| encode_cursor(&key));
    Ok(Json(ListPage { items, next_cursor }).into_response())
}

/// The roles a member or invitation should hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    #[schema(value_type = Vec<String>, example = json!(["admin"]))]
    pub roles: Roles,
}

/// Sets the roles of a member, or of a pending invitation.
#[utoipa::path(
    put,
    path = "/teams/{team}/members/{email}/roles",
    tag = "people",
    security(("bearer" = [])),
    params(TeamPath, EmailPath, IfMatch),
    request_body = RolesBody,
    responses(
        (status = 200, description = "The roles were set (needs `team.members.roles`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.roles`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TargetNotFound, StateConflict, ChangeRefused, BodyRefusals, Stale, Internal
    )
)]
async fn set_roles(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    EmailPath(email): EmailPath,
    IfMatch(expected): IfMatch,
    Body(body): Body<RolesBody>,
) -> Result<Response, ApiError> {
    let applied = state
        .service
        .set_roles(&team, &who, &email, body.roles, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}

/// Removes a member. The owner cannot be removed.
#[utoipa::path(
    delete,
    path = "/teams/{team}/members/{email}",
    tag = "people",
    security(("bearer" = [])),
    params(TeamPath, EmailPath, IfMatch),
    responses(
        (status = 200, description = "Removed (needs `team.members.remove`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`bad_if_match`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.remove`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`self_removal`: use `POST /teams/{team}/leave` to leave", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TargetNotFound, StateConflict, Stale, Internal
    )
)]
async fn remove_member(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    EmailPath(email): EmailPath,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    let applied = state
        .service
        .remove_member(&team, &who, &email, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}

/// The caller leaves the team. The owner cannot leave: ownership must pass first.
#[utoipa::path(
    post,
    path = "/teams/{team}/leave",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(TeamPath, IdempotencyKey),
    responses(
        (status = 204, description = "The caller left the team"),
        (status = 400, description = "`bad_idempotency_key`: the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`owner_protected` (the owner cannot leave) or `forbidden` (not a person)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` or `conflict` (a transfer to the caller is pending); or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, Internal
    )
)]
async fn leave_team(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<StatusCode, ApiError> {
    state.service.leave(&team, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}
