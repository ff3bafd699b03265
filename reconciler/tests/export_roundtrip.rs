//! `teamform export` writes team.yaml that reads back as the same team:
//! export, then plan the exported file against the same store, gives no
//! changes, whatever the names, display name and role descriptions hold.
//! In process, against the embedded SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::Utc;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use teamform::client::{Applier, Client};
use teamform::export::{export, spec_yaml};
use teamform_core::change::{MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, check_text};
use teamform_core::model::CustomRole;
use teamform_core::plan::plan;
use teamform_core::{Catalog, Change, Email, Permission, RoleName, TeamId, TeamSpec};

/// Text a person may write (what the service stores), with the strings
/// that YAML would read as something else well represented.
fn text(max: usize) -> impl Strategy<Value = String> {
    let tricky = prop::sample::select(vec![
        "0x1F",
        "0o17",
        "1e3",
        "-1",
        "+1",
        ".5",
        "1_000",
        "nan",
        "NaN",
        ".inf",
        "-.inf",
        "true",
        "False",
        "yes",
        "No",
        "on",
        "OFF",
        "null",
        "~",
        "Null",
        "- x",
        "? x",
        "a: b",
        "a #b",
        "#x",
        "[x]",
        "{x}",
        "x,y",
        "'x'",
        "\"x\"",
        "&a",
        "*a",
        "!tag",
        "%x",
        "@x",
        "`x`",
        "|",
        ">",
        " lead",
        "trail ",
        "a\\b",
        "---",
        "...",
        "=",
        "12:30",
        "2026-11-28",
        "١٢٣",
        "\u{feff}x",
        "é",
        "日本",
        "\u{00a0}",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        tricky,
        "[ -~]{1,30}",
        "\\PC{1,30}",
        "[0-9a-fxob.e+_:-]{1,8}",
    ]
    .prop_filter("the service accepts it", move |s| {
        check_text("text", s, max).is_ok()
    })
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

static TEAMS: AtomicUsize = AtomicUsize::new(0);

async fn round_trip(
    client: &Client,
    display_name: String,
    names: Vec<String>,
    description: String,
) -> Result<(), TestCaseError> {
    let team = TeamId::parse(&format!("t{}", TEAMS.fetch_add(1, Ordering::Relaxed))).unwrap();
    let owner = email("owner@acme.com");
    let role = RoleName::parse("custom").unwrap();
    let mut changes = vec![
        Change::CreateTeam {
            display_name: display_name.clone(),
            owner: owner.clone(),
        },
        Change::CreateRole {
            name: role.clone(),
            role: CustomRole {
                description: description.clone(),
                permissions: [Permission::parse("apps.read").unwrap()]
                    .into_iter()
                    .collect(),
            },
        },
    ];
    for (i, name) in names.iter().enumerate() {
        changes.push(Change::Invite {
            email: email(&format!("m{i}@acme.com")),
            name: Some(name.clone()),
            roles: [role.clone()].into_iter().collect(),
        });
    }
    Applier::new(client.clone(), "apply".into())
        .apply(&team, &changes, 0, false)
        .await
        .unwrap();

    let yaml = export(client, &team).await.unwrap().unwrap();
    let catalog = Catalog::standard();
    let spec = TeamSpec::parse("exported.yaml", &yaml, &catalog)
        .map_err(|e| TestCaseError::fail(format!("{e}\n--- exported:\n{yaml}")))?;
    let live = client.state(&team).await.unwrap().unwrap();
    let p = plan(&spec, &live, &catalog, Utc::now());
    prop_assert!(
        p.changes.is_empty(),
        "export then plan gives changes: {:?}\n--- exported:\n{yaml}",
        p.changes
    );
    prop_assert_eq!(spec.display_name.as_deref(), Some(display_name.as_str()));
    let read_names: Vec<Option<&str>> = spec.members.values().map(|m| m.name.as_deref()).collect();
    let want: Vec<Option<&str>> = names.iter().map(|n| Some(n.as_str())).collect();
    prop_assert_eq!(read_names, want);
    Ok(())
}

#[test]
fn export_then_plan_gives_no_changes_for_any_text() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt
        .block_on(Client::in_process(
            &dir.path().join("state.db"),
            Catalog::standard(),
        ))
        .unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        text(MAX_NAME_CHARS),
        prop::collection::vec(text(MAX_NAME_CHARS), 1..4),
        text(MAX_DESCRIPTION_CHARS),
    );
    let result = runner.run(&strategy, |(display_name, names, description)| {
        rt.block_on(round_trip(&client, display_name, names, description))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn a_member_named_like_a_number_reads_back_as_text() {
    let text = "version: 1\nteam: acme\nowner: alice@acme.com\nmembers:\n  - email: bob@acme.com\n    name: \"0x1F\"\n    roles: [viewer]\n";
    let spec = TeamSpec::parse("team.yaml", text, &Catalog::standard()).unwrap();
    let exported = spec_yaml(&spec).unwrap();
    assert!(exported.contains("name: \"0x1F\""), "{exported}");
    let again = TeamSpec::parse("exported.yaml", &exported, &Catalog::standard()).unwrap();
    assert_eq!(again, spec);
    assert!(
        exported.starts_with("version: 1\nteam: acme\nowner: alice@acme.com\n"),
        "{exported}"
    );
}

#[test]
fn scim_provisioning_is_exported_when_it_is_not_the_default() {
    let catalog = Catalog::standard();
    let base = "version: 1\nteam: acme\nowner: alice@acme.com\nsettings:\n  require_2fa: false\n  invitation_ttl_days: 15\n";
    let members = TeamSpec::parse(
        "team.yaml",
        &format!("{base}  scim_provisioning: members\n"),
        &catalog,
    )
    .unwrap();
    let exported = spec_yaml(&members).unwrap();
    assert!(
        exported.contains("  scim_provisioning: members\n"),
        "{exported}"
    );
    let again = TeamSpec::parse("exported.yaml", &exported, &catalog).unwrap();
    assert_eq!(again, members);
    // The default is not written: files from before the setting stay as they are.
    let default = TeamSpec::parse("team.yaml", base, &catalog).unwrap();
    let exported = spec_yaml(&default).unwrap();
    assert!(!exported.contains("scim_provisioning"), "{exported}");
    assert_eq!(
        TeamSpec::parse("exported.yaml", &exported, &catalog).unwrap(),
        default
    );
}
