//! The HTTP API: one axum `Router` for every host (Lambda, `teamform serve`,
//! in-process). Errors are `application/problem+json` with a stable `code`,
//! malformed input included; a 5xx says nothing internal to the client.

use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use teamform_core::model::{CustomRole, Roles, Settings};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId, Timestamp};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Principal, PrincipalView};
use crate::openapi::__path_openapi_json;
use crate::openapi::schema::{self, Problem};
use crate::openapi::{ApiDoc, openapi_json};
use crate::service::{BatchOptions, MemberFilter, Service, ServiceError};
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
    /// The OpenID Connect provider whose tokens sign people in, when the
    /// host is configured with one.
    pub oidc: Option<Arc<crate::oidc::Verifier>>,
}

impl AppState {
    pub fn new(service: Arc<Service>, anonymous: Anonymous) -> Self {
        Self {
            service,
            anonymous,
            oidc: None,
        }
    }

    /// Verifies bearer JWTs and signs browsers in with this provider.
    pub fn with_oidc(mut self, verifier: crate::oidc::Verifier) -> Self {
        self.oidc = Some(Arc::new(verifier));
        self
    }
}

/// Every route of the service with its OpenAPI description: each handler's
/// `#[utoipa::path]` gives both its place in the router and its operation in
/// `GET /openapi.json`, so the two cannot drift apart.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(openapi_json))
        .routes(routes!(catalog))
        .routes(routes!(me))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(delete_token))
        .routes(routes!(create_team))
        .routes(routes!(team_state))
        .routes(routes!(apply_changes))
        .routes(routes!(members))
        .routes(routes!(audit))
        .routes(routes!(check))
        .routes(routes!(create_api_key, list_api_keys))
        .routes(routes!(revoke_api_key))
        .routes(routes!(my_teams))
        .routes(routes!(accept_invitation))
        .routes(routes!(resend_invitation))
        .routes(routes!(revoke_invitation))
        .routes(routes!(leave_team))
        .routes(routes!(start_transfer, cancel_transfer))
        .routes(routes!(confirm_transfer))
        .routes(routes!(accept_transfer))
        .routes(routes!(invite))
        .routes(routes!(set_roles))
        .routes(routes!(remove_member))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(list_roles))
        .routes(routes!(put_role, delete_role))
}

/// The router of the team service.
pub fn app(state: AppState) -> Router {
    Router::from(routes())
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::idempotency::layer,
        ))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
        // The one limit: `Json` would otherwise stop at axum's 2 MB default.
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::map_response(problem_only))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
        .with_state(state)
}

/// Every error leaves as problem+json, also one made by a layer rather than a
/// handler (the body limit answers 413 in plain text, for instance).
async fn problem_only(res: Response) -> Response {
    // Pages answer their errors in HTML, for people.
    let is_problem = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/problem+json")
            || v.as_bytes().starts_with(b"text/html")
    });
    if !res.status().is_client_error() && !res.status().is_server_error() || is_problem {
        return res;
    }
    let status = res.status();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        s if s.is_server_error() => {
            return ApiError::internal("a layer failed the request").into_response();
        }
        _ => "bad_request",
    };
    let detail = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("bodies are limited to {BODY_LIMIT} bytes"),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    ApiError::new(status, code, detail).into_response()
}

// ---------------------------------------------------------------- errors

/// One field-level problem in a request body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, ToSchema)]
pub struct FieldError {
    /// The field (`body` or `query` when the whole of it is malformed).
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
            ServiceError::Escalation(detail) => {
                ApiError::new(StatusCode::FORBIDDEN, "escalation", detail)
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
                    | "team_exists" | "seat_limit_reached" | "stale_change" => StatusCode::CONFLICT,
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
            ServiceError::Gone { code, message } => ApiError::new(StatusCode::GONE, code, message),
            ServiceError::TwoFactorRequired(detail) => {
                ApiError::new(StatusCode::FORBIDDEN, "two_factor_required", detail)
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
            JsonRejection::JsonDataError(e) => body_shape_error(e.body_text()),
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

/// A JSON object body whose rejection is a problem+json `ApiError`.
///
/// Every request body of this API is an object. serde's derived structs also
/// read a JSON array positionally (`[]` would be a settings body with every
/// field defaulted), so the body is parsed first, refused unless it is an
/// object, and only then read as `T`, with the path of any field that does
/// not fit.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(body_shape_error(format!(
                "the body must be a JSON object, found {}",
                json_kind(&value)
            )));
        }
        serde_path_to_error::deserialize(value)
            .map(Body)
            .map_err(|e| {
                let path = e.path().to_string();
                let message = if path == "." {
                    e.inner().to_string()
                } else {
                    format!("{path}: {}", e.inner())
                };
                body_shape_error(message)
            })
    }
}

fn body_shape_error(message: String) -> ApiError {
    ApiError::validation(
        "the body does not match the expected shape",
        vec![FieldError {
            field: "body".into(),
            message,
        }],
    )
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A query string whose rejection is a problem+json `ApiError`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

/// The router's fallback: no route has this path.
async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
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
        // A layer that already authenticated the request (idempotency) left
        // its principal here: one look-up per request.
        if let Some(Authenticated(who)) = parts.extensions.get::<Authenticated>() {
            return Ok(Caller(who.clone()));
        }
        Ok(Caller(authenticate(parts, state).await?))
    }
}

/// The principal of a request authenticated before its handler ran.
#[derive(Clone)]
pub(crate) struct Authenticated(pub Principal);

/// Resolves the credential of a request. The scheme name is matched
/// case-insensitively (RFC 9110); the one anonymous principal is the local
/// owner of the in-process host, which has no socket.
pub(crate) async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let text = value.to_str().map_err(|_| ServiceError::Unauthenticated)?;
        let token = text
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim());
        match token {
            Some(t) if t.starts_with("tfk_") || t.starts_with("tfp_") => {
                return Ok(state.service.authenticate(t).await?);
            }
            // A JWT that API Gateway verified: its claims arrive in the
            // Lambda request context below.
            _ if jwt_person(parts).is_some() => {}
            // A JWT the service verifies itself, on any host configured with
            // an issuer.
            Some(t) if state.oidc.is_some() => {
                let verifier = state.oidc.as_ref().ok_or(ServiceError::Unauthenticated)?;
                return match verifier.verify(t).await {
                    Ok(identity) => Ok(Principal::Person {
                        email: identity.email,
                        two_factor: identity.two_factor,
                    }),
                    Err(e @ crate::oidc::TokenError::Unavailable(_)) => {
                        tracing::warn!(error = %e, "the identity provider is unavailable");
                        Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            e.code(),
                            "the identity provider could not be reached; try again shortly",
                        ))
                    }
                    Err(e) => Err(ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        e.code(),
                        e.to_string(),
                    )),
                };
            }
            _ => {}
        }
    }
    if let Some(person) = jwt_person(parts) {
        return Ok(person);
    }
    match state.anonymous {
        Anonymous::LocalOwner if !parts.headers.contains_key(header::AUTHORIZATION) => {
            Ok(Principal::LocalOwner)
        }
        _ => Err(ServiceError::Unauthenticated.into()),
    }
}

/// The person of an API Gateway JWT authorizer's claims, when the request
/// came through Lambda. Unverified emails are not identities. The `amr` claim
/// (RFC 8176) says whether the sign-in used a second factor.
fn jwt_person(parts: &Parts) -> Option<Principal> {
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
    let email = Email::parse(claims.get("email")?).ok()?;
    // API Gateway flattens array claims to text like `[pwd mfa]`.
    let two_factor = claims.get("amr").is_some_and(|amr| {
        crate::oidc::second_factor(amr.split(|c: char| !c.is_ascii_alphanumeric()))
    });
    Some(Principal::Person { email, two_factor })
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
    // Exactly what the document's pattern says: `"5"`, `W/"5"` or `5`, with
    // 1 to 19 digits (always a u64); nothing else passes for a version.
    let weak = text.strip_prefix("W/").unwrap_or(text);
    let bare = match weak.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        Some(quoted) => quoted,
        None if weak.len() == text.len() => text,
        None => "",
    };
    let digits = (1..=19).contains(&bare.len()) && bare.bytes().all(|b| b.is_ascii_digit());
    match bare.parse::<u64>() {
        Ok(version) if digits => Ok(Some(version)),
        _ => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_if_match",
            "If-Match must be the team's ETag, a version like \"5\"",
        )),
    }
}

/// Settings outside their documented ranges are refused as the service
/// refuses them (422 `invalid_setting`), but before `If-Match` is looked at:
/// a stale version must not answer 412 to a body that could never apply.
fn settings_in_range(index: usize, settings: &Settings) -> Result<(), ApiError> {
    teamform_core::change::check_settings(settings).map_err(|error| {
        ApiError::from(ServiceError::Change {
            index,
            action: "update_settings",
            error,
        })
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

/// Liveness: the service answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    responses((status = 200, description = "The service is up", body = schema::Health))
)]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The deployment's catalog: its permissions and system roles.
///
/// Public: it takes no input and needs no credential.
#[utoipa::path(
    get,
    path = "/catalog",
    tag = "meta",
    responses((status = 200, description = "The catalog", body = schema::Catalog))
)]
async fn catalog(State(state): State<AppState>) -> Json<Catalog> {
    Json(state.service.catalog().clone())
}

/// Who the caller is.
#[utoipa::path(
    get,
    path = "/me",
    tag = "me",
    security(("bearer" = []), ("gateway_jwt" = [])),
    responses(
        (status = 200, description = "The caller", body = schema::PrincipalView),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn me(Caller(who): Caller) -> Json<PrincipalView> {
    Json(PrincipalView::from(&who))
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
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential. A retry with the same key and request replays the first successful response for 24 hours (marked `Idempotent-Replayed: true`; a secret is not replayed); the same key with another request is refused (422 `idempotency_key_reused`).")),
    request_body = CreateTeam,
    responses(
        (status = 201, description = "The team was created at version 1", body = schema::Applied, headers(("ETag" = String, description = "The team's version, quoted (`\"5\"`): send it as `If-Match` to change exactly this state"))),
        (status = 400, description = "`malformed_json`, `bad_request` or `bad_idempotency_key`: the body is not JSON, or the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: a team is created by its owner", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`team_exists`: the team already exists; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad team id or owner email (see `errors`); or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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

fn field(name: &str, e: impl std::fmt::Display) -> FieldError {
    FieldError {
        field: name.into(),
        message: e.to_string(),
    }
}

/// The team's whole state; its `ETag` is the version.
#[utoipa::path(
    get,
    path = "/teams/{team}/state",
    tag = "teams",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$")),
    responses(
        (status = 200, description = "The team's state (needs `team.members.read`)", body = schema::TeamState, headers(("ETag" = String, description = "The team's version, quoted (`\"5\"`): send it as `If-Match` to change exactly this state"))),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller sees the team but lacks the permission", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn team_state(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let snapshot = state.service.whole_state(&team, &who).await?;
    Ok((etag(snapshot.version), Json(snapshot)).into_response())
}

/// A batch of changes, applied all or nothing, in order.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeBatch {
    #[schema(value_type = Vec<schema::Change>)]
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
        ("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"),
        ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag` (`\"5\"`, `W/\"5\"` or `5`): apply only if the team is still at that version, else 412. `*` or no header applies to the current version.", example = "\"5\""),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential. A retry with the same key and request replays the first successful response for 24 hours (marked `Idempotent-Replayed: true`; a secret is not replayed); the same key with another request is refused (422 `idempotency_key_reused`).")
    ),
    request_body = ChangeBatch,
    responses(
        (status = 200, description = "The batch was applied", body = schema::Applied, headers(("ETag" = String, description = "The team's version, quoted (`\"5\"`): send it as `If-Match` to change exactly this state"))),
        (status = 400, description = "`malformed_json`, `bad_request`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden` or `owner_protected`: a change needs a permission the caller lacks, or would touch the owner (`change_index` and `action` name it)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed while the batch ran (`expected_version`, `current_version`); a change conflicts with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `team_exists`, `seat_limit_reached`); or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is not at the version of `If-Match` (`expected_version`, `current_version`); plan again", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape, see `errors`), a change the state refuses (its own `code`, e.g. `not_member`, `unknown_role`, `self_removal`; `change_index` and `action` name it), or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn apply_changes(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    headers: HeaderMap,
    Body(batch): Body<ChangeBatch>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    for (index, change) in batch.changes.iter().enumerate() {
        if let Change::UpdateSettings { from, to } = change {
            settings_in_range(index, from)?;
            settings_in_range(index, to)?;
        }
    }
    let expected = if_match(&headers)?;
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

/// One page of a list; `next_cursor` is absent on the last page.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page.
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

/// Members and pending invitations, in email order, one page at a time.
#[utoipa::path(
    get,
    path = "/teams/{team}/members",
    tag = "teams",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ListParams),
    responses(
        (status = 200, description = "A page of members (needs `team.members.read`)", body = ListPage<schema::MemberView>),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller sees the team but lacks the permission", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad query parameter (see `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn members(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    Params(p): Params<ListParams>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), PageParams),
    responses(
        (status = 200, description = "A page of audit records (needs `team.audit.read`)", body = ListPage<schema::AuditEntry>),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller sees the team but lacks the permission", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a bad query parameter (see `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), CheckParams),
    responses(
        (status = 200, description = "Whether the caller holds the permission in the team", body = schema::PermissionCheck),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: `permission` is missing or not in the catalog (see `errors`)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
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
    let allowed = who
        .held(&snapshot, catalog)
        .is_some_and(|held| held.has(&p.permission));
    Ok(Json(
        json!({ "permission": p.permission, "allowed": allowed }),
    ))
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential. A retry with the same key and request replays the first successful response for 24 hours (marked `Idempotent-Replayed: true`; a secret is not replayed); the same key with another request is refused (422 `idempotency_key_reused`)."), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    request_body = CreateApiKey,
    responses(
        (status = 201, description = "The key and its `tfk_` secret (needs `team.api_keys.manage`)", body = schema::CreatedApiKey),
        (status = 400, description = "`malformed_json`, `bad_request`, `bad_if_match` or `bad_idempotency_key`: the body is not JSON, `If-Match` is not a version, or the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.api_keys.manage`, or the roles grant permissions the caller does not hold", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (bad name, expiry in the past, or a body of the wrong shape), a role the team cannot grant (`unknown_role`, `owner_role`, `no_roles`, ...), or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn create_api_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    headers: HeaderMap,
    Body(body): Body<CreateApiKey>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let expected = if_match(&headers)?;
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$")),
    responses(
        (status = 200, description = "Every key of the team, in one page (needs `team.api_keys.manage`)", body = ListPage<schema::ApiKeyView>),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller sees the team but lacks the permission", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
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

/// Revokes an API key: it stops working at once.
#[utoipa::path(
    delete,
    path = "/teams/{team}/api-keys/{id}",
    tag = "api-keys",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("id" = String, Path, description = "The key's id"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    responses(
        (status = 204, description = "The key was revoked (needs `team.api_keys.manage`)"),
        (status = 400, description = "`bad_if_match`: `If-Match` is not a version", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller sees the team but lacks the permission", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or key, or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn revoke_api_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let team = team_id(&team)?;
    let expected = if_match(&headers)?;
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
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential. A retry with the same key and request replays the first successful response for 24 hours (marked `Idempotent-Replayed: true`; a secret is not replayed); the same key with another request is refused (422 `idempotency_key_reused`).")),
    request_body = CreateToken,
    responses(
        (status = 201, description = "The token and its `tfp_` secret", body = schema::CreatedToken),
        (status = 400, description = "`malformed_json`, `bad_request` or `bad_idempotency_key`: the body is not JSON, or the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: API keys cannot make personal tokens", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape (see `errors`); or `idempotency_key_reused`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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
        (status = 200, description = "Every token of the caller, in one page", body = ListPage<schema::TokenView>),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: personal tokens belong to people, not to API keys", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: personal tokens belong to people, not to API keys", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: the caller has no token with this id", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn delete_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.delete_token(&who, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------ lifecycle

/// A link secret from an email (invitation or ownership transfer).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkToken {
    /// The `token` of the link, as sent by email.
    pub token: String,
}

/// Starts an ownership transfer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTransfer {
    /// Who is to become the owner.
    #[schema(example = "bob@acme.com")]
    pub to: String,
}

fn email_param(raw: &str) -> Result<Email, ApiError> {
    // A malformed address names no invitation.
    Email::parse(raw).map_err(|_| ApiError::not_found())
}

/// The teams the caller belongs to.
#[utoipa::path(
    get,
    path = "/me/teams",
    tag = "me",
    security(("bearer" = []), ("gateway_jwt" = [])),
    responses(
        (status = 200, description = "The caller's teams", body = ListPage<schema::Membership>),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: only people belong to teams", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn my_teams(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Response, ApiError> {
    let teams = state.service.my_teams(&who).await?;
    Ok(Json(ListPage {
        items: teams,
        next_cursor: None,
    })
    .into_response())
}

/// Accepts an invitation with the link's token: the caller (the invited
/// person) becomes a member. A link works once, and not after it expires.
#[utoipa::path(
    post,
    path = "/invitations/accept",
    tag = "lifecycle",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential: a retry with the same key and request replays the first successful response for 24 hours.")),
    request_body = LinkToken,
    responses(
        (status = 200, description = "The caller is now a member", body = schema::Membership),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the invitation is addressed to someone else", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`invitation_invalid` (used, replaced, revoked or unknown) or `invitation_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("email" = String, Path, description = "The invited address (compared case-insensitively)", example = "bob@acme.com"), ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential: a retry with the same key and request replays the first successful response for 24 hours."), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    responses(
        (status = 200, description = "A new link was sent (needs `team.members.invite`)", body = schema::Applied),
        (status = 400, description = "`bad_if_match` (If-Match is not a version) or `bad_idempotency_key` (the Idempotency-Key is not 1 to 255 visible characters)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.invite`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or pending invitation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn resend_invitation(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, email)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (team, email) = (team_id(&team)?, email_param(&email)?);
    let expected = if_match(&headers)?;
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("email" = String, Path, description = "The invited address (compared case-insensitively)", example = "bob@acme.com"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    responses(
        (status = 200, description = "The invitation was revoked (needs `team.members.invite`)", body = schema::Applied),
        (status = 400, description = "`bad_if_match`", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.invite`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or pending invitation", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn revoke_invitation(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, email)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (team, email) = (team_id(&team)?, email_param(&email)?);
    let expected = if_match(&headers)?;
    let applied = state
        .service
        .revoke_invitation(&team, &who, &email, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok((etag(applied.version), Json(applied)).into_response())
}

/// The caller leaves the team. The owner cannot leave: ownership must pass first.
#[utoipa::path(
    post,
    path = "/teams/{team}/leave",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential: a retry with the same key and request replays the first successful response for 24 hours.")),
    responses(
        (status = 204, description = "The caller left the team"),
        (status = 400, description = "`bad_idempotency_key`: the Idempotency-Key is not 1 to 255 visible characters", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`owner_protected` (the owner cannot leave) or `forbidden` (not a person)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` or `conflict` (a transfer to the caller is pending); or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn leave_team(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.service.leave(&team_id(&team)?, &who).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Starts a two-step ownership transfer: the owner is sent a link to
/// confirm, then the new owner a link to accept.
#[utoipa::path(
    post,
    path = "/teams/{team}/ownership-transfer",
    tag = "lifecycle",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential: a retry with the same key and request replays the first successful response for 24 hours.")),
    request_body = StartTransfer,
    responses(
        (status = 200, description = "The transfer started (owner only)", body = schema::Applied),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: only the owner may transfer ownership", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team, or the caller is not part of it", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (not an email) or `already_owner`; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn start_transfer(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    Body(body): Body<StartTransfer>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$")),
    responses(
        (status = 204, description = "The transfer was cancelled"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: only the owner may cancel", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team or no pending transfer", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn cancel_transfer(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .service
        .cancel_transfer(&team_id(&team)?, &who)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Step two: the current owner confirms with the link sent to them.
#[utoipa::path(
    post,
    path = "/ownership-transfer/confirm",
    tag = "lifecycle",
    security(("bearer" = []), ("gateway_jwt" = [])),
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential: a retry with the same key and request replays the first successful response for 24 hours.")),
    request_body = LinkToken,
    responses(
        (status = 204, description = "Confirmed; the new owner was sent a link to accept"),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the link is addressed to someone else", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`transfer_invalid` (used, cancelled, replaced) or `transfer_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential: a retry with the same key and request replays the first successful response for 24 hours.")),
    request_body = LinkToken,
    responses(
        (status = 200, description = "The caller now owns the team", body = schema::Membership),
        (status = 400, description = "`malformed_json` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the link is addressed to someone else", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict`: the team changed meanwhile, retry; or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 410, description = "`transfer_invalid` (not confirmed, used, cancelled, replaced) or `transfer_expired`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a body of the wrong shape; or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
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

// ------------------------------------------------------------ resources

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

/// The roles a member or invitation should hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RolesBody {
    #[schema(value_type = Vec<String>, example = json!(["admin"]))]
    pub roles: Roles,
}

fn role_param(raw: &str) -> Result<RoleName, ApiError> {
    RoleName::parse(raw).map_err(|_| ApiError::not_found())
}

fn applied_response(status: StatusCode, applied: crate::service::Applied) -> Response {
    (status, etag(applied.version), Json(applied)).into_response()
}

/// Invites a person by email with roles; the invitation email goes out with
/// the change.
#[utoipa::path(
    post,
    path = "/teams/{team}/invitations",
    tag = "people",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "1 to 255 visible characters, scoped to the credential: a retry with the same key and request replays the first successful response for 24 hours."), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    request_body = InviteBody,
    responses(
        (status = 201, description = "Invited (needs `team.members.invite`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.invite`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`); or `idempotency_key_in_use`: a request with this Idempotency-Key is still running", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape), or a change the state refuses with its own code (`unknown_role`, `owner_role`, `single_role`, `owner_protected`, `invalid_setting`, `custom_roles_disabled`, `unknown_permission`, ...); or `idempotency_key_reused`: this Idempotency-Key was used with another request", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn invite(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    headers: HeaderMap,
    Body(body): Body<InviteBody>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let expected = if_match(&headers)?;
    let email = Email::parse(&body.email)
        .map_err(|e| ApiError::validation("bad address", vec![field("email", e)]))?;
    let applied = state
        .service
        .invite(&team, &who, email, body.name, body.roles, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::CREATED, applied))
}

/// Sets the roles of a member, or of a pending invitation.
#[utoipa::path(
    put,
    path = "/teams/{team}/members/{email}/roles",
    tag = "people",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("email" = String, Path, description = "The person's address (compared case-insensitively)", example = "bob@acme.com"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    request_body = RolesBody,
    responses(
        (status = 200, description = "The roles were set (needs `team.members.roles`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.roles`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape), or a change the state refuses with its own code (`unknown_role`, `owner_role`, `single_role`, `owner_protected`, `invalid_setting`, `custom_roles_disabled`, `unknown_permission`, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn set_roles(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, email)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<RolesBody>,
) -> Result<Response, ApiError> {
    let (team, email) = (team_id(&team)?, email_param(&email)?);
    let expected = if_match(&headers)?;
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
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("email" = String, Path, description = "The person's address (compared case-insensitively)", example = "bob@acme.com"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    responses(
        (status = 200, description = "Removed (needs `team.members.remove`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`bad_if_match`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.remove`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`self_removal`: use `POST /teams/{team}/leave` to leave", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn remove_member(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, email)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (team, email) = (team_id(&team)?, email_param(&email)?);
    let expected = if_match(&headers)?;
    let applied = state
        .service
        .remove_member(&team, &who, &email, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}

/// The team's settings.
#[utoipa::path(
    get,
    path = "/teams/{team}/settings",
    tag = "teams",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$")),
    responses(
        (status = 200, description = "The settings (needs `team.settings.read`)", body = schema::Settings, headers(("ETag" = String, description = "The team's version"))),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.settings.read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn get_settings(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<Response, ApiError> {
    let (settings, version) = state.service.settings(&team_id(&team)?, &who).await?;
    Ok((etag(version), Json(settings)).into_response())
}

/// Replaces the team's settings. Changing `require_2fa` needs
/// `team.security.manage`; the rest `team.settings.manage`.
#[utoipa::path(
    put,
    path = "/teams/{team}/settings",
    tag = "teams",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    request_body = schema::Settings,
    responses(
        (status = 200, description = "The settings were replaced", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.settings.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape), or a change the state refuses with its own code (`unknown_role`, `owner_role`, `single_role`, `owner_protected`, `invalid_setting`, `custom_roles_disabled`, `unknown_permission`, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn put_settings(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    headers: HeaderMap,
    Body(body): Body<Settings>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    settings_in_range(0, &body)?;
    let expected = if_match(&headers)?;
    let applied = state
        .service
        .set_settings(&team, &who, body, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}

/// The catalog's system roles and the team's custom roles.
#[utoipa::path(
    get,
    path = "/teams/{team}/roles",
    tag = "teams",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$")),
    responses(
        (status = 200, description = "The roles (needs `team.members.read`)", body = schema::RolesView, headers(("ETag" = String, description = "The team's version"))),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.members.read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn list_roles(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<Response, ApiError> {
    let (roles, version) = state.service.roles(&team_id(&team)?, &who).await?;
    Ok((etag(version), Json(roles)).into_response())
}

/// Creates or replaces a custom role.
#[utoipa::path(
    put,
    path = "/teams/{team}/roles/{name}",
    tag = "teams",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("name" = String, Path, description = "The custom role's name", example = "release-manager"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    request_body = schema::CustomRole,
    responses(
        (status = 200, description = "Created or replaced (needs `team.roles.manage`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`malformed_json`, `bad_if_match` or `bad_idempotency_key`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`body_too_large`: bodies are limited to 6 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send the body as application/json", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.roles.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (a body of the wrong shape), or a change the state refuses with its own code (`unknown_role`, `owner_role`, `single_role`, `owner_protected`, `invalid_setting`, `custom_roles_disabled`, `unknown_permission`, ...)", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn put_role(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, name)): Path<(String, String)>,
    headers: HeaderMap,
    Body(body): Body<CustomRole>,
) -> Result<Response, ApiError> {
    let team = team_id(&team)?;
    let name = RoleName::parse(&name)
        .map_err(|e| ApiError::validation("bad role name", vec![field("name", e)]))?;
    let expected = if_match(&headers)?;
    let applied = state
        .service
        .put_role(&team, &who, name, body, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}

/// Deletes a custom role nobody holds.
#[utoipa::path(
    delete,
    path = "/teams/{team}/roles/{name}",
    tag = "teams",
    security(("bearer" = [])),
    params(("team" = String, Path, description = "The team id: 2 to 63 lowercase letters, digits and dashes, starting with a letter, not ending with a dash, no two dashes in a row", example = "acme", min_length = 2, max_length = 63, pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"), ("name" = String, Path, description = "The custom role's name", example = "release-manager"), ("If-Match" = Option<String>, Header, nullable = false, pattern = "^(\\*|(W/)?\"[0-9]{1,19}\"|[0-9]{1,19})$", description = "The team's `ETag`: act only if the team is still at that version, else 412.", example = "\"5\"")),
    responses(
        (status = 200, description = "Deleted (needs `team.roles.manage`)", body = schema::Applied, headers(("ETag" = String, description = "The team's version after the change"))),
        (status = 400, description = "`bad_if_match`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`: missing, unknown, expired or revoked credential", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`forbidden`: the caller lacks `team.roles.manage`; or `owner_protected`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such team (or member, invitation, role), or the caller is not part of the team", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`version_conflict` (the team changed meanwhile) or a conflict with the state (`already_member`, `already_invited`, `role_exists`, `role_in_use`, `seat_limit_reached`)", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`version_conflict`: the team is no longer at the `If-Match` version", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "`internal`: the service failed; the cause is logged", body = Problem, content_type = "application/problem+json")
    )
)]
async fn delete_role(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (team, name) = (team_id(&team)?, role_param(&name)?);
    let expected = if_match(&headers)?;
    let applied = state
        .service
        .delete_role(&team, &who, &name, expected)
        .await
        .map_err(|e| precondition(e, expected.is_some()))?;
    Ok(applied_response(StatusCode::OK, applied))
}
