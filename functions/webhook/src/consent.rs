//! Acting on one event: de-duplication, lead creation and consent transitions, replies.
//!
//! Every event's effects — the lead write, its chained consent record, an unsubscribe link, a reply, a
//! page stop and its notice — go into ONE transaction together with the event's de-duplication key
//! (WEBHOOK_EVENT, `NotExists`, 48 h TTL). So an event is applied exactly once: a retried, half-stored
//! batch re-applies only the events whose transaction did not commit, and a duplicate fails on its key
//! (operation 0) and is skipped. Lead writes are conditional (new: `NotExists`; existing: on the version
//! read), so a concurrent change makes the transaction fail as a whole and the event is re-planned on a
//! fresh read.
//!
//! "DELETE MY DATA" unsubscribes the lead and, in the same transaction, queues its erasure
//! (`qchat_shared::leads::erase_lead`, run by the erase function), freezes the lead (`erasure_job`),
//! acknowledges at once and parks the confirmation with the status page link, which the erasure releases
//! when it is done. Every later event of a frozen lead changes nothing; once the lead is erased, the
//! person's next message is a stranger's first message.
//!
//! A STOP (or another opt-out) from a person who is already unsubscribed records nothing — nothing
//! changed — but is confirmed again with the same "you're unsubscribed" reply, queued in the event's
//! transaction (so once per event: a replay fails on its de-duplication key, and the reply id is the
//! event's). The STOP itself opens Meta's 24-hour window (`last_message_at` moves on); a STOP whose
//! Meta time is already more than 24 h old gets no reply, as Meta would refuse it.
//!
//! A lead's values (its PSID or `user_ref`, its marketing token) and the replies naming it are sealed
//! under the lead's own key, derived from the secret its lookup holds (read with the lookup, no other
//! call); a lead whose lookup holds none (written before lookups held secrets) keeps the account's key.
//! Replies naming no lead (to a stranger, an erasure's acknowledgements) are sealed under the account's.
//!
//! A first message from a PSID that answers a checkbox-plugin message is linked to the checkbox opt-in:
//! see [`link`].
//!
//! Marketing messages (`notification_messages`), as decided in `qchat_shared::leads`:
//! - an opt-in is explicit consent, in either consent mode: a new, `pending`, `unsubscribed` or
//!   `unreachable` lead becomes `subscribed` — as every other explicit opt-in (Yes, START, the checkbox
//!   plugin) makes it, an `unreachable` one included, since the person just acted in Messenger — with
//!   the token active, a `marketing_opt_in` record, a fresh unsubscribe link and the confirmation reply
//!   that says how to stop; a `subscribed` lead gets the record and the (possibly refreshed) token;
//! - the person's STOP (`STOP_NOTIFICATIONS`, also spelled with spaces) withdraws consent to all of the
//!   page's messages, the 24-hour window's broadcasts included: the lead becomes `unsubscribed` at once
//!   and the token `stopped`, recorded as `marketing_stop`. No reply is queued: Messenger itself
//!   confirms the stop, and the person asked for fewer messages, not one more;
//! - RESUME is the person's own act to receive the page's marketing messages again: the token is active
//!   and the lead `subscribed`, as for an opt-in (`marketing_resume`). A resume for a person of whom no
//!   token is held, and one that changes nothing, record nothing;
//! - any other opt-out (STOP, the Unsubscribe button, No, DELETE MY DATA) also stops an active token
//!   ([`leads::ops::transition_ops`]); START or Yes leave a stopped token stopped.

use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::{BlindIndex, BlindIndexer, FieldCipher};
use qchat_shared::domain::{LeadId, NotificationToken, PageId};
use qchat_shared::inventory::{REPLY, UNSUBSCRIBE_LINK, WEBHOOK_EVENT};
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::erase_lead::{self, Origin};
use qchat_shared::leads::lookup;
use qchat_shared::leads::{
    self, Action, ConsentEvent, GENESIS_HASH, Lead, LeadStatus, MARKETING_ACTIVE,
    MARKETING_STOPPED, Subject, UnsubscribeToken, lead_key, unsubscribe_key,
};
use qchat_shared::replies::handoff::{HandedReply, ReplyHandoff, Slot};
use qchat_shared::replies::reply_id_of;
use qchat_shared::store::{Condition, Item, ItemKey, ItemStore, StoreError, Value, WriteOp};

pub mod link;

use crate::ProcessError;
use crate::envelope::{Event, Kind, MarketingChange, PolicyAction};
use crate::keywords::{self, Intent};
use crate::page::{self, ConnectedPage};
use crate::replies;

/// How long a de-duplication key is kept (SPEC §3: 48 h).
pub const DEDUP_HOURS: i64 = 48;
/// Attempts at an event whose transaction lost a race before the batch answers 503.
const ATTEMPTS: usize = 5;
/// Meta's standard messaging window: a reply may follow the person's message within 24 h.
const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    /// Nothing to store (an answer that changes nothing, a policy warning, STOP from a stranger).
    NoEffect,
}

/// What every event of a batch shares.
#[derive(Debug)]
pub struct Batch<'a> {
    pub app: &'a qchat_shared::app::App,
    /// Where the events read and write: the batch's staged unit of work, or the store itself.
    pub store: &'a dyn ItemStore,
    /// Where lead lookups are read and claimed: the batch's staged unit of work over the key store
    /// (committed before `store`'s), or the key store itself.
    pub key_store: &'a dyn ItemStore,
    pub indexer: BlindIndexer,
    pub now: Timestamp,
    policy_version: Option<String>,
    /// The replies of this batch's committed (or, staged, to be committed) transactions written claimed
    /// for the process's own sender; the caller takes them after each event ([`Self::take_handed`]).
    handed: Vec<Handed>,
}

impl<'a> Batch<'a> {
    pub fn new(
        app: &'a qchat_shared::app::App,
        store: &'a dyn ItemStore,
        key_store: &'a dyn ItemStore,
        indexer: BlindIndexer,
    ) -> Self {
        Self {
            app,
            store,
            key_store,
            indexer,
            now: app.clock.now(),
            policy_version: None,
            handed: Vec::new(),
        }
    }

    /// The replies written claimed since the last call, to send once they are durable.
    pub fn take_handed(&mut self) -> Vec<Handed> {
        std::mem::take(&mut self.handed)
    }

    /// The privacy-policy version in force, read once per batch and only if a record is written.
    async fn policy_version(&mut self) -> Result<String, ProcessError> {
        if let Some(v) = &self.policy_version {
            return Ok(v.clone());
        }
        let v = qchat_shared::policies::current_policy_version(
            self.app,
            qchat_shared::policies::PolicyKind::Privacy,
        )
        .await?;
        self.policy_version = Some(v.clone());
        Ok(v)
    }
}

/// The de-duplication hash of an event: page and `mid` (Meta's advice) when there is one, otherwise
/// page, the subject's lookup index (a blind index: no PSID goes into the key; the same before and after
/// the event creates the lead), kind, timestamp and ref/payload.
pub fn dedup_hash(ev: &Event, subject: Option<&BlindIndex>) -> String {
    let input = match ev.mid() {
        Some(mid) => format!("{}\u{0}mid\u{0}{mid}", ev.page),
        None => {
            let detail = match &ev.kind {
                Kind::Postback {
                    payload, referral, ..
                } => format!(
                    "{}\u{0}{}",
                    payload.as_deref().unwrap_or_default(),
                    referral.as_deref().unwrap_or_default()
                ),
                Kind::Referral { referral } | Kind::PluginOptIn { referral } => {
                    referral.clone().unwrap_or_default()
                }
                Kind::Marketing { change, .. } => format!("{change:?}"),
                Kind::Policy { action } => format!("{action:?}"),
                Kind::Message { quick_reply, .. } => quick_reply.clone().unwrap_or_default(),
                Kind::Echo | Kind::Receipt => String::new(),
            };
            format!(
                "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{detail}",
                ev.page,
                subject.map(BlindIndex::as_str).unwrap_or_default(),
                ev.kind_name(),
                ev.timestamp.unwrap_or_default()
            )
        }
    };
    hex::encode(qchat_shared::crypto::sha256(input.as_bytes()))
}

/// The keys [`apply`] reads first for `ev`: its de-duplication key (main store) and, for an event with a
/// subject, the subject's lookup (key store). For reading a batch's ahead of its events.
pub fn first_reads(indexer: &BlindIndexer, ev: &Event) -> (ItemKey, Option<ItemKey>) {
    let (index, hash) = index_and_hash(indexer, &ev.page, ev);
    (dedup_key(&hash), index.as_ref().map(lookup::lookup_key))
}

/// The blind index of `ev`'s subject on `page`, if it has one, and the event's de-duplication hash.
fn index_and_hash(
    indexer: &BlindIndexer,
    page: &PageId,
    ev: &Event,
) -> (Option<BlindIndex>, String) {
    let index = ev
        .subject
        .as_ref()
        .map(|s| leads::subject_index(indexer, page, s));
    let hash = dedup_hash(ev, index.as_ref());
    (index, hash)
}

pub fn dedup_key(hash: &str) -> ItemKey {
    ItemKey::new(format!("EVENT#{hash}"), "EVENT")
}

fn dedup_op(hash: &str, now: Timestamp) -> Result<WriteOp, StoreError> {
    let item = Item::new(&WEBHOOK_EVENT, dedup_key(hash))
        .plain("received_at", Value::N(now.millis()))?
        .expires_at(now.plus_hours(DEDUP_HOURS));
    Ok(WriteOp::Put {
        item,
        condition: Condition::NotExists,
    })
}

/// What a reply handed to the process's own sender needs besides its item (see [`claim_replies`]).
#[derive(Clone, Copy)]
struct HandoffFrom<'p> {
    page: &'p ConnectedPage,
    lead: &'p lookup::Found,
}

/// A reply written claimed, for the process's own sender once its batch has committed.
#[derive(Debug)]
pub struct Handed {
    slot: Slot,
    reply: HandedReply,
}

impl Handed {
    /// Gives the reply to the sender; call only once its transaction is durable. `page_changed`: the
    /// batch may have changed the page since the reply's event read it, so the sender reads it again.
    pub fn send(mut self, handoff: &ReplyHandoff, page_changed: bool) {
        if page_changed {
            self.reply.page = None;
        }
        handoff.send(self.slot, self.reply);
    }
}

/// The new replies among `ops`, written claimed by this process when it has a sender with a free slot
/// ([`qchat_shared::replies::handoff`]); what to hand it once they are durable.
fn claim_replies(
    batch: &Batch<'_>,
    from: HandoffFrom<'_>,
    ops: Vec<WriteOp>,
) -> Result<(Vec<WriteOp>, Vec<Handed>), ProcessError> {
    let Some(handoff) = batch.app.reply_handoff.as_deref() else {
        return Ok((ops, Vec::new()));
    };
    let mut handed = Vec::new();
    let mut claim = |item: Item| -> Result<Item, ProcessError> {
        let Some(id) = reply_id_of(&item.key().pk).map(str::to_owned) else {
            return Ok(item);
        };
        let Some(slot) = handoff.slot() else {
            return Ok(item);
        };
        let item = handoff.claim(item, &id, batch.now)?;
        let secret = from.lead.secret.clone();
        handed.push(Handed {
            slot,
            reply: HandedReply {
                id,
                item: item.clone(),
                page: Some(from.page.item.clone()),
                secret: secret.map(|secret| (from.lead.id.clone(), secret)),
            },
        });
        Ok(item)
    };
    let ops = ops
        .into_iter()
        .map(|op| match op {
            WriteOp::Put {
                item,
                condition: Condition::NotExists,
            } if item.item_type() == &REPLY => Ok(WriteOp::Put {
                item: claim(item)?,
                condition: Condition::NotExists,
            }),
            other => Ok(other),
        })
        .collect::<Result<Vec<_>, ProcessError>>()?;
    Ok((ops, handed))
}

/// Applies `ops` with the de-duplication key first. `Ok(None)` = lost a race: plan again. With `from`,
/// its new replies may be handed to the process's own sender ([`claim_replies`]): they are kept in
/// `batch` for the caller, who sends them once the batch is durable.
async fn commit(
    batch: &mut Batch<'_>,
    hash: &str,
    ops: Vec<WriteOp>,
    from: Option<HandoffFrom<'_>>,
) -> Result<Option<Outcome>, ProcessError> {
    let (ops, handed) = match from {
        Some(from) => claim_replies(batch, from, ops)?,
        None => (ops, Vec::new()),
    };
    let mut all = Vec::with_capacity(ops.len() + 1);
    all.push(dedup_op(hash, batch.now)?);
    all.extend(ops);
    match batch.store.transact(all).await {
        Ok(()) => {
            batch.handed.extend(handed);
            Ok(Some(Outcome::Applied))
        }
        Err(StoreError::TransactionConditionFailed { index: 0 }) => Ok(Some(Outcome::Duplicate)),
        Err(StoreError::TransactionConditionFailed { .. } | StoreError::TransactionConflict) => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// Applies one event of a connected page. Echoes and receipts never get here.
pub async fn apply(
    batch: &mut Batch<'_>,
    page: &ConnectedPage,
    ev: &Event,
) -> Result<Outcome, ProcessError> {
    let (index, hash) = index_and_hash(&batch.indexer, &page.id, ev);
    // A cheap read first: a replayed event costs one get (answered from the batch's read-ahead when the
    // batch is staged), and never reaches a transaction that could only fail on its key.
    if batch.store.get(&dedup_key(&hash)).await?.is_some() {
        return Ok(Outcome::Duplicate);
    }
    if let Kind::Policy { action } = ev.kind {
        return policy(batch, page, action, &hash).await;
    }
    let (Some(subject), Some(index)) = (ev.subject.as_ref(), index) else {
        return Ok(Outcome::NoEffect);
    };
    let account_cipher = batch
        .app
        .keys
        .cipher(&qchat_shared::app::account_key_owner(&page.account))
        .await?;
    let key_store = batch.key_store;
    let origin_id = link::origin_id(batch, page, ev, subject).await?;
    // The lookup names the lead and holds its secret: the lead's values are sealed under its own key
    // with no other read.
    let mut found = lookup::find(key_store, &index).await?;
    for _ in 0..ATTEMPTS {
        // No lookup, no lead: a new person costs no lead read. A new lead gets a fresh id (its
        // millisecond, then random bits) and a random secret, claimed below (committed before its
        // transaction).
        let (target, lead) = match &found {
            Some(f) => (
                f.clone(),
                leads::ops::load(batch.store, &page.id, &f.id).await?,
            ),
            None => (lookup::propose(batch.app.ids.as_ref(), batch.now)?, None),
        };
        let lead_id = target.id.clone();
        let cipher = lead_cipher(&account_cipher, &target)?;
        let step = Step {
            page,
            ev,
            subject,
            lead_id: &lead_id,
            hash: &hash,
            cipher: &cipher,
            account_cipher: &account_cipher,
        };
        // Linking happens only when the PSID lead is new and the checkbox lead is still open.
        let origin = match (&lead, &origin_id) {
            (None, Some(found)) => link::Origin::load(batch.store, &page.id, &found.id).await?,
            _ => None,
        };
        let plan = match &origin {
            Some(origin) => step.linked(batch, origin).await?,
            None => step.plan(batch, lead.as_ref()).await?,
        };
        if lead.is_none() && creates(&plan, &lead_key(&page.id, &lead_id)) {
            let holder = match lookup::claim(key_store, &page.id, &index, &target, batch.now).await
            {
                Ok(holder) => holder,
                // Another writer's transaction on the lookup at the same moment: plan again.
                Err(StoreError::TransactionConflict) => {
                    found = lookup::find(key_store, &index).await?;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if holder.id != lead_id {
                // The same person's first event, handled at the same time elsewhere, won: plan again
                // on its lead (and its key).
                found = Some(holder);
                continue;
            }
            found = Some(holder);
        }
        let done = match plan {
            Plan::Nothing => return Ok(Outcome::NoEffect),
            Plan::Write(ops) => {
                let from = HandoffFrom {
                    page,
                    lead: &target,
                };
                commit(batch, &hash, ops, Some(from)).await?
            }
            Plan::OptOut { source, reply } => {
                let event = step.event(batch, Action::OptOut, source, opt_out_wording(source));
                let event = event.await?;
                let extra = vec![dedup_op(&hash, batch.now)?, reply];
                match leads::ops::opt_out(
                    batch.store,
                    &page.id,
                    &lead_id,
                    |_| event.clone(),
                    batch.now,
                    extra,
                )
                .await?
                {
                    leads::ops::OptOut::Unsubscribed => Some(Outcome::Applied),
                    // Changed under us: plan again on a fresh read.
                    leads::ops::OptOut::AlreadyUnsubscribed | leads::ops::OptOut::NoSuchLead => {
                        None
                    }
                }
            }
        };
        if let Some(outcome) = done {
            if let (Some(origin), Outcome::Applied) = (&origin, outcome) {
                tracing::info!(
                    page = %page.id,
                    lead = %lead_id,
                    merged = %origin.lead.id,
                    "checkbox-plugin lead linked to the person's Messenger lead"
                );
            }
            return Ok(outcome);
        }
    }
    Err(StoreError::TransactionConflict.into())
}

/// The cipher of the lead `target`: its own key when its lookup holds a secret, else (a lead whose
/// lookup was written before lookups held secrets) the account's, as its values always were.
fn lead_cipher(account: &FieldCipher, target: &lookup::Found) -> Result<FieldCipher, ProcessError> {
    Ok(match &target.secret {
        Some(secret) => account.for_lead(secret, target.id.as_str())?,
        None => account.clone(),
    })
}

/// Whether `plan` writes the lead item at `key` (a new lead's creation).
fn creates(plan: &Plan, key: &ItemKey) -> bool {
    let Plan::Write(ops) = plan else {
        return false;
    };
    ops.iter()
        .any(|op| matches!(op, WriteOp::Put { item, .. } if item.key() == key))
}

async fn policy(
    batch: &mut Batch<'_>,
    page: &ConnectedPage,
    action: PolicyAction,
    hash: &str,
) -> Result<Outcome, ProcessError> {
    if action == PolicyAction::Warning {
        tracing::warn!(page = %page.id, "Meta sent a policy-enforcement warning for the page");
        return Ok(Outcome::NoEffect);
    }
    let notice_id = format!("policy.{}", &hash[..32]);
    for _ in 0..ATTEMPTS {
        // Fresh each time: the batch may have changed the page already.
        let Some(current) = page::load(batch.store, &page.id).await? else {
            return Ok(Outcome::NoEffect);
        };
        let ops = page::policy_ops(&current, action, &notice_id, batch.now)?;
        if ops.is_empty() {
            return Ok(Outcome::NoEffect);
        }
        if let Some(outcome) = commit(batch, hash, ops, None).await? {
            tracing::info!(page = %page.id, action = ?action, "page sending changed by Meta's policy enforcement");
            return Ok(outcome);
        }
    }
    Err(StoreError::TransactionConflict.into())
}

fn opt_out_wording(source: &str) -> String {
    match source {
        "quick_reply" => "Tapped the Unsubscribe quick reply in Messenger.".to_owned(),
        "postback" => "Tapped the Unsubscribe button in Messenger.".to_owned(),
        _ => "Sent a stop keyword (such as STOP or UNSUBSCRIBE) in Messenger.".to_owned(),
    }
}

fn implicit_wording(source: &str) -> &'static str {
    match source {
        "get_started" => {
            "Started the conversation with the Get Started button; in this page's implicit consent mode \
             starting the conversation is the opt-in to messages from the page."
        }
        "referral" => {
            "Opened the conversation through a referral link or ad; in this page's implicit consent mode \
             starting the conversation is the opt-in to messages from the page."
        }
        _ => {
            "Sent a first message to the page; in this page's implicit consent mode starting the \
             conversation is the opt-in to messages from the page."
        }
    }
}

/// What one event will write.
enum Plan {
    Nothing,
    Write(Vec<WriteOp>),
    /// Through [`leads::ops::opt_out`], with this confirmation reply.
    OptOut {
        source: &'static str,
        reply: WriteOp,
    },
}

/// One event being planned.
struct Step<'s> {
    page: &'s ConnectedPage,
    ev: &'s Event,
    subject: &'s Subject,
    lead_id: &'s LeadId,
    hash: &'s str,
    /// The lead's cipher ([`lead_cipher`]): the lead's values and the replies that name it.
    cipher: &'s FieldCipher,
    /// The account's: replies that name no lead (to a stranger, and an erasure's acknowledgements,
    /// which notify sends after the lead and its secret are gone).
    account_cipher: &'s FieldCipher,
}

impl Step<'_> {
    fn public_url<'b>(&self, batch: &'b Batch<'_>) -> &'b str {
        batch.app.config.public_url.trim_end_matches('/')
    }

    /// Whether the event is the person writing (updates `last_message_at`, Meta's 24-hour window).
    fn is_from_person(&self) -> bool {
        matches!(self.ev.kind, Kind::Message { .. } | Kind::Postback { .. })
    }

    fn written_at(&self, batch: &Batch<'_>) -> i64 {
        self.ev.timestamp.unwrap_or(batch.now.millis())
    }

    async fn event(
        &self,
        batch: &mut Batch<'_>,
        action: Action,
        source: &str,
        wording: String,
    ) -> Result<ConsentEvent, ProcessError> {
        let meta_ref = match &self.ev.kind {
            Kind::Postback {
                referral: Some(r), ..
            }
            | Kind::Referral { referral: Some(r) }
            | Kind::PluginOptIn { referral: Some(r) } => Some(r.clone()),
            _ => self.ev.mid().map(str::to_owned),
        };
        Ok(ConsentEvent {
            action,
            source: source.to_owned(),
            meta_ref,
            meta_timestamp: self.ev.timestamp,
            received_at: batch.now,
            policy_version: batch.policy_version().await?,
            consent_mode: self.page.consent_mode().to_owned(),
            wording,
        })
    }

    fn reply(
        &self,
        batch: &Batch<'_>,
        text: &str,
        buttons: &[(&str, &str)],
    ) -> Result<WriteOp, ProcessError> {
        self.reply_to(batch, Some(self.lead_id), text, buttons)
    }

    /// A reply; `lead` is `None` when answering a person of whom nothing is held (no lead exists, and
    /// notify must not look for one).
    fn reply_to(
        &self,
        batch: &Batch<'_>,
        lead: Option<&LeadId>,
        text: &str,
        buttons: &[(&str, &str)],
    ) -> Result<WriteOp, ProcessError> {
        let cipher = if lead.is_some() {
            self.cipher
        } else {
            self.account_cipher
        };
        replies::queue(
            cipher,
            &replies::reply_id(batch.now, self.hash),
            self.page,
            replies::To {
                subject: self.subject,
                lead,
            },
            text,
            buttons,
            batch.now,
        )
    }

    /// The lead item as it will be written: `last_message_at` moved on if the person wrote.
    fn touched(&self, batch: &Batch<'_>, lead: &Lead) -> Result<Item, ProcessError> {
        let item = lead.item.clone();
        if !self.is_from_person() {
            return Ok(item);
        }
        let at = self.written_at(batch);
        // Out-of-order delivery must not move the window back.
        let at = lead.last_message_at.map_or(at, |t| t.millis().max(at));
        Ok(item.plain("last_message_at", Value::N(at))?)
    }

    /// A plain lead update (no consent record), conditional on the version read.
    fn plain_update(&self, lead: &Lead, item: Item) -> WriteOp {
        let version = lead.item.version().unwrap_or(0);
        WriteOp::Put {
            item: item.with_version(version + 1),
            condition: Condition::VersionIs(version),
        }
    }

    /// The item of a lead that does not exist yet: the sealed subject, its kind, the creation time.
    fn fresh_item(&self, batch: &Batch<'_>) -> Result<Item, ProcessError> {
        let key = lead_key(&self.page.id, self.lead_id);
        let sealed = self
            .cipher
            .seal(&key, "subject", self.subject.expose().as_bytes())?;
        Ok(Item::new(&qchat_shared::inventory::LEAD, key)
            .sealed("subject", sealed)?
            .plain("subject_kind", Value::S(self.subject.kind().to_owned()))?
            .plain("created", Value::N(batch.now.millis()))?)
    }

    /// A lead with no record yet, to chain the first one onto.
    fn blank(&self, batch: &Batch<'_>, status: LeadStatus, item: Item) -> Lead {
        Lead {
            page: self.page.id.clone(),
            id: self.lead_id.clone(),
            status,
            created: batch.now,
            last_message_at: None,
            consent_seq: 0,
            consent_head: GENESIS_HASH.to_owned(),
            marketing_status: None,
            item,
        }
    }

    /// The opt-in `ref` this event carries (Get Started, a referral, a plugin opt-in), blind-indexed on
    /// the lead as `optin_ref`, so a broadcast can be sent to the leads of one campaign.
    fn with_optin_ref(&self, batch: &Batch<'_>, item: Item) -> Result<Item, ProcessError> {
        let r = match &self.ev.kind {
            Kind::Postback {
                referral: Some(r), ..
            }
            | Kind::Referral { referral: Some(r) }
            | Kind::PluginOptIn { referral: Some(r) } => r,
            _ => return Ok(item),
        };
        let index = qchat_shared::broadcast::optin_ref_index(&batch.indexer, &self.page.id, r);
        Ok(item.blind_index("optin_ref", &index)?)
    }

    /// The item of a new lead: [`Self::fresh_item`] with the opt-in ref, and when the person wrote,
    /// `last_message_at`.
    fn new_item(&self, batch: &Batch<'_>) -> Result<Item, ProcessError> {
        let item = self.with_optin_ref(batch, self.fresh_item(batch)?)?;
        if !self.is_from_person() {
            return Ok(item);
        }
        Ok(item.plain("last_message_at", Value::N(self.written_at(batch)))?)
    }

    /// The writes of a new lead (`item`, from [`Self::new_item`]) with its first status and record
    /// (`NotExists`: a concurrent creation fails the transaction, and the next attempt finds the lead).
    fn new_lead(
        &self,
        batch: &Batch<'_>,
        status: LeadStatus,
        event: ConsentEvent,
        item: Item,
    ) -> Result<Vec<WriteOp>, ProcessError> {
        let blank = self.blank(batch, status, item.clone());
        let (mut ops, _) = leads::ops::transition_ops(&blank, item, status, event)?;
        for op in &mut ops {
            if let WriteOp::Put { condition, .. } = op {
                *condition = Condition::NotExists;
            }
        }
        Ok(ops)
    }

    /// A fresh unsubscribe link for the lead: its item, and the lead item pointing at it (the lead's
    /// previous link is deleted, so erasure can always find every link through the lead).
    fn link(
        &self,
        batch: &Batch<'_>,
        lead: Option<&Lead>,
        item: Item,
    ) -> Result<(Vec<WriteOp>, Item, UnsubscribeToken), ProcessError> {
        // Derived, not random: a broadcast can then put the link in its footer without storing it.
        let previous = lead.and_then(|l| l.item.get_str("unsubscribe_hash"));
        let token = UnsubscribeToken::derive(
            &batch.indexer,
            &self.page.id,
            self.lead_id,
            batch.now,
            previous,
        );
        let hash = token.hash();
        let link = Item::new(&UNSUBSCRIBE_LINK, unsubscribe_key(&hash))
            .plain("page_id", Value::S(self.page.id.as_str().to_owned()))?
            .plain("lead_id", Value::S(self.lead_id.as_str().to_owned()))?
            .plain("created", Value::N(batch.now.millis()))?;
        let mut ops = vec![WriteOp::Put {
            item: link,
            condition: Condition::NotExists,
        }];
        if let Some(old) = lead.and_then(|l| l.item.get_str("unsubscribe_hash")) {
            ops.push(WriteOp::Delete {
                key: unsubscribe_key(&qchat_shared::crypto::OneWayHash::from_stored(old)),
                condition: Condition::Always,
            });
        }
        let item = item.hashed("unsubscribe_hash", &hash)?;
        Ok((ops, item, token))
    }

    /// Subscribes (new or existing lead) with an `OptIn` record, a fresh unsubscribe link and the
    /// confirmation reply saying how to stop.
    async fn subscribe(
        &self,
        batch: &mut Batch<'_>,
        lead: Option<&Lead>,
        source: &str,
        wording: String,
    ) -> Result<Plan, ProcessError> {
        self.subscribe_as(batch, lead, Action::OptIn, source, wording, Ok)
            .await
    }

    /// Subscribes (new or existing lead) with an `action` record, the attributes `extra` sets, a fresh
    /// unsubscribe link and the confirmation reply saying how to stop: every subscription, whatever its
    /// source, gets them.
    async fn subscribe_as(
        &self,
        batch: &mut Batch<'_>,
        lead: Option<&Lead>,
        action: Action,
        source: &str,
        wording: String,
        extra: impl FnOnce(Item) -> Result<Item, ProcessError>,
    ) -> Result<Plan, ProcessError> {
        let event = self.event(batch, action, source, wording).await?;
        let (mut ops, link_ops, token) = match lead {
            None => {
                let item = extra(self.new_item(batch)?)?;
                let (link_ops, item, token) = self.link(batch, None, item)?;
                let ops = self.new_lead(batch, LeadStatus::Subscribed, event, item)?;
                (ops, link_ops, token)
            }
            Some(lead) => {
                let item = extra(self.with_optin_ref(batch, self.touched(batch, lead)?)?)?;
                let (link_ops, item, token) = self.link(batch, Some(lead), item)?;
                let ops = leads::ops::transition_ops(lead, item, LeadStatus::Subscribed, event)?.0;
                (ops, link_ops, token)
            }
        };
        ops.extend(link_ops);
        let text = replies::subscribed(self.page, self.public_url(batch), token.expose());
        ops.push(self.reply(batch, &text, &replies::unsubscribe_button(self.page))?);
        Ok(Plan::Write(ops))
    }

    /// A new person started a conversation: implicit mode subscribes, confirmed mode asks.
    async fn first_contact(
        &self,
        batch: &mut Batch<'_>,
        source: &str,
    ) -> Result<Plan, ProcessError> {
        if !self.page.confirmed {
            return self
                .subscribe(batch, None, source, implicit_wording(source).to_owned())
                .await;
        }
        let question = replies::question(self.page, self.public_url(batch));
        let event = self
            .event(
                batch,
                Action::ConfirmationRequested,
                source,
                question.clone(),
            )
            .await?;
        let item = self.new_item(batch)?;
        let mut ops = self.new_lead(batch, LeadStatus::Pending, event, item)?;
        ops.push(self.reply(batch, &question, &replies::yes_no(self.page))?);
        Ok(Plan::Write(ops))
    }

    /// What the person asks for, from a payload of ours or the words of the message.
    fn intent(&self) -> (Intent, &'static str) {
        match &self.ev.kind {
            Kind::Message {
                quick_reply: Some(p),
                ..
            } if keywords::of_payload(p).is_some() => (
                keywords::of_payload(p).unwrap_or(Intent::None),
                "quick_reply",
            ),
            Kind::Message { text: Some(t), .. } => (keywords::of_text(&t.0), "keyword"),
            Kind::Postback {
                payload: Some(p), ..
            } => (keywords::of_payload(p).unwrap_or(Intent::None), "postback"),
            _ => (Intent::None, "keyword"),
        }
    }

    /// Whether a reply to this event is still inside Meta's 24-hour window (the event is the person's
    /// message, so it opens the window itself unless Meta delivers it more than a day late).
    fn within_window(&self, batch: &Batch<'_>) -> bool {
        self.written_at(batch) >= batch.now.millis() - WINDOW_MS
    }

    async fn plan(&self, batch: &mut Batch<'_>, lead: Option<&Lead>) -> Result<Plan, ProcessError> {
        // A merged lead is closed: the person is reached, and their consent kept, through the lead it
        // was merged into. Later events naming the old user_ref change nothing.
        if lead.is_some_and(|l| l.status == LeadStatus::Merged) {
            return Ok(Plan::Nothing);
        }
        // A lead whose erasure is queued is frozen: nothing it is sent could outlive the erasure.
        if lead.is_some_and(|l| erase_lead::requested_job(l).is_some()) {
            return Ok(Plan::Nothing);
        }
        match &self.ev.kind {
            Kind::Message { .. } | Kind::Postback { .. } => self.conversation(batch, lead).await,
            Kind::Referral { .. } => match lead {
                None => self.first_contact(batch, "referral").await,
                Some(_) => Ok(Plan::Nothing),
            },
            Kind::PluginOptIn { .. } => match lead {
                Some(l) if l.status == LeadStatus::Subscribed => Ok(Plan::Nothing),
                _ => {
                    self.subscribe(
                        batch,
                        lead,
                        "checkbox_plugin",
                        "Ticked the page's Messenger opt-in checkbox (checkbox plugin) to receive \
                         messages from the page."
                            .to_owned(),
                    )
                    .await
                }
            },
            Kind::Marketing { change, token } => {
                self.marketing(batch, lead, *change, token.as_ref()).await
            }
            Kind::Echo | Kind::Receipt | Kind::Policy { .. } => Ok(Plan::Nothing),
        }
    }

    async fn conversation(
        &self,
        batch: &mut Batch<'_>,
        lead: Option<&Lead>,
    ) -> Result<Plan, ProcessError> {
        let (intent, source) = self.intent();
        let url = self.public_url(batch).to_owned();
        let Some(lead) = lead else {
            return match intent {
                // Nothing is held about a stranger who says stop: keep it that way.
                Intent::Stop | Intent::No => Ok(Plan::Nothing),
                Intent::MyData | Intent::DeleteMyData => {
                    let text = replies::my_data(self.page, None, &url);
                    Ok(Plan::Write(vec![self.reply_to(batch, None, &text, &[])?]))
                }
                // An explicit yes or START is consent in either mode.
                Intent::Start | Intent::Yes => {
                    self.subscribe(
                        batch,
                        None,
                        if intent == Intent::Yes {
                            source
                        } else {
                            "keyword"
                        },
                        "Asked to subscribe (START / SUBSCRIBE or Yes) in Messenger.".to_owned(),
                    )
                    .await
                }
                Intent::None => {
                    let source = match self.ev.kind {
                        Kind::Postback { .. } => "get_started",
                        _ => "first_message",
                    };
                    self.first_contact(batch, source).await
                }
            };
        };
        let touched = self.touched(batch, lead)?;
        match intent {
            // An unsubscribed lead whose marketing token is still active has something to withdraw.
            Intent::Stop if lead.status != LeadStatus::Unsubscribed || lead.marketing_active() => {
                let text = replies::unsubscribed(self.page);
                Ok(Plan::OptOut {
                    source,
                    reply: self.reply(batch, &text, &[])?,
                })
            }
            // Already unsubscribed: nothing changed, so no record — but the person is told again.
            Intent::Stop => {
                let mut ops = vec![self.plain_update(lead, touched)];
                if self.within_window(batch) {
                    let text = replies::unsubscribed(self.page);
                    ops.push(self.reply(batch, &text, &[])?);
                }
                Ok(Plan::Write(ops))
            }
            Intent::Yes if lead.status != LeadStatus::Subscribed => {
                let wording = format!("Answered Yes to: {}", replies::question(self.page, &url));
                self.subscribe(batch, Some(lead), source, wording).await
            }
            Intent::No if lead.status == LeadStatus::Pending => {
                let wording = format!("Answered No to: {}", replies::question(self.page, &url));
                let event = self.event(batch, Action::Declined, source, wording).await?;
                let (mut ops, _) =
                    leads::ops::transition_ops(lead, touched, LeadStatus::Unsubscribed, event)?;
                ops.push(self.reply(batch, &replies::declined(self.page), &[])?);
                Ok(Plan::Write(ops))
            }
            Intent::Start if lead.status != LeadStatus::Subscribed => {
                self.subscribe(
                    batch,
                    Some(lead),
                    "keyword",
                    "Sent a start keyword (such as START or SUBSCRIBE) in Messenger.".to_owned(),
                )
                .await
            }
            Intent::MyData => {
                let text = replies::my_data(self.page, Some(lead), &url);
                Ok(Plan::Write(vec![
                    self.plain_update(lead, touched),
                    self.reply(batch, &text, &[])?,
                ]))
            }
            Intent::DeleteMyData => {
                let jobs = Jobs::new(
                    batch.app.store.clone(),
                    batch.app.clock.clone(),
                    batch.app.ids.clone(),
                    0,
                );
                // The event's own second reply: planned again, it gets the same id.
                let confirm_id = format!("{}-erased", replies::reply_id(batch.now, self.hash));
                let (job, queue) = erase_lead::enqueue_op(
                    &jobs,
                    &self.page.id,
                    self.lead_id,
                    Origin::Messenger,
                    batch.now,
                    Some(&confirm_id),
                )?;
                let item = erase_lead::mark(touched, &job, batch.now)?;
                let mut ops = if lead.status == LeadStatus::Unsubscribed && !lead.marketing_active()
                {
                    vec![self.plain_update(lead, item)]
                } else {
                    let event = self
                        .event(
                            batch,
                            Action::OptOut,
                            "keyword",
                            "Asked for erasure of their data (DELETE MY DATA) in Messenger."
                                .to_owned(),
                        )
                        .await?;
                    leads::ops::transition_ops(lead, item, LeadStatus::Unsubscribed, event)?.0
                };
                ops.push(queue);
                // Neither reply names the lead: the erasure must not remove them, and notify must send
                // them after the lead is gone.
                ops.push(self.reply_to(batch, None, &replies::erasure_queued(self.page), &[])?);
                let done = replies::erasure_done(self.page, &url, &job);
                let confirmation = replies::queue(
                    self.account_cipher,
                    &confirm_id,
                    self.page,
                    replies::To {
                        subject: self.subject,
                        lead: None,
                    },
                    &done,
                    &[],
                    batch.now,
                )?;
                ops.push(erase_lead::held_confirmation(confirmation)?);
                Ok(Plan::Write(ops))
            }
            _ if self.is_from_person() => Ok(Plan::Write(vec![self.plain_update(lead, touched)])),
            _ => Ok(Plan::Nothing),
        }
    }

    /// `item` with the marketing status and, when the event carries one, the token (sealed).
    fn with_marketing(
        &self,
        item: Item,
        status: &str,
        token: Option<&NotificationToken>,
    ) -> Result<Item, ProcessError> {
        let mut item = item.plain("marketing_status", Value::S(status.to_owned()))?;
        if let Some(token) = token {
            let key = lead_key(&self.page.id, self.lead_id);
            let sealed = self
                .cipher
                .seal(&key, "marketing_token", token.expose().as_bytes())?;
            item = item.sealed("marketing_token", sealed)?;
        }
        Ok(item)
    }

    /// A marketing-messages opt-in, stop or resume (see the module doc).
    async fn marketing(
        &self,
        batch: &mut Batch<'_>,
        lead: Option<&Lead>,
        change: MarketingChange,
        token: Option<&NotificationToken>,
    ) -> Result<Plan, ProcessError> {
        const SOURCE: &str = "marketing_messages";
        let (action, wording) = match change {
            MarketingChange::OptIn => (
                Action::MarketingOptIn,
                "Opted in to the page's marketing messages through Meta's opt-in request.",
            ),
            MarketingChange::Resume => (
                Action::MarketingResume,
                "Turned the page's marketing messages back on in Messenger.",
            ),
            MarketingChange::Stop => (
                Action::MarketingStop,
                "Turned the page's marketing messages off in Messenger: this withdraws consent to all \
                 of the page's messages.",
            ),
        };
        if change == MarketingChange::Stop {
            // Nothing is held about a stranger who stops: keep it that way.
            let Some(lead) = lead else {
                return Ok(Plan::Nothing);
            };
            if lead.status == LeadStatus::Unsubscribed && !lead.marketing_active() {
                return Ok(Plan::Nothing);
            }
            let event = self
                .event(batch, action, SOURCE, wording.to_owned())
                .await?;
            let item = self.with_marketing(self.touched(batch, lead)?, MARKETING_STOPPED, token)?;
            let (ops, _) = leads::ops::transition_ops(lead, item, LeadStatus::Unsubscribed, event)?;
            return Ok(Plan::Write(ops));
        }
        if change == MarketingChange::Resume {
            let Some(l) = lead else {
                return Ok(Plan::Nothing);
            };
            // No token to turn back on: no marketing opt-in of this person was ever recorded.
            if token.is_none() && l.item.get_sealed("marketing_token").is_none() {
                return Ok(Plan::Nothing);
            }
            if l.status == LeadStatus::Subscribed && l.marketing_active() && token.is_none() {
                return Ok(Plan::Nothing);
            }
        }
        match lead {
            Some(l) if l.status == LeadStatus::Subscribed => {
                let event = self
                    .event(batch, action, SOURCE, wording.to_owned())
                    .await?;
                let item = self.with_marketing(self.touched(batch, l)?, MARKETING_ACTIVE, token)?;
                let (ops, _) = leads::ops::transition_ops(l, item, LeadStatus::Subscribed, event)?;
                Ok(Plan::Write(ops))
            }
            // Explicit consent: subscribes like every other explicit opt-in (see the module doc).
            _ => {
                self.subscribe_as(batch, lead, action, SOURCE, wording.to_owned(), |item| {
                    self.with_marketing(item, MARKETING_ACTIVE, token)
                })
                .await
            }
        }
    }
}
