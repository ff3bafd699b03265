//! SCIM 2.0 provisioning (RFC 7643, RFC 7644): an identity provider (Okta,
//! Entra ID, Google) provisions people into one team through
//! `/scim/v2/{team}/Users` and `/Groups`, with a team's SCIM token
//! (`tokens`).
//!
//! A SCIM User is a person of the team: creating one invites them (with the
//! token's default role), `active: false` removes them (their roles are
//! remembered, and `active: true` invites them again), deleting one removes
//! them for good. With the team setting `scim_provisioning: members`,
//! creating and reactivating make the person a member at once
//! (`Change::AddMember`, no email) instead of inviting them. The owner is never deprovisioned. A Group is a role of
//! the team (catalog roles and custom roles); its members are the SCIM users
//! holding it, and changing them changes roles. Every change goes through
//! `Service::execute` (permissions, invariants, audit naming the token,
//! outbox), and the SCIM user's record is written in the same transaction.
//!
//! A user's record (`SCIMUSER#<id>`) keeps what the provider sent (userName,
//! externalId, name, displayName, emails, active); `SCIMNAME#<userName>` and
//! `SCIMMAIL#<email>` are its look-ups. The `id` is random and stable.

pub mod http;
mod patch;
pub mod tokens;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use teamform_core::change::{MAX_NAME_CHARS, check_text};
use teamform_core::model::{Roles, ScimProvisioning};
use teamform_core::{Change, Email, RoleName, TeamId, Timestamp};

use crate::auth::Principal;
use crate::auth::secret;
use crate::service::scoped::Scoped;
use crate::service::{Service, ServiceError};
use crate::store::codec;
use crate::store::{Condition, Item, PageRequest, Write};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

const USER_SK: &str = "SCIMUSER#";
const NAME_SK: &str = "SCIMNAME#";
const MAIL_SK: &str = "SCIMMAIL#";
const GROUP_SK: &str = "SCIMGROUP#";

/// The attributes of a user the provider may write, besides userName and
/// externalId, kept as sent (`active` as a boolean, when sent).
pub(crate) const KEPT: &[&str] = &["name", "displayName", "emails", "active"];

/// Largest stored text of a user's kept attributes.
const MAX_DOC_BYTES: usize = 16 * 1024;

/// What a SCIM request did wrong, or what stops it; the HTTP layer turns it
/// into a SCIM error body.
#[derive(Debug)]
pub enum ScimError {
    /// 400 with a `scimType` (invalidValue, invalidFilter, mutability, ...).
    Bad(&'static str, String),
    /// 409 uniqueness.
    Taken(String),
    Service(ServiceError),
}

impl From<ServiceError> for ScimError {
    fn from(e: ServiceError) -> Self {
        ScimError::Service(e)
    }
}

impl From<crate::store::StoreError> for ScimError {
    fn from(e: crate::store::StoreError) -> Self {
        ScimError::Service(e.into())
    }
}

pub(crate) fn bad(scim_type: &'static str, message: impl Into<String>) -> ScimError {
    ScimError::Bad(scim_type, message.into())
}

/// A provisioned user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    pub user_name: String,
    /// The person in the team: the primary email, else userName when it
    /// is one. A user without an email is kept, but is nobody in the team.
    #[serde(default)]
    pub email: Option<Email>,
    #[serde(default)]
    pub external_id: Option<String>,
    /// `KEPT` attributes as a JSON object text.
    pub doc: String,
    /// `active` as sent, true when absent: the person is in the team.
    pub active: bool,
    /// Roles given on reactivation: the last roles held.
    pub roles: Roles,
    pub created: Timestamp,
    pub modified: Timestamp,
    pub rev: u64,
}

/// What the provider asks a user to be (from POST, PUT, or PATCH applied).
#[derive(Debug, Clone)]
pub struct Desired {
    pub user_name: String,
    pub email: Option<Email>,
    pub external_id: Option<String>,
    pub kept: Map<String, Value>,
    pub active: bool,
}

impl Desired {
    /// Reads a SCIM User body. `active` accepts `"True"`/`"False"` as Entra
    /// ID sends them.
    pub fn parse(body: &Value) -> Result<Desired, ScimError> {
        let obj = body
            .as_object()
            .ok_or_else(|| bad("invalidSyntax", "a User is a JSON object"))?;
        let mut user_name = None;
        let mut external_id = None;
        let mut active = true;
        let mut kept = Map::new();
        for (key, value) in obj {
            let key = patch::attribute(key);
            match key.as_str() {
                "userName" => user_name = Some(patch::string(value, "userName")?),
                "externalId" if value.is_null() => external_id = None,
                "externalId" => external_id = Some(patch::string(value, "externalId")?),
                "active" if value.is_null() => {}
                "active" => {
                    active = patch::boolean(value)?;
                    kept.insert("active".into(), Value::Bool(active));
                }
                k if KEPT.contains(&k) && !value.is_null() => {
                    kept.insert(k.to_owned(), value.clone());
                }
                // Read-only and unknown attributes are ignored (RFC 7644 3.3,
                // 3.5.1): schemas, id, meta, groups, ...
                _ => {}
            }
        }
        let user_name = user_name.ok_or_else(|| bad("invalidValue", "userName is required"))?;
        if user_name.trim().is_empty() {
            return Err(bad("invalidValue", "userName is empty"));
        }
        check_text("userName", &user_name, MAX_NAME_CHARS)
            .map_err(|e| bad("invalidValue", e.to_string()))?;
        if let Some(x) = &external_id {
            check_text("externalId", x, MAX_NAME_CHARS)
                .map_err(|e| bad("invalidValue", e.to_string()))?;
        }
        let email = primary_email(&kept, &user_name)?;
        let doc = Value::Object(kept.clone()).to_string();
        if doc.len() > MAX_DOC_BYTES {
            return Err(bad(
                "invalidValue",
                format!("a user's attributes are limited to {MAX_DOC_BYTES} bytes"),
            ));
        }
        Ok(Desired {
            user_name,
            email,
            external_id,
            kept,
            active,
        })
    }

    /// The person's name for the invitation: displayName, else name.formatted,
    /// else given and family names.
    fn person_name(&self) -> Option<String> {
        let text = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let name = self.kept.get("name");
        let joined = || {
            let parts: Vec<String> = ["givenName", "familyName"]
                .iter()
                .filter_map(|k| text(name.and_then(|n| n.get(*k))))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        };
        text(self.kept.get("displayName"))
            .or_else(|| text(name.and_then(|n| n.get("formatted"))))
            .or_else(joined)
            .filter(|n| check_text("name", n, MAX_NAME_CHARS).is_ok())
    }
}

/// The person's email: the primary one of `emails`, else the first, else
/// the userName when it is an email.
fn primary_email(kept: &Map<String, Value>, user_name: &str) -> Result<Option<Email>, ScimError> {
    if let Some(emails) = kept.get("emails") {
        let list = emails
            .as_array()
            .ok_or_else(|| bad("invalidValue", "emails is a list"))?;
        let mut first = None;
        for e in list {
            let value = e
                .get("value")
                .and_then(Value::as_str)
                .ok_or_else(|| bad("invalidValue", "each of emails has a value"))?;
            let parsed = Email::parse(value)
                .map_err(|err| bad("invalidValue", format!("emails: `{value}`: {err}")))?;
            if e.get("primary").and_then(Value::as_bool) == Some(true) {
                return Ok(Some(parsed));
            }
            first.get_or_insert(parsed);
        }
        if first.is_some() {
            return Ok(first);
        }
    }
    Ok(Email::parse(user_name).ok())
}

fn user_sk(id: &str) -> String {
    format!("{USER_SK}{id}")
}
fn name_sk(user_name: &str) -> String {
    format!("{NAME_SK}{}", user_name.to_lowercase())
}
fn mail_sk(email: &Email) -> String {
    format!("{MAIL_SK}{}", email.key())
}

/// A user as the service answers it: the record and how the person stands.
#[derive(Debug, Clone)]
pub struct UserView {
    pub record: UserRecord,
    /// The person's roles now, when they are in the team.
    pub roles: Option<Roles>,
}

impl UserView {
    pub fn active(&self) -> bool {
        self.record.active
    }
}

/// Where a person stands: roles as a member or invitation, and the change
/// that removes them.
fn standing(state: &teamform_core::TeamState, email: Option<&Email>) -> Option<(Roles, Change)> {
    let email = email?;
    if let Some(m) = state.members.get(email) {
        return Some((
            m.roles.clone(),
            Change::RemoveMember {
                email: email.clone(),
                roles: m.roles.clone(),
            },
        ));
    }
    state.invitations.get(email).map(|i| {
        (
            i.roles.clone(),
            Change::RevokeInvitation {
                email: email.clone(),
                roles: i.roles.clone(),
                created_at: i.created_at,
            },
        )
    })
}

/// The change that gives a person present in `state` the roles `to`.
fn set_roles(state: &teamform_core::TeamState, email: Option<&Email>, to: Roles) -> Option<Change> {
    let email = email?;
    if let Some(m) = state.members.get(email) {
        return (m.roles != to).then(|| Change::ChangeRoles {
            email: email.clone(),
            from: m.roles.clone(),
            to,
        });
    }
    state.invitations.get(email).and_then(|i| {
        (i.roles != to).then(|| Change::ChangeInvitationRoles {
            email: email.clone(),
            from: i.roles.clone(),
            to,
        })
    })
}

/// The change that brings a person into the team, as the team's setting
/// `scim_provisioning` says: an invitation (emailed), or a member at once.
fn provision(
    state: &teamform_core::TeamState,
    email: &Email,
    name: Option<String>,
    roles: Roles,
) -> Change {
    let email = email.clone();
    match state.settings.scim_provisioning {
        ScimProvisioning::Invitations => Change::Invite { email, name, roles },
        ScimProvisioning::Members => Change::AddMember { email, name, roles },
    }
}

fn default_roles(who: &Principal) -> Roles {
    match who {
        Principal::Scim { default_role, .. } => [default_role.clone()].into_iter().collect(),
        _ => Roles::new(),
    }
}

fn put(item: Item) -> Write {
    Write::Put {
        item,
        condition: Condition::None,
    }
}

fn delete(pk: &str, sk: String) -> Write {
    Write::Delete {
        pk: pk.to_owned(),
        sk,
        condition: Condition::None,
    }
}

fn lookup(pk: &str, sk: String, id: &str) -> Item {
    Item::new(pk, sk).with("type", "scim_lookup").with("id", id)
}

impl Service {
    async fn scim_record(&self, team: &TeamId, id: &str) -> Result<Option<UserRecord>, ScimError> {
        match self
            .store()
            .get(&codec::team_pk(team), &user_sk(id))
            .await?
        {
            Some(item) => Ok(Some(codec::decode(&item, &[])?)),
            None => Ok(None),
        }
    }

    async fn scim_lookup(&self, team: &TeamId, sk: &str) -> Result<Option<String>, ScimError> {
        Ok(self
            .store()
            .get(&codec::team_pk(team), sk)
            .await?
            .and_then(|i| i.str("id").map(str::to_owned)))
    }

    /// A scoped read of the team for a SCIM principal: only the people named.
    async fn scim_scope(
        &self,
        team: &TeamId,
        who: &Principal,
        emails: &[&Email],
    ) -> Result<Scoped, ScimError> {
        Ok(self
            .visible_scoped(team, who, emails.iter().copied())
            .await?)
    }

    /// One user by id.
    pub async fn scim_get_user(
        &self,
        team: &TeamId,
        who: &Principal,
        id: &str,
    ) -> Result<UserView, ScimError> {
        self.authorized_scoped(team, who, teamform_core::catalog::perm::MEMBERS_READ)
            .await?;
        let record = self
            .scim_record(team, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let emails: Vec<&Email> = record.email.iter().collect();
        let scoped = self.scim_scope(team, who, &emails).await?;
        let roles = standing(&scoped.state, record.email.as_ref()).map(|(r, _)| r);
        Ok(UserView { record, roles })
    }

    /// Users by userName (one look-up), or every user: the records, in id
    /// order, with their standing read for the page only.
    pub async fn scim_list_users(
        &self,
        team: &TeamId,
        who: &Principal,
        filter: Option<&patch::Filter>,
        start: usize,
        count: usize,
    ) -> Result<(usize, Vec<UserView>), ScimError> {
        self.authorized_scoped(team, who, teamform_core::catalog::perm::MEMBERS_READ)
            .await?;
        let pk = codec::team_pk(team);
        let records: Vec<UserRecord> = match filter {
            Some(f) if f.attribute == "userName" => {
                match self.scim_lookup(team, &name_sk(&f.value)).await? {
                    Some(id) => self.scim_record(team, &id).await?.into_iter().collect(),
                    None => Vec::new(),
                }
            }
            Some(f) if f.attribute == "id" => self
                .scim_record(team, &f.value)
                .await?
                .into_iter()
                .collect(),
            _ => {
                let mut out = Vec::new();
                let mut after = None;
                loop {
                    let page = self
                        .store()
                        .query(&pk, USER_SK, PageRequest { limit: None, after })
                        .await?;
                    for item in &page.items {
                        let r: UserRecord = codec::decode(item, &[])?;
                        if filter.is_none_or(|f| f.matches(&r)) {
                            out.push(r);
                        }
                    }
                    match page.next {
                        Some(next) => after = Some(next),
                        None => break,
                    }
                }
                out
            }
        };
        let total = records.len();
        let page: Vec<UserRecord> = records
            .into_iter()
            .skip(start.saturating_sub(1))
            .take(count)
            .collect();
        if page.is_empty() {
            return Ok((total, Vec::new()));
        }
        let emails: Vec<&Email> = page.iter().filter_map(|r| r.email.as_ref()).collect();
        let scoped = self.scim_scope(team, who, &emails).await?;
        let views = page
            .into_iter()
            .map(|record| {
                let roles = standing(&scoped.state, record.email.as_ref()).map(|(r, _)| r);
                UserView { record, roles }
            })
            .collect();
        Ok((total, views))
    }

    /// POST /Users: invites the person, or adds them as a member under
    /// `scim_provisioning: members` (or adopts one already in the team).
    pub async fn scim_create_user(
        &self,
        team: &TeamId,
        who: &Principal,
        desired: Desired,
    ) -> Result<UserView, ScimError> {
        let _turn = self.write_turn(team).await;
        let emails: Vec<&Email> = desired.email.iter().collect();
        let scoped = self.scim_scope(team, who, &emails).await?;
        if self
            .scim_lookup(team, &name_sk(&desired.user_name))
            .await?
            .is_some()
        {
            return Err(ScimError::Taken(format!(
                "a user with userName `{}` exists",
                desired.user_name
            )));
        }
        if let Some(email) = &desired.email
            && self.scim_lookup(team, &mail_sk(email)).await?.is_some()
        {
            return Err(ScimError::Taken(format!(
                "a user with the email {email} exists"
            )));
        }
        let now = self.now();
        let present = standing(&scoped.state, desired.email.as_ref()).map(|(r, _)| r);
        let record = UserRecord {
            id: secret::id(),
            user_name: desired.user_name.clone(),
            email: desired.email.clone(),
            external_id: desired.external_id.clone(),
            doc: Value::Object(desired.kept.clone()).to_string(),
            active: desired.active,
            roles: present.clone().unwrap_or_else(|| default_roles(who)),
            created: now,
            modified: now,
            rev: 1,
        };
        let mut changes = Vec::new();
        if let Some(email) = &desired.email
            && desired.active
            && present.is_none()
        {
            changes.push(provision(
                &scoped.state,
                email,
                desired.person_name(),
                record.roles.clone(),
            ));
        }
        let pk = codec::team_pk(team);
        let mut writes = vec![
            put(codec::encode(
                pk.clone(),
                user_sk(&record.id),
                "scim_user",
                &record,
            )?),
            put(lookup(&pk, name_sk(&record.user_name), &record.id)),
        ];
        if let Some(email) = &record.email {
            writes.push(put(lookup(&pk, mail_sk(email), &record.id)));
        }
        self.scim_commit(
            team,
            who,
            scoped,
            &changes,
            writes,
            "scim_link_user",
            &record,
        )
        .await?;
        let roles = if desired.active && record.email.is_some() {
            Some(record.roles.clone())
        } else {
            present
        };
        Ok(UserView { roles, record })
    }

    /// PUT /Users/{id}, and PATCH once applied: makes the person what the
    /// provider asks (deactivation removes, reactivation invites again, a
    /// new email moves the person).
    pub async fn scim_update_user(
        &self,
        team: &TeamId,
        who: &Principal,
        id: &str,
        desired: impl FnOnce(&UserView) -> Result<Desired, ScimError>,
    ) -> Result<UserView, ScimError> {
        let _turn = self.write_turn(team).await;
        let old = self
            .scim_record(team, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let emails: Vec<&Email> = old.email.iter().collect();
        let scoped0 = self.scim_scope(team, who, &emails).await?;
        let before = UserView {
            roles: standing(&scoped0.state, old.email.as_ref()).map(|(r, _)| r),
            record: old.clone(),
        };
        let desired = desired(&before)?;
        let moving = desired.email != old.email;
        let scoped = if moving {
            let emails: Vec<&Email> = old.email.iter().chain(desired.email.iter()).collect();
            self.scim_scope(team, who, &emails).await?
        } else {
            scoped0
        };
        let state = &scoped.state;
        let owner = &state.owner;
        if old.email.as_ref() == Some(owner) && (!desired.active || moving) {
            return Err(bad(
                "mutability",
                format!(
                    "{owner} owns the team and cannot be deprovisioned or renamed; transfer ownership first"
                ),
            ));
        }
        if name_sk(&desired.user_name) != name_sk(&old.user_name)
            && self
                .scim_lookup(team, &name_sk(&desired.user_name))
                .await?
                .is_some()
        {
            return Err(ScimError::Taken(format!(
                "a user with userName `{}` exists",
                desired.user_name
            )));
        }
        if moving
            && let Some(email) = &desired.email
            && self.scim_lookup(team, &mail_sk(email)).await?.is_some()
        {
            return Err(ScimError::Taken(format!(
                "a user with the email {email} exists"
            )));
        }
        let live = standing(state, old.email.as_ref());
        // The roles the person keeps, or gets back: roles deleted since are
        // dropped, and nobody is left without one.
        let catalog = self.catalog();
        let mut roles: Roles = live
            .as_ref()
            .map(|(r, _)| r.clone())
            .unwrap_or_else(|| old.roles.clone())
            .into_iter()
            .filter(|r| catalog.has_role(r) || state.roles.contains_key(r))
            .collect();
        if roles.is_empty() {
            roles = default_roles(who);
        }
        let arriving = if moving {
            standing(state, desired.email.as_ref()).map(|(r, _)| r)
        } else {
            None
        };
        let mut changes = Vec::new();
        if let Some((_, remove)) = &live
            && (!desired.active || moving)
        {
            changes.push(remove.clone());
        }
        let present_after = if moving {
            arriving.is_some()
        } else {
            live.is_some()
        };
        if let Some(email) = &desired.email
            && desired.active
            && !present_after
        {
            changes.push(provision(
                state,
                email,
                desired.person_name(),
                roles.clone(),
            ));
        }
        let record = UserRecord {
            id: old.id.clone(),
            user_name: desired.user_name.clone(),
            email: desired.email.clone(),
            external_id: desired.external_id.clone(),
            doc: Value::Object(desired.kept.clone()).to_string(),
            active: desired.active,
            roles: roles.clone(),
            created: old.created,
            modified: self.now(),
            rev: old.rev + 1,
        };
        let pk = codec::team_pk(team);
        let mut writes = vec![put(codec::encode(
            pk.clone(),
            user_sk(&record.id),
            "scim_user",
            &record,
        )?)];
        if name_sk(&old.user_name) != name_sk(&record.user_name) {
            writes.push(delete(&pk, name_sk(&old.user_name)));
            writes.push(put(lookup(&pk, name_sk(&record.user_name), &record.id)));
        }
        if moving {
            if let Some(email) = &old.email {
                writes.push(delete(&pk, mail_sk(email)));
            }
            if let Some(email) = &record.email {
                writes.push(put(lookup(&pk, mail_sk(email), &record.id)));
            }
        }
        let now_roles = (desired.active && desired.email.is_some())
            .then(|| arriving.clone().unwrap_or_else(|| roles.clone()));
        self.scim_commit(
            team,
            who,
            scoped,
            &changes,
            writes,
            "scim_update_user",
            &record,
        )
        .await?;
        Ok(UserView {
            record,
            roles: now_roles,
        })
    }

    /// DELETE /Users/{id}: removes the person and forgets the user.
    pub async fn scim_delete_user(
        &self,
        team: &TeamId,
        who: &Principal,
        id: &str,
    ) -> Result<(), ScimError> {
        let _turn = self.write_turn(team).await;
        let old = self
            .scim_record(team, id)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let emails: Vec<&Email> = old.email.iter().collect();
        let scoped = self.scim_scope(team, who, &emails).await?;
        if old.email.as_ref() == Some(&scoped.state.owner) {
            return Err(bad(
                "mutability",
                format!(
                    "{} owns the team and cannot be deprovisioned; transfer ownership first",
                    scoped.state.owner
                ),
            ));
        }
        let changes: Vec<Change> = standing(&scoped.state, old.email.as_ref())
            .map(|(_, c)| c)
            .into_iter()
            .collect();
        let pk = codec::team_pk(team);
        let mut writes = vec![
            delete(&pk, user_sk(&old.id)),
            delete(&pk, name_sk(&old.user_name)),
        ];
        if let Some(email) = &old.email {
            writes.push(delete(&pk, mail_sk(email)));
        }
        self.scim_commit(
            team,
            who,
            scoped,
            &changes,
            writes,
            "scim_delete_user",
            &old,
        )
        .await
    }

    /// Commits changes with the user's writes in their transaction, or,
    /// when nothing about the person changes, the writes alone as an
    /// audited operation.
    #[allow(clippy::too_many_arguments)]
    async fn scim_commit(
        &self,
        team: &TeamId,
        who: &Principal,
        scoped: Scoped,
        changes: &[Change],
        writes: Vec<Write>,
        action: &str,
        record: &UserRecord,
    ) -> Result<(), ScimError> {
        if changes.is_empty() {
            // The operation is still the principal's to make.
            if !who.may(
                &scoped.state,
                self.catalog(),
                teamform_core::change::Requirement::Permission(
                    teamform_core::catalog::perm::MEMBERS_INVITE,
                ),
            ) {
                return Err(ServiceError::Forbidden(
                    "this needs the permission `team.members.invite`".into(),
                )
                .into());
            }
            let detail = json!({ "id": record.id, "userName": record.user_name, "email": record.email, "active": record.active });
            self.commit_operation(&scoped, who, action, detail, writes)
                .await?;
        } else {
            self.execute_writing(team, who, scoped, changes, writes)
                .await?;
        }
        Ok(())
    }

    /// The roles of the team, as groups: catalog roles but `owner`, then
    /// custom roles.
    pub async fn scim_roles(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<Vec<RoleName>, ScimError> {
        let state = self
            .authorized(team, who, teamform_core::catalog::perm::MEMBERS_READ)
            .await?;
        let mut out: Vec<RoleName> = self
            .catalog()
            .roles
            .iter()
            .map(|r| r.name.clone())
            .filter(|r| !r.is_owner())
            .collect();
        out.extend(state.roles.keys().cloned());
        Ok(out)
    }

    /// The SCIM users holding `role` (people without a SCIM user are not
    /// SCIM's to list), read page by page through the members listing.
    pub async fn scim_group_members(
        &self,
        team: &TeamId,
        who: &Principal,
        role: &RoleName,
    ) -> Result<Vec<UserRecord>, ScimError> {
        let filter = crate::service::MemberFilter {
            role: Some(role.as_str()),
            status: None,
        };
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self
                .members_page(team, who, &filter, crate::http::MAX_PAGE, after)
                .await?;
            for view in page {
                let Ok(email) = Email::parse(&view.email) else {
                    continue;
                };
                if let Some(id) = self.scim_lookup(team, &mail_sk(&email)).await?
                    && let Some(record) = self.scim_record(team, &id).await?
                {
                    out.push(record);
                }
            }
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        // Users who are nobody in the team (no email, or deactivated) keep
        // their group memberships in their record.
        let pk = codec::team_pk(team);
        let mut after = None;
        loop {
            let page = self
                .store()
                .query(&pk, USER_SK, PageRequest { limit: None, after })
                .await?;
            for item in &page.items {
                let r: UserRecord = codec::decode(item, &[])?;
                if (r.email.is_none() || !r.active)
                    && r.roles.contains(role)
                    && !out.iter().any(|o| o.id == r.id)
                {
                    out.push(r);
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(out)
    }

    /// A group's externalId, kept by SCIM beside the role.
    pub async fn scim_group_external_id(
        &self,
        team: &TeamId,
        role: &RoleName,
    ) -> Result<Option<String>, ScimError> {
        Ok(self
            .store()
            .get(&codec::team_pk(team), &format!("{GROUP_SK}{role}"))
            .await?
            .and_then(|i| i.str("external_id").map(str::to_owned)))
    }

    /// Sets or clears a group's externalId (audited like any SCIM write).
    pub async fn scim_set_group_external_id(
        &self,
        team: &TeamId,
        who: &Principal,
        role: &RoleName,
        external_id: Option<&str>,
    ) -> Result<(), ScimError> {
        if let Some(x) = external_id {
            check_text("externalId", x, MAX_NAME_CHARS)
                .map_err(|e| bad("invalidValue", e.to_string()))?;
        }
        if self.scim_group_external_id(team, role).await?.as_deref() == external_id {
            return Ok(());
        }
        let _turn = self.write_turn(team).await;
        let scoped = self
            .authorized_scoped(team, who, teamform_core::catalog::perm::MEMBERS_ROLES)
            .await?;
        let pk = codec::team_pk(team);
        let sk = format!("{GROUP_SK}{role}");
        let write = match external_id {
            Some(x) => put(Item::new(pk, sk)
                .with("type", "scim_group")
                .with("external_id", x)),
            None => delete(&pk, sk),
        };
        let detail = json!({ "group": role, "externalId": external_id });
        self.commit_operation(&scoped, who, "scim_update_group", detail, vec![write])
            .await?;
        Ok(())
    }

    /// Adds users to a role and takes it from others, in one batch. A
    /// person left without a role gets the token's default role; where the
    /// catalog allows one role per person, joining a group replaces it.
    pub async fn scim_change_group(
        &self,
        team: &TeamId,
        who: &Principal,
        role: &RoleName,
        add: &[String],
        remove: &[String],
    ) -> Result<(), ScimError> {
        if role.is_owner() {
            return Err(bad(
                "mutability",
                "the owner group is read-only: ownership moves only by a transfer",
            ));
        }
        let _turn = self.write_turn(team).await;
        let mut records = Vec::new();
        for (id, adding) in add
            .iter()
            .map(|i| (i, true))
            .chain(remove.iter().map(|i| (i, false)))
        {
            let record = self.scim_record(team, id).await?.ok_or_else(|| {
                bad(
                    "invalidValue",
                    format!("no user with id `{id}` in this team"),
                )
            })?;
            records.push((record, adding));
        }
        let emails: Vec<&Email> = records
            .iter()
            .filter_map(|(r, _)| r.email.as_ref())
            .collect();
        let scoped = self.scim_scope(team, who, &emails).await?;
        let multiple = self.catalog().multiple_roles;
        let mut changes = Vec::new();
        let mut writes = Vec::new();
        let pk = codec::team_pk(team);
        for (record, adding) in records {
            let current = standing(&scoped.state, record.email.as_ref())
                .map(|(r, _)| r)
                .unwrap_or_else(|| record.roles.clone());
            let mut to = current.clone();
            if adding {
                if !multiple {
                    to.clear();
                }
                to.insert(role.clone());
            } else {
                to.remove(role);
                if to.is_empty() {
                    to = default_roles(who);
                }
            }
            if to == current {
                continue;
            }
            match set_roles(&scoped.state, record.email.as_ref(), to.clone()) {
                Some(change) => changes.push(change),
                None => {
                    // Not in the team (deactivated): remembered for later.
                    let mut r = record.clone();
                    r.roles = to;
                    r.rev += 1;
                    r.modified = self.now();
                    writes.push(put(codec::encode(
                        pk.clone(),
                        user_sk(&r.id),
                        "scim_user",
                        &r,
                    )?));
                }
            }
        }
        if changes.is_empty() && writes.is_empty() {
            return Ok(());
        }
        if changes.is_empty() {
            let detail = json!({ "group": role, "add": add, "remove": remove });
            self.commit_operation(&scoped, who, "scim_update_group", detail, writes)
                .await?;
            return Ok(());
        }
        self.execute_writing(team, who, scoped, &changes, writes)
            .await?;
        Ok(())
    }
}

/// A role name for a group's displayName: itself when it is one, else
/// lowercased with other characters as `-`, starting with a letter.
pub fn role_slug(display: &str) -> Result<RoleName, ScimError> {
    if let Ok(name) = RoleName::parse(display) {
        return Ok(name);
    }
    let mut slug: String = display
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        slug.insert_str(0, "g-");
    }
    slug.truncate(64);
    RoleName::parse(&slug).map_err(|e| bad("invalidValue", format!("displayName: {e}")))
}

/// A group's displayName: a custom role made by SCIM keeps the name it was
/// given in its description; any other role is named by its id.
pub fn display_name(name: &RoleName, role: Option<&teamform_core::model::CustomRole>) -> String {
    match role {
        Some(r) if role_slug(&r.description).is_ok_and(|s| &s == name) => r.description.clone(),
        _ => name.to_string(),
    }
}

impl Service {
    /// The team's custom roles, for group names.
    pub async fn scim_custom_roles(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<std::collections::BTreeMap<RoleName, teamform_core::model::CustomRole>, ScimError>
    {
        Ok(self
            .authorized(team, who, teamform_core::catalog::perm::MEMBERS_READ)
            .await?
            .roles)
    }

    /// POST /Groups: a new custom role, without permissions, named after
    /// the displayName; then its members join it.
    pub async fn scim_create_group(
        &self,
        team: &TeamId,
        who: &Principal,
        display: &str,
        members: &[String],
    ) -> Result<RoleName, ScimError> {
        if display.trim().is_empty() {
            return Err(bad("invalidValue", "displayName is required"));
        }
        let name = role_slug(display)?;
        let custom = self.scim_custom_roles(team, who).await?;
        if name.is_owner() || self.catalog().has_role(&name) || custom.contains_key(&name) {
            return Err(ScimError::Taken(format!("a group named `{name}` exists")));
        }
        let change = Change::CreateRole {
            name: name.clone(),
            role: teamform_core::model::CustomRole {
                description: display.to_owned(),
                permissions: Default::default(),
            },
        };
        self.execute(team, who, &[change], None, &Default::default())
            .await?;
        if !members.is_empty() {
            self.scim_change_group(team, who, &name, members, &[])
                .await?;
        }
        Ok(name)
    }

    /// DELETE /Groups/{id}: a custom role, taken from everyone holding it
    /// (a person left without a role gets the token's default role), then
    /// deleted, in one batch. Catalog roles are not SCIM's to delete.
    pub async fn scim_delete_group(
        &self,
        team: &TeamId,
        who: &Principal,
        name: &RoleName,
    ) -> Result<(), ScimError> {
        let custom = self.scim_custom_roles(team, who).await?;
        let Some(role) = custom.get(name) else {
            return Err(bad(
                "mutability",
                format!("`{name}` is a role of the catalog: it cannot be deleted"),
            ));
        };
        let filter = crate::service::MemberFilter {
            role: Some(name.as_str()),
            status: None,
        };
        let mut holders = Vec::new();
        let mut after = None;
        loop {
            let (page, next) = self
                .members_page(team, who, &filter, crate::http::MAX_PAGE, after)
                .await?;
            holders.extend(page.into_iter().filter_map(|v| Email::parse(&v.email).ok()));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let emails: Vec<&Email> = holders.iter().collect();
        let scoped = self.scim_scope(team, who, &emails).await?;
        let mut changes = Vec::new();
        for email in &holders {
            let Some((mut roles, _)) = standing(&scoped.state, Some(email)) else {
                continue;
            };
            roles.remove(name);
            if roles.is_empty() {
                roles = default_roles(who);
            }
            changes.extend(set_roles(&scoped.state, Some(email), roles));
        }
        changes.push(Change::DeleteRole {
            name: name.clone(),
            role: role.clone(),
        });
        self.execute(team, who, &changes, None, &Default::default())
            .await?;
        Ok(())
    }
}
