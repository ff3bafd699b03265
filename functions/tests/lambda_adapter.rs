//! API Gateway HTTP API (payload v2) events, as Lambda delivers them, turned
//! into requests by `lambda_http` and routed through the real router: with
//! and without JWT authorizer claims.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use teamform_core::Catalog;
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

async fn router_with_acme() -> axum::Router {
    router_with_acme_and(&[]).await
}

/// acme, owned by alice, with `more` changes applied after its creation.
async fn router_with_acme_and(more: &[teamform_core::Change]) -> axum::Router {
    let store = SqliteStore::in_memory().expect("store");
    let clock = ManualClock::new("2026-11-28T12:00:00Z".parse().expect("time"));
    let svc = Arc::new(Service::new(
        Arc::new(store),
        Arc::new(Catalog::standard()),
        Arc::new(clock),
        "https://x".into(),
    ));
    let mut changes = vec![teamform_core::Change::CreateTeam {
        display_name: "Acme".into(),
        owner: teamform_core::Email::parse("alice@acme.com").expect("email"),
    }];
    changes.extend_from_slice(more);
    svc.execute(
        &"acme".parse().expect("id"),
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("acme");
    // Lambda never acts as the local owner: every request needs an identity.
    app(AppState::new(svc, Anonymous::Refused))
}

async fn invoke(router: &axum::Router, fixture: &str) -> (u16, String, Value) {
    let path = format!(
        "{}/tests/fixtures/apigw-v2/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let event = std::fs::read_to_string(&path).expect("fixture");
    let req = lambda_http::request::from_str(&event).expect("a valid API Gateway v2 event");
    let req = req.map(|body| Body::from(body.to_vec()));
    let res = router.clone().oneshot(req).await.expect("router answers");
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, ct, body)
}

#[tokio::test]
async fn healthz_without_authorizer() {
    let router = router_with_acme().await;
    let (status, _, body) = invoke(&router, "healthz-no-authorizer.json").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn no_credentials_is_401_problem() {
    let router = router_with_acme().await;
    let (status, ct, body) = invoke(&router, "state-no-credentials.json").await;
    assert_eq!((status, ct.as_str()), (401, "application/problem+json"));
    assert_eq!(body["code"], "unauthenticated");
}

#[tokio::test]
async fn verified_jwt_claims_act_as_the_person() {
    let router = router_with_acme().await;
    let (status, _, body) = invoke(&router, "state-jwt-owner.json").await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["owner"], "alice@acme.com");
    let (status, _, body) = invoke(&router, "members-query-jwt.json").await;
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["items"][0]["email"], "alice@acme.com");
    assert_eq!(
        body["items"][0]["signin_method"], "email",
        "the owner sees sign-in methods"
    );
}

#[tokio::test]
async fn unverified_email_claims_are_not_an_identity() {
    let router = router_with_acme().await;
    let (status, _, body) = invoke(&router, "state-jwt-unverified-email.json").await;
    assert_eq!(status, 401);
    assert_eq!(body["code"], "unauthenticated");
}

#[tokio::test]
async fn a_person_outside_the_team_gets_404() {
    let router = router_with_acme().await;
    let (status, _, body) = invoke(&router, "state-jwt-other-team.json").await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn a_person_creates_their_own_team_and_malformed_bodies_are_problems() {
    let router = router_with_acme().await;
    let (status, _, body) = invoke(&router, "create-team-jwt.json").await;
    assert_eq!(status, 201, "{body:#}");
    assert_eq!(body["team"], "globex");
    let (status, ct, body) = invoke(&router, "changes-malformed-jwt.json").await;
    assert_eq!((status, ct.as_str()), (400, "application/problem+json"));
    assert_eq!(body["code"], "malformed_json");
}

#[tokio::test]
async fn a_team_requiring_2fa_reads_the_amr_claim() {
    let router = router_with_acme_and(&[teamform_core::Change::UpdateSettings {
        from: teamform_core::model::Settings::default(),
        to: teamform_core::model::Settings {
            require_2fa: true,
            ..Default::default()
        },
    }])
    .await;
    let (status, _, body) = invoke(&router, "state-jwt-owner.json").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("two_factor_required")),
        "{body:#}"
    );
    let (status, _, body) = invoke(&router, "state-jwt-owner-mfa.json").await;
    assert_eq!(status, 200, "amr carries mfa: {body:#}");
}
