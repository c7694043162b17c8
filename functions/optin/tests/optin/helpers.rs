//! `TestApp`: one isolated qchat per test with a manual clock, on the embedded backends (SQLite store,
//! local keyring) or the AWS backends (DynamoDB and KMS on the moto emulator; a fresh table and key per
//! app), with the outbox mailer and messenger on both (no case here reads mail or messages). Account
//! holders and pages are made through the account function; leads, consent records and unsubscribe
//! links written directly with the shared `leads` API, as the webhook writes them.
//!
//! Every answer is checked against the PSIDs sealed so far: no body may ever contain one.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, StatusCode};
use qchat_shared::app::{App, Stores, account_key_owner, local_files};
use qchat_shared::clock::{ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::{Keyring, KmsKeyring, LocalKeyring};
use qchat_shared::domain::{AccountId, PageId, Psid};
use qchat_shared::ids::{IdGenerator, RandomIds};
use qchat_shared::inventory::{LEAD, UNSUBSCRIBE_LINK};
use qchat_shared::leads::record::{status_partition, status_sort_key};
use qchat_shared::leads::{
    Action, ConsentEvent, ConsentRecord, GENESIS_HASH, LeadStatus, Subject, UnsubscribeToken,
    lead_key, lookup, unsubscribe_key,
};
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::store::{Item, ItemStore, Value, WriteOp};
use qchat_shared::test_support::moto;
use serde_json::{Value as Json, json};

/// Which backends a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite store and local master-key keyring in a temporary folder.
    Sqlite,
    /// DynamoDB (a fresh table) and KMS (a fresh key) on the moto emulator.
    Moto,
}

/// A fixed start: 2027-01-15.
pub const START: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// An answer with its body as text.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub csp: Option<String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Json {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A signed-in account holder.
#[derive(Debug, Clone)]
pub struct Holder {
    pub account: AccountId,
    pub token: String,
}

/// A lead written for a test, with the link that unsubscribes it.
#[derive(Debug)]
pub struct SeededLead {
    pub id: String,
    pub link: String,
}

#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    psids: Mutex<Vec<String>>,
    /// The outboxes on both backends; the SQLite file and master key too for SQLite.
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let clock = Arc::new(ManualClock::at(START));
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        let mut vars = vec![
            ("QCHAT_PUBLIC_URL", "https://qchat.optin.test".to_owned()),
            ("QCHAT_MAIL_FROM", "noreply@qchat.example.test".to_owned()),
        ];
        let (stores, keyring): (Stores, Arc<dyn Keyring>) = match backend {
            Backend::Sqlite => {
                let stores = qchat_shared::test_support::sqlite_stores(dir.path(), clock.clone());
                let keyring =
                    LocalKeyring::open(&dir.path().join(local_files::MASTER_KEY)).expect("keyring");
                vars.push(("QCHAT_DATA_DIR", dir.path().to_string_lossy().into_owned()));
                (stores, Arc::new(keyring))
            }
            Backend::Moto => {
                let sdk = moto::sdk_config().await;
                let kms = aws_sdk_kms::Client::new(&sdk);
                let key_id = moto::create_kms_key(&kms, "qchat-optin")
                    .await
                    .expect("moto creates a KMS key");
                let (stores, table, key_table) = qchat_shared::test_support::moto_stores(
                    &aws_sdk_dynamodb::Client::new(&sdk),
                    "optin",
                    clock.clone(),
                )
                .await;
                vars.extend([
                    ("QCHAT_BACKEND", "aws".to_owned()),
                    ("QCHAT_TABLE_NAME", table),
                    ("QCHAT_KEY_TABLE_NAME", key_table),
                    ("QCHAT_KMS_KEY_ID", key_id.clone()),
                    // Required in AWS mode (the privacy notice names the controller).
                    ("QCHAT_CONTROLLER_NAME", "Optin Test Controller".to_owned()),
                    (
                        "QCHAT_CONTROLLER_EMAIL",
                        "privacy@qchat.example.test".to_owned(),
                    ),
                ]);
                (stores, Arc::new(KmsKeyring::new(kms, key_id)))
            }
        };
        let mailer = OutboxMailer::new(
            dir.path().join(local_files::MAIL_OUTBOX),
            "qchat <noreply@qchat.example.test>".to_owned(),
            clock.clone(),
        );
        let messenger = OutboxMessenger::new(
            dir.path().join(local_files::MESSENGER_OUTBOX),
            clock.clone(),
            ids.clone(),
        );
        let config = Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .expect("test configuration");
        let app = App::from_parts(
            config,
            stores,
            keyring,
            Arc::new(mailer),
            Arc::new(messenger),
            clock.clone(),
            ids,
        );
        Self {
            app,
            clock,
            psids: Mutex::new(Vec::new()),
            _dir: dir,
        }
    }

    pub fn store(&self) -> &dyn ItemStore {
        self.app.store.as_ref()
    }

    fn check_no_psid(&self, body: &str) {
        for psid in self.psids.lock().expect("lock").iter() {
            assert!(!body.contains(psid.as_str()), "an answer holds a PSID");
        }
    }

    async fn send(
        &self,
        account_fn: bool,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Json>,
    ) -> Answer {
        self.send_with(account_fn, method, path, token, body, &[])
            .await
    }

    async fn send_with(
        &self,
        account_fn: bool,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Json>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let req = req.body(bytes).expect("request");
        let resp = if account_fn {
            qchat_account::handle(&self.app, req).await
        } else {
            qchat_optin::handle(&self.app, req).await
        };
        let header = |name: http::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let answer = Answer {
            status: resp.status(),
            content_type: header(http::header::CONTENT_TYPE).unwrap_or_default(),
            csp: header(http::header::CONTENT_SECURITY_POLICY),
            body: String::from_utf8(resp.body().to_vec()).expect("UTF-8 body"),
        };
        self.check_no_psid(&answer.body);
        answer
    }

    /// A request to the optin function.
    pub async fn optin(&self, method: Method, path: &str, token: Option<&str>) -> Answer {
        self.send(false, method, path, token, None).await
    }

    /// A request to the optin function from a browser that asks for `accept_language`.
    pub async fn optin_in(&self, method: Method, path: &str, accept_language: &str) -> Answer {
        self.send_with(
            false,
            method,
            path,
            None,
            None,
            &[("accept-language", accept_language)],
        )
        .await
    }

    /// Registers and signs in an account holder through the account function.
    pub async fn holder(&self, label: &str) -> Holder {
        let email = format!(
            "{}@optin.example.test",
            qchat_shared::test_support::unique_name(label)
        );
        let password = "Lantern Tangerine orbit 47";
        let reg = self
            .send(
                true,
                Method::POST,
                "/api/accounts",
                None,
                Some(json!({"email": email, "password": password, "accepted_policy_version": "1"})),
            )
            .await;
        assert_eq!(reg.status, StatusCode::ACCEPTED, "{}", reg.body);
        // The account exists once the link mailed to the address is used.
        let link = qchat_shared::test_support::links::link_token(
            &self.app,
            "confirm_registration",
            &email,
        )
        .await
        .expect("a confirmation mail is queued");
        let confirm = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/verify-email/{link}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Bytes::new())
            .expect("a request");
        let confirmed = qchat_account::handle(&self.app, confirm).await;
        assert_eq!(confirmed.status(), StatusCode::OK);
        let session = self
            .send(
                true,
                Method::POST,
                "/api/sessions",
                None,
                Some(json!({"email": email, "password": password, "remember": false})),
            )
            .await;
        assert_eq!(session.status, StatusCode::OK, "{}", session.body);
        let token = session.json()["token"].as_str().expect("token").to_owned();
        let me = self
            .send(true, Method::GET, "/api/account", Some(&token), None)
            .await;
        let account = AccountId::parse(me.json()["id"].as_str().expect("id")).expect("account id");
        Holder { account, token }
    }

    /// Connects a page through the account function, with the local messenger's sample token of the
    /// page (`sample-page-token-<page id>`, the only kind it verifies); `name` is the page's public name.
    pub async fn page(&self, holder: &Holder, page_id: &str, name: Option<&str>) {
        let mut body = json!({"page_id": page_id, "page_access_token": format!("sample-page-token-{page_id}")});
        if let Some(n) = name {
            body["name"] = json!(n);
        }
        let r = self
            .send(
                true,
                Method::POST,
                "/api/pages",
                Some(&holder.token),
                Some(body),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }

    /// Writes a lead the way the webhook does: its consent records (chained, `actions` in order), the
    /// lead item (PSID sealed under the account's key, status, chain head, status index) and an
    /// unsubscribe link, in one transaction.
    pub async fn lead(
        &self,
        holder: &Holder,
        page_id: &str,
        psid: &str,
        status: LeadStatus,
        actions: &[Action],
    ) -> SeededLead {
        self.psids.lock().expect("lock").push(psid.to_owned());
        let app = &self.app;
        let page = PageId::parse(page_id).expect("page id");
        let psid = Psid::parse(psid).expect("psid");
        let indexer = app.keys.blind_indexer().await.expect("indexer");
        let id = lookup::lead_for(
            app.key_store.as_ref(),
            &indexer,
            app.ids.as_ref(),
            &page,
            &Subject::Psid(psid.clone()),
            app.clock.now(),
        )
        .await
        .expect("lead lookup");
        let now = app.clock.now();
        let mut ops: Vec<WriteOp> = Vec::new();
        let (mut seq, mut head) = (0, GENESIS_HASH.to_owned());
        for (i, action) in actions.iter().enumerate() {
            let event = ConsentEvent {
                action: *action,
                source: "first_message".to_owned(),
                meta_ref: Some(format!("m_{i}")),
                meta_timestamp: Some(now.millis() - 100),
                received_at: now,
                policy_version: "1".to_owned(),
                consent_mode: "confirmed".to_owned(),
                wording: "Would you like to receive updates from us?".to_owned(),
            };
            let record = ConsentRecord::chain(&id, seq, &head, event);
            ops.push(record.append_op(&page, &id).expect("record"));
            seq = record.seq;
            head = record.hash.clone();
        }
        let cipher = app
            .keys
            .cipher(&account_key_owner(&holder.account))
            .await
            .expect("cipher");
        let key = lead_key(&page, &id);
        let link = UnsubscribeToken::generate(app.clock.now());
        let item = Item::new(&LEAD, key.clone())
            .sealed(
                "subject",
                cipher
                    .seal(&key, "subject", psid.expose().as_bytes())
                    .expect("seal"),
            )
            .and_then(|i| i.plain("subject_kind", Value::S("psid".to_owned())))
            .and_then(|i| i.plain("status", Value::S(status.name().to_owned())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .and_then(|i| i.plain("last_message_at", Value::N(now.millis())))
            .and_then(|i| i.plain("consent_seq", Value::N(i64::try_from(seq).expect("seq"))))
            .and_then(|i| i.plain("consent_head", Value::S(head)))
            .and_then(|i| i.hashed("unsubscribe_hash", &link.hash()))
            .expect("lead item")
            .with_version(1)
            .with_gsi1(status_partition(&page, status), status_sort_key(now, &id));
        ops.push(WriteOp::Put {
            item,
            condition: qchat_shared::store::Condition::NotExists,
        });
        let link_item = Item::new(&UNSUBSCRIBE_LINK, unsubscribe_key(&link.hash()))
            .plain("page_id", Value::S(page_id.to_owned()))
            .and_then(|i| i.plain("lead_id", Value::S(id.as_str().to_owned())))
            .and_then(|i| i.plain("created", Value::N(now.millis())))
            .expect("link item");
        ops.push(WriteOp::Put {
            item: link_item,
            condition: qchat_shared::store::Condition::NotExists,
        });
        app.store.transact(ops).await.expect("lead written");
        SeededLead {
            id: id.as_str().to_owned(),
            link: format!("/u/{}", link.expose()),
        }
    }
}

/// A PSID unique to this call (16 digits), so every seeded lead has its own.
pub fn psid() -> String {
    let b = qchat_shared::crypto::random_bytes::<8>();
    format!("9{:015}", u64::from_le_bytes(b) % 1_000_000_000_000_000)
}
