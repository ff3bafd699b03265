//! Changes: the unit a plan is made of and the service executes. Each change
//! names the permission it needs and knows how to apply itself to a
//! `TeamState`, checking the invariants (exactly one owner, one entry per
//! email, roles that exist, owner never removed) as it goes.
//!
//! Applying is pure: the caller passes `now` and persists the result.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, RoleName};
use crate::model::{
    CustomRole, Email, Invitation, Member, PendingTransfer, Roles, Settings, TeamState, Timestamp,
};

/// How long an ownership transfer waits for both confirmations.
pub const TRANSFER_TTL_DAYS: i64 = 7;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Change {
    CreateTeam {
        display_name: String,
        owner: Email,
    },
    RenameTeam {
        from: String,
        to: String,
    },
    CreateRole {
        name: RoleName,
        role: CustomRole,
    },
    UpdateRole {
        name: RoleName,
        from: CustomRole,
        to: CustomRole,
    },
    DeleteRole {
        name: RoleName,
        role: CustomRole,
    },
    UpdateSettings {
        from: Settings,
        to: Settings,
    },
    Invite {
        email: Email,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        roles: Roles,
    },
    /// A new link for an invitation that expired.
    Reinvite {
        email: Email,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        roles: Roles,
        expired_at: Timestamp,
    },
    ChangeInvitationRoles {
        email: Email,
        from: Roles,
        to: Roles,
    },
    ChangeRoles {
        email: Email,
        from: Roles,
        to: Roles,
    },
    RevokeInvitation {
        email: Email,
        roles: Roles,
        created_at: Timestamp,
    },
    RemoveMember {
        email: Email,
        roles: Roles,
    },
    /// Starts the two-step transfer; it completes when both people confirm.
    TransferOwnership {
        from: Email,
        to: Email,
    },
}

/// What the actor must hold to make a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Permission(&'static str),
    /// Only the owner may make this change.
    Owner,
}

/// The sections of a plan, in the order they are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Team,
    Roles,
    Settings,
    Members,
    Removals,
    RoleDeletions,
    Ownership,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("team `{0}` already exists")]
    TeamExists(String),
    #[error("{0} is already a member")]
    AlreadyMember(String),
    #[error("{0} already has a pending invitation")]
    AlreadyInvited(String),
    #[error("{0} is not a member")]
    NotMember(String),
    #[error("{0} has no pending invitation")]
    NotInvited(String),
    #[error(
        "{0} is the owner: ownership changes only by transfer, and the owner cannot be removed"
    )]
    OwnerProtected(String),
    #[error("unknown role `{0}`")]
    UnknownRole(String),
    #[error("`owner` cannot be assigned; transfer ownership instead")]
    OwnerRole,
    #[error("at least one role is required")]
    NoRoles,
    #[error("this catalog allows one role per member, got {0}")]
    SingleRole(usize),
    #[error("custom roles are not enabled in this catalog")]
    CustomRolesDisabled,
    #[error("role `{0}` already exists")]
    RoleExists(String),
    #[error("role `{0}` is still held by {1}")]
    RoleInUse(String, String),
    #[error("unknown permission `{0}`")]
    UnknownPermission(String),
    #[error("the team's seat limit of {0} is reached")]
    SeatLimit(u32),
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
    #[error("{0} is already the owner")]
    AlreadyOwner(String),
}

impl ChangeError {
    /// A stable machine-readable code, used in API errors.
    pub fn code(&self) -> &'static str {
        match self {
            ChangeError::TeamExists(_) => "team_exists",
            ChangeError::AlreadyMember(_) => "already_member",
            ChangeError::AlreadyInvited(_) => "already_invited",
            ChangeError::NotMember(_) => "not_member",
            ChangeError::NotInvited(_) => "not_invited",
            ChangeError::OwnerProtected(_) => "owner_protected",
            ChangeError::UnknownRole(_) => "unknown_role",
            ChangeError::OwnerRole => "owner_role",
            ChangeError::NoRoles => "no_roles",
            ChangeError::SingleRole(_) => "single_role",
            ChangeError::CustomRolesDisabled => "custom_roles_disabled",
            ChangeError::RoleExists(_) => "role_exists",
            ChangeError::RoleInUse(..) => "role_in_use",
            ChangeError::UnknownPermission(_) => "unknown_permission",
            ChangeError::SeatLimit(_) => "seat_limit_reached",
            ChangeError::InvalidSetting(_) => "invalid_setting",
            ChangeError::AlreadyOwner(_) => "already_owner",
        }
    }
}

impl Change {
    pub fn requirement(&self) -> Requirement {
        use Requirement::*;
        match self {
            Change::CreateTeam { .. } | Change::TransferOwnership { .. } => Owner,
            Change::RenameTeam { .. } => Permission("team.settings.manage"),
            Change::UpdateSettings { from, to } if from.require_2fa != to.require_2fa => {
                Permission("team.security.manage")
            }
            Change::UpdateSettings { .. } => Permission("team.settings.manage"),
            Change::CreateRole { .. } | Change::UpdateRole { .. } | Change::DeleteRole { .. } => {
                Permission("team.roles.manage")
            }
            Change::Invite { .. } | Change::Reinvite { .. } | Change::RevokeInvitation { .. } => {
                Permission("team.members.invite")
            }
            Change::ChangeInvitationRoles { .. } | Change::ChangeRoles { .. } => {
                Permission("team.members.roles")
            }
            Change::RemoveMember { .. } => Permission("team.members.remove"),
        }
    }

    pub fn stage(&self) -> Stage {
        match self {
            Change::CreateTeam { .. } => Stage::Team,
            Change::CreateRole { .. } | Change::UpdateRole { .. } => Stage::Roles,
            Change::RenameTeam { .. } | Change::UpdateSettings { .. } => Stage::Settings,
            Change::Invite { .. }
            | Change::Reinvite { .. }
            | Change::ChangeInvitationRoles { .. }
            | Change::ChangeRoles { .. } => Stage::Members,
            Change::RevokeInvitation { .. } | Change::RemoveMember { .. } => Stage::Removals,
            Change::DeleteRole { .. } => Stage::RoleDeletions,
            Change::TransferOwnership { .. } => Stage::Ownership,
        }
    }

    /// Whether this change takes something away (counts against the removal limit).
    pub fn is_removal(&self) -> bool {
        matches!(
            self,
            Change::RevokeInvitation { .. }
                | Change::RemoveMember { .. }
                | Change::DeleteRole { .. }
        )
    }

    /// The person a change is about, if any.
    pub fn subject(&self) -> Option<&Email> {
        match self {
            Change::Invite { email, .. }
            | Change::Reinvite { email, .. }
            | Change::ChangeInvitationRoles { email, .. }
            | Change::ChangeRoles { email, .. }
            | Change::RevokeInvitation { email, .. }
            | Change::RemoveMember { email, .. } => Some(email),
            Change::TransferOwnership { to, .. } => Some(to),
            Change::CreateTeam { owner, .. } => Some(owner),
            _ => None,
        }
    }

    /// A short stable name for audit records and counts.
    pub fn action(&self) -> &'static str {
        match self {
            Change::CreateTeam { .. } => "create_team",
            Change::RenameTeam { .. } => "rename_team",
            Change::CreateRole { .. } => "create_role",
            Change::UpdateRole { .. } => "update_role",
            Change::DeleteRole { .. } => "delete_role",
            Change::UpdateSettings { .. } => "update_settings",
            Change::Invite { .. } => "invite",
            Change::Reinvite { .. } => "reinvite",
            Change::ChangeInvitationRoles { .. } => "change_invitation_roles",
            Change::ChangeRoles { .. } => "change_roles",
            Change::RevokeInvitation { .. } => "revoke_invitation",
            Change::RemoveMember { .. } => "remove_member",
            Change::TransferOwnership { .. } => "transfer_ownership",
        }
    }
}

/// Checks a set of roles for a member or invitation.
pub fn check_roles(roles: &Roles, catalog: &Catalog, state: &TeamState) -> Result<(), ChangeError> {
    if roles.is_empty() {
        return Err(ChangeError::NoRoles);
    }
    for role in roles {
        if role.is_owner() {
            return Err(ChangeError::OwnerRole);
        }
        if !catalog.has_role(role) && !state.roles.contains_key(role) {
            return Err(ChangeError::UnknownRole(role.to_string()));
        }
    }
    if !catalog.multiple_roles && roles.len() > 1 {
        return Err(ChangeError::SingleRole(roles.len()));
    }
    Ok(())
}

fn check_custom_role(
    name: &RoleName,
    role: &CustomRole,
    catalog: &Catalog,
) -> Result<(), ChangeError> {
    if !catalog.custom_roles {
        return Err(ChangeError::CustomRolesDisabled);
    }
    if name.is_owner() || catalog.has_role(name) {
        return Err(ChangeError::RoleExists(name.to_string()));
    }
    for p in &role.permissions {
        if catalog.permission(p.as_str()).is_none() {
            return Err(ChangeError::UnknownPermission(p.to_string()));
        }
    }
    Ok(())
}

pub fn check_settings(settings: &Settings) -> Result<(), ChangeError> {
    if !(1..=365).contains(&settings.invitation_ttl_days) {
        return Err(ChangeError::InvalidSetting(
            "invitation_ttl_days must be between 1 and 365".into(),
        ));
    }
    if settings
        .seat_limit
        .is_some_and(|n| !(1..=Settings::MAX_SEAT_LIMIT).contains(&n))
    {
        return Err(ChangeError::InvalidSetting(format!(
            "seat_limit must be between 1 and {}",
            Settings::MAX_SEAT_LIMIT
        )));
    }
    Ok(())
}

impl TeamState {
    /// Applies one change, checking every invariant it could break. On error
    /// the state is unchanged. Does not touch `version`.
    pub fn apply(
        &mut self,
        change: &Change,
        catalog: &Catalog,
        now: Timestamp,
    ) -> Result<(), ChangeError> {
        match change {
            Change::CreateTeam {
                display_name,
                owner,
            } => {
                if self.version != 0 {
                    return Err(ChangeError::TeamExists(self.team.to_string()));
                }
                *self = TeamState::new(self.team.clone(), display_name.clone(), owner.clone(), now);
            }
            Change::RenameTeam { to, .. } => {
                if to.trim().is_empty() || to.len() > 200 {
                    return Err(ChangeError::InvalidSetting(
                        "display_name must be 1 to 200 characters".into(),
                    ));
                }
                self.display_name = to.clone();
            }
            Change::CreateRole { name, role } => {
                check_custom_role(name, role, catalog)?;
                if self.roles.contains_key(name) {
                    return Err(ChangeError::RoleExists(name.to_string()));
                }
                self.roles.insert(name.clone(), role.clone());
            }
            Change::UpdateRole { name, to, .. } => {
                check_custom_role(name, to, catalog)?;
                let slot = self
                    .roles
                    .get_mut(name)
                    .ok_or_else(|| ChangeError::UnknownRole(name.to_string()))?;
                *slot = to.clone();
            }
            Change::DeleteRole { name, .. } => {
                if !self.roles.contains_key(name) {
                    return Err(ChangeError::UnknownRole(name.to_string()));
                }
                let holder = self
                    .members
                    .values()
                    .map(|m| (&m.email, &m.roles))
                    .chain(self.invitations.values().map(|i| (&i.email, &i.roles)))
                    .find(|(_, roles)| roles.contains(name));
                if let Some((email, _)) = holder {
                    return Err(ChangeError::RoleInUse(name.to_string(), email.to_string()));
                }
                self.roles.remove(name);
            }
            Change::UpdateSettings { to, .. } => {
                check_settings(to)?;
                self.settings = to.clone();
            }
            Change::Invite { email, name, roles } => {
                if self.members.contains_key(email) {
                    return Err(ChangeError::AlreadyMember(email.to_string()));
                }
                if self.invitations.contains_key(email) {
                    return Err(ChangeError::AlreadyInvited(email.to_string()));
                }
                check_roles(roles, catalog, self)?;
                let invitation = self.new_invitation(email, name, roles, now);
                self.invitations.insert(email.clone(), invitation);
            }
            Change::Reinvite {
                email, name, roles, ..
            } => {
                if !self.invitations.contains_key(email) {
                    return Err(ChangeError::NotInvited(email.to_string()));
                }
                check_roles(roles, catalog, self)?;
                let invitation = self.new_invitation(email, name, roles, now);
                self.invitations.insert(email.clone(), invitation);
            }
            Change::ChangeInvitationRoles { email, to, .. } => {
                check_roles(to, catalog, self)?;
                let inv = self
                    .invitations
                    .get_mut(email)
                    .ok_or_else(|| ChangeError::NotInvited(email.to_string()))?;
                inv.roles = to.clone();
            }
            Change::ChangeRoles { email, to, .. } => {
                if email == &self.owner {
                    return Err(ChangeError::OwnerProtected(email.to_string()));
                }
                check_roles(to, catalog, self)?;
                let member = self
                    .members
                    .get_mut(email)
                    .ok_or_else(|| ChangeError::NotMember(email.to_string()))?;
                member.roles = to.clone();
            }
            Change::RevokeInvitation { email, .. } => {
                if self.invitations.remove(email).is_none() {
                    return Err(ChangeError::NotInvited(email.to_string()));
                }
            }
            Change::RemoveMember { email, .. } => {
                if email == &self.owner {
                    return Err(ChangeError::OwnerProtected(email.to_string()));
                }
                if self.members.remove(email).is_none() {
                    return Err(ChangeError::NotMember(email.to_string()));
                }
                // A transfer to someone who left cannot complete.
                if self.transfer.as_ref().is_some_and(|t| &t.to == email) {
                    self.transfer = None;
                }
            }
            Change::TransferOwnership { to, .. } => {
                if to == &self.owner {
                    return Err(ChangeError::AlreadyOwner(to.to_string()));
                }
                self.transfer = Some(PendingTransfer {
                    from: self.owner.clone(),
                    to: to.clone(),
                    started_at: now,
                    expires_at: now + Duration::days(TRANSFER_TTL_DAYS),
                    owner_confirmed: false,
                    link: String::new(),
                });
            }
        }
        Ok(())
    }

    fn new_invitation(
        &self,
        email: &Email,
        name: &Option<String>,
        roles: &Roles,
        now: Timestamp,
    ) -> Invitation {
        Invitation {
            email: email.clone(),
            name: name.clone(),
            roles: roles.clone(),
            created_at: now,
            expires_at: now + Duration::days(i64::from(self.settings.invitation_ttl_days)),
            invited_by: None,
            link: String::new(),
        }
    }

    /// Completes a pending transfer: the new owner holds `owner`, the previous
    /// owner holds the catalog's `previous_owner_role`. Exactly one owner
    /// before and after.
    pub fn complete_transfer(&mut self, catalog: &Catalog, now: Timestamp) -> Option<()> {
        let transfer = self.transfer.take()?;
        let previous = self.owner.clone();
        if let Some(m) = self.members.get_mut(&previous) {
            m.roles = BTreeSet::from([catalog.previous_owner_role.clone()]);
        }
        let name = self.invitations.remove(&transfer.to).and_then(|i| i.name);
        let member = self
            .members
            .entry(transfer.to.clone())
            .or_insert_with(|| Member {
                email: transfer.to.clone(),
                name,
                roles: BTreeSet::new(),
                joined_at: now,
                two_factor: false,
            });
        member.roles = BTreeSet::from([RoleName::owner()]);
        self.owner = transfer.to;
        Some(())
    }

    /// Whether members plus pending invitations fit the seat limit. Checked
    /// after a whole batch, so that a plan swapping one person for another
    /// at the limit (invites are applied before removals) is not refused.
    pub fn check_seats(&self, now: Timestamp) -> Result<(), ChangeError> {
        match self.settings.seat_limit {
            Some(limit) if self.seats_used(now) > limit as usize => {
                Err(ChangeError::SeatLimit(limit))
            }
            _ => Ok(()),
        }
    }

    /// The invariants that must hold after any sequence of changes.
    pub fn check_invariants(&self) -> Result<(), String> {
        let owners: Vec<_> = self
            .members
            .values()
            .filter(|m| m.roles.iter().any(RoleName::is_owner))
            .collect();
        if owners.len() != 1 {
            return Err(format!(
                "expected exactly one owner, found {}",
                owners.len()
            ));
        }
        if owners.first().map(|m| &m.email) != Some(&self.owner) {
            return Err("the owner field does not name the member holding `owner`".into());
        }
        if let Some(e) = self
            .invitations
            .keys()
            .find(|e| self.members.contains_key(*e))
        {
            return Err(format!("{e} is both a member and invited"));
        }
        Ok(())
    }
}
