//! notify sends the queued replies exactly once; a token error stops the page.

use std::sync::Arc;

use qchat_shared::domain::{PageAccessToken, PageId};
use qchat_shared::leads::LeadStatus;
use qchat_shared::messenger::{Messenger, OutgoingMessage, SendError, SentMessage};

use crate::helpers::*;

pub async fn notify_sends_each_queued_reply_once_through_the_messenger(backend: Backend) {
    let t = app(backend, "confirmed").await;
    t.post(&body(vec![
        message("8001", "m_1", "hi", 1),
        message("8002", "m_2", "hi", 2),
    ]))
    .await;
    assert_eq!(t.due_replies().await, 2);
    let deadline = t.clock.now().plus_secs(60);
    let first = qchat_notify::tick(&t.app, "test", deadline).await.unwrap();
    assert_eq!(first.replies.sent, 2);
    let again = qchat_notify::tick(&t.app, "test", deadline).await.unwrap();
    assert_eq!(again.replies.sent, 0);
    let sent = t.sent_messages();
    assert_eq!(sent.len(), 2);
    assert!(
        sent.iter()
            .all(|l| l.page_id == PAGE_ID && l.messaging_type.as_deref() == Some("RESPONSE"))
    );
    assert_eq!(t.due_replies().await, 0);
    // The stream path sends a new reply at once, also exactly once.
    t.post(&body(vec![quick_reply(
        "8001",
        "m_3",
        "QCHAT_CONSENT_YES",
        3,
    )]))
    .await;
    let pending = t
        .app
        .store
        .query(&qchat_shared::store::Query {
            index: qchat_shared::store::Index::Gsi1,
            partition: qchat_shared::replies::DUE_PARTITION.to_owned(),
            range: qchat_shared::store::KeyRange::All,
            order: qchat_shared::store::Order::Ascending,
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    let pk = pending.items[0].key().pk.clone();
    let record = serde_json::json!({ "eventName": "INSERT", "dynamodb": { "Keys": { "pk": { "S": pk }, "sk": { "S": "REPLY" } } } });
    let event = serde_json::json!({ "Records": [record.clone(), record] });
    qchat_notify::handle(&t.app, "test", &event, deadline)
        .await
        .unwrap();
    qchat_notify::handle(&t.app, "test", &event, deadline)
        .await
        .unwrap();
    assert_eq!(t.sent_messages().len(), 3);
}

pub async fn a_stopped_page_sends_nothing_and_its_replies_fail(backend: Backend) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![
        policy("block", 1),
        message("8001", "m_1", "hi", 2),
    ]))
    .await;
    assert_eq!(
        t.lead(&psid("8001")).await.unwrap().status,
        LeadStatus::Subscribed
    );
    let report = qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    assert_eq!(report.replies.failed, 1);
    assert!(t.sent_messages().is_empty());
}

/// A messenger whose every send fails with one error.
#[derive(Debug)]
pub struct Failing(pub SendError);

#[async_trait::async_trait]
impl Messenger for Failing {
    async fn send(
        &self,
        _page: &PageId,
        _token: &PageAccessToken,
        _message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        Err(self.0.clone())
    }

    async fn page_of_token(
        &self,
        _token: &PageAccessToken,
    ) -> Result<qchat_shared::messenger::PageProfile, qchat_shared::messenger::PageCheckError> {
        Err(self.0.clone().into())
    }

    async fn ids_for_pages(
        &self,
        _user: &qchat_shared::domain::AppScopedUserId,
        _page: &PageId,
        _token: &PageAccessToken,
    ) -> Result<Vec<qchat_shared::domain::Psid>, qchat_shared::messenger::PageCheckError> {
        Err(self.0.clone().into())
    }
}

pub async fn a_token_error_stops_the_page_tells_its_account_once_and_fails_the_replies(
    backend: Backend,
) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![
        message("8001", "m_1", "hi", 1),
        message("8002", "m_2", "hi", 2),
    ]))
    .await;
    let mut app = t.app.clone();
    app.messenger = Arc::new(Failing(SendError::TokenInvalid {
        code: 190,
        subcode: Some(463),
    }));
    let report = qchat_notify::tick(&app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    assert_eq!(report.replies.failed, 2);
    let page = t.page_item().await;
    assert_eq!(page.get_str("sending"), Some("stopped"));
    assert_eq!(page.get_str("stopped_reason"), Some("token_invalid"));
    // One notice for the account, though two replies met the error.
    let notices = t.due_notices().await;
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].get_str("notice"), Some("page_sending_stopped"));
    assert_eq!(notices[0].get_str("account_id"), Some(t.account.as_str()));
}

/// An app in implicit mode after five new people wrote in one body: five replies are due.
async fn five_new_people(backend: Backend) -> TestApp {
    let t = app(backend, "implicit").await;
    t.post(&body(
        (1..=5)
            .map(|i| message(&format!("800{i}"), &format!("m_{i}"), "hi", i))
            .collect(),
    ))
    .await;
    t
}

/// The local server's sender reads what a chunk of due replies needs together: their leads (for their
/// windows) and pages in one `get_many` each, their leads' secrets in one more; no reply reads alone.
pub async fn a_drain_reads_a_chunks_leads_pages_and_secrets_in_one_call_each(backend: Backend) {
    let t = five_new_people(backend).await;
    let (main, keys) = (t.store.calls(), t.key_store.calls());
    let report = qchat_notify::drain_due_replies_with(&t.app, t.clock.now().plus_secs(60), 16)
        .await
        .unwrap();
    assert_eq!(report.sent, 5);
    let (main_after, keys_after) = (t.store.calls(), t.key_store.calls());
    assert_eq!(
        (
            main_after.get - main.get,
            main_after.get_many - main.get_many,
            keys_after.get - keys.get,
            keys_after.get_many - keys.get_many,
        ),
        (0, 2, 0, 1)
    );
    assert_eq!(t.sent_messages().len(), 5);
}

pub async fn a_token_error_met_by_concurrent_senders_stops_the_page_once(backend: Backend) {
    let t = five_new_people(backend).await;
    let mut app = t.app.clone();
    app.messenger = Arc::new(Failing(SendError::Permission {
        code: 10,
        subcode: Some(2018278),
    }));
    // As the local server's sender: several at once, the chunk's pages read together beforehand.
    let report = qchat_notify::drain_due_replies_with(&app, t.clock.now().plus_secs(60), 16)
        .await
        .unwrap();
    assert_eq!(report.failed, 5);
    let page = t.page_item().await;
    assert_eq!(page.get_str("sending"), Some("stopped"));
    assert_eq!(page.get_str("stopped_reason"), Some("permission"));
    assert_eq!(t.due_notices().await.len(), 1);
    assert_eq!(t.due_replies().await, 0);
}

/// A messenger that fails a send with a token error after the page was reconnected meanwhile: the
/// page item changes (a new version, as a reconnect with a new token writes) while the send is out.
#[derive(Debug)]
struct ReconnectedMidSend {
    store: Arc<dyn qchat_shared::store::ItemStore>,
}

#[async_trait::async_trait]
impl Messenger for ReconnectedMidSend {
    async fn send(
        &self,
        page: &PageId,
        _token: &PageAccessToken,
        _message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        let key = qchat_shared::pages::page_key(page);
        let item = self.store.get(&key).await.unwrap().unwrap();
        let version = item.version().unwrap();
        self.store
            .put(
                item.with_version(version + 1),
                qchat_shared::store::Condition::VersionIs(version),
            )
            .await
            .unwrap();
        Err(SendError::TokenInvalid {
            code: 190,
            subcode: Some(460),
        })
    }

    async fn page_of_token(
        &self,
        _token: &PageAccessToken,
    ) -> Result<qchat_shared::messenger::PageProfile, qchat_shared::messenger::PageCheckError> {
        Err(qchat_shared::messenger::PageCheckError::NotVerifiable)
    }

    async fn ids_for_pages(
        &self,
        _user: &qchat_shared::domain::AppScopedUserId,
        _page: &PageId,
        _token: &PageAccessToken,
    ) -> Result<Vec<qchat_shared::domain::Psid>, qchat_shared::messenger::PageCheckError> {
        Ok(Vec::new())
    }
}

pub async fn a_token_error_about_a_page_reconnected_meanwhile_does_not_stop_it(backend: Backend) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![message("8001", "m_1", "hi", 1)])).await;
    let mut app = t.app.clone();
    app.messenger = Arc::new(ReconnectedMidSend {
        store: t.app.store.clone(),
    });
    let report = qchat_notify::tick(&app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    assert_eq!(report.replies.failed, 1);
    let page = t.page_item().await;
    assert_ne!(page.get_str("sending"), Some("stopped"));
    assert!(t.due_notices().await.is_empty());
}

pub async fn an_unreachable_person_becomes_unreachable_without_a_consent_record(backend: Backend) {
    let t = app(backend, "implicit").await;
    t.post(&body(vec![message("8001", "m_1", "hi", 1)])).await;
    let mut app = t.app.clone();
    app.messenger = Arc::new(Failing(SendError::Unreachable {
        code: 551,
        subcode: None,
    }));
    qchat_notify::tick(&app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    let lead = t.lead(&psid("8001")).await.unwrap();
    assert_eq!(lead.status, LeadStatus::Unreachable);
    assert_eq!(t.records(&psid("8001")).await.len(), 1);
    assert_eq!(t.page_item().await.get_str("sending"), Some("active"));
}

pub async fn my_data_from_a_person_of_whom_nothing_is_held_is_answered_by_notify(backend: Backend) {
    let t = app(backend, "confirmed").await;
    t.post(&body(vec![message("8101", "m_1", "MY DATA", 1)]))
        .await;
    // Nothing is held: no lead, and the queued reply names none.
    assert!(t.lead(&psid("8101")).await.is_none());
    let due = t
        .app
        .store
        .query(&qchat_shared::store::Query {
            index: qchat_shared::store::Index::Gsi1,
            partition: qchat_shared::replies::DUE_PARTITION.to_owned(),
            range: qchat_shared::store::KeyRange::All,
            order: qchat_shared::store::Order::Ascending,
            limit: 10,
            cursor: None,
        })
        .await
        .unwrap();
    assert_eq!(due.items.len(), 1);
    assert!(due.items[0].get_str("lead_id").is_none());
    let reply = due.items[0].key().clone();

    // notify sends it: a reply without a lead is not one whose lead is gone.
    let report = qchat_notify::tick(&t.app, "test", t.clock.now().plus_secs(60))
        .await
        .unwrap();
    assert_eq!((report.replies.sent, report.replies.failed), (1, 0));
    let sent = t.sent_messages();
    assert_eq!(sent.len(), 1);
    assert!(sent[0].text.contains("holds no data about you"));
    assert!(
        serde_json::to_string(&sent[0].recipient)
            .unwrap()
            .contains("8101")
    );
    let stored = t.app.store.get(&reply).await.unwrap().expect("the reply");
    assert_eq!(stored.get_str("state"), Some("sent"));
    assert_ne!(
        stored.get_str("failure"),
        Some(qchat_notify::replies::LEAD_GONE)
    );
    assert_eq!(t.due_replies().await, 0);
    assert!(t.lead(&psid("8101")).await.is_none(), "still nothing held");
}
