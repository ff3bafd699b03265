//! The laws that matter, checked on random teams:
//!
//! - convergence: applying every change of a plan (each must succeed) and
//!   planning again gives an empty plan;
//! - invariants hold after applying a plan, and after any sequence of changes
//!   whatsoever (a change that fails leaves the state as it was).
//!
//! Cases are generated as plain choices (`Scenario`) and then built into a
//! spec and a live state that are each valid on their own: the owner is a
//! member holding only `owner`, nobody is both member and invited, every role
//! held exists. The number of cases is proptest's default (256), which the
//! `PROPTEST_CASES` environment variable overrides.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use teamform_core::model::{CustomRole, Invitation, Member, PendingTransfer, Roles, Settings};
use teamform_core::spec::{MemberSpec, Policy, Unmanaged};
use teamform_core::{
    Catalog, Change, Email, Permission, RoleName, TeamId, TeamSpec, TeamState, Timestamp, plan,
};

const POOL: usize = 20;
const CUSTOM: usize = 4;
const SYSTEM_ROLES: &[&str] = &[
    "admin",
    "developer",
    "modifier",
    "viewer",
    "billing",
    "billing_viewer",
];

fn now() -> Timestamp {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

/// Person `i` of the pool; `shout` writes the same address in another case.
fn person(i: usize, shout: bool) -> Email {
    let written = if shout {
        format!("User{i}@Example.COM")
    } else {
        format!("user{i}@example.com")
    };
    Email::parse(&written).unwrap_or_else(|e| panic!("{e}"))
}

fn custom_name(i: usize) -> RoleName {
    RoleName::parse(&format!("custom-{i}")).unwrap_or_else(|e| panic!("{e}"))
}

fn system_role(name: &str) -> RoleName {
    RoleName::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

/// The roles a bit mask picks: bits 0..6 the system roles, 6..10 custom roles,
/// keeping only those that `exists`. Never empty: `viewer` when nothing is left.
fn roles_of(mask: u16, exists: impl Fn(&RoleName) -> bool) -> Roles {
    let system = SYSTEM_ROLES.iter().map(|r| system_role(r));
    let custom = (0..CUSTOM).map(custom_name);
    let mut roles: Roles = system
        .chain(custom)
        .enumerate()
        .filter(|(bit, r)| mask & (1 << bit) != 0 && exists(r))
        .map(|(_, r)| r)
        .collect();
    if roles.is_empty() {
        roles.insert(system_role("viewer"));
    }
    roles
}

fn custom_role(catalog: &Catalog, mask: u32, described: bool) -> CustomRole {
    let permissions: BTreeSet<Permission> = catalog
        .permissions
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1 << (bit % 32)) != 0)
        .map(|(_, p)| p.id.clone())
        .collect();
    CustomRole {
        description: if described {
            "made up".into()
        } else {
            String::new()
        },
        permissions,
    }
}

fn settings(require_2fa: bool, ttl: u32, seat_limit: Option<u32>) -> Settings {
    Settings {
        require_2fa,
        invitation_ttl_days: ttl,
        seat_limit,
        scim_provisioning: Default::default(),
    }
}

#[derive(Debug, Clone)]
enum Live {
    Absent,
    Member { roles: u16 },
    Invited { roles: u16, age_days: i64 },
}

/// A random case, as choices; `build` turns it into a spec and a live state.
#[derive(Debug, Clone)]
struct Scenario {
    version: u64,
    live_owner: usize,
    /// Some: the spec names another owner.
    new_owner: Option<usize>,
    live_people: Vec<Live>,
    /// For each person, the roles the spec gives them, if it lists them.
    wanted: Vec<Option<u16>>,
    /// The spec writes the person's address in another case.
    shout: Vec<bool>,
    live_roles: Vec<Option<(u32, bool)>>,
    /// None: custom roles are not managed by the spec.
    spec_roles: Option<Vec<Option<(u32, bool)>>>,
    live_settings: (bool, u32, Option<u32>),
    spec_settings: Option<(bool, u32, Option<u32>)>,
    live_name: usize,
    spec_name: Option<usize>,
    /// A pending transfer: to whom, started how many days ago.
    transfer: Option<(usize, i64)>,
    ignore: bool,
}

fn live_person() -> impl Strategy<Value = Live> {
    prop_oneof![
        3 => Just(Live::Absent),
        4 => any::<u16>().prop_map(|roles| Live::Member { roles }),
        3 => (any::<u16>(), 0i64..40).prop_map(|(roles, age_days)| Live::Invited { roles, age_days }),
    ]
}

/// Seat limits are at least the pool size: a lower one can refuse an invite
/// the plan orders before the removals that would make room for it.
fn settings_choice() -> impl Strategy<Value = (bool, u32, Option<u32>)> {
    (
        any::<bool>(),
        prop_oneof![Just(15u32), 1u32..=30],
        prop::option::of(POOL as u32..=40),
    )
}

fn role_defs() -> impl Strategy<Value = Vec<Option<(u32, bool)>>> {
    prop::collection::vec(
        prop::option::weighted(0.6, (any::<u32>(), any::<bool>())),
        CUSTOM,
    )
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let people = (
        0..POOL,
        prop::option::weighted(0.25, 0..POOL),
        prop::collection::vec(live_person(), POOL),
        prop::collection::vec(prop::option::weighted(0.6, any::<u16>()), POOL),
        prop::collection::vec(prop::bool::weighted(0.2), POOL),
    );
    let team = (
        prop_oneof![1 => Just(0u64), 9 => 1u64..1_000_000],
        role_defs(),
        prop::option::weighted(0.7, role_defs()),
        settings_choice(),
        prop::option::weighted(0.5, settings_choice()),
        0..3usize,
        prop::option::of(0..3usize),
        prop::option::weighted(0.3, (0..POOL, 0i64..10)),
        any::<bool>(),
    );
    (people, team).prop_map(
        |(
            (live_owner, new_owner, live_people, wanted, shout),
            (
                version,
                live_roles,
                spec_roles,
                live_settings,
                spec_settings,
                live_name,
                spec_name,
                transfer,
                ignore,
            ),
        )| Scenario {
            version,
            live_owner,
            new_owner,
            live_people,
            wanted,
            shout,
            live_roles,
            spec_roles,
            live_settings,
            spec_settings,
            live_name,
            spec_name,
            transfer,
            ignore,
        },
    )
}

const NAMES: &[&str] = &["Acme", "Acme Inc", "Acme: the \"team\""];

struct Built {
    catalog: Catalog,
    spec: TeamSpec,
    live: TeamState,
}

impl Scenario {
    fn build(&self) -> Built {
        let catalog = Catalog::standard();
        let now = now();
        let team = TeamId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        let name = |i: usize| NAMES.get(i).copied().unwrap_or("Acme").to_owned();

        // Live.
        let live_owner = person(self.live_owner, false);
        let mut live = TeamState::new(
            team.clone(),
            name(self.live_name),
            live_owner.clone(),
            now - Duration::days(500),
        );
        live.version = self.version;
        let (a, b, c) = self.live_settings;
        live.settings = settings(a, b, c);
        for (i, def) in self.live_roles.iter().enumerate() {
            if let Some((mask, described)) = def {
                live.roles
                    .insert(custom_name(i), custom_role(&catalog, *mask, *described));
            }
        }
        let live_custom = live.roles.clone();
        let exists_live = |r: &RoleName| catalog.has_role(r) || live_custom.contains_key(r);
        for (i, state) in self.live_people.iter().enumerate() {
            if i == self.live_owner {
                continue;
            }
            let email = person(i, false);
            match state {
                Live::Absent => {}
                Live::Member { roles } => {
                    let member = Member {
                        email: email.clone(),
                        name: None,
                        roles: roles_of(*roles, exists_live),
                        joined_at: now - Duration::days(100),
                        two_factor: false,
                    };
                    live.members.insert(email, member);
                }
                Live::Invited { roles, age_days } => {
                    let created_at = now - Duration::days(*age_days);
                    let ttl = i64::from(live.settings.invitation_ttl_days);
                    let invitation = Invitation {
                        email: email.clone(),
                        name: Some(format!("Person {i}")),
                        roles: roles_of(*roles, exists_live),
                        created_at,
                        expires_at: created_at + Duration::days(ttl),
                        invited_by: None,
                        link: String::new(),
                    };
                    live.invitations.insert(email, invitation);
                }
            }
        }
        if let Some((to, days_ago)) = self.transfer
            && to != self.live_owner
        {
            let started_at = now - Duration::days(days_ago);
            live.transfer = Some(PendingTransfer {
                from: live_owner.clone(),
                to: person(to, false),
                started_at,
                expires_at: started_at + Duration::days(teamform_core::change::TRANSFER_TTL_DAYS),
                owner_confirmed: days_ago % 2 == 0,
                link: String::new(),
            });
        }

        // Desired.
        let spec_owner_index = self.new_owner.unwrap_or(self.live_owner);
        let spec_owner = person(
            spec_owner_index,
            self.shout.get(spec_owner_index).copied().unwrap_or(false),
        );
        let spec_roles: Option<BTreeMap<RoleName, CustomRole>> =
            self.spec_roles.as_ref().map(|defs| {
                defs.iter()
                    .enumerate()
                    .filter_map(|(i, def)| {
                        def.map(|(mask, d)| (custom_name(i), custom_role(&catalog, mask, d)))
                    })
                    .collect()
            });
        let no_custom = BTreeMap::new();
        let desired_custom = spec_roles.as_ref().unwrap_or(&no_custom);
        let exists_desired = |r: &RoleName| catalog.has_role(r) || desired_custom.contains_key(r);
        let mut members = BTreeMap::new();
        for (i, want) in self.wanted.iter().enumerate() {
            let Some(mask) = want else { continue };
            if i == spec_owner_index {
                continue;
            }
            let email = person(i, self.shout.get(i).copied().unwrap_or(false));
            let name = (i % 3 == 0).then(|| format!("Person {i}"));
            members.insert(
                email.clone(),
                MemberSpec {
                    email,
                    name,
                    roles: roles_of(*mask, exists_desired),
                },
            );
        }
        let spec = TeamSpec {
            team,
            display_name: self.spec_name.map(name),
            owner: spec_owner,
            settings: self.spec_settings.map(|(a, b, c)| settings(a, b, c)),
            roles: spec_roles,
            members,
            policy: Policy {
                unmanaged: if self.ignore {
                    Unmanaged::Ignore
                } else {
                    Unmanaged::Remove
                },
                max_removals: None,
            },
        };
        Built {
            catalog,
            spec,
            live,
        }
    }
}

fn check(ok: bool, message: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if ok {
        Ok(())
    } else {
        Err(TestCaseError::fail(message()))
    }
}

/// Plans, applies every change to a copy of live, and plans again.
fn converges(built: &Built) -> Result<(), TestCaseError> {
    let Built {
        catalog,
        spec,
        live,
    } = built;
    let now = now();
    if live.version != 0 {
        check(live.check_invariants().is_ok(), || {
            format!("generated an invalid live state: {live:?}")
        })?;
    }
    let first = plan(spec, live, catalog, now);
    in_design_order(&first.changes)?;
    let mut state = live.clone();
    for change in &first.changes {
        let before = state.clone();
        let result = state.apply(change, catalog, now);
        check(result.is_ok(), || {
            format!(
                "applying {change:?} failed: {result:?}\nfull plan: {:#?}",
                first.changes
            )
        })?;
        check(before != state || is_idempotent_kind(change), || {
            format!("{change:?} changed nothing")
        })?;
    }
    state.version = first.base_version + 1;
    let invariants = state.check_invariants();
    check(invariants.is_ok(), || {
        format!("invariants broken after apply: {invariants:?}")
    })?;
    let second = plan(spec, &state, catalog, now);
    check(second.is_empty(), || {
        format!(
            "planning again is not empty: {:#?}\nafter applying: {:#?}",
            second.changes, first.changes
        )
    })?;
    Ok(())
}

/// Stages in the design's order; within the people's stages, by email, with
/// every revocation before the first removal.
fn in_design_order(changes: &[Change]) -> Result<(), TestCaseError> {
    let key = |c: &Change| {
        let kind = match c {
            Change::RevokeInvitation { .. } => 0,
            Change::RemoveMember { .. } => 1,
            _ => 0,
        };
        (
            c.stage(),
            kind,
            c.subject()
                .filter(|_| !matches!(c, Change::TransferOwnership { .. }))
                .cloned(),
        )
    };
    for pair in changes.windows(2) {
        if let [a, b] = pair {
            check(key(a) <= key(b), || {
                format!("out of order: {a:?} before {b:?}")
            })?;
        }
    }
    Ok(())
}

/// Changes that may leave a state equal to what it was (none, today).
fn is_idempotent_kind(_change: &Change) -> bool {
    false
}

proptest! {
    #[test]
    fn applying_a_plan_then_planning_again_is_empty(s in scenario()) {
        converges(&s.build())?;
    }
}

/// One random change to try on a team, valid or not.
#[derive(Debug, Clone)]
enum Step {
    Invite(usize, u16),
    Reinvite(usize, u16),
    ChangeInvitationRoles(usize, u16),
    ChangeRoles(usize, u16),
    RevokeInvitation(usize),
    RemoveMember(usize),
    CreateRole(usize, u32),
    UpdateRole(usize, u32),
    DeleteRole(usize),
    UpdateSettings(bool, u32, Option<u32>),
    Transfer(usize),
    CompleteTransfer,
    Accept(usize),
}

fn step() -> impl Strategy<Value = Step> {
    let who = 0..POOL;
    let role = 0..CUSTOM;
    prop_oneof![
        3 => (who.clone(), any::<u16>()).prop_map(|(w, r)| Step::Invite(w, r)),
        1 => (who.clone(), any::<u16>()).prop_map(|(w, r)| Step::Reinvite(w, r)),
        1 => (who.clone(), any::<u16>()).prop_map(|(w, r)| Step::ChangeInvitationRoles(w, r)),
        2 => (who.clone(), any::<u16>()).prop_map(|(w, r)| Step::ChangeRoles(w, r)),
        1 => who.clone().prop_map(Step::RevokeInvitation),
        2 => who.clone().prop_map(Step::RemoveMember),
        1 => (role.clone(), any::<u32>()).prop_map(|(r, p)| Step::CreateRole(r, p)),
        1 => (role.clone(), any::<u32>()).prop_map(|(r, p)| Step::UpdateRole(r, p)),
        1 => role.prop_map(Step::DeleteRole),
        1 => (any::<bool>(), 0u32..400, prop::option::of(0u32..10)).prop_map(|(a, b, c)| Step::UpdateSettings(a, b, c)),
        1 => who.clone().prop_map(Step::Transfer),
        1 => Just(Step::CompleteTransfer),
        2 => who.prop_map(Step::Accept),
    ]
}

/// Role masks here may name roles that do not exist (any bit may be set), so
/// that the service's checks are exercised too.
fn any_roles(mask: u16) -> Roles {
    let mut roles = roles_of(mask, |_| true);
    if mask & (1 << 12) != 0 {
        roles.insert(RoleName::owner());
    }
    if mask & (1 << 13) != 0 {
        roles.clear();
    }
    roles
}

fn to_change(step: &Step, state: &TeamState, catalog: &Catalog) -> Option<Change> {
    let e = |i: usize| person(i, i.is_multiple_of(2));
    Some(match step {
        Step::Invite(w, r) => Change::Invite {
            email: e(*w),
            name: None,
            roles: any_roles(*r),
        },
        Step::Reinvite(w, r) => Change::Reinvite {
            email: e(*w),
            name: None,
            roles: any_roles(*r),
            expired_at: now(),
        },
        Step::ChangeInvitationRoles(w, r) => Change::ChangeInvitationRoles {
            email: e(*w),
            from: Roles::new(),
            to: any_roles(*r),
        },
        Step::ChangeRoles(w, r) => Change::ChangeRoles {
            email: e(*w),
            from: Roles::new(),
            to: any_roles(*r),
        },
        Step::RevokeInvitation(w) => Change::RevokeInvitation {
            email: e(*w),
            roles: Roles::new(),
            created_at: now(),
        },
        Step::RemoveMember(w) => Change::RemoveMember {
            email: e(*w),
            roles: Roles::new(),
        },
        Step::CreateRole(r, p) => Change::CreateRole {
            name: custom_name(*r),
            role: custom_role(catalog, *p, false),
        },
        Step::UpdateRole(r, p) => Change::UpdateRole {
            name: custom_name(*r),
            from: custom_role(catalog, 0, false),
            to: custom_role(catalog, *p, true),
        },
        Step::DeleteRole(r) => Change::DeleteRole {
            name: custom_name(*r),
            role: custom_role(catalog, 0, false),
        },
        Step::UpdateSettings(a, b, c) => Change::UpdateSettings {
            from: state.settings.clone(),
            to: settings(*a, *b, *c),
        },
        Step::Transfer(w) => Change::TransferOwnership {
            from: state.owner.clone(),
            to: e(*w),
        },
        Step::CompleteTransfer | Step::Accept(_) => return None,
    })
}

/// Accepting an invitation, as the service does it: the invitation becomes a member.
fn accept(state: &mut TeamState, who: usize) {
    let email = person(who, false);
    if let Some(inv) = state.invitations.remove(&email) {
        let member = Member {
            email: inv.email.clone(),
            name: inv.name,
            roles: inv.roles,
            joined_at: now(),
            two_factor: false,
        };
        state.members.insert(inv.email, member);
    }
}

proptest! {
    #[test]
    fn invariants_hold_after_any_sequence_of_changes(
        s in scenario(),
        steps in prop::collection::vec(step(), 0..40),
    ) {
        let Built { catalog, mut live, .. } = s.build();
        live.version = live.version.max(1);
        prop_assert!(live.check_invariants().is_ok());
        for (n, step) in steps.iter().enumerate() {
            let before = live.clone();
            match (step, to_change(step, &live, &catalog)) {
                (_, Some(change)) => {
                    if let Err(e) = live.apply(&change, &catalog, now()) {
                        prop_assert_eq!(&live, &before, "{:?} failed ({}) but changed the state", change, e);
                    }
                }
                (Step::CompleteTransfer, _) => {
                    let _ = live.complete_transfer(&catalog, now());
                }
                (Step::Accept(who), _) => accept(&mut live, *who),
                _ => {}
            }
            let invariants = live.check_invariants();
            prop_assert!(invariants.is_ok(), "after step {} ({:?}): {:?}", n, step, invariants);
        }
    }
}

#[test]
fn the_generator_makes_valid_live_states() {
    // A fixed scenario with every kind of person, checked outside proptest.
    let s = Scenario {
        version: 3,
        live_owner: 0,
        new_owner: Some(1),
        live_people: (0..POOL)
            .map(|i| match i % 3 {
                0 => Live::Absent,
                1 => Live::Member {
                    roles: 0b11_0000_0001,
                },
                _ => Live::Invited {
                    roles: 0b100_0000_0000,
                    age_days: i as i64 * 2,
                },
            })
            .collect(),
        wanted: (0..POOL)
            .map(|i| (i % 2 == 0).then_some(0b1_0000_0010))
            .collect(),
        shout: (0..POOL).map(|i| i % 5 == 0).collect(),
        live_roles: vec![Some((0b1010, false)), None, Some((u32::MAX, true)), None],
        spec_roles: Some(vec![Some((0b1010, false)), Some((1, false)), None, None]),
        live_settings: (false, 15, None),
        spec_settings: Some((true, 7, Some(30))),
        live_name: 0,
        spec_name: Some(2),
        transfer: Some((2, 3)),
        ignore: false,
    };
    let built = s.build();
    assert!(built.live.check_invariants().is_ok());
    assert_eq!(built.live.members.len(), 1 + 7);
    assert!(built.live.invitations.values().any(|i| i.is_expired(now())));
    assert!(
        built
            .live
            .invitations
            .values()
            .any(|i| !i.is_expired(now()))
    );
    if let Err(e) = converges(&built) {
        panic!("{e}");
    }
}
