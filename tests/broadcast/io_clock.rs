//! Store and Send API calls that take no time on the test's clock.
//!
//! The [`crate::harness::ClockSleeper`] moves the manual clock to the earliest pending wait once no
//! earlier one has appeared for a few real milliseconds. A message's time at the fake Send API is then
//! its pace slot plus whatever the clock moved while its claim, its re-read and its HTTP request took
//! real milliseconds (on moto on a loaded machine, tens of them, while the other runner's waits move
//! the clock ten times faster than real time). A case that measures the pace itself wraps the engine's
//! store, key store and messenger here: the sleeper then moves the clock only while no such call is
//! under way and none started during its quiet window, so each message arrives at its slot's time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use qchat_shared::domain::{AppScopedUserId, PageAccessToken, PageId, Psid};
use qchat_shared::messenger::{
    Messenger, OutgoingMessage, PageCheckError, PageProfile, SendError, SentMessage,
};
use qchat_shared::store::{
    Condition, Cursor, GroupFailed, Item, ItemKey, ItemStore, Page, Query, Removed, StoreError,
    WriteOp,
};

/// The calls under way, and how many have started so far.
#[derive(Debug, Default)]
pub struct InFlight {
    under_way: AtomicUsize,
    started: AtomicU64,
}

impl InFlight {
    fn enter(&self) -> Call<'_> {
        self.started.fetch_add(1, Ordering::SeqCst);
        self.under_way.fetch_add(1, Ordering::SeqCst);
        Call(self)
    }

    /// `Some(calls started so far)` when no call is under way: two equal answers a window apart say
    /// that no call ran during the window.
    pub fn quiet(&self) -> Option<u64> {
        let started = self.started.load(Ordering::SeqCst);
        (self.under_way.load(Ordering::SeqCst) == 0).then_some(started)
    }
}

/// One call under way; ends when dropped (also when its future is dropped).
struct Call<'a>(&'a InFlight);

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.0.under_way.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A store whose calls hold the test's clock.
#[derive(Debug)]
pub struct HeldStore {
    pub inner: Arc<dyn ItemStore>,
    pub calls: Arc<InFlight>,
}

#[async_trait::async_trait]
impl ItemStore for HeldStore {
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        let _call = self.calls.enter();
        self.inner.ensure_schema().await
    }
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let _call = self.calls.enter();
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        let _call = self.calls.enter();
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        let _call = self.calls.enter();
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        let _call = self.calls.enter();
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let _call = self.calls.enter();
        self.inner.transact(ops).await
    }
    async fn transact_each(&self, groups: Vec<Vec<WriteOp>>) -> Result<(), GroupFailed> {
        let _call = self.calls.enter();
        self.inner.transact_each(groups).await
    }
    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        let _call = self.calls.enter();
        self.inner.delete_many(keys).await
    }
    async fn remove_expired(
        &self,
        from: Option<&Cursor>,
        limit: usize,
    ) -> Result<Removed, StoreError> {
        let _call = self.calls.enter();
        self.inner.remove_expired(from, limit).await
    }
}

/// A messenger whose calls hold the test's clock (until the fake Send API has recorded the request).
#[derive(Debug)]
pub struct HeldMessenger {
    pub inner: Arc<dyn Messenger>,
    pub calls: Arc<InFlight>,
}

#[async_trait::async_trait]
impl Messenger for HeldMessenger {
    async fn send(
        &self,
        page: &PageId,
        token: &PageAccessToken,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        let _call = self.calls.enter();
        self.inner.send(page, token, message).await
    }
    async fn page_of_token(&self, token: &PageAccessToken) -> Result<PageProfile, PageCheckError> {
        let _call = self.calls.enter();
        self.inner.page_of_token(token).await
    }
    async fn ids_for_pages(
        &self,
        user: &AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
    ) -> Result<Vec<Psid>, PageCheckError> {
        let _call = self.calls.enter();
        self.inner.ids_for_pages(user, page, token).await
    }
}
