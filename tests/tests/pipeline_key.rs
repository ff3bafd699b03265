//! The GitOps pipeline the README recommends, on the project's own example:
//! an owner-made key with `"permissions": ["*"]` applies all of
//! `examples/acme/team.yaml` (2FA setting, custom role, billing roles) over
//! HTTP against `teamform serve`; an admin key cannot, because admin lacks
//! what the file grants; and the `*` key converges (a second plan is empty).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use serde_json::{Value, json};
use teamform_tests::cli::{root, serve, teamform};

async fn post(url: &str, token: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("serve answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_owner_made_star_key_applies_the_acme_example_and_an_admin_key_cannot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let served = serve(dir.path(), &[]);
    let (s, b) = post(
        &format!("{}/teams", served.url),
        &served.token,
        json!({"team": "acme", "display_name": "Acme Inc", "owner": "alice@acme.com"}),
    )
    .await;
    assert_eq!(s, 201, "{b:#}");
    let keys = format!("{}/teams/acme/api-keys", served.url);
    let (s, admin) = post(
        &keys,
        &served.token,
        json!({"name": "admin", "roles": ["admin"]}),
    )
    .await;
    assert_eq!(s, 201, "{admin:#}");
    let (s, star) = post(
        &keys,
        &served.token,
        json!({"name": "gitops", "permissions": ["*"]}),
    )
    .await;
    assert_eq!(s, 201, "{star:#}");

    let example = root().join("examples/acme/team.yaml");
    let file = example.to_str().expect("path");
    let apply = |token: &Value| {
        teamform(
            dir.path(),
            &[
                "apply",
                file,
                "--auto-approve",
                "--endpoint",
                &served.url,
                "--token",
                token["secret"].as_str().expect("secret"),
            ],
            &[],
        )
    };
    let refused = apply(&admin);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(refused.stderr.contains("HTTP 403"), "{}", refused.stderr);

    let applied = apply(&star);
    assert_eq!(applied.code, 0, "{}\n{}", applied.stdout, applied.stderr);
    let again = teamform(
        dir.path(),
        &[
            "plan",
            file,
            "--detailed-exitcode",
            "--endpoint",
            &served.url,
            "--token",
            star["secret"].as_str().expect("secret"),
        ],
        &[],
    );
    assert_eq!(again.code, 0, "{}\n{}", again.stdout, again.stderr);
}
