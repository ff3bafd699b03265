//! Closing a team: the owner closes it, it waits out a grace period in which
//! only the owner may read it or reopen it, and then a sweep archives its
//! audit trail and deletes every item of it.
//!
//! - **Close** (`close_team`): only the owner (never an API key), naming the
//!   team again in `confirm`. Refused while other members or pending
//!   invitations remain, unless `force`, and while an ownership transfer is
//!   pending. It writes `closing` on `META` (with `deletes_at`) and an entry
//!   under `CLOSING` / `DUE#<deadline>#<team>` in one transaction, with its
//!   audit record, under the team's version.
//! - **While closing** every write to the team is refused (`team_closed`),
//!   every credential of the team other than the owner's is refused, links
//!   (invitations, transfers) are refused, and the owner may still read the
//!   team (its audit trail included) and reopen it, which removes `closing`
//!   and nothing else: the team is as it was, at a later version.
//! - **Sweep** (`sweep_closed`): for each team past its deadline, in
//!   deadline order, exports the audit trail as JSON Lines to an
//!   [`Archive`] kept for the retention period, marks `closing.deleting`
//!   (from then on reopening is refused), then deletes the team's partition
//!   in pages of bounded size, each page with the look-ups outside the
//!   partition that its items name (`USER#<email>` / `TEAM#<id>`,
//!   an invitation's `EXPIRING` due entry, `KEY#<hash>`, `TOKEN#<hash>` through `LINK#<hash>`, the `IDEMP#...`
//!   records of its requests), and `META` with the entry last. An interrupted sweep resumes where it stopped: `META`
//!   still says `deleting` until the last page.
//!
//! Once deleted, the team id is free again: a later `create_team` makes a
//! new team under it; nothing of the old team remains to be mistaken for it
//! (its archive is named by id and deadline). Personal access tokens belong
//! to people, not teams, and stay; they open nothing of a deleted team.
//! Idempotency records are keyed by caller; a request about a team leaves a
//! reference in the team's partition, by which the sweep deletes them.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use teamform_core::{Email, TeamId, Timestamp};

use crate::auth::{Principal, Standing};
use crate::code;
use crate::service::scoped::Scoped;
use crate::service::{Service, ServiceError, admit};
use crate::store::codec::{self, Closing, Meta};
use crate::store::{Condition, Item, PageRequest, StoreError, Write};

/// How closing works on one deployment: days of grace between closing and
/// deletion, and days the archived audit trail is kept after deletion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseSettings {
    pub grace_days: u32,
    pub audit_retention_days: u32,
}

impl CloseSettings {
    pub const DEFAULT_GRACE_DAYS: u32 = 30;
    pub const MAX_GRACE_DAYS: u32 = 365;
    pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 365;
    pub const MAX_AUDIT_RETENTION_DAYS: u32 = 3650;

    /// Checked settings: grace 1 to 365 days, retention 1 to 3650 days.
    pub fn new(grace_days: u32, audit_retention_days: u32) -> Result<Self, CloseSettingsError> {
        let check = |setting: &'static str, value: u32, max: u32| {
            if (1..=max).contains(&value) {
                Ok(value)
            } else {
                Err(CloseSettingsError::OutOfRange {
                    setting,
                    value,
                    max,
                })
            }
        };
        Ok(Self {
            grace_days: check("close_grace_days", grace_days, Self::MAX_GRACE_DAYS)?,
            audit_retention_days: check(
                "audit_retention_days",
                audit_retention_days,
                Self::MAX_AUDIT_RETENTION_DAYS,
            )?,
        })
    }

    /// From `TEAMFORM_CLOSE_GRACE_DAYS` and `TEAMFORM_AUDIT_RETENTION_DAYS`,
    /// each defaulted when unset.
    pub fn from_env() -> Result<Self, CloseSettingsError> {
        let read = |variable: &'static str, default: u32| match std::env::var(variable) {
            Ok(value) => value
                .trim()
                .parse()
                .map_err(|_| CloseSettingsError::NotANumber { variable, value }),
            Err(_) => Ok(default),
        };
        Self::new(
            read("TEAMFORM_CLOSE_GRACE_DAYS", Self::DEFAULT_GRACE_DAYS)?,
            read(
                "TEAMFORM_AUDIT_RETENTION_DAYS",
                Self::DEFAULT_AUDIT_RETENTION_DAYS,
            )?,
        )
    }
}

/// Why closing settings were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloseSettingsError {
    #[error("{setting} must be 1 to {max}, not {value}")]
    OutOfRange {
        setting: &'static str,
        value: u32,
        max: u32,
    },
    #[error("{variable} must be a whole number of days, not `{value}`")]
    NotANumber {
        variable: &'static str,
        value: String,
    },
}

impl Default for CloseSettings {
    fn default() -> Self {
        Self {
            grace_days: Self::DEFAULT_GRACE_DAYS,
            audit_retention_days: Self::DEFAULT_AUDIT_RETENTION_DAYS,
        }
    }
}

/// Whether a team is open or closing, as `POST /teams/{team}/close` and
/// `/reopen` answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct TeamClosing {
    #[schema(value_type = String, example = "acme")]
    pub team: TeamId,
    /// `open` or `closing`.
    #[schema(example = "closing")]
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<Timestamp>,
    /// When the sweep deletes the team, unless its owner reopens it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub deletes_at: Option<Timestamp>,
    /// The team's version after the operation.
    pub version: u64,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Teams deleted completely.
    pub deleted: Vec<TeamId>,
    /// Items deleted, look-ups outside the teams' partitions included.
    pub items_deleted: usize,
    /// Where audit trails were archived.
    pub archived: Vec<String>,
    /// The budget ran out: a later sweep goes on where this one stopped.
    pub unfinished: bool,
    /// Archives dropped after their retention.
    pub pruned: usize,
}

/// Items one sweep call deletes at most (its work is bounded; the next call
/// resumes).
pub const SWEEP_BUDGET: usize = 20_000;

/// Team items deleted per transaction: each may bring up to two look-ups
/// outside the partition (an invitation: its person's `USER#` entry and its
/// `EXPIRING` due entry), so a page stays within one transaction's 100 writes.
const DELETE_PAGE: usize = 30;

/// A closed team's archive: named by the team and its deadline, so a
/// resumed sweep writes the same archive again rather than a second one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveName {
    pub team: TeamId,
    pub deletes_at: Timestamp,
}

impl ArchiveName {
    /// `<team>-<deadline, UTC, basic ISO 8601>`, e.g. `acme-20261230T120000Z`.
    pub fn stem(&self) -> String {
        format!("{}-{}", self.team, self.deletes_at.format(STAMP))
    }
}

const STAMP: &str = "%Y%m%dT%H%M%SZ";

/// Where a closed team's audit trail is kept after the team is deleted.
#[async_trait]
pub trait Archive: Send + Sync + 'static {
    /// Keeps `jsonl` (one audit record per line) until `keep_until`;
    /// writing the same name again replaces it. Returns where it is.
    async fn keep(
        &self,
        name: &ArchiveName,
        jsonl: &str,
        keep_until: Timestamp,
    ) -> Result<String, ServiceError>;

    /// Drops archives whose time is up (`retention` after their team's
    /// deadline); returns how many.
    async fn prune(&self, now: Timestamp, retention: Duration) -> Result<usize, ServiceError>;
}

/// Archives as files in a directory, `<dir>/<team>-<deadline>.jsonl`: the
/// local host's choice (`teamform serve` puts it beside its store).
pub struct DirArchive {
    dir: PathBuf,
}

impl DirArchive {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `<store>.archive/` beside a store file.
    pub fn beside(store: &std::path::Path) -> Self {
        let mut name = store.as_os_str().to_owned();
        name.push(".archive");
        Self::new(PathBuf::from(name))
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> ServiceError {
    ServiceError::Store(StoreError::Backend(format!(
        "{what} {}: {e}",
        path.display()
    )))
}

#[async_trait]
impl Archive for DirArchive {
    async fn keep(
        &self,
        name: &ArchiveName,
        jsonl: &str,
        _keep_until: Timestamp,
    ) -> Result<String, ServiceError> {
        let dir = self.dir.clone();
        let path = dir.join(format!("{}.jsonl", name.stem()));
        let partial = dir.join(format!("{}.jsonl.partial", name.stem()));
        let text = jsonl.to_owned();
        let shown = path.display().to_string();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir).map_err(|e| io_error("cannot create", &dir, e))?;
            // Written whole, then renamed: an archive file is never partial.
            std::fs::write(&partial, text).map_err(|e| io_error("cannot write", &partial, e))?;
            std::fs::rename(&partial, &path).map_err(|e| io_error("cannot rename", &partial, e))
        })
        .await
        .map_err(|e| ServiceError::Store(StoreError::Backend(e.to_string())))??;
        Ok(shown)
    }

    async fn prune(&self, now: Timestamp, retention: Duration) -> Result<usize, ServiceError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(io_error("cannot read", &dir, e)),
            };
            let mut pruned = 0;
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(stamp) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".jsonl"))
                    .and_then(|n| n.rsplit_once('-'))
                    .map(|(_, stamp)| stamp)
                else {
                    continue;
                };
                let Ok(deadline) = chrono::NaiveDateTime::parse_from_str(stamp, STAMP) else {
                    continue;
                };
                if deadline.and_utc() + retention <= now {
                    let path = entry.path();
                    std::fs::remove_file(&path).map_err(|e| io_error("cannot remove", &path, e))?;
                    pruned += 1;
                }
            }
            Ok(pruned)
        })
        .await
        .map_err(|e| ServiceError::Store(StoreError::Backend(e.to_string())))?
    }
}

/// Bytes of JSON Lines one archive item holds at most (DynamoDB items are
/// limited to 400 KB).
const ARCHIVE_PART_BYTES: usize = 100_000;

/// Archives as items of the store itself, `ARCHIVE#<team>-<deadline>` /
/// `PART#<n>`, each holding whole lines and a numeric `expires_at`: on
/// DynamoDB the table's TTL deletes them after the retention period. The
/// default where no other archive is given (Lambda).
pub struct StoreArchive {
    store: Arc<dyn crate::store::Store>,
}

impl StoreArchive {
    pub fn new(store: Arc<dyn crate::store::Store>) -> Self {
        Self { store }
    }

    pub fn pk(name: &ArchiveName) -> String {
        format!("ARCHIVE#{}", name.stem())
    }
}

/// Cuts JSON Lines into parts of whole lines, each at most `limit` bytes
/// unless one line alone is longer.
fn parts_of(jsonl: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    for line in jsonl.split_inclusive('\n') {
        if !part.is_empty() && part.len() + line.len() > limit {
            parts.push(std::mem::take(&mut part));
        }
        part.push_str(line);
    }
    if !part.is_empty() {
        parts.push(part);
    }
    parts
}

#[async_trait]
impl Archive for StoreArchive {
    async fn keep(
        &self,
        name: &ArchiveName,
        jsonl: &str,
        keep_until: Timestamp,
    ) -> Result<String, ServiceError> {
        let pk = Self::pk(name);
        for (n, lines) in parts_of(jsonl, ARCHIVE_PART_BYTES).into_iter().enumerate() {
            let item = Item::new(pk.clone(), format!("PART#{n:06}"))
                .with("type", "audit_archive")
                .with("team", name.team.as_str())
                .with("lines", lines)
                .with("expires_at", keep_until.timestamp());
            self.store
                .transact(vec![Write::Put {
                    item,
                    condition: Condition::None,
                }])
                .await?;
        }
        Ok(pk)
    }

    async fn prune(&self, _now: Timestamp, _retention: Duration) -> Result<usize, ServiceError> {
        // The items carry `expires_at`: the table's TTL drops them.
        Ok(0)
    }
}

fn closed_text(team: &TeamId, closing: &Closing) -> String {
    if closing.deleting {
        format!("team {team} is closed and being deleted")
    } else {
        format!(
            "team {team} is closed: it is deleted at {} unless its owner reopens it",
            closing.deletes_at.to_rfc3339()
        )
    }
}

/// The refusal of a write to a closing team (409: the team's state).
fn closed(team: &TeamId, closing: &Closing) -> ServiceError {
    ServiceError::Refused {
        code: code::TEAM_CLOSED,
        message: closed_text(team, closing),
        extra: Some(json!({ "deletes_at": closing.deletes_at.to_rfc3339() })),
    }
}

/// Lets only the owner into a closing team, until its deletion begins. An
/// outsider learns nothing (404, as for any team not theirs); a member, an
/// invitee or one of the team's API keys is refused (403 `team_closed`).
pub(crate) fn admit_while_closing(
    who: &Principal,
    state: &teamform_core::TeamState,
    closing: Option<&Closing>,
) -> Result<(), ServiceError> {
    let Some(closing) = closing else {
        return Ok(());
    };
    match who.standing(state) {
        // A team being deleted is half gone: nobody reads it.
        Standing::Owner if !closing.deleting => Ok(()),
        Standing::Outsider if !invited(who, state) => Err(ServiceError::NotFound),
        _ => Err(ServiceError::Denied {
            code: code::TEAM_CLOSED,
            message: closed_text(&state.team, closing),
        }),
    }
}

fn invited(who: &Principal, state: &teamform_core::TeamState) -> bool {
    matches!(who, Principal::Person { email, .. } if state.invitations.contains_key(email))
}

/// Refuses every write to a closing team (reopening goes its own way).
pub(crate) fn refuse_if_closing(scoped: &Scoped) -> Result<(), ServiceError> {
    match &scoped.closing {
        Some(closing) => Err(closed(&scoped.state.team, closing)),
        None => Ok(()),
    }
}

/// Only the owner closes or reopens a team; an API key never does, whatever
/// it holds.
fn owner_only(who: &Principal, scoped: &Scoped, action: &str) -> Result<(), ServiceError> {
    if let Principal::ApiKey { .. } = who {
        return Err(ServiceError::Forbidden(format!(
            "API keys cannot {action} a team: its owner does"
        )));
    }
    if who.standing(&scoped.state) != Standing::Owner {
        return Err(ServiceError::Forbidden(format!(
            "only the owner may {action} the team (`team.close`)"
        )));
    }
    Ok(())
}

fn check_version(scoped: &Scoped, expected: Option<u64>) -> Result<(), ServiceError> {
    match expected {
        Some(expected) if expected != scoped.state.version => Err(ServiceError::VersionConflict {
            expected,
            actual: scoped.state.version,
        }),
        _ => Ok(()),
    }
}

fn due_item(team: &TeamId, deletes_at: Timestamp) -> Item {
    Item::new(
        codec::CLOSING_PK,
        codec::due_sk(deletes_at.timestamp(), team),
    )
    .with("type", "closing")
    .with("team", team.as_str())
    .with("deletes_at", deletes_at.to_rfc3339())
}

/// The writes outside a team's partition that one of its items names.
fn lookups_of(team: &TeamId, item: &Item) -> Vec<Write> {
    let delete = |pk: String, sk: String| Write::Delete {
        pk,
        sk,
        condition: Condition::None,
    };
    let sk = item.sk.as_str();
    if sk.starts_with(codec::MEMBER) || sk.starts_with(codec::INVITE) {
        if let Some(email) = item.str("email").and_then(|e| Email::parse(e).ok()) {
            let mut writes = vec![delete(codec::user_pk(&email), codec::team_pk(team))];
            if sk.starts_with(codec::INVITE) {
                // The invitation's entry in the expiry sweep's list.
                writes.extend(crate::service::expiry::due_of_item(team, &email, item));
            }
            return writes;
        }
    } else if sk.starts_with(codec::APIKEY) {
        if let Some(hash) = item.str("hash") {
            return vec![delete(format!("KEY#{hash}"), "KEY".into())];
        }
    } else if item.str("type") == Some("scim_token") {
        if let Some(hash) = item.str("hash") {
            return vec![delete(crate::scim::tokens::lookup_pk(hash), "SCIM".into())];
        }
    } else if let Some(hash) = sk.strip_prefix(codec::LINK) {
        return vec![delete(format!("TOKEN#{hash}"), "TOKEN".into())];
    } else if sk.starts_with(crate::http::idempotency::CLAIM_PREFIX) {
        return vec![delete(
            sk.to_owned(),
            crate::http::idempotency::CLAIM_SK.into(),
        )];
    }
    Vec::new()
}

impl Service {
    /// Sets how closing works here (grace period, audit retention).
    pub fn with_close_settings(mut self, settings: CloseSettings) -> Self {
        self.close = settings;
        self
    }

    /// Archives closed teams' audit trails here rather than in the store.
    pub fn with_archive(mut self, archive: Arc<dyn Archive>) -> Self {
        self.archive = Some(archive);
        self
    }

    pub fn close_settings(&self) -> CloseSettings {
        self.close
    }

    fn archive(&self) -> Arc<dyn Archive> {
        match &self.archive {
            Some(archive) => archive.clone(),
            None => Arc::new(StoreArchive::new(self.store().clone())),
        }
    }

    /// Whether the team is open or closing, for a caller holding
    /// `team.settings.read` (while it is closing: its owner).
    pub async fn closing_state(
        &self,
        team: &TeamId,
        who: &Principal,
    ) -> Result<TeamClosing, ServiceError> {
        let scoped = self
            .authorized_scoped(team, who, teamform_core::catalog::perm::SETTINGS_READ)
            .await?;
        let closing = scoped.closing.as_ref();
        Ok(TeamClosing {
            team: team.clone(),
            state: if closing.is_some() { "closing" } else { "open" }.into(),
            closed_at: closing.map(|c| c.closed_at),
            deletes_at: closing.map(|c| c.deletes_at),
            version: scoped.state.version,
        })
    }

    /// Closes a team (see the module): its owner only, `confirm` naming
    /// the team, nobody else left unless `force`, no transfer pending.
    pub async fn close_team(
        &self,
        team: &TeamId,
        who: &Principal,
        confirm: &str,
        force: bool,
        expected: Option<u64>,
    ) -> Result<TeamClosing, ServiceError> {
        let _turn = self.write_turn(team).await;
        let scoped = self
            .load_scoped(team, who, [])
            .await?
            .ok_or(ServiceError::NotFound)?;
        admit(who, &scoped.state)?;
        owner_only(who, &scoped, "close")?;
        if let Some(closing) = &scoped.closing {
            return Err(closed(team, closing));
        }
        if confirm != team.as_str() {
            return Err(ServiceError::invalid(
                code::CONFIRMATION_MISMATCH,
                format!("confirm must repeat the team id `{team}` to close it"),
            ));
        }
        check_version(&scoped, expected)?;
        if scoped.state.transfer.is_some() {
            return Err(ServiceError::Refused {
                code: code::TRANSFER_PENDING,
                message: format!(
                    "team {team} has an ownership transfer pending: cancel it before closing"
                ),
                extra: None,
            });
        }
        // The owner is one of the members.
        let members = scoped.counts.members.saturating_sub(1);
        let invitations = scoped.counts.invitations;
        if !force && (members > 0 || invitations > 0) {
            return Err(ServiceError::Refused {
                code: code::TEAM_NOT_EMPTY,
                message: format!(
                    "team {team} still has {members} other member(s) and {invitations} pending \
                     invitation(s): remove them first, or close with force"
                ),
                extra: Some(json!({ "members": members, "invitations": invitations })),
            });
        }
        let now = self.now();
        let deletes_at = now + Duration::days(i64::from(self.close.grace_days));
        let closing = Closing {
            closed_at: now,
            deletes_at,
            by: who.actor(),
            deleting: false,
        };
        let writes = vec![Write::Put {
            item: due_item(team, deletes_at),
            condition: Condition::None,
        }];
        let detail = json!({
            "deletes_at": deletes_at.to_rfc3339(),
            "force": force,
            "members": members,
            "invitations": invitations,
        });
        let version = self
            .commit_team(
                &scoped,
                who,
                "close_team",
                detail,
                writes,
                Vec::new(),
                Some(closing),
            )
            .await?;
        Ok(TeamClosing {
            team: team.clone(),
            state: "closing".into(),
            closed_at: Some(now),
            deletes_at: Some(deletes_at),
            version,
        })
    }

    /// Reopens a closing team, as it was, until deletion has begun.
    pub async fn reopen_team(
        &self,
        team: &TeamId,
        who: &Principal,
        expected: Option<u64>,
    ) -> Result<TeamClosing, ServiceError> {
        let _turn = self.write_turn(team).await;
        let scoped = self
            .load_scoped(team, who, [])
            .await?
            .ok_or(ServiceError::NotFound)?;
        admit(who, &scoped.state)?;
        owner_only(who, &scoped, "reopen")?;
        let Some(closing) = scoped.closing.clone() else {
            return Err(ServiceError::Refused {
                code: code::TEAM_NOT_CLOSED,
                message: format!("team {team} is open"),
                extra: None,
            });
        };
        if closing.deleting {
            // Only reached by a caller let in, which deletion refuses; kept
            // so that no path reopens a team being deleted.
            return Err(ServiceError::Denied {
                code: code::TEAM_CLOSED,
                message: format!("team {team} is being deleted: it can no longer be reopened"),
            });
        }
        check_version(&scoped, expected)?;
        let writes = vec![Write::Delete {
            pk: codec::CLOSING_PK.into(),
            sk: codec::due_sk(closing.deletes_at.timestamp(), team),
            condition: Condition::None,
        }];
        let detail = json!({
            "closed_at": closing.closed_at.to_rfc3339(),
            "deletes_at": closing.deletes_at.to_rfc3339(),
        });
        let version = self
            .commit_team(
                &scoped,
                who,
                "reopen_team",
                detail,
                writes,
                Vec::new(),
                None,
            )
            .await?;
        Ok(TeamClosing {
            team: team.clone(),
            state: "open".into(),
            closed_at: None,
            deletes_at: None,
            version,
        })
    }

    /// Deletes the teams whose grace period ended by `now`, archiving each
    /// one's audit trail first, within [`SWEEP_BUDGET`] items.
    pub async fn sweep_closed(&self, now: Timestamp) -> Result<SweepReport, ServiceError> {
        self.sweep_closed_within(now, SWEEP_BUDGET).await
    }

    /// `sweep_closed` deleting at most about `budget` items (a page more
    /// at most); `unfinished` says that another sweep has work left.
    pub async fn sweep_closed_within(
        &self,
        now: Timestamp,
        budget: usize,
    ) -> Result<SweepReport, ServiceError> {
        let mut report = SweepReport::default();
        let mut after = None;
        'due: loop {
            let page = self
                .store()
                .query(
                    codec::CLOSING_PK,
                    codec::DUE,
                    PageRequest {
                        limit: Some(100),
                        after,
                    },
                )
                .await?;
            for item in &page.items {
                let due = item
                    .sk
                    .strip_prefix(codec::DUE)
                    .and_then(|rest| rest.split_once('#'))
                    .and_then(|(at, _)| at.parse::<i64>().ok());
                let team = item.str("team").and_then(|t| TeamId::parse(t).ok());
                let (Some(due), Some(team)) = (due, team) else {
                    tracing::warn!(sk = %item.sk, "a closing entry without a deadline or team");
                    continue;
                };
                if due > now.timestamp() {
                    break 'due;
                }
                if report.items_deleted >= budget
                    || !self
                        .delete_closed(&team, &item.sk, now, budget, &mut report)
                        .await?
                {
                    report.unfinished = true;
                    break 'due;
                }
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let retention = Duration::days(i64::from(self.close.audit_retention_days));
        report.pruned = self.archive().prune(now, retention).await?;
        Ok(report)
    }

    /// Archives and deletes one team past its deadline. `false` when the
    /// budget ran out first.
    async fn delete_closed(
        &self,
        team: &TeamId,
        due_sk: &str,
        now: Timestamp,
        budget: usize,
        report: &mut SweepReport,
    ) -> Result<bool, ServiceError> {
        let store = self.store();
        let pk = codec::team_pk(team);
        let entry = Write::Delete {
            pk: codec::CLOSING_PK.into(),
            sk: due_sk.to_owned(),
            condition: Condition::None,
        };
        let meta = match self.settled_meta(team).await? {
            Some(item) => codec::decode::<Meta>(&item, &[])?,
            None => {
                store.transact(vec![entry]).await?;
                return Ok(true);
            }
        };
        let Some(mut closing) = meta.closing.clone() else {
            // Reopened: an entry its reopening did not take away.
            store.transact(vec![entry]).await?;
            return Ok(true);
        };
        if closing.deletes_at > now {
            return Ok(true);
        }
        let mut meta = meta;
        if !closing.deleting {
            let name = ArchiveName {
                team: team.clone(),
                deletes_at: closing.deletes_at,
            };
            let retention = Duration::days(i64::from(self.close.audit_retention_days));
            let jsonl = self.audit_jsonl(team).await?;
            let kept = self
                .archive()
                .keep(&name, &jsonl, closing.deletes_at + retention)
                .await?;
            tracing::info!(team = %team, archive = %kept, "archived the audit trail of a closed team");
            report.archived.push(kept);
            // From here on the team cannot be reopened; a reopening that
            // read the version before this loses its race.
            closing.deleting = true;
            let read = meta.version;
            meta.version += 1;
            meta.closing = Some(closing);
            match store
                .transact(vec![Write::Put {
                    item: meta.item()?,
                    condition: Condition::VersionEquals(read),
                }])
                .await
            {
                Ok(()) => {}
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                    // Reopened meanwhile: nothing to delete.
                    return Ok(true);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let mut after = None;
        loop {
            if report.items_deleted >= budget {
                return Ok(false);
            }
            let page = store
                .query(
                    &pk,
                    "",
                    PageRequest {
                        limit: Some(DELETE_PAGE),
                        after: after.clone(),
                    },
                )
                .await?;
            let mut writes = Vec::new();
            let mut keys = std::collections::HashSet::new();
            let mut deleted = 0;
            for item in &page.items {
                if item.sk == codec::META {
                    continue;
                }
                let own = Write::Delete {
                    pk: pk.clone(),
                    sk: item.sk.clone(),
                    condition: Condition::None,
                };
                for write in std::iter::once(own).chain(lookups_of(team, item)) {
                    let (p, s) = write.key();
                    if keys.insert((p.to_owned(), s.to_owned())) {
                        writes.push(write);
                    }
                }
                deleted += 1;
            }
            let outside = writes.len() - deleted;
            if !writes.is_empty() {
                store.transact(writes).await?;
            }
            report.items_deleted += deleted + outside;
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        store
            .transact(vec![
                Write::Delete {
                    pk,
                    sk: codec::META.into(),
                    condition: Condition::VersionEquals(meta.version),
                },
                entry,
            ])
            .await?;
        report.items_deleted += 1;
        report.deleted.push(team.clone());
        tracing::info!(team = %team, "deleted a closed team");
        Ok(true)
    }

    /// The whole audit trail of a team as JSON Lines, oldest first, each
    /// record as the API shows it.
    async fn audit_jsonl(&self, team: &TeamId) -> Result<String, ServiceError> {
        let pk = codec::team_pk(team);
        let mut records: Vec<Value> = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store()
                .query(
                    &pk,
                    codec::AUDIT,
                    PageRequest {
                        limit: Some(1000),
                        after,
                    },
                )
                .await?;
            records.extend(
                page.items
                    .into_iter()
                    .map(|item| Value::Object(crate::service::audit::entry(item))),
            );
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        Ok(crate::service::audit::write_jsonl(&records))
    }
}

/// Records expired invitations (`Service::sweep_expired`), then sweeps
/// closed teams, every `every`, first at once, for as long as the host runs:
/// `teamform serve`'s timer (Lambda has a scheduled function instead).
/// Failures are logged and retried at the next tick.
pub fn spawn_sweeper(
    service: Arc<Service>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match service.sweep_expired(service.now()).await {
                Ok(report) if report == crate::service::expiry::ExpiryReport::default() => {}
                Ok(report) => tracing::info!(
                    recorded = report.recorded,
                    stale = report.stale,
                    unfinished = report.unfinished,
                    "recorded expired invitations"
                ),
                Err(error) => tracing::error!(%error, "recording expired invitations failed"),
            }
            match service.sweep_closed(service.now()).await {
                Ok(report) if report == SweepReport::default() => {}
                Ok(report) => tracing::info!(
                    deleted = report.deleted.len(),
                    items = report.items_deleted,
                    unfinished = report.unfinished,
                    pruned = report.pruned,
                    "swept closed teams"
                ),
                Err(error) => tracing::error!(%error, "sweeping closed teams failed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_outside_their_ranges_are_refused() {
        assert_eq!(
            CloseSettings::new(0, 365).map_err(|e| e.to_string()),
            Err("close_grace_days must be 1 to 365, not 0".to_owned())
        );
        assert!(CloseSettings::new(366, 365).is_err());
        assert!(CloseSettings::new(30, 0).is_err());
        assert!(CloseSettings::new(30, 3651).is_err());
        assert_eq!(
            CloseSettings::new(1, 1).map(|s| s.grace_days),
            Ok(1),
            "the bounds themselves are allowed"
        );
    }

    #[test]
    fn archive_parts_hold_whole_lines_within_the_limit() {
        let jsonl = "aaaa\nbbbb\ncccc\ndddddddddddd\n";
        let parts = parts_of(jsonl, 10);
        assert_eq!(parts.concat(), jsonl);
        assert!(parts.iter().all(|p| p.ends_with('\n')));
        assert_eq!(parts, ["aaaa\nbbbb\n", "cccc\n", "dddddddddddd\n"]);
    }

    #[test]
    fn archive_names_sort_by_team_then_deadline() {
        let name = ArchiveName {
            team: TeamId::parse("acme-eu").unwrap(),
            deletes_at: "2026-12-30T12:00:00Z".parse().unwrap(),
        };
        assert_eq!(name.stem(), "acme-eu-20261230T120000Z");
    }
}
