//! The router called as a tower service (`oneshot`) and over a real socket:
//! status codes, ETag/If-Match, problem+json errors, credentials and tenant
//! isolation, over the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use teamform_core::Catalog;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::Service;
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

fn service() -> Arc<Service> {
    let store = SqliteStore::in_memory().expect("in-memory store");
    let clock = ManualClock::new("2026-11-28T12:00:00Z".parse().expect("time"));
    Arc::new(Service::new(
        Arc::new(store),
        Arc::new(Catalog::standard()),
        Arc::new(clock),
        "http://test".into(),
    ))
}

fn local_app() -> Router {
    app(AppState::new(service(), Anonymous::LocalOwner))
}

struct Reply {
    status: StatusCode,
    content_type: String,
    etag: Option<String>,
    body: Value,
}

async fn send(
    router: &Router,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
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
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let etag = res
        .headers()
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Reply {
        status,
        content_type,
        etag,
        body,
    }
}

fn assert_problem(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:#}", r.body);
    assert_eq!(r.content_type, "application/problem+json");
    assert_eq!(r.body["code"], code, "{:#}", r.body);
    assert_eq!(r.body["status"], status.as_u16());
}

async fn create_acme(router: &Router) {
    let r = send(
        router,
        "POST",
        "/teams",
        Some(json!({"team": "acme", "owner": "alice@acme.com"})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"1\""));
}

#[tokio::test]
async fn healthz_and_catalog_answer() {
    let router = local_app();
    let r = send(&router, "GET", "/healthz", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&router, "GET", "/catalog", None, &[]).await;
    assert_eq!(r.body["name"], "standard");
}

#[tokio::test]
async fn created_team_has_its_owner_and_an_etag() {
    let router = local_app();
    create_acme(&router).await;
    let r = send(&router, "GET", "/teams/acme/state", None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.etag.as_deref(), Some("\"1\""));
    assert_eq!(r.body["owner"], "alice@acme.com");
    assert_eq!(r.body["version"], 1);
    let again = send(
        &router,
        "POST",
        "/teams",
        Some(json!({"team": "acme", "owner": "x@acme.com"})),
        &[],
    )
    .await;
    assert_problem(&again, StatusCode::CONFLICT, "team_exists");
}

#[tokio::test]
async fn changes_apply_with_if_match_and_stale_versions_get_412() {
    let router = local_app();
    create_acme(&router).await;
    let batch = json!({"changes": [{"op": "invite", "email": "bob@acme.com", "roles": ["admin"]}]});
    let r = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(batch.clone()),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    assert_eq!(r.body["version"], 2);
    let stale =
        json!({"changes": [{"op": "invite", "email": "carol@acme.com", "roles": ["viewer"]}]});
    let r = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(stale),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&r, StatusCode::PRECONDITION_FAILED, "version_conflict");
    assert_eq!(r.body["current_version"], 2);
}

#[tokio::test]
async fn invariant_violations_are_problems_with_stable_codes_and_write_nothing() {
    let router = local_app();
    create_acme(&router).await;
    let cases = [
        (
            json!({"op": "remove_member", "email": "alice@acme.com", "roles": ["owner"]}),
            "owner_protected",
        ),
        (
            json!({"op": "change_roles", "email": "alice@acme.com", "from": ["owner"], "to": ["admin"]}),
            "owner_protected",
        ),
        (
            json!({"op": "invite", "email": "alice@acme.com", "roles": ["admin"]}),
            "already_member",
        ),
        (
            json!({"op": "invite", "email": "z@acme.com", "roles": ["wizard"]}),
            "unknown_role",
        ),
        (
            json!({"op": "invite", "email": "z@acme.com", "roles": ["owner"]}),
            "owner_role",
        ),
    ];
    for (change, code) in cases {
        // A valid change first: the whole batch must fail together.
        let first = json!({"op": "invite", "email": "ok@acme.com", "roles": ["viewer"]});
        let r = send(
            &router,
            "POST",
            "/teams/acme/changes",
            Some(json!({"changes": [first, change]})),
            &[],
        )
        .await;
        assert_eq!(r.body["code"], code, "{:#}", r.body);
        assert_eq!(r.body["change_index"], 1);
        assert_eq!(r.content_type, "application/problem+json");
    }
    let state = send(&router, "GET", "/teams/acme/state", None, &[]).await;
    assert_eq!(state.body["version"], 1, "nothing was written");
    assert_eq!(state.body["invitations"], json!({}));
}

#[tokio::test]
async fn malformed_input_gets_the_same_problem_shape() {
    let router = local_app();
    create_acme(&router).await;
    let req = Request::builder()
        .method("POST")
        .uri("/teams/acme/changes")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{not json"))
        .expect("request");
    let res = router.clone().oneshot(req).await.expect("answer");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("problem body");
    assert_eq!(body["code"], "malformed_json");

    let r = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(json!({"changes": [{"op": "explode"}]})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(json!({"changes": [], "extra": 1})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = send(
        &router,
        "POST",
        "/teams",
        Some(json!({"team": "Not A Slug", "owner": "nope"})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        r.body["errors"].as_array().map(Vec::len),
        Some(2),
        "both fields reported: {:#}",
        r.body
    );
    let r = send(&router, "GET", "/teams/acme/members?limit=0", None, &[]).await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let r = send(&router, "GET", "/no/such/route", None, &[]).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let r = send(&router, "DELETE", "/catalog", None, &[]).await;
    assert_problem(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    let r = send(
        &router,
        "GET",
        "/teams/acme/state",
        None,
        &[("if-match", "garbage")],
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "If-Match is only read on mutations"
    );
}

#[tokio::test]
async fn members_filter_by_role_and_status_and_paginate() {
    let router = local_app();
    create_acme(&router).await;
    let changes: Vec<Value> = (0..7)
        .map(|i| json!({"op": "invite", "email": format!("p{i}@acme.com"), "roles": [if i % 2 == 0 { "viewer" } else { "admin" }]}))
        .collect();
    let r = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(json!({"changes": changes})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    let r = send(
        &router,
        "GET",
        "/teams/acme/members?status=pending&role=viewer",
        None,
        &[],
    )
    .await;
    let emails: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["email"].as_str())
        .collect();
    assert_eq!(
        emails,
        ["p0@acme.com", "p2@acme.com", "p4@acme.com", "p6@acme.com"]
    );
    let r = send(
        &router,
        "GET",
        "/teams/acme/members?status=joined",
        None,
        &[],
    )
    .await;
    assert_eq!(r.body["items"][0]["email"], "alice@acme.com");
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(1));

    let mut seen = Vec::new();
    let mut uri = "/teams/acme/members?limit=3".to_owned();
    loop {
        let r = send(&router, "GET", &uri, None, &[]).await;
        for m in r.body["items"].as_array().expect("items") {
            seen.push(m["email"].as_str().unwrap_or_default().to_owned());
        }
        match r.body["next_cursor"].as_str() {
            Some(c) => uri = format!("/teams/acme/members?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen.len(),
        8,
        "every member and invitation exactly once: {seen:?}"
    );
    let mut sorted = seen.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 8);
}

#[tokio::test]
async fn every_applied_change_has_its_audit_record() {
    let router = local_app();
    create_acme(&router).await;
    let changes = json!({"changes": [
        {"op": "invite", "email": "bob@acme.com", "roles": ["admin"]},
        {"op": "rename_team", "from": "acme", "to": "Acme Inc"},
    ]});
    let r = send(&router, "POST", "/teams/acme/changes", Some(changes), &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&router, "GET", "/teams/acme/audit", None, &[]).await;
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(actions, ["create_team", "invite", "rename_team"]);
    assert_eq!(r.body["items"][1]["actor"], "local-owner");
    assert_eq!(r.body["items"][1]["version"], 2);
}

#[tokio::test]
async fn without_local_owner_mode_every_route_but_public_ones_needs_a_credential() {
    let svc = service();
    let router = app(AppState::new(svc, Anonymous::Refused));
    assert_eq!(
        send(&router, "GET", "/healthz", None, &[]).await.status,
        StatusCode::OK
    );
    let r = send(&router, "GET", "/teams/acme/state", None, &[]).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
    let r = send(
        &router,
        "GET",
        "/teams/acme/state",
        None,
        &[("authorization", "Bearer tfk_forged")],
    )
    .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn api_keys_carry_roles_are_isolated_per_team_and_die_when_revoked() {
    let svc = service();
    let local = app(AppState::new(svc.clone(), Anonymous::LocalOwner));
    let public = app(AppState::new(svc, Anonymous::Refused));
    create_acme(&local).await;
    let r = send(
        &local,
        "POST",
        "/teams",
        Some(json!({"team": "globex", "owner": "hank@globex.com"})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = send(
        &local,
        "POST",
        "/teams/acme/api-keys",
        Some(json!({"name": "ci", "roles": ["viewer"]})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    let reader = r.body["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    let key_id = r.body["id"].as_str().expect("id").to_owned();
    assert!(reader.starts_with("tfk_"));
    let bearer = format!("Bearer {reader}");
    let auth = [("authorization", bearer.as_str())];

    let r = send(&public, "GET", "/teams/acme/state", None, &auth).await;
    assert_eq!(r.status, StatusCode::OK, "a viewer key reads");
    let invite = json!({"changes": [{"op": "invite", "email": "x@acme.com", "roles": ["viewer"]}]});
    let r = send(&public, "POST", "/teams/acme/changes", Some(invite), &auth).await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    let r = send(&public, "GET", "/teams/globex/state", None, &auth).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");
    let r = send(&public, "GET", "/teams/nosuch/state", None, &auth).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");

    let r = send(&local, "GET", "/teams/acme/api-keys", None, &[]).await;
    let listed = &r.body["items"][0];
    assert_eq!(listed["id"], key_id.as_str());
    assert!(
        listed.get("secret").is_none() && listed.get("hash").is_none(),
        "never shown again: {listed:#}"
    );
    assert!(
        listed["last_used_at"].is_string(),
        "use was recorded: {listed:#}"
    );

    let r = send(
        &local,
        "DELETE",
        &format!("/teams/acme/api-keys/{key_id}"),
        None,
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(&public, "GET", "/teams/acme/state", None, &auth).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthenticated");

    let r = send(
        &local,
        "POST",
        "/teams/acme/api-keys",
        Some(json!({"name": "x", "roles": ["owner"]})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "owner_role");
}

#[tokio::test]
async fn personal_tokens_act_as_their_person() {
    let svc = service();
    let local = app(AppState::new(svc.clone(), Anonymous::LocalOwner));
    let public = app(AppState::new(svc.clone(), Anonymous::Refused));
    create_acme(&local).await;
    let alice = teamform_core::Email::parse("alice@acme.com").expect("email");
    let token = svc
        .create_token(
            &teamform_functions::auth::Principal::person(alice),
            "laptop",
            None,
        )
        .await
        .expect("token")
        .secret;
    let bearer = format!("Bearer {token}");
    let auth = [("authorization", bearer.as_str())];
    let r = send(&public, "GET", "/me", None, &auth).await;
    assert_eq!(r.body["email"], "alice@acme.com");
    let r = send(&public, "GET", "/teams/acme/state", None, &auth).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&public, "GET", "/me/tokens", None, &auth).await;
    let id = r.body["items"][0]["id"]
        .as_str()
        .expect("listed")
        .to_owned();
    let r = send(&public, "DELETE", &format!("/me/tokens/{id}"), None, &auth).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(&public, "GET", "/me", None, &auth).await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "unauthenticated");
}

#[tokio::test]
async fn the_router_serves_real_http() {
    let router = local_app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{addr}/teams"))
        .json(&json!({"team": "acme", "owner": "alice@acme.com"}))
        .send()
        .await
        .expect("request over TCP");
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    let r = http
        .post(format!("http://{addr}/teams/acme/changes"))
        .body("[")
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.headers()[reqwest::header::CONTENT_TYPE],
        "application/problem+json"
    );
    let body: Value = r.json().await.expect("problem");
    assert_eq!(body["code"], "unsupported_media_type");
}

#[tokio::test]
async fn idempotency_key_replays_the_first_response_and_refuses_another_body() {
    let router = local_app();
    create_acme(&router).await;
    let batch = json!({"changes": [{"op": "invite", "email": "bob@acme.com", "roles": ["admin"]}]});
    let key = [("idempotency-key", "retry-42")];
    let first = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(batch.clone()),
        &key,
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{:#}", first.body);
    let replay = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(batch.clone()),
        &key,
    )
    .await;
    assert_eq!(
        replay.status,
        StatusCode::OK,
        "a retry is answered, not re-run: {:#}",
        replay.body
    );
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.etag, first.etag);
    let state = send(&router, "GET", "/teams/acme/state", None, &[]).await;
    assert_eq!(state.body["version"], 2, "the change ran once");

    let other =
        json!({"changes": [{"op": "invite", "email": "carol@acme.com", "roles": ["admin"]}]});
    let r = send(
        &router,
        "POST",
        "/teams/acme/changes",
        Some(other.clone()),
        &key,
    )
    .await;
    assert_problem(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    );

    // A failed request releases its key: corrected, it may run.
    let bad = json!({"changes": [{"op": "invite", "email": "dan@acme.com", "roles": ["wizard"]}]});
    let k2 = [("idempotency-key", "fix-me")];
    let r = send(&router, "POST", "/teams/acme/changes", Some(bad), &k2).await;
    assert_eq!(r.body["code"], "unknown_role");
    let r = send(&router, "POST", "/teams/acme/changes", Some(other), &k2).await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
}

#[tokio::test]
async fn a_replayed_key_creation_never_shows_the_secret_again() {
    let router = local_app();
    create_acme(&router).await;
    let body = json!({"name": "ci", "roles": ["viewer"]});
    let key = [("idempotency-key", "make-key")];
    let first = send(
        &router,
        "POST",
        "/teams/acme/api-keys",
        Some(body.clone()),
        &key,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(
        first.body["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("tfk_"))
    );
    let replay = send(&router, "POST", "/teams/acme/api-keys", Some(body), &key).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(
        replay.body["id"], first.body["id"],
        "the same key, not a second one"
    );
    assert!(replay.body["secret"].is_null(), "{:#}", replay.body);
    let keys = send(&router, "GET", "/teams/acme/api-keys", None, &[]).await;
    assert_eq!(keys.body["items"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_a_problem() {
    let router = local_app();
    create_acme(&router).await;
    let huge = "x".repeat(teamform_functions::http::BODY_LIMIT + 1);
    let req = Request::builder()
        .method("POST")
        .uri("/teams/acme/changes")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, huge.len())
        .body(Body::from(huge))
        .expect("request");
    let res = router.clone().oneshot(req).await.expect("answer");
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        res.headers()[header::CONTENT_TYPE],
        "application/problem+json"
    );
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("problem body");
    assert_eq!(body["code"], "body_too_large");
}

#[tokio::test]
async fn if_match_guards_api_key_mutations_too() {
    let router = local_app();
    create_acme(&router).await;
    let body = json!({"name": "ci", "roles": ["viewer"]});
    let r = send(
        &router,
        "POST",
        "/teams/acme/api-keys",
        Some(body.clone()),
        &[("if-match", "\"7\"")],
    )
    .await;
    assert_problem(&r, StatusCode::PRECONDITION_FAILED, "version_conflict");
    let r = send(
        &router,
        "POST",
        "/teams/acme/api-keys",
        Some(body),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = send(
        &router,
        "DELETE",
        &format!("/teams/acme/api-keys/{id}"),
        None,
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_problem(&r, StatusCode::PRECONDITION_FAILED, "version_conflict");
    let r = send(
        &router,
        "DELETE",
        &format!("/teams/acme/api-keys/{id}"),
        None,
        &[("if-match", "\"2\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn one_thing_at_a_time_routes_go_through_the_same_checks_and_audit() {
    let router = local_app();
    create_acme(&router).await;
    let r = send(
        &router,
        "POST",
        "/teams/acme/invitations",
        Some(json!({"email": "Bob@Acme.com", "roles": ["viewer"]})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:#}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));
    let r = send(
        &router,
        "POST",
        "/teams/acme/invitations",
        Some(json!({"email": "bob@acme.com", "roles": ["viewer"]})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::CONFLICT, "already_invited");

    let r = send(
        &router,
        "PUT",
        "/teams/acme/members/bob@acme.com/roles",
        Some(json!({"roles": ["admin"]})),
        &[("if-match", "\"2\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    let r = send(
        &router,
        "PUT",
        "/teams/acme/members/alice@acme.com/roles",
        Some(json!({"roles": ["admin"]})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "owner_protected");
    let r = send(
        &router,
        "DELETE",
        "/teams/acme/members/alice@acme.com",
        None,
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "owner_protected");
    let r = send(
        &router,
        "DELETE",
        "/teams/acme/members/nobody@acme.com",
        None,
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "not_found");

    let r = send(
        &router,
        "PUT",
        "/teams/acme/roles/release-manager",
        Some(json!({"description": "Ships", "permissions": ["apps.read"]})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    let r = send(
        &router,
        "PUT",
        "/teams/acme/roles/release-manager",
        Some(json!({"permissions": ["apps.read", "apps.config.write"]})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &router,
        "PUT",
        "/teams/acme/roles/admin",
        Some(json!({"permissions": ["apps.read"]})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::CONFLICT, "role_exists");
    let r = send(
        &router,
        "PUT",
        "/teams/acme/roles/x",
        Some(json!({"permissions": ["apps.fly"]})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "unknown_permission");
    let r = send(
        &router,
        "PUT",
        "/teams/acme/members/bob@acme.com/roles",
        Some(json!({"roles": ["release-manager"]})),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(
        &router,
        "DELETE",
        "/teams/acme/roles/release-manager",
        None,
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::CONFLICT, "role_in_use");
    let r = send(&router, "GET", "/teams/acme/roles", None, &[]).await;
    assert_eq!(
        r.body["custom"]["release-manager"]["permissions"],
        json!(["apps.config.write", "apps.read"])
    );
    assert!(
        r.body["system"]
            .as_array()
            .is_some_and(|s| s.iter().any(|role| role["name"] == "owner"))
    );

    let r = send(&router, "GET", "/teams/acme/settings", None, &[]).await;
    assert_eq!(r.body["invitation_ttl_days"], 15);
    let settings = json!({"require_2fa": true, "invitation_ttl_days": 7, "seat_limit": 10});
    let r = send(&router, "PUT", "/teams/acme/settings", Some(settings), &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{:#}", r.body);
    let r = send(
        &router,
        "PUT",
        "/teams/acme/settings",
        Some(json!({"invitation_ttl_days": 0})),
        &[],
    )
    .await;
    assert_problem(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_setting");

    let r = send(&router, "GET", "/teams/acme/audit", None, &[]).await;
    let actions: Vec<&str> = r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "create_team",
            "invite",
            "change_invitation_roles",
            "create_role",
            "update_role",
            "change_invitation_roles",
            "update_settings"
        ]
    );
}

#[tokio::test]
async fn enforcing_2fa_needs_the_security_permission() {
    let svc = service();
    let local = app(AppState::new(svc.clone(), Anonymous::LocalOwner));
    let public = app(AppState::new(svc, Anonymous::Refused));
    create_acme(&local).await;
    let r = send(
        &local,
        "POST",
        "/teams/acme/api-keys",
        Some(json!({"name": "ops", "roles": ["admin"]})),
        &[],
    )
    .await;
    let bearer = format!("Bearer {}", r.body["secret"].as_str().expect("secret"));
    let auth = [("authorization", bearer.as_str())];
    let r = send(
        &public,
        "PUT",
        "/teams/acme/settings",
        Some(json!({"invitation_ttl_days": 30})),
        &auth,
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "admins manage settings: {:#}",
        r.body
    );
    let r = send(
        &public,
        "PUT",
        "/teams/acme/settings",
        Some(json!({"require_2fa": true, "invitation_ttl_days": 30})),
        &auth,
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "forbidden");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("team.security.manage"),
        "{:#}",
        r.body
    );
}
