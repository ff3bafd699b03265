//! Who is calling: the principal behind a request, and what it may do in a
//! team. Credentials of one team never reach another: an API key of team A
//! asking about team B gets "not found", exactly as if B did not exist.

pub mod credentials;
pub mod oidc;
pub mod secret;

use std::collections::BTreeSet;

use serde::Serialize;
use teamform_core::catalog::Permission;
use teamform_core::change::Requirement;
use teamform_core::model::Roles;
use teamform_core::{Catalog, Email, TeamId, TeamState};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The `teamform` CLI driving the router in-process over its own embedded
    /// store: the owner of every team in that store. Never reachable over a
    /// network: only the in-process host sets it.
    LocalOwner,
    /// A person, from a personal access token or verified JWT claims.
    /// `two_factor`: the sign-in behind the credential used a second factor.
    Person { email: Email, two_factor: bool },
    /// A team API key: its team, id, roles (never `owner`) and the
    /// permissions it holds directly besides its roles.
    ApiKey {
        team: TeamId,
        id: String,
        roles: Roles,
        permissions: BTreeSet<Permission>,
    },
    /// A team's SCIM provisioning token: it opens only that team's
    /// `/scim/v2` routes (the API's extractor never resolves one), and holds
    /// the permissions its creator held when it was made.
    Scim {
        team: TeamId,
        id: String,
        permissions: BTreeSet<Permission>,
        /// The role a provisioned person gets when nothing else says which.
        default_role: teamform_core::RoleName,
    },
}

/// What a principal holds in one team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held<'a> {
    /// The owner: every permission, and the owner-only changes.
    All,
    Some(BTreeSet<&'a Permission>),
}

impl Held<'_> {
    pub fn has(&self, permission: &str) -> bool {
        match self {
            Held::All => true,
            Held::Some(set) => set.iter().any(|p| p.as_str() == permission),
        }
    }

    /// The permissions of `wanted` this holder lacks; empty for the owner.
    pub fn lacking<'p>(&self, wanted: &BTreeSet<&'p Permission>) -> BTreeSet<&'p Permission> {
        match self {
            Held::All => BTreeSet::new(),
            Held::Some(set) => wanted
                .iter()
                .filter(|p| !set.iter().any(|q| q.as_str() == p.as_str()))
                .copied()
                .collect(),
        }
    }
}

/// How a principal stands in one team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The team cannot be seen at all (answered as 404).
    Outsider,
    Owner,
    Roles(Roles),
}

impl Principal {
    /// A person, signed in without a second factor (tests and tools).
    pub fn person(email: Email) -> Self {
        Principal::Person {
            email,
            two_factor: false,
        }
    }

    /// Whether a team that requires 2FA refuses this principal: a person
    /// whose sign-in had no second factor. API keys and the local owner are
    /// not people signing in.
    pub fn lacks_required_2fa(&self, state: &TeamState) -> bool {
        state.settings.require_2fa
            && matches!(
                self,
                Principal::Person {
                    two_factor: false,
                    ..
                }
            )
    }

    /// The actor recorded in audit items.
    pub fn actor(&self) -> String {
        match self {
            Principal::LocalOwner => "local-owner".into(),
            Principal::Person { email, .. } => format!("user:{email}"),
            Principal::ApiKey { id, .. } => format!("api-key:{id}"),
            Principal::Scim { id, .. } => format!("scim-token:{id}"),
        }
    }

    pub fn standing(&self, state: &TeamState) -> Standing {
        match self {
            Principal::LocalOwner => Standing::Owner,
            Principal::Person { email, .. } if email == &state.owner => Standing::Owner,
            Principal::Person { email, .. } => match state.members.get(email) {
                Some(m) => Standing::Roles(m.roles.clone()),
                None => Standing::Outsider,
            },
            Principal::ApiKey { team, roles, .. } if team == &state.team => {
                Standing::Roles(roles.clone())
            }
            Principal::Scim { team, .. } if team == &state.team => {
                Standing::Roles(Roles::default())
            }
            Principal::ApiKey { .. } | Principal::Scim { .. } => Standing::Outsider,
        }
    }

    /// What the principal holds in this team; `None` for an outsider.
    pub fn held<'a>(&'a self, state: &'a TeamState, catalog: &'a Catalog) -> Option<Held<'a>> {
        let roles = match self {
            Principal::LocalOwner => return Some(Held::All),
            Principal::Person { email, .. } if email == &state.owner => return Some(Held::All),
            Principal::Person { email, .. } => &state.members.get(email)?.roles,
            Principal::ApiKey { team, .. } if team != &state.team => return None,
            Principal::ApiKey { roles, .. } => roles,
            Principal::Scim { team, .. } if team != &state.team => return None,
            Principal::Scim { permissions, .. } => {
                return Some(Held::Some(permissions.iter().collect()));
            }
        };
        let mut set = catalog.permissions_of(roles, &state.roles);
        if let Principal::ApiKey { permissions, .. } = self {
            set.extend(permissions.iter());
        }
        Some(Held::Some(set))
    }

    /// Whether the principal meets a requirement in this team.
    pub fn may(&self, state: &TeamState, catalog: &Catalog, req: Requirement) -> bool {
        match (self.held(state, catalog), req) {
            (None, _) => false,
            // Held by a SCIM token of this team alone (`held` is `None`
            // for another team's): not even the owner provisions.
            (Some(_), Requirement::Provisioner) => matches!(self, Principal::Scim { .. }),
            (Some(Held::All), _) => true,
            (Some(Held::Some(_)), Requirement::Owner) => false,
            (Some(held), Requirement::Permission(p)) => held.has(p),
        }
    }
}

/// What `GET /me` style answers and errors say about a principal.
#[derive(Debug, Clone, Serialize)]
pub struct PrincipalView {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

impl From<&Principal> for PrincipalView {
    fn from(p: &Principal) -> Self {
        match p {
            Principal::LocalOwner => PrincipalView {
                kind: "local_owner",
                email: None,
                team: None,
            },
            Principal::Person { email, .. } => PrincipalView {
                kind: "person",
                email: Some(email.to_string()),
                team: None,
            },
            Principal::ApiKey { team, .. } => PrincipalView {
                kind: "api_key",
                email: None,
                team: Some(team.to_string()),
            },
            Principal::Scim { team, .. } => PrincipalView {
                kind: "scim_token",
                email: None,
                team: Some(team.to_string()),
            },
        }
    }
}
