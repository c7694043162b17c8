//! Attempt limits that hold under concurrency: "at most N attempts per subject within a window".
//!
//! A subject (an email address, a network: always by blind index) owns a partition of N slot items,
//! `<scope>#<blind index>` / `SLOT#<n>`, each expiring at the end of its window. An attempt may go ahead
//! only once it has claimed a free slot with a conditional put (`NotExists`, which an expired slot passes);
//! two attempts racing for one slot cannot both win, so no more than N attempts per window get through
//! however many arrive at once, on every store backend. When every slot is live, the attempt is refused
//! until the earliest slot expires. The caller decides what counts: deleting a claimed slot gives the
//! attempt back (a successful sign-in), leaving it keeps the attempt counted until it expires (a failure).
//!
//! Under several limits (one attempt counted per address and per network) the slots are claimed one after
//! another, and an attempt refused by a later limit gives back what it claimed under the earlier ones, so a
//! refused attempt counts nowhere. Single-item conditional puts rather than one transaction: every backend
//! serialises those, the moto emulator included, whose transactions roll back by restoring a copy of the
//! table taken before them and so lose or revive the writes of concurrent ones.

use std::collections::BTreeSet;

use crate::clock::Timestamp;
use crate::crypto::BlindIndex;
use crate::inventory::ATTEMPT_SLOT;
use crate::store::{
    Condition, Index, Item, ItemKey, ItemStore, KeyRange, Order, Query, StoreError, Value, WriteOp,
};

/// The sort-key prefix of every slot.
const SLOT_PREFIX: &str = "SLOT#";
/// Puts a claim may spend beyond a limit's slots on slots that racing attempts gave back and took again,
/// so a claim always ends.
const EXTRA_TRIES: usize = 8;

/// A limit: at most `slots` counted attempts per subject within `window_secs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Names the kind of subject in the partition key, e.g. `SIGNIN#EMAIL`.
    pub scope: &'static str,
    pub slots: usize,
    pub window_secs: i64,
}

/// Failed password checks per email address (SPEC §4: 5 in 15 minutes). Sign-in and every other check of
/// an account's password (account erasure) claim slots of this one limit, so their failures count
/// together.
pub const SIGNIN_EMAIL_LIMIT: Limit = Limit {
    scope: "SIGNIN#EMAIL",
    slots: 5,
    window_secs: 15 * 60,
};

impl Limit {
    fn partition(&self, subject: &BlindIndex) -> String {
        format!("{}#{}", self.scope, subject.as_str())
    }

    fn slot_key(&self, subject: &BlindIndex, n: usize) -> ItemKey {
        ItemKey::new(self.partition(subject), format!("{SLOT_PREFIX}{n:02}"))
    }

    /// The writes that give back every slot of `subject` (a password reset proves the address, so the
    /// failures that locked it no longer count).
    pub fn clear_ops(&self, subject: &BlindIndex) -> Vec<WriteOp> {
        (0..self.slots)
            .map(|n| WriteOp::Delete {
                key: self.slot_key(subject, n),
                condition: Condition::Always,
            })
            .collect()
    }
}

/// What a claim came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The attempt may go ahead; these slots (one per subject) count it. Give it back with [`release_op`].
    Granted(Vec<ItemKey>),
    /// A limit is reached: no slot is held; the attempt may be made again after this many seconds.
    Refused { retry_after_secs: i64 },
}

/// One subject's slots as last read: which are free, and when the earliest live one expires.
#[derive(Debug)]
struct Slots {
    free: Vec<usize>,
    next: usize,
    earliest_expiry: Option<Timestamp>,
}

impl Slots {
    fn candidate(&self) -> Option<usize> {
        self.free.get(self.next).copied()
    }
}

async fn read_slots(
    store: &dyn ItemStore,
    limit: &Limit,
    subject: &BlindIndex,
) -> Result<Slots, StoreError> {
    let page = store
        .query(&Query {
            index: Index::Table,
            partition: limit.partition(subject),
            range: KeyRange::Prefix(SLOT_PREFIX.to_owned()),
            order: Order::Ascending,
            limit: limit.slots.max(1),
            cursor: None,
        })
        .await?;
    let live: BTreeSet<usize> = page
        .items
        .iter()
        .filter_map(|i| i.key().sk.strip_prefix(SLOT_PREFIX)?.parse().ok())
        .collect();
    Ok(Slots {
        free: (0..limit.slots).filter(|n| !live.contains(n)).collect(),
        next: 0,
        earliest_expiry: page.items.iter().filter_map(Item::expires).min(),
    })
}

/// Whole seconds until `expiry`, rounded up, at least 1.
fn seconds_until(expiry: Option<Timestamp>, now: Timestamp, limit: &Limit) -> i64 {
    let ms = expiry.map_or(limit.window_secs * 1000, |e| e.millis() - now.millis());
    ((ms + 999) / 1000).max(1)
}

fn slot_item(limit: &Limit, key: ItemKey, now: Timestamp) -> Result<Item, StoreError> {
    Ok(Item::new(&ATTEMPT_SLOT, key)
        .plain("claimed", Value::N(now.millis()))?
        .expires_at(now.plus_secs(limit.window_secs)))
}

/// Claims one slot under every `(limit, subject)`, in order, or holds none if any limit is reached.
///
/// Store calls: one query and one put per subject when nothing races; a slot taken by a racing attempt
/// costs one more put, a subject whose free slots all went to racers one more query, and a refusal by a
/// later limit one delete per slot claimed before it.
///
/// # Errors
/// The store's. A slot claimed before the error stays (the attempt counts, erring on the safe side).
pub async fn claim(
    store: &dyn ItemStore,
    now: Timestamp,
    subjects: &[(&Limit, &BlindIndex)],
) -> Result<Claim, StoreError> {
    let mut claimed = Vec::with_capacity(subjects.len());
    for (limit, subject) in subjects {
        match claim_one(store, now, limit, subject).await? {
            Ok(key) => claimed.push(key),
            Err(retry_after_secs) => {
                for key in &claimed {
                    store.delete(key, Condition::Always).await?;
                }
                return Ok(Claim::Refused { retry_after_secs });
            }
        }
    }
    Ok(Claim::Granted(claimed))
}

/// One subject's slot, or the seconds until one may be free.
async fn claim_one(
    store: &dyn ItemStore,
    now: Timestamp,
    limit: &Limit,
    subject: &BlindIndex,
) -> Result<Result<ItemKey, i64>, StoreError> {
    let mut slots = read_slots(store, limit, subject).await?;
    for _ in 0..limit.slots + EXTRA_TRIES {
        let Some(n) = slots.candidate() else {
            return Ok(Err(seconds_until(slots.earliest_expiry, now, limit)));
        };
        let key = limit.slot_key(subject, n);
        match store
            .put(slot_item(limit, key.clone(), now)?, Condition::NotExists)
            .await
        {
            Ok(()) => return Ok(Ok(key)),
            Err(StoreError::ConditionFailed) => {
                // A racing attempt took that slot: try the next free one, and once none is left read the
                // slots again (one may have been given back, or the limit is now reached).
                slots.next += 1;
                if slots.candidate().is_none() {
                    slots = read_slots(store, limit, subject).await?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    // Still racing after every try: refuse rather than let an uncounted attempt through.
    Ok(Err(1))
}

/// The write that marks a slot claimed at `claimed_at` under `limit` as a failed attempt (it keeps its
/// expiry). The sign-in makes it for a wrong password whether or not an account holds the address, so
/// both cost the same store work.
///
/// # Errors
/// Only an inventory refusal, which would be a bug.
pub fn failed_op(
    limit: &Limit,
    key: ItemKey,
    claimed_at: Timestamp,
) -> Result<WriteOp, StoreError> {
    Ok(WriteOp::Put {
        item: slot_item(limit, key, claimed_at)?.plain("failed", Value::Bool(true))?,
        condition: Condition::Always,
    })
}

/// The write that gives a claimed slot back (the attempt no longer counts).
pub fn release_op(key: ItemKey) -> WriteOp {
    WriteOp::Delete {
        key,
        condition: Condition::Always,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::{Clock as _, ManualClock};
    use crate::store::sqlite::SqliteStore;

    const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);
    const TWO: Limit = Limit {
        scope: "TEST#TWO",
        slots: 2,
        window_secs: 60,
    };
    const ONE: Limit = Limit {
        scope: "TEST#ONE",
        slots: 1,
        window_secs: 60,
    };

    async fn store() -> (Arc<dyn ItemStore>, Arc<ManualClock>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at(START));
        let store: Arc<dyn ItemStore> = Arc::new(
            SqliteStore::open(&dir.path().join("limits.db"), clock.clone()).expect("store opens"),
        );
        store.ensure_schema().await.expect("schema");
        (store, clock, dir)
    }

    #[tokio::test]
    async fn a_full_subject_waits_until_its_earliest_slot_expires_then_gets_it_back() {
        let (store, clock, _dir) = store().await;
        let who = BlindIndex::from_stored("subject");
        let subjects = [(&TWO, &who)];

        assert!(matches!(
            claim(store.as_ref(), clock.now(), &subjects).await.unwrap(),
            Claim::Granted(_)
        ));
        clock.advance_millis(10_500);
        assert!(matches!(
            claim(store.as_ref(), clock.now(), &subjects).await.unwrap(),
            Claim::Granted(_)
        ));
        // The first slot expires 60 s after START: 49.5 s from now, rounded up.
        assert_eq!(
            claim(store.as_ref(), clock.now(), &subjects).await.unwrap(),
            Claim::Refused {
                retry_after_secs: 50
            }
        );
        clock.advance_millis(49_500);
        assert!(matches!(
            claim(store.as_ref(), clock.now(), &subjects).await.unwrap(),
            Claim::Granted(_)
        ));
    }

    #[tokio::test]
    async fn an_attempt_refused_by_one_limit_holds_no_slot_of_another_and_a_released_slot_is_free()
    {
        let (store, clock, _dir) = store().await;
        let (a, b) = (BlindIndex::from_stored("a"), BlindIndex::from_stored("b"));
        let both = [(&TWO, &a), (&ONE, &b)];

        let Claim::Granted(first) = claim(store.as_ref(), clock.now(), &both).await.unwrap() else {
            panic!("the first attempt gets a slot under both limits");
        };
        assert_eq!(first.len(), 2);
        assert!(matches!(
            claim(store.as_ref(), clock.now(), &both).await.unwrap(),
            Claim::Refused { .. }
        ));
        let a_slots = store
            .query(&Query::partition(TWO.partition(&a), 10))
            .await
            .unwrap();
        assert_eq!(a_slots.items.len(), 1, "the refused attempt took none");

        store
            .transact(first.into_iter().map(release_op).collect())
            .await
            .unwrap();
        assert!(matches!(
            claim(store.as_ref(), clock.now(), &both).await.unwrap(),
            Claim::Granted(_)
        ));
    }
}
