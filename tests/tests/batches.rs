//! A batch larger than one transaction (100 writes) is committed in parts,
//! each atomic and conditioned on the version the previous one produced,
//! with every change's audit item: on SQLite and on DynamoDB (moto).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::BTreeSet;
use std::sync::Arc;

use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::Store;
use teamform_functions::store::codec;
use teamform_functions::store::sqlite::SqliteStore;
use teamform_tests::moto_store;

async fn large_batch_is_split_into_atomic_parts(store: Arc<dyn Store>) {
    let svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "http://t".into(),
    );
    let team = TeamId::parse("bulk").expect("id");
    let mut changes = vec![Change::CreateTeam {
        display_name: "Bulk".into(),
        owner: Email::parse("o@bulk.io").expect("email"),
    }];
    let viewer: teamform_core::model::Roles = [RoleName::parse("viewer").expect("role")].into();
    for i in 0..60 {
        changes.push(Change::Invite {
            email: Email::parse(&format!("p{i}@bulk.io")).expect("email"),
            name: None,
            roles: viewer.clone(),
        });
    }
    let applied = svc
        .execute(
            &team,
            &Principal::LocalOwner,
            &changes,
            Some(0),
            &BatchOptions::default(),
        )
        .await
        .expect("the batch applies");
    assert_eq!(applied.applied, 61);
    // Each invitation writes 4 items (invitation, link, audit, email): 61
    // changes cannot fit one transaction of 100 writes.
    assert!(
        applied.version >= 3,
        "split into several versions, got {}",
        applied.version
    );
    let state = svc.load(&team).await.expect("load").expect("team");
    assert_eq!(state.invitations.len(), 60);
    assert_eq!(state.version, applied.version);
    let audit = store
        .query_all(&codec::team_pk(&team), codec::AUDIT)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 61, "one audit item per change");
    let versions: BTreeSet<i64> = audit.iter().filter_map(|a| a.int("version")).collect();
    assert_eq!(
        versions,
        (1..=applied.version as i64).collect(),
        "consecutive versions, one per part"
    );
}

#[tokio::test]
async fn large_batch_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db")).expect("open");
    large_batch_is_split_into_atomic_parts(Arc::new(store)).await;
}

#[tokio::test]
async fn large_batch_on_dynamodb() {
    large_batch_is_split_into_atomic_parts(moto_store("bulk").await).await;
}
