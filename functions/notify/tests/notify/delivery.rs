//! Delivery of single notices on the embedded backends: once only, retries with backoff, permanent
//! failures, erased accounts, the former address of an email change, leases, and the `.eml` read back.

use qchat_notify::delivery::{
    ACCOUNT_GONE, LEASE_SECS, MAX_ATTEMPTS, TOO_MANY_ATTEMPTS, backoff_secs,
};
use qchat_notify::{Delivery, deliver, drain_due, tick};
use qchat_shared::clock::Clock as _;
use qchat_shared::outbox::{DUE_PARTITION, Notice, outbox_key};
use qchat_shared::store::{Condition, Value};

use crate::helpers::{PUBLIC_URL, Scripted, local_app, unique_email};

#[tokio::test]
async fn a_notice_is_sent_exactly_once_when_deliver_and_drain_run_twice() {
    let t = local_app().await;
    let email = unique_email("once");
    let account = t.create_account(&email).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;

    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Sent);
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Skipped);
    let drained = drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(drained.sent, 0);
    t.clock.advance_secs(3600);
    drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Skipped);

    assert_eq!(t.mailer.times_sent(&id), 1);
    let sent = &t.mailer.delivered()[0];
    assert_eq!(sent.to, email.expose());
    assert_eq!(sent.subject, "Your qchat account is ready");
}

#[tokio::test]
async fn a_sent_notice_moves_from_the_due_index_to_its_accounts_and_keeps_its_ttl() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("record")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    let before = t.outbox_item(&id).await;
    assert_eq!(t.due_ids().await, vec![id.clone()]);

    let report = drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(report.sent, 1);

    let after = t.outbox_item(&id).await;
    assert_eq!(after.get_str("state"), Some("sent"));
    assert_eq!(after.get_i64("sent_at"), Some(t.clock.now().millis()));
    assert_eq!(
        after.get_str("provider_id"),
        Some(t.mailer.delivered()[0].provider_id.as_str())
    );
    assert_eq!(after.get_i64("attempts"), Some(1));
    assert_eq!(after.get_i64("lease_until"), Some(0));
    // Out of the due index, filed under its account (export and erasure find it there).
    let filed = format!("ACCOUNT#{account}#NOTICES");
    assert_eq!(after.gsi1().map(|(p, _)| p), Some(filed.as_str()));
    assert_eq!(after.expires(), before.expires(), "the retention is kept");
    assert!(t.due_ids().await.is_empty());
}

#[tokio::test]
async fn a_transient_failure_is_not_lost_and_the_notice_is_sent_once_after_the_backoff() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("transient")).await;
    let id = t
        .queue(&account, &Notice::PasswordChanged { at: t.clock.now() })
        .await;
    t.mailer.fail_next(1, Scripted::Transient);

    let first = drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!((first.sent, first.retrying), (0, 1));
    let item = t.outbox_item(&id).await;
    assert_eq!(item.get_str("state"), Some("pending"));
    assert_eq!(item.get_i64("attempts"), Some(1));
    assert_eq!(item.get_i64("lease_until"), Some(0));
    let retry_at = t.clock.now().plus_secs(30);
    assert_eq!(item.get_i64("next_attempt_at"), Some(retry_at.millis()));
    assert_eq!(
        item.gsi1(),
        Some((
            DUE_PARTITION,
            qchat_shared::outbox::due_sort_key(retry_at, &id).as_str()
        ))
    );

    // Before the backoff ends neither the sweep nor a direct delivery sends it.
    t.clock.advance_secs(29);
    assert_eq!(drain_due(&t.app, t.roomy_deadline()).await.unwrap().sent, 0);
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Skipped);
    assert_eq!(t.mailer.times_sent(&id), 0);

    t.clock.advance_secs(1);
    assert_eq!(drain_due(&t.app, t.roomy_deadline()).await.unwrap().sent, 1);
    t.clock.advance_secs(3600);
    drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(t.mailer.times_sent(&id), 1);
    assert_eq!(t.state_of(&id).await, ("sent".to_owned(), None));
    assert_eq!(t.outbox_item(&id).await.get_i64("attempts"), Some(2));
}

#[tokio::test]
async fn a_notice_failing_for_passing_reasons_ten_times_is_given_up() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("flaky")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    t.mailer
        .fail_next(usize::try_from(MAX_ATTEMPTS).unwrap(), Scripted::Transient);

    for attempt in 1..=MAX_ATTEMPTS {
        let outcome = deliver(&t.app, &id).await.unwrap();
        if attempt < MAX_ATTEMPTS {
            assert_eq!(outcome, Delivery::Retrying, "attempt {attempt}");
            t.clock.advance_secs(backoff_secs(attempt));
        } else {
            assert_eq!(outcome, Delivery::Failed, "attempt {attempt}");
        }
    }
    assert_eq!(
        t.state_of(&id).await,
        ("failed".to_owned(), Some(TOO_MANY_ATTEMPTS.to_owned()))
    );
    assert!(t.due_ids().await.is_empty());
    t.clock.advance_secs(7200);
    drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(t.mailer.times_sent(&id), 0);
}

#[tokio::test]
async fn a_permanent_failure_is_recorded_with_its_reason_and_never_retried() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("refused")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    t.mailer.fail_next(1, Scripted::Permanent);

    let report = drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!(report.failed, 1);
    assert_eq!(
        t.state_of(&id).await,
        ("failed".to_owned(), Some("scripted rejection".to_owned()))
    );
    assert!(t.due_ids().await.is_empty());

    t.clock.advance_secs(7200);
    assert_eq!(
        drain_due(&t.app, t.roomy_deadline()).await.unwrap(),
        Default::default()
    );
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Skipped);
    assert_eq!(t.mailer.times_sent(&id), 0);
}

#[tokio::test]
async fn a_notice_for_an_erased_account_fails_as_account_gone_and_sends_nothing() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("erased")).await;
    let created = t.queue(&account, &Notice::AccountCreated).await;
    let changed = t
        .queue_email_changed(&account, &unique_email("former"))
        .await;
    t.erase_account(&account).await;

    let report = drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    assert_eq!((report.failed, report.sent), (2, 0));
    for id in [&created, &changed] {
        assert_eq!(
            t.state_of(id).await,
            ("failed".to_owned(), Some(ACCOUNT_GONE.to_owned()))
        );
    }
    assert!(t.mailer.delivered().is_empty());
}

#[tokio::test]
async fn a_notice_whose_profile_is_gone_but_key_remains_is_also_account_gone() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("half")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    t.app
        .store
        .delete(
            &qchat_shared::accounts::profile_key(&account),
            Condition::Always,
        )
        .await
        .unwrap();
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Failed);
    assert_eq!(t.state_of(&id).await.1.as_deref(), Some(ACCOUNT_GONE));
}

#[tokio::test]
async fn the_email_changed_notice_goes_to_the_sealed_former_address() {
    let t = local_app().await;
    let former = unique_email("former");
    let current = unique_email("current");
    let account = t.create_account(&former).await;
    let id = t.queue_email_changed(&account, &former).await;
    t.set_email(&account, &current).await;
    let other = t.queue(&account, &Notice::AccountCreated).await;

    drain_due(&t.app, t.roomy_deadline()).await.unwrap();
    let delivered = t.mailer.delivered();
    let to_former = delivered.iter().find(|d| d.reference == id).unwrap();
    assert_eq!(to_former.to, former.expose());
    assert!(to_former.subject.contains("email address"));
    assert!(
        !to_former.body.contains(current.expose()),
        "the new address is not disclosed"
    );
    let to_current = delivered.iter().find(|d| d.reference == other).unwrap();
    assert_eq!(
        to_current.to,
        current.expose(),
        "other notices go to the current address"
    );
}

#[tokio::test]
async fn a_notice_another_sender_holds_is_skipped_until_its_lease_runs_out() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("leased")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    // Another sender claimed it and died.
    let item = t.outbox_item(&id).await;
    let version = item.version().unwrap();
    let claimed = item
        .plain(
            "lease_until",
            Value::N(t.clock.now().plus_secs(LEASE_SECS).millis()),
        )
        .unwrap()
        .with_version(version + 1);
    t.app
        .store
        .put(claimed, Condition::VersionIs(version))
        .await
        .unwrap();

    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Skipped);
    assert_eq!(
        drain_due(&t.app, t.roomy_deadline()).await.unwrap().skipped,
        1
    );
    t.clock.advance_secs(LEASE_SECS);
    assert_eq!(drain_due(&t.app, t.roomy_deadline()).await.unwrap().sent, 1);
    assert_eq!(t.mailer.times_sent(&id), 1);
}

#[tokio::test]
async fn a_malformed_notice_or_a_missing_id_does_not_send() {
    let t = local_app().await;
    assert_eq!(
        deliver(&t.app, "no-such-notice").await.unwrap(),
        Delivery::Skipped
    );
    let account = t.create_account(&unique_email("malformed")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    let item = t.outbox_item(&id).await;
    let version = item.version().unwrap();
    let broken = item
        .plain(
            "params",
            Value::S("{\"notice\":\"no_such_notice\"}".to_owned()),
        )
        .unwrap()
        .with_version(version + 1);
    t.app
        .store
        .put(broken, Condition::VersionIs(version))
        .await
        .unwrap();
    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Failed);
    assert_eq!(t.state_of(&id).await.1.as_deref(), Some("malformed_notice"));
    assert!(t.mailer.delivered().is_empty());
}

#[tokio::test]
async fn the_eml_file_reads_back_with_recipient_subject_reference_and_links() {
    let t = local_app().await;
    let email = unique_email("eml");
    let account = t.create_account(&email).await;
    let id = t
        .queue(&account, &Notice::NewNetworkSignIn { at: t.clock.now() })
        .await;
    drain_due(&t.app, t.roomy_deadline()).await.unwrap();

    let file = t
        .outbox_item(&id)
        .await
        .get_str("provider_id")
        .unwrap()
        .to_owned();
    assert!(file.ends_with(&format!("-{id}.eml")));
    let bytes = std::fs::read(t.mail_dir.as_ref().unwrap().join(&file)).unwrap();
    let message = mail_parser::MessageParser::default().parse(&bytes).unwrap();
    let to: Vec<&str> = message
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, vec![email.expose()]);
    assert_eq!(message.subject(), Some("New sign-in to your qchat account"));
    assert!(message.message_id().unwrap().starts_with(&format!("{id}@")));
    let body = message.body_text(0).unwrap().replace("\r\n", "\n");
    assert!(body.contains("If it was not you"));
    assert!(body.contains(&format!("{PUBLIC_URL}/privacy")));
    assert!(
        !body.contains(email.expose()),
        "the body does not repeat the address"
    );
}

#[tokio::test]
async fn a_tick_on_an_empty_store_does_nothing() {
    let t = local_app().await;
    let report = tick(&t.app, "runner", t.roomy_deadline()).await.unwrap();
    assert_eq!(report, Default::default());
    assert!(t.mailer.delivered().is_empty());
}

#[tokio::test]
async fn a_drain_whose_deadline_is_already_near_sends_nothing_and_leaves_notices_due() {
    let t = local_app().await;
    let account = t.create_account(&unique_email("late")).await;
    let id = t.queue(&account, &Notice::AccountCreated).await;
    let report = drain_due(&t.app, t.clock.now().plus_secs(2)).await.unwrap();
    assert!(report.stopped_early);
    assert_eq!(report.sent, 0);
    assert_eq!(t.due_ids().await, vec![id.clone()]);
    assert!(
        t.app.store.get(&outbox_key(&id)).await.unwrap().is_some(),
        "the notice waits for the next run"
    );
}

#[tokio::test]
async fn a_registration_link_goes_to_its_sealed_address_without_an_account_and_its_token_is_dropped_once_sent()
 {
    use qchat_shared::accounts::REGISTRATIONS_KEY_OWNER;
    let t = local_app().await;
    let email = unique_email("newcomer");
    let id = t.app.ids.new_id();
    let token = "Tok3n-of-forty-three-base64url-chars-abcdef";
    t.app.keys.create(REGISTRATIONS_KEY_OWNER).await.unwrap();
    let cipher = t.app.keys.cipher(REGISTRATIONS_KEY_OWNER).await.unwrap();
    let key = outbox_key(&id);
    let op = qchat_shared::outbox::outbox_op(
        &id,
        None,
        &Notice::ConfirmRegistration,
        t.clock.now(),
        Some(
            cipher
                .seal(&key, "recipient", email.expose().as_bytes())
                .unwrap(),
        ),
        Some(cipher.seal(&key, "secret", token.as_bytes()).unwrap()),
    )
    .unwrap();
    t.app.store.transact(vec![op]).await.unwrap();
    assert!(t.outbox_item(&id).await.get("secret").is_some());

    assert_eq!(deliver(&t.app, &id).await.unwrap(), Delivery::Sent);

    let sent = &t.mailer.delivered()[0];
    assert_eq!(sent.to, email.expose());
    assert!(
        sent.body
            .contains(&format!("{PUBLIC_URL}/verify-email/{token}")),
        "the mail carries the link"
    );
    let after = t.outbox_item(&id).await;
    assert_eq!(after.get_str("state"), Some("sent"));
    assert!(after.get("secret").is_none(), "the token is gone once sent");
    assert!(after.get("recipient").is_some());
}
