//! New replies handed straight to a sender in the same process (the local server's): written claimed in
//! their event's transaction, handed over only once committed, sent once, and found by the due-index
//! drain when the sender never recorded an outcome; without a free slot, or behind a backlog, they wait
//! in the index as before.

use std::collections::BTreeSet;
use std::sync::Arc;

use qchat_notify::delivery::{Delivery, LEASE_SECS};
use qchat_shared::http::StatusCode;
use qchat_shared::replies::handoff::{ClaimedReply, ReplyHandoff};
use qchat_shared::replies::reply_key;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::helpers::*;

/// `t` with a hand-off of `slots` slots; the queue its sender would read.
fn with_handoff(
    t: &mut TestApp,
    slots: usize,
) -> (Arc<ReplyHandoff>, UnboundedReceiver<ClaimedReply>) {
    let (handoff, queue) = ReplyHandoff::new(slots, LEASE_SECS);
    let handoff = Arc::new(handoff);
    t.app = t.app.clone().with_reply_handoff(handoff.clone());
    (handoff, queue)
}

fn received(queue: &mut UnboundedReceiver<ClaimedReply>) -> Vec<ClaimedReply> {
    std::iter::from_fn(|| queue.try_recv().ok()).collect()
}

/// Replies due now, found and sent by a drain.
async fn drained(t: &TestApp) -> usize {
    let deadline = t.clock.now().plus_secs(60);
    let report = qchat_notify::drain_due_replies(&t.app, deadline)
        .await
        .unwrap();
    report.sent
}

pub async fn committed_replies_are_handed_over_claimed_and_sent_once(backend: Backend) {
    let mut t = app(backend, "confirmed").await;
    let (_handoff, mut queue) = with_handoff(&mut t, 8);
    let b = body(vec![
        message("8101", "m_h1", "hi", 1),
        message("8102", "m_h2", "hi", 2),
    ]);
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    let handed = received(&mut queue);
    assert_eq!(handed.len(), 2, "one question per new person");
    let lease_end = t.clock.now().plus_secs(LEASE_SECS).millis();
    for claimed in &handed {
        let stored = t
            .app
            .store
            .get(&reply_key(&claimed.reply.id))
            .await
            .unwrap();
        let stored = stored.expect("a handed reply is committed first");
        assert_eq!(stored.version(), Some(1));
        assert_eq!(stored.get_i64("lease_until"), Some(lease_end));
        assert_eq!(stored.get_str("state"), Some("pending"));
        assert!(claimed.reply.page.is_some() && claimed.reply.secret.is_some());
    }
    // Held: in the index, but not due before the lease ends.
    assert_eq!(t.due_replies().await, 2);
    assert_eq!(drained(&t).await, 0);
    for claimed in handed {
        let delivery = qchat_notify::replies::deliver_handed(&t.app, claimed).await;
        assert_eq!(delivery.unwrap(), Delivery::Sent);
    }
    let sent = t.sent_messages();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|l| l.messaging_type.as_deref() == Some("RESPONSE"))
    );
    assert_eq!(t.due_replies().await, 0, "sent replies leave the index");
    t.clock.advance_secs(LEASE_SECS + 1);
    assert_eq!(drained(&t).await, 0, "nothing is sent twice");
    // A replay hands nothing over.
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    assert!(received(&mut queue).is_empty());
    assert_eq!(t.sent_messages().len(), 2);
}

pub async fn a_handed_reply_never_recorded_is_sent_by_the_drain_when_its_lease_ends(
    backend: Backend,
) {
    let mut t = app(backend, "confirmed").await;
    let (_handoff, mut queue) = with_handoff(&mut t, 8);
    t.post(&body(vec![message("8201", "m_l1", "hi", 1)])).await;
    // The process stops before its sender gets to the reply.
    assert_eq!(received(&mut queue).len(), 1);
    assert_eq!(drained(&t).await, 0);
    t.clock.advance_secs(LEASE_SECS - 1);
    assert_eq!(drained(&t).await, 0, "still held");
    t.clock.advance_secs(2);
    assert_eq!(drained(&t).await, 1, "the lease ended: sent by the drain");
    assert_eq!(t.sent_messages().len(), 1);
    assert_eq!(t.due_replies().await, 0);
}

pub async fn without_a_free_slot_or_behind_a_backlog_replies_wait_in_the_index(backend: Backend) {
    let mut t = app(backend, "confirmed").await;
    let (handoff, mut queue) = with_handoff(&mut t, 1);
    t.post(&body(vec![
        message("8301", "m_s1", "hi", 1),
        message("8302", "m_s2", "hi", 2),
    ]))
    .await;
    let handed = received(&mut queue);
    assert_eq!(handed.len(), 1, "one slot");
    let queued_at = t.clock.now();
    t.clock.advance_millis(1_500);
    let report = qchat_notify::drain_due_replies(&t.app, t.clock.now().plus_secs(60))
        .await
        .unwrap();
    assert_eq!(report.sent, 1, "the other is due in the index at once");
    assert_eq!(
        report.oldest_due,
        Some(queued_at),
        "the drain says how long it waited"
    );
    drop(handed);
    handoff.set_backlog(true);
    t.post(&body(vec![message("8303", "m_s3", "hi", 3)])).await;
    assert!(
        received(&mut queue).is_empty(),
        "behind a backlog: no hand-off"
    );
    assert_eq!(drained(&t).await, 1);
    handoff.set_backlog(false);
    t.post(&body(vec![message("8304", "m_s4", "hi", 4)])).await;
    assert_eq!(received(&mut queue).len(), 1);
}

/// A storage failure in the middle of a batch: the replies of the events that committed are handed
/// over (and only those), the retry hands over the rest, and no reply is handed over twice.
pub async fn a_failed_commit_hands_over_exactly_the_committed_replies(backend: Backend) {
    let mut t = app(backend, "confirmed").await;
    let (_handoff, mut queue) = with_handoff(&mut t, 16);
    let b = body(vec![
        message("8401", "m_f1", "hi", 1),
        message("8402", "m_f2", "hi", 2),
        message("8403", "m_f3", "hi", 3),
        quick_reply("8401", "m_f4", "QCHAT_CONSENT_YES", 4),
    ]);
    t.store.fail_nth_transact(3);
    assert_eq!(t.post(&b).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let first = received(&mut queue);
    assert_eq!(
        first.len(),
        2,
        "the questions of the two events that committed"
    );
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    let second = received(&mut queue);
    assert_eq!(
        second.len(),
        2,
        "the third person's question and the first's confirmation"
    );
    let ids: BTreeSet<&str> = first
        .iter()
        .chain(&second)
        .map(|c| c.reply.id.as_str())
        .collect();
    assert_eq!(ids.len(), 4, "no reply handed over twice");
    for id in &ids {
        let stored = t.app.store.get(&reply_key(id)).await.unwrap();
        assert_eq!(
            stored.and_then(|r| r.version()),
            Some(1),
            "committed, as claimed"
        );
    }
    assert_eq!(drained(&t).await, 0, "every reply is held by the hand-off");
}
