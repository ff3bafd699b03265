//! Scoped reads: an operation reads the items it touches, never the team.
//!
//! A one-thing operation loads the team's `META` (with its counters), its
//! custom roles and pending transfer (a handful of items whatever the team's
//! size), and the member and invitation items of the people it names: the
//! caller, the owner, its subjects. A batch of M changes reads O(M) items.
//! Invariants that seem to need the whole team are kept by items written in
//! the same transaction as the change: the member and invitation counters on
//! `META` (seat limit) and a `HOLDER#<role>#<email>` item per holder of each
//! custom role (a role still in use). Every commit is still conditioned on
//! the team's version, so a scoped check is as safe under concurrency as one
//! against the whole team.
//!
//! Never use a scoped snapshot where the whole team is meant (`GET /state`,
//! the members list): `Service::load` is that.

use std::collections::BTreeSet;

use std::collections::BTreeMap;

use teamform_core::model::{CustomRole, Roles};
use teamform_core::{Email, RoleName, TeamId, TeamState};

use crate::auth::Principal;
use crate::service::{Service, ServiceError};
use crate::store::codec::{self, Counts, Meta};
use crate::store::{Condition, Write};

/// A scoped snapshot: the team as far as the operation needs it, and the
/// team's counters as they stand.
#[derive(Debug, Clone)]
pub struct Scoped {
    pub state: TeamState,
    pub counts: Counts,
    /// Whose standing was read (present in `state` or known to be absent).
    pub people: BTreeSet<Email>,
    /// The team is closed, waiting for deletion (only its owner gets here).
    pub closing: Option<codec::Closing>,
}

/// A team's custom roles.
pub type CustomRoles = BTreeMap<RoleName, CustomRole>;

/// Where one person stands in a team before or after a change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    member: Option<Roles>,
    invitation: Option<Roles>,
}

impl Entry {
    pub fn of(state: &TeamState, email: &Email) -> Entry {
        Entry {
            member: state.members.get(email).map(|m| m.roles.clone()),
            invitation: state.invitations.get(email).map(|i| i.roles.clone()),
        }
    }

    fn custom_roles(&self, custom: &CustomRoles) -> BTreeSet<RoleName> {
        self.member
            .iter()
            .chain(self.invitation.iter())
            .flatten()
            .filter(|r| custom.contains_key(*r))
            .cloned()
            .collect()
    }
}

/// What a change to one person's standing writes beside its own items:
/// the counters move, and the person's custom-role holder items follow
/// their roles. Each entry is judged against the custom roles of its own
/// moment, so a role created or deleted in the same batch is handled.
pub fn bookkeeping(
    team: &TeamId,
    email: &Email,
    before: (&Entry, &CustomRoles),
    after: (&Entry, &CustomRoles),
    counts: &mut Counts,
) -> Vec<Write> {
    let (was, then) = before;
    let (now, state) = after;
    let step = |c: &mut u64, before: bool, after: bool| match (before, after) {
        (false, true) => *c += 1,
        (true, false) => *c = c.saturating_sub(1),
        _ => {}
    };
    step(
        &mut counts.members,
        was.member.is_some(),
        now.member.is_some(),
    );
    step(
        &mut counts.invitations,
        was.invitation.is_some(),
        now.invitation.is_some(),
    );
    let held_before = was.custom_roles(then);
    let held_after = now.custom_roles(state);
    let mut writes = Vec::new();
    for role in held_before.difference(&held_after) {
        writes.push(Write::Delete {
            pk: codec::team_pk(team),
            sk: codec::holder_sk(role, email),
            condition: Condition::None,
        });
    }
    for role in held_after.difference(&held_before) {
        writes.push(Write::Put {
            item: codec::holder_item(team, role, email),
            condition: Condition::None,
        });
    }
    writes
}

impl Service {
    /// Reads the team as far as an operation needs it: `META`, custom roles,
    /// a pending transfer and the standing of the owner, the caller, the
    /// transfer's two people and `emails`. `None` when the team does not
    /// exist.
    /// Every read is checked against a second look at `META`: a snapshot
    /// read while a commit went in is read again, so it never mixes the
    /// team before a commit with the team after it.
    pub async fn load_scoped<'a>(
        &self,
        team: &TeamId,
        who: &Principal,
        emails: impl IntoIterator<Item = &'a Email>,
    ) -> Result<Option<Scoped>, ServiceError> {
        let emails: BTreeSet<Email> = emails.into_iter().cloned().collect();
        for _ in 0..crate::service::intent::READ_ROUNDS {
            let Some(scoped) = self.load_scoped_once(team, who, &emails).await? else {
                return Ok(None);
            };
            if self.still_at(team, scoped.state.version).await? {
                return Ok(Some(scoped));
            }
        }
        Err(crate::service::intent::busy(team))
    }

    async fn load_scoped_once(
        &self,
        team: &TeamId,
        who: &Principal,
        emails: &BTreeSet<Email>,
    ) -> Result<Option<Scoped>, ServiceError> {
        let pk = codec::team_pk(team);
        let s = self.store();
        let Some(meta) = self.settled_meta(team).await? else {
            return Ok(None);
        };
        let meta: Meta = codec::decode(&meta, &[])?;
        let closing = meta.closing.clone();
        let transfer = s.get(&pk, codec::TRANSFER).await?;
        let roles = s.query_all(&pk, codec::ROLE).await?;
        let mut people: BTreeSet<Email> = emails.clone();
        people.insert(meta.owner.clone());
        if let Principal::Person { email, .. } = who {
            people.insert(email.clone());
        }
        if let Some(t) = &transfer {
            for key in ["from", "to"] {
                if let Some(e) = t.str(key).and_then(|e| Email::parse(e).ok()) {
                    people.insert(e);
                }
            }
        }
        let keys: Vec<(String, String)> = people
            .iter()
            .flat_map(|e| [codec::member_sk(e), codec::invite_sk(e)])
            .map(|sk| (pk.clone(), sk))
            .collect();
        let (mut members, mut invitations) = (Vec::new(), Vec::new());
        for item in s.get_many(&keys).await?.into_iter().flatten() {
            if item.sk.starts_with(codec::MEMBER) {
                members.push(item);
            } else {
                invitations.push(item);
            }
        }
        let counts = meta.counts;
        let state =
            codec::state_from_meta(meta, &members, &invitations, &roles, transfer.as_ref())?;
        crate::service::close::admit_while_closing(who, &state, closing.as_ref())?;
        Ok(Some(Scoped {
            state,
            counts,
            people,
            closing,
        }))
    }

    /// Someone whose standing was not read (`people`) still holds `role`,
    /// by the holder items. The people read are judged by the in-memory team
    /// (`TeamState::apply` does), since a batch may have changed their roles.
    pub(crate) async fn role_held_outside(
        &self,
        team: &TeamId,
        role: &RoleName,
        people: &BTreeSet<Email>,
    ) -> Result<Option<Email>, ServiceError> {
        let pk = codec::team_pk(team);
        let prefix = codec::holders_prefix(role);
        let mut after = None;
        loop {
            let page = self
                .store()
                .query(
                    &pk,
                    &prefix,
                    crate::store::PageRequest {
                        limit: Some(100),
                        after,
                    },
                )
                .await?;
            for item in &page.items {
                let Some(email) = item.str("email").and_then(|e| Email::parse(e).ok()) else {
                    continue;
                };
                if !people.contains(&email) {
                    return Ok(Some(email));
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(None),
            }
        }
    }
}
