//! Closing a team on DynamoDB (moto): after the grace period the sweep
//! archives the audit trail into the table (items with a TTL) and leaves no
//! other item of the team, as a full Scan of the table shows. Needs
//! `AWS_ENDPOINT_URL_DYNAMODB` (scripts/test.sh starts moto and sets it).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::service::close::{ArchiveName, CloseSettings, StoreArchive};
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_functions::store::Store;
use teamform_functions::store::dynamodb::DynamoStore;
use teamform_tests::moto_store;

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn person(s: &str) -> Principal {
    Principal::person(email(s))
}

fn role(s: &str) -> RoleName {
    RoleName::parse(s).expect("role")
}

type Row = HashMap<String, AttributeValue>;

/// Every item of the table, page by page.
async fn scan(store: &DynamoStore) -> Vec<Row> {
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
        rows.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return rows,
        }
    }
}

/// An item of team `acme` or pointing at it (its archive aside).
fn of_acme(row: &Row) -> bool {
    !text(row, "pk").starts_with("ARCHIVE#")
        && (text(row, "pk") == "TEAM#acme"
            || text(row, "sk") == "TEAM#acme"
            || text(row, "pk") == "CLOSING"
            || text(row, "team") == "acme")
}

fn text<'a>(row: &'a Row, name: &str) -> &'a str {
    row.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_team_is_archived_then_deleted_to_the_last_item() {
    let store = moto_store("close").await;
    let clock = Arc::new(ManualClock::new(
        "2026-11-28T12:00:00Z".parse().expect("time"),
    ));
    let svc = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        clock.clone(),
        "https://app".into(),
    )
    .with_close_settings(CloseSettings::new(7, 90).expect("settings"));
    let team = TeamId::parse("acme").expect("id");
    let invite = |who: &str, r: &str| Change::Invite {
        email: email(who),
        name: None,
        roles: [role(r)].into(),
    };
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &[
            Change::CreateTeam {
                display_name: "Acme".into(),
                owner: email("alice@acme.com"),
            },
            invite("bob@acme.com", "admin"),
            invite("carol@acme.com", "viewer"),
        ],
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("team");
    let mails = svc.outbox(&team).await.expect("outbox");
    let bob_link = mails
        .iter()
        .find(|m| m.to == "bob@acme.com")
        .and_then(|m| m.link_secret())
        .expect("bob's link")
        .to_owned();
    svc.accept_invitation(&bob_link, &person("bob@acme.com"))
        .await
        .expect("bob joins");
    let key = svc
        .create_api_key(
            &team,
            &person("alice@acme.com"),
            "ci",
            &[role("viewer")].into(),
            &[],
            None,
            None,
        )
        .await
        .expect("key")
        .secret;
    svc.authenticate(&key).await.expect("the key works");

    let closed_at = svc.now();
    let closing = svc
        .close_team(&team, &person("alice@acme.com"), "acme", true, None)
        .await
        .expect("close");
    let deletes_at = closing.deletes_at.expect("deadline");
    assert_eq!(deletes_at, closed_at + Duration::days(7));
    let audit = store.query_all("TEAM#acme", "AUDIT#").await.expect("audit");
    assert!(audit.len() >= 5, "{}", audit.len());

    // What there is to delete, inside the team's partition and outside it.
    let before = scan(&store).await;
    for prefix in ["TEAM#", "USER#", "KEY#", "TOKEN#", "CLOSING", "EXPIRING"] {
        assert!(
            before
                .iter()
                .any(|r| of_acme(r) && text(r, "pk").starts_with(prefix)),
            "the team has {prefix} items"
        );
    }

    clock.advance(Duration::days(7));
    let report = svc.sweep_closed(svc.now()).await.expect("sweep");
    assert_eq!(report.deleted, std::slice::from_ref(&team), "{report:?}");

    let name = ArchiveName {
        team: team.clone(),
        deletes_at,
    };
    let archive_pk = StoreArchive::pk(&name);
    let rows = scan(&store).await;
    let left: Vec<&Row> = rows.iter().filter(|r| of_acme(r)).collect();
    assert!(left.is_empty(), "items of the team left behind: {left:#?}");

    // The archive: every audit record in order, kept for 90 days after
    // the deadline by the table's TTL.
    let parts = store
        .query_all(&archive_pk, "PART#")
        .await
        .expect("archive");
    assert!(!parts.is_empty());
    let keep_until = (deletes_at + Duration::days(90)).timestamp();
    assert!(
        parts
            .iter()
            .all(|p| p.int("expires_at") == Some(keep_until))
    );
    let lines: String = parts.iter().filter_map(|p| p.str("lines")).collect();
    let ids: Vec<String> = lines
        .lines()
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            record["id"].as_str().expect("id").to_owned()
        })
        .collect();
    let expected: Vec<String> = audit.iter().map(|i| i.sk.clone()).collect();
    assert_eq!(ids, expected);

    assert!(matches!(
        svc.authenticate(&key).await,
        Err(ServiceError::Unauthenticated)
    ));
    assert!(matches!(
        svc.visible(&team, &person("alice@acme.com")).await,
        Err(ServiceError::NotFound)
    ));
}
