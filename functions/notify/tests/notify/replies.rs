//! Messenger replies on the embedded backends: Meta's 24-hour standard messaging window is checked at
//! send time (inside it the reply goes out once; past it no Graph call is made and the reply fails as
//! `outside_window`), a reply whose lead is gone is not sent, and exactly-once still holds.

use qchat_notify::replies::{LEAD_GONE, OUTSIDE_WINDOW};
use qchat_notify::{Delivery, deliver_reply, drain_due_replies, handle, tick};
use qchat_shared::clock::Clock as _;
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid};
use qchat_shared::leads::lead_key;
use qchat_shared::messenger::SendError;
use qchat_shared::store::Condition;
use qchat_shared::test_support::logs;
use serde_json::json;

use crate::helpers::{PAGE_TOKEN, TestApp, local_app, unique_email};

const PAGE_ID: &str = "1000000001";
const PSID: &str = "918273645500199887";
const TEXT: &str = "Your request is recorded, Zwetschgenkuchen-Liebhaber";
/// Just inside and just outside the window, in seconds after the person's message.
const INSIDE: i64 = 24 * 3600 - 1;
const PAST: i64 = 24 * 3600 + 1;

struct Fixture {
    t: TestApp,
    account: AccountId,
    page: PageId,
    lead: LeadId,
    psid: Psid,
}

/// A connected page and a lead who wrote just now.
async fn fixture() -> Fixture {
    let t = local_app().await;
    let account = t.create_account(&unique_email("replies")).await;
    let page = PageId::parse(PAGE_ID).unwrap();
    let psid = Psid::parse(PSID).unwrap();
    t.connect_page(&account, &page).await;
    let lead = t.seed_lead(&account, &page, &psid, t.clock.now()).await;
    Fixture {
        t,
        account,
        page,
        lead,
        psid,
    }
}

impl Fixture {
    /// Queues a reply to the lead, as the webhook does when the person writes.
    async fn reply(&self) -> String {
        self.t
            .queue_reply(
                &self.account,
                &self.page,
                Some(&self.lead),
                &self.psid,
                TEXT,
            )
            .await
    }
}

fn stream_event(reply_id: &str) -> serde_json::Value {
    let record = json!({
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": { "Keys": { "pk": { "S": format!("REPLY#{reply_id}") }, "sk": { "S": "REPLY" } } }
    });
    json!({ "Records": [record.clone(), record] })
}

#[tokio::test]
async fn a_reply_inside_the_24_hour_window_is_sent_once_as_a_response() {
    let f = fixture().await;
    let t = &f.t;
    let id = f.reply().await;
    t.clock.advance_secs(INSIDE);

    assert_eq!(deliver_reply(&t.app, &id).await.unwrap(), Delivery::Sent);

    assert_eq!(t.messenger.calls(), 1);
    let sent = t.messenger.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].page_id, PAGE_ID);
    assert_eq!(sent[0].messaging_type.as_deref(), Some("RESPONSE"));
    assert_eq!(sent[0].text, TEXT);
    assert!(
        serde_json::to_string(&sent[0].recipient)
            .unwrap()
            .contains(PSID)
    );
    let item = t.reply_item(&id).await;
    assert_eq!(item.get_str("state"), Some("sent"));
    assert_eq!(
        item.get_str("message_id"),
        Some(sent[0].message_id.as_str())
    );
    // Out of the due index; filed under its lead (if it names one), so erasing the lead finds it.
    assert!(
        item.gsi1()
            .is_none_or(|(pk, _)| pk.starts_with("REPLY#LEAD#"))
    );
}

#[tokio::test]
async fn a_reply_just_past_24_hours_is_not_sent_and_fails_as_outside_window() {
    let f = fixture().await;
    let t = &f.t;
    let id = f.reply().await;
    t.clock.advance_secs(PAST);

    let report = tick(&t.app, "test", t.roomy_deadline()).await.unwrap();

    assert_eq!((report.replies.sent, report.replies.failed), (0, 1));
    assert_eq!(t.messenger.calls(), 0, "no Graph API call is made");
    assert!(t.messenger.sent().is_empty());
    assert_eq!(
        t.reply_state(&id).await,
        ("failed".to_owned(), Some(OUTSIDE_WINDOW.to_owned()))
    );
    let item = t.reply_item(&id).await;
    assert_eq!(item.get_i64("attempts"), Some(1));
    assert_eq!(item.get_i64("lease_until"), Some(0));
    assert!(
        item.gsi1()
            .is_none_or(|(pk, _)| pk != qchat_shared::replies::DUE_PARTITION),
        "out of the due index"
    );
}

#[tokio::test]
async fn a_retry_after_a_graph_outage_longer_than_the_window_makes_no_second_call() {
    let f = fixture().await;
    let t = &f.t;
    let id = f.reply().await;
    t.messenger.fail_next(1, SendError::Temporary { code: 2 });

    let first = drain_due_replies(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(first.retrying, 1);
    assert_eq!(t.messenger.calls(), 1);
    // The sweep did not run for a day (or every retry met the outage): the window has closed since.
    t.clock.advance_secs(PAST);
    let late = drain_due_replies(&t.app, t.roomy_deadline()).await.unwrap();

    assert_eq!((late.sent, late.failed), (0, 1));
    assert_eq!(
        t.messenger.calls(),
        1,
        "the late retry made no Graph API call"
    );
    assert!(t.messenger.sent().is_empty());
    assert_eq!(t.reply_state(&id).await.1.as_deref(), Some(OUTSIDE_WINDOW));
    assert_eq!(t.reply_item(&id).await.get_i64("attempts"), Some(2));
}

#[tokio::test]
async fn a_reply_is_sent_exactly_once_by_deliver_the_sweep_and_a_repeated_stream_record() {
    let f = fixture().await;
    let t = &f.t;
    let id = f.reply().await;
    let event = stream_event(&id);

    handle(&t.app, "test", &event, t.roomy_deadline())
        .await
        .unwrap();
    handle(&t.app, "test", &event, t.roomy_deadline())
        .await
        .unwrap();
    assert_eq!(deliver_reply(&t.app, &id).await.unwrap(), Delivery::Skipped);
    t.clock.advance_secs(3600);
    let swept = tick(&t.app, "test", t.roomy_deadline()).await.unwrap();
    assert_eq!(swept.replies, Default::default());

    assert_eq!(t.messenger.calls(), 1);
    assert_eq!(t.messenger.sent().len(), 1);
    assert_eq!(t.reply_state(&id).await.0, "sent");
}

#[tokio::test]
async fn a_reply_failed_as_outside_window_stays_failed_and_is_never_sent_later() {
    let f = fixture().await;
    let t = &f.t;
    let id = f.reply().await;
    t.clock.advance_secs(PAST);
    assert_eq!(deliver_reply(&t.app, &id).await.unwrap(), Delivery::Failed);
    let recorded = t.reply_item(&id).await;

    // The person writes again: a new reply answers that; this one stays as it was.
    t.lead_wrote(&f.page, &f.lead, t.clock.now()).await;
    assert_eq!(deliver_reply(&t.app, &id).await.unwrap(), Delivery::Skipped);
    handle(&t.app, "test", &stream_event(&id), t.roomy_deadline())
        .await
        .unwrap();
    assert_eq!(
        drain_due_replies(&t.app, t.roomy_deadline())
            .await
            .unwrap()
            .sent,
        0
    );

    assert_eq!(t.messenger.calls(), 0);
    assert_eq!(t.reply_item(&id).await, recorded);
}

#[tokio::test]
async fn a_person_who_wrote_again_since_the_reply_was_queued_keeps_the_window_open() {
    let f = fixture().await;
    let t = &f.t;
    let id = f.reply().await;
    t.clock.advance_secs(20 * 3600);
    t.lead_wrote(&f.page, &f.lead, t.clock.now()).await;
    t.clock.advance_secs(10 * 3600);

    assert_eq!(deliver_reply(&t.app, &id).await.unwrap(), Delivery::Sent);
    assert_eq!(t.messenger.calls(), 1);
}

#[tokio::test]
async fn the_window_starts_no_earlier_than_the_message_the_reply_answers() {
    // An opt-out (STOP) does not move the lead's `last_message_at`, yet its confirmation answers a
    // message the person just sent: the reply's queue time opens the window.
    let t = local_app().await;
    let account = t.create_account(&unique_email("replies-stop")).await;
    let page = PageId::parse(PAGE_ID).unwrap();
    let psid = Psid::parse(PSID).unwrap();
    t.connect_page(&account, &page).await;
    let three_days_ago = t.clock.now().plus_days(-3);
    let lead = t.seed_lead(&account, &page, &psid, three_days_ago).await;
    let id = t
        .queue_reply(&account, &page, Some(&lead), &psid, TEXT)
        .await;
    t.clock.advance_secs(INSIDE);

    assert_eq!(deliver_reply(&t.app, &id).await.unwrap(), Delivery::Sent);

    // A reply without a lead (a checkbox-plugin person) is timed by its queue time alone.
    let no_lead = t.queue_reply(&account, &page, None, &psid, TEXT).await;
    t.clock.advance_secs(PAST);
    assert_eq!(
        deliver_reply(&t.app, &no_lead).await.unwrap(),
        Delivery::Failed
    );
    assert_eq!(
        t.reply_state(&no_lead).await.1.as_deref(),
        Some(OUTSIDE_WINDOW)
    );
    assert_eq!(t.messenger.calls(), 1);
}

#[tokio::test]
async fn a_reply_whose_lead_was_erased_is_not_sent_and_fails_as_lead_gone() {
    let f = fixture().await;
    let t = &f.t;
    let id = f.reply().await;
    t.app
        .store
        .delete(&lead_key(&f.page, &f.lead), Condition::Always)
        .await
        .unwrap();

    assert_eq!(deliver_reply(&t.app, &id).await.unwrap(), Delivery::Failed);

    assert_eq!(t.messenger.calls(), 0);
    assert_eq!(t.reply_state(&id).await.1.as_deref(), Some(LEAD_GONE));
    assert!(
        t.reply_item(&id)
            .await
            .gsi1()
            .is_none_or(|(pk, _)| pk != qchat_shared::replies::DUE_PARTITION)
    );
}

#[tokio::test]
async fn the_logs_of_window_checks_hold_no_psid_text_or_token() {
    let capture = logs::capture();
    let f = fixture().await;
    let t = &f.t;
    let sent = f.reply().await;
    let late = f.reply().await;
    deliver_reply(&t.app, &sent).await.unwrap();
    t.clock.advance_secs(PAST);
    deliver_reply(&t.app, &late).await.unwrap();
    assert_eq!(
        t.reply_state(&late).await.1.as_deref(),
        Some(OUTSIDE_WINDOW)
    );

    assert!(capture.contents().contains(&late), "the reply id is logged");
    capture.assert_absent(&[PSID, TEXT, PAGE_TOKEN]);
}
