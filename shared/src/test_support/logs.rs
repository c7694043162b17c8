//! Captures every log line of a test process, so a test can assert that none of the personal values it
//! used appears in what was logged.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use tracing_subscriber::layer::SubscriberExt;

use tracing_subscriber::fmt::MakeWriter;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

static CAPTURE: OnceLock<Buffer> = OnceLock::new();

/// Installs (once per process) a global subscriber at TRACE level (with the same cap on body-logging
/// libraries as production, see `telemetry::filter`), JSON format, capturing every span
/// field and event of every thread.
#[derive(Debug, Clone, Copy)]
pub struct LogCapture;

/// Starts capturing (idempotent). Call at the start of a test.
pub fn capture() -> LogCapture {
    CAPTURE.get_or_init(|| {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_writer(buffer.clone()),
            )
            .with(crate::telemetry::filter("trace"));
        // Another global subscriber may exist if a test installed one; then capture sees nothing and the
        // `assert_absent` check fails loudly rather than passing vacuously.
        let _ = tracing::subscriber::set_global_default(subscriber);
        buffer
    });
    LogCapture
}

impl LogCapture {
    /// Everything logged by this process so far.
    pub fn contents(&self) -> String {
        CAPTURE
            .get()
            .and_then(|b| {
                b.0.lock()
                    .ok()
                    .map(|v| String::from_utf8_lossy(&v).into_owned())
            })
            .unwrap_or_default()
    }

    /// Panics naming the index of the first value that appears in the logs; also checks something was
    /// captured at all, so the assertion cannot pass vacuously.
    pub fn assert_absent(&self, values: &[&str]) {
        let logs = self.contents();
        assert!(
            !logs.is_empty(),
            "no logs were captured: the check would be vacuous"
        );
        for (i, v) in values.iter().enumerate() {
            assert!(!v.is_empty(), "personal value {i} is empty");
            assert!(!logs.contains(v), "personal value {i} appears in the logs");
        }
    }
}
