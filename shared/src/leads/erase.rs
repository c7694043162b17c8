//! Erasure of a disconnected page's leads (SPEC §4: `DELETE /api/pages/{page_id}` disconnects the page
//! "and erase\[s\] its leads"; SPEC §3 "Erasure"). The account function removes the page item and queues
//! this job in ONE transaction; the erase function's runner runs it ([`crate::jobs`]: lease, checkpointed cursor,
//! deadline, resume). The job holds ids and counts only.
//!
//! What hangs off a page or a lead (the item types of [`crate::inventory`]) and what becomes of each:
//! - `lead` (`PAGE#<page>` / `LEAD#<lead>`, with its status index entry): erased, every lead of the page
//!   (merged checkbox-plugin leads too: they sit in the same partition). A lead goes LAST, after
//!   everything found through it, so a step cut short leaves it in place and the next step finds it again.
//! - `consent_record` (`CONSENT#<page>#<lead>`): erased, the lead's whole chain.
//! - `unsubscribe_link` (`UNSUB#<token hash>`): erased, found through the lead's `unsubscribe_hash` (the
//!   webhook deletes a lead's previous link whenever it makes a new one, so the lead names its only link).
//! - `reply` still waiting to be sent (in the index partition `REPLY#DUE`, naming its `page_id`): erased,
//!   so it is never sent. KEPT: a reply already sent or failed has left that index and no key or index
//!   leads to it from the page or the lead; it keeps its sealed recipient and text until its 7-day TTL
//!   (and notify sends nothing for a page or lead that is gone).
//! - `page`: removed by the disconnect itself, in the transaction that queues this job.
//! - KEPT: `webhook_event` de-duplication keys: a SHA-256 of the page id and Meta's message id, no
//!   personal data, expiring by TTL 48 h after the event. Keeping them means an event Meta redelivers
//!   cannot recreate what was erased.
//! - KEPT: `outbox` notices naming the page (`page_sending_stopped`): they are the account's, hold no lead
//!   data, and expire after 30 days.
//! - `job`: this job; when it finishes it stays one year as the erasure's receipt ([`Receipt`]: counts
//!   and times, no personal data).
//! - Not the page's: `data_key`, `account`, `email_claim`, `session`, `security_event`, `policy`,
//!   `breach_notice` belong to the account or to everyone.
//!
//! - `broadcast` (`BCASTS#<page>` / `B#<id>`, sealed text): erased, each with its `delivery` records
//!   (`BDELIV#<page>#<broadcast>`), in bounded steps: a broadcast's records first, the broadcast last. A
//!   broadcast still running finds its page gone and stops (its job ends when its item is gone); the
//!   page's `pace` item (`PACE#<page>`, times only) goes with the last broadcast.
//!
//! - `lead_lookup` and `lead_keys` (key store, `LEADKEYS#<page>`): erased last in each pass, after the
//!   main store's items, the page's partition of lead entries in bounded steps, each entry with the
//!   lookup it names (a lookup that names another lead is kept).
//!
//! A new item type that hangs off a lead or a page must be added here.
//!
//! Phases (the job cursor, [`Progress`], JSON): pending replies, then leads, then broadcasts, then the
//! leads' key-store items, each paged through with a
//! store cursor in bounded steps. Then a second pass of both once [`SETTLE_SECS`] have passed since the
//! disconnect: a webhook batch that read the page just before the disconnect may still write (a Lambda
//! runs up to 29 s), and the second pass erases what it wrote. Every step deletes what it found and only
//! then advances the checkpoint, so a step repeated after a crash or a lost lease finds nothing it already
//! deleted (the counts never count an item twice) and skips nothing.
//!
//! If the page is connected again before the job finishes (the account function refuses that while old
//! leads remain, but a lead-less page may be reconnected at once), only items created before the new
//! connection are erased: the new connection's leads are not the job's business.

use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::crypto::OneWayHash;
use crate::domain::{AccountId, LeadId, PageId};
use crate::jobs::{Job, JobError, JobHandler, Jobs, Step, due_partition};
use crate::pages::page_key;
use crate::replies::DUE_PARTITION as REPLIES_DUE;
use crate::store::{
    Cursor, Index, Item, ItemKey, ItemStore, KeyRange, Order, Query, StoreError, WriteOp, query_all,
};

use super::consent::history_partition;
use super::record::page_leads_partition;
use super::unsubscribe::unsubscribe_key;

/// The job kind; params [`Params`]. The account function queues it, the erase function's runner runs it.
pub const PAGE_LEADS_ERASURE_JOB: &str = "page_leads_erasure";
/// The second pass runs this long after the disconnect: longer than a webhook Lambda may run (29 s).
pub const SETTLE_SECS: i64 = 60;
/// Leads erased per step (each with its consent chain and link): a step stays far inside the lease.
pub const LEADS_PER_STEP: usize = 25;
/// Queued replies looked at per step (those of other pages are skipped).
pub const REPLIES_PER_STEP: usize = 100;
/// Delivery records deleted per step.
pub const DELIVERIES_PER_STEP: usize = 500;
/// Consent records read per query while collecting a lead's chain.
const RECORDS_PER_QUERY: usize = 100;

/// The job's parameters: ids and a time, nothing personal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    pub page_id: String,
    /// The account that disconnected the page (absent when leads left by an earlier connection are found
    /// and erased without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// When the page was disconnected (ms).
    pub disconnected_at: i64,
}

/// What an erasure deleted. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub leads: u64,
    pub consent_records: u64,
    pub unsubscribe_links: u64,
    pub pending_replies: u64,
    /// Receipts written before broadcasts existed lack these two.
    #[serde(default)]
    pub broadcasts: u64,
    #[serde(default)]
    pub deliveries: u64,
    /// The leads' key-store entries (each with its lookup). Older receipts lack it.
    #[serde(default)]
    pub lead_keys: u64,
}

impl Counts {
    fn add(&mut self, other: Self) {
        self.leads += other.leads;
        self.consent_records += other.consent_records;
        self.unsubscribe_links += other.unsubscribe_links;
        self.pending_replies += other.pending_replies;
        self.broadcasts += other.broadcasts;
        self.deliveries += other.deliveries;
        self.lead_keys += other.lead_keys;
    }
}

/// The receipt a finished erasure leaves in its job item (with the job's params: page, account, time of
/// the disconnect): what was deleted and when the erasure finished. No personal data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub erased: Counts,
    /// When the erasure finished (ms).
    pub finished_at: i64,
    /// The disconnected page (one; not personal), as every erasure receipt names its pages for the
    /// status page.
    #[serde(default)]
    pub pages: Vec<String>,
}

impl Receipt {
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Replies,
    Leads,
    Broadcasts,
    /// The leads' key-store items (lookups and entries), after everything in the main store.
    Keys,
}

/// The job cursor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// 1: at once; 2: the sweep after [`SETTLE_SECS`].
    pass: u8,
    phase: Phase,
    /// The store cursor within the phase's partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    erased: Counts,
}

impl Progress {
    fn start() -> Self {
        Self {
            pass: 1,
            phase: Phase::Replies,
            after: None,
            erased: Counts::default(),
        }
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

pub(super) fn malformed_cursor() -> JobError {
    JobError::Permanent("the job cursor is malformed")
}

/// The write that queues the erasure of `page`'s leads, for the caller's transaction; and the job id.
pub fn enqueue_op(
    jobs: &Jobs,
    page: &PageId,
    account: Option<&AccountId>,
    now: Timestamp,
) -> Result<(String, WriteOp), StoreError> {
    let params = Params {
        page_id: page.as_str().to_owned(),
        account_id: account.map(|a| a.as_str().to_owned()),
        disconnected_at: now.millis(),
    };
    let params = serde_json::to_string(&params).unwrap_or_default();
    jobs.enqueue_op(PAGE_LEADS_ERASURE_JOB, &params, now)
}

/// Whether any lead of `page` is stored (for a connected page: its leads; for an unconnected one: leads
/// an erasure has not reached yet).
pub async fn has_leads(store: &dyn ItemStore, page: &PageId) -> Result<bool, StoreError> {
    let found = store
        .query(&Query {
            index: Index::Table,
            partition: page_leads_partition(page),
            range: KeyRange::Prefix("LEAD#".to_owned()),
            order: Order::Ascending,
            limit: 1,
            cursor: None,
        })
        .await?;
    Ok(!found.items.is_empty())
}

/// Whether an erasure of `page`'s leads is queued (waiting, due or running; not finished or failed).
/// Reads the queue of erasures, which holds only the few erasures not finished yet.
pub async fn erasure_queued(store: &dyn ItemStore, page: &PageId) -> Result<bool, StoreError> {
    let mut cursor = None;
    loop {
        let found = store
            .query(&Query {
                index: Index::Gsi1,
                partition: due_partition(PAGE_LEADS_ERASURE_JOB),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 100,
                cursor,
            })
            .await?;
        let of_page = found.items.iter().any(|job| {
            job.get_str("state") == Some("queued")
                && job
                    .get_str("params")
                    .and_then(|p| serde_json::from_str::<Params>(p).ok())
                    .is_some_and(|p| p.page_id == page.as_str())
        });
        if of_page {
            return Ok(true);
        }
        match found.next {
            Some(next) => cursor = Some(next),
            None => return Ok(false),
        }
    }
}

/// Runs [`PAGE_LEADS_ERASURE_JOB`] jobs.
#[derive(Debug, Clone)]
pub struct PageLeadsErasure {
    store: Arc<dyn ItemStore>,
    /// The key store ([`crate::app::App::key_store`]): the leads' lookups and entries.
    key_store: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
}

/// Whether an item created at `created` (ms; unknown counts as old) belongs to the disconnected
/// connection: always while the page is unconnected, else if it predates the current connection.
pub(super) fn is_old(created: Option<i64>, reconnected_at: Option<Timestamp>) -> bool {
    reconnected_at.is_none_or(|at| created.unwrap_or(0) < at.millis())
}

pub(super) fn parse_store_cursor(after: Option<&str>) -> Result<Option<Cursor>, JobError> {
    after
        .map(Cursor::parse)
        .transpose()
        .map_err(|_| malformed_cursor())
}

pub(super) fn query_error(e: StoreError) -> JobError {
    match e {
        StoreError::InvalidCursor => malformed_cursor(),
        other => other.into(),
    }
}

/// The keys of every consent record of `lead` (shared with [`super::erase_lead`]).
pub(super) async fn chain_keys(
    store: &dyn ItemStore,
    page: &PageId,
    lead: &LeadId,
) -> Result<Vec<ItemKey>, JobError> {
    let query = Query::partition(history_partition(page, lead), RECORDS_PER_QUERY);
    let items = query_all(store, query).await?;
    Ok(items.iter().map(|r| r.key().clone()).collect())
}

/// The lead's unsubscribe link, if it is stored and points back at this lead (shared with
/// [`super::erase_lead`]).
pub(super) async fn link_key(
    store: &dyn ItemStore,
    page: &PageId,
    lead: &str,
    item: &Item,
) -> Result<Option<ItemKey>, JobError> {
    let Some(hash) = item.get_str("unsubscribe_hash") else {
        return Ok(None);
    };
    let key = unsubscribe_key(&OneWayHash::from_stored(hash));
    let link = store.get(&key).await?;
    Ok(link
        .filter(|l| {
            l.get_str("page_id") == Some(page.as_str()) && l.get_str("lead_id") == Some(lead)
        })
        .map(|_| key))
}

/// One page of the queue of unsent replies from `after`: deletes those `erase` picks. Returns how many it
/// deleted and where the next page starts (shared with [`super::erase_lead`]).
pub(super) async fn erase_due_replies(
    store: &dyn ItemStore,
    after: Option<&str>,
    erase: impl Fn(&Item) -> bool,
) -> Result<(u64, Option<String>), JobError> {
    let found = store
        .query(&Query {
            index: Index::Gsi1,
            partition: REPLIES_DUE.to_owned(),
            range: KeyRange::All,
            order: Order::Ascending,
            limit: REPLIES_PER_STEP,
            cursor: parse_store_cursor(after)?,
        })
        .await
        .map_err(query_error)?;
    let keys: Vec<ItemKey> = found
        .items
        .iter()
        .filter(|reply| erase(reply))
        .map(|reply| reply.key().clone())
        .collect();
    store.delete_many(&keys).await?;
    Ok((keys.len() as u64, found.next.map(|c| c.as_str().to_owned())))
}

impl PageLeadsErasure {
    pub fn new(
        store: Arc<dyn ItemStore>,
        key_store: Arc<dyn ItemStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            key_store,
            clock,
        }
    }

    /// One page of the leads' key-store items (of the disconnected connection, as for the leads).
    async fn erase_keys(
        &self,
        page: &PageId,
        reconnected_at: Option<Timestamp>,
        after: Option<&str>,
    ) -> Result<(Counts, Option<String>), JobError> {
        let (removed, next) = super::lookup::erase_page_keys(
            self.key_store.as_ref(),
            page,
            parse_store_cursor(after)?,
            LEADS_PER_STEP,
            |entry| is_old(entry.get_i64("created"), reconnected_at),
        )
        .await
        .map_err(query_error)?;
        let erased = Counts {
            lead_keys: removed,
            ..Counts::default()
        };
        Ok((erased, next.map(|c| c.as_str().to_owned())))
    }

    /// When the page was connected again, if it was (`None`: it is unconnected).
    async fn reconnected_at(
        &self,
        page: &PageId,
        params: &Params,
    ) -> Result<Option<Timestamp>, JobError> {
        Ok(self.store.get(&page_key(page)).await?.map(|item| {
            Timestamp::from_millis(
                item.get_i64("connected_at")
                    .unwrap_or(params.disconnected_at),
            )
        }))
    }

    /// One page of the queue of unsent replies: deletes the page's. Returns what it deleted and where the
    /// next step starts.
    async fn erase_replies(
        &self,
        page: &PageId,
        reconnected_at: Option<Timestamp>,
        after: Option<&str>,
    ) -> Result<(Counts, Option<String>), JobError> {
        let (deleted, next) = erase_due_replies(self.store.as_ref(), after, |reply| {
            reply.get_str("page_id") == Some(page.as_str())
                && is_old(reply.get_i64("created"), reconnected_at)
        })
        .await?;
        let erased = Counts {
            pending_replies: deleted,
            ..Counts::default()
        };
        Ok((erased, next))
    }

    /// One page of the page's leads: deletes each (of the disconnected connection) with its consent
    /// chain and unsubscribe link, the leads last. Returns what it deleted and where the next step starts.
    async fn erase_leads(
        &self,
        page: &PageId,
        reconnected_at: Option<Timestamp>,
        after: Option<&str>,
    ) -> Result<(Counts, Option<String>), JobError> {
        let found = self
            .store
            .query(&Query {
                index: Index::Table,
                partition: page_leads_partition(page),
                range: KeyRange::Prefix("LEAD#".to_owned()),
                order: Order::Ascending,
                limit: LEADS_PER_STEP,
                cursor: parse_store_cursor(after)?,
            })
            .await
            .map_err(query_error)?;
        let mut erased = Counts::default();
        let mut owned = Vec::new();
        let mut leads = Vec::new();
        for item in &found.items {
            if !is_old(item.get_i64("created"), reconnected_at) {
                continue;
            }
            let raw = item.key().sk.strip_prefix("LEAD#").unwrap_or_default();
            // A lead id that does not parse cannot have had records or a link written for it.
            if let Ok(lead) = LeadId::parse(raw) {
                let chain = chain_keys(self.store.as_ref(), page, &lead).await?;
                erased.consent_records += chain.len() as u64;
                owned.extend(chain);
                if let Some(link) = link_key(self.store.as_ref(), page, raw, item).await? {
                    erased.unsubscribe_links += 1;
                    owned.push(link);
                }
            }
            leads.push(item.key().clone());
        }
        // What hangs off the leads first, then the leads: a crash in between leaves the leads to be found
        // again, never an orphan no step could find.
        self.store.delete_many(&owned).await?;
        self.store.delete_many(&leads).await?;
        erased.leads = leads.len() as u64;
        Ok((erased, found.next.map(|c| c.as_str().to_owned())))
    }
}

impl PageLeadsErasure {
    /// One bounded piece of the page's broadcasts, from `after` (a store cursor; `""` is the start): up to
    /// [`DELIVERIES_PER_STEP`] delivery records of the first broadcast there (the cursor stays, so the
    /// next step looks at the same broadcast), or, once it has none left, the broadcast itself (the cursor
    /// moves past it). A broadcast of a newer connection is stepped over. After the last broadcast the
    /// page's pace item goes too (unless the page is connected again). `None`: nothing left.
    async fn erase_broadcasts(
        &self,
        page: &PageId,
        reconnected_at: Option<Timestamp>,
        after: Option<&str>,
    ) -> Result<(Counts, Option<String>), JobError> {
        let after = after.filter(|a| !a.is_empty());
        let found = self
            .store
            .query(&Query {
                index: Index::Table,
                partition: crate::broadcast::page_broadcasts_partition(page),
                range: KeyRange::Prefix("B#".to_owned()),
                order: Order::Ascending,
                limit: 1,
                cursor: parse_store_cursor(after)?,
            })
            .await
            .map_err(query_error)?;
        let mut erased = Counts::default();
        let past = found.next.map(|c| c.as_str().to_owned());
        let Some(item) = found.items.first() else {
            self.erase_pace(page, reconnected_at).await?;
            return Ok((erased, None));
        };
        if is_old(item.get_i64("created"), reconnected_at) {
            let id = item
                .key()
                .sk
                .strip_prefix("B#")
                .and_then(crate::broadcast::BroadcastId::parse);
            if let Some(id) = id {
                let deliveries = self
                    .store
                    .query(&Query::partition(
                        crate::broadcast::sender::deliveries_partition(page, &id),
                        DELIVERIES_PER_STEP,
                    ))
                    .await
                    .map_err(query_error)?;
                if !deliveries.items.is_empty() {
                    let keys: Vec<ItemKey> =
                        deliveries.items.iter().map(|d| d.key().clone()).collect();
                    self.store.delete_many(&keys).await?;
                    erased.deliveries = keys.len() as u64;
                    return Ok((erased, Some(after.unwrap_or_default().to_owned())));
                }
            }
            self.store.delete_many(&[item.key().clone()]).await?;
            erased.broadcasts = 1;
        }
        if past.is_none() {
            self.erase_pace(page, reconnected_at).await?;
        }
        Ok((erased, past))
    }

    async fn erase_pace(
        &self,
        page: &PageId,
        reconnected_at: Option<Timestamp>,
    ) -> Result<(), JobError> {
        if reconnected_at.is_none() {
            self.store
                .delete_many(&[crate::broadcast::pace::pace_key(page)])
                .await?;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl JobHandler for PageLeadsErasure {
    fn kind(&self) -> &'static str {
        PAGE_LEADS_ERASURE_JOB
    }

    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
        let params: Params = serde_json::from_str(&job.params)
            .map_err(|_| JobError::Permanent("the job parameters are malformed"))?;
        let page = PageId::parse(&params.page_id)
            .map_err(|_| JobError::Permanent("the job parameters are malformed"))?;
        let mut progress = match cursor {
            None => Progress::start(),
            Some(raw) => serde_json::from_str(raw).map_err(|_| malformed_cursor())?,
        };
        let reconnected_at = self.reconnected_at(&page, &params).await?;
        let after = progress.after.take();
        let (erased, next) = match progress.phase {
            Phase::Replies => {
                self.erase_replies(&page, reconnected_at, after.as_deref())
                    .await?
            }
            Phase::Leads => {
                self.erase_leads(&page, reconnected_at, after.as_deref())
                    .await?
            }
            Phase::Broadcasts => {
                self.erase_broadcasts(&page, reconnected_at, after.as_deref())
                    .await?
            }
            Phase::Keys => {
                self.erase_keys(&page, reconnected_at, after.as_deref())
                    .await?
            }
        };
        progress.erased.add(erased);
        tracing::info!(
            job = %job.id,
            page = %page,
            pass = progress.pass,
            leads = erased.leads,
            consent_records = erased.consent_records,
            unsubscribe_links = erased.unsubscribe_links,
            pending_replies = erased.pending_replies,
            broadcasts = erased.broadcasts,
            deliveries = erased.deliveries,
            lead_keys = erased.lead_keys,
            "page erasure step"
        );
        if next.is_some() {
            progress.after = next;
            return Ok(Step::Continue(progress.encode()));
        }
        match (progress.phase, progress.pass) {
            (Phase::Replies, _) => {
                progress.phase = Phase::Leads;
                Ok(Step::Continue(progress.encode()))
            }
            (Phase::Leads, _) => {
                progress.phase = Phase::Broadcasts;
                Ok(Step::Continue(progress.encode()))
            }
            (Phase::Broadcasts, _) => {
                progress.phase = Phase::Keys;
                Ok(Step::Continue(progress.encode()))
            }
            (Phase::Keys, 1) => {
                progress.pass = 2;
                progress.phase = Phase::Replies;
                let settle = Timestamp::from_millis(params.disconnected_at).plus_secs(SETTLE_SECS);
                if self.clock.now() < settle {
                    Ok(Step::ResumeAt(progress.encode(), settle))
                } else {
                    Ok(Step::Continue(progress.encode()))
                }
            }
            (Phase::Keys, _) => {
                let receipt = Receipt {
                    erased: progress.erased,
                    finished_at: self.clock.now().millis(),
                    pages: vec![params.page_id.clone()],
                };
                tracing::info!(
                    job = %job.id,
                    page = %page,
                    leads = receipt.erased.leads,
                    consent_records = receipt.erased.consent_records,
                    unsubscribe_links = receipt.erased.unsubscribe_links,
                    pending_replies = receipt.erased.pending_replies,
                    broadcasts = receipt.erased.broadcasts,
                    deliveries = receipt.erased.deliveries,
                    lead_keys = receipt.erased.lead_keys,
                    "page leads erased"
                );
                Ok(Step::DoneWithReceipt(
                    serde_json::to_string(&receipt).unwrap_or_default(),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;
    use crate::crypto::Sealed;
    use crate::ids::SequentialIds;
    use crate::inventory::{LEAD, PAGE, UNSUBSCRIBE_LINK};
    use crate::leads::consent::{Action, ConsentEvent, ConsentRecord, GENESIS_HASH};
    use crate::leads::record::lead_key;
    use crate::replies::{NewReply, reply_key, reply_op};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Condition, Value};

    const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);

    struct Fixture {
        store: Arc<dyn ItemStore>,
        clock: Arc<ManualClock>,
        jobs: Jobs,
        handler: PageLeadsErasure,
        _dir: tempfile::TempDir,
    }

    async fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at(START));
        let store: Arc<dyn ItemStore> = Arc::new(
            SqliteStore::open(&dir.path().join("erase.db"), clock.clone()).expect("store opens"),
        );
        store.ensure_schema().await.expect("schema");
        let jobs = Jobs::new(
            store.clone(),
            clock.clone(),
            Arc::new(SequentialIds::default()),
            900,
        );
        let handler = PageLeadsErasure::new(store.clone(), store.clone(), clock.clone());
        Fixture {
            store,
            clock,
            jobs,
            handler,
            _dir: dir,
        }
    }

    fn page(id: &str) -> PageId {
        PageId::parse(id).expect("page id")
    }

    fn account() -> AccountId {
        AccountId::parse("acc1").expect("account id")
    }

    /// What one seeded lead left in the store.
    struct Seeded {
        lead: LeadId,
        link: ItemKey,
        reply: ItemKey,
    }

    /// A lead as the webhook writes it: the lead, `records` chained consent records, its unsubscribe link
    /// and a reply waiting to be sent.
    async fn seed_lead(f: &Fixture, page: &PageId, name: &str, records: u64) -> Seeded {
        let lead = LeadId::parse(name).expect("lead id");
        let now = f.clock.now();
        let hash = OneWayHash::sha256_of(format!("token-{page}-{name}").as_bytes());
        let mut ops = Vec::new();
        let (mut seq, mut head) = (0, GENESIS_HASH.to_owned());
        for i in 0..records {
            let record = ConsentRecord::chain(
                &lead,
                seq,
                &head,
                ConsentEvent {
                    action: if i % 2 == 0 {
                        Action::OptIn
                    } else {
                        Action::OptOut
                    },
                    source: "first_message".into(),
                    meta_ref: Some(format!("m_{name}_{i}")),
                    meta_timestamp: Some(now.millis()),
                    received_at: now,
                    policy_version: "1".into(),
                    consent_mode: "implicit".into(),
                    wording: "Sent a first message.".into(),
                },
            );
            ops.push(record.append_op(page, &lead).expect("record op"));
            seq = record.seq;
            head = record.hash;
        }
        let item = Item::new(&LEAD, lead_key(page, &lead))
            .sealed("subject", Sealed::from_bytes(vec![7; 40]))
            .and_then(|i| i.plain("subject_kind", Value::S("psid".into())))
            .and_then(|i| i.plain("status", Value::S("subscribed".into())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .and_then(|i| i.plain("consent_seq", Value::N(i64::try_from(seq).unwrap_or(0))))
            .and_then(|i| i.plain("consent_head", Value::S(head)))
            .and_then(|i| i.hashed("unsubscribe_hash", &hash))
            .expect("lead item")
            .with_version(1)
            .with_gsi1(
                format!("LEADS#{page}#subscribed"),
                crate::leads::record::status_sort_key(now, &lead),
            );
        ops.push(WriteOp::Put {
            item,
            condition: Condition::NotExists,
        });
        let link = unsubscribe_key(&hash);
        let link_item = Item::new(&UNSUBSCRIBE_LINK, link.clone())
            .plain("page_id", Value::S(page.as_str().into()))
            .and_then(|i| i.plain("lead_id", Value::S(lead.as_str().into())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .expect("link item");
        ops.push(WriteOp::Put {
            item: link_item,
            condition: Condition::NotExists,
        });
        let reply_id = format!("r-{page}-{name}");
        ops.push(
            reply_op(
                NewReply {
                    id: &reply_id,
                    page,
                    account: &account(),
                    lead: Some(&lead),
                    recipient_kind: "psid",
                    recipient: Sealed::from_bytes(vec![8; 40]),
                    text: Sealed::from_bytes(vec![9; 60]),
                    quick_replies: &[],
                },
                now,
            )
            .expect("reply op"),
        );
        for chunk in ops.chunks(crate::store::MAX_TRANSACTION_OPS) {
            f.store.transact(chunk.to_vec()).await.expect("seeded");
        }
        Seeded {
            lead,
            link,
            reply: reply_key(&reply_id),
        }
    }

    async fn seed_page(f: &Fixture, page: &PageId) {
        let item = Item::new(&PAGE, page_key(page))
            .plain("account_id", Value::S(account().as_str().into()))
            .and_then(|i| i.plain("connected_at", Value::N(f.clock.now().millis())))
            .expect("page item")
            .with_version(1);
        f.store
            .put(item, Condition::NotExists)
            .await
            .expect("page written");
    }

    async fn count(f: &Fixture, pk: String) -> usize {
        f.store
            .query(&Query::partition(pk, 1000))
            .await
            .expect("query")
            .items
            .len()
    }

    async fn exists(f: &Fixture, key: &ItemKey) -> bool {
        f.store.get(key).await.expect("get").is_some()
    }

    /// Everything stored about `s` on `page`, as (lead, records, link, reply) presence.
    async fn held(f: &Fixture, page: &PageId, s: &Seeded) -> (bool, usize, bool, bool) {
        (
            exists(f, &lead_key(page, &s.lead)).await,
            count(f, history_partition(page, &s.lead)).await,
            exists(f, &s.link).await,
            exists(f, &s.reply).await,
        )
    }

    /// Delegates to the real handler and takes `secs` of clock time per step (a slow backend).
    struct Slow<'a> {
        inner: &'a PageLeadsErasure,
        clock: Arc<ManualClock>,
        secs: i64,
        steps: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl JobHandler for Slow<'_> {
        fn kind(&self) -> &'static str {
            self.inner.kind()
        }
        async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
            self.steps.fetch_add(1, Ordering::SeqCst);
            self.clock.advance_secs(self.secs);
            self.inner.step(job, cursor).await
        }
    }

    /// Runs the queue like the erasure runner's ticks, a minute apart, until `job` is no longer pending.
    async fn run_to_end(f: &Fixture, handler: &dyn JobHandler, job: &str, budget_secs: i64) {
        for _ in 0..200 {
            if !f.jobs.is_pending(job).await.expect("read") {
                return;
            }
            f.jobs
                .run_due("runner", f.clock.now().plus_secs(budget_secs), &[handler])
                .await
                .expect("run");
            f.clock.advance_secs(60);
        }
        panic!("the erasure did not finish");
    }

    async fn disconnect(f: &Fixture, page: &PageId) -> String {
        let (id, op) = enqueue_op(&f.jobs, page, Some(&account()), f.clock.now()).expect("op");
        f.store.transact(vec![op]).await.expect("queued");
        id
    }

    fn receipt(raw: Option<String>) -> Counts {
        Receipt::parse(&raw.expect("a receipt"))
            .expect("a receipt")
            .erased
    }

    #[tokio::test]
    async fn cut_by_deadlines_the_erasure_resumes_and_removes_every_item_of_the_pages_leads_only() {
        let f = fixture().await;
        let (gone, kept) = (page("1001"), page("2002"));
        seed_page(&f, &kept).await;
        let mut seeded = Vec::new();
        for i in 0..(LEADS_PER_STEP + 7) {
            seeded.push(seed_lead(&f, &gone, &format!("lead{i:03}"), 1 + (i as u64 % 3)).await);
        }
        let other = seed_lead(&f, &kept, "lead000", 2).await;
        let job = disconnect(&f, &gone).await;

        // Each step takes 2 s and each run may work 7 s (stopping 3 s early): two steps a run.
        let slow = Slow {
            inner: &f.handler,
            clock: f.clock.clone(),
            secs: 2,
            steps: AtomicUsize::new(0),
        };
        let first = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(7), &[&slow])
            .await
            .expect("run");
        assert_eq!(
            (first.steps, first.paused),
            (2, 1),
            "the deadline cut the job"
        );
        assert!(f.jobs.is_pending(&job).await.expect("read"));
        run_to_end(&f, &slow, &job, 7).await;
        // Replies, two pages of leads, broadcasts (none), key-store items (none here), the wait; then
        // replies, leads, broadcasts and key-store items again: nothing ran twice.
        assert_eq!(slow.steps.load(Ordering::SeqCst), 9);

        for s in &seeded {
            assert_eq!(held(&f, &gone, s).await, (false, 0, false, false));
        }
        assert_eq!(count(&f, page_leads_partition(&gone)).await, 0);
        assert_eq!(held(&f, &kept, &other).await, (true, 2, true, true));
        assert!(exists(&f, &page_key(&kept)).await);
        let records: u64 = (0..seeded.len() as u64).map(|i| 1 + i % 3).sum();
        assert_eq!(
            receipt(f.jobs.receipt(&job).await.expect("read")),
            Counts {
                leads: seeded.len() as u64,
                consent_records: records,
                unsubscribe_links: seeded.len() as u64,
                pending_replies: seeded.len() as u64,
                ..Counts::default()
            }
        );
    }

    async fn seed_broadcast(f: &Fixture, page: &PageId, id: &str, deliveries: usize) {
        use crate::broadcast::BroadcastId;
        use crate::broadcast::sender::delivery_key;
        use crate::inventory::{BROADCAST, DELIVERY};
        let id = BroadcastId::parse(id).expect("broadcast id");
        let now = f.clock.now();
        let item = Item::new(&BROADCAST, crate::broadcast::broadcast_key(page, &id))
            .plain("state", Value::S("sending".into()))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .expect("broadcast item");
        f.store.put(item, Condition::NotExists).await.expect("put");
        for n in 0..deliveries {
            let lead = LeadId::parse(&format!("lead{n:05}")).expect("lead id");
            let item = Item::new(&DELIVERY, delivery_key(page, &id, &lead))
                .plain("state", Value::S("sent".into()))
                .expect("delivery item")
                .expires_at(now.plus_secs(30 * 86_400));
            f.store.put(item, Condition::NotExists).await.expect("put");
        }
        let pace = Item::new(
            &crate::inventory::PACE,
            crate::broadcast::pace::pace_key(page),
        )
        .plain("next_free_at", Value::N(now.millis()))
        .expect("pace item");
        f.store.put(pace, Condition::Always).await.expect("put");
    }

    #[tokio::test]
    async fn a_pages_broadcasts_and_their_delivery_records_are_erased_in_bounded_steps() {
        let f = fixture().await;
        let (gone, kept) = (page("1001"), page("2002"));
        seed_page(&f, &kept).await;
        seed_broadcast(&f, &gone, "1800000000000-a1", DELIVERIES_PER_STEP + 100).await;
        seed_broadcast(&f, &gone, "1800000000001-b2", 3).await;
        seed_broadcast(&f, &kept, "1800000000000-c3", 2).await;
        let job = disconnect(&f, &gone).await;
        run_to_end(&f, &f.handler, &job, 30).await;

        let broadcasts = |p: &PageId| crate::broadcast::page_broadcasts_partition(p);
        assert_eq!(count(&f, broadcasts(&gone)).await, 0);
        for id in ["1800000000000-a1", "1800000000001-b2"] {
            let id = crate::broadcast::BroadcastId::parse(id).expect("id");
            let deliveries = crate::broadcast::sender::deliveries_partition(&gone, &id);
            assert_eq!(count(&f, deliveries).await, 0);
        }
        assert!(!exists(&f, &crate::broadcast::pace::pace_key(&gone)).await);
        let kept_id = crate::broadcast::BroadcastId::parse("1800000000000-c3").expect("id");
        assert_eq!(count(&f, broadcasts(&kept)).await, 1);
        let kept_deliveries = crate::broadcast::sender::deliveries_partition(&kept, &kept_id);
        assert_eq!(count(&f, kept_deliveries).await, 2);
        assert!(exists(&f, &crate::broadcast::pace::pace_key(&kept)).await);
        let erased = receipt(f.jobs.receipt(&job).await.expect("read"));
        assert_eq!(
            (erased.broadcasts, erased.deliveries),
            (2, DELIVERIES_PER_STEP as u64 + 103)
        );
    }

    #[tokio::test]
    async fn a_step_cut_between_its_deletes_leaves_the_lead_to_be_found_and_counted_once() {
        let f = fixture().await;
        let gone = page("1001");
        let a = seed_lead(&f, &gone, "leada", 3).await;
        let b = seed_lead(&f, &gone, "leadb", 1).await;
        // As if a step died after deleting a's chain and link, before deleting a itself.
        let mut children: Vec<ItemKey> = f
            .store
            .query(&Query::partition(history_partition(&gone, &a.lead), 100))
            .await
            .expect("query")
            .items
            .iter()
            .map(|i| i.key().clone())
            .collect();
        children.push(a.link.clone());
        f.store.delete_many(&children).await.expect("deleted");

        let job = disconnect(&f, &gone).await;
        run_to_end(&f, &f.handler, &job, 60).await;
        assert_eq!(held(&f, &gone, &a).await, (false, 0, false, false));
        assert_eq!(held(&f, &gone, &b).await, (false, 0, false, false));
        assert_eq!(
            receipt(f.jobs.receipt(&job).await.expect("read")),
            Counts {
                leads: 2,
                consent_records: 1,
                unsubscribe_links: 1,
                pending_replies: 2,
                ..Counts::default()
            }
        );
    }

    #[tokio::test]
    async fn a_step_repeated_from_its_checkpoint_finds_nothing_it_already_deleted() {
        let f = fixture().await;
        let gone = page("1001");
        for i in 0..3 {
            seed_lead(&f, &gone, &format!("lead{i}"), 2).await;
        }
        let job = Job {
            id: "j".into(),
            kind: PAGE_LEADS_ERASURE_JOB.into(),
            params: serde_json::json!({ "page_id": "1001", "disconnected_at": START.millis() })
                .to_string(),
            due_at: START,
            attempts: 0,
        };
        let Ok(Step::Continue(leads_phase)) = f.handler.step(&job, None).await else {
            panic!("the replies phase continues");
        };
        let first = f
            .handler
            .step(&job, Some(&leads_phase))
            .await
            .expect("step");
        // The checkpoint was lost: the same step runs again.
        let again = f
            .handler
            .step(&job, Some(&leads_phase))
            .await
            .expect("step");
        let erased = |step: &Step| match step {
            Step::ResumeAt(cursor, _) | Step::Continue(cursor) => {
                serde_json::from_str::<Progress>(cursor)
                    .expect("progress")
                    .erased
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(erased(&first).leads, 3);
        assert_eq!(erased(&first).consent_records, 6);
        assert_eq!(erased(&again).leads, 0, "nothing is found twice");
        assert_eq!(erased(&again).consent_records, 0);
        assert_eq!(
            erased(&again).pending_replies,
            3,
            "the earlier phase's counts stay"
        );
    }

    #[tokio::test]
    async fn the_second_pass_waits_for_the_settle_time_and_erases_what_a_late_webhook_wrote() {
        let f = fixture().await;
        let gone = page("1001");
        seed_lead(&f, &gone, "early", 1).await;
        let job = disconnect(&f, &gone).await;
        let report = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(60), &[&f.handler])
            .await
            .expect("run");
        assert_eq!((report.paused, report.finished), (1, 0), "it waits");
        assert_eq!(count(&f, page_leads_partition(&gone)).await, 0);

        // A webhook batch that read the page before the disconnect writes a lead afterwards.
        f.clock.advance_secs(5);
        let late = seed_lead(&f, &gone, "late", 2).await;
        f.clock.advance_secs(SETTLE_SECS - 10);
        let early = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(60), &[&f.handler])
            .await
            .expect("run");
        assert_eq!(early.claimed, 0, "not before the settle time");
        f.clock.advance_secs(5);
        let report = f
            .jobs
            .run_due("runner", f.clock.now().plus_secs(60), &[&f.handler])
            .await
            .expect("run");
        assert_eq!(report.finished, 1);
        assert_eq!(held(&f, &gone, &late).await, (false, 0, false, false));
        assert_eq!(
            receipt(f.jobs.receipt(&job).await.expect("read")),
            Counts {
                leads: 2,
                consent_records: 3,
                unsubscribe_links: 2,
                pending_replies: 2,
                ..Counts::default()
            }
        );
    }

    #[tokio::test]
    async fn a_page_connected_again_keeps_the_leads_of_its_new_connection() {
        let f = fixture().await;
        let p = page("1001");
        let old = seed_lead(&f, &p, "old", 2).await;
        let job = disconnect(&f, &p).await;
        f.clock.advance_secs(1);
        seed_page(&f, &p).await;
        f.clock.advance_secs(1);
        let new = seed_lead(&f, &p, "new", 1).await;
        run_to_end(&f, &f.handler, &job, 60).await;
        assert_eq!(held(&f, &p, &old).await, (false, 0, false, false));
        assert_eq!(held(&f, &p, &new).await, (true, 1, true, true));
        assert_eq!(receipt(f.jobs.receipt(&job).await.expect("read")).leads, 1);
    }

    #[tokio::test]
    async fn lookups_see_leftover_leads_and_a_queued_erasure_of_the_page_only() {
        let f = fixture().await;
        let (p, q) = (page("1001"), page("2002"));
        assert!(!has_leads(f.store.as_ref(), &p).await.expect("read"));
        seed_lead(&f, &p, "one", 1).await;
        assert!(has_leads(f.store.as_ref(), &p).await.expect("read"));
        assert!(!has_leads(f.store.as_ref(), &q).await.expect("read"));
        assert!(!erasure_queued(f.store.as_ref(), &p).await.expect("read"));
        let job = disconnect(&f, &p).await;
        assert!(erasure_queued(f.store.as_ref(), &p).await.expect("read"));
        assert!(!erasure_queued(f.store.as_ref(), &q).await.expect("read"));
        run_to_end(&f, &f.handler, &job, 60).await;
        assert!(!erasure_queued(f.store.as_ref(), &p).await.expect("read"));
        assert!(!has_leads(f.store.as_ref(), &p).await.expect("read"));
    }

    #[tokio::test]
    async fn malformed_parameters_or_cursor_fail_permanently() {
        let f = fixture().await;
        let job = |params: &str| Job {
            id: "j".into(),
            kind: PAGE_LEADS_ERASURE_JOB.into(),
            params: params.into(),
            due_at: START,
            attempts: 0,
        };
        for params in ["{}", r#"{"page_id":"not a page","disconnected_at":1}"#] {
            assert!(matches!(
                f.handler.step(&job(params), None).await,
                Err(JobError::Permanent(_))
            ));
        }
        let ok = job(r#"{"page_id":"1001","disconnected_at":1}"#);
        for cursor in [
            "nonsense",
            r#"{"pass":1,"phase":"leads","after":"!!","erased":{"leads":0,"consent_records":0,"unsubscribe_links":0,"pending_replies":0}}"#,
        ] {
            assert!(matches!(
                f.handler.step(&ok, Some(cursor)).await,
                Err(JobError::Permanent(_))
            ));
        }
    }
}
