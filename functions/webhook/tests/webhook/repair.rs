//! A signed batch with unreadable values (lone surrogate escapes, invalid UTF-8) keeps every event that
//! can be read; the signature stays checked over the bytes as received.

use qchat_shared::http::StatusCode;
use qchat_shared::leads::{Action, LeadStatus};

use crate::helpers::*;

/// A body whose `@@…@@` placeholders become bytes no JSON parser reads: `@@HIGH@@` a lone high surrogate
/// escape, `@@LOW@@` a lone low surrogate escape, `@@BYTES@@` invalid UTF-8.
fn broken(items: Vec<serde_json::Value>) -> Vec<u8> {
    let text = serde_json::to_string(&body(items))
        .unwrap()
        .replace("@@HIGH@@", r"\ud800")
        .replace("@@LOW@@", r"\udc00");
    let mut out = Vec::new();
    let mut parts = text.split("@@BYTES@@").peekable();
    while let Some(part) = parts.next() {
        out.extend_from_slice(part.as_bytes());
        if parts.peek().is_some() {
            out.extend_from_slice(&[0xff, 0xc3, 0x28]);
        }
    }
    assert!(serde_json::from_slice::<serde_json::Value>(&out).is_err());
    out
}

fn batch() -> Vec<u8> {
    broken(vec![
        message("9001", "m_r1", "hello", 1),
        message("9002", "m_r2", "hi @@HIGH@@ there", 2),
        message("9003", "m_r3", "@@LOW@@", 3),
        message("9004", "m_r4", "caf@@BYTES@@", 4),
        // Literal text, not an escape: `\\ud800` is a backslash and "ud800".
        message("9005", "m_r5", r"\ud800", 5),
        // The sender itself unreadable: this event alone is lost, and counted.
        message("@@HIGH@@", "m_r6", "hi", 6),
        message("9007", "m_r7", "bye", 7),
    ])
}

const STORED: [&str; 6] = ["9001", "9002", "9003", "9004", "9005", "9007"];

pub async fn a_signed_batch_with_unreadable_values_stores_every_readable_event(backend: Backend) {
    let t = app(backend, "implicit").await;
    let raw = batch();
    assert_eq!(t.post_raw(&raw).await.status(), StatusCode::OK);
    for (i, p) in STORED.iter().enumerate() {
        let lead = t
            .lead(&psid(p))
            .await
            .unwrap_or_else(|| panic!("{p} stored"));
        assert_eq!(lead.status, LeadStatus::Subscribed, "{p}");
        assert!(lead.item.get_str("unsubscribe_hash").is_some(), "{p}");
        let records = t.records(&psid(p)).await;
        assert_eq!(records.len(), 1, "{p}");
        assert_eq!(records[0].event.action, Action::OptIn);
        let mid = format!("m_r{}", if *p == "9007" { 7 } else { i + 1 });
        assert_eq!(records[0].event.meta_ref.as_deref(), Some(mid.as_str()));
    }
    assert_eq!(t.due_replies().await, STORED.len());

    // The same bytes again (Meta's retry) repair the same way: every event is a duplicate.
    let report = qchat_webhook::process(&t.app, &raw).await.unwrap();
    assert_eq!(
        (
            report.applied,
            report.duplicates,
            report.malformed,
            report.repaired
        ),
        (0, 6, 1, 5)
    );
    assert_eq!(t.due_replies().await, STORED.len());
}

pub async fn a_stop_in_a_batch_with_an_unreadable_value_is_honoured(backend: Backend) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![
        message("9101", "m_s1", "hi", 1),
        message("9102", "m_s2", "hi", 1),
    ]))
    .await;
    let raw = broken(vec![
        message("9101", "m_s3", "STOP", 2),
        message("9102", "m_s4", "STOP @@HIGH@@", 3),
    ]);
    assert_eq!(t.post_raw(&raw).await.status(), StatusCode::OK);
    assert_eq!(
        t.lead(&psid("9101")).await.unwrap().status,
        LeadStatus::Unsubscribed
    );
    // The repaired message is read too; "STOP" and a replaced character is not the whole-message
    // keyword (no more than "STOP" and an emoji is): an ordinary message, which moves the window.
    let other = t.lead(&psid("9102")).await.unwrap();
    assert_eq!(other.status, LeadStatus::Subscribed);
    assert_eq!(other.last_message_at.map(|t| t.millis()), Some(3));
}

pub async fn the_signature_is_checked_over_the_bytes_as_received_never_over_a_repaired_body(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    let raw = batch();
    let repaired = qchat_webhook::repair::repair(&raw).text.into_owned();
    assert_ne!(repaired.as_bytes(), raw.as_slice());
    // Signed over the repaired text, sent as received: refused.
    let r =
        qchat_webhook::handle(&t.app, post_request(&raw, Some(&sign(repaired.as_bytes())))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Signed over the raw bytes, sent repaired: refused.
    let r =
        qchat_webhook::handle(&t.app, post_request(repaired.as_bytes(), Some(&sign(&raw)))).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for p in STORED {
        assert!(t.lead(&psid(p)).await.is_none(), "{p}");
    }
    assert_eq!(t.due_replies().await, 0);

    // Still not JSON after the repair: answered as before (200, nothing stored, one malformed item).
    let mut cut = raw.clone();
    cut.truncate(raw.len() - 3);
    assert_eq!(t.post_raw(&cut).await.status(), StatusCode::OK);
    let report = qchat_webhook::process(&t.app, &cut).await.unwrap();
    assert_eq!(
        (report.applied, report.malformed, report.repaired),
        (0, 1, 0)
    );
    for p in STORED {
        assert!(t.lead(&psid(p)).await.is_none(), "{p}");
    }
}
