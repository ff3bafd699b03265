//! Team events: every committed change, published once per change (at least
//! once, with a stable id for consumers to drop repeats), in version order
//! per team, as a CloudEvents 1.0 JSON event.
//!
//! Events are read from the audit items, which are written one per applied
//! change in the transaction of the change itself: an event exists only if
//! its change committed. Invitation expiry is committed too: the expiry
//! sweep (`crate::service::expiry`) records each expired invitation once, as
//! an `expire_invitation` audit record (actor `system:expiry`, source
//! `sweep`), published as `team.invitation.expired`.
//!
//! - In AWS the `events` function reads the table's stream and puts each new
//!   audit item on an EventBridge bus ([`publish_stream`]), `Source`
//!   `teamform`, `DetailType` the event's type, `Detail` the whole event.
//!   It stops at the first failure and reports it
//!   (`ReportBatchItemFailures`), so Lambda retries from there, in order.
//! - Locally (`teamform serve --events-file`, `--webhook`) [`LocalEvents`]
//!   reads a team's audit items after a cursor kept in the store, delivers
//!   each, and moves the cursor after each delivery: a restarted server goes
//!   on where it stopped, and repeats at most the event it was delivering,
//!   under the same id.
//!
//! An event (`type` from [`TYPES`]):
//!
//! ```json
//! {"specversion": "1.0", "id": "acme/000000000003/0001",
//!  "source": "teamform/teams/acme", "type": "team.member.invited",
//!  "time": "2026-11-30T10:00:00+00:00", "subject": "bob@acme.com",
//!  "datacontenttype": "application/json",
//!  "data": {"team": "acme", "version": 3, "seq": 1, "action": "invite",
//!           "actor": "user:alice@acme.com", "actor_kind": "person",
//!           "request_id": "...", "source": "api",
//!           "change": {"op": "invite", "email": "bob@acme.com", ...}}}
//! ```
//!
//! Webhook deliveries are signed: `Teamform-Signature: t=UNIX,v1=HEX`, where
//! HEX is the HMAC-SHA256 under the shared secret of `UNIX.BODY` (the
//! decimal timestamp, a dot, the exact body bytes). A receiver recomputes it
//! ([`verify_signature`]), compares in constant time, and rejects a `t`
//! further than a few minutes from its clock (a replay).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
#[cfg(feature = "aws")]
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
#[cfg(feature = "aws")]
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::Sha256;
use teamform_core::TeamId;
use tokio::sync::mpsc;

#[cfg(feature = "aws")]
use crate::mail::mailer::{failure, plain_image};
use crate::service::CommitListener;
use crate::store::codec;
use crate::store::{Condition, Item, PageRequest, Store, StoreError, Write};

/// The EventBridge `Source` of every event (rules match on it).
pub const BUS_SOURCE: &str = "teamform";
/// The signature header of webhook deliveries.
pub const SIGNATURE_HEADER: &str = "teamform-signature";
/// Most events one `PutEvents` call takes.
pub const PUT_EVENTS_MAX: usize = 10;

/// The event type of each recorded action. An action not listed (a newer
/// operation) is published as `team.` and its action.
pub const TYPES: &[(&str, &str)] = &[
    ("create_team", "team.created"),
    ("rename_team", "team.renamed"),
    ("update_settings", "team.settings.updated"),
    ("create_role", "team.role.created"),
    ("update_role", "team.role.updated"),
    ("delete_role", "team.role.deleted"),
    ("invite", "team.member.invited"),
    ("reinvite", "team.member.reinvited"),
    ("add_member", "team.member.provisioned"),
    ("change_invitation_roles", "team.invitation.roles_changed"),
    ("revoke_invitation", "team.invitation.revoked"),
    ("expire_invitation", "team.invitation.expired"),
    ("accept_invitation", "team.member.joined"),
    ("change_roles", "team.member.roles_changed"),
    ("remove_member", "team.member.removed"),
    ("leave", "team.member.left"),
    ("transfer_ownership", "team.ownership.transfer_started"),
    ("cancel_transfer", "team.ownership.transfer_cancelled"),
    ("confirm_transfer", "team.ownership.transfer_confirmed"),
    ("complete_transfer", "team.ownership.transferred"),
    ("create_api_key", "team.api_key.created"),
    ("revoke_api_key", "team.api_key.revoked"),
];

/// The event type of an action.
pub fn event_type(action: &str) -> String {
    TYPES
        .iter()
        .find(|(a, _)| *a == action)
        .map(|(_, t)| (*t).to_owned())
        .unwrap_or_else(|| format!("team.{action}"))
}

/// A CloudEvents 1.0 event in its JSON form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    pub specversion: String,
    /// `{team}/{version:012}/{seq:04}`: the same for every delivery of one
    /// change.
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub datacontenttype: String,
    pub data: Value,
}

impl CloudEvent {
    pub fn team(&self) -> &str {
        self.data
            .get("team")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub fn version(&self) -> u64 {
        self.data
            .get("version")
            .and_then(Value::as_u64)
            .unwrap_or_default()
    }
}

/// An audit item no event can be made of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit item {pk} / {sk}: {problem}")]
pub struct MalformedAudit {
    pub pk: String,
    pub sk: String,
    pub problem: &'static str,
}

/// The event of one audit item (`pk` `TEAM#<team>`, `sk`
/// `AUDIT#<version>#<seq>`); an error says what is missing.
pub fn from_audit(
    pk: &str,
    sk: &str,
    attrs: &Map<String, Value>,
) -> Result<CloudEvent, MalformedAudit> {
    let malformed = |problem| MalformedAudit {
        pk: pk.to_owned(),
        sk: sk.to_owned(),
        problem,
    };
    let team = pk
        .strip_prefix("TEAM#")
        .ok_or_else(|| malformed("not under a team"))?;
    let (version, seq) = sk
        .strip_prefix(codec::AUDIT)
        .and_then(|rest| rest.split_once('#'))
        .and_then(|(v, s)| Some((v.parse::<u64>().ok()?, s.parse::<u64>().ok()?)))
        .ok_or_else(|| malformed("its key names no version"))?;
    let text = |k: &str| attrs.get(k).and_then(Value::as_str);
    let (Some(action), Some(at), Some(actor)) = (text("action"), text("at"), text("actor")) else {
        return Err(malformed("lacks its action, time or actor"));
    };
    let mut data = Map::new();
    data.insert("team".into(), team.into());
    data.insert("version".into(), version.into());
    data.insert("seq".into(), seq.into());
    data.insert("action".into(), action.into());
    data.insert("actor".into(), actor.into());
    data.insert(
        "actor_kind".into(),
        text("actor_kind")
            .map(str::to_owned)
            .unwrap_or_else(|| crate::service::audit::actor_kind(actor))
            .into(),
    );
    for k in ["request_id", "source", "source_note"] {
        if let Some(v) = text(k) {
            data.insert(k.into(), v.into());
        }
    }
    data.insert(
        "change".into(),
        attrs.get("change").cloned().unwrap_or(Value::Null),
    );
    let subject = crate::service::audit::subjects(attrs)
        .next()
        .map(str::to_owned);
    Ok(CloudEvent {
        specversion: "1.0".into(),
        id: format!("{team}/{version:012}/{seq:04}"),
        source: format!("teamform/teams/{team}"),
        kind: event_type(action),
        time: at.to_owned(),
        subject,
        datacontenttype: "application/json".into(),
        data: Value::Object(data),
    })
}

/// The event of a stored audit item.
pub fn from_item(item: &Item) -> Result<CloudEvent, MalformedAudit> {
    from_audit(&item.pk, &item.sk, &item.attrs)
}

// ---------------------------------------------------------------------------
// AWS: the table's stream to an EventBridge bus.

/// Where stream events go: EventBridge in AWS; tests may use their own.
#[cfg(feature = "aws")]
#[async_trait]
pub trait Bus: Send + Sync {
    /// Puts events in order. On failure, the index of the first event that
    /// was not put (every event from it on is to be sent again).
    async fn put(&self, events: &[CloudEvent]) -> Result<(), (usize, String)>;
}

/// Puts events on one EventBridge bus.
#[cfg(feature = "aws")]
pub struct EventBridge {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

#[cfg(feature = "aws")]
impl EventBridge {
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[cfg(feature = "aws")]
#[async_trait]
impl Bus for EventBridge {
    async fn put(&self, events: &[CloudEvent]) -> Result<(), (usize, String)> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let mut entries = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let detail = serde_json::to_string(e).map_err(|err| (i, err.to_string()))?;
            entries.push(
                PutEventsRequestEntry::builder()
                    .event_bus_name(&self.bus)
                    .source(BUS_SOURCE)
                    .detail_type(&e.kind)
                    .detail(detail)
                    .build(),
            );
        }
        let out = self
            .client
            .put_events()
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                (
                    0,
                    aws_sdk_eventbridge::error::DisplayErrorContext(e).to_string(),
                )
            })?;
        if out.failed_entry_count() == 0 {
            return Ok(());
        }
        let results = out.entries();
        let first = results
            .iter()
            .position(|r| r.error_code().is_some())
            .unwrap_or(0);
        let why = results
            .get(first)
            .map(|r| {
                format!(
                    "{}: {}",
                    r.error_code().unwrap_or("error"),
                    r.error_message().unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "PutEvents failed an entry".into());
        Err((first, why))
    }
}

/// What a stream record holds for events.
#[cfg(feature = "aws")]
enum Audit {
    Other,
    Event(Box<CloudEvent>),
    Unreadable(String),
}

#[cfg(feature = "aws")]
fn read_audit(record: &EventRecord) -> Audit {
    if record.event_name != "INSERT" {
        return Audit::Other;
    }
    let Some(attrs) = plain_image(record) else {
        return Audit::Other;
    };
    if attrs.get("type").and_then(Value::as_str) != Some("audit") {
        return Audit::Other;
    }
    let text = |k: &str| attrs.get(k).and_then(Value::as_str);
    let (Some(pk), Some(sk)) = (text("pk"), text("sk")) else {
        return Audit::Unreadable("audit item without its key".into());
    };
    match from_audit(pk, sk, &attrs) {
        Ok(e) => Audit::Event(Box::new(e)),
        Err(e) => Audit::Unreadable(e.to_string()),
    }
}

/// Puts the events of the new audit items of a stream batch on the bus, in
/// order, up to [`PUT_EVENTS_MAX`] a call. Stops at the first failure (a
/// call or an entry refused, or an audit item that cannot be read) and
/// reports that record, so Lambda retries it and everything after it.
#[cfg(feature = "aws")]
pub async fn publish_stream(event: Event, bus: &dyn Bus) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut pending: Vec<(&EventRecord, CloudEvent)> = Vec::new();
    for record in &event.records {
        match read_audit(record) {
            Audit::Other => {}
            Audit::Event(e) => {
                pending.push((record, *e));
                if pending.len() == PUT_EVENTS_MAX {
                    if let Some(failed) = flush(bus, &pending).await {
                        response.batch_item_failures.push(failure(failed));
                        return response;
                    }
                    pending.clear();
                }
            }
            Audit::Unreadable(error) => {
                if let Some(failed) = flush(bus, &pending).await {
                    response.batch_item_failures.push(failure(failed));
                    return response;
                }
                tracing::error!(
                    %error,
                    sequence_number = ?record.change.sequence_number,
                    "an audit item cannot be read; its event is kept for retry"
                );
                response.batch_item_failures.push(failure(record));
                return response;
            }
        }
    }
    if let Some(failed) = flush(bus, &pending).await {
        response.batch_item_failures.push(failure(failed));
    }
    response
}

/// Puts pending events; the record of the first that failed, if any.
#[cfg(feature = "aws")]
async fn flush<'r>(
    bus: &dyn Bus,
    pending: &[(&'r EventRecord, CloudEvent)],
) -> Option<&'r EventRecord> {
    if pending.is_empty() {
        return None;
    }
    let events: Vec<CloudEvent> = pending.iter().map(|(_, e)| e.clone()).collect();
    match bus.put(&events).await {
        Ok(()) => {
            for e in &events {
                tracing::info!(id = %e.id, kind = %e.kind, "event published");
            }
            None
        }
        Err((index, error)) => {
            let index = index.min(pending.len() - 1);
            tracing::error!(%error, id = %pending[index].1.id, "could not publish an event; it will be retried");
            Some(pending[index].0)
        }
    }
}

// ---------------------------------------------------------------------------
// Signatures.

type HmacSha256 = Hmac<Sha256>;

/// The `Teamform-Signature` value of `body` sent at `t` (unix seconds).
pub fn sign(secret: &[u8], t: i64, body: &[u8]) -> String {
    // An HMAC takes a key of any length: `new_from_slice` cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => return format!("t={t},v1="),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not `t=UNIX,v1=HEX`")]
    Malformed,
    #[error("the signature is {0} s away from now: a replay or a wrong clock")]
    Stale(i64),
    #[error("no v1 signature matches the body")]
    Mismatch,
}

/// Checks a `Teamform-Signature` header against the body, at `now` (unix
/// seconds), refusing a `t` more than `tolerance` seconds away. Several
/// `v1=` entries may be given (a secret being rotated): one must match.
pub fn verify_signature(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: i64,
    tolerance: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > tolerance {
        return Err(SignatureError::Stale(now - t));
    }
    for sig in sigs {
        let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
            return Err(SignatureError::Mismatch);
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

// ---------------------------------------------------------------------------
// Local: a JSON Lines file and a signed webhook, from a cursor in the store.

/// Where a local host delivers events.
#[async_trait]
pub trait Target: Send + Sync + 'static {
    /// Names the target's cursor in the store (`file`, `webhook`).
    fn name(&self) -> &str;
    /// Delivers one event, given as its JSON text.
    async fn deliver(&self, event: &CloudEvent, body: &str) -> Result<(), String>;
}

/// Appends each event as one line of a file.
pub struct JsonlFile {
    path: PathBuf,
}

impl JsonlFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[async_trait]
impl Target for JsonlFile {
    fn name(&self) -> &str {
        "file"
    }

    async fn deliver(&self, _event: &CloudEvent, body: &str) -> Result<(), String> {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|e| format!("cannot open {}: {e}", self.path.display()))?;
        let mut line = body.to_owned();
        line.push('\n');
        f.write_all(line.as_bytes())
            .await
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))?;
        f.sync_data()
            .await
            .map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

/// POSTs each event, signed, to a URL; any 2xx is a delivery.
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
}

impl Webhook {
    pub fn new(url: impl Into<String>, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            url: url.into(),
            secret: secret.into(),
        }
    }
}

#[async_trait]
impl Target for Webhook {
    fn name(&self) -> &str {
        "webhook"
    }

    async fn deliver(&self, event: &CloudEvent, body: &str) -> Result<(), String> {
        let t = chrono::Utc::now().timestamp();
        let res = self
            .client
            .post(&self.url)
            .header("content-type", "application/cloudevents+json")
            .header(SIGNATURE_HEADER, sign(&self.secret, t, body.as_bytes()))
            .header("teamform-event-id", &event.id)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| format!("POST {}: {e}", self.url))?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("POST {}: HTTP {}", self.url, res.status()))
        }
    }
}

/// How deliveries are retried: waits from `first`, doubling up to `max`,
/// each drawn between half and all of it (jitter); after `attempts`, the
/// team is tried again `max` later, from its cursor.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub first: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            first: Duration::from_millis(500),
            max: Duration::from_secs(60),
            attempts: 8,
        }
    }
}

impl Retry {
    /// The wait after failed attempt `n` (from 0).
    pub fn delay(&self, n: u32) -> Duration {
        use rand::Rng;
        let full = self
            .first
            .saturating_mul(2u32.saturating_pow(n.min(20)))
            .min(self.max);
        let half = full / 2;
        let extra = rand::rng().random_range(0..=half.as_millis().min(u64::MAX as u128) as u64);
        half + Duration::from_millis(extra)
    }
}

/// The key of a target's cursor for a team: in the team's partition, so
/// that deleting a closed team deletes its cursors, and a new team of the
/// same id starts from its own first event.
fn cursor_key(target: &str, team: &TeamId) -> (String, String) {
    (codec::team_pk(team), format!("EVENTCURSOR#{target}"))
}

/// Delivers a team's audit records after the target's cursor, one by one,
/// moving the cursor after each. Returns how many were delivered; an error
/// leaves the cursor at the last delivered event.
pub async fn drain(
    store: &dyn Store,
    target: &dyn Target,
    retry: &Retry,
    team: &TeamId,
) -> Result<usize, String> {
    let (cpk, csk) = cursor_key(target.name(), team);
    let stored = |e: StoreError| format!("events of {team} for {}: {e}", target.name());
    let mut after = store
        .get(&cpk, &csk)
        .await
        .map_err(stored)?
        .and_then(|i| i.str("after").map(str::to_owned));
    let pk = codec::team_pk(team);
    let mut done = 0;
    loop {
        let page = store
            .query(
                &pk,
                codec::AUDIT,
                PageRequest {
                    limit: Some(100),
                    after: after.clone(),
                },
            )
            .await
            .map_err(stored)?;
        for item in page.items {
            let event = from_item(&item).map_err(|e| e.to_string())?;
            let body = serde_json::to_string(&event).map_err(|e| e.to_string())?;
            let mut attempt = 0;
            loop {
                match target.deliver(&event, &body).await {
                    Ok(()) => break,
                    Err(error) => {
                        attempt += 1;
                        if attempt >= retry.attempts {
                            return Err(format!("event {} not delivered: {error}", event.id));
                        }
                        let wait = retry.delay(attempt - 1);
                        tracing::warn!(%error, id = %event.id, attempt, wait_ms = wait.as_millis() as u64, "event delivery failed; retrying");
                        tokio::time::sleep(wait).await;
                    }
                }
            }
            store
                .transact(vec![Write::Put {
                    item: Item::new(cpk.clone(), csk.clone()).with("after", item.sk.clone()),
                    condition: Condition::None,
                }])
                .await
                .map_err(stored)?;
            tracing::debug!(id = %event.id, target = target.name(), "event delivered");
            after = Some(item.sk);
            done += 1;
        }
        if page.next.is_none() {
            return Ok(done);
        }
    }
}

/// Publishes committed changes to local targets: one worker per target,
/// woken with the team that committed, delivering in version order per team.
pub struct LocalEvents {
    queues: Vec<mpsc::UnboundedSender<TeamId>>,
}

impl LocalEvents {
    /// Starts one worker per target on the current runtime.
    pub fn start(store: Arc<dyn Store>, targets: Vec<Arc<dyn Target>>, retry: Retry) -> Arc<Self> {
        let mut queues = Vec::new();
        for target in targets {
            let (tx, rx) = mpsc::unbounded_channel();
            // A weak sender for retries: the worker ends once `Self` is
            // dropped (the service that held it is gone).
            tokio::spawn(worker(store.clone(), target, retry, rx, tx.downgrade()));
            queues.push(tx);
        }
        Arc::new(Self { queues })
    }

    /// Queues every team of the store, for what an earlier run committed but
    /// did not deliver. Reads the whole store (`Store::scan`): a local host
    /// calls it once at start.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let metas = store.scan(codec::META).await?;
        let mut n = 0;
        for meta in metas {
            if let Some(team) = meta
                .pk
                .strip_prefix("TEAM#")
                .and_then(|t| TeamId::parse(t).ok())
            {
                self.committed(&team);
                n += 1;
            }
        }
        Ok(n)
    }
}

impl CommitListener for LocalEvents {
    fn committed(&self, team: &TeamId) {
        for q in &self.queues {
            let _ = q.send(team.clone());
        }
    }
}

async fn worker(
    store: Arc<dyn Store>,
    target: Arc<dyn Target>,
    retry: Retry,
    mut rx: mpsc::UnboundedReceiver<TeamId>,
    requeue: mpsc::WeakUnboundedSender<TeamId>,
) {
    while let Some(first) = rx.recv().await {
        // Teams woken many times while a delivery ran are drained once.
        let mut teams = BTreeSet::from([first]);
        while let Ok(more) = rx.try_recv() {
            teams.insert(more);
        }
        for team in teams {
            if let Err(error) = drain(store.as_ref(), target.as_ref(), &retry, &team).await {
                tracing::error!(%error, team = %team, target = target.name(), "events wait for the next try");
                let (q, wait) = (requeue.clone(), retry.max);
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Some(q) = q.upgrade() {
                        let _ = q.send(team);
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_audit_item_is_a_cloud_event_with_a_stable_id() {
        let attrs = match json!({"type": "audit", "at": "2026-11-30T10:00:00+00:00",
            "actor": "api-key:k1", "action": "invite", "version": 3,
            "change": {"op": "invite", "email": "bob@acme.com"},
            "request_id": "r-1", "source": "apply", "source_note": "commit abc"})
        {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let e = from_audit("TEAM#acme", "AUDIT#000000000003#0001", &attrs).unwrap();
        assert_eq!(e.id, "acme/000000000003/0001");
        assert_eq!(e.kind, "team.member.invited");
        assert_eq!(e.source, "teamform/teams/acme");
        assert_eq!(e.subject.as_deref(), Some("bob@acme.com"));
        assert_eq!(e.data["actor_kind"], "api_key");
        assert_eq!(e.data["source_note"], "commit abc");
        assert_eq!(e.version(), 3);
        assert!(from_audit("TEAM#acme", "AUDIT#x", &attrs).is_err());
        assert!(from_audit("TEAM#acme", "AUDIT#000000000003#0001", &Map::new()).is_err());
    }

    #[test]
    fn signatures_verify_and_refuse_tampering_and_replays() {
        let h = sign(b"s3cret", 1_000, b"{\"a\":1}");
        assert_eq!(
            verify_signature(b"s3cret", &h, b"{\"a\":1}", 1_010, 300),
            Ok(())
        );
        assert_eq!(
            verify_signature(b"s3cret", &h, b"{\"a\":2}", 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"other", &h, b"{\"a\":1}", 1_010, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(b"s3cret", &h, b"{\"a\":1}", 2_000, 300),
            Err(SignatureError::Stale(1_000))
        );
        assert_eq!(
            verify_signature(b"s3cret", "v1=00", b"", 0, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_its_cap() {
        let r = Retry {
            first: Duration::from_millis(100),
            max: Duration::from_millis(1_000),
            attempts: 5,
        };
        for n in 0..10 {
            let full = Duration::from_millis((100u64 << n.min(4)).min(1_000));
            let d = r.delay(n);
            assert!(d >= full / 2 && d <= full, "attempt {n}: {d:?} vs {full:?}");
        }
    }
}
