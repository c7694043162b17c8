//! The broadcast as the routes show it: its id, state, outcome names and counts, and the preview of who
//! would get it now. Every name here is stable: the JSON the routes return is made of them.

use std::collections::BTreeMap;

use crate::clock::Timestamp;
use crate::domain::{AccountId, PageId};

use super::draft::Draft;

/// A broadcast's id: the creation time (13 digits of milliseconds, so ids sort as broadcasts were made)
/// followed by a minted id. Opaque to callers; anything that does not parse names no broadcast (404).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct BroadcastId(String);

impl BroadcastId {
    /// Accepts 14 to 77 characters: 13 digits, then `[a-z0-9_-]`.
    pub fn parse(raw: &str) -> Option<Self> {
        let (time, rest) = raw.split_at_checked(13)?;
        let ok = time.bytes().all(|b| b.is_ascii_digit())
            && !rest.is_empty()
            && rest.len() <= 64
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        ok.then(|| Self(raw.to_owned()))
    }

    pub(crate) fn mint(created: Timestamp, minted: &str) -> Option<Self> {
        Self::parse(&format!("{}{minted}", created.sort_key()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BroadcastId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a broadcast stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Waiting for its `send_at`.
    Scheduled,
    Sending,
    /// The page's sending stopped (token or permission error, Meta's block); resumes when it is lifted.
    Paused,
    Done,
    Cancelled,
    /// Could not finish (its page was disconnected, or it stayed paused for [`super::PAUSE_LIMIT_DAYS`]).
    Failed,
}

impl State {
    pub const ALL: [Self; 6] = [
        Self::Scheduled,
        Self::Sending,
        Self::Paused,
        Self::Done,
        Self::Cancelled,
        Self::Failed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Sending => "sending",
            Self::Paused => "paused",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == raw)
    }

    /// Whether nothing more will be sent.
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Cancelled | Self::Failed)
    }
}

/// Why a lead did not get the broadcast (decided per lead at send time, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The page's sending is stopped (token or permission error) or blocked by Meta.
    PageStopped,
    /// The lead is not subscribed (unsubscribed, pending, or gone) at send time.
    Unsubscribed,
    /// Meta said the person cannot be reached.
    Unreachable,
    /// The lead is outside the broadcast's audience filter.
    NotInAudience,
    /// Outside the 24-hour window, and the marketing-messages token was used in the last 48 hours.
    TokenUsedRecently,
    /// Outside the 24-hour window, with no live marketing-messages token.
    OutsideWindow,
}

impl SkipReason {
    pub const ALL: [Self; 6] = [
        Self::PageStopped,
        Self::Unsubscribed,
        Self::Unreachable,
        Self::NotInAudience,
        Self::TokenUsedRecently,
        Self::OutsideWindow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::PageStopped => "page_stopped",
            Self::Unsubscribed => "unsubscribed",
            Self::Unreachable => "unreachable",
            Self::NotInAudience => "not_in_audience",
            Self::TokenUsedRecently => "token_used_recently",
            Self::OutsideWindow => "outside_window",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == raw)
    }
}

/// Why a send failed, one class per [`crate::messenger::SendError`] variant (MESSENGER.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailClass {
    /// Still rate limited after the sender's capped retries.
    RateLimited,
    /// Still failing with Meta's temporary errors after the capped retries.
    Temporary,
    /// Meta: the person cannot receive messages (the lead is marked unreachable).
    Unreachable,
    /// Meta: outside the allowed window.
    OutsideWindow,
    /// Meta: the marketing-message frequency cap.
    FrequencyCapped,
    /// Meta refused the page's token (the page is stopped; not counted while the lead waits for resume).
    TokenInvalid,
    /// The app lacks a permission for the page (as above).
    Permission,
    /// Meta refused the request as invalid.
    InvalidRequest,
    /// No answer from the Send API after the capped retries.
    Transport,
    /// The lead's values could not be opened (a broken ciphertext): nothing was sent.
    Unreadable,
}

impl FailClass {
    pub const ALL: [Self; 10] = [
        Self::RateLimited,
        Self::Temporary,
        Self::Unreachable,
        Self::OutsideWindow,
        Self::FrequencyCapped,
        Self::TokenInvalid,
        Self::Permission,
        Self::InvalidRequest,
        Self::Transport,
        Self::Unreadable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::Temporary => "temporary",
            Self::Unreachable => "unreachable",
            Self::OutsideWindow => "outside_window",
            Self::FrequencyCapped => "frequency_capped",
            Self::TokenInvalid => "token_invalid",
            Self::Permission => "permission",
            Self::InvalidRequest => "invalid_request",
            Self::Transport => "transport",
            Self::Unreadable => "unreadable",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == raw)
    }

    pub fn of(error: &crate::messenger::SendError) -> Self {
        use crate::messenger::SendError as E;
        match error {
            E::RateLimited { .. } => Self::RateLimited,
            E::Temporary { .. } => Self::Temporary,
            E::Unreachable { .. } => Self::Unreachable,
            E::OutsideWindow { .. } => Self::OutsideWindow,
            E::FrequencyCapped { .. } => Self::FrequencyCapped,
            E::TokenInvalid { .. } => Self::TokenInvalid,
            E::Permission { .. } => Self::Permission,
            E::InvalidRequest { .. } => Self::InvalidRequest,
            E::Transport { .. } => Self::Transport,
        }
    }
}

/// Counts per outcome. Serialises as the routes return it:
/// `{"sent", "skipped": {reason: n}, "failed": {class: n}, "unknown", "pending"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub sent: u64,
    pub skipped: BTreeMap<&'static str, u64>,
    pub failed: BTreeMap<&'static str, u64>,
    /// Claimed, but whether Meta got the message is not known (a crash or timeout between the claim and
    /// the outcome): never sent again.
    pub unknown: u64,
    /// Subscribed leads of the page the sender has not reached yet (0 once finished). Counted when
    /// sending starts and lowered as it goes: an estimate while leads subscribe and leave meanwhile.
    pub pending: u64,
}

impl Counts {
    /// How many leads these counts cover (not `pending`).
    pub fn processed(&self) -> u64 {
        self.sent
            + self.unknown
            + self.skipped.values().sum::<u64>()
            + self.failed.values().sum::<u64>()
    }

    pub(crate) fn add(&mut self, other: &Self) {
        self.sent += other.sent;
        self.unknown += other.unknown;
        for (k, v) in &other.skipped {
            *self.skipped.entry(k).or_default() += v;
        }
        for (k, v) in &other.failed {
            *self.failed.entry(k).or_default() += v;
        }
    }

    pub(crate) fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason.name()).or_default() += 1;
    }

    pub(crate) fn fail(&mut self, class: FailClass) {
        *self.failed.entry(class.name()).or_default() += 1;
    }

    /// The stored form (without `pending`, which is derived).
    pub(crate) fn to_stored(&self) -> String {
        serde_json::json!({
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "unknown": self.unknown,
            "total": self.pending + self.processed(),
        })
        .to_string()
    }

    /// Reads the stored form; names this code does not know are dropped. `pending` is the stored
    /// total less what was processed.
    pub(crate) fn from_stored(raw: Option<&str>) -> Self {
        let Some(v) = raw.and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok()) else {
            return Self::default();
        };
        let n = |key: &str| v.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let map = |key: &str, names: &mut dyn FnMut(&str) -> Option<&'static str>| {
            let mut out = BTreeMap::new();
            if let Some(obj) = v.get(key).and_then(serde_json::Value::as_object) {
                for (k, count) in obj {
                    if let (Some(name), Some(count)) = (names(k), count.as_u64()) {
                        out.insert(name, count);
                    }
                }
            }
            out
        };
        let mut counts = Self {
            sent: n("sent"),
            skipped: map("skipped", &mut |k| {
                SkipReason::parse(k).map(SkipReason::name)
            }),
            failed: map("failed", &mut |k| FailClass::parse(k).map(FailClass::name)),
            unknown: n("unknown"),
            pending: 0,
        };
        counts.pending = n("total").saturating_sub(counts.processed());
        counts
    }
}

/// A broadcast as the routes show it (the draft opened from its sealed content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastView {
    pub id: BroadcastId,
    pub account: AccountId,
    pub page: PageId,
    pub state: State,
    pub draft: Draft,
    pub created: Timestamp,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub counts: Counts,
    /// Why it is paused or failed (`page_stopped`, `page_gone`), when it is.
    pub pause_reason: Option<String>,
}

/// How many of a page's leads a broadcast would reach now, and why the others would not.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Preview {
    pub eligible: u64,
    /// Leads that would not get it, by [`SkipReason`] name.
    pub by_reason: BTreeMap<&'static str, u64>,
    /// Of the eligible: inside the 24-hour window (`messaging_type UPDATE`).
    pub via_update: u64,
    /// Of the eligible: through their marketing-messages token.
    pub via_token: u64,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled(Box<BroadcastView>),
    /// It had already finished in this state (the routes answer 409).
    AlreadyFinished(State),
    NotFound,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_only_in_their_own_shape() {
        let id =
            BroadcastId::mint(Timestamp::from_millis(1_793_011_200_000), "abc123").expect("mints");
        assert_eq!(id.as_str(), "1793011200000abc123");
        assert_eq!(BroadcastId::parse(id.as_str()), Some(id));
        for bad in [
            "",
            "1793011200000",
            "179301120000xabc",
            "1793011200000ABC",
            "1793011200000a/b",
        ] {
            assert_eq!(BroadcastId::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_round_trip_and_pending_is_the_total_less_what_was_processed() {
        let mut c = Counts {
            sent: 3,
            unknown: 1,
            pending: 5,
            ..Counts::default()
        };
        c.skip(SkipReason::OutsideWindow);
        c.fail(FailClass::Unreachable);
        let back = Counts::from_stored(Some(&c.to_stored()));
        assert_eq!(back, c);
        assert_eq!(back.processed(), 6);
    }
}
