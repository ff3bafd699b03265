//! The `Store` conformance cases against `SqliteStore`: each case on its own
//! database file, `run_all` on one shared in-memory database, and data
//! surviving a close and reopen. Never skips: every case runs every time.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;

use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Condition, Item, Store, Write, conformance};

/// A store on a fresh database file; keep the directory alive with it.
fn file_store() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().expect("temp dir");
    // A missing parent directory must be created by `open`.
    let store = SqliteStore::open(&dir.path().join("nested/dir/store.db")).expect("open store");
    (dir, Arc::new(store))
}

macro_rules! conformance_cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let (_dir, store) = file_store();
                conformance::$case(store, concat!("sqlite/", stringify!($case))).await;
            }
        )*

        /// Every case in `conformance::CASES` has a test above.
        #[test]
        fn every_case_has_a_test() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            assert_eq!(listed, conformance::CASES);
        }
    };
}

conformance_cases!(
    round_trip_every_type,
    missing_item_is_none,
    put_not_exists_twice,
    version_equals,
    failing_condition_applies_nothing,
    check_writes,
    delete_exists_on_missing_fails,
    query_by_prefix,
    scan_by_prefix,
    pagination,
    too_many_writes,
    duplicate_key,
    hundred_puts,
    invalid_attributes_rejected,
    version_race_has_one_winner,
    concurrent_increments,
    get_many_in_order,
    large_items_round_trip,
);

/// All cases sharing one backend, as the DynamoDB suite runs them: proves
/// the cases keep to their own prefixes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn run_all_in_memory() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().expect("in-memory store"));
    conformance::run_all(store, "shared").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_survives_close_and_reopen() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let item = Item::new("team#1", "member#alice")
        .with("role", "owner")
        .with("version", 7)
        .with("tags", serde_json::json!(["a", {"b": null}]));

    {
        let store = SqliteStore::open(&path).expect("open");
        store
            .transact(vec![
                Write::Put {
                    item: item.clone(),
                    condition: Condition::NotExists,
                },
                Write::Put {
                    item: Item::new("team#1", "member#bob"),
                    condition: Condition::None,
                },
            ])
            .await
            .expect("write");
        store
            .transact(vec![Write::Delete {
                pk: "team#1".into(),
                sk: "member#bob".into(),
                condition: Condition::Exists,
            }])
            .await
            .expect("delete");
    }

    let reopened = SqliteStore::open(&path).expect("reopen");
    assert_eq!(
        reopened.get("team#1", "member#alice").await.expect("get"),
        Some(item.clone())
    );
    assert_eq!(
        reopened.get("team#1", "member#bob").await.expect("get"),
        None
    );
    assert_eq!(
        reopened
            .query_all("team#1", "member#")
            .await
            .expect("query"),
        vec![item]
    );
    // Conditions see the reopened data too.
    reopened
        .transact(vec![Write::Check {
            pk: "team#1".into(),
            sk: "member#alice".into(),
            condition: Condition::VersionEquals(7),
        }])
        .await
        .expect("version survives");
}

/// Two stores on one file (as two processes would be) see each other's
/// writes and keep conditions atomic across them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_share_one_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    let a = SqliteStore::open(&path).expect("open a");
    let b = SqliteStore::open(&path).expect("open b");
    let item = Item::new("p", "s").with("version", 1);
    a.transact(vec![Write::Put {
        item: item.clone(),
        condition: Condition::NotExists,
    }])
    .await
    .expect("put via a");
    assert_eq!(
        b.get("p", "s").await.expect("get via b"),
        Some(item.clone())
    );
    let again = b
        .transact(vec![Write::Put {
            item,
            condition: Condition::NotExists,
        }])
        .await;
    assert!(
        matches!(
            again,
            Err(teamform_functions::store::StoreError::ConditionFailed { index: 0, .. })
        ),
        "{again:?}"
    );
}
