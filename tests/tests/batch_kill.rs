//! `teamform serve` killed (SIGKILL) in the middle of a batch of
//! invitations, then started again, on SQLite (3,000 invitations) and on
//! DynamoDB (moto, 200: moto copies the whole table on every transaction,
//! so 3,000 would take it most of an hour; 200 still take nine parts, the
//! same path). The next access finishes the batch (a read sees every
//! invitation, never part of them), the retry with the same
//! Idempotency-Key replays the completed result instead of running again,
//! and there is exactly one audit item per change and one email per
//! invitation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use teamform_functions::store::Store;
use teamform_functions::store::codec;
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_functions::store::sqlite::SqliteStore;
use teamform_tests::cli::{Served, serve};
use teamform_tests::{ENDPOINT_VAR, unique_table_name};

/// Invitations in the batch on SQLite and on moto (see above).
const SQLITE_BATCH: usize = 3_000;
const MOTO_BATCH: usize = 200;
const KEY: &str = "batch-kill-1";

async fn send(
    method: &str,
    url: &str,
    token: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let http = reqwest::Client::new();
    let mut req = match method {
        "POST" => http.post(url),
        _ => http.get(url),
    }
    .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(body);
    }
    if let Some(key) = key {
        req = req.header("Idempotency-Key", key);
    }
    let res = req.send().await.expect("request");
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, headers, res.json().await.unwrap_or(Value::Null))
}

fn batch_body(n: usize) -> Value {
    let changes: Vec<Value> = (0..n)
        .map(|i| json!({"op": "invite", "email": format!("p{i:05}@acme.com"), "roles": ["viewer"]}))
        .collect();
    json!({ "changes": changes })
}

/// `META` of team acme, raw: its version and whether a batch is in progress.
async fn meta(store: &dyn Store) -> Option<(u64, bool)> {
    store
        .get("TEAM#acme", codec::META)
        .await
        .expect("META")
        .map(|m| (m.version(), m.attrs.contains_key("applying")))
}

async fn count(store: &dyn Store, prefix: &str) -> usize {
    store
        .query_all("TEAM#acme", prefix)
        .await
        .expect("query")
        .len()
}

fn emails(outbox: &Path) -> usize {
    std::fs::read_dir(outbox).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    })
}

/// Creates team acme owned by alice, starts the batch with an
/// Idempotency-Key, and kills serve once some of its parts are in (the
/// store shows the batch in progress, past its first part). Returns the
/// version the team had before the batch.
async fn kill_mid_batch(served: Served, store: &dyn Store, n: usize) -> u64 {
    let token = served.token.clone();
    let (status, _, body) = send(
        "POST",
        &format!("{}/teams", served.url),
        &token,
        Some(&json!({"team": "acme", "owner": "alice@acme.com"})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body:#}");
    let (base, _) = meta(store).await.expect("the team");
    let url = format!("{}/teams/acme/changes", served.url);
    // Its answer never comes: the server dies first.
    let batch = tokio::spawn(async move {
        let _ = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .header("Idempotency-Key", KEY)
            .json(&batch_body(n))
            .send()
            .await;
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        match meta(store).await {
            Some((version, true)) if version >= base + 2 => break,
            Some((version, false)) if version > base => {
                panic!("the batch completed before the kill (version {version})")
            }
            _ => {}
        }
        assert!(Instant::now() < deadline, "the batch never started");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    drop(served); // SIGKILL
    let _ = batch.await;
    let (version, applying) = meta(store).await.expect("the team");
    assert!(applying, "killed mid-batch, at version {version}");
    let half = count(store, codec::INVITE).await;
    assert!(
        0 < half && half < n,
        "part of the batch is written underneath: {half}"
    );
    eprintln!("killed with {half} of {n} invitations written");
    base
}

/// What a restarted serve must show after `kill_mid_batch`. `retry_first`:
/// the retried request is the first access (else a read is).
async fn restarted_serve_completes_the_batch(
    served: Served,
    store: &dyn Store,
    dir: &Path,
    token: &str,
    n: usize,
    retry_first: bool,
) {
    let changes = format!("{}/teams/acme/changes", served.url);
    let state = format!("{}/teams/acme/state", served.url);
    let body = batch_body(n);
    let retry = || send("POST", &changes, token, Some(&body), Some(KEY));
    let read = || send("GET", &state, token, None, None);
    let (first_retry, first_read) = if retry_first {
        let r = retry().await;
        (r, read().await)
    } else {
        let r = read().await;
        (retry().await, r)
    };
    let (status, headers, whole) = first_read;
    assert_eq!(status, 200, "{whole:#}");
    let people = whole["members"].as_object().map_or(0, |m| m.len())
        + whole["invitations"].as_object().map_or(0, |m| m.len());
    assert_eq!(people, 1 + n, "the owner and every invitation");
    let etag = headers["etag"].to_str().unwrap().to_owned();

    let (status, headers, body) = first_retry;
    assert_eq!(
        status, 200,
        "the retry answers the completed batch: {body:#}"
    );
    assert_eq!(
        headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true"),
        "replayed, not run again: {body:#}"
    );
    assert_eq!(body["applied"], n);
    assert_eq!(headers["etag"].to_str().unwrap(), etag, "{body:#}");

    assert_eq!(meta(store).await.map(|m| m.1), Some(false));
    assert_eq!(count(store, codec::INTENT).await, 0, "the intent is gone");
    assert_eq!(count(store, codec::INVITE).await, n);
    assert_eq!(
        count(store, codec::AUDIT).await,
        1 + n,
        "one audit item per change, each once"
    );
    // Every email was written once to the local outbox, and its outbox
    // item deleted.
    let outbox = dir.join(".teamform/outbox");
    let deadline = Instant::now() + Duration::from_secs(60);
    while emails(&outbox) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(emails(&outbox), n, "one email per invitation");
    assert_eq!(count(store, codec::OUTBOX).await, 0);
    drop(served);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_killed_mid_batch_on_sqlite_completes_it_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = serve(dir.path(), &[]);
    let token = served.token.clone();
    let store: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&dir.path().join(".teamform/state.db")).expect("store"));
    kill_mid_batch(served, store.as_ref(), SQLITE_BATCH).await;
    let again = serve(dir.path(), &[]);
    restarted_serve_completes_the_batch(
        again,
        store.as_ref(),
        dir.path(),
        &token,
        SQLITE_BATCH,
        true,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_killed_mid_batch_on_dynamodb_completes_it_on_restart() {
    assert!(
        std::env::var_os(ENDPOINT_VAR).is_some(),
        "{ENDPOINT_VAR} is not set: these tests need moto; run scripts/test.sh, which starts moto"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique_table_name("batch-kill");
    let flag = format!("dynamodb:{table}");
    let args = ["--store", flag.as_str(), "--owner", "alice@acme.com"];
    let served = serve(dir.path(), &args);
    let token = served.token.clone();
    let store = DynamoStore::from_env(table.clone()).await;
    kill_mid_batch(served, &store, MOTO_BATCH).await;
    let again = serve(dir.path(), &args);
    restarted_serve_completes_the_batch(again, &store, dir.path(), &token, MOTO_BATCH, false).await;
}
