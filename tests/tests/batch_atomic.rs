//! A batch larger than one transaction interrupted after some parts (its
//! process gone) is completed by the next read or write, with exactly one
//! audit item per change, one outbox item per email, and its emails
//! delivered once. On SQLite; `batch_kill.rs` kills a real
//! server mid-batch, on SQLite and on DynamoDB, and
//! `batch_race.rs` races readers and writers against a batch on
//! both.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use teamform_functions::mail::OutboxDir;
use teamform_functions::service::ServiceError;
use teamform_functions::store::codec;
use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Item, Page, PageRequest, Store, StoreError, Write};
use teamform_tests::batch_race::{
    create_team, invites, new_service, people_seen, raw_applying, raw_count, run_batch, service,
    team,
};

const BATCH: usize = 3_000;

/// A store that dies (every call fails) once `parts` parts of a batch are
/// in: a process killed mid-batch. A part is a transaction writing `META`
/// with `applying`.
struct Dying {
    inner: SqliteStore,
    parts: usize,
    seen: AtomicUsize,
    dead: AtomicBool,
}

impl Dying {
    /// A store over `sqlite` that dies once `parts` parts of a batch are in.
    fn after(sqlite: &SqliteStore, parts: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: sqlite.clone(),
            parts,
            seen: AtomicUsize::new(0),
            dead: AtomicBool::new(false),
        })
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.dead.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("the process is gone".into()));
        }
        Ok(())
    }
}

#[async_trait]
impl Store for Dying {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.check()?;
        self.inner.get(pk, sk).await
    }
    async fn query(&self, pk: &str, prefix: &str, page: PageRequest) -> Result<Page, StoreError> {
        self.check()?;
        self.inner.query(pk, prefix, page).await
    }
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.check()?;
        let part = writes.iter().any(|w| match w {
            Write::Put { item, .. } => {
                item.sk == codec::META && item.attrs.contains_key("applying")
            }
            _ => false,
        });
        if part && self.seen.fetch_add(1, Ordering::SeqCst) >= self.parts {
            self.dead.store(true, Ordering::SeqCst);
            return Err(StoreError::Backend("the process is gone".into()));
        }
        self.inner.transact(writes).await
    }
    async fn scan(&self, prefix: &str) -> Result<Vec<Item>, StoreError> {
        self.check()?;
        self.inner.scan(prefix).await
    }
}

fn eml_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .count()
    })
}

/// Interrupts a 3,000-invitation batch after `parts` parts, then lets
/// `next` (a fresh service over the same file: the restarted process)
/// touch the team, and checks the batch completed exactly once.
async fn interrupted_batch_is_completed_by(parts: usize, next: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.db");
    let sqlite = SqliteStore::open(&file).unwrap();
    create_team(&service(Arc::new(sqlite.clone()))).await;
    let dying = Dying::after(&sqlite, parts);
    let err = run_batch(&service(dying.clone()), &invites("p", BATCH))
        .await
        .expect_err("the process died mid-batch");
    assert!(matches!(err, ServiceError::Store(_)), "{err}");

    // Half applied underneath: `parts` parts are in, `META` names the batch.
    let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).unwrap());
    assert!(raw_applying(raw.as_ref()).await);
    let half = raw_count(raw.as_ref(), codec::INVITE).await;
    assert!(
        0 < half && half < BATCH,
        "{half} invitations in after {parts} parts"
    );
    assert!(raw_count(raw.as_ref(), codec::INTENT).await > 0);

    let outbox = tempfile::tempdir().unwrap();
    let restarted =
        new_service(raw.clone()).with_mail_sink(Arc::new(OutboxDir::new(outbox.path().to_owned())));
    match next {
        "read" => assert_eq!(people_seen(&restarted).await, 1 + BATCH),
        "write" => {
            run_batch(&restarted, &invites("late", 1))
                .await
                .expect("a write after the batch");
        }
        other => panic!("{other}"),
    }
    let extra = usize::from(next == "write");
    assert!(!raw_applying(raw.as_ref()).await, "the batch is finished");
    assert_eq!(
        raw_count(raw.as_ref(), codec::INTENT).await,
        0,
        "intent deleted"
    );
    assert_eq!(raw_count(raw.as_ref(), codec::INVITE).await, BATCH + extra);
    assert_eq!(
        raw_count(raw.as_ref(), codec::AUDIT).await,
        1 + BATCH + extra,
        "one audit item per change, each once"
    );
    // The local sink delivered every committed email once (and deleted
    // the outbox items it wrote out).
    assert_eq!(eml_files(outbox.path()), BATCH + extra);
    assert_eq!(raw_count(raw.as_ref(), codec::OUTBOX).await, 0);
    // The audit versions are consecutive: each part went in once.
    let audit = raw
        .query_all(&codec::team_pk(&team()), codec::AUDIT)
        .await
        .unwrap();
    let versions: BTreeSet<i64> = audit.iter().filter_map(|a| a.int("version")).collect();
    let last = *versions.last().unwrap();
    assert_eq!(versions, (1..=last).collect());
    assert_eq!(
        restarted.load(&team()).await.unwrap().unwrap().version,
        last as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_interrupted_after_its_first_part_is_completed_by_the_next_read() {
    interrupted_batch_is_completed_by(1, "read").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_interrupted_midway_is_completed_by_the_next_write() {
    interrupted_batch_is_completed_by(40, "write").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_interrupted_midway_keeps_outbox_items_exactly_once() {
    // Without a mail sink the outbox items stay: exactly one per email.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.db");
    let sqlite = SqliteStore::open(&file).unwrap();
    create_team(&service(Arc::new(sqlite.clone()))).await;
    let dying = Dying::after(&sqlite, 7);
    run_batch(&service(dying), &invites("p", BATCH))
        .await
        .expect_err("died");
    let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).unwrap());
    let svc = service(raw.clone());
    let mails = svc.outbox(&team()).await.unwrap();
    assert_eq!(mails.len(), BATCH);
    let to: BTreeSet<String> = mails.into_iter().map(|m| m.to).collect();
    assert_eq!(to.len(), BATCH, "one email per invitation");
    assert_eq!(raw_count(raw.as_ref(), codec::AUDIT).await, 1 + BATCH);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_intent_of_a_batch_that_died_before_its_first_part_is_deleted_by_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.db");
    let sqlite = SqliteStore::open(&file).unwrap();
    create_team(&service(Arc::new(sqlite.clone()))).await;
    // Dies at its first part: the intent is written, nothing of it applied.
    let dying = Dying::after(&sqlite, 0);
    run_batch(&service(dying), &invites("p", 300))
        .await
        .expect_err("died");
    let raw: Arc<dyn Store> = Arc::new(SqliteStore::open(&file).unwrap());
    assert!(!raw_applying(raw.as_ref()).await, "no part went in");
    assert_eq!(raw_count(raw.as_ref(), codec::INVITE).await, 0);
    let left = raw_count(raw.as_ref(), codec::INTENT).await;
    assert!(left > 0, "the dead batch left its intent");

    // A one-change write does not look for leftovers; the next batch of
    // several parts does, once it is finished.
    let svc = service(raw.clone());
    run_batch(&svc, &invites("one", 1)).await.unwrap();
    assert_eq!(raw_count(raw.as_ref(), codec::INTENT).await, left);
    run_batch(&svc, &invites("next", 100)).await.unwrap();
    assert_eq!(raw_count(raw.as_ref(), codec::INTENT).await, 0);
    assert_eq!(raw_count(raw.as_ref(), codec::INVITE).await, 101);
}
