//! Batches larger than one transaction, applied as one.
//!
//! A transaction holds at most 100 writes, so a batch of thousands of
//! changes is committed in parts. Nobody may see it half applied. Before
//! its first part the batch is written down as an intent: its prepared
//! parts, serialized into `INTENT#<intent>#<chunk>` items under the team
//! (each far below DynamoDB's 400 KB item limit). The first part marks
//! `META` as `applying` the intent, in the same transaction. Every access to
//! the team reads `META` first (`Service::settled_meta`, which adds no call
//! while nothing is in progress); one that finds a batch in progress
//! finishes it (rolls it forward) before it reads or writes anything else.
//! So readers see the team before or after the batch, no writer writes into
//! the middle of one (its own commit is conditioned on a version it read
//! with no batch in progress), and a batch whose process died completes on
//! the next access.
//!
//! Part `i` (from 0) moves `META` from version `base + i` to `base + i + 1`
//! under that condition, so a part applied twice (by the process that
//! started the batch and by one finishing it) is refused the second time
//! and changes nothing. The last part leaves `applying` in place; a final
//! transaction clears it (the version stays), deletes the intent and keeps
//! the reply of the request that started the batch for its
//! `Idempotency-Key`, so that finishing is idempotent too and a retry after
//! a crash replays the result instead of running the batch again.
//!
//! A process that dies after writing an intent but before its first part
//! leaves the intent behind, never named by `META`. The next batch of the
//! team deletes it once finished (`drop_dead_intents`); closing the team
//! deletes it in any case.
//!
//! Within one process a reader that finds a batch this process is applying
//! waits for it instead of racing it part for part.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use teamform_core::TeamId;

use crate::auth::secret;
use crate::service::{Applied, Prepared, Service, ServiceError, team_exists};
use crate::store::codec::{self, Applying, Meta};
use crate::store::{Condition, Item, MAX_TRANSACT_WRITES, StoreError, Write};

/// Most bytes of serialized parts one intent item holds: half DynamoDB's
/// item limit, with room for keys and attribute names.
pub const CHUNK_BYTES: usize = 200_000;

/// Intent items written per transaction (DynamoDB caps a transaction at
/// 4 MB).
const CHUNKS_PER_TRANSACTION: usize = 8;

/// Failed attempts in a row (lost races, conflicts) before a roll forward
/// gives up and reports the conflict; the next access takes it up again.
const MAX_STALLS: u32 = 50;

/// Batches one access finishes before it goes on with its own business.
const MAX_SETTLES: u32 = 8;

/// How long an access waits for a batch this process is applying before
/// it helps finish it.
const WAIT_FOR_OWN: Duration = Duration::from_secs(60);

/// Times a read starts over because a commit went in while it read.
pub const READ_ROUNDS: u32 = 20;

/// A team that kept changing under a read.
pub(crate) fn busy(team: &TeamId) -> ServiceError {
    tracing::warn!(team = %team, "the team kept changing while it was read");
    ServiceError::Store(StoreError::Conflict)
}

/// One stored part: its writes, and the team-level fields it leaves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Part {
    pub writes: Vec<Write>,
    pub meta: Meta,
}

/// The intents this process is applying.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    fn enter(&self, intent: &str) -> Driving<'_> {
        if let Ok(mut set) = self.0.lock() {
            set.insert(intent.to_owned());
        }
        Driving {
            set: self,
            intent: intent.to_owned(),
        }
    }

    fn contains(&self, intent: &str) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(intent))
    }
}

/// Removes an intent from `InFlight` when its driver ends, however it ends.
struct Driving<'a> {
    set: &'a InFlight,
    intent: String,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.set.0.lock() {
            set.remove(&self.intent);
        }
    }
}

/// The transaction of part `index`: its writes and the `META` it leaves,
/// still naming the batch in progress.
fn part_transaction(
    applying: &Applying,
    index: u64,
    part: &Part,
) -> Result<Vec<Write>, StoreError> {
    let mut writes = part.writes.clone();
    let mut meta = part.meta.clone();
    meta.version = applying.base + index + 1;
    meta.applying = Some(applying.clone());
    let condition = if applying.base == 0 && index == 0 {
        Condition::NotExists
    } else {
        Condition::VersionEquals(applying.base + index)
    };
    writes.push(Write::Put {
        item: meta.item()?,
        condition,
    });
    Ok(writes)
}

/// Serialized parts cut into pieces of at most `CHUNK_BYTES` bytes, each
/// cut on a character boundary.
fn encode_chunks(parts: &[Part]) -> Result<Vec<String>, StoreError> {
    let text = serde_json::to_string(parts)
        .map_err(|e| StoreError::Malformed(format!("encoding a batch's intent: {e}")))?;
    let mut chunks = Vec::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(CHUNK_BYTES);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        chunks.push(head.to_owned());
        rest = tail;
    }
    Ok(chunks)
}

fn malformed(team: &TeamId, what: impl std::fmt::Display) -> ServiceError {
    ServiceError::Store(StoreError::Malformed(format!("team {team}: {what}")))
}

impl Service {
    /// `META` of a team with no batch in progress: a batch found in
    /// progress is finished first. `None` when the team does not exist.
    /// Costs one read while nothing is in progress.
    pub(crate) async fn settled_meta(&self, team: &TeamId) -> Result<Option<Item>, ServiceError> {
        let pk = codec::team_pk(team);
        let started = Instant::now();
        let mut settles = 0;
        loop {
            let Some(item) = self.store().get(&pk, codec::META).await? else {
                return Ok(None);
            };
            if !item.attrs.contains_key("applying") {
                return Ok(Some(item));
            }
            let Some(applying) = codec::decode::<Meta>(&item, &[])?.applying else {
                return Ok(Some(item));
            };
            if self.in_flight.contains(&applying.intent) && started.elapsed() < WAIT_FOR_OWN {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            settles += 1;
            if settles > MAX_SETTLES {
                return Err(ServiceError::Store(StoreError::Conflict));
            }
            tracing::info!(team = %team, intent = %applying.intent, "finishing a batch in progress");
            self.drive(team, &applying, None).await?;
        }
    }

    /// Whether the team is still at `version` with no batch in progress.
    /// Every commit moves the version, so items read between a look at
    /// `META` and this one all belong to that version.
    pub(crate) async fn still_at(&self, team: &TeamId, version: u64) -> Result<bool, ServiceError> {
        Ok(self
            .store()
            .get(&codec::team_pk(team), codec::META)
            .await?
            .is_some_and(|m| m.version() == version && !m.attrs.contains_key("applying")))
    }

    /// Finishes whatever batch the team has in progress (nothing when none
    /// is): what a retried request does before it runs again.
    pub async fn settle(&self, team: &TeamId) -> Result<(), ServiceError> {
        self.settled_meta(team).await.map(|_| ())
    }

    /// Commits parts of a batch as an intent (see the module). `applied`
    /// is the number of changes, for the kept reply.
    pub(crate) async fn commit_intent(
        &self,
        team: &TeamId,
        base: u64,
        prepared: Vec<Prepared>,
        applied: usize,
    ) -> Result<u64, ServiceError> {
        let pk = codec::team_pk(team);
        let mails = prepared.iter().any(|p| p.mails);
        let parts: Vec<Part> = prepared
            .into_iter()
            .map(|p| Part {
                writes: p.writes,
                meta: p.meta,
            })
            .collect();
        let Some(first) = parts.first() else {
            return Ok(base);
        };
        let chunks = encode_chunks(&parts)?;
        let intent = secret::id();
        let target = base + parts.len() as u64;
        let reply = crate::http::idempotency::reply_for(&Applied {
            team: team.clone(),
            version: target,
            applied,
            links: Vec::new(),
        });
        let applying = Applying {
            intent: intent.clone(),
            base,
            parts: parts.len() as u64,
            chunks: chunks.len() as u64,
            mails,
            reply,
        };
        let _driving = self.in_flight.enter(&intent);
        let items: Vec<Write> = chunks
            .into_iter()
            .enumerate()
            .map(|(n, data)| Write::Put {
                item: Item::new(pk.clone(), codec::intent_sk(&intent, n))
                    .with("type", "intent")
                    .with("base", base)
                    .with("data", data),
                condition: Condition::NotExists,
            })
            .collect();
        for group in items.chunks(CHUNKS_PER_TRANSACTION) {
            if let Err(e) = self.store().transact(group.to_vec()).await {
                self.discard(team, &applying).await;
                return Err(e.into());
            }
        }
        let begin = part_transaction(&applying, 0, first)?;
        match self.store().transact(begin).await {
            Ok(()) => {}
            Err(e @ (StoreError::ConditionFailed { .. } | StoreError::Conflict)) => {
                // Nothing of the batch was written, unless the transaction
                // went through and only its answer was lost: META says.
                let now = self.store().get(&pk, codec::META).await?;
                let ours = match &now {
                    Some(item) => codec::decode::<Meta>(item, &[])?
                        .applying
                        .is_some_and(|a| a.intent == intent),
                    None => false,
                };
                if !ours {
                    tracing::debug!(error = %e, team = %team, "a batch lost a race before its first part");
                    self.discard(team, &applying).await;
                    return Err(match now {
                        Some(_) if base == 0 => team_exists(team),
                        _ => self.conflict(team, base).await,
                    });
                }
            }
            // In doubt: the intent stays, and the next access finishes the
            // batch if its first part went in.
            Err(e) => return Err(e.into()),
        }
        self.drive(team, &applying, Some(&parts)).await?;
        Ok(target)
    }

    /// Deletes the items of an intent that never began. Best effort: an
    /// intent `META` does not name is never read.
    async fn discard(&self, team: &TeamId, applying: &Applying) {
        let pk = codec::team_pk(team);
        let deletes: Vec<Write> = (0..applying.chunks as usize)
            .map(|n| Write::Delete {
                pk: pk.clone(),
                sk: codec::intent_sk(&applying.intent, n),
                condition: Condition::None,
            })
            .collect();
        for group in deletes.chunks(MAX_TRANSACT_WRITES) {
            if let Err(e) = self.store().transact(group.to_vec()).await {
                tracing::warn!(error = %e, team = %team, "could not delete an unused batch intent");
            }
        }
    }

    /// Deletes intents that can never begin: those whose first part is
    /// conditioned on a version below `version`, the one a batch just
    /// finished at. Versions only grow, and no writer takes a version seen
    /// during a batch as its base (every access settles the batch first),
    /// so such an intent is the leftover of a process that died between
    /// writing it and its first part. Intents at `version` or later may be
    /// another batch on its way and are left alone; so are items without a
    /// `base`. Best effort: a leftover is never read, only kept.
    async fn drop_dead_intents(&self, team: &TeamId, version: u64) {
        let pk = codec::team_pk(team);
        let items = match self.store().query_all(&pk, codec::INTENT).await {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, team = %team, "could not look for unused batch intents");
                return;
            }
        };
        let deletes: Vec<Write> = items
            .into_iter()
            .filter(|item| {
                item.int("base")
                    .and_then(|base| u64::try_from(base).ok())
                    .is_some_and(|base| base < version)
            })
            .map(|item| Write::Delete {
                pk: item.pk,
                sk: item.sk,
                condition: Condition::None,
            })
            .collect();
        if !deletes.is_empty() {
            tracing::info!(team = %team, items = deletes.len(), "deleting the intent of a batch that never began");
        }
        for group in deletes.chunks(MAX_TRANSACT_WRITES) {
            if let Err(e) = self.store().transact(group.to_vec()).await {
                tracing::warn!(error = %e, team = %team, "could not delete an unused batch intent");
            }
        }
    }

    /// Reads the parts of an intent back.
    async fn load_intent(
        &self,
        team: &TeamId,
        applying: &Applying,
    ) -> Result<Vec<Part>, ServiceError> {
        let items = self
            .store()
            .query_all(
                &codec::team_pk(team),
                &codec::intent_prefix(&applying.intent),
            )
            .await?;
        if items.len() as u64 != applying.chunks {
            return Err(malformed(
                team,
                format!(
                    "intent {} has {} of its {} items",
                    applying.intent,
                    items.len(),
                    applying.chunks
                ),
            ));
        }
        let mut text = String::new();
        for item in &items {
            text.push_str(
                item.str("data")
                    .ok_or_else(|| malformed(team, format!("{} has no data", item.sk)))?,
            );
        }
        let parts: Vec<Part> = serde_json::from_str(&text)
            .map_err(|e| malformed(team, format!("intent {}: {e}", applying.intent)))?;
        if parts.len() as u64 != applying.parts {
            return Err(malformed(
                team,
                format!(
                    "intent {} holds {} parts, not {}",
                    applying.intent,
                    parts.len(),
                    applying.parts
                ),
            ));
        }
        Ok(parts)
    }

    /// Applies the parts of `applying` that are not in yet and finishes
    /// it; returns once the batch is complete (by whoever completed it).
    /// `parts` are the intent's parts when the caller holds them; else
    /// they are read when needed.
    async fn drive(
        &self,
        team: &TeamId,
        applying: &Applying,
        parts: Option<&[Part]>,
    ) -> Result<(), ServiceError> {
        let pk = codec::team_pk(team);
        let mut loaded: Option<Vec<Part>> = None;
        // The version our own last write left: no need to read it back.
        let mut known: Option<u64> = None;
        let mut stalls = 0;
        loop {
            let version = match known.take() {
                Some(version) => version,
                None => {
                    let Some(item) = self.store().get(&pk, codec::META).await? else {
                        return Err(malformed(team, "META vanished during a batch"));
                    };
                    let meta: Meta = codec::decode(&item, &[])?;
                    match meta.applying {
                        Some(a) if a.intent == applying.intent => meta.version,
                        // Finished by someone else.
                        _ => return Ok(()),
                    }
                }
            };
            let done = version
                .checked_sub(applying.base)
                .filter(|done| *done <= applying.parts)
                .ok_or_else(|| {
                    malformed(
                        team,
                        format!("version {version} is outside batch {}", applying.intent),
                    )
                })?;
            let result = if done < applying.parts {
                if parts.is_none() && loaded.is_none() {
                    loaded = Some(self.load_intent(team, applying).await?);
                }
                let part = parts
                    .or(loaded.as_deref())
                    .and_then(|all| all.get(done as usize))
                    .ok_or_else(|| malformed(team, format!("intent lacks part {done}")))?;
                let writes = part_transaction(applying, done, part)?;
                self.store().transact(writes).await.map(|()| false)
            } else {
                self.finish(team, applying, version).await.map(|()| true)
            };
            match result {
                Ok(false) => {
                    known = Some(version + 1);
                    stalls = 0;
                }
                Ok(true) => {
                    self.committed(team);
                    self.drop_dead_intents(team, applying.base + applying.parts)
                        .await;
                    if applying.mails {
                        self.deliver_mail(team).await;
                    }
                    return Ok(());
                }
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                    stalls += 1;
                    if stalls > MAX_STALLS {
                        return Err(ServiceError::Store(StoreError::Conflict));
                    }
                    tokio::time::sleep(Duration::from_millis(u64::from(stalls.min(20)) * 5)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Clears `applying` once every part is in (at `version`), deletes the
    /// intent and keeps the reply.
    async fn finish(
        &self,
        team: &TeamId,
        applying: &Applying,
        version: u64,
    ) -> Result<(), StoreError> {
        let pk = codec::team_pk(team);
        let mut deletes: Vec<Write> = (0..applying.chunks as usize)
            .map(|n| Write::Delete {
                pk: pk.clone(),
                sk: codec::intent_sk(&applying.intent, n),
                condition: Condition::None,
            })
            .collect();
        // META and the reply share the last transaction with what is left.
        let room = MAX_TRANSACT_WRITES - 2;
        if deletes.len() > room {
            for group in deletes.split_off(room).chunks(MAX_TRANSACT_WRITES) {
                self.store().transact(group.to_vec()).await?;
            }
        }
        let Some(mut meta) = self.store().get(&pk, codec::META).await? else {
            return Err(StoreError::Malformed(format!(
                "team {team}: META vanished during a batch"
            )));
        };
        meta.attrs.remove("applying");
        let mut writes = vec![Write::Put {
            item: meta,
            condition: Condition::VersionEquals(version),
        }];
        writes.extend(deletes);
        if let Some(reply) = &applying.reply {
            writes.push(Write::Put {
                item: reply.clone(),
                condition: Condition::None,
            });
        }
        self.store().transact(writes).await
    }
}
