//! Resource-style operations for people and products that edit one thing at
//! a time (a UI, a script): each builds the one `Change` it means from the
//! live state and runs it through the same service path as a reconciler
//! batch, with the same authorization, invariants, audit and outbox.

use serde::{Deserialize, Serialize};
use teamform_core::model::{CustomRole, Roles, Settings};
use teamform_core::{Change, Email, RoleName, TeamId};

use crate::auth::Principal;
use crate::service::{Applied, BatchOptions, Service, ServiceError};

/// A team's roles: the catalog's and its own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolesView {
    pub system: Vec<teamform_core::catalog::RoleDef>,
    pub custom: std::collections::BTreeMap<RoleName, CustomRole>,
}

impl Service {
    /// Runs the one change `build` makes from the live team, at the version
    /// it was read (or at `expected`, the caller's `If-Match`).
    pub(crate) async fn single_change(
        &self,
        team: &TeamId,
        who: &Principal,
        expected: Option<u64>,
        build: impl FnOnce(&teamform_core::TeamState) -> Result<Change, ServiceError>,
    ) -> Result<Applied, ServiceError> {
        let state = self.visible(team, who).await?;
        if let Some(expected) = expected
            && expected != state.version
        {
            return Err(ServiceError::VersionConflict {
                expected,
                actual: state.version,
            });
        }
        let change = build(&state)?;
        self.execute(
            team,
            who,
            &[change],
            Some(state.version),
            &BatchOptions::default(),
        )
        .await
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
        self.single_change(team, who, expected, |_| {
            Ok(Change::Invite { email, name, roles })
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
        self.single_change(team, who, expected, |state| {
            if let Some(m) = state.members.get(email) {
                Ok(Change::ChangeRoles {
                    email: m.email.clone(),
                    from: m.roles.clone(),
                    to: roles,
                })
            } else if let Some(i) = state.invitations.get(email) {
                Ok(Change::ChangeInvitationRoles {
                    email: i.email.clone(),
                    from: i.roles.clone(),
                    to: roles,
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
        self.single_change(team, who, expected, |state| {
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
        let state = self.authorized(team, who, "team.settings.read").await?;
        Ok((state.settings, state.version))
    }

    pub async fn set_settings(
        &self,
        team: &TeamId,
        who: &Principal,
        settings: Settings,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, expected, |state| {
            Ok(Change::UpdateSettings {
                from: state.settings.clone(),
                to: settings,
            })
        })
        .await
    }

    pub async fn roles(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<(RolesView, u64), ServiceError> {
        let state = self.authorized(team, who, "team.members.read").await?;
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
        self.single_change(team, who, expected, |state| {
            Ok(match state.roles.get(&name) {
                Some(from) => Change::UpdateRole {
                    name,
                    from: from.clone(),
                    to: role,
                },
                None => Change::CreateRole { name, role },
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
        self.single_change(team, who, expected, |state| {
            let role = state.roles.get(name).ok_or(ServiceError::NotFound)?;
            Ok(Change::DeleteRole {
                name: name.clone(),
                role: role.clone(),
            })
        })
        .await
    }
}
