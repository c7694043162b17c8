//! The Lambda entry points: the same handlers the local server mounts, adapted to API Gateway (HTTP API,
//! payload v2) and to plain events (schedules, streams). Used by every function's thin `main`.

use std::future::Future;
use std::net::IpAddr;

use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};

use crate::app::{App, Clients};
use crate::config::Config;
use crate::http::{ClientAddr, Request, Response};

/// Reads the configuration, sets up logging and builds the app with the `clients` the function uses
/// besides DynamoDB and KMS: the cold-start work, done once.
pub async fn start(clients: Clients) -> Result<App, lambda_http::Error> {
    let config = Config::from_env()?;
    crate::telemetry::init(config.log_format, &config.log_filter);
    // AWS-LC seeds its generator at the first random bytes, with CPU-jitter entropy besides the OS's
    // (kept: see the README's "Size and cold start"). Drawing them here puts that cost in the init
    // phase, which Lambda may run before a request arrives, not in the first request's TLS handshake.
    let _ = crate::crypto::random_bytes::<1>();
    Ok(App::from_config_with(config, clients).await?)
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

/// Serves HTTP requests from API Gateway with `handler` until the runtime stops. Any other event is
/// refused as the invocation's error (an HTTP-only function is wired to API Gateway alone).
///
/// The answer is built here (as for [`run_http_and_events`]), not by `lambda_http::run`, whose conversion
/// decodes every text body through encoding_rs's tables of every legacy charset (about 0.15 MB of each
/// function) to re-encode what is UTF-8 already.
pub async fn run_http<F, Fut>(app: App, handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(App, Request) -> Fut + Send + Sync,
    Fut: Future<Output = Response> + Send,
{
    run_http_and_events(app, handler, |_, _, _| async {
        Err::<serde_json::Value, _>(NotAnHttpRequest)
    })
    .await
}

/// The error of an HTTP-only function invoked with an event that is not an HTTP API request.
#[derive(Debug, thiserror::Error)]
#[error("this function serves API Gateway HTTP API requests only")]
pub struct NotAnHttpRequest;

impl From<NotAnHttpRequest> for lambda_http::lambda_runtime::Diagnostic {
    fn from(e: NotAnHttpRequest) -> Self {
        Self {
            error_type: "NotAnHttpRequest".to_owned(),
            error_message: e.to_string(),
        }
    }
}

/// Whether a Lambda payload is an API Gateway HTTP API (payload v2) request rather than a plain event
/// (an EventBridge schedule's).
pub fn is_http_api_event(payload: &serde_json::Value) -> bool {
    payload.get("version").and_then(serde_json::Value::as_str) == Some("2.0")
        && payload
            .get("requestContext")
            .and_then(|c| c.get("http"))
            .is_some_and(serde_json::Value::is_object)
}

/// The HTTP API's payload-v2 answer for `resp` (cookies in `cookies`, as API Gateway expects them).
fn to_http_api_response(resp: Response) -> serde_json::Value {
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpResponse;
    let (mut parts, body) = resp.into_parts();
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.cookies = parts
        .headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    parts.headers.remove(http::header::SET_COOKIE);
    out.headers = parts.headers;
    if !body.is_empty() {
        match std::str::from_utf8(&body) {
            Ok(text) => out.body = Some(Body::Text(text.to_owned())),
            Err(_) => {
                out.body = Some(Body::Binary(body.to_vec()));
                out.is_base64_encoded = true;
            }
        }
    }
    serde_json::to_value(out).unwrap_or_else(|_| {
        serde_json::json!({ "statusCode": 500, "headers": {}, "cookies": [], "isBase64Encoded": false })
    })
}

/// Serves a function invoked two ways, until the runtime stops: API Gateway HTTP API requests go to
/// `http` (as in [`run_http`]); any other event (an EventBridge schedule) goes to `event` with the
/// invocation's deadline, and its answer is the invocation's result.
pub async fn run_http_and_events<H, HF, E, EF, Err>(
    app: App,
    http: H,
    event: E,
) -> Result<(), lambda_http::Error>
where
    H: Fn(App, Request) -> HF + Send + Sync,
    HF: Future<Output = Response> + Send,
    E: Fn(App, serde_json::Value, crate::clock::Timestamp) -> EF + Send + Sync,
    EF: Future<Output = Result<serde_json::Value, Err>> + Send,
    Err: Into<lambda_http::lambda_runtime::Diagnostic> + std::fmt::Debug,
{
    use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
    use lambda_http::request::LambdaRequest;

    let (app, http, event) = (&app, &http, &event);
    lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |invocation: lambda_http::LambdaEvent<serde_json::Value>| async move {
            let (payload, context) = (invocation.payload, invocation.context);
            if is_http_api_event(&payload) {
                let response = match serde_json::from_value::<ApiGatewayV2httpRequest>(payload) {
                    Ok(req) => {
                        let req = lambda_http::Request::from(LambdaRequest::ApiGatewayV2(req));
                        http(app.clone(), into_request(req)).await
                    }
                    Err(_) => crate::http::finish(
                        crate::http::ApiError::bad_request(
                            "invalid_request",
                            "the request could not be read",
                        )
                        .into_response(),
                    ),
                };
                return Ok(to_http_api_response(response));
            }
            let deadline = crate::clock::Timestamp::from_millis(
                i64::try_from(context.deadline).unwrap_or(i64::MAX),
            );
            event(app.clone(), payload, deadline).await
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http_api_request_is_told_from_a_schedule() {
        let http = serde_json::json!({
            "version": "2.0", "routeKey": "GET /api/pages/{page_id}/broadcasts", "rawPath": "/api/pages/1/broadcasts",
            "requestContext": { "http": { "method": "GET", "path": "/api/pages/1/broadcasts" } },
        });
        assert!(is_http_api_event(&http));
        for schedule in [
            serde_json::json!({}),
            serde_json::json!({ "source": "aws.scheduler", "detail-type": "Scheduled Event" }),
            serde_json::json!({ "version": "0", "requestContext": {} }),
        ] {
            assert!(!is_http_api_event(&schedule), "{schedule}");
        }
    }

    #[test]
    fn an_answer_becomes_a_payload_v2_response_with_cookies_apart() {
        let resp = http::Response::builder()
            .status(201)
            .header("content-type", "application/json")
            .header("set-cookie", "a=1")
            .body(bytes::Bytes::from_static(b"{\"ok\":true}"))
            .expect("a response");
        let v = to_http_api_response(resp);
        assert_eq!(v["statusCode"], 201);
        assert_eq!(v["body"], "{\"ok\":true}");
        assert_eq!(v["cookies"], serde_json::json!(["a=1"]));
        assert_eq!(v["isBase64Encoded"], false);
        assert!(v["headers"].get("set-cookie").is_none());
        assert_eq!(v["headers"]["content-type"], "application/json");
    }
}
