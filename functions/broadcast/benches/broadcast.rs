//! The broadcast engine's figures (printed, not timed tests), against a fake Send API on 127.0.0.1:
//! - the sustained send rate at configured 20, 100 and 250 messages/s when Meta answers after 100 ms
//!   (real time: the tokio timer, the system clock), measured between the first and the last request
//!   the fake received, on the SQLite store;
//! - for a broadcast to 100 000 leads on the SQLite store, and to 2 000 on DynamoDB and KMS on moto
//!   (run on a manual clock that the sender's waits move, so pacing takes no time): the runner's peak
//!   RSS, the store calls per recipient by operation, and the keyring (KMS) calls per recipient once
//!   the account's key is cached.
//!
//! The runner's memory is measured apart: this process writes the leads and serves the fake Send API,
//! then runs the runner in a child process (this same binary, `--runner`) that opens the same store,
//! sends the broadcast and prints its own `VmHWM`. So the figure holds what a runner holds (its store
//! connections, key cache, batches, tasks) and nothing of the seeding or the fake.
//!
//! Run with `cargo bench -p qchat-broadcast`; after `--`: `--leads N` and `--moto-leads N` size the
//! large broadcasts (`--moto-leads 0` skips moto), `--large-only` skips the rate runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::broadcast::{Audience, Broadcasts, Draft, Sleeper, set_page_rate};
use qchat_shared::clock::{Clock, ManualClock, SystemClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::conformance::CountingKeyring;
use qchat_shared::crypto::kms::KmsKeyring;
use qchat_shared::crypto::{Keyring, LocalKeyring};
use qchat_shared::domain::{AccountId, LeadId, PageId};
use qchat_shared::ids::RandomIds;
use qchat_shared::inventory::{LEAD, PAGE};
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::record::{status_partition, status_sort_key};
use qchat_shared::leads::{LeadStatus, lead_key};
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::graph::{self, GraphMessenger};
use qchat_shared::pages::page_key;
use qchat_shared::store::dynamodb::DynamoStore;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{Condition, Item, ItemStore, Value, WriteOp};
use qchat_shared::test_support::counting::CountingStore;
use qchat_shared::test_support::{moto, unique_name};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PAGE_ID: &str = "1000000001";

/// Answers every send after `delay`, and notes when each request arrived.
#[derive(Clone)]
struct Fake {
    delay: Duration,
    arrivals: Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl Respond for Fake {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        let mut arrivals = self.arrivals.lock().unwrap();
        arrivals.push(Instant::now());
        let n = arrivals.len();
        ResponseTemplate::new(200)
            .set_body_json(
                serde_json::json!({ "recipient_id": "1", "message_id": format!("m_{n}") }),
            )
            .set_delay(self.delay)
    }
}

/// Moves a manual clock by each wait instead of sleeping.
#[derive(Debug)]
struct Skip(Arc<ManualClock>);

#[async_trait::async_trait]
impl Sleeper for Skip {
    async fn sleep(&self, duration: Duration) {
        self.0
            .advance_millis(i64::try_from(duration.as_millis()).unwrap());
    }
}

struct Rig {
    app: App,
    store: Arc<CountingStore>,
    keyring: Arc<CountingKeyring>,
    account: AccountId,
    page: PageId,
    fake: Fake,
    server: MockServer,
    dir: tempfile::TempDir,
}

/// Where the store and keys live. The runner's child is told which on its command line.
#[derive(Debug, Clone)]
enum Backend {
    /// SQLite files and the local keyring's master key in the rig's directory.
    Sqlite,
    /// DynamoDB and KMS on the moto emulator (its address: `QCHAT_TEST_MOTO_ENDPOINT` in the child).
    Moto {
        table: String,
        key_table: String,
        key_id: String,
    },
}

impl Backend {
    /// Fresh tables and a KMS key on moto (started once per process).
    async fn moto() -> Self {
        let sdk = moto::sdk_config().await;
        let key_id = moto::create_kms_key(&aws_sdk_kms::Client::new(&sdk), "qchat-bench")
            .await
            .unwrap();
        Self::Moto {
            table: unique_name("bench"),
            key_table: unique_name("bench-keys"),
            key_id,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Moto { .. } => "DynamoDB and KMS on moto",
        }
    }
}

/// The app over the backend's stores (for SQLite, the files in `dir`), its store and keyring counted,
/// its Graph client pointed at `send_api` (the rig's process and the runner's child open the same
/// data).
async fn open_app(
    dir: &Path,
    backend: &Backend,
    clock: Arc<dyn Clock>,
    send_api: String,
) -> (App, Arc<CountingStore>, Arc<CountingKeyring>) {
    // The key store (data keys, email claims) is not counted: the data keys are cached, so its calls
    // are a handful per run, not per event.
    let (main, keys, keyring): (Arc<dyn ItemStore>, Arc<dyn ItemStore>, Arc<dyn Keyring>) =
        match backend {
            Backend::Sqlite => (
                Arc::new(SqliteStore::open(&dir.join("qchat.sqlite3"), clock.clone()).unwrap()),
                Arc::new(SqliteStore::open(&dir.join("keys.sqlite3"), clock.clone()).unwrap()),
                Arc::new(LocalKeyring::open(&dir.join("master.key")).unwrap()),
            ),
            Backend::Moto {
                table,
                key_table,
                key_id,
            } => {
                let sdk = moto::sdk_config().await;
                let client = aws_sdk_dynamodb::Client::new(&sdk);
                (
                    Arc::new(DynamoStore::new(
                        client.clone(),
                        table.clone(),
                        clock.clone(),
                    )),
                    Arc::new(DynamoStore::new(client, key_table.clone(), clock.clone())),
                    Arc::new(KmsKeyring::new(
                        aws_sdk_kms::Client::new(&sdk),
                        key_id.clone(),
                    )),
                )
            }
        };
    let store = Arc::new(CountingStore::new(main));
    let keyring = Arc::new(CountingKeyring::new(keyring));
    let d = dir.to_string_lossy().into_owned();
    let config = Config::from_lookup(|n| match n {
        "QCHAT_DATA_DIR" => Some(d.clone()),
        "QCHAT_PUBLIC_URL" => Some("https://qchat.example.test".to_owned()),
        _ => None,
    })
    .unwrap();
    let messenger = GraphMessenger::new(
        graph::http_client().unwrap(),
        send_api,
        "v21.0".to_owned(),
        None,
    )
    .unwrap();
    let app = App::from_parts(
        config,
        qchat_shared::app::Stores {
            main: store.clone(),
            keys,
        },
        keyring.clone(),
        Arc::new(OutboxMailer::new(
            dir.join("mail"),
            "q <n@qchat.example.test>".to_owned(),
            clock.clone(),
        )),
        Arc::new(messenger),
        clock,
        Arc::new(RandomIds),
    );
    (app, store, keyring)
}

async fn rig(clock: Arc<dyn Clock>, delay: Duration, backend: &Backend) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let fake = Fake {
        delay,
        arrivals: Arc::default(),
    };
    // Request recording off: 100 000 kept requests would be the fake's memory, not the runner's.
    let server = MockServer::builder()
        .disable_request_recording()
        .start()
        .await;
    Mock::given(method("POST"))
        .respond_with(fake.clone())
        .mount(&server)
        .await;
    let (app, store, keyring) = open_app(dir.path(), backend, clock, server.uri()).await;
    app.store.ensure_schema().await.unwrap();
    app.key_store.ensure_schema().await.unwrap();
    let account = AccountId::generate(app.ids.as_ref());
    app.keys.create(&account_key_owner(&account)).await.unwrap();
    let page = PageId::parse(PAGE_ID).unwrap();
    let cipher = app.keys.cipher(&account_key_owner(&account)).await.unwrap();
    let key = page_key(&page);
    let token = cipher
        .seal(&key, "access_token", b"bench-page-token")
        .unwrap();
    let item = Item::new(&PAGE, key)
        .plain("account_id", Value::S(account.as_str().to_owned()))
        .unwrap()
        .sealed("access_token", token)
        .unwrap()
        .plain("sending", Value::S("active".to_owned()))
        .unwrap()
        .with_version(1);
    app.store.put(item, Condition::NotExists).await.unwrap();
    Rig {
        app,
        store,
        keyring,
        account,
        page,
        fake,
        server,
        dir,
    }
}

/// `n` subscribed leads inside the 24-hour window, 25 to a transaction.
async fn seed(rig: &Rig, n: usize) {
    let cipher = rig
        .app
        .keys
        .cipher(&account_key_owner(&rig.account))
        .await
        .unwrap();
    let now = rig.app.clock.now();
    let mut groups = Vec::new();
    let mut ops = Vec::new();
    for i in 0..n {
        let psid = format!("{}", 7_000_000_000_000_000u64 + i as u64);
        // A random id without its key-store lookup: the broadcast reads leads by page, never by person.
        let id = LeadId::generate(rig.app.ids.as_ref());
        let key = lead_key(&rig.page, &id);
        let created = now.plus_days(-10).plus_millis(i as i64);
        let item = Item::new(&LEAD, key.clone())
            .sealed(
                "subject",
                cipher.seal(&key, "subject", psid.as_bytes()).unwrap(),
            )
            .unwrap()
            .plain("subject_kind", Value::S("psid".into()))
            .unwrap()
            .plain("status", Value::S("subscribed".into()))
            .unwrap()
            .plain("created", Value::N(created.millis()))
            .unwrap()
            .plain("last_message_at", Value::N(now.plus_secs(-60).millis()))
            .unwrap()
            .with_version(1)
            .with_gsi1(
                status_partition(&rig.page, LeadStatus::Subscribed),
                status_sort_key(created, &id),
            );
        ops.push(WriteOp::Put {
            item,
            condition: Condition::NotExists,
        });
        if ops.len() == 25 {
            groups.push(std::mem::take(&mut ops));
        }
        if groups.len() == 40 {
            rig.store
                .transact_each(std::mem::take(&mut groups))
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
}

async fn broadcast(app: &App, account: &AccountId, page: &PageId, broadcasts: &Broadcasts) {
    broadcasts
        .create(
            account,
            page,
            Draft {
                text: "Fresh bread at 7".to_owned(),
                buttons: Vec::new(),
                send_at: app.clock.now(),
                audience: Audience::default(),
            },
        )
        .await
        .unwrap();
    let jobs = Jobs::new(app.store.clone(), app.clock.clone(), app.ids.clone(), 900);
    let handler = broadcasts.job_handler();
    jobs.run_due("bench", app.clock.now().plus_days(1), &[&handler])
        .await
        .unwrap();
}

/// A figure of this process's `/proc/self/status` (`VmHWM`: the peak resident set), in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn sustained(rate: u32) {
    let rig = rig(
        Arc::new(SystemClock),
        Duration::from_millis(100),
        &Backend::Sqlite,
    )
    .await;
    set_page_rate(&rig.app, &rig.account, &rig.page, rate)
        .await
        .unwrap();
    // About 12 seconds of sending.
    let n = rate as usize * 12;
    seed(&rig, n).await;
    let broadcasts = Broadcasts::new(&rig.app);
    broadcast(&rig.app, &rig.account, &rig.page, &broadcasts).await;
    let arrivals = rig.fake.arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), n, "every lead was sent to");
    let span = arrivals[n - 1].duration_since(arrivals[0]).as_secs_f64();
    let measured = (n - 1) as f64 / span;
    println!(
        "sustained rate at {rate}/s (Meta answers after 100 ms): {measured:.1}/s over {n} messages \
         ({:+.1} %)",
        (measured / f64::from(rate) - 1.0) * 100.0
    );
}

/// The start of the large broadcast's manual clock.
const LARGE_START_MS: i64 = 1_800_000_000_000;

/// Writes `n` leads, then runs the runner in a child process (see the module doc) and checks that the
/// fake got every message.
async fn large(n: usize, backend: Backend) {
    let clock = Arc::new(ManualClock::at(Timestamp::from_millis(LARGE_START_MS)));
    let rig = rig(clock.clone(), Duration::ZERO, &backend).await;
    set_page_rate(&rig.app, &rig.account, &rig.page, 250)
        .await
        .unwrap();
    seed(&rig, n).await;
    let Rig {
        app,
        store,
        keyring,
        account,
        fake,
        server,
        dir,
        ..
    } = rig;
    // This process's store is closed before the runner opens the files.
    drop((app, store, keyring));
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .arg("--runner")
        .arg(dir.path())
        .arg(account.as_str())
        .arg(server.uri())
        .arg(n.to_string());
    if let Backend::Moto {
        table,
        key_table,
        key_id,
    } = &backend
    {
        child
            .args([table, key_table, key_id])
            .env(moto::ENDPOINT_VAR, moto::endpoint());
    }
    let status = tokio::task::spawn_blocking(move || child.status())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "the runner failed");
    assert_eq!(
        fake.arrivals.lock().unwrap().len(),
        n,
        "every lead was sent to"
    );
}

/// The child: opens the store files, sends a broadcast to the `n` leads, prints its figures.
fn runner(dir: &Path, account: &str, send_api: String, n: usize, backend: &Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let clock = Arc::new(ManualClock::at(Timestamp::from_millis(LARGE_START_MS)));
        let (app, store, keyring) = open_app(dir, backend, clock.clone(), send_api).await;
        let account = AccountId::parse(account).unwrap();
        let page = PageId::parse(PAGE_ID).unwrap();
        let broadcasts = Broadcasts::new(&app).with_sleeper(Arc::new(Skip(clock)));
        let store_before = store.calls();
        let kms_before = keyring.decrypts() + keyring.generates();
        let started = Instant::now();
        broadcast(&app, &account, &page, &broadcasts).await;
        let took = started.elapsed();
        let calls = store.calls();
        let kms = keyring.decrypts() + keyring.generates() - kms_before;
        let per = |x: usize, y: usize| (x - y) as f64 / n as f64;
        println!(
            "{n}-lead broadcast on {}: peak RSS of the runner {:.1} MB (at the end: {:.1} MB, of which heap and \
             other anonymous memory {:.1} MB, mapped files {:.1} MB); {:.1} s on this machine without pacing",
            backend.name(),
            status_mb("VmHWM"),
            status_mb("VmRSS"),
            status_mb("RssAnon"),
            status_mb("RssFile"),
            took.as_secs_f64()
        );
        println!(
            "store calls per recipient: {:.3} in all — writes {:.3} (transactions {:.3}, puts {:.3}, deletes {:.3}), \
             reads {:.3} (gets {:.3}, queries {:.4})",
            per(calls.total(), store_before.total()),
            per(
                calls.transact + calls.put + calls.delete + calls.transact_each,
                store_before.transact
                    + store_before.put
                    + store_before.delete
                    + store_before.transact_each
            ),
            per(calls.transact, store_before.transact),
            per(calls.put, store_before.put),
            per(calls.delete, store_before.delete),
            per(
                calls.get + calls.query,
                store_before.get + store_before.query
            ),
            per(calls.get, store_before.get),
            per(calls.query, store_before.query),
        );
        println!(
            "keyring (KMS) calls during the broadcast: {kms} ({:.5} per recipient)",
            kms as f64 / n as f64
        );
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--runner") {
        let backend = match args.get(6..9) {
            Some([table, key_table, key_id]) => Backend::Moto {
                table: table.clone(),
                key_table: key_table.clone(),
                key_id: key_id.clone(),
            },
            _ => Backend::Sqlite,
        };
        runner(
            Path::new(&args[2]),
            &args[3],
            args[4].clone(),
            args[5].parse().unwrap(),
            &backend,
        );
        return;
    }
    // `cargo test --benches` runs benches once as tests; only `cargo bench` measures.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    // `-- --leads N` sizes the large broadcast (default 100 000).
    let leads = args
        .iter()
        .position(|a| a == "--leads")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // `-- --large-only` skips the rate runs.
        if !args.iter().any(|a| a == "--large-only") {
            for rate in [20, 100, 250] {
                sustained(rate).await;
            }
        }
        large(leads, Backend::Sqlite).await;
        // `-- --moto-leads N`: the same on DynamoDB and KMS on moto (default 2 000: the emulator
        // answers some tens of requests a second on the test VM; 0 skips it).
        let moto_leads = args
            .iter()
            .position(|a| a == "--moto-leads")
            .and_then(|i| args.get(i + 1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(2_000);
        if moto_leads > 0 {
            large(moto_leads, Backend::moto().await).await;
        }
    });
}
