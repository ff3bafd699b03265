//! `GET /teams/{team}/members` pages from the store, merging members and
//! pending invitations in email order: whatever the page size and filter,
//! walking the cursors yields exactly the filtered list, in order, with no
//! gap and no repeat.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::Value;
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

async fn get(router: &Router, uri: &str) -> Value {
    let req = Request::builder()
        .uri(uri)
        .body(Body::empty())
        .expect("request");
    let res = router.clone().oneshot(req).await.expect("answer");
    assert!(res.status().is_success(), "{uri}: {}", res.status());
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    serde_json::from_slice(&bytes).expect("json")
}

/// Twenty people, alternately joined and pending, with alternating roles,
/// so that both sources interleave in email order.
/// A person of the team: email, `joined` or `pending`, role.
type Person = (String, &'static str, &'static str);

async fn team() -> (Router, Vec<Person>) {
    let svc = Arc::new(Service::new(
        Arc::new(SqliteStore::in_memory().expect("store")),
        Arc::new(Catalog::standard()),
        Arc::new(ManualClock::new(
            "2026-11-28T12:00:00Z".parse().expect("time"),
        )),
        "http://test".into(),
    ));
    let team = TeamId::parse("pg").expect("team");
    let owner = Email::parse("a-owner@x.io").expect("email");
    let mut people = vec![("a-owner@x.io".to_owned(), "joined", "owner")];
    let mut changes = vec![Change::CreateTeam {
        display_name: "P".into(),
        owner: owner.clone(),
    }];
    for i in 0..20 {
        let role = if i % 3 == 0 { "viewer" } else { "developer" };
        let email = format!("p{i:02}@x.io");
        changes.push(Change::Invite {
            email: Email::parse(&email).expect("email"),
            name: None,
            roles: [RoleName::parse(role).expect("role")].into(),
        });
        let status = if i % 2 == 0 { "joined" } else { "pending" };
        people.push((email, status, role));
    }
    svc.execute(
        &team,
        &Principal::LocalOwner,
        &changes,
        None,
        &BatchOptions::default(),
    )
    .await
    .expect("team");
    let mails = svc.outbox(&team).await.expect("outbox");
    for (email, status, _) in &people {
        if *status != "joined" || email == "a-owner@x.io" {
            continue;
        }
        let mail = mails.iter().find(|m| &m.to == email).expect("mail");
        let link = mail.link_secret().expect("link");
        let who = Principal::person(Email::parse(email).expect("email"));
        svc.accept_invitation(link, &who).await.expect("accept");
    }
    (app(AppState::new(svc, Anonymous::LocalOwner)), people)
}

#[tokio::test]
async fn every_page_size_and_filter_walks_the_whole_filtered_list_once_in_order() {
    let (router, people) = team().await;
    type Keep = fn(&Person) -> bool;
    let filters: [(&str, Keep); 5] = [
        ("", |_| true),
        ("&status=joined", |p| p.1 == "joined"),
        ("&status=pending", |p| p.1 == "pending"),
        ("&role=viewer", |p| p.2 == "viewer"),
        ("&status=joined&role=developer", |p| {
            p.1 == "joined" && p.2 == "developer"
        }),
    ];
    for (query, keep) in filters {
        let expected: Vec<String> = people
            .iter()
            .filter(|p| keep(p))
            .map(|p| p.0.clone())
            .collect();
        for limit in [1, 2, 3, 7, 20, 50] {
            let mut seen = Vec::new();
            let mut uri = format!("/teams/pg/members?limit={limit}{query}");
            for _ in 0..100 {
                let page = get(&router, &uri).await;
                let items = page["items"].as_array().expect("items");
                assert!(items.len() <= limit, "{uri}: {} items", items.len());
                for m in items {
                    seen.push(m["email"].as_str().unwrap_or_default().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(c) => {
                        assert!(!items.is_empty(), "{uri}: an empty page with a cursor");
                        uri = format!("/teams/pg/members?limit={limit}{query}&cursor={c}");
                    }
                    None => break,
                }
            }
            assert_eq!(seen, expected, "limit {limit}, filter `{query}`");
        }
    }
}
