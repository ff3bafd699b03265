//! `GET /openapi.json` against the router it describes: the document is
//! OpenAPI 3.1, every documented operation is routed and every route is
//! documented, errors are documented as problem+json, and what the router
//! really answers (statuses, headers, bodies) matches the document.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use teamform_core::{Catalog, Change};
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::Service;
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

/// Every route the router serves, as (method, path).
const ROUTES: &[(&str, &str)] = &[
    ("get", "/teams/{team}/audit/export"),
    ("get", "/healthz"),
    ("get", "/openapi.json"),
    ("get", "/catalog"),
    ("get", "/me"),
    ("post", "/me/tokens"),
    ("get", "/me/tokens"),
    ("delete", "/me/tokens/{id}"),
    ("post", "/teams"),
    ("get", "/teams/{team}/state"),
    ("post", "/teams/{team}/changes"),
    ("get", "/teams/{team}/members"),
    ("get", "/teams/{team}/audit"),
    ("get", "/teams/{team}/check"),
    ("post", "/teams/{team}/api-keys"),
    ("get", "/teams/{team}/api-keys"),
    ("delete", "/teams/{team}/api-keys/{id}"),
    ("post", "/teams/{team}/scim-tokens"),
    ("get", "/teams/{team}/scim-tokens"),
    ("delete", "/teams/{team}/scim-tokens/{id}"),
    ("get", "/me/teams"),
    ("post", "/invitations/accept"),
    ("post", "/teams/{team}/invitations/{email}/resend"),
    ("delete", "/teams/{team}/invitations/{email}"),
    ("post", "/teams/{team}/leave"),
    ("post", "/teams/{team}/ownership-transfer"),
    ("delete", "/teams/{team}/ownership-transfer"),
    ("post", "/ownership-transfer/confirm"),
    ("post", "/ownership-transfer/accept"),
    ("post", "/teams/{team}/invitations"),
    ("put", "/teams/{team}/members/{email}/roles"),
    ("delete", "/teams/{team}/members/{email}"),
    ("get", "/teams/{team}/settings"),
    ("put", "/teams/{team}/settings"),
    ("get", "/teams/{team}/roles"),
    ("put", "/teams/{team}/roles/{name}"),
    ("delete", "/teams/{team}/roles/{name}"),
    ("get", "/teams/{team}/close"),
    ("post", "/teams/{team}/close"),
    ("post", "/teams/{team}/reopen"),
];

/// Public operations that take no input: no client error is possible.
const WITHOUT_PROBLEMS: &[&str] = &["/healthz", "/openapi.json", "/catalog"];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn local_app() -> Router {
    let store = SqliteStore::in_memory().expect("in-memory store");
    let clock = ManualClock::new("2026-11-28T12:00:00Z".parse().expect("time"));
    // The local host, like `teamform serve` over its own SQLite file.
    let service = Arc::new(
        Service::new(
            Arc::new(store),
            Arc::new(Catalog::standard()),
            Arc::new(clock),
            "http://test".into(),
        )
        .with_local_owner_tokens(),
    );
    app(AppState::new(service, Anonymous::LocalOwner))
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    /// `Value::Null` for an empty body.
    body: Value,
}

impl Reply {
    fn content_type(&self) -> &str {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

async fn send(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder()
        .method(method.to_uppercase().as_str())
        .uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("router answers");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn document(router: &Router) -> Value {
    let r = send(router, "get", "/openapi.json", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type(), "application/json");
    r.body
}

/// Every (method, path) of the document's `paths`.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), op));
            }
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{team}", "acme")
        .replace("{id}", "x")
        .replace("{email}", "x@acme.com")
        .replace("{name}", "x")
}

fn is_router_fallback(r: &Reply) -> bool {
    (r.status == StatusCode::NOT_FOUND && r.body["detail"] == "no such route")
        || r.status == StatusCode::METHOD_NOT_ALLOWED
}

#[tokio::test]
async fn the_document_is_openapi_3_1() {
    let router = local_app();
    let doc = document(&router).await;
    let version = doc["openapi"].as_str().expect("openapi");
    assert!(version.starts_with("3.1"), "{version}");
    assert_eq!(doc["info"]["title"], "teamform");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc,
        serde_json::to_value(teamform_functions::openapi::document()).expect("document"),
        "the served document is the generated one"
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let bearer = schemes["bearer"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        bearer.contains("tfk_") && bearer.contains("tfp_"),
        "{bearer}"
    );
    let jwt = schemes["gateway_jwt"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(jwt.contains("API Gateway"), "{jwt}");
    let problem = &doc["components"]["schemas"]["Problem"]["properties"];
    for field in ["type", "title", "status", "code", "detail", "errors"] {
        assert!(problem.get(field).is_some(), "Problem.{field}");
    }
}

#[tokio::test]
async fn the_fallbacks_are_recognisable() {
    let router = local_app();
    let r = send(&router, "get", "/no/such/route", None, &[]).await;
    assert!(is_router_fallback(&r), "{:#}", r.body);
    assert_eq!(r.body["code"], "not_found");
    let r = send(&router, "put", "/healthz", None, &[]).await;
    assert!(is_router_fallback(&r));
    // A resource that does not exist is not the fallback.
    let r = send(&router, "get", "/teams/nosuch/state", None, &[]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!is_router_fallback(&r), "{:#}", r.body);
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let router = local_app();
    let doc = document(&router).await;
    let ops = operations(&doc);
    assert!(!ops.is_empty());
    for (method, path, _) in &ops {
        let body = (method == "post").then(|| json!({}));
        let r = send(&router, method, &concrete(path), body, &[]).await;
        assert!(
            !is_router_fallback(&r),
            "{method} {path} is documented but not routed: {} {:#}",
            r.status,
            r.body
        );
    }
    // The other methods of a documented path are not served.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(*method).is_none() {
                let r = send(&router, method, &concrete(path), None, &[]).await;
                assert_eq!(
                    r.status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
}

#[tokio::test]
async fn the_document_has_exactly_the_known_routes() {
    let doc = document(&local_app()).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let known: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = known.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the document: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "documented routes the router is not known to serve: {extra:?}"
    );
}

fn problem_statuses(op: &Value) -> BTreeSet<String> {
    op["responses"]
        .as_object()
        .expect("responses")
        .iter()
        .filter(|(_, r)| {
            r["content"]["application/problem+json"]["schema"]["$ref"]
                == "#/components/schemas/Problem"
        })
        .map(|(s, _)| s.clone())
        .collect()
}

fn parameter<'a>(op: &'a Value, name: &str, place: &str) -> Option<&'a Value> {
    op["parameters"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name && p["in"] == place)
}

#[tokio::test]
async fn every_operation_documents_its_problems() {
    let doc = document(&local_app()).await;
    for (method, path, op) in operations(&doc) {
        let problems = problem_statuses(op);
        let at = format!("{method} {path}");
        if WITHOUT_PROBLEMS.contains(&path.as_str()) {
            assert!(op.get("security").is_none(), "{at} is public");
            assert!(op.get("parameters").is_none(), "{at} takes no input");
            assert!(op.get("requestBody").is_none(), "{at} takes no input");
            assert!(op["responses"]["200"].is_object(), "{at} answers 200");
            continue;
        }
        assert!(
            problems.iter().any(|s| s.starts_with('4')),
            "{at} documents no 4xx problem"
        );
        assert!(problems.contains("500"), "{at}: 500");
        // Team routes have no gateway authorizer in AWS: only teamform's
        // own credentials reach them.
        let security = if path.starts_with("/teams/{team}") {
            json!([{"bearer": []}])
        } else {
            json!([{"bearer": []}, {"gateway_jwt": []}])
        };
        assert_eq!(op["security"], security, "{at}: security");
        assert!(problems.contains("401"), "{at}: 401");
        if ["{team}", "{id}", "{email}", "{name}"]
            .iter()
            .any(|p| path.contains(p))
        {
            assert!(problems.contains("404"), "{at}: 404");
        }
        if op.get("requestBody").is_some() {
            for s in ["400", "413", "415", "422"] {
                assert!(problems.contains(s), "{at}: {s}");
            }
        }
        let queries = op["parameters"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
        if queries {
            assert!(problems.contains("422"), "{at}: 422");
        }
        if method == "post" {
            let key = parameter(op, "Idempotency-Key", "header");
            assert!(key.is_some(), "{at}: Idempotency-Key");
        }
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["in"] == "path" {
                let name = p["name"].as_str().unwrap_or_default();
                assert!(path.contains(&format!("{{{name}}}")), "{at}: {name}");
                assert_eq!(p["required"], true, "{at}: {name}");
            }
        }
    }
}

#[tokio::test]
async fn versions_travel_in_headers() {
    let doc = document(&local_app()).await;
    let op = |m: &str, p: &str| doc["paths"][p][m].clone();
    let changes = op("post", "/teams/{team}/changes");
    let if_match = parameter(&changes, "If-Match", "header").expect("If-Match");
    assert_eq!(if_match["required"], false);
    assert!(problem_statuses(&changes).contains("412"));
    for (m, p, status) in [
        ("get", "/teams/{team}/state", "200"),
        ("post", "/teams/{team}/changes", "200"),
        ("post", "/teams", "201"),
    ] {
        let etag = &op(m, p)["responses"][status]["headers"]["ETag"];
        assert!(etag.is_object(), "{m} {p}: ETag");
    }
}

// ------------------------------------------------- the document's schemas

/// The schema a `$ref` names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(target.is_object(), "dangling $ref {r}");
            resolve(doc, target)
        }
        None => schema,
    }
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// Validates `value` against `schema`, strictly: an object with `properties`
/// takes no other property unless `additionalProperties` says so.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let matching = alternatives
            .iter()
            .filter(|alt| {
                let mut e = Vec::new();
                validate(doc, alt, value, at, &mut e);
                e.is_empty()
            })
            .count();
        if matching != 1 {
            errors.push(format!(
                "{at}: matches {matching} alternatives of oneOf: {value}"
            ));
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
        errors.push(format!("{at}: {value} is not {types:?}"));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let (Some(format), Some(text)) = (schema["format"].as_str(), value.as_str()) {
        let ok = match format {
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "email" => text.contains('@'),
            _ => true,
        };
        if !ok {
            errors.push(format!("{at}: `{text}` is not a {format}"));
        }
    }
    match value {
        Value::Object(map) => {
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !map.contains_key(name) {
                    errors.push(format!("{at}: required `{name}` is missing"));
                }
            }
            for (key, v) in map {
                let here = format!("{at}.{key}");
                match (
                    schema["properties"].get(key),
                    &schema["additionalProperties"],
                ) {
                    (Some(s), _) => validate(doc, s, v, &here, errors),
                    (None, Value::Bool(true)) => {}
                    (None, s @ Value::Object(_)) => validate(doc, s, v, &here, errors),
                    // A free-form object (no `properties`) takes anything.
                    (None, _) if schema.get("properties").is_none() => {}
                    (None, _) => errors.push(format!("{here}: not in the schema")),
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    validate(doc, s, v, &format!("{at}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// Sends a request and checks the answer against the document: its status
/// is documented for the operation, its content type and body match.
async fn checked(
    router: &Router,
    doc: &Value,
    method: &str,
    path: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let r = send(router, method, uri, body, headers).await;
    let at = format!("{method} {uri} -> {}", r.status.as_u16());
    let op = &doc["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not documented");
    let response = &op["responses"][r.status.as_str()];
    assert!(
        response.is_object(),
        "{at}: status not documented: {:#}",
        r.body
    );
    match response["content"].as_object() {
        None => assert!(r.body.is_null(), "{at}: undocumented body {:#}", r.body),
        Some(content) => {
            let media = content.get(r.content_type()).unwrap_or_else(|| {
                panic!("{at}: content type `{}` not documented", r.content_type())
            });
            let mut errors = Vec::new();
            validate(doc, &media["schema"], &r.body, "body", &mut errors);
            assert!(errors.is_empty(), "{at}: {errors:#?}\n{:#}", r.body);
        }
    }
    for name in response["headers"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        assert!(r.headers.contains_key(name.as_str()), "{at}: header {name}");
    }
    r
}

#[tokio::test]
async fn answers_match_the_document() {
    let router = local_app();
    let doc = document(&router).await;
    let r = &router;
    let d = &doc;

    checked(r, d, "get", "/healthz", "/healthz", None, &[]).await;
    checked(r, d, "get", "/catalog", "/catalog", None, &[]).await;
    checked(r, d, "get", "/me", "/me", None, &[]).await;

    let team = json!({"team": "acme", "display_name": "Acme", "owner": "alice@acme.com"});
    let created = checked(r, d, "post", "/teams", "/teams", Some(team.clone()), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let again = checked(r, d, "post", "/teams", "/teams", Some(team), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let bad = json!({"team": "A", "owner": "nope"});
    let bad = checked(r, d, "post", "/teams", "/teams", Some(bad), &[]).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let changes = "/teams/{team}/changes";
    let batch = json!({"changes": [
        {"op": "create_role", "name": "auditor", "role": {"description": "Reads the audit", "permissions": ["team.audit.read"]}},
        {"op": "update_settings", "from": {"require_2fa": false, "invitation_ttl_days": 15, "seat_limit": null},
            "to": {"require_2fa": false, "invitation_ttl_days": 10, "seat_limit": 50}},
        {"op": "invite", "email": "bob@acme.com", "name": "Bob", "roles": ["developer"]},
        {"op": "invite", "email": "carol@acme.com", "roles": ["auditor"]},
    ]});
    let etag = [("if-match", "\"1\"")];
    let applied = checked(
        r,
        d,
        "post",
        changes,
        "/teams/acme/changes",
        Some(batch.clone()),
        &etag,
    )
    .await;
    assert_eq!(applied.status, StatusCode::OK, "{:#}", applied.body);
    let stale = checked(
        r,
        d,
        "post",
        changes,
        "/teams/acme/changes",
        Some(batch.clone()),
        &etag,
    )
    .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let conflict = checked(
        r,
        d,
        "post",
        changes,
        "/teams/acme/changes",
        Some(batch),
        &[],
    )
    .await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{:#}", conflict.body);
    let json_type = [("content-type", "application/json")];
    let garbled = checked(
        r,
        d,
        "post",
        changes,
        "/teams/acme/changes",
        None,
        &json_type,
    )
    .await;
    assert_eq!(garbled.status, StatusCode::BAD_REQUEST);
    let unknown = json!({"changes": [{"op": "dance"}]});
    let unknown = checked(
        r,
        d,
        "post",
        changes,
        "/teams/acme/changes",
        Some(unknown),
        &[],
    )
    .await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    let state = "/teams/{team}/state";
    let s = checked(r, d, "get", state, "/teams/acme/state", None, &[]).await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.body["invitations"].as_object().map(|m| m.len()), Some(2));
    let missing = checked(r, d, "get", state, "/teams/nosuch/state", None, &[]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let members = "/teams/{team}/members";
    let page = checked(
        r,
        d,
        "get",
        members,
        "/teams/acme/members?limit=2",
        None,
        &[],
    )
    .await;
    let cursor = page.body["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let uri = format!("/teams/acme/members?limit=2&cursor={cursor}");
    checked(r, d, "get", members, &uri, None, &[]).await;
    let uri = "/teams/acme/members?status=pending&role=developer";
    checked(r, d, "get", members, uri, None, &[]).await;
    let limit = checked(
        r,
        d,
        "get",
        members,
        "/teams/acme/members?limit=0",
        None,
        &[],
    )
    .await;
    assert_eq!(limit.status, StatusCode::UNPROCESSABLE_ENTITY);

    let audit = "/teams/{team}/audit";
    let page = checked(r, d, "get", audit, "/teams/acme/audit", None, &[]).await;
    assert!(page.body["items"].as_array().is_some_and(|i| i.len() >= 5));

    let check = "/teams/{team}/check";
    let uri = "/teams/acme/check?permission=team.members.read";
    checked(r, d, "get", check, uri, None, &[]).await;
    let uri = "/teams/acme/check?permission=no.such";
    let unknown = checked(r, d, "get", check, uri, None, &[]).await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);

    let keys = "/teams/{team}/api-keys";
    let key = json!({"name": "ci", "roles": ["developer"], "expires_at": "2027-01-01T00:00:00Z"});
    let idem = [("idempotency-key", "k1")];
    let made = checked(
        r,
        d,
        "post",
        keys,
        "/teams/acme/api-keys",
        Some(key.clone()),
        &idem,
    )
    .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let replay = checked(r, d, "post", keys, "/teams/acme/api-keys", Some(key), &idem).await;
    assert_eq!(replay.body["secret"], Value::Null, "{:#}", replay.body);
    let secret = made.body["secret"].as_str().expect("secret");
    let bearer = format!("Bearer {secret}");
    let me = checked(
        r,
        d,
        "get",
        "/me",
        "/me",
        None,
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(me.body["kind"], "api_key");
    let listed = checked(r, d, "get", keys, "/teams/acme/api-keys", None, &[]).await;
    assert!(
        listed.body["items"][0]["last_used_at"].is_string(),
        "{:#}",
        listed.body
    );
    let tokens = [("authorization", bearer.as_str())];
    let refused = checked(r, d, "get", "/me/tokens", "/me/tokens", None, &tokens).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let bogus = [("authorization", "Bearer tfk_nope")];
    let denied = checked(r, d, "get", "/me", "/me", None, &bogus).await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED);

    let token = json!({"name": "laptop"});
    let made = checked(r, d, "post", "/me/tokens", "/me/tokens", Some(token), &[]).await;
    assert_eq!(made.status, StatusCode::CREATED);
    let listed = checked(r, d, "get", "/me/tokens", "/me/tokens", None, &[]).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    let id = made.body["id"].as_str().expect("id");
    let path = "/me/tokens/{id}";
    let gone = checked(r, d, "delete", path, &format!("/me/tokens/{id}"), None, &[]).await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let again = checked(r, d, "delete", path, &format!("/me/tokens/{id}"), None, &[]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);

    let id = listed_key_id(r).await;
    let path = "/teams/{team}/api-keys/{id}";
    let uri = format!("/teams/acme/api-keys/{id}");
    for bad in [
        "W/\"x\"",
        "\"5",
        "W/5",
        "+5",
        "\"1\", \"2\"",
        "12345678901234567890",
    ] {
        let refused = checked(r, d, "delete", path, &uri, None, &[("if-match", bad)]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "If-Match: {bad}");
        assert_eq!(refused.body["code"], "bad_if_match");
    }
    let revoked = checked(r, d, "delete", path, &uri, None, &[]).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let again = checked(r, d, "delete", path, &uri, None, &[]).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

/// The statuses `Idempotency-Key` and `If-Match` cause, and the settings'
/// ranges, are documented and are what the server does.
#[tokio::test]
async fn header_and_range_refusals_match_the_document() {
    let router = local_app();
    let doc = document(&router).await;
    let (r, d) = (&router, &doc);
    let team = json!({"team": "acme", "owner": "alice@acme.com"});
    let created = checked(r, d, "post", "/teams", "/teams", Some(team), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let invite = json!({"email": "bob@acme.com", "roles": ["developer"]});
    let path = "/teams/{team}/invitations";
    let invited = checked(
        r,
        d,
        "post",
        path,
        "/teams/acme/invitations",
        Some(invite),
        &[],
    )
    .await;
    assert_eq!(invited.status, StatusCode::CREATED);

    // Every POST that takes an Idempotency-Key documents what it causes.
    for (method, path, op) in operations(d) {
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let Some(key) = params.iter().find(|p| p["name"] == "Idempotency-Key") else {
            continue;
        };
        assert_eq!(method, "post", "{method} {path}");
        assert_eq!(key["schema"]["pattern"], "^[!-~]+$", "{path}");
        assert_eq!(key["schema"]["maxLength"], 255, "{path}");
        for status in ["400", "409", "422"] {
            let text = op["responses"][status]["description"]
                .as_str()
                .unwrap_or("");
            let code = match status {
                "400" => "bad_idempotency_key",
                "409" => "idempotency_key_in_use",
                _ => "idempotency_key_reused",
            };
            assert!(text.contains(code), "{path} {status}: {text}");
        }
    }
    let resend = "/teams/{team}/invitations/{email}/resend";
    let uri = "/teams/acme/invitations/bob@acme.com/resend";
    for bad in ["a b", "caf\u{e9}"] {
        let refused = checked(r, d, "post", resend, uri, None, &[("idempotency-key", bad)]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{bad:?}");
        assert_eq!(refused.body["code"], "bad_idempotency_key");
    }
    let key = [("idempotency-key", "k-1")];
    let sent = checked(r, d, "post", resend, uri, None, &key).await;
    assert_eq!(sent.status, StatusCode::OK, "{:#}", sent.body);
    let leave = checked(
        r,
        d,
        "post",
        "/teams/{team}/leave",
        "/teams/acme/leave",
        None,
        &key,
    )
    .await;
    assert_eq!(
        leave.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:#}",
        leave.body
    );
    assert_eq!(leave.body["code"], "idempotency_key_reused");

    // Every operation with If-Match documents 400 `bad_if_match`.
    for (method, path, op) in operations(d) {
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if params.iter().any(|p| p["name"] == "If-Match") {
            let text = op["responses"]["400"]["description"].as_str().unwrap_or("");
            assert!(text.contains("bad_if_match"), "{method} {path}: {text}");
        }
    }
    let settings = "/teams/{team}/settings";
    let uri = "/teams/acme/settings";
    let bad_if_match = [("if-match", "W/5")];
    let body = json!({"seat_limit": 10});
    let refused = checked(r, d, "put", settings, uri, Some(body), &bad_if_match).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    for ok in ["\"3\"", "W/\"3\"", "3", "*"] {
        let body = json!({"seat_limit": 10});
        let put = checked(r, d, "put", settings, uri, Some(body), &[("if-match", ok)]).await;
        assert_ne!(put.status, StatusCode::BAD_REQUEST, "If-Match: {ok}");
    }

    // seat_limit: the documented range is the accepted one.
    let schema = &d["components"]["schemas"]["Settings"]["properties"];
    assert_eq!(schema["seat_limit"]["minimum"], 1);
    assert_eq!(schema["seat_limit"]["maximum"], 1_000_000);
    assert_eq!(schema["invitation_ttl_days"]["minimum"], 1);
    assert_eq!(schema["invitation_ttl_days"]["maximum"], 365);
    for (limit, status) in [
        (json!(3_000_000_000u64), StatusCode::UNPROCESSABLE_ENTITY),
        (json!(1_000_001), StatusCode::UNPROCESSABLE_ENTITY),
        (json!(0), StatusCode::UNPROCESSABLE_ENTITY),
        (json!(1_000_000), StatusCode::OK),
        (json!(1), StatusCode::OK),
    ] {
        let body = json!({"seat_limit": limit});
        let put = checked(r, d, "put", settings, uri, Some(body), &[]).await;
        assert_eq!(put.status, status, "seat_limit {limit}: {:#}", put.body);
    }
    // Out of range is refused as such even with a stale If-Match, in a batch too.
    let stale = [("if-match", "\"1\"")];
    let body = json!({"seat_limit": 0});
    let put = checked(r, d, "put", settings, uri, Some(body), &stale).await;
    assert_eq!(
        put.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:#}",
        put.body
    );
    assert_eq!(put.body["code"], "invalid_setting");
    let ok = json!({"require_2fa": false, "invitation_ttl_days": 15, "seat_limit": 1});
    let batch = json!({"changes": [{"op": "update_settings", "from": ok,
        "to": {"require_2fa": false, "invitation_ttl_days": 15, "seat_limit": 1_000_001}}]});
    let changes = "/teams/{team}/changes";
    let uri = "/teams/acme/changes";
    let refused = checked(r, d, "post", changes, uri, Some(batch), &stale).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:#}",
        refused.body
    );
    assert_eq!(refused.body["change_index"], 0);
}

/// Every `team` path parameter carries the slug rule of `TeamId::parse`.
#[tokio::test]
async fn team_path_parameters_have_the_slug_pattern() {
    let doc = document(&local_app()).await;
    let mut seen = 0;
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            if p["name"] == "team" && p["in"] == "path" {
                seen += 1;
                let s = &p["schema"];
                assert_eq!(s["pattern"], SLUG, "{method} {path}");
                assert_eq!((&s["minLength"], &s["maxLength"]), (&json!(2), &json!(63)));
            }
        }
    }
    assert!(seen >= 20, "{seen}");
    let body = &doc["components"]["schemas"]["CreateTeam"]["properties"]["team"];
    assert_eq!(body["pattern"], SLUG);
    // The pattern `^[a-z][a-z0-9]*(-[a-z0-9]+)*$` (2 to 63 long) accepts
    // exactly these, as TeamId::parse does.
    let long = format!("a{}", "b".repeat(62));
    for (id, ok) in [
        ("ab", true),
        ("a1-b2-c3", true),
        (long.as_str(), true),
        ("a", false),
        ("1a", false),
        ("-a", false),
        ("a-", false),
        ("a--b", false),
        ("aB", false),
        ("a_b", false),
        (&format!("{long}c"), false),
    ] {
        assert_eq!(teamform_core::TeamId::parse(id).is_ok(), ok, "{id}");
    }
}

const SLUG: &str = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$";

async fn listed_key_id(router: &Router) -> String {
    let r = send(router, "get", "/teams/acme/api-keys", None, &[]).await;
    r.body["items"][0]["id"].as_str().expect("a key").to_owned()
}

/// A value for every documented property of an object schema (or only the
/// required ones), built from the schema.
fn sample(doc: &Value, schema: &Value, name: &str, all: bool) -> Value {
    let schema = resolve(doc, schema);
    if let Some(alternatives) = schema["oneOf"].as_array() {
        let first = alternatives.iter().find(|a| a["type"] != "null");
        return sample(doc, first.expect("an alternative"), name, all);
    }
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    let ty = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null")
            .to_owned(),
        _ => "object".to_owned(),
    };
    match ty.as_str() {
        "string" => match schema["format"].as_str() {
            Some("email") => json!("bob@acme.com"),
            Some("date-time") => json!("2026-12-01T00:00:00Z"),
            _ if name == "permissions" => json!("team.members.read"),
            _ => json!("viewer"),
        },
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        "array" => json!([sample(doc, &schema["items"], name, all)]),
        "object" => {
            let required: BTreeSet<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let mut out = serde_json::Map::new();
            for (key, s) in schema["properties"].as_object().into_iter().flatten() {
                if all || required.contains(key.as_str()) {
                    out.insert(key.clone(), sample(doc, s, key, all));
                }
            }
            Value::Object(out)
        }
        _ => Value::Null,
    }
}

#[tokio::test]
async fn documented_changes_are_real_changes() {
    let doc = document(&local_app()).await;
    let variants = doc["components"]["schemas"]["Change"]["oneOf"]
        .as_array()
        .expect("Change is a oneOf");
    // The schema is derived from `Change` itself: a new variant appears here.
    assert_eq!(variants.len(), 14);
    let mut ops = BTreeSet::new();
    for variant in variants {
        let op = variant["properties"]["op"]["enum"][0].as_str().expect("op");
        assert!(ops.insert(op.to_owned()), "{op} twice");
        for all in [true, false] {
            let value = sample(&doc, variant, "", all);
            let change: Change = serde_json::from_value(value.clone())
                .unwrap_or_else(|e| panic!("{op} ({value}) is not a Change: {e}"));
            let back = serde_json::to_value(&change).expect("serializes");
            assert_eq!(back["op"], op);
            let mut errors = Vec::new();
            validate(
                &doc,
                &doc["components"]["schemas"]["Change"],
                &back,
                op,
                &mut errors,
            );
            assert!(errors.is_empty(), "{errors:#?}");
        }
    }
}

/// Every request body is documented as an object; a body of any other JSON
/// type is refused before it reaches the service, at the top and inside a
/// change (serde's derived structs would otherwise read `[]` positionally).
#[tokio::test]
async fn bodies_that_are_not_objects_are_refused() {
    let router = local_app();
    let doc = document(&router).await;
    let team = json!({"team": "acme", "display_name": "Acme", "owner": "alice@acme.com"});
    let created = send(&router, "post", "/teams", Some(team), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let mut with_body = 0;
    for (method, path, op) in operations(&doc) {
        let Some(schema) = op["requestBody"]["content"]["application/json"].get("schema") else {
            continue;
        };
        assert_eq!(resolve(&doc, schema)["type"], "object", "{method} {path}");
        with_body += 1;
        for body in [
            json!([]),
            json!([1]),
            json!("x"),
            json!(1),
            json!(true),
            Value::Null,
        ] {
            let r = send(&router, &method, &concrete(&path), Some(body.clone()), &[]).await;
            assert_eq!(
                (r.status, &r.body["code"]),
                (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &json!("validation_failed")
                ),
                "{method} {path} with {body}: {:#}",
                r.body
            );
        }
    }
    assert!(with_body >= 12, "{with_body}");

    let settings = json!({"require_2fa": false, "invitation_ttl_days": 15, "seat_limit": null});
    for (from, to) in [(json!([]), settings.clone()), (settings.clone(), json!([]))] {
        let batch = json!({"changes": [{"op": "update_settings", "from": from, "to": to}]});
        let r = send(&router, "post", "/teams/acme/changes", Some(batch), &[]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:#}", r.body);
    }
    let batch = json!({"changes": [["update_settings", settings.clone(), settings]]});
    let r = send(&router, "post", "/teams/acme/changes", Some(batch), &[]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{:#}", r.body);
    let version = send(&router, "get", "/teams/acme/settings", None, &[]).await;
    assert_eq!(version.headers["etag"], "\"1\"", "nothing was applied");
}

/// The schemas of the domain are derived from its types: what the type says
/// (defaults, the slug rule) is what the document says.
#[tokio::test]
async fn domain_schemas_follow_the_types() {
    let doc = document(&local_app()).await;
    let schemas = &doc["components"]["schemas"];
    let ttl = &schemas["Settings"]["properties"]["invitation_ttl_days"];
    assert_eq!(
        ttl["default"],
        teamform_core::Settings::default().invitation_ttl_days
    );
    assert_eq!(schemas["Settings"]["additionalProperties"], false);
    assert_eq!(schemas["TeamId"]["pattern"], teamform_core::TeamId::PATTERN);
    assert_eq!(teamform_core::TeamId::PATTERN, SLUG);
    assert_eq!(schemas["Email"]["format"], "email");
    let member = &schemas["Member"]["properties"];
    assert_eq!(member["email"]["$ref"], "#/components/schemas/Email");
    assert_eq!(member["joined_at"]["format"], "date-time");
    assert_eq!(
        member["roles"]["items"]["$ref"],
        "#/components/schemas/RoleName"
    );
}
