//! The app under test, on the embedded backends (SQLite store, local keyring) or the AWS backends
//! (DynamoDB and KMS on the moto emulator), the store behind a decorator that can fail the Nth
//! transaction; outbox messenger and mailer and a manual clock on both. A connected page, signed
//! requests, event builders, and a raw reader of the stored bytes that bypasses qchat's store code.
//!
//! Isolation: every `TestApp` has its own folder (outboxes; the SQLite file and master key) and, on
//! moto, its own DynamoDB table and KMS key.

use std::path::PathBuf;
use std::sync::Arc;

use qchat_shared::app::{App, Stores, account_key_owner, local_files};
pub use qchat_shared::clock::Clock;
use qchat_shared::clock::{ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::{Keyring, KmsKeyring, LocalKeyring};
use qchat_shared::domain::{AccountId, LeadId, PageId, Psid, UserRef};
use qchat_shared::http::{Request, Response};
use qchat_shared::ids::{IdGenerator, RandomIds};
use qchat_shared::inventory::PAGE;
use qchat_shared::leads::record::status_partition;
use qchat_shared::leads::{self, ConsentRecord, Lead, LeadStatus, Subject};
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::meta_secrets::MetaSecretSource;
use qchat_shared::meta_secrets::conformance::{self as secrets_suite, CountingSource, Keeper};
use qchat_shared::meta_secrets::file::FileSource;
use qchat_shared::pages::page_key;
use qchat_shared::replies::{DUE_PARTITION, reply_key};
use qchat_shared::store::dynamodb::DynamoStore;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{Condition, Index, Item, ItemStore, KeyRange, Order, Query, Value};
use qchat_shared::test_support::counting::CountingStore;
use qchat_shared::test_support::{moto, unique_name};
use serde_json::{Value as Json, json};

pub const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);
pub const PUBLIC_URL: &str = "https://qchat.example.test";
pub const APP_SECRET: &str = "test-app-secret-0123456789";
pub const VERIFY_TOKEN: &str = "verify-me-please";
pub const PAGE_ID: &str = "1000000001";
pub const PAGE_TOKEN: &str = "EAAGpagetokenvalue1234567890";

/// Which backends a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite store and local master-key keyring in a temporary folder.
    Sqlite,
    /// DynamoDB (a fresh table) and KMS (a fresh key) on the moto emulator.
    Moto,
}

/// Where the raw reader finds the stored bytes.
#[derive(Debug)]
enum Raw {
    Sqlite {
        dir: PathBuf,
    },
    Moto {
        client: aws_sdk_dynamodb::Client,
        table: String,
    },
}

#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    /// Counts store calls and can fail the Nth transaction (`fail_nth_transact`).
    pub store: Arc<CountingStore>,
    /// Counts the key store's calls (lead lookups).
    pub key_store: Arc<CountingStore>,
    pub page: PageId,
    pub account: AccountId,
    /// The messenger and mail outboxes on both backends; the SQLite file and master key too for SQLite.
    pub dir: tempfile::TempDir,
    raw: Raw,
}

/// The test configuration: the settings every test shares, plus the backend's own (`extra`).
pub fn config(extra: &[(&str, String)]) -> Config {
    Config::from_lookup(|name| match name {
        "QCHAT_PUBLIC_URL" => Some(PUBLIC_URL.to_owned()),
        "QCHAT_MAIL_FROM" => Some("noreply@qchat.example.test".to_owned()),
        "QCHAT_FB_APP_SECRET" => Some(APP_SECRET.to_owned()),
        "QCHAT_FB_VERIFY_TOKEN" => Some(VERIFY_TOKEN.to_owned()),
        // Required in AWS mode (the privacy notice names the controller).
        "QCHAT_CONTROLLER_NAME" => Some("Webhook Test Controller".to_owned()),
        "QCHAT_CONTROLLER_EMAIL" => Some("privacy@qchat.example.test".to_owned()),
        _ => extra
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone()),
    })
    .expect("test configuration")
}

/// The backend's store (schema ensured), keyring, configuration and raw reader.
async fn backend_parts(
    backend: Backend,
    dir: &std::path::Path,
    clock: &Arc<ManualClock>,
) -> (
    Arc<dyn ItemStore>,
    Arc<dyn ItemStore>,
    Arc<dyn Keyring>,
    Config,
    Raw,
) {
    match backend {
        Backend::Sqlite => {
            let sqlite =
                SqliteStore::open(&dir.join(local_files::STORE), clock.clone()).expect("db");
            sqlite.ensure_schema().await.expect("schema");
            let key_store =
                SqliteStore::open(&dir.join(local_files::KEY_STORE), clock.clone()).expect("db");
            let keyring = LocalKeyring::open(&dir.join(local_files::MASTER_KEY)).expect("keyring");
            let config = config(&[("QCHAT_DATA_DIR", dir.to_string_lossy().into_owned())]);
            let raw = Raw::Sqlite {
                dir: dir.to_path_buf(),
            };
            (
                Arc::new(sqlite),
                Arc::new(key_store),
                Arc::new(keyring),
                config,
                raw,
            )
        }
        Backend::Moto => {
            let sdk = moto::sdk_config().await;
            let table = unique_name("webhook");
            let kms = aws_sdk_kms::Client::new(&sdk);
            let key_id = moto::create_kms_key(&kms, "qchat-webhook")
                .await
                .expect("moto creates a KMS key");
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let dynamo = DynamoStore::new(client.clone(), table.clone(), clock.clone());
            dynamo.ensure_schema().await.expect("the table is created");
            let key_table = unique_name("webhook-keys");
            let key_store = DynamoStore::new(client.clone(), key_table.clone(), clock.clone());
            key_store
                .ensure_schema()
                .await
                .expect("the key table is created");
            let config = config(&[
                ("QCHAT_BACKEND", "aws".to_owned()),
                ("QCHAT_TABLE_NAME", table.clone()),
                ("QCHAT_KEY_TABLE_NAME", key_table),
                ("QCHAT_KMS_KEY_ID", key_id.clone()),
            ]);
            let keyring = KmsKeyring::new(kms, key_id);
            (
                Arc::new(dynamo),
                Arc::new(key_store),
                Arc::new(keyring),
                config,
                Raw::Moto { client, table },
            )
        }
    }
}

/// An app on `backend` whose page `PAGE_ID` is connected in `mode` (`confirmed` or `implicit`).
pub async fn app(backend: Backend, mode: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::at(START));
    let (inner, key_store, keyring, config, raw) = backend_parts(backend, dir.path(), &clock).await;
    let store = Arc::new(CountingStore::new(inner));
    let key_store = Arc::new(CountingStore::new(key_store));
    let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
    let messenger = OutboxMessenger::new(outbox_path(dir.path()), clock.clone(), ids.clone());
    // No suite here reads mail, so the outbox mailer serves both backends.
    let mailer = OutboxMailer::new(
        dir.path().join(local_files::MAIL_OUTBOX),
        "qchat <noreply@qchat.example.test>".to_owned(),
        clock.clone(),
    );
    let app = App::from_parts(
        config,
        Stores {
            main: store.clone(),
            keys: key_store.clone(),
        },
        keyring,
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
        key_store,
        page,
        account,
        dir,
        raw,
    }
}

pub fn outbox_path(dir: &std::path::Path) -> PathBuf {
    dir.join(local_files::MESSENGER_OUTBOX)
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

    /// The lead of `subject`, found through its lookup in the key store; an id no lead has when the
    /// person has none.
    pub async fn lead_id(&self, subject: &Subject) -> LeadId {
        leads::find_lead(&self.app, &self.page, subject)
            .await
            .expect("lookup")
            .unwrap_or_else(|| LeadId::parse("no-such-lead").expect("id"))
    }

    pub async fn lead(&self, subject: &Subject) -> Option<Lead> {
        let id = self.lead_id(subject).await;
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

    /// The notices queued for sending (the outbox's due index).
    pub async fn due_notices(&self) -> Vec<Item> {
        self.app
            .store
            .query(&Query {
                index: Index::Gsi1,
                partition: qchat_shared::outbox::DUE_PARTITION.to_owned(),
                range: KeyRange::All,
                order: Order::Ascending,
                limit: 100,
                cursor: None,
            })
            .await
            .expect("query")
            .items
    }

    /// Items in the due-replies index.
    pub async fn due_replies(&self) -> usize {
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

    /// The texts of the unsent replies queued for a lead, opened with the lead's key (the account's for
    /// a lead without a secret).
    pub async fn replies_to(&self, lead: &LeadId) -> Vec<String> {
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
        let secret = leads::lookup::secret(self.app.key_store.as_ref(), &self.page, lead)
            .await
            .expect("the key store answers");
        let owner = account_key_owner(&self.account);
        let mut texts = Vec::new();
        for i in items
            .iter()
            .filter(|i| i.get_str("lead_id") == Some(lead.as_str()))
        {
            let id = i.key().pk.strip_prefix("REPLY#").expect("reply key");
            let text = i.get_sealed("text").expect("sealed text");
            let open = self
                .app
                .keys
                .open_lead(
                    &owner,
                    secret.as_ref(),
                    lead.as_str(),
                    &reply_key(id),
                    "text",
                    &text,
                )
                .await
                .expect("open");
            texts.push(open.as_str().expect("utf-8").to_owned());
        }
        texts
    }

    /// Lead ids in the page's index partition of `status`.
    pub async fn listed(&self, status: LeadStatus) -> Vec<String> {
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

    /// Every stored byte, read without qchat's store code: for SQLite the database file and its
    /// write-ahead log as they are on disk; for moto every attribute name and value of a consistent
    /// DynamoDB Scan of the whole table.
    pub async fn raw_store_bytes(&self) -> Vec<u8> {
        match &self.raw {
            Raw::Sqlite { dir } => {
                let mut bytes = Vec::new();
                for entry in std::fs::read_dir(dir).expect("the data folder") {
                    let path = entry.expect("a folder entry").path();
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    if name.starts_with(local_files::STORE) {
                        bytes.extend(std::fs::read(&path).expect("a database file"));
                    }
                }
                bytes
            }
            Raw::Moto { client, table } => scan_bytes(client, table).await,
        }
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

/// A message answering a checkbox-plugin message: Meta adds `prior_message`.
pub fn answer(sender: &str, user_ref: &str, mid: &str, text: &str, ts: i64) -> Json {
    with(
        message(sender, mid, text, ts),
        "prior_message",
        json!({ "source": "checkbox_plugin", "identifier": user_ref }),
    )
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

/// The whole table as bytes: every attribute's name and flattened value, one a line.
async fn scan_bytes(client: &aws_sdk_dynamodb::Client, table: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for item in moto::scan_table(client, table).await {
        for (name, value) in item {
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(&value);
            out.push(b'\n');
        }
    }
    out
}

/// Moves the app's Meta secrets (`APP_SECRET`, `VERIFY_TOKEN`) to where the backend keeps them — a
/// Secrets Manager secret on moto, `secrets.json` in the app's folder on SQLite — read through a counter.
/// Returns the keeper that rotates them and the counter of reads.
pub async fn keep_secrets_in_backend(
    t: &mut TestApp,
    backend: Backend,
) -> (Box<dyn Keeper>, Arc<CountingSource>) {
    let (source, keeper): (Arc<dyn MetaSecretSource>, Box<dyn Keeper>) = match backend {
        Backend::Moto => {
            let (source, keeper) =
                secrets_suite::secretsmanager_on_moto(APP_SECRET, VERIFY_TOKEN).await;
            (Arc::new(source), Box::new(keeper))
        }
        Backend::Sqlite => {
            let mut graph = t.app.config.graph.clone();
            (graph.app_secret, graph.verify_token) = (None, None);
            let source = FileSource::open(t.dir.path(), &graph).expect("secrets file");
            source
                .write(APP_SECRET, VERIFY_TOKEN)
                .expect("secrets written");
            (
                Arc::new(source.clone()),
                Box::new(secrets_suite::FileKeeper(source)),
            )
        }
    };
    let counting = Arc::new(CountingSource::new(source));
    t.app = t.app.clone().with_meta_secret_source(counting.clone());
    (keeper, counting)
}
