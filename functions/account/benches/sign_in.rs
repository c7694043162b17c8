//! Sign-in cost: the argon2id hash and verify times (criterion), and the store and KMS calls of one whole
//! sign-in through the account handler, cold (first request of a process) and warm, then of a wrong
//! password and of an address no account holds (both answered 401).
//!
//! Run with `cargo bench -p qchat-account --bench sign_in`.

#![allow(clippy::print_stdout)] // a benchmark prints its figures

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use qchat_shared::app::{App, Stores};
use qchat_shared::clock::{Clock, SystemClock};
use qchat_shared::config::Config;
use qchat_shared::crypto::conformance::CountingKeyring;
use qchat_shared::crypto::{Keyring, LocalKeyring};
use qchat_shared::domain::Password;
use qchat_shared::ids::RandomIds;
use qchat_shared::mail::outbox::OutboxMailer;
use qchat_shared::messenger::outbox::OutboxMessenger;
use qchat_shared::password;
use qchat_shared::store::ItemStore;
use qchat_shared::store::sqlite::SqliteStore;
use qchat_shared::test_support::counting::CountingStore;

fn or_die<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("bench set-up failed: {what}: {e}"),
    }
}

fn argon2(c: &mut Criterion) {
    let pw = or_die(Password::parse("violet tram conducts 7 owls"), "password");
    let hash = or_die(password::hash(&pw), "hash");
    let mut group = c.benchmark_group("argon2id m=19MiB t=2 p=1");
    group.sample_size(20);
    group.bench_function("hash", |b| b.iter(|| password::hash(&pw)));
    group.bench_function("verify", |b| b.iter(|| password::verify(&pw, &hash)));
    group.finish();
}

/// The system clock plus an offset the bench moves forward (past the mail throttle's quarter hour).
#[derive(Debug, Default)]
struct SkipClock(std::sync::atomic::AtomicI64);

impl SkipClock {
    fn skip_secs(&self, s: i64) {
        self.0
            .fetch_add(s * 1000, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for SkipClock {
    fn now(&self) -> qchat_shared::clock::Timestamp {
        SystemClock
            .now()
            .plus_millis(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

struct Rig {
    app: App,
    clock: Arc<SkipClock>,
    store: Arc<CountingStore>,
    keys: Arc<CountingStore>,
    keyring: Arc<CountingKeyring>,
    _dir: tempfile::TempDir,
}

fn rig() -> Rig {
    let dir = or_die(tempfile::tempdir(), "temp dir");
    let skip = Arc::new(SkipClock::default());
    let clock: Arc<dyn Clock> = skip.clone();
    let sqlite = or_die(
        SqliteStore::open(&dir.path().join("db"), clock.clone()),
        "sqlite",
    );
    let store = Arc::new(CountingStore::new(Arc::new(sqlite)));
    let key_sqlite = or_die(
        SqliteStore::open(&dir.path().join("keys"), clock.clone()),
        "sqlite",
    );
    let keys = Arc::new(CountingStore::new(Arc::new(key_sqlite)));
    let local: Arc<dyn Keyring> = Arc::new(or_die(
        LocalKeyring::open(&dir.path().join("key")),
        "keyring",
    ));
    let keyring = Arc::new(CountingKeyring::new(local));
    let config = or_die(Config::from_lookup(|_| None), "config");
    let app = App::from_parts(
        config,
        Stores {
            main: store.clone() as Arc<dyn ItemStore>,
            keys: keys.clone() as Arc<dyn ItemStore>,
        },
        keyring.clone() as Arc<dyn Keyring>,
        Arc::new(OutboxMailer::new(
            dir.path().join("mail"),
            "qchat@example.com".into(),
            clock.clone(),
        )),
        Arc::new(OutboxMessenger::new(
            dir.path().join("m.jsonl"),
            clock.clone(),
            Arc::new(RandomIds),
        )),
        clock,
        Arc::new(RandomIds),
    );
    Rig {
        app,
        clock: skip,
        store,
        keys,
        keyring,
        _dir: dir,
    }
}

impl Rig {
    /// The calls of both stores (the email claims and data keys are in the key store).
    fn calls(&self) -> qchat_shared::test_support::counting::StoreCalls {
        self.store.calls() + self.keys.calls()
    }
}

fn request(method: &str, path: &str, body: &str) -> qchat_shared::http::Request {
    let mut req = http::Request::new(bytes::Bytes::from(body.to_owned()));
    *req.method_mut() = or_die(method.parse(), "method");
    *req.uri_mut() = or_die(path.parse(), "uri");
    if !body.is_empty() {
        req.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    req.extensions_mut()
        .insert(qchat_shared::http::ClientAddr(std::net::IpAddr::from([
            203, 0, 113, 7,
        ])));
    req
}

/// Registers `email` with `body` and uses the link mailed to it, as its owner would: the account exists.
fn register_and_confirm(rt: &tokio::runtime::Runtime, app: &App, email: &str, body: &str) {
    rt.block_on(qchat_account::handle(
        app,
        request("POST", "/api/accounts", body),
    ));
    let link = or_die(
        rt.block_on(qchat_shared::test_support::links::link_token(
            app,
            "confirm_registration",
            email,
        ))
        .ok_or("no confirmation mail"),
        "confirmation link",
    );
    let mut confirm = request("POST", &format!("/verify-email/{link}"), "");
    confirm.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    rt.block_on(qchat_account::handle(app, confirm));
}

/// One sign-in's calls: the first in a fresh process (cold key cache) and a later one (warm).
fn sign_in_calls(_: &mut Criterion) {
    let rt = or_die(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "runtime",
    );
    let register = r#"{"email":"bench@example.com","password":"violet tram conducts 7 owls","accepted_policy_version":"1"}"#;
    let sign_in = r#"{"email":"bench@example.com","password":"violet tram conducts 7 owls","remember":false}"#;
    // Register in one "process", then sign in from a fresh one over the same files (cold caches).
    let first = rig();
    register_and_confirm(&rt, &first.app, "bench@example.com", register);
    let cold_app = App::from_parts(
        (*first.app.config).clone(),
        Stores {
            main: first.store.clone() as Arc<dyn ItemStore>,
            keys: first.keys.clone() as Arc<dyn ItemStore>,
        },
        first.keyring.clone() as Arc<dyn Keyring>,
        first.app.mailer.clone(),
        first.app.messenger.clone(),
        first.app.clock.clone(),
        first.app.ids.clone(),
    );
    let wrong =
        r#"{"email":"bench@example.com","password":"not the password at all","remember":false}"#;
    let unknown = r#"{"email":"nobody@example.com","password":"violet tram conducts 7 owls","remember":false}"#;
    for (label, body) in [
        ("cold", sign_in),
        ("warm", sign_in),
        ("wrong password", wrong),
        ("unknown address", unknown),
    ] {
        let (s0, g0, d0) = (
            first.calls(),
            first.keyring.generates(),
            first.keyring.decrypts(),
        );
        let started = std::time::Instant::now();
        let resp = rt.block_on(qchat_account::handle(
            &cold_app,
            request("POST", "/api/sessions", body),
        ));
        let elapsed = started.elapsed();
        let s1 = first.calls();
        println!(
            "sign-in ({label}): status {}, {:.1} ms, store calls {} (get {}, query {}, put {}, delete {}, transact {}), KMS calls {} (generate {}, decrypt {})",
            resp.status().as_u16(),
            elapsed.as_secs_f64() * 1000.0,
            s1.total() - s0.total(),
            s1.get - s0.get,
            s1.query - s0.query,
            s1.put - s0.put,
            s1.delete - s0.delete,
            s1.transact - s0.transact,
            first.keyring.generates() - g0 + first.keyring.decrypts() - d0,
            first.keyring.generates() - g0,
            first.keyring.decrypts() - d0,
        );
    }
}

/// Registration of a free address and of one that has an account, and a wrong password for an address
/// with and without an account: the same answers, and (the point of this measurement) the same store work
/// and about the same time, so the timing tells nobody which addresses are registered. Medians of 9
/// requests each, interleaved.
fn registration_timing(_: &mut Criterion) {
    let rt = or_die(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "runtime",
    );
    let rig = rig();
    let body = |email: &str| {
        format!(
            r#"{{"email":"{email}","password":"violet tram conducts 7 owls","accepted_policy_version":"1"}}"#
        )
    };
    // Nine accounts, so each "taken" request is the first to its address; then past the quarter hour
    // in which their own registration mails went, so no mail throttle is in play.
    for i in 0..9 {
        let email = format!("taken{i}@example.com");
        register_and_confirm(&rt, &rig.app, &email, &body(&email));
    }
    rig.clock.skip_secs(16 * 60);
    let mut times: [(Vec<f64>, Vec<u16>, usize, usize); 2] = Default::default();
    for i in 0..9 {
        for (k, email) in [
            format!("free{i}@example.com"),
            format!("taken{i}@example.com"),
        ]
        .iter()
        .enumerate()
        {
            let calls = rig.calls().total();
            let kms = rig.keyring.decrypts() + rig.keyring.generates();
            let started = std::time::Instant::now();
            let resp = rt.block_on(qchat_account::handle(
                &rig.app,
                request("POST", "/api/accounts", &body(email)),
            ));
            times[k].0.push(started.elapsed().as_secs_f64() * 1000.0);
            times[k].1.push(resp.status().as_u16());
            times[k].2 = rig.calls().total() - calls;
            times[k].3 = rig.keyring.decrypts() + rig.keyring.generates() - kms;
        }
    }
    // A wrong password for an address with an account, and any password for an address without one.
    // The accounts' keys were last used more than the key cache's age ago, as in a process that has not
    // served these accounts yet.
    let mut signs: [(Vec<f64>, Vec<u16>, usize, usize); 2] = Default::default();
    for i in 0..9 {
        for (k, email) in [
            format!("taken{i}@example.com"),
            format!("nobody{i}@example.com"),
        ]
        .iter()
        .enumerate()
        {
            let body = format!(
                r#"{{"email":"{email}","password":"not the password at all","remember":false}}"#
            );
            let calls = rig.calls().total();
            let kms = rig.keyring.decrypts() + rig.keyring.generates();
            let started = std::time::Instant::now();
            let resp = rt.block_on(qchat_account::handle(
                &rig.app,
                request("POST", "/api/sessions", &body),
            ));
            signs[k].0.push(started.elapsed().as_secs_f64() * 1000.0);
            signs[k].1.push(resp.status().as_u16());
            signs[k].2 = rig.calls().total() - calls;
            signs[k].3 = rig.keyring.decrypts() + rig.keyring.generates() - kms;
        }
    }
    let labelled = [
        "registration (free address)",
        "registration (taken address)",
    ]
    .into_iter()
    .zip(times)
    .chain(
        [
            "wrong password (known address)",
            "sign-in (unknown address)",
        ]
        .into_iter()
        .zip(signs),
    );
    for (label, (mut ms, statuses, calls, kms)) in labelled {
        ms.sort_by(f64::total_cmp);
        println!(
            "{label}: statuses {statuses:?}, median {:.1} ms (min {:.1}, max {:.1}), store calls {calls}, KMS calls {kms} (the last request of each)",
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() - 1],
        );
    }
}

criterion_group!(benches, argon2, sign_in_calls, registration_timing);
criterion_main!(benches);
