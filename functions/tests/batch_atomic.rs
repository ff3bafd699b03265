//! A batch larger than one transaction is seen whole or not at all: readers
//! racing a 3,000-invitation batch count the team before or after it, never
//! in between; writers racing it wait (finishing it first) or are refused
//! cleanly, never writing between its parts; and a batch interrupted after
//! some parts (its process gone) is completed by the next read or write,
//! with exactly one audit item per change, one outbox item per email, and
//! its emails delivered once. On SQLite; `tests/tests/batch_kill.rs` kills
//! a real server mid-batch, on SQLite and on DynamoDB.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::codec;
use teamform_functions::mail::OutboxDir;
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_functions::store::sqlite::SqliteStore;
use teamform_functions::store::{Item, Page, PageRequest, Store, StoreError, Write};

const BATCH: usize = 3_000;

fn service(store: Arc<dyn Store>) -> Service {
    Service::new(
        store,
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "http://t".into(),
    )
}

fn team() -> TeamId {
    TeamId::parse("acme").unwrap()
}

fn invites(prefix: &str, n: usize) -> Vec<Change> {
    let viewer: BTreeSet<RoleName> = [RoleName::parse("viewer").unwrap()].into();
    (0..n)
        .map(|i| Change::Invite {
            email: Email::parse(&format!("{prefix}{i:05}@acme.io")).unwrap(),
            name: None,
            roles: viewer.clone(),
        })
        .collect()
}

async fn create_team(svc: &Service) {
    let create = Change::CreateTeam {
        display_name: "Acme".into(),
        owner: Email::parse("owner@acme.io").unwrap(),
    };
    svc.execute(
        &team(),
        &Principal::LocalOwner,
        &[create],
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("team created");
}

async fn run_batch(svc: &Service, changes: &[Change]) -> Result<u64, ServiceError> {
    svc.execute(
        &team(),
        &Principal::LocalOwner,
        changes,
        None,
        &BatchOptions::default(),
    )
    .await
    .map(|a| a.version)
}

/// The raw `META`, read past the service: whether a batch is in progress.
async fn raw_applying(store: &dyn Store) -> bool {
    store
        .get(&codec::team_pk(&team()), codec::META)
        .await
        .unwrap()
        .is_some_and(|m| m.attrs.contains_key("applying"))
}

async fn raw_count(store: &dyn Store, prefix: &str) -> usize {
    store
        .query_all(&codec::team_pk(&team()), prefix)
        .await
        .unwrap()
        .len()
}

/// Counts the raw looks (on a connection of its own) that find a batch in
/// progress, until `done`.
fn watch(file: &Path, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<usize> {
    let own = SqliteStore::open(file).unwrap();
    tokio::spawn(async move {
        let mut seen = 0;
        while !done.load(Ordering::SeqCst) {
            if raw_applying(&own).await {
                seen += 1;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        seen
    })
}

/// Members and invitations as a reader sees them through the service.
async fn people_seen(svc: &Service) -> usize {
    let state = svc.load(&team()).await.unwrap().unwrap();
    state.members.len() + state.invitations.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_racing_a_large_batch_see_it_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let writer = Arc::new(service(store.clone()));
    create_team(&writer).await;
    // Readers of another service over the same store: another process, which
    // cannot wait for the writer and so finishes the batch itself.
    let other = Arc::new(service(store.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let in_progress_seen = watch(&dir.path().join("s.db"), done.clone());
    let mut readers = Vec::new();
    for reader in 0..3 {
        let (svc, own, done) = (other.clone(), writer.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut counts = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                // One reader of the writer's own service too: it waits for
                // the batch its process is applying.
                let svc = if reader == 0 { &own } else { &svc };
                counts.push(people_seen(svc).await);
                let scoped = svc
                    .authorized_scoped(&team(), &Principal::LocalOwner, "team.members.read")
                    .await
                    .unwrap();
                counts.push((scoped.counts.members + scoped.counts.invitations) as usize);
                if finished {
                    return counts;
                }
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let version = run_batch(&writer, &invites("p", BATCH))
        .await
        .expect("the batch applies");
    done.store(true, Ordering::SeqCst);
    let mut observed = BTreeSet::new();
    for r in readers {
        observed.extend(r.await.unwrap());
    }
    assert!(
        observed.is_subset(&[1, 1 + BATCH].into()),
        "readers saw {observed:?}: only 1 (before) or {} (after) may be seen",
        1 + BATCH
    );
    assert!(observed.contains(&(1 + BATCH)), "{observed:?}");
    assert!(
        in_progress_seen.await.unwrap() > 0,
        "the readers never raced the batch: no raw read saw it in progress"
    );
    assert!(!raw_applying(store.as_ref()).await);
    assert_eq!(raw_count(store.as_ref(), codec::INTENT).await, 0);
    assert_eq!(raw_count(store.as_ref(), codec::AUDIT).await, 1 + BATCH);
    assert_eq!(raw_count(store.as_ref(), codec::OUTBOX).await, BATCH);
    let state = writer.load(&team()).await.unwrap().unwrap();
    assert_eq!(state.version, version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_a_large_batch_never_write_between_its_parts() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let batch_svc = Arc::new(service(store.clone()));
    create_team(&batch_svc).await;
    let base = batch_svc.load(&team()).await.unwrap().unwrap().version;
    let other = Arc::new(service(store.clone()));
    let done = Arc::new(AtomicBool::new(false));
    let in_progress_seen = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (svc, done, seen) = (other.clone(), done.clone(), in_progress_seen.clone());
        let own = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        writers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0.. {
                if done.load(Ordering::SeqCst) && i > 2 {
                    break;
                }
                // A write before the batch, then writes only while its parts
                // go in (a constant stream of writes would starve its
                // planning, which is the caller's to retry).
                if i > 0 {
                    loop {
                        if raw_applying(&own).await {
                            seen.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                }
                let change = invites(&format!("w{w}x{i}-"), 1);
                let result = run_batch(&svc, &change).await;
                // A pinned version that the batch moved is refused, cleanly.
                let pinned = svc
                    .execute(
                        &team(),
                        &Principal::LocalOwner,
                        &invites(&format!("pin{w}x{i}-"), 1),
                        Some(base),
                        &BatchOptions::default(),
                    )
                    .await;
                outcomes.push((change, result, pinned.is_ok()));
            }
            outcomes
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    // A batch planned on a version a writer moved is refused before any of
    // it is written; the caller plans again, as the reconciler does.
    let mut target = None;
    for _ in 0..20 {
        match run_batch(&batch_svc, &invites("p", BATCH)).await {
            Ok(version) => {
                target = Some(version);
                break;
            }
            Err(ServiceError::VersionConflict { .. }) => {
                assert_eq!(raw_count(store.as_ref(), codec::INTENT).await, 0);
            }
            Err(e) => panic!("the batch failed: {e}"),
        }
    }
    let target = target.expect("the batch applies within 20 attempts");
    done.store(true, Ordering::SeqCst);
    let mut written = 0;
    for w in writers {
        for (_, result, pinned) in w.await.unwrap() {
            assert!(
                !pinned,
                "a write pinned to the version before the batch went in"
            );
            match result {
                Ok(_) => written += 1,
                Err(ServiceError::VersionConflict { .. }) => {}
                Err(e) => panic!("a racing writer failed with {e}"),
            }
        }
    }
    assert!(written > 0, "no racing write went in");
    assert!(
        in_progress_seen.load(Ordering::SeqCst) > 0,
        "the writers never raced the batch: no raw read saw it in progress"
    );
    // The batch's audit items hold consecutive versions, and no other
    // write's audit item falls among them.
    let audit = store
        .query_all(&codec::team_pk(&team()), codec::AUDIT)
        .await
        .unwrap();
    let email_of = |a: &Item| {
        a.attrs["change"]["email"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let batch_versions: BTreeSet<i64> = audit
        .iter()
        .filter(|a| email_of(a).starts_with('p'))
        .filter_map(|a| a.int("version"))
        .collect();
    let (lo, hi) = (
        *batch_versions.first().unwrap(),
        *batch_versions.last().unwrap(),
    );
    assert_eq!(hi as u64, target);
    assert_eq!(
        batch_versions.len() as i64,
        hi - lo + 1,
        "consecutive parts"
    );
    for a in audit.iter().filter(|a| email_of(a).starts_with('w')) {
        let v = a.int("version").unwrap();
        assert!(
            v < lo || v > hi,
            "{} was written at version {v}, between the batch's parts {lo}..={hi}",
            email_of(a)
        );
    }
    assert_eq!(
        audit.len(),
        1 + BATCH + written,
        "one audit item per change"
    );
    assert_eq!(
        people_seen(&other).await,
        1 + BATCH + written,
        "every write that answered OK is in, and nothing else"
    );
}

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
    let dying = Arc::new(Dying {
        inner: sqlite.clone(),
        parts,
        seen: AtomicUsize::new(0),
        dead: AtomicBool::new(false),
    });
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
        service(raw.clone()).with_mail_sink(Arc::new(OutboxDir::new(outbox.path().to_owned())));
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
    let dying = Arc::new(Dying {
        inner: sqlite.clone(),
        parts: 7,
        seen: AtomicUsize::new(0),
        dead: AtomicBool::new(false),
    });
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
