//! The erasure of a whole account (SPEC §3 "Erasure", §4 `DELETE /api/account`): a resumable job of
//! bounded, idempotent steps ([`crate::jobs`]: lease, checkpointed cursor, deadline, resume). The job
//! holds ids and counts only (never the address's blind index: the main table, which backups copy, holds
//! no value computable from an address; the job recomputes the index from the sealed address while the
//! profile exists), and the finished job keeps only the counts, as the erasure's receipt, for a year.
//!
//! What the request does before the job runs: in ONE transaction, queues this job and the receipt mail
//! ([`receipt_notice_op`]); then it frees the email claim in the key store (sign-in no longer finds the
//! account) and deletes every session, so the account's sessions stop working at once.
//!
//! The phases, in order ([`Phase`]); each pages through its items with a store cursor, deletes what it
//! found and only then advances the checkpoint, so a step repeated after a crash counts nothing twice:
//! 1. `mail`: the receipt mail goes first. The job waits (released, [`MAIL_POLL_SECS`] at a time) while
//!    the mail is still pending, at most [`MAIL_WAIT_SECS`] after the request. The mail carries its
//!    address sealed under the registrations key, which survives the account, so a mail notify has not
//!    sent by then still goes out after the account and its key are gone.
//! 2. `claim`: frees the email claim in the key store if the request could not (it crashed between its
//!    transaction and the release).
//! 3. `sessions`: every session (the request deleted them; this catches a racing sign-in).
//! 4. `pages`: one page at a time: the page item goes (as a disconnect does), then the page erasure
//!    ([`PageLeadsErasure`]) runs inline, its cursor nested in this one: pending replies, leads with their
//!    consent chains and unsubscribe links, broadcasts with their delivery records, the page's pace, and
//!    its second pass after [`crate::leads::erase::SETTLE_SECS`].
//! 5. `security_log`: the account's security events.
//! 6. `due_notices`: the account's notices not yet sent (the queue, filtered by account).
//! 7. `notices`: its notices sent or failed (filed under the account by notify).
//! 8. `links`: its pending change-of-address and password-reset links.
//! 9. `blind_indexes`: what the key store keeps under the address's blind index: sign-in attempt slots,
//!    mail throttle markers, a mail suppression — unless another account holds the address by then (it
//!    registered again), whose entries these are now.
//! 10. `profile`: the account item (with its policy acceptances) and anything else in its partition.
//! 11. `late_sessions`: sessions again, for a sign-in that raced the claim's removal.
//! 12. `keys`: destroys every version of the account's data key ([`accounts::destroy_account_keys`]);
//!     then the receipt mail's item goes if it was sent or failed, and the receipt is kept.
//!
//! KEPT: the receipts of earlier page erasures (counts, the opaque account id in their params, a year);
//! `reply` items notify already sent (they leave every index once sent, hold values sealed under the
//! destroyed key, and expire 7 days after they were written); a receipt mail notify has not sent yet
//! (its address sealed under the registrations key; it expires with the outbox after 30 days).

use std::sync::Arc;

use crate::accounts::{self, email_claim_key, links_partition, pages_partition, profile_key};
use crate::accounts::{REGISTRATIONS_KEY_OWNER, sessions_partition};
use crate::clock::{Clock, Timestamp};
use crate::crypto::{KeyManager, Sealed};
use crate::domain::{AccountId, PageId};
use crate::jobs::{Job, JobError, JobHandler, Jobs, Step};
use crate::leads::erase::{self as page_erasure, PAGE_LEADS_ERASURE_JOB, PageLeadsErasure};
use crate::outbox::{self, Notice, account_notices_partition, outbox_key, outbox_op};
use crate::pages::page_key;
use crate::store::{
    Condition, Cursor, Index, Item, ItemKey, ItemStore, KeyRange, Order, Query, StoreError,
    WriteOp, query_all,
};

/// The job kind; params [`Params`]. The erase function queues it.
pub const ACCOUNT_ERASURE_JOB: &str = "account_erasure";
/// How long the erasure waits for the receipt mail to go out before it goes on regardless.
pub const MAIL_WAIT_SECS: i64 = 600;
/// How often it looks again meanwhile.
pub const MAIL_POLL_SECS: i64 = 15;
/// Items deleted per step (the store writes them in batches of 25).
pub const ITEMS_PER_STEP: usize = 100;
const SIGNIN_EMAIL_SCOPE: &str = crate::limits::SIGNIN_EMAIL_LIMIT.scope;
/// The mail throttle markers' purposes (`MAILED#<purpose>#<email blind index>`).
const THROTTLE_PURPOSES: &[&str] = &["REGISTER", "RESET"];

/// The job's parameters: an opaque id and a time, nothing personal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Params {
    pub account_id: String,
    /// When the erasure was asked for (ms).
    pub requested_at: i64,
}

/// What an account erasure deleted. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub account: u64,
    pub pages: u64,
    pub leads: u64,
    pub consent_records: u64,
    pub unsubscribe_links: u64,
    pub pending_replies: u64,
    pub broadcasts: u64,
    pub deliveries: u64,
    pub sessions: u64,
    pub security_events: u64,
    pub notices: u64,
    pub links: u64,
    pub blind_index_entries: u64,
    pub data_keys: u64,
}

impl Counts {
    fn add_page(&mut self, page: page_erasure::Counts) {
        self.leads += page.leads;
        self.consent_records += page.consent_records;
        self.unsubscribe_links += page.unsubscribe_links;
        self.pending_replies += page.pending_replies;
        self.broadcasts += page.broadcasts;
        self.deliveries += page.deliveries;
    }
}

/// The receipt the finished job keeps: what was deleted and when it finished. No personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub erased: Counts,
    pub finished_at: i64,
}

impl Receipt {
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }
}

/// The phases, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Mail,
    Claim,
    Sessions,
    Pages,
    SecurityLog,
    DueNotices,
    Notices,
    Links,
    BlindIndexes,
    Profile,
    LateSessions,
    Keys,
}

impl Phase {
    fn next(self) -> Option<Self> {
        Some(match self {
            Self::Mail => Self::Claim,
            Self::Claim => Self::Sessions,
            Self::Sessions => Self::Pages,
            Self::Pages => Self::SecurityLog,
            Self::SecurityLog => Self::DueNotices,
            Self::DueNotices => Self::Notices,
            Self::Notices => Self::Links,
            Self::Links => Self::BlindIndexes,
            Self::BlindIndexes => Self::Profile,
            Self::Profile => Self::LateSessions,
            Self::LateSessions => Self::Keys,
            Self::Keys => return None,
        })
    }
}

/// The page being erased: its id, when its erasure began, and the page erasure's own cursor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PageProgress {
    page_id: String,
    disconnected_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

/// The job cursor.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    page: Option<PageProgress>,
    erased: Counts,
}

impl Progress {
    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

fn malformed_cursor() -> JobError {
    JobError::Permanent("the job cursor is malformed")
}

fn query_error(e: StoreError) -> JobError {
    match e {
        StoreError::InvalidCursor => malformed_cursor(),
        other => other.into(),
    }
}

/// The outbox id of an erasure's receipt mail: derived from the job, so the job finds it.
pub fn receipt_outbox_id(job: &str) -> String {
    format!("{job}.receipt")
}

/// The write that queues the receipt mail of erasure `job`, for the request's transaction. `recipient`
/// is the address sealed under [`REGISTRATIONS_KEY_OWNER`] for the item at
/// `outbox_key(&receipt_outbox_id(job))`, attribute `recipient`: that key outlives the account's.
pub fn receipt_notice_op(
    job: &str,
    recipient: Sealed,
    now: Timestamp,
) -> Result<WriteOp, StoreError> {
    outbox_op(
        &receipt_outbox_id(job),
        None,
        &Notice::AccountErased {
            code: job.to_owned(),
        },
        now,
        Some(recipient),
        None,
    )
}

/// The owner of the key that seals the receipt mail's address.
pub const RECEIPT_KEY_OWNER: &str = REGISTRATIONS_KEY_OWNER;

/// The write that queues the erasure of `account`, for the caller's transaction; and the job id (the
/// receipt's confirmation code).
pub fn enqueue_op(
    jobs: &Jobs,
    account: &AccountId,
    now: Timestamp,
) -> Result<(String, WriteOp), StoreError> {
    let params = Params {
        account_id: account.as_str().to_owned(),
        requested_at: now.millis(),
    };
    let params = serde_json::to_string(&params).unwrap_or_default();
    jobs.enqueue_op(ACCOUNT_ERASURE_JOB, &params, now)
}

/// The keys of every session of `account` (few: one per sign-in, each expiring within 30 days).
pub async fn session_keys(
    store: &dyn ItemStore,
    account: &AccountId,
) -> Result<Vec<ItemKey>, StoreError> {
    let query = Query {
        index: Index::Gsi1,
        ..Query::partition(sessions_partition(account), 100)
    };
    Ok(query_all(store, query)
        .await?
        .iter()
        .map(|i| i.key().clone())
        .collect())
}

/// Runs [`ACCOUNT_ERASURE_JOB`] jobs.
#[derive(Debug, Clone)]
pub struct AccountErasure {
    store: Arc<dyn ItemStore>,
    /// The key store: the email claim and what is keyed by the address's blind index.
    key_store: Arc<dyn ItemStore>,
    clock: Arc<dyn Clock>,
    keys: Arc<KeyManager>,
    pages: PageLeadsErasure,
}

impl AccountErasure {
    pub fn new(
        store: Arc<dyn ItemStore>,
        key_store: Arc<dyn ItemStore>,
        clock: Arc<dyn Clock>,
        keys: Arc<KeyManager>,
    ) -> Self {
        let pages = PageLeadsErasure::new(store.clone(), key_store.clone(), clock.clone());
        Self {
            store,
            key_store,
            clock,
            keys,
            pages,
        }
    }

    /// The blind index of the account's address, recomputed from the sealed address in its profile;
    /// `None` once the profile is gone (or unreadable: nothing can be found by it then).
    async fn email_index(&self, account: &AccountId) -> Result<Option<String>, JobError> {
        let key = profile_key(account);
        let Some(profile) = self.store.get(&key).await? else {
            return Ok(None);
        };
        let Some(sealed) = profile.get_sealed("email") else {
            return Ok(None);
        };
        let owner = crate::app::account_key_owner(account);
        let Ok(email) = self.keys.open(&owner, &key, "email", &sealed).await else {
            return Ok(None);
        };
        let indexer = self
            .keys
            .blind_indexer()
            .await
            .map_err(|e| JobError::Retry(Box::new(e)))?;
        Ok(Some(
            indexer
                .index(accounts::purpose::EMAIL, email.as_bytes())
                .as_str()
                .to_owned(),
        ))
    }

    /// One page of `partition` (from `after`): deletes the items `keep` accepts. Returns how many and
    /// where the next step starts (`None`: the partition is done).
    async fn delete_page(
        &self,
        index: Index,
        partition: String,
        range: KeyRange,
        after: Option<&str>,
        keep: impl Fn(&Item) -> bool,
    ) -> Result<(u64, Option<String>), JobError> {
        let cursor = after
            .map(Cursor::parse)
            .transpose()
            .map_err(|_| malformed_cursor())?;
        let found = self
            .store
            .query(&Query {
                index,
                partition,
                range,
                order: Order::Ascending,
                limit: ITEMS_PER_STEP,
                cursor,
            })
            .await
            .map_err(query_error)?;
        let keys: Vec<ItemKey> = found
            .items
            .iter()
            .filter(|i| keep(i))
            .map(|i| i.key().clone())
            .collect();
        self.store.delete_many(&keys).await?;
        Ok((keys.len() as u64, found.next.map(|c| c.as_str().to_owned())))
    }

    /// Deletes the items at `keys` that exist in `store`; returns how many did.
    async fn delete_existing_in(
        &self,
        store: &dyn ItemStore,
        keys: Vec<ItemKey>,
    ) -> Result<u64, JobError> {
        let mut present = Vec::new();
        for key in keys {
            if store.get(&key).await?.is_some() {
                present.push(key);
            }
        }
        store.delete_many(&present).await?;
        Ok(present.len() as u64)
    }

    /// The `pages` phase: one step of the page being erased, or picks the next page. `None` once no page
    /// of the account is left.
    async fn pages_step(
        &self,
        job: &Job,
        account: &AccountId,
        progress: &mut Progress,
    ) -> Result<Option<Step>, JobError> {
        let Some(mut current) = progress.page.take() else {
            let found = self
                .store
                .query(&Query {
                    index: Index::Gsi1,
                    ..Query::partition(pages_partition(account), 1)
                })
                .await?;
            let Some(item) = found.items.first() else {
                return Ok(None);
            };
            let page_id = item
                .key()
                .pk
                .strip_prefix("PAGE#")
                .unwrap_or_default()
                .to_owned();
            // Recorded before the page item goes, so a crash in between cannot lose the page.
            progress.page = Some(PageProgress {
                page_id,
                disconnected_at: self.clock.now().millis(),
                cursor: None,
            });
            return Ok(Some(Step::Continue(progress.encode())));
        };
        let page = PageId::parse(&current.page_id)
            .map_err(|_| JobError::Permanent("the job cursor is malformed"))?;
        if current.cursor.is_none() {
            let key = page_key(&page);
            if let Some(item) = self.store.get(&key).await?
                && item.get_str("account_id") == Some(account.as_str())
            {
                let condition = item
                    .version()
                    .map_or(Condition::Exists, Condition::VersionIs);
                match self.store.delete(&key, condition).await {
                    Ok(()) | Err(StoreError::ConditionFailed) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let params = page_erasure::Params {
            page_id: current.page_id.clone(),
            account_id: Some(account.as_str().to_owned()),
            disconnected_at: current.disconnected_at,
        };
        let nested = Job {
            id: job.id.clone(),
            kind: PAGE_LEADS_ERASURE_JOB.to_owned(),
            params: serde_json::to_string(&params).unwrap_or_default(),
            due_at: job.due_at,
            attempts: job.attempts,
        };
        Ok(Some(
            match self.pages.step(&nested, current.cursor.as_deref()).await? {
                Step::Continue(cursor) => {
                    current.cursor = Some(cursor);
                    progress.page = Some(current);
                    Step::Continue(progress.encode())
                }
                Step::ResumeAt(cursor, at) => {
                    current.cursor = Some(cursor);
                    progress.page = Some(current);
                    Step::ResumeAt(progress.encode(), at)
                }
                Step::DoneWithReceipt(receipt) | Step::DoneWithReceiptOnly(receipt) => {
                    if let Some(receipt) = page_erasure::Receipt::parse(&receipt) {
                        progress.erased.add_page(receipt.erased);
                    }
                    progress.erased.pages += 1;
                    Step::Continue(progress.encode())
                }
                Step::Done => {
                    progress.erased.pages += 1;
                    Step::Continue(progress.encode())
                }
            },
        ))
    }

    /// The `blind_indexes` phase: the entries keyed by the address's blind index, unless another account
    /// holds the address now.
    async fn erase_blind_indexes(
        &self,
        account: &AccountId,
        email_index: Option<&str>,
    ) -> Result<u64, JobError> {
        let Some(index) = email_index else {
            return Ok(0);
        };
        let claim = self
            .key_store
            .get(&email_claim_key(&crate::crypto::BlindIndex::from_stored(
                index,
            )))
            .await?;
        if claim.is_some_and(|c| c.get_str("account_id") != Some(account.as_str())) {
            return Ok(0);
        }
        let slots = query_all(
            self.key_store.as_ref(),
            Query::partition(format!("{SIGNIN_EMAIL_SCOPE}#{index}"), 100),
        )
        .await?;
        let mut keys: Vec<ItemKey> = slots.iter().map(|i| i.key().clone()).collect();
        let slot_count = keys.len() as u64;
        self.key_store.delete_many(&keys).await?;
        keys = THROTTLE_PURPOSES
            .iter()
            .map(|p| ItemKey::new(format!("MAILED#{p}#{index}"), "MAILED"))
            .collect();
        keys.push(ItemKey::new(format!("NOMAIL#{index}"), "NOMAIL"));
        Ok(slot_count
            + self
                .delete_existing_in(self.key_store.as_ref(), keys)
                .await?)
    }

    async fn run_phase(
        &self,
        job: &Job,
        params: &Params,
        account: &AccountId,
        progress: &mut Progress,
    ) -> Result<Option<Step>, JobError> {
        let after = progress.after.take();
        let after = after.as_deref();
        let (count, next) = match progress.phase {
            Phase::Mail => {
                let mail = self
                    .store
                    .get(&outbox_key(&receipt_outbox_id(&job.id)))
                    .await?;
                let pending = mail.is_some_and(|m| m.get_str("state") == Some("pending"));
                let now = self.clock.now();
                let give_up = Timestamp::from_millis(params.requested_at).plus_secs(MAIL_WAIT_SECS);
                if pending && now < give_up {
                    let again = now.plus_secs(MAIL_POLL_SECS);
                    let at = if again < give_up { again } else { give_up };
                    return Ok(Some(Step::ResumeAt(progress.encode(), at)));
                }
                (0, None)
            }
            Phase::Claim => {
                if let Some(index) = self.email_index(account).await? {
                    let key = email_claim_key(&crate::crypto::BlindIndex::from_stored(&index));
                    let claim = self.key_store.get(&key).await?;
                    if claim.is_some_and(|c| c.get_str("account_id") == Some(account.as_str())) {
                        self.key_store.delete(&key, Condition::Always).await?;
                    }
                }
                (0, None)
            }
            Phase::Sessions | Phase::LateSessions => {
                let (n, next) = self
                    .delete_page(
                        Index::Gsi1,
                        sessions_partition(account),
                        KeyRange::All,
                        after,
                        |_| true,
                    )
                    .await?;
                progress.erased.sessions += n;
                (n, next)
            }
            Phase::Pages => match self.pages_step(job, account, progress).await? {
                Some(step) => return Ok(Some(step)),
                None => (0, None),
            },
            Phase::SecurityLog => {
                let (n, next) = self
                    .delete_page(
                        Index::Table,
                        format!("ACCOUNT#{account}"),
                        KeyRange::Prefix("SEC#".to_owned()),
                        after,
                        |_| true,
                    )
                    .await?;
                progress.erased.security_events += n;
                (n, next)
            }
            Phase::DueNotices => {
                let (n, next) = self
                    .delete_page(
                        Index::Gsi1,
                        outbox::DUE_PARTITION.to_owned(),
                        KeyRange::All,
                        after,
                        |i| i.get_str("account_id") == Some(account.as_str()),
                    )
                    .await?;
                progress.erased.notices += n;
                (n, next)
            }
            Phase::Notices => {
                let (n, next) = self
                    .delete_page(
                        Index::Gsi1,
                        account_notices_partition(account),
                        KeyRange::All,
                        after,
                        |_| true,
                    )
                    .await?;
                progress.erased.notices += n;
                (n, next)
            }
            Phase::Links => {
                let (n, next) = self
                    .delete_page(
                        Index::Gsi1,
                        links_partition(account),
                        KeyRange::All,
                        after,
                        |_| true,
                    )
                    .await?;
                progress.erased.links += n;
                (n, next)
            }
            Phase::BlindIndexes => {
                let index = self.email_index(account).await?;
                let n = self.erase_blind_indexes(account, index.as_deref()).await?;
                progress.erased.blind_index_entries += n;
                (n, None)
            }
            Phase::Profile => {
                let rest = query_all(
                    self.store.as_ref(),
                    Query::partition(format!("ACCOUNT#{account}"), 100),
                )
                .await?;
                let profile = profile_key(account);
                progress.erased.account += u64::from(rest.iter().any(|i| *i.key() == profile));
                progress.erased.security_events +=
                    rest.iter().filter(|i| *i.key() != profile).count() as u64;
                let keys: Vec<ItemKey> = rest.iter().map(|i| i.key().clone()).collect();
                self.store.delete_many(&keys).await?;
                (keys.len() as u64, None)
            }
            Phase::Keys => {
                accounts::destroy_account_keys(&self.keys, account)
                    .await
                    .map_err(|e| JobError::Retry(Box::new(e)))?;
                progress.erased.data_keys = 1;
                // The receipt mail's item goes once its outcome is final; one still pending keeps its
                // sealed address until notify sends it.
                let mail = outbox_key(&receipt_outbox_id(&job.id));
                if let Some(item) = self.store.get(&mail).await?
                    && item.get_str("state") != Some("pending")
                {
                    self.store.delete(&mail, Condition::Always).await?;
                }
                (1, None)
            }
        };
        tracing::info!(job = %job.id, phase = ?progress.phase, deleted = count, "account erasure step");
        if next.is_some() {
            progress.after = next;
            return Ok(Some(Step::Continue(progress.encode())));
        }
        Ok(progress.phase.next().map(|phase| {
            progress.phase = phase;
            Step::Continue(progress.encode())
        }))
    }
}

#[async_trait::async_trait]
impl JobHandler for AccountErasure {
    fn kind(&self) -> &'static str {
        ACCOUNT_ERASURE_JOB
    }

    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
        let params: Params = serde_json::from_str(&job.params)
            .map_err(|_| JobError::Permanent("the job parameters are malformed"))?;
        let account = AccountId::parse(&params.account_id)
            .map_err(|_| JobError::Permanent("the job parameters are malformed"))?;
        let mut progress = match cursor {
            None => Progress {
                phase: Phase::Mail,
                after: None,
                page: None,
                erased: Counts::default(),
            },
            Some(raw) => serde_json::from_str(raw).map_err(|_| malformed_cursor())?,
        };
        if let Some(step) = self
            .run_phase(job, &params, &account, &mut progress)
            .await?
        {
            return Ok(step);
        }
        let receipt = Receipt {
            erased: progress.erased,
            finished_at: self.clock.now().millis(),
        };
        let e = receipt.erased;
        tracing::info!(
            job = %job.id,
            pages = e.pages,
            leads = e.leads,
            consent_records = e.consent_records,
            broadcasts = e.broadcasts,
            deliveries = e.deliveries,
            sessions = e.sessions,
            security_events = e.security_events,
            notices = e.notices,
            "account erased"
        );
        Ok(Step::DoneWithReceipt(
            serde_json::to_string(&receipt).unwrap_or_default(),
        ))
    }
}
