//! `Idempotency-Key` on POST: the first response to a key is kept for 24
//! hours and replayed for a retry with the same request; the same key with a
//! different request is refused (422). Keys are scoped to the credential that
//! sent them, so two callers never share one.
//!
//! A key is claimed before the request runs, so two concurrent requests with
//! one key never both execute. Only successful responses are kept; a failed
//! request releases its key so the caller can correct and retry. Secrets in
//! a kept response (new API keys, tokens) are not stored: a replay says the
//! secret was already shown once.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Duration;
use http_body_util::BodyExt;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::api::{Anonymous, ApiError, AppState, BODY_LIMIT};
use crate::store::{Condition, Item, StoreError, Write};

pub const HEADER: &str = "idempotency-key";
const TTL_HOURS: i64 = 24;

fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    // A request without a credential where one is needed is refused (401)
    // by the handler, whatever its key: a bad key must not hide that.
    if state.anonymous == Anonymous::Refused && !req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    // Visible ASCII only (`!` to `~`), as the document's pattern says.
    let key = match key.to_str() {
        Ok(k) if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible characters",
            )
            .into_response();
        }
    };
    let (parts, body) = req.into_parts();
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
    let credential = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .unwrap_or(b"anonymous");
    let pk = format!("IDEMP#{}", digest(&[credential, key.as_bytes()]));
    let fingerprint = digest(&[
        parts.uri.path().as_bytes(),
        parts.uri.query().unwrap_or("").as_bytes(),
        &bytes,
    ]);
    let store = state.service.store().clone();
    let now = state.service.now();
    let expires = (now + Duration::hours(TTL_HOURS)).timestamp();

    let claim = Item::new(pk.clone(), "IDEMP")
        .with("type", "idempotency")
        .with("fingerprint", fingerprint.as_str())
        .with("state", "running")
        .with("expires_at", expires);
    match store
        .transact(vec![Write::Put {
            item: claim,
            condition: Condition::NotExists,
        }])
        .await
    {
        Ok(()) => {}
        Err(StoreError::ConditionFailed { .. } | StoreError::Conflict) => {
            return match store.get(&pk, "IDEMP").await {
                Ok(Some(kept)) if kept.int("expires_at").is_some_and(|t| t <= now.timestamp()) => {
                    // Expired but not yet swept by TTL: start over.
                    let _ = store
                        .transact(vec![Write::Delete {
                            pk,
                            sk: "IDEMP".into(),
                            condition: Condition::None,
                        }])
                        .await;
                    ApiError::new(
                        StatusCode::CONFLICT,
                        "idempotency_key_in_use",
                        "retry the request",
                    )
                    .into_response()
                }
                Ok(Some(kept)) if kept.str("fingerprint") != Some(fingerprint.as_str()) => {
                    ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used with a different request",
                    )
                    .into_response()
                }
                Ok(Some(kept)) if kept.str("state") == Some("done") => replay(&kept),
                Ok(_) => ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_key_in_use",
                    "a request with this Idempotency-Key is still running",
                )
                .into_response(),
                Err(e) => ApiError::internal(&e.to_string()).into_response(),
            };
        }
        Err(e) => return ApiError::internal(&e.to_string()).into_response(),
    }

    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let release = Write::Delete {
        pk: pk.clone(),
        sk: "IDEMP".into(),
        condition: Condition::None,
    };
    if !res.status().is_success() {
        let _ = store.transact(vec![release]).await;
        return res;
    }
    let (res_parts, body) = res.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let kept_body = redact_secret(&body);
    let etag = res_parts
        .headers
        .get(header::ETAG)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let done = Item::new(pk, "IDEMP")
        .with("type", "idempotency")
        .with("fingerprint", fingerprint)
        .with("state", "done")
        .with("status", res_parts.status.as_u16())
        .with("etag", etag)
        .with("body", kept_body)
        .with("expires_at", expires);
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
