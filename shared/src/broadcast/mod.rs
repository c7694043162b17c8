//! Broadcasts: a message an account holder sends to a page's leads, within Meta's rules and each person's
//! own choices (SPEC §4 "broadcast", MESSENGER.md §3).
//!
//! - A broadcast is one item under its page ([`record`]): content sealed under the account's key; state,
//!   counts and times plain. [`Broadcasts`] creates, lists, reads, cancels and previews them; every read
//!   checks that the broadcast belongs to the calling account (tenant isolation).
//! - It is sent by one job of kind [`JOB_KIND`] on the shared job mechanism ([`crate::jobs`]): lease,
//!   checkpointed progress over the page's subscribed leads (keyset, the index order), stop before the
//!   deadline, resume. [`Broadcasts::job_handler`] is the handler; see [`sender`] for the rules it keeps.
//! - Eligibility is decided per lead at send time ([`eligibility`]); the pace is per page, shared by
//!   all its broadcasts ([`pace`]).

pub mod draft;
pub mod eligibility;
pub mod model;
pub mod pace;
pub mod record;
pub mod sender;

use std::sync::Arc;

pub use draft::{Audience, Draft, UrlButton};
pub use eligibility::{Decision, Via, optin_ref_index};
pub use model::{
    BroadcastId, BroadcastView, CancelOutcome, Counts, FailClass, Preview, SkipReason, State,
};
pub use pace::{DEFAULT_RATE, MAX_RATE, Sleeper, TokioSleeper};
pub use record::{broadcast_key, page_broadcasts_partition};

use crate::app::{App, account_key_owner};
use crate::crypto::CryptoError;
use crate::domain::{AccountId, PageId};
use crate::jobs::{JobHandler, Jobs};
use crate::leads::{Lead, LeadStatus, record::status_partition};
use crate::pages::page_key;
use crate::store::{Condition, Cursor, Index, KeyRange, Order, Query, StoreError, Value, WriteOp};

use record::{JobParams, Stored};

/// The job kind that sends broadcasts; params `{"page", "broadcast"}`.
pub const JOB_KIND: &str = "broadcast";
/// A paused broadcast (its page stopped) that stays paused this long fails.
pub const PAUSE_LIMIT_DAYS: i64 = 30;
/// The most broadcasts one list page returns.
pub const MAX_LIST_LIMIT: usize = 100;

/// What went wrong; names the part, never a value.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("the store failed")]
    Store(#[from] StoreError),
    #[error("the broadcast's content could not be sealed or opened")]
    Crypto(#[from] CryptoError),
    #[error("the broadcast's content could not be encoded")]
    Encoding,
    /// A list cursor that this code did not give out (the routes answer 400).
    #[error("the cursor is not valid")]
    InvalidCursor,
    #[error("the broadcast kept changing while it was being updated")]
    Conflict,
}

impl BroadcastError {
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_retryable(),
            Self::Conflict => true,
            _ => false,
        }
    }
}

impl From<crate::store::InventoryError> for BroadcastError {
    fn from(e: crate::store::InventoryError) -> Self {
        Self::Store(e.into())
    }
}

impl From<BroadcastError> for crate::http::ApiError {
    fn from(e: BroadcastError) -> Self {
        match e {
            BroadcastError::Store(s) => s.into(),
            BroadcastError::Crypto(c) => c.into(),
            BroadcastError::InvalidCursor => {
                Self::bad_request("invalid_cursor", "the cursor is not valid")
            }
            BroadcastError::Conflict => Self::unavailable(),
            BroadcastError::Encoding => Self::internal(),
        }
    }
}

/// Sets a page's broadcast rate (messages per second, 1 ..= [`MAX_RATE`]; values outside are clamped).
/// The caller has checked that the account owns the page. Returns the rate set, or `None` if the page
/// is not the account's.
pub async fn set_page_rate(
    app: &App,
    account: &AccountId,
    page: &PageId,
    rate: u32,
) -> Result<Option<u32>, BroadcastError> {
    Ok(set_page_settings(app, account, page, Some(rate), None)
        .await?
        .map(|(rate, _)| rate))
}

/// Sets what is given of a page's broadcast rate (clamped as in [`set_page_rate`]) and the language
/// of its Messenger texts, in one conditional write. Returns the page's settings after the write (rate,
/// language), or `None` if the page is not the account's.
pub async fn set_page_settings(
    app: &App,
    account: &AccountId,
    page: &PageId,
    rate: Option<u32>,
    language: Option<crate::i18n::Lang>,
) -> Result<Option<(u32, crate::i18n::Lang)>, BroadcastError> {
    for _ in 0..5 {
        let Some(item) = app.store.get(&page_key(page)).await? else {
            return Ok(None);
        };
        if item.get_str("account_id") != Some(account.as_str()) {
            return Ok(None);
        }
        let version = item.version().unwrap_or(0);
        let mut updated = item;
        if let Some(rate) = rate {
            let rate = rate.clamp(1, MAX_RATE);
            updated = updated.plain("broadcast_rate", Value::N(i64::from(rate)))?;
        }
        if let Some(lang) = language {
            updated = updated.plain(
                crate::bot_texts::PAGE_LANGUAGE_ATTRIBUTE,
                Value::S(lang.code().to_owned()),
            )?;
        }
        let settings = (
            pace::rate_of(&updated),
            crate::bot_texts::page_lang(&updated),
        );
        match app
            .store
            .put(
                updated.with_version(version + 1),
                Condition::VersionIs(version),
            )
            .await
        {
            Ok(()) => return Ok(Some(settings)),
            Err(StoreError::ConditionFailed) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(BroadcastError::Conflict)
}

/// The keys of the delivery records that name `lead` in any of the page's broadcasts (for erasing the
/// lead: one key per broadcast of the page, whether or not a record exists; deleting a missing key is
/// fine). Pages through the page's broadcasts.
pub async fn lead_delivery_keys(
    store: &dyn crate::store::ItemStore,
    page: &PageId,
    lead: &crate::domain::LeadId,
) -> Result<Vec<crate::store::ItemKey>, StoreError> {
    let items = crate::store::query_all(
        store,
        Query {
            index: Index::Table,
            partition: record::partition(page),
            range: KeyRange::Prefix(record::SORT_PREFIX.to_owned()),
            order: Order::Ascending,
            limit: crate::store::MAX_PAGE_LIMIT,
            cursor: None,
        },
    )
    .await?;
    Ok(items
        .iter()
        .filter_map(|i| BroadcastId::parse(i.key().sk.strip_prefix(record::SORT_PREFIX)?))
        .map(|id| sender::delivery_key(page, &id, lead))
        .collect())
}

/// The broadcast operations the routes call, and the sender's job handler.
#[derive(Debug, Clone)]
pub struct Broadcasts {
    app: App,
    jobs: Jobs,
    sleeper: Arc<dyn Sleeper>,
}

impl Broadcasts {
    pub fn new(app: &App) -> Self {
        Self {
            jobs: Jobs::new(
                app.store.clone(),
                app.clock.clone(),
                app.ids.clone(),
                // Queuing only: the lease is the runner's (see `Jobs::run_due` callers).
                900,
            ),
            app: app.clone(),
            sleeper: Arc::new(TokioSleeper),
        }
    }

    /// Replaces how the sender waits for its pace slots and retries (tests advance their clock).
    #[must_use]
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Stores a new broadcast (`scheduled`) and queues its sender, due at `draft.send_at`, in one
    /// transaction. The caller has checked that the account owns the page and that the draft is valid.
    #[tracing::instrument(name = "broadcast.create", skip_all, fields(page = %page))]
    pub async fn create(
        &self,
        account: &AccountId,
        page: &PageId,
        draft: Draft,
    ) -> Result<BroadcastView, BroadcastError> {
        let now = self.app.clock.now();
        let id = BroadcastId::mint(now, &self.app.ids.new_id()).ok_or(BroadcastError::Encoding)?;
        let key = broadcast_key(page, &id);
        let cipher = self.app.keys.cipher(&account_key_owner(account)).await?;
        let content = record::seal_content(&cipher, &key, &draft)?;
        let params = serde_json::to_string(&JobParams {
            page: page.as_str().to_owned(),
            broadcast: id.as_str().to_owned(),
        })
        .map_err(|_| BroadcastError::Encoding)?;
        let (job_id, job) = self.jobs.enqueue_op(JOB_KIND, &params, draft.send_at)?;
        let item = record::new_item(key, account, &draft, content, now, &job_id)?;
        self.app
            .store
            .transact(vec![
                WriteOp::Put {
                    item: item.clone(),
                    condition: Condition::NotExists,
                },
                job,
            ])
            .await?;
        tracing::info!(broadcast = %id, job = %job_id, "broadcast scheduled");
        let stored = Stored::from_item(page, item).ok_or(BroadcastError::Encoding)?;
        Ok(BroadcastView {
            id,
            account: account.clone(),
            page: page.clone(),
            state: State::Scheduled,
            draft,
            created: now,
            started_at: None,
            ended_at: None,
            counts: stored.counts,
            pause_reason: None,
        })
    }

    /// The page's broadcasts of this account, newest first, `limit` (1 ..= [`MAX_LIST_LIMIT`]) a page;
    /// the cursor of the next page if there is one.
    pub async fn list(
        &self,
        account: &AccountId,
        page: &PageId,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<BroadcastView>, Option<String>), BroadcastError> {
        let cursor = cursor
            .map(Cursor::parse)
            .transpose()
            .map_err(|_| BroadcastError::InvalidCursor)?;
        let result = self
            .app
            .store
            .query(&Query {
                index: Index::Table,
                partition: record::partition(page),
                range: KeyRange::Prefix(record::SORT_PREFIX.to_owned()),
                order: Order::Descending,
                limit: limit.clamp(1, MAX_LIST_LIMIT),
                cursor,
            })
            .await;
        let result = match result {
            Err(StoreError::InvalidCursor) => return Err(BroadcastError::InvalidCursor),
            other => other?,
        };
        let mut views = Vec::with_capacity(result.items.len());
        for item in result.items {
            let Some(stored) = Stored::from_item(page, item) else {
                continue;
            };
            if &stored.account != account {
                continue;
            }
            views.push(stored.view(&self.app.keys).await?);
        }
        Ok((views, result.next.map(|c| c.as_str().to_owned())))
    }

    async fn stored(
        &self,
        account: &AccountId,
        page: &PageId,
        id: &BroadcastId,
    ) -> Result<Option<Stored>, BroadcastError> {
        let item = self.app.store.get(&broadcast_key(page, id)).await?;
        Ok(item
            .and_then(|i| Stored::from_item(page, i))
            .filter(|s| &s.account == account))
    }

    /// One broadcast of this account and page; `None` for another account's as for a missing one.
    pub async fn get(
        &self,
        account: &AccountId,
        page: &PageId,
        id: &BroadcastId,
    ) -> Result<Option<BroadcastView>, BroadcastError> {
        match self.stored(account, page, id).await? {
            Some(s) => Ok(Some(s.view(&self.app.keys).await?)),
            None => Ok(None),
        }
    }

    /// Cancels a broadcast that has not finished: nothing more is sent once the sender's current batch
    /// ends (it checks the state before every batch).
    #[tracing::instrument(name = "broadcast.cancel", skip_all, fields(page = %page, broadcast = %id))]
    pub async fn cancel(
        &self,
        account: &AccountId,
        page: &PageId,
        id: &BroadcastId,
    ) -> Result<CancelOutcome, BroadcastError> {
        for _ in 0..5 {
            let Some(mut stored) = self.stored(account, page, id).await? else {
                return Ok(CancelOutcome::NotFound);
            };
            if stored.state.is_finished() {
                return Ok(CancelOutcome::AlreadyFinished(stored.state));
            }
            let version = stored.item.version().unwrap_or(0);
            stored.state = State::Cancelled;
            stored.ended_at = Some(self.app.clock.now());
            let item = stored.updated_item()?;
            match self
                .app
                .store
                .put(item.clone(), Condition::VersionIs(version))
                .await
            {
                Ok(()) => {
                    tracing::info!("broadcast cancelled");
                    let stored = Stored::from_item(page, item).ok_or(BroadcastError::Encoding)?;
                    return Ok(CancelOutcome::Cancelled(Box::new(
                        stored.view(&self.app.keys).await?,
                    )));
                }
                Err(StoreError::ConditionFailed) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(BroadcastError::Conflict)
    }

    /// How many of the page's leads a broadcast to `audience` would reach now, and why the others would
    /// not: every lead of the page is read (paged), nothing is written.
    #[tracing::instrument(name = "broadcast.preview", skip_all, fields(page = %page))]
    pub async fn preview(
        &self,
        account: &AccountId,
        page: &PageId,
        audience: &Audience,
    ) -> Result<Preview, BroadcastError> {
        let page_item = self.app.store.get(&page_key(page)).await?;
        let page_item = page_item.filter(|p| p.get_str("account_id") == Some(account.as_str()));
        let stopped = page_item
            .as_ref()
            .is_none_or(|p| p.get_str("sending") == Some("stopped"));
        let indexer = self.app.keys.blind_indexer().await?;
        let filter = eligibility::AudienceFilter::new(&indexer, page, audience);
        let now = self.app.clock.now();
        let mut preview = Preview::default();
        for status in [
            LeadStatus::Subscribed,
            LeadStatus::Unreachable,
            LeadStatus::Unsubscribed,
            LeadStatus::Pending,
        ] {
            let mut query = Query {
                index: Index::Gsi1,
                partition: status_partition(page, status),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: crate::store::MAX_PAGE_LIMIT,
                cursor: None,
            };
            loop {
                let result = self.app.store.query(&query).await?;
                for item in result.items {
                    let Some(lead) = Lead::from_item(page, item) else {
                        continue;
                    };
                    match eligibility::decide(stopped, &lead, &filter, now) {
                        Decision::Send(via) => {
                            preview.eligible += 1;
                            match via {
                                Via::Update => preview.via_update += 1,
                                Via::Token => preview.via_token += 1,
                            }
                        }
                        Decision::Skip(reason) => {
                            *preview.by_reason.entry(reason.name()).or_default() += 1;
                        }
                    }
                }
                match result.next {
                    Some(next) => query.cursor = Some(next),
                    None => break,
                }
            }
        }
        Ok(preview)
    }

    /// The sender: runs the steps of jobs of kind [`JOB_KIND`] (pass it to [`Jobs::run_due`]).
    pub fn job_handler(&self) -> impl JobHandler + use<> {
        sender::BroadcastJob::new(self.app.clone(), self.sleeper.clone())
    }
}
