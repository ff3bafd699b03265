//! Credentials: team API keys (`tfk_`), personal access tokens (`tfp_`) and
//! turning a presented bearer secret into a `Principal`.
//!
//! Secrets are shown once, stored only as SHA-256 and compared in constant
//! time. A revoked key stops working at once: its look-up item is deleted in
//! the same transaction that marks it revoked.

use std::collections::BTreeSet;

use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::json;
use teamform_core::catalog::Permission;
use teamform_core::catalog::perm;
use teamform_core::change::{MAX_NAME_CHARS, check_roles, check_text};
use teamform_core::model::Roles;
use teamform_core::{Email, TeamId, Timestamp};

use crate::auth::Principal;
use crate::auth::secret;
use crate::code;
use crate::service::{Service, ServiceError, check_grant};
use crate::store::codec;
use crate::store::{Condition, Item, Write};

/// How often `last_used_at` is written at most, per key.
const LAST_USED_GRANULARITY_SECS: i64 = 60;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    #[schema(value_type = Vec<teamform_core::RoleName>)]
    pub roles: Roles,
    /// Permissions held directly, besides the roles.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub permissions: BTreeSet<Permission>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    /// Who created it.
    pub created_by: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
}

/// A credential just made: its view and the secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Created<V> {
    #[serde(flatten)]
    pub view: V,
    pub secret: String,
}

#[derive(Serialize, Deserialize)]
struct KeyRecord {
    #[serde(flatten)]
    view: ApiKeyView,
    hash: String,
}

#[derive(Serialize, Deserialize)]
struct TokenRecord {
    #[serde(flatten)]
    view: TokenView,
    hash: String,
    /// The person the token acts as; `None` for the local owner of `teamform serve`.
    #[serde(default)]
    email: Option<Email>,
    /// The token was made from a sign-in with a second factor, and carries it.
    #[serde(default)]
    two_factor: bool,
}

fn key_sk(id: &str) -> String {
    format!("{}{id}", codec::APIKEY)
}
fn key_used_sk(id: &str) -> String {
    format!("KEYUSE#{id}")
}
fn valid_until(expires_at: Option<Timestamp>) -> Option<i64> {
    expires_at.map(|t| t.timestamp())
}

impl Service {
    #[allow(clippy::too_many_arguments)]
    pub async fn create_api_key(
        &self,
        team: &TeamId,
        who: &Principal,
        name: &str,
        roles: &Roles,
        permissions: &[String],
        expires_at: Option<Timestamp>,
        expected: Option<u64>,
    ) -> Result<Created<ApiKeyView>, ServiceError> {
        let scoped = self
            .authorized_scoped(team, who, perm::API_KEYS_MANAGE)
            .await?;
        let state = &scoped.state;
        check_version(state, expected)?;
        check_credential_name(name)?;
        let catalog = self.catalog();
        let permissions = self.key_permissions(state, who, permissions)?;
        if roles.is_empty() && permissions.is_empty() {
            return Err(invalid("a key needs at least one role or permission"));
        }
        if !roles.is_empty() {
            check_roles(roles, catalog, state)
                .map_err(|error| ServiceError::invalid(error.code(), error.to_string()))?;
        }
        let mut granted = catalog.permissions_of(roles, &state.roles);
        granted.extend(permissions.iter());
        check_grant(who, state, catalog, &granted)?;
        let now = self.now();
        check_expiry(expires_at, now)?;
        let fresh = secret::generate("tfk_");
        let view = ApiKeyView {
            id: secret::id(),
            name: name.to_owned(),
            roles: roles.clone(),
            permissions,
            created_at: now,
            expires_at,
            last_used_at: None,
            created_by: who.actor(),
        };
        let record = KeyRecord {
            view: view.clone(),
            hash: fresh.hash.clone(),
        };
        let mut lookup = Item::new(format!("KEY#{}", fresh.hash), "KEY")
            .with("type", "api_key_lookup")
            .with("team", team.as_str())
            .with("id", view.id.as_str());
        if let Some(t) = valid_until(expires_at) {
            lookup = lookup.with("expires_at", t);
        }
        let writes = vec![
            Write::Put {
                item: codec::encode(codec::team_pk(team), key_sk(&view.id), "api_key", &record)?,
                condition: Condition::NotExists,
            },
            Write::Put {
                item: lookup,
                condition: Condition::NotExists,
            },
        ];
        let detail = json!({ "id": view.id, "name": view.name, "roles": view.roles, "permissions": view.permissions });
        self.commit_operation(&scoped, who, "create_api_key", detail, writes)
            .await?;
        Ok(Created {
            view,
            secret: fresh.secret,
        })
    }

    pub async fn list_api_keys(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<Vec<ApiKeyView>, ServiceError> {
        self.authorized(team, who, perm::API_KEYS_MANAGE).await?;
        let pk = codec::team_pk(team);
        let items = self.store().query_all(&pk, codec::APIKEY).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let record: KeyRecord = codec::decode(item, &[])?;
            let mut view = record.view;
            if let Some(used) = self.store().get(&pk, &key_used_sk(&view.id)).await? {
                view.last_used_at = used.str("at").and_then(|s| s.parse().ok());
            }
            out.push(view);
        }
        Ok(out)
    }

    pub async fn revoke_api_key(
        &self,
        team: &TeamId,
        who: &Principal,
        id: &str,
        expected: Option<u64>,
    ) -> Result<(), ServiceError> {
        let scoped = self
            .authorized_scoped(team, who, perm::API_KEYS_MANAGE)
            .await?;
        let state = &scoped.state;
        check_version(state, expected)?;
        let pk = codec::team_pk(team);
        let item = self
            .store()
            .get(&pk, &key_sk(id))
            .await?
            .ok_or(ServiceError::NotFound)?;
        let record: KeyRecord = codec::decode(&item, &[])?;
        let writes = vec![
            Write::Delete {
                pk: pk.clone(),
                sk: key_sk(id),
                condition: Condition::Exists,
            },
            Write::Delete {
                pk: format!("KEY#{}", record.hash),
                sk: "KEY".into(),
                condition: Condition::None,
            },
            Write::Delete {
                pk,
                sk: key_used_sk(id),
                condition: Condition::None,
            },
        ];
        let detail = json!({ "id": id, "name": record.view.name });
        self.commit_operation(&scoped, who, "revoke_api_key", detail, writes)
            .await?;
        Ok(())
    }

    /// Makes a personal access token acting as `email`, or as the local
    /// owner when `email` is `None` (only `teamform serve` does that).
    pub async fn create_token(
        &self,
        owner: &Principal,
        name: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<Created<TokenView>, ServiceError> {
        let (email, two_factor) = match owner {
            Principal::Person { email, two_factor } => (Some(email), *two_factor),
            Principal::LocalOwner if self.local_owner_tokens() => (None, false),
            Principal::LocalOwner => {
                return Err(ServiceError::Forbidden(
                    "this host does not honour local-owner tokens".into(),
                ));
            }
            Principal::ApiKey { .. } | Principal::Scim { .. } => {
                return Err(ServiceError::Forbidden(
                    "API keys cannot make personal tokens".into(),
                ));
            }
        };
        check_credential_name(name)?;
        check_expiry(expires_at, self.now())?;
        let fresh = secret::generate("tfp_");
        let view = TokenView {
            id: secret::id(),
            name: name.to_owned(),
            created_at: self.now(),
            expires_at,
        };
        let record = TokenRecord {
            view: view.clone(),
            hash: fresh.hash.clone(),
            email: email.cloned(),
            two_factor,
        };
        let owner_pk = email
            .map(codec::user_pk)
            .unwrap_or_else(|| "LOCAL#owner".to_owned());
        let mut lookup = codec::encode(
            format!("PAT#{}", fresh.hash),
            "PAT".into(),
            "token_lookup",
            &record,
        )?;
        let mut listed = codec::encode(owner_pk, format!("PAT#{}", view.id), "token", &record)?;
        if let Some(t) = valid_until(expires_at) {
            lookup.attrs.insert("expires_at".into(), t.into());
            listed.attrs.insert("expires_at".into(), t.into());
        }
        self.store()
            .transact(vec![
                Write::Put {
                    item: lookup,
                    condition: Condition::NotExists,
                },
                Write::Put {
                    item: listed,
                    condition: Condition::NotExists,
                },
            ])
            .await?;
        Ok(Created {
            view,
            secret: fresh.secret,
        })
    }

    pub async fn list_tokens(&self, who: &Principal) -> Result<Vec<TokenView>, ServiceError> {
        let pk = token_owner_pk(who)?;
        let items = self.store().query_all(&pk, "PAT#").await?;
        items
            .iter()
            .map(|i| {
                codec::decode::<TokenRecord>(i, &["expires_at"])
                    .map(|r| r.view)
                    .map_err(ServiceError::from)
            })
            .collect()
    }

    pub async fn delete_token(&self, who: &Principal, id: &str) -> Result<(), ServiceError> {
        let pk = token_owner_pk(who)?;
        let sk = format!("PAT#{id}");
        let item = self
            .store()
            .get(&pk, &sk)
            .await?
            .ok_or(ServiceError::NotFound)?;
        let record: TokenRecord = codec::decode(&item, &["expires_at"])?;
        self.store()
            .transact(vec![
                Write::Delete {
                    pk,
                    sk,
                    condition: Condition::Exists,
                },
                Write::Delete {
                    pk: format!("PAT#{}", record.hash),
                    sk: "PAT".into(),
                    condition: Condition::None,
                },
            ])
            .await?;
        Ok(())
    }

    /// Whether any personal token exists for the local owner.
    pub async fn has_local_owner_token(&self) -> Result<bool, ServiceError> {
        Ok(!self
            .store()
            .query_all("LOCAL#owner", "PAT#")
            .await?
            .is_empty())
    }

    /// Resolves a bearer secret. Unknown, revoked or expired: `Unauthenticated`.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, ServiceError> {
        let now = self.now();
        if bearer.starts_with("tfk_") {
            let hash = secret::hash(bearer);
            let lookup = self
                .store()
                .get(&format!("KEY#{hash}"), "KEY")
                .await?
                .ok_or(ServiceError::Unauthenticated)?;
            let (Some(team), Some(id)) = (lookup.str("team"), lookup.str("id")) else {
                return Err(ServiceError::Unauthenticated);
            };
            let team = TeamId::parse(team).map_err(|_| ServiceError::Unauthenticated)?;
            let pk = codec::team_pk(&team);
            let item = self
                .store()
                .get(&pk, &key_sk(id))
                .await?
                .ok_or(ServiceError::Unauthenticated)?;
            let record: KeyRecord = codec::decode(&item, &[])?;
            if !secret::matches(bearer, &record.hash)
                || record.view.expires_at.is_some_and(|t| now >= t)
            {
                return Err(ServiceError::Unauthenticated);
            }
            self.touch_key(&pk, id, now).await;
            return Ok(Principal::ApiKey {
                team,
                id: record.view.id,
                roles: record.view.roles,
                permissions: record.view.permissions,
            });
        }
        if bearer.starts_with("tfp_") {
            let hash = secret::hash(bearer);
            let item = self
                .store()
                .get(&format!("PAT#{hash}"), "PAT")
                .await?
                .ok_or(ServiceError::Unauthenticated)?;
            let record: TokenRecord = codec::decode(&item, &["expires_at"])?;
            if !secret::matches(bearer, &record.hash)
                || record.view.expires_at.is_some_and(|t| now >= t)
            {
                return Err(ServiceError::Unauthenticated);
            }
            return match record.email {
                Some(email) => Ok(Principal::Person {
                    email,
                    two_factor: record.two_factor,
                }),
                None if self.local_owner_tokens() => Ok(Principal::LocalOwner),
                None => Err(ServiceError::Unauthenticated),
            };
        }
        Err(ServiceError::Unauthenticated)
    }

    /// Records when a key was last used, at most once a minute. Best effort:
    /// a failure here must not fail the request it rides on.
    async fn touch_key(&self, pk: &str, id: &str, now: Timestamp) {
        let sk = key_used_sk(id);
        if let Ok(Some(item)) = self.store().get(pk, &sk).await {
            let recent = item
                .str("at")
                .and_then(|s| s.parse::<Timestamp>().ok())
                .is_some_and(|t| now - t < Duration::seconds(LAST_USED_GRANULARITY_SECS));
            if recent {
                return;
            }
        }
        let item = Item::new(pk, sk)
            .with("type", "api_key_use")
            .with("at", now.to_rfc3339());
        if let Err(e) = self
            .store()
            .transact(vec![Write::Put {
                item,
                condition: Condition::None,
            }])
            .await
        {
            tracing::warn!(error = %e, "could not record API key use");
        }
    }
}

fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid {
        code: code::VALIDATION_FAILED,
        message: message.into(),
    }
}

/// Names of API keys and personal tokens: shown on pages and in audit, so
/// held to the rule of every name (no control characters, bounded).
fn check_credential_name(name: &str) -> Result<(), ServiceError> {
    check_text("name", name, MAX_NAME_CHARS).map_err(|e| invalid(e.to_string()))
}

/// A credential's expiry, when it has one, lies in the future.
fn check_expiry(expires_at: Option<Timestamp>, now: Timestamp) -> Result<(), ServiceError> {
    if expires_at.is_some_and(|t| t <= now) {
        return Err(invalid("expires_at is in the past"));
    }
    Ok(())
}

impl Service {
    /// The permissions a new key holds directly: each must be in the catalog;
    /// `*` stands for every permission the creator holds.
    fn key_permissions(
        &self,
        state: &teamform_core::TeamState,
        who: &Principal,
        asked: &[String],
    ) -> Result<BTreeSet<Permission>, ServiceError> {
        let catalog = self.catalog();
        let mut out = BTreeSet::new();
        for p in asked {
            if p == "*" {
                let held = who.held(state, catalog).ok_or(ServiceError::NotFound)?;
                out.extend(
                    catalog
                        .permissions
                        .iter()
                        .filter(|d| held.has(d.id.as_str()))
                        .map(|d| d.id.clone()),
                );
                continue;
            }
            match catalog.permission(p) {
                Some(def) => {
                    out.insert(def.id.clone());
                }
                None => {
                    return Err(ServiceError::invalid(
                        code::UNKNOWN_PERMISSION,
                        format!("unknown permission `{p}`"),
                    ));
                }
            }
        }
        Ok(out)
    }
}

/// `If-Match`: the team must still be at the version the caller saw. The
/// commit that follows is conditioned on the same version, so the check holds
/// atomically.
fn check_version(
    state: &teamform_core::TeamState,
    expected: Option<u64>,
) -> Result<(), ServiceError> {
    match expected {
        Some(expected) if expected != state.version => Err(ServiceError::VersionConflict {
            expected,
            actual: state.version,
        }),
        _ => Ok(()),
    }
}

fn token_owner_pk(who: &Principal) -> Result<String, ServiceError> {
    match who {
        Principal::Person { email, .. } => Ok(codec::user_pk(email)),
        Principal::LocalOwner => Ok("LOCAL#owner".to_owned()),
        Principal::ApiKey { .. } | Principal::Scim { .. } => Err(ServiceError::Forbidden(
            "personal tokens belong to people, not to API keys".into(),
        )),
    }
}
