//! The plan engine, one behaviour per test. A `Fixture` builds the desired
//! spec and the live state side by side: by default everything it adds is on
//! both sides (no drift), and the few methods named for a difference put it
//! on one side only.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration};
use teamform_core::change::Stage;
use teamform_core::model::{
    CustomRole, Invitation, Member, PendingTransfer, Roles, ScimProvisioning, Settings,
};
use teamform_core::plan::{LimitSource, PlanOptions, plan_with};
use teamform_core::spec::{MemberSpec, Policy, Unmanaged};
use teamform_core::{
    Catalog, Change, Email, Permission, Plan, RemovalLimit, RoleName, TeamId, TeamSpec, TeamState,
    Timestamp,
};

const OWNER: &str = "owner@x.com";

fn now() -> Timestamp {
    DateTime::parse_from_rfc3339("2026-11-28T12:00:00Z")
        .map(|t| t.to_utc())
        .unwrap_or_default()
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap_or_else(|e| panic!("{e}"))
}

fn roles(names: &[&str]) -> Roles {
    names
        .iter()
        .map(|r| RoleName::parse(r).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

fn custom_role(permissions: &[&str]) -> CustomRole {
    CustomRole {
        description: String::new(),
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
    }
}

/// A desired spec and a live state, built together.
struct Fixture {
    catalog: Catalog,
    spec: TeamSpec,
    live: TeamState,
    now: Timestamp,
}

impl Fixture {
    /// Team `acme`, owned by `owner@x.com` on both sides, live at version 7.
    fn new() -> Self {
        let now = now();
        let team = TeamId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        let mut live = TeamState::new(
            team.clone(),
            "Acme".into(),
            email(OWNER),
            now - Duration::days(400),
        );
        live.version = 7;
        let spec = TeamSpec {
            team,
            display_name: None,
            owner: email(OWNER),
            settings: None,
            roles: None,
            members: BTreeMap::new(),
            policy: Policy::default(),
        };
        Self {
            catalog: Catalog::standard(),
            spec,
            live,
            now,
        }
    }

    /// A member on both sides with the same roles.
    fn member(self, who: &str, role_names: &[&str]) -> Self {
        self.live_member(who, role_names).desired(who, role_names)
    }

    /// An invitation `days_ago` old, for the roles the spec wants.
    fn invited(self, who: &str, role_names: &[&str], days_ago: i64) -> Self {
        self.live_invitation(who, role_names, days_ago)
            .desired(who, role_names)
    }

    /// Someone the spec lists, whatever live holds.
    fn desired(mut self, who: &str, role_names: &[&str]) -> Self {
        let e = email(who);
        self.spec.members.insert(
            e.clone(),
            MemberSpec {
                email: e,
                name: None,
                roles: roles(role_names),
            },
        );
        self
    }

    /// A member live only: added outside team.yaml.
    fn live_member(mut self, who: &str, role_names: &[&str]) -> Self {
        let e = email(who);
        let member = Member {
            email: e.clone(),
            name: None,
            roles: roles(role_names),
            joined_at: self.now - Duration::days(30),
            two_factor: false,
        };
        self.live.members.insert(e, member);
        self
    }

    /// An invitation live only, sent `days_ago`, with the team's TTL.
    fn live_invitation(mut self, who: &str, role_names: &[&str], days_ago: i64) -> Self {
        let e = email(who);
        let created_at = self.now - Duration::days(days_ago);
        let ttl = i64::from(self.live.settings.invitation_ttl_days);
        let invitation = Invitation {
            email: e.clone(),
            name: None,
            roles: roles(role_names),
            created_at,
            expires_at: created_at + Duration::days(ttl),
            invited_by: Some(OWNER.into()),
            link: String::new(),
        };
        self.live.invitations.insert(e, invitation);
        self
    }

    /// A custom role on both sides (custom roles become managed).
    fn custom_role(self, name: &str, permissions: &[&str]) -> Self {
        self.live_custom_role(name, permissions)
            .desired_custom_role(name, permissions)
    }

    fn live_custom_role(mut self, name: &str, permissions: &[&str]) -> Self {
        self.live.roles.insert(
            roles(&[name]).into_iter().next().expect("a name"),
            custom_role(permissions),
        );
        self.spec.roles.get_or_insert_with(BTreeMap::new);
        self
    }

    fn desired_custom_role(mut self, name: &str, permissions: &[&str]) -> Self {
        let name = roles(&[name]).into_iter().next().expect("a name");
        self.spec
            .roles
            .get_or_insert_with(BTreeMap::new)
            .insert(name, custom_role(permissions));
        self
    }

    fn desired_settings(mut self, settings: Settings) -> Self {
        self.spec.settings = Some(settings);
        self
    }

    fn desired_display_name(mut self, name: &str) -> Self {
        self.spec.display_name = Some(name.into());
        self
    }

    /// The spec names another owner (who must not also be listed as a member).
    fn desired_owner(mut self, who: &str) -> Self {
        let e = email(who);
        self.spec.members.remove(&e);
        self.spec.owner = e;
        self
    }

    fn pending_transfer_to(mut self, who: &str, days_ago: i64) -> Self {
        let started_at = self.now - Duration::days(days_ago);
        self.live.transfer = Some(PendingTransfer {
            from: self.live.owner.clone(),
            to: email(who),
            started_at,
            expires_at: started_at + Duration::days(teamform_core::change::TRANSFER_TTL_DAYS),
            owner_confirmed: true,
            link: String::new(),
        });
        self
    }

    fn unmanaged(mut self, policy: Unmanaged) -> Self {
        self.spec.policy.unmanaged = policy;
        self
    }

    fn max_removals(mut self, limit: &str) -> Self {
        self.spec.policy.max_removals = Some(limit.parse().unwrap_or_else(|e| panic!("{e}")));
        self
    }

    /// The team does not exist yet.
    fn absent(mut self) -> Self {
        self.live = TeamState::new(
            self.live.team.clone(),
            String::new(),
            email(OWNER),
            self.now,
        );
        self.live.version = 0;
        self
    }

    fn plan(&self) -> Plan {
        self.plan_with(PlanOptions::default())
    }

    fn plan_with(&self, options: PlanOptions) -> Plan {
        if let Err(e) = self.live.check_invariants() {
            panic!("the fixture's live state is not valid: {e}");
        }
        plan_with(&self.spec, &self.live, &self.catalog, self.now, options)
    }
}

/// `action subject` for each change, to compare plans at a glance.
fn summary(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .map(|c| match (c, c.subject()) {
            (
                Change::CreateRole { name, .. }
                | Change::UpdateRole { name, .. }
                | Change::DeleteRole { name, .. },
                _,
            ) => {
                format!("{} {name}", c.action())
            }
            (_, Some(who)) => format!("{} {who}", c.action()),
            (_, None) => c.action().to_owned(),
        })
        .collect()
}

/// Applies every change to a copy of the live state, as the service would.
fn applied(f: &Fixture, plan: &Plan) -> TeamState {
    let mut state = f.live.clone();
    for change in &plan.changes {
        if let Err(e) = state.apply(change, &f.catalog, f.now) {
            panic!("{change:?} failed: {e}");
        }
    }
    state.version = plan.base_version + 1;
    if let Err(e) = state.check_invariants() {
        panic!("invariants broken after apply: {e}");
    }
    state
}

fn assert_converges(f: &Fixture) {
    let first = f.plan();
    let state = applied(f, &first);
    let again = plan_with(&f.spec, &state, &f.catalog, f.now, PlanOptions::default());
    assert!(
        again.is_empty(),
        "not converged, still planned: {:?}",
        summary(&again)
    );
}

#[test]
fn matching_team_plans_nothing() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .member("carol@x.com", &["developer", "billing"])
        .invited("dan@x.com", &["viewer"], 3)
        .custom_role("release", &["apps.read"]);
    let plan = f.plan();
    assert!(plan.is_empty(), "{:?}", summary(&plan));
    assert_eq!(plan.base_version, 7);
    assert_eq!(plan.refusal(), None);
}

#[test]
fn person_in_spec_but_absent_is_invited() {
    let f = Fixture::new().desired("bob@x.com", &["admin"]);
    assert_eq!(summary(&f.plan()), ["invite bob@x.com"]);
    assert_converges(&f);
}

#[test]
fn pending_invitation_with_same_roles_is_not_drift() {
    let f = Fixture::new().invited("carol@x.com", &["viewer"], 14);
    assert!(f.plan().is_empty(), "{:?}", summary(&f.plan()));
}

#[test]
fn expired_invitation_is_reinvited() {
    // The default TTL is 15 days; at exactly 15 days the link is dead.
    let f = Fixture::new()
        .invited("carol@x.com", &["viewer"], 15)
        .invited("dan@x.com", &["viewer"], 40);
    let plan = f.plan();
    assert_eq!(
        summary(&plan),
        ["reinvite carol@x.com", "reinvite dan@x.com"]
    );
    let Some(Change::Reinvite {
        roles: r,
        expired_at,
        ..
    }) = plan.changes.first()
    else {
        panic!("expected a reinvite, got {:?}", plan.changes)
    };
    assert_eq!(r, &roles(&["viewer"]));
    assert_eq!(*expired_at, f.now);
    assert_converges(&f);
}

#[test]
fn expired_invitation_with_other_roles_is_reinvited_with_the_desired_roles() {
    let f = Fixture::new()
        .live_invitation("carol@x.com", &["viewer"], 20)
        .desired("carol@x.com", &["developer"]);
    let plan = f.plan();
    assert_eq!(summary(&plan), ["reinvite carol@x.com"]);
    assert!(
        matches!(plan.changes.first(), Some(Change::Reinvite { roles: r, .. }) if r == &roles(&["developer"]))
    );
    assert_converges(&f);
}

#[test]
fn invitation_with_other_roles_changes_roles() {
    let f = Fixture::new()
        .live_invitation("carol@x.com", &["viewer"], 2)
        .desired("carol@x.com", &["viewer", "billing"]);
    let plan = f.plan();
    assert_eq!(
        plan.changes,
        [Change::ChangeInvitationRoles {
            email: email("carol@x.com"),
            from: roles(&["viewer"]),
            to: roles(&["viewer", "billing"]),
        }]
    );
    assert_converges(&f);
}

#[test]
fn member_with_other_roles_changes_roles() {
    let f = Fixture::new()
        .live_member("bob@x.com", &["admin", "billing"])
        .desired("bob@x.com", &["developer"]);
    let plan = f.plan();
    assert_eq!(
        plan.changes,
        [Change::ChangeRoles {
            email: email("bob@x.com"),
            from: roles(&["admin", "billing"]),
            to: roles(&["developer"])
        }]
    );
    assert_converges(&f);
}

#[test]
fn member_not_in_spec_is_removed() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .live_member("mallory@x.com", &["viewer"]);
    let plan = f.plan();
    assert_eq!(
        plan.changes,
        [Change::RemoveMember {
            email: email("mallory@x.com"),
            roles: roles(&["viewer"])
        }]
    );
    assert_converges(&f);
}

#[test]
fn invitation_not_in_spec_is_revoked() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .member("carol@x.com", &["admin"])
        .member("dan@x.com", &["admin"])
        .live_invitation("eve@x.com", &["viewer"], 2)
        .live_invitation("frank@x.com", &["viewer"], 90);
    let plan = f.plan();
    // Expired or not, an invitation the spec does not want is revoked.
    assert_eq!(
        summary(&plan),
        [
            "revoke_invitation eve@x.com",
            "revoke_invitation frank@x.com"
        ]
    );
    assert!(
        matches!(plan.changes.first(), Some(Change::RevokeInvitation { created_at, .. }) if *created_at == f.now - Duration::days(2))
    );
    assert_converges(&f);
}

#[test]
fn emails_match_whatever_their_case() {
    let f = Fixture::new()
        .live_member("Bob@X.com", &["admin"])
        .desired("bob@x.COM", &["admin"]);
    assert!(f.plan().is_empty(), "{:?}", summary(&f.plan()));
}

#[test]
fn unmanaged_ignore_leaves_others_alone() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .live_member("mallory@x.com", &["viewer"])
        .live_invitation("eve@x.com", &["viewer"], 2)
        .live_invitation("old@x.com", &["viewer"], 60)
        .unmanaged(Unmanaged::Ignore);
    assert!(f.plan().is_empty(), "{:?}", summary(&f.plan()));
    // People it does list are still managed.
    let f = f
        .desired("bob@x.com", &["viewer"])
        .desired("new@x.com", &["viewer"]);
    assert_eq!(
        summary(&f.plan()),
        ["change_roles bob@x.com", "invite new@x.com"]
    );
    assert_converges(&f);
}

#[test]
fn owner_is_never_removed() {
    // The spec lists nobody: everyone goes but the owner.
    let f = Fixture::new().live_member("bob@x.com", &["admin"]);
    let plan = f.plan();
    assert_eq!(summary(&plan), ["remove_member bob@x.com"]);
    let state = applied(&f, &plan);
    assert_eq!(
        state.members.keys().map(Email::as_str).collect::<Vec<_>>(),
        [OWNER]
    );
    // Nor when the spec names someone else as owner: the old owner is handled by the transfer.
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .desired_owner("bob@x.com");
    assert!(
        !f.plan().changes.iter().any(|c| c.is_removal()),
        "the live owner must not be removed: {:?}",
        summary(&f.plan())
    );
}

#[test]
fn owner_change_plans_a_transfer_not_a_role_edit() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .desired_owner("bob@x.com");
    let plan = f.plan();
    assert_eq!(
        plan.changes,
        [Change::TransferOwnership {
            from: email(OWNER),
            to: email("bob@x.com")
        }]
    );
    let state = applied(&f, &plan);
    assert_eq!(
        state.owner,
        email(OWNER),
        "the transfer waits for both confirmations"
    );
    assert_eq!(
        state.transfer.as_ref().map(|t| t.to.as_str()),
        Some("bob@x.com")
    );
    assert_converges(&f);
}

#[test]
fn owner_change_to_someone_new_plans_only_a_transfer() {
    let f = Fixture::new().desired_owner("zoe@x.com");
    assert_eq!(summary(&f.plan()), ["transfer_ownership zoe@x.com"]);
    assert_converges(&f);
}

#[test]
fn pending_transfer_to_desired_owner_is_not_drift() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .desired_owner("bob@x.com")
        .pending_transfer_to("bob@x.com", 2);
    assert!(f.plan().is_empty(), "{:?}", summary(&f.plan()));
}

#[test]
fn expired_transfer_to_desired_owner_is_started_again() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .desired_owner("bob@x.com")
        .pending_transfer_to("bob@x.com", 8);
    assert_eq!(summary(&f.plan()), ["transfer_ownership bob@x.com"]);
    assert_converges(&f);
}

#[test]
fn pending_transfer_to_someone_else_is_replaced() {
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .member("carol@x.com", &["admin"])
        .desired_owner("bob@x.com")
        .pending_transfer_to("carol@x.com", 1);
    assert_eq!(summary(&f.plan()), ["transfer_ownership bob@x.com"]);
    assert_converges(&f);
}

/// Where each kind of change belongs in the design's order.
fn design_rank(change: &Change) -> usize {
    match change {
        Change::CreateTeam { .. } => 0,
        Change::CreateRole { .. } | Change::UpdateRole { .. } => 1,
        Change::RenameTeam { .. } | Change::UpdateSettings { .. } => 2,
        Change::Invite { .. }
        | Change::Reinvite { .. }
        | Change::AddMember { .. }
        | Change::ChangeInvitationRoles { .. }
        | Change::ChangeRoles { .. } => 3,
        Change::RevokeInvitation { .. } | Change::RemoveMember { .. } => 4,
        Change::DeleteRole { .. } => 5,
        Change::TransferOwnership { .. } => 6,
    }
}

/// One of every kind of change a live team can need.
fn mixed() -> Fixture {
    Fixture::new()
        .member("bob@x.com", &["admin"])
        .live_member("carol@x.com", &["developer"])
        .desired("carol@x.com", &["developer", "on-call"])
        .live_member("mallory@x.com", &["legacy"])
        .live_invitation("dan@x.com", &["viewer"], 20)
        .desired("dan@x.com", &["viewer"])
        .live_invitation("erin@x.com", &["viewer"], 1)
        .desired("erin@x.com", &["billing_viewer"])
        .live_invitation("frank@x.com", &["viewer"], 3)
        .invited("grace@x.com", &["modifier"], 5)
        .desired("heidi@x.com", &["developer"])
        .desired_custom_role("on-call", &["apps.read", "apps.config.write"])
        .live_custom_role("release", &["apps.read"])
        .desired_custom_role("release", &["apps.read", "apps.create"])
        .live_custom_role("legacy", &["billing.read"])
        .desired_settings(Settings {
            require_2fa: true,
            invitation_ttl_days: 7,
            seat_limit: Some(50),
            scim_provisioning: ScimProvisioning::Members,
        })
        .desired_display_name("Acme Inc")
        .desired_owner("bob@x.com")
        .max_removals("5")
}

#[test]
fn changes_follow_the_design_order() {
    let f = mixed();
    let plan = f.plan();
    assert_eq!(
        summary(&plan),
        [
            "create_role on-call",
            "update_role release",
            "rename_team",
            "update_settings",
            "change_roles carol@x.com",
            "reinvite dan@x.com",
            "change_invitation_roles erin@x.com",
            "invite heidi@x.com",
            "revoke_invitation frank@x.com",
            "remove_member mallory@x.com",
            "delete_role legacy",
            "transfer_ownership bob@x.com",
        ]
    );
    let ranks: Vec<usize> = plan.changes.iter().map(design_rank).collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{ranks:?}");
    let stages: Vec<Stage> = plan.changes.iter().map(Change::stage).collect();
    assert!(stages.windows(2).all(|w| w[0] <= w[1]), "{stages:?}");
    assert_eq!(
        plan.changes.last().map(Change::action),
        Some("transfer_ownership")
    );
    assert_converges(&f);
}

#[test]
fn a_mixed_plan_is_summarized_by_kind() {
    let counts = mixed().plan().counts();
    assert_eq!(
        (counts.add, counts.change, counts.remove, counts.transfer),
        (3, 5, 3, 1)
    );
}

#[test]
fn mixed_plan_snapshot() {
    insta::assert_json_snapshot!(mixed().plan());
}

#[test]
fn mixed_plan_reads_back_from_json() {
    let plan = mixed().plan();
    let json = serde_json::to_string(&plan).unwrap_or_else(|e| panic!("{e}"));
    let back: Plan = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, plan);
}

#[test]
fn new_team_snapshot() {
    let f = Fixture::new()
        .desired("bob@x.com", &["admin"])
        .desired("carol@x.com", &["developer", "billing"])
        .desired_custom_role("release", &["apps.read"])
        .desired_display_name("Acme Inc")
        .absent();
    insta::assert_json_snapshot!(f.plan());
}

/// Ten members (the owner and nine others); the spec keeps six of the nine.
fn ten_members_three_removed() -> Fixture {
    let mut f = Fixture::new();
    for i in 0..9 {
        let who = format!("m{i}@x.com");
        f = if i < 6 {
            f.member(&who, &["viewer"])
        } else {
            f.live_member(&who, &["viewer"])
        };
    }
    assert_eq!(f.live.members.len(), 10);
    f
}

#[test]
fn removals_over_limit_refuse_with_a_message_naming_the_limit_and_how_to_raise_it() {
    let f = ten_members_three_removed();
    let plan = f.plan();
    assert_eq!(plan.removals.planned, 3);
    assert_eq!(plan.removals.allowed, 2);
    assert_eq!(plan.removals.limit, RemovalLimit::DEFAULT);
    assert_eq!(plan.removals.source, LimitSource::Default);
    let refusal = plan
        .refusal()
        .expect("3 removals of 10 members exceed the default 25%");
    assert!(refusal.contains("--max-removals"), "{refusal}");
    assert!(refusal.contains("max_removals"), "{refusal}");
    assert!(refusal.contains("25%"), "{refusal}");
    assert!(refusal.contains("removes 3"), "{refusal}");
    insta::assert_snapshot!(refusal);

    // Raised on the command line.
    let flag = PlanOptions {
        max_removals: Some(RemovalLimit::Percent(30)),
    };
    let raised = f.plan_with(flag);
    assert_eq!(raised.removals.source, LimitSource::Flag);
    assert_eq!(raised.refusal(), None);

    // Raised in team.yaml, where a reviewer sees it.
    let f = f.max_removals("3");
    let plan = f.plan();
    assert_eq!(plan.removals.source, LimitSource::Policy);
    assert_eq!(plan.refusal(), None);
    assert_eq!(
        plan.changes,
        f.plan_with(flag).changes,
        "the limit changes whether, not what"
    );

    // The flag wins over the policy, even when it is lower.
    let lowered = f.plan_with(PlanOptions {
        max_removals: Some(RemovalLimit::Count(1)),
    });
    assert!(
        lowered
            .refusal()
            .is_some_and(|r| r.contains("--max-removals"))
    );
}

#[test]
fn a_small_team_may_always_remove_one() {
    let f = Fixture::new().live_member("bob@x.com", &["admin"]);
    let plan = f.plan();
    assert_eq!(plan.removals.allowed, 1);
    assert_eq!(plan.refusal(), None);
}

#[test]
fn every_kind_of_removal_counts() {
    let mut f = Fixture::new()
        .live_member("mallory@x.com", &["viewer"])
        .live_invitation("eve@x.com", &["viewer"], 1)
        .live_custom_role("legacy", &["apps.read"]);
    for i in 0..20 {
        f = f.member(&format!("m{i}@x.com"), &["viewer"]);
    }
    let plan = f.plan();
    assert_eq!(
        summary(&plan),
        [
            "revoke_invitation eve@x.com",
            "remove_member mallory@x.com",
            "delete_role legacy"
        ]
    );
    assert_eq!(plan.removals.planned, 3);
    assert_eq!(
        plan.removals.members, 23,
        "members plus the pending invitation"
    );
    assert_eq!(plan.removals.allowed, 5);
    assert_eq!(plan.counts().remove, 3);
    // At a limit of 2, any two of them would pass and the three do not.
    let f = f.max_removals("2");
    assert!(f.plan().refusal().is_some());
}

#[test]
fn absent_team_is_created_first() {
    let f = Fixture::new()
        .desired("bob@x.com", &["admin"])
        .desired_settings(Settings {
            require_2fa: true,
            ..Settings::default()
        })
        .desired_custom_role("release", &["apps.read"])
        .absent();
    let plan = f.plan();
    assert_eq!(plan.base_version, 0);
    assert_eq!(
        plan.changes.first(),
        Some(&Change::CreateTeam {
            display_name: "acme".into(),
            owner: email(OWNER)
        }),
        "{:?}",
        summary(&plan)
    );
    assert_eq!(
        summary(&plan),
        [
            "create_team owner@x.com",
            "create_role release",
            "update_settings",
            "invite bob@x.com"
        ]
    );
    assert_eq!(plan.removals.planned, 0);
    assert_converges(&f);
}

#[test]
fn absent_team_takes_its_display_name_from_the_spec() {
    let f = Fixture::new().desired_display_name("Acme Inc").absent();
    assert_eq!(plan_summary_of(&f), ["create_team owner@x.com"]);
    assert!(
        matches!(f.plan().changes.first(), Some(Change::CreateTeam { display_name, .. }) if display_name == "Acme Inc")
    );
}

fn plan_summary_of(f: &Fixture) -> Vec<String> {
    summary(&f.plan())
}

#[test]
fn unmanaged_sections_are_left_alone() {
    // Without `roles:` and `settings:` in the spec, live custom roles and settings stay.
    let mut f = Fixture::new().member("bob@x.com", &["admin"]);
    f.live.roles.insert(
        roles(&["legacy"]).into_iter().next().expect("name"),
        custom_role(&["apps.read"]),
    );
    f.live.settings = Settings {
        require_2fa: true,
        invitation_ttl_days: 3,
        seat_limit: Some(4),
        scim_provisioning: ScimProvisioning::Members,
    };
    assert_eq!(f.spec.roles, None);
    assert_eq!(f.spec.settings, None);
    assert!(f.plan().is_empty(), "{:?}", summary(&f.plan()));
}

#[test]
fn the_plan_is_bound_to_the_live_version_and_time() {
    let f = Fixture::new().desired("bob@x.com", &["admin"]);
    let plan = f.plan();
    assert_eq!(plan.base_version, 7);
    assert_eq!(plan.generated_at, f.now);
    assert_eq!(plan.team.as_str(), "acme");
    assert_eq!(plan.format_version, teamform_core::plan::FORMAT_VERSION);
}

#[test]
fn planning_is_deterministic() {
    let f = mixed();
    assert_eq!(f.plan(), f.plan());
    let members: BTreeSet<String> = f
        .plan()
        .changes
        .iter()
        .filter_map(Change::subject)
        .map(|e| e.to_string())
        .collect();
    assert!(members.contains("heidi@x.com"));
}

#[test]
fn role_still_held_by_an_ignored_member_is_not_deleted() {
    // The spec drops `legacy` but leaves mallory, who holds it, alone:
    // deleting the role would fail, so it waits until nobody left alone holds it.
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .live_custom_role("legacy", &["apps.read"])
        .live_custom_role("unused", &["apps.read"])
        .live_member("mallory@x.com", &["legacy"])
        .unmanaged(Unmanaged::Ignore);
    assert_eq!(summary(&f.plan()), ["delete_role unused"]);
    let notes = f.plan().notes;
    assert_eq!(notes.len(), 1, "the held-back deletion is said: {notes:?}");
    assert!(notes[0].contains("legacy"), "{notes:?}");
    assert_converges(&f);
    // Under `remove`, mallory goes first and the role after her.
    let f = f.unmanaged(Unmanaged::Remove);
    assert_eq!(
        summary(&f.plan()),
        [
            "remove_member mallory@x.com",
            "delete_role legacy",
            "delete_role unused"
        ]
    );
    assert_converges(&f);
}

#[test]
fn role_held_by_the_incoming_owner_is_deleted_once_the_transfer_completes() {
    let f = Fixture::new()
        .live_member("bob@x.com", &["admin", "legacy"])
        .live_custom_role("legacy", &["apps.read"])
        .desired_owner("bob@x.com");
    assert_eq!(summary(&f.plan()), ["transfer_ownership bob@x.com"]);
    let mut state = applied(&f, &f.plan());
    assert_eq!(
        plan_with(&f.spec, &state, &f.catalog, f.now, PlanOptions::default()).changes,
        []
    );
    // Both confirm: bob now holds only `owner`, and the role can go.
    state
        .complete_transfer(&f.catalog, f.now)
        .expect("a pending transfer");
    state.version += 1;
    let after = plan_with(&f.spec, &state, &f.catalog, f.now, PlanOptions::default());
    assert_eq!(
        summary(&after),
        ["remove_member owner@x.com", "delete_role legacy"]
    );
}

#[test]
fn pending_invitations_are_shown_oldest_first_but_not_expired_or_revoked_ones() {
    let plan = Fixture::new()
        .invited("new@x.com", &["viewer"], 1)
        .invited("old@x.com", &["viewer"], 9)
        .invited("stale@x.com", &["viewer"], 20)
        .live_invitation("gone@x.com", &["viewer"], 2)
        .plan();
    let pending: Vec<&str> = plan.pending.iter().map(|p| p.email.as_str()).collect();
    assert_eq!(
        pending,
        ["old@x.com", "new@x.com"],
        "expired (re-invited) and revoked invitations are changes, not pending"
    );
    assert!(plan.pending[0].created_at < plan.pending[1].created_at);
}

#[test]
fn a_plan_that_overflows_the_seat_limit_says_so() {
    let settings = Settings {
        require_2fa: false,
        invitation_ttl_days: 15,
        seat_limit: Some(3),
        scim_provisioning: ScimProvisioning::Invitations,
    };
    let f = Fixture::new()
        .member("bob@x.com", &["admin"])
        .desired("carol@x.com", &["viewer"])
        .desired("dan@x.com", &["viewer"])
        .desired_settings(settings.clone());
    let notes = f.plan().notes;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("need 4 seats") && notes[0].contains("seat limit is 3"),
        "{notes:?}"
    );
    let fits = Fixture::new()
        .member("bob@x.com", &["admin"])
        .desired("carol@x.com", &["viewer"])
        .desired_settings(settings);
    assert!(
        fits.plan().notes.is_empty(),
        "owner, bob and carol fit 3 seats"
    );
}
