//! SCIM provisioning as members (`scim_provisioning: members`) over the
//! DynamoDB store on moto: the member item, the person's team reference and
//! the seat counters are written in the change's transaction, and no
//! invitation email is queued.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::sync::Arc;

use serde_json::json;
use teamform_core::model::{ScimProvisioning, Settings};
use teamform_core::{Catalog, Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::clock::SystemClock;
use teamform_functions::scim::{Desired, ScimError};
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_tests::moto_store;

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn user(name: &str) -> Desired {
    Desired::parse(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "emails": [{"value": name, "primary": true}],
        "active": true,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn provisioned_members_are_written_with_their_counters_on_dynamodb() {
    let store = moto_store("scim-members").await;
    let catalog = Arc::new(Catalog::standard());
    let svc = Service::new(
        store,
        catalog.clone(),
        Arc::new(SystemClock),
        "http://localhost".into(),
    );
    let team = TeamId::parse("acme").unwrap();
    let alice = Principal::Person {
        email: email("alice@acme.com"),
        two_factor: false,
    };
    let options = BatchOptions::default();
    svc.execute(
        &team,
        &alice,
        &[Change::CreateTeam {
            display_name: "Acme".into(),
            owner: email("alice@acme.com"),
        }],
        Some(0),
        &options,
    )
    .await
    .unwrap();
    let to = Settings {
        scim_provisioning: ScimProvisioning::Members,
        seat_limit: Some(2),
        ..Settings::default()
    };
    svc.execute(
        &team,
        &alice,
        &[Change::UpdateSettings {
            from: Settings::default(),
            to,
        }],
        None,
        &options,
    )
    .await
    .unwrap();
    // A SCIM token of the team holding what its owner holds.
    let scim = Principal::Scim {
        team: team.clone(),
        id: "tok1".into(),
        permissions: catalog.permissions.iter().map(|p| p.id.clone()).collect(),
        default_role: RoleName::parse("viewer").unwrap(),
    };
    let mails = svc.outbox(&team).await.unwrap().len();

    let view = svc
        .scim_create_user(&team, &scim, user("pat@acme.com"))
        .await
        .unwrap();
    assert!(view.active());
    let live = svc.load(&team).await.unwrap().unwrap();
    let pat = live.members.get(&email("pat@acme.com")).expect("a member");
    assert_eq!(pat.roles.len(), 1);
    assert!(live.invitations.is_empty());
    assert_eq!(svc.outbox(&team).await.unwrap().len(), mails, "no email");
    // The person's own list of teams names it, as after accepting.
    let pat_principal = Principal::Person {
        email: email("pat@acme.com"),
        two_factor: false,
    };
    let teams = svc.my_teams(&pat_principal).await.unwrap();
    assert_eq!(
        teams.iter().map(|m| m.team.as_str()).collect::<Vec<_>>(),
        ["acme"]
    );

    // The counters count the member: a third seat is refused.
    let refused = svc
        .scim_create_user(&team, &scim, user("sam@acme.com"))
        .await;
    match refused {
        Err(ScimError::Service(ServiceError::Change { action, error, .. })) => {
            assert_eq!(action, "add_member");
            assert_eq!(error.code(), "seat_limit_reached");
        }
        other => panic!("expected the seat limit, got {other:?}"),
    }
    let live = svc.load(&team).await.unwrap().unwrap();
    assert_eq!(live.members.len(), 2);

    // Deprovisioning frees the seat; the next person gets it.
    svc.scim_delete_user(&team, &scim, &view.record.id)
        .await
        .unwrap();
    svc.scim_create_user(&team, &scim, user("sam@acme.com"))
        .await
        .unwrap();
    let live = svc.load(&team).await.unwrap().unwrap();
    let people: Vec<&str> = live.members.keys().map(Email::as_str).collect();
    assert_eq!(people, ["alice@acme.com", "sam@acme.com"]);
    assert!(svc.my_teams(&pat_principal).await.unwrap().is_empty());
}
