//! Cold start of each Lambda function's release binary: the binary is started as Lambda starts it,
//! against a stand-in of the Lambda Runtime API on 127.0.0.1 (`GET …/invocation/next`, `POST
//! …/invocation/{id}/response`), with the AWS backends on the moto emulator. Per function, the median
//! (and range) of N starts of:
//! - ready: spawn → the first `next` call (everything `main` does before serving: configuration,
//!   logging, SDK and client set-up);
//! - first invoke: the first event handed out → its response (first use of the clients: connections,
//!   the Meta secret read, the first random bytes);
//! - warm invoke: the same event again → its response.
//!
//! Build the binaries first, one function per command so each links only its own features:
//!   for f in account notify webhook optin broadcast erase; do cargo build --release -p qchat-$f; done
//!   cargo bench -p qchat-local --bench coldstart
//! `QCHAT_COLDSTART_BINS` names another folder of binaries (e.g. a copy of an older build),
//! `QCHAT_COLDSTART_RUNS` the number of starts per function (default 15). It also prints what the
//! first random bytes cost in a fresh process (AWS-LC seeding its generator), for the build at hand.
//!
//! What it cannot show: TLS (moto is plain HTTP on 127.0.0.1, so no handshake and no CA store read at
//! first use), Lambda's own sandbox and download time, and arm64.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a bench: fail loudly, print

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use qchat_shared::clock::SystemClock;
use qchat_shared::store::ItemStore as _;
use qchat_shared::store::dynamodb::DynamoStore;
use qchat_shared::test_support::{moto, unique_name};
use tokio::net::TcpListener;
use tokio::sync::Notify;

const APP_SECRET: &str = "coldstart-app-secret";
const VERIFY_TOKEN: &str = "coldstart-verify-token";

/// What the stand-in saw during one start.
#[derive(Debug, Default)]
struct Run {
    events: VecDeque<String>,
    ready: Option<Instant>,
    handed_out: Vec<Instant>,
    answered: Vec<(Instant, bool)>,
}

struct StandIn {
    run: Mutex<Run>,
    changed: Notify,
}

async fn serve(
    stand_in: Arc<StandIn>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let _ = req.into_body().collect().await;
    if path.ends_with("/invocation/next") {
        let event = {
            let mut run = stand_in.run.lock().unwrap();
            let now = Instant::now();
            run.ready.get_or_insert(now);
            let event = run.events.pop_front();
            if event.is_some() {
                run.handed_out.push(now);
            }
            event
        };
        stand_in.changed.notify_waiters();
        let Some(event) = event else {
            // No more events: hold the call, as Lambda does between invocations.
            std::future::pending::<()>().await;
            unreachable!()
        };
        let n = stand_in.run.lock().unwrap().handed_out.len();
        let response = hyper::Response::builder()
            .header("lambda-runtime-aws-request-id", format!("req-{n}"))
            .header(
                "lambda-runtime-deadline-ms",
                (now_ms() + 30_000).to_string(),
            )
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(Bytes::from(event)))
            .unwrap();
        return Ok(response);
    }
    let ok = path.ends_with("/response");
    if ok || path.ends_with("/error") {
        stand_in
            .run
            .lock()
            .unwrap()
            .answered
            .push((Instant::now(), ok));
        stand_in.changed.notify_waiters();
    }
    Ok(hyper::Response::builder()
        .status(202)
        .body(Full::new(Bytes::new()))
        .unwrap())
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// An API Gateway HTTP API (payload 2.0) request.
fn http_event(path: &str, query: &str) -> String {
    serde_json::json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": { "accept": "application/json", "host": "bench.example.test" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.example.test",
            "domainPrefix": "bench",
            "http": { "method": "GET", "path": path, "protocol": "HTTP/1.1",
                      "sourceIp": "203.0.113.9", "userAgent": "coldstart" },
            "requestId": "bench",
            "routeKey": "$default",
            "stage": "$default",
            "time": "03/Dec/2026:13:00:00 +0000",
            "timeEpoch": 1_800_000_000_000_i64
        },
        "isBase64Encoded": false
    })
    .to_string()
}

/// The moto resources every function's configuration names.
struct Aws {
    endpoint: String,
    table: String,
    key_table: String,
    key: String,
    secret_arn: String,
}

async fn aws() -> Aws {
    let sdk = moto::sdk_config().await;
    let table = unique_name("coldstart");
    let key_table = unique_name("coldstart-keys");
    for name in [&table, &key_table] {
        DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            name.clone(),
            Arc::new(SystemClock),
        )
        .ensure_schema()
        .await
        .expect("table");
    }
    let key = moto::create_kms_key(&aws_sdk_kms::Client::new(&sdk), "coldstart")
        .await
        .expect("key");
    let (_, keeper) =
        qchat_shared::meta_secrets::conformance::secretsmanager_on_moto(APP_SECRET, VERIFY_TOKEN)
            .await;
    Aws {
        endpoint: moto::endpoint(),
        table,
        key_table,
        key,
        secret_arn: keeper.arn,
    }
}

/// Times of one start: (ready, first invoke, warm invoke), and whether both invokes succeeded.
async fn start_once(
    bin: &PathBuf,
    name: &str,
    event: &str,
    aws: &Aws,
) -> (Duration, Duration, Duration, bool) {
    let stand_in = Arc::new(StandIn {
        run: Mutex::new(Run {
            events: VecDeque::from([event.to_owned(), event.to_owned()]),
            ..Run::default()
        }),
        changed: Notify::new(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = {
        let stand_in = stand_in.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let stand_in = stand_in.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| serve(stand_in.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
    };
    let mut command = tokio::process::Command::new(bin);
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", format!("qchat-{name}"))
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "coldstart")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/coldstart")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_ENDPOINT_URL", &aws.endpoint)
        .env("QCHAT_BACKEND", "aws")
        .env("QCHAT_TABLE_NAME", &aws.table)
        .env("QCHAT_KEY_TABLE_NAME", &aws.key_table)
        .env("QCHAT_KMS_KEY_ID", &aws.key)
        .env("QCHAT_MAIL_FROM", "notices@example.test")
        .env("QCHAT_PUBLIC_URL", "https://bench.example.test")
        .env("QCHAT_CONTROLLER_NAME", "Coldstart Bench")
        .env("QCHAT_CONTROLLER_EMAIL", "privacy@example.test")
        // Read only by binaries built before the secret was read at run time (for before/after runs).
        .env("QCHAT_FB_APP_SECRET", APP_SECRET)
        .env("QCHAT_FB_VERIFY_TOKEN", VERIFY_TOKEN)
        .env("QCHAT_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    // As the template does: only the functions that talk to Meta get the secret.
    if name != "optin" {
        command.env("QCHAT_META_SECRET_ARN", &aws.secret_arn);
    }
    for pass in ["SSL_CERT_FILE", "SSL_CERT_DIR", "PATH"] {
        if let Ok(v) = std::env::var(pass) {
            command.env(pass, v);
        }
    }
    let spawned = Instant::now();
    let mut child = command.spawn().expect("the function binary starts");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let notified = stand_in.changed.notified();
        if stand_in.run.lock().unwrap().answered.len() >= 2 {
            break;
        }
        tokio::select! {
            () = notified => {}
            status = child.wait() => panic!("{name} exited before answering twice: {status:?}"),
            () = tokio::time::sleep_until(deadline) => {
                panic!("{name} did not answer two invocations within 30 s")
            }
        }
    }
    let _ = child.kill().await;
    server.abort();
    let run = stand_in.run.lock().unwrap();
    let ready = run.ready.expect("ready") - spawned;
    let first = run.answered[0].0 - run.handed_out[0];
    let warm = run.answered[1].0 - run.handed_out[1];
    (ready, first, warm, run.answered.iter().all(|(_, ok)| *ok))
}

fn median_and_range(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "{:>6.1} ms ({:.1}–{:.1})",
        ms(v[v.len() / 2]),
        ms(v[0]),
        ms(v[v.len() - 1])
    )
}

/// In a fresh process: how long the first random bytes take (AWS-LC seeds its generator then).
fn first_random_bytes() {
    let started = Instant::now();
    let mut buf = [0u8; 32];
    aws_lc_rs::rand::fill(&mut buf).expect("random bytes");
    println!("{}", started.elapsed().as_micros());
}

fn main() {
    if std::env::args().any(|a| a == "--first-random-bytes") {
        first_random_bytes();
        return;
    }
    let runs: usize = std::env::var("QCHAT_COLDSTART_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
        .max(1);
    let bins = std::env::var("QCHAT_COLDSTART_BINS").map_or_else(
        |_| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release")),
        PathBuf::from,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let aws = aws().await;
        let functions = [
            ("account", http_event("/privacy", "")),
            ("notify", "{}".to_owned()),
            (
                "webhook",
                http_event(
                    "/webhook",
                    &format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=7"),
                ),
            ),
            ("optin", http_event("/u/unknown-token", "")),
            // The HTTP side of the two functions that also run on a schedule.
            ("broadcast", http_event("/api/pages/1/broadcasts", "")),
            ("erase", http_event("/deletion/unknown-code", "")),
        ];
        println!(
            "cold start, {runs} starts per function, binaries in {}",
            bins.display()
        );
        println!(
            "{:<9} {:>9} {:>26} {:>26} {:>26}",
            "function", "size", "spawn → ready", "first invoke", "warm invoke"
        );
        for (name, event) in &functions {
            let bin = bins.join(name);
            let Ok(metadata) = std::fs::metadata(&bin) else {
                println!("{name:<9} not in the folder: build it first (see this file's doc)");
                continue;
            };
            let size = metadata.len();
            let (mut ready, mut first, mut warm) = (Vec::new(), Vec::new(), Vec::new());
            let mut failed = 0;
            for _ in 0..runs {
                let (r, f, w, ok) = start_once(&bin, name, event, &aws).await;
                ready.push(r);
                first.push(f);
                warm.push(w);
                failed += usize::from(!ok);
            }
            println!(
                "{:<9} {:>6.2} MB {:>26} {:>26} {:>26}{}",
                name,
                size as f64 / 1_000_000.0,
                median_and_range(ready),
                median_and_range(first),
                median_and_range(warm),
                if failed > 0 {
                    format!("  ({failed} starts answered an error)")
                } else {
                    String::new()
                }
            );
        }
    });
    let mut seeding = Vec::new();
    for _ in 0..runs {
        let out = std::process::Command::new(std::env::current_exe().expect("own path"))
            .arg("--first-random-bytes")
            .output()
            .expect("runs itself");
        let micros: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("micros");
        seeding.push(Duration::from_micros(micros));
    }
    println!(
        "first random bytes in a fresh process (this build of AWS-LC): {}",
        median_and_range(seeding)
    );
}
