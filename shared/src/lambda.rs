//! The Lambda entry points: the same handlers the local server mounts, adapted to API Gateway (HTTP API,
//! payload v2) and to plain events (schedules, streams). Used by every function's thin `main`.

use std::future::Future;
use std::net::IpAddr;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::app::App;
use crate::config::Config;
use crate::http::{ClientAddr, Request, Response};

/// Reads the configuration, sets up logging and builds the app: the cold-start work, done once.
pub async fn start() -> Result<App, lambda_http::Error> {
    let config = Config::from_env()?;
    crate::telemetry::init(config.log_format, &config.log_filter);
    // AWS-LC seeds its generator at the first random bytes, with CPU-jitter entropy besides the OS's
    // (kept: see the README's "Size and cold start"). Drawing them here puts that cost in the init
    // phase, which Lambda may run before a request arrives, not in the first request's TLS handshake.
    let _ = crate::crypto::random_bytes::<1>();
    Ok(App::from_config(config).await?)
}

fn into_request(req: lambda_http::Request) -> Request {
    let source_ip = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse::<IpAddr>().ok()),
        _ => None,
    };
    let (parts, body) = req.into_parts();
    let bytes = match body {
        Body::Empty => bytes::Bytes::new(),
        Body::Text(t) => bytes::Bytes::from(t),
        Body::Binary(b) => bytes::Bytes::from(b),
        _ => bytes::Bytes::new(),
    };
    let mut out = http::Request::from_parts(parts, bytes);
    if let Some(ip) = source_ip {
        out.extensions_mut().insert(ClientAddr(ip));
    }
    out
}

fn from_response(resp: Response) -> lambda_http::Response<Body> {
    let (parts, body) = resp.into_parts();
    let body = if body.is_empty() {
        Body::Empty
    } else {
        match std::str::from_utf8(&body) {
            Ok(text) => Body::Text(text.to_owned()),
            Err(_) => Body::Binary(body.to_vec()),
        }
    };
    lambda_http::Response::from_parts(parts, body)
}

/// Serves HTTP requests from API Gateway with `handler` until the runtime stops.
pub async fn run_http<F, Fut>(app: App, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(App, Request) -> Fut + Send + Sync,
    Fut: Future<Output = Response> + Send,
{
    let app = &app;
    let handler = &handler;
    lambda_http::run(lambda_http::service_fn(
        move |req: lambda_http::Request| async move {
            Ok::<_, std::convert::Infallible>(from_response(
                handler(app.clone(), into_request(req)).await,
            ))
        },
    ))
    .await
}
