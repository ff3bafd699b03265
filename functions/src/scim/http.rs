//! The SCIM routes (`/scim/v2/{team}/...`, `application/scim+json`, SCIM
//! error bodies) and the API routes that make and revoke SCIM tokens
//! (`/teams/{team}/scim-tokens`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};
use teamform_core::{RoleName, TeamId};

use super::patch::{self, Filter};
use super::{
    Desired, GROUP_SCHEMA, ScimError, USER_SCHEMA, UserRecord, UserView, bad, display_name,
};
use crate::auth::Principal;
use crate::http::AppState;
use crate::service::ServiceError;

const CONTENT_TYPE: &str = "application/scim+json";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Largest `count` of one page.
const MAX_COUNT: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/scim/v2/{team}/ServiceProviderConfig",
            get(service_provider_config),
        )
        .route("/scim/v2/{team}/ResourceTypes", get(resource_types))
        .route("/scim/v2/{team}/ResourceTypes/{id}", get(resource_type))
        .route("/scim/v2/{team}/Schemas", get(schemas))
        .route("/scim/v2/{team}/Schemas/{id}", get(schema))
        .route("/scim/v2/{team}/Users", get(list_users).post(create_user))
        .route(
            "/scim/v2/{team}/Users/{id}",
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route(
            "/scim/v2/{team}/Groups",
            get(list_groups).post(create_group),
        )
        .route(
            "/scim/v2/{team}/Groups/{id}",
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route("/scim/v2/{team}/.search", axum::routing::post(search))
        .route("/scim/v2/{team}/{*rest}", axum::routing::any(no_route))
}

// --- errors and responses ----------------------------------------------------

fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({
        "schemas": [ERROR_SCHEMA],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = t.into();
    }
    scim(status, body)
}

fn scim(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        body.to_string(),
    )
        .into_response()
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        match self {
            ScimError::Bad(t, m) => error(StatusCode::BAD_REQUEST, Some(t), &m),
            ScimError::Taken(m) => error(StatusCode::CONFLICT, Some("uniqueness"), &m),
            ScimError::Service(e) => service_error(e),
        }
    }
}

fn service_error(e: ServiceError) -> Response {
    use teamform_core::ChangeError as E;
    match e {
        ServiceError::NotFound => error(StatusCode::NOT_FOUND, None, "no such resource"),
        ServiceError::Unauthenticated => error(
            StatusCode::UNAUTHORIZED,
            None,
            "missing, unknown or revoked SCIM token of this team",
        ),
        ServiceError::Forbidden(m)
        | ServiceError::Escalation(m)
        | ServiceError::TwoFactorRequired(m) => error(StatusCode::FORBIDDEN, None, &m),
        // A closed team refuses its SCIM token like any other credential.
        ServiceError::Denied { message, .. } => error(StatusCode::FORBIDDEN, None, &message),
        ServiceError::Refused { message, .. } => error(StatusCode::CONFLICT, None, &message),
        ServiceError::Change { error: e, .. } => {
            let text = e.to_string();
            match e {
                E::AlreadyMember(_) | E::AlreadyInvited(_) => {
                    error(StatusCode::CONFLICT, Some("uniqueness"), &text)
                }
                E::OwnerProtected(_) | E::OwnerRole | E::AlreadyOwner(_) => {
                    error(StatusCode::BAD_REQUEST, Some("mutability"), &text)
                }
                E::SeatLimit(_) | E::Stale(_) => error(StatusCode::CONFLICT, None, &text),
                _ => error(StatusCode::BAD_REQUEST, Some("invalidValue"), &text),
            }
        }
        ServiceError::Invalid { message, .. } => {
            error(StatusCode::BAD_REQUEST, Some("invalidValue"), &message)
        }
        ServiceError::VersionConflict { .. } | ServiceError::Conflict(_) => error(
            StatusCode::CONFLICT,
            None,
            "the team changed meanwhile; try again",
        ),
        ServiceError::Gone { message, .. } => error(StatusCode::NOT_FOUND, None, &message),
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "SCIM request failed in the store");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "the service failed; it has been logged",
            )
        }
    }
}

// --- who calls ---------------------------------------------------------------

/// The team of the path and the SCIM token of that team. A token of another
/// team, an API key or a person's token: 401.
async fn caller(
    state: &AppState,
    team: &str,
    headers: &HeaderMap,
) -> Result<(TeamId, Principal), ScimError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
        .ok_or(ServiceError::Unauthenticated)?;
    let team = TeamId::parse(team).map_err(|_| ServiceError::Unauthenticated)?;
    let who = state.service.authenticate_scim(bearer, &team).await?;
    Ok((team, who))
}

fn json_body(bytes: &Bytes) -> Result<Value, ScimError> {
    serde_json::from_slice(bytes)
        .map_err(|e| bad("invalidSyntax", format!("the body is not JSON: {e}")))
}

fn base(state: &AppState, team: &TeamId) -> String {
    format!("{}/scim/v2/{team}", state.service.public_url())
}

// --- discovery ---------------------------------------------------------------

async fn service_provider_config(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, _) = caller(&state, &team, &headers).await?;
    Ok(scim(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "patch": { "supported": true },
            "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
            "filter": { "supported": true, "maxResults": MAX_COUNT },
            "changePassword": { "supported": false },
            "sort": { "supported": false },
            "etag": { "supported": false },
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Bearer token",
                "description": "A SCIM token of the team (tfs_...), made with POST /teams/{team}/scim-tokens",
                "primary": true,
            }],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": format!("{}/ServiceProviderConfig", base(&state, &team)),
            },
        }),
    ))
}

fn user_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "A person of the team",
        "schema": USER_SCHEMA,
        "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
    })
}

fn group_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "Group",
        "name": "Group",
        "endpoint": "/Groups",
        "description": "A role of the team; its members hold it",
        "schema": GROUP_SCHEMA,
        "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
    })
}

fn list(resources: Vec<Value>, total: usize, start: usize) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

async fn resource_types(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, _) = caller(&state, &team, &headers).await?;
    let b = base(&state, &team);
    Ok(scim(
        StatusCode::OK,
        list(vec![user_type(&b), group_type(&b)], 2, 1),
    ))
}

async fn resource_type(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, _) = caller(&state, &team, &headers).await?;
    let b = base(&state, &team);
    match id.as_str() {
        "User" => Ok(scim(StatusCode::OK, user_type(&b))),
        "Group" => Ok(scim(StatusCode::OK, group_type(&b))),
        _ => Err(ServiceError::NotFound.into()),
    }
}

fn attr(name: &str, kind: &str, mutability: &str, extra: Value) -> Value {
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": name,
        "required": false,
        "caseExact": false,
        "mutability": mutability,
        "returned": "default",
        "uniqueness": "none",
    });
    if let (Value::Object(a), Value::Object(extra)) = (&mut a, extra) {
        a.extend(extra);
    }
    a
}

fn user_schema(base: &str) -> Value {
    let sub = |n: &str| attr(n, "string", "readWrite", json!({}));
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA,
        "name": "User",
        "description": "A person of the team",
        "attributes": [
            attr("userName", "string", "readWrite", json!({ "required": true, "uniqueness": "server" })),
            attr("name", "complex", "readWrite", json!({ "subAttributes": [sub("formatted"), sub("familyName"), sub("givenName")] })),
            attr("displayName", "string", "readWrite", json!({})),
            attr("active", "boolean", "readWrite", json!({})),
            attr("emails", "complex", "readWrite", json!({ "multiValued": true, "subAttributes": [
                sub("value"),
                attr("type", "string", "readWrite", json!({ "canonicalValues": ["work", "home", "other"] })),
                attr("primary", "boolean", "readWrite", json!({})),
            ] })),
            attr("groups", "complex", "readOnly", json!({ "multiValued": true, "subAttributes": [
                attr("value", "string", "readOnly", json!({})),
                attr("display", "string", "readOnly", json!({})),
                attr("$ref", "reference", "readOnly", json!({ "referenceTypes": ["Group"] })),
            ] })),
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}") },
    })
}

fn group_schema(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA,
        "name": "Group",
        "description": "A role of the team",
        "attributes": [
            attr("displayName", "string", "immutable", json!({ "required": true, "uniqueness": "server" })),
            attr("members", "complex", "readWrite", json!({ "multiValued": true, "subAttributes": [
                attr("value", "string", "immutable", json!({})),
                attr("display", "string", "readOnly", json!({})),
                attr("$ref", "reference", "immutable", json!({ "referenceTypes": ["User"] })),
            ] })),
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}") },
    })
}

async fn schemas(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, _) = caller(&state, &team, &headers).await?;
    let b = base(&state, &team);
    Ok(scim(
        StatusCode::OK,
        list(vec![user_schema(&b), group_schema(&b)], 2, 1),
    ))
}

async fn schema(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, _) = caller(&state, &team, &headers).await?;
    let b = base(&state, &team);
    match id.as_str() {
        USER_SCHEMA => Ok(scim(StatusCode::OK, user_schema(&b))),
        GROUP_SCHEMA => Ok(scim(StatusCode::OK, group_schema(&b))),
        _ => Err(ServiceError::NotFound.into()),
    }
}

// --- users -------------------------------------------------------------------

fn user_json(state: &AppState, team: &TeamId, view: &UserView) -> Value {
    let b = base(state, team);
    let r: &UserRecord = &view.record;
    let mut doc = patch::user_document(r);
    doc.insert("schemas".into(), json!([USER_SCHEMA]));
    doc.insert("id".into(), r.id.clone().into());
    if let Some(roles) = &view.roles {
        let groups: Vec<Value> = roles
            .iter()
            .map(|role| json!({ "value": role, "display": role, "$ref": format!("{b}/Groups/{role}") }))
            .collect();
        doc.insert("groups".into(), groups.into());
    }
    doc.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": r.created.to_rfc3339(),
            "lastModified": r.modified.to_rfc3339(),
            "location": format!("{b}/Users/{}", r.id),
            "version": format!("W/\"{}\"", r.rev),
        }),
    );
    Value::Object(doc)
}

fn user_response(state: &AppState, team: &TeamId, status: StatusCode, view: &UserView) -> Response {
    let mut res = scim(status, user_json(state, team, view));
    if let Ok(v) = HeaderValue::from_str(&format!("{}/Users/{}", base(state, team), view.record.id))
    {
        res.headers_mut().insert(header::LOCATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("W/\"{}\"", view.record.rev)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

#[derive(Deserialize)]
struct ListQuery {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

/// 1-based `startIndex` (below 1 is 1) and `count` (negative is 0, capped).
fn paging(q: &ListQuery) -> Result<(usize, usize), ScimError> {
    let num = |v: &Option<String>, what: &str, default: i64| -> Result<i64, ScimError> {
        match v {
            None => Ok(default),
            Some(t) => t
                .trim()
                .parse::<i64>()
                .map_err(|_| bad("invalidValue", format!("{what} is an integer"))),
        }
    };
    let start = num(&q.start_index, "startIndex", 1)?.max(1);
    let count = num(&q.count, "count", 100)?.clamp(0, MAX_COUNT as i64);
    Ok((
        usize::try_from(start).unwrap_or(1),
        usize::try_from(count).unwrap_or(0),
    ))
}

async fn list_users(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let filter = q.filter.as_deref().map(Filter::parse).transpose()?;
    let (start, count) = paging(&q)?;
    let (total, views) = state
        .service
        .scim_list_users(&team, &who, filter.as_ref(), start, count)
        .await?;
    let resources = views
        .iter()
        .map(|v| project(user_json(&state, &team, v), &q, USER_SCHEMA))
        .collect();
    Ok(scim(StatusCode::OK, list(resources, total, start)))
}

async fn get_user(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let view = state.service.scim_get_user(&team, &who, &id).await?;
    let mut res = user_response(&state, &team, StatusCode::OK, &view);
    if q.attributes.is_some() || q.excluded_attributes.is_some() {
        let body = project(user_json(&state, &team, &view), &q, USER_SCHEMA);
        *res.body_mut() = axum::body::Body::from(body.to_string());
    }
    Ok(res)
}

async fn create_user(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let desired = Desired::parse(&json_body(&body)?)?;
    let view = state.service.scim_create_user(&team, &who, desired).await?;
    Ok(user_response(&state, &team, StatusCode::CREATED, &view))
}

async fn replace_user(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let desired = Desired::parse(&json_body(&body)?)?;
    let view = state
        .service
        .scim_update_user(&team, &who, &id, |_| Ok(desired))
        .await?;
    Ok(user_response(&state, &team, StatusCode::OK, &view))
}

async fn patch_user(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let body = json_body(&body)?;
    let view = state
        .service
        .scim_update_user(&team, &who, &id, |before| {
            let mut doc = patch::user_document(&before.record);
            patch::apply(&mut doc, &body)?;
            Desired::parse(&Value::Object(doc))
        })
        .await?;
    Ok(user_response(&state, &team, StatusCode::OK, &view))
}

async fn delete_user(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    state.service.scim_delete_user(&team, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- groups ------------------------------------------------------------------

async fn group_json(
    state: &AppState,
    team: &TeamId,
    who: &Principal,
    (role, display): (&RoleName, &str),
    members: bool,
) -> Result<Value, ScimError> {
    let b = base(state, team);
    let mut g = json!({
        "schemas": [GROUP_SCHEMA],
        "id": role,
        "displayName": display,
        "meta": { "resourceType": "Group", "location": format!("{b}/Groups/{role}") },
    });
    if let Some(x) = state.service.scim_group_external_id(team, role).await? {
        g["externalId"] = x.into();
    }
    if members {
        let records = state.service.scim_group_members(team, who, role).await?;
        g["members"] = records
            .iter()
            .map(|r| json!({ "value": r.id, "$ref": format!("{b}/Users/{}", r.id) }))
            .collect::<Vec<_>>()
            .into();
    }
    Ok(g)
}

/// The groups of the team: (role, displayName), catalog roles first.
async fn groups(
    state: &AppState,
    team: &TeamId,
    who: &Principal,
) -> Result<Vec<(RoleName, String)>, ScimError> {
    let roles = state.service.scim_roles(team, who).await?;
    let custom = state.service.scim_custom_roles(team, who).await?;
    Ok(roles
        .into_iter()
        .map(|r| {
            let d = display_name(&r, custom.get(&r));
            (r, d)
        })
        .collect())
}

async fn role_of(
    state: &AppState,
    team: &TeamId,
    who: &Principal,
    id: &str,
) -> Result<(RoleName, String), ScimError> {
    if id == "owner" {
        return Err(bad(
            "mutability",
            "the owner group is read-only: ownership moves only by a transfer",
        ));
    }
    groups(state, team, who)
        .await?
        .into_iter()
        .find(|(r, _)| r.as_str() == id)
        .ok_or_else(|| ServiceError::NotFound.into())
}

/// Whether a response asks for members (they cost a read of the role's
/// holders): not when `excludedAttributes` names them, or `attributes`
/// leaves them out.
fn wants_members(q: &ListQuery) -> bool {
    let named = |list: &Option<String>| {
        list.as_deref().is_some_and(|e| {
            e.split(',').any(|a| {
                let a = a.trim();
                let a = a
                    .strip_prefix(GROUP_SCHEMA)
                    .map(|r| r.trim_start_matches(':'))
                    .unwrap_or(a);
                a.eq_ignore_ascii_case("members") || a.to_ascii_lowercase().starts_with("members.")
            })
        })
    };
    if q.attributes.is_some() {
        return named(&q.attributes);
    }
    !named(&q.excluded_attributes)
}

async fn list_groups(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let (start, count) = paging(&q)?;
    let mut all = groups(&state, &team, &who).await?;
    if let Some(text) = q.filter.as_deref() {
        let invalid = || {
            bad(
                "invalidFilter",
                "supported: displayName eq \"...\" or id eq \"...\"",
            )
        };
        let (l, r) = text.split_once(" eq ").ok_or_else(invalid)?;
        let want: String = serde_json::from_str(r.trim()).map_err(|_| invalid())?;
        match l.trim() {
            a if a.eq_ignore_ascii_case("displayName") => {
                all.retain(|(_, d)| d.eq_ignore_ascii_case(&want))
            }
            a if a.eq_ignore_ascii_case("id") => all.retain(|(r, _)| r.as_str() == want),
            _ => return Err(invalid()),
        }
    }
    let total = all.len();
    let mut out = Vec::new();
    for (role, display) in all.iter().skip(start - 1).take(count) {
        let g = group_json(&state, &team, &who, (role, display), wants_members(&q)).await?;
        out.push(project(g, &q, GROUP_SCHEMA));
    }
    Ok(scim(StatusCode::OK, list(out, total, start)))
}

async fn get_group(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let (role, display) = match id.as_str() {
        // The owner group can be read, never changed.
        "owner" => (RoleName::owner(), "owner".to_owned()),
        _ => role_of(&state, &team, &who, &id).await?,
    };
    let g = group_json(&state, &team, &who, (&role, &display), wants_members(&q)).await?;
    Ok(scim(StatusCode::OK, project(g, &q, GROUP_SCHEMA)))
}

fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items: Vec<&Value> = match value {
        Value::Array(list) => list.iter().collect(),
        Value::Object(_) => vec![value],
        _ => return Err(bad("invalidValue", "members are a list of {\"value\": id}")),
    };
    items
        .into_iter()
        .map(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad("invalidValue", "each member has a value (a user id)"))
        })
        .collect()
}

/// A displayName sent for an existing group must be its own.
fn same_name(value: Option<&Value>, display: &str) -> Result<(), ScimError> {
    match value {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_str() == Some(display) => Ok(()),
        Some(_) => Err(bad(
            "mutability",
            "a group's displayName is its role's name and cannot change",
        )),
    }
}

async fn patch_group(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let body = json_body(&body)?;
    let (role, display) = role_of(&state, &team, &who, &id).await?;
    let ops = body
        .get("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("invalidSyntax", "a PATCH body has a list of Operations"))?;
    let mut add = Vec::new();
    let mut remove = Vec::new();
    let mut replace: Option<Vec<String>> = None;
    let mut external: Option<Option<String>> = None;
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str).map(str::trim);
        let path = path.map(|p| {
            p.strip_prefix(GROUP_SCHEMA)
                .map(|r| r.trim_start_matches(':'))
                .unwrap_or(p)
        });
        let value = op.get("value").cloned().unwrap_or(Value::Null);
        match (kind.as_str(), path) {
            ("add", Some(p)) if p.eq_ignore_ascii_case("members") => {
                add.extend(member_ids(&value)?)
            }
            ("replace", Some(p)) if p.eq_ignore_ascii_case("members") => {
                replace = Some(member_ids(&value)?)
            }
            ("add" | "replace", None) => {
                if let Some(m) = value.get("members") {
                    if kind == "add" {
                        add.extend(member_ids(m)?)
                    } else {
                        replace = Some(member_ids(m)?)
                    }
                }
                same_name(value.get("displayName"), &display)?;
                if let Some(x) = value.get("externalId") {
                    external = Some(Some(external_id(x)?));
                }
            }
            ("add" | "replace", Some(p)) if p.eq_ignore_ascii_case("displayName") => {
                same_name(Some(&value), &display)?;
            }
            ("add" | "replace", Some(p)) if p.eq_ignore_ascii_case("externalId") => {
                external = Some(Some(external_id(&value)?));
            }
            ("remove", Some(p)) if p.eq_ignore_ascii_case("externalId") => {
                external = Some(None);
            }
            ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => {
                if value.is_null() {
                    replace = Some(Vec::new());
                } else {
                    remove.extend(member_ids(&value)?);
                }
            }
            ("remove", Some(p)) if p.eq_ignore_ascii_case("displayName") => {
                return Err(bad("mutability", "a group's displayName is required"));
            }
            ("remove", Some(p)) => {
                // members[value eq "id"]
                let invalid = || bad("invalidPath", format!("unsupported path `{p}`"));
                let inner = super::patch::strip_ci(p, "members[")
                    .and_then(|r| r.strip_suffix(']'))
                    .ok_or_else(invalid)?;
                let (l, r) = inner.split_once(" eq ").ok_or_else(invalid)?;
                if !l.trim().eq_ignore_ascii_case("value") {
                    return Err(invalid());
                }
                let v: String = serde_json::from_str(r.trim()).map_err(|_| invalid())?;
                remove.push(v);
            }
            _ => {
                return Err(bad(
                    "invalidSyntax",
                    format!("unsupported operation `{kind}` on `{}`", path.unwrap_or("")),
                ));
            }
        }
    }
    if let Some(wanted) = replace {
        let current: Vec<String> = state
            .service
            .scim_group_members(&team, &who, &role)
            .await?
            .into_iter()
            .map(|r| r.id)
            .collect();
        remove.extend(current.iter().filter(|c| !wanted.contains(c)).cloned());
        add.extend(wanted.into_iter().filter(|w| !current.contains(w)));
    }
    state
        .service
        .scim_change_group(&team, &who, &role, &add, &remove)
        .await?;
    if let Some(x) = external {
        state
            .service
            .scim_set_group_external_id(&team, &who, &role, x.as_deref())
            .await?;
    }
    let g = group_json(&state, &team, &who, (&role, &display), true).await?;
    Ok(scim(StatusCode::OK, g))
}

fn external_id(v: &Value) -> Result<String, ScimError> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| bad("invalidValue", "externalId is a string"))
}

async fn replace_group(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let body = json_body(&body)?;
    let (role, display) = role_of(&state, &team, &who, &id).await?;
    same_name(body.get("displayName"), &display)?;
    let wanted = match body.get("members") {
        Some(Value::Null) | None => Vec::new(),
        Some(m) => member_ids(m)?,
    };
    let current: Vec<String> = state
        .service
        .scim_group_members(&team, &who, &role)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    let remove: Vec<String> = current
        .iter()
        .filter(|c| !wanted.contains(c))
        .cloned()
        .collect();
    let add: Vec<String> = wanted
        .into_iter()
        .filter(|w| !current.contains(w))
        .collect();
    state
        .service
        .scim_change_group(&team, &who, &role, &add, &remove)
        .await?;
    let external = match body.get("externalId") {
        None | Some(Value::Null) => None,
        Some(x) => Some(external_id(x)?),
    };
    state
        .service
        .scim_set_group_external_id(&team, &who, &role, external.as_deref())
        .await?;
    let g = group_json(&state, &team, &who, (&role, &display), true).await?;
    Ok(scim(StatusCode::OK, g))
}

/// POST /Groups: a new custom role (no permissions) for the displayName.
async fn create_group(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let body = json_body(&body)?;
    let display = body
        .get("displayName")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("invalidValue", "displayName is required"))?;
    let members = match body.get("members") {
        Some(Value::Null) | None => Vec::new(),
        Some(m) => member_ids(m)?,
    };
    let external = match body.get("externalId") {
        None | Some(Value::Null) => None,
        Some(x) => Some(external_id(x)?),
    };
    let role = state
        .service
        .scim_create_group(&team, &who, display, &members)
        .await?;
    if external.is_some() {
        state
            .service
            .scim_set_group_external_id(&team, &who, &role, external.as_deref())
            .await?;
    }
    let (role, display) = role_of(&state, &team, &who, role.as_str()).await?;
    let g = group_json(&state, &team, &who, (&role, &display), true).await?;
    let mut res = scim(StatusCode::CREATED, g);
    if let Ok(v) = HeaderValue::from_str(&format!("{}/Groups/{role}", base(&state, &team))) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

async fn delete_group(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let (role, _) = role_of(&state, &team, &who, &id).await?;
    state.service.scim_delete_group(&team, &who, &role).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// --- the rest ----------------------------------------------------------------

/// POST /.search across resource types is not offered (RFC 7644 3.4.3
/// lets a server answer 501).
async fn search(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    caller(&state, &team, &headers).await?;
    Ok(error(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "searching several resource types at once is not supported: GET /Users or /Groups with a filter",
    ))
}

/// Any other path under a team's SCIM root: a SCIM 404.
async fn no_route(
    State(state): State<AppState>,
    Path((team, _rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    caller(&state, &team, &headers).await?;
    Err(ServiceError::NotFound.into())
}

/// `attributes` / `excludedAttributes` (RFC 7644 3.9): `id` and `schemas`
/// always stay; `attributes` wins when both are given.
fn project(v: Value, q: &ListQuery, schema: &str) -> Value {
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|a| {
                let a = a.trim();
                a.strip_prefix(schema)
                    .map(|r| r.trim_start_matches(':'))
                    .unwrap_or(a)
                    .to_ascii_lowercase()
            })
            .filter(|a| !a.is_empty())
            .collect()
    };
    let Value::Object(mut map) = v else {
        return v;
    };
    let always = ["id", "schemas"];
    if let Some(list) = q.attributes.as_deref() {
        let wanted = names(list);
        map.retain(|k, _| {
            let k = k.to_ascii_lowercase();
            always.contains(&k.as_str())
                || wanted
                    .iter()
                    .any(|w| *w == k || w.starts_with(&format!("{k}.")))
        });
    } else if let Some(list) = q.excluded_attributes.as_deref() {
        for name in names(list) {
            match name.split_once('.') {
                None => {
                    if !always.contains(&name.as_str()) {
                        map.retain(|k, _| !k.eq_ignore_ascii_case(&name));
                    }
                }
                Some((head, sub)) => {
                    for (k, v) in map.iter_mut() {
                        if !k.eq_ignore_ascii_case(head) {
                            continue;
                        }
                        match v {
                            Value::Object(m) => m.retain(|s, _| !s.eq_ignore_ascii_case(sub)),
                            Value::Array(items) => {
                                for item in items {
                                    if let Value::Object(m) = item {
                                        m.retain(|s, _| !s.eq_ignore_ascii_case(sub));
                                    }
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    Value::Object(map)
}
