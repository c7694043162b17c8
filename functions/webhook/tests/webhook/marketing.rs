//! Marketing messages (`notification_messages`): an opt-in and a resume subscribe (with an unsubscribe
//! link, like every subscription), a marketing stop unsubscribes from everything, and every other
//! opt-out stops an active marketing token too. Each with the lead status, the chain, the link item
//! and the token status.

use std::sync::Arc;

use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::OneWayHash;
use qchat_shared::leads::{
    self, Action, ConsentEvent, ConsentRecord, Lead, LeadStatus, Subject, unsubscribe_key,
};
use qchat_shared::messenger::SendError;
use qchat_shared::store::{Condition, Item, Value};

use crate::helpers::*;

fn actions(records: &[ConsentRecord]) -> Vec<Action> {
    records.iter().map(|r| r.event.action).collect()
}

fn marketing_status(lead: &Lead) -> Option<&str> {
    lead.marketing_status.as_deref()
}

/// The lead's unsubscribe link: it exists and points at the lead. Returns its hash.
async fn link_of(t: &TestApp, subject: &Subject) -> String {
    let lead = t.lead(subject).await.expect("lead");
    let hash = lead
        .item
        .get_str("unsubscribe_hash")
        .expect("a subscribed lead has an unsubscribe link")
        .to_owned();
    let link = t
        .app
        .store
        .get(&unsubscribe_key(&OneWayHash::from_stored(&hash)))
        .await
        .unwrap()
        .expect("the link item exists");
    assert_eq!(link.get_str("lead_id"), Some(lead.id.as_str()));
    assert_eq!(link.get_str("page_id"), Some(PAGE_ID));
    hash
}

async fn link_exists(t: &TestApp, hash: &str) -> bool {
    t.app
        .store
        .get(&unsubscribe_key(&OneWayHash::from_stored(hash)))
        .await
        .unwrap()
        .is_some()
}

/// The lead is listed under `status` and under no other status.
async fn listed_only_as(t: &TestApp, subject: &Subject, status: LeadStatus) {
    let id = t.lead_id(subject).await;
    for s in [
        LeadStatus::Pending,
        LeadStatus::Subscribed,
        LeadStatus::Unsubscribed,
        LeadStatus::Unreachable,
    ] {
        let listed = t.listed(s).await.contains(&id.as_str().to_owned());
        assert_eq!(listed, s == status, "{subject:?} listed as {s:?}");
    }
}

/// Unsubscribes through the shared opt-out, as the `/u/{token}` link and the account holder do.
async fn link_opt_out(t: &TestApp, subject: &Subject) -> leads::ops::OptOut {
    let lead = t.lead_id(subject).await;
    let event = |now: Timestamp| ConsentEvent {
        action: Action::OptOut,
        source: "unsubscribe_link".to_owned(),
        meta_ref: None,
        meta_timestamp: None,
        received_at: now,
        policy_version: "1".to_owned(),
        consent_mode: "implicit".to_owned(),
        wording: "Opened the unsubscribe link and confirmed.".to_owned(),
    };
    leads::ops::opt_out(
        t.app.store.as_ref(),
        &t.page,
        &lead,
        event,
        t.clock.now(),
        Vec::new(),
    )
    .await
    .unwrap()
}

/// Rewrites a lead item as stored data from before this rule could hold it (`change` on the item).
async fn rewrite(t: &TestApp, subject: &Subject, change: impl FnOnce(Item) -> Item) {
    let lead = t.lead(subject).await.unwrap();
    let version = lead.item.version().unwrap();
    let item = change(lead.item.clone()).with_version(version + 1);
    t.app
        .store
        .put(item, Condition::VersionIs(version))
        .await
        .unwrap();
}

pub async fn a_marketing_stop_unsubscribes_at_once_and_stops_the_token(backend: Backend) {
    let t = app(backend, "implicit").await;
    let (a, b) = (psid("9201"), psid("9202"));
    t.post(&body(vec![
        message("9201", "m_1", "hi", 1),
        message("9202", "m_2", "hi", 1),
    ]))
    .await;
    t.post(&body(vec![
        marketing("9201", Some("mm-token-9201"), None, 2),
        marketing("9202", Some("mm-token-9202"), None, 2),
    ]))
    .await;
    let replies = t.due_replies().await;
    // Both spellings of Meta's status.
    let stops = body(vec![
        marketing("9201", None, Some("STOP_NOTIFICATIONS"), 3),
        marketing("9202", Some("mm-token-9202"), Some("stop notifications"), 3),
    ]);
    t.post(&stops).await;
    for p in [&a, &b] {
        let lead = t.lead(p).await.unwrap();
        assert_eq!(lead.status, LeadStatus::Unsubscribed, "{p:?}");
        assert_eq!(marketing_status(&lead), Some("stopped"));
        assert!(lead.item.get_sealed("marketing_token").is_some());
        listed_only_as(&t, p, LeadStatus::Unsubscribed).await;
        let records = t.records(p).await;
        assert_eq!(
            actions(&records),
            vec![Action::OptIn, Action::MarketingOptIn, Action::MarketingStop]
        );
        let stop = &records[2].event;
        assert_eq!(stop.source, "marketing_messages");
        assert!(stop.wording.contains("withdraws consent to all"));
    }
    // No reply to a marketing stop: Messenger confirms it itself.
    assert_eq!(t.due_replies().await, replies);

    // Replayed, or stopped again: nothing new.
    t.post(&stops).await;
    t.post(&body(vec![marketing(
        "9201",
        None,
        Some("STOP_NOTIFICATIONS"),
        4,
    )]))
    .await;
    assert_eq!(t.records(&a).await.len(), 3);

    // A stop from someone of whom nothing is held stores nothing.
    t.post(&body(vec![marketing(
        "9299",
        None,
        Some("STOP_NOTIFICATIONS"),
        5,
    )]))
    .await;
    assert!(t.lead(&psid("9299")).await.is_none());
}

/// START after a STOP subscribes again but leaves the token stopped; the person's marketing stop in
/// Messenger (where marketing messages still show as on) must then unsubscribe — it used to do
/// nothing to a lead whose token was already stopped.
pub async fn a_marketing_stop_after_start_unsubscribes_a_lead_whose_token_was_stopped(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    let p = psid("9211");
    t.post(&body(vec![message("9211", "m_1", "hi", 1)])).await;
    t.post(&body(vec![marketing("9211", Some("mm-9211"), None, 2)]))
        .await;
    t.post(&body(vec![message("9211", "m_3", "STOP", 3)])).await;
    t.post(&body(vec![message("9211", "m_4", "START", 4)]))
        .await;
    let lead = t.lead(&p).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Subscribed);
    assert_eq!(marketing_status(&lead), Some("stopped"));
    t.post(&body(vec![marketing(
        "9211",
        None,
        Some("STOP_NOTIFICATIONS"),
        5,
    )]))
    .await;
    let lead = t.lead(&p).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Unsubscribed);
    assert_eq!(marketing_status(&lead), Some("stopped"));
    assert_eq!(
        actions(&t.records(&p).await),
        vec![
            Action::OptIn,
            Action::MarketingOptIn,
            Action::OptOut,
            Action::OptIn,
            Action::MarketingStop
        ]
    );
}

pub async fn a_marketing_resume_subscribes_again_with_an_active_token_and_a_fresh_link(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    let p = psid("9221");
    t.post(&body(vec![message("9221", "m_1", "hi", 1)])).await;
    t.post(&body(vec![marketing("9221", Some("mm-9221"), None, 2)]))
        .await;
    let first_link = link_of(&t, &p).await;
    t.post(&body(vec![marketing(
        "9221",
        None,
        Some("STOP_NOTIFICATIONS"),
        3,
    )]))
    .await;
    let before = t.due_replies().await;
    t.post(&body(vec![marketing(
        "9221",
        None,
        Some("RESUME NOTIFICATIONS"),
        4,
    )]))
    .await;
    let lead = t.lead(&p).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Subscribed);
    assert_eq!(marketing_status(&lead), Some("active"));
    listed_only_as(&t, &p, LeadStatus::Subscribed).await;
    let link = link_of(&t, &p).await;
    assert_ne!(link, first_link, "a fresh link");
    assert!(!link_exists(&t, &first_link).await, "the old link is gone");
    let records = t.records(&p).await;
    assert_eq!(
        actions(&records),
        vec![
            Action::OptIn,
            Action::MarketingOptIn,
            Action::MarketingStop,
            Action::MarketingResume
        ]
    );
    assert_eq!(records[3].event.source, "marketing_messages");
    // The confirmation says how to stop, with the new link.
    assert_eq!(t.due_replies().await, before + 1);
    let texts = t.replies_to(&lead.id).await;
    assert!(
        texts
            .iter()
            .any(|t| t.contains("reply STOP") && t.contains(&format!("{PUBLIC_URL}/u/")))
    );

    // Resumed again while on: nothing changes.
    t.post(&body(vec![marketing(
        "9221",
        None,
        Some("RESUME_NOTIFICATIONS"),
        5,
    )]))
    .await;
    assert_eq!(t.records(&p).await.len(), 4);
    assert_eq!(link_of(&t, &p).await, link);

    // A resume for a person without any token held, or of whom nothing is held: nothing recorded.
    t.post(&body(vec![
        message("9222", "m_6", "hi", 6),
        marketing("9223", None, Some("RESUME_NOTIFICATIONS"), 6),
    ]))
    .await;
    t.post(&body(vec![marketing(
        "9222",
        None,
        Some("RESUME_NOTIFICATIONS"),
        7,
    )]))
    .await;
    assert_eq!(
        actions(&t.records(&psid("9222")).await),
        vec![Action::OptIn]
    );
    assert_eq!(
        marketing_status(&t.lead(&psid("9222")).await.unwrap()),
        None
    );
    assert!(t.lead(&psid("9223")).await.is_none());
}

pub async fn a_marketing_opt_in_subscribes_a_new_pending_unsubscribed_or_unreachable_lead_with_a_link(
    backend: Backend,
) {
    let t = app(backend, "confirmed").await;
    let (new, pending, declined, unreachable, subscribed) = (
        psid("9231"),
        psid("9232"),
        psid("9233"),
        psid("9234"),
        psid("9235"),
    );
    // Notify finds 9234 unreachable: the only reply due then is its question, and its send fails so.
    t.post(&body(vec![message("9234", "m_4", "hi", 1)])).await;
    let mut failing = t.app.clone();
    failing.messenger = Arc::new(crate::replies::Failing(SendError::Unreachable {
        code: 551,
        subcode: None,
    }));
    qchat_notify::tick(&failing, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    assert_eq!(
        t.lead(&unreachable).await.unwrap().status,
        LeadStatus::Unreachable
    );
    t.post(&body(vec![
        message("9232", "m_2", "hi", 1),
        message("9233", "m_3", "hi", 1),
        message("9235", "m_5", "hi", 1),
    ]))
    .await;
    t.post(&body(vec![
        quick_reply("9233", "m_3n", "QCHAT_CONSENT_NO", 2),
        quick_reply("9235", "m_5y", "QCHAT_CONSENT_YES", 2),
    ]))
    .await;
    assert_eq!(t.lead(&pending).await.unwrap().status, LeadStatus::Pending);
    assert_eq!(
        t.lead(&declined).await.unwrap().status,
        LeadStatus::Unsubscribed
    );
    assert_eq!(
        t.lead(&subscribed).await.unwrap().status,
        LeadStatus::Subscribed
    );
    let kept_link = link_of(&t, &subscribed).await;
    let kept_records = t.records(&subscribed).await.len();
    let before = t.due_replies().await;

    t.post(&body(vec![
        marketing("9231", Some("mm-9231"), None, 10),
        marketing("9232", Some("mm-9232"), None, 10),
        marketing("9233", Some("mm-9233"), None, 10),
        marketing("9234", Some("mm-9234"), None, 10),
        marketing("9235", Some("mm-9235"), None, 10),
    ]))
    .await;
    for (p, earlier) in [
        (&new, vec![]),
        (&pending, vec![Action::ConfirmationRequested]),
        (
            &declined,
            vec![Action::ConfirmationRequested, Action::Declined],
        ),
        (&unreachable, vec![Action::ConfirmationRequested]),
    ] {
        let lead = t.lead(p).await.unwrap();
        assert_eq!(lead.status, LeadStatus::Subscribed, "{p:?}");
        assert_eq!(marketing_status(&lead), Some("active"), "{p:?}");
        assert!(lead.item.get_sealed("marketing_token").is_some());
        listed_only_as(&t, p, LeadStatus::Subscribed).await;
        link_of(&t, p).await;
        let mut expected = earlier;
        expected.push(Action::MarketingOptIn);
        let records = t.records(p).await;
        assert_eq!(actions(&records), expected, "{p:?}");
        let last = &records.last().unwrap().event;
        assert_eq!(
            (last.source.as_str(), last.consent_mode.as_str()),
            ("marketing_messages", "confirmed")
        );
        let texts = t.replies_to(&lead.id).await;
        assert!(
            texts
                .iter()
                .any(|t| t.contains(&format!("{PUBLIC_URL}/u/"))),
            "{p:?} is told how to stop"
        );
    }
    // Already subscribed: the opt-in is recorded with its token; the link and the status stay.
    let lead = t.lead(&subscribed).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Subscribed);
    assert_eq!(marketing_status(&lead), Some("active"));
    assert_eq!(link_of(&t, &subscribed).await, kept_link);
    let records = t.records(&subscribed).await;
    assert_eq!(records.len(), kept_records + 1);
    assert_eq!(records.last().unwrap().event.action, Action::MarketingOptIn);
    // One confirmation per lead that became subscribed, none for the one that already was.
    assert_eq!(t.due_replies().await, before + 4);
}

pub async fn every_opt_out_stops_an_active_marketing_token(backend: Backend) {
    let t = app(backend, "implicit").await;
    let people = ["9241", "9242", "9243", "9244", "9245"];
    t.post(&body(
        people
            .iter()
            .map(|p| message(p, &format!("m_f{p}"), "hi", 1))
            .collect(),
    ))
    .await;
    t.post(&body(
        people
            .iter()
            .map(|p| marketing(p, Some(&format!("mm-{p}")), None, 2))
            .collect(),
    ))
    .await;
    t.post(&body(vec![
        message("9241", "m_o1", "STOP", 3),
        quick_reply("9242", "m_o2", "QCHAT_UNSUBSCRIBE", 3),
        postback("9243", "m_o3", "QCHAT_UNSUBSCRIBE", None, 3),
        message("9244", "m_o4", "DELETE MY DATA", 3),
    ]))
    .await;
    assert_eq!(
        link_opt_out(&t, &psid("9245")).await,
        leads::ops::OptOut::Unsubscribed
    );
    for p in people {
        let lead = t.lead(&psid(p)).await.unwrap();
        assert_eq!(lead.status, LeadStatus::Unsubscribed, "{p}");
        assert_eq!(marketing_status(&lead), Some("stopped"), "{p}");
        listed_only_as(&t, &psid(p), LeadStatus::Unsubscribed).await;
        assert_eq!(
            actions(&t.records(&psid(p)).await),
            vec![Action::OptIn, Action::MarketingOptIn, Action::OptOut],
            "{p}"
        );
    }
    // START subscribes again; only the person's own resume turns marketing messages back on.
    t.post(&body(vec![message("9241", "m_s1", "START", 4)]))
        .await;
    let lead = t.lead(&psid("9241")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Subscribed);
    assert_eq!(marketing_status(&lead), Some("stopped"));
    t.post(&body(vec![marketing(
        "9241",
        None,
        Some("RESUME_NOTIFICATIONS"),
        5,
    )]))
    .await;
    assert_eq!(
        marketing_status(&t.lead(&psid("9241")).await.unwrap()),
        Some("active")
    );
}

/// A lead stored unsubscribed with an active token (possible before opt-outs stopped tokens) still has
/// something to withdraw: STOP, and the link, record an opt-out and stop the token.
pub async fn an_opt_out_of_an_unsubscribed_lead_whose_token_is_still_active_stops_it(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    let (by_word, by_link, done) = (psid("9251"), psid("9252"), psid("9253"));
    t.post(&body(vec![
        message("9251", "m_1", "hi", 1),
        message("9252", "m_2", "hi", 1),
        message("9253", "m_3", "hi", 1),
    ]))
    .await;
    t.post(&body(vec![
        marketing("9251", Some("mm-9251"), None, 2),
        marketing("9252", Some("mm-9252"), None, 2),
        marketing("9253", Some("mm-9253"), None, 2),
    ]))
    .await;
    t.post(&body(vec![
        message("9251", "m_o1", "STOP", 3),
        message("9252", "m_o2", "STOP", 3),
        message("9253", "m_o3", "STOP", 3),
    ]))
    .await;
    for p in [&by_word, &by_link] {
        rewrite(&t, p, |item| {
            item.plain("marketing_status", Value::S("active".to_owned()))
                .unwrap()
        })
        .await;
    }
    t.post(&body(vec![message("9251", "m_o4", "stop", 4)]))
        .await;
    assert_eq!(
        link_opt_out(&t, &by_link).await,
        leads::ops::OptOut::Unsubscribed
    );
    for p in [&by_word, &by_link] {
        let lead = t.lead(p).await.unwrap();
        assert_eq!(lead.status, LeadStatus::Unsubscribed);
        assert_eq!(marketing_status(&lead), Some("stopped"));
        assert_eq!(
            actions(&t.records(p).await),
            vec![
                Action::OptIn,
                Action::MarketingOptIn,
                Action::OptOut,
                Action::OptOut
            ]
        );
    }
    // Nothing left to withdraw: nothing recorded.
    assert_eq!(
        link_opt_out(&t, &done).await,
        leads::ops::OptOut::AlreadyUnsubscribed
    );
    assert_eq!(t.records(&done).await.len(), 3);
}

/// The 48 h mark of marketing messages is declared (the broadcast sender writes it) and the webhook
/// never sets it: only a broadcast's use of the token does.
pub async fn the_webhook_never_sets_the_marketing_frequency_mark(backend: Backend) {
    let t = app(backend, "implicit").await;
    let declared: Vec<&str> = qchat_shared::inventory::LEAD
        .attributes
        .iter()
        .map(|a| a.name)
        .collect();
    assert!(declared.contains(&"marketing_status"));
    // The broadcast sender records the 48-hour mark on the lead (issue 12); the webhook never sets it.
    assert!(declared.contains(&"marketing_last_sent_at"));
    t.post(&body(vec![message("9261", "m_1", "hi", 1)])).await;
    let lead = t.lead(&psid("9261")).await.unwrap();
    assert!(lead.item.get_i64("marketing_last_sent_at").is_none());
}

/// A marketing opt-in's record is what subscribed its lead: when a checkbox-plugin lead made
/// unreachable is linked, its consent is read from its chain, and that record counts as the opt-in it
/// is (a marketing stop as the opt-out it is).
pub async fn a_linked_lead_inherits_the_consent_of_a_marketing_opt_in_or_stop(backend: Backend) {
    let t = app(backend, "confirmed").await;
    let optin = |user_ref: &str, status: Option<&str>, ts: i64| {
        let mut o = serde_json::json!({ "type": "notification_messages", "payload": "deals",
            "notification_messages_token": format!("mm-{user_ref}") });
        if let Some(s) = status {
            o["notification_messages_status"] = serde_json::json!(s);
        }
        serde_json::json!({ "sender": { "user_ref": user_ref }, "recipient": { "id": PAGE_ID },
            "timestamp": ts, "optin": o })
    };
    t.post(&body(vec![
        optin("ur-mm-1", None, 1),
        optin("ur-mm-2", None, 1),
    ]))
    .await;
    t.post(&body(vec![optin("ur-mm-2", Some("STOP_NOTIFICATIONS"), 2)]))
        .await;
    // Their confirmations cannot be delivered: both become unreachable, so linking reads their chains.
    let mut failing = t.app.clone();
    failing.messenger = Arc::new(crate::replies::Failing(SendError::Unreachable {
        code: 551,
        subcode: None,
    }));
    qchat_notify::tick(&failing, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    for ur in ["ur-mm-1", "ur-mm-2"] {
        assert_eq!(
            t.lead(&user_ref(ur)).await.unwrap().status,
            LeadStatus::Unreachable,
            "{ur}"
        );
    }
    t.post(&body(vec![
        answer("9271", "ur-mm-1", "m_a1", "hi", 3),
        answer("9272", "ur-mm-2", "m_a2", "hi", 3),
    ]))
    .await;
    for (p, status, action) in [
        ("9271", LeadStatus::Subscribed, Action::OptIn),
        ("9272", LeadStatus::Unsubscribed, Action::OptOut),
    ] {
        let lead = t.lead(&psid(p)).await.unwrap();
        assert_eq!(lead.status, status, "{p}");
        let records = t.records(&psid(p)).await;
        assert_eq!(actions(&records), vec![action], "{p}");
        assert_eq!(records[0].event.source, "checkbox_plugin_linked");
    }
}
