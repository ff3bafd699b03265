//! A team's audit trail.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::docs::{Internal, LacksPermission, TeamNotFound, Unauthenticated};
use super::error::ApiError;
use super::extract::{Caller, Params, TeamPath};
use super::page::{ListPage, decode_cursor, encode_cursor, page_limit};
use crate::openapi::schema::{self, Problem};
use crate::store::PageRequest;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct PageParams {
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The team's audit trail, oldest first, one page at a time.
#[utoipa::path(
    get,
    path = "/teams/{team}/audit",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, PageParams),
    responses(
        (status = 200, description = "A page of audit records (needs `team.audit.read`)", body = ListPage<schema::AuditEntry>),
        (status = 422, description = "`validation_failed`: a bad query parameter (see `errors`)", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, LacksPermission, TeamNotFound, Internal
    )
)]
async fn audit(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    Params(p): Params<PageParams>,
) -> Result<Response, ApiError> {
    let page = PageRequest {
        limit: Some(page_limit(p.limit)?),
        after: decode_cursor(p.cursor.as_deref())?,
    };
    let page = state.service.audit(&team, &who, page).await?;
    let items: Vec<Value> = page
        .items
        .into_iter()
        .map(|i| {
            let mut attrs = i.attrs;
            attrs.remove("type");
            attrs.insert("id".into(), i.sk.into());
            Value::Object(attrs)
        })
        .collect();
    Ok(Json(ListPage {
        items,
        next_cursor: page.next.as_deref().map(encode_cursor),
    })
    .into_response())
}
