//! Storage: the small `Store` trait both backends implement, the item type the
//! codec produces, and the conditions a transaction can carry.
//!
//! A store knows nothing of teams: it holds items keyed by `pk`/`sk` with a map
//! of attributes. Domain meaning lives in `crate::store::codec`. A store must never
//! return a short answer: a read that cannot complete is an error.

pub mod codec;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "aws")]
pub mod dynamodb;
pub mod sqlite;

/// Most writes one `transact` call may carry (the DynamoDB limit).
pub const MAX_TRANSACT_WRITES: usize = 100;

/// One stored item: keys plus attributes. Attribute values are JSON values;
/// numbers must be integers (they map to DynamoDB `N`), strings to `S`,
/// booleans to `BOOL`, null to `NULL`, arrays to `L`, objects to `M`.
/// Items and writes serialize (a batch's intent keeps its prepared writes
/// as data until every part is applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub pk: String,
    pub sk: String,
    pub attrs: Map<String, Value>,
}

impl Item {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
            attrs: Map::new(),
        }
    }

    /// Sets an attribute, builder style.
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.attrs.insert(name.to_owned(), value.into());
        self
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).and_then(Value::as_str)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.attrs.get(name).and_then(Value::as_i64)
    }

    /// The item's `version` attribute, 0 when absent.
    pub fn version(&self) -> u64 {
        self.attrs
            .get("version")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// An item whose attributes are still the JSON text of an object, for a
/// read that goes straight to typed values (`codec::decode_text`) without
/// building a map of `Value`s first.
#[derive(Debug, Clone, PartialEq)]
pub struct TextItem {
    pub pk: String,
    pub sk: String,
    pub attrs: String,
}

/// A page of `query_text`: the same items and next key as `query`'s.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextPage {
    pub items: Vec<TextItem>,
    pub next: Option<String>,
}

/// A condition on the current item at a key, checked atomically with the
/// whole transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    None,
    /// An item exists at the key.
    Exists,
    /// No item exists at the key.
    NotExists,
    /// An item exists at the key and its `version` attribute equals n.
    VersionEquals(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Write {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        pk: String,
        sk: String,
        condition: Condition,
    },
    /// Writes nothing; fails the transaction unless the condition holds.
    Check {
        pk: String,
        sk: String,
        condition: Condition,
    },
}

impl Write {
    pub fn key(&self) -> (&str, &str) {
        match self {
            Write::Put { item, .. } => (&item.pk, &item.sk),
            Write::Delete { pk, sk, .. } | Write::Check { pk, sk, .. } => (pk, sk),
        }
    }
}

/// Where a query starts and how many items one page may hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// Upper bound on items in the page; `None` lets the backend choose.
    pub limit: Option<usize>,
    /// Exclusive start: the `sk` of the last item of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Items ordered by `sk` ascending (byte order).
    pub items: Vec<Item>,
    /// The `sk` to pass as `after` for the next page; `None` at the end.
    pub next: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The condition of the write at `index` (in the order given) did not hold.
    #[error("condition failed on write {index} ({pk} / {sk})")]
    ConditionFailed {
        index: usize,
        pk: String,
        sk: String,
    },
    #[error("a transaction holds at most {MAX_TRANSACT_WRITES} writes, got {0}")]
    TooManyWrites(usize),
    #[error("two writes in one transaction touch the same item ({pk} / {sk})")]
    DuplicateKey { pk: String, sk: String },
    /// Another transaction touched the same items at the same time; retrying
    /// from a fresh read may succeed.
    #[error("transaction conflict")]
    Conflict,
    #[error("stored item is malformed: {0}")]
    Malformed(String),
    #[error("store backend failed: {0}")]
    Backend(String),
}

/// The storage both backends implement. Implementations are cheap to share
/// (`Arc<dyn Store>`).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError>;

    /// One page of the items under `pk` whose `sk` starts with `sk_prefix`,
    /// in `sk` order.
    async fn query(&self, pk: &str, sk_prefix: &str, page: PageRequest)
    -> Result<Page, StoreError>;

    /// `query`, with each item's attributes as JSON text. A backend that
    /// keeps attributes as text (SQLite) hands it over as stored; the
    /// default writes out what `query` read.
    async fn query_text(
        &self,
        pk: &str,
        sk_prefix: &str,
        page: PageRequest,
    ) -> Result<TextPage, StoreError> {
        let page = self.query(pk, sk_prefix, page).await?;
        let items = page
            .items
            .into_iter()
            .map(|item| {
                let attrs = serde_json::to_string(&item.attrs).map_err(|e| {
                    StoreError::Malformed(format!("attributes of {} / {}: {e}", item.pk, item.sk))
                })?;
                Ok(TextItem {
                    pk: item.pk,
                    sk: item.sk,
                    attrs,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(TextPage {
            items,
            next: page.next,
        })
    }

    /// Applies every write or none. Fails with `ConditionFailed` naming the
    /// first write whose condition did not hold.
    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError>;

    /// Several items at once, in the order of `keys` (`None` where absent).
    /// Backends that can read many keys in one call (DynamoDB's
    /// BatchGetItem) override this; the default reads them one by one.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        let mut out = Vec::with_capacity(keys.len());
        for (pk, sk) in keys {
            out.push(self.get(pk, sk).await?);
        }
        Ok(out)
    }

    /// Every item, under any `pk`, whose `sk` starts with `sk_prefix`, in
    /// no promised order. It reads the whole store (a DynamoDB Scan): only
    /// a local host calls it, once at start-up, to find the outbox items a
    /// previous run left; no request path and no Lambda function may. Fails
    /// if any part of the read fails: never a partial answer.
    async fn scan(&self, sk_prefix: &str) -> Result<Vec<Item>, StoreError>;

    /// Every item under `pk` with the prefix, paging to the end. Fails if
    /// any page fails: never a partial answer.
    async fn query_all(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .query(pk, sk_prefix, PageRequest { limit: None, after })
                .await?;
            items.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(items),
            }
        }
    }
}

/// Checks the limits every backend shares before it talks to storage.
pub(crate) fn check_batch(writes: &[Write]) -> Result<(), StoreError> {
    if writes.len() > MAX_TRANSACT_WRITES {
        return Err(StoreError::TooManyWrites(writes.len()));
    }
    let mut seen = std::collections::HashSet::new();
    for write in writes {
        let (pk, sk) = write.key();
        if !seen.insert((pk, sk)) {
            return Err(StoreError::DuplicateKey {
                pk: pk.to_owned(),
                sk: sk.to_owned(),
            });
        }
    }
    Ok(())
}
