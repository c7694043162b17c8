//! Linking a checkbox-plugin opt-in to the person's Messenger lead.
//!
//! A checkbox-plugin opt-in names the person only by the plugin's `user_ref`, so it makes a lead of its
//! own (subject kind `user_ref`). When the person answers the page's message in Messenger, Meta sends an
//! ordinary message (or postback) from their PSID with `prior_message: {source: "checkbox_plugin",
//! identifier: <user_ref>}`. If the PSID lead is new and the page holds an open lead of that `user_ref`
//! (found through its lookup in the key store: the `user_ref` itself is never logged, and is stored
//! only sealed), the event's ONE transaction — with its de-duplication key — links the two:
//!
//! - the new PSID lead inherits the checkbox lead's consent status (subscribed stays subscribed; an
//!   opt-out stays an opt-out, so a person who unsubscribed never becomes subscribed by linking; an
//!   `unreachable` checkbox lead passes on the status its chain last recorded). Its first consent record
//!   has source `checkbox_plugin_linked`, action `opt_in` / `opt_out` / `confirmation_requested` after
//!   that status, Meta's `mid` of the answering message as its ref, and a wording that names the
//!   checkbox lead id, the checkbox opt-in record (sequence and hash, and its wording quoted) and that
//!   chain's head. The lead item holds `linked_from` = the checkbox lead id (erasure and export follow it);
//! - the checkbox lead is CLOSED, not deleted: its status becomes `merged` (out of the subscribed index,
//!   so it is neither counted nor broadcast to twice), `merged_into` names the PSID lead, and its chain
//!   gets a last record (action `merged`, source `checkbox_plugin_linked`) holding the PSID lead id and
//!   the hash of that lead's first record. Both chains stay intact and verifiable and point at each
//!   other by hash, so the original opt-in remains provable exactly as it was recorded — copying the
//!   records into the PSID lead's partition would break their hashes, which bind the lead id. The
//!   sealed `user_ref` is removed from the closed lead: nothing is sent to it any more;
//! - the checkbox lead's unsubscribe link (sent to the person in the opt-in confirmation) is re-pointed
//!   to the PSID lead, which takes over its hash: the link the person holds keeps working. An opt-out
//!   that still names the merged lead (the account holder's) is applied to the lead it was merged into
//!   (`qchat_shared::leads::ops::opt_out`);
//! - then the message itself is handled as for any known lead, on the linked state: a STOP unsubscribes
//!   (with the confirmation reply), START re-subscribes after an earlier opt-out, an ordinary message
//!   only moves `last_message_at`. No consent question is asked, in either consent mode: ticking the
//!   checkbox was explicit consent, and the checkbox lead already got its confirmation.
//!
//! Every write is conditional (the PSID lead `NotExists`, the checkbox lead on the version read, the
//! records `NotExists`, the link `Exists`): a concurrent change fails the whole transaction and the event
//! is planned again — and then finds the PSID lead, so a link is made at most once. A retried or
//! duplicated event fails on its de-duplication key. A merged lead is never linked again; later events
//! naming its `user_ref` change nothing.
//!
//! Only a NEW PSID lead is linked: a person already known by PSID keeps their own chain, and the
//! checkbox lead stays as it is.

use qchat_shared::crypto::OneWayHash;
use qchat_shared::domain::{LeadId, PageId};
use qchat_shared::leads::consent::history;
use qchat_shared::leads::{
    self, Action, ConsentRecord, Lead, LeadStatus, Subject, lead_key, unsubscribe_key,
};
use qchat_shared::store::{Condition, Item, ItemStore, StoreError, Value, WriteOp};

use super::{Batch, Plan, Step, opt_out_wording};
use crate::ProcessError;
use crate::envelope::{Event, Kind};
use crate::page::{ConnectedPage, without_attribute};

/// The source of both records a link writes.
pub const SOURCE: &str = "checkbox_plugin_linked";

/// The id of the checkbox lead an event may link to: a person's message or postback, from a PSID,
/// answering a checkbox-plugin message (its lookup in the key store: one read, for such events only).
pub(super) async fn origin_id(
    batch: &Batch<'_>,
    page: &ConnectedPage,
    ev: &Event,
    subject: &Subject,
) -> Result<Option<leads::lookup::Found>, StoreError> {
    let Some(user_ref) = ev.checkbox_user_ref.as_ref() else {
        return Ok(None);
    };
    let answers = matches!(ev.kind, Kind::Message { .. } | Kind::Postback { .. });
    if !answers || !matches!(subject, Subject::Psid(_)) {
        return Ok(None);
    }
    let origin = Subject::UserRef(user_ref.clone());
    let index = leads::subject_index(&batch.indexer, &page.id, &origin);
    leads::lookup::find(batch.key_store, &index).await
}

/// An open checkbox lead, as read for linking.
#[derive(Debug)]
pub(super) struct Origin {
    pub(super) lead: Lead,
    records: Vec<ConsentRecord>,
    /// Its unsubscribe link item, if it has one.
    link: Option<Item>,
}

impl Origin {
    /// The checkbox lead `id` of `page`, unless there is none or it is already merged.
    pub(super) async fn load(
        store: &dyn ItemStore,
        page: &PageId,
        id: &LeadId,
    ) -> Result<Option<Self>, StoreError> {
        let Some(lead) = leads::ops::load(store, page, id).await? else {
            return Ok(None);
        };
        if lead.status == LeadStatus::Merged {
            return Ok(None);
        }
        let records = history(store, page, id).await?;
        if let Err(b) = leads::verify_chain(id, &records, lead.consent_seq, &lead.consent_head) {
            // Still linked (the person's consent state must carry over); the proof shows the break.
            tracing::warn!(page = %page, lead = %id, at_seq = b.at_seq, reason = b.reason,
                "the consent chain of a checkbox-plugin lead does not verify; linking it as it is");
        }
        let link = match lead.item.get_str("unsubscribe_hash") {
            Some(hash) => {
                store
                    .get(&unsubscribe_key(&OneWayHash::from_stored(hash)))
                    .await?
            }
            None => None,
        };
        Ok(Some(Self {
            lead,
            records,
            link,
        }))
    }

    /// The consent status the PSID lead takes over.
    fn inherited(&self) -> LeadStatus {
        match self.lead.status {
            LeadStatus::Subscribed | LeadStatus::Unsubscribed | LeadStatus::Pending => {
                self.lead.status
            }
            // Reachability is the checkbox reference's, not the person's: their last consent decides.
            LeadStatus::Unreachable | LeadStatus::Merged => self
                .records
                .iter()
                .rev()
                .find_map(|r| match r.event.action {
                    Action::OptIn | Action::MarketingOptIn | Action::MarketingResume => {
                        Some(LeadStatus::Subscribed)
                    }
                    Action::ConfirmationRequested => Some(LeadStatus::Pending),
                    Action::OptOut | Action::Declined | Action::MarketingStop => {
                        Some(LeadStatus::Unsubscribed)
                    }
                    _ => None,
                })
                .unwrap_or(LeadStatus::Unsubscribed),
        }
    }

    /// The record that proves the checkbox opt-in (the latest one), else the chain's last record.
    fn proof(&self) -> Option<&ConsentRecord> {
        self.records
            .iter()
            .rev()
            .find(|r| r.event.action == Action::OptIn && r.event.source == "checkbox_plugin")
            .or_else(|| self.records.last())
    }

    /// The wording of the PSID lead's first record.
    fn wording(&self, status: LeadStatus) -> String {
        let proof = match self.proof() {
            Some(r) => format!(
                "Its consent record {} (hash {}) says: \"{}\".",
                r.seq, r.hash, r.event.wording
            ),
            None => "It holds no consent record.".to_owned(),
        };
        format!(
            "Linked to the checkbox-plugin lead {}: the person answered, from Messenger, a message the \
             page sent through its Messenger checkbox plugin, so it is the same person. Status carried \
             over: {}. {proof} That lead's chain at linking: {} records, head {}.",
            self.lead.id,
            status.name(),
            self.lead.consent_seq,
            self.lead.consent_head,
        )
    }
}

impl Step<'_> {
    /// The plan of a PSID's first event that links `origin` (see the module doc).
    pub(super) async fn linked(
        &self,
        batch: &mut Batch<'_>,
        origin: &Origin,
    ) -> Result<Plan, ProcessError> {
        let status = origin.inherited();
        let action = match status {
            LeadStatus::Subscribed => Action::OptIn,
            LeadStatus::Pending => Action::ConfirmationRequested,
            _ => Action::OptOut,
        };
        let event = self
            .event(batch, action, SOURCE, origin.wording(status))
            .await?;
        let key = lead_key(&self.page.id, self.lead_id);
        let mut item = self
            .fresh_item(batch)?
            .plain("linked_from", Value::S(origin.lead.id.as_str().to_owned()))?;
        // The link the person holds now stops the PSID lead.
        let repoint = match (&origin.link, origin.lead.item.get_str("unsubscribe_hash")) {
            (Some(link), Some(hash)) => {
                item = item.hashed("unsubscribe_hash", &OneWayHash::from_stored(hash))?;
                let link = link
                    .clone()
                    .plain("lead_id", Value::S(self.lead_id.as_str().to_owned()))?;
                Some(WriteOp::Put {
                    item: link,
                    condition: Condition::Exists,
                })
            }
            _ => None,
        };

        // 1. The PSID lead's first record; the lead as it stands after it (written at the end).
        let blank = self.blank(batch, status, item.clone());
        let (first_ops, first) = leads::ops::transition_ops(&blank, item.clone(), status, event)?;
        let mut ops = Vec::new();
        let mut linked_item = item;
        for op in first_ops {
            match op {
                WriteOp::Put { item, .. } if item.key() == &key => linked_item = item,
                other => ops.push(other),
            }
        }
        let linked = Lead {
            status,
            consent_seq: first.seq,
            consent_head: first.hash.clone(),
            item: linked_item,
            ..blank
        };

        // 2. The checkbox lead is closed, its chain ending with the merge.
        let wording = format!(
            "Merged into lead {}: the person answered, from Messenger, a message the page sent through \
             its Messenger checkbox plugin. This lead's consent carries on there, from its record 1 \
             (hash {}).",
            self.lead_id, first.hash
        );
        let merged = self.event(batch, Action::Merged, SOURCE, wording).await?;
        let mut closed = without_attribute(&origin.lead.item, "subject")?;
        if repoint.is_some() {
            closed = without_attribute(&closed, "unsubscribe_hash")?;
        }
        let closed = closed.plain("merged_into", Value::S(self.lead_id.as_str().to_owned()))?;
        ops.extend(leads::ops::transition_ops(&origin.lead, closed, LeadStatus::Merged, merged)?.0);

        // 3. The event itself, on the linked state; the lead is written once, as new.
        let mut planned = match self.conversation(batch, Some(&linked)).await? {
            Plan::Nothing => Vec::new(),
            Plan::Write(ops) => ops,
            Plan::OptOut { source, reply } => {
                let event = self
                    .event(batch, Action::OptOut, source, opt_out_wording(source))
                    .await?;
                let item = self.touched(batch, &linked)?;
                let (mut ops, _) =
                    leads::ops::transition_ops(&linked, item, LeadStatus::Unsubscribed, event)?;
                ops.push(reply);
                ops
            }
        };
        let mut written = false;
        for op in &mut planned {
            if let WriteOp::Put { item, condition } = op
                && item.key() == &key
            {
                *condition = Condition::NotExists;
                written = true;
            }
        }
        if !written {
            planned.push(WriteOp::Put {
                item: self.touched(batch, &linked)?,
                condition: Condition::NotExists,
            });
        }
        // A re-subscription replaces the link (and deletes the old one): then it is not re-pointed.
        if let Some(repoint) = repoint {
            let taken = planned.iter().any(|op| op.key() == repoint.key());
            if !taken {
                ops.push(repoint);
            }
        }
        ops.extend(planned);
        Ok(Plan::Write(ops))
    }
}
