//! Logging set-up: JSON lines in Lambda (CloudWatch), readable lines locally.
//!
//! The rule for every log line in qchat: opaque ids, counts and outcomes only — never an email address,
//! PSID, name, message text, network address or token. Spans use `#[instrument(skip_all, fields(..))]`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber once. Later calls (tests, a second init) are ignored.
pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
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
