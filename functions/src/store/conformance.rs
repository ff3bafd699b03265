//! The `Store` contract as executable cases, run against every backend (the
//! SQLite suite in `functions/tests`, the DynamoDB suite against moto in
//! `tests/tests`), so the backends cannot drift apart.
//!
//! Each case takes the store and a key prefix of its own, so many cases can
//! share one backend, and panics when the store breaks the contract. This
//! module is test support: it must never be called from service code.
//! Its cases panic on purpose when a store breaks the contract, hence the
//! one exception to the workspace's `unwrap`/`expect` denial.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;

use super::{Condition, Item, MAX_TRANSACT_WRITES, PageRequest, Store, StoreError, Write};

/// Tasks racing in the concurrency cases.
const RACERS: usize = 50;

/// Every case with its name, in the order `run_all` runs them.
pub const CASES: &[&str] = &[
    "round_trip_every_type",
    "missing_item_is_none",
    "put_not_exists_twice",
    "version_equals",
    "failing_condition_applies_nothing",
    "check_writes",
    "delete_exists_on_missing_fails",
    "query_by_prefix",
    "scan_by_prefix",
    "pagination",
    "too_many_writes",
    "duplicate_key",
    "hundred_puts",
    "invalid_attributes_rejected",
    "version_race_has_one_winner",
    "concurrent_increments",
    "get_many_in_order",
    "large_items_round_trip",
];

/// Runs every case, each under `{prefix}/{case}`.
pub async fn run_all(store: Arc<dyn Store>, prefix: &str) {
    for &case in CASES {
        run(case, Arc::clone(&store), &format!("{prefix}/{case}")).await;
    }
}

/// Runs one case by name (see `CASES`).
pub async fn run(case: &str, store: Arc<dyn Store>, prefix: &str) {
    eprintln!("conformance: {case} under {prefix}");
    match case {
        "round_trip_every_type" => round_trip_every_type(store, prefix).await,
        "missing_item_is_none" => missing_item_is_none(store, prefix).await,
        "put_not_exists_twice" => put_not_exists_twice(store, prefix).await,
        "version_equals" => version_equals(store, prefix).await,
        "failing_condition_applies_nothing" => {
            failing_condition_applies_nothing(store, prefix).await
        }
        "check_writes" => check_writes(store, prefix).await,
        "delete_exists_on_missing_fails" => delete_exists_on_missing_fails(store, prefix).await,
        "query_by_prefix" => query_by_prefix(store, prefix).await,
        "scan_by_prefix" => scan_by_prefix(store, prefix).await,
        "pagination" => pagination(store, prefix).await,
        "too_many_writes" => too_many_writes(store, prefix).await,
        "duplicate_key" => duplicate_key(store, prefix).await,
        "hundred_puts" => hundred_puts(store, prefix).await,
        "invalid_attributes_rejected" => invalid_attributes_rejected(store, prefix).await,
        "large_items_round_trip" => large_items_round_trip(store, prefix).await,
        "version_race_has_one_winner" => version_race_has_one_winner(store, prefix).await,
        "concurrent_increments" => concurrent_increments(store, prefix).await,
        "get_many_in_order" => get_many_in_order(store, prefix).await,
        other => panic!("no conformance case named {other:?}"),
    }
}

fn put(item: Item, condition: Condition) -> Write {
    Write::Put { item, condition }
}

fn delete(pk: &str, sk: &str, condition: Condition) -> Write {
    Write::Delete {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        condition,
    }
}

fn check(pk: &str, sk: &str, condition: Condition) -> Write {
    Write::Check {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        condition,
    }
}

/// Asserts `result` is `ConditionFailed` on write `index` at `pk`/`sk`.
#[track_caller]
fn assert_condition_failed(result: Result<(), StoreError>, index: usize, pk: &str, sk: &str) {
    match result {
        Err(StoreError::ConditionFailed {
            index: i,
            pk: p,
            sk: s,
        }) => {
            assert_eq!(
                (i, p.as_str(), s.as_str()),
                (index, pk, sk),
                "wrong failing write"
            );
        }
        other => panic!("expected ConditionFailed on write {index} ({pk} / {sk}), got {other:?}"),
    }
}

async fn must_get(store: &dyn Store, pk: &str, sk: &str) -> Option<Item> {
    store
        .get(pk, sk)
        .await
        .unwrap_or_else(|e| panic!("get {pk} / {sk}: {e}"))
}

async fn must_transact(store: &dyn Store, writes: Vec<Write>) {
    store
        .transact(writes)
        .await
        .unwrap_or_else(|e| panic!("transact: {e}"));
}

/// Every attribute type survives a write and a read, both by `get` and by
/// `query`, and an unconditional put replaces the whole item.
pub async fn round_trip_every_type(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/item");
    let Value::Object(attrs) = json!({
        "string": "plain",
        "empty_string": "",
        "unicode": "héllo wörld ✓ 🦀",
        "zero": 0,
        "negative": -42,
        "i64_min": i64::MIN,
        "i64_max": i64::MAX,
        "u64_max": u64::MAX,
        "yes": true,
        "no": false,
        "nothing": null,
        "list": [1, "two", false, null, [3, [4]], {"k": "v"}],
        "empty_list": [],
        "map": {"inner": {"deeper": [1, {"x": "y"}]}, "n": 7, "b": true, "z": null},
        "empty_map": {},
        "version": 3,
    }) else {
        unreachable!("json! object literal")
    };
    let item = Item {
        pk: pk.clone(),
        sk: "a".into(),
        attrs,
    };
    must_transact(&*store, vec![put(item.clone(), Condition::NotExists)]).await;

    assert_eq!(
        must_get(&*store, &pk, "a").await.as_ref(),
        Some(&item),
        "get round trip"
    );
    let page = store
        .query(&pk, "", PageRequest::default())
        .await
        .expect("query");
    assert_eq!(page.items, vec![item.clone()], "query round trip");
    assert_eq!(page.next, None);

    // A put replaces the item: attributes it no longer has are gone.
    let replaced = Item::new(&pk, "a").with("string", "new").with("version", 4);
    must_transact(
        &*store,
        vec![put(replaced.clone(), Condition::VersionEquals(3))],
    )
    .await;
    assert_eq!(must_get(&*store, &pk, "a").await, Some(replaced));
}

/// A missing item reads as `None`, and an empty query as an empty last page.
pub async fn missing_item_is_none(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/nothing");
    assert_eq!(must_get(&*store, &pk, "absent").await, None);
    let page = store
        .query(&pk, "", PageRequest::default())
        .await
        .expect("query");
    assert!(page.items.is_empty() && page.next.is_none(), "{page:?}");
}

/// `get_many` answers in the order asked, `None` for what is absent, a
/// repeated key twice, and more keys than one backend call takes (250).
pub async fn get_many_in_order(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/many");
    for part in 0..3 {
        let writes = (0..80)
            .map(|i| {
                put(
                    Item::new(&pk, format!("k{:03}", part * 80 + i)).with("n", part * 80 + i),
                    Condition::None,
                )
            })
            .collect();
        store.transact(writes).await.expect("write");
    }
    let mut keys: Vec<(String, String)> = (0..250)
        .rev()
        .map(|i| (pk.clone(), format!("k{i:03}")))
        .collect();
    keys.push((pk.clone(), "k007".into()));
    let got = store.get_many(&keys).await.expect("get_many");
    assert_eq!(got.len(), keys.len());
    for ((_, sk), item) in keys.iter().zip(&got) {
        let n: usize = sk[1..].parse().expect("index");
        match item {
            Some(item) if n < 240 => {
                assert_eq!(&item.sk, sk);
                assert_eq!(item.int("n"), Some(n as i64));
            }
            None if n >= 240 => {}
            other => panic!("{sk}: {other:?}"),
        }
    }
}

/// The second `NotExists` put fails, naming its own index, and takes the
/// other write of its transaction down with it.
pub async fn put_not_exists_twice(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/p");
    let first = Item::new(&pk, "x").with("n", 1);
    must_transact(&*store, vec![put(first.clone(), Condition::NotExists)]).await;

    let result = store
        .transact(vec![
            put(Item::new(&pk, "other"), Condition::NotExists),
            put(Item::new(&pk, "x").with("n", 2), Condition::NotExists),
        ])
        .await;
    assert_condition_failed(result, 1, &pk, "x");
    assert_eq!(
        must_get(&*store, &pk, "x").await,
        Some(first),
        "first put must stand"
    );
    assert_eq!(
        must_get(&*store, &pk, "other").await,
        None,
        "nothing of a failed transaction"
    );
}

/// `VersionEquals(n)` holds only on an existing item whose `version` is n.
pub async fn version_equals(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/v");
    must_transact(
        &*store,
        vec![put(
            Item::new(&pk, "doc").with("version", 1),
            Condition::NotExists,
        )],
    )
    .await;

    let v2 = Item::new(&pk, "doc")
        .with("version", 2)
        .with("body", "second");
    must_transact(&*store, vec![put(v2.clone(), Condition::VersionEquals(1))]).await;
    assert_eq!(must_get(&*store, &pk, "doc").await, Some(v2.clone()));

    // A stale version fails and changes nothing.
    let stale = store
        .transact(vec![put(
            Item::new(&pk, "doc").with("version", 2),
            Condition::VersionEquals(1),
        )])
        .await;
    assert_condition_failed(stale, 0, &pk, "doc");
    assert_eq!(must_get(&*store, &pk, "doc").await, Some(v2));

    // A missing item has no version, not version 0.
    let missing = store
        .transact(vec![put(
            Item::new(&pk, "ghost").with("version", 1),
            Condition::VersionEquals(0),
        )])
        .await;
    assert_condition_failed(missing, 0, &pk, "ghost");
    assert_eq!(must_get(&*store, &pk, "ghost").await, None);

    // Nor does an item without a `version` attribute.
    must_transact(
        &*store,
        vec![put(Item::new(&pk, "plain"), Condition::NotExists)],
    )
    .await;
    let unversioned = store
        .transact(vec![delete(&pk, "plain", Condition::VersionEquals(0))])
        .await;
    assert_condition_failed(unversioned, 0, &pk, "plain");

    // Deletes honour it too.
    let wrong = store
        .transact(vec![delete(&pk, "doc", Condition::VersionEquals(1))])
        .await;
    assert_condition_failed(wrong, 0, &pk, "doc");
    must_transact(
        &*store,
        vec![delete(&pk, "doc", Condition::VersionEquals(2))],
    )
    .await;
    assert_eq!(must_get(&*store, &pk, "doc").await, None);
}

/// A transaction whose third of five writes fails applies none of them.
pub async fn failing_condition_applies_nothing(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/t");
    let existing = Item::new(&pk, "c").with("kept", true);
    let doomed = Item::new(&pk, "d").with("kept", true);
    must_transact(
        &*store,
        vec![
            put(existing.clone(), Condition::None),
            put(doomed.clone(), Condition::None),
        ],
    )
    .await;

    let result = store
        .transact(vec![
            put(Item::new(&pk, "a"), Condition::NotExists),
            put(Item::new(&pk, "b"), Condition::None),
            put(
                Item::new(&pk, "c").with("kept", false),
                Condition::NotExists,
            ),
            delete(&pk, "d", Condition::Exists),
            put(Item::new(&pk, "e"), Condition::None),
        ])
        .await;
    assert_condition_failed(result, 2, &pk, "c");
    for sk in ["a", "b", "e"] {
        assert_eq!(
            must_get(&*store, &pk, sk).await,
            None,
            "{sk} must not be written"
        );
    }
    assert_eq!(must_get(&*store, &pk, "c").await, Some(existing));
    assert_eq!(
        must_get(&*store, &pk, "d").await,
        Some(doomed),
        "d must not be deleted"
    );
    let all = store.query_all(&pk, "").await.expect("query_all");
    assert_eq!(all.len(), 2, "{all:?}");
}

/// `Check` writes nothing, gates the transaction on its condition, and a
/// check with no condition is a no-op that still counts for indexes.
pub async fn check_writes(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/c");
    let guard = Item::new(&pk, "guard").with("version", 5);
    must_transact(&*store, vec![put(guard.clone(), Condition::NotExists)]).await;

    must_transact(
        &*store,
        vec![
            check(&pk, "guard", Condition::Exists),
            check(&pk, "guard2", Condition::NotExists),
            put(Item::new(&pk, "new"), Condition::None),
        ],
    )
    .await;
    assert_eq!(
        must_get(&*store, &pk, "guard").await,
        Some(guard.clone()),
        "check wrote"
    );
    assert_eq!(
        must_get(&*store, &pk, "guard2").await,
        None,
        "check created an item"
    );
    assert!(must_get(&*store, &pk, "new").await.is_some());

    let failed = store
        .transact(vec![
            put(Item::new(&pk, "blocked"), Condition::None),
            check(&pk, "guard", Condition::NotExists),
        ])
        .await;
    assert_condition_failed(failed, 1, &pk, "guard");
    assert_eq!(must_get(&*store, &pk, "blocked").await, None);

    must_transact(
        &*store,
        vec![
            check(&pk, "guard", Condition::VersionEquals(5)),
            put(Item::new(&pk, "v5"), Condition::None),
        ],
    )
    .await;
    let stale = store
        .transact(vec![
            check(&pk, "guard", Condition::VersionEquals(4)),
            put(Item::new(&pk, "v4"), Condition::None),
        ])
        .await;
    assert_condition_failed(stale, 0, &pk, "guard");
    assert_eq!(must_get(&*store, &pk, "v4").await, None);

    // An unconditional check (here on a missing item) passes, and the write
    // after it keeps its own index.
    let after_noop = store
        .transact(vec![
            check(&pk, "missing", Condition::None),
            check(&pk, "also-missing", Condition::Exists),
        ])
        .await;
    assert_condition_failed(after_noop, 1, &pk, "also-missing");
    must_transact(&*store, vec![check(&pk, "missing", Condition::None)]).await;
    must_transact(&*store, Vec::new()).await;
}

/// Deleting a missing item under `Exists` fails; unconditionally it is fine.
pub async fn delete_exists_on_missing_fails(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/d");
    let result = store
        .transact(vec![delete(&pk, "missing", Condition::Exists)])
        .await;
    assert_condition_failed(result, 0, &pk, "missing");
    must_transact(&*store, vec![delete(&pk, "missing", Condition::None)]).await;

    must_transact(&*store, vec![put(Item::new(&pk, "here"), Condition::None)]).await;
    must_transact(&*store, vec![delete(&pk, "here", Condition::Exists)]).await;
    assert_eq!(must_get(&*store, &pk, "here").await, None);
}

/// A query returns exactly the items under its pk whose sk starts with the
/// prefix, in byte order, including around multi-byte characters.
pub async fn query_by_prefix(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/q");
    let other_pk = format!("{prefix}/q2");
    let sks = [
        "a",
        "aa",
        "ab",
        "ab/1",
        "ab/2",
        "ab#",
        "abc",
        "ab~",
        "abé",
        "ab🦀",
        "ac",
        "b",
        "é",
        "é1",
        "éa",
        "ê",
        "e",
        "member#alice",
        "member#bob",
        "member$",
        "members",
        "invite#x",
    ];
    let writes = sks
        .iter()
        .map(|sk| put(Item::new(&pk, *sk).with("sk_copy", *sk), Condition::None))
        .chain(std::iter::once(put(
            Item::new(&other_pk, "ab-other"),
            Condition::None,
        )))
        .collect();
    must_transact(&*store, writes).await;

    for query_prefix in ["ab", "é", "member#", "a", "", "zzz", "ab/"] {
        let mut expected: Vec<&str> = sks
            .iter()
            .copied()
            .filter(|sk| sk.starts_with(query_prefix))
            .collect();
        expected.sort_unstable();
        let page = store
            .query(&pk, query_prefix, PageRequest::default())
            .await
            .expect("query");
        let got: Vec<&str> = page.items.iter().map(|item| item.sk.as_str()).collect();
        assert_eq!(got, expected, "prefix {query_prefix:?}");
        assert!(
            page.items.iter().all(|item| item.pk == pk),
            "foreign pk in {query_prefix:?}"
        );
        assert!(
            page.items
                .iter()
                .all(|item| item.str("sk_copy") == Some(item.sk.as_str())),
            "attributes of the wrong item"
        );
        let all = store.query_all(&pk, query_prefix).await.expect("query_all");
        assert_eq!(all, page.items, "query_all for {query_prefix:?}");
    }

    // `after` resumes strictly after a key, even one no item has.
    let page = store
        .query(
            &pk,
            "ab",
            PageRequest {
                limit: None,
                after: Some("ab/2".into()),
            },
        )
        .await
        .expect("query after");
    let got: Vec<&str> = page.items.iter().map(|item| item.sk.as_str()).collect();
    assert_eq!(got, ["abc", "ab~", "abé", "ab🦀"], "after ab/2");
    let page = store
        .query(
            &pk,
            "member#",
            PageRequest {
                limit: None,
                after: Some("member#b".into()),
            },
        )
        .await
        .expect("query after a missing key");
    let got: Vec<&str> = page.items.iter().map(|item| item.sk.as_str()).collect();
    assert_eq!(got, ["member#bob"]);
    // An `after` below the prefix range starts at its beginning; one above
    // it leaves nothing.
    let below = store
        .query(
            &pk,
            "member#",
            PageRequest {
                limit: None,
                after: Some("a".into()),
            },
        )
        .await
        .expect("query after below the prefix");
    assert_eq!(below.items.len(), 2, "{below:?}");
    let above = store
        .query(
            &pk,
            "member#",
            PageRequest {
                limit: None,
                after: Some("z".into()),
            },
        )
        .await
        .expect("query after above the prefix");
    assert!(above.items.is_empty() && above.next.is_none(), "{above:?}");
}

/// A scan finds the items whose `sk` starts with the prefix under every
/// `pk`, with their attributes, and nothing else; a deleted item is gone
/// from the next scan. Other cases' items may share the store, so only this
/// case's `pk`s are compared.
pub async fn scan_by_prefix(store: Arc<dyn Store>, prefix: &str) {
    let ours = format!("{prefix}/");
    let (one, two) = (format!("{prefix}/s1"), format!("{prefix}/s2"));
    let matching = [
        (one.as_str(), "SCAN#1"),
        (one.as_str(), "SCAN#2"),
        (one.as_str(), "SCAN#é"),
        (two.as_str(), "SCAN#1"),
    ];
    let others = [
        (one.as_str(), "SCAN"),
        (one.as_str(), "SCAM#1"),
        (one.as_str(), "SCAN$"),
        (two.as_str(), "xSCAN#1"),
        (two.as_str(), "scan#1"),
    ];
    let writes = matching
        .iter()
        .chain(others.iter())
        .map(|(pk, sk)| {
            put(
                Item::new(*pk, *sk)
                    .with("n", 7)
                    .with("tag", format!("{pk}|{sk}")),
                Condition::None,
            )
        })
        .collect();
    must_transact(&*store, writes).await;

    let scanned = |items: Vec<Item>| {
        let mut found: Vec<(String, String)> = items
            .into_iter()
            .filter(|i| i.pk.starts_with(&ours))
            .map(|i| {
                assert_eq!(i.int("n"), Some(7), "attributes come with the scan: {i:?}");
                assert_eq!(i.str("tag"), Some(format!("{}|{}", i.pk, i.sk).as_str()));
                (i.pk, i.sk)
            })
            .collect();
        found.sort();
        found
    };
    let mut want: Vec<(String, String)> = matching
        .iter()
        .map(|(pk, sk)| ((*pk).to_owned(), (*sk).to_owned()))
        .collect();
    want.sort();
    let items = store.scan("SCAN#").await.expect("scan");
    assert_eq!(scanned(items), want);

    must_transact(&*store, vec![delete(&two, "SCAN#1", Condition::Exists)]).await;
    want.retain(|(pk, _)| *pk != two);
    let items = store.scan("SCAN#").await.expect("scan");
    assert_eq!(scanned(items), want, "a deleted item is not scanned");
}

/// Pages of two walk seven items exactly once, in order; `query_all` gets
/// them all; items outside the prefix never appear.
pub async fn pagination(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/pages");
    let mut writes: Vec<Write> = (0..7)
        .map(|i| {
            put(
                Item::new(&pk, format!("item#{i:02}")).with("i", i),
                Condition::None,
            )
        })
        .collect();
    writes.push(put(Item::new(&pk, "other#1"), Condition::None));
    writes.push(put(Item::new(&pk, "item"), Condition::None));
    writes.push(put(Item::new(&pk, "itemz"), Condition::None));
    must_transact(&*store, writes).await;
    let expected: Vec<String> = (0..7).map(|i| format!("item#{i:02}")).collect();

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 10, "pagination does not end: {seen:?}");
        let page = store
            .query(
                &pk,
                "item#",
                PageRequest {
                    limit: Some(2),
                    after: after.clone(),
                },
            )
            .await
            .expect("query page");
        assert!(page.items.len() <= 2, "page over its limit: {page:?}");
        // The same page as text: the same items, attributes and next key.
        let text = store
            .query_text(
                &pk,
                "item#",
                PageRequest {
                    limit: Some(2),
                    after: after.clone(),
                },
            )
            .await
            .expect("query_text page");
        assert_eq!(text.next, page.next, "query_text next key");
        let as_items: Vec<Item> = text
            .items
            .iter()
            .map(|t| Item {
                pk: t.pk.clone(),
                sk: t.sk.clone(),
                attrs: serde_json::from_str(&t.attrs).expect("query_text attributes are JSON"),
            })
            .collect();
        assert_eq!(as_items, page.items, "query_text items");
        if page.next.is_some() {
            // A page that promises more must move forward.
            assert!(!page.items.is_empty(), "empty page with a next key");
            assert_eq!(
                page.next.as_deref(),
                page.items.last().map(|i| i.sk.as_str())
            );
        }
        seen.extend(page.items.into_iter().map(|item| item.sk));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, expected, "every item exactly once, in order");
    assert!(
        pages >= 4,
        "limit 2 over 7 items needs at least 4 pages, got {pages}"
    );

    let all = store.query_all(&pk, "item#").await.expect("query_all");
    let all: Vec<String> = all.into_iter().map(|item| item.sk).collect();
    assert_eq!(all, expected);

    // A limit above the item count is one page and no next key.
    let page = store
        .query(
            &pk,
            "item#",
            PageRequest {
                limit: Some(100),
                after: None,
            },
        )
        .await
        .expect("big page");
    assert_eq!(page.items.len(), 7);
    assert_eq!(page.next, None);
}

/// More writes than one transaction may hold are refused up front.
pub async fn too_many_writes(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/many");
    let count = MAX_TRANSACT_WRITES + 1;
    let writes = (0..count)
        .map(|i| put(Item::new(&pk, format!("{i:03}")), Condition::None))
        .collect();
    match store.transact(writes).await {
        Err(StoreError::TooManyWrites(n)) => assert_eq!(n, count),
        other => panic!("expected TooManyWrites, got {other:?}"),
    }
    assert_eq!(must_get(&*store, &pk, "000").await, None);
}

/// Two writes to one key in one transaction are refused up front.
pub async fn duplicate_key(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/dup");
    let result = store
        .transact(vec![
            put(Item::new(&pk, "a"), Condition::None),
            put(Item::new(&pk, "b"), Condition::None),
            check(&pk, "a", Condition::None),
        ])
        .await;
    match result {
        Err(StoreError::DuplicateKey { pk: p, sk }) => {
            assert_eq!((p.as_str(), sk.as_str()), (pk.as_str(), "a"))
        }
        other => panic!("expected DuplicateKey, got {other:?}"),
    }
    assert_eq!(must_get(&*store, &pk, "a").await, None);
    assert_eq!(must_get(&*store, &pk, "b").await, None);
}

/// A transaction of exactly the maximum size goes through.
pub async fn hundred_puts(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/hundred");
    let writes = (0..MAX_TRANSACT_WRITES)
        .map(|i| {
            put(
                Item::new(&pk, format!("{i:03}")).with("i", i),
                Condition::NotExists,
            )
        })
        .collect();
    must_transact(&*store, writes).await;
    let all = store.query_all(&pk, "").await.expect("query_all");
    assert_eq!(all.len(), MAX_TRANSACT_WRITES);
    for (i, item) in all.iter().enumerate() {
        assert_eq!(item.sk, format!("{i:03}"));
        assert_eq!(item.int("i"), i64::try_from(i).ok());
    }
}

/// What DynamoDB cannot hold is `Malformed` on every backend: numbers that
/// are not integers, nesting past DynamoDB's depth limit, attributes named
/// like the keys.
pub async fn invalid_attributes_rejected(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/invalid");
    let bad = [
        Item::new(&pk, "float").with("x", 1.5),
        Item::new(&pk, "nested-float").with("x", json!({"a": [1, 2.25]})),
        Item::new(&pk, "pk-attr").with("pk", "elsewhere"),
        Item::new(&pk, "sk-attr").with("sk", "elsewhere"),
        Item::new(&pk, "too-deep").with("x", (0..40).fold(json!("leaf"), |v, _| json!({ "n": v }))),
    ];
    for item in bad {
        let sk = item.sk.clone();
        let result = store
            .transact(vec![
                put(Item::new(&pk, "fine"), Condition::None),
                put(item, Condition::None),
            ])
            .await;
        assert!(
            matches!(result, Err(StoreError::Malformed(_))),
            "{sk}: {result:?}"
        );
        assert_eq!(must_get(&*store, &pk, &sk).await, None, "{sk} was written");
        assert_eq!(
            must_get(&*store, &pk, "fine").await,
            None,
            "{sk}: its batch was written"
        );
    }
}

/// Many writers who all read version 0 race to write version 1: exactly one
/// wins, every other one is told why it lost.
pub async fn version_race_has_one_winner(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/race");
    must_transact(
        &*store,
        vec![put(
            Item::new(&pk, "counter").with("version", 0),
            Condition::NotExists,
        )],
    )
    .await;

    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|racer| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            let pk = pk.clone();
            tokio::spawn(async move {
                let seen = store
                    .get(&pk, "counter")
                    .await
                    .expect("read counter")
                    .expect("counter exists");
                let version = seen.version();
                // Everyone has read before anyone writes.
                barrier.wait().await;
                let next = Item::new(&pk, "counter")
                    .with("version", version + 1)
                    .with("winner", racer);
                (
                    version,
                    store
                        .transact(vec![put(next, Condition::VersionEquals(version))])
                        .await,
                )
            })
        })
        .collect();

    let mut winners = Vec::new();
    for (racer, task) in tasks.into_iter().enumerate() {
        let (version, result) = task.await.expect("racer panicked");
        assert_eq!(version, 0, "racer {racer} read after a write");
        match result {
            Ok(()) => winners.push(racer),
            Err(StoreError::ConditionFailed { index: 0, .. } | StoreError::Conflict) => {}
            Err(other) => panic!("racer {racer}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let counter = must_get(&*store, &pk, "counter").await.expect("counter");
    assert_eq!(counter.version(), 1);
    assert_eq!(counter.int("winner"), i64::try_from(winners[0]).ok());
}

/// Many writers each increment once with read-modify-write, retrying from a
/// fresh read when they lose: no increment is lost.
pub async fn concurrent_increments(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}/incr");
    must_transact(
        &*store,
        vec![put(
            Item::new(&pk, "counter").with("version", 0),
            Condition::NotExists,
        )],
    )
    .await;

    let tasks: Vec<_> = (0..RACERS)
        .map(|racer| {
            let store = Arc::clone(&store);
            let pk = pk.clone();
            tokio::spawn(async move {
                // Bounded so a store that never lets anyone win fails the test
                // instead of hanging it.
                for attempt in 0..RACERS * 20 {
                    let seen = store
                        .get(&pk, "counter")
                        .await
                        .expect("read")
                        .expect("counter exists");
                    let version = seen.version();
                    let mut touched: Vec<Value> = seen
                        .attrs
                        .get("touched")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    touched.push(Value::from(racer));
                    let next = Item::new(&pk, "counter")
                        .with("version", version + 1)
                        .with("touched", Value::Array(touched));
                    match store
                        .transact(vec![put(next, Condition::VersionEquals(version))])
                        .await
                    {
                        Ok(()) => return attempt,
                        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                            tokio::task::yield_now().await;
                        }
                        Err(other) => panic!("racer {racer}: {other:?}"),
                    }
                }
                panic!("racer {racer} never got its increment in");
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("racer panicked");
    }

    let counter = must_get(&*store, &pk, "counter").await.expect("counter");
    assert_eq!(counter.version(), RACERS as u64, "lost increments");
    // Each racer's increment landed exactly once.
    let touched = counter
        .attrs
        .get("touched")
        .and_then(Value::as_array)
        .expect("touched list");
    let distinct: HashSet<u64> = touched.iter().filter_map(Value::as_u64).collect();
    assert_eq!(
        (touched.len(), distinct.len()),
        (RACERS, RACERS),
        "every racer exactly once"
    );
}

/// Items as large as a batch's intent writes them (a string attribute of
/// 200,000 bytes, multi-byte characters included), eight in one
/// transaction, read back whole by `get` and by `query`.
pub async fn large_items_round_trip(store: Arc<dyn Store>, prefix: &str) {
    let pk = format!("{prefix}#pk");
    let data = |n: usize| {
        let unit = format!("{n}é\"{{}}\\🦀");
        let mut text = unit.repeat(200_000 / unit.len());
        while text.len() > 200_000 {
            text.pop();
        }
        text
    };
    let writes: Vec<Write> = (0..8)
        .map(|n| {
            put(
                Item::new(&pk, format!("chunk#{n:04}")).with("data", data(n)),
                Condition::NotExists,
            )
        })
        .collect();
    must_transact(&*store, writes).await;
    for n in 0..8 {
        let item = must_get(&*store, &pk, &format!("chunk#{n:04}"))
            .await
            .expect("a large item");
        assert_eq!(item.str("data"), Some(data(n).as_str()), "chunk {n}");
    }
    let all = store.query_all(&pk, "chunk#").await.expect("query");
    assert_eq!(all.len(), 8);
    let joined: String = all.iter().filter_map(|i| i.str("data")).collect();
    assert_eq!(joined, (0..8).map(data).collect::<String>());
}
