//! Renders plans and catalogs: Terraform-style terminal text (with or without
//! color), Markdown for pull-request comments, and JSON for machines. Pure:
//! every function takes data and returns a string or a JSON value. Nothing
//! here reads a clock, the environment or a terminal, or writes anywhere (the
//! caller decides whether color is wanted and where output goes); ages are
//! measured from the plan's own `generated_at`, so a rendering is
//! reproducible. Nothing here panics, whatever the plan or catalog holds, and
//! text a person wrote (display names, descriptions, labels) is quoted or
//! escaped so that it cannot forge terminal escapes or Markdown.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use teamform_core::catalog::Catalog;
use teamform_core::change::Change;
use teamform_core::model::{CustomRole, Roles, Settings, TeamId, Timestamp};
use teamform_core::plan::{Counts, FORMAT_VERSION, Plan};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";
const BOLD_RED: &str = "\x1b[1;31m";
const BOLD_GREEN: &str = "\x1b[1;32m";

/// What a change does, as its leading symbol says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Symbol {
    Add,
    Change,
    Remove,
    Transfer,
}

impl Symbol {
    // No wildcard arm: a new kind of change must choose its symbol.
    pub(crate) fn of(change: &Change) -> Symbol {
        match change {
            Change::CreateTeam { .. }
            | Change::CreateRole { .. }
            | Change::Invite { .. }
            | Change::Reinvite { .. }
            | Change::AddMember { .. } => Symbol::Add,
            Change::RenameTeam { .. }
            | Change::UpdateRole { .. }
            | Change::UpdateSettings { .. }
            | Change::ChangeRoles { .. }
            | Change::ChangeInvitationRoles { .. } => Symbol::Change,
            Change::RevokeInvitation { .. }
            | Change::RemoveMember { .. }
            | Change::DeleteRole { .. } => Symbol::Remove,
            Change::TransferOwnership { .. } => Symbol::Transfer,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Symbol::Add => "+",
            Symbol::Change => "~",
            Symbol::Remove => "-",
            Symbol::Transfer => "!",
        }
    }

    fn color(self) -> &'static str {
        match self {
            Symbol::Add => GREEN,
            Symbol::Change => YELLOW,
            Symbol::Remove => RED,
            Symbol::Transfer => MAGENTA,
        }
    }
}

/// How values a person wrote are made safe for the output at hand.
type Escape = fn(&str) -> String;

/// What describing a change needs besides the change.
#[derive(Clone, Copy)]
pub(crate) struct Context<'a> {
    /// Absent when a change is described on its own.
    team: Option<&'a TeamId>,
    now: Timestamp,
    escape: Escape,
}

impl<'a> Context<'a> {
    fn of(plan: &'a Plan, escape: Escape) -> Self {
        Self {
            team: Some(&plan.team),
            now: plan.generated_at,
            escape,
        }
    }

    fn text(plan: &'a Plan) -> Self {
        // Emails, role names and permissions cannot hold control characters;
        // free text is shown through `quote`, which escapes them.
        Self::of(plan, str::to_owned)
    }

    pub(crate) fn markdown(plan: &'a Plan) -> Self {
        Self::of(plan, md_escape)
    }

    fn e(&self, s: &str) -> String {
        (self.escape)(s)
    }

    /// Free text in double quotes, control characters escaped.
    fn quote(&self, s: &str) -> String {
        (self.escape)(&format!("{s:?}"))
    }

    fn roles(&self, roles: &Roles) -> String {
        if roles.is_empty() {
            return "no roles".to_owned();
        }
        let names: Vec<String> = roles.iter().map(|r| self.e(r.as_str())).collect();
        names.join(", ")
    }
}

/// One line of wording for a change, without its symbol: the same words in
/// the terminal, in Markdown and in JSON `summary`.
pub(crate) fn describe(change: &Change, cx: &Context<'_>) -> String {
    match change {
        Change::CreateTeam {
            display_name,
            owner,
        } => format!(
            "create team {}{} owned by {}",
            cx.team
                .map(|t| format!("{} ", cx.e(t.as_str())))
                .unwrap_or_default(),
            cx.quote(display_name),
            cx.e(owner.as_str())
        ),
        Change::RenameTeam { from, to } => {
            format!("rename team: {} -> {}", cx.quote(from), cx.quote(to))
        }
        Change::CreateRole { name, role } => {
            let CustomRole {
                description: _,
                permissions,
            } = role;
            let list: Vec<String> = permissions.iter().map(|p| cx.e(p.as_str())).collect();
            let list = if list.is_empty() {
                "no permissions".to_owned()
            } else {
                list.join(", ")
            };
            format!("create role {}: {list}", cx.e(name.as_str()))
        }
        Change::UpdateRole { name, from, to } => {
            format!(
                "update role {}: {}",
                cx.e(name.as_str()),
                role_delta(from, to, cx)
            )
        }
        Change::DeleteRole { name, role: _ } => format!("delete role {}", cx.e(name.as_str())),
        Change::UpdateSettings { from, to } => format!("settings: {}", settings_delta(from, to)),
        Change::Invite {
            email,
            name: _,
            roles,
        } => {
            format!("invite {} as {}", cx.e(email.as_str()), cx.roles(roles))
        }
        Change::Reinvite {
            email,
            name: _,
            roles,
            expired_at,
        } => format!(
            "re-invite {} as {} (link expired {})",
            cx.e(email.as_str()),
            cx.roles(roles),
            age(cx.now, *expired_at)
        ),
        Change::AddMember {
            email,
            name: _,
            roles,
        } => format!(
            "add {} as a member with {} (provisioned, no invitation)",
            cx.e(email.as_str()),
            cx.roles(roles)
        ),
        Change::ChangeInvitationRoles { email, from, to } => format!(
            "change invitation roles of {}: {} -> {}",
            cx.e(email.as_str()),
            cx.roles(from),
            cx.roles(to)
        ),
        Change::ChangeRoles { email, from, to } => {
            format!(
                "change roles of {}: {} -> {}",
                cx.e(email.as_str()),
                cx.roles(from),
                cx.roles(to)
            )
        }
        Change::RevokeInvitation {
            email,
            roles,
            created_at,
        } => format!(
            "revoke invitation of {} ({}, sent {})",
            cx.e(email.as_str()),
            cx.roles(roles),
            age(cx.now, *created_at)
        ),
        Change::RemoveMember { email, roles } => {
            format!(
                "remove member {} ({})",
                cx.e(email.as_str()),
                cx.roles(roles)
            )
        }
        Change::TransferOwnership { from, to } => format!(
            "transfer ownership {} -> {} (starts a two-step transfer: both must confirm)",
            cx.e(from.as_str()),
            cx.e(to.as_str())
        ),
    }
}

/// One change in the terminal's words, without symbol or color: for
/// messages about a single change, such as a failure during apply. Ages are
/// measured from `now` (the plan's `generated_at`).
pub fn change_line(change: &Change, now: Timestamp) -> String {
    let cx = Context {
        team: None,
        now,
        escape: str::to_owned,
    };
    describe(change, &cx)
}

/// Permissions added and removed, then a new description.
fn role_delta(from: &CustomRole, to: &CustomRole, cx: &Context<'_>) -> String {
    let CustomRole {
        description: from_description,
        permissions: from_permissions,
    } = from;
    let CustomRole {
        description: to_description,
        permissions: to_permissions,
    } = to;
    let mut parts: Vec<String> = Vec::new();
    for p in to_permissions.difference(from_permissions) {
        parts.push(format!("+ {}", cx.e(p.as_str())));
    }
    for p in from_permissions.difference(to_permissions) {
        parts.push(format!("- {}", cx.e(p.as_str())));
    }
    if from_description != to_description {
        parts.push(format!(
            "description {} -> {}",
            cx.quote(from_description),
            cx.quote(to_description)
        ));
    }
    if parts.is_empty() {
        "no visible difference".to_owned()
    } else {
        parts.join(", ")
    }
}

/// Only the fields that change.
fn settings_delta(from: &Settings, to: &Settings) -> String {
    // Destructured completely: a new setting fails to compile until shown here.
    let Settings {
        require_2fa,
        invitation_ttl_days,
        seat_limit,
        scim_provisioning,
    } = from;
    let Settings {
        require_2fa: to_2fa,
        invitation_ttl_days: to_ttl,
        seat_limit: to_seats,
        scim_provisioning: to_scim,
    } = to;
    let limit = |l: &Option<u32>| l.map_or_else(|| "none".to_owned(), |n| n.to_string());
    let mut parts = Vec::new();
    if require_2fa != to_2fa {
        parts.push(format!("require_2fa {require_2fa} -> {to_2fa}"));
    }
    if invitation_ttl_days != to_ttl {
        parts.push(format!(
            "invitation_ttl_days {invitation_ttl_days} -> {to_ttl}"
        ));
    }
    if seat_limit != to_seats {
        parts.push(format!(
            "seat_limit {} -> {}",
            limit(seat_limit),
            limit(to_seats)
        ));
    }
    if scim_provisioning != to_scim {
        parts.push(format!(
            "scim_provisioning {scim_provisioning} -> {to_scim}"
        ));
    }
    if parts.is_empty() {
        "no visible difference".to_owned()
    } else {
        parts.join(", ")
    }
}

/// How long before `now` something happened, in whole days.
pub(crate) fn age(now: Timestamp, then: Timestamp) -> String {
    let since = now.signed_duration_since(then);
    // Past times round down ("sent 2 days ago"), future ones up ("expires in
    // 15 days" for a link made a moment ago), so neither reads as shorter.
    let days = if since < chrono::TimeDelta::zero() {
        -(-since + chrono::TimeDelta::days(1) - chrono::TimeDelta::nanoseconds(1)).num_days()
    } else {
        since.num_days()
    };
    match days {
        0 => "today".to_owned(),
        1 => "1 day ago".to_owned(),
        -1 => "in 1 day".to_owned(),
        d if d > 1 => format!("{d} days ago"),
        d => format!("in {} days", d.unsigned_abs()),
    }
}

fn paint(color: bool, code: &str, s: &str) -> String {
    if color {
        format!("{code}{s}{RESET}")
    } else {
        s.to_owned()
    }
}

/// `Plan: 3 to add, 2 to change, 1 to remove, 1 ownership transfer.`
pub(crate) fn summary_line(counts: Counts) -> String {
    let Counts {
        add,
        change,
        remove,
        transfer,
    } = counts;
    let mut line = format!("Plan: {add} to add, {change} to change, {remove} to remove");
    match transfer {
        0 => {}
        1 => line.push_str(", 1 ownership transfer"),
        n => {
            let _ = write!(line, ", {n} ownership transfers");
        }
    }
    line.push('.');
    line
}

/// Terminal output: a header, the changes grouped by stage in apply order,
/// a summary line and, if the plan must not be applied, the reason. Escape
/// codes appear only with `color`.
pub fn plan_text(plan: &Plan, color: bool) -> String {
    let cx = Context::text(plan);
    let mut out = String::new();
    if plan.is_empty() {
        let line = format!("No changes. Team {} matches the configuration.", plan.team);
        out.push_str(&paint(color, BOLD_GREEN, &line));
        out.push('\n');
    } else {
        let target = match plan.base_version {
            0 => "new team".to_owned(),
            n => format!("live version {n}"),
        };
        let header = format!(
            "teamform will perform these changes to team {} ({target}):",
            plan.team
        );
        out.push_str(&paint(color, BOLD, &header));
        out.push('\n');
        let mut stage = None;
        for change in &plan.changes {
            if stage != Some(change.stage()) {
                out.push('\n');
                stage = Some(change.stage());
            }
            let symbol = Symbol::of(change);
            let _ = writeln!(
                out,
                "  {} {}",
                paint(color, symbol.color(), symbol.as_str()),
                describe(change, &cx)
            );
        }
        out.push('\n');
        out.push_str(&paint(color, BOLD, &summary_line(plan.counts())));
        out.push('\n');
    }
    if let Some(line) = pending_line(plan) {
        let _ = writeln!(out, "\n{line}");
    }
    for note in &plan.notes {
        let _ = writeln!(out, "\nNote: {}", clean(note));
    }
    if let Some(refusal) = plan.refusal() {
        let _ = writeln!(out, "\n{} {refusal}", paint(color, BOLD_RED, "Error:"));
    }
    out
}

/// One line on the invitations that wait and are not drift, with the age of
/// the oldest, so that a reviewer sees invitations nobody accepts.
pub(crate) fn pending_line(plan: &Plan) -> Option<String> {
    let oldest = plan.pending.first()?;
    let n = plan.pending.len();
    let what = if n == 1 {
        "invitation is"
    } else {
        "invitations are"
    };
    Some(format!(
        "{n} {what} pending (not drift); the oldest, to {}, was sent {} and expires {}.",
        clean(oldest.email.as_str()),
        age(plan.generated_at, oldest.created_at),
        age(plan.generated_at, oldest.expires_at),
    ))
}

/// A pull-request comment for one plan, in full (no size budget): see
/// [`crate::markdown`] for the layout and for comments under a budget.
pub fn plan_markdown(plan: &Plan, live_yaml: &str, desired_yaml: &str) -> String {
    let section = crate::markdown::Section {
        file: None,
        plan,
        live_yaml,
        desired_yaml,
    };
    crate::markdown::comment(&[section], &[], &crate::markdown::Options::default()).text
}

/// The longest run of backticks, so that a fence around `s` is longer.
pub(crate) fn longest_backtick_run(s: &str) -> usize {
    let (mut longest, mut run) = (0usize, 0usize);
    for c in s.chars() {
        run = if c == '`' { run.saturating_add(1) } else { 0 };
        longest = longest.max(run);
    }
    longest
}

/// Backslash-escapes what Markdown or inline HTML would interpret.
pub(crate) fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '~' | '&' | '#' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Control characters shown as escapes, so labels cannot drive the terminal.
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn object<'k>(pairs: impl IntoIterator<Item = (&'k str, Value)>) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The plan for machines: each change as core serializes it, plus its
/// `symbol` and its `summary` in the terminal's words. Pending invitations
/// as a count and the oldest; see [`plan_json_with`] for all of them.
pub fn plan_json(plan: &Plan) -> Value {
    plan_json_with(plan, false)
}

/// [`plan_json`], with every pending invitation listed when `show_pending`.
pub fn plan_json_with(plan: &Plan, show_pending: bool) -> Value {
    let cx = Context::text(plan);
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|change| {
            let mut fields = match serde_json::to_value(change) {
                Ok(Value::Object(map)) => map,
                _ => Map::from_iter([("op".to_owned(), Value::from(change.action()))]),
            };
            fields.insert(
                "symbol".to_owned(),
                Value::from(Symbol::of(change).as_str()),
            );
            fields.insert("summary".to_owned(), Value::from(describe(change, &cx)));
            Value::Object(fields)
        })
        .collect();
    let Counts {
        add,
        change,
        remove,
        transfer,
    } = plan.counts();
    object([
        ("format_version", Value::from(FORMAT_VERSION)),
        ("team", Value::from(plan.team.as_str())),
        ("base_version", Value::from(plan.base_version)),
        (
            "generated_at",
            serde_json::to_value(plan.generated_at)
                .unwrap_or_else(|_| Value::from(plan.generated_at.to_rfc3339())),
        ),
        ("changes", Value::Array(changes)),
        (
            "counts",
            object([
                ("add", Value::from(add)),
                ("change", Value::from(change)),
                ("remove", Value::from(remove)),
                ("transfer", Value::from(transfer)),
            ]),
        ),
        (
            "removals",
            serde_json::to_value(&plan.removals).unwrap_or(Value::Null),
        ),
        ("refused", plan.refusal().map_or(Value::Null, Value::from)),
        (
            "notes",
            Value::Array(plan.notes.iter().map(|n| Value::from(n.as_str())).collect()),
        ),
        ("pending_invitations", pending_json(plan, show_pending)),
    ])
}

/// Pending invitations: their count and the oldest (a big team can have
/// thousands), and with `all` every one of them under `list`, oldest first.
fn pending_json(plan: &Plan, all: bool) -> Value {
    let one = |p: &teamform_core::plan::PendingInvitation| {
        object([
            ("email", Value::from(p.email.as_str())),
            ("created_at", Value::from(p.created_at.to_rfc3339())),
            ("expires_at", Value::from(p.expires_at.to_rfc3339())),
            (
                "age_days",
                Value::from(
                    plan.generated_at
                        .signed_duration_since(p.created_at)
                        .num_days(),
                ),
            ),
        ])
    };
    let mut fields = vec![
        ("count", Value::from(plan.pending.len())),
        ("oldest", plan.pending.first().map_or(Value::Null, one)),
    ];
    if all {
        fields.push(("list", Value::Array(plan.pending.iter().map(one).collect())));
    }
    object(fields)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The roles x permissions matrix as an aligned table: one row per
/// permission (label, id), one column per role, `✓` where the role holds it;
/// then the roles with their descriptions.
pub fn catalog_text(catalog: &Catalog, color: bool) -> String {
    let mut out = String::new();
    let title = if catalog.description.is_empty() {
        format!("Catalog {}", clean(&catalog.name))
    } else {
        format!(
            "Catalog {}: {}",
            clean(&catalog.name),
            clean(&catalog.description)
        )
    };
    out.push_str(&paint(color, BOLD, &title));
    let _ = write!(
        out,
        "\nSeveral roles per member: {}. Custom roles: {}. A previous owner becomes {}.\n\n",
        yes_no(catalog.multiple_roles),
        yes_no(catalog.custom_roles),
        catalog.previous_owner_role
    );

    // Each cell as (plain text, as shown): widths come from the plain text.
    let header: Vec<(String, String)> = ["Permission", "Id"]
        .into_iter()
        .map(str::to_owned)
        .chain(catalog.roles.iter().map(|r| r.name.to_string()))
        .map(|s| (s.clone(), paint(color, BOLD, &s)))
        .collect();
    let rows: Vec<Vec<(String, String)>> = catalog
        .matrix()
        .into_iter()
        .map(|(permission, held)| {
            let label = clean(&permission.label);
            let mut row = vec![
                (label.clone(), label),
                (permission.id.to_string(), permission.id.to_string()),
            ];
            row.extend(held.into_iter().map(|yes| {
                if yes {
                    ("✓".to_owned(), paint(color, GREEN, "✓"))
                } else {
                    ("-".to_owned(), paint(color, DIM, "-"))
                }
            }));
            row
        })
        .collect();
    let mut widths: Vec<usize> = header
        .iter()
        .map(|(plain, _)| plain.chars().count())
        .collect();
    for row in &rows {
        for (width, (plain, _)) in widths.iter_mut().zip(row) {
            *width = (*width).max(plain.chars().count());
        }
    }
    let rule: Vec<(String, String)> = widths
        .iter()
        .map(|w| ("-".repeat(*w), "-".repeat(*w)))
        .collect();
    for row in std::iter::once(&header)
        .chain(std::iter::once(&rule))
        .chain(rows.iter())
    {
        let mut line = String::new();
        let last = row.len().saturating_sub(1);
        for (i, ((plain, shown), width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(shown);
            if i < last {
                line.push_str(&" ".repeat(width.saturating_sub(plain.chars().count())));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }

    out.push_str("\nRoles:\n");
    let name_width = catalog
        .roles
        .iter()
        .map(|r| r.name.as_str().chars().count())
        .max()
        .unwrap_or(0);
    for role in &catalog.roles {
        let description = clean(&role.description);
        let line = format!("  {:<name_width$}  {description}", role.name.as_str());
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The roles x permissions matrix as a Markdown table.
pub fn catalog_markdown(catalog: &Catalog) -> String {
    let mut out = format!("### Catalog {}\n\n", md_escape(&catalog.name));
    if !catalog.description.is_empty() {
        let _ = write!(out, "{}\n\n", md_escape(&catalog.description));
    }
    let _ = write!(
        out,
        "Several roles per member: {}. Custom roles: {}. A previous owner becomes `{}`.\n\n",
        yes_no(catalog.multiple_roles),
        yes_no(catalog.custom_roles),
        catalog.previous_owner_role
    );
    out.push_str("| Permission | Id |");
    for role in &catalog.roles {
        let _ = write!(out, " {} |", md_escape(role.name.as_str()));
    }
    out.push_str("\n| --- | --- |");
    for _ in &catalog.roles {
        out.push_str(" :---: |");
    }
    out.push('\n');
    for (permission, held) in catalog.matrix() {
        let _ = write!(
            out,
            "| {} | `{}` |",
            md_escape(&permission.label),
            permission.id
        );
        for yes in held {
            out.push_str(if yes { " ✓ |" } else { " - |" });
        }
        out.push('\n');
    }
    out.push_str("\n| Role | Description |\n| --- | --- |\n");
    for role in &catalog.roles {
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            role.name,
            md_escape(&role.description)
        );
    }
    out
}

/// The catalog for machines: its flags, its roles, and for each permission
/// which roles hold it.
pub fn catalog_json(catalog: &Catalog) -> Value {
    let roles: Vec<Value> = catalog
        .roles
        .iter()
        .map(|r| {
            object([
                ("name", Value::from(r.name.as_str())),
                ("description", Value::from(r.description.as_str())),
            ])
        })
        .collect();
    let permissions: Vec<Value> = catalog
        .matrix()
        .into_iter()
        .map(|(permission, held)| {
            let by_role: Map<String, Value> = catalog
                .roles
                .iter()
                .zip(held)
                .map(|(r, yes)| (r.name.to_string(), Value::Bool(yes)))
                .collect();
            object([
                ("id", Value::from(permission.id.as_str())),
                ("label", Value::from(permission.label.as_str())),
                ("service", Value::Bool(permission.service)),
                ("roles", Value::Object(by_role)),
            ])
        })
        .collect();
    object([
        ("name", Value::from(catalog.name.as_str())),
        ("description", Value::from(catalog.description.as_str())),
        ("multiple_roles", Value::Bool(catalog.multiple_roles)),
        ("custom_roles", Value::Bool(catalog.custom_roles)),
        (
            "previous_owner_role",
            Value::from(catalog.previous_owner_role.as_str()),
        ),
        ("roles", Value::Array(roles)),
        ("permissions", Value::Array(permissions)),
    ])
}
