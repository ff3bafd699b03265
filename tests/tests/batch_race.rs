//! Writers and readers racing a batch larger than one transaction, on the
//! embedded store (3,000 invitations) and on DynamoDB (moto, 200: moto
//! copies the whole table on every transaction; 200 still take several
//! parts, the same path). See `teamform_tests::batch_race`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::path::Path;
use std::sync::Arc;

use teamform_functions::store::Store;
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_functions::store::sqlite::SqliteStore;
use teamform_tests::{ENDPOINT_VAR, SerialTransactions, batch_race, unique_table_name};

const SQLITE_BATCH: usize = 3_000;
const MOTO_BATCH: usize = 200;

/// Two connections to one SQLite file: two processes.
fn sqlite_pair(file: &Path) -> (Arc<dyn Store>, Arc<dyn Store>) {
    (
        Arc::new(SqliteStore::open(file).unwrap()),
        Arc::new(SqliteStore::open(file).unwrap()),
    )
}

/// Two clients of one moto table. Transactions go one at a time through a
/// gate both share (moto's transactions are not atomic under concurrent
/// requests; DynamoDB's are, see `SerialTransactions`); reads stay
/// concurrent.
async fn moto_pair(hint: &str) -> (Arc<dyn Store>, Arc<dyn Store>) {
    assert!(
        std::env::var(ENDPOINT_VAR).is_ok_and(|e| !e.trim().is_empty()),
        "{ENDPOINT_VAR} is not set: these tests need moto; run scripts/test.sh, which starts moto"
    );
    let table = unique_table_name(hint);
    let store = DynamoStore::from_env(table).await;
    store.create_table_if_missing().await.unwrap();
    let shared = SerialTransactions::wrap(Arc::new(store));
    (shared.clone(), shared)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_racing_a_batch_on_sqlite_see_it_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let (mine, theirs) = sqlite_pair(&dir.path().join("s.db"));
    batch_race::readers_see_a_batch_whole_or_not_at_all(mine, theirs, SQLITE_BATCH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_a_batch_on_sqlite_never_write_between_its_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (mine, theirs) = sqlite_pair(&dir.path().join("s.db"));
    batch_race::writers_never_write_between_a_batchs_parts(mine, theirs, SQLITE_BATCH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_racing_a_batch_on_dynamodb_see_it_whole_or_not_at_all() {
    let (mine, theirs) = moto_pair("batch-race-read").await;
    batch_race::readers_see_a_batch_whole_or_not_at_all(mine, theirs, MOTO_BATCH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_a_batch_on_dynamodb_never_write_between_its_parts() {
    let (mine, theirs) = moto_pair("batch-race-write").await;
    batch_race::writers_never_write_between_a_batchs_parts(mine, theirs, MOTO_BATCH).await;
}
