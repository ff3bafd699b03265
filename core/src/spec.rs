//! `team.yaml`: the desired state of one team, read with every error located
//! (`file:line:col`) and reported at once, and written back in a canonical
//! form (for `export` and for the diff shown in pull requests).
//!
//! Sections that are absent are not managed: without `roles:` the team's
//! custom roles are left alone, without `settings:` its settings are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, Permission, RoleName};
use crate::change::{MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, check_text};
use crate::model::{CustomRole, Email, Roles, ScimProvisioning, Settings, TeamId, TeamState};
use crate::plan::RemovalLimit;
use crate::yaml::{self, Collector, Data, Diagnostics, Loc, Node};

pub const SPEC_VERSION: i64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSpec {
    pub email: Email,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub roles: Roles,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unmanaged {
    /// Members and invitations not in team.yaml are removed.
    #[default]
    Remove,
    /// Members and invitations not in team.yaml are left alone.
    Ignore,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Policy {
    pub unmanaged: Unmanaged,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_removals: Option<RemovalLimit>,
}

/// The desired state of a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamSpec {
    pub team: TeamId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub owner: Email,
    /// `None`: settings are not managed by this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<Settings>,
    /// `None`: custom roles are not managed by this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<BTreeMap<RoleName, CustomRole>>,
    /// Everyone but the owner, keyed by normalized email.
    pub members: BTreeMap<Email, MemberSpec>,
    #[serde(default)]
    pub policy: Policy,
}

/// The fields the reader accepts, section by section: its allow-lists
/// (anything else is an unknown field), and what `teamform schema` builds
/// team.yaml's JSON Schema from, so the two cannot disagree.
pub mod fields {
    pub const TOP: &[&str] = &[
        "version",
        "catalog",
        "team",
        "display_name",
        "owner",
        "settings",
        "roles",
        "members",
        "policy",
    ];
    pub const SETTINGS: &[&str] = &[
        "require_2fa",
        "invitation_ttl_days",
        "seat_limit",
        "scim_provisioning",
    ];
    /// One custom role under `roles:`.
    pub const ROLE: &[&str] = &["description", "permissions"];
    /// One item of `members:`.
    pub const MEMBER: &[&str] = &["email", "name", "roles"];
    pub const POLICY: &[&str] = &["unmanaged", "max_removals"];
}

/// The catalog a file says it is written for (`catalog: digitalocean`), read
/// before the full parse because roles are checked against it. `None` when
/// absent or unreadable (the full parse reports the problem).
pub fn declared_catalog(source: &str) -> Option<String> {
    // Looking for an absent key reads the whole file (it may come last): a
    // file without the word anywhere, nor an escape that could spell it,
    // has no such key, and a large team file is spared a second parse.
    if !source.contains("catalog") && !source.contains('\\') {
        return None;
    }
    yaml::top_level_string(source, "catalog")
}

impl TeamSpec {
    /// Reads team.yaml against a catalog. Reports every error at once.
    ///
    /// The `members` list is converted item by item as it is read, never held
    /// whole as a YAML tree, when `owner` and `roles` (which members are
    /// checked against) come before it, as in the canonical form; a file
    /// listing them after `members` is read a second time, as a whole tree.
    pub fn parse(file: &str, source: &str, catalog: &Catalog) -> Result<TeamSpec, Diagnostics> {
        let mut c = Collector::new(file);
        let mut stream = MemberStream::new(catalog);
        let root = yaml::parse_streaming(file, source, Some("members"), &mut |before, item| {
            stream.item(before, &item, &mut c)
        })?;
        if !stream.started {
            return Self::convert(&root, catalog, c, None);
        }
        let keys: Vec<&str> = match &root.data {
            Data::Map(entries) => entries
                .iter()
                .filter_map(|(k, _)| yaml::str_of(k))
                .collect(),
            _ => Vec::new(),
        };
        let at = |key: &str| keys.iter().position(|k| *k == key);
        let late = |key: &str| at(key).is_some_and(|i| at("members").is_some_and(|m| i > m));
        if late("owner") || late("roles") {
            let root = yaml::parse(file, source)?;
            return Self::convert(&root, catalog, Collector::new(file), None);
        }
        Self::convert(&root, catalog, c, Some(stream))
    }

    /// Converts the tree of a whole file; `streamed` holds what was
    /// converted while reading (then `members` is an empty list in the tree).
    fn convert(
        root: &Node,
        catalog: &Catalog,
        mut c: Collector,
        streamed: Option<MemberStream<'_>>,
    ) -> Result<TeamSpec, Diagnostics> {
        let root_loc = yaml::loc_of(root);
        let top = yaml::mapping(root, "team.yaml", Some(fields::TOP), &mut c);
        let field = |name: &str| {
            top.iter()
                .find(|(k, ..)| *k == name)
                .map(|(_, loc, v)| (*loc, *v))
        };

        match field("version") {
            None => c.error(root_loc, "missing field `version` (use `version: 1`)"),
            Some((_, v)) => {
                if let Some(n) = yaml::integer(v, "`version`", &mut c)
                    && n != SPEC_VERSION
                {
                    c.error(
                        yaml::loc_of(v),
                        format!("unsupported version {n}; this teamform reads version 1"),
                    );
                }
            }
        }
        if let Some((_, v)) = field("catalog")
            && let Some(name) = yaml::string(v, "`catalog`", &mut c)
            && name != catalog.name
        {
            c.error(
                yaml::loc_of(v),
                format!(
                    "this file is written for the `{name}` catalog, but the service uses `{}`",
                    catalog.name
                ),
            );
        }
        let team = match field("team") {
            None => {
                c.error(root_loc, "missing field `team` (the team id)");
                None
            }
            Some((_, v)) => {
                yaml::string(v, "`team`", &mut c).and_then(|s| match TeamId::parse(&s) {
                    Ok(t) => Some(t),
                    Err(e) => {
                        c.error(yaml::loc_of(v), e.to_string());
                        None
                    }
                })
            }
        };
        let display_name = field("display_name").and_then(|(_, v)| {
            let s = yaml::string(v, "`display_name`", &mut c)?;
            if let Err(e) = check_text("`display_name`", &s, MAX_NAME_CHARS) {
                c.error(yaml::loc_of(v), e.to_string());
            }
            Some(s)
        });
        let (owner, roles, members) = match streamed {
            Some(s) => {
                if field("owner").is_none() {
                    c.error(root_loc, "missing field `owner` (exactly one email)");
                }
                (s.owner, s.roles, s.members.members)
            }
            None => {
                let owner = match field("owner") {
                    None => {
                        c.error(root_loc, "missing field `owner` (exactly one email)");
                        None
                    }
                    Some((_, v)) => parse_email(v, "`owner`", &mut c),
                };
                let roles = field("roles").map(|(_, v)| parse_roles(v, catalog, &mut c));
                let no_roles = BTreeMap::new();
                let custom = roles.as_ref().unwrap_or(&no_roles);
                let mut members = Members::default();
                if let Some((_, v)) = field("members")
                    && !yaml::is_null(v)
                {
                    for entry in yaml::sequence(v, "`members`", &mut c) {
                        members.entry(entry, owner.as_ref(), catalog, custom, &mut c);
                    }
                }
                (owner, roles, members.members)
            }
        };
        let settings = field("settings").map(|(_, v)| parse_settings(v, &mut c));
        let policy = field("policy")
            .map(|(_, v)| parse_policy(v, &mut c))
            .unwrap_or_default();

        match (team, owner) {
            (Some(team), Some(owner)) if c.is_empty() => c.finish(TeamSpec {
                team,
                display_name,
                owner,
                settings,
                roles,
                members,
                policy,
            }),
            _ => Err(c.finish(()).err().unwrap_or(Diagnostics(Vec::new()))),
        }
    }

    /// The live state as a spec: what `export` writes and what the plan diff
    /// shows on its "live" side. Pending invitations count as members.
    pub fn from_state(state: &TeamState) -> TeamSpec {
        let mut members = BTreeMap::new();
        for m in state.members.values().filter(|m| m.email != state.owner) {
            members.insert(
                m.email.clone(),
                MemberSpec {
                    email: m.email.clone(),
                    name: m.name.clone(),
                    roles: m.roles.clone(),
                },
            );
        }
        for i in state.invitations.values() {
            members.insert(
                i.email.clone(),
                MemberSpec {
                    email: i.email.clone(),
                    name: i.name.clone(),
                    roles: i.roles.clone(),
                },
            );
        }
        TeamSpec {
            team: state.team.clone(),
            display_name: Some(state.display_name.clone()),
            owner: state.owner.clone(),
            settings: Some(state.settings.clone()),
            roles: Some(state.roles.clone()),
            members,
            policy: Policy::default(),
        }
    }

    /// Canonical team.yaml: fixed field order, members sorted by email,
    /// roles sorted. Reads back to an equal spec.
    pub fn to_yaml(&self) -> String {
        let mut out = String::new();
        let s = yaml::scalar;
        let _ = writeln!(out, "version: {SPEC_VERSION}");
        let _ = writeln!(out, "team: {}", s(self.team.as_str()));
        if let Some(d) = &self.display_name {
            let _ = writeln!(out, "display_name: {}", s(d));
        }
        let _ = writeln!(out, "owner: {}", s(self.owner.as_str()));
        if let Some(st) = &self.settings {
            let _ = writeln!(out, "settings:");
            let _ = writeln!(out, "  require_2fa: {}", st.require_2fa);
            let _ = writeln!(out, "  invitation_ttl_days: {}", st.invitation_ttl_days);
            if let Some(limit) = st.seat_limit {
                let _ = writeln!(out, "  seat_limit: {limit}");
            }
            // Written when it is not the default, so that files written before
            // the setting existed read and write back unchanged.
            if st.scim_provisioning != ScimProvisioning::default() {
                let _ = writeln!(out, "  scim_provisioning: {}", st.scim_provisioning);
            }
        }
        if let Some(roles) = &self.roles {
            if roles.is_empty() {
                let _ = writeln!(out, "roles: {{}}");
            } else {
                let _ = writeln!(out, "roles:");
            }
            for (name, role) in roles {
                let _ = writeln!(out, "  {}:", s(name.as_str()));
                if !role.description.is_empty() {
                    let _ = writeln!(out, "    description: {}", s(&role.description));
                }
                let perms: Vec<String> = role.permissions.iter().map(|p| s(p.as_str())).collect();
                let _ = writeln!(out, "    permissions: [{}]", perms.join(", "));
            }
        }
        if self.members.is_empty() {
            let _ = writeln!(out, "members: []");
        } else {
            let _ = writeln!(out, "members:");
        }
        for m in self.members.values() {
            let _ = writeln!(out, "  - email: {}", s(m.email.as_str()));
            if let Some(name) = &m.name {
                let _ = writeln!(out, "    name: {}", s(name));
            }
            let roles: Vec<String> = m.roles.iter().map(|r| s(r.as_str())).collect();
            let _ = writeln!(out, "    roles: [{}]", roles.join(", "));
        }
        if self.policy != Policy::default() {
            let _ = writeln!(out, "policy:");
            let unmanaged = match self.policy.unmanaged {
                Unmanaged::Remove => "remove",
                Unmanaged::Ignore => "ignore",
            };
            let _ = writeln!(out, "  unmanaged: {unmanaged}");
            if let Some(limit) = &self.policy.max_removals {
                let _ = writeln!(out, "  max_removals: {}", s(&limit.to_string()));
            }
        }
        out
    }
}

fn parse_email(node: &Node, what: &str, c: &mut Collector) -> Option<Email> {
    let s = yaml::text(node, what, c)?;
    match Email::parse(s) {
        Ok(e) => Some(e),
        Err(e) => {
            c.error(yaml::loc_of(node), e.to_string());
            None
        }
    }
}

fn parse_settings(node: &Node, c: &mut Collector) -> Settings {
    let mut settings = Settings::default();
    for (key, _, v) in yaml::mapping(node, "`settings`", Some(fields::SETTINGS), c) {
        match key {
            "require_2fa" => {
                settings.require_2fa = yaml::boolean(v, "`require_2fa`", c).unwrap_or(false)
            }
            "invitation_ttl_days" => {
                if let Some(n) = yaml::integer(v, "`invitation_ttl_days`", c) {
                    match u32::try_from(n) {
                        Ok(n) if (1..=365).contains(&n) => settings.invitation_ttl_days = n,
                        _ => c.error(
                            yaml::loc_of(v),
                            "`invitation_ttl_days` must be between 1 and 365",
                        ),
                    }
                }
            }
            "seat_limit" if yaml::is_null(v) => settings.seat_limit = None,
            "seat_limit" => {
                if let Some(n) = yaml::integer(v, "`seat_limit`", c) {
                    match u32::try_from(n) {
                        Ok(n) if (1..=Settings::MAX_SEAT_LIMIT).contains(&n) => {
                            settings.seat_limit = Some(n)
                        }
                        _ => c.error(
                            yaml::loc_of(v),
                            format!(
                                "`seat_limit` must be between 1 and {}",
                                Settings::MAX_SEAT_LIMIT
                            ),
                        ),
                    }
                }
            }
            "scim_provisioning" => {
                if let Some(text) = yaml::string(v, "`scim_provisioning`", c) {
                    match ScimProvisioning::parse(&text) {
                        Some(p) => settings.scim_provisioning = p,
                        None => c.error(
                            yaml::loc_of(v),
                            format!(
                                "`scim_provisioning` must be `invitations` or `members`, found `{text}`"
                            ),
                        ),
                    }
                }
            }
            _ => {}
        }
    }
    settings
}

fn parse_roles(
    node: &Node,
    catalog: &Catalog,
    c: &mut Collector,
) -> BTreeMap<RoleName, CustomRole> {
    let mut roles = BTreeMap::new();
    let entries = yaml::mapping(node, "`roles`", None, c);
    if !entries.is_empty() && !catalog.custom_roles {
        c.error(
            yaml::loc_of(node),
            format!("the `{}` catalog does not allow custom roles", catalog.name),
        );
        return roles;
    }
    for (name, loc, value) in entries {
        let role_name = match RoleName::parse(name) {
            Ok(r) if r.is_owner() || catalog.has_role(&r) => {
                c.error(
                    loc,
                    format!("custom role `{name}` has the name of a built-in role"),
                );
                continue;
            }
            Ok(r) => r,
            Err(e) => {
                c.error(loc, e.to_string());
                continue;
            }
        };
        let what = format!("custom role `{name}`");
        let mut role = CustomRole {
            description: String::new(),
            permissions: BTreeSet::new(),
        };
        let mut saw_permissions = false;
        for (k, _, v) in yaml::mapping(value, &what, Some(fields::ROLE), c) {
            if k == "description" {
                role.description = yaml::string(v, "`description`", c).unwrap_or_default();
                if !role.description.is_empty()
                    && let Err(e) =
                        check_text("`description`", &role.description, MAX_DESCRIPTION_CHARS)
                {
                    c.error(yaml::loc_of(v), e.to_string());
                }
                continue;
            }
            saw_permissions = true;
            for p in yaml::sequence(v, "`permissions`", c) {
                let Some(s) = yaml::string(p, "a permission", c) else {
                    continue;
                };
                match Permission::from_str_in(&s, catalog) {
                    Some(perm) => {
                        if !role.permissions.insert(perm) {
                            c.error(yaml::loc_of(p), format!("permission `{s}` is listed twice"));
                        }
                    }
                    None => c.error(yaml::loc_of(p), unknown_permission_message(&s, catalog)),
                }
            }
        }
        if !saw_permissions {
            c.error(loc, format!("{what} needs `permissions`"));
        }
        roles.insert(role_name, role);
    }
    roles
}

impl Permission {
    fn from_str_in(s: &str, catalog: &Catalog) -> Option<Permission> {
        catalog.permission(s).map(|p| p.id.clone())
    }
}

fn unknown_permission_message(s: &str, catalog: &Catalog) -> String {
    match closest(s, catalog.permissions.iter().map(|p| p.id.as_str())) {
        Some(near) => format!("unknown permission `{s}` (did you mean `{near}`?)"),
        None => format!("unknown permission `{s}`; `teamform catalog` lists them"),
    }
}

fn unknown_role_message(
    s: &str,
    catalog: &Catalog,
    custom: &BTreeMap<RoleName, CustomRole>,
) -> String {
    let names = catalog
        .roles
        .iter()
        .map(|r| r.name.as_str())
        .chain(custom.keys().map(|r| r.as_str()));
    match closest(s, names) {
        Some(near) if near != "owner" => format!("unknown role `{s}` (did you mean `{near}`?)"),
        _ => {
            let known: Vec<&str> = catalog
                .roles
                .iter()
                .map(|r| r.name.as_str())
                .filter(|n| *n != "owner")
                .chain(custom.keys().map(|r| r.as_str()))
                .collect();
            format!("unknown role `{s}`; known roles: {}", known.join(", "))
        }
    }
}

/// The candidate nearest to `s` by edit distance, if reasonably near.
fn closest<'a>(s: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|cand| (edit_distance(s, cand), cand))
        .filter(|(d, cand)| *d <= 2.max(cand.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, cand)| cand)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev.get(j).copied().unwrap_or(0) + usize::from(ca != *cb);
            let del = prev.get(j + 1).copied().unwrap_or(0) + 1;
            let ins = cur.get(j).copied().unwrap_or(0) + 1;
            cur.push(sub.min(del).min(ins));
        }
        prev = cur;
    }
    prev.last().copied().unwrap_or(0)
}

/// The members read so far, and where each email was first listed.
#[derive(Default)]
struct Members {
    members: BTreeMap<Email, MemberSpec>,
    first_seen: HashMap<String, Loc>,
}

/// `members` read item by item as the file streams by: `owner` and `roles`
/// are converted from the entries before the list when its first item comes.
struct MemberStream<'k> {
    catalog: &'k Catalog,
    started: bool,
    owner: Option<Email>,
    roles: Option<BTreeMap<RoleName, CustomRole>>,
    no_roles: BTreeMap<RoleName, CustomRole>,
    members: Members,
}

impl<'k> MemberStream<'k> {
    fn new(catalog: &'k Catalog) -> Self {
        Self {
            catalog,
            started: false,
            owner: None,
            roles: None,
            no_roles: BTreeMap::new(),
            members: Members::default(),
        }
    }

    fn item(&mut self, before: &[(Node, Node)], entry: &Node, c: &mut Collector) {
        if !self.started {
            self.started = true;
            for (k, v) in before {
                match yaml::str_of(k) {
                    Some("owner") => self.owner = parse_email(v, "`owner`", c),
                    Some("roles") => self.roles = Some(parse_roles(v, self.catalog, c)),
                    _ => {}
                }
            }
        }
        let custom = self.roles.as_ref().unwrap_or(&self.no_roles);
        self.members
            .entry(entry, self.owner.as_ref(), self.catalog, custom, c);
    }
}

impl Members {
    /// Reads one item of `members`.
    fn entry(
        &mut self,
        entry: &Node,
        owner: Option<&Email>,
        catalog: &Catalog,
        custom: &BTreeMap<RoleName, CustomRole>,
        c: &mut Collector,
    ) {
        let map = yaml::mapping(entry, "a member", Some(fields::MEMBER), c);
        let get = |name: &str| map.iter().find(|(k, ..)| *k == name).map(|(_, _, v)| *v);
        let email = match get("email") {
            None => {
                c.error(yaml::loc_of(entry), "member needs an `email`");
                None
            }
            Some(v) => parse_email(v, "`email`", c).and_then(|e| {
                let here = yaml::loc_of(v);
                if owner == Some(&e) {
                    c.error(
                        here,
                        format!("{e} is the owner; the owner is set by `owner:` only"),
                    );
                    return None;
                }
                if let Some(first) = self.first_seen.get(e.key()) {
                    c.error(
                        here,
                        format!("duplicate member {e} (first listed at line {})", first.line),
                    );
                    return None;
                }
                self.first_seen.insert(e.key().to_owned(), here);
                Some(e)
            }),
        };
        let name = get("name").and_then(|v| {
            let s = yaml::string(v, "`name`", c)?;
            if let Err(e) = check_text("`name`", &s, MAX_NAME_CHARS) {
                c.error(yaml::loc_of(v), e.to_string());
            }
            Some(s)
        });
        let mut roles = Roles::new();
        match get("roles") {
            None => c.error(
                yaml::loc_of(entry),
                "member needs `roles` (a list of role names)",
            ),
            Some(v) => {
                let items = yaml::sequence(v, "`roles`", c);
                if items.is_empty() && matches!(v.data, Data::Seq(_)) {
                    c.error(yaml::loc_of(v), "a member needs at least one role");
                }
                for r in items {
                    let Some(s) = yaml::text(r, "a role", c) else {
                        continue;
                    };
                    let here = yaml::loc_of(r);
                    match RoleName::parse(s) {
                        Ok(role) if role.is_owner() => {
                            c.error(here, "`owner` is not assigned in `members`; set `owner:` to transfer ownership")
                        }
                        Ok(role) if catalog.has_role(&role) || custom.contains_key(&role) => {
                            if !roles.insert(role) {
                                c.error(here, format!("role `{s}` is listed twice"));
                            }
                        }
                        _ => c.error(here, unknown_role_message(s, catalog, custom)),
                    }
                }
                if roles.len() > 1 && !catalog.multiple_roles {
                    c.error(
                        yaml::loc_of(v),
                        format!(
                            "the `{}` catalog allows one role per member, found {}",
                            catalog.name,
                            roles.len()
                        ),
                    );
                }
            }
        }
        if let Some(email) = email {
            self.members
                .insert(email.clone(), MemberSpec { email, name, roles });
        }
    }
}

fn parse_policy(node: &Node, c: &mut Collector) -> Policy {
    let mut policy = Policy::default();
    for (key, _, v) in yaml::mapping(node, "`policy`", Some(fields::POLICY), c) {
        match key {
            "unmanaged" => match yaml::string(v, "`unmanaged`", c).as_deref() {
                Some("remove") => policy.unmanaged = Unmanaged::Remove,
                Some("ignore") => policy.unmanaged = Unmanaged::Ignore,
                Some(other) => c.error(
                    yaml::loc_of(v),
                    format!("`unmanaged` must be `remove` or `ignore`, found `{other}`"),
                ),
                None => {}
            },
            "max_removals" => match yaml::text_or_int(v).map(|s| RemovalLimit::from_str(&s)) {
                Some(Ok(limit)) => policy.max_removals = Some(limit),
                Some(Err(e)) => c.error(yaml::loc_of(v), e),
                None => c.error(
                    yaml::loc_of(v),
                    "`max_removals` must be a number or a percentage like `25%`",
                ),
            },
            _ => {}
        }
    }
    policy
}

/// Chooses the display name a new team gets when the spec names none.
pub fn default_display_name(spec: &TeamSpec) -> String {
    spec.display_name
        .clone()
        .unwrap_or_else(|| spec.team.to_string())
}
