//! Who is calling: the principal behind a request, and what it may do in a
//! team. Credentials of one team never reach another: an API key of team A
//! asking about team B gets "not found", exactly as if B did not exist.

use serde::Serialize;
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
    /// A team API key: its team, id and roles (never `owner`).
    ApiKey {
        team: TeamId,
        id: String,
        roles: Roles,
    },
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
            Principal::ApiKey { .. } => Standing::Outsider,
        }
    }

    /// Whether the principal meets a requirement in this team.
    pub fn may(&self, state: &TeamState, catalog: &Catalog, req: Requirement) -> bool {
        match (self.standing(state), req) {
            (Standing::Outsider, _) => false,
            (Standing::Owner, _) => true,
            (Standing::Roles(_), Requirement::Owner) => false,
            (Standing::Roles(roles), Requirement::Permission(p)) => {
                catalog.allows(&roles, &state.roles, p)
            }
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
        }
    }
}
