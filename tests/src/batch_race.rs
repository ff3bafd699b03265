//! Writers and readers racing one batch larger than a transaction, run
//! against any store: readers see the team before the batch or after it,
//! never between its parts; writers either wait for it (or finish it) or are
//! refused cleanly, and never write between its parts.
//!
//! Each test gets two stores over the same data: `mine`, which the batch's
//! service uses, and `theirs`, for a second service standing for another
//! process (which cannot wait for the batch and so rolls it forward itself)
//! and for raw looks past the service.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_functions::store::codec;
use teamform_functions::store::{Item, Store};

/// A service over `store` with the standard catalog.
pub fn new_service(store: Arc<dyn Store>) -> Service {
    Service::new(
        store,
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "http://t".into(),
    )
}

/// The same, to share between tasks.
pub fn service(store: Arc<dyn Store>) -> Arc<Service> {
    Arc::new(new_service(store))
}

pub fn team() -> TeamId {
    TeamId::parse("acme").unwrap()
}

pub fn invites(prefix: &str, n: usize) -> Vec<Change> {
    let viewer: teamform_core::model::Roles = [RoleName::parse("viewer").unwrap()].into();
    (0..n)
        .map(|i| Change::Invite {
            email: Email::parse(&format!("{prefix}{i:05}@acme.io")).unwrap(),
            name: None,
            roles: viewer.clone(),
        })
        .collect()
}

pub async fn create_team(svc: &Service) {
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

pub async fn run_batch(svc: &Service, changes: &[Change]) -> Result<u64, ServiceError> {
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
pub async fn raw_applying(store: &dyn Store) -> bool {
    store
        .get(&codec::team_pk(&team()), codec::META)
        .await
        .unwrap()
        .is_some_and(|m| m.attrs.contains_key("applying"))
}

pub async fn raw_count(store: &dyn Store, prefix: &str) -> usize {
    store
        .query_all(&codec::team_pk(&team()), prefix)
        .await
        .unwrap()
        .len()
}

/// Counts the raw looks that find a batch in progress, until `done`.
fn watch(store: Arc<dyn Store>, done: Arc<AtomicBool>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut seen = 0;
        while !done.load(Ordering::SeqCst) {
            if raw_applying(store.as_ref()).await {
                seen += 1;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        seen
    })
}

/// Members and invitations as a reader sees them through the service.
pub async fn people_seen(svc: &Service) -> usize {
    let state = svc.load(&team()).await.unwrap().unwrap();
    state.members.len() + state.invitations.len()
}

/// Readers racing a batch of `batch` invitations count the team before
/// (1 person) or after (1 + `batch`), never in between, whether they read
/// through the batch's own service (which waits) or another one (which
/// finishes the batch).
pub async fn readers_see_a_batch_whole_or_not_at_all(
    mine: Arc<dyn Store>,
    theirs: Arc<dyn Store>,
    batch: usize,
) {
    let writer = service(mine.clone());
    create_team(&writer).await;
    let other = service(theirs.clone());
    let done = Arc::new(AtomicBool::new(false));
    let in_progress_seen = watch(theirs.clone(), done.clone());
    let mut readers = Vec::new();
    for reader in 0..3 {
        let (svc, own, done) = (other.clone(), writer.clone(), done.clone());
        readers.push(tokio::spawn(async move {
            let mut counts = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
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
    tokio::time::sleep(Duration::from_millis(50)).await;
    let version = run_batch(&writer, &invites("p", batch))
        .await
        .expect("the batch applies");
    done.store(true, Ordering::SeqCst);
    let mut observed = BTreeSet::new();
    for r in readers {
        observed.extend(r.await.unwrap());
    }
    assert!(
        observed.is_subset(&[1, 1 + batch].into()),
        "readers saw {observed:?}: only 1 (before) or {} (after) may be seen",
        1 + batch
    );
    assert!(observed.contains(&(1 + batch)), "{observed:?}");
    assert!(
        in_progress_seen.await.unwrap() > 0,
        "the readers never raced the batch: no raw read saw it in progress"
    );
    let raw = theirs.as_ref();
    assert!(!raw_applying(raw).await);
    assert_eq!(raw_count(raw, codec::INTENT).await, 0);
    assert_eq!(raw_count(raw, codec::AUDIT).await, 1 + batch);
    assert_eq!(raw_count(raw, codec::OUTBOX).await, batch);
    let state = writer.load(&team()).await.unwrap().unwrap();
    assert_eq!(state.version, version);
}

/// Writers racing a batch of `batch` invitations (through another service)
/// go in before or after it, never between its parts; a write pinned to the
/// version the batch moved is refused; a batch planned on a version a writer
/// moved is refused before any of it is written.
pub async fn writers_never_write_between_a_batchs_parts(
    mine: Arc<dyn Store>,
    theirs: Arc<dyn Store>,
    batch: usize,
) {
    let batch_svc = service(mine.clone());
    create_team(&batch_svc).await;
    let base = batch_svc.load(&team()).await.unwrap().unwrap().version;
    let other = service(theirs.clone());
    let done = Arc::new(AtomicBool::new(false));
    let in_progress_seen = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (svc, done, seen) = (other.clone(), done.clone(), in_progress_seen.clone());
        let raw = theirs.clone();
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
                        if raw_applying(raw.as_ref()).await {
                            seen.fetch_add(1, Ordering::SeqCst);
                            break;
                        }
                        if done.load(Ordering::SeqCst) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
                let change = invites(&format!("w{w}x{i}-"), 1);
                let result = run_batch(&svc, &change).await;
                let pinned = svc
                    .execute(
                        &team(),
                        &Principal::LocalOwner,
                        &invites(&format!("pin{w}x{i}-"), 1),
                        Some(base),
                        &BatchOptions::default(),
                    )
                    .await;
                outcomes.push((result, pinned.is_ok()));
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut target = None;
    for _ in 0..20 {
        match run_batch(&batch_svc, &invites("p", batch)).await {
            Ok(version) => {
                target = Some(version);
                break;
            }
            Err(ServiceError::VersionConflict { .. }) => {
                assert_eq!(raw_count(mine.as_ref(), codec::INTENT).await, 0);
            }
            Err(e) => panic!("the batch failed: {e}"),
        }
    }
    let target = target.expect("the batch applies within 20 attempts");
    done.store(true, Ordering::SeqCst);
    let mut written = 0;
    for w in writers {
        for (result, pinned) in w.await.unwrap() {
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
    let audit = theirs
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
        1 + batch + written,
        "one audit item per change"
    );
    assert_eq!(
        people_seen(&other).await,
        1 + batch + written,
        "every write that answered OK is in, and nothing else"
    );
}
