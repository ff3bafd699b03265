//! Shared helpers for the end-to-end suites in `tests/tests`.
//!
//! Suites that need DynamoDB talk to moto, started by `scripts/test.sh`. A
//! helper here must never let a suite pass without its backend: a missing
//! endpoint is a test failure, not a skip.
//!
//! This crate is test code only (nothing ships it), so a failed step panics
//! the test that called it: the one exception to the workspace's
//! `unwrap`/`expect` denial.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use teamform_functions::store::dynamodb::DynamoStore;
use teamform_functions::store::{Item, Page, PageRequest, Store, StoreError, Write};

/// The variable naming moto's endpoint; the SDK reads it too.
pub const ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_DYNAMODB";

/// A `DynamoStore` on a fresh, uniquely named table on moto, created and
/// active. Panics (failing the test) when no endpoint is configured.
pub async fn moto_store(name_hint: &str) -> Arc<DynamoStore> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.trim().is_empty() => {}
        _ => panic!(
            "{ENDPOINT_VAR} is not set: these tests need moto; run scripts/test.sh, which starts moto"
        ),
    }
    let table = unique_table_name(name_hint);
    let store = DynamoStore::from_env(table.clone()).await;
    store
        .create_table_if_missing()
        .await
        .unwrap_or_else(|e| panic!("creating table {table} on moto: {e}"));
    Arc::new(store)
}

/// `{hint}-{nanos}-{n}`, cut to characters and a length DynamoDB accepts.
/// Nanoseconds keep names apart across runs on one moto, the counter keeps
/// them apart within a run.
pub fn unique_table_name(name_hint: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let hint: String = name_hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(200)
        .collect();
    let hint = if hint.is_empty() {
        "table".to_owned()
    } else {
        hint
    };
    format!("{hint}-{nanos}-{n}")
}

/// A `Store` that lets one `transact` at a time through to the store it
/// wraps; reads pass straight through.
///
/// Moto's TransactWriteItems is not atomic under concurrent requests: it
/// checks conditions and writes without a lock, and a cancelled transaction
/// restores a copy of the whole table taken when it began, wiping out
/// transactions that committed meanwhile. Real DynamoDB has neither flaw.
/// Suites that write concurrently to moto wrap their store in this so they
/// test our code (condition decoding, retry loops) rather than moto's races.
pub struct SerialTransactions {
    inner: Arc<dyn Store>,
    gate: tokio::sync::Mutex<()>,
}

impl SerialTransactions {
    pub fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(Self {
            inner,
            gate: tokio::sync::Mutex::new(()),
        })
    }
}

type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

// Written out by hand (the shape `#[async_trait]` expands to) because this
// crate does not depend on async-trait.
impl Store for SerialTransactions {
    fn get<'s, 'p, 'k, 'f>(&'s self, pk: &'p str, sk: &'k str) -> StoreFuture<'f, Option<Item>>
    where
        's: 'f,
        'p: 'f,
        'k: 'f,
        Self: 'f,
    {
        self.inner.get(pk, sk)
    }

    fn query<'s, 'p, 'k, 'f>(
        &'s self,
        pk: &'p str,
        sk_prefix: &'k str,
        page: PageRequest,
    ) -> StoreFuture<'f, Page>
    where
        's: 'f,
        'p: 'f,
        'k: 'f,
        Self: 'f,
    {
        self.inner.query(pk, sk_prefix, page)
    }

    fn transact<'s, 'f>(&'s self, writes: Vec<Write>) -> StoreFuture<'f, ()>
    where
        's: 'f,
        Self: 'f,
    {
        Box::pin(async move {
            let _turn = self.gate.lock().await;
            self.inner.transact(writes).await
        })
    }

    fn scan<'s, 'k, 'f>(&'s self, sk_prefix: &'k str) -> StoreFuture<'f, Vec<Item>>
    where
        's: 'f,
        'k: 'f,
        Self: 'f,
    {
        self.inner.scan(sk_prefix)
    }
}

pub mod batch_race;
pub mod cli;
pub mod oidc;
pub mod people;
pub mod race;
pub mod stream;
