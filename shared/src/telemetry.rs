//! Logging set-up: JSON lines in Lambda (CloudWatch), readable lines locally.
//!
//! The rule for every log line in qchat: opaque ids, counts and outcomes only — never an email address,
//! PSID, name, message text, network address or token. Spans use `#[instrument(skip_all, fields(..))]`.

use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Libraries whose debug and trace output carries request and response bodies (DynamoDB items, SES
/// recipients, Graph API payloads): they never log below `info`, whatever the configured filter says.
const BODY_LOGGING_LIBRARIES: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_sdk_dynamodb",
    "aws_sdk_kms",
    "aws_sdk_ses",
    "aws_sdk_secretsmanager",
    "hyper",
    "hyper_util",
    "hyper_rustls",
    "rustls",
    "lambda_runtime",
    "lambda_http",
];

/// The configured filter (`QCHAT_LOG`: a level, `target=level` pairs, or both, comma-separated; `info`
/// when it does not parse), with the body-logging libraries capped at `info`.
///
/// `Targets` rather than `EnvFilter`: the same `target=level` syntax without span and field matching,
/// which qchat's filter never needed, and without the regex engine `EnvFilter` links (about 0.3 MB of
/// every function's binary).
pub fn filter(configured: &str) -> Targets {
    let parsed = configured
        .parse::<Targets>()
        .unwrap_or_else(|_| Targets::new().with_default(Level::INFO));
    let default = parsed.default_level().unwrap_or(LevelFilter::OFF);
    let is_capped = |target: &str| {
        BODY_LOGGING_LIBRARIES.iter().any(|library| {
            target == *library
                || target
                    .strip_prefix(library)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
    };
    let mut filter = Targets::new().with_default(default);
    // Every configured target, a body-logging library's (or one of its modules') at most at `info`.
    for (target, level) in parsed.iter() {
        let level = if is_capped(target) {
            level.min(LevelFilter::INFO)
        } else {
            level
        };
        filter = filter.with_target(target.to_owned(), level);
    }
    // The libraries the configuration does not name: the default level, at most `info`.
    for library in BODY_LOGGING_LIBRARIES {
        if !parsed.iter().any(|(target, _)| target == *library) {
            filter = filter.with_target(*library, default.min(LevelFilter::INFO));
        }
    }
    filter
}

/// Installs the global subscriber once. Later calls (tests, a second init) are ignored.
pub fn init(format: LogFormat, configured: &str) {
    let filter = filter(configured);
    let fmt = tracing_subscriber::fmt::layer().with_target(true);
    let result = match format {
        // Lambda adds its own timestamp and request id to each line.
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                fmt.json()
                    .flatten_event(true)
                    .without_time()
                    .with_current_span(false),
            )
            .with(filter)
            .try_init(),
        LogFormat::Text => tracing_subscriber::registry()
            .with(fmt.compact())
            .with(filter)
            .try_init(),
    };
    // A subscriber already installed (by a test harness) is not an error.
    drop(result);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_logging_libraries_never_log_below_info() {
        for configured in [
            "trace",
            "hyper=trace,aws_sdk_dynamodb=debug,trace",
            "hyper::proto::h1=trace,trace",
            "hyper=loud",
        ] {
            let filter = filter(configured);
            for library in BODY_LOGGING_LIBRARIES {
                for target in [library.to_string(), format!("{library}::proto::h1")] {
                    assert!(
                        !filter.would_enable(&target, &Level::DEBUG),
                        "{target} at debug with {configured:?}"
                    );
                }
            }
        }
        assert!(filter("trace").would_enable("hyper", &Level::INFO));
        assert!(!filter("hyper=warn").would_enable("hyper", &Level::INFO));
        assert!(filter("hyper=warn").would_enable("hyper", &Level::WARN));
        // A quieter default keeps the libraries as quiet.
        assert!(!filter("warn").would_enable("hyper", &Level::INFO));
        assert!(!filter("off").would_enable("hyper", &Level::ERROR));
    }

    #[test]
    fn the_configured_levels_apply_to_everything_else() {
        assert!(filter("trace").would_enable("qchat_shared::store", &Level::TRACE));
        assert!(!filter("info").would_enable("qchat_shared::store", &Level::DEBUG));
        assert!(
            filter("info,qchat_shared=debug").would_enable("qchat_shared::store", &Level::DEBUG)
        );
        assert!(!filter("warn").would_enable("qchat_webhook", &Level::INFO));
        // What does not parse is `info`, not silence and not trace.
        let fallback = filter("qchat_webhook=loud");
        assert!(fallback.would_enable("qchat_webhook", &Level::INFO));
        assert!(!fallback.would_enable("qchat_webhook", &Level::DEBUG));
    }
}
