//! The HTTP API: one axum `Router` for every host (Lambda, `teamform serve`,
//! in-process). Errors are `application/problem+json` with a stable `code`,
//! malformed input included; a 5xx says nothing internal to the client.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use teamform_core::model::Roles;
use teamform_core::{Catalog, Change, Email, TeamId, Timestamp};

use crate::auth::{Principal, PrincipalView};
use crate::service::{BatchOptions, Service, ServiceError};
use crate::store::PageRequest;

/// Largest request body accepted (Lambda's own payload limit is 6 MB).
pub const BODY_LIMIT: usize = 6 * 1024 * 1024;
pub const DEFAULT_PAGE: usize = 100;
pub const MAX_PAGE: usize = 1000;

/// Who may call without a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anonymous {
    /// Every request needs a credential (Lambda, `teamform serve`).
    Refused,
    /// Requests without a credential act as the local owner: only the
    /// in-process host of the CLI, which has no socket, sets this.
    LocalOwner,
}

#[derive(Clone)]
pub struct AppState {
    pub service: Arc<Service>,
    pub anonymous: Anonymous,
}

impl AppState {
    pub fn new(service: Arc<Service>, anonymous: Anonymous) -> Self {
        Self { service, anonymous }
    }
}

/// The router of the team service.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/catalog", get(catalog))
        .route("/me", get(me))
        .route("/me/tokens", post(create_token).get(list_tokens))
        .route("/me/tokens/{id}", delete(delete_token))
        .route("/teams", post(create_team))
        .route("/teams/{team}/state", get(team_state))
        .route("/teams/{team}/changes", post(apply_changes))
        .route("/teams/{team}/members", get(members))
        .route("/teams/{team}/audit", get(audit))
        .route("/teams/{team}/check", get(check))
        .route(
            "/teams/{team}/api-keys",
            post(create_api_key).get(list_api_keys),
        )
        .route("/teams/{team}/api-keys/{id}", delete(revoke_api_key))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .with_state(state)
}

// ---------------------------------------------------------------- errors

/// One field-level problem in a request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A problem+json response.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    pub extra: Option<Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extra: None,
        }
    }

    pub fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                detail,
            )
        }
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// Logs the cause; the client learns only that something failed.
    pub fn internal(cause: &str) -> Self {
        tracing::error!(cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the service failed; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:teamform:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("error"),
            "status": self.status.as_u16(),
            "code": self.code,
            "detail": self.detail,
        });
        if !self.errors.is_empty() {
            body["errors"] = json!(self.errors);
        }
        if let (Some(Value::Object(extra)), Some(obj)) = (self.extra, body.as_object_mut()) {
            obj.extend(extra);
        }
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        res
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::not_found(),
            ServiceError::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "missing, unknown, expired or revoked credential",
            ),
            ServiceError::Forbidden(detail) => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", detail)
            }
            ServiceError::VersionConflict { expected, actual } => ApiError {
                extra: Some(json!({ "expected_version": expected, "current_version": actual })),
                ..ApiError::new(
                    StatusCode::CONFLICT,
                    "version_conflict",
                    format!(
                        "the team changed: it is at version {actual}, not {expected}; plan again"
                    ),
                )
            },
            ServiceError::Change {
                index,
                action,
                error,
            } => {
                let status = match error.code() {
                    "already_member" | "already_invited" | "role_exists" | "role_in_use"
                    | "team_exists" | "seat_limit_reached" => StatusCode::CONFLICT,
                    "owner_protected" => StatusCode::FORBIDDEN,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError {
                    extra: Some(json!({ "change_index": index, "action": action })),
                    ..ApiError::new(
                        status,
                        error.code(),
                        format!("change {index} ({action}): {error}"),
                    )
                }
            }
            ServiceError::Invalid { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            ServiceError::Conflict(detail) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", detail)
            }
            ServiceError::Store(e) => ApiError::internal(&e.to_string()),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the body is not valid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => ApiError::validation(
                "the body does not match the expected shape",
                vec![FieldError {
                    field: "body".into(),
                    message: e.body_text(),
                }],
            ),
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("bodies are limited to {BODY_LIMIT} bytes"),
            ),
            other => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", other.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::validation(
            "the query string is invalid",
            vec![FieldError {
                field: "query".into(),
                message: r.body_text(),
            }],
        )
    }
}

/// A JSON body whose rejection is a problem+json `ApiError`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Body<T>(pub T);

/// A query string whose rejection is a problem+json `ApiError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this resource does not support that method",
    )
}

// ------------------------------------------------------------ identity

/// The authenticated principal of a request.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            let text = value.to_str().map_err(|_| ServiceError::Unauthenticated)?;
            let token = text
                .strip_prefix("Bearer ")
                .or_else(|| text.strip_prefix("bearer "))
                .map(str::trim);
            match token {
                Some(t) if t.starts_with("tfk_") || t.starts_with("tfp_") => {
                    return Ok(Caller(state.service.authenticate(t).await?));
                }
                // Other bearer tokens are JWTs that API Gateway verified; their
                // claims arrive in the Lambda request context below.
                _ => {}
            }
        }
        if let Some(email) = jwt_email(parts) {
            return Ok(Caller(Principal::Person { email }));
        }
        match state.anonymous {
            Anonymous::LocalOwner if !parts.headers.contains_key(header::AUTHORIZATION) => {
                Ok(Caller(Principal::LocalOwner))
            }
            _ => Err(ServiceError::Unauthenticated.into()),
        }
    }
}

/// The verified email of an API Gateway JWT authorizer, when the request came
/// through Lambda. Unverified emails are not identities.
fn jwt_email(parts: &Parts) -> Option<Email> {
    use lambda_http::request::RequestContext;
    let ctx = parts.extensions.get::<RequestContext>()?;
    let RequestContext::ApiGatewayV2(ctx) = ctx else {
        return None;
    };
    let claims = &ctx.authorizer.as_ref()?.jwt.as_ref()?.claims;
    let verified = claims.get("email_verified").is_some_and(|v| v == "true");
    if !verified {
        return None;
    }
    Email::parse(claims.get("email")?).ok()
}

fn team_id(raw: &str) -> Result<TeamId, ApiError> {
    // A malformed id names no team: same answer as a team that does not exist.
    TeamId::parse(raw).map_err(|_| ApiError::not_found())
}

/// `If-Match: "5"` (or `W/"5"`, or `5`) as a version.
fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = v.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<u64>().map(Some).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_if_match",
            "If-Match must be the team's ETag, a version like \"5\"",
        )
    })
}

fn etag(version: u64) -> [(header::HeaderName, String); 1] {
    [(header::ETAG, format!("\"{version}\""))]
}

/// Turns a conflict on an explicit `If-Match` into 412.
fn precondition(e: ServiceError, explicit: bool) -> ApiError {
    let mut err = ApiError::from(e);
    if explicit && err.code == "version_conflict" {
        err.status = StatusCode::PRECONDITION_FAILED;
    }
    err
}

// ------------------------------------------------------------ handlers

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn catalog(State(state): State<AppState>) -> Json<Catalog> {
    Json(state.service.catalog().clone())
}

async fn me(Caller(who): Caller) -> Json<PrincipalView> {
    Json(PrincipalView::from(&who))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    pub team: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub owner: String,
}

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

fn field(name: &str, e: impl std::fmt::Display) -> FieldError {
    FieldError {
        field: name.into(),
        message: e.to_string(),
    }
}

async fn team_state(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let snapshot = state
        .service
        .authorized(&team, &who, "team.members.read")
        .await?;
    Ok((etag(snapshot.version), Json(snapshot)).into_response())
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBatch {
    pub changes: Vec<Change>,
    #[serde(default)]
    pub options: BatchOptions,
}

async fn apply_changes(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    headers: HeaderMap,
    Body(batch): Body<ChangeBatch>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let expected = if_match(&headers)?;
    let applied = state
        .service
        .execute(&team, &who, &batch.changes, expected, &batch.options)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((etag(applied.version), Json(applied)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    role: Option<String>,
    status: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::validation(
            "limit out of range",
            vec![FieldError {
                field: "limit".into(),
                message: format!("must be between 1 and {MAX_PAGE}"),
            }],
        )),
    }
}

fn decode_cursor(cursor: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(c) = cursor else { return Ok(None) };
    URL_SAFE_NO_PAD
        .decode(c)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::validation(
                "bad cursor",
                vec![FieldError {
                    field: "cursor".into(),
                    message: "not a cursor this API gave out".into(),
                }],
            )
        })
}

fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key)
}

async fn members(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    Params(p): Params<ListParams>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let limit = page_limit(p.limit)?;
    let after = decode_cursor(p.cursor.as_deref())?;
    if let Some(s) = p.status.as_deref() {
        if s != "joined" && s != "pending" {
            return Err(ApiError::validation(
                "unknown status",
                vec![FieldError {
                    field: "status".into(),
                    message: "must be `joined` or `pending`".into(),
                }],
            ));
        }
    }
    let all = state
        .service
        .members(&team, &who, p.role.as_deref(), p.status.as_deref())
        .await?;
    let start = match &after {
        Some(a) => all.partition_point(|m| m.email.to_lowercase() <= *a),
        None => 0,
    };
    let items: Vec<_> = all.iter().skip(start).take(limit).cloned().collect();
    let next_cursor = (start + items.len() < all.len())
        .then(|| items.last().map(|m| encode_cursor(&m.email.to_lowercase())))
        .flatten();
    Ok(Json(ListPage { items, next_cursor }).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn audit(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    Params(p): Params<PageParams>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckParams {
    permission: String,
}

/// May the caller do X in this team? For products asking on a user's behalf.
async fn check(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    Params(p): Params<CheckParams>,
) -> Result<Json<Value>, ApiError> {
    let team = team_id(&team)?;
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
    let perm = p.permission.clone();
    let allowed = match who.standing(&snapshot) {
        crate::auth::Standing::Owner => true,
        crate::auth::Standing::Roles(roles) => catalog.allows(&roles, &snapshot.roles, &perm),
        crate::auth::Standing::Outsider => false,
    };
    Ok(Json(
        json!({ "permission": p.permission, "allowed": allowed }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    pub name: String,
    pub roles: Roles,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

async fn create_api_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    Body(body): Body<CreateApiKey>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let created = state
        .service
        .create_api_key(&team, &who, &body.name, &body.roles, body.expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

async fn list_api_keys(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let keys = state.service.list_api_keys(&team, &who).await?;
    Ok(Json(ListPage {
        items: keys,
        next_cursor: None,
    })
    .into_response())
}

async fn revoke_api_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let team = team_id(&team)?;
    state.service.revoke_api_key(&team, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

async fn create_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    Body(body): Body<CreateToken>,
) -> Result<Response, ApiError> {
    let email = match &who {
        Principal::Person { email } => Some(email.clone()),
        Principal::LocalOwner => None,
        Principal::ApiKey { .. } => {
            return Err(
                ServiceError::Forbidden("API keys cannot make personal tokens".into()).into(),
            );
        }
    };
    let created = state
        .service
        .create_token(email.as_ref(), &body.name, body.expires_at)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

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

async fn delete_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_token(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
