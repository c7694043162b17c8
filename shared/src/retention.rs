//! The retention sweep (SPEC §3 "Retention", §4 erase): removes what outlived its declared retention.
//!
//! One job of kind [`RETENTION_SWEEP_JOB`] with the fixed id [`SWEEP_JOB_ID`] runs on the shared job
//! mechanism ([`crate::jobs`]: lease, checkpointed cursor, stop before the deadline, resume), so a run
//! cut short by its deadline leaves a checkpoint and the next run continues from it; two runners never
//! sweep at once. A pass has two phases:
//! 1. expired items: [`ItemStore::remove_expired`] in bounded calls over the whole main store, then the
//!    key store (SQLite: the
//!    oldest expired rows through the `ttl` index; DynamoDB: a Scan page, then a deletion of each item
//!    still expired), so nothing expired stays in the SQLite file and DynamoDB need not wait for its own
//!    TTL deletion (up to about two days);
//! 2. leads past their retention ([`crate::inventory::LEAD`]: not subscribed, and nothing happened to
//!    them for [`LEAD_INACTIVE_SECS`]): every account (`ACCOUNTS` index) → its pages → the page's
//!    unsubscribed, unreachable and pending leads created before the cutoff, each erased with
//!    [`erase_lead`].
//!
//! A finished pass puts the job back, due [`PASS_INTERVAL_HOURS`] after the pass began: whatever calls
//! [`sweep`] (EventBridge daily, the local ticker) may call it more often; a pass runs when one is due.
//! Every other item type either carries a TTL (phase 1) or is kept while its owner exists and erased
//! with it (by the page erasure of [`crate::leads::erase`]; the account erasure is not built yet). The
//! job and its logs hold ids and counts only.

use std::sync::{Arc, Mutex, PoisonError};

use crate::app::App;
use crate::clock::{Clock, Timestamp};
use crate::crypto::OneWayHash;
use crate::domain::{AccountId, LeadId, PageId};
use crate::inventory::LEAD_INACTIVE_SECS;
use crate::jobs::{Job, JobError, JobHandler, Jobs, Step};
use crate::leads::consent::history_partition;
use crate::leads::record::{LeadStatus, status_partition};
use crate::leads::{lead_key, unsubscribe_key};
use crate::store::{
    Condition, Cursor, Index, Item, ItemKey, ItemStore, KeyRange, Order, Query, StoreError,
    WriteOp, query_all,
};

/// The job kind.
pub const RETENTION_SWEEP_JOB: &str = "retention_sweep";
/// The one sweep job's id.
pub const SWEEP_JOB_ID: &str = "retention-sweep";
/// A pass is due this long after the one before began: less than a day, so a daily trigger whose time
/// drifts by minutes always finds it due.
pub const PASS_INTERVAL_HOURS: i64 = 20;
/// Items one expiry step looks at (DynamoDB) or deletes (SQLite).
pub const EXPIRED_PER_STEP: usize = 500;
/// Leads read per status query.
const LEADS_PER_QUERY: usize = 25;
/// Store reads one step of the lead walk may make before it checkpoints.
const READS_PER_STEP: usize = 20;
/// The lease: longer than any step.
const LEASE_SECS: i64 = 900;
/// The statuses whose leads expire; a subscribed lead stays, a merged one goes with its lead.
const EXPIRING_STATUSES: [LeadStatus; 3] = [
    LeadStatus::Unsubscribed,
    LeadStatus::Unreachable,
    LeadStatus::Pending,
];

/// What [`sweep`] removed in this call. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepReport {
    /// Items past their TTL.
    pub expired_items: u64,
    /// Leads past their retention, each with what hangs off it (below; its delivery records too,
    /// uncounted).
    pub leads: u64,
    pub consent_records: u64,
    pub unsubscribe_links: u64,
    /// Passes this call finished.
    pub passes_finished: u64,
    /// Whether the deadline came with a pass unfinished (the next call continues it).
    pub paused: bool,
}

impl SweepReport {
    fn add(&mut self, other: &Self) {
        self.expired_items += other.expired_items;
        self.leads += other.leads;
        self.consent_records += other.consent_records;
        self.unsubscribe_links += other.unsubscribe_links;
        self.passes_finished += other.passes_finished;
    }
}

/// Why a sweep failed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("the store failed during the retention sweep")]
    Store(#[from] StoreError),
}

/// Runs the retention sweep until it is done or `deadline` is near: queues the sweep job if it is not
/// queued, then runs it if it is due. Call it daily (or more often) and once at start-up.
///
/// # Errors
/// The store's; a step that fails is retried by the job mechanism on a later call.
#[tracing::instrument(skip_all)]
pub async fn sweep(app: &App, deadline: Timestamp) -> Result<SweepReport, RetentionError> {
    let jobs = Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        LEASE_SECS,
    );
    jobs.ensure_queued(SWEEP_JOB_ID, RETENTION_SWEEP_JOB, "{}", app.clock.now())
        .await?;
    let handler = RetentionSweep::new(app.store.clone(), app.key_store.clone(), app.clock.clone());
    let runner = format!("retention-{}", app.ids.new_id());
    let run = jobs.run_due(&runner, deadline, &[&handler]).await?;
    let mut report = handler.report();
    report.paused = run.paused > 0 && report.passes_finished == 0;
    tracing::info!(
        expired_items = report.expired_items,
        leads = report.leads,
        consent_records = report.consent_records,
        unsubscribe_links = report.unsubscribe_links,
        passes_finished = report.passes_finished,
        paused = report.paused,
        failed_steps = run.failed_steps,
        "retention sweep ran"
    );
    Ok(report)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Expired,
    /// The same in the key store (sign-in slots, mail throttles and the like expire there).
    ExpiredKeys,
    Leads,
}

/// Where the lead walk is: each level's store cursor points after the last entry fully done.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Walk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accounts_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pages_after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<String>,
    /// Index into [`EXPIRING_STATUSES`].
    #[serde(default)]
    status: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leads_after: Option<String>,
}

/// The job cursor (JSON): ids, store cursors and counts only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    phase: Phase,
    /// When this pass began (ms); set by its first step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<i64>,
    /// The store cursor of the expiry phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default)]
    walk: Walk,
    /// What this pass removed so far.
    #[serde(default)]
    removed: SweepReport,
}

impl Progress {
    fn start() -> Self {
        Self {
            phase: Phase::Expired,
            started_at: None,
            after: None,
            walk: Walk::default(),
            removed: SweepReport::default(),
        }
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn malformed() -> JobError {
    JobError::Permanent("the job cursor is malformed")
}

fn cursor(raw: Option<&str>) -> Result<Option<Cursor>, JobError> {
    raw.map(Cursor::parse).transpose().map_err(|_| malformed())
}

fn query_error(e: StoreError) -> JobError {
    match e {
        StoreError::InvalidCursor => malformed(),
        other => other.into(),
    }
}

/// Runs [`RETENTION_SWEEP_JOB`]; adds up what the steps of one [`sweep`] call removed.
#[derive(Debug)]
pub struct RetentionSweep {
    store: Arc<dyn ItemStore>,
    /// The key store ([`crate::app::App::key_store`]): its expired items go too.
    key_store: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
    removed: Mutex<SweepReport>,
}

impl RetentionSweep {
    pub fn new(
        store: Arc<dyn ItemStore>,
        key_store: Arc<dyn ItemStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            key_store,
            clock,
            removed: Mutex::new(SweepReport::default()),
        }
    }

    /// What the steps run so far removed.
    pub fn report(&self) -> SweepReport {
        *self.removed.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, step: &SweepReport) {
        self.removed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(step);
    }

    /// One bounded piece of an expiry phase in `store`; whether the phase is done.
    async fn expired_step(
        &self,
        store: &dyn ItemStore,
        progress: &mut Progress,
    ) -> Result<bool, JobError> {
        let from = cursor(progress.after.as_deref())?;
        let done = store
            .remove_expired(from.as_ref(), EXPIRED_PER_STEP)
            .await
            .map_err(query_error)?;
        let step = SweepReport {
            expired_items: done.removed as u64,
            ..SweepReport::default()
        };
        self.count(&step);
        progress.removed.add(&step);
        progress.after = done.next.map(|c| c.as_str().to_owned());
        Ok(progress.after.is_none())
    }

    /// Up to [`READS_PER_STEP`] reads of the lead walk; whether the walk is done.
    async fn leads_step(&self, progress: &mut Progress) -> Result<bool, JobError> {
        let cutoff = self.clock.now().plus_secs(-LEAD_INACTIVE_SECS);
        let walk = &mut progress.walk;
        for _ in 0..READS_PER_STEP {
            if let Some(page) = walk.page.clone() {
                let page = PageId::parse(&page).map_err(|_| malformed())?;
                let Some(status) = EXPIRING_STATUSES.get(walk.status).copied() else {
                    walk.page = None;
                    continue;
                };
                let found = self
                    .store
                    .query(&Query {
                        index: Index::Gsi1,
                        partition: status_partition(&page, status),
                        // Created after the cutoff: active since then by definition.
                        range: KeyRange::AtMost(format!("{}~", cutoff.sort_key())),
                        order: Order::Ascending,
                        limit: LEADS_PER_QUERY,
                        cursor: cursor(walk.leads_after.as_deref())?,
                    })
                    .await
                    .map_err(query_error)?;
                let mut step = SweepReport::default();
                for item in &found.items {
                    if self.inactive_since(&page, item, cutoff).await? {
                        let erased = erase_lead(self.store.as_ref(), &page, item).await?;
                        if erased.leads > 0 {
                            // The leads' key-store items last, after the main store's.
                            let linked = item
                                .get_str("linked_from")
                                .and_then(|l| LeadId::parse(l).ok());
                            for lead in [lead_of(item), linked].into_iter().flatten() {
                                crate::leads::lookup::erase_keys(
                                    self.key_store.as_ref(),
                                    &page,
                                    &lead,
                                )
                                .await?;
                            }
                        }
                        step.add(&erased);
                    }
                }
                self.count(&step);
                progress.removed.add(&step);
                match found.next {
                    Some(next) => walk.leads_after = Some(next.as_str().to_owned()),
                    None => {
                        walk.leads_after = None;
                        walk.status += 1;
                    }
                }
                if step.leads > 0 {
                    // Erasures write; checkpoint after them.
                    return Ok(false);
                }
            } else if let Some(account) = walk.account.clone() {
                let account = AccountId::parse(&account).map_err(|_| malformed())?;
                let found = self
                    .store
                    .query(&Query {
                        index: Index::Gsi1,
                        partition: format!("ACCOUNT#{account}#PAGES"),
                        range: KeyRange::All,
                        order: Order::Ascending,
                        limit: 1,
                        cursor: cursor(walk.pages_after.as_deref())?,
                    })
                    .await
                    .map_err(query_error)?;
                match found.items.first() {
                    Some(item) => {
                        walk.pages_after =
                            Some(Cursor::after(item, Index::Gsi1).as_str().to_owned());
                        walk.page = item
                            .key()
                            .pk
                            .strip_prefix("PAGE#")
                            .filter(|p| PageId::parse(p).is_ok())
                            .map(str::to_owned);
                        walk.status = 0;
                        walk.leads_after = None;
                    }
                    None => {
                        walk.account = None;
                        walk.pages_after = None;
                    }
                }
            } else {
                let found = self
                    .store
                    .query(&Query {
                        index: Index::Gsi1,
                        partition: crate::accounts::ALL_ACCOUNTS_PARTITION.to_owned(),
                        range: KeyRange::All,
                        order: Order::Ascending,
                        limit: 1,
                        cursor: cursor(walk.accounts_after.as_deref())?,
                    })
                    .await
                    .map_err(query_error)?;
                let Some(item) = found.items.first() else {
                    return Ok(true);
                };
                walk.accounts_after = Some(Cursor::after(item, Index::Gsi1).as_str().to_owned());
                walk.account = item
                    .key()
                    .pk
                    .strip_prefix("ACCOUNT#")
                    .filter(|a| AccountId::parse(a).is_ok())
                    .map(str::to_owned);
                walk.pages_after = None;
            }
        }
        Ok(false)
    }

    /// Whether nothing has happened to the lead since `cutoff`: it was created, the person last wrote
    /// and its last consent record was received before it.
    async fn inactive_since(
        &self,
        page: &PageId,
        item: &Item,
        cutoff: Timestamp,
    ) -> Result<bool, JobError> {
        let before = |ms: Option<i64>| ms.unwrap_or(0) < cutoff.millis();
        if !before(item.get_i64("created")) || !before(item.get_i64("last_message_at")) {
            return Ok(false);
        }
        let Some(lead) = lead_of(item) else {
            return Ok(true);
        };
        let last = self
            .store
            .query(&Query {
                order: Order::Descending,
                ..Query::partition(history_partition(page, &lead), 1)
            })
            .await?;
        Ok(before(
            last.items.first().and_then(|r| r.get_i64("received_at")),
        ))
    }
}

fn lead_of(item: &Item) -> Option<LeadId> {
    LeadId::parse(item.key().sk.strip_prefix("LEAD#")?).ok()
}

/// Erases one lead with everything that hangs off it: its consent chain, its unsubscribe link, its
/// delivery records and a checkbox-plugin lead merged into it (with that one's chain and link). The
/// lead's deletion is conditional on the version read, in the last transaction, so a lead the person
/// wrote to meanwhile stays (with the chain that goes with it, unless it is longer than one
/// transaction holds: the older records go first). Its replies need nothing: they expire after 7 days
/// and the expiry phase removes them.
///
/// Single-lead erasure (`DELETE /api/pages/{page_id}/leads/{lead_id}`, being built separately) can take
/// this function's place: it is the one call the sweep makes.
///
/// # Errors
/// The store's.
pub async fn erase_lead(
    store: &dyn ItemStore,
    page: &PageId,
    lead_item: &Item,
) -> Result<SweepReport, StoreError> {
    let mut erased = SweepReport::default();
    let mut owned: Vec<ItemKey> = Vec::new();
    let mut leads = vec![lead_item.clone()];
    if let Some(linked) = lead_item
        .get_str("linked_from")
        .and_then(|l| LeadId::parse(l).ok())
        && let Some(merged) = store.get(&lead_key(page, &linked)).await?
    {
        leads.push(merged);
    }
    for item in &leads {
        let Some(lead) = lead_of(item) else {
            continue;
        };
        let chain = query_all(store, Query::partition(history_partition(page, &lead), 100)).await?;
        erased.consent_records += chain.len() as u64;
        owned.extend(chain.iter().map(|r| r.key().clone()));
        if let Some(hash) = item.get_str("unsubscribe_hash") {
            let link = unsubscribe_key(&OneWayHash::from_stored(hash));
            let points_back = store.get(&link).await?.is_some_and(|l| {
                l.get_str("page_id") == Some(page.as_str())
                    && l.get_str("lead_id") == Some(lead.as_str())
            });
            if points_back {
                erased.unsubscribe_links += 1;
                owned.push(link);
            }
        }
    }
    if let Some(lead) = lead_of(lead_item) {
        let deliveries = crate::broadcast::lead_delivery_keys(store, page, &lead).await?;
        // One key per broadcast of the page, whether or not a record exists (they expire 30 days
        // after they are written, so for a lead inactive a year the expiry phase has removed them):
        // not counted.
        store.delete_many(&deliveries).await?;
    }
    // The last transaction holds the lead's conditional deletion; what does not fit goes before it.
    let mut ops: Vec<WriteOp> = leads
        .iter()
        .map(|l| WriteOp::Delete {
            key: l.key().clone(),
            condition: l.version().map_or(Condition::Exists, Condition::VersionIs),
        })
        .collect();
    let room = crate::store::MAX_TRANSACTION_OPS - ops.len();
    let split = owned.len().saturating_sub(room);
    store.delete_many(&owned[..split]).await?;
    ops.extend(owned[split..].iter().map(|key| WriteOp::Delete {
        key: key.clone(),
        condition: Condition::Always,
    }));
    match store.transact(ops).await {
        Ok(()) => {
            erased.leads = leads.len() as u64;
            Ok(erased)
        }
        // The person wrote meanwhile: the lead is in use again.
        Err(StoreError::TransactionConditionFailed { .. }) => Ok(SweepReport::default()),
        Err(e) => Err(e),
    }
}

#[async_trait::async_trait]
impl JobHandler for RetentionSweep {
    fn kind(&self) -> &'static str {
        RETENTION_SWEEP_JOB
    }

    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
        let mut progress = match cursor {
            None => Progress::start(),
            Some(raw) => serde_json::from_str(raw).map_err(|_| malformed())?,
        };
        let now = self.clock.now();
        let started = *progress.started_at.get_or_insert(now.millis());
        let phase_done = match progress.phase {
            Phase::Expired => {
                self.expired_step(self.store.as_ref(), &mut progress)
                    .await?
            }
            Phase::ExpiredKeys => {
                self.expired_step(self.key_store.as_ref(), &mut progress)
                    .await?
            }
            Phase::Leads => self.leads_step(&mut progress).await?,
        };
        match (progress.phase, phase_done) {
            (_, false) => Ok(Step::Continue(progress.encode())),
            (Phase::Expired, true) => {
                progress.phase = Phase::ExpiredKeys;
                progress.after = None;
                Ok(Step::Continue(progress.encode()))
            }
            (Phase::ExpiredKeys, true) => {
                progress.phase = Phase::Leads;
                progress.after = None;
                Ok(Step::Continue(progress.encode()))
            }
            (Phase::Leads, true) => {
                let removed = progress.removed;
                tracing::info!(
                    job = %job.id,
                    expired_items = removed.expired_items,
                    leads = removed.leads,
                    consent_records = removed.consent_records,
                    unsubscribe_links = removed.unsubscribe_links,
                    "retention sweep pass finished"
                );
                self.count(&SweepReport {
                    passes_finished: 1,
                    ..SweepReport::default()
                });
                let next = Timestamp::from_millis(started).plus_hours(PASS_INTERVAL_HOURS);
                Ok(Step::ResumeAt(Progress::start().encode(), next))
            }
        }
    }
}
