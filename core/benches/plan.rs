//! Planning large teams. The budget: a team of 100k members plans in under
//! 200 ms on one core, and the time grows linearly with members.
//!
//! Each team has a realistic mix of drift: about 2 % of members change roles,
//! 1 % are new (invited), 1 % are removed, some invitations are pending and
//! some expired, and a few custom roles are created, changed and deleted.
//! Spec and live state are built outside the timed loop.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{DateTime, Duration};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use teamform_core::model::{CustomRole, Invitation, Member, Roles, Settings};
use teamform_core::spec::{MemberSpec, Policy};
use teamform_core::{
    Catalog, Email, Permission, RoleName, TeamId, TeamSpec, TeamState, Timestamp, plan,
};

const SYSTEM_ROLES: &[&str] = &[
    "admin",
    "developer",
    "modifier",
    "viewer",
    "billing",
    "billing_viewer",
];

fn now() -> Timestamp {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

fn email(i: usize) -> Email {
    Email::parse(&format!("person{i}@bench.example")).unwrap_or_else(|e| panic!("{e}"))
}

fn role(name: &str) -> RoleName {
    RoleName::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

fn custom_role(permissions: &[&str]) -> CustomRole {
    CustomRole {
        description: "bench".into(),
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
    }
}

/// A deterministic spread over `0..n`, so that drift is not clustered by email.
fn hash(i: usize) -> usize {
    i.wrapping_mul(2_654_435_761) % 1000
}

/// The roles person `i` holds live: one or two system roles, sometimes a custom one.
fn live_roles(i: usize) -> Roles {
    let mut roles = Roles::new();
    roles.insert(role(SYSTEM_ROLES[i % SYSTEM_ROLES.len()]));
    if i.is_multiple_of(7) {
        roles.insert(role(SYSTEM_ROLES[(i / 7) % SYSTEM_ROLES.len()]));
    }
    if i.is_multiple_of(50) {
        roles.insert(role(["release", "on-call"][(i / 50) % 2]));
    }
    roles
}

/// A team of `n` members (the owner included) and a spec that differs from it
/// by the usual amount.
fn team(n: usize) -> (TeamSpec, TeamState) {
    let now = now();
    let team = TeamId::parse("bench").unwrap_or_else(|e| panic!("{e}"));
    let owner = email(0);
    let mut live = TeamState::new(
        team.clone(),
        "Bench".into(),
        owner.clone(),
        now - Duration::days(900),
    );
    live.version = 42;
    live.roles.insert(
        role("release"),
        custom_role(&["apps.read", "apps.config.write"]),
    );
    live.roles
        .insert(role("on-call"), custom_role(&["apps.read"]));
    live.roles
        .insert(role("legacy"), custom_role(&["billing.read"]));
    let mut members = BTreeMap::new();

    // Live members 1..n.
    for i in 1..n {
        let e = email(i);
        let roles = live_roles(i);
        live.members.insert(
            e.clone(),
            Member {
                email: e.clone(),
                name: None,
                roles: roles.clone(),
                joined_at: now,
                two_factor: i % 3 == 0,
            },
        );
        let h = hash(i);
        let desired = match h {
            // ~1 %: removed (not in the spec).
            0..10 => continue,
            // ~2 %: other roles.
            10..30 => [role(SYSTEM_ROLES[(i + 1) % SYSTEM_ROLES.len()])].into(),
            _ => roles,
        };
        members.insert(
            e.clone(),
            MemberSpec {
                email: e,
                name: None,
                roles: desired,
            },
        );
    }
    // Pending invitations: 3 % of the team, a third of them expired.
    let invited = n * 3 / 100;
    for k in 0..invited {
        let i = n + k;
        let e = email(i);
        let created_at = now - Duration::days(if k % 3 == 0 { 20 } else { 2 });
        let roles: Roles = [role("viewer")].into();
        live.invitations.insert(
            e.clone(),
            Invitation {
                email: e.clone(),
                name: Some(format!("Person {i}")),
                roles: roles.clone(),
                created_at,
                expires_at: created_at + Duration::days(15),
                invited_by: Some(owner.to_string()),
                link: String::new(),
            },
        );
        members.insert(
            e.clone(),
            MemberSpec {
                email: e,
                name: None,
                roles,
            },
        );
    }
    // ~1 %: new people to invite.
    for k in 0..n / 100 {
        let e = email(n + invited + k);
        members.insert(
            e.clone(),
            MemberSpec {
                email: e,
                name: Some("New".into()),
                roles: [role("developer")].into(),
            },
        );
    }

    let mut roles = live.roles.clone();
    roles.remove(&role("legacy"));
    roles.insert(
        role("on-call"),
        custom_role(&["apps.read", "apps.config.read"]),
    );
    roles.insert(
        role("auditor"),
        custom_role(&["team.audit.read", "team.members.read"]),
    );
    let spec = TeamSpec {
        team,
        display_name: Some("Bench".into()),
        owner,
        settings: Some(Settings::default()),
        roles: Some(roles),
        members,
        policy: Policy {
            unmanaged: Default::default(),
            max_removals: "5%".parse().ok(),
        },
    };
    (spec, live)
}

fn bench_plan(c: &mut Criterion) {
    let catalog = Catalog::standard();
    let now = now();
    let mut group = c.benchmark_group("plan");
    for n in [1_000usize, 10_000, 100_000] {
        let (spec, live) = team(n);
        let planned = plan(&spec, &live, &catalog, now);
        assert!(planned.refusal().is_none(), "{:?}", planned.refusal());
        let counts = planned.counts();
        eprintln!(
            "plan/{n}: {} changes ({} add, {} change, {} remove)",
            planned.changes.len(),
            counts.add,
            counts.change,
            counts.remove
        );
        if n >= 10_000 {
            group.sample_size(10);
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(n),
            &(spec, live),
            |b, (spec, live)| b.iter(|| plan(black_box(spec), black_box(live), &catalog, now)),
        );
    }
    group.finish();
}

/// The floor under any planner: walk the spec and the live members side by
/// side and compare roles, nothing else. Where `plan` and this grow alike from
/// 10k to 100k, the growth is the working set leaving the CPU caches, not the
/// algorithm.
fn bench_walk(c: &mut Criterion) {
    let mut group = c.benchmark_group("walk");
    for n in [1_000usize, 10_000, 100_000] {
        let (spec, live) = team(n);
        if n >= 10_000 {
            group.sample_size(10);
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(n),
            &(spec, live),
            |b, (spec, live)| {
                b.iter(|| {
                    let mut live_members = live.members.iter().peekable();
                    let mut differ = 0usize;
                    for (email, want) in &black_box(spec).members {
                        while live_members.next_if(|(k, _)| *k < email).is_some() {}
                        if let Some((_, m)) = live_members.next_if(|(k, _)| *k == email) {
                            differ += usize::from(m.roles != want.roles);
                        }
                    }
                    differ
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_plan, bench_walk);
criterion_main!(benches);
