//! DynamoDB backend of the item store: one table (`pk`/`sk`), one sparse index `gsi1`, the TTL attribute
//! `ttl`, condition expressions and `TransactWriteItems`.
//!
//! Invariants:
//! - DynamoDB deletes expired items only eventually (within about two days), so every condition treats
//!   an item whose `ttl` is at or before the clock's current second as absent, and every read drops it
//!   (`get` after reading, `query` with a filter expression, re-querying until the page is full because
//!   DynamoDB applies `Limit` before the filter);
//! - cursors are always [`super::Cursor::after`] the last returned item, never DynamoDB's `LastEvaluatedKey`,
//!   so both backends hand out the same cursors;
//! - table reads are strongly consistent; index queries cannot be (DynamoDB's GSIs are eventually
//!   consistent, moto's are not), so callers never rely on reading their own index writes at once;
//! - the item mapping (attribute names and types) is private to this module;
//! - SDK errors keep their cause as the `source` of [`StoreError::Backend`]; throttling, 5xx and network
//!   failures are marked retryable.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::create_table::CreateTableError;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, DeleteRequest,
    GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType, KeysAndAttributes, Projection,
    ProjectionType, Put, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    TimeToLiveStatus, TransactWriteItem, WriteRequest,
};

use super::cursor::CursorPosition;
use super::{
    Condition, Cursor, Index, Item, ItemKey, ItemStore, KeyRange, Order, Page, Query, Removed,
    StoreError, Value, WriteOp, attr, checks,
};
use crate::clock::{Clock, Timestamp};

/// `BatchWriteItem` takes at most 25 requests.
const BATCH_SIZE: usize = 25;
/// The most keys DynamoDB reads in one `BatchGetItem`.
const BATCH_GET_SIZE: usize = 100;
/// Attempts of one batch while DynamoDB leaves items unprocessed (throttling), with exponential backoff.
const BATCH_ATTEMPTS: u32 = 8;
/// Conditional deletions of expired items in flight at once during a retention sweep: a Scan page of
/// up to 1 000 keys is deleted in about a second instead of one round trip after another.
const SWEEP_CONCURRENCY: usize = 16;
/// Polls of `DescribeTable` while a new table or index becomes active (about ten minutes in all).
const ACTIVE_POLLS: u32 = 150;

/// Error codes (of an operation or of a transaction's cancellation reason) worth retrying.
const RETRYABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "ThrottlingError",
    "ProvisionedThroughputExceededException",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
];

/// Failures this module detects itself (kept as the `source` of a backend error).
#[derive(Debug, thiserror::Error)]
enum DynamoError {
    #[error("the table or its index did not become active in time")]
    NotActive,
    #[error("time to live is enabled on another attribute of the table")]
    TtlOnOtherAttribute,
    #[error("{remaining} deletions were still unprocessed after {BATCH_ATTEMPTS} attempts")]
    Unprocessed { remaining: usize },
    #[error("{remaining} reads were still unprocessed after {BATCH_ATTEMPTS} attempts")]
    UnprocessedReads { remaining: usize },
    #[error("a deletion task of the retention sweep failed")]
    SweepTask(#[source] tokio::task::JoinError),
}

fn own(operation: &'static str, retryable: bool, error: DynamoError) -> StoreError {
    StoreError::Backend {
        operation,
        retryable,
        source: Box::new(error),
    }
}

fn retryable<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(context) => {
            context.raw().status().is_server_error()
                || context
                    .err()
                    .code()
                    .is_some_and(|code| RETRYABLE_CODES.contains(&code))
        }
        _ => false,
    }
}

/// Maps an SDK error, keeping it whole as the source.
fn sdk<E>(operation: &'static str) -> impl FnOnce(SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |error| StoreError::Backend {
        operation,
        retryable: retryable(&error),
        source: Box::new(error),
    }
}

fn build(
    operation: &'static str,
) -> impl FnOnce(aws_sdk_dynamodb::error::BuildError) -> StoreError {
    move |error| StoreError::Backend {
        operation,
        retryable: false,
        source: Box::new(error),
    }
}

type Attributes = HashMap<String, AttributeValue>;

/// The item store in one DynamoDB table.
pub struct DynamoStore {
    client: Client,
    table: String,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            table: table.into(),
            clock,
        }
    }

    fn now_secs(&self) -> i64 {
        self.clock.now().secs()
    }

    async fn create_table(&self) -> Result<(), StoreError> {
        const OP: &str = "create_table";
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(build(OP))
        };
        let string_attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build(OP))
        };
        let index = GlobalSecondaryIndex::builder()
            .index_name(attr::GSI1)
            .key_schema(key(attr::GSI1_PK, KeyType::Hash)?)
            .key_schema(key(attr::GSI1_SK, KeyType::Range)?)
            .projection(
                Projection::builder()
                    .projection_type(ProjectionType::All)
                    .build(),
            )
            .build()
            .map_err(build(OP))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(attr::PK, KeyType::Hash)?)
            .key_schema(key(attr::SK, KeyType::Range)?)
            .attribute_definitions(string_attribute(attr::PK)?)
            .attribute_definitions(string_attribute(attr::SK)?)
            .attribute_definitions(string_attribute(attr::GSI1_PK)?)
            .attribute_definitions(string_attribute(attr::GSI1_SK)?)
            .global_secondary_indexes(index)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Already there (or being created by a concurrent caller): waiting for ACTIVE follows.
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(CreateTableError::ResourceInUseException(_))
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(sdk(OP)(error)),
        }
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        const OP: &str = "describe_table";
        let mut pause = Duration::from_millis(50);
        for _ in 0..ACTIVE_POLLS {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(sdk(OP))?;
            if let Some(table) = described.table() {
                let table_active = table.table_status() == Some(&TableStatus::Active);
                let indexes_active = table
                    .global_secondary_indexes()
                    .iter()
                    .all(|index| index.index_status() == Some(&IndexStatus::Active));
                if table_active && indexes_active {
                    return Ok(());
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(5));
        }
        Err(own(OP, true, DynamoError::NotActive))
    }

    /// Whether TTL is on (or turning on) for `ttl`; an error if it is on for another attribute.
    async fn ttl_enabled(&self) -> Result<bool, StoreError> {
        const OP: &str = "describe_time_to_live";
        let described = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(sdk(OP))?;
        let Some(description) = described.time_to_live_description() else {
            return Ok(false);
        };
        let on = matches!(
            description.time_to_live_status(),
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        match description.attribute_name() {
            Some(name) if on && name != attr::TTL => {
                Err(own(OP, false, DynamoError::TtlOnOtherAttribute))
            }
            _ => Ok(on),
        }
    }

    async fn enable_ttl(&self) -> Result<(), StoreError> {
        const OP: &str = "update_time_to_live";
        if self.ttl_enabled().await? {
            return Ok(());
        }
        let specification = TimeToLiveSpecification::builder()
            .attribute_name(attr::TTL)
            .enabled(true)
            .build()
            .map_err(build(OP))?;
        let updated = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(specification)
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            // DynamoDB refuses to enable TTL twice; a concurrent caller may have just done it.
            Err(error) => match self.ttl_enabled().await {
                Ok(true) => Ok(()),
                _ => Err(sdk(OP)(error)),
            },
        }
    }

    async fn delete_chunk(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        const OP: &str = "batch_write_item";
        let mut pause = Duration::from_millis(50);
        for attempt in 0..BATCH_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(jittered(pause)).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            let written = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(sdk(OP))?;
            requests = written
                .unprocessed_items()
                .and_then(|unprocessed| unprocessed.get(&self.table))
                .cloned()
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
        }
        Err(own(
            OP,
            true,
            DynamoError::Unprocessed {
                remaining: requests.len(),
            },
        ))
    }
}

impl DynamoStore {
    /// One `BatchGetItem` of up to [`BATCH_GET_SIZE`] keys, its unprocessed keys asked again with
    /// backoff (as [`Self::delete_chunk`] does); the live items found.
    async fn get_chunk(&self, keys: &[&ItemKey]) -> Result<Vec<Item>, StoreError> {
        const OP: &str = "batch_get_item";
        let now = self.clock.now();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys.iter().map(|k| key_attributes(k)).collect()))
                .consistent_read(true)
                .build()
                .map_err(build(OP))?,
        );
        let mut found = Vec::with_capacity(keys.len());
        let mut pause = Duration::from_millis(50);
        for attempt in 0..BATCH_ATTEMPTS {
            let Some(request) = pending.take() else {
                return Ok(found);
            };
            if attempt > 0 {
                tokio::time::sleep(jittered(pause)).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            let read = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(sdk(OP))?;
            for map in read
                .responses()
                .and_then(|r| r.get(&self.table))
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let item = from_attributes(map)?;
                if !item.is_expired_at(now) {
                    found.push(item);
                }
            }
            pending = read
                .unprocessed_keys()
                .and_then(|u| u.get(&self.table))
                .filter(|k| !k.keys().is_empty())
                .cloned();
        }
        match pending {
            None => Ok(found),
            Some(left) => Err(own(
                OP,
                true,
                DynamoError::UnprocessedReads {
                    remaining: left.keys().len(),
                },
            )),
        }
    }

    /// One Scan page of the keys of expired items (the filter is applied after `Limit`: the page
    /// looks at up to `limit` items and returns the expired ones among them), then a deletion of each,
    /// conditional on its still being expired.
    async fn remove_expired_page(
        &self,
        from: Option<&Cursor>,
        limit: usize,
    ) -> Result<Removed, StoreError> {
        const OP: &str = "scan";
        let start = checks::sweep(from, limit)?.map(|p| exclusive_start_key(&p));
        let now = self.now_secs();
        let read = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression("#ttl <= :now")
            .projection_expression("#pk, #sk")
            .expression_attribute_names("#ttl", attr::TTL)
            .expression_attribute_names("#pk", attr::PK)
            .expression_attribute_names("#sk", attr::SK)
            .expression_attribute_values(":now", number(now))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk(OP))?;
        let keys = read
            .items()
            .iter()
            .map(key_of)
            .collect::<Result<Vec<_>, _>>()?;
        let next = read
            .last_evaluated_key()
            .map(key_of)
            .transpose()?
            .map(|key| Cursor::after_key(&key));
        let removed = self.delete_if_expired(keys, now).await?;
        Ok(Removed { removed, next })
    }

    /// Deletes each of `keys` whose item is still expired at `now`, [`SWEEP_CONCURRENCY`] at a time;
    /// how many it deleted (an item made live again, or already gone, is not counted).
    async fn delete_if_expired(&self, keys: Vec<ItemKey>, now: i64) -> Result<usize, StoreError> {
        const OP: &str = "delete_item";
        let mut removed = 0;
        for chunk in keys.chunks(SWEEP_CONCURRENCY) {
            let mut deletions = tokio::task::JoinSet::new();
            for key in chunk {
                let request = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key_attributes(key)))
                    .condition_expression("#ttl <= :now")
                    .expression_attribute_names("#ttl", attr::TTL)
                    .expression_attribute_values(":now", number(now));
                deletions.spawn(request.send());
            }
            while let Some(joined) = deletions.join_next().await {
                match joined.map_err(|e| own(OP, true, DynamoError::SweepTask(e)))? {
                    Ok(_) => removed += 1,
                    Err(error)
                        if matches!(
                            error.as_service_error(),
                            Some(DeleteItemError::ConditionalCheckFailedException(_))
                        ) => {}
                    Err(error) => return Err(sdk(OP)(error)),
                }
            }
        }
        Ok(removed)
    }
}

/// The key of a scanned item (or of a Scan's `LastEvaluatedKey`).
fn key_of(map: &Attributes) -> Result<ItemKey, StoreError> {
    match (map.get(attr::PK), map.get(attr::SK)) {
        (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => {
            Ok(ItemKey::new(pk.clone(), sk.clone()))
        }
        _ => Err(StoreError::Corrupt("a scanned key is not two strings")),
    }
}

/// Half to all of `pause`, so that throttled writers do not retry in lockstep.
fn jittered(pause: Duration) -> Duration {
    let [random] = crate::crypto::random_bytes::<1>();
    pause / 2 + pause / 2 * u32::from(random) / 255
}

/// A condition as a DynamoDB condition expression with its names and values; `None` for `Always`.
struct Expression {
    text: String,
    names: HashMap<String, String>,
    values: Attributes,
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// An expired item (TTL at or before now) counts as absent, as in every read.
fn condition_expression(condition: Condition, now: i64) -> Option<Expression> {
    const LIVE: &str = "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)";
    let text = match condition {
        Condition::Always => return None,
        Condition::NotExists => "attribute_not_exists(#pk) OR #ttl <= :now".to_owned(),
        Condition::Exists => LIVE.to_owned(),
        Condition::VersionIs(_) => format!("{LIVE} AND #v = :v"),
    };
    let mut names = HashMap::from([
        ("#pk".to_owned(), attr::PK.to_owned()),
        ("#ttl".to_owned(), attr::TTL.to_owned()),
    ]);
    let mut values = HashMap::from([(":now".to_owned(), number(now))]);
    if let Condition::VersionIs(version) = condition {
        names.insert("#v".to_owned(), attr::VERSION.to_owned());
        values.insert(":v".to_owned(), number(version));
    }
    Some(Expression {
        text,
        names,
        values,
    })
}

/// The three optional parts of a condition, for the SDK builders' `set_*` methods.
type ExpressionParts = (
    Option<String>,
    Option<HashMap<String, String>>,
    Option<Attributes>,
);

fn parts(expression: Option<Expression>) -> ExpressionParts {
    match expression {
        Some(e) => (Some(e.text), Some(e.names), Some(e.values)),
        None => (None, None, None),
    }
}

/// The primary key attributes of `key`.
fn key_attributes(key: &ItemKey) -> Attributes {
    HashMap::from([
        (attr::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (attr::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn to_attributes(item: &Item) -> Attributes {
    let mut map = key_attributes(item.key());
    map.insert(
        attr::TYPE.to_owned(),
        AttributeValue::S(item.item_type().name.to_owned()),
    );
    if let Some(version) = item.version() {
        map.insert(attr::VERSION.to_owned(), number(version));
    }
    if let Some(expires) = item.expires() {
        map.insert(attr::TTL.to_owned(), number(expires.secs()));
    }
    if let Some((gpk, gsk)) = item.gsi1() {
        map.insert(attr::GSI1_PK.to_owned(), AttributeValue::S(gpk.to_owned()));
        map.insert(attr::GSI1_SK.to_owned(), AttributeValue::S(gsk.to_owned()));
    }
    for (name, value) in item.attributes() {
        let value = match value {
            Value::S(s) => AttributeValue::S(s.clone()),
            Value::N(n) => number(n),
            Value::B(b) => AttributeValue::B(Blob::new(b.clone())),
            Value::Bool(b) => AttributeValue::Bool(*b),
        };
        map.insert(name.clone(), value);
    }
    map
}

fn from_attributes(map: &Attributes) -> Result<Item, StoreError> {
    let string = |name: &str| -> Result<Option<String>, StoreError> {
        match map.get(name) {
            None => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.clone())),
            Some(_) => Err(StoreError::Corrupt(
                "structural attribute of the wrong type",
            )),
        }
    };
    let integer = |name: &str| -> Result<Option<i64>, StoreError> {
        match map.get(name) {
            None => Ok(None),
            Some(AttributeValue::N(n)) => n
                .parse()
                .map(Some)
                .map_err(|_| StoreError::Corrupt("number out of range")),
            Some(_) => Err(StoreError::Corrupt(
                "structural attribute of the wrong type",
            )),
        }
    };
    let (Some(pk), Some(sk), Some(type_name)) =
        (string(attr::PK)?, string(attr::SK)?, string(attr::TYPE)?)
    else {
        return Err(StoreError::Corrupt("item without key or type"));
    };
    let version = integer(attr::VERSION)?
        .map(u64::try_from)
        .transpose()
        .map_err(|_| StoreError::Corrupt("negative version"))?;
    let expires = integer(attr::TTL)?.map(Timestamp::from_secs);
    let gsi1 = match (string(attr::GSI1_PK)?, string(attr::GSI1_SK)?) {
        (Some(p), Some(s)) => Some((p, s)),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt("one index key without the other")),
    };
    const STRUCTURAL: &[&str] = &[
        attr::PK,
        attr::SK,
        attr::TYPE,
        attr::VERSION,
        attr::TTL,
        attr::GSI1_PK,
        attr::GSI1_SK,
    ];
    let mut attrs = BTreeMap::new();
    for (name, value) in map {
        if STRUCTURAL.contains(&name.as_str()) {
            continue;
        }
        let value = match value {
            AttributeValue::S(s) => Value::S(s.clone()),
            AttributeValue::N(n) => Value::N(
                n.parse()
                    .map_err(|_| StoreError::Corrupt("number out of range"))?,
            ),
            AttributeValue::B(b) => Value::B(b.as_ref().to_vec()),
            AttributeValue::Bool(b) => Value::Bool(*b),
            _ => return Err(StoreError::Corrupt("attribute of an unsupported type")),
        };
        attrs.insert(name.clone(), value);
    }
    Ok(Item::from_stored(
        &type_name,
        ItemKey::new(pk, sk),
        version,
        expires,
        gsi1,
        attrs,
    )?)
}

/// Where DynamoDB resumes a query: just after the cursor's item, in the table or the index.
fn exclusive_start_key(position: &CursorPosition) -> Attributes {
    let mut key = key_attributes(&ItemKey::new(position.pk.clone(), position.sk.clone()));
    if let Some((gpk, gsk)) = &position.gsi1 {
        key.insert(attr::GSI1_PK.to_owned(), AttributeValue::S(gpk.clone()));
        key.insert(attr::GSI1_SK.to_owned(), AttributeValue::S(gsk.clone()));
    }
    key
}

/// The failure a cancelled transaction stands for: the first failed condition (by the caller's operation
/// index, through `positions`), else a conflict, else `None` (a backend error).
fn cancellation(reasons: &[Option<&str>], positions: &[usize]) -> Option<StoreError> {
    if let Some(at) = reasons
        .iter()
        .position(|code| *code == Some("ConditionalCheckFailed"))
    {
        let index = positions.get(at).copied().unwrap_or(at);
        return Some(StoreError::TransactionConditionFailed { index });
    }
    if reasons.contains(&Some("TransactionConflict")) {
        return Some(StoreError::TransactionConflict);
    }
    None
}

/// The cancellation codes listed at the end of the message, `[None, ConditionalCheckFailed]`, for when
/// the structured reasons are missing (DynamoDB and moto both write this list).
fn codes_from_message(message: &str) -> Vec<Option<&str>> {
    let Some(list) = message
        .rfind('[')
        .and_then(|open| message[open + 1..].split(']').next())
    else {
        return Vec::new();
    };
    list.split(',')
        .map(str::trim)
        .map(|code| (code != "None" && !code.is_empty()).then_some(code))
        .collect()
}

#[async_trait::async_trait]
impl ItemStore for DynamoStore {
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        self.create_table().await?;
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        const OP: &str = "get_item";
        checks::key(key)?;
        let now = self.clock.now();
        let read = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(sdk(OP))?;
        let Some(map) = read.item() else {
            return Ok(None);
        };
        let item = from_attributes(map)?;
        Ok((!item.is_expired_at(now)).then_some(item))
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        const OP: &str = "put_item";
        checks::item(&item)?;
        let (text, names, values) = parts(condition_expression(condition, self.now_secs()));
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_attributes(&item)))
            .set_condition_expression(text)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(PutItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::ConditionFailed)
            }
            Err(error) => Err(sdk(OP)(error)),
        }
    }

    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        const OP: &str = "delete_item";
        checks::key(key)?;
        let (text, names, values) = parts(condition_expression(condition, self.now_secs()));
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_attributes(key)))
            .set_condition_expression(text)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error)
                if matches!(
                    error.as_service_error(),
                    Some(DeleteItemError::ConditionalCheckFailedException(_))
                ) =>
            {
                Err(StoreError::ConditionFailed)
            }
            Err(error) => Err(sdk(OP)(error)),
        }
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        const OP: &str = "query";
        let position = checks::query(query)?;
        let now = self.clock.now();
        let (partition_attr, sort_attr) = match query.index {
            Index::Table => (attr::PK, attr::SK),
            Index::Gsi1 => (attr::GSI1_PK, attr::GSI1_SK),
        };
        let mut names = HashMap::from([
            ("#p".to_owned(), partition_attr.to_owned()),
            ("#ttl".to_owned(), attr::TTL.to_owned()),
        ]);
        let mut values = HashMap::from([
            (":p".to_owned(), AttributeValue::S(query.partition.clone())),
            (":now".to_owned(), number(now.secs())),
        ]);
        let mut key_condition = "#p = :p".to_owned();
        let mut bound = |clause: &str, bounds: &[&String]| {
            key_condition.push_str(" AND ");
            key_condition.push_str(clause);
            names.insert("#s".to_owned(), sort_attr.to_owned());
            for (name, value) in [":a", ":b"].iter().zip(bounds) {
                values.insert((*name).to_owned(), AttributeValue::S((*value).clone()));
            }
        };
        match &query.range {
            KeyRange::All => {}
            // DynamoDB refuses an empty key value; an empty prefix is every item.
            KeyRange::Prefix(prefix) if prefix.is_empty() => {}
            KeyRange::Prefix(prefix) => bound("begins_with(#s, :a)", &[prefix]),
            KeyRange::Between(low, high) => bound("#s BETWEEN :a AND :b", &[low, high]),
            KeyRange::AtLeast(low) => bound("#s >= :a", &[low]),
            KeyRange::AtMost(high) => bound("#s <= :a", &[high]),
        }

        let want = query.limit + 1;
        let mut items: Vec<Item> = Vec::with_capacity(want);
        let mut start = position.as_ref().map(exclusive_start_key);
        loop {
            let ask = i32::try_from(want - items.len()).unwrap_or(i32::MAX);
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&key_condition)
                .filter_expression("attribute_not_exists(#ttl) OR #ttl > :now")
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(query.order == Order::Ascending)
                .limit(ask)
                .set_exclusive_start_key(start.take());
            request = match query.index {
                Index::Table => request.consistent_read(true),
                Index::Gsi1 => request.index_name(attr::GSI1),
            };
            let read = request.send().await.map_err(sdk(OP))?;
            for map in read.items() {
                let item = from_attributes(map)?;
                // The filter already dropped expired items; checking again costs nothing.
                if !item.is_expired_at(now) && items.len() < want {
                    items.push(item);
                }
            }
            match read.last_evaluated_key() {
                Some(last) if items.len() < want => start = Some(last.clone()),
                _ => break,
            }
        }
        Ok(Page::from_overfetch(items, query))
    }

    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        const OP: &str = "transact_write_items";
        checks::transaction(&ops)?;
        let now = self.now_secs();
        let mut request_items = Vec::with_capacity(ops.len());
        // The caller's operation index of each request item (unconditional checks are not sent).
        let mut positions = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let transact_item = match op {
                WriteOp::Put { item, condition } => {
                    let (text, names, values) = parts(condition_expression(*condition, now));
                    let put = Put::builder()
                        .table_name(&self.table)
                        .set_item(Some(to_attributes(item)))
                        .set_condition_expression(text)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(build(OP))?;
                    TransactWriteItem::builder().put(put).build()
                }
                WriteOp::Delete { key, condition } => {
                    let (text, names, values) = parts(condition_expression(*condition, now));
                    let delete = Delete::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attributes(key)))
                        .set_condition_expression(text)
                        .set_expression_attribute_names(names)
                        .set_expression_attribute_values(values)
                        .build()
                        .map_err(build(OP))?;
                    TransactWriteItem::builder().delete(delete).build()
                }
                WriteOp::Check { key, condition } => {
                    let Some(expression) = condition_expression(*condition, now) else {
                        continue;
                    };
                    let check = ConditionCheck::builder()
                        .table_name(&self.table)
                        .set_key(Some(key_attributes(key)))
                        .condition_expression(expression.text)
                        .set_expression_attribute_names(Some(expression.names))
                        .set_expression_attribute_values(Some(expression.values))
                        .build()
                        .map_err(build(OP))?;
                    TransactWriteItem::builder().condition_check(check).build()
                }
            };
            request_items.push(transact_item);
            positions.push(index);
        }
        if request_items.is_empty() {
            return Ok(());
        }
        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(request_items))
            .send()
            .await;
        let Err(error) = written else {
            return Ok(());
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            error.as_service_error()
        {
            let mut codes: Vec<Option<&str>> = cancelled
                .cancellation_reasons()
                .iter()
                .map(|reason| reason.code().filter(|code| *code != "None"))
                .collect();
            if codes.iter().all(Option::is_none) {
                codes = cancelled
                    .message()
                    .map(codes_from_message)
                    .unwrap_or_default();
            }
            if let Some(failure) = cancellation(&codes, &positions) {
                return Err(failure);
            }
            let throttled = codes.iter().flatten().any(|c| RETRYABLE_CODES.contains(c));
            return Err(StoreError::Backend {
                operation: OP,
                retryable: throttled,
                source: Box::new(error),
            });
        }
        Err(sdk(OP)(error))
    }

    async fn remove_expired(
        &self,
        from: Option<&Cursor>,
        limit: usize,
    ) -> Result<Removed, StoreError> {
        self.remove_expired_page(from, limit).await
    }

    async fn get_many(&self, keys: &[ItemKey]) -> Result<Vec<Item>, StoreError> {
        let keys = checks::distinct_keys(keys)?;
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_SIZE) {
            found.extend(self.get_chunk(chunk).await?);
        }
        Ok(found)
    }

    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        const OP: &str = "batch_write_item";
        let keys = checks::distinct_keys(keys)?;
        for chunk in keys.chunks(BATCH_SIZE) {
            let requests = chunk
                .iter()
                .map(|key| {
                    DeleteRequest::builder()
                        .set_key(Some(key_attributes(key)))
                        .build()
                        .map(|delete| WriteRequest::builder().delete_request(delete).build())
                        .map_err(build(OP))
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.delete_chunk(requests).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cancellation_codes_from_the_message() {
        let message = "Transaction cancelled, please refer cancellation reasons for specific reasons \
                       [None, ConditionalCheckFailed, None]";
        assert_eq!(
            codes_from_message(message),
            vec![None, Some("ConditionalCheckFailed"), None]
        );
        assert!(codes_from_message("no list here").is_empty());
    }

    #[test]
    fn names_the_callers_index_of_the_first_failed_condition() {
        let codes = [
            None,
            Some("ConditionalCheckFailed"),
            Some("ConditionalCheckFailed"),
        ];
        // The caller's operation 1 was an unconditional check and was not sent.
        let failure = cancellation(&codes, &[0, 2, 3]);
        assert!(matches!(
            failure,
            Some(StoreError::TransactionConditionFailed { index: 2 })
        ));
        assert!(matches!(
            cancellation(&[None, Some("TransactionConflict")], &[0, 1]),
            Some(StoreError::TransactionConflict)
        ));
        assert!(cancellation(&[Some("ThrottlingError")], &[0]).is_none());
    }
}
