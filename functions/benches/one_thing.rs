//! What a one-thing request costs as the team grows: invite one person, set
//! one person's roles, read the settings, on teams of 100 and of 10,000
//! people, side by side in one run, through the router over SQLite. The goal:
//! the large team within 1.3x of the small one.
//!
//! A team is built once per size outside the timed loop. An invitation and
//! its revocation are timed together as one round trip, so the team stays
//! the same size however many iterations run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step fails the bench

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

const SIZES: &[usize] = &[100, 10_000];

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

async fn team_of(size: usize, dir: &std::path::Path) -> Router {
    let store = SqliteStore::open(&dir.join(format!("bench-{size}.db"))).expect("store");
    let svc = Arc::new(Service::new(
        Arc::new(store),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "http://bench".into(),
    ));
    let team = TeamId::parse("bench").expect("team");
    let mut batch = vec![Change::CreateTeam {
        display_name: "Bench".into(),
        owner: email("owner@bench.io"),
    }];
    for i in 0..size {
        batch.push(Change::Invite {
            email: email(&format!("p{i:06}@bench.io")),
            name: None,
            roles: [RoleName::parse("viewer").expect("role")].into(),
        });
    }
    for part in batch.chunks(2000) {
        svc.execute(
            &team,
            &Principal::LocalOwner,
            part,
            None,
            &BatchOptions::default(),
        )
        .await
        .expect("setup");
    }
    app(AppState::new(svc, Anonymous::LocalOwner))
}

async fn call(router: &Router, method: &str, uri: &str, body: Option<Value>) {
    let req = Request::builder().method(method).uri(uri);
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("answer");
    assert!(
        res.status().is_success(),
        "{method} {uri}: {}",
        res.status()
    );
    let _ = res.into_body().collect().await;
}

fn one_thing(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let teams: Vec<(usize, Router)> = SIZES
        .iter()
        .map(|&n| (n, rt.block_on(team_of(n, dir.path()))))
        .collect();
    let mut group = c.benchmark_group("one_thing");
    group.sample_size(30);
    for (size, router) in &teams {
        group.bench_with_input(
            BenchmarkId::new("invite_and_revoke", size),
            router,
            |b, r| {
                b.iter(|| {
                    rt.block_on(async {
                        call(
                            r,
                            "POST",
                            "/teams/bench/invitations",
                            Some(json!({"email": "new@bench.io", "roles": ["viewer"]})),
                        )
                        .await;
                        call(r, "DELETE", "/teams/bench/invitations/new@bench.io", None).await;
                    })
                });
            },
        );
        let mut flip = false;
        group.bench_with_input(BenchmarkId::new("set_roles", size), router, |b, r| {
            b.iter(|| {
                flip = !flip;
                let role = if flip { "developer" } else { "viewer" };
                rt.block_on(call(
                    r,
                    "PUT",
                    "/teams/bench/members/p000042@bench.io/roles",
                    Some(json!({ "roles": [role] })),
                ))
            });
        });
        group.bench_with_input(BenchmarkId::new("get_settings", size), router, |b, r| {
            b.iter(|| rt.block_on(call(r, "GET", "/teams/bench/settings", None)));
        });
    }
    group.finish();
}

criterion_group!(benches, one_thing);
criterion_main!(benches);
