#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report
//! People in a real browser (headless Chromium from the distribution,
//! driven by tests/browser/flows.mjs) on `teamform serve`, signed in by a
//! real OpenID Connect provider (oidc-provider from npm): the emailed links,
//! the wrong person, the team page, the ownership transfer and an expired
//! link, each checked afterwards through the API.

use reqwest::StatusCode;
use serde_json::{Value, json};
use teamform_tests::cli::{Served, root, serve_with_env};
use teamform_tests::people::{api, flows, link_in, start};

fn screenshots() -> std::path::PathBuf {
    let dir = root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn roles_of(served: &Served, email: &str) -> (String, Vec<String>) {
    let (status, body) = api(
        served,
        &served.token,
        "GET",
        "/teams/acme/members?limit=1000",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let m = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            m["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(email))
        })
        .unwrap_or_else(|| panic!("{email} not listed: {body}"));
    let roles = m["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    (m["status"].as_str().unwrap().to_owned(), roles)
}

fn text(v: &Value) -> &str {
    v["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn people_join_run_the_team_page_and_pass_ownership_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let (_provider, served) = start(dir.path());
    let outbox = dir.path().join(".teamform/outbox");
    let owner = served.token.clone();
    let team = json!({"team": "acme", "display_name": "Acme", "owner": "olivia@acme.com"});
    assert_eq!(
        api(&served, &owner, "POST", "/teams", Some(team)).await.0,
        StatusCode::CREATED
    );
    for (email, role) in [("bob@acme.com", "developer"), ("adam@acme.com", "admin")] {
        let body = json!({"email": email, "roles": [role]});
        let (status, r) = api(
            &served,
            &owner,
            "POST",
            "/teams/acme/invitations",
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{r}");
    }
    let bob_link = link_in(&outbox, "bob@acme.com", "/join?token=tfi_");

    // Carol opens Bob's link and signs in: refused, and nothing is used.
    let carol = flows(
        "link",
        &json!({"url": bob_link, "email": "carol@acme.com", "act": true}),
    );
    assert_eq!(carol["status"], 403, "{carol}");
    assert!(text(&carol).contains("This link is for"), "{carol}");
    assert_eq!(carol["acted"], false, "no button for the wrong person");
    assert_eq!(roles_of(&served, "bob@acme.com").await.0, "pending");

    // Bob opens it, signs in at the provider, accepts, and lands on the team page.
    let bob = flows(
        "link",
        &json!({"url": bob_link, "email": "bob@acme.com", "act": true}),
    );
    assert_eq!(bob["acted"], true, "{bob}");
    assert!(
        bob["url"].as_str().unwrap().ends_with("/ui/teams/acme"),
        "{bob}"
    );
    assert!(text(&bob).contains("Joined"), "{bob}");
    assert_eq!(
        roles_of(&served, "bob@acme.com").await,
        ("joined".into(), vec!["developer".into()])
    );

    // Adam joins as admin, invites three people at once and changes Bob's role.
    let adam_link = link_in(&outbox, "adam@acme.com", "/join?token=tfi_");
    let adam = flows(
        "link",
        &json!({"url": adam_link, "email": "adam@acme.com", "act": true}),
    );
    assert_eq!(adam["acted"], true, "{adam}");
    let shots = screenshots();
    let page = flows(
        "team",
        &json!({
            "base": served.url, "team": "acme", "email": "adam@acme.com",
            "invite": ["x1@acme.com", "x2@acme.com", "x3@acme.com"], "role": "developer",
            "change": {"email": "bob@acme.com", "role": "viewer"},
            "shots": shots,
        }),
    );
    for n in 1..=3 {
        assert!(
            page["afterInvite"]
                .as_str()
                .unwrap()
                .contains(&format!("Invited x{n}@acme.com")),
            "{page}"
        );
        assert_eq!(
            roles_of(&served, &format!("x{n}@acme.com")).await,
            ("pending".into(), vec!["developer".into()])
        );
    }
    assert!(
        page["text"]
            .as_str()
            .unwrap()
            .contains("Changed the roles of bob@acme.com"),
        "{page}"
    );
    assert_eq!(
        roles_of(&served, "bob@acme.com").await.1,
        vec!["viewer".to_owned()]
    );
    assert!(
        page["overflow"].as_i64().unwrap() <= 0,
        "the phone-width page scrolls sideways: {page}"
    );
    assert!(
        page["focused"].as_str().is_some(),
        "Tab reaches a control: {page}"
    );
    for shot in ["team-desktop.png", "team-phone.png"] {
        let bytes = std::fs::read(shots.join(shot)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
            "{shot}"
        );
    }
    // The audit names the person who acted on the page.
    let (_, audit) = api(&served, &owner, "GET", "/teams/acme/audit?limit=100", None).await;
    let by_adam: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "user:adam@acme.com")
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        by_adam,
        [
            "accept_invitation",
            "invite",
            "invite",
            "invite",
            "change_roles"
        ],
        "joining, three invitations and a role change: {audit}"
    );

    // Olivia passes the team to Bob: she confirms through her link, he accepts through his.
    let start = json!({"to": "bob@acme.com"});
    let (status, r) = api(
        &served,
        &owner,
        "POST",
        "/teams/acme/ownership-transfer",
        Some(start),
    )
    .await;
    assert!(status.is_success(), "{r}");
    let confirm = link_in(&outbox, "olivia@acme.com", "/ownership/confirm?token=tft_");
    let olivia = flows(
        "link",
        &json!({"url": confirm, "email": "olivia@acme.com", "act": true}),
    );
    assert_eq!(olivia["acted"], true, "{olivia}");
    let (_, state) = api(&served, &owner, "GET", "/teams/acme/state", None).await;
    assert_eq!(state["owner"], "olivia@acme.com", "not before Bob accepts");
    let accept = link_in(&outbox, "bob@acme.com", "/ownership/accept?token=tft_");
    let bob = flows(
        "link",
        &json!({"url": accept, "email": "bob@acme.com", "act": true}),
    );
    assert_eq!(bob["acted"], true, "{bob}");
    let (_, state) = api(&served, &owner, "GET", "/teams/acme/state", None).await;
    assert_eq!(state["owner"], "bob@acme.com", "{state}");
}

/// The libfaketime preload, from the distribution's `faketime` package.
fn faketime() -> String {
    for dir in std::fs::read_dir("/usr/lib")
        .unwrap()
        .filter_map(Result::ok)
    {
        let lib = dir.path().join("faketime/libfaketime.so.1");
        if lib.is_file() {
            return lib.display().to_string();
        }
    }
    panic!("libfaketime is missing: scripts/test.sh installs the faketime package");
}

#[tokio::test]
async fn an_expired_link_shows_the_expired_page() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join(".teamform/outbox");
    {
        let (_provider, served) = start(dir.path());
        let team = json!({"team": "acme", "display_name": "Acme", "owner": "olivia@acme.com"});
        assert_eq!(
            api(&served, &served.token, "POST", "/teams", Some(team))
                .await
                .0,
            StatusCode::CREATED
        );
        let body = json!({"email": "eve@acme.com", "roles": ["viewer"]});
        assert_eq!(
            api(
                &served,
                &served.token,
                "POST",
                "/teams/acme/invitations",
                Some(body)
            )
            .await
            .0,
            StatusCode::CREATED
        );
    }
    let link = link_in(&outbox, "eve@acme.com", "/join?token=tfi_");
    // The same store, served 16 days later (invitations last 15).
    let later = serve_with_env(
        dir.path(),
        &["--owner", "olivia@acme.com"],
        &[("LD_PRELOAD", &faketime()), ("FAKETIME", "+16d")],
    );
    let path = link.split_once("/join").unwrap().1;
    let page = flows(
        "link",
        &json!({"url": format!("{}/join{path}", later.url), "email": "eve@acme.com", "act": true}),
    );
    assert_eq!(page["status"], 410, "{page}");
    assert!(text(&page).contains("This link has expired"), "{page}");
    assert_eq!(page["acted"], false);
}
