//! The escalation rule as a property: for random sequences of requests by
//! random non-owner principals (people and API keys, holding built-in and
//! custom roles and direct permissions), after every request
//!
//! - every permission anyone gained (a member, a pending invitation, an API
//!   key, through a new role, a role change or a widened custom role) was
//!   held by the principal whose request it was;
//! - the owner is still the owner, and the team's settings changed only if
//!   the actor held the permission each changed setting needs.
//!
//! Requests go through the HTTP router, so every path (one-thing routes and
//! the reconciler's batch) is under the rule.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{Value, json};
use teamform_core::{Catalog, Email, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::Service;
use teamform_functions::store::sqlite::SqliteStore;
use tower::ServiceExt;

const SYSTEM_ROLES: &[&str] = &[
    "admin",
    "developer",
    "modifier",
    "viewer",
    "billing",
    "billing_viewer",
];
const CUSTOM: &[&str] = &["c0", "c1", "c2"];
const PEOPLE: &[&str] = &["p0@x.io", "p1@x.io", "p2@x.io", "p3@x.io"];

fn catalog_permissions() -> Vec<String> {
    Catalog::standard()
        .permissions
        .iter()
        .map(|p| p.id.as_str().to_owned())
        .collect()
}

fn roles() -> impl Strategy<Value = Vec<&'static str>> {
    let all: Vec<&'static str> = SYSTEM_ROLES.iter().chain(CUSTOM).copied().collect();
    proptest::sample::subsequence(all, 1..=2)
}

fn permissions() -> impl Strategy<Value = Vec<String>> {
    let all = catalog_permissions();
    let n = all.len();
    proptest::sample::subsequence(all, 0..=n)
}

#[derive(Debug, Clone)]
enum Op {
    Invite {
        who: usize,
        roles: Vec<&'static str>,
    },
    SetRoles {
        who: usize,
        roles: Vec<&'static str>,
    },
    PutRole {
        role: usize,
        permissions: Vec<String>,
    },
    CreateKey {
        roles: Vec<&'static str>,
        permissions: Vec<String>,
        all: bool,
    },
    Settings {
        require_2fa: bool,
        ttl: u32,
    },
    LyingSettings {
        require_2fa: bool,
    },
    Remove {
        who: usize,
    },
    Transfer {
        who: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (4..20usize, roles()).prop_map(|(who, roles)| Op::Invite { who, roles }),
        (0..PEOPLE.len(), roles()).prop_map(|(who, roles)| Op::SetRoles { who, roles }),
        (0..CUSTOM.len(), permissions())
            .prop_map(|(role, permissions)| Op::PutRole { role, permissions }),
        (
            proptest::sample::subsequence(SYSTEM_ROLES.to_vec(), 0..=1),
            permissions(),
            any::<bool>()
        )
            .prop_map(|(roles, permissions, all)| Op::CreateKey {
                roles,
                permissions,
                all
            }),
        (any::<bool>(), 1..30u32).prop_map(|(require_2fa, ttl)| Op::Settings { require_2fa, ttl }),
        any::<bool>().prop_map(|require_2fa| Op::LyingSettings { require_2fa }),
        (0..PEOPLE.len()).prop_map(|who| Op::Remove { who }),
        (0..PEOPLE.len()).prop_map(|who| Op::Transfer { who }),
    ]
}

#[derive(Debug, Clone)]
struct Setup {
    custom: Vec<Vec<String>>,
    people: Vec<Vec<&'static str>>,
    keys: Vec<(Vec<&'static str>, Vec<String>)>,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        proptest::collection::vec(permissions(), CUSTOM.len()),
        proptest::collection::vec(roles(), PEOPLE.len()),
        proptest::collection::vec(
            (
                proptest::sample::subsequence(SYSTEM_ROLES.to_vec(), 1..=1),
                permissions(),
            ),
            2,
        ),
    )
        .prop_map(|(custom, people, keys)| Setup {
            custom,
            people,
            keys,
        })
}

struct World {
    router: Router,
    svc: Arc<Service>,
    owner: String,
}

async fn call(
    router: &Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("answer");
    let status = res.status().as_u16();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

impl World {
    /// A personal token; the owner's carries a second factor, so it can
    /// observe a team that requires one.
    async fn token(&self, email: &str) -> String {
        let p = Principal::Person {
            email: Email::parse(email).expect("email"),
            two_factor: email == "owner@x.io",
        };
        self.svc
            .create_token(&p, "t", None)
            .await
            .expect("token")
            .secret
    }

    /// Every holder of permissions in the team: members, pending invitations
    /// and API keys, with what each holds; plus the owner and settings.
    async fn holdings(&self) -> (BTreeMap<String, BTreeSet<String>>, Value) {
        let catalog = Catalog::standard();
        let (_, state) = call(&self.router, "GET", "/teams/t1/state", &self.owner, None).await;
        let custom: BTreeMap<teamform_core::RoleName, teamform_core::model::CustomRole> =
            serde_json::from_value(state["roles"].clone()).unwrap_or_default();
        let of = |roles: &Value| -> BTreeSet<String> {
            let roles: BTreeSet<teamform_core::RoleName> =
                serde_json::from_value(roles.clone()).unwrap_or_default();
            catalog
                .permissions_of(&roles, &custom)
                .into_iter()
                .map(|p| p.as_str().to_owned())
                .collect()
        };
        let mut out = BTreeMap::new();
        for (section, prefix) in [("members", "member:"), ("invitations", "invitation:")] {
            if let Some(map) = state[section].as_object() {
                for (email, entry) in map {
                    out.insert(format!("{prefix}{email}"), of(&entry["roles"]));
                }
            }
        }
        let (_, keys) = call(&self.router, "GET", "/teams/t1/api-keys", &self.owner, None).await;
        for key in keys["items"].as_array().into_iter().flatten() {
            let mut held = of(&key["roles"]);
            for p in key["permissions"].as_array().into_iter().flatten() {
                held.insert(p.as_str().unwrap_or_default().to_owned());
            }
            out.insert(
                format!("key:{}", key["id"].as_str().unwrap_or_default()),
                held,
            );
        }
        (out, state)
    }
}

/// A principal that acts: its token and its id in `holdings`.
#[derive(Debug, Clone)]
struct Actor {
    token: String,
    id: String,
}

async fn build(setup: &Setup) -> (World, Vec<Actor>) {
    let svc = Arc::new(Service::new(
        Arc::new(SqliteStore::in_memory().expect("store")),
        Arc::new(Catalog::standard()),
        Arc::new(ManualClock::new(
            "2026-11-28T12:00:00Z".parse().expect("time"),
        )),
        "http://test".into(),
    ));
    let router = app(AppState::new(svc.clone(), Anonymous::Refused));
    let mut w = World {
        router,
        svc,
        owner: String::new(),
    };
    w.owner = w.token("owner@x.io").await;
    let r = &w.router;
    let (s, _) = call(
        r,
        "POST",
        "/teams",
        &w.owner,
        Some(json!({"team": "t1", "owner": "owner@x.io"})),
    )
    .await;
    assert_eq!(s, 201);
    for (name, perms) in CUSTOM.iter().zip(&setup.custom) {
        let (s, b) = call(
            r,
            "PUT",
            &format!("/teams/t1/roles/{name}"),
            &w.owner,
            Some(json!({"permissions": perms})),
        )
        .await;
        assert_eq!(s, 200, "{b:#}");
    }
    let mut actors = Vec::new();
    let team = TeamId::parse("t1").expect("team");
    for (email, roles) in PEOPLE.iter().zip(&setup.people) {
        let (s, b) = call(
            r,
            "POST",
            "/teams/t1/invitations",
            &w.owner,
            Some(json!({"email": email, "roles": roles})),
        )
        .await;
        assert_eq!(s, 201, "{b:#}");
        let mails = w.svc.outbox(&team).await.expect("outbox");
        let mail = mails.iter().rev().find(|m| m.to == *email).expect("mail");
        let link = mail.link_secret().expect("link").to_owned();
        let token = w.token(email).await;
        let (s, b) = call(
            r,
            "POST",
            "/invitations/accept",
            &token,
            Some(json!({"token": link})),
        )
        .await;
        assert_eq!(s, 200, "{b:#}");
        actors.push(Actor {
            token,
            id: format!("member:{email}"),
        });
    }
    for (roles, perms) in &setup.keys {
        let (s, b) = call(
            r,
            "POST",
            "/teams/t1/api-keys",
            &w.owner,
            Some(json!({"name": "k", "roles": roles, "permissions": perms})),
        )
        .await;
        assert_eq!(s, 201, "{b:#}");
        actors.push(Actor {
            token: b["secret"].as_str().expect("secret").to_owned(),
            id: format!("key:{}", b["id"].as_str().expect("id")),
        });
    }
    (w, actors)
}

/// Runs one request of `op` as `actor`; returns a key it created, if any.
async fn act(w: &World, actor: &Actor, op: &Op, state: &Value) -> Option<Actor> {
    let r = &w.router;
    let t = &actor.token;
    match op {
        Op::Invite { who, roles } => {
            call(
                r,
                "POST",
                "/teams/t1/invitations",
                t,
                Some(json!({"email": format!("n{who}@x.io"), "roles": roles})),
            )
            .await;
        }
        Op::SetRoles { who, roles } => {
            call(
                r,
                "PUT",
                &format!("/teams/t1/members/{}/roles", PEOPLE[*who]),
                t,
                Some(json!({"roles": roles})),
            )
            .await;
        }
        Op::PutRole { role, permissions } => {
            call(
                r,
                "PUT",
                &format!("/teams/t1/roles/{}", CUSTOM[*role]),
                t,
                Some(json!({"permissions": permissions})),
            )
            .await;
        }
        Op::CreateKey {
            roles,
            permissions,
            all,
        } => {
            let mut permissions = permissions.clone();
            if *all {
                permissions.push("*".into());
            }
            let (s, b) = call(
                r,
                "POST",
                "/teams/t1/api-keys",
                t,
                Some(json!({"name": "made", "roles": roles, "permissions": permissions})),
            )
            .await;
            if s == 201 {
                return Some(Actor {
                    token: b["secret"].as_str().unwrap_or_default().to_owned(),
                    id: format!("key:{}", b["id"].as_str().unwrap_or_default()),
                });
            }
        }
        Op::Settings { require_2fa, ttl } => {
            call(
                r,
                "PUT",
                "/teams/t1/settings",
                t,
                Some(json!({"require_2fa": require_2fa, "invitation_ttl_days": ttl})),
            )
            .await;
        }
        Op::LyingSettings { require_2fa } => {
            let mut from = state["settings"].clone();
            from["require_2fa"] = json!(!require_2fa);
            let mut to = state["settings"].clone();
            to["require_2fa"] = json!(!require_2fa);
            let _ = require_2fa;
            call(
                r,
                "POST",
                "/teams/t1/changes",
                t,
                Some(json!({"changes": [{"op": "update_settings", "from": from, "to": to}]})),
            )
            .await;
        }
        Op::Remove { who } => {
            call(
                r,
                "DELETE",
                &format!("/teams/t1/members/{}", PEOPLE[*who]),
                t,
                None,
            )
            .await;
        }
        Op::Transfer { who } => {
            call(
                r,
                "POST",
                "/teams/t1/ownership-transfer",
                t,
                Some(json!({"to": PEOPLE[*who]})),
            )
            .await;
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn nobody_gains_a_permission_its_granter_did_not_hold(
        setup in setup(),
        steps in proptest::collection::vec((any::<proptest::sample::Index>(), op()), 1..12),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let (w, mut actors) = build(&setup).await;
            for (pick, op) in &steps {
                let actor = pick.get(&actors).clone();
                let (before, state) = w.holdings().await;
                // A removed member holds nothing and can do nothing.
                let held = before.get(&actor.id).cloned().unwrap_or_default();
                let made = act(&w, &actor, op, &state).await;
                let (after, new_state) = w.holdings().await;
                for (who, perms) in &after {
                    let had = before.get(who).cloned().unwrap_or_default();
                    let gained: BTreeSet<_> = perms.difference(&had).filter(|p| !held.contains(*p)).collect();
                    assert!(gained.is_empty(), "{op:?} by {} (holding {held:?}) gave {who} {gained:?}", actor.id);
                }
                assert_eq!(new_state["owner"], "owner@x.io", "{op:?} by {}", actor.id);
                assert!(new_state["transfer"].is_null(), "{op:?} by {} started a transfer", actor.id);
                let (s0, s1) = (&state["settings"], &new_state["settings"]);
                if s0["require_2fa"] != s1["require_2fa"] {
                    assert!(held.contains("team.security.manage"), "{op:?} by {} changed 2FA", actor.id);
                }
                if s0["invitation_ttl_days"] != s1["invitation_ttl_days"] {
                    assert!(held.contains("team.settings.manage"), "{op:?} by {} changed settings", actor.id);
                }
                actors.extend(made);
            }
        });
    }
}
