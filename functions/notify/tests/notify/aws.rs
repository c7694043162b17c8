//! The main flows on the AWS backends — DynamoDB, KMS and SES in the moto emulator — with sent mail read
//! back from moto's record of SES. One flow captures every log line and checks that none of its email
//! addresses appears.

use qchat_notify::delivery::ACCOUNT_GONE;
use qchat_notify::fanout::notice_id;
use qchat_notify::{Delivery, deliver, drain_due, tick};
use qchat_shared::clock::Clock as _;
use qchat_shared::domain::EmailAddress;
use qchat_shared::outbox::Notice;
use qchat_shared::test_support::{logs, moto};
use serde_json::Value;

use crate::helpers::{PUBLIC_URL, TestApp, aws_app, unique_email};

/// Every message SES (moto) accepted for `to`.
async fn ses_messages_to(to: &EmailAddress) -> Vec<Value> {
    let data = moto::recorded_data().await;
    let messages = data["ses"]["Message"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    messages
        .into_iter()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(to.expose())))
        })
        .collect()
}

async fn provider_id(t: &TestApp, outbox_id: &str) -> String {
    t.outbox_item(outbox_id)
        .await
        .get_str("provider_id")
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn on_aws_a_notice_goes_out_through_ses_exactly_once_and_reads_back() {
    let t = aws_app(true).await;
    let email = unique_email("aws-once");
    let account = t.create_account(&email).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;

    assert_eq!(drain_due(&t.app, t.roomy_deadline()).await.unwrap().sent, 1);
    assert_eq!(drain_due(&t.app, t.roomy_deadline()).await.unwrap().sent, 0);
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Skipped);

    let messages = ses_messages_to(&email).await;
    assert_eq!(messages.len(), 1, "one message to the account");
    let m = &messages[0];
    assert_eq!(m["id"].as_str(), Some(provider_id(&t, &id).await.as_str()));
    assert_eq!(m["subject"].as_str(), Some("Your qchat account is ready"));
    assert!(
        m["body"]
            .as_str()
            .unwrap()
            .contains(&format!("{PUBLIC_URL}/privacy"))
    );
    assert!(t.due_ids().await.is_empty());
}

#[tokio::test]
async fn on_aws_the_email_changed_notice_reaches_the_former_address() {
    let t = aws_app(true).await;
    let former = unique_email("aws-former");
    let current = unique_email("aws-current");
    let account = t.create_account(&former).await;
    let id = t.queue_email_changed(&account, &former).await;
    t.set_email(&account, &current).await;

    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Sent);
    let messages = ses_messages_to(&former).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["subject"].as_str(),
        Some("The email address of your qchat account was changed")
    );
    assert!(ses_messages_to(&current).await.is_empty());
}

#[tokio::test]
async fn on_aws_a_refused_sender_is_a_permanent_failure_recorded_and_never_retried() {
    let t = aws_app(false).await;
    let email = unique_email("aws-refused");
    let account = t.create_account(&email).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;

    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Failed);
    let (state, failure) = t.state_of(&id).await;
    assert_eq!(state, "failed");
    assert!(failure.is_some_and(|f| !f.is_empty() && f != ACCOUNT_GONE));
    assert!(t.due_ids().await.is_empty());
    t.clock.advance_secs(7200);
    assert_eq!(
        drain_due(&t.app, t.roomy_deadline()).await.unwrap(),
        Default::default()
    );
    assert!(ses_messages_to(&email).await.is_empty());
}

#[tokio::test]
async fn on_aws_a_notice_for_an_erased_account_is_account_gone() {
    let t = aws_app(true).await;
    let email = unique_email("aws-erased");
    let account = t.create_account(&email).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    t.erase_account(&account).await;
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Failed);
    assert_eq!(t.state_of(&id).await.1.as_deref(), Some(ACCOUNT_GONE));
    assert!(ses_messages_to(&email).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_aws_a_policy_fanout_over_two_pages_reaches_every_account_once() {
    let t = aws_app(true).await;
    let accounts = t.create_accounts(55, "aws-policy").await;
    let job = t.publish_policy("privacy", "2", "Shorter retention.").await;
    let deadline = t.roomy_deadline();
    let (a, b) = tokio::join!(
        tick(&t.app, "runner-a", deadline),
        tick(&t.app, "runner-b", deadline)
    );
    a.unwrap();
    b.unwrap();
    tick(&t.app, "runner-a", t.roomy_deadline()).await.unwrap();
    assert!(!t.jobs().is_pending(&job).await.unwrap());
    for (id, email) in &accounts {
        let messages = ses_messages_to(email).await;
        assert_eq!(messages.len(), 1, "one notice per account");
        assert_eq!(
            messages[0]["id"].as_str(),
            Some(provider_id(&t, &notice_id(&job, id)).await.as_str())
        );
    }
}

#[tokio::test]
async fn a_whole_notify_flow_on_aws_logs_no_email_address() {
    let capture = logs::capture();
    let t = aws_app(true).await;
    let accounts = t.create_accounts(4, "logs").await;
    let former = unique_email("logs-former");
    let changed = t.create_account(&former).await;
    let current = unique_email("logs-current");
    let erased_email = unique_email("logs-erased");
    let erased = t.create_account(&erased_email).await;

    t.queue(&accounts[0].0, &Notice::AccountCreated).await;
    t.queue(
        &accounts[1].0,
        &Notice::NewNetworkSignIn { at: t.clock.now() },
    )
    .await;
    t.queue_email_changed(&changed, &former).await;
    t.set_email(&changed, &current).await;
    t.queue(&erased, &Notice::AccountCreated).await;
    t.erase_account(&erased).await;
    t.publish_policy("terms", "2", "Clearer terms.").await;
    let listed = vec![accounts[2].0.clone(), accounts[3].0.clone()];
    t.issue_breach_notice("A breach happened.", Some(&listed))
        .await;
    t.mailer.fail_next(1, crate::helpers::Scripted::Transient);

    let report = tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    assert!(report.delivery.sent >= 8);
    assert_eq!(report.delivery.failed, 1, "the erased account");
    t.clock.advance_secs(60);
    tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    assert!(t.due_ids().await.is_empty());

    let mut emails: Vec<&str> = accounts.iter().map(|(_, e)| e.expose()).collect();
    emails.extend([former.expose(), current.expose(), erased_email.expose()]);
    capture.assert_absent(&emails);
    let logged = capture.contents();
    assert!(
        logged.contains("notice sent"),
        "the flow's own logs were captured"
    );
}
