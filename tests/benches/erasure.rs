//! Account erasure and account export at size (printed figures, not timed tests), on SQLite and on the
//! moto emulator (DynamoDB; the keyring is the local one on both, so no KMS call is timed):
//! - an account registered, confirmed and signed in through the account function, with a page connected
//!   through it; then `n` leads written straight into the store as the webhook writes them (subject and
//!   marketing token sealed, an opt-in ref's blind index, a consent chain of 2 records, an unsubscribe
//!   link; a random lead id with its lookup and entry in the key store), a broadcast made through the
//!   broadcast engine (scheduled, not sent) and one delivery record per lead;
//! - the export: every page of `GET /api/account/export` through the erase function's handler, in a
//!   CHILD process that opens the same stores, so its peak RSS (`VmHWM` at its end) is the export's and
//!   not the seeding's: time, pages, largest page, store calls;
//! - the erasure: `DELETE /api/account` through the erase function, the receipt mail delivered by
//!   notify, then the erase runner (`qchat_erase::run_due`) run as the schedule runs it: each run gets
//!   the Lambda's 55 s as its deadline, and the clock moves to the next minute between runs. Store calls by
//!   kind (both stores), with the batch writes the DynamoDB backend sends for them (`BatchWriteItem` of
//!   at most 25 deletes) and any Scan.
//!
//! Run with `cargo bench -p qchat-tests --bench erasure`. `QCHAT_BENCH_LEADS` (default `10000,100000`)
//! sets the SQLite sizes, `QCHAT_BENCH_MOTO_LEADS` (default `1000`; empty: none) the emulator's (one
//! Python process answering every call: 10 000 leads take most of an hour there on a shared 2-core VM).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use qchat_shared::app::{App, Stores, account_key_owner};
use qchat_shared::broadcast::{Audience, Broadcasts, Draft};
use qchat_shared::clock::{Clock, SystemClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::{Keyring, LocalKeyring, OneWayHash};
use qchat_shared::domain::{AccountId, PageId, Psid};
use qchat_shared::ids::RandomIds;
use qchat_shared::inventory::{DELIVERY, LEAD, UNSUBSCRIBE_LINK};
use qchat_shared::leads::consent::{Action, ConsentEvent, ConsentRecord, GENESIS_HASH};
use qchat_shared::leads::record::{status_partition, status_sort_key};
use qchat_shared::leads::{LeadStatus, Subject, lead_key, lookup};
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::store::dynamodb::DynamoStore;
use qchat_shared::store::{Condition, Item, ItemKey, ItemStore, Value, WriteOp};
use qchat_shared::test_support::counting::{CountingStore, StoreCalls};
use qchat_shared::test_support::{moto, moto_stores, sqlite_stores};

const PAGE_ID: &str = "1000000001";
const EMAIL: &str = "bench@example.com";
const PASSWORD: &str = "violet tram conducts 7 owls";
/// The erase runner's Lambda timeout (`EraseRunnerFunction`), the deadline each run gets.
const RUN_SECS: i64 = 55;

/// The system clock plus an offset the bench moves forward between runs (the next minute's tick).
#[derive(Debug, Default)]
struct SkipClock(AtomicI64);

impl SkipClock {
    fn skip(&self, d: Duration) {
        self.0
            .fetch_add(i64::try_from(d.as_millis()).unwrap(), Ordering::SeqCst);
    }
}

impl Clock for SkipClock {
    fn now(&self) -> Timestamp {
        SystemClock.now().plus_millis(self.0.load(Ordering::SeqCst))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Moto,
}

/// Where the child finds the parent's stores.
#[derive(Debug, Clone)]
struct Place {
    dir: PathBuf,
    /// The moto tables (main, keys); `None`: the SQLite files in `dir`.
    tables: Option<(String, String)>,
    endpoint: Option<String>,
}

struct Rig {
    app: App,
    store: Arc<CountingStore>,
    keys: Arc<CountingStore>,
    clock: Arc<SkipClock>,
}

impl Place {
    fn to_json(&self) -> String {
        serde_json::json!({
            "dir": self.dir,
            "tables": self.tables,
            "endpoint": self.endpoint,
        })
        .to_string()
    }

    fn from_json(raw: &str) -> Self {
        let v: serde_json::Value = serde_json::from_str(raw).unwrap();
        let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        Self {
            dir: PathBuf::from(v["dir"].as_str().unwrap()),
            tables: s(&v["tables"][0]).zip(s(&v["tables"][1])),
            endpoint: s(&v["endpoint"]),
        }
    }
}

impl Rig {
    fn calls(&self) -> Calls {
        let (a, b) = (self.store.batches(), self.keys.batches());
        Calls {
            calls: self.store.calls() + self.keys.calls(),
            batches: (a.0 + b.0, a.1 + b.1, a.2 + b.2),
        }
    }
}

async fn dynamo_client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&moto::sdk_config().await)
}

async fn open(place: &Place, stores: Option<Stores>) -> Rig {
    let clock = Arc::new(SkipClock::default());
    let stores = match (stores, &place.tables) {
        (Some(s), _) => s,
        (None, None) => sqlite_stores(&place.dir, clock.clone()),
        (None, Some((main, keys))) => {
            let client = dynamo_client().await;
            Stores {
                main: Arc::new(DynamoStore::new(
                    client.clone(),
                    main.clone(),
                    clock.clone(),
                )),
                keys: Arc::new(DynamoStore::new(client, keys.clone(), clock.clone())),
            }
        }
    };
    let store = Arc::new(CountingStore::new(stores.main));
    let keys = Arc::new(CountingStore::new(stores.keys));
    let keyring: Arc<dyn Keyring> =
        Arc::new(LocalKeyring::open(&place.dir.join("master.key")).unwrap());
    let d = place.dir.to_string_lossy().into_owned();
    let config = Config::from_lookup(|n| match n {
        "QCHAT_DATA_DIR" => Some(d.clone()),
        "QCHAT_PUBLIC_URL" => Some("https://qchat.example.test".to_owned()),
        _ => None,
    })
    .unwrap();
    let app = App::from_parts(
        config,
        Stores {
            main: store.clone() as Arc<dyn ItemStore>,
            keys: keys.clone() as Arc<dyn ItemStore>,
        },
        keyring,
        Arc::new(OutboxMailer::new(
            place.dir.join("mail"),
            "qchat@example.com".into(),
            clock.clone(),
        )),
        Arc::new(OutboxMessenger::new(
            place.dir.join("messenger.jsonl"),
            clock.clone(),
            Arc::new(RandomIds),
        )),
        clock.clone(),
        Arc::new(RandomIds),
    );
    Rig {
        app,
        store,
        keys,
        clock,
    }
}

fn request(
    method: &str,
    path: &str,
    body: &str,
    token: Option<&str>,
) -> qchat_shared::http::Request {
    let mut req = http::Request::new(bytes::Bytes::from(body.to_owned()));
    *req.method_mut() = method.parse().unwrap();
    *req.uri_mut() = path.parse().unwrap();
    let headers = req.headers_mut();
    if !body.is_empty() {
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    if let Some(token) = token {
        headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
    }
    req.extensions_mut()
        .insert(qchat_shared::http::ClientAddr(std::net::IpAddr::from([
            203, 0, 113, 7,
        ])));
    req
}

fn body_json(resp: &qchat_shared::http::Response) -> serde_json::Value {
    serde_json::from_slice(resp.body()).unwrap_or(serde_json::Value::Null)
}

/// Registers, confirms, signs in and connects the page, through the account function; the session token
/// and the account.
async fn account(rig: &Rig) -> (String, AccountId) {
    let app = &rig.app;
    let register =
        format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}","accepted_policy_version":"1"}}"#);
    let r = qchat_account::handle(app, request("POST", "/api/accounts", &register, None)).await;
    assert_eq!(r.status().as_u16(), 202);
    let link = qchat_shared::test_support::links::link_token(app, "confirm_registration", EMAIL)
        .await
        .expect("a confirmation mail");
    let mut confirm = request("POST", &format!("/verify-email/{link}"), "", None);
    confirm.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    qchat_account::handle(app, confirm).await;
    let sign_in = format!(r#"{{"email":"{EMAIL}","password":"{PASSWORD}","remember":true}}"#);
    let r = qchat_account::handle(app, request("POST", "/api/sessions", &sign_in, None)).await;
    assert_eq!(r.status().as_u16(), 200, "signed in");
    let token = body_json(&r)["token"].as_str().unwrap().to_owned();
    let r = qchat_account::handle(app, request("GET", "/api/account", "", Some(&token))).await;
    let account = AccountId::parse(body_json(&r)["id"].as_str().unwrap()).unwrap();
    let connect = format!(
        r#"{{"page_id":"{PAGE_ID}","page_access_token":"sample-page-token-{PAGE_ID}","name":"Bench Bakery"}}"#
    );
    let r = qchat_account::handle(app, request("POST", "/api/pages", &connect, Some(&token))).await;
    assert_eq!(r.status().as_u16(), 201, "page connected");
    (token, account)
}

/// `n` leads as the webhook writes them after a "Yes" (two consent records), each with its unsubscribe
/// link, a broadcast (scheduled) and one delivery record per lead; 25 writes to a transaction.
async fn seed(rig: &Rig, account: &AccountId, n: usize) {
    let app = &rig.app;
    let page = PageId::parse(PAGE_ID).unwrap();
    let indexer = app.keys.blind_indexer().await.unwrap();
    let cipher = app.keys.cipher(&account_key_owner(account)).await.unwrap();
    let now = app.clock.now();
    let broadcast = Broadcasts::new(app)
        .create(
            account,
            &page,
            Draft {
                text: "Fresh bread at 7".to_owned(),
                buttons: Vec::new(),
                send_at: now.plus_days(1),
                audience: Audience::default(),
            },
        )
        .await
        .unwrap()
        .id;
    let mut ops = Vec::new();
    let mut groups = Vec::new();
    let (mut key_ops, mut key_groups) = (Vec::new(), Vec::new());
    for i in 0..n {
        let psid = format!("{}", 7_000_000_000_000_000u64 + i as u64);
        // A random id and its lookup and entry in the key store, as the webhook's claim writes them.
        let lookup::Found { id: lead, secret } = lookup::propose(app.ids.as_ref(), now).unwrap();
        let index =
            lookup::subject_index(&indexer, &page, &Subject::Psid(Psid::parse(&psid).unwrap()));
        key_ops.extend(lookup::claim_ops(&page, &index, &lead, &secret.unwrap(), now).unwrap());
        if key_ops.len() + 2 > qchat_shared::store::MAX_TRANSACTION_OPS {
            key_groups.push(std::mem::take(&mut key_ops));
        }
        let key = lead_key(&page, &lead);
        let created = now.plus_days(-10).plus_millis(i as i64);
        let (mut seq, mut head) = (0, GENESIS_HASH.to_owned());
        for (action, wording) in [
            (Action::OptIn, "Sent a first message."),
            (Action::OptIn, "Answered Yes to the consent question."),
        ] {
            let record = ConsentRecord::chain(
                &lead,
                seq,
                &head,
                ConsentEvent {
                    action,
                    source: "first_message".into(),
                    meta_ref: Some(format!("m_{i}_{seq}")),
                    meta_timestamp: Some(created.millis()),
                    received_at: created,
                    policy_version: "1".into(),
                    consent_mode: "explicit".into(),
                    wording: wording.into(),
                },
            );
            ops.push(record.append_op(&page, &lead).unwrap());
            seq = record.seq;
            head = record.hash;
        }
        let link_hash = OneWayHash::sha256_of(format!("{PAGE_ID}-{i}").as_bytes());
        let item = Item::new(&LEAD, key.clone())
            .sealed(
                "subject",
                cipher.seal(&key, "subject", psid.as_bytes()).unwrap(),
            )
            .and_then(|it| {
                it.sealed(
                    "marketing_token",
                    cipher
                        .seal(&key, "marketing_token", format!("mtok-{i}").as_bytes())
                        .unwrap(),
                )
            })
            .and_then(|it| {
                it.blind_index(
                    "optin_ref",
                    &qchat_shared::broadcast::optin_ref_index(&indexer, &page, "spring"),
                )
            })
            .and_then(|it| it.plain("subject_kind", Value::S("psid".into())))
            .and_then(|it| it.plain("status", Value::S("subscribed".into())))
            .and_then(|it| it.plain("created", Value::N(created.millis())))
            .and_then(|it| it.plain("consent_seq", Value::N(i64::try_from(seq).unwrap())))
            .and_then(|it| it.plain("consent_head", Value::S(head)))
            .and_then(|it| it.hashed("unsubscribe_hash", &link_hash))
            .unwrap()
            .with_version(2)
            .with_gsi1(
                status_partition(&page, LeadStatus::Subscribed),
                status_sort_key(created, &lead),
            );
        ops.push(WriteOp::Put {
            item,
            condition: Condition::NotExists,
        });
        let link = Item::new(
            &UNSUBSCRIBE_LINK,
            qchat_shared::leads::unsubscribe_key(&link_hash),
        )
        .plain("page_id", Value::S(PAGE_ID.into()))
        .and_then(|it| it.plain("lead_id", Value::S(lead.as_str().into())))
        .and_then(|it| it.plain("created", Value::N(created.millis())))
        .unwrap();
        ops.push(WriteOp::Put {
            item: link,
            condition: Condition::NotExists,
        });
        let delivery = Item::new(
            &DELIVERY,
            ItemKey::new(
                qchat_shared::broadcast::sender::deliveries_partition(&page, &broadcast),
                format!("LEAD#{lead}"),
            ),
        )
        .plain("state", Value::S("sent".into()))
        .and_then(|it| it.plain("via", Value::S("update".into())))
        .and_then(|it| it.plain("step", Value::N(1)))
        .and_then(|it| it.plain("at", Value::N(now.millis())))
        .unwrap()
        .with_version(2)
        .expires_at(now.plus_days(30));
        ops.push(WriteOp::Put {
            item: delivery,
            condition: Condition::NotExists,
        });
        // Whole leads per transaction (5 items each), at most 25 items.
        if ops.len() + 5 > qchat_shared::store::MAX_TRANSACTION_OPS {
            groups.push(std::mem::take(&mut ops));
        }
        if groups.len() == 40 {
            rig.store
                .transact_each(std::mem::take(&mut groups))
                .await
                .unwrap();
        }
        if key_groups.len() == 40 {
            rig.keys
                .transact_each(std::mem::take(&mut key_groups))
                .await
                .unwrap();
        }
    }
    if !ops.is_empty() {
        groups.push(ops);
    }
    if !groups.is_empty() {
        rig.store.transact_each(groups).await.unwrap();
    }
    if !key_ops.is_empty() {
        key_groups.push(key_ops);
    }
    if !key_groups.is_empty() {
        rig.keys.transact_each(key_groups).await.unwrap();
    }
}

/// `VmHWM` (peak resident set) of this process, in MB.
fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Store calls of both stores, with `delete_many`'s batch writes and any Scan.
#[derive(Debug, Clone, Copy)]
struct Calls {
    calls: StoreCalls,
    /// `BatchWriteItem` requests, keys they deleted, Scan pages.
    batches: (usize, usize, usize),
}

impl Calls {
    fn minus(self, b: Self) -> Self {
        let (a, o) = (self.calls, b.calls);
        Self {
            calls: StoreCalls {
                get: a.get - o.get,
                put: a.put - o.put,
                delete: a.delete - o.delete,
                query: a.query - o.query,
                transact: a.transact - o.transact,
                transact_each: a.transact_each - o.transact_each,
                delete_many: a.delete_many - o.delete_many,
                get_many: a.get_many - o.get_many,
            },
            batches: (
                self.batches.0 - b.batches.0,
                self.batches.1 - b.batches.1,
                self.batches.2 - b.batches.2,
            ),
        }
    }

    fn describe(&self) -> String {
        let c = &self.calls;
        let (writes, keys, scans) = self.batches;
        format!(
            "{} (get {}, query {}, put {}, delete {}, transact {}, delete_many {} = {writes} batch writes of ≤ 25 for {keys} keys, scan {scans})",
            c.total() + scans,
            c.get,
            c.query,
            c.put,
            c.delete,
            c.transact + c.transact_each,
            c.delete_many,
        )
    }
}

/// The child: reads the whole export through the erase function's handler and prints one JSON line.
async fn export_child(place: Place, token: String) {
    let rig = open(&place, None).await;
    let started = Instant::now();
    let (mut pages, mut largest, mut leads) = (0usize, 0usize, 0usize);
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/account/export?cursor={c}"),
            None => "/api/account/export".to_owned(),
        };
        let r = qchat_erase::handle(&rig.app, request("GET", &path, "", Some(&token))).await;
        assert_eq!(r.status().as_u16(), 200, "export page");
        largest = largest.max(r.body().len());
        pages += 1;
        let page = body_json(&r);
        if page["section"] == "leads" {
            leads += page["items"].as_array().map_or(0, Vec::len);
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let took = started.elapsed();
    let calls = rig.calls();
    println!(
        "{}",
        serde_json::json!({
            "secs": took.as_secs_f64(),
            "pages": pages,
            "largest": largest,
            "leads": leads,
            "peak_rss_mb": peak_rss_mb(),
            "calls": calls.describe(),
        })
    );
}

async fn bench(backend: Backend, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (place, stores) = match backend {
        Backend::Sqlite => (
            Place {
                dir: dir.path().to_owned(),
                tables: None,
                endpoint: None,
            },
            None,
        ),
        Backend::Moto => {
            let client = dynamo_client().await;
            let (stores, main, keys) =
                moto_stores(&client, "erasebench", Arc::new(SystemClock)).await;
            (
                Place {
                    dir: dir.path().to_owned(),
                    tables: Some((main, keys)),
                    endpoint: Some(moto::endpoint()),
                },
                Some(stores),
            )
        }
    };
    let rig = open(&place, stores).await;
    let (token, account) = account(&rig).await;
    let started = Instant::now();
    seed(&rig, &account, n).await;
    println!(
        "{backend:?}, {n} leads: seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The export, in a fresh process over the same stores.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--export-child")
        .arg(place.to_json())
        .arg(&token)
        .envs(place.endpoint.iter().map(|e| (moto::ENDPOINT_VAR, e)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the export child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    let figures: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(figures["leads"], n, "every lead is exported");
    println!(
        "{backend:?}, {n} leads: export {:.1} s over {} pages (largest {:.0} KB), peak RSS of the exporting process {:.1} MB; store calls {}",
        figures["secs"].as_f64().unwrap(),
        figures["pages"],
        figures["largest"].as_f64().unwrap() / 1024.0,
        figures["peak_rss_mb"].as_f64().unwrap(),
        figures["calls"].as_str().unwrap(),
    );

    // The erasure: asked for, the receipt mail sent, then the runner every minute.
    let before = rig.calls();
    let body = format!(r#"{{"password":"{PASSWORD}"}}"#);
    let r = qchat_erase::handle(
        &rig.app,
        request("DELETE", "/api/account", &body, Some(&token)),
    )
    .await;
    assert_eq!(r.status().as_u16(), 202, "erasure queued");
    let code = body_json(&r)["erasure"]["confirmation_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let request_calls = rig.calls().minus(before);
    qchat_notify::drain_due(&rig.app, rig.app.clock.now().plus_secs(60))
        .await
        .unwrap();
    let before = rig.calls();
    let jobs = qchat_shared::jobs::Jobs::new(
        rig.app.store.clone(),
        rig.app.clock.clone(),
        rig.app.ids.clone(),
        qchat_erase::JOB_LEASE_SECS,
    );
    let started = Instant::now();
    let mut runs = 0;
    let mut slowest = Duration::ZERO;
    while jobs.is_pending(&code).await.unwrap() {
        assert!(runs < 1000, "the erasure never ends");
        let run_started = Instant::now();
        let deadline = rig.app.clock.now().plus_secs(RUN_SECS);
        qchat_erase::run_due(&rig.app, "bench", deadline)
            .await
            .unwrap();
        runs += 1;
        let took = run_started.elapsed();
        slowest = slowest.max(took);
        // The next tick, a minute after this one began.
        rig.clock.skip(Duration::from_secs(60).saturating_sub(took));
    }
    let took = started.elapsed();
    let calls = rig.calls().minus(before);
    let mut status = request("GET", &format!("/deletion/{code}"), "", None);
    status.headers_mut().insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("application/json"),
    );
    let receipt = body_json(&qchat_erase::handle(&rig.app, status).await);
    assert_eq!(receipt["status"], "completed", "{receipt}");
    println!(
        "{backend:?}, {n} leads: erasure request store calls {}",
        request_calls.describe()
    );
    println!(
        "{backend:?}, {n} leads: erasure {:.1} s of work in {runs} runs of at most {RUN_SECS} s (slowest {:.1} s); store calls {}; erased {}",
        took.as_secs_f64(),
        slowest.as_secs_f64(),
        calls.describe(),
        receipt["erased"],
    );
}

fn sizes(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(at) = args.iter().position(|a| a == "--export-child") {
        let place = Place::from_json(&args[at + 1]);
        rt.block_on(export_child(place, args[at + 2].clone()));
        return;
    }
    for n in sizes("QCHAT_BENCH_LEADS", "10000,100000") {
        rt.block_on(bench(Backend::Sqlite, n));
    }
    for n in sizes("QCHAT_BENCH_MOTO_LEADS", "1000") {
        rt.block_on(bench(Backend::Moto, n));
    }
}
