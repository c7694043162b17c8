//! Test apps (embedded backends, or the AWS backends on moto), a recording mailer and a counting
//! messenger with scripted failures, a store whose transactions take clock time, and helpers that write
//! what the account and webhook functions write (accounts, outbox notices, policies, breach notices,
//! jobs, pages, leads, Messenger replies).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use qchat_shared::accounts::{ALL_ACCOUNTS_PARTITION, profile_key};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::{Clock, ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::{Keyring, LocalKeyring, OneWayHash};
use qchat_shared::domain::{AccountId, EmailAddress, LeadId, PageAccessToken, PageId, Psid};
use qchat_shared::ids::{IdGenerator, RandomIds};
use qchat_shared::inventory::{ACCOUNT, BREACH_NOTICE, LEAD, PAGE, POLICY};
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::{LeadStatus, Subject, lead_key, lookup};
use qchat_shared::mail::{Email, MailError, Mailer, OutboxMailer, SentEmail};
use qchat_shared::messenger::outbox::{OutboxLine, OutboxMessenger, read_lines};
use qchat_shared::messenger::{Messenger, OutgoingMessage, SendError, SentMessage};
use qchat_shared::outbox::{BREACH_FANOUT_JOB, Notice, POLICY_FANOUT_JOB, notice_op, outbox_key};
use qchat_shared::pages::page_key;
use qchat_shared::replies::{NewReply, reply_key, reply_op};
use qchat_shared::store::dynamodb::DynamoStore;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{
    Condition, Item, ItemKey, ItemStore, Page, Query, StoreError, Value, WriteOp,
};

/// A fixed start: 2027-01-15.
pub const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);
pub const PUBLIC_URL: &str = "https://qchat.example.test";
/// The access token of every page the tests connect.
pub const PAGE_TOKEN: &str = "EAAGpagetokenvalue1234567890";

/// What a recording mailer does on a send.
#[derive(Debug, Clone, Copy)]
pub enum Scripted {
    Transient,
    Permanent,
}

/// One email that reached the real mailer.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub reference: String,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub provider_id: String,
}

/// Wraps a real mailer: fails the next sends as scripted, and records every email the real one accepted.
#[derive(Debug)]
pub struct RecordingMailer {
    inner: Arc<dyn Mailer>,
    script: Mutex<VecDeque<Scripted>>,
    delivered: Mutex<Vec<Delivered>>,
}

impl RecordingMailer {
    pub fn new(inner: Arc<dyn Mailer>) -> Self {
        Self {
            inner,
            script: Mutex::new(VecDeque::new()),
            delivered: Mutex::new(Vec::new()),
        }
    }

    /// The next `n` sends fail with `how`.
    pub fn fail_next(&self, n: usize, how: Scripted) {
        let mut script = self.script.lock().unwrap();
        script.extend(std::iter::repeat_n(how, n));
    }

    pub fn delivered(&self) -> Vec<Delivered> {
        self.delivered.lock().unwrap().clone()
    }

    /// How many times the notice `reference` went out.
    pub fn times_sent(&self, reference: &str) -> usize {
        self.delivered()
            .iter()
            .filter(|d| d.reference == reference)
            .count()
    }
}

#[async_trait::async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, email: &Email) -> Result<SentEmail, MailError> {
        let scripted = self.script.lock().unwrap().pop_front();
        match scripted {
            Some(Scripted::Transient) => {
                return Err(MailError::Transient {
                    reason: "scripted outage",
                    source: None,
                });
            }
            Some(Scripted::Permanent) => {
                return Err(MailError::Permanent {
                    reason: "scripted rejection",
                    source: None,
                });
            }
            None => {}
        }
        let sent = self.inner.send(email).await?;
        self.delivered.lock().unwrap().push(Delivered {
            reference: email.reference.clone(),
            to: email.to.expose().to_owned(),
            subject: email.subject.clone(),
            body: email.text_body.clone(),
            provider_id: sent.provider_id.clone(),
        });
        Ok(sent)
    }
}

/// Wraps the Messenger outbox: counts every call (sent or not), and fails the next calls as scripted.
#[derive(Debug)]
pub struct CountingMessenger {
    inner: OutboxMessenger,
    script: Mutex<VecDeque<SendError>>,
    calls: AtomicUsize,
}

impl CountingMessenger {
    /// The next `n` sends fail with `error`.
    pub fn fail_next(&self, n: usize, error: SendError) {
        let mut script = self.script.lock().unwrap();
        script.extend(std::iter::repeat_n(error, n));
    }

    /// How many times a send reached the messenger (Graph API calls, in AWS).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every message the outbox accepted.
    pub fn sent(&self) -> Vec<OutboxLine> {
        read_lines(self.inner.path()).expect("the messenger outbox is readable")
    }
}

#[async_trait::async_trait]
impl Messenger for CountingMessenger {
    async fn send(
        &self,
        page: &PageId,
        token: &PageAccessToken,
        message: &OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let scripted = self.script.lock().unwrap().pop_front();
        match scripted {
            Some(error) => Err(error),
            None => self.inner.send(page, token, message).await,
        }
    }

    async fn page_of_token(
        &self,
        token: &PageAccessToken,
    ) -> Result<qchat_shared::messenger::PageProfile, qchat_shared::messenger::PageCheckError> {
        self.inner.page_of_token(token).await
    }

    async fn ids_for_pages(
        &self,
        user: &qchat_shared::domain::AppScopedUserId,
        page: &PageId,
        token: &PageAccessToken,
    ) -> Result<Vec<qchat_shared::domain::Psid>, qchat_shared::messenger::PageCheckError> {
        self.inner.ids_for_pages(user, page, token).await
    }
}

/// A store whose transactions and batch deletes take clock time (a set cost each), so a test can let a
/// runner's deadline arrive part-way through a job.
#[derive(Debug)]
pub struct ClockedStore {
    inner: Arc<dyn ItemStore>,
    clock: Arc<ManualClock>,
    transact_cost_ms: AtomicI64,
    delete_many_cost_ms: AtomicI64,
}

impl ClockedStore {
    pub fn set_transact_cost_secs(&self, secs: i64) {
        self.transact_cost_ms.store(secs * 1000, Ordering::SeqCst);
    }
}

#[async_trait::async_trait]
impl ItemStore for ClockedStore {
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
        let result = self.inner.transact(ops).await;
        let cost = self.transact_cost_ms.load(Ordering::SeqCst);
        self.clock.set(self.clock.now().plus_millis(cost));
        result
    }
    async fn delete_many(&self, keys: &[ItemKey]) -> Result<(), StoreError> {
        let cost = self.delete_many_cost_ms.load(Ordering::SeqCst);
        self.clock.set(self.clock.now().plus_millis(cost));
        self.inner.delete_many(keys).await
    }
    async fn remove_expired(
        &self,
        from: Option<&qchat_shared::store::Cursor>,
        limit: usize,
    ) -> Result<qchat_shared::store::Removed, StoreError> {
        self.inner.remove_expired(from, limit).await
    }
}

/// An app under test and the handles a test needs.
#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub mailer: Arc<RecordingMailer>,
    pub messenger: Arc<CountingMessenger>,
    pub store: Arc<ClockedStore>,
    /// The `.eml` folder (embedded backends only).
    pub mail_dir: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

fn config(data_dir: &std::path::Path) -> Config {
    let dir = data_dir.to_string_lossy().into_owned();
    Config::from_lookup(|name| match name {
        "QCHAT_DATA_DIR" => Some(dir.clone()),
        "QCHAT_PUBLIC_URL" => Some(PUBLIC_URL.to_owned()),
        "QCHAT_MAIL_FROM" => Some("noreply@qchat.example.test".to_owned()),
        _ => None,
    })
    .expect("test configuration")
}

fn assemble(
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    store: Arc<dyn ItemStore>,
    key_store: Arc<dyn ItemStore>,
    keyring: Arc<dyn Keyring>,
    mailer: Arc<dyn Mailer>,
    mail_dir: Option<PathBuf>,
) -> TestApp {
    let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
    let store = Arc::new(ClockedStore {
        inner: store,
        clock: clock.clone(),
        transact_cost_ms: AtomicI64::new(0),
        delete_many_cost_ms: AtomicI64::new(0),
    });
    let mailer = Arc::new(RecordingMailer::new(mailer));
    let messenger = Arc::new(CountingMessenger {
        inner: OutboxMessenger::new(
            dir.path().join("messenger.jsonl"),
            clock.clone(),
            ids.clone(),
        ),
        script: Mutex::new(VecDeque::new()),
        calls: AtomicUsize::new(0),
    });
    let app = App::from_parts(
        config(dir.path()),
        qchat_shared::app::Stores {
            main: store.clone(),
            keys: key_store,
        },
        keyring,
        mailer.clone(),
        messenger.clone(),
        clock.clone(),
        ids,
    );
    TestApp {
        app,
        clock,
        mailer,
        messenger,
        store,
        mail_dir,
        _dir: dir,
    }
}

/// The embedded backends: SQLite store, local keyring, `.eml` outbox mailer, all in a fresh folder.
pub async fn local_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::at(START));
    let store = SqliteStore::open(&dir.path().join("qchat.sqlite3"), clock.clone())
        .expect("the SQLite store opens");
    store.ensure_schema().await.expect("schema");
    let key_store = SqliteStore::open(&dir.path().join("keys.sqlite3"), clock.clone())
        .expect("the SQLite key store opens");
    let keyring = LocalKeyring::open(&dir.path().join("master.key")).expect("keyring");
    let mail_dir = dir.path().join("mail");
    let mailer = OutboxMailer::new(
        mail_dir.clone(),
        "qchat <noreply@qchat.example.test>".to_owned(),
        clock.clone(),
    );
    assemble(
        dir,
        clock,
        Arc::new(store),
        Arc::new(key_store),
        Arc::new(keyring),
        Arc::new(mailer),
        Some(mail_dir),
    )
}

/// The AWS backends on the moto emulator: DynamoDB (a fresh table), KMS (a fresh key), SES (a freshly
/// verified sender, or an unverified one).
pub async fn aws_app(verified_sender: bool) -> TestApp {
    use qchat_shared::crypto::conformance::kms_moto_keyring;
    use qchat_shared::mail::conformance::{ses_on_moto, ses_on_moto_unverified};
    use qchat_shared::test_support::{moto, unique_name};

    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::at(START));
    let sdk = moto::sdk_config().await;
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        unique_name("notify"),
        clock.clone(),
    );
    store.ensure_schema().await.expect("table");
    let key_store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk),
        unique_name("notify-keys"),
        clock.clone(),
    );
    key_store.ensure_schema().await.expect("key table");
    let keyring = kms_moto_keyring().await.expect("KMS key").keyring();
    let mailer: Arc<dyn Mailer> = if verified_sender {
        // Sent with a configuration set, as in AWS (its events feed the suppression list).
        let set = unique_name("feedback");
        aws_sdk_ses::Client::new(&sdk)
            .create_configuration_set()
            .configuration_set(
                aws_sdk_ses::types::ConfigurationSet::builder()
                    .name(&set)
                    .build()
                    .expect("configuration set"),
            )
            .send()
            .await
            .expect("configuration set created on moto");
        Arc::new(ses_on_moto().await.with_configuration_set(Some(set)))
    } else {
        Arc::new(ses_on_moto_unverified().await)
    };
    assemble(
        dir,
        clock,
        Arc::new(store),
        Arc::new(key_store),
        keyring,
        mailer,
        None,
    )
}

/// An email address unique to this test, so tests sharing moto or the log capture never mix.
pub fn unique_email(label: &str) -> EmailAddress {
    let id = qchat_shared::test_support::unique_name(label);
    EmailAddress::parse(&format!("{id}@people.example.test")).expect("email")
}

impl TestApp {
    /// Creates an account the way registration does: its data key, the sealed address and its blind
    /// index, listed in the index of all accounts. (No registration notice: tests queue what they need.)
    pub async fn create_account(&self, email: &EmailAddress) -> AccountId {
        let app = &self.app;
        let id = AccountId::generate(app.ids.as_ref());
        let owner = account_key_owner(&id);
        app.keys.create(&owner).await.expect("data key");
        let cipher = app.keys.cipher(&owner).await.expect("cipher");
        let key = profile_key(&id);
        let item = Item::new(&ACCOUNT, key.clone())
            .sealed(
                "email",
                cipher
                    .seal(&key, "email", email.expose().as_bytes())
                    .expect("seal"),
            )
            .and_then(|i| i.hashed("password_hash", &OneWayHash::sha256_of(b"not a real hash")))
            .and_then(|i| i.plain("created", Value::N(app.clock.now().millis())))
            .and_then(|i| i.plain("privacy_version", Value::S("1".to_owned())))
            .and_then(|i| i.plain("terms_version", Value::S("1".to_owned())))
            .expect("account item")
            .with_version(1)
            .with_gsi1(ALL_ACCOUNTS_PARTITION, id.as_str());
        app.store
            .put(item, Condition::NotExists)
            .await
            .expect("account written");
        id
    }

    /// `n` accounts with fresh addresses.
    pub async fn create_accounts(&self, n: usize, label: &str) -> Vec<(AccountId, EmailAddress)> {
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let email = unique_email(label);
            out.push((self.create_account(&email).await, email));
        }
        out
    }

    /// Changes an account's address in place (the profile update of an email change).
    pub async fn set_email(&self, id: &AccountId, email: &EmailAddress) {
        let app = &self.app;
        let key = profile_key(id);
        let item = app.store.get(&key).await.expect("get").expect("account");
        let version = item.version().expect("versioned");
        let cipher = app
            .keys
            .cipher(&account_key_owner(id))
            .await
            .expect("cipher");
        let updated = item
            .sealed(
                "email",
                cipher
                    .seal(&key, "email", email.expose().as_bytes())
                    .expect("seal"),
            )
            .expect("item")
            .with_version(version + 1);
        app.store
            .put(updated, Condition::VersionIs(version))
            .await
            .expect("updated");
    }

    /// Erases an account as far as notify can tell: profile deleted, data key destroyed.
    pub async fn erase_account(&self, id: &AccountId) {
        self.app
            .store
            .delete(&profile_key(id), Condition::Always)
            .await
            .expect("profile deleted");
        self.app
            .keys
            .destroy(&account_key_owner(id))
            .await
            .expect("key destroyed");
    }

    /// Queues a notice, due now, in its own transaction (as a state change would with it).
    pub async fn queue(&self, account: &AccountId, notice: &Notice) -> String {
        let id = self.app.ids.new_id();
        let op = notice_op(&id, account, notice, self.app.clock.now(), None).expect("notice op");
        self.app.store.transact(vec![op]).await.expect("queued");
        id
    }

    /// Queues the email-changed notice with the former address sealed into it, as the profile update does.
    pub async fn queue_email_changed(&self, account: &AccountId, former: &EmailAddress) -> String {
        let app = &self.app;
        let id = app.ids.new_id();
        let cipher = app
            .keys
            .cipher(&account_key_owner(account))
            .await
            .expect("cipher");
        let sealed = cipher
            .seal(&outbox_key(&id), "recipient", former.expose().as_bytes())
            .expect("seal");
        let now = app.clock.now();
        let op = notice_op(
            &id,
            account,
            &Notice::EmailChanged { at: now },
            now,
            Some(sealed),
        )
        .expect("notice op");
        app.store.transact(vec![op]).await.expect("queued");
        id
    }

    pub fn jobs(&self) -> Jobs {
        Jobs::new(
            self.app.store.clone(),
            self.app.clock.clone(),
            self.app.ids.clone(),
            qchat_notify::JOB_LEASE_SECS,
        )
    }

    /// Publishes a policy version and queues its fan-out job, in one transaction (as the account
    /// function does). Returns the job id.
    pub async fn publish_policy(&self, kind: &str, version: &str, summary: &str) -> String {
        let now = self.app.clock.now();
        let item = Item::new(
            &POLICY,
            ItemKey::new(format!("POLICY#{kind}"), format!("VERSION#{version}")),
        )
        .plain("kind", Value::S(kind.to_owned()))
        .and_then(|i| i.plain("version", Value::S(version.to_owned())))
        .and_then(|i| {
            i.plain(
                "url",
                Value::S(format!("{PUBLIC_URL}/policies/{kind}/{version}")),
            )
        })
        .and_then(|i| i.plain("summary", Value::S(summary.to_owned())))
        .and_then(|i| i.plain("published_at", Value::N(now.millis())))
        .expect("policy item");
        let params = serde_json::json!({ "kind": kind, "version": version }).to_string();
        let (job, op) = self
            .jobs()
            .enqueue_op(POLICY_FANOUT_JOB, &params, now)
            .expect("job op");
        self.app
            .store
            .transact(vec![
                WriteOp::Put {
                    item,
                    condition: Condition::NotExists,
                },
                op,
            ])
            .await
            .expect("published");
        job
    }

    /// Issues a breach notice to `scope` (None: all accounts) and queues its job. Returns the job id.
    pub async fn issue_breach_notice(&self, summary: &str, scope: Option<&[AccountId]>) -> String {
        let now = self.app.clock.now();
        let notice_id = self.app.ids.new_id();
        let scope = match scope {
            None => "all".to_owned(),
            Some(ids) => serde_json::to_string(ids).expect("scope"),
        };
        let item = Item::new(
            &BREACH_NOTICE,
            ItemKey::new(format!("BREACH#{notice_id}"), "NOTICE"),
        )
        .plain("summary", Value::S(summary.to_owned()))
        .and_then(|i| i.plain("scope", Value::S(scope)))
        .and_then(|i| i.plain("created", Value::N(now.millis())))
        .expect("breach item");
        let params = serde_json::json!({ "notice_id": notice_id }).to_string();
        let (job, op) = self
            .jobs()
            .enqueue_op(BREACH_FANOUT_JOB, &params, now)
            .expect("job op");
        self.app
            .store
            .transact(vec![
                WriteOp::Put {
                    item,
                    condition: Condition::NotExists,
                },
                op,
            ])
            .await
            .expect("issued");
        job
    }

    pub async fn outbox_item(&self, id: &str) -> Item {
        self.app
            .store
            .get(&outbox_key(id))
            .await
            .expect("get")
            .expect("the outbox item exists")
    }

    pub async fn state_of(&self, id: &str) -> (String, Option<String>) {
        let item = self.outbox_item(id).await;
        (
            item.get_str("state").unwrap_or_default().to_owned(),
            item.get_str("failure").map(str::to_owned),
        )
    }

    /// The ids of every outbox item still in the due index.
    pub async fn due_ids(&self) -> Vec<String> {
        let mut query = Query {
            index: qchat_shared::store::Index::Gsi1,
            partition: qchat_shared::outbox::DUE_PARTITION.to_owned(),
            range: qchat_shared::store::KeyRange::All,
            order: qchat_shared::store::Order::Ascending,
            limit: 100,
            cursor: None,
        };
        let mut ids = Vec::new();
        loop {
            let page = self.app.store.query(&query).await.expect("query");
            ids.extend(
                page.items
                    .iter()
                    .map(|i| i.key().pk.trim_start_matches("OUTBOX#").to_owned()),
            );
            match page.next {
                Some(next) => query.cursor = Some(next),
                None => return ids,
            }
        }
    }

    /// Connects a page to `account` the way the account function does: its access token sealed under the
    /// account's key, sending active.
    pub async fn connect_page(&self, account: &AccountId, page: &PageId) {
        let app = &self.app;
        let key = page_key(page);
        let cipher = app
            .keys
            .cipher(&account_key_owner(account))
            .await
            .expect("cipher");
        let token = cipher
            .seal(&key, "access_token", PAGE_TOKEN.as_bytes())
            .expect("seal");
        let item = Item::new(&PAGE, key)
            .plain("account_id", Value::S(account.as_str().to_owned()))
            .and_then(|i| i.sealed("access_token", token))
            .and_then(|i| i.plain("connected_at", Value::N(app.clock.now().millis())))
            .and_then(|i| i.plain("consent_mode", Value::S("implicit".to_owned())))
            .and_then(|i| i.plain("sending", Value::S("active".to_owned())))
            .and_then(|i| i.plain("name", Value::S("Bakery Example".to_owned())))
            .expect("page item")
            .with_version(1)
            .with_gsi1(format!("ACCOUNT#{account}#PAGES"), page.as_str());
        app.store
            .put(item, Condition::NotExists)
            .await
            .expect("page written");
    }

    /// Writes the lead of `psid` on `page`, subscribed, who last wrote at `last_message_at` (as the
    /// webhook records it).
    pub async fn seed_lead(
        &self,
        account: &AccountId,
        page: &PageId,
        psid: &Psid,
        last_message_at: Timestamp,
    ) -> LeadId {
        let app = &self.app;
        let indexer = app.keys.blind_indexer().await.expect("indexer");
        let id = lookup::lead_for(
            app.key_store.as_ref(),
            &indexer,
            app.ids.as_ref(),
            page,
            &Subject::Psid(psid.clone()),
            app.clock.now(),
        )
        .await
        .expect("lead lookup");
        let key = lead_key(page, &id);
        let cipher = app
            .keys
            .cipher(&account_key_owner(account))
            .await
            .expect("cipher");
        let subject = cipher
            .seal(&key, "subject", psid.expose().as_bytes())
            .expect("seal");
        let item = Item::new(&LEAD, key)
            .sealed("subject", subject)
            .and_then(|i| i.plain("subject_kind", Value::S("psid".to_owned())))
            .and_then(|i| i.plain("status", Value::S(LeadStatus::Subscribed.name().to_owned())))
            .and_then(|i| i.plain("created", Value::N(last_message_at.millis())))
            .and_then(|i| i.plain("last_message_at", Value::N(last_message_at.millis())))
            .expect("lead item")
            .with_version(1);
        app.store
            .put(item, Condition::NotExists)
            .await
            .expect("lead written");
        id
    }

    /// Moves a lead's `last_message_at`, as the webhook does when the person writes again.
    pub async fn lead_wrote(&self, page: &PageId, lead: &LeadId, at: Timestamp) {
        let key = lead_key(page, lead);
        let item = self.app.store.get(&key).await.expect("get").expect("lead");
        let version = item.version().expect("versioned");
        let item = item
            .plain("last_message_at", Value::N(at.millis()))
            .expect("lead item")
            .with_version(version + 1);
        self.app
            .store
            .put(item, Condition::VersionIs(version))
            .await
            .expect("lead updated");
    }

    /// Queues a reply to `psid`, due now, the way the webhook does (recipient and text sealed under the
    /// page's account key). Returns the reply id.
    pub async fn queue_reply(
        &self,
        account: &AccountId,
        page: &PageId,
        lead: Option<&LeadId>,
        psid: &Psid,
        text: &str,
    ) -> String {
        let app = &self.app;
        let id = app.ids.new_id();
        let key = reply_key(&id);
        let cipher = app
            .keys
            .cipher(&account_key_owner(account))
            .await
            .expect("cipher");
        let op = reply_op(
            NewReply {
                id: &id,
                page,
                account,
                lead,
                recipient_kind: "psid",
                recipient: cipher
                    .seal(&key, "recipient", psid.expose().as_bytes())
                    .expect("seal"),
                text: cipher.seal(&key, "text", text.as_bytes()).expect("seal"),
                quick_replies: &[("Unsubscribe", "QCHAT_UNSUBSCRIBE")],
            },
            app.clock.now(),
        )
        .expect("reply op");
        app.store.transact(vec![op]).await.expect("reply queued");
        id
    }

    pub async fn reply_item(&self, id: &str) -> Item {
        self.app
            .store
            .get(&reply_key(id))
            .await
            .expect("get")
            .expect("the reply item exists")
    }

    /// The reply's `state` and `failure`.
    pub async fn reply_state(&self, id: &str) -> (String, Option<String>) {
        let item = self.reply_item(id).await;
        (
            item.get_str("state").unwrap_or_default().to_owned(),
            item.get_str("failure").map(str::to_owned),
        )
    }

    /// A deadline far enough away that nothing is cut short.
    pub fn roomy_deadline(&self) -> Timestamp {
        self.clock.now().plus_secs(600)
    }
}
