//! Invitation links (accept once, not after expiry, not after a resend or a
//! revocation), leaving, and the two-step ownership transfer, through the
//! service and over the router.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

struct World {
    svc: Arc<Service>,
    clock: Arc<ManualClock>,
    team: TeamId,
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn person(s: &str) -> Principal {
    Principal::person(email(s))
}

async fn world() -> World {
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T12:00:00Z".parse().expect("time"),
    ));
    let store = SqliteStore::in_memory().expect("store");
    let svc = Arc::new(Service::new(
        Arc::new(store),
        Arc::new(Catalog::standard()),
        clock.clone(),
        "https://app".into(),
    ));
    let team = TeamId::parse("acme").expect("id");
    let viewer = [RoleName::parse("developer").expect("role")].into();
    let changes = [
        Change::CreateTeam {
            display_name: "Acme".into(),
            owner: email("alice@acme.com"),
        },
        Change::Invite {
            email: email("Bob@Acme.com"),
            name: Some("Bob".into()),
            roles: viewer,
        },
    ];
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("setup");
    World { svc, clock, team }
}

impl World {
    /// The token of the newest email to `to` whose link contains `path`.
    async fn link(&self, to: &str, path: &str) -> String {
        let mails = self.svc.outbox(&self.team).await.expect("outbox");
        let mail = mails
            .iter()
            .rev()
            .find(|m| m.to.eq_ignore_ascii_case(to) && m.body.contains(path))
            .expect("an email");
        mail.link_secret().expect("a link").to_owned()
    }

    async fn state(&self) -> teamform_core::TeamState {
        self.svc
            .load(&self.team)
            .await
            .expect("load")
            .expect("team")
    }
}

fn gone_code(r: Result<impl std::fmt::Debug, ServiceError>) -> &'static str {
    match r {
        Err(ServiceError::Gone { code, .. }) => code,
        other => panic!("expected a gone link, got {other:?}"),
    }
}

#[tokio::test]
async fn an_invitation_link_works_once_for_its_person() {
    let w = world().await;
    let token = w.link("bob@acme.com", "/join?token").await;
    assert!(token.starts_with("tfi_"));
    let wrong = w
        .svc
        .accept_invitation(&token, &person("mallory@acme.com"))
        .await;
    assert!(
        matches!(wrong, Err(ServiceError::Forbidden(_))),
        "{wrong:?}"
    );

    let joined = w
        .svc
        .accept_invitation(&token, &person("bob@acme.com"))
        .await
        .expect("accepted");
    assert_eq!(joined.team.as_str(), "acme");
    let state = w.state().await;
    let bob = state
        .members
        .get(&email("bob@acme.com"))
        .expect("bob is a member");
    assert_eq!(bob.email.as_str(), "Bob@Acme.com", "shown as written");
    assert_eq!(bob.name.as_deref(), Some("Bob"));
    assert!(state.invitations.is_empty());
    state.check_invariants().expect("invariants");
    let teams = w
        .svc
        .my_teams(&person("bob@acme.com"))
        .await
        .expect("teams");
    assert_eq!(
        teams.iter().map(|m| m.team.as_str()).collect::<Vec<_>>(),
        ["acme"]
    );

    assert_eq!(
        gone_code(
            w.svc
                .accept_invitation(&token, &person("bob@acme.com"))
                .await
        ),
        "invitation_invalid"
    );
}

#[tokio::test]
async fn expired_resent_and_revoked_links_are_refused() {
    let w = world().await;
    let first = w.link("bob@acme.com", "/join?token").await;
    w.svc
        .resend_invitation(
            &w.team,
            &Principal::LocalOwner,
            &email("bob@acme.com"),
            None,
        )
        .await
        .expect("resend");
    let second = w.link("bob@acme.com", "/join?token").await;
    assert_ne!(first, second);
    assert_eq!(
        gone_code(
            w.svc
                .accept_invitation(&first, &person("bob@acme.com"))
                .await
        ),
        "invitation_invalid"
    );

    w.clock.advance(Duration::days(16));
    assert_eq!(
        gone_code(
            w.svc
                .accept_invitation(&second, &person("bob@acme.com"))
                .await
        ),
        "invitation_expired"
    );

    w.svc
        .resend_invitation(
            &w.team,
            &Principal::LocalOwner,
            &email("bob@acme.com"),
            None,
        )
        .await
        .expect("resend");
    let third = w.link("bob@acme.com", "/join?token").await;
    w.svc
        .revoke_invitation(
            &w.team,
            &Principal::LocalOwner,
            &email("bob@acme.com"),
            None,
        )
        .await
        .expect("revoke");
    assert_eq!(
        gone_code(
            w.svc
                .accept_invitation(&third, &person("bob@acme.com"))
                .await
        ),
        "invitation_invalid"
    );
    assert!(!w.state().await.members.contains_key(&email("bob@acme.com")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_link_used_by_many_at_once_admits_one() {
    let w = world().await;
    let token = w.link("bob@acme.com", "/join?token").await;
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (svc, token) = (w.svc.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match svc.accept_invitation(&token, &person("bob@acme.com")).await {
                    Err(ServiceError::VersionConflict { .. }) => tokio::task::yield_now().await,
                    other => return other.is_ok(),
                }
            }
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.expect("task"));
    }
    assert_eq!(accepted, 1, "a single-use link admits once");
    let audit = w
        .svc
        .store()
        .query_all("TEAM#acme", "AUDIT#")
        .await
        .expect("audit");
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.str("action") == Some("accept_invitation"))
            .count(),
        1
    );
}

#[tokio::test]
async fn members_leave_but_the_owner_cannot() {
    let w = world().await;
    let token = w.link("bob@acme.com", "/join?token").await;
    w.svc
        .accept_invitation(&token, &person("bob@acme.com"))
        .await
        .expect("accepted");
    w.svc
        .leave(&w.team, &person("bob@acme.com"))
        .await
        .expect("bob leaves");
    assert!(!w.state().await.members.contains_key(&email("bob@acme.com")));
    assert!(
        w.svc
            .my_teams(&person("bob@acme.com"))
            .await
            .expect("teams")
            .is_empty()
    );
    let owner = w.svc.leave(&w.team, &person("alice@acme.com")).await;
    assert!(
        matches!(owner, Err(ServiceError::Change { ref error, .. }) if error.code() == "owner_protected"),
        "{owner:?}"
    );
}

#[tokio::test]
async fn ownership_passes_only_when_both_confirm() {
    let w = world().await;
    let bob_joins = w.link("bob@acme.com", "/join?token").await;
    w.svc
        .accept_invitation(&bob_joins, &person("bob@acme.com"))
        .await
        .expect("bob joins");
    let alice = person("alice@acme.com");
    let bob = person("bob@acme.com");

    // Only the owner starts a transfer.
    let by_bob = w
        .svc
        .start_transfer(&w.team, &bob, &email("bob@acme.com"))
        .await;
    assert!(
        matches!(by_bob, Err(ServiceError::Forbidden(_))),
        "{by_bob:?}"
    );
    w.svc
        .start_transfer(&w.team, &alice, &email("bob@acme.com"))
        .await
        .expect("started");
    assert_eq!(
        w.state().await.owner.as_str(),
        "alice@acme.com",
        "nothing passes yet"
    );

    let confirm = w.link("alice@acme.com", "/ownership/confirm").await;
    assert!(matches!(
        w.svc.confirm_transfer(&confirm, &bob).await,
        Err(ServiceError::Forbidden(_))
    ));
    w.svc
        .confirm_transfer(&confirm, &alice)
        .await
        .expect("confirmed");
    assert_eq!(
        gone_code(w.svc.confirm_transfer(&confirm, &alice).await),
        "transfer_invalid"
    );
    assert_eq!(
        w.state().await.owner.as_str(),
        "alice@acme.com",
        "still waiting for bob"
    );

    let accept = w.link("bob@acme.com", "/ownership/accept").await;
    assert!(matches!(
        w.svc.accept_transfer(&accept, &alice).await,
        Err(ServiceError::Forbidden(_))
    ));
    w.svc
        .accept_transfer(&accept, &bob)
        .await
        .expect("accepted");
    let state = w.state().await;
    state.check_invariants().expect("exactly one owner");
    assert_eq!(state.owner, email("bob@acme.com"));
    assert_eq!(
        state.members.get(&state.owner).map(|m| m.email.as_str()),
        Some("Bob@Acme.com"),
        "shown as written"
    );
    let roles = |e: &str| {
        state
            .members
            .get(&email(e))
            .map(|m| m.roles.iter().map(|r| r.to_string()).collect::<Vec<_>>())
    };
    assert_eq!(roles("bob@acme.com"), Some(vec!["owner".to_owned()]));
    assert_eq!(
        roles("alice@acme.com"),
        Some(vec!["admin".to_owned()]),
        "the catalog's previous_owner_role"
    );
    assert!(state.transfer.is_none());
    assert_eq!(
        gone_code(w.svc.accept_transfer(&accept, &bob).await),
        "transfer_invalid"
    );
}

#[tokio::test]
async fn cancelled_and_expired_transfers_refuse_their_links() {
    let w = world().await;
    let alice = person("alice@acme.com");
    w.svc
        .start_transfer(&w.team, &alice, &email("carol@acme.com"))
        .await
        .expect("started");
    let confirm = w.link("alice@acme.com", "/ownership/confirm").await;
    w.svc
        .cancel_transfer(&w.team, &alice)
        .await
        .expect("cancelled");
    assert_eq!(
        gone_code(w.svc.confirm_transfer(&confirm, &alice).await),
        "transfer_invalid"
    );

    w.svc
        .start_transfer(&w.team, &alice, &email("carol@acme.com"))
        .await
        .expect("started again");
    let confirm = w.link("alice@acme.com", "/ownership/confirm").await;
    w.clock.advance(Duration::days(8));
    assert_eq!(
        gone_code(w.svc.confirm_transfer(&confirm, &alice).await),
        "transfer_expired"
    );
}

#[tokio::test]
async fn someone_outside_the_team_can_be_handed_ownership() {
    let w = world().await;
    let alice = person("alice@acme.com");
    w.svc
        .start_transfer(&w.team, &alice, &email("carol@acme.com"))
        .await
        .expect("started");
    let confirm = w.link("alice@acme.com", "/ownership/confirm").await;
    w.svc
        .confirm_transfer(&confirm, &alice)
        .await
        .expect("confirmed");
    let accept = w.link("carol@acme.com", "/ownership/accept").await;
    w.svc
        .accept_transfer(&accept, &person("carol@acme.com"))
        .await
        .expect("accepted");
    let state = w.state().await;
    state.check_invariants().expect("one owner");
    assert_eq!(state.owner.as_str(), "carol@acme.com");
    assert_eq!(state.members.len(), 2, "carol joined, alice stayed");
}

async fn post(
    router: &axum::Router,
    uri: &str,
    body: Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method("POST")
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("req"))
        .await
        .expect("answer");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn links_over_http_answer_410_when_used() {
    let w = world().await;
    let router = app(AppState::new(w.svc.clone(), Anonymous::Refused));
    let bob_token = w
        .svc
        .create_token(&person("bob@acme.com"), "laptop", None)
        .await
        .expect("pat")
        .secret;
    let link = w.link("bob@acme.com", "/join?token").await;
    let (status, body) = post(&router, "/invitations/accept", json!({"token": link}), None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthenticated"))
    );
    let (status, body) = post(
        &router,
        "/invitations/accept",
        json!({"token": link}),
        Some(&bob_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body:#}");
    assert_eq!(body["team"], "acme");
    let (status, body) = post(
        &router,
        "/invitations/accept",
        json!({"token": link}),
        Some(&bob_token),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::GONE, Some("invitation_invalid"))
    );
    let (status, body) = post(&router, "/teams/acme/leave", json!({}), Some(&bob_token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body:#}");
}

#[tokio::test]
async fn a_person_removes_their_own_access_only_when_told_to() {
    let w = world().await;
    let link = w.link("bob@acme.com", "/join?token").await;
    w.svc
        .accept_invitation(&link, &person("bob@acme.com"))
        .await
        .expect("bob joins");
    let admin: teamform_core::model::Roles = [RoleName::parse("admin").expect("role")].into();
    let promote = Change::ChangeRoles {
        email: email("bob@acme.com"),
        from: [RoleName::parse("developer").expect("role")].into(),
        to: admin.clone(),
    };
    w.svc
        .execute(
            &w.team,
            &Principal::LocalOwner,
            &[promote],
            None,
            &BatchOptions::default(),
        )
        .await
        .expect("admin");
    let remove_self = [Change::RemoveMember {
        email: email("bob@acme.com"),
        roles: admin,
    }];
    let bob = person("bob@acme.com");
    let refused = w
        .svc
        .execute(&w.team, &bob, &remove_self, None, &BatchOptions::default())
        .await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Invalid {
                code: "self_removal",
                ..
            })
        ),
        "{refused:?}"
    );
    let told = BatchOptions {
        allow_self_removal: true,
    };
    w.svc
        .execute(&w.team, &bob, &remove_self, None, &told)
        .await
        .expect("removed when told to");
    assert!(!w.state().await.members.contains_key(&email("bob@acme.com")));
}

#[tokio::test]
async fn a_team_that_requires_2fa_admits_people_only_with_a_second_factor() {
    use teamform_core::model::Settings;
    let w = world().await;
    let alice = person("alice@acme.com");
    let alice_2fa = Principal::Person {
        email: email("alice@acme.com"),
        two_factor: true,
    };
    let required = Settings {
        require_2fa: true,
        ..Settings::default()
    };

    let locked_out = w
        .svc
        .set_settings(&w.team, &alice, required.clone(), None)
        .await;
    assert!(
        matches!(locked_out, Err(ServiceError::TwoFactorRequired(_))),
        "{locked_out:?}"
    );
    w.svc
        .set_settings(&w.team, &alice_2fa, required, None)
        .await
        .expect("required with 2FA");

    let refused = w.svc.visible(&w.team, &alice).await;
    assert!(
        matches!(refused, Err(ServiceError::TwoFactorRequired(_))),
        "even the owner: {refused:?}"
    );
    w.svc
        .visible(&w.team, &alice_2fa)
        .await
        .expect("admitted with 2FA");
    w.svc
        .visible(&w.team, &Principal::LocalOwner)
        .await
        .expect("not a person signing in");

    let link = w.link("bob@acme.com", "/join?token").await;
    let refused = w
        .svc
        .accept_invitation(&link, &person("bob@acme.com"))
        .await;
    assert!(
        matches!(refused, Err(ServiceError::TwoFactorRequired(_))),
        "{refused:?}"
    );
    let bob_2fa = Principal::Person {
        email: email("bob@acme.com"),
        two_factor: true,
    };
    // A token made from a sign-in with 2FA carries it.
    let token = w
        .svc
        .create_token(&bob_2fa, "laptop", None)
        .await
        .expect("token")
        .secret;
    let bob_by_token = w.svc.authenticate(&token).await.expect("token works");
    assert_eq!(bob_by_token, bob_2fa);
    w.svc
        .accept_invitation(&link, &bob_by_token)
        .await
        .expect("joined with 2FA");

    // Nobody is kept in a team they cannot enter: leaving needs no second factor.
    w.svc
        .leave(&w.team, &person("bob@acme.com"))
        .await
        .expect("left");
}
