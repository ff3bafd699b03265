//! `teamform serve` as a process over SQLite: what it logs (where mail went,
//! internal errors with their cause, never a link secret), where its mail
//! goes, that mail a killed run committed is written when it starts again,
//! and whose token it mints.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Condition, Item, Store, Write};
use teamform_tests::cli::{Served, serve};

async fn call(
    method: &str,
    served: &Served,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let url = format!("{}{path}", served.url);
    let mut req = match method {
        "POST" => http.post(url),
        _ => http.get(url),
    }
    .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.expect("request");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

/// The `.eml` files of an outbox directory, with their text.
fn emails(outbox: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("eml");
            (p.display().to_string(), text)
        })
        .collect()
}

/// Creates team acme owned by alice and invites bob, with `token`.
async fn invite_bob(served: &Served, token: &str) {
    let (status, body) = call(
        "POST",
        served,
        "/teams",
        token,
        Some(json!({"team": "acme", "owner": "alice@acme.com"})),
    )
    .await;
    assert_eq!(status, 201, "{body:#}");
    let (status, body) = call(
        "POST",
        served,
        "/teams/acme/invitations",
        token,
        Some(json!({"email": "bob@acme.com", "roles": ["viewer"]})),
    )
    .await;
    assert_eq!(status, 201, "{body:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_logs_where_an_email_went_but_never_its_link_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = serve(dir.path(), &[]);
    invite_bob(&served, &served.token).await;

    let output = served.output_containing("bob@acme.com");
    let outbox = dir.path().join(".teamform/outbox");
    let mails = emails(&outbox);
    assert_eq!(mails.len(), 1, "{mails:?}");
    let (path, text) = &mails[0];
    assert!(text.contains("token=tfi_"), "the file has the link: {text}");
    let name = Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    assert!(
        output.contains(&name) && output.contains("bob@acme.com"),
        "serve says where the email went and to whom:\n{output}"
    );
    for secret in ["tfi_", "tft_"] {
        assert!(
            !output.contains(secret),
            "a link secret in serve's output:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_internal_error_reaches_serve_stderr_with_its_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join(".teamform/state.db");
    std::fs::create_dir_all(dir.path().join(".teamform")).expect("dir");
    {
        // A team whose META item is not one: reading the team must fail.
        let store = SqliteStore::open(&state).expect("store");
        let item = Item::new("TEAM#broken", "META")
            .with("type", "meta")
            .with("version", "not a number");
        store
            .transact(vec![Write::Put {
                item,
                condition: Condition::None,
            }])
            .await
            .expect("written");
    }
    let served = serve(dir.path(), &[]);
    let (status, body) = call("GET", &served, "/teams/broken/state", &served.token, None).await;
    assert_eq!(status, 500, "{body:#}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("logged"),
        "{body:#}"
    );
    let output = served.output_containing("internal error");
    let line = output
        .lines()
        .find(|l| l.contains("internal error"))
        .unwrap_or_else(|| panic!("no log line of the internal error:\n{output}"));
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("/teams/broken/state"),
        "the line names the request: {line}"
    );
    assert!(
        line.contains("cause=") && line.contains("META"),
        "the line carries the cause: {line}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_over_a_sqlite_file_writes_mail_beside_that_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("elsewhere")).expect("dir");
    let served = serve(
        dir.path(),
        &["--state", "state/a.db", "--store", "sqlite:elsewhere/b.db"],
    );
    invite_bob(&served, &served.token).await;
    served.output_containing("bob@acme.com");
    assert_eq!(
        emails(&dir.path().join("elsewhere/outbox")).len(),
        1,
        "mail follows the store file"
    );
    assert!(
        !dir.path().join("state/outbox").exists(),
        "nothing beside --state, which is not the store"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_with_owner_mints_a_token_acting_as_that_person_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let local_owner = {
        let first = serve(dir.path(), &[]);
        assert!(first.token.starts_with("tfp_"), "{}", first.output());
        first.token.clone()
    };

    let served = serve(dir.path(), &["--owner", "carol@carol.example"]);
    assert!(
        served
            .output()
            .contains("bootstrap token for carol@carol.example (shown once, stored hashed): tfp_"),
        "{}",
        served.output()
    );
    let carol = served.token.clone();
    let (status, me) = call("GET", &served, "/me", &carol, None).await;
    assert_eq!(status, 200, "{me:#}");
    assert_eq!(me["kind"], "person");
    assert_eq!(me["email"], "carol@carol.example");
    let (status, body) = call(
        "POST",
        &served,
        "/teams",
        &carol,
        Some(json!({"team": "carolco", "owner": "carol@carol.example"})),
    )
    .await;
    assert_eq!(status, 201, "a person creates a team they own: {body:#}");
    let (status, body) = call(
        "POST",
        &served,
        "/teams",
        &carol,
        Some(json!({"team": "daveco", "owner": "dave@dave.example"})),
    )
    .await;
    assert_eq!(status, 403, "nor for someone else: {body:#}");

    let (status, body) = call("GET", &served, "/me", &local_owner, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "with --owner, the local owner's token opens nothing"
    );
    drop(served);

    let again = serve(dir.path(), &["--owner", "carol@carol.example"]);
    assert!(
        again.token.is_empty(),
        "carol's token is shown once only:\n{}",
        again.output()
    );
    let (status, _) = call("GET", &again, "/me", &carol, None).await;
    assert_eq!(status, 200);
}

/// The people of team acme with a pending invitation, from the store.
async fn invited(store: &dyn Store) -> Vec<String> {
    let mut people: Vec<String> = store
        .query_all("TEAM#acme", "INVITE#")
        .await
        .expect("invitations")
        .iter()
        .filter_map(|i| i.str("email").map(str::to_lowercase))
        .collect();
    people.sort();
    people
}

/// Asserts that every invited person has exactly one email in `outbox`,
/// that there is no other email, and that no outbox item is left.
async fn each_invitation_has_one_email(store: &dyn Store, outbox: &Path) {
    let people = invited(store).await;
    assert!(!people.is_empty(), "somebody was invited");
    let mails = emails(outbox);
    for person in &people {
        let to_them: Vec<_> = mails
            .iter()
            .filter(|(_, text)| text.contains(&format!("\r\nTo: {person}\r\n")))
            .collect();
        assert_eq!(to_them.len(), 1, "one email to {person}: {to_them:?}");
        assert!(to_them[0].1.contains("token=tfi_"), "{to_them:?}");
    }
    assert_eq!(mails.len(), people.len(), "no email beyond the invitations");
    let left = store.scan("OUTBOX#").await.expect("scan");
    assert!(left.is_empty(), "outbox items left: {left:?}");
}

fn invite(email: &str) -> Change {
    Change::Invite {
        email: Email::parse(email).expect("email"),
        name: None,
        roles: [RoleName::parse("viewer").expect("role")].into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn emails_a_killed_run_committed_are_written_when_serve_starts_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join(".teamform/state.db");
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&state).expect("store"));
    {
        // What a run killed right after its commits leaves: outbox items
        // and no files (this service delivers nothing).
        let svc = Service::new(
            store.clone(),
            Arc::new(Catalog::standard()),
            Arc::new(SystemClock),
            "http://localhost".into(),
        );
        let mut changes = vec![Change::CreateTeam {
            display_name: "Acme".into(),
            owner: Email::parse("alice@acme.com").expect("email"),
        }];
        changes.extend((0..5).map(|i| invite(&format!("p{i}@acme.com"))));
        let team = TeamId::parse("acme").expect("id");
        svc.execute(
            &team,
            &Principal::LocalOwner,
            &changes,
            Some(0),
            &BatchOptions::default(),
        )
        .await
        .expect("applied");
        assert_eq!(svc.outbox(&team).await.expect("outbox").len(), 5);
    }
    let outbox = dir.path().join(".teamform/outbox");
    assert!(emails(&outbox).is_empty());

    let served = serve(dir.path(), &[]);
    each_invitation_has_one_email(store.as_ref(), &outbox).await;
    assert!(
        served
            .output()
            .contains("delivered the emails an earlier run left"),
        "{}",
        served.output()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_killed_while_mailing_loses_no_email_when_it_starts_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = serve(dir.path(), &[]);
    let token = served.token.clone();
    let (status, body) = call(
        "POST",
        &served,
        "/teams",
        &token,
        Some(json!({"team": "acme", "owner": "alice@acme.com"})),
    )
    .await;
    assert_eq!(status, 201, "{body:#}");
    // One batch committed in many parts, each mailed after its commit: a
    // kill lands between a commit and the last of its files, or after all.
    let changes: Vec<Change> = (0..300)
        .map(|i| invite(&format!("p{i}@acme.com")))
        .collect();
    let url = format!("{}/teams/acme/changes", served.url);
    let batch = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(&json!({ "changes": changes }))
            .send()
            .await;
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !served.output().contains("email written") && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    drop(served); // SIGKILL
    let _ = batch.await;

    let state = dir.path().join(".teamform/state.db");
    let store = SqliteStore::open(&state).expect("store");
    let pending = store.scan("OUTBOX#").await.expect("scan").len();
    eprintln!("outbox items pending after the kill: {pending}");
    let _again = serve(dir.path(), &[]);
    each_invitation_has_one_email(&store, &dir.path().join(".teamform/outbox")).await;
}
