//! Time as a port: the system clock in production, a fixed or stepped clock in tests, so expiry and
//! lifetimes are tested without sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (UTC). The single time type of the store and the domain.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const fn from_millis(ms: i64) -> Self {
        Self(ms)
    }
    pub const fn from_secs(s: i64) -> Self {
        Self(s.saturating_mul(1000))
    }
    pub const fn millis(self) -> i64 {
        self.0
    }
    /// The milliseconds zero-padded to 13 digits (a time before the epoch as 0): strings that sort as
    /// the times do (until the year 2286), for the time-ordered part of store keys.
    pub fn sort_key(self) -> String {
        format!("{:013}", self.0.max(0))
    }
    /// Whole seconds, rounded down: the unit of DynamoDB's TTL attribute.
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }
    pub const fn plus_millis(self, ms: i64) -> Self {
        Self(self.0.saturating_add(ms))
    }
    pub const fn plus_secs(self, s: i64) -> Self {
        self.plus_millis(s.saturating_mul(1000))
    }
    pub const fn plus_hours(self, h: i64) -> Self {
        self.plus_secs(h.saturating_mul(3600))
    }
    pub const fn plus_days(self, d: i64) -> Self {
        self.plus_hours(d.saturating_mul(24))
    }
    /// RFC 3339 in UTC with milliseconds, e.g. `2026-11-29T20:23:58.123Z`.
    pub fn to_rfc3339(self) -> String {
        let dt = aws_smithy_types::DateTime::from_millis(self.0);
        dt.fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_else(|_| self.0.to_string())
    }
    /// The IMF-fixdate of HTTP and the mail `Date:` header, e.g. `Sun, 29 Nov 2026 20:23:58 GMT`.
    pub fn to_http_date(self) -> String {
        let dt = aws_smithy_types::DateTime::from_millis(self.0);
        dt.fmt(aws_smithy_types::date_time::Format::HttpDate)
            .unwrap_or_else(|_| self.0.to_string())
    }
}

/// Where "now" comes from.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }
}

/// A clock that stands still until a test moves it.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(AtomicI64::new(t.millis()))
    }
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.millis(), Ordering::SeqCst);
    }
    pub fn advance_secs(&self, s: i64) {
        self.advance_millis(s.saturating_mul(1000));
    }
    pub fn advance_millis(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_and_http_date() {
        let t = Timestamp::from_millis(1_796_000_000_123);
        assert_eq!(t.to_rfc3339(), "2026-11-30T00:53:20.123Z");
        assert_eq!(t.to_http_date(), "Mon, 30 Nov 2026 00:53:20 GMT");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(Timestamp::from_secs(10));
        assert_eq!(c.now(), Timestamp::from_secs(10));
        c.advance_secs(5);
        assert_eq!(c.now().secs(), 15);
    }
}
