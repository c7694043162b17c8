//! The Messenger outbox of replies: the write side, shared by the webhook (which queues replies in the
//! same transaction as the event that caused them) and notify (which sends them).
//!
//! Invariants: a reply's recipient and text are sealed under its lead's own key when it names a lead that
//! has a secret (format 2, [`crate::crypto::FieldCipher::for_lead`]), else under the page's account key
//! (a reply naming no lead, such as an erasure's acknowledgements, or a lead created before lead keys),
//! bound to the reply's item key and attribute name; unsent replies sit in the sparse index partition [`DUE_PARTITION`],
//! sorted by next attempt time, and sent or failed ones naming a lead in its partition [`lead_partition`]
//! (so erasing the lead finds them); every reply expires after [`RETENTION_DAYS`].

pub mod handoff;

use crate::clock::Timestamp;
use crate::crypto::Sealed;
use crate::domain::{AccountId, LeadId, PageId};
use crate::inventory::REPLY;
use crate::store::{Condition, Item, ItemKey, StoreError, Value, WriteOp};

/// The index partition of unsent replies.
pub const DUE_PARTITION: &str = "REPLY#DUE";
/// How long a reply item is kept after it is written, sent or not.
pub const RETENTION_DAYS: i64 = 7;

pub fn reply_key(id: &str) -> ItemKey {
    ItemKey::new(format!("REPLY#{id}"), "REPLY")
}

/// The reply id of a reply item key (`REPLY#<id>`); never the due partition.
pub fn reply_id_of(pk: &str) -> Option<&str> {
    pk.strip_prefix("REPLY#")
        .filter(|id| !id.is_empty() && *id != "DUE")
}

/// The index partition of a lead's replies once sent or failed, so erasing the lead finds them.
pub fn lead_partition(page: &PageId, lead: &LeadId) -> String {
    format!("REPLY#LEAD#{page}#{lead}")
}

/// A reply item leaving the due index once sent or failed: into its lead's partition
/// ([`lead_partition`]) if it names a lead, else out of the index.
pub fn finished(item: Item) -> Item {
    let lead = (
        item.get_str("page_id").and_then(|p| PageId::parse(p).ok()),
        item.get_str("lead_id").and_then(|l| LeadId::parse(l).ok()),
    );
    match lead {
        (Some(page), Some(lead)) => {
            let sk = item.key().pk.clone();
            item.with_gsi1(lead_partition(&page, &lead), sk)
        }
        _ => item.without_gsi1(),
    }
}

/// The sort key of an unsent reply in [`DUE_PARTITION`].
pub fn due_sort_key(at: Timestamp, id: &str) -> String {
    crate::outbox::due_sort_key(at, id)
}

/// A reply to queue; its personal values already sealed for [`reply_key`] of `id`.
#[derive(Debug)]
pub struct NewReply<'a> {
    pub id: &'a str,
    pub page: &'a PageId,
    pub account: &'a AccountId,
    pub lead: Option<&'a LeadId>,
    /// `psid` or `user_ref`.
    pub recipient_kind: &'static str,
    pub recipient: Sealed,
    pub text: Sealed,
    /// `(title, payload)` pairs: qchat's own buttons, not personal.
    pub quick_replies: &'a [(&'a str, &'a str)],
}

/// The write that queues a reply, due now. `NotExists`: a reply id is written once.
pub fn reply_op(reply: NewReply<'_>, now: Timestamp) -> Result<WriteOp, StoreError> {
    let buttons: Vec<_> = reply
        .quick_replies
        .iter()
        .map(|(title, payload)| serde_json::json!({ "title": title, "payload": payload }))
        .collect();
    let mut item = Item::new(&REPLY, reply_key(reply.id))
        .plain("page_id", Value::S(reply.page.as_str().to_owned()))?
        .plain("account_id", Value::S(reply.account.as_str().to_owned()))?
        .plain("recipient_kind", Value::S(reply.recipient_kind.to_owned()))?
        .sealed("recipient", reply.recipient)?
        .sealed("text", reply.text)?
        .plain(
            "quick_replies",
            Value::S(serde_json::Value::Array(buttons).to_string()),
        )?
        .plain("state", Value::S("pending".to_owned()))?
        .plain("attempts", Value::N(0))?
        .plain("next_attempt_at", Value::N(now.millis()))?
        .plain("lease_until", Value::N(0))?
        .plain("created", Value::N(now.millis()))?
        .with_version(1)
        .expires_at(now.plus_days(RETENTION_DAYS))
        .with_gsi1(DUE_PARTITION, due_sort_key(now, reply.id));
    if let Some(lead) = reply.lead {
        item = item.plain("lead_id", Value::S(lead.as_str().to_owned()))?;
    }
    Ok(WriteOp::Put {
        item,
        condition: Condition::NotExists,
    })
}
