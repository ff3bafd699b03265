#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report
//! Local events: committed changes published from the store to a signed
//! webhook (a receiver on a loopback port that fails its first deliveries)
//! and to a JSON Lines file, in version order, each once per id, continuing
//! from the cursor after a restart; and the request each audit record and
//! event names (request id, source, actor kind) through the router.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::events::{
    CloudEvent, JsonlFile, LocalEvents, Retry, SignatureError, Target, Webhook, verify_signature,
};
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::Store;
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

const SECRET: &[u8] = b"a-webhook-secret-of-some-length";

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn invite(who: &str) -> Change {
    Change::Invite {
        email: email(who),
        name: None,
        roles: [RoleName::parse("viewer").unwrap()].into(),
    }
}

fn fast() -> Retry {
    Retry {
        first: Duration::from_millis(10),
        max: Duration::from_millis(100),
        attempts: 20,
    }
}

/// What the receiver saw: every request (signature header, body, answered
/// status), and how many more it fails.
#[derive(Default)]
struct Seen {
    requests: Vec<(String, Vec<u8>, u16)>,
    fail_next: usize,
}

/// A webhook receiver on a loopback port; answers 500 to its first
/// `fail` requests.
async fn receiver(fail: usize) -> (String, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen {
        fail_next: fail,
        ..Seen::default()
    }));
    let state = seen.clone();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                let sig = headers
                    .get("teamform-signature")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                let mut s = state.lock().unwrap();
                let status = if s.fail_next > 0 {
                    s.fail_next -= 1;
                    500
                } else {
                    200
                };
                s.requests.push((sig, body.to_vec(), status));
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}/hook"), seen)
}

/// The events the receiver accepted, in arrival order.
fn accepted(seen: &Mutex<Seen>) -> Vec<CloudEvent> {
    seen.lock()
        .unwrap()
        .requests
        .iter()
        .filter(|(_, _, status)| *status == 200)
        .map(|(_, body, _)| serde_json::from_slice(body).unwrap())
        .collect()
}

async fn wait_for(seen: &Mutex<Seen>, n: usize) {
    for _ in 0..500 {
        if accepted(seen).len() >= n {
            // A moment more: an extra (duplicate) delivery would show.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("only {} of {n} events arrived", accepted(seen).len());
}

fn service(store: Arc<dyn Store>, targets: Vec<Arc<dyn Target>>) -> Arc<Service> {
    let mut svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "https://x".into(),
    );
    if !targets.is_empty() {
        svc = svc.with_commit_listener(LocalEvents::start(store, targets, fast()));
    }
    Arc::new(svc)
}

async fn apply(svc: &Service, changes: &[Change]) {
    svc.execute(
        &TeamId::parse("acme").unwrap(),
        &Principal::LocalOwner,
        changes,
        None,
        &BatchOptions::default(),
    )
    .await
    .unwrap();
}

fn create() -> Change {
    Change::CreateTeam {
        display_name: "Acme".into(),
        owner: email("olivia@acme.com"),
    }
}

/// Ids of events in version then sequence order, none repeated.
fn assert_in_order(events: &[CloudEvent]) {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "in version order, each id once");
}

#[tokio::test]
async fn a_failing_webhook_gets_every_event_in_order_signed_after_retries() {
    let (url, seen) = receiver(3).await;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let svc = service(
        store.clone(),
        vec![Arc::new(Webhook::new(url, SECRET.to_vec()))],
    );
    apply(&svc, &[create(), invite("bob@acme.com")]).await;
    apply(&svc, &[invite("carol@acme.com")]).await;
    svc.revoke_invitation(
        &TeamId::parse("acme").unwrap(),
        &Principal::LocalOwner,
        &email("bob@acme.com"),
        None,
    )
    .await
    .unwrap();
    wait_for(&seen, 4).await;

    let events = accepted(&seen);
    assert_eq!(events.len(), 4, "one event per change: {events:?}");
    assert_in_order(&events);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "team.created",
            "team.member.invited",
            "team.member.invited",
            "team.invitation.revoked"
        ]
    );
    assert_eq!(events[0].id, "acme/000000000001/0000");
    assert_eq!(events[1].id, "acme/000000000001/0001");
    assert_eq!(events[3].version(), 3);
    assert_eq!(events[2].subject.as_deref(), Some("carol@acme.com"));
    assert_eq!(events[2].specversion, "1.0");
    assert_eq!(events[2].source, "teamform/teams/acme");
    assert_eq!(events[2].data["actor"], "local-owner");
    assert_eq!(events[2].data["actor_kind"], "local_owner");

    let requests = seen.lock().unwrap().requests.clone();
    assert_eq!(requests.len(), 4 + 3, "three failures, each retried");
    assert!(requests[..3].iter().all(|r| r.2 == 500));
    let first: CloudEvent = serde_json::from_slice(&requests[0].1).unwrap();
    assert_eq!(
        first.id, events[0].id,
        "the failed event is the one retried"
    );
    let now = chrono::Utc::now().timestamp();
    for (sig, body, _) in &requests {
        assert_eq!(
            verify_signature(SECRET, sig, body, now, 300),
            Ok(()),
            "{sig}"
        );
    }
    // A body changed on the way, or a signature replayed much later, fails.
    let (sig, body, _) = &requests[4];
    let mut tampered = body.clone();
    let at = tampered.iter().position(|b| *b == b'1').unwrap();
    tampered[at] = b'2';
    assert_eq!(
        verify_signature(SECRET, sig, &tampered, now, 300),
        Err(SignatureError::Mismatch)
    );
    assert!(matches!(
        verify_signature(SECRET, sig, body, now + 3_600, 300),
        Err(SignatureError::Stale(_))
    ));
    assert_eq!(
        verify_signature(b"another secret", sig, body, now, 300),
        Err(SignatureError::Mismatch)
    );
}

#[tokio::test]
async fn a_restart_continues_from_the_cursor_without_loss_or_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let file = dir.path().join("events.jsonl");
    let (url, seen) = receiver(0).await;
    let targets = || -> Vec<Arc<dyn Target>> {
        vec![
            Arc::new(Webhook::new(url.clone(), SECRET.to_vec())),
            Arc::new(JsonlFile::new(&file)),
        ]
    };
    let lines = || -> Vec<CloudEvent> {
        std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let svc = service(store, targets());
        apply(&svc, &[create()]).await;
        apply(&svc, &[invite("bob@acme.com")]).await;
        wait_for(&seen, 2).await;
    }
    // Down: changes commit while nothing publishes.
    {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
        let svc = service(store, Vec::new());
        apply(&svc, &[invite("carol@acme.com"), invite("dan@acme.com")]).await;
    }
    assert_eq!(accepted(&seen).len(), 2);
    assert_eq!(lines().len(), 2);
    // Up again: what was committed meanwhile goes out at start, then new
    // changes as they commit.
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).unwrap());
    let events = LocalEvents::start(store.clone(), targets(), fast());
    assert_eq!(events.catch_up(store.as_ref()).await.unwrap(), 1);
    let svc = Arc::new(
        Service::new(
            store,
            Arc::new(Catalog::standard()),
            Arc::new(SystemClock),
            "https://x".into(),
        )
        .with_commit_listener(events),
    );
    wait_for(&seen, 4).await;
    apply(&svc, &[invite("erin@acme.com")]).await;
    wait_for(&seen, 5).await;

    let got = accepted(&seen);
    assert_eq!(got.len(), 5, "{got:?}");
    assert_in_order(&got);
    let subjects: Vec<&str> = got.iter().filter_map(|e| e.subject.as_deref()).collect();
    assert_eq!(
        subjects,
        [
            "olivia@acme.com",
            "bob@acme.com",
            "carol@acme.com",
            "dan@acme.com",
            "erin@acme.com"
        ]
    );
    for _ in 0..100 {
        if lines().len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines(), got, "the file holds the same events, once each");
}

// --- The request each record names -----------------------------------------

async fn router_world() -> (Arc<Service>, axum::Router, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let svc = service(store.clone(), Vec::new());
    apply(
        &svc,
        &[create(), invite("bob@acme.com"), invite("carol@acme.com")],
    )
    .await;
    let router = app(AppState::new(svc.clone(), Anonymous::LocalOwner));
    (svc, router, store)
}

async fn last_audit(store: &dyn Store) -> Value {
    let items = store.query_all("TEAM#acme", "AUDIT#").await.unwrap();
    Value::Object(items.last().unwrap().attrs.clone())
}

async fn post_changes(
    router: &axum::Router,
    headers: &[(&str, &str)],
    change: Change,
) -> axum::response::Response {
    let body = json!({ "changes": [change] });
    let mut req = Request::builder()
        .method("POST")
        .uri("/teams/acme/changes")
        .header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    router
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn an_api_change_records_source_api_and_the_request_id_it_echoes() {
    let (_svc, router, store) = router_world().await;
    let res = post_changes(
        &router,
        &[("x-request-id", "req-42.a")],
        invite("dan@acme.com"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-request-id"], "req-42.a");
    let audit = last_audit(store.as_ref()).await;
    assert_eq!(audit["source"], "api");
    assert_eq!(audit["request_id"], "req-42.a");
    assert_eq!(audit["actor_kind"], "local_owner");
    assert!(audit.get("source_note").is_none());

    // Without one (or with one that is not a plain token), the service names
    // the request and says so in the response.
    let res = post_changes(
        &router,
        &[("x-request-id", "bad id with spaces")],
        invite("erin@acme.com"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let given = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(given, "bad id with spaces");
    assert_eq!(given.len(), 36, "{given}");
    assert_eq!(
        last_audit(store.as_ref()).await["request_id"],
        given.as_str()
    );

    // `teamform apply --source` sends its note.
    let res = post_changes(
        &router,
        &[("teamform-source", "apply; commit abc123")],
        invite("frank@acme.com"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    let audit = last_audit(store.as_ref()).await;
    assert_eq!(audit["source"], "apply");
    assert_eq!(audit["source_note"], "commit abc123");

    // A client cannot claim to be a page, nor send an endless note.
    for bad in ["page".to_owned(), format!("apply; {}", "x".repeat(201))] {
        let res = post_changes(
            &router,
            &[("teamform-source", &bad)],
            invite("gina@acme.com"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().contains_key("x-request-id"));
        let body: Value =
            serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap();
        assert_eq!(body["code"], "bad_source", "{body}");
    }
    assert_eq!(
        last_audit(store.as_ref()).await["change"]["email"],
        "frank@acme.com",
        "refused requests change nothing"
    );

    // The export carries the new columns, and the trail filters on them.
    let req = Request::builder()
        .uri("/teams/acme/audit/export?format=csv&source=apply")
        .body(Body::empty())
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let head = reader.headers().unwrap().clone();
    assert_eq!(&head[8], "request_id");
    assert_eq!(&head[10], "source_note");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(&rows[0][9], "apply");
    assert_eq!(&rows[0][10], "commit abc123");
}

/// A browser session for `who`: the cookie a sign-in would set.
async fn session(svc: &Service, who: &str) -> String {
    let created = svc
        .create_token(&Principal::person(email(who)), "browser sign-in", None)
        .await
        .unwrap();
    format!("tf_session={}.{}", created.view.id, created.secret)
}

async fn page(
    router: &axum::Router,
    method: &str,
    uri: &str,
    cookie: &str,
    form: &str,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let text =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, text)
}

#[tokio::test]
async fn a_page_action_records_source_page_and_the_person() {
    let (svc, router, store) = router_world().await;
    let olivia = session(&svc, "olivia@acme.com").await;
    let (status, html) = page(&router, "GET", "/ui/teams/acme", &olivia, "").await;
    assert_eq!(status, StatusCode::OK);
    let at = html.find("name=\"csrf\" value=\"").unwrap();
    let rest = &html[at + 19..];
    let csrf = &rest[..rest.find('"').unwrap()];
    let (status, html) = page(
        &router,
        "POST",
        "/ui/teams/acme/revoke",
        &olivia,
        &format!("csrf={csrf}&email=bob%40acme.com"),
    )
    .await;
    assert!(
        status.is_success() || status.is_redirection(),
        "{status} {html}"
    );
    let audit = last_audit(store.as_ref()).await;
    assert_eq!(audit["action"], "revoke_invitation", "{audit}");
    assert_eq!(audit["source"], "page");
    assert_eq!(audit["actor"], "user:olivia@acme.com");
    assert_eq!(audit["actor_kind"], "person");
    assert_eq!(audit["request_id"].as_str().unwrap().len(), 36);
}

#[tokio::test]
async fn a_batch_beyond_one_transaction_is_published_whole_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let svc = service(store, vec![Arc::new(JsonlFile::new(&file))]);
    let mut changes = vec![create()];
    changes.extend((0..150).map(|i| invite(&format!("p{i}@acme.com"))));
    apply(&svc, &changes).await;
    let mut events: Vec<CloudEvent> = Vec::new();
    for _ in 0..250 {
        events = std::fs::read_to_string(&file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if events.len() >= changes.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(events.len(), changes.len(), "one event per change");
    assert_in_order(&events);
    assert!(
        events.last().unwrap().version() > 1,
        "committed in several parts, one version each"
    );
    assert_eq!(
        events.last().unwrap().subject.as_deref(),
        Some("p149@acme.com")
    );
}
