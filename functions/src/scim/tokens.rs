//! SCIM provisioning tokens (`tfs_`): one team's identity provider calls
//! that team's `/scim/v2/{team}` routes with one. Made and revoked by holders
//! of `team.scim.manage`, audited; the secret is shown once, stored as
//! SHA-256 and compared in constant time, like API keys. A token holds the
//! permissions its creator held when it was made (never ownership), so what
//! it provisions is bounded by what that person could do by hand.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::json;
use teamform_core::catalog::{Permission, perm};
use teamform_core::change::{MAX_NAME_CHARS, check_roles, check_text};
use teamform_core::model::Roles;
use teamform_core::{RoleName, TeamId, Timestamp};

use crate::auth::credentials::Created;
use crate::auth::secret;
use crate::auth::{Held, Principal};
use crate::service::{Service, ServiceError, check_grant};
use crate::store::codec;
use crate::store::{Condition, Item, Write};

/// The prefix of SCIM token secrets.
pub const PREFIX: &str = "tfs_";
const TOKEN_SK: &str = "SCIMTOKEN#";

/// A SCIM token as listed (never its secret).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ScimTokenView {
    pub id: String,
    pub name: String,
    /// The role given to people the identity provider provisions, until a
    /// group (role) membership says otherwise.
    #[schema(value_type = String, example = "viewer")]
    pub default_role: RoleName,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    pub created_by: String,
}

#[derive(Serialize, Deserialize)]
struct TokenRecord {
    #[serde(flatten)]
    view: ScimTokenView,
    hash: String,
    permissions: BTreeSet<Permission>,
}

fn token_sk(id: &str) -> String {
    format!("{TOKEN_SK}{id}")
}

pub(crate) fn lookup_pk(hash: &str) -> String {
    format!("SCIM#{hash}")
}

impl Service {
    /// Makes a SCIM token for `team`; its secret is returned this once.
    pub async fn create_scim_token(
        &self,
        team: &TeamId,
        who: &Principal,
        name: &str,
        default_role: &RoleName,
    ) -> Result<Created<ScimTokenView>, ServiceError> {
        let scoped = self.authorized_scoped(team, who, perm::SCIM_MANAGE).await?;
        let state = &scoped.state;
        check_text("name", name, MAX_NAME_CHARS)
            .map_err(|e| ServiceError::invalid(crate::code::VALIDATION_FAILED, e.to_string()))?;
        let catalog = self.catalog();
        let roles: Roles = [default_role.clone()].into_iter().collect();
        check_roles(&roles, catalog, state)
            .map_err(|e| ServiceError::invalid(e.code(), format!("default_role: {e}")))?;
        check_grant(
            who,
            state,
            catalog,
            &catalog.permissions_of(&roles, &state.roles),
        )?;
        let permissions: BTreeSet<Permission> = match who.held(state, catalog) {
            Some(Held::All) => catalog.permissions.iter().map(|d| d.id.clone()).collect(),
            Some(Held::Some(set)) => set.into_iter().cloned().collect(),
            None => return Err(ServiceError::NotFound),
        };
        let fresh = secret::generate(PREFIX);
        let view = ScimTokenView {
            id: secret::id(),
            name: name.to_owned(),
            default_role: default_role.clone(),
            created_at: self.now(),
            created_by: who.actor(),
        };
        let record = TokenRecord {
            view: view.clone(),
            hash: fresh.hash.clone(),
            permissions,
        };
        let lookup = Item::new(lookup_pk(&fresh.hash), "SCIM")
            .with("type", "scim_token_lookup")
            .with("team", team.as_str())
            .with("id", view.id.as_str());
        let writes = vec![
            Write::Put {
                item: codec::encode(
                    codec::team_pk(team),
                    token_sk(&view.id),
                    "scim_token",
                    &record,
                )?,
                condition: Condition::NotExists,
            },
            Write::Put {
                item: lookup,
                condition: Condition::NotExists,
            },
        ];
        let detail = json!({ "id": view.id, "name": view.name, "default_role": view.default_role });
        self.commit_operation(&scoped, who, "create_scim_token", detail, writes)
            .await?;
        Ok(Created {
            view,
            secret: fresh.secret,
        })
    }

    pub async fn list_scim_tokens(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<Vec<ScimTokenView>, ServiceError> {
        self.authorized(team, who, perm::SCIM_MANAGE).await?;
        let items = self
            .store()
            .query_all(&codec::team_pk(team), TOKEN_SK)
            .await?;
        items
            .iter()
            .map(|i| {
                codec::decode::<TokenRecord>(i, &[])
                    .map(|r| r.view)
                    .map_err(ServiceError::from)
            })
            .collect()
    }

    /// Revokes a SCIM token: its look-up goes in the same transaction, so
    /// it stops working at once.
    pub async fn revoke_scim_token(
        &self,
        team: &TeamId,
        who: &Principal,
        id: &str,
    ) -> Result<(), ServiceError> {
        let scoped = self.authorized_scoped(team, who, perm::SCIM_MANAGE).await?;
        let pk = codec::team_pk(team);
        let item = self
            .store()
            .get(&pk, &token_sk(id))
            .await?
            .ok_or(ServiceError::NotFound)?;
        let record: TokenRecord = codec::decode(&item, &[])?;
        let writes = vec![
            Write::Delete {
                pk,
                sk: token_sk(id),
                condition: Condition::Exists,
            },
            Write::Delete {
                pk: lookup_pk(&record.hash),
                sk: "SCIM".into(),
                condition: Condition::None,
            },
        ];
        let detail = json!({ "id": id, "name": record.view.name });
        self.commit_operation(&scoped, who, "revoke_scim_token", detail, writes)
            .await?;
        Ok(())
    }

    /// Resolves a SCIM bearer secret for the routes of `team`. Unknown,
    /// revoked, or another team's: `Unauthenticated`.
    pub async fn authenticate_scim(
        &self,
        bearer: &str,
        team: &TeamId,
    ) -> Result<Principal, ServiceError> {
        if !bearer.starts_with(PREFIX) {
            return Err(ServiceError::Unauthenticated);
        }
        let hash = secret::hash(bearer);
        let lookup = self
            .store()
            .get(&lookup_pk(&hash), "SCIM")
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let (Some(owner), Some(id)) = (lookup.str("team"), lookup.str("id")) else {
            return Err(ServiceError::Unauthenticated);
        };
        if owner != team.as_str() {
            return Err(ServiceError::Unauthenticated);
        }
        let item = self
            .store()
            .get(&codec::team_pk(team), &token_sk(id))
            .await?
            .ok_or(ServiceError::Unauthenticated)?;
        let record: TokenRecord = codec::decode(&item, &[])?;
        if !secret::matches(bearer, &record.hash) {
            return Err(ServiceError::Unauthenticated);
        }
        Ok(Principal::Scim {
            team: team.clone(),
            id: record.view.id,
            permissions: record.permissions,
            default_role: record.view.default_role,
        })
    }
}
