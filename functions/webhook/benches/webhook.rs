//! Webhook throughput on the SQLite store: a signed batch of 100 messaging items from 100 new people
//! (implicit mode: lead, consent record, unsubscribe link and reply each), and the same batch again as
//! duplicates. Prints store and keyring calls per event, counted by decorators, and (on Linux) the bytes
//! the handling thread read and wrote per new lead — SQLite's page I/O, the cost that dominates here —
//! and new leads per CPU-second of the whole process: SQLite's checkpoint thread copies the written
//! pages into the database file on another core, work the wall-clock figure does not show.
//! After criterion, 100 batches run back to back on fresh stores of 20 000 and of 100 000 leads, so each
//! build is measured at the same two sizes (a larger store's index pages no longer fit SQLite's cache).
//! The clock moves 100 ms per batch, as time passes between real deliveries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use qchat_shared::app::{App, account_key_owner};
use qchat_shared::clock::{ManualClock, Timestamp};
use qchat_shared::config::Config;
use qchat_shared::crypto::LocalKeyring;
use qchat_shared::crypto::conformance::CountingKeyring;
use qchat_shared::domain::{AccountId, PageId};
use qchat_shared::ids::RandomIds;
use qchat_shared::inventory::PAGE;
use qchat_shared::mail::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::pages::page_key;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::store::{Condition, Item, ItemStore, Value};
use qchat_shared::test_support::counting::CountingStore;

const SECRET: &str = "bench-app-secret";
const PAGE_ID: &str = "1000000001";
const EVENTS: usize = 100;

struct Rig {
    app: App,
    clock: Arc<ManualClock>,
    store: Arc<CountingStore>,
    /// The key store: the lead lookups, per event; the data keys are cached.
    key_store: Arc<CountingStore>,
    keyring: Arc<CountingKeyring>,
    _dir: tempfile::TempDir,
}

async fn new_rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::at(Timestamp::from_millis(1_800_000_000_000)));
    let sqlite = SqliteStore::open(&dir.path().join("qchat.sqlite3"), clock.clone()).unwrap();
    sqlite.ensure_schema().await.unwrap();
    let store = Arc::new(CountingStore::new(Arc::new(sqlite)));
    // Counted with the main store: each event reads its person's lead lookup there, and a new lead
    // claims one (the data keys are cached: a handful of calls per run).
    let key_store = Arc::new(CountingStore::new(Arc::new(
        SqliteStore::open(&dir.path().join("keys.sqlite3"), clock.clone()).unwrap(),
    )));
    let keyring = Arc::new(CountingKeyring::new(Arc::new(
        LocalKeyring::open(&dir.path().join("master.key")).unwrap(),
    )));
    let d = dir.path().to_string_lossy().into_owned();
    let config = Config::from_lookup(|n| match n {
        "QCHAT_DATA_DIR" => Some(d.clone()),
        "QCHAT_PUBLIC_URL" => Some("https://qchat.example.test".to_owned()),
        "QCHAT_MAIL_FROM" => Some("noreply@qchat.example.test".to_owned()),
        "QCHAT_FB_APP_SECRET" => Some(SECRET.to_owned()),
        _ => None,
    })
    .unwrap();
    let ids = Arc::new(RandomIds);
    let app = App::from_parts(
        config,
        qchat_shared::app::Stores {
            main: store.clone(),
            keys: key_store.clone(),
        },
        keyring.clone(),
        Arc::new(OutboxMailer::new(
            dir.path().join("mail"),
            "q <n@qchat.example.test>".to_owned(),
            clock.clone(),
        )),
        Arc::new(OutboxMessenger::new(
            dir.path().join("m.jsonl"),
            clock.clone(),
            ids.clone(),
        )),
        clock.clone(),
        ids,
    );
    let account = AccountId::generate(app.ids.as_ref());
    let owner = account_key_owner(&account);
    app.keys.create(&owner).await.unwrap();
    let cipher = app.keys.cipher(&owner).await.unwrap();
    let page = PageId::parse(PAGE_ID).unwrap();
    let key = page_key(&page);
    let token = cipher
        .seal(&key, "access_token", b"EAAGbenchtoken")
        .unwrap();
    let item = Item::new(&PAGE, key)
        .plain("account_id", Value::S(account.as_str().to_owned()))
        .and_then(|i| i.sealed("access_token", token))
        .and_then(|i| i.plain("consent_mode", Value::S("implicit".to_owned())))
        .and_then(|i| i.plain("sending", Value::S("active".to_owned())))
        .unwrap()
        .with_version(1);
    app.store.put(item, Condition::NotExists).await.unwrap();
    app.keys.blind_indexer().await.unwrap();
    Rig {
        app,
        clock,
        store,
        key_store,
        keyring,
        _dir: dir,
    }
}

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A signed batch of 100 first messages from 100 people never seen before.
fn fresh_batch() -> (Vec<u8>, String) {
    let items: Vec<_> = (0..EVENTS)
        .map(|_| {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            serde_json::json!({
                "sender": { "id": format!("{}", 5_000_000_000u64 + n) },
                "recipient": { "id": PAGE_ID },
                "timestamp": 1_800_000_000_000u64 + n,
                "message": { "mid": format!("m_{n}"), "text": "hello" }
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({
        "object": "page",
        "entry": [ { "id": PAGE_ID, "time": 1, "messaging": items } ]
    }))
    .unwrap();
    let sig = qchat_webhook::signature::sign(SECRET.as_bytes(), &body);
    (body, sig)
}

/// CPU time in nanoseconds of every thread of this process, and of the calling thread, where Linux tells
/// (`schedstat`: time on a CPU, at the scheduler's resolution).
fn cpu_nanos() -> Option<(u64, u64)> {
    let on_cpu = |path: &std::path::Path| -> Option<u64> {
        std::fs::read_to_string(path)
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let mut all = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        all += on_cpu(&task.ok()?.path().join("schedstat"))?;
    }
    Some((
        all,
        on_cpu(std::path::Path::new("/proc/thread-self/schedstat"))?,
    ))
}

/// Bytes the calling thread has read and written through system calls, where Linux tells.
fn thread_io() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/thread-self/io").ok()?;
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("rchar:")?, field("wchar:")?))
}

async fn post(app: &App, body: &[u8], sig: &str) {
    let req = http::Request::builder()
        .method("POST")
        .uri("/webhook")
        .header("X-Hub-Signature-256", sig)
        .body(qchat_shared::http::Bytes::copy_from_slice(body))
        .unwrap();
    let r = qchat_webhook::handle(app, req).await;
    assert_eq!(r.status(), 200);
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let rig = rt.block_on(new_rig());

    // Calls per event, measured once outside the timing loop.
    let (body, sig) = fresh_batch();
    let (s0, k0) = (
        rig.store.calls().total() + rig.key_store.calls().total(),
        rig.keyring.decrypts() + rig.keyring.generates(),
    );
    let ((w0, wt0), t0, r0) = (
        rig.store.items_written(),
        rig.store.transactions(),
        rig.store.calls().get + rig.store.calls().query,
    );
    rt.block_on(post(&rig.app, &body, &sig));
    let (s1, k1) = (
        rig.store.calls().total() + rig.key_store.calls().total(),
        rig.keyring.decrypts() + rig.keyring.generates(),
    );
    let ((w1, wt1), t1, r1) = (
        rig.store.items_written(),
        rig.store.transactions(),
        rig.store.calls().get + rig.store.calls().query,
    );
    rt.block_on(post(&rig.app, &body, &sig));
    let (s2, k2) = (
        rig.store.calls().total() + rig.key_store.calls().total(),
        rig.keyring.decrypts() + rig.keyring.generates(),
    );
    let per = |n: usize| n as f64 / EVENTS as f64;
    println!(
        "new leads: {:.2} store calls/event, {:.2} keyring calls/event; duplicates: {:.2} store calls/event, {:.2} keyring calls/event",
        per(s1 - s0),
        per(k1 - k0),
        per(s2 - s1),
        per(k2 - k1)
    );
    // What DynamoDB bills: write units per item written (twice inside a transaction), read units per
    // get or query.
    println!(
        "new leads: {:.2} items written/event ({:.2} in {:.2} transactions), {:.2} reads (gets and queries)/event",
        per(w1 - w0),
        per(wt1 - wt0),
        per(t1 - t0),
        per(r1 - r0)
    );

    let mut g = c.benchmark_group("webhook");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sample_size(20);
    let next_batch = || {
        rig.clock.advance_millis(100);
        fresh_batch()
    };
    g.bench_function("100 new leads (implicit)", |b| {
        b.iter_batched(
            next_batch,
            |(body, sig)| rt.block_on(post(&rig.app, &body, &sig)),
            BatchSize::PerIteration,
        );
    });
    g.bench_function("100 duplicates", |b| {
        b.iter(|| rt.block_on(post(&rig.app, &body, &sig)));
    });
    g.finish();

    for stored_batches in STORED_BATCHES {
        sustained(&rt, stored_batches);
    }
}

/// Batches timed back to back by [`sustained`].
const BATCHES: u64 = 100;
/// The sizes of store [`sustained`] runs on, in batches of 100 leads: 20 000 and 100 000 leads.
const STORED_BATCHES: [u64; 2] = [200, 1_000];

/// Page I/O and CPU time of [`BATCHES`] batches of new leads back to back, on a fresh store that already
/// holds `stored_batches` batches of leads (the same size for every build, unlike the store criterion
/// leaves, which grows with the speed measured). The runtime runs `block_on` on this thread, so the
/// handler's (and SQLite's) reads and writes are counted here; the checkpoint thread's work is in the
/// process's CPU time, waited for at the end.
fn sustained(rt: &tokio::runtime::Runtime, stored_batches: u64) {
    let sized = rt.block_on(new_rig());
    let next_batch = || {
        sized.clock.advance_millis(100);
        fresh_batch()
    };
    for _ in 0..stored_batches {
        let (body, sig) = next_batch();
        rt.block_on(post(&sized.app, &body, &sig));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let batches: Vec<_> = (0..BATCHES).map(|_| next_batch()).collect();
    let (io0, cpu0, start) = (thread_io(), cpu_nanos(), std::time::Instant::now());
    for (body, sig) in &batches {
        rt.block_on(post(&sized.app, body, sig));
    }
    let wall = start.elapsed();
    let io1 = thread_io();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let events = BATCHES * EVENTS as u64;
    let stored = stored_batches * EVENTS as u64;
    if let (Some((r0, w0)), Some((r1, w1))) = (io0, io1) {
        println!(
            "new leads on {stored} leads: {} bytes read, {} bytes written per event by the handling thread",
            (r1 - r0) / events,
            (w1 - w0) / events
        );
    }
    if let (Some((all0, own0)), Some((all1, own1))) = (cpu0, cpu_nanos()) {
        let per_cpu_second = |nanos: u64| events as f64 * 1e9 / nanos.max(1) as f64;
        println!(
            "new leads, {BATCHES} batches on {stored} leads: {:.0} events/s; {:.0} events per CPU-second of \
             the whole process (handling thread {:.0}%, checkpoint thread and the rest {:.0}%)",
            events as f64 / wall.as_secs_f64(),
            per_cpu_second(all1 - all0),
            100.0 * (own1 - own0) as f64 / (all1 - all0).max(1) as f64,
            100.0 * (all1 - all0 - (own1 - own0)) as f64 / (all1 - all0).max(1) as f64,
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
