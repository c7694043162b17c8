//! Every opt-in source and opt-out path, with the lead status and an intact consent chain.

use qchat_shared::http::StatusCode;
use qchat_shared::leads::{Action, LeadStatus};

use crate::helpers::*;

fn actions(records: &[qchat_shared::leads::ConsentRecord]) -> Vec<(Action, String)> {
    records
        .iter()
        .map(|r| (r.event.action, r.event.source.clone()))
        .collect()
}

pub async fn implicit_mode_subscribes_on_the_first_message_and_confirms_with_a_stop_link(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    assert_eq!(
        t.post(&body(vec![message("3001", "m_1", "hi", 5)]))
            .await
            .status(),
        StatusCode::OK
    );
    let lead = t.lead(&psid("3001")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Subscribed);
    assert_eq!(lead.last_message_at.map(|t| t.millis()), Some(5));
    assert!(lead.item.get_str("unsubscribe_hash").is_some());
    let records = t.records(&psid("3001")).await;
    assert_eq!(
        actions(&records),
        vec![(Action::OptIn, "first_message".into())]
    );
    let r = &records[0].event;
    assert_eq!(r.meta_ref.as_deref(), Some("m_1"));
    assert_eq!(r.meta_timestamp, Some(5));
    assert_eq!(r.policy_version, "1");
    assert_eq!(r.consent_mode, "implicit");
    assert!(!r.wording.is_empty());
    assert_eq!(t.due_replies().await, 1);
}

pub async fn confirmed_mode_asks_first_and_yes_subscribes_while_no_declines(backend: Backend) {
    let t = app(backend, "confirmed").await;
    t.post(&body(vec![
        message("3001", "m_1", "hi", 1),
        message("3002", "m_2", "hi", 2),
    ]))
    .await;
    for p in ["3001", "3002"] {
        assert_eq!(t.lead(&psid(p)).await.unwrap().status, LeadStatus::Pending);
    }
    let asked = t.records(&psid("3001")).await;
    assert_eq!(asked[0].event.action, Action::ConfirmationRequested);
    assert!(
        asked[0]
            .event
            .wording
            .contains(&format!("{PUBLIC_URL}/privacy"))
    );
    t.post(&body(vec![
        quick_reply("3001", "m_3", "QCHAT_CONSENT_YES", 3),
        quick_reply("3002", "m_4", "QCHAT_CONSENT_NO", 4),
    ]))
    .await;
    let yes = t.lead(&psid("3001")).await.unwrap();
    assert_eq!(yes.status, LeadStatus::Subscribed);
    assert!(yes.item.get_str("unsubscribe_hash").is_some());
    assert_eq!(
        actions(&t.records(&psid("3001")).await),
        vec![
            (Action::ConfirmationRequested, "first_message".into()),
            (Action::OptIn, "quick_reply".into())
        ]
    );
    assert_eq!(
        t.lead(&psid("3002")).await.unwrap().status,
        LeadStatus::Unsubscribed
    );
    assert_eq!(
        actions(&t.records(&psid("3002")).await)[1],
        (Action::Declined, "quick_reply".into())
    );
    // The question sent is exactly the wording recorded.
    let d = qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    assert_eq!(d.replies.sent, 4);
    let sent = t.sent_messages();
    assert!(sent.iter().any(|l| {
        l.text == asked[0].event.wording
            && l.quick_replies
                .iter()
                .map(|q| q.payload.as_str())
                .collect::<Vec<_>>()
                == vec!["QCHAT_CONSENT_YES", "QCHAT_CONSENT_NO"]
    }));
    assert!(
        sent.iter()
            .any(|l| l.text.contains("reply STOP") && l.text.contains(&format!("{PUBLIC_URL}/u/")))
    );
}

pub async fn get_started_with_a_ref_referral_and_the_checkbox_plugin_opt_in(backend: Backend) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![
        postback("3001", "m_pb", "GET_STARTED", Some("spring-ad"), 1),
        referral("3002", "qr-code", 2),
    ]))
    .await;
    let gs = t.records(&psid("3001")).await;
    assert_eq!(actions(&gs), vec![(Action::OptIn, "get_started".into())]);
    assert_eq!(gs[0].event.meta_ref.as_deref(), Some("spring-ad"));
    let rf = t.records(&psid("3002")).await;
    assert_eq!(actions(&rf), vec![(Action::OptIn, "referral".into())]);

    // The checkbox plugin is explicit consent, also in confirmed mode.
    let c = app(backend, "confirmed").await;
    c.post(&body(vec![checkbox("ur-abc-123", "cart", 3)])).await;
    let lead = c.lead(&user_ref("ur-abc-123")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Subscribed);
    assert_eq!(
        actions(&c.records(&user_ref("ur-abc-123")).await),
        vec![(Action::OptIn, "checkbox_plugin".into())]
    );
}

pub async fn marketing_messages_opt_in_stop_and_resume(backend: Backend) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![message("3001", "m_1", "hi", 1)])).await;
    t.post(&body(vec![marketing(
        "3001",
        Some("notif-token-xyz"),
        None,
        2,
    )]))
    .await;
    let lead = t.lead(&psid("3001")).await.unwrap();
    assert_eq!(lead.marketing_status.as_deref(), Some("active"));
    assert!(lead.item.get_sealed("marketing_token").is_some());
    t.post(&body(vec![marketing(
        "3001",
        None,
        Some("STOP NOTIFICATIONS"),
        3,
    )]))
    .await;
    assert_eq!(
        t.lead(&psid("3001"))
            .await
            .unwrap()
            .marketing_status
            .as_deref(),
        Some("stopped")
    );
    t.post(&body(vec![marketing(
        "3001",
        None,
        Some("RESUME_NOTIFICATIONS"),
        4,
    )]))
    .await;
    let lead = t.lead(&psid("3001")).await.unwrap();
    assert_eq!(lead.marketing_status.as_deref(), Some("active"));
    assert_eq!(lead.status, LeadStatus::Subscribed);
    let a: Vec<_> = actions(&t.records(&psid("3001")).await)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(
        a,
        vec![
            Action::OptIn,
            Action::MarketingOptIn,
            Action::MarketingStop,
            Action::MarketingResume
        ]
    );
}

pub async fn every_opt_out_path_unsubscribes_and_start_subscribes_again(backend: Backend) {
    let t = app(backend, "implicit").await;
    let people = [
        (
            "4001",
            quick_reply("4001", "m_o1", "QCHAT_UNSUBSCRIBE", 10),
            "quick_reply",
        ),
        (
            "4002",
            postback("4002", "m_o2", "QCHAT_UNSUBSCRIBE", None, 10),
            "postback",
        ),
        ("4003", message("4003", "m_o3", "STOP", 10), "keyword"),
        (
            "4004",
            message("4004", "m_o4", " unsubscribe ", 10),
            "keyword",
        ),
        ("4005", message("4005", "m_o5", "Arrêt", 10), "keyword"),
        ("4006", message("4006", "m_o6", "BASTA", 10), "keyword"),
    ];
    let firsts: Vec<_> = people
        .iter()
        .enumerate()
        .map(|(i, (p, _, _))| message(p, &format!("m_f{i}"), "hello", 1))
        .collect();
    t.post(&body(firsts)).await;
    t.post(&body(people.iter().map(|(_, e, _)| e.clone()).collect()))
        .await;
    for (p, _, source) in &people {
        let lead = t.lead(&psid(p)).await.unwrap();
        assert_eq!(lead.status, LeadStatus::Unsubscribed, "{p}");
        let records = t.records(&psid(p)).await;
        assert_eq!(
            actions(&records)[1],
            (Action::OptOut, (*source).into()),
            "{p}"
        );
    }
    // STOP again changes nothing; START re-subscribes.
    t.post(&body(vec![message("4003", "m_again", "stop", 20)]))
        .await;
    assert_eq!(t.records(&psid("4003")).await.len(), 2);
    t.post(&body(vec![message("4003", "m_start", "START", 30)]))
        .await;
    assert_eq!(
        t.lead(&psid("4003")).await.unwrap().status,
        LeadStatus::Subscribed
    );
    assert_eq!(
        actions(&t.records(&psid("4003")).await)[2],
        (Action::OptIn, "keyword".into())
    );
}

pub async fn my_data_replies_with_a_summary_and_delete_my_data_queues_the_erasure_and_freezes_the_lead(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![
        message("5001", "m_1", "hi", 1),
        message("5002", "m_2", "hi", 1),
    ]))
    .await;
    t.post(&body(vec![message("5001", "m_3", "MY DATA", 2)]))
        .await;
    t.post(&body(vec![message("5001", "m_4", "delete my data", 3)]))
        .await;
    let lead = t.lead(&psid("5001")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Unsubscribed);
    assert!(lead.item.get_i64("erasure_requested_at").is_some());
    let job = lead
        .item
        .get_str("erasure_job")
        .expect("the erasure is queued")
        .to_owned();
    let jobs = qchat_shared::jobs::Jobs::new(
        t.app.store.clone(),
        t.app.clock.clone(),
        t.app.ids.clone(),
        60,
    );
    assert!(jobs.is_pending(&job).await.unwrap());
    assert_eq!(t.records(&psid("5001")).await.len(), 2);
    // Frozen until erased: a START changes nothing.
    t.post(&body(vec![message("5001", "m_5", "START", 4)]))
        .await;
    let after = t.lead(&psid("5001")).await.unwrap();
    assert_eq!(after.status, LeadStatus::Unsubscribed);
    assert_eq!(t.records(&psid("5001")).await.len(), 2);
    qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    let to_5001: Vec<_> = t
        .sent_messages()
        .into_iter()
        .filter(|l| {
            serde_json::to_string(&l.recipient)
                .unwrap()
                .contains("5001")
        })
        .collect();
    assert!(to_5001.iter().any(|l| l.text.contains("status: subscribed") && l.text.contains("consent records: 1")));
    assert!(to_5001.iter().any(|l| l.text.contains("is being erased")));
}
