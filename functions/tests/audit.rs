#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report
//! The audit trail of a team with 10,000 records, through the router: pages
//! without gaps or repeats, filters by actor, action, subject and time, and
//! the JSON Lines and CSV exports.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use teamform_core::{Catalog, Change, Email};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

const PEOPLE: usize = 9_999;

/// acme with `PEOPLE` invitations in batches, the clock moving an hour
/// between batches: 10,000 records with the team's creation.
async fn team() -> (axum::Router, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new("2026-11-01T00:00:00Z".parse().unwrap()));
    let svc = Arc::new(
        Service::new(
            Arc::new(SqliteStore::in_memory().unwrap()),
            Arc::new(Catalog::standard()),
            clock.clone(),
            "https://x".into(),
        )
        .with_local_owner_tokens(),
    );
    let team = "acme".parse().unwrap();
    let create = [Change::CreateTeam {
        display_name: "Acme".into(),
        owner: Email::parse("alice@acme.com").unwrap(),
    }];
    let opts = BatchOptions::default();
    svc.execute(&team, &Principal::LocalOwner, &create, Some(0), &opts)
        .await
        .unwrap();
    let people: Vec<usize> = (0..PEOPLE).collect();
    for chunk in people.chunks(1_000) {
        let changes: Vec<Change> = chunk
            .iter()
            .map(|i| Change::Invite {
                email: Email::parse(&format!("p{i}@acme.com")).unwrap(),
                name: None,
                roles: [teamform_core::RoleName::parse("viewer").unwrap()].into(),
            })
            .collect();
        svc.execute(&team, &Principal::LocalOwner, &changes, None, &opts)
            .await
            .unwrap();
        clock.advance(chrono::Duration::hours(1));
    }
    (app(AppState::new(svc, Anonymous::LocalOwner)), clock)
}

async fn get(router: &axum::Router, uri: &str) -> (StatusCode, String, String) {
    let req = Request::builder().uri(uri).body(Body::empty()).unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, ct, body)
}

/// Every record a filter lets through, page by page.
async fn all(router: &axum::Router, query: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut uri = format!("/teams/acme/audit?limit={limit}{query}");
        if let Some(c) = &cursor {
            uri.push_str(&format!("&cursor={c}"));
        }
        let (status, _, body) = get(router, &uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        assert!(page["items"].as_array().unwrap().len() <= limit);
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return (out, pages),
        }
    }
}

#[tokio::test]
async fn ten_thousand_records_page_filter_and_export_without_gaps_or_repeats() {
    let (router, _clock) = team().await;
    let (records, pages) = all(&router, "", 333).await;
    assert_eq!(records.len(), PEOPLE + 1);
    assert_eq!(pages, (PEOPLE + 1).div_ceil(333));
    let ids: std::collections::BTreeSet<&str> =
        records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), records.len(), "no repeats");
    let emails: Vec<&str> = records[1..]
        .iter()
        .map(|r| r["change"]["email"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..PEOPLE).map(|i| format!("p{i}@acme.com")).collect();
    assert_eq!(emails, want, "no gaps, in order");

    // Filters: one person, an action, an actor, a time range.
    let (one, _) = all(&router, "&subject=P1234@acme.com", 100).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["change"]["email"], "p1234@acme.com");
    let (created, _) = all(&router, "&action=create_team", 100).await;
    assert_eq!(created.len(), 1);
    let (by_owner, _) = all(&router, "&actor=local-owner&action=invite", 1000).await;
    assert_eq!(by_owner.len(), PEOPLE);
    let (none, _) = all(&router, "&actor=user:nobody@acme.com", 1000).await;
    assert!(none.is_empty());
    // Batch k (0-based) was written at hour k: hours 2 and 3 are batches 2 and 3.
    let (window, _) = all(
        &router,
        "&since=2026-11-01T02:00:00Z&until=2026-11-01T04:00:00Z",
        250,
    )
    .await;
    assert_eq!(window.len(), 2_000);
    assert_eq!(window[0]["change"]["email"], "p2000@acme.com");
    assert_eq!(window[1_999]["change"]["email"], "p3999@acme.com");

    // Exports: every record of the filter, once.
    let (status, ct, jsonl) = get(
        &router,
        "/teams/acme/audit/export?format=jsonl&action=invite",
    )
    .await;
    assert_eq!((status, ct.as_str()), (StatusCode::OK, "application/jsonl"));
    let lines: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), PEOPLE);
    assert_eq!(lines, records[1..].to_vec());
    let (status, ct, csv_text) = get(&router, "/teams/acme/audit/export?format=csv").await;
    assert_eq!(
        (status, ct.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    assert_eq!(
        reader.headers().unwrap().iter().collect::<Vec<_>>(),
        teamform_functions::service::audit::CSV_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), PEOPLE + 1);
    assert_eq!(&rows[1235][5], "p1234@acme.com");
    assert_eq!(&rows[1235][0], records[1235]["id"].as_str().unwrap());

    // Bad parameters are problems, not silence.
    for bad in [
        "format=xml",
        "format=csv&since=yesterday",
        "format=csv&colour=red",
    ] {
        let (status, ct, _) = get(&router, &format!("/teams/acme/audit/export?{bad}")).await;
        assert_eq!(
            (status, ct.as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "application/problem+json"),
            "{bad}"
        );
    }
}
