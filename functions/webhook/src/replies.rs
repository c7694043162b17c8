//! The Messenger replies the webhook queues, in the page's language (worded once, in
//! [`qchat_shared::bot_texts`]), and the write that queues one.
//!
//! Invariants: replies are queued as REPLY items in the same transaction as the event that caused them
//! (notify sends them; nothing here calls the Graph API); the consent question's text is built once and
//! the very same string is sent and stored as the consent record's wording; a reply holds the person's
//! own data only.

use qchat_shared::bot_texts::fill;
use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::FieldCipher;
use qchat_shared::domain::LeadId;
use qchat_shared::leads::{Lead, Subject};
use qchat_shared::replies::{NewReply, reply_key, reply_op};
use qchat_shared::store::WriteOp;

use crate::ProcessError;
use crate::keywords::{CONSENT_NO, CONSENT_YES, UNSUBSCRIBE};
use crate::page::ConnectedPage;

/// The consent question's quick replies, titled in the page's language.
pub fn yes_no(page: &ConnectedPage) -> [(&'static str, &'static str); 2] {
    let t = page.lang.bot();
    [(t.yes, CONSENT_YES), (t.no, CONSENT_NO)]
}

/// The Unsubscribe quick reply, titled in the page's language.
pub fn unsubscribe_button(page: &ConnectedPage) -> [(&'static str, &'static str); 1] {
    [(page.lang.bot().unsubscribe, UNSUBSCRIBE)]
}

fn privacy(public_url: &str) -> String {
    format!("{public_url}/privacy")
}

/// The consent question of confirmed mode: sent as is, and stored as the record's wording.
pub fn question(page: &ConnectedPage, public_url: &str) -> String {
    fill(
        page.lang.bot().question,
        &[
            ("page", page.display_name()),
            ("privacy", &privacy(public_url)),
        ],
    )
}

/// The confirmation of a subscription: how to stop, by word or by link.
pub fn subscribed(page: &ConnectedPage, public_url: &str, token: &str) -> String {
    fill(
        page.lang.bot().subscribed,
        &[
            ("page", page.display_name()),
            ("link", &format!("{public_url}/u/{token}")),
            ("privacy", &privacy(public_url)),
        ],
    )
}

pub fn unsubscribed(page: &ConnectedPage) -> String {
    fill(
        page.lang.bot().unsubscribed,
        &[("page", page.display_name())],
    )
}

pub fn declined(page: &ConnectedPage) -> String {
    fill(page.lang.bot().declined, &[("page", page.display_name())])
}

fn day(at: Timestamp) -> String {
    at.to_rfc3339().chars().take(10).collect()
}

/// "MY DATA": what is held about this person on this page, and nothing about anyone else.
pub fn my_data(page: &ConnectedPage, lead: Option<&Lead>, public_url: &str) -> String {
    let t = page.lang.bot();
    let Some(lead) = lead else {
        return fill(
            t.my_data_none,
            &[
                ("page", page.display_name()),
                ("privacy", &privacy(public_url)),
            ],
        );
    };
    let [on, off, never] = t.marketing;
    let marketing = match lead.marketing_status.as_deref() {
        Some("active") => on,
        Some(_) => off,
        None => never,
    };
    fill(
        t.my_data,
        &[
            ("page", page.display_name()),
            ("status", t.status(lead.status.name())),
            ("since", &day(lead.created)),
            ("records", &lead.consent_seq.to_string()),
            ("marketing", marketing),
            ("privacy", &privacy(public_url)),
        ],
    )
}

pub fn erasure_queued(page: &ConnectedPage) -> String {
    fill(
        page.lang.bot().erasure_queued,
        &[("page", page.display_name())],
    )
}

/// The confirmation an erasure releases when it is done (Meta's 24-hour window permitting).
pub fn erasure_done(page: &ConnectedPage, public_url: &str, code: &str) -> String {
    fill(
        page.lang.bot().erasure_done,
        &[
            ("page", page.display_name()),
            ("code", code),
            ("link", &format!("{public_url}/deletion/{code}")),
        ],
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

/// The write that queues `text` to `to`, sealed with `cipher`: the lead's own key when `to` names a lead
/// that has one, else the page's account key (see `consent::Step`); `id` from [`reply_id`].
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
