//! Fifty concurrent writers on one team, against the embedded store and
//! against DynamoDB (moto): one owner, one entry per email, an audit item
//! for every accepted write.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;

use teamform_core::Catalog;
use teamform_functions::clock::SystemClock;
use teamform_functions::service::Service;
use teamform_functions::store::Store;
use teamform_functions::store::sqlite::SqliteStore;
use teamform_tests::{SerialTransactions, moto_store, race};

fn service(store: Arc<dyn Store>) -> Arc<Service> {
    Arc::new(Service::new(
        store,
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "http://test".into(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_writers_on_sqlite_keep_the_invariants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db")).expect("open");
    race::fifty_writers_keep_the_invariants(service(Arc::new(store)), "acme").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn fifty_writers_on_dynamodb_keep_the_invariants() {
    // moto evaluates a transaction's conditions without a lock, unlike
    // DynamoDB; one transaction at a time gives it DynamoDB's semantics.
    // Reads, and the read-modify-write races between them, stay concurrent.
    let store: Arc<dyn Store> = moto_store("race").await;
    race::fifty_writers_keep_the_invariants(service(SerialTransactions::wrap(store)), "acme").await;
}
