//! The plan engine: compares a desired `TeamSpec` with a live `TeamState`
//! and lists the changes that make live match desired, in apply order.
//!
//! Pure and synchronous: no I/O, no clock (callers pass `now`). A plan is
//! data; rendering and applying happen elsewhere.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::{Catalog, RoleName};
use crate::change::Change;
use crate::model::{TeamState, Timestamp};
use crate::spec::{self, TeamSpec, Unmanaged};

/// The version of the plan's JSON shape.
pub const FORMAT_VERSION: u32 = 1;

/// How many removals a plan may carry before it is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemovalLimit {
    Count(u32),
    /// A percentage of the team's current members and pending invitations (at least 1).
    Percent(u32),
}

impl RemovalLimit {
    pub const DEFAULT: RemovalLimit = RemovalLimit::Percent(25);

    /// The number of removals allowed for a team of `members`.
    pub fn allowed(&self, members: usize) -> usize {
        match *self {
            RemovalLimit::Count(n) => n as usize,
            RemovalLimit::Percent(p) => (members.saturating_mul(p as usize) / 100).max(1),
        }
    }
}

impl fmt::Display for RemovalLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemovalLimit::Count(n) => write!(f, "{n}"),
            RemovalLimit::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromStr for RemovalLimit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || {
            format!("`{s}` is not a removal limit: use a count like `5` or a percentage like `30%`")
        };
        match s.strip_suffix('%') {
            Some(p) => match p.trim().parse::<u32>() {
                Ok(p) if p <= 100 => Ok(RemovalLimit::Percent(p)),
                _ => Err(bad()),
            },
            None => s.parse::<u32>().map(RemovalLimit::Count).map_err(|_| bad()),
        }
    }
}

impl Serialize for RemovalLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}
impl<'de> Deserialize<'de> for RemovalLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u32),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(RemovalLimit::Count(n)),
            Raw::S(s) => s.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Where the removal limit in force came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitSource {
    Default,
    Policy,
    Flag,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovalGuard {
    pub limit: RemovalLimit,
    pub source: LimitSource,
    /// Removals allowed for the live member count.
    pub allowed: usize,
    /// Removals in this plan (members, invitations and custom roles).
    pub planned: usize,
    /// Live members plus pending invitations: what the limit is a share of.
    pub members: usize,
}

/// An invitation that waits for its person and matches the spec: not drift,
/// but shown with its age so a reviewer sees invitations nobody accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingInvitation {
    pub email: crate::model::Email,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

/// The changes that make a team match its spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub team: crate::model::TeamId,
    /// The live version the plan was computed from; 0 when the team does not exist yet.
    pub base_version: u64,
    pub generated_at: Timestamp,
    pub changes: Vec<Change>,
    pub removals: RemovalGuard,
    /// Pending invitations the plan leaves as they are, oldest first.
    #[serde(default)]
    pub pending: Vec<PendingInvitation>,
    /// Drift the plan cannot resolve yet, said in words.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// Counts by kind, for summaries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub add: usize,
    pub change: usize,
    pub remove: usize,
    pub transfer: usize,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for change in &self.changes {
            match change {
                Change::CreateTeam { .. }
                | Change::CreateRole { .. }
                | Change::Invite { .. }
                | Change::Reinvite { .. } => c.add += 1,
                Change::TransferOwnership { .. } => c.transfer += 1,
                ch if ch.is_removal() => c.remove += 1,
                _ => c.change += 1,
            }
        }
        c
    }

    /// Why this plan must not be applied as is, if it must not.
    pub fn refusal(&self) -> Option<String> {
        let g = &self.removals;
        (g.planned > g.allowed).then(|| {
            let source = match g.source {
                LimitSource::Default => "the default limit",
                LimitSource::Policy => "`policy.max_removals` in team.yaml",
                LimitSource::Flag => "--max-removals",
            };
            format!(
                "this plan removes {} (members, invitations and custom roles) but the removal limit \
                 is {} ({} of {} members and invitations, from {source}); raise it deliberately with \
                 `--max-removals {}` or `policy.max_removals: {}` in team.yaml",
                g.planned, g.allowed, g.limit, g.members, g.planned, g.planned
            )
        })
    }
}

/// Options beyond the spec: a limit given on the command line wins over the spec's.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    pub max_removals: Option<RemovalLimit>,
}

/// Says when the team after this plan would not fit its seat limit, so that
/// a reviewer learns it from the plan rather than from a failed apply.
fn seats_note(spec: &TeamSpec, live: &TeamState) -> Option<String> {
    let limit = spec
        .settings
        .as_ref()
        .map_or(live.settings.seat_limit, |s| s.seat_limit)? as usize;
    let listed = |e: &crate::model::Email| spec.members.contains_key(e) || e == &spec.owner;
    let mut seats = spec.members.len() + usize::from(!spec.members.contains_key(&spec.owner));
    if spec.policy.unmanaged == Unmanaged::Ignore {
        // People this plan leaves alone keep their seats.
        seats += live.members.keys().filter(|e| !listed(e)).count();
        seats += live
            .invitations
            .values()
            .filter(|i| !listed(&i.email))
            .count();
    }
    (seats > limit).then(|| {
        format!(
            "the team would need {seats} seats (members and invitations) but its seat limit is {limit}; \
             apply will refuse the invitations beyond it"
        )
    })
}

/// The roles held by the people a plan does not touch: the live and the
/// desired owner, and under `unmanaged: ignore` everyone the spec does not list.
fn held_by_people_left_alone<'a>(spec: &TeamSpec, live: &'a TeamState) -> BTreeSet<&'a RoleName> {
    let left_alone = |e: &crate::model::Email| {
        e == &live.owner
            || e == &spec.owner
            || (spec.policy.unmanaged == Unmanaged::Ignore && !spec.members.contains_key(e))
    };
    live.members
        .values()
        .map(|m| (&m.email, &m.roles))
        .chain(live.invitations.values().map(|i| (&i.email, &i.roles)))
        .filter(|(e, _)| left_alone(e))
        .flat_map(|(_, roles)| roles.iter())
        .collect()
}

/// Moves `live` (ordered by email) up to `email`: hands every entry before it
/// to `unlisted` and returns the entry for `email`, if there is one.
fn advance_to<'a, T>(
    live: &mut std::iter::Peekable<std::collections::btree_map::Iter<'a, crate::model::Email, T>>,
    email: &crate::model::Email,
    mut unlisted: impl FnMut(&'a T),
) -> Option<&'a T> {
    while let Some((_, entry)) = live.next_if(|(key, _)| *key < email) {
        unlisted(entry);
    }
    live.next_if(|(key, _)| *key == email)
        .map(|(_, entry)| entry)
}

/// Plans with the spec's own policy.
pub fn plan(spec: &TeamSpec, live: &TeamState, catalog: &Catalog, now: Timestamp) -> Plan {
    plan_with(spec, live, catalog, now, PlanOptions::default())
}

/// Computes the changes from `live` to `spec`. A live state with version 0 is
/// a team that does not exist yet: the plan starts by creating it.
pub fn plan_with(
    spec: &TeamSpec,
    live: &TeamState,
    _catalog: &Catalog,
    now: Timestamp,
    options: PlanOptions,
) -> Plan {
    let mut changes = Vec::new();
    let mut notes = Vec::new();
    let fresh;
    let live = if live.version == 0 {
        let display_name = spec::default_display_name(spec);
        changes.push(Change::CreateTeam {
            display_name: display_name.clone(),
            owner: spec.owner.clone(),
        });
        fresh = TeamState::new(spec.team.clone(), display_name, spec.owner.clone(), now);
        &fresh
    } else {
        live
    };

    if let Some(desired) = &spec.display_name
        && desired != &live.display_name
    {
        changes.push(Change::RenameTeam {
            from: live.display_name.clone(),
            to: desired.clone(),
        });
    }
    if let Some(desired) = &spec.settings
        && desired != &live.settings
    {
        changes.push(Change::UpdateSettings {
            from: live.settings.clone(),
            to: desired.clone(),
        });
    }
    if let Some(desired) = &spec.roles {
        for (name, role) in desired {
            match live.roles.get(name) {
                None => changes.push(Change::CreateRole {
                    name: name.clone(),
                    role: role.clone(),
                }),
                Some(current) if current != role => changes.push(Change::UpdateRole {
                    name: name.clone(),
                    from: current.clone(),
                    to: role.clone(),
                }),
                Some(_) => {}
            }
        }
        // A role still held by someone this plan leaves alone (a member the
        // spec ignores, or the incoming owner until the transfer completes)
        // cannot be deleted yet: the deletion would fail on apply. It is
        // planned once nobody left alone holds it.
        let mut kept: Option<BTreeSet<&RoleName>> = None;
        for (name, role) in &live.roles {
            if !desired.contains_key(name) {
                let kept = kept.get_or_insert_with(|| held_by_people_left_alone(spec, live));
                if kept.contains(name) {
                    notes.push(format!(
                        "custom role {name} is no longer in team.yaml but someone this plan leaves alone \
                         still holds it; it is deleted once nobody does"
                    ));
                } else {
                    changes.push(Change::DeleteRole {
                        name: name.clone(),
                        role: role.clone(),
                    });
                }
            }
        }
    }

    // People. The live owner and the desired owner are handled by the
    // ownership transfer alone: ownership is never planned as a role edit.
    let is_owner = |e: &crate::model::Email| e == &live.owner || e == &spec.owner;
    let remove_unlisted = spec.policy.unmanaged == Unmanaged::Remove;
    let mut revocations = Vec::new();
    let mut removals = Vec::new();
    // The spec and the live maps are ordered by the same normalized email: one
    // merged walk over the three finds every match without a lookup, so the
    // cost stays linear in the size of the team.
    let mut members = live.members.iter().peekable();
    let mut invitations = live.invitations.iter().peekable();
    for (email, want) in &spec.members {
        let member = advance_to(&mut members, email, |member| {
            if remove_unlisted && !is_owner(&member.email) {
                removals.push(Change::RemoveMember {
                    email: member.email.clone(),
                    roles: member.roles.clone(),
                });
            }
        });
        let invitation = advance_to(&mut invitations, email, |inv| {
            if remove_unlisted && !is_owner(&inv.email) {
                revocations.push(Change::RevokeInvitation {
                    email: inv.email.clone(),
                    roles: inv.roles.clone(),
                    created_at: inv.created_at,
                });
            }
        });
        if is_owner(email) {
            continue;
        }
        if let Some(member) = member {
            if member.roles != want.roles {
                changes.push(Change::ChangeRoles {
                    email: member.email.clone(),
                    from: member.roles.clone(),
                    to: want.roles.clone(),
                });
            }
        } else if let Some(inv) = invitation {
            if inv.is_expired(now) {
                changes.push(Change::Reinvite {
                    email: inv.email.clone(),
                    name: want.name.clone().or_else(|| inv.name.clone()),
                    roles: want.roles.clone(),
                    expired_at: inv.expires_at,
                });
            } else if inv.roles != want.roles {
                changes.push(Change::ChangeInvitationRoles {
                    email: inv.email.clone(),
                    from: inv.roles.clone(),
                    to: want.roles.clone(),
                });
            }
        } else {
            changes.push(Change::Invite {
                email: want.email.clone(),
                name: want.name.clone(),
                roles: want.roles.clone(),
            });
        }
    }
    if remove_unlisted {
        for (_, inv) in invitations.filter(|(e, _)| !is_owner(e)) {
            revocations.push(Change::RevokeInvitation {
                email: inv.email.clone(),
                roles: inv.roles.clone(),
                created_at: inv.created_at,
            });
        }
        for (_, member) in members.filter(|(e, _)| !is_owner(e)) {
            removals.push(Change::RemoveMember {
                email: member.email.clone(),
                roles: member.roles.clone(),
            });
        }
    }
    changes.extend(revocations);
    changes.extend(removals);

    if spec.owner != live.owner {
        let pending = live
            .transfer
            .as_ref()
            .is_some_and(|t| t.to == spec.owner && now < t.expires_at);
        if !pending {
            changes.push(Change::TransferOwnership {
                from: live.owner.clone(),
                to: spec.owner.clone(),
            });
        }
    }

    // Stable sort: within a stage, changes keep the order above (by email).
    changes.sort_by_key(Change::stage);

    let (limit, source) = match (options.max_removals, spec.policy.max_removals) {
        (Some(l), _) => (l, LimitSource::Flag),
        (None, Some(l)) => (l, LimitSource::Policy),
        (None, None) => (RemovalLimit::DEFAULT, LimitSource::Default),
    };
    let planned = changes.iter().filter(|c| c.is_removal()).count();
    if let Some(note) = seats_note(spec, live) {
        notes.push(note);
    }
    let stays = |e: &crate::model::Email| {
        e != &live.owner
            && e != &spec.owner
            && (spec.members.contains_key(e) || spec.policy.unmanaged == Unmanaged::Ignore)
    };
    let mut pending: Vec<PendingInvitation> = live
        .invitations
        .values()
        .filter(|i| !i.is_expired(now) && stays(&i.email))
        .map(|i| PendingInvitation {
            email: i.email.clone(),
            created_at: i.created_at,
            expires_at: i.expires_at,
        })
        .collect();
    // Emails are unique, so no two entries tie: the unstable sort gives the
    // same order as a stable one, without a scratch copy of the list.
    pending.sort_unstable_by(|a, b| {
        a.created_at
            .cmp(&b.created_at)
            .then_with(|| a.email.cmp(&b.email))
    });
    Plan {
        format_version: FORMAT_VERSION,
        team: spec.team.clone(),
        base_version: live.version,
        generated_at: now,
        changes,
        removals: RemovalGuard {
            limit,
            source,
            allowed: limit.allowed(live.members.len() + live.invitations.len()),
            planned,
            members: live.members.len() + live.invitations.len(),
        },
        pending,
        notes,
    }
}
