//! The item store port: one table of items addressed by partition key + sort key, with one sparse
//! secondary index, conditional writes, small transactions and TTL expiry.
//!
//! Invariants every backend keeps (the conformance suite checks them):
//! - an item whose `ttl` is at or before "now" (the store's clock) is absent to every read and to every
//!   condition: `NotExists` succeeds over it, `Exists` and `VersionIs` fail;
//! - a transaction applies all of its operations or none, and says which condition failed;
//! - a query returns at most `limit` live items in sort-key order and a cursor iff more live items follow;
//!   the cursor is opaque and the same for every backend.

mod checks;
#[cfg(feature = "test-support")]
pub mod conformance;
mod cursor;
pub mod dynamodb;
mod error;
mod item;
#[cfg(feature = "local")]
pub mod sqlite;
pub mod staged;

pub use cursor::Cursor;
pub use error::{GroupFailed, StoreError};
pub use item::{InventoryError, Item, ItemKey, Value};

/// DynamoDB allows 100 operations per transaction; qchat keeps every transaction within 25 so that no
/// change needs a large one (and older emulators that cap at 25 still agree).
pub const MAX_TRANSACTION_OPS: usize = 25;
/// The largest page a query may ask for.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// Structural attribute names, shared by both backends and by `template.yaml`.
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const TYPE: &str = "t";
    pub const VERSION: &str = "v";
    pub const TTL: &str = "ttl";
    pub const GSI1_PK: &str = "gsi1pk";
    pub const GSI1_SK: &str = "gsi1sk";
    /// The name of the sparse secondary index in DynamoDB.
    pub const GSI1: &str = "gsi1";
}

/// A precondition on the current (live) item at a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// No precondition.
    Always,
    /// No live item at the key (an expired item counts as absent).
    NotExists,
    /// A live item at the key.
    Exists,
    /// A live item at the key whose version attribute `v` equals this.
    VersionIs(u64),
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put {
        item: Item,
        condition: Condition,
    },
    Delete {
        key: ItemKey,
        condition: Condition,
    },
    /// Writes nothing; fails the transaction unless the condition holds.
    Check {
        key: ItemKey,
        condition: Condition,
    },
}

impl WriteOp {
    pub fn key(&self) -> &ItemKey {
        match self {
            Self::Put { item, .. } => item.key(),
            Self::Delete { key, .. } | Self::Check { key, .. } => key,
        }
    }

    pub fn condition(&self) -> Condition {
        match self {
            Self::Put { condition, .. }
            | Self::Delete { condition, .. }
            | Self::Check { condition, .. } => *condition,
        }
    }
}

/// Which key a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// The table: partition `pk`, sorted by `sk`.
    Table,
    /// The sparse index: partition `gsi1pk`, sorted by `gsi1sk`; holds only items that set both.
    Gsi1,
}

/// Which sort keys of the partition a query returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRange {
    All,
    Prefix(String),
    /// Inclusive at both ends.
    Between(String, String),
    AtLeast(String),
    AtMost(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

/// A query of one partition.
#[derive(Debug, Clone)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    pub range: KeyRange,
    pub order: Order,
    /// 1 ..= [`MAX_PAGE_LIMIT`].
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

impl Query {
    /// All items of a table partition, ascending, first page of `limit`.
    pub fn partition(pk: impl Into<String>, limit: usize) -> Self {
        Self {
            index: Index::Table,
            partition: pk.into(),
            range: KeyRange::All,
            order: Order::Ascending,
            limit,
            cursor: None,
        }
    }
}

/// One page of a query.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    /// Present iff more live items follow; pass it back in [`Query::cursor`].
    pub next: Option<Cursor>,
}

impl Page {
    /// A page from up to `limit + 1` live items read in order: the extra item only proves that more
    /// follow, so the cursor (the same for every backend) points after the last item returned.
    pub(crate) fn from_overfetch(mut items: Vec<Item>, query: &Query) -> Self {
        let next = if items.len() > query.limit {
            items.truncate(query.limit);
            items.last().map(|last| Cursor::after(last, query.index))
        } else {
            None
        };
        Self { items, next }
    }
}

/// What one [`ItemStore::remove_expired`] call did.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// Expired items deleted.
    pub removed: usize,
    /// Where the next call continues; `None` once the whole store has been looked at.
    pub next: Option<Cursor>,
}

/// Every item `query` matches, read page after page. For partitions that stay small by nature (a lead's
/// consent chain, an account's sessions, pages or key versions); an unbounded set is paged through by a
/// job with a checkpointed cursor instead.
///
/// # Errors
/// The store's.
pub async fn query_all(store: &dyn ItemStore, mut query: Query) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    loop {
        let page = store.query(&query).await?;
        items.extend(page.items);
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => return Ok(items),
        }
    }
}

/// The item store. Implemented by [`dynamodb::DynamoStore`] and [`sqlite::SqliteStore`].
#[async_trait::async_trait]
pub trait ItemStore: Send + Sync + std::fmt::Debug {
    /// Creates the table (DynamoDB, with the index and TTL) or migrates the schema (SQLite). Idempotent.
    async fn ensure_schema(&self) -> Result<(), StoreError>;

    /// The live item at `key`, if any.
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError>;

    /// The live items at `keys` (any number; a key named twice counts once), in no particular order;
    /// missing and expired keys are left out. For readers that need many small items at once (the
    /// broadcast engine's per-lead secrets for a batch of leads): DynamoDB answers up to 100 keys per
    /// `BatchGetItem`, strongly consistent like [`Self::get`]. This default reads them one by one.
    async fn get_many(&self, keys: &[ItemKey]) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::with_capacity(keys.len());
        for key in checks::distinct_keys(keys)? {
            if let Some(item) = self.get(key).await? {
                found.push(item);
            }
        }
        Ok(found)
    }

    /// Writes `item` (replacing any item at its key) if `condition` holds, else `ConditionFailed`.
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError>;

    /// Deletes the item at `key` if `condition` holds, else `ConditionFailed`. Deleting nothing is fine.
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError>;

    /// One page of a partition of the table or of the index.
    async fn query(&self, query: &Query) -> Result<Page, StoreError>;

    /// Applies up to [`MAX_TRANSACTION_OPS`] operations on distinct keys, all or nothing.
    /// A failed condition answers `TransactionConditionFailed { index }` naming the first failing one.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError>;

    /// Applies each group as [`Self::transact`] would (all or nothing; conditions judged after the groups
    /// before it), in order, stopping at the first group that fails. Every group is checked before any
    /// is applied. A backend that can make the groups one durable commit does (SQLite: one write
    /// transaction, which is what a webhook batch of many events needs); DynamoDB applies one
    /// `TransactWriteItems` per group, as if each were its own `transact` (this default).
    ///
    /// # Errors
    /// [`GroupFailed`]: how many groups were applied, and why the next one was not.
    async fn transact_each(&self, groups: Vec<Vec<WriteOp>>) -> Result<(), GroupFailed> {
        checks::groups(&groups).map_err(GroupFailed::before_any)?;
        for (applied, ops) in groups.into_iter().enumerate() {
            self.transact(ops)
                .await
                .map_err(|error| GroupFailed { applied, error })?;
        }
        Ok(())
    }

    /// Deletes any number of keys unconditionally (in chunks of 25, retrying unprocessed keys with backoff).
    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError>;

    /// Deletes expired items (`ttl` at or before the store's clock), a bounded amount per call, so the
    /// store does not keep what every read already hides (DynamoDB's own TTL deletion takes up to about
    /// two days; SQLite has none). `from` is the `next` of the call before (`None`: the start); `limit`
    /// (1 ..= [`MAX_PAGE_LIMIT`]) bounds the items one call looks at (DynamoDB: one Scan page of the
    /// table) or deletes (SQLite: the oldest expired rows first, through an index on `ttl`, so it needs
    /// no position and `next` only says that more may remain). Each deletion is conditional on the item
    /// still being expired when it is deleted, so an item a concurrent write made live again stays.
    async fn remove_expired(
        &self,
        from: Option<&Cursor>,
        limit: usize,
    ) -> Result<Removed, StoreError>;
}
