//! Batches, duplicates, ignored kinds, policy enforcement and storage failures.

use qchat_shared::http::StatusCode;
use qchat_shared::leads::LeadStatus;
use serde_json::json;

use crate::helpers::*;

pub async fn a_batch_of_several_entries_and_items_is_applied_in_full(backend: Backend) {
    let t = app(backend, "implicit").await;
    let other = qchat_shared::domain::PageId::parse("1000000002").unwrap();
    connect_page(&t.app, &other, "implicit").await;
    let entry2 = json!({ "id": "1000000002", "time": 1, "messaging": [
        { "sender": { "id": "6101" }, "recipient": { "id": "1000000002" }, "timestamp": "7", "message": { "mid": "m_b1", "text": "hi" } }
    ]});
    let mut b = body(vec![
        message("6001", "m_a1", "hi", 1),
        message("6002", "m_a2", "hi", 2),
        message("6001", "m_a3", "again", 3),
    ]);
    b["entry"].as_array_mut().unwrap().push(entry2);
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    assert_eq!(
        t.lead(&psid("6001"))
            .await
            .unwrap()
            .last_message_at
            .map(|t| t.millis()),
        Some(3)
    );
    assert!(t.lead(&psid("6002")).await.is_some());
    assert_eq!(t.records(&psid("6001")).await.len(), 1);
    assert_eq!(
        t.count_partition_prefix("PAGE#1000000002").await,
        2,
        "page item and one lead"
    );
}

pub async fn duplicates_and_replayed_batches_change_nothing(backend: Backend) {
    let t = app(backend, "implicit").await;
    let b = body(vec![
        message("6001", "m_1", "hi", 1),
        message("6001", "m_1", "hi", 1),
    ]);
    t.post(&b).await;
    let lead = t.lead(&psid("6001")).await.unwrap();
    let replies = t.due_replies().await;
    t.post(&b).await;
    t.post(&body(vec![postback("6002", "m_p", "GET_STARTED", None, 2)]))
        .await;
    t.post(&body(vec![postback("6002", "m_p", "GET_STARTED", None, 2)]))
        .await;
    let again = t.lead(&psid("6001")).await.unwrap();
    assert_eq!(again.item.version(), lead.item.version());
    assert_eq!(t.records(&psid("6001")).await.len(), 1);
    assert_eq!(t.records(&psid("6002")).await.len(), 1);
    assert_eq!(t.due_replies().await, replies + 1);
}

pub async fn echoes_deliveries_and_reads_never_touch_consent(backend: Backend) {
    let t = app(backend, "implicit").await;
    let r = t
        .post(&body(vec![
            echo("6001", "m_e", 1),
            delivery("6001", 2),
            read("6001", 3),
        ]))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(t.lead(&psid("6001")).await.is_none());
    t.post(&body(vec![message("6001", "m_1", "STOP", 4)])).await;
    t.post(&body(vec![message("6002", "m_2", "hi", 4)])).await;
    let before = t.lead(&psid("6002")).await.unwrap();
    t.post(&body(vec![
        echo("6002", "m_e2", 5),
        delivery("6002", 6),
        read("6002", 7),
    ]))
    .await;
    let after = t.lead(&psid("6002")).await.unwrap();
    assert_eq!(before.item, after.item);
    assert!(
        t.lead(&psid("6001")).await.is_none(),
        "a stranger's STOP stores nothing"
    );
}

pub async fn unknown_kinds_unconnected_pages_and_other_objects_are_ignored_with_200(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    let b = json!({ "object": "page", "entry": [
        { "id": "9999999999", "messaging": [ { "sender": { "id": "6001" }, "timestamp": 1, "message": { "mid": "m_x", "text": "hi" } } ] },
        { "id": PAGE_ID, "messaging": [ { "sender": { "id": "6002" }, "timestamp": 1, "game_play": {} }, "garbage" ],
          "standby": [ { "sender": { "id": "6003" }, "timestamp": 1, "message": { "mid": "m_s", "text": "hi" } } ] }
    ]});
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    assert_eq!(
        t.post(&json!({ "object": "instagram", "entry": [] }))
            .await
            .status(),
        StatusCode::OK
    );
    assert!(t.lead(&psid("6002")).await.is_none());
    assert!(t.lead(&psid("6003")).await.is_none());
    assert_eq!(t.count_partition_prefix("PAGE#9999999999").await, 0);
}

pub async fn a_policy_block_stops_the_page_and_queues_a_notice_and_unblock_lifts_it(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![policy("block", 1)])).await;
    let page = t.page_item().await;
    assert_eq!(page.get_str("sending"), Some("stopped"));
    assert_eq!(page.get_str("stopped_reason"), Some("policy_block"));
    let due = t.due_notices().await;
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].get_str("notice"), Some("page_sending_stopped"));
    assert_eq!(due[0].get_str("account_id"), Some(t.account.as_str()));
    // Replayed: no second notice.
    t.post(&body(vec![policy("block", 1)])).await;
    t.post(&body(vec![policy("warning", 2)])).await;
    t.post(&body(vec![policy("unblock", 3)])).await;
    let page = t.page_item().await;
    assert_eq!(page.get_str("sending"), Some("active"));
    assert_eq!(page.get_str("stopped_reason"), None);
}

pub async fn a_storage_failure_mid_batch_answers_503_and_the_retry_completes_without_duplicates(
    backend: Backend,
) {
    let t = app(backend, "confirmed").await;
    let b = body(vec![
        message("7001", "m_1", "hi", 1),
        message("7002", "m_2", "hi", 2),
        message("7003", "m_3", "hi", 3),
        quick_reply("7001", "m_4", "QCHAT_CONSENT_YES", 4),
    ]);
    t.store.fail_nth_transact(3);
    let r = t.post(&b).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(t.lead(&psid("7001")).await.is_some());
    assert!(t.lead(&psid("7003")).await.is_none());
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    assert_eq!(t.records(&psid("7001")).await.len(), 2);
    for p in ["7002", "7003"] {
        assert_eq!(t.records(&psid(p)).await.len(), 1);
        assert_eq!(t.lead(&psid(p)).await.unwrap().status, LeadStatus::Pending);
    }
    // One question per new person and one confirmation.
    assert_eq!(t.due_replies().await, 4);
}

/// The batch commits at its end; another delivery of one of its events committed first. The events
/// before that one stay applied, that one is a duplicate, and the rest are applied one by one.
pub async fn a_concurrent_delivery_found_at_commit_leaves_exactly_one_copy_of_every_event(
    backend: Backend,
) {
    use qchat_shared::inventory::WEBHOOK_EVENT;
    use qchat_shared::store::{Condition, Item, Value, WriteOp};

    let t = app(backend, "implicit").await;
    let b = body(vec![
        message("8001", "m_c1", "hi", 1),
        message("8002", "m_c2", "hi", 2),
        message("8003", "m_c3", "hi", 3),
        message("8001", "m_c4", "again", 4),
    ]);
    // The other delivery of m_c2 committed its de-duplication key (all this test needs of it).
    let one = serde_json::to_vec(&body(vec![message("8002", "m_c2", "hi", 2)])).unwrap();
    let parsed = qchat_webhook::envelope::parse(&one);
    let key = qchat_webhook::consent::dedup_key(&qchat_webhook::consent::dedup_hash(
        &parsed.events[0],
        None,
    ));
    let theirs = Item::new(&WEBHOOK_EVENT, key)
        .plain("received_at", Value::N(START.millis()))
        .unwrap()
        .expires_at(START.plus_hours(48));
    t.store.race_next_transact_each(vec![WriteOp::Put {
        item: theirs,
        condition: Condition::NotExists,
    }]);

    let bytes = serde_json::to_vec(&b).unwrap();
    let report = qchat_webhook::process(&t.app, &bytes).await.unwrap();
    assert_eq!((report.applied, report.duplicates), (3, 1));
    assert!(t.lead(&psid("8002")).await.is_none());
    for p in ["8001", "8003"] {
        assert_eq!(t.records(&psid(p)).await.len(), 1, "{p}");
    }
    let last = |l: Option<qchat_shared::leads::Lead>| l.and_then(|l| l.last_message_at);
    assert_eq!(
        last(t.lead(&psid("8001")).await).map(|t| t.millis()),
        Some(4)
    );
    let replies = t.due_replies().await;

    // Meta's retry of the whole batch changes nothing.
    let report = qchat_webhook::process(&t.app, &bytes).await.unwrap();
    assert_eq!((report.applied, report.duplicates), (0, 4));
    assert_eq!(t.due_replies().await, replies);
    for p in ["8001", "8003"] {
        assert_eq!(t.records(&psid(p)).await.len(), 1, "{p}");
    }
}

/// A whole batch costs one commit: every event's transaction goes into one `transact_each`.
pub async fn a_batch_commits_its_events_together(backend: Backend) {
    let t = app(backend, "implicit").await;
    let items = (0..20)
        .map(|n| message(&format!("{}", 8100 + n), &format!("m_t{n}"), "hi", n))
        .collect();
    let before = t.store.calls();
    assert_eq!(t.post(&body(items)).await.status(), StatusCode::OK);
    let after = t.store.calls();
    assert_eq!(
        (
            after.transact - before.transact,
            after.transact_each - before.transact_each
        ),
        (0, 1)
    );
    assert_eq!(t.records(&psid("8119")).await.len(), 1);
}

/// Two deliveries at once, each holding the first event of the same ten new people (a message in one,
/// a referral in the other): each person ends with ONE lead, one lookup and one key-store entry, whichever
/// delivery claimed the lookup first.
pub async fn first_events_of_one_new_person_delivered_at_once_make_one_lead(backend: Backend) {
    let t = app(backend, "implicit").await;
    let people: Vec<String> = (0..10).map(|n| format!("{}", 8300 + n)).collect();
    let messages = serde_json::to_vec(&body(
        people
            .iter()
            .enumerate()
            .map(|(n, p)| message(p, &format!("m_r{n}"), "hi", 1))
            .collect(),
    ))
    .unwrap();
    let referrals = serde_json::to_vec(&body(
        people.iter().map(|p| referral(p, "spring", 1)).collect(),
    ))
    .unwrap();
    let (a, b) = tokio::join!(
        qchat_webhook::process(&t.app, &messages),
        qchat_webhook::process(&t.app, &referrals)
    );
    a.unwrap();
    b.unwrap();
    let leads = t
        .app
        .store
        .query(&qchat_shared::store::Query {
            index: qchat_shared::store::Index::Table,
            partition: format!("PAGE#{}", t.page),
            range: qchat_shared::store::KeyRange::Prefix("LEAD#".to_owned()),
            order: qchat_shared::store::Order::Ascending,
            limit: 100,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(leads.items.len(), people.len(), "one lead per person");
    let entries = t
        .app
        .key_store
        .query(&qchat_shared::store::Query::partition(
            qchat_shared::leads::lookup::keys_partition(&t.page),
            100,
        ))
        .await
        .unwrap();
    assert_eq!(entries.items.len(), people.len(), "one entry per person");
    for p in &people {
        let lead = t.lead(&psid(p)).await.expect("the lookup finds the lead");
        assert!(
            leads.items.iter().any(|i| i.key() == lead.item.key()),
            "the lookup names the lead that exists"
        );
        assert_eq!(lead.status, LeadStatus::Subscribed);
        assert_eq!(t.records(&psid(p)).await.len(), 1, "{p}");
    }
    assert_eq!(t.listed(LeadStatus::Subscribed).await.len(), people.len());
}

/// The key store's part of a webhook batch: the lookups of its new people are read in one `get_many`
/// and their claims (lookup and entry) written in one `transact_each`, like the batch's de-duplication
/// keys are read in one `get_many` and its events' transactions committed in one call to the main
/// store; a new person costs no lead read; a replayed batch costs the key store nothing; a batch of known
/// people costs it one read.
pub async fn a_batch_reads_its_lookups_in_one_call_and_claims_its_new_people_in_one_call(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    let batch = |first: usize, mid: &str| {
        body(
            (0..20)
                .map(|n| {
                    message(
                        &format!("{}", 8400 + n),
                        &format!("m_{mid}{n}"),
                        "hi",
                        first as i64,
                    )
                })
                .collect(),
        )
    };
    let (main, keys) = (t.store.calls(), t.key_store.calls());
    assert_eq!(t.post(&batch(1, "n")).await.status(), StatusCode::OK);
    let (main_new, keys_new) = (t.store.calls(), t.key_store.calls());
    assert_eq!(
        (
            keys_new.get - keys.get,
            keys_new.get_many - keys.get_many,
            keys_new.transact - keys.transact,
            keys_new.transact_each - keys.transact_each,
            keys_new.total() - keys.total()
        ),
        (0, 1, 0, 1, 2),
        "new people: their lookups in one read, their claims in one call"
    );
    // The page once, the de-duplication keys in one call: a person without a lookup has no lead to read.
    assert_eq!(
        (main_new.get - main.get, main_new.get_many - main.get_many),
        (1, 1)
    );

    assert_eq!(t.post(&batch(1, "n")).await.status(), StatusCode::OK);
    let keys_dup = t.key_store.calls();
    assert_eq!(keys_dup.total(), keys_new.total(), "duplicates: nothing");

    assert_eq!(t.post(&batch(2, "k")).await.status(), StatusCode::OK);
    let keys_known = t.key_store.calls();
    assert_eq!(
        (
            keys_known.get_many - keys_dup.get_many,
            keys_known.total() - keys_dup.total()
        ),
        (1, 1),
        "known people: their lookups in one read"
    );
    assert_eq!(t.records(&psid("8419")).await.len(), 1);
}

/// The same new person's claim was made elsewhere between the batch's lookup read and its key-store
/// commit (a concurrent optin, whose lead is not written yet). The events before that person's stay
/// applied; that person's event is applied again on the lead that won the claim, under its secret; the
/// events after it are applied one by one. No lead is written without its claim.
pub async fn a_claim_made_elsewhere_found_at_the_key_store_commit_joins_the_winning_lead(
    backend: Backend,
) {
    use qchat_shared::crypto::LeadSecret;
    use qchat_shared::domain::LeadId;
    use qchat_shared::leads::lookup;

    let t = app(backend, "implicit").await;
    let b = body(vec![
        message("8501", "m_w1", "hi", 1),
        message("8502", "m_w2", "hi", 2),
        message("8503", "m_w3", "hi", 3),
    ]);
    let indexer = t.app.keys.blind_indexer().await.unwrap();
    let index = qchat_shared::leads::subject_index(&indexer, &t.page, &psid("8502"));
    let winner = LeadId::generate(t.app.ids.as_ref());
    let secret = LeadSecret::generate().unwrap();
    t.key_store.race_next_transact_each(
        lookup::claim_ops(&t.page, &index, &winner, &secret, START).unwrap(),
    );

    let bytes = serde_json::to_vec(&b).unwrap();
    let report = qchat_webhook::process(&t.app, &bytes).await.unwrap();
    assert_eq!((report.applied, report.duplicates), (3, 0));
    let joined = t.lead(&psid("8502")).await.expect("the winner's lead");
    assert_eq!(joined.id, winner);
    for p in ["8501", "8502", "8503"] {
        assert_eq!(t.records(&psid(p)).await.len(), 1, "{p}");
    }
    // One lead and one key-store entry per person: the losing proposal left nothing anywhere.
    let entries = t
        .app
        .key_store
        .query(&qchat_shared::store::Query::partition(
            lookup::keys_partition(&t.page),
            100,
        ))
        .await
        .unwrap();
    assert_eq!(entries.items.len(), 3);
    assert_eq!(t.listed(LeadStatus::Subscribed).await.len(), 3);

    // Meta's retry of the whole batch changes nothing.
    let report = qchat_webhook::process(&t.app, &bytes).await.unwrap();
    assert_eq!((report.applied, report.duplicates), (0, 3));
}

/// The key store fails at the second new person's claim: the main store commits only the event before
/// it (whose claim is durable), so no lead is written without its claim; the batch answers 503 and
/// Meta's retry completes it without duplicates.
pub async fn a_key_store_failure_mid_batch_writes_no_lead_without_its_claim(backend: Backend) {
    let t = app(backend, "implicit").await;
    let b = body(vec![
        message("8601", "m_k1", "hi", 1),
        message("8602", "m_k2", "hi", 2),
        message("8603", "m_k3", "hi", 3),
    ]);
    t.key_store.fail_nth_transact(2);
    assert_eq!(t.post(&b).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(t.lead(&psid("8601")).await.is_some());
    for p in ["8602", "8603"] {
        assert!(t.lead(&psid(p)).await.is_none(), "{p}");
    }
    assert_eq!(t.listed(LeadStatus::Subscribed).await.len(), 1);
    assert_eq!(t.post(&b).await.status(), StatusCode::OK);
    for p in ["8601", "8602", "8603"] {
        assert_eq!(t.records(&psid(p)).await.len(), 1, "{p}");
    }
    assert_eq!(t.listed(LeadStatus::Subscribed).await.len(), 3);
}
