//! Delivery of outbox notices: at least once, idempotent per outbox id.
//!
//! One delivery reads the outbox item, claims it with a short lease (a put conditional on the item's
//! version), resolves the recipient, renders the notice, sends it with the outbox id as the mail
//! reference, and records the outcome with a put conditional on the version it holds. So:
//! - a notice marked `sent` or `failed` is never sent again, however often a stream or a sweep brings
//!   it back;
//! - two senders never work the same notice at once (the second sees the lease, or loses the claim);
//! - a sender that loses its lease (it outlived [`LEASE_SECS`]) records nothing — its mail may have gone,
//!   and the other sender may send again: at least once, never silently lost.
//!
//! An address SES reported as hard-bounced or complaining is not mailed: the notice fails as
//! `recipient_suppressed` ([`qchat_shared::mail::suppression`]).
//!
//! The recipient is read when sending — a sealed address the notice carries (the former address of an
//! email change, the new address to confirm, a registration's address), otherwise the account's current
//! address — so an erased account gets nothing (`failed`, `account_gone`). A link token the notice carries
//! sealed (`secret`) is removed from the item once the outcome is final (sent or failed).

use qchat_shared::accounts::{self, ProfileError, REGISTRATIONS_KEY_OWNER};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::CryptoError;
use qchat_shared::domain::{AccountId, EmailAddress};
use qchat_shared::mail::suppression;
use qchat_shared::mail::{Email, MailError, SentEmail};
use qchat_shared::outbox::{DUE_PARTITION, Notice, due_sort_key, outbox_key};
use qchat_shared::store::{
    Condition, Index, Item, ItemKey, KeyRange, Order, Query, StoreError, Value,
};
use tracing::instrument;

use crate::NotifyError;
use crate::notices::{self, Context, RenderError};

/// How long a claim holds a notice: far longer than one send takes.
pub const LEASE_SECS: i64 = 60;
/// After this many attempts that failed for a passing reason, a notice is given up as `failed`.
pub const MAX_ATTEMPTS: i64 = 10;
/// The `failure` of a notice whose account no longer exists.
pub const ACCOUNT_GONE: &str = "account_gone";
/// The `failure` of a notice that failed [`MAX_ATTEMPTS`] times for passing reasons.
pub const TOO_MANY_ATTEMPTS: &str = "too_many_attempts";
/// Items read from the due index per query page.
const DRAIN_PAGE: usize = 25;
/// The drain stops this long before its deadline, so the send in progress can still be recorded.
pub(crate) const DRAIN_MARGIN_SECS: i64 = 3;

/// What one delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// The mail provider accepted the notice.
    Sent,
    /// Not sent for a passing reason; due again after a backoff.
    Retrying,
    /// Given up; the reason is in the item's `failure`.
    Failed,
    /// Nothing to do: no such notice, already sent or failed, not yet due, or another sender holds it.
    Skipped,
}

/// The wait before attempt `attempts + 1`: 30 s, 1 min, 2 min … capped at 1 h.
pub fn backoff_secs(attempts: i64) -> i64 {
    (30i64 << (attempts - 1).clamp(0, 7)).min(3600)
}

/// Sets plain attributes (each checked against the data inventory).
pub(crate) fn set<const N: usize>(
    mut item: Item,
    values: [(&str, Value); N],
) -> Result<Item, StoreError> {
    for (name, value) in values {
        item = item.plain(name, value)?;
    }
    Ok(item)
}

/// Why an attempt did not send: passing (retry later) or final (record and stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Transient(&'static str),
    Permanent(&'static str),
}

/// Claims the item at `key` for one delivery attempt: it must be pending, due and not held by another
/// sender; the claim is a short lease written conditionally on the item's version. `None` when there is
/// nothing to do (absent, done, not due, held, or another sender won the claim).
pub(crate) async fn claim(app: &App, key: &ItemKey) -> Result<Option<Item>, NotifyError> {
    let Some(item) = app.store.get(key).await? else {
        return Ok(None);
    };
    claim_item(app, item).await
}

/// [`claim`] of an item already read (e.g. by a query of the due index): the conditional put fails, and
/// nothing is claimed, if the item changed since it was read.
pub(crate) async fn claim_item(app: &App, item: Item) -> Result<Option<Item>, NotifyError> {
    let now = app.clock.now();
    let pending = item.get_str("state") == Some("pending");
    let held = item.get_i64("lease_until").unwrap_or(0) > now.millis();
    let not_due = item.get_i64("next_attempt_at").unwrap_or(0) > now.millis();
    let (true, false, false, Some(version)) = (pending, held, not_due, item.version()) else {
        return Ok(None);
    };
    let claimed = set(
        item,
        [("lease_until", Value::N(now.plus_secs(LEASE_SECS).millis()))],
    )?
    .with_version(version + 1);
    match app
        .store
        .put(claimed.clone(), Condition::VersionIs(version))
        .await
    {
        Ok(()) => Ok(Some(claimed)),
        Err(StoreError::ConditionFailed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Delivers the notice `outbox_id` if it is due and nobody else is on it.
///
/// # Errors
/// Only the store's failures reading, claiming or recording the item; the notice then stays pending (its
/// lease runs out) and a later run retries it.
#[instrument(name = "notify.deliver", skip_all, fields(outbox = %outbox_id))]
pub async fn deliver(app: &App, outbox_id: &str) -> Result<Delivery, NotifyError> {
    let key = outbox_key(outbox_id);
    let Some(claimed) = claim(app, &key).await? else {
        return Ok(Delivery::Skipped);
    };

    let notice_name = claimed.get_str("notice").unwrap_or("unknown").to_owned();
    let outcome = attempt(app, outbox_id, &key, &claimed).await;
    let held = claimed.version().unwrap_or(0);
    record(app, outbox_id, &notice_name, claimed, held, outcome).await
}

/// Resolves, renders and sends. Never touches the outbox item.
async fn attempt(
    app: &App,
    outbox_id: &str,
    key: &ItemKey,
    item: &Item,
) -> Result<SentEmail, Problem> {
    // Only a registration's confirmation mail has no account: its address and link are sealed under the
    // registrations key.
    let account = match item.get_str("account_id") {
        Some(raw) => {
            Some(AccountId::parse(raw).map_err(|_| Problem::Permanent("malformed_notice"))?)
        }
        None => None,
    };
    let notice: Notice = item
        .get_str("params")
        .and_then(|raw| serde_json::from_str(raw).ok())
        .ok_or(Problem::Permanent("malformed_notice"))?;
    let owner = account
        .as_ref()
        .map_or_else(|| REGISTRATIONS_KEY_OWNER.to_owned(), account_key_owner);
    let to = match &account {
        Some(account) => recipient(app, account, key, item).await?,
        None => {
            let plain = unseal(app, &owner, key, item, "recipient")
                .await?
                .ok_or(Problem::Permanent("malformed_notice"))?;
            EmailAddress::parse(&plain).map_err(|_| Problem::Permanent("recipient_unreadable"))?
        }
    };
    match suppression::is_suppressed(app, &to).await {
        Ok(false) => {}
        Ok(true) => return Err(Problem::Permanent(suppression::SUPPRESSED)),
        Err(e) => {
            tracing::warn!(error = %e, "mail suppression unreadable for now");
            return Err(Problem::Transient("store_unavailable"));
        }
    }
    let link_token = unseal(app, &owner, key, item, "secret").await?;
    let breach_summary = match &notice {
        Notice::BreachNotice { notice_id } => Some(breach_summary(app, notice_id).await?),
        _ => None,
    };
    let rendered = notices::render(
        &notice,
        &Context {
            public_url: &app.config.public_url,
            breach_summary: breach_summary.as_deref(),
            link_token: link_token.as_deref(),
        },
    )
    .map_err(|e| match e {
        RenderError::MissingBreachSummary => Problem::Permanent("breach_notice_gone"),
        RenderError::MissingLink => Problem::Permanent("malformed_notice"),
    })?;
    let email = Email {
        to,
        subject: rendered.subject,
        text_body: rendered.body,
        reference: outbox_id.to_owned(),
    };
    app.mailer.send(&email).await.map_err(|e| match e {
        MailError::Transient { reason, .. } => Problem::Transient(reason),
        MailError::Permanent { reason, .. } => Problem::Permanent(reason),
    })
}

/// The text of a sealed attribute of the outbox item, if it has one.
async fn unseal(
    app: &App,
    owner: &str,
    key: &ItemKey,
    item: &Item,
    attribute: &str,
) -> Result<Option<String>, Problem> {
    let Some(sealed) = item.get_sealed(attribute) else {
        return Ok(None);
    };
    let plain = app
        .keys
        .open(owner, key, attribute, &sealed)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, attribute, "a sealed value of a notice was not decrypted");
            crypto_problem(&e)
        })?;
    plain
        .as_str()
        .map(|s| Some(s.to_owned()))
        .map_err(|_| Problem::Permanent("recipient_unreadable"))
}

/// A crypto failure: the key is gone (the account was erased, its key shredded), the value is unusable,
/// or the keyring/store is unavailable for now.
fn crypto_problem(e: &CryptoError) -> Problem {
    match e {
        CryptoError::NoKey | CryptoError::KeyDestroyed => Problem::Permanent(ACCOUNT_GONE),
        CryptoError::Keyring(_) | CryptoError::Store(_) | CryptoError::Primitive(_) => {
            Problem::Transient("keys_unavailable")
        }
        CryptoError::Undecryptable
        | CryptoError::UnknownFormat
        | CryptoError::InvalidOwner
        | CryptoError::KeyVersionNotLoaded { .. } => Problem::Permanent("recipient_unreadable"),
    }
}

/// The address to send to. The account must still exist even when the notice carries a sealed former
/// address: an erased account is told nothing more.
async fn recipient(
    app: &App,
    account: &AccountId,
    key: &ItemKey,
    item: &Item,
) -> Result<EmailAddress, Problem> {
    let profile = match accounts::load_profile(app, account).await {
        Ok(Some(profile)) => profile,
        Ok(None) => return Err(Problem::Permanent(ACCOUNT_GONE)),
        Err(ProfileError::Store(e)) => {
            // The cause for operators: store and crypto errors never carry item contents.
            tracing::warn!(error = %e, "account profile unreadable for now");
            return Err(Problem::Transient("store_unavailable"));
        }
        Err(ProfileError::Crypto(e)) => {
            tracing::warn!(error = %e, "account profile not decrypted");
            return Err(crypto_problem(&e));
        }
        Err(ProfileError::Malformed(_)) => return Err(Problem::Permanent("recipient_unreadable")),
    };
    match unseal(app, &account_key_owner(account), key, item, "recipient").await? {
        None => Ok(profile.email),
        Some(plain) => {
            EmailAddress::parse(&plain).map_err(|_| Problem::Permanent("recipient_unreadable"))
        }
    }
}

/// The operator's text of a breach notice.
async fn breach_summary(app: &App, notice_id: &str) -> Result<String, Problem> {
    let key = ItemKey::new(format!("BREACH#{notice_id}"), "NOTICE");
    match app.store.get(&key).await {
        Ok(Some(item)) => item
            .get_str("summary")
            .map(str::to_owned)
            .ok_or(Problem::Permanent("breach_notice_gone")),
        Ok(None) => Err(Problem::Permanent("breach_notice_gone")),
        Err(e) => {
            tracing::warn!(error = %e, "breach notice unreadable for now");
            Err(Problem::Transient("store_unavailable"))
        }
    }
}

/// A notice whose outcome is final leaves the queue; an account's notice is filed under the account, so
/// its export and its erasure find it without a scan.
fn filed(item: Item) -> Item {
    let account = item
        .get_str("account_id")
        .and_then(|a| AccountId::parse(a).ok());
    match account {
        Some(account) => {
            let created = item.get_i64("created").unwrap_or(0);
            let id = outbox_id_of(&item.key().pk).unwrap_or_default().to_owned();
            item.with_gsi1(
                qchat_shared::outbox::account_notices_partition(&account),
                due_sort_key(Timestamp::from_millis(created), &id),
            )
        }
        None => item.without_gsi1(),
    }
}

/// Writes the outcome, conditional on the version this sender holds.
async fn record(
    app: &App,
    outbox_id: &str,
    notice: &str,
    held: Item,
    version: u64,
    outcome: Result<SentEmail, Problem>,
) -> Result<Delivery, NotifyError> {
    let now = app.clock.now();
    let attempts = held.get_i64("attempts").unwrap_or(0) + 1;
    let base = set(
        held,
        [
            ("attempts", Value::N(attempts)),
            ("lease_until", Value::N(0)),
        ],
    )?
    .with_version(version + 1);
    let (next, delivery) = match outcome {
        Ok(sent) => {
            tracing::info!(outbox = %outbox_id, notice, attempts, outcome = "sent", "notice sent");
            let next = set(
                base,
                [
                    ("state", Value::S("sent".to_owned())),
                    ("sent_at", Value::N(now.millis())),
                    ("provider_id", Value::S(sent.provider_id)),
                ],
            )?
            .without("secret");
            (filed(next), Delivery::Sent)
        }
        Err(Problem::Transient(reason)) if attempts < MAX_ATTEMPTS => {
            let due = now.plus_secs(backoff_secs(attempts));
            tracing::warn!(outbox = %outbox_id, notice, attempts, reason, outcome = "retrying", "notice not sent; will retry");
            let next = set(base, [("next_attempt_at", Value::N(due.millis()))])?
                .with_gsi1(DUE_PARTITION, due_sort_key(due, outbox_id));
            (next, Delivery::Retrying)
        }
        Err(problem) => {
            let failure = match problem {
                Problem::Transient(_) => TOO_MANY_ATTEMPTS,
                Problem::Permanent(reason) => reason,
            };
            tracing::warn!(outbox = %outbox_id, notice, attempts, failure, outcome = "failed", "notice given up");
            let next = set(
                base,
                [
                    ("state", Value::S("failed".to_owned())),
                    ("failure", Value::S(failure.to_owned())),
                ],
            )?
            .without("secret");
            (filed(next), Delivery::Failed)
        }
    };
    match app.store.put(next, Condition::VersionIs(version)).await {
        Ok(()) => Ok(delivery),
        Err(StoreError::ConditionFailed) => {
            // Another sender took the notice over after this lease ran out; it owns the outcome now.
            tracing::warn!(outbox = %outbox_id, notice, "lease lost before the outcome was recorded");
            Ok(delivery)
        }
        Err(e) => Err(e.into()),
    }
}

/// What one drain of the due index did. Counts, and a time.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: usize,
    pub retrying: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The deadline came before every due notice was looked at; the rest waits for the next run.
    pub stopped_early: bool,
    /// When the longest-waiting item the drain found had become due (filled by the reply drain).
    pub oldest_due: Option<Timestamp>,
}

impl DrainReport {
    pub(crate) fn count(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Sent => self.sent += 1,
            Delivery::Retrying => self.retrying += 1,
            Delivery::Failed => self.failed += 1,
            Delivery::Skipped => self.skipped += 1,
        }
    }
}

/// The outbox id of an outbox item key (`OUTBOX#<id>`).
pub fn outbox_id_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("OUTBOX#").filter(|id| !id.is_empty())
}

/// Delivers every notice due by now, page by page from the due index, until a few seconds before
/// `deadline`.
///
/// # Errors
/// The store's failures; what was done before stays done.
#[instrument(name = "notify.drain", skip_all)]
pub async fn drain_due(app: &App, deadline: Timestamp) -> Result<DrainReport, NotifyError> {
    let report = drain_partition(
        app,
        deadline,
        DUE_PARTITION,
        outbox_id_of,
        |id| async move { deliver(app, &id).await },
    )
    .await?;
    if report != DrainReport::default() {
        tracing::info!(
            sent = report.sent,
            retrying = report.retrying,
            failed = report.failed,
            skipped = report.skipped,
            stopped_early = report.stopped_early,
            "outbox drained"
        );
    }
    Ok(report)
}

/// Walks a due-index `partition` (sort keys `<ms>#<id>`) up to now and hands each id to `deliver_one`,
/// until a few seconds before `deadline`. The email outbox's (Messenger replies have their own, which
/// orders by window end: `crate::replies`).
pub(crate) async fn drain_partition<F, Fut>(
    app: &App,
    deadline: Timestamp,
    partition: &str,
    id_of: fn(&str) -> Option<&str>,
    deliver_one: F,
) -> Result<DrainReport, NotifyError>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<Delivery, NotifyError>>,
{
    let stop_at = deadline.plus_secs(-DRAIN_MARGIN_SECS);
    let mut report = DrainReport::default();
    // The bound is fixed at the start: an item put back for a later retry sorts after it and is not
    // met again in this drain.
    let now = app.clock.now();
    let mut query = Query {
        index: Index::Gsi1,
        partition: partition.to_owned(),
        range: KeyRange::AtMost(format!("{}~", now.sort_key())),
        order: Order::Ascending,
        limit: DRAIN_PAGE,
        cursor: None,
    };
    loop {
        if app.clock.now() >= stop_at {
            report.stopped_early = true;
            break;
        }
        let page = app.store.query(&query).await?;
        for item in &page.items {
            if app.clock.now() >= stop_at {
                report.stopped_early = true;
                break;
            }
            let Some(id) = id_of(&item.key().pk) else {
                continue;
            };
            report.count(deliver_one(id.to_owned()).await?);
        }
        match page.next {
            Some(next) if !report.stopped_early => query.cursor = Some(next),
            _ => break,
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_30_seconds_and_caps_at_an_hour() {
        let waits: Vec<i64> = (1..=10).map(backoff_secs).collect();
        assert_eq!(
            waits,
            vec![30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
        );
    }

    #[test]
    fn outbox_ids_come_from_outbox_keys_only() {
        assert_eq!(outbox_id_of(&outbox_key("abc.def").pk), Some("abc.def"));
        assert_eq!(outbox_id_of("OUTBOX#"), None);
        assert_eq!(outbox_id_of("JOB#abc"), None);
    }
}
