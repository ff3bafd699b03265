//! The item codec shared by every backend: where each piece of a team lives
//! (`pk`/`sk`) and how it is encoded as attributes.
//!
//! Layout (single table):
//! - `TEAM#<id>` / `META`: display name, owner, settings, version
//! - `TEAM#<id>` / `MEMBER#<email>`, `INVITE#<email>`, `ROLE#<name>`, `TRANSFER`
//! - `TEAM#<id>` / `AUDIT#<version>#<seq>`: one per applied change
//! - `TEAM#<id>` / `OUTBOX#<version>#<seq>`: an email to send, written with its change
//! - `TEAM#<id>` / `APIKEY#<id>`: an API key's name, roles and hash
//! - `TEAM#<id>` / `HOLDER#<role>#<email>`: who holds a custom role (members
//!   and invitations), so a role still in use is found without reading the team
//! - `TEAM#<id>` / `INTENT#<intent>#<chunk>`: the prepared writes of a batch
//!   larger than one transaction, while it is applied (see `crate::service::intent`);
//!   `META` names it in `applying` until the last part is in
//! - `TEAM#<id>` / `LINK#<sha256>`: names each `TOKEN#` look-up the team's
//!   links wrote, so deleting a closed team finds them without a scan
//! - `TEAM#<id>` / `IDEMP#<digest>`: names the `Idempotency-Key` record of
//!   a request about the team (`crate::http::idempotency`), for the same reason
//! - `CLOSING` / `DUE#<epoch seconds>#<id>`: a closing team and when it is
//!   deleted, in deadline order, for the sweep (`crate::service::close`)
//! - `EXPIRING` / `DUE#<epoch seconds>#<id>#<email>`: a pending invitation
//!   and when it expires, for the expiry sweep (`crate::service::expiry`)
//! - `KEY#<sha256>` / `KEY`, `PAT#<sha256>` / `PAT`, `TOKEN#<sha256>` / `TOKEN`: look-ups
//! - `USER#<email>` / `TEAM#<id>`: a person's teams; `USER#<email>` / `PAT#<id>`: their tokens
//!
//! Emails in keys are the normalized form. Invitation items keep their
//! expiry as an RFC 3339 string, which DynamoDB TTL ignores on purpose: an
//! expired invitation stays visible until it is re-invited or revoked. Items
//! that should vanish carry a numeric `expires_at` (epoch seconds).

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use teamform_core::model::{CustomRole, Invitation, Member, PendingTransfer, Settings};
use teamform_core::{Email, RoleName, TeamId, TeamState};

use crate::store::{Item, StoreError, TextItem};

pub const META: &str = "META";
pub const TRANSFER: &str = "TRANSFER";
pub const MEMBER: &str = "MEMBER#";
pub const INVITE: &str = "INVITE#";
pub const ROLE: &str = "ROLE#";
pub const AUDIT: &str = "AUDIT#";
pub const OUTBOX: &str = "OUTBOX#";
pub const APIKEY: &str = "APIKEY#";
pub const HOLDER: &str = "HOLDER#";
pub const INTENT: &str = "INTENT#";
pub const LINK: &str = "LINK#";
/// The partition listing closing teams by deadline.
pub const CLOSING_PK: &str = "CLOSING";
pub const DUE: &str = "DUE#";

pub fn team_pk(team: &TeamId) -> String {
    format!("TEAM#{team}")
}
pub fn member_sk(email: &Email) -> String {
    format!("{MEMBER}{}", email.key())
}
pub fn invite_sk(email: &Email) -> String {
    format!("{INVITE}{}", email.key())
}
pub fn role_sk(name: &RoleName) -> String {
    format!("{ROLE}{name}")
}
/// Where the holders of one custom role are listed.
pub fn holders_prefix(role: &RoleName) -> String {
    format!("{HOLDER}{role}#")
}
pub fn holder_sk(role: &RoleName, email: &Email) -> String {
    format!("{}{}", holders_prefix(role), email.key())
}
pub fn holder_item(team: &TeamId, role: &RoleName, email: &Email) -> Item {
    Item::new(team_pk(team), holder_sk(role, email))
        .with("type", "role_holder")
        .with("email", email.as_str())
}
pub fn user_pk(email: &Email) -> String {
    format!("USER#{}", email.key())
}
/// Where the chunks of one intent are kept.
pub fn intent_prefix(intent: &str) -> String {
    format!("{INTENT}{intent}#")
}
pub fn intent_sk(intent: &str, chunk: usize) -> String {
    format!("{}{chunk:04}", intent_prefix(intent))
}
/// The reference a team keeps to one of its `TOKEN#<hash>` look-ups.
pub fn link_ref_item(team: &TeamId, hash: &str, expires_at: i64) -> Item {
    Item::new(team_pk(team), format!("{LINK}{hash}"))
        .with("type", "link_ref")
        .with("expires_at", expires_at)
}
/// A closing team's entry in the sweep's list: sorted by deadline.
pub fn due_sk(deletes_at: i64, team: &TeamId) -> String {
    format!("{DUE}{:012}#{team}", deletes_at.max(0))
}
/// Audit and outbox keys sort by version, then by position in the batch.
pub fn event_sk(prefix: &str, version: u64, seq: usize) -> String {
    format!("{prefix}{version:012}#{seq:04}")
}

/// Attributes of a serializable value, plus the item's `type`.
pub fn encode<T: Serialize>(
    pk: String,
    sk: String,
    kind: &str,
    value: &T,
) -> Result<Item, StoreError> {
    let attrs = match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(StoreError::Malformed(format!(
                "{kind} does not encode as a map"
            )));
        }
        Err(e) => return Err(StoreError::Malformed(format!("{kind}: {e}"))),
    };
    let mut item = Item { pk, sk, attrs };
    item.attrs.insert("type".into(), kind.into());
    Ok(item)
}

/// Reads a value back from an item, ignoring bookkeeping attributes.
pub fn decode<T: DeserializeOwned>(item: &Item, extra: &[&str]) -> Result<T, StoreError> {
    let mut attrs: Map<String, Value> = item.attrs.clone();
    attrs.remove("type");
    for name in extra {
        attrs.remove(*name);
    }
    serde_json::from_value(Value::Object(attrs))
        .map_err(|e| StoreError::Malformed(format!("{} / {}: {e}", item.pk, item.sk)))
}

/// Reads a value back from an item it owns, without copying its attributes.
pub fn decode_owned<T: DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    let Item { pk, sk, mut attrs } = item;
    attrs.remove("type");
    serde_json::from_value(Value::Object(attrs))
        .map_err(|e| StoreError::Malformed(format!("{pk} / {sk}: {e}")))
}

/// Reads a value straight from an item's attributes as JSON text, leaving
/// out its `type`, as `decode_owned` does from a map: each attribute is
/// read from the text where it stands (no map of `Value`s in between).
pub fn decode_text<T: DeserializeOwned>(item: &TextItem) -> Result<T, StoreError> {
    use serde::de::value::MapDeserializer;
    use serde_json::value::RawValue;
    let malformed =
        |e: serde_json::Error| StoreError::Malformed(format!("{} / {}: {e}", item.pk, item.sk));
    let attrs: BTreeMap<&str, &RawValue> = serde_json::from_str(&item.attrs).map_err(malformed)?;
    let fields = attrs.into_iter().filter(|(name, _)| *name != "type");
    T::deserialize(MapDeserializer::<_, serde_json::Error>::new(fields)).map_err(malformed)
}

/// How many members and pending invitations a team has, kept on `META` and
/// written in the transaction of every change that moves them, so that the
/// seat limit is checked without reading the team.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Counts {
    pub members: u64,
    pub invitations: u64,
}

impl Counts {
    pub fn seats(&self) -> u64 {
        self.members + self.invitations
    }
}

/// The team-level fields, held on the `META` item with the version.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Meta {
    pub team: TeamId,
    pub display_name: String,
    pub owner: Email,
    pub settings: Settings,
    pub version: u64,
    #[serde(default)]
    pub counts: Counts,
    /// A batch in progress: every access finishes it before going on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applying: Option<Applying>,
    /// The team is closed and waits for deletion (`crate::service::close`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing: Option<Closing>,
}

/// A closed team: refused to everyone but its owner, who may read it or
/// reopen it until `deletes_at`; then the sweep archives its audit trail and
/// deletes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Closing {
    pub closed_at: teamform_core::Timestamp,
    pub deletes_at: teamform_core::Timestamp,
    /// The actor who closed it, as the audit trail names actors.
    pub by: String,
    /// The audit trail is archived and deletion has begun: no way back.
    #[serde(default)]
    pub deleting: bool,
}

/// The batch a team is in the middle of applying: the intent holding its
/// parts, and where the parts stand. Part `i` (from 0) takes the team from
/// version `base + i` to `base + i + 1`, so `version - base` parts are in.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Applying {
    pub intent: String,
    pub base: u64,
    pub parts: u64,
    /// How many `INTENT#<intent>#` items hold the parts.
    pub chunks: u64,
    /// Whether the batch writes outbox items (a local host delivers them
    /// once it is complete).
    #[serde(default)]
    pub mails: bool,
    /// Written when the batch completes: the kept response of the request
    /// that started it (its `Idempotency-Key`), so that a retry after a
    /// crash replays the result instead of running again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<crate::store::Item>,
}

impl Applying {
    /// The version the team reaches when the last part is in.
    pub fn target(&self) -> u64 {
        self.base + self.parts
    }
}

impl Meta {
    pub fn of(state: &TeamState, counts: Counts) -> Meta {
        Meta {
            team: state.team.clone(),
            display_name: state.display_name.clone(),
            owner: state.owner.clone(),
            settings: state.settings.clone(),
            version: state.version,
            counts,
            applying: None,
            closing: None,
        }
    }

    pub fn item(&self) -> Result<Item, StoreError> {
        encode(team_pk(&self.team), META.into(), "team", self)
    }
}

pub fn member_item(team: &TeamId, m: &Member) -> Result<Item, StoreError> {
    encode(team_pk(team), member_sk(&m.email), "member", m)
}

/// An invitation. Its link lives in a `TOKEN#` item bound to `created_at`,
/// so a re-invite (new `created_at`) kills every earlier link.
pub fn invite_item(team: &TeamId, inv: &Invitation) -> Result<Item, StoreError> {
    encode(team_pk(team), invite_sk(&inv.email), "invitation", inv)
}

#[derive(Serialize, serde::Deserialize)]
struct RoleItem {
    name: RoleName,
    #[serde(flatten)]
    role: CustomRole,
}

pub fn role_item(team: &TeamId, name: &RoleName, role: &CustomRole) -> Result<Item, StoreError> {
    encode(
        team_pk(team),
        role_sk(name),
        "role",
        &RoleItem {
            name: name.clone(),
            role: role.clone(),
        },
    )
}

pub fn transfer_item(team: &TeamId, t: &PendingTransfer) -> Result<Item, StoreError> {
    encode(team_pk(team), TRANSFER.into(), "transfer", t)
}

/// Builds a team snapshot from its items. `None` when the team has no META.
pub fn state_from_items(
    meta: Option<Item>,
    members: Vec<Item>,
    invitations: Vec<Item>,
    roles: Vec<Item>,
    transfer: Option<Item>,
) -> Result<Option<TeamState>, StoreError> {
    let Some(meta) = meta else { return Ok(None) };
    let meta: Meta = decode(&meta, &[])?;
    Ok(Some(state_from_meta(
        meta,
        &members,
        &invitations,
        &roles,
        transfer.as_ref(),
    )?))
}

/// A team snapshot holding the given items only: the whole team when they
/// are all of its items, a scoped snapshot when they are the few an
/// operation touches.
pub fn state_from_meta(
    meta: Meta,
    members: &[Item],
    invitations: &[Item],
    roles: &[Item],
    transfer: Option<&Item>,
) -> Result<TeamState, StoreError> {
    let mut state = TeamState {
        team: meta.team,
        display_name: meta.display_name,
        owner: meta.owner,
        settings: meta.settings,
        members: BTreeMap::new(),
        invitations: BTreeMap::new(),
        roles: BTreeMap::new(),
        transfer: None,
        version: meta.version,
    };
    for item in members {
        let m: Member = decode(item, &[])?;
        state.members.insert(m.email.clone(), m);
    }
    for item in invitations {
        let i: Invitation = decode(item, &[])?;
        state.invitations.insert(i.email.clone(), i);
    }
    for item in roles {
        let r: RoleItem = decode(item, &[])?;
        state.roles.insert(r.name, r.role);
    }
    if let Some(item) = transfer {
        state.transfer = Some(decode(item, &[])?);
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure is the report
    use super::*;
    use teamform_core::model::Roles;

    fn text(item: &Item) -> TextItem {
        TextItem {
            pk: item.pk.clone(),
            sk: item.sk.clone(),
            attrs: serde_json::to_string(&item.attrs).unwrap(),
        }
    }

    fn team() -> TeamId {
        TeamId::parse("acme").unwrap()
    }

    #[test]
    fn decode_text_reads_what_decode_reads() {
        let now: teamform_core::Timestamp = "2026-01-02T03:04:05.123456789Z".parse().unwrap();
        let invitation = Invitation {
            email: Email::parse("Ada@Example.com").unwrap(),
            name: Some("Ada \"the\" Countess\n".into()),
            roles: Roles::from([
                RoleName::parse("viewer").unwrap(),
                RoleName::parse("admin").unwrap(),
            ]),
            created_at: now,
            expires_at: now + chrono::Duration::days(15),
            invited_by: None,
            link: "abc".into(),
        };
        let item = invite_item(&team(), &invitation).unwrap();
        assert_eq!(item.str("type"), Some("invitation"));
        let read: Invitation = decode_text(&text(&item)).unwrap();
        assert_eq!(read, invitation);
        assert_eq!(read, decode::<Invitation>(&item, &[]).unwrap());
        let member = Member {
            email: Email::parse("bob@example.com").unwrap(),
            name: None,
            roles: Roles::from([RoleName::owner()]),
            joined_at: now,
            two_factor: true,
        };
        let item = member_item(&team(), &member).unwrap();
        assert_eq!(decode_text::<Member>(&text(&item)).unwrap(), member);
    }

    #[test]
    fn decode_text_refuses_what_decode_refuses_and_names_the_item() {
        let item = |attrs: &str| TextItem {
            pk: "TEAM#acme".into(),
            sk: "MEMBER#x".into(),
            attrs: attrs.into(),
        };
        let good = r#"{"type":"member","email":"x@example.com","roles":["viewer"],"joined_at":"2026-01-02T03:04:05Z"}"#;
        assert!(decode_text::<Member>(&item(good)).is_ok());
        for bad in [
            // An attribute the type does not know.
            r#"{"type":"member","email":"x@example.com","roles":[],"joined_at":"2026-01-02T03:04:05Z","extra":1}"#,
            // A required attribute missing.
            r#"{"type":"member","email":"x@example.com","roles":[]}"#,
            // A value of the wrong kind, an invalid email, text that is no object.
            r#"{"email":"x@example.com","roles":"viewer","joined_at":"2026-01-02T03:04:05Z"}"#,
            r#"{"email":"not an email","roles":[],"joined_at":"2026-01-02T03:04:05Z"}"#,
            r#"["member"]"#,
            r#"{"email":"#,
        ] {
            match decode_text::<Member>(&item(bad)) {
                Err(StoreError::Malformed(message)) => {
                    assert!(message.starts_with("TEAM#acme / MEMBER#x: "), "{message}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
