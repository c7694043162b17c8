//! Checkbox-plugin linking (a PSID's first message answering a checkbox-plugin message takes over the
//! `user_ref` lead's consent, and that lead is closed as `merged`), and the repeated STOP confirmation.

use qchat_shared::clock::Timestamp;
use qchat_shared::crypto::OneWayHash;
use qchat_shared::domain::LeadId;
use qchat_shared::http::StatusCode;
use qchat_shared::leads::{self, Action, ConsentEvent, ConsentRecord, LeadStatus, unsubscribe_key};
use qchat_shared::test_support::logs;
use serde_json::json;

use crate::helpers::*;

/// Meta's time of an event `n` ms into the test (a minute before the clock's now: inside the window).
fn ts(n: i64) -> i64 {
    START.millis() - 60_000 + n
}

fn actions(records: &[ConsentRecord]) -> Vec<(Action, &str)> {
    records
        .iter()
        .map(|r| (r.event.action, r.event.source.as_str()))
        .collect()
}

/// Unsubscribes a lead as the account holder does (optin's holder route).
async fn holder_opt_out(t: &TestApp, lead: &LeadId) -> leads::ops::OptOut {
    let event = |now: Timestamp| ConsentEvent {
        action: Action::OptOut,
        source: "account_holder".to_owned(),
        meta_ref: None,
        meta_timestamp: None,
        received_at: now,
        policy_version: "1".to_owned(),
        consent_mode: "confirmed".to_owned(),
        wording: "The account holder unsubscribed the person.".to_owned(),
    };
    leads::ops::opt_out(
        t.app.store.as_ref(),
        &t.page,
        lead,
        event,
        t.clock.now(),
        Vec::new(),
    )
    .await
    .expect("opt out")
}

pub async fn linking_carries_the_checkbox_opt_in_to_the_psid_lead_and_closes_the_user_ref_lead(
    backend: Backend,
) {
    let t = app(backend, "confirmed").await;
    let (ur, person) = (user_ref("ur-link-1"), psid("7001"));
    assert_eq!(
        t.post(&body(vec![checkbox("ur-link-1", "cart", ts(1))]))
            .await
            .status(),
        StatusCode::OK
    );
    let origin = t.lead(&ur).await.unwrap();
    assert_eq!(origin.status, LeadStatus::Subscribed);
    let checkbox_record = t.records(&ur).await.remove(0);
    let link_hash = origin.item.get_str("unsubscribe_hash").unwrap().to_owned();
    assert_eq!(
        t.replies_to(&origin.id).await.len(),
        1,
        "the opt-in confirmation"
    );

    let r = t
        .post(&body(vec![answer(
            "7001",
            "ur-link-1",
            "m_a1",
            "hi",
            ts(2),
        )]))
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // The PSID lead took the consent over: subscribed at once, no consent question in confirmed mode.
    let lead = t.lead(&person).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Subscribed);
    assert_eq!(lead.linked_from(), Some(origin.id.clone()));
    assert_eq!(lead.last_message_at.map(|t| t.millis()), Some(ts(2)));
    let records = t.records(&person).await;
    assert_eq!(
        actions(&records),
        vec![(Action::OptIn, "checkbox_plugin_linked")]
    );
    let first = &records[0];
    assert_eq!(first.event.meta_ref.as_deref(), Some("m_a1"));
    assert_eq!(first.event.meta_timestamp, Some(ts(2)));
    assert_eq!(first.event.consent_mode, "confirmed");
    assert!(first.event.wording.contains(origin.id.as_str()));
    assert!(first.event.wording.contains(&checkbox_record.hash));
    assert!(first.event.wording.contains(&checkbox_record.event.wording));
    assert!(t.replies_to(&lead.id).await.is_empty(), "no question asked");

    // The user_ref lead is closed, its chain intact and pointing at the PSID lead.
    let closed = t.lead(&ur).await.unwrap();
    assert_eq!(closed.status, LeadStatus::Merged);
    assert_eq!(closed.merged_into(), Some(lead.id.clone()));
    assert!(
        closed.item.get("subject").is_none(),
        "the user_ref is no longer held"
    );
    assert!(closed.item.get_str("unsubscribe_hash").is_none());
    let old = t.records(&ur).await;
    assert_eq!(
        actions(&old),
        vec![
            (Action::OptIn, "checkbox_plugin"),
            (Action::Merged, "checkbox_plugin_linked")
        ]
    );
    assert_eq!(old[0], checkbox_record, "the original proof is unchanged");
    assert!(old[1].event.wording.contains(lead.id.as_str()));
    assert!(old[1].event.wording.contains(&first.hash));

    // Counted once: only the PSID lead is subscribed.
    assert_eq!(
        t.listed(LeadStatus::Subscribed).await,
        vec![lead.id.as_str().to_owned()]
    );
    assert_eq!(
        t.listed(LeadStatus::Merged).await,
        vec![origin.id.as_str().to_owned()]
    );

    // The link the person got with the checkbox confirmation now stops the PSID lead.
    assert_eq!(
        lead.item.get_str("unsubscribe_hash"),
        Some(link_hash.as_str())
    );
    let link = t
        .app
        .store
        .get(&unsubscribe_key(&OneWayHash::from_stored(&link_hash)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.get_str("lead_id"), Some(lead.id.as_str()));

    // A later message is an ordinary one: no new record on either lead.
    t.post(&body(vec![answer(
        "7001",
        "ur-link-1",
        "m_a2",
        "thanks",
        ts(3),
    )]))
    .await;
    assert_eq!(t.records(&person).await.len(), 1);
    assert_eq!(t.records(&ur).await.len(), 2);
}

pub async fn an_opt_out_naming_the_merged_lead_stops_the_psid_lead(backend: Backend) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![checkbox("ur-link-2", "cart", ts(1))]))
        .await;
    t.post(&body(vec![answer(
        "7002",
        "ur-link-2",
        "m_b1",
        "hi",
        ts(2),
    )]))
    .await;
    let origin = t.lead_id(&user_ref("ur-link-2")).await;
    assert_eq!(
        holder_opt_out(&t, &origin).await,
        leads::ops::OptOut::Unsubscribed
    );
    let lead = t.lead(&psid("7002")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Unsubscribed);
    assert_eq!(
        actions(&t.records(&psid("7002")).await),
        vec![
            (Action::OptIn, "checkbox_plugin_linked"),
            (Action::OptOut, "account_holder")
        ]
    );
    assert_eq!(
        t.lead(&user_ref("ur-link-2")).await.unwrap().status,
        LeadStatus::Merged
    );
    assert_eq!(
        holder_opt_out(&t, &origin).await,
        leads::ops::OptOut::AlreadyUnsubscribed
    );
}

pub async fn linking_after_the_user_ref_lead_opted_out_never_subscribes(backend: Backend) {
    // Implicit mode: without the link, a first message would subscribe.
    let t = app(backend, "implicit").await;
    t.post(&body(vec![checkbox("ur-out-1", "cart", ts(1))]))
        .await;
    let origin = t.lead_id(&user_ref("ur-out-1")).await;
    assert_eq!(
        holder_opt_out(&t, &origin).await,
        leads::ops::OptOut::Unsubscribed
    );

    t.post(&body(vec![answer(
        "7003",
        "ur-out-1",
        "m_c1",
        "hello",
        ts(2),
    )]))
    .await;
    let lead = t.lead(&psid("7003")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Unsubscribed);
    let records = t.records(&psid("7003")).await;
    assert_eq!(
        actions(&records),
        vec![(Action::OptOut, "checkbox_plugin_linked")]
    );
    assert!(records[0].event.wording.contains("unsubscribed"));
    assert!(t.replies_to(&lead.id).await.is_empty());
    assert_eq!(
        actions(&t.records(&user_ref("ur-out-1")).await),
        vec![
            (Action::OptIn, "checkbox_plugin"),
            (Action::OptOut, "account_holder"),
            (Action::Merged, "checkbox_plugin_linked")
        ]
    );
    assert!(t.listed(LeadStatus::Subscribed).await.is_empty());

    // An ordinary message later changes nothing either; an explicit START does subscribe.
    t.post(&body(vec![message("7003", "m_c2", "price?", ts(3))]))
        .await;
    assert_eq!(
        t.lead(&psid("7003")).await.unwrap().status,
        LeadStatus::Unsubscribed
    );
    t.post(&body(vec![message("7003", "m_c3", "START", ts(4))]))
        .await;
    assert_eq!(
        t.lead(&psid("7003")).await.unwrap().status,
        LeadStatus::Subscribed
    );
}

pub async fn a_stop_as_the_first_answer_links_and_unsubscribes_in_one_event(backend: Backend) {
    let t = app(backend, "confirmed").await;
    t.post(&body(vec![checkbox("ur-stop-1", "cart", ts(1))]))
        .await;
    t.post(&body(vec![answer(
        "7004",
        "ur-stop-1",
        "m_d1",
        "STOP",
        ts(2),
    )]))
    .await;
    let lead = t.lead(&psid("7004")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Unsubscribed);
    assert_eq!(
        actions(&t.records(&psid("7004")).await),
        vec![
            (Action::OptIn, "checkbox_plugin_linked"),
            (Action::OptOut, "keyword")
        ]
    );
    let replies = t.replies_to(&lead.id).await;
    assert_eq!(replies.len(), 1);
    assert!(replies[0].contains("unsubscribed"));
    assert_eq!(
        t.lead(&user_ref("ur-stop-1")).await.unwrap().status,
        LeadStatus::Merged
    );
    assert!(t.listed(LeadStatus::Subscribed).await.is_empty());
}

pub async fn a_duplicated_or_retried_linking_event_links_once(backend: Backend) {
    let t = app(backend, "confirmed").await;
    t.post(&body(vec![checkbox("ur-dup-1", "cart", ts(1))]))
        .await;
    let event = answer("7005", "ur-dup-1", "m_e1", "hi", ts(2));

    // The linking transaction fails once: 503, nothing stored; Meta's retry links.
    t.store.fail_nth_transact(1);
    let r = t.post(&body(vec![event.clone()])).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(t.lead(&psid("7005")).await.is_none());
    assert_eq!(
        t.lead(&user_ref("ur-dup-1")).await.unwrap().status,
        LeadStatus::Subscribed
    );

    // The retry carries the event twice (a duplicate inside the batch), then is replayed whole.
    let batch = body(vec![event.clone(), event.clone()]);
    assert_eq!(t.post(&batch).await.status(), StatusCode::OK);
    assert_eq!(t.post(&batch).await.status(), StatusCode::OK);
    let report = qchat_webhook::process(&t.app, &serde_json::to_vec(&batch).unwrap())
        .await
        .unwrap();
    assert_eq!((report.applied, report.duplicates), (0, 2));

    assert_eq!(t.records(&psid("7005")).await.len(), 1);
    assert_eq!(t.records(&user_ref("ur-dup-1")).await.len(), 2);
    assert_eq!(
        t.lead(&psid("7005")).await.unwrap().status,
        LeadStatus::Subscribed
    );

    // Another PSID naming the same (now merged) user_ref is a plain new person.
    t.post(&body(vec![answer("7006", "ur-dup-1", "m_e2", "hi", ts(3))]))
        .await;
    let other = t.lead(&psid("7006")).await.unwrap();
    assert_eq!(other.status, LeadStatus::Pending);
    assert!(other.linked_from().is_none());
    assert_eq!(t.records(&user_ref("ur-dup-1")).await.len(), 2);
}

pub async fn a_prior_message_whose_user_ref_lead_does_not_exist_makes_a_plain_new_lead(
    backend: Backend,
) {
    let t = app(backend, "confirmed").await;
    t.post(&body(vec![answer(
        "7007",
        "ur-none-1",
        "m_f1",
        "hi",
        ts(1),
    )]))
    .await;
    let lead = t.lead(&psid("7007")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Pending);
    assert!(lead.linked_from().is_none());
    assert_eq!(
        actions(&t.records(&psid("7007")).await),
        vec![(Action::ConfirmationRequested, "first_message")]
    );
    assert_eq!(
        t.replies_to(&lead.id).await.len(),
        1,
        "the consent question"
    );
    assert!(t.lead(&user_ref("ur-none-1")).await.is_none());
}

pub async fn a_repeated_stop_is_confirmed_again_once_per_event_without_a_new_record(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![message("7101", "m_g1", "hi", ts(1))]))
        .await;
    t.post(&body(vec![message("7101", "m_g2", "STOP", ts(2))]))
        .await;
    let lead = t.lead(&psid("7101")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Unsubscribed);
    let confirmations = |replies: Vec<String>| {
        replies
            .iter()
            .filter(|r| r.contains("You're unsubscribed"))
            .count()
    };
    assert_eq!(confirmations(t.replies_to(&lead.id).await), 1);

    // The same STOP again, a day later: a second confirmation, no new record.
    t.clock.advance_secs(24 * 3600);
    let again = message("7101", "m_g3", "stop", ts(24 * 3600 * 1000));
    assert_eq!(
        t.post(&body(vec![again.clone()])).await.status(),
        StatusCode::OK
    );
    assert_eq!(t.records(&psid("7101")).await.len(), 2);
    assert_eq!(confirmations(t.replies_to(&lead.id).await), 2);
    let after = t.lead(&psid("7101")).await.unwrap();
    assert_eq!(after.status, LeadStatus::Unsubscribed);
    assert_eq!(
        after.last_message_at.map(|t| t.millis()),
        Some(ts(24 * 3600 * 1000)),
        "the STOP opens the 24-hour window"
    );

    // Replayed (and duplicated inside a batch): no further reply.
    t.post(&body(vec![again.clone(), again.clone()])).await;
    assert_eq!(confirmations(t.replies_to(&lead.id).await), 2);
    assert_eq!(t.records(&psid("7101")).await.len(), 2);

    // The unsubscribe quick reply, as another event, is confirmed once more.
    let tap = json!({ "sender": { "id": "7101" }, "recipient": { "id": PAGE_ID },
        "timestamp": ts(24 * 3600 * 1000 + 5),
        "message": { "mid": "m_g4", "text": "Unsubscribe", "quick_reply": { "payload": "QCHAT_UNSUBSCRIBE" } } });
    t.post(&body(vec![tap])).await;
    assert_eq!(confirmations(t.replies_to(&lead.id).await), 3);

    // A STOP Meta delivers more than a day late is outside the window: no reply, still no failure.
    let late = message("7101", "m_g5", "STOP", ts(-24 * 3600 * 1000));
    assert_eq!(t.post(&body(vec![late])).await.status(), StatusCode::OK);
    assert_eq!(confirmations(t.replies_to(&lead.id).await), 3);
    assert_eq!(t.records(&psid("7101")).await.len(), 2);
}

pub async fn the_user_ref_is_never_stored_or_logged_in_plaintext(backend: Backend) {
    let logs = logs::capture();
    let t = app(backend, "implicit").await;
    let secrets = ["ur-secret-link-42", "ur-secret-missing-43"];
    t.post(&body(vec![checkbox(secrets[0], "cart", ts(1))]))
        .await;
    let people = ["918273645500117201", "918273645500117202"];
    t.post(&body(vec![
        answer(people[0], secrets[0], "m_h1", "hi", ts(2)),
        answer(people[1], secrets[1], "m_h2", "hi", ts(3)),
        message(people[0], "m_h3", "STOP", ts(4)),
        message(people[0], "m_h4", "STOP", ts(5)),
    ]))
    .await;
    assert_eq!(
        t.lead(&user_ref(secrets[0])).await.unwrap().status,
        LeadStatus::Merged
    );
    qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    // SQLite: the database file and its write-ahead log as bytes; moto: a DynamoDB Scan of the table.
    let bytes = t.raw_store_bytes().await;
    assert!(bytes.len() > 1000);
    let stored = String::from_utf8_lossy(&bytes);
    for v in secrets.iter().chain(people.iter()) {
        assert!(!stored.contains(v), "a personal value is stored in clear");
    }
    let mut values = secrets.to_vec();
    values.extend(people);
    logs.assert_absent(&values);
}
