//! The app under test (SQLite store behind a decorator that can fail the Nth transaction, local keyring,
//! outbox messenger, manual clock), a connected page, signed requests and event builders.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use qchat_shared::app::{App, account_key_owner};
pub use qchat_shared::clock::Clock;
use qchat_shared::clock::{ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::LocalKeyring;
use qchat_shared::domain::{AccountId, PageId, Psid, UserRef};
use qchat_shared::http::{Request, Response};
use qchat_shared::ids::{IdGenerator, RandomIds};
use qchat_shared::inventory::PAGE;
use qchat_shared::leads::{self, ConsentRecord, Lead, Subject};
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::pages::page_key;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{
    Condition, Item, ItemKey, ItemStore, Page, Query, StoreError, Value, WriteOp,
};
use serde_json::{Value as Json, json};

pub const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);
pub const PUBLIC_URL: &str = "https://qchat.example.test";
pub const APP_SECRET: &str = "test-app-secret-0123456789";
pub const VERIFY_TOKEN: &str = "verify-me-please";
pub const PAGE_ID: &str = "1000000001";
pub const PAGE_TOKEN: &str = "EAAGpagetokenvalue1234567890";

/// Fails the Nth `transact` call from now (1 = the next one) once, with a retryable backend error.
#[derive(Debug)]
pub struct FlakyStore {
    pub inner: Arc<dyn ItemStore>,
    transacts: AtomicUsize,
    fail_at: AtomicUsize,
    pub calls: AtomicUsize,
}

impl FlakyStore {
    pub fn fail_nth_transact(&self, n: usize) {
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
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.put(item, condition).await
    }
    async fn delete(&self, key: &ItemKey, condition: Condition) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.delete(key, condition).await
    }
    async fn query(&self, query: &Query) -> Result<Page, StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.query(query).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
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
pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub store: Arc<FlakyStore>,
    pub page: PageId,
    pub account: AccountId,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path) -> Config {
    let d = dir.to_string_lossy().into_owned();
    Config::from_lookup(|name| match name {
        "QCHAT_DATA_DIR" => Some(d.clone()),
        "QCHAT_PUBLIC_URL" => Some(PUBLIC_URL.to_owned()),
        "QCHAT_MAIL_FROM" => Some("noreply@qchat.example.test".to_owned()),
        "QCHAT_FB_APP_SECRET" => Some(APP_SECRET.to_owned()),
        "QCHAT_FB_VERIFY_TOKEN" => Some(VERIFY_TOKEN.to_owned()),
        _ => None,
    })
    .expect("test configuration")
}

/// An app whose page `PAGE_ID` is connected in `mode` (`confirmed` or `implicit`).
pub async fn app(mode: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::at(START));
    let sqlite = SqliteStore::open(&dir.path().join("qchat.sqlite3"), clock.clone()).expect("db");
    sqlite.ensure_schema().await.expect("schema");
    let store = Arc::new(FlakyStore {
        inner: Arc::new(sqlite),
        transacts: AtomicUsize::new(0),
        fail_at: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    });
    let keyring = LocalKeyring::open(&dir.path().join("master.key")).expect("keyring");
    let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
    let messenger = OutboxMessenger::new(outbox_path(dir.path()), clock.clone(), ids.clone());
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
    // Created on first use otherwise: made now so tests counting transactions count only the webhook's.
    app.keys.blind_indexer().await.expect("indexer");
    TestApp {
        app,
        clock,
        store,
        page,
        account,
        dir,
    }
}

pub fn outbox_path(dir: &std::path::Path) -> PathBuf {
    dir.join("messenger.jsonl")
}

/// Writes the PAGE item the way the account function's `connect` does (token sealed under the
/// account's key).
pub async fn connect_page(app: &App, page: &PageId, mode: &str) -> AccountId {
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

pub fn sign(body: &[u8]) -> String {
    qchat_webhook::signature::sign(APP_SECRET.as_bytes(), body)
}

pub fn post_request(body: &[u8], signature: Option<&str>) -> Request {
    let mut b = http::Request::builder().method("POST").uri("/webhook");
    if let Some(s) = signature {
        b = b.header("X-Hub-Signature-256", s);
    }
    b.body(qchat_shared::http::Bytes::copy_from_slice(body))
        .expect("request")
}

impl TestApp {
    /// POSTs `body` signed with the app secret.
    pub async fn post(&self, body: &Json) -> Response {
        let raw = serde_json::to_vec(body).expect("json");
        self.post_raw(&raw).await
    }
    pub async fn post_raw(&self, raw: &[u8]) -> Response {
        let sig = sign(raw);
        qchat_webhook::handle(&self.app, post_request(raw, Some(&sig))).await
    }

    pub async fn lead(&self, subject: &Subject) -> Option<Lead> {
        let indexer = self.app.keys.blind_indexer().await.expect("indexer");
        let id = leads::lead_id(&indexer, &self.page, subject);
        leads::ops::load(self.app.store.as_ref(), &self.page, &id)
            .await
            .expect("load")
    }

    /// The lead's consent records, checked against its chain head.
    pub async fn records(&self, subject: &Subject) -> Vec<ConsentRecord> {
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

    pub async fn count_partition_prefix(&self, pk: &str) -> usize {
        self.app
            .store
            .query(&Query::partition(pk, 1000))
            .await
            .expect("query")
            .items
            .len()
    }

    /// Items in the due-replies index.
    pub async fn due_replies(&self) -> usize {
        use qchat_shared::store::{Index, KeyRange, Order};
        self.app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: qchat_shared::replies::DUE_PARTITION.to_owned(),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 1000,
                cursor: None,
            })
            .await
            .expect("query")
            .items
            .len()
    }

    pub async fn page_item(&self) -> Item {
        self.app
            .store
            .get(&page_key(&self.page))
            .await
            .expect("get")
            .expect("page")
    }

    pub fn sent_messages(&self) -> Vec<qchat_shared::messenger::outbox::OutboxLine> {
        qchat_shared::messenger::outbox::read_lines(&outbox_path(self.dir.path())).expect("outbox")
    }
}

pub fn psid(raw: &str) -> Subject {
    Subject::Psid(Psid::parse(raw).expect("psid"))
}

pub fn user_ref(raw: &str) -> Subject {
    Subject::UserRef(UserRef::parse(raw).expect("user_ref"))
}

/// A page body with one entry of `items`.
pub fn body(items: Vec<Json>) -> Json {
    json!({ "object": "page", "entry": [ { "id": PAGE_ID, "time": 1, "messaging": items } ] })
}

fn base(sender: &str, ts: i64) -> Json {
    json!({ "sender": { "id": sender }, "recipient": { "id": PAGE_ID }, "timestamp": ts })
}

fn with(mut v: Json, key: &str, value: Json) -> Json {
    if let Some(o) = v.as_object_mut() {
        o.insert(key.to_owned(), value);
    }
    v
}

pub fn message(sender: &str, mid: &str, text: &str, ts: i64) -> Json {
    with(
        base(sender, ts),
        "message",
        json!({ "mid": mid, "text": text }),
    )
}

pub fn quick_reply(sender: &str, mid: &str, payload: &str, ts: i64) -> Json {
    with(
        base(sender, ts),
        "message",
        json!({ "mid": mid, "text": "tap", "quick_reply": { "payload": payload } }),
    )
}

pub fn postback(sender: &str, mid: &str, payload: &str, referral: Option<&str>, ts: i64) -> Json {
    let mut p = json!({ "mid": mid, "title": "Get Started", "payload": payload });
    if let Some(r) = referral {
        p = with(
            p,
            "referral",
            json!({ "ref": r, "source": "SHORTLINK", "type": "OPEN_THREAD" }),
        );
    }
    with(base(sender, ts), "postback", p)
}

pub fn referral(sender: &str, r: &str, ts: i64) -> Json {
    with(
        base(sender, ts),
        "referral",
        json!({ "ref": r, "source": "SHORTLINK", "type": "OPEN_THREAD" }),
    )
}

pub fn checkbox(user_ref: &str, r: &str, ts: i64) -> Json {
    json!({ "recipient": { "id": PAGE_ID }, "timestamp": ts, "optin": { "ref": r, "user_ref": user_ref } })
}

pub fn marketing(sender: &str, token: Option<&str>, status: Option<&str>, ts: i64) -> Json {
    let mut o = json!({ "type": "notification_messages", "payload": "deals", "title": "Deals" });
    if let Some(t) = token {
        o = with(o, "notification_messages_token", json!(t));
    }
    if let Some(s) = status {
        o = with(o, "notification_messages_status", json!(s));
    }
    with(base(sender, ts), "optin", o)
}

pub fn echo(sender: &str, mid: &str, ts: i64) -> Json {
    with(
        base(sender, ts),
        "message",
        json!({ "mid": mid, "text": "page says hi", "is_echo": true, "app_id": 1 }),
    )
}

pub fn delivery(sender: &str, ts: i64) -> Json {
    with(
        base(sender, ts),
        "delivery",
        json!({ "mids": ["m_x"], "watermark": ts }),
    )
}

pub fn read(sender: &str, ts: i64) -> Json {
    with(base(sender, ts), "read", json!({ "watermark": ts }))
}

pub fn policy(action: &str, ts: i64) -> Json {
    json!({ "recipient": { "id": PAGE_ID }, "timestamp": ts, "policy_enforcement": { "action": action, "reason": "spam" } })
}
