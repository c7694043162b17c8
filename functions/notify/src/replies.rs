//! Delivery of Messenger replies queued by the webhook (REPLY items): at least once, idempotent per
//! reply id, like [`crate::delivery`] for email.
//!
//! One delivery claims the reply with a lease (a put conditional on its version), opens the recipient
//! and text (under the lead's own key, whose secret it reads from the key store, when the reply is
//! sealed so; else under the page's account key; a lead whose secret is gone fails it as `unreadable`),
//! loads the page's sealed access token and sends with
//! `messaging_type = RESPONSE`. Outcomes, each recorded conditional on the version held:
//! - sent: `state = sent`, Meta's `message_id`, out of the due index;
//! - a passing error (`SendError::is_retryable`): back to the index after a backoff;
//! - a token or permission error: the page's sending is stopped (reason `token_invalid` /
//!   `permission`) with a `PageSendingStopped` notice to its account, and the reply fails — in one
//!   transaction, and only the first reply to meet the error queues the notice; a page changed since
//!   the send read it (reconnected with a new token meanwhile) is not stopped, only the reply fails;
//! - the person cannot be reached: the lead becomes `unreachable` (a plain update, no consent record);
//! - a page whose sending is stopped gets nothing sent: the reply fails.
//!
//! Before anything is opened or sent, the reply must still be inside Meta's 24-hour standard messaging
//! window ([`STANDARD_WINDOW_HOURS`], MESSENGER.md §3), checked at send time: a retry that comes late (a
//! long Graph outage, a sweep that did not run) fails as `outside_window` without a Graph call. A reply
//! whose lead is gone (erased) fails as `lead_gone`: nothing is sent to a person qchat no longer holds.
//!
//! A drain ([`drain_due_replies_with`]) reads the due index a chunk at a time, reads the chunk's leads
//! (for their windows) in one `get_many`, orders each chunk by the end of its replies' windows (the
//! reply closest to being lost goes first: a retry queued long ago before a first attempt queued just
//! now) and sends up to `concurrency` replies at once, each claimed from the item the query read. The
//! scheduled run sends one at a time and reads each reply's page at its attempt, so a token error met
//! by one reply stops the page before the next is tried; the local server's sender sends several at
//! once to keep up with a busy webhook and reads the chunk's pages in one `get_many` too (then the
//! replies already read or in flight when a page is stopped still reach Meta, which refuses them, and
//! are recorded as failed like the first).
//!
//! The local server's webhook hands its new replies straight to this process's sender
//! ([`send_handed_off`], [`qchat_shared::replies::handoff`]): written claimed in the event's transaction,
//! each is sent with the page and lead secret the webhook read, and its outcome recorded as above. The
//! due index then holds the rest: retries, replies queued while the hand-off had no free slot or the
//! index a backlog, and a handed-off reply whose outcome was not recorded when its lease ended.

use std::collections::HashMap;

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::LeadSecret;
use qchat_shared::domain::{AccountId, LeadId, PageAccessToken, PageId, Psid, UserRef};
use qchat_shared::leads::{
    LeadStatus, lead_key, lookup,
    record::{status_partition, status_sort_key},
};
use qchat_shared::messenger::{MessagingType, OutgoingMessage, QuickReply, Recipient, SendError};
use qchat_shared::outbox::{Notice, notice_op};
use qchat_shared::pages::page_key;
use qchat_shared::replies::handoff::{ClaimedReply, HandedReply};
use qchat_shared::replies::{DUE_PARTITION, due_sort_key, reply_id_of, reply_key};
use qchat_shared::store::{
    Condition, Index, Item, ItemKey, KeyRange, Order, Query, StoreError, Value, WriteOp,
};
use tokio::sync::mpsc;
use tracing::instrument;

use crate::NotifyError;
use crate::delivery::{
    DRAIN_MARGIN_SECS, Delivery, DrainReport, MAX_ATTEMPTS, TOO_MANY_ATTEMPTS, backoff_secs, claim,
    claim_item, set,
};

/// Meta's standard messaging window: a reply (`RESPONSE`) may go out only this long after the person's
/// last message.
pub const STANDARD_WINDOW_HOURS: i64 = 24;
/// The `failure` of a reply whose window closed before it could be sent.
pub const OUTSIDE_WINDOW: &str = "outside_window";
/// The `failure` of a reply whose lead no longer exists.
pub const LEAD_GONE: &str = "lead_gone";

/// What an attempt came to, before it is recorded.
#[derive(Debug)]
enum Attempt {
    Sent(String),
    Retry(&'static str),
    Failed(&'static str),
    /// Stop the page for this reason, then fail the reply. `page_version`: the version of the page item
    /// whose token the send used.
    StopPage {
        reason: &'static str,
        page_version: u64,
    },
    /// Mark the lead unreachable, then fail the reply.
    Unreachable,
}

/// Delivers the reply `reply_id` if it is due and nobody else is on it.
///
/// # Errors
/// Only the store's failures reading, claiming or recording; the reply then stays pending.
#[instrument(name = "notify.reply", skip_all, fields(reply = %reply_id))]
pub async fn deliver_reply(app: &App, reply_id: &str) -> Result<Delivery, NotifyError> {
    let key = reply_key(reply_id);
    let Some(claimed) = claim(app, &key).await? else {
        return Ok(Delivery::Skipped);
    };
    let held = claimed.version().unwrap_or(0);
    let outcome = attempt(app, reply_id, &claimed, Prefetched::default()).await;
    record(app, reply_id, claimed, held, outcome).await
}

/// [`deliver_reply`] of a reply item read from the due index, with what its chunk read for it.
async fn deliver_queried(
    app: &App,
    reply_id: &str,
    item: Item,
    read: Prefetched,
) -> Result<Delivery, NotifyError> {
    let Some(claimed) = claim_item(app, item).await? else {
        return Ok(Delivery::Skipped);
    };
    let held = claimed.version().unwrap_or(0);
    let outcome = attempt(app, reply_id, &claimed, read).await;
    record(app, reply_id, claimed, held, outcome).await
}

/// Sends the replies the webhook hands over ([`qchat_shared::replies::handoff`]) as they arrive, each in
/// a task of its own (the hand-off's slots bound how many are in flight), until the webhook's side is
/// gone.
pub async fn send_handed_off(app: App, mut queue: mpsc::UnboundedReceiver<ClaimedReply>) {
    while let Some(claimed) = queue.recv().await {
        let app = app.clone();
        tokio::spawn(async move {
            if let Err(e) = deliver_handed(&app, claimed).await {
                tracing::warn!(error = %e, "handed-off reply not recorded; sent again when its lease ends");
            }
        });
    }
}

/// Sends a reply the webhook wrote claimed for this process, with what the webhook read for it, and
/// records the outcome as any claimed reply's. Its window opened no earlier than when it was queued
/// (the person's message came then), so the lead is not read for it.
///
/// # Errors
/// Only the store's failures recording the outcome; the reply is then sent again when its lease ends.
#[instrument(name = "notify.reply", skip_all, fields(reply = %claimed.reply.id))]
pub async fn deliver_handed(app: &App, claimed: ClaimedReply) -> Result<Delivery, NotifyError> {
    let (
        HandedReply {
            id,
            item,
            page,
            secret,
        },
        _slot,
    ) = claimed.into_parts();
    let held = item.version().unwrap_or(0);
    let secret = secret
        .filter(|(lead, _)| reply_lead(&item).as_ref() == Some(lead))
        .map(|(_, secret)| secret);
    let read = Prefetched {
        window: Some(window_from(&item, None)),
        page,
        secret,
    };
    let outcome = attempt(app, &id, &item, read).await;
    record(app, &id, item, held, outcome).await
}

struct Target {
    page: PageId,
    account: AccountId,
    page_item: Item,
}

/// What a drain read for a reply with its chunk ([`chunk_reads`]); what is missing is read by the attempt.
#[derive(Default)]
struct Prefetched {
    /// When the person's window opened; one found closed (or a lead found gone) is looked up again, as
    /// the person may have written meanwhile.
    window: Option<Result<Timestamp, Attempt>>,
    /// The page.
    page: Option<Item>,
    /// The secret of the reply's lead, for a reply sealed under the lead's own key.
    secret: Option<LeadSecret>,
}

/// Resolves, opens and sends. Never touches the reply item. `read`: what was read for it already.
async fn attempt(app: &App, reply_id: &str, item: &Item, read: Prefetched) -> Attempt {
    let Prefetched {
        window,
        page: page_item,
        secret,
    } = read;
    let (Some(page), Some(account)) = (
        item.get_str("page_id").and_then(|p| PageId::parse(p).ok()),
        item.get_str("account_id")
            .and_then(|a| AccountId::parse(a).ok()),
    ) else {
        return Attempt::Failed("malformed_reply");
    };
    let page_item = match page_item {
        Some(p) => Ok(Some(p)),
        None => app.store.get(&page_key(&page)).await,
    };
    let page_item = match page_item {
        Ok(Some(p)) if p.get_str("account_id") == Some(account.as_str()) => p,
        Ok(_) => return Attempt::Failed("page_gone"),
        Err(e) => {
            tracing::warn!(error = %e, "page unreadable for now");
            return Attempt::Retry("store_unavailable");
        }
    };
    if page_item.get_str("sending") == Some("stopped") {
        return Attempt::Failed("page_stopped");
    }
    let still_open = |at: &Timestamp| app.clock.now() < at.plus_hours(STANDARD_WINDOW_HOURS);
    let opened_at = match window {
        Some(Ok(at)) if still_open(&at) => Ok(at),
        _ => window_opened_at(app, item, &page).await,
    };
    let opened_at = match opened_at {
        Ok(at) => at,
        Err(a) => return a,
    };
    if app.clock.now() >= opened_at.plus_hours(STANDARD_WINDOW_HOURS) {
        tracing::info!(reply = %reply_id, "reply not sent: Meta's 24-hour window has closed");
        return Attempt::Failed(OUTSIDE_WINDOW);
    }
    let target = Target {
        page,
        account,
        page_item,
    };
    let message = match open_message(app, reply_id, item, &target, secret).await {
        Ok(m) => m,
        Err(a) => return a,
    };
    let token = match open_token(app, &target).await {
        Ok(t) => t,
        Err(a) => return a,
    };
    match app.messenger.send(&target.page, &token, &message).await {
        Ok(sent) => Attempt::Sent(sent.message_id),
        Err(e) => classify(&e, target.page_item.version().unwrap_or(0)),
    }
}

/// When the person's 24-hour window opened, as far as qchat knows: the later of the reply's queue time
/// (every reply answers something the person did, received just then — also an opt-out, which does not
/// move the lead's `last_message_at`) and the lead's `last_message_at` (they may have written since).
/// A lead named by the reply but no longer stored fails the reply as [`LEAD_GONE`].
async fn window_opened_at(app: &App, item: &Item, page: &PageId) -> Result<Timestamp, Attempt> {
    let lead = match reply_lead_key(item, page)? {
        None => None,
        Some(key) => match app.store.get(&key).await {
            Ok(lead) => Some(lead),
            Err(e) => {
                tracing::warn!(error = %e, "lead unreadable for now");
                return Err(Attempt::Retry("store_unavailable"));
            }
        },
    };
    window_from(item, lead.as_ref().map(Option::as_ref))
}

/// The lead the reply names, if it names one (and its id is well-formed).
fn reply_lead(item: &Item) -> Option<LeadId> {
    item.get_str("lead_id").and_then(|l| LeadId::parse(l).ok())
}

/// Whether any of a reply's sealed values is sealed under its lead's own key (format 2).
fn any_lead_sealed(sealed: &[&Option<qchat_shared::crypto::Sealed>]) -> bool {
    sealed
        .iter()
        .any(|s| s.as_ref().is_some_and(|s| s.is_lead_sealed()))
}

/// The key of the lead the reply names, if it names one.
fn reply_lead_key(item: &Item, page: &PageId) -> Result<Option<ItemKey>, Attempt> {
    item.get_str("lead_id")
        .map(|raw| {
            LeadId::parse(raw)
                .map(|lead| lead_key(page, &lead))
                .map_err(|_| Attempt::Failed("malformed_reply"))
        })
        .transpose()
}

/// [`window_opened_at`] from the lead read already: `lead` is `None` for a reply that names no lead, and
/// `Some(None)` for a lead no longer stored.
fn window_from(item: &Item, lead: Option<Option<&Item>>) -> Result<Timestamp, Attempt> {
    let queued = item.get_i64("created").map(Timestamp::from_millis);
    let last_message = match lead {
        None => None,
        Some(None) => return Err(Attempt::Failed(LEAD_GONE)),
        Some(Some(lead)) => lead.get_i64("last_message_at").map(Timestamp::from_millis),
    };
    queued
        .max(last_message)
        .ok_or(Attempt::Failed("malformed_reply"))
}

/// What a send's error comes to; `page_version`: the version of the page item the send used.
fn classify(e: &SendError, page_version: u64) -> Attempt {
    if e.is_retryable() {
        return Attempt::Retry("meta_unavailable");
    }
    match e {
        SendError::TokenInvalid { .. } => Attempt::StopPage {
            reason: "token_invalid",
            page_version,
        },
        SendError::Permission { .. } => Attempt::StopPage {
            reason: "permission",
            page_version,
        },
        SendError::Unreachable { .. } => Attempt::Unreachable,
        SendError::OutsideWindow { .. } => Attempt::Failed(OUTSIDE_WINDOW),
        SendError::FrequencyCapped { .. } => Attempt::Failed("frequency_capped"),
        _ => Attempt::Failed("refused"),
    }
}

fn crypto_failure(e: &qchat_shared::crypto::CryptoError) -> Attempt {
    use qchat_shared::crypto::CryptoError;
    tracing::warn!(error = %e, "reply values not decrypted");
    match e {
        CryptoError::Keyring(_) | CryptoError::Store(_) | CryptoError::Primitive(_) => {
            Attempt::Retry("keys_unavailable")
        }
        _ => Attempt::Failed("unreadable"),
    }
}

/// The secret of the lead the reply names, if its values are sealed under the lead's own key (format 2):
/// `prefetched` (read with the reply's chunk) or one key-store read, none for a reply sealed under the
/// account's key. A lead whose secret is gone (erased) leaves the reply unreadable.
async fn lead_secret(
    app: &App,
    item: &Item,
    target: &Target,
    sealed: &[&Option<qchat_shared::crypto::Sealed>],
    prefetched: Option<LeadSecret>,
) -> Result<Option<(LeadId, LeadSecret)>, Attempt> {
    if !any_lead_sealed(sealed) {
        return Ok(None);
    }
    let lead = reply_lead(item).ok_or(Attempt::Failed("unreadable"))?;
    if let Some(secret) = prefetched {
        return Ok(Some((lead, secret)));
    }
    match lookup::secret(app.key_store.as_ref(), &target.page, &lead).await {
        Ok(Some(secret)) => Ok(Some((lead, secret))),
        Ok(None) => {
            tracing::info!(lead = %lead, "reply not sent: its lead's key is gone");
            Err(Attempt::Failed("unreadable"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "key store unreadable for now");
            Err(Attempt::Retry("keys_unavailable"))
        }
    }
}

async fn open_message(
    app: &App,
    reply_id: &str,
    item: &Item,
    target: &Target,
    secret: Option<LeadSecret>,
) -> Result<OutgoingMessage, Attempt> {
    let owner = account_key_owner(&target.account);
    let key = reply_key(reply_id);
    let (recipient, text) = (item.get_sealed("recipient"), item.get_sealed("text"));
    let lead = lead_secret(app, item, target, &[&recipient, &text], secret).await?;
    let open = |sealed: Option<qchat_shared::crypto::Sealed>, attr: &'static str| {
        let (owner, key, lead) = (owner.clone(), key.clone(), lead.as_ref());
        async move {
            let sealed = sealed.ok_or(Attempt::Failed("malformed_reply"))?;
            let opened = match lead {
                Some((id, secret)) => {
                    app.keys
                        .open_lead(&owner, Some(secret), id.as_str(), &key, attr, &sealed)
                        .await
                }
                None => app.keys.open(&owner, &key, attr, &sealed).await,
            };
            let plain = opened.map_err(|e| crypto_failure(&e))?;
            plain
                .as_str()
                .map(str::to_owned)
                .map_err(|_| Attempt::Failed("unreadable"))
        }
    };
    let recipient = open(recipient, "recipient").await?;
    let text = open(text, "text").await?;
    let recipient = match item.get_str("recipient_kind") {
        Some("user_ref") => UserRef::parse(&recipient).map(Recipient::UserRef),
        _ => Psid::parse(&recipient).map(Recipient::Psid),
    }
    .map_err(|_| Attempt::Failed("unreadable"))?;
    let quick_replies = item
        .get_str("quick_replies")
        .and_then(|q| serde_json::from_str::<Vec<serde_json::Value>>(q).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|q| {
            Some(QuickReply {
                title: q.get("title")?.as_str()?.to_owned(),
                payload: q.get("payload")?.as_str()?.to_owned(),
            })
        })
        .collect();
    Ok(OutgoingMessage {
        recipient,
        messaging_type: MessagingType::Response,
        text,
        buttons: Vec::new(),
        quick_replies,
        metadata: Some(format!("qchat.reply.{reply_id}")),
    })
}

async fn open_token(app: &App, target: &Target) -> Result<PageAccessToken, Attempt> {
    let sealed = target
        .page_item
        .get_sealed("access_token")
        .ok_or(Attempt::Failed("page_gone"))?;
    let plain = app
        .keys
        .open(
            &account_key_owner(&target.account),
            &page_key(&target.page),
            "access_token",
            &sealed,
        )
        .await
        .map_err(|e| crypto_failure(&e))?;
    plain
        .as_str()
        .ok()
        .and_then(|t| PageAccessToken::parse(t).ok())
        .ok_or(Attempt::Failed("unreadable"))
}

/// The page-stop writes: `sending = stopped` (conditional on the page's version) and the account's
/// notice. Empty if the page is already stopped or gone (someone else told the account), or changed
/// since the send read it (`page_version`): the error was about a token that may be replaced now (the
/// page reconnected meanwhile), and a later reply meets the page as it is.
async fn stop_page_ops(
    app: &App,
    held: &Item,
    reply_id: &str,
    reason: &str,
    page_version: u64,
) -> Result<Vec<WriteOp>, StoreError> {
    let (Some(page), Some(account)) = (
        held.get_str("page_id").and_then(|p| PageId::parse(p).ok()),
        held.get_str("account_id")
            .and_then(|a| AccountId::parse(a).ok()),
    ) else {
        return Ok(Vec::new());
    };
    let Some(current) = app.store.get(&page_key(&page)).await? else {
        return Ok(Vec::new());
    };
    let version = current.version().unwrap_or(0);
    if current.get_str("sending") == Some("stopped") || version != page_version {
        return Ok(Vec::new());
    }
    let item = set(
        current,
        [
            ("sending", Value::S("stopped".to_owned())),
            ("stopped_reason", Value::S(reason.to_owned())),
        ],
    )?
    .with_version(version + 1);
    let notice = Notice::PageSendingStopped {
        page_id: page.as_str().to_owned(),
        reason: reason.to_owned(),
    };
    Ok(vec![
        WriteOp::Put {
            item,
            condition: Condition::VersionIs(version),
        },
        notice_op(
            &format!("reply-stop.{reply_id}"),
            &account,
            &notice,
            app.clock.now(),
            None,
        )?,
    ])
}

/// The lead update of an unreachable person: status only, no consent record.
async fn unreachable_ops(app: &App, held: &Item) -> Result<Vec<WriteOp>, StoreError> {
    let (Some(page), Some(lead)) = (
        held.get_str("page_id").and_then(|p| PageId::parse(p).ok()),
        reply_lead(held),
    ) else {
        return Ok(Vec::new());
    };
    let Some(item) = app.store.get(&lead_key(&page, &lead)).await? else {
        return Ok(Vec::new());
    };
    if item.get_str("status") == Some(LeadStatus::Unreachable.name()) {
        return Ok(Vec::new());
    }
    // A merged lead is closed (its consent lives on the linked lead): its status stays `merged`.
    if item.get_str("status") == Some(LeadStatus::Merged.name()) {
        return Ok(Vec::new());
    }
    let version = item.version().unwrap_or(0);
    let created = Timestamp::from_millis(item.get_i64("created").unwrap_or(0));
    let item = set(
        item,
        [(
            "status",
            Value::S(LeadStatus::Unreachable.name().to_owned()),
        )],
    )?
    .with_version(version + 1)
    .with_gsi1(
        status_partition(&page, LeadStatus::Unreachable),
        status_sort_key(created, &lead),
    );
    Ok(vec![WriteOp::Put {
        item,
        condition: Condition::VersionIs(version),
    }])
}

/// Writes the outcome (and its page or lead writes) conditional on the version this sender holds.
async fn record(
    app: &App,
    reply_id: &str,
    held: Item,
    version: u64,
    outcome: Attempt,
) -> Result<Delivery, NotifyError> {
    for _ in 0..5 {
        let now = app.clock.now();
        let attempts = held.get_i64("attempts").unwrap_or(0) + 1;
        let base = set(
            held.clone(),
            [
                ("attempts", Value::N(attempts)),
                ("lease_until", Value::N(0)),
            ],
        )?
        .with_version(version + 1);
        let failed = |reason: &str| -> Result<Item, StoreError> {
            set(
                base.clone(),
                [
                    ("state", Value::S("failed".to_owned())),
                    ("failure", Value::S(reason.to_owned())),
                ],
            )
            .map(qchat_shared::replies::finished)
        };
        let (next, extra, delivery) = match &outcome {
            Attempt::Sent(message_id) => (
                set(
                    base.clone(),
                    [
                        ("state", Value::S("sent".to_owned())),
                        ("sent_at", Value::N(now.millis())),
                        ("message_id", Value::S(message_id.clone())),
                    ],
                )
                .map(qchat_shared::replies::finished)?,
                Vec::new(),
                Delivery::Sent,
            ),
            Attempt::Retry(reason) if attempts < MAX_ATTEMPTS => {
                tracing::warn!(reply = %reply_id, attempts, reason, "reply not sent; will retry");
                let due: Timestamp = now.plus_secs(backoff_secs(attempts));
                (
                    set(base.clone(), [("next_attempt_at", Value::N(due.millis()))])?
                        .with_gsi1(DUE_PARTITION, due_sort_key(due, reply_id)),
                    Vec::new(),
                    Delivery::Retrying,
                )
            }
            Attempt::Retry(_) => (failed(TOO_MANY_ATTEMPTS)?, Vec::new(), Delivery::Failed),
            Attempt::Failed(reason) => (failed(reason)?, Vec::new(), Delivery::Failed),
            Attempt::StopPage {
                reason,
                page_version,
            } => (
                failed(reason)?,
                stop_page_ops(app, &held, reply_id, reason, *page_version).await?,
                Delivery::Failed,
            ),
            Attempt::Unreachable => (
                failed("unreachable")?,
                unreachable_ops(app, &held).await?,
                Delivery::Failed,
            ),
        };
        let mut ops = vec![WriteOp::Put {
            item: next,
            condition: Condition::VersionIs(version),
        }];
        ops.extend(extra);
        match app.store.transact(ops).await {
            Ok(()) => {
                tracing::info!(reply = %reply_id, attempts, outcome = ?delivery, "reply handled");
                return Ok(delivery);
            }
            Err(StoreError::TransactionConditionFailed { index: 0 }) => {
                // Another sender took over after this lease ran out; it owns the outcome now.
                tracing::warn!(reply = %reply_id, "lease lost before the outcome was recorded");
                return Ok(delivery);
            }
            // The page or lead changed meanwhile: read it again.
            Err(
                StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict,
            ) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(NotifyError::Store(StoreError::TransactionConflict))
}

/// Due replies read, and ordered by window end, at a time.
const CHUNK: usize = 64;

/// Delivers every reply due by now, one at a time, until a few seconds before `deadline` (the scheduled
/// run: see [`drain_due_replies_with`]).
///
/// # Errors
/// The store's failures; what was done before stays done.
pub async fn drain_due_replies(app: &App, deadline: Timestamp) -> Result<DrainReport, NotifyError> {
    drain_due_replies_with(app, deadline, 1).await
}

/// What a chunk of replies read from the due index needs before it is ordered and sent: each reply's
/// window (see [`window_opened_at`]), its lead's secret (for a reply sealed under the lead's key) and,
/// with `with_pages`, the page it goes out from, read with one
/// [`ItemStore::get_many`](qchat_shared::store::ItemStore::get_many) each for the chunk's leads, their
/// secrets (one per page) and its pages, rather than three reads per reply. What is not read here (not
/// asked for, not found, or the store failed) is read by the reply's own attempt, which then decides.
/// A secret read here and erased before the send does not reach a person qchat no longer holds: the
/// erasure removes the person's waiting replies first, and the reply's claim, conditional on the
/// version this chunk read, then finds it gone.
async fn chunk_reads(app: &App, items: &[&Item], with_pages: bool) -> Vec<Prefetched> {
    let pages: Vec<Option<PageId>> = items
        .iter()
        .map(|item| item.get_str("page_id").and_then(|p| PageId::parse(p).ok()))
        .collect();
    let lead_keys: Vec<Result<Option<ItemKey>, Attempt>> = items
        .iter()
        .zip(&pages)
        .map(|(item, page)| match page {
            Some(page) => reply_lead_key(item, page),
            None => Err(Attempt::Failed("malformed_reply")),
        })
        .collect();
    let wanted: Vec<ItemKey> = lead_keys
        .iter()
        .filter_map(|key| key.as_ref().ok()?.clone())
        .collect();
    let leads = match app.store.get_many(&wanted).await {
        Ok(found) => Some(keyed(found)),
        Err(e) => {
            tracing::warn!(error = %e, "leads unreadable for now");
            None
        }
    };
    let page_keys: Vec<ItemKey> = if with_pages {
        pages.iter().flatten().map(page_key).collect()
    } else {
        Vec::new()
    };
    let found_pages = match app.store.get_many(&page_keys).await {
        Ok(found) => keyed(found),
        Err(e) => {
            tracing::warn!(error = %e, "pages unreadable for now");
            HashMap::new()
        }
    };
    let secrets = chunk_secrets(app, items, &pages).await;
    items
        .iter()
        .zip(pages)
        .zip(lead_keys)
        .map(|((item, page), lead_key)| {
            let window = lead_key.and_then(|key| match (key, &leads) {
                (None, _) => window_from(item, None),
                (Some(key), Some(leads)) => window_from(item, Some(leads.get(&key))),
                (Some(_), None) => Err(Attempt::Retry("store_unavailable")),
            });
            let secret = page
                .as_ref()
                .zip(reply_lead(item))
                .and_then(|(page, lead)| secrets.get(&(page.clone(), lead)).cloned());
            let page_item = page.and_then(|page| found_pages.get(&page_key(&page)).cloned());
            Prefetched {
                window: Some(window),
                page: page_item,
                secret,
            }
        })
        .collect()
}

/// The secrets of the leads of a chunk's replies sealed under their lead's key, one `get_many` per page
/// ([`lookup::secrets`]). A failure leaves them to each reply's attempt.
async fn chunk_secrets(
    app: &App,
    items: &[&Item],
    pages: &[Option<PageId>],
) -> HashMap<(PageId, LeadId), LeadSecret> {
    let mut wanted: HashMap<&PageId, Vec<LeadId>> = HashMap::new();
    for (item, page) in items.iter().zip(pages) {
        let (recipient, text) = (item.get_sealed("recipient"), item.get_sealed("text"));
        if !any_lead_sealed(&[&recipient, &text]) {
            continue;
        }
        if let (Some(page), Some(lead)) = (page, reply_lead(item)) {
            wanted.entry(page).or_default().push(lead);
        }
    }
    let mut secrets = HashMap::new();
    for (page, leads) in wanted {
        match lookup::secrets(app.key_store.as_ref(), page, &leads).await {
            Ok(found) => secrets.extend(
                found
                    .into_iter()
                    .map(|(lead, secret)| ((page.clone(), lead), secret)),
            ),
            Err(e) => tracing::warn!(error = %e, "lead secrets unreadable for now"),
        }
    }
    secrets
}

fn keyed(items: Vec<Item>) -> HashMap<ItemKey, Item> {
    items
        .into_iter()
        .map(|item| (item.key().clone(), item))
        .collect()
}

/// Delivers every reply due by now, until a few seconds before `deadline`: the due index is read
/// [`CHUNK`] replies at a time, each chunk is sent in order of its replies' window ends (a reply whose
/// outcome is already known, e.g. its lead is gone, first: it costs no send), up to `concurrency`
/// replies at once. The upper bound is fixed at the start: a reply put back for a later retry sorts
/// after it and is not met again in this drain.
///
/// # Errors
/// The store's failures: no new reply is started then, those in flight finish, and what was done stays
/// done.
#[instrument(name = "notify.replies", skip_all, fields(concurrency))]
pub async fn drain_due_replies_with(
    app: &App,
    deadline: Timestamp,
    concurrency: usize,
) -> Result<DrainReport, NotifyError> {
    let concurrency = concurrency.max(1);
    let stop_at = deadline.plus_secs(-DRAIN_MARGIN_SECS);
    let now = app.clock.now();
    let mut query = Query {
        index: Index::Gsi1,
        partition: DUE_PARTITION.to_owned(),
        range: KeyRange::AtMost(format!("{}~", now.sort_key())),
        order: Order::Ascending,
        limit: CHUNK,
        cursor: None,
    };
    let mut report = DrainReport::default();
    let mut running = tokio::task::JoinSet::new();
    let mut failure = None;
    'chunks: loop {
        if app.clock.now() >= stop_at {
            report.stopped_early = true;
            break;
        }
        let page = match app.store.query(&query).await {
            Ok(page) => page,
            Err(e) => {
                failure = Some(e.into());
                break;
            }
        };
        let items: Vec<(String, Item)> = page
            .items
            .into_iter()
            .filter_map(|item| Some((reply_id_of(&item.key().pk)?.to_owned(), item)))
            .collect();
        // The index is read in due order: the first chunk's earliest is the drain's.
        let due = items
            .iter()
            .filter_map(|(_, item)| item.get_i64("next_attempt_at"))
            .min()
            .map(Timestamp::from_millis);
        report.oldest_due = report.oldest_due.or(due);
        let refs: Vec<&Item> = items.iter().map(|(_, item)| item).collect();
        let reads = chunk_reads(app, &refs, concurrency > 1).await;
        let mut chunk: Vec<_> = reads.into_iter().zip(items).collect();
        // Stable: replies whose windows end together keep the index's order.
        chunk.sort_by_key(|(read, _)| {
            read.window
                .as_ref()
                .and_then(|window| window.as_ref().ok())
                .map(|at| at.millis())
        });
        for (read, (id, item)) in chunk {
            if app.clock.now() >= stop_at {
                report.stopped_early = true;
                break 'chunks;
            }
            while running.len() >= concurrency {
                if let Err(e) = finished(&mut running, &mut report).await {
                    failure = Some(e);
                    break 'chunks;
                }
            }
            let app = app.clone();
            running.spawn(async move { deliver_queried(&app, &id, item, read).await });
        }
        match page.next {
            Some(next) => query.cursor = Some(next),
            None => break,
        }
    }
    while !running.is_empty() {
        if let Err(e) = finished(&mut running, &mut report).await {
            failure.get_or_insert(e);
        }
    }
    if report != DrainReport::default() {
        tracing::info!(
            sent = report.sent,
            retrying = report.retrying,
            failed = report.failed,
            skipped = report.skipped,
            stopped_early = report.stopped_early,
            "replies drained"
        );
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Waits for one delivery in flight and counts it.
async fn finished(
    running: &mut tokio::task::JoinSet<Result<Delivery, NotifyError>>,
    report: &mut DrainReport,
) -> Result<(), NotifyError> {
    match running.join_next().await {
        Some(Ok(delivery)) => {
            report.count(delivery?);
            Ok(())
        }
        // A delivery that panicked: a bug, raised here as it would have been without the task.
        Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Some(Err(_)) | None => Ok(()),
    }
}
