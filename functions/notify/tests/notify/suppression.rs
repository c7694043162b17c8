//! SES feedback on both backends: a hard bounce or a complaint, delivered by SNS to the Lambda handler,
//! stops every later notice to that address (failed as `recipient_suppressed`, nothing handed to the
//! mailer), while other addresses and soft bounces are unaffected. The local mailer itself never bounces;
//! these tests feed the SNS notification SES would publish.

use qchat_notify::{Delivery, deliver, handle};
use qchat_shared::clock::Clock as _;
use qchat_shared::domain::EmailAddress;
use qchat_shared::mail::suppression::SUPPRESSED;
use qchat_shared::outbox::Notice;
use qchat_shared::test_support::logs;
use serde_json::{Value, json};

use crate::helpers::{TestApp, aws_app, local_app, unique_email};

/// The Lambda event SNS delivers for one SES event-publishing notification.
fn sns(message: &Value) -> Value {
    json!({ "Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": "arn:aws:sns:us-east-1:123456789012:qchat-mail-feedback:0b6941c4",
        "Sns": {
            "Type": "Notification",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:qchat-mail-feedback",
            "Subject": null,
            "Message": message.to_string(),
            "Timestamp": "2026-12-03T12:00:00.000Z"
        }
    }]})
}

fn bounce(kind: &str, to: &EmailAddress) -> Value {
    sns(&json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": kind,
            "bounceSubType": "General",
            "bouncedRecipients": [{ "emailAddress": to.expose(), "action": "failed", "status": "5.1.1" }],
            "timestamp": "2026-12-03T12:00:00.000Z",
            "feedbackId": "0100018c-bounce"
        },
        "mail": { "messageId": "0100018c-sent", "destination": [to.expose()] }
    }))
}

fn complaint(to: &EmailAddress) -> Value {
    sns(&json!({
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{ "emailAddress": to.expose() }],
            "complaintFeedbackType": "abuse",
            "feedbackId": "0100018c-complaint"
        },
        "mail": { "messageId": "0100018c-sent", "destination": [to.expose()] }
    }))
}

fn mails_to(t: &TestApp, to: &EmailAddress) -> usize {
    t.mailer
        .delivered()
        .iter()
        .filter(|m| m.to == to.expose())
        .count()
}

/// Mails an account once, hands the handler `feedback` about its address, then queues a second notice to
/// it and one to another account. Returns the address and what happened: the handler's response, the
/// second notice's delivery and its recorded state.
async fn notice_after(t: &TestApp, feedback: fn(&EmailAddress) -> Value) -> (EmailAddress, Value) {
    let to = unique_email("bounced");
    let other = unique_email("fine");
    let account = t.create_account(&to).await;
    let neighbour = t.create_account(&other).await;
    // A first notice goes out: the address was fine until SES said otherwise.
    let first = t.queue(&account, &Notice::AccountCreated).await;
    assert_eq!(deliver(&t.app, &first).await.unwrap(), Delivery::Sent);

    let response = handle(&t.app, "lambda-test", &feedback(&to), t.roomy_deadline())
        .await
        .unwrap();

    let later = t
        .queue(&account, &Notice::PasswordChanged { at: t.clock.now() })
        .await;
    let outcome = deliver(&t.app, &later).await.unwrap();
    let state = t.state_of(&later).await;
    let unaffected = t.queue(&neighbour, &Notice::AccountCreated).await;
    assert_eq!(deliver(&t.app, &unaffected).await.unwrap(), Delivery::Sent);
    assert_eq!(mails_to(t, &other), 1, "another address is still mailed");
    (
        to,
        json!({ "response": response, "outcome": format!("{outcome:?}"), "state": [state.0, state.1] }),
    )
}

async fn a_hard_bounce_stops_every_later_mail_to_the_address(t: TestApp) {
    let (to, seen) = notice_after(&t, |to| bounce("Permanent", to)).await;
    assert_eq!(seen["response"]["suppressed"], 1);
    assert_eq!(seen["outcome"], "Failed");
    assert_eq!(seen["state"], json!(["failed", SUPPRESSED]));
    assert_eq!(mails_to(&t, &to), 1, "only the mail before the bounce");
}

async fn a_complaint_stops_every_later_mail_to_the_address(t: TestApp) {
    let (to, seen) = notice_after(&t, complaint).await;
    assert_eq!(seen["response"]["suppressed"], 1);
    assert_eq!(seen["state"], json!(["failed", SUPPRESSED]));
    assert_eq!(mails_to(&t, &to), 1);
}

async fn a_soft_bounce_suppresses_nothing(t: TestApp) {
    let (to, seen) = notice_after(&t, |to| bounce("Transient", to)).await;
    assert_eq!(seen["response"]["suppressed"], 0);
    assert_eq!(seen["response"]["soft_bounces"], 1);
    assert_eq!(seen["state"], json!(["sent", null]));
    assert_eq!(mails_to(&t, &to), 2);
}

#[tokio::test]
async fn local_a_hard_bounce_stops_every_later_mail_to_the_address() {
    a_hard_bounce_stops_every_later_mail_to_the_address(local_app().await).await;
}

#[tokio::test]
async fn on_aws_a_hard_bounce_stops_every_later_mail_to_the_address() {
    a_hard_bounce_stops_every_later_mail_to_the_address(aws_app(true).await).await;
}

#[tokio::test]
async fn local_a_complaint_stops_every_later_mail_to_the_address() {
    a_complaint_stops_every_later_mail_to_the_address(local_app().await).await;
}

#[tokio::test]
async fn on_aws_a_complaint_stops_every_later_mail_to_the_address() {
    a_complaint_stops_every_later_mail_to_the_address(aws_app(true).await).await;
}

#[tokio::test]
async fn local_a_soft_bounce_suppresses_nothing() {
    a_soft_bounce_suppresses_nothing(local_app().await).await;
}

#[tokio::test]
async fn on_aws_a_soft_bounce_suppresses_nothing() {
    a_soft_bounce_suppresses_nothing(aws_app(true).await).await;
}

#[tokio::test]
async fn on_aws_mail_feedback_logs_no_address_and_garbage_is_ignored() {
    let capture = logs::capture();
    let t = aws_app(true).await;
    let to = unique_email("feedback-logs");
    let response = handle(
        &t.app,
        "lambda-test",
        &bounce("Permanent", &to),
        t.roomy_deadline(),
    )
    .await
    .unwrap();
    assert_eq!(response["suppressed"], 1);
    let garbage = sns(&json!("not a notification"));
    let response = handle(&t.app, "lambda-test", &garbage, t.roomy_deadline())
        .await
        .unwrap();
    assert_eq!(
        response,
        json!({ "suppressed": 0, "soft_bounces": 0, "ignored": 1 })
    );
    capture.assert_absent(&[to.expose()]);
    assert!(capture.contents().contains("mail feedback handled"));
}
