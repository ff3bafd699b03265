//! SCIM 2.0 provisioning over real HTTP: the sequences Okta and Entra ID
//! document, CRUD, filters and paging, groups as roles, the owner's
//! protection, and the token's reach (its team's /scim routes only).
//!
//! The world: team `t1` owned by alice, team `t2` owned by bob, each with a
//! SCIM token made by its owner (default role `viewer`), over SQLite,
//! served on a loopback socket.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};
use teamform_core::{Catalog, Email, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::ManualClock;
use teamform_functions::http::{Anonymous, AppState, app};
use teamform_functions::service::Service;
use teamform_functions::store::sqlite::SqliteStore;

const SCIM_JSON: &str = "application/scim+json";
const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

struct World {
    base: String,
    http: reqwest::Client,
    svc: Arc<Service>,
    alice: String,
    bob: String,
    /// t1's SCIM token and its id.
    scim: String,
    scim_id: String,
    /// t2's SCIM token.
    scim2: String,
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

impl Reply {
    #[track_caller]
    fn is(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        &self.body
    }

    /// A SCIM error with this status and scimType.
    #[track_caller]
    fn scim_error(&self, status: u16, scim_type: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "{:#}", self.body);
        assert_eq!(self.content_type, SCIM_JSON, "{:#}", self.body);
        assert_eq!(self.body["schemas"], json!([ERROR_URN]), "{:#}", self.body);
        assert_eq!(
            self.body["status"],
            json!(status.to_string()),
            "{:#}",
            self.body
        );
        assert_eq!(self.body["scimType"].as_str(), scim_type, "{:#}", self.body);
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).expect("email")
}

fn t1() -> TeamId {
    TeamId::parse("t1").expect("team")
}

impl World {
    async fn new() -> World {
        let store = Arc::new(SqliteStore::in_memory().expect("store"));
        let clock = Arc::new(ManualClock::new(
            "2026-11-28T12:00:00Z".parse().expect("time"),
        ));
        let svc = Arc::new(Service::new(
            store,
            Arc::new(Catalog::standard()),
            clock,
            "http://test".into(),
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = app(AppState::new(svc.clone(), Anonymous::Refused));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let mut w = World {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            svc,
            alice: String::new(),
            bob: String::new(),
            scim: String::new(),
            scim_id: String::new(),
            scim2: String::new(),
        };
        w.alice = w.person("alice@x.io").await;
        w.bob = w.person("bob@y.io").await;
        for (team, owner, token) in [("t1", "alice@x.io", &w.alice), ("t2", "bob@y.io", &w.bob)] {
            w.call(
                "POST",
                "/teams",
                token,
                Some(json!({"team": team, "owner": owner})),
            )
            .await
            .is(201);
        }
        let made = w.token("t1", &w.alice.clone()).await;
        w.scim = made.0;
        w.scim_id = made.1;
        w.scim2 = w.token("t2", &w.bob.clone()).await.0;
        w
    }

    async fn person(&self, who: &str) -> String {
        let p = Principal::Person {
            email: email(who),
            two_factor: false,
        };
        self.svc
            .create_token(&p, "test", None)
            .await
            .expect("token")
            .secret
    }

    /// A SCIM token of `team` made by `by`: (secret, id).
    async fn token(&self, team: &str, by: &str) -> (String, String) {
        let r = self
            .call(
                "POST",
                &format!("/teams/{team}/scim-tokens"),
                by,
                Some(json!({"name": "idp", "default_role": "viewer"})),
            )
            .await;
        let body = r.is(201);
        let secret = body["secret"].as_str().expect("secret").to_owned();
        assert!(secret.starts_with("tfs_"), "{secret}");
        (secret, body["id"].as_str().expect("id").to_owned())
    }

    async fn call(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            // As identity providers send it: SCIM's media type.
            req = req.header("content-type", SCIM_JSON).body(b.to_string());
        }
        let res = req.send().await.expect("the server answers");
        let status = res.status();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = res.bytes().await.expect("body");
        Reply {
            status,
            content_type,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn scim(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.call(method, &format!("/scim/v2/t1{path}"), &self.scim, body)
            .await
    }

    async fn state(&self) -> Value {
        self.call("GET", "/teams/t1/state", &self.alice, None)
            .await
            .is(200)
            .clone()
    }

    /// The roles of a person's invitation or membership in t1, if any.
    async fn roles_of(&self, who: &str) -> Option<Vec<String>> {
        let state = self.state().await;
        for kind in ["members", "invitations"] {
            if let Some(p) = state[kind].get(who) {
                return Some(
                    p["roles"]
                        .as_array()
                        .expect("roles")
                        .iter()
                        .map(|r| r.as_str().expect("role").to_owned())
                        .collect(),
                );
            }
        }
        None
    }

    async fn create(&self, user_name: &str) -> String {
        let r = self
            .scim(
                "POST",
                "/Users",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": user_name,
                    "name": {"givenName": "Pat", "familyName": "Lee"},
                    "emails": [{"value": user_name, "type": "work", "primary": true}],
                    "active": true,
                })),
            )
            .await;
        r.is(201)["id"].as_str().expect("id").to_owned()
    }

    async fn audit_actions(&self) -> Vec<(String, String)> {
        let r = self
            .call("GET", "/teams/t1/audit?limit=1000", &self.alice, None)
            .await;
        r.is(200)["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| {
                (
                    e["actor"].as_str().unwrap_or("").to_owned(),
                    e["action"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }
}

fn deactivate_okta() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": {"active": false}}],
    })
}

#[tokio::test]
async fn okta_sequence_finds_nobody_creates_then_deactivates_and_reactivates() {
    let w = World::new().await;
    // Okta looks the person up first.
    let r = w
        .scim(
            "GET",
            "/Users?filter=userName%20eq%20%22pat%40x.io%22&startIndex=1&count=100",
            None,
        )
        .await;
    assert_eq!(r.content_type, SCIM_JSON);
    let body = r.is(200);
    assert_eq!(body["totalResults"], 0);
    assert_eq!(body["Resources"], json!([]));
    assert_eq!(
        body["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    // ... creates them: an invitation with the token's default role.
    let r = w
        .scim(
            "POST",
            "/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "pat@x.io",
                "name": {"givenName": "Pat", "familyName": "Lee"},
                "emails": [{"primary": true, "value": "pat@x.io", "type": "work"}],
                "displayName": "Pat Lee",
                "locale": "en-US",
                "externalId": "00u1",
                "groups": [],
                "password": "ignored",
                "active": true,
            })),
        )
        .await;
    let user = r.is(201).clone();
    let id = user["id"].as_str().expect("id").to_owned();
    assert_ne!(id, "pat@x.io", "the id is opaque");
    assert_eq!(user["userName"], "pat@x.io");
    assert_eq!(user["externalId"], "00u1");
    assert_eq!(user["active"], true);
    assert_eq!(user["meta"]["resourceType"], "User");
    assert_eq!(
        user["meta"]["location"],
        format!("http://test/scim/v2/t1/Users/{id}")
    );
    assert!(user["meta"]["version"].as_str().is_some());
    assert_eq!(user["groups"][0]["value"], "viewer");
    assert_eq!(w.roles_of("pat@x.io").await, Some(vec!["viewer".into()]));
    let mails = w.svc.outbox(&t1()).await.expect("outbox");
    assert!(
        mails.iter().any(|m| m.to == "pat@x.io"),
        "an invitation email"
    );
    // The lookup now finds them, by the id Okta keeps.
    let r = w
        .scim(
            "GET",
            "/Users?filter=userName%20eq%20%22PAT%40x.io%22&startIndex=1&count=100",
            None,
        )
        .await;
    assert_eq!(r.is(200)["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], json!(id));
    // Deactivation removes them from the team.
    let r = w
        .scim("PATCH", &format!("/Users/{id}"), Some(deactivate_okta()))
        .await;
    assert_eq!(r.is(200)["active"], false);
    assert_eq!(w.roles_of("pat@x.io").await, None);
    let r = w.scim("GET", &format!("/Users/{id}"), None).await;
    assert_eq!(r.is(200)["active"], false);
    // Reactivation invites them again, with the roles they had.
    let r = w
        .scim(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "replace", "value": {"active": true}}]})),
        )
        .await;
    assert_eq!(r.is(200)["active"], true);
    assert_eq!(w.roles_of("pat@x.io").await, Some(vec!["viewer".into()]));
    // Every step is in the audit trail, naming the token.
    let actor = format!("scim-token:{}", w.scim_id);
    let actions = w.audit_actions().await;
    for action in ["invite", "revoke_invitation"] {
        assert!(
            actions.iter().any(|(a, x)| a == &actor && x == action),
            "{action} by {actor} in {actions:?}"
        );
    }
    assert!(
        actions
            .iter()
            .any(|(a, x)| a == "user:alice@x.io" && x == "create_scim_token"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn entra_sequence_capitalised_ops_paths_and_string_booleans() {
    let w = World::new().await;
    let r = w
        .scim("GET", "/Users?filter=userName+eq+%22kim%40x.io%22", None)
        .await;
    assert_eq!(r.is(200)["totalResults"], 0);
    let id = w.create("kim@x.io").await;
    // Entra's updates: capitalised op names, path forms.
    let r = w
        .scim(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "Replace", "path": "displayName", "value": "Kim Park"},
                    {"op": "Add", "path": "name.givenName", "value": "Kim"},
                    {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "kim@x.io"},
                    {"op": "Add", "path": "externalId", "value": "e-42"},
                ],
            })),
        )
        .await;
    let body = r.is(200).clone();
    assert_eq!(body["displayName"], "Kim Park");
    assert_eq!(body["name"]["givenName"], "Kim");
    assert_eq!(body["externalId"], "e-42");
    let r = w
        .scim("GET", "/Users?filter=externalId%20eq%20%22e-42%22", None)
        .await;
    assert_eq!(r.is(200)["Resources"][0]["id"], json!(id));
    let r = w
        .scim(
            "GET",
            "/Users?filter=emails%5Btype%20eq%20%22work%22%5D.value%20eq%20%22kim%40x.io%22",
            None,
        )
        .await;
    assert_eq!(r.is(200)["totalResults"], 1);
    // Entra disables with a path and the boolean as text.
    let r = w
        .scim(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "Replace", "path": "active", "value": "False"}]})),
        )
        .await;
    assert_eq!(r.is(200)["active"], false);
    assert_eq!(w.roles_of("kim@x.io").await, None);
    let r = w
        .scim(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "Replace", "path": "active", "value": "True"}]})),
        )
        .await;
    assert_eq!(r.is(200)["active"], true);
    assert!(w.roles_of("kim@x.io").await.is_some());
    // A value that is no boolean is refused as such.
    let r = w
        .scim(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "Replace", "path": "active", "value": "maybe"}]})),
        )
        .await;
    r.scim_error(400, Some("invalidValue"));
}

#[tokio::test]
async fn crud_paging_filters_and_refusals() {
    let w = World::new().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(w.create(&format!("u{i}@x.io")).await);
    }
    ids.sort();
    // startIndex is 1-based; pages follow the ids' order.
    let r = w.scim("GET", "/Users?startIndex=2&count=2", None).await;
    let body = r.is(200);
    assert_eq!(body["totalResults"], 5);
    assert_eq!(body["startIndex"], 2);
    assert_eq!(body["itemsPerPage"], 2);
    let got: Vec<&str> = body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[1].as_str(), ids[2].as_str()]);
    let r = w.scim("GET", "/Users?startIndex=5&count=10", None).await;
    assert_eq!(r.is(200)["itemsPerPage"], 1);
    let r = w.scim("GET", "/Users?count=0", None).await;
    assert_eq!(r.is(200)["totalResults"], 5);
    assert_eq!(r.body["Resources"], json!([]));
    // PUT replaces what the provider keeps.
    let r = w
        .scim(
            "PUT",
            &format!("/Users/{}", ids[0]),
            Some(json!({"userName": "renamed", "emails": [{"value": "moved@x.io", "primary": true}], "displayName": "Moved"})),
        )
        .await;
    let body = r.is(200).clone();
    assert_eq!(body["userName"], "renamed");
    assert_eq!(body["displayName"], "Moved");
    assert_eq!(body["id"], json!(ids[0]), "the id survives a new email");
    // The person moved: the old email's invitation is gone, the new one invited.
    let state = w.state().await;
    let invited: Vec<&str> = state["invitations"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert!(invited.contains(&"moved@x.io"), "{invited:?}");
    assert_eq!(invited.len(), 5, "{invited:?}");
    // Uniqueness, filters, unknown ids.
    let r = w
        .scim(
            "POST",
            "/Users",
            Some(json!({"userName": "RENAMED", "emails": [{"value": "z@x.io"}]})),
        )
        .await;
    r.scim_error(409, Some("uniqueness"));
    let r = w
        .scim(
            "POST",
            "/Users",
            Some(json!({"userName": "someone", "emails": [{"value": "moved@x.io"}]})),
        )
        .await;
    r.scim_error(409, Some("uniqueness"));
    // A user without an email is kept, but is nobody in the team.
    let before = w.state().await;
    let r = w
        .scim("POST", "/Users", Some(json!({"userName": "not-an-email"})))
        .await;
    assert_eq!(r.is(201)["userName"], "not-an-email");
    assert!(r.body.get("groups").is_none(), "{:#}", r.body);
    let after = w.state().await;
    assert_eq!(before["invitations"], after["invitations"]);
    assert_eq!(before["members"], after["members"]);
    let r = w
        .scim(
            "POST",
            "/Users",
            Some(json!({"userName": "x", "emails": [{"value": "not an email"}]})),
        )
        .await;
    r.scim_error(400, Some("invalidValue"));
    let r = w
        .scim("GET", "/Users?filter=title%20co%20%22x%22", None)
        .await;
    r.scim_error(400, Some("invalidFilter"));
    let r = w.scim("GET", "/Users/nope", None).await;
    r.scim_error(404, None);
    let r = w.scim("POST", "/Users", None).await;
    r.scim_error(400, Some("invalidSyntax"));
    // DELETE removes the person and the user.
    let r = w.scim("DELETE", &format!("/Users/{}", ids[1]), None).await;
    assert_eq!(r.status.as_u16(), 204);
    w.scim("GET", &format!("/Users/{}", ids[1]), None)
        .await
        .scim_error(404, None);
    let r = w.scim("GET", "/Users", None).await;
    assert_eq!(
        r.is(200)["totalResults"],
        5,
        "four people and the one without an email"
    );
    assert_eq!(w.state().await["invitations"].as_object().unwrap().len(), 4);
    // Discovery answers in SCIM's media type.
    for path in ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"] {
        let r = w.scim("GET", path, None).await;
        r.is(200);
        assert_eq!(r.content_type, SCIM_JSON, "{path}");
    }
}

#[tokio::test]
async fn the_owner_is_never_deprovisioned() {
    let w = World::new().await;
    // The owner, provisioned by the provider, is adopted as they are.
    let id = w.create("alice@x.io").await;
    let r = w
        .scim("PATCH", &format!("/Users/{id}"), Some(deactivate_okta()))
        .await;
    r.scim_error(400, Some("mutability"));
    let r = w.scim("DELETE", &format!("/Users/{id}"), None).await;
    r.scim_error(400, Some("mutability"));
    let r = w
        .scim(
            "PUT",
            &format!("/Users/{id}"),
            Some(json!({"userName": "alice@x.io", "emails": [{"value": "other@x.io", "primary": true}]})),
        )
        .await;
    r.scim_error(400, Some("mutability"));
    let state = w.state().await;
    assert_eq!(state["owner"], "alice@x.io");
    assert!(state["members"].get("alice@x.io").is_some());
}

#[tokio::test]
async fn a_scim_token_opens_only_its_teams_scim_routes() {
    let w = World::new().await;
    // Team t2's token on t1: 401, as for an unknown token.
    let r = w.call("GET", "/scim/v2/t1/Users", &w.scim2, None).await;
    r.scim_error(401, None);
    let r = w
        .call(
            "POST",
            "/scim/v2/t1/Users",
            &w.scim2,
            Some(json!({"userName": "evil@y.io"})),
        )
        .await;
    r.scim_error(401, None);
    assert_eq!(w.roles_of("evil@y.io").await, None);
    // A person's token or an API key does not open SCIM.
    let key = w
        .call(
            "POST",
            "/teams/t1/api-keys",
            &w.alice,
            Some(json!({"name": "k", "permissions": ["*"]})),
        )
        .await;
    let key = key.is(201)["secret"].as_str().unwrap().to_owned();
    for token in [&w.alice, &key] {
        w.call("GET", "/scim/v2/t1/Users", token, None)
            .await
            .scim_error(401, None);
    }
    // A SCIM token does not open the API.
    let r = w.call("GET", "/teams/t1/members", &w.scim, None).await;
    assert_eq!(r.status.as_u16(), 401, "{:#}", r.body);
    let r = w.call("GET", "/teams/t1/state", &w.scim, None).await;
    assert_eq!(r.status.as_u16(), 401, "{:#}", r.body);
    // Only holders of team.scim.manage make tokens: a viewer cannot.
    let id = w.create("vic@x.io").await;
    assert!(!id.is_empty());
    let r = w
        .call(
            "POST",
            "/teams/t1/scim-tokens",
            &w.bob,
            Some(json!({"name": "x", "default_role": "viewer"})),
        )
        .await;
    assert_eq!(
        r.status.as_u16(),
        404,
        "an outsider sees no team: {:#}",
        r.body
    );
    // A key with the viewer role lacks team.scim.manage: 403, nothing made.
    let viewer = w
        .call(
            "POST",
            "/teams/t1/api-keys",
            &w.alice,
            Some(json!({"name": "v", "roles": ["viewer"]})),
        )
        .await;
    let viewer = viewer.is(201)["secret"].as_str().unwrap().to_owned();
    let r = w
        .call(
            "POST",
            "/teams/t1/scim-tokens",
            &viewer,
            Some(json!({"name": "x", "default_role": "viewer"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{:#}", r.body);
    assert_eq!(r.body["code"], "forbidden");
    let listed = w.call("GET", "/teams/t1/scim-tokens", &w.alice, None).await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.is(200)["items"][0]["id"], json!(w.scim_id));
    assert!(listed.body["items"][0].get("secret").is_none());
    assert!(listed.body["items"][0].get("hash").is_none());
    // A revoked token stops at once; the revocation is audited.
    let r = w
        .call(
            "DELETE",
            &format!("/teams/t1/scim-tokens/{}", w.scim_id),
            &w.alice,
            None,
        )
        .await;
    assert_eq!(r.status.as_u16(), 204);
    w.scim("GET", "/Users", None).await.scim_error(401, None);
    let actions = w.audit_actions().await;
    assert!(
        actions
            .iter()
            .any(|(a, x)| a == "user:alice@x.io" && x == "revoke_scim_token"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn groups_are_roles_and_never_grant_ownership() {
    let w = World::new().await;
    let r = w
        .scim("GET", "/Groups?excludedAttributes=members", None)
        .await;
    let names: Vec<&str> = r.is(200)["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"developer") && names.contains(&"admin"),
        "{names:?}"
    );
    assert!(!names.contains(&"owner"), "{names:?}");
    let id = w.create("dev@x.io").await;
    // Joining a group adds the role.
    let r = w
        .scim(
            "PATCH",
            "/Groups/developer",
            Some(
                json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
            ),
        )
        .await;
    assert_eq!(r.is(200)["members"][0]["value"], json!(id));
    assert_eq!(
        w.roles_of("dev@x.io").await,
        Some(vec!["developer".into(), "viewer".into()])
    );
    let r = w.scim("GET", &format!("/Users/{id}"), None).await;
    let groups: Vec<&str> = r.is(200)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value"].as_str().unwrap())
        .collect();
    assert_eq!(groups, vec!["developer", "viewer"]);
    // Leaving both: the default role stays, for a person needs one.
    for group in ["developer", "viewer"] {
        let r = w
            .scim(
                "PATCH",
                &format!("/Groups/{group}"),
                Some(json!({"Operations": [{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]})),
            )
            .await;
        r.is(200);
    }
    assert_eq!(w.roles_of("dev@x.io").await, Some(vec!["viewer".into()]));
    // The owner group takes nobody, whatever the form.
    for body in [
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
        json!({"Operations": [{"op": "replace", "value": {"members": [{"value": id}]}}]}),
    ] {
        w.scim("PATCH", "/Groups/owner", Some(body))
            .await
            .scim_error(400, Some("mutability"));
    }
    w.scim(
        "PUT",
        "/Groups/owner",
        Some(json!({"displayName": "owner", "members": [{"value": id}]})),
    )
    .await
    .scim_error(400, Some("mutability"));
    assert_eq!(w.state().await["owner"], "alice@x.io");
    assert_eq!(w.roles_of("dev@x.io").await, Some(vec!["viewer".into()]));
    // A token made by an admin grants no more than the admin holds:
    // `billing` carries permissions admins lack.
    let adam = w.joined("adam@x.io", &["admin"]).await;
    let (admin_scim, _) = w.token("t1", &adam).await;
    let r = w
        .call(
            "PATCH",
            "/scim/v2/t1/Groups/billing",
            &admin_scim,
            Some(
                json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
            ),
        )
        .await;
    r.scim_error(403, None);
    assert_eq!(w.roles_of("dev@x.io").await, Some(vec!["viewer".into()]));
}

#[tokio::test]
async fn unmanaged_ignore_leaves_provisioned_people_alone() {
    let w = World::new().await;
    w.create("prov@x.io").await;
    let catalog = Catalog::standard();
    let spec = teamform_core::spec::TeamSpec::parse(
        "team.yaml",
        "version: 1\nteam: t1\nowner: alice@x.io\nmembers: []\npolicy:\n  unmanaged: ignore\n",
        &catalog,
    )
    .expect("spec");
    let live = w.svc.load(&t1()).await.unwrap().unwrap();
    assert!(live.invitations.contains_key(&email("prov@x.io")));
    let now = "2026-11-28T12:00:00Z".parse().unwrap();
    let plan = teamform_core::plan::plan(&spec, &live, &catalog, now);
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    // Under `remove`, the same person would be revoked: the test can fail.
    let strict = teamform_core::spec::TeamSpec::parse(
        "team.yaml",
        "version: 1\nteam: t1\nowner: alice@x.io\nmembers: []\n",
        &catalog,
    )
    .expect("spec");
    let plan = teamform_core::plan::plan(&strict, &live, &catalog, now);
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
}

#[tokio::test]
async fn groups_made_by_scim_are_custom_roles_and_deleting_one_frees_its_holders() {
    let w = World::new().await;
    let id = w.create("ann@x.io").await;
    let r = w
        .scim(
            "POST",
            "/Groups",
            Some(json!({"displayName": "Release Managers", "externalId": "g-1", "members": [{"value": id}]})),
        )
        .await;
    let g = r.is(201).clone();
    assert_eq!(g["id"], "release-managers");
    assert_eq!(g["displayName"], "Release Managers");
    assert_eq!(g["externalId"], "g-1");
    assert_eq!(g["members"][0]["value"], json!(id));
    assert!(
        w.state().await["roles"].get("release-managers").is_some(),
        "a custom role"
    );
    assert_eq!(
        w.roles_of("ann@x.io").await,
        Some(vec!["release-managers".into(), "viewer".into()])
    );
    // A second group of that name is refused.
    w.scim(
        "POST",
        "/Groups",
        Some(json!({"displayName": "release-managers"})),
    )
    .await
    .scim_error(409, Some("uniqueness"));
    // attributes / excludedAttributes shape the answer.
    let r = w
        .scim(
            "GET",
            "/Groups/release-managers?attributes=displayName",
            None,
        )
        .await;
    let body = r.is(200);
    assert_eq!(body["displayName"], "Release Managers");
    assert!(
        body.get("members").is_none() && body.get("externalId").is_none(),
        "{body:#}"
    );
    assert_eq!(body["id"], "release-managers");
    let r = w
        .scim(
            "GET",
            &format!("/Users/{id}?excludedAttributes=name,emails"),
            None,
        )
        .await;
    let body = r.is(200);
    assert!(
        body.get("name").is_none() && body.get("emails").is_none(),
        "{body:#}"
    );
    assert_eq!(body["userName"], "ann@x.io");
    // Deleting the group takes the role from its holders, then deletes it.
    let r = w.scim("DELETE", "/Groups/release-managers", None).await;
    assert_eq!(r.status.as_u16(), 204, "{:#}", r.body);
    assert!(w.state().await["roles"].get("release-managers").is_none());
    assert_eq!(w.roles_of("ann@x.io").await, Some(vec!["viewer".into()]));
    // Roles of the catalog are not SCIM's to delete.
    w.scim("DELETE", "/Groups/viewer", None)
        .await
        .scim_error(400, Some("mutability"));
    // Unknown paths under the SCIM root are SCIM 404s.
    w.scim("GET", "/Nothing", None).await.scim_error(404, None);
}

mod cost {
    //! One SCIM user operation reads the same number of items in a team of
    //! 100 people as in one of 2,000 (people provisioned elsewhere).
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use teamform_core::{Change, RoleName};
    use teamform_functions::service::BatchOptions;
    use teamform_functions::store::{Item, Page, PageRequest, Store, StoreError, Write};
    use tower::ServiceExt;

    use super::*;

    struct Counting {
        inner: SqliteStore,
        calls: AtomicUsize,
    }

    #[async_trait]
    impl Store for Counting {
        async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.get(pk, sk).await
        }
        async fn query(
            &self,
            pk: &str,
            prefix: &str,
            page: PageRequest,
        ) -> Result<Page, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.query(pk, prefix, page).await
        }
        async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.transact(writes).await
        }
        async fn get_many(
            &self,
            keys: &[(String, String)],
        ) -> Result<Vec<Option<Item>>, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.get_many(keys).await
        }
        async fn scan(&self, prefix: &str) -> Result<Vec<Item>, StoreError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.inner.scan(prefix).await
        }
    }

    /// The store calls of each SCIM user operation in a team of `size`.
    async fn costs(size: usize) -> Vec<(&'static str, u16, usize)> {
        let counting = Arc::new(Counting {
            inner: SqliteStore::in_memory().expect("store"),
            calls: AtomicUsize::new(0),
        });
        let svc = Arc::new(Service::new(
            counting.clone(),
            Arc::new(Catalog::standard()),
            Arc::new(ManualClock::new(
                "2026-11-28T12:00:00Z".parse().expect("time"),
            )),
            "http://test".into(),
        ));
        let team = TeamId::parse("tt").unwrap();
        let mut setup = vec![Change::CreateTeam {
            display_name: "T".into(),
            owner: email("owner@x.io"),
        }];
        for i in 0..size {
            setup.push(Change::Invite {
                email: email(&format!("p{i:05}@x.io")),
                name: None,
                roles: [RoleName::parse("viewer").unwrap()].into(),
            });
        }
        for part in setup.chunks(1000) {
            svc.execute(
                &team,
                &Principal::LocalOwner,
                part,
                None,
                &BatchOptions::default(),
            )
            .await
            .unwrap();
        }
        let token = svc
            .create_scim_token(
                &team,
                &Principal::LocalOwner,
                "idp",
                &RoleName::parse("viewer").unwrap(),
            )
            .await
            .unwrap()
            .secret;
        let router = app(AppState::new(svc, Anonymous::Refused));
        let send = |method: &'static str, uri: String, body: Option<Value>| {
            let router = router.clone();
            let token = token.clone();
            async move {
                let req = Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("authorization", format!("Bearer {token}"))
                    .header("content-type", SCIM_JSON)
                    .body(body.map(|b| Body::from(b.to_string())).unwrap_or_default())
                    .unwrap();
                let res = router.oneshot(req).await.unwrap();
                let status = res.status().as_u16();
                let bytes = res.into_body().collect().await.unwrap().to_bytes();
                (
                    status,
                    serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
                )
            }
        };
        let mut out = Vec::new();
        counting.calls.swap(0, Ordering::SeqCst);
        let (status, user) = send(
            "POST",
            "/scim/v2/tt/Users".into(),
            Some(json!({"userName": "new@x.io"})),
        )
        .await;
        out.push(("create", status, counting.calls.swap(0, Ordering::SeqCst)));
        let id = user["id"].as_str().unwrap_or("none").to_owned();
        let ops: Vec<(&str, &str, String, Option<Value>)> = vec![
            ("get", "GET", format!("/scim/v2/tt/Users/{id}"), None),
            (
                "find by userName",
                "GET",
                "/scim/v2/tt/Users?filter=userName%20eq%20%22new%40x.io%22".into(),
                None,
            ),
            (
                "deactivate",
                "PATCH",
                format!("/scim/v2/tt/Users/{id}"),
                Some(json!({"Operations": [{"op": "replace", "path": "active", "value": false}]})),
            ),
            (
                "reactivate",
                "PATCH",
                format!("/scim/v2/tt/Users/{id}"),
                Some(json!({"Operations": [{"op": "replace", "path": "active", "value": true}]})),
            ),
            (
                "join a group",
                "PATCH",
                "/scim/v2/tt/Groups/developer?excludedAttributes=members".into(),
                Some(
                    json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]}),
                ),
            ),
            ("delete", "DELETE", format!("/scim/v2/tt/Users/{id}"), None),
        ];
        for (name, method, uri, body) in ops {
            let (status, _) = send(method, uri, body).await;
            out.push((name, status, counting.calls.swap(0, Ordering::SeqCst)));
        }
        out
    }

    #[tokio::test]
    async fn one_scim_user_operation_costs_the_same_at_100_and_2000_people() {
        let small = costs(100).await;
        let large = costs(2000).await;
        for ((name, s1, c1), (_, s2, c2)) in small.iter().zip(&large) {
            eprintln!(
                "{name:>18}: {c1:>3} store calls at 100, {c2:>3} at 2,000 (status {s1}/{s2})"
            );
        }
        for ((name, s1, c1), (_, s2, c2)) in small.iter().zip(&large) {
            assert!(*s1 < 300, "{name}: status {s1}");
            assert_eq!(s1, s2, "{name}");
            if *name == "join a group" {
                // The answer lists the group's members: a read of the role's
                // holders, which grows with them (not asserted flat).
                continue;
            }
            assert_eq!(c1, c2, "{name}: {c1} store calls at 100, {c2} at 2,000");
            assert!(*c1 <= 20, "{name}: {c1} store calls is not a fixed handful");
        }
    }
}

// --- scim_provisioning: members ------------------------------------------------

impl World {
    /// Sets t1's `scim_provisioning` as its owner, keeping the other settings.
    async fn provisioning(&self, mode: &str) {
        let mut settings = self
            .call("GET", "/teams/t1/settings", &self.alice, None)
            .await
            .is(200)
            .clone();
        settings["scim_provisioning"] = json!(mode);
        self.call("PUT", "/teams/t1/settings", &self.alice, Some(settings))
            .await
            .is(200);
        let now = self
            .call("GET", "/teams/t1/settings", &self.alice, None)
            .await;
        assert_eq!(now.is(200)["scim_provisioning"], mode);
    }

    async fn mail_count(&self) -> usize {
        self.svc.outbox(&t1()).await.expect("outbox").len()
    }

    /// The members list's entry for a person, if listed.
    async fn listed(&self, who: &str) -> Option<Value> {
        let r = self
            .call("GET", "/teams/t1/members?limit=1000", &self.alice, None)
            .await;
        r.is(200)["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|m| m["email"] == who)
            .cloned()
    }

    /// A person who joins t1 through an invitation with `roles`; their token.
    async fn joined(&self, who: &str, roles: &[&str]) -> String {
        let token = self.person(who).await;
        self.call(
            "POST",
            "/teams/t1/invitations",
            &self.alice,
            Some(json!({"email": who, "roles": roles})),
        )
        .await
        .is(201);
        let mails = self.svc.outbox(&t1()).await.unwrap();
        let link = mails
            .iter()
            .rev()
            .find(|m| m.to == who)
            .and_then(|m| m.link_secret())
            .unwrap()
            .to_owned();
        self.call(
            "POST",
            "/invitations/accept",
            &token,
            Some(json!({"token": link})),
        )
        .await
        .is(200);
        token
    }
}

#[tokio::test]
async fn members_setting_provisions_members_without_an_invitation() {
    let w = World::new().await;
    w.provisioning("members").await;
    let mails = w.mail_count().await;
    let id = w.create("pat@x.io").await;
    // A member at once, joined, with the token's default role; no email.
    let member = w.listed("pat@x.io").await.expect("listed");
    assert_eq!(member["status"], "joined", "{member:#}");
    assert_eq!(member["roles"], json!(["viewer"]));
    let state = w.state().await;
    assert!(state["members"].get("pat@x.io").is_some(), "{state:#}");
    assert!(state["invitations"].get("pat@x.io").is_none(), "{state:#}");
    assert_eq!(w.mail_count().await, mails, "no invitation email");
    // The SCIM resource shows the member as active, in their group.
    let r = w.scim("GET", &format!("/Users/{id}"), None).await;
    assert_eq!(r.is(200)["active"], true);
    assert_eq!(r.body["groups"][0]["value"], "viewer");
    // Audited as add_member by the token.
    let audit = w
        .call("GET", "/teams/t1/audit?limit=1000", &w.alice, None)
        .await;
    let record = audit.is(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "add_member")
        .cloned()
        .expect("an add_member record");
    assert_eq!(record["actor_kind"], "scim_token", "{record:#}");
    assert_eq!(record["actor"], format!("scim-token:{}", w.scim_id));
    assert_eq!(record["change"]["email"], "pat@x.io");

    // Deactivation removes the member; reactivation adds them back, again
    // without an email.
    let r = w
        .scim("PATCH", &format!("/Users/{id}"), Some(deactivate_okta()))
        .await;
    assert_eq!(r.is(200)["active"], false);
    assert_eq!(w.listed("pat@x.io").await, None);
    let r = w
        .scim(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({"Operations": [{"op": "replace", "value": {"active": true}}]})),
        )
        .await;
    assert_eq!(r.is(200)["active"], true);
    let member = w.listed("pat@x.io").await.expect("listed again");
    assert_eq!(member["status"], "joined", "{member:#}");
    assert_eq!(w.mail_count().await, mails, "still no email");
    let actor = format!("scim-token:{}", w.scim_id);
    let actions = w.audit_actions().await;
    let added = actions
        .iter()
        .filter(|(a, x)| a == &actor && x == "add_member")
        .count();
    assert_eq!(added, 2, "{actions:?}");
    assert!(
        !actions.iter().any(|(_, x)| x == "invite"),
        "nobody was invited: {actions:?}"
    );
    // The owner is still protected, a member or not.
    let owner_id = w.create("alice@x.io").await;
    w.scim(
        "PATCH",
        &format!("/Users/{owner_id}"),
        Some(deactivate_okta()),
    )
    .await
    .scim_error(400, Some("mutability"));
    // DELETE removes the provisioned member for good.
    w.scim("DELETE", &format!("/Users/{id}"), None)
        .await
        .status
        .is_success()
        .then_some(())
        .expect("deleted");
    assert_eq!(w.listed("pat@x.io").await, None);
}

#[tokio::test]
async fn provisioned_members_meet_uniqueness_the_seat_limit_and_no_ownership() {
    let w = World::new().await;
    w.provisioning("members").await;
    let id = w.create("pat@x.io").await;
    // The same email under another userName: 409 uniqueness, nothing added.
    let before = w.state().await;
    let r = w
        .scim(
            "POST",
            "/Users",
            Some(json!({
                "userName": "pat-again",
                "emails": [{"value": "PAT@x.io", "primary": true}],
            })),
        )
        .await;
    r.scim_error(409, Some("uniqueness"));
    assert_eq!(w.state().await, before);
    // Groups never grant ownership to a provisioned member.
    w.scim(
        "PATCH",
        "/Groups/owner",
        Some(json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": id}]}]})),
    )
    .await
    .scim_error(400, Some("mutability"));
    assert_eq!(w.state().await["owner"], "alice@x.io");
    assert_eq!(w.roles_of("pat@x.io").await, Some(vec!["viewer".into()]));
    // Seat limit: alice and pat fill two seats; a third person is refused,
    // and neither the member nor the SCIM user is kept.
    let mut settings = w
        .call("GET", "/teams/t1/settings", &w.alice, None)
        .await
        .is(200)
        .clone();
    settings["seat_limit"] = json!(2);
    w.call("PUT", "/teams/t1/settings", &w.alice, Some(settings))
        .await
        .is(200);
    let r = w
        .scim(
            "POST",
            "/Users",
            Some(json!({"userName": "sam@x.io", "active": true})),
        )
        .await;
    r.scim_error(409, None);
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("seat limit"), "{detail}");
    assert_eq!(w.roles_of("sam@x.io").await, None);
    let r = w
        .scim(
            "GET",
            "/Users?filter=userName%20eq%20%22sam%40x.io%22",
            None,
        )
        .await;
    assert_eq!(r.is(200)["totalResults"], 0);
}

#[tokio::test]
async fn add_member_is_refused_through_the_changes_api_whoever_asks() {
    let w = World::new().await;
    w.provisioning("members").await;
    let adam = w.joined("adam@x.io", &["admin"]).await;
    let vera = w.joined("vera@x.io", &["viewer"]).await;
    let key = w
        .call(
            "POST",
            "/teams/t1/api-keys",
            &w.alice,
            Some(json!({"name": "ci", "roles": ["admin"]})),
        )
        .await
        .is(201)["secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    let before = w.state().await;
    let batch = json!({"changes": [
        {"op": "add_member", "email": "mallory@x.io", "roles": ["viewer"]},
    ]});
    for (who, token) in [
        ("owner", &w.alice),
        ("admin", &adam),
        ("viewer", &vera),
        ("api key", &key),
    ] {
        let r = w
            .call("POST", "/teams/t1/changes", token, Some(batch.clone()))
            .await;
        assert_eq!(r.status.as_u16(), 403, "{who}: {:#}", r.body);
        assert_eq!(r.body["code"], "forbidden", "{who}: {:#}", r.body);
    }
    // Not smuggled behind an allowed change either.
    let r = w
        .call(
            "POST",
            "/teams/t1/changes",
            &w.alice,
            Some(json!({"changes": [
                {"op": "invite", "email": "ok@x.io", "roles": ["viewer"]},
                {"op": "add_member", "email": "mallory@x.io", "roles": ["viewer"]},
            ]})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 403, "{:#}", r.body);
    assert_eq!(w.state().await, before, "nothing was applied");
    // The SCIM token itself never reaches the API.
    let r = w
        .call("POST", "/teams/t1/changes", &w.scim, Some(batch))
        .await;
    assert_eq!(r.status.as_u16(), 401, "{:#}", r.body);
}

#[tokio::test]
async fn switching_back_to_invitations_invites_again() {
    let w = World::new().await;
    w.provisioning("members").await;
    w.create("pat@x.io").await;
    w.provisioning("invitations").await;
    let mails = w.mail_count().await;
    w.create("quinn@x.io").await;
    let state = w.state().await;
    assert!(
        state["invitations"].get("quinn@x.io").is_some(),
        "{state:#}"
    );
    assert!(state["members"].get("quinn@x.io").is_none(), "{state:#}");
    assert_eq!(w.mail_count().await, mails + 1, "an invitation email");
    let listed = w.listed("quinn@x.io").await.expect("listed");
    assert_eq!(listed["status"], "pending");
    // The member added before stays a member.
    assert_eq!(
        w.listed("pat@x.io").await.expect("listed")["status"],
        "joined"
    );
}

#[tokio::test]
async fn changing_scim_provisioning_needs_the_scim_permission() {
    let w = World::new().await;
    // A custom role that manages settings but not SCIM tokens.
    w.call(
        "PUT",
        "/teams/t1/roles/settings-only",
        &w.alice,
        Some(json!({"permissions": ["team.settings.read", "team.settings.manage"]})),
    )
    .await
    .is(200);
    let sid = w.joined("sid@x.io", &["settings-only"]).await;
    let mut settings = w
        .call("GET", "/teams/t1/settings", &sid, None)
        .await
        .is(200)
        .clone();
    settings["seat_limit"] = json!(10);
    settings["scim_provisioning"] = json!("members");
    let r = w
        .call("PUT", "/teams/t1/settings", &sid, Some(settings.clone()))
        .await;
    assert_eq!(r.status.as_u16(), 403, "{:#}", r.body);
    let detail = r.body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("team.scim.manage"), "{detail}");
    // The other settings alone are theirs to change.
    settings["scim_provisioning"] = json!("invitations");
    w.call("PUT", "/teams/t1/settings", &sid, Some(settings))
        .await
        .is(200);
}

#[tokio::test]
async fn unmanaged_ignore_leaves_provisioned_members_alone() {
    let w = World::new().await;
    w.provisioning("members").await;
    w.create("prov@x.io").await;
    let catalog = Catalog::standard();
    // The file says `members` too: the settings match, only people differ.
    let file = |policy: &str| {
        format!(
            "version: 1\nteam: t1\nowner: alice@x.io\nsettings:\n  scim_provisioning: members\nmembers: []\n{policy}"
        )
    };
    let ignore = teamform_core::spec::TeamSpec::parse(
        "team.yaml",
        &file("policy:\n  unmanaged: ignore\n"),
        &catalog,
    )
    .expect("spec");
    let live = w.svc.load(&t1()).await.unwrap().unwrap();
    assert!(live.members.contains_key(&email("prov@x.io")));
    let now = "2026-11-28T12:00:00Z".parse().unwrap();
    let plan = teamform_core::plan::plan(&ignore, &live, &catalog, now);
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    // Under `remove`, the provisioned member is proposed for removal.
    let strict =
        teamform_core::spec::TeamSpec::parse("team.yaml", &file(""), &catalog).expect("spec");
    let plan = teamform_core::plan::plan(&strict, &live, &catalog, now);
    assert_eq!(
        plan.changes,
        vec![teamform_core::Change::RemoveMember {
            email: email("prov@x.io"),
            roles: [teamform_core::RoleName::parse("viewer").unwrap()]
                .into_iter()
                .collect(),
        }]
    );
}
