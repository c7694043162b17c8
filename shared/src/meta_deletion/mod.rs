//! Meta's data-deletion callback (MESSENGER.md §4, SPEC §4 "erase"): a person removed the app and asked
//! for their data to be deleted; Meta names them by their app-scoped id in a `signed_request`.
//!
//! The callback verifies the request ([`signed_request`]) and queues ONE job ([`enqueue`]), answering at
//! once: which pages the person is on is not known (an app-scoped id is not a PSID), so the job asks, for
//! every connected page of every account, Meta's `ids_for_pages` with that page's token
//! ([`crate::messenger::Messenger::ids_for_pages`]), and queues the erasure of each lead found — work
//! bounded by the number of pages, which no request's 29 s could promise. The job's id is the
//! confirmation code; its receipt (counts, no personal data) is what `GET /deletion/{code}` shows.
//!
//! Invariants:
//! - The app-scoped id is stored only sealed, in its own item ([`META_DELETION_SUBJECT`]) under a system
//!   data key ([`SUBJECT_KEY_OWNER`]), never in the job's params, cursor or receipt; the job deletes
//!   that item as soon as the mapping is done, and its TTL removes it even if the job never runs.
//! - A page whose token Meta refuses (or whose token cannot be opened) is skipped and counted in the
//!   receipt (`pages_skipped`); it never fails the request. Meta unavailable: the step is retried a few
//!   times, then the page is skipped the same way.
//! - The receipt says "completed" only once every lead erasure it queued has finished.
//! - A request about a person qchat holds nothing of gets the same answer and a receipt with zero
//!   counts; a second request for the same person queues a second, harmless job.
//! - Each lead found is frozen and its erasure queued as the account holder's request does
//!   ([`crate::leads::erase_lead::request_ops`], origin `meta`); a lead whose erasure is already queued is
//!   waited for, not queued twice. The erasure runner runs both jobs.

pub mod signed_request;

use crate::accounts::ALL_ACCOUNTS_PARTITION;
use crate::app::{App, account_key_owner};
use crate::clock::Timestamp;
use crate::crypto::CryptoError;
use crate::domain::{AccountId, AppScopedUserId, PageAccessToken, PageId};
use crate::inventory::META_DELETION_SUBJECT;
use crate::jobs::{Job, JobError, JobHandler, Jobs, Step};
use crate::leads::erase_lead::{self, Origin};
use crate::leads::find_lead;
use crate::leads::record::{Lead, Subject, lead_key};
use crate::meta_secrets::MetaSecretCache;
use crate::pages::page_key;
use crate::store::{
    Condition, Cursor, Index, Item, ItemKey, KeyRange, Order, Query, StoreError, WriteOp, query_all,
};

pub use signed_request::{DeletionRequest, SignedRequestError};

/// The job kind; its params hold only when Meta issued the request.
pub const META_DELETION_JOB: &str = "meta_data_deletion";
/// The data-key owner the app-scoped ids waiting for their job are sealed under.
pub const SUBJECT_KEY_OWNER: &str = "system:meta-deletion";
/// The sealed app-scoped id expires this long after the request even if no job ever reads it.
pub const SUBJECT_TTL_DAYS: i64 = 7;
/// Accounts whose pages one step asks Meta about (each page one Graph call of at most 15 s): a
/// step stays well inside the runner's lease.
pub const ACCOUNTS_PER_STEP: usize = 5;
/// How often a step that met Meta unavailable is retried before that page is skipped.
pub const UNAVAILABLE_RETRIES: i64 = 3;
/// How long the job waits between looks at the lead erasures it queued.
pub const WAIT_SECS: i64 = 60;
/// The lease used where this module queues or looks at jobs (the erasure runner holds its own).
const JOB_LEASE_SECS: i64 = 15 * 60;

fn subject_key(job_id: &str) -> ItemKey {
    ItemKey::new(format!("METADEL#{job_id}"), "SUBJECT")
}

fn jobs(app: &App) -> Jobs {
    Jobs::new(
        app.store.clone(),
        app.clock.clone(),
        app.ids.clone(),
        JOB_LEASE_SECS,
    )
}

/// Why a callback could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error(transparent)]
    Refused(#[from] SignedRequestError),
    /// No app secret to check the signature with (not configured, or the secret store unreachable).
    #[error("the app secret is not available")]
    NoSecret(#[source] crate::meta_secrets::SecretsError),
    #[error("the request could not be sealed")]
    Crypto(#[from] CryptoError),
    #[error("the request could not be queued")]
    Store(#[from] StoreError),
}

/// Verifies `raw` with the app secret `secrets` holds; a signature that does not match is checked once
/// more against a newer secret, if the secret store holds one (the secret was rotated).
///
/// # Errors
/// The rule `raw` breaks, or no app secret.
pub async fn verify(
    secrets: &MetaSecretCache,
    raw: &str,
    now: Timestamp,
) -> Result<DeletionRequest, CallbackError> {
    use secrecy::ExposeSecret as _;
    let current = secrets.current().await.map_err(CallbackError::NoSecret)?;
    let first = signed_request::verify(current.app_secret().expose_secret().as_bytes(), raw, now);
    match first {
        Err(SignedRequestError::BadSignature) => match secrets.newer_than(&current).await {
            Some(newer) => Ok(signed_request::verify(
                newer.app_secret().expose_secret().as_bytes(),
                raw,
                now,
            )?),
            None => Err(SignedRequestError::BadSignature.into()),
        },
        other => Ok(other?),
    }
}

/// Queues the job that carries out `request`, with the sealed app-scoped id beside it, in one
/// transaction. Returns the job's id: the confirmation code.
///
/// # Errors
/// The keyring's or the store's.
pub async fn enqueue(app: &App, request: &DeletionRequest) -> Result<String, CallbackError> {
    let now = app.clock.now();
    let cipher = match app.keys.cipher(SUBJECT_KEY_OWNER).await {
        Err(CryptoError::NoKey) => {
            app.keys.create(SUBJECT_KEY_OWNER).await?;
            app.keys.cipher(SUBJECT_KEY_OWNER).await?
        }
        other => other?,
    };
    let params = serde_json::json!({ "issued_at": request.issued_at.secs() });
    let (id, job) = jobs(app).enqueue_op(META_DELETION_JOB, &params.to_string(), now)?;
    let key = subject_key(&id);
    let sealed = cipher.seal(&key, "user_id", request.user.expose().as_bytes())?;
    let subject = Item::new(&META_DELETION_SUBJECT, key)
        .sealed("user_id", sealed)
        .map_err(StoreError::from)?
        .expires_at(now.plus_days(SUBJECT_TTL_DAYS));
    app.store
        .transact(vec![
            job,
            WriteOp::Put {
                item: subject,
                condition: Condition::NotExists,
            },
        ])
        .await?;
    Ok(id)
}

/// Where the job stands (its cursor, JSON): ids, a store cursor and counts only.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Progress {
    /// Mapping done: waiting for the queued lead erasures.
    #[serde(default)]
    waiting: bool,
    /// Where the next step resumes in the list of accounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    accounts: Option<String>,
    #[serde(default)]
    counts: Counts,
    /// The lead erasures queued and not yet seen finished.
    #[serde(default)]
    pending: Vec<String>,
    /// The pages the person was found on (page ids, not personal), for the receipt.
    #[serde(default)]
    pages: Vec<String>,
}

/// What the job did. Counts only.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    /// Pages Meta was asked about.
    pub pages_checked: u64,
    /// Pages that could not be asked (token refused, unreadable, Meta unavailable).
    pub pages_skipped: u64,
    /// Leads of the person found and erased.
    pub leads: u64,
}

/// The receipt the job leaves (shape shared with every erasure's: `erased` counts, `finished_at`,
/// `pages`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub erased: Erased,
    pub pages_checked: u64,
    pub pages_skipped: u64,
    /// When the job finished (ms).
    pub finished_at: i64,
    /// The pages the person's data was found and erased on, in the order found. A page id is not
    /// personal, and the receipt is kept under its code alone, with nothing naming the person; the
    /// status page shows the person (who holds the code) the names of these pages.
    #[serde(default)]
    pub pages: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Erased {
    pub leads: u64,
}

impl Receipt {
    pub fn parse(raw: &str) -> Option<Self> {
        serde_json::from_str(raw).ok()
    }
}

/// Runs [`META_DELETION_JOB`]s.
#[derive(Clone)]
pub struct MetaDeletion {
    app: App,
}

impl std::fmt::Debug for MetaDeletion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaDeletion").finish_non_exhaustive()
    }
}

/// What asking about one page gave.
enum PageOutcome {
    Checked(Vec<Lead>),
    Skipped,
    /// Meta could not answer now: retry the step.
    Unavailable,
}

impl MetaDeletion {
    pub fn new(app: App) -> Self {
        Self { app }
    }

    async fn subject(&self, job: &Job) -> Result<Option<AppScopedUserId>, JobError> {
        let key = subject_key(&job.id);
        let Some(item) = self.app.store.get(&key).await? else {
            return Ok(None);
        };
        let sealed = item
            .get_sealed("user_id")
            .ok_or(JobError::Permanent("the request's subject is malformed"))?;
        let plain = self
            .app
            .keys
            .open(SUBJECT_KEY_OWNER, &key, "user_id", &sealed)
            .await
            .map_err(|e| JobError::Retry(Box::new(e)))?;
        let user = plain
            .as_str()
            .ok()
            .and_then(|s| AppScopedUserId::parse(s).ok())
            .ok_or(JobError::Permanent("the request's subject is malformed"))?;
        Ok(Some(user))
    }

    async fn token_of(
        &self,
        account: &AccountId,
        page: &PageId,
        item: &Item,
    ) -> Option<PageAccessToken> {
        let sealed = item.get_sealed("access_token")?;
        let plain = self
            .app
            .keys
            .open(
                &account_key_owner(account),
                &page_key(page),
                "access_token",
                &sealed,
            )
            .await
            .ok()?;
        plain
            .as_str()
            .ok()
            .and_then(|t| PageAccessToken::parse(t).ok())
    }

    /// Asks Meta for the person's ids on one page and keeps the leads qchat holds of them.
    async fn ask(
        &self,
        user: &AppScopedUserId,
        account: &AccountId,
        item: &Item,
    ) -> Result<PageOutcome, JobError> {
        let Some(page) = item
            .key()
            .pk
            .strip_prefix("PAGE#")
            .and_then(|p| PageId::parse(p).ok())
        else {
            return Ok(PageOutcome::Skipped);
        };
        let Some(token) = self.token_of(account, &page, item).await else {
            return Ok(PageOutcome::Skipped);
        };
        let psids = match self.app.messenger.ids_for_pages(user, &page, &token).await {
            Ok(psids) => psids,
            Err(e) if e.is_retryable() => return Ok(PageOutcome::Unavailable),
            Err(_) => return Ok(PageOutcome::Skipped),
        };
        let mut leads = Vec::new();
        for psid in psids {
            // Lead ids are random: the person's lookup in the key store names the lead, if any.
            let Some(lead) = find_lead(&self.app, &page, &Subject::Psid(psid))
                .await
                .map_err(|e| JobError::Retry(Box::new(e)))?
            else {
                continue;
            };
            if let Some(item) = self.app.store.get(&lead_key(&page, &lead)).await?
                && let Some(lead) = Lead::from_item(&page, item)
            {
                leads.push(lead);
            }
        }
        Ok(PageOutcome::Checked(leads))
    }

    async fn map_step(&self, job: &Job, mut progress: Progress) -> Result<Step, JobError> {
        let Some(user) = self.subject(job).await? else {
            // The subject is gone (its TTL passed before any runner got here): nothing left to map.
            progress.waiting = true;
            progress.accounts = None;
            return Ok(Step::Continue(cursor_text(&progress)?));
        };
        let cursor = progress
            .accounts
            .as_deref()
            .map(Cursor::parse)
            .transpose()
            .map_err(|_| JobError::Permanent("the job cursor is malformed"))?;
        let accounts = self
            .app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: ALL_ACCOUNTS_PARTITION.to_owned(),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: ACCOUNTS_PER_STEP,
                cursor,
            })
            .await?;
        // Ask about every page of the step before writing anything: a step retried because Meta was
        // unavailable then queues nothing twice.
        let mut found: Vec<Lead> = Vec::new();
        let mut unavailable = 0u64;
        let mut counts = progress.counts;
        for account_item in &accounts.items {
            let Some(account) = account_item
                .key()
                .pk
                .strip_prefix("ACCOUNT#")
                .and_then(|a| AccountId::parse(a).ok())
            else {
                continue;
            };
            let pages = query_all(
                self.app.store.as_ref(),
                Query {
                    index: Index::Gsi1,
                    partition: format!("ACCOUNT#{account}#PAGES"),
                    range: KeyRange::All,
                    order: Order::Ascending,
                    limit: 100,
                    cursor: None,
                },
            )
            .await?;
            for page_item in &pages {
                match self.ask(&user, &account, page_item).await? {
                    PageOutcome::Checked(leads) => {
                        counts.pages_checked += 1;
                        found.extend(leads);
                    }
                    PageOutcome::Unavailable => unavailable += 1,
                    PageOutcome::Skipped => counts.pages_skipped += 1,
                }
            }
        }
        if unavailable > 0 && job.attempts < UNAVAILABLE_RETRIES {
            return Err(JobError::Retry(
                "Meta could not answer ids_for_pages now".into(),
            ));
        }
        counts.pages_skipped += unavailable;
        let now = self.app.clock.now();
        let jobs = jobs(&self.app);
        for lead in found {
            let page = lead.page.as_str().to_owned();
            if let Some(id) = self.request_erasure(&jobs, lead, now).await? {
                if !progress.pages.contains(&page) {
                    progress.pages.push(page);
                }
                progress.pending.push(id);
                counts.leads += 1;
            }
        }
        progress.counts = counts;
        match accounts.next {
            Some(next) => progress.accounts = Some(next.as_str().to_owned()),
            None => {
                progress.accounts = None;
                progress.waiting = true;
                // The mapping is done: the app-scoped id goes at once.
                self.app
                    .store
                    .delete(&subject_key(&job.id), Condition::Always)
                    .await?;
            }
        }
        tracing::info!(
            job = %job.id,
            pages_checked = progress.counts.pages_checked,
            pages_skipped = progress.counts.pages_skipped,
            leads = progress.counts.leads,
            "data-deletion request mapped"
        );
        Ok(Step::Continue(cursor_text(&progress)?))
    }

    /// Freezes `lead` and queues its erasure (or finds the erasure already queued for it); the erasure's
    /// job id, or `None` when the lead is gone meanwhile. A lead written between the read and the
    /// transaction is read again.
    async fn request_erasure(
        &self,
        jobs: &Jobs,
        mut lead: Lead,
        now: Timestamp,
    ) -> Result<Option<String>, JobError> {
        for _ in 0..5 {
            if let Some(job) = erase_lead::requested_job(&lead) {
                return Ok(Some(job.to_owned()));
            }
            let (job, ops) = erase_lead::request_ops(jobs, &lead, Origin::Meta, now)?;
            match self.app.store.transact(ops).await {
                Ok(()) => return Ok(Some(job)),
                Err(
                    StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
                ) => {}
                Err(e) => return Err(e.into()),
            }
            let key = lead_key(&lead.page, &lead.id);
            match self.app.store.get(&key).await? {
                Some(item) => match Lead::from_item(&lead.page, item) {
                    Some(again) => lead = again,
                    None => return Ok(None),
                },
                None => return Ok(None),
            }
        }
        Err(JobError::Retry(
            "a lead kept changing while its erasure was queued".into(),
        ))
    }

    async fn wait_step(&self, mut progress: Progress) -> Result<Step, JobError> {
        let jobs = jobs(&self.app);
        let mut still = Vec::new();
        for id in std::mem::take(&mut progress.pending) {
            if jobs.is_pending(&id).await? {
                still.push(id);
            }
        }
        progress.pending = still;
        let now = self.app.clock.now();
        if progress.pending.is_empty() {
            let receipt = Receipt {
                erased: Erased {
                    leads: progress.counts.leads,
                },
                pages_checked: progress.counts.pages_checked,
                pages_skipped: progress.counts.pages_skipped,
                finished_at: now.millis(),
                pages: std::mem::take(&mut progress.pages),
            };
            let text = serde_json::to_string(&receipt)
                .map_err(|_| JobError::Permanent("the receipt could not be written"))?;
            return Ok(Step::DoneWithReceipt(text));
        }
        Ok(Step::ResumeAt(
            cursor_text(&progress)?,
            now.plus_secs(WAIT_SECS),
        ))
    }
}

fn cursor_text(progress: &Progress) -> Result<String, JobError> {
    serde_json::to_string(progress)
        .map_err(|_| JobError::Permanent("the cursor could not be written"))
}

#[async_trait::async_trait]
impl JobHandler for MetaDeletion {
    fn kind(&self) -> &'static str {
        META_DELETION_JOB
    }

    async fn step(&self, job: &Job, cursor: Option<&str>) -> Result<Step, JobError> {
        let progress: Progress = match cursor {
            None => Progress::default(),
            Some(raw) => serde_json::from_str(raw)
                .map_err(|_| JobError::Permanent("the job cursor is malformed"))?,
        };
        if progress.waiting {
            self.wait_step(progress).await
        } else {
            self.map_step(job, progress).await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use secrecy::SecretString;
    use serde_json::json;

    use super::*;
    use crate::clock::ManualClock;
    use crate::meta_secrets::{MetaSecretSource, MetaSecrets, SecretCachePolicy, SecretsError};

    const NOW: Timestamp = Timestamp::from_secs(1_800_000_000);

    /// The secret store, whose app secret a test rotates.
    #[derive(Debug)]
    struct Rotating(Mutex<String>);

    #[async_trait::async_trait]
    impl MetaSecretSource for Rotating {
        async fn fetch(&self) -> Result<MetaSecrets, SecretsError> {
            let secret = self
                .0
                .lock()
                .map_err(|_| SecretsError::NotConfigured)?
                .clone();
            MetaSecrets::new(SecretString::from(secret), SecretString::from("verify"))
        }
    }

    fn signed(secret: &str) -> String {
        signed_request::sign(
            secret.as_bytes(),
            &json!({ "algorithm": "HMAC-SHA256", "issued_at": NOW.secs(), "user_id": "10158000000000001" }),
        )
    }

    #[tokio::test]
    async fn a_request_signed_with_a_rotated_secret_verifies_after_one_re_read() {
        let source = Arc::new(Rotating(Mutex::new("old-secret".to_owned())));
        let clock = Arc::new(ManualClock::at(NOW));
        let cache =
            MetaSecretCache::new(source.clone(), clock.clone(), SecretCachePolicy::default());
        assert!(verify(&cache, &signed("old-secret"), NOW).await.is_ok());
        *source.0.lock().expect("lock") = "new-secret".to_owned();
        // The cache still holds the old secret (its lifetime has not passed); once its minimum interval
        // between reads has, the mismatch makes it read the store once more.
        clock.advance_secs(31);
        let request = verify(&cache, &signed("new-secret"), NOW)
            .await
            .expect("verifies with the rotated secret");
        assert_eq!(request.user.expose(), "10158000000000001");
        assert!(matches!(
            verify(&cache, &signed("neither-secret"), NOW).await,
            Err(CallbackError::Refused(SignedRequestError::BadSignature))
        ));
    }

    #[tokio::test]
    async fn without_an_app_secret_nothing_verifies() {
        let cache = MetaSecretCache::new(
            Arc::new(crate::meta_secrets::FixedSource::new(None)),
            Arc::new(ManualClock::at(NOW)),
            SecretCachePolicy::default(),
        );
        assert!(matches!(
            verify(&cache, &signed("any"), NOW).await,
            Err(CallbackError::NoSecret(_))
        ));
    }
}
