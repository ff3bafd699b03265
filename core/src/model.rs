//! The model of a team as it lives in the service: identities (`Email`,
//! `TeamId`), members, invitations, custom roles, settings, a pending
//! ownership transfer, and the whole `TeamState` snapshot with its version.
//!
//! Constructors validate; a value of these types is always well formed.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{Hash, Hasher};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

use crate::catalog::{Permission, RoleName};

pub type Timestamp = DateTime<Utc>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("`{0}` is not a valid email address")]
    Email(String),
    #[error(
        "`{0}` is not a valid team id: use 2 to 63 lowercase letters, digits and dashes, starting with a letter"
    )]
    TeamId(String),
}

/// An email address. Identity is case-insensitive (the normalized form is
/// lowercase); the address is shown as it was written.
#[derive(Clone)]
pub struct Email {
    written: Box<str>,
    /// The normalized form when it differs from `written`: most addresses
    /// are written in lowercase, and a team of 100,000 holds each one
    /// several times (map keys, values, the plan's sides).
    lowered: Option<Box<str>>,
}

impl Email {
    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let written = s.trim();
        let bad = || ModelError::Email(s.to_owned());
        if written.len() > 254 || written.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = written.rsplit_once('@').ok_or_else(bad)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !local_ok || !domain_ok {
            return Err(bad());
        }
        let lowered = if written
            .bytes()
            .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
        {
            Some(written.to_lowercase()).filter(|l| l != written)
        } else {
            None
        };
        Ok(Self {
            written: written.into(),
            lowered: lowered.map(String::into_boxed_str),
        })
    }

    /// The address as written.
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The normalized form: the identity used for comparison and storage keys.
    pub fn key(&self) -> &str {
        self.lowered.as_deref().unwrap_or(&self.written)
    }
}

impl PartialEq for Email {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}
impl Eq for Email {}
impl Hash for Email {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}
impl PartialOrd for Email {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Email {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(other.key())
    }
}
impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.written)
    }
}
impl Serialize for Email {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.written)
    }
}
impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Parsed from the text where it stands: no `String` in between.
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Email;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Email, E> {
                Email::parse(s).map_err(E::custom)
            }
        }
        d.deserialize_str(Text)
    }
}
impl std::str::FromStr for Email {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Email::parse(s)
    }
}

/// A team id: a lowercase slug, usable in URLs and storage keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        example = "acme",
        min_length = 2,
        max_length = 63,
        pattern = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
    )
)]
#[serde(transparent)]
pub struct TeamId(String);

impl TeamId {
    /// What `parse` accepts (with 2 to 63 characters), as a regular expression.
    pub const PATTERN: &str = "^[a-z][a-z0-9]*(-[a-z0-9]+)*$";

    pub fn parse(s: &str) -> Result<Self, ModelError> {
        let ok = (2..=63).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('-')
            && !s.contains("--")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ModelError::TeamId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl<'de> Deserialize<'de> for TeamId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TeamId::parse(&s).map_err(serde::de::Error::custom)
    }
}
impl std::str::FromStr for TeamId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TeamId::parse(s)
    }
}

/// A set of role names, ordered so that renderings are stable.
///
/// A sorted list without repeats rather than a `BTreeSet`: a person nearly
/// always holds one or two roles, and a team of 100,000 would otherwise
/// hold 100,000 tree nodes of eleven slots each (twice, in a plan: the
/// file's and the live team's). One role is held inline, with no
/// allocation of its own. Serialized as a list; read from a list, in any
/// order and with repeats, as a set is.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Roles(SmallVec<[RoleName; 1]>);

impl Roles {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a role; `false` when it was already there.
    pub fn insert(&mut self, role: RoleName) -> bool {
        match self.0.binary_search(&role) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, role);
                true
            }
        }
    }

    /// Removes a role; `false` when it was not there.
    pub fn remove(&mut self, role: &RoleName) -> bool {
        match self.0.binary_search(role) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    pub fn contains(&self, role: &RoleName) -> bool {
        self.0.binary_search(role).is_ok()
    }

    /// The roles in order.
    pub fn iter(&self) -> std::slice::Iter<'_, RoleName> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether every role here is also in `other`.
    pub fn is_subset(&self, other: &Roles) -> bool {
        self.iter().all(|r| other.contains(r))
    }

    /// The first role in order.
    pub fn first(&self) -> Option<&RoleName> {
        self.0.first()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Keeps the roles `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&RoleName) -> bool) {
        self.0.retain(|r| keep(r));
    }
}

impl fmt::Debug for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<RoleName> for Roles {
    fn from_iter<I: IntoIterator<Item = RoleName>>(iter: I) -> Self {
        let mut roles: SmallVec<[RoleName; 1]> = iter.into_iter().collect();
        roles.sort_unstable();
        roles.dedup();
        Self(roles)
    }
}

impl Extend<RoleName> for Roles {
    fn extend<I: IntoIterator<Item = RoleName>>(&mut self, iter: I) {
        for role in iter {
            self.insert(role);
        }
    }
}

impl<const N: usize> From<[RoleName; N]> for Roles {
    fn from(roles: [RoleName; N]) -> Self {
        roles.into_iter().collect()
    }
}

impl From<BTreeSet<RoleName>> for Roles {
    fn from(roles: BTreeSet<RoleName>) -> Self {
        // Already in order and without repeats.
        Self(roles.into_iter().collect())
    }
}

impl IntoIterator for Roles {
    type Item = RoleName;
    type IntoIter = smallvec::IntoIter<[RoleName; 1]>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Roles {
    type Item = &'a RoleName;
    type IntoIter = std::slice::Iter<'a, RoleName>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl Serialize for Roles {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Roles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Seq;
        impl<'de> serde::de::Visitor<'de> for Seq {
            type Value = Roles;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Roles, A::Error> {
                let mut roles = Roles::new();
                while let Some(role) = seq.next_element()? {
                    roles.insert(role);
                }
                Ok(roles)
            }
        }
        d.deserialize_seq(Seq)
    }
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub email: Email,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
    pub roles: Roles,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub joined_at: Timestamp,
    /// Whether the member signs in with a second factor.
    #[serde(default)]
    pub two_factor: bool,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Invitation {
    pub email: Email,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<RoleName>))]
    pub roles: Roles,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_by: Option<String>,
    /// Names the invitation's current link (not a secret). The service sets
    /// it when it sends a link; a link whose id differs is dead.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
}

impl Invitation {
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// A team-defined role.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct CustomRole {
    #[serde(default)]
    pub description: String,
    /// Permission ids of the catalog; a repeated id counts once.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Permission>))]
    pub permissions: BTreeSet<Permission>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct Settings {
    /// Members must sign in with a second factor.
    #[serde(default)]
    pub require_2fa: bool,
    /// Days an invitation stays valid, 1 to 365.
    #[serde(default = "Settings::default_ttl")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 365, default = Settings::default_ttl))]
    pub invitation_ttl_days: u32,
    /// Members plus pending invitations, 1 to 1000000; null is no limit.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1_000_000))]
    pub seat_limit: Option<u32>,
    /// What a person provisioned through SCIM becomes: an invitation they
    /// accept (`invitations`), or a member at once (`members`).
    #[serde(default)]
    pub scim_provisioning: ScimProvisioning,
}

/// What SCIM provisioning makes of a person (`Settings::scim_provisioning`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScimProvisioning {
    /// An invitation, emailed, that the person accepts.
    #[default]
    Invitations,
    /// A member at once, without an email: the identity provider vouches
    /// for the person.
    Members,
}

impl ScimProvisioning {
    /// Every value, as written in team.yaml and JSON.
    pub const ALL: [ScimProvisioning; 2] =
        [ScimProvisioning::Invitations, ScimProvisioning::Members];

    pub fn as_str(self) -> &'static str {
        match self {
            ScimProvisioning::Invitations => "invitations",
            ScimProvisioning::Members => "members",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for ScimProvisioning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Settings {
    pub const DEFAULT_INVITATION_TTL_DAYS: u32 = 15;
    /// The largest seat limit: above it a limit means nothing, and every
    /// reader of the API (int32 included) can hold it.
    pub const MAX_SEAT_LIMIT: u32 = 1_000_000;

    fn default_ttl() -> u32 {
        Self::DEFAULT_INVITATION_TTL_DAYS
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            require_2fa: false,
            invitation_ttl_days: Self::DEFAULT_INVITATION_TTL_DAYS,
            seat_limit: None,
            scim_provisioning: ScimProvisioning::Invitations,
        }
    }
}

/// An ownership transfer that has started and waits for confirmations.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PendingTransfer {
    pub from: Email,
    pub to: Email,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub started_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    /// The current owner confirmed (step one).
    #[serde(default)]
    pub owner_confirmed: bool,
    /// Names the transfer's current link (not a secret); set by the service.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub link: String,
}

/// A snapshot of one team as the service holds it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamState {
    pub team: TeamId,
    pub display_name: String,
    pub owner: Email,
    #[serde(default)]
    pub settings: Settings,
    /// Every member, the owner included (holding the role `owner`).
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, Member>))]
    pub members: BTreeMap<Email, Member>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, Invitation>))]
    pub invitations: BTreeMap<Email, Invitation>,
    #[serde(default)]
    pub roles: BTreeMap<RoleName, CustomRole>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer: Option<PendingTransfer>,
    /// Bumped by every mutation; 0 for a team that does not exist yet.
    pub version: u64,
}

impl TeamState {
    /// A new team with its owner as the only member.
    pub fn new(team: TeamId, display_name: String, owner: Email, now: Timestamp) -> Self {
        let mut members = BTreeMap::new();
        let roles = Roles::from([RoleName::owner()]);
        members.insert(
            owner.clone(),
            Member {
                email: owner.clone(),
                name: None,
                roles,
                joined_at: now,
                two_factor: false,
            },
        );
        Self {
            team,
            display_name,
            owner,
            settings: Settings::default(),
            members,
            invitations: BTreeMap::new(),
            roles: BTreeMap::new(),
            transfer: None,
            version: 0,
        }
    }
}

crate::map_only!(CustomRole, "a custom role object");

crate::map_only!(Settings, "a settings object");

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failure is the report
    use super::*;

    fn role(name: &str) -> RoleName {
        RoleName::parse(name).unwrap()
    }

    #[test]
    fn roles_behave_as_the_ordered_set_they_replace() {
        let names = ["viewer", "admin", "billing", "admin", "developer", "viewer"];
        let set: BTreeSet<RoleName> = names.iter().map(|n| role(n)).collect();
        let mut inserted = Roles::new();
        let fresh: Vec<bool> = names.iter().map(|n| inserted.insert(role(n))).collect();
        assert_eq!(fresh, [true, true, true, false, true, false]);
        let collected: Roles = names.iter().map(|n| role(n)).collect();
        assert_eq!(inserted, collected);
        assert_eq!(Roles::from(set.clone()), collected);
        // Same order, same length, same rendering.
        assert!(collected.iter().eq(set.iter()));
        assert_eq!(collected.len(), set.len());
        assert_eq!(format!("{collected:?}"), format!("{set:?}"));
        assert!(collected.contains(&role("billing")));
        assert!(!collected.contains(&role("owner")));
        assert!(Roles::from([role("admin")]).is_subset(&collected));
        assert!(!Roles::from([role("owner")]).is_subset(&collected));
        // Sets compare as the sorted sets do.
        let pairs = [
            (vec!["admin"], vec!["viewer"]),
            (vec!["admin", "viewer"], vec!["admin"]),
            (vec!["billing"], vec!["admin", "viewer"]),
            (vec![], vec!["admin"]),
        ];
        for (a, b) in pairs {
            let ours = |v: &[&str]| v.iter().map(|n| role(n)).collect::<Roles>();
            let theirs = |v: &[&str]| v.iter().map(|n| role(n)).collect::<BTreeSet<_>>();
            assert_eq!(
                ours(&a).cmp(&ours(&b)),
                theirs(&a).cmp(&theirs(&b)),
                "{a:?} {b:?}"
            );
        }
        let mut less = collected.clone();
        assert!(less.remove(&role("admin")));
        assert!(!less.remove(&role("admin")));
        assert_eq!(less.len(), 3);
    }

    #[test]
    fn roles_read_any_list_and_write_a_sorted_one() {
        let roles: Roles = serde_json::from_str(r#"["viewer","admin","viewer"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&roles).unwrap(),
            r#"["admin","viewer"]"#
        );
        let set: BTreeSet<RoleName> =
            serde_json::from_str(r#"["viewer","admin","viewer"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            serde_json::to_string(&roles).unwrap()
        );
        let empty: Roles = serde_json::from_str("[]").unwrap();
        assert!(empty.is_empty());
        for bad in [r#""admin""#, r#"{"admin":1}"#, r#"["Admin"]"#, "[1]"] {
            assert!(serde_json::from_str::<Roles>(bad).is_err(), "{bad}");
        }
        // One role, the usual case, fits in the value itself.
        assert!(std::mem::size_of::<Roles>() <= 32);
    }

    #[test]
    fn an_email_keeps_how_it_was_written_and_compares_by_its_lowercase_form() {
        let mixed = Email::parse(" Ada.Lovelace@Example.COM ").unwrap();
        let lower = Email::parse("ada.lovelace@example.com").unwrap();
        assert_eq!(mixed.as_str(), "Ada.Lovelace@Example.COM");
        assert_eq!(mixed.key(), "ada.lovelace@example.com");
        assert_eq!(lower.key(), lower.as_str());
        assert_eq!(mixed, lower);
        assert_eq!(mixed.cmp(&lower), Ordering::Equal);
        let hash = |e: &Email| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            e.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&mixed), hash(&lower));
        // Beyond ASCII too.
        let umlaut = Email::parse("Ünal@Örnek.de").unwrap();
        assert_eq!(umlaut.key(), "ünal@örnek.de");
        assert_eq!(umlaut, Email::parse("ünal@örnek.de").unwrap());
        for bad in ["a@b", "a@.b.c", "a@b..c", ".a@b.c", "a@-b.c"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
