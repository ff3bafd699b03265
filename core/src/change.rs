//! Changes: the unit a plan is made of and the service executes. Each change
//! names the permission it needs and knows how to apply itself to a
//! `TeamState`, checking the invariants (exactly one owner, one entry per
//! email, roles that exist, owner never removed) as it goes.
//!
//! Applying is pure: the caller passes `now` and persists the result.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Permission, RoleName, perm};
use crate::model::{
    CustomRole, Email, Invitation, Member, PendingTransfer, Roles, Settings, TeamState, Timestamp,
};

/// How long an ownership transfer waits for both confirmations.
pub const TRANSFER_TTL_DAYS: i64 = 7;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    remote = "Self",
    tag = "op",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum Change {
    #[cfg_attr(feature = "openapi", schema(title = "CreateTeam"))]
    CreateTeam { display_name: String, owner: Email },
    #[cfg_attr(feature = "openapi", schema(title = "RenameTeam"))]
    RenameTeam { from: String, to: String },
    #[cfg_attr(feature = "openapi", schema(title = "CreateRole"))]
    CreateRole { name: RoleName, role: CustomRole },
    #[cfg_attr(feature = "openapi", schema(title = "UpdateRole"))]
    UpdateRole {
        name: RoleName,
        from: CustomRole,
        to: CustomRole,
    },
    #[cfg_attr(feature = "openapi", schema(title = "DeleteRole"))]
    DeleteRole { name: RoleName, role: CustomRole },
    #[cfg_attr(feature = "openapi", schema(title = "UpdateSettings"))]
    UpdateSettings { from: Settings, to: Settings },
    #[cfg_attr(feature = "openapi", schema(title = "Invite"))]
    Invite {
        email: Email,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        roles: Roles,
    },
    /// A new link for an invitation that expired.
    #[cfg_attr(feature = "openapi", schema(title = "Reinvite"))]
    Reinvite {
        email: Email,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        roles: Roles,
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        expired_at: Timestamp,
    },
    /// A person the team's identity provider vouches for joins at once,
    /// without an invitation (SCIM provisioning with the setting
    /// `scim_provisioning: members`). Only a SCIM token makes it: sent to
    /// `POST /teams/{team}/changes` it is refused with 403.
    #[cfg_attr(feature = "openapi", schema(title = "AddMember"))]
    AddMember {
        email: Email,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        roles: Roles,
    },
    #[cfg_attr(feature = "openapi", schema(title = "ChangeInvitationRoles"))]
    ChangeInvitationRoles {
        email: Email,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        from: Roles,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        to: Roles,
    },
    #[cfg_attr(feature = "openapi", schema(title = "ChangeRoles"))]
    ChangeRoles {
        email: Email,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        from: Roles,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        to: Roles,
    },
    #[cfg_attr(feature = "openapi", schema(title = "RevokeInvitation"))]
    RevokeInvitation {
        email: Email,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        roles: Roles,
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
        created_at: Timestamp,
    },
    #[cfg_attr(feature = "openapi", schema(title = "RemoveMember"))]
    RemoveMember {
        email: Email,
        #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
        roles: Roles,
    },
    /// Starts the two-step transfer; it completes when both people confirm.
    #[cfg_attr(feature = "openapi", schema(title = "TransferOwnership"))]
    TransferOwnership { from: Email, to: Email },
}

crate::map_only!(Change, "a change object with an `op`");

/// What the actor must hold to make a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    Permission(&'static str),
    /// Only the owner may make this change.
    Owner,
    /// Only the team's identity provider, through a SCIM token, may make
    /// this change: not the owner, nor any person or API key, whatever they
    /// hold. Adding a member without an invitation skips the person's own
    /// consent (accepting a link, signing in), which only the provider that
    /// manages the person's account can stand in for; anyone else invites.
    Provisioner,
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
    /// The change's before-image is not the live team.
    #[error("stale change: {0}; plan again")]
    Stale(String),
    /// A name or display name that cannot be shown safely.
    #[error("{0}")]
    InvalidText(String),
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
            ChangeError::Stale(_) => "stale_change",
            ChangeError::InvalidText(_) => "invalid_text",
        }
    }
}

impl Change {
    /// What the actor must hold to make this change to `live`, the team as
    /// it stands when the change is applied. Computed from live state and the
    /// change's target only, never from the change's own before-image: a
    /// client cannot lower a requirement by describing the team wrongly.
    pub fn requirements(&self, live: &TeamState) -> Vec<Requirement> {
        use Requirement::*;
        match self {
            Change::CreateTeam { .. } | Change::TransferOwnership { .. } => vec![Owner],
            Change::RenameTeam { .. } => vec![Permission(perm::SETTINGS_MANAGE)],
            Change::UpdateSettings { to, .. } => {
                let live = &live.settings;
                let mut needs = Vec::new();
                if live.require_2fa != to.require_2fa {
                    needs.push(Permission(perm::SECURITY_MANAGE));
                }
                // Letting the identity provider add members without an
                // invitation is a decision about SCIM tokens: it is for whoever
                // manages them.
                if live.scim_provisioning != to.scim_provisioning {
                    needs.push(Permission(perm::SCIM_MANAGE));
                }
                let Settings {
                    require_2fa: _,
                    invitation_ttl_days,
                    seat_limit,
                    scim_provisioning: _,
                } = to;
                let others_change = live.invitation_ttl_days != *invitation_ttl_days
                    || live.seat_limit != *seat_limit;
                if others_change || needs.is_empty() {
                    needs.push(Permission(perm::SETTINGS_MANAGE));
                }
                needs
            }
            Change::CreateRole { .. } | Change::UpdateRole { .. } | Change::DeleteRole { .. } => {
                vec![Permission(perm::ROLES_MANAGE)]
            }
            Change::Invite { .. } | Change::Reinvite { .. } | Change::RevokeInvitation { .. } => {
                vec![Permission(perm::MEMBERS_INVITE)]
            }
            // The provider adds people as it invites them: the token must
            // hold `team.members.invite` too (it holds its creator's).
            Change::AddMember { .. } => vec![Provisioner, Permission(perm::MEMBERS_INVITE)],
            Change::ChangeInvitationRoles { .. } | Change::ChangeRoles { .. } => {
                vec![Permission(perm::MEMBERS_ROLES)]
            }
            Change::RemoveMember { .. } => vec![Permission(perm::MEMBERS_REMOVE)],
        }
    }

    /// The permissions this change gives to someone who did not hold them
    /// through its target before, judged against `live` (the team before the
    /// change): every permission of the roles an invitation carries (a new
    /// link is a new grant), the permissions a role change adds to a person,
    /// and the permissions a custom-role edit adds to the role. Taking
    /// permissions away grants nothing. The service refuses a change whose
    /// grant exceeds what its actor holds.
    pub fn grants<'a>(
        &'a self,
        live: &'a TeamState,
        catalog: &'a Catalog,
    ) -> BTreeSet<&'a Permission> {
        let of = |roles: &'a Roles| catalog.permissions_of(roles, &live.roles);
        let added = |before: BTreeSet<&'a Permission>, after: BTreeSet<&'a Permission>| {
            after.difference(&before).copied().collect()
        };
        match self {
            Change::Invite { roles, .. }
            | Change::Reinvite { roles, .. }
            | Change::AddMember { roles, .. } => of(roles),
            Change::ChangeInvitationRoles { email, to, .. } => {
                let before = live
                    .invitations
                    .get(email)
                    .map(|i| of(&i.roles))
                    .unwrap_or_default();
                added(before, of(to))
            }
            Change::ChangeRoles { email, to, .. } => {
                let before = live
                    .members
                    .get(email)
                    .map(|m| of(&m.roles))
                    .unwrap_or_default();
                added(before, of(to))
            }
            Change::CreateRole { role, .. } => role.permissions.iter().collect(),
            Change::UpdateRole { name, to, .. } => {
                let before = live
                    .roles
                    .get(name)
                    .map(|r| r.permissions.iter().collect())
                    .unwrap_or_default();
                added(before, to.permissions.iter().collect())
            }
            Change::CreateTeam { .. }
            | Change::RenameTeam { .. }
            | Change::UpdateSettings { .. }
            | Change::DeleteRole { .. }
            | Change::RevokeInvitation { .. }
            | Change::RemoveMember { .. }
            | Change::TransferOwnership { .. } => BTreeSet::new(),
        }
    }

    /// Compares the change's before-image (`from`, the roles it removes, the
    /// invitation it revokes) with `live`. A change describing a team that is
    /// not the live one is stale: it was planned against another version, or
    /// a client is lying about the team. A target that does not exist at all
    /// is left to `apply`, which names it precisely.
    pub fn check_before_image(&self, live: &TeamState) -> Result<(), ChangeError> {
        let stale = |what: String| Err(ChangeError::Stale(what));
        match self {
            Change::RenameTeam { from, .. } if from != &live.display_name => {
                stale(format!("the display name is `{}`", live.display_name))
            }
            Change::UpdateSettings { from, .. } if from != &live.settings => {
                stale("the settings differ from `from`".into())
            }
            Change::UpdateRole {
                name, from: role, ..
            }
            | Change::DeleteRole { name, role }
                if live.roles.get(name).is_some_and(|r| r != role) =>
            {
                stale(format!("role `{name}` differs from the one given"))
            }
            Change::ChangeRoles { email, from, .. }
            | Change::RemoveMember { email, roles: from }
                if live.members.get(email).is_some_and(|m| &m.roles != from) =>
            {
                stale(format!("{email} holds other roles"))
            }
            Change::ChangeInvitationRoles { email, from, .. }
                if live
                    .invitations
                    .get(email)
                    .is_some_and(|i| &i.roles != from) =>
            {
                stale(format!("the invitation of {email} carries other roles"))
            }
            Change::RevokeInvitation {
                email,
                roles,
                created_at,
            } if live
                .invitations
                .get(email)
                .is_some_and(|i| &i.roles != roles || &i.created_at != created_at) =>
            {
                stale(format!("the invitation of {email} is another one"))
            }
            Change::Reinvite {
                email, expired_at, ..
            } if live
                .invitations
                .get(email)
                .is_some_and(|i| &i.expires_at != expired_at) =>
            {
                stale(format!("the invitation of {email} is another one"))
            }
            Change::TransferOwnership { from, .. } if from != &live.owner => {
                stale(format!("the owner is {}", live.owner))
            }
            _ => Ok(()),
        }
    }

    pub fn stage(&self) -> Stage {
        match self {
            Change::CreateTeam { .. } => Stage::Team,
            Change::CreateRole { .. } | Change::UpdateRole { .. } => Stage::Roles,
            Change::RenameTeam { .. } | Change::UpdateSettings { .. } => Stage::Settings,
            Change::Invite { .. }
            | Change::Reinvite { .. }
            | Change::AddMember { .. }
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
            | Change::AddMember { email, .. }
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
            Change::AddMember { .. } => "add_member",
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

fn check_person_name(name: &Option<String>) -> Result<(), ChangeError> {
    match name {
        Some(n) => check_text("name", n, MAX_NAME_CHARS),
        None => Ok(()),
    }
}

fn check_custom_role(
    name: &RoleName,
    role: &CustomRole,
    catalog: &Catalog,
) -> Result<(), ChangeError> {
    if !catalog.custom_roles {
        return Err(ChangeError::CustomRolesDisabled);
    }
    check_description("the role's description", &role.description)?;
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

/// Longest display name of a team, and name of a person, role or credential.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest description of a custom role.
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Checks text that people see in emails, pages and logs: 1 to `max`
/// characters (`max` counted in characters, not bytes), not blank, and free
/// of control characters, line and paragraph separators and bidirectional
/// overrides, any of which could forge an email header, a log line or what a
/// reader sees. Every path that stores such text (HTTP, team.yaml) calls this.
pub fn check_text(what: &str, text: &str, max: usize) -> Result<(), ChangeError> {
    if text.trim().is_empty() {
        return Err(ChangeError::InvalidText(format!(
            "{what} must not be empty"
        )));
    }
    let count = text.chars().count();
    if count > max {
        return Err(ChangeError::InvalidText(format!(
            "{what} must be at most {max} characters, got {count}"
        )));
    }
    if let Some((i, c)) = text.chars().enumerate().find(|(_, c)| is_unsafe_char(*c)) {
        return Err(ChangeError::InvalidText(format!(
            "{what} contains the control character U+{:04X} at character {}",
            u32::from(c),
            i + 1
        )));
    }
    Ok(())
}

fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `check_text` for an optional description, which may be empty.
fn check_description(what: &str, text: &str) -> Result<(), ChangeError> {
    if text.is_empty() {
        return Ok(());
    }
    check_text(what, text, MAX_DESCRIPTION_CHARS)
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
        change.check_before_image(self)?;
        match change {
            Change::CreateTeam {
                display_name,
                owner,
            } => {
                if self.version != 0 {
                    return Err(ChangeError::TeamExists(self.team.to_string()));
                }
                check_text("display_name", display_name, MAX_NAME_CHARS)?;
                *self = TeamState::new(self.team.clone(), display_name.clone(), owner.clone(), now);
            }
            Change::RenameTeam { to, .. } => {
                check_text("display_name", to, MAX_NAME_CHARS)?;
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
                check_person_name(name)?;
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
                check_person_name(name)?;
                check_roles(roles, catalog, self)?;
                let invitation = self.new_invitation(email, name, roles, now);
                self.invitations.insert(email.clone(), invitation);
            }
            Change::AddMember { email, name, roles } => {
                // The invariants of accepting an invitation: one entry per
                // email, roles that exist and are never `owner`. The seat
                // limit is the service's to count (it holds the counters).
                if self.members.contains_key(email) {
                    return Err(ChangeError::AlreadyMember(email.to_string()));
                }
                if self.invitations.contains_key(email) {
                    return Err(ChangeError::AlreadyInvited(email.to_string()));
                }
                check_person_name(name)?;
                check_roles(roles, catalog, self)?;
                self.members.insert(
                    email.clone(),
                    Member {
                        email: email.clone(),
                        name: name.clone(),
                        roles: roles.clone(),
                        joined_at: now,
                        two_factor: false,
                    },
                );
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
            m.roles = Roles::from([catalog.previous_owner_role.clone()]);
        }
        let name = self.invitations.remove(&transfer.to).and_then(|i| i.name);
        let member = self
            .members
            .entry(transfer.to.clone())
            .or_insert_with(|| Member {
                email: transfer.to.clone(),
                name,
                roles: Roles::new(),
                joined_at: now,
                two_factor: false,
            });
        member.roles = Roles::from([RoleName::owner()]);
        self.owner = transfer.to;
        Some(())
    }

    /// The invariants that must hold after any sequence of changes.
    pub fn check_invariants(&self) -> Result<(), InvariantBroken> {
        let owners: Vec<_> = self
            .members
            .values()
            .filter(|m| m.roles.iter().any(RoleName::is_owner))
            .collect();
        if owners.len() != 1 {
            return Err(InvariantBroken::OwnerCount(owners.len()));
        }
        if owners.first().map(|m| &m.email) != Some(&self.owner) {
            return Err(InvariantBroken::OwnerField);
        }
        if let Some(e) = self
            .invitations
            .keys()
            .find(|e| self.members.contains_key(*e))
        {
            return Err(InvariantBroken::MemberAndInvited(e.clone()));
        }
        Ok(())
    }
}

/// An invariant of a team that a state breaks (`TeamState::check_invariants`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvariantBroken {
    #[error("expected exactly one owner, found {0}")]
    OwnerCount(usize),
    #[error("the owner field does not name the member holding `owner`")]
    OwnerField,
    #[error("{0} is both a member and invited")]
    MemberAndInvited(Email),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure is the report
    use super::*;
    use crate::model::TeamId;

    fn email(s: &str) -> Email {
        Email::parse(s).unwrap()
    }

    fn roles(names: &[&str]) -> Roles {
        names.iter().map(|n| RoleName::parse(n).unwrap()).collect()
    }

    fn add(who: &str, with: &[&str]) -> Change {
        Change::AddMember {
            email: email(who),
            name: Some("Bob".into()),
            roles: roles(with),
        }
    }

    #[test]
    fn add_member_keeps_the_invariants_of_an_accepted_invitation() {
        let catalog = Catalog::standard();
        let now = Timestamp::default();
        let mut team = TeamState::new(
            TeamId::parse("acme").unwrap(),
            "Acme".into(),
            email("alice@acme.com"),
            now,
        );
        team.version = 3;
        // 2FA required does not stop the identity provider.
        team.settings.require_2fa = true;
        team.apply(&add("Bob@Acme.com", &["viewer"]), &catalog, now)
            .unwrap();
        let bob = &team.members[&email("bob@acme.com")];
        assert_eq!(bob.roles, roles(&["viewer"]));
        assert_eq!(bob.name.as_deref(), Some("Bob"));
        assert_eq!(bob.joined_at, now);
        assert!(!bob.two_factor);
        team.check_invariants().unwrap();

        // One entry per email, whatever its case, member or invitation.
        let again = team.apply(&add("bob@acme.com", &["viewer"]), &catalog, now);
        assert_eq!(
            again,
            Err(ChangeError::AlreadyMember("bob@acme.com".into()))
        );
        let invite = Change::Invite {
            email: email("carol@acme.com"),
            name: None,
            roles: roles(&["viewer"]),
        };
        team.apply(&invite, &catalog, now).unwrap();
        let invited = team.apply(&add("carol@acme.com", &["viewer"]), &catalog, now);
        assert_eq!(
            invited,
            Err(ChangeError::AlreadyInvited("carol@acme.com".into()))
        );

        // Roles exist, are never `owner`, at least one.
        let before = team.clone();
        for (with, error) in [
            (&["owner"][..], ChangeError::OwnerRole),
            (&["nope"][..], ChangeError::UnknownRole("nope".into())),
            (&[][..], ChangeError::NoRoles),
        ] {
            let got = team.apply(&add("dan@acme.com", with), &catalog, now);
            assert_eq!(got, Err(error));
        }
        let control = Change::AddMember {
            email: email("dan@acme.com"),
            name: Some("Dan\u{202E}".into()),
            roles: roles(&["viewer"]),
        };
        assert!(matches!(
            team.apply(&control, &catalog, now),
            Err(ChangeError::InvalidText(_))
        ));
        assert_eq!(team, before, "a refused change leaves the team as it was");

        // Only a provisioner may make it, and it grants its roles.
        let change = add("erin@acme.com", &["admin"]);
        assert_eq!(
            change.requirements(&team),
            vec![
                Requirement::Provisioner,
                Requirement::Permission(perm::MEMBERS_INVITE)
            ]
        );
        assert_eq!(
            change.grants(&team, &catalog),
            catalog.permissions_of(&roles(&["admin"]), &team.roles)
        );
        assert_eq!(change.action(), "add_member");
        assert_eq!(change.stage(), Stage::Members);
        assert!(!change.is_removal());
    }

    #[test]
    fn changing_scim_provisioning_needs_the_scim_permission() {
        let team = TeamState::new(
            TeamId::parse("acme").unwrap(),
            "Acme".into(),
            email("alice@acme.com"),
            Timestamp::default(),
        );
        let to = Settings {
            scim_provisioning: crate::model::ScimProvisioning::Members,
            ..Settings::default()
        };
        let change = Change::UpdateSettings {
            from: Settings::default(),
            to,
        };
        assert_eq!(
            change.requirements(&team),
            vec![Requirement::Permission(perm::SCIM_MANAGE)]
        );
    }
}
