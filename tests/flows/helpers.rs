//! `TestApp`: one isolated qchat per test, over the embedded backends or the AWS backends on moto, driven
//! through `qchat_local::dispatch` (which routes a request exactly like API Gateway), plus raw readers of
//! the store that bypass every qchat abstraction.
//!
//! Isolation: every `TestApp` has its own SQLite file and master key (a temporary folder) or its own
//! DynamoDB table and KMS key, its own operator address, its own manual clock and its own client network.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use qchat_shared::app::{App, Stores, local_files};
use qchat_shared::clock::{ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::Keyring;
use qchat_shared::crypto::kms::KmsKeyring;
use qchat_shared::crypto::local::LocalKeyring;
use qchat_shared::http::ClientAddr;
use qchat_shared::ids::{IdGenerator, RandomIds};
use qchat_shared::mail::Mailer;
use qchat_shared::mail::outbox::OutboxMailer;
use qchat_shared::mail::ses::SesMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::store::ItemStore;
use qchat_shared::store::dynamodb::DynamoStore;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::test_support::{logs, moto, unique_name};
use serde_json::{Value, json};

/// Where every test's clock starts: a fixed, recent time (2026-10-26T10:40:00Z, a whole second).
pub const START: Timestamp = Timestamp::from_millis(1_793_011_200_000);

/// The public base URL the test configuration sets.
pub const PUBLIC_URL: &str = "https://qchat.flows.test";

/// The controller the AWS test configuration names (the embedded one keeps the local placeholders).
pub const CONTROLLER_NAME: &str = "Flows Test Controller Ltd";
pub const CONTROLLER_EMAIL: &str = "privacy@flows.example.test";
pub const CONTROLLER_ADDRESS: &str = "1 Test Street, 1000 Brussels, Belgium";
pub const SUPERVISORY_AUTHORITY: &str = "Test Data Protection Authority, https://dpa.example.test";

/// Which backends a test app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite store, local master-key keyring, `.eml` and JSON-lines outboxes, all in a temporary folder.
    Sqlite,
    /// DynamoDB (a fresh table), KMS (a fresh key) and SES on the moto emulator.
    Moto,
}

/// What the raw readers need to reach the stored bytes.
#[derive(Debug)]
enum Raw {
    Sqlite {
        db: PathBuf,
        key_db: PathBuf,
    },
    Moto {
        client: aws_sdk_dynamodb::Client,
        table: String,
        key_table: String,
    },
}

/// The backend-specific parts of an app, and how to read its store raw.
type Parts = (Config, Stores, Arc<dyn Keyring>, Arc<dyn Mailer>, Raw);

/// A raw copy of the main store's items (see [`TestApp::backup_main_store`]).
#[derive(Debug, Clone)]
pub enum MainBackup {
    /// Every row of the `items` table: pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs.
    Sqlite(Vec<Vec<rusqlite::types::Value>>),
    /// Every item of a consistent Scan.
    Moto(Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>),
}

/// One qchat under test.
#[derive(Debug)]
pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    /// The address `QCHAT_OPERATOR_EMAIL` names (not registered until a test registers it).
    pub operator_email: String,
    network: Mutex<IpAddr>,
    raw: Raw,
    /// The keyring the app's key manager uses, for a second key manager that stands for a fresh process.
    pub keyring: Arc<dyn Keyring>,
    /// Holds the data folder (SQLite) or the messenger outbox (moto) for as long as the app lives.
    _dir: tempfile::TempDir,
}

/// An answer, with its body kept as bytes.
#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// A registered account holder and how they sign in.
#[derive(Debug, Clone)]
pub struct Holder {
    pub id: String,
    pub email: String,
    pub password: String,
}

/// A random network address in 10.0.0.0/8, so every test (and every app) has its own.
pub fn random_ipv4() -> IpAddr {
    let b = qchat_shared::crypto::random_bytes::<3>();
    IpAddr::from([10, b[0], b[1], b[2].max(1)])
}

/// Another address in the same /24 as `ip` (the same network to the new-network check).
pub fn same_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            IpAddr::from([o[0], o[1], o[2], o[3] % 250 + 2])
        }
        IpAddr::V6(v6) => {
            let mut s = v6.segments();
            s[7] = s[7].wrapping_add(1);
            IpAddr::from(s)
        }
    }
}

/// A random IPv6 address in the documentation prefix 2001:db8::/32.
pub fn random_ipv6() -> IpAddr {
    let b = qchat_shared::crypto::random_bytes::<6>();
    let seg = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]) | 0x1000;
    IpAddr::from([0x2001, 0x0db8, seg(0), seg(2), 0, 0, 0, seg(4)])
}

/// A fresh, unique email address (lowercase) whose local part starts with `label`.
pub fn unique_email(label: &str) -> String {
    format!("{}@flows.example.test", unique_name(label))
}

/// A strong password no other test uses.
pub fn strong_password() -> String {
    format!("Lantern Tangerine {} 47", unique_name("orbit"))
}

fn config(pairs: &[(&str, String)]) -> Config {
    let map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Config::from_lookup(|name| map.get(name).cloned()).expect("the test configuration is valid")
}

impl TestApp {
    /// A fresh qchat on `backend`, with the clock at [`START`]. Starts the process-wide log capture first,
    /// so every test's logs are captured.
    pub async fn spawn(backend: Backend) -> Self {
        let _ = logs::capture();
        let clock = Arc::new(ManualClock::at(START));
        let ids: Arc<dyn IdGenerator> = Arc::new(RandomIds);
        let operator_email = unique_email("operator");
        let dir = tempfile::tempdir().expect("a temporary folder");
        let common = [
            ("QCHAT_OPERATOR_EMAIL", operator_email.clone()),
            ("QCHAT_PUBLIC_URL", PUBLIC_URL.to_owned()),
        ];
        // Locally the controller has placeholder defaults; in AWS it must be set, as the template does.
        let controller = [
            ("QCHAT_CONTROLLER_NAME", CONTROLLER_NAME.to_owned()),
            ("QCHAT_CONTROLLER_EMAIL", CONTROLLER_EMAIL.to_owned()),
            ("QCHAT_CONTROLLER_ADDRESS", CONTROLLER_ADDRESS.to_owned()),
            (
                "QCHAT_SUPERVISORY_AUTHORITY",
                SUPERVISORY_AUTHORITY.to_owned(),
            ),
        ];
        let messenger = Arc::new(OutboxMessenger::new(
            dir.path().join(local_files::MESSENGER_OUTBOX),
            clock.clone(),
            ids.clone(),
        ));
        let (config, stores, keyring, mailer, raw): Parts = match backend {
            Backend::Sqlite => {
                let mut vars = common.to_vec();
                vars.push(("QCHAT_DATA_DIR", dir.path().display().to_string()));
                let config = config(&vars);
                let db = dir.path().join(local_files::STORE);
                let store = SqliteStore::open(&db, clock.clone()).expect("the SQLite store opens");
                let key_db = dir.path().join(local_files::KEY_STORE);
                let key_store =
                    SqliteStore::open(&key_db, clock.clone()).expect("the SQLite key store opens");
                let keyring = LocalKeyring::open(&dir.path().join(local_files::MASTER_KEY))
                    .expect("the local keyring opens");
                let mailer = OutboxMailer::new(
                    dir.path().join(local_files::MAIL_OUTBOX),
                    config.mail_from.clone(),
                    clock.clone(),
                );
                (
                    config,
                    Stores {
                        main: Arc::new(store),
                        keys: Arc::new(key_store),
                    },
                    Arc::new(keyring),
                    Arc::new(mailer),
                    Raw::Sqlite { db, key_db },
                )
            }
            Backend::Moto => {
                let sdk = moto::sdk_config().await;
                let table = unique_name("flows");
                let key_table = unique_name("flows-keys");
                let kms = aws_sdk_kms::Client::new(&sdk);
                let key_id = moto::create_kms_key(&kms, "qchat-flows")
                    .await
                    .expect("moto creates a KMS key");
                let mut vars = common.to_vec();
                vars.extend([
                    ("QCHAT_BACKEND", "aws".to_owned()),
                    ("QCHAT_TABLE_NAME", table.clone()),
                    ("QCHAT_KEY_TABLE_NAME", key_table.clone()),
                    ("QCHAT_KMS_KEY_ID", key_id.clone()),
                    ("QCHAT_MAIL_FROM", "notices@flows.example.test".to_owned()),
                ]);
                vars.extend(controller);
                let config = config(&vars);
                let client = aws_sdk_dynamodb::Client::new(&sdk);
                let store = DynamoStore::new(client.clone(), table.clone(), clock.clone());
                store.ensure_schema().await.expect("the table is created");
                let key_store = DynamoStore::new(client.clone(), key_table.clone(), clock.clone());
                key_store
                    .ensure_schema()
                    .await
                    .expect("the key table is created");
                let mailer =
                    SesMailer::new(aws_sdk_ses::Client::new(&sdk), config.mail_from.clone());
                (
                    config,
                    Stores {
                        main: Arc::new(store),
                        keys: Arc::new(key_store),
                    },
                    Arc::new(KmsKeyring::new(kms, key_id)),
                    Arc::new(mailer),
                    Raw::Moto {
                        client,
                        table,
                        key_table,
                    },
                )
            }
        };
        let app = App::from_parts(
            config,
            stores,
            keyring.clone(),
            mailer,
            messenger,
            clock.clone(),
            ids,
        );
        Self {
            app,
            clock,
            operator_email,
            network: Mutex::new(random_ipv4()),
            raw,
            keyring,
            _dir: dir,
        }
    }

    /// The network address the following requests come from.
    pub fn network(&self) -> IpAddr {
        *self.network.lock().expect("network lock")
    }

    /// Makes the following requests come from `ip`.
    pub fn use_network(&self, ip: IpAddr) {
        *self.network.lock().expect("network lock") = ip;
    }

    /// Sends one request through the local server's router, from the current network. Every response is
    /// checked for the security headers every response must carry.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut builder = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let mut req = builder
            .body(Bytes::from(body.unwrap_or_default()))
            .expect("a well-formed test request");
        req.extensions_mut().insert(ClientAddr(self.network()));
        let (parts, body) = qchat_local::dispatch(&self.app, req).await.into_parts();
        let response = TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        };
        response.assert_security_headers();
        response
    }

    async fn with_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> TestResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        self.request(
            method,
            path,
            Some(serde_json::to_vec(body).expect("JSON encodes")),
            &headers,
        )
        .await
    }

    async fn without_body(&self, method: Method, path: &str, token: Option<&str>) -> TestResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        self.request(method, path, None, &headers).await
    }

    pub async fn post_json(&self, path: &str, body: &Value, token: Option<&str>) -> TestResponse {
        self.with_json(Method::POST, path, body, token).await
    }

    pub async fn patch(&self, path: &str, body: &Value, token: Option<&str>) -> TestResponse {
        self.with_json(Method::PATCH, path, body, token).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.without_body(Method::GET, path, token).await
    }

    /// `GET` with `Accept: application/json` (a page that answers HTML to a browser).
    pub async fn get_json_accepting(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, None, &[("accept", "application/json")])
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> TestResponse {
        self.without_body(Method::DELETE, path, token).await
    }

    /// `POST /api/accounts` with the current policy version ("1" on a fresh install).
    pub async fn register(&self, email: &str, password: &str, name: Option<&str>) -> TestResponse {
        let mut body =
            json!({ "email": email, "password": password, "accepted_policy_version": "1" });
        if let Some(n) = name {
            body["name"] = json!(n);
        }
        self.post_json("/api/accounts", &body, None).await
    }

    /// Registers a new account holder with a fresh address and password; panics unless it is created.
    pub async fn new_holder(&self, label: &str) -> Holder {
        let email = unique_email(label);
        let password = strong_password();
        self.holder_with(&email, &password).await
    }

    /// Registers `email` with `password` and confirms the address with the link mailed to it; panics
    /// unless the account is created.
    pub async fn holder_with(&self, email: &str, password: &str) -> Holder {
        let r = self.register(email, password, None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "registration: {}", r.text());
        let token = self.link_token("confirm_registration", email).await;
        self.use_link(&format!("/verify-email/{token}"), None)
            .await
            .assert_status(200);
        Holder {
            id: self
                .account_id_of(email)
                .await
                .expect("the confirmed address has an account"),
            email: email.to_owned(),
            password: password.to_owned(),
        }
    }

    /// POSTs the form of a link page (`/verify-email/…`, `/reset-password/…`), as its button does.
    pub async fn use_link(&self, path: &str, form: Option<&str>) -> TestResponse {
        self.request(
            Method::POST,
            path,
            form.map(|f| f.as_bytes().to_vec()),
            &[("content-type", "application/x-www-form-urlencoded")],
        )
        .await
    }

    /// The account id that holds `email`, read through its claim (as sign-in finds it).
    pub async fn account_id_of(&self, email: &str) -> Option<String> {
        let email = qchat_shared::domain::EmailAddress::parse(email).ok()?;
        let indexer = self
            .app
            .keys
            .blind_indexer()
            .await
            .expect("the blind-index key");
        let index = indexer.index(
            qchat_shared::accounts::purpose::EMAIL,
            email.expose().as_bytes(),
        );
        self.app
            .key_store
            .get(&qchat_shared::accounts::email_claim_key(&index))
            .await
            .expect("the store answers")
            .and_then(|claim| claim.get_str("account_id").map(str::to_owned))
    }

    /// The link token of the newest unsent mail `notice` to `email`, decrypted with the app's keys exactly
    /// as notify does when it sends it (the sealed `secret`); panics if there is none.
    pub async fn link_token(&self, notice: &str, email: &str) -> String {
        self.try_link_token(notice, email)
            .await
            .unwrap_or_else(|| panic!("no unsent {notice} mail to that address"))
    }

    /// As [`Self::link_token`], `None` when no such mail is queued.
    pub async fn try_link_token(&self, notice: &str, email: &str) -> Option<String> {
        qchat_shared::test_support::links::link_token(&self.app, notice, email).await
    }

    /// Registers the operator (the address `QCHAT_OPERATOR_EMAIL` names) and signs in; the token.
    pub async fn operator_token(&self) -> String {
        let email = self.operator_email.clone();
        let op = self.holder_with(&email, &strong_password()).await;
        self.sign_in_ok(&op.email, &op.password, false).await
    }

    /// `POST /api/sessions`.
    pub async fn sign_in(&self, email: &str, password: &str, remember: bool) -> TestResponse {
        self.post_json(
            "/api/sessions",
            &json!({ "email": email, "password": password, "remember": remember }),
            None,
        )
        .await
    }

    /// Signs in and returns the session token; panics unless the sign-in succeeds.
    pub async fn sign_in_ok(&self, email: &str, password: &str, remember: bool) -> String {
        let r = self.sign_in(email, password, remember).await;
        assert_eq!(r.status, StatusCode::OK, "sign-in: {}", r.text());
        r.json()["token"]
            .as_str()
            .expect("a session token")
            .to_owned()
    }

    /// A holder and a signed-in session of theirs.
    pub async fn signed_in_holder(&self, label: &str) -> (Holder, String) {
        let holder = self.new_holder(label).await;
        let token = self
            .sign_in_ok(&holder.email, &holder.password, false)
            .await;
        (holder, token)
    }

    /// Every stored item of both stores (main and key store) and, for SQLite, the database files, read
    /// without qchat's store code.
    pub async fn raw_store(&self) -> RawStore {
        let mut all = self.raw_main_store().await;
        let keys = self.raw_key_store().await;
        all.items.extend(keys.items);
        all.files.extend(keys.files);
        all
    }

    /// As [`Self::raw_store`], the main store only: what its backups copy.
    pub async fn raw_main_store(&self) -> RawStore {
        match &self.raw {
            Raw::Sqlite { db, .. } => raw_sqlite(db),
            Raw::Moto { client, table, .. } => raw_dynamodb(client, table).await,
        }
    }

    /// As [`Self::raw_store`], the key store only.
    pub async fn raw_key_store(&self) -> RawStore {
        match &self.raw {
            Raw::Sqlite { key_db, .. } => raw_sqlite(key_db),
            Raw::Moto {
                client, key_table, ..
            } => raw_dynamodb(client, key_table).await,
        }
    }

    /// The notices queued in the outbox for `account`, by notice name (read from the raw store).
    pub async fn queued_notices(&self, account: &str) -> Vec<String> {
        self.raw_store()
            .await
            .of_type("outbox")
            .filter(|i| i.text("account_id").as_deref() == Some(account))
            .filter_map(|i| i.text("notice"))
            .collect()
    }

    /// A copy of every item of the main store, taken raw (as a backup or point-in-time recovery copies
    /// the table, or a copy of the SQLite file holds it), without qchat's store code.
    pub async fn backup_main_store(&self) -> MainBackup {
        match &self.raw {
            Raw::Sqlite { db, .. } => {
                let conn = rusqlite::Connection::open(db).expect("the database opens");
                let mut stmt = conn
                    .prepare("SELECT pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs FROM items")
                    .expect("the items are read");
                let rows = stmt
                    .query_map([], |r| {
                        (0..8)
                            .map(|i| r.get::<_, rusqlite::types::Value>(i))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .expect("rows")
                    .collect::<Result<Vec<_>, _>>()
                    .expect("every row");
                MainBackup::Sqlite(rows)
            }
            Raw::Moto { client, table, .. } => {
                let mut items = Vec::new();
                let mut start = None;
                loop {
                    let page = client
                        .scan()
                        .table_name(table)
                        .consistent_read(true)
                        .set_exclusive_start_key(start)
                        .send()
                        .await
                        .expect("the table is scanned");
                    items.extend(page.items.unwrap_or_default());
                    start = page.last_evaluated_key;
                    if start.is_none() {
                        break;
                    }
                }
                MainBackup::Moto(items)
            }
        }
    }

    /// Puts every copied item back into the main store, raw, over whatever is there: what restoring the
    /// backup does to the items it holds. The key store is not touched (backups do not reach it).
    pub async fn restore_main_store(&self, backup: &MainBackup) {
        match (&self.raw, backup) {
            (Raw::Sqlite { db, .. }, MainBackup::Sqlite(rows)) => {
                let conn = rusqlite::Connection::open(db).expect("the database opens");
                conn.busy_timeout(std::time::Duration::from_secs(10))
                    .expect("a busy timeout");
                for row in rows {
                    conn.execute(
                        "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
                        rusqlite::params![row[0], row[1]],
                    )
                    .expect("the current item is replaced");
                    conn.execute(
                        "INSERT INTO items (pk, sk, t, v, ttl, gsi1pk, gsi1sk, attrs) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        rusqlite::params_from_iter(row.iter()),
                    )
                    .expect("the copy is put back");
                }
            }
            (Raw::Moto { client, table, .. }, MainBackup::Moto(items)) => {
                for item in items {
                    client
                        .put_item()
                        .table_name(table)
                        .set_item(Some(item.clone()))
                        .send()
                        .await
                        .expect("the copy is put back");
                }
            }
            _ => panic!("a backup is restored into the backend it was taken from"),
        }
    }

    /// The key of every item in `backup` (to read the restored items through the store).
    pub fn backup_keys(backup: &MainBackup) -> Vec<qchat_shared::store::ItemKey> {
        use qchat_shared::store::ItemKey;
        match backup {
            MainBackup::Sqlite(rows) => rows
                .iter()
                .map(|r| match (&r[0], &r[1]) {
                    (rusqlite::types::Value::Text(pk), rusqlite::types::Value::Text(sk)) => {
                        ItemKey::new(pk.clone(), sk.clone())
                    }
                    _ => panic!("keys are text"),
                })
                .collect(),
            MainBackup::Moto(items) => items
                .iter()
                .map(|i| {
                    let text = |name: &str| {
                        i.get(name)
                            .and_then(|v| v.as_s().ok())
                            .cloned()
                            .expect("keys are strings")
                    };
                    ItemKey::new(text("pk"), text("sk"))
                })
                .collect(),
        }
    }

    /// Panics naming every stored attribute the data inventory does not declare for its item type.
    pub async fn assert_every_stored_attribute_is_declared(&self) {
        let raw = self.raw_store().await;
        assert!(!raw.items.is_empty(), "the store holds no items");
        let undeclared = raw.undeclared_attributes();
        assert!(
            undeclared.is_empty(),
            "stored attributes missing from the data inventory: {undeclared:?}"
        );
    }
}

impl TestResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Checks the status and that the body is exactly `{"error":{"code":<code>,"message":<text>}}`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "errors are JSON"
        );
        let body = self.json();
        let outer = body.as_object().expect("the error body is an object");
        assert_eq!(outer.len(), 1, "only `error` at the top: {body}");
        let inner = body["error"].as_object().expect("`error` is an object");
        assert_eq!(
            inner.len(),
            2,
            "only `code` and `message` in `error`: {body}"
        );
        assert_eq!(body["error"]["code"], code, "error code; body: {body}");
        let message = body["error"]["message"]
            .as_str()
            .expect("the message is text");
        assert!(!message.trim().is_empty(), "the message is not empty");
        self
    }

    /// Checks that none of `values` (compared case-insensitively) appears in the body or the headers.
    #[track_caller]
    pub fn assert_does_not_echo(&self, values: &[&str]) -> &Self {
        let mut all = self.body.to_vec();
        for (name, value) in &self.headers {
            all.extend_from_slice(name.as_str().as_bytes());
            all.extend_from_slice(value.as_bytes());
        }
        for (i, v) in values.iter().enumerate() {
            assert!(
                !contains_ignoring_case(&all, v),
                "submitted value {i} is echoed in the response: {}",
                self.text()
            );
        }
        self
    }

    /// HSTS, `nosniff`, `no-referrer` and `no-store` on every response but the console's static assets
    /// (script and style sheet, no data of anyone), which are cached under URLs named by their content hash.
    #[track_caller]
    pub fn assert_security_headers(&self) {
        let hsts = self.header("strict-transport-security").unwrap_or_default();
        assert!(
            hsts.starts_with("max-age=")
                && hsts["max-age=".len()..]
                    .split(';')
                    .next()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .is_some_and(|s| s >= 31_536_000),
            "HSTS of at least a year on {}: {hsts:?}",
            self.status
        );
        assert_eq!(self.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(self.header("referrer-policy"), Some("no-referrer"));
        let asset = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/javascript") || t.starts_with("text/css"));
        let cache = if asset {
            "public, max-age=31536000, immutable"
        } else {
            "no-store"
        };
        assert_eq!(self.header("cache-control"), Some(cache));
    }
}

/// Text to search case-insensitively: ASCII-lowercased, with invalid UTF-8 replaced. Replacement never
/// touches ASCII bytes, so an ASCII (or any valid UTF-8) needle is found exactly where it was.
pub fn searchable(haystack: &[u8]) -> String {
    String::from_utf8_lossy(&haystack.to_ascii_lowercase()).into_owned()
}

/// Whether `haystack` contains `needle`, ignoring ASCII case.
pub fn contains_ignoring_case(haystack: &[u8], needle: &str) -> bool {
    searchable(haystack).contains(&needle.to_ascii_lowercase())
}

/// One stored item as raw attributes: name and value bytes (numbers as their decimal text).
#[derive(Debug, Clone)]
pub struct RawItem {
    /// The item type (attribute `t`).
    pub item_type: String,
    pub attributes: Vec<(String, Vec<u8>)>,
}

impl RawItem {
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Everything stored: every item with every attribute, and (SQLite) the bytes of the database files.
#[derive(Debug, Default)]
pub struct RawStore {
    pub items: Vec<RawItem>,
    /// Whole files (name, bytes): the SQLite database and its write-ahead log.
    pub files: Vec<(String, Vec<u8>)>,
}

impl RawStore {
    pub fn of_type<'a>(&'a self, item_type: &'a str) -> impl Iterator<Item = &'a RawItem> + 'a {
        self.items.iter().filter(move |i| i.item_type == item_type)
    }

    /// Where each of `values` is found (ignoring ASCII case): `(value index, place)`.
    pub fn find(&self, values: &[&str]) -> Vec<(usize, String)> {
        let needles: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                assert!(!v.is_empty(), "value {i} is empty");
                v.to_ascii_lowercase()
            })
            .collect();
        let mut found = Vec::new();
        let mut search = |bytes: &[u8], place: &dyn Fn() -> String| {
            let hay = searchable(bytes);
            for (i, needle) in needles.iter().enumerate() {
                if hay.contains(needle.as_str()) {
                    found.push((i, place()));
                }
            }
        };
        for (name, bytes) in &self.files {
            search(bytes, &|| format!("file {name}"));
        }
        for item in &self.items {
            for (attr, bytes) in &item.attributes {
                let place = || format!("{}.{attr}", item.item_type);
                search(bytes, &place);
                search(attr.as_bytes(), &place);
            }
        }
        found
    }

    /// `(item type, attribute)` pairs stored but not declared in the inventory.
    pub fn undeclared_attributes(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for item in &self.items {
            for (attr, _) in &item.attributes {
                if !qchat_shared::inventory::is_declared(&item.item_type, attr) {
                    out.push((item.item_type.clone(), attr.clone()));
                }
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// Reads the SQLite database as bytes (the file and its write-ahead log), and every row of every table
/// through rusqlite, decoding the `attrs` column from its documented format independently of qchat.
fn raw_sqlite(db: &std::path::Path) -> RawStore {
    use rusqlite::types::ValueRef;

    let mut raw = RawStore::default();
    for suffix in ["", "-wal"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            raw.files.push((
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes,
            ));
        }
    }
    assert!(!raw.files.is_empty(), "the database file exists");

    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .expect("the database opens read-only");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<_, _>>()
        })
        .expect("the tables are listed");
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\""))
            .expect("every table can be read");
        let columns: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|c| (*c).to_owned())
            .collect();
        let mut rows = stmt.query([]).expect("rows");
        while let Some(row) = rows.next().expect("a row") {
            let mut item = RawItem {
                item_type: "<no type>".to_owned(),
                attributes: Vec::new(),
            };
            for (i, column) in columns.iter().enumerate() {
                let bytes = match row.get_ref(i).expect("a column") {
                    ValueRef::Null => continue,
                    ValueRef::Integer(n) => n.to_string().into_bytes(),
                    ValueRef::Real(f) => f.to_string().into_bytes(),
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
                };
                if table == "items" && column == "t" {
                    item.item_type = String::from_utf8_lossy(&bytes).into_owned();
                }
                if table == "items" && column == "attrs" {
                    item.attributes.extend(decode_attrs(&bytes));
                } else {
                    item.attributes.push((column.clone(), bytes));
                }
            }
            if table == "items" {
                raw.items.push(item);
            } else {
                // Not an item (schema bookkeeping): searched for personal values like everything else.
                let flat = item
                    .attributes
                    .into_iter()
                    .flat_map(|(n, v)| [n.into_bytes(), b"=".to_vec(), v, b"\n".to_vec()].concat());
                raw.files
                    .push((format!("table {table}, one row"), flat.collect()));
            }
        }
    }
    raw
}

/// The SQLite backend's `attrs` column: `0x01`, then per attribute a u16 LE name length, the name, a tag
/// and the value (`S`: u32 LE length + UTF-8, `N`: i64 LE, `B`: u32 LE length + bytes, `T`/`F`).
/// Numbers come out as decimal text, like the DynamoDB reader's.
fn decode_attrs(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> &'a [u8] {
        assert!(b.len() >= n, "the attrs column is truncated");
        let (head, tail) = b.split_at(n);
        *b = tail;
        head
    }
    let mut b = bytes;
    assert_eq!(take(&mut b, 1), [1], "attrs format version 1");
    let mut out = Vec::new();
    while !b.is_empty() {
        let len = usize::from(u16::from_le_bytes(take(&mut b, 2).try_into().expect("u16")));
        let name = String::from_utf8(take(&mut b, len).to_vec()).expect("a UTF-8 attribute name");
        let value = match take(&mut b, 1) {
            [b'S'] | [b'B'] => {
                let len = u32::from_le_bytes(take(&mut b, 4).try_into().expect("u32"));
                take(&mut b, usize::try_from(len).expect("usize")).to_vec()
            }
            [b'N'] => i64::from_le_bytes(take(&mut b, 8).try_into().expect("i64"))
                .to_string()
                .into_bytes(),
            [b'T'] => b"true".to_vec(),
            [b'F'] => b"false".to_vec(),
            other => panic!("unknown attrs tag {other:?}"),
        };
        out.push((name, value));
    }
    out
}

/// The whole table, each item with its type (the `t` attribute) and its flattened attributes.
async fn raw_dynamodb(client: &aws_sdk_dynamodb::Client, table: &str) -> RawStore {
    let items = moto::scan_table(client, table)
        .await
        .into_iter()
        .map(|attributes| RawItem {
            item_type: attributes.iter().find(|(name, _)| name == "t").map_or_else(
                || "<no type>".to_owned(),
                |(_, t)| String::from_utf8_lossy(t).into_owned(),
            ),
            attributes,
        })
        .collect();
    RawStore {
        items,
        ..RawStore::default()
    }
}
