#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report
//! The team page's actions through the router, as browsers send them: a
//! session cookie, a CSRF token, the service's permissions, escaped text,
//! and a resent invitation's link shown once to copy.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use teamform_core::{Catalog, Change, Email, RoleName};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::lifecycle::LinkKind;
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

async fn world() -> (Arc<Service>, axum::Router) {
    let svc = Arc::new(Service::new(
        Arc::new(SqliteStore::in_memory().unwrap()),
        Arc::new(Catalog::standard()),
        Arc::new(ManualClock::new("2026-11-28T12:00:00Z".parse().unwrap())),
        "https://teams.acme.com".into(),
    ));
    let viewer = || [RoleName::parse("viewer").unwrap()].into();
    let changes = [
        Change::CreateTeam {
            display_name: "Acme <script>alert(1)</script>".into(),
            owner: email("olivia@acme.com"),
        },
        Change::Invite {
            email: email("bob@acme.com"),
            name: None,
            roles: viewer(),
        },
        Change::Invite {
            email: email("vera@acme.com"),
            name: None,
            roles: viewer(),
        },
    ];
    let team = "acme".parse().unwrap();
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .unwrap();
    let vera_link = svc
        .outbox(&team)
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.to == "vera@acme.com")
        .unwrap();
    svc.accept_invitation(
        vera_link.link_secret().unwrap(),
        &Principal::person(email("vera@acme.com")),
    )
    .await
    .unwrap();
    let router = app(AppState::new(svc.clone(), Anonymous::Refused));
    (svc, router)
}

/// A browser session for `who`: the cookie a sign-in would set.
async fn session(svc: &Service, who: &str) -> String {
    let created = svc
        .create_token(&Principal::person(email(who)), "browser sign-in", None)
        .await
        .unwrap();
    format!("tf_session={}.{}", created.view.id, created.secret)
}

async fn send(
    router: &axum::Router,
    method: &str,
    uri: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let body: String = form
        .iter()
        .map(|(k, v)| format!("{k}={}", teamform_functions::auth::oidc::form_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut req = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    let req = req
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, location.unwrap_or(text))
}

fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF token");
    let rest = &page[at + 19..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_team_page_acts_through_the_service_with_its_permissions() {
    let (svc, router) = world().await;
    let olivia = session(&svc, "olivia@acme.com").await;
    let (status, page) = send(&router, "GET", "/ui/teams/acme", &olivia, &[]).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Acme &lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped"
    );
    assert!(!page.contains("<script>alert(1)"), "never raw");
    assert!(page.contains("invite-emails") && page.contains("Create API key"));
    let token = csrf(&page);

    // Resend shows the new link once, to copy; the old link is dead.
    let old = svc
        .outbox(&"acme".parse().unwrap())
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.to == "bob@acme.com")
        .unwrap();
    let old_secret = old.link_secret().unwrap().to_owned();
    let (status, page) = send(
        &router,
        "POST",
        "/ui/teams/acme/resend",
        &olivia,
        &[("csrf", &token), ("email", "bob@acme.com")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Invitation link"), "{page}");
    let at = page
        .find("https://teams.acme.com/join?token=tfi_")
        .expect("the new link on the page");
    let new_secret: String = page[at..]
        .split("token=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| *c != '"')
        .collect();
    assert_ne!(new_secret, old_secret);
    assert!(
        svc.preview_link(&old_secret, LinkKind::Invitation)
            .await
            .is_err()
    );
    assert!(
        svc.preview_link(&new_secret, LinkKind::Invitation)
            .await
            .is_ok()
    );

    // Without the page's CSRF token nothing happens.
    let (status, _) = send(
        &router,
        "POST",
        "/ui/teams/acme/revoke",
        &olivia,
        &[("email", "bob@acme.com")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        &router,
        "POST",
        "/ui/teams/acme/revoke",
        &olivia,
        &[("csrf", "x"), ("email", "bob@acme.com")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        svc.preview_link(&new_secret, LinkKind::Invitation)
            .await
            .is_ok(),
        "still invited"
    );

    // A viewer sees no invite form, and the service refuses what the page would not offer.
    let vera = session(&svc, "vera@acme.com").await;
    let (status, page) = send(&router, "GET", "/ui/teams/acme", &vera, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!page.contains("invite-emails"), "no invite form: {page}");
    let vera_csrf = csrf(&page);
    assert_ne!(vera_csrf, token, "a CSRF token belongs to its session");
    let (status, page) = send(
        &router,
        "POST",
        "/ui/teams/acme/revoke",
        &vera,
        &[("csrf", &vera_csrf), ("email", "bob@acme.com")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    let (status, _) = send(
        &router,
        "POST",
        "/ui/teams/acme/revoke",
        &vera,
        &[("csrf", &token), ("email", "bob@acme.com")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another session's token");
    assert!(
        svc.preview_link(&new_secret, LinkKind::Invitation)
            .await
            .is_ok(),
        "still invited"
    );

    // A stranger finds no team; no session is sent to sign in.
    let mallory = session(&svc, "mallory@evil.io").await;
    let (status, _) = send(&router, "GET", "/ui/teams/acme", &mallory, &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, location) = send(&router, "GET", "/ui/teams/acme", "", &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/signin?return_to=%2Fui%2Fteams%2Facme");
    // A forged cookie is no session.
    let (status, _) = send(
        &router,
        "GET",
        "/ui/teams/acme",
        "tf_session=x.tfp_forged",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The owner revokes with the right token: done, and the link dies.
    let (status, page) = send(
        &router,
        "POST",
        "/ui/teams/acme/revoke",
        &olivia,
        &[("csrf", &token), ("email", "bob@acme.com")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Cancelled the invitation of bob@acme.com"));
    assert!(
        svc.preview_link(&new_secret, LinkKind::Invitation)
            .await
            .is_err()
    );
}
