//! Logging set-up: JSON lines in Lambda (CloudWatch), readable lines locally.
//!
//! The rule for every log line in qchat: opaque ids, counts and outcomes only — never an email address,
//! PSID, name, message text, network address or token. Spans use `#[instrument(skip_all, fields(..))]`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Libraries whose debug and trace output carries request and response bodies (DynamoDB items, SES
/// recipients, Graph API payloads): they never log below `info`, whatever the configured filter says.
const BODY_LOGGING_LIBRARIES: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_dynamodb",
    "aws_sdk_kms",
    "aws_sdk_ses",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
    "lambda_runtime",
    "lambda_http",
];

/// The configured filter (`QCHAT_LOG`), with the body-logging libraries capped at `info`.
pub fn filter(configured: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(configured).unwrap_or_else(|_| EnvFilter::new("info"));
    for library in BODY_LOGGING_LIBRARIES {
        if let Ok(directive) = format!("{library}=info").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber once. Later calls (tests, a second init) are ignored.
pub fn init(format: LogFormat, configured: &str) {
    let filter = filter(configured);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true);
    let result = match format {
        // Lambda adds its own timestamp and request id to each line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .without_time()
            .with_current_span(false)
            .try_init(),
        LogFormat::Text => builder.compact().try_init(),
    };
    // A subscriber already installed (by a test harness) is not an error.
    drop(result);
}
