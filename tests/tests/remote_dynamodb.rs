//! `teamform serve --store dynamodb:TABLE --owner EMAIL` on moto, driven by
//! the binary with `--endpoint`/`--token`: apply converges, the items are
//! readable with boto3 (no teamform code), and API keys are scoped by role,
//! by team, and die when revoked. Without `--owner` serve refuses to start,
//! and a local-owner token found in the table opens nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::process::Command;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use teamform_core::Catalog;
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::service::Service;
use teamform_tests::cli::{Run, root, serve, teamform, teamform_within};
use teamform_tests::{ENDPOINT_VAR, moto_store, unique_table_name};

fn ok(run: &Run) {
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
}

/// Every item of the table, read by boto3 from moto's Python environment.
fn scan_with_boto3(table: &str) -> Vec<Value> {
    let python = std::env::var("TEAMFORM_TEST_PYTHON").expect(
        "TEAMFORM_TEST_PYTHON is not set: run scripts/test.sh, which provides Python with boto3",
    );
    let script = r#"
import json, os, sys, boto3
from boto3.dynamodb.types import TypeDeserializer
client = boto3.client(
    "dynamodb",
    region_name=os.environ.get("AWS_REGION", "us-east-1"),
    endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
)
des = TypeDeserializer()
items = []
for page in client.get_paginator("scan").paginate(TableName=sys.argv[1]):
    for raw in page["Items"]:
        items.append({k: des.deserialize(v) for k, v in raw.items()})
print(json.dumps(items, default=str))
"#;
    let out = Command::new(python)
        .args(["-c", script, table])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "boto3 scan failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scan output")
}

async fn post(url: &str, token: &str, body: Value) -> (u16, Value) {
    let res = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn get(url: &str, token: &str) -> (u16, Value) {
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_on_dynamodb_applies_the_example_and_scopes_api_keys() {
    assert!(
        std::env::var_os(ENDPOINT_VAR).is_some(),
        "{ENDPOINT_VAR} is not set: these tests need moto; run scripts/test.sh, which starts moto"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let table = unique_table_name("serve");
    let store = format!("dynamodb:{table}");
    let served = serve(
        dir.path(),
        &["--store", &store, "--owner", "alice@acme.com"],
    );
    let (url, boot) = (served.url.clone(), served.token.clone());
    let (status, me) = get(&format!("{url}/me"), &boot).await;
    assert_eq!(status, 200, "{me:#}");
    assert_eq!(
        (me["kind"].as_str(), me["email"].as_str()),
        (Some("person"), Some("alice@acme.com")),
        "the bootstrap token acts as the named owner"
    );
    let (status, body) = post(
        &format!("{url}/teams"),
        &boot,
        json!({"team": "initech", "owner": "bill@initech.com"}),
    )
    .await;
    assert_eq!(
        status, 403,
        "a person creates only teams they own: {body:#}"
    );
    // The example requires 2FA, which a bootstrap token (no sign-in, no
    // second factor) does not meet; everything else is the example's.
    let example = dir.path().join("acme.yaml");
    let text = std::fs::read_to_string(root().join("examples/acme/team.yaml")).expect("example");
    assert!(text.contains("require_2fa: true"), "the example changed");
    std::fs::write(
        &example,
        text.replace("require_2fa: true", "require_2fa: false"),
    )
    .expect("write");
    let example = example.display().to_string();
    let remote = |token: &str| {
        vec![
            "--endpoint".to_owned(),
            url.clone(),
            "--token".to_owned(),
            token.to_owned(),
        ]
    };
    let args = |head: &[&str], token: &str| {
        let mut v: Vec<String> = head.iter().map(|s| (*s).to_owned()).collect();
        v.extend(remote(token));
        v
    };
    let run = |v: Vec<String>| {
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        teamform(dir.path(), &refs, &[])
    };

    ok(&run(args(&["apply", &example, "--auto-approve"], &boot)));
    let again = run(args(&["plan", &example, "--detailed-exitcode"], &boot));
    ok(&again);
    assert!(again.stdout.contains("No changes."), "{}", again.stdout);

    // The table read without teamform: one audit item per applied change.
    let items = scan_with_boto3(&table);
    let of_type = |t: &str| items.iter().filter(|i| i["type"] == t).count();
    assert_eq!(
        of_type("audit"),
        14,
        "create team, role, settings and 11 invitations"
    );
    assert_eq!(of_type("invitation"), 11);
    assert_eq!(of_type("member"), 1, "the owner");
    // serve delivers locally: each email to a file beside --state, and its
    // outbox item deleted once the file is written.
    assert_eq!(of_type("outbox"), 0, "every outbox item was delivered");
    let emails = std::fs::read_dir(dir.path().join(".teamform/outbox"))
        .expect("the local outbox")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    assert_eq!(emails, 11, "one email per invitation");
    let meta = items
        .iter()
        .find(|i| i["pk"] == "TEAM#acme" && i["sk"] == "META")
        .expect("meta item");
    assert_eq!(meta["owner"], "alice@acme.com");
    assert!(
        items.iter().all(|i| !i.to_string().contains(&boot)),
        "no secret is stored in clear"
    );

    // A read-only key plans but cannot apply.
    let (status, viewer) = post(
        &format!("{url}/teams/acme/api-keys"),
        &boot,
        json!({"name": "pr-plans", "roles": ["viewer"]}),
    )
    .await;
    assert_eq!(status, 201, "{viewer:#}");
    let viewer_key = viewer["secret"].as_str().expect("secret").to_owned();
    let edited = std::fs::read_to_string(&example)
        .expect("example")
        .replace("roles: [modifier]", "roles: [viewer]");
    let edited_path = dir.path().join("team.yaml");
    std::fs::write(&edited_path, edited).expect("write");
    let edited_path = edited_path.display().to_string();
    let plan = run(args(
        &["plan", &edited_path, "--detailed-exitcode"],
        &viewer_key,
    ));
    assert_eq!(plan.code, 2, "{}{}", plan.stdout, plan.stderr);
    let apply = run(args(
        &["apply", &edited_path, "--auto-approve"],
        &viewer_key,
    ));
    assert_eq!(apply.code, 1);
    assert!(
        apply.stderr.contains("forbidden") && apply.stderr.contains("403"),
        "{}",
        apply.stderr
    );

    // A key of team B sees nothing of team A.
    let (status, _) = post(
        &format!("{url}/teams"),
        &boot,
        json!({"team": "globex", "owner": "alice@acme.com"}),
    )
    .await;
    assert_eq!(status, 201);
    let (_, globex) = post(
        &format!("{url}/teams/globex/api-keys"),
        &boot,
        json!({"name": "ci", "roles": ["admin"]}),
    )
    .await;
    let globex_key = globex["secret"].as_str().expect("secret").to_owned();
    let (status, body) = get(&format!("{url}/teams/acme/state"), &globex_key).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, _) = get(&format!("{url}/teams/acme/members"), &globex_key).await;
    assert_eq!(status, 404);
    let cross = run(args(&["plan", &example], &globex_key));
    assert_eq!(cross.code, 1);
    assert!(
        cross.stderr.contains("not visible to this API key"),
        "{}",
        cross.stderr
    );

    // A revoked key is refused at once.
    let id = viewer["id"].as_str().expect("id");
    let res = reqwest::Client::new()
        .delete(format!("{url}/teams/acme/api-keys/{id}"))
        .bearer_auth(&boot)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status().as_u16(), 204);
    let (status, body) = get(&format!("{url}/teams/acme/state"), &viewer_key).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
}

#[test]
fn serve_over_dynamodb_refuses_to_start_without_a_named_owner() {
    assert!(
        std::env::var_os(ENDPOINT_VAR).is_some(),
        "{ENDPOINT_VAR} is not set: these tests need moto; run scripts/test.sh, which starts moto"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = format!("dynamodb:{}", unique_table_name("noowner"));
    let run = teamform_within(
        dir.path(),
        &["serve", "--addr", "127.0.0.1:0", "--store", &store],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.contains("pass --owner EMAIL"), "{}", run.stderr);
    assert!(
        !run.stdout.contains("tfp_"),
        "no token was minted: {}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_owner_token_in_a_dynamodb_table_is_refused_by_serve() {
    let store = moto_store("localowner").await;
    // A token with no email, as a host that honours the local owner mints it.
    let minting = Service::new(
        store.clone(),
        Arc::new(Catalog::standard()),
        Arc::new(SystemClock),
        "http://localhost".into(),
    )
    .with_local_owner_tokens();
    let local_owner = minting
        .create_token(&Principal::LocalOwner, "left in a shared table", None)
        .await
        .expect("minted")
        .secret;

    let dir = tempfile::tempdir().expect("tempdir");
    let flag = format!("dynamodb:{}", store.table());
    let served = serve(dir.path(), &["--store", &flag, "--owner", "alice@acme.com"]);
    let (status, body) = get(&format!("{}/me", served.url), &local_owner).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated")),
        "{body:#}"
    );
    let (status, _) = get(&format!("{}/me", served.url), &served.token).await;
    assert_eq!(status, 200, "the named owner's token works");
}
