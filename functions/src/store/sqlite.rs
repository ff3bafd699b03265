//! The SQLite `Store`: one local file (or memory) holding every item in a
//! single `items` table, used by `teamform serve`, in-process runs and tests.
//!
//! It must behave exactly like the DynamoDB store as far as the `Store`
//! contract goes (see `store::conformance`): the same conditions, the same
//! limits, the same prefix and page semantics, and the same rejection of
//! attributes DynamoDB could not hold. It must never block an async worker
//! thread (every SQLite call runs on the blocking pool) and never panic on
//! data it reads or is given.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde_json::{Map, Value};

use super::{
    Condition, Item, Page, PageRequest, Store, StoreError, TextItem, TextPage, Write, check_batch,
};

/// Most items one query page returns, whatever the caller asks for.
pub const MAX_PAGE: usize = 1000;

/// Deepest nesting of lists and maps DynamoDB accepts; kept here too so
/// both stores refuse the same items.
const MAX_NESTING: usize = 32;

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (
    pk TEXT NOT NULL,
    sk TEXT NOT NULL,
    attrs TEXT NOT NULL,
    PRIMARY KEY (pk, sk)
) WITHOUT ROWID;";

/// A `Store` over one SQLite connection. Cheap to clone: clones share the
/// connection.
#[derive(Clone)]
pub struct SqliteStore {
    // One connection behind a mutex: SQLite serialises writers anyway, and a
    // single connection keeps `BEGIN IMMEDIATE` simple. The Arc lets each
    // blocking task own a handle.
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, and its parent
    /// directory, in WAL mode with the schema in place.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Backend(format!("creating {}: {e}", parent.display())))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError::Backend(format!("opening {}: {e}", path.display())))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(backend)?;
        // journal_mode answers with the mode now in force; a file that cannot
        // switch to WAL (some network file systems) would silently stay in
        // rollback mode, so say so rather than run with other semantics.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "{}: journal mode is {mode}, expected wal",
                path.display()
            )));
        }
        Self::with_schema(conn)
    }

    /// A private database that lives as long as this store (and its clones).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(backend)?;
        Self::with_schema(conn)
    }

    fn with_schema(conn: Connection) -> Result<Self, StoreError> {
        conn.execute_batch(SCHEMA).map_err(backend)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A poisoned lock means a task panicked mid-call; refuse rather
            // than guess at the connection's state.
            let mut guard = conn
                .lock()
                .map_err(|_| StoreError::Backend("sqlite connection mutex poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let (pk, sk) = (pk.to_owned(), sk.to_owned());
        self.with_conn(move |conn| {
            let attrs = read_attrs(conn, &pk, &sk)?;
            Ok(attrs.map(|attrs| Item { pk, sk, attrs }))
        })
        .await
    }

    /// All keys in one visit to the connection (one blocking task, not one
    /// per key).
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let keys = keys.to_vec();
        self.with_conn(move |conn| {
            keys.into_iter()
                .map(|(pk, sk)| {
                    let attrs = read_attrs(conn, &pk, &sk)?;
                    Ok(attrs.map(|attrs| Item { pk, sk, attrs }))
                })
                .collect()
        })
        .await
    }

    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        page: PageRequest,
    ) -> Result<Page, StoreError> {
        let pk = pk.to_owned();
        let prefix = sk_prefix.to_owned();
        let limit = page.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        self.with_conn(move |conn| {
            let page = query_rows(conn, &pk, &prefix, page.after, limit)?;
            let items = page
                .items
                .into_iter()
                .map(|item| {
                    let attrs = parse_attrs(&item.pk, &item.sk, &item.attrs)?;
                    Ok(Item {
                        pk: item.pk,
                        sk: item.sk,
                        attrs,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            Ok(Page {
                items,
                next: page.next,
            })
        })
        .await
    }

    /// The text as stored: no map of values is built only to be read again.
    async fn query_text(
        &self,
        pk: &str,
        sk_prefix: &str,
        page: PageRequest,
    ) -> Result<TextPage, StoreError> {
        let pk = pk.to_owned();
        let prefix = sk_prefix.to_owned();
        let limit = page.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        self.with_conn(move |conn| query_rows(conn, &pk, &prefix, page.after, limit))
            .await
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_batch(&writes)?;
        for write in &writes {
            if let Write::Put { item, .. } = write {
                validate_attrs(&item.attrs)?;
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        self.with_conn(move |conn| apply(conn, &writes)).await
    }

    async fn scan(&self, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let prefix = sk_prefix.to_owned();
        self.with_conn(move |conn| scan_items(conn, &prefix)).await
    }
}

/// Every item whose `sk` starts with `prefix`, under any `pk`: a walk of
/// the whole table, since the key index leads with `pk`.
fn scan_items(conn: &Connection, prefix: &str) -> Result<Vec<Item>, StoreError> {
    let mut sql = String::from("SELECT pk, sk, attrs FROM items WHERE sk >= ?1");
    let mut args: Vec<rusqlite::types::Value> = vec![prefix.to_owned().into()];
    if let Some(upper) = prefix_upper_bound(prefix) {
        args.push(upper.into());
        sql.push_str(" AND sk < ?2");
    }
    sql.push_str(" ORDER BY pk, sk");
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })
        .map_err(backend)?;
    let mut items = Vec::new();
    for row in rows {
        let (pk, sk, attrs) = row.map_err(backend)?;
        let attrs = parse_attrs(&pk, &sk, &attrs)?;
        items.push(Item { pk, sk, attrs });
    }
    Ok(items)
}

/// One page under `pk`, each item's attributes as stored, and the `sk`
/// to continue after when more follow.
fn query_rows(
    conn: &Connection,
    pk: &str,
    prefix: &str,
    after: Option<String>,
    limit: usize,
) -> Result<TextPage, StoreError> {
    // One more than the page so we know whether another page follows.
    let (sql, args) = page_query(pk, prefix, after, limit + 1);
    let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(args), |row| {
            Ok(TextItem {
                pk: pk.to_owned(),
                sk: row.get(0)?,
                attrs: row.get(1)?,
            })
        })
        .map_err(backend)?;
    let mut items = Vec::with_capacity(limit.min(64));
    for row in rows {
        items.push(row.map_err(backend)?);
    }
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|item| item.sk.clone())
    } else {
        None
    };
    Ok(TextPage { items, next })
}

/// The statement reading one page under `pk`, and its arguments: the items
/// whose `sk` starts with `prefix`, after `after`, at most `fetch` of them.
fn page_query(
    pk: &str,
    prefix: &str,
    after: Option<String>,
    fetch: usize,
) -> (String, Vec<rusqlite::types::Value>) {
    // A range on the primary key rather than LIKE/substr, so SQLite walks the
    // index; TEXT compares with memcmp, the byte order DynamoDB uses. One
    // lower bound only: given both `sk >= prefix` and `sk > after`, SQLite
    // seeks to the first and filters up to the second, so every page of a
    // long listing would walk again all the pages before it.
    let mut sql = String::from("SELECT sk, attrs FROM items WHERE pk = ?1");
    let mut args: Vec<rusqlite::types::Value> = vec![pk.to_owned().into()];
    match after {
        Some(after) if after.as_str() >= prefix => {
            args.push(after.into());
            sql.push_str(" AND sk > ?2");
        }
        _ => {
            args.push(prefix.to_owned().into());
            sql.push_str(" AND sk >= ?2");
        }
    }
    if let Some(upper) = prefix_upper_bound(prefix) {
        args.push(upper.into());
        sql.push_str(&format!(" AND sk < ?{}", args.len()));
    }
    let fetch = i64::try_from(fetch).unwrap_or(i64::MAX);
    args.push(fetch.into());
    sql.push_str(&format!(" ORDER BY sk LIMIT ?{}", args.len()));

    (sql, args)
}

fn apply(conn: &mut Connection, writes: &[Write]) -> Result<(), StoreError> {
    // IMMEDIATE takes the write lock up front, so no other process can slip a
    // write between our condition checks and our writes.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(tx_error)?;
    // Keys are distinct (check_batch), so checking every condition before the
    // first write sees exactly the state each condition is about.
    for (index, write) in writes.iter().enumerate() {
        let (pk, sk) = write.key();
        let condition = match write {
            Write::Put { condition, .. }
            | Write::Delete { condition, .. }
            | Write::Check { condition, .. } => *condition,
        };
        if !condition_holds(&tx, pk, sk, condition)? {
            // Dropping `tx` rolls back; nothing was written yet anyway.
            return Err(StoreError::ConditionFailed {
                index,
                pk: pk.to_owned(),
                sk: sk.to_owned(),
            });
        }
    }
    for write in writes {
        match write {
            Write::Put { item, .. } => {
                let attrs = serde_json::to_string(&item.attrs)
                    .map_err(|e| StoreError::Malformed(format!("encoding attributes: {e}")))?;
                tx.prepare_cached(
                    "INSERT INTO items (pk, sk, attrs) VALUES (?1, ?2, ?3)
                     ON CONFLICT (pk, sk) DO UPDATE SET attrs = excluded.attrs",
                )
                .and_then(|mut stmt| stmt.execute(params![item.pk, item.sk, attrs]))
                .map_err(tx_error)?;
            }
            Write::Delete { pk, sk, .. } => {
                tx.prepare_cached("DELETE FROM items WHERE pk = ?1 AND sk = ?2")
                    .and_then(|mut stmt| stmt.execute(params![pk, sk]))
                    .map_err(tx_error)?;
            }
            Write::Check { .. } => {}
        }
    }
    tx.commit().map_err(tx_error)
}

fn condition_holds(
    conn: &Connection,
    pk: &str,
    sk: &str,
    condition: Condition,
) -> Result<bool, StoreError> {
    Ok(match condition {
        Condition::None => true,
        Condition::Exists => read_attrs(conn, pk, sk)?.is_some(),
        Condition::NotExists => read_attrs(conn, pk, sk)?.is_none(),
        // Only an integer `version` matches: a missing or non-numeric one
        // does not, as in DynamoDB's `#v = :v`.
        Condition::VersionEquals(n) => read_attrs(conn, pk, sk)?
            .is_some_and(|attrs| attrs.get("version").and_then(Value::as_u64) == Some(n)),
    })
}

fn read_attrs(
    conn: &Connection,
    pk: &str,
    sk: &str,
) -> Result<Option<Map<String, Value>>, StoreError> {
    let raw: Option<String> = conn
        .prepare_cached("SELECT attrs FROM items WHERE pk = ?1 AND sk = ?2")
        .and_then(|mut stmt| stmt.query_row(params![pk, sk], |row| row.get(0)).optional())
        .map_err(backend)?;
    raw.map(|raw| parse_attrs(pk, sk, &raw)).transpose()
}

fn parse_attrs(pk: &str, sk: &str, raw: &str) -> Result<Map<String, Value>, StoreError> {
    serde_json::from_str(raw)
        .map_err(|e| StoreError::Malformed(format!("attributes of {pk} / {sk}: {e}")))
}

/// Rejects what DynamoDB could not store, so a local run fails where
/// production would: non-integer numbers anywhere, lists and maps nested
/// deeper than DynamoDB allows, and attributes named like the keys. (The
/// same rules as the DynamoDB codec.)
fn validate_attrs(attrs: &Map<String, Value>) -> Result<(), StoreError> {
    for name in ["pk", "sk"] {
        if attrs.contains_key(name) {
            return Err(StoreError::Malformed(format!(
                "attribute name {name:?} is reserved for the key"
            )));
        }
    }
    attrs
        .values()
        .try_for_each(|value| validate_value(value, 0))
}

fn validate_value(value: &Value, depth: usize) -> Result<(), StoreError> {
    match value {
        Value::Number(n) if n.as_i64().is_none() && n.as_u64().is_none() => Err(
            StoreError::Malformed(format!("number {n} is not an integer")),
        ),
        Value::Array(_) | Value::Object(_) if depth >= MAX_NESTING => Err(StoreError::Malformed(
            format!("lists and maps nest deeper than {MAX_NESTING}"),
        )),
        Value::Array(values) => values.iter().try_for_each(|v| validate_value(v, depth + 1)),
        Value::Object(map) => map.values().try_for_each(|v| validate_value(v, depth + 1)),
        _ => Ok(()),
    }
}

/// The smallest string greater than every string starting with `prefix`, or
/// `None` when no such bound exists (empty prefix, or only `char::MAX`).
///
/// UTF-8 byte order equals code point order, so bumping the last bumpable
/// char and dropping what follows gives the exclusive upper bound.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            // Skip the surrogate gap, which no `char` can hold.
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

/// Like `backend`, but a lock another process held past the busy timeout is
/// a conflict: the caller may retry from a fresh read.
fn tx_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Conflict,
        _ => backend(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_bumps_last_char() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("ab").as_deref(), Some("ac"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("é").as_deref(), Some("ê"));
    }

    #[test]
    fn upper_bound_orders_above_every_extension() {
        for prefix in ["a", "ab", "a\u{7F}", "a\u{FFFF}", "x\u{D7FF}"] {
            let upper = prefix_upper_bound(prefix).unwrap();
            for tail in ["", "\u{0}", "z", "\u{10FFFF}\u{10FFFF}"] {
                let s = format!("{prefix}{tail}");
                assert!(s.as_bytes() < upper.as_bytes(), "{s:?} < {upper:?}");
            }
            assert!(!upper.starts_with(prefix));
        }
    }

    /// A page deep into a long listing costs the page, not the pages
    /// before it: SQLite's own count of the steps the statement ran stays
    /// near the page size however far `after` is.
    #[test]
    fn a_late_page_does_not_walk_the_earlier_ones() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA).unwrap();
        for i in 0..5000 {
            conn.execute(
                "INSERT INTO items (pk, sk, attrs) VALUES ('T', ?1, '{}')",
                params![format!("INVITE#{i:05}")],
            )
            .unwrap();
        }
        let steps = |after: Option<&str>| {
            let (sql, args) = page_query("T", "INVITE#", after.map(str::to_owned), 11);
            let mut stmt = conn.prepare(&sql).unwrap();
            let sks: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(args), |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            (sks, stmt.get_status(rusqlite::StatementStatus::VmStep))
        };
        let (first, first_steps) = steps(None);
        assert_eq!(first.first().map(String::as_str), Some("INVITE#00000"));
        let (late, late_steps) = steps(Some("INVITE#04900"));
        assert_eq!(late.len(), 11);
        assert_eq!(late.first().map(String::as_str), Some("INVITE#04901"));
        assert!(
            late_steps < first_steps * 4,
            "page after 4900 items ran {late_steps} steps, the first page {first_steps}"
        );
    }

    #[test]
    fn validation_rejects_floats_and_key_names() {
        let mut attrs = Map::new();
        attrs.insert("n".into(), Value::from(i64::MIN));
        attrs.insert("u".into(), Value::from(u64::MAX));
        assert!(validate_attrs(&attrs).is_ok());
        attrs.insert("f".into(), serde_json::json!([{"x": 1.5}]));
        assert!(matches!(
            validate_attrs(&attrs),
            Err(StoreError::Malformed(_))
        ));
        let mut keyed = Map::new();
        keyed.insert("sk".into(), Value::from("x"));
        assert!(matches!(
            validate_attrs(&keyed),
            Err(StoreError::Malformed(_))
        ));
    }

    #[test]
    fn validation_limits_nesting_like_dynamodb() {
        let nest = |levels: usize| {
            let mut value = serde_json::json!(1);
            for _ in 0..levels {
                value = serde_json::json!([value]);
            }
            let mut attrs = Map::new();
            attrs.insert("deep".into(), value);
            attrs
        };
        assert!(validate_attrs(&nest(MAX_NESTING)).is_ok());
        assert!(matches!(
            validate_attrs(&nest(MAX_NESTING + 1)),
            Err(StoreError::Malformed(_))
        ));
    }
}
