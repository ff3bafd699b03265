//! The DynamoDB `Store`: one table keyed by `pk` (hash) and `sk` (range),
//! items written with TransactWriteItems, and the codec between JSON
//! attributes and DynamoDB attribute values.
//!
//! It must never hand back a partial or guessed answer: a read it cannot
//! decode is `Malformed`, an SDK failure is `Backend`. It must never retry on
//! its own (the SDK's retry config does that) and never panic on data it
//! reads or is given.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, ConditionCheck, Delete,
    KeySchemaElement, KeyType, Put, ScalarAttributeType, TimeToLiveSpecification, TimeToLiveStatus,
    TransactWriteItem,
};
use serde_json::{Map, Number, Value};

use super::{Condition, Item, Page, PageRequest, Store, StoreError, Write, check_batch};

/// Most items one query page returns, whatever the caller asks for (the same
/// cap as the SQLite store, so callers see one behaviour).
const MAX_PAGE: usize = 1000;

/// Deepest nesting of lists and maps DynamoDB accepts.
const MAX_NESTING: usize = 32;

/// The attribute DynamoDB's TTL sweeper reads (epoch seconds).
const TTL_ATTRIBUTE: &str = "expires_at";

/// How long `create_table_if_missing` waits for the table to become active.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(300);

/// A `Store` over one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// A store whose client is configured from the environment (credentials,
    /// region, `AWS_ENDPOINT_URL_DYNAMODB`...), retrying transient failures
    /// up to five attempts.
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(5))
            .load()
            .await;
        Self::new(Client::new(&config), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on-demand billing) unless it exists, waits until it
    /// is active, and turns on TTL on `expires_at` unless it is on already.
    /// Safe to call on every start.
    pub async fn create_table_if_missing(&self) -> Result<(), StoreError> {
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attribute_definition("pk")?)
            .attribute_definitions(attribute_definition("sk")?)
            .key_schema(key_schema_element("pk", KeyType::Hash)?)
            .key_schema(key_schema_element("sk", KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Someone (maybe us, earlier) created it: wait for it like ours.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) => {}
            Err(err) => return Err(sdk_error("CreateTable", err)),
        }

        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(TABLE_ACTIVE_WAIT)
            .await
            .map_err(|err| sdk_error("waiting for the table", err))?;

        // UpdateTimeToLive fails when TTL is already on, so ask first.
        let ttl = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|err| sdk_error("DescribeTimeToLive", err))?;
        let ttl_on = ttl.time_to_live_description().is_some_and(|d| {
            matches!(
                d.time_to_live_status(),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            ) && d.attribute_name() == Some(TTL_ATTRIBUTE)
        });
        if !ttl_on {
            let spec = TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(|e| StoreError::Backend(format!("building TTL specification: {e}")))?;
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|err| sdk_error("UpdateTimeToLive", err))?;
        }
        Ok(())
    }

    /// One write as a transaction item, or `None` for a check with no
    /// condition (DynamoDB rejects a ConditionCheck without an expression,
    /// and such a check can never fail, so it is simply left out).
    fn transact_item(&self, write: &Write) -> Result<Option<TransactWriteItem>, StoreError> {
        let item = match write {
            Write::Put { item, condition } => {
                let expr = ConditionExpr::of(*condition);
                let put = Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(to_attrs(item)?))
                    .set_condition_expression(expr.expression)
                    .set_expression_attribute_names(expr.names)
                    .set_expression_attribute_values(expr.values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put).build()
            }
            Write::Delete { pk, sk, condition } => {
                let expr = ConditionExpr::of(*condition);
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(expr.expression)
                    .set_expression_attribute_names(expr.names)
                    .set_expression_attribute_values(expr.values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().delete(delete).build()
            }
            Write::Check {
                condition: Condition::None,
                ..
            } => return Ok(None),
            Write::Check { pk, sk, condition } => {
                let expr = ConditionExpr::of(*condition);
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(expr.expression)
                    .set_expression_attribute_names(expr.names)
                    .set_expression_attribute_values(expr.values)
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().condition_check(check).build()
            }
        };
        Ok(Some(item))
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("GetItem", err))?;
        out.item.map(from_attrs).transpose()
    }

    /// BatchGetItem, 100 keys a call, strongly consistent; keys DynamoDB
    /// leaves unprocessed (throttling) are asked again until none is left.
    async fn get_many(&self, keys: &[(String, String)]) -> Result<Vec<Option<Item>>, StoreError> {
        use aws_sdk_dynamodb::types::KeysAndAttributes;
        let mut found: HashMap<(String, String), Item> = HashMap::new();
        let unique: std::collections::BTreeSet<&(String, String)> = keys.iter().collect();
        let unique: Vec<&(String, String)> = unique.into_iter().collect();
        for chunk in unique.chunks(100) {
            let mut pending: Vec<HashMap<String, AttributeValue>> =
                chunk.iter().map(|(pk, sk)| key(pk, sk)).collect();
            let mut rounds = 0;
            while !pending.is_empty() {
                rounds += 1;
                if rounds > 20 {
                    return Err(StoreError::Backend(
                        "BatchGetItem left keys unprocessed 20 times".into(),
                    ));
                }
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut pending)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Backend(format!("BatchGetItem: {e}")))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|err| sdk_error("BatchGetItem", err))?;
                for attrs in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let item = from_attrs(attrs)?;
                    found.insert((item.pk.clone(), item.sk.clone()), item);
                }
                if let Some(left) = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                    pending = left.keys;
                    if !pending.is_empty() {
                        tokio::time::sleep(std::time::Duration::from_millis(20 * rounds)).await;
                    }
                }
            }
        }
        Ok(keys.iter().map(|k| found.get(k).cloned()).collect())
    }

    async fn query(
        &self,
        pk: &str,
        sk_prefix: &str,
        page: PageRequest,
    ) -> Result<Page, StoreError> {
        let limit = page.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        // MAX_PAGE fits an i32; the fallback only keeps this free of panics.
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(limit)
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()));
        request = if sk_prefix.is_empty() {
            // begins_with(sk, "") is rejected by DynamoDB: no prefix, no clause.
            request.key_condition_expression("pk = :pk")
        } else {
            request
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", AttributeValue::S(sk_prefix.to_owned()))
        };
        // DynamoDB rejects a start key outside the key condition, so settle
        // those cases here as a range scan would: below the prefix means
        // from the start, above it means nothing left.
        match page.after {
            Some(after) if after.starts_with(sk_prefix) => {
                request = request.set_exclusive_start_key(Some(key(pk, &after)));
            }
            Some(after) if after.as_str() > sk_prefix => return Ok(Page::default()),
            _ => {}
        }
        let out = request
            .send()
            .await
            .map_err(|err| sdk_error("Query", err))?;

        let items = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(from_attrs)
            .collect::<Result<Vec<_>, _>>()?;
        // DynamoDB may name a last key even when nothing follows; the caller
        // then gets one empty page, which the contract allows.
        let next = match out.last_evaluated_key {
            None => None,
            Some(mut last) => match last.remove("sk") {
                Some(AttributeValue::S(sk)) => Some(sk),
                other => {
                    return Err(StoreError::Malformed(format!(
                        "LastEvaluatedKey has no string sk: {other:?}"
                    )));
                }
            },
        };
        Ok(Page { items, next })
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        check_batch(&writes)?;
        // `origin[i]` is the index in `writes` of the i-th item sent, since
        // unconditional checks are left out.
        let mut items = Vec::with_capacity(writes.len());
        let mut origin = Vec::with_capacity(writes.len());
        for (index, write) in writes.iter().enumerate() {
            if let Some(item) = self.transact_item(write)? {
                items.push(item);
                origin.push(index);
            }
        }
        // TransactWriteItems needs at least one item; nothing to do is done.
        if items.is_empty() {
            return Ok(());
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => Err(transact_error(err, &writes, &origin)),
        }
    }

    async fn scan(&self, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let mut request = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start);
            // begins_with(sk, "") is rejected by DynamoDB: no prefix, no filter.
            if !sk_prefix.is_empty() {
                request = request
                    .filter_expression("begins_with(sk, :prefix)")
                    .expression_attribute_values(
                        ":prefix",
                        AttributeValue::S(sk_prefix.to_owned()),
                    );
            }
            let out = request.send().await.map_err(|err| sdk_error("Scan", err))?;
            for item in out.items.unwrap_or_default() {
                items.push(from_attrs(item)?);
            }
            // A page filtered down to nothing may still name a last key.
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(items),
            }
        }
    }
}

/// The pieces of one condition expression; all `None` for `Condition::None`.
#[derive(Debug, Default)]
struct ConditionExpr {
    expression: Option<String>,
    names: Option<HashMap<String, String>>,
    values: Option<HashMap<String, AttributeValue>>,
}

impl ConditionExpr {
    fn of(condition: Condition) -> Self {
        match condition {
            Condition::None => Self::default(),
            // `pk` is on every item, so its presence is the item's presence.
            Condition::Exists => Self {
                expression: Some("attribute_exists(pk)".into()),
                ..Self::default()
            },
            Condition::NotExists => Self {
                expression: Some("attribute_not_exists(pk)".into()),
                ..Self::default()
            },
            // `version` is a reserved word in expressions, hence `#v`.
            Condition::VersionEquals(n) => Self {
                expression: Some("attribute_exists(pk) AND #v = :v".into()),
                names: Some(HashMap::from([("#v".to_owned(), "version".to_owned())])),
                values: Some(HashMap::from([(
                    ":v".to_owned(),
                    AttributeValue::N(n.to_string()),
                )])),
            },
        }
    }
}

/// Turns a failed TransactWriteItems into the store's error.
fn transact_error(
    err: SdkError<TransactWriteItemsError>,
    writes: &[Write],
    origin: &[usize],
) -> StoreError {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) => {
            cancellation_error(cancelled.cancellation_reasons(), writes, origin)
        }
        _ => sdk_error("TransactWriteItems", err),
    }
}

/// Decodes the per-item reasons of a cancelled transaction. `reasons[i]`
/// belongs to the i-th item sent, which is `writes[origin[i]]`.
fn cancellation_error(
    reasons: &[CancellationReason],
    writes: &[Write],
    origin: &[usize],
) -> StoreError {
    if let Some(sent) = reasons
        .iter()
        .position(|r| r.code() == Some("ConditionalCheckFailed"))
    {
        return match origin
            .get(sent)
            .and_then(|&index| Some((index, writes.get(index)?)))
        {
            Some((index, write)) => {
                let (pk, sk) = write.key();
                StoreError::ConditionFailed {
                    index,
                    pk: pk.to_owned(),
                    sk: sk.to_owned(),
                }
            }
            None => StoreError::Backend(format!(
                "condition failed on transaction item {sent}, but only {} were sent",
                origin.len()
            )),
        };
    }
    if reasons
        .iter()
        .any(|r| r.code() == Some("TransactionConflict"))
    {
        return StoreError::Conflict;
    }
    let codes: Vec<String> = reasons
        .iter()
        .map(|r| match r.message() {
            Some(message) => format!("{}: {message}", r.code().unwrap_or("?")),
            None => r.code().unwrap_or("?").to_owned(),
        })
        .collect();
    StoreError::Backend(format!("transaction cancelled: [{}]", codes.join(", ")))
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// Encodes an item: its keys as `S`, its attributes by type. Fails on what
/// DynamoDB cannot hold as we read it back: non-integer numbers, nesting
/// deeper than 32, attributes named `pk` or `sk`.
pub(crate) fn to_attrs(item: &Item) -> Result<HashMap<String, AttributeValue>, StoreError> {
    let mut out = key(&item.pk, &item.sk);
    for (name, value) in &item.attrs {
        if out.contains_key(name) {
            return Err(StoreError::Malformed(format!(
                "attribute name {name:?} is reserved for the key"
            )));
        }
        out.insert(name.clone(), to_value(value, 0)?);
    }
    Ok(out)
}

/// Decodes an item read from the table. Anything the codec would not have
/// written (binary, sets, non-integer numbers, missing keys) is `Malformed`.
pub(crate) fn from_attrs(mut attrs: HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let pk = take_key(&mut attrs, "pk")?;
    let sk = take_key(&mut attrs, "sk")?;
    let attrs = attrs
        .into_iter()
        .map(|(name, value)| {
            let value = from_value(value, 0).map_err(|e| {
                StoreError::Malformed(format!("{pk} / {sk}, attribute {name:?}: {e}"))
            })?;
            Ok((name, value))
        })
        .collect::<Result<Map<_, _>, StoreError>>()?;
    Ok(Item { pk, sk, attrs })
}

fn take_key(attrs: &mut HashMap<String, AttributeValue>, name: &str) -> Result<String, StoreError> {
    match attrs.remove(name) {
        Some(AttributeValue::S(value)) => Ok(value),
        Some(other) => Err(StoreError::Malformed(format!(
            "key {name} is not a string: {other:?}"
        ))),
        None => Err(StoreError::Malformed(format!("item has no {name}"))),
    }
}

fn to_value(value: &Value, depth: usize) -> Result<AttributeValue, StoreError> {
    Ok(match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Number(n) => AttributeValue::N(integer_text(n)?),
        Value::Array(values) => {
            let depth = nested(depth)?;
            AttributeValue::L(
                values
                    .iter()
                    .map(|v| to_value(v, depth))
                    .collect::<Result<_, _>>()?,
            )
        }
        Value::Object(map) => {
            let depth = nested(depth)?;
            AttributeValue::M(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), to_value(v, depth)?)))
                    .collect::<Result<_, StoreError>>()?,
            )
        }
    })
}

/// Message-only errors: `from_attrs` adds which item and attribute.
fn from_value(value: AttributeValue, depth: usize) -> Result<Value, String> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::S(s) => Value::String(s),
        AttributeValue::N(text) => parse_integer(&text)?,
        AttributeValue::L(values) => {
            let depth = nested(depth).map_err(|e| e.to_string())?;
            Value::Array(
                values
                    .into_iter()
                    .map(|v| from_value(v, depth))
                    .collect::<Result<_, _>>()?,
            )
        }
        AttributeValue::M(map) => {
            let depth = nested(depth).map_err(|e| e.to_string())?;
            Value::Object(
                map.into_iter()
                    .map(|(k, v)| Ok((k, from_value(v, depth)?)))
                    .collect::<Result<_, String>>()?,
            )
        }
        other => return Err(format!("unsupported attribute type: {other:?}")),
    })
}

fn nested(depth: usize) -> Result<usize, StoreError> {
    if depth >= MAX_NESTING {
        Err(StoreError::Malformed(format!(
            "lists and maps nest deeper than {MAX_NESTING}"
        )))
    } else {
        Ok(depth + 1)
    }
}

fn integer_text(n: &Number) -> Result<String, StoreError> {
    if let Some(i) = n.as_i64() {
        Ok(i.to_string())
    } else if let Some(u) = n.as_u64() {
        Ok(u.to_string())
    } else {
        Err(StoreError::Malformed(format!(
            "number {n} is not an integer"
        )))
    }
}

fn parse_integer(text: &str) -> Result<Value, String> {
    if let Ok(i) = text.parse::<i64>() {
        Ok(Value::from(i))
    } else if let Ok(u) = text.parse::<u64>() {
        Ok(Value::from(u))
    } else {
        Err(format!("number {text:?} is not a 64-bit integer"))
    }
}

fn attribute_definition(name: &str) -> Result<AttributeDefinition, StoreError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(build_error)
}

fn key_schema_element(name: &str, key_type: KeyType) -> Result<KeySchemaElement, StoreError> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(build_error)
}

fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Backend(format!("building request: {err}"))
}

fn sdk_error(what: &str, err: impl std::error::Error) -> StoreError {
    StoreError::Backend(format!("{what}: {}", DisplayErrorContext(err)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;
    use serde_json::json;

    fn item(attrs: Value) -> Item {
        let Value::Object(attrs) = attrs else {
            panic!("attrs must be an object")
        };
        Item {
            pk: "P".into(),
            sk: "S".into(),
            attrs,
        }
    }

    #[test]
    fn round_trips_every_type() {
        let original = item(json!({
            "s": "héllo 🦀", "empty": "", "neg": i64::MIN, "big": u64::MAX, "zero": 0,
            "t": true, "f": false, "null": null,
            "list": [1, "a", null, [], {}], "map": {"a": {"b": [true]}}, "none": {}
        }));
        let encoded = to_attrs(&original).unwrap();
        assert_eq!(encoded["pk"], AttributeValue::S("P".into()));
        assert_eq!(
            encoded["big"],
            AttributeValue::N("18446744073709551615".into())
        );
        assert_eq!(from_attrs(encoded).unwrap(), original);
    }

    #[test]
    fn rejects_what_dynamodb_would_not_return_as_written() {
        assert!(matches!(
            to_attrs(&item(json!({"x": [1.5]}))),
            Err(StoreError::Malformed(_))
        ));
        assert!(matches!(
            to_attrs(&item(json!({"sk": "x"}))),
            Err(StoreError::Malformed(_))
        ));
        let mut deep = json!(1);
        for _ in 0..MAX_NESTING {
            deep = json!([deep]);
        }
        let deepest = item(json!({ "d": deep.clone() }));
        assert_eq!(from_attrs(to_attrs(&deepest).unwrap()).unwrap(), deepest);
        deep = json!([deep]);
        assert!(matches!(
            to_attrs(&item(json!({"d": deep}))),
            Err(StoreError::Malformed(_))
        ));
    }

    #[test]
    fn reading_foreign_types_is_malformed() {
        let bad = [
            AttributeValue::N("1.5".into()),
            AttributeValue::N("1e400".into()),
            AttributeValue::N("99999999999999999999999".into()),
            AttributeValue::Ss(vec!["a".into()]),
            AttributeValue::Ns(vec!["1".into()]),
            AttributeValue::B(Blob::new(vec![1])),
            AttributeValue::L(vec![AttributeValue::Bs(vec![])]),
        ];
        for value in bad {
            let mut attrs = key("P", "S");
            attrs.insert("x".into(), value.clone());
            assert!(
                matches!(from_attrs(attrs), Err(StoreError::Malformed(_))),
                "{value:?}"
            );
        }
        let mut no_sk = key("P", "S");
        no_sk.remove("sk");
        assert!(matches!(from_attrs(no_sk), Err(StoreError::Malformed(_))));
        let mut numeric_pk = key("P", "S");
        numeric_pk.insert("pk".into(), AttributeValue::N("1".into()));
        assert!(matches!(
            from_attrs(numeric_pk),
            Err(StoreError::Malformed(_))
        ));
    }

    #[test]
    fn cancellation_index_skips_unsent_checks() {
        let writes = vec![
            Write::Check {
                pk: "a".into(),
                sk: "1".into(),
                condition: Condition::None,
            },
            Write::Put {
                item: Item::new("a", "2"),
                condition: Condition::None,
            },
            Write::Check {
                pk: "a".into(),
                sk: "3".into(),
                condition: Condition::None,
            },
            Write::Delete {
                pk: "a".into(),
                sk: "4".into(),
                condition: Condition::Exists,
            },
        ];
        let origin = [1, 3];
        let reason = |code: &str| CancellationReason::builder().code(code).build();
        match cancellation_error(
            &[reason("None"), reason("ConditionalCheckFailed")],
            &writes,
            &origin,
        ) {
            StoreError::ConditionFailed { index, pk, sk } => {
                assert_eq!((index, pk.as_str(), sk.as_str()), (3, "a", "4"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cancellation_error(
                &[reason("TransactionConflict"), reason("None")],
                &writes,
                &origin
            ),
            StoreError::Conflict
        ));
        assert!(matches!(
            cancellation_error(
                &[reason("ThrottlingError"), reason("None")],
                &writes,
                &origin
            ),
            StoreError::Backend(_)
        ));
        assert!(matches!(
            cancellation_error(&[], &writes, &origin),
            StoreError::Backend(_)
        ));
    }
}
