//! Checkbox-plugin linking (a PSID's first message answering a checkbox-plugin message takes over the
//! `user_ref` lead's consent, and that lead is closed as `merged`), and the repeated STOP confirmation.
//! Embedded backends (SQLite store, local keyring, outbox messenger, manual clock).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed set-up step should fail the test loudly

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::{Clock, ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::{LocalKeyring, OneWayHash};
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid, UserRef};
use qchat_shared::http::{Response, StatusCode};
use qchat_shared::ids::{IdGenerator, RandomIds};
use qchat_shared::inventory::PAGE;
use qchat_shared::leads::record::status_partition;
use qchat_shared::leads::{
    self, Action, ConsentEvent, ConsentRecord, Lead, LeadStatus, Subject, unsubscribe_key,
};
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::pages::page_key;
use qchat_shared::replies::{DUE_PARTITION, reply_key};
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{
    Condition, Index, Item, ItemKey, ItemStore, KeyRange, Order, Page, Query, StoreError, Value,
    WriteOp,
};
use qchat_shared::test_support::logs;
use serde_json::{Value as Json, json};

const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);
const PUBLIC_URL: &str = "https://qchat.example.test";
const APP_SECRET: &str = "test-app-secret-0123456789";
const PAGE_ID: &str = "1000000001";
const PAGE_TOKEN: &str = "EAAGpagetokenvalue1234567890";

/// Meta's time of an event `n` ms into the test (a minute before the clock's now: inside the window).
fn ts(n: i64) -> i64 {
    START.millis() - 60_000 + n
}

/// Fails the Nth `transact` call from now (1 = the next one) once, with a retryable backend error.
#[derive(Debug)]
struct FlakyStore {
    inner: Arc<dyn ItemStore>,
    transacts: AtomicUsize,
    fail_at: AtomicUsize,
}

impl FlakyStore {
    fn fail_nth_transact(&self, n: usize) {
        let done = self.transacts.load(Ordering::SeqCst);
        self.fail_at.store(done + n, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ItemStore for FlakyStore {
    async fn ensure_schema(&self) -> Result<(), StoreError> {
        self.inner.ensure_schema().await
    }
    async fn get(&self, key: &ItemKey) -> Result<Option<Item>, StoreError> {
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        let n = self.transacts.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_at.load(Ordering::SeqCst) == n {
            return Err(StoreError::Backend {
                operation: "transact",
                retryable: true,
                source: "injected failure".into(),
            });
        }
        self.inner.transact(ops).await
    }
    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        self.inner.delete_many(keys).await
    }
}

#[derive(Debug)]
struct TestApp {
    app: App,
    clock: Arc<ManualClock>,
    store: Arc<FlakyStore>,
    page: PageId,
    account: AccountId,
    dir: tempfile::TempDir,
}

fn config(dir: &std::path::Path) -> Config {
    let d = dir.to_string_lossy().into_owned();
    Config::from_lookup(|name| match name {
        "QCHAT_DATA_DIR" => Some(d.clone()),
        "QCHAT_PUBLIC_URL" => Some(PUBLIC_URL.to_owned()),
        "QCHAT_MAIL_FROM" => Some("noreply@qchat.example.test".to_owned()),
        "QCHAT_FB_APP_SECRET" => Some(APP_SECRET.to_owned()),
        "QCHAT_FB_VERIFY_TOKEN" => Some("verify-me-please".to_owned()),
        _ => None,
    })
    .expect("test configuration")
}

/// An app whose page `PAGE_ID` is connected in `mode` (`confirmed` or `implicit`).
async fn app(mode: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::at(START));
    let sqlite = SqliteStore::open(&dir.path().join("qchat.sqlite3"), clock.clone()).expect("db");
    sqlite.ensure_schema().await.expect("schema");
    let store = Arc::new(FlakyStore {
        inner: Arc::new(sqlite),
        transacts: AtomicUsize::new(0),
        fail_at: AtomicUsize::new(0),
    });
    let keyring = LocalKeyring::open(&dir.path().join("master.key")).expect("keyring");
    let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
    let messenger = OutboxMessenger::new(
        dir.path().join("messenger.jsonl"),
        clock.clone(),
        ids.clone(),
    );
    let mailer = OutboxMailer::new(
        dir.path().join("mail"),
        "qchat <noreply@qchat.example.test>".to_owned(),
        clock.clone(),
    );
    let app = App::from_parts(
        config(dir.path()),
        store.clone(),
        Arc::new(keyring),
        Arc::new(mailer),
        Arc::new(messenger),
        clock.clone(),
        ids,
    );
    let page = PageId::parse(PAGE_ID).expect("page id");
    let account = connect_page(&app, &page, mode).await;
    TestApp {
        app,
        clock,
        store,
        page,
        account,
        dir,
    }
}

/// Writes the PAGE item the way the account function's `connect` does.
async fn connect_page(app: &App, page: &PageId, mode: &str) -> AccountId {
    let account = AccountId::generate(app.ids.as_ref());
    let owner = account_key_owner(&account);
    app.keys.create(&owner).await.expect("data key");
    let cipher = app.keys.cipher(&owner).await.expect("cipher");
    let key = page_key(page);
    let token = cipher
        .seal(&key, "access_token", PAGE_TOKEN.as_bytes())
        .expect("seal");
    let item = Item::new(&PAGE, key)
        .plain("account_id", Value::S(account.as_str().to_owned()))
        .and_then(|i| i.sealed("access_token", token))
        .and_then(|i| i.plain("connected_at", Value::N(app.clock.now().millis())))
        .and_then(|i| i.plain("consent_mode", Value::S(mode.to_owned())))
        .and_then(|i| i.plain("sending", Value::S("active".to_owned())))
        .and_then(|i| i.plain("name", Value::S("Bakery Example".to_owned())))
        .expect("page item")
        .with_version(1)
        .with_gsi1(format!("ACCOUNT#{account}#PAGES"), page.as_str());
    app.store
        .put(item, Condition::NotExists)
        .await
        .expect("page written");
    account
}

impl TestApp {
    async fn post(&self, body: &Json) -> Response {
        let raw = serde_json::to_vec(body).expect("json");
        let sig = qchat_webhook::signature::sign(APP_SECRET.as_bytes(), &raw);
        let req = http::Request::builder()
            .method("POST")
            .uri("/webhook")
            .header("X-Hub-Signature-256", sig)
            .body(qchat_shared::http::Bytes::from(raw))
            .expect("request");
        qchat_webhook::handle(&self.app, req).await
    }

    async fn lead_id(&self, subject: &Subject) -> LeadId {
        let indexer = self.app.keys.blind_indexer().await.expect("indexer");
        leads::lead_id(&indexer, &self.page, subject)
    }

    async fn lead(&self, subject: &Subject) -> Option<Lead> {
        let id = self.lead_id(subject).await;
        leads::ops::load(self.app.store.as_ref(), &self.page, &id)
            .await
            .expect("load")
    }

    /// The lead's consent records, checked against its chain head.
    async fn records(&self, subject: &Subject) -> Vec<ConsentRecord> {
        let lead = self.lead(subject).await.expect("lead exists");
        let page = self
            .app
            .store
            .query(&Query::partition(
                leads::consent::history_partition(&self.page, &lead.id),
                1000,
            ))
            .await
            .expect("records");
        let records: Vec<_> = page
            .items
            .iter()
            .map(|i| ConsentRecord::from_item(i).expect("record"))
            .collect();
        leads::verify_chain(&lead.id, &records, lead.consent_seq, &lead.consent_head)
            .expect("intact chain");
        records
    }

    /// The texts of the unsent replies queued for a lead, opened with the account's key.
    async fn replies_to(&self, lead: &LeadId) -> Vec<String> {
        let items = self
            .app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: DUE_PARTITION.to_owned(),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 1000,
                cursor: None,
            })
            .await
            .expect("query")
            .items;
        let cipher = self
            .app
            .keys
            .cipher(&account_key_owner(&self.account))
            .await
            .expect("cipher");
        items
            .iter()
            .filter(|i| i.get_str("lead_id") == Some(lead.as_str()))
            .map(|i| {
                let id = i.key().pk.strip_prefix("REPLY#").expect("reply key");
                let text = i.get_sealed("text").expect("sealed text");
                let open = cipher.open(&reply_key(id), "text", &text).expect("open");
                open.as_str().expect("utf-8").to_owned()
            })
            .collect()
    }

    /// Lead ids in the page's index partition of `status`.
    async fn listed(&self, status: LeadStatus) -> Vec<String> {
        self.app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: status_partition(&self.page, status),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 1000,
                cursor: None,
            })
            .await
            .expect("query")
            .items
            .iter()
            .filter_map(|i| i.key().sk.strip_prefix("LEAD#").map(str::to_owned))
            .collect()
    }

    /// Unsubscribes a lead as the account holder does (optin's holder route).
    async fn holder_opt_out(&self, lead: &LeadId) -> leads::ops::OptOut {
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
            self.app.store.as_ref(),
            &self.page,
            lead,
            event,
            self.clock.now(),
            Vec::new(),
        )
        .await
        .expect("opt out")
    }

    /// Everything the SQLite files hold, as (lossy) text.
    fn stored_bytes(&self) -> String {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("qchat.sqlite3") {
                bytes.extend(std::fs::read(&path).unwrap());
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn psid(raw: &str) -> Subject {
    Subject::Psid(Psid::parse(raw).expect("psid"))
}

fn user_ref(raw: &str) -> Subject {
    Subject::UserRef(UserRef::parse(raw).expect("user_ref"))
}

fn body(items: Vec<Json>) -> Json {
    json!({ "object": "page", "entry": [ { "id": PAGE_ID, "time": 1, "messaging": items } ] })
}

fn message(sender: &str, mid: &str, text: &str, ts: i64) -> Json {
    json!({ "sender": { "id": sender }, "recipient": { "id": PAGE_ID }, "timestamp": ts,
            "message": { "mid": mid, "text": text } })
}

/// A message answering a checkbox-plugin message: Meta adds `prior_message`.
fn answer(sender: &str, user_ref: &str, mid: &str, text: &str, ts: i64) -> Json {
    let mut m = message(sender, mid, text, ts);
    m["prior_message"] = json!({ "source": "checkbox_plugin", "identifier": user_ref });
    m
}

fn checkbox(user_ref: &str, r: &str, ts: i64) -> Json {
    json!({ "recipient": { "id": PAGE_ID }, "timestamp": ts, "optin": { "ref": r, "user_ref": user_ref } })
}

fn actions(records: &[ConsentRecord]) -> Vec<(Action, &str)> {
    records
        .iter()
        .map(|r| (r.event.action, r.event.source.as_str()))
        .collect()
}

#[tokio::test]
async fn linking_carries_the_checkbox_opt_in_to_the_psid_lead_and_closes_the_user_ref_lead() {
    let t = app("confirmed").await;
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

#[tokio::test]
async fn an_opt_out_naming_the_merged_lead_stops_the_psid_lead() {
    let t = app("implicit").await;
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
        t.holder_opt_out(&origin).await,
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
        t.holder_opt_out(&origin).await,
        leads::ops::OptOut::AlreadyUnsubscribed
    );
}

#[tokio::test]
async fn linking_after_the_user_ref_lead_opted_out_never_subscribes() {
    // Implicit mode: without the link, a first message would subscribe.
    let t = app("implicit").await;
    t.post(&body(vec![checkbox("ur-out-1", "cart", ts(1))]))
        .await;
    let origin = t.lead_id(&user_ref("ur-out-1")).await;
    assert_eq!(
        t.holder_opt_out(&origin).await,
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

#[tokio::test]
async fn a_stop_as_the_first_answer_links_and_unsubscribes_in_one_event() {
    let t = app("confirmed").await;
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

#[tokio::test]
async fn a_duplicated_or_retried_linking_event_links_once() {
    let t = app("confirmed").await;
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

#[tokio::test]
async fn a_prior_message_whose_user_ref_lead_does_not_exist_makes_a_plain_new_lead() {
    let t = app("confirmed").await;
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

#[tokio::test]
async fn a_repeated_stop_is_confirmed_again_once_per_event_without_a_new_record() {
    let t = app("implicit").await;
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

#[tokio::test]
async fn the_user_ref_is_never_stored_or_logged_in_plaintext() {
    let logs = logs::capture();
    let t = app("implicit").await;
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
    let stored = t.stored_bytes();
    assert!(stored.len() > 1000);
    for v in secrets.iter().chain(people.iter()) {
        assert!(!stored.contains(v), "a personal value is stored in clear");
    }
    let mut values = secrets.to_vec();
    values.extend(people);
    logs.assert_absent(&values);
}
