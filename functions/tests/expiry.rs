//! Invitation expiry, committed: the expiry sweep records each invitation
//! past its `expires_at` once (an `expire_invitation` audit record under a
//! new version) and it is published as a `team.invitation.expired` event in
//! version order; a second sweep, or two sweepers at once, record nothing
//! twice; revoked and resent invitations are not recorded at their old time;
//! accepting after expiry is still refused, and re-inviting still works.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::Request;
use chrono::Duration;
use http_body_util::BodyExt;
use serde_json::Value;
use teamform_core::{Catalog, Change, Email, RoleName, TeamId, Timestamp};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::events::{CloudEvent, JsonlFile, LocalEvents, Retry};
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::audit::AuditFilter;
use teamform_functions::service::expiry::{EXPIRING_PK, due_item};
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Condition, Item, Page, PageRequest, Store, StoreError, Write};
use tower::ServiceExt;

const START: &str = "2026-11-28T12:00:00Z";
/// Past the default invitation lifetime (15 days).
const PAST_EXPIRY: i64 = 16;

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn team(s: &str) -> TeamId {
    TeamId::parse(s).unwrap()
}

fn invite(who: &str) -> Change {
    Change::Invite {
        email: email(who),
        name: None,
        roles: [RoleName::parse("viewer").unwrap()].into(),
    }
}

fn service(store: Arc<dyn Store>, clock: Arc<ManualClock>) -> Service {
    Service::new(
        store,
        Arc::new(Catalog::standard()),
        clock,
        "https://app".into(),
    )
}

async fn create(svc: &Service, id: &str, invited: &[&str]) {
    let mut changes = vec![Change::CreateTeam {
        display_name: id.into(),
        owner: email(&format!("owner@{id}.io")),
    }];
    changes.extend(invited.iter().map(|who| invite(who)));
    svc.execute(
        &team(id),
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .unwrap();
}

/// The team's `expire_invitation` records through the audit API, oldest first.
async fn expiries(svc: &Service, id: &str) -> Vec<Value> {
    let filter = AuditFilter {
        action: Some("expire_invitation".into()),
        ..AuditFilter::default()
    };
    svc.audit_page(&team(id), &Principal::LocalOwner, &filter, 1000, None)
        .await
        .unwrap()
        .items
}

/// Every due entry in the store.
async fn entries(store: &dyn Store) -> Vec<Item> {
    store.query_all(EXPIRING_PK, "").await.unwrap()
}

/// The secret of the newest link emailed to `to`.
async fn link(svc: &Service, id: &str, to: &str) -> String {
    let mails = svc.outbox(&team(id)).await.unwrap();
    let mail = mails.iter().rev().find(|m| m.to == to).expect("an email");
    mail.link_secret().expect("a link").to_owned()
}

async fn get(router: &axum::Router, uri: &str) -> (u16, String) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

fn read_events(path: &std::path::Path) -> Vec<CloudEvent> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn wait_for_events(path: &std::path::Path, n: usize) -> Vec<CloudEvent> {
    for _ in 0..500 {
        if read_events(path).len() >= n {
            // A moment more: an extra delivery would show.
            tokio::time::sleep(StdDuration::from_millis(100)).await;
            return read_events(path);
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    panic!("only {} of {n} events arrived", read_events(path).len());
}

#[tokio::test]
async fn expired_invitations_are_recorded_once_and_published_in_version_order() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let events_file = dir.path().join("events.jsonl");
    let fast = Retry {
        first: StdDuration::from_millis(10),
        max: StdDuration::from_millis(100),
        attempts: 20,
    };
    let svc = Arc::new(service(store.clone(), clock.clone()).with_commit_listener(
        LocalEvents::start(
            store.clone(),
            vec![Arc::new(JsonlFile::new(&events_file))],
            fast,
        ),
    ));
    create(
        &svc,
        "acme",
        &["bob@acme.io", "carol@acme.io", "dave@acme.io"],
    )
    .await;
    assert_eq!(entries(store.as_ref()).await.len(), 3, "one entry each");
    svc.revoke_invitation(
        &team("acme"),
        &Principal::LocalOwner,
        &email("carol@acme.io"),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        entries(store.as_ref()).await.len(),
        2,
        "the revocation took its entry away"
    );
    let bob_link = link(&svc, "acme", "bob@acme.io").await;

    // Before the expiry the sweep records nothing.
    clock.advance(Duration::days(15) - Duration::seconds(1));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!((report.recorded, report.stale), (0, 0), "{report:?}");
    assert!(expiries(&svc, "acme").await.is_empty());

    clock.advance(Duration::seconds(1));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!(report.recorded, 2, "{report:?}");
    assert_eq!(report.teams, [team("acme")], "both in one commit");
    assert!(!report.unfinished);
    let records = expiries(&svc, "acme").await;
    assert_eq!(records.len(), 2, "{records:#?}");
    let subjects: Vec<&str> = records
        .iter()
        .map(|r| r["change"]["email"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["bob@acme.io", "dave@acme.io"]);
    assert_eq!(
        records[0]["request_id"], records[1]["request_id"],
        "one commit, one request id: {records:#?}"
    );
    assert!(
        records[0]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("sweep-")
    );
    let created: Timestamp = START.parse().unwrap();
    for r in &records {
        assert_eq!(r["actor"], "system:expiry");
        assert_eq!(r["actor_kind"], "system");
        assert_eq!(r["source"], "sweep");
        assert_eq!(r["version"], 3, "one new version after the revocation");
        assert_eq!(
            r["change"]["before"]["roles"],
            serde_json::json!(["viewer"])
        );
        let at = |k: &str| {
            r["change"]["before"][k]
                .as_str()
                .unwrap()
                .parse::<Timestamp>()
                .unwrap()
        };
        assert_eq!(at("created_at"), created);
        assert_eq!(at("expires_at"), created + Duration::days(15));
    }
    // The subject filter finds it as it finds any record about a person.
    let about_dave = AuditFilter {
        subject: Some("DAVE@acme.io".into()),
        ..AuditFilter::default()
    };
    let page = svc
        .audit_page(
            &team("acme"),
            &Principal::LocalOwner,
            &about_dave,
            100,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        page.items.last().map(|r| r["action"].clone()),
        Some("expire_invitation".into())
    );
    assert!(entries(store.as_ref()).await.is_empty(), "entries deleted");

    // Through the API, filtered by source, in both export formats.
    let router = app(AppState::new(svc.clone(), Anonymous::LocalOwner));
    let (status, body) = get(&router, "/teams/acme/audit?source=sweep").await;
    assert_eq!(status, 200, "{body}");
    let page: Value = serde_json::from_str(&body).unwrap();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{page}");
    assert!(items.iter().all(|i| i["action"] == "expire_invitation"
        && i["actor_kind"] == "system"
        && i["version"] == 3));
    let (status, csv) = get(&router, "/teams/acme/audit/export?format=csv&source=sweep").await;
    assert_eq!(status, 200, "{csv}");
    assert_eq!(csv.lines().count(), 3, "a header and two rows: {csv}");
    assert!(
        csv.lines().skip(1).all(|l| l.contains("system:expiry")),
        "{csv}"
    );

    // Published: after the team's earlier changes, in version order.
    let events = wait_for_events(&events_file, 7).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "team.created",
            "team.member.invited",
            "team.member.invited",
            "team.member.invited",
            "team.invitation.revoked",
            "team.invitation.expired",
            "team.invitation.expired",
        ]
    );
    assert_eq!(events[5].id, "acme/000000000003/0000");
    assert_eq!(events[6].id, "acme/000000000003/0001");
    assert_eq!(events[5].subject.as_deref(), Some("bob@acme.io"));
    assert_eq!(events[6].subject.as_deref(), Some("dave@acme.io"));
    assert_eq!(events[6].data["actor_kind"], "system");
    assert_eq!(events[6].data["source"], "sweep");

    // Sweeping again records nothing new.
    clock.advance(Duration::days(3));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!((report.recorded, report.stale), (0, 0), "{report:?}");
    assert_eq!(expiries(&svc, "acme").await.len(), 2);
    let state = svc.load(&team("acme")).await.unwrap().unwrap();
    assert_eq!(state.version, 3);
    assert!(
        state.invitations.contains_key(&email("bob@acme.io")),
        "the expired invitation stays, shown as expired"
    );

    // Accepting after expiry is still refused.
    let refused = svc
        .accept_invitation(&bob_link, &Principal::person(email("bob@acme.io")))
        .await;
    assert!(
        matches!(&refused, Err(ServiceError::Gone { code, .. }) if *code == "invitation_expired"),
        "{refused:?}"
    );

    // Re-inviting the expired invitation works, with a new entry, and the
    // new link is accepted (which takes the entry away again).
    svc.resend_invitation(
        &team("acme"),
        &Principal::LocalOwner,
        &email("bob@acme.io"),
        None,
    )
    .await
    .unwrap();
    let due = entries(store.as_ref()).await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].str("email"), Some("bob@acme.io"));
    let fresh = link(&svc, "acme", "bob@acme.io").await;
    svc.accept_invitation(&fresh, &Principal::person(email("bob@acme.io")))
        .await
        .unwrap();
    assert!(entries(store.as_ref()).await.is_empty());
    clock.advance(Duration::days(PAST_EXPIRY));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!(report.recorded, 0, "an accepted invitation never expires");
    assert_eq!(expiries(&svc, "acme").await.len(), 2);
}

#[tokio::test]
async fn an_invitation_resent_before_its_expiry_is_recorded_at_its_new_expiry_only() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let svc = service(store.clone(), clock.clone());
    create(&svc, "acme", &["bob@acme.io"]).await;
    clock.advance(Duration::days(10));
    svc.resend_invitation(
        &team("acme"),
        &Principal::LocalOwner,
        &email("bob@acme.io"),
        None,
    )
    .await
    .unwrap();
    let resent_at = svc.now();
    let due = entries(store.as_ref()).await;
    assert_eq!(due.len(), 1, "the old entry is replaced: {due:?}");

    // Past the first expiry, before the second.
    clock.advance(Duration::days(10));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!((report.recorded, report.stale), (0, 0), "{report:?}");
    assert!(expiries(&svc, "acme").await.is_empty());

    clock.advance(Duration::days(5));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!(report.recorded, 1, "{report:?}");
    let records = expiries(&svc, "acme").await;
    assert_eq!(records.len(), 1);
    let expires: Timestamp = records[0]["change"]["before"]["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(expires, resent_at + Duration::days(15));
}

#[tokio::test]
async fn stale_entries_are_deleted_without_a_record() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let svc = service(store.clone(), clock.clone());
    create(&svc, "acme", &["bob@acme.io"]).await;
    // Entries that name no invitation of that expiry: a person never
    // invited, bob at another time, and a team that does not exist.
    let now = svc.now();
    let stale = [
        due_item(&team("acme"), &email("nobody@acme.io"), now),
        due_item(&team("acme"), &email("bob@acme.io"), now),
        due_item(&team("gone"), &email("x@gone.io"), now),
    ];
    store
        .transact(
            stale
                .into_iter()
                .map(|item| Write::Put {
                    item,
                    condition: Condition::None,
                })
                .collect(),
        )
        .await
        .unwrap();
    clock.advance(Duration::days(1));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!((report.recorded, report.stale), (0, 3), "{report:?}");
    let left = entries(store.as_ref()).await;
    assert_eq!(left.len(), 1, "bob's own entry stays: {left:?}");
    assert_eq!(
        svc.load(&team("acme")).await.unwrap().unwrap().version,
        1,
        "nothing was committed"
    );
    clock.advance(Duration::days(PAST_EXPIRY));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!((report.recorded, report.stale), (1, 0), "{report:?}");
}

/// A store whose first two commits recording expiries wait for each other:
/// two sweepers both read the same entries, check them and commit at once.
struct Lockstep {
    inner: SqliteStore,
    barrier: tokio::sync::Barrier,
    gated: AtomicUsize,
}

#[async_trait]
impl Store for Lockstep {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(pk, sk).await
    }
    async fn query(&self, pk: &str, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
        self.inner.query(pk, prefix, page).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        let records_expiry = writes.iter().any(|w| {
            matches!(w, Write::Delete { pk, condition: Condition::Exists, .. } if pk == EXPIRING_PK)
        });
        if records_expiry && self.gated.fetch_add(1, Ordering::SeqCst) < 2 {
            self.barrier.wait().await;
        }
        self.inner.transact(writes).await
    }
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        self.inner.get_many(keys).await
    }
    async fn scan(&self, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.inner.scan(prefix).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sweepers_at_once_record_each_expiry_once() {
    let store = Arc::new(Lockstep {
        inner: SqliteStore::in_memory().unwrap(),
        barrier: tokio::sync::Barrier::new(2),
        gated: AtomicUsize::new(0),
    });
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    // Two services over one store, as two hosts: they share no write turns.
    let one = Arc::new(service(store.clone(), clock.clone()));
    let two = Arc::new(service(store.clone(), clock.clone()));
    create(&one, "acme", &["a@acme.io", "b@acme.io", "c@acme.io"]).await;
    clock.advance(Duration::days(PAST_EXPIRY));
    let now = one.now();
    let (a, b) = tokio::join!(
        {
            let one = one.clone();
            tokio::spawn(async move { one.sweep_expired(now).await })
        },
        {
            let two = two.clone();
            tokio::spawn(async move { two.sweep_expired(now).await })
        }
    );
    let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
    assert_eq!(
        store.gated.load(Ordering::SeqCst),
        2,
        "both committed at once; the loser read again and found nothing to record"
    );
    assert_eq!(a.recorded + b.recorded, 3, "{a:?} {b:?}");
    assert!(
        a.recorded == 0 || b.recorded == 0,
        "one of them committed them all: {a:?} {b:?}"
    );
    assert!(!a.unfinished && !b.unfinished);
    let records = expiries(&one, "acme").await;
    let mut people: Vec<&str> = records
        .iter()
        .map(|r| r["change"]["email"].as_str().unwrap())
        .collect();
    people.sort();
    assert_eq!(people, ["a@acme.io", "b@acme.io", "c@acme.io"], "each once");
    assert_eq!(one.load(&team("acme")).await.unwrap().unwrap().version, 2);
    assert!(entries(store.as_ref()).await.is_empty());
}

#[tokio::test]
async fn a_closing_team_is_not_recorded_and_its_deletion_takes_its_entries() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let svc = service(store.clone(), clock.clone());
    create(&svc, "acme", &["bob@acme.io", "carol@acme.io"]).await;
    create(&svc, "other", &["erin@other.io"]).await;
    svc.close_team(&team("acme"), &Principal::LocalOwner, "acme", true, None)
        .await
        .unwrap();
    clock.advance(Duration::days(PAST_EXPIRY));
    let report = svc.sweep_expired(svc.now()).await.unwrap();
    assert_eq!(report.teams, [team("other")], "{report:?}");
    assert_eq!(report.recorded, 1);
    assert_eq!(
        entries(store.as_ref()).await.len(),
        2,
        "acme's entries wait"
    );

    clock.advance(Duration::days(30));
    let swept = svc.sweep_closed(svc.now()).await.unwrap();
    assert_eq!(swept.deleted, [team("acme")]);
    assert!(
        entries(store.as_ref()).await.is_empty(),
        "no entry of the deleted team is left"
    );
}
