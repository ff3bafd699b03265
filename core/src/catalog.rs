//! The catalog: the permissions a deployment knows and the system roles that
//! bundle them. `owner` exists in every catalog and holds every permission.
//!
//! Service permissions (`team.*`) are fixed and enforced by the service;
//! product permissions are declared by the catalog and only stored and
//! answered. Presets ship inside the binary as YAML; a deployment may load
//! its own file. Loading never panics on input.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::yaml::{self, Collector, Diagnostics, Loc};

/// The ids of the service permissions, for code that checks one: a misspelt
/// name does not compile, where a misspelt string would silently deny.
pub mod perm {
    pub const MEMBERS_READ: &str = "team.members.read";
    pub const MEMBERS_INVITE: &str = "team.members.invite";
    pub const MEMBERS_REMOVE: &str = "team.members.remove";
    pub const MEMBERS_ROLES: &str = "team.members.roles";
    pub const MEMBERS_SIGNIN_METHOD_READ: &str = "team.members.signin_method.read";
    pub const ROLES_MANAGE: &str = "team.roles.manage";
    pub const API_KEYS_MANAGE: &str = "team.api_keys.manage";
    pub const SETTINGS_READ: &str = "team.settings.read";
    pub const SETTINGS_MANAGE: &str = "team.settings.manage";
    pub const SECURITY_MANAGE: &str = "team.security.manage";
    pub const AUDIT_READ: &str = "team.audit.read";
    pub const CLOSE: &str = "team.close";
    pub const SCIM_MANAGE: &str = "team.scim.manage";
}

/// The service permissions: fixed, enforced by the service itself.
pub const SERVICE_PERMISSIONS: &[(&str, &str)] = &[
    (
        perm::MEMBERS_READ,
        "See members, invitations and their roles",
    ),
    (
        perm::MEMBERS_INVITE,
        "Invite people, resend and revoke invitations",
    ),
    (perm::MEMBERS_REMOVE, "Remove members"),
    (
        perm::MEMBERS_ROLES,
        "Change the roles of members and invitations",
    ),
    (
        perm::MEMBERS_SIGNIN_METHOD_READ,
        "See each member's sign-in method",
    ),
    (perm::ROLES_MANAGE, "Create, change and delete custom roles"),
    (perm::API_KEYS_MANAGE, "Create and revoke API keys"),
    (perm::SETTINGS_READ, "See team settings"),
    (perm::SETTINGS_MANAGE, "Change team settings"),
    (
        perm::SECURITY_MANAGE,
        "Configure single sign-on and enforce 2FA",
    ),
    (perm::AUDIT_READ, "Read the audit log"),
    (perm::CLOSE, "Close the team"),
    (
        perm::SCIM_MANAGE,
        "Create and revoke SCIM provisioning tokens",
    ),
];

pub const PRESETS: &[(&str, &str)] = &[
    ("standard", include_str!("../presets/standard.yaml")),
    ("ably", include_str!("../presets/ably.yaml")),
    ("digitalocean", include_str!("../presets/digitalocean.yaml")),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error(
        "`{0}` is not a valid role name: use lowercase letters, digits, `-` and `_`, starting with a letter"
    )]
    Role(String),
    #[error("`{0}` is not a valid permission: use dot-separated lowercase words like `apps.read`")]
    Permission(String),
}

/// A role name (system or custom): lowercase letters, digits, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = "developer"))]
#[serde(transparent)]
pub struct RoleName(String);

impl RoleName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Role(s.to_owned()))
        }
    }

    pub fn owner() -> Self {
        Self("owner".to_owned())
    }

    pub fn is_owner(&self) -> bool {
        self.0 == "owner"
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for RoleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed from the text where it stands: no `String` in between.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = RoleName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RoleName, E> {
                RoleName::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}

/// A permission id: dot-separated lowercase words (`apps.config.write`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = "team.members.read"))]
#[serde(transparent)]
pub struct Permission(String);

impl Permission {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let ok = (1..=128).contains(&s.len())
            && s.split('.').all(|w| {
                !w.is_empty()
                    && w.starts_with(|c: char| c.is_ascii_lowercase())
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(NameError::Permission(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_service(&self) -> bool {
        self.0.starts_with("team.")
    }
}
impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Permission::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionDef {
    pub id: Permission,
    /// How the product names it (a row of its permission table).
    pub label: String,
    pub service: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDef {
    pub name: RoleName,
    pub description: String,
    pub permissions: BTreeSet<Permission>,
}

/// A deployment's permissions and system roles.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub name: String,
    pub description: String,
    /// Service permissions first, then the catalog's own, in declared order.
    pub permissions: Vec<PermissionDef>,
    /// System roles in declared order, `owner` first.
    pub roles: Vec<RoleDef>,
    /// Whether a member may hold several roles at once.
    pub multiple_roles: bool,
    /// Whether teams may define their own roles.
    pub custom_roles: bool,
    /// The role a previous owner holds after a transfer.
    pub previous_owner_role: RoleName,
}

impl Catalog {
    /// A preset shipped with the binary.
    pub fn preset(name: &str) -> Option<Catalog> {
        let (_, source) = PRESETS.iter().find(|(n, _)| *n == name)?;
        // Presets are tested to load; a broken one is a build defect, reported
        // as absent rather than a panic.
        Catalog::from_yaml(&format!("<preset {name}>"), source).ok()
    }

    pub fn standard() -> Catalog {
        Catalog::preset("standard").unwrap_or_else(Catalog::minimal)
    }

    /// Only `owner` and the service permissions; the fallback of last resort.
    fn minimal() -> Catalog {
        let permissions = service_permission_defs();
        let owner = RoleDef {
            name: RoleName::owner(),
            description: "Holds every permission".into(),
            permissions: permissions.iter().map(|p| p.id.clone()).collect(),
        };
        Catalog {
            name: "minimal".into(),
            description: String::new(),
            permissions,
            roles: vec![owner.clone()],
            multiple_roles: false,
            custom_roles: false,
            previous_owner_role: RoleName::owner(),
        }
    }

    pub fn permission(&self, id: &str) -> Option<&PermissionDef> {
        self.permissions.iter().find(|p| p.id.as_str() == id)
    }

    pub fn role(&self, name: &RoleName) -> Option<&RoleDef> {
        self.roles.iter().find(|r| &r.name == name)
    }

    /// Whether `name` is a system role of this catalog.
    pub fn has_role(&self, name: &RoleName) -> bool {
        self.role(name).is_some()
    }

    /// The permissions held by a set of roles, with the team's custom roles.
    pub fn permissions_of<'a>(
        &'a self,
        roles: impl IntoIterator<Item = &'a RoleName>,
        custom: &'a BTreeMap<RoleName, crate::model::CustomRole>,
    ) -> BTreeSet<&'a Permission> {
        let mut out = BTreeSet::new();
        for role in roles {
            if let Some(def) = self.role(role) {
                out.extend(def.permissions.iter());
            } else if let Some(c) = custom.get(role) {
                out.extend(c.permissions.iter());
            }
        }
        out
    }

    /// Whether the roles grant `permission`.
    pub fn allows<'a>(
        &'a self,
        roles: impl IntoIterator<Item = &'a RoleName>,
        custom: &'a BTreeMap<RoleName, crate::model::CustomRole>,
        permission: &str,
    ) -> bool {
        self.permissions_of(roles, custom)
            .iter()
            .any(|p| p.as_str() == permission)
    }

    /// Reads a catalog file. Every error is reported with its place.
    pub fn from_yaml(file: &str, source: &str) -> Result<Catalog, Diagnostics> {
        let root = yaml::parse(file, source)?;
        let mut c = Collector::new(file);
        let fields = [
            "name",
            "description",
            "multiple_roles",
            "custom_roles",
            "previous_owner_role",
            "permissions",
            "roles",
        ];
        let mut catalog = Catalog::minimal();
        catalog.roles.clear();
        let mut prev_owner: Option<(RoleName, Loc)> = None;
        let mut roles_node = None;
        let mut perm_node = None;
        for (key, _loc, value) in yaml::mapping(&root, "the catalog", Some(&fields), &mut c) {
            match key {
                "name" => catalog.name = yaml::string(value, "`name`", &mut c).unwrap_or_default(),
                "description" => {
                    catalog.description =
                        yaml::string(value, "`description`", &mut c).unwrap_or_default()
                }
                "multiple_roles" => {
                    catalog.multiple_roles =
                        yaml::boolean(value, "`multiple_roles`", &mut c).unwrap_or(false)
                }
                "custom_roles" => {
                    catalog.custom_roles =
                        yaml::boolean(value, "`custom_roles`", &mut c).unwrap_or(false)
                }
                "previous_owner_role" => {
                    if let Some(s) = yaml::string(value, "`previous_owner_role`", &mut c) {
                        match RoleName::parse(&s) {
                            Ok(r) => prev_owner = Some((r, yaml::loc_of(value))),
                            Err(e) => c.error(yaml::loc_of(value), e.to_string()),
                        }
                    }
                }
                "permissions" => perm_node = Some(value),
                "roles" => roles_node = Some(value),
                _ => {}
            }
        }
        if catalog.name.is_empty() {
            c.error(yaml::loc_of(&root), "the catalog needs a `name`");
        }
        if let Some(node) = perm_node {
            for (id, loc, value) in yaml::mapping(node, "`permissions`", None, &mut c) {
                let label = yaml::string(value, &format!("the label of `{id}`"), &mut c)
                    .unwrap_or_default();
                match Permission::parse(id) {
                    Err(e) => c.error(loc, e.to_string()),
                    // A catalog may give a service permission its product's wording.
                    Ok(p) if p.is_service() => match catalog
                        .permissions
                        .iter_mut()
                        .find(|d| d.id == p)
                    {
                        Some(def) => def.label = label,
                        None => c.error(
                            loc,
                            format!(
                                "`{id}` is not a service permission; the `team.` prefix is reserved"
                            ),
                        ),
                    },
                    Ok(p) if catalog.permission(p.as_str()).is_some() => {
                        c.error(loc, format!("permission `{id}` is declared twice"))
                    }
                    Ok(p) => catalog.permissions.push(PermissionDef {
                        id: p,
                        label,
                        service: false,
                    }),
                }
            }
        }
        let all: BTreeSet<Permission> = catalog.permissions.iter().map(|p| p.id.clone()).collect();
        catalog.roles.push(RoleDef {
            name: RoleName::owner(),
            description: "Holds every permission; exactly one per team".into(),
            permissions: all,
        });
        if let Some(node) = roles_node {
            for (name, loc, value) in yaml::mapping(node, "`roles`", None, &mut c) {
                let role = match RoleName::parse(name) {
                    Ok(r) if r.is_owner() => {
                        c.error(loc, "`owner` is built in: it holds every permission and cannot be redefined");
                        continue;
                    }
                    Ok(r) => r,
                    Err(e) => {
                        c.error(loc, e.to_string());
                        continue;
                    }
                };
                let what = format!("role `{name}`");
                let mut def = RoleDef {
                    name: role,
                    description: String::new(),
                    permissions: BTreeSet::new(),
                };
                for (k, _, v) in
                    yaml::mapping(value, &what, Some(&["description", "permissions"]), &mut c)
                {
                    if k == "description" {
                        def.description =
                            yaml::string(v, "`description`", &mut c).unwrap_or_default();
                        continue;
                    }
                    for p in yaml::sequence(v, "`permissions`", &mut c) {
                        let Some(s) = yaml::string(p, "a permission", &mut c) else {
                            continue;
                        };
                        match catalog.permission(&s) {
                            // Closing (and so deleting) a team is its owner's
                            // decision alone; the service checks ownership,
                            // and a catalog must not say otherwise.
                            Some(found) if found.id.as_str() == perm::CLOSE => c.error(
                                yaml::loc_of(p),
                                format!(
                                    "`{}` is held by the owner alone and cannot be given to {what}",
                                    perm::CLOSE
                                ),
                            ),
                            Some(found) => {
                                def.permissions.insert(found.id.clone());
                            }
                            None => c.error(
                                yaml::loc_of(p),
                                format!("unknown permission `{s}` in {what}"),
                            ),
                        }
                    }
                }
                catalog.roles.push(def);
            }
        }
        match prev_owner {
            Some((r, loc)) if !catalog.has_role(&r) || r.is_owner() => c.error(
                loc,
                format!("`previous_owner_role` names `{r}`, which is not a role of this catalog"),
            ),
            Some((r, _)) => catalog.previous_owner_role = r,
            None => c.error(
                yaml::loc_of(&root),
                "the catalog needs a `previous_owner_role`",
            ),
        }
        c.finish(catalog)
    }

    /// The roles x permissions matrix: for each permission, which roles hold it.
    pub fn matrix(&self) -> Vec<(&PermissionDef, Vec<bool>)> {
        self.permissions
            .iter()
            .map(|p| {
                (
                    p,
                    self.roles
                        .iter()
                        .map(|r| r.permissions.contains(&p.id))
                        .collect(),
                )
            })
            .collect()
    }
}

fn service_permission_defs() -> Vec<PermissionDef> {
    SERVICE_PERMISSIONS
        .iter()
        .filter_map(|(id, label)| {
            Some(PermissionDef {
                id: Permission::parse(id).ok()?,
                label: (*label).to_owned(),
                service: true,
            })
        })
        .collect()
}
