//! What one request costs as the team grows: the same one-thing operation
//! on teams of 100 and of 10,000 people makes the same number of store
//! calls. A store wrapper counts every `get`, `query` page and `transact`.
//! Recording one invitation's expiry costs the same whatever the team's size:
//! the sweep reads its due entries, never the team.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Item, Page, PageRequest, Store, StoreError, Write};
use tower::ServiceExt;

#[derive(Default)]
struct Counting {
    inner: Option<SqliteStore>,
    calls: AtomicUsize,
}

impl Counting {
    fn store(&self) -> &SqliteStore {
        self.inner.as_ref().expect("store")
    }
    fn take(&self) -> usize {
        self.calls.swap(0, Ordering::SeqCst)
    }
}

#[async_trait]
impl Store for Counting {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.store().get(pk, sk).await
    }
    async fn query(&self, pk: &str, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.store().query(pk, prefix, page).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.store().transact(writes).await
    }
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.store().get_many(keys).await
    }
    async fn scan(&self, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.store().scan(prefix).await
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

/// A team `t` of `size` people: the owner, a custom role, and pending
/// invitations (every other one holding the custom role).
async fn team_of(size: usize) -> (Router, Arc<Counting>) {
    let counting = Arc::new(Counting {
        inner: Some(SqliteStore::in_memory().expect("store")),
        calls: AtomicUsize::new(0),
    });
    let svc = Arc::new(Service::new(
        counting.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(ManualClock::new(
            "2026-11-28T12:00:00Z".parse().expect("time"),
        )),
        "http://test".into(),
    ));
    let team = TeamId::parse("tt").expect("team");
    let mut setup = vec![
        Change::CreateTeam {
            display_name: "T".into(),
            owner: email("owner@x.io"),
        },
        Change::CreateRole {
            name: RoleName::parse("ops").expect("role"),
            role: serde_json::from_value(json!({"permissions": ["apps.read"]})).expect("role"),
        },
    ];
    for i in 0..size {
        let role = if i % 2 == 0 { "ops" } else { "viewer" };
        setup.push(Change::Invite {
            email: email(&format!("p{i:05}@x.io")),
            name: None,
            roles: [RoleName::parse(role).expect("role")].into(),
        });
    }
    for part in setup.chunks(1000) {
        svc.execute(
            &team,
            &Principal::LocalOwner,
            part,
            None,
            &BatchOptions::default(),
        )
        .await
        .expect("setup");
    }
    counting.take();
    (app(AppState::new(svc, Anonymous::LocalOwner)), counting)
}

async fn call(router: &Router, method: &str, uri: &str, body: Option<Value>) -> u16 {
    let req = Request::builder().method(method).uri(uri);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("answer");
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await;
    status
}

/// Every one-thing operation, in order; each returns its store calls.
async fn costs(router: &Router, counting: &Counting) -> Vec<(&'static str, u16, usize)> {
    let ops: Vec<(&str, &str, String, Option<Value>)> = vec![
        (
            "invite",
            "POST",
            "/teams/tt/invitations".into(),
            Some(json!({"email": "new@x.io", "roles": ["viewer"]})),
        ),
        (
            "set roles",
            "PUT",
            "/teams/tt/members/p00002@x.io/roles".into(),
            Some(json!({"roles": ["ops"]})),
        ),
        (
            "resend",
            "POST",
            "/teams/tt/invitations/p00003@x.io/resend".into(),
            None,
        ),
        (
            "revoke",
            "DELETE",
            "/teams/tt/invitations/p00004@x.io".into(),
            None,
        ),
        ("get settings", "GET", "/teams/tt/settings".into(), None),
        (
            "put settings",
            "PUT",
            "/teams/tt/settings".into(),
            Some(json!({"invitation_ttl_days": 20})),
        ),
        ("roles", "GET", "/teams/tt/roles".into(), None),
        (
            "put role",
            "PUT",
            "/teams/tt/roles/ops".into(),
            Some(json!({"permissions": ["apps.read", "apps.config.read"]})),
        ),
        (
            "delete role in use",
            "DELETE",
            "/teams/tt/roles/ops".into(),
            None,
        ),
        (
            "check",
            "GET",
            "/teams/tt/check?permission=apps.read".into(),
            None,
        ),
        (
            "create key",
            "POST",
            "/teams/tt/api-keys".into(),
            Some(json!({"name": "k", "roles": ["viewer"]})),
        ),
        (
            "members page",
            "GET",
            "/teams/tt/members?limit=50".into(),
            None,
        ),
        ("me", "GET", "/me".into(), None),
        (
            "transfer",
            "POST",
            "/teams/tt/ownership-transfer".into(),
            Some(json!({"to": "p00005@x.io"})),
        ),
    ];
    let mut out = Vec::new();
    for (name, method, uri, body) in ops {
        counting.take();
        let status = call(router, method, &uri, body).await;
        out.push((name, status, counting.take()));
    }
    out
}

#[tokio::test]
async fn one_thing_costs_the_same_in_a_team_of_100_and_of_10000() {
    let (small, small_count) = team_of(100).await;
    let (large, large_count) = team_of(10_000).await;
    let a = costs(&small, &small_count).await;
    let b = costs(&large, &large_count).await;
    for ((name, s1, c1), (_, s2, c2)) in a.iter().zip(&b) {
        eprintln!("{name:>20}: {c1:>3} store calls at 100, {c2:>3} at 10,000 (status {s1}/{s2})");
    }
    for ((name, s1, c1), (_, s2, c2)) in a.iter().zip(&b) {
        assert_eq!(s1, s2, "{name}: same answer at both sizes");
        assert!(*s1 < 500, "{name}: {s1}");
        assert_eq!(
            c1, c2,
            "{name}: {c1} store calls at 100 people, {c2} at 10,000"
        );
        assert!(*c1 <= 16, "{name}: {c1} store calls is not a fixed handful");
    }
    // The role is in use: refused through its holder items, not a scan.
    let deleted = a
        .iter()
        .find(|(n, ..)| *n == "delete role in use")
        .expect("op");
    assert_eq!(deleted.1, 409);
}

/// A team of `size` pending invitations that expire in a year, and one
/// that expires in a day; the clock, past that day.
async fn expiring_team_of(size: usize) -> (Arc<Service>, Arc<Counting>) {
    let counting = Arc::new(Counting {
        inner: Some(SqliteStore::in_memory().expect("store")),
        calls: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T12:00:00Z".parse().expect("time"),
    ));
    let svc = Arc::new(Service::new(
        counting.clone(),
        Arc::new(Catalog::standard()),
        clock.clone(),
        "http://test".into(),
    ));
    let team = TeamId::parse("tt").expect("team");
    let with_ttl = |days: u32| teamform_core::model::Settings {
        invitation_ttl_days: days,
        ..teamform_core::model::Settings::default()
    };
    let ttl = |from: u32, to: u32| Change::UpdateSettings {
        from: with_ttl(from),
        to: with_ttl(to),
    };
    let mut setup = vec![
        Change::CreateTeam {
            display_name: "T".into(),
            owner: email("owner@x.io"),
        },
        ttl(
            teamform_core::model::Settings::DEFAULT_INVITATION_TTL_DAYS,
            365,
        ),
    ];
    setup.extend((0..size).map(|i| Change::Invite {
        email: email(&format!("p{i:05}@x.io")),
        name: None,
        roles: [RoleName::parse("viewer").expect("role")].into(),
    }));
    for part in setup.chunks(1000) {
        svc.execute(
            &team,
            &Principal::LocalOwner,
            part,
            None,
            &BatchOptions::default(),
        )
        .await
        .expect("setup");
    }
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &[
            ttl(365, 1),
            Change::Invite {
                email: email("soon@x.io"),
                name: None,
                roles: [RoleName::parse("viewer").expect("role")].into(),
            },
        ],
        None,
        &BatchOptions::default(),
    )
    .await
    .expect("the one that expires soon");
    clock.advance(chrono::Duration::days(2));
    counting.take();
    (svc, counting)
}

#[tokio::test]
async fn recording_one_expiry_costs_the_same_in_a_team_of_100_and_of_2000() {
    let mut costs = Vec::new();
    for size in [100, 2000] {
        let (svc, counting) = expiring_team_of(size).await;
        let report = svc.sweep_expired(svc.now()).await.expect("sweep");
        assert_eq!(report.recorded, 1, "{size}: {report:?}");
        costs.push(counting.take());
        let again = svc.sweep_expired(svc.now()).await.expect("sweep");
        assert_eq!(again.recorded, 0);
    }
    eprintln!(
        "one expiry: {} store calls at 100, {} at 2,000",
        costs[0], costs[1]
    );
    assert_eq!(costs[0], costs[1], "{costs:?}");
    assert!(
        costs[0] <= 10,
        "{} store calls is not a fixed handful",
        costs[0]
    );
}
