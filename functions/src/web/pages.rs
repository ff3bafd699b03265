//! The HTML of the pages. maud escapes every value; forms post with the
//! session's CSRF token. Accessible by construction: every control has a
//! label, headings nest, tables have header cells, focus is visible, colours
//! meet WCAG AA contrast, and one column fits a phone-sized screen.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use teamform_core::TeamId;
use teamform_core::catalog::PermissionDef;
use teamform_core::model::PendingTransfer;

use super::session::Session;
use crate::auth::credentials::ApiKeyView;
use crate::auth::oidc::form_encode;
use crate::http::error::ApiError;
use crate::service::lifecycle::{LinkKind, LinkPreview, Membership};
use crate::service::resources::RolesView;
use crate::service::{MemberView, ServiceError};

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8; --accent: #0b5cad; --bad: #a11b1b; --good: #1d6b2f; }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, sans-serif; color: var(--ink); margin: 0; background: #fff; }
header, main { max-width: 72rem; margin: 0 auto; padding: 0.75rem 1rem; }
header { display: flex; flex-wrap: wrap; gap: 0.5rem 1rem; align-items: center; justify-content: space-between; border-bottom: 1px solid var(--line); }
a { color: var(--accent); }
a:focus, button:focus, input:focus, select:focus, textarea:focus, summary:focus { outline: 3px solid #f0a500; outline-offset: 2px; }
button { font: inherit; padding: 0.35rem 0.8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 4px; cursor: pointer; min-height: 2.25rem; }
button.secondary { background: #fff; color: var(--accent); }
button.danger { background: var(--bad); border-color: var(--bad); }
input, select, textarea { font: inherit; padding: 0.3rem; border: 1px solid #767676; border-radius: 4px; max-width: 100%; }
textarea { width: 100%; min-height: 4.5rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.4rem; border-bottom: 1px solid var(--line); vertical-align: top; }
.scroll { overflow-x: auto; }
.notice { padding: 0.5rem 0.75rem; border-left: 4px solid var(--good); background: #eef7f0; margin: 0.5rem 0; }
.notice.error { border-color: var(--bad); background: #fbeeee; }
.muted { color: var(--muted); }
.inline { display: inline; }
fieldset { border: 1px solid var(--line); border-radius: 4px; margin: 0.5rem 0; }
.roles label { display: inline-block; margin-right: 0.75rem; }
code.secret { word-break: break-all; background: #f3f3f3; padding: 0.2rem; }
@media (max-width: 40rem) {
  table.members thead { display: none; }
  table.members tr { display: block; border-bottom: 2px solid var(--line); padding: 0.4rem 0; }
  table.members td { display: block; border: 0; padding: 0.15rem 0; }
  table.members td[data-label]::before { content: attr(data-label) ": "; font-weight: 600; }
}
"#;

/// Something the page just did, or failed to do.
pub struct Notice {
    pub text: String,
    pub error: Option<&'static str>,
    /// The worst status among the notices is the page's status.
    pub status: Option<StatusCode>,
    /// A secret shown once, with a copy button, and its label.
    pub secret: Option<String>,
    pub secret_label: &'static str,
}

impl Notice {
    pub fn ok(text: String) -> Self {
        Self {
            text,
            error: None,
            status: None,
            secret: None,
            secret_label: "",
        }
    }

    pub fn secret(text: String, label: &'static str, secret: String) -> Self {
        Self {
            secret: Some(secret),
            secret_label: label,
            ..Self::ok(text)
        }
    }

    pub fn error(e: ServiceError) -> Self {
        let api = ApiError::from(e);
        Self {
            text: api.detail,
            error: Some(api.code),
            status: Some(api.status),
            secret: None,
            secret_label: "",
        }
    }

    /// An error about one of several addresses.
    pub fn error_about(address: &str, e: ServiceError) -> Self {
        let mut n = Self::error(e);
        n.text = format!("{address}: {}", n.text);
        n
    }
}

/// What the team page shows.
pub struct TeamView {
    pub team: TeamId,
    pub name: String,
    pub owner: String,
    pub transfer: Option<PendingTransfer>,
    pub is_owner: bool,
    /// The permissions the viewer holds here.
    pub held: BTreeSet<String>,
    pub members: Vec<MemberView>,
    pub next: Option<String>,
    pub roles: RolesView,
    pub permissions: Vec<PermissionDef>,
    pub keys: Option<Vec<ApiKeyView>>,
    pub csrf: String,
    pub now: teamform_core::Timestamp,
}

/// How long ago, in words a person reads at a glance.
fn age(now: teamform_core::Timestamp, then: teamform_core::Timestamp) -> String {
    let minutes = (now - then).num_minutes().max(0);
    match minutes {
        0 => "just now".into(),
        1..=59 => format!("{minutes} min ago"),
        60..=1439 => format!("{} h ago", minutes / 60),
        _ => format!("{} days ago", minutes / 1440),
    }
}

impl TeamView {
    fn may(&self, permission: &str) -> bool {
        self.held.contains(permission)
    }

    fn role_names(&self) -> Vec<String> {
        self.roles
            .system
            .iter()
            .map(|r| r.name.to_string())
            .filter(|n| n != "owner")
            .chain(self.roles.custom.keys().map(|n| n.to_string()))
            .collect()
    }

    fn action(&self, what: &str) -> String {
        format!("/ui/teams/{}/{what}", self.team)
    }
}

fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · teamform" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    a href="/" { strong { "teamform" } }
                    @if let Some(s) = session {
                        form.inline method="post" action="/signout" {
                            span.muted { "Signed in as " (s.email()) " " }
                            input type="hidden" name="csrf" value=(s.csrf());
                            button.secondary type="submit" { "Sign out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page that says one thing (an error, a dead link).
pub fn message(session: Option<&Session>, title: &str, detail: &str, code: &str) -> Markup {
    layout(
        title,
        session,
        html! {
            h1 { (title) }
            p { (detail) }
            p.muted { "Code: " code { (code) } }
            p { a href="/" { "Go to your teams" } }
        },
    )
}

pub fn home(session: Option<&Session>, teams: &[Membership], signin: bool) -> Markup {
    layout(
        "Your teams",
        session,
        html! {
            @match session {
                Some(_) => {
                    h1 { "Your teams" }
                    @if teams.is_empty() {
                        p { "You belong to no team yet. An invitation link brings you into one." }
                    } @else {
                        ul {
                            @for t in teams {
                                li { a href={ "/ui/teams/" (t.team) } { (t.team) } }
                            }
                        }
                    }
                }
                None => {
                    h1 { "teamform" }
                    p { "Who belongs to a team, and what they may do." }
                    @if signin {
                        p { a href="/signin" { "Sign in" } }
                    } @else {
                        p { "Sign-in is not configured on this host." }
                    }
                }
            }
        },
    )
}

fn roles_text(roles: &teamform_core::model::Roles) -> String {
    roles
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The page an emailed link opens.
pub fn link(session: Option<&Session>, p: &LinkPreview, token: &str, here: &str) -> Markup {
    let (title, action, button) = match p.kind {
        LinkKind::Invitation => (
            format!("Join {}", p.team_name),
            "/ui/invitations/accept",
            format!("Accept and join {}", p.team_name),
        ),
        LinkKind::TransferConfirm => (
            format!("Confirm passing {} on", p.team_name),
            "/ui/ownership-transfer/confirm",
            "Confirm the transfer".to_owned(),
        ),
        LinkKind::TransferAccept => (
            format!("Become the owner of {}", p.team_name),
            "/ui/ownership-transfer/accept",
            format!("Accept ownership of {}", p.team_name),
        ),
    };
    let signed_in_as = session.and_then(|s| match &s.principal {
        crate::auth::Principal::Person { email, .. } => Some(email.clone()),
        _ => None,
    });
    html! {
        (layout(&title, session, html! {
            h1 { (title) }
            dl {
                dt { "Team" } dd { (p.team_name) " (" code { (p.team) } ")" }
                @match p.kind {
                    LinkKind::Invitation => {
                        dt { "Invited" } dd { (p.email) }
                        @if let Some(by) = &p.invited_by { dt { "By" } dd { (by) } }
                        @if let Some(roles) = &p.roles { dt { "Roles" } dd { (roles_text(roles)) } }
                    }
                    _ => {
                        @if let Some(from) = &p.from { dt { "From" } dd { (from) } }
                        dt { "For" } dd { (p.email) }
                    }
                }
                dt { "Valid until" } dd { time datetime=(p.expires_at.to_rfc3339()) { (p.expires_at.format("%Y-%m-%d %H:%M UTC")) } }
            }
            @match &signed_in_as {
                None => {
                    p { "Sign in as " strong { (p.email) } " to continue." }
                    p { a href={ "/signin?return_to=" (form_encode(here)) } { "Sign in" } }
                }
                Some(me) if *me != p.email => {
                    div.notice.error role="alert" {
                        p { "This link is for " strong { (p.email) } ", and you are signed in as " strong { (me) } "." }
                        p { "Sign out, then sign in as " (p.email) ". The link still works for them." }
                    }
                }
                Some(_) => {
                    form method="post" action=(action) {
                        input type="hidden" name="token" value=(token);
                        input type="hidden" name="csrf" value=(session.map(Session::csrf).unwrap_or_default());
                        button type="submit" { (button) }
                    }
                }
            }
        }))
    }
}

fn csrf(view: &TeamView) -> Markup {
    html! { input type="hidden" name="csrf" value=(view.csrf); }
}

fn role_boxes(view: &TeamView, id: &str, checked: &BTreeSet<String>) -> Markup {
    html! {
        fieldset.roles {
            legend { "Roles" }
            @for name in view.role_names() {
                @let box_id = format!("{id}-{name}");
                label for=(box_id) {
                    input type="checkbox" id=(box_id) name="roles" value=(name) checked[checked.contains(&name)];
                    " " (name)
                }
            }
        }
    }
}

/// The team page.
pub fn team(session: &Session, view: &TeamView, notices: &[Notice]) -> Markup {
    let title = format!("{} · members", view.name);
    layout(
        &title,
        Some(session),
        html! {
            h1 { (view.name) }
            p.muted { "Team " code { (view.team) } " · owner " (view.owner) }
            div aria-live="polite" {
                @for n in notices {
                    div.notice.error[n.error.is_some()] role=[n.error.map(|_| "alert")] {
                        (n.text)
                        @if let Some(code) = n.error { " " span.muted { "(" code { (code) } ")" } }
                        @if let Some(secret) = &n.secret {
                            p {
                                label for="new-secret" { (n.secret_label) } " "
                                input id="new-secret" readonly value=(secret) size="40";
                                " "
                                button.secondary type="button" data-copy="new-secret" { "Copy" }
                            }
                        }
                    }
                }
            }
            @if let Some(t) = &view.transfer {
                p.notice { "Ownership is passing from " (t.from) " to " (t.to)
                    @if t.owner_confirmed { " (confirmed by the owner; waiting for " (t.to) ")" }
                    @else { " (waiting for the owner to confirm through the emailed link)" }
                    " until " (t.expires_at.format("%Y-%m-%d %H:%M UTC")) "." }
            }
            (members(view))
            @if view.may("team.members.invite") { (invite_form(view)) }
            (roles_matrix(view))
            @if let Some(keys) = &view.keys { (api_keys(view, keys)) }
            section aria-labelledby="you" {
                h2 #you { "You" }
                @if view.is_owner {
                    form method="post" action=(view.action("transfer")) {
                        (csrf(view))
                        label for="transfer-to" { "Pass ownership to (a member's email)" } " "
                        input id="transfer-to" type="email" name="email" required;
                        " "
                        button.secondary type="submit" { "Start transfer" }
                    }
                } @else {
                    form method="post" action=(view.action("leave")) {
                        (csrf(view))
                        button.danger type="submit" { "Leave " (view.name) }
                    }
                }
            }
            script { (PreEscaped(COPY_SCRIPT)) }
        },
    )
}

const COPY_SCRIPT: &str = r#"
document.querySelectorAll('button[data-copy]').forEach(function (b) {
  b.addEventListener('click', function () {
    var field = document.getElementById(b.getAttribute('data-copy'));
    field.select();
    if (navigator.clipboard) { navigator.clipboard.writeText(field.value); }
    b.textContent = 'Copied';
  });
});
"#;

fn members(view: &TeamView) -> Markup {
    let signin_column = view.members.iter().any(|m| m.signin_method.is_some());
    let may_roles = view.may("team.members.roles");
    let may_remove = view.may("team.members.remove");
    let may_invite = view.may("team.members.invite");
    html! {
        section aria-labelledby="members" {
            h2 #members { "Members" }
            @if !view.may("team.members.read") {
                p { "You may not see this team's members." }
            } @else {
                div.scroll {
                    table.members {
                        caption.muted { (view.members.len()) " shown" }
                        thead { tr {
                            th scope="col" { "Person" }
                            th scope="col" { "Roles" }
                            th scope="col" { "Status" }
                            @if signin_column { th scope="col" { "Sign-in" } }
                            th scope="col" { "Actions" }
                        } }
                        tbody {
                            @for (i, m) in view.members.iter().enumerate() {
                                @let pending = m.status == "pending";
                                @let is_owner = m.email.eq_ignore_ascii_case(&view.owner);
                                tr {
                                    td data-label="Person" {
                                        (m.email)
                                        @if let Some(name) = &m.name { br; span.muted { (name) } }
                                    }
                                    td data-label="Roles" { (roles_text(&m.roles)) }
                                    td data-label="Status" {
                                        @if pending {
                                            @if m.expired == Some(true) { "Invitation expired" } @else { "Invited" }
                                            @if let Some(sent) = m.invited_at {
                                                br; span.muted { "sent " (age(view.now, sent)) }
                                            }
                                            @if let Some(until) = m.expires_at {
                                                br; span.muted { "until " (until.format("%Y-%m-%d")) }
                                            }
                                        } @else { "Joined" }
                                    }
                                    @if signin_column {
                                        td data-label="Sign-in" { (m.signin_method.as_deref().unwrap_or("")) }
                                    }
                                    td data-label="Actions" {
                                        @if !is_owner {
                                            @if may_roles {
                                                details {
                                                    summary { "Change roles" }
                                                    form method="post" action=(view.action("roles")) {
                                                        (csrf(view))
                                                        input type="hidden" name="email" value=(m.email);
                                                        @let current: BTreeSet<String> = m.roles.iter().map(ToString::to_string).collect();
                                                        (role_boxes(view, &format!("m{i}"), &current))
                                                        button type="submit" { "Save roles of " (m.email) }
                                                    }
                                                }
                                            }
                                            @if pending && may_invite {
                                                form.inline method="post" action=(view.action("resend")) {
                                                    (csrf(view))
                                                    input type="hidden" name="email" value=(m.email);
                                                    button.secondary type="submit" aria-label={ "Resend the invitation of " (m.email) } { "Resend" }
                                                }
                                                " "
                                                form.inline method="post" action=(view.action("revoke")) {
                                                    (csrf(view))
                                                    input type="hidden" name="email" value=(m.email);
                                                    button.danger type="submit" aria-label={ "Cancel the invitation of " (m.email) } { "Cancel" }
                                                }
                                            }
                                            @if !pending && may_remove {
                                                form.inline method="post" action=(view.action("remove")) {
                                                    (csrf(view))
                                                    input type="hidden" name="email" value=(m.email);
                                                    button.danger type="submit" aria-label={ "Remove " (m.email) } { "Remove" }
                                                }
                                            }
                                        } @else { span.muted { "Owner" } }
                                    }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = &view.next {
                    p { a href={ "/ui/teams/" (view.team) "?after=" (form_encode(next)) } { "More members" } }
                }
            }
        }
    }
}

fn invite_form(view: &TeamView) -> Markup {
    html! {
        section aria-labelledby="invite" {
            h2 #invite { "Invite people" }
            form method="post" action=(view.action("invite")) {
                (csrf(view))
                label for="invite-emails" { "Email addresses (one per line, or separated by commas)" }
                textarea id="invite-emails" name="emails" required {}
                (role_boxes(view, "invite", &BTreeSet::new()))
                button type="submit" { "Send invitations" }
            }
        }
    }
}

fn roles_matrix(view: &TeamView) -> Markup {
    let system: Vec<(String, BTreeSet<String>)> = view
        .roles
        .system
        .iter()
        .map(|r| {
            let all = r.name.as_str() == "owner";
            let set = if all {
                view.permissions.iter().map(|p| p.id.to_string()).collect()
            } else {
                r.permissions.iter().map(ToString::to_string).collect()
            };
            (r.name.to_string(), set)
        })
        .chain(view.roles.custom.iter().map(|(name, role)| {
            (
                name.to_string(),
                role.permissions.iter().map(ToString::to_string).collect(),
            )
        }))
        .collect();
    html! {
        section aria-labelledby="matrix" {
            h2 #matrix { "Roles and what they may do" }
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Permission" }
                        @for (name, _) in &system { th scope="col" { (name) } }
                    } }
                    tbody {
                        @for p in &view.permissions {
                            tr {
                                th scope="row" { (p.label) br; code.muted { (p.id) } }
                                @for (name, set) in &system {
                                    td {
                                        @if set.contains(p.id.as_str()) {
                                            span aria-label={ (name) " may" } { "✓" }
                                        } @else {
                                            span.muted aria-label={ (name) " may not" } { "–" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn api_keys(view: &TeamView, keys: &[ApiKeyView]) -> Markup {
    html! {
        section aria-labelledby="keys" {
            h2 #keys { "API keys" }
            @if keys.is_empty() { p { "No API keys." } } @else {
                div.scroll { table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Roles" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Actions" } } }
                    tbody {
                        @for k in keys {
                            tr {
                                td { (k.name) }
                                td { (roles_text(&k.roles)) }
                                td { (k.created_at.format("%Y-%m-%d")) " by " (k.created_by) }
                                td { @if let Some(t) = k.last_used_at { (t.format("%Y-%m-%d %H:%M")) } @else { "never" } }
                                td {
                                    form.inline method="post" action=(view.action("revoke-key")) {
                                        (csrf(view))
                                        input type="hidden" name="id" value=(k.id);
                                        button.danger type="submit" aria-label={ "Revoke the API key " (k.name) } { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                } }
            }
            form method="post" action=(view.action("api-key")) {
                (csrf(view))
                label for="key-name" { "New key's name" } " "
                input id="key-name" name="name" required maxlength="200";
                (role_boxes(view, "key", &BTreeSet::new()))
                button type="submit" { "Create API key" }
            }
        }
    }
}
