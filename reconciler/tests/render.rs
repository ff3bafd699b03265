//! Renderings of plans and catalogs: snapshots of the terminal text, the
//! Markdown comment and the JSON, for a plan with every kind of change, an
//! empty plan and a refused plan, plus the behaviours a reader relies on
//! (wording, no escape codes without color, no panic on odd input).
//!
//! Plans are computed by the real plan engine from a team.yaml and a live
//! state built here, at a fixed `now`, so snapshots are stable.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step fails the test

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration};
use teamform::render::{
    catalog_json, catalog_markdown, catalog_text, change_line, plan_json, plan_json_with,
    plan_markdown, plan_text,
};
use teamform_core::model::{CustomRole, Invitation, Member, Roles, Settings};
use teamform_core::plan::{LimitSource, PlanOptions, RemovalGuard, plan_with};
use teamform_core::{
    Catalog, Change, Email, Permission, Plan, RemovalLimit, RoleName, TeamId, TeamSpec, TeamState,
    Timestamp,
};

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

fn role_name(name: &str) -> RoleName {
    RoleName::parse(name).unwrap_or_else(|e| panic!("{e}"))
}

fn custom_role(description: &str, permissions: &[&str]) -> CustomRole {
    CustomRole {
        description: description.to_owned(),
        permissions: permissions
            .iter()
            .map(|p| Permission::parse(p).unwrap_or_else(|e| panic!("{e}")))
            .collect(),
    }
}

fn spec(yaml: &str) -> TeamSpec {
    TeamSpec::parse("team.yaml", yaml, &Catalog::standard())
        .unwrap_or_else(|e| panic!("team.yaml does not parse: {e:?}"))
}

/// A live team `acme` at version 7, owned by `alice@acme.com`.
struct Live(TeamState);

impl Live {
    fn new(display_name: &str) -> Self {
        let team = TeamId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        let mut state = TeamState::new(
            team,
            display_name.into(),
            email("alice@acme.com"),
            now() - Duration::days(400),
        );
        state.version = 7;
        Self(state)
    }

    fn member(mut self, who: &str, role_names: &[&str]) -> Self {
        let member = Member {
            email: email(who),
            name: None,
            roles: roles(role_names),
            joined_at: now() - Duration::days(30),
            two_factor: false,
        };
        self.0.members.insert(email(who), member);
        self
    }

    /// An invitation sent `days_ago`, with the team's time to live.
    fn invitation(mut self, who: &str, role_names: &[&str], days_ago: i64) -> Self {
        let created_at = now() - Duration::days(days_ago);
        let ttl = i64::from(self.0.settings.invitation_ttl_days);
        let invitation = Invitation {
            email: email(who),
            name: None,
            roles: roles(role_names),
            created_at,
            expires_at: created_at + Duration::days(ttl),
            invited_by: Some("alice@acme.com".into()),
            link: String::new(),
        };
        self.0.invitations.insert(email(who), invitation);
        self
    }

    fn custom_role(mut self, name: &str, permissions: &[&str]) -> Self {
        self.0
            .roles
            .insert(role_name(name), custom_role("", permissions));
        self
    }
}

/// A plan with its two sides as canonical YAML, as the CLI hands them over.
struct Planned {
    plan: Plan,
    live_yaml: String,
    desired_yaml: String,
}

fn planned(desired: &str, live: Live) -> Planned {
    let desired = spec(desired);
    let live = live.0;
    if live.version != 0
        && let Err(e) = live.check_invariants()
    {
        panic!("the live state is not valid: {e}");
    }
    let plan = plan_with(
        &desired,
        &live,
        &Catalog::standard(),
        now(),
        PlanOptions::default(),
    );
    // As the CLI does: no live side for a new team, and otherwise only the
    // sections team.yaml manages, so that the diff shows drift alone.
    let live_yaml = if live.version == 0 {
        String::new()
    } else {
        live_as_managed(&live, &desired).to_yaml()
    };
    Planned {
        plan,
        live_yaml,
        desired_yaml: desired.to_yaml(),
    }
}

fn live_as_managed(live: &TeamState, desired: &TeamSpec) -> TeamSpec {
    let mut view = TeamSpec::from_state(live);
    if desired.settings.is_none() {
        view.settings = None;
    }
    if desired.roles.is_none() {
        view.roles = None;
    }
    if desired.display_name.is_none() {
        view.display_name = None;
    }
    view.policy = desired.policy.clone();
    view
}

impl Planned {
    fn markdown(&self) -> String {
        plan_markdown(&self.plan, &self.live_yaml, &self.desired_yaml)
    }
}

/// Every kind of change a live team can get: roles created, updated and
/// deleted, a rename, settings, an invitation, a re-invitation, role changes
/// of a member and of an invitation, a revocation, a removal and an
/// ownership transfer.
fn every_change() -> Planned {
    let desired = "\
version: 1
team: acme
display_name: Acme Inc
owner: hal@acme.com
settings:
  require_2fa: true
  invitation_ttl_days: 15
  seat_limit: 50
  scim_provisioning: members
roles:
  on-call:
    permissions: [apps.create, apps.config.write]
  release-manager:
    description: Ships releases
    permissions: [apps.read, apps.config.write]
members:
  - email: alice@acme.com
    roles: [admin]
  - email: bob@acme.com
    name: Bob
    roles: [admin, billing]
  - email: carol@acme.com
    roles: [viewer]
  - email: dan@acme.com
    roles: [admin, developer]
  - email: eve@acme.com
    roles: [developer]
  - email: ivy@acme.com
    roles: [viewer]
policy:
  unmanaged: remove
  max_removals: 3
";
    let live = Live::new("Acme")
        .custom_role("on-call", &["apps.read", "apps.config.write"])
        .custom_role("legacy", &["billing.read"])
        .member("dan@acme.com", &["developer"])
        .member("gus@acme.com", &["admin"])
        .member("hal@acme.com", &["developer"])
        .member("ivy@acme.com", &["viewer"])
        .invitation("carol@acme.com", &["viewer"], 18)
        .invitation("eve@acme.com", &["viewer"], 2)
        .invitation("frank@acme.com", &["viewer"], 20);
    planned(desired, live)
}

/// A team that does not exist yet.
fn new_team() -> Planned {
    let desired = "\
version: 1
team: acme
display_name: Acme Inc
owner: alice@acme.com
settings:
  require_2fa: true
  invitation_ttl_days: 7
roles:
  release-manager:
    description: Ships releases
    permissions: [apps.read, apps.config.write]
members:
  - email: bob@acme.com
    roles: [admin, billing]
";
    let mut live = Live::new("");
    live.0.version = 0;
    planned(desired, live)
}

fn unchanged() -> Planned {
    let desired = "\
version: 1
team: acme
display_name: Acme
owner: alice@acme.com
members:
  - email: bob@acme.com
    roles: [admin]
  - email: carol@acme.com
    roles: [developer, billing]
";
    let live = Live::new("Acme")
        .member("bob@acme.com", &["admin"])
        .invitation("carol@acme.com", &["billing", "developer"], 4);
    planned(desired, live)
}

/// Five members, two removed: over the default limit of 25 % (one).
fn refused() -> Planned {
    let desired = "\
version: 1
team: acme
owner: alice@acme.com
members:
  - email: bob@acme.com
    roles: [admin]
  - email: carol@acme.com
    roles: [developer]
";
    let live = Live::new("Acme")
        .member("bob@acme.com", &["admin"])
        .member("carol@acme.com", &["developer"])
        .member("dan@acme.com", &["viewer"])
        .member("erin@acme.com", &["billing_viewer"]);
    planned(desired, live)
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn every_change_plan_covers_every_kind_of_change() {
    let p = every_change();
    let actions: BTreeSet<&str> = p.plan.changes.iter().map(Change::action).collect();
    let expected: BTreeSet<&str> = [
        "rename_team",
        "create_role",
        "update_role",
        "delete_role",
        "update_settings",
        "invite",
        "reinvite",
        "change_invitation_roles",
        "change_roles",
        "revoke_invitation",
        "remove_member",
        "transfer_ownership",
    ]
    .into_iter()
    .collect();
    assert_eq!(actions, expected);
    assert_eq!(p.plan.refusal(), None);
    let created: BTreeSet<&str> = new_team().plan.changes.iter().map(Change::action).collect();
    assert!(created.contains("create_team"), "{created:?}");
}

#[test]
fn plan_text_says_each_change_in_the_designed_words() {
    let text = plan_text(&every_change().plan, false);
    let lines = lines(&text);
    for expected in [
        "teamform will perform these changes to team acme (live version 7):",
        "  + create role release-manager: apps.config.write, apps.read",
        "  ~ update role on-call: + apps.create, - apps.read",
        "  ~ rename team: \"Acme\" -> \"Acme Inc\"",
        "  ~ settings: require_2fa false -> true, seat_limit none -> 50, scim_provisioning invitations -> members",
        "  + invite bob@acme.com as admin, billing",
        "  + re-invite carol@acme.com as viewer (link expired 3 days ago)",
        "  ~ change roles of dan@acme.com: developer -> admin, developer",
        "  ~ change invitation roles of eve@acme.com: viewer -> developer",
        "  - revoke invitation of frank@acme.com (viewer, sent 20 days ago)",
        "  - remove member gus@acme.com (admin)",
        "  - delete role legacy",
        "  ! transfer ownership alice@acme.com -> hal@acme.com (starts a two-step transfer: both must confirm)",
        "Plan: 3 to add, 5 to change, 3 to remove, 1 ownership transfer.",
    ] {
        assert!(
            lines.contains(&expected),
            "missing line {expected:?} in\n{text}"
        );
    }
}

#[test]
fn plan_text_for_a_new_team_says_so_and_creates_it_first() {
    let text = plan_text(&new_team().plan, false);
    let lines = lines(&text);
    assert_eq!(
        lines.first(),
        Some(&"teamform will perform these changes to team acme (new team):")
    );
    assert!(
        lines.contains(&"  + create team acme \"Acme Inc\" owned by alice@acme.com"),
        "{text}"
    );
    insta::assert_snapshot!(text);
    insta::assert_snapshot!("plan_markdown_new_team", new_team().markdown());
}

#[test]
fn plan_text_every_change() {
    insta::assert_snapshot!(plan_text(&every_change().plan, false));
}

#[test]
fn plan_markdown_every_change() {
    insta::assert_snapshot!(every_change().markdown());
}

#[test]
fn plan_json_every_change() {
    insta::assert_json_snapshot!(plan_json(&every_change().plan));
}

#[test]
fn plan_json_summary_and_symbol_match_the_text() {
    let p = every_change();
    let json = plan_json(&p.plan);
    let text = plan_text(&p.plan, false);
    let changes = json["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(changes.len(), p.plan.changes.len());
    for (value, change) in changes.iter().zip(&p.plan.changes) {
        assert_eq!(value["op"], change.action());
        let line = format!(
            "  {} {}",
            value["symbol"].as_str().unwrap_or_default(),
            value["summary"].as_str().unwrap_or_default()
        );
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
        assert_eq!(
            value["summary"].as_str(),
            Some(change_line(change, p.plan.generated_at).as_str())
        );
    }
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["counts"]["transfer"], 1);
    assert!(json["refused"].is_null());
}

#[test]
fn empty_plan_says_the_team_matches() {
    let p = unchanged();
    assert!(p.plan.is_empty(), "{:?}", p.plan.changes);
    let text = plan_text(&p.plan, false);
    // The pending invitations still show, with the oldest one's age.
    let pending = "1 invitation is pending (not drift); the oldest, to carol@acme.com, was sent 4 days ago and expires in 11 days.";
    assert_eq!(
        text.trim_end(),
        format!("No changes. Team acme matches the configuration.\n\n{pending}")
    );
    insta::assert_snapshot!("plan_text_empty", text);
    let markdown = p.markdown();
    assert_eq!(
        markdown.trim_end(),
        format!(
            "**Plan: 0 to add, 0 to change, 0 to remove.**\n\n### Team `acme`\n\nNo changes: the team matches its file.\n\n{pending}"
        )
    );
    insta::assert_snapshot!("plan_markdown_empty", markdown);
    insta::assert_json_snapshot!("plan_json_empty", plan_json(&p.plan));
}

#[test]
fn refused_plan_ends_with_the_reason() {
    let p = refused();
    let refusal = p
        .plan
        .refusal()
        .unwrap_or_else(|| panic!("two removals of five members exceed 25%"));

    let text = plan_text(&p.plan, false);
    assert_eq!(
        text.lines().last(),
        Some(format!("Error: {refusal}").as_str())
    );
    insta::assert_snapshot!("plan_text_refused", text);

    let markdown = p.markdown();
    assert!(
        markdown.contains(&format!("> **Refused** (team `acme`): {refusal}")),
        "{markdown}"
    );
    insta::assert_snapshot!("plan_markdown_refused", markdown);

    let json = plan_json(&p.plan);
    assert_eq!(json["refused"].as_str(), Some(refusal.as_str()));
    insta::assert_json_snapshot!("plan_json_refused", json);
}

#[test]
fn color_is_escape_codes_only_when_asked_for() {
    for p in [every_change(), new_team(), unchanged(), refused()] {
        let plain = plan_text(&p.plan, false);
        assert!(!plain.contains('\x1b'), "{plain}");
        let colored = plan_text(&p.plan, true);
        assert!(colored.contains('\x1b'), "{colored}");
        // Color changes how it looks, not what it says.
        assert_eq!(strip_ansi(&colored), plain);
    }
    let ably = ably();
    assert!(!catalog_text(&ably, false).contains('\x1b'));
    assert!(catalog_text(&ably, true).contains('\x1b'));
    assert_eq!(
        strip_ansi(&catalog_text(&ably, true)),
        catalog_text(&ably, false)
    );
}

#[test]
fn colored_symbols_use_their_own_color() {
    let colored = plan_text(&every_change().plan, true);
    for (color, symbol) in [("32", "+"), ("33", "~"), ("31", "-"), ("35", "!")] {
        let painted = format!("  \x1b[{color}m{symbol}\x1b[0m ");
        assert!(colored.contains(&painted), "{painted:?} not in {colored:?}");
    }
}

/// Removes `ESC [ ... m` sequences.
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A plan no engine would make, with text chosen to break renderings.
fn hostile_plan() -> Plan {
    let team = TeamId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
    let now = now();
    let changes = vec![
        Change::CreateTeam {
            display_name: "\x1b[31mEvil\x1b[0m\n| `x` <b>".into(),
            owner: email("a_b*c`d@acme.com"),
        },
        Change::RenameTeam {
            from: String::new(),
            to: "# heading\r\nline".into(),
        },
        Change::CreateRole {
            name: role_name("empty"),
            role: custom_role("", &[]),
        },
        Change::UpdateRole {
            name: role_name("same"),
            from: custom_role("\x07", &["apps.read"]),
            to: custom_role("<script>", &["apps.read"]),
        },
        Change::UpdateSettings {
            from: Settings::default(),
            to: Settings::default(),
        },
        Change::Invite {
            email: email("nobody@acme.com"),
            name: Some("\x1b]0;title\x07".into()),
            roles: teamform_core::model::Roles::new(),
        },
        Change::Reinvite {
            email: email("future@acme.com"),
            name: None,
            roles: roles(&["viewer"]),
            expired_at: now + Duration::days(3),
        },
        Change::RevokeInvitation {
            email: email("ancient@acme.com"),
            roles: teamform_core::model::Roles::new(),
            created_at: DateTime::<chrono::Utc>::MIN_UTC,
        },
        Change::RemoveMember {
            email: email("far@acme.com"),
            roles: roles(&["admin"]),
        },
        Change::AddMember {
            email: email("idp@acme.com"),
            name: Some("\x1b[31mred\x1b[0m <b>".into()),
            roles: roles(&["viewer"]),
        },
    ];
    Plan {
        format_version: 1,
        team,
        base_version: u64::MAX,
        generated_at: DateTime::<chrono::Utc>::MAX_UTC,
        changes,
        removals: RemovalGuard {
            limit: RemovalLimit::Count(u32::MAX),
            source: LimitSource::Flag,
            allowed: 0,
            planned: usize::MAX,
            members: 0,
        },
        pending: vec![teamform_core::plan::PendingInvitation {
            email: email("a_b*c`d@acme.com"),
            created_at: DateTime::<chrono::Utc>::MIN_UTC,
            expires_at: DateTime::<chrono::Utc>::MAX_UTC,
        }],
        notes: vec!["\x1b[2Jrole\nspoof".into()],
    }
}

#[test]
fn odd_plans_render_without_panicking_or_leaking_control_characters() {
    let plan = hostile_plan();
    let text = plan_text(&plan, false);
    assert!(!text.contains('\x1b'), "{text}");
    assert!(!text.contains('\x07'), "{text}");
    assert!(text.contains("as no roles"), "{text}");
    assert!(text.contains("create role empty: no permissions"), "{text}");
    assert!(text.contains("Error: "), "{text}");
    let markdown = plan_markdown(&plan, "a: `\n```\n", "a: b\n````\n");
    assert!(!markdown.contains('\x1b'), "{markdown}");
    assert!(!markdown.contains("<script>"), "{markdown}");
    assert!(!markdown.contains("<b>"), "{markdown}");
    assert!(
        markdown.contains("`````diff"),
        "the fence must outlast the diff's backticks: {markdown}"
    );
    let json = plan_json(&plan);
    assert_eq!(json["changes"].as_array().map(Vec::len), Some(10));

    let mut weird = Catalog::standard();
    weird.name = "\x1b[2J|`".into();
    weird.description = String::new();
    if let Some(p) = weird.permissions.first_mut() {
        p.label = "tab\there | pipe\n".into();
    }
    weird.roles.clear();
    let text = catalog_text(&weird, false);
    assert!(!text.contains('\x1b') && !text.contains('\t'), "{text}");
    let markdown = catalog_markdown(&weird);
    assert!(markdown.contains("tab\\there \\| pipe"), "{markdown}");
    let _ = catalog_json(&weird);
}

#[test]
fn change_line_names_no_team_and_no_symbol() {
    let change = Change::CreateTeam {
        display_name: "Acme Inc".into(),
        owner: email("alice@acme.com"),
    };
    assert_eq!(
        change_line(&change, now()),
        "create team \"Acme Inc\" owned by alice@acme.com"
    );
    let change = Change::Reinvite {
        email: email("carol@acme.com"),
        name: None,
        roles: roles(&["viewer"]),
        expired_at: now() - Duration::hours(5),
    };
    assert_eq!(
        change_line(&change, now()),
        "re-invite carol@acme.com as viewer (link expired today)"
    );
}

fn ably() -> Catalog {
    Catalog::preset("ably").unwrap_or_else(|| panic!("the ably preset loads"))
}

#[test]
fn catalog_text_ably() {
    insta::assert_snapshot!(catalog_text(&ably(), false));
}

#[test]
fn catalog_markdown_ably() {
    insta::assert_snapshot!(catalog_markdown(&ably()));
}

#[test]
fn catalog_json_ably() {
    insta::assert_json_snapshot!(catalog_json(&ably()));
}

#[test]
fn catalog_json_answers_which_roles_hold_a_labelled_permission() {
    let json = catalog_json(&ably());
    let permissions = json["permissions"].as_array().cloned().unwrap_or_default();
    let invoices = permissions
        .iter()
        .find(|p| p["label"] == "View invoices")
        .unwrap_or_else(|| panic!("no `View invoices` row in {json}"));
    let holders: BTreeMap<String, bool> = invoices["roles"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_bool().unwrap_or(false)))
                .collect()
        })
        .unwrap_or_default();
    let expected: BTreeMap<String, bool> = [
        ("owner", true),
        ("developer", false),
        ("billing", true),
        ("admin", false),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(holders, expected);
    assert_eq!(json["previous_owner_role"], "admin");
    assert_eq!(json["multiple_roles"], true);
    assert_eq!(
        json["roles"].as_array().map(Vec::len),
        Some(ably().roles.len())
    );
}

#[test]
fn a_link_sent_a_moment_ago_expires_in_its_full_ttl() {
    let mut p = unchanged();
    let pending = p
        .plan
        .pending
        .first_mut()
        .expect("carol's invitation is pending");
    pending.created_at = now() - chrono::Duration::seconds(5);
    pending.expires_at = pending.created_at + chrono::Duration::days(15);
    let text = plan_text(&p.plan, false);
    assert!(
        text.contains("was sent today and expires in 15 days"),
        "{text}"
    );
}

#[test]
fn plan_json_counts_pending_invitations_and_lists_them_only_when_asked() {
    let mut p = unchanged();
    let first = p.plan.pending[0].clone();
    for i in 0..3 {
        let mut later = first.clone();
        later.email = email(&format!("later{i}@acme.com"));
        later.created_at = first.created_at + Duration::days(1);
        p.plan.pending.push(later);
    }
    let short = plan_json(&p.plan);
    assert_eq!(short["pending_invitations"]["count"], 4);
    assert_eq!(
        short["pending_invitations"]["oldest"]["email"],
        "carol@acme.com"
    );
    assert_eq!(short["pending_invitations"]["oldest"]["age_days"], 4);
    assert!(short["pending_invitations"].get("list").is_none());
    let full = plan_json_with(&p.plan, true);
    let list = full["pending_invitations"]["list"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[3]["email"], "later2@acme.com");
    assert_eq!(full["pending_invitations"]["oldest"], list[0]);
}

/// A member added by SCIM provisioning (never planned from team.yaml, but
/// a saved plan or an audit replay can hold one) reads the same in the
/// terminal, in Markdown and in JSON, and counts in the apply summary.
#[test]
fn an_added_member_renders_everywhere_and_counts_in_the_summary() {
    let mut plan = hostile_plan();
    plan.notes.clear();
    plan.pending.clear();
    plan.removals.planned = 0;
    plan.changes = vec![
        Change::UpdateSettings {
            from: Settings::default(),
            to: Settings {
                scim_provisioning: teamform_core::model::ScimProvisioning::Members,
                ..Settings::default()
            },
        },
        Change::AddMember {
            email: email("bob@acme.com"),
            name: Some("Bob".into()),
            roles: roles(&["viewer"]),
        },
    ];
    let text = plan_text(&plan, false);
    assert!(
        text.contains("  ~ settings: scim_provisioning invitations -> members"),
        "{text}"
    );
    let line = "add bob@acme.com as a member with viewer (provisioned, no invitation)";
    assert!(text.contains(&format!("  + {line}")), "{text}");
    let markdown = plan_markdown(&plan, "", "");
    assert!(
        markdown.contains("Members added by provisioning"),
        "{markdown}"
    );
    assert!(markdown.contains(line), "{markdown}");
    let json = plan_json(&plan);
    assert_eq!(json["changes"][1]["op"], "add_member");
    assert_eq!(json["changes"][1]["symbol"], "+");
    assert_eq!(json["changes"][1]["summary"], line);
    assert_eq!(
        teamform::progress::summary(&plan.changes),
        "Applied: 1 settings updated, 1 added as member(s)"
    );
}
