//! Erasure of ONE lead: everything qchat holds about one person on one page (SPEC §3 "Erasure"), asked
//! for by the person ("DELETE MY DATA" in Messenger), by the page's account holder
//! (`DELETE /api/pages/{page_id}/leads/{lead_id}`), by Meta's data-deletion callback, or by the retention
//! sweep. The caller queues the job with [`enqueue_op`] (and, for a request, freezes the lead with
//! [`request_ops`]) in the transaction that records the request; the erase function's runner runs it on
//! the job mechanism ([`crate::jobs`]: lease, checkpointed cursor, deadline, resume).
//!
//! What it removes, in bounded steps, each idempotent (a step repeated after a crash or a lost lease finds
//! nothing it already deleted, so nothing is counted twice):
//! 1. the lead's replies still waiting to be sent (the `REPLY#DUE` index, by `page_id` and `lead_id`),
//!    a page of the queue per step;
//! 2. the lead's replies already sent or failed (notify files them under the lead,
//!    [`crate::replies::lead_partition`]);
//! 3. its broadcast delivery records (one key per broadcast of the page, [`crate::broadcast::lead_delivery_keys`]);
//! 4. the lead item (with its status index entry), its whole consent chain and its unsubscribe link; and
//!    the same for a checkbox-plugin lead of the same person merged into it (`linked_from`) or that it
//!    was merged into (`merged_into`). The chain and link go first, the lead last, so a step cut short
//!    leaves the lead to be found again;
//! 5. last, the leads' items in the key store ([`super::lookup`]): each lead's entry and the lookup it
//!    names, so a restored main store neither finds the person from their id nor holds a value
//!    computable from it.
//!
//! KEPT, and why: de-duplication keys of the person's webhook events (a SHA-256 of the page and Meta's
//! message id, nothing personal, 48 h): they make an event Meta delivers again after the erasure a
//! duplicate, so it recreates nothing. Replies already sent or failed: no key or index leads to them from
//! the lead (replies sent before notify filed them under their lead): they hold the recipient sealed until
//! their 7-day expiry. The acknowledgement and confirmation replies of a Messenger request (below), which
//! name no lead because they must reach the person after the lead is gone.
//!
//! A lead whose erasure is requested is frozen: it names the job (`erasure_job`), so the webhook changes
//! nothing on it any more, and every event's write is conditional on the lead's version, so an event
//! planned before the request is planned again and finds the frozen lead. Once the lead is erased, a new
//! message from the person is a stranger's first message: it may start a new lead. Only leads created up
//! to the request are erased, so such a new lead is not the job's business.
//!
//! A Messenger request parks its confirmation reply (state `held`, out of the due index, written by the
//! webhook with the request, the status page link in it); the job's last step releases it for notify to
//! send — unless more than Meta's 24-hour window has passed since the request (which opened the window),
//! in which case the reply is closed as failed `outside_window` and its sealed values are removed.
//!
//! The receipt (the finished job, kept one year) holds counts and the finish time only: the job's params,
//! which name the page and lead, are dropped ([`Step::DoneWithReceiptOnly`]).

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::clock::{Clock, Timestamp};
use crate::domain::{LeadId, PageId};
use crate::jobs::{Job, JobError, JobHandler, Jobs, Step};
use crate::replies::{DUE_PARTITION as REPLIES_DUE, due_sort_key, reply_key};
use crate::store::{Condition, ItemKey, ItemStore, StoreError, Value, WriteOp};

use super::erase::{chain_keys, erase_due_replies, link_key, malformed_cursor};
use super::record::{Lead, lead_key};

/// The job kind; params [`Params`].
pub const LEAD_ERASURE_JOB: &str = "lead_erasure";
/// Sent replies of a lead deleted per step (what is deleted leaves the index, so a step always reads
/// from the start of what is left).
const SENT_REPLIES_PER_STEP: usize = 100;
/// Meta's standard messaging window: the confirmation goes out only this long after the request.
pub const CONFIRMATION_WINDOW_HOURS: i64 = 24;
/// The `state` of a parked confirmation reply, until the erasure releases it.
pub const HELD: &str = "held";
/// The `failure` of a confirmation reply the erasure closed because Meta's window had passed.
pub const OUTSIDE_WINDOW: &str = "outside_window";

/// Who asked for the erasure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The person, "DELETE MY DATA" in Messenger.
    Messenger,
    /// The page's account holder, through the API.
    AccountHolder,
    /// Meta's data-deletion callback.
    Meta,
    /// The retention sweep.
    Retention,
}

/// The job's parameters: ids, a time and the origin; nothing personal. Dropped from the receipt.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    pub page_id: String,
    pub lead_id: String,
    pub origin: Origin,
    /// When the erasure was asked for (ms).
    pub requested_at: i64,
    /// The id of the parked confirmation reply to release when done (Messenger requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_reply: Option<String>,
}

/// What a lead erasure deleted. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub leads: u64,
    pub consent_records: u64,
    pub unsubscribe_links: u64,
    pub pending_replies: u64,
    #[serde(default)]
    pub sent_replies: u64,
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
        self.sent_replies += other.sent_replies;
        self.deliveries += other.deliveries;
        self.lead_keys += other.lead_keys;
    }
}

/// The receipt: what was deleted, when the erasure finished and on which page. No personal data and no
/// lead id; the page id is not personal (a page is a business's public presence), and lets the status
/// page name the page while it is connected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub erased: Counts,
    /// When the erasure finished (ms).
    pub finished_at: i64,
    /// The page the lead was erased from (one).
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
    SentReplies,
    Deliveries,
    Leads,
    /// The leads' key-store items, once nothing of them is left in the main store.
    Keys,
    Confirm,
}

/// The job cursor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    phase: Phase,
    /// The store cursor within the replies phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    /// The lead ids to erase (the lead and a merged checkbox-plugin lead), fixed by the first step so a
    /// step after the lead is gone still knows them.
    leads: Vec<String>,
    erased: Counts,
}

/// The write that queues the erasure of `lead` on `page`, for the caller's transaction; and the job id
/// (the erasure's confirmation code). `confirm_reply`: a parked confirmation reply to release when done.
pub fn enqueue_op(
    jobs: &Jobs,
    page: &PageId,
    lead: &LeadId,
    origin: Origin,
    now: Timestamp,
    confirm_reply: Option<&str>,
) -> Result<(String, WriteOp), StoreError> {
    let params = Params {
        page_id: page.as_str().to_owned(),
        lead_id: lead.as_str().to_owned(),
        origin,
        requested_at: now.millis(),
        confirm_reply: confirm_reply.map(str::to_owned),
    };
    let params = serde_json::to_string(&params).unwrap_or_default();
    jobs.enqueue_op(LEAD_ERASURE_JOB, &params, now)
}

/// `lead`'s item marked as asked to be erased by job `job` (`erasure_requested_at`, `erasure_job`), for
/// a caller that writes the lead anyway (the webhook's opt-out of DELETE MY DATA).
pub fn mark(
    item: crate::store::Item,
    job: &str,
    now: Timestamp,
) -> Result<crate::store::Item, StoreError> {
    Ok(item
        .plain("erasure_requested_at", Value::N(now.millis()))?
        .plain("erasure_job", Value::S(job.to_owned()))?)
}

/// A reply write (from [`crate::replies::reply_op`]) parked as an erasure's confirmation: `state = held`
/// and out of the due index, so nothing sends it until the erasure's last step releases it.
pub fn held_confirmation(op: WriteOp) -> Result<WriteOp, StoreError> {
    match op {
        WriteOp::Put { item, condition } => Ok(WriteOp::Put {
            item: item
                .plain("state", Value::S(HELD.to_owned()))?
                .without_gsi1(),
            condition,
        }),
        other => Ok(other),
    }
}

/// The job id of a lead's requested erasure, if one was queued (the lead is frozen until it is erased).
pub fn requested_job(lead: &Lead) -> Option<&str> {
    lead.item.get_str("erasure_job")
}

/// The writes that ask for `lead`'s erasure: the job, and the lead frozen (marked with the job, out of
/// its status index so no list or broadcast picks it up), conditional on the version read. Returns the
/// job id (the confirmation code) too.
pub fn request_ops(
    jobs: &Jobs,
    lead: &Lead,
    origin: Origin,
    now: Timestamp,
) -> Result<(String, Vec<WriteOp>), StoreError> {
    let (job, queue) = enqueue_op(jobs, &lead.page, &lead.id, origin, now, None)?;
    let version = lead.item.version().unwrap_or(0);
    let frozen = mark(lead.item.clone(), &job, now)?
        .without_gsi1()
        .with_version(version + 1);
    Ok((
        job,
        vec![
            queue,
            WriteOp::Put {
                item: frozen,
                condition: Condition::VersionIs(version),
            },
        ],
    ))
}

/// Runs [`LEAD_ERASURE_JOB`] jobs.
#[derive(Debug, Clone)]
pub struct LeadErasure {
    store: Arc<dyn ItemStore>,
    /// The key store ([`crate::app::App::key_store`]): the leads' lookups and entries.
    key_store: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
}

fn parse_params(job: &Job) -> Result<(Params, PageId, LeadId), JobError> {
    let malformed = || JobError::Permanent("the job parameters are malformed");
    let params: Params = serde_json::from_str(&job.params).map_err(|_| malformed())?;
    let page = PageId::parse(&params.page_id).map_err(|_| malformed())?;
    let lead = LeadId::parse(&params.lead_id).map_err(|_| malformed())?;
    Ok((params, page, lead))
}

impl LeadErasure {
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

    /// The leads' key-store items, last. A lead written again under the same id after the request (the
    /// person wrote while the erasure ran, through the lookup not yet removed) keeps them: it is not the
    /// job's business, and the lookup is how the person's messages find it.
    async fn erase_keys(&self, page: &PageId, leads: &[LeadId]) -> Result<Counts, JobError> {
        let mut erased = Counts::default();
        for lead in leads {
            if self.store.get(&lead_key(page, lead)).await?.is_some() {
                continue;
            }
            if super::lookup::erase_keys(self.key_store.as_ref(), page, lead).await? {
                erased.lead_keys += 1;
            }
        }
        Ok(erased)
    }

    /// The lead and the checkbox-plugin lead of the same person linked to it, either way.
    async fn subjects(&self, page: &PageId, lead: &LeadId) -> Result<Vec<String>, JobError> {
        let mut ids = vec![lead.as_str().to_owned()];
        if let Some(item) = self.store.get(&lead_key(page, lead)).await?
            && let Some(found) = Lead::from_item(page, item)
        {
            for other in [found.linked_from(), found.merged_into()]
                .into_iter()
                .flatten()
            {
                if !ids.iter().any(|i| i == other.as_str()) {
                    ids.push(other.as_str().to_owned());
                }
            }
        }
        Ok(ids)
    }

    /// The lead's replies already sent or failed: one bounded page of its reply partition per lead.
    async fn erase_sent_replies(
        &self,
        page: &PageId,
        leads: &[LeadId],
    ) -> Result<(Counts, bool), JobError> {
        let mut keys = Vec::new();
        let mut more = false;
        for lead in leads {
            let found = self
                .store
                .query(&crate::store::Query {
                    index: crate::store::Index::Gsi1,
                    partition: crate::replies::lead_partition(page, lead),
                    range: crate::store::KeyRange::All,
                    order: crate::store::Order::Ascending,
                    limit: SENT_REPLIES_PER_STEP,
                    cursor: None,
                })
                .await?;
            more |= found.next.is_some();
            keys.extend(found.items.iter().map(|r| r.key().clone()));
        }
        self.store.delete_many(&keys).await?;
        let counts = Counts {
            sent_replies: keys.len() as u64,
            ..Counts::default()
        };
        Ok((counts, more))
    }

    /// The lead's delivery records in the page's broadcasts: each read, the existing ones deleted.
    async fn erase_deliveries(&self, page: &PageId, leads: &[LeadId]) -> Result<Counts, JobError> {
        let mut found = Vec::new();
        for lead in leads {
            for key in crate::broadcast::lead_delivery_keys(self.store.as_ref(), page, lead).await?
            {
                if self.store.get(&key).await?.is_some() {
                    found.push(key);
                }
            }
        }
        self.store.delete_many(&found).await?;
        Ok(Counts {
            deliveries: found.len() as u64,
            ..Counts::default()
        })
    }

    /// The leads (created up to the request) with their chains and links; the leads last.
    async fn erase_leads(
        &self,
        page: &PageId,
        leads: &[LeadId],
        requested_at: i64,
    ) -> Result<Counts, JobError> {
        let mut erased = Counts::default();
        let mut owned: Vec<ItemKey> = Vec::new();
        let mut items: Vec<ItemKey> = Vec::new();
        for lead in leads {
            let key = lead_key(page, lead);
            let Some(item) = self.store.get(&key).await? else {
                continue;
            };
            // A new lead of the same person, begun by a message after the erasure, is not erased.
            if item.get_i64("created").unwrap_or(0) > requested_at {
                continue;
            }
            let chain = chain_keys(self.store.as_ref(), page, lead).await?;
            erased.consent_records += chain.len() as u64;
            owned.extend(chain);
            if let Some(link) = link_key(self.store.as_ref(), page, lead.as_str(), &item).await? {
                erased.unsubscribe_links += 1;
                owned.push(link);
            }
            items.push(key);
        }
        self.store.delete_many(&owned).await?;
        self.store.delete_many(&items).await?;
        erased.leads = items.len() as u64;
        Ok(erased)
    }

    /// Releases the parked confirmation reply for notify to send, or closes it when Meta's window has
    /// passed. Returns what became of it (opaque, for the log).
    async fn confirm(&self, params: &Params) -> Result<&'static str, JobError> {
        let Some(id) = params.confirm_reply.as_deref() else {
            return Ok("none");
        };
        let key = reply_key(id);
        let Some(item) = self.store.get(&key).await? else {
            return Ok("gone");
        };
        if item.get_str("state") != Some(HELD) {
            return Ok("already_released");
        }
        let version = item.version().unwrap_or(0);
        let now = self.clock.now();
        let closes =
            Timestamp::from_millis(params.requested_at).plus_secs(CONFIRMATION_WINDOW_HOURS * 3600);
        let (updated, outcome) = released(item, id, now, now >= closes)?;
        match self
            .store
            .put(
                updated.with_version(version + 1),
                Condition::VersionIs(version),
            )
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(outcome),
            Err(e) => Err(e.into()),
        }
    }
}

/// The parked confirmation `item` made due now, or (`closed`: Meta's window has passed) failed as
/// [`OUTSIDE_WINDOW`] with its sealed recipient and text removed.
fn released(
    item: crate::store::Item,
    id: &str,
    now: Timestamp,
    closed: bool,
) -> Result<(crate::store::Item, &'static str), StoreError> {
    if closed {
        let item = item
            .plain("state", Value::S("failed".to_owned()))?
            .plain("failure", Value::S(OUTSIDE_WINDOW.to_owned()))?
            .without("recipient")
            .without("text")
            .without_gsi1();
        return Ok((item, OUTSIDE_WINDOW));
    }
    let item = item
        .plain("state", Value::S("pending".to_owned()))?
        .plain("next_attempt_at", Value::N(now.millis()))?
        .with_gsi1(REPLIES_DUE, due_sort_key(now, id));
    Ok((item, "released"))
}

#[async_trait::async_trait]
impl JobHandler for LeadErasure {
    fn kind(&self) -> &'static str {
        LEAD_ERASURE_JOB
    }

    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
        let (params, page, lead) = parse_params(job)?;
        let mut progress: Progress = match cursor {
            None => Progress {
                phase: Phase::Replies,
                after: None,
                leads: self.subjects(&page, &lead).await?,
                erased: Counts::default(),
            },
            Some(raw) => serde_json::from_str(raw).map_err(|_| malformed_cursor())?,
        };
        let leads: Vec<LeadId> = progress
            .leads
            .iter()
            .map(|l| LeadId::parse(l))
            .collect::<Result<_, _>>()
            .map_err(|_| malformed_cursor())?;
        let ids: BTreeSet<&str> = progress.leads.iter().map(String::as_str).collect();
        let after = progress.after.take();
        let (erased, next) = match progress.phase {
            Phase::Replies => {
                let (deleted, next) =
                    erase_due_replies(self.store.as_ref(), after.as_deref(), |reply| {
                        reply.get_str("page_id") == Some(page.as_str())
                            && reply.get_str("lead_id").is_some_and(|l| ids.contains(l))
                    })
                    .await?;
                let counts = Counts {
                    pending_replies: deleted,
                    ..Counts::default()
                };
                (counts, next)
            }
            Phase::SentReplies => {
                let (counts, more) = self.erase_sent_replies(&page, &leads).await?;
                // More left: the same phase again (an empty marker keeps it from advancing).
                (counts, more.then(String::new))
            }
            Phase::Deliveries => (self.erase_deliveries(&page, &leads).await?, None),
            Phase::Leads => (
                self.erase_leads(&page, &leads, params.requested_at).await?,
                None,
            ),
            Phase::Keys => (self.erase_keys(&page, &leads).await?, None),
            Phase::Confirm => {
                let confirmation = self.confirm(&params).await?;
                let receipt = Receipt {
                    erased: progress.erased,
                    finished_at: self.clock.now().millis(),
                    pages: vec![params.page_id.clone()],
                };
                tracing::info!(
                    job = %job.id,
                    leads = receipt.erased.leads,
                    consent_records = receipt.erased.consent_records,
                    unsubscribe_links = receipt.erased.unsubscribe_links,
                    pending_replies = receipt.erased.pending_replies,
                    sent_replies = receipt.erased.sent_replies,
                    deliveries = receipt.erased.deliveries,
                    lead_keys = receipt.erased.lead_keys,
                    confirmation,
                    "lead erased"
                );
                return Ok(Step::DoneWithReceiptOnly(
                    serde_json::to_string(&receipt).unwrap_or_default(),
                ));
            }
        };
        progress.erased.add(erased);
        tracing::info!(
            job = %job.id,
            leads = erased.leads,
            consent_records = erased.consent_records,
            unsubscribe_links = erased.unsubscribe_links,
            pending_replies = erased.pending_replies,
            sent_replies = erased.sent_replies,
            deliveries = erased.deliveries,
            lead_keys = erased.lead_keys,
            "lead erasure step"
        );
        if next.is_some() {
            progress.after = next;
        } else {
            progress.phase = match progress.phase {
                Phase::Replies => Phase::SentReplies,
                Phase::SentReplies => Phase::Deliveries,
                Phase::Deliveries => Phase::Leads,
                Phase::Leads => Phase::Keys,
                Phase::Keys | Phase::Confirm => Phase::Confirm,
            };
        }
        Ok(Step::Continue(
            serde_json::to_string(&progress).unwrap_or_default(),
        ))
    }
}
