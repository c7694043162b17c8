//! The cases: each one rule of issue 12's sender, proven on what reached the fake Send API and on the
//! broadcast's counts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use qchat_shared::broadcast::{Audience, CancelOutcome, State, UrlButton};
use qchat_shared::leads::LeadStatus;
use qchat_shared::store::Value;
use serde_json::json;

use crate::harness::{Engine, FailingStore, LEASE, LeadSpec, PausingStore, graph_error};
use crate::helpers::Backend;

const HOUR: i64 = 3600;

fn map(pairs: &[(&'static str, u64)]) -> BTreeMap<&'static str, u64> {
    pairs.iter().copied().collect()
}

pub async fn eligibility_is_decided_per_lead_at_send_time_and_preview_agrees(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let update = e.add_lead(LeadSpec::in_window()).await;
    let window_and_token = e
        .add_lead(LeadSpec::in_window().token("active", None))
        .await;
    let token_fresh = e
        .add_lead(LeadSpec::in_window().wrote(None).token("active", None))
        .await;
    let token_old = e
        .add_lead(
            LeadSpec::in_window()
                .wrote(Some(30 * HOUR))
                .token("active", Some(49 * HOUR)),
        )
        .await;
    let token_recent = e
        .add_lead(
            LeadSpec::in_window()
                .wrote(Some(30 * HOUR))
                .token("active", Some(47 * HOUR)),
        )
        .await;
    let token_stopped = e
        .add_lead(LeadSpec::in_window().wrote(None).token("stopped", None))
        .await;
    let outside = e
        .add_lead(LeadSpec::in_window().wrote(Some(25 * HOUR)))
        .await;
    let campaign = e.add_lead(LeadSpec::in_window().optin_ref("spring")).await;
    let unsubscribed = e
        .add_lead(LeadSpec::in_window().status(LeadStatus::Unsubscribed))
        .await;
    let unreachable = e
        .add_lead(LeadSpec::in_window().status(LeadStatus::Unreachable))
        .await;
    let pending = e
        .add_lead(LeadSpec::in_window().status(LeadStatus::Pending))
        .await;

    let preview = e
        .broadcasts
        .preview(&e.account, &e.page, &Audience::default())
        .await
        .unwrap();
    assert_eq!(
        (preview.eligible, preview.via_update, preview.via_token),
        (5, 3, 2)
    );
    assert_eq!(
        preview.by_reason,
        map(&[
            ("outside_window", 2),
            ("token_used_recently", 1),
            ("unreachable", 1),
            ("unsubscribed", 2),
        ])
    );
    let only_spring = Audience {
        refs: vec!["spring".to_owned()],
        subscribed_since: None,
    };
    let preview = e
        .broadcasts
        .preview(&e.account, &e.page, &only_spring)
        .await
        .unwrap();
    assert_eq!(preview.eligible, 1);
    assert_eq!(preview.by_reason.get("not_in_audience"), Some(&7));

    let b = e.create(e.draft("Fresh bread at 7")).await;
    assert_eq!(b.state, State::Scheduled);
    e.run_to_end(&b.id, 60, 5).await;

    let received = e.fake.received();
    let mut got: Vec<(String, String, Option<String>)> = received
        .iter()
        .map(|r| {
            (
                r.recipient.clone(),
                r.recipient_kind.clone(),
                r.messaging_type.clone(),
            )
        })
        .collect();
    got.sort();
    let update_type = Some("UPDATE".to_owned());
    let mut want = vec![
        (update.psid.clone(), "id".to_owned(), update_type.clone()),
        (
            window_and_token.psid.clone(),
            "id".to_owned(),
            update_type.clone(),
        ),
        (campaign.psid.clone(), "id".to_owned(), update_type.clone()),
        (
            token_fresh.token.clone().unwrap(),
            "notification_messages_token".to_owned(),
            None,
        ),
        (
            token_old.token.clone().unwrap(),
            "notification_messages_token".to_owned(),
            None,
        ),
    ];
    want.sort();
    assert_eq!(got, want);
    for r in &received {
        assert!(r.body.get("tag").is_none(), "never a message tag");
        assert_ne!(r.body["messaging_type"], "MESSAGE_TAG");
    }
    let view = e.view(&b.id).await;
    assert_eq!(view.state, State::Done);
    assert_eq!(view.counts.sent, 5);
    assert_eq!(
        view.counts.skipped,
        map(&[("outside_window", 2), ("token_used_recently", 1)])
    );
    assert!(view.counts.failed.is_empty());
    assert_eq!((view.counts.unknown, view.counts.pending), (0, 0));
    assert!(view.started_at.is_some() && view.ended_at.is_some());

    // The 48-hour mark is recorded on token sends only.
    for used in [&token_fresh, &token_old] {
        let lead = e.lead(&used.id).await;
        assert!(
            lead.item.get_i64("marketing_last_sent_at").unwrap() > e.now().plus_secs(-600).millis(),
            "the token's use is recorded"
        );
    }
    assert!(
        e.lead(&window_and_token.id)
            .await
            .item
            .get_i64("marketing_last_sent_at")
            .is_none()
    );
    for skipped in [
        &token_recent,
        &token_stopped,
        &outside,
        &unsubscribed,
        &unreachable,
        &pending,
    ] {
        assert_eq!(e.fake.per_recipient().get(&skipped.psid), None);
    }

    // Right after, the tokens are spent: a second broadcast reaches only the 24-hour window.
    let preview = e
        .broadcasts
        .preview(&e.account, &e.page, &Audience::default())
        .await
        .unwrap();
    assert_eq!((preview.eligible, preview.via_token), (3, 0));
    assert_eq!(preview.by_reason.get("token_used_recently"), Some(&3));

    // A stopped page reaches nobody.
    let key = qchat_shared::pages::page_key(&e.page);
    let page = e.app.store.get(&key).await.unwrap().unwrap();
    let v = page.version().unwrap();
    let stopped = page
        .plain("sending", Value::S("stopped".into()))
        .unwrap()
        .with_version(v + 1);
    e.app
        .store
        .put(stopped, qchat_shared::store::Condition::VersionIs(v))
        .await
        .unwrap();
    let preview = e
        .broadcasts
        .preview(&e.account, &e.page, &Audience::default())
        .await
        .unwrap();
    assert_eq!(preview.eligible, 0);
    assert_eq!(preview.by_reason.get("page_stopped"), Some(&11));
}

pub async fn a_lead_who_unsubscribes_between_scheduling_and_sending_gets_nothing(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let leaving = e.add_lead(LeadSpec::in_window()).await;
    let staying = e.add_lead(LeadSpec::in_window()).await;
    let mut draft = e.draft("Sale tomorrow");
    draft.send_at = e.now().plus_secs(1800);
    let b = e.create(draft).await;

    let early = e.tick("runner", 60).await;
    assert_eq!(early.claimed, 0, "not due before send_at");
    assert!(e.fake.received().is_empty());

    e.t.post_json(
        &format!(
            "/api/pages/{}/leads/{}/unsubscribe",
            e.page.as_str(),
            leaving.id.as_str()
        ),
        &json!({}),
        Some(&e.session),
    )
    .await
    .assert_status(200);
    e.t.clock.advance_secs(1800);
    e.run_to_end(&b.id, 60, 5).await;

    let sent = e.fake.per_recipient();
    assert_eq!(sent.get(&staying.psid), Some(&1));
    assert_eq!(
        sent.get(&leaving.psid),
        None,
        "an unsubscribed person gets nothing"
    );
    assert_eq!(e.view(&b.id).await.counts.sent, 1);
}

/// The race the batch read leaves open: the sender read the lead as subscribed from the status index,
/// and the person opts out before the sender claims their delivery. Neither an `UPDATE` send nor a
/// token send goes out, no delivery record is left for them, and they count as skipped.
pub async fn a_lead_who_unsubscribes_between_the_batch_read_and_the_claim_gets_nothing(
    backend: Backend,
) {
    let e = Engine::spawn(backend).await;
    let update = e.add_lead(LeadSpec::in_window()).await;
    let token = e
        .add_lead(LeadSpec::in_window().wrote(None).token("active", None))
        .await;
    let staying = e.add_lead(LeadSpec::in_window()).await;
    let b = e.create(e.draft("Sale today")).await;
    let (pausing, mut pause) = PausingStore::new(e.app.store.clone(), &[&update.id, &token.id]);
    let (app, broadcasts) = e.with_store(Arc::new(pausing));
    let handler = broadcasts.job_handler();
    let opt_out = async {
        // Both claims are held: the batch has been read and decided.
        let mut held = vec![
            pause.reached.recv().await.unwrap(),
            pause.reached.recv().await.unwrap(),
        ];
        held.sort();
        let mut expected = vec![format!("LEAD#{}", update.id), format!("LEAD#{}", token.id)];
        expected.sort();
        assert_eq!(held, expected);
        for lead in [&update, &token] {
            e.t.post_json(
                &format!(
                    "/api/pages/{}/leads/{}/unsubscribe",
                    e.page.as_str(),
                    lead.id.as_str()
                ),
                &json!({}),
                Some(&e.session),
            )
            .await
            .assert_status(200);
        }
        pause.release();
    };
    let (report, ()) = tokio::join!(e.run_with("runner", 60, &handler), opt_out);
    assert_eq!(report.failed_steps, 0);
    if !e.view(&b.id).await.state.is_finished() {
        e.run_to_end(&b.id, 60, 3).await;
    }

    let sent = e.fake.per_recipient();
    assert_eq!(sent.get(&staying.psid), Some(&1));
    assert_eq!(
        sent.get(&update.psid),
        None,
        "no UPDATE send after the opt-out"
    );
    assert_eq!(
        sent.get(token.token.as_deref().unwrap()),
        None,
        "no token send after the opt-out"
    );
    assert_eq!(sent.len(), 1, "{sent:?}");
    let view = e.view(&b.id).await;
    assert_eq!(view.state, State::Done);
    assert_eq!(view.counts.sent, 1);
    assert_eq!(view.counts.skipped, map(&[("unsubscribed", 2)]));
    for lead in [&update, &token] {
        let record = app
            .store
            .get(&qchat_shared::broadcast::sender::delivery_key(
                &e.page, &b.id, &lead.id,
            ))
            .await
            .unwrap();
        assert!(record.is_none(), "the unused claim was given back");
        assert_eq!(e.lead(&lead.id).await.status, LeadStatus::Unsubscribed);
    }
}

pub async fn every_message_carries_the_unsubscribe_quick_reply_and_never_a_tag(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let lead = e.add_lead(LeadSpec::in_window()).await;
    let mut draft = e.draft("Our spring menu is here");
    draft.buttons = vec![UrlButton {
        title: "See the menu".to_owned(),
        url: "https://bakery.example/menu".to_owned(),
    }];
    let b = e.create(draft).await;
    e.run_to_end(&b.id, 60, 5).await;

    let received = e.fake.received();
    assert_eq!(received.len(), 1);
    let body = &received[0].body;
    assert_eq!(received[0].recipient, lead.psid);
    assert_eq!(body["messaging_type"], "UPDATE");
    assert!(body.get("tag").is_none());
    let message = &body["message"];
    assert_eq!(
        message["quick_replies"],
        json!([{ "content_type": "text", "title": "Unsubscribe", "payload": "QCHAT_UNSUBSCRIBE" }])
    );
    let payload = &message["attachment"]["payload"];
    assert_eq!(message["attachment"]["type"], "template");
    assert_eq!(payload["template_type"], "button");
    assert_eq!(
        payload["buttons"],
        json!([{ "type": "web_url", "url": "https://bakery.example/menu", "title": "See the menu" }])
    );
    let text = payload["text"].as_str().unwrap();
    assert!(text.starts_with("Our spring menu is here"), "{text}");
    assert!(text.contains("STOP"), "the footer says how to stop: {text}");
    assert_eq!(
        message["metadata"],
        json!(format!("qchat.broadcast.{}", b.id))
    );
}

pub async fn a_runner_killed_mid_batch_is_resumed_and_no_lead_gets_the_message_twice(
    backend: Backend,
) {
    let e = Engine::spawn(backend).await;
    e.set_rate(50).await;
    let leads = e.add_leads(LeadSpec::in_window(), 30).await;
    let b = e.create(e.draft("Doors open at 9")).await;
    // Meta takes its time; the runner dies once five messages have reached it, answers pending.
    e.fake.set_delay(Duration::from_secs(30));
    let handler = e.broadcasts.job_handler();
    tokio::select! {
        _ = e.run_with("doomed", 60, &handler) => panic!("the runner should not finish"),
        () = async {
            while e.fake.received().len() < 5 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } => {}
    }
    // Requests already on the wire when the runner died still reach Meta.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reached_before = e.fake.per_recipient();
    e.fake.set_delay(Duration::ZERO);

    // The dead runner's lease keeps others off until it expires.
    let held = e.tick("second", 60).await;
    assert_eq!((held.claimed, held.skipped), (0, 1));
    e.t.clock.advance_secs(LEASE + 1);
    e.run_to_end(&b.id, 60, 5).await;

    let sent = e.fake.per_recipient();
    let view = e.view(&b.id).await;
    for lead in &leads {
        let n = sent.get(&lead.psid).copied().unwrap_or(0);
        assert!(n <= 1, "a lead got the message {n} times");
    }
    assert_eq!(
        view.counts.sent + view.counts.unknown,
        30,
        "{:?}",
        view.counts
    );
    assert!(
        view.counts.unknown >= 5,
        "the dead runner's claims are unknown: {:?}",
        view.counts
    );
    // Every lead the dead runner had not claimed got it once after the resume; those it had claimed
    // are never sent again (Meta may or may not have got theirs).
    for psid in reached_before.keys() {
        assert_eq!(sent.get(psid), Some(&1));
    }
    let reached = sent.len() as u64;
    assert!(
        reached >= view.counts.sent + reached_before.len() as u64
            && reached <= view.counts.sent + view.counts.unknown,
        "{reached} reached, {:?}",
        view.counts
    );
    assert_eq!(view.state, State::Done);
}

pub async fn a_batch_re_run_after_a_store_failure_counts_each_lead_once(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let leads = e.add_leads(LeadSpec::in_window(), 20).await;
    let b = e.create(e.draft("Hello")).await;
    let failing = Arc::new(FailingStore::new(e.app.store.clone()));
    let (_, broadcasts) = e.with_store(failing.clone());
    // A write in the middle of the first batch fails (puts: the pace reservation, then claims and
    // outcomes): the step fails and is retried later.
    failing.fail_nth_put(12);
    let handler = broadcasts.job_handler();
    let report = e.run_with("runner", 60, &handler).await;
    assert_eq!(report.failed_steps, 1);
    assert_eq!(e.view(&b.id).await.counts.processed(), 0, "nothing folded");
    let first = e.fake.received().len();
    assert!(first >= 5, "the claims before the failure were sent");
    e.t.clock.advance_secs(31);
    for _ in 0..5 {
        e.run_with("runner", 60, &handler).await;
        if e.view(&b.id).await.state.is_finished() {
            break;
        }
        e.t.clock.advance_secs(60);
    }
    let view = e.view(&b.id).await;
    assert_eq!(view.state, State::Done);
    // A failed outcome write leaves its claim without an outcome: `unknown`, and not sent again.
    assert_eq!(
        view.counts.sent + view.counts.unknown,
        20,
        "{:?}",
        view.counts
    );
    assert!(view.counts.unknown <= 1, "{:?}", view.counts);
    let sent = e.fake.per_recipient();
    for lead in &leads {
        assert_eq!(sent.get(&lead.psid), Some(&1));
    }
}

pub async fn two_runners_at_once_send_each_message_once(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let leads = e.add_leads(LeadSpec::in_window(), 40).await;
    let first = e.create(e.draft("One")).await;
    let second = e.create(e.draft("Two")).await;
    for _ in 0..10 {
        let (a, b) = tokio::join!(e.tick("runner-a", 60), e.tick("runner-b", 60));
        assert!(a.claimed + b.claimed <= 2);
        if e.view(&first.id).await.state.is_finished()
            && e.view(&second.id).await.state.is_finished()
        {
            break;
        }
        e.t.clock.advance_secs(60);
    }
    for id in [&first.id, &second.id] {
        let view = e.view(id).await;
        assert_eq!((view.state, view.counts.sent), (State::Done, 40));
    }
    let sent = e.fake.per_recipient();
    for lead in &leads {
        assert_eq!(sent.get(&lead.psid), Some(&2), "once per broadcast");
    }
}

pub async fn rate_limits_and_temporary_errors_are_retried_then_counted_by_class(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let throttled_once = e.add_lead(LeadSpec::in_window()).await;
    let flaky = e.add_lead(LeadSpec::in_window()).await;
    let always_throttled = e.add_lead(LeadSpec::in_window()).await;
    let refused = e.add_lead(LeadSpec::in_window()).await;
    e.fake
        .script(&throttled_once.psid, vec![(400, graph_error(613, None))]);
    e.fake.script(
        &flaky.psid,
        vec![(500, graph_error(2, None)), (503, graph_error(1, None))],
    );
    e.fake
        .always(&always_throttled.psid, 400, graph_error(4, None));
    e.fake.always(&refused.psid, 400, graph_error(100, None));
    let b = e.create(e.draft("Hi")).await;
    e.run_to_end(&b.id, 60, 5).await;

    let sent = e.fake.per_recipient();
    assert_eq!(sent.get(&throttled_once.psid), Some(&2));
    assert_eq!(sent.get(&flaky.psid), Some(&3));
    assert_eq!(
        sent.get(&always_throttled.psid),
        Some(&3),
        "retries are capped"
    );
    assert_eq!(
        sent.get(&refused.psid),
        Some(&1),
        "a refusal is not retried"
    );
    let view = e.view(&b.id).await;
    assert_eq!(view.counts.sent, 2);
    assert_eq!(
        view.counts.failed,
        map(&[("invalid_request", 1), ("rate_limited", 1)])
    );
}

pub async fn error_551_marks_the_lead_unreachable(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let gone = e.add_lead(LeadSpec::in_window()).await;
    let here = e.add_lead(LeadSpec::in_window()).await;
    e.fake.always(&gone.psid, 400, graph_error(551, None));
    let b = e.create(e.draft("Hi")).await;
    e.run_to_end(&b.id, 60, 5).await;
    let view = e.view(&b.id).await;
    assert_eq!(view.counts.sent, 1);
    assert_eq!(view.counts.failed, map(&[("unreachable", 1)]));
    assert_eq!(e.lead(&gone.id).await.status, LeadStatus::Unreachable);
    assert_eq!(e.lead(&here.id).await.status, LeadStatus::Subscribed);

    // The next broadcast does not try again.
    let again = e.create(e.draft("Hi again")).await;
    e.run_to_end(&again.id, 60, 5).await;
    assert_eq!(e.fake.per_recipient().get(&gone.psid), Some(&1));
    let preview = e
        .broadcasts
        .preview(&e.account, &e.page, &Audience::default())
        .await
        .unwrap();
    assert_eq!(preview.by_reason.get("unreachable"), Some(&1));
}

pub async fn a_token_error_stops_the_page_pauses_its_broadcasts_and_queues_one_notice(
    backend: Backend,
) {
    let e = Engine::spawn(backend).await;
    e.set_rate(10).await;
    let leads = e.add_leads(LeadSpec::in_window(), 30).await;
    let trigger = &leads[4];
    e.fake
        .always(&trigger.psid, 400, graph_error(190, Some(460)));
    let first = e.create(e.draft("One")).await;
    let second = e.create(e.draft("Two")).await;
    e.tick("runner", 60).await;

    for id in [&first.id, &second.id] {
        let view = e.view(id).await;
        assert_eq!(view.state, State::Paused, "{:?}", view.counts);
        assert_eq!(view.pause_reason.as_deref(), Some("page_stopped"));
    }
    let page = e
        .app
        .store
        .get(&qchat_shared::pages::page_key(&e.page))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(page.get_str("sending"), Some("stopped"));
    assert_eq!(page.get_str("stopped_reason"), Some("token_invalid"));
    let stops = |n: &Vec<String>| n.iter().filter(|x| *x == "page_sending_stopped").count();
    assert_eq!(stops(&e.notices().await), 1, "one notice");
    let before = e.fake.received().len();
    e.t.clock.advance_secs(600);
    e.tick("runner", 60).await;
    assert_eq!(
        e.fake.received().len(),
        before,
        "nothing is sent while the page is stopped"
    );
    assert_eq!(stops(&e.notices().await), 1, "still one notice");

    // The owner gives a new token: both broadcasts resume where they stopped.
    e.fake.always(
        &trigger.psid,
        200,
        json!({ "recipient_id": "x", "message_id": "m_late" }),
    );
    e.t.request(
        http::Method::PUT,
        &format!("/api/pages/{}/access-token", e.page.as_str()),
        Some(
            serde_json::to_vec(&json!({
                "page_access_token": format!("sample-page-token-{}-renewed", e.page.as_str())
            }))
            .unwrap(),
        ),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {}", e.session)),
        ],
    )
    .await
    .assert_status(200);
    e.t.clock.advance_secs(600);
    e.run_to_end(&first.id, 60, 10).await;
    e.run_to_end(&second.id, 60, 10).await;
    for id in [&first.id, &second.id] {
        let view = e.view(id).await;
        assert_eq!(
            (view.state, view.counts.sent),
            (State::Done, 30),
            "{:?}",
            view.counts
        );
    }
    let received = e.fake.received();
    for lead in &leads {
        let ok = received.iter().filter(|r| r.recipient == lead.psid).count();
        let expected = if lead.psid == trigger.psid { 3 } else { 2 };
        assert_eq!(ok, expected, "each broadcast reached each lead once");
    }
    assert_eq!(stops(&e.notices().await), 1);
}

pub async fn a_cancelled_broadcast_sends_nothing_more_and_a_finished_one_cannot_be_cancelled(
    backend: Backend,
) {
    let e = Engine::spawn(backend).await;
    e.set_rate(10).await;
    e.add_leads(LeadSpec::in_window(), 100).await;
    let b = e.create(e.draft("Limited offer")).await;
    e.tick("runner", 6).await;
    let sent_before = e.fake.received().len();
    assert!(sent_before > 0 && sent_before < 100, "{sent_before}");
    let view = e.view(&b.id).await;
    assert_eq!(view.state, State::Sending);
    assert_eq!(view.counts.pending, 100 - view.counts.processed());

    let CancelOutcome::Cancelled(cancelled) = e
        .broadcasts
        .cancel(&e.account, &e.page, &b.id)
        .await
        .unwrap()
    else {
        panic!("a sending broadcast is cancelled");
    };
    assert_eq!(cancelled.state, State::Cancelled);
    e.t.clock.advance_secs(60);
    e.tick("runner", 60).await;
    assert_eq!(
        e.fake.received().len(),
        sent_before,
        "nothing after the cancel"
    );
    let view = e.view(&b.id).await;
    assert_eq!(view.state, State::Cancelled);
    assert_eq!(view.counts.sent as usize, sent_before);
    assert_eq!(view.counts.pending, 0);
    assert_eq!(
        e.broadcasts
            .cancel(&e.account, &e.page, &b.id)
            .await
            .unwrap(),
        CancelOutcome::AlreadyFinished(State::Cancelled)
    );
}

pub async fn two_broadcasts_of_one_page_keep_to_the_page_rate_together(backend: Backend) {
    let e = Engine::spawn(backend).await;
    e.add_leads(LeadSpec::in_window(), 60).await;
    let first = e.create(e.draft("One")).await;
    let second = e.create(e.draft("Two")).await;
    // Store and Send API calls take no time on the test's clock here, so a message reaches the fake
    // at the time the sender started it: what is measured is the pace, not moto's latency.
    let paced = e.with_calls_holding_the_clock();
    let handler = paced.job_handler();
    let start = e.now().millis();
    for _ in 0..20 {
        tokio::join!(
            e.run_with("runner-a", 60, &handler),
            e.run_with("runner-b", 60, &handler)
        );
        if e.view(&first.id).await.state.is_finished()
            && e.view(&second.id).await.state.is_finished()
        {
            break;
        }
        e.t.clock.advance_secs(60);
    }
    let mut times: Vec<i64> = e.fake.received().iter().map(|r| r.at.millis()).collect();
    assert_eq!(times.len(), 120);
    times.sort_unstable();
    // Never faster than the page's 20/s: the page's slots are 50 ms apart, none before the broadcasts
    // started, each used by one message, and no message goes before its slot, so the k-th message
    // (in time) comes at least k slots after the start.
    for (k, t) in times.iter().enumerate() {
        let earliest = start + 50 * i64::try_from(k).unwrap();
        assert!(
            *t >= earliest,
            "message {k} came {} ms before its earliest slot",
            earliest - t
        );
    }
    // In any one second, at most the slots of 1.5 s: a sender that continues the page's sending
    // takes the slots of the last 0.5 s (`CATCH_UP_MS`) at once, and a sender further behind defers.
    let most = times
        .iter()
        .enumerate()
        .map(|(i, t)| times[i..].iter().take_while(|u| **u < t + 1000).count())
        .max()
        .unwrap_or(0);
    assert!(most <= 30, "{most} messages in one second");
}

pub async fn broadcasts_are_listed_newest_first_and_only_to_their_own_account(backend: Backend) {
    let e = Engine::spawn(backend).await;
    let mut ids = Vec::new();
    for text in ["first", "second", "third"] {
        let mut draft = e.draft(text);
        draft.send_at = e.now().plus_days(3);
        draft.audience = Audience {
            refs: vec!["spring".to_owned()],
            subscribed_since: Some(e.now().plus_days(-1)),
        };
        ids.push(e.create(draft).await.id);
        e.t.clock.advance_secs(1);
    }
    let (page1, cursor) = e
        .broadcasts
        .list(&e.account, &e.page, None, 2)
        .await
        .unwrap();
    assert_eq!(
        page1
            .iter()
            .map(|v| v.draft.text.as_str())
            .collect::<Vec<_>>(),
        ["third", "second"]
    );
    let (page2, end) = e
        .broadcasts
        .list(&e.account, &e.page, cursor.as_deref(), 2)
        .await
        .unwrap();
    assert_eq!(page2.len(), 1);
    assert_eq!(page2[0].id, ids[0]);
    assert_eq!(page2[0].draft.audience.refs, ["spring"]);
    assert!(end.is_none());
    assert!(matches!(
        e.broadcasts
            .list(&e.account, &e.page, Some("not*a*cursor"), 2)
            .await,
        Err(qchat_shared::broadcast::BroadcastError::InvalidCursor)
    ));

    let (other, _) = e.t.signed_in_holder("other").await;
    let other = qchat_shared::domain::AccountId::parse(&other.id).unwrap();
    let (listed, _) = e.broadcasts.list(&other, &e.page, None, 10).await.unwrap();
    assert!(listed.is_empty());
    assert!(
        e.broadcasts
            .get(&other, &e.page, &ids[0])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        e.broadcasts.cancel(&other, &e.page, &ids[0]).await.unwrap(),
        CancelOutcome::NotFound
    );
    assert_eq!(e.view(&ids[0]).await.state, State::Scheduled);

    // Nothing personal or composed is stored in the clear.
    let raw = e.t.raw_store().await;
    let dump = format!("{:?}", raw.items);
    assert!(!dump.contains("spring"), "the audience's refs are sealed");
    assert!(!dump.contains("third"), "the text is sealed");
    e.t.assert_every_stored_attribute_is_declared().await;
}

pub async fn a_large_broadcast_completes_across_deadline_bounded_runs(backend: Backend) {
    // moto copies its whole table for every transaction (each claim is one), so a broadcast there
    // costs quadratic time: fewer leads and a slower page, so that it still spans several runs.
    let (n, rate) = match backend {
        Backend::Sqlite => (10_000, 250),
        Backend::Moto => (300, 20),
    };
    let e = Engine::spawn(backend).await;
    e.set_rate(rate).await;
    let leads = e.add_leads(LeadSpec::in_window(), n).await;
    let b = e.create(e.draft("Big news")).await;
    // Each run is cut by its deadline after about 12 s of sending (3 000 messages at 250/s).
    let ticks = e.run_to_end(&b.id, 15, 100).await;
    assert!(ticks >= n / (12 * rate as usize), "{ticks} runs");
    assert!(ticks >= 2, "the broadcast spans several runs");
    let view = e.view(&b.id).await;
    assert_eq!(
        (view.state, view.counts.sent, view.counts.pending),
        (State::Done, n as u64, 0)
    );
    let sent = e.fake.per_recipient();
    assert_eq!(sent.len(), n);
    for lead in &leads {
        assert_eq!(sent.get(&lead.psid), Some(&1));
    }
}

pub async fn a_campaign_broadcast_reaches_the_leads_of_its_ref_with_a_working_unsubscribe_link(
    backend: Backend,
) {
    const SECRET: &str = "broadcast-tests-app-secret";
    let e = Engine::spawn(backend).await;
    let mut config = (*e.t.app.config).clone();
    config.graph.app_secret = qchat_shared::config::Config::from_lookup(|name| {
        (name == "QCHAT_FB_APP_SECRET").then(|| SECRET.to_owned())
    })
    .unwrap()
    .graph
    .app_secret;
    let secrets = qchat_shared::meta_secrets::MetaSecretCache::new(
        Arc::new(qchat_shared::meta_secrets::FixedSource::from_config(
            &config.graph,
        )),
        e.t.app.clock.clone(),
        qchat_shared::meta_secrets::SecretCachePolicy::default(),
    );
    let mut webhook = e.t.app.clone().with_meta_secrets(Arc::new(secrets));
    webhook.config = Arc::new(config);
    let page = e.page.as_str().to_owned();
    let at = e.now().millis();
    let event = |psid: &str, kind: serde_json::Value| {
        let mut ev =
            json!({ "sender": { "id": psid }, "recipient": { "id": page }, "timestamp": at });
        for (k, v) in kind.as_object().unwrap() {
            ev[k] = v.clone();
        }
        ev
    };
    let messaging = vec![
        event(
            "5550001",
            json!({ "postback": { "mid": "m-gs-1", "title": "Get Started", "payload": "GET_STARTED",
            "referral": { "ref": "spring", "source": "SHORTLINK", "type": "OPEN_THREAD" } } }),
        ),
        event(
            "5550001",
            json!({ "message": { "mid": "m-hi-1", "text": "hello" } }),
        ),
        event(
            "5550002",
            json!({ "message": { "mid": "m-hi-2", "text": "hello" } }),
        ),
    ];
    let body = serde_json::to_vec(&json!({ "object": "page", "entry": [ { "id": page, "time": 1, "messaging": messaging } ] })).unwrap();
    let req = http::Request::builder()
        .method("POST")
        .uri("/webhook")
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            qchat_webhook::signature::sign(SECRET.as_bytes(), &body),
        )
        .body(bytes::Bytes::from(body))
        .unwrap();
    let response = qchat_local::dispatch(&webhook, req).await;
    assert_eq!(response.status().as_u16(), 200);

    let mut draft = e.draft("Spring menu for our early birds");
    draft.audience.refs = vec!["spring".to_owned()];
    let b = e.create(draft).await;
    e.run_to_end(&b.id, 60, 5).await;
    let received = e.fake.received();
    assert_eq!(received.len(), 1, "only the lead of the campaign");
    assert_eq!(received[0].recipient, "5550001");
    let view = e.view(&b.id).await;
    assert_eq!(view.counts.skipped, map(&[("not_in_audience", 1)]));

    let text = received[0].body["message"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = format!("{}/u/", crate::helpers::PUBLIC_URL);
    let token = text
        .split(&prefix)
        .nth(1)
        .expect("the footer holds the lead's unsubscribe link")
        .trim()
        .to_owned();
    e.t.use_link(&format!("/u/{token}"), Some(""))
        .await
        .assert_status(200);
    let leads =
        e.t.get(
            &format!("/api/pages/{page}/leads?status=unsubscribed"),
            Some(&e.session),
        )
        .await;
    assert_eq!(
        leads.json()["leads"].as_array().unwrap().len(),
        1,
        "the link unsubscribed the person"
    );
}
