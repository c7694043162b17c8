//! Whether one lead gets a broadcast, decided at send time from the lead as stored then (SPEC §4,
//! MESSENGER.md §3), in this order:
//! 1. the page's sending is stopped or blocked → `page_stopped`;
//! 2. the lead is not subscribed → `unsubscribed` (`unreachable` when Meta said so);
//! 3. outside the audience filter → `not_in_audience`;
//! 4. the person wrote in the last 24 hours → send with `messaging_type UPDATE`;
//! 5. an active marketing-messages token not used in the last 48 hours → send with the token;
//! 6. a token used in the last 48 hours → `token_used_recently`;
//! 7. otherwise → `outside_window`. A message tag is never used.

use crate::clock::Timestamp;
use crate::crypto::{BlindIndex, BlindIndexer};
use crate::domain::PageId;
use crate::leads::{Lead, LeadStatus};

use super::model::SkipReason;

/// Meta's standard messaging window after the person's last message.
pub const WINDOW_HOURS: i64 = 24;
/// Meta allows one marketing message per person per rolling 48 hours.
pub const TOKEN_INTERVAL_HOURS: i64 = 48;

/// Blind-index purpose of a lead's opt-in ref.
const OPTIN_REF_PURPOSE: &str = "optin_ref";

/// The blind index of an opt-in `ref` on a page (the lead's `optin_ref`): equal refs of one page give
/// equal indexes, and nothing about the ref can be read from it.
pub fn optin_ref_index(indexer: &BlindIndexer, page: &PageId, optin_ref: &str) -> BlindIndex {
    let input = format!("{}\u{0}{optin_ref}", page.as_str());
    indexer.index(OPTIN_REF_PURPOSE, input.as_bytes())
}

/// How an eligible lead is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Inside the 24-hour window: `messaging_type UPDATE` to the person's id.
    Update,
    /// Through the person's marketing-messages token (the 48-hour mark is recorded with the claim).
    Token,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Self::Update => "update",
            Self::Token => "token",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Send(Via),
    Skip(SkipReason),
}

/// The audience filter with its refs as blind indexes of the page.
#[derive(Debug, Clone, Default)]
pub struct AudienceFilter {
    /// `None`: every lead; otherwise the lead's `optin_ref` must be one of these.
    pub refs: Option<Vec<String>>,
    pub since: Option<Timestamp>,
}

impl AudienceFilter {
    pub fn new(indexer: &BlindIndexer, page: &PageId, audience: &super::draft::Audience) -> Self {
        let refs = (!audience.refs.is_empty()).then(|| {
            audience
                .refs
                .iter()
                .map(|r| optin_ref_index(indexer, page, r).as_str().to_owned())
                .collect()
        });
        Self {
            refs,
            since: audience.subscribed_since,
        }
    }

    fn admits(&self, lead: &Lead) -> bool {
        if self.since.is_some_and(|since| lead.created < since) {
            return false;
        }
        match &self.refs {
            None => true,
            Some(refs) => lead
                .item
                .get_str("optin_ref")
                .is_some_and(|r| refs.iter().any(|x| x == r)),
        }
    }
}

/// The decision for `lead` at `now`.
pub fn decide(
    page_stopped: bool,
    lead: &Lead,
    filter: &AudienceFilter,
    now: Timestamp,
) -> Decision {
    if page_stopped {
        return Decision::Skip(SkipReason::PageStopped);
    }
    match lead.status {
        LeadStatus::Subscribed => {}
        LeadStatus::Unreachable => return Decision::Skip(SkipReason::Unreachable),
        _ => return Decision::Skip(SkipReason::Unsubscribed),
    }
    if !filter.admits(lead) {
        return Decision::Skip(SkipReason::NotInAudience);
    }
    if lead
        .last_message_at
        .is_some_and(|at| now < at.plus_hours(WINDOW_HOURS))
    {
        return Decision::Send(Via::Update);
    }
    if lead.marketing_active() && lead.item.get("marketing_token").is_some() {
        let used = lead
            .item
            .get_i64("marketing_last_sent_at")
            .map(Timestamp::from_millis);
        if used.is_some_and(|at| now < at.plus_hours(TOKEN_INTERVAL_HOURS)) {
            return Decision::Skip(SkipReason::TokenUsedRecently);
        }
        return Decision::Send(Via::Token);
    }
    Decision::Skip(SkipReason::OutsideWindow)
}
