//! Invitation expiry on DynamoDB (moto): the sweep records each expired
//! invitation once (two sweepers at once included), its record makes a
//! `team.invitation.expired` event, and closing a team leaves no `EXPIRING`
//! entry of it behind, as a full Scan of the table shows. Needs
//! `AWS_ENDPOINT_URL_DYNAMODB` (scripts/test.sh starts moto and sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::events::from_item;
use teamform_functions::service::close::CloseSettings;
use teamform_functions::service::expiry::EXPIRING_PK;
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::Store;
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_tests::moto_store;

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn invite(who: &str) -> Change {
    Change::Invite {
        email: email(who),
        name: None,
        roles: [RoleName::parse("viewer").expect("role")].into(),
    }
}

fn service(store: Arc<DynamoStore>, clock: Arc<ManualClock>) -> Arc<Service> {
    Arc::new(
        Service::new(
            store,
            Arc::new(Catalog::standard()),
            clock,
            "https://app".into(),
        )
        .with_close_settings(CloseSettings::new(7, 90).expect("settings")),
    )
}

async fn create(svc: &Service, team: &TeamId, invited: &[&str]) {
    let mut changes = vec![Change::CreateTeam {
        display_name: team.to_string(),
        owner: email(&format!("owner@{team}.io")),
    }];
    changes.extend(invited.iter().map(|who| invite(who)));
    svc.execute(
        team,
        &Principal::LocalOwner,
        &changes,
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("team");
}

/// The `EXPIRING` entries of the table, by a full Scan.
async fn expiring(store: &DynamoStore) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut start = None;
    loop {
        let out = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for row in out.items.unwrap_or_default() {
            let text = |k: &str| {
                row.get(k)
                    .and_then(|v: &AttributeValue| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            if text("pk") == EXPIRING_PK {
                rows.push((text("sk"), text("team")));
            }
        }
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return rows,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiries_are_recorded_once_and_a_closed_team_leaves_no_entry() {
    let store = moto_store("expiry").await;
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T12:00:00Z".parse().expect("time"),
    ));
    let one = service(store.clone(), clock.clone());
    let two = service(store.clone(), clock.clone());
    let acme = TeamId::parse("acme").expect("id");
    let beta = TeamId::parse("beta").expect("id");
    create(
        &one,
        &acme,
        &["bob@acme.io", "carol@acme.io", "dave@acme.io"],
    )
    .await;
    create(&one, &beta, &["erin@beta.io"]).await;
    one.revoke_invitation(&acme, &Principal::LocalOwner, &email("carol@acme.io"), None)
        .await
        .expect("revoke");
    assert_eq!(expiring(&store).await.len(), 3, "bob, dave and erin");

    clock.advance(Duration::days(16));
    let now = one.now();
    let (a, b) = tokio::join!(one.sweep_expired(now), two.sweep_expired(now));
    let (a, b) = (a.expect("sweep one"), b.expect("sweep two"));
    assert_eq!(a.recorded + b.recorded, 3, "{a:?} {b:?}");
    let again = one.sweep_expired(one.now()).await.expect("sweep again");
    assert_eq!(again.recorded, 0, "{again:?}");
    assert!(expiring(&store).await.is_empty());

    // acme: one record each for bob and dave, in one commit after the
    // revocation, and their events.
    let audit = store.query_all("TEAM#acme", "AUDIT#").await.expect("audit");
    let expired: Vec<_> = audit
        .iter()
        .filter(|i| i.str("action") == Some("expire_invitation"))
        .collect();
    assert_eq!(expired.len(), 2, "{expired:#?}");
    let events: Vec<_> = expired
        .iter()
        .map(|i| from_item(i).expect("event"))
        .collect();
    assert!(events.iter().all(|e| e.kind == "team.invitation.expired"));
    assert_eq!(
        events.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        ["acme/000000000003/0000", "acme/000000000003/0001"]
    );
    assert_eq!(
        events
            .iter()
            .map(|e| e.subject.clone().unwrap_or_default())
            .collect::<Vec<_>>(),
        ["bob@acme.io", "dave@acme.io"]
    );
    assert_eq!(events[0].data["actor_kind"], "system");
    let beta_audit = store.query_all("TEAM#beta", "AUDIT#").await.expect("audit");
    assert_eq!(
        beta_audit
            .iter()
            .filter(|i| i.str("action") == Some("expire_invitation"))
            .count(),
        1
    );

    // Re-invited, then closed and swept: no entry of acme is left, and
    // beta's new one stays.
    one.resend_invitation(&acme, &Principal::LocalOwner, &email("bob@acme.io"), None)
        .await
        .expect("reinvite");
    one.execute(
        &acme,
        &Principal::LocalOwner,
        &[invite("fred@acme.io")],
        None,
        &BatchOptions::default(),
    )
    .await
    .expect("invite");
    one.resend_invitation(&beta, &Principal::LocalOwner, &email("erin@beta.io"), None)
        .await
        .expect("reinvite");
    let teams: Vec<String> = expiring(&store).await.into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        teams.iter().filter(|t| *t == "acme").count(),
        2,
        "{teams:?}"
    );
    one.close_team(&acme, &Principal::LocalOwner, "acme", true, None)
        .await
        .expect("close");
    clock.advance(Duration::days(7));
    let report = one.sweep_closed(one.now()).await.expect("sweep closed");
    assert_eq!(report.deleted, std::slice::from_ref(&acme));
    let left = expiring(&store).await;
    assert!(
        left.iter().all(|(_, team)| team == "beta") && left.len() == 1,
        "{left:?}"
    );
}
