//! The attack suite: each test is one way a weaker principal (a viewer, an
//! admin, a key with a custom role, a stranger, another team), or a client
//! lying about the team, tried against the service over real HTTP, and the
//! refusal it must get. A new hole found is a new test here.
//!
//! The world: team `t1`, owned by alice (signed in with a second factor),
//! with adam (admin) and vera (viewer) as members, over SQLite, served on a
//! loopback socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use teamform_functions::store::{Page, PageRequest, StoreError, Write};

use chrono::Duration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use teamform_core::{Catalog, Email, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::idempotency;
use teamform_functions::http::{Anonymous, AppState, BODY_LIMIT, app};
use teamform_functions::service::Service;
use teamform_functions::store::Store;
use teamform_functions::store::sqlite::SqliteStore;

/// The store, counting the transactions written through it.
struct Counting {
    inner: SqliteStore,
    writes: AtomicUsize,
}

#[async_trait]
impl Store for Counting {
    async fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<teamform_functions::store::Item>, StoreError> {
        self.inner.get(pk, sk).await
    }
    async fn query(&self, pk: &str, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
        self.inner.query(pk, prefix, page).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.transact(writes).await
    }
    async fn scan(&self, prefix: &str) -> Result<Vec<teamform_functions::store::Item>, StoreError> {
        self.inner.scan(prefix).await
    }
}

struct World {
    base: String,
    counting: Arc<Counting>,
    http: reqwest::Client,
    svc: Arc<Service>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    alice: String,
    adam: String,
    vera: String,
}

struct Reply {
    status: StatusCode,
    etag: Option<String>,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    fn is(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.code(), code, "{:#}", self.body);
    }

    #[track_caller]
    fn ok(&self) {
        assert!(self.status.is_success(), "{}: {:#}", self.status, self.body);
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

/// Serves a service's router on a loopback port; returns its base URL.
async fn serve(svc: Arc<Service>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app(AppState::new(svc, Anonymous::Refused));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

impl World {
    async fn new() -> World {
        let counting = Arc::new(Counting {
            inner: SqliteStore::in_memory().expect("store"),
            writes: AtomicUsize::new(0),
        });
        let store: Arc<dyn Store> = counting.clone();
        let clock = Arc::new(ManualClock::new(
            "2026-11-28T12:00:00Z".parse().expect("time"),
        ));
        let svc = Arc::new(Service::new(
            store.clone(),
            Arc::new(Catalog::standard()),
            clock.clone(),
            "http://test".into(),
        ));
        let base = serve(svc.clone()).await;
        let mut w = World {
            base,
            counting,
            http: reqwest::Client::new(),
            svc,
            store,
            clock,
            alice: String::new(),
            adam: String::new(),
            vera: String::new(),
        };
        w.alice = w.person("alice@x.io", true).await;
        let made = w
            .call(
                "POST",
                "/teams",
                &w.alice,
                Some(json!({"team": "t1", "owner": "alice@x.io"})),
            )
            .await;
        made.ok();
        w.adam = w.join("adam@x.io", &["admin"], false).await;
        w.vera = w.join("vera@x.io", &["viewer"], false).await;
        w
    }

    /// A personal token for a person.
    async fn person(&self, who: &str, two_factor: bool) -> String {
        let p = Principal::Person {
            email: email(who),
            two_factor,
        };
        self.svc
            .create_token(&p, "test", None)
            .await
            .expect("token")
            .secret
    }

    /// The owner invites a person with roles; the person accepts.
    async fn join(&self, who: &str, roles: &[&str], two_factor: bool) -> String {
        let r = self
            .call(
                "POST",
                "/teams/t1/invitations",
                &self.alice,
                Some(json!({"email": who, "roles": roles})),
            )
            .await;
        r.ok();
        let token = self.person(who, two_factor).await;
        let link = self.link_for(who).await;
        self.call(
            "POST",
            "/invitations/accept",
            &token,
            Some(json!({"token": link})),
        )
        .await
        .ok();
        token
    }

    /// The newest emailed link secret for a person.
    async fn link_for(&self, who: &str) -> String {
        let mails = self
            .svc
            .outbox(&TeamId::parse("t1").expect("team"))
            .await
            .expect("outbox");
        let mail = mails.iter().rev().find(|m| m.to == who).expect("a mail");
        mail.link_secret().expect("a link").to_owned()
    }

    /// An API key made by the owner.
    async fn key(&self, roles: &[&str], permissions: &[&str]) -> String {
        let r = self
            .call(
                "POST",
                "/teams/t1/api-keys",
                &self.alice,
                Some(json!({"name": "k", "roles": roles, "permissions": permissions})),
            )
            .await;
        r.ok();
        r.body["secret"].as_str().expect("secret").to_owned()
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        self.send(method, path, Some(token), body, &[]).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let etag = res
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = res.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, etag, body }
    }

    async fn state(&self) -> Value {
        self.call("GET", "/teams/t1/state", &self.alice, None)
            .await
            .body
    }

    async fn settings(&self) -> Value {
        self.call("GET", "/teams/t1/settings", &self.alice, None)
            .await
            .body
    }

    async fn require_2fa(&self) {
        self.call(
            "PUT",
            "/teams/t1/settings",
            &self.alice,
            Some(json!({"require_2fa": true, "invitation_ttl_days": 15})),
        )
        .await
        .ok();
    }
}

/// A batch of one settings change that claims 2FA was `from` and sets `to`.
fn settings_batch(from: bool, to: bool) -> Value {
    json!({"changes": [{
        "op": "update_settings",
        "from": {"require_2fa": from, "invitation_ttl_days": 15},
        "to": {"require_2fa": to, "invitation_ttl_days": 15}
    }]})
}

const EVERY_PERMISSION: &[&str] = &[
    "team.members.read",
    "team.members.invite",
    "team.members.remove",
    "team.members.roles",
    "team.roles.manage",
    "team.api_keys.manage",
    "team.settings.read",
    "team.settings.manage",
    "team.security.manage",
    "team.audit.read",
    "team.close",
    "billing.manage",
];

// ------------------------------------------------------------- escalation

#[tokio::test]
async fn a_key_with_a_role_manager_role_cannot_widen_its_own_role() {
    let w = World::new().await;
    w.require_2fa().await;
    w.call(
        "PUT",
        "/teams/t1/roles/rolemgr",
        &w.alice,
        Some(json!({"permissions": ["team.roles.manage", "team.members.read"]})),
    )
    .await
    .ok();
    let k = w.key(&["rolemgr"], &[]).await;

    let widen = w
        .call(
            "PUT",
            "/teams/t1/roles/rolemgr",
            &k,
            Some(json!({"permissions": EVERY_PERMISSION})),
        )
        .await;
    widen.is(403, "escalation");
    let roles = w.call("GET", "/teams/t1/roles", &w.alice, None).await;
    assert_eq!(
        roles.body["custom"]["rolemgr"]["permissions"],
        json!(["team.members.read", "team.roles.manage"])
    );

    let admin_key = w
        .call(
            "POST",
            "/teams/t1/api-keys",
            &k,
            Some(json!({"name": "mine", "roles": ["admin"]})),
        )
        .await;
    admin_key.is(403, "forbidden");
    let off = w
        .call(
            "PUT",
            "/teams/t1/settings",
            &k,
            Some(json!({"require_2fa": false, "invitation_ttl_days": 15})),
        )
        .await;
    off.is(403, "forbidden");
    assert_eq!(w.settings().await["require_2fa"], true);

    // What it holds it may still pass on: a role within its own permissions.
    w.call(
        "PUT",
        "/teams/t1/roles/reader",
        &k,
        Some(json!({"permissions": ["team.members.read"]})),
    )
    .await
    .ok();
}

#[tokio::test]
async fn an_admin_key_cannot_grant_what_admin_lacks() {
    let w = World::new().await;
    let k = w.key(&["admin"], &[]).await;
    let billing = w
        .call(
            "POST",
            "/teams/t1/invitations",
            &k,
            Some(json!({"email": "billy@x.io", "roles": ["billing"]})),
        )
        .await;
    billing.is(403, "escalation");
    assert!(
        billing.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("billing.manage")
    );

    let superrole = w
        .call(
            "PUT",
            "/teams/t1/roles/superrole",
            &k,
            Some(json!({"permissions": ["team.security.manage", "billing.manage", "team.close"]})),
        )
        .await;
    superrole.is(403, "escalation");

    // Within admin's own permissions, the same key works.
    w.call(
        "POST",
        "/teams/t1/invitations",
        &k,
        Some(json!({"email": "dev@x.io", "roles": ["developer"]})),
    )
    .await
    .ok();

    // The reconciler's batch path refuses the same grant.
    let batch = w
        .call(
            "POST",
            "/teams/t1/changes",
            &k,
            Some(json!({"changes": [
                {"op": "invite", "email": "ok@x.io", "roles": ["viewer"]},
                {"op": "invite", "email": "billy@x.io", "roles": ["billing"]}
            ]})),
        )
        .await;
    batch.is(403, "escalation");
    assert!(
        batch.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("change 1")
    );
    assert!(
        w.state().await["invitations"].get("ok@x.io").is_none(),
        "a refused batch writes nothing"
    );
}

#[tokio::test]
async fn an_admin_cannot_give_itself_billing() {
    let w = World::new().await;
    let own = w
        .call(
            "PUT",
            "/teams/t1/members/adam@x.io/roles",
            &w.adam,
            Some(json!({"roles": ["admin", "billing"]})),
        )
        .await;
    own.is(403, "escalation");
    // Nor another member, nor through a custom role it then assigns.
    let vera = w
        .call(
            "PUT",
            "/teams/t1/members/vera@x.io/roles",
            &w.adam,
            Some(json!({"roles": ["billing"]})),
        )
        .await;
    vera.is(403, "escalation");
    let state = w.state().await;
    assert_eq!(state["members"]["adam@x.io"]["roles"], json!(["admin"]));
    assert_eq!(state["members"]["vera@x.io"]["roles"], json!(["viewer"]));
}

#[tokio::test]
async fn a_custom_role_cannot_be_widened_after_it_is_assigned() {
    let w = World::new().await;
    // adam makes a harmless role, gives it to vera, then tries to widen it.
    w.call(
        "PUT",
        "/teams/t1/roles/helper",
        &w.adam,
        Some(json!({"permissions": ["team.members.read"]})),
    )
    .await
    .ok();
    w.call(
        "PUT",
        "/teams/t1/members/vera@x.io/roles",
        &w.adam,
        Some(json!({"roles": ["helper"]})),
    )
    .await
    .ok();
    let widen = w
        .call(
            "PUT",
            "/teams/t1/roles/helper",
            &w.adam,
            Some(json!({"permissions": ["team.members.read", "billing.manage"]})),
        )
        .await;
    widen.is(403, "escalation");
}

#[tokio::test]
async fn a_viewer_can_change_nothing() {
    let w = World::new().await;
    let tries = [
        (
            "POST",
            "/teams/t1/invitations",
            Some(json!({"email": "z@x.io", "roles": ["viewer"]})),
        ),
        (
            "PUT",
            "/teams/t1/members/vera@x.io/roles",
            Some(json!({"roles": ["admin"]})),
        ),
        ("DELETE", "/teams/t1/members/adam@x.io", None),
        (
            "PUT",
            "/teams/t1/roles/x",
            Some(json!({"permissions": ["team.members.read"]})),
        ),
        (
            "POST",
            "/teams/t1/api-keys",
            Some(json!({"name": "v", "roles": ["viewer"]})),
        ),
        (
            "PUT",
            "/teams/t1/settings",
            Some(json!({"invitation_ttl_days": 3})),
        ),
        (
            "POST",
            "/teams/t1/ownership-transfer",
            Some(json!({"to": "vera@x.io"})),
        ),
    ];
    let before = w.state().await;
    for (method, path, body) in tries {
        let r = w.call(method, path, &w.vera, body).await;
        assert_eq!(r.status.as_u16(), 403, "{method} {path}: {:#}", r.body);
    }
    let after = w.state().await;
    assert_eq!(before["version"], after["version"]);
}

#[tokio::test]
async fn another_teams_key_sees_nothing_of_this_team() {
    let w = World::new().await;
    let bob = w.person("bob@y.io", false).await;
    w.call(
        "POST",
        "/teams",
        &bob,
        Some(json!({"team": "t2", "owner": "bob@y.io"})),
    )
    .await
    .ok();
    let r = w
        .call(
            "POST",
            "/teams/t2/api-keys",
            &bob,
            Some(json!({"name": "k", "permissions": ["*"]})),
        )
        .await;
    r.ok();
    let k2 = r.body["secret"].as_str().expect("secret").to_owned();
    for (method, path) in [
        ("GET", "/teams/t1/state"),
        ("GET", "/teams/t1/members"),
        ("GET", "/teams/t1/settings"),
        ("GET", "/teams/t1/audit"),
        ("GET", "/teams/t1/api-keys"),
        ("DELETE", "/teams/t1/members/vera@x.io"),
    ] {
        w.call(method, path, &k2, None).await.is(404, "not_found");
    }
    // The stranger's person token neither.
    w.call("GET", "/teams/t1/state", &bob, None)
        .await
        .is(404, "not_found");
}

// ------------------------------------------------- client-supplied truth

#[tokio::test]
async fn a_before_image_that_lies_about_2fa_is_stale() {
    let w = World::new().await;
    w.require_2fa().await;
    let adam = w.person("adam@x.io", true).await;
    let lie = w
        .call(
            "POST",
            "/teams/t1/changes",
            &adam,
            Some(settings_batch(false, false)),
        )
        .await;
    lie.is(409, "stale_change");
    assert_eq!(lie.body["change_index"], 0);
    assert_eq!(w.settings().await["require_2fa"], true);

    // Told the truth, the same change needs a permission admin lacks.
    let truth = w
        .call(
            "POST",
            "/teams/t1/changes",
            &adam,
            Some(settings_batch(true, false)),
        )
        .await;
    truth.is(403, "forbidden");
    assert_eq!(w.settings().await["require_2fa"], true);
}

#[tokio::test]
async fn the_lockout_guard_reads_live_settings() {
    let w = World::new().await;
    // The owner signed in without a second factor cannot require one, even
    // by claiming 2FA is already on.
    let alice_no_2fa = w.person("alice@x.io", false).await;
    let r = w
        .call(
            "POST",
            "/teams/t1/changes",
            &alice_no_2fa,
            Some(settings_batch(true, true)),
        )
        .await;
    r.is(409, "stale_change");
    let r = w
        .call(
            "POST",
            "/teams/t1/changes",
            &alice_no_2fa,
            Some(settings_batch(false, true)),
        )
        .await;
    r.is(403, "two_factor_required");
    assert_eq!(w.settings().await["require_2fa"], false);
}

#[tokio::test]
async fn every_before_image_is_compared_with_live_state() {
    let w = World::new().await;
    let k = w.key(&[], &["*"]).await;
    let changes = [
        json!({"op": "change_roles", "email": "vera@x.io", "from": ["admin"], "to": ["developer"]}),
        json!({"op": "remove_member", "email": "vera@x.io", "roles": ["admin"]}),
        json!({"op": "rename_team", "from": "Not the name", "to": "New"}),
        json!({"op": "transfer_ownership", "from": "adam@x.io", "to": "vera@x.io"}),
    ];
    for change in changes {
        let r = w
            .call(
                "POST",
                "/teams/t1/changes",
                &k,
                Some(json!({"changes": [change]})),
            )
            .await;
        // The transfer is owner-only whatever it claims; the rest are stale.
        assert!(
            r.code() == "stale_change" || r.status == StatusCode::FORBIDDEN,
            "{:#}",
            r.body
        );
        assert_ne!(r.status, StatusCode::OK);
    }
    assert_eq!(
        w.state().await["members"]["vera@x.io"]["roles"],
        json!(["viewer"])
    );
}

// ------------------------------------------------------- the local owner

#[tokio::test]
async fn a_local_owner_token_opens_nothing_where_the_host_does_not_honour_it() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T12:00:00Z".parse().expect("time"),
    ));
    let local = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        clock.clone(),
        "http://test".into(),
    )
    .with_local_owner_tokens();
    let token = local
        .create_token(&Principal::LocalOwner, "bootstrap", None)
        .await
        .expect("minted where honoured")
        .secret;
    local
        .execute(
            &TeamId::parse("t1").expect("team"),
            &Principal::LocalOwner,
            &[teamform_core::Change::CreateTeam {
                display_name: "T".into(),
                owner: email("alice@x.io"),
            }],
            Some(0),
            &Default::default(),
        )
        .await
        .expect("team");
    // The same table behind a host that does not honour it (Lambda, or
    // serve over a shared table): 401 everywhere.
    let shared = Arc::new(Service::new(
        store,
        Arc::new(Catalog::standard()),
        clock,
        "http://test".into(),
    ));
    let base = serve(shared.clone()).await;
    let http = reqwest::Client::new();
    for path in ["/me", "/teams/t1/state", "/me/teams"] {
        let r = http
            .get(format!("{base}{path}"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    assert!(
        shared
            .create_token(&Principal::LocalOwner, "again", None)
            .await
            .is_err(),
        "nor can it be minted there"
    );
}

// ------------------------------------------------- injection and secrets

#[tokio::test]
async fn header_injection_in_names_is_refused_on_every_path() {
    let w = World::new().await;
    let bob = w.person("bob@y.io", false).await;
    let injected = "X\r\nBcc: evil@evil.io";
    let r = w
        .call(
            "POST",
            "/teams",
            &bob,
            Some(json!({"team": "t2", "owner": "bob@y.io", "display_name": injected})),
        )
        .await;
    r.is(422, "invalid_text");
    let r = w
        .call(
            "POST",
            "/teams/t1/invitations",
            &w.alice,
            Some(json!({"email": "c@x.io", "name": injected, "roles": ["viewer"]})),
        )
        .await;
    r.is(422, "invalid_text");
    let r = w
        .call(
            "POST",
            "/teams/t1/changes",
            &w.alice,
            Some(json!({"changes": [{"op": "rename_team", "from": "t1", "to": injected}]})),
        )
        .await;
    r.is(422, "invalid_text");
    for bad in ["", "   ", "\u{202E}evil", &"x".repeat(201)] {
        let r = w
            .call(
                "POST",
                "/teams",
                &bob,
                Some(json!({"team": "t3", "owner": "bob@y.io", "display_name": bad})),
            )
            .await;
        r.is(422, "invalid_text");
    }
    let huge = "x".repeat(1024 * 1024);
    let r = w
        .call(
            "POST",
            "/teams",
            &bob,
            Some(json!({"team": "t3", "owner": "bob@y.io", "display_name": huge})),
        )
        .await;
    r.is(422, "invalid_text");
    let r = w
        .call(
            "PUT",
            "/teams/t1/roles/r",
            &w.alice,
            Some(json!({"description": "a\nb", "permissions": ["team.members.read"]})),
        )
        .await;
    r.is(422, "invalid_text");
}

#[test]
fn header_injection_in_team_yaml_is_an_error_at_its_place() {
    let source = "version: 1\nteam: t1\ndisplay_name: \"X\\r\\nBcc: evil@evil.io\"\nowner: a@x.io\nmembers:\n  - email: b@x.io\n    name: \"B\\nTo: x@evil.io\"\n    roles: [viewer]\n";
    let err = teamform_core::TeamSpec::parse("team.yaml", source, &Catalog::standard())
        .expect_err("refused");
    let text = err.to_string();
    assert!(text.contains("team.yaml:3:"), "{text}");
    assert!(text.contains("team.yaml:7:"), "{text}");
    assert!(text.contains("control character"), "{text}");
}

#[tokio::test]
async fn personal_tokens_are_validated_as_api_keys_are() {
    let w = World::new().await;
    let past = w.svc.now() - Duration::days(1);
    let r = w
        .call(
            "POST",
            "/me/tokens",
            &w.vera,
            Some(json!({"name": "old", "expires_at": past.to_rfc3339()})),
        )
        .await;
    r.is(422, "validation_failed");
    let r = w
        .call(
            "POST",
            "/me/tokens",
            &w.vera,
            Some(json!({"name": "x".repeat(1024 * 1024)})),
        )
        .await;
    r.is(422, "validation_failed");
    let r = w
        .call(
            "POST",
            "/me/tokens",
            &w.vera,
            Some(json!({"name": "a\r\nb"})),
        )
        .await;
    r.is(422, "validation_failed");
    let r = w
        .call(
            "POST",
            "/teams/t1/api-keys",
            &w.alice,
            Some(json!({"name": "x".repeat(1024 * 1024), "roles": ["viewer"]})),
        )
        .await;
    r.is(422, "validation_failed");
}

// ------------------------------------------------------ the HTTP edge

#[tokio::test]
async fn an_anonymous_post_with_an_idempotency_key_costs_no_write() {
    let w = World::new().await;
    let before = w.counting.writes.load(Ordering::SeqCst);
    let r = w
        .send(
            "POST",
            "/teams/t1/invitations",
            None,
            Some(json!({"email": "z@x.io", "roles": ["viewer"]})),
            &[("idempotency-key", "k1")],
        )
        .await;
    r.is(401, "unauthenticated");
    let r = w
        .send(
            "POST",
            "/teams/t1/invitations",
            Some("tfk_forged"),
            Some(json!({"email": "z@x.io", "roles": ["viewer"]})),
            &[("idempotency-key", "k1")],
        )
        .await;
    r.is(401, "unauthenticated");
    assert_eq!(w.counting.writes.load(Ordering::SeqCst), before, "no write");
}

#[tokio::test]
async fn an_idempotency_key_is_scoped_to_the_principal_not_the_header_spelling() {
    let w = World::new().await;
    let body = json!({"email": "z@x.io", "roles": ["viewer"]});
    let first = w
        .send(
            "POST",
            "/teams/t1/invitations",
            None,
            Some(body.clone()),
            &[
                ("idempotency-key", "same"),
                ("authorization", &format!("Bearer {}", w.alice)),
            ],
        )
        .await;
    first.ok();
    let again = w
        .send(
            "POST",
            "/teams/t1/invitations",
            None,
            Some(body.clone()),
            &[
                ("idempotency-key", "same"),
                ("authorization", &format!("bearer {}", w.alice)),
            ],
        )
        .await;
    again.ok();
    assert_eq!(first.body, again.body, "a replay, not a second invitation");
    // Another principal's same key is its own.
    let adam = w
        .send(
            "POST",
            "/teams/t1/invitations",
            None,
            Some(json!({"email": "y@x.io", "roles": ["viewer"]})),
            &[
                ("idempotency-key", "same"),
                ("authorization", &format!("Bearer {}", w.adam)),
            ],
        )
        .await;
    adam.ok();
}

#[tokio::test]
async fn a_lapsed_idempotency_lease_frees_its_key() {
    let w = World::new().await;
    // A claim left running by a process that died (written as it would be).
    let pk = idempotency::claim_pk("user:alice@x.io", "crashed");
    let body = json!({"email": "z@x.io", "roles": ["viewer"]});
    let fingerprint =
        idempotency::fingerprint("/teams/t1/invitations", "", body.to_string().as_bytes());
    let now = w.svc.now().timestamp();
    w.store
        .transact(vec![teamform_functions::store::Write::Put {
            item: teamform_functions::store::Item::new(pk, "IDEMP")
                .with("type", "idempotency")
                .with("fingerprint", fingerprint)
                .with("state", "running")
                .with("version", 1)
                .with("lease_until", now + 30)
                .with("expires_at", now + 86_400),
            condition: teamform_functions::store::Condition::None,
        }])
        .await
        .expect("write");
    let headers = [("idempotency-key", "crashed")];
    let busy = w
        .send(
            "POST",
            "/teams/t1/invitations",
            Some(&w.alice),
            Some(body.clone()),
            &headers,
        )
        .await;
    busy.is(409, "idempotency_key_in_use");
    w.clock.advance(Duration::seconds(31));
    let after = w
        .send(
            "POST",
            "/teams/t1/invitations",
            Some(&w.alice),
            Some(body),
            &headers,
        )
        .await;
    after.ok();
}

#[tokio::test]
async fn a_panicking_handler_releases_its_idempotency_key() {
    use axum::routing::post;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("store"));
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T12:00:00Z".parse().expect("time"),
    ));
    let svc = Arc::new(
        Service::new(
            store.clone(),
            Arc::new(Catalog::standard()),
            clock,
            "http://t".into(),
        )
        .with_local_owner_tokens(),
    );
    let token = svc
        .create_token(&Principal::LocalOwner, "t", None)
        .await
        .expect("token")
        .secret;
    let state = AppState::new(svc, Anonymous::Refused);
    let router = axum::Router::new()
        .route(
            "/boom",
            post(|| async {
                if true {
                    panic!("a bug");
                }
                "never"
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let http = reqwest::Client::new();
    let post_once = || {
        http.post(format!("http://{addr}/boom"))
            .bearer_auth(&token)
            .header("idempotency-key", "p1")
            .body("{}")
            .send()
    };
    assert_eq!(post_once().await.expect("answer").status(), 500);
    // The release runs as the panicked request is dropped; give it a moment.
    for _ in 0..50 {
        let pk = idempotency::claim_pk("local-owner", "p1");
        if store.get(&pk, "IDEMP").await.is_ok_and(|i| i.is_none()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let retry = post_once().await.expect("answer");
    assert_eq!(retry.status(), 500, "the retry ran again rather than 409");
}

#[tokio::test]
async fn the_body_limit_is_the_documented_one() {
    let w = World::new().await;
    // 3 MB of changes: under the 6 MiB limit, so it is read and judged.
    let filler: Vec<Value> = (0..30_000)
        .map(|i| json!({"op": "invite", "email": format!("p{i:06}@x.io"), "roles": ["viewer"], "name": "x".repeat(40)}))
        .collect();
    let body = json!({"changes": filler});
    let size = body.to_string().len();
    assert!(size > 3_000_000 && size < BODY_LIMIT, "{size}");
    let r = w
        .call("POST", "/teams/t1/changes", &w.alice, Some(body))
        .await;
    assert_ne!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:#}", r.body);
    // Over the limit: 413, naming the limit that applied.
    let huge = json!({"changes": [], "pad": "x".repeat(BODY_LIMIT)});
    let r = w
        .call("POST", "/teams/t1/changes", &w.alice, Some(huge))
        .await;
    r.is(413, "body_too_large");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains(&BODY_LIMIT.to_string()),
        "{:#}",
        r.body
    );
}

#[tokio::test]
async fn if_match_holds_on_invitation_resend_and_revoke() {
    let w = World::new().await;
    let made = w
        .call(
            "POST",
            "/teams/t1/invitations",
            &w.alice,
            Some(json!({"email": "z@x.io", "roles": ["viewer"]})),
        )
        .await;
    made.ok();
    let stale = [("if-match", "\"1\"")];
    let r = w
        .send(
            "POST",
            "/teams/t1/invitations/z@x.io/resend",
            Some(&w.alice),
            None,
            &stale,
        )
        .await;
    r.is(412, "version_conflict");
    let r = w
        .send(
            "DELETE",
            "/teams/t1/invitations/z@x.io",
            Some(&w.alice),
            None,
            &stale,
        )
        .await;
    r.is(412, "version_conflict");
    let fresh = made.etag.expect("etag");
    let r = w
        .send(
            "POST",
            "/teams/t1/invitations/z@x.io/resend",
            Some(&w.alice),
            None,
            &[("if-match", fresh.as_str())],
        )
        .await;
    r.ok();
}

// ------------------------------------------------ GitOps credentials

#[tokio::test]
async fn a_pipeline_key_applies_a_whole_team_yaml_but_never_transfers_ownership() {
    let w = World::new().await;
    let k = w.key(&[], &["*"]).await;
    let state = w.state().await;
    let settings = &state["settings"];
    let r = w
        .call(
            "POST",
            "/teams/t1/changes",
            &k,
            Some(json!({"changes": [
                {"op": "create_role", "name": "release-manager", "role": {"permissions": ["apps.read", "apps.config.write"]}},
                {"op": "update_settings", "from": settings, "to": {"require_2fa": true, "invitation_ttl_days": 15}},
                {"op": "invite", "email": "billy@x.io", "roles": ["billing"]},
                {"op": "change_roles", "email": "vera@x.io", "from": ["viewer"], "to": ["release-manager"]}
            ]})),
        )
        .await;
    r.ok();
    let r = w
        .call(
            "POST",
            "/teams/t1/changes",
            &k,
            Some(json!({"changes": [{"op": "transfer_ownership", "from": "alice@x.io", "to": "adam@x.io"}]})),
        )
        .await;
    r.is(403, "forbidden");
    // An admin's `*` is admin's permissions, no more.
    let adam = w.person("adam@x.io", true).await;
    let r = w
        .call(
            "POST",
            "/teams/t1/api-keys",
            &adam,
            Some(json!({"name": "adm", "permissions": ["*"]})),
        )
        .await;
    r.ok();
    let perms = r.body["permissions"].as_array().expect("permissions");
    assert!(
        !perms
            .iter()
            .any(|p| p == "team.security.manage" || p == "billing.manage")
    );
    assert!(perms.iter().any(|p| p == "team.members.invite"));
}
