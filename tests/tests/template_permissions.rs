//! The deployed functions may make every DynamoDB call the store makes. IAM
//! is not enforced by moto, so a call the template does not allow passes
//! every test here and fails only in AWS: this reads the repository's own
//! template and the DynamoDB store's own source, so that a new call fails
//! here rather than in a deployment.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::BTreeSet;

use saphyr::{LoadableYamlNode, YamlOwned};
use teamform_tests::cli::root;

/// The roles of the functions that run the service over the table (every
/// store operation is theirs to make).
const SERVICE_ROLES: &[&str] = &["ApiRole", "SweeperRole"];

/// SDK operations of the store and the IAM actions each needs. A
/// transaction is authorized item by item.
const OPERATIONS: &[(&str, &[&str])] = &[
    ("get_item", &["dynamodb:GetItem"]),
    ("batch_get_item", &["dynamodb:BatchGetItem"]),
    ("query", &["dynamodb:Query"]),
    (
        "transact_write_items",
        &[
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:ConditionCheckItem",
        ],
    ),
    ("put_item", &["dynamodb:PutItem"]),
    ("delete_item", &["dynamodb:DeleteItem"]),
    ("update_item", &["dynamodb:UpdateItem"]),
    ("batch_write_item", &["dynamodb:BatchWriteItem"]),
];

/// Calls that only local hosts and tests make: `scan` (a local host's
/// start-up catch-up) and `create_table`.
const LOCAL_ONLY: &[&str] = &["scan", "create_table"];

/// The IAM actions the store's source needs, from the SDK calls it makes.
fn needed() -> BTreeSet<&'static str> {
    let source = std::fs::read_to_string(root().join("functions/src/store/dynamodb.rs")).unwrap();
    let mut needed = BTreeSet::new();
    let mut calls = 0;
    for (operation, actions) in OPERATIONS {
        if source.contains(&format!(".{operation}()")) {
            calls += 1;
            needed.extend(actions.iter().copied());
        }
    }
    assert!(calls >= 4, "the store's calls were not found in its source");
    needed
}

/// The DynamoDB actions a role's policies allow.
fn allowed(role: &str) -> BTreeSet<String> {
    let source = std::fs::read_to_string(root().join("infra/template.yaml")).unwrap();
    let docs = YamlOwned::load_from_str(&source).expect("the template is YAML");
    let role = docs[0]
        .as_mapping_get("Resources")
        .and_then(|r| r.as_mapping_get(role))
        .unwrap_or_else(|| panic!("no resource {role}"));
    let mut actions = BTreeSet::new();
    let policies = role
        .as_mapping_get("Properties")
        .and_then(|p| p.as_mapping_get("Policies"))
        .and_then(YamlOwned::as_vec)
        .expect("Policies");
    for policy in policies {
        let statements = policy
            .as_mapping_get("PolicyDocument")
            .and_then(|d| d.as_mapping_get("Statement"))
            .and_then(YamlOwned::as_vec)
            .expect("Statement");
        for statement in statements {
            let Some(list) = statement
                .as_mapping_get("Action")
                .and_then(YamlOwned::as_vec)
            else {
                continue;
            };
            actions.extend(
                list.iter()
                    .filter_map(YamlOwned::as_str)
                    .filter(|a| a.starts_with("dynamodb:"))
                    .map(str::to_owned),
            );
        }
    }
    actions
}

#[test]
fn the_service_functions_may_make_every_call_of_the_store() {
    let needed = needed();
    assert!(needed.contains("dynamodb:BatchGetItem"), "{needed:?}");
    for role in SERVICE_ROLES {
        let allowed = allowed(role);
        let missing: Vec<_> = needed.iter().filter(|a| !allowed.contains(**a)).collect();
        assert!(missing.is_empty(), "{role} lacks {missing:?}");
    }
}

#[test]
fn no_function_may_scan_or_create_the_table() {
    for role in ["ApiRole", "SweeperRole", "MailerRole", "EventsRole"] {
        let allowed = allowed(role);
        for call in LOCAL_ONLY {
            let action = match *call {
                "scan" => "dynamodb:Scan",
                _ => "dynamodb:CreateTable",
            };
            assert!(!allowed.contains(action), "{role} may {action}");
        }
    }
}
