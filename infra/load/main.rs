//! `qchat-load`: a load benchmark of the local server over real HTTP, run by `infra/load.sh`.
//!
//! It seeds a data folder with one account, one connected page (confirmed consent mode: every new
//! person gets the consent question as a reply) and a session, starts the release `qchat-local` on it,
//! posts correctly signed webhook bodies from N keep-alive connections for a while, and prints events/s,
//! latency percentiles, non-2xx answers, the server's RSS, and the reply lag: how long after the last
//! acknowledged event the last reply reached the Messenger outbox. `--list` then times the page's lead
//! list, page by page. The data folder can be kept (`--data-dir`) so that runs add up to a large store.
//!
//! Bodies are built and signed before they are timed, exactly as Meta signs them (HMAC-SHA256 of the raw
//! body under the app secret), so the client costs little of the machine the server shares.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use qchat_shared::app::{App, account_key_owner, local_files};
use qchat_shared::auth::session_key;
use qchat_shared::config::Config;
use qchat_shared::domain::{AccountId, PageId, SessionToken};
use qchat_shared::inventory::{PAGE, SESSION};
use qchat_shared::pages::page_key;
use qchat_shared::store::{Condition, Item, Value};

const SECRET: &str = "qchat-load-app-secret";
const PAGE_ID: &str = "1000000001";
const TOKEN_FILE: &str = "load-session-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every event from a person never seen before.
    New,
    /// The same bodies again and again: duplicates, stored once.
    Replay,
}

#[derive(Debug)]
struct Args {
    server: PathBuf,
    data_dir: Option<PathBuf>,
    connections: usize,
    seconds: u64,
    per_body: usize,
    mode: Mode,
    list: bool,
    lag_timeout: u64,
}

const USAGE: &str = "usage: qchat-load [--server PATH] [--data-dir DIR] [--connections N] [--seconds S] \
[--per-body K] [--mode new|replay] [--list] [--lag-timeout S]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        server: PathBuf::from("target/release/qchat-local"),
        data_dir: None,
        connections: 32,
        seconds: 20,
        per_body: 1,
        mode: Mode::New,
        list: false,
        lag_timeout: 300,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: not a number"))
        };
        match flag.as_str() {
            "--server" => args.server = PathBuf::from(value()?),
            "--data-dir" => args.data_dir = Some(PathBuf::from(value()?)),
            "--connections" => args.connections = number(value()?)?.max(1) as usize,
            "--seconds" => args.seconds = number(value()?)?.max(1),
            "--per-body" => args.per_body = number(value()?)?.clamp(1, 100) as usize,
            "--lag-timeout" => args.lag_timeout = number(value()?)?,
            "--mode" => {
                args.mode = match value()?.as_str() {
                    "new" => Mode::New,
                    "replay" => Mode::Replay,
                    _ => return Err(format!("--mode is new or replay\n{USAGE}")),
                }
            }
            "--list" => args.list = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ => return Err(format!("unknown argument {flag}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn config(data_dir: &Path) -> Result<Config, String> {
    let dir = data_dir.to_string_lossy().into_owned();
    Config::from_lookup(|name| match name {
        "QCHAT_DATA_DIR" => Some(dir.clone()),
        "QCHAT_FB_APP_SECRET" => Some(SECRET.to_owned()),
        "QCHAT_FB_VERIFY_TOKEN" => Some("qchat-load".to_owned()),
        _ => None,
    })
    .map_err(|e| e.to_string())
}

/// One account with a connected page and a session, written straight into the store (the account flow
/// needs a mailed link; this is a benchmark of the webhook, not of sign-up). Idempotent: a folder seeded
/// before keeps its session.
async fn seed(data_dir: &Path) -> Result<String, String> {
    let token_path = data_dir.join(TOKEN_FILE);
    if let Ok(token) = std::fs::read_to_string(&token_path) {
        return Ok(token.trim().to_owned());
    }
    let app = App::from_config(config(data_dir)?)
        .await
        .map_err(|e| format!("could not open the data folder: {e}"))?;
    let fail = |e: &dyn std::fmt::Display| format!("seeding failed: {e}");
    let account = AccountId::generate(app.ids.as_ref());
    let owner = account_key_owner(&account);
    app.keys.create(&owner).await.map_err(|e| fail(&e))?;
    let cipher = app.keys.cipher(&owner).await.map_err(|e| fail(&e))?;
    let page = PageId::parse(PAGE_ID).map_err(|e| fail(&e))?;
    let key = page_key(&page);
    let sealed = cipher
        .seal(
            &key,
            "access_token",
            format!("sample-page-token-{PAGE_ID}").as_bytes(),
        )
        .map_err(|e| fail(&e))?;
    let now = app.clock.now();
    let page_item = Item::new(&PAGE, key)
        .plain("account_id", Value::S(account.as_str().to_owned()))
        .and_then(|i| i.sealed("access_token", sealed))
        .and_then(|i| i.plain("connected_at", Value::N(now.millis())))
        .and_then(|i| i.plain("consent_mode", Value::S("confirmed".to_owned())))
        .and_then(|i| i.plain("sending", Value::S("active".to_owned())))
        .and_then(|i| i.plain("name", Value::S("Load test page".to_owned())))
        .map_err(|e| fail(&e))?
        .with_version(1)
        .with_gsi1(format!("ACCOUNT#{account}#PAGES"), PAGE_ID);
    app.store
        .put(page_item, Condition::NotExists)
        .await
        .map_err(|e| fail(&e))?;
    let token = SessionToken::generate();
    let session = Item::new(&SESSION, session_key(&token))
        .plain("account_id", Value::S(account.as_str().to_owned()))
        .and_then(|i| i.plain("created", Value::N(now.millis())))
        .and_then(|i| i.plain("remember", Value::Bool(true)))
        .map_err(|e| fail(&e))?
        .expires_at(now.plus_days(30))
        .with_gsi1(
            format!("ACCOUNT#{account}#SESSIONS"),
            format!("{:013}#load", now.millis()),
        );
    app.store
        .put(session, Condition::NotExists)
        .await
        .map_err(|e| fail(&e))?;
    app.keys.blind_indexer().await.map_err(|e| fail(&e))?;
    std::fs::write(&token_path, token.expose()).map_err(|e| fail(&e))?;
    Ok(token.expose().to_owned())
}

/// A signed webhook body of `per_body` first messages; `next` numbers the senders.
fn body(per_body: usize, run: u64, next: &AtomicU64) -> (Bytes, String) {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let items: Vec<_> = (0..per_body)
        .map(|_| {
            let n = next.fetch_add(1, Ordering::Relaxed);
            serde_json::json!({
                "sender": { "id": format!("{run}{n:08}") },
                "recipient": { "id": PAGE_ID },
                "timestamp": now_ms,
                "message": { "mid": format!("m_load_{run}_{n}"), "text": "Hello! Do you deliver on Sundays?" }
            })
        })
        .collect();
    let raw = serde_json::to_vec(&serde_json::json!({
        "object": "page",
        "entry": [ { "id": PAGE_ID, "time": now_ms, "messaging": items } ]
    }))
    .unwrap_or_default();
    let signature = qchat_webhook::signature::sign(SECRET.as_bytes(), &raw);
    (Bytes::from(raw), signature)
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Result<Sender, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn send(
    sender: &mut Sender,
    addr: &str,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(u16, Bytes), String> {
    if sender.ready().await.is_err() {
        *sender = connect(addr).await?;
    }
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, body))
}

fn post(addr: &str, body: Bytes, signature: &str) -> hyper::Request<Full<Bytes>> {
    let mut request = hyper::Request::new(Full::new(body));
    *request.method_mut() = hyper::Method::POST;
    *request.uri_mut() = "/webhook".parse().unwrap_or_default();
    let headers = request.headers_mut();
    if let Ok(v) = addr.parse() {
        headers.insert(hyper::header::HOST, v);
    }
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = signature.parse() {
        headers.insert("x-hub-signature-256", v);
    }
    request
}

/// Resident set size of a process in KiB, where Linux tells.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Lines in the Messenger outbox: replies sent so far.
fn outbox_lines(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |b| bytecount(&b))
}

fn bytecount(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

struct Totals {
    latencies_us: Vec<u32>,
    ok: u64,
    non_2xx: u64,
    errors: u64,
}

async fn run_load(args: &Args, addr: &str, run: u64) -> Result<(Totals, Duration), String> {
    let next = Arc::new(AtomicU64::new(0));
    // Replays post a fixed set of bodies, first once to store them.
    let replays: Arc<Vec<(Bytes, String)>> = Arc::new(if args.mode == Mode::Replay {
        let set: Vec<_> = (0..256).map(|_| body(args.per_body, run, &next)).collect();
        let mut sender = connect(addr).await?;
        for (b, s) in &set {
            send(&mut sender, addr, post(addr, b.clone(), s)).await?;
        }
        set
    } else {
        Vec::new()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..args.connections {
        let (addr, next, stop, replays) =
            (addr.to_owned(), next.clone(), stop.clone(), replays.clone());
        let (mode, per_body) = (args.mode, args.per_body);
        tasks.push(tokio::spawn(async move {
            let mut totals = Totals {
                latencies_us: Vec::with_capacity(1 << 16),
                ok: 0,
                non_2xx: 0,
                errors: 0,
            };
            let mut sender = match connect(&addr).await {
                Ok(s) => s,
                Err(_) => {
                    totals.errors += 1;
                    return totals;
                }
            };
            let mut i = task;
            while !stop.load(Ordering::Relaxed) {
                let (b, s) = match mode {
                    Mode::New => body(per_body, run, &next),
                    Mode::Replay => replays[i % replays.len()].clone(),
                };
                i += 7;
                let began = Instant::now();
                match send(&mut sender, &addr, post(&addr, b, &s)).await {
                    Ok((status, _)) => {
                        let us = began.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                        totals.latencies_us.push(us);
                        if (200..300).contains(&status) {
                            totals.ok += 1;
                        } else {
                            totals.non_2xx += 1;
                        }
                    }
                    Err(_) => totals.errors += 1,
                }
            }
            totals
        }));
    }
    tokio::time::sleep(Duration::from_secs(args.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Totals {
        latencies_us: Vec::new(),
        ok: 0,
        non_2xx: 0,
        errors: 0,
    };
    for t in tasks {
        let t = t
            .await
            .map_err(|e| format!("a connection task failed: {e}"))?;
        all.latencies_us.extend(t.latencies_us);
        all.ok += t.ok;
        all.non_2xx += t.non_2xx;
        all.errors += t.errors;
    }
    Ok((all, started.elapsed()))
}

/// Pages through the lead list with `GET /api/pages/{page}/leads`, timing each page.
async fn list_leads(addr: &str, token: &str) -> Result<(), String> {
    let mut sender = connect(addr).await?;
    let mut cursor: Option<String> = None;
    let mut times = Vec::new();
    let mut leads = 0usize;
    let started = Instant::now();
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/pages/{PAGE_ID}/leads?cursor={c}"),
            None => format!("/api/pages/{PAGE_ID}/leads"),
        };
        let mut request = hyper::Request::new(Full::new(Bytes::new()));
        *request.uri_mut() = uri.parse().map_err(|e| format!("uri: {e}"))?;
        if let Ok(v) = format!("Bearer {token}").parse() {
            request
                .headers_mut()
                .insert(hyper::header::AUTHORIZATION, v);
        }
        if let Ok(v) = addr.parse() {
            request.headers_mut().insert(hyper::header::HOST, v);
        }
        let began = Instant::now();
        let (status, body) = send(&mut sender, addr, request).await?;
        times.push(began.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        if status != 200 {
            return Err(format!("lead list answered {status}"));
        }
        let page: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("lead list: {e}"))?;
        leads += page["leads"].as_array().map_or(0, Vec::len);
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let total = started.elapsed();
    let first = times.first().copied().unwrap_or(0);
    let last = times.last().copied().unwrap_or(0);
    times.sort_unstable();
    println!(
        "lead list: {leads} leads in {} pages, {:.1} s; per page p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         first page {:.2} ms, last page {:.2} ms",
        times.len(),
        total.as_secs_f64(),
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        percentile(&times, 100.0),
        f64::from(first) / 1000.0,
        f64::from(last) / 1000.0,
    );
    Ok(())
}

async fn wait_for(addr: &str) -> Result<(), String> {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err("the server did not start listening within 30 s".to_owned())
}

/// The run's own data folder (none with `--data-dir`, whose folder is kept so runs add up), removed
/// when the run ends, however it ends: a run at 10 messages a body leaves about half a gigabyte.
struct TemporaryFolder(Option<PathBuf>);

impl Drop for TemporaryFolder {
    fn drop(&mut self) {
        if let Some(folder) = &self.0
            && let Err(e) = std::fs::remove_dir_all(folder)
        {
            eprintln!("qchat-load: could not remove {}: {e}", folder.display());
        }
    }
}

async fn main_inner() -> Result<(), String> {
    let args = parse_args()?;
    if !args.server.exists() {
        return Err(format!(
            "{} does not exist: build it with `cargo build --profile bench -p qchat-local` (infra/load.sh does)",
            args.server.display()
        ));
    }
    let data_dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("qchat-load-{}", std::process::id())),
    };
    // Declared before the server, so dropped after it: the server is killed first.
    let _removed_at_end = TemporaryFolder(args.data_dir.is_none().then(|| data_dir.clone()));
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("data folder: {e}"))?;
    let token = seed(&data_dir).await?;
    let outbox = data_dir.join(local_files::MESSENGER_OUTBOX);
    let addr = format!("127.0.0.1:{}", free_port()?);
    let mut server = tokio::process::Command::new(&args.server)
        .env("QCHAT_DATA_DIR", &data_dir)
        .env("QCHAT_ADDR", &addr)
        .env("QCHAT_FB_APP_SECRET", SECRET)
        .env("QCHAT_FB_VERIFY_TOKEN", "qchat-load")
        .env("QCHAT_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", args.server.display()))?;
    let pid = server.id().unwrap_or(0);
    wait_for(&addr).await?;
    println!(
        "qchat-load: {} connections, {} s, {} message(s) per body, {:?} senders, server pid {pid}, data {}",
        args.connections,
        args.seconds,
        args.per_body,
        args.mode,
        data_dir.display()
    );
    let rss_start = rss_kib(pid).unwrap_or(0);
    let sent_before = outbox_lines(&outbox);
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() % 100_000_000_000);
    // RSS and reply backlog, sampled every second of the run.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut rss = Vec::new();
            while sampling.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(1)).await;
                rss.push(rss_kib(pid).unwrap_or(0));
            }
            rss
        })
    };
    let (mut totals, elapsed) = run_load(&args, &addr, run).await?;
    let acked_at = Instant::now();
    sampling.store(false, Ordering::Relaxed);
    let rss = sampler.await.unwrap_or_default();
    totals.latencies_us.sort_unstable();
    let events = totals.ok * args.per_body as u64;
    println!(
        "events/s {:.0} ({} bodies, {} events in {:.1} s); latency p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms, \
         max {:.2} ms; non-2xx {}, connection errors {}",
        events as f64 / elapsed.as_secs_f64(),
        totals.ok + totals.non_2xx,
        events,
        elapsed.as_secs_f64(),
        percentile(&totals.latencies_us, 50.0),
        percentile(&totals.latencies_us, 99.0),
        percentile(&totals.latencies_us, 99.9),
        percentile(&totals.latencies_us, 100.0),
        totals.non_2xx,
        totals.errors,
    );
    let mid = rss.get(rss.len() / 2).copied().unwrap_or(0);
    println!(
        "server RSS: {} MiB at start, {} MiB half-way, {} MiB at the end, {} MiB at most",
        rss_start / 1024,
        mid / 1024,
        rss.last().copied().unwrap_or(0) / 1024,
        rss.iter().copied().max().unwrap_or(0) / 1024,
    );
    if args.mode == Mode::New {
        // One reply (the consent question) per new person.
        let expected = sent_before + events;
        let at_end = outbox_lines(&outbox);
        println!(
            "replies: {} of {events} sent when the load stopped",
            at_end.saturating_sub(sent_before)
        );
        let deadline = acked_at + Duration::from_secs(args.lag_timeout);
        loop {
            let sent = outbox_lines(&outbox);
            if sent >= expected {
                println!(
                    "reply lag: the last reply went out {:.1} s after the last event was acknowledged",
                    acked_at.elapsed().as_secs_f64()
                );
                break;
            }
            if Instant::now() >= deadline {
                println!(
                    "reply lag: over {} s ({} replies still unsent)",
                    args.lag_timeout,
                    expected - sent
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    if args.list {
        list_leads(&addr, &token).await?;
    }
    let _ = server.kill().await;
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match main_inner().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qchat-load: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
