//! The broadcast sender: the job handler of kind [`super::JOB_KIND`]. One step is one batch of the
//! page's subscribed leads (about one second of sending at the page's rate):
//!
//! 1. read the broadcast: finished or cancelled → the job ends; before `send_at` → wait for it;
//! 2. read the page: gone → the broadcast fails; sending stopped → the broadcast is paused and checked
//!    again every [`PAUSED_RECHECK_SECS`] (it resumes once a new token lifts the stop);
//! 3. read the next page of subscribed leads after the broadcast's `progress` (keyset on the index);
//! 4. decide each lead ([`super::eligibility`]); reserve the sends' pace slots with one write;
//! 5. per lead to send, at its slot: claim the delivery record with a conditional write (for a token
//!    send, then set the lead's 48-hour mark, conditional on its version; for an `UPDATE` send, then
//!    read the lead again, so an opt-out stored before that read is kept), send, write the outcome —
//!    two writes and one read per recipient (three writes for a token send);
//! 6. fold the batch's counts and the new progress into the broadcast with one conditional write.
//!
//! At most once per (broadcast, lead): a claim that exists is never sent again. Found without an
//! outcome (a crash or a lost lease between the claim and the outcome), it is recorded `unknown`.
//! Counted once: each record names the batch (`step`) that counted it, and the broadcast how many
//! batches were folded, so a batch re-run after a crash before its fold counts what the first run did
//! exactly once.
//!
//! Meta's errors (MESSENGER.md §3): rate limits, temporary and transport errors are retried
//! ([`SEND_ATTEMPTS`] in all, backing off, a rate limit also holding the page's pace back), then counted
//! failed by class; the person unavailable → the lead becomes `unreachable`; token or permission errors →
//! the page's sending stops with one notice to its account, the claims of that batch not sent are given
//! back, and the broadcast pauses where it was.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::app::{App, account_key_owner};
use crate::clock::Timestamp;
use crate::crypto::field::FORMAT_LEAD_V1;
use crate::crypto::{CryptoError, LeadSecret};
use crate::domain::{AccountId, LeadId, NotificationToken, PageAccessToken, PageId, Psid, UserRef};
use crate::inventory::DELIVERY;
use crate::jobs::{Job, JobError, JobHandler, Step};
use crate::leads::{
    Lead, LeadStatus, UnsubscribeToken, lead_key, record::status_partition, record::status_sort_key,
};
use crate::messenger::{MessagingType, OutgoingMessage, QuickReply, Recipient, SendError};
use crate::outbox::{Notice, notice_op};
use crate::pages::{page_key, stop_reason};
use crate::store::{
    Condition, Cursor, Index, Item, ItemKey, KeyRange, Order, Query, StoreError, Value, WriteOp,
};

use super::BroadcastError;
use super::draft::UrlButton;
use super::eligibility::{AudienceFilter, Decision, Via, decide};
use super::model::{BroadcastId, Counts, FailClass, SkipReason, State};
use super::pace::{self, Sleeper};
use super::record::{JobParams, Stored, broadcast_key};

/// The payload of the Unsubscribe quick reply every broadcast message carries, titled in the page's
/// language ([`crate::bot_texts`]); the webhook treats it as STOP (its `keywords::UNSUBSCRIBE`).
pub const UNSUBSCRIBE_PAYLOAD: &str = "QCHAT_UNSUBSCRIBE";
/// Room a draft's text must leave for the footer the sender adds (how to stop, the `/u/{token}` link).
pub const FOOTER_RESERVE: usize = 200;

/// The longest text a draft may have (UTF-16 units, as Meta counts): the Send API's limit (the button
/// template's with buttons) less [`FOOTER_RESERVE`].
pub fn text_limit(with_buttons: bool) -> usize {
    let meta = if with_buttons {
        crate::messenger::BUTTON_TEXT_MAX
    } else {
        crate::messenger::TEXT_MAX
    };
    meta - FOOTER_RESERVE
}
/// Send attempts per message for passing errors (rate limits, temporary, transport).
pub const SEND_ATTEMPTS: u32 = 3;
/// Messages in flight at once, per runner.
pub const MAX_IN_FLIGHT: usize = 32;
/// How often a paused broadcast looks at its page again.
pub const PAUSED_RECHECK_SECS: i64 = 300;
/// Delivery records expire this long after they are written (SPEC §3).
pub const DELIVERY_DAYS: i64 = 30;
/// A page whose pace is reserved further ahead than this (other broadcasts) makes this one wait for a
/// later run instead of sleeping in the step.
const PACE_AHEAD_LIMIT_MS: i64 = 2000;
const RETRY_BASE_MS: u64 = 250;
const MAX_RETRY_WAIT_MS: u64 = 1000;

fn batch_size(rate: u32) -> usize {
    usize::try_from(rate).unwrap_or(usize::MAX).clamp(10, 250)
}

/// The partition of the delivery records of one broadcast.
pub fn deliveries_partition(page: &PageId, broadcast: &BroadcastId) -> String {
    format!("BDELIV#{page}#{broadcast}")
}

/// The key of the delivery record of `lead` in `broadcast`.
pub fn delivery_key(
    page: &PageId,
    broadcast: &BroadcastId,
    lead: &crate::domain::LeadId,
) -> ItemKey {
    ItemKey::new(
        deliveries_partition(page, broadcast),
        format!("LEAD#{lead}"),
    )
}

/// The job handler.
#[derive(Debug, Clone)]
pub struct BroadcastJob {
    app: App,
    sleeper: Arc<dyn Sleeper>,
}

impl BroadcastJob {
    pub(crate) fn new(app: App, sleeper: Arc<dyn Sleeper>) -> Self {
        Self { app, sleeper }
    }
}

#[async_trait::async_trait]
impl JobHandler for BroadcastJob {
    fn kind(&self) -> &'static str {
        super::JOB_KIND
    }

    #[tracing::instrument(name = "broadcast.step", skip_all, fields(job = %job.id))]
    async fn step(&self, job: &Job, _cursor: Option<&str>) -> Result<Step, JobError> {
        let params: JobParams = serde_json::from_str(&job.params)
            .map_err(|_| JobError::Permanent("malformed broadcast job parameters"))?;
        let (Ok(page), Some(id)) = (
            PageId::parse(&params.page),
            BroadcastId::parse(&params.broadcast),
        ) else {
            return Err(JobError::Permanent("malformed broadcast job parameters"));
        };
        // The broadcast item holds the authoritative progress; the job's cursor only mirrors it.
        self.run(&page, &id).await.map_err(|e| match e {
            BroadcastError::Store(s) => JobError::from(s),
            other => JobError::Retry(Box::new(other)),
        })
    }
}

/// What one lead came to in a batch.
#[derive(Debug)]
enum Tally {
    Sent,
    Skip(SkipReason),
    Fail(FailClass),
    Unknown,
    /// Its record was counted by an earlier, folded batch.
    AlreadyCounted,
    /// Not sent because the page stopped (the claim given back): retried after the resume.
    Released(FailClass),
    /// Not attempted: the sender fell too far behind its pace slots; the next batch takes it.
    Deferred,
}

/// What the tasks of a batch share.
#[derive(Debug)]
struct Batch {
    app: App,
    sleeper: Arc<dyn Sleeper>,
    page: PageId,
    account: AccountId,
    broadcast: BroadcastId,
    token: PageAccessToken,
    text: String,
    buttons: Vec<UrlButton>,
    filter: AudienceFilter,
    indexer: crate::crypto::BlindIndexer,
    public_url: String,
    /// The page's language: the footer and the Unsubscribe quick reply are in it.
    lang: crate::i18n::Lang,
    /// Batches folded into the broadcast so far; this batch is `folded + 1`.
    folded: i64,
}

impl Batch {
    fn step(&self) -> i64 {
        self.folded + 1
    }
    fn owner(&self) -> String {
        account_key_owner(&self.account)
    }
}

impl BroadcastJob {
    async fn save(&self, stored: &Stored) -> Result<(), BroadcastError> {
        let version = stored.item.version().unwrap_or(0);
        let item = stored.updated_item()?;
        match self
            .app
            .store
            .put(item, Condition::VersionIs(version))
            .await
        {
            Ok(()) => Ok(()),
            // Cancelled or advanced meanwhile: the next step reads it again.
            Err(StoreError::ConditionFailed) => Err(BroadcastError::Conflict),
            Err(e) => Err(e.into()),
        }
    }

    async fn run(&self, page: &PageId, id: &BroadcastId) -> Result<Step, BroadcastError> {
        let now = self.app.clock.now();
        let Some(item) = self.app.store.get(&broadcast_key(page, id)).await? else {
            return Ok(Step::Done);
        };
        let Some(mut stored) = Stored::from_item(page, item) else {
            return Ok(Step::Done);
        };
        if stored.state.is_finished() {
            return Ok(Step::Done);
        }
        let progress = stored.progress.clone().unwrap_or_default();
        if now < stored.send_at {
            return Ok(Step::ResumeAt(progress, stored.send_at));
        }
        let page_item = self
            .app
            .store
            .get(&page_key(page))
            .await?
            .filter(|p| p.get_str("account_id") == Some(stored.account.as_str()));
        let Some(page_item) = page_item else {
            stored.state = State::Failed;
            stored.pause_reason = Some("page_gone".to_owned());
            stored.ended_at = Some(now);
            self.save(&stored).await?;
            tracing::info!(broadcast = %id, "broadcast failed: its page is gone");
            return Ok(Step::Done);
        };
        if page_item.get_str("sending") == Some("stopped") {
            return self.pause(stored, now, progress).await;
        }
        let rate = pace::rate_of(&page_item);
        let pace_state = pace::read(self.app.store.as_ref(), page).await?;
        if pace_state.next_free_at > now.plus_millis(PACE_AHEAD_LIMIT_MS) {
            return Ok(Step::ResumeAt(progress, pace_state.next_free_at));
        }
        let draft = stored.draft(&self.app.keys).await?;
        let indexer = self.app.keys.blind_indexer().await?;
        let filter = AudienceFilter::new(&indexer, page, &draft.audience);
        let total = if stored.steps == 0 && stored.counts.processed() == 0 {
            Some(self.count_subscribed(page, &filter).await?)
        } else {
            None
        };
        let cursor = stored.progress.as_deref().map(Cursor::parse).transpose()?;
        let result = self
            .app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: status_partition(page, LeadStatus::Subscribed),
                range: match filter.since {
                    Some(since) => KeyRange::AtLeast(since.sort_key()),
                    None => KeyRange::All,
                },
                order: Order::Ascending,
                limit: batch_size(rate),
                cursor,
            })
            .await?;
        let token = self.page_token(&stored.account, page, &page_item).await?;
        let batch = Arc::new(Batch {
            app: self.app.clone(),
            sleeper: self.sleeper.clone(),
            page: page.clone(),
            account: stored.account.clone(),
            broadcast: id.clone(),
            token,
            text: draft.text,
            buttons: draft.buttons,
            filter,
            indexer,
            public_url: self.app.config.public_url.trim_end_matches('/').to_owned(),
            lang: crate::bot_texts::page_lang(&page_item),
            folded: stored.steps,
        });
        let afters: Vec<String> = result
            .items
            .iter()
            .map(|i| Cursor::after(i, Index::Gsi1).as_str().to_owned())
            .collect();
        let tallies = self.send_batch(&batch, result.items, rate, now).await?;

        let mut counts = Counts::default();
        let mut released_at = None;
        let mut stop = None;
        for (i, tally) in tallies.iter().enumerate() {
            match tally {
                Tally::Sent => counts.sent += 1,
                Tally::Skip(r) => counts.skip(*r),
                Tally::Fail(c) => counts.fail(*c),
                Tally::Unknown => counts.unknown += 1,
                Tally::AlreadyCounted => {}
                Tally::Released(class) => {
                    released_at.get_or_insert(i);
                    stop.get_or_insert(*class);
                }
                Tally::Deferred => {
                    released_at.get_or_insert(i);
                }
            }
        }
        let (new_progress, finished) = match released_at {
            Some(0) => (stored.progress.clone(), false),
            Some(i) => (afters.get(i - 1).cloned(), false),
            None => match &result.next {
                Some(next) => (Some(next.as_str().to_owned()), false),
                None => (afters.last().cloned().or(stored.progress.clone()), true),
            },
        };
        if let Some(class) = stop {
            self.stop_page(page, &stored.account, class, now).await?;
        }
        let outcome = Folded {
            counts,
            total,
            progress: new_progress,
            finished,
            paused: stop.is_some(),
            step: batch.step(),
            now,
        };
        let state = self.fold(page, id, stored, &outcome).await?;
        let progress = outcome.progress.clone().unwrap_or_default();
        tracing::info!(
            broadcast = %id,
            sent = outcome.counts.sent,
            processed = outcome.counts.processed(),
            state = state.name(),
            "broadcast batch done"
        );
        Ok(match state {
            s if s.is_finished() => Step::Done,
            State::Paused => Step::ResumeAt(progress, now.plus_secs(PAUSED_RECHECK_SECS)),
            _ => Step::Continue(progress),
        })
    }

    async fn pause(
        &self,
        mut stored: Stored,
        now: Timestamp,
        progress: String,
    ) -> Result<Step, BroadcastError> {
        let since = stored.paused_at.unwrap_or(now);
        if now >= since.plus_days(super::PAUSE_LIMIT_DAYS) {
            stored.state = State::Failed;
            stored.ended_at = Some(now);
            self.save(&stored).await?;
            return Ok(Step::Done);
        }
        if stored.state != State::Paused {
            stored.state = State::Paused;
            stored.pause_reason = Some("page_stopped".to_owned());
            stored.paused_at = Some(now);
            self.save(&stored).await?;
            tracing::info!(broadcast = %stored.id, "broadcast paused: its page's sending is stopped");
        }
        Ok(Step::ResumeAt(progress, now.plus_secs(PAUSED_RECHECK_SECS)))
    }

    /// How many subscribed leads the audience may reach: read once, when sending starts (for `pending`).
    async fn count_subscribed(
        &self,
        page: &PageId,
        filter: &AudienceFilter,
    ) -> Result<u64, BroadcastError> {
        let mut query = Query {
            index: Index::Gsi1,
            partition: status_partition(page, LeadStatus::Subscribed),
            range: match filter.since {
                Some(since) => KeyRange::AtLeast(since.sort_key()),
                None => KeyRange::All,
            },
            order: Order::Ascending,
            limit: crate::store::MAX_PAGE_LIMIT,
            cursor: None,
        };
        let mut n = 0u64;
        loop {
            let result = self.app.store.query(&query).await?;
            n += result.items.len() as u64;
            match result.next {
                Some(next) => query.cursor = Some(next),
                None => return Ok(n),
            }
        }
    }

    async fn page_token(
        &self,
        account: &AccountId,
        page: &PageId,
        page_item: &Item,
    ) -> Result<PageAccessToken, BroadcastError> {
        let sealed = page_item
            .get_sealed("access_token")
            .ok_or(CryptoError::UnknownFormat)?;
        let plain = self
            .app
            .keys
            .open(
                &account_key_owner(account),
                &page_key(page),
                "access_token",
                &sealed,
            )
            .await?;
        plain
            .as_str()
            .ok()
            .and_then(|t| PageAccessToken::parse(t).ok())
            .ok_or(BroadcastError::Crypto(CryptoError::UnknownFormat))
    }

    /// Decides every lead, reserves the pace slots of the sends, and runs them (claim, send, record),
    /// at most [`MAX_IN_FLIGHT`] at once. Returns one tally per lead, in order.
    async fn send_batch(
        &self,
        batch: &Arc<Batch>,
        items: Vec<Item>,
        rate: u32,
        now: Timestamp,
    ) -> Result<Vec<Tally>, BroadcastError> {
        let mut tallies: Vec<Option<Tally>> = Vec::with_capacity(items.len());
        let mut sends = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let Some(lead) = Lead::from_item(&batch.page, item) else {
                tallies.push(Some(Tally::Skip(SkipReason::Unsubscribed)));
                continue;
            };
            match decide(false, &lead, &batch.filter, now) {
                Decision::Skip(reason) => tallies.push(Some(Tally::Skip(reason))),
                Decision::Send(via) => {
                    tallies.push(None);
                    sends.push((i, lead, via));
                }
            }
        }
        if sends.is_empty() {
            return Ok(tallies
                .into_iter()
                .map(|t| t.unwrap_or(Tally::AlreadyCounted))
                .collect());
        }
        let mut secrets = self.lead_secrets(&batch.page, &sends).await?;
        let start = self.reserve(&batch.page, sends.len(), rate).await?;
        let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let mut tasks = tokio::task::JoinSet::new();
        let mut deferred = false;
        // One pacing loop: each send starts at its slot (no earlier), then runs on its own while the
        // loop waits for the next slot; at most MAX_IN_FLIGHT are under way.
        for (n, (i, lead, via)) in sends.into_iter().enumerate() {
            let slot = pace::slot(start, n, rate);
            let wait = slot.millis() - self.app.clock.now().millis();
            if wait < -pace::CATCH_UP_MS {
                // Too late for this slot (the store or Meta was slow): sending the rest at once
                // would burst above the page's rate, so they wait for the next batch's slots.
                if let Some(t) = tallies.get_mut(i) {
                    *t = Some(Tally::Deferred);
                }
                deferred = true;
                continue;
            }
            if deferred {
                if let Some(t) = tallies.get_mut(i) {
                    *t = Some(Tally::Deferred);
                }
                continue;
            }
            if wait > 0 {
                self.sleeper
                    .sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
                    .await;
            }
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                break;
            };
            let batch = batch.clone();
            let secret = secrets.remove(&lead.id);
            tasks.spawn(async move {
                let _permit = permit;
                (i, deliver(&batch, lead, via, secret.as_ref()).await)
            });
        }
        let mut failure = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((i, Ok(tally))) => {
                    if let Some(slot) = tallies.get_mut(i) {
                        *slot = Some(tally);
                    }
                }
                Ok((_, Err(e))) => failure = Some(e),
                Err(_) => failure = Some(BroadcastError::Conflict),
            }
        }
        if let Some(e) = failure {
            // The batch is re-run: what was recorded is counted then, once.
            return Err(e);
        }
        Ok(tallies
            .into_iter()
            .map(|t| t.unwrap_or(Tally::AlreadyCounted))
            .collect())
    }

    /// The secrets of the leads about to be sent whose values are sealed under their own key (format 2,
    /// [`crate::crypto::FieldCipher::for_lead`]): one key-store `get_many` for the whole batch, none
    /// when no lead needs one.
    async fn lead_secrets(
        &self,
        page: &PageId,
        sends: &[(usize, Lead, Via)],
    ) -> Result<std::collections::HashMap<LeadId, LeadSecret>, BroadcastError> {
        let needed: Vec<LeadId> = sends
            .iter()
            .filter(|(_, lead, _)| {
                ["subject", "marketing_token"].iter().any(|a| {
                    lead.item
                        .get_sealed(a)
                        .is_some_and(|v| v.as_bytes().first() == Some(&FORMAT_LEAD_V1))
                })
            })
            .map(|(_, lead, _)| lead.id.clone())
            .collect();
        if needed.is_empty() {
            return Ok(std::collections::HashMap::new());
        }
        Ok(crate::leads::lookup::secrets(self.app.key_store.as_ref(), page, &needed).await?)
    }

    /// Reserves `n` slots of the page's pace; a few tries against other senders of the page.
    async fn reserve(
        &self,
        page: &PageId,
        n: usize,
        rate: u32,
    ) -> Result<Timestamp, BroadcastError> {
        for _ in 0..10 {
            let state = pace::read(self.app.store.as_ref(), page).await?;
            if let Some(start) = pace::reserve(
                self.app.store.as_ref(),
                page,
                &state,
                self.app.clock.now(),
                n,
                rate,
            )
            .await?
            {
                return Ok(start);
            }
        }
        Err(BroadcastError::Conflict)
    }

    /// Stops the page's sending (token or permission error) and queues ONE notice to its account: the
    /// page write is conditional on its version, so of several senders meeting the error only the first
    /// stops the page and tells the account.
    async fn stop_page(
        &self,
        page: &PageId,
        account: &AccountId,
        class: FailClass,
        now: Timestamp,
    ) -> Result<(), BroadcastError> {
        let reason = match class {
            FailClass::Permission => stop_reason::PERMISSION,
            _ => stop_reason::TOKEN_INVALID,
        };
        let Some(current) = self.app.store.get(&page_key(page)).await? else {
            return Ok(());
        };
        if current.get_str("sending") == Some("stopped")
            || current.get_str("account_id") != Some(account.as_str())
        {
            return Ok(());
        }
        let version = current.version().unwrap_or(0);
        let item = current
            .plain("sending", Value::S("stopped".to_owned()))?
            .plain("stopped_reason", Value::S(reason.to_owned()))?
            .with_version(version + 1);
        let notice = Notice::PageSendingStopped {
            page_id: page.as_str().to_owned(),
            reason: reason.to_owned(),
        };
        let ops = vec![
            WriteOp::Put {
                item,
                condition: Condition::VersionIs(version),
            },
            notice_op(
                &format!("bcast-stop.{page}.{version}"),
                account,
                &notice,
                now,
                None,
            )?,
        ];
        match self.app.store.transact(ops).await {
            Ok(()) => {
                tracing::warn!(page = %page, reason, "page sending stopped by a broadcast; account notified");
                Ok(())
            }
            Err(
                StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
            ) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Folds the batch into the broadcast (one conditional write). A broadcast cancelled meanwhile keeps
    /// its state and gets the batch's counts; one that another runner advanced meanwhile is left alone
    /// (this runner's lease was lost: the job write will fail too).
    async fn fold(
        &self,
        page: &PageId,
        id: &BroadcastId,
        mut stored: Stored,
        folded: &Folded,
    ) -> Result<State, BroadcastError> {
        for _ in 0..5 {
            if stored.steps != folded.step - 1 {
                return Err(BroadcastError::Conflict);
            }
            let version = stored.item.version().unwrap_or(0);
            let next = folded.apply(&stored);
            let item = next.updated_item()?;
            match self
                .app
                .store
                .put(item, Condition::VersionIs(version))
                .await
            {
                Ok(()) => return Ok(next.state),
                Err(StoreError::ConditionFailed) => {
                    let Some(fresh) = self.app.store.get(&broadcast_key(page, id)).await? else {
                        return Ok(State::Cancelled);
                    };
                    stored = Stored::from_item(page, fresh).ok_or(BroadcastError::Conflict)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(BroadcastError::Conflict)
    }
}

/// A batch's result, to fold into the broadcast.
#[derive(Debug)]
struct Folded {
    counts: Counts,
    total: Option<u64>,
    progress: Option<String>,
    finished: bool,
    paused: bool,
    step: i64,
    now: Timestamp,
}

impl Folded {
    fn apply(&self, base: &Stored) -> Stored {
        let mut s = base.clone();
        let pending = self.total.unwrap_or(base.counts.pending);
        s.counts.add(&self.counts);
        s.counts.pending = pending.saturating_sub(self.counts.processed());
        s.steps = self.step;
        s.progress = self.progress.clone();
        if !s.state.is_finished() {
            s.started_at.get_or_insert(self.now);
            if self.paused {
                s.state = State::Paused;
                s.pause_reason = Some("page_stopped".to_owned());
                s.paused_at = Some(self.now);
            } else if self.finished {
                s.state = State::Done;
                s.ended_at = Some(self.now);
                s.counts.pending = 0;
            } else {
                s.state = State::Sending;
                s.pause_reason = None;
                s.paused_at = None;
            }
        }
        s
    }
}

/// Why a claim did not go through.
enum ClaimRefused {
    /// A delivery record for this (broadcast, lead) exists.
    Exists,
    /// The lead changed since it was read.
    LeadChanged,
}

/// Claims, sends and records one lead. Store failures end the batch (it is re-run).
async fn deliver(
    batch: &Batch,
    mut lead: Lead,
    mut via: Via,
    secret: Option<&LeadSecret>,
) -> Result<Tally, BroadcastError> {
    let app = &batch.app;
    for _ in 0..3 {
        let message = match compose(batch, &lead, via, secret).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "a lead's values could not be opened; not sent");
                return Ok(Tally::Fail(FailClass::Unreadable));
            }
        };
        let claimed = match claim(batch, &lead, via).await? {
            Ok(()) => recheck(batch, &lead, via).await?,
            Err(refused) => Err(refused),
        };
        match claimed {
            Ok(()) => {
                let result = send(batch, &message).await;
                return record(batch, &lead, via, result).await;
            }
            Err(ClaimRefused::Exists) => return existing(batch, &lead).await,
            Err(ClaimRefused::LeadChanged) => {
                let Some(fresh) =
                    crate::leads::ops::load(app.store.as_ref(), &batch.page, &lead.id).await?
                else {
                    return Ok(Tally::Skip(SkipReason::Unsubscribed));
                };
                match decide(false, &fresh, &batch.filter, app.clock.now()) {
                    Decision::Skip(reason) => return Ok(Tally::Skip(reason)),
                    Decision::Send(v) => {
                        lead = fresh;
                        via = v;
                    }
                }
            }
        }
    }
    Err(BroadcastError::Conflict)
}

/// The claim: the delivery record (absent before); for a token send, then the lead's 48-hour mark
/// (conditional on the lead as read; a changed lead gives the claim back and is decided again).
async fn claim(
    batch: &Batch,
    lead: &Lead,
    via: Via,
) -> Result<Result<(), ClaimRefused>, BroadcastError> {
    let app = &batch.app;
    let now = app.clock.now();
    let record = Item::new(
        &DELIVERY,
        delivery_key(&batch.page, &batch.broadcast, &lead.id),
    )
    .plain("state", Value::S("claimed".to_owned()))?
    .plain("via", Value::S(via.name().to_owned()))?
    .plain("step", Value::N(batch.step()))?
    .plain("claimed_at", Value::N(now.millis()))?
    .with_version(1)
    .expires_at(now.plus_days(DELIVERY_DAYS));
    // Single-item conditional writes rather than one transaction: a transaction per recipient costs
    // twice the write capacity in DynamoDB, and the emulator's transactions are not safe under
    // concurrency (they roll back by restoring a table copy).
    let key = delivery_key(&batch.page, &batch.broadcast, &lead.id);
    match app.store.put(record, Condition::NotExists).await {
        Ok(()) => {}
        Err(StoreError::ConditionFailed) => return Ok(Err(ClaimRefused::Exists)),
        Err(e) => return Err(e.into()),
    }
    if via == Via::Token {
        // The 48-hour mark, conditional on the lead as read: two broadcasts never both use the token.
        let version = lead.item.version().unwrap_or(0);
        let marked = lead
            .item
            .clone()
            .plain("marketing_last_sent_at", Value::N(now.millis()))?
            .with_version(version + 1);
        match app.store.put(marked, Condition::VersionIs(version)).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => {
                give_back(batch, &key).await?;
                return Ok(Err(ClaimRefused::LeadChanged));
            }
            Err(e) => {
                // Not sent: the claim is given back if the store lets us (else it reads `unknown`).
                let _ = give_back(batch, &key).await;
                return Err(e.into());
            }
        }
    }
    Ok(Ok(()))
}

/// After an `UPDATE` claim: the lead as it is now, read from the table (strongly consistent). The
/// batch came from the status index a moment ago (eventually consistent in DynamoDB), so a person who
/// opted out meanwhile may still be in it; their opt-out is stored before this read or lands after the
/// claim, and only the latter can meet a message already on its way. A changed lead gives the claim
/// back and is decided again. A token claim needs no read: its 48-hour mark is a write conditional on
/// the lead as read. One read rather than a transaction checking the lead with the claim: a
/// transaction costs twice the write capacity of both items, a read a fraction of one write.
async fn recheck(
    batch: &Batch,
    lead: &Lead,
    via: Via,
) -> Result<Result<(), ClaimRefused>, BroadcastError> {
    if via == Via::Token {
        return Ok(Ok(()));
    }
    let app = &batch.app;
    let key = delivery_key(&batch.page, &batch.broadcast, &lead.id);
    let current = match crate::leads::ops::load(app.store.as_ref(), &batch.page, &lead.id).await {
        Ok(current) => current,
        Err(e) => {
            // Not sent: the claim is given back if the store lets us (else it reads `unknown`).
            let _ = give_back(batch, &key).await;
            return Err(e.into());
        }
    };
    let unchanged = current.as_ref().is_some_and(|c| {
        c.item.version() == lead.item.version()
            || decide(false, c, &batch.filter, app.clock.now()) == Decision::Send(via)
    });
    if unchanged {
        return Ok(Ok(()));
    }
    give_back(batch, &key).await?;
    Ok(Err(ClaimRefused::LeadChanged))
}

/// Deletes a claim that was not used.
async fn give_back(batch: &Batch, key: &ItemKey) -> Result<(), BroadcastError> {
    match batch.app.store.delete(key, Condition::VersionIs(1)).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A record found where this batch wanted to claim: counted now unless a folded batch counted it; a
/// claim without an outcome becomes `unknown` (never sent again).
async fn existing(batch: &Batch, lead: &Lead) -> Result<Tally, BroadcastError> {
    let app = &batch.app;
    let key = delivery_key(&batch.page, &batch.broadcast, &lead.id);
    let Some(item) = app.store.get(&key).await? else {
        // Expired between the claim attempt and now: far too old to count again.
        return Ok(Tally::AlreadyCounted);
    };
    let counted_before = item.get_i64("step").unwrap_or(0) <= batch.folded;
    match item.get_str("state") {
        Some("claimed") => {
            let version = item.version().unwrap_or(0);
            let now = app.clock.now();
            let unknown = item
                .plain("state", Value::S("unknown".to_owned()))?
                .plain("step", Value::N(batch.step()))?
                .plain("at", Value::N(now.millis()))?
                .with_version(version + 1);
            match app.store.put(unknown, Condition::VersionIs(version)).await {
                Ok(()) => {
                    tracing::warn!(broadcast = %batch.broadcast, "a claim without an outcome is recorded unknown");
                    Ok(Tally::Unknown)
                }
                // Its sender recorded the outcome meanwhile; that batch counts it.
                Err(StoreError::ConditionFailed) => Ok(Tally::AlreadyCounted),
                Err(e) => Err(e.into()),
            }
        }
        _ if counted_before => Ok(Tally::AlreadyCounted),
        Some("sent") => Ok(Tally::Sent),
        Some("unknown") => Ok(Tally::Unknown),
        Some("skipped") => Ok(item
            .get_str("outcome")
            .and_then(SkipReason::parse)
            .map_or(Tally::AlreadyCounted, Tally::Skip)),
        Some("failed") => Ok(item
            .get_str("outcome")
            .and_then(FailClass::parse)
            .map_or(Tally::AlreadyCounted, Tally::Fail)),
        _ => Ok(Tally::AlreadyCounted),
    }
}

/// Sends, retrying passing errors with backoff; a rate limit also holds the page's pace back.
async fn send(batch: &Batch, message: &OutgoingMessage) -> Result<String, SendError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = batch
            .app
            .messenger
            .send(&batch.page, &batch.token, message)
            .await;
        match result {
            Ok(sent) => return Ok(sent.message_id),
            Err(e) if e.is_retryable() && attempt < SEND_ATTEMPTS => {
                let mut wait = RETRY_BASE_MS << (attempt - 1);
                if let SendError::RateLimited { retry_after, .. } = &e {
                    if let Some(after) = retry_after {
                        wait = wait.max(u64::try_from(after.as_millis()).unwrap_or(u64::MAX));
                    }
                    let until = batch
                        .app
                        .clock
                        .now()
                        .plus_millis(i64::try_from(wait.min(MAX_RETRY_WAIT_MS)).unwrap_or(0));
                    // Best effort: the retry below waits either way.
                    let _ = pace::hold_until(batch.app.store.as_ref(), &batch.page, until).await;
                }
                batch
                    .sleeper
                    .sleep(Duration::from_millis(wait.min(MAX_RETRY_WAIT_MS)))
                    .await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes the outcome on the claimed record (and marks an unreachable person's lead).
async fn record(
    batch: &Batch,
    lead: &Lead,
    via: Via,
    result: Result<String, SendError>,
) -> Result<Tally, BroadcastError> {
    let app = &batch.app;
    let key = delivery_key(&batch.page, &batch.broadcast, &lead.id);
    let now = app.clock.now();
    let (state, outcome, message_id, tally) = match result {
        Ok(mid) => ("sent", None, Some(mid), Tally::Sent),
        Err(e) if e.stops_the_page() => {
            // Not delivered, and the broadcast pauses here: the claim is given back so the lead gets
            // the message once the page is resumed.
            match app.store.delete(&key, Condition::VersionIs(1)).await {
                Ok(()) | Err(StoreError::ConditionFailed) => {}
                Err(e) => return Err(e.into()),
            }
            return Ok(Tally::Released(FailClass::of(&e)));
        }
        Err(e) => {
            let class = FailClass::of(&e);
            if class == FailClass::Unreachable {
                mark_unreachable(batch, lead).await?;
            }
            ("failed", Some(class.name()), None, Tally::Fail(class))
        }
    };
    let mut item = Item::new(&DELIVERY, key)
        .plain("state", Value::S(state.to_owned()))?
        .plain("via", Value::S(via.name().to_owned()))?
        .plain("step", Value::N(batch.step()))?
        .plain("at", Value::N(now.millis()))?
        .with_version(2)
        .expires_at(now.plus_days(DELIVERY_DAYS));
    if let Some(outcome) = outcome {
        item = item.plain("outcome", Value::S(outcome.to_owned()))?;
    }
    if let Some(mid) = message_id {
        item = item.plain("message_id", Value::S(mid))?;
    }
    match app.store.put(item, Condition::VersionIs(1)).await {
        Ok(()) => Ok(tally),
        // Another runner took the job over and recorded this claim `unknown`; it counts it.
        Err(StoreError::ConditionFailed) => Ok(Tally::AlreadyCounted),
        Err(e) => Err(e.into()),
    }
}

/// Meta says the person cannot be reached: the lead becomes `unreachable` (a plain update, no consent
/// record; it leaves the subscribed list). Lost to a concurrent change, it is left as it is.
async fn mark_unreachable(batch: &Batch, lead: &Lead) -> Result<(), BroadcastError> {
    let app = &batch.app;
    let Some(current) = crate::leads::ops::load(app.store.as_ref(), &batch.page, &lead.id).await?
    else {
        return Ok(());
    };
    if current.status != LeadStatus::Subscribed {
        return Ok(());
    }
    let version = current.item.version().unwrap_or(0);
    let item = current
        .item
        .clone()
        .plain(
            "status",
            Value::S(LeadStatus::Unreachable.name().to_owned()),
        )?
        .with_version(version + 1)
        .with_gsi1(
            status_partition(&batch.page, LeadStatus::Unreachable),
            status_sort_key(current.created, &current.id),
        );
    match app.store.put(item, Condition::VersionIs(version)).await {
        Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The message for one lead: the text, the footer saying how to stop, the Unsubscribe quick reply; to
/// the person's id (`UPDATE`) or their marketing-messages token.
async fn compose(
    batch: &Batch,
    lead: &Lead,
    via: Via,
    secret: Option<&LeadSecret>,
) -> Result<OutgoingMessage, CryptoError> {
    let keys = &batch.app.keys;
    let owner = batch.owner();
    let key = lead_key(&batch.page, &lead.id);
    let open = |attr: &'static str| {
        let sealed = lead.item.get_sealed(attr);
        let owner = owner.clone();
        let key = key.clone();
        async move {
            let sealed = sealed.ok_or(CryptoError::UnknownFormat)?;
            let plain = if sealed.as_bytes().first() == Some(&FORMAT_LEAD_V1) {
                // The lead's own key, derived from the (cached) account key and its secret: no KMS
                // call. Without its secret (erased), nothing opens it.
                let secret = secret.ok_or(CryptoError::Undecryptable)?;
                keys.cipher(&owner)
                    .await?
                    .for_lead(secret, lead.id.as_str())?
                    .open(&key, attr, &sealed)?
            } else {
                keys.open(&owner, &key, attr, &sealed).await?
            };
            plain
                .as_str()
                .map(str::to_owned)
                .map_err(|_| CryptoError::UnknownFormat)
        }
    };
    let recipient = match via {
        Via::Update => {
            let subject = open("subject").await?;
            match lead.item.get_str("subject_kind") {
                Some("user_ref") => UserRef::parse(&subject).map(Recipient::UserRef),
                _ => Psid::parse(&subject).map(Recipient::Psid),
            }
            .map_err(|_| CryptoError::UnknownFormat)?
        }
        Via::Token => {
            let token = open("marketing_token").await?;
            NotificationToken::parse(&token)
                .map(Recipient::NotificationToken)
                .map_err(|_| CryptoError::UnknownFormat)?
        }
    };
    let limit = text_limit(!batch.buttons.is_empty()) + FOOTER_RESERVE;
    let link = lead
        .item
        .get_str("unsubscribe_hash")
        .and_then(|h| UnsubscribeToken::rederive(&batch.indexer, &batch.page, &lead.id, h));
    let words = batch.lang.bot();
    let with_link = link.map(|token| {
        let url = format!("{}/u/{}", batch.public_url, token.expose());
        let footer = crate::bot_texts::fill(words.footer_link, &[("link", &url)]);
        format!("{}\n\n{footer}", batch.text)
    });
    // The link where it fits; the quick reply and STOP always work.
    let text = match with_link {
        Some(t) if t.encode_utf16().count() <= limit => t,
        _ => format!("{}\n\n{}", batch.text, words.footer),
    };
    Ok(OutgoingMessage {
        recipient,
        messaging_type: MessagingType::Update,
        text,
        buttons: batch
            .buttons
            .iter()
            .map(|b| crate::messenger::UrlButton {
                title: b.title.clone(),
                url: b.url.clone(),
            })
            .collect(),
        quick_replies: vec![QuickReply {
            title: words.unsubscribe.to_owned(),
            payload: UNSUBSCRIBE_PAYLOAD.to_owned(),
        }],
        metadata: Some(format!("qchat.broadcast.{}", batch.broadcast)),
    })
}
