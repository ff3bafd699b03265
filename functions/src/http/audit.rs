//! A team's audit trail.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use teamform_core::Timestamp;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::docs::{Internal, LacksPermission, TeamNotFound, Unauthenticated};
use super::error::{ApiError, FieldError};
use super::extract::{Caller, Params, TeamPath};
use super::page::{ListPage, decode_cursor, encode_cursor, page_limit};
use crate::openapi::schema::{self, Problem};
use crate::service::audit::{AuditFilter, write_csv, write_jsonl};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audit))
        .routes(routes!(audit_export))
}

/// The query parameters of a page or an export: the filter's, and the
/// route's own. One struct per route so that an unknown parameter is refused.
macro_rules! audit_params {
    ($(#[$meta:meta])* struct $name:ident { $($(#[$fmeta:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Deserialize, IntoParams)]
        #[serde(deny_unknown_fields)]
        #[into_params(parameter_in = Query)]
        struct $name {
            $($(#[$fmeta])* $field: $ty,)*
            /// Only records by this actor, as recorded (`user:EMAIL`,
            /// `api-key:ID`, `local-owner`, `system:expiry`).
            #[param(max_length = 300)]
            actor: Option<String>,
            /// Only records of this action (`invite`, `change_roles`,
            /// `accept_invitation`, `expire_invitation`, `create_api_key`, ...).
            #[param(max_length = 100)]
            action: Option<String>,
            /// Only records about this person (email, without case), role or key.
            #[param(max_length = 300)]
            subject: Option<String>,
            /// Only records made in this request (its `x-request-id`).
            #[param(max_length = 128)]
            request_id: Option<String>,
            /// Only records from this source: `api`, `page`, `apply` or
            /// `sweep` (invitation expiries the sweep recorded).
            #[param(max_length = 20)]
            source: Option<String>,
            /// Only records at or after this time (RFC 3339).
            #[param(value_type = Option<String>, format = DateTime)]
            since: Option<Timestamp>,
            /// Only records before this time (RFC 3339).
            #[param(value_type = Option<String>, format = DateTime)]
            until: Option<Timestamp>,
        }

        impl $name {
            /// The filter, its texts within the documented lengths.
            fn filter(&self) -> Result<AuditFilter, ApiError> {
                for (name, value, max) in [
                    ("actor", &self.actor, 300),
                    ("action", &self.action, 100),
                    ("subject", &self.subject, 300),
                    ("request_id", &self.request_id, 128),
                    ("source", &self.source, 20),
                ] {
                    if value.as_ref().is_some_and(|v| v.chars().count() > max) {
                        return Err(ApiError::validation(
                            "the query string is invalid",
                            vec![FieldError {
                                field: name.into(),
                                message: format!("at most {max} characters"),
                            }],
                        ));
                    }
                }
                Ok(AuditFilter {
                    actor: self.actor.clone(),
                    action: self.action.clone(),
                    subject: self.subject.clone(),
                    request_id: self.request_id.clone(),
                    source: self.source.clone(),
                    since: self.since,
                    until: self.until,
                })
            }
        }
    };
}

audit_params! {
    struct PageParams {
        /// Page size, 1 to 1000 (default 100).
        #[param(minimum = 1, maximum = 1000)]
        limit: Option<usize>,
        /// `next_cursor` of the previous page.
        cursor: Option<String>,
    }
}

/// The team's audit trail, oldest first, one page at a time, filtered by
/// actor, action, subject and time. A filtered page may hold fewer records
/// than `limit` (each request reads a bounded stretch of the trail): follow
/// `next_cursor` until it is absent.
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
    let limit = page_limit(p.limit)?;
    let after = decode_cursor(p.cursor.as_deref())?;
    let page = state
        .service
        .audit_page(&team, &who, &p.filter()?, limit, after)
        .await?;
    Ok(Json(ListPage {
        items: page.items,
        next_cursor: page.next.as_deref().map(encode_cursor),
    })
    .into_response())
}

audit_params! {
    struct ExportParams {
        /// `jsonl` (one JSON record per line) or `csv` (a header row, then
        /// id, version, at, actor, action, subject, change as JSON).
        #[param(inline)]
        format: ExportFormat,
    }
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum ExportFormat {
    Jsonl,
    Csv,
}

/// The whole (filtered) audit trail in one answer, oldest first, as JSON
/// Lines or CSV.
#[utoipa::path(
    get,
    path = "/teams/{team}/audit/export",
    tag = "teams",
    security(("bearer" = [])),
    params(TeamPath, ExportParams),
    responses(
        (status = 200, description = "Every matching record (needs `team.audit.read`)", content(
            (String = "application/jsonl"),
            (String = "text/csv"),
        )),
        (status = 422, description = "`validation_failed`: a bad query parameter (see `errors`)", body = Problem, content_type = "application/problem+json"),
        Unauthenticated, LacksPermission, TeamNotFound, Internal
    )
)]
async fn audit_export(
    State(state): State<AppState>,
    Caller(who): Caller,
    TeamPath(team): TeamPath,
    Params(p): Params<ExportParams>,
) -> Result<Response, ApiError> {
    let filter = p.filter()?;
    let mut records = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .service
            .audit_page(&team, &who, &filter, 1000, after)
            .await?;
        records.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let (content_type, body) = match p.format {
        ExportFormat::Jsonl => ("application/jsonl", write_jsonl(&records)),
        ExportFormat::Csv => (
            "text/csv; charset=utf-8",
            write_csv(&records, true).map_err(|e| ApiError::internal(&e.to_string()))?,
        ),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
