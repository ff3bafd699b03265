//! The `Store` conformance cases against `DynamoStore` on moto, plus what
//! only DynamoDB has: table setup and reading items the codec did not
//! write. Needs `AWS_ENDPOINT_URL_DYNAMODB` (scripts/test.sh starts moto and
//! sets it); without it every test here fails rather than skips.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, TimeToLiveStatus};
use teamform_functions::store::{Store, StoreError, conformance};
use teamform_tests::{SerialTransactions, moto_store};

/// Every conformance case on one table. Transactions go to moto one at a
/// time: moto's own are not atomic under concurrent requests (see
/// `SerialTransactions`), so the racing cases check our decoding of
/// condition failures and our retry contract, not moto's locking.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_run_all() {
    let store = SerialTransactions::wrap(moto_store("conformance").await);
    conformance::run_all(store, "dynamo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_table_is_idempotent_and_enables_ttl() {
    let store = moto_store("setup").await;
    store
        .create_table_if_missing()
        .await
        .expect("second create is fine");

    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .expect("describe TTL");
    let description = ttl.time_to_live_description().expect("TTL description");
    assert_eq!(description.attribute_name(), Some("expires_at"));
    assert!(
        matches!(
            description.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ),
        "{description:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn foreign_attribute_types_read_as_malformed() {
    let store = moto_store("foreign").await;
    let foreign = [
        (
            "string-set",
            AttributeValue::Ss(vec!["a".into(), "b".into()]),
        ),
        ("fraction", AttributeValue::N("1.5".into())),
        (
            "huge",
            AttributeValue::N("123456789012345678901234567890".into()),
        ),
    ];
    for (sk, value) in foreign {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("foreign".into())),
            ("sk".to_owned(), AttributeValue::S(sk.into())),
            ("x".to_owned(), value),
        ]);
        store
            .client()
            .put_item()
            .table_name(store.table())
            .set_item(Some(item))
            .send()
            .await
            .expect("raw put");
        let read = store.get("foreign", sk).await;
        assert!(
            matches!(read, Err(StoreError::Malformed(_))),
            "{sk}: {read:?}"
        );
    }
    // A query that meets one never returns a short page instead.
    let page = store.query_all("foreign", "").await;
    assert!(matches!(page, Err(StoreError::Malformed(_))), "{page:?}");
}
