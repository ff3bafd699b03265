//! Closing a team over HTTP, on a SQLite file: who may close it and when, the
//! grace period in which only the owner gets in (and may reopen it as it
//! was), and the sweep that archives the audit trail and then leaves no item
//! of the team behind, checked by reading every row of the file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

use std::path::PathBuf;
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
use teamform_functions::service::close::{CloseSettings, DirArchive};
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn person(s: &str) -> Principal {
    Principal::person(email(s))
}

fn role(s: &str) -> RoleName {
    RoleName::parse(s).expect("role")
}

struct World {
    _dir: tempfile::TempDir,
    db: PathBuf,
    svc: Arc<Service>,
    clock: Arc<ManualClock>,
    router: axum::Router,
    team: TeamId,
    /// Personal tokens of alice (owner), bob (admin), dave (in no team).
    alice: String,
    bob: String,
    dave: String,
    /// An admin API key of acme.
    key: String,
}

/// `acme`: owner alice, bob an admin who joined, carol invited with a
/// custom role, an admin API key that has been used; and `other`, dave's
/// team, that must come through every sweep untouched.
async fn world() -> World {
    let dir = tempfile::tempdir().expect("dir");
    let db = dir.path().join("state.db");
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T12:00:00Z".parse().expect("time"),
    ));
    let svc = Arc::new(
        Service::new(
            Arc::new(SqliteStore::open(&db).expect("store")),
            Arc::new(Catalog::standard()),
            clock.clone(),
            "https://app".into(),
        )
        .with_close_settings(CloseSettings::new(30, 365).expect("settings"))
        .with_archive(Arc::new(DirArchive::beside(&db))),
    );
    let team = TeamId::parse("acme").expect("id");
    let release = json!({"description": "Ships", "permissions": ["apps.read"]});
    let changes: Vec<Change> = serde_json::from_value(json!([
        {"op": "create_team", "display_name": "Acme", "owner": "alice@acme.com"},
        {"op": "create_role", "name": "release", "role": release},
        {"op": "invite", "email": "bob@acme.com", "roles": ["admin"]},
        {"op": "invite", "email": "carol@acme.com", "roles": ["release"]},
    ]))
    .expect("changes");
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("acme");
    let bob_link = link(&svc, &team, "bob@acme.com").await;
    svc.accept_invitation(&bob_link, &person("bob@acme.com"))
        .await
        .expect("bob joins");
    let other = TeamId::parse("other").expect("id");
    svc.execute(
        &other,
        &Principal::LocalOwner,
        &[
            Change::CreateTeam {
                display_name: "Other".into(),
                owner: email("dave@other.io"),
            },
            Change::Invite {
                email: email("erin@other.io"),
                name: None,
                roles: [role("viewer")].into(),
            },
        ],
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("other");
    let token = |who: &'static str| {
        let svc = svc.clone();
        async move {
            svc.create_token(&person(who), "laptop", None)
                .await
                .expect("token")
                .secret
        }
    };
    let (alice, bob, dave) = (
        token("alice@acme.com").await,
        token("bob@acme.com").await,
        token("dave@other.io").await,
    );
    let key = svc
        .create_api_key(
            &team,
            &person("alice@acme.com"),
            "ci",
            &[role("admin")].into(),
            &[],
            None,
            None,
        )
        .await
        .expect("key")
        .secret;
    let router = app(AppState::new(svc.clone(), Anonymous::Refused));
    let w = World {
        _dir: dir,
        db,
        svc,
        clock,
        router,
        team,
        alice,
        bob,
        dave,
        key,
    };
    let (status, _) = w.send("GET", "/teams/acme/members", None, &w.key).await;
    assert_eq!(status, StatusCode::OK, "the key works before closing");
    w
}

/// The secret of the newest link emailed to `to`.
async fn link(svc: &Service, team: &TeamId, to: &str) -> String {
    let mails = svc.outbox(team).await.expect("outbox");
    let mail = mails
        .iter()
        .rev()
        .find(|m| m.to.eq_ignore_ascii_case(to))
        .expect("an email");
    mail.link_secret().expect("a link").to_owned()
}

impl World {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        body: Option<Value>,
        token: &str,
    ) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, format!("Bearer {token}"));
        let req = match body {
            Some(body) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("request");
        let res = self.router.clone().oneshot(req).await.expect("answer");
        let status = res.status();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn close(&self, body: Value, token: &str) -> (StatusCode, Value) {
        self.send("POST", "/teams/acme/close", Some(body), token)
            .await
    }

    /// Every row of the store file, read beside the service.
    fn rows(&self) -> Vec<(String, String, String)> {
        let conn = rusqlite::Connection::open(&self.db).expect("open");
        let mut stmt = conn
            .prepare("SELECT pk, sk, attrs FROM items ORDER BY pk, sk")
            .expect("select");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    fn archive_dir(&self) -> PathBuf {
        DirArchive::beside(&self.db).dir().to_path_buf()
    }
}

/// A row that belongs to team `acme` or points at it.
fn of_acme((pk, sk, attrs): &(String, String, String)) -> bool {
    pk == "TEAM#acme" || sk == "TEAM#acme" || pk == "CLOSING" || attrs.contains(r#""team":"acme""#)
}

fn code(body: &Value) -> Option<&str> {
    body["code"].as_str()
}

#[tokio::test]
async fn only_the_owner_closes_and_only_with_the_team_named_and_nobody_left() {
    let w = world().await;
    let confirm = json!({"confirm": "acme"});

    let (status, body) = w.close(confirm.clone(), &w.bob).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "an admin: {body}"
    );
    let (status, body) = w
        .close(json!({"confirm": "acme", "force": true}), &w.key)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "an API key: {body}"
    );
    let (status, body) = w.close(json!({"confirm": "acme"}), &w.dave).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a stranger learns nothing: {body}"
    );

    let (status, body) = w
        .close(json!({"confirm": "acm", "force": true}), &w.alice)
        .await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("confirmation_mismatch")
        )
    );
    let (status, body) = w.close(json!({"force": true}), &w.alice).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")),
        "confirm is required: {body}"
    );

    let (status, body) = w.close(confirm.clone(), &w.alice).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, Some("team_not_empty")),
        "{body}"
    );
    assert_eq!(
        (body["members"].as_u64(), body["invitations"].as_u64()),
        (Some(1), Some(1))
    );

    let (status, body) = w
        .send(
            "POST",
            "/teams/acme/ownership-transfer",
            Some(json!({"to": "bob@acme.com"})),
            &w.alice,
        )
        .await;
    assert!(status.is_success(), "transfer starts: {status} {body}");
    let (status, body) = w
        .close(json!({"confirm": "acme", "force": true}), &w.alice)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, Some("transfer_pending")),
        "{body}"
    );
    let (status, body) = w
        .send("DELETE", "/teams/acme/ownership-transfer", None, &w.alice)
        .await;
    assert!(status.is_success(), "transfer cancelled: {status} {body}");

    let now = w.svc.now();
    let (status, body) = w
        .close(json!({"confirm": "acme", "force": true}), &w.alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "closing");
    let deletes_at: chrono::DateTime<chrono::Utc> = body["deletes_at"]
        .as_str()
        .expect("deadline")
        .parse()
        .expect("time");
    assert_eq!(
        deletes_at,
        now + Duration::days(30),
        "the configured grace period"
    );

    let (status, body) = w
        .close(json!({"confirm": "acme", "force": true}), &w.alice)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, Some("team_closed")),
        "{body}"
    );
}

#[tokio::test]
async fn a_closing_team_refuses_all_but_its_owner_who_may_reopen_it_as_it_was() {
    let w = world().await;
    let (_, before) = w.send("GET", "/teams/acme/state", None, &w.alice).await;
    let carol_link = link(&w.svc, &w.team, "carol@acme.com").await;
    let carol = w
        .svc
        .create_token(&person("carol@acme.com"), "laptop", None)
        .await
        .expect("token")
        .secret;
    let (status, closed) = w
        .close(json!({"confirm": "acme", "force": true}), &w.alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");

    // Members, invitees and the team's API keys are refused, and told why.
    for (who, token) in [("bob", &w.bob), ("the API key", &w.key)] {
        let (status, body) = w.send("GET", "/teams/acme/members", None, token).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, Some("team_closed")),
            "{who}: {body}"
        );
    }
    let (status, body) = w.send("GET", "/teams/acme/members", None, &w.dave).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a stranger: {body}");
    let (status, body) = w
        .send(
            "POST",
            "/invitations/accept",
            Some(json!({"token": carol_link})),
            &carol,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, Some("team_closed")),
        "carol's link: {body}"
    );
    let preview = w
        .svc
        .preview_link(
            &carol_link,
            teamform_functions::service::lifecycle::LinkKind::Invitation,
        )
        .await;
    assert!(
        matches!(
            preview,
            Err(ServiceError::Refused {
                code: "team_closed",
                ..
            })
        ),
        "the link's page: {preview:?}"
    );

    // The owner's writes are refused too.
    let writes = [
        (
            "PUT",
            "/teams/acme/settings",
            Some(json!({"require_2fa": false, "invitation_ttl_days": 10})),
        ),
        (
            "POST",
            "/teams/acme/invitations",
            Some(json!({"email": "fred@acme.com", "roles": ["viewer"]})),
        ),
        (
            "POST",
            "/teams/acme/api-keys",
            Some(json!({"name": "more", "roles": ["viewer"]})),
        ),
        (
            "POST",
            "/teams/acme/ownership-transfer",
            Some(json!({"to": "bob@acme.com"})),
        ),
        ("DELETE", "/teams/acme/members/bob@acme.com", None),
    ];
    for (method, uri, body) in writes {
        let (status, answer) = w.send(method, uri, body, &w.alice).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::CONFLICT, Some("team_closed")),
            "{method} {uri}: {answer}"
        );
    }
    // ... but the owner still reads, the audit trail included.
    let (status, closing) = w.send("GET", "/teams/acme/close", None, &w.alice).await;
    assert_eq!(status, StatusCode::OK, "{closing}");
    assert_eq!(closing["state"], "closing");
    assert_eq!(closing["deletes_at"], closed["deletes_at"]);
    let (status, state) = w.send("GET", "/teams/acme/state", None, &w.alice).await;
    assert_eq!(status, StatusCode::OK);
    let (status, audit) = w.send("GET", "/teams/acme/audit", None, &w.alice).await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["action"].as_str())
        .collect();
    assert_eq!(actions.last(), Some(&"close_team"), "{actions:?}");

    // A sweep before the deadline deletes nothing.
    w.clock.advance(Duration::days(30) - Duration::seconds(1));
    let rows = w.rows();
    let report = w.svc.sweep_closed(w.svc.now()).await.expect("sweep");
    assert!(
        report.deleted.is_empty() && report.items_deleted == 0,
        "{report:?}"
    );
    assert_eq!(w.rows(), rows, "not one row changed");

    let (status, body) = w.send("POST", "/teams/acme/reopen", None, &w.alice).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "open");
    let (status, open) = w.send("GET", "/teams/acme/close", None, &w.bob).await;
    assert_eq!(
        (status, &open["state"]),
        (StatusCode::OK, &json!("open")),
        "{open}"
    );
    assert!(open.get("deletes_at").is_none());
    let (_, after) = w.send("GET", "/teams/acme/state", None, &w.alice).await;
    let without_version = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().expect("state").remove("version");
        v
    };
    assert_eq!(
        without_version(&after),
        without_version(&before),
        "the team as it was"
    );
    assert_eq!(
        after["version"].as_u64(),
        before["version"].as_u64().map(|v| v + 2)
    );
    assert_eq!(state["members"], before["members"]);

    for token in [&w.bob, &w.key] {
        let (status, body) = w.send("GET", "/teams/acme/members", None, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = w
        .send(
            "POST",
            "/invitations/accept",
            Some(json!({"token": carol_link})),
            &carol,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::GONE, Some("invitation_expired")),
        "carol's link is judged on its own again (it expired meanwhile): {body}"
    );
    let (status, body) = w.send("POST", "/teams/acme/reopen", None, &w.alice).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, Some("team_not_closed")),
        "{body}"
    );
    let (status, body) = w.send("POST", "/teams/acme/reopen", None, &w.bob).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{body}"
    );
    // The sweep's list no longer names the team.
    w.clock.advance(Duration::days(2));
    let report = w.svc.sweep_closed(w.svc.now()).await.expect("sweep");
    assert!(report.deleted.is_empty(), "{report:?}");
    assert!(!w.rows().iter().any(|(pk, ..)| pk == "CLOSING"));
}

#[tokio::test]
async fn after_the_grace_period_the_sweep_archives_the_audit_and_leaves_nothing_of_the_team() {
    let w = world().await;
    let carol_link = link(&w.svc, &w.team, "carol@acme.com").await;
    let carol = w
        .svc
        .create_token(&person("carol@acme.com"), "laptop", None)
        .await
        .expect("token")
        .secret;
    // A transfer started and cancelled leaves a dead link behind.
    let (status, _) = w
        .send(
            "POST",
            "/teams/acme/ownership-transfer",
            Some(json!({"to": "bob@acme.com"})),
            &w.alice,
        )
        .await;
    assert!(status.is_success());
    let (status, _) = w
        .send("DELETE", "/teams/acme/ownership-transfer", None, &w.alice)
        .await;
    assert!(status.is_success());
    // A request with an Idempotency-Key keeps its response under the
    // caller's key, outside the team's partition.
    let req = Request::builder()
        .method("POST")
        .uri("/teams/acme/invitations")
        .header(header::AUTHORIZATION, format!("Bearer {}", w.alice))
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", "invite-fred")
        .body(Body::from(
            json!({"email": "fred@acme.com", "roles": ["viewer"]}).to_string(),
        ))
        .expect("request");
    let res = w.router.clone().oneshot(req).await.expect("answer");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(w.rows().iter().any(|(pk, ..)| pk.starts_with("IDEMP#")));
    // A SCIM token: its lookup lives outside the team's partition.
    let (status, body) = w
        .send(
            "POST",
            "/teams/acme/scim-tokens",
            Some(json!({"name": "idp", "default_role": "viewer"})),
            &w.alice,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let of_acme_or_its_requests =
        |r: &(String, String, String)| of_acme(r) || r.0.starts_with("IDEMP#");
    let other_before: Vec<_> = w
        .rows()
        .into_iter()
        .filter(|r| !of_acme_or_its_requests(r))
        .collect();
    let kinds: std::collections::BTreeSet<String> = w
        .rows()
        .iter()
        .filter(|r| of_acme(r))
        .map(|(pk, sk, _)| {
            let pk = pk.split('#').next().unwrap_or_default();
            let sk = sk.split('#').next().unwrap_or_default();
            format!("{pk}/{sk}")
        })
        .collect();
    for kind in [
        "TEAM/MEMBER",
        "TEAM/INVITE",
        "TEAM/APIKEY",
        "TEAM/KEYUSE",
        "TEAM/LINK",
        "TEAM/OUTBOX",
        "TEAM/AUDIT",
        "TEAM/IDEMP",
        "TEAM/META",
        "USER/TEAM",
        "KEY/KEY",
        "TOKEN/TOKEN",
        "SCIM/SCIM",
    ] {
        assert!(
            kinds.contains(kind),
            "the team has {kind} items to delete: {kinds:?}"
        );
    }

    let (status, body) = w
        .close(json!({"confirm": "acme", "force": true}), &w.alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let audit: Vec<String> = w
        .rows()
        .into_iter()
        .filter(|(pk, sk, _)| pk == "TEAM#acme" && sk.starts_with("AUDIT#"))
        .map(|(_, sk, _)| sk)
        .collect();
    assert!(audit.len() >= 8, "{audit:?}");

    w.clock.advance(Duration::days(30));
    let report = w.svc.sweep_closed(w.svc.now()).await.expect("sweep");
    assert_eq!(report.deleted, std::slice::from_ref(&w.team), "{report:?}");
    assert!(!report.unfinished);

    let left: Vec<_> = w
        .rows()
        .into_iter()
        .filter(of_acme_or_its_requests)
        .collect();
    assert!(left.is_empty(), "rows of the team left behind: {left:#?}");
    let others: Vec<_> = w.rows().into_iter().collect();
    assert_eq!(others, other_before, "everything else is as it was");

    // The archive holds every audit record, in order, as JSON Lines.
    let file = w.archive_dir().join("acme-20261228T120000Z.jsonl");
    assert_eq!(report.archived, [file.display().to_string()]);
    let text = std::fs::read_to_string(&file).expect("archive");
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            let record: Value = serde_json::from_str(l).expect("a JSON line");
            record["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(ids, audit, "every audit record, once, in order");
    assert!(
        text.lines()
            .last()
            .is_some_and(|l| l.contains(r#""action":"close_team""#))
    );

    // Every credential and link of the team is dead.
    let (status, _) = w.send("GET", "/teams/acme/members", None, &w.key).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the API key");
    let (status, _) = w.send("GET", "/teams/acme/state", None, &w.alice).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the owner");
    let (status, body) = w
        .send(
            "POST",
            "/invitations/accept",
            Some(json!({"token": carol_link})),
            &carol,
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::GONE, Some("invitation_invalid")),
        "{body}"
    );
    let (status, body) = w.send("GET", "/me/teams", None, &w.bob).await;
    assert_eq!(
        (status, body["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{body}"
    );

    // The id is free: a new team, with nothing of the old one.
    let (status, body) = w
        .send(
            "POST",
            "/teams",
            Some(json!({"team": "acme", "owner": "alice@acme.com"})),
            &w.alice,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, state) = w.send("GET", "/teams/acme/state", None, &w.alice).await;
    assert_eq!(state["version"], 1);
    assert_eq!(
        state["members"].as_object().map(|m| m.len()),
        Some(1),
        "{state}"
    );
    assert_eq!(
        state["invitations"].as_object().map(|m| m.len()),
        Some(0),
        "{state}"
    );

    // The archive outlives the team for the retention period, no longer.
    w.clock.advance(Duration::days(365) - Duration::seconds(1));
    let report = w.svc.sweep_closed(w.svc.now()).await.expect("sweep");
    assert_eq!(report.pruned, 0);
    assert!(file.exists());
    w.clock.advance(Duration::seconds(1));
    let report = w.svc.sweep_closed(w.svc.now()).await.expect("sweep");
    assert_eq!(report.pruned, 1);
    assert!(!file.exists());
}

#[tokio::test]
async fn deleting_a_large_team_goes_in_bounded_pages_and_resumes() {
    let w = world().await;
    let invites: Vec<Change> = (0..150)
        .map(|n| Change::Invite {
            email: email(&format!("p{n:03}@acme.com")),
            name: None,
            roles: [role("viewer")].into(),
        })
        .collect();
    w.svc
        .execute(
            &w.team,
            &person("alice@acme.com"),
            &invites,
            None,
            &BatchOptions::default(),
        )
        .await
        .expect("invites");
    let (status, body) = w
        .close(json!({"confirm": "acme", "force": true}), &w.alice)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["state"], "closing");
    w.clock.advance(Duration::days(31));

    let mut rounds = 0;
    loop {
        rounds += 1;
        let before = w.rows().into_iter().filter(of_acme).count();
        let report = w
            .svc
            .sweep_closed_within(w.svc.now(), 100)
            .await
            .expect("sweep");
        let after = w.rows().into_iter().filter(of_acme).count();
        assert!(
            before - after <= 100 + 90,
            "one round deletes a bounded number of rows: {}",
            before - after
        );
        if !report.unfinished {
            assert_eq!(report.deleted, std::slice::from_ref(&w.team));
            break;
        }
        assert!(report.deleted.is_empty());
        // Mid-way the team is still closed: nobody gets in and it cannot be reopened.
        let (status, body) = w.send("POST", "/teams/acme/reopen", None, &w.alice).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, Some("team_closed")),
            "{body}"
        );
        let (status, body) = w.send("GET", "/teams/acme/state", None, &w.alice).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::FORBIDDEN, Some("team_closed")),
            "a half-deleted team is shown to nobody: {body}"
        );
        assert!(rounds < 50, "the sweep makes progress");
    }
    assert!(rounds >= 5, "{rounds} rounds");
    let left: Vec<_> = w.rows().into_iter().filter(of_acme).collect();
    assert!(left.is_empty(), "{left:#?}");
    let archives = std::fs::read_dir(w.archive_dir()).expect("dir").count();
    assert_eq!(archives, 1, "one archive, whatever the number of rounds");
}
