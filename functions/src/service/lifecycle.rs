//! The lifecycle of people in a team beyond what a plan does: accepting an
//! invitation through its link, resending and revoking one, leaving, and the
//! two-step ownership transfer (the owner confirms, then the new owner
//! accepts).
//!
//! Links are single use: the `TOKEN#` item is deleted in the transaction that
//! uses it, under the team version, so of two concurrent uses one wins and the
//! other finds the link gone. Expiry is checked here, never left to TTL.

use serde::{Deserialize, Serialize};
use serde_json::json;
use teamform_core::model::{Member, Roles};
use teamform_core::{Change, ChangeError, Email, TeamId, TeamState, Timestamp};

use crate::auth::Principal;
use crate::auth::secret;
use crate::code;
use crate::service::expiry;
use crate::service::scoped::{Entry, Scoped, bookkeeping};
use crate::service::{Applied, Mail, Service, ServiceError, link_items};
use crate::store::codec;
use crate::store::{Condition, Item, Write};

/// What a link resolves to.
struct Link {
    pk: String,
    kind: String,
    team: TeamId,
    email: Email,
    /// The id of the invitation's or transfer's link this opens.
    link: String,
    valid_until: Timestamp,
}

/// A person's membership, as `GET /me/teams` and accepting show it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Membership {
    pub team: TeamId,
    /// The person's roles, where the answer knows them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<teamform_core::RoleName>>)]
    pub roles: Option<Roles>,
    /// The team's version after the operation, where there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
}

/// Which emailed link a page opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Invitation,
    /// The owner confirms a transfer they started.
    TransferConfirm,
    /// The new owner accepts a confirmed transfer.
    TransferAccept,
}

/// What a link offers, as its page shows it before anyone acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPreview {
    pub kind: LinkKind,
    pub team: TeamId,
    pub team_name: String,
    /// The person the link is addressed to.
    pub email: Email,
    /// The roles an invitation gives.
    pub roles: Option<Roles>,
    pub invited_by: Option<String>,
    /// The owner passing a team on.
    pub from: Option<Email>,
    pub expires_at: Timestamp,
}

fn gone(code: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::Gone {
        code,
        message: message.into(),
    }
}

/// The person a principal is, for links addressed to one person.
fn acts_as(who: &Principal, email: &Email) -> Result<(), ServiceError> {
    match who {
        Principal::LocalOwner => Ok(()),
        Principal::Person { email: me, .. } if me == email => Ok(()),
        Principal::Person { .. } => Err(ServiceError::Forbidden(format!(
            "this link is addressed to {email}"
        ))),
        Principal::ApiKey { .. } | Principal::Scim { .. } => Err(ServiceError::Forbidden(
            "links are used by people, not API keys".into(),
        )),
    }
}

/// A link into a team that requires 2FA is used only after a sign-in with
/// a second factor (the person is not yet, or not only, a member).
fn require_2fa(who: &Principal, state: &TeamState) -> Result<(), ServiceError> {
    if who.lacks_required_2fa(state) {
        return Err(ServiceError::TwoFactorRequired(format!(
            "team {} requires a second factor: sign in with one, then use the link",
            state.team
        )));
    }
    Ok(())
}

fn delete(pk: String, sk: impl Into<String>, condition: Condition) -> Write {
    Write::Delete {
        pk,
        sk: sk.into(),
        condition,
    }
}

fn put(item: Item, condition: Condition) -> Write {
    Write::Put { item, condition }
}

impl Service {
    /// Resolves a link secret of the given kind; unknown or used links are gone.
    async fn link(
        &self,
        secret: &str,
        kind: &str,
        invalid: &'static str,
    ) -> Result<Link, ServiceError> {
        let pk = format!("TOKEN#{}", secret::hash(secret));
        let item = self.store().get(&pk, "TOKEN").await?;
        let item = item
            .filter(|i| i.str("kind") == Some(kind))
            .ok_or_else(|| {
                gone(
                    invalid,
                    "this link is not valid: it was used, replaced, revoked or never existed",
                )
            })?;
        let parse = |name: &str| item.str(name).and_then(|s| s.parse::<Timestamp>().ok());
        let (Some(team), Some(email), Some(link), Some(valid_until)) = (
            item.str("team").and_then(|t| TeamId::parse(t).ok()),
            item.str("email").and_then(|e| Email::parse(e).ok()),
            item.str("link").filter(|l| !l.is_empty()),
            parse("valid_until"),
        ) else {
            return Err(gone(invalid, "this link is not valid"));
        };
        Ok(Link {
            pk,
            kind: kind.to_owned(),
            team,
            email,
            link: link.to_owned(),
            valid_until,
        })
    }

    /// What a link offers, for the page it opens in a browser: read only,
    /// consumes nothing and needs no sign-in (the link itself is the
    /// secret). Refuses dead links exactly as using them would.
    pub async fn preview_link(
        &self,
        secret: &str,
        kind: LinkKind,
    ) -> Result<LinkPreview, ServiceError> {
        let now = self.now();
        let (token_kind, invalid) = match kind {
            LinkKind::Invitation => ("invitation", "invitation_invalid"),
            LinkKind::TransferConfirm => ("transfer", "transfer_invalid"),
            LinkKind::TransferAccept => ("transfer_accept", "transfer_invalid"),
        };
        let link = self.link(secret, token_kind, invalid).await?;
        let scoped = self
            .load_scoped(&link.team, &Principal::LocalOwner, [&link.email])
            .await?
            .ok_or_else(|| gone(invalid, "the team is gone"))?;
        crate::service::close::refuse_if_closing(&scoped)?;
        let state = &scoped.state;
        let mut preview = LinkPreview {
            kind,
            team: state.team.clone(),
            team_name: state.display_name.clone(),
            email: link.email.clone(),
            roles: None,
            invited_by: None,
            from: None,
            expires_at: link.valid_until,
        };
        if kind == LinkKind::Invitation {
            let inv = state
                .invitations
                .get(&link.email)
                .filter(|inv| inv.link == link.link)
                .ok_or_else(|| {
                    gone(
                        "invitation_invalid",
                        "this invitation was revoked, replaced or already accepted",
                    )
                })?;
            if inv.is_expired(now) || now >= link.valid_until {
                return Err(gone(
                    "invitation_expired",
                    "this invitation has expired; ask for a new one",
                ));
            }
            preview.roles = Some(inv.roles.clone());
            preview.invited_by = inv.invited_by.clone();
            preview.expires_at = inv.expires_at.min(link.valid_until);
        } else {
            let transfer = self.pending_transfer(state, &link, now)?;
            preview.from = Some(transfer.from.clone());
            preview.email = transfer.to.clone();
            preview.expires_at = transfer.expires_at;
            if kind == LinkKind::TransferConfirm {
                // The owner confirms: the link is addressed to the owner.
                preview.email = link.email.clone();
            }
        }
        Ok(preview)
    }

    /// Opens a link for the person it is addressed to: resolves it, checks
    /// the link's own expiry when `expired` names the error to give, loads
    /// its team, and checks that team's 2FA requirement.
    async fn open_link(
        &self,
        secret: &str,
        who: &Principal,
        kind: &str,
        invalid: &'static str,
        expired: Option<(&'static str, &'static str)>,
        now: Timestamp,
    ) -> Result<(Link, Scoped), ServiceError> {
        let link = self.link(secret, kind, invalid).await?;
        acts_as(who, &link.email)?;
        if let Some((code, message)) = expired
            && now >= link.valid_until
        {
            return Err(gone(code, message));
        }
        let scoped = self
            .load_scoped(&link.team, who, [&link.email])
            .await?
            .ok_or_else(|| gone(invalid, "the team is gone"))?;
        require_2fa(who, &scoped.state)?;
        Ok((link, scoped))
    }

    /// Accepts an invitation: the invited person becomes a member with the
    /// invitation's roles. The link works once and not after it expires.
    pub async fn accept_invitation(
        &self,
        secret: &str,
        who: &Principal,
    ) -> Result<Membership, ServiceError> {
        let now = self.now();
        let expired = (
            code::INVITATION_EXPIRED,
            "this invitation has expired; ask for a new one",
        );
        let (link, mut scoped) = self
            .open_link(
                secret,
                who,
                "invitation",
                code::INVITATION_INVALID,
                Some(expired),
                now,
            )
            .await?;
        let state = &mut scoped.state;
        let inv = match state.invitations.get(&link.email) {
            Some(inv) if inv.link == link.link => inv.clone(),
            Some(_) => {
                return Err(gone(
                    code::INVITATION_INVALID,
                    "this link was replaced by a newer invitation",
                ));
            }
            None => {
                return Err(gone(
                    code::INVITATION_INVALID,
                    "this invitation was revoked or already accepted",
                ));
            }
        };
        if inv.is_expired(now) {
            return Err(gone(
                code::INVITATION_EXPIRED,
                "this invitation has expired; ask for a new one",
            ));
        }
        let before = Entry::of(state, &inv.email);
        state.invitations.remove(&inv.email);
        let member = Member {
            email: inv.email.clone(),
            name: inv.name.clone(),
            roles: inv.roles.clone(),
            joined_at: now,
            // What the joining sign-in showed; the members list reports it.
            two_factor: matches!(
                who,
                Principal::Person {
                    two_factor: true,
                    ..
                }
            ),
        };
        state.members.insert(member.email.clone(), member.clone());
        state
            .check_invariants()
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let team_pk = codec::team_pk(&state.team);
        let after = Entry::of(state, &inv.email);
        let bookkept = bookkeeping(
            &state.team,
            &inv.email,
            (&before, &state.roles),
            (&after, &state.roles),
            &mut scoped.counts,
        );
        let mut writes = vec![
            delete(link.pk.clone(), "TOKEN", Condition::Exists),
            delete(
                team_pk.clone(),
                codec::invite_sk(&inv.email),
                Condition::Exists,
            ),
            put(
                codec::member_item(&state.team, &member)?,
                Condition::NotExists,
            ),
            put(
                Item::new(codec::user_pk(&inv.email), team_pk)
                    .with("type", "user_team")
                    .with("team", state.team.as_str())
                    .with("joined_at", now.to_rfc3339()),
                Condition::None,
            ),
        ];
        writes.extend(bookkept);
        writes.extend(expiry::due_writes(
            &state.team,
            &inv.email,
            Some(inv.expires_at),
            None,
        ));
        let detail = json!({ "email": inv.email, "roles": inv.roles, "kind": link.kind });
        let version = self
            .commit_operation(&scoped, who, "accept_invitation", detail, writes)
            .await?;
        Ok(Membership {
            team: scoped.state.team,
            roles: Some(inv.roles),
            version: Some(version),
        })
    }

    /// A new link for a pending invitation (the old one stops working).
    pub async fn resend_invitation(
        &self,
        team: &TeamId,
        who: &Principal,
        email: &Email,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[email], expected, |state| {
            let inv = state.invitations.get(email).ok_or(ServiceError::NotFound)?;
            Ok(Change::Reinvite {
                email: inv.email.clone(),
                name: inv.name.clone(),
                roles: inv.roles.clone(),
                expired_at: inv.expires_at,
            })
        })
        .await
    }

    pub async fn revoke_invitation(
        &self,
        team: &TeamId,
        who: &Principal,
        email: &Email,
        expected: Option<u64>,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[email], expected, |state| {
            let inv = state.invitations.get(email).ok_or(ServiceError::NotFound)?;
            Ok(Change::RevokeInvitation {
                email: inv.email.clone(),
                roles: inv.roles.clone(),
                created_at: inv.created_at,
            })
        })
        .await
    }

    /// A member leaves the team. The owner cannot: ownership must pass first.
    pub async fn leave(&self, team: &TeamId, who: &Principal) -> Result<u64, ServiceError> {
        let Principal::Person { email, .. } = who else {
            return Err(ServiceError::Forbidden(
                "only a person can leave a team".into(),
            ));
        };
        // Leaving needs no second factor: nobody is kept in a team they cannot enter.
        let mut scoped = self
            .load_scoped(team, who, [email])
            .await?
            .ok_or(ServiceError::NotFound)?;
        let state = &mut scoped.state;
        if who.standing(state) == crate::auth::Standing::Outsider {
            return Err(ServiceError::NotFound);
        }
        if email == &state.owner {
            return Err(ServiceError::Change {
                index: 0,
                action: "leave",
                error: ChangeError::OwnerProtected(email.to_string()),
            });
        }
        let before = Entry::of(state, email);
        let member = state.members.remove(email).ok_or(ServiceError::NotFound)?;
        if state.transfer.as_ref().is_some_and(|t| &t.to == email) {
            return Err(ServiceError::Conflict(
                "an ownership transfer to you is pending; it must be cancelled first".into(),
            ));
        }
        let team_pk = codec::team_pk(team);
        let mut writes = vec![
            delete(team_pk.clone(), codec::member_sk(email), Condition::Exists),
            delete(codec::user_pk(email), team_pk, Condition::None),
        ];
        let after = Entry::of(state, email);
        writes.extend(bookkeeping(
            team,
            email,
            (&before, &state.roles),
            (&after, &state.roles),
            &mut scoped.counts,
        ));
        let detail = json!({ "email": member.email, "roles": member.roles });
        self.commit_operation(&scoped, who, "leave", detail, writes)
            .await
    }

    /// The teams a person belongs to.
    pub async fn my_teams(&self, who: &Principal) -> Result<Vec<Membership>, ServiceError> {
        let Principal::Person { email, .. } = who else {
            return Err(ServiceError::Forbidden(
                "only a person belongs to teams".into(),
            ));
        };
        let items = self
            .store()
            .query_all(&codec::user_pk(email), "TEAM#")
            .await?;
        Ok(items
            .iter()
            .filter_map(|i| i.str("team").and_then(|t| TeamId::parse(t).ok()))
            .map(|team| Membership {
                team,
                roles: None,
                version: None,
            })
            .collect())
    }

    /// Step one of a transfer: the owner starts it and is sent a link to confirm.
    pub async fn start_transfer(
        &self,
        team: &TeamId,
        who: &Principal,
        to: &Email,
    ) -> Result<Applied, ServiceError> {
        self.single_change(team, who, &[to], None, |state| {
            Ok(Change::TransferOwnership {
                from: state.owner.clone(),
                to: to.clone(),
            })
        })
        .await
    }

    /// Cancels a pending transfer (the owner only).
    pub async fn cancel_transfer(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<u64, ServiceError> {
        let mut scoped = self.visible_scoped(team, who, []).await?;
        let state = &mut scoped.state;
        if !who.may(
            state,
            self.catalog(),
            teamform_core::change::Requirement::Owner,
        ) {
            return Err(ServiceError::Forbidden(
                "only the owner may cancel a transfer".into(),
            ));
        }
        let transfer = state.transfer.take().ok_or(ServiceError::NotFound)?;
        let writes = vec![delete(
            codec::team_pk(team),
            codec::TRANSFER,
            Condition::Exists,
        )];
        self.commit_operation(
            &scoped,
            who,
            "cancel_transfer",
            json!({ "to": transfer.to }),
            writes,
        )
        .await
    }

    /// Step two: the current owner confirms through the link; the new owner
    /// is then sent a link to accept.
    pub async fn confirm_transfer(
        &self,
        secret: &str,
        who: &Principal,
    ) -> Result<u64, ServiceError> {
        let now = self.now();
        let (link, mut scoped) = self
            .open_link(secret, who, "transfer", code::TRANSFER_INVALID, None, now)
            .await?;
        let state = &mut scoped.state;
        let mut transfer = self.pending_transfer(state, &link, now)?;
        if state.owner != link.email {
            return Err(gone(
                code::TRANSFER_INVALID,
                "ownership changed since this transfer started",
            ));
        }
        transfer.owner_confirmed = true;
        transfer.link = secret::id();
        state.transfer = Some(transfer.clone());
        let accept = secret::generate("tft_");
        let [token, link_ref] = link_items(
            &accept.hash,
            "transfer_accept",
            &state.team,
            &transfer.to,
            &transfer.link,
            transfer.expires_at,
        );
        let writes = vec![
            delete(link.pk.clone(), "TOKEN", Condition::Exists),
            put(
                codec::transfer_item(&state.team, &transfer)?,
                Condition::Exists,
            ),
            put(token, Condition::NotExists),
            put(link_ref, Condition::None),
        ];
        let mail = Mail {
            to: transfer.to.to_string(),
            subject: format!(
                "{} would like you to own {}",
                transfer.from, state.display_name
            ),
            body: format!(
                "{} confirmed passing ownership of {} to you. Accept: {}/ownership/accept?token={}\n\nThe offer expires on {}.\n",
                transfer.from,
                state.display_name,
                self.public_url(),
                accept.secret,
                transfer.expires_at.format("%Y-%m-%d %H:%M UTC"),
            ),
        };
        let detail = json!({ "from": transfer.from, "to": transfer.to });
        self.commit_operation_mailing(&scoped, who, "confirm_transfer", detail, writes, vec![mail])
            .await
    }

    /// Step three: the new owner accepts; ownership passes atomically and the
    /// previous owner keeps the catalog's `previous_owner_role`.
    pub async fn accept_transfer(
        &self,
        secret: &str,
        who: &Principal,
    ) -> Result<Membership, ServiceError> {
        let now = self.now();
        let (link, mut scoped) = self
            .open_link(
                secret,
                who,
                "transfer_accept",
                code::TRANSFER_INVALID,
                None,
                now,
            )
            .await?;
        let state = &mut scoped.state;
        let transfer = self.pending_transfer(state, &link, now)?;
        if !transfer.owner_confirmed || transfer.to != link.email || state.owner != transfer.from {
            return Err(gone(
                code::TRANSFER_INVALID,
                "this transfer is not waiting for you",
            ));
        }
        let was_invited = state.invitations.get(&transfer.to).map(|i| i.expires_at);
        let people = [transfer.to.clone(), transfer.from.clone()];
        let before: Vec<Entry> = people.iter().map(|e| Entry::of(state, e)).collect();
        let roles_before = state.roles.clone();
        state.complete_transfer(self.catalog(), now);
        state
            .check_invariants()
            .map_err(|e| ServiceError::Conflict(e.to_string()))?;
        let team_pk = codec::team_pk(&state.team);
        let mut writes = vec![
            delete(link.pk.clone(), "TOKEN", Condition::Exists),
            delete(team_pk.clone(), codec::TRANSFER, Condition::Exists),
        ];
        for email in [&transfer.to, &transfer.from] {
            if let Some(m) = state.members.get(email) {
                writes.push(put(codec::member_item(&state.team, m)?, Condition::None));
            }
        }
        if let Some(expires_at) = was_invited {
            writes.push(delete(
                team_pk.clone(),
                codec::invite_sk(&transfer.to),
                Condition::Exists,
            ));
            writes.extend(expiry::due_writes(
                &state.team,
                &transfer.to,
                Some(expires_at),
                None,
            ));
        }
        writes.push(put(
            Item::new(codec::user_pk(&transfer.to), team_pk)
                .with("type", "user_team")
                .with("team", state.team.as_str())
                .with("joined_at", now.to_rfc3339()),
            Condition::None,
        ));
        for (email, before) in people.iter().zip(&before) {
            let after = Entry::of(state, email);
            writes.extend(bookkeeping(
                &state.team,
                email,
                (before, &roles_before),
                (&after, &state.roles),
                &mut scoped.counts,
            ));
        }
        let detail = json!({ "from": transfer.from, "to": transfer.to, "previous_owner_role": self.catalog().previous_owner_role });
        let version = self
            .commit_operation(&scoped, who, "complete_transfer", detail, writes)
            .await?;
        let state = scoped.state;
        let roles = state.members.get(&transfer.to).map(|m| m.roles.clone());
        Ok(Membership {
            team: state.team,
            roles,
            version: Some(version),
        })
    }

    fn pending_transfer(
        &self,
        state: &TeamState,
        link: &Link,
        now: Timestamp,
    ) -> Result<teamform_core::model::PendingTransfer, ServiceError> {
        let transfer = state
            .transfer
            .clone()
            .filter(|t| t.link == link.link)
            .ok_or_else(|| {
                gone(
                    code::TRANSFER_INVALID,
                    "this transfer was cancelled or replaced",
                )
            })?;
        if now >= transfer.expires_at || now >= link.valid_until {
            return Err(gone(
                code::TRANSFER_EXPIRED,
                "this transfer has expired; the owner may start a new one",
            ));
        }
        Ok(transfer)
    }
}
