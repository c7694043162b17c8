//! The Lambda handler's two paths, without the runtime: a stream batch delivers its notices and always
//! succeeds; anything else runs a tick.

use qchat_notify::handle;
use qchat_shared::clock::Clock as _;
use qchat_shared::outbox::Notice;
use serde_json::json;

use crate::helpers::{local_app, unique_email};

fn insert(pk: &str) -> serde_json::Value {
    json!({
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": { "Keys": { "pk": { "S": pk }, "sk": { "S": "OUTBOX" } }, "StreamViewType": "KEYS_ONLY" }
    })
}

#[tokio::test]
async fn a_stream_batch_delivers_its_notices_and_succeeds_even_when_one_cannot_be_sent() {
    let t = local_app().await;
    let kept = t.create_account(&unique_email("stream")).await;
    let gone = t.create_account(&unique_email("stream-gone")).await;
    let sent = t.queue(&kept, &Notice::AccountCreated).await;
    let failed = t.queue(&gone, &Notice::AccountCreated).await;
    t.erase_account(&gone).await;

    let event = json!({ "Records": [
        insert(&format!("OUTBOX#{sent}")),
        insert(&format!("OUTBOX#{failed}")),
        insert("OUTBOX#not-in-the-table"),
        insert("JOB#something-else"),
    ]});
    let response = handle(&t.app, "lambda-test", &event, t.roomy_deadline())
        .await
        .unwrap();
    assert_eq!(response, json!({ "batchItemFailures": [] }));
    assert_eq!(t.mailer.times_sent(&sent), 1);
    assert_eq!(t.state_of(&failed).await.1.as_deref(), Some("account_gone"));

    // The stream may deliver a record again; nothing is sent twice.
    handle(&t.app, "lambda-test", &event, t.roomy_deadline())
        .await
        .unwrap();
    assert_eq!(t.mailer.delivered().len(), 1);
}

#[tokio::test]
async fn a_stream_batch_near_the_deadline_leaves_its_notices_for_the_sweep() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("stream-late")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    let event = json!({ "Records": [insert(&format!("OUTBOX#{id}"))] });
    handle(&t.app, "lambda-test", &event, t.clock.now().plus_secs(1))
        .await
        .unwrap();
    assert!(t.mailer.delivered().is_empty());
    assert_eq!(t.due_ids().await, vec![id]);
}

#[tokio::test]
async fn a_scheduled_event_runs_the_jobs_and_the_sweep() {
    let t = local_app().await;
    t.create_accounts(3, "scheduled").await;
    t.publish_policy("terms", "2", "Updated terms.").await;
    let scheduled =
        json!({ "source": "aws.events", "detail-type": "Scheduled Event", "detail": {} });
    let response = handle(&t.app, "lambda-test", &scheduled, t.roomy_deadline())
        .await
        .unwrap();
    assert_eq!(response["jobs"]["finished"], 1);
    assert_eq!(response["delivery"]["sent"], 3);
    assert_eq!(t.mailer.delivered().len(), 3);
}
