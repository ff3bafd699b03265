//! The SCIM routes (`/scim/v2/{team}/...`, `application/scim+json`, SCIM
//! error bodies) and the API routes that make and revoke SCIM tokens
//! (`/teams/{team}/scim-tokens`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};
use teamform_core::{RoleName, TeamId};

use super::patch::{self, Filter};
use super::{Desired, GROUP_SCHEMA, ScimError, USER_SCHEMA, UserRecord, UserView, bad};
use crate::auth::Principal;
use crate::http::{ApiError, AppState, Body, Caller};
use crate::service::ServiceError;

const CONTENT_TYPE: &str = "application/scim+json";
const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Largest `count` of one page.
const MAX_COUNT: usize = 200;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/teams/{team}/scim-tokens",
            get(list_tokens).post(create_token),
        )
        .route("/teams/{team}/scim-tokens/{id}", delete(revoke_token))
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
            "documentationUri": "https://github.com/teamform/teamform#scim-provisioning",
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
    let mut doc = patch::user_document(r, view.active());
    doc.insert("schemas".into(), json!([USER_SCHEMA]));
    doc.insert("id".into(), r.id.clone().into());
    if let Some(roles) = view.roles.as_ref().filter(|_| view.active()) {
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
    let resources = views.iter().map(|v| user_json(&state, &team, v)).collect();
    Ok(scim(StatusCode::OK, list(resources, total, start)))
}

async fn get_user(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let view = state.service.scim_get_user(&team, &who, &id).await?;
    Ok(user_response(&state, &team, StatusCode::OK, &view))
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
            let mut doc = patch::user_document(&before.record, before.active());
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
    role: &RoleName,
    members: bool,
) -> Result<Value, ScimError> {
    let b = base(state, team);
    let mut g = json!({
        "schemas": [GROUP_SCHEMA],
        "id": role,
        "displayName": role,
        "meta": { "resourceType": "Group", "location": format!("{b}/Groups/{role}") },
    });
    if members {
        let records = state.service.scim_group_members(team, who, role).await?;
        g["members"] = records
            .iter()
            .map(|r| json!({ "value": r.id, "display": r.user_name, "$ref": format!("{b}/Users/{}", r.id) }))
            .collect::<Vec<_>>()
            .into();
    }
    Ok(g)
}

async fn role_of(
    state: &AppState,
    team: &TeamId,
    who: &Principal,
    id: &str,
) -> Result<RoleName, ScimError> {
    let roles = state.service.scim_roles(team, who).await?;
    roles
        .into_iter()
        .find(|r| r.as_str() == id)
        .ok_or_else(|| ServiceError::NotFound.into())
}

fn wants_members(excluded: Option<&str>) -> bool {
    !excluded.is_some_and(|e| {
        e.split(',')
            .any(|a| a.trim().eq_ignore_ascii_case("members"))
    })
}

async fn list_groups(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let (start, count) = paging(&q)?;
    let mut roles = state.service.scim_roles(&team, &who).await?;
    if let Some(text) = q.filter.as_deref() {
        let (l, r) = text
            .split_once(" eq ")
            .ok_or_else(|| bad("invalidFilter", "supported: displayName eq \"...\""))?;
        if !l.trim().eq_ignore_ascii_case("displayName") {
            return Err(bad("invalidFilter", "supported: displayName eq \"...\""));
        }
        let want: String =
            serde_json::from_str(r.trim()).map_err(|_| bad("invalidFilter", "quote the value"))?;
        roles.retain(|x| x.as_str().eq_ignore_ascii_case(&want));
    }
    let total = roles.len();
    let mut out = Vec::new();
    for role in roles.iter().skip(start - 1).take(count) {
        out.push(
            group_json(
                &state,
                &team,
                &who,
                role,
                wants_members(q.excluded_attributes.as_deref()),
            )
            .await?,
        );
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
    let role = role_of(&state, &team, &who, &id).await?;
    let g = group_json(
        &state,
        &team,
        &who,
        &role,
        wants_members(q.excluded_attributes.as_deref()),
    )
    .await?;
    Ok(scim(StatusCode::OK, g))
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

async fn patch_group(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let body = json_body(&body)?;
    if id == "owner" {
        return Err(bad(
            "mutability",
            "the owner group is read-only: ownership moves only by a transfer",
        ));
    }
    let role = role_of(&state, &team, &who, &id).await?;
    let ops = body
        .get("Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("invalidSyntax", "a PATCH body has a list of Operations"))?;
    let mut add = Vec::new();
    let mut remove = Vec::new();
    let mut replace: Option<Vec<String>> = None;
    for op in ops {
        let kind = op
            .get("op")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase();
        let path = op.get("path").and_then(Value::as_str).map(str::trim);
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
                if let Some(d) = value.get("displayName")
                    && d.as_str() != Some(role.as_str())
                {
                    return Err(bad(
                        "mutability",
                        "a group's displayName is its role's name",
                    ));
                }
            }
            ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => {
                if value.is_null() {
                    replace = Some(Vec::new());
                } else {
                    remove.extend(member_ids(&value)?);
                }
            }
            ("remove", Some(p)) => {
                // members[value eq "id"]
                let inner = p
                    .strip_prefix("members[")
                    .and_then(|r| r.strip_suffix(']'))
                    .ok_or_else(|| bad("invalidPath", format!("unsupported path `{p}`")))?;
                let (l, r) = inner
                    .split_once(" eq ")
                    .ok_or_else(|| bad("invalidFilter", format!("unsupported path `{p}`")))?;
                if !l.trim().eq_ignore_ascii_case("value") {
                    return Err(bad("invalidFilter", format!("unsupported path `{p}`")));
                }
                let v: String = serde_json::from_str(r.trim())
                    .map_err(|_| bad("invalidFilter", format!("unsupported path `{p}`")))?;
                remove.push(v);
            }
            ("add" | "replace", Some(p)) if p.eq_ignore_ascii_case("displayName") => {
                if value.as_str() != Some(role.as_str()) {
                    return Err(bad(
                        "mutability",
                        "a group's displayName is its role's name",
                    ));
                }
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
    let g = group_json(&state, &team, &who, &role, true).await?;
    Ok(scim(StatusCode::OK, g))
}

async fn replace_group(
    State(state): State<AppState>,
    Path((team, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ScimError> {
    let (team, who) = caller(&state, &team, &headers).await?;
    let body = json_body(&body)?;
    if id == "owner" {
        return Err(bad(
            "mutability",
            "the owner group is read-only: ownership moves only by a transfer",
        ));
    }
    let role = role_of(&state, &team, &who, &id).await?;
    let wanted = match body.get("members") {
        Some(m) => member_ids(m)?,
        None => Vec::new(),
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
    let g = group_json(&state, &team, &who, &role, true).await?;
    Ok(scim(StatusCode::OK, g))
}

/// Groups are the team's roles: made and deleted as roles (the API or
/// team.yaml), not through SCIM.
async fn create_group(
    State(state): State<AppState>,
    Path(team): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    caller(&state, &team, &headers).await?;
    Ok(error(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "groups are the team's roles: create roles through the API or team.yaml",
    ))
}

async fn delete_group(
    State(state): State<AppState>,
    Path((team, _id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ScimError> {
    caller(&state, &team, &headers).await?;
    Ok(error(
        StatusCode::NOT_IMPLEMENTED,
        None,
        "groups are the team's roles: delete roles through the API or team.yaml",
    ))
}

// --- tokens (the API) ----------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateToken {
    name: String,
    default_role: RoleName,
}

async fn create_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
    Body(body): Body<CreateToken>,
) -> Result<Response, ApiError> {
    let team = TeamId::parse(&team).map_err(|_| ApiError::not_found())?;
    let created = state
        .service
        .create_scim_token(&team, &who, &body.name, &body.default_role)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

async fn list_tokens(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path(team): Path<String>,
) -> Result<Response, ApiError> {
    let team = TeamId::parse(&team).map_err(|_| ApiError::not_found())?;
    let items = state.service.list_scim_tokens(&team, &who).await?;
    Ok(axum::Json(json!({ "items": items })).into_response())
}

async fn revoke_token(
    State(state): State<AppState>,
    Caller(who): Caller,
    Path((team, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let team = TeamId::parse(&team).map_err(|_| ApiError::not_found())?;
    state.service.revoke_scim_token(&team, &who, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
