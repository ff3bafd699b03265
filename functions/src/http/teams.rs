//! A team as a whole: creating it, its state, batches of changes, and
//! permission checks.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use teamform_core::{Change, Email, TeamId, TeamState};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::docs::{
    BodyRefusals, IdempotencyKey, Internal, LacksPermission, Stale, TeamNotFound, Unauthenticated,
};
use super::error::{ApiError, FieldError, field};
use super::extract::{Body, Caller, IfMatch, Params, TeamPath};
use super::settings::settings_in_range;
use super::{AppState, etag, precondition};
use crate::openapi::schema::{self, Problem};
use crate::service::BatchOptions;
use crate::service::close::TeamClosing;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_team))
        .routes(routes!(team_state))
        .routes(routes!(apply_changes))
        .routes(routes!(check))
        .routes(routes!(closing_state, close_team))
        .routes(routes!(reopen_team))
}

/// A new team and its owner.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    /// The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter.
    #[schema(
        example = "acme",
        min_length = 2,
        max_length = 63,
        pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
    )]
    pub team: String,
    /// Defaults to the team id.
    #[serde(default)]
    #[schema(example = "Acme Inc.")]
    pub display_name: Option<String>,
    /// The owner's email. A person may only create a team they own.
    #[schema(format = Email, example = "alice@acme.com")]
    pub owner: String,
}

/// Creates a team with its owner as the only member.
#[utoipa::path(
    post,
    path = "/teams",
    tag = "teams",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(IdempotencyKey),
    request_body = CreateTeam,
    responses(
        (status = 201, description = "The team was created at version 1", body = schema::Applied, headers(("ETag" = String, description = "The team's version, quoted (`\"5\"`): send it as `If-Match` to change exactly this state"))),
        (status = 400, description = "`malformed_json`, `bad_request` or `bad_idempotency_key`: the body is not JSON, or the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a team is created by its owner", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`team_exists`: the team already exists; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad team id or owner email (see `errors`); or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, BodyRefusals, Internal
    )
)]
async fn create_team(
    State(state): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateTeam>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    let team = TeamId::parse(&body.team)
        .map_err(|e| errors.push(field("team", e)))
        .ok();
    let owner = Email::parse(&body.owner)
        .map_err(|e| errors.push(field("owner", e)))
        .ok();
    let (Some(team), Some(owner)) = (team, owner) else {
        return Err(ApiError::validation("the team cannot be created", errors));
    };
    let display_name = body.display_name.unwrap_or_else(|| team.to_string());
    let change = Change::CreateTeam {
        display_name,
        owner,
    };
    let applied = state
        .service
        .execute(&team, &who, &[change], Some(0), &BatchOptions::default())
        .await?;
    Ok((StatusCode::CREATED, etag(applied.version), Json(applied)).into_response())
}

/// The team's whole state; its `ETag` is the version.
#[utoipa::path(
    get,
    path = "/teams/{team}/state",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath),
    responses(
        (status = 200, description = "The team's state (needs `team.members.read`)", body = TeamState, headers(("ETag" = String, description = "The team's version, quoted (`\"5\"`): send it as `If-Match` to change exactly this state"))),
        Unauthenticated, LacksPermission, TeamNotFound, Internal
    )
)]
async fn team_state(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<Response, ApiError> {
    let snapshot = state.service.whole_state(&team, &who).await?;
    Ok((etag(snapshot.version), Json(snapshot)).into_response())
}

/// A batch of changes, applied all or nothing, in order.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBatch {
    #[schema(value_type = Vec<Change>)]
    pub changes: Vec<Change>,
    #[serde(default)]
    #[schema(value_type = schema::BatchOptions)]
    pub options: BatchOptions,
}

/// Applies a batch of changes to a team, all or nothing.
///
/// Each change needs its own permission; the whole batch is validated
/// before anything is written. A batch whose first change is `create_team`
/// creates the team.
#[utoipa::path(
    post,
    path = "/teams/{team}/changes",
    tag = "teams",
    security(("bearer" = [])),
    params(
        TeamPath,
        IfMatch,
        IdempotencyKey
    ),
    request_body = ChangeBatch,
    responses(
        (status = 200, description = "The batch was applied", body = schema::Applied, headers(("ETag" = String, description = "The team's version, quoted (`\"5\"`): send it as `If-Match` to change exactly this state"))),
        (status = 400, description = "`malformed_json`, `bad_request`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` or `owner_protected`: a change needs a permission the caller lacks, or would touch the owner (`change_index` and `action` name it); `add_member` is always refused here: only the team's SCIM token adds members without an invitation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed while the batch ran (`expected_version`, `current_version`); a change conflicts with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `team_exists`, `seat_limit_reached`); or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape, see `errors`), a change the state refuses (its own `code`, e.g. `not_member`, `unknown_role`, `self_removal`; `change_index` and `action` name it), or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, BodyRefusals, Stale, Internal
    )
)]
async fn apply_changes(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IfMatch(expected): IfMatch,
    Body(batch): Body<ChangeBatch>,
) -> Result<Response, ApiError> {
    for (index, change) in batch.changes.iter().enumerate() {
        if let Change::UpdateSettings { from, to } = change {
            settings_in_range(index, from)?;
            settings_in_range(index, to)?;
        }
    }
    let applied = state
        .service
        .execute(&team, &who, &batch.changes, expected, &batch.options)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((etag(applied.version), Json(applied)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct CheckParams {
    /// A permission id of the catalog.
    #[param(example = "team.members.read")]
    permission: String,
}

/// May the caller do X in this team? For products asking on a user's behalf.
#[utoipa::path(
    get,
    path = "/teams/{team}/check",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, CheckParams),
    responses(
        (status = 200, description = "Whether the caller holds the permission in the team", body = schema::PermissionCheck),
        (status = 422, description = "`validation_failed`: `permission` is missing or not in the catalog (see `errors`)", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, Internal
    )
)]
async fn check(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    Params(p): Params<CheckParams>,
) -> Result<Json<Value>, ApiError> {
    let snapshot = state.service.visible(&team, &who).await?;
    let catalog = state.service.catalog();
    if catalog.permission(&p.permission).is_none() {
        return Err(ApiError::validation(
            "unknown permission",
            vec![FieldError {
                field: "permission".into(),
                message: format!("`{}` is not in the catalog", p.permission),
            }],
        ));
    }
    let allowed = who
        .held(&snapshot, catalog)
        .is_some_and(|held| held.has(&p.permission));
    Ok(Json(
        json!({ "permission": p.permission, "allowed": allowed }),
    ))
}

/// Whether the team is open or closing, and when a closing team is deleted.
#[utoipa::path(
    get,
    path = "/teams/{team}/close",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath),
    responses(
        (status = 200, description = "`open`, or `closing` with `closed_at` and `deletes_at` (needs `team.settings.read`; while the team is closing, only its owner gets in)", body = TeamClosing, headers(("ETag" = String, description = "The team's version"))),
        (status = 403, description = "`forbidden`: the caller lacks `team.settings.read`; or `team_closed`: the team is closed and the caller is not its owner", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, Internal
    )
)]
async fn closing_state(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
) -> Result<Response, ApiError> {
    let closing = state.service.closing_state(&team, &who).await?;
    Ok((etag(closing.version), Json(closing)).into_response())
}

/// Closing a team: its owner names it again.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseTeam {
    /// The team id again, so that a stray call cannot close a team.
    pub confirm: String,
    /// Close although other members or pending invitations remain.
    #[serde(default)]
    pub force: bool,
}

/// Closes the team: the owner only (never an API key), naming the team
/// again in `confirm`.
///
/// The team is then refused to everyone but its owner (`team_closed`), who
/// may still read it (its audit trail included) and reopen it until it is
/// deleted, `close_grace_days` after closing. Before deletion its audit
/// trail is archived as JSON Lines and kept for `audit_retention_days`.
/// Once deleted, the team id may be used for a new team.
#[utoipa::path(
    post,
    path = "/teams/{team}/close",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, IfMatch, IdempotencyKey),
    request_body = CloseTeam,
    responses(
        (status = 200, description = "The team is closing; `deletes_at` says when it is deleted", body = TeamClosing, headers(("ETag" = String, description = "The team's version after closing"))),
        (status = 400, description = "`malformed_json`, `bad_request`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: only the owner closes a team, and never with an API key; `team_closed`: the team is being deleted", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`team_not_empty`: other members or pending invitations remain (`members`, `invitations`), close with `force` to mean it; `transfer_pending`: cancel the ownership transfer first; `team_closed`: it is closed already; `version_conflict`; or `idempotency_key_in_use`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`confirmation_mismatch`: `confirm` is not the team id; `validation_failed` (a body of the wrong shape, see `errors`); or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, BodyRefusals, Stale, Internal
    )
)]
async fn close_team(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IfMatch(expected): IfMatch,
    Body(body): Body<CloseTeam>,
) -> Result<Response, ApiError> {
    let closing = state
        .service
        .close_team(&team, &who, &body.confirm, body.force, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((etag(closing.version), Json(closing)).into_response())
}

/// Reopens a closing team, exactly as it was: the owner only, until its
/// deletion has begun.
#[utoipa::path(
    post,
    path = "/teams/{team}/reopen",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, IfMatch, IdempotencyKey),
    responses(
        (status = 200, description = "The team is open again", body = TeamClosing, headers(("ETag" = String, description = "The team's version after reopening"))),
        (status = 400, description = "`bad_request`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: only the owner reopens a team, and never with an API key; `team_closed`: its deletion has begun", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`team_not_closed`: the team is open; `version_conflict`; or `idempotency_key_in_use`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, TeamNotFound, Stale, Internal
    )
)]
async fn reopen_team(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    let open = state
        .service
        .reopen_team(&team, &who, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((etag(open.version), Json(open)).into_response())
}
