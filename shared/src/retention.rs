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
//! 2. the registrations key ([`REGISTRATIONS_KEY_OWNER`]: pending registrations, the mails with no
//!    account to seal under): a new version once the current one is a day old
//!    ([`REGISTRATION_KEY_ROTATE_HOURS`]), and every version superseded more than
//!    [`REGISTRATION_KEY_RETIRE_DAYS`] ago destroyed — everything it sealed has expired by then, so a
//!    restored copy of those items opens no more than the live store does;
//! 3. leads past their retention ([`crate::inventory::LEAD`]: not subscribed, and nothing happened to
//!    them for [`LEAD_INACTIVE_SECS`]): every account (`ACCOUNTS` index) → its pages → the page's
//!    unsubscribed, unreachable and pending leads created before the cutoff, each handed to the
//!    single-lead erasure ([`crate::leads::erase_lead`]): one transaction, conditional on the lead's
//!    version read, freezes the lead and queues its erasure job (origin `retention`), which the erase
//!    function's runner carries out like any other (replies sent or waiting, delivery records, the chain
//!    and link, a merged checkbox-plugin lead), leaving a receipt of counts.
//!
//! A finished pass puts the job back, due [`PASS_INTERVAL_HOURS`] after the pass began: whatever calls
//! [`sweep`] (EventBridge daily, the local ticker) may call it more often; a pass runs when one is due.
//! Every other item type either carries a TTL (phase 1) or is kept while its owner exists and erased
//! with it (by the page erasure of [`crate::leads::erase`] or the account erasure of
//! [`crate::erasure::account`]). The job and its logs hold ids and counts only.

use std::sync::{Arc, Mutex, PoisonError};

use crate::accounts::REGISTRATIONS_KEY_OWNER;
use crate::app::App;
use crate::clock::{Clock, Timestamp};
use crate::crypto::{CryptoError, KeyManager};
use crate::domain::{AccountId, LeadId, PageId};
use crate::inventory::LEAD_INACTIVE_SECS;
use crate::jobs::{Job, JobError, JobHandler, Jobs, Step};
use crate::leads::consent::history_partition;
use crate::leads::erase_lead::{self, Origin};
use crate::leads::record::{Lead, LeadStatus, status_partition};
use crate::store::{Cursor, Index, Item, ItemStore, KeyRange, Order, Query, StoreError};

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
/// The registrations key gets a new version once its current one is this old.
pub const REGISTRATION_KEY_ROTATE_HOURS: i64 = 24;
/// A registrations-key version is destroyed once its successor is this old: longer than anything sealed
/// under it lives (the outbox's [`crate::outbox::RETENTION_DAYS`]; a pending registration, 24 h), plus a
/// day for a process that still seals with a version it cached before the rotation.
pub const REGISTRATION_KEY_RETIRE_DAYS: i64 = crate::outbox::RETENTION_DAYS + 1;
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
    /// Leads past their retention whose erasure was queued (each erasure's receipt counts what went).
    pub leads: u64,
    /// Passes this call finished.
    pub passes_finished: u64,
    /// Whether the deadline came with a pass unfinished (the next call continues it).
    pub paused: bool,
}

impl SweepReport {
    fn add(&mut self, other: &Self) {
        self.expired_items += other.expired_items;
        self.leads += other.leads;
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
    let handler = RetentionSweep::new(
        app.store.clone(),
        app.key_store.clone(),
        app.clock.clone(),
        jobs.clone(),
        app.keys.clone(),
    );
    let runner = format!("retention-{}", app.ids.new_id());
    let run = jobs.run_due(&runner, deadline, &[&handler]).await?;
    let mut report = handler.report();
    report.paused = run.paused > 0 && report.passes_finished == 0;
    tracing::info!(
        expired_items = report.expired_items,
        leads = report.leads,
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
    /// The registrations key's daily version and the retirement of old ones.
    RegistrationKey,
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
    /// Where the leads' erasure jobs are queued.
    jobs: Jobs,
    /// Rotates and retires the registrations key.
    keys: Arc<KeyManager>,
    removed: Mutex<SweepReport>,
}

impl RetentionSweep {
    pub fn new(
        store: Arc<dyn ItemStore>,
        key_store: Arc<dyn ItemStore>,
        clock: Arc<dyn Clock>,
        jobs: Jobs,
        keys: Arc<KeyManager>,
    ) -> Self {
        Self {
            store,
            key_store,
            clock,
            jobs,
            keys,
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

    /// Rotates the registrations key if its current version is a day old, and destroys the versions
    /// superseded more than [`REGISTRATION_KEY_RETIRE_DAYS`] ago. Nothing while no registration made the
    /// key. Returns how many versions went.
    async fn registration_key_step(&self) -> Result<u64, JobError> {
        let retry = |e: CryptoError| JobError::Retry(Box::new(e));
        let versions = self
            .keys
            .versions(REGISTRATIONS_KEY_OWNER)
            .await
            .map_err(retry)?;
        let Some(&(_, newest_created)) = versions.last() else {
            return Ok(0);
        };
        let now = self.clock.now();
        if newest_created <= now.plus_hours(-REGISTRATION_KEY_ROTATE_HOURS) {
            self.keys
                .rotate(REGISTRATIONS_KEY_OWNER)
                .await
                .map_err(retry)?;
        }
        let cutoff = now.plus_days(-REGISTRATION_KEY_RETIRE_DAYS);
        // A version stopped sealing when the next one was made.
        let retired: Vec<u32> = versions
            .windows(2)
            .filter(|pair| pair[1].1 <= cutoff)
            .map(|pair| pair[0].0)
            .collect();
        if retired.is_empty() {
            return Ok(0);
        }
        let n = self
            .keys
            .retire_versions(REGISTRATIONS_KEY_OWNER, &retired)
            .await
            .map_err(retry)?;
        Ok(n as u64)
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
                        step.leads += self.queue_erasure(&page, item).await?;
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
                    // Queued erasures are writes; checkpoint after them.
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

    /// Queues the erasure of the lead `item` ([`erase_lead::request_ops`]: the job, and the lead frozen
    /// and out of its status index), conditional on the version read, so a lead the person wrote to
    /// meanwhile stays and is looked at again next pass. Returns 1 if queued.
    async fn queue_erasure(&self, page: &PageId, item: &Item) -> Result<u64, JobError> {
        let Some(lead) = Lead::from_item(page, item.clone()) else {
            return Ok(0);
        };
        if erase_lead::requested_job(&lead).is_some() {
            return Ok(0);
        }
        let (_, ops) =
            erase_lead::request_ops(&self.jobs, &lead, Origin::Retention, self.clock.now())?;
        match self.store.transact(ops).await {
            Ok(()) => Ok(1),
            Err(StoreError::TransactionConditionFailed { .. }) => Ok(0),
            Err(e) => Err(e.into()),
        }
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
            Phase::RegistrationKey => {
                let retired = self.registration_key_step().await?;
                tracing::info!(job = %job.id, retired, "registrations key looked after");
                true
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
                progress.phase = Phase::RegistrationKey;
                progress.after = None;
                Ok(Step::Continue(progress.encode()))
            }
            (Phase::RegistrationKey, true) => {
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
