//! Resource-style operations for people and products that edit one thing at
//! a time (a UI, a script): each builds the one `Change` it means from the
//! live state and runs it through the same service path as a reconciler
//! batch, with the same authorization, invariants, audit and outbox.

use serde::{Deserialize, Serialize};
use teamform_core::catalog::perm;
use teamform_core::model::{CustomRole, Roles, Settings};
use teamform_core::{Change, Email, RoleName, TeamId};

use crate::auth::Principal;
use crate::service::{Applied, BatchOptions, Service, ServiceError};

/// How often a one-thing write that lost a race is re-read and retried.
const RETRIES: u32 = 12;

/// A jittered wait before retry `attempt`: up to 2^attempt ms, capped at 100.
async fn backoff(attempt: u32) {
    use rand::Rng;
    let cap = 1u64 << attempt.min(7);
    let ms = rand::rng().random_range(0..=cap.min(100));
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// A team's roles: the catalog's and its own.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RolesView {
    pub system: Vec<teamform_core::catalog::RoleDef>,
    /// Custom roles by name.
    pub custom: std::collections::BTreeMap<RoleName, CustomRole>,
}

impl Service {
    /// Runs the one change `build` makes from the live team, read as far as
    /// the caller and `people` go (a fixed number of items whatever the
    /// team's size), at the version it was read (or at `expected`, the
    /// caller's `If-Match`).
    ///
    /// Without `If-Match`, a write that lost a race to another writer is
    /// re-read and rebuilt, a few times with jittered waits: the change is
    /// validated afresh each time, so the retry is safe, and concurrent
    /// one-person writes succeed instead of bouncing with 409. With
    /// `If-Match` the caller asked for exactly one version, and gets 412.
    pub(crate) async fn single_change(
        &self,
        team: &TeamId,
        who: &Principal,
        people: &[&Email],
        expected: Option<u64>,
        build: impl Fn(&teamform_core::TeamState) -> Result<Change, ServiceError>,
    ) -> Result<Applied, ServiceError> {
        let mut attempt = 0u32;
        let _turn = self.write_turn(team).await;
        loop {
            let scoped = self
                .visible_scoped(team, who, people.iter().copied())
                .await?;
            if let Some(expected) = expected
                && expected != scoped.state.version
            {
                return Err(ServiceError::VersionConflict {
                    expected,
                    actual: scoped.state.version,
                });
            }
            let change = build(&scoped.state)?;
            let version = scoped.state.version;
            let named = scoped.people.clone();
            let result = self
                .execute_on(
                    team,
                    who,
                    Some(scoped),
                    named,
                    std::slice::from_ref(&change),
                    Some(version),
                    &BatchOptions::default(),
                )
                .await;
            match result {
                Err(ServiceError::VersionConflict { .. })
                    if expected.is_none() && attempt < RETRIES =>
                {
                    attempt += 1;
                    backoff(attempt).await;
                }
                other => return other,
            }
        }
    }

    pub async fn invite(
        &self,
        team: &TeamId,
        who: &Principal,
        email: Email,
        name: Option<String>,
        roles: Roles,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[&email], expected, |_| {
            Ok(Change::Invite {
                email: email.clone(),
                name: name.clone(),
                roles: roles.clone(),
            })
        })
        .await
    }

    /// Sets the roles of a member, or of a pending invitation.
    pub async fn set_roles(
        &self,
        team: &TeamId,
        who: &Principal,
        email: &Email,
        roles: Roles,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[email], expected, |state| {
            if let Some(m) = state.members.get(email) {
                Ok(Change::ChangeRoles {
                    email: m.email.clone(),
                    from: m.roles.clone(),
                    to: roles.clone(),
                })
            } else if let Some(i) = state.invitations.get(email) {
                Ok(Change::ChangeInvitationRoles {
                    email: i.email.clone(),
                    from: i.roles.clone(),
                    to: roles.clone(),
                })
            } else {
                Err(ServiceError::NotFound)
            }
        })
        .await
    }

    pub async fn remove_member(
        &self,
        team: &TeamId,
        who: &Principal,
        email: &Email,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[email], expected, |state| {
            let m = state.members.get(email).ok_or(ServiceError::NotFound)?;
            Ok(Change::RemoveMember {
                email: m.email.clone(),
                roles: m.roles.clone(),
            })
        })
        .await
    }

    pub async fn settings(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<(Settings, u64), ServiceError> {
        let state = self.authorized(team, who, perm::SETTINGS_READ).await?;
        Ok((state.settings, state.version))
    }

    pub async fn set_settings(
        &self,
        team: &TeamId,
        who: &Principal,
        settings: Settings,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[], expected, |state| {
            Ok(Change::UpdateSettings {
                from: state.settings.clone(),
                to: settings.clone(),
            })
        })
        .await
    }

    pub async fn roles(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<(RolesView, u64), ServiceError> {
        let state = self.authorized(team, who, perm::MEMBERS_READ).await?;
        Ok((
            RolesView {
                system: self.catalog().roles.clone(),
                custom: state.roles,
            },
            state.version,
        ))
    }

    /// Creates or replaces a custom role.
    pub async fn put_role(
        &self,
        team: &TeamId,
        who: &Principal,
        name: RoleName,
        role: CustomRole,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[], expected, |state| {
            Ok(match state.roles.get(&name) {
                Some(from) => Change::UpdateRole {
                    name: name.clone(),
                    from: from.clone(),
                    to: role.clone(),
                },
                None => Change::CreateRole {
                    name: name.clone(),
                    role: role.clone(),
                },
            })
        })
        .await
    }

    pub async fn delete_role(
        &self,
        team: &TeamId,
        who: &Principal,
        name: &RoleName,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[], expected, |state| {
            let role = state.roles.get(name).ok_or(ServiceError::NotFound)?;
            Ok(Change::DeleteRole {
                name: name.clone(),
                role: role.clone(),
            })
        })
        .await
    }
}
