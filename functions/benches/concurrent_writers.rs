//! Sixteen writers at once: each sends `POST /teams/{team}/invitations` for
//! people of its own, over real HTTP to the router on a loopback socket over
//! a SQLite file, for a fixed time. Prints successes, 409s and other
//! answers, throughput and latency percentiles. The goal: zero 409s (a
//! one-person write that lost a race is retried inside the service) and at
//! least 10x the 3.6 invitations/s measured when every write bounced.
//!
//! `cargo bench -p teamform-functions --bench concurrent_writers` (set
//! `WRITERS` and `SECONDS` to change the load; defaults 16 and 10).
#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step fails the bench

use std::sync::Arc;
use std::time::{Duration, Instant};

use teamform_core::{Catalog, Change, Email, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::{BatchOptions, Service};
use teamform_functions::store::sqlite::SqliteStore;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let writers = env_or("WRITERS", 16);
    let seconds = env_or("SECONDS", 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db")).expect("store");
    let svc = Arc::new(
        Service::new(
            Arc::new(store),
            Arc::new(Catalog::standard()),
            Arc::new(SystemClock),
            "http://bench".into(),
        )
        .with_local_owner_tokens(),
    );
    svc.execute(
        &TeamId::parse("bench").expect("team"),
        &Principal::LocalOwner,
        &[Change::CreateTeam {
            display_name: "Bench".into(),
            owner: Email::parse("owner@bench.io").expect("email"),
        }],
        Some(0),
        &BatchOptions::default(),
    )
    .await
    .expect("team");
    let token = svc
        .create_token(&Principal::LocalOwner, "bench", None)
        .await
        .expect("token")
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = app(AppState::new(svc, Anonymous::Refused));
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut ok, mut conflict, mut other) = (0u64, 0u64, 0u64);
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < deadline {
                let start = Instant::now();
                let res = http
                    .post(format!("http://{addr}/teams/bench/invitations"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({
                        "email": format!("w{w}-{i}@bench.io"),
                        "roles": ["viewer"],
                    }))
                    .send()
                    .await;
                latencies.push(start.elapsed());
                i += 1;
                match res {
                    Ok(r) if r.status().as_u16() == 201 => ok += 1,
                    Ok(r) if r.status().as_u16() == 409 => {
                        if conflict == 0 {
                            eprintln!("409: {}", r.text().await.unwrap_or_default());
                        }
                        conflict += 1;
                    }
                    _ => other += 1,
                }
            }
            (ok, conflict, other, latencies)
        }));
    }
    let (mut ok, mut conflict, mut other) = (0, 0, 0);
    let mut latencies = Vec::new();
    for t in tasks {
        let (o, c, x, l) = t.await.expect("writer");
        ok += o;
        conflict += c;
        other += x;
        latencies.extend(l);
    }
    latencies.sort();
    let pct = |p: usize| {
        latencies
            .get(latencies.len().saturating_sub(1) * p / 100)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{writers} writers, {seconds} s: {ok} invited, {conflict} answered 409, {other} other; \
         {:.1} invitations/s; latency p50 {:?}, p99 {:?}",
        ok as f64 / seconds as f64,
        pct(50),
        pct(99),
    );
}
