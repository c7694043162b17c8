//! The broadcast engine's figures (printed, not timed tests), on the SQLite store against a fake Send
//! API on 127.0.0.1:
//! - the sustained send rate at configured 20, 100 and 250 messages/s when Meta answers after 100 ms
//!   (real time: the tokio timer, the system clock), measured between the first and the last request
//!   the fake received;
//! - for a broadcast to 100 000 leads (run on a manual clock that the sender's waits move, so it takes
//!   minutes, not 400 s of pacing): the process's peak RSS while it runs (`VmHWM`, reset after the
//!   leads are written), the store calls per recipient by operation, and the keyring (KMS) calls per
//!   recipient once the account's key is cached.
//!
//! Run with `cargo bench -p qchat-tests --bench broadcast` (issue 12 names `qchat-broadcast`: the bench
//! moves there once that crate exists).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use qchat_shared::app::{App, account_key_owner};
use qchat_shared::broadcast::{Audience, Broadcasts, Draft, Sleeper, set_page_rate};
use qchat_shared::clock::{Clock, ManualClock, SystemClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::LocalKeyring;
use qchat_shared::crypto::conformance::CountingKeyring;
use qchat_shared::domain::{AccountId, LeadId, PageId};
use qchat_shared::ids::RandomIds;
use qchat_shared::inventory::{LEAD, PAGE};
use qchat_shared::jobs::Jobs;
use qchat_shared::leads::record::{status_partition, status_sort_key};
use qchat_shared::leads::{LeadStatus, lead_key};
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::graph::{self, GraphMessenger};
use qchat_shared::pages::page_key;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{Condition, Item, ItemStore, Value, WriteOp};
use qchat_shared::test_support::counting::CountingStore;
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
    _server: MockServer,
    _dir: tempfile::TempDir,
}

async fn rig(clock: Arc<dyn Clock>, delay: Duration) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("qchat.sqlite3"), clock.clone()).unwrap();
    sqlite.ensure_schema().await.unwrap();
    let store = Arc::new(CountingStore::new(Arc::new(sqlite)));
    // The key store (data keys, email claims) is not counted: the data keys are cached, so its calls
    // are a handful per run, not per event.
    let key_store =
        Arc::new(SqliteStore::open(&dir.path().join("keys.sqlite3"), clock.clone()).unwrap());
    let keyring = Arc::new(CountingKeyring::new(Arc::new(
        LocalKeyring::open(&dir.path().join("master.key")).unwrap(),
    )));
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
    let d = dir.path().to_string_lossy().into_owned();
    let config = Config::from_lookup(|n| match n {
        "QCHAT_DATA_DIR" => Some(d.clone()),
        "QCHAT_PUBLIC_URL" => Some("https://qchat.example.test".to_owned()),
        _ => None,
    })
    .unwrap();
    let messenger = GraphMessenger::new(
        graph::http_client().unwrap(),
        server.uri(),
        "v21.0".to_owned(),
        None,
    )
    .unwrap();
    let ids = Arc::new(RandomIds);
    let app = App::from_parts(
        config,
        qchat_shared::app::Stores {
            main: store.clone(),
            keys: key_store,
        },
        keyring.clone(),
        Arc::new(OutboxMailer::new(
            dir.path().join("mail"),
            "q <n@qchat.example.test>".to_owned(),
            clock.clone(),
        )),
        Arc::new(messenger),
        clock,
        ids,
    );
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
        _server: server,
        _dir: dir,
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

async fn broadcast(rig: &Rig, broadcasts: &Broadcasts) {
    broadcasts
        .create(
            &rig.account,
            &rig.page,
            Draft {
                text: "Fresh bread at 7".to_owned(),
                buttons: Vec::new(),
                send_at: rig.app.clock.now(),
                audience: Audience::default(),
            },
        )
        .await
        .unwrap();
    let jobs = Jobs::new(
        rig.app.store.clone(),
        rig.app.clock.clone(),
        rig.app.ids.clone(),
        900,
    );
    let handler = broadcasts.job_handler();
    jobs.run_due("bench", rig.app.clock.now().plus_days(1), &[&handler])
        .await
        .unwrap();
}

/// `VmHWM` (peak resident set) of this process, in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

async fn sustained(rate: u32) {
    let rig = rig(Arc::new(SystemClock), Duration::from_millis(100)).await;
    set_page_rate(&rig.app, &rig.account, &rig.page, rate)
        .await
        .unwrap();
    // About 12 seconds of sending.
    let n = rate as usize * 12;
    seed(&rig, n).await;
    let broadcasts = Broadcasts::new(&rig.app);
    broadcast(&rig, &broadcasts).await;
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

async fn large(n: usize) {
    let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_800_000_000_000)));
    let rig = rig(clock.clone(), Duration::ZERO).await;
    set_page_rate(&rig.app, &rig.account, &rig.page, 250)
        .await
        .unwrap();
    seed(&rig, n).await;
    // Peak RSS from here on: the runner, not the seeding.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let broadcasts = Broadcasts::new(&rig.app).with_sleeper(Arc::new(Skip(clock)));
    let store_before = rig.store.calls();
    let kms_before = rig.keyring.decrypts() + rig.keyring.generates();
    let started = Instant::now();
    broadcast(&rig, &broadcasts).await;
    let took = started.elapsed();
    let calls = rig.store.calls();
    let kms = rig.keyring.decrypts() + rig.keyring.generates() - kms_before;
    let per = |x: usize, y: usize| (x - y) as f64 / n as f64;
    assert_eq!(rig.fake.arrivals.lock().unwrap().len(), n);
    println!(
        "{n}-lead broadcast: peak RSS {:.1} MB; {:.1} s on this machine without pacing",
        peak_rss_mb(),
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
}

fn main() {
    // `cargo test --benches` runs benches once as tests; only `cargo bench` measures.
    let args: Vec<String> = std::env::args().collect();
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
        for rate in [20, 100, 250] {
            sustained(rate).await;
        }
        large(leads).await;
    });
}
