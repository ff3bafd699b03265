//! `Idempotency-Key` on POST: the first response to a key is kept for 24
//! hours and replayed for a retry with the same request; the same key with a
//! different request is refused (422). Keys are scoped to the principal that
//! sent them (not to the raw header), so two callers never share one and one
//! caller's key is the same whatever the spelling of its `Authorization`.
//!
//! The request is authenticated before any key is claimed: an anonymous or
//! bad credential gets its 401 and costs no write. A claim is a short lease
//! (`LEASE_SECS`), not a day: two concurrent requests with one key never both
//! run, and a request that panicked, was cancelled or whose process died
//! frees its key at once (released by a drop guard) or when the lease ends.
//! Only successful responses are kept; a failed request releases its key so
//! the caller can correct and retry. Secrets in a kept response (new API
//! keys, tokens) are not stored: a replay says the secret was already shown.
//!
//! A batch committed in several parts (`crate::service::intent`) keeps the reply of
//! the request that started it when it completes, whoever completes it: a
//! retry after the process died mid-batch finishes the team's batch first
//! (`Service::settle`) and then finds the reply, so the batch never runs
//! twice. A failed request frees its key only while it still holds it, so
//! such a reply is never deleted.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;

use teamform_core::TeamId;

use crate::http::{ApiError, AppState, Authenticated, BODY_LIMIT, authenticate};
use crate::service::{Applied, Service};
use crate::store::{Condition, Item, Store, StoreError, Write};

pub const HEADER: &str = "idempotency-key";
const TTL_HOURS: i64 = 24;
/// How long a running request holds its key before a retry may take it over.
pub const LEASE_SECS: i64 = 30;
const SK: &str = "IDEMP";
/// The sort key of every claim, and the prefix of its partition key.
pub(crate) const CLAIM_SK: &str = SK;
pub(crate) const CLAIM_PREFIX: &str = "IDEMP#";

/// The key the running request holds, seen by the service while it runs.
#[derive(Debug, Clone)]
struct Held {
    pk: String,
    fingerprint: String,
    now: i64,
}

tokio::task_local! {
    static HELD: Held;
}

/// What a completed request keeps under its key.
fn done_item(
    pk: &str,
    fingerprint: &str,
    status: StatusCode,
    etag: &str,
    body: &[u8],
    now: i64,
) -> Item {
    Item::new(pk, SK)
        .with("type", "idempotency")
        .with("fingerprint", fingerprint)
        .with("state", "done")
        // An expired record is taken over under this version (see `claim`).
        .with("version", 0)
        .with("status", status.as_u16())
        .with("etag", etag)
        .with("body", redact_secret(body))
        .with("expires_at", now + Duration::hours(TTL_HOURS).num_seconds())
}

/// The record a batch that completes as `applied` keeps for the key of the
/// request running it, if it has one: the response of
/// `POST /teams/{team}/changes` (200, the version as ETag, `Applied` as
/// JSON), the only route whose commit can span several transactions.
pub(crate) fn reply_for(applied: &Applied) -> Option<Item> {
    let body = serde_json::to_vec(applied).ok()?;
    HELD.try_with(|held| {
        done_item(
            &held.pk,
            &held.fingerprint,
            StatusCode::OK,
            &format!("\"{}\"", applied.version),
            &body,
            held.now,
        )
    })
    .ok()
}

/// The team a request path is about (`/teams/{team}/...`).
fn team_of(path: &str) -> Option<TeamId> {
    let rest = path.strip_prefix("/teams/")?;
    let (team, _) = rest.split_once('/')?;
    TeamId::parse(team).ok()
}

/// SHA-256 over length-prefixed parts, hex: keys and request fingerprints.
pub fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Where the claim of `key` sent by the principal `actor` is kept.
pub fn claim_pk(actor: &str, key: &str) -> String {
    format!(
        "{CLAIM_PREFIX}{}",
        digest(&[actor.as_bytes(), key.as_bytes()])
    )
}

/// The fingerprint of a request: what a replay must match.
pub fn fingerprint(path: &str, query: &str, body: &[u8]) -> String {
    digest(&[path.as_bytes(), query.as_bytes(), body])
}

fn bad_key() -> Response {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_idempotency_key",
        "Idempotency-Key must be 1 to 255 visible characters",
    )
    .into_response()
}

fn in_use() -> Response {
    let mut res = ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_key_in_use",
        "a request with this Idempotency-Key is still running; retry shortly",
    )
    .into_response();
    res.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(LEASE_SECS));
    res
}

/// Deletes a claim when dropped while armed: a handler that panicked or a
/// request that was cancelled never leaves its key held.
struct Release {
    store: Arc<dyn Store>,
    pk: String,
    /// The version of our claim: the key is freed only while we hold it.
    version: u64,
    armed: bool,
}

impl Release {
    fn write(pk: String, version: u64) -> Write {
        Write::Delete {
            pk,
            sk: SK.into(),
            condition: Condition::VersionEquals(version),
        }
    }

    /// Frees the key now, before the response leaves. Returns what the key
    /// holds instead when it moved on without us (a batch this request
    /// started was completed and kept its reply).
    async fn now(mut self) -> Option<Item> {
        self.armed = false;
        match self
            .store
            .transact(vec![Self::write(self.pk.clone(), self.version)])
            .await
        {
            Ok(()) => None,
            Err(StoreError::ConditionFailed { .. }) => {
                self.store.get(&self.pk, SK).await.ok().flatten()
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not release an Idempotency-Key; its lease ends it");
                None
            }
        }
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (store, pk, version) = (
            self.store.clone(),
            std::mem::take(&mut self.pk),
            self.version,
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = store.transact(vec![Release::write(pk, version)]).await;
            });
        }
    }
}

/// What claiming a key came to.
enum Claim {
    /// This request holds the key (at this version) and runs.
    Held(u64),
    /// Answered without running: a replay, or a refusal.
    Answered(Response),
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    // Who asks comes first: a request without a valid credential gets its
    // 401 whatever its key, and costs no write.
    let (mut parts, body) = req.into_parts();
    let who = match authenticate(&parts, &state).await {
        Ok(who) => who,
        Err(e) => return e.into_response(),
    };
    let key = match key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => return bad_key(),
    };
    let pk = claim_pk(&who.actor(), &key);
    parts.extensions.insert(Authenticated(who));
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("bodies are limited to {BODY_LIMIT} bytes"),
            )
            .into_response();
        }
    };
    let fingerprint = fingerprint(parts.uri.path(), parts.uri.query().unwrap_or(""), &bytes);
    let store = state.service.store().clone();
    let now = state.service.now().timestamp();
    let team = team_of(parts.uri.path());
    let version = match claim(&state.service, team.as_ref(), &pk, &fingerprint, now).await {
        Ok(Claim::Held(version)) => version,
        Ok(Claim::Answered(res)) => return res,
        Err(e) => return ApiError::internal(&e.to_string()).into_response(),
    };
    let guard = Release {
        store: store.clone(),
        pk: pk.clone(),
        version,
        armed: true,
    };

    let held = Held {
        pk: pk.clone(),
        fingerprint: fingerprint.clone(),
        now,
    };
    let res = HELD
        .scope(
            held,
            next.run(Request::from_parts(parts, Body::from(bytes))),
        )
        .await;
    if !res.status().is_success() {
        return match guard.now().await {
            Some(kept)
                if kept.str("state") == Some("done")
                    && kept.str("fingerprint") == Some(fingerprint.as_str()) =>
            {
                replay(&kept)
            }
            _ => res,
        };
    }
    guard.disarm();
    let (res_parts, body) = res.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let etag = res_parts
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let done = done_item(&pk, &fingerprint, res_parts.status, &etag, &body, now);
    if let Err(e) = store
        .transact(vec![Write::Put {
            item: done,
            condition: Condition::Exists,
        }])
        .await
    {
        tracing::warn!(error = %e, "could not keep an idempotent response");
    }
    Response::from_parts(res_parts, Body::from(body))
}

/// Claims `pk` for a request, or answers it from what the key holds.
/// A key held by a running request about `team` first finishes the team's
/// batch in progress, if any: when that request died mid-batch, this keeps
/// its reply, which is then replayed.
async fn claim(
    service: &Service,
    team: Option<&TeamId>,
    pk: &str,
    fingerprint: &str,
    now: i64,
) -> Result<Claim, StoreError> {
    let running = |version: i64| {
        Item::new(pk, SK)
            .with("type", "idempotency")
            .with("fingerprint", fingerprint)
            .with("state", "running")
            .with("version", version)
            .with("lease_until", now + LEASE_SECS)
            .with("expires_at", now + Duration::hours(TTL_HOURS).num_seconds())
    };
    let store = service.store().as_ref();
    // Twice at most: a key freed between our write and our read is claimed
    // on the second turn.
    for _ in 0..2 {
        let put = Write::Put {
            item: running(1),
            condition: Condition::NotExists,
        };
        match store.transact(with_team_ref(put, team, pk, now)).await {
            Ok(()) => return Ok(Claim::Held(1)),
            Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {}
            Err(e) => return Err(e),
        }
        let Some(mut kept) = store.get(pk, SK).await? else {
            continue;
        };
        if let (Some("running"), Some(team)) = (kept.str("state"), team) {
            if let Err(e) = service.settle(team).await {
                tracing::warn!(error = %e, team = %team, "could not finish a batch in progress");
            }
            match store.get(pk, SK).await? {
                Some(now) => kept = now,
                None => continue,
            }
        }
        let version = kept.int("version").unwrap_or(0);
        let expired = kept.int("expires_at").is_some_and(|t| t <= now);
        let lapsed = kept.str("state") == Some("running")
            && kept.int("lease_until").is_none_or(|t| t <= now);
        if expired || lapsed {
            // Take the key over from a lapsed lease or an expired record,
            // unless someone else just did.
            let take = Write::Put {
                item: running(version + 1),
                condition: Condition::VersionEquals(u64::try_from(version).unwrap_or(0)),
            };
            let taken = u64::try_from(version + 1).unwrap_or(0);
            return match store.transact(with_team_ref(take, team, pk, now)).await {
                Ok(()) => Ok(Claim::Held(taken)),
                Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
                    Ok(Claim::Answered(in_use()))
                }
                Err(e) => Err(e),
            };
        }
        if kept.str("fingerprint") != Some(fingerprint) {
            return Ok(Claim::Answered(
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request",
                )
                .into_response(),
            ));
        }
        if kept.str("state") == Some("done") {
            return Ok(Claim::Answered(replay(&kept)));
        }
        return Ok(Claim::Answered(in_use()));
    }
    Ok(Claim::Answered(in_use()))
}

/// A claim's write, and a reference to the claim in the team's partition
/// (`TEAM#<team>` / `IDEMP#...`, expiring with it) for a request about a
/// team: deleting a closed team deletes the records of its requests too
/// (`crate::service::close`), since they are keyed by caller, not team.
fn with_team_ref(claim: Write, team: Option<&TeamId>, pk: &str, now: i64) -> Vec<Write> {
    let mut writes = vec![claim];
    if let Some(team) = team {
        writes.push(Write::Put {
            item: Item::new(crate::store::codec::team_pk(team), pk)
                .with("type", "idempotency_ref")
                .with("expires_at", now + Duration::hours(TTL_HOURS).num_seconds()),
            condition: Condition::None,
        });
    }
    writes
}

/// The body to keep: JSON with any `secret` replaced by a note.
fn redact_secret(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(mut map)) => {
            if map.contains_key("secret") {
                map.insert("secret".into(), Value::Null);
                map.insert(
                    "secret_note".into(),
                    "the secret was shown once, in the first response".into(),
                );
            }
            Value::Object(map).to_string()
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    }
}

fn replay(kept: &Item) -> Response {
    let status = kept
        .int("status")
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok());
    let mut res = Response::new(Body::from(kept.str("body").unwrap_or("").to_owned()));
    *res.status_mut() = status.unwrap_or(StatusCode::OK);
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    if let Some(etag) = kept
        .str("etag")
        .filter(|e| !e.is_empty())
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        headers.insert(header::ETAG, etag);
    }
    res
}
