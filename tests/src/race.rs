//! A race of many writers on one team, run against any store: the team's
//! invariants must hold at the end, and every accepted write must be visible
//! with its audit item.

use std::collections::BTreeSet;
use std::sync::Arc;

use teamform_core::{Change, Email, RoleName, TeamId};
use teamform_functions::auth::Principal;
use teamform_functions::service::{BatchOptions, Service, ServiceError};
use teamform_functions::store::codec;

fn email(s: &str) -> Email {
    Email::parse(s).expect("test email")
}

fn roles(names: &[&str]) -> teamform_core::model::Roles {
    names
        .iter()
        .map(|n| RoleName::parse(n).expect("role"))
        .collect()
}

/// Executes one batch, retrying on version conflicts (another writer won).
/// Returns whether the batch was accepted, and the domain error if refused.
async fn attempt(svc: &Service, team: &TeamId, changes: Vec<Change>) -> Result<usize, String> {
    for _ in 0..200 {
        match svc
            .execute(
                team,
                &Principal::LocalOwner,
                &changes,
                None,
                &BatchOptions::default(),
            )
            .await
        {
            Ok(applied) => return Ok(applied.applied),
            Err(ServiceError::VersionConflict { .. }) => tokio::task::yield_now().await,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("gave up after 200 version conflicts".into())
}

/// Fifty writers race on team `team` of `svc`: role changes, invitations of
/// one email (spelled in different cases), and ownership-affecting changes.
pub async fn fifty_writers_keep_the_invariants(svc: Arc<Service>, team: &str) {
    let team = TeamId::parse(team).expect("team id");
    let owner = email("alice@acme.com");
    let setup = vec![
        Change::CreateTeam {
            display_name: "Acme".into(),
            owner: owner.clone(),
        },
        Change::Invite {
            email: email("bob@acme.com"),
            name: None,
            roles: roles(&["viewer"]),
        },
        Change::Invite {
            email: email("carol@acme.com"),
            name: None,
            roles: roles(&["viewer"]),
        },
    ];
    attempt(&svc, &team, setup).await.expect("setup");
    let carol_invited_at = svc
        .load(&team)
        .await
        .expect("load")
        .and_then(|s| {
            s.invitations
                .get(&email("carol@acme.com"))
                .map(|i| i.created_at)
        })
        .expect("carol is invited");

    let mut tasks = Vec::new();
    for i in 0..50usize {
        let svc = svc.clone();
        let team = team.clone();
        let owner = owner.clone();
        tasks.push(tokio::spawn(async move {
            let change = match i % 5 {
                // The same person invited by many writers, in varying case.
                0 => Change::Invite {
                    email: email(if i % 2 == 0 {
                        "Same@Acme.com"
                    } else {
                        "same@acme.com"
                    }),
                    name: None,
                    roles: roles(&["developer"]),
                },
                // Role edits of one invitation, all from the same before-image:
                // the first to land wins, the rest are stale (no lost update).
                1 => Change::ChangeInvitationRoles {
                    email: email("bob@acme.com"),
                    from: roles(&["viewer"]),
                    to: roles(if i % 2 == 0 {
                        &["admin"]
                    } else {
                        &["developer", "billing"]
                    }),
                },
                // Attempts on the owner: never allowed as role edits or removals.
                2 if i % 2 == 0 => Change::ChangeRoles {
                    email: owner.clone(),
                    from: roles(&["owner"]),
                    to: roles(&["admin"]),
                },
                2 => Change::RemoveMember {
                    email: owner.clone(),
                    roles: roles(&["owner"]),
                },
                // Ownership transfers to different people.
                3 => Change::TransferOwnership {
                    from: owner.clone(),
                    to: email(&format!("heir{}@acme.com", i % 3)),
                },
                // Revocation racing with the role edits above.
                _ => Change::RevokeInvitation {
                    email: email("carol@acme.com"),
                    roles: roles(&["viewer"]),
                    created_at: carol_invited_at,
                },
            };
            (i, change.action(), attempt(&svc, &team, vec![change]).await)
        }));
    }
    let mut accepted = 0;
    let mut outcomes = Vec::new();
    for t in tasks {
        let (i, action, result) = t.await.expect("task");
        if result.is_ok() {
            accepted += 1;
        }
        outcomes.push((i, action, result));
    }

    let invites_ok = outcomes
        .iter()
        .filter(|(i, _, r)| i % 5 == 0 && r.is_ok())
        .count();
    assert_eq!(
        invites_ok, 1,
        "exactly one invitation of the same person wins: {outcomes:#?}"
    );
    for (i, _, r) in &outcomes {
        if i % 5 == 2 {
            let err = r.as_ref().expect_err("the owner is protected");
            assert!(err.contains("owner"), "owner change refused as such: {err}");
        }
        if i % 5 == 3 {
            assert!(r.is_ok(), "transfers retry until they land: {r:?}");
        }
        if i % 5 == 1
            && let Err(e) = r
        {
            assert!(e.contains("stale change"), "a losing edit is stale: {e}");
        }
    }
    let edits_ok = outcomes
        .iter()
        .filter(|(i, _, r)| i % 5 == 1 && r.is_ok())
        .count();
    assert_eq!(
        edits_ok, 1,
        "one edit from a given before-image lands; the others see it and stop"
    );
    let revokes_ok = outcomes
        .iter()
        .filter(|(i, _, r)| i % 5 == 4 && r.is_ok())
        .count();
    assert_eq!(revokes_ok, 1, "an invitation is revoked once");

    let state = svc.load(&team).await.expect("load").expect("team exists");
    state
        .check_invariants()
        .expect("exactly one owner, nobody both member and invited");
    assert_eq!(
        state.owner, owner,
        "a transfer only starts; ownership moves when both confirm"
    );
    assert!(state.transfer.is_some(), "the last transfer is pending");
    let same: Vec<_> = state
        .invitations
        .keys()
        .filter(|e| e.key() == "same@acme.com")
        .collect();
    assert_eq!(same.len(), 1, "one entry per email, whatever its case");
    assert!(!state.invitations.contains_key(&email("carol@acme.com")));

    // Every accepted write is visible with its audit item, and nothing else is.
    let store = svc.store();
    let audit = store
        .query_all(&codec::team_pk(&team), codec::AUDIT)
        .await
        .expect("audit");
    assert_eq!(
        audit.len(),
        3 + accepted,
        "setup plus one audit item per accepted change"
    );
    assert_eq!(
        state.version,
        1 + accepted as u64,
        "one version per accepted batch"
    );
    let versions: BTreeSet<i64> = audit.iter().filter_map(|a| a.int("version")).collect();
    assert_eq!(
        versions.len(),
        1 + accepted,
        "each batch has its own version"
    );
    let invite_items = store
        .query_all(&codec::team_pk(&team), codec::INVITE)
        .await
        .expect("invites");
    assert_eq!(invite_items.len(), state.invitations.len());
}
