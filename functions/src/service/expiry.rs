//! Invitation expiry, committed: an invitation past its `expires_at` is
//! recorded once, as an `expire_invitation` audit record of its own version,
//! so that it is published as an event (`team.invitation.expired`) like every
//! other committed change.
//!
//! - **Due entries.** Every write that gives an invitation an expiry (an
//!   invite, a re-invite, a resend) writes, in the same transaction, an entry
//!   outside the team's partition: `EXPIRING` / `DUE#<epoch seconds>#<team>#<email>`,
//!   in expiry order. A write that removes the invitation or moves its expiry
//!   (revoke, accept, re-invite, removal in a batch, an ownership transfer
//!   to an invitee) deletes the old entry in its own transaction. Only the
//!   person's own items are touched: no write reads or scans the team.
//! - **Sweep** (`Service::sweep_expired`): reads the due entries up to `now`
//!   in pages, team by team; for each it reads the invitation again and,
//!   when it is still there with the same expiry, commits through the team's
//!   normal path (version bump, `META` condition) one audit record per
//!   expiry (several expiries of one team in one commit) with the deletion
//!   of the entry, conditioned on the entry still existing. Whoever deletes
//!   an entry records its expiry: two sweepers never record one twice (the
//!   loser's transaction fails, it reads again and finds the entry gone).
//!   An entry whose invitation is gone or has another expiry is stale and
//!   deleted without a record. The invitation itself stays (it reads as
//!   expired, may be re-invited or revoked); accepting it is still refused.
//! - A closing team's entries wait (nothing is written to a closing team):
//!   reopened, the team's expiries are recorded by the next sweep; deleted,
//!   the close sweep deletes each invitation's entry with it.
//!
//! The record: actor `system:expiry` (`actor_kind` `system`), `source`
//! `sweep`, `change` `{"email", "before": {"roles", "created_at",
//! "expires_at", ...}}`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use teamform_core::model::Invitation;
use teamform_core::{Email, TeamId, Timestamp};

use crate::service::{Service, ServiceError, Step};
use crate::store::codec::{self, Meta};
use crate::store::{Condition, Item, PageRequest, Write};

/// The partition listing invitations by expiry.
pub const EXPIRING_PK: &str = "EXPIRING";
/// The actor of expiry records (its kind: `system`).
pub const SYSTEM_ACTOR: &str = "system:expiry";
/// The action of expiry records.
pub const ACTION: &str = "expire_invitation";
/// The `source` of expiry records.
pub const SOURCE: &str = "sweep";
/// Due entries one sweep call handles at most; the next call goes on.
pub const EXPIRY_BUDGET: usize = 2_000;
/// Expiries of one team recorded in one commit at most (each brings an
/// audit item and an entry's deletion: one transaction holds them).
const PER_COMMIT: usize = 40;
/// Due entries read per page.
const PAGE: usize = 100;
/// Tries for one team whose version keeps moving under the sweep.
const ROUNDS: usize = 5;

/// What one expiry sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExpiryReport {
    /// Expiries recorded (audit records written).
    pub recorded: usize,
    /// Teams that got a new version for them.
    pub teams: Vec<TeamId>,
    /// Entries deleted without a record: their invitation was revoked,
    /// accepted or sent again with another expiry.
    pub stale: usize,
    /// Work was left (the budget ran out, or a team kept changing): a later
    /// sweep goes on.
    pub unfinished: bool,
}

/// An invitation's entry in the sweep's list: by expiry, then team, then
/// person.
pub fn due_sk(expires_at: Timestamp, team: &TeamId, email: &Email) -> String {
    format!(
        "{}{:012}#{team}#{}",
        codec::DUE,
        expires_at.timestamp().max(0),
        email.key()
    )
}

/// The due entry of the invitation of `email` to `team` expiring at
/// `expires_at`. (Its time is `due`, a string: the table's TTL, which reads
/// a numeric `expires_at`, must not drop it.)
pub fn due_item(team: &TeamId, email: &Email, expires_at: Timestamp) -> Item {
    Item::new(EXPIRING_PK, due_sk(expires_at, team, email))
        .with("type", "expiring")
        .with("team", team.as_str())
        .with("email", email.as_str())
        .with("due", expires_at.to_rfc3339())
}

/// The writes that keep one person's due entry in step with their
/// invitation, from its expiry before a write (`None`: no invitation) to
/// its expiry after it.
pub(crate) fn due_writes(
    team: &TeamId,
    email: &Email,
    before: Option<Timestamp>,
    after: Option<Timestamp>,
) -> Vec<Write> {
    if before == after {
        return Vec::new();
    }
    let mut writes = Vec::new();
    let new_sk = after.map(|at| due_sk(at, team, email));
    if let Some(at) = before {
        let sk = due_sk(at, team, email);
        // The same second: the put below replaces it (one write per key).
        if new_sk.as_deref() != Some(sk.as_str()) {
            writes.push(Write::Delete {
                pk: EXPIRING_PK.into(),
                sk,
                condition: Condition::None,
            });
        }
    }
    if let Some(at) = after {
        writes.push(Write::Put {
            item: due_item(team, email, at),
            condition: Condition::None,
        });
    }
    writes
}

/// The deletion of the due entry an invitation item names, for the close
/// sweep (which pages through the team's items and reads nothing else).
pub(crate) fn due_of_item(team: &TeamId, email: &Email, item: &Item) -> Option<Write> {
    let expires_at = item.str("expires_at")?.parse::<Timestamp>().ok()?;
    Some(Write::Delete {
        pk: EXPIRING_PK.into(),
        sk: due_sk(expires_at, team, email),
        condition: Condition::None,
    })
}

/// A due entry as read.
struct Due {
    sk: String,
    email: Email,
}

impl Service {
    /// Records the expiry of every invitation due by `now`, within
    /// [`EXPIRY_BUDGET`] entries (see the module).
    pub async fn sweep_expired(&self, now: Timestamp) -> Result<ExpiryReport, ServiceError> {
        self.sweep_expired_within(now, EXPIRY_BUDGET).await
    }

    /// `sweep_expired` handling at most about `budget` due entries (a
    /// commit's worth more at most); `unfinished` says that work is left.
    pub async fn sweep_expired_within(
        &self,
        now: Timestamp,
        budget: usize,
    ) -> Result<ExpiryReport, ServiceError> {
        let mut report = ExpiryReport::default();
        let mut handled = 0;
        let mut after = None;
        'pages: loop {
            let page = self
                .store()
                .query(
                    EXPIRING_PK,
                    codec::DUE,
                    PageRequest {
                        limit: Some(PAGE),
                        after,
                    },
                )
                .await?;
            let mut by_team: BTreeMap<TeamId, Vec<Due>> = BTreeMap::new();
            let mut reached_future = false;
            for item in &page.items {
                let due = item.str("due").and_then(|d| d.parse::<Timestamp>().ok());
                let team = item.str("team").and_then(|t| TeamId::parse(t).ok());
                let email = item.str("email").and_then(|e| Email::parse(e).ok());
                let (Some(due), Some(team), Some(email)) = (due, team, email) else {
                    tracing::warn!(sk = %item.sk, "an expiry entry without its time, team or email");
                    continue;
                };
                if due > now {
                    // Entries sort by whole seconds: a later one of this
                    // second may be due already.
                    if due.timestamp() > now.timestamp() {
                        reached_future = true;
                        break;
                    }
                    continue;
                }
                by_team.entry(team).or_default().push(Due {
                    sk: item.sk.clone(),
                    email,
                });
            }
            for (team, entries) in by_team {
                for chunk in entries.chunks(PER_COMMIT) {
                    if handled >= budget {
                        report.unfinished = true;
                        break 'pages;
                    }
                    handled += chunk.len();
                    self.expire_in_team(&team, chunk, now, &mut report).await?;
                }
            }
            match page.next {
                Some(next) if !reached_future => after = Some(next),
                _ => break,
            }
        }
        Ok(report)
    }

    /// Records the expiries `entries` name in one team, in one commit,
    /// and deletes the stale ones.
    async fn expire_in_team(
        &self,
        team: &TeamId,
        entries: &[Due],
        now: Timestamp,
        report: &mut ExpiryReport,
    ) -> Result<(), ServiceError> {
        let _turn = self.write_turn(team).await;
        let store = self.store();
        let pk = codec::team_pk(team);
        let stale_entry = |sk: &str| Write::Delete {
            pk: EXPIRING_PK.into(),
            sk: sk.to_owned(),
            condition: Condition::None,
        };
        // The records of one commit name one request id.
        let request_id = format!("sweep-{}", crate::auth::secret::id());
        for _ in 0..ROUNDS {
            let Some(meta) = self.settled_meta(team).await? else {
                // The team is gone: nothing is left to record.
                let writes: Vec<Write> = entries.iter().map(|d| stale_entry(&d.sk)).collect();
                report.stale += writes.len();
                store.transact(writes).await?;
                return Ok(());
            };
            let meta: Meta = codec::decode(&meta, &[])?;
            if meta.closing.is_some() {
                // Nothing is written to a closing team (see the module).
                return Ok(());
            }
            let mut keys: Vec<(String, String)> = entries
                .iter()
                .map(|d| (EXPIRING_PK.to_owned(), d.sk.clone()))
                .collect();
            keys.extend(
                entries
                    .iter()
                    .map(|d| (pk.clone(), codec::invite_sk(&d.email))),
            );
            let read = store.get_many(&keys).await?;
            if !self.still_at(team, meta.version).await? {
                continue;
            }
            let (present, invitations) = read.split_at(entries.len());
            let mut stale = Vec::new();
            let mut steps = Vec::new();
            for ((due, present), invitation) in entries.iter().zip(present).zip(invitations) {
                if present.is_none() {
                    // Recorded or cleared by another sweep meanwhile.
                    continue;
                }
                let invitation = invitation
                    .as_ref()
                    .map(|item| codec::decode::<Invitation>(item, &[]))
                    .transpose()?;
                match invitation {
                    Some(inv) if due_sk(inv.expires_at, team, &inv.email) == due.sk => {
                        if inv.is_expired(now) {
                            steps.push(expiry_step(&meta, &inv, &due.sk, &request_id, now));
                        }
                    }
                    _ => stale.push(stale_entry(&due.sk)),
                }
            }
            if !stale.is_empty() {
                report.stale += stale.len();
                store.transact(stale).await?;
            }
            if steps.is_empty() {
                return Ok(());
            }
            let recorded = steps.len();
            match self.commit(team, meta.version, steps, now).await {
                Ok(_) => {
                    report.recorded += recorded;
                    report.teams.push(team.clone());
                    return Ok(());
                }
                Err(ServiceError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        tracing::warn!(team = %team, "the team kept changing under the expiry sweep: left for the next");
        report.unfinished = true;
        Ok(())
    }
}

/// The commit step recording one invitation's expiry: its audit record and
/// the deletion of its due entry, which must still be there.
fn expiry_step(
    meta: &Meta,
    inv: &Invitation,
    due_sk: &str,
    request_id: &str,
    now: Timestamp,
) -> Step {
    let mut before = json!({
        "roles": inv.roles,
        "created_at": inv.created_at.to_rfc3339(),
        "expires_at": inv.expires_at.to_rfc3339(),
    });
    if let Value::Object(map) = &mut before {
        if let Some(name) = &inv.name {
            map.insert("name".into(), name.clone().into());
        }
        if let Some(by) = &inv.invited_by {
            map.insert("invited_by".into(), by.clone().into());
        }
    }
    let detail = json!({ "email": inv.email, "before": before });
    let mut audit = crate::service::audit::record(SYSTEM_ACTOR.into(), ACTION, detail, now);
    if let Value::Object(map) = &mut audit {
        // A sweep is no request: whatever task runs it, the record says so.
        map.insert("source".into(), SOURCE.into());
        map.insert("request_id".into(), request_id.into());
        map.remove("source_note");
    }
    let writes = vec![Write::Delete {
        pk: EXPIRING_PK.into(),
        sk: due_sk.to_owned(),
        condition: Condition::Exists,
    }];
    let keys = writes
        .iter()
        .map(|w| (w.key().0.to_owned(), w.key().1.to_owned()))
        .collect();
    Step {
        writes,
        audit,
        mails: Vec::new(),
        after: meta.clone(),
        keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn due_entries_sort_by_expiry_then_team_then_person() {
        let team = TeamId::parse("acme").unwrap();
        let bob = Email::parse("Bob@Acme.com").unwrap();
        let sk = due_sk(at("2026-12-12T12:00:00Z"), &team, &bob);
        assert_eq!(sk, format!("DUE#001797076800#acme#{}", bob.key()));
        assert!(sk < due_sk(at("2026-12-12T12:00:01Z"), &team, &bob));
    }

    #[test]
    fn an_expiry_moved_deletes_the_old_entry_and_writes_the_new() {
        let team = TeamId::parse("acme").unwrap();
        let bob = Email::parse("bob@acme.com").unwrap();
        let (t1, t2) = (at("2026-12-01T00:00:00Z"), at("2026-12-08T00:00:00Z"));
        assert!(due_writes(&team, &bob, Some(t1), Some(t1)).is_empty());
        let moved = due_writes(&team, &bob, Some(t1), Some(t2));
        assert!(
            matches!(&moved[..], [Write::Delete { sk, .. }, Write::Put { item, .. }]
            if *sk == due_sk(t1, &team, &bob) && item.sk == due_sk(t2, &team, &bob))
        );
        let gone = due_writes(&team, &bob, Some(t1), None);
        assert!(matches!(&gone[..], [Write::Delete { .. }]));
        // Within one second: one key, one write.
        let close = due_writes(
            &team,
            &bob,
            Some(t1),
            Some(t1 + chrono::Duration::milliseconds(5)),
        );
        assert!(matches!(&close[..], [Write::Put { .. }]));
    }
}
