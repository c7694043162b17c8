//! The wording of every Messenger reply the webhook queues, and the write that queues one.
//!
//! Invariants: replies are queued as REPLY items in the same transaction as the event that caused them
//! (notify sends them; nothing here calls the Graph API); the consent question's text is built once and
//! the very same string is sent and stored as the consent record's wording; a reply holds the person's
//! own data only.

use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::FieldCipher;
use qchat_shared::domain::LeadId;
use qchat_shared::leads::{Lead, Subject};
use qchat_shared::replies::{NewReply, reply_key, reply_op};
use qchat_shared::store::WriteOp;

use crate::ProcessError;
use crate::keywords::{CONSENT_NO, CONSENT_YES, UNSUBSCRIBE};
use crate::page::ConnectedPage;

pub const YES_NO: &[(&str, &str)] = &[("Yes", CONSENT_YES), ("No", CONSENT_NO)];
pub const UNSUBSCRIBE_BUTTON: &[(&str, &str)] = &[("Unsubscribe", UNSUBSCRIBE)];

/// The consent question of confirmed mode: sent as is, and stored as the record's wording.
pub fn question(page: &ConnectedPage, public_url: &str) -> String {
    format!(
        "Hi! {} would like to send you updates here in Messenger. Is that OK? You can stop at any time \
         by replying STOP. How your data is handled: {public_url}/privacy",
        page.display_name()
    )
}

/// The confirmation of a subscription: how to stop, by word or by link.
pub fn subscribed(page: &ConnectedPage, public_url: &str, token: &str) -> String {
    format!(
        "You're subscribed to messages from {}. To stop at any time, reply STOP or open \
         {public_url}/u/{token}. How your data is handled: {public_url}/privacy",
        page.display_name()
    )
}

pub fn unsubscribed(page: &ConnectedPage) -> String {
    format!(
        "You're unsubscribed: {} will not send you messages any more. Changed your mind? Reply START.",
        page.display_name()
    )
}

pub fn declined(page: &ConnectedPage) -> String {
    format!(
        "OK, {} will not send you updates. If you change your mind, reply START.",
        page.display_name()
    )
}

fn day(at: Timestamp) -> String {
    at.to_rfc3339().chars().take(10).collect()
}

/// "MY DATA": what is held about this person on this page, and nothing about anyone else.
pub fn my_data(page: &ConnectedPage, lead: Option<&Lead>, public_url: &str) -> String {
    let Some(lead) = lead else {
        return format!(
            "{} holds no data about you through qchat. How your data is handled: {public_url}/privacy",
            page.display_name()
        );
    };
    let marketing = match lead.marketing_status.as_deref() {
        Some("active") => "on",
        Some(_) => "off",
        None => "never turned on",
    };
    format!(
        "What {} holds about you through qchat: your Messenger id (encrypted); status: {}; known since \
         {}; consent records: {}; marketing messages: {marketing}; when you last wrote. No message text, \
         name or picture is kept. Reply DELETE MY DATA to ask for its erasure. More: {public_url}/privacy",
        page.display_name(),
        lead.status.name(),
        day(lead.created),
        lead.consent_seq,
    )
}

pub fn erasure_queued(page: &ConnectedPage) -> String {
    format!(
        "Your request is received: you will get no more messages from {} through qchat, and everything \
         qchat holds about you for this page is being erased. A message here will confirm when it is done.",
        page.display_name()
    )
}

/// The confirmation an erasure releases when it is done (Meta's 24-hour window permitting).
pub fn erasure_done(page: &ConnectedPage, public_url: &str, code: &str) -> String {
    format!(
        "Everything qchat held about you for {} has been erased. Confirmation code: {code}. \
         Status: {public_url}/deletion/{code}",
        page.display_name()
    )
}

/// Who a reply goes to: the person (sealed into the reply) and their lead, if there is one.
#[derive(Debug, Clone, Copy)]
pub struct To<'a> {
    pub subject: &'a Subject,
    pub lead: Option<&'a LeadId>,
}

/// A reply's id: the batch's time (zero-padded milliseconds), then the event's de-duplication hash.
/// - The hash makes it the event's own: planning the event again in the same batch (after a concurrent
///   change) makes the same id, and another delivery of the event is stopped by its de-duplication key,
///   written in the same transaction as the reply.
/// - The time first puts a new reply's key at the end of the reply keys, next to the rest of its batch
///   (one index page for the batch rather than a random one per reply; measured by the webhook benchmark).
pub fn reply_id(now: Timestamp, event_hash: &str) -> String {
    let hash = event_hash.get(..26).unwrap_or(event_hash);
    format!("{}-{hash}", now.sort_key())
}

/// The write that queues `text` to `to`, sealed under the page's account key; `id` from [`reply_id`].
pub fn queue(
    cipher: &FieldCipher,
    id: &str,
    page: &ConnectedPage,
    to: To<'_>,
    text: &str,
    buttons: &[(&str, &str)],
    now: Timestamp,
) -> Result<WriteOp, ProcessError> {
    let key = reply_key(id);
    let recipient = cipher.seal(&key, "recipient", to.subject.expose().as_bytes())?;
    let text = cipher.seal(&key, "text", text.as_bytes())?;
    Ok(reply_op(
        NewReply {
            id,
            page: &page.id,
            account: &page.account,
            lead: to.lead,
            recipient_kind: to.subject.kind(),
            recipient,
            text,
            quick_replies: buttons,
        },
        now,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn a_reply_id_is_the_events_own_and_sorts_by_the_batch_time() {
        let at = Timestamp::from_millis(1_800_000_000_000);
        assert_eq!(reply_id(at, HASH), reply_id(at, HASH));
        assert_ne!(reply_id(at, HASH), reply_id(at, &HASH.replace('0', "f")));
        let later = reply_id(at.plus_millis(1), "ffffffffffffffffffffffffffffffffff");
        assert!(reply_id(at, HASH) < later);
        assert!(reply_id(Timestamp::from_millis(5), HASH) < reply_id(at, HASH));
    }
}
