//! The per-page send pace, shared by every broadcast and runner of the page.
//!
//! A page sends at most `broadcast_rate` messages per second (default [`DEFAULT_RATE`], at most
//! [`MAX_RATE`]; Meta's Page Inbox stops coping above about 40/s, and the Send API allows 300/s). The
//! page's PACE item holds the first time not yet reserved; a sender reserves the slots of a whole batch
//! with one conditional write (the item's version), then sends each message no earlier than its slot.
//! So two broadcasts of one page, or two runners, never exceed the rate together, at one write per batch.

use std::time::Duration;

use crate::clock::Timestamp;
use crate::domain::PageId;
use crate::inventory::PACE;
use crate::store::{Condition, Item, ItemKey, ItemStore, StoreError, Value};

/// Messages per second of a page that set none: under Meta's ~40/s inbox threshold.
pub const DEFAULT_RATE: u32 = 20;
/// The highest rate a page may set (Meta's Send API allows 300 text calls per second per page).
pub const MAX_RATE: u32 = 250;

/// How far back a continuing sender may take unused slots.
pub const CATCH_UP_MS: i64 = 500;

pub fn pace_key(page: &PageId) -> ItemKey {
    ItemKey::new(format!("PACE#{page}"), "PACE")
}

/// The page's configured rate, from its item (`broadcast_rate`), within 1 ..= [`MAX_RATE`].
pub fn rate_of(page_item: &Item) -> u32 {
    page_item
        .get_i64("broadcast_rate")
        .and_then(|r| u32::try_from(r).ok())
        .map_or(DEFAULT_RATE, |r| r.clamp(1, MAX_RATE))
}

/// The time between two messages at `rate`, in microseconds.
pub fn interval_micros(rate: u32) -> i64 {
    1_000_000 / i64::from(rate.max(1))
}

/// When the page's next unreserved slot is, and the version to reserve against.
#[derive(Debug, Clone)]
pub struct PaceState {
    pub next_free_at: Timestamp,
    version: Option<u64>,
}

pub async fn read(store: &dyn ItemStore, page: &PageId) -> Result<PaceState, StoreError> {
    let item = store.get(&pace_key(page)).await?;
    Ok(PaceState {
        next_free_at: Timestamp::from_millis(
            item.as_ref()
                .and_then(|i| i.get_i64("next_free_at"))
                .unwrap_or(0),
        ),
        version: item.and_then(|i| i.version()),
    })
}

/// Reserves `n` slots at `rate` from `state` (read just before): returns when the first slot is.
/// `None` if another sender reserved meanwhile (read again).
pub async fn reserve(
    store: &dyn ItemStore,
    page: &PageId,
    state: &PaceState,
    now: Timestamp,
    n: usize,
    rate: u32,
) -> Result<Option<Timestamp>, StoreError> {
    // A sender that continues the page's sending takes the slots just passed (at most
    // `CATCH_UP_MS`), so the time between its batches (the last answers, the writes) does not lower
    // the page's rate; an idle page starts now.
    let start = if state.next_free_at >= now.plus_millis(-CATCH_UP_MS) {
        state.next_free_at
    } else {
        now
    };
    let span_micros = interval_micros(rate).saturating_mul(i64::try_from(n).unwrap_or(i64::MAX));
    // Rounded up to whole milliseconds, so reservations never overlap.
    let next = start.plus_millis((span_micros + 999) / 1000);
    let version = state.version.unwrap_or(0);
    let item = Item::new(&PACE, pace_key(page))
        .plain("next_free_at", Value::N(next.millis()))?
        .with_version(version + 1);
    let condition = match state.version {
        Some(v) => Condition::VersionIs(v),
        None => Condition::NotExists,
    };
    match store.put(item, condition).await {
        Ok(()) => Ok(Some(start)),
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Pushes the page's next free slot to at least `until` (Meta said to slow down).
pub async fn hold_until(
    store: &dyn ItemStore,
    page: &PageId,
    until: Timestamp,
) -> Result<(), StoreError> {
    for _ in 0..3 {
        let state = read(store, page).await?;
        if state.next_free_at >= until {
            return Ok(());
        }
        let item = Item::new(&PACE, pace_key(page))
            .plain("next_free_at", Value::N(until.millis()))?
            .with_version(state.version.unwrap_or(0) + 1);
        let condition = match state.version {
            Some(v) => Condition::VersionIs(v),
            None => Condition::NotExists,
        };
        match store.put(item, condition).await {
            Ok(()) => return Ok(()),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The time of slot `i` of a reservation starting at `start`.
pub fn slot(start: Timestamp, i: usize, rate: u32) -> Timestamp {
    let micros = interval_micros(rate).saturating_mul(i64::try_from(i).unwrap_or(i64::MAX));
    start.plus_millis(micros / 1000)
}

/// Waits; real time in production, the test's clock in tests.
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    async fn sleep(&self, duration: Duration);
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait::async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
