//! The audit trail as people query it: filters (actor, action, subject, a
//! time range), cursor pages without gaps or repeats, and the two export
//! formats, JSON Lines and CSV.
//!
//! Audit records are kept under the team's partition in version order, so a
//! cursor is the `sk` of the last record looked at. Filters are applied as
//! the records are read; one request reads at most [`SCAN_PER_REQUEST`]
//! records, so a selective filter on a long trail answers a page with fewer
//! records than asked (possibly none) and a cursor to go on from: follow
//! `next_cursor` until it is absent.
//!
//! Each record names the request that made it: the actor and the actor's
//! kind (`person`, `api_key`, `local_owner`, or the prefix of any other
//! actor, e.g. `system` for `system:expiry`), the request id (`x-request-id`,
//! echoed in every response), and the source: `api`, `page` (the team
//! pages), or `apply` with the note `teamform apply --source` sent in
//! `Teamform-Source`; the expiry sweep's records say `sweep`
//! (`crate::service::expiry`). The router's
//! `request_context` layer sets these for the task handling the request, so
//! the service records them without any argument threaded through.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use teamform_core::{TeamId, Timestamp};

use crate::auth::Principal;
use crate::service::{Service, ServiceError};
use crate::store::PageRequest;
use crate::store::codec;

/// The header carrying the request id, in requests and every response.
pub const REQUEST_ID: &str = "x-request-id";
/// The header a client names its source in: `apply`, or `apply; NOTE`.
pub const SOURCE_HEADER: &str = "teamform-source";
/// Most characters of a source note.
pub const MAX_SOURCE_NOTE: usize = 200;
/// Most characters of a request id a client sends (a longer one, or one
/// with other characters than `A-Z a-z 0-9 . _ : -`, is replaced).
pub const MAX_REQUEST_ID: usize = 128;

/// The request a change is made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: String,
    /// `api`, `page` or `apply`.
    pub source: &'static str,
    /// What the client said about itself (`commit abc123`), with `apply`.
    pub note: Option<String>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

impl RequestContext {
    /// The request the current task handles, if any (a test or a tool
    /// calling the service directly has none).
    pub fn current() -> Option<RequestContext> {
        REQUEST.try_with(Clone::clone).ok()
    }

    /// Runs `f` as part of this request.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        REQUEST.scope(self, f).await
    }
}

/// The kind of an actor as recorded: `user:...` is a `person`, `api-key:...`
/// an `api_key`, `local-owner` the `local_owner`; any other actor's prefix
/// (before `:`), with `-` as `_`.
pub fn actor_kind(actor: &str) -> String {
    match actor.split_once(':').map_or(actor, |(kind, _)| kind) {
        "user" => "person".into(),
        other => other.replace('-', "_"),
    }
}

/// The audit record of one change or operation by `actor`, naming the
/// current request (if any).
pub fn record(actor: String, action: &str, change: Value, at: Timestamp) -> Value {
    let mut r = json!({
        "at": at.to_rfc3339(),
        "actor_kind": actor_kind(&actor),
        "actor": actor,
        "action": action,
        "change": change,
    });
    if let (Some(ctx), Value::Object(map)) = (RequestContext::current(), &mut r) {
        map.insert("request_id".into(), ctx.request_id.into());
        map.insert("source".into(), ctx.source.into());
        if let Some(note) = ctx.note {
            map.insert("source_note".into(), note.into());
        }
    }
    r
}

/// Whether a path is one of the pages people use (`crate::web`), whose
/// changes are recorded with source `page`.
fn is_page(path: &str) -> bool {
    path == "/"
        || path.starts_with("/ui/")
        || matches!(
            path,
            "/signin"
                | "/signout"
                | "/auth/callback"
                | "/join"
                | "/ownership/confirm"
                | "/ownership/accept"
        )
}

fn valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Reads `Teamform-Source`: `apply`, optionally followed by `;` and a note of
/// at most [`MAX_SOURCE_NOTE`] characters (control characters become
/// spaces, runs of spaces collapse).
pub fn parse_source(value: &[u8]) -> Result<(&'static str, Option<String>), SourceError> {
    let text = std::str::from_utf8(value).map_err(|_| SourceError::NotUtf8)?;
    let (kind, note) = match text.split_once(';') {
        Some((kind, note)) => (kind.trim(), Some(crate::mail::single_line(note))),
        None => (text.trim(), None),
    };
    if kind != "apply" {
        return Err(SourceError::UnknownSource(
            crate::mail::single_line(kind).chars().take(40).collect(),
        ));
    }
    let note = note.filter(|n| !n.is_empty());
    if let Some(n) = &note
        && n.chars().count() > MAX_SOURCE_NOTE
    {
        return Err(SourceError::NoteTooLong(n.chars().count()));
    }
    Ok(("apply", note))
}

/// Why a `Teamform-Source` header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("the Teamform-Source header is not UTF-8")]
    NotUtf8,
    #[error("the Teamform-Source header names `{0}`; the only source a client names is `apply`")]
    UnknownSource(String),
    #[error("the Teamform-Source note has {0} characters; at most {MAX_SOURCE_NOTE} are kept")]
    NoteTooLong(usize),
}

/// The Lambda request id, when the request came through Lambda.
#[cfg(feature = "aws")]
fn lambda_request_id(req: &Request) -> Option<String> {
    req.extensions()
        .get::<lambda_http::Context>()
        .map(|c| c.request_id.clone())
        .filter(|id| valid_request_id(id))
}

#[cfg(not(feature = "aws"))]
fn lambda_request_id(_: &Request) -> Option<String> {
    None
}

/// The router layer that names each request: takes `x-request-id` when it is
/// 1 to 128 characters of `A-Z a-z 0-9 . _ : -` (else the Lambda request
/// id, else a new one), learns the source, runs the request in that context
/// and echoes the id in the response.
pub async fn request_context(req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| valid_request_id(id))
        .map(str::to_owned)
        .or_else(|| lambda_request_id(&req))
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let header = HeaderValue::from_str(&request_id).ok();
    let source = if is_page(req.uri().path()) {
        Ok(("page", None))
    } else {
        match req.headers().get(SOURCE_HEADER) {
            Some(v) => parse_source(v.as_bytes()),
            None => Ok(("api", None)),
        }
    };
    let mut res = match source {
        Ok((source, note)) => {
            let ctx = RequestContext {
                request_id,
                source,
                note,
            };
            ctx.scope(next.run(req)).await
        }
        Err(detail) => crate::http::ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            crate::code::BAD_SOURCE,
            detail.to_string(),
        )
        .into_response(),
    };
    if let Some(h) = header {
        res.headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), h);
    }
    res
}

/// The most records one request reads, whatever the filter.
pub const SCAN_PER_REQUEST: usize = 5_000;

/// Which records to return; every given field must match.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct AuditFilter {
    /// The actor exactly as recorded (`user:EMAIL`, `api-key:ID`,
    /// `local-owner`, `system:expiry`).
    pub actor: Option<String>,
    /// The request id the change was made in (`x-request-id`).
    #[serde(default)]
    pub request_id: Option<String>,
    /// `api`, `page`, `apply` or `sweep`.
    #[serde(default)]
    pub source: Option<String>,
    /// The change's `op` or the operation (`invite`, `accept_invitation`, ...).
    pub action: Option<String>,
    /// Whom or what the record is about: an email (compared without case),
    /// a role name or an API key id.
    pub subject: Option<String>,
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records before this time.
    pub until: Option<Timestamp>,
}

impl AuditFilter {
    pub fn matches(&self, entry: &Map<String, Value>) -> bool {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or_default();
        if self.actor.as_deref().is_some_and(|a| a != text("actor")) {
            return false;
        }
        if self.action.as_deref().is_some_and(|a| a != text("action")) {
            return false;
        }
        if self
            .request_id
            .as_deref()
            .is_some_and(|r| r != text("request_id"))
        {
            return false;
        }
        if self.source.as_deref().is_some_and(|s| s != text("source")) {
            return false;
        }
        if let Some(subject) = &self.subject
            && !subjects(entry).any(|s| s.eq_ignore_ascii_case(subject))
        {
            return false;
        }
        if self.since.is_some() || self.until.is_some() {
            let Ok(at) = text("at").parse::<Timestamp>() else {
                return false;
            };
            if self.since.is_some_and(|s| at < s) || self.until.is_some_and(|u| at >= u) {
                return false;
            }
        }
        true
    }
}

/// What a record is about: the people, roles and keys its change names.
pub fn subjects(entry: &Map<String, Value>) -> impl Iterator<Item = &str> {
    let change = entry.get("change");
    ["email", "to", "from", "name", "id", "owner"]
        .into_iter()
        .filter_map(move |k| change.and_then(|c| c.get(k)).and_then(Value::as_str))
}

/// One page of records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditPage {
    /// Records as the API shows them (`id`, `at`, `actor`, `action`,
    /// `change`, `version`), oldest first.
    pub items: Vec<Value>,
    /// Where the next page starts; `None` when the trail is read to its end.
    pub next: Option<String>,
}

/// A stored audit item as the API shows it.
pub fn entry(item: crate::store::Item) -> Map<String, Value> {
    let mut attrs = item.attrs;
    attrs.remove("type");
    attrs.insert("id".into(), item.sk.into());
    attrs
}

impl Service {
    /// Up to `limit` records matching `filter`, after the cursor `after`.
    pub async fn audit_page(
        &self,
        team: &TeamId,
        who: &Principal,
        filter: &AuditFilter,
        limit: usize,
        after: Option<String>,
    ) -> Result<AuditPage, ServiceError> {
        for _ in 0..crate::service::intent::READ_ROUNDS {
            let state = self
                .authorized(team, who, teamform_core::catalog::perm::AUDIT_READ)
                .await?;
            let page = self.audit_scan(team, filter, limit, after.clone()).await?;
            // A page read while a batch began is read again: it never shows
            // part of a batch.
            if self.still_at(team, state.version).await? {
                return Ok(page);
            }
        }
        Err(crate::service::intent::busy(team))
    }

    async fn audit_scan(
        &self,
        team: &TeamId,
        filter: &AuditFilter,
        limit: usize,
        after: Option<String>,
    ) -> Result<AuditPage, ServiceError> {
        let pk = codec::team_pk(team);
        let mut out = Vec::new();
        let mut cursor = after;
        let mut read = 0;
        loop {
            let want = (limit - out.len()).clamp(100, 1000);
            let page = self
                .store()
                .query(
                    &pk,
                    codec::AUDIT,
                    PageRequest {
                        limit: Some(want),
                        after: cursor.clone(),
                    },
                )
                .await?;
            for item in page.items {
                read += 1;
                let sk = item.sk.clone();
                let entry = entry(item);
                if filter.matches(&entry) {
                    out.push(Value::Object(entry));
                }
                cursor = Some(sk);
                if out.len() == limit {
                    // More may follow: the next page starts after this one.
                    return Ok(AuditPage {
                        items: out,
                        next: cursor,
                    });
                }
            }
            if page.next.is_none() {
                return Ok(AuditPage {
                    items: out,
                    next: None,
                });
            }
            if read >= SCAN_PER_REQUEST {
                return Ok(AuditPage {
                    items: out,
                    next: cursor,
                });
            }
        }
    }
}

/// The columns of the CSV export.
pub const CSV_COLUMNS: [&str; 11] = [
    "id",
    "version",
    "at",
    "actor",
    "action",
    "subject",
    "change",
    "actor_kind",
    "request_id",
    "source",
    "source_note",
];

/// Writes records as CSV rows (RFC 4180 quoting), `header` first if asked.
pub fn write_csv(records: &[Value], header: bool) -> Result<String, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    if header {
        w.write_record(CSV_COLUMNS)?;
    }
    for r in records {
        let text = |k: &str| match r.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let subject = r
            .as_object()
            .map(|o| subjects(o).collect::<Vec<_>>().join(" "))
            .unwrap_or_default();
        w.write_record([
            text("id"),
            text("version"),
            text("at"),
            text("actor"),
            text("action"),
            subject,
            r.get("change").map(Value::to_string).unwrap_or_default(),
            text("actor_kind"),
            text("request_id"),
            text("source"),
            text("source_note"),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    // Every field was a `String`, so the bytes are UTF-8.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes records as JSON Lines: one record per line.
pub fn write_jsonl(records: &[Value]) -> String {
    let mut out = String::new();
    for r in records {
        out.push_str(&r.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(actor: &str, action: &str, change: Value, at: &str) -> Map<String, Value> {
        match json!({"id": "AUDIT#1", "actor": actor, "action": action, "change": change, "at": at, "version": 1})
        {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn every_given_field_must_match() {
        let r = record(
            "user:a@x.io",
            "invite",
            json!({"email": "Bob@x.io"}),
            "2026-11-30T10:00:00Z",
        );
        let at = |s: &str| s.parse::<Timestamp>().ok();
        let f = |actor: Option<&str>, action: Option<&str>, subject: Option<&str>| AuditFilter {
            actor: actor.map(str::to_owned),
            action: action.map(str::to_owned),
            subject: subject.map(str::to_owned),
            ..AuditFilter::default()
        };
        assert!(AuditFilter::default().matches(&r));
        assert!(f(Some("user:a@x.io"), Some("invite"), Some("bob@x.io")).matches(&r));
        assert!(!f(Some("user:b@x.io"), None, None).matches(&r));
        assert!(!f(None, Some("remove_member"), None).matches(&r));
        assert!(!f(None, None, Some("carol@x.io")).matches(&r));
        let range = |since: &str, until: &str| AuditFilter {
            since: at(since),
            until: at(until),
            ..AuditFilter::default()
        };
        assert!(range("2026-11-30T10:00:00Z", "2026-11-30T10:00:01Z").matches(&r));
        assert!(!range("2026-11-30T10:00:01Z", "2026-12-01T00:00:00Z").matches(&r));
        assert!(
            !range("2026-11-29T00:00:00Z", "2026-11-30T10:00:00Z").matches(&r),
            "until is exclusive"
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let r = Value::Object(record(
            "user:a@x.io",
            "rename_team",
            json!({"from": "A, \"B\"", "to": "C\nD"}),
            "t",
        ));
        let text = write_csv(&[r], true).unwrap_or_default();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().filter_map(Result::ok).collect();
        assert_eq!(rows.len(), 1);
        assert_eq!(&rows[0][4], "rename_team");
        let change: Value = serde_json::from_str(&rows[0][6]).unwrap_or_default();
        assert_eq!(change["from"], "A, \"B\"");
    }
}
