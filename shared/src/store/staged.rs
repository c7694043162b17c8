//! A unit of work over the item store: transactions are staged in memory and committed together by
//! [`Staged::commit`] through [`ItemStore::transact_each`] — on SQLite one durable commit for a whole
//! webhook batch instead of one per event, which is most of an event's cost there. Reads see what is
//! staged, so a batch's later events build on its earlier ones.
//!
//! Invariants:
//! - `transact` answering `Ok` means *staged*, not durable: nothing is durable before `commit` succeeds,
//!   and dropping a `Staged` without committing discards its work;
//! - a staged transaction is judged like the store would judge it after the groups before it: a
//!   condition on a key this unit already wrote is checked at once against the staged item; a condition on
//!   any other key is checked by the store at commit, in order;
//! - a call the staging cannot answer exactly (a query, a single put or delete, `delete_many`) commits
//!   what is staged first, then goes to the store;
//! - every staged group carries the tag given by [`Staged::begin`] (the caller's index of the work it
//!   belongs to, one group per tag). A failed commit records the tag of the group that failed: every group
//!   before it is durable, none from it on, so the caller redoes its work from that tag — directly on the
//!   store — and nothing is applied twice or lost. The staged state is dropped with the failure;
//! - a unit made [`Staged::after`] another (over another store) commits that one first, every time it
//!   commits, and none of its own groups from a tag the other failed at: a group is never durable before
//!   the other unit's groups of its tag;
//! - keys read ahead ([`Staged::read_ahead`]) are answered from that read until the next commit, unless
//!   this unit wrote them: an answer as old as a read made then, which is what a caller planning on a
//!   read has anyway (the store judges the conditions at commit).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::{
    Condition, GroupFailed, Item, ItemKey, ItemStore, Page, Query, StoreError, WriteOp, checks,
};
use crate::clock::Clock;

/// Why a commit failed, and from which tag the work must be redone.
#[derive(Debug, thiserror::Error)]
#[error("staged work from tag {tag} was not committed")]
pub struct CommitFailed {
    /// The tag of the first group that was not applied.
    pub tag: usize,
    #[source]
    pub error: StoreError,
}

#[derive(Debug, Default)]
struct State {
    /// The tag of groups staged from now on.
    tag: usize,
    /// Staged groups in order, with their tags.
    groups: Vec<(usize, Vec<WriteOp>)>,
    /// What the staged groups leave at each key they write: where the put item is staged (group, then
    /// operation; read from there, never copied), or `None` when deleted.
    written: HashMap<ItemKey, Option<(usize, usize)>>,
    /// The last failed commit, until [`Staged::take_failure`] takes it.
    failure: Option<CommitFailed>,
    /// What the store held at keys read ahead ([`Staged::read_ahead`]) since the last commit: `None`
    /// when nothing live was there.
    read: HashMap<ItemKey, Option<Item>>,
}

/// Staged transactions over a store (see the module's invariants).
#[derive(Debug)]
pub struct Staged {
    store: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// A unit over another store whose groups must be durable before this one's of the same tag (see
    /// [`Self::after`]).
    first: Option<Arc<Staged>>,
}

impl Staged {
    pub fn new(store: Arc<dyn ItemStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            state: Mutex::new(State::default()),
            first: None,
        }
    }

    /// A unit whose every commit (also one made before a direct call: a query, a put) commits `first`
    /// before it: when `first` fails from a tag on, only this unit's groups before that tag are
    /// committed, so no group is ever durable before `first`'s groups of the same and earlier tags. (The
    /// webhook's main-store unit after its key-store unit: no lead is written before its claim.)
    /// [`Self::begin`] tags both.
    pub fn after(store: Arc<dyn ItemStore>, clock: Arc<dyn Clock>, first: Arc<Staged>) -> Self {
        Self {
            first: Some(first),
            ..Self::new(store, clock)
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Groups staged from now on carry `tag`.
    pub fn begin(&self, tag: usize) {
        if let Some(first) = &self.first {
            first.begin(tag);
        }
        self.state().tag = tag;
    }

    /// Reads `keys` from the store in one [`ItemStore::get_many`] (none already read ahead or written by
    /// this unit) and answers this unit's later `get`s of them from it, until the next commit. What a
    /// caller will read anyway, read at once: one call for a webhook batch's de-duplication keys instead
    /// of one per event. Answers which of `keys` hold a live item.
    ///
    /// # Errors
    /// The store's failure; nothing is kept then.
    pub async fn read_ahead(
        &self,
        keys: &[ItemKey],
    ) -> Result<std::collections::HashSet<ItemKey>, StoreError> {
        let wanted: Vec<ItemKey> = {
            let state = self.state();
            keys.iter()
                .filter(|k| !state.read.contains_key(*k) && !state.written.contains_key(*k))
                .cloned()
                .collect()
        };
        let found = if wanted.is_empty() {
            Vec::new()
        } else {
            self.store.get_many(&wanted).await?
        };
        let mut state = self.state();
        for key in wanted {
            state.read.entry(key).or_insert(None);
        }
        for item in found {
            state.read.insert(item.key().clone(), Some(item));
        }
        let now = self.clock.now().secs();
        Ok(keys
            .iter()
            .filter(|k| Self::known(&state, k, now).flatten().is_some())
            .cloned()
            .collect())
    }

    /// How many groups are staged and not yet committed.
    pub fn staged(&self) -> usize {
        self.state().groups.len()
    }

    /// The failure of a commit made on the caller's behalf (by a query or another call that needed the
    /// store to be current), if one happened since the last call.
    pub fn take_failure(&self) -> Option<CommitFailed> {
        self.state().failure.take()
    }

    /// Drops every staged group whose tag is `tag` or later, unapplied: what a unit of work does when
    /// the work from `tag` on must be redone (a unit it depends on failed from there). Reads see the
    /// groups that remain.
    pub fn discard_from(&self, tag: usize) {
        let mut state = self.state();
        state.groups.retain(|(t, _)| *t < tag);
        let mut written = HashMap::new();
        for (group, (_, ops)) in state.groups.iter().enumerate() {
            note_writes(&mut written, group, ops);
        }
        state.written = written;
    }

    /// Commits every staged group, in order, in as few durable commits as the store can (the unit
    /// this one is [`Self::after`] first).
    ///
    /// # Errors
    /// [`CommitFailed`]: the groups before its tag are durable (in both units), the rest are
    /// discarded.
    pub async fn commit(&self) -> Result<(), CommitFailed> {
        if let Some(first) = &self.first
            && let Err(failed) = first.commit_own().await
        {
            self.discard_from(failed.tag);
            self.commit_own().await?;
            return Err(failed);
        }
        self.commit_own().await
    }

    /// Commits this unit's own staged groups.
    async fn commit_own(&self) -> Result<(), CommitFailed> {
        let groups = {
            let mut state = self.state();
            state.written.clear();
            state.read.clear();
            std::mem::take(&mut state.groups)
        };
        if groups.is_empty() {
            return Ok(());
        }
        let tags: Vec<usize> = groups.iter().map(|(tag, _)| *tag).collect();
        let groups = groups.into_iter().map(|(_, ops)| ops).collect();
        self.store
            .transact_each(groups)
            .await
            .map_err(|GroupFailed { applied, error }| CommitFailed {
                // A backend never reports more groups applied than it was given; if one did, redoing
                // from the first tag is the safe side (a redone conditional write fails, not doubles).
                tag: tags
                    .get(applied)
                    .or(tags.first())
                    .copied()
                    .unwrap_or_default(),
                error,
            })
    }

    /// [`Self::commit`] before a call that reads or writes the store directly; a failure is kept for
    /// [`Self::take_failure`] and answered as the store's error.
    async fn commit_first(&self) -> Result<(), StoreError> {
        self.commit().await.map_err(|failed| {
            let retryable = failed.error.is_retryable();
            let answer = match failed.error {
                StoreError::TransactionConditionFailed { .. } => StoreError::TransactionConflict,
                _ => StoreError::Backend {
                    operation: "commit staged",
                    retryable,
                    source: "the staged transactions could not be committed".into(),
                },
            };
            self.state().failure = Some(failed);
            answer
        })
    }

    /// The staged item at `key`, if this unit wrote the key: `Some(None)` when it is deleted or expired.
    fn written<'s>(state: &'s State, key: &ItemKey, now_secs: i64) -> Option<Option<&'s Item>> {
        state.written.get(key).map(|slot| {
            slot.and_then(|(group, op)| match state.groups.get(group)?.1.get(op)? {
                WriteOp::Put { item, .. } => Some(item),
                WriteOp::Delete { .. } | WriteOp::Check { .. } => None,
            })
            .and_then(|item| live(Some(item), now_secs))
        })
    }

    /// What this unit answers at `key` without the store: its staged write, else what was read ahead
    /// (`Some(None)`: nothing live there); `None` when the store must be asked.
    fn known<'s>(state: &'s State, key: &ItemKey, now_secs: i64) -> Option<Option<&'s Item>> {
        Self::written(state, key, now_secs).or_else(|| {
            state
                .read
                .get(key)
                .map(|read| live(read.as_ref(), now_secs))
        })
    }
}

/// `item` if it has not expired by `now_secs`.
fn live(item: Option<&Item>, now_secs: i64) -> Option<&Item> {
    item.filter(|i| i.expires().is_none_or(|t| t.secs() > now_secs))
}

/// Records in `written` what the staged group number `group` leaves at each key it writes.
fn note_writes(
    written: &mut HashMap<ItemKey, Option<(usize, usize)>>,
    group: usize,
    ops: &[WriteOp],
) {
    for (index, op) in ops.iter().enumerate() {
        match op {
            WriteOp::Put { item, .. } => {
                written.insert(item.key().clone(), Some((group, index)));
            }
            WriteOp::Delete { key, .. } => {
                written.insert(key.clone(), None);
            }
            WriteOp::Check { .. } => {}
        }
    }
}

/// Whether `condition` holds for the live item `current`, as every backend judges it.
fn holds(condition: Condition, current: Option<&Item>) -> bool {
    match condition {
        Condition::Always => true,
        Condition::NotExists => current.is_none(),
        Condition::Exists => current.is_some(),
        Condition::VersionIs(v) => current.is_some_and(|i| i.version() == Some(v)),
    }
}

#[async_trait::async_trait]
impl ItemStore for Staged {
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        self.store.ensure_schema().await
    }

    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        let known = Self::known(&self.state(), key, self.clock.now().secs()).map(|i| i.cloned());
        match known {
            Some(item) => Ok(item),
            None => self.store.get(key).await,
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.commit_first().await?;
        self.store.put(item, condition).await
    }

    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.commit_first().await?;
        self.store.delete(key, condition).await
    }

    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.commit_first().await?;
        self.store.query(query).await
    }

    /// Stages `ops`; a condition on a key written by an earlier staged group is judged now.
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        checks::transaction(&ops)?;
        if ops.is_empty() {
            return Ok(());
        }
        let now = self.clock.now().secs();
        let mut state = self.state();
        for (index, op) in ops.iter().enumerate() {
            if let Some(current) = Self::written(&state, op.key(), now)
                && !holds(op.condition(), current)
            {
                return Err(StoreError::TransactionConditionFailed { index });
            }
        }
        let group = state.groups.len();
        note_writes(&mut state.written, group, &ops);
        let tag = state.tag;
        state.groups.push((tag, ops));
        Ok(())
    }

    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        self.commit_first().await?;
        self.store.delete_many(keys).await
    }

    async fn remove_expired(
        &self,
        from: Option<&super::Cursor>,
        limit: usize,
    ) -> Result<super::Removed, StoreError> {
        self.commit_first().await?;
        self.store.remove_expired(from, limit).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::clock::{ManualClock, Timestamp};
    use crate::store::Value;
    use crate::store::sqlite::SqliteStore;
    use crate::test_support::counting::CountingStore;
    use crate::test_support::{PROBE, PROBE_EXPIRING};

    fn item(pk: &str, label: &str, version: u64) -> Item {
        Item::new(&PROBE, ItemKey::new(pk, "s"))
            .plain("label", Value::S(label.to_owned()))
            .unwrap()
            .with_version(version)
    }

    /// The item at `(pk, "s")`, read through `store`.
    async fn read(store: &dyn ItemStore, pk: &str) -> Option<Item> {
        store.get(&ItemKey::new(pk, "s")).await.unwrap()
    }

    fn put(item: Item, condition: Condition) -> WriteOp {
        WriteOp::Put { item, condition }
    }

    struct Rig {
        staged: Staged,
        counting: Arc<CountingStore>,
        store: Arc<dyn ItemStore>,
        clock: Arc<ManualClock>,
        _dir: tempfile::TempDir,
    }

    async fn rig() -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_800_000_000_250)));
        let sqlite = SqliteStore::open(&dir.path().join("s.db"), clock.clone()).unwrap();
        sqlite.ensure_schema().await.unwrap();
        let store: Arc<dyn ItemStore> = Arc::new(sqlite);
        let counting = Arc::new(CountingStore::new(store.clone()));
        Rig {
            staged: Staged::new(counting.clone(), clock.clone()),
            counting,
            store,
            clock,
            _dir: dir,
        }
    }

    #[tokio::test]
    async fn staged_writes_are_read_back_but_reach_the_store_only_at_commit_in_one_call() {
        let r = rig().await;
        r.staged
            .transact(vec![put(item("a", "one", 1), Condition::NotExists)])
            .await
            .unwrap();
        r.staged
            .transact(vec![
                put(item("a", "two", 2), Condition::VersionIs(1)),
                put(item("b", "one", 1), Condition::NotExists),
            ])
            .await
            .unwrap();
        let a = read(&r.staged, "a").await.unwrap();
        assert_eq!(a.get_str("label"), Some("two"));
        assert!(read(r.store.as_ref(), "a").await.is_none());
        assert_eq!(r.staged.staged(), 2);

        r.staged.commit().await.unwrap();
        let calls = r.counting.calls();
        assert_eq!((calls.transact, calls.transact_each), (0, 1));
        let a = read(r.store.as_ref(), "a").await.unwrap();
        assert_eq!((a.get_str("label"), a.version()), (Some("two"), Some(2)));
        assert!(read(r.store.as_ref(), "b").await.is_some());
        assert_eq!(r.staged.staged(), 0);
    }

    #[tokio::test]
    async fn a_condition_on_a_staged_key_is_judged_at_once_against_the_staged_item() {
        let r = rig().await;
        r.staged
            .transact(vec![put(item("a", "one", 1), Condition::NotExists)])
            .await
            .unwrap();
        let stale = r
            .staged
            .transact(vec![
                put(item("c", "x", 1), Condition::Always),
                put(item("a", "two", 2), Condition::VersionIs(7)),
            ])
            .await;
        assert!(matches!(
            stale,
            Err(StoreError::TransactionConditionFailed { index: 1 })
        ));
        r.staged
            .transact(vec![WriteOp::Delete {
                key: ItemKey::new("a", "s"),
                condition: Condition::Exists,
            }])
            .await
            .unwrap();
        assert!(read(&r.staged, "a").await.is_none());
        let again = r
            .staged
            .transact(vec![WriteOp::Check {
                key: ItemKey::new("a", "s"),
                condition: Condition::Exists,
            }])
            .await;
        assert!(matches!(
            again,
            Err(StoreError::TransactionConditionFailed { index: 0 })
        ));
        r.staged.commit().await.unwrap();
        assert!(read(r.store.as_ref(), "a").await.is_none());
        assert!(read(r.store.as_ref(), "c").await.is_none());
    }

    #[tokio::test]
    async fn a_staged_item_past_its_ttl_is_absent() {
        let r = rig().await;
        let expiring = Item::new(&PROBE_EXPIRING, ItemKey::new("e", "s"))
            .expires_at(r.clock.now().plus_hours(1));
        r.staged
            .transact(vec![put(expiring, Condition::NotExists)])
            .await
            .unwrap();
        assert!(read(&r.staged, "e").await.is_some());
        r.clock
            .set(Timestamp::from_millis(r.clock.now().millis() + 3_600_000));
        assert!(read(&r.staged, "e").await.is_none());
    }

    #[tokio::test]
    async fn keys_read_ahead_are_answered_without_a_store_call_until_the_next_commit() {
        let r = rig().await;
        r.store
            .put(item("a", "stored", 1), Condition::Always)
            .await
            .unwrap();
        let expiring = Item::new(&PROBE_EXPIRING, ItemKey::new("e", "s"))
            .expires_at(r.clock.now().plus_hours(1));
        r.store.put(expiring, Condition::Always).await.unwrap();
        // "w" is written by the unit before the read-ahead: the staged write answers, not the store.
        r.staged
            .transact(vec![put(item("w", "staged", 1), Condition::NotExists)])
            .await
            .unwrap();
        let keys: Vec<ItemKey> = ["a", "b", "e", "w"]
            .iter()
            .map(|pk| ItemKey::new(*pk, "s"))
            .collect();
        let found = r.staged.read_ahead(&keys).await.unwrap();
        let mut found: Vec<&str> = found.iter().map(|k| k.pk.as_str()).collect();
        found.sort_unstable();
        assert_eq!(found, ["a", "e", "w"]);
        assert_eq!(r.counting.calls().get_many, 1);

        // Changed in the store after the read-ahead: the unit still answers what it read.
        r.store
            .put(item("b", "later", 1), Condition::Always)
            .await
            .unwrap();
        assert_eq!(
            read(&r.staged, "a").await.unwrap().get_str("label"),
            Some("stored")
        );
        assert!(read(&r.staged, "b").await.is_none());
        assert_eq!(
            read(&r.staged, "w").await.unwrap().get_str("label"),
            Some("staged")
        );
        // A key read ahead and then written by the unit: the staged write answers.
        r.staged
            .transact(vec![put(item("a", "mine", 2), Condition::VersionIs(1))])
            .await
            .unwrap();
        assert_eq!(
            read(&r.staged, "a").await.unwrap().get_str("label"),
            Some("mine")
        );
        // An item read ahead that expires meanwhile is absent.
        r.clock
            .set(Timestamp::from_millis(r.clock.now().millis() + 3_600_000));
        assert!(read(&r.staged, "e").await.is_none());
        assert_eq!(r.counting.calls().get, 0, "every answer came from the unit");

        // After a commit the store answers again.
        r.staged.commit().await.unwrap();
        assert_eq!(
            read(&r.staged, "b").await.unwrap().get_str("label"),
            Some("later")
        );
        assert_eq!(r.counting.calls().get, 1);
    }

    #[tokio::test]
    async fn a_commit_that_meets_a_concurrent_write_names_the_tag_to_redo_from() {
        let r = rig().await;
        for (tag, pk) in ["a", "b", "c"].iter().enumerate() {
            r.staged.begin(tag * 10);
            r.staged
                .transact(vec![put(item(pk, "staged", 1), Condition::NotExists)])
                .await
                .unwrap();
        }
        // Someone else writes "b" meanwhile.
        r.store
            .put(item("b", "theirs", 1), Condition::NotExists)
            .await
            .unwrap();
        let failed = r.staged.commit().await.unwrap_err();
        assert_eq!(failed.tag, 10);
        assert!(matches!(
            failed.error,
            StoreError::TransactionConditionFailed { index: 0 }
        ));
        let store = r.store.as_ref();
        let label = |pk| async move {
            read(store, pk)
                .await
                .and_then(|i| i.get_str("label").map(str::to_owned))
        };
        assert_eq!(label("a").await.as_deref(), Some("staged"));
        assert_eq!(label("b").await.as_deref(), Some("theirs"));
        assert_eq!(label("c").await, None);
        assert_eq!(r.staged.staged(), 0);
    }

    #[tokio::test]
    async fn a_query_commits_first_and_a_failed_commit_is_kept_for_the_caller() {
        let r = rig().await;
        r.staged.begin(3);
        r.staged
            .transact(vec![put(item("q", "staged", 1), Condition::NotExists)])
            .await
            .unwrap();
        let page = r.staged.query(&Query::partition("q", 10)).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert!(r.staged.take_failure().is_none());

        r.staged.begin(4);
        r.staged
            .transact(vec![put(item("r", "staged", 1), Condition::NotExists)])
            .await
            .unwrap();
        r.store
            .put(item("r", "theirs", 1), Condition::Always)
            .await
            .unwrap();
        let answer = r.staged.query(&Query::partition("r", 10)).await;
        assert!(matches!(answer, Err(StoreError::TransactionConflict)));
        assert_eq!(r.staged.take_failure().map(|f| f.tag), Some(4));
        assert!(r.staged.take_failure().is_none());
    }

    /// A unit `after` another: the first unit commits before it, also when a query makes it commit early;
    /// when the first fails from a tag on, the second commits only its groups before that tag.
    #[tokio::test]
    async fn a_unit_after_another_never_commits_a_group_before_the_first_units_group_of_its_tag() {
        let r = rig().await;
        let first = Arc::new(Staged::new(r.store.clone(), r.clock.clone()));
        let dir = tempfile::tempdir().unwrap();
        let other = SqliteStore::open(&dir.path().join("o.db"), r.clock.clone()).unwrap();
        other.ensure_schema().await.unwrap();
        let other: Arc<dyn ItemStore> = Arc::new(other);
        let second = Staged::after(other.clone(), r.clock.clone(), first.clone());
        for tag in 0..3 {
            second.begin(tag);
            let pk = format!("k{tag}");
            first
                .transact(vec![put(item(&pk, "claim", 1), Condition::NotExists)])
                .await
                .unwrap();
            second
                .transact(vec![put(item(&pk, "lead", 1), Condition::NotExists)])
                .await
                .unwrap();
        }
        // Someone else took the first unit's key of tag 1 meanwhile.
        r.store
            .put(item("k1", "theirs", 1), Condition::NotExists)
            .await
            .unwrap();
        let failed = second.commit().await.unwrap_err();
        assert_eq!(failed.tag, 1);
        assert!(read(other.as_ref(), "k0").await.is_some());
        assert!(read(other.as_ref(), "k1").await.is_none());
        assert!(read(other.as_ref(), "k2").await.is_none());
        assert!(read(r.store.as_ref(), "k2").await.is_none());
        assert_eq!((first.staged(), second.staged()), (0, 0));

        // A query through the second unit commits the first unit's groups before its own.
        second.begin(5);
        first
            .transact(vec![put(item("k5", "claim", 1), Condition::NotExists)])
            .await
            .unwrap();
        second
            .transact(vec![put(item("k5", "lead", 1), Condition::NotExists)])
            .await
            .unwrap();
        second.query(&Query::partition("k5", 10)).await.unwrap();
        assert!(read(r.store.as_ref(), "k5").await.is_some());
        assert!(read(other.as_ref(), "k5").await.is_some());
    }
}
