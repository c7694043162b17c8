//! A store decorator that counts the calls reaching the backend, by operation, for benchmarks and for
//! tests that hold code to its store-call budget. It can also fail a chosen transaction (fault injection):
//! a `transact` call or one group of a `transact_each` call, each counting as one transaction; and it can
//! let a concurrent writer in just before the next `transact_each` (a race, on demand).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::store::{
    Condition, GroupFailed, Item, ItemKey, ItemStore, Page, Query, StoreError, WriteOp,
};

/// The most deletes DynamoDB takes in one `BatchWriteItem` (the DynamoDB backend's chunk).
const BATCH_WRITE_KEYS: usize = 25;

/// Counts of store calls.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StoreCalls {
    pub get: usize,
    pub put: usize,
    pub delete: usize,
    pub query: usize,
    pub transact: usize,
    pub transact_each: usize,
    pub delete_many: usize,
    pub get_many: usize,
}

impl StoreCalls {
    pub fn total(&self) -> usize {
        self.get
            + self.put
            + self.delete
            + self.query
            + self.transact
            + self.transact_each
            + self.delete_many
            + self.get_many
    }
}

/// The calls of two stores together (an app's main and key stores).
impl std::ops::Add for StoreCalls {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            get: self.get + o.get,
            put: self.put + o.put,
            delete: self.delete + o.delete,
            query: self.query + o.query,
            transact: self.transact + o.transact,
            transact_each: self.transact_each + o.transact_each,
            delete_many: self.delete_many + o.delete_many,
            get_many: self.get_many + o.get_many,
        }
    }
}

/// Wraps a store and counts every call.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ItemStore>,
    get: AtomicUsize,
    put: AtomicUsize,
    delete: AtomicUsize,
    query: AtomicUsize,
    transact: AtomicUsize,
    transact_each: AtomicUsize,
    delete_many: AtomicUsize,
    get_many: AtomicUsize,
    /// The DynamoDB requests `delete_many` calls make: one `BatchWriteItem` per 25 keys (before retries
    /// of unprocessed keys), and the keys.
    batch_writes: AtomicUsize,
    deleted_keys: AtomicUsize,
    /// `remove_expired` calls: on DynamoDB, one Scan page each.
    scans: AtomicUsize,
    /// Transactions so far: `transact` calls plus groups of `transact_each` calls.
    transactions: AtomicUsize,
    /// Items written, deleted or condition-checked: what DynamoDB bills write units for (a transaction's
    /// items at twice the rate).
    items_written: AtomicUsize,
    /// Of those, the items written inside transactions.
    items_in_transactions: AtomicUsize,
    /// The transaction (by count) that fails once; 0 = none.
    fail_transact_at: AtomicUsize,
    /// Written by "someone else" just before the next `transact_each` reaches the backend.
    race: Mutex<Option<Vec<WriteOp>>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ItemStore>) -> Self {
        Self {
            inner,
            get: AtomicUsize::new(0),
            put: AtomicUsize::new(0),
            delete: AtomicUsize::new(0),
            query: AtomicUsize::new(0),
            transact: AtomicUsize::new(0),
            transact_each: AtomicUsize::new(0),
            delete_many: AtomicUsize::new(0),
            get_many: AtomicUsize::new(0),
            batch_writes: AtomicUsize::new(0),
            deleted_keys: AtomicUsize::new(0),
            scans: AtomicUsize::new(0),
            transactions: AtomicUsize::new(0),
            items_written: AtomicUsize::new(0),
            items_in_transactions: AtomicUsize::new(0),
            fail_transact_at: AtomicUsize::new(0),
            race: Mutex::new(None),
        }
    }

    /// Writes `ops` (one transaction, straight to the backend) just before the next `transact_each`
    /// call reaches it: a concurrent writer that got there between a caller's reads and its commit.
    pub fn race_next_transact_each(&self, ops: Vec<WriteOp>) {
        *self.race.lock().unwrap_or_else(PoisonError::into_inner) = Some(ops);
    }

    /// Fails the Nth transaction from now (1 = the next one) once, with a retryable backend error,
    /// before it reaches the backend: a storage failure in the middle of a flow. In a `transact_each`
    /// call, the groups before the failing one are applied, as a backend failing there would.
    pub fn fail_nth_transact(&self, n: usize) {
        let done = self.transactions.load(Ordering::SeqCst);
        self.fail_transact_at.store(done + n, Ordering::SeqCst);
    }

    /// Transactions so far (`transact` calls plus groups of `transact_each` calls).
    pub fn transactions(&self) -> usize {
        self.transactions.load(Ordering::SeqCst)
    }

    /// Items written, deleted or condition-checked so far, and how many of them inside transactions.
    pub fn items_written(&self) -> (usize, usize) {
        (
            self.items_written.load(Ordering::SeqCst),
            self.items_in_transactions.load(Ordering::SeqCst),
        )
    }

    /// `delete_many`'s work as DynamoDB requests: (`BatchWriteItem` requests of at most 25 deletes,
    /// keys deleted); and the `remove_expired` calls (one Scan page each on DynamoDB).
    pub fn batches(&self) -> (usize, usize, usize) {
        (
            self.batch_writes.load(Ordering::SeqCst),
            self.deleted_keys.load(Ordering::SeqCst),
            self.scans.load(Ordering::SeqCst),
        )
    }

    fn wrote(&self, items: usize, in_transaction: bool) {
        self.items_written.fetch_add(items, Ordering::SeqCst);
        if in_transaction {
            self.items_in_transactions
                .fetch_add(items, Ordering::SeqCst);
        }
    }

    pub fn calls(&self) -> StoreCalls {
        StoreCalls {
            get: self.get.load(Ordering::SeqCst),
            put: self.put.load(Ordering::SeqCst),
            delete: self.delete.load(Ordering::SeqCst),
            query: self.query.load(Ordering::SeqCst),
            transact: self.transact.load(Ordering::SeqCst),
            transact_each: self.transact_each.load(Ordering::SeqCst),
            delete_many: self.delete_many.load(Ordering::SeqCst),
            get_many: self.get_many.load(Ordering::SeqCst),
        }
    }
}

fn injected() -> StoreError {
    StoreError::Backend {
        operation: "transact",
        retryable: true,
        source: "injected failure".into(),
    }
}

#[async_trait::async_trait]
impl ItemStore for CountingStore {
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        self.inner.ensure_schema().await
    }
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.get.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.put.fetch_add(1, Ordering::SeqCst);
        self.wrote(1, false);
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.delete.fetch_add(1, Ordering::SeqCst);
        self.wrote(1, false);
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.query.fetch_add(1, Ordering::SeqCst);
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.transact.fetch_add(1, Ordering::SeqCst);
        let n = self.transactions.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_transact_at.load(Ordering::SeqCst) == n {
            return Err(injected());
        }
        self.wrote(ops.len(), true);
        self.inner.transact(ops).await
    }
    async fn transact_each(&self, mut groups: Vec<Vec<WriteOp>>) -> Result<(), GroupFailed> {
        self.transact_each.fetch_add(1, Ordering::SeqCst);
        let race = self
            .race
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(ops) = race {
            self.inner
                .transact(ops)
                .await
                .map_err(GroupFailed::before_any)?;
        }
        let first = self.transactions.fetch_add(groups.len(), Ordering::SeqCst) + 1;
        let failing = self
            .fail_transact_at
            .load(Ordering::SeqCst)
            .checked_sub(first)
            .filter(|at| *at < groups.len());
        let Some(applied) = failing else {
            self.wrote(groups.iter().map(Vec::len).sum(), true);
            return self.inner.transact_each(groups).await;
        };
        groups.truncate(applied);
        self.wrote(groups.iter().map(Vec::len).sum(), true);
        self.inner.transact_each(groups).await?;
        Err(GroupFailed {
            applied,
            error: injected(),
        })
    }
    async fn get_many(&self, keys: &[ItemKey]) -> Result<Vec<Item>, StoreError> {
        self.get_many.fetch_add(1, Ordering::SeqCst);
        self.inner.get_many(keys).await
    }
    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        self.delete_many.fetch_add(1, Ordering::SeqCst);
        self.batch_writes
            .fetch_add(keys.len().div_ceil(BATCH_WRITE_KEYS), Ordering::SeqCst);
        self.deleted_keys.fetch_add(keys.len(), Ordering::SeqCst);
        self.wrote(keys.len(), false);
        self.inner.delete_many(keys).await
    }
    async fn remove_expired(
        &self,
        from: Option<&crate::store::Cursor>,
        limit: usize,
    ) -> Result<crate::store::Removed, StoreError> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        self.inner.remove_expired(from, limit).await
    }
}
